//! The runner: how a test is declared ([`Test`], with what it needs beside
//! it), run-wide settings (scale, seed), the report figures, and [`run`],
//! which runs the selected tests one by one under a watchdog and prints
//! cargo-style lines.

use std::process::Command;
use std::time::{Duration, Instant};

/// A guest test: its name, its function, and what it needs of the kernel
/// it runs on. Each file of tests ends with a `TESTS` table of these.
pub(crate) struct Test {
    pub(crate) name: &'static str,
    pub(crate) run: fn(&Ctx) -> TestResult,
    pub(crate) needs: Needs,
    /// How long it may run before the watchdog fails it; `None`: the
    /// default ([`TEST_TIMEOUT`], or a hardening test's own).
    pub(crate) limit: Option<Duration>,
}

/// What a test needs beyond a kernel that loads the module.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Needs {
    /// Any kernel the module loads on.
    Nothing,
    /// A feature of the debug test kernel (KUnit, kmemleak, fault
    /// injection, the netlink fix), with the reason: on a distribution
    /// kernel (`--stock`, `make stock-test`) the test is reported as ignored.
    DebugKernel(&'static str),
    /// The host's root filesystem at /host (tests/vm/init mounts it over
    /// virtio 9p): on a stock kernel, where 9p is a module the guest does not
    /// load, the test is reported as ignored when it is missing.
    HostRoot,
}

impl Test {
    pub(crate) const fn new(name: &'static str, run: fn(&Ctx) -> TestResult) -> Test {
        Test {
            name,
            run,
            needs: Needs::Nothing,
            limit: None,
        }
    }

    /// May run for up to `secs` seconds (under TCG) instead of the default.
    pub(crate) const fn limit_secs(self, secs: u64) -> Test {
        Test {
            limit: Some(Duration::from_secs(secs)),
            ..self
        }
    }

    /// Needs the debug test kernel, for the reason given.
    pub(crate) const fn debug_kernel(self, why: &'static str) -> Test {
        Test {
            needs: Needs::DebugKernel(why),
            ..self
        }
    }

    /// Needs the host root at /host.
    pub(crate) const fn host_root(self) -> Test {
        Test {
            needs: Needs::HostRoot,
            ..self
        }
    }

    /// Why this test does not run on the kernel at hand (`stock`: a
    /// distribution kernel), or `None` when it runs.
    fn ignored_because(&self, stock: bool) -> Option<String> {
        if !stock {
            return None;
        }
        match self.needs {
            Needs::Nothing => None,
            Needs::DebugKernel(why) => Some(format!("debug kernel only: {why}")),
            Needs::HostRoot => crate::tools::host_root_unavailable()
                .map(|why| format!("needs the host root at /host: {why}")),
        }
    }

    /// The hardening tests (`hardening_*`) run for long and report their
    /// time.
    fn is_hardening(&self) -> bool {
        self.name.starts_with("hardening_")
    }
}

/// What a test returns: `Err` says why it failed.
pub(crate) type TestResult = Result<(), String>;

/// Longest a single guest test may take (TCG, debug kernel).
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(180);
/// The watchdog of a test that runs the host's programs through /host.
pub(crate) const HOST_ROOT_TEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Path of the module inside the guest.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) ko: String,
}

/// How big the hardening tests run: `ci` (bounded slices, the default, what
/// `make test` runs) or `full` (`make stress`, `make fuzz-kernel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    Ci,
    Full,
}

/// Run-wide settings from the command line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) scale: Scale,
    /// Fuzzer seed (printed; `--seed` re-runs one).
    pub(crate) seed: u64,
    /// Messages the fuzzer sends in all.
    pub(crate) fuzz_messages: u64,
}

pub(crate) static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

pub(crate) fn settings() -> Settings {
    *SETTINGS.get_or_init(|| Settings {
        scale: Scale::Ci,
        seed: 1,
        fuzz_messages: 1000,
    })
}

/// `n` at full scale, `ci` in the bounded CI slice.
pub(crate) fn scaled(full: u64, ci: u64) -> u64 {
    match settings().scale {
        Scale::Full => full,
        Scale::Ci => ci,
    }
}

/// Figures for the hardening report, printed as `RUSTNL-REPORT key value`
/// lines at the end (scripts/report.sh turns them into the table).
pub(crate) static REPORT: std::sync::Mutex<Vec<(String, String)>> =
    std::sync::Mutex::new(Vec::new());

pub(crate) fn report(key: &str, value: impl std::fmt::Display) {
    let line = (key.to_string(), value.to_string());
    println!("    {} = {}", line.0, line.1);
    if let Ok(mut r) = REPORT.lock() {
        r.push(line);
    }
}

/// Runs a program to completion: its stdout, or why it failed (with its
/// stderr).
pub(crate) fn run_cmd(cmd: &str, args: &[&str]) -> Result<String, String> {
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

/// KUnit cases seen passing (the module's suites run at every insmod),
/// added to the totals.
pub(crate) static KUNIT_PASSED: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Which tests run: FILTER and `--skip` are comma-separated name fragments.
pub(crate) struct Selection {
    pub(crate) filter: Option<String>,
    pub(crate) skip: Option<String>,
    /// A distribution kernel (`--stock`): tests that need more are ignored.
    pub(crate) stock: bool,
}

impl Selection {
    fn selects(&self, name: &str) -> bool {
        let any = |f: &str| f.split(',').any(|p| name.contains(p));
        self.filter.as_deref().is_none_or(any) && !self.skip.as_deref().is_some_and(any)
    }
}

/// Runs the selected tests in order, each under a watchdog (a test that
/// hangs fails the run instead of stalling it); prints `test NAME ... ok`
/// lines and the `test result:` line. Returns whether every test passed.
pub(crate) fn run(tests: &[&Test], sel: &Selection, ctx: &Ctx) -> bool {
    let Settings { scale, seed, .. } = settings();
    let selected: Vec<&Test> = tests
        .iter()
        .copied()
        .filter(|t| sel.selects(t.name))
        .collect();
    println!(
        "\nrunning {} guest tests (scale {scale:?}, seed {seed})",
        selected.len()
    );
    let (mut passed, mut failed, mut ignored) = (0, Vec::new(), 0);
    for t in selected {
        let name = t.name;
        if let Some(why) = t.ignored_because(sel.stock) {
            ignored += 1;
            println!("test guest::{name} ... ignored, {why}");
            continue;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (f, tctx) = (t.run, ctx.clone());
        std::thread::spawn(move || {
            let _ = tx.send(f(&tctx));
        });
        let limit = t.limit.unwrap_or(if t.is_hardening() {
            Duration::from_secs(scaled(4 * 3600, 900))
        } else if matches!(t.needs, Needs::HostRoot) {
            // The host's programs (Python's ynl, iproute2) start from the
            // host root over 9p under TCG: each run takes seconds, and a
            // loaded host (seen: another VM and compiles beside the suite)
            // took tools_ynl_* past 180 s.
            HOST_ROOT_TEST_TIMEOUT
        } else {
            TEST_TIMEOUT
        });
        let started = Instant::now();
        let outcome = rx.recv_timeout(limit).unwrap_or_else(|_| {
            println!("test guest::{name} ... FAILED\n    timed out after {limit:?}");
            println!("\ntest result: FAILED. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n", failed.len() + 1);
            std::process::exit(1);
        });
        if t.is_hardening() {
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
                failed.push(name);
            }
        }
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
    failed.is_empty()
}
