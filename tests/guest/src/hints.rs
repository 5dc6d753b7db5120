//! The `rustnl` command's failures as users meet them (issue 19): the
//! built binary run as root, as an unprivileged user and inside a network
//! namespace from before the load, against the real module. Each failure
//! must be one line on stderr that says which limit, privilege or
//! condition it is and what to do, with a non-zero exit status and
//! nothing on stdout — never a Rust panic nor a bare `os error N`.

use crate::children::{Role, Talk};
use crate::harness::*;
use crate::module::*;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Who runs the command.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// Root in the initial namespaces (the test itself).
    Root,
    /// uid/gid 65534 without supplementary groups or capabilities
    /// (`setuid` from root clears them).
    Nobody,
    /// Root inside the network namespace of process `pid`.
    InNetnsOf(u32),
    /// Root in a network namespace of its own, created just before `exec`
    /// (after the load: the module serves it).
    NewNetns,
}

/// What a run of the command left.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `rustnl ARGS` as `who`.
fn rustnl(who: Who, args: &[&str]) -> Result<Run, String> {
    let mut cmd = Command::new("rustnl");
    cmd.args(args);
    // Kept open until the command has started.
    let mut netns = None;
    match who {
        Who::Root => {}
        Who::Nobody => {
            // std drops the supplementary groups (setgroups) when root
            // sets a uid.
            cmd.uid(65534).gid(65534);
        }
        Who::InNetnsOf(pid) => {
            let path = format!("/proc/{pid}/ns/net");
            let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
            netns = Some(f);
            // SAFETY: setns is async-signal-safe; `fd` stays open until
            // spawn returns (`netns`).
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        Who::NewNetns => {
            // SAFETY: unshare is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::unshare(libc::CLONE_NEWNET) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running rustnl {args:?} as {who:?}: {e}"))?;
    drop(netns);
    Ok(Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The run succeeded: exit 0, nothing on stderr; its stdout.
fn succeeded(r: Run, what: &str) -> Result<String, String> {
    ensure!(
        r.code == Some(0) && r.stderr.is_empty(),
        "{what}: exit {:?}, stderr {:?}",
        r.code,
        r.stderr
    );
    Ok(r.stdout)
}

/// The run failed as the CLI promises: exit `code`, nothing on stdout, one
/// line on stderr starting `rustnl: `, no panic and no bare `os error`;
/// that line without its newline.
fn one_line_failure(r: Run, code: i32, what: &str) -> Result<String, String> {
    let Run {
        code: got,
        stdout,
        stderr,
    } = r;
    ensure!(
        got == Some(code),
        "{what}: exit {got:?} instead of {code}; stderr {stderr:?}"
    );
    ensure!(stdout.is_empty(), "{what}: stdout {stdout:?}");
    ensure!(
        stderr.ends_with('\n') && stderr.lines().count() == 1,
        "{what}: not one line on stderr: {stderr:?}"
    );
    ensure!(stderr.starts_with("rustnl: "), "{what}: stderr {stderr:?}");
    for bad in ["panicked", "RUST_BACKTRACE", "os error"] {
        ensure!(!stderr.contains(bad), "{what}: `{bad}` in {stderr:?}");
    }
    let line = stderr.trim_end().to_string();
    // In the log: what users see, for the docs and for a failure elsewhere.
    println!("    {what}: {line}");
    Ok(line)
}

/// The CLI's `--size` payload: `a`..`z` repeated.
fn cli_pattern(size: usize) -> String {
    (0..size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// `rustnl --json echo --size SIZE` printed one `echo` record of `size`
/// bytes whose text is the pattern it sent.
fn echoed_in_json(out: &str, size: usize, what: &str) -> TestResult {
    let v = crate::json_lines(out)?;
    ensure!(v.len() == 1, "{what}: {} records", v.len());
    let r = &v[0];
    ensure!(
        r["type"] == "echo" && r["bytes"] == size && r["rtt_us"].is_f64(),
        "{what}: record {}",
        serde_json::json!({"type": r["type"], "bytes": r["bytes"], "rtt_us": r["rtt_us"]})
    );
    ensure!(
        r["text"].as_str() == Some(cli_pattern(size).as_str()),
        "{what}: the echoed text differs from the {size} bytes sent"
    );
    Ok(())
}

/// `net.core.wmem_max`: without `CAP_NET_ADMIN` `SO_SNDBUF` stops there,
/// and the kernel doubles it.
const WMEM_MAX: &str = "/proc/sys/net/core/wmem_max";

fn wmem_max() -> Result<usize, String> {
    let s = std::fs::read_to_string(WMEM_MAX).map_err(|e| format!("{WMEM_MAX}: {e}"))?;
    s.trim().parse().map_err(|e| format!("wmem_max {s:?}: {e}"))
}

fn set_wmem_max(bytes: usize) -> TestResult {
    std::fs::write(WMEM_MAX, format!("{bytes}\n")).map_err(|e| format!("{WMEM_MAX}: {e}"))
}

/// A file under /proc/sys put back as it was when dropped.
struct Restore(&'static str, String);

impl Restore {
    fn of(path: &'static str) -> Result<Restore, String> {
        let was = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        Ok(Restore(path, was))
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, &self.1);
    }
}

/// `rustnl --json echo --size SIZE` as uid 65534 with `net.core.wmem_max`
/// at `wmem`: the echo when the datagram fits twice `wmem` (less netlink's
/// 32 bytes), else the library's too-large error naming the buffer, the
/// capability and the sysctl; then the `wmem_max` it advises.
fn unprivileged_echo(size: usize, wmem: usize) -> Result<Option<usize>, String> {
    let s = size.to_string();
    let what = format!("unprivileged echo --size {size} (net.core.wmem_max {wmem})");
    let sendable = (2 * wmem).saturating_sub(rustnl::SNDBUF_OVERHEAD);
    let datagram = rustnl::proto::NLMSG_HDRLEN + size;
    let r = rustnl(Who::Nobody, &["--json", "echo", "--size", &s])?;
    if datagram <= sendable {
        echoed_in_json(&succeeded(r, &what)?, size, &what)?;
        println!("    {what}: echoed");
        return Ok(None);
    }
    let line = one_line_failure(r, 1, &what)?;
    let need = (datagram + rustnl::SNDBUF_OVERHEAD).div_ceil(2);
    let want = format!(
        "rustnl: a {datagram}-byte datagram does not fit this socket's send buffer ({} bytes, SO_SNDBUF; netlink sends at most {sendable} bytes): without CAP_NET_ADMIN (SO_SNDBUFFORCE) the buffer is capped by net.core.wmem_max ({wmem}); run as root or raise it: sysctl -w net.core.wmem_max={need}",
        2 * wmem
    );
    ensure!(line == want, "{what}: {line:?} instead of {want:?}");
    Ok(Some(need))
}

/// The classic face at the protocol's limit (`max_payload=1048576`):
/// root echoes 300,000 bytes and 1 MiB (the library grows the send buffer
/// with `SO_SNDBUFFORCE`) and gets every byte back; `--size 1048577` is a
/// usage error naming the limit; the module's own `max_payload` refusal
/// names it too. Unprivileged (`SO_SNDBUF`, capped by `wmem_max`): what
/// fits works; past it, the library's typed error names the buffer, the
/// capability and the sysctl, and the sysctl it advises lets it through.
fn t_echo_1mib(ctx: &Ctx) -> TestResult {
    reload(ctx, &["max_payload=1048576"])?;
    for size in [300_000usize, 1 << 20] {
        let s = size.to_string();
        let what = format!("root echo --size {size}");
        let out = succeeded(rustnl(Who::Root, &["--json", "echo", "--size", &s])?, &what)?;
        echoed_in_json(&out, size, &what)?;
    }
    // Past the protocol's limit: refused by the command line, before
    // anything is sent.
    let line = one_line_failure(
        rustnl(Who::Root, &["echo", "--size", "1048577"])?,
        2,
        "echo --size 1048577",
    )?;
    ensure!(
        line.contains("1048577") && line.contains("1048576") && line.contains("max_payload"),
        "echo --size 1048577 does not name the limit: {line:?}"
    );
    // Unprivileged: SO_SNDBUFFORCE is refused, SO_SNDBUF is capped by
    // net.core.wmem_max: as the kernel has it (4,194,304 on the test
    // kernel: 1 MiB fits), at 212,992 (where 1 MiB does not), and at what
    // that refusal advises.
    let restore = Restore::of(WMEM_MAX)?;
    for wmem in [wmem_max()?, 212_992] {
        set_wmem_max(wmem)?;
        for size in [300_000usize, 1 << 20] {
            let Some(need) = unprivileged_echo(size, wmem)? else {
                continue;
            };
            set_wmem_max(need)?;
            let what =
                format!("unprivileged echo --size {size} after sysctl -w net.core.wmem_max={need}");
            let s = size.to_string();
            let r = rustnl(Who::Nobody, &["--json", "echo", "--size", &s])?;
            echoed_in_json(&succeeded(r, &what)?, size, &what)?;
            set_wmem_max(wmem)?;
        }
    }
    drop(restore);
    // The module's own limit: the kernel's EMSGSIZE with its text.
    reload(ctx, &["max_payload=300000"])?;
    let line = one_line_failure(
        rustnl(Who::Root, &["echo", "--size", "300001"])?,
        1,
        "echo --size 300001 over max_payload=300000",
    )?;
    ensure!(
        line == "rustnl: kernel error EMSGSIZE (Message too long): payload of 300001 bytes exceeds max_payload (300000)",
        "over max_payload: {line:?}"
    );
    reload(ctx, &[])
}

/// What the module's refusal of an unprivileged broadcast says, on both
/// faces.
const BROADCAST_REFUSED: &str = "rustnl: kernel error EPERM (Operation not permitted): broadcast needs CAP_NET_ADMIN (or open_broadcast=1)";

/// An unprivileged broadcast, on the classic face (the module's
/// ext-ack text) and the genl face (the core's `GENL_UNS_ADMIN_PERM`, no
/// text: the CLI adds the classic face's): the same one line; with
/// `open_broadcast=1`, as it advises, both go through.
fn t_unprivileged_broadcast(ctx: &Ctx) -> TestResult {
    reload(ctx, &[])?;
    for face in [
        &["broadcast", "-g", "1", "x"][..],
        &["broadcast", "--genl", "-g", "1", "x"],
    ] {
        let what = format!("unprivileged rustnl {}", face.join(" "));
        let line = one_line_failure(rustnl(Who::Nobody, face)?, 1, &what)?;
        ensure!(line == BROADCAST_REFUSED, "{what}: {line:?}");
    }
    reload(ctx, &["open_broadcast=1"])?;
    for face in [
        &["broadcast", "-g", "1", "x"][..],
        &["broadcast", "--genl", "-g", "1", "x"],
    ] {
        let what = format!(
            "unprivileged rustnl {} with open_broadcast=1",
            face.join(" ")
        );
        let out = succeeded(rustnl(Who::Nobody, face)?, &what)?;
        ensure!(out.contains("group 1"), "{what}: {out:?}");
    }
    reload(ctx, &[])
}

/// The kernel the suite runs on, as the CLI's `hints::RunningKernel`
/// tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// The project's test kernel (7.3.4 built with clang, with the netlink
    /// fix).
    Test,
    /// Debian's trixie-backports 7.3 (`+deb13`).
    Trixie,
    /// Debian's sid / forky 7.2 (`+deb14`).
    Sid,
}

fn kernel_here() -> Result<(Kernel, String), String> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let release = read("/proc/sys/kernel/osrelease")?.trim().to_string();
    let version = read("/proc/version")?;
    let kernel = if release == "7.3.4" && version.contains("clang") {
        Kernel::Test
    } else if release.starts_with("7.3.") && release.ends_with("+deb13-amd64") {
        Kernel::Trixie
    } else if release.starts_with("7.2.") && release.ends_with("+deb14-amd64") {
        Kernel::Sid
    } else {
        return Err(format!(
            "the suite runs on the project's test kernel or Debian's stock kernels, not {release} ({})",
            version.trim()
        ));
    };
    Ok((kernel, release))
}

/// What the load advice must say on the kernel the suite runs on (the
/// CLI's `hints::load_how`): `make module` builds for the project's test
/// kernel only, Debian's stock kernels have `make stock-module`.
fn load_advice_here() -> Result<Vec<String>, String> {
    let (kernel, release) = kernel_here()?;
    Ok(match kernel {
        Kernel::Test => vec![
            "this is the project's test kernel: build and load the module with `make module && sudo insmod kmod/rustnl.ko` in the rustnl source tree, or `sudo modprobe rustnl` once installed".to_string(),
        ],
        Kernel::Trixie => vec![
            format!("this is Debian's stock kernel {release}"),
            "`make stock-module` in the rustnl source tree and load it with `sudo insmod build/stock/rustnl.ko`".to_string(),
        ],
        Kernel::Sid => vec![
            format!("this is Debian's stock kernel {release}"),
            "`make stock-module STOCK=sid` in the rustnl source tree and load it with `sudo insmod build/stock-sid/rustnl.ko`".to_string(),
        ],
    })
}

/// The module not loaded: `echo` on either face is one line that says
/// so and how to load the module on the running kernel.
fn t_not_loaded(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let advice = load_advice_here()?;
    let line = one_line_failure(rustnl(Who::Root, &["echo", "x"])?, 1, "echo x, not loaded")?;
    ensure!(
        line.starts_with(
            "rustnl: rustnl kernel module not loaded: netlink unit 31 has no kernel socket ("
        ) && line.ends_with("; `rustnl families` lists the netlink units in use)"),
        "echo x, not loaded: {line:?}"
    );
    for a in &advice {
        ensure!(
            line.contains(a.as_str()),
            "echo x, not loaded: no `{a}` in {line:?}"
        );
    }
    let line = one_line_failure(
        rustnl(Who::Root, &["echo", "--genl", "x"])?,
        1,
        "echo --genl x, not loaded",
    )?;
    ensure!(
        line.starts_with("rustnl: rustnl generic netlink family not registered: the generic netlink controller knows no family \"rustnl\" in this network namespace (the rustnl kernel module is not loaded); ")
            && line.ends_with("; `rustnl genl list` lists the registered generic netlink families"),
        "echo --genl x, not loaded: {line:?}"
    );
    for a in &advice {
        ensure!(
            line.contains(a.as_str()),
            "echo --genl x, not loaded: no `{a}` in {line:?}"
        );
    }
    insmod(ctx, &[])
}

/// A network namespace from before the load, with the default
/// `existing_netns=0`: the classic unit does not serve it, and `echo`
/// there says so in one line with what to do (the genl face, or
/// `existing_netns=1`); `echo --genl` there works; so does `echo` in the
/// initial namespace and in a namespace created after the load.
fn t_namespace_not_served(ctx: &Ctx) -> TestResult {
    if module_loaded() {
        rmmod()?;
    }
    let ns = Talk::start(Role::NsIdle, &[])?;
    insmod(ctx, &[])?;
    let here = Who::InNetnsOf(ns.pid());
    let line = one_line_failure(
        rustnl(here, &["echo", "x"])?,
        1,
        "echo x in an unserved namespace",
    )?;
    // The module's parameters have no sysfs files (Rust modules on 7.2 and
    // 7.3): the CLI names both causes and what to do.
    let reload_advice = if kernel_here()?.0 == Kernel::Test {
        "or reload the module with existing_netns=1 (this test kernel has the netlink fix it needs)"
    } else {
        "or reload the module with existing_netns=1, but only on a kernel with rustnl's netlink fix"
    };
    for want in [
        "rustnl: netlink unit 31 has no kernel socket in this network namespace (sendto: ECONNREFUSED): the rustnl module does not serve it; this namespace existed before the rustnl module was loaded (its default existing_netns=0 serves the initial namespace and those created since), or setting it up failed at load (the kernel log says so); ",
        "the generic netlink face serves every namespace (`rustnl --genl echo ...`), a namespace created now is served, ",
        reload_advice,
    ] {
        ensure!(
            line.contains(want),
            "echo x in an unserved namespace: no `{want}` in {line:?}"
        );
    }
    let out = succeeded(
        rustnl(here, &["echo", "--genl", "x"])?,
        "echo --genl x there",
    )?;
    ensure!(out.starts_with("x\nrtt: "), "echo --genl x there: {out:?}");
    for who in [Who::Root, Who::NewNetns] {
        let out = succeeded(rustnl(who, &["echo", "x"])?, &format!("echo x as {who:?}"))?;
        ensure!(out.starts_with("x\nrtt: "), "echo x as {who:?}: {out:?}");
    }
    ns.finish()?;
    reload(ctx, &[])
}

/// This file's tests, in the order they run, with what each needs.
pub(crate) const TESTS: &[Test] = &[
    Test::new("hint_echo_1mib_and_the_limits_named", t_echo_1mib),
    Test::new(
        "hint_unprivileged_broadcast_on_both_faces",
        t_unprivileged_broadcast,
    ),
    Test::new("hint_not_loaded_advice_fits_the_kernel", t_not_loaded),
    Test::new(
        "hint_namespace_from_before_load_not_served",
        t_namespace_not_served,
    ),
];
