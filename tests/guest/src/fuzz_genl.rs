//! Kernel input fuzzer for the generic netlink face: hostile datagrams to
//! the family `rustnl` from several sockets, threads and an unprivileged
//! process, every answer checked against a model of the whole path.
//!
//! The model is the netlink core as 7.3 implements it for a generic netlink
//! family — `netlink_rcv_skb` (which messages are looked at, which only get
//! an ack, where a bad length stops the datagram without an answer),
//! `genl_family_rcv_msg` (the header checks of a family with
//! `resv_start_op` 0, the operation lookup, `uns-admin-perm`),
//! `__nla_parse` with the operations' policies in strict mode (texts,
//! offsets) and `netlink_ack`'s exact layout — followed by the module's own
//! checks, `genl::classify`, the code the module compiles. Echo replies are
//! compared byte for byte; `broadcast` and `get-info` replies attribute by
//! attribute (their counters and sequence numbers are the kernel's); the
//! policy description the core appends to some errors
//! (`NLMSGERR_ATTR_POLICY`, with `NLA_F_NESTED`) must be one well-formed
//! nest, the rest of the
//! error byte for byte.
//!
//! Seeded and reproducible, like the classic fuzzer: thread `i` draws from
//! `seed + i`, the unprivileged child from `seed + THREADS`.

use crate::fuzz::{
    errno_of, expect_answers, hex, recv_buffer, truesize, Rng, Tally, EXT_ACK_TEXT_MAX,
};
use crate::genl::{attr_map, attr_map_with, Answer};
use rustnl::proto::genl::{
    classify, Attr, Cmd, CounterAttr, Refusal, Request, Requested, GROUP_MAX, GROUP_MIN,
    MAX_ATTR_PAYLOAD,
};
use rustnl::proto::{
    nlmsg_align, Action, Limits, NlMsgHdr, DEFAULT_MAX_PAYLOAD, DEFAULT_UNIT,
    NLMSGERR_ATTR_MISS_TYPE, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS, NLMSG_ERROR, NLMSG_HDRLEN,
    NLMSG_NOOP, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_ECHO, NLM_F_REQUEST,
    PROTOCOL_VERSION,
};
use rustnl::Socket;
use std::time::Duration;

/// Root fuzzing threads (one more, unprivileged, runs as a child process).
pub const THREADS: u64 = 2;
/// `NETLINK_GENERIC`.
const NETLINK_GENERIC: u32 = 16;
/// `NLMSGERR_ATTR_POLICY`.
const NLMSGERR_ATTR_POLICY: u16 = 4;
const NLA_F_NESTED: u16 = 1 << 15;
/// `NLA_TYPE_MASK`: the type without `NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`.
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | (1 << 14));
/// `GENL_HDRLEN`.
const GENL_HDRLEN: usize = 4;
/// Family ids nobody registers (the kernel allocates them upwards from
/// 0x13, one more at each registration).
const UNUSED_IDS: (u16, u16) = (0x7000, 0x7fff);

/// What the family is configured with and who the sender is.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub id: u16,
    pub limits: Limits,
    pub net_admin: bool,
    pub ext_ack: bool,
    pub cap_ack: bool,
    pub portid: u32,
    /// The ids of the kernel's other families (nlctrl's among them): what
    /// they answer is not modelled, so datagrams that reach one are drawn
    /// again (random bytes can).
    pub others: &'static [u16],
}

/// An error as `netlink_ack` writes it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Ack {
    errno: i32,
    text: Option<String>,
    /// `NLMSGERR_ATTR_OFFS`: offset from the request's header.
    offset: Option<u32>,
    /// An `NLMSGERR_ATTR_POLICY` nest follows (the core's policy errors).
    policy: bool,
    miss_type: Option<u16>,
}

impl Ack {
    fn err(errno: i32) -> Ack {
        Ack {
            errno,
            ..Ack::default()
        }
    }
    fn text(errno: i32, text: &str) -> Ack {
        Ack {
            errno,
            text: Some(text.to_string()),
            ..Ack::default()
        }
    }
}

/// One answer the kernel must send, in order.
#[derive(Debug)]
enum Expect {
    Echo { seq: u32, payload: Vec<u8> },
    Broadcast { seq: u32, group: u32 },
    Info { seq: u32 },
    Error { ack: Ack, request: Vec<u8> },
}

/// The attributes the kernel's parse keeps, by type (the last of each).
type Tb<'a> = [Option<&'a [u8]>; Attr::MAX as usize + 1];

/// `__nla_parse` (strict) of `attrs` with `cmd`'s policy; `at` is the
/// offset of `attrs` in the message. The attributes it keeps (the last of
/// each type) or the error.
fn parse_attrs(cmd: Cmd, attrs: &[u8], at: usize) -> Result<Tb<'_>, Ack> {
    // maxattr: the highest attribute of the operation's policy; get-info
    // has the core's reject-all policy (0). Types below it that the
    // operation does not take are NLA_UNSPEC holes.
    let policy = cmd.request();
    let maxtype: u16 = policy.iter().map(|a| a.raw()).max().unwrap_or(0);
    let mut tb: Tb<'_> = [None; Attr::MAX as usize + 1];
    let mut pos = 0usize;
    let mut rem = attrs.len() as isize;
    while let Some(h) = attrs.get(pos..pos + 4) {
        if rem < 4 {
            break;
        }
        let len = usize::from(u16::from_ne_bytes([h[0], h[1]]));
        let raw_ty = u16::from_ne_bytes([h[2], h[3]]);
        if len < 4 || len as isize > rem {
            break;
        }
        let ty = raw_ty & NLA_TYPE_MASK;
        let off = Some((at + pos) as u32);
        if ty == 0 || ty > maxtype {
            return Err(Ack {
                offset: off,
                ..Ack::text(libc::EINVAL, "Unknown attribute type")
            });
        }
        let payload = &attrs[pos + 4..pos + len];
        let pol = |errno, text: &str| Ack {
            offset: off,
            policy: true,
            ..Ack::text(errno, text)
        };
        if !policy.iter().any(|a| a.raw() == ty) {
            // NLA_UNSPEC under NL_VALIDATE_UNSPEC: no policy description.
            return Err(Ack {
                offset: off,
                ..Ack::text(libc::EINVAL, "Unsupported attribute")
            });
        }
        // Both ranged u32s: group, listen-group.
        let ranged = ty == Attr::Group.raw() || ty == Attr::ListenGroup.raw();
        if ranged && payload.len() != 4 {
            return Err(pol(libc::EINVAL, "invalid attribute length"));
        }
        if raw_ty & NLA_F_NESTED != 0 {
            return Err(pol(libc::EINVAL, "NLA_F_NESTED not expected"));
        }
        if ty == Attr::Payload.raw() && payload.len() > MAX_ATTR_PAYLOAD {
            return Err(pol(libc::ERANGE, "Attribute failed policy validation"));
        }
        if ranged {
            let v = u32::from_ne_bytes(payload.try_into().unwrap_or_default());
            if !(GROUP_MIN..=GROUP_MAX).contains(&v) {
                return Err(pol(libc::ERANGE, "integer out of range"));
            }
        }
        tb[usize::from(ty)] = Some(payload);
        let total = (len + 3) & !3;
        pos += total;
        rem -= total as isize;
    }
    if rem > 0 {
        return Err(Ack::text(
            libc::EINVAL,
            "bytes leftover after parsing attributes",
        ));
    }
    Ok(tb)
}

/// `genl_rcv_msg` and the module for one message addressed to a family id:
/// the reply, if any, or the error.
fn genl_message(msg: &[u8], h: &NlMsgHdr, t: &Target) -> Result<Option<Expect>, Ack> {
    if h.ty != t.id {
        return Err(Ack::err(libc::ENOENT));
    }
    if msg.len() < NLMSG_HDRLEN + GENL_HDRLEN {
        return Err(Ack::err(libc::EINVAL));
    }
    let g = &msg[NLMSG_HDRLEN..NLMSG_HDRLEN + GENL_HDRLEN];
    if g[2] != 0 || g[3] != 0 {
        return Err(Ack::text(
            libc::EINVAL,
            "genlmsghdr.reserved field is not 0",
        ));
    }
    let dump = h.flags & NLM_F_DUMP == NLM_F_DUMP;
    let rest = if dump { h.flags & !NLM_F_DUMP } else { h.flags };
    if rest & !(NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO) != 0 {
        return Err(Ack::text(
            libc::EINVAL,
            "ambiguous or reserved bits set in nlmsg_flags",
        ));
    }
    let cmd = match Cmd::from_raw(g[0]) {
        Some(c) if !c.is_event() && !dump => c,
        _ => return Err(Ack::err(libc::EOPNOTSUPP)),
    };
    if cmd.uns_admin_perm() && !t.net_admin {
        return Err(Ack::err(libc::EPERM));
    }
    let at = NLMSG_HDRLEN + GENL_HDRLEN;
    let tb = parse_attrs(cmd, &msg[at..], at)?;
    let req = Request {
        cmd: cmd.raw(),
        payload: tb[usize::from(Attr::Payload.raw())],
        group: tb[usize::from(Attr::Group.raw())]
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes),
        attrs: &msg[at..],
    };
    let seq = h.seq;
    match classify(&req, &t.limits) {
        Ok(Requested::Shared(Action::Echo { payload })) => Ok(Some(Expect::Echo {
            seq,
            payload: payload.to_vec(),
        })),
        Ok(Requested::Shared(Action::Broadcast { group, .. })) => {
            Ok(Some(Expect::Broadcast { seq, group }))
        }
        Ok(Requested::Shared(Action::GetInfo)) => Ok(Some(Expect::Info { seq })),
        // set-groups has no reply: the ack, if asked for.
        Ok(Requested::Shared(Action::Noop) | Requested::SetGroups(_)) => Ok(None),
        Err(r) => {
            let mut ack = Ack::text(errno_of(r.kind()), &r.to_string());
            match r {
                Refusal::Missing(a) => ack.miss_type = Some(a.raw()),
                // One of several listen-groups: where it starts.
                Refusal::At { offset, .. } => ack.offset = Some((at + offset) as u32),
                _ => {
                    // The attribute the core kept (the last of its type).
                    ack.offset = r.bad_attr().and_then(|a| {
                        let p = tb[usize::from(a.raw())]?;
                        let start = p.as_ptr() as usize - msg.as_ptr() as usize - 4;
                        Some(start as u32)
                    });
                }
            }
            Err(ack)
        }
    }
}

/// `netlink_rcv_skb` over `datagram`: the answers in order, and how many
/// messages the core looked at; `None` if a message goes to another
/// family (`Target::others`).
fn model(datagram: &[u8], t: &Target) -> Option<(Vec<Expect>, usize)> {
    let mut out = Vec::new();
    let mut seen = 0;
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let Some(h) = NlMsgHdr::parse(rest) else {
            break;
        };
        let len = h.len as usize;
        if len < NLMSG_HDRLEN || rest.len() < len {
            // The core stops here, without an answer.
            break;
        }
        let msg = &rest[..len];
        seen += 1;
        let result = if h.flags & NLM_F_REQUEST == 0 || h.ty < 0x10 {
            Ok(None)
        } else if t.others.contains(&h.ty) {
            return None;
        } else {
            genl_message(msg, &h, t)
        };
        match result {
            Ok(reply) => {
                out.extend(reply);
                if h.flags & NLM_F_ACK != 0 {
                    out.push(Expect::Error {
                        ack: Ack::err(0),
                        request: msg.to_vec(),
                    });
                }
            }
            Err(ack) => out.push(Expect::Error {
                ack,
                request: msg.to_vec(),
            }),
        }
        rest = &rest[nlmsg_align(len).min(rest.len())..];
    }
    Some((out, seen))
}

fn put_attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    out.extend(((payload.len() + 4) as u16).to_ne_bytes());
    out.extend(ty.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(nlmsg_align(out.len()), 0);
}

/// The `NLMSG_ERROR` as `netlink_ack` builds it, without the policy nest
/// (the checker takes that apart).
fn error_bytes(ack: &Ack, request: &[u8], t: &Target) -> Vec<u8> {
    let err = ack.errno != 0;
    let capped = !err || t.cap_ack;
    let mut tlvs = Vec::new();
    if t.ext_ack {
        if let Some(s) = ack.text.as_deref().filter(|_| err) {
            let mut end = s.len().min(EXT_ACK_TEXT_MAX);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            let mut v = s.as_bytes()[..end].to_vec();
            v.push(0);
            put_attr(&mut tlvs, NLMSGERR_ATTR_MSG, &v);
        }
        if err {
            if let Some(o) = ack.offset {
                put_attr(&mut tlvs, NLMSGERR_ATTR_OFFS, &o.to_ne_bytes());
            }
            if let Some(m) = ack.miss_type {
                put_attr(
                    &mut tlvs,
                    NLMSGERR_ATTR_MISS_TYPE,
                    &u32::from(m).to_ne_bytes(),
                );
            }
        }
    }
    let policy = t.ext_ack && err && ack.policy;
    let mut flags = 0;
    if capped {
        flags |= NLM_F_CAPPED;
    }
    if !tlvs.is_empty() || policy {
        flags |= NLM_F_ACK_TLVS;
    }
    let req_hdr = NlMsgHdr::parse(request).unwrap_or_default();
    let mut body = (-ack.errno).to_ne_bytes().to_vec();
    body.extend_from_slice(&request[..NLMSG_HDRLEN]);
    if !capped {
        body.extend_from_slice(&request[NLMSG_HDRLEN..]);
        body.resize(nlmsg_align(body.len()), 0);
    }
    body.extend(tlvs);
    let h = NlMsgHdr {
        len: (NLMSG_HDRLEN + body.len()) as u32,
        ty: NLMSG_ERROR,
        flags,
        seq: req_hdr.seq,
        pid: t.portid,
    };
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A reply's header: the family's type, no flags, the request's seq, to
/// the sender.
fn reply_header(len: usize, seq: u32, t: &Target) -> [u8; NLMSG_HDRLEN] {
    NlMsgHdr {
        len: len as u32,
        ty: t.id,
        flags: 0,
        seq,
        pid: t.portid,
    }
    .to_bytes()
}

fn check(got: &[u8], want: &Expect, t: &Target) -> Result<(), String> {
    match want {
        Expect::Error { ack, request } => {
            let exact = error_bytes(ack, request, t);
            if !(t.ext_ack && ack.errno != 0 && ack.policy) {
                if got != exact.as_slice() {
                    return Err(format!(
                        "NLMSG_ERROR {ack:?} differs:\n      want {}\n      got  {}",
                        hex(&exact),
                        hex(got)
                    ));
                }
                return Ok(());
            }
            // The policy nest follows the known TLVs: the header matches
            // but for its length, the body up to the nest byte for byte,
            // then one nest to the end.
            let n = exact.len();
            let h = NlMsgHdr::parse(got).ok_or("short error")?;
            let mut want_hdr = NlMsgHdr::parse(&exact).ok_or("model")?;
            want_hdr.len = got.len() as u32;
            if h != want_hdr || got.get(NLMSG_HDRLEN..n) != exact.get(NLMSG_HDRLEN..n) {
                return Err(format!(
                    "NLMSG_ERROR {ack:?} differs before the policy nest:\n      want {} + policy\n      got  {}",
                    hex(&exact),
                    hex(got)
                ));
            }
            let nest = &got[n..];
            // netlink_policy_dump_write_attr() opens it with
            // nla_nest_start(): NLA_F_NESTED set.
            let a = attr_map_with(nest, |t| t == NLMSGERR_ATTR_POLICY)
                .map_err(|e| format!("policy nest: {e}"))?;
            let ok = a.len() == 1
                && a.keys().all(|&k| k == NLMSGERR_ATTR_POLICY)
                && a.values()
                    .all(|v| attr_map_with(v, |_| false).is_ok_and(|inner| !inner.is_empty()));
            if !ok {
                return Err(format!("policy nest malformed: {}", hex(nest)));
            }
        }
        Expect::Echo { seq, payload } => {
            let mut attrs = Vec::new();
            put_attr(&mut attrs, Attr::Payload.raw(), payload);
            // nlmsg_len counts the attribute's padding (nla_put reserves
            // NLA_ALIGN(len), nlmsg_end measures to the tail).
            let len = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
            let mut exact = reply_header(len, *seq, t).to_vec();
            exact.extend([Cmd::Echo.raw(), 1, 0, 0]);
            exact.extend(attrs);
            if got != exact.as_slice() {
                return Err(format!(
                    "echo reply differs:\n      want {}\n      got  {}",
                    hex(&exact),
                    hex(got)
                ));
            }
        }
        Expect::Broadcast { seq, group } => {
            let a = reply_attrs(got, *seq, Cmd::Broadcast, t)?;
            let event_seq = a.get(&Attr::EventSeq.raw()).map(|b| uint(b));
            let ok = a.get(&Attr::Group.raw()).map(Vec::as_slice) == Some(&group.to_ne_bytes()[..])
                && matches!(event_seq, Some(Some(s)) if s > 0)
                && !(a.contains_key(&Attr::Delivered.raw())
                    && a.contains_key(&Attr::DeliveryFailed.raw()))
                && a.iter().all(|(k, v)| match Attr::from_raw(*k) {
                    Some(Attr::Delivered | Attr::DeliveryFailed) => v.is_empty(),
                    Some(Attr::Group | Attr::EventSeq) => true,
                    _ => false,
                });
            if !ok {
                return Err(format!("broadcast reply for group {group}: {a:?}"));
            }
        }
        Expect::Info { seq } => {
            let a = reply_attrs(got, *seq, Cmd::GetInfo, t)?;
            let u = |x: Attr| a.get(&x.raw()).map(Vec::as_slice);
            let known = [
                (Attr::Version, PROTOCOL_VERSION),
                (Attr::Unit, DEFAULT_UNIT),
                (Attr::Groups, t.limits.groups),
                (Attr::MaxPayload, t.limits.max_payload as u32),
            ];
            let mut ok = known
                .iter()
                .all(|(x, v)| u(*x) == Some(&v.to_ne_bytes()[..]))
                && u(Attr::HeartbeatMs).is_some_and(|b| b.len() == 4)
                && u(Attr::OpenBroadcast).is_none();
            for c in [Attr::ClassicCounters, Attr::GenlCounters] {
                let inner = a.get(&c.raw()).map(|b| attr_map_with(b, |_| false));
                ok &= matches!(&inner, Some(Ok(m)) if m.len() == CounterAttr::ALL.len()
                    && CounterAttr::ALL.iter().all(|k| m.get(&k.raw()).is_some_and(|v| uint(v).is_some())));
            }
            ok &= a.len() == 7;
            if !ok {
                return Err(format!("get-info reply: {a:?}"));
            }
        }
    }
    Ok(())
}

/// A YNL `uint`.
fn uint(b: &[u8]) -> Option<u64> {
    match b.len() {
        4 => Some(u64::from(u32::from_ne_bytes(b.try_into().ok()?))),
        8 => Some(u64::from_ne_bytes(b.try_into().ok()?)).filter(|&v| v > u64::from(u32::MAX)),
        _ => None,
    }
}

/// The attributes of a reply of command `cmd`, after checking its headers.
fn reply_attrs(
    got: &[u8],
    seq: u32,
    cmd: Cmd,
    t: &Target,
) -> Result<std::collections::BTreeMap<u16, Vec<u8>>, String> {
    let hdr = reply_header(got.len(), seq, t);
    if got.get(..NLMSG_HDRLEN) != Some(&hdr[..])
        || got.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4) != Some(&[cmd.raw(), 1, 0, 0][..])
    {
        return Err(format!("{} reply header differs: {}", cmd.name(), hex(got)));
    }
    attr_map(&got[NLMSG_HDRLEN + 4..])
        .map_err(|e| format!("{} reply: {e}: {}", cmd.name(), hex(got)))
}

// ---------------------------------------------------------------------------
// Generator

struct Gen {
    rng: Rng,
    seq: u32,
    id: u16,
}

impl Gen {
    fn payload_len(&mut self) -> usize {
        match self.rng.below(100) {
            0..=39 => self.rng.range(0, 16),
            40..=79 => self.rng.range(17, 256),
            80..=95 => self.rng.range(257, 4096),
            96..=98 => self.rng.range(4097, 16384),
            _ => self.rng.range(MAX_ATTR_PAYLOAD - 4, MAX_ATTR_PAYLOAD),
        }
    }

    fn group_value(&mut self) -> u32 {
        match self.rng.below(100) {
            0..=59 => self.rng.range(1, 32) as u32,
            60..=69 => 0,
            70..=79 => self.rng.range(33, GROUP_MAX as usize) as u32,
            80..=84 => GROUP_MAX + 1,
            _ => self.rng.next() as u32,
        }
    }

    /// One attribute, good or bad.
    fn attr(&mut self, out: &mut Vec<u8>) {
        let r = &mut self.rng;
        let (mut ty, payload): (u16, Vec<u8>) = match r.below(100) {
            0..=49 => {
                let n = self.payload_len();
                (Attr::Payload.raw(), self.rng.bytes(n))
            }
            50..=74 => {
                let v = self.group_value();
                let mut p = v.to_ne_bytes().to_vec();
                if self.rng.chance(10) {
                    let n = [0usize, 1, 2, 3, 5, 8][self.rng.below(6) as usize];
                    p.resize(n, 0);
                }
                // set-groups takes several listen-groups, broadcast a group.
                let ty = if self.rng.chance(40) {
                    Attr::ListenGroup
                } else {
                    Attr::Group
                };
                (ty.raw(), p)
            }
            75..=89 => {
                let ty = self.rng.range(0, usize::from(Attr::MAX) + 2) as u16;
                let n = self.rng.range(0, 12);
                (ty, self.rng.bytes(n))
            }
            _ => {
                let ty = self.rng.next() as u16 & !(1 << 14);
                let n = self.rng.range(0, 12);
                (ty, self.rng.bytes(n))
            }
        };
        if self.rng.chance(3) {
            ty |= NLA_F_NESTED;
        }
        let mut len = payload.len() + 4;
        if self.rng.chance(4) {
            // nla_len off: too small, past the end, or truncated to 16 bits.
            len = match self.rng.below(3) {
                0 => self.rng.range(0, 3),
                1 => len + self.rng.range(1, 64),
                _ => len & 0xffff,
            };
        }
        out.extend((len as u16).to_ne_bytes());
        out.extend(ty.to_ne_bytes());
        out.extend_from_slice(&payload);
        let pad = nlmsg_align(out.len()) - out.len();
        if self.rng.chance(97) {
            out.extend(std::iter::repeat_n(0, pad));
        } else {
            let junk = self.rng.bytes(pad);
            out.extend(junk);
        }
    }

    fn message(&mut self, out: &mut Vec<u8>) {
        let r = &mut self.rng;
        let ty = match r.below(100) {
            0..=87 => self.id,
            88..=93 => r.range(usize::from(UNUSED_IDS.0), usize::from(UNUSED_IDS.1)) as u16,
            _ => [NLMSG_NOOP, 0, 0x2, 0x3, 0xf][r.below(5) as usize],
        };
        let mut flags = if r.chance(92) { NLM_F_REQUEST } else { 0 };
        if r.chance(30) {
            flags |= NLM_F_ACK;
        }
        if r.chance(5) {
            flags |= NLM_F_ECHO;
        }
        if r.chance(3) {
            flags |= NLM_F_DUMP;
        }
        if r.chance(3) {
            flags |= r.next() as u16;
        }
        let cmd = match r.below(100) {
            0..=39 => Cmd::Echo.raw(),
            40..=64 => Cmd::Broadcast.raw(),
            65..=74 => Cmd::GetInfo.raw(),
            75..=84 => Cmd::SetGroups.raw(),
            85..=94 => [0u8, 4, 5, 6, Cmd::MAX + 1][r.below(5) as usize],
            _ => r.next() as u8,
        };
        let version = if r.chance(90) { 1 } else { r.next() as u8 };
        let reserved: u16 = if r.chance(3) { r.next() as u16 | 1 } else { 0 };
        self.seq = self.seq.wrapping_add(1);
        let seq = if self.rng.chance(3) {
            self.rng.next() as u32
        } else {
            self.seq
        };
        let pid = if self.rng.chance(80) {
            0
        } else {
            self.rng.next() as u32
        };
        let mut body = vec![cmd, version];
        body.extend(reserved.to_ne_bytes());
        let n = match self.rng.below(10) {
            0 => 0,
            1..=6 => 1,
            7..=8 => 2,
            _ => self.rng.range(3, 5),
        };
        for _ in 0..n {
            self.attr(&mut body);
        }
        if self.rng.chance(3) {
            let n = self.rng.range(1, 7);
            body.extend(self.rng.bytes(n));
        }
        if self.rng.chance(2) {
            let keep = self.rng.range(0, body.len());
            body.truncate(keep);
        }
        let true_len = NLMSG_HDRLEN + body.len();
        let len = if self.rng.chance(95) {
            true_len as u32
        } else {
            match self.rng.below(5) {
                0 => self.rng.range(0, NLMSG_HDRLEN - 1) as u32,
                1 => self.rng.range(NLMSG_HDRLEN, NLMSG_HDRLEN + GENL_HDRLEN) as u32,
                2 => (true_len + self.rng.range(1, 64)) as u32,
                3 => true_len
                    .saturating_sub(self.rng.range(1, 8))
                    .max(NLMSG_HDRLEN) as u32,
                _ => self.rng.next() as u32,
            }
        };
        let h = NlMsgHdr {
            len,
            ty,
            flags,
            seq,
            pid,
        };
        out.extend_from_slice(&h.to_bytes());
        out.extend_from_slice(&body);
        let pad = nlmsg_align(out.len()) - out.len();
        out.extend(std::iter::repeat_n(0, pad));
    }

    fn datagram(&mut self, count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        match self.rng.below(100) {
            0..=4 => {
                let n = self.rng.range(1, 200);
                out = self.rng.bytes(n);
            }
            _ => {
                let n = match self.rng.below(10) {
                    0..=6 => self.rng.range(1, 6),
                    7..=8 => self.rng.range(7, 24),
                    _ => count,
                };
                for _ in 0..n.min(count) {
                    self.message(&mut out);
                }
                if self.rng.chance(4) && !out.is_empty() {
                    let keep = self.rng.range(0, out.len() - 1);
                    out.truncate(keep);
                }
            }
        }
        out
    }
}

/// Sends at least `messages` messages to the family on a fresh socket and
/// checks every answer.
pub fn fuzz_socket(
    others: &'static [u16],
    seed: u64,
    messages: u64,
    id: u16,
    net_admin: bool,
    who: &str,
) -> Result<Tally, String> {
    let mut setup = Rng::new(seed ^ 0x6E11);
    let ext_ack = setup.chance(75);
    let cap_ack = setup.chance(30);
    let mut sock = Socket::open(NETLINK_GENERIC).map_err(|e| format!("{who}: open: {e}"))?;
    sock.set_ext_ack(ext_ack).map_err(|e| e.to_string())?;
    sock.set_cap_ack(cap_ack).map_err(|e| e.to_string())?;
    sock.set_recv_buffer_size(4 << 20)
        .map_err(|e| e.to_string())?;
    sock.set_recv_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let rcvbuf = recv_buffer(&sock)?;
    let t = Target {
        id,
        limits: Limits {
            max_payload: DEFAULT_MAX_PAYLOAD,
            groups: rustnl::proto::DEFAULT_GROUPS,
        },
        net_admin,
        ext_ack,
        cap_ack,
        portid: sock.port_id(),
        others,
    };
    let mut gen = Gen {
        rng: Rng::new(seed),
        seq: 0,
        id,
    };
    let mut tally = Tally::default();
    let budget = rcvbuf / 2;
    while tally.messages < messages {
        let mut count = 48;
        let (dgram, expect, seen) = loop {
            let d = gen.datagram(count);
            let Some((e, n)) = model(&d, &t) else {
                continue;
            };
            let charge: usize = e
                .iter()
                .map(|x| match x {
                    Expect::Echo { payload, .. } => truesize(NLMSG_HDRLEN + 8 + payload.len()),
                    Expect::Error { request, .. } => truesize(request.len() + 400),
                    _ => truesize(400),
                })
                .sum();
            if charge <= budget && d.len() <= 200_000 {
                break (d, e, n);
            }
            count = (count / 2).max(1);
        };
        let index = tally.datagrams;
        let fail = |why: String| {
            format!(
                "{who} (seed {seed}, ext_ack {ext_ack}, cap_ack {cap_ack}), genl datagram {index} ({} bytes): {why}\n      datagram {}",
                dgram.len(),
                hex(&dgram)
            )
        };
        if dgram.len() < NLMSG_HDRLEN {
            // Shorter than a header: the core looks at nothing (an empty
            // datagram is refused at send, ENODATA).
            match sock.send(&dgram) {
                Ok(()) if !dgram.is_empty() => {}
                Err(e) if dgram.is_empty() && e.errno() == Some(libc::ENODATA) => {}
                other => return Err(fail(format!("short datagram: {other:?}"))),
            }
            tally.datagrams += 1;
            continue;
        }
        sock.send(&dgram).map_err(|e| fail(format!("send: {e}")))?;
        expect_answers(&mut sock, expect.len(), |k, msg| {
            // The message itself (nlmsg_len need not count the padding,
            // which must be zero too).
            let h = NlMsgHdr::parse(msg).ok_or("short message")?;
            let len = (h.len as usize).min(msg.len());
            if msg[len..].iter().any(|&b| b != 0) {
                return Err("padding not zeroed".into());
            }
            check(&msg[..len], &expect[k], &t)
        })
        .map_err(fail)?;
        tally.datagrams += 1;
        tally.messages += seen as u64;
        tally.answers += expect.len() as u64;
        if tally.datagrams % 256 == 0 || tally.messages >= messages {
            // Nothing extra was queued: a NOOP's ack is the very next answer.
            let seq = 0x7000_0000 | (tally.datagrams as u32 & 0xffff);
            let h = NlMsgHdr {
                len: NLMSG_HDRLEN as u32,
                ty: NLMSG_NOOP,
                flags: NLM_F_REQUEST | NLM_F_ACK,
                seq,
                pid: 0,
            };
            sock.send(&h.to_bytes()).map_err(|e| fail(e.to_string()))?;
            let d = sock
                .recv()
                .map_err(|e| fail(format!("sentinel ack: {e}")))?;
            let want = Expect::Error {
                ack: Ack::err(0),
                request: h.to_bytes().to_vec(),
            };
            check(d.bytes, &want, &t)
                .map_err(|e| fail(format!("sentinel (an extra answer was queued?): {e}")))?;
            tally.answers += 1;
        }
    }
    // A plain echo still works on a fresh socket.
    let mut raw = crate::genl::Raw::with_id(id)?;
    match raw.exchange(
        Cmd::Echo.raw(),
        &crate::genl::echo_attrs(b"after the fuzzing"),
    )? {
        Answer::Reply { attrs, .. } if attrs == crate::genl::echo_attrs(b"after the fuzzing") => {
            Ok(tally)
        }
        other => Err(format!("{who}: echo after fuzzing: {other:?}")),
    }
}

/// The whole genl fuzzer: `THREADS` root sockets and one unprivileged
/// child, about `messages` messages to the family's handler path in all.
pub fn run(seed: u64, messages: u64) -> Result<Tally, String> {
    std::fs::write("/proc/sys/net/core/rmem_max", (8u32 << 20).to_string())
        .map_err(|e| format!("raising rmem_max: {e}"))?;
    let id = crate::genl::family()?.id;
    let others = other_families(id)?;
    let list: Vec<String> = others.iter().map(u16::to_string).collect();
    let share = messages.div_ceil(THREADS + 1);
    let child = crate::children::spawn_child(
        crate::children::Role::FuzzGenl,
        &[
            &(seed + THREADS).to_string(),
            &format!("{share}:{id}:{}", list.join(",")),
        ],
    )?;
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            std::thread::spawn(move || {
                fuzz_socket(
                    others,
                    seed + i,
                    share,
                    id,
                    true,
                    &format!("root thread {i}"),
                )
            })
        })
        .collect();
    crate::fuzz::gather(threads, child)
}

/// The ids of the kernel's generic netlink families other than `ours`.
fn other_families(ours: u16) -> Result<&'static [u16], String> {
    let all = rustnl::genl::GenlSocket::open()
        .and_then(|mut g| g.families())
        .map_err(|e| format!("listing the genl families: {e}"))?;
    let v: Vec<u16> = all.iter().map(|f| f.id).filter(|&i| i != ours).collect();
    Ok(Box::leak(v.into_boxed_slice()))
}

/// The unprivileged child (`--child fuzz-genl SEED MESSAGES:ID:OTHER,IDS`).
pub fn child(seed: &str, arg: &str) -> Result<(), String> {
    let seed: u64 = seed.parse().map_err(|_| "bad seed")?;
    let mut parts = arg.split(':');
    let (Some(m), Some(id), Some(list)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("bad argument".into());
    };
    let messages: u64 = m.parse().map_err(|_| "bad message count")?;
    let id: u16 = id.parse().map_err(|_| "bad family id")?;
    let others: Vec<u16> = list
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().map_err(|_| "bad family list"))
        .collect::<Result<_, _>>()?;
    crate::drop_privileges()?;
    let others: &'static [u16] = Box::leak(others.into_boxed_slice());
    let t = fuzz_socket(others, seed, messages, id, false, "unprivileged process")?;
    t.print();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            id: 0x20,
            limits: Limits::default(),
            net_admin: true,
            ext_ack: true,
            cap_ack: false,
            portid: 77,
            others: &[0x10],
        }
    }

    fn msg(flags: u16, genl: [u8; 4], attrs: &[u8]) -> Vec<u8> {
        let mut m = NlMsgHdr {
            len: (NLMSG_HDRLEN + 4 + attrs.len()) as u32,
            ty: 0x20,
            flags,
            seq: 9,
            pid: 0,
        }
        .to_bytes()
        .to_vec();
        m.extend(genl);
        m.extend_from_slice(attrs);
        m
    }

    #[test]
    fn echo_with_ack_is_reply_then_ack() {
        let mut a = Vec::new();
        put_attr(&mut a, 1, b"abc");
        let m = msg(NLM_F_REQUEST | NLM_F_ACK, [1, 1, 0, 0], &a);
        let (e, n) = model(&m, &target()).unwrap();
        assert_eq!(n, 1);
        assert!(
            matches!(&e[..], [Expect::Echo { payload, .. }, Expect::Error { ack, .. }] if payload == b"abc" && ack.errno == 0)
        );
        let mut reply = reply_header(28, 9, &target()).to_vec();
        reply.extend([1, 1, 0, 0, 7, 0, 1, 0, b'a', b'b', b'c', 0]);
        assert_eq!(check(&reply, &e[0], &target()), Ok(()));
    }

    #[test]
    fn policy_errors_have_offsets() {
        let mut a = Vec::new();
        put_attr(&mut a, 1, b"x");
        put_attr(&mut a, 2, &0u32.to_ne_bytes());
        let m = msg(NLM_F_REQUEST, [2, 1, 0, 0], &a);
        let (e, _) = model(&m, &target()).unwrap();
        match &e[..] {
            [Expect::Error { ack, .. }] => {
                assert_eq!(ack.errno, libc::ERANGE);
                assert_eq!(ack.offset, Some(28));
                assert!(ack.policy);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_groups_acks_or_points_at_the_bad_listen_group() {
        let lg = Attr::ListenGroup.raw();
        let set_groups = Cmd::SetGroups.raw();
        let mut a = Vec::new();
        put_attr(&mut a, lg, &3u32.to_ne_bytes());
        put_attr(&mut a, lg, &7u32.to_ne_bytes());
        let m = msg(NLM_F_REQUEST | NLM_F_ACK, [set_groups, 1, 0, 0], &a);
        let (e, _) = model(&m, &target()).unwrap();
        assert!(matches!(&e[..], [Expect::Error { ack, .. }] if *ack == Ack::err(0)));
        // Without NLM_F_ACK: nothing at all.
        let m = msg(NLM_F_REQUEST, [set_groups, 1, 0, 0], &a);
        assert!(model(&m, &target()).unwrap().0.is_empty());
        // The second of two is past the module's 32 groups: the module's
        // text, pointing at that one.
        let mut a = Vec::new();
        put_attr(&mut a, lg, &3u32.to_ne_bytes());
        put_attr(&mut a, lg, &33u32.to_ne_bytes());
        let m = msg(NLM_F_REQUEST, [set_groups, 1, 0, 0], &a);
        let (e, _) = model(&m, &target()).unwrap();
        match &e[..] {
            [Expect::Error { ack, .. }] => {
                assert_eq!(ack.errno, libc::EINVAL);
                assert_eq!(ack.offset, Some(28));
                assert_eq!(ack.text.as_deref(), Some("group 33 is not in 1..=32"));
                assert!(!ack.policy);
            }
            other => panic!("{other:?}"),
        }
        // group (2) is a hole of set-groups' policy: NLA_UNSPEC.
        let mut a = Vec::new();
        put_attr(&mut a, Attr::Group.raw(), &3u32.to_ne_bytes());
        let m = msg(NLM_F_REQUEST, [set_groups, 1, 0, 0], &a);
        let (e, _) = model(&m, &target()).unwrap();
        assert!(
            matches!(&e[..], [Expect::Error { ack, .. }] if ack.errno == libc::EINVAL && ack.offset == Some(20) && ack.text.as_deref() == Some("Unsupported attribute") && !ack.policy)
        );
        // listen-group past echo's policy: unknown.
        let mut a = Vec::new();
        put_attr(&mut a, lg, &3u32.to_ne_bytes());
        let m = msg(NLM_F_REQUEST, [Cmd::Echo.raw(), 1, 0, 0], &a);
        let (e, _) = model(&m, &target()).unwrap();
        assert!(
            matches!(&e[..], [Expect::Error { ack, .. }] if ack.text.as_deref() == Some("Unknown attribute type"))
        );
    }

    #[test]
    fn missing_group_is_miss_type() {
        let m = msg(NLM_F_REQUEST, [2, 1, 0, 0], &[]);
        let (e, _) = model(&m, &target()).unwrap();
        assert!(
            matches!(&e[..], [Expect::Error { ack, .. }] if ack.miss_type == Some(2) && ack.errno == libc::EINVAL)
        );
    }

    #[test]
    fn bad_length_stops_silently() {
        let mut m = msg(NLM_F_REQUEST | NLM_F_ACK, [1, 1, 0, 0], &[]);
        m[0] = 200;
        let (e, n) = model(&m, &target()).unwrap();
        assert!(e.is_empty() && n == 0);
        // No NLM_F_REQUEST: looked at, acked, not run.
        let m = msg(NLM_F_ACK, [1, 1, 0, 0], &[]);
        let (e, n) = model(&m, &target()).unwrap();
        assert!(n == 1 && matches!(&e[..], [Expect::Error { ack, .. }] if ack.errno == 0));
    }

    #[test]
    fn other_families_are_not_modelled() {
        let mut m = msg(NLM_F_REQUEST, [1, 1, 0, 0], &[]);
        m[4..6].copy_from_slice(&0x10u16.to_ne_bytes());
        assert!(model(&m, &target()).is_none());
        m[4..6].copy_from_slice(&0x7123u16.to_ne_bytes());
        let (e, _) = model(&m, &target()).unwrap();
        assert!(matches!(&e[..], [Expect::Error { ack, .. }] if ack.errno == libc::ENOENT));
    }

    #[test]
    fn generator_is_deterministic() {
        let mut a = Gen {
            rng: Rng::new(3),
            seq: 0,
            id: 0x20,
        };
        let mut b = Gen {
            rng: Rng::new(3),
            seq: 0,
            id: 0x20,
        };
        for _ in 0..50 {
            assert_eq!(a.datagram(16), b.datagram(16));
        }
    }
}
