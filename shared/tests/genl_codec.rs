//! The attribute writer and the request classifier of `src/genl.rs`, which
//! the kernel module uses for every generic netlink answer and refusal:
//! byte layouts as the kernel's `nla_put_*` write them, and an independent
//! attribute walk that reads back what was written.

use proptest::prelude::*;
use rustnl_shared::genl::*;
use rustnl_shared::{Action, Counters, ErrorKind, Limits, RequestError, MAX_GROUPS, NLA_F_NESTED};

/// Walks attributes the way `nla_for_each_attr` does: (type, payload).
fn walk(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]);
        assert!(
            len >= 4 && len <= b.len(),
            "attribute length {len} out of {}",
            b.len()
        );
        out.push((ty, b[4..len].to_vec()));
        let next = (len + 3) & !3;
        b = &b[next.min(b.len())..];
    }
    assert!(b.is_empty(), "trailing bytes");
    out
}

#[test]
fn scalars_flags_and_padding_are_laid_out_like_nla_put() {
    let mut buf = [0xAAu8; 64];
    let mut w = AttrWriter::new(&mut buf);
    w.put_u32(Attr::Group.raw(), 7).unwrap();
    w.put(Attr::Payload.raw(), b"abcde").unwrap();
    w.put_flag(Attr::Delivered.raw(), true).unwrap();
    w.put_flag(Attr::DeliveryFailed.raw(), false).unwrap();
    w.put_uint(Attr::EventSeq.raw(), 5).unwrap();
    w.put_uint(Attr::TimestampNs.raw(), 1 << 40).unwrap();
    let b = w.bytes().to_vec();
    // u32: 8, "abcde": 4 + 5 + 3 padding, flag: 4, small uint: 8, big: 12.
    assert_eq!(b.len(), 8 + 12 + 4 + 8 + 12);
    assert_eq!(
        &b[8..20],
        &[9, 0, 1, 0, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]
    );
    assert_eq!(
        walk(&b),
        vec![
            (2, 7u32.to_ne_bytes().to_vec()),
            (1, b"abcde".to_vec()),
            (3, vec![]),
            (5, 5u32.to_ne_bytes().to_vec()),
            (7, (1u64 << 40).to_ne_bytes().to_vec()),
        ]
    );
}

#[test]
fn counters_nest_with_the_nested_flag_in_counter_order() {
    let mut buf = [0u8; 256];
    let mut w = AttrWriter::new(&mut buf);
    let c = Counters::from_array([1, 2, 3, 4, 5, 6, 7, 8, 9, u64::MAX]);
    w.put_counters(Attr::GenlCounters.raw(), &c).unwrap();
    let outer = walk(w.bytes());
    assert_eq!(outer.len(), 1);
    assert_eq!(outer[0].0, Attr::GenlCounters.raw() | NLA_F_NESTED);
    let inner = walk(&outer[0].1);
    assert_eq!(inner.len(), Counters::COUNT);
    for (i, (ty, v)) in inner.iter().enumerate() {
        assert_eq!(*ty, CounterAttr::ALL[i].raw());
        let want = c.to_array()[i];
        let got = match v.len() {
            4 => u32::from_ne_bytes(v[..].try_into().unwrap()) as u64,
            8 => u64::from_ne_bytes(v[..].try_into().unwrap()),
            n => panic!("uint of {n} bytes"),
        };
        assert_eq!(got, want);
    }
}

#[test]
fn no_room_writes_nothing_partial() {
    let mut buf = [0u8; 10];
    let mut w = AttrWriter::new(&mut buf);
    w.put_u32(1, 1).unwrap();
    assert_eq!(w.put(2, b"xyz"), Err(NoRoom));
    assert_eq!(w.len(), 8);
    assert_eq!(w.nest(3, |w| w.put_u32(1, 1)), Err(NoRoom));
    assert_eq!(w.len(), 8);
    // The fixed-size writers too: a u32 and an 8-byte uint do not fit in
    // the 2 bytes left, a flag (4) does not either.
    assert_eq!(w.put_u32(4, 1), Err(NoRoom));
    assert_eq!(w.put_uint(5, 1 << 40), Err(NoRoom));
    assert_eq!(w.put_flag(6, true), Err(NoRoom));
    assert_eq!(w.put_flag(6, false), Ok(()));
    assert_eq!(w.len(), 8);
    assert_eq!(nla_header(1, MAX_ATTR_PAYLOAD + 1), None);
    assert_eq!(nla_header(1, MAX_ATTR_PAYLOAD), Some([0xff, 0xff, 1, 0]));
}

const LIMITS: Limits = Limits {
    max_payload: 100,
    groups: 8,
};

#[test]
fn classify_mirrors_the_classic_checks() {
    let req = |cmd: Cmd, payload: Option<&'static [u8]>, group| Request {
        cmd: cmd.raw(),
        payload,
        group,
        attrs: &[],
    };
    assert_eq!(
        classify(&req(Cmd::Echo, None, None), &LIMITS),
        Ok(Requested::Shared(Action::Echo { payload: b"" }))
    );
    assert_eq!(
        classify(&req(Cmd::Echo, Some(&[0; 101]), None), &LIMITS),
        Err(Refusal::Request(RequestError::PayloadTooLarge {
            len: 101,
            max: 100
        }))
    );
    assert_eq!(
        classify(&req(Cmd::Broadcast, Some(b"x"), None), &LIMITS),
        Err(Refusal::Missing(Attr::Group))
    );
    let bad = classify(&req(Cmd::Broadcast, Some(b"x"), Some(9)), &LIMITS).unwrap_err();
    assert_eq!(
        bad,
        Refusal::Request(RequestError::BadGroup {
            group: 9,
            groups: 8
        })
    );
    assert_eq!(bad.kind(), ErrorKind::Invalid);
    assert_eq!(bad.bad_attr(), Some(Attr::Group));
    assert_eq!(bad.to_string(), "group 9 is not in 1..=8");
    assert_eq!(
        Refusal::Missing(Attr::Group).to_string(),
        "missing attribute: group"
    );
    assert_eq!(
        classify(&req(Cmd::Broadcast, None, Some(8)), &LIMITS),
        Ok(Requested::Shared(Action::Broadcast {
            group: 8,
            payload: b""
        }))
    );
    assert_eq!(
        classify(&req(Cmd::GetInfo, None, None), &LIMITS),
        Ok(Requested::Shared(Action::GetInfo))
    );
    let ev = classify(&req(Cmd::Event, None, None), &LIMITS).unwrap_err();
    assert_eq!(ev.kind(), ErrorKind::NotSupported);
}

/// A `set-groups` request carrying `groups` as `listen-group` attributes
/// (and `others` before them), as a client writes it.
fn set_groups(others: &[(u16, &[u8])], groups: &[u32]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 * (groups.len() + others.len()) + 64];
    let mut w = AttrWriter::new(&mut buf);
    for (t, d) in others {
        w.put(*t, d).unwrap();
    }
    for g in groups {
        w.put_u32(Attr::ListenGroup.raw(), *g).unwrap();
    }
    w.bytes().to_vec()
}

fn classify_set(attrs: &[u8]) -> Result<Requested<'_>, Refusal> {
    classify(
        &Request {
            cmd: Cmd::SetGroups.raw(),
            attrs,
            ..Request::default()
        },
        &LIMITS,
    )
}

#[test]
fn set_groups_reads_every_listen_group() {
    let attrs = set_groups(&[], &[3, 8, 3, 1]);
    let Ok(Requested::SetGroups(groups)) = classify_set(&attrs) else {
        panic!("{:?}", classify_set(&attrs));
    };
    assert_eq!(groups.iter().collect::<Vec<_>>(), [3, 8, 3, 1]);
    let set = groups.set();
    assert_eq!(set.iter().collect::<Vec<_>>(), [1, 3, 8]);
    assert!(set.contains(3) && !set.contains(2) && !set.contains(0));
    assert!(!set.contains(MAX_GROUPS + 1));
    // None named: every group again (as before any choice).
    assert!(matches!(classify_set(&[]), Ok(Requested::SetGroups(g)) if g.set() == GroupSet::ALL));
    assert_eq!(GroupSet::default(), GroupSet::ALL);
    assert!(GroupSet::ALL.contains(1) && GroupSet::ALL.contains(MAX_GROUPS));
    assert!(GroupSet::EMPTY.is_empty() && !set.is_empty());
    assert_eq!(format!("{set:?}"), "{1, 3, 8}");
    assert_eq!(format!("{:?}", GroupSet::ALL), "GroupSet(all)");
}

#[test]
fn set_groups_refuses_a_group_past_the_modules_and_points_at_it() {
    // The second listen-group (after an 8-byte one) is 9 of 8 groups.
    let attrs = set_groups(&[], &[2, 9, 10]);
    let e = classify_set(&attrs).unwrap_err();
    assert_eq!(
        e,
        Refusal::At {
            error: RequestError::BadGroup {
                group: 9,
                groups: 8
            },
            offset: 8
        }
    );
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(e.attr_offset(), Some(8));
    assert_eq!(e.bad_attr(), None);
    assert_eq!(e.to_string(), "group 9 is not in 1..=8");
    // Offsets count what comes before, padding included; other types are
    // skipped.
    let attrs = set_groups(&[(Attr::Payload.raw(), b"abcde")], &[0]);
    assert_eq!(classify_set(&attrs).unwrap_err().attr_offset(), Some(12));
    // Without the kernel's policy a listen-group of the wrong size is group 0.
    let mut buf = [0u8; 8];
    let mut w = AttrWriter::new(&mut buf);
    w.put(Attr::ListenGroup.raw(), &[1, 0]).unwrap();
    let attrs = w.bytes().to_vec();
    assert!(matches!(
        classify_set(&attrs),
        Err(Refusal::At {
            error: RequestError::BadGroup { group: 0, .. },
            offset: 0
        })
    ));
}

#[test]
fn group_set_words_are_the_bitmap() {
    let mut s = GroupSet::EMPTY;
    assert!(s.insert(1) && s.insert(64) && s.insert(65) && s.insert(MAX_GROUPS));
    assert!(!s.insert(0) && !s.insert(MAX_GROUPS + 1));
    let w = s.words();
    assert_eq!(w[0], 1 | 1 << 63);
    assert_eq!(w[1], 1);
    assert_eq!(w[GroupSet::WORDS - 1], 1 << 63);
    assert_eq!(GroupSet::from_words(*w), s);
}

proptest! {
    /// Whatever groups a client names, the set holds exactly them.
    #[test]
    fn set_groups_round_trip(groups in proptest::collection::vec(1u32..=8, 0..20)) {
        let attrs = set_groups(&[], &groups);
        let want: std::collections::BTreeSet<u32> = groups.iter().copied().collect();
        match classify_set(&attrs) {
            Ok(Requested::SetGroups(g)) if want.is_empty() => prop_assert_eq!(g.set(), GroupSet::ALL),
            Ok(Requested::SetGroups(g)) => {
                prop_assert_eq!(g.set().iter().collect::<std::collections::BTreeSet<_>>(), want)
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn whatever_fits_reads_back(attrs in proptest::collection::vec((1u16..0x7fff, proptest::collection::vec(any::<u8>(), 0..40)), 0..12)) {
        let mut buf = vec![0u8; 12 * 48];
        let mut w = AttrWriter::new(&mut buf);
        for (t, d) in &attrs {
            w.put(*t, d).unwrap();
        }
        prop_assert_eq!(w.len() % 4, 0);
        prop_assert_eq!(walk(w.bytes()), attrs);
    }
}
