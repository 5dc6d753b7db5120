//! rustnl guest tests: run inside the QEMU guest, as root, against the real
//! module on the debug kernel. Loads and unloads the module itself.
//!
//! Usage: `rustnl-guest-tests [--ko PATH] [--stock] [--skip FRAGMENTS] [FILTER]`.
//! FILTER and FRAGMENTS are comma-separated parts of test names. Prints one
//! `test NAME ... ok|FAILED` line per test and a cargo-style
//! `test result:` line; exits non-zero if any test failed.

use rustnl::proto::{
    MsgType, NlMsgHdr, DEFAULT_MAX_PAYLOAD, DEFAULT_UNIT, NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST,
};
use rustnl::{Client, Error, EventKind, MessageBuilder, Socket, Subscription};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type TestResult = Result<(), String>;
/// A named guest test.
type Test = (&'static str, fn(&Ctx) -> TestResult);

/// Longest a single guest test may take (TCG, debug kernel).
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Path of the module inside the guest.
#[derive(Clone)]
struct Ctx {
    ko: String,
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod fuzz;
mod fuzz_genl;
mod genl;
mod lifecycle;
mod loadrace;
mod review;
mod stress;
mod tools;

/// How big the hardening tests run: `ci` (bounded slices, the default, what
/// `make test` runs) or `full` (`make stress`, `make fuzz-kernel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scale {
    Ci,
    Full,
}

/// Run-wide settings from the command line.
#[derive(Clone, Copy, Debug)]
struct Settings {
    scale: Scale,
    /// Fuzzer seed (printed; `--seed` re-runs one).
    seed: u64,
    /// Messages the fuzzer sends in all.
    fuzz_messages: u64,
}

static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

fn settings() -> Settings {
    *SETTINGS.get_or_init(|| Settings {
        scale: Scale::Ci,
        seed: 1,
        fuzz_messages: 1000,
    })
}

/// `n` at full scale, `ci` in the bounded CI slice.
fn scaled(full: u64, ci: u64) -> u64 {
    match settings().scale {
        Scale::Full => full,
        Scale::Ci => ci,
    }
}

/// Figures for the hardening report, printed as `RUSTNL-REPORT key value`
/// lines at the end (scripts/report.sh turns them into the table).
static REPORT: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn report(key: &str, value: impl std::fmt::Display) {
    let line = (key.to_string(), value.to_string());
    println!("    {} = {}", line.0, line.1);
    if let Ok(mut r) = REPORT.lock() {
        r.push(line);
    }
}

fn insmod(ctx: &Ctx, params: &[&str]) -> Result<(), String> {
    let out = Command::new("insmod")
        .arg(&ctx.ko)
        .args(params)
        .output()
        .map_err(|e| format!("running insmod: {e}"))?;
    if out.status.success() {
        print_sections();
        Ok(())
    } else {
        Err(format!(
            "insmod {} failed: {}",
            params.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Prints where the module's code sections are, for `make coverage`
/// (scripts/coverage.py maps QEMU's translation log to the module with it).
fn print_sections() {
    let sections = [".text", ".init.text", ".exit.text"]
        .iter()
        .filter_map(|s| {
            let addr = std::fs::read_to_string(format!("/sys/module/rustnl/sections/{s}")).ok()?;
            Some(format!("{s}={}", addr.trim()))
        })
        .collect::<Vec<_>>();
    if !sections.is_empty() {
        println!("RUSTNL-SECTIONS {}", sections.join(" "));
    }
}

/// `rmmod rustnl`. Open sockets pin the module; a process that just exited
/// may still be closing its own, so "in use" is retried for up to 3 s.
fn rmmod() -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let out = Command::new("rmmod")
            .arg("rustnl")
            .output()
            .map_err(|e| format!("running rmmod: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("temporarily unavailable") || Instant::now() > deadline {
            // Who holds it: the unit's user sockets (protocol 31 rows).
            let holders: Vec<String> = std::fs::read_to_string("/proc/net/netlink")
                .unwrap_or_default()
                .lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("31"))
                .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
                .collect();
            return Err(format!(
                "rmmod rustnl failed: {} (unit 31 sockets: {holders:?})",
                err.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn module_loaded() -> bool {
    std::fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.starts_with("rustnl ")))
        .unwrap_or(false)
}

/// Kernel log lines of the module (`rustnl: ...`), oldest first.
fn module_log() -> Vec<String> {
    let out = Command::new("dmesg")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| l.contains("rustnl: "))
        .map(str::to_owned)
        .collect()
}

fn last_log_contains(before: usize, needle: &str) -> TestResult {
    let log = module_log();
    ensure!(
        log.iter().skip(before).any(|l| l.contains(needle)),
        "kernel log has no `{needle}` (new lines: {:?})",
        &log[before.min(log.len())..]
    );
    Ok(())
}

fn connect(unit: u32) -> Result<Client, String> {
    Client::connect(unit).map_err(|e| format!("connect(unit {unit}): {e}"))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends raw bytes on a fresh socket of `unit` and returns the kernel's
/// answers as (header, payload) pairs until `n` messages arrived.
fn raw_exchange(unit: u32, bytes: &[u8], n: usize) -> Result<Vec<(NlMsgHdr, Vec<u8>)>, String> {
    let mut sock = Socket::open(unit).map_err(|e| e.to_string())?;
    sock.set_ext_ack(true).map_err(|e| e.to_string())?;
    sock.set_recv_timeout(Some(std::time::Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    sock.send(bytes).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    while got.len() < n {
        let d = sock
            .recv()
            .map_err(|e| format!("after {} answers: {e}", got.len()))?;
        ensure!(
            d.sender == 0,
            "answer from port {} instead of the kernel",
            d.sender
        );
        for m in d.messages() {
            let m = m.map_err(|e| format!("malformed answer: {e}"))?;
            got.push((m.header, m.payload.to_vec()));
        }
    }
    Ok(got)
}

/// Checks an `NLMSG_ERROR` answer: errno and extended-ack text.
fn expect_error(answer: &(NlMsgHdr, Vec<u8>), errno: i32, text: &str) -> TestResult {
    let (h, payload) = answer;
    ensure!(
        h.ty == NLMSG_ERROR,
        "expected NLMSG_ERROR, got type {:#x}",
        h.ty
    );
    let e = rustnl::proto::ErrorMsg::parse(payload, h.flags).map_err(|e| e.to_string())?;
    ensure!(
        e.error == -errno,
        "expected errno {errno}, got {}",
        -e.error
    );
    let msg = e
        .ext_msg
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_default();
    ensure!(msg.contains(text), "extended ack `{msg}` lacks `{text}`");
    Ok(())
}

// ----------------------------------------------------------------------------

fn t_insmod(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let before = module_log().len();
    insmod(ctx, &[])?;
    ensure!(module_loaded(), "rustnl not in /proc/modules after insmod");
    last_log_contains(before, &format!("netlink unit {DEFAULT_UNIT} ready"))
}

fn t_echo_round_trip(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    let got = c.echo(b"Hello you!").map_err(|e| e.to_string())?;
    ensure!(
        got == b"Hello you!",
        "echo returned {:?}",
        String::from_utf8_lossy(got)
    );
    Ok(())
}

fn t_echo_empty(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    let got = c.echo(b"").map_err(|e| e.to_string())?;
    ensure!(got.is_empty(), "empty echo returned {} bytes", got.len());
    Ok(())
}

fn t_echo_large(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    let payload = pattern(DEFAULT_MAX_PAYLOAD, 7);
    let got = c.echo(&payload).map_err(|e| e.to_string())?;
    ensure!(
        got.len() == payload.len(),
        "echo of {} bytes returned {}",
        payload.len(),
        got.len()
    );
    ensure!(
        got == payload.as_slice(),
        "large echo differs from what was sent"
    );
    Ok(())
}

fn t_echo_every_small_size(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    for len in 0..=259 {
        let payload = pattern(len, len as u8);
        let got = c.echo(&payload).map_err(|e| format!("len {len}: {e}"))?;
        ensure!(got == payload.as_slice(), "echo of {len} bytes differs");
    }
    Ok(())
}

fn t_echo_too_large(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    match c.echo(&pattern(DEFAULT_MAX_PAYLOAD + 1, 1)) {
        Err(Error::Kernel(k)) => {
            ensure!(
                k.errno == libc::EMSGSIZE,
                "errno {} instead of EMSGSIZE",
                k.errno
            );
            let m = k.message.unwrap_or_default();
            ensure!(
                m.contains("exceeds max_payload (65536)"),
                "extended ack: `{m}`"
            );
            Ok(())
        }
        other => Err(format!("expected EMSGSIZE, got {other:?}")),
    }
}

fn t_unknown_type(_: &Ctx) -> TestResult {
    let mut b = MessageBuilder::new();
    b.push(0x7f, NLM_F_REQUEST, 5, b"x")
        .map_err(|e| e.to_string())?;
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    ensure!(got[0].0.seq == 5, "error carries seq {}", got[0].0.seq);
    expect_error(&got[0], libc::EOPNOTSUPP, "unknown message type 0x7f")
}

fn t_missing_request_flag(_: &Ctx) -> TestResult {
    let mut b = MessageBuilder::new();
    b.push(MsgType::Echo.raw(), 0, 6, b"x")
        .map_err(|e| e.to_string())?;
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    expect_error(&got[0], libc::EINVAL, "lacks NLM_F_REQUEST")
}

fn t_malformed_length(_: &Ctx) -> TestResult {
    // nlmsg_len claims 1000 bytes; the datagram has 20.
    let mut b = MessageBuilder::new();
    let h = NlMsgHdr {
        len: 1000,
        ty: MsgType::Echo.raw(),
        flags: NLM_F_REQUEST,
        seq: 9,
        pid: 0,
    };
    b.push_header(h, b"abcd");
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    ensure!(got[0].0.seq == 9, "error carries seq {}", got[0].0.seq);
    expect_error(&got[0], libc::EINVAL, "exceeds the 20 bytes left")?;
    // nlmsg_len shorter than a header.
    let mut b = MessageBuilder::new();
    b.push_header(NlMsgHdr { len: 8, ..h }, b"");
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    expect_error(&got[0], libc::EINVAL, "shorter than the netlink header")?;
    // Stray bytes after a good message: the echo, then an error.
    let mut b = MessageBuilder::new();
    b.push(MsgType::Echo.raw(), NLM_F_REQUEST, 10, b"ok")
        .map_err(|e| e.to_string())?;
    let mut bytes = b.as_bytes().to_vec();
    bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    let got = raw_exchange(DEFAULT_UNIT, &bytes, 2)?;
    ensure!(got[0].1 == b"ok", "first answer is not the echo");
    expect_error(&got[1], libc::EINVAL, "6 stray bytes")
}

fn t_batch_and_ack(_: &Ctx) -> TestResult {
    let mut b = MessageBuilder::new();
    for seq in 1..=10u32 {
        b.push(
            MsgType::Echo.raw(),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            format!("msg {seq}").as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    }
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 20)?;
    for (i, pair) in got.chunks(2).enumerate() {
        let seq = i as u32 + 1;
        let (echo, ack) = (&pair[0], &pair[1]);
        ensure!(
            echo.0.ty == MsgType::Echo.raw() && echo.0.seq == seq,
            "answer {i} is {:?}",
            echo.0
        );
        ensure!(
            echo.1 == format!("msg {seq}").as_bytes(),
            "echo {seq} payload differs"
        );
        expect_error(ack, 0, "")?;
        ensure!(ack.0.seq == seq, "ack {i} has seq {}", ack.0.seq);
    }
    Ok(())
}

fn t_cli_echo(_: &Ctx) -> TestResult {
    let out = Command::new("rustnl")
        .args(["echo", "Hello you!"])
        .output()
        .map_err(|e| format!("running rustnl: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "rustnl echo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    ensure!(lines.next() == Some("Hello you!"), "stdout: {stdout:?}");
    ensure!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("rtt: ") && l.ends_with(" us")),
        "stdout: {stdout:?}"
    );
    Ok(())
}

fn t_unit_param(ctx: &Ctx) -> TestResult {
    rmmod()?;
    let before = module_log().len();
    insmod(ctx, &["unit=30"])?;
    last_log_contains(before, "netlink unit 30 ready")?;
    let mut c = connect(30)?;
    ensure!(
        c.echo(b"on 30").map_err(|e| e.to_string())? == b"on 30",
        "echo on unit 30 differs"
    );
    match Client::connect(DEFAULT_UNIT) {
        Err(Error::Module(rustnl::ModuleError::NotLoaded { unit: 31 })) => {}
        other => return Err(format!("unit 31 while loaded on 30: {other:?}")),
    }
    // The CLI says so in one line and fails.
    let out = Command::new("rustnl")
        .args(["echo", "x"])
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "rustnl echo succeeded without a module on unit 31"
    );
    ensure!(
        stderr.lines().count() == 1 && stderr.contains("not loaded"),
        "stderr: {stderr:?}"
    );
    let out = Command::new("rustnl")
        .args(["--unit", "30", "echo", "y"])
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(
        out.status.success(),
        "rustnl --unit 30 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(c);
    rmmod()
}

fn t_bad_units_rejected(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let before = module_log().len();
    ensure!(
        insmod(ctx, &["unit=32"]).is_err(),
        "insmod unit=32 succeeded"
    );
    last_log_contains(before, "unit=32 is out of range")?;
    // The kernel's own units (uapi names 0..=22): NETLINK_ROUTE, the
    // USERSOCK unit anyone may send and multicast on, NETLINK_GENERIC, the
    // unit kept for NETLINK_DM, the last named one.
    for unit in [0, 2, 16, 17, 22] {
        let before = module_log().len();
        let param = format!("unit={unit}");
        ensure!(insmod(ctx, &[&param]).is_err(), "insmod {param} succeeded");
        last_log_contains(before, &format!("{param} is one of the kernel's own netlink units"))?;
        ensure!(!module_loaded(), "module stayed loaded after a failed init");
    }
    Ok(())
}

/// Every parameter out of its range is refused (EINVAL) with a log line
/// naming it and its range; nothing stays loaded.
fn t_bad_parameters_rejected(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    for (param, text) in [
        ("groups=0", "groups=0 is out of range: 1..1024"),
        ("groups=1025", "groups=1025 is out of range: 1..1024"),
        (
            "max_payload=1048577",
            "max_payload=1048577 is out of range: 0..1048576",
        ),
        (
            "heartbeat_ms=9",
            "heartbeat_ms=9 is out of range: 0 (off) or 10..3600000",
        ),
        (
            "heartbeat_ms=3600001",
            "heartbeat_ms=3600001 is out of range: 0 (off) or 10..3600000",
        ),
    ] {
        let before = module_log().len();
        match insmod(ctx, &[param]) {
            Err(e) if e.contains("Invalid argument") || e.contains("Invalid parameters") => {}
            other => return Err(format!("insmod {param}: {other:?}")),
        }
        last_log_contains(before, text)?;
        ensure!(!module_loaded(), "module stayed loaded after {param}");
    }
    insmod(ctx, &[])
}

fn t_rmmod_and_reload(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    t_echo_round_trip(ctx)?;
    let before = module_log().len();
    rmmod()?;
    last_log_contains(before, "netlink unit 31 released")?;
    // The library describes the condition; the CLI says what to do.
    match Client::connect(DEFAULT_UNIT) {
        Err(e @ Error::Module(rustnl::ModuleError::NotLoaded { .. })) => {
            let text = e.to_string();
            ensure!(
                text.contains("not loaded") && text.contains("unit 31") && !text.contains("--"),
                "library error: {e}"
            );
        }
        other => return Err(format!("after rmmod: {other:?}")),
    }
    let out = Command::new("rustnl")
        .args(["echo", "x"])
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1)
            && err.lines().count() == 1
            && err.contains("insmod kmod/rustnl.ko")
            && err.contains("modprobe rustnl"),
        "CLI error not actionable: {err:?}"
    );
    insmod(ctx, &[])?;
    t_echo_round_trip(ctx)?;
    rmmod()
}

// ---------------------------------------------------------------------------
// Protocol: broadcast, events, info, errors, namespaces, privileges.
// ---------------------------------------------------------------------------

fn reload(ctx: &Ctx, params: &[&str]) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    insmod(ctx, params)
}

fn subscribe(groups: &[u32]) -> Result<Subscription, String> {
    let mut s = Subscription::new(DEFAULT_UNIT, groups)
        .map_err(|e| format!("subscribe {groups:?}: {e}"))?;
    s.socket_mut()
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// Expects the next event on `sub` to be a broadcast of `text` to `group`.
fn expect_broadcast(sub: &mut Subscription, group: u32, text: &[u8]) -> TestResult {
    let e = sub
        .next_event()
        .map_err(|e| format!("listener on group {group}: {e}"))?;
    ensure!(
        e.kind == EventKind::Broadcast,
        "got a {} event",
        e.kind.name()
    );
    ensure!(
        e.header.group == group,
        "event for group {}",
        e.header.group
    );
    ensure!(
        e.payload == text,
        "payload {:?}",
        String::from_utf8_lossy(e.payload)
    );
    ensure!(
        e.header.timestamp_ns > 0 && e.header.seq > 0,
        "header {:?}",
        e.header
    );
    Ok(())
}

/// Expects nothing on `sub` for a while.
fn expect_silence(sub: &mut Subscription, what: &str) -> TestResult {
    sub.socket_mut()
        .set_recv_timeout(Some(Duration::from_millis(400)))
        .map_err(|e| e.to_string())?;
    match sub.next_event() {
        Err(Error::Timeout) => Ok(()),
        Ok(e) => Err(format!(
            "{what} received a {} event: {:?}",
            e.kind.name(),
            e.header
        )),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn t_broadcast_fan_out(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    for n in [2usize, 8] {
        let mut subs: Vec<_> = (0..n).map(|_| subscribe(&[3])).collect::<Result<_, _>>()?;
        let mut other = subscribe(&[4])?;
        let mut c = connect(DEFAULT_UNIT)?;
        let text = format!("to {n} listeners");
        let r = c.broadcast(3, text.as_bytes()).map_err(|e| e.to_string())?;
        ensure!(
            r.delivered && !r.delivery_failed && r.group == 3,
            "result {r:?}"
        );
        for s in subs.iter_mut() {
            expect_broadcast(s, 3, text.as_bytes())?;
        }
        expect_silence(&mut other, "a listener on group 4")?;
    }
    Ok(())
}

fn t_broadcast_origin_and_seq(_: &Ctx) -> TestResult {
    let mut sub = subscribe(&[2])?;
    let mut c = connect(DEFAULT_UNIT)?;
    let a = c.broadcast(2, b"one").map_err(|e| e.to_string())?;
    let b = c.broadcast(2, b"two").map_err(|e| e.to_string())?;
    ensure!(
        b.event_seq == a.event_seq + 1,
        "event seqs {} then {}",
        a.event_seq,
        b.event_seq
    );
    for (r, text) in [(a, &b"one"[..]), (b, &b"two"[..])] {
        let e = sub.next_event().map_err(|e| e.to_string())?;
        ensure!(
            e.payload == text && e.header.seq == r.event_seq,
            "event {:?}",
            e.header
        );
        ensure!(
            e.header.origin == c.socket().port_id(),
            "origin {} is not the sender",
            e.header.origin
        );
    }
    Ok(())
}

fn t_broadcast_no_listeners(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    let r = c.broadcast(17, b"anyone?").map_err(|e| e.to_string())?;
    ensure!(!r.delivered && !r.delivery_failed, "result {r:?}");
    Ok(())
}

/// A group whose only listener's queue is full, and which did not ask for
/// `NETLINK_BROADCAST_ERROR`: nobody receives the broadcast, and the
/// result says that it failed (not "no listeners"), counted as a delivery
/// failure.
fn t_broadcast_to_full_listener(_: &Ctx) -> TestResult {
    let sub = subscribe(&[18])?;
    sub.socket()
        .set_recv_buffer_size(1)
        .map_err(|e| e.to_string())?;
    let mut c = connect(DEFAULT_UNIT)?;
    let before = c.info().map_err(|e| e.to_string())?.counters;
    let payload = [7u8; 1024];
    let mut sent = 0;
    let result = loop {
        let r = c.broadcast(18, &payload).map_err(|e| e.to_string())?;
        sent += 1;
        if !r.delivered {
            break r;
        }
        ensure!(sent < 64, "the listener's queue never filled: {r:?}");
    };
    ensure!(
        result.delivery_failed,
        "a broadcast nobody could receive: {result:?}"
    );
    let after = c.info().map_err(|e| e.to_string())?.counters;
    ensure!(
        after.delivery_failures > before.delivery_failures
            && after.no_listeners == before.no_listeners,
        "counters before {before:?} after {after:?}"
    );
    drop(sub);
    Ok(())
}

fn t_listen_on_group_above_32(ctx: &Ctx) -> TestResult {
    reload(ctx, &["groups=64"])?;
    let mut sub = subscribe(&[50])?;
    let mut c = connect(DEFAULT_UNIT)?;
    let r = c.broadcast(50, b"fifty").map_err(|e| e.to_string())?;
    ensure!(r.delivered, "result {r:?}");
    expect_broadcast(&mut sub, 50, b"fifty")?;
    // Open sockets pin the module.
    drop((sub, c));
    reload(ctx, &[])
}

fn expect_kernel_error(
    r: Result<impl std::fmt::Debug, Error>,
    errno: i32,
    text: &str,
) -> TestResult {
    match r {
        Err(Error::Kernel(k)) => {
            ensure!(
                k.errno == errno,
                "errno {} instead of {errno}: {k}",
                k.errno
            );
            let m = k.message.unwrap_or_default();
            ensure!(m.contains(text), "extended ack `{m}` lacks `{text}`");
            Ok(())
        }
        other => Err(format!("expected errno {errno}, got {other:?}")),
    }
}

fn t_broadcast_errors(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    for g in [0u32, 33, u32::MAX] {
        expect_kernel_error(
            c.broadcast(g, b"x"),
            libc::EINVAL,
            &format!("group {g} is not in 1..=32"),
        )?;
    }
    expect_kernel_error(
        c.broadcast(1, &vec![0u8; DEFAULT_MAX_PAYLOAD + 1]),
        libc::EMSGSIZE,
        "exceeds max_payload (65536)",
    )?;
    // Truncated header.
    let mut b = MessageBuilder::new();
    b.push(MsgType::Broadcast.raw(), NLM_F_REQUEST, 3, &[1, 0, 8])
        .map_err(|e| e.to_string())?;
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    expect_error(&got[0], libc::EINVAL, "bad broadcast header")?;
    // Kernel-only types.
    for ty in [
        MsgType::Event,
        MsgType::Heartbeat,
        MsgType::Goodbye,
        MsgType::Info,
    ] {
        let mut b = MessageBuilder::new();
        b.push(ty.raw(), NLM_F_REQUEST, 4, b"")
            .map_err(|e| e.to_string())?;
        let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
        expect_error(&got[0], libc::EOPNOTSUPP, "is sent by the kernel")?;
    }
    // GET_INFO with a payload.
    let mut b = MessageBuilder::new();
    b.push(MsgType::GetInfo.raw(), NLM_F_REQUEST, 5, b"x")
        .map_err(|e| e.to_string())?;
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    expect_error(&got[0], libc::EINVAL, "get_info takes no payload")
}

fn t_info_counters_match(ctx: &Ctx) -> TestResult {
    reload(ctx, &["max_payload=4096", "groups=40", "heartbeat_ms=0"])?;
    let mut c = connect(DEFAULT_UNIT)?;
    let i0 = c.info().map_err(|e| e.to_string())?;
    ensure!(
        (
            i0.unit,
            i0.groups,
            i0.max_payload,
            i0.heartbeat_ms,
            i0.open_broadcast,
            i0.version
        ) == (DEFAULT_UNIT, 40, 4096, 0, false, 1),
        "config {i0:?}"
    );
    for _ in 0..5 {
        c.echo(b"count me").map_err(|e| e.to_string())?;
    }
    let _sub = subscribe(&[7])?;
    c.broadcast(7, b"counted").map_err(|e| e.to_string())?;
    c.broadcast(8, b"unheard").map_err(|e| e.to_string())?;
    let _ = c.echo(&[0u8; 4097]); // EMSGSIZE
    let mut b = MessageBuilder::new();
    b.push(0x7e, NLM_F_REQUEST, 1, b"")
        .map_err(|e| e.to_string())?; // EOPNOTSUPP
    raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    let _ = c.broadcast(0, b""); // EINVAL
    let i1 = c.info().map_err(|e| e.to_string())?;
    let (a, z) = (i0.counters, i1.counters);
    let deltas = [
        // 5 echoes + 3 broadcasts + 1 too large + 1 unknown type + this GET_INFO
        // (the first GET_INFO is in the "before" snapshot already)
        ("requests", z.requests - a.requests, 11),
        ("echoes", z.echoes - a.echoes, 5),
        ("broadcasts", z.broadcasts - a.broadcasts, 2),
        ("events_sent", z.events_sent - a.events_sent, 1),
        ("no_listeners", z.no_listeners - a.no_listeners, 1),
        ("too_large", z.too_large - a.too_large, 1),
        ("not_supported", z.not_supported - a.not_supported, 1),
        ("invalid", z.invalid - a.invalid, 1),
        ("not_permitted", z.not_permitted - a.not_permitted, 0),
        (
            "delivery_failures",
            z.delivery_failures - a.delivery_failures,
            0,
        ),
    ];
    for (name, got, want) in deltas {
        ensure!(
            got == want,
            "{name} grew by {got}, expected {want} ({a:?} -> {z:?})"
        );
    }
    // Open sockets pin the module.
    drop((c, _sub));
    reload(ctx, &[])
}

fn t_heartbeat_period(ctx: &Ctx) -> TestResult {
    reload(ctx, &["heartbeat_ms=100"])?;
    let mut sub = subscribe(&[1])?;
    let mut stamps = Vec::new();
    while stamps.len() < 6 {
        let e = sub.next_event().map_err(|e| e.to_string())?;
        ensure!(
            e.kind == EventKind::Heartbeat,
            "got a {} event",
            e.kind.name()
        );
        ensure!(
            e.payload == b"Greeting from kernel!",
            "payload {:?}",
            String::from_utf8_lossy(e.payload)
        );
        ensure!(
            e.header.origin == 0 && e.header.group == 1,
            "header {:?}",
            e.header
        );
        stamps.push(e.header.timestamp_ns);
    }
    let gaps: Vec<u64> = stamps
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) / 1_000_000)
        .collect();
    let mean = gaps.iter().sum::<u64>() / gaps.len() as u64;
    // The period is jiffies-based and the guest may be emulated: loose bounds.
    ensure!(
        (80..=400).contains(&mean),
        "mean heartbeat gap {mean} ms for 100 ms ({gaps:?})"
    );
    ensure!(
        gaps.iter().all(|&g| g >= 50),
        "a heartbeat came early: {gaps:?}"
    );
    drop(sub);
    reload(ctx, &[])
}

/// A system call's result: `Err(errno)` when it returned non-zero.
fn syscall_result(rc: libc::c_long) -> Result<(), i32> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    }
}

/// `delete_module("rustnl")` without waiting; `Err(errno)` if refused.
fn try_rmmod() -> Result<(), i32> {
    // SAFETY: a NUL-terminated module name and plain flags.
    syscall_result(unsafe {
        libc::syscall(
            libc::SYS_delete_module,
            c"rustnl".as_ptr(),
            libc::O_NONBLOCK,
        )
    })
}

/// `rmmod` retried into a gap between other processes' sockets (open
/// sockets pin the module) for up to 60 s; returns how often it was refused
/// as in use. Any other error, or no gap, fails.
fn rmmod_into_a_gap(cycle: u64) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refusals = 0u64;
    loop {
        match try_rmmod() {
            Ok(()) => return Ok(refusals),
            Err(e) if e == libc::EWOULDBLOCK => refusals += 1,
            Err(e) => return Err(format!("cycle {cycle}: rmmod: errno {e}")),
        }
        ensure!(
            Instant::now() < deadline,
            "cycle {cycle}: no gap to unload in 60 s ({refusals} refusals)"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Open user sockets pin the module (it owns the unit, like every in-tree
/// netlink family): `rmmod` is refused while a client or a listener is
/// connected, and both keep working; once they close it goes, and a new
/// client is told the module is not loaded.
fn t_rmmod_refused_while_clients_connected(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let mut sub = subscribe(&[1])?;
    let mut c = connect(DEFAULT_UNIT)?;
    c.echo(b"before").map_err(|e| e.to_string())?;
    match try_rmmod() {
        Err(e) if e == libc::EWOULDBLOCK => {}
        other => return Err(format!("rmmod with clients connected: {other:?}")),
    }
    ensure!(module_loaded(), "the module went away");
    ensure!(
        c.echo(b"still").map_err(|e| e.to_string())? == b"still",
        "client after the refused rmmod"
    );
    drop(c);
    // The listener alone still pins it; it still receives.
    ensure!(
        try_rmmod() == Err(libc::EWOULDBLOCK),
        "rmmod with a listener"
    );
    run_cmd("rustnl", &["broadcast", "--group", "1", "still here"])?;
    expect_broadcast(&mut sub, 1, b"still here")?;
    drop(sub);
    try_rmmod().map_err(|e| format!("rmmod after the clients closed: errno {e}"))?;
    match Client::connect(DEFAULT_UNIT) {
        Err(Error::Module(rustnl::ModuleError::NotLoaded { .. })) => {}
        other => return Err(format!("connect after rmmod: {:?}", other.map(|_| ()))),
    }
    insmod(ctx, &[])
}

fn t_batch_of_100(_: &Ctx) -> TestResult {
    let mut b = MessageBuilder::new();
    for seq in 1..=100u32 {
        b.push(MsgType::Echo.raw(), NLM_F_REQUEST, seq, &seq.to_ne_bytes())
            .map_err(|e| e.to_string())?;
    }
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 100)?;
    ensure!(got.len() == 100, "{} answers", got.len());
    for (i, (h, p)) in got.iter().enumerate() {
        let seq = i as u32 + 1;
        ensure!(
            h.ty == MsgType::Echo.raw() && h.seq == seq && p == &seq.to_ne_bytes(),
            "answer {i}: {h:?}"
        );
    }
    Ok(())
}

fn t_spoofed_pid(ctx: &Ctx) -> TestResult {
    if !module_loaded() {
        insmod(ctx, &[])?;
    }
    let mut a = Socket::open(DEFAULT_UNIT).map_err(|e| e.to_string())?;
    let mut b = Socket::open(DEFAULT_UNIT).map_err(|e| e.to_string())?;
    for s in [&a, &b] {
        s.set_recv_timeout(Some(Duration::from_millis(1500)))
            .map_err(|e| e.to_string())?;
    }
    let mut m = MessageBuilder::new();
    let h = NlMsgHdr {
        len: 16 + 5,
        ty: MsgType::Echo.raw(),
        flags: NLM_F_REQUEST,
        seq: 42,
        pid: b.port_id(),
    };
    m.push_header(h, b"spoof");
    a.send(m.as_bytes()).map_err(|e| e.to_string())?;
    let a_port = a.port_id();
    let d = a.recv().map_err(|e| format!("sender got no reply: {e}"))?;
    let msg = d
        .messages()
        .next()
        .ok_or("empty datagram")?
        .map_err(|e| e.to_string())?;
    ensure!(
        msg.payload == b"spoof" && msg.header.pid == a_port,
        "reply {:?}",
        msg.header
    );
    match b.recv() {
        Err(Error::Timeout) => Ok(()),
        other => Err(format!("the spoofed port got {other:?}")),
    }
}

/// Runs this binary again as `--child ROLE` with `args`; returns its stdout
/// lines through a reader and its stdin for signalling.
fn spawn_child(role: &str, args: &[&str]) -> Result<std::process::Child, String> {
    Command::new("/proc/self/exe")
        .arg("--child")
        .arg(role)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawning child {role}: {e}"))
}

/// A child (`--child ROLE`) spoken to line by line: it prints `ready`
/// first, then the test `say`s lines on its stdin and `expect`s its
/// stdout lines.
struct Talk {
    role: String,
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    stdin: Option<std::process::ChildStdin>,
}

impl Talk {
    /// Spawns the child and waits for its `ready`.
    fn start(role: &str, args: &[&str]) -> Result<Talk, String> {
        let mut child = spawn_child(role, args)?;
        let lines = BufReader::new(child.stdout.take().ok_or("no child stdout")?).lines();
        let stdin = Some(child.stdin.take().ok_or("no child stdin")?);
        let mut t = Talk {
            role: role.to_string(),
            child,
            lines,
            stdin,
        };
        t.expect("ready")?;
        Ok(t)
    }

    /// The child's next line must be `want`.
    fn expect(&mut self, want: &str) -> TestResult {
        let got = self
            .lines
            .next()
            .ok_or_else(|| format!("child {} exited early", self.role))?
            .map_err(|e| e.to_string())?;
        ensure!(got == want, "child {} said {got:?}", self.role);
        Ok(())
    }

    /// Writes `line` to the child's stdin.
    fn say(&mut self, line: &str) -> TestResult {
        let stdin = self.stdin.as_mut().ok_or("child stdin closed")?;
        writeln!(stdin, "{line}").map_err(|e| e.to_string())
    }

    /// Closes the child's stdin and waits for it: its remaining lines, or
    /// an error with them if it failed.
    fn finish(mut self) -> Result<Vec<String>, String> {
        drop(self.stdin.take());
        let status = self.child.wait().map_err(|e| e.to_string())?;
        let rest: Vec<String> = self.lines.map_while(Result::ok).collect();
        ensure!(status.success(), "child {} failed: {rest:?}", self.role);
        Ok(rest)
    }
}

fn finish_child(child: std::process::Child, role: &str) -> TestResult {
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "child {role} failed: {}", text.trim());
    Ok(())
}

fn t_unprivileged(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    finish_child(spawn_child("unpriv", &["closed"])?, "unpriv (default)")?;
    reload(ctx, &["open_broadcast=1"])?;
    finish_child(
        spawn_child("unpriv", &["open"])?,
        "unpriv (open_broadcast=1)",
    )?;
    reload(ctx, &[])
}

/// Child: drops to uid/gid 65534 (no capabilities), then echoes, listens
/// and broadcasts.
fn child_unpriv(mode: &str) -> TestResult {
    drop_privileges()?;
    let mut c = connect(DEFAULT_UNIT)?;
    ensure!(
        c.echo(b"nobody").map_err(|e| e.to_string())? == b"nobody",
        "unprivileged echo"
    );
    let mut sub = subscribe(&[6])?;
    let r = c.broadcast(6, b"from nobody");
    if mode == "open" {
        let r = r.map_err(|e| e.to_string())?;
        ensure!(r.delivered, "open broadcast result {r:?}");
        expect_broadcast(&mut sub, 6, b"from nobody")
    } else {
        expect_kernel_error(r, libc::EPERM, "broadcast needs CAP_NET_ADMIN")?;
        let info = c.info().map_err(|e| e.to_string())?;
        ensure!(
            info.counters.not_permitted >= 1,
            "not_permitted not counted: {:?}",
            info.counters
        );
        Ok(())
    }
}

/// Enters a network namespace of its own (a single-threaded child); with
/// `as_user`, first drops to uid 65534 and creates a user namespace with
/// it: an unprivileged user's own namespaces, where it holds
/// `CAP_NET_ADMIN`.
fn enter_netns(as_user: bool) -> TestResult {
    let flags = if as_user {
        drop_privileges()?;
        libc::CLONE_NEWUSER | libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWNET
    };
    // SAFETY: plain system call in a single-threaded child.
    ensure!(
        unsafe { libc::unshare(flags) } == 0,
        "unshare({flags:#x}) failed: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Becomes uid/gid 65534 with no supplementary groups and no capabilities.
fn drop_privileges() -> TestResult {
    // SAFETY: plain system calls; callers are single-threaded children.
    unsafe {
        ensure!(
            libc::setgroups(0, std::ptr::null()) == 0,
            "setgroups failed"
        );
        ensure!(
            libc::setgid(65534) == 0 && libc::setuid(65534) == 0,
            "setuid failed"
        );
        ensure!(libc::geteuid() == 65534, "still root");
    }
    Ok(())
}

fn t_network_namespaces(ctx: &Ctx) -> TestResult {
    namespaces_are_isolated(ctx, "netns")
}

/// The same with the other namespace created by an unprivileged user
/// (user namespace + network namespace).
fn t_user_namespace(ctx: &Ctx) -> TestResult {
    namespaces_are_isolated(ctx, "userns")
}

fn namespaces_are_isolated(ctx: &Ctx, role: &str) -> TestResult {
    reload(ctx, &[])?;
    let mut here = subscribe(&[5])?;
    let mut child = Talk::start(role, &[])?;
    // Our broadcast must not reach the other namespace's listener ...
    let mut c = connect(DEFAULT_UNIT)?;
    c.broadcast(5, b"from the first namespace")
        .map_err(|e| e.to_string())?;
    expect_broadcast(&mut here, 5, b"from the first namespace")?;
    child.say("go")?;
    // ... and the child's broadcast in its namespace must not reach ours.
    child.expect("broadcast sent")?;
    expect_silence(&mut here, "a listener in the first namespace")?;
    child.finish().map(drop)
}

/// Child: in a new network namespace, has its own socket and counters, does
/// not see the parent's broadcast, and broadcasts into its own namespace.
///
/// With `userns`, it first drops to uid 65534 and then creates a user
/// namespace with the network namespace: an unprivileged user's own
/// namespace, where it holds `CAP_NET_ADMIN` and so may broadcast — to its
/// namespace only.
fn child_netns(userns: bool) -> TestResult {
    enter_netns(userns)?;
    let mut c = connect(DEFAULT_UNIT)?;
    let info = c.info().map_err(|e| e.to_string())?;
    ensure!(
        info.counters.requests == 1 && info.counters.echoes == 0,
        "fresh namespace counters {:?}",
        info.counters
    );
    let mut sub = subscribe(&[5])?;
    println!("ready");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    expect_silence(&mut sub, "a listener in the second namespace")?;
    sub.socket_mut()
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let r = c
        .broadcast(5, b"from the second namespace")
        .map_err(|e| e.to_string())?;
    ensure!(
        r.delivered && r.event_seq == 1,
        "broadcast in the new namespace: {r:?}"
    );
    expect_broadcast(&mut sub, 5, b"from the second namespace")?;
    println!("broadcast sent");
    Ok(())
}

fn run_cmd(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("running {cmd}: {e}"))?;
    ensure!(
        out.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn t_article_programs(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let out = run_cmd("nl_send", &[])?;
    ensure!(
        out.contains("Received message payload: Hello you!"),
        "nl_send printed {out:?}"
    );
    // Two nl_recv instances on group 1 both receive one broadcast.
    let mut recvs = Vec::new();
    for _ in 0..2 {
        let mut child = Command::new("nl_recv")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut first = String::new();
        lines.read_line(&mut first).map_err(|e| e.to_string())?;
        ensure!(
            first.starts_with("Waiting for message"),
            "nl_recv said {first:?}"
        );
        recvs.push((child, lines));
    }
    let out = run_cmd(
        "rustnl",
        &["broadcast", "--group", "1", "Hello from rustnl broadcast"],
    )?;
    ensure!(
        out.starts_with("delivered to group 1"),
        "rustnl broadcast printed {out:?}"
    );
    for (child, mut lines) in recvs {
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut lines, &mut rest).map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        ensure!(out.status.success(), "nl_recv failed");
        let text = String::from_utf8_lossy(&rest);
        ensure!(
            text.contains("Hello from rustnl broadcast"),
            "nl_recv printed {text:?}"
        );
    }
    Ok(())
}

/// Broadcasts `text` to `group` every 100 ms until every `--count 1`
/// listener in `children` has received one event and exited (they print
/// nothing before their first event, so this is how a test knows they all
/// joined). Kills them and fails after 10 s.
fn broadcast_until_all_exit(
    group: u32,
    text: &str,
    children: &mut [std::process::Child],
) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    let g = group.to_string();
    loop {
        let mut running = 0;
        for c in children.iter_mut() {
            if c.try_wait().map_err(|e| e.to_string())?.is_none() {
                running += 1;
            }
        }
        if running == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            for c in children.iter_mut() {
                let _ = c.kill();
            }
            return Err(format!(
                "{running} listener(s) on group {group} never received a broadcast"
            ));
        }
        run_cmd("rustnl", &["broadcast", "--group", &g, text])?;
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn t_cli_subcommands(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let mut listeners = Vec::new();
    for _ in 0..2 {
        listeners.push(
            Command::new("rustnl")
                .args(["listen", "--group", "9", "--count", "1"])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?,
        );
    }
    broadcast_until_all_exit(9, "cli hello", &mut listeners)?;
    for l in listeners {
        let out = l.wait_with_output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success()
                && text.contains("broadcast group=9")
                && text.contains("payload=cli hello"),
            "listen printed {text:?}"
        );
    }
    let info = run_cmd("rustnl", &["info"])?;
    ensure!(
        info.contains("unit: 31") && info.contains("broadcasts: "),
        "info printed {info:?}"
    );
    Ok(())
}

/// KUnit cases seen passing, added to the totals.
static KUNIT_PASSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The module's KUnit suites ran at insmod; every case passed.
fn t_kunit(ctx: &Ctx) -> TestResult {
    const KUNIT_KO: &str = "/rustnl_kunit.ko";
    const TAINT_TEST: u64 = 1 << 18;
    let tainted = || -> Result<u64, String> {
        std::fs::read_to_string("/proc/sys/kernel/tainted")
            .map_err(|e| e.to_string())?
            .trim()
            .parse::<u64>()
            .map_err(|e| e.to_string())
    };
    // The module itself carries no tests: loading it runs none and does
    // not taint the kernel.
    let before = Command::new("dmesg")
        .output()
        .map(|o| o.stdout.len())
        .unwrap_or(0);
    let taint_before = tainted()?;
    reload(ctx, &[])?;
    ensure!(
        tainted()? & TAINT_TEST == taint_before & TAINT_TEST,
        "loading rustnl.ko set TAINT_TEST"
    );
    ensure!(
        std::path::Path::new(KUNIT_KO).exists(),
        "{KUNIT_KO} missing (make test-vm copies kmod/rustnl_kunit.ko)"
    );
    run_cmd("insmod", &[KUNIT_KO])?;
    let unloaded = run_cmd("rmmod", &["rustnl_kunit"]);
    let log = Command::new("dmesg")
        .output()
        .map_err(|e| e.to_string())?
        .stdout;
    let log =
        String::from_utf8_lossy(log.get(before.min(log.len())..).unwrap_or_default()).into_owned();
    unloaded?;
    let oks = log.lines().filter(|l| l.contains("    ok ")).count();
    let bad: Vec<_> = log.lines().filter(|l| l.contains("not ok")).collect();
    ensure!(bad.is_empty(), "KUnit failures: {bad:?}");
    ensure!(
        log.contains("# Subtest: rustnl"),
        "no rustnl KUnit suite ran:\n{log}"
    );
    ensure!(oks >= 5, "only {oks} KUnit cases passed:\n{log}");
    // Each in-kernel case counts as a test of its own in the totals.
    for case in log.lines().filter_map(|l| l.split("    ok ").nth(1)) {
        let name = case.split_whitespace().nth(1).unwrap_or("?");
        println!("test kunit::rustnl::{name} ... ok");
    }
    KUNIT_PASSED.store(oks, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

// ---------------------------------------------------------------------------
// The CLI and the standard families.
// ---------------------------------------------------------------------------

fn json_lines(out: &str) -> Result<Vec<serde_json::Value>, String> {
    out.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("not JSON ({e}): {l:?}")))
        .collect()
}

fn t_cli_json(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let v = json_lines(&run_cmd("rustnl", &["--json", "echo", "Hello you!"])?)?;
    ensure!(
        v.len() == 1
            && v[0]["type"] == "echo"
            && v[0]["text"] == "Hello you!"
            && v[0]["rtt_us"].is_f64(),
        "{v:?}"
    );
    let v = json_lines(&run_cmd(
        "rustnl",
        &[
            "--json", "echo", "--count", "20", "--size", "1024", "--batch", "8",
        ],
    )?)?;
    ensure!(
        v.len() == 1
            && v[0]["type"] == "echo_summary"
            && v[0]["count"] == 20
            && v[0]["batch"] == 8
            && v[0]["bytes"] == 1024,
        "{v:?}"
    );
    for k in ["min_us", "median_us", "p99_us", "messages_per_sec"] {
        ensure!(v[0][k].as_f64().is_some_and(|x| x > 0.0), "{k} in {v:?}");
    }
    let text = run_cmd("rustnl", &["echo", "--count", "10"])?;
    ensure!(
        text.starts_with("10 x 1 echoes of 64 bytes: rtt min ") && text.contains("p99"),
        "{text:?}"
    );
    let v = json_lines(&run_cmd(
        "rustnl",
        &["--json", "broadcast", "--group", "12", "nobody"],
    )?)?;
    ensure!(
        v[0]["type"] == "broadcast" && v[0]["delivered"] == false && v[0]["group"] == 12,
        "{v:?}"
    );
    let v = json_lines(&run_cmd("rustnl", &["--json", "info"])?)?;
    ensure!(
        v[0]["type"] == "info"
            && v[0]["unit"] == 31
            && v[0]["counters"]["echoes"].as_u64().is_some_and(|n| n >= 21),
        "{v:?}"
    );
    // A listener in JSON.
    let mut l = vec![Command::new("rustnl")
        .args(["--json", "listen", "--group", "13", "--count", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?];
    broadcast_until_all_exit(13, "json event", &mut l)?;
    let l = l.pop().ok_or("no listener")?;
    let out = l.wait_with_output().map_err(|e| e.to_string())?;
    let v = json_lines(&String::from_utf8_lossy(&out.stdout))?;
    ensure!(
        v.len() == 1
            && v[0]["type"] == "event"
            && v[0]["kind"] == "broadcast"
            && v[0]["payload"] == "json event"
            && v[0]["group"] == 13,
        "{v:?}"
    );
    // JSON Lines with `type` first, for every command.
    for args in [
        &["info", "--json"][..],
        &["--json", "broadcast", "--group", "12", "x"],
        &["families", "--json"],
    ] {
        let out = run_cmd("rustnl", args)?;
        ensure!(
            out.lines().all(|l| l.starts_with(r#"{"type":""#)),
            "{args:?}: {out:?}"
        );
    }
    // Usage errors: one line, exit 2; runtime errors: one line, exit 1.
    let out = Command::new("rustnl")
        .args(["broadcast", "--group", "0", "x"])
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(2) && err.lines().count() == 1 && err.contains("1..=1024"),
        "stderr {err:?}"
    );
    let out = Command::new("rustnl")
        .args(["broadcast", "--group", "33", "x"])
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1)
            && err.lines().count() == 1
            && err.contains("EINVAL")
            && err.contains("group 33 is not in 1..=32"),
        "stderr {err:?}"
    );
    // A group the module does not have: one line, before listening.
    let out = Command::new("rustnl")
        .args(["listen", "--group", "40", "--timeout", "1s"])
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1)
            && err.lines().count() == 1
            && err.contains("group 40 is not in 1..=32"),
        "stderr {err:?}"
    );
    // listen ends at --timeout.
    let start = Instant::now();
    let out = run_cmd("rustnl", &["listen", "--group", "14", "--timeout", "1s"])?;
    ensure!(
        out.is_empty() && start.elapsed() < Duration::from_secs(5),
        "listen --timeout 1s: {out:?} after {:?}",
        start.elapsed()
    );
    Ok(())
}

/// Runs `rustnl ARGS` in the background and collects its stdout lines until
/// `done` says so or `timeout` passes, while `poke` runs every 200 ms.
fn watch_until(
    args: &[&str],
    timeout: Duration,
    mut poke: impl FnMut(u32) -> TestResult,
    mut done: impl FnMut(&[String]) -> bool,
) -> Result<Vec<String>, String> {
    let mut child = Command::new("rustnl")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    let mut round = 0;
    std::thread::sleep(Duration::from_millis(300));
    let result = loop {
        if done(&lines) {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(format!("timed out; saw {lines:?}"));
        }
        if let Err(e) = poke(round) {
            break Err(e);
        }
        round += 1;
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    result.map(|()| lines)
}

fn t_watch_exec(_: &Ctx) -> TestResult {
    let lines = watch_until(
        &["--json", "watch", "exec"],
        Duration::from_secs(20),
        |_| run_cmd("true", &[]).map(|_| ()),
        |lines| {
            lines
                .iter()
                .any(|l| l.contains(r#""type":"exec""#) && l.contains(r#""comm":"true""#))
        },
    )?;
    let v = json_lines(&lines.join("\n"))?;
    ensure!(
        v.iter()
            .any(|e| e["type"] == "fork" && e["pid"].as_i64().is_some_and(|p| p > 0)),
        "no fork event: {lines:?}"
    );
    // `true` exits with code 0: exit code and signal are separate fields.
    ensure!(
        v.iter()
            .any(|e| e["type"] == "exit" && e["exit_code"] == 0 && e["signal"].is_null()),
        "no exit event with exit_code 0: {lines:?}"
    );
    Ok(())
}

fn ip(args: &[&str]) -> TestResult {
    run_cmd("ip", args).map(|_| ())
}

fn t_watch_route(_: &Ctx) -> TestResult {
    ip(&["link", "set", "lo", "up"])?;
    let want = [
        "addr new 127.0.0.2/8 dev lo",
        "addr del 127.0.0.2/8 dev lo",
        "link new lo index 1 down",
        "link new lo index 1 up",
    ];
    let lines = watch_until(
        &["watch", "route"],
        Duration::from_secs(20),
        |round| {
            if round > 0 {
                return Ok(());
            }
            ip(&["addr", "add", "127.0.0.2/8", "dev", "lo"])?;
            ip(&["addr", "del", "127.0.0.2/8", "dev", "lo"])?;
            ip(&["link", "set", "lo", "down"])?;
            ip(&["link", "set", "lo", "up"])
        },
        |lines| want.iter().all(|w| lines.iter().any(|l| l.starts_with(w))),
    )?;
    ensure!(
        lines.iter().any(|l| l.starts_with("route ")),
        "no route event: {lines:?}"
    );
    Ok(())
}

fn t_families(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let holder = connect(DEFAULT_UNIT)?;
    let v = json_lines(&run_cmd("rustnl", &["--json", "families"])?)?;
    let unit31 = v
        .iter()
        .find(|f| f["unit"] == 31)
        .ok_or(format!("unit 31 not listed: {v:?}"))?;
    ensure!(
        unit31["kernel"] == true && unit31["users"].as_array().is_some_and(|u| !u.is_empty()),
        "{unit31:?}"
    );
    let text = run_cmd("rustnl", &["families"])?;
    ensure!(
        text.lines()
            .any(|l| l.starts_with("31 rustnl") && l.contains("kernel=yes")),
        "{text:?}"
    );
    // An open socket pins the module: close it first.
    drop(holder);
    rmmod()?;
    let v = json_lines(&run_cmd("rustnl", &["--json", "families"])?)?;
    ensure!(
        !v.iter().any(|f| f["unit"] == 31 && f["kernel"] == true),
        "unit 31 still has a kernel socket: {v:?}"
    );
    insmod(ctx, &[])
}

/// The library's tokio feature against the module: an async request and
/// the rustnl events as a stream.
fn t_async(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut events = rustnl::tokio::EventStream::rustnl(DEFAULT_UNIT, &[15])
            .map_err(|e| format!("event stream: {e}"))?;
        let sock = Socket::open(DEFAULT_UNIT).map_err(|e| e.to_string())?;
        let mut sock = rustnl::tokio::AsyncSocket::new(sock).map_err(|e| e.to_string())?;
        let mut b = MessageBuilder::new();
        b.push(MsgType::Echo.raw(), NLM_F_REQUEST, 1, b"async")
            .map_err(|e| e.to_string())?;
        let mut echoed = Vec::new();
        sock.request(b.as_bytes(), |m| {
            echoed.extend_from_slice(m.payload);
            Ok(())
        })
        .await
        .map_err(|e| format!("async echo: {e}"))?;
        ensure!(echoed == b"async", "async echo gave {echoed:?}");
        let mut c = connect(DEFAULT_UNIT)?;
        c.broadcast(15, b"to the stream")
            .map_err(|e| e.to_string())?;
        let e = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .map_err(|_| "no event on the stream".to_string())?
            .ok_or("the stream ended")?
            .map_err(|e| e.to_string())?;
        ensure!(
            e.kind == EventKind::Broadcast && e.header.group == 15 && e.payload == b"to the stream",
            "{e:?}"
        );
        Ok(())
    })
}

fn t_examples(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    let out = run_cmd("example-unicast", &[])?;
    ensure!(
        out.trim() == "Received message payload: Hello you!",
        "{out:?}"
    );
    let mut child = Command::new("example-multicast")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let first = lines
        .next()
        .ok_or("no output")?
        .map_err(|e| e.to_string())?;
    ensure!(first == "Waiting for message from kernel", "{first:?}");
    let out = run_cmd("rustnl", &["broadcast", "--group", "1", "to the example"])?;
    ensure!(out.starts_with("delivered"), "{out:?}");
    let got = lines
        .next()
        .ok_or("no event line")?
        .map_err(|e| e.to_string())?;
    ensure!(
        got == "Received broadcast message payload: to the example",
        "{got:?}"
    );
    let status = child.wait().map_err(|e| e.to_string())?;
    ensure!(status.success(), "example-multicast failed");
    Ok(())
}

/// `make bench`'s guest program in smoke mode against both modules (the C
/// reference module built for this kernel is at /rustnl_c.ko): both answer
/// its fixed script of requests alike on both faces, classic and generic
/// netlink (`RUSTNL-BENCH-SAME`), and it produces every figure of both
/// faces. No figure is judged here; `make bench` does that.
fn t_bench_smoke(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    ensure!(
        std::path::Path::new("/rustnl_c.ko").exists(),
        "/rustnl_c.ko missing (make test-vm builds it with bench-modules)"
    );
    let out = Command::new("rustnl-bench")
        .args([
            "--rust",
            &ctx.ko,
            "--c",
            "/rustnl_c.ko",
            "--rounds",
            "1",
            "--scale",
            "smoke",
        ])
        .output()
        .map_err(|e| format!("running rustnl-bench: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "rustnl-bench failed: {text}");
    let figures: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("RUSTNL-BENCH "))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad bench line: {e}"))?;
    for module in ["rust", "c"] {
        let has = |metric: &str, param: &str, v: u64| {
            figures.iter().any(|f| {
                f["module"] == module
                    && f["metric"] == metric
                    && (param.is_empty() || f[param] == v)
                    && (f["median"].as_f64().is_some_and(|x| x > 0.0)
                        || f["value"].as_f64().is_some_and(|x| x >= 0.0))
            })
        };
        for size in [64, 1024, 16384] {
            ensure!(
                has("echo_rtt_ns", "size", size),
                "{module}: no echo rtt for {size} B"
            );
        }
        for k in [1, 8, 64] {
            ensure!(
                has("batch_msgs_per_sec", "k", k),
                "{module}: no batch K={k}"
            );
        }
        for n in [1, 8, 64] {
            ensure!(
                has("fanout_deliveries_per_sec", "listeners", n),
                "{module}: no fan-out N={n}"
            );
        }
        ensure!(
            has("client_echo_allocs_per_msg", "", 0),
            "{module}: no allocation count"
        );
        // The generic netlink face.
        for size in [64, 1024, 16384] {
            ensure!(
                has("genl_echo_rtt_ns", "size", size),
                "{module}: no genl echo rtt for {size} B"
            );
        }
        for n in [1, 8, 64] {
            ensure!(
                has("genl_fanout_deliveries_per_sec", "listeners", n),
                "{module}: no genl fan-out N={n}"
            );
        }
    }
    ensure!(
        text.lines().any(|l| l.starts_with("RUSTNL-BENCH-SAME ")),
        "the modules were not compared: {text}"
    );
    ensure!(text.contains("RUSTNL-BENCH-DONE"), "no completion line");
    insmod(ctx, &[])
}

const TESTS: &[Test] = &[
    ("insmod_creates_unit", t_insmod),
    ("echo_round_trip", t_echo_round_trip),
    ("echo_empty_payload", t_echo_empty),
    ("echo_large_payload", t_echo_large),
    ("echo_every_small_size", t_echo_every_small_size),
    ("echo_too_large_is_emsgsize", t_echo_too_large),
    ("unknown_type_is_eopnotsupp", t_unknown_type),
    ("missing_request_flag_is_einval", t_missing_request_flag),
    ("malformed_lengths_are_einval", t_malformed_length),
    ("batch_of_ten_with_acks", t_batch_and_ack),
    ("cli_echo", t_cli_echo),
    ("unit_param_honoured", t_unit_param),
    ("bad_units_rejected", t_bad_units_rejected),
    ("bad_parameters_rejected", t_bad_parameters_rejected),
    ("rmmod_and_insmod_again", t_rmmod_and_reload),
    ("kunit_suites_pass", t_kunit),
    (
        "broadcast_reaches_2_and_8_listeners_only_on_their_group",
        t_broadcast_fan_out,
    ),
    ("broadcast_origin_and_event_seq", t_broadcast_origin_and_seq),
    (
        "broadcast_without_listeners_is_reported",
        t_broadcast_no_listeners,
    ),
    (
        "broadcast_to_a_full_listener_is_a_failure",
        t_broadcast_to_full_listener,
    ),
    ("listen_on_group_above_32", t_listen_on_group_above_32),
    ("broadcast_and_type_errors", t_broadcast_errors),
    ("info_counters_match_traffic", t_info_counters_match),
    ("batch_of_100_echoes_in_one_datagram", t_batch_of_100),
    ("spoofed_nlmsg_pid_cannot_redirect", t_spoofed_pid),
    ("unprivileged_echo_listen_and_broadcast", t_unprivileged),
    ("network_namespaces_are_isolated", t_network_namespaces),
    ("unprivileged_user_namespace_is_isolated", t_user_namespace),
    ("heartbeat_at_configured_period", t_heartbeat_period),
    (
        "rmmod_refused_while_clients_connected",
        t_rmmod_refused_while_clients_connected,
    ),
    ("article_c_programs", t_article_programs),
    ("cli_listen_broadcast_info", t_cli_subcommands),
    ("cli_json_and_echo_statistics", t_cli_json),
    ("watch_exec_sees_a_new_process", t_watch_exec),
    ("watch_route_sees_lo_changes", t_watch_route),
    ("families_lists_unit_31_only_while_loaded", t_families),
    ("async_request_and_event_stream", t_async),
    ("examples_unicast_and_multicast", t_examples),
    // The generic netlink face (genl.rs), mirroring the classic tests.
    ("genl_family_ops_groups_while_loaded", genl::t_family),
    ("genl_echo_every_size_up_to_65531", genl::t_echo_sizes),
    (
        "genl_past_the_attribute_limit",
        genl::t_past_attribute_limit,
    ),
    (
        "genl_policy_rejections_with_ext_ack",
        genl::t_policy_rejections,
    ),
    ("genl_module_refusals_with_ext_ack", genl::t_module_refusals),
    ("genl_broadcast_groups_and_faces", genl::t_broadcast),
    ("genl_counters_per_face", genl::t_counters_per_face),
    (
        "genl_heartbeat_goodbye_and_unload_with_clients",
        genl::t_heartbeat_goodbye_unload,
    ),
    ("genl_unprivileged", genl::t_unprivileged),
    ("genl_network_namespaces_are_isolated", genl::t_namespaces),
    (
        "genl_serves_a_namespace_from_before_insmod",
        genl::t_namespace_from_before_load,
    ),
    (
        "genl_unload_with_ops_in_flight",
        genl::t_unload_with_ops_in_flight,
    ),
    ("genl_cli_face", genl::t_cli),
    // The kernel's own tools from the host root (tools.rs; all `tools_*`).
    ("tools_host_root_runs_host_programs", tools::t_host_root),
    ("tools_genl_ctrl_lists_the_family", tools::t_genl_ctrl),
    ("tools_ynl_echo_and_get_info", tools::t_ynl_echo_info),
    ("tools_ynl_subscribe_sees_broadcast", tools::t_ynl_subscribe),
    (
        "tools_ynl_policy_and_permission_errors",
        tools::t_ynl_errors,
    ),
    ("bench_smoke_rust_and_c_modules", t_bench_smoke),
    // Hardening (issue 6): bounded here, full size in `make stress` and
    // `make fuzz-kernel`; each adds its figures to the report.
    ("hardening_fuzz_kernel_input", stress::t_fuzz),
    ("hardening_fuzz_kernel_genl", stress::t_fuzz_genl),
    ("hardening_load_echo", stress::t_load_echo),
    (
        "hardening_load_broadcast_one_slow_listener",
        stress::t_load_broadcast,
    ),
    ("hardening_unload_under_load", stress::t_unload_under_load),
    ("hardening_load_race_namespaces", loadrace::t_load_race),
    (
        "load_race_default_leaves_existing_namespaces_alone",
        loadrace::t_load_race_default_is_safe,
    ),
    ("namespace_teardown_100", loadrace::t_namespace_teardown),
    (
        "hardening_allocation_failures_input",
        stress::t_faults_input,
    ),
    (
        "hardening_allocation_failures_worker",
        stress::t_faults_worker,
    ),
    (
        "hardening_allocation_failures_insmod",
        stress::t_faults_insmod,
    ),
    // A failed load while users hammer the unit (lifecycle.rs).
    (
        "failed_load_family_taken_users_holding_the_unit",
        lifecycle::t_failed_load_family_taken,
    ),
    (
        "hardening_allocation_failures_every_init_point",
        lifecycle::t_fault_every_init_failure_point,
    ),
    (
        "autoload_by_genl_family_and_by_unit",
        lifecycle::t_autoload_by_family_and_unit,
    ),
    // The review's findings (review.rs).
    (
        "broadcast_listeners_counted_per_namespace",
        review::t_listeners_per_namespace,
    ),
    ("dump_request_is_eopnotsupp", review::t_dump_refused),
    (
        "broadcast_event_after_earlier_answers",
        review::t_broadcast_after_earlier_answers,
    ),
];

/// Tests that need a debug-kernel feature, with the reason: `--stock` (a
/// distribution kernel such as Debian's, `make stock-test`) reports them as
/// ignored instead of running them.
const DEBUG_KERNEL_ONLY: &[(&str, &str)] = &[
    (
        "kunit_suites_pass",
        "needs CONFIG_KUNIT (the module's KUnit suite)",
    ),
    (
        "hardening_fuzz_kernel_input",
        "needs kmemleak (the fuzz run ends with a kmemleak scan)",
    ),
    (
        "hardening_fuzz_kernel_genl",
        "needs kmemleak (the fuzz run ends with a kmemleak scan)",
    ),
    (
        "hardening_allocation_failures_input",
        "needs failslab / fail_page_alloc (fault injection)",
    ),
    (
        "hardening_allocation_failures_worker",
        "needs failslab / fail_page_alloc (fault injection)",
    ),
    (
        "hardening_allocation_failures_insmod",
        "needs failslab / fail_page_alloc (fault injection)",
    ),
    (
        "hardening_allocation_failures_every_init_point",
        "needs failslab / fail_page_alloc and fail-nth (fault injection)",
    ),
    (
        "hardening_load_race_namespaces",
        "needs the test kernel's netlink fix (tests/kernel-patches)",
    ),
];

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut ko = "/lib/modules/rustnl.ko".to_string();
    let mut filter: Option<String> = None;
    // --skip: comma-separated name fragments of tests not to run.
    let mut skip: Option<String> = None;
    let mut stock = false;
    let (mut scale, mut seed, mut fuzz_messages) = (Scale::Ci, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--child" => {
                let role = args.next().unwrap_or_default();
                let arg = args.next().unwrap_or_default();
                let r = match role.as_str() {
                    "unpriv" => child_unpriv(&arg),
                    "netns" => child_netns(false),
                    "userns" => child_netns(true),
                    "fuzz" => fuzz::child(&arg, &args.next().unwrap_or_default()),
                    "fuzz-genl" => fuzz_genl::child(&arg, &args.next().unwrap_or_default()),
                    "loadrace" => loadrace::child(&arg, &args.next().unwrap_or_default()),
                    "nsholder" => loadrace::child_ns_holder(),
                    "nsidle" => loadrace::child_ns_idle(),
                    "holder" => lifecycle::child(&arg),
                    "lonely" => review::child_lonely(),
                    "genl-unpriv" => genl::child_unpriv(&arg),
                    "genl-netns" => genl::child_netns(false),
                    "genl-userns" => genl::child_netns(true),
                    "genl-preexisting" => genl::child_preexisting(),
                    _ => Err(format!("unknown child role {role}")),
                };
                return match r {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(e) => {
                        println!("child {role}: {e}");
                        std::process::ExitCode::FAILURE
                    }
                };
            }
            "--ko" => ko = args.next().unwrap_or(ko),
            "--stock" => stock = true,
            "--scale" => {
                scale = match args.next().as_deref() {
                    Some("full") => Scale::Full,
                    Some("ci") => Scale::Ci,
                    other => {
                        println!("--scale takes ci or full, not {other:?}");
                        return std::process::ExitCode::from(2);
                    }
                }
            }
            "--seed" | "--fuzz-messages" => {
                let Some(v) = args.next().and_then(|v| v.parse::<u64>().ok()) else {
                    println!("{a} takes a number");
                    return std::process::ExitCode::from(2);
                };
                if a == "--seed" {
                    seed = Some(v);
                } else {
                    fuzz_messages = Some(v);
                }
            }
            "--skip" => skip = args.next(),
            "--list" => {
                for (name, _) in TESTS {
                    println!("{name}");
                }
                return std::process::ExitCode::SUCCESS;
            }
            _ => filter = Some(a),
        }
    }
    let ctx = Ctx { ko };
    // A fresh seed each run unless one is given; always printed.
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_007)
            .unwrap_or(1)
    });
    let fuzz_messages = fuzz_messages.unwrap_or(match scale {
        Scale::Full => 1_000_000,
        Scale::Ci => 100_000,
    });
    let _ = SETTINGS.set(Settings {
        scale,
        seed,
        fuzz_messages,
    });
    // FILTER: comma-separated name fragments; a test runs if any matches.
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(n, _)| {
            filter
                .as_deref()
                .is_none_or(|f| f.split(',').any(|p| n.contains(p)))
                && !skip
                    .as_deref()
                    .is_some_and(|f| f.split(',').any(|p| n.contains(p)))
        })
        .collect();
    println!(
        "\nrunning {} guest tests (scale {scale:?}, seed {seed})",
        selected.len()
    );
    let (mut passed, mut failed, mut ignored) = (0, Vec::new(), 0);
    for (name, f) in selected {
        if let Some((_, why)) = DEBUG_KERNEL_ONLY.iter().find(|(n, _)| stock && n == name) {
            ignored += 1;
            println!("test guest::{name} ... ignored, debug kernel only: {why}");
            continue;
        }
        // The host's tools (tools.rs) need the host root, which a stock
        // kernel may not mount (9p is a module there): said, not passed.
        if stock && name.starts_with(tools::PREFIX) {
            if let Some(why) = tools::host_root_unavailable() {
                ignored += 1;
                println!("test guest::{name} ... ignored, needs the host root at /host: {why}");
                continue;
            }
        }
        // A watchdog: a test that hangs fails the run instead of stalling it.
        let (tx, rx) = std::sync::mpsc::channel();
        let (f, tctx) = (*f, ctx.clone());
        std::thread::spawn(move || {
            let _ = tx.send(f(&tctx));
        });
        let limit = if name.starts_with("hardening_") {
            Duration::from_secs(scaled(4 * 3600, 900))
        } else {
            TEST_TIMEOUT
        };
        let started = Instant::now();
        let outcome = rx.recv_timeout(limit).unwrap_or_else(|_| {
            println!("test guest::{name} ... FAILED\n    timed out after {limit:?}");
            println!("\ntest result: FAILED. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n", failed.len() + 1);
            std::process::exit(1);
        });
        if name.starts_with("hardening_") {
            report(
                &format!("{name}.seconds"),
                format!("{:.1}", started.elapsed().as_secs_f64()),
            );
        }
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("test guest::{name} ... ok");
            }
            Err(why) => {
                println!("test guest::{name} ... FAILED\n    {why}");
                failed.push(*name);
            }
        }
    }
    if module_loaded() {
        let _ = rmmod();
    }
    passed += KUNIT_PASSED.load(std::sync::atomic::Ordering::Relaxed);
    if let Ok(r) = REPORT.lock() {
        for (k, v) in r.iter() {
            println!("RUSTNL-REPORT {k} {v}");
        }
    }
    let status = if failed.is_empty() { "ok" } else { "FAILED" };
    if !failed.is_empty() {
        println!("\nfailures: {}", failed.join(", "));
    }
    println!(
        "\ntest result: {status}. {passed} passed; {} failed; {ignored} ignored; 0 measured; 0 filtered out\n",
        failed.len()
    );
    if failed.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
