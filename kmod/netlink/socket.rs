// SPDX-License-Identifier: GPL-2.0

//! Kernel netlink sockets: the reference-counted `struct sock`, the owner of
//! a kernel socket, and multicasting on it.
//!
//! C header: [`include/linux/netlink.h`](srctree/include/linux/netlink.h).

use super::{compat, compat::bindings, ffi, raw_gfp, skb::SkBuff, SocketConfig};
use core::{mem::ManuallyDrop, ptr::NonNull};
use kernel::{
    alloc::Flags,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    time::{delay::fsleep, Delta, Instant, Monotonic},
    types::Opaque,
};

/// A `struct sock`.
///
/// # Invariants
///
/// Instances are always reference-counted (`sk_refcnt`): a `&Sock` is valid
/// while the reference it was made from is held.
#[repr(transparent)]
pub(crate) struct Sock(Opaque<bindings::sock>);

// SAFETY: `struct sock` is used from any task; `sock_put` may run anywhere.
unsafe impl Send for Sock {}
// SAFETY: Everything done through `&Sock` goes through netlink core
// functions that may be called concurrently.
unsafe impl Sync for Sock {}

// SAFETY: Sockets are always reference-counted (`sock_hold` / `sock_put`).
unsafe impl AlwaysRefCounted for Sock {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: A shared reference means the count is not zero.
        unsafe { ffi::rustnl_sock_hold(self.as_ptr()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference it gives up here.
        unsafe { ffi::rustnl_sock_put(obj.cast().as_ptr()) };
    }
}

impl Sock {
    /// The C pointer.
    #[inline]
    pub(super) fn as_ptr(&self) -> *mut bindings::sock {
        self.0.get()
    }

    /// The current reference count.
    fn refcount(&self) -> u32 {
        // SAFETY: `self` is valid (type invariant).
        unsafe { ffi::rustnl_sock_refcnt(self.as_ptr()) }
    }
}

/// A kernel netlink socket, borrowed: what a protocol sends on.
///
/// # Invariants
///
/// The socket was created by `__netlink_kernel_create` and has not been
/// released while the reference is in use.
#[repr(transparent)]
pub(crate) struct KernelSock(Sock);

/// What `netlink_broadcast` tells about a multicast, named for what is known.
///
/// The netlink core reports a failed delivery to the sender only for
/// listeners that set `NETLINK_BROADCAST_ERROR`; a listener without it whose
/// queue was full misses the message silently (it sees `ENOBUFS` itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// At least one listener received it and no failure was reported.
    Delivered,
    /// Nobody received it, and nobody listened on the group.
    NoListeners,
    /// Nobody received it although the group had listeners: every
    /// listener's queue was full (or they all left meanwhile).
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
        self.0.as_ptr()
    }

    /// Whether any socket listens on `group`.
    pub(crate) fn has_listeners(&self, group: u32) -> bool {
        // SAFETY: A kernel netlink socket (type invariant).
        unsafe { bindings::netlink_has_listeners(self.as_ptr(), group) != 0 }
    }

    /// Multicasts one message (type `ty`, sequence number `seq`, payload
    /// `parts` concatenated) to `group`; `flags` for the message and its
    /// clones (`GFP_KERNEL` in process context).
    pub(crate) fn broadcast(
        &self,
        group: u32,
        ty: u16,
        seq: u32,
        parts: &[&[u8]],
        flags: Flags,
    ) -> Result<Delivery> {
        let mut skb = SkBuff::message(0, seq, ty, 0, parts, flags)?;
        skb.set_dst_group(group);
        // SAFETY: A kernel netlink socket (type invariant); the skb's
        // ownership passes to `netlink_broadcast`, which always consumes it.
        let ret = unsafe {
            bindings::netlink_broadcast(self.as_ptr(), skb.into_raw(), 0, group, raw_gfp(flags))
        };
        match ret {
            0 => Ok(Delivery::Delivered),
            r if r == -(bindings::ENOBUFS as c_int) => Ok(Delivery::FailureReported),
            // `ESRCH`: nobody received it. Asked afterwards, so a listener
            // that joined meanwhile can make `NoneReceived` of a broadcast
            // that found nobody; never the other way round.
            r if r == ESRCH.to_errno() && self.has_listeners(group) => {
                Ok(Delivery::NoneReceived)
            }
            r if r == ESRCH.to_errno() => Ok(Delivery::NoListeners),
            r => Err(Error::from_errno(r)),
        }
    }
}

/// An owned kernel netlink socket for one protocol unit in one namespace.
///
/// # Invariants
///
/// `sk` was returned by `__netlink_kernel_create` and has not been released;
/// besides the socket's own reference, `self` holds the one in `sk`.
pub(crate) struct KernelSocket {
    sk: ARef<Sock>,
}

impl KernelSocket {
    /// Creates the kernel socket of netlink protocol `cfg.unit` in `net`,
    /// with `input` called for every datagram user sockets send to it.
    /// Non-root processes may join its multicast groups
    /// (`NL_CFG_F_NONROOT_RECV`). The module owns the unit: user sockets pin
    /// it (see "Module lifetime" in `mod.rs`).
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
    /// until [`ReleasedSocket`] has waited for it.
    pub(super) unsafe fn new(
        net: *mut bindings::net,
        cfg: &SocketConfig,
        input: unsafe extern "C" fn(*mut bindings::sk_buff),
    ) -> Result<Self> {
        if cfg.unit >= crate::proto::MAX_LINKS {
            return Err(EINVAL);
        }
        let unit = i32::try_from(cfg.unit).map_err(|_| EINVAL)?;
        let mut ncfg = bindings::netlink_kernel_cfg {
            groups: cfg.groups,
            flags: bindings::NL_CFG_F_NONROOT_RECV,
            input: Some(input),
            ..Default::default()
        };
        let owner = compat::this_module();
        // SAFETY: `net` is live (caller); `ncfg` is valid for the call (the
        // core copies what it keeps); `owner` is this module, alive while
        // its code runs.
        let sk = unsafe { bindings::__netlink_kernel_create(net, unit, owner, &mut ncfg) };
        if sk.is_null() {
            return Err(EBUSY);
        }
        // SAFETY: `sk` is a fresh kernel socket; holding it is what `ARef`
        // needs, and the socket is valid until the reference goes.
        let sock = unsafe { KernelSock::from_raw(sk) };
        // INVARIANT: `sk` came from `__netlink_kernel_create`; the `ARef`
        // is a reference of our own.
        Ok(KernelSocket {
            sk: ARef::from(&sock.0),
        })
    }

    /// The socket, for sending.
    #[inline]
    pub(crate) fn sock(&self) -> &KernelSock {
        // SAFETY: Unreleased and referenced while `self` lives (invariant).
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

    /// Releases the socket: from now on no sender finds it. The returned
    /// value waits, when dropped, for senders that found it before.
    pub(super) fn release(self) -> ReleasedSocket {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the reference
        // moves out exactly once.
        let sk = unsafe { core::ptr::read(&this.sk) };
        // SAFETY: A kernel socket owned by `self` (invariant), released
        // exactly once, here; our reference keeps the memory valid.
        unsafe { bindings::netlink_kernel_release(sk.as_ptr()) };
        ReleasedSocket { sk }
    }
}

impl Drop for KernelSocket {
    fn drop(&mut self) {
        // Release now and wait for senders (the `ReleasedSocket` drops).
        let sk = self.sk.clone();
        // SAFETY: A kernel socket owned by `self` (invariant), released
        // exactly once, here (`release` does not run `Drop`).
        unsafe { bindings::netlink_kernel_release(sk.as_ptr()) };
        drop(ReleasedSocket { sk });
    }
}

/// A released kernel socket still referenced by us.
///
/// Senders that found the socket before its release each hold a reference
/// until they have left the input callback, and the socket's own reference
/// goes after an RCU grace period (`deferred_put_nlk_sk`). Dropping this
/// waits until only ours is left, so no CPU runs the input callback any
/// more; then it drops ours. Released in a namespace's `pre_exit` and
/// dropped in its `exit`, the grace period the pernet core puts between the
/// two is shared by every namespace going away together.
pub(super) struct ReleasedSocket {
    sk: ARef<Sock>,
}

impl Drop for ReleasedSocket {
    fn drop(&mut self) {
        let start = Instant::<Monotonic>::now();
        let mut warned_s = 0;
        while self.sk.refcount() > 1 {
            fsleep(Delta::from_micros(200));
            let waited_s = start.elapsed().as_millis() / 1000;
            if waited_s >= warned_s + 5 {
                warned_s = waited_s;
                pr_warn!(
                    "still waiting for netlink senders to leave ({} s)\n",
                    waited_s
                );
            }
        }
    }
}
