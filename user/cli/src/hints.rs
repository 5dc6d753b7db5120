//! Failures: the library describes the condition, the CLI adds what to do
//! about it on this machine.

use crate::args::Wait;
use crate::plan::Target;
use rustnl::families::table;
use rustnl::proto::{RequestError, DEFAULT_UNIT};
use rustnl::{Client, Error, ModuleError};
use std::time::Duration;

/// What went wrong, ready to print.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(e.to_string())
    }
}

/// The kernel this machine runs, as far as building the module goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunningKernel {
    /// The project's test kernel (`make kernel`: release 7.3.4 built with
    /// clang), e.g. in `make vm`.
    Test,
    /// One of the Debian stock Rust kernels `make stock-module` builds for:
    /// trixie-backports' 7.3 (`7.3.*+deb13-amd64`) or sid's and forky's
    /// (`7.2.*+deb14-amd64` today; `7.3.*+deb14-amd64` when they move on,
    /// which `STOCK=sid` builds for as well).
    DebianStock(String),
    /// Anything else.
    Other(String),
}

impl RunningKernel {
    /// Tells the kernels apart by `uname -r` and `/proc/version`.
    pub(crate) fn from(release: &str, proc_version: &str) -> RunningKernel {
        let release = release.trim();
        let line = |v: &str| release.starts_with(v);
        if (line("7.3.") && release.ends_with("+deb13-amd64"))
            || ((line("7.2.") || line("7.3.")) && release.ends_with("+deb14-amd64"))
        {
            RunningKernel::DebianStock(release.to_string())
        } else if release == "7.3.4" && proc_version.contains("clang") {
            RunningKernel::Test
        } else {
            RunningKernel::Other(release.to_string())
        }
    }

    /// The kernel running now.
    pub(crate) fn now() -> RunningKernel {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        RunningKernel::from(&read("/proc/sys/kernel/osrelease"), &read("/proc/version"))
    }
}

/// How to load the module on `kernel` (with `unit=` unless it is the
/// default): `make module` builds for the project's test kernel only.
pub(crate) fn load_how(unit: u32, kernel: &RunningKernel) -> String {
    let param = if unit == DEFAULT_UNIT {
        String::new()
    } else {
        format!(" unit={unit}")
    };
    let version = env!("CARGO_PKG_VERSION");
    match kernel {
        RunningKernel::Test => format!(
            "this is the project's test kernel: build and load the module with `make module && sudo insmod kmod/rustnl.ko{param}` in the rustnl source tree, or `sudo modprobe rustnl{param}` once installed (`make install`)"
        ),
        RunningKernel::DebianStock(release) => {
            // `make stock-module` builds for trixie-backports' 7.3 by
            // default; sid's line (+deb14, forky shares it) is STOCK=sid.
            let (make, dir) = if release.ends_with("+deb14-amd64") {
                ("make stock-module STOCK=sid", "build/stock-sid")
            } else {
                ("make stock-module", "build/stock")
            };
            format!(
                "this is Debian's stock kernel {release}, which `make module && sudo insmod kmod/rustnl.ko` does not build for (that is the project's test kernel): build the module for it with `{make}` in the rustnl source tree and load it with `sudo insmod {dir}/rustnl.ko{param}`, or have DKMS build it for each installed kernel (`sudo make dkms-src && sudo dkms install rustnl/{version}`, then `sudo modprobe rustnl{param}`)"
            )
        }
        RunningKernel::Other(release) => format!(
            "the running kernel {release} is neither one of the Debian stock Rust kernels `make stock-module` builds for (trixie-backports' 7.3.*+deb13-amd64, sid's and forky's *+deb14-amd64) nor the project's test kernel: the module needs a 7.2 or 7.3 kernel with Rust support (CONFIG_RUST) and its headers; build it against them with DKMS (`sudo make dkms-src && sudo dkms install rustnl/{version}`), or try it in the test kernel's VM (`make vm`)"
        ),
    }
}

/// Why the module does not serve this network namespace on `unit` (its
/// `sendto` says `ECONNREFUSED` although the unit is registered) and what
/// to do, on `kernel`. `existing_netns` is the module's parameter as
/// `/sys/module/rustnl/parameters/existing_netns` shows it; on 7.2 and 7.3
/// the kernel's `module!` registers a Rust module's parameters without
/// sysfs files, so it is `None` there and the hint names both causes.
pub(crate) fn not_served_hint(
    unit: u32,
    existing_netns: Option<&str>,
    kernel: &RunningKernel,
) -> String {
    // existing_netns=1 with the unit in use can crash a kernel without the
    // fix (docs/own-kernel.md); the test kernel has it.
    let reload = match kernel {
        RunningKernel::Test => {
            "or reload the module with existing_netns=1 (this test kernel has the netlink fix it needs)"
        }
        _ => {
            "or reload the module with existing_netns=1, but only on a kernel with rustnl's netlink fix (tests/kernel-patches/ in the source tree): elsewhere a process in such a namespace can crash the kernel during the load"
        }
    };
    let what_to_do = format!(
        "the generic netlink face serves every namespace (`rustnl --genl echo ...`), a namespace created now is served, {reload}"
    );
    match existing_netns.map(str::trim) {
        Some("N" | "0") => format!(
            "this namespace existed before the rustnl module was loaded with existing_netns=0, which serves the initial namespace and those created since; {what_to_do}"
        ),
        Some(_) => format!(
            "the rustnl module serves every namespace (existing_netns=1): it may be unloading, setting this namespace up may have failed at load (the kernel log says so), or unit {unit} is not its unit="
        ),
        None => format!(
            "this namespace existed before the rustnl module was loaded (its default existing_netns=0 serves the initial namespace and those created since), or setting it up failed at load (the kernel log says so); {what_to_do}"
        ),
    }
}

/// The hint for a module that is not loaded.
pub(crate) fn load_hint(unit: u32) -> String {
    format!(
        "{}; `rustnl families` lists the netlink units in use",
        load_how(unit, &RunningKernel::now())
    )
}

/// The hint for a generic netlink family `rustnl` that is not registered.
pub(crate) fn genl_load_hint() -> String {
    format!(
        "{}; `rustnl genl list` lists the registered generic netlink families",
        load_how(DEFAULT_UNIT, &RunningKernel::now())
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
            Error::Module(ModuleError::GenlNotRegistered) => {
                Failure(format!("{e}; {}", genl_load_hint()))
            }
            // The generic netlink core refuses an unprivileged broadcast
            // (the operation's GENL_UNS_ADMIN_PERM) without a text: say
            // what the classic face's refusal says.
            Error::Kernel(ref k) if k.errno == libc::EPERM && k.message.is_none() => {
                Failure(format!("{e}: {}", RequestError::BroadcastNotPermitted))
            }
            e => Failure(e.to_string()),
        };
    }
    let unit = target.unit;
    if let Error::Module(ModuleError::NotLoaded { .. }) = e {
        return Failure(format!("{e} ({})", load_hint(unit)));
    }
    if e.errno() == Some(libc::ECONNREFUSED) {
        let existing = std::fs::read_to_string("/sys/module/rustnl/parameters/existing_netns").ok();
        let hint = not_served_hint(unit, existing.as_deref(), &RunningKernel::now());
        // The library's error says the namespace is not served; a bare
        // `sendto` refusal does not.
        return Failure(match e {
            Error::Module(ModuleError::NamespaceNotServed { .. }) => format!("{e}; {hint}"),
            e => format!("{e}: the rustnl module does not serve this network namespace on unit {unit}; {hint}"),
        });
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
        | Error::WrongCommand { .. }
        | Error::WrongPort { .. }
        | Error::Timeout => true,
        Error::Kernel(k) => k.message.is_none(),
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
