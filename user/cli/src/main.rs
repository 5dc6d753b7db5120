//! `rustnl`: command-line client of the rustnl kernel module, and a window
//! on the kernel's standard netlink families.
//!
//! Parses arguments, calls the library, prints. Errors are one line on
//! stderr and a non-zero exit status. `--json` prints one JSON object per
//! line with stable field names.

use clap::{CommandFactory, Parser, Subcommand};
use rustnl::families::{
    proc_events::ProcEvent, proc_events::ProcEvents, route::RouteEvent, route::RouteEvents, table,
};
use rustnl::{Client, Error, Subscription};
use serde_json::json;
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

    /// Print one JSON object per line instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send TEXT (or --size bytes) to the kernel and print the echo and the
    /// round-trip time (min/median/p99 over --count).
    Echo {
        /// The text to send (default: --size bytes of a pattern).
        text: Option<String>,
        /// How many round trips.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// Payload size in bytes when no TEXT is given.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Requests per datagram (replies drained as a batch; the RTT is the
        /// batch's).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
        batch: u64,
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
    /// Print events sent to the groups (broadcasts, heartbeats, goodbye)
    /// until Ctrl-C or --count.
    Listen {
        /// Groups to join (repeat or comma-separate).
        #[arg(long, short, required = true, value_delimiter = ',')]
        group: Vec<u32>,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Print the module's configuration and this namespace's counters.
    Info,
    /// Watch the kernel's standard families (works without rustnl).
    Watch {
        #[command(subcommand)]
        what: Watch,
    },
    /// List the netlink protocol units in use and who uses them.
    Families,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum Watch {
    /// Process events from the proc connector: fork, exec (with the command
    /// name), exit. Needs CAP_NET_ADMIN.
    Exec {
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Link, IPv4/IPv6 address and route changes (rtnetlink).
    Route {
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
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

fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// min, median, p99 of sorted samples.
fn percentiles(sorted: &[Duration]) -> (Duration, Duration, Duration) {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (sorted[0], at(0.5), at(0.99))
}

fn connect(cli: &Cli) -> Result<Client, Error> {
    let client = Client::connect(cli.unit)?;
    client.set_timeout(Some(cli.timeout))?;
    Ok(client)
}

fn until(count: Option<u64>, seen: u64) -> bool {
    count.is_none_or(|c| seen < c)
}

fn echo(
    cli: &Cli,
    text: &Option<String>,
    count: u64,
    size: usize,
    batch: u64,
) -> Result<(), Error> {
    let mut client = connect(cli)?;
    let payload: Vec<u8> = match text {
        Some(t) => t.clone().into_bytes(),
        None => (0..size).map(|i| b'a' + (i % 26) as u8).collect(),
    };
    let mut rtts = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let start = Instant::now();
        if batch == 1 {
            let echoed = client.echo(&payload)?;
            let rtt = start.elapsed();
            if count == 1 {
                if cli.json {
                    println!(
                        "{}",
                        json!({"type": "echo", "bytes": echoed.len(), "text": String::from_utf8_lossy(echoed), "rtt_us": us(rtt)})
                    );
                } else {
                    println!("{}", String::from_utf8_lossy(echoed));
                    println!("rtt: {:.1} us", us(rtt));
                }
            }
            rtts.push(rtt);
        } else {
            client.echo_batch(&payload, batch as usize)?;
            rtts.push(start.elapsed());
        }
    }
    if count > 1 || batch > 1 {
        rtts.sort();
        let (min, med, p99) = percentiles(&rtts);
        let total: Duration = rtts.iter().sum();
        let rate = (count * batch) as f64 / total.as_secs_f64().max(1e-9);
        if cli.json {
            println!(
                "{}",
                json!({"type": "echo_summary", "count": count, "batch": batch, "bytes": payload.len(),
                       "min_us": us(min), "median_us": us(med), "p99_us": us(p99), "messages_per_sec": rate.round()})
            );
        } else {
            println!(
                "{count} x {batch} echoes of {} bytes: rtt min {:.1} us, median {:.1} us, p99 {:.1} us; {:.0} messages/s",
                payload.len(),
                us(min),
                us(med),
                us(p99),
                rate
            );
        }
    }
    Ok(())
}

/// Prints events from `next` with `print` until `count` were printed (for
/// good: `print` returns false for events it skips). An overrun is reported
/// on stderr and the watch goes on.
fn each_event<E>(
    count: Option<u64>,
    mut next: impl FnMut() -> Result<E, Error>,
    mut print: impl FnMut(E) -> bool,
) -> Result<(), Error> {
    let mut seen = 0u64;
    while until(count, seen) {
        match next() {
            Ok(e) => {
                if print(e) {
                    seen += 1;
                }
            }
            Err(Error::Overrun) => {
                eprintln!("rustnl: events lost: receive queue overrun (ENOBUFS)")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn listen(cli: &Cli, groups: &[u32], count: Option<u64>) -> Result<(), Error> {
    let mut sub = Subscription::new(cli.unit, groups)?;
    let mut seen = 0u64;
    while until(count, seen) {
        match sub.next_event() {
            Ok(e) => {
                if cli.json {
                    println!(
                        "{}",
                        json!({"type": "event", "kind": e.kind.name(), "group": e.header.group, "seq": e.header.seq,
                               "origin": e.header.origin, "timestamp_ns": e.header.timestamp_ns,
                               "payload": String::from_utf8_lossy(e.payload)})
                    );
                } else {
                    println!(
                        "{} group={} seq={} origin={} payload={}",
                        e.kind.name(),
                        e.header.group,
                        e.header.seq,
                        e.header.origin,
                        String::from_utf8_lossy(e.payload)
                    );
                }
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

fn watch_exec(cli: &Cli, count: Option<u64>) -> Result<(), Error> {
    let mut events = ProcEvents::subscribe()?;
    each_event(
        count,
        || events.next_event(),
        |e| {
            let line = match &e {
                ProcEvent::Fork {
                    parent_pid,
                    parent_tgid,
                    child_pid,
                    child_tgid,
                } => (
                    json!({"type": "fork", "parent_pid": parent_pid, "parent_tgid": parent_tgid, "pid": child_pid, "tgid": child_tgid}),
                    format!("fork parent={parent_pid} pid={child_pid} tgid={child_tgid}"),
                ),
                ProcEvent::Exec { pid, tgid, comm } => (
                    json!({"type": "exec", "pid": pid, "tgid": tgid, "comm": comm}),
                    format!(
                        "exec pid={pid} tgid={tgid} comm={}",
                        comm.as_deref().unwrap_or("?")
                    ),
                ),
                ProcEvent::Comm { pid, tgid, comm } => (
                    json!({"type": "comm", "pid": pid, "tgid": tgid, "comm": comm}),
                    format!("comm pid={pid} tgid={tgid} comm={comm}"),
                ),
                ProcEvent::Exit {
                    pid,
                    tgid,
                    exit_code,
                    parent_pid,
                } => (
                    json!({"type": "exit", "pid": pid, "tgid": tgid, "exit_code": exit_code, "parent_pid": parent_pid}),
                    format!("exit pid={pid} tgid={tgid} code={exit_code} parent={parent_pid}"),
                ),
                ProcEvent::Ack { .. } | ProcEvent::Other { .. } => return false,
            };
            if cli.json {
                println!("{}", line.0);
            } else {
                println!("{}", line.1);
            }
            true
        },
    )
}

fn watch_route(cli: &Cli, count: Option<u64>) -> Result<(), Error> {
    let mut events = RouteEvents::subscribe()?;
    each_event(
        count,
        || events.next_event(),
        |e| {
            if cli.json {
                let j = match &e {
                    RouteEvent::Link {
                        change,
                        index,
                        name,
                        up,
                        running,
                    } => {
                        json!({"type": "link", "change": change.name(), "index": index, "name": name, "up": up, "running": running})
                    }
                    RouteEvent::Addr {
                        change,
                        index,
                        label,
                        addr,
                        prefix_len,
                    } => {
                        json!({"type": "addr", "change": change.name(), "index": index, "label": label,
                               "addr": addr.map(|a| a.to_string()), "prefix_len": prefix_len})
                    }
                    RouteEvent::Route {
                        change,
                        dst,
                        dst_len,
                        gateway,
                        oif,
                        table,
                    } => {
                        json!({"type": "route", "change": change.name(), "dst": dst.map(|a| a.to_string()), "dst_len": dst_len,
                               "gateway": gateway.map(|a| a.to_string()), "oif": oif, "table": table})
                    }
                };
                println!("{j}");
            } else {
                println!("{e}");
            }
            true
        },
    )
}

fn families(cli: &Cli) -> Result<(), Error> {
    for f in table::families()? {
        if cli.json {
            let users: Vec<_> = f
                .users
                .iter()
                .map(|(p, who)| json!({"port_id": p, "process": who}))
                .collect();
            println!(
                "{}",
                json!({"type": "family", "unit": f.unit, "name": f.name, "kernel": f.kernel, "users": users})
            );
        } else {
            let users: Vec<String> = f
                .users
                .iter()
                .map(|(p, who)| {
                    format!(
                        "{p}{}",
                        who.as_ref().map(|w| format!("({w})")).unwrap_or_default()
                    )
                })
                .collect();
            println!(
                "{:>2} {:<22} kernel={:<3} users={}",
                f.unit,
                if f.name.is_empty() { "-" } else { f.name },
                if f.kernel { "yes" } else { "no" },
                if users.is_empty() {
                    "-".to_string()
                } else {
                    users.join(",")
                }
            );
        }
    }
    Ok(())
}

fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Echo {
            text,
            count,
            size,
            batch,
        } => echo(cli, text, *count, *size, *batch)?,
        Command::Listen { group, count } => listen(cli, group, *count)?,
        Command::Broadcast { group, text } => {
            let r = connect(cli)?.broadcast(*group, text.as_bytes())?;
            if cli.json {
                println!(
                    "{}",
                    json!({"type": "broadcast", "group": r.group, "delivered": r.delivered,
                           "delivery_failed": r.delivery_failed, "event_seq": r.event_seq})
                );
            } else if r.delivered {
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
            let i = connect(cli)?.info()?;
            let c = i.counters;
            let counters = [
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
            ];
            if cli.json {
                let counters: serde_json::Map<String, serde_json::Value> = counters
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                println!(
                    "{}",
                    json!({"type": "info", "protocol_version": i.version, "unit": i.unit, "groups": i.groups,
                           "max_payload": i.max_payload, "heartbeat_ms": i.heartbeat_ms,
                           "open_broadcast": i.open_broadcast, "counters": counters})
                );
            } else {
                println!("protocol_version: {}", i.version);
                println!("unit: {}", i.unit);
                println!("groups: {}", i.groups);
                println!("max_payload: {}", i.max_payload);
                println!("heartbeat_ms: {}", i.heartbeat_ms);
                println!("open_broadcast: {}", i.open_broadcast);
                for (name, v) in counters {
                    println!("{name}: {v}");
                }
            }
        }
        Command::Watch {
            what: Watch::Exec { count },
        } => watch_exec(cli, *count)?,
        Command::Watch {
            what: Watch::Route { count },
        } => watch_route(cli, *count)?,
        Command::Families => families(cli)?,
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "rustnl",
                &mut std::io::stdout(),
            );
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|source| Error::Io {
                    op: "writing the man page",
                    source,
                })?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`rustnl listen | head`), like other
    // Unix tools, instead of panicking in println!.
    // SAFETY: setting a signal disposition to the default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rustnl: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn percentiles_of_samples() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let (a, b, c) = percentiles(&v);
        assert_eq!(
            (a, b, c),
            (
                Duration::from_micros(1),
                Duration::from_micros(51),
                Duration::from_micros(99)
            )
        );
    }
}
