//! `rustnl`: command-line client of the rustnl kernel module.
//!
//! Parses arguments, calls the library, prints. Errors are one line on
//! stderr and a non-zero exit status.

use clap::{Parser, Subcommand};
use rustnl::{Client, Error, Subscription};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Talk to the rustnl kernel module over its netlink protocol.
#[derive(Parser, Debug)]
#[command(name = "rustnl", version, about = "Talk to the rustnl kernel module over its netlink protocol", long_about = None)]
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
    /// Ask the kernel to multicast TEXT to a group (needs CAP_NET_ADMIN
    /// unless the module has open_broadcast=1).
    Broadcast {
        /// Multicast group (1..=groups of the module).
        #[arg(long, short)]
        group: u32,
        /// The text to multicast.
        text: String,
    },
    /// Print events sent to the groups (broadcasts, heartbeats, goodbye).
    Listen {
        /// Groups to join (repeat or comma-separate).
        #[arg(long, short, required = true, value_delimiter = ',')]
        group: Vec<u32>,
        /// Exit after this many events (default: until interrupted).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Print the module's configuration and this namespace's counters.
    Info,
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

fn connect(cli: &Cli) -> Result<Client, Error> {
    let client = Client::connect(cli.unit)?;
    client.set_timeout(Some(cli.timeout))?;
    Ok(client)
}

fn listen(unit: u32, groups: &[u32], count: Option<u64>) -> Result<(), Error> {
    let mut sub = Subscription::new(unit, groups)?;
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        match sub.next_event() {
            Ok(e) => {
                println!(
                    "{} group={} seq={} origin={} payload={}",
                    e.kind.name(),
                    e.header.group,
                    e.header.seq,
                    e.header.origin,
                    String::from_utf8_lossy(e.payload)
                );
                seen += 1;
            }
            Err(Error::Overrun) => {
                eprintln!("rustnl: events lost: receive queue overrun (ENOBUFS)")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Listen { group, count } => listen(cli.unit, group, *count)?,
        Command::Echo { text } => {
            let mut client = connect(&cli)?;
            let start = Instant::now();
            let echoed = client.echo(text.as_bytes())?;
            let rtt = start.elapsed();
            println!("{}", String::from_utf8_lossy(echoed));
            println!("rtt: {}", micros(rtt));
        }
        Command::Broadcast { group, text } => {
            let r = connect(&cli)?.broadcast(*group, text.as_bytes())?;
            if r.delivered {
                println!("delivered to group {} (event {})", r.group, r.event_seq);
            } else if r.delivery_failed {
                println!(
                    "delivery failed for some listener of group {} (event {})",
                    r.group, r.event_seq
                );
            } else {
                println!("no listeners on group {} (event {})", r.group, r.event_seq);
            }
        }
        Command::Info => {
            let i = connect(&cli)?.info()?;
            let c = i.counters;
            println!("protocol_version: {}", i.version);
            println!("unit: {}", i.unit);
            println!("groups: {}", i.groups);
            println!("max_payload: {}", i.max_payload);
            println!("heartbeat_ms: {}", i.heartbeat_ms);
            println!("open_broadcast: {}", i.open_broadcast);
            for (name, v) in [
                ("requests", c.requests),
                ("echoes", c.echoes),
                ("broadcasts", c.broadcasts),
                ("events_sent", c.events_sent),
                ("errors_invalid", c.invalid),
                ("errors_not_supported", c.not_supported),
                ("errors_too_large", c.too_large),
                ("errors_not_permitted", c.not_permitted),
                ("delivery_failures", c.delivery_failures),
                ("no_listeners", c.no_listeners),
            ] {
                println!("{name}: {v}");
            }
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
