// SPDX-License-Identifier: GPL-2.0

//! A small safe layer over classic (non-generic) netlink.
//!
//! Every `unsafe` block of rustnl lives in this file. Above it, the protocol
//! code deals only in safe types:
//!
//! - [`Pernet`] registers the protocol with every network namespace: each
//!   gets its own [`KernelSocket`], its own [`Protocol`] state and, if the
//!   protocol asks for one, its own periodic tick.
//! - [`KernelSocket`] owns a kernel netlink socket (`struct sock` from
//!   `__netlink_kernel_create`) and releases it on drop, waiting until no
//!   sender is still inside its input callback.
//! - [`SocketRef`] multicasts on a kernel socket.
//! - [`Datagram`] is the borrowed view of one datagram a user socket sent to
//!   it, handed to a [`Receiver`] in the socket's input callback. It answers
//!   the sender: replies built from byte slices ([`Datagram::reply`]) and acks
//!   or errors with extended-ack text ([`Datagram::ack`]).
//! - [`SkBuff`] owns an outgoing `struct sk_buff` until it is sent.
//!
//! C helpers that are `static inline` (`netlink_kernel_create`, `nlmsg_new`,
//! `nlmsg_data`, `NETLINK_CB`) are re-expressed here over the exported
//! functions; what needs `struct sock` (opaque to the Rust bindings) goes
//! through the one-line accessors in `netlink_helpers.c`. Modelled on
//! `rust/kernel/net/netlink.rs` (generic netlink).
//!
//! # Module lifetime
//!
//! The kernel sockets are created with this module as their owner, as every
//! in-tree netlink family does: each user socket of the unit holds a module
//! reference, so `rmmod` is refused ("in use") while any is open. (An earlier
//! version had no owner so that `rmmod` worked with clients connected; the
//! unload-under-load test then hit `BUG()` in `netlink_data_ready`: a user
//! socket left over from the previous load sent to port 0 inside
//! `__netlink_kernel_create`'s window between `netlink_insert()` and setting
//! `NETLINK_F_KERNEL_SOCKET`, so the core queued the skb on the kernel socket
//! as if it were a user socket. With an owner no user socket outlives the
//! module.) [`KernelSocket`]'s drop still holds a reference on the socket
//! across `netlink_kernel_release` and waits until every sender that found
//! the socket has left the input callback, so no input code can run after
//! the module's text is gone whatever the caller.
//!
//! C headers: [`include/linux/netlink.h`](srctree/include/linux/netlink.h),
//! [`include/net/netlink.h`](srctree/include/net/netlink.h).

use crate::proto::{Message, NlMsgHdr, NLMSG_HDRLEN};
use core::{
    cell::Cell,
    fmt,
    marker::PhantomData,
    mem::ManuallyDrop,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    prelude::*,
    sync::atomic::{Acquire, Atomic, Full, Release},
    types::Opaque,
};

// Accessors in netlink_helpers.c (prototypes in netlink_helpers.h).
// `struct net` embeds an empty array type that rustc flags as not FFI-safe;
// only pointers to it cross, which is sound.
#[allow(improper_ctypes)]
extern "C" {
    fn rustnl_sock_net(sk: *const bindings::sock) -> *mut bindings::net;
    fn rustnl_sk_user_data(sk: *const bindings::sock) -> *mut c_void;
    fn rustnl_set_sk_user_data(sk: *mut bindings::sock, data: *mut c_void);
    fn rustnl_sock_hold(sk: *mut bindings::sock);
    fn rustnl_sock_put(sk: *mut bindings::sock);
    fn rustnl_sock_refcnt(sk: *const bindings::sock) -> c_uint;
    fn rustnl_net_generic(net: *const bindings::net, id: c_uint) -> *mut c_void;
    fn rustnl_init_delayed_work(dwork: *mut bindings::delayed_work, func: bindings::work_func_t);
    fn rustnl_queue_delayed_work(dwork: *mut bindings::delayed_work, msecs: c_uint) -> bool;
}

/// `CLOCK_REALTIME` now, in nanoseconds (NMI-safe, any context).
pub(crate) fn realtime_ns() -> u64 {
    // SAFETY: `ktime_get_real_fast_ns` has no preconditions.
    unsafe { bindings::ktime_get_real_fast_ns() }
}

/// Netlink messages are aligned to this many bytes.
const NLMSG_ALIGNTO: usize = 4;

/// Largest skb that gathers several replies to one datagram (more than one
/// page is fine: `__alloc_skb` takes it from kmalloc or the page allocator).
const BATCH_ROOM: usize = 32 * 1024;

/// The length of `parts` together; `EMSGSIZE` on overflow.
#[inline]
fn payload_len(parts: &[&[u8]]) -> Result<usize> {
    parts
        .iter()
        .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
        .ok_or(EMSGSIZE)
}

/// `NLMSG_ALIGN(NLMSG_HDRLEN + payload)`, or `None` on overflow.
fn nlmsg_total_size(payload: usize) -> Option<usize> {
    NLMSG_HDRLEN
        .checked_add(payload)?
        .checked_add(NLMSG_ALIGNTO - 1)
        .map(|v| v & !(NLMSG_ALIGNTO - 1))
}

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
pub(crate) trait Protocol: Sized + Send + Sync + 'static {
    /// The socket configuration (read once per namespace).
    fn config() -> SocketConfig;
    /// Creates the state of one namespace.
    fn new_state() -> Result<Self>;
    /// Handles one datagram; runs in the sending task's context (may sleep).
    fn receive(&self, sock: SocketRef<'_>, datagram: &Datagram<'_>);
    /// Runs every `tick_ms` in process context (may sleep).
    fn tick(&self, sock: SocketRef<'_>);
    /// Runs once before the namespace's socket is released.
    fn closing(&self, sock: SocketRef<'_>);
}

/// An owned kernel netlink socket for one protocol unit in one namespace.
///
/// # Invariants
///
/// `sk` was returned by `__netlink_kernel_create`, is owned by this value and
/// is released exactly once, when it is dropped.
pub(crate) struct KernelSocket {
    sk: NonNull<bindings::sock>,
}

// SAFETY: A kernel netlink socket may be used and released from any task; the
// netlink core serialises access to it internally.
unsafe impl Send for KernelSocket {}
// SAFETY: All operations on `&KernelSocket` go through netlink core functions
// that are safe to call concurrently.
unsafe impl Sync for KernelSocket {}

impl KernelSocket {
    /// Creates the kernel socket of netlink protocol `unit` in `net`, with
    /// `P` handling what user sockets send to it. Non-root processes may
    /// join its multicast groups (`NL_CFG_F_NONROOT_RECV`).
    ///
    /// Fails with `EINVAL` if `unit` is not a netlink unit and with `EBUSY`
    /// if the unit already has a kernel socket in `net` or memory ran out:
    /// `__netlink_kernel_create` returns no socket for either and says
    /// nothing more.
    ///
    /// # Safety
    ///
    /// `net` must be a live network namespace for the duration of the call.
    unsafe fn new<P: Protocol>(net: *mut bindings::net, cfg: &SocketConfig) -> Result<Self> {
        if cfg.unit >= crate::proto::MAX_LINKS {
            return Err(EINVAL);
        }
        let unit_c = i32::try_from(cfg.unit).map_err(|_| EINVAL)?;
        let mut ncfg = bindings::netlink_kernel_cfg {
            groups: cfg.groups,
            flags: bindings::NL_CFG_F_NONROOT_RECV,
            input: Some(input_trampoline::<P>),
            ..Default::default()
        };
        // The module owns the unit: user sockets pin it (see "Module
        // lifetime" above).
        let owner = <crate::LocalModule as kernel::ModuleMetadata>::THIS_MODULE.as_ptr();
        // SAFETY: `net` is live (caller); `ncfg` is valid for the call (netlink
        // copies what it needs); `owner` is this module, alive while its code
        // runs.
        let sk = unsafe { bindings::__netlink_kernel_create(net, unit_c, owner, &mut ncfg) };
        let sk = NonNull::new(sk).ok_or(EBUSY)?;
        // INVARIANT: `sk` was just returned by `__netlink_kernel_create`.
        Ok(KernelSocket { sk })
    }

    /// A handle for sending on this socket.
    pub(crate) fn as_ref(&self) -> SocketRef<'_> {
        SocketRef {
            sk: self.sk,
            _p: PhantomData,
        }
    }

    /// Attaches `data` to the socket, for [`input_trampoline`] to find.
    fn set_user_data(&self, data: *mut c_void) {
        // SAFETY: `sk` is a valid socket (type invariant).
        unsafe { rustnl_set_sk_user_data(self.sk.as_ptr(), data) };
    }
}

impl Drop for KernelSocket {
    fn drop(&mut self) {
        let sk = self.sk.as_ptr();
        // SAFETY: By the type invariant `sk` is a valid socket owned by `self`.
        // The extra reference keeps it readable after the release below.
        unsafe { rustnl_sock_hold(sk) };
        // SAFETY: `sk` is a kernel netlink socket owned by `self`; it is
        // released exactly once, here. From now on no new sender finds it.
        unsafe { bindings::netlink_kernel_release(sk) };
        // Senders that found the socket before the release each hold a
        // reference until they have returned from the input callback; the
        // socket's own reference goes after an RCU grace period. Wait until
        // only ours is left: then no CPU runs this module's input code.
        let mut waited_ms: u32 = 0;
        // SAFETY: `sk` is valid: we hold a reference.
        while unsafe { rustnl_sock_refcnt(sk) } > 1 {
            // SAFETY: `msleep` may be called from process context, which
            // module exit and namespace teardown are.
            unsafe { bindings::msleep(1) };
            waited_ms = waited_ms.saturating_add(1);
            if waited_ms % 5000 == 0 {
                pr_warn!(
                    "still waiting for netlink senders to leave ({} ms)\n",
                    waited_ms
                );
            }
        }
        // SAFETY: Drops the reference taken above; frees the socket.
        unsafe { rustnl_sock_put(sk) };
    }
}

/// A borrowed kernel socket, for multicasting.
///
/// # Invariants
///
/// `sk` is a valid kernel netlink socket for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct SocketRef<'a> {
    sk: NonNull<bindings::sock>,
    _p: PhantomData<&'a KernelSocket>,
}

/// Outcome of a multicast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// At least one listener received it, and none failed.
    Delivered,
    /// Nobody listens on the group.
    NoListeners,
    /// Some listener's queue was full (it sees `ENOBUFS`); others may have
    /// received it.
    SomeFailed,
}

impl SocketRef<'_> {
    /// Whether any socket listens on `group`.
    pub(crate) fn has_listeners(&self, group: u32) -> bool {
        // SAFETY: `sk` is a valid kernel netlink socket (type invariant).
        unsafe { bindings::netlink_has_listeners(self.sk.as_ptr(), group) != 0 }
    }

    /// Multicasts one message (type `ty`, sequence number `seq`, payload
    /// `parts` concatenated) to `group`. Process context only.
    pub(crate) fn broadcast(
        &self,
        group: u32,
        ty: u16,
        seq: u32,
        parts: &[&[u8]],
    ) -> Result<Delivery> {
        let skb = SkBuff::message(0, seq, ty, 0, parts)?;
        // SAFETY: `sk` is a valid kernel netlink socket; the skb's ownership
        // passes to `netlink_broadcast`, which always consumes it. Callers are
        // in process context, so `GFP_KERNEL` is allowed.
        let ret = unsafe {
            bindings::netlink_broadcast(
                self.sk.as_ptr(),
                skb.into_raw(),
                0,
                group,
                bindings::GFP_KERNEL,
            )
        };
        match ret {
            0 => Ok(Delivery::Delivered),
            r if r == ESRCH.to_errno() => Ok(Delivery::NoListeners),
            r if r == ENOBUFS.to_errno() => Ok(Delivery::SomeFailed),
            r => Err(Error::from_errno(r)),
        }
    }
}

/// One namespace's socket, protocol state and ticker.
///
/// Lives in a `KBox` whose address is stored in the namespace's pernet slot
/// and in the socket's `sk_user_data`; freed by [`pernet_exit`].
struct NetInstance<P: Protocol> {
    state: P,
    socket: Option<KernelSocket>,
    ticker: Option<Pin<KBox<Ticker<P>>>>,
}

impl<P: Protocol> Drop for NetInstance<P> {
    fn drop(&mut self) {
        // Stop ticking first (waits for a running tick), then say goodbye,
        // then release the socket (waits for running input callbacks).
        self.ticker.take();
        if let Some(sock) = self.socket.as_ref() {
            self.state.closing(sock.as_ref());
        }
        self.socket.take();
    }
}

/// A self-rearming delayed work item that calls [`Protocol::tick`].
///
/// # Invariants
///
/// `dwork` is initialised; `instance` points to the `NetInstance` that owns
/// this ticker, which outlives it (the instance drops the ticker first).
#[repr(C)]
struct Ticker<P: Protocol> {
    dwork: Opaque<bindings::delayed_work>,
    instance: *const NetInstance<P>,
    period_ms: u32,
    stopping: Atomic<bool>,
}

// SAFETY: The ticker is only touched by the workqueue and by its owner's drop,
// which cancels it synchronously; `instance` is shared read-only.
unsafe impl<P: Protocol> Send for Ticker<P> {}
// SAFETY: As above.
unsafe impl<P: Protocol> Sync for Ticker<P> {}

impl<P: Protocol> Ticker<P> {
    /// Starts ticking every `period_ms` for `instance`.
    ///
    /// # Safety
    ///
    /// `instance` must outlive the returned ticker.
    unsafe fn start(instance: *const NetInstance<P>, period_ms: u32) -> Result<Pin<KBox<Self>>> {
        let t = KBox::pin(
            Ticker {
                dwork: Opaque::uninit(),
                instance,
                period_ms,
                stopping: Atomic::new(false),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `dwork` is pinned memory of the right type; it is
        // initialised before it is queued.
        unsafe {
            rustnl_init_delayed_work(t.dwork.get(), Some(Self::run));
            rustnl_queue_delayed_work(t.dwork.get(), period_ms);
        }
        Ok(t)
    }

    /// The work function.
    ///
    /// # Safety
    ///
    /// Called by the workqueue with the `work` member of a queued ticker's
    /// `dwork`.
    unsafe extern "C" fn run(work: *mut bindings::work_struct) {
        // `work` is the first field of `delayed_work`, which is the first
        // field of the `repr(C)` `Ticker`: the pointers coincide.
        let this = work.cast::<Self>();
        // SAFETY: See above; the ticker is alive while its work runs (drop
        // cancels it synchronously before freeing it).
        let this = unsafe { &*this };
        // SAFETY: By the type invariant the instance outlives the ticker.
        let instance = unsafe { &*this.instance };
        if let Some(sock) = instance.socket.as_ref() {
            instance.state.tick(sock.as_ref());
        }
        if !this.stopping.load(Acquire) {
            // SAFETY: `dwork` is initialised (type invariant).
            unsafe { rustnl_queue_delayed_work(this.dwork.get(), this.period_ms) };
        }
    }
}

impl<P: Protocol> Drop for Ticker<P> {
    fn drop(&mut self) {
        self.stopping.store(true, Release);
        // SAFETY: `dwork` is initialised; `cancel_delayed_work_sync` waits for
        // a running instance and copes with self-requeueing work.
        unsafe { bindings::cancel_delayed_work_sync(self.dwork.get()) };
    }
}

/// The pernet operations (linked into the kernel's list while registered).
struct PernetOps(Opaque<bindings::pernet_operations>);
// SAFETY: Written only before registration (under `PERNET_REGISTERED`), then
// owned by the pernet core, which serialises access.
unsafe impl Sync for PernetOps {}
static PERNET_OPS: PernetOps = PernetOps(Opaque::uninit());
/// The pernet id, assigned by the core at registration.
static PERNET_ID: Atomic<u32> = Atomic::new(0);
/// Only one registration per module (the statics above are single).
static PERNET_REGISTERED: Atomic<bool> = Atomic::new(false);

/// The slot the pernet core keeps for us in `net`: one pointer.
///
/// # Safety
///
/// `net` must be live and the registration active.
unsafe fn pernet_slot(net: *mut bindings::net) -> *mut *mut c_void {
    // SAFETY: As required by the caller; with `size` set, the core allocated
    // a zeroed pointer-sized slot for this id in every namespace.
    unsafe { rustnl_net_generic(net, PERNET_ID.load(Acquire)).cast() }
}

/// Pernet `init`: creates the namespace's instance.
///
/// # Safety
///
/// Called by the pernet core for a namespace being set up.
unsafe extern "C" fn pernet_init<P: Protocol>(net: *mut bindings::net) -> c_int {
    // SAFETY: As documented.
    match unsafe { net_instance_new::<P>(net) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `net` is a namespace being set up by the pernet core.
unsafe fn net_instance_new<P: Protocol>(net: *mut bindings::net) -> Result {
    let cfg = P::config();
    let instance = KBox::new(
        NetInstance {
            state: P::new_state()?,
            socket: None,
            ticker: None,
        },
        GFP_KERNEL,
    )?;
    let raw = KBox::into_raw(instance);
    // SAFETY: `raw` is a valid, exclusively owned instance until it is
    // published below; on error it is turned back into a box and dropped.
    let inst = unsafe { &mut *raw };
    // SAFETY: `net` is live (pernet init).
    let setup = unsafe { KernelSocket::new::<P>(net, &cfg) }.and_then(|sock| {
        // Until this store, input sees no state and answers "not ready".
        sock.set_user_data(raw.cast());
        inst.socket = Some(sock);
        if cfg.tick_ms > 0 {
            // SAFETY: The instance owns the ticker and drops it first.
            inst.ticker = Some(unsafe { Ticker::start(raw, cfg.tick_ms) }?);
        }
        Ok(())
    });
    if let Err(e) = setup {
        // SAFETY: `raw` came from `KBox::into_raw` and was not published.
        drop(unsafe { KBox::from_raw(raw) });
        return Err(e);
    }
    // SAFETY: `net` is live and our registration is active.
    unsafe { *pernet_slot(net) = raw.cast() };
    Ok(())
}

/// Pernet `exit`: tears the namespace's instance down.
///
/// # Safety
///
/// Called by the pernet core for a namespace whose `init` succeeded.
unsafe extern "C" fn pernet_exit<P: Protocol>(net: *mut bindings::net) {
    // SAFETY: `net` is live and our registration active.
    let slot = unsafe { pernet_slot(net) };
    // SAFETY: The slot holds what `net_instance_new` stored, or null.
    let raw = unsafe { core::ptr::replace(slot, core::ptr::null_mut()) };
    if !raw.is_null() {
        // SAFETY: Stored by `net_instance_new` from `KBox::into_raw`; taken
        // out of the slot exactly once, here.
        drop(unsafe { KBox::from_raw(raw.cast::<NetInstance<P>>()) });
    }
}

/// Registration of a [`Protocol`] with every network namespace; unregisters
/// (tearing every namespace's instance down) on drop.
pub(crate) struct Pernet<P: Protocol> {
    _p: PhantomData<P>,
}

impl<P: Protocol> Pernet<P> {
    /// Registers `P`: its `init` runs now for every existing namespace and
    /// later for each new one. Fails with the first namespace's error.
    pub(crate) fn register() -> Result<Self> {
        if PERNET_REGISTERED.xchg(true, Full) {
            return Err(EBUSY);
        }
        let ops = PERNET_OPS.0.get();
        // SAFETY: Not registered (checked above), so nobody else accesses
        // `ops`; `pernet_operations` is plain data for which zero is valid.
        unsafe {
            ops.write(bindings::pernet_operations {
                init: Some(pernet_init::<P>),
                exit: Some(pernet_exit::<P>),
                id: PERNET_ID.as_ptr(),
                size: size_of::<*mut c_void>(),
                ..Default::default()
            })
        };
        // SAFETY: `ops` is initialised and static.
        let ret = unsafe { bindings::register_pernet_subsys(ops) };
        if ret < 0 {
            PERNET_REGISTERED.store(false, Release);
            return Err(Error::from_errno(ret));
        }
        Ok(Pernet { _p: PhantomData })
    }
}

impl<P: Protocol> Drop for Pernet<P> {
    fn drop(&mut self) {
        // SAFETY: Registered by `register`; runs `exit` for every namespace.
        unsafe { bindings::unregister_pernet_subsys(PERNET_OPS.0.get()) };
        PERNET_REGISTERED.store(false, Release);
    }
}

/// The input callback netlink calls for every datagram sent to the socket.
///
/// # Safety
///
/// Called by the netlink core only, with a valid `skb` that it owns and keeps
/// alive for the duration of the call; `skb->sk` is the kernel socket and
/// `NETLINK_CB(skb)` describes the sender.
unsafe extern "C" fn input_trampoline<P: Protocol>(skb: *mut bindings::sk_buff) {
    let Some(skb) = NonNull::new(skb) else {
        return;
    };
    // SAFETY: The netlink core passes a valid skb that outlives this call.
    let Some(datagram) = (unsafe { Datagram::from_raw(skb) }) else {
        return;
    };
    let sk = datagram.kernel_sock();
    // SAFETY: `sk` is the receiving kernel socket, valid during the callback.
    let data = unsafe { rustnl_sk_user_data(sk.as_ptr()) };
    if data.is_null() {
        // The namespace's state is being set up (a brief window at load).
        datagram.refuse_all(EAGAIN, format_args!("rustnl is starting up, try again"));
        return;
    }
    // SAFETY: A non-null `sk_user_data` is the `NetInstance<P>` that owns this
    // socket; it is dropped only after the socket's release has waited for
    // every running input callback, so it outlives this call.
    let instance = unsafe { &*data.cast::<NetInstance<P>>() };
    let sock = SocketRef {
        sk,
        _p: PhantomData,
    };
    instance.state.receive(sock, &datagram);
}

/// One datagram sent by a user socket, borrowed for the input callback.
///
/// # Invariants
///
/// `skb` is valid for `'a` and is not owned by this value, `sk` is
/// `skb->sk`, the receiving kernel socket, and `data` is the skb's linear
/// data.
pub(crate) struct Datagram<'a> {
    skb: NonNull<bindings::sk_buff>,
    sk: NonNull<bindings::sock>,
    data: &'a [u8],
    /// Replies built but not sent yet: consecutive replies to one datagram
    /// share an skb, sent when the next one does not fit, before an ack or
    /// error (so answers keep their order), and at [`Datagram::flush`].
    pending: Cell<Option<SkBuff>>,
    /// Replies whose delivery failed when their skb was sent.
    undelivered: Cell<u32>,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> Datagram<'a> {
    /// # Safety
    ///
    /// `skb` must be valid, unmodified by anyone else and alive for `'a`, and
    /// be an skb delivered to a kernel netlink socket's input callback.
    /// Returns `None` if the skb has no socket (never so for netlink input).
    unsafe fn from_raw(skb: NonNull<bindings::sk_buff>) -> Option<Self> {
        // SAFETY: The caller guarantees `skb` is valid.
        let s = unsafe { skb.as_ref() };
        let sk = NonNull::new(s.sk)?;
        // Netlink datagrams from user sockets are linear; if one ever were not,
        // only its linear head is read.
        let headlen = s.len.saturating_sub(s.data_len) as usize;
        let data = if headlen == 0 || s.data.is_null() {
            &[][..]
        } else {
            // SAFETY: `data` points to `len - data_len` readable, initialised
            // bytes of the linear buffer, which nobody writes while the input
            // callback runs and which live as long as the skb (`'a`).
            unsafe { core::slice::from_raw_parts(s.data, headlen) }
        };
        // INVARIANT: As guaranteed by the caller; `sk` is `skb->sk`, `data`
        // the linear data.
        Some(Datagram {
            skb,
            sk,
            data,
            pending: Cell::new(None),
            undelivered: Cell::new(0),
            _not_send: PhantomData,
        })
    }

    /// The datagram's bytes.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// `NETLINK_CB(skb)`: the sender's parameters, stored in `skb->cb`.
    #[inline]
    fn cb(&self) -> &bindings::netlink_skb_parms {
        // SAFETY: By the type invariant the skb is valid and came from a
        // netlink socket, so its control buffer holds a `netlink_skb_parms`
        // (the C `NETLINK_CB` macro is this cast); `cb` is suitably aligned
        // (the kernel aligns it for 8-byte fields) and 48 bytes long, larger
        // than the struct.
        unsafe { &*(&raw const (*self.skb.as_ptr()).cb).cast::<bindings::netlink_skb_parms>() }
    }

    /// The receiving kernel socket (`skb->sk`).
    fn kernel_sock(&self) -> NonNull<bindings::sock> {
        self.sk
    }

    /// Whether the sender has `CAP_NET_ADMIN` over the network namespace of
    /// the receiving socket (checked against the opener's credentials, like
    /// `netlink_ns_capable`).
    pub(crate) fn sender_has_net_admin(&self) -> bool {
        // SAFETY: The kernel socket is valid during input; `sock_net` of it
        // is its live namespace, whose `user_ns` is valid with it.
        unsafe {
            let net = rustnl_sock_net(self.kernel_sock().as_ptr());
            bindings::netlink_ns_capable(
                self.skb.as_ptr(),
                (*net).user_ns,
                bindings::CAP_NET_ADMIN as c_int,
            )
        }
    }

    /// Answers every message of the datagram with `err` (used before any
    /// protocol state exists).
    fn refuse_all(&self, err: Error, text: fmt::Arguments<'_>) {
        for item in crate::proto::Messages::new(self.data) {
            match item {
                Ok(msg) => self.ack(&msg, Some(err), Some(text)),
                Err(bad) => self.ack_malformed(bad.header(), err, text),
            }
        }
    }

    /// The port id the kernel recorded for the sending socket. Replies go
    /// here; `nlmsg_pid` in the message is never trusted.
    #[inline]
    pub(crate) fn sender_portid(&self) -> u32 {
        self.cb().portid
    }

    /// Answers `msg` with a message of type `ty` and `msg`'s sequence
    /// number; its payload is `parts`, concatenated.
    ///
    /// Replies to the messages of one datagram are gathered into one skb
    /// where they fit (the room is sized from what is left of the datagram,
    /// at most [`BATCH_ROOM`] bytes) and sent together: a batch of requests
    /// costs a few allocations and wake-ups instead of one per message.
    /// Returns `ENOMEM` if no buffer could be had (nothing is queued then).
    /// Delivery failures of sent batches are counted by [`Datagram::flush`].
    #[inline(always)]
    pub(crate) fn reply(&self, msg: &Message<'_>, ty: u16, flags: u16, parts: &[&[u8]]) -> Result {
        let portid = self.sender_portid();
        let seq = msg.header.seq;
        if let Some(mut skb) = self.pending.take() {
            match skb.put_message(payload_len(parts)?, portid, seq, ty, flags, parts) {
                Ok(()) => {
                    self.pending.set(Some(skb));
                    return Ok(());
                }
                // Full: send it and start another below.
                Err(_) => self.send(skb),
            }
        }
        // Room for the answers to the rest of the datagram, about as large
        // as the requests for echoes.
        let rest = self
            .data
            .len()
            .saturating_sub(msg.offset.saturating_add(msg.bytes.len()));
        if rest == 0 {
            // The last (usually the only) message: straight out, no batch
            // (the shortest path: `make bench-profile` counts it).
            self.send(SkBuff::message(portid, seq, ty, flags, parts)?);
            return Ok(());
        }
        let payload = payload_len(parts)?;
        let size = nlmsg_total_size(payload).ok_or(EMSGSIZE)?;
        let room = size.max(size.saturating_add(rest).min(BATCH_ROOM));
        let mut skb = SkBuff::alloc(room)?;
        skb.put_message(payload, portid, seq, ty, flags, parts)?;
        self.pending.set(Some(skb));
        Ok(())
    }

    /// Unicasts `skb` to the sender; counts its messages as undelivered if
    /// that fails (the receiver's queue is full, and netlink has flagged an
    /// overrun, `ENOBUFS`, on it; or the sender is gone).
    #[inline]
    fn send(&self, skb: SkBuff) {
        let messages = skb.messages;
        let portid = self.sender_portid();
        let ssk = self.kernel_sock().as_ptr();
        // SAFETY: `ssk` is the receiving kernel socket, alive while its input
        // callback runs (type invariant), and the skb valid; its ownership
        // passes to `netlink_unicast` (it always consumes it). `MSG_DONTWAIT`:
        // never block on a full receiver.
        let ret = unsafe {
            bindings::netlink_unicast(ssk, skb.into_raw(), portid, bindings::MSG_DONTWAIT as i32)
        };
        if ret < 0 {
            self.undelivered
                .set(self.undelivered.get().saturating_add(messages));
        }
    }

    /// Sends the replies gathered so far. Returns how many replies of this
    /// datagram could not be delivered (and resets that count).
    #[inline]
    pub(crate) fn flush(&self) -> u32 {
        self.send_pending();
        self.undelivered.replace(0)
    }

    /// Sends the skb of gathered replies, if any.
    #[inline]
    fn send_pending(&self) {
        if let Some(skb) = self.pending.take() {
            self.send(skb);
        }
    }

    /// Acknowledges `msg`: with `err` `None` an ack (error 0), otherwise an
    /// `NLMSG_ERROR` carrying the error and, for senders that enabled
    /// `NETLINK_EXT_ACK`, `text` as `NLMSGERR_ATTR_MSG`.
    pub(crate) fn ack(
        &self,
        msg: &Message<'_>,
        err: Option<Error>,
        text: Option<fmt::Arguments<'_>>,
    ) {
        // `msg.bytes` is the message, header included, inside `self.data`;
        // `netlink_ack` only reads `nlmsg_len` bytes from it, which the shared
        // splitter checked are present.
        self.ack_raw(msg.bytes.as_ptr(), err, text);
    }

    /// Answers a part of the datagram that is not a well-formed message with
    /// an `NLMSG_ERROR`. The error echoes `header` (zeroes where none could be
    /// read) with `nlmsg_len` set to the header alone, as its payload cannot
    /// be located.
    pub(crate) fn ack_malformed(
        &self,
        header: Option<NlMsgHdr>,
        err: Error,
        text: fmt::Arguments<'_>,
    ) {
        let mut h = header.unwrap_or_default();
        h.len = NLMSG_HDRLEN as u32;
        let bytes = HeaderCopy(h.to_bytes());
        self.ack_raw(bytes.0.as_ptr(), Some(err), Some(text));
    }

    /// # Invariants for callers (checked by the two wrappers above)
    ///
    /// `nlh` points to a readable netlink message of at least `NLMSG_HDRLEN`
    /// bytes whose `nlmsg_len` bytes are all readable.
    fn ack_raw(&self, nlh: *const u8, err: Option<Error>, text: Option<fmt::Arguments<'_>>) {
        // Replies gathered before this ack go first.
        self.send_pending();
        let mut extack = bindings::netlink_ext_ack::default();
        if let Some(args) = text {
            let mut w = CBufWriter::new(&mut extack._msg_buf);
            // Truncation is fine for a message text; `write_fmt` never fails
            // otherwise.
            let _ = fmt::write(&mut w, args);
            w.terminate();
            extack._msg = extack._msg_buf.as_ptr();
        }
        let errno = err.map_or(0, |e| e.to_errno());
        // SAFETY: `self.skb` is the valid input skb (type invariant), whose
        // `sk` is the kernel socket and `NETLINK_CB` the sender. `nlh` points
        // to a message whose `nlmsg_len` bytes are readable (see the callers).
        // `extack` is valid for the call and `_msg`, if set, points to its
        // NUL-terminated `_msg_buf`; netlink copies it before returning.
        unsafe {
            bindings::netlink_ack(
                self.skb.as_ptr(),
                nlh.cast_mut().cast::<bindings::nlmsghdr>(),
                errno,
                &extack,
            )
        };
    }
}

impl Drop for Datagram<'_> {
    #[inline]
    fn drop(&mut self) {
        // Protocols flush (and count failures) themselves; this only makes
        // sure gathered replies are never dropped unsent.
        self.send_pending();
    }
}

/// A netlink header copy aligned like `struct nlmsghdr`.
#[repr(C, align(4))]
struct HeaderCopy([u8; NLMSG_HDRLEN]);

/// Writes formatted text into a fixed C char buffer, truncating, always
/// leaving room for the terminating NUL.
struct CBufWriter<'b> {
    buf: &'b mut [c_char],
    len: usize,
}

impl<'b> CBufWriter<'b> {
    fn new(buf: &'b mut [c_char]) -> Self {
        CBufWriter { buf, len: 0 }
    }

    /// NUL-terminates what was written.
    fn terminate(self) {
        if let Some(last) = self.buf.get_mut(self.len) {
            *last = 0;
        }
    }
}

impl fmt::Write for CBufWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len().saturating_sub(1).saturating_sub(self.len);
        for (dst, &b) in self
            .buf
            .iter_mut()
            .skip(self.len)
            .zip(s.as_bytes().iter().take(room))
        {
            *dst = b as c_char;
        }
        self.len += core::cmp::min(room, s.len());
        Ok(())
    }
}

/// An outgoing socket buffer holding one or more netlink messages.
///
/// # Invariants
///
/// `skb` points to a valid `sk_buff` owned by this value, with at least
/// `room` bytes of tailroom left.
pub(crate) struct SkBuff {
    skb: NonNull<bindings::sk_buff>,
    room: usize,
    messages: u32,
}

impl SkBuff {
    /// Allocates an empty skb with room for `size` bytes of messages.
    #[inline]
    fn alloc(size: usize) -> Result<Self> {
        let size_c = u32::try_from(size).map_err(|_| EMSGSIZE)?;
        // SAFETY: `__alloc_skb` has no preconditions beyond valid arguments;
        // `GFP_KERNEL` is fine as every caller runs in task context.
        let raw = unsafe {
            bindings::__alloc_skb(size_c, bindings::GFP_KERNEL, 0, bindings::NUMA_NO_NODE)
        };
        // INVARIANT: A non-null `raw` is a fresh skb that we own, with at
        // least `size` bytes of tailroom.
        Ok(SkBuff {
            skb: NonNull::new(raw).ok_or(ENOMEM)?,
            room: size,
            messages: 0,
        })
    }

    /// Appends one netlink message (header addressed to `portid`, payload
    /// `parts` concatenated, `payload` bytes in all). Padding is zeroed by
    /// `__nlmsg_put`; every payload byte is written from `parts`, so no
    /// uninitialised byte is ever sent. Fails with `EMSGSIZE` (and appends
    /// nothing) if it does not fit.
    #[inline]
    fn put_message(
        &mut self,
        payload: usize,
        portid: u32,
        seq: u32,
        ty: u16,
        flags: u16,
        parts: &[&[u8]],
    ) -> Result {
        let size = nlmsg_total_size(payload).ok_or(EMSGSIZE)?;
        if size > self.room {
            return Err(EMSGSIZE);
        }
        let payload_c = i32::try_from(payload).map_err(|_| EMSGSIZE)?;
        // SAFETY: `skb` is valid and has at least `room >= size =
        // nlmsg_total_size(payload)` bytes of tailroom (type invariant), what
        // `__nlmsg_put` needs for this payload.
        let nlh = unsafe {
            bindings::__nlmsg_put(
                self.skb.as_ptr(),
                portid,
                seq,
                i32::from(ty),
                payload_c,
                i32::from(flags),
            )
        };
        if nlh.is_null() {
            return Err(EMSGSIZE);
        }
        // INVARIANT: `__nlmsg_put` used `size` bytes of the tailroom.
        self.room -= size;
        self.messages += 1;
        // SAFETY: `nlmsg_data(nlh)` is `nlh + NLMSG_HDRLEN`, inside the skb.
        let mut dst = unsafe { nlh.cast::<u8>().add(NLMSG_HDRLEN) };
        for part in parts {
            // SAFETY: `__nlmsg_put` reserved `payload` bytes after the header;
            // the parts add up to `payload`, so each copy stays inside that
            // area, and a skb we own cannot overlap the borrowed `part`.
            unsafe {
                core::ptr::copy_nonoverlapping(part.as_ptr(), dst, part.len());
                dst = dst.add(part.len());
            }
        }
        Ok(())
    }

    /// Allocates an skb with exactly one netlink message (see
    /// [`SkBuff::put_message`]).
    #[inline]
    pub(crate) fn message(
        portid: u32,
        seq: u32,
        ty: u16,
        flags: u16,
        parts: &[&[u8]],
    ) -> Result<Self> {
        let payload = payload_len(parts)?;
        let mut skb = Self::alloc(nlmsg_total_size(payload).ok_or(EMSGSIZE)?)?;
        skb.put_message(payload, portid, seq, ty, flags, parts)?;
        Ok(skb)
    }

    /// Gives up ownership, for a consuming C call.
    fn into_raw(self) -> *mut bindings::sk_buff {
        ManuallyDrop::new(self).skb.as_ptr()
    }
}

impl Drop for SkBuff {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own a valid skb; free it once.
        unsafe { bindings::nlmsg_free(self.skb.as_ptr()) };
    }
}

/// In-kernel unit tests of the layer and of the shared decoder as the kernel
/// compiles it; they run when the module loads on a KUnit-enabled kernel.
#[kunit_tests(rustnl)]
mod tests {
    use super::*;
    use crate::proto::{
        classify, Action, BroadcastHdr, ErrorKind, Limits, Messages, MsgType, NLM_F_REQUEST,
    };

    /// The linear data of a fresh skb built by `SkBuff::message`.
    fn data(skb: &SkBuff) -> &[u8] {
        // SAFETY: Such an skb is linear: `data` points to `len` initialised
        // bytes that live as long as the skb.
        unsafe {
            let s = skb.skb.as_ref();
            core::slice::from_raw_parts(s.data, s.len as usize)
        }
    }

    #[test]
    fn message_builder_lays_out_header_parts_and_padding() {
        let skb = SkBuff::message(7, 9, 0x10, NLM_F_REQUEST, &[b"ab", b"cde"]);
        assert!(skb.is_ok());
        if let Ok(skb) = skb {
            let data = data(&skb);
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
        let skb = SkBuff::message(1, 2, 0x12, 0, &[]);
        assert!(skb.is_ok());
        if let Ok(skb) = skb {
            assert_eq!(data(&skb).len(), NLMSG_HDRLEN);
        }
    }

    #[test]
    fn total_size_aligns_and_never_overflows() {
        assert_eq!(nlmsg_total_size(0), Some(16));
        assert_eq!(nlmsg_total_size(1), Some(20));
        assert_eq!(nlmsg_total_size(4), Some(20));
        assert_eq!(nlmsg_total_size(usize::MAX), None);
    }

    #[test]
    fn ext_ack_text_is_truncated_and_terminated() {
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
