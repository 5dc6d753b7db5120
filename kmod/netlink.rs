// SPDX-License-Identifier: GPL-2.0

//! A small safe layer over classic (non-generic) netlink.
//!
//! Every `unsafe` block of rustnl lives in this file. Above it, the protocol
//! code deals only in safe types:
//!
//! - [`KernelSocket`] owns a kernel netlink socket (`struct sock` from
//!   `__netlink_kernel_create`) and releases it on drop.
//! - [`Datagram`] is the borrowed view of one datagram a user socket sent to
//!   it, handed to a [`Receiver`] in the socket's input callback. It answers
//!   the sender: replies built from byte slices ([`Datagram::reply`]) and acks
//!   or errors with extended-ack text ([`Datagram::ack`]).
//! - [`SkBuff`] owns an outgoing `struct sk_buff` until it is sent.
//!
//! C helpers that are `static inline` (`netlink_kernel_create`, `nlmsg_new`,
//! `nlmsg_data`, `NETLINK_CB`) are re-expressed here over the exported
//! functions. Modelled on `rust/kernel/net/netlink.rs` (generic netlink).
//!
//! C headers: [`include/linux/netlink.h`](srctree/include/linux/netlink.h),
//! [`include/net/netlink.h`](srctree/include/net/netlink.h).

use crate::proto::{Message, NlMsgHdr, NLMSG_HDRLEN};
use core::{fmt, marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};
use kernel::{bindings, prelude::*, ThisModule};

/// Netlink messages are aligned to this many bytes.
const NLMSG_ALIGNTO: usize = 4;

/// `NLMSG_ALIGN(NLMSG_HDRLEN + payload)`, or `None` on overflow.
fn nlmsg_total_size(payload: usize) -> Option<usize> {
    NLMSG_HDRLEN
        .checked_add(payload)?
        .checked_add(NLMSG_ALIGNTO - 1)
        .map(|v| v & !(NLMSG_ALIGNTO - 1))
}

/// Handles the datagrams user sockets send to a [`KernelSocket`].
pub(crate) trait Receiver {
    /// Called once per datagram, in the sending task's context (may sleep).
    fn receive(datagram: &Datagram<'_>);
}

/// An owned kernel netlink socket for one protocol unit.
///
/// # Invariants
///
/// `sk` was returned by `__netlink_kernel_create`, is owned by this value and
/// is released exactly once, when it is dropped.
pub(crate) struct KernelSocket {
    sk: NonNull<bindings::sock>,
    unit: u32,
}

// SAFETY: A kernel netlink socket may be used and released from any task; the
// netlink core serialises access to it internally.
unsafe impl Send for KernelSocket {}
// SAFETY: All operations on `&KernelSocket` go through netlink core functions
// that are safe to call concurrently.
unsafe impl Sync for KernelSocket {}

impl KernelSocket {
    /// Creates the kernel socket of netlink protocol `unit` in the initial
    /// network namespace, with `R` handling what user sockets send to it.
    ///
    /// Fails with `EINVAL` if `unit` is not a netlink unit and with `EBUSY`
    /// if the unit already has a kernel socket (or memory ran out).
    pub(crate) fn new<R: Receiver>(
        module: &'static ThisModule,
        unit: u32,
        groups: u32,
        flags: u32,
    ) -> Result<Self> {
        if unit >= crate::proto::MAX_LINKS {
            return Err(EINVAL);
        }
        let unit_c = i32::try_from(unit).map_err(|_| EINVAL)?;
        let mut cfg = bindings::netlink_kernel_cfg {
            groups,
            flags,
            input: Some(input_trampoline::<R>),
            ..Default::default()
        };
        // SAFETY: `init_net` is a static that lives forever; `cfg` is valid for
        // the call (netlink copies what it needs); `module.as_ptr()` is this
        // module, which outlives the socket because the socket is released in
        // the module's exit path at the latest.
        let sk = unsafe {
            bindings::__netlink_kernel_create(
                &raw mut bindings::init_net,
                unit_c,
                module.as_ptr(),
                &mut cfg,
            )
        };
        let sk = NonNull::new(sk).ok_or(EBUSY)?;
        // INVARIANT: `sk` was just returned by `__netlink_kernel_create`.
        Ok(KernelSocket { sk, unit })
    }

    /// The protocol unit of this socket.
    pub(crate) fn unit(&self) -> u32 {
        self.unit
    }
}

impl Drop for KernelSocket {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `sk` is a kernel netlink socket owned
        // by `self`; it is released exactly once, here.
        unsafe { bindings::netlink_kernel_release(self.sk.as_ptr()) };
    }
}

/// The input callback netlink calls for every datagram sent to the socket.
///
/// # Safety
///
/// Called by the netlink core only, with a valid `skb` that it owns and keeps
/// alive for the duration of the call; `skb->sk` is the kernel socket and
/// `NETLINK_CB(skb)` describes the sender.
unsafe extern "C" fn input_trampoline<R: Receiver>(skb: *mut bindings::sk_buff) {
    let Some(skb) = NonNull::new(skb) else {
        return;
    };
    // SAFETY: The netlink core passes a valid skb that outlives this call.
    let datagram = unsafe { Datagram::from_raw(skb) };
    R::receive(&datagram);
}

/// One datagram sent by a user socket, borrowed for the input callback.
///
/// # Invariants
///
/// `skb` is valid for `'a`, is not owned by this value, `skb->sk` is the
/// receiving kernel socket, and `data` is the skb's linear data.
pub(crate) struct Datagram<'a> {
    skb: NonNull<bindings::sk_buff>,
    data: &'a [u8],
    _not_send: PhantomData<*mut ()>,
}

impl<'a> Datagram<'a> {
    /// # Safety
    ///
    /// `skb` must be valid, unmodified by anyone else and alive for `'a`, and
    /// be an skb delivered to a kernel netlink socket's input callback.
    unsafe fn from_raw(skb: NonNull<bindings::sk_buff>) -> Self {
        // SAFETY: The caller guarantees `skb` is valid.
        let s = unsafe { skb.as_ref() };
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
        // INVARIANT: As guaranteed by the caller; `data` is the linear data.
        Datagram {
            skb,
            data,
            _not_send: PhantomData,
        }
    }

    /// The datagram's bytes.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// `NETLINK_CB(skb)`: the sender's parameters, stored in `skb->cb`.
    fn cb(&self) -> &bindings::netlink_skb_parms {
        // SAFETY: By the type invariant the skb is valid and came from a
        // netlink socket, so its control buffer holds a `netlink_skb_parms`
        // (the C `NETLINK_CB` macro is this cast); `cb` is suitably aligned
        // (the kernel aligns it for 8-byte fields) and 48 bytes long, larger
        // than the struct.
        unsafe { &*(&raw const (*self.skb.as_ptr()).cb).cast::<bindings::netlink_skb_parms>() }
    }

    /// The port id the kernel recorded for the sending socket. Replies go
    /// here; `nlmsg_pid` in the message is never trusted.
    pub(crate) fn sender_portid(&self) -> u32 {
        self.cb().portid
    }

    /// Sends a message of type `ty` with sequence number `seq` to the sender;
    /// its payload is `parts`, concatenated.
    ///
    /// Returns `ENOMEM` if no buffer could be had, or the error with which
    /// delivery failed (e.g. `EAGAIN` when the receiver's buffer is full, in
    /// which case netlink also flags an overrun, `ENOBUFS`, on it).
    pub(crate) fn reply(&self, ty: u16, flags: u16, seq: u32, parts: &[&[u8]]) -> Result {
        let portid = self.sender_portid();
        let skb = SkBuff::message(portid, seq, ty, flags, parts)?;
        // SAFETY: By the type invariant `skb->sk` is the kernel socket that
        // received this datagram; it is alive while its input callback runs.
        let ssk = unsafe { (*self.skb.as_ptr()).sk };
        let raw = skb.into_raw();
        // SAFETY: `ssk` is a valid kernel netlink socket and `raw` a valid
        // skb whose ownership passes to `netlink_unicast` (it always consumes
        // it). `MSG_DONTWAIT`: never block on a full receiver.
        let ret =
            unsafe { bindings::netlink_unicast(ssk, raw, portid, bindings::MSG_DONTWAIT as i32) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(())
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

/// An outgoing socket buffer holding one netlink message.
///
/// # Invariants
///
/// `skb` points to a valid `sk_buff` owned by this value.
pub(crate) struct SkBuff {
    skb: NonNull<bindings::sk_buff>,
}

impl SkBuff {
    /// Allocates an skb with one netlink message (header addressed to
    /// `portid`, payload `parts` concatenated). Padding is zeroed by
    /// `__nlmsg_put`; every payload byte is written from `parts`, so no
    /// uninitialised byte is ever sent.
    pub(crate) fn message(
        portid: u32,
        seq: u32,
        ty: u16,
        flags: u16,
        parts: &[&[u8]],
    ) -> Result<Self> {
        let payload = parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(EMSGSIZE)?;
        let size = nlmsg_total_size(payload).ok_or(EMSGSIZE)?;
        let size = u32::try_from(size).map_err(|_| EMSGSIZE)?;
        let payload_c = i32::try_from(payload).map_err(|_| EMSGSIZE)?;
        // SAFETY: `__alloc_skb` has no preconditions beyond valid arguments;
        // `GFP_KERNEL` is fine as the input callback runs in task context.
        let raw =
            unsafe { bindings::__alloc_skb(size, bindings::GFP_KERNEL, 0, bindings::NUMA_NO_NODE) };
        // INVARIANT: A non-null `raw` is a fresh skb that we own.
        let skb = SkBuff {
            skb: NonNull::new(raw).ok_or(ENOMEM)?,
        };
        // SAFETY: `skb` is valid and has `size = nlmsg_total_size(payload)`
        // bytes of tailroom, what `__nlmsg_put` needs for this payload.
        let nlh = unsafe {
            bindings::__nlmsg_put(
                skb.skb.as_ptr(),
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
        // SAFETY: `nlmsg_data(nlh)` is `nlh + NLMSG_HDRLEN`, inside the skb.
        let mut dst = unsafe { nlh.cast::<u8>().add(NLMSG_HDRLEN) };
        for part in parts {
            // SAFETY: `__nlmsg_put` reserved `payload` bytes after the header;
            // the parts add up to `payload`, so each copy stays inside that
            // area, and a fresh skb cannot overlap the borrowed `part`.
            unsafe {
                core::ptr::copy_nonoverlapping(part.as_ptr(), dst, part.len());
                dst = dst.add(part.len());
            }
        }
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
