// SPDX-License-Identifier: GPL-2.0

//! The rustnl protocol handlers: safe code over the netlink layer.
//!
//! Each datagram is split into messages by the shared decoder; each message is
//! classified by the shared validator and then answered. Every message gets
//! exactly one of: its reply (plus an ack if `NLM_F_ACK` asked for one), an
//! ack, or an `NLMSG_ERROR` with the errno and an extended-ack text.
#![forbid(unsafe_code)]

use crate::netlink::{Datagram, Delivery, KernelSock, Protocol, SocketConfig};
use crate::proto::{
    classify, Action, BroadcastResult, Counters, ErrorKind, EventHdr, Info, Limits, Malformed,
    Message, Messages, MsgType, RequestError, KERNEL_EVENT_GROUP, NLM_F_ACK, PROTOCOL_VERSION,
};
use kernel::{
    alloc::flags::GFP_KERNEL,
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

/// The errno the kernel answers with for each shared error class.
pub(crate) fn errno(kind: ErrorKind) -> Error {
    match kind {
        ErrorKind::Invalid => EINVAL,
        ErrorKind::NotSupported => EOPNOTSUPP,
        ErrorKind::TooLarge => EMSGSIZE,
        ErrorKind::NotPermitted => EPERM,
    }
}

/// The counters of [`Counters`], in its wire order.
#[derive(Clone, Copy)]
enum Counter {
    Requests,
    Echoes,
    Broadcasts,
    EventsSent,
    Invalid,
    NotSupported,
    TooLarge,
    NotPermitted,
    DeliveryFailures,
    NoListeners,
}

/// One lock-free counter per [`Counter`].
struct Stats([Atomic<u64>; Counters::COUNT]);

impl Stats {
    fn new() -> Self {
        Stats(core::array::from_fn(|_| Atomic::new(0)))
    }

    fn bump(&self, c: Counter) {
        if let Some(a) = self.0.get(c as usize) {
            a.fetch_add(1u64, Relaxed);
        }
    }

    fn add(&self, c: Counter, n: u64) {
        if let (Some(a), true) = (self.0.get(c as usize), n > 0) {
            a.fetch_add(n, Relaxed);
        }
    }

    fn snapshot(&self) -> Counters {
        Counters::from_array(core::array::from_fn(|i| {
            self.0.get(i).map_or(0, |a| a.load(Relaxed))
        }))
    }

    fn refused(&self, kind: ErrorKind) {
        self.bump(match kind {
            ErrorKind::Invalid => Counter::Invalid,
            ErrorKind::NotSupported => Counter::NotSupported,
            ErrorKind::TooLarge => Counter::TooLarge,
            ErrorKind::NotPermitted => Counter::NotPermitted,
        });
    }
}

/// Why a request got no answer.
enum Unanswered {
    /// No buffer for the reply (or its delivery failed).
    Reply(Error),
    /// The broadcast's event could not be sent; `send_event` counted it.
    Event(Error),
}

/// The rustnl protocol state of one network namespace.
pub(crate) struct Rustnl {
    stats: Stats,
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
            event_seq: Atomic::new(0),
            config: crate::config(),
        })
    }

    fn receive(&self, sock: &KernelSock, datagram: &Datagram<'_>) {
        for item in Messages::new(datagram.bytes()) {
            self.stats.bump(Counter::Requests);
            match item {
                Ok(msg) => self.handle(sock, datagram, &msg),
                Err(bad) => self.malformed(datagram, bad),
            }
        }
        // Replies are gathered per datagram; those that could not be
        // delivered (full receive queue: netlink flagged ENOBUFS) count here.
        self.stats
            .add(Counter::DeliveryFailures, u64::from(datagram.flush()));
    }

    fn tick(&self, sock: &KernelSock) {
        // Nobody listening: skip the allocation, count it.
        if !sock.has_listeners(KERNEL_EVENT_GROUP) {
            self.stats.bump(Counter::NoListeners);
            return;
        }
        let _ = self.send_event(
            sock,
            MsgType::Heartbeat,
            KERNEL_EVENT_GROUP,
            0,
            HEARTBEAT_TEXT,
        );
    }

    fn closing(&self, sock: &KernelSock) {
        let _ = self.send_event(sock, MsgType::Goodbye, KERNEL_EVENT_GROUP, 0, b"");
    }
}

impl Rustnl {
    /// Answers one well-formed message.
    fn handle(&self, sock: &KernelSock, datagram: &Datagram<'_>, msg: &Message<'_>) {
        let config = &self.config;
        let result = classify(msg, &config.limits).and_then(|action| match action {
            Action::Broadcast { .. }
                if !config.open_broadcast && !datagram.sender_has_net_admin() =>
            {
                Err(RequestError::BroadcastNotPermitted)
            }
            action => Ok(action),
        });
        let action = match result {
            Ok(action) => action,
            Err(refused) => return self.refuse(datagram, msg, refused),
        };
        let answered = match action {
            Action::Noop => Ok(()),
            Action::Echo { payload } => {
                self.stats.bump(Counter::Echoes);
                datagram
                    .reply(msg, MsgType::Echo.raw(), 0, &[payload])
                    .map_err(Unanswered::Reply)
            }
            Action::Broadcast { group, payload } => {
                self.broadcast(sock, datagram, msg, group, payload)
            }
            Action::GetInfo => self.info(datagram, msg).map_err(Unanswered::Reply),
        };
        match answered {
            Ok(()) if msg.header.has(NLM_F_ACK) => datagram.ack(msg, None, None),
            Ok(()) => {}
            Err(why) => self.not_answered(datagram, msg, why),
        }
    }

    // The paths below are kept out of line (the refusals cold) so that the
    // common one, an ECHO, stays short: `make bench` counts each of its
    // instructions against the C module's.

    /// BROADCAST: multicast the event, answer with the result.
    #[inline(never)]
    fn broadcast(
        &self,
        sock: &KernelSock,
        datagram: &Datagram<'_>,
        msg: &Message<'_>,
        group: u32,
        payload: &[u8],
    ) -> core::result::Result<(), Unanswered> {
        self.stats.bump(Counter::Broadcasts);
        let origin = datagram.sender_portid();
        let (event_seq, delivery) = self
            .send_event(sock, MsgType::Event, group, origin, payload)
            .map_err(Unanswered::Event)?;
        let result = BroadcastResult {
            group,
            // Known to have reached a listener.
            delivered: delivery == Delivery::Delivered,
            // Known to have failed for a listener.
            delivery_failed: matches!(
                delivery,
                Delivery::FailureReported | Delivery::NoneReceived
            ),
            event_seq,
        };
        datagram
            .reply(msg, MsgType::Broadcast.raw(), 0, &[&result.to_bytes()])
            .map_err(Unanswered::Reply)
    }

    /// GET_INFO: configuration and this namespace's counters.
    #[inline(never)]
    fn info(&self, datagram: &Datagram<'_>, msg: &Message<'_>) -> Result {
        let config = &self.config;
        let info = Info {
            version: PROTOCOL_VERSION as u16,
            unit: config.unit,
            groups: config.limits.groups,
            max_payload: config.limits.max_payload as u32,
            heartbeat_ms: config.heartbeat_ms,
            open_broadcast: config.open_broadcast,
            counters: self.stats.snapshot(),
        };
        datagram.reply(msg, MsgType::Info.raw(), 0, &[&info.to_bytes()])
    }

    /// A part of the datagram that is not a message.
    #[cold]
    fn malformed(&self, datagram: &Datagram<'_>, bad: Malformed) {
        self.stats.refused(ErrorKind::Invalid);
        datagram.ack_malformed(bad.header(), EINVAL, format_args!("{bad}"));
    }

    /// A message the validator (or the privilege check) refused.
    #[cold]
    fn refuse(&self, datagram: &Datagram<'_>, msg: &Message<'_>, refused: RequestError) {
        self.stats.refused(refused.kind());
        datagram.ack(
            msg,
            Some(errno(refused.kind())),
            Some(format_args!("{refused}")),
        );
    }

    /// A request whose answer could not be had.
    #[cold]
    fn not_answered(&self, datagram: &Datagram<'_>, msg: &Message<'_>, why: Unanswered) {
        let e = match why {
            Unanswered::Reply(e) => {
                self.stats.bump(Counter::DeliveryFailures);
                e
            }
            // Counted where it failed (`send_event`).
            Unanswered::Event(e) => e,
        };
        // No buffer for the answer (or the event): tell the sender why.
        // Other failures mean the sender's queue is full or the sender is
        // gone: netlink has flagged the overrun (ENOBUFS) on its socket.
        if e == ENOMEM || e == EMSGSIZE {
            datagram.ack(
                msg,
                Some(e),
                Some(format_args!("cannot allocate the answer")),
            );
        }
    }

    /// Multicasts an event of type `ty` to `group`; returns its sequence
    /// number and how delivery went.
    fn send_event(
        &self,
        sock: &KernelSock,
        ty: MsgType,
        group: u32,
        origin: u32,
        payload: &[u8],
    ) -> Result<(u64, Delivery)> {
        let seq = self.event_seq.fetch_add(1u64, Relaxed).wrapping_add(1);
        let hdr = EventHdr {
            group,
            origin,
            seq,
            timestamp_ns: crate::netlink::realtime_ns(),
        };
        let delivery = sock
            .broadcast(
                group,
                ty.raw(),
                seq as u32,
                &[&hdr.to_bytes(), payload],
                GFP_KERNEL,
            )
            .inspect_err(|_| self.stats.bump(Counter::DeliveryFailures))?;
        match delivery {
            Delivery::Delivered => self.stats.bump(Counter::EventsSent),
            Delivery::NoListeners => self.stats.bump(Counter::NoListeners),
            Delivery::NoneReceived => self.stats.bump(Counter::DeliveryFailures),
            Delivery::FailureReported => {
                self.stats.bump(Counter::EventsSent);
                self.stats.bump(Counter::DeliveryFailures);
            }
        }
        Ok((seq, delivery))
    }
}
