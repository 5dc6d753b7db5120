// SPDX-License-Identifier: GPL-2.0

//! The kernel crate's differences between the kernels rustnl builds for, in
//! one place: Linux 7.3 (Debian trixie-backports, the test kernel) and 7.2
//! (Debian sid and forky). `kmod/Kbuild` sets `--cfg rustnl_linux_7_2` from
//! the kernel Makefile's `VERSION`/`PATCHLEVEL`; everything else in the
//! module is the same source for both.
//!
//! What 7.2's kernel crate lacks or does differently (7.2.13 against 7.3.4):
//!
//! - `kernel::bindings` has no `net/genetlink.h` and no `net/netlink.h` (7.3
//!   added both to `rust/bindings/bindings_helper.h`): no `genl_*`,
//!   `nla_policy`, `pernet_operations`, `register_pernet_subsys`, and
//!   `struct net` is opaque (the genl layer reads `net->genl_sock`). On 7.2
//!   [`bindings`] is the module's own bindgen run (`kmod/Kbuild`) over 7.2's
//!   `bindings_helper.h` plus those two headers, with the command line the
//!   kernel generated its own bindings with (read from the kernel tree's
//!   `rust/bindings/.bindings_generated.rs.cmd`), so every layout is the one
//!   the C side of that very kernel uses. It is a self-contained set of
//!   types: never mixed with `kernel::bindings`' own. `struct ns_common`
//!   (in `struct net`) is opaque there: bindgen cannot see its anonymous
//!   `struct ns_tree;` member and laid it out 128 bytes short; bindgen's
//!   layout tests over the types the module uses guard the rest.
//! - No `rust_helper_nlmsg_free` (7.3's `rust/helpers` wraps `nlmsg_free`):
//!   [`bindings::nlmsg_free`] is written here from what the C inline does.
//! - `module!` has no `bool` parameters (it panics at build time) and
//!   `module_parameters::X.value()` returns `&T` (7.3: `T`): the on/off
//!   parameters are `u8` (0 or 1) on 7.2; [`param`] and [`flag`] read both.
//! - No `THIS_MODULE` associated constant of `ModuleMetadata` (7.2's
//!   `module!` emits a crate-root `static THIS_MODULE`): the layer takes
//!   the module as the `&'static ThisModule` that `Module::init` receives
//!   on both, and casts its `as_ptr()` to these bindings' `struct module`.
//! - `kernel::error::code` has no `EOPNOTSUPP` and no `ENOBUFS`: the
//!   protocol's errnos come from the shared table (`ErrorKind::errno`,
//!   `Error::from_errno`), and the socket layer compares with the bindings'
//!   `ENOBUFS`.

#[cfg(not(rustnl_linux_7_2))]
pub(crate) use kernel::bindings;

/// Linux 7.2: the module's own bindings (see the module documentation).
#[cfg(rustnl_linux_7_2)]
#[allow(
    clippy::all,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    unnecessary_transmutes,
    clippy::undocumented_unsafe_blocks
)]
pub(crate) mod bindings {
    mod raw {
        use kernel::ffi;
        use pin_init::{MaybeZeroable, Zeroable};

        // As the kernel's `rust/bindings/lib.rs`: the blocklisted types.
        type __kernel_size_t = usize;
        type __kernel_ssize_t = isize;
        type __kernel_ptrdiff_t = isize;

        // SAFETY: `__BindgenBitfieldUnit<Storage>` is a newtype around
        // `Storage` (as the kernel's `rust/bindings/lib.rs` says).
        unsafe impl<Storage> Zeroable for __BindgenBitfieldUnit<Storage> where Storage: Zeroable {}

        // Written by `kmod/Kbuild` into the module's build directory. (The
        // module calls none of the kernel's `rust_helper_*` wrappers of C
        // inlines on 7.2; they would come from the kernel tree's
        // `rust/bindings/bindings_helpers_generated.rs`, over these types.)
        include!("compat_bindings.rs");
    }
    pub(crate) use raw::*;

    // The same bindgen run over the types the module uses, with bindgen's
    // layout tests: a type whose Rust layout is not the C one (bindgen
    // misses some C constructs, see `kmod/Kbuild`) fails the build here.
    mod layout {
        use kernel::ffi;
        use pin_init::MaybeZeroable;
        type __kernel_size_t = usize;
        type __kernel_ssize_t = isize;
        type __kernel_ptrdiff_t = isize;
        include!("compat_layout.rs");
    }

    /// `nlmsg_free(skb)`: `kfree_skb(skb)`, which is
    /// `sk_skb_reason_drop(NULL, skb, SKB_DROP_REASON_NOT_SPECIFIED)`.
    ///
    /// # Safety
    ///
    /// As for `nlmsg_free`: `skb` is an skb the caller owns.
    pub(crate) unsafe fn nlmsg_free(skb: *mut sk_buff) {
        // SAFETY: As for `kfree_skb` (caller).
        unsafe {
            sk_skb_reason_drop(
                core::ptr::null_mut(),
                skb,
                skb_drop_reason_SKB_DROP_REASON_NOT_SPECIFIED,
            )
        }
    }
}

/// A numeric parameter's value (`module_parameters::X.value()`).
#[cfg(not(rustnl_linux_7_2))]
#[inline]
pub(crate) fn param<T>(value: T) -> T {
    value
}
/// A numeric parameter's value (`module_parameters::X.value()`).
#[cfg(rustnl_linux_7_2)]
#[inline]
pub(crate) fn param<T: Copy>(value: &T) -> T {
    *value
}

/// An on/off parameter's value (`bool`; 7.2: `u8`, anything but 0 is on).
#[cfg(not(rustnl_linux_7_2))]
#[inline]
pub(crate) fn flag(value: bool) -> bool {
    value
}
/// An on/off parameter's value (`bool`; 7.2: `u8`, anything but 0 is on).
#[cfg(rustnl_linux_7_2)]
#[inline]
pub(crate) fn flag(value: &u8) -> bool {
    *value != 0
}
