//! `rustnl`: command-line client of the rustnl kernel module, and a window
//! on the kernel's standard netlink families.
//!
//! Parses arguments, calls the library, prints. Errors are one line on
//! stderr and a non-zero exit status (1 for failures, 2 for usage errors).
//! `--json` prints JSON Lines: one object per line, `type` first, for every
//! command.

mod args;
mod commands;
mod hints;
mod man;
mod output;
mod plan;

use commands::run;
use hints::Failure;
use plan::{plan_from, usage_text};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`rustnl listen | head`), like other
    // Unix tools, instead of panicking in println!.
    // SAFETY: setting a signal disposition to the default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let plan = match plan_from(std::env::args_os()) {
        Ok(p) => p,
        Err(e) if e.exit_code() == 0 => e.exit(), // help, version
        Err(e) => {
            eprintln!("{}", usage_text(&e));
            return ExitCode::from(2);
        }
    };
    match run(plan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            eprintln!("rustnl: {msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
