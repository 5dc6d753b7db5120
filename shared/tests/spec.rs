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

// ---------------------------------------------------------------------------
// The generated part of src/genl.rs.
// ---------------------------------------------------------------------------

/// The file `src/genl.rs` includes: the family's name, commands,
/// attributes and multicast groups, numbered and named by the spec.
const GENERATED: &str = "src/genl_spec.rs";
/// How to rewrite it after changing the spec.
const BLESS: &str = "RUSTNL_BLESS=1 cargo test -p rustnl-shared --test spec";

/// `get-info` -> `GetInfo`.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The element's `doc`, as doc comment lines (without one: its kind and
/// name).
fn doc(y: &Yaml, indent: &str, kind: &str) -> String {
    let text = s(y, "doc").map_or_else(
        || format!("The spec's {kind} `{}`.", name(y)),
        str::to_owned,
    );
    text.trim_end()
        .lines()
        .map(|l| format!("{indent}/// {l}").trim_end().to_owned() + "\n")
        .collect()
}

/// One `wire_enum!` of `rows` (doc, variant, number, name).
fn wire_enum(doc: &str, name: &str, repr: &str, rows: &[(String, String, i64, String)]) -> String {
    let mut out = format!("wire_enum! {{\n{doc}    pub enum {name}: {repr} {{\n");
    for (d, variant, value, text) in rows {
        out += &format!("{d}        {variant} = {value} => \"{text}\",\n");
    }
    out + "    }\n}\n"
}

/// The text of [`GENERATED`] from the spec.
fn generated() -> String {
    let spec = spec();
    let family = name(&spec);
    let mut out = format!(
        "// SPDX-License-Identifier: GPL-2.0 OR MIT\n\
         //\n\
         // Generated from spec/rustnl.yaml by tests/spec.rs; do not edit.\n\
         // After changing the spec: {BLESS}\n\
         \n\
         /// Name of the generic netlink family (`CTRL_ATTR_FAMILY_NAME`).\n\
         pub const FAMILY_NAME: &str = \"{family}\";\n\
         /// [`FAMILY_NAME`] NUL terminated, as `genl_family.name` and\n\
         /// `CTRL_ATTR_FAMILY_NAME` carry it.\n\
         pub const FAMILY_NAME_NUL: &[u8] = b\"{family}\\0\";\n\n"
    );
    assert_eq!(
        s(&spec["operations"], "enum-model").unwrap_or("unified"),
        "unified",
        "the generator writes one command space"
    );
    let cmds: Vec<_> = operations(&spec)
        .iter()
        .map(|op| {
            let id = op.req.expect("a unified id");
            (
                doc(&op.yaml, "        ", "operation"),
                camel(&op.name),
                id,
                op.name.clone(),
            )
        })
        .collect();
    out += &wire_enum(
        "    /// Commands (`genlmsghdr.cmd`), in the spec's unified numbering: requests,\n\
         \x20   /// their replies and the events share one space, starting at 1; named as\n\
         \x20   /// in the spec (what `ynl --do` / `--subscribe` take). The family leaves\n\
         \x20   /// `genl_family.resv_start_op` at 0, as a new family should: the core\n\
         \x20   /// checks every command's `genlmsghdr.reserved` and `nlmsg_flags` strictly.\n",
        "Cmd",
        "u8",
        &cmds,
    );
    out += "\n";
    let sets = attr_sets(&spec);
    let attrs: Vec<_> = sets[family]
        .iter()
        .map(|a| {
            (
                doc(&a.yaml, "        ", "attribute"),
                camel(&a.name),
                a.value,
                a.name.clone(),
            )
        })
        .collect();
    out += &wire_enum(
        "    /// Attributes of the set `rustnl` (C prefix `RUSTNL_A_`): every request,\n\
         \x20   /// reply and event, named as in the spec. Id 0 is unused, as in every\n\
         \x20   /// netlink attribute space; [`Attr::MAX`] is `genl_family.maxattr`.\n",
        "Attr",
        "u16",
        &attrs,
    );
    out += "\n";
    let groups: Vec<_> = list(&spec["mcast-groups"]["list"])
        .iter()
        .enumerate()
        .map(|(i, g)| {
            (
                doc(g, "        ", "multicast group"),
                camel(name(g)),
                i as i64,
                name(g).to_owned(),
            )
        })
        .collect();
    out += "\n";
    out += &policies(&spec);
    out += "\n";
    out += &wire_enum(
        "    /// Multicast groups of the family, in spec order and named as in the\n\
         \x20   /// spec (`ynl --subscribe` takes the name): the kernel numbers them\n\
         \x20   /// `mcgrp_offset + index`, userspace looks their ids up by name\n\
         \x20   /// (`CTRL_ATTR_MCAST_GROUPS`).\n",
        "McastGroup",
        "u8",
        &groups,
    );
    out
}

/// A `const fn` of `ty` that answers `arms` (variant, value) by a match.
fn const_fn(doc: &str, name: &str, ty: &str, enum_name: &str, arms: &[(String, String)]) -> String {
    let mut out = format!("{doc}    pub const fn {name}(self) -> {ty} {{\n        match self {{\n");
    for (variant, value) in arms {
        out += &format!("            {enum_name}::{variant} => {value},\n");
    }
    out + "        }\n    }\n"
}

/// The policy data of the operations and attributes: what the kernel
/// module builds its policies and operations from. What the generator
/// cannot express (dumps, notifications, other flags, types, checks) is
/// refused here.
fn policies(spec: &Yaml) -> String {
    let consts = constants(spec);
    let attr_list = |y: &Yaml| {
        let names: Vec<String> = names(y)
            .iter()
            .map(|n| format!("Attr::{}", camel(n)))
            .collect();
        format!("&[{}]", names.join(", "))
    };
    let (mut perm, mut req, mut rsp, mut grp) = (vec![], vec![], vec![], vec![]);
    for op in operations(spec) {
        let y = &op.yaml;
        let v = camel(&op.name);
        let n = &op.name;
        assert_eq!(s(y, "attribute-set"), Some("rustnl"), "{n}: attribute-set");
        assert!(y["dump"].is_badvalue(), "{n}: dumps are not generated");
        assert!(y["notify"].is_badvalue(), "{n}: notify is not generated");
        let flags = names(&y["flags"]);
        assert!(
            flags.iter().all(|f| *f == "uns-admin-perm"),
            "{n}: flags {flags:?}"
        );
        perm.push((v.clone(), (!flags.is_empty()).to_string()));
        match s(y, "mcgrp") {
            Some(g) => {
                assert!(y["do"].is_badvalue(), "{n}: an event has no do");
                req.push((v.clone(), "&[]".to_owned()));
                rsp.push((v.clone(), attr_list(&y["event"]["attributes"])));
                grp.push((v, format!("Some(McastGroup::{})", camel(g))));
            }
            None => {
                let d = &y["do"];
                assert!(
                    d.is_hash() && y["event"].is_badvalue(),
                    "{n}: a request has a do"
                );
                req.push((v.clone(), attr_list(&d["request"]["attributes"])));
                rsp.push((v.clone(), attr_list(&d["reply"]["attributes"])));
                grp.push((v, "None".to_owned()));
            }
        }
    }
    let mut out = "impl Cmd {\n".to_owned();
    out += &const_fn("    /// Whether the operation carries `GENL_UNS_ADMIN_PERM` (spec flag\n    /// `uns-admin-perm`).\n", "uns_admin_perm", "bool", "Cmd", &perm);
    out += "\n";
    out += &const_fn(
        "    /// The attributes a request may carry (the operation's policy).\n",
        "request",
        "&'static [Attr]",
        "Cmd",
        &req,
    );
    out += "\n";
    out += &const_fn(
        "    /// The attributes of the reply, or of the event.\n",
        "reply",
        "&'static [Attr]",
        "Cmd",
        &rsp,
    );
    out += "\n";
    out += &const_fn(
        "    /// The multicast group an event goes to; `None` for requests.\n",
        "mcast_group",
        "Option<McastGroup>",
        "Cmd",
        &grp,
    );
    out += "}\n\n";

    let (mut ty, mut range, mut max_len) = (vec![], vec![], vec![]);
    for a in &attr_sets(spec)["rustnl"] {
        let y = &a.yaml;
        let v = camel(&a.name);
        let n = &a.name;
        let t = match (s(y, "type"), s(y, "nested-attributes")) {
            (Some("u32"), None) => "AttrType::U32",
            (Some("uint"), None) => "AttrType::Uint",
            (Some("binary"), None) => "AttrType::Binary",
            (Some("flag"), None) => "AttrType::Flag",
            (Some("nest"), Some("counters")) => "AttrType::NestCounters",
            other => panic!("rustnl/{n}: type {other:?} is not generated"),
        };
        assert!(y["multi-attr"].is_badvalue(), "rustnl/{n}: multi-attr");
        let checks = &y["checks"];
        for k in ["min-len", "exact-len", "flags-mask"] {
            assert!(
                checks[k].is_badvalue(),
                "rustnl/{n}: check {k} is not generated"
            );
        }
        let check = |k: &str| resolve(&consts, &checks[k]);
        ty.push((v.clone(), t.to_owned()));
        range.push((
            v.clone(),
            match (check("min"), check("max")) {
                (Some(lo), Some(hi)) => format!("Some(({lo}, {hi}))"),
                (None, None) => "None".to_owned(),
                other => panic!("rustnl/{n}: min and max go together: {other:?}"),
            },
        ));
        max_len.push((
            v,
            check("max-len").map_or("None".to_owned(), |m| format!("Some({m})")),
        ));
    }
    let mut out2 = "impl Attr {\n".to_owned();
    out2 += &const_fn(
        "    /// The attribute's type.\n",
        "ty",
        "AttrType",
        "Attr",
        &ty,
    );
    out2 += "\n";
    out2 += &const_fn("    /// The policy's bounds on the value (`min`/`max` checks) of an integer\n    /// attribute.\n", "range", "Option<(u32, u32)>", "Attr", &range);
    out2 += "\n";
    out2 += &const_fn(
        "    /// The policy's `max-len` of a binary attribute.\n",
        "max_len",
        "Option<usize>",
        "Attr",
        &max_len,
    );
    out2 += "}\n";
    out.push_str(&out2);
    out
}

/// `src/genl_spec.rs` is what the spec says; `RUSTNL_BLESS=1` rewrites it.
#[test]
fn generated_file_matches_the_spec() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(GENERATED);
    let want = generated();
    if std::env::var_os("RUSTNL_BLESS").is_some() {
        std::fs::write(&path, &want).expect("writing the generated file");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{GENERATED} differs from spec/rustnl.yaml; rewrite it with: {BLESS}"
    );
}
