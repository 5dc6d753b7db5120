//! The load-time race of issue 11: processes in other network namespaces
//! hammer the unit while the module is loaded and unloaded in a loop.
//!
//! Each child process lives in a network namespace of its own (half of them
//! as uid 65534 in a user + network namespace of their own, as any
//! unprivileged user may) and spins: `socket(AF_NETLINK, SOCK_RAW, 31)`
//! until it succeeds, then `sendto()` an ECHO to the kernel (port 0) until
//! a send goes through, then closes the socket and starts again. While the
//! module loads, the unit is usable in every namespace from the first
//! kernel socket on, and each later namespace's kernel socket is created
//! while those children are sending. On a kernel without
//! `tests/kernel-patches/0001-netlink-mark-kernel-sockets-before-making-them-reach.patch`
//! a send that finds the socket between `netlink_insert()` and
//! `NETLINK_F_KERNEL_SOCKET` hits `BUG()` in `netlink_data_ready` (the
//! console verdict fails the run); with it, every load must serve every
//! namespace and the console stay clean.
//!
//! `make test` runs a bounded slice; `make load-race` the full 500 cycles.

use crate::Test;
use crate::{insmod, module_loaded, report, rmmod, scaled, Ctx, TestResult};
use rustnl::proto::{MsgType, NLM_F_REQUEST};
use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODPROBE: &str = "/proc/sys/kernel/modprobe";
/// Hammering namespaces (the scenario).
const NAMESPACES: usize = 8;

/// One ECHO request to the kernel, as the library encodes it.
fn echo_request() -> Result<Vec<u8>, String> {
    let mut b = rustnl::MessageBuilder::new();
    b.push(MsgType::Echo.raw(), NLM_F_REQUEST, 1, b"load race")
        .map_err(|e| e.to_string())?;
    Ok(b.as_bytes().to_vec())
}

/// Child (`--child loadrace root|user hammer|patient`): enters its own
/// namespace(s), says `ready`, then hammers the unit until its stdin closes;
/// prints one `sent` line per send that reached the kernel socket and, at
/// the end, its totals. `patient` pauses between bursts of sends that find
/// no kernel socket (an open socket pins the module, and the failing path is
/// slow on the debug kernel: without pauses `rmmod` would find no gap).
pub fn child(kind: &str, pace: &str) -> TestResult {
    let (burst, pause_ms) = if pace == "patient" { (8, 50) } else { (64, 0) };
    // Before this child starts any thread.
    crate::enter_netns(kind == "user")?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
            stop.store(true, SeqCst);
        });
    }
    let request = echo_request()?;
    // SAFETY: `sockaddr_nl` is plain data; all zero is port 0, no groups.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let (mut no_unit, mut refused, mut sent) = (0u64, 0u64, 0u64);
    while !stop.load(SeqCst) {
        // SAFETY: plain system call.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                rustnl::proto::DEFAULT_UNIT as i32,
            )
        };
        if fd < 0 {
            // EPROTONOSUPPORT: the unit is not registered (module not loaded).
            no_unit += 1;
            std::thread::yield_now();
            continue;
        }
        let mut reached = false;
        // Reopen now and then: an open socket pins the module, and rmmod
        // needs gaps even when this namespace is never served.
        for _ in 0..burst {
            if stop.load(SeqCst) {
                break;
            }
            // SAFETY: `request` and `kernel` are valid for the call.
            let r = unsafe {
                libc::sendto(
                    fd,
                    request.as_ptr().cast(),
                    request.len(),
                    0,
                    (&raw const kernel).cast(),
                    size_of::<libc::sockaddr_nl>() as u32,
                )
            };
            if r >= 0 {
                reached = true;
                break;
            }
            match std::io::Error::last_os_error().raw_os_error() {
                // No kernel socket in this namespace (yet, or any more).
                Some(libc::ECONNREFUSED) => refused += 1,
                Some(e) => {
                    // SAFETY: `fd` is ours.
                    unsafe { libc::close(fd) };
                    return Err(format!("sendto: errno {e}"));
                }
                None => {}
            }
        }
        // SAFETY: `fd` is ours; closing it drops the answer, if any.
        unsafe { libc::close(fd) };
        if reached {
            sent += 1;
            writeln!(out, "sent").map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
        }
        // Leave gaps with no socket open, for rmmod (open sockets pin the
        // module).
        std::thread::sleep(Duration::from_millis(if reached { 2 } else { pause_ms }));
    }
    writeln!(out, "totals {no_unit} {refused} {sent}").map_err(|e| e.to_string())?;
    Ok(())
}

/// Puts a sysfs/procfs value back when dropped.
struct Restore(&'static str, String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, &self.1);
    }
}

/// The reproducer: `NAMESPACES` children hammering, the module loaded with
/// `existing_netns=1` and unloaded `cycles` times; every load must reach
/// every namespace. Crashes a kernel without the netlink fix.
pub fn t_load_race(ctx: &Ctx) -> TestResult {
    load_race(ctx, scaled(500, 40), &["existing_netns=1"], true)
}

/// The same hammering with the default parameters: the namespaces that
/// exist at load are left alone (never reached, so the netlink core's
/// window is never opened: safe on kernels without the fix), a namespace
/// created after the load is served, and the load says how many it left
/// out.
pub fn t_load_race_default_is_safe(ctx: &Ctx) -> TestResult {
    let before = crate::module_log().len();
    load_race(ctx, scaled(200, 20), &[], false)?;
    crate::last_log_contains(
        before,
        &format!("{NAMESPACES} network namespace(s) that existed at load are not served"),
    )?;
    // A namespace created after the load is served.
    crate::reload(ctx, &[])?;
    let holder = crate::children::spawn_child(crate::children::Role::NsHolder, &[])?;
    let out = holder.wait_with_output().map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&out.stdout).trim() != "ready" || !out.status.success() {
        return Err(format!(
            "a namespace created after the load was not served: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    Ok(())
}

fn load_race(ctx: &Ctx, cycles: u64, params: &[&str], reach_all: bool) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    // A failed socket() would run modprobe each time (the kernel's
    // autoload): off, so the children spin at full speed.
    let _modprobe = Restore(
        MODPROBE,
        std::fs::read_to_string(MODPROBE).unwrap_or_default(),
    );
    std::fs::write(MODPROBE, "\n").map_err(|e| format!("{MODPROBE}: {e}"))?;

    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..NAMESPACES).map(|_| AtomicU64::new(0)).collect());
    let totals: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let mut children = Vec::new();
    let mut readers = Vec::new();
    for i in 0..NAMESPACES {
        let kind = if i % 2 == 0 { "root" } else { "user" };
        let pace = if reach_all { "hammer" } else { "patient" };
        let mut child =
            crate::children::spawn_child(crate::children::Role::LoadRace, &[kind, pace])?;
        let stdout = child.stdout.take().ok_or("child without stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(l)) if l == "ready" => {}
            other => return Err(format!("child {i} ({kind}) did not start: {other:?}")),
        }
        let (sent, totals) = (sent.clone(), totals.clone());
        readers.push(std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line == "sent" {
                    if let Some(c) = sent.get(i) {
                        c.fetch_add(1, SeqCst);
                    }
                } else if let Ok(mut t) = totals.lock() {
                    t.push(format!("{kind}: {line}"));
                }
            }
        }));
        children.push(child);
    }
    let start = Instant::now();
    let mut refusals = 0u64;
    let result = (|| -> TestResult {
        for cycle in 1..=cycles {
            let before: Vec<u64> = sent.iter().map(|c| c.load(SeqCst)).collect();
            insmod(ctx, params)?;
            if reach_all {
                // Every namespace's kernel socket must answer on this load.
                let deadline = Instant::now() + Duration::from_secs(60);
                while sent.iter().zip(&before).any(|(c, b)| c.load(SeqCst) <= *b) {
                    if Instant::now() > deadline {
                        return Err(format!(
                            "cycle {cycle}: a namespace never reached its kernel socket"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            } else {
                // Give them time to try; none may get through.
                std::thread::sleep(Duration::from_millis(50));
                let now: Vec<u64> = sent.iter().map(|c| c.load(SeqCst)).collect();
                if now != before {
                    return Err(format!(
                        "cycle {cycle}: a namespace that existed at load was served ({before:?} -> {now:?})"
                    ));
                }
            }
            // Unload into a gap between the children's sockets.
            refusals += crate::rmmod_into_a_gap(cycle)?;
        }
        Ok(())
    })();
    let elapsed = start.elapsed();
    let mut failures = Vec::new();
    for mut c in children {
        drop(c.stdin.take());
        match c.wait() {
            Ok(s) if s.success() => {}
            other => failures.push(format!("{other:?}")),
        }
    }
    for r in readers {
        let _ = r.join();
    }
    result?;
    if !failures.is_empty() {
        return Err(format!("children failed: {failures:?}"));
    }
    insmod(ctx, &[])?;
    // "totals <socket() failures> <ECONNREFUSED> <sends>" per child.
    let (mut no_unit, mut refused) = (0u64, 0u64);
    if let Ok(t) = totals.lock() {
        for line in t.iter() {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if let [a, b, _] = f[..] {
                no_unit += a;
                refused += b;
            }
        }
    }
    let name = if reach_all {
        "load_race"
    } else {
        "load_race_default"
    };
    let sends: u64 = sent.iter().map(|c| c.load(SeqCst)).sum();
    let per_cycle = format!("{:.2}", elapsed.as_secs_f64() / cycles as f64);
    for (key, value) in [
        ("cycles", cycles.to_string()),
        ("namespaces", NAMESPACES.to_string()),
        ("sends_reaching_kernel", sends.to_string()),
        ("rmmod_refused_in_use", refusals.to_string()),
        ("seconds_per_cycle", per_cycle),
        ("socket_eprotonosupport", no_unit.to_string()),
        ("sendto_econnrefused", refused.to_string()),
    ] {
        report(&format!("{name}.{key}"), value);
    }
    Ok(())
}

/// Child (`--child nsidle`): a network namespace of its own, kept until
/// stdin closes.
pub fn child_ns_idle() -> TestResult {
    crate::enter_netns(false)?;
    println!("ready");
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
    Ok(())
}

/// Child (`--child nsholder`): a network namespace of its own that the
/// module serves (one echo), kept until stdin closes.
pub fn child_ns_holder() -> TestResult {
    crate::enter_netns(false)?;
    {
        let mut c = crate::connect(rustnl::proto::DEFAULT_UNIT)?;
        let got = c.echo(b"ns").map_err(|e| e.to_string())?;
        if got != b"ns" {
            return Err(format!("echo in the namespace: {got:?}"));
        }
    }
    println!("ready");
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
    Ok(())
}

/// Namespace teardown with the module: 100 served namespaces, then `rmmod`
/// tears all of them down at once (unregister: every `pre_exit`, one RCU
/// grace period, every `exit`); then 100 served namespaces go away with
/// their processes and `rmmod` (which waits for the namespace cleanup to
/// finish) measures how long that took. Reports both times.
pub fn t_namespace_teardown(ctx: &Ctx) -> TestResult {
    const N: usize = 100;
    let spawn_all = || -> Result<Vec<std::process::Child>, String> {
        let mut v = Vec::new();
        for _ in 0..N {
            let mut child = crate::children::spawn_child(crate::children::Role::NsHolder, &[])?;
            let stdout = child.stdout.take().ok_or("child without stdout")?;
            match BufReader::new(stdout).lines().next() {
                Some(Ok(l)) if l == "ready" => v.push(child),
                other => return Err(format!("namespace holder did not start: {other:?}")),
            }
        }
        Ok(v)
    };
    crate::reload(ctx, &[])?;
    // (a) rmmod with N live namespaces.
    let holders = spawn_all()?;
    let start = Instant::now();
    crate::try_rmmod().map_err(|e| format!("rmmod with {N} namespaces: errno {e}"))?;
    let rmmod_ms = start.elapsed().as_secs_f64() * 1e3;
    for mut c in holders {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    // (b) N namespaces going away with the module loaded.
    insmod(ctx, &[])?;
    let holders = spawn_all()?;
    let start = Instant::now();
    for mut c in holders {
        drop(c.stdin.take());
        c.wait().map_err(|e| e.to_string())?;
    }
    // `rmmod` takes the pernet lock for writing: it returns once the
    // namespaces' cleanup (which holds it for reading) is done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match crate::try_rmmod() {
            Ok(()) => break,
            // A holder's socket may still be closing.
            Err(e) if e == libc::EWOULDBLOCK && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(format!("rmmod after the namespaces exited: errno {e}")),
        }
    }
    let cleanup_ms = start.elapsed().as_secs_f64() * 1e3;
    insmod(ctx, &[])?;
    report("teardown.namespaces", N);
    report(
        "teardown.rmmod_with_namespaces_ms",
        format!("{rmmod_ms:.0}"),
    );
    report(
        "teardown.namespaces_exit_then_rmmod_ms",
        format!("{cleanup_ms:.0}"),
    );
    Ok(())
}

/// This file's tests, in the order they run, with what each needs.
pub(crate) const TESTS: &[Test] = &[
    Test::new("hardening_load_race_namespaces", t_load_race)
        .debug_kernel("needs the test kernel's netlink fix (tests/kernel-patches)"),
    Test::new(
        "load_race_default_leaves_existing_namespaces_alone",
        t_load_race_default_is_safe,
    ),
    Test::new("namespace_teardown_100", t_namespace_teardown),
];
