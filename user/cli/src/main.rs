//! `rustnl`: command-line client of the rustnl kernel module, and a window
//! on the kernel's standard netlink families.
//!
//! Parses arguments, calls the library, prints. Errors are one line on
//! stderr and a non-zero exit status (1 for failures, 2 for usage errors).
//! `--json` prints JSON Lines: one object per line, `type` first, for every
//! command.

mod man;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};
use rustnl::families::proc_events::{self, ProcEvent};
use rustnl::families::route::{self, RouteEvent};
use rustnl::families::table;
use rustnl::genl::{Family, GenlSocket};
use rustnl::proto::genl::{McastGroup, GENL_HDRLEN, MAX_ATTR_PAYLOAD};
use rustnl::proto::{
    BroadcastResult, DEFAULT_UNIT, KERNEL_EVENT_GROUP, MAX_GROUPS, MAX_LINKS, MAX_PAYLOAD_LIMIT,
    NLA_HDRLEN, NLMSG_HDRLEN,
};
use rustnl::{Client, Decode, Error, Event, GenlClient, GenlInfo, Subscription};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Default for `--timeout` on requests.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest `--count` of `echo` (every round trip time is kept).
const MAX_ECHO_COUNT: u64 = 10_000_000;
/// Largest `--batch` of `echo`.
const MAX_BATCH: u64 = 4096;
/// Largest datagram `echo --batch` builds (the kernel refuses datagrams
/// above the socket's send buffer anyway).
const MAX_BATCH_BYTES: usize = 16 << 20;

const AFTER_HELP: &str = "\
Options go after the command (`rustnl echo --unit 30 hi`); `--unit`, `--timeout`, `--genl` and `--json` are also accepted before it, for the commands that take them.

Generic netlink face: echo, broadcast, listen and info take --genl to talk to the module's generic netlink family `rustnl` (looked up by name through the kernel's controller; no --unit; payloads of at most 65531 bytes, one attribute) instead of its classic netlink unit (`rustnl --genl echo hi`, `rustnl info --genl`). `rustnl genl list` lists the kernel's generic netlink families, like `genl ctrl list`.

JSON: with --json every command prints JSON Lines: one JSON object per line, whose first field, `type`, names the record (echo, echo_summary, broadcast, event, info, genl_info, fork, exec, comm, exit, link, addr, route, family, genl_family). Watchers print one line per event as it arrives.

Exit status: 0 success (also when listen/watch end at --count or --timeout), 1 failure (one line on stderr), 2 usage error.";

/// Talk to the rustnl kernel module over its netlink protocol, and watch the
/// kernel's standard netlink families.
#[derive(Parser, Debug)]
#[command(name = "rustnl", version, after_help = AFTER_HELP)]
struct Cli {
    /// Before the command: same as the command's --unit.
    #[arg(long, hide = true, value_parser = unit_parser())]
    unit: Option<u32>,
    /// Before the command: same as the command's --timeout.
    #[arg(long, hide = true, value_parser = parse_timeout)]
    timeout: Option<Wait>,
    /// Before the command: same as the command's --json.
    #[arg(long, hide = true)]
    json: bool,
    /// Before the command: same as the command's --genl.
    #[arg(long, hide = true)]
    genl: bool,

    #[command(subcommand)]
    command: Command,
}

/// How long to wait: a duration, or forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    For(Duration),
    Forever,
}

impl Wait {
    fn duration(self) -> Option<Duration> {
        match self {
            Wait::For(d) => Some(d),
            Wait::Forever => None,
        }
    }
}

fn unit_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(0..i64::from(MAX_LINKS))
}

fn group_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_GROUPS))
}

/// `--timeout`: a humantime duration (`500ms`, `2s`, `1m 30s`, `1h`), or
/// `0` / `none` / `forever` for no limit.
fn parse_timeout(s: &str) -> Result<Wait, String> {
    match s.trim() {
        "0" | "none" | "forever" | "never" | "infinite" => return Ok(Wait::Forever),
        _ => {}
    }
    let d = humantime::parse_duration(s).map_err(|e| {
        format!("`{s}` is not a duration ({e}); e.g. 500ms, 2s, 1m 30s, or none for no limit")
    })?;
    Ok(if d.is_zero() {
        Wait::Forever
    } else {
        Wait::For(d)
    })
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send TEXT (or --size bytes) to the module and print the echo and the
    /// round-trip time (min/median/p99 over --count).
    Echo {
        /// The text to send (default: --size bytes of a pattern).
        text: Option<String>,
        /// How many round trips (1..=10000000).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_ECHO_COUNT))]
        count: u64,
        /// Payload size in bytes when no TEXT is given (0..=1048576, the
        /// protocol's limit; the module refuses sizes above its max_payload;
        /// with --genl at most 65531).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=MAX_PAYLOAD_LIMIT as u64))]
        size: u64,
        /// Requests per datagram, 1..=4096 (replies drained as a batch; the
        /// RTT is the batch's).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH))]
        batch: u64,
        #[command(flatten)]
        module: ModuleOpts,
        /// Print JSON Lines: one object per line, `type` first.
        #[arg(long, help_heading = "Output")]
        json: bool,
    },
    /// Ask the module to multicast TEXT to a group (needs CAP_NET_ADMIN
    /// unless the module has open_broadcast=1).
    Broadcast {
        /// Multicast group, 1..=1024 (the module accepts 1..=its groups).
        #[arg(long, short, value_parser = group_parser())]
        group: u32,
        /// The text to multicast.
        text: String,
        #[command(flatten)]
        module: ModuleOpts,
        /// Print JSON Lines: one object per line, `type` first.
        #[arg(long, help_heading = "Output")]
        json: bool,
    },
    /// Print events sent to the groups (broadcasts, heartbeats, goodbye)
    /// until Ctrl-C, --count or --timeout.
    Listen {
        /// Groups to join, 1..=1024 (repeat or comma-separate).
        #[arg(long, short, required = true, value_delimiter = ',', value_parser = group_parser())]
        group: Vec<u32>,
        /// Exit after this many events.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Netlink protocol unit of the module (its `unit=` parameter).
        #[arg(long, value_parser = unit_parser(), help_heading = "Module")]
        unit: Option<u32>,
        /// Listen on the module's generic netlink family `rustnl` instead of
        /// its unit: its multicast group `events` (and `heartbeat` for group
        /// 1, where the heartbeats and the goodbye go).
        #[arg(long, conflicts_with = "unit", help_heading = "Module")]
        genl: bool,
        /// Stop listening after this long (default: never); 0 or none: never.
        #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
        timeout: Option<Wait>,
        /// Print JSON Lines: one object per line, `type` first.
        #[arg(long, help_heading = "Output")]
        json: bool,
    },
    /// Print the module's configuration and this namespace's counters.
    Info {
        #[command(flatten)]
        module: ModuleOpts,
        /// Print JSON Lines: one object per line, `type` first.
        #[arg(long, help_heading = "Output")]
        json: bool,
    },
    /// Watch the kernel's standard families (works without rustnl).
    Watch {
        #[command(subcommand)]
        what: Watch,
    },
    /// List the netlink protocol units in use and who uses them.
    Families {
        /// Print JSON Lines: one object per line, `type` first.
        #[arg(long, help_heading = "Output")]
        json: bool,
    },
    /// Generic netlink: the families registered in this network namespace,
    /// like `genl ctrl list` (works without rustnl).
    Genl {
        #[command(subcommand)]
        what: GenlCommand,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `rustnl man | man -l -`.
    Man,
}

/// Options of the commands that talk to the module.
#[derive(clap::Args, Debug, Clone, Copy)]
#[command(next_help_heading = "Module")]
struct ModuleOpts {
    /// Netlink protocol unit of the module (its `unit=` parameter) [default: 31].
    #[arg(long, value_parser = unit_parser())]
    unit: Option<u32>,
    /// How long to wait for the module's answer: 500ms, 2s, 1m 30s, ...; 0 or
    /// none: forever [default: 2s].
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
    timeout: Option<Wait>,
    /// Talk to the module's generic netlink family `rustnl` (looked up by
    /// name) instead of its netlink unit; payloads of at most 65531 bytes.
    #[arg(long, conflicts_with = "unit")]
    genl: bool,
}

/// Options of the watchers.
#[derive(clap::Args, Debug, Clone, Copy)]
struct WatchOpts {
    /// Exit after this many events.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop watching after this long (default: never); 0 or none: never.
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
    timeout: Option<Wait>,
    /// Prefix each event with the time it was received (UTC, RFC 3339).
    #[arg(long, short = 't', help_heading = "Output")]
    timestamp: bool,
    /// Print JSON Lines: one object per line, `type` first.
    #[arg(long, help_heading = "Output")]
    json: bool,
}

#[derive(Subcommand, Debug, Clone)]
enum GenlCommand {
    /// Every family: id, version, header size, highest attribute, its
    /// operations with their capabilities, its multicast groups with their
    /// ids.
    List {
        /// Print JSON Lines: one object per family, `type` first.
        #[arg(long, help_heading = "Output")]
        json: bool,
    },
    /// One family, looked up by name (exit 1 if it is not registered).
    Show {
        /// The family's name (e.g. nlctrl, ethtool, devlink, rustnl).
        name: String,
        /// Print JSON Lines: one object, `type` first.
        #[arg(long, help_heading = "Output")]
        json: bool,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum Watch {
    /// Process events from the proc connector: fork, exec (with the command
    /// name), comm, exit (exit code or signal). The kernel accepts the
    /// subscription from the initial user and PID namespaces only.
    Exec {
        #[command(flatten)]
        opts: WatchOpts,
    },
    /// Link, IPv4/IPv6 address and route changes (rtnetlink), like `ip
    /// monitor`. Without --links/--addresses/--routes: all three.
    Route {
        #[command(flatten)]
        opts: WatchOpts,
        /// Link changes.
        #[arg(long)]
        links: bool,
        /// Address changes.
        #[arg(long)]
        addresses: bool,
        /// Route changes.
        #[arg(long)]
        routes: bool,
    },
}

/// What to run, after validation.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Echo {
        payload: Vec<u8>,
        count: u64,
        batch: u64,
        target: Target,
    },
    Broadcast {
        group: u32,
        text: String,
        target: Target,
    },
    Listen {
        groups: Vec<u32>,
        count: Option<u64>,
        unit: u32,
        stop_after: Wait,
        json: bool,
        genl: bool,
    },
    Info {
        target: Target,
    },
    WatchExec(Watching),
    WatchRoute {
        watching: Watching,
        groups: u32,
    },
    Families {
        json: bool,
    },
    Genl {
        /// One family, or all.
        name: Option<String>,
        json: bool,
    },
    Completions(clap_complete::Shell),
    Man,
}

/// Where a request goes and how its answer is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    /// The classic unit (unused with `genl`).
    unit: u32,
    timeout: Wait,
    json: bool,
    /// The generic netlink family instead of the unit.
    genl: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watching {
    count: Option<u64>,
    stop_after: Wait,
    timestamp: bool,
    json: bool,
}

/// Parses `args` (the program name first) and checks what clap cannot:
/// the global-position options against the command, and the size of an
/// echo batch. Never panics.
fn plan_from<I, T>(args: I) -> Result<Plan, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    plan(cli)
}

/// A usage error as one line: clap's message without its "error: " prefix
/// and the lines of advice that follow it.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first} (see `rustnl --help`)")
}

fn usage_error(msg: impl std::fmt::Display) -> clap::Error {
    Cli::command().error(ErrorKind::ArgumentConflict, msg)
}

/// The face a module command uses: the classic `unit` (given or the
/// default), or the generic netlink family, which has no unit.
fn face(unit: Option<u32>, genl: bool) -> Result<(u32, bool), clap::Error> {
    match (unit, genl) {
        (Some(_), true) => Err(usage_error(
            "--unit and --genl exclude each other (the generic netlink family is found by name, it has no unit)",
        )),
        (unit, genl) => Ok((unit.unwrap_or(DEFAULT_UNIT), genl)),
    }
}

fn plan(cli: Cli) -> Result<Plan, clap::Error> {
    let target = |m: ModuleOpts, json: bool| -> Result<Target, clap::Error> {
        let (unit, genl) = face(m.unit.or(cli.unit), m.genl || cli.genl)?;
        Ok(Target {
            unit,
            timeout: m
                .timeout
                .or(cli.timeout)
                .unwrap_or(Wait::For(DEFAULT_TIMEOUT)),
            json: json || cli.json,
            genl,
        })
    };
    let watching = |o: WatchOpts| Watching {
        count: o.count,
        stop_after: o.timeout.or(cli.timeout).unwrap_or(Wait::Forever),
        timestamp: o.timestamp,
        json: o.json || cli.json,
    };
    let no_unit = |name: &str| {
        for (given, option) in [(cli.unit.is_some(), "--unit"), (cli.genl, "--genl")] {
            if given {
                return Err(usage_error(format_args!(
                    "{option} has no meaning for `{name}` (it does not talk to the rustnl module)"
                )));
            }
        }
        Ok(())
    };
    let nothing_global = |name: &str| {
        no_unit(name)?;
        if cli.timeout.is_some() || cli.json {
            return Err(usage_error(format_args!(
                "`{name}` takes neither --timeout nor --json"
            )));
        }
        Ok(())
    };
    Ok(match cli.command {
        Command::Echo {
            text,
            count,
            size,
            batch,
            module,
            json,
        } => {
            let payload: Vec<u8> = match text {
                Some(t) => t.into_bytes(),
                // `size` is at most MAX_PAYLOAD_LIMIT: the cast is exact.
                None => (0..size as usize).map(|i| b'a' + (i % 26) as u8).collect(),
            };
            let target = target(module, json)?;
            // The generic netlink face adds its header and the attribute's.
            let headers = if target.genl {
                NLMSG_HDRLEN + GENL_HDRLEN + NLA_HDRLEN
            } else {
                NLMSG_HDRLEN
            };
            let per_message = rustnl::proto::nlmsg_align(headers + payload.len());
            if batch > 1 && per_message.saturating_mul(batch as usize) > MAX_BATCH_BYTES {
                return Err(Cli::command().error(
                    ErrorKind::ValueValidation,
                    format_args!(
                        "--batch {batch} of {}-byte echoes needs {} bytes in one datagram; at most {MAX_BATCH_BYTES}",
                        payload.len(),
                        per_message.saturating_mul(batch as usize)
                    ),
                ));
            }
            Plan::Echo {
                payload,
                count,
                batch,
                target,
            }
        }
        Command::Broadcast {
            group,
            text,
            module,
            json,
        } => Plan::Broadcast {
            group,
            text,
            target: target(module, json)?,
        },
        Command::Listen {
            group,
            count,
            unit,
            genl,
            timeout,
            json,
        } => {
            let (unit, genl) = face(unit.or(cli.unit), genl || cli.genl)?;
            Plan::Listen {
                groups: group,
                count,
                unit,
                stop_after: timeout.or(cli.timeout).unwrap_or(Wait::Forever),
                json: json || cli.json,
                genl,
            }
        }
        Command::Info { module, json } => Plan::Info {
            target: target(module, json)?,
        },
        Command::Watch {
            what: Watch::Exec { opts },
        } => {
            no_unit("watch")?;
            Plan::WatchExec(watching(opts))
        }
        Command::Watch {
            what:
                Watch::Route {
                    opts,
                    links,
                    addresses,
                    routes,
                },
        } => {
            no_unit("watch")?;
            let mut groups = 0;
            for (on, g) in [
                (links, route::groups::LINKS),
                (addresses, route::groups::ADDRESSES),
                (routes, route::groups::ROUTES),
            ] {
                if on {
                    groups |= g;
                }
            }
            Plan::WatchRoute {
                watching: watching(opts),
                groups: if groups == 0 {
                    route::groups::ALL
                } else {
                    groups
                },
            }
        }
        Command::Families { json } => {
            no_unit("families")?;
            if cli.timeout.is_some() {
                return Err(usage_error("`families` takes no --timeout"));
            }
            Plan::Families {
                json: json || cli.json,
            }
        }
        Command::Genl { what } => {
            no_unit("genl")?;
            if cli.timeout.is_some() {
                return Err(usage_error("`genl` takes no --timeout"));
            }
            let (name, json) = match what {
                GenlCommand::List { json } => (None, json),
                GenlCommand::Show { name, json } => (Some(name), json),
            };
            Plan::Genl {
                name,
                json: json || cli.json,
            }
        }
        Command::Completions { shell } => {
            nothing_global("completions")?;
            Plan::Completions(shell)
        }
        Command::Man => {
            nothing_global("man")?;
            Plan::Man
        }
    })
}

// ---------------------------------------------------------------------------
// Output.
// ---------------------------------------------------------------------------

/// A record with its `type` first and then `value`'s fields.
#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(flatten)]
    value: &'a T,
}

/// Prints one JSON line.
fn json_line<T: Serialize>(value: &T) -> Result<(), Error> {
    let line = serde_json::to_string(value)
        .map_err(|e| Error::Unexpected(format!("cannot write JSON: {e}")))?;
    println!("{line}");
    Ok(())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// min, median, p99 of sorted, non-empty samples.
fn percentiles(sorted: &[Duration]) -> (Duration, Duration, Duration) {
    let at = |q: f64| {
        sorted
            .get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    (at(0.0), at(0.5), at(0.99))
}

#[derive(Serialize)]
struct EchoRecord<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    bytes: usize,
    text: &'a str,
    rtt_us: f64,
}

#[derive(Serialize)]
struct EchoSummary {
    #[serde(rename = "type")]
    ty: &'static str,
    count: u64,
    batch: u64,
    bytes: usize,
    min_us: f64,
    median_us: f64,
    p99_us: f64,
    messages_per_sec: f64,
}

// ---------------------------------------------------------------------------
// Errors: the library describes the condition, the CLI adds what to do.
// ---------------------------------------------------------------------------

/// What went wrong, ready to print.
#[derive(Debug)]
struct Failure(String);

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(e.to_string())
    }
}

/// How to load the module (with `unit=` unless it is the default).
fn load_how(unit: u32) -> String {
    let param = if unit == DEFAULT_UNIT {
        String::new()
    } else {
        format!(" unit={unit}")
    };
    format!(
        "build and load it with `make module && sudo insmod kmod/rustnl.ko{param}` in the rustnl source tree, or `sudo modprobe rustnl{param}` once installed"
    )
}

/// The hint for a module that is not loaded.
fn load_hint(unit: u32) -> String {
    format!(
        "{}; `rustnl families` lists the netlink units in use",
        load_how(unit)
    )
}

/// The hint for a generic netlink family `rustnl` that is not registered.
fn genl_load_hint() -> String {
    format!(
        "{}; `rustnl genl list` lists the registered generic netlink families",
        load_how(DEFAULT_UNIT)
    )
}

/// How long the "is it rustnl?" probe waits: the module answers GET_INFO at
/// once, other families may not answer at all.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// Whether the module answers GET_INFO on `unit` as rustnl.
fn answers_as_rustnl(unit: u32, timeout: Wait) -> bool {
    let probe = timeout
        .duration()
        .map_or(PROBE_TIMEOUT, |d| d.min(PROBE_TIMEOUT));
    Client::connect(unit)
        .and_then(|mut c| {
            c.set_timeout(Some(probe))?;
            c.info()
        })
        .is_ok_and(|i| i.unit == unit)
}

/// Explains a failure of a command that talks to the module on `unit` (or
/// to its generic netlink family).
fn module_failure(target: Target, e: Error) -> Failure {
    if target.genl {
        // Found by name: no unit to mistake for another family's.
        return match e {
            Error::GenlNotRegistered => Failure(format!("{e}; {}", genl_load_hint())),
            e => Failure(e.to_string()),
        };
    }
    let unit = target.unit;
    if let Error::ModuleNotLoaded { .. } = e {
        return Failure(format!("{e} ({})", load_hint(unit)));
    }
    if let Some(constant) = table::unit_constant(unit) {
        // A standard family's unit: only rustnl if the module took it
        // (possible when that family is not built in). A unit that does not
        // answer at all is not rustnl's.
        if matches!(e, Error::Timeout) || !answers_as_rustnl(unit, target.timeout) {
            let answer = match e {
                Error::Timeout => "which did not answer".to_string(),
                e => format!("which answered: {e}"),
            };
            return Failure(format!(
                "netlink unit {unit} is not rustnl: it is the kernel's {} family ({constant}), {answer} (rustnl's unit is its unit= parameter, default {DEFAULT_UNIT}; `rustnl families` lists the units in use)",
                table::unit_name(unit)
            ));
        }
        return Failure(e.to_string());
    }
    let odd = match &e {
        Error::Malformed(_)
        | Error::Unexpected(_)
        | Error::BadMessage(_)
        | Error::BadLayout { .. }
        | Error::WrongAnswer { .. }
        | Error::WrongPort { .. }
        | Error::Timeout => true,
        Error::Kernel(k) => k.message.is_none(),
        Error::Io { source, .. } => source.raw_os_error() == Some(libc::ECONNREFUSED),
        _ => false,
    };
    if odd {
        Failure(format!(
            "{e} (is netlink unit {unit} rustnl? `rustnl families` lists the units in use)"
        ))
    } else {
        Failure(e.to_string())
    }
}

fn watch_failure(what: &str, e: Error) -> Failure {
    let hint = match &e {
        Error::NoAnswer { .. } => {
            " (the kernel acts on proc connector subscriptions from the initial user and PID namespaces only)"
        }
        Error::Io { op, source }
            if op.starts_with("bind") && source.raw_os_error() == Some(libc::EPERM) =>
        {
            " (this kernel lets only CAP_NET_ADMIN join that group)"
        }
        _ => "",
    };
    Failure(format!("watch {what}: {e}{hint}"))
}

// ---------------------------------------------------------------------------
// Commands.
// ---------------------------------------------------------------------------

fn connect(t: Target) -> Result<Client, Error> {
    let client = Client::connect(t.unit)?;
    client.set_timeout(t.timeout.duration())?;
    Ok(client)
}

/// The module over either face.
enum Module {
    Classic(Client),
    Genl(GenlClient),
}

impl Module {
    fn connect(t: Target) -> Result<Module, Error> {
        if t.genl {
            let client = GenlClient::connect()?;
            client.set_timeout(t.timeout.duration())?;
            Ok(Module::Genl(client))
        } else {
            connect(t).map(Module::Classic)
        }
    }

    fn echo(&mut self, payload: &[u8]) -> Result<&[u8], Error> {
        match self {
            Module::Classic(c) => c.echo(payload),
            Module::Genl(c) => c.echo(payload),
        }
    }

    fn echo_batch(&mut self, payload: &[u8], count: usize) -> Result<(), Error> {
        match self {
            Module::Classic(c) => c.echo_batch(payload, count),
            Module::Genl(c) => c.echo_batch(payload, count),
        }
    }

    fn broadcast(&mut self, group: u32, payload: &[u8]) -> Result<BroadcastResult, Error> {
        match self {
            Module::Classic(c) => c.broadcast(group, payload),
            Module::Genl(c) => c.broadcast(group, payload),
        }
    }
}

fn echo(payload: &[u8], count: u64, batch: u64, t: Target) -> Result<(), Error> {
    let mut client = Module::connect(t)?;
    let mut rtts = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let start = Instant::now();
        if batch == 1 {
            let echoed = client.echo(payload)?;
            let rtt = start.elapsed();
            if count == 1 {
                let text = String::from_utf8_lossy(echoed);
                if t.json {
                    json_line(&EchoRecord {
                        ty: "echo",
                        bytes: echoed.len(),
                        text: &text,
                        rtt_us: us(rtt),
                    })?;
                } else {
                    println!("{text}");
                    println!("rtt: {:.1} us", us(rtt));
                }
            }
            rtts.push(rtt);
        } else {
            client.echo_batch(payload, batch as usize)?;
            rtts.push(start.elapsed());
        }
    }
    if count > 1 || batch > 1 {
        rtts.sort();
        let (min, med, p99) = percentiles(&rtts);
        let total: Duration = rtts.iter().sum();
        let rate = (count * batch) as f64 / total.as_secs_f64().max(1e-9);
        if t.json {
            json_line(&EchoSummary {
                ty: "echo_summary",
                count,
                batch,
                bytes: payload.len(),
                min_us: us(min),
                median_us: us(med),
                p99_us: us(p99),
                messages_per_sec: rate.round(),
            })?;
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

/// When a `--timeout` given as a total time runs out (`None`: never).
fn deadline(stop_after: Wait) -> Option<Instant> {
    stop_after
        .duration()
        .and_then(|d| Instant::now().checked_add(d))
}

/// The receive timeout until `deadline`; `Err(())` once it has passed.
fn left(deadline: Option<Instant>) -> Result<Option<Duration>, ()> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Err(())
            } else {
                Ok(Some(left))
            }
        }
    }
}

fn until(count: Option<u64>, seen: u64) -> bool {
    count.is_none_or(|c| seen < c)
}

/// The generic netlink family's multicast groups that carry the events of
/// numbered `groups`: `events` for all of them, `heartbeat` too for the
/// group heartbeats and the goodbye go to.
fn genl_groups(groups: &[u32]) -> Vec<McastGroup> {
    let mut out = vec![McastGroup::Events];
    if groups.contains(&KERNEL_EVENT_GROUP) {
        out.push(McastGroup::Heartbeat);
    }
    out
}

fn listen(
    unit: u32,
    genl: bool,
    groups: &[u32],
    count: Option<u64>,
    stop_after: Wait,
    json: bool,
) -> Result<(), Error> {
    if genl {
        let sub = Subscription::genl(&genl_groups(groups))?;
        listen_on(sub, groups, count, stop_after, json)
    } else {
        let sub = Subscription::new(unit, groups)?;
        listen_on(sub, groups, count, stop_after, json)
    }
}

/// Prints the events of `groups` from `sub` (the generic netlink family's
/// `events` group carries every numbered group's).
fn listen_on<D>(
    mut sub: Subscription<D>,
    groups: &[u32],
    count: Option<u64>,
    stop_after: Wait,
    json: bool,
) -> Result<(), Error>
where
    D: for<'a> Decode<Item<'a> = Event<'a>>,
{
    let end = deadline(stop_after);
    let mut seen = 0u64;
    while until(count, seen) {
        let Ok(wait) = left(end) else { break };
        sub.set_timeout(wait)?;
        match sub.next_event() {
            Ok(e) if !groups.contains(&e.header.group) => {}
            Ok(e) => {
                if json {
                    json_line(&Tagged {
                        ty: "event",
                        value: &e,
                    })?;
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
            Err(Error::Timeout) if end.is_some() => break,
            Err(Error::Overrun) => {
                eprintln!("rustnl: events lost: receive queue overrun (ENOBUFS)")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Prints events from `next` (given the receive timeout) with `print` until
/// `count` were printed (`print` returns false for events it skips) or the
/// time is up. An overrun is reported on stderr and the watch goes on.
fn each_event<E>(
    w: Watching,
    mut next: impl FnMut(Option<Duration>) -> Result<E, Error>,
    mut print: impl FnMut(E, Option<String>) -> Result<bool, Error>,
) -> Result<(), Error> {
    let end = deadline(w.stop_after);
    let mut seen = 0u64;
    while until(w.count, seen) {
        let Ok(wait) = left(end) else { break };
        match next(wait) {
            Ok(e) => {
                let stamp = w.timestamp.then(now_rfc3339);
                if print(e, stamp)? {
                    seen += 1;
                }
            }
            Err(Error::Timeout) if end.is_some() => break,
            Err(Error::Overrun) => {
                eprintln!("rustnl: events lost: receive queue overrun (ENOBUFS)")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A watcher's event with what the CLI adds to it.
#[derive(Serialize)]
struct Watched<'a, E: Serialize> {
    #[serde(flatten)]
    event: &'a E,
    /// Command name of an exec (`null` if the process was gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    comm: Option<Option<String>>,
    /// Interface name of an address or route.
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "",
    }
}

/// The text line of a process event (`None`: not shown).
fn proc_text(e: &ProcEvent, comm: Option<&Option<String>>) -> Option<String> {
    Some(match e {
        ProcEvent::Fork {
            parent_pid,
            child_pid,
            child_tgid,
            ..
        } => format!("fork parent={parent_pid} pid={child_pid} tgid={child_tgid}"),
        ProcEvent::Exec { pid, tgid } => format!(
            "exec pid={pid} tgid={tgid} comm={}",
            comm.and_then(|c| c.as_deref()).unwrap_or("?")
        ),
        ProcEvent::Comm { pid, tgid, comm } => format!("comm pid={pid} tgid={tgid} comm={comm}"),
        ProcEvent::Exit {
            pid,
            tgid,
            status,
            parent_pid,
            ..
        } => {
            let how = match (status.exit_code, status.signal) {
                (Some(code), _) => format!("code={code}"),
                (None, Some(sig)) => format!(
                    "signal={sig}{}{}",
                    match signal_name(sig) {
                        "" => String::new(),
                        n => format!(" ({n})"),
                    },
                    if status.core_dumped {
                        " core-dumped"
                    } else {
                        ""
                    }
                ),
                (None, None) => format!("status={}", status.wait_status),
            };
            format!("exit pid={pid} tgid={tgid} {how} parent={parent_pid}")
        }
        _ => return None,
    })
}

fn watch_exec(w: Watching) -> Result<(), Error> {
    let mut events = Subscription::proc_events()?;
    each_event(
        w,
        |wait| {
            events.set_timeout(wait)?;
            events.next_event()
        },
        |e, timestamp| {
            let comm = match &e {
                ProcEvent::Exec { pid, .. } => Some(proc_events::comm(*pid)),
                _ => None,
            };
            let Some(text) = proc_text(&e, comm.as_ref()) else {
                return Ok(false); // acks of other listeners, uid/gid/sid/...
            };
            if w.json {
                json_line(&Watched {
                    event: &e,
                    comm,
                    dev: None,
                    timestamp,
                })?;
            } else {
                match timestamp {
                    Some(t) => println!("[{t}] {text}"),
                    None => println!("{text}"),
                }
            }
            Ok(true)
        },
    )
}

fn watch_route(w: Watching, groups: u32) -> Result<(), Error> {
    let mut events = Subscription::route(groups)?;
    each_event(
        w,
        |wait| {
            events.set_timeout(wait)?;
            events.next_event()
        },
        |e, timestamp| {
            if w.json {
                let index = match &e {
                    RouteEvent::Addr { index, .. } => Some(*index),
                    RouteEvent::Route { oif, .. } => *oif,
                    _ => None,
                };
                json_line(&Watched {
                    event: &e,
                    comm: None,
                    dev: index.map(|i| route::link_name(i).unwrap_or_else(|| format!("if{i}"))),
                    timestamp,
                })?;
            } else {
                let mut text = String::new();
                if let Some(t) = timestamp {
                    text = format!("[{t}] ");
                }
                // Writing to a String cannot fail.
                let _ = route::format_with(&e, &mut text, route::link_name);
                println!("{text}");
            }
            Ok(true)
        },
    )
}

fn families(json: bool) -> Result<(), Error> {
    for f in table::units()? {
        if json {
            json_line(&Tagged {
                ty: "family",
                value: &f,
            })?;
        } else {
            let users: Vec<String> = f
                .users
                .iter()
                .map(|u| {
                    format!(
                        "{}{}",
                        u.port_id,
                        u.process
                            .as_ref()
                            .map(|w| format!("({w})"))
                            .unwrap_or_default()
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

/// One family as `genl ctrl list` prints it.
fn print_family(f: &Family) {
    println!("Name: {}", f.name);
    println!(
        "\tID: {:#x}  Version: {:#x}  header size: {}  max attribs: {}",
        f.id, f.version, f.hdr_size, f.max_attr
    );
    if !f.ops.is_empty() {
        println!("\tcommands supported:");
        for (i, op) in f.ops.iter().enumerate() {
            let caps = op.capabilities();
            if caps.is_empty() {
                println!("\t\t#{}:  ID-{:#x}", i + 1, op.id);
            } else {
                println!(
                    "\t\t#{}:  ID-{:#x}  Capabilities ({:#x}): {}",
                    i + 1,
                    op.id,
                    op.flags,
                    caps.join("; ")
                );
            }
        }
    }
    if !f.mcast_groups.is_empty() {
        println!("\tmulticast groups:");
        for (i, g) in f.mcast_groups.iter().enumerate() {
            println!("\t\t#{}:  ID-{:#x}  name: {}", i + 1, g.id, g.name);
        }
    }
}

fn genl(name: Option<&str>, json: bool) -> Result<(), Error> {
    let mut sock = GenlSocket::open()?;
    let families = match name {
        Some(n) => vec![sock.family(n)?],
        None => sock.families()?,
    };
    for (i, f) in families.iter().enumerate() {
        if json {
            json_line(&Tagged {
                ty: "genl_family",
                value: f,
            })?;
        } else {
            if i > 0 {
                println!();
            }
            print_family(f);
        }
    }
    Ok(())
}

/// A generic netlink failure, with what to do for a family that is not
/// registered.
fn genl_failure(e: Error) -> Failure {
    match &e {
        Error::FamilyNotFound { name } if name == "rustnl" => Failure(format!(
            "{e} (the rustnl module registers it when loaded: {})",
            genl_load_hint()
        )),
        Error::FamilyNotFound { .. } => Failure(format!(
            "{e} in this network namespace (its module may not be loaded; `rustnl genl list` lists the registered families)"
        )),
        _ => Failure(format!("generic netlink: {e}")),
    }
}

fn broadcast(group: u32, text: &str, t: Target) -> Result<(), Error> {
    let r = Module::connect(t)?.broadcast(group, text.as_bytes())?;
    if t.json {
        json_line(&Tagged {
            ty: "broadcast",
            value: &r,
        })?;
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
    Ok(())
}

/// The counters in the order `info` prints them, with their names.
fn counter_rows(c: &rustnl::proto::Counters) -> [(&'static str, u64); 10] {
    [
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
    ]
}

/// `info --genl`: the configuration, then the counters of both faces side
/// by side.
fn genl_info_text(i: &GenlInfo) -> String {
    let mut out = format!(
        "protocol_version: {}\nunit: {}\ngroups: {}\nmax_payload: {} (generic netlink: at most {MAX_ATTR_PAYLOAD} per request)\nheartbeat_ms: {}\nopen_broadcast: {}\n",
        i.version, i.unit, i.groups, i.max_payload, i.heartbeat_ms, i.open_broadcast
    );
    out.push_str(&format!(
        "{:<22}{:>12}{:>12}\n",
        "counter", "classic", "genl"
    ));
    for ((name, classic), (_, genl)) in counter_rows(&i.classic_counters)
        .into_iter()
        .zip(counter_rows(&i.genl_counters))
    {
        out.push_str(&format!("{name:<22}{classic:>12}{genl:>12}\n"));
    }
    out
}

fn info(t: Target) -> Result<(), Error> {
    if t.genl {
        let mut client = GenlClient::connect()?;
        client.set_timeout(t.timeout.duration())?;
        let i = client.info()?;
        if t.json {
            return json_line(&Tagged {
                ty: "genl_info",
                value: &i,
            });
        }
        print!("{}", genl_info_text(&i));
        return Ok(());
    }
    let i = connect(t)?.info()?;
    if t.json {
        return json_line(&Tagged {
            ty: "info",
            value: &i,
        });
    }
    let c = i.counters;
    println!("protocol_version: {}", i.version);
    println!("unit: {}", i.unit);
    println!("groups: {}", i.groups);
    println!("max_payload: {}", i.max_payload);
    println!("heartbeat_ms: {}", i.heartbeat_ms);
    println!("open_broadcast: {}", i.open_broadcast);
    for (name, v) in counter_rows(&c) {
        println!("{name}: {v}");
    }
    Ok(())
}

fn run(plan: Plan) -> Result<(), Failure> {
    match plan {
        Plan::Echo {
            payload,
            count,
            batch,
            target,
        } => echo(&payload, count, batch, target).map_err(|e| module_failure(target, e)),
        Plan::Broadcast {
            group,
            text,
            target,
        } => broadcast(group, &text, target).map_err(|e| module_failure(target, e)),
        Plan::Info { target } => info(target).map_err(|e| module_failure(target, e)),
        Plan::Listen {
            groups,
            count,
            unit,
            stop_after,
            json,
            genl,
        } => {
            let target = Target {
                unit,
                timeout: Wait::For(DEFAULT_TIMEOUT),
                json,
                genl,
            };
            // Not rustnl on that unit: say so now rather than decode foreign
            // multicasts (one GET_INFO; listening needs no privilege, the
            // request none either). Its answer also bounds the groups.
            let module_groups = if genl {
                GenlClient::connect()
                    .and_then(|mut c| c.info())
                    .map(|i| i.groups)
            } else {
                connect(target).and_then(|mut c| c.info()).map(|i| i.groups)
            }
            .map_err(|e| module_failure(target, e))?;
            if let Some(g) = groups.iter().find(|&&g| g > module_groups) {
                let face = if genl {
                    "of the generic netlink family".to_string()
                } else {
                    format!("on unit {unit}")
                };
                return Err(Failure(format!(
                    "group {g} is not in 1..={module_groups} (the module's groups parameter {face})"
                )));
            }
            listen(unit, genl, &groups, count, stop_after, json)
                .map_err(|e| module_failure(target, e))
        }
        Plan::WatchExec(w) => watch_exec(w).map_err(|e| watch_failure("exec", e)),
        Plan::WatchRoute { watching, groups } => {
            watch_route(watching, groups).map_err(|e| watch_failure("route", e))
        }
        Plan::Families { json } => families(json).map_err(Failure::from),
        Plan::Genl { name, json } => genl(name.as_deref(), json).map_err(genl_failure),
        Plan::Completions(shell) => {
            clap_complete::generate(shell, &mut Cli::command(), "rustnl", &mut std::io::stdout());
            Ok(())
        }
        Plan::Man => {
            let mut out = std::io::stdout().lock();
            man::render(&Cli::command(), &mut out)
                .and_then(|()| out.flush())
                .map_err(|e| Failure(format!("writing the man page: {e}")))
        }
    }
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`rustnl listen | head`), like other
    // Unix tools, instead of panicking in println!.
    // SAFETY: setting a signal disposition to the default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let plan = match plan_from(std::env::args_os()) {
        Ok(p) => p,
        Err(e) if e.exit_code() == 0 => e.exit(), // help, version
        Err(e) => {
            eprintln!("rustnl: {}", one_line(&e));
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
