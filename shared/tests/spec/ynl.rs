//! YNL's numbering of a spec (`nlspec.py`), on the raw YAML, and its tests.

use super::*;

// ---------------------------------------------------------------------------
// YNL's numbering (nlspec.py), on the raw YAML.
// ---------------------------------------------------------------------------

pub(crate) fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

pub(crate) fn s<'a>(y: &'a Yaml, key: &str) -> Option<&'a str> {
    y[key].as_str()
}

pub(crate) fn int(y: &Yaml, key: &str) -> Option<i64> {
    y[key].as_i64()
}

pub(crate) fn name(y: &Yaml) -> &str {
    s(y, "name").expect("an element without a name")
}

/// One attribute as YNL sees it.
#[derive(Debug)]
pub(crate) struct SpecAttr {
    pub(crate) name: String,
    pub(crate) value: i64,
    pub(crate) yaml: Yaml,
}

/// Attribute sets by name: `SpecAttrSet.__init__`.
pub(crate) fn attr_sets(spec: &Yaml) -> BTreeMap<String, Vec<SpecAttr>> {
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
pub(crate) struct SpecOp {
    pub(crate) name: String,
    pub(crate) req: Option<i64>,
    pub(crate) rsp: Option<i64>,
    pub(crate) yaml: Yaml,
}

/// Operations in spec order: `_dictify_ops_unified` / `_dictify_ops_directional`.
pub(crate) fn operations(spec: &Yaml) -> Vec<SpecOp> {
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
pub(crate) fn constants(spec: &Yaml) -> BTreeMap<String, i64> {
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
pub(crate) fn resolve(consts: &BTreeMap<String, i64>, y: &Yaml) -> Option<i64> {
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

pub(crate) fn names(y: &Yaml) -> Vec<&str> {
    list(y)
        .iter()
        .map(|a| a.as_str().expect("attribute names"))
        .collect()
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
