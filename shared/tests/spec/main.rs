//! The YNL spec of the generic netlink family, `shared/spec/rustnl.yaml`,
//! as the source of `src/genl_spec.rs` and against what `src/genl.rs` writes
//! by hand.
//!
//! The spec writes few numbers: YNL derives the ids. This test parses the spec,
//! numbers it by the rules of the kernel's YNL parser
//! (`tools/net/ynl/pyynl/lib/nlspec.py`: enum entries from `value-start`,
//! attributes from 1, operations from 1 in the `unified` model or per direction
//! in the `directional` one, an explicit `value:` restarting the count) and
//! generates the family's name, commands, attributes and multicast groups
//! into `src/genl_spec.rs` (`generated_file_matches_the_spec` fails when the
//! file and the spec differ; `RUSTNL_BLESS=1` rewrites it). What stays
//! hand-written (each operation's policy and flags, attribute types and
//! checks, the counter table, the constants) is compared with the spec.
//!
//! `scripts/spec.sh check` adds the other direction: it numbers the spec with
//! the kernel's own `nlspec.py` and compares the result with the table this
//! test writes to `$RUSTNL_SPEC_IDS` (see `ids_table`).

use rustnl_shared::genl::*;
use rustnl_shared::Counters;
use std::collections::BTreeMap;
use std::path::PathBuf;
use yaml_rust2::{Yaml, YamlLoader};

mod generate;
mod ynl;
use ynl::*;

/// Where the spec lives, relative to this crate.
const SPEC: &str = "spec/rustnl.yaml";

fn load(text: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(text).expect("the spec is not valid YAML");
    assert_eq!(docs.len(), 1, "the spec must be one YAML document");
    docs.remove(0)
}

fn spec() -> Yaml {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SPEC);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
    // YNL refuses a spec without an SPDX tag on its first line.
    assert!(
        text.starts_with("# SPDX-License-Identifier: "),
        "{SPEC}: the first line must be the SPDX tag"
    );
    load(&text)
}

// ---------------------------------------------------------------------------
// The spec against src/genl.rs.
// ---------------------------------------------------------------------------

#[test]
fn family() {
    let spec = spec();
    assert_eq!(s(&spec, "name"), Some(FAMILY_NAME));
    assert_eq!(s(&spec, "protocol").unwrap_or("genetlink"), "genetlink");
    // genetlink-legacy alone may set `version`; YNL's default is 1.
    let version = int(&spec, "version").unwrap_or(1);
    assert_eq!(version, i64::from(FAMILY_VERSION), "family version");
    assert_eq!(
        &FAMILY_NAME_NUL[..FAMILY_NAME.len()],
        FAMILY_NAME.as_bytes()
    );
}

#[test]
fn constants_match() {
    let consts = constants(&spec());
    let rust: BTreeMap<String, i64> = [
        ("max-attr-payload", MAX_ATTR_PAYLOAD as i64),
        ("max-groups", i64::from(GROUP_MAX)),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    assert_eq!(consts, rust, "spec definitions vs src/genl.rs");
}

#[test]
fn operations_match() {
    let spec = spec();
    let ops = operations(&spec);
    assert_eq!(
        s(&spec["operations"], "name-prefix"),
        Some("rustnl-cmd-"),
        "operations name-prefix"
    );
    // Ids, names, flags, groups and policies are generated
    // (src/genl_spec.rs); the generator refuses what it cannot express.
    assert_eq!(ops.len(), Cmd::COUNT);
}

fn check_types(set: &str, a: &SpecAttr, ty: AttrType) {
    assert_eq!(
        s(&a.yaml, "type"),
        Some(ty.name()),
        "{set}/{}: type",
        a.name
    );
}

#[test]
fn attributes_match() {
    let spec = spec();
    let sets = attr_sets(&spec);
    assert_eq!(
        sets.keys().collect::<Vec<_>>(),
        ["counters", "rustnl"],
        "attribute sets"
    );
    let prefix = |set: &str| {
        list(&spec["attribute-sets"])
            .iter()
            .find(|y| name(y) == set)
            .and_then(|y| s(y, "name-prefix"))
            .map(str::to_owned)
    };
    assert_eq!(prefix("rustnl").as_deref(), Some("rustnl-a-"));
    assert_eq!(prefix("counters").as_deref(), Some("rustnl-a-counters-"));

    // Set rustnl (ids, names, types, checks) is generated.
    assert_eq!(sets["rustnl"].len(), Attr::COUNT);

    let counters = &sets["counters"];
    let spec_ids: Vec<(&str, i64)> = counters
        .iter()
        .map(|a| (a.name.as_str(), a.value))
        .collect();
    let rust_ids: Vec<(&str, i64)> = CounterAttr::ALL
        .iter()
        .map(|c| (c.name(), i64::from(c.raw())))
        .collect();
    assert_eq!(spec_ids, rust_ids, "set counters: names and ids");
    assert_eq!(counters.len(), Counters::COUNT);
    for (i, (a, c)) in counters.iter().zip(CounterAttr::ALL).enumerate() {
        check_types("counters", a, AttrType::Uint);
        assert_eq!(c.index(), i);
        assert_eq!(CounterAttr::from_raw(c.raw()), Some(c));
        assert!(a.yaml["checks"].is_badvalue(), "counters/{}", a.name);
    }
}

#[test]
fn counters_follow_the_info_layout() {
    // Each counter attribute reads the field at its index of to_array().
    let mut a = [0u64; Counters::COUNT];
    for (i, v) in a.iter_mut().enumerate() {
        *v = i as u64 + 1;
    }
    let c = Counters::from_array(a);
    // The Rust field of each counter, written out here as the check.
    let by_name = [
        ("requests", c.requests),
        ("echoes", c.echoes),
        ("broadcasts", c.broadcasts),
        ("events-sent", c.events_sent),
        ("errors-invalid", c.invalid),
        ("errors-not-supported", c.not_supported),
        ("errors-too-large", c.too_large),
        ("errors-not-permitted", c.not_permitted),
        ("delivery-failures", c.delivery_failures),
        ("no-listeners", c.no_listeners),
    ];
    for (attr, (n, v)) in CounterAttr::ALL.iter().zip(by_name) {
        assert_eq!(attr.name(), n);
        assert_eq!(attr.json_name(), n.replace('-', "_"));
        assert_eq!(Counters::JSON_NAMES[attr.index()], attr.json_name());
        assert_eq!(c.to_array()[attr.index()], v, "{n}");
    }
}

#[test]
fn mcast_groups_match() {
    let spec = spec();
    // Names and order are generated; each fits a genl name.
    for (i, g) in McastGroup::ALL.iter().enumerate() {
        assert_eq!(g.index(), i);
        assert!(g.name_nul().len() <= GENL_NAMSIZ);
    }
    for g in list(&spec["mcast-groups"]["list"]) {
        assert!(g["flags"].is_badvalue(), "{}: anyone may listen", name(g));
    }
}

// ---------------------------------------------------------------------------
// The table scripts/spec.sh compares with the kernel's own parser.
// ---------------------------------------------------------------------------

/// `src/genl.rs` as lines `kind name value`, sorted; the same format as the
/// Python side of `scripts/spec.sh check`.
fn ids_table() -> String {
    let mut lines = vec![
        format!("family {FAMILY_NAME} {FAMILY_VERSION}"),
        format!("const max-attr-payload {MAX_ATTR_PAYLOAD}"),
        format!("const max-groups {GROUP_MAX}"),
    ];
    for c in Cmd::ALL {
        lines.push(format!("op {} {}", c.name(), c.raw()));
    }
    for a in Attr::ALL {
        lines.push(format!("attr rustnl.{} {}", a.name(), a.raw()));
    }
    for a in CounterAttr::ALL {
        lines.push(format!("attr counters.{} {}", a.name(), a.raw()));
    }
    for g in McastGroup::ALL {
        lines.push(format!("mcgrp {} {}", g.name(), g.index()));
    }
    lines.sort();
    lines.join("\n") + "\n"
}

#[test]
fn write_ids_table() {
    if let Some(path) = std::env::var_os("RUSTNL_SPEC_IDS") {
        std::fs::write(&path, ids_table()).expect("writing $RUSTNL_SPEC_IDS");
    }
}
