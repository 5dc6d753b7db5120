// SPDX-License-Identifier: GPL-2.0

//! A periodic tick on the system workqueue that can be stopped
//! synchronously.
//!
//! Hand-written rather than `kernel::workqueue::DelayedWork`: in 7.3 the
//! crate's work items can be queued but not cancelled or disabled, and a
//! namespace going away must stop its tick synchronously before what the
//! tick uses is freed (`disable_delayed_work_sync`). The upstream answer
//! would be a `disable_sync` on `DelayedWork` in `rust/kernel/workqueue.rs`;
//! until then this is the smallest equivalent. The ticker knows nothing of
//! netlink: it calls [`Tick::tick`] on its target.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h).

use super::ffi;
use super::compat::bindings;
use kernel::{prelude::*, types::Opaque};

/// What a [`Ticker`] calls.
pub(super) trait Tick: Sync {
    /// Runs every period in process context (may sleep).
    fn tick(&self);
}

/// A self-rearming delayed work item that calls [`Tick::tick`] on its
/// target.
///
/// # Invariants
///
/// `dwork` is initialised. Once [`Ticker::start`] has run, `target` points
/// to a `T` that stays valid until the ticker is stopped ([`Ticker::stop`]
/// or drop).
#[repr(C)]
pub(super) struct Ticker<T> {
    dwork: Opaque<bindings::delayed_work>,
    target: *const T,
    period_ms: u32,
}

// SAFETY: The ticker is only touched by the workqueue and by its owner,
// which disables it synchronously before freeing it; the target is shared
// read-only and `Sync` (`Tick: Sync`).
unsafe impl<T: Sync> Send for Ticker<T> {}
// SAFETY: As above.
unsafe impl<T: Sync> Sync for Ticker<T> {}

impl<T: Tick> Ticker<T> {
    /// A ticker for `period_ms`, initialised but not started: allocated
    /// before anything it serves is published, so that nothing can fail
    /// after.
    pub(super) fn new(period_ms: u32) -> Result<Pin<KBox<Self>>> {
        let t = KBox::pin(
            Ticker {
                dwork: Opaque::uninit(),
                target: core::ptr::null(),
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

    /// Starts ticking for `target`.
    ///
    /// # Safety
    ///
    /// `target` must point to a `T` that stays valid, and is not mutated
    /// except through interior mutability, until the ticker is stopped or
    /// dropped; `start` is called at most once.
    pub(super) unsafe fn start(self: Pin<&mut Self>, target: *const T) {
        // SAFETY: Only the unpinned pointer field is written; `dwork` is not
        // moved. Not queued yet, so nobody else reads it.
        let this = unsafe { self.get_unchecked_mut() };
        // INVARIANT: The caller keeps `target` valid until the ticker stops.
        this.target = target;
        // SAFETY: `dwork` is initialised (type invariant).
        unsafe { this.queue() };
    }

    /// Queues the work after one period on the system's default unbound
    /// queue (`queue_delayed_work(system_dfl_wq, ...)`). Fails, returning
    /// false, once [`Ticker::stop`] has disabled it.
    ///
    /// # Safety
    ///
    /// `dwork` must be initialised (it is, by the type invariant; `unsafe`
    /// only because the C call is).
    unsafe fn queue(&self) -> bool {
        let delay = kernel::time::msecs_to_jiffies(self.period_ms);
        // SAFETY: `dwork` is initialised (type invariant) and pinned;
        // `system_dfl_wq` is a C global that always exists.
        unsafe {
            bindings::queue_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                bindings::system_dfl_wq,
                self.dwork.get(),
                delay,
            )
        }
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
        // SAFETY: A started ticker's target is valid until it is stopped,
        // which waits for this run (type invariant).
        unsafe { &*this.target }.tick();
        // Fails once `stop` has disabled the work.
        // SAFETY: `dwork` is initialised (type invariant).
        unsafe { this.queue() };
    }
}

impl<T> Ticker<T> {
    /// Stops ticking: waits for a running tick, and no tick runs again.
    pub(super) fn stop(&self) {
        // SAFETY: `dwork` is initialised (type invariant). Disabling makes
        // the running tick's own re-queueing fail, and waits for it.
        unsafe { bindings::disable_delayed_work_sync(self.dwork.get()) };
    }
}

impl<T> Drop for Ticker<T> {
    fn drop(&mut self) {
        // Idempotent: a stopped or never started ticker is just disabled.
        self.stop();
    }
}
