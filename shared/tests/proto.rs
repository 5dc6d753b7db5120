//! Host tests of the shared layouts: exact cases and properties.

use proptest::prelude::*;
use rustnl_shared::*;

fn encode(msgs: &[(u16, u16, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ty, flags, seq, payload) in msgs {
        let h = NlMsgHdr {
            len: (NLMSG_HDRLEN + payload.len()) as u32,
            ty: *ty,
            flags: *flags,
            seq: *seq,
            pid: 0,
        };
        out.extend_from_slice(&h.to_bytes());
        out.extend_from_slice(payload);
        out.resize(nlmsg_align(out.len()), 0);
    }
    out
}

#[test]
fn header_layout_matches_struct_nlmsghdr() {
    let h = NlMsgHdr {
        len: 0x11223344,
        ty: 0x5566,
        flags: 0x7788,
        seq: 0x99aabbcc,
        pid: 0xddeeff00,
    };
    let b = h.to_bytes();
    assert_eq!(&b[0..4], &0x11223344u32.to_ne_bytes());
    assert_eq!(&b[4..6], &0x5566u16.to_ne_bytes());
    assert_eq!(&b[6..8], &0x7788u16.to_ne_bytes());
    assert_eq!(&b[8..12], &0x99aabbccu32.to_ne_bytes());
    assert_eq!(&b[12..16], &0xddeeff00u32.to_ne_bytes());
    assert_eq!(NlMsgHdr::parse(&b), Some(h));
    assert_eq!(NlMsgHdr::parse(&b[..15]), None);
    assert_eq!(std::mem::size_of::<libc_nlmsghdr>(), NLMSG_HDRLEN);
}

/// The C layout, to pin the size.
#[repr(C)]
struct libc_nlmsghdr {
    _len: u32,
    _ty: u16,
    _flags: u16,
    _seq: u32,
    _pid: u32,
}

#[test]
fn constants_match_uapi() {
    assert_eq!(NLM_F_REQUEST, 1);
    assert_eq!(NLM_F_ACK, 4);
    assert_eq!(NLM_F_DUMP, 0x300);
    assert_eq!(NLMSG_ERROR, 2);
    assert_eq!(NLMSG_DONE, 3);
    assert_eq!(NLMSG_MIN_TYPE, 0x10);
    assert_eq!(MAX_LINKS, 32);
    assert_eq!(DEFAULT_UNIT, 31);
}

#[test]
fn message_types_round_trip_and_are_not_control_types() {
    for t in MsgType::ALL {
        assert_eq!(MsgType::from_raw(t.raw()), Some(t));
        assert!(t.raw() >= NLMSG_MIN_TYPE);
    }
    assert_eq!(MsgType::from_raw(0x7f), None);
    assert_eq!(MsgType::Echo.name(), "echo");
}

#[test]
fn splits_batches_in_order() {
    let msgs: Vec<_> = (0..5u32)
        .map(|i| {
            (
                MsgType::Echo.raw(),
                NLM_F_REQUEST,
                i,
                vec![i as u8; i as usize],
            )
        })
        .collect();
    let buf = encode(&msgs);
    let got: Vec<_> = Messages::new(&buf).collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), 5);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.header.seq, i as u32);
        assert_eq!(m.payload, &vec![i as u8; i][..]);
        assert_eq!(m.bytes.len(), NLMSG_HDRLEN + i);
    }
}

#[test]
fn final_message_without_padding_is_accepted() {
    let mut buf = encode(&[(0x10, 1, 1, vec![1, 2, 3])]);
    buf.truncate(NLMSG_HDRLEN + 3);
    let got: Vec<_> = Messages::new(&buf).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].unwrap().payload, &[1, 2, 3]);
}

#[test]
fn malformed_lengths_are_reported_and_stop() {
    assert_eq!(Messages::new(&[]).next(), None);
    let stray = [0u8; 7];
    assert_eq!(
        Messages::new(&stray).collect::<Vec<_>>(),
        vec![Err(Malformed::TruncatedHeader {
            offset: 0,
            available: 7
        })]
    );
    let mut short = NlMsgHdr {
        len: 8,
        ty: 0x10,
        flags: 1,
        seq: 3,
        pid: 0,
    }
    .to_bytes()
    .to_vec();
    short.extend_from_slice(&[0; 16]);
    let r: Vec<_> = Messages::new(&short).collect();
    assert_eq!(r.len(), 1);
    assert!(matches!(
        r[0],
        Err(Malformed::LengthTooSmall { offset: 0, .. })
    ));
    let long = NlMsgHdr {
        len: 1000,
        ty: 0x10,
        flags: 1,
        seq: 3,
        pid: 0,
    }
    .to_bytes();
    let r: Vec<_> = Messages::new(&long).collect();
    assert!(matches!(
        r[0],
        Err(Malformed::LengthPastEnd { available: 16, .. })
    ));
    assert_eq!(r[0].unwrap_err().header().unwrap().seq, 3);
    assert_eq!(
        r[0].unwrap_err().to_string(),
        "nlmsg_len 1000 exceeds the 16 bytes left in the datagram"
    );
    // A good message, then stray bytes: the message, then the error at its offset.
    let mut buf = encode(&[(0x10, 1, 1, vec![9; 4])]);
    buf.extend_from_slice(&[1, 2, 3]);
    let r: Vec<_> = Messages::new(&buf).collect();
    assert!(r[0].is_ok());
    assert_eq!(
        r[1],
        Err(Malformed::TruncatedHeader {
            offset: 20,
            available: 3
        })
    );
}

const L8: Limits = Limits {
    max_payload: 8,
    groups: 4,
};

#[test]
fn classify_decides_each_case() {
    let buf = encode(&[
        (MsgType::Echo.raw(), NLM_F_REQUEST, 1, b"hi".to_vec()),
        (MsgType::Echo.raw(), 0, 2, vec![]),
        (0x7f, NLM_F_REQUEST, 3, vec![]),
        (NLMSG_NOOP, NLM_F_REQUEST, 4, vec![]),
        (NLMSG_DONE, NLM_F_REQUEST, 5, vec![]),
        (MsgType::Echo.raw(), NLM_F_REQUEST, 6, vec![0; 9]),
    ]);
    let m: Vec<_> = Messages::new(&buf).map(Result::unwrap).collect();
    assert_eq!(classify(&m[0], &L8), Ok(Action::Echo { payload: b"hi" }));
    assert_eq!(
        classify(&m[1], &L8),
        Err(RequestError::NotARequest { ty: 0x10 })
    );
    assert_eq!(
        classify(&m[2], &L8),
        Err(RequestError::UnknownType { ty: 0x7f })
    );
    assert_eq!(classify(&m[3], &L8), Ok(Action::Noop));
    assert_eq!(
        classify(&m[4], &L8),
        Err(RequestError::ControlMessage { ty: 3 })
    );
    let big = classify(&m[5], &L8).unwrap_err();
    assert_eq!(big, RequestError::PayloadTooLarge { len: 9, max: 8 });
    assert_eq!(big.kind(), ErrorKind::TooLarge);
    assert_eq!(
        big.to_string(),
        "payload of 9 bytes exceeds max_payload (8)"
    );
    assert_eq!(
        RequestError::UnknownType { ty: 0x7f }.kind(),
        ErrorKind::NotSupported
    );
    assert_eq!(
        RequestError::UnknownType { ty: 0x7f }.to_string(),
        "unknown message type 0x7f"
    );
}

#[test]
fn dump_requests_are_refused_as_not_supported() {
    let buf = encode(&[
        (MsgType::GetInfo.raw(), NLM_F_REQUEST | NLM_F_DUMP, 1, vec![]),
        (MsgType::Echo.raw(), NLM_F_REQUEST | NLM_F_DUMP, 2, b"x".to_vec()),
        // One of the two bits alone is not a dump (NLM_F_ROOT / NLM_F_MATCH,
        // or NLM_F_REPLACE / NLM_F_EXCL for other requests), as in the core.
        (MsgType::GetInfo.raw(), NLM_F_REQUEST | 0x100, 3, vec![]),
        (MsgType::GetInfo.raw(), NLM_F_REQUEST | 0x200, 4, vec![]),
    ]);
    let m: Vec<_> = Messages::new(&buf).map(Result::unwrap).collect();
    for (i, ty) in [(0, MsgType::GetInfo.raw()), (1, MsgType::Echo.raw())] {
        let e = classify(&m[i], &L8).unwrap_err();
        assert_eq!(e, RequestError::DumpNotSupported { ty });
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        assert!(e.to_string().contains("NLM_F_DUMP"), "{e}");
    }
    assert_eq!(classify(&m[2], &L8), Ok(Action::GetInfo));
    assert_eq!(classify(&m[3], &L8), Ok(Action::GetInfo));
}

#[test]
fn error_message_with_ext_ack_decodes() {
    // What netlink_ack builds for an error with NETLINK_EXT_ACK, no CAP_ACK.
    let req = NlMsgHdr {
        len: 20,
        ty: 0x10,
        flags: 1,
        seq: 77,
        pid: 0,
    };
    let mut p = Vec::new();
    p.extend_from_slice(&(-22i32).to_ne_bytes());
    p.extend_from_slice(&req.to_bytes());
    p.extend_from_slice(b"abcd");
    let mut tlv = vec![0u8; 64];
    let mut pos = 0;
    put_attr(&mut tlv, &mut pos, NLMSGERR_ATTR_MSG, b"bad thing\0").unwrap();
    put_attr(&mut tlv, &mut pos, NLMSGERR_ATTR_OFFS, &24u32.to_ne_bytes()).unwrap();
    put_attr(&mut tlv, &mut pos, NLMSGERR_ATTR_MISS_TYPE, &2u32.to_ne_bytes()).unwrap();
    p.extend_from_slice(&tlv[..pos]);
    let e = ErrorMsg::parse(&p, NLM_F_ACK_TLVS).unwrap();
    assert_eq!(e.error, -22);
    assert_eq!(e.request, req);
    assert_eq!(e.ext_msg, Some(&b"bad thing"[..]));
    assert_eq!(e.ext_offset, Some(24));
    assert_eq!(e.ext_miss_type, Some(2));
    // Capped: no request payload in between.
    let mut capped = p[..4 + 16].to_vec();
    capped.extend_from_slice(&tlv[..pos]);
    let e = ErrorMsg::parse(&capped, NLM_F_ACK_TLVS | NLM_F_CAPPED).unwrap();
    assert_eq!(e.ext_msg, Some(&b"bad thing"[..]));
    assert_eq!(ErrorMsg::parse(&p[..10], 0), Err(BadErrorMsg));
}

#[test]
fn attrs_reject_bad_lengths() {
    let mut buf = vec![0u8; 16];
    let mut pos = 0;
    put_attr(&mut buf, &mut pos, 5, &[1, 2, 3]).unwrap();
    assert_eq!(pos, 8);
    assert_eq!(&buf[7..8], &[0]); // padding zeroed
    buf[8..10].copy_from_slice(&2u16.to_ne_bytes()); // nla_len < header
    let r: Vec<_> = Attrs::new(&buf).collect();
    assert_eq!(
        r[0],
        Ok(Attr {
            ty: 5,
            payload: &[1, 2, 3]
        })
    );
    assert_eq!(r[1], Err(BadAttr { offset: 8 }));
    assert_eq!(r.len(), 2);
    // Does not fit: nothing written.
    let mut small = [0u8; 6];
    let mut pos = 0;
    assert_eq!(put_attr(&mut small, &mut pos, 1, &[1, 2, 3]), None);
    assert_eq!(pos, 0);
}

proptest! {
    #[test]
    fn encode_then_split_round_trips(msgs in prop::collection::vec(
        (any::<u16>(), any::<u16>(), any::<u32>(), prop::collection::vec(any::<u8>(), 0..300)), 0..12)) {
        let buf = encode(&msgs);
        let got: Vec<_> = Messages::new(&buf).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got.len(), msgs.len());
        for (m, (ty, flags, seq, payload)) in got.iter().zip(&msgs) {
            prop_assert_eq!(m.header.ty, *ty);
            prop_assert_eq!(m.header.flags, *flags);
            prop_assert_eq!(m.header.seq, *seq);
            prop_assert_eq!(m.payload, &payload[..]);
        }
    }

    #[test]
    fn splitting_arbitrary_bytes_never_panics_and_stays_in_bounds(buf in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut covered = 0;
        for item in Messages::new(&buf) {
            match item {
                Ok(m) => {
                    prop_assert_eq!(m.offset, covered);
                    prop_assert!(m.offset + m.bytes.len() <= buf.len());
                    prop_assert_eq!(m.bytes.len(), m.header.len as usize);
                    covered = (m.offset + nlmsg_align(m.bytes.len())).min(buf.len());
                }
                Err(e) => { prop_assert_eq!(e.offset(), covered); covered = buf.len(); }
            }
        }
        prop_assert_eq!(covered, buf.len());
    }

    #[test]
    fn decoding_arbitrary_errors_and_attrs_never_panics(buf in prop::collection::vec(any::<u8>(), 0..256), flags in any::<u16>()) {
        let _ = ErrorMsg::parse(&buf, flags);
        for a in Attrs::new(&buf).flatten() { prop_assert!(a.payload.len() <= buf.len()); }
    }

    #[test]
    fn put_attr_round_trips(items in prop::collection::vec((0u16..0x3fff, prop::collection::vec(any::<u8>(), 0..40)), 0..8)) {
        let mut buf = vec![0u8; 1024];
        let mut pos = 0;
        for (ty, p) in &items { put_attr(&mut buf, &mut pos, *ty, p).unwrap(); }
        let got: Vec<_> = Attrs::new(&buf[..pos]).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got.len(), items.len());
        for (a, (ty, p)) in got.iter().zip(&items) { prop_assert_eq!(a.ty, *ty); prop_assert_eq!(a.payload, &p[..]); }
    }
}

fn one(ty: MsgType, payload: &[u8]) -> Vec<u8> {
    encode(&[(ty.raw(), NLM_F_REQUEST, 1, payload.to_vec())])
}

#[test]
fn broadcast_requests_are_validated() {
    let mut p = BroadcastHdr { group: 3 }.to_bytes().to_vec();
    p.extend_from_slice(b"hello");
    let buf = one(MsgType::Broadcast, &p);
    let m = Messages::new(&buf).next().unwrap().unwrap();
    assert_eq!(
        classify(&m, &L8),
        Ok(Action::Broadcast {
            group: 3,
            payload: b"hello"
        })
    );
    for (group, ok) in [
        (0u32, false),
        (1, true),
        (4, true),
        (5, false),
        (u32::MAX, false),
    ] {
        let buf = one(MsgType::Broadcast, &BroadcastHdr { group }.to_bytes());
        let m = Messages::new(&buf).next().unwrap().unwrap();
        let r = classify(&m, &L8);
        assert_eq!(r.is_ok(), ok, "group {group}: {r:?}");
        if !ok {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Invalid);
            assert_eq!(
                r.unwrap_err().to_string(),
                format!("group {group} is not in 1..=4")
            );
        }
    }
    // Short, version 0, hdr_len too small or past the end.
    for (bytes, text) in [
        (
            vec![1u8, 0, 8],
            "bad broadcast header: header needs 8 bytes, message has 3",
        ),
        (
            vec![0u8, 0, 8, 0, 1, 0, 0, 0],
            "bad broadcast header: header version 0 is invalid",
        ),
        (
            [1u16.to_ne_bytes(), 4u16.to_ne_bytes()]
                .concat()
                .into_iter()
                .chain([1, 0, 0, 0])
                .collect(),
            "hdr_len 4 outside 8..=8",
        ),
        (
            [1u16.to_ne_bytes(), 99u16.to_ne_bytes()]
                .concat()
                .into_iter()
                .chain([1, 0, 0, 0])
                .collect(),
            "hdr_len 99 outside 8..=8",
        ),
    ] {
        let buf = one(MsgType::Broadcast, &bytes);
        let m = Messages::new(&buf).next().unwrap().unwrap();
        let e = classify(&m, &L8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains(text), "{e}");
    }
    // Payload over the limit.
    let mut p = BroadcastHdr { group: 1 }.to_bytes().to_vec();
    p.extend_from_slice(&[0; 9]);
    let buf = one(MsgType::Broadcast, &p);
    let m = Messages::new(&buf).next().unwrap().unwrap();
    assert_eq!(classify(&m, &L8).unwrap_err().kind(), ErrorKind::TooLarge);
}

#[test]
fn a_longer_future_header_is_read_and_skipped() {
    // Version 2 appends 8 bytes to the broadcast header: version-1 readers
    // still find the group and the payload.
    let mut p = Vec::new();
    p.extend_from_slice(&2u16.to_ne_bytes());
    p.extend_from_slice(&16u16.to_ne_bytes());
    p.extend_from_slice(&2u32.to_ne_bytes());
    p.extend_from_slice(&[0xee; 8]);
    p.extend_from_slice(b"text");
    let (h, rest) = BroadcastHdr::parse(&p).unwrap();
    assert_eq!((h.group, rest), (2, &b"text"[..]));
}

#[test]
fn get_info_and_kernel_only_types() {
    let buf = one(MsgType::GetInfo, b"");
    let m = Messages::new(&buf).next().unwrap().unwrap();
    assert_eq!(classify(&m, &L8), Ok(Action::GetInfo));
    let buf = one(MsgType::GetInfo, b"x");
    let m = Messages::new(&buf).next().unwrap().unwrap();
    assert_eq!(classify(&m, &L8).unwrap_err().kind(), ErrorKind::Invalid);
    for ty in [
        MsgType::Event,
        MsgType::Heartbeat,
        MsgType::Goodbye,
        MsgType::Info,
    ] {
        let buf = one(ty, b"");
        let m = Messages::new(&buf).next().unwrap().unwrap();
        let e = classify(&m, &L8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        assert!(e.to_string().contains("sent by the kernel"));
    }
}

#[test]
fn layout_sizes_are_fixed() {
    assert_eq!(BroadcastHdr::LEN, 8);
    assert_eq!(BroadcastResult::LEN, 24);
    assert_eq!(EventHdr::LEN, 32);
    assert_eq!(Info::LEN, 104);
    let e = EventHdr {
        group: 1,
        origin: 0,
        seq: 1,
        timestamp_ns: 2,
    }
    .to_bytes();
    assert_eq!(&e[0..2], &1u16.to_ne_bytes());
    assert_eq!(&e[2..4], &32u16.to_ne_bytes());
}

proptest! {
    #[test]
    fn layouts_round_trip(group in any::<u32>(), origin in any::<u32>(), seq in any::<u64>(), ts in any::<u64>(),
                          flags in 0u8..4, counters in prop::array::uniform10(any::<u64>()),
                          payload in prop::collection::vec(any::<u8>(), 0..64)) {
        let b = BroadcastHdr { group };
        let mut wire = b.to_bytes().to_vec();
        wire.extend_from_slice(&payload);
        prop_assert_eq!(BroadcastHdr::parse(&wire).unwrap(), (b, &payload[..]));
        let r = BroadcastResult { group, delivered: flags & 1 != 0, delivery_failed: flags & 2 != 0, event_seq: seq };
        prop_assert_eq!(BroadcastResult::parse(&r.to_bytes()).unwrap(), r);
        let e = EventHdr { group, origin, seq, timestamp_ns: ts };
        let mut wire = e.to_bytes().to_vec();
        wire.extend_from_slice(&payload);
        prop_assert_eq!(EventHdr::parse(&wire).unwrap(), (e, &payload[..]));
        let i = Info { version: 1, unit: origin, groups: group, max_payload: 7, heartbeat_ms: 9,
                       open_broadcast: flags & 1 != 0, counters: Counters::from_array(counters) };
        prop_assert_eq!(Info::parse(&i.to_bytes()).unwrap(), i);
    }

    #[test]
    fn layouts_never_panic_on_arbitrary_bytes(buf in prop::collection::vec(any::<u8>(), 0..160)) {
        let _ = BroadcastHdr::parse(&buf);
        let _ = BroadcastResult::parse(&buf);
        let _ = EventHdr::parse(&buf);
        let _ = Info::parse(&buf);
    }
}

/// A one-byte payload is "1 byte", not "1 bytes" (the module's ext-ack
/// text with max_payload=0).
#[test]
fn payload_too_large_counts_bytes_in_english() {
    let one = RequestError::PayloadTooLarge { len: 1, max: 0 };
    assert_eq!(one.to_string(), "payload of 1 byte exceeds max_payload (0)");
    let many = RequestError::PayloadTooLarge { len: 65, max: 64 };
    assert_eq!(many.to_string(), "payload of 65 bytes exceeds max_payload (64)");
}
