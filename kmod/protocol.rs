// SPDX-License-Identifier: GPL-2.0

//! The rustnl protocol handlers: safe code over the netlink layer.
//!
//! Each datagram is split into messages by the shared decoder; each message is
//! classified by the shared validator and then answered. Every message gets
//! exactly one of: its reply (plus an ack if `NLM_F_ACK` asked for one), an
//! ack, or an `NLMSG_ERROR` with the errno and an extended-ack text.
#![forbid(unsafe_code)]

use crate::genl::{self, genl_header, nla_header, nla_pad_len, Attr, AttrWriter, Cmd, McastGroup, NLA_PAD};
use crate::netlink::compat;
use crate::netlink::genl::{AttrRule, Op, Permission, Request};
use crate::netlink::{
    Datagram, Delivery, GenlNet, GenlProtocol, KernelSock, Netns, Protocol, SocketConfig,
};
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
        ErrorKind::NotSupported => compat::eopnotsupp(),
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

    fn tick(&self, ns: &Netns<'_>) {
        // Nobody listening on a face: skip its allocation, count it.
        let classic = ns.classic.filter(|sock| {
            let listens = sock.has_listeners(KERNEL_EVENT_GROUP);
            if !listens {
                self.stats.bump(Counter::NoListeners);
            }
            listens
        });
        let genl = ns.genl.filter(|net| {
            let listens = net.has_listeners(McastGroup::Heartbeat.index());
            if !listens {
                self.genl.bump(Counter::NoListeners);
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
        let event_seq = self.next_seq();
        let delivery = self
            .send_event(sock, MsgType::Event, group, origin, event_seq, payload)
            .map_err(Unanswered::Event)?;
        let result = broadcast_result(group, event_seq, delivery);
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

    /// The sequence number of the next event of this namespace.
    fn next_seq(&self) -> u64 {
        self.event_seq.fetch_add(1u64, Relaxed).wrapping_add(1)
    }

    /// Counts how an event's delivery went, on `stats`' face.
    fn count_delivery(stats: &Stats, delivery: Result<Delivery>) -> Result<Delivery> {
        let delivery = delivery.inspect_err(|_| stats.bump(Counter::DeliveryFailures))?;
        match delivery {
            Delivery::Delivered => stats.bump(Counter::EventsSent),
            Delivery::NoListeners => stats.bump(Counter::NoListeners),
            Delivery::NoneReceived => stats.bump(Counter::DeliveryFailures),
            Delivery::FailureReported => {
                stats.bump(Counter::EventsSent);
                stats.bump(Counter::DeliveryFailures);
            }
        }
        Ok(delivery)
    }

    /// Multicasts a classic event of type `ty` to `group`; returns how
    /// delivery went.
    fn send_event(
        &self,
        sock: &KernelSock,
        ty: MsgType,
        group: u32,
        origin: u32,
        seq: u64,
        payload: &[u8],
    ) -> Result<Delivery> {
        let hdr = EventHdr {
            group,
            origin,
            seq,
            timestamp_ns: crate::netlink::realtime_ns(),
        };
        let delivery = sock.broadcast(
            group,
            ty.raw(),
            seq as u32,
            &[&hdr.to_bytes(), payload],
            GFP_KERNEL,
        );
        Self::count_delivery(&self.stats, delivery)
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

// --- The generic netlink face ---------------------------------------------------
//
// The family `rustnl` of `shared/spec/rustnl.yaml`. The policies below are
// the spec's checks; the core validates every request against its
// operation's policy (strictly: unknown attributes, wrong lengths and
// trailing bytes are refused with the core's ext-ack) before the handler
// runs. What a policy cannot say (`groups`, `max_payload`, a required
// `group`) is `genl::classify`, shared with the host tests.

/// Policy of `echo`: `payload`.
static ECHO_POLICY: [AttrRule; 2] = [
    AttrRule::UNUSED,
    AttrRule::binary(genl::MAX_ATTR_PAYLOAD as u16),
];
/// Policy of `broadcast`: `payload`, `group` (1..=`max-groups`).
static BROADCAST_POLICY: [AttrRule; 3] = [
    AttrRule::UNUSED,
    AttrRule::binary(genl::MAX_ATTR_PAYLOAD as u16),
    AttrRule::u32_range(genl::GROUP_MIN as u16, genl::GROUP_MAX as u16),
];
// The policies index attributes by their spec ids.
const _: () = assert!(Attr::Payload.raw() == 1 && Attr::Group.raw() == 2);
const _: () = assert!(genl::GROUP_MAX <= i16::MAX as u32);

/// The family's name, as `genl.rs` spells it.
const FAMILY_NAME: &CStr = c"rustnl";
const _: () = {
    let (a, b) = (FAMILY_NAME.to_bytes_with_nul(), genl::FAMILY_NAME_NUL);
    assert!(a.len() == b.len());
    let mut i = 0;
    while i < a.len() {
        assert!(a[i] == b[i]);
        i += 1;
    }
};

impl GenlProtocol for Rustnl {
    const NAME: &'static CStr = FAMILY_NAME;
    const VERSION: u8 = genl::FAMILY_VERSION;
    const OPS: &'static [Op] = &[
        Op {
            cmd: Cmd::Echo.raw(),
            policy: &ECHO_POLICY,
        },
        Op {
            cmd: Cmd::Broadcast.raw(),
            policy: &BROADCAST_POLICY,
        },
        // Takes no attributes: no policy (the core does not parse any).
        Op {
            cmd: Cmd::GetInfo.raw(),
            policy: &[],
        },
    ];
    const MCAST_GROUPS: &'static [&'static CStr] = &[c"events", c"heartbeat"];

    fn permission(cmd: u8) -> Permission {
        match Cmd::from_raw(cmd) {
            Some(c) if c.uns_admin_perm() && !crate::config().open_broadcast => {
                Permission::NetAdmin
            }
            _ => Permission::Anyone,
        }
    }

    fn genl_request(&self, req: &Request<'_>) -> Result {
        self.genl.bump(Counter::Requests);
        let request = genl::Request {
            cmd: req.cmd(),
            payload: req.attr(Attr::Payload.raw()),
            group: req.attr_u32(Attr::Group.raw()),
        };
        match genl::classify(&request, &self.config.limits) {
            Ok(Action::Echo { payload }) => {
                self.genl.bump(Counter::Echoes);
                // The genl header and the attribute's as one part, the
                // padding only if there is any: each part costs a memcpy
                // call (~30 instructions of a 64 B echo, `make bench`).
                let nla = nla_header(Attr::Payload.raw(), payload.len()).ok_or(EMSGSIZE)?;
                let g = genl_header(Cmd::Echo);
                let head = [g[0], g[1], g[2], g[3], nla[0], nla[1], nla[2], nla[3]];
                match NLA_PAD.get(..nla_pad_len(payload.len())) {
                    Some(pad) if !pad.is_empty() => self.genl_answer(req, &[&head, payload, pad]),
                    _ => self.genl_answer(req, &[&head, payload]),
                }
            }
            Ok(Action::Broadcast { group, payload }) => self.genl_broadcast(req, group, payload),
            Ok(Action::GetInfo) => self.genl_info(req),
            Ok(Action::Noop) => Ok(()),
            Err(refusal) => Err(self.genl_refuse(req, refusal)),
        }
    }
}

impl Rustnl {
    /// Sends a generic netlink answer; counts and explains a failure.
    fn genl_answer(&self, req: &Request<'_>, parts: &[&[u8]]) -> Result {
        req.reply(parts).inspect_err(|e| {
            self.genl.bump(Counter::DeliveryFailures);
            if *e == ENOMEM {
                req.ext_ack(None, format_args!("cannot allocate the answer"));
            }
        })
    }

    /// A request the module refuses past the policy.
    #[cold]
    fn genl_refuse(&self, req: &Request<'_>, refusal: genl::Refusal) -> Error {
        self.genl.refused(refusal.kind());
        match refusal {
            genl::Refusal::Missing(attr) => req.missing_attr(attr.raw(), format_args!("{refusal}")),
            _ => req.ext_ack(refusal.bad_attr().map(Attr::raw), format_args!("{refusal}")),
        }
        errno(refusal.kind())
    }

    /// `broadcast`: the event to this namespace's `events` listeners, then
    /// the answer.
    #[inline(never)]
    fn genl_broadcast(&self, req: &Request<'_>, group: u32, payload: &[u8]) -> Result {
        self.genl.bump(Counter::Broadcasts);
        let seq = self.next_seq();
        let delivery = self
            .send_genl_event(req.net(), Cmd::Event, group, req.sender_portid(), seq, payload)
            .inspect_err(|e| {
                if *e == ENOMEM {
                    req.ext_ack(None, format_args!("cannot allocate the event"));
                }
            })?;
        let r = broadcast_result(group, seq, delivery);
        let mut buf = [0u8; 32];
        let mut w = AttrWriter::new(&mut buf);
        w.put_u32(Attr::Group.raw(), r.group)
            .and_then(|()| w.put_flag(Attr::Delivered.raw(), r.delivered))
            .and_then(|()| w.put_flag(Attr::DeliveryFailed.raw(), r.delivery_failed))
            .and_then(|()| w.put_uint(Attr::EventSeq.raw(), r.event_seq))
            .map_err(|_| EMSGSIZE)?;
        self.genl_answer(req, &[&genl_header(Cmd::Broadcast), w.bytes()])
    }

    /// `get-info`: configuration and both faces' counters.
    #[inline(never)]
    fn genl_info(&self, req: &Request<'_>) -> Result {
        let c = &self.config;
        let mut buf = [0u8; 320];
        let mut w = AttrWriter::new(&mut buf);
        w.put_u32(Attr::Version.raw(), PROTOCOL_VERSION)
            .and_then(|()| w.put_u32(Attr::Unit.raw(), c.unit))
            .and_then(|()| w.put_u32(Attr::Groups.raw(), c.limits.groups))
            .and_then(|()| w.put_u32(Attr::MaxPayload.raw(), c.limits.max_payload as u32))
            .and_then(|()| w.put_u32(Attr::HeartbeatMs.raw(), c.heartbeat_ms))
            .and_then(|()| w.put_flag(Attr::OpenBroadcast.raw(), c.open_broadcast))
            .and_then(|()| w.put_counters(Attr::ClassicCounters.raw(), &self.stats.snapshot()))
            .and_then(|()| w.put_counters(Attr::GenlCounters.raw(), &self.genl.snapshot()))
            .map_err(|_| EMSGSIZE)?;
        self.genl_answer(req, &[&genl_header(Cmd::GetInfo), w.bytes()])
    }

    /// Multicasts a generic netlink event (`event`, `heartbeat`, `goodbye`)
    /// to its group's listeners in this namespace; counts how it went on the
    /// generic netlink face.
    fn send_genl_event(
        &self,
        net: GenlNet<'_>,
        cmd: Cmd,
        group: u32,
        origin: u32,
        seq: u64,
        payload: &[u8],
    ) -> Result<Delivery> {
        let mut buf = [0u8; 48];
        let mut w = AttrWriter::new(&mut buf);
        w.put_u32(Attr::Group.raw(), group)
            .and_then(|()| w.put_u32(Attr::OriginPortid.raw(), origin))
            .and_then(|()| w.put_uint(Attr::EventSeq.raw(), seq))
            .and_then(|()| w.put_uint(Attr::TimestampNs.raw(), crate::netlink::realtime_ns()))
            .map_err(|_| EMSGSIZE)?;
        let mcgrp = cmd.mcast_group().map_or(0, McastGroup::index);
        let delivery = if cmd == Cmd::Goodbye {
            net.multicast(mcgrp, &[&genl_header(cmd), w.bytes()])
        } else {
            let hdr = nla_header(Attr::Payload.raw(), payload.len()).ok_or(EMSGSIZE)?;
            let pad = NLA_PAD.get(..nla_pad_len(payload.len())).unwrap_or(&[]);
            net.multicast(mcgrp, &[&genl_header(cmd), w.bytes(), &hdr, payload, pad])
        };
        Self::count_delivery(&self.genl, delivery)
    }
}
