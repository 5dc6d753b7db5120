//! From parsed arguments to a validated [`Plan`]: what clap cannot check
//! (the options given before the command against the command, an echo
//! batch's size).

use crate::args::*;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use rustnl::families::route;
use rustnl::proto::genl::GENL_HDRLEN;
use rustnl::proto::{DEFAULT_UNIT, NLA_HDRLEN, NLMSG_HDRLEN};
use rustnl::DEFAULT_TIMEOUT;

/// What to run, after validation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
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
pub(crate) struct Target {
    /// The classic unit (unused with `genl`).
    pub(crate) unit: u32,
    pub(crate) timeout: Wait,
    pub(crate) json: bool,
    /// The generic netlink family instead of the unit.
    pub(crate) genl: bool,
}

impl Target {
    /// The library's name for the face this target talks to.
    pub(crate) fn face(&self) -> rustnl::Face {
        if self.genl {
            rustnl::Face::Genl
        } else {
            rustnl::Face::Classic { unit: self.unit }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watching {
    pub(crate) count: Option<u64>,
    pub(crate) stop_after: Wait,
    pub(crate) timestamp: bool,
    pub(crate) json: bool,
}

/// Parses `args` (the program name first) and checks what clap cannot:
/// the global-position options against the command, and the size of an
/// echo batch. Never panics.
pub(crate) fn plan_from<I, T>(args: I) -> Result<Plan, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    plan(cli)
}

/// A usage error as one line: clap's message without its "error: " prefix,
/// with the detail clap puts on the lines after it (the missing arguments,
/// the possible values, a suggestion) and without its usage and advice
/// lines.
pub(crate) fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    for more in lines {
        let more = more.trim();
        if more.is_empty() {
            continue;
        }
        if more.starts_with("Usage:") || more.starts_with("For more information") {
            break;
        }
        if !line.ends_with(':') {
            line.push(';');
        }
        line.push(' ');
        line.push_str(more);
    }
    format!("{line} (see `rustnl --help`)")
}

/// What to print for a usage error: the help of the (sub)command when no
/// subcommand was given (`rustnl`, `rustnl watch`, `rustnl genl`), else
/// [`one_line`].
pub(crate) fn usage_text(e: &clap::Error) -> String {
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        e.render().to_string().trim_end().to_string()
    } else {
        format!("rustnl: {}", one_line(e))
    }
}

pub(crate) fn usage_error(msg: impl std::fmt::Display) -> clap::Error {
    Cli::command().error(ErrorKind::ArgumentConflict, msg)
}

/// The face a module command uses: the classic `unit` (given or the
/// default), or the generic netlink family, which has no unit.
pub(crate) fn face(unit: Option<u32>, genl: bool) -> Result<(u32, bool), clap::Error> {
    match (unit, genl) {
        (Some(_), true) => Err(usage_error(
            "--unit and --genl exclude each other (the generic netlink family is found by name, it has no unit)",
        )),
        (unit, genl) => Ok((unit.unwrap_or(DEFAULT_UNIT), genl)),
    }
}

pub(crate) fn plan(cli: Cli) -> Result<Plan, clap::Error> {
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
