//! Heap allocations per message on the hot path (plain `main`, no timing).
//!
//! A counting `#[global_allocator]` counts every `alloc`, `alloc_zeroed` and
//! `realloc` (frees are not allocations). Each measurement warms up first
//! (buffers reach their working size), then counts over many iterations and
//! divides by the number of messages. Measured:
//!
//! - the codec cases of `codec.rs` (same code, from `common/mod.rs`): rustnl
//!   encode / decode, netlink-packet-core encode (best case and owned) /
//!   decode, and for the generic netlink case neli 0.7 encode (best case
//!   and owned) / decode;
//! - real round trips with the host kernel's `NETLINK_ROUTE` on a
//!   [`Socket`] in [`RecvMode::Fixed`]: `NLMSG_NOOP` with `NLM_F_ACK`
//!   (rtnetlink's `netlink_rcv_skb` acks control messages when asked) by hand
//!   (`send` + `recv` + `messages()` + `ErrorMsg::parse`) and through
//!   `Socket::request`, and `RTM_GETLINK` for ifindex 1 (the loopback
//!   device) through `Socket::request`. One round trip = one message sent and
//!   one received.
//!
//! Prints one JSON object on stdout:
//! `{"allocs_per_msg": {...}, "by_case": {...}, "iterations": N}` where
//! `allocs_per_msg` holds, per key, the largest figure over the cases in
//! `by_case`. Exits with status 1 if any `rustnl_*` figure is not 0.
//!
//! ```sh
//! cargo bench -p rustnl --bench allocs
//! ```

mod common;

use common::*;
use rustnl::proto::{ErrorMsg, NLMSG_ERROR, NLMSG_NOOP, NLM_F_ACK, NLM_F_REQUEST};
use rustnl::{MessageBuilder, RecvMode, Socket};
use serde_json::{json, Map, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per message of `f`, which handles `msgs` messages per call:
/// `warmup` calls first, then the count over `iters` calls.
fn per_msg(iters: u64, msgs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters.min(100) {
        f();
    }
    let before = ALLOCS.load(Relaxed);
    for _ in 0..iters {
        f();
    }
    let n = ALLOCS.load(Relaxed) - before;
    n as f64 / (iters as f64 * msgs as f64)
}

/// Rounds to 3 decimals (counts are integers per message in practice).
fn num(x: f64) -> Value {
    json!((x * 1000.0).round() / 1000.0)
}

fn codec_cases(iters: u64, by_case: &mut Map<String, Value>) {
    let mut cases: Vec<(&str, usize, usize)> = ECHO_CASES
        .iter()
        .map(|&(name, size)| (name, size, 1))
        .collect();
    cases.push(("batch_64", BATCH_PAYLOAD, BATCH_COUNT));

    let mut rows: Vec<(&str, &str, f64)> = Vec::new();
    let mut builder = MessageBuilder::with_capacity(OUT_BUF);
    let mut buf = vec![0u8; OUT_BUF];
    for (case, size, count) in cases {
        let payload = pattern(size);
        rows.push((
            "rustnl_encode",
            case,
            per_msg(iters, count, || {
                black_box(rustnl_echo_encode(
                    &mut builder,
                    black_box(&payload),
                    SEQ,
                    count,
                ));
            }),
        ));
        let encoded = rustnl_echo_encode(&mut builder, &payload, SEQ, count).to_vec();
        rows.push((
            "rustnl_decode",
            case,
            per_msg(iters, count, || {
                black_box(rustnl_echo_decode(black_box(&encoded)));
            }),
        ));
        rows.push((
            "netlink_packet_core_encode",
            case,
            per_msg(iters, count, || {
                black_box(npc_echo_encode(&mut buf, black_box(&payload), SEQ, count));
            }),
        ));
        rows.push((
            "netlink_packet_core_encode_owned",
            case,
            per_msg(iters, count, || {
                black_box(npc_echo_encode_owned(
                    &mut buf,
                    black_box(&payload),
                    SEQ,
                    count,
                ));
            }),
        ));
        rows.push((
            "netlink_packet_core_decode",
            case,
            per_msg(iters, count, || {
                black_box(npc_echo_decode(black_box(&encoded)));
            }),
        ));
    }

    let data = pattern(GENL_DATA);
    rows.push((
        "rustnl_encode",
        "genl",
        per_msg(iters, 1, || {
            black_box(rustnl_genl_encode(&mut buf, SEQ, black_box(&data)));
        }),
    ));
    let n = rustnl_genl_encode(&mut buf, SEQ, &data);
    let encoded = buf[..n].to_vec();
    rows.push((
        "rustnl_decode",
        "genl",
        per_msg(iters, 1, || {
            black_box(rustnl_genl_decode(black_box(&encoded)));
        }),
    ));
    let mut msg = npc_genl_build(SEQ, &data);
    rows.push((
        "netlink_packet_core_encode",
        "genl",
        per_msg(iters, 1, || {
            black_box(npc_genl_encode(black_box(&mut msg), &mut buf));
        }),
    ));
    rows.push((
        "netlink_packet_core_encode_owned",
        "genl",
        per_msg(iters, 1, || {
            black_box(npc_genl_encode_owned(&mut buf, SEQ, black_box(&data)));
        }),
    ));
    rows.push((
        "netlink_packet_core_decode",
        "genl",
        per_msg(iters, 1, || {
            black_box(npc_genl_decode(black_box(&encoded)));
        }),
    ));
    let neli_msg = neli_genl_build(SEQ, &data);
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(OUT_BUF));
    rows.push((
        "neli_encode",
        "genl",
        per_msg(iters, 1, || {
            black_box(neli_genl_encode(black_box(&neli_msg), &mut cursor));
        }),
    ));
    rows.push((
        "neli_encode_owned",
        "genl",
        per_msg(iters, 1, || {
            black_box(neli_genl_encode_owned(&mut cursor, SEQ, black_box(&data)));
        }),
    ));
    rows.push((
        "neli_decode",
        "genl",
        per_msg(iters, 1, || {
            black_box(neli_genl_decode(black_box(&encoded)));
        }),
    ));

    let n = genl_event(&mut buf, &pattern(EVENT_PAYLOAD));
    let event = buf[..n].to_vec();
    for (key, decode) in [
        ("rustnl_decode", rustnl_event_decode as fn(&[u8]) -> u64),
        ("netlink_packet_core_decode", npc_event_decode),
        ("neli_decode", neli_event_decode),
    ] {
        rows.push((
            key,
            "genl_event",
            per_msg(iters, 1, || {
                black_box(decode(black_box(&event)));
            }),
        ));
    }

    let answer = controller_answer(SEQ);
    let mut b = MessageBuilder::with_capacity(OUT_BUF);
    let mut w = rustnl::attr::AttrBuilder::new();
    rows.push((
        "rustnl_decode",
        "genl_resolve",
        per_msg(iters, 1, || {
            black_box(rustnl_resolve(&mut b, &mut w, SEQ, black_box(&answer)));
        }),
    ));
    rows.push((
        "netlink_packet_core_decode",
        "genl_resolve",
        per_msg(iters, 1, || {
            black_box(npc_resolve(&mut buf, SEQ, black_box(&answer)));
        }),
    ));
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(OUT_BUF));
    rows.push((
        "neli_decode",
        "genl_resolve",
        per_msg(iters, 1, || {
            black_box(neli_resolve(&mut cursor, SEQ, black_box(&answer)));
        }),
    ));

    for (key, case, v) in rows {
        let entry = by_case
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[case] = num(v);
    }
}

fn route_socket() -> Socket {
    let mut s = Socket::open(libc::NETLINK_ROUTE as u32).expect("NETLINK_ROUTE socket");
    s.set_recv_mode(RecvMode::Fixed);
    s.set_recv_timeout(Some(Duration::from_secs(2)))
        .expect("SO_RCVTIMEO");
    s
}

fn socket_cases(iters: u64, by_case: &mut Map<String, Value>) {
    let mut out = MessageBuilder::with_capacity(4096);
    let mut seq = 0u32;

    // By hand: send, recv (one system call each), split, decode the ack.
    let mut sock = route_socket();
    let noop_by_hand = per_msg(iters, 1, || {
        seq = seq.wrapping_add(1);
        out.clear();
        out.push(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, seq, &[])
            .expect("fits");
        sock.send(out.as_bytes()).expect("send");
        let dgram = sock.recv().expect("recv");
        let mut acks = 0;
        for m in dgram.messages() {
            let m = m.expect("well-formed answer");
            assert_eq!((m.header.ty, m.header.seq), (NLMSG_ERROR, seq));
            let e = ErrorMsg::parse(m.payload, m.header.flags).expect("nlmsgerr");
            assert_eq!(e.error, 0, "NLMSG_NOOP not acked");
            acks += 1;
        }
        assert_eq!(acks, 1);
    });

    // The library's exchange (what Client::call runs on).
    let noop_request = per_msg(iters, 1, || {
        seq = seq.wrapping_add(1);
        out.clear();
        out.push(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, seq, &[])
            .expect("fits");
        let n = sock.request(out.as_bytes(), |_| Ok(())).expect("ack");
        assert_eq!(n, 0);
    });

    // RTM_GETLINK for ifindex 1 (struct ifinfomsg, AF_UNSPEC).
    let mut ifi = [0u8; 16];
    ifi[4..8].copy_from_slice(&1i32.to_ne_bytes());
    let getlink = per_msg(iters, 1, || {
        seq = seq.wrapping_add(1);
        out.clear();
        out.push(libc::RTM_GETLINK, NLM_F_REQUEST, seq, &ifi)
            .expect("fits");
        let mut bytes = 0;
        let n = sock
            .request(out.as_bytes(), |m| {
                assert_eq!(m.header.ty, libc::RTM_NEWLINK);
                bytes += black_box(m.payload).len();
                Ok(())
            })
            .expect("RTM_NEWLINK");
        assert_eq!(n, 1);
        assert!(bytes > 16);
    });

    let mut socket = Map::new();
    socket.insert("noop_ack_send_recv".into(), num(noop_by_hand));
    socket.insert("noop_ack_request".into(), num(noop_request));
    socket.insert("getlink_lo_request".into(), num(getlink));
    by_case.insert("rustnl_socket_roundtrip".into(), Value::Object(socket));
}

fn main() {
    check_equivalence();
    // `cargo bench` passes --bench; anything else (cargo test --benches) gets
    // a short run that still checks the figures.
    let iters = if std::env::args().any(|a| a == "--bench") {
        10_000
    } else {
        200
    };
    let mut by_case = Map::new();
    codec_cases(iters, &mut by_case);
    socket_cases(iters, &mut by_case);

    let mut summary = Map::new();
    let mut failed = Vec::new();
    for (key, cases) in &by_case {
        let worst = cases
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(Value::as_f64)
            .fold(0.0, f64::max);
        if key.starts_with("rustnl_") && worst != 0.0 {
            failed.push(key.clone());
        }
        summary.insert(key.clone(), num(worst));
    }
    let report = json!({
        "allocs_per_msg": summary,
        "by_case": by_case,
        "iterations": iters,
    });
    println!("{report}");
    if !failed.is_empty() {
        eprintln!("heap allocations on rustnl's hot path: {failed:?}");
        std::process::exit(1);
    }
}
