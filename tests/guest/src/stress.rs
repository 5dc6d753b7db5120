//! Hardening tests: the fuzzer's driver, load, unload under load and
//! allocation-failure injection. Sizes follow `--scale` (bounded in
//! `make test`, full in `make stress` / `make fuzz-kernel`); every test
//! adds its figures to the report.

use crate::Test;
use crate::{
    connect, fuzz, insmod, module_loaded, pattern, reload, report, rmmod, scaled, settings, Ctx,
    TestResult,
};
use rustnl::proto::{
    BroadcastHdr, BroadcastResult, Counters, ErrorMsg, EventHdr, MsgType, NlMsgHdr, DEFAULT_UNIT,
    NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_REQUEST,
};
use rustnl::{Client, Error, Socket};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn counters() -> Result<Counters, String> {
    Ok(connect(DEFAULT_UNIT)?.info().map_err(err)?.counters)
}

/// One request message (header + payload) with `NLM_F_REQUEST`, encoded by
/// the library's builder.
fn request(ty: u16, seq: u32, parts: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut b = rustnl::MessageBuilder::new();
    b.push_parts(ty, NLM_F_REQUEST, seq, parts).map_err(err)?;
    Ok(b.as_bytes().to_vec())
}

/// Writes "scan" to kmemleak and returns how many objects it reports now.
fn kmemleak_scan() -> Result<usize, String> {
    let path = "/sys/kernel/debug/kmemleak";
    std::fs::write(path, "scan").map_err(|e| format!("kmemleak scan: {e}"))?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("kmemleak: {e}"))?;
    Ok(text.matches("unreferenced object").count())
}

// ---------------------------------------------------------------------------
// Fuzzer
// ---------------------------------------------------------------------------

pub fn t_fuzz(ctx: &Ctx) -> TestResult {
    let s = settings();
    reload(ctx, &[])?;
    println!(
        "    fuzz: seed {} for {} messages (re-run: make fuzz-kernel FUZZ_SEED={} FUZZ_MESSAGES={})",
        s.seed, s.fuzz_messages, s.seed, s.fuzz_messages
    );
    let before = counters()?;
    let t = fuzz::run(s.seed, s.fuzz_messages)?;
    let after = counters()?;
    report("fuzz.seed", s.seed);
    report("fuzz.datagrams", t.datagrams);
    report("fuzz.messages", t.messages);
    report("fuzz.replies_checked", t.answers);
    ensure!(
        t.messages >= s.fuzz_messages,
        "only {} of {} messages sent",
        t.messages,
        s.fuzz_messages
    );
    // The module looked at every message (plus the echoes and info calls).
    let seen = after.requests - before.requests;
    ensure!(
        seen >= t.messages,
        "the module counted {seen} requests for {} messages",
        t.messages
    );
    let leaks = kmemleak_scan()?;
    report("fuzz.kmemleak_after", leaks);
    ensure!(leaks == 0, "kmemleak reports {leaks} objects after fuzzing");
    let mut c = connect(DEFAULT_UNIT)?;
    ensure!(
        c.echo(b"still here").map_err(err)? == b"still here",
        "echo after fuzzing"
    );
    Ok(())
}

/// The generic netlink face's fuzzer (fuzz_genl.rs): half the classic
/// fuzzer's messages, the same seed.
pub fn t_fuzz_genl(ctx: &Ctx) -> TestResult {
    let s = settings();
    reload(ctx, &[])?;
    let messages = s.fuzz_messages / 2;
    println!(
        "    fuzz genl: seed {} for {messages} messages (re-run: make fuzz-kernel FUZZ_SEED={} FUZZ_MESSAGES={})",
        s.seed, s.seed, s.fuzz_messages
    );
    let t = crate::fuzz_genl::run(s.seed, messages)?;
    report("fuzz_genl.seed", s.seed);
    report("fuzz_genl.datagrams", t.datagrams);
    report("fuzz_genl.messages", t.messages);
    report("fuzz_genl.replies_checked", t.answers);
    ensure!(
        t.messages >= messages,
        "only {} of {messages} messages sent",
        t.messages
    );
    let leaks = kmemleak_scan()?;
    report("fuzz_genl.kmemleak_after", leaks);
    ensure!(leaks == 0, "kmemleak reports {leaks} objects after fuzzing");
    Ok(())
}

// ---------------------------------------------------------------------------
// Load: echo clients
// ---------------------------------------------------------------------------

/// The distinct payload of echo `seq` of client `id`.
fn echo_payload(id: u32, seq: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&id.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    let extra = ((seq as usize).wrapping_mul(7) + id as usize) % 57;
    out.extend((0..extra).map(|i| (i as u8) ^ (seq as u8) ^ (id as u8)));
}

#[derive(Default, Debug, Clone, Copy)]
struct EchoTally {
    ok: u64,
    lost: u64,
    duplicated: u64,
    mismatched: u64,
}

/// `n` echoes with up to `window` in flight; every answer checked.
fn echo_client(id: u32, n: u32, window: usize) -> Result<EchoTally, String> {
    let mut sock = Socket::open(DEFAULT_UNIT).map_err(err)?;
    sock.set_recv_buffer_size(1 << 20).map_err(err)?;
    sock.set_recv_timeout(Some(Duration::from_secs(30)))
        .map_err(err)?;
    let mut t = EchoTally::default();
    let mut in_flight = VecDeque::new();
    let mut next = 1u32;
    let (mut want, mut msg) = (Vec::new(), Vec::new());
    while next <= n || !in_flight.is_empty() {
        while next <= n && in_flight.len() < window {
            echo_payload(id, next, &mut want);
            msg.clear();
            msg.extend(request(MsgType::Echo.raw(), next, &[&want])?);
            sock.send(&msg).map_err(err)?;
            in_flight.push_back(next);
            next += 1;
        }
        let d = match sock.recv() {
            Ok(d) => d,
            Err(Error::Timeout) => {
                t.lost += in_flight.len() as u64;
                break;
            }
            Err(e) => return Err(format!("client {id}: {e}")),
        };
        for m in d.messages() {
            let m = m.map_err(err)?;
            if m.header.ty != MsgType::Echo.raw() {
                return Err(format!("client {id}: answer of type {:#x}", m.header.ty));
            }
            let seq = m.header.seq;
            match in_flight.iter().position(|&s| s == seq) {
                Some(k) => {
                    t.lost += k as u64;
                    in_flight.drain(..=k);
                    echo_payload(id, seq, &mut want);
                    if m.payload == want.as_slice() {
                        t.ok += 1;
                    } else {
                        t.mismatched += 1;
                    }
                }
                None => t.duplicated += 1,
            }
        }
    }
    Ok(t)
}

pub fn t_load_echo(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let clients = 16u32;
    let per = scaled(100_000, 2_000) as u32;
    let before = counters()?;
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|id| std::thread::spawn(move || echo_client(id, per, 16)))
        .collect();
    let mut total = EchoTally::default();
    for t in threads {
        let r = t.join().map_err(|_| "echo client panicked")??;
        total.ok += r.ok;
        total.lost += r.lost;
        total.duplicated += r.duplicated;
        total.mismatched += r.mismatched;
    }
    let secs = start.elapsed().as_secs_f64();
    let after = counters()?;
    let sent = u64::from(clients) * u64::from(per);
    report("load.echo.clients", clients);
    report("load.echo.per_client", per);
    report("load.echo.answered", total.ok);
    report("load.echo.lost", total.lost);
    report("load.echo.duplicated", total.duplicated);
    report("load.echo.mismatched", total.mismatched);
    report(
        "load.echo.per_second",
        format!("{:.0}", total.ok as f64 / secs),
    );
    ensure!(
        total.ok == sent && total.lost == 0 && total.duplicated == 0 && total.mismatched == 0,
        "echo load: {total:?} of {sent}"
    );
    let echoes = after.echoes - before.echoes;
    ensure!(
        echoes == sent,
        "GET_INFO counts {echoes} echoes, {sent} were sent"
    );
    ensure!(
        after.delivery_failures == before.delivery_failures,
        "delivery failures under echo load: {before:?} -> {after:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Load: broadcast fan-out with one slow listener
// ---------------------------------------------------------------------------

const LOAD_GROUP: u32 = 7;

/// Checks one EVENT datagram byte for byte: header, event header
/// (re-encodes to itself: reserved bytes zero), payload, zero padding.
fn check_event(bytes: &[u8]) -> Result<(EventHdr, &[u8]), String> {
    let h = NlMsgHdr::parse(bytes).ok_or("short event")?;
    let msg = bytes.get(..h.len as usize).ok_or("event length")?;
    let (ev, payload) = EventHdr::parse(&msg[NLMSG_HDRLEN..]).map_err(err)?;
    let padded = rustnl::proto::nlmsg_align(h.len as usize);
    ensure!(
        h.ty == MsgType::Event.raw()
            && h.flags == 0
            && h.pid == 0
            && h.seq == ev.seq as u32
            && bytes.len() == padded
            && bytes[h.len as usize..].iter().all(|&b| b == 0)
            && ev.to_bytes().as_slice() == &msg[NLMSG_HDRLEN..NLMSG_HDRLEN + EventHdr::LEN],
        "event not byte-exact: {}",
        fuzz::hex(bytes)
    );
    Ok((ev, payload))
}

fn fast_listener(
    sock: &mut Socket,
    n: u64,
    progress: &AtomicU64,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut last_seq = None;
    let mut got = 0u64;
    while got < n {
        if stop.load(SeqCst) {
            return Err(format!("stopped after {got} of {n} events"));
        }
        let d = sock
            .recv()
            .map_err(|e| format!("fast listener after {got}: {e}"))?;
        let (ev, payload) = check_event(d.bytes)?;
        let index = payload
            .first_chunk::<8>()
            .map(|b| u64::from_ne_bytes(*b))
            .ok_or("short payload")?;
        ensure!(
            index == got && ev.group == LOAD_GROUP,
            "fast listener: event {index} (group {}) where {got} was due",
            ev.group
        );
        if let Some(prev) = last_seq {
            ensure!(ev.seq == prev + 1, "event seq {} after {prev}", ev.seq);
        }
        last_seq = Some(ev.seq);
        got += 1;
        progress.store(got, SeqCst);
    }
    Ok(())
}

/// Receives slowly; returns (events received, ENOBUFS seen).
fn slow_listener(sock: &mut Socket, done: &AtomicBool) -> Result<(u64, u64), String> {
    let (mut got, mut enobufs) = (0u64, 0u64);
    let mut last = None;
    loop {
        match sock.recv() {
            Ok(d) => {
                let (_, payload) = check_event(d.bytes)?;
                let index = payload
                    .first_chunk::<8>()
                    .map(|b| u64::from_ne_bytes(*b))
                    .ok_or("short payload")?;
                ensure!(
                    last.is_none_or(|l| index > l),
                    "slow listener: event {index} after {last:?}"
                );
                last = Some(index);
                got += 1;
                // Slower than any broadcaster here (115-300 events/s under
                // TCG): its 4 KiB queue must overflow. At 1 ms it kept up
                // once a BROADCAST's answer went out before its event (the
                // events of a batch no longer leave back to back).
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(Error::Overrun) => enobufs += 1,
            Err(Error::Timeout) if done.load(SeqCst) => return Ok((got, enobufs)),
            Err(Error::Timeout) => {}
            Err(e) => return Err(format!("slow listener: {e}")),
        }
    }
}

pub fn t_load_broadcast(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let n = scaled(100_000, 5_000);
    let fast = 7usize;
    let batch = 16u64;
    let window = 2048u64;
    let before = counters()?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..fast).map(|_| AtomicU64::new(0)).collect());
    let mut fast_threads = Vec::new();
    for i in 0..fast {
        let mut s = Socket::open(DEFAULT_UNIT).map_err(err)?;
        s.add_membership(LOAD_GROUP).map_err(err)?;
        s.set_recv_buffer_size(8 << 20).map_err(err)?;
        s.set_recv_timeout(Some(Duration::from_secs(30)))
            .map_err(err)?;
        let (p, st) = (progress.clone(), stop.clone());
        fast_threads.push(std::thread::spawn(move || {
            fast_listener(&mut s, n, &p[i], &st)
        }));
    }
    let mut slow = Socket::open(DEFAULT_UNIT).map_err(err)?;
    slow.add_membership(LOAD_GROUP).map_err(err)?;
    slow.set_recv_buffer_size(4096).map_err(err)?;
    slow.set_broadcast_error(true).map_err(err)?;
    slow.set_recv_timeout(Some(Duration::from_millis(300)))
        .map_err(err)?;
    let d2 = done.clone();
    let slow_thread = std::thread::spawn(move || slow_listener(&mut slow, &d2));

    let mut tx = Socket::open(DEFAULT_UNIT).map_err(err)?;
    tx.set_recv_buffer_size(4 << 20).map_err(err)?;
    tx.set_recv_timeout(Some(Duration::from_secs(30)))
        .map_err(err)?;
    let start = Instant::now();
    let (mut sent, mut failed, mut stalls) = (0u64, 0u64, 0u64);
    let run = (|| -> TestResult {
        let mut dgram = Vec::new();
        while sent < n {
            // Flow control for the fast listeners only: the slow one must
            // overrun, and that must never hold the sender up.
            let mut waited = false;
            while sent - progress.iter().map(|p| p.load(SeqCst)).min().unwrap_or(0) > window {
                waited = true;
                std::thread::sleep(Duration::from_micros(200));
            }
            stalls += u64::from(waited);
            dgram.clear();
            let k = batch.min(n - sent);
            for j in 0..k {
                let index = sent + j;
                let hdr = BroadcastHdr { group: LOAD_GROUP }.to_bytes();
                let body = [&index.to_ne_bytes()[..], b"fan-out!"].concat();
                dgram.extend(request(
                    MsgType::Broadcast.raw(),
                    index as u32,
                    &[&hdr, &body],
                )?);
            }
            tx.send(&dgram).map_err(err)?;
            let mut answers = 0;
            while answers < k {
                let d = tx.recv().map_err(|e| format!("broadcaster: {e}"))?;
                for m in d.messages() {
                    let m = m.map_err(err)?;
                    ensure!(
                        m.header.ty == MsgType::Broadcast.raw(),
                        "broadcaster got type {:#x}: {:?}",
                        m.header.ty,
                        ErrorMsg::parse(m.payload, m.header.flags)
                    );
                    let r = BroadcastResult::parse(m.payload).map_err(err)?;
                    ensure!(r.delivered || r.delivery_failed, "nobody got {r:?}");
                    failed += u64::from(r.delivery_failed);
                    answers += 1;
                }
            }
            sent += k;
        }
        Ok(())
    })();
    let send_secs = start.elapsed().as_secs_f64();
    if run.is_err() {
        stop.store(true, SeqCst);
    }
    let mut errors = Vec::new();
    for t in fast_threads {
        if let Err(e) = t
            .join()
            .map_err(|_| "listener panicked".to_string())
            .and_then(|r| r)
        {
            errors.push(e);
        }
    }
    done.store(true, SeqCst);
    let (slow_got, slow_enobufs) = slow_thread.join().map_err(|_| "slow listener panicked")??;
    run?;
    ensure!(errors.is_empty(), "fast listeners: {errors:?}");
    let after = counters()?;
    report("load.broadcast.listeners", fast + 1);
    report("load.broadcast.broadcasts", n);
    report("load.broadcast.fast_deliveries", n * fast as u64);
    report("load.broadcast.slow_received", slow_got);
    report("load.broadcast.slow_enobufs", slow_enobufs);
    report("load.broadcast.delivery_failures", failed);
    report("load.broadcast.sender_waits", stalls);
    report(
        "load.broadcast.per_second",
        format!("{:.0}", n as f64 / send_secs),
    );
    ensure!(slow_enobufs > 0, "the slow listener never overran");
    ensure!(
        slow_got + failed == n,
        "slow listener got {slow_got}, {failed} deliveries failed, {n} sent"
    );
    let d = |a: u64, b: u64| a - b;
    ensure!(
        d(after.broadcasts, before.broadcasts) == n
            && d(after.events_sent, before.events_sent) == n
            && d(after.delivery_failures, before.delivery_failures) == failed,
        "GET_INFO counters {before:?} -> {after:?} for {n} broadcasts, {failed} failed"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Unload under load
// ---------------------------------------------------------------------------

#[derive(Default)]
struct UnloadStats {
    echoes: AtomicU64,
    /// `EPROTONOSUPPORT`: socket() while the module is unloaded.
    not_loaded: AtomicU64,
    /// `EAGAIN` from the module while it is starting.
    starting: AtomicU64,
    /// Listener sockets that joined and left.
    joins: AtomicU64,
}

/// A client that connects, echoes a few times and closes, in a loop across
/// unloads and reloads; only clean errors are allowed. `ok_gen[id]` records
/// the last module generation it echoed in.
fn unload_client(
    id: usize,
    generation: &AtomicU64,
    ok_gen: &[AtomicU64],
    stats: &UnloadStats,
    stop: &AtomicBool,
) -> TestResult {
    let mut k = 0u32;
    while !stop.load(SeqCst) {
        let mut c = match Client::connect(DEFAULT_UNIT) {
            Ok(c) => c,
            Err(e) if e.errno() == Some(libc::EPROTONOSUPPORT) => {
                stats.not_loaded.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) => return Err(format!("client {id}: connect: {e}")),
        };
        c.set_timeout(Some(Duration::from_secs(20))).map_err(err)?;
        let gen = generation.load(SeqCst);
        for _ in 0..4 {
            k = k.wrapping_add(1);
            let payload = [id as u8, k as u8, (k >> 8) as u8, 0x5a];
            match c.echo(&payload) {
                Ok(got) => {
                    ensure!(got == payload, "client {id}: echo returned {got:?}");
                    stats.echoes.fetch_add(1, SeqCst);
                    ok_gen[id].store(gen, SeqCst);
                }
                Err(Error::Timeout) => {
                    return Err(format!("client {id}: an echo was lost (timeout)"))
                }
                Err(e) if e.errno() == Some(libc::EAGAIN) => {
                    stats.starting.fetch_add(1, SeqCst);
                }
                Err(e) => return Err(format!("client {id}: unclean error: {e}")),
            }
        }
        drop(c);
        std::thread::sleep(Duration::from_millis(1 + id as u64));
    }
    Ok(())
}

/// A listener that joins group 1, listens briefly and leaves, in a loop.
fn unload_listener(stats: &UnloadStats, stop: &AtomicBool) -> TestResult {
    while !stop.load(SeqCst) {
        let mut sub = match rustnl::Subscription::new(DEFAULT_UNIT, &[1]) {
            Ok(s) => s,
            Err(e) if e.errno() == Some(libc::EPROTONOSUPPORT) => {
                stats.not_loaded.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) => return Err(format!("listener: {e}")),
        };
        sub.socket_mut()
            .set_recv_timeout(Some(Duration::from_millis(3)))
            .map_err(err)?;
        match sub.next_event() {
            Ok(_) | Err(Error::Timeout) => {}
            Err(e) => return Err(format!("listener: {e}")),
        }
        stats.joins.fetch_add(1, SeqCst);
        drop(sub);
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Unload under load. Open sockets pin the module, so `rmmod` is retried
/// while clients and a listener keep connecting and closing: every refusal
/// must be a clean `EWOULDBLOCK` with the module still serving, and it must
/// go in one of the gaps; then clients see it gone (`EPROTONOSUPPORT`),
/// `insmod` brings it back and every client must echo again.
pub fn t_unload_under_load(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let cycles = scaled(100, 5);
    let clients = 3usize;
    let stats = Arc::new(UnloadStats::default());
    let generation = Arc::new(AtomicU64::new(0));
    let ok_gen: Arc<Vec<AtomicU64>> = Arc::new((0..clients).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<_> = (0..clients)
        .map(|id| {
            let (g, o, s, st) = (
                generation.clone(),
                ok_gen.clone(),
                stats.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || unload_client(id, &g, &o, &s, &st))
        })
        .collect();
    {
        let (s, st) = (stats.clone(), stop.clone());
        threads.push(std::thread::spawn(move || unload_listener(&s, &st)));
    }
    let mut refusals = 0u64;
    let start = Instant::now();
    let result = (|| -> TestResult {
        for cycle in 1..=cycles {
            insmod(ctx, &[])?;
            generation.store(cycle, SeqCst);
            // Every client echoes on this load before it goes away.
            let deadline = Instant::now() + Duration::from_secs(30);
            while ok_gen.iter().any(|g| g.load(SeqCst) < cycle) {
                ensure!(
                    Instant::now() < deadline,
                    "cycle {cycle}: clients did not get an echo through after insmod"
                );
                ensure!(
                    !threads.iter().any(|t| t.is_finished()),
                    "a client stopped early"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            refusals += crate::rmmod_into_a_gap(cycle)?;
            ensure!(!module_loaded(), "cycle {cycle}: still loaded after rmmod");
        }
        // Back again: clients work.
        insmod(ctx, &[])?;
        generation.store(cycles + 1, SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        while ok_gen.iter().any(|g| g.load(SeqCst) < cycles + 1) {
            ensure!(
                Instant::now() < deadline,
                "clients never echoed after the last insmod"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    })();
    stop.store(true, SeqCst);
    let mut errors = Vec::new();
    for t in threads {
        if let Err(e) = t
            .join()
            .map_err(|_| "client panicked".to_string())
            .and_then(|r| r)
        {
            errors.push(e);
        }
    }
    result?;
    ensure!(errors.is_empty(), "clients: {errors:?}");
    report("unload.cycles", cycles);
    report("unload.echoes_ok", stats.echoes.load(SeqCst));
    report("unload.rmmod_refused_in_use", refusals);
    report("unload.eprotonosupport", stats.not_loaded.load(SeqCst));
    report("unload.eagain_starting", stats.starting.load(SeqCst));
    report("unload.listener_joins", stats.joins.load(SeqCst));
    report(
        "unload.seconds_per_cycle",
        format!("{:.2}", start.elapsed().as_secs_f64() / cycles as f64),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Allocation failures
// ---------------------------------------------------------------------------

const FAULTS: [&str; 2] = ["failslab", "fail_page_alloc"];
/// Failures each fault type may inject (its `times` counts down).
const FAULT_TIMES: u64 = 1_000_000;

fn fault_write(dir: &str, key: &str, value: &str) -> TestResult {
    let path = format!("/sys/kernel/debug/{dir}/{key}");
    std::fs::write(&path, value).map_err(|e| format!("writing {value} to {path}: {e}"))
}

/// The module area: everything above the kernel image's `_end` (x86-64
/// puts modules there), up to the end of the module mapping.
fn module_space() -> Result<(u64, u64), String> {
    let syms = std::fs::read_to_string("/proc/kallsyms").map_err(err)?;
    let end = syms
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?;
            let _ty = f.next()?;
            (f.next()? == "_end").then(|| u64::from_str_radix(addr, 16).ok())?
        })
        .ok_or("no _end in /proc/kallsyms")?;
    ensure!(end != 0, "/proc/kallsyms hides addresses");
    Ok((end, 0xffff_ffff_ff00_0000))
}

/// Arms failslab and fail_page_alloc: `percent` of the allocations made
/// with module code on the stack fail (optionally only in tasks that set
/// `make-it-fail`).
fn faults_on(percent: u32, task_filter: bool) -> TestResult {
    let (start, end) = module_space()?;
    for dir in FAULTS {
        fault_write(dir, "probability", "0")?;
        fault_write(dir, "interval", "1")?;
        fault_write(dir, "verbose", "0")?;
        fault_write(dir, "space", "0")?;
        fault_write(dir, "ignore-gfp-wait", "N")?;
        fault_write(dir, "task-filter", if task_filter { "Y" } else { "N" })?;
        fault_write(dir, "stacktrace-depth", "32")?;
        fault_write(dir, "require-start", &format!("{start:#x}"))?;
        fault_write(dir, "require-end", &format!("{end:#x}"))?;
        fault_write(dir, "times", &FAULT_TIMES.to_string())?;
    }
    fault_write("fail_page_alloc", "ignore-gfp-highmem", "N")?;
    fault_write("fail_page_alloc", "min-order", "0")?;
    for dir in FAULTS {
        fault_write(dir, "probability", &percent.to_string())?;
    }
    Ok(())
}

/// Disarms both and returns how many failures each injected.
fn faults_off() -> Result<[u64; 2], String> {
    let mut hits = [0; 2];
    for (i, dir) in FAULTS.iter().enumerate() {
        fault_write(dir, "probability", "0")?;
        let left: i64 = std::fs::read_to_string(format!("/sys/kernel/debug/{dir}/times"))
            .map_err(err)?
            .trim()
            .parse()
            .map_err(err)?;
        hits[i] = FAULT_TIMES.saturating_sub(left.max(0) as u64);
        fault_write(dir, "task-filter", "N")?;
        fault_write(dir, "require-start", "0")?;
        fault_write(dir, "require-end", "0xffffffffffffffff")?;
        fault_write(dir, "times", "1")?;
    }
    Ok(hits)
}

/// Deterministic fault injection (`/proc/thread-self/fail-nth`): the
/// `N`-th slab or page allocation of the calling thread whose call chain
/// runs through module code fails. Armed for the value's life; disarmed on
/// drop.
pub(crate) struct FailNth;

impl FailNth {
    /// Sets both fault types to fail only through `fail-nth` (probability
    /// 0), for allocations made from module code, quietly.
    pub(crate) fn arm() -> Result<FailNth, String> {
        // The random injection's setup at probability 0: only fail-nth
        // injects, with the same module-space stack filter.
        faults_on(0, false)?;
        Ok(FailNth)
    }

    /// Runs `f` with the `n`-th allocation failing; returns its result and
    /// whether the failure was injected (`f` reached an `n`-th allocation).
    pub(crate) fn with_nth<T>(&self, n: u32, f: impl FnOnce() -> T) -> Result<(T, bool), String> {
        const PATH: &str = "/proc/thread-self/fail-nth";
        std::fs::write(PATH, n.to_string()).map_err(|e| format!("{PATH}: {e}"))?;
        let out = f();
        let left = std::fs::read_to_string(PATH).map_err(|e| format!("{PATH}: {e}"))?;
        std::fs::write(PATH, "0").map_err(|e| format!("{PATH}: {e}"))?;
        Ok((out, left.trim() == "0"))
    }
}

impl Drop for FailNth {
    fn drop(&mut self) {
        let _ = faults_off();
    }
}

fn make_it_fail(on: bool) -> TestResult {
    std::fs::write("/proc/thread-self/make-it-fail", if on { "1" } else { "0" })
        .map_err(|e| format!("make-it-fail: {e}"))
}

#[derive(Default, Debug, Clone, Copy)]
struct FaultTally {
    requests: u64,
    answered: u64,
    enomem: u64,
    refused_as_expected: u64,
    overruns: u64,
    dropped: u64,
    send_failed: u64,
}

/// What a request should get when nothing fails.
enum Want {
    Reply(u16, Vec<u8>),
    Info,
    Broadcast,
    Errno(i32),
}

/// Sends one request and judges the answer: the right one, an ENOMEM error
/// ("cannot allocate the answer"), or an overrun (ENOBUFS: the kernel could
/// not allocate the answer or the error and flagged the socket). Silence
/// without an overrun, a wrong answer or a stray one fails.
fn faulty_exchange(
    sock: &mut Socket,
    msg: &[u8],
    seq: u32,
    want: &Want,
    t: &mut FaultTally,
) -> TestResult {
    t.requests += 1;
    if let Err(e) = sock.send(msg) {
        // The datagram's own allocation (netlink core) may fail too.
        ensure!(
            matches!(e.errno(), Some(libc::ENOMEM) | Some(libc::ENOBUFS)),
            "send: {e}"
        );
        t.send_failed += 1;
        return Ok(());
    }
    let mut overrun = false;
    loop {
        let d = match sock.recv() {
            Ok(d) => d,
            Err(Error::Overrun) => {
                t.overruns += 1;
                overrun = true;
                sock.set_recv_timeout(Some(Duration::from_millis(300)))
                    .map_err(err)?;
                continue;
            }
            Err(Error::Timeout) if overrun => {
                t.dropped += 1;
                break;
            }
            Err(e) => return Err(format!("request {seq}: {e} (no answer, no overrun)")),
        };
        let m = d.messages().next().ok_or("empty datagram")?.map_err(err)?;
        ensure!(
            m.header.seq == seq,
            "stray answer seq {} for {seq}",
            m.header.seq
        );
        if m.header.ty == NLMSG_ERROR {
            let e = ErrorMsg::parse(m.payload, m.header.flags).map_err(err)?;
            match want {
                _ if e.error == -libc::ENOMEM => t.enomem += 1,
                Want::Errno(n) if e.error == -n => t.refused_as_expected += 1,
                _ => return Err(format!("request {seq}: error {}", e.error)),
            }
        } else {
            match want {
                Want::Reply(ty, p) => ensure!(
                    m.header.ty == *ty && m.payload == p.as_slice(),
                    "request {seq}: wrong reply"
                ),
                Want::Info => {
                    rustnl::proto::Info::parse(m.payload).map_err(err)?;
                }
                Want::Broadcast => {
                    BroadcastResult::parse(m.payload).map_err(err)?;
                }
                Want::Errno(n) => return Err(format!("request {seq}: reply instead of errno {n}")),
            }
            t.answered += 1;
        }
        break;
    }
    sock.set_recv_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    Ok(())
}

/// Cycles through every request kind: echoes of three sizes (the 64 KiB one
/// exercises page allocations), INFO, a broadcast to a joined group, and
/// two refused requests (their error acks allocate too).
fn faulty_requests(
    sock: &mut Socket,
    count: u64,
    first_seq: u32,
    t: &mut FaultTally,
) -> TestResult {
    for i in 0..count {
        let seq = first_seq.wrapping_add(i as u32);
        let (msg, want) = match i % 7 {
            0..=2 => {
                let p = pattern([64, 4096, 65536][(i % 3) as usize], i as u8);
                (
                    request(MsgType::Echo.raw(), seq, &[&p]),
                    Want::Reply(MsgType::Echo.raw(), p),
                )
            }
            3 => (request(MsgType::GetInfo.raw(), seq, &[]), Want::Info),
            4 => (
                request(
                    MsgType::Broadcast.raw(),
                    seq,
                    &[&BroadcastHdr { group: 3 }.to_bytes(), b"under failure"],
                ),
                Want::Broadcast,
            ),
            5 => (request(0x77, seq, &[b"x"]), Want::Errno(libc::EOPNOTSUPP)),
            _ => (
                request(
                    MsgType::Broadcast.raw(),
                    seq,
                    &[&BroadcastHdr { group: 0 }.to_bytes()],
                ),
                Want::Errno(libc::EINVAL),
            ),
        };
        faulty_exchange(sock, &msg?, seq, &want, t)?;
    }
    Ok(())
}

/// Events and overruns a listener saw.
type Counts = Result<(u64, u64), String>;

/// A listener on `group` that counts events and overruns until `stop`.
fn counting_listener(
    group: u32,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<Counts>, String> {
    let mut s = Socket::open(DEFAULT_UNIT).map_err(err)?;
    s.add_membership(group).map_err(err)?;
    s.set_recv_timeout(Some(Duration::from_millis(200)))
        .map_err(err)?;
    Ok(std::thread::spawn(move || {
        let (mut events, mut overruns) = (0, 0);
        // Heartbeats may arrive faster than the timeout: check `stop` each
        // time round.
        while !stop.load(SeqCst) {
            match s.recv() {
                Ok(d) => {
                    check_event_any(d.bytes)?;
                    events += 1;
                }
                Err(Error::Overrun) => overruns += 1,
                Err(Error::Timeout) => {}
                Err(e) => return Err(format!("listener on {group}: {e}")),
            }
        }
        Ok((events, overruns))
    }))
}

/// Any kernel event (EVENT, HEARTBEAT, GOODBYE) decodes and re-encodes.
fn check_event_any(bytes: &[u8]) -> TestResult {
    let h = NlMsgHdr::parse(bytes).ok_or("short event")?;
    let body = bytes
        .get(NLMSG_HDRLEN..h.len as usize)
        .ok_or("event length")?;
    let (ev, _) = EventHdr::parse(body).map_err(err)?;
    ensure!(
        ev.to_bytes().as_slice() == &body[..EventHdr::LEN],
        "event header not byte-exact"
    );
    Ok(())
}

fn report_faults(prefix: &str, hits: [u64; 2], t: &FaultTally) {
    report(&format!("{prefix}.injected_failslab"), hits[0]);
    report(&format!("{prefix}.injected_fail_page_alloc"), hits[1]);
    report(&format!("{prefix}.requests"), t.requests);
    report(
        &format!("{prefix}.answered"),
        t.answered + t.refused_as_expected,
    );
    report(&format!("{prefix}.enomem_errors"), t.enomem);
    report(&format!("{prefix}.overruns_counted"), t.overruns);
    report(&format!("{prefix}.send_failed"), t.send_failed);
}

/// The module's input path with its allocations failing for this thread.
pub fn t_faults_input(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let stop = Arc::new(AtomicBool::new(false));
    let listener = counting_listener(3, stop.clone())?;
    let mut sock = Socket::open(DEFAULT_UNIT).map_err(err)?;
    sock.set_ext_ack(true).map_err(err)?;
    sock.set_recv_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    let before = counters()?;
    let mut t = FaultTally::default();
    faults_on(10, true)?;
    make_it_fail(true)?;
    let run = faulty_requests(&mut sock, scaled(20_000, 1_400), 1, &mut t);
    make_it_fail(false)?;
    let hits = faults_off()?;
    stop.store(true, SeqCst);
    let (events, overruns) = listener.join().map_err(|_| "listener panicked")??;
    run?;
    report_faults("faults.input", hits, &t);
    report("faults.input.listener_events", events);
    report("faults.input.listener_overruns", overruns);
    ensure!(hits[0] + hits[1] > 0, "no allocation failure was injected");
    ensure!(t.answered > 0, "nothing got through: {t:?}");
    // Nothing is stuck: the same socket, a fresh one, and the counters.
    let mut clean = FaultTally::default();
    faulty_requests(&mut sock, 7, 1_000_000, &mut clean)?;
    ensure!(
        clean.answered + clean.refused_as_expected == 7,
        "after injection: {clean:?}"
    );
    let after = counters()?;
    ensure!(
        after.delivery_failures - before.delivery_failures >= t.enomem,
        "{} ENOMEM answers but delivery_failures {before:?} -> {after:?}",
        t.enomem
    );
    let mut c = connect(DEFAULT_UNIT)?;
    ensure!(c.echo(b"ok").map_err(err)? == b"ok", "fresh echo");
    Ok(())
}

/// Failures in every task with module code on the stack: the heartbeat
/// worker, broadcasts, echoes from a thread that is not marked.
pub fn t_faults_worker(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=10"])?;
    let stop = Arc::new(AtomicBool::new(false));
    let beats = counting_listener(1, stop.clone())?;
    let fan = counting_listener(3, stop.clone())?;
    let mut sock = Socket::open(DEFAULT_UNIT).map_err(err)?;
    sock.set_recv_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    let before = counters()?;
    let mut t = FaultTally::default();
    faults_on(10, false)?;
    let until = Instant::now() + Duration::from_secs(scaled(60, 5));
    let mut seq = 1;
    let mut run = Ok(());
    while run.is_ok() && Instant::now() < until {
        run = faulty_requests(&mut sock, 7, seq, &mut t);
        seq += 7;
    }
    let hits = faults_off()?;
    run?;
    // The heartbeat goes on after the failures.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, SeqCst);
    let (events, overruns) = beats.join().map_err(|_| "listener panicked")??;
    let (fan_events, fan_overruns) = fan.join().map_err(|_| "listener panicked")??;
    let after = counters()?;
    report_faults("faults.worker", hits, &t);
    report("faults.worker.heartbeats_received", events);
    report("faults.worker.listener_overruns", overruns + fan_overruns);
    report("faults.worker.broadcasts_received", fan_events);
    report(
        "faults.worker.delivery_failures_counted",
        after.delivery_failures - before.delivery_failures,
    );
    ensure!(hits[0] + hits[1] > 0, "no allocation failure was injected");
    ensure!(events > 10, "only {events} heartbeats arrived");
    let mut c = connect(DEFAULT_UNIT)?;
    ensure!(c.echo(b"ok").map_err(err)? == b"ok", "echo after injection");
    // Open sockets pin the module.
    drop((sock, c));
    reload(ctx, &[])
}

/// `finit_module` of the module from this thread; `Err(errno)` on failure.
fn finit_module(ko: &str, params: &std::ffi::CStr) -> Result<(), i32> {
    let f = std::fs::File::open(ko).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    use std::os::fd::AsRawFd;
    // SAFETY: finit_module with an open descriptor and a NUL-terminated
    // parameter string.
    crate::syscall_result(unsafe {
        libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0)
    })
}


/// Module load with allocations in its init failing: each attempt either
/// loads a working module or fails with ENOMEM and leaves nothing behind.
/// Three other network namespaces exist meanwhile, and every other attempt
/// loads with `existing_netns=1`: a failure in one of them, once the unit
/// is usable, must leave that namespace without the unit (logged), never
/// fail the load.
pub fn t_faults_insmod(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut child = crate::children::spawn_child(crate::children::Role::NsIdle, &[])?;
        let stdout = child.stdout.take().ok_or("child without stdout")?;
        use std::io::BufRead;
        match std::io::BufReader::new(stdout).lines().next() {
            Some(Ok(l)) if l == "ready" => idle.push(child),
            other => return Err(format!("namespace child did not start: {other:?}")),
        }
    }
    let log_before = crate::module_log().len();
    let attempts = scaled(200, 20);
    let (mut loaded, mut failed) = (0u64, 0u64);
    let mut errnos = std::collections::BTreeMap::new();
    faults_on(20, true)?;
    let run = (|| -> TestResult {
        for attempt in 0..attempts {
            let params = if attempt % 2 == 0 {
                c"existing_netns=1"
            } else {
                c""
            };
            make_it_fail(true)?;
            let r = finit_module(&ctx.ko, params);
            make_it_fail(false)?;
            match r {
                Ok(()) => {
                    loaded += 1;
                    let mut c = connect(DEFAULT_UNIT)?;
                    ensure!(c.echo(b"loaded").map_err(err)? == b"loaded", "echo");
                    drop(c);
                    rmmod()?;
                }
                Err(e) => {
                    failed += 1;
                    *errnos.entry(e).or_insert(0u64) += 1;
                    // ENOMEM, or EBUSY where the netlink core's kernel
                    // socket creation failed (it cannot tell why).
                    ensure!(
                        e == libc::ENOMEM || e == libc::EBUSY,
                        "insmod failed with errno {e}, not ENOMEM/EBUSY"
                    );
                    ensure!(!module_loaded(), "a failed insmod left the module loaded");
                }
            }
        }
        Ok(())
    })();
    let hits = faults_off();
    for mut c in idle {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    let hits = hits?;
    run?;
    let left_out = crate::module_log()
        .iter()
        .skip(log_before)
        .filter(|l| l.contains("it is left without the unit"))
        .count();
    report("faults.insmod.namespaces_left_without_unit", left_out);
    report("faults.insmod.attempts", attempts);
    report("faults.insmod.loaded", loaded);
    report("faults.insmod.failed_cleanly", failed);
    report(
        "faults.insmod.errnos",
        errnos
            .iter()
            .map(|(e, n)| format!("{}x{n}", rustnl::errno_name(*e)))
            .collect::<Vec<_>>()
            .join(","),
    );
    report("faults.insmod.injected_failslab", hits[0]);
    report("faults.insmod.injected_fail_page_alloc", hits[1]);
    ensure!(failed > 0, "no insmod failed: nothing was injected");
    insmod(ctx, &[])?;
    let mut c = connect(DEFAULT_UNIT)?;
    ensure!(c.echo(b"ok").map_err(err)? == b"ok", "echo after the runs");
    Ok(())
}

/// This file's tests, in the order they run, with what each needs.
pub(crate) const TESTS: &[Test] = &[
    Test::new("hardening_fuzz_kernel_input", t_fuzz)
        .debug_kernel("needs kmemleak (the fuzz run ends with a kmemleak scan)"),
    Test::new("hardening_fuzz_kernel_genl", t_fuzz_genl)
        .debug_kernel("needs kmemleak (the fuzz run ends with a kmemleak scan)"),
    Test::new("hardening_load_echo", t_load_echo),
    Test::new(
        "hardening_load_broadcast_one_slow_listener",
        t_load_broadcast,
    ),
    Test::new("hardening_unload_under_load", t_unload_under_load),
    Test::new("hardening_allocation_failures_input", t_faults_input)
        .debug_kernel("needs failslab / fail_page_alloc (fault injection)"),
    Test::new("hardening_allocation_failures_worker", t_faults_worker)
        .debug_kernel("needs failslab / fail_page_alloc (fault injection)"),
    Test::new("hardening_allocation_failures_insmod", t_faults_insmod)
        .debug_kernel("needs failslab / fail_page_alloc (fault injection)"),
];
