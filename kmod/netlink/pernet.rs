// SPDX-License-Identifier: GPL-2.0

//! The protocol's unit in every network namespace: a second pernet
//! registration that creates each namespace's kernel socket and starts its
//! tick, and the input callback.
//!
//! # Nothing fails once the unit is usable
//!
//! From its first kernel socket on, the unit is usable in every namespace,
//! and each user socket of it takes a reference on the module. While the
//! module is still loading, a failure would make the loader free it with
//! those references held (`do_init_module` does not wait for them), and
//! closing such a socket later runs `module_put` on freed memory. So:
//!
//! - this registration has no `id`/`size`: the pernet core allocates
//!   nothing for it (`ops_init`), and its `init` is the only thing that can
//!   fail inside `register_pernet_subsys`;
//! - everything a namespace needs besides its socket is allocated before
//!   the socket: the protocol state by the earlier registration
//!   ([`super::state`]), the [`Serving`] box and the ticker here;
//! - during the load, only the first namespace's `init` may fail (nothing
//!   is usable before its socket); any later failure leaves that namespace
//!   without the unit (logged) instead of failing the load. After the
//!   load, a failure fails the creation of that namespace, as any pernet
//!   `init` may.
//!
//! Whether an `init` is part of the load is told by the task: the loader
//! runs `register_pernet_subsys`, which holds `pernet_ops_rwsem` for writing
//! throughout, so no namespace is set up meanwhile; a namespace set up
//! later runs `init` in the task that creates it, never the loader.
//!
//! Teardown (`pre_exit`) stops the tick, says goodbye and releases the
//! socket; no wait for senders is needed (see [`KernelSocket`]).
//!
//! C header: [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h).

use super::{
    compat::bindings,
    datagram::Datagram,
    ffi,
    genl::GenlNet,
    socket::KernelSocket,
    state::{self, States},
    ticker::{Tick, Ticker},
    Netns, Protocol,
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Full, Relaxed, Release},
    task::Task,
    types::Opaque,
    ThisModule,
};

/// A namespace's socket and tick, in its slot's `unit` field.
///
/// # Invariants
///
/// `state` is the namespace's protocol state and `net` the namespace, both
/// valid while this box exists; `socket` is only written by this
/// registration's `init` (before the ticker starts) and `pre_exit` (after
/// it stopped).
struct Serving<P: Protocol> {
    state: *const P,
    net: *mut bindings::net,
    socket: Option<KernelSocket>,
    ticker: Option<Pin<KBox<Ticker<Serving<P>>>>>,
}

// SAFETY: What the raw pointers point to is `Sync` (`Protocol: Sync`) or
// only passed to the core; see the type invariants for the writes.
unsafe impl<P: Protocol> Sync for Serving<P> {}

impl<P: Protocol> Tick for Serving<P> {
    fn tick(&self) {
        // SAFETY: Valid while the box exists (type invariant), which
        // outlives its ticker.
        let state = unsafe { &*self.state };
        // SAFETY: The namespace is live while its tick runs, and so is its
        // genl socket; the family stays registered while the unit is
        // (`GenlNet::of`).
        let genl = unsafe { GenlNet::of(self.net) };
        state.tick(&Netns {
            classic: self.socket.as_ref().map(|s| s.sock()),
            genl,
        });
    }
}

/// The pernet operations (linked into the kernel's list while registered).
struct UnitOps(Opaque<bindings::pernet_operations>);
// SAFETY: Written only before registration (under `UNIT_CLAIMED`), then
// owned by the pernet core, which serialises access.
unsafe impl Sync for UnitOps {}
static UNIT_OPS: UnitOps = UnitOps(Opaque::uninit());
/// Taken by the one [`Unit`] of the module.
static UNIT_CLAIMED: Atomic<bool> = Atomic::new(false);
/// The module that owns the unit (`ThisModule` address), set before
/// registration.
static OWNER: Atomic<usize> = Atomic::new(0);
/// The loading task (`task_struct` address) while `register_pernet_subsys`
/// runs the existing namespaces' `init`; 0 otherwise.
static LOADER: Atomic<usize> = Atomic::new(0);
/// Set once the load created a kernel socket: the unit is usable.
static LOAD_PUBLISHED: Atomic<bool> = Atomic::new(false);
/// Whether namespaces that exist at load, after the first, get the unit.
static SERVE_EXISTING: Atomic<bool> = Atomic::new(false);
/// Namespaces that existed at load and were left without the unit.
static LEFT_OUT: Atomic<u32> = Atomic::new(0);

/// Pernet `init`.
///
/// # Safety
///
/// Called by the pernet core for a namespace being set up, after the
/// state registration's `init` for it.
unsafe extern "C" fn unit_init<P: Protocol>(net: *mut bindings::net) -> c_int {
    let loading = LOADER.load(Relaxed) == Task::current_raw() as usize;
    let published = loading && LOAD_PUBLISHED.load(Relaxed);
    // Processes may be inside a namespace that existed at load: on a
    // kernel without the netlink fix, creating its socket once the unit is
    // usable opens the window described in `mod.rs`.
    let with_socket = !published || SERVE_EXISTING.load(Relaxed);
    // SAFETY: As documented.
    match unsafe { serve::<P>(net, with_socket) } {
        Ok(()) => {
            if !with_socket {
                LEFT_OUT.fetch_add(1, Relaxed);
            }
            if loading && with_socket {
                LOAD_PUBLISHED.store(true, Relaxed);
            }
            0
        }
        // Nothing was published by this load yet, or the namespace is new
        // (the module is live): failing is sound.
        Err(e) if !published => e.to_errno(),
        Err(e) => {
            LEFT_OUT.fetch_add(1, Relaxed);
            pr_err!(
                "cannot set up a network namespace (errno {}): it is left without the unit\n",
                e.to_errno()
            );
            0
        }
    }
}

/// Sets up `net`: the serving box and ticker, then (with `with_socket`) the
/// socket, then the tick. On failure nothing is left behind.
///
/// # Safety
///
/// `net` is a namespace being set up by the pernet core, its state built.
unsafe fn serve<P: Protocol>(net: *mut bindings::net, with_socket: bool) -> Result {
    let cfg = P::config();
    // SAFETY: `net` is live and the state registration active.
    let slot = unsafe { state::slot::<P>(net) };
    // SAFETY: The state registration's `init` ran for `net` (caller).
    let state = unsafe { state::state_of::<P>(net) }.ok_or(ENODEV)?;
    // Everything that can fail, before the socket exists.
    let ticker = match cfg.tick_ms {
        0 => None,
        ms => Some(Ticker::<Serving<P>>::new(ms)?),
    };
    let mut serving = KBox::new(
        Serving {
            state: core::ptr::from_ref(state),
            net,
            socket: None,
            ticker,
        },
        GFP_KERNEL,
    )?;
    if with_socket {
        let owner = OWNER.load(Relaxed) as *const ThisModule;
        // SAFETY: Set before registration to the module, which outlives it.
        let owner = unsafe { &*owner };
        // SAFETY: `net` is live; `input_trampoline` finds the state through
        // the slot, set before this registration began.
        let socket = unsafe { KernelSocket::new(net, &cfg, owner, input_trampoline::<P>) }?;
        // SAFETY: The slot lives as long as the namespace, which outlives
        // its socket. Input finds the slot here from now on, and through
        // `net_generic` until this store: the same slot either way.
        unsafe { socket.cache_user_data(slot.cast()) };
        serving.socket = Some(socket);
    }
    let serving = KBox::into_raw(serving);
    // SAFETY: Just made, not shared yet.
    if let Some(ticker) = unsafe { (*serving).ticker.as_mut() } {
        // SAFETY: The box stays put and unchanged until `pre_exit`, which
        // stops the ticker before it touches the box.
        unsafe { ticker.as_mut().start(serving) };
    }
    // SAFETY: The slot's `unit` is ours (`Slot`).
    unsafe { (*slot).unit = serving.cast() };
    Ok(())
}

/// Pernet `pre_exit`: stop ticking, say goodbye, release the socket, free.
///
/// # Safety
///
/// Called by the pernet core for a namespace whose `init` succeeded, before
/// any registration's `exit` for it.
unsafe extern "C" fn unit_pre_exit<P: Protocol>(net: *mut bindings::net) {
    // SAFETY: `net` is live and the state registration active.
    let slot = unsafe { state::slot::<P>(net) };
    // SAFETY: Ours (`Slot`); taken out exactly once, here.
    let serving = unsafe { core::ptr::replace(&raw mut (*slot).unit, core::ptr::null_mut()) };
    if serving.is_null() {
        return;
    }
    let serving = serving.cast::<Serving<P>>();
    // SAFETY: From `KBox::into_raw` in `serve`, alive; the tick only reads
    // it, so a shared look at the ticker is fine.
    if let Some(ticker) = unsafe { (*serving).ticker.as_ref() } {
        ticker.stop();
    }
    // SAFETY: From `KBox::into_raw` in `serve`; with the tick stopped, only
    // this path uses it.
    let mut serving = unsafe { KBox::from_raw(serving) };
    // SAFETY: Valid while the box exists (`Serving`).
    let state = unsafe { &*serving.state };
    // SAFETY: `net` is live and its genl socket exists until its `exit`
    // (genetlink's pernet `exit` runs after every `pre_exit`); the family
    // stays registered while the unit is.
    let genl = unsafe { GenlNet::of(net) };
    state.closing(&Netns {
        classic: serving.socket.as_ref().map(|s| s.sock()),
        genl,
    });
    // Releases the socket; then the ticker and the box go.
    serving.socket = None;
}

/// The registration of `P`'s unit with every network namespace;
/// unregisters (tearing every namespace's socket down) on drop.
///
/// # Invariants
///
/// While the value exists, `UNIT_OPS` is registered.
pub(crate) struct Unit<P: Protocol> {
    _p: PhantomData<P>,
}

impl<P: Protocol> Unit<P> {
    /// Registers `P`'s unit, owned by `owner`: every namespace gets its
    /// kernel socket and tick, now and when it is created. `states` must
    /// stay registered while the unit is (drop the unit first).
    ///
    /// The first namespace (the initial one) always gets the socket, and so
    /// does every namespace created later (nobody is inside a namespace
    /// while it is set up). The other namespaces that exist now get it only
    /// with `serve_existing`: creating their sockets is what opens the
    /// netlink core's load-time window on kernels without the fix
    /// (`mod.rs`). Fails only if the first namespace cannot be served, with
    /// nothing published. Returns the registration and how many namespaces
    /// were left without the unit.
    pub(crate) fn register(
        _states: &States<P>,
        owner: &'static ThisModule,
        serve_existing: bool,
    ) -> Result<(Self, u32)> {
        if UNIT_CLAIMED.xchg(true, Full) {
            return Err(EBUSY);
        }
        let ops = UNIT_OPS.0.get();
        // SAFETY: Not registered (claimed above), so nobody else accesses
        // `ops`; `pernet_operations` is plain data for which zero is valid.
        unsafe {
            ops.write(bindings::pernet_operations {
                init: Some(unit_init::<P>),
                pre_exit: Some(unit_pre_exit::<P>),
                ..Default::default()
            })
        };
        OWNER.store(core::ptr::from_ref(owner) as usize, Relaxed);
        LOAD_PUBLISHED.store(false, Relaxed);
        SERVE_EXISTING.store(serve_existing, Relaxed);
        LEFT_OUT.store(0, Relaxed);
        LOADER.store(Task::current_raw() as usize, Release);
        // SAFETY: `ops` is initialised and static.
        let ret = unsafe { bindings::register_pernet_subsys(ops) };
        LOADER.store(0, Release);
        if ret < 0 {
            UNIT_CLAIMED.store(false, Release);
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Registered.
        Ok((Unit { _p: PhantomData }, LEFT_OUT.load(Relaxed)))
    }
}

impl<P: Protocol> Drop for Unit<P> {
    fn drop(&mut self) {
        // SAFETY: Registered (type invariant); runs `pre_exit` for every
        // namespace.
        unsafe { bindings::unregister_pernet_subsys(UNIT_OPS.0.get()) };
        UNIT_CLAIMED.store(false, Release);
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
    // its namespace is live (the sender's socket holds it) and both
    // registrations are active while the socket exists. The helper returns
    // the slot cached in `sk_user_data` (stored once, after the socket was
    // created) or, before that store, the one `net_generic` finds: the same
    // slot.
    let slot = unsafe { ffi::rustnl_sock_net_generic(sk.as_ptr(), state::id_ptr()) };
    // SAFETY: The state was set before the socket was created and is freed
    // only after it was released and the namespace is unreachable.
    let Some(state) = (unsafe { state::state_in::<P>(slot.cast()) }) else {
        return;
    };
    state.receive(sk, &datagram);
}
