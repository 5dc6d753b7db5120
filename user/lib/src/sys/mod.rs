//! Kernel uapi layouts libc lacks (connector, proc events, rtnetlink), as
//! bindgen generated them from the 7.3 kernel's own exported headers
//! (`make uapi`; `make check-uapi` verifies the checked-in file). Plain data:
//! every bit pattern is a valid value of each struct.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]

mod uapi;
pub use uapi::*;

/// Reads a plain-data uapi struct from the start of `bytes`, if long enough.
pub(crate) fn read<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < core::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: `T: Plain` is a generated C struct of integers/arrays/unions of
    // them, valid for every bit pattern; `bytes` holds at least
    // `size_of::<T>()` bytes; `read_unaligned` copes with any alignment.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// As [`read`], for a layout the message must start with: too short is
/// [`Error::BadLayout`](crate::Error::BadLayout) naming `what` and the
/// sizes.
pub(crate) fn read_layout<T: Plain>(bytes: &[u8], what: &'static str) -> crate::Result<T> {
    read(bytes).ok_or(crate::Error::BadLayout {
        what,
        source: crate::proto::LayoutError::Short {
            need: core::mem::size_of::<T>(),
            have: bytes.len(),
        },
    })
}

/// Marks the generated structs that are valid for every bit pattern.
///
/// # Safety
///
/// Implement only for `repr(C)` types made of integers and arrays/unions of
/// them.
pub(crate) unsafe trait Plain {}
// SAFETY: bindgen-generated repr(C) integer structs (see uapi.rs).
unsafe impl Plain for cn_msg {}
// SAFETY: As above; the union holds only integer structs and arrays.
unsafe impl Plain for proc_event {}
// SAFETY: As above.
unsafe impl Plain for ifinfomsg {}
// SAFETY: As above.
unsafe impl Plain for ifaddrmsg {}
// SAFETY: As above.
unsafe impl Plain for rtmsg {}
