//! The `rustnl` command: every subcommand, JSON output, the watchers of
//! the kernel's standard families, `families`.

use crate::classic::*;
use crate::harness::*;
use crate::module::*;
use rustnl::proto::DEFAULT_UNIT;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn t_cli_echo(_: &Ctx) -> TestResult {
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

/// Broadcasts `text` to `group` every 100 ms until every `--count 1`
/// listener in `children` has received one event and exited (they print
/// nothing before their first event, so this is how a test knows they all
/// joined). Kills them and fails after 10 s.
pub(crate) fn broadcast_until_all_exit(
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

pub(crate) fn t_cli_subcommands(ctx: &Ctx) -> TestResult {
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

pub(crate) fn json_lines(out: &str) -> Result<Vec<serde_json::Value>, String> {
    out.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("not JSON ({e}): {l:?}")))
        .collect()
}

pub(crate) fn t_cli_json(ctx: &Ctx) -> TestResult {
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
pub(crate) fn watch_until(
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

pub(crate) fn t_watch_exec(_: &Ctx) -> TestResult {
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

pub(crate) fn ip(args: &[&str]) -> TestResult {
    run_cmd("ip", args).map(|_| ())
}

pub(crate) fn t_watch_route(_: &Ctx) -> TestResult {
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

pub(crate) fn t_families(ctx: &Ctx) -> TestResult {
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

/// This file's tests, in the order they run, with what each needs.
pub(crate) const TESTS: &[Test] = &[
    Test::new("cli_echo", t_cli_echo),
    Test::new("cli_listen_broadcast_info", t_cli_subcommands),
    Test::new("cli_json_and_echo_statistics", t_cli_json),
    Test::new("watch_exec_sees_a_new_process", t_watch_exec),
    Test::new("watch_route_sees_lo_changes", t_watch_route),
    Test::new("families_lists_unit_31_only_while_loaded", t_families),
];
