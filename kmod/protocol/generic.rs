// SPDX-License-Identifier: GPL-2.0

//! The generic netlink face: the family `rustnl` of
//! `shared/spec/rustnl.yaml`.
//!
//! The core validates every request against its operation's policy
//! (strictly: unknown attributes, wrong lengths and trailing bytes are
//! refused with the core's ext-ack) before the handler runs. The policies
//! are built at compile time from the shared spec tables ([`Cmd::request`],
//! [`Attr::ty`], [`Attr::range`], [`Attr::max_len`]), so the kernel states
//! no check twice. What a policy cannot say (`groups`, `max_payload`, a
//! required `group`) is `genl::classify`, shared with the host tests.
//!
//! `set-groups` stores the sender's choice of numbered groups in the
//! family's per-socket memory; `broadcast` multicasts its event to the
//! `events` listeners that listen to its group only, so its answer says
//! what the classic face's says: whether a listener of that group got it.

use super::{broadcast_result, errno, Rustnl};
use crate::genl::{
    self, genl_header, nla_header, nla_pad_len, Attr, AttrType, AttrWriter, Cmd, CounterAttr,
    GroupSet, ListenGroups, McastGroup, Requested, NLA_PAD,
};
use crate::netlink::genl::{AttrRule, Op, Permission, Request, LISTEN_WORDS, NUMBERED_GROUPS};
use crate::netlink::{Delivery, GenlNet, GenlProtocol};
use crate::proto::{Action, PROTOCOL_VERSION};
use kernel::prelude::*;

/// Entries of `cmd`'s policy: its highest request attribute id plus one
/// (entry 0 is unused); 0 for an operation that takes no attributes.
const fn policy_len(cmd: Cmd) -> usize {
    let (attrs, mut i, mut max) = (cmd.request(), 0, 0);
    while i < attrs.len() {
        if attrs[i].raw() as usize > max {
            max = attrs[i].raw() as usize;
        }
        i += 1;
    }
    if attrs.is_empty() {
        0
    } else {
        max + 1
    }
}

/// The policy entry of one request attribute, from the spec tables.
const fn rule(attr: Attr) -> AttrRule {
    match (attr.ty(), attr.range(), attr.max_len()) {
        (AttrType::U32, Some((min, max)), _) if min <= u16::MAX as u32 && max <= u16::MAX as u32 => {
            AttrRule::u32_range(min as u16, max as u16)
        }
        (AttrType::Binary, _, Some(max)) if max <= u16::MAX as usize => {
            AttrRule::binary(max as u16)
        }
        // A request attribute the layer has no rule for: refused whole
        // (a compile-time check below keeps the spec within what it has).
        _ => AttrRule::REJECT,
    }
}

/// `cmd`'s policy, indexed by attribute id.
const fn policy<const N: usize>(cmd: Cmd) -> [AttrRule; N] {
    let mut p = [AttrRule::UNUSED; N];
    let (attrs, mut i) = (cmd.request(), 0);
    while i < attrs.len() {
        p[attrs[i].raw() as usize] = rule(attrs[i]);
        i += 1;
    }
    p
}

/// Whether every request attribute of `cmd` has a rule of its own.
const fn policy_complete(cmd: Cmd) -> bool {
    let (attrs, mut i) = (cmd.request(), 0);
    while i < attrs.len() {
        if rule(attrs[i]).is_reject() {
            return false;
        }
        i += 1;
    }
    true
}

// `MCAST_GROUPS` lists the groups in their index order.
const _: () = assert!(McastGroup::Events.index() == 0 && McastGroup::Heartbeat.index() == 1);

static ECHO_POLICY: [AttrRule; policy_len(Cmd::Echo)] = policy(Cmd::Echo);
static BROADCAST_POLICY: [AttrRule; policy_len(Cmd::Broadcast)] = policy(Cmd::Broadcast);
static SET_GROUPS_POLICY: [AttrRule; policy_len(Cmd::SetGroups)] = policy(Cmd::SetGroups);
const _: () = assert!(policy_complete(Cmd::Echo) && policy_complete(Cmd::Broadcast));
const _: () = assert!(policy_complete(Cmd::SetGroups));
const _: () = assert!(policy_len(Cmd::GetInfo) == 0);
// A socket's choice (`GroupSet`) is the layer's `Listening` bitmap.
const _: () = assert!(GroupSet::WORDS == LISTEN_WORDS && crate::proto::MAX_GROUPS == NUMBERED_GROUPS);

/// A spec name (with its NUL) as a C string, checked at compile time.
const fn c_name(bytes: &'static [u8]) -> &'static CStr {
    match CStr::from_bytes_with_nul(bytes) {
        Ok(name) => name,
        Err(_) => panic!("a spec name must end in its only NUL"),
    }
}

impl GenlProtocol for Rustnl {
    const NAME: &'static CStr = c_name(genl::FAMILY_NAME_NUL);
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
        Op {
            cmd: Cmd::SetGroups.raw(),
            policy: &SET_GROUPS_POLICY,
        },
    ];
    const MCAST_GROUPS: &'static [&'static CStr] = &[
        c_name(McastGroup::Events.name_nul()),
        c_name(McastGroup::Heartbeat.name_nul()),
    ];


    fn permission(cmd: u8) -> Permission {
        match Cmd::from_raw(cmd) {
            Some(c) if c.uns_admin_perm() && !crate::config().open_broadcast => {
                Permission::NetAdmin
            }
            _ => Permission::Anyone,
        }
    }

    fn genl_request(&self, req: &Request<'_>) -> Result {
        self.genl.bump(CounterAttr::Requests);
        let request = genl::Request {
            cmd: req.cmd(),
            payload: req.attr(Attr::Payload.raw()),
            group: req.attr_u32(Attr::Group.raw()),
            attrs: req.attrs(),
        };
        match genl::classify(&request, &self.config.limits) {
            Ok(Requested::Shared(Action::Echo { payload })) => {
                self.genl.bump(CounterAttr::Echoes);
                // The genl header and the attribute's as one fixed head
                // (plain stores), the padding only if there is any: each
                // part costs a memcpy call (~30 instructions of a 64 B
                // echo, `make bench-profile`).
                let nla = nla_header(Attr::Payload.raw(), payload.len()).ok_or(EMSGSIZE)?;
                let g = genl_header(Cmd::Echo);
                let head = [g[0], g[1], g[2], g[3], nla[0], nla[1], nla[2], nla[3]];
                match NLA_PAD.get(..nla_pad_len(payload.len())) {
                    Some(pad) if !pad.is_empty() => self.genl_answer(req, &head, &[payload, pad]),
                    _ => self.genl_answer(req, &head, &[payload]),
                }
            }
            Ok(Requested::Shared(Action::Broadcast { group, payload })) => {
                self.genl_broadcast(req, group, payload)
            }
            Ok(Requested::Shared(Action::GetInfo)) => self.genl_info(req),
            Ok(Requested::Shared(Action::Noop)) => Ok(()),
            Ok(Requested::SetGroups(groups)) => Self::genl_set_groups(req, groups),
            Err(refusal) => Err(self.genl_refuse(req, refusal)),
        }
    }
}

impl Rustnl {
    /// Sends a generic netlink answer; counts and explains a failure.
    fn genl_answer<const H: usize, const N: usize>(
        &self,
        req: &Request<'_>,
        head: &[u8; H],
        parts: &[&[u8]; N],
    ) -> Result {
        req.reply(head, parts).inspect_err(|e| {
            self.genl.bump(CounterAttr::DeliveryFailures);
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
            genl::Refusal::At { offset, .. } => req.ext_ack_at(offset, format_args!("{refusal}")),
            _ => req.ext_ack(refusal.bad_attr().map(Attr::raw), format_args!("{refusal}")),
        }
        errno(refusal.kind())
    }

    /// `set-groups`: the sender's socket listens to `groups` from now on
    /// (no reply; the core acks if asked).
    #[inline(never)]
    fn genl_set_groups(req: &Request<'_>, groups: ListenGroups<'_>) -> Result {
        let listening = req.sender_listening().inspect_err(|e| {
            if *e == ENOMEM {
                req.ext_ack(None, format_args!("cannot allocate the socket's groups"));
            }
        })?;
        listening.set(groups.set().words());
        Ok(())
    }

    /// `broadcast`: the event to this namespace's `events` listeners, then
    /// the answer.
    #[inline(never)]
    fn genl_broadcast(&self, req: &Request<'_>, group: u32, payload: &[u8]) -> Result {
        self.genl.bump(CounterAttr::Broadcasts);
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
        self.genl_answer(req, &genl_header(Cmd::Broadcast), &[w.bytes()])
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
        self.genl_answer(req, &genl_header(Cmd::GetInfo), &[w.bytes()])
    }

    /// Multicasts a generic netlink event (`event`, `heartbeat`, `goodbye`)
    /// to its group's listeners in this namespace; counts how it went on the
    /// generic netlink face. A broadcast's `event` goes to the listeners of
    /// its numbered `group` only (their choice, `set-groups`), as on the
    /// classic face, where numbered groups are netlink groups; heartbeats
    /// and the goodbye go to every `heartbeat` listener.
    pub(super) fn send_genl_event(
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
            let parts: &[&[u8]; 5] = &[&genl_header(cmd), w.bytes(), &hdr, payload, pad];
            if cmd == Cmd::Event {
                net.multicast_numbered(mcgrp, group, parts)
            } else {
                net.multicast(mcgrp, parts)
            }
        };
        Self::count_delivery(&self.genl, delivery)
    }
}
