//! rustnl guest tests: run inside the QEMU guest, as root, against the real
//! module on the debug kernel. Loads and unloads the module itself.
//!
//! Usage: `rustnl-guest-tests [--ko PATH] [FILTER]`. Prints one
//! `test NAME ... ok|FAILED` line per test and a cargo-style
//! `test result:` line; exits non-zero if any test failed.

use rustnl::proto::{
    MsgType, NlMsgHdr, DEFAULT_MAX_PAYLOAD, DEFAULT_UNIT, NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST,
};
use rustnl::{Client, Error, MessageBuilder, Socket};
use std::process::Command;

type TestResult = Result<(), String>;
/// A named guest test.
type Test = (&'static str, fn(&Ctx) -> TestResult);

/// Path of the module inside the guest.
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

fn insmod(ctx: &Ctx, params: &[&str]) -> Result<(), String> {
    let out = Command::new("insmod")
        .arg(&ctx.ko)
        .args(params)
        .output()
        .map_err(|e| format!("running insmod: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "insmod {} failed: {}",
            params.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn rmmod() -> Result<(), String> {
    let out = Command::new("rmmod")
        .arg("rustnl")
        .output()
        .map_err(|e| format!("running rmmod: {e}"))?;
    ensure!(
        out.status.success(),
        "rmmod rustnl failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
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
        Err(Error::ModuleNotLoaded { unit: 31 }) => {}
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
    let before = module_log().len();
    ensure!(
        insmod(ctx, &["unit=32"]).is_err(),
        "insmod unit=32 succeeded"
    );
    last_log_contains(before, "unit=32 is out of range")?;
    // Unit 0 is NETLINK_ROUTE: taken by the kernel.
    let before = module_log().len();
    ensure!(
        insmod(ctx, &["unit=0"]).is_err(),
        "insmod unit=0 (NETLINK_ROUTE) succeeded"
    );
    last_log_contains(before, "cannot create netlink unit 0: it is already in use")?;
    ensure!(!module_loaded(), "module stayed loaded after a failed init");
    Ok(())
}

fn t_rmmod_and_reload(ctx: &Ctx) -> TestResult {
    insmod(ctx, &[])?;
    t_echo_round_trip(ctx)?;
    let before = module_log().len();
    rmmod()?;
    last_log_contains(before, "netlink unit 31 released")?;
    match Client::connect(DEFAULT_UNIT) {
        Err(e @ Error::ModuleNotLoaded { .. }) => {
            ensure!(
                e.to_string().contains("insmod rustnl.ko"),
                "error not actionable: {e}"
            );
        }
        other => return Err(format!("after rmmod: {other:?}")),
    }
    insmod(ctx, &[])?;
    t_echo_round_trip(ctx)?;
    rmmod()
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
    ("rmmod_and_insmod_again", t_rmmod_and_reload),
];

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut ko = "/lib/modules/rustnl.ko".to_string();
    let mut filter = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ko" => ko = args.next().unwrap_or(ko),
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
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(n, _)| filter.as_deref().is_none_or(|f| n.contains(f)))
        .collect();
    println!("\nrunning {} guest tests", selected.len());
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, f) in selected {
        match f(&ctx) {
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
    let status = if failed.is_empty() { "ok" } else { "FAILED" };
    if !failed.is_empty() {
        println!("\nfailures: {}", failed.join(", "));
    }
    println!(
        "\ntest result: {status}. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n",
        failed.len()
    );
    if failed.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
