//! rustnl guest tests: run inside the QEMU guest, as root, against the real
//! module on the debug kernel. Loads and unloads the module itself.
//!
//! Usage: `rustnl-guest-tests [--ko PATH] [--stock] [--skip FRAGMENTS] [FILTER]`.
//! FILTER and FRAGMENTS are comma-separated parts of test names. Prints one
//! `test NAME ... ok|FAILED` line per test and a cargo-style
//! `test result:` line; exits non-zero if any test failed.
//!
//! One file a concern: `harness` (declaring and running tests), `module`
//! (insmod, rmmod, the kernel log), `children` (the `--child` roles),
//! `classic` (the classic face and the client helpers), `cli` (the `rustnl`
//! command), `hints` (its failures as users meet them), `programs` (the article's C clients, the examples, the bench
//! program), `genl` (the generic netlink face), `tools` (the kernel's own
//! tools from the host root), `stress` and `loadrace` (hardening),
//! `lifecycle` (a failed load under users, fault injection at every point
//! of init, autoload), `review` (the kernel review's findings), `fuzz` and
//! `fuzz_genl` (the kernel input fuzzers). Each test file ends with its
//! `TESTS` table: every test with what it needs beside it.

/// Returns `Err(format!(...))` from the enclosing function unless `$cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod children;
mod classic;
mod cli;
mod fuzz;
mod fuzz_genl;
mod genl;
mod harness;
mod hints;
mod lifecycle;
mod loadrace;
mod module;
mod programs;
mod review;
mod stress;
mod tools;

// The helpers every test file uses, at the crate root as before the split.
pub(crate) use children::{drop_privileges, enter_netns, finish_child, spawn_child, Role, Talk};
pub(crate) use classic::{connect, expect_broadcast, expect_silence, pattern, subscribe};
pub(crate) use cli::json_lines;
pub(crate) use harness::{report, scaled, settings, Ctx, Scale, Settings, Test, TestResult};
pub(crate) use module::{
    insmod, last_log_contains, module_loaded, module_log, reload, rmmod, rmmod_into_a_gap,
    syscall_result, try_rmmod,
};

use std::process::ExitCode;

/// Every test, in the order they run: the files' own tables.
fn all_tests() -> Vec<&'static Test> {
    [
        classic::TESTS,
        cli::TESTS,
        hints::TESTS,
        programs::TESTS,
        genl::TESTS,
        tools::TESTS,
        stress::TESTS,
        loadrace::TESTS,
        lifecycle::TESTS,
        review::TESTS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Plays `role` in this process with the arguments it was given (here, at
/// the root, so that `children` imports no test file).
fn play(role: Role, args: &[String]) -> TestResult {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match role {
        Role::Unpriv => crate::classic::child_unpriv(arg(0)),
        Role::Netns => crate::classic::child_netns(false),
        Role::Userns => crate::classic::child_netns(true),
        Role::Fuzz => crate::fuzz::child(arg(0), arg(1)),
        Role::FuzzGenl => crate::fuzz_genl::child(arg(0), arg(1)),
        Role::LoadRace => crate::loadrace::child(arg(0), arg(1)),
        Role::NsHolder => crate::loadrace::child_ns_holder(),
        Role::NsIdle => crate::loadrace::child_ns_idle(),
        Role::GenlUnpriv => crate::genl::child_unpriv(arg(0)),
        Role::GenlNetns => crate::genl::child_netns(false),
        Role::GenlUserns => crate::genl::child_netns(true),
        Role::GenlPreexisting => crate::genl::child_preexisting(),
        Role::Holder => crate::lifecycle::child(arg(0)),
        Role::Lonely => crate::review::child_lonely(),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut ko = "/lib/modules/rustnl.ko".to_string();
    let mut sel = harness::Selection {
        filter: None,
        skip: None,
        stock: false,
    };
    let (mut scale, mut seed, mut fuzz_messages) = (Scale::Ci, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--child" => {
                let name = args.next().unwrap_or_default();
                let Some(role) = Role::parse(&name) else {
                    println!("unknown child role {name}");
                    return ExitCode::from(2);
                };
                let rest: Vec<String> = args.collect();
                return match play(role, &rest) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        println!("child {role}: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            "--ko" => ko = args.next().unwrap_or(ko),
            "--stock" => sel.stock = true,
            "--scale" => {
                scale = match args.next().as_deref() {
                    Some("full") => Scale::Full,
                    Some("ci") => Scale::Ci,
                    other => {
                        println!("--scale takes ci or full, not {other:?}");
                        return ExitCode::from(2);
                    }
                }
            }
            "--seed" | "--fuzz-messages" => {
                let Some(v) = args.next().and_then(|v| v.parse::<u64>().ok()) else {
                    println!("{a} takes a number");
                    return ExitCode::from(2);
                };
                if a == "--seed" {
                    seed = Some(v);
                } else {
                    fuzz_messages = Some(v);
                }
            }
            "--skip" => sel.skip = args.next(),
            "--list" => {
                for t in all_tests() {
                    println!("{}", t.name);
                }
                return ExitCode::SUCCESS;
            }
            _ => sel.filter = Some(a),
        }
    }
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
    let _ = harness::SETTINGS.set(Settings {
        scale,
        seed,
        fuzz_messages,
    });
    let ok = harness::run(&all_tests(), &sel, &Ctx { ko });
    if module::module_loaded() {
        let _ = module::rmmod();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
