//! rustnl-bench: the guest side of `make bench`. Loads the Rust module and
//! the C reference module in turn (A, B, A, B … on the same unit) and runs
//! the same client workloads against each:
//!
//! - echo round-trip time for 64 B, 1 KiB and 16 KiB payloads;
//! - batched echo, K = 1, 8, 64 messages per datagram: messages per second;
//! - multicast fan-out to N = 1, 8, 64 listeners: deliveries per second;
//! - heap allocations per message on the client's send/receive path.
//!
//! Each figure is printed as one `RUSTNL-BENCH {json}` line; the host
//! (scripts/bench.sh) turns them into the table. Under QEMU's
//! `-icount shift=0` the guest clock follows executed instructions, so the
//! same figures become repeatable instruction-time measures.
//!
//! Usage: `rustnl-bench --rust KO --c KO [--rounds R] [--scale smoke|quick|full]`

use rustnl::proto::{BroadcastHdr, MsgType, DEFAULT_UNIT, NLM_F_REQUEST};
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

fn open(rcvbuf: usize) -> Res<Socket> {
    let mut s = Socket::open(DEFAULT_UNIT).map_err(err)?;
    s.set_recv_mode(RecvMode::Fixed);
    s.set_recv_buffer_size(rcvbuf).map_err(err)?;
    s.set_recv_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    Ok(s)
}

/// Receives until `n` messages of type `ty` arrived (a datagram may hold
/// several); returns how many datagrams that took.
fn drain(sock: &mut Socket, n: usize, ty: u16) -> Res<usize> {
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
fn echo_rtt(module: &str, round: usize, size: usize, s: Sizes) -> Res<()> {
    let mut sock = open(1 << 20)?;
    let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut b = MessageBuilder::new();
    request(MsgType::Echo.raw(), 0, &[&payload], &mut b)?;
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
        if m.header.seq != seq || m.payload.len() != size {
            return Err(format!("echo {seq}: wrong answer"));
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
            "\"metric\":\"echo_rtt_ns\",\"size\":{size},\"n\":{},\"min\":{},\"median\":{},\"p99\":{},\"allocs_per_msg\":{:.4}",
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
        datagrams += drain(&mut sock, k, MsgType::Echo.raw())?;
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

/// One broadcaster, `n` listeners on group 9; 16 broadcasts per datagram,
/// then every listener drains its 16 events.
fn fanout(module: &str, round: usize, n: usize, s: Sizes) -> Res<()> {
    const GROUP: u32 = 9;
    const BATCH: usize = 16;
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let l = open(1 << 20)?;
        l.add_membership(GROUP).map_err(err)?;
        listeners.push(l);
    }
    let mut tx = open(1 << 20)?;
    let hdr = BroadcastHdr { group: GROUP }.to_bytes();
    let body = [0x33u8; 64];
    let mut dgram = MessageBuilder::new();
    for j in 0..BATCH {
        request(
            MsgType::Broadcast.raw(),
            j as u32,
            &[&hdr, &body],
            &mut dgram,
        )?;
    }
    let rounds = (s.fanout_deliveries / (n * BATCH)).max(2);
    let warm = 2;
    let mut t0 = Instant::now();
    for r in 0..(warm + rounds) {
        if r == warm {
            t0 = Instant::now();
        }
        tx.send(dgram.as_bytes()).map_err(err)?;
        drain(&mut tx, BATCH, MsgType::Broadcast.raw())?;
        for l in listeners.iter_mut() {
            drain(l, BATCH, MsgType::Event.raw())?;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let deliveries = rounds * BATCH * n;
    emit(
        module,
        round,
        &format!(
            "\"metric\":\"fanout_deliveries_per_sec\",\"listeners\":{n},\"n\":{deliveries},\"value\":{:.1}",
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
    unload_all();
    let out = Command::new("insmod").arg(ko).output().map_err(err)?;
    if !out.status.success() {
        return Err(format!(
            "insmod {ko}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn workloads(module: &str, round: usize, s: Sizes) -> Res<()> {
    for size in [64, 1024, 16384] {
        echo_rtt(module, round, size, s)?;
    }
    client_allocs(module, round, s)?;
    for k in [1, 8, 64] {
        batched(module, round, k, s)?;
    }
    for n in [1, 8, 64] {
        fanout(module, round, n, s)?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut rust, mut c, mut rounds, mut sizes) = (None, None, 2usize, FULL);
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
            _ => {
                eprintln!(
                    "usage: rustnl-bench --rust KO --c KO [--rounds R] [--scale smoke|quick|full]"
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
            let r = load(ko).and_then(|()| workloads(name, round, sizes));
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
