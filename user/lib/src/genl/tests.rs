//! Family resolution against a fake controller (FakeConn) and against the
//! host's own kernel (its `nlctrl`).

use super::*;
use crate::proto::Messages;
use crate::testing::{self, FakeConn};
use proptest::prelude::*;

fn nlctrl_like() -> Family {
    let mut f = Family::new("nlctrl", GENL_ID_CTRL);
    f.version = 2;
    f.max_attr = 10;
    f.ops = vec![
        Op {
            id: CTRL_CMD_GETFAMILY.into(),
            flags: op_flags::CAP_DO | op_flags::CAP_DUMP | op_flags::CAP_HASPOL,
        },
        Op {
            id: 10,
            flags: op_flags::CAP_DUMP,
        },
    ];
    f.mcast_groups = vec![Group {
        name: "notify".into(),
        id: 0x10,
    }];
    f
}

/// A fake controller knowing `known`: answers GETFAMILY by name, the dump,
/// ENOENT for the rest; checks every request's shape.
fn controller(known: Vec<Family>) -> impl FnMut(&[Message<'_>]) -> Result<Vec<Vec<u8>>> {
    move |req| {
        let Some(m) = req.first() else {
            return Ok(vec![]);
        };
        assert_eq!(m.header.ty, GENL_ID_CTRL);
        assert!(m.header.has(NLM_F_REQUEST));
        let g = GenlMessage::parse(m)?;
        assert_eq!(g.header.cmd, CTRL_CMD_GETFAMILY);
        assert_eq!(g.header.version, CTRL_VERSION);
        if m.header.flags & NLM_F_DUMP != 0 {
            let bodies = known
                .iter()
                .map(encode_family)
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            return Ok(vec![testing::multipart(m, GENL_ID_CTRL, &refs)]);
        }
        let name = g.attrs.str(CTRL_ATTR_FAMILY_NAME).unwrap().unwrap();
        Ok(vec![match known.iter().find(|f| f.name == name) {
            Some(f) => testing::answer(m, GENL_ID_CTRL, 0, &encode_family(f)?),
            None => testing::error(m, libc::ENOENT),
        }])
    }
}

#[test]
fn resolves_by_name_and_lists_through_a_fake_controller() {
    let mut other = Family::new("thermal", 0x1a);
    other.mcast_groups = vec![
        Group {
            name: "sampling".into(),
            id: 7,
        },
        Group {
            name: "event".into(),
            id: 8,
        },
    ];
    let known = vec![nlctrl_like(), other.clone()];
    let mut genl = GenlSocket::with_conn(FakeConn::new(controller(known.clone())));
    assert_eq!(genl.family("nlctrl").unwrap(), known[0]);
    let t = genl.family("thermal").unwrap();
    assert_eq!((t.id, t.group("event")), (0x1a, Some(8)));
    assert_eq!(genl.families().unwrap(), known);
    match genl.family("nope") {
        Err(Error::FamilyNotFound { name }) => assert_eq!(name, "nope"),
        other => panic!("{other:?}"),
    }
    // Names that cannot be registered are not sent.
    let sent = genl.conn().sent().len();
    for name in ["a-name-longer-than-15", "nul\0inside"] {
        assert!(matches!(
            genl.family(name),
            Err(Error::FamilyNotFound { .. })
        ));
    }
    assert_eq!(genl.conn().sent().len(), sent);
    // The request carries the name NUL-terminated and a fresh seq each time.
    let seqs: Vec<u32> = genl
        .conn()
        .sent()
        .iter()
        .map(|d| Messages::new(d).next().unwrap().unwrap().header.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[test]
fn resolve_caches_families_and_groups_until_forgotten() {
    let mut genl = GenlSocket::with_conn(FakeConn::new(controller(vec![nlctrl_like()])));
    assert_eq!(genl.resolve("nlctrl").unwrap().id, GENL_ID_CTRL);
    assert_eq!(genl.resolve_group("nlctrl", "notify").unwrap(), 0x10);
    assert_eq!(genl.resolve("nlctrl").unwrap().id, GENL_ID_CTRL);
    assert_eq!(genl.conn().sent().len(), 1, "answered from the cache");
    match genl.resolve_group("nlctrl", "nope") {
        Err(e @ Error::GroupNotFound { .. }) => assert_eq!(
            e.to_string(),
            "generic netlink family \"nlctrl\" has no multicast group \"nope\""
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        genl.resolve_group("absent", "x"),
        Err(Error::FamilyNotFound { .. })
    ));
    genl.forget("nlctrl");
    genl.resolve("nlctrl").unwrap();
    assert_eq!(genl.conn().sent().len(), 3);
}

#[test]
fn other_errors_pass_through_and_bad_answers_are_malformed() {
    let mut genl = GenlSocket::with_conn(FakeConn::new(|req: &[Message<'_>]| {
        Ok(req
            .iter()
            .map(|m| testing::error_with_text(m, libc::EPERM, "no"))
            .collect())
    }));
    match genl.family("x") {
        Err(Error::Kernel(k)) => {
            assert_eq!((k.errno, k.message.as_deref()), (libc::EPERM, Some("no")))
        }
        other => panic!("{other:?}"),
    }
    // An answer without a name; one shorter than genlmsghdr; another type.
    for body in [
        {
            let mut b = GenlHeader::default().to_bytes().to_vec();
            b.extend(
                AttrBuilder::new()
                    .put_u16(CTRL_ATTR_FAMILY_ID, 3)
                    .unwrap()
                    .as_bytes(),
            );
            b
        },
        vec![1, 2],
    ] {
        let mut genl = GenlSocket::with_conn(FakeConn::new(move |req: &[Message<'_>]| {
            Ok(req
                .iter()
                .map(|m| testing::answer(m, GENL_ID_CTRL, 0, &body))
                .collect())
        }));
        // No family name: the missing attribute, typed; two bytes: shorter
        // than a genlmsghdr.
        assert!(
            matches!(
                genl.family("x"),
                Err(Error::BadLayout {
                    what: "genlmsghdr",
                    source: crate::proto::LayoutError::Short { need: 4, have: 2 }
                } | Error::BadAttr {
                        what: "nlctrl family",
                        source: AttrError::Missing { .. }
                    })
            ),
            "{:?}",
            genl.family("x")
        );
    }
    let mut genl = GenlSocket::with_conn(FakeConn::new(|req: &[Message<'_>]| {
        Ok(req
            .iter()
            .map(|m| testing::answer(m, 0x33, 0, &[0; 4]))
            .collect())
    }));
    assert!(matches!(
        genl.family("x"),
        Err(Error::WrongAnswer {
            request: "CTRL_CMD_GETFAMILY",
            ty: 0x33,
            expected: GENL_ID_CTRL
        })
    ));
}

#[test]
fn generic_requests_carry_the_genl_header_and_attributes() {
    let mut genl = GenlSocket::with_conn(FakeConn::new(|req: &[Message<'_>]| {
        let Some(m) = req.first() else {
            return Ok(vec![]);
        };
        // Echo the attributes back with cmd + 1, then the ack.
        let g = GenlMessage::parse(m)?;
        let mut body = GenlHeader {
            cmd: g.header.cmd + 1,
            version: g.header.version,
        }
        .to_bytes()
        .to_vec();
        body.extend_from_slice(g.attrs.as_bytes());
        Ok(vec![
            testing::answer(m, m.header.ty, 0, &body),
            testing::ack(m),
        ])
    }));
    let mut w = AttrBuilder::new();
    w.put_u32(1, 42).unwrap();
    w.nested(2, |w| w.put_str(1, "in").map(|_| ())).unwrap();
    let mut got = Vec::new();
    let n = genl
        .request(GenlRequest::new(0x20, 5, 1).ack(), w.as_bytes(), |m| {
            assert_eq!(m.message.header.ty, 0x20);
            got.push((
                m.header.cmd,
                m.attrs.u32(1)?,
                m.attrs.nested(2)?.unwrap().str(1)?.map(str::to_string),
            ));
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(got, [(6, Some(42), Some("in".to_string()))]);
}

#[test]
fn op_capabilities_are_worded_like_genl_ctrl_list() {
    let op = Op { id: 3, flags: 0x1f };
    assert!(op.can_do() && op.can_dump() && op.has_policy() && op.admin_perm());
    assert!(op.uns_admin_perm());
    assert_eq!(
        op.capabilities(),
        [
            "requires admin permission",
            "requires namespace admin permission",
            "can doit",
            "can dumpit",
            "has policy"
        ]
    );
    assert!(Op { id: 1, flags: 0 }.capabilities().is_empty());
}

proptest! {
    /// Any controller answer body: decoding never panics.
    #[test]
    fn any_answer_decodes_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Family::parse(AttrTable::new(&bytes));
        let _ = GenlHeader::parse(&bytes);
    }

    /// encode_family → parse is the identity.
    #[test]
    fn family_round_trip(
        name in "[a-z_]{1,15}",
        id in any::<u16>(),
        version in any::<u32>(),
        ops in prop::collection::vec((any::<u32>(), any::<u32>()), 0..20),
        groups in prop::collection::vec(("[a-z]{0,15}", any::<u32>()), 0..10),
    ) {
        let mut f = Family::new(&name, id);
        f.version = version;
        f.ops = ops.into_iter().map(|(id, flags)| Op { id, flags }).collect();
        f.mcast_groups = groups.into_iter().map(|(name, id)| Group { name, id }).collect();
        let body = encode_family(&f).unwrap();
        let (h, attrs) = GenlHeader::parse(&body).unwrap();
        prop_assert_eq!(h.cmd, CTRL_CMD_NEWFAMILY);
        prop_assert_eq!(Family::parse(AttrTable::new(attrs)).unwrap(), f);
    }
}

// ---------------------------------------------------------------------------
// The host's kernel: nlctrl is always there (it resolves itself).
// ---------------------------------------------------------------------------

#[test]
fn host_kernel_resolves_nlctrl_itself() {
    let mut genl = GenlSocket::open().unwrap();
    let f = genl.family("nlctrl").unwrap();
    assert_eq!((f.name.as_str(), f.id), ("nlctrl", GENL_ID_CTRL));
    assert!(f.version >= 1, "{f:?}");
    let get = f.op(CTRL_CMD_GETFAMILY.into()).expect("GETFAMILY");
    assert!(get.can_do() && get.can_dump(), "{get:?}");
    assert!(!get.admin_perm());
    assert_eq!(f.group("notify"), Some(u32::from(GENL_ID_CTRL)));
    // max_attr is the family-wide policy's; nlctrl has per-operation
    // policies (and says 0), so it is not checked here.
}

#[test]
fn host_kernel_unknown_family_is_family_not_found() {
    let mut genl = GenlSocket::open().unwrap();
    match genl.family("rustnl-absent") {
        Err(e @ Error::FamilyNotFound { .. }) => {
            assert_eq!(
                e.to_string(),
                "generic netlink family \"rustnl-absent\" not registered"
            );
            assert_eq!(e.errno(), Some(libc::ENOENT));
        }
        other => panic!("{other:?}"),
    }
    // The socket stays usable after the refusal.
    assert_eq!(genl.family("nlctrl").unwrap().id, GENL_ID_CTRL);
}

#[test]
fn host_kernel_joins_a_group_by_name() {
    let mut genl = GenlSocket::open().unwrap();
    assert_eq!(
        genl.join("nlctrl", "notify").unwrap(),
        u32::from(GENL_ID_CTRL)
    );
    assert!(matches!(
        genl.join("nlctrl", "no-such-group"),
        Err(Error::GroupNotFound { .. })
    ));
}

#[test]
fn host_kernel_dump_lists_families_that_resolve_by_name() {
    let mut genl = GenlSocket::open().unwrap();
    let all = genl.families().unwrap();
    assert!(all.iter().any(|f| f.name == "nlctrl"), "{all:?}");
    let mut ids: Vec<u16> = all.iter().map(|f| f.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "ids are unique");
    for f in &all {
        // A family may unregister between the dump and the lookup (a
        // module unloading); every one still there answers the same.
        match genl.family(&f.name) {
            Ok(g) => assert_eq!(
                (g.id, &g.ops, &g.mcast_groups),
                (f.id, &f.ops, &f.mcast_groups)
            ),
            Err(Error::FamilyNotFound { .. }) => {}
            Err(e) => panic!("{}: {e}", f.name),
        }
    }
}
