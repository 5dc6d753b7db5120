//! The classic face: netlink unit 31 (echo, errors, broadcast, events,
//! info, heartbeat, namespaces, privileges, parameters, KUnit), with the
//! client helpers the other files share.

use crate::children::*;
use crate::harness::*;
use crate::module::*;
use rustnl::proto::{
    BroadcastHdr, MsgType, NlMsgHdr, DEFAULT_MAX_PAYLOAD, DEFAULT_UNIT, NLMSG_ERROR, NLM_F_ACK,
    NLM_F_REQUEST,
};
use rustnl::{Client, Error, EventKind, MessageBuilder, Socket, Subscription};
use std::process::Command;
use std::time::Duration;

pub(crate) fn connect(unit: u32) -> Result<Client, String> {
    Client::connect(unit).map_err(|e| format!("connect(unit {unit}): {e}"))
}

pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends raw bytes on a fresh socket of `unit` and returns the kernel's
/// answers as (header, payload) pairs until `n` messages arrived.
pub(crate) fn raw_exchange(
    unit: u32,
    bytes: &[u8],
    n: usize,
) -> Result<Vec<(NlMsgHdr, Vec<u8>)>, String> {
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
pub(crate) fn expect_error(answer: &(NlMsgHdr, Vec<u8>), errno: i32, text: &str) -> TestResult {
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

pub(crate) fn subscribe(groups: &[u32]) -> Result<Subscription, String> {
    let mut s = Subscription::new(DEFAULT_UNIT, groups)
        .map_err(|e| format!("subscribe {groups:?}: {e}"))?;
    s.socket_mut()
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// Expects the next event on `sub` to be a broadcast of `text` to `group`.
pub(crate) fn expect_broadcast(sub: &mut Subscription, group: u32, text: &[u8]) -> TestResult {
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
pub(crate) fn expect_silence(sub: &mut Subscription, what: &str) -> TestResult {
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

// ---------------------------------------------------------------------------

pub(crate) fn t_insmod(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let before = module_log().len();
    insmod(ctx, &[])?;
    ensure!(module_loaded(), "rustnl not in /proc/modules after insmod");
    last_log_contains(before, &format!("netlink unit {DEFAULT_UNIT} ready"))
}

pub(crate) fn t_echo_round_trip(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    let got = c.echo(b"Hello you!").map_err(|e| e.to_string())?;
    ensure!(
        got == b"Hello you!",
        "echo returned {:?}",
        String::from_utf8_lossy(got)
    );
    Ok(())
}

pub(crate) fn t_echo_empty(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    let got = c.echo(b"").map_err(|e| e.to_string())?;
    ensure!(got.is_empty(), "empty echo returned {} bytes", got.len());
    Ok(())
}

pub(crate) fn t_echo_large(_: &Ctx) -> TestResult {
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

pub(crate) fn t_echo_every_small_size(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    for len in 0..=259 {
        let payload = pattern(len, len as u8);
        let got = c.echo(&payload).map_err(|e| format!("len {len}: {e}"))?;
        ensure!(got == payload.as_slice(), "echo of {len} bytes differs");
    }
    Ok(())
}

pub(crate) fn t_echo_too_large(_: &Ctx) -> TestResult {
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

pub(crate) fn t_unknown_type(_: &Ctx) -> TestResult {
    let mut b = MessageBuilder::new();
    b.push(0x7f, NLM_F_REQUEST, 5, b"x")
        .map_err(|e| e.to_string())?;
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    ensure!(got[0].0.seq == 5, "error carries seq {}", got[0].0.seq);
    expect_error(&got[0], libc::EOPNOTSUPP, "unknown message type 0x7f")
}

pub(crate) fn t_missing_request_flag(_: &Ctx) -> TestResult {
    let mut b = MessageBuilder::new();
    b.push(MsgType::Echo.raw(), 0, 6, b"x")
        .map_err(|e| e.to_string())?;
    let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
    expect_error(&got[0], libc::EINVAL, "lacks NLM_F_REQUEST")
}

pub(crate) fn t_bad_broadcast_header(_: &Ctx) -> TestResult {
    // A BROADCAST's fixed header: too short, version 0, hdr_len past the
    // message. Each is EINVAL with the layout's own words, and nothing is
    // multicast.
    let good = BroadcastHdr { group: 1 }.to_bytes();
    let mut version_0 = good;
    version_0[..2].copy_from_slice(&0u16.to_ne_bytes());
    let mut long_hdr = good;
    long_hdr[2..4].copy_from_slice(&64u16.to_ne_bytes());
    let cases: [(&[u8], &str); 3] = [
        (
            &good[..2],
            "bad broadcast header: header needs 8 bytes, message has 2",
        ),
        (
            &version_0,
            "bad broadcast header: header version 0 is invalid",
        ),
        (&long_hdr, "bad broadcast header: hdr_len 64 outside 8..=8"),
    ];
    for (seq, (payload, text)) in (20u32..).zip(cases) {
        let mut b = MessageBuilder::new();
        b.push(MsgType::Broadcast.raw(), NLM_F_REQUEST, seq, payload)
            .map_err(|e| e.to_string())?;
        let got = raw_exchange(DEFAULT_UNIT, b.as_bytes(), 1)?;
        ensure!(got[0].0.seq == seq, "error carries seq {}", got[0].0.seq);
        expect_error(&got[0], libc::EINVAL, text)?;
    }
    Ok(())
}

pub(crate) fn t_empty_datagram(_: &Ctx) -> TestResult {
    // The core refuses a send of no bytes (`netlink_sendmsg`: ENODATA), so
    // the module's input never sees an empty datagram (make coverage's
    // reason for that check); the socket's next request is answered as
    // usual.
    let mut sock = Socket::open(DEFAULT_UNIT).map_err(|e| e.to_string())?;
    sock.set_recv_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    match sock.send(&[]) {
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENODATA) => {}
        other => return Err(format!("an empty datagram: {other:?}")),
    }
    let mut b = MessageBuilder::new();
    b.push(MsgType::Echo.raw(), NLM_F_REQUEST, 30, b"after")
        .map_err(|e| e.to_string())?;
    sock.send(b.as_bytes()).map_err(|e| e.to_string())?;
    let d = sock.recv().map_err(|e| e.to_string())?;
    let mut msgs = d.messages();
    let m = msgs
        .next()
        .ok_or("an empty answer")?
        .map_err(|e| e.to_string())?;
    ensure!(
        m.header.ty == MsgType::Echo.raw() && m.header.seq == 30 && m.payload == b"after",
        "the answer after the empty datagram: {:?}",
        m.header
    );
    ensure!(msgs.next().is_none(), "more than the echo's answer");
    Ok(())
}

pub(crate) fn t_malformed_length(_: &Ctx) -> TestResult {
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

pub(crate) fn t_batch_and_ack(_: &Ctx) -> TestResult {
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

pub(crate) fn t_unit_param(ctx: &Ctx) -> TestResult {
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

pub(crate) fn t_bad_units_rejected(ctx: &Ctx) -> TestResult {
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
        last_log_contains(
            before,
            &format!("{param} is one of the kernel's own netlink units"),
        )?;
        ensure!(!module_loaded(), "module stayed loaded after a failed init");
    }
    Ok(())
}

/// Every parameter out of its range is refused (EINVAL) with a log line
/// naming it and its range; nothing stays loaded.
pub(crate) fn t_bad_parameters_rejected(ctx: &Ctx) -> TestResult {
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

pub(crate) fn t_rmmod_and_reload(ctx: &Ctx) -> TestResult {
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

/// The module's KUnit suites ran at insmod; every case passed.
pub(crate) fn t_kunit(ctx: &Ctx) -> TestResult {
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

pub(crate) fn t_broadcast_fan_out(ctx: &Ctx) -> TestResult {
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

pub(crate) fn t_broadcast_origin_and_seq(_: &Ctx) -> TestResult {
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

pub(crate) fn t_broadcast_no_listeners(_: &Ctx) -> TestResult {
    let mut c = connect(DEFAULT_UNIT)?;
    let r = c.broadcast(17, b"anyone?").map_err(|e| e.to_string())?;
    ensure!(!r.delivered && !r.delivery_failed, "result {r:?}");
    Ok(())
}

/// A group whose only listener's queue is full, and which did not ask for
/// `NETLINK_BROADCAST_ERROR`: nobody receives the broadcast, and the
/// result says that it failed (not "no listeners"), counted as a delivery
/// failure.
pub(crate) fn t_broadcast_to_full_listener(_: &Ctx) -> TestResult {
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

pub(crate) fn t_listen_on_group_above_32(ctx: &Ctx) -> TestResult {
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

pub(crate) fn expect_kernel_error(
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

pub(crate) fn t_broadcast_errors(_: &Ctx) -> TestResult {
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

pub(crate) fn t_info_counters_match(ctx: &Ctx) -> TestResult {
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

pub(crate) fn t_heartbeat_period(ctx: &Ctx) -> TestResult {
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

/// Open user sockets pin the module (it owns the unit, like every in-tree
/// netlink family): `rmmod` is refused while a client or a listener is
/// connected, and both keep working; once they close it goes, and a new
/// client is told the module is not loaded.
pub(crate) fn t_rmmod_refused_while_clients_connected(ctx: &Ctx) -> TestResult {
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

pub(crate) fn t_batch_of_100(_: &Ctx) -> TestResult {
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

pub(crate) fn t_spoofed_pid(ctx: &Ctx) -> TestResult {
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

pub(crate) fn t_unprivileged(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    finish_child(spawn_child(Role::Unpriv, &["closed"])?, "unpriv (default)")?;
    reload(ctx, &["open_broadcast=1"])?;
    finish_child(
        spawn_child(Role::Unpriv, &["open"])?,
        "unpriv (open_broadcast=1)",
    )?;
    reload(ctx, &[])
}

/// Child: drops to uid/gid 65534 (no capabilities), then echoes, listens
/// and broadcasts.
pub(crate) fn child_unpriv(mode: &str) -> TestResult {
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

pub(crate) fn t_network_namespaces(ctx: &Ctx) -> TestResult {
    namespaces_are_isolated(ctx, Role::Netns)
}

/// The same with the other namespace created by an unprivileged user
/// (user namespace + network namespace).
pub(crate) fn t_user_namespace(ctx: &Ctx) -> TestResult {
    namespaces_are_isolated(ctx, Role::Userns)
}

pub(crate) fn namespaces_are_isolated(ctx: &Ctx, role: Role) -> TestResult {
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
pub(crate) fn child_netns(userns: bool) -> TestResult {
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

/// This file's tests, in the order they run, with what each needs.
pub(crate) const TESTS: &[Test] = &[
    Test::new("insmod_creates_unit", t_insmod),
    Test::new("echo_round_trip", t_echo_round_trip),
    Test::new("echo_empty_payload", t_echo_empty),
    Test::new("echo_large_payload", t_echo_large),
    Test::new("echo_every_small_size", t_echo_every_small_size),
    Test::new("echo_too_large_is_emsgsize", t_echo_too_large),
    Test::new("unknown_type_is_eopnotsupp", t_unknown_type),
    Test::new("missing_request_flag_is_einval", t_missing_request_flag),
    Test::new("bad_broadcast_header_is_einval", t_bad_broadcast_header),
    Test::new("empty_datagram_is_refused_by_the_core", t_empty_datagram),
    Test::new("malformed_lengths_are_einval", t_malformed_length),
    Test::new("batch_of_ten_with_acks", t_batch_and_ack),
    Test::new("unit_param_honoured", t_unit_param),
    Test::new("bad_units_rejected", t_bad_units_rejected),
    Test::new("bad_parameters_rejected", t_bad_parameters_rejected),
    Test::new("rmmod_and_insmod_again", t_rmmod_and_reload),
    Test::new("kunit_suites_pass", t_kunit)
        .debug_kernel("needs CONFIG_KUNIT (the module's KUnit suite)"),
    Test::new(
        "broadcast_reaches_2_and_8_listeners_only_on_their_group",
        t_broadcast_fan_out,
    ),
    Test::new("broadcast_origin_and_event_seq", t_broadcast_origin_and_seq),
    Test::new(
        "broadcast_without_listeners_is_reported",
        t_broadcast_no_listeners,
    ),
    Test::new(
        "broadcast_to_a_full_listener_is_a_failure",
        t_broadcast_to_full_listener,
    ),
    Test::new("listen_on_group_above_32", t_listen_on_group_above_32),
    Test::new("broadcast_and_type_errors", t_broadcast_errors),
    Test::new("info_counters_match_traffic", t_info_counters_match),
    Test::new("batch_of_100_echoes_in_one_datagram", t_batch_of_100),
    Test::new("spoofed_nlmsg_pid_cannot_redirect", t_spoofed_pid),
    Test::new("unprivileged_echo_listen_and_broadcast", t_unprivileged),
    Test::new("network_namespaces_are_isolated", t_network_namespaces),
    Test::new("unprivileged_user_namespace_is_isolated", t_user_namespace),
    Test::new("heartbeat_at_configured_period", t_heartbeat_period),
    Test::new(
        "rmmod_refused_while_clients_connected",
        t_rmmod_refused_while_clients_connected,
    ),
];
