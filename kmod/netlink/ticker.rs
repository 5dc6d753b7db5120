// SPDX-License-Identifier: GPL-2.0

//! A per-namespace periodic tick on the system workqueue.
//!
//! Hand-written rather than `kernel::workqueue::DelayedWork`: in 7.3 the
//! crate's work items can be queued but not cancelled or disabled, and a
//! namespace going away must stop its tick synchronously before the state
//! and socket the tick uses are freed (`disable_delayed_work_sync`).
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h).

use super::{ffi, genl::GenlNet, KernelSock, Netns, Protocol};
use super::compat::bindings;
use kernel::{prelude::*, types::Opaque};

/// A self-rearming delayed work item that calls [`Protocol::tick`].
///
/// # Invariants
///
/// `dwork` is initialised. Once [`Ticker::start`] has run, `state` and
/// `net` point to the namespace's protocol state and the namespace, and
/// `sock` is null or points to its kernel socket; all stay valid until the
/// ticker is stopped ([`Ticker::stop`] or drop).
#[repr(C)]
pub(super) struct Ticker<P: Protocol> {
    dwork: Opaque<bindings::delayed_work>,
    state: *const P,
    net: *mut bindings::net,
    sock: *const KernelSock,
    period_ms: u32,
}

// SAFETY: The ticker is only touched by the workqueue and by its owner,
// which disables it synchronously before freeing it; what it points to is
// shared read-only and `Sync`.
unsafe impl<P: Protocol> Send for Ticker<P> {}
// SAFETY: As above.
unsafe impl<P: Protocol> Sync for Ticker<P> {}

impl<P: Protocol> Ticker<P> {
    /// A ticker for `period_ms`, initialised but not started: allocated
    /// before the namespace's socket exists, so that nothing can fail after.
    pub(super) fn new(period_ms: u32) -> Result<Pin<KBox<Self>>> {
        let t = KBox::pin(
            Ticker {
                dwork: Opaque::uninit(),
                state: core::ptr::null(),
                net: core::ptr::null_mut(),
                sock: core::ptr::null(),
                period_ms,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `dwork` is pinned memory of the right type, initialised
        // here once, before it can be queued.
        unsafe { ffi::rustnl_init_delayed_work(t.dwork.get(), Some(Self::run)) };
        // INVARIANT: `dwork` is initialised.
        Ok(t)
    }

    /// Starts ticking for `state` in `net`, on `sock` if the namespace has
    /// the unit's socket.
    ///
    /// # Safety
    ///
    /// `state`, `net` and `sock` must stay valid until the ticker is stopped
    /// or dropped; `start` is called at most once.
    pub(super) unsafe fn start(
        self: Pin<&mut Self>,
        state: &P,
        net: *mut bindings::net,
        sock: Option<&KernelSock>,
    ) {
        // SAFETY: Only the unpinned pointer fields are written; `dwork` is
        // not moved. Not queued yet, so nobody else reads them.
        let this = unsafe { self.get_unchecked_mut() };
        // INVARIANT: The caller keeps both valid until the ticker stops.
        this.state = state;
        this.net = net;
        this.sock = sock.map_or(core::ptr::null(), |s| s as *const KernelSock);
        // SAFETY: `dwork` is initialised (type invariant).
        unsafe { ffi::rustnl_queue_delayed_work(this.dwork.get(), this.period_ms) };
    }

    /// Stops ticking: waits for a running tick, and no tick runs again.
    pub(super) fn stop(&self) {
        // SAFETY: `dwork` is initialised (type invariant). Disabling makes
        // the running tick's own re-queueing fail, and waits for it.
        unsafe { bindings::disable_delayed_work_sync(self.dwork.get()) };
    }

    /// The work function.
    ///
    /// # Safety
    ///
    /// Called by the workqueue with the `work` member of a started ticker's
    /// `dwork`.
    unsafe extern "C" fn run(work: *mut bindings::work_struct) {
        // `work` is the first field of `delayed_work`, which is the first
        // field of the `repr(C)` `Ticker`: the pointers coincide.
        let this = work.cast::<Self>();
        // SAFETY: See above; the ticker is alive while its work runs (it is
        // disabled synchronously before it is freed).
        let this = unsafe { &*this };
        // SAFETY: A started ticker's state, namespace and socket (if any) are
        // valid until it is stopped, which waits for this run (type
        // invariant).
        let (state, sock) = unsafe { (&*this.state, this.sock.as_ref()) };
        // SAFETY: The namespace is live while the ticker runs (type
        // invariant), and so is its genl socket; the family outlives every
        // namespace's state (`genl.rs`).
        let genl = unsafe { GenlNet::of(this.net) };
        state.tick(&Netns {
            classic: sock,
            genl,
        });
        // Fails once `stop` has disabled the work.
        // SAFETY: `dwork` is initialised (type invariant).
        unsafe { ffi::rustnl_queue_delayed_work(this.dwork.get(), this.period_ms) };
    }
}

impl<P: Protocol> Drop for Ticker<P> {
    fn drop(&mut self) {
        // Idempotent: a stopped or never started ticker is just disabled.
        self.stop();
    }
}
