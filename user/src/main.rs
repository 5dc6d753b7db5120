//! `rustnl`: command-line client of the rustnl kernel module.
//!
//! Parses arguments, calls the library, prints. Errors are one line on
//! stderr and a non-zero exit status.

use clap::{Parser, Subcommand};
use rustnl::{Client, Error};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Talk to the rustnl kernel module over its netlink protocol.
#[derive(Parser, Debug)]
#[command(name = "rustnl", version, about, long_about = None)]
struct Cli {
    /// Netlink protocol unit of the module (its `unit=` parameter).
    #[arg(long, global = true, default_value_t = rustnl::proto::DEFAULT_UNIT,
          value_parser = clap::value_parser!(u32).range(0..rustnl::proto::MAX_LINKS as i64))]
    unit: u32,

    /// How long to wait for the kernel's answer, e.g. 500ms, 2s, 1m.
    #[arg(long, global = true, default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send TEXT to the kernel and print its echo and the round-trip time.
    Echo {
        /// The text to send.
        text: String,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms or 2s"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

fn micros(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn run(cli: Cli) -> Result<(), Error> {
    let mut client = Client::connect(cli.unit)?;
    client.set_timeout(Some(cli.timeout))?;
    match cli.command {
        Command::Echo { text } => {
            let start = Instant::now();
            let echoed = client.echo(text.as_bytes())?;
            let rtt = start.elapsed();
            println!("{}", String::from_utf8_lossy(echoed));
            println!("rtt: {}", micros(rtt));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rustnl: {e}");
            ExitCode::FAILURE
        }
    }
}
