//! `src/genl_spec.rs`, generated from the spec; the drift check and `RUSTNL_BLESS=1`.

use super::*;

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
         // Generated from spec/rustnl.yaml by tests/spec/generate.rs; do not edit.\n\
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

/// `impl name` with one `const fn` per entry (doc, function, type, and
/// its answer per variant).
type ConstFn<'a> = (&'a str, &'a str, &'a str, Vec<(String, String)>);

fn impl_block(name: &str, fns: &[ConstFn<'_>]) -> String {
    let fns: Vec<String> = fns
        .iter()
        .map(|(doc, f, ty, arms)| {
            let doc = doc.replace("\n/// ", "\n    /// ");
            let mut out = format!(
                "    /// {doc}\n    pub const fn {f}(self) -> {ty} {{\n        match self {{\n"
            );
            for (variant, value) in arms {
                out += &format!("            {name}::{variant} => {value},\n");
            }
            out + "        }\n    }\n"
        })
        .collect();
    format!("impl {name} {{\n{}}}\n", fns.join("\n"))
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
    let cmd = impl_block(
        "Cmd",
        &[
            ("Whether the operation carries `GENL_UNS_ADMIN_PERM` (spec flag\n/// `uns-admin-perm`).", "uns_admin_perm", "bool", perm),
            ("The attributes a request may carry (the operation's policy).", "request", "&'static [Attr]", req),
            ("The attributes of the reply, or of the event.", "reply", "&'static [Attr]", rsp),
            ("The multicast group an event goes to; `None` for requests.", "mcast_group", "Option<McastGroup>", grp),
        ],
    );
    let (mut ty, mut multi, mut range, mut max_len) = (vec![], vec![], vec![], vec![]);
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
        let many = match &y["multi-attr"] {
            Yaml::BadValue => false,
            Yaml::Boolean(b) => *b,
            other => panic!("rustnl/{n}: multi-attr {other:?}"),
        };
        let checks = &y["checks"];
        for k in ["min-len", "exact-len", "flags-mask"] {
            assert!(
                checks[k].is_badvalue(),
                "rustnl/{n}: check {k} is not generated"
            );
        }
        let check = |k: &str| resolve(&consts, &checks[k]);
        ty.push((v.clone(), t.to_owned()));
        multi.push((v.clone(), many.to_string()));
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
    let attr = impl_block(
        "Attr",
        &[
            ("The attribute's type.", "ty", "AttrType", ty),
            ("Whether a message may carry the attribute several times (spec\n/// `multi-attr`): the kernel's parse keeps the last, readers walk them all.", "multi", "bool", multi),
            ("The policy's bounds on the value (`min`/`max` checks) of an integer\n/// attribute.", "range", "Option<(u32, u32)>", range),
            ("The policy's `max-len` of a binary attribute.", "max_len", "Option<usize>", max_len),
        ],
    );
    cmd + "\n" + &attr
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
