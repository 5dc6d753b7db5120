// SPDX-License-Identifier: GPL-2.0

//! A protocol's state in every network namespace: pernet operations with a
//! slot (`net_generic`) in each namespace, holding the state built by
//! [`Protocol::new_state`].
//!
//! This is the first of the two pernet registrations of a protocol, and
//! the only one that may fail once it has begun: it publishes nothing (no
//! socket, no family), so a failure anywhere in it, in the pernet core's
//! own allocations or in [`Protocol::new_state`], is undone whole before
//! any user can have reached the module. The unit's sockets come after it
//! ([`super::pernet`]); each namespace's state outlives them (the pernet
//! core tears a namespace down in the reverse order of registration).
//!
//! C header: [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h).

use super::{ffi, Protocol};
use core::marker::PhantomData;
use super::compat::bindings;
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Full, Release},
    types::Opaque,
};

/// What the pernet core keeps for us in every namespace: `size` bytes it
/// zeroes before `init` and frees after `exit` (or after a failed `init`).
///
/// # Invariants
///
/// `state` is null or came from `KBox::<P>::into_raw`; it is set by this
/// registration's `init` and cleared by its `exit`, so it is set in every
/// namespace while [`States`] exists (a namespace whose `init` failed never
/// became reachable). `unit` belongs to the unit's registration
/// (`pernet.rs`), which sets it in its `init` and clears it before this
/// registration's `exit` runs; nothing here reads it.
#[repr(C)]
pub(super) struct Slot<P> {
    state: *const P,
    /// The unit's per-namespace data, opaque here.
    pub(super) unit: *mut c_void,
}

/// The pernet operations (linked into the kernel's list while registered).
struct StateOps(Opaque<bindings::pernet_operations>);
// SAFETY: Written only before registration (under `STATES_CLAIMED`), then
// owned by the pernet core, which serialises access.
unsafe impl Sync for StateOps {}
static STATE_OPS: StateOps = StateOps(Opaque::uninit());

/// The pernet id: the core writes it inside `register_pernet_subsys`,
/// before the first `init`, and nothing writes it afterwards.
struct PernetId(core::cell::UnsafeCell<c_uint>);
// SAFETY: Written only by the pernet core during registration, before any
// reader (`init`, `exit`, the unit's operations, input, generic netlink
// operations) can run; only read after.
unsafe impl Sync for PernetId {}
static PERNET_ID: PernetId = PernetId(core::cell::UnsafeCell::new(0));

/// Taken by the one [`States`] of the module (the statics above are
/// single).
static STATES_CLAIMED: Atomic<bool> = Atomic::new(false);

/// The location of the pernet id, for the input path's C helper.
#[inline(always)]
pub(super) fn id_ptr() -> *const c_uint {
    PERNET_ID.0.get()
}

/// This namespace's slot.
///
/// # Safety
///
/// `net` must be live and [`States`] registered.
#[inline]
pub(super) unsafe fn slot<P>(net: *mut bindings::net) -> *mut Slot<P> {
    // SAFETY: No write to the id after registration (`PernetId`).
    let id = unsafe { *id_ptr() };
    // SAFETY: As required by the caller; with `size` set, the core allocated
    // a zeroed `Slot<P>`-sized block for this id in every namespace.
    unsafe { ffi::rustnl_net_generic(net, id).cast() }
}

/// The protocol state of `net`.
///
/// # Safety
///
/// `net` must be live for `'a` and [`States`] registered for `'a`, and `'a`
/// must end before `net`'s teardown reaches this registration's `exit`:
/// e.g. a request from a user socket of `net` (which holds the namespace)
/// while the family that carries it is registered (only while [`States`]
/// is).
#[inline]
pub(super) unsafe fn state_of<'a, P>(net: *mut bindings::net) -> Option<&'a P> {
    // SAFETY: As required by the caller.
    unsafe { state_in(slot::<P>(net)) }
}

/// The protocol state in `slot`.
///
/// # Safety
///
/// `slot` must be a namespace's slot while [`States`] is registered, and
/// `'a` must end before that namespace's teardown reaches this
/// registration's `exit`.
#[inline]
pub(super) unsafe fn state_in<'a, P>(slot: *const Slot<P>) -> Option<&'a P> {
    // SAFETY: Set by `init` and cleared by `exit` only (`Slot`), which is
    // after `'a` (caller).
    let state = unsafe { (*slot).state };
    // SAFETY: A live box, not freed before `exit` (above).
    (!state.is_null()).then(|| unsafe { &*state })
}

/// Pernet `init`: builds the namespace's state.
///
/// # Safety
///
/// Called by the pernet core for a namespace being set up (its slot
/// zeroed).
unsafe extern "C" fn state_init<P: Protocol>(net: *mut bindings::net) -> c_int {
    let state = match P::new_state().and_then(|s| Ok(KBox::new(s, GFP_KERNEL)?)) {
        Ok(state) => state,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: `net` is being set up and this registration is active.
    let slot = unsafe { slot::<P>(net) };
    // INVARIANT: Set in `init`, cleared in `exit`.
    // SAFETY: The slot is ours; the pernet core serialises `init` and
    // `exit` of one namespace, and nobody reaches a namespace being set up.
    unsafe { (*slot).state = KBox::into_raw(state) };
    0
}

/// Pernet `exit`: frees the namespace's state.
///
/// # Safety
///
/// Called by the pernet core for a namespace whose `init` succeeded, after
/// every later registration's `exit` for it (the unit's, which released its
/// socket), when nothing can reach the namespace any more.
unsafe extern "C" fn state_exit<P: Protocol>(net: *mut bindings::net) {
    // SAFETY: `net` is live and this registration active.
    let slot = unsafe { slot::<P>(net) };
    // SAFETY: Ours (`Slot`); taken out exactly once, here.
    let state = unsafe { core::ptr::replace(&raw mut (*slot).state, core::ptr::null()) };
    if !state.is_null() {
        // SAFETY: From `KBox::into_raw` in `state_init`; nobody uses it any
        // more: no user socket of the namespace exists (a user socket holds
        // its namespace), and the unit's socket and tick are gone.
        drop(unsafe { KBox::from_raw(state.cast_mut()) });
    }
}

/// The registration of `P`'s state with every network namespace;
/// unregisters (freeing every namespace's state) on drop.
///
/// # Invariants
///
/// While the value exists, `STATE_OPS` is registered and every namespace's
/// slot holds its state.
pub(crate) struct States<P: Protocol> {
    _p: PhantomData<P>,
}

impl<P: Protocol> States<P> {
    /// Registers `P`'s state: [`Protocol::new_state`] runs now for every
    /// namespace and later for each new one. Fails with the first error,
    /// having undone the rest; nothing is published meanwhile.
    pub(crate) fn register() -> Result<Self> {
        if STATES_CLAIMED.xchg(true, Full) {
            return Err(EBUSY);
        }
        let ops = STATE_OPS.0.get();
        // SAFETY: Not registered (claimed above), so nobody else accesses
        // `ops`; `pernet_operations` is plain data for which zero is valid.
        unsafe {
            ops.write(bindings::pernet_operations {
                init: Some(state_init::<P>),
                exit: Some(state_exit::<P>),
                id: PERNET_ID.0.get(),
                size: size_of::<Slot<P>>(),
                ..Default::default()
            })
        };
        // SAFETY: `ops` is initialised and static.
        let ret = unsafe { bindings::register_pernet_subsys(ops) };
        if ret < 0 {
            STATES_CLAIMED.store(false, Release);
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Registered.
        Ok(States { _p: PhantomData })
    }
}

impl<P: Protocol> Drop for States<P> {
    fn drop(&mut self) {
        // SAFETY: Registered (type invariant); runs `exit` for every
        // namespace, then frees the slots.
        unsafe { bindings::unregister_pernet_subsys(STATE_OPS.0.get()) };
        STATES_CLAIMED.store(false, Release);
    }
}
