//! Userspace codec: rustnl vs netlink-packet-core and, for generic netlink,
//! neli 0.7 (criterion).
//!
//! Every measured iteration encodes one case into a buffer reused across
//! iterations, then decodes it and reads every decoded value (see
//! `common/mod.rs`; the encoded bytes pass through `black_box` in between,
//! so the decoder cannot lean on what the encoder just wrote). Before
//! anything is measured, `common::check_equivalence` asserts that both codecs
//! produce identical bytes and read back identical values.
//!
//! Results (stable names, relied on by scripts):
//! `target/criterion/<group>/<function>/new/estimates.json`, times in ns per
//! iteration (one iteration = one message, except `batch_64` = 64 messages).
//!
//! | group      | case                                                        |
//! |------------|-------------------------------------------------------------|
//! | `echo_64`  | one ECHO request, 64 B payload                              |
//! | `echo_1k`  | one ECHO request, 1 KiB payload                             |
//! | `echo_16k` | one ECHO request, 16 KiB payload                            |
//! | `batch_64` | 64 ECHO requests of 13 B in one datagram (encode + decode all) |
//! | `genl`     | generic netlink: genlmsghdr + string, u32, u16, 32 B attributes |
//! | `genl_resolve` | resolving a family through a fake controller: the CTRL_CMD_GETFAMILY request by name encoded, the controller's answer (6 ops, 2 groups) decoded to the family id and a group's id; the others build their request per call (`*_owned` columns) |
//! | `genl_event` | decode only: the rustnl family's `event` as the kernel writes it (u32, u32, two 8-byte uints, 64 B payload) |
//!
//! | function                    | codec                                                                 |
//! |-----------------------------|-----------------------------------------------------------------------|
//! | `rustnl`                    | `MessageBuilder` / `put_attr` + `NlMsgHdr`; `Messages` / `Attrs`       |
//! | `netlink_packet_core`       | `NetlinkMessage` (+ `GenlMessage`), its best case: ECHO payload borrowed, genl message built once outside the loop |
//! | `netlink_packet_core_owned` | the same, with the owned representation built per message           |
//! | `neli`                      | (genl only) neli 0.7's `Nlmsghdr<u16, Genlmsghdr<u8, u16>>`, built once outside the loop, `ToBytes` into a reused `Cursor`; `FromBytes` and its attribute handle |
//! | `neli_owned`                | the same, built per message with neli's builders                     |
//!
//! After the runs, `cargo bench` prints a table of the ratios
//! (netlink-packet-core time / rustnl time) read back from those files.
//!
//! ```sh
//! cargo bench -p rustnl --bench codec                 # full run (~2.5 min)
//! cargo bench -p rustnl --bench codec -- --quick      # quick look
//! cargo bench -p rustnl --bench codec -- echo_16k     # one group
//! ```

mod common;

use common::*;
use criterion::{Criterion, Throughput};
use rustnl::MessageBuilder;
use std::hint::black_box;
use std::path::PathBuf;

/// Group names, in run order.
const GROUPS: [&str; 7] = [
    "echo_64",
    "echo_1k",
    "echo_16k",
    "batch_64",
    "genl",
    "genl_event",
    "genl_resolve",
];
/// The baseline function and the compared ones.
const OURS: &str = "rustnl";
const THEIRS: [&str; 4] = [
    "netlink_packet_core",
    "netlink_packet_core_owned",
    "neli",
    "neli_owned",
];

fn bench_echo(c: &mut Criterion, group: &str, size: usize, count: usize) {
    let payload = pattern(size);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(count as u64));

    let mut builder = MessageBuilder::with_capacity(OUT_BUF);
    g.bench_function(OURS, |b| {
        b.iter(|| {
            let bytes = rustnl_echo_encode(&mut builder, black_box(&payload), SEQ, count);
            black_box(rustnl_echo_decode(black_box(bytes)))
        })
    });

    let mut buf = vec![0u8; OUT_BUF];
    g.bench_function(THEIRS[0], |b| {
        b.iter(|| {
            let n = npc_echo_encode(&mut buf, black_box(&payload), SEQ, count);
            black_box(npc_echo_decode(black_box(&buf[..n])))
        })
    });
    g.bench_function(THEIRS[1], |b| {
        b.iter(|| {
            let n = npc_echo_encode_owned(&mut buf, black_box(&payload), SEQ, count);
            black_box(npc_echo_decode(black_box(&buf[..n])))
        })
    });
    g.finish();
}

fn bench_genl(c: &mut Criterion) {
    let data = pattern(GENL_DATA);
    let mut g = c.benchmark_group("genl");
    g.throughput(Throughput::Elements(1));

    let mut buf = vec![0u8; OUT_BUF];
    g.bench_function(OURS, |b| {
        b.iter(|| {
            let n = rustnl_genl_encode(&mut buf, SEQ, black_box(&data));
            black_box(rustnl_genl_decode(black_box(&buf[..n])))
        })
    });

    let mut msg = npc_genl_build(SEQ, &data);
    g.bench_function(THEIRS[0], |b| {
        b.iter(|| {
            let n = npc_genl_encode(black_box(&mut msg), &mut buf);
            black_box(npc_genl_decode(black_box(&buf[..n])))
        })
    });
    g.bench_function(THEIRS[1], |b| {
        b.iter(|| {
            let n = npc_genl_encode_owned(&mut buf, SEQ, black_box(&data));
            black_box(npc_genl_decode(black_box(&buf[..n])))
        })
    });

    let neli_msg = neli_genl_build(SEQ, &data);
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(OUT_BUF));
    g.bench_function(THEIRS[2], |b| {
        b.iter(|| {
            let n = neli_genl_encode(black_box(&neli_msg), &mut cursor);
            black_box(neli_genl_decode(black_box(&cursor.get_ref()[..n])))
        })
    });
    g.bench_function(THEIRS[3], |b| {
        b.iter(|| {
            let n = neli_genl_encode_owned(&mut cursor, SEQ, black_box(&data));
            black_box(neli_genl_decode(black_box(&cursor.get_ref()[..n])))
        })
    });
    g.finish();
}

fn bench_event(c: &mut Criterion) {
    let mut buf = vec![0u8; OUT_BUF];
    let n = genl_event(&mut buf, &pattern(EVENT_PAYLOAD));
    let event = buf[..n].to_vec();
    let mut g = c.benchmark_group("genl_event");
    g.throughput(Throughput::Elements(1));
    g.bench_function(OURS, |b| {
        b.iter(|| black_box(rustnl_event_decode(black_box(&event))))
    });
    g.bench_function(THEIRS[0], |b| {
        b.iter(|| black_box(npc_event_decode(black_box(&event))))
    });
    g.bench_function(THEIRS[2], |b| {
        b.iter(|| black_box(neli_event_decode(black_box(&event))))
    });
    g.finish();
}

fn bench_resolve(c: &mut Criterion) {
    let answer = controller_answer(SEQ);
    let mut g = c.benchmark_group("genl_resolve");
    g.throughput(Throughput::Elements(1));
    let mut b = MessageBuilder::with_capacity(OUT_BUF);
    let mut w = rustnl::attr::AttrBuilder::new();
    g.bench_function(OURS, |bn| {
        bn.iter(|| black_box(rustnl_resolve(&mut b, &mut w, SEQ, black_box(&answer))))
    });
    let mut buf = vec![0u8; OUT_BUF];
    g.bench_function(THEIRS[1], |bn| {
        bn.iter(|| black_box(npc_resolve(&mut buf, SEQ, black_box(&answer))))
    });
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(OUT_BUF));
    g.bench_function(THEIRS[3], |bn| {
        bn.iter(|| black_box(neli_resolve(&mut cursor, SEQ, black_box(&answer))))
    });
    g.finish();
}

/// Where criterion writes (its own rule, without running `cargo metadata`).
fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    // <target>/<profile>/deps/codec-<hash>
    let exe = std::env::current_exe().ok()?;
    Some(exe.ancestors().nth(3)?.join("criterion"))
}

/// Criterion's typical time per iteration (the slope of its linear
/// regression, as it prints; the mean where there is no slope) and its 95%
/// confidence interval, in ns.
fn estimate(dir: &std::path::Path, group: &str, function: &str) -> Option<[f64; 3]> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let est = if json["slope"].is_object() {
        &json["slope"]
    } else {
        &json["mean"]
    };
    let ci = &est["confidence_interval"];
    Some([
        est["point_estimate"].as_f64()?,
        ci["lower_bound"].as_f64()?,
        ci["upper_bound"].as_f64()?,
    ])
}

/// Prints, per group, each codec's time per message and the ratio to rustnl
/// with a conservative interval (from the two 95% intervals).
fn print_ratios() {
    let Some(dir) = criterion_dir() else { return };
    println!("\nratio = netlink-packet-core (or neli) time / rustnl time (criterion's typical estimate; interval from the two 95% CIs)");
    println!(
        "{:<10} {:>14} {:<26} {:>14} {:>7} {:>15}",
        "group", "rustnl ns/msg", "compared", "ns/msg", "ratio", "interval"
    );
    for group in GROUPS {
        let per = if group == "batch_64" {
            BATCH_COUNT as f64
        } else {
            1.0
        };
        let Some(ours) = estimate(&dir, group, OURS) else {
            continue;
        };
        for theirs_name in THEIRS {
            let Some(theirs) = estimate(&dir, group, theirs_name) else {
                continue;
            };
            println!(
                "{:<10} {:>14.1} {:<26} {:>14.1} {:>6.2}x {:>6.2}..{:<6.2}",
                group,
                ours[0] / per,
                theirs_name,
                theirs[0] / per,
                theirs[0] / ours[0],
                theirs[1] / ours[2],
                theirs[2] / ours[1],
            );
        }
    }
}

fn main() {
    check_equivalence();
    check_event_equivalence();
    check_resolve_equivalence();
    let mut c = Criterion::default().configure_from_args();
    for (group, size) in ECHO_CASES {
        bench_echo(&mut c, group, size, 1);
    }
    bench_echo(&mut c, "batch_64", BATCH_PAYLOAD, BATCH_COUNT);
    bench_genl(&mut c);
    bench_event(&mut c);
    bench_resolve(&mut c);
    c.final_summary();

    let args: Vec<String> = std::env::args().collect();
    let measuring =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list");
    if measuring {
        print_ratios();
    }
}
