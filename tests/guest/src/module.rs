//! Module control: load, unload (refused while sockets pin the module,
//! retried into a gap), reload with parameters, and the module's kernel log.

use crate::harness::*;
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) fn insmod(ctx: &Ctx, params: &[&str]) -> Result<(), String> {
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
pub(crate) fn print_sections() {
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
pub(crate) fn rmmod() -> Result<(), String> {
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

pub(crate) fn module_loaded() -> bool {
    std::fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.starts_with("rustnl ")))
        .unwrap_or(false)
}

/// Kernel log lines of the module (`rustnl: ...`), oldest first.
pub(crate) fn module_log() -> Vec<String> {
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

pub(crate) fn last_log_contains(before: usize, needle: &str) -> TestResult {
    let log = module_log();
    ensure!(
        log.iter().skip(before).any(|l| l.contains(needle)),
        "kernel log has no `{needle}` (new lines: {:?})",
        &log[before.min(log.len())..]
    );
    Ok(())
}

pub(crate) fn reload(ctx: &Ctx, params: &[&str]) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    insmod(ctx, params)
}

/// A system call's result: `Err(errno)` when it returned non-zero.
pub(crate) fn syscall_result(rc: libc::c_long) -> Result<(), i32> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    }
}

/// `delete_module("rustnl")` without waiting; `Err(errno)` if refused.
pub(crate) fn try_rmmod() -> Result<(), i32> {
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
pub(crate) fn rmmod_into_a_gap(cycle: u64) -> Result<u64, String> {
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
