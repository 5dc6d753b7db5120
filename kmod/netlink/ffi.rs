// SPDX-License-Identifier: GPL-2.0

//! The one-line C accessors of `netlink_helpers.c` (prototypes in
//! `netlink_helpers.h`): what the Rust bindings cannot reach because
//! `struct sock` and `struct net_generic` are opaque to them or because the
//! C helper is `static inline`. Each is documented at its call site.

use super::compat::bindings;
use kernel::prelude::*;

// `struct net` embeds an empty array type that rustc flags as not FFI-safe;
// only pointers to it cross, which is sound.
#[allow(improper_ctypes)]
extern "C" {
    /// `net_generic(net, id)`.
    pub(super) fn rustnl_net_generic(net: *const bindings::net, id: c_uint) -> *mut c_void;
    /// The slot cached in `sk->sk_user_data`, or `net_generic(sock_net(sk),
    /// *id)` before it is: one call on the input path, which reads the id
    /// only in that case.
    pub(super) fn rustnl_sock_net_generic(
        sk: *const bindings::sock,
        id: *const c_uint,
    ) -> *mut c_void;
    /// `rcu_assign_sk_user_data(sk, data)`.
    pub(super) fn rustnl_set_sk_user_data(sk: *mut bindings::sock, data: *mut c_void);
    /// `INIT_DELAYED_WORK(dwork, func)`.
    pub(super) fn rustnl_init_delayed_work(
        dwork: *mut bindings::delayed_work,
        func: bindings::work_func_t,
    );
    /// `xa_cmpxchg(xa, index, old, entry, gfp)`.
    pub(super) fn rustnl_xa_cmpxchg(
        xa: *mut bindings::xarray,
        index: c_ulong,
        old: *mut c_void,
        entry: *mut c_void,
        gfp: bindings::gfp_t,
    ) -> *mut c_void;
    /// `xa_err(entry)`: the errno an xarray answer encodes, or 0.
    pub(super) fn rustnl_xa_err(entry: *mut c_void) -> c_int;
}
