//! The project's other programs against the module: the article's C
//! clients, the library's examples and async API, the bench program, and
//! the `make vm-run` examples of README.md and docs/.

use crate::classic::*;
use crate::harness::*;
use crate::module::*;
use rustnl::proto::{MsgType, DEFAULT_UNIT, NLM_F_REQUEST};
use rustnl::{EventKind, MessageBuilder, Socket};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn t_article_programs(ctx: &Ctx) -> TestResult {
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

/// The library's tokio feature against the module: an async request and
/// the rustnl events as a stream.
pub(crate) fn t_async(ctx: &Ctx) -> TestResult {
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

pub(crate) fn t_examples(ctx: &Ctx) -> TestResult {
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
pub(crate) fn t_bench_smoke(ctx: &Ctx) -> TestResult {
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

/// Where tests/vm/init's host (scripts/vm.sh) puts the docs' `make vm-run`
/// examples, NUL-separated (scripts/doccheck.py --vm-run-examples).
const DOC_EXAMPLES: &str = "/etc/rustnl/examples";

/// Every `make vm-run CMD='...'` example of README.md and docs/ (but those
/// with `VM_FILES`) runs here as `make vm-run` runs it: in /root with the
/// guest's shell profile, the module loaded with its defaults; each must
/// exit 0 within four minutes (the host's Python over 9p took 103 s for
/// one YNL call under TCG on a busy machine).
pub(crate) fn t_docs_vm_run_examples(ctx: &Ctx) -> TestResult {
    let all = std::fs::read(DOC_EXAMPLES).map_err(|e| format!("{DOC_EXAMPLES}: {e}"))?;
    let examples: Vec<&[u8]> = all.split(|b| *b == 0).filter(|e| !e.is_empty()).collect();
    ensure!(
        examples.len() >= 10,
        "only {} examples in {DOC_EXAMPLES}: is scripts/doccheck.py finding them?",
        examples.len()
    );
    for cmd in &examples {
        reload(ctx, &[])?;
        std::fs::write("/tmp/example.sh", cmd).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let out = Command::new("timeout")
            .args(["-s", "KILL", "240", "sh", "-c"])
            .arg(". /etc/rustnl/profile && . /tmp/example.sh")
            .current_dir("/root")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running sh: {e}"))?;
        ensure!(
            out.status.success(),
            "the example `{}` failed ({}) after {:.1} s:\n{}{}",
            String::from_utf8_lossy(cmd),
            out.status,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "    {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(cmd).replace('\n', "\\n")
        );
    }
    reload(ctx, &[])
}

/// This file's tests, in the order they run, with what each needs.
pub(crate) const TESTS: &[Test] = &[
    Test::new("article_c_programs", t_article_programs),
    Test::new("async_request_and_event_stream", t_async),
    Test::new("examples_unicast_and_multicast", t_examples),
    Test::new("bench_smoke_rust_and_c_modules", t_bench_smoke),
    Test::new("docs_vm_run_examples", t_docs_vm_run_examples)
        .host_root()
        .limit_secs(1200),
];
