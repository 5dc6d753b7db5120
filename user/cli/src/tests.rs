//! Argument parsing and validation (no kernel needed): every bound of issue
//! 14's list, and a property test over the argument grammar.

use crate::args::*;
use crate::commands::*;
use crate::hints::*;
use crate::man;
use crate::output::*;
use crate::plan::*;
use clap::error::ErrorKind;
use clap::CommandFactory;
use proptest::prelude::*;
use rustnl::families::proc_events::{self, ProcEvent};
use rustnl::families::route;
use rustnl::families::table;
use rustnl::proto::genl::McastGroup;
use rustnl::proto::{DEFAULT_UNIT, KERNEL_EVENT_GROUP};
use rustnl::{Error, GenlInfo, ModuleError, DEFAULT_TIMEOUT};
use std::time::Duration;

fn plan_of(args: &[&str]) -> Result<Plan, clap::Error> {
    plan_from(std::iter::once("rustnl").chain(args.iter().copied()))
}

fn usage_kind(args: &[&str]) -> ErrorKind {
    match plan_of(args) {
        Ok(p) => panic!("{args:?} parsed as {p:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
            e.kind()
        }
    }
}

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

// 1. Sizes, counts and batches are bounded; no capacity overflow.
#[test]
fn huge_sizes_counts_and_batches_are_usage_errors() {
    for args in [
        &["--unit", "0", "echo", "--size", "18446744073709551615"][..],
        &["echo", "--size", "1048577"],
        &["echo", "--count", "18446744073709551615"],
        &["echo", "--count", "0"],
        &["echo", "--batch", "0"],
        &["echo", "--batch", "4097"],
    ] {
        assert_eq!(usage_kind(args), ErrorKind::ValueValidation, "{args:?}");
    }
    // 4096 echoes of 1 MiB would be a 4 GiB datagram.
    assert_eq!(
        usage_kind(&["echo", "--size", "1048576", "--batch", "4096"]),
        ErrorKind::ValueValidation
    );
    assert_eq!(
        usage_kind(&["echo", "--size", "-1"]),
        ErrorKind::UnknownArgument
    );
    let Plan::Echo { payload, .. } = plan_of(&["echo", "--size", "1048576"]).unwrap() else {
        panic!()
    };
    assert_eq!(payload.len(), 1 << 20);
}

/// A `--size` past the protocol's limit names the limit, max_payload's
/// largest value, in one line (before: "1048577 is not in 0..=1048576").
#[test]
fn a_size_past_the_limit_names_it() {
    let e = plan_of(&["echo", "--size", "1048577"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueValidation);
    let text = usage_text(&e);
    assert_eq!(
        text,
        "rustnl: invalid value '1048577' for '--size <SIZE>': 1048577 bytes is more than 1048576, the protocol's limit: the largest max_payload the module can be loaded with (`rustnl info` shows the loaded module's max_payload) (see `rustnl --help`)"
    );
    let text = usage_text(&plan_of(&["echo", "--size", "1MiB"]).unwrap_err());
    assert!(
        text.contains("`1MiB` is not a size in bytes") && !text.contains('\n'),
        "{text}"
    );
    assert_eq!(payload_size(" 0 "), Ok(0));
    assert_eq!(payload_size("1048576"), Ok(1 << 20));
}

// 6. --timeout: humantime, 0/none/forever; --unit only where it means
// something; groups bounded.
#[test]
fn timeouts_parse_with_humantime_and_a_forever_spelling() {
    assert_eq!(
        parse_timeout("500ms"),
        Ok(Wait::For(Duration::from_millis(500)))
    );
    assert_eq!(parse_timeout("2s"), Ok(Wait::For(Duration::from_secs(2))));
    assert_eq!(
        parse_timeout("1m 30s"),
        Ok(Wait::For(Duration::from_secs(90)))
    );
    assert_eq!(
        parse_timeout("2h"),
        Ok(Wait::For(Duration::from_secs(7200)))
    );
    assert_eq!(
        parse_timeout("1us"),
        Ok(Wait::For(Duration::from_micros(1)))
    );
    for forever in ["0", "0s", "none", "forever"] {
        assert_eq!(parse_timeout(forever), Ok(Wait::Forever), "{forever}");
    }
    for bad in ["", "x", "2 parsecs", "-1s"] {
        assert!(parse_timeout(bad).is_err(), "{bad}");
    }
    // A timeout so long that now + it overflows means forever, not a panic.
    assert_eq!(deadline(Wait::For(Duration::MAX)), None);
    assert!(parse_timeout("500000000years").is_ok());
}

#[test]
fn module_options_after_the_command_and_before_it() {
    let t = |args: &[&str]| match plan_of(args).unwrap() {
        Plan::Echo { target, .. } | Plan::Info { target } => target,
        p => panic!("{p:?}"),
    };
    assert_eq!(
        t(&["echo", "hi"]),
        Target {
            unit: 31,
            timeout: Wait::For(Duration::from_secs(2)),
            json: false,
            genl: false,
        }
    );
    assert_eq!(
        t(&["echo", "--unit", "30", "--timeout", "none", "--json", "hi"]),
        Target {
            unit: 30,
            timeout: Wait::Forever,
            json: true,
            genl: false,
        }
    );
    assert_eq!(t(&["--unit", "30", "--json", "info"]).unit, 30);
    assert_eq!(
        usage_kind(&["echo", "--unit", "32", "x"]),
        ErrorKind::ValueValidation
    );
}

#[test]
fn unit_is_refused_where_it_means_nothing() {
    for args in [
        &["--unit", "30", "families"][..],
        &["--unit", "30", "watch", "exec"],
        &["--unit", "30", "man"],
        &["--unit", "30", "completions", "bash"],
        &["--json", "man"],
    ] {
        assert_eq!(usage_kind(args), ErrorKind::ArgumentConflict, "{args:?}");
    }
    for args in [
        &["families", "--unit", "30"][..],
        &["watch", "route", "--unit", "30"],
        &["man", "--timeout", "1s"],
    ] {
        assert_eq!(usage_kind(args), ErrorKind::UnknownArgument, "{args:?}");
    }
    // Help shows no global --unit: each command lists its own options.
    let help = Cli::command().render_long_help().to_string();
    let option = |h: &str, o: &str| h.lines().any(|l| l.trim_start().starts_with(o));
    assert!(
        !option(&help, "--unit") && !option(&help, "--timeout"),
        "{help}"
    );
    let mut cmd = Cli::command();
    let families = cmd.find_subcommand_mut("families").unwrap();
    let help = families.render_long_help().to_string();
    assert!(
        !option(&help, "--unit") && option(&help, "--json"),
        "{help}"
    );
    let echo = cmd.find_subcommand_mut("echo").unwrap();
    let help = echo.render_long_help().to_string();
    assert!(
        option(&help, "--unit") && help.contains("Module:"),
        "{help}"
    );
}

#[test]
fn groups_are_bounded_at_parse_time() {
    assert_eq!(
        usage_kind(&["listen", "--group", "0"]),
        ErrorKind::ValueValidation
    );
    assert_eq!(
        usage_kind(&["listen", "--group", "1,1025"]),
        ErrorKind::ValueValidation
    );
    assert_eq!(
        usage_kind(&["broadcast", "--group", "0", "x"]),
        ErrorKind::ValueValidation
    );
    assert!(matches!(
        plan_of(&["listen", "-g", "1,2", "--group", "1024"]).unwrap(),
        Plan::Listen { groups, .. } if groups == [1, 2, 1024]
    ));
}

#[test]
fn watchers_take_timeout_count_timestamp_and_filters() {
    let Plan::WatchRoute { watching, groups } =
        plan_of(&["watch", "route", "--routes", "-t", "--timeout", "1s"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(groups, route::groups::ROUTES);
    assert!(watching.timestamp);
    assert_eq!(watching.stop_after, Wait::For(Duration::from_secs(1)));
    let Plan::WatchRoute { groups, watching } = plan_of(&["watch", "route"]).unwrap() else {
        panic!()
    };
    assert_eq!(groups, route::groups::ALL);
    assert_eq!(watching.stop_after, Wait::Forever);
    let Plan::WatchRoute { groups, .. } =
        plan_of(&["watch", "route", "--links", "--addresses"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(groups, route::groups::LINKS | route::groups::ADDRESSES);
    assert!(matches!(
        plan_of(&["--json", "watch", "exec", "--count", "3"]).unwrap(),
        Plan::WatchExec(Watching {
            count: Some(3),
            json: true,
            ..
        })
    ));
    assert_eq!(
        usage_kind(&["watch", "exec", "--count", "0"]),
        ErrorKind::ValueValidation
    );
}

#[test]
fn timeout_ends_a_watch_without_an_error() {
    let end = deadline(Wait::For(Duration::from_millis(1)));
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(left(end), Err(()));
    assert_eq!(left(None), Ok(None));
}

// 2. Exit code and signal, separately.
#[test]
fn exit_events_show_code_or_signal() {
    use rustnl::families::proc_events::ExitStatus;
    let exit = |status: u32| {
        // The library's decoder builds these; here from a wait status.
        let e = decode_exit(status);
        (
            proc_text(&e, None).unwrap(),
            serde_json::to_string(&Watched {
                event: &e,
                comm: None,
                dev: None,
                timestamp: None,
            })
            .unwrap(),
        )
    };
    fn decode_exit(status: u32) -> ProcEvent {
        // Round trip through the connector's wire format.
        let mut buf = vec![0u8; 20 + 40];
        buf[0..4].copy_from_slice(&1u32.to_ne_bytes()); // CN_IDX_PROC
        buf[4..8].copy_from_slice(&1u32.to_ne_bytes()); // CN_VAL_PROC
        buf[20..24].copy_from_slice(&0x8000_0000u32.to_ne_bytes()); // EXIT
        let d = 20 + 16;
        buf[d..d + 4].copy_from_slice(&7i32.to_ne_bytes());
        buf[d + 4..d + 8].copy_from_slice(&7i32.to_ne_bytes());
        buf[d + 8..d + 12].copy_from_slice(&status.to_ne_bytes());
        buf[d + 16..d + 20].copy_from_slice(&1i32.to_ne_bytes());
        proc_events::decode(&buf).unwrap()
    }
    let (text, json) = exit(3 << 8);
    assert_eq!(text, "exit pid=7 tgid=7 code=3 parent=1");
    assert!(
        json.starts_with(r#"{"type":"exit","pid":7,"tgid":7,"exit_code":3,"signal":null,"#),
        "{json}"
    );
    let (text, json) = exit(9);
    assert_eq!(text, "exit pid=7 tgid=7 signal=9 (SIGKILL) parent=1");
    assert!(json.contains(r#""exit_code":null,"signal":9,"core_dumped":false,"wait_status":9"#));
    assert_eq!(ExitStatus::from_wait_status(0).exit_code, Some(0));
}

// 4. JSON: `type` first, field order from the library's types.
#[test]
fn json_records_start_with_type() {
    let info = rustnl::proto::Info {
        version: 1,
        unit: 31,
        groups: 32,
        max_payload: 65536,
        heartbeat_ms: 0,
        open_broadcast: false,
        counters: Default::default(),
    };
    let j = serde_json::to_string(&Tagged {
        ty: "info",
        value: &info,
    })
    .unwrap();
    assert!(
        j.starts_with(
            r#"{"type":"info","protocol_version":1,"unit":31,"groups":32,"max_payload":65536,"heartbeat_ms":0,"open_broadcast":false,"counters":{"requests":0,"echoes":0,"#
        ),
        "{j}"
    );
    assert!(j.contains(r#""errors_invalid":0"#));
    let f = table::Unit {
        unit: 0,
        name: "route",
        kernel: true,
        users: vec![table::User {
            port_id: 5,
            process: None,
        }],
    };
    let j = serde_json::to_string(&Tagged {
        ty: "family",
        value: &f,
    })
    .unwrap();
    assert_eq!(
        j,
        r#"{"type":"family","unit":0,"name":"route","kernel":true,"users":[{"port_id":5,"process":null}]}"#
    );
    let r = rustnl::proto::BroadcastResult {
        group: 12,
        delivered: false,
        delivery_failed: false,
        event_seq: 4,
    };
    let j = serde_json::to_string(&Tagged {
        ty: "broadcast",
        value: &r,
    })
    .unwrap();
    assert_eq!(
        j,
        r#"{"type":"broadcast","group":12,"delivered":false,"delivery_failed":false,"event_seq":4}"#
    );
}

// 5. Route events: table by name in JSON as in the text; dev for IPv6.
#[test]
fn route_json_names_the_table_like_the_text() {
    use rustnl::proto::Messages;
    let mut payload = vec![libc::AF_INET6 as u8, 128, 0, 0, 254, 2, 0, 1, 0, 0, 0, 0];
    // RTA_OIF = 4
    payload.extend_from_slice(&8u16.to_ne_bytes());
    payload.extend_from_slice(&4u16.to_ne_bytes());
    payload.extend_from_slice(&1u32.to_ne_bytes());
    let mut b = rustnl::MessageBuilder::new();
    b.push(libc::RTM_NEWROUTE, 0, 0, &payload).unwrap();
    let m = Messages::new(b.as_bytes()).next().unwrap().unwrap();
    let e = route::decode(&m).unwrap().unwrap();
    let j = serde_json::to_string(&Watched {
        event: &e,
        comm: None,
        dev: Some("lo".into()),
        timestamp: Some("2026-01-01T00:00:00.000000Z".into()),
    })
    .unwrap();
    assert_eq!(
        j,
        r#"{"type":"route","change":"new","kind":"unicast","dst":null,"dst_len":128,"gateway":null,"oif":1,"table":"main","protocol":"kernel","scope":"global","src":null,"metric":null,"dev":"lo","timestamp":"2026-01-01T00:00:00.000000Z"}"#
    );
    let mut text = String::new();
    route::format_with(&e, &mut text, |_| Some("lo".into())).unwrap();
    assert_eq!(
        text,
        "route new unicast default dev lo table main proto kernel scope global"
    );
}

// 9. The man page refers to no other page and has EXAMPLES and EXIT STATUS.
#[test]
fn man_page_is_self_contained() {
    let mut out = Vec::new();
    man::render(&Cli::command(), &mut out).unwrap();
    let page = String::from_utf8(out).unwrap();
    assert!(!page.contains("(1)"), "refers to other pages:\n{page}");
    for section in [
        ".SH COMMANDS",
        ".SH \"EXIT STATUS\"",
        ".SH EXAMPLES",
        ".SH \"JSON OUTPUT\"",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    for cmd in [
        "rustnl echo",
        "rustnl watch exec",
        "rustnl watch route",
        "rustnl families",
        "rustnl genl list",
        "rustnl genl show",
    ] {
        assert!(page.contains(&format!(".SS \"{cmd}")), "no {cmd}");
    }
    assert!(page.contains("\\-\\-timestamp") && page.contains("\\-\\-size <SIZE>"));
    assert!(!page.contains("[default: false]") && !page.contains("possible values: true"));
}

// 8. The not-loaded hint is the CLI's, not the library's.
#[test]
fn not_loaded_error_gets_the_cli_hint() {
    let lib = Error::from(ModuleError::NotLoaded { unit: 31 }).to_string();
    assert!(!lib.contains("--unit") && !lib.contains("insmod"), "{lib}");
    let Failure(msg) = module_failure(
        Target {
            unit: 30,
            timeout: Wait::For(DEFAULT_TIMEOUT),
            json: false,
            genl: false,
        },
        ModuleError::NotLoaded { unit: 30 }.into(),
    );
    assert!(
        msg.contains(&load_how(30, &RunningKernel::now()))
            && msg.contains("rustnl families")
            && !msg.contains('\n'),
        "{msg}"
    );
}

/// The advice fits the running kernel: `make module` builds for the
/// project's test kernel only; Debian's stock kernel has `make
/// stock-module` and DKMS; any other kernel DKMS (before: `make module &&
/// sudo insmod kmod/rustnl.ko` whatever ran).
#[test]
fn load_advice_fits_the_running_kernel() {
    let clang = "Linux version 7.3.4 (root@build) (clang version 19.1.7, LLD 19.1.7) #1 SMP";
    let gcc = "Linux version 7.3.4+deb13-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-14)";
    assert_eq!(RunningKernel::from("7.3.4\n", clang), RunningKernel::Test);
    assert_eq!(
        RunningKernel::from("7.3.4+deb13-amd64", gcc),
        RunningKernel::DebianStock("7.3.4+deb13-amd64".into())
    );
    assert_eq!(
        RunningKernel::from(
            "6.18.44-fc-v1252",
            "Linux version 6.18.44 (gcc (GCC) 15.3.0)"
        ),
        RunningKernel::Other("6.18.44-fc-v1252".into())
    );
    assert_eq!(
        RunningKernel::from("7.3.4", "Linux version 7.3.4 (gcc 14)"),
        RunningKernel::Other("7.3.4".into())
    );
    let test = load_how(30, &RunningKernel::Test);
    assert!(
        test.contains("make module && sudo insmod kmod/rustnl.ko unit=30"),
        "{test}"
    );
    let stock = load_how(31, &RunningKernel::DebianStock("7.3.4+deb13-amd64".into()));
    for word in [
        "7.3.4+deb13-amd64",
        "make stock-module",
        "insmod build/stock/rustnl.ko",
        "dkms install rustnl/",
        "modprobe rustnl`",
    ] {
        assert!(stock.contains(word), "{word}: {stock}");
    }
    assert!(stock.contains("does not build for"), "{stock}");
    // Debian sid's (and forky's) 7.2 line.
    let sid_release = "7.2.13+deb14-amd64";
    assert_eq!(
        RunningKernel::from(
            sid_release,
            "Linux version 7.2.13+deb14-amd64 (x86_64-linux-gnu-gcc-16)"
        ),
        RunningKernel::DebianStock(sid_release.into())
    );
    let sid = load_how(31, &RunningKernel::DebianStock(sid_release.into()));
    for word in [
        sid_release,
        "make stock-module STOCK=sid",
        "insmod build/stock-sid/rustnl.ko",
        "insmod kmod/rustnl.ko",
        "modprobe rustnl`",
    ] {
        assert!(sid.contains(word), "{word}: {sid}");
    }
    // Releases as /proc gives them (a newline), other point releases of
    // both lines, and sid's line once it moves to 7.3 (STOCK=sid builds
    // for whatever sid's linux-image-amd64 is; before: "neither one of
    // Debian's stock Rust kernels (7.3, 7.2)").
    let gcc = "Linux version (x86_64-linux-gnu-gcc-14)";
    for (release, stock) in [
        ("7.3.12+deb13-amd64\n", "make stock-module` in"),
        ("7.3.1+deb13-amd64", "make stock-module` in"),
        ("7.2.9+deb14-amd64\n", "make stock-module STOCK=sid`"),
        ("7.2.13+deb14-amd64", "make stock-module STOCK=sid`"),
        ("7.3.2+deb14-amd64", "make stock-module STOCK=sid`"),
    ] {
        let k = RunningKernel::from(release, gcc);
        assert_eq!(k, RunningKernel::DebianStock(release.trim().into()));
        let how = load_how(31, &k);
        assert!(
            how.contains(stock) && how.contains(&format!("stock kernel {}", release.trim())),
            "{release}: {how}"
        );
    }
    // Not lines `make stock-module` builds for: trixie never had a 7.2
    // (its default is trixie-backports' 7.3), other flavours and
    // architectures, other versions. DKMS builds for them.
    for release in [
        "7.2.13+deb13-amd64",
        "7.3.4+deb13-cloud-amd64",
        "7.3.4+deb13-rt-amd64",
        "7.3.4+deb13-arm64",
        "7.1.3+deb14-amd64",
        "6.12.48+deb13-amd64",
        "7.3.4+deb13-amd64.bak",
    ] {
        let k = RunningKernel::from(release, gcc);
        assert_eq!(k, RunningKernel::Other(release.into()));
        let how = load_how(31, &k);
        assert!(
            how.contains("DKMS")
                && !how.contains("make stock-module STOCK")
                && !how.contains("make module"),
            "{release}: {how}"
        );
    }
    // The test kernel is 7.3.4 built with clang, nothing else.
    assert_eq!(
        RunningKernel::from("7.3.5", clang),
        RunningKernel::Other("7.3.5".into())
    );
    let other = load_how(31, &RunningKernel::Other("6.18.44-fc-v1252".into()));
    assert!(
        other.contains("6.18.44-fc-v1252")
            && other.contains("DKMS")
            && other.contains("CONFIG_RUST"),
        "{other}"
    );
    assert!(!other.contains("make module"), "{other}");
}

/// An unprivileged `--genl broadcast` is refused by the generic netlink
/// core with EPERM and no text: the CLI says what the classic face's
/// refusal says (before: only "EPERM (Operation not permitted)").
#[test]
fn genl_broadcast_eperm_gets_the_classic_hint() {
    let genl = Target {
        unit: DEFAULT_UNIT,
        timeout: Wait::For(DEFAULT_TIMEOUT),
        json: false,
        genl: true,
    };
    let eperm = || Error::Kernel(rustnl::KernelError::new(libc::EPERM));
    let Failure(msg) = module_failure(genl, eperm());
    assert!(
        msg.contains("EPERM")
            && msg.contains("broadcast needs CAP_NET_ADMIN (or open_broadcast=1)")
            && !msg.contains('\n'),
        "{msg}"
    );
    let classic_text = rustnl::proto::RequestError::BroadcastNotPermitted.to_string();
    assert!(msg.ends_with(&classic_text), "{msg}");
}

/// A namespace the module does not serve answers ECONNREFUSED on its
/// unit: the CLI says so and why (before: "sendto: Connection refused (os
/// error 111) (is netlink unit 31 rustnl? ...)").
#[test]
fn an_unserved_namespace_is_named_with_the_reason() {
    let classic = Target {
        unit: DEFAULT_UNIT,
        timeout: Wait::For(DEFAULT_TIMEOUT),
        json: false,
        genl: false,
    };
    let refused = Error::Io {
        op: "sendto",
        source: std::io::Error::from_raw_os_error(libc::ECONNREFUSED),
    };
    let Failure(msg) = module_failure(classic, refused);
    assert!(msg.starts_with("sendto: Connection refused"), "{msg}");
    assert!(!msg.contains("is netlink unit 31 rustnl?"), "{msg}");
    assert!(msg.contains("this network namespace"), "{msg}");
    // What the library's classic client says of it.
    let Failure(msg) = module_failure(classic, ModuleError::NamespaceNotServed { unit: 31 }.into());
    assert!(
        msg.starts_with("netlink unit 31 has no kernel socket in this network namespace"),
        "{msg}"
    );
    assert!(
        msg.contains("rustnl module") && !msg.contains('\n'),
        "{msg}"
    );
    assert!(!msg.contains("is netlink unit 31 rustnl?"), "{msg}");
    // The line the VM's namespace from before the load showed (before:
    // the library's sentence twice, "if it is rustnl's", and nothing to do).
    assert_eq!(
        msg,
        format!(
            "netlink unit 31 has no kernel socket in this network namespace (sendto: ECONNREFUSED): the rustnl module does not serve it; {}",
            not_served_hint(31, None, &RunningKernel::now())
        )
    );
    let test = not_served_hint(31, None, &RunningKernel::Test);
    assert_eq!(
        test,
        "this namespace existed before the rustnl module was loaded (its default existing_netns=0 serves the initial namespace and those created since), or setting it up failed at load (the kernel log says so); the generic netlink face serves every namespace (`rustnl --genl echo ...`), a namespace created now is served, or reload the module with existing_netns=1 (this test kernel has the netlink fix it needs)"
    );
    // existing_netns=1 can crash a kernel without the fix: said so there.
    for kernel in [
        RunningKernel::DebianStock("7.3.4+deb13-amd64".into()),
        RunningKernel::Other("6.18.44-fc-v1252".into()),
    ] {
        let n = not_served_hint(31, None, &kernel);
        assert!(
            n.contains("`rustnl --genl echo ...`")
                && n.contains("existing_netns=1, but only on a kernel with rustnl's netlink fix")
                && n.contains("can crash the kernel"),
            "{n}"
        );
    }
    let n = not_served_hint(31, Some("N\n"), &RunningKernel::Test);
    assert!(
        n.contains("existed before the rustnl module was loaded with existing_netns=0")
            && n.contains("rustnl --genl")
            && n.contains("existing_netns=1"),
        "{n}"
    );
    let n = not_served_hint(31, Some("Y"), &RunningKernel::Test);
    assert!(
        n.contains("serves every namespace (existing_netns=1)") && !n.contains("reload"),
        "{n}"
    );
}

// Generic netlink: `genl list` / `genl show NAME`, --json before or after,
// no --unit or --timeout.
#[test]
fn genl_commands_parse_and_refuse_what_they_do_not_take() {
    assert_eq!(
        plan_of(&["genl", "list"]).unwrap(),
        Plan::Genl {
            name: None,
            json: false
        }
    );
    assert_eq!(
        plan_of(&["--json", "genl", "show", "nlctrl"]).unwrap(),
        Plan::Genl {
            name: Some("nlctrl".into()),
            json: true
        }
    );
    assert_eq!(
        plan_of(&["genl", "show", "ethtool", "--json"]).unwrap(),
        Plan::Genl {
            name: Some("ethtool".into()),
            json: true
        }
    );
    // Any name parses: the kernel (or the library, for names too long to
    // be registered) answers "not registered".
    assert!(plan_of(&["genl", "show", "a-name-much-too-long-for-genl"]).is_ok());
    for args in [
        &["--unit", "30", "genl", "list"][..],
        &["--timeout", "1s", "genl", "show", "nlctrl"],
    ] {
        assert_eq!(usage_kind(args), ErrorKind::ArgumentConflict, "{args:?}");
    }
    assert_eq!(
        usage_kind(&["genl", "list", "--unit", "30"]),
        ErrorKind::UnknownArgument
    );
    assert_eq!(
        usage_kind(&["genl", "show"]),
        ErrorKind::MissingRequiredArgument
    );
    assert_eq!(
        usage_kind(&["genl", "list", "extra"]),
        ErrorKind::UnknownArgument
    );
    let help = Cli::command().render_long_help().to_string();
    assert!(
        help.contains("genl") && help.contains("genl ctrl list"),
        "{help}"
    );
}

#[test]
fn family_not_found_gets_the_cli_hint() {
    let lib = Error::FamilyNotFound {
        name: "rustnl".into(),
    }
    .to_string();
    assert_eq!(lib, "generic netlink family \"rustnl\" not registered");
    let Failure(msg) = genl_failure(Error::FamilyNotFound {
        name: "rustnl".into(),
    });
    assert!(
        msg.contains(&load_how(DEFAULT_UNIT, &RunningKernel::now())) && !msg.contains('\n'),
        "{msg}"
    );
    let Failure(msg) = genl_failure(Error::FamilyNotFound {
        name: "wireguard".into(),
    });
    assert!(
        msg.contains("\"wireguard\" not registered") && msg.contains("rustnl genl list"),
        "{msg}"
    );
}

// The generic netlink face: --genl on echo, broadcast, listen and info,
// after the command or before it; never with --unit; refused elsewhere.
#[test]
fn genl_face_flag_on_the_module_commands() {
    let target = |args: &[&str]| match plan_of(args).unwrap() {
        Plan::Echo { target, .. } | Plan::Info { target } | Plan::Broadcast { target, .. } => {
            target
        }
        p => panic!("{p:?}"),
    };
    assert_eq!(
        target(&["echo", "--genl", "hi"]),
        Target {
            unit: DEFAULT_UNIT,
            timeout: Wait::For(DEFAULT_TIMEOUT),
            json: false,
            genl: true,
        }
    );
    assert!(target(&["--genl", "info"]).genl);
    assert!(target(&["info", "--genl", "--json", "--timeout", "1s"]).genl);
    assert!(target(&["broadcast", "--genl", "-g", "2", "x"]).genl);
    assert!(!target(&["echo", "hi"]).genl);
    assert!(matches!(
        plan_of(&["listen", "--genl", "-g", "1,5"]).unwrap(),
        Plan::Listen { genl: true, groups, .. } if groups == [1, 5]
    ));
    assert!(matches!(
        plan_of(&["--genl", "listen", "-g", "3"]).unwrap(),
        Plan::Listen { genl: true, .. }
    ));
    // The family is found by name: no unit.
    for args in [
        &["echo", "--genl", "--unit", "30", "x"][..],
        &["--unit", "30", "echo", "--genl", "x"],
        &["--genl", "echo", "--unit", "30", "x"],
        &["--genl", "--unit", "30", "info"],
        &["listen", "--genl", "--unit", "30", "-g", "1"],
        &["--unit", "30", "listen", "--genl", "-g", "1"],
        // Nothing to do with the module.
        &["--genl", "families"],
        &["--genl", "genl", "list"],
        &["--genl", "watch", "exec"],
        &["--genl", "man"],
    ] {
        assert_eq!(usage_kind(args), ErrorKind::ArgumentConflict, "{args:?}");
    }
    for args in [
        &["families", "--genl"][..],
        &["genl", "list", "--genl"],
        &["watch", "route", "--genl"],
    ] {
        assert_eq!(usage_kind(args), ErrorKind::UnknownArgument, "{args:?}");
    }
    // Any size parses: the library refuses one over an attribute (exit 1).
    let Plan::Echo { payload, .. } = plan_of(&["echo", "--genl", "--size", "65532"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(payload.len(), 65532);
    // A batch counts the generic netlink and attribute headers too.
    assert!(plan_of(&["echo", "--size", "4080", "--batch", "4096"]).is_ok());
    assert_eq!(
        usage_kind(&["echo", "--genl", "--size", "4080", "--batch", "4096"]),
        ErrorKind::ValueValidation
    );
}

#[test]
fn help_states_the_genl_face() {
    let help = Cli::command().render_long_help().to_string();
    assert!(
        help.contains("Generic netlink face") && help.contains("--genl") && help.contains("65531"),
        "{help}"
    );
    let mut cmd = Cli::command();
    for name in ["echo", "broadcast", "listen", "info"] {
        let sub = cmd.find_subcommand_mut(name).unwrap();
        let help = sub.render_long_help().to_string();
        assert!(
            help.lines().any(|l| l.trim_start().starts_with("--genl")),
            "{name}: {help}"
        );
    }
    let mut out = Vec::new();
    man::render(&Cli::command(), &mut out).unwrap();
    let page = String::from_utf8(out).unwrap();
    assert!(page.contains("rustnl echo \\-\\-genl") && page.contains("genl_info"));
}

#[test]
fn genl_failures_are_one_line_with_what_to_do() {
    let genl = Target {
        unit: DEFAULT_UNIT,
        timeout: Wait::For(DEFAULT_TIMEOUT),
        json: false,
        genl: true,
    };
    let Failure(msg) = module_failure(genl, ModuleError::GenlNotRegistered.into());
    assert!(
        msg.starts_with("rustnl generic netlink family not registered")
            && msg.contains(&load_how(DEFAULT_UNIT, &RunningKernel::now()))
            && msg.contains("rustnl genl list")
            && !msg.contains('\n'),
        "{msg}"
    );
    let Failure(msg) = module_failure(
        genl,
        ModuleError::GenlPayloadTooLarge {
            size: 65532,
            limit: 65531,
        }
        .into(),
    );
    assert!(
        msg.contains("65532") && msg.contains("65531") && !msg.contains('\n'),
        "{msg}"
    );
    // A kernel refusal keeps errno, text and attribute; no unit guessing.
    let mut k = rustnl::KernelError::new(libc::ERANGE);
    k.message = Some("integer out of range".into());
    k.offset = Some(20);
    k.attr = Some("group");
    let Failure(msg) = module_failure(genl, Error::Kernel(k));
    assert_eq!(
        msg,
        "kernel error ERANGE (Numerical result out of range): integer out of range (attribute group)"
    );
    let Failure(msg) = module_failure(genl, Error::Timeout);
    assert!(!msg.contains("unit"), "{msg}");
}

/// `listen --genl -g ...`: the groups go to the library as numbered groups
/// (it chooses them in the kernel: set-groups), and the help says what that
/// changes for `broadcast --genl`.
#[test]
fn genl_listen_chooses_its_groups_in_the_kernel() {
    assert!(matches!(
        plan_of(&["listen", "--genl", "-g", "3"]).unwrap(),
        Plan::Listen { genl: true, groups, .. } if groups == [3]
    ));
    assert!(matches!(
        plan_of(&["listen", "--genl", "-g", "3,1", "-g", "3"]).unwrap(),
        Plan::Listen { genl: true, groups, .. } if groups == [3, 1, 3]
    ));
    assert_eq!(
        usage_kind(&["listen", "--genl", "-g", "0"]),
        ErrorKind::ValueValidation
    );
    assert_eq!(
        rustnl::mcast_groups_of(&[3, KERNEL_EVENT_GROUP]),
        [McastGroup::Events, McastGroup::Heartbeat]
    );
    let mut cmd = Cli::command();
    let listen = cmd.find_subcommand_mut("listen").unwrap();
    let help = listen.render_long_help().to_string();
    assert!(
        help.contains("set-groups") && help.contains("counts as their listener"),
        "{help}"
    );
    let help = Cli::command().render_long_help().to_string();
    assert!(
        help.contains("says delivered only when a listener of group M got the event"),
        "{help}"
    );
}

#[test]
fn genl_info_shows_both_faces() {
    let mut i = GenlInfo {
        version: 1,
        unit: 31,
        groups: 32,
        max_payload: 65536,
        heartbeat_ms: 0,
        open_broadcast: false,
        ..Default::default()
    };
    i.classic_counters.echoes = 3;
    i.genl_counters.echoes = 5;
    i.genl_counters.invalid = 1;
    let text = genl_info_text(&i);
    assert!(
        text.starts_with("protocol_version: 1\nunit: 31\n"),
        "{text}"
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(row("counter").as_deref(), Some("classic genl"));
    assert_eq!(row("echoes").as_deref(), Some("3 5"));
    assert_eq!(row("errors_invalid").as_deref(), Some("0 1"));
    assert_eq!(text.lines().count(), 6 + 1 + 10);
    let j = serde_json::to_string(&Tagged {
        ty: "genl_info",
        value: &i,
    })
    .unwrap();
    assert!(
        j.starts_with(r#"{"type":"genl_info","protocol_version":1,"unit":31,"#)
            && j.contains(r#""classic_counters":{"requests":0,"echoes":3,"#)
            && j.contains(r#""genl_counters":{"requests":0,"echoes":5,"broadcasts":0,"events_sent":0,"errors_invalid":1,"#),
        "{j}"
    );
}

#[test]
fn arguments_that_are_not_utf8_are_usage_errors() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    for args in [
        vec!["echo".as_ref(), bad],
        vec!["listen".as_ref(), "-g".as_ref(), bad],
    ] {
        let e = plan_from(std::iter::once("rustnl".as_ref()).chain(args)).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}

/// Tokens of the argument grammar, valid and not.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "echo",
            "broadcast",
            "listen",
            "info",
            "watch",
            "exec",
            "route",
            "families",
            "genl",
            "list",
            "show",
            "nlctrl",
            "completions",
            "man",
            "bash",
            "help",
            "--unit",
            "--timeout",
            "--json",
            "--count",
            "--size",
            "--batch",
            "--group",
            "-g",
            "-t",
            "--timestamp",
            "--links",
            "--addresses",
            "--routes",
            "--genl",
            "--help",
            "-h",
            "--version",
            "0",
            "1",
            "31",
            "32",
            "4096",
            "4097",
            "1048576",
            "1048577",
            "18446744073709551615",
            "-1",
            "none",
            "forever",
            "1s",
            "500000000years",
            "1,2",
            "0,1",
            ",",
            "",
            "--",
            "-",
        ])
        .prop_map(str::to_string),
        any::<u64>().prop_map(|n| n.to_string()),
        "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// No argument list panics the parser or the validation; every refusal
    /// is a usage error (exit 2) or help/version (exit 0).
    #[test]
    fn no_argument_list_panics(args in prop::collection::vec(token(), 0..8)) {
        if let Err(e) = plan_of(&args.iter().map(String::as_str).collect::<Vec<_>>()) {
            prop_assert!(matches!(e.exit_code(), 0 | 2), "{:?}: exit {}", args, e.exit_code());
            let _ = e.render().to_string();
            if e.exit_code() == 2
                && e.kind() != ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let text = usage_text(&e);
                prop_assert_eq!(text.lines().count(), 1, "{:?}: {}", args, text);
            }
        }
    }
}

/// An exec event carries no name; the CLI reads /proc/PID/comm when it
/// arrives. A process that is gone by then is `comm=?` with the reason
/// (before: a bare `comm=?`).
#[test]
fn exec_of_a_process_already_gone_says_why_its_name_is_missing() {
    let exec = ProcEvent::Exec { pid: 7, tgid: 7 };
    assert_eq!(
        proc_text(&exec, Some(&Some("true".into()))).as_deref(),
        Some("exec pid=7 tgid=7 comm=true")
    );
    let gone = proc_text(&exec, Some(&None)).unwrap();
    assert_eq!(
        gone,
        "exec pid=7 tgid=7 comm=? (exited before its name could be read)"
    );
    // A process this test starts and reaps has no /proc entry left.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    assert_eq!(proc_events::comm(pid), None);
}
