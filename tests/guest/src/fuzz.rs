//! Kernel input fuzzer: hostile datagrams to the module from several sockets,
//! threads and an unprivileged process at once, every answer checked byte by
//! byte against the protocol's model.
//!
//! The model is the shared splitter and validator (`Messages`, `classify`,
//! the same code the module compiles) plus the netlink core's documented
//! `NLMSG_ERROR` format: for each datagram it predicts the exact list of
//! answers (echo replies, broadcast results, infos, acks and errors with
//! their errno, echoed request and extended-ack text). An answer that is
//! missing, extra, reordered or differs in any byte — padding included —
//! fails the run with the seed, the thread and the datagram in hex.
//!
//! Seeded and reproducible: thread `i` draws from `seed + i`; the
//! unprivileged child from `seed + THREADS`.

use rustnl::proto::{
    classify, nlmsg_align, Action, BroadcastHdr, BroadcastResult, ErrorKind, Info, Limits,
    Messages, MsgType, NlMsgHdr, RequestError, DEFAULT_MAX_PAYLOAD, DEFAULT_UNIT,
    NLMSGERR_ATTR_MSG, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLM_F_ACK,
    NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_ECHO, NLM_F_REQUEST, PROTOCOL_VERSION,
};
use rustnl::Socket;
use std::fmt::Write as _;
use std::time::Duration;

/// Root fuzzing threads (one more, unprivileged, runs as a child process).
pub const THREADS: u64 = 3;

/// Longest extended-ack text the kernel keeps (`NETLINK_MAX_FMTMSG_LEN`
/// minus the NUL).
pub const EXT_ACK_TEXT_MAX: usize = 79;

/// A small, fast, seedable generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 for `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_ne_bytes());
        }
        v.truncate(len);
        v
    }
}

/// What the module is configured with and who the sender is.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub limits: Limits,
    pub open_broadcast: bool,
    /// The sender has `CAP_NET_ADMIN` over the namespace.
    pub net_admin: bool,
    pub ext_ack: bool,
    pub cap_ack: bool,
    pub portid: u32,
}

/// The body of a reply whose content the model knows only in part.
#[derive(Debug)]
enum Body {
    Echo(Vec<u8>),
    BroadcastResult { group: u32 },
    Info,
}

/// One answer the module must send, in order.
#[derive(Debug)]
enum Expect {
    Reply {
        ty: u16,
        seq: u32,
        body: Body,
    },
    /// `NLMSG_ERROR`: `errno` 0 is an ack. `request` is the message as
    /// `netlink_ack` sees it (header plus payload).
    Error {
        errno: i32,
        request: Vec<u8>,
        text: Option<String>,
    },
}

pub fn errno_of(kind: ErrorKind) -> i32 {
    kind.errno()
}

/// The answers `datagram` must produce, in order, and how many messages the
/// module will look at (the malformed remainder counts as one).
fn model(datagram: &[u8], t: &Target) -> (Vec<Expect>, usize) {
    let mut out = Vec::new();
    let mut messages = 0;
    for item in Messages::new(datagram) {
        messages += 1;
        let msg = match item {
            Ok(msg) => msg,
            Err(bad) => {
                let mut h = bad.header().unwrap_or_default();
                h.len = NLMSG_HDRLEN as u32;
                out.push(Expect::Error {
                    errno: libc::EINVAL,
                    request: h.to_bytes().to_vec(),
                    text: Some(bad.to_string()),
                });
                continue;
            }
        };
        let decided = classify(&msg, &t.limits).and_then(|a| match a {
            Action::Broadcast { .. } if !t.open_broadcast && !t.net_admin => {
                Err(RequestError::BroadcastNotPermitted)
            }
            a => Ok(a),
        });
        let seq = msg.header.seq;
        match decided {
            Err(e) => out.push(Expect::Error {
                errno: errno_of(e.kind()),
                request: msg.bytes.to_vec(),
                text: Some(e.to_string()),
            }),
            Ok(action) => {
                let reply = |ty: MsgType, body| Expect::Reply {
                    ty: ty.raw(),
                    seq,
                    body,
                };
                match action {
                    Action::Noop => {}
                    Action::Echo { payload } => {
                        out.push(reply(MsgType::Echo, Body::Echo(payload.to_vec())))
                    }
                    Action::Broadcast { group, .. } => {
                        out.push(reply(MsgType::Broadcast, Body::BroadcastResult { group }))
                    }
                    Action::GetInfo => out.push(reply(MsgType::Info, Body::Info)),
                }
                if msg.header.has(NLM_F_ACK) {
                    out.push(Expect::Error {
                        errno: 0,
                        request: msg.bytes.to_vec(),
                        text: None,
                    });
                }
            }
        }
    }
    (out, messages)
}

/// The exact bytes of an `NLMSG_ERROR` as `netlink_ack` builds it.
fn error_bytes(errno: i32, request: &[u8], text: Option<&str>, t: &Target) -> Vec<u8> {
    let capped = errno == 0 || t.cap_ack;
    let text = text.filter(|_| t.ext_ack && errno != 0).map(|s| {
        let mut end = s.len().min(EXT_ACK_TEXT_MAX);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        &s[..end]
    });
    let mut flags = 0;
    if capped {
        flags |= NLM_F_CAPPED;
    }
    if text.is_some() {
        flags |= NLM_F_ACK_TLVS;
    }
    let req_hdr = NlMsgHdr::parse(request).unwrap_or_default();
    let mut body = (-errno).to_ne_bytes().to_vec();
    body.extend_from_slice(&request[..NLMSG_HDRLEN]);
    if !capped {
        body.extend_from_slice(&request[NLMSG_HDRLEN..]);
        body.resize(nlmsg_align(body.len()), 0);
    }
    if let Some(s) = text {
        let alen = 4 + s.len() + 1;
        body.extend_from_slice(&(alen as u16).to_ne_bytes());
        body.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        body.extend_from_slice(s.as_bytes());
        body.push(0);
        body.resize(nlmsg_align(body.len()), 0);
    }
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

/// Header plus zero-padded payload of a reply from the module.
fn reply_bytes(ty: u16, seq: u32, payload: &[u8], t: &Target) -> Vec<u8> {
    let h = NlMsgHdr {
        len: (NLMSG_HDRLEN + payload.len()) as u32,
        ty,
        flags: 0,
        seq,
        pid: t.portid,
    };
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out.resize(nlmsg_align(out.len()), 0);
    out
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for (i, b) in bytes.iter().enumerate().take(512) {
        if i > 0 && i % 4 == 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    if bytes.len() > 512 {
        let _ = write!(s, " … ({} bytes)", bytes.len());
    }
    s
}

/// Checks one received datagram against the next expected answer. Every
/// byte is compared; for an INFO or a broadcast result, whose counters and
/// sequence numbers the model cannot know, the payload must re-encode to
/// itself (so every reserved and padding byte is zero) and the known fields
/// must match.
fn check(got: &[u8], want: &Expect, t: &Target) -> Result<(), String> {
    match want {
        Expect::Error {
            errno,
            request,
            text,
        } => {
            let exact = error_bytes(*errno, request, text.as_deref(), t);
            if got != exact.as_slice() {
                return Err(format!(
                    "NLMSG_ERROR (errno {errno}, text {text:?}) differs:\n      want {}\n      got  {}",
                    hex(&exact),
                    hex(got)
                ));
            }
        }
        Expect::Reply {
            ty,
            seq,
            body: Body::Echo(payload),
        } => {
            let exact = reply_bytes(*ty, *seq, payload, t);
            if got != exact.as_slice() {
                return Err(format!(
                    "echo reply differs:\n      want {}\n      got  {}",
                    hex(&exact),
                    hex(got)
                ));
            }
        }
        Expect::Reply { ty, seq, body } => {
            let h = NlMsgHdr::parse(got).ok_or("short reply")?;
            let payload = got
                .get(NLMSG_HDRLEN..h.len as usize)
                .ok_or("bad reply length")?;
            let exact = reply_bytes(*ty, *seq, payload, t);
            if got != exact.as_slice() {
                return Err(format!(
                    "reply header or padding differs:\n      want {}\n      got  {}",
                    hex(&exact),
                    hex(got)
                ));
            }
            match body {
                Body::BroadcastResult { group } => {
                    let r = BroadcastResult::parse(payload).map_err(|e| e.to_string())?;
                    if r.to_bytes().as_slice() != payload
                        || r.group != *group
                        || r.event_seq == 0
                        || (r.delivered && r.delivery_failed)
                    {
                        return Err(format!(
                            "broadcast result {r:?} for group {group}: {}",
                            hex(payload)
                        ));
                    }
                }
                Body::Info => {
                    let i = Info::parse(payload).map_err(|e| e.to_string())?;
                    if i.to_bytes().as_slice() != payload
                        || u32::from(i.version) != PROTOCOL_VERSION
                        || i.unit != DEFAULT_UNIT
                        || i.groups != t.limits.groups
                        || i.max_payload as usize != t.limits.max_payload
                    {
                        return Err(format!("info {i:?}: {}", hex(payload)));
                    }
                }
                Body::Echo(_) => unreachable!("handled above"),
            }
        }
    }
    Ok(())
}

/// Rough receive-buffer charge of an answer of `len` bytes (skb truesize).
pub fn truesize(len: usize) -> usize {
    (len + 384).next_power_of_two() + 512
}

/// A seq counter per generator so most answers are easy to tell apart.
pub struct Gen {
    pub rng: Rng,
    seq: u32,
    limits: Limits,
}

impl Gen {
    pub fn new(seed: u64, limits: Limits) -> Self {
        Gen {
            rng: Rng::new(seed),
            seq: 0,
            limits,
        }
    }

    fn payload_len(&mut self) -> usize {
        match self.rng.below(100) {
            0..=39 => self.rng.range(0, 16),
            40..=79 => self.rng.range(17, 256),
            80..=96 => self.rng.range(257, 4096),
            _ => self.rng.range(4097, 16384),
        }
    }

    fn group(&mut self) -> u32 {
        let groups = self.limits.groups;
        match self.rng.below(100) {
            0..=59 => self.rng.range(1, groups as usize) as u32,
            60..=69 => 0,
            70..=79 => groups + 1,
            80..=84 => u32::MAX,
            _ => self.rng.next() as u32,
        }
    }

    /// One message: a type, flags, header fields and payload drawn from
    /// valid and invalid values; `nlmsg_len` is sometimes wrong.
    fn message(&mut self, out: &mut Vec<u8>) {
        let r = &mut self.rng;
        let ty: u16 = match r.below(100) {
            0..=34 => MsgType::Echo.raw(),
            35..=49 => MsgType::Broadcast.raw(),
            50..=57 => MsgType::GetInfo.raw(),
            58..=64 => NLMSG_NOOP,
            65..=69 => [0x12u16, 0x13, 0x14, 0x16][r.below(4) as usize],
            70..=74 => [0u16, NLMSG_ERROR, NLMSG_DONE, 0x4, 0x5, 0xf][r.below(6) as usize],
            75..=89 => r.range(0x17, 0x40) as u16,
            _ => r.next() as u16,
        };
        let mut flags = if r.chance(90) { NLM_F_REQUEST } else { 0 };
        if r.chance(30) {
            flags |= NLM_F_ACK;
        }
        if r.chance(5) {
            flags |= NLM_F_ECHO;
        }
        if r.chance(5) {
            flags |= NLM_F_DUMP;
        }
        if r.chance(5) {
            flags |= r.next() as u16;
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = if self.rng.chance(3) {
            self.rng.next() as u32
        } else {
            self.seq
        };
        let pid = match self.rng.below(100) {
            0..=69 => 0,
            70..=89 => self.rng.next() as u32,
            _ => u32::MAX,
        };
        let payload = if ty == MsgType::Broadcast.raw() {
            let group = self.group();
            let mut p = BroadcastHdr { group }.to_bytes().to_vec();
            if self.rng.chance(10) {
                // Wrong version or hdr_len.
                let i = self.rng.below(4) as usize;
                p[i] = self.rng.next() as u8;
            }
            let n = self.rng.range(0, 64);
            p.extend(self.rng.bytes(n));
            if self.rng.chance(8) {
                let keep = self.rng.range(0, 7);
                p.truncate(keep);
            }
            p
        } else if ty == MsgType::GetInfo.raw() {
            let n = if self.rng.chance(85) {
                0
            } else {
                self.rng.range(1, 8)
            };
            self.rng.bytes(n)
        } else if ty == MsgType::Echo.raw() {
            let n = self.payload_len();
            self.rng.bytes(n)
        } else {
            let n = self.rng.range(0, 32);
            self.rng.bytes(n)
        };
        let true_len = NLMSG_HDRLEN + payload.len();
        let len = if self.rng.chance(92) {
            true_len as u32
        } else {
            match self.rng.below(7) {
                0 => 0,
                1 => self.rng.range(1, NLMSG_HDRLEN - 1) as u32,
                2 => (true_len + self.rng.range(1, 7)) as u32,
                3 => true_len
                    .saturating_sub(self.rng.range(1, 4))
                    .max(NLMSG_HDRLEN) as u32,
                4 => u32::MAX,
                5 => self.rng.next() as u32,
                _ => (true_len + self.rng.range(8, 4096)) as u32,
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
        out.extend_from_slice(&payload);
        // Pad to the next message; usually with zeroes, sometimes junk.
        let pad = nlmsg_align(out.len()) - out.len();
        if self.rng.chance(95) {
            out.extend(std::iter::repeat_n(0, pad));
        } else {
            let junk = self.rng.bytes(pad);
            out.extend(junk);
        }
    }

    /// One datagram of up to `count` messages, or one of the special shapes.
    fn datagram(&mut self, count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        match self.rng.below(100) {
            0..=1 => {}
            2..=9 => {
                let n = self.rng.range(1, 300);
                out = self.rng.bytes(n);
            }
            10..=13 => {
                // One message at the payload limit: just under, at, over.
                let max = self.limits.max_payload;
                let n = self.rng.range(max.saturating_sub(1), max + 1);
                self.seq = self.seq.wrapping_add(1);
                let ty = if self.rng.chance(70) {
                    MsgType::Echo.raw()
                } else {
                    MsgType::Broadcast.raw()
                };
                let mut payload = if ty == MsgType::Broadcast.raw() {
                    BroadcastHdr { group: 2 }.to_bytes().to_vec()
                } else {
                    Vec::new()
                };
                payload.extend(self.rng.bytes(n));
                let h = NlMsgHdr {
                    len: (NLMSG_HDRLEN + payload.len()) as u32,
                    ty,
                    flags: NLM_F_REQUEST | if self.rng.chance(50) { NLM_F_ACK } else { 0 },
                    seq: self.seq,
                    pid: 0,
                };
                out.extend_from_slice(&h.to_bytes());
                out.extend_from_slice(&payload);
            }
            _ => {
                let n = match self.rng.below(10) {
                    0..=5 => self.rng.range(1, 8),
                    6..=8 => self.rng.range(9, 32),
                    _ => count,
                };
                for _ in 0..n.min(count) {
                    self.message(&mut out);
                }
                match self.rng.below(100) {
                    0..=5 if !out.is_empty() => {
                        let keep = self.rng.range(0, out.len() - 1);
                        out.truncate(keep);
                    }
                    6..=10 => {
                        let n = self.rng.range(1, 20);
                        out.extend(self.rng.bytes(n));
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

/// What one fuzzing thread did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub datagrams: u64,
    pub messages: u64,
    pub answers: u64,
}

impl Tally {
    /// The unprivileged child's report to [`gather`].
    pub fn print(&self) {
        println!(
            "FUZZ-TALLY {} {} {}",
            self.datagrams, self.messages, self.answers
        );
    }

    pub fn add(&mut self, o: Tally) {
        self.datagrams += o.datagrams;
        self.messages += o.messages;
        self.answers += o.answers;
    }
}

/// Sends `messages` fuzzed messages (at least) on a fresh socket and checks
/// every answer. `net_admin`: whether this process has `CAP_NET_ADMIN`.
pub fn fuzz_socket(seed: u64, messages: u64, net_admin: bool, who: &str) -> Result<Tally, String> {
    let mut setup = Rng::new(seed ^ 0x5EED);
    let ext_ack = setup.chance(75);
    let cap_ack = setup.chance(30);
    let mut sock = Socket::open(DEFAULT_UNIT).map_err(|e| format!("{who}: open: {e}"))?;
    sock.set_ext_ack(ext_ack).map_err(|e| e.to_string())?;
    sock.set_cap_ack(cap_ack).map_err(|e| e.to_string())?;
    // 8 MiB (the kernel doubles it); an unprivileged sender gets what
    // net.core.rmem_max allows, which the parent raised.
    sock.set_recv_buffer_size(4 << 20)
        .map_err(|e| e.to_string())?;
    sock.set_recv_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let rcvbuf = recv_buffer(&sock)?;
    let t = Target {
        limits: Limits {
            max_payload: DEFAULT_MAX_PAYLOAD,
            groups: rustnl::proto::DEFAULT_GROUPS,
        },
        open_broadcast: false,
        net_admin,
        ext_ack,
        cap_ack,
        portid: sock.port_id(),
    };
    let mut gen = Gen::new(seed, t.limits);
    let mut tally = Tally::default();
    let budget = rcvbuf / 2;
    while tally.messages < messages {
        let mut count = 64;
        let (dgram, expect, n) = loop {
            let d = gen.datagram(count);
            let (e, n) = model(&d, &t);
            let charge: usize = e
                .iter()
                .map(|x| match x {
                    Expect::Reply {
                        body: Body::Echo(p),
                        ..
                    } => truesize(NLMSG_HDRLEN + p.len()),
                    Expect::Error { request, .. } => truesize(request.len() + 200),
                    _ => truesize(200),
                })
                .sum();
            if charge <= budget && d.len() <= 150_000 {
                break (d, e, n);
            }
            count = (count / 2).max(1);
        };
        let index = tally.datagrams;
        let fail = |why: String| {
            format!(
                "{who} (seed {seed}, ext_ack {ext_ack}, cap_ack {cap_ack}), datagram {index} ({} bytes): {why}\n      datagram {}",
                dgram.len(),
                hex(&dgram)
            )
        };
        if dgram.is_empty() {
            // The netlink core refuses an empty datagram before any
            // protocol sees it.
            match sock.send(&dgram) {
                Err(e) if e.errno() == Some(libc::ENODATA) => {}
                other => return Err(fail(format!("empty datagram: {other:?}"))),
            }
            tally.datagrams += 1;
            continue;
        }
        sock.send(&dgram).map_err(|e| fail(format!("send: {e}")))?;
        // Answers come one or several to a datagram (the module gathers
        // replies to one request datagram); each message is checked in
        // order, up to its aligned end.
        expect_answers(&mut sock, expect.len(), |k, msg| check(msg, &expect[k], &t))
            .map_err(fail)?;
        tally.datagrams += 1;
        tally.messages += n as u64;
        tally.answers += expect.len() as u64;
        // Now and then (and at the end): a NOOP with ACK must be the very
        // next answer, so nothing extra was queued.
        if tally.datagrams % 256 == 0 || tally.messages >= messages {
            sentinel(
                &mut sock,
                &t,
                0x7000_0000 | (tally.datagrams as u32 & 0xffff),
            )
            .map_err(fail)?;
            tally.answers += 1;
        }
    }
    // The same socket still gets a plain echo.
    let mut c = rustnl::Client::connect(DEFAULT_UNIT).map_err(|e| e.to_string())?;
    let got = c
        .echo(b"after the fuzzing")
        .map_err(|e| format!("{who}: {e}"))?;
    if got != b"after the fuzzing" {
        return Err(format!("{who}: echo after fuzzing returned {got:?}"));
    }
    Ok(tally)
}

/// Receives the answers to one datagram: `count` netlink messages from the
/// kernel, in as many datagrams as it sends, each passed in order to
/// `check(k, message)` (the message up to its aligned end).
pub fn expect_answers(
    sock: &mut Socket,
    count: usize,
    mut check: impl FnMut(usize, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut k = 0;
    while k < count {
        let d = sock
            .recv()
            .map_err(|e| format!("answer {k} of {count}: {e}"))?;
        if d.sender != 0 {
            return Err(format!("answer from port {}", d.sender));
        }
        let bytes = d.bytes;
        let mut off = 0;
        while off < bytes.len() {
            let h = NlMsgHdr::parse(&bytes[off..])
                .ok_or_else(|| format!("{} stray bytes after answer {k}", bytes.len() - off))?;
            let end = off
                .saturating_add(nlmsg_align(h.len as usize))
                .min(bytes.len());
            if k >= count {
                return Err(format!("an answer beyond the {count} expected"));
            }
            check(k, &bytes[off..end]).map_err(|e| format!("answer {k}: {e}"))?;
            k += 1;
            off = end.max(off + NLMSG_HDRLEN);
        }
    }
    Ok(())
}

fn sentinel(sock: &mut Socket, t: &Target, seq: u32) -> Result<(), String> {
    let h = NlMsgHdr {
        len: NLMSG_HDRLEN as u32,
        ty: NLMSG_NOOP,
        flags: NLM_F_REQUEST | NLM_F_ACK,
        seq,
        pid: 0,
    };
    sock.send(&h.to_bytes()).map_err(|e| e.to_string())?;
    let d = sock.recv().map_err(|e| format!("sentinel ack: {e}"))?;
    let want = Expect::Error {
        errno: 0,
        request: h.to_bytes().to_vec(),
        text: None,
    };
    check(d.bytes, &want, t).map_err(|e| format!("sentinel (an extra answer was queued?): {e}"))
}

pub fn recv_buffer(sock: &Socket) -> Result<usize, String> {
    use std::os::fd::AsRawFd;
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a c_int of the given length.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!(
            "getsockopt(SO_RCVBUF): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(v.max(0) as usize)
}

/// Runs the whole fuzzer: `THREADS` root sockets in threads and one
/// unprivileged child process, `messages` messages in all; then the module
/// must still answer a plain echo.
pub fn run(seed: u64, messages: u64) -> Result<Tally, String> {
    // Let the unprivileged child have a large receive buffer too.
    std::fs::write("/proc/sys/net/core/rmem_max", (8u32 << 20).to_string())
        .map_err(|e| format!("raising rmem_max: {e}"))?;
    let share = messages.div_ceil(THREADS + 1);
    let child = crate::children::spawn_child(
        crate::children::Role::Fuzz,
        &[&(seed + THREADS).to_string(), &share.to_string()],
    )?;
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            std::thread::spawn(move || {
                fuzz_socket(seed + i, share, true, &format!("root thread {i}"))
            })
        })
        .collect();
    gather(threads, child)
}

/// The tallies of the fuzzing `threads` and of the unprivileged `child`
/// (its `FUZZ-TALLY` line), or every failure among them.
pub fn gather(
    threads: Vec<std::thread::JoinHandle<Result<Tally, String>>>,
    child: std::process::Child,
) -> Result<Tally, String> {
    let mut total = Tally::default();
    let mut errors = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(tally)) => total.add(tally),
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a fuzzing thread panicked".into()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().find_map(|l| l.strip_prefix("FUZZ-TALLY ")) {
        Some(line) if out.status.success() => {
            let v: Vec<u64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
            if let [d, m, a] = v[..] {
                total.add(Tally {
                    datagrams: d,
                    messages: m,
                    answers: a,
                });
            } else {
                errors.push(format!("unprivileged child printed {line:?}"));
            }
        }
        _ => errors.push(format!("unprivileged child failed: {}", text.trim())),
    }
    if !errors.is_empty() {
        return Err(errors.join("\n    "));
    }
    Ok(total)
}

/// The unprivileged fuzzing child (`--child fuzz SEED MESSAGES`).
pub fn child(seed: &str, messages: &str) -> Result<(), String> {
    let seed: u64 = seed.parse().map_err(|_| "bad seed")?;
    let messages: u64 = messages.parse().map_err(|_| "bad message count")?;
    crate::drop_privileges()?;
    let t = fuzz_socket(seed, messages, false, "unprivileged process")?;
    t.print();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            limits: Limits::default(),
            open_broadcast: false,
            net_admin: true,
            ext_ack: true,
            cap_ack: false,
            portid: 77,
        }
    }

    #[test]
    fn model_of_a_good_echo_with_ack() {
        let mut m = Vec::new();
        let h = NlMsgHdr {
            len: 19,
            ty: 0x10,
            flags: NLM_F_REQUEST | NLM_F_ACK,
            seq: 5,
            pid: 0,
        };
        m.extend_from_slice(&h.to_bytes());
        m.extend_from_slice(b"abc\0");
        let (e, n) = model(&m, &target());
        assert_eq!(n, 1);
        assert_eq!(e.len(), 2);
        let echo = reply_bytes(0x10, 5, b"abc", &target());
        assert_eq!(echo.len(), 20);
        assert!(check(&echo, &e[0], &target()).is_ok());
        let ack = error_bytes(0, &m[..19], None, &target());
        assert_eq!(ack.len(), 36);
        assert!(check(&ack, &e[1], &target()).is_ok());
    }

    #[test]
    fn model_of_garbage_is_one_einval() {
        let (e, n) = model(&[1, 2, 3], &target());
        assert_eq!(n, 1);
        assert!(matches!(&e[0], Expect::Error { errno, .. } if *errno == libc::EINVAL));
    }

    #[test]
    fn generator_is_deterministic() {
        let mut a = Gen::new(42, Limits::default());
        let mut b = Gen::new(42, Limits::default());
        for _ in 0..100 {
            assert_eq!(a.datagram(64), b.datagram(64));
        }
    }
}
