//! Guest tests of the generic netlink face (family `rustnl`), mirroring the
//! classic ones: the family as the controller describes it, echo at every
//! size up to the attribute limit and the error past it, every refusal
//! (the core's policy and the module's own checks) with its errno and
//! extended ack, the multicast groups, counters per face, namespaces,
//! privileges, and unloading with clients connected and operations in
//! flight.
//!
//! The client here is raw on purpose (a socket, hand-made messages, byte
//! comparisons): it checks the wire format the spec promises, independent of
//! the library's typed client.

use super::{
    drop_privileges, finish_child, insmod, module_loaded, reload, rmmod, scaled, spawn_child, Ctx,
    Role, Talk, TestResult,
};
use crate::Test;
use rustnl::attr::AttrBuilder;
use rustnl::genl::{Family, GenlSocket};
use rustnl::proto::genl::{self as spec, Attr, Cmd, CounterAttr, McastGroup, MAX_ATTR_PAYLOAD};
use rustnl::proto::{ErrorMsg, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use rustnl::{Client, Error, MessageBuilder, Socket};
use std::collections::BTreeMap;

use std::time::{Duration, Instant};

/// `NETLINK_GENERIC`.
const NETLINK_GENERIC: u32 = 16;
/// `NLA_F_NESTED`.
const NLA_F_NESTED: u16 = 1 << 15;

/// The family as the controller reports it in this namespace.
pub(crate) fn family() -> Result<Family, String> {
    GenlSocket::open()
        .and_then(|mut g| g.family(spec::FAMILY_NAME))
        .map_err(|e| format!("resolving the genl family: {e}"))
}

/// The group id of `g` in `family`.
fn group_id(family: &Family, g: McastGroup) -> Result<u32, String> {
    family
        .group(g.name())
        .ok_or_else(|| format!("family has no group {}", g.name()))
}

/// Counters by their spec names.
type Counts = BTreeMap<&'static str, u64>;

/// One answer of the kernel.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A message of the family: its header's pid and flags, the genl header's
    /// command and version, and the attribute bytes.
    Reply {
        pid: u32,
        flags: u16,
        cmd: u8,
        version: u8,
        attrs: Vec<u8>,
    },
    /// `NLMSG_ERROR` (0: an ack).
    Error {
        errno: i32,
        msg: String,
        offset: Option<u32>,
        miss_type: Option<u32>,
    },
}

impl Answer {
    fn attrs(&self) -> Result<&[u8], String> {
        match self {
            Answer::Reply { attrs, .. } => Ok(attrs),
            other => Err(format!("expected a reply, got {other:?}")),
        }
    }
}

/// A raw client of the family: one `NETLINK_GENERIC` socket with extended
/// acks on.
pub(crate) struct Raw {
    pub(crate) sock: Socket,
    pub(crate) id: u16,
    seq: u32,
}

impl Raw {
    pub(crate) fn open() -> Result<Raw, String> {
        let f = family()?;
        Raw::with_id(f.id)
    }

    pub(crate) fn with_id(id: u16) -> Result<Raw, String> {
        let sock = Socket::open(NETLINK_GENERIC).map_err(|e| e.to_string())?;
        sock.set_ext_ack(true).map_err(|e| e.to_string())?;
        sock.set_recv_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        Ok(Raw { sock, id, seq: 0 })
    }

    /// Sends one message of command `cmd` with `flags` (`NLM_F_REQUEST`
    /// added) and the attribute bytes `attrs`; returns its seq.
    pub(crate) fn send(&mut self, cmd: u8, flags: u16, attrs: &[u8]) -> Result<u32, String> {
        self.send_raw(
            flags | NLM_F_REQUEST,
            [cmd, spec::FAMILY_VERSION, 0, 0],
            attrs,
        )
    }

    /// Sends one message with exactly these `flags` and genl header.
    pub(crate) fn send_raw(
        &mut self,
        flags: u16,
        genl: [u8; 4],
        attrs: &[u8],
    ) -> Result<u32, String> {
        self.seq = self.seq.wrapping_add(1);
        let mut b = MessageBuilder::new();
        b.push_parts(self.id, flags, self.seq, &[&genl, attrs])
            .map_err(|e| e.to_string())?;
        self.sock.send(b.as_bytes()).map_err(|e| e.to_string())?;
        Ok(self.seq)
    }

    /// The next answer, which must be the kernel's answer to `seq`.
    pub(crate) fn answer(&mut self, seq: u32) -> Result<Answer, String> {
        let d = self
            .sock
            .recv()
            .map_err(|e| format!("waiting for the answer to seq {seq}: {e}"))?;
        ensure!(d.sender == 0, "answer from port {}", d.sender);
        let mut got = Vec::new();
        for m in d.messages() {
            let m = m.map_err(|e| format!("malformed answer: {e}"))?;
            got.push(decode(&m)?);
            ensure!(
                m.header.seq == seq,
                "answer seq {} to request {seq}",
                m.header.seq
            );
        }
        ensure!(got.len() == 1, "{} messages in one answer", got.len());
        got.pop().ok_or_else(|| "empty answer".into())
    }

    /// Sends a request and returns its answer.
    pub(crate) fn exchange(&mut self, cmd: u8, attrs: &[u8]) -> Result<Answer, String> {
        let seq = self.send(cmd, 0, attrs)?;
        self.answer(seq)
    }

    /// `get-info`'s counters of both faces.
    fn counters(&mut self) -> Result<(Counts, Counts), String> {
        let a = self.exchange(Cmd::GetInfo.raw(), &[])?;
        let attrs = attr_map(a.attrs()?)?;
        Ok((
            counters(&attrs, Attr::ClassicCounters)?,
            counters(&attrs, Attr::GenlCounters)?,
        ))
    }
}

/// Decodes one message of the family or an `NLMSG_ERROR`.
pub(crate) fn decode(m: &rustnl::proto::Message<'_>) -> Result<Answer, String> {
    if m.header.ty == NLMSG_ERROR {
        let e = ErrorMsg::parse(m.payload, m.header.flags).map_err(|e| e.to_string())?;
        return Ok(Answer::Error {
            errno: -e.error,
            msg: e
                .ext_msg
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default(),
            offset: e.ext_offset,
            miss_type: e.ext_miss_type,
        });
    }
    let (hdr, attrs) = m
        .payload
        .split_first_chunk::<4>()
        .ok_or("message shorter than the genl header")?;
    Ok(Answer::Reply {
        pid: m.header.pid,
        flags: m.header.flags,
        cmd: hdr[0],
        version: hdr[1],
        attrs: attrs.to_vec(),
    })
}

/// The top-level attributes of `bytes` by type (each must be well formed,
/// 4-aligned, with zeroed padding; no type twice). Nests must carry
/// `NLA_F_NESTED` and nothing else may: the flag is checked against
/// [`NESTS`] and stripped from the key.
pub(crate) fn attr_map(bytes: &[u8]) -> Result<BTreeMap<u16, Vec<u8>>, String> {
    attr_map_with(bytes, |ty| NESTS.contains(&ty))
}

/// The family's nested attributes.
const NESTS: [u16; 2] = [Attr::ClassicCounters.raw(), Attr::GenlCounters.raw()];

/// As [`attr_map`], with `nested(type)` saying which types are nests.
pub(crate) fn attr_map_with(
    bytes: &[u8],
    nested: impl Fn(u16) -> bool,
) -> Result<BTreeMap<u16, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (h, _) = rest
            .split_first_chunk::<4>()
            .ok_or("truncated attribute header")?;
        let len = usize::from(u16::from_ne_bytes([h[0], h[1]]));
        let raw = u16::from_ne_bytes([h[2], h[3]]);
        let ty = raw & !NLA_F_NESTED;
        ensure!(
            (raw & NLA_F_NESTED != 0) == nested(ty),
            "attribute {ty}: NLA_F_NESTED {}",
            if nested(ty) {
                "missing"
            } else {
                "on a plain attribute"
            }
        );
        ensure!(
            len >= 4 && len <= rest.len(),
            "attribute length {len} of {}",
            rest.len()
        );
        let padded = (len + 3) & !3;
        ensure!(padded <= rest.len(), "attribute {ty} lacks its padding");
        ensure!(
            rest[len..padded].iter().all(|&b| b == 0),
            "attribute {ty}: padding not zeroed"
        );
        ensure!(
            out.insert(ty, rest[4..len].to_vec()).is_none(),
            "attribute {ty} twice"
        );
        rest = &rest[padded..];
    }
    Ok(out)
}

/// The attributes present are exactly `want` (the spec's, in any order).
fn same_attrs(a: &BTreeMap<u16, Vec<u8>>, want: &[Attr]) -> TestResult {
    let mut want: Vec<u16> = want.iter().map(|a| a.raw()).collect();
    want.sort_unstable();
    let got: Vec<u16> = a.keys().copied().collect();
    ensure!(got == want, "attributes {got:?}, the spec says {want:?}");
    Ok(())
}

fn get(attrs: &BTreeMap<u16, Vec<u8>>, a: Attr) -> Result<&[u8], String> {
    attrs
        .get(&a.raw())
        .map(Vec::as_slice)
        .ok_or_else(|| format!("no attribute {}", a.name()))
}

fn u32_of(b: &[u8]) -> Result<u32, String> {
    Ok(u32::from_ne_bytes(
        b.try_into()
            .map_err(|_| format!("u32 of {} bytes", b.len()))?,
    ))
}

/// A YNL `uint`: 4 bytes, or 8 when the value does not fit 4.
fn uint_of(b: &[u8]) -> Result<u64, String> {
    match b.len() {
        4 => u32_of(b).map(u64::from),
        8 => {
            let v = u64::from_ne_bytes(b.try_into().map_err(|_| "uint")?);
            ensure!(v > u64::from(u32::MAX), "uint {v} sent as 8 bytes");
            Ok(v)
        }
        n => Err(format!("uint of {n} bytes")),
    }
}

/// The nested counters attribute `which`, by spec name.
fn counters(attrs: &BTreeMap<u16, Vec<u8>>, which: Attr) -> Result<Counts, String> {
    let raw = attrs
        .get(&(which.raw()))
        .ok_or_else(|| format!("no attribute {}", which.name()))?;
    let inner = attr_map_with(raw, |_| false)?;
    let mut out = BTreeMap::new();
    for c in CounterAttr::ALL {
        let v = inner
            .get(&c.raw())
            .ok_or_else(|| format!("{} lacks {}", which.name(), c.name()))?;
        out.insert(c.name(), uint_of(v)?);
    }
    ensure!(
        inner.len() == CounterAttr::ALL.len(),
        "unknown counters in {inner:?}"
    );
    Ok(out)
}

/// One attribute, as `nla_put` writes it.
pub(crate) fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut w = AttrBuilder::new();
    w.put(ty, payload).expect("small attribute");
    w.into_bytes()
}

/// Attribute bytes of an `echo` request.
pub(crate) fn echo_attrs(payload: &[u8]) -> Vec<u8> {
    nla(Attr::Payload.raw(), payload)
}

/// Attribute bytes of a `broadcast` request.
pub(crate) fn broadcast_attrs(group: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = nla(Attr::Group.raw(), &group.to_ne_bytes());
    v.extend(nla(Attr::Payload.raw(), payload));
    v
}

/// Checks an error answer: errno, and that the ext-ack text contains `text`.
fn expect_err(a: &Answer, errno: i32, text: &str) -> Result<(Option<u32>, Option<u32>), String> {
    match a {
        Answer::Error {
            errno: e,
            msg,
            offset,
            miss_type,
        } => {
            ensure!(
                *e == errno,
                "errno {e} ({msg:?}) instead of {errno} (wanted `{text}`)"
            );
            ensure!(msg.contains(text), "extended ack `{msg}` lacks `{text}`");
            Ok((*offset, *miss_type))
        }
        other => Err(format!("expected errno {errno} `{text}`, got {other:?}")),
    }
}

/// Offset of the first attribute in a request: netlink and genl headers.
const FIRST_ATTR: u32 = 16 + 4;

/// The echo reply to `payload` must be the genl header and one `payload`
/// attribute, byte for byte.
fn check_echo(raw: &mut Raw, payload: &[u8]) -> TestResult {
    let seq = raw.send(Cmd::Echo.raw(), 0, &echo_attrs(payload))?;
    match raw.answer(seq)? {
        Answer::Reply {
            pid,
            flags,
            cmd,
            version,
            attrs,
            ..
        } => {
            ensure!(
                cmd == Cmd::Echo.raw() && version == spec::FAMILY_VERSION && flags == 0,
                "reply header cmd {cmd} version {version} flags {flags:#x}"
            );
            ensure!(pid == raw.sock.port_id(), "reply to port {pid}");
            ensure!(
                attrs == echo_attrs(payload),
                "echo of {} bytes differs (got {} attribute bytes)",
                payload.len(),
                attrs.len()
            );
            Ok(())
        }
        other => Err(format!("echo of {} bytes: {other:?}", payload.len())),
    }
}

// ---------------------------------------------------------------------------

/// The controller describes the family as the spec says, while the module
/// is loaded, and knows it no more after `rmmod`.
pub(crate) fn t_family(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let f = family()?;
    ensure!(
        f.name == spec::FAMILY_NAME && f.version == u32::from(spec::FAMILY_VERSION),
        "family {f:?}"
    );
    // Split operations carry their own maxattr; the family's stays 0.
    ensure!(f.hdr_size == 0 && f.max_attr == 0, "sizes {f:?}");
    let ops: Vec<(u32, bool, bool, bool)> = f
        .ops
        .iter()
        .map(|o| (o.id, o.can_do(), o.has_policy(), o.uns_admin_perm()))
        .collect();
    let want: Vec<(u32, bool, bool, bool)> =
        [Cmd::Echo, Cmd::Broadcast, Cmd::GetInfo, Cmd::SetGroups]
            .iter()
            // Every operation has a policy: get-info the core's reject-all one
            // (`genl_policy_reject_all`: it takes no attributes).
            .map(|c| (u32::from(c.raw()), true, true, c.uns_admin_perm()))
            .collect();
    ensure!(ops == want, "operations {ops:?}, spec says {want:?}");
    ensure!(
        f.ops.iter().all(|o| !o.can_dump() && !o.admin_perm()),
        "operations {:?}",
        f.ops
    );
    let groups: Vec<&str> = f.mcast_groups.iter().map(|g| g.name.as_str()).collect();
    let want: Vec<&str> = McastGroup::ALL.iter().map(|g| g.name()).collect();
    ensure!(groups == want, "groups {groups:?}");
    // The classic face lives on beside it.
    let mut c = Client::connect(rustnl::proto::DEFAULT_UNIT).map_err(|e| e.to_string())?;
    ensure!(
        c.echo(b"classic").map_err(|e| e.to_string())? == b"classic",
        "classic echo"
    );
    drop(c);
    rmmod()?;
    match GenlSocket::open().and_then(|mut g| g.family(spec::FAMILY_NAME)) {
        Err(Error::FamilyNotFound { .. }) => {}
        other => return Err(format!("after rmmod the family lookup gave {other:?}")),
    }
    // open_broadcast drops the permission flag.
    insmod(ctx, &["open_broadcast=1"])?;
    let f = family()?;
    ensure!(
        f.ops.iter().all(|o| !o.uns_admin_perm()),
        "open_broadcast=1 operations {:?}",
        f.ops
    );
    reload(ctx, &[])
}

/// Echo of every size 0..=300, then sizes around the alignment and page
/// boundaries, up to the attribute limit of 65,531 bytes: byte-exact.
pub(crate) fn t_echo_sizes(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let mut raw = Raw::open()?;
    for len in 0..=300usize {
        check_echo(&mut raw, &super::pattern(len, len as u8))?;
    }
    for len in [
        1021,
        4076,
        4093,
        4096,
        16384,
        65528,
        65530,
        MAX_ATTR_PAYLOAD,
    ] {
        check_echo(&mut raw, &super::pattern(len, 7))?;
    }
    Ok(())
}

/// Past 65,531 bytes no attribute can carry the payload: `nla_len` wraps,
/// and the core refuses what follows (the library refuses before sending).
/// The classic face of the same module carries up to `max_payload`.
pub(crate) fn t_past_attribute_limit(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let mut raw = Raw::open()?;
    for len in [MAX_ATTR_PAYLOAD + 1, 65536] {
        // What a client that does not check would send: the length
        // truncated to 16 bits, then the payload.
        let wrapped = ((len + 4) & 0xffff) as u16;
        let mut attrs = Vec::new();
        attrs.extend(wrapped.to_ne_bytes());
        attrs.extend(Attr::Payload.raw().to_ne_bytes());
        attrs.extend(super::pattern(len, 1));
        attrs.resize((attrs.len() + 3) & !3, 0);
        let a = raw.exchange(Cmd::Echo.raw(), &attrs)?;
        // 65,532: nla_len 0, no attribute at all; 65,536: nla_len 4, an
        // empty payload, then the data read as attributes.
        let text = if len == MAX_ATTR_PAYLOAD + 1 {
            "bytes leftover after parsing attributes"
        } else {
            "Unknown attribute type"
        };
        expect_err(&a, libc::EINVAL, text).map_err(|e| format!("{len} bytes: {e}"))?;
    }
    let big = super::pattern(rustnl::proto::DEFAULT_MAX_PAYLOAD, 3);
    let mut c = Client::connect(rustnl::proto::DEFAULT_UNIT).map_err(|e| e.to_string())?;
    ensure!(
        c.echo(&big).map_err(|e| e.to_string())? == big,
        "classic echo of max_payload bytes"
    );
    // Still serving.
    check_echo(&mut raw, b"after")
}

/// Every refusal of the core's policy: errno, ext-ack text and the
/// offending attribute's offset. None of them reaches the module (its
/// counters do not move).
pub(crate) fn t_policy_rejections(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let mut raw = Raw::open()?;
    let (_, before) = raw.counters()?;
    let group = |v: &[u8]| nla(Attr::Group.raw(), v);
    let cases: Vec<(&str, Cmd, Vec<u8>, i32, &str)> = vec![
        (
            "an attribute echo does not take",
            Cmd::Echo,
            group(&5u32.to_ne_bytes()),
            libc::EINVAL,
            "Unknown attribute type",
        ),
        (
            "attribute type 0",
            Cmd::Echo,
            nla(0, b"x"),
            libc::EINVAL,
            "Unknown attribute type",
        ),
        (
            "an attribute type past the family's",
            Cmd::Broadcast,
            nla(Attr::MAX + 1, b""),
            libc::EINVAL,
            "Unknown attribute type",
        ),
        (
            "a 2-byte group",
            Cmd::Broadcast,
            group(&[1, 0]),
            libc::EINVAL,
            "invalid attribute length",
        ),
        (
            "an 8-byte group",
            Cmd::Broadcast,
            group(&1u64.to_ne_bytes()),
            libc::EINVAL,
            "invalid attribute length",
        ),
        (
            "group 0",
            Cmd::Broadcast,
            group(&0u32.to_ne_bytes()),
            libc::ERANGE,
            "integer out of range",
        ),
        (
            "group 1025",
            Cmd::Broadcast,
            group(&1025u32.to_ne_bytes()),
            libc::ERANGE,
            "integer out of range",
        ),
        (
            "group u32::MAX",
            Cmd::Broadcast,
            group(&u32::MAX.to_ne_bytes()),
            libc::ERANGE,
            "integer out of range",
        ),
        (
            "a nested payload",
            Cmd::Echo,
            nla(Attr::Payload.raw() | NLA_F_NESTED, b"abcd"),
            libc::EINVAL,
            "NLA_F_NESTED not expected",
        ),
        (
            "an attribute to get-info",
            Cmd::GetInfo,
            echo_attrs(b"x"),
            libc::EINVAL,
            "Unknown attribute type",
        ),
    ];
    for (what, cmd, attrs, errno, text) in &cases {
        let (off, _) = expect_err(&raw.exchange(cmd.raw(), attrs)?, *errno, text)
            .map_err(|e| format!("{what}: {e}"))?;
        ensure!(
            off == Some(FIRST_ATTR),
            "{what}: offset {off:?}, want {FIRST_ATTR}"
        );
    }
    // Trailing bytes that are no attribute.
    let mut attrs = echo_attrs(b"ok");
    attrs.extend([1u8, 0, 0, 0]);
    expect_err(
        &raw.exchange(Cmd::Echo.raw(), &attrs)?,
        libc::EINVAL,
        "bytes leftover after parsing attributes",
    )?;
    // The genl header's reserved byte, and nlmsg_flags the core does not
    // consume (the family checks both for every command: resv_start_op 0).
    let seq = raw.send_raw(NLM_F_REQUEST, [Cmd::Echo.raw(), 1, 0, 1], &echo_attrs(b"x"))?;
    expect_err(
        &raw.answer(seq)?,
        libc::EINVAL,
        "genlmsghdr.reserved field is not 0",
    )?;
    for flags in [0x2u16, 0x100, 0x200, 0x800] {
        let seq = raw.send_raw(
            NLM_F_REQUEST | flags,
            [Cmd::Echo.raw(), 1, 0, 0],
            &echo_attrs(b"x"),
        )?;
        expect_err(
            &raw.answer(seq)?,
            libc::EINVAL,
            "ambiguous or reserved bits set in nlmsg_flags",
        )
        .map_err(|e| format!("flags {flags:#x}: {e}"))?;
    }
    // Another version is served (genl leaves versions to the family; this
    // one has only ever had 1).
    let seq = raw.send_raw(NLM_F_REQUEST, [Cmd::Echo.raw(), 9, 0, 0], &echo_attrs(b"v"))?;
    ensure!(
        matches!(raw.answer(seq)?, Answer::Reply { .. }),
        "echo with version 9"
    );
    // Commands that are not operations: the events, 0, past the last.
    for cmd in [
        0u8,
        Cmd::Event.raw(),
        Cmd::Heartbeat.raw(),
        Cmd::Goodbye.raw(),
        Cmd::MAX + 1,
        255,
    ] {
        let a = raw.exchange(cmd, &[])?;
        expect_err(&a, libc::EOPNOTSUPP, "").map_err(|e| format!("command {cmd}: {e}"))?;
    }
    // A dump: the family has no dump operations.
    let seq = raw.send(Cmd::Echo.raw(), NLM_F_DUMP, &[])?;
    expect_err(&raw.answer(seq)?, libc::EOPNOTSUPP, "").map_err(|e| format!("dump: {e}"))?;
    // A message without NLM_F_REQUEST is no request: the core only acks it
    // (asked to) and does not run the operation (the classic face answers
    // EINVAL; netlink_rcv_skb decides this for every genl family).
    raw.seq = raw.seq.wrapping_add(1);
    let mut b = MessageBuilder::new();
    b.push_parts(
        raw.id,
        NLM_F_ACK,
        raw.seq,
        &[&[Cmd::Echo.raw(), 1, 0, 0], &echo_attrs(b"x")],
    )
    .map_err(|e| e.to_string())?;
    raw.sock.send(b.as_bytes()).map_err(|e| e.to_string())?;
    let seq = raw.seq;
    expect_err(&raw.answer(seq)?, 0, "").map_err(|e| format!("no NLM_F_REQUEST: {e}"))?;
    let (_, after) = raw.counters()?;
    ensure!(
        after["requests"] == before["requests"] + 2
            && after["echoes"] == before["echoes"] + 1
            && after["errors-invalid"] == before["errors-invalid"],
        "policy refusals reached the module: {before:?} -> {after:?}"
    );
    check_echo(&mut raw, b"still serving")
}

/// What the policy cannot say, the module refuses itself, as on the classic
/// face, with the same texts: `max_payload`, the module's `groups`, the
/// required `group`. Counted on the genl face.
pub(crate) fn t_module_refusals(ctx: &Ctx) -> TestResult {
    reload(ctx, &["max_payload=100", "groups=8"])?;
    let mut raw = Raw::open()?;
    check_echo(&mut raw, &[9; 100])?;
    let (off, _) = expect_err(
        &raw.exchange(Cmd::Echo.raw(), &echo_attrs(&[9; 101]))?,
        libc::EMSGSIZE,
        "exceeds max_payload (100)",
    )?;
    ensure!(off == Some(FIRST_ATTR), "payload offset {off:?}");
    let (off, _) = expect_err(
        &raw.exchange(Cmd::Broadcast.raw(), &broadcast_attrs(9, b"x"))?,
        libc::EINVAL,
        "group 9 is not in 1..=8",
    )?;
    ensure!(off == Some(FIRST_ATTR), "group offset {off:?}");
    let (off, miss) = expect_err(
        &raw.exchange(Cmd::Broadcast.raw(), &echo_attrs(b"x"))?,
        libc::EINVAL,
        "missing attribute: group",
    )?;
    ensure!(
        miss == Some(u32::from(Attr::Group.raw())) && off.is_none(),
        "missing type {miss:?}, offset {off:?}"
    );
    let (classic, genl) = raw.counters()?;
    ensure!(
        genl["errors-too-large"] == 1 && genl["errors-invalid"] == 2 && genl["echoes"] == 1,
        "genl counters {genl:?}"
    );
    ensure!(
        classic.values().all(|&v| v == 0),
        "classic counters moved: {classic:?}"
    );
    reload(ctx, &[])
}

/// A genl listener socket joined to `g`.
fn listener(family: &Family, g: McastGroup) -> Result<Socket, String> {
    let s = Socket::open(NETLINK_GENERIC).map_err(|e| e.to_string())?;
    s.add_membership(group_id(family, g)?)
        .map_err(|e| format!("joining {}: {e}", g.name()))?;
    s.set_recv_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// The next event on `s`: its command and attributes.
fn next_event(s: &mut Socket, family: &Family) -> Result<(u8, BTreeMap<u16, Vec<u8>>), String> {
    let d = s.recv().map_err(|e| format!("waiting for an event: {e}"))?;
    ensure!(d.sender == 0, "event from port {}", d.sender);
    let mut msgs = d.messages();
    let m = msgs
        .next()
        .ok_or("empty datagram")?
        .map_err(|e| e.to_string())?;
    ensure!(msgs.next().is_none(), "more than one event in a datagram");
    ensure!(m.header.ty == family.id, "event of type {:#x}", m.header.ty);
    ensure!(
        m.header.seq == 0 && m.header.pid == 0,
        "event header {:?}",
        m.header
    );
    match decode(&m)? {
        Answer::Reply {
            cmd,
            version,
            attrs,
            ..
        } => {
            ensure!(version == spec::FAMILY_VERSION, "event version {version}");
            Ok((cmd, attr_map(&attrs)?))
        }
        other => Err(format!("event: {other:?}")),
    }
}

/// Expects nothing on `s` for a while.
fn silence(s: &mut Socket, what: &str) -> TestResult {
    s.set_recv_timeout(Some(Duration::from_millis(400)))
        .map_err(|e| e.to_string())?;
    match s.recv() {
        Err(Error::Timeout) => Ok(()),
        Ok(d) => Err(format!("{what} received {} bytes", d.bytes.len())),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Checks an `event` against the broadcast that sent it.
fn check_event(
    ev: &(u8, BTreeMap<u16, Vec<u8>>),
    group: u32,
    origin: u32,
    seq: u64,
    payload: &[u8],
) -> TestResult {
    let (cmd, a) = ev;
    ensure!(*cmd == Cmd::Event.raw(), "event command {cmd}");
    same_attrs(a, Cmd::Event.reply())?;
    ensure!(u32_of(get(a, Attr::Group)?)? == group, "event group");
    ensure!(
        u32_of(get(a, Attr::OriginPortid)?)? == origin,
        "event origin"
    );
    ensure!(uint_of(get(a, Attr::EventSeq)?)? == seq, "event seq");
    ensure!(uint_of(get(a, Attr::TimestampNs)?)? > 0, "event timestamp");
    ensure!(get(a, Attr::Payload)? == payload, "event payload");
    Ok(())
}

/// `broadcast`: the reply, the event at 2 and 8 listeners of `events`, none
/// at `heartbeat` listeners or at the classic face's, the event sequence
/// shared with the classic face, no-listener results, counters per face.
pub(crate) fn t_broadcast(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=0"])?;
    let f = family()?;
    let mut raw = Raw::open()?;
    let mut classic_sub = super::subscribe(&[5])?;
    let mut hb = listener(&f, McastGroup::Heartbeat)?;
    let mut last_seq = 0;
    for n in [2usize, 8] {
        let mut subs: Vec<Socket> = (0..n)
            .map(|_| listener(&f, McastGroup::Events))
            .collect::<Result<_, _>>()?;
        let text = format!("genl to {n} listeners");
        let a = raw.exchange(Cmd::Broadcast.raw(), &broadcast_attrs(5, text.as_bytes()))?;
        let (cmd, r) = match &a {
            Answer::Reply { cmd, attrs, .. } => (*cmd, attr_map(attrs)?),
            other => return Err(format!("broadcast: {other:?}")),
        };
        ensure!(cmd == Cmd::Broadcast.raw(), "reply command {cmd}");
        let seq = uint_of(get(&r, Attr::EventSeq)?)?;
        ensure!(
            u32_of(get(&r, Attr::Group)?)? == 5
                && r.contains_key(&Attr::Delivered.raw())
                && !r.contains_key(&Attr::DeliveryFailed.raw())
                && seq > last_seq,
            "broadcast reply {r:?}"
        );
        last_seq = seq;
        for s in subs.iter_mut() {
            check_event(
                &next_event(s, &f)?,
                5,
                raw.sock.port_id(),
                seq,
                text.as_bytes(),
            )?;
        }
    }
    silence(&mut hb, "a heartbeat listener")?;
    super::expect_silence(&mut classic_sub, "a classic listener on group 5")?;
    // A classic broadcast reaches classic listeners only, and takes the
    // next number of the same sequence.
    let mut ev = listener(&f, McastGroup::Events)?;
    let mut c = super::connect(rustnl::proto::DEFAULT_UNIT)?;
    classic_sub
        .socket_mut()
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let r = c.broadcast(5, b"classic").map_err(|e| e.to_string())?;
    ensure!(
        r.event_seq == last_seq + 1,
        "classic event seq {} after {last_seq}",
        r.event_seq
    );
    super::expect_broadcast(&mut classic_sub, 5, b"classic")?;
    silence(&mut ev, "a genl events listener")?;
    // Without listeners: neither flag, counted as no-listeners.
    drop(ev);
    let (_, before) = raw.counters()?;
    let a = raw.exchange(Cmd::Broadcast.raw(), &broadcast_attrs(6, b"anyone?"))?;
    let r = attr_map(a.attrs()?)?;
    ensure!(
        !r.contains_key(&Attr::Delivered.raw()) && !r.contains_key(&Attr::DeliveryFailed.raw()),
        "no-listener reply {r:?}"
    );
    let (classic, after) = raw.counters()?;
    ensure!(
        after["no-listeners"] == before["no-listeners"] + 1
            && after["broadcasts"] == before["broadcasts"] + 1,
        "genl counters {before:?} -> {after:?}"
    );
    ensure!(
        classic["broadcasts"] == 1 && classic["requests"] == 1 && after["broadcasts"] == 3,
        "faces: classic {classic:?}, genl {after:?}"
    );
    Ok(())
}

/// As the classic face's `broadcast_to_a_full_listener_is_a_failure`: the
/// only listener of `events` has a full queue, so nobody receives the
/// broadcast; the reply carries `delivery-failed` (not "no listeners"), and
/// the genl face counts a delivery failure.
pub(crate) fn t_broadcast_to_full_listener(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=0"])?;
    let f = family()?;
    let sub = listener(&f, McastGroup::Events)?;
    sub.set_recv_buffer_size(1).map_err(|e| e.to_string())?;
    let mut raw = Raw::with_id(f.id)?;
    let (_, before) = raw.counters()?;
    let payload = [7u8; 1024];
    let mut sent = 0;
    let r = loop {
        let a = raw.exchange(Cmd::Broadcast.raw(), &broadcast_attrs(5, &payload))?;
        let r = attr_map(a.attrs()?)?;
        sent += 1;
        if !r.contains_key(&Attr::Delivered.raw()) {
            break r;
        }
        ensure!(sent < 64, "the listener's queue never filled: {r:?}");
    };
    ensure!(
        r.contains_key(&Attr::DeliveryFailed.raw()),
        "a broadcast nobody could receive: {r:?}"
    );
    let (_, after) = raw.counters()?;
    ensure!(
        after["delivery-failures"] > before["delivery-failures"]
            && after["no-listeners"] == before["no-listeners"],
        "genl counters {before:?} -> {after:?}"
    );
    drop(sub);
    Ok(())
}

/// Heartbeats reach `heartbeat` listeners of the genl face at the period,
/// with the sequence the classic face's heartbeats use; `rmmod` succeeds
/// with genl clients connected (their sockets do not pin the module), they
/// get the goodbye, and then `ENOENT` for the family that is gone.
pub(crate) fn t_heartbeat_goodbye_unload(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=200"])?;
    let f = family()?;
    let mut hb = listener(&f, McastGroup::Heartbeat)?;
    let mut ev = listener(&f, McastGroup::Events)?;
    let mut classic = super::subscribe(&[rustnl::proto::KERNEL_EVENT_GROUP])?;
    let mut raw = Raw::with_id(f.id)?;
    check_echo(&mut raw, b"before")?;
    let mut seqs = Vec::new();
    let start = Instant::now();
    for _ in 0..3 {
        let (cmd, a) = next_event(&mut hb, &f)?;
        ensure!(cmd == Cmd::Heartbeat.raw(), "command {cmd} on heartbeat");
        same_attrs(&a, Cmd::Heartbeat.reply())?;
        ensure!(
            u32_of(get(&a, Attr::OriginPortid)?)? == 0,
            "heartbeat origin"
        );
        seqs.push(uint_of(get(&a, Attr::EventSeq)?)?);
    }
    let took = start.elapsed();
    ensure!(
        seqs.windows(2).all(|w| w[1] > w[0]) && took >= Duration::from_millis(300),
        "heartbeat seqs {seqs:?} in {took:?}"
    );
    // The classic face's heartbeat carries a seq from the same sequence.
    let e = classic.next_event().map_err(|e| e.to_string())?;
    ensure!(
        e.kind == rustnl::EventKind::Heartbeat,
        "classic {:?}",
        e.kind
    );
    drop(classic);
    // Unload with genl clients connected and joined.
    rmmod()?;
    ensure!(!module_loaded(), "still loaded");
    let mut goodbye = None;
    let deadline = Instant::now() + Duration::from_secs(3);
    while goodbye.is_none() && Instant::now() < deadline {
        let (cmd, a) = next_event(&mut hb, &f)?;
        if cmd == Cmd::Goodbye.raw() {
            goodbye = Some(a);
        } else {
            ensure!(cmd == Cmd::Heartbeat.raw(), "command {cmd} on heartbeat");
        }
    }
    let a = goodbye.ok_or("no goodbye")?;
    same_attrs(&a, Cmd::Goodbye.reply())?;
    silence(&mut ev, "an events listener at unload")?;
    expect_err(
        &raw.exchange(Cmd::Echo.raw(), &echo_attrs(b"x"))?,
        libc::ENOENT,
        "",
    )
    .map_err(|e| format!("a request to the unloaded family: {e}"))?;
    reload(ctx, &[])
}

/// Counters say which face served a request.
pub(crate) fn t_counters_per_face(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=0"])?;
    let mut c = super::connect(rustnl::proto::DEFAULT_UNIT)?;
    for _ in 0..3 {
        c.echo(b"classic").map_err(|e| e.to_string())?;
    }
    let mut raw = Raw::open()?;
    check_echo(&mut raw, b"one")?;
    check_echo(&mut raw, b"two")?;
    let (classic, genl) = raw.counters()?;
    ensure!(
        classic["requests"] == 3 && classic["echoes"] == 3,
        "classic counters {classic:?}"
    );
    ensure!(
        genl["requests"] == 3 && genl["echoes"] == 2 && genl["broadcasts"] == 0,
        "genl counters {genl:?}"
    );
    // The classic face's GET_INFO reports the classic face's counters.
    let info = c.info().map_err(|e| e.to_string())?;
    ensure!(
        info.counters.requests == 4 && info.counters.echoes == 3,
        "classic info {:?}",
        info.counters
    );
    // get-info's configuration attributes.
    let a = attr_map(raw.exchange(Cmd::GetInfo.raw(), &[])?.attrs()?)?;
    ensure!(
        u32_of(get(&a, Attr::Unit)?)? == rustnl::proto::DEFAULT_UNIT
            && u32_of(get(&a, Attr::MaxPayload)?)? == rustnl::proto::DEFAULT_MAX_PAYLOAD as u32
            && u32_of(get(&a, Attr::HeartbeatMs)?)? == 0
            && !a.contains_key(&Attr::OpenBroadcast.raw()),
        "get-info {a:?}"
    );
    let want: Vec<Attr> = Cmd::GetInfo
        .reply()
        .iter()
        .copied()
        .filter(|&t| t != Attr::OpenBroadcast)
        .collect();
    same_attrs(&a, &want)?;
    Ok(())
}

/// As an unprivileged user: echo, get-info, set-groups and listening
/// work; broadcast needs `CAP_NET_ADMIN` (the core refuses it:
/// `uns-admin-perm`) unless `open_broadcast=1`.
pub(crate) fn t_unprivileged(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    finish_child(
        spawn_child(Role::GenlUnpriv, &["closed"])?,
        "genl-unpriv (default)",
    )?;
    reload(ctx, &["open_broadcast=1"])?;
    finish_child(
        spawn_child(Role::GenlUnpriv, &["open"])?,
        "genl-unpriv (open)",
    )?;
    reload(ctx, &[])
}

pub(crate) fn child_unpriv(mode: &str) -> TestResult {
    let f = family()?;
    drop_privileges()?;
    let mut raw = Raw::with_id(f.id)?;
    check_echo(&mut raw, b"nobody")?;
    // Anyone may choose the groups of their own socket.
    expect_err(&choose(&mut raw, &listen_attrs(&[6, 7]))?, 0, "")
        .map_err(|e| format!("set-groups as nobody: {e}"))?;
    let mut ev = listener(&f, McastGroup::Events)?;
    let a = raw.exchange(Cmd::Broadcast.raw(), &broadcast_attrs(6, b"from nobody"))?;
    if mode == "open" {
        let r = attr_map(a.attrs()?)?;
        let seq = uint_of(get(&r, Attr::EventSeq)?)?;
        check_event(
            &next_event(&mut ev, &f)?,
            6,
            raw.sock.port_id(),
            seq,
            b"from nobody",
        )
    } else {
        expect_err(&a, libc::EPERM, "")?;
        silence(&mut ev, "an events listener")?;
        let (_, genl) = raw.counters()?;
        ensure!(
            genl["broadcasts"] == 0,
            "a refused broadcast counted: {genl:?}"
        );
        Ok(())
    }
}

/// The family in another network namespace: there (`netnsok`), with its
/// own counters, and the events of each namespace stay in it; in a user
/// namespace of an unprivileged user, its broadcast is allowed (it holds
/// `CAP_NET_ADMIN` there) and reaches its namespace only.
pub(crate) fn t_namespaces(ctx: &Ctx) -> TestResult {
    for role in [Role::GenlNetns, Role::GenlUserns] {
        reload(ctx, &["heartbeat_ms=0"])?;
        let f = family()?;
        let mut here = listener(&f, McastGroup::Events)?;
        let mut raw = Raw::with_id(f.id)?;
        let mut child = Talk::start(role, &[])?;
        let a = raw.exchange(
            Cmd::Broadcast.raw(),
            &broadcast_attrs(5, b"first namespace"),
        )?;
        let seq = uint_of(get(&attr_map(a.attrs()?)?, Attr::EventSeq)?)?;
        check_event(
            &next_event(&mut here, &f)?,
            5,
            raw.sock.port_id(),
            seq,
            b"first namespace",
        )?;
        child.say("go")?;
        child.expect("broadcast sent")?;
        silence(&mut here, "a listener in the first namespace")?;
        child.finish()?;
    }
    reload(ctx, &[])
}

pub(crate) fn child_netns(userns: bool) -> TestResult {
    super::enter_netns(userns)?;
    let f = family()?;
    let mut raw = Raw::with_id(f.id)?;
    let (classic, genl) = raw.counters()?;
    ensure!(
        genl["requests"] == 1
            && genl.values().sum::<u64>() == 1
            && classic.values().all(|&v| v == 0),
        "fresh namespace counters: classic {classic:?} genl {genl:?}"
    );
    let mut ev = listener(&f, McastGroup::Events)?;
    println!("ready");
    let mut l = String::new();
    std::io::stdin()
        .read_line(&mut l)
        .map_err(|e| e.to_string())?;
    silence(&mut ev, "a listener in the second namespace")?;
    ev.set_recv_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let a = raw.exchange(
        Cmd::Broadcast.raw(),
        &broadcast_attrs(5, b"second namespace"),
    )?;
    let seq = uint_of(get(&attr_map(a.attrs()?)?, Attr::EventSeq)?)?;
    check_event(
        &next_event(&mut ev, &f)?,
        5,
        raw.sock.port_id(),
        seq,
        b"second namespace",
    )?;
    println!("broadcast sent");
    Ok(())
}

/// A namespace that existed before `insmod`: the module leaves its classic
/// unit alone there (`existing_netns=0`, the safe default), but the genl
/// family serves it (genl's kernel sockets exist from boot in every
/// namespace).
pub(crate) fn t_namespace_from_before_load(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let mut child = Talk::start(Role::GenlPreexisting, &[])?;
    insmod(ctx, &[])?;
    child.say("go")?;
    let rest = child.finish()?;
    ensure!(
        rest.iter().any(|l| l == "genl served"),
        "child said {rest:?}"
    );
    reload(ctx, &[])
}

pub(crate) fn child_preexisting() -> TestResult {
    super::enter_netns(false)?;
    println!("ready");
    let mut l = String::new();
    std::io::stdin()
        .read_line(&mut l)
        .map_err(|e| e.to_string())?;
    // The unit exists (its number is registered), but this namespace has
    // no kernel socket of it: the kernel refuses the send.
    let mut c = Client::connect(rustnl::proto::DEFAULT_UNIT).map_err(|e| e.to_string())?;
    match c.echo(b"anyone?") {
        Err(e) if e.errno() == Some(libc::ECONNREFUSED) => {}
        other => {
            return Err(format!(
                "classic echo in a namespace from before insmod: {other:?}"
            ))
        }
    }
    let mut raw = Raw::open()?;
    check_echo(&mut raw, b"from before")?;
    println!("genl served");
    Ok(())
}

/// Unloading and loading again while clients hammer the genl face from
/// several threads: every request gets an answer, a reply (byte-exact) or
/// `ENOENT` (the family is gone: a stale id, or the name while unloaded),
/// never a silent drop, a wrong reply or another error (the family is
/// unregistered before the namespaces' states go, so no operation finds a
/// namespace without its state); the kernel stays clean (the suite checks
/// the console for splats).
pub(crate) fn t_unload_with_ops_in_flight(ctx: &Ctx) -> TestResult {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    reload(ctx, &[])?;
    let stop = Arc::new(AtomicBool::new(false));
    let replies = Arc::new(AtomicU64::new(0));
    let gone = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for t in 0..3u8 {
        let (stop, replies, gone) = (stop.clone(), replies.clone(), gone.clone());
        workers.push(std::thread::spawn(move || -> TestResult {
            let mut raw: Option<Raw> = None;
            let payload = super::pattern(64 + usize::from(t) * 500, t);
            while !stop.load(Relaxed) {
                let Some(r) = raw.as_mut() else {
                    match GenlSocket::open().and_then(|mut g| g.family(spec::FAMILY_NAME)) {
                        Ok(f) => raw = Some(Raw::with_id(f.id)?),
                        Err(Error::FamilyNotFound { .. }) => {
                            gone.fetch_add(1, Relaxed);
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(e) => return Err(format!("resolving the family under unload: {e}")),
                    }
                    continue;
                };
                let (cmd, attrs) = match t {
                    0 => (Cmd::Echo, echo_attrs(&payload)),
                    1 => (Cmd::GetInfo, Vec::new()),
                    _ => (Cmd::Broadcast, broadcast_attrs(3, &payload)),
                };
                match r.exchange(cmd.raw(), &attrs)? {
                    Answer::Reply {
                        cmd: c, attrs: got, ..
                    } => {
                        ensure!(c == cmd.raw(), "reply command {c} to {}", cmd.name());
                        if cmd == Cmd::Echo {
                            ensure!(got == attrs, "a wrong echo under unload");
                        }
                        replies.fetch_add(1, Relaxed);
                    }
                    // The family is gone (a stale id).
                    Answer::Error { errno, .. } if errno == libc::ENOENT => {
                        gone.fetch_add(1, Relaxed);
                        raw = None;
                    }
                    other => return Err(format!("{} under unload: {other:?}", cmd.name())),
                }
            }
            Ok(())
        }));
    }
    let cycles = scaled(50, 8);
    let mut result = Ok(());
    for _ in 0..cycles {
        std::thread::sleep(Duration::from_millis(60));
        if let Err(e) = rmmod().and_then(|()| insmod(ctx, &[])) {
            result = Err(e);
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Relaxed);
    for w in workers {
        w.join().map_err(|_| "a worker panicked")??;
    }
    result?;
    let (r, g) = (replies.load(Relaxed), gone.load(Relaxed));
    super::report("genl_unload_cycles", cycles);
    super::report("genl_unload_replies", r);
    super::report("genl_unload_enoent", g);
    ensure!(
        r > cycles && g > 0,
        "replies {r}, ENOENT {g} over {cycles} cycles"
    );
    reload(ctx, &[])
}

/// Attribute bytes of a `set-groups` request: one `listen-group` each.
pub(crate) fn listen_attrs(groups: &[u32]) -> Vec<u8> {
    groups
        .iter()
        .flat_map(|g| nla(Attr::ListenGroup.raw(), &g.to_ne_bytes()))
        .collect()
}

/// Sends `set-groups` of `attrs` on `raw`'s own socket (with `NLM_F_ACK`:
/// the operation has no reply) and returns the answer.
fn choose(raw: &mut Raw, attrs: &[u8]) -> Result<Answer, String> {
    let seq = raw.send(Cmd::SetGroups.raw(), NLM_F_ACK, attrs)?;
    raw.answer(seq)
}

/// A genl socket that chose `groups` (acked) and then joined `events`;
/// `None`: it chose nothing (every group, as any socket until it chooses).
fn group_listener(f: &Family, groups: Option<&[u32]>) -> Result<Raw, String> {
    let mut raw = Raw::with_id(f.id)?;
    if let Some(groups) = groups {
        expect_err(&choose(&mut raw, &listen_attrs(groups))?, 0, "")
            .map_err(|e| format!("set-groups {groups:?}: {e}"))?;
    }
    raw.sock
        .add_membership(group_id(f, McastGroup::Events)?)
        .map_err(|e| format!("joining events: {e}"))?;
    Ok(raw)
}

/// A broadcast's answer: (delivered, delivery-failed, event-seq).
fn bcast(raw: &mut Raw, group: u32, payload: &[u8]) -> Result<(bool, bool, u64), String> {
    let a = raw.exchange(Cmd::Broadcast.raw(), &broadcast_attrs(group, payload))?;
    let r = attr_map(a.attrs()?)?;
    Ok((
        r.contains_key(&Attr::Delivered.raw()),
        r.contains_key(&Attr::DeliveryFailed.raw()),
        uint_of(get(&r, Attr::EventSeq)?)?,
    ))
}

/// The event `raw`'s socket receives next must be the broadcast of
/// `payload` to `group`.
fn expect_event(
    raw: &mut Raw,
    f: &Family,
    group: u32,
    origin: u32,
    seq: u64,
    payload: &[u8],
) -> TestResult {
    raw.sock
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    check_event(&next_event(&mut raw.sock, f)?, group, origin, seq, payload)
}

/// Issue 19: on the genl face a broadcast said "delivered" when any
/// `events` listener got it, whatever numbered group it listened to (they
/// all share the one multicast group and filtered for themselves). With
/// `set-groups` a socket chooses its groups in the kernel: one listener
/// that chose group 3 only; a broadcast to group 2 is not delivered (no
/// listener of group 2: counted as no-listeners) and does not reach it; a
/// broadcast to group 3 is delivered and reaches it.
pub(crate) fn t_set_groups_delivery(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=0"])?;
    let f = family()?;
    let mut tx = Raw::open()?;
    let origin = tx.sock.port_id();
    let mut l3 = Raw::with_id(f.id)?;
    let chose = choose(&mut l3, &listen_attrs(&[3]))?;
    l3.sock
        .add_membership(group_id(&f, McastGroup::Events)?)
        .map_err(|e| e.to_string())?;
    let (_, before) = tx.counters()?;
    // Every way the first half goes wrong, together: on a module without
    // set-groups all three do.
    let mut wrong = Vec::new();
    if !matches!(chose, Answer::Error { errno: 0, .. }) {
        wrong.push(format!("set-groups [3] answered {chose:?}"));
    }
    let (delivered, failed, seq2) = bcast(&mut tx, 2, b"to group 2")?;
    if delivered || failed {
        wrong.push(format!(
            "the broadcast to group 2 answered delivered={delivered} delivery-failed={failed} \
             while the only listener chose group 3"
        ));
    }
    l3.sock
        .set_recv_timeout(Some(Duration::from_millis(400)))
        .map_err(|e| e.to_string())?;
    match l3.sock.recv() {
        Err(Error::Timeout) => {}
        Ok(d) => wrong.push(format!(
            "the listener of group 3 received the group 2 event ({} bytes)",
            d.bytes.len()
        )),
        Err(e) => return Err(format!("listener of group 3: {e}")),
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("; "));
    let (_, after) = tx.counters()?;
    ensure!(
        after["no-listeners"] == before["no-listeners"] + 1
            && after["events-sent"] == before["events-sent"]
            && after["delivery-failures"] == before["delivery-failures"],
        "the group 2 broadcast counted as {before:?} -> {after:?}"
    );
    let (delivered, failed, seq3) = bcast(&mut tx, 3, b"to group 3")?;
    ensure!(
        delivered && !failed && seq3 == seq2 + 1,
        "broadcast to group 3: delivered={delivered} delivery-failed={failed} seq {seq3} after {seq2}"
    );
    expect_event(&mut l3, &f, 3, origin, seq3, b"to group 3")?;
    let (_, last) = tx.counters()?;
    ensure!(
        last["events-sent"] == after["events-sent"] + 1,
        "the group 3 broadcast counted as {after:?} -> {last:?}"
    );
    Ok(())
}

/// A socket that never chose receives (and counts as a listener of) every
/// group, as before set-groups: ynl's `--subscribe` and other listeners
/// that know nothing of it keep working; an empty set-groups returns to
/// that; a new choice replaces the old; several listeners each get their
/// own groups. Refusals: the policy's (`listen-group` 0 or over 1024:
/// `ERANGE`; `group`, not an attribute of set-groups: `EINVAL`
/// "Unsupported attribute"; both pointing at the attribute, never reaching
/// the module) and the module's (over its `groups`: `EINVAL` with its
/// text, pointing at that one of several, counted), each leaving the
/// socket's choice as it was. Anyone may choose for their own socket.
pub(crate) fn t_set_groups_choices(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=0"])?;
    let f = family()?;
    let mut tx = Raw::open()?;
    let origin = tx.sock.port_id();
    let mut all = group_listener(&f, None)?;
    let mut l5 = group_listener(&f, Some(&[5, 9]))?;
    // The unchosen one listens to every group: delivered.
    let (d, _, seq) = bcast(&mut tx, 2, b"two")?;
    ensure!(
        d,
        "a broadcast to group 2 with a listener that never chose: not delivered"
    );
    expect_event(&mut all, &f, 2, origin, seq, b"two")?;
    silence(&mut l5.sock, "the listener of groups 5 and 9")?;
    let (d, _, seq) = bcast(&mut tx, 9, b"nine")?;
    ensure!(d, "a broadcast to group 9: not delivered");
    expect_event(&mut all, &f, 9, origin, seq, b"nine")?;
    expect_event(&mut l5, &f, 9, origin, seq, b"nine")?;
    // Without the unchosen one, only group 5 and 9 have a listener.
    drop(all);
    let (d, failed, _) = bcast(&mut tx, 2, b"two again")?;
    ensure!(
        !d && !failed,
        "group 2 without a listener of it: delivered={d} failed={failed}"
    );
    // A new choice replaces the old one.
    expect_err(&choose(&mut l5, &listen_attrs(&[2]))?, 0, "")?;
    let (d, _, seq) = bcast(&mut tx, 2, b"now two")?;
    ensure!(d, "group 2 after choosing it: not delivered");
    expect_event(&mut l5, &f, 2, origin, seq, b"now two")?;
    let (d, _, _) = bcast(&mut tx, 5, b"five")?;
    ensure!(!d, "group 5 after choosing 2 instead: delivered");
    silence(&mut l5.sock, "the listener that chose 2 instead of 5")?;
    // Refusals, each leaving the choice (group 2) as it was.
    let (_, before) = tx.counters()?;
    let (off, _) = expect_err(
        &choose(&mut l5, &listen_attrs(&[0]))?,
        libc::ERANGE,
        "integer out of range",
    )?;
    ensure!(off == Some(FIRST_ATTR), "listen-group 0 at offset {off:?}");
    let (off, _) = expect_err(
        &choose(&mut l5, &listen_attrs(&[4, 1025]))?,
        libc::ERANGE,
        "integer out of range",
    )?;
    ensure!(
        off == Some(FIRST_ATTR + 8),
        "listen-group 1025 at offset {off:?}"
    );
    let (off, _) = expect_err(
        &choose(&mut l5, &nla(Attr::Group.raw(), &4u32.to_ne_bytes()))?,
        libc::EINVAL,
        "Unsupported attribute",
    )?;
    ensure!(
        off == Some(FIRST_ATTR),
        "a group attribute at offset {off:?}"
    );
    let (off, _) = expect_err(
        &choose(&mut l5, &listen_attrs(&[4, 7, 33, 34]))?,
        libc::EINVAL,
        "group 33 is not in 1..=32",
    )?;
    ensure!(
        off == Some(FIRST_ATTR + 16),
        "listen-group 33 at offset {off:?}"
    );
    let (_, after) = tx.counters()?;
    ensure!(
        after["errors-invalid"] == before["errors-invalid"] + 1
            && after["requests"] == before["requests"] + 2,
        "refusals counted {before:?} -> {after:?} (the policy's never reach the module)"
    );
    let (d, _, seq) = bcast(&mut tx, 2, b"still two")?;
    ensure!(d, "group 2 after the refused choices: not delivered");
    expect_event(&mut l5, &f, 2, origin, seq, b"still two")?;
    let (d, _, _) = bcast(&mut tx, 4, b"four")?;
    ensure!(!d, "group 4 (only in refused choices): delivered");
    // Every group of the module at once, then none named: every group.
    let every: Vec<u32> = (1..=32).collect();
    expect_err(&choose(&mut l5, &listen_attrs(&every))?, 0, "")?;
    let (d, _, seq) = bcast(&mut tx, 32, b"32")?;
    ensure!(d, "group 32 after choosing 1..=32: not delivered");
    // (Read before the next exchange on the socket, which would meet it.)
    expect_event(&mut l5, &f, 32, origin, seq, b"32")?;
    expect_err(&choose(&mut l5, &[])?, 0, "")?;
    let (d, _, seq) = bcast(&mut tx, 17, b"seventeen")?;
    ensure!(d, "group 17 after an empty set-groups: not delivered");
    expect_event(&mut l5, &f, 17, origin, seq, b"seventeen")?;
    Ok(())
}

/// A socket's choice goes with it: sockets that chose group 5 and closed
/// leave nothing behind, so fresh sockets (the kernel reuses their memory)
/// receive every group; choices of sockets still open when the module
/// unloads are freed with the family and forgotten by the next load (the
/// run's kmemleak scan sees every one of them go).
pub(crate) fn t_set_groups_go_with_the_socket(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=0"])?;
    let f = family()?;
    let mut tx = Raw::open()?;
    let rounds = scaled(200, 40);
    for i in 0..rounds {
        drop(group_listener(&f, Some(&[5]))?);
        let mut fresh = group_listener(&f, None)?;
        let (d, _, seq) = bcast(&mut tx, 4, b"four")?;
        ensure!(d, "round {i}: a fresh socket is no listener of group 4");
        expect_event(&mut fresh, &f, 4, tx.sock.port_id(), seq, b"four")
            .map_err(|e| format!("round {i}: {e}"))?;
    }
    // Choices held across an unload.
    let mut held: Vec<Raw> = (0..64)
        .map(|_| group_listener(&f, Some(&[5])))
        .collect::<Result<_, _>>()?;
    rmmod()?;
    insmod(ctx, &["heartbeat_ms=0"])?;
    let f = family()?;
    let mut tx = Raw::with_id(f.id)?;
    for (i, r) in held.iter_mut().enumerate() {
        // The family's new id; the sockets' memberships were dropped with
        // the old family's groups: join again.
        r.id = f.id;
        r.sock
            .add_membership(group_id(&f, McastGroup::Events)?)
            .map_err(|e| format!("socket {i}: {e}"))?;
    }
    let (d, _, _) = bcast(&mut tx, 4, b"after reload")?;
    ensure!(
        d,
        "after a reload, the sockets that had chosen group 5 are no listeners of group 4"
    );
    drop(held);
    super::report("genl_set_groups_socket_rounds", rounds);
    Ok(())
}

/// A listener of group 7 in the initial namespace (chosen with set-groups)
/// does not make a broadcast to group 7 in another namespace a delivery or
/// a failure there: nobody there listened.
pub(crate) fn t_set_groups_other_namespace(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let f = family()?;
    let _chose = group_listener(&f, Some(&[7]))?;
    let _all = group_listener(&f, None)?;
    let child = Talk::start(Role::Lonely, &[])?;
    child.finish().map(drop)
}

/// Runs the CLI; returns (exit code, stdout, stderr).
fn cli(args: &[&str]) -> Result<(Option<i32>, String, String), String> {
    let out = std::process::Command::new("rustnl")
        .args(args)
        .output()
        .map_err(|e| format!("running rustnl: {e}"))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The CLI's genl face (`--genl`) against the module: echo (text, the
/// attribute limit, a batch), the limit past it refused before sending,
/// info with both faces' counters (text and JSON), broadcast errors with
/// the kernel's text, listen for a heartbeat, and after `rmmod` the one
/// line that says how to load the module.
pub(crate) fn t_cli(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=100"])?;
    let (code, out, err) = cli(&["--genl", "echo", "hi there"])?;
    ensure!(
        code == Some(0) && out.starts_with("hi there\n"),
        "echo: {code:?} {out:?} {err:?}"
    );
    let (code, out, err) = cli(&["echo", "--genl", "--size", "65531", "--json"])?;
    let rec = super::json_lines(&out)?;
    ensure!(
        code == Some(0)
            && rec.first().is_some_and(|r| r["bytes"] == 65531
                || r["size"] == 65531
                || out.contains("65531")),
        "echo 65531: {code:?} {out:?} {err:?}"
    );
    let (code, out, err) = cli(&["echo", "--genl", "--size", "65532"])?;
    ensure!(
        code == Some(1) && out.is_empty() && err.lines().count() == 1 && err.contains("65531"),
        "echo 65532: {code:?} {out:?} {err:?}"
    );
    let (code, out, err) = cli(&[
        "echo", "--genl", "--batch", "8", "--count", "16", "--size", "100",
    ])?;
    ensure!(code == Some(0), "echo batch: {code:?} {out:?} {err:?}");
    let (code, _, err) = cli(&["broadcast", "--genl", "-g", "33", "x"])?;
    ensure!(
        code == Some(1) && err.lines().count() == 1 && err.contains("group 33 is not in 1..=32"),
        "broadcast to 33: {code:?} {err:?}"
    );
    let (code, out, err) = cli(&["listen", "--genl", "-g", "1", "--count", "1"])?;
    ensure!(
        code == Some(0) && out.to_lowercase().contains("heartbeat"),
        "listen: {code:?} {out:?} {err:?}"
    );
    let (code, out, err) = cli(&["info", "--genl"])?;
    ensure!(
        code == Some(0)
            && out.contains("classic")
            && out.contains("genl")
            && out.contains("echoes"),
        "info: {code:?} {out:?} {err:?}"
    );
    let (code, out, _) = cli(&["info", "--genl", "--json"])?;
    let rec = super::json_lines(&out)?;
    let r = rec.first().ok_or("no JSON record")?;
    let echoes = r["genl_counters"]["echoes"].as_u64().unwrap_or(0);
    ensure!(
        code == Some(0) && r["type"] == "genl_info" && r["unit"] == 31 && echoes >= 1 + 1 + 16,
        "info --json: {out:?}"
    );
    ensure!(
        r["classic_counters"]["echoes"].as_u64() == Some(0),
        "classic counters moved: {out:?}"
    );
    rmmod()?;
    let (code, out, err) = cli(&["--genl", "echo", "x"])?;
    ensure!(
        code == Some(1)
            && out.is_empty()
            && err.lines().count() == 1
            && err.contains("rustnl generic netlink family not registered")
            && err.contains("insmod"),
        "after rmmod: {code:?} {err:?}"
    );
    reload(ctx, &[])
}

/// Issue 19 through the CLI: `rustnl listen --genl -g 3` chooses group 3
/// in the kernel, so `rustnl broadcast --genl -g 2` says no listeners and
/// the listener prints group 3's events only.
pub(crate) fn t_cli_set_groups(ctx: &Ctx) -> TestResult {
    use std::io::Read;
    reload(ctx, &["heartbeat_ms=0"])?;
    let mut listener = std::process::Command::new("rustnl")
        .args([
            "listen",
            "--genl",
            "-g",
            "3",
            "--count",
            "2",
            "--timeout",
            "60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("running rustnl listen: {e}"))?;
    let outcome = (|| -> TestResult {
        // Ready once a probe to group 3 is delivered (the listener prints it).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, out, err) = cli(&["broadcast", "--genl", "-g", "3", "probe"])?;
            ensure!(code == Some(0), "broadcast probe: {code:?} {out:?} {err:?}");
            if out.starts_with("delivered to group 3") {
                break;
            }
            ensure!(
                out.starts_with("no listeners on group 3"),
                "broadcast probe: {out:?}"
            );
            if Instant::now() > deadline || listener.try_wait().ok().flatten().is_some() {
                return Err("the listener of group 3 never received a probe".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (code, out, err) = cli(&["broadcast", "--genl", "-g", "2", "x"])?;
        ensure!(
            code == Some(0) && out.starts_with("no listeners on group 2"),
            "broadcast to group 2 with one listener, of group 3: {code:?} {out:?} {err:?}"
        );
        let (code, out, err) = cli(&["broadcast", "--genl", "-g", "3", "y", "--json"])?;
        let rec = super::json_lines(&out)?;
        let r = rec.first().ok_or("no JSON record")?;
        ensure!(
            code == Some(0)
                && r["type"] == "broadcast"
                && r["group"] == 3
                && r["delivered"] == true,
            "broadcast to group 3: {code:?} {out:?} {err:?}"
        );
        Ok(())
    })();
    if outcome.is_err() {
        let _ = listener.kill();
    }
    let status = listener.wait().map_err(|e| e.to_string())?;
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut o) = listener.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = listener.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    outcome.map_err(|e| format!("{e}; the listener: {status}, {out:?} {err:?}"))?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        status.success()
            && lines.len() == 2
            && lines[0].contains("group=3")
            && lines[0].ends_with("payload=probe")
            && lines[1].contains("group=3")
            && lines[1].ends_with("payload=y"),
        "listen --genl -g 3: {status} {out:?} {err:?}"
    );
    Ok(())
}

/// This file's tests, in the order they run, with what each needs.
pub(crate) const TESTS: &[Test] = &[
    Test::new("genl_family_ops_groups_while_loaded", t_family),
    Test::new("genl_echo_every_size_up_to_65531", t_echo_sizes),
    Test::new("genl_past_the_attribute_limit", t_past_attribute_limit),
    Test::new("genl_policy_rejections_with_ext_ack", t_policy_rejections),
    Test::new("genl_module_refusals_with_ext_ack", t_module_refusals),
    Test::new("genl_broadcast_groups_and_faces", t_broadcast),
    Test::new(
        "genl_broadcast_to_a_full_listener_is_a_failure",
        t_broadcast_to_full_listener,
    ),
    Test::new("genl_counters_per_face", t_counters_per_face),
    Test::new(
        "genl_heartbeat_goodbye_and_unload_with_clients",
        t_heartbeat_goodbye_unload,
    ),
    Test::new("genl_unprivileged", t_unprivileged),
    Test::new("genl_network_namespaces_are_isolated", t_namespaces),
    Test::new(
        "genl_serves_a_namespace_from_before_insmod",
        t_namespace_from_before_load,
    ),
    Test::new(
        "genl_unload_with_ops_in_flight",
        t_unload_with_ops_in_flight,
    ),
    Test::new("genl_cli_face", t_cli),
    Test::new(
        "genl_set_groups_delivered_means_a_listener_of_the_group",
        t_set_groups_delivery,
    ),
    Test::new("genl_set_groups_choices_and_refusals", t_set_groups_choices),
    Test::new(
        "genl_set_groups_go_with_the_socket",
        t_set_groups_go_with_the_socket,
    ),
    Test::new(
        "genl_set_groups_listener_in_another_namespace",
        t_set_groups_other_namespace,
    ),
    Test::new("genl_cli_set_groups", t_cli_set_groups),
];
