//! rustnl-bench: the guest side of `make bench`. Loads the Rust module and
//! the C reference module in turn (A, B, A, B … on the same unit, and the
//! same generic netlink family name) and runs the same client workloads
//! against each:
//!
//! - echo round-trip time for 64 B, 1 KiB and 16 KiB payloads;
//! - batched echo, K = 1, 8, 64 messages per datagram: messages per second;
//! - multicast fan-out to N = 1, 8, 64 listeners: deliveries per second;
//! - heap allocations per message on the client's send/receive path;
//! - on the generic netlink face (family `rustnl`, looked up with the
//!   library's `GenlSocket` after each load): echo round-trip time for the
//!   same sizes and fan-out to the same listener counts (`genl_` metrics).
//!   The client then sends and receives raw datagrams exactly as for the
//!   classic face, so its cost is the same for both modules. A module
//!   without the family fails the run with the controller's answer: no
//!   figure is made up for it.
//!
//! Each figure is printed as one `RUSTNL-BENCH {json}` line; the host
//! (scripts/bench.sh) turns them into the table. Under QEMU's
//! `-icount shift=0` the guest clock follows executed instructions, so the
//! same figures become repeatable instruction-time measures.
//!
//! Usage: `rustnl-bench --rust KO --c KO [--rounds R] [--scale smoke|quick|full]
//! [--faces classic,genl]`

use rustnl::attr::AttrBuilder;
use rustnl::genl::{GenlHeader, GenlSocket, NETLINK_GENERIC};
use rustnl::proto::genl::{Attr, Cmd, McastGroup, FAMILY_NAME, FAMILY_VERSION};
use rustnl::proto::{BroadcastHdr, MsgType, DEFAULT_UNIT, NLM_F_ACK, NLM_F_REQUEST};
use rustnl::{Client, Error, MessageBuilder, RecvMode, Socket};
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Counts every heap allocation of the process.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Workload sizes.
#[derive(Clone, Copy)]
struct Sizes {
    rtt: usize,
    batch_msgs: usize,
    fanout_deliveries: usize,
    warmup: usize,
}

const FULL: Sizes = Sizes {
    rtt: 100_000,
    batch_msgs: 64 * 2_000,
    fanout_deliveries: 64 * 1_000,
    warmup: 2_000,
};

/// For quick A/B experiments (`--scale quick`).
const QUICK: Sizes = Sizes {
    rtt: 20_000,
    batch_msgs: 64 * 250,
    fanout_deliveries: 64 * 250,
    warmup: 500,
};

const SMOKE: Sizes = Sizes {
    rtt: 200,
    batch_msgs: 64 * 4,
    fanout_deliveries: 64 * 4,
    warmup: 20,
};

fn emit(module: &str, round: usize, fields: &str) {
    println!("RUSTNL-BENCH {{\"module\":\"{module}\",\"round\":{round},{fields}}}");
}

/// Appends a request (`NLM_F_REQUEST`) to `out`, with the library's builder.
fn request(ty: u16, seq: u32, parts: &[&[u8]], out: &mut MessageBuilder) -> Res<()> {
    out.push_parts(ty, NLM_F_REQUEST, seq, parts).map_err(err)?;
    Ok(())
}

/// The face a workload speaks to.
#[derive(Clone, Copy)]
enum Face {
    /// The classic unit, [`DEFAULT_UNIT`].
    Classic,
    /// The generic netlink family as the loaded module registered it.
    Genl(GenlIds),
}

/// What the controller says of the loaded module's family.
#[derive(Clone, Copy)]
struct GenlIds {
    /// The family id (`nlmsg_type` of requests, replies and events).
    family: u16,
    /// The id of its multicast group `events`.
    events: u32,
}

/// Looks the family up (`CTRL_CMD_GETFAMILY`, the library's `GenlSocket`).
fn genl_ids(module: &str) -> Res<GenlIds> {
    let mut genl = GenlSocket::open().map_err(err)?;
    let family = match genl.family(FAMILY_NAME) {
        Ok(f) => f,
        Err(Error::FamilyNotFound { .. }) => {
            return Err(format!(
                "generic netlink family {FAMILY_NAME:?} not registered after loading the \
                 {module} module: no genl figures for it"
            ))
        }
        Err(e) => return Err(format!("resolving family {FAMILY_NAME:?}: {e}")),
    };
    let events = family
        .group(McastGroup::Events.name())
        .ok_or_else(|| format!("family {FAMILY_NAME:?} has no multicast group \"events\""))?;
    Ok(GenlIds {
        family: family.id,
        events,
    })
}

impl Face {
    /// Metric name prefix: none for the classic face, `genl_` for genl.
    fn prefix(self) -> &'static str {
        match self {
            Face::Classic => "",
            Face::Genl(_) => "genl_",
        }
    }

    /// Opens a client socket of this face.
    fn open(self, rcvbuf: usize) -> Res<Socket> {
        match self {
            Face::Classic => open(rcvbuf),
            Face::Genl(_) => open_unit(NETLINK_GENERIC, rcvbuf),
        }
    }

    /// Appends an echo request of `payload` to `out`.
    fn echo(self, seq: u32, payload: &[u8], out: &mut MessageBuilder) -> Res<()> {
        match self {
            Face::Classic => request(MsgType::Echo.raw(), seq, &[payload], out),
            Face::Genl(ids) => {
                let mut a = AttrBuilder::new();
                a.put(Attr::Payload.raw(), payload).map_err(err)?;
                genl_request(ids, Cmd::Echo, seq, a.as_bytes(), out)
            }
        }
    }

    /// Appends a broadcast request of `body` to numbered group `group`.
    fn broadcast(self, seq: u32, group: u32, body: &[u8], out: &mut MessageBuilder) -> Res<()> {
        match self {
            Face::Classic => {
                let hdr = BroadcastHdr { group }.to_bytes();
                request(MsgType::Broadcast.raw(), seq, &[&hdr, body], out)
            }
            Face::Genl(ids) => {
                let mut a = AttrBuilder::new();
                a.put_u32(Attr::Group.raw(), group).map_err(err)?;
                a.put(Attr::Payload.raw(), body).map_err(err)?;
                genl_request(ids, Cmd::Broadcast, seq, a.as_bytes(), out)
            }
        }
    }

    /// The answer to an echo of `size` bytes: its `nlmsg_type` and payload
    /// length (genl: `genlmsghdr` and the payload attribute, padded).
    fn echo_answer(self, size: usize) -> (u16, usize) {
        match self {
            Face::Classic => (MsgType::Echo.raw(), size),
            Face::Genl(ids) => (ids.family, 4 + 4 + size.next_multiple_of(4)),
        }
    }

    /// How a broadcast's answer, and an event, are recognised: `nlmsg_type`
    /// and (genl) the command.
    fn broadcast_answer(self) -> (u16, Option<u8>) {
        match self {
            Face::Classic => (MsgType::Broadcast.raw(), None),
            Face::Genl(ids) => (ids.family, Some(Cmd::Broadcast.raw())),
        }
    }

    fn event(self) -> (u16, Option<u8>) {
        match self {
            Face::Classic => (MsgType::Event.raw(), None),
            Face::Genl(ids) => (ids.family, Some(Cmd::Event.raw())),
        }
    }

    /// The multicast group the fan-out listeners join to get the events of
    /// numbered group `group`.
    fn listen_group(self, group: u32) -> u32 {
        match self {
            Face::Classic => group,
            Face::Genl(ids) => ids.events,
        }
    }
}

/// Appends a generic netlink request (`NLM_F_REQUEST`) of command `cmd`.
fn genl_request(
    ids: GenlIds,
    cmd: Cmd,
    seq: u32,
    attrs: &[u8],
    out: &mut MessageBuilder,
) -> Res<()> {
    let hdr = GenlHeader {
        cmd: cmd.raw(),
        version: FAMILY_VERSION,
    }
    .to_bytes();
    out.push_parts(ids.family, NLM_F_REQUEST, seq, &[&hdr, attrs])
        .map_err(err)?;
    Ok(())
}

fn open(rcvbuf: usize) -> Res<Socket> {
    open_unit(DEFAULT_UNIT, rcvbuf)
}

fn open_unit(unit: u32, rcvbuf: usize) -> Res<Socket> {
    let mut s = Socket::open(unit).map_err(err)?;
    s.set_recv_mode(RecvMode::Fixed);
    s.set_recv_buffer_size(rcvbuf).map_err(err)?;
    s.set_recv_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    Ok(s)
}

/// Receives until `n` messages of type `ty` (and, for generic netlink,
/// command `cmd`) arrived (a datagram may hold several); returns how many
/// datagrams that took.
fn drain(sock: &mut Socket, n: usize, (ty, cmd): (u16, Option<u8>)) -> Res<usize> {
    let (mut got, mut datagrams) = (0, 0);
    while got < n {
        let d = match sock.recv() {
            Ok(d) => d,
            // The buffer grew to fit; the datagram is lost, which a
            // benchmark must not paper over.
            Err(e) => return Err(format!("after {got} of {n}: {e}")),
        };
        datagrams += 1;
        for m in d.messages() {
            let m = m.map_err(err)?;
            if m.header.ty != ty {
                return Err(format!("answer of type {:#x}", m.header.ty));
            }
            if let Some(cmd) = cmd {
                if m.payload.first() != Some(&cmd) {
                    return Err(format!("genl answer with command {:?}", m.payload.first()));
                }
            }
            got += 1;
        }
    }
    Ok(datagrams)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Echo round trips of `size` bytes, one at a time.
fn echo_rtt(module: &str, round: usize, face: Face, size: usize, s: Sizes) -> Res<()> {
    let mut sock = face.open(1 << 20)?;
    let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut b = MessageBuilder::new();
    face.echo(0, &payload, &mut b)?;
    let (want_ty, want_len) = face.echo_answer(size);
    // Each round trip patches its sequence number into this copy.
    let mut msg = b.as_bytes().to_vec();
    // Grow the receive buffer once, outside the measurement.
    sock.send(&msg).map_err(err)?;
    match sock.recv() {
        Ok(_) => {}
        Err(Error::Truncated { .. }) => {
            sock.send(&msg).map_err(err)?;
            sock.recv().map_err(err)?;
        }
        Err(e) => return Err(err(e)),
    }
    let mut samples = Vec::with_capacity(s.rtt);
    for i in 0..(s.warmup + s.rtt) {
        let seq = i as u32 + 1;
        msg[8..12].copy_from_slice(&seq.to_ne_bytes());
        if i == s.warmup {
            ALLOCS.store(0, Relaxed);
        }
        let t0 = Instant::now();
        sock.send(&msg).map_err(err)?;
        let d = sock.recv().map_err(err)?;
        let dt = t0.elapsed();
        let m = d.messages().next().ok_or("empty answer")?.map_err(err)?;
        if m.header.seq != seq || m.header.ty != want_ty || m.payload.len() != want_len {
            return Err(format!(
                "echo {seq}: wrong answer (type {:#x}, seq {}, {} bytes)",
                m.header.ty,
                m.header.seq,
                m.payload.len()
            ));
        }
        if i >= s.warmup {
            samples.push(dt.as_nanos() as u64);
        }
    }
    let allocs = ALLOCS.load(Relaxed);
    samples.sort_unstable();
    emit(
        module,
        round,
        &format!(
            "\"metric\":\"{}echo_rtt_ns\",\"size\":{size},\"n\":{},\"min\":{},\"median\":{},\"p99\":{},\"allocs_per_msg\":{:.4}",
            face.prefix(),
            samples.len(),
            samples[0],
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            allocs as f64 / s.rtt as f64
        ),
    );
    Ok(())
}

/// The library's high-level path: `Client::echo`, allocations counted.
fn client_allocs(module: &str, round: usize, s: Sizes) -> Res<()> {
    let mut c = Client::connect(DEFAULT_UNIT).map_err(err)?;
    let payload = [7u8; 64];
    for _ in 0..s.warmup {
        c.echo(&payload).map_err(err)?;
    }
    let n = s.rtt.min(10_000);
    ALLOCS.store(0, Relaxed);
    for _ in 0..n {
        c.echo(&payload).map_err(err)?;
    }
    let allocs = ALLOCS.load(Relaxed);
    emit(
        module,
        round,
        &format!(
            "\"metric\":\"client_echo_allocs_per_msg\",\"n\":{n},\"value\":{:.4}",
            allocs as f64 / n as f64
        ),
    );
    Ok(())
}

/// K echo messages of 64 B per datagram; all K answers drained before the
/// next datagram.
fn batched(module: &str, round: usize, k: usize, s: Sizes) -> Res<()> {
    let mut sock = open(4 << 20)?;
    let payload = [0x42u8; 64];
    let mut dgram = MessageBuilder::new();
    for j in 0..k {
        request(MsgType::Echo.raw(), j as u32, &[&payload], &mut dgram)?;
    }
    let rounds = s.batch_msgs / k;
    let warm = (s.warmup / k).max(1);
    let mut datagrams = 0;
    let mut t0 = Instant::now();
    for r in 0..(warm + rounds) {
        if r == warm {
            t0 = Instant::now();
            datagrams = 0;
        }
        sock.send(dgram.as_bytes()).map_err(err)?;
        datagrams += drain(&mut sock, k, (MsgType::Echo.raw(), None))?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let msgs = rounds * k;
    emit(
        module,
        round,
        &format!(
            "\"metric\":\"batch_msgs_per_sec\",\"k\":{k},\"n\":{msgs},\"value\":{:.1},\"answer_datagrams_per_batch\":{:.2}",
            msgs as f64 / secs,
            datagrams as f64 / rounds as f64
        ),
    );
    Ok(())
}

/// One broadcaster, `n` listeners of group 9 (genl: of the `events` group,
/// which carries every numbered group); 16 broadcasts per datagram, then
/// every listener drains its 16 events.
fn fanout(module: &str, round: usize, face: Face, n: usize, s: Sizes) -> Res<()> {
    const GROUP: u32 = 9;
    const BATCH: usize = 16;
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let l = face.open(1 << 20)?;
        l.add_membership(face.listen_group(GROUP)).map_err(err)?;
        listeners.push(l);
    }
    let mut tx = face.open(1 << 20)?;
    let body = [0x33u8; 64];
    let mut dgram = MessageBuilder::new();
    for j in 0..BATCH {
        face.broadcast(j as u32, GROUP, &body, &mut dgram)?;
    }
    let rounds = (s.fanout_deliveries / (n * BATCH)).max(2);
    let warm = 2;
    let mut t0 = Instant::now();
    for r in 0..(warm + rounds) {
        if r == warm {
            t0 = Instant::now();
        }
        tx.send(dgram.as_bytes()).map_err(err)?;
        drain(&mut tx, BATCH, face.broadcast_answer())?;
        for l in listeners.iter_mut() {
            drain(l, BATCH, face.event())?;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let deliveries = rounds * BATCH * n;
    emit(
        module,
        round,
        &format!(
            "\"metric\":\"{}fanout_deliveries_per_sec\",\"listeners\":{n},\"n\":{deliveries},\"value\":{:.1}",
            face.prefix(),
            deliveries as f64 / secs
        ),
    );
    Ok(())
}

fn pin_to_cpu(cpu: usize) -> Res<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET and
    // sched_setaffinity get a valid set of the right size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity(cpu {cpu}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn unload_all() {
    for m in ["rustnl", "rustnl_c"] {
        let loaded = std::fs::read_to_string("/proc/modules")
            .map(|t| t.lines().any(|l| l.split(' ').next() == Some(m)))
            .unwrap_or(false);
        if loaded {
            let _ = Command::new("rmmod").arg(m).status();
        }
    }
}

fn load(ko: &str) -> Res<()> {
    load_with(ko, &[])
}

fn load_with(ko: &str, params: &[&str]) -> Res<()> {
    unload_all();
    let out = Command::new("insmod")
        .arg(ko)
        .args(params)
        .output()
        .map_err(err)?;
    if !out.status.success() {
        return Err(format!(
            "insmod {ko}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

// --- Same answers -----------------------------------------------------------
//
// Before anything is timed, both modules get the same fixed script of
// requests on both faces and must answer it alike, byte for byte (up to
// what differs between any two loads: the family id, port ids, timestamps).
// This is what makes the C module a reference for the Rust one: the same
// policies (the core's answers to a policy violation, NLMSGERR_ATTR_POLICY
// included), the same replies and attribute layouts, the same errnos and
// extended-ack texts, the same counters.

/// Parameters both modules are loaded with for the script: a `max_payload`
/// and `groups` low enough that the module's own refusals are reachable.
const SAME_PARAMS: [&str; 2] = ["max_payload=1000", "groups=8"];

/// The attributes of a netlink attribute stream, one `type=value` each
/// (`type` with its flag bits); nests are opened when `nested(type)`. At
/// the top level (`tx_port` given) the timestamp is shown by its length and
/// the sender's port id as `<sender>`.
fn render_attrs(mut b: &[u8], tx_port: Option<u32>, nested: &dyn Fn(u16) -> bool) -> String {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]);
        if len < 4 || len > b.len() {
            out.push(format!("<bad attribute: len {len} of {}>", b.len()));
            break;
        }
        let v = &b[4..len];
        let bare = ty & 0x3fff;
        let value = if nested(ty) {
            format!("{{{}}}", render_attrs(v, None, &|_| false))
        } else if tx_port.is_some() && bare == Attr::TimestampNs.raw() {
            format!("<{} bytes>", v.len())
        } else if tx_port.is_some_and(|p| bare == Attr::OriginPortid.raw() && v == p.to_ne_bytes())
        {
            "<sender>".into()
        } else {
            v.iter().map(|x| format!("{x:02x}")).collect::<String>()
        };
        out.push(format!("{ty:#x}={value}"));
        b = b.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    if !b.is_empty() {
        out.push(format!("<{} stray bytes>", b.len()));
    }
    out.join(" ")
}

/// One answer, without what differs between loads: `family` stands for
/// the family id; port ids are left out (`<sender>` in an attribute).
fn render_answer(m: &rustnl::proto::Message<'_>, family: u16, tx_port: u32) -> String {
    let h = &m.header;
    let ty = if h.ty == family {
        "family".to_string()
    } else {
        format!("{:#x}", h.ty)
    };
    let head = format!("type {ty} flags {:#x} seq {}", h.flags, h.seq);
    if h.ty == rustnl::proto::NLMSG_ERROR && m.payload.len() >= 4 + 16 {
        let errno = i32::from_ne_bytes(m.payload[..4].try_into().unwrap_or_default());
        // The request's header is echoed (its type is the family id): only
        // its sequence number is kept; NETLINK_CAP_ACK leaves its payload
        // out, the extended ack's attributes follow.
        let seq = u32::from_ne_bytes(m.payload[12..16].try_into().unwrap_or_default());
        let tlvs = render_attrs(&m.payload[20..], None, &|ty| ty & 0x3fff == 4);
        return format!("{head} error {errno} for seq {seq} ext-ack [{tlvs}]");
    }
    if h.ty == family {
        if let Some((g, attrs)) = GenlHeader::parse(m.payload) {
            let counters = [Attr::ClassicCounters.raw(), Attr::GenlCounters.raw()];
            let attrs = render_attrs(attrs, Some(tx_port), &|ty| {
                counters.contains(&(ty & 0x3fff))
            });
            return format!("{head} cmd {} v{} [{attrs}]", g.cmd, g.version);
        }
    }
    let bytes: String = m.payload.iter().map(|x| format!("{x:02x}")).collect();
    format!("{head} payload {bytes}")
}

/// Sends `dgram` on `sock` and renders the next `n` answers.
fn exchange(sock: &mut Socket, dgram: &[u8], n: usize, family: u16) -> Res<Vec<String>> {
    let tx_port = sock.port_id();
    sock.send(dgram).map_err(err)?;
    let mut out = Vec::new();
    while out.len() < n {
        let d = sock
            .recv()
            .map_err(|e| format!("waiting for answer {} of {n}: {e}", out.len() + 1))?;
        for m in d.messages() {
            out.push(render_answer(&m.map_err(err)?, family, tx_port));
        }
    }
    Ok(out)
}

/// The fixed script, against the module loaded from `ko`: each answer (and
/// the events a listener got) as one line.
fn transcript(module: &str, ko: &str) -> Res<Vec<String>> {
    load_with(ko, &SAME_PARAMS)?;
    // The sockets are closed before the unload (the C unit's pin the
    // module).
    let out = script(module);
    unload_all();
    out
}

fn script(module: &str) -> Res<Vec<String>> {
    let ids = genl_ids(module)?;
    let f = ids.family;
    let mut g = open_unit(NETLINK_GENERIC, 1 << 20)?;
    g.set_ext_ack(true).map_err(err)?;
    g.set_cap_ack(true).map_err(err)?;
    let mut listener = open_unit(NETLINK_GENERIC, 1 << 20)?;
    listener.set_ext_ack(true).map_err(err)?;
    listener.set_cap_ack(true).map_err(err)?;
    let mut classic = open(1 << 20)?;
    classic.set_ext_ack(true).map_err(err)?;
    classic.set_cap_ack(true).map_err(err)?;
    let tx_port = g.port_id();

    // (what, command, flags, attributes, answers expected)
    type Step = (&'static str, u8, u16, Vec<u8>, usize);
    let attr = |ty: u16, v: &[u8]| -> Vec<u8> {
        let mut a = AttrBuilder::new();
        // Small attributes: nothing to fail.
        let _ = a.put(ty, v);
        a.into_bytes()
    };
    let pl = |v: &[u8]| attr(Attr::Payload.raw(), v);
    let gr = |g: u32| attr(Attr::Group.raw(), &g.to_ne_bytes());
    let lg = |g: u32| attr(Attr::ListenGroup.raw(), &g.to_ne_bytes());
    let set_groups = Cmd::SetGroups.raw();
    // The listener receives group 8 only (set-groups on its own socket,
    // before it joins `events`): the broadcast to group 3 below has no
    // listener of its group.
    let mut b = MessageBuilder::new();
    let hdr = GenlHeader {
        cmd: set_groups,
        version: FAMILY_VERSION,
    }
    .to_bytes();
    b.push_parts(f, NLM_F_REQUEST | NLM_F_ACK, 1, &[&hdr, &lg(8)])
        .map_err(err)?;
    let mut out = Vec::new();
    for line in exchange(&mut listener, b.as_bytes(), 1, f)? {
        out.push(format!("genl listener set-groups 8: {line}"));
    }
    listener.add_membership(ids.events).map_err(err)?;
    let bytes = |n: usize| -> Vec<u8> { (0..n).map(|i| i as u8).collect() };
    let (echo, bcast, info) = (Cmd::Echo.raw(), Cmd::Broadcast.raw(), Cmd::GetInfo.raw());
    let unknown = attr(7, &[1, 0, 0, 0]);
    let short_group = attr(Attr::Group.raw(), &[1, 0]);
    let (ok, big) = (bytes(1000), bytes(1001));
    let steps: Vec<Step> = vec![
        ("echo 5 B", echo, 0, pl(b"hello"), 1),
        ("echo without payload", echo, 0, vec![], 1),
        ("echo 1000 B (max_payload)", echo, 0, pl(&ok), 1),
        ("echo 1001 B", echo, 0, pl(&big), 1),
        ("echo with ack", echo, NLM_F_ACK, pl(b"abc"), 2),
        ("echo, unknown attribute", echo, 0, unknown, 1),
        ("echo, group (not in its policy)", echo, 0, gr(1), 1),
        ("broadcast without group", bcast, 0, pl(b"x"), 1),
        ("broadcast group 0", bcast, 0, gr(0), 1),
        ("broadcast group 2000", bcast, 0, gr(2000), 1),
        ("broadcast group 9 of 8", bcast, 0, gr(9), 1),
        ("broadcast group, 2 bytes", bcast, 0, short_group, 1),
        ("broadcast 1001 B", bcast, 0, [gr(3), pl(&big)].concat(), 1),
        (
            "broadcast group 3",
            bcast,
            NLM_F_ACK,
            [gr(3), pl(b"event")].concat(),
            2,
        ),
        ("broadcast group 8, no payload", bcast, 0, gr(8), 1),
        ("get-info", info, 0, vec![], 1),
        ("get-info with an attribute", info, 0, gr(1), 1),
        ("command 4 (an event)", Cmd::Event.raw(), 0, vec![], 1),
        ("command 99", 99, 0, vec![], 1),
        (
            "set-groups 2 and 5",
            set_groups,
            NLM_F_ACK,
            [lg(2), lg(5)].concat(),
            1,
        ),
        ("set-groups, none named", set_groups, NLM_F_ACK, vec![], 1),
        ("set-groups 0", set_groups, 0, lg(0), 1),
        (
            "set-groups 9 of 8, second",
            set_groups,
            0,
            [lg(1), lg(9)].concat(),
            1,
        ),
        ("set-groups with a group", set_groups, 0, gr(1), 1),
    ];
    for (seq, (what, cmd, flags, a, n)) in steps.into_iter().enumerate() {
        let mut b = MessageBuilder::new();
        let hdr = GenlHeader {
            cmd,
            version: FAMILY_VERSION,
        }
        .to_bytes();
        b.push_parts(f, NLM_F_REQUEST | flags, seq as u32 + 1, &[&hdr, &a])
            .map_err(err)?;
        for line in exchange(&mut g, b.as_bytes(), n, f)? {
            out.push(format!("genl {what}: {line}"));
        }
    }
    // The one event the listener got (group 8's; it chose no other).
    for i in 0..1 {
        let d = listener
            .recv()
            .map_err(|e| format!("listener, event {}: {e}", i + 1))?;
        for m in d.messages() {
            out.push(format!(
                "genl event: {}",
                render_answer(&m.map_err(err)?, f, tx_port)
            ));
        }
    }
    // The classic face, then both faces' counters once more.
    let mut b = MessageBuilder::new();
    request(MsgType::Echo.raw(), 100, &[b"classic"], &mut b)?;
    for line in exchange(&mut classic, b.as_bytes(), 1, f)? {
        out.push(format!("classic echo: {line}"));
    }
    let mut b = MessageBuilder::new();
    request(MsgType::GetInfo.raw(), 101, &[], &mut b)?;
    for line in exchange(&mut classic, b.as_bytes(), 1, f)? {
        out.push(format!("classic get_info: {line}"));
    }
    let mut b = MessageBuilder::new();
    genl_request(ids, Cmd::GetInfo, 102, &[], &mut b)?;
    for line in exchange(&mut g, b.as_bytes(), 1, f)? {
        out.push(format!("genl get-info after: {line}"));
    }
    Ok(out)
}

/// Runs the script against both modules; the number of answers compared,
/// or the first difference with both transcripts.
fn same_answers(rust: &str, c: &str) -> Res<usize> {
    let r = transcript("rust", rust)?;
    let k = transcript("c", c)?;
    if r == k {
        for line in &r {
            // In the console log; the host's terminal filters RUSTNL- lines.
            println!("RUSTNL-SAME-ANSWER {line}");
        }
        return Ok(r.len());
    }
    let at = r
        .iter()
        .zip(&k)
        .position(|(a, b)| a != b)
        .unwrap_or(r.len().min(k.len()));
    Err(format!(
        "the modules answer the script differently at answer {}:\\n  rust: {}\\n  c:    {}\\n\\
         rust transcript:\\n  {}\\nc transcript:\\n  {}",
        at + 1,
        r.get(at).map_or("<none>", String::as_str),
        k.get(at).map_or("<none>", String::as_str),
        r.join("\\n  "),
        k.join("\\n  ")
    ))
}

/// `--genl-echoes N`: N echo round trips of 64 B on the generic netlink
/// face of the module loaded now (`make bench-profile`'s genl workload, the
/// counterpart of `rustnl echo --count N --size 64`).
fn genl_echoes(n: u32) -> Res<()> {
    let face = Face::Genl(genl_ids("loaded")?);
    let mut sock = face.open(1 << 20)?;
    let payload = [0x5au8; 64];
    let (want_ty, want_len) = face.echo_answer(payload.len());
    let mut b = MessageBuilder::new();
    for seq in 1..=n {
        b.clear();
        face.echo(seq, &payload, &mut b)?;
        sock.send(b.as_bytes()).map_err(err)?;
        let d = sock.recv().map_err(err)?;
        let m = d.messages().next().ok_or("empty answer")?.map_err(err)?;
        if m.header.seq != seq || m.header.ty != want_ty || m.payload.len() != want_len {
            return Err(format!("echo {seq}: wrong answer"));
        }
    }
    println!("rustnl-bench: {n} genl echoes of 64 B");
    Ok(())
}

/// Which faces to measure (`--faces`).
#[derive(Clone, Copy)]
struct Faces {
    classic: bool,
    genl: bool,
}

fn workloads(module: &str, round: usize, faces: Faces, s: Sizes) -> Res<()> {
    if faces.classic {
        for size in [64, 1024, 16384] {
            echo_rtt(module, round, Face::Classic, size, s)?;
        }
        client_allocs(module, round, s)?;
        for k in [1, 8, 64] {
            batched(module, round, k, s)?;
        }
        for n in [1, 8, 64] {
            fanout(module, round, Face::Classic, n, s)?;
        }
    }
    if faces.genl {
        // The id changes with every registration: looked up after each load.
        let genl = Face::Genl(genl_ids(module)?);
        for size in [64, 1024, 16384] {
            echo_rtt(module, round, genl, size, s)?;
        }
        for n in [1, 8, 64] {
            fanout(module, round, genl, n, s)?;
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut rust, mut c, mut rounds, mut sizes) = (None, None, 2usize, FULL);
    let mut faces = Faces {
        classic: true,
        genl: true,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rust" => rust = args.next(),
            "--c" => c = args.next(),
            "--rounds" => rounds = args.next().and_then(|r| r.parse().ok()).unwrap_or(0),
            "--scale" => {
                sizes = match args.next().as_deref() {
                    Some("smoke") => SMOKE,
                    Some("quick") => QUICK,
                    _ => FULL,
                }
            }
            "--genl-echoes" => {
                // `make bench-profile`: N genl echoes of 64 B on the module
                // loaded now, nothing else (no load, no figures).
                let n = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                return match genl_echoes(n) {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("rustnl-bench: {e}");
                        std::process::ExitCode::FAILURE
                    }
                };
            }
            flag @ ("--broadcasts" | "--genl-broadcasts") => {
                // The same for broadcasts (classic or genl face): one
                // listener, N datagrams of 16.
                let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let sizes = Sizes {
                    fanout_deliveries: n * 16,
                    ..SMOKE
                };
                let face = if flag == "--broadcasts" {
                    Ok(Face::Classic)
                } else {
                    genl_ids("loaded").map(Face::Genl)
                };
                let r = face.and_then(|face| fanout("loaded", 0, face, 1, sizes));
                return match r {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("rustnl-bench: {e}");
                        std::process::ExitCode::FAILURE
                    }
                };
            }
            "--faces" => {
                let list = args.next().unwrap_or_default();
                let names: Vec<&str> = list.split(',').collect();
                faces = Faces {
                    classic: names.contains(&"classic"),
                    genl: names.contains(&"genl"),
                };
                if names.iter().any(|n| !matches!(*n, "classic" | "genl")) {
                    eprintln!("rustnl-bench: --faces takes classic, genl or classic,genl");
                    return std::process::ExitCode::from(2);
                }
            }
            _ => {
                eprintln!(
                    "usage: rustnl-bench --rust KO --c KO [--rounds R] [--scale smoke|quick|full] \
                     [--faces classic,genl]\n       rustnl-bench --genl-echoes N | --broadcasts N | --genl-broadcasts N"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    let (Some(rust), Some(c)) = (rust, c) else {
        eprintln!("rustnl-bench: --rust and --c are required");
        return std::process::ExitCode::from(2);
    };
    if rounds == 0 {
        eprintln!("rustnl-bench: --rounds must be at least 1");
        return std::process::ExitCode::from(2);
    }
    // One CPU for the client: with two vCPUs, where the process happens to
    // run (and what the other CPU does meanwhile) moved whole rounds by
    // ~170 instructions per round trip under -icount, for both modules.
    if let Err(e) = pin_to_cpu(0) {
        eprintln!("rustnl-bench: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // Both modules must answer the same before either is timed.
    match same_answers(&rust, &c) {
        Ok(n) => println!("RUSTNL-BENCH-SAME {n} answers"),
        Err(e) => {
            println!("rustnl-bench: {e}");
            unload_all();
            return std::process::ExitCode::FAILURE;
        }
    }
    let modules = [("rust", rust.as_str()), ("c", c.as_str())];
    for round in 0..rounds {
        // A, B in even rounds and B, A in odd ones: no module always runs
        // first (the medians over rounds cancel the position).
        let order = if round % 2 == 0 {
            [modules[0], modules[1]]
        } else {
            [modules[1], modules[0]]
        };
        for (name, ko) in order {
            let r = load(ko).and_then(|()| workloads(name, round, faces, sizes));
            if let Err(e) = r {
                println!("rustnl-bench: {name} module, round {round}: {e}");
                unload_all();
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    unload_all();
    println!("RUSTNL-BENCH-DONE rounds={rounds}");
    std::process::ExitCode::SUCCESS
}
