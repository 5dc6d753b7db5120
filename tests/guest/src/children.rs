//! Child roles: the suite runs itself again as `--child ROLE ARGS...` for
//! what must happen in another process (another uid, another network or
//! user namespace, a fuzzing thread's unprivileged peer). [`Role`] is every
//! role, parsed once in `main`; [`Talk`] speaks to a child line by line.

use crate::harness::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// What a child process does: every role the suite runs itself as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// uid 65534 without capabilities on the classic face (`open` or
    /// `closed`: whether the module has `open_broadcast=1`).
    Unpriv,
    /// A network namespace of its own, on the classic face.
    Netns,
    /// An unprivileged user's own user + network namespace, classic face.
    Userns,
    /// The classic fuzzer's unprivileged sender (seed, share).
    Fuzz,
    /// The genl fuzzer's unprivileged sender (seed, `share:id:others`).
    FuzzGenl,
    /// A load-race hammer in a namespace of its own (kind, pace).
    LoadRace,
    /// Holds a network namespace open until told to exit.
    NsHolder,
    /// A network namespace that exists and does nothing.
    NsIdle,
    /// uid 65534 without capabilities on the genl face (`open`/`closed`).
    GenlUnpriv,
    /// A network namespace of its own, on the genl face.
    GenlNetns,
    /// An unprivileged user's own user + network namespace, genl face.
    GenlUserns,
    /// A namespace created before the module was loaded, genl face.
    GenlPreexisting,
    /// Spins on socket(31) keeping what it gets (`init-user`/`own-netns`).
    Holder,
    /// Root in a namespace of its own without listeners; broadcasts.
    Lonely,
}

impl Role {
    const ALL: [Role; 14] = [
        Role::Unpriv,
        Role::Netns,
        Role::Userns,
        Role::Fuzz,
        Role::FuzzGenl,
        Role::LoadRace,
        Role::NsHolder,
        Role::NsIdle,
        Role::GenlUnpriv,
        Role::GenlNetns,
        Role::GenlUserns,
        Role::GenlPreexisting,
        Role::Holder,
        Role::Lonely,
    ];

    /// Its name on the command line (`--child NAME`).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Role::Unpriv => "unpriv",
            Role::Netns => "netns",
            Role::Userns => "userns",
            Role::Fuzz => "fuzz",
            Role::FuzzGenl => "fuzz-genl",
            Role::LoadRace => "loadrace",
            Role::NsHolder => "nsholder",
            Role::NsIdle => "nsidle",
            Role::GenlUnpriv => "genl-unpriv",
            Role::GenlNetns => "genl-netns",
            Role::GenlUserns => "genl-userns",
            Role::GenlPreexisting => "genl-preexisting",
            Role::Holder => "holder",
            Role::Lonely => "lonely",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs this binary again as `--child ROLE` with `args`; returns its stdout
/// lines through a reader and its stdin for signalling.
pub(crate) fn spawn_child(role: Role, args: &[&str]) -> Result<std::process::Child, String> {
    Command::new("/proc/self/exe")
        .arg("--child")
        .arg(role.name())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawning child {role}: {e}"))
}

/// A child (`--child ROLE`) spoken to line by line: it prints `ready`
/// first, then the test `say`s lines on its stdin and `expect`s its
/// stdout lines.
pub(crate) struct Talk {
    role: Role,
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    stdin: Option<std::process::ChildStdin>,
}

impl Talk {
    /// Spawns the child and waits for its `ready`.
    pub(crate) fn start(role: Role, args: &[&str]) -> Result<Talk, String> {
        let mut child = spawn_child(role, args)?;
        let lines = BufReader::new(child.stdout.take().ok_or("no child stdout")?).lines();
        let stdin = Some(child.stdin.take().ok_or("no child stdin")?);
        let mut t = Talk {
            role,
            child,
            lines,
            stdin,
        };
        t.expect("ready")?;
        Ok(t)
    }

    /// The child's process id (e.g. to enter its namespaces through
    /// `/proc/PID/ns/`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's next line must be `want`.
    pub(crate) fn expect(&mut self, want: &str) -> TestResult {
        let got = self
            .lines
            .next()
            .ok_or_else(|| format!("child {} exited early", self.role))?
            .map_err(|e| e.to_string())?;
        ensure!(got == want, "child {} said {got:?}", self.role);
        Ok(())
    }

    /// Writes `line` to the child's stdin.
    pub(crate) fn say(&mut self, line: &str) -> TestResult {
        let stdin = self.stdin.as_mut().ok_or("child stdin closed")?;
        writeln!(stdin, "{line}").map_err(|e| e.to_string())
    }

    /// Closes the child's stdin and waits for it: its remaining lines, or
    /// an error with them if it failed.
    pub(crate) fn finish(mut self) -> Result<Vec<String>, String> {
        drop(self.stdin.take());
        let status = self.child.wait().map_err(|e| e.to_string())?;
        let rest: Vec<String> = self.lines.map_while(Result::ok).collect();
        ensure!(status.success(), "child {} failed: {rest:?}", self.role);
        Ok(rest)
    }
}

pub(crate) fn finish_child(child: std::process::Child, role: &str) -> TestResult {
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "child {role} failed: {}", text.trim());
    Ok(())
}

/// Enters a network namespace of its own (a single-threaded child); with
/// `as_user`, first drops to uid 65534 and creates a user namespace with
/// it: an unprivileged user's own namespaces, where it holds
/// `CAP_NET_ADMIN`.
pub(crate) fn enter_netns(as_user: bool) -> TestResult {
    let flags = if as_user {
        drop_privileges()?;
        libc::CLONE_NEWUSER | libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWNET
    };
    // SAFETY: plain system call in a single-threaded child.
    ensure!(
        unsafe { libc::unshare(flags) } == 0,
        "unshare({flags:#x}) failed: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Becomes uid/gid 65534 with no supplementary groups and no capabilities.
pub(crate) fn drop_privileges() -> TestResult {
    // SAFETY: plain system calls; callers are single-threaded children.
    unsafe {
        ensure!(
            libc::setgroups(0, std::ptr::null()) == 0,
            "setgroups failed"
        );
        ensure!(
            libc::setgid(65534) == 0 && libc::setuid(65534) == 0,
            "setuid failed"
        );
        ensure!(libc::geteuid() == 65534, "still root");
    }
    Ok(())
}
