// SPDX-License-Identifier: GPL-2.0

//! A small safe layer over classic netlink units and generic netlink
//! families, served in every network namespace.
//!
//! Every `unsafe` block of rustnl lives in this folder, one concept a file,
//! each importing only the files listed before it:
//!
//! - [`compat`]: what differs between the kernel crates of Linux 7.2 and
//!   7.3 (the bindings above all), in one place (`--cfg rustnl_linux_7_2`).
//! - [`ffi`]: the one-line C accessors of `netlink_helpers.c`.
//! - [`skb`]: [`SkBuff`](skb::SkBuff) owns an outgoing `struct sk_buff`
//!   until it is sent.
//! - [`socket`]: [`KernelSocket`](socket::KernelSocket) owns a kernel
//!   netlink socket (from `__netlink_kernel_create`; released on drop);
//!   [`KernelSock`] is the borrowed socket a protocol sends on, with
//!   [`Delivery`] saying what a multicast reached in its namespace.
//! - [`datagram`]: [`Datagram`] is the borrowed view of one datagram a user
//!   socket sent, handed to the protocol in the socket's input callback; it
//!   answers the sender (replies, acks, errors with extended-ack text).
//! - [`ticker`]: a periodic tick that stops synchronously.
//! - [`state`]: [`States`] registers a [`Protocol`]'s state with every
//!   network namespace (pernet operations with a `net_generic` slot).
//! - [`genl`]: [`GenlFamily`] registers a generic netlink family with `do`
//!   operations and per-operation policies; [`Request`](genl::Request) is
//!   one request; [`GenlNet`] multicasts to one namespace, to every
//!   listener or to those of one numbered group, which each socket chooses
//!   ([`Listening`](genl::Listening), the family's per-socket memory).
//! - [`pernet`]: [`Unit`] registers the protocol's unit: each namespace's
//!   kernel socket, tick and input callback.
//!
//! A module registers, in this order: [`States`], [`GenlFamily`], [`Unit`]
//! (each takes the one before as proof), and drops them in the reverse
//! order. Only the last publishes anything user sockets can pin the module
//! with, and it cannot fail once it has (see [`pernet`]).
//!
//! C helpers that are `static inline` (`netlink_kernel_create`, `nlmsg_new`,
//! `nlmsg_data`, `NETLINK_CB`, `net_generic`, `genlmsg_reply`) are
//! re-expressed over exported functions or go through `netlink_helpers.c`;
//! `struct sock` is opaque to the Rust bindings. Modelled on
//! `rust/kernel/net/netlink.rs` (generic netlink),
//! `rust/kernel/pid_namespace.rs` and `rust/kernel/workqueue.rs`.
//!
//! # Toward `rust/kernel/net/netlink.rs`
//!
//! Upstream's file (7.3) covers multicast-only families: `Family`
//! (`const_new` leaves `ops`, `policy` and `maxattr` empty), `Registration`
//! (unregisters on drop), `GenlMsg` (a builder: `put_u32`, `put_string`,
//! `put_flag`, `multicast` to `init_net` only). What this folder adds is
//! the half a family that answers requests needs, and how it would map:
//!
//! - [`genl::Op`] and [`genl::AttrRule`] (`struct genl_split_ops`, `struct
//!   nla_policy` as `const` tables) would become `Family::const_new`
//!   arguments, so a family stays a caller-owned `static`, as binder's is;
//!   [`GenlFamily`]'s static storage and claim flag would go.
//! - [`genl::Request`] (the `genl_info` view: typed attribute getters,
//!   `reply`, extended acks with text, offending attribute and missing
//!   type) would be what a `#[vtable]` trait's `doit` receives, beside
//!   `GenlMsg` for building the reply.
//! - [`GenlNet`] (multicast to one namespace's genl socket, with a
//!   [`Delivery`] that tells "no listeners here" from "listeners missed
//!   it") would be `GenlMsg::multicast_netns`; upstream's `has_listeners`
//!   and `multicast` only look at `init_net`. Its filtered multicast
//!   ([`GenlNet::multicast_numbered`]) and the per-socket memory it reads
//!   ([`genl::Listening`]) would be a `Family` associated type for
//!   `sock_priv_size` (`Default` for `sock_priv_init`, `Drop` for
//!   `sock_priv_destroy`) and a `GenlMsg::multicast_netns_filtered` taking
//!   a closure; a module could use the core's `genl_sk_priv_get` once it is
//!   exported (the copies of it here would go).
//! - A `Registration` would take the module (`&'static ThisModule`) as
//!   here, instead of reading it from the crate.
//!
//! # Module lifetime
//!
//! The kernel sockets are created with the module as their owner, as every
//! in-tree netlink family does: each user socket of the unit holds a module
//! reference (so `rmmod` is refused while one is open) and a reference on
//! its network namespace. So no user socket, and so no sender, outlives the
//! module or its namespace: no teardown waits for senders. Generic netlink
//! sockets pin nothing: `genl_unregister_family` waits for operations in
//! flight.
//!
//! # The load-time window of the netlink core
//!
//! The unit is usable in every namespace from the moment its first kernel
//! socket exists. On kernels without
//! `tests/kernel-patches/0001-netlink-mark-kernel-sockets-before-making-them-reach.patch`,
//! `__netlink_kernel_create` makes each later namespace's socket findable
//! before it marks it a kernel socket; a user in that namespace who sends to
//! port 0 inside that moment hits `BUG()` in `netlink_data_ready`. A module
//! cannot close that window from outside the core; [`Unit::register`]
//! leaves the namespaces that exist at load without the unit unless told
//! otherwise, and the docs ("Kernels without the netlink fix") say what
//! remains exposed.
//!
//! C headers: [`include/linux/netlink.h`](srctree/include/linux/netlink.h),
//! [`include/net/netlink.h`](srctree/include/net/netlink.h),
//! [`include/net/genetlink.h`](srctree/include/net/genetlink.h),
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
pub(crate) mod state;
mod ticker;

pub(crate) use datagram::Datagram;
pub(crate) use genl::{GenlFamily, GenlNet, GenlProtocol};
pub(crate) use pernet::Unit;
pub(crate) use socket::{Delivery, KernelSock};
pub(crate) use state::States;

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

/// The layer's KUnit suite: compiled only into `rustnl_kunit.ko`
/// (`--cfg rustnl_kunit`), so loading `rustnl.ko` never runs tests or
/// taints the kernel.
#[cfg(rustnl_kunit)]
mod kunit;
