//! The command line's grammar: clap's definition and its value parsers.

use clap::{Parser, Subcommand};
use rustnl::proto::{MAX_GROUPS, MAX_LINKS, MAX_PAYLOAD_LIMIT};
use std::time::Duration;

/// Largest `--count` of `echo` (every round trip time is kept).
pub(crate) const MAX_ECHO_COUNT: u64 = 10_000_000;
/// Largest `--batch` of `echo`.
pub(crate) const MAX_BATCH: u64 = 4096;
/// Largest datagram `echo --batch` builds (the kernel refuses datagrams
/// above the socket's send buffer anyway).
pub(crate) const MAX_BATCH_BYTES: usize = 16 << 20;

pub(crate) const AFTER_HELP: &str = "\
Options go after the command (`rustnl echo --unit 30 hi`); `--unit`, `--timeout`, `--genl` and `--json` are also accepted before it, for the commands that take them.

Generic netlink face: echo, broadcast, listen and info take --genl to talk to the module's generic netlink family `rustnl` (looked up by name through the kernel's controller; no --unit; payloads of at most 65531 bytes, one attribute) instead of its classic netlink unit (`rustnl --genl echo hi`, `rustnl info --genl`). `listen --genl -g N` tells the module which groups it listens to, so `broadcast --genl -g M` says delivered only when a listener of group M got the event, as on the unit. `rustnl genl list` lists the kernel's generic netlink families, like `genl ctrl list`.

JSON: with --json every command prints JSON Lines: one JSON object per line, whose first field, `type`, names the record (echo, echo_summary, broadcast, event, info, genl_info, fork, exec, comm, exit, link, addr, route, family, genl_family). Watchers print one line per event as it arrives.

Exit status: 0 success (also when listen/watch end at --count or --timeout), 1 failure (one line on stderr), 2 usage error.";

/// Talk to the rustnl kernel module over its netlink protocol, and watch the
/// kernel's standard netlink families.
#[derive(Parser, Debug)]
#[command(name = "rustnl", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Before the command: same as the command's --unit.
    #[arg(long, hide = true, value_parser = unit_parser())]
    pub(crate) unit: Option<u32>,
    /// Before the command: same as the command's --timeout.
    #[arg(long, hide = true, value_parser = parse_timeout)]
    pub(crate) timeout: Option<Wait>,
    /// Before the command: same as the command's --json.
    #[arg(long, hide = true)]
    pub(crate) json: bool,
    /// Before the command: same as the command's --genl.
    #[arg(long, hide = true)]
    pub(crate) genl: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How long to wait: a duration, or forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    For(Duration),
    Forever,
}

impl Wait {
    pub(crate) fn duration(self) -> Option<Duration> {
        match self {
            Wait::For(d) => Some(d),
            Wait::Forever => None,
        }
    }
}

pub(crate) fn unit_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(0..i64::from(MAX_LINKS))
}

pub(crate) fn group_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_GROUPS))
}

/// `--count` of the commands without an upper bound: 1 or more (clap's
/// `range(1..)` would say "not in 1..18446744073709551615").
pub(crate) fn at_least_one(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("the count is at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!(
            "`{s}` is not a count ({e}); a whole number, at least 1"
        )),
    }
}

/// `echo --size`: 0..=1048576 bytes. A refusal says what that limit is
/// (clap's range would say only "not in 0..=1048576").
pub(crate) fn payload_size(s: &str) -> Result<u64, String> {
    let n = s
        .trim()
        .parse::<u64>()
        .map_err(|e| format!("`{s}` is not a size in bytes ({e})"))?;
    if n > MAX_PAYLOAD_LIMIT as u64 {
        return Err(format!(
            "{n} bytes is more than {MAX_PAYLOAD_LIMIT}, the protocol's limit: the largest max_payload the module can be loaded with (`rustnl info` shows the loaded module's max_payload)"
        ));
    }
    Ok(n)
}

/// `--timeout`: a humantime duration (`500ms`, `2s`, `1m 30s`, `1h`), or
/// `0` / `none` / `forever` for no limit.
pub(crate) fn parse_timeout(s: &str) -> Result<Wait, String> {
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
pub(crate) enum Command {
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
        #[arg(long, default_value_t = 64, value_parser = payload_size)]
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
        #[arg(long, value_parser = at_least_one)]
        count: Option<u64>,
        /// Netlink protocol unit of the module (its `unit=` parameter).
        #[arg(long, value_parser = unit_parser(), help_heading = "Module")]
        unit: Option<u32>,
        /// Listen on the module's generic netlink family `rustnl` instead of
        /// its unit: the socket tells the module its groups (set-groups), so
        /// it receives those only and counts as their listener, as on the
        /// unit; it joins the multicast group `events` (and `heartbeat` for
        /// group 1, where the heartbeats and the goodbye go).
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
pub(crate) struct ModuleOpts {
    /// Netlink protocol unit of the module (its `unit=` parameter) [default: 31].
    #[arg(long, value_parser = unit_parser())]
    pub(crate) unit: Option<u32>,
    /// How long to wait for the module's answer: 500ms, 2s, 1m 30s, ...; 0 or
    /// none: forever [default: 2s].
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
    pub(crate) timeout: Option<Wait>,
    /// Talk to the module's generic netlink family `rustnl` (looked up by
    /// name) instead of its netlink unit; payloads of at most 65531 bytes.
    #[arg(long, conflicts_with = "unit")]
    pub(crate) genl: bool,
}

/// Options of the watchers.
#[derive(clap::Args, Debug, Clone, Copy)]
pub(crate) struct WatchOpts {
    /// Exit after this many events.
    #[arg(long, value_parser = at_least_one)]
    pub(crate) count: Option<u64>,
    /// Stop watching after this long (default: never); 0 or none: never.
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
    pub(crate) timeout: Option<Wait>,
    /// Prefix each event with the time it was received (UTC, RFC 3339).
    #[arg(long, short = 't', help_heading = "Output")]
    pub(crate) timestamp: bool,
    /// Print JSON Lines: one object per line, `type` first.
    #[arg(long, help_heading = "Output")]
    pub(crate) json: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum GenlCommand {
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
pub(crate) enum Watch {
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
