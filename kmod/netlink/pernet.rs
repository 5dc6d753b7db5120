// SPDX-License-Identifier: GPL-2.0

//! A protocol in every network namespace: pernet operations and the input
//! callback.
//!
//! Set-up of a namespace (`init`): everything that can fail except the
//! socket itself is allocated first (state, ticker, bookkeeping); the state,
//! built in full, goes into the namespace's `net_generic` slot; only then is
//! the kernel socket created, so the input callback always finds the state
//! and there is no "starting up" answer. Teardown: `pre_exit` stops the tick,
//! says goodbye and releases the socket; the pernet core then waits one RCU
//! grace period for all namespaces going away together; `exit` waits for
//! senders still inside the input callback and frees everything.
//!
//! C header: [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h).

use super::{
    compat::bindings,
    datagram::Datagram,
    ffi,
    genl::GenlNet,
    socket::{KernelSocket, ReleasedSocket},
    ticker::Ticker,
    Netns, Protocol,
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Full, Relaxed, Release},
    types::Opaque,
};

/// What the pernet core keeps for us in every namespace: `size` bytes it
/// zeroes before `init` and frees after `exit` (or after a failed `init`).
///
/// # Invariants
///
/// `state` is null or came from `KBox::<P>::into_raw`; it is set before the
/// namespace's kernel socket is created and cleared only in `exit`, after the
/// socket was released and every sender has left the input callback, under
/// `genl_mutex`. So whenever input runs, `state` is set, and a generic
/// netlink operation (run under `genl_mutex`) sees it set or null. `serving` is null or came from
/// `KBox::<Serving<P>>::into_raw`; it is only touched by `init`, `pre_exit`
/// and `exit`, which the pernet core serialises per namespace.
#[repr(C)]
struct Slot<P: Protocol> {
    state: *const P,
    serving: *mut Serving<P>,
}

/// A namespace's socket and ticker.
struct Serving<P: Protocol> {
    /// Until `pre_exit`.
    socket: Option<KernelSocket>,
    /// From `pre_exit` on; waits for senders when dropped in `exit`.
    released: Option<ReleasedSocket>,
    ticker: Option<Pin<KBox<Ticker<P>>>>,
}

/// The pernet operations (linked into the kernel's list while registered).
struct PernetOps(Opaque<bindings::pernet_operations>);
// SAFETY: Written only before registration (under `PERNET_REGISTERED`), then
// owned by the pernet core, which serialises access.
unsafe impl Sync for PernetOps {}
static PERNET_OPS: PernetOps = PernetOps(Opaque::uninit());
/// The pernet id: the core writes it inside `register_pernet_subsys`,
/// before the first `init`, and nothing writes it afterwards.
struct PernetId(core::cell::UnsafeCell<c_uint>);
// SAFETY: Written only by the pernet core during registration, before any
// reader (`init`, `pre_exit`, `exit`, input) can run; only read after.
unsafe impl Sync for PernetId {}
static PERNET_ID: PernetId = PernetId(core::cell::UnsafeCell::new(0));

impl PernetId {
    /// The location, for the core and the input helper.
    #[inline(always)]
    fn as_ptr(&self) -> *mut c_uint {
        self.0.get()
    }

    /// The id (only read once registration has begun `init`s).
    #[inline(always)]
    fn get(&self) -> c_uint {
        // SAFETY: See `PernetId`'s `Sync`: no write after registration.
        unsafe { *self.as_ptr() }
    }
}
/// Only one registration per module (the statics above are single).
static PERNET_REGISTERED: Atomic<bool> = Atomic::new(false);
/// Whether generic netlink operations may look at the namespaces' slots
/// (`state_of`): from a complete registration until unregistration begins.
/// `unregister_pernet_subsys` frees every slot (the pernet core's
/// `ops_free`) while the family, which does not pin the module, may still
/// run operations: without this, one of them read a freed slot (KASAN
/// slab-use-after-free in `doit`, found by the guest test
/// `genl_unload_with_ops_in_flight`).
///
/// # Invariants
///
/// Read and written only under `genl_mutex`.
struct GenlMayLook(core::cell::UnsafeCell<bool>);
// SAFETY: Every access is serialised by `genl_mutex` (type invariant).
unsafe impl Sync for GenlMayLook {}
static GENL_MAY_LOOK: GenlMayLook = GenlMayLook(core::cell::UnsafeCell::new(false));
/// Set while `register_pernet_subsys` runs `init` for the namespaces that
/// exist at load (it holds `pernet_ops_rwsem` for writing throughout, so no
/// namespace is created meanwhile).
static LOADING: Atomic<bool> = Atomic::new(false);
/// Set once a kernel socket was created during the load: from then on the
/// unit is usable, and user sockets of it may hold module references.
static UNIT_PUBLISHED: Atomic<bool> = Atomic::new(false);
/// Whether namespaces that exist at load, after the first, are served.
static SERVE_EXISTING: Atomic<bool> = Atomic::new(false);
/// Namespaces that existed at load and were not served.
static SKIPPED: Atomic<u32> = Atomic::new(0);

/// This namespace's slot.
///
/// # Safety
///
/// `net` must be live and the registration active.
unsafe fn slot<P: Protocol>(net: *mut bindings::net) -> *mut Slot<P> {
    // SAFETY: As required by the caller; with `size` set, the core allocated
    // a zeroed `Slot<P>`-sized block for this id in every namespace.
    unsafe { ffi::rustnl_net_generic(net, PERNET_ID.get()).cast() }
}

/// The protocol state of `net`, for the generic netlink face: `None` while
/// the namespace is not served (its set-up failed, or it is torn down) and
/// while the registration is not complete or is being undone.
///
/// # Safety
///
/// `net` must be live for `'a`, and the caller must hold `genl_mutex` for
/// `'a` (a generic netlink operation of a family that is not
/// `parallel_ops`): `exit` takes the state away under it, and [`Pernet`]'s
/// drop closes the slots to operations under it before freeing them.
pub(super) unsafe fn state_of<'a, P: Protocol>(net: *mut bindings::net) -> Option<&'a P> {
    // SAFETY: The caller holds `genl_mutex` (`GenlMayLook`'s invariant).
    if !unsafe { *GENL_MAY_LOOK.0.get() } {
        return None;
    }
    // SAFETY: `net` is live (caller) and the registration active: the flag
    // is set only between a complete registration and the start of its
    // undoing, both under `genl_mutex`, which the caller holds.
    let slot = unsafe { slot::<P>(net) };
    // SAFETY: The slot lives with the namespace; `state` is cleared only
    // under `genl_mutex` (`Slot`'s invariants), which the caller holds.
    let state = unsafe { (*slot).state };
    // SAFETY: Non-null: set by `try_serve`, and not freed while the caller
    // holds `genl_mutex`.
    (!state.is_null()).then(|| unsafe { &*state })
}

/// Pernet `init`.
///
/// # Safety
///
/// Called by the pernet core for a namespace being set up.
unsafe extern "C" fn pernet_init<P: Protocol>(net: *mut bindings::net) -> c_int {
    // SAFETY: As documented.
    match unsafe { serve::<P>(net) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Sets up `net`, or leaves it without the unit where failing is not an
/// option.
///
/// # Safety
///
/// `net` is a namespace being set up by the pernet core (its slot zeroed).
unsafe fn serve<P: Protocol>(net: *mut bindings::net) -> Result {
    let loading_published = || LOADING.load(Relaxed) && UNIT_PUBLISHED.load(Relaxed);
    if loading_published() && !SERVE_EXISTING.load(Relaxed) {
        // The unit is usable already, and processes may be inside this
        // namespace: on a kernel without the netlink fix, creating its
        // socket now opens the window described in `mod.rs`. Left without
        // the unit (`Pernet::register`'s `serve_existing`); its other faces
        // (generic netlink, whose kernel sockets exist from boot) are
        // served.
        SKIPPED.fetch_add(1, Relaxed);
        // SAFETY: As required by the caller.
        return unsafe { try_serve::<P>(net, false) }.or_else(|e| {
            pr_err!(
                "cannot set up a network namespace (errno {}): it is left without rustnl\n",
                e.to_errno()
            );
            Ok(())
        });
    }
    // SAFETY: As required by the caller.
    match unsafe { try_serve::<P>(net, true) } {
        Ok(()) => {
            if LOADING.load(Relaxed) {
                UNIT_PUBLISHED.store(true, Relaxed);
            }
            Ok(())
        }
        Err(e) if loading_published() => {
            // Failing now would fail the module's load while user sockets
            // opened since the unit became usable hold references to it
            // (the loader frees a module whose init failed regardless).
            // This namespace goes without the unit instead.
            pr_err!(
                "cannot set up a network namespace (errno {}): it is left without the unit\n",
                e.to_errno()
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sets up `net`: state, then (with `with_socket`) the unit's socket, then
/// tick. On failure nothing is left behind (the slot is as it was).
///
/// # Safety
///
/// `net` is a namespace being set up by the pernet core (its slot zeroed).
unsafe fn try_serve<P: Protocol>(net: *mut bindings::net, with_socket: bool) -> Result {
    let cfg = P::config();
    // Everything that can fail, before the socket exists.
    let state = KBox::new(P::new_state()?, GFP_KERNEL)?;
    let ticker = match cfg.tick_ms {
        0 => None,
        ms => Some(Ticker::<P>::new(ms)?),
    };
    let mut serving = KBox::new(
        Serving {
            socket: None,
            released: None,
            ticker,
        },
        GFP_KERNEL,
    )?;
    // SAFETY: `net` is live and registered (pernet init).
    let slot = unsafe { slot::<P>(net) };
    let state = KBox::into_raw(state);
    // INVARIANT: The state is set before the socket exists.
    // SAFETY: The slot is ours; nothing else reads it before the socket
    // exists, and creating the socket publishes this store.
    unsafe { (*slot).state = state };
    let socket = if with_socket {
        // SAFETY: `net` is live; `input_trampoline` finds the state set
        // above.
        match unsafe { KernelSocket::new(net, &cfg, input_trampoline::<P>) } {
            Ok(socket) => Some(socket),
            Err(e) => {
                // SAFETY: Unpublished: no socket was created, and no generic
                // netlink operation reaches the slot yet (nobody is inside a
                // namespace being created; during the load, the family is
                // registered only after every namespace is set up).
                unsafe { (*slot).state = core::ptr::null() };
                // SAFETY: From `KBox::into_raw` above, not shared.
                drop(unsafe { KBox::from_raw(state) });
                return Err(e);
            }
        }
    } else {
        None
    };
    if let Some(socket) = socket.as_ref() {
        // SAFETY: The slot lives as long as the namespace, which outlives
        // its socket. Input finds the slot here from now on, and through
        // `net_generic` until this store: the same slot either way.
        unsafe { socket.cache_user_data(slot.cast()) };
    }
    if let Some(ticker) = serving.ticker.as_mut() {
        // SAFETY: The state, the socket and the namespace live until
        // `pre_exit` stops the ticker (the state until `exit`, the socket
        // until its release, the namespace until after `exit`).
        unsafe { ticker.as_mut().start(&*state, net, socket.as_ref().map(|s| s.sock())) };
    }
    serving.socket = socket;
    // SAFETY: The slot is ours (pernet init).
    unsafe { (*slot).serving = KBox::into_raw(serving) };
    Ok(())
}

/// Pernet `pre_exit`: stop ticking, say goodbye, release the socket.
///
/// # Safety
///
/// Called by the pernet core for a namespace whose `init` succeeded.
unsafe extern "C" fn pernet_pre_exit<P: Protocol>(net: *mut bindings::net) {
    // SAFETY: `net` is live and our registration active.
    let slot = unsafe { slot::<P>(net) };
    // SAFETY: See `Slot`'s invariants: set by `init`, ours until `exit`.
    let (state, serving) = unsafe { ((*slot).state, (*slot).serving) };
    if serving.is_null() || state.is_null() {
        return; // A namespace left without the unit.
    }
    // SAFETY: `serving` is a live box only this pernet path touches, and the
    // state outlives it (`Slot`'s invariants).
    let (state, serving) = unsafe { (&*state, &mut *serving) };
    if let Some(ticker) = serving.ticker.as_ref() {
        ticker.stop();
    }
    let socket = serving.socket.take();
    // SAFETY: `net` is live and its genl socket exists until its `exit`
    // (genetlink's pernet `exit` runs after every `pre_exit`); the family
    // outlives every namespace's state (see `genl.rs`).
    let genl = unsafe { GenlNet::of(net) };
    state.closing(&Netns {
        classic: socket.as_ref().map(|s| s.sock()),
        genl,
    });
    if let Some(socket) = socket {
        serving.released = Some(socket.release());
    }
}

/// Pernet `exit`: wait for senders, free the namespace's socket and state.
///
/// # Safety
///
/// Called by the pernet core for a namespace whose `init` succeeded, after
/// its `pre_exit` and an RCU grace period.
unsafe extern "C" fn pernet_exit<P: Protocol>(net: *mut bindings::net) {
    // SAFETY: `net` is live and our registration active.
    let slot = unsafe { slot::<P>(net) };
    // SAFETY: `serving` is ours (see `Slot`); taken out exactly once, here.
    let serving = unsafe { core::ptr::replace(&raw mut (*slot).serving, core::ptr::null_mut()) };
    if !serving.is_null() {
        // SAFETY: From `KBox::into_raw` in `serve`. Dropping it waits for
        // senders in the input callback (`ReleasedSocket`), then frees.
        drop(unsafe { KBox::from_raw(serving) });
    }
    // No input can run now: the socket is released and its senders gone.
    // Generic netlink operations (which do not pin the module) read the
    // state under `genl_mutex` (`state_of`): once it is taken away under
    // the mutex, none is using it.
    // SAFETY: `genl_lock` has no preconditions; the pernet core holds
    // nothing genetlink operations wait for.
    unsafe { bindings::genl_lock() };
    // SAFETY: As above for `state`.
    let state = unsafe { core::ptr::replace(&raw mut (*slot).state, core::ptr::null()) };
    // SAFETY: Taken above.
    unsafe { bindings::genl_unlock() };
    if !state.is_null() {
        // SAFETY: From `KBox::into_raw` in `serve`, no longer shared.
        drop(unsafe { KBox::from_raw(state.cast_mut()) });
    }
}

/// Registration of a [`Protocol`] with every network namespace; unregisters
/// (tearing every namespace down) on drop.
pub(crate) struct Pernet<P: Protocol> {
    _p: PhantomData<P>,
}

impl<P: Protocol> Pernet<P> {
    /// Registers `P`: its `init` runs now for the existing namespaces and
    /// later for each new one. Fails with the first namespace's error, as
    /// long as the unit was not usable yet (see [`serve`]).
    ///
    /// The first namespace (the initial one) is always served, and so is
    /// every namespace created later (nobody is inside a namespace while it
    /// is set up). The other namespaces that exist now are served only with
    /// `serve_existing`: creating their sockets is what opens the netlink
    /// core's load-time window on kernels without the fix (`mod.rs`).
    /// Returns the registration and how many namespaces were left out.
    pub(crate) fn register(serve_existing: bool) -> Result<(Self, u32)> {
        if PERNET_REGISTERED.xchg(true, Full) {
            return Err(EBUSY);
        }
        let ops = PERNET_OPS.0.get();
        // SAFETY: Not registered (checked above), so nobody else accesses
        // `ops`; `pernet_operations` is plain data for which zero is valid.
        unsafe {
            ops.write(bindings::pernet_operations {
                init: Some(pernet_init::<P>),
                pre_exit: Some(pernet_pre_exit::<P>),
                exit: Some(pernet_exit::<P>),
                id: PERNET_ID.as_ptr(),
                size: size_of::<Slot<P>>(),
                ..Default::default()
            })
        };
        UNIT_PUBLISHED.store(false, Relaxed);
        SERVE_EXISTING.store(serve_existing, Relaxed);
        SKIPPED.store(0, Relaxed);
        LOADING.store(true, Release);
        // SAFETY: `ops` is initialised and static.
        let ret = unsafe { bindings::register_pernet_subsys(ops) };
        LOADING.store(false, Release);
        if ret < 0 {
            PERNET_REGISTERED.store(false, Release);
            return Err(Error::from_errno(ret));
        }
        set_genl_may_look(true);
        Ok((Pernet { _p: PhantomData }, SKIPPED.load(Relaxed)))
    }
}

/// Sets [`GENL_MAY_LOOK`] under `genl_mutex`: once the mutex is released,
/// no operation that read the old value is running.
fn set_genl_may_look(on: bool) {
    // SAFETY: `genl_lock` has no preconditions; callers hold nothing that
    // generic netlink operations wait for.
    unsafe { bindings::genl_lock() };
    // SAFETY: Under `genl_mutex` (`GenlMayLook`'s invariant).
    unsafe { *GENL_MAY_LOOK.0.get() = on };
    // SAFETY: Taken above.
    unsafe { bindings::genl_unlock() };
}

impl<P: Protocol> Drop for Pernet<P> {
    fn drop(&mut self) {
        // Generic netlink operations stop looking at the slots before the
        // pernet core frees them (they answer "not serving" until the
        // family is unregistered).
        set_genl_may_look(false);
        // SAFETY: Registered by `register`; runs `pre_exit`, one grace
        // period, then `exit` for every namespace.
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
    // SAFETY: The netlink core passes a valid input skb that outlives this
    // call.
    let Some(datagram) = (unsafe { Datagram::from_raw(skb) }) else {
        return;
    };
    let sk = datagram.kernel_sock();
    // SAFETY: `sk` is the receiving kernel socket, valid during the callback;
    // its namespace is live and our registration active while it exists.
    // The helper returns the slot cached in `sk_user_data` (stored once,
    // after the socket was created) or, before that store, the one
    // `net_generic` finds: the same slot.
    let slot = unsafe { ffi::rustnl_sock_net_generic(sk.as_ptr(), PERNET_ID.as_ptr()) }
        .cast::<Slot<P>>();
    // SAFETY: The slot of a namespace being served; `state` was stored
    // before the socket was created, which ordered the store before any
    // lookup that found the socket (`Slot`'s invariants).
    let state = unsafe { (*slot).state };
    // SAFETY: Set whenever input runs, and freed only after every sender has
    // left this callback (`Slot`'s invariants).
    let state = unsafe { &*state };
    state.receive(sk, &datagram);
}
