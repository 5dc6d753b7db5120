// SPDX-License-Identifier: GPL-2.0

//! Kernel netlink sockets: the owner of a kernel socket, the borrowed socket
//! a protocol sends on, and multicasting with what the core tells of the
//! delivery.
//!
//! C header: [`include/linux/netlink.h`](srctree/include/linux/netlink.h).

use super::{ffi, raw_gfp, skb::SkBuff, SocketConfig};
use core::ptr::NonNull;
use super::compat::bindings;
use kernel::{
    alloc::Flags,
    prelude::*,
    types::Opaque,
    ThisModule,
};

/// A kernel netlink socket, borrowed: what a protocol sends on.
///
/// # Invariants
///
/// The socket was created by `__netlink_kernel_create` and has not been
/// released while the reference is in use.
#[repr(transparent)]
pub(crate) struct KernelSock(Opaque<bindings::sock>);

// SAFETY: Everything done through `&KernelSock` goes through netlink core
// functions that may be called from any task, concurrently.
unsafe impl Sync for KernelSock {}

/// What `netlink_broadcast` tells about a multicast, named for what is known.
///
/// The netlink core reports a failed delivery to the sender only for
/// listeners that set `NETLINK_BROADCAST_ERROR`; a listener without it whose
/// queue was full misses the message silently (it sees `ENOBUFS` itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// At least one listener received it and no failure was reported.
    Delivered,
    /// Nobody received it, and nobody in the sender's namespace listened on
    /// the group.
    NoListeners,
    /// Nobody received it although the group had listeners in the
    /// namespace: every listener's queue was full (or its socket filter
    /// dropped it).
    NoneReceived,
    /// A listener with `NETLINK_BROADCAST_ERROR` could not receive it;
    /// others may have.
    FailureReported,
}

impl KernelSock {
    /// # Safety
    ///
    /// `sk` must be a kernel netlink socket that stays unreleased and
    /// referenced for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(sk: *mut bindings::sock) -> &'a Self {
        // SAFETY: `KernelSock` is a transparent `Opaque<sock>`; the caller
        // guarantees the socket for `'a` (type invariants).
        unsafe { &*sk.cast::<Self>() }
    }

    /// The C pointer.
    #[inline]
    pub(super) fn as_ptr(&self) -> *mut bindings::sock {
        self.0.get()
    }

    /// Whether any socket of the unit, in any namespace, listens on `group`
    /// (`netlink_has_listeners` reads one mask for all namespaces): `false`
    /// means nobody in this namespace does either, so a message need not
    /// be built; `true` says nothing of this namespace ([`Self::broadcast`]
    /// tells).
    pub(crate) fn has_listeners(&self, group: u32) -> bool {
        // SAFETY: A kernel netlink socket (type invariant).
        unsafe { bindings::netlink_has_listeners(self.as_ptr(), group) != 0 }
    }

    /// Multicasts one message (type `ty`, sequence number `seq`, payload
    /// `parts` concatenated) to `group`; `flags` for the message and its
    /// clones (`GFP_KERNEL` in process context).
    pub(crate) fn broadcast<const N: usize>(
        &self,
        group: u32,
        ty: u16,
        seq: u32,
        parts: &[&[u8]; N],
        flags: Flags,
    ) -> Result<Delivery> {
        self.broadcast_to(group, ty, seq, parts, flags, |_| true)
    }

    /// As [`Self::broadcast`], to the listeners of `group` that `wants`
    /// accepts (`netlink_broadcast_filtered`'s filter, inverted): the
    /// others are skipped and do not count as listeners, so the [`Delivery`]
    /// is about the accepted ones only. `wants` gets each listener socket of
    /// the group in the namespace, in this task, while the core walks its
    /// listener list (the socket cannot be released meanwhile); it must not
    /// sleep.
    pub(super) fn broadcast_to<F, const N: usize>(
        &self,
        group: u32,
        ty: u16,
        seq: u32,
        parts: &[&[u8]; N],
        flags: Flags,
        wants: F,
    ) -> Result<Delivery>
    where
        F: Fn(*mut bindings::sock) -> bool,
    {
        let mut skb = SkBuff::message(0, seq, ty, 0, &[], parts, flags)?;
        skb.set_dst_group(group);
        let mut audience = Audience {
            listeners: 0,
            wants,
        };
        // SAFETY: A kernel netlink socket (type invariant); the skb's
        // ownership passes to the core, which always consumes it. The filter
        // runs synchronously, in this task, before the call returns, with
        // `audience`, which outlives the call, as its data.
        let ret = unsafe {
            bindings::netlink_broadcast_filtered(
                self.as_ptr(),
                skb.into_raw(),
                0,
                group,
                raw_gfp(flags),
                Some(count_listener::<F>),
                (&raw mut audience).cast(),
            )
        };
        match ret {
            0 => Ok(Delivery::Delivered),
            // (7.2's `kernel::error::code` has no `ENOBUFS`: `compat.rs`.)
            r if r == -(bindings::ENOBUFS as c_int) => Ok(Delivery::FailureReported),
            // `ESRCH`: nobody received it. Whether anyone listened is what
            // the filter saw, in this namespace only (`netlink_has_listeners`
            // would answer for every namespace at once).
            r if r == ESRCH.to_errno() && audience.listeners > 0 => Ok(Delivery::NoneReceived),
            r if r == ESRCH.to_errno() => Ok(Delivery::NoListeners),
            r => Err(Error::from_errno(r)),
        }
    }
}

/// What the filter of [`KernelSock::broadcast_to`] works with: who is
/// wanted, and how many of the group's listeners were.
struct Audience<F> {
    listeners: u32,
    wants: F,
}

/// The `netlink_broadcast_filtered` filter: skips the listeners `wants`
/// refuses (non-zero: the core frees its copy and moves on) and counts the
/// others, which the message is about to be delivered to (in the sender's
/// namespace, on the group). The first accepted listener always reaches
/// the filter: until a copy is delivered the message is not shared (a
/// skipped listener's reference is dropped again), so its copy is the
/// message itself, no allocation that could fail first. A count of 0 means
/// nobody in the namespace listened.
///
/// # Safety
///
/// Called by the netlink core during [`KernelSock::broadcast_to`] with
/// `data` pointing to its `Audience<F>` and `sk` a listener socket on the
/// core's locked listener list.
unsafe extern "C" fn count_listener<F: Fn(*mut bindings::sock) -> bool>(
    sk: *mut bindings::sock,
    _skb: *mut bindings::sk_buff,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `broadcast_to`'s audience, valid and only used by this call
    // chain (the filter runs synchronously inside `broadcast_to`).
    let audience = unsafe { &mut *data.cast::<Audience<F>>() };
    if !(audience.wants)(sk) {
        return 1;
    }
    audience.listeners = audience.listeners.saturating_add(1);
    0
}

/// An owned kernel netlink socket for one protocol unit in one namespace;
/// released when dropped.
///
/// No wait for senders is needed when it goes: a sender is a user socket of
/// the same namespace inside the input callback, and every user socket
/// holds a reference on its namespace (so the namespace is not torn down
/// while one exists) and on the module that owns the unit (so the module
/// is not unloaded while one exists); see "Module lifetime" in `mod.rs`.
///
/// # Invariants
///
/// `sk` was returned by `__netlink_kernel_create` and has not been
/// released; the socket's own reference keeps it valid until then.
pub(crate) struct KernelSocket {
    sk: NonNull<bindings::sock>,
}

// SAFETY: The socket may be used and released from any task.
unsafe impl Send for KernelSocket {}
// SAFETY: Everything done through `&KernelSocket` goes through netlink core
// functions that may be called concurrently.
unsafe impl Sync for KernelSocket {}

impl KernelSocket {
    /// Creates the kernel socket of netlink protocol `cfg.unit` in `net`,
    /// owned by `owner`, with `input` called for every datagram user
    /// sockets send to it. Non-root processes may join its multicast groups
    /// (`NL_CFG_F_NONROOT_RECV`). Every user socket of the unit pins
    /// `owner` (see "Module lifetime" in `mod.rs`).
    ///
    /// Fails with `EINVAL` if the unit is not a netlink unit and with `EBUSY`
    /// if the unit has a kernel socket in `net` already or memory ran out:
    /// `__netlink_kernel_create` returns no socket for either and says
    /// nothing more.
    ///
    /// # Safety
    ///
    /// `net` must be a live network namespace for the duration of the call.
    /// `input` may run as soon as the socket exists (before this returns),
    /// until the socket is released, and must stay callable until then.
    pub(super) unsafe fn new(
        net: *mut bindings::net,
        cfg: &SocketConfig,
        owner: &'static ThisModule,
        input: unsafe extern "C" fn(*mut bindings::sk_buff),
    ) -> Result<Self> {
        if cfg.unit >= bindings::MAX_LINKS {
            return Err(EINVAL);
        }
        let unit = i32::try_from(cfg.unit).map_err(|_| EINVAL)?;
        let mut ncfg = bindings::netlink_kernel_cfg {
            groups: cfg.groups,
            flags: bindings::NL_CFG_F_NONROOT_RECV,
            input: Some(input),
            ..Default::default()
        };
        // SAFETY: `net` is live (caller); `ncfg` is valid for the call (the
        // core copies what it keeps); `owner` is a live module.
        let sk = unsafe { bindings::__netlink_kernel_create(net, unit, owner.as_ptr().cast(), &mut ncfg) };
        let sk = NonNull::new(sk).ok_or(EBUSY)?;
        // INVARIANT: `sk` came from `__netlink_kernel_create`.
        Ok(KernelSocket { sk })
    }

    /// The socket, for sending.
    #[inline]
    pub(crate) fn sock(&self) -> &KernelSock {
        // SAFETY: Unreleased while `self` lives (type invariant).
        unsafe { KernelSock::from_raw(self.sk.as_ptr()) }
    }

    /// Caches `data` in the socket's `sk_user_data`, where the input path
    /// finds it with one load (published with release semantics).
    ///
    /// # Safety
    ///
    /// `data` must stay valid for as long as the socket exists.
    pub(super) unsafe fn cache_user_data(&self, data: *mut c_void) {
        // SAFETY: A kernel socket owned by `self` (invariant); the caller
        // keeps `data` valid while the socket exists.
        unsafe { ffi::rustnl_set_sk_user_data(self.sk.as_ptr(), data) };
    }
}

impl Drop for KernelSocket {
    fn drop(&mut self) {
        // SAFETY: A kernel socket owned by `self` (type invariant), released
        // exactly once, here. The core unhashes it (no sender finds it from
        // now on) and drops its own reference after an RCU grace period.
        unsafe { bindings::netlink_kernel_release(self.sk.as_ptr()) };
    }
}
