// SPDX-License-Identifier: GPL-2.0

//! Outgoing socket buffers holding netlink messages.
//!
//! C header: [`include/net/netlink.h`](srctree/include/net/netlink.h).

use super::raw_gfp;

/// `NLMSG_HDRLEN`: a message header, already aligned.
pub(super) const NLMSG_HDRLEN: usize = size_of::<bindings::nlmsghdr>();
use core::{mem::ManuallyDrop, ptr::NonNull};
use super::compat::bindings;
use kernel::{alloc::Flags, prelude::*};

/// Netlink messages are aligned to this many bytes.
const NLMSG_ALIGNTO: usize = 4;

/// `SMP_CACHE_BYTES` (x86-64, arm64): `__alloc_skb` aligns to it.
const CACHE_LINE: usize = 64;

/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`: what `__alloc_skb` adds
/// to the data it is asked for.
pub(super) const SHARED_INFO: usize =
    (size_of::<bindings::skb_shared_info>() + CACHE_LINE - 1) & !(CACHE_LINE - 1);

/// Largest skb that gathers several replies to one datagram: with
/// `skb_shared_info` it fills 32 KiB, one order-3 block (32 KiB of data
/// would need order 4).
pub(super) const BATCH_ROOM: usize = (32 * 1024 - SHARED_INFO) & !(CACHE_LINE - 1);

/// Largest payload of one message: with its header and padding it still
/// fits the `int` lengths `__nlmsg_put` and `__alloc_skb` take.
pub(super) const MAX_PAYLOAD: usize = i32::MAX as usize - NLMSG_HDRLEN - NLMSG_ALIGNTO;

/// The length of `head` and `parts` together; `EMSGSIZE` past
/// [`MAX_PAYLOAD`]. `N` is a constant, so the sum unrolls, and the bound
/// checked here lets the compiler drop the later size checks of the
/// message (`make bench-profile`: summed as a slice, with each size
/// checked again, a classic echo took 40 module instructions more).
#[inline]
pub(super) fn payload_len<const H: usize, const N: usize>(
    head: &[u8; H],
    parts: &[&[u8]; N],
) -> Result<usize> {
    // Saturating, not checked: a sum without an early exit unrolls; an
    // overflow stays at `usize::MAX`, past the bound.
    let len = parts
        .iter()
        .fold(head.len(), |acc, p| acc.saturating_add(p.len()));
    if len > MAX_PAYLOAD {
        return Err(EMSGSIZE);
    }
    Ok(len)
}

/// `NLMSG_ALIGN(NLMSG_HDRLEN + payload)`, or `None` on overflow.
#[inline]
pub(super) fn nlmsg_total_size(payload: usize) -> Option<usize> {
    NLMSG_HDRLEN
        .checked_add(payload)?
        .checked_add(NLMSG_ALIGNTO - 1)
        .map(|v| v & !(NLMSG_ALIGNTO - 1))
}

/// An outgoing socket buffer holding one or more netlink messages.
///
/// # Invariants
///
/// `skb` points to a valid `sk_buff` owned by this value, with at least
/// `room` bytes of tailroom left; its data is linear.
pub(crate) struct SkBuff {
    skb: NonNull<bindings::sk_buff>,
    room: usize,
    messages: u32,
}

impl SkBuff {
    /// Allocates an empty skb with room for `size` bytes of messages.
    #[inline]
    pub(super) fn alloc(size: usize, flags: Flags) -> Result<Self> {
        let size_c = u32::try_from(size).map_err(|_| EMSGSIZE)?;
        // SAFETY: `__alloc_skb` has no preconditions beyond valid arguments;
        // callers pick `flags` for their context.
        let raw =
            unsafe { bindings::__alloc_skb(size_c, raw_gfp(flags), 0, bindings::NUMA_NO_NODE) };
        // INVARIANT: A non-null `raw` is a fresh linear skb that we own, with
        // at least `size` bytes of tailroom.
        Ok(SkBuff {
            skb: NonNull::new(raw).ok_or(ENOMEM)?,
            room: size,
            messages: 0,
        })
    }

    /// How many messages it holds.
    #[inline]
    pub(super) fn messages(&self) -> u32 {
        self.messages
    }

    /// Appends one netlink message (header addressed to `portid`, payload
    /// `head` then `parts` concatenated). Padding is zeroed by
    /// `__nlmsg_put`; every payload byte is written from `head` and `parts`,
    /// so no uninitialised byte is ever sent. Fails with `EMSGSIZE` (and
    /// appends nothing) if it does not fit.
    ///
    /// `head` (a fixed-size array: `[]` for none) is written with plain
    /// stores, each of `parts` with a `memcpy` call: a generic netlink
    /// answer's headers (genl header, first attribute header) go in `head`
    /// (`make bench-profile`: ~25 instructions a genl echo).
    #[inline]
    pub(super) fn put_message<const H: usize, const N: usize>(
        &mut self,
        portid: u32,
        seq: u32,
        ty: u16,
        flags: u16,
        head: &[u8; H],
        parts: &[&[u8]; N],
    ) -> Result {
        let payload = payload_len(head, parts)?;
        let size = nlmsg_total_size(payload).ok_or(EMSGSIZE)?;
        if size > self.room {
            return Err(EMSGSIZE);
        }
        // SAFETY: `payload` and `size` are the message's, `size` within the
        // room left.
        unsafe { self.write_message(size, payload, portid, seq, ty, flags, head, parts) }
    }

    /// [`SkBuff::put_message`] past its size checks (which a fresh skb of
    /// the message's size needs none of). It takes the two lengths its
    /// callers checked rather than computing them again: so the compiler
    /// drops the room update's overflow check too (27 instructions of
    /// `genl_request` otherwise).
    ///
    /// # Safety
    ///
    /// `payload` is `payload_len(head, parts)` and `size` is
    /// `nlmsg_total_size(payload)`, at most `self.room`.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn write_message<const H: usize, const N: usize>(
        &mut self,
        size: usize,
        payload: usize,
        portid: u32,
        seq: u32,
        ty: u16,
        flags: u16,
        head: &[u8; H],
        parts: &[&[u8]; N],
    ) -> Result {
        let payload_c = i32::try_from(payload).map_err(|_| EMSGSIZE)?;
        // SAFETY: `skb` is valid and has at least `room >= size =
        // nlmsg_total_size(payload)` bytes of tailroom (type invariant and
        // the caller), what `__nlmsg_put` needs for this payload.
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
        if H > 0 {
            // SAFETY: `head` is the first `H` of the `payload` bytes
            // `__nlmsg_put` reserved after the header; `[u8; H]` has
            // alignment 1.
            unsafe {
                dst.cast::<[u8; H]>().write(*head);
                dst = dst.add(H);
            }
        }
        for part in parts {
            // SAFETY: `__nlmsg_put` reserved `payload` bytes after the header;
            // `head` and the parts add up to `payload` (the caller), so each
            // copy stays inside that area, and a skb we own cannot overlap
            // the borrowed `part`.
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
    pub(crate) fn message<const H: usize, const N: usize>(
        portid: u32,
        seq: u32,
        ty: u16,
        flags: u16,
        head: &[u8; H],
        parts: &[&[u8]; N],
        gfp: Flags,
    ) -> Result<Self> {
        let payload = payload_len(head, parts)?;
        let size = nlmsg_total_size(payload).ok_or(EMSGSIZE)?;
        let mut skb = Self::alloc(size, gfp)?;
        // SAFETY: `payload` and `size` are the message's; the fresh skb has
        // room for `size` bytes.
        unsafe { skb.write_message(size, payload, portid, seq, ty, flags, head, parts) }?;
        Ok(skb)
    }

    /// The bytes written so far (for the in-kernel tests).
    #[cfg(rustnl_kunit)]
    pub(super) fn data(&self) -> &[u8] {
        // SAFETY: The skb is ours and linear (type invariant): `data` points
        // to `len` initialised bytes that live as long as the skb.
        unsafe {
            let s = self.skb.as_ref();
            core::slice::from_raw_parts(s.data, s.len as usize)
        }
    }

    /// Sets `NETLINK_CB(skb).dst_group`, as `nlmsg_multicast` does: a
    /// listener's `recvmsg` reports the group in its source address.
    #[inline]
    pub(super) fn set_dst_group(&mut self, group: u32) {
        // SAFETY: The skb is ours (type invariant); its control buffer holds
        // a `netlink_skb_parms` for netlink skbs (`NETLINK_CB` is this cast;
        // `cb` is 48 bytes, 8-aligned, larger than the struct).
        unsafe {
            let cb = (&raw mut (*self.skb.as_ptr()).cb).cast::<bindings::netlink_skb_parms>();
            (*cb).dst_group = group;
        }
    }

    /// Gives up ownership, for a consuming C call.
    #[inline]
    pub(super) fn into_raw(self) -> *mut bindings::sk_buff {
        ManuallyDrop::new(self).skb.as_ptr()
    }
}

impl Drop for SkBuff {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own a valid skb; free it once.
        unsafe { bindings::nlmsg_free(self.skb.as_ptr()) };
    }
}
