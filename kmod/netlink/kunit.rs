// SPDX-License-Identifier: GPL-2.0

//! In-kernel unit tests of the layer and of the shared decoder as the kernel
//! compiles it. They live in the test module `rustnl_kunit.ko` (crate root
//! `rustnl_kunit_main.rs`), which the guest suite loads; KUnit runs them
//! when it loads.

use kernel::prelude::*;

#[kunit_tests(rustnl)]
mod tests {
    use super::super::skb::{nlmsg_total_size, payload_len, SkBuff, MAX_PAYLOAD};
    use super::super::*;
    use crate::proto::{
        classify, Action, BroadcastHdr, ErrorKind, Limits, Messages, MsgType, NlMsgHdr,
        NLMSG_HDRLEN, NLM_F_REQUEST,
    };
    use core::fmt;
    use kernel::alloc::flags::{GFP_ATOMIC, GFP_KERNEL, __GFP_NOWARN, __GFP_ZERO};

    #[test]
    fn message_builder_lays_out_header_parts_and_padding() {
        // The same message from parts only, and from a fixed head and parts.
        let skbs = [
            SkBuff::message(7, 9, 0x10, NLM_F_REQUEST, &[], &[b"ab", b"cde"], GFP_KERNEL),
            SkBuff::message(7, 9, 0x10, NLM_F_REQUEST, b"ab", &[b"c", b"de"], GFP_KERNEL),
        ];
        for skb in skbs {
            assert!(skb.is_ok());
            if let Ok(skb) = skb {
                let data = skb.data();
                assert_eq!(data.len(), 24); // 16 + 5, aligned to 4
                let h = NlMsgHdr::parse(data).unwrap_or_default();
                assert_eq!(
                    (h.len, h.ty, h.flags, h.seq, h.pid),
                    (21, 0x10, NLM_F_REQUEST, 9, 7)
                );
                assert_eq!(data.get(16..21), Some(&b"abcde"[..]));
                assert_eq!(data.get(21..24), Some(&[0u8, 0, 0][..]));
            }
        }
    }

    #[test]
    fn message_builder_handles_empty_payload() {
        let skb = SkBuff::message(1, 2, 0x12, 0, &[], &[], GFP_KERNEL);
        assert!(skb.is_ok());
        if let Ok(skb) = skb {
            assert_eq!(skb.data().len(), NLMSG_HDRLEN);
        }
    }

    #[test]
    fn listening_starts_with_every_group_and_takes_a_bitmap() {
        use super::super::genl::{Listening, LISTEN_WORDS, NUMBERED_GROUPS};
        let l = Listening::all();
        assert!(l.contains(1) && l.contains(NUMBERED_GROUPS));
        assert!(!l.contains(0) && !l.contains(NUMBERED_GROUPS + 1));
        let mut words = [0u64; LISTEN_WORDS];
        // Group 3, and the last one.
        words[0] = 1 << 2;
        words[LISTEN_WORDS - 1] = 1 << 63;
        l.set(&words);
        assert!(l.contains(3) && l.contains(NUMBERED_GROUPS));
        assert!(!l.contains(2) && !l.contains(4) && !l.contains(64) && !l.contains(65));
    }

    #[test]
    fn batch_room_fits_an_order_3_allocation() {
        // Data and `skb_shared_info` together must fit 32 KiB: one order-3
        // block, not order 4.
        let shared = super::super::skb::SHARED_INFO;
        assert!(super::super::skb::BATCH_ROOM + shared <= 32 * 1024);
        assert!(super::super::skb::BATCH_ROOM >= 30 * 1024);
    }

    #[test]
    fn total_size_aligns_and_never_overflows() {
        assert_eq!(nlmsg_total_size(0), Some(16));
        assert_eq!(nlmsg_total_size(1), Some(20));
        assert_eq!(nlmsg_total_size(4), Some(20));
        assert_eq!(nlmsg_total_size(usize::MAX), None);
    }

    #[test]
    fn payload_length_adds_head_and_parts_within_the_c_lengths() {
        assert_eq!(payload_len(b"ab", &[b"c", b"de"]), Ok(5));
        assert_eq!(payload_len(&[], &[]), Ok(0));
        assert_eq!(payload_len(&[0u8; 8], &[]), Ok(8));
        // The bound lets every later size check go: the largest message
        // still fits the `int` lengths of `__alloc_skb` and `__nlmsg_put`.
        let size = nlmsg_total_size(MAX_PAYLOAD);
        assert!(size.is_some_and(|s| i32::try_from(s).is_ok()));
        assert!(i32::try_from(MAX_PAYLOAD).is_ok());
    }

    #[test]
    fn gfp_flags_convert_to_their_c_values() {
        assert_eq!(raw_gfp(GFP_KERNEL), bindings::GFP_KERNEL);
        assert_eq!(raw_gfp(GFP_ATOMIC), bindings::GFP_ATOMIC);
        assert_eq!(
            raw_gfp(GFP_KERNEL | __GFP_ZERO),
            bindings::GFP_KERNEL | bindings::__GFP_ZERO
        );
        assert_eq!(
            raw_gfp(GFP_ATOMIC | __GFP_NOWARN),
            bindings::GFP_ATOMIC | bindings::__GFP_NOWARN
        );
    }

    #[test]
    fn ext_ack_text_is_truncated_and_terminated() {
        use datagram::CBufWriter;
        let mut buf = [1 as c_char; 8];
        let mut w = CBufWriter::new(&mut buf);
        let _ = fmt::write(&mut w, format_args!("{}-{}", "abcdef", 12345));
        w.terminate();
        assert_eq!(buf[6], b'-' as c_char); // "abcdef-" fits, the rest is cut
        assert_eq!(buf[7], 0);
        let mut buf = [1 as c_char; 8];
        let mut w = CBufWriter::new(&mut buf);
        let _ = fmt::write(&mut w, format_args!("ok"));
        w.terminate();
        assert_eq!(buf[2], 0);
    }

    #[test]
    fn shared_validation_in_the_kernel() {
        let limits = Limits {
            max_payload: 4,
            groups: 2,
        };
        let mut buf = [0u8; 64];
        let hdr = NlMsgHdr {
            len: 16 + 8 + 3,
            ty: MsgType::Broadcast.raw(),
            flags: NLM_F_REQUEST,
            seq: 1,
            pid: 0,
        };
        buf[..16].copy_from_slice(&hdr.to_bytes());
        buf[16..24].copy_from_slice(&BroadcastHdr { group: 2 }.to_bytes());
        buf[24..27].copy_from_slice(b"abc");
        let mut it = Messages::new(&buf[..27]);
        match it.next() {
            Some(Ok(m)) => assert_eq!(
                classify(&m, &limits),
                Ok(Action::Broadcast {
                    group: 2,
                    payload: b"abc"
                })
            ),
            _ => assert!(false),
        }
        assert!(it.next().is_none());
        buf[16..24].copy_from_slice(&BroadcastHdr { group: 3 }.to_bytes());
        match Messages::new(&buf[..27]).next() {
            Some(Ok(m)) => assert_eq!(
                classify(&m, &limits).map_err(|e| e.kind()),
                Err(ErrorKind::Invalid)
            ),
            _ => assert!(false),
        }
        // A length past the end is reported, not read.
        buf[..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(matches!(Messages::new(&buf[..27]).next(), Some(Err(_))));
    }
}
