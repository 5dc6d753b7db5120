//! The kernel's own tools drive the module's generic netlink family, as a
//! developer would from a shell: iproute2's `genl ctrl` and the YNL CLI of
//! the kernel source (`tools/net/ynl/pyynl/cli.py`) with the family's spec
//! (`shared/spec/rustnl.yaml`).
//!
//! They come from the host: scripts/vm.sh exports the host's root filesystem
//! read-only (virtio 9p) and tests/vm/init mounts it at `/host` with the
//! guest's own `/proc`, `/sys`, `/dev`, `/tmp`, `/run` and `/lib/modules`, so
//! `chroot /host CMD` runs the host's Python and iproute2 against the guest
//! kernel. scripts/vm.sh also writes `/etc/rustnl/host.env` (where the kernel
//! source is on the host) and copies the spec to `/etc/rustnl/rustnl.yaml`.
//!
//! Every test here is named `tools_*` and needs the host root: on a kernel
//! that cannot mount it (Debian's stock kernel has 9p as a module only,
//! `--stock`) they are reported as ignored with the guest's reason; on the
//! test kernel a missing host root is a failure.

use crate::Test;
use crate::{connect, insmod, pattern, reload, rmmod, Ctx, TestResult};
use rustnl::proto::DEFAULT_UNIT;
use rustnl_shared::genl::{Cmd, McastGroup, FAMILY_NAME, FAMILY_VERSION, GROUP_MAX};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where tests/vm/init mounts the host's root filesystem.
const HOST: &str = "/host";
/// The host's own Python, by its path: `python3` on a developer's PATH may
/// be a pyenv shim that does not work in the guest.
const PYTHON: &str = "/usr/bin/python3";
/// What the guest's init says about the host root (`mounted ...` or
/// `unavailable: REASON`).
const HOSTROOT_STATUS: &str = "/etc/rustnl/hostroot";
/// Longest one host tool may run (TCG, debug kernel, files over 9p).
const TOOL_TIMEOUT: Duration = Duration::from_secs(90);
/// The generic netlink controller's fixed family id (GENL_ID_CTRL).
const GENL_ID_CTRL: u64 = 0x10;

/// `None` when the host root is mounted at /host, else why it is not.
pub(crate) fn host_root_unavailable() -> Option<String> {
    match std::fs::read_to_string(HOSTROOT_STATUS) {
        Ok(s) if s.starts_with("mounted") => None,
        Ok(s) => Some(s.trim().trim_start_matches("unavailable: ").to_string()),
        Err(e) => Some(format!(
            "the guest's init did not report the host root ({HOSTROOT_STATUS}: {e})"
        )),
    }
}

fn require_host_root() -> TestResult {
    match host_root_unavailable() {
        None => Ok(()),
        Some(why) => Err(format!("the host root is not mounted at {HOST}: {why}")),
    }
}

// ---------------------------------------------------------------------------
// Running host programs in the guest.
// ---------------------------------------------------------------------------

/// A finished host program.
struct Out {
    /// Its process id (chroot and python exec in place, so this is the
    /// tool's own pid: the port id its first netlink socket binds to).
    pid: u32,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Out {
    /// Its stdout if it exited 0.
    fn ok(&self) -> Result<&str, String> {
        if self.code == Some(0) {
            Ok(&self.stdout)
        } else {
            Err(format!(
                "`{}` exited with {:?}: stdout {:?}, stderr {:?}",
                self.what,
                self.code,
                self.stdout.trim(),
                tail(&self.stderr, 6)
            ))
        }
    }
}

/// The last `n` lines of a (Python traceback) text.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `chroot /host ARGS...` with Python's bytecode writes off (the host root
/// is read-only) and its output unbuffered (for reading events as they come).
fn host_command(args: &[&str]) -> Command {
    let mut c = Command::new("chroot");
    c.arg(HOST)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("HOME", "/root")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn describe(args: &[&str]) -> String {
    let mut s = args
        .iter()
        .map(|a| {
            if a.len() > 80 {
                let head: String = a.chars().take(40).collect();
                format!("{head}...({} bytes)", a.len())
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    s.insert_str(0, "chroot /host ");
    s
}

/// Runs a host program to its end (at most TOOL_TIMEOUT).
fn run_host(args: &[&str]) -> Result<Out, String> {
    let what = describe(args);
    let mut child = host_command(args)
        .spawn()
        .map_err(|e| format!("spawning `{what}`: {e}"))?;
    let pid = child.id();
    let mut so = child.stdout.take().ok_or("no stdout")?;
    let mut se = child.stderr.take().ok_or("no stderr")?;
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    match status {
        Some(st) => Ok(Out {
            pid,
            code: st.code(),
            stdout,
            stderr,
            what,
        }),
        None => Err(format!(
            "`{what}` did not finish in {TOOL_TIMEOUT:?}: stdout {:?}, stderr {:?}",
            stdout.trim(),
            tail(&stderr, 6)
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The one JSON document a `--output-json --do` prints.
fn one_json(out: &Out) -> Result<Value, String> {
    let text = out.ok()?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.as_slice() {
        [line] => serde_json::from_str(line)
            .map_err(|e| format!("`{}` printed no JSON ({e}): {line:?}", out.what)),
        _ => Err(format!(
            "`{}` printed {} lines, expected one JSON reply: {text:?}",
            out.what,
            lines.len()
        )),
    }
}

fn num(v: &Value, key: &str) -> Result<u64, String> {
    v[key]
        .as_u64()
        .ok_or_else(|| format!("no number {key:?} in {v}"))
}

// ---------------------------------------------------------------------------
// The YNL CLI.
// ---------------------------------------------------------------------------

/// Where YNL and its inputs are, as paths inside the host root.
struct Ynl {
    /// The kernel source's tools/net/ynl/pyynl/cli.py.
    cli: String,
    /// Documentation/netlink/ of the kernel source (schemas, in-tree specs).
    doc: String,
    /// The rustnl spec, on the guest's /tmp (which /host/tmp is).
    spec: String,
}

impl Ynl {
    fn new() -> Result<Ynl, String> {
        require_host_root()?;
        let env = std::fs::read_to_string("/etc/rustnl/host.env")
            .map_err(|e| format!("/etc/rustnl/host.env (written by scripts/vm.sh): {e}"))?;
        let ksrc = env
            .lines()
            .find_map(|l| l.strip_prefix("KSRC="))
            .filter(|k| !k.is_empty())
            .ok_or(format!("no KSRC= in /etc/rustnl/host.env: {env:?}"))?;
        let cli = format!("{ksrc}/tools/net/ynl/pyynl/cli.py");
        let doc = format!("{ksrc}/Documentation/netlink");
        for f in [&cli, &format!("{doc}/genetlink.yaml")] {
            ensure!(
                std::path::Path::new(&format!("{HOST}{f}")).is_file(),
                "no {f} in the host root (the kernel source `make deps` unpacks; \
                 the guest's own /tmp hides the host's)"
            );
        }
        ensure!(
            std::path::Path::new(&format!("{HOST}{PYTHON}")).is_file(),
            "no {PYTHON} in the host root (make deps installs python3)"
        );
        // The spec as scripts/vm.sh copied it from shared/spec/rustnl.yaml;
        // on the guest's /tmp so that the chroot sees it at the same path
        // wherever the checkout is.
        std::fs::create_dir_all("/tmp/rustnl-spec").map_err(|e| e.to_string())?;
        std::fs::copy("/etc/rustnl/rustnl.yaml", "/tmp/rustnl-spec/rustnl.yaml")
            .map_err(|e| format!("copying the spec /etc/rustnl/rustnl.yaml: {e}"))?;
        Ok(Ynl {
            cli,
            doc,
            spec: "/tmp/rustnl-spec/rustnl.yaml".into(),
        })
    }

    /// `[PREFIX...] python3 cli.py --spec SPEC --schema SCHEMA --output-json ARGS`.
    fn argv<'a>(
        &'a self,
        prefix: &[&'a str],
        spec: &'a str,
        schema: &'a str,
        args: &[&'a str],
    ) -> Vec<&'a str> {
        let mut a = prefix.to_vec();
        a.extend([
            PYTHON,
            &self.cli,
            "--spec",
            spec,
            "--schema",
            schema,
            "--output-json",
        ]);
        a.extend(args);
        a
    }

    /// YNL with shared/spec/rustnl.yaml, validated against the kernel's
    /// genetlink schema on every run.
    fn rustnl(&self, args: &[&str]) -> Result<Out, String> {
        self.rustnl_as(&[], args)
    }

    /// The same, run under `prefix` (e.g. setpriv).
    fn rustnl_as(&self, prefix: &[&str], args: &[&str]) -> Result<Out, String> {
        let schema = format!("{}/genetlink.yaml", self.doc);
        run_host(&self.argv(prefix, &self.spec, &schema, args))
    }

    /// A long-running `ynl ARGS` (a `--subscribe` listener) on the host,
    /// its stdout read line by line; killed when dropped.
    fn listen(&self, args: &[&str]) -> Result<YnlListener, String> {
        let schema = format!("{}/genetlink.yaml", self.doc);
        let mut child = host_command(&self.argv(&[], &self.spec, &schema, args))
            .spawn()
            .map_err(|e| format!("spawning the ynl listener: {e}"))?;
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(YnlListener { child, lines })
    }

    /// `--do OP [--json JSON]` that must succeed: its reply.
    fn do_ok(&self, op: &str, json: Option<&str>) -> Result<(Value, u32), String> {
        let mut args = vec!["--do", op];
        if let Some(j) = json {
            args.extend(["--json", j]);
        }
        let out = self.rustnl(&args)?;
        Ok((one_json(&out)?, out.pid))
    }

    /// `--do OP --json JSON` that must fail: what YNL printed (it prints
    /// the netlink error with its extended ack on stdout and exits 1).
    fn do_err(&self, prefix: &[&str], op: &str, json: &str) -> Result<String, String> {
        let out = self.rustnl_as(prefix, &["--do", op, "--json", json])?;
        ensure!(
            out.code == Some(1) && out.stdout.contains("Netlink error: "),
            "`{}` should have failed with a netlink error: exit {:?}, stdout {:?}, stderr {:?}",
            out.what,
            out.code,
            out.stdout.trim(),
            tail(&out.stderr, 6)
        );
        Ok(out.stdout.trim().to_string())
    }

    /// nlctrl's CTRL_CMD_GETFAMILY for `family`, through YNL and the kernel's
    /// own nlctrl spec (a genetlink-legacy one).
    fn nlctrl_getfamily(&self, family: &str) -> Result<Out, String> {
        let spec = format!("{}/specs/nlctrl.yaml", self.doc);
        let schema = format!("{}/genetlink-legacy.yaml", self.doc);
        let json = format!("{{\"family-name\": \"{family}\"}}");
        run_host(&self.argv(&[], &spec, &schema, &["--do", "getfamily", "--json", &json]))
    }

    /// get-info: the reply, with both counter nests checked for presence.
    fn get_info(&self) -> Result<Value, String> {
        let (v, _) = self.do_ok(Cmd::GetInfo.name(), None)?;
        for nest in ["classic-counters", "genl-counters"] {
            for c in COUNTERS {
                ensure!(v[nest][c].is_u64(), "get-info: no {nest}.{c} in {v}");
            }
        }
        Ok(v)
    }
}

/// The counters of one face, as the spec names them.
const COUNTERS: [&str; 10] = [
    "requests",
    "echoes",
    "broadcasts",
    "events-sent",
    "errors-invalid",
    "errors-not-supported",
    "errors-too-large",
    "errors-not-permitted",
    "delivery-failures",
    "no-listeners",
];

/// nlctrl's indexed arrays as YNL prints them: `[{"1": {...}}, {"2": {...}}]`.
fn indexed(v: &Value, key: &str) -> Result<Vec<Value>, String> {
    v[key]
        .as_array()
        .ok_or(format!("no {key:?} array in {v}"))?
        .iter()
        .map(|e| {
            e.as_object()
                .and_then(|o| o.values().next().cloned())
                .ok_or(format!("{key:?} entry is not {{index: value}}: {e}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// iproute2's genl.
// ---------------------------------------------------------------------------

/// One family as `genl ctrl list` / `genl ctrl get` print it.
#[derive(Debug, Default, PartialEq)]
struct GenlFamily {
    name: String,
    id: u64,
    version: u64,
    /// (command id, capabilities text).
    ops: Vec<(u64, String)>,
    /// (group id, name).
    groups: Vec<(u64, String)>,
}

fn hex_number(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// Parses iproute2's text:
/// ```text
/// Name: nlctrl
///     ID: 0x10  Version: 0x2  header size: 0  max attribs: 10
///     commands supported:
///         #1:  ID-0x3
///         Capabilities (0xe):
///           can doit; can dumpit; has policy
///     multicast groups:
///         #1:  ID-0x10  name: notify
/// ```
fn parse_genl(text: &str) -> Result<Vec<GenlFamily>, String> {
    let mut fams: Vec<GenlFamily> = Vec::new();
    let mut in_groups = false;
    let mut caps_next = false;
    for line in text.lines() {
        let l = line.trim();
        if let Some(name) = l.strip_prefix("Name: ") {
            fams.push(GenlFamily {
                name: name.trim().to_string(),
                ..Default::default()
            });
            in_groups = false;
            continue;
        }
        let Some(f) = fams.last_mut() else { continue };
        let words: Vec<&str> = l.split_whitespace().collect();
        if let ["ID:", id, "Version:", ver, ..] = words.as_slice() {
            f.id = hex_number(id).ok_or(format!("bad family id in {l:?}"))?;
            f.version = hex_number(ver).ok_or(format!("bad version in {l:?}"))?;
        } else if l.starts_with("commands supported") {
            in_groups = false;
        } else if l.starts_with("multicast groups") {
            in_groups = true;
        } else if l.starts_with("Capabilities") {
            caps_next = true;
            continue;
        } else if caps_next {
            if let Some(op) = f.ops.last_mut() {
                op.1 = l.to_string();
            }
        } else if let [idx, id, rest @ ..] = words.as_slice() {
            if idx.starts_with('#') && id.starts_with("ID-") {
                let id = hex_number(&id[3..]).ok_or(format!("bad id in {l:?}"))?;
                if in_groups {
                    let name = match rest {
                        ["name:", name, ..] => name.to_string(),
                        _ => return Err(format!("group without a name: {l:?}")),
                    };
                    f.groups.push((id, name));
                } else {
                    f.ops.push((id, String::new()));
                }
            }
        }
        caps_next = false;
    }
    Ok(fams)
}

fn genl(args: &[&str]) -> Result<Out, String> {
    let mut a = vec!["genl"];
    a.extend(args);
    run_host(&a)
}

fn genl_families(args: &[&str]) -> Result<Vec<GenlFamily>, String> {
    parse_genl(genl(args)?.ok()?)
}

/// The rustnl family as genl shows it, checked against the contract
/// (shared/src/genl.rs): version, the operations (every command that is
/// not an event: doit, with a policy) and the two multicast groups.
fn check_rustnl_family(f: &GenlFamily) -> TestResult {
    ensure!(f.id >= 0x10, "family id {:#x}", f.id);
    ensure!(
        f.version == u64::from(FAMILY_VERSION),
        "version {} in {f:?}",
        f.version
    );
    let ids: Vec<u64> = f.ops.iter().map(|o| o.0).collect();
    let ops: Vec<Cmd> = Cmd::ALL.into_iter().filter(|c| !c.is_event()).collect();
    let want: Vec<u64> = ops.iter().map(|c| u64::from(c.raw())).collect();
    ensure!(
        ids == want,
        "operations {ids:?}, expected {want:?} ({:?}): {f:?}",
        ops.iter().map(|c| c.name()).collect::<Vec<_>>()
    );
    // Older iproute2 (Debian 12's 6.1 among them) prints an operation's
    // capabilities only for a family of version 2 or above, and rustnl is
    // version 1: then none are printed (the flags are checked through YNL's
    // view of nlctrl in t_genl_ctrl); printed ones must be right.
    if f.ops.iter().any(|o| !o.1.is_empty()) {
        for (id, caps) in &f.ops {
            ensure!(
                caps.contains("can doit"),
                "operation {id} cannot doit: {caps:?}"
            );
            // get-info's is the kernel's reject-all policy.
            ensure!(
                caps.contains("has policy"),
                "operation {id} has no policy: {caps:?}"
            );
        }
    }
    let names: Vec<&str> = f.groups.iter().map(|g| g.1.as_str()).collect();
    let want: Vec<&str> = McastGroup::ALL.iter().map(|g| g.name()).collect();
    ensure!(
        names == want,
        "multicast groups {names:?}, expected {want:?}"
    );
    ensure!(
        f.groups.iter().all(|g| g.0 != 0) && f.groups[0].0 != f.groups[1].0,
        "group ids {:?}",
        f.groups
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

/// The host root works as the tools need it: the host's Python runs on the
/// guest kernel, sees the guest's /proc, /lib/modules and /tmp, cannot
/// write the host's files; YNL and genl work on the kernel's own nlctrl
/// family (independent of the module).
pub(crate) fn t_host_root(ctx: &Ctx) -> TestResult {
    require_host_root()?;
    reload(ctx, &[])?;
    let release =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(|e| e.to_string())?;
    let marker = format!("written by the guest at {:?}", Instant::now());
    std::fs::write("/tmp/rustnl-hostroot-probe", &marker).map_err(|e| e.to_string())?;
    let script = r#"
import errno, json, os
r = {"release": os.uname().release,
     "ko": os.path.isfile("/lib/modules/rustnl.ko"),
     "loaded": any(l.startswith("rustnl ") for l in open("/proc/modules")),
     "tmp": open("/tmp/rustnl-hostroot-probe").read()}
try:
    open("/usr/rustnl-hostroot-write-probe", "w")
    r["write"] = "succeeded"
except OSError as e:
    r["write"] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps(r))
"#;
    let v = one_json(&run_host(&[PYTHON, "-c", script])?)?;
    println!("    host python in the guest: {v}");
    ensure!(
        v["release"] == release.trim(),
        "the host's Python runs on {v}, the guest is {release:?}"
    );
    ensure!(
        v["ko"] == true,
        "the guest's /lib/modules/rustnl.ko is not in the host root: {v}"
    );
    ensure!(
        v["loaded"] == true,
        "the host root's /proc is not the guest's: {v}"
    );
    ensure!(
        v["tmp"] == marker.as_str(),
        "the host root's /tmp is not the guest's: {v}"
    );
    ensure!(
        v["write"] == "EROFS",
        "writing into the host root: {v} (expected EROFS)"
    );

    // YNL with an in-tree spec, on the kernel's own controller family.
    let ynl = Ynl::new()?;
    let v = one_json(&ynl.nlctrl_getfamily("nlctrl")?)?;
    ensure!(
        v["family-name"] == "nlctrl" && num(&v, "family-id")? == GENL_ID_CTRL,
        "ynl nlctrl getfamily nlctrl: {v}"
    );
    ensure!(
        indexed(&v, "mcast-groups")?
            .iter()
            .any(|g| g["name"] == "notify"),
        "nlctrl has no notify group: {v}"
    );
    // genl lists it too.
    let fams = genl_families(&["ctrl", "list"])?;
    ensure!(
        fams.iter()
            .any(|f| f.name == "nlctrl" && f.id == GENL_ID_CTRL),
        "genl ctrl list has no nlctrl: {fams:?}"
    );
    Ok(())
}

/// `genl ctrl list` and `genl ctrl get name rustnl` show the family with its
/// operations and groups while the module is loaded (YNL's view of nlctrl
/// agrees, flags included), and nothing once it is unloaded.
pub(crate) fn t_genl_ctrl(ctx: &Ctx) -> TestResult {
    require_host_root()?;
    reload(ctx, &[])?;
    let fams = genl_families(&["ctrl", "list"])?;
    let f = fams.iter().find(|f| f.name == FAMILY_NAME).ok_or(format!(
        "genl ctrl list has no {FAMILY_NAME}: {:?}",
        fams.iter().map(|f| &f.name).collect::<Vec<_>>()
    ))?;
    println!("    genl ctrl list: {f:?}");
    check_rustnl_family(f)?;
    let got = genl_families(&["ctrl", "get", "name", FAMILY_NAME])?;
    ensure!(
        got.len() == 1 && &got[0] == f,
        "genl ctrl get name rustnl: {got:?}, list: {f:?}"
    );

    // The same through YNL and the kernel's nlctrl spec, with the flags.
    let ynl = Ynl::new()?;
    let v = one_json(&ynl.nlctrl_getfamily(FAMILY_NAME)?)?;
    ensure!(
        num(&v, "family-id")? == f.id && num(&v, "version")? == f.version,
        "ynl: {v}, genl: {f:?}"
    );
    let ops = indexed(&v, "ops")?;
    let n = Cmd::ALL.iter().filter(|c| !c.is_event()).count();
    ensure!(ops.len() == n, "ynl nlctrl ops: {ops:?}, the spec has {n}");
    for op in &ops {
        let id = num(op, "id")?;
        let flags: Vec<&str> = op["flags"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        ensure!(flags.contains(&"cmd-cap-do"), "op {id} flags {flags:?}");
        // Echo, broadcast and set-groups have their own policy; get-info
        // has none, and the kernel gives such an op its reject-all policy
        // (genl_policy_reject_all): all report one.
        ensure!(
            flags.contains(&"cmd-cap-haspol"),
            "op {id} flags {flags:?}: no policy"
        );
        let admin = flags.contains(&"uns-admin-perm") || flags.contains(&"admin-perm");
        if id == u64::from(Cmd::Broadcast.raw()) {
            ensure!(
                flags.contains(&"uns-admin-perm"),
                "broadcast flags {flags:?}"
            );
        } else {
            ensure!(!admin, "op {id} needs no privilege, flags {flags:?}");
        }
    }
    let groups: Vec<(u64, String)> = indexed(&v, "mcast-groups")?
        .iter()
        .map(|g| Ok((num(g, "id")?, g["name"].as_str().unwrap_or("").to_string())))
        .collect::<Result<_, String>>()?;
    ensure!(
        groups == f.groups,
        "ynl groups {groups:?}, genl {:?}",
        f.groups
    );

    // Unloaded: gone from the controller.
    rmmod()?;
    let fams = genl_families(&["ctrl", "list"])?;
    ensure!(
        !fams.iter().any(|f| f.name == FAMILY_NAME),
        "genl ctrl list still has {FAMILY_NAME} after rmmod"
    );
    let out = genl(&["ctrl", "get", "name", FAMILY_NAME])?;
    ensure!(
        out.code != Some(0) && out.stderr.contains("No such file or directory"),
        "genl ctrl get name rustnl after rmmod: exit {:?}, {:?} {:?}",
        out.code,
        out.stdout,
        out.stderr
    );
    let out = ynl.rustnl(&["--do", Cmd::GetInfo.name()])?;
    ensure!(
        out.code != Some(0) && out.stderr.contains("not supported by the kernel"),
        "ynl get-info without the module: exit {:?}, {:?} {:?}",
        out.code,
        out.stdout,
        tail(&out.stderr, 3)
    );
    insmod(ctx, &[])?;
    let got = genl_families(&["ctrl", "get", "name", FAMILY_NAME])?;
    ensure!(got.len() == 1, "not registered again after insmod: {got:?}");
    check_rustnl_family(&got[0])
}

/// `ynl --do echo` returns the bytes it sent (empty, small, 1000 and 32 KiB);
/// `ynl --do get-info` shows the module's parameters (the same as the
/// classic face's INFO) and counters that say which face served what.
pub(crate) fn t_ynl_echo_info(ctx: &Ctx) -> TestResult {
    require_host_root()?;
    reload(ctx, &["groups=64", "max_payload=40000"])?;
    let ynl = Ynl::new()?;
    let before = ynl.get_info()?;
    println!("    get-info: {before}");
    let mut classic = connect(DEFAULT_UNIT)?;
    let info = classic.info().map_err(|e| e.to_string())?;
    ensure!(
        num(&before, "version")? == u64::from(info.version)
            && num(&before, "unit")? == u64::from(info.unit)
            && num(&before, "groups")? == 64
            && num(&before, "max-payload")? == 40000
            && num(&before, "heartbeat-ms")? == 0
            && before.get("open-broadcast").is_none(),
        "ynl get-info {before}, classic INFO {info:?} (loaded with groups=64 max_payload=40000)"
    );

    let payloads = [
        b"Hello from ynl!".to_vec(),
        pattern(1000, 7),
        pattern(32 * 1024, 3),
    ];
    for p in &payloads {
        let json = format!("{{\"payload\": \"{}\"}}", hex(p));
        let (reply, _) = ynl.do_ok(Cmd::Echo.name(), Some(&json))?;
        ensure!(
            reply["payload"].as_str() == Some(hex(p).as_str()),
            "echo of {} bytes came back as {}",
            p.len(),
            reply.to_string().chars().take(200).collect::<String>()
        );
    }
    // No payload attribute: an empty payload.
    let (reply, _) = ynl.do_ok(Cmd::Echo.name(), None)?;
    ensure!(
        reply.is_null()
            || reply.as_object().is_some_and(|o| o.is_empty())
            || reply["payload"] == "",
        "echo without a payload: {reply}"
    );
    let genl_echoes = payloads.len() as u64 + 1;
    // One echo on the classic face in between.
    ensure!(
        classic.echo(b"classic").map_err(|e| e.to_string())? == b"classic",
        "classic echo"
    );

    let after = ynl.get_info()?;
    println!("    get-info after {genl_echoes} ynl echoes and 1 classic echo: {after}");
    let delta = |face: &str, c: &str| -> Result<u64, String> {
        Ok(num(&after[face], c)? - num(&before[face], c)?)
    };
    ensure!(
        delta("genl-counters", "echoes")? == genl_echoes,
        "genl echoes went up by {}, not {genl_echoes}",
        delta("genl-counters", "echoes")?
    );
    ensure!(
        delta("genl-counters", "requests")? >= genl_echoes,
        "genl requests went up by {} for {genl_echoes} echoes",
        delta("genl-counters", "requests")?
    );
    ensure!(
        delta("classic-counters", "echoes")? == 1,
        "classic echoes went up by {}, not 1",
        delta("classic-counters", "echoes")?
    );
    drop(classic);
    reload(ctx, &[])
}

/// `ynl --subscribe events` receives the event that a `ynl --do broadcast`
/// (group 3) caused: group, origin port (the broadcasting process), event
/// sequence number (the one in the broadcast's reply) and payload; and
/// `--subscribe heartbeat` gets the heartbeats.
pub(crate) fn t_ynl_subscribe(ctx: &Ctx) -> TestResult {
    require_host_root()?;
    reload(ctx, &[])?;
    let ynl = Ynl::new()?;
    let mut listener = ynl.listen(&[
        "--subscribe",
        McastGroup::Events.name(),
        "--duration",
        "120",
    ])?;
    let result = subscribe_and_broadcast(&ynl, &mut listener);
    drop(listener);
    result?;

    // Heartbeats on the other group.
    reload(ctx, &["heartbeat_ms=300"])?;
    let out = ynl.rustnl(&[
        "--subscribe",
        McastGroup::Heartbeat.name(),
        "--duration",
        "3",
    ])?;
    let events = crate::json_lines(out.ok()?.trim())?;
    ensure!(
        events.len() >= 2,
        "{} heartbeats in 3 s at 300 ms: {events:?}",
        events.len()
    );
    let mut last_seq = None;
    for e in &events {
        let m = &e["msg"];
        ensure!(
            e["name"] == Cmd::Heartbeat.name()
                && num(m, "group")? == 1
                && num(m, "origin-portid")? == 0
                && m["payload"].as_str() == Some(hex(b"Greeting from kernel!").as_str()),
            "heartbeat {e}"
        );
        let seq = num(m, "event-seq")?;
        ensure!(
            last_seq.is_none_or(|s| seq > s),
            "event-seq {seq} after {last_seq:?}"
        );
        last_seq = Some(seq);
    }
    reload(ctx, &[])
}

/// A `ynl` listener running on the host ([`Ynl::listen`]).
struct YnlListener {
    child: Child,
    /// Its stdout, a line each.
    lines: mpsc::Receiver<String>,
}

/// An error with the end of the listener's stderr if it has exited (a
/// function of the child alone, so that a closure may read the listener's
/// lines meanwhile).
fn still_listening(child: &mut Child) -> TestResult {
    if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return Err(format!("the ynl listener exited ({st}): {}", tail(&err, 6)));
    }
    Ok(())
}

impl Drop for YnlListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn subscribe_and_broadcast(ynl: &Ynl, listener: &mut YnlListener) -> TestResult {
    let payload = b"an event through ynl";
    let json = format!("{{\"group\": 3, \"payload\": \"{}\"}}", hex(payload));
    // The listener joins once Python has started: until then nobody
    // listens (neither flag set), so broadcast until one is delivered.
    let deadline = Instant::now() + Duration::from_secs(100);
    let (seq, origin, reply) = loop {
        still_listening(&mut listener.child)?;
        ensure!(
            Instant::now() < deadline,
            "no broadcast was delivered to the ynl listener in 100 s"
        );
        let (reply, pid) = ynl.do_ok(Cmd::Broadcast.name(), Some(&json))?;
        ensure!(
            num(&reply, "group")? == 3 && reply["event-seq"].is_u64(),
            "broadcast reply {reply}"
        );
        ensure!(
            reply.get("delivery-failed").is_none(),
            "broadcast reply {reply}"
        );
        if reply["delivered"] == true {
            break (num(&reply, "event-seq")?, pid, reply);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("    broadcast reply: {reply}");
    let line = listener
        .lines
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the ynl listener printed nothing after a delivered broadcast".to_string())?;
    let e: Value =
        serde_json::from_str(&line).map_err(|err| format!("listener printed {line:?}: {err}"))?;
    println!("    ynl --subscribe events: {e}");
    let m = &e["msg"];
    ensure!(e["name"] == Cmd::Event.name(), "listener got {e}");
    ensure!(num(m, "group")? == 3, "event group: {e}");
    ensure!(
        m["payload"].as_str() == Some(hex(payload).as_str()),
        "event payload: {e}"
    );
    ensure!(
        num(m, "origin-portid")? == u64::from(origin),
        "event origin {} is not the broadcasting ynl's port {origin}: {e}",
        m["origin-portid"]
    );
    ensure!(
        num(m, "event-seq")? == seq,
        "event seq vs reply seq {seq}: {e}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos() as u64;
    let ts = num(m, "timestamp-ns")?;
    ensure!(
        ts <= now && now - ts < 60_000_000_000,
        "event timestamp {ts} ns, now {now} ns"
    );
    Ok(())
}

/// `set-groups` as YNL encodes it from the spec (`listen-group` is
/// `multi-attr`: a JSON list, one attribute each): a `ynl --subscribe
/// events` that chose group 3 on its own socket gets group 3's events and
/// no group 2's, and a broadcast to group 2 is not delivered while it is
/// the only listener.
pub(crate) fn t_ynl_set_groups(ctx: &Ctx) -> TestResult {
    require_host_root()?;
    reload(ctx, &[])?;
    let ynl = Ynl::new()?;
    let mut listener = ynl.listen(&[
        "--subscribe",
        McastGroup::Events.name(),
        "--do",
        Cmd::SetGroups.name(),
        "--json",
        "{\"listen-group\": [3, 4]}",
        "--duration",
        "180",
    ])?;
    set_groups_then_broadcast(&ynl, &mut listener)
}

fn set_groups_then_broadcast(ynl: &Ynl, listener: &mut YnlListener) -> TestResult {
    // The next event the listener prints (the set-groups reply, none, is
    // printed as `null` first).
    let next_event = || -> Result<Value, String> {
        loop {
            let line = listener
                .lines
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "the ynl listener printed no event".to_string())?;
            if line.trim() == "null" {
                continue;
            }
            return serde_json::from_str(&line)
                .map_err(|err| format!("listener printed {line:?}: {err}"));
        }
    };
    let broadcast = |group: u32, text: &[u8]| -> Result<Value, String> {
        let json = format!("{{\"group\": {group}, \"payload\": \"{}\"}}", hex(text));
        Ok(ynl.do_ok(Cmd::Broadcast.name(), Some(&json))?.0)
    };
    // Until the listener has chosen and joined, nobody listens to group 3.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        still_listening(&mut listener.child)?;
        ensure!(
            Instant::now() < deadline,
            "no broadcast to group 3 was delivered to the ynl listener in 120 s"
        );
        if broadcast(3, b"probe")?["delivered"] == true {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let e = next_event()?;
    ensure!(
        e["name"] == Cmd::Event.name() && num(&e["msg"], "group")? == 3,
        "the ynl listener got {e}"
    );
    let reply = broadcast(2, b"two")?;
    ensure!(
        reply.get("delivered").is_none() && reply.get("delivery-failed").is_none(),
        "a broadcast to group 2 with one listener, of groups 3 and 4: {reply}"
    );
    let reply = broadcast(4, b"four")?;
    ensure!(
        reply["delivered"] == true,
        "a broadcast to group 4: {reply}"
    );
    let e = next_event()?;
    let m = &e["msg"];
    ensure!(
        num(m, "group")? == 4 && m["payload"].as_str() == Some(hex(b"four").as_str()),
        "after the group 2 broadcast the ynl listener got {e}, not group 4's event"
    );
    println!("    ynl --subscribe events --do set-groups: {e}");
    Ok(())
}

/// What the policy and the permission checks refuse, as YNL shows it: group
/// 0 and group 1025 (outside the policy's 1..1024: ERANGE, "integer out of
/// range", the attribute and the policy), a group above the groups parameter
/// (EINVAL with the module's text), broadcast without CAP_NET_ADMIN (EPERM
/// unless open_broadcast=1); `--policy` shows the policy itself.
pub(crate) fn t_ynl_errors(ctx: &Ctx) -> TestResult {
    require_host_root()?;
    reload(ctx, &["groups=32"])?;
    let ynl = Ynl::new()?;
    for group in [0, GROUP_MAX + 1] {
        let json = format!("{{\"group\": {group}, \"payload\": \"00\"}}");
        let text = ynl.do_err(&[], Cmd::Broadcast.name(), &json)?;
        println!("    group {group}: {text}");
        for want in [
            "integer out of range",
            "Numerical result out of range",
            "'bad-attr': '.group'",
            "'min-value': 1",
            &format!("'max-value': {GROUP_MAX}"),
        ] {
            ensure!(
                text.contains(want),
                "group {group}: no {want:?} in {text:?}"
            );
        }
    }
    // In the policy's range but above groups=32: the module's own check.
    let text = ynl.do_err(
        &[],
        Cmd::Broadcast.name(),
        "{\"group\": 33, \"payload\": \"00\"}",
    )?;
    println!("    group 33 of 32: {text}");
    let msg = text
        .strip_prefix("Netlink error: ")
        .and_then(|t| t.split(": Invalid argument").next())
        .filter(|m| !m.is_empty() && !m.starts_with("Invalid argument"))
        .ok_or(format!(
            "group 33: no EINVAL with an ext-ack text: {text:?}"
        ))?;
    ensure!(
        msg.contains("33"),
        "group 33: the ext-ack text {msg:?} does not name the group"
    );

    // The policy as the kernel reports it.
    let out = ynl.rustnl(&["--do", Cmd::Broadcast.name(), "--policy"])?;
    let pol = one_json(&out)?;
    println!("    broadcast policy: {pol}");
    ensure!(
        pol["group"]["type"] == "u32"
            && num(&pol["group"], "min-value")? == 1
            && num(&pol["group"], "max-value")? == u64::from(GROUP_MAX),
        "group policy: {pol}"
    );
    ensure!(
        num(&pol["payload"], "max-length")? == rustnl_shared::genl::MAX_ATTR_PAYLOAD as u64,
        "payload policy: {pol}"
    );

    // Without CAP_NET_ADMIN (root, but not in the bounding set).
    let unpriv = [
        "/usr/bin/setpriv",
        "--bounding-set=-net_admin",
        "--inh-caps=-net_admin",
    ];
    let json = format!(
        "{{\"group\": 5, \"payload\": \"{}\"}}",
        hex(b"unprivileged")
    );
    let text = ynl.do_err(&unpriv, Cmd::Broadcast.name(), &json)?;
    println!("    without CAP_NET_ADMIN: {text}");
    ensure!(
        text.contains("Operation not permitted"),
        "unprivileged broadcast: {text:?}"
    );
    let out = ynl.rustnl_as(
        &unpriv,
        &[
            "--do",
            Cmd::Echo.name(),
            "--json",
            "{\"payload\": \"6869\"}",
        ],
    )?;
    ensure!(
        one_json(&out)?["payload"] == "6869",
        "unprivileged echo: {:?}",
        out.stdout
    );
    reload(ctx, &["open_broadcast=1"])?;
    let out = ynl.rustnl_as(&unpriv, &["--do", Cmd::Broadcast.name(), "--json", &json])?;
    let reply = one_json(&out)?;
    ensure!(
        num(&reply, "group")? == 5,
        "open_broadcast=1, unprivileged broadcast: {reply}"
    );
    ensure!(
        ynl.get_info()?["open-broadcast"] == true,
        "get-info does not say open-broadcast"
    );
    reload(ctx, &[])
}

/// This file's tests, in the order they run, with what each needs.
pub(crate) const TESTS: &[Test] = &[
    Test::new("tools_host_root_runs_host_programs", t_host_root).host_root(),
    Test::new("tools_genl_ctrl_lists_the_family", t_genl_ctrl).host_root(),
    Test::new("tools_ynl_echo_and_get_info", t_ynl_echo_info).host_root(),
    Test::new("tools_ynl_subscribe_sees_broadcast", t_ynl_subscribe).host_root(),
    Test::new(
        "tools_ynl_set_groups_narrows_a_subscription",
        t_ynl_set_groups,
    )
    .host_root(),
    Test::new("tools_ynl_policy_and_permission_errors", t_ynl_errors).host_root(),
];
