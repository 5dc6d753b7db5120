//! The YNL spec of the generic netlink family, `shared/spec/rustnl.yaml`,
//! against the numbers in `src/genl.rs` that the module and the library use.
//!
//! The spec writes few numbers: YNL derives the ids. This test parses the spec,
//! numbers it by the rules of the kernel's YNL parser
//! (`tools/net/ynl/pyynl/lib/nlspec.py`: enum entries from `value-start`,
//! attributes from 1, operations from 1 in the `unified` model or per direction
//! in the `directional` one, an explicit `value:` restarting the count) and
//! fails on any difference: a renamed, added, moved or retyped attribute or
//! operation, a changed check, flag, multicast group or constant. Fix it by
//! changing `src/genl.rs` and the spec together.
//!
//! `scripts/spec.sh check` adds the other direction: it numbers the spec with
//! the kernel's own `nlspec.py` and compares the result with the table this
//! test writes to `$RUSTNL_SPEC_IDS` (see `ids_table`).

use rustnl_shared::genl::*;
use rustnl_shared::Counters;
use std::collections::BTreeMap;
use std::path::PathBuf;
use yaml_rust2::{Yaml, YamlLoader};

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
// YNL's numbering (nlspec.py), on the raw YAML.
// ---------------------------------------------------------------------------

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

fn s<'a>(y: &'a Yaml, key: &str) -> Option<&'a str> {
    y[key].as_str()
}

fn int(y: &Yaml, key: &str) -> Option<i64> {
    y[key].as_i64()
}

fn name(y: &Yaml) -> &str {
    s(y, "name").expect("an element without a name")
}

/// One attribute as YNL sees it.
#[derive(Debug)]
struct SpecAttr {
    name: String,
    value: i64,
    yaml: Yaml,
}

/// Attribute sets by name: `SpecAttrSet.__init__`.
fn attr_sets(spec: &Yaml) -> BTreeMap<String, Vec<SpecAttr>> {
    let mut sets: BTreeMap<String, Vec<SpecAttr>> = BTreeMap::new();
    for set in list(&spec["attribute-sets"]) {
        let attrs = match s(set, "subset-of") {
            None => {
                let mut val = 1;
                let mut attrs = Vec::new();
                for elem in list(&set["attributes"]) {
                    if let Some(v) = int(elem, "value") {
                        val = v;
                    }
                    attrs.push(SpecAttr {
                        name: name(elem).to_owned(),
                        value: val,
                        yaml: elem.clone(),
                    });
                    val += 1;
                }
                attrs
            }
            // A subset takes each attribute's value from the set it is part of
            // (which YNL requires to come first).
            Some(of) => list(&set["attributes"])
                .iter()
                .map(|elem| {
                    let real = sets[of]
                        .iter()
                        .find(|a| a.name == name(elem))
                        .unwrap_or_else(|| panic!("{} is not in set {of}", name(elem)));
                    SpecAttr {
                        name: real.name.clone(),
                        value: real.value,
                        yaml: elem.clone(),
                    }
                })
                .collect(),
        };
        sets.insert(name(set).to_owned(), attrs);
    }
    sets
}

/// One operation as YNL sees it: request and response ids (`None` where the
/// direction has no message).
#[derive(Debug)]
struct SpecOp {
    name: String,
    req: Option<i64>,
    rsp: Option<i64>,
    yaml: Yaml,
}

/// Operations in spec order: `_dictify_ops_unified` / `_dictify_ops_directional`.
fn operations(spec: &Yaml) -> Vec<SpecOp> {
    let ops = &spec["operations"];
    let model = s(ops, "enum-model").unwrap_or("unified");
    let mut out = Vec::new();
    match model {
        "unified" => {
            let mut val = 1;
            for elem in list(&ops["list"]) {
                if let Some(v) = int(elem, "value") {
                    val = v;
                }
                out.push(SpecOp {
                    name: name(elem).to_owned(),
                    req: Some(val),
                    rsp: Some(val),
                    yaml: elem.clone(),
                });
                val += 1;
            }
        }
        "directional" => {
            let (mut req_val, mut rsp_val) = (Some(1i64), Some(1i64));
            for elem in list(&ops["list"]) {
                let (req_next, rsp_next);
                if !elem["notify"].is_badvalue() || !elem["event"].is_badvalue() {
                    if let Some(v) = int(elem, "value") {
                        rsp_val = Some(v);
                    }
                    req_next = req_val;
                    rsp_next = rsp_val.map(|v| v + 1);
                    req_val = None;
                } else {
                    let mode = if elem["do"].is_badvalue() {
                        &elem["dump"]
                    } else {
                        &elem["do"]
                    };
                    assert!(!mode.is_badvalue(), "Can't parse directional ops");
                    // nlspec tests `if v:`, so an explicit 0 does not count.
                    if let Some(v) = int(&mode["request"], "value").filter(|&v| v != 0) {
                        req_val = Some(v);
                    }
                    if let Some(v) = int(&mode["reply"], "value").filter(|&v| v != 0) {
                        rsp_val = Some(v);
                    }
                    let rsp_inc = i64::from(!mode["reply"].is_badvalue());
                    req_next = req_val.map(|v| v + 1);
                    rsp_next = rsp_val.map(|v| v + rsp_inc);
                }
                let req = if req_val == req_next { None } else { req_val };
                let rsp = if rsp_val == rsp_next { None } else { rsp_val };
                out.push(SpecOp {
                    name: name(elem).to_owned(),
                    req,
                    rsp,
                    yaml: elem.clone(),
                });
                req_val = req_next;
                rsp_val = rsp_next;
            }
        }
        other => panic!("unknown enum-model {other}"),
    }
    out
}

/// Constants and enum entries by name: `definitions`, `SpecEnumSet`.
fn constants(spec: &Yaml) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for def in list(&spec["definitions"]) {
        match s(def, "type") {
            Some("const") => {
                let v = int(def, "value").expect("a const without an integer value");
                out.insert(name(def).to_owned(), v);
            }
            Some(ty @ ("enum" | "flags")) => {
                let start = int(def, "value-start").unwrap_or(0);
                let mut prev: Option<i64> = None;
                for e in list(&def["entries"]) {
                    let (ename, v) = match e.as_str() {
                        Some(n) => (n, prev.map_or(start, |p| p + 1)),
                        None => (
                            name(e),
                            int(e, "value").unwrap_or_else(|| prev.map_or(start, |p| p + 1)),
                        ),
                    };
                    prev = Some(v);
                    // Flags are used as masks (`user_value`).
                    let user = if ty == "flags" { 1 << v } else { v };
                    out.insert(format!("{}.{ename}", name(def)), user);
                }
            }
            other => panic!("definition type {other:?} is not handled here"),
        }
    }
    out
}

/// A `len-or-define` / `len-or-limit` value: a literal or a constant's name.
fn resolve(consts: &BTreeMap<String, i64>, y: &Yaml) -> Option<i64> {
    match y {
        Yaml::Integer(v) => Some(*v),
        Yaml::String(n) => Some(
            *consts
                .get(n)
                .unwrap_or_else(|| panic!("check names unknown constant {n}")),
        ),
        _ => None,
    }
}

fn names(y: &Yaml) -> Vec<&str> {
    list(y)
        .iter()
        .map(|a| a.as_str().expect("attribute names"))
        .collect()
}

fn attr_names(attrs: &[Attr]) -> Vec<&'static str> {
    attrs.iter().map(|a| a.name()).collect()
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
    let spec_names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
    let rust_names: Vec<&str> = Cmd::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(spec_names, rust_names, "operations (in order)");
    for (op, cmd) in ops.iter().zip(Cmd::ALL) {
        let y = &op.yaml;
        let n = cmd.name();
        let id = Some(i64::from(cmd.raw()));
        if cmd.is_event() {
            assert_eq!(op.rsp, id, "{n}: event id");
        } else {
            assert_eq!((op.req, op.rsp), (id, id), "{n}: request / reply id");
        }
        assert_eq!(Cmd::from_raw(cmd.raw()), Some(cmd));
        assert_eq!(s(y, "attribute-set"), Some("rustnl"), "{n}: attribute-set");
        let flags = names(&y["flags"]);
        let want: Vec<&str> = if cmd.uns_admin_perm() {
            vec!["uns-admin-perm"]
        } else {
            vec![]
        };
        assert_eq!(flags, want, "{n}: flags");
        assert!(y["dump"].is_badvalue(), "{n}: no dumps in src/genl.rs");
        assert!(y["notify"].is_badvalue(), "{n}: no notify in src/genl.rs");
        assert_eq!(
            s(y, "mcgrp"),
            cmd.mcast_group().map(McastGroup::name),
            "{n}: mcgrp"
        );
        if cmd.is_event() {
            assert!(y["do"].is_badvalue(), "{n}: an event has no do");
            assert_eq!(
                names(&y["event"]["attributes"]),
                attr_names(cmd.reply()),
                "{n}: event attributes"
            );
        } else {
            let d = &y["do"];
            assert!(
                !d.is_hash() || y["event"].is_badvalue(),
                "{n}: do and event"
            );
            assert!(d.is_hash(), "{n}: a request has a do");
            assert_eq!(
                names(&d["request"]["attributes"]),
                attr_names(cmd.request()),
                "{n}: request attributes"
            );
            assert_eq!(
                names(&d["reply"]["attributes"]),
                attr_names(cmd.reply()),
                "{n}: reply attributes"
            );
        }
    }
    assert_eq!(Cmd::MAX, *Cmd::ALL.map(Cmd::raw).iter().max().unwrap());
    assert_eq!(Cmd::from_raw(0), None);
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
    let consts = constants(&spec);
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

    let main = &sets["rustnl"];
    let spec_ids: Vec<(&str, i64)> = main.iter().map(|a| (a.name.as_str(), a.value)).collect();
    let rust_ids: Vec<(&str, i64)> = Attr::ALL
        .iter()
        .map(|a| (a.name(), i64::from(a.raw())))
        .collect();
    assert_eq!(spec_ids, rust_ids, "set rustnl: names and ids");
    for (a, attr) in main.iter().zip(Attr::ALL) {
        check_types("rustnl", a, attr.ty());
        assert_eq!(Attr::from_raw(attr.raw()), Some(attr));
        let checks = &a.yaml["checks"];
        let check = |k: &str| resolve(&consts, &checks[k]);
        assert_eq!(
            check("max-len"),
            attr.max_len().map(|v| v as i64),
            "rustnl/{}: max-len",
            a.name
        );
        let range = attr.range().map(|(lo, hi)| (i64::from(lo), i64::from(hi)));
        assert_eq!(
            check("min").zip(check("max")),
            range,
            "rustnl/{}: min/max",
            a.name
        );
        for k in ["min-len", "exact-len", "flags-mask"] {
            assert!(checks[k].is_badvalue(), "rustnl/{}: {k}", a.name);
        }
        let nested = s(&a.yaml, "nested-attributes");
        let want = (attr.ty() == AttrType::NestCounters).then_some("counters");
        assert_eq!(nested, want, "rustnl/{}: nested-attributes", a.name);
        assert!(a.yaml["multi-attr"].is_badvalue(), "rustnl/{}", a.name);
    }
    assert_eq!(Attr::MAX, *Attr::ALL.map(Attr::raw).iter().max().unwrap());

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
    let groups: Vec<&str> = list(&spec["mcast-groups"]["list"])
        .iter()
        .map(name)
        .collect();
    let rust: Vec<&str> = McastGroup::ALL.iter().map(|g| g.name()).collect();
    assert_eq!(groups, rust, "multicast groups (in order)");
    for (i, g) in McastGroup::ALL.iter().enumerate() {
        assert_eq!(g.index(), i);
        assert_eq!(g.name_nul(), format!("{}\0", g.name()).as_bytes());
        assert!(g.name_nul().len() <= GENL_NAMSIZ);
    }
    for g in list(&spec["mcast-groups"]["list"]) {
        assert!(g["flags"].is_badvalue(), "{}: anyone may listen", name(g));
    }
}

// ---------------------------------------------------------------------------
// The numbering rules themselves, on small specs (values as nlspec.py gives
// them for the same YAML).
// ---------------------------------------------------------------------------

#[test]
fn ynl_numbering_rules() {
    let y = load(
        r#"
definitions:
  - {type: const, name: c, value: 7}
  - {type: enum, name: e, entries: [a, {name: b, value: 5}, c]}
  - {type: enum, name: s, value-start: 3, entries: [a, b]}
  - {type: flags, name: f, entries: [a, b, c]}
attribute-sets:
  - name: main
    attributes:
      - {name: a, type: u32}
      - {name: b, type: u32, value: 10}
      - {name: c, type: u32}
  - name: sub
    subset-of: main
    attributes:
      - {name: c}
      - {name: a}
operations:
  list:
    - {name: x, doc: x}
    - {name: y, doc: y, value: 8}
    - {name: z, doc: z}
"#,
    );
    let c = constants(&y);
    let want: BTreeMap<String, i64> = [
        ("c", 7),
        ("e.a", 0),
        ("e.b", 5),
        ("e.c", 6),
        ("s.a", 3),
        ("s.b", 4),
        ("f.a", 1),
        ("f.b", 2),
        ("f.c", 4),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    assert_eq!(c, want);
    let sets = attr_sets(&y);
    let ids = |set: &str| -> Vec<(String, i64)> {
        sets[set]
            .iter()
            .map(|a| (a.name.clone(), a.value))
            .collect()
    };
    let v = |p: &[(&str, i64)]| -> Vec<(String, i64)> {
        p.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    };
    assert_eq!(ids("main"), v(&[("a", 1), ("b", 10), ("c", 11)]));
    assert_eq!(ids("sub"), v(&[("c", 11), ("a", 1)]));
    let ops: Vec<(String, Option<i64>)> = operations(&y)
        .into_iter()
        .map(|o| (o.name, o.req))
        .collect();
    assert_eq!(
        ops,
        [("x", 1), ("y", 8), ("z", 9)]
            .map(|(n, v)| (n.to_owned(), Some(v)))
            .to_vec()
    );

    // directional: requests and replies counted apart, events on the reply side.
    let y = load(
        r#"
operations:
  enum-model: directional
  list:
    - {name: get, doc: g, do: {request: {attributes: []}, reply: {attributes: []}}}
    - {name: set, doc: s, do: {request: {attributes: []}}}
    - {name: ntf, doc: n, event: {attributes: []}}
    - {name: del, doc: d, do: {request: {value: 20, attributes: []}, reply: {attributes: []}}}
"#,
    );
    let ops: Vec<(String, Option<i64>, Option<i64>)> = operations(&y)
        .into_iter()
        .map(|o| (o.name, o.req, o.rsp))
        .collect();
    assert_eq!(
        ops,
        [
            ("get", Some(1), Some(1)),
            ("set", Some(2), None),
            ("ntf", None, Some(2)),
            ("del", Some(20), Some(3)),
        ]
        .map(|(n, q, r)| (n.to_owned(), q, r))
        .to_vec()
    );
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
