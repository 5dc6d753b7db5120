//! Failures: the library describes the condition, the CLI adds what to do
//! about it on this machine.

use crate::args::Wait;
use crate::plan::Target;
use rustnl::families::table;
use rustnl::proto::DEFAULT_UNIT;
use rustnl::{Client, Error};
use std::time::Duration;

/// What went wrong, ready to print.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(e.to_string())
    }
}

/// How to load the module (with `unit=` unless it is the default).
pub(crate) fn load_how(unit: u32) -> String {
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
pub(crate) fn load_hint(unit: u32) -> String {
    format!(
        "{}; `rustnl families` lists the netlink units in use",
        load_how(unit)
    )
}

/// The hint for a generic netlink family `rustnl` that is not registered.
pub(crate) fn genl_load_hint() -> String {
    format!(
        "{}; `rustnl genl list` lists the registered generic netlink families",
        load_how(DEFAULT_UNIT)
    )
}

/// How long the "is it rustnl?" probe waits: the module answers GET_INFO at
/// once, other families may not answer at all.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// Whether the module answers GET_INFO on `unit` as rustnl.
pub(crate) fn answers_as_rustnl(unit: u32, timeout: Wait) -> bool {
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
pub(crate) fn module_failure(target: Target, e: Error) -> Failure {
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

pub(crate) fn watch_failure(what: &str, e: Error) -> Failure {
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

/// A generic netlink failure, with what to do for a family that is not
/// registered.
pub(crate) fn genl_failure(e: Error) -> Failure {
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
