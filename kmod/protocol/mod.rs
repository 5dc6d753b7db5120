// SPDX-License-Identifier: GPL-2.0

//! The rustnl protocol: safe code over the netlink layer, one file per
//! face over one state.
//!
//! Each namespace has one [`Rustnl`]: the configuration, both faces'
//! counters and one event sequence. [`classic`] answers the unit's
//! datagrams (each split into messages by the shared decoder, classified
//! by the shared validator, then answered); [`generic`] answers the
//! generic netlink family's requests (validated by the core against
//! policies built from the shared spec tables). Every request gets exactly
//! one of: its reply (plus an ack if `NLM_F_ACK` asked for one), an ack,
//! or an `NLMSG_ERROR` with the errno and an extended-ack text. Heartbeats
//! and goodbyes go out on both faces with one sequence number.
#![forbid(unsafe_code)]

mod classic;
mod generic;

use crate::genl::{Cmd, CounterAttr, McastGroup};
use crate::netlink::{Datagram, Delivery, KernelSock, Netns, Protocol, SocketConfig};
use crate::proto::{
    BroadcastResult, Counters, ErrorKind, Limits, Messages, MsgType, KERNEL_EVENT_GROUP,
};
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// The module's configuration (its parameters, validated at load).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    /// Netlink protocol unit.
    pub(crate) unit: u32,
    /// Request limits: `max_payload`, `groups`.
    pub(crate) limits: Limits,
    /// Anyone may BROADCAST (otherwise `CAP_NET_ADMIN` is needed).
    pub(crate) open_broadcast: bool,
    /// Heartbeat period (0: off).
    pub(crate) heartbeat_ms: u32,
}

/// The text of a HEARTBEAT, as in the Kernel Korner article.
pub(crate) const HEARTBEAT_TEXT: &[u8] = b"Greeting from kernel!";

/// The errno the kernel answers a refusal of `kind` with (the shared
/// table, [`ErrorKind::errno`]).
pub(crate) fn errno(kind: ErrorKind) -> Error {
    Error::from_errno(-kind.errno())
}

/// One lock-free counter per [`CounterAttr`], at its index.
struct Stats([Atomic<u64>; Counters::COUNT]);

impl Stats {
    fn new() -> Self {
        Stats(core::array::from_fn(|_| Atomic::new(0)))
    }

    fn bump(&self, c: CounterAttr) {
        if let Some(a) = self.0.get(c.index()) {
            a.add(1u64, Relaxed);
        }
    }

    fn add(&self, c: CounterAttr, n: u64) {
        if let (Some(a), true) = (self.0.get(c.index()), n > 0) {
            a.add(n, Relaxed);
        }
    }

    fn snapshot(&self) -> Counters {
        Counters::from_array(core::array::from_fn(|i| {
            self.0.get(i).map_or(0, |a| a.load(Relaxed))
        }))
    }

    fn refused(&self, kind: ErrorKind) {
        self.bump(CounterAttr::refused(kind));
    }
}

/// The rustnl protocol state of one network namespace.
pub(crate) struct Rustnl {
    /// Counters of the classic face.
    stats: Stats,
    /// Counters of the generic netlink face.
    genl: Stats,
    /// Sequence number of the last event sent in this namespace.
    event_seq: Atomic<u64>,
    /// The parameters, read once: they cannot change while loaded (no
    /// sysfs write access), and reading them per message cost ~100
    /// instructions (`make bench`, -icount).
    config: Config,
}

impl Protocol for Rustnl {
    fn config() -> SocketConfig {
        let c = crate::config();
        SocketConfig {
            unit: c.unit,
            groups: c.limits.groups,
            tick_ms: c.heartbeat_ms,
        }
    }

    fn new_state() -> Result<Self> {
        Ok(Rustnl {
            stats: Stats::new(),
            genl: Stats::new(),
            event_seq: Atomic::new(0),
            config: crate::config(),
        })
    }

    fn receive(&self, sock: &KernelSock, datagram: &Datagram<'_>) {
        for item in Messages::new(datagram.bytes()) {
            self.stats.bump(CounterAttr::Requests);
            match item {
                Ok(msg) => self.handle(sock, datagram, &msg),
                Err(bad) => self.malformed(datagram, bad),
            }
        }
        // Replies are gathered per datagram; those that could not be
        // delivered (full receive queue: netlink flagged ENOBUFS) count here.
        self.stats
            .add(CounterAttr::DeliveryFailures, u64::from(datagram.flush()));
    }

    fn tick(&self, ns: &Netns<'_>) {
        // Nobody listening on a face: skip its allocation, count it.
        let classic = ns.classic.filter(|sock| {
            let listens = sock.has_listeners(KERNEL_EVENT_GROUP);
            if !listens {
                self.stats.bump(CounterAttr::NoListeners);
            }
            listens
        });
        let genl = ns.genl.filter(|net| {
            let listens = net.has_listeners(McastGroup::Heartbeat.index());
            if !listens {
                self.genl.bump(CounterAttr::NoListeners);
            }
            listens
        });
        if classic.is_none() && genl.is_none() {
            return;
        }
        // One heartbeat, one sequence number, on both faces.
        let seq = self.next_seq();
        if let Some(sock) = classic {
            let _ = self.send_event(sock, MsgType::Heartbeat, KERNEL_EVENT_GROUP, 0, seq, HEARTBEAT_TEXT);
        }
        if let Some(net) = genl {
            let _ = self.send_genl_event(net, Cmd::Heartbeat, KERNEL_EVENT_GROUP, 0, seq, HEARTBEAT_TEXT);
        }
    }

    fn closing(&self, ns: &Netns<'_>) {
        let seq = self.next_seq();
        if let Some(sock) = ns.classic {
            let _ = self.send_event(sock, MsgType::Goodbye, KERNEL_EVENT_GROUP, 0, seq, b"");
        }
        if let Some(net) = ns.genl {
            let _ = self.send_genl_event(net, Cmd::Goodbye, KERNEL_EVENT_GROUP, 0, seq, b"");
        }
    }
}
impl Rustnl {
    /// The sequence number of the next event of this namespace.
    fn next_seq(&self) -> u64 {
        self.event_seq.fetch_add(1u64, Relaxed).wrapping_add(1)
    }

    /// Counts how an event's delivery went, on `stats`' face.
    fn count_delivery(stats: &Stats, delivery: Result<Delivery>) -> Result<Delivery> {
        let delivery = delivery.inspect_err(|_| stats.bump(CounterAttr::DeliveryFailures))?;
        match delivery {
            Delivery::Delivered => stats.bump(CounterAttr::EventsSent),
            Delivery::NoListeners => stats.bump(CounterAttr::NoListeners),
            Delivery::NoneReceived => stats.bump(CounterAttr::DeliveryFailures),
            Delivery::FailureReported => {
                stats.bump(CounterAttr::EventsSent);
                stats.bump(CounterAttr::DeliveryFailures);
            }
        }
        Ok(delivery)
    }
}

/// What a broadcast's answer says of its event (both faces).
fn broadcast_result(group: u32, event_seq: u64, delivery: Delivery) -> BroadcastResult {
    BroadcastResult {
        group,
        // Known to have reached a listener.
        delivered: delivery == Delivery::Delivered,
        // Known to have failed for a listener.
        delivery_failed: matches!(delivery, Delivery::FailureReported | Delivery::NoneReceived),
        event_seq,
    }
}

