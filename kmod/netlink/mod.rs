// SPDX-License-Identifier: GPL-2.0

//! A small safe layer over classic (non-generic) netlink.
//!
//! Every `unsafe` block of rustnl lives in this folder, one concept a file:
//!
//! - [`pernet`]: [`Pernet`] registers a [`Protocol`] with every network
//!   namespace. Each namespace gets its protocol state, built in full and
//!   stored in the namespace's `net_generic` slot *before* its kernel socket
//!   exists (then cached in the socket's `sk_user_data` for the input
//!   path), then its [`KernelSocket`] and, if the protocol asks, a
//!   [`Ticker`](ticker::Ticker).
//! - [`socket`]: [`KernelSocket`] owns a kernel netlink socket (`struct
//!   sock` from `__netlink_kernel_create`); [`Sock`] is the reference-counted
//!   C object ([`ARef<Sock>`](kernel::sync::aref::ARef)); [`KernelSock`] is a
//!   borrowed kernel socket that multicasts.
//! - [`datagram`]: [`Datagram`] is the borrowed view of one datagram a user
//!   socket sent, handed to the protocol in the socket's input callback; it
//!   answers the sender (replies, acks, errors with extended-ack text).
//! - [`skb`]: [`SkBuff`](skb::SkBuff) owns an outgoing `struct sk_buff` until
//!   it is sent.
//! - [`ticker`]: a self-rearming delayed work item per namespace.
//! - [`ffi`]: the one-line C accessors of `netlink_helpers.c`.
//!
//! C helpers that are `static inline` (`netlink_kernel_create`, `nlmsg_new`,
//! `nlmsg_data`, `NETLINK_CB`, `net_generic`, `sock_hold`) are re-expressed
//! over exported functions or go through `netlink_helpers.c`; `struct sock`
//! is opaque to the Rust bindings. Modelled on `rust/kernel/net/netlink.rs`
//! (generic netlink), `rust/kernel/pid_namespace.rs` (a reference-counted C
//! object behind [`AlwaysRefCounted`](kernel::sync::aref::AlwaysRefCounted))
//! and `rust/kernel/workqueue.rs`.
//!
//! # Module lifetime
//!
//! The kernel sockets are created with this module as their owner, as every
//! in-tree netlink family does: each user socket of the unit holds a module
//! reference (so `rmmod` is refused while one is open) and a reference on its
//! network namespace. So no user socket — and so no sender — outlives the
//! module or its namespace. Teardown still waits for senders (see
//! [`socket::ReleasedSocket`]) so that no input code can run after its state
//! is gone, whatever the caller.
//!
//! # The load-time window of the netlink core
//!
//! The unit is usable in every namespace from the moment its first kernel
//! socket exists. On kernels without
//! `tests/kernel-patches/0001-netlink-mark-kernel-sockets-before-making-them-reach.patch`,
//! `__netlink_kernel_create` makes each later namespace's socket findable
//! before it marks it a kernel socket; a user in that namespace who sends to
//! port 0 inside that moment hits `BUG()` in `netlink_data_ready`. A module
//! cannot close that window from outside the core; `README.md` ("Kernels
//! without the netlink fix") says what it does and what remains exposed.
//!
//! C headers: [`include/linux/netlink.h`](srctree/include/linux/netlink.h),
//! [`include/net/netlink.h`](srctree/include/net/netlink.h),
//! [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h).

use compat::bindings;
use kernel::{alloc::Flags, prelude::*};

pub(crate) mod compat;
pub(crate) mod datagram;
mod ffi;
pub(crate) mod genl;
pub(crate) mod pernet;
pub(crate) mod skb;
pub(crate) mod socket;
mod ticker;

pub(crate) use datagram::Datagram;
pub(crate) use genl::{GenlFamily, GenlNet, GenlProtocol};
pub(crate) use pernet::Pernet;
pub(crate) use socket::{Delivery, KernelSock};

/// How each namespace's kernel socket is set up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SocketConfig {
    /// Netlink protocol unit.
    pub(crate) unit: u32,
    /// Number of multicast groups.
    pub(crate) groups: u32,
    /// Period of [`Protocol::tick`] in ms; 0 for none.
    pub(crate) tick_ms: u32,
}

/// A netlink protocol served in every network namespace.
///
/// The state of a namespace is built by [`Protocol::new_state`] before the
/// namespace's kernel socket exists and is only ever shared (`&self`) after
/// that: what changes (counters) must use interior mutability.
pub(crate) trait Protocol: Sized + Send + Sync + 'static {
    /// The socket configuration (read once per namespace).
    fn config() -> SocketConfig;
    /// Creates the state of one namespace.
    fn new_state() -> Result<Self>;
    /// Handles one datagram; runs in the sending task's context (may sleep).
    fn receive(&self, sock: &KernelSock, datagram: &Datagram<'_>);
    /// Runs every `tick_ms` in process context (may sleep).
    fn tick(&self, ns: &Netns<'_>);
    /// Runs once when the namespace stops being served (it goes away, or
    /// the module unloads), before the unit's socket is released.
    fn closing(&self, ns: &Netns<'_>);
}

/// What a protocol can send on in one namespace, outside a request.
pub(crate) struct Netns<'a> {
    /// The unit's kernel socket; `None` in a namespace served without it
    /// (one that existed at load, with `existing_netns=0`).
    pub(crate) classic: Option<&'a KernelSock>,
    /// The generic netlink family's listeners here; `None` while the family
    /// is not registered.
    pub(crate) genl: Option<GenlNet<'a>>,
}

/// `CLOCK_REALTIME` now, in nanoseconds (NMI-safe, any context).
pub(crate) fn realtime_ns() -> u64 {
    // SAFETY: `ktime_get_real_fast_ns` has no preconditions.
    unsafe { bindings::ktime_get_real_fast_ns() }
}

/// The C `gfp_t` of `flags`.
///
/// `Flags::as_raw` is private to the kernel crate in 7.3, so the raw value
/// is found by comparison with the public constants. The comparisons use
/// the derived (inlined) `==`, so with constant flags this folds to the
/// constant; `Flags::contains` is not inlined across crates and would cost
/// a call per constant on every allocation. A combination of constants is
/// rebuilt bit group by bit group.
#[inline(always)]
pub(crate) fn raw_gfp(flags: Flags) -> bindings::gfp_t {
    use kernel::alloc::flags::{
        GFP_ATOMIC, GFP_KERNEL, GFP_KERNEL_ACCOUNT, GFP_NOWAIT, __GFP_HIGHMEM, __GFP_NOWARN,
        __GFP_ZERO,
    };
    if flags == GFP_KERNEL {
        return bindings::GFP_KERNEL;
    }
    if flags == GFP_ATOMIC {
        return bindings::GFP_ATOMIC;
    }
    [
        (GFP_KERNEL, bindings::GFP_KERNEL),
        (GFP_KERNEL_ACCOUNT, bindings::GFP_KERNEL_ACCOUNT),
        (GFP_ATOMIC, bindings::GFP_ATOMIC),
        (GFP_NOWAIT, bindings::GFP_NOWAIT),
        (__GFP_ZERO, bindings::__GFP_ZERO),
        (__GFP_HIGHMEM, bindings::__GFP_HIGHMEM),
        (__GFP_NOWARN, bindings::__GFP_NOWARN),
    ]
    .iter()
    .filter(|(f, _)| flags.contains(*f))
    .fold(0, |acc, (_, raw)| acc | raw)
}

/// In-kernel unit tests of the layer and of the shared decoder as the kernel
/// compiles it; they run when the module loads on a KUnit-enabled kernel.
#[kunit_tests(rustnl)]
mod tests {
    use super::skb::{nlmsg_total_size, SkBuff};
    use super::*;
    use crate::proto::{
        classify, Action, BroadcastHdr, ErrorKind, Limits, Messages, MsgType, NlMsgHdr,
        NLMSG_HDRLEN, NLM_F_REQUEST,
    };
    use core::fmt;
    use kernel::alloc::flags::{GFP_ATOMIC, GFP_KERNEL, __GFP_NOWARN, __GFP_ZERO};

    #[test]
    fn message_builder_lays_out_header_parts_and_padding() {
        let skb = SkBuff::message(7, 9, 0x10, NLM_F_REQUEST, &[b"ab", b"cde"], GFP_KERNEL);
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

    #[test]
    fn message_builder_handles_empty_payload() {
        let skb = SkBuff::message(1, 2, 0x12, 0, &[], GFP_KERNEL);
        assert!(skb.is_ok());
        if let Ok(skb) = skb {
            assert_eq!(skb.data().len(), NLMSG_HDRLEN);
        }
    }

    #[test]
    fn batch_room_fits_an_order_3_allocation() {
        // Data and `skb_shared_info` together must fit 32 KiB: one order-3
        // block, not order 4.
        let shared = super::skb::SHARED_INFO;
        assert!(super::skb::BATCH_ROOM + shared <= 32 * 1024);
        assert!(super::skb::BATCH_ROOM >= 30 * 1024);
    }

    #[test]
    fn total_size_aligns_and_never_overflows() {
        assert_eq!(nlmsg_total_size(0), Some(16));
        assert_eq!(nlmsg_total_size(1), Some(20));
        assert_eq!(nlmsg_total_size(4), Some(20));
        assert_eq!(nlmsg_total_size(usize::MAX), None);
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
