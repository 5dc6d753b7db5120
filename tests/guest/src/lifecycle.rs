//! A failed load while users hammer the unit (issue 22 §1).
//!
//! From its first kernel socket on, the unit is usable in every namespace
//! and every user socket of it takes a reference on the module. If the load
//! failed after that, the loader would free the module with those
//! references held, and closing such a socket later would run
//! `module_put` on freed memory (`WARNING: kernel/module/main.c ... at
//! module_put`, then a hang). The module registers in an order where
//! nothing fails once the unit is usable (`kmod/netlink/pernet.rs`); these
//! tests hold it to that:
//!
//! - `failed_load_*`: another module owns the generic netlink family name
//!   `rustnl` (the C reference module does), unprivileged users in the
//!   initial namespace and in namespaces of their own spin on
//!   `socket(AF_NETLINK, SOCK_RAW, 31)` and keep every descriptor they
//!   get, and root loads rustnl again and again: every load must fail
//!   (`EEXIST` from the family, which the loader turns into `EBUSY`) and
//!   say why, no user may get a socket of the unit meanwhile, and closing
//!   what they hold must leave the kernel log clean.
//! - `hardening_allocation_failures_every_init_point`: the same users,
//!   three more namespaces, and the load's `N`-th allocation failing
//!   (`/proc/thread-self/fail-nth`) for every `N` until the load no longer
//!   reaches an `N`-th allocation (every 4th in `make test`'s slice, all in
//!   `make stress`), with and without `existing_netns`: each attempt either
//!   loads a working module or fails cleanly, and a failed attempt never
//!   let a user reach the unit.

use crate::{insmod, module_loaded, report, rmmod, scaled, Ctx, Test, TestResult};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};


const MODPROBE: &str = "/proc/sys/kernel/modprobe";
const C_MODULE: &str = "/rustnl_c.ko";
/// The C reference module's classic unit here: any free unit but 31.
const C_MODULE_UNIT: &str = "unit=30";

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Writes `value` to a file for the test's duration, restoring it after.
struct Setting(&'static str, String);

impl Setting {
    fn set(path: &'static str, value: &str) -> Result<Setting, String> {
        let old = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        std::fs::write(path, value).map_err(|e| format!("{path}: {e}"))?;
        Ok(Setting(path, old))
    }
}

impl Drop for Setting {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, &self.1);
    }
}

/// Where a holder child lives.
#[derive(Clone, Copy, Debug)]
pub enum Holder {
    /// uid 65534 in the initial namespaces: a local unprivileged user.
    InitUser,
    /// uid 65534 in a user + network namespace of its own.
    OwnNetns,
}

impl Holder {
    fn arg(self) -> &'static str {
        match self {
            Holder::InitUser => "init-user",
            Holder::OwnNetns => "own-netns",
        }
    }
}

/// Child (`--child holder init-user|own-netns`): drops to uid 65534 (in
/// namespaces of its own for `own-netns`), says `ready`, then spins on
/// `socket(AF_NETLINK, SOCK_RAW, 31)` and keeps every socket it gets. On
/// `close` it closes them and answers `closed N` (how many it had got since
/// the last answer); `pause` does the same and stops spinning until
/// `resume` (answered `resumed`); when its stdin closes it exits.
pub fn child(kind: &str) -> TestResult {
    match kind {
        "init-user" => crate::drop_privileges()?,
        "own-netns" => crate::enter_netns(true)?,
        other => return Err(format!("unknown holder kind {other}")),
    }
    let held: Arc<Mutex<Vec<OwnedFd>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let spinner = {
        let (held, stop, paused) = (held.clone(), stop.clone(), paused.clone());
        std::thread::spawn(move || {
            while !stop.load(SeqCst) {
                if paused.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                // SAFETY: plain system call.
                let fd = unsafe {
                    libc::socket(
                        libc::AF_NETLINK,
                        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                        rustnl::proto::DEFAULT_UNIT as i32,
                    )
                };
                if fd >= 0 {
                    // SAFETY: a descriptor just returned to us, owned once.
                    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                    if let Ok(mut h) = held.lock() {
                        // Paused while socket() ran: closed at once (it
                        // was counted by nobody, so it pins nothing after).
                        if !paused.load(SeqCst) {
                            h.push(fd);
                        }
                    }
                } else {
                    std::thread::yield_now();
                }
            }
        })
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(err)?;
    out.flush().map_err(err)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(err)?;
        match line.as_str() {
            "resume" => {
                paused.store(false, SeqCst);
                writeln!(out, "resumed").map_err(err)?;
            }
            "close" | "pause" => {
                // Under the lock: the spinner cannot add a socket between
                // the pause and the count.
                let mut h = held.lock().map_err(err)?;
                paused.store(line == "pause", SeqCst);
                let n = h.drain(..).count();
                drop(h);
                writeln!(out, "closed {n}").map_err(err)?;
            }
            other => return Err(format!("unexpected command {other:?}")),
        }
        out.flush().map_err(err)?;
    }
    stop.store(true, SeqCst);
    let _ = spinner.join();
    Ok(())
}

/// The holder children of one test.
struct Holders {
    children: Vec<Held>,
}

struct Held {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Holders {
    /// Starts one child per kind and waits until each is spinning.
    fn start(kinds: &[Holder]) -> Result<Holders, String> {
        let mut h = Holders { children: Vec::new() };
        for kind in kinds {
            let mut child = crate::spawn_child(crate::Role::Holder, &[kind.arg()])?;
            let stdin = Some(child.stdin.take().ok_or("no child stdin")?);
            let mut lines = BufReader::new(child.stdout.take().ok_or("no child stdout")?).lines();
            match lines.next() {
                Some(Ok(l)) if l == "ready" => {}
                other => return Err(format!("holder {kind:?} did not start: {other:?}")),
            }
            h.children.push(Held { child, stdin, lines });
        }
        Ok(h)
    }

    /// Has every child close what it holds; returns how many sockets of the
    /// unit they had got since the last call.
    fn close_all(&mut self) -> Result<u64, String> {
        self.command("close")
    }

    /// As [`Self::close_all`], and the children stop spinning.
    fn pause(&mut self) -> Result<u64, String> {
        self.command("pause")
    }

    /// The children spin again.
    fn resume(&mut self) -> TestResult {
        self.say("resume")?;
        for held in &mut self.children {
            let line = held.lines.next().ok_or("a holder exited early")?.map_err(err)?;
            ensure!(line == "resumed", "holder said {line:?}");
        }
        Ok(())
    }

    fn say(&mut self, command: &str) -> TestResult {
        for held in &mut self.children {
            let stdin = held.stdin.as_mut().ok_or("holder stdin closed")?;
            writeln!(stdin, "{command}").map_err(err)?;
        }
        Ok(())
    }

    /// Sends `close` or `pause` and sums the answers.
    fn command(&mut self, command: &str) -> Result<u64, String> {
        let mut total = 0;
        self.say(command)?;
        for held in &mut self.children {
            let line = held
                .lines
                .next()
                .ok_or("a holder exited early")?
                .map_err(err)?;
            let n: u64 = line
                .strip_prefix("closed ")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("holder said {line:?}"))?;
            total += n;
        }
        Ok(total)
    }

    /// Stops every child; fails if one failed.
    fn finish(mut self) -> TestResult {
        let mut failures = Vec::new();
        for mut held in self.children.drain(..) {
            drop(held.stdin.take());
            let status = held.child.wait().map_err(err)?;
            let rest: Vec<String> = held.lines.map_while(Result::ok).collect();
            if !status.success() {
                failures.push(format!("{status}: {rest:?}"));
            }
        }
        ensure!(failures.is_empty(), "holders failed: {failures:?}");
        Ok(())
    }
}

/// The kernel log lines after the first `skip`, as `dmesg` prints them.
fn kernel_log() -> Vec<String> {
    let out = std::process::Command::new("dmesg")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    String::from_utf8_lossy(&out).lines().map(str::to_owned).collect()
}

/// Fails if the kernel log, past line `from`, has a warning or worse.
fn log_clean_since(from: usize) -> TestResult {
    let log = kernel_log();
    let bad: Vec<&String> = log
        .iter()
        .skip(from)
        .filter(|l| {
            ["WARNING:", "BUG:", "Oops", "KASAN", "refcount_t", "general protection"]
                .iter()
                .any(|p| l.contains(p))
        })
        .take(5)
        .collect();
    ensure!(bad.is_empty(), "the kernel log has: {bad:?}");
    Ok(())
}

/// `finit_module` of `ko` with `params`: the errno on failure.
fn load(ko: &str, params: &std::ffi::CStr) -> Result<(), i32> {
    let f = std::fs::File::open(ko).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    use std::os::fd::AsRawFd;
    // SAFETY: finit_module with an open descriptor and a NUL-terminated
    // parameter string.
    crate::syscall_result(unsafe {
        libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0)
    })
}

/// Unloads the C reference module.
fn unload_c_module() -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = std::process::Command::new("rmmod")
            .arg("rustnl_c")
            .output()
            .map_err(err)?;
        if out.status.success() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "rmmod rustnl_c: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 22's reproducer: the family name taken, users spinning on the
/// unit and keeping what they get, many failed loads.
pub fn t_failed_load_family_taken(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    ensure!(
        std::path::Path::new(C_MODULE).exists(),
        "{C_MODULE} missing (make test-vm builds it with bench-modules)"
    );
    let log_from = kernel_log().len();
    // No autoload attempts from the spinning users' socket() calls.
    let _modprobe = Setting::set(MODPROBE, "\n")?;
    let c_param = std::ffi::CString::new(C_MODULE_UNIT).map_err(err)?;
    load(C_MODULE, &c_param).map_err(|e| format!("loading {C_MODULE}: errno {e}"))?;
    let run = (|| -> TestResult {
        let mut holders = Holders::start(&[
            Holder::InitUser,
            Holder::InitUser,
            Holder::OwnNetns,
            Holder::OwnNetns,
        ])?;
        let attempts = scaled(500, 40);
        let mut got = 0;
        for (i, params) in [c"", c"existing_netns=1"].iter().cycle().take(attempts as usize).enumerate() {
            // The module's EEXIST reaches userspace as EBUSY: the loader
            // keeps EEXIST for "a module of that name is loaded".
            match load(&ctx.ko, params) {
                Err(e) if e == libc::EBUSY => {}
                Err(e) => return Err(format!("load {i} failed with errno {e}, not EBUSY")),
                Ok(()) => return Err(format!("load {i} succeeded with the family name taken")),
            }
            ensure!(!module_loaded(), "a failed load left rustnl loaded");
            // Every few loads, the users close what they hold: on a module
            // freed with their references, each close is a use after free.
            if i % 8 == 7 {
                got += holders.close_all()?;
            }
        }
        got += holders.close_all()?;
        holders.finish()?;
        let refused = kernel_log()
            .iter()
            .skip(log_from)
            .filter(|l| l.contains("another module has registered that name"))
            .count() as u64;
        ensure!(
            refused == attempts,
            "{refused} of {attempts} failed loads logged the family name taken"
        );
        report("failed_load.attempts", attempts);
        report("failed_load.sockets_users_got", got);
        ensure!(
            got == 0,
            "users got {got} sockets of unit 31 during failed loads: the unit was usable before the load could fail"
        );
        Ok(())
    })();
    let unloaded = unload_c_module();
    run?;
    unloaded?;
    log_clean_since(log_from)?;
    // Nothing was left behind: rustnl loads and serves now.
    insmod(ctx, &[])?;
    let mut c = crate::connect(rustnl::proto::DEFAULT_UNIT)?;
    ensure!(c.echo(b"after").map_err(err)? == b"after", "echo after the failed loads");
    Ok(())
}

/// Fault injection at every failure point of the load, with users
/// spinning on the unit and more namespaces present.
pub fn t_fault_every_init_failure_point(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let log_from = kernel_log().len();
    let _modprobe = Setting::set(MODPROBE, "\n")?;
    let mut holders = Holders::start(&[
        Holder::InitUser,
        Holder::OwnNetns,
        Holder::OwnNetns,
        Holder::OwnNetns,
    ])?;
    let faults = crate::stress::FailNth::arm()?;
    let mut tally = std::collections::BTreeMap::<String, u64>::new();
    let run = (|| -> TestResult {
        for params in [c"", c"existing_netns=1"] {
            let label = params.to_str().map_err(err)?;
            // Every point at full size (`make stress`); every `stride`-th
            // in the CI slice, from an offset the seed picks (a load takes
            // ~3 s under TCG, ~100 points a pass).
            let stride = scaled(1, 4) as u32;
            let mut n = 1 + (crate::settings().seed % u64::from(stride)) as u32;
            loop {
                ensure!(n <= 2000, "{label}: the load still reaches allocation {n}");
                holders.resume()?;
                let (result, injected) = faults.with_nth(n, || load(&ctx.ko, params))?;
                let during = holders.pause()?;
                match result {
                    Ok(()) => {
                        *tally.entry(format!("loaded{}", if injected { "_absorbed" } else { "" })).or_default() += 1;
                        let mut c = crate::connect(rustnl::proto::DEFAULT_UNIT)?;
                        ensure!(c.echo(b"loaded").map_err(err)? == b"loaded", "echo after load {n}");
                        drop(c);
                        rmmod()?;
                        if !injected {
                            let pass = if label.is_empty() { "default" } else { "existing_netns" };
                            report(&format!("faults.every_point.{pass}.points"), n - 1);
                            report(&format!("faults.every_point.{pass}.stride"), stride);
                            break;
                        }
                    }
                    Err(e) => {
                        ensure!(injected, "{label}: load failed with errno {e} without an injected failure");
                        ensure!(!module_loaded(), "{label}: failure {n} left the module loaded");
                        ensure!(
                            during == 0,
                            "{label}: users got {during} sockets of the unit during the load that failed at allocation {n}"
                        );
                        *tally.entry(format!("failed_{}", rustnl::errno_name(e))).or_default() += 1;
                    }
                }
                n += stride;
            }
        }
        Ok(())
    })();
    drop(faults);
    let finished = holders.finish();
    run?;
    finished?;
    report(
        "faults.every_point.outcomes",
        tally.iter().map(|(k, v)| format!("{k}x{v}")).collect::<Vec<_>>().join(","),
    );
    log_clean_since(log_from)?;
    insmod(ctx, &[])?;
    Ok(())
}

/// Installs the module under `/lib/modules/<release>/extra/` with its
/// aliases (busybox `depmod`), as `make install` does on a real system.
fn install_module(ctx: &Ctx) -> TestResult {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(err)?;
    let dir = format!("/lib/modules/{}/extra", release.trim());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{dir}: {e}"))?;
    std::fs::copy(&ctx.ko, format!("{dir}/rustnl.ko")).map_err(|e| format!("{dir}: {e}"))?;
    crate::harness::run_cmd("depmod", &[])?;
    Ok(())
}

/// A generic netlink client that resolves the family `rustnl` loads the
/// installed module (`MODULE_ALIAS_GENL_FAMILY`: the controller asks for
/// `net-pf-16-proto-16-family-rustnl`), and so does a socket of unit 31
/// (`net-pf-16-proto-31`).
pub fn t_autoload_by_family_and_unit(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    install_module(ctx)?;
    let _modprobe = Setting::set(MODPROBE, "/sbin/modprobe\n")?;
    let aliases = std::fs::read_to_string(format!(
        "/lib/modules/{}/modules.alias",
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(err)?.trim()
    ))
    .map_err(err)?;
    for alias in ["net-pf-16-proto-16-family-rustnl", "net-pf-16-proto-31"] {
        ensure!(
            aliases.contains(&format!("alias {alias} rustnl")),
            "modules.alias lacks {alias}: {aliases:?}"
        );
    }
    let f = crate::genl::family()?;
    ensure!(module_loaded(), "resolving the family did not load the module");
    ensure!(f.name == "rustnl", "family {f:?}");
    rmmod()?;
    let mut c = crate::connect(rustnl::proto::DEFAULT_UNIT)?;
    ensure!(module_loaded(), "a socket of unit 31 did not load the module");
    ensure!(c.echo(b"autoloaded").map_err(err)? == b"autoloaded", "echo");
    drop(c);
    rmmod()?;
    insmod(ctx, &[])?;
    Ok(())
}

pub(crate) const TESTS: &[Test] = &[
    Test::new(
        "failed_load_family_taken_users_holding_the_unit",
        t_failed_load_family_taken,
    ),
    Test::new(
        "hardening_allocation_failures_every_init_point",
        t_fault_every_init_failure_point,
    )
    .debug_kernel("needs failslab / fail_page_alloc and fail-nth (fault injection)"),
    Test::new(
        "autoload_by_genl_family_and_by_unit",
        t_autoload_by_family_and_unit,
    ),
];
