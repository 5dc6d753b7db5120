//! The commands: each calls the library and prints.

use crate::args::{Cli, Wait};
use crate::hints::*;
use crate::output::*;
use crate::plan::{Plan, Target, Watching};
use clap::CommandFactory;
use rustnl::families::proc_events::{self, ProcEvent};
use rustnl::families::route::{self, RouteEvent};
use rustnl::families::table;
use rustnl::genl::{Family, GenlSocket};
use rustnl::{
    Client, Decode, Error, Event, GenlClient, ModuleClient, Subscription, DEFAULT_TIMEOUT,
};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

pub(crate) fn connect(t: Target) -> Result<Client, Error> {
    let client = Client::connect(t.unit)?;
    client.set_timeout(t.timeout.duration())?;
    Ok(client)
}

/// The module over the face `t` names, with `t`'s timeout.
fn module(t: Target) -> Result<Box<dyn ModuleClient>, Error> {
    let client = t.face().connect()?;
    client.set_timeout(t.timeout.duration())?;
    Ok(client)
}

pub(crate) fn echo(payload: &[u8], count: u64, batch: u64, t: Target) -> Result<(), Error> {
    let mut client = module(t)?;
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
pub(crate) fn deadline(stop_after: Wait) -> Option<Instant> {
    stop_after
        .duration()
        .and_then(|d| Instant::now().checked_add(d))
}

/// The receive timeout until `deadline`; `Err(())` once it has passed.
pub(crate) fn left(deadline: Option<Instant>) -> Result<Option<Duration>, ()> {
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

pub(crate) fn until(count: Option<u64>, seen: u64) -> bool {
    count.is_none_or(|c| seen < c)
}

pub(crate) fn listen(
    unit: u32,
    genl: bool,
    groups: &[u32],
    count: Option<u64>,
    stop_after: Wait,
    json: bool,
) -> Result<(), Error> {
    if genl {
        // The module sends this socket the events of `groups` only, and
        // counts it as a listener of those only (set-groups).
        let sub = Subscription::genl_numbered(groups)?;
        listen_on(sub, groups, count, stop_after, json)
    } else {
        let sub = Subscription::new(unit, groups)?;
        listen_on(sub, groups, count, stop_after, json)
    }
}

/// Prints the events of `groups` from `sub` (which joined those only: a
/// classic socket their groups, a generic netlink one chose them).
pub(crate) fn listen_on<D>(
    mut sub: Subscription<D>,
    groups: &[u32],
    count: Option<u64>,
    stop_after: Wait,
    json: bool,
) -> Result<(), Error>
where
    D: for<'a> Decode<Item<'a> = Event<'a>>,
{
    let w = Watching {
        count,
        stop_after,
        timestamp: false,
        json,
    };
    each_event(w, &mut sub, |e, _| {
        if !groups.contains(&e.header.group) {
            return Ok(false);
        }
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
        Ok(true)
    })
}

/// Prints the events of `sub` with `print` until `count` were printed
/// (`print` returns false for events it skips) or the time is up (every
/// subscription has the same receive timeout). An overrun is reported on
/// stderr and the watch goes on.
pub(crate) fn each_event<D: Decode>(
    w: Watching,
    sub: &mut Subscription<D>,
    mut print: impl FnMut(D::Item<'_>, Option<String>) -> Result<bool, Error>,
) -> Result<(), Error> {
    let end = deadline(w.stop_after);
    let mut seen = 0u64;
    while until(w.count, seen) {
        let Ok(wait) = left(end) else { break };
        sub.set_timeout(wait)?;
        match sub.next_event() {
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
pub(crate) struct Watched<'a, E: Serialize> {
    #[serde(flatten)]
    pub(crate) event: &'a E,
    /// Command name of an exec (`null` if the process was gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) comm: Option<Option<String>>,
    /// Interface name of an address or route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp: Option<String>,
}

pub(crate) fn signal_name(sig: i32) -> &'static str {
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
pub(crate) fn proc_text(e: &ProcEvent, comm: Option<&Option<String>>) -> Option<String> {
    Some(match e {
        ProcEvent::Fork {
            parent_pid,
            child_pid,
            child_tgid,
            ..
        } => format!("fork parent={parent_pid} pid={child_pid} tgid={child_tgid}"),
        // The proc connector's exec event carries no name: it is read from
        // /proc/PID/comm when the event arrives, and a short-lived process
        // has exited (and been reaped) by then.
        ProcEvent::Exec { pid, tgid } => match comm.and_then(|c| c.as_deref()) {
            Some(name) => format!("exec pid={pid} tgid={tgid} comm={name}"),
            None => {
                format!("exec pid={pid} tgid={tgid} comm=? (exited before its name could be read)")
            }
        },
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

pub(crate) fn watch_exec(w: Watching) -> Result<(), Error> {
    let mut events = Subscription::proc_events()?;
    each_event(w, &mut events, |e, timestamp| {
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
    })
}

pub(crate) fn watch_route(w: Watching, groups: u32) -> Result<(), Error> {
    let mut events = Subscription::route(groups)?;
    each_event(w, &mut events, |e, timestamp| {
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
    })
}

pub(crate) fn families(json: bool) -> Result<(), Error> {
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
pub(crate) fn print_family(f: &Family) {
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

pub(crate) fn genl(name: Option<&str>, json: bool) -> Result<(), Error> {
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

pub(crate) fn broadcast(group: u32, text: &str, t: Target) -> Result<(), Error> {
    let r = module(t)?.broadcast(group, text.as_bytes())?;
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

pub(crate) fn info(t: Target) -> Result<(), Error> {
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

pub(crate) fn run(plan: Plan) -> Result<(), Failure> {
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
            let module_groups = target
                .face()
                .connect()
                .and_then(|mut c| c.groups())
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
            crate::man::render(&Cli::command(), &mut out)
                .and_then(|()| out.flush())
                .map_err(|e| Failure(format!("writing the man page: {e}")))
        }
    }
}
