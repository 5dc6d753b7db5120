//! The C view of the protocol, `tests/bench/rustnl_proto.h`, generated from
//! this crate so that the two cannot drift apart.
//!
//! The header is rendered from the Rust constants and from *probing* the
//! layouts: each struct is encoded with `to_bytes()` and distinct field
//! values, and every field's offset and size is read off the bytes. A change
//! of a layout in `proto.rs` therefore changes the rendered header, and this
//! test fails until the committed file is regenerated with
//!
//! ```text
//! RUSTNL_BLESS=1 cargo test -p rustnl-shared --test c_header
//! ```
//!
//! The struct literals below name every field (no `..Default::default()`),
//! so adding or retyping a field in `proto.rs` stops this file compiling
//! until the probe is told about it.

use rustnl_shared::*;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Where the header lives, relative to the workspace root.
const HEADER: &str = "tests/bench/rustnl_proto.h";
/// How to regenerate it.
const BLESS: &str = "RUSTNL_BLESS=1 cargo test -p rustnl-shared --test c_header";

// ---------------------------------------------------------------------------
// Probing.
// ---------------------------------------------------------------------------

/// The Rust type of a probed field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    U16,
    U32,
    U64,
    Bool,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::U16 => 2,
            Kind::U32 => 4,
            Kind::U64 => 8,
            Kind::Bool => 1,
        }
    }
}

/// Which values the probe hands out.
#[derive(Clone, Copy, Debug)]
enum Pick {
    /// Every field 0 / false.
    Zero,
    /// Every field a distinct value whose bytes are all non-zero.
    Distinct,
    /// Only the field with this index true / non-zero.
    Only(usize),
}

/// Hands field values to an encoder and records which fields it asked for,
/// in order.
struct Probe {
    pick: Pick,
    fields: RefCell<Vec<(&'static str, Kind)>>,
}

impl Probe {
    fn new(pick: Pick) -> Self {
        Probe {
            pick,
            fields: RefCell::new(Vec::new()),
        }
    }

    fn next(&self, name: &'static str, kind: Kind) -> u64 {
        let mut fields = self.fields.borrow_mut();
        let i = fields.len();
        fields.push((name, kind));
        match self.pick {
            Pick::Zero => 0,
            Pick::Only(j) => u64::from(i == j),
            Pick::Distinct => distinct(i, kind),
        }
    }

    #[allow(dead_code)] // no u16 field today besides the fixed prefix
    fn u16(&self, name: &'static str) -> u16 {
        self.next(name, Kind::U16) as u16
    }
    fn u32(&self, name: &'static str) -> u32 {
        self.next(name, Kind::U32) as u32
    }
    fn u64(&self, name: &'static str) -> u64 {
        self.next(name, Kind::U64)
    }
    fn flag(&self, name: &'static str) -> bool {
        self.next(name, Kind::Bool) != 0
    }
}

/// The distinct value of field `i`: every byte non-zero, the first byte
/// unique to the field, the rest unique to the width.
fn distinct(i: usize, kind: Kind) -> u64 {
    let first = 0x80 + i as u8;
    match kind {
        Kind::U16 => u64::from(u16::from_ne_bytes([first, 0x1e])),
        Kind::U32 => u64::from(u32::from_ne_bytes([first, 0x4b, 0x2d, 0x87])),
        Kind::U64 => u64::from_ne_bytes([first, 0x5a, 0x3c, 0x96, 0x69, 0xa5, 0xc3, 0xe1]),
        Kind::Bool => 1,
    }
}

/// The native-endian bytes of `v` as a `kind`.
fn ne_bytes(v: u64, kind: Kind) -> Vec<u8> {
    match kind {
        Kind::U16 => (v as u16).to_ne_bytes().to_vec(),
        Kind::U32 => (v as u32).to_ne_bytes().to_vec(),
        Kind::U64 => v.to_ne_bytes().to_vec(),
        Kind::Bool => vec![v as u8],
    }
}

/// A struct literal whose fields come from a [`Probe`]. Field names are
/// taken from the literal itself (`stringify!`), so they are Rust's names.
/// `version` marks the `version` field that `to_bytes()` overwrites with
/// [`PROTOCOL_VERSION`]; `[Type { .. }]` a nested struct (flattened in C).
macro_rules! lit {
    (@ $p:ident, $f:ident, u16) => { $p.u16(stringify!($f)) };
    (@ $p:ident, $f:ident, u32) => { $p.u32(stringify!($f)) };
    (@ $p:ident, $f:ident, u64) => { $p.u64(stringify!($f)) };
    (@ $p:ident, $f:ident, bool) => { $p.flag(stringify!($f)) };
    (@ $p:ident, $f:ident, version) => { PROTOCOL_VERSION as u16 };
    (@ $p:ident, $f:ident, [$ty:ident { $($inner:tt)* }]) => { lit!($p, $ty { $($inner)* }) };
    ($p:ident, $ty:ident { $($f:ident : $k:tt),* $(,)? }) => {
        $ty { $($f: lit!(@ $p, $f, $k)),* }
    };
}

/// One fixed layout of `proto.rs` and its C names.
struct Layout {
    /// The Rust type.
    rust: &'static str,
    /// `struct <c>` in C.
    c: &'static str,
    /// Prefix of its C macros (`<prefix>_LEN`, flag bits).
    prefix: &'static str,
    /// The type's `LEN` (version-1 size).
    len: usize,
    /// Comment above the C struct.
    doc: &'static str,
    /// Encodes the type with values from the probe.
    encode: fn(&Probe) -> Vec<u8>,
}

fn layouts() -> Vec<Layout> {
    vec![
        Layout {
            rust: "BroadcastHdr",
            c: "rustnl_broadcast_hdr",
            prefix: "RUSTNL_BROADCAST_HDR",
            len: BroadcastHdr::LEN,
            doc: "BROADCAST request header; the payload to multicast follows it\n\
                  (at hdr_len). group is in 1..groups.",
            encode: |p| lit!(p, BroadcastHdr { group: u32 }).to_bytes().to_vec(),
        },
        Layout {
            rust: "BroadcastResult",
            c: "rustnl_broadcast_result",
            prefix: "RUSTNL_BROADCAST_RESULT",
            len: BroadcastResult::LEN,
            doc: "The kernel's answer to BROADCAST (in a BROADCAST message). event_seq\n\
                  is the EVENT's sequence number in its network namespace.",
            encode: |p| {
                lit!(
                    p,
                    BroadcastResult {
                        group: u32,
                        delivered: bool,
                        delivery_failed: bool,
                        event_seq: u64,
                    }
                )
                .to_bytes()
                .to_vec()
            },
        },
        Layout {
            rust: "EventHdr",
            c: "rustnl_event_hdr",
            prefix: "RUSTNL_EVENT_HDR",
            len: EventHdr::LEN,
            doc: "Header of the multicast messages (EVENT, HEARTBEAT, GOODBYE); the\n\
                  payload follows at hdr_len. origin is the BROADCAST sender's port id\n\
                  (0 for kernel events), seq counts events from 1, timestamp_ns is\n\
                  CLOCK_REALTIME in nanoseconds.",
            encode: |p| {
                lit!(
                    p,
                    EventHdr {
                        group: u32,
                        origin: u32,
                        seq: u64,
                        timestamp_ns: u64,
                    }
                )
                .to_bytes()
                .to_vec()
            },
        },
        Layout {
            rust: "Info",
            c: "rustnl_info",
            prefix: "RUSTNL_INFO",
            len: Info::LEN,
            doc: "The answer to GET_INFO (in an INFO message): the module's\n\
                  configuration and its namespace's counters (Rust: Info with\n\
                  Counters, flattened here).",
            encode: |p| {
                lit!(
                    p,
                    Info {
                        version: version,
                        unit: u32,
                        groups: u32,
                        max_payload: u32,
                        heartbeat_ms: u32,
                        open_broadcast: bool,
                        counters: [Counters {
                            requests: u64,
                            echoes: u64,
                            broadcasts: u64,
                            events_sent: u64,
                            invalid: u64,
                            not_supported: u64,
                            too_large: u64,
                            not_permitted: u64,
                            delivery_failures: u64,
                            no_listeners: u64,
                        }],
                    }
                )
                .to_bytes()
                .to_vec()
            },
        },
    ]
}

/// One member of a C struct.
#[derive(Debug)]
struct Member {
    name: String,
    off: usize,
    /// 2, 4 or 8 (`__u16`, `__u32`, `__u64`).
    size: usize,
    comment: Option<String>,
}

/// A probed layout: its members (no padding yet) and flag bits.
struct Probed {
    members: Vec<Member>,
    /// `(macro suffix, bit)` of flags words.
    bits: Vec<(String, u32)>,
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    (0..=hay.len().saturating_sub(needle.len()))
        .filter(|&i| hay.get(i..i + needle.len()) == Some(needle))
        .collect()
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// Locates every field of `l` in its encoding.
fn probe(l: &Layout) -> Probed {
    let zero_probe = Probe::new(Pick::Zero);
    let zero = (l.encode)(&zero_probe);
    let fields = zero_probe.fields.into_inner();
    assert_eq!(
        zero.len(),
        l.len,
        "{}::to_bytes() is not {}::LEN long",
        l.rust,
        l.rust
    );
    let distinct_bytes = (l.encode)(&Probe::new(Pick::Distinct));

    let mut members = Vec::new();
    let mut bools: Vec<(&'static str, usize, u32)> = Vec::new(); // name, word, bit
    for (i, &(name, kind)) in fields.iter().enumerate() {
        if kind == Kind::Bool {
            let one = (l.encode)(&Probe::new(Pick::Only(i)));
            let changed: Vec<usize> = (0..l.len).filter(|&b| one[b] != zero[b]).collect();
            assert_eq!(
                changed.len(),
                1,
                "{}.{name}: setting it changes bytes {changed:?}, expected one byte",
                l.rust
            );
            let word = changed[0] & !3;
            let diff = u32_at(&one, word) ^ u32_at(&zero, word);
            assert!(
                diff.is_power_of_two(),
                "{}.{name}: sets bits {diff:#x}",
                l.rust
            );
            bools.push((name, word, diff.trailing_zeros()));
            continue;
        }
        let pattern = ne_bytes(distinct(i, kind), kind);
        let at = find_all(&distinct_bytes, &pattern);
        assert_eq!(
            at.len(),
            1,
            "{}.{name}: its value is found at offsets {at:?} of the encoding, expected exactly one",
            l.rust
        );
        let off = at[0];
        assert!(
            zero[off..off + kind.size()].iter().all(|&b| b == 0),
            "{}.{name}: bytes at {off} are not the field's",
            l.rust
        );
        members.push(Member {
            name: name.to_string(),
            off,
            size: kind.size(),
            comment: None,
        });
    }

    // The fixed prefix: version and hdr_len, written by to_bytes() itself.
    for (name, value) in [
        ("version", PROTOCOL_VERSION as u16),
        ("hdr_len", l.len as u16),
    ] {
        let at: Vec<usize> = find_all(&zero, &value.to_ne_bytes())
            .into_iter()
            .filter(|o| o % 2 == 0)
            .collect();
        assert_eq!(
            at.len(),
            1,
            "{}: cannot locate {name} (value {value}) in the encoding: offsets {at:?}",
            l.rust
        );
        members.push(Member {
            name: name.to_string(),
            off: at[0],
            size: 2,
            comment: None,
        });
    }

    // Booleans: a u32 holding 0/1, or a word of flag bits.
    let mut bits = Vec::new();
    let mut words: Vec<usize> = bools.iter().map(|b| b.1).collect();
    words.sort_unstable();
    words.dedup();
    for word in words {
        let in_word: Vec<_> = bools.iter().filter(|b| b.1 == word).collect();
        if let [(name, _, 0)] = in_word.as_slice() {
            members.push(Member {
                name: name.to_string(),
                off: word,
                size: 4,
                comment: Some("0 or 1".into()),
            });
        } else {
            for (name, _, bit) in &in_word {
                bits.push((format!("{}_{}", l.prefix, name.to_uppercase()), *bit));
            }
            assert!(
                !members.iter().any(|m| m.name == "flags"),
                "{}: bools in several flag words; give each word a C name in c_header.rs",
                l.rust
            );
            members.push(Member {
                name: "flags".into(),
                off: word,
                size: 4,
                comment: Some(format!("{}_* bits", l.prefix)),
            });
        }
    }
    members.sort_by_key(|m| m.off);

    // No overlaps, natural alignment, and every other byte is zero padding.
    let mut owner = vec![None::<&str>; l.len];
    for m in &members {
        assert!(
            m.off % m.size == 0,
            "{}.{} at offset {} is not naturally aligned; the C header would need packing",
            l.rust,
            m.name,
            m.off
        );
        for o in m.off..m.off + m.size {
            let slot = owner
                .get_mut(o)
                .unwrap_or_else(|| panic!("{}.{} runs past {}::LEN", l.rust, m.name, l.rust));
            if let Some(other) = slot {
                panic!("{}: {} and {} overlap at byte {o}", l.rust, other, m.name);
            }
            *slot = Some(&m.name);
        }
    }
    let align = members.iter().map(|m| m.size).max().unwrap_or(1);
    assert!(
        l.len % align == 0,
        "{}::LEN {} is not a multiple of its alignment {align}",
        l.rust,
        l.len
    );
    for (o, who) in owner.iter().enumerate() {
        if who.is_none() {
            assert!(
                zero[o] == 0 && distinct_bytes[o] == 0,
                "{}: byte {o} belongs to no field but is not zero",
                l.rust
            );
        }
    }
    Probed { members, bits }
}

// ---------------------------------------------------------------------------
// Rendering.
// ---------------------------------------------------------------------------

fn c_type(size: usize) -> &'static str {
    match size {
        2 => "__u16",
        4 => "__u32",
        8 => "__u64",
        _ => unreachable!("no C member of {size} bytes"),
    }
}

fn comment(out: &mut String, indent: &str, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    if let [one] = lines.as_slice() {
        writeln!(out, "{indent}/* {one} */").unwrap();
        return;
    }
    writeln!(out, "{indent}/*").unwrap();
    for line in lines {
        writeln!(out, "{indent} * {line}").unwrap();
    }
    writeln!(out, "{indent} */").unwrap();
}

fn define(out: &mut String, name: &str, value: impl std::fmt::Display) {
    writeln!(out, "#define {name} {value}").unwrap();
}

fn render() -> String {
    let mut out = String::new();
    out.push_str(
        "/* SPDX-License-Identifier: GPL-2.0 */\n\
         /*\n\
         \x20* rustnl wire protocol for C: constants and fixed message layouts.\n\
         \x20*\n\
         \x20* GENERATED from shared/src/proto.rs by shared/tests/c_header.rs, which\n\
         \x20* probes every layout through to_bytes(). Do not edit: regenerate with\n",
    );
    writeln!(out, " *   {BLESS}").unwrap();
    out.push_str(
        "\x20* (cargo test fails while this file differs from a fresh rendering).\n\
         \x20*\n\
         \x20* All integers are in host byte order, as netlink's own. Each fixed layout\n\
         \x20* starts with version and hdr_len, the size of the fixed part as its\n\
         \x20* writer laid it out; a payload, if any, starts hdr_len bytes in, so a\n\
         \x20* reader must skip hdr_len (not sizeof) bytes and refuse a hdr_len below\n\
         \x20* the *_LEN here. Padding members are zero. Kernel or user C alike: only\n\
         \x20* <linux/types.h> is needed.\n\
         \x20*/\n\
         #ifndef RUSTNL_PROTO_H\n\
         #define RUSTNL_PROTO_H\n\
         \n\
         #include <linux/types.h>\n\
         \n",
    );

    comment(
        &mut out,
        "",
        "Protocol constants and module parameter limits.",
    );
    define(&mut out, "RUSTNL_PROTOCOL_VERSION", PROTOCOL_VERSION);
    define(&mut out, "RUSTNL_DEFAULT_UNIT", DEFAULT_UNIT);
    define(&mut out, "RUSTNL_MAX_LINKS", MAX_LINKS);
    define(&mut out, "RUSTNL_DEFAULT_MAX_PAYLOAD", DEFAULT_MAX_PAYLOAD);
    define(&mut out, "RUSTNL_MAX_PAYLOAD_LIMIT", MAX_PAYLOAD_LIMIT);
    define(&mut out, "RUSTNL_DEFAULT_GROUPS", DEFAULT_GROUPS);
    define(&mut out, "RUSTNL_MAX_GROUPS", MAX_GROUPS);
    define(&mut out, "RUSTNL_KERNEL_EVENT_GROUP", KERNEL_EVENT_GROUP);
    define(&mut out, "RUSTNL_MIN_HEARTBEAT_MS", MIN_HEARTBEAT_MS);
    define(&mut out, "RUSTNL_MAX_HEARTBEAT_MS", MAX_HEARTBEAT_MS);
    out.push('\n');

    comment(&mut out, "", "Message types (nlmsg_type).");
    for ty in MsgType::ALL {
        define(
            &mut out,
            &format!("RUSTNL_MSG_{}", ty.name().to_uppercase()),
            format!("{:#x}", ty.raw()),
        );
    }
    out.push('\n');

    comment(
        &mut out,
        "",
        "Number of u64 counters in struct rustnl_info.",
    );
    define(&mut out, "RUSTNL_INFO_COUNTERS", Counters::COUNT);

    for l in layouts() {
        let p = probe(&l);
        out.push('\n');
        comment(
            &mut out,
            "",
            &format!("{}\nRust: {} ({} bytes).", l.doc, l.rust, l.len),
        );
        writeln!(out, "struct {} {{", l.c).unwrap();
        let mut at = 0;
        let mut pads = 0;
        for m in &p.members {
            if m.off > at {
                writeln!(out, "\t__u8 pad{pads}[{}];", m.off - at).unwrap();
                pads += 1;
            }
            match &m.comment {
                Some(c) => writeln!(out, "\t{} {};\t/* {c} */", c_type(m.size), m.name).unwrap(),
                None => writeln!(out, "\t{} {};", c_type(m.size), m.name).unwrap(),
            }
            at = m.off + m.size;
        }
        if l.len > at {
            writeln!(out, "\t__u8 pad{pads}[{}];", l.len - at).unwrap();
        }
        out.push_str("};\n\n");
        define(&mut out, &format!("{}_LEN", l.prefix), l.len);
        for (name, bit) in &p.bits {
            define(&mut out, name, format!("(1U << {bit})"));
        }
        writeln!(
            out,
            "_Static_assert(sizeof(struct {}) == {}_LEN,\n\t       \"struct {} size\");",
            l.c, l.prefix, l.c
        )
        .unwrap();
        for m in &p.members {
            writeln!(
                out,
                "_Static_assert(__builtin_offsetof(struct {}, {}) == {},\n\t       \"{}.{} offset\");",
                l.c, m.name, m.off, l.c, m.name
            )
            .unwrap();
        }
    }
    out.push_str("\n#endif /* RUSTNL_PROTO_H */\n");
    out
}

// ---------------------------------------------------------------------------
// The check.
// ---------------------------------------------------------------------------

#[test]
fn c_header_matches_proto_rs() {
    let rendered = render();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(HEADER);
    if std::env::var_os("RUSTNL_BLESS").is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create tests/bench");
        }
        std::fs::write(&path, &rendered).unwrap_or_else(|e| panic!("writing {HEADER}: {e}"));
        eprintln!("wrote {HEADER}");
        return;
    }
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("{HEADER} cannot be read ({e}); generate it with:\n    {BLESS}"),
    };
    if committed != rendered {
        let (line, want, have) = rendered
            .lines()
            .map(Some)
            .chain(std::iter::repeat(None))
            .zip(committed.lines().map(Some).chain(std::iter::repeat(None)))
            .enumerate()
            .find(|(_, (w, h))| w != h)
            .map(|(i, (w, h))| {
                (
                    i + 1,
                    w.unwrap_or("<end of file>"),
                    h.unwrap_or("<end of file>"),
                )
            })
            .unwrap_or((0, "", ""));
        panic!(
            "{HEADER} is out of date with shared/src/proto.rs (first difference at line {line}:\n\
             \x20 generated: {want}\n\
             \x20 committed: {have})\n\
             Regenerate it and review the diff:\n    {BLESS}"
        );
    }
}
