// SPDX-License-Identifier: GPL-2.0

//! One datagram a user socket sent to a kernel socket, and the answers to
//! it: replies gathered per datagram, acks and errors with extended-ack
//! text.

use super::{
    skb::{nlmsg_total_size, payload_len, SkBuff, BATCH_ROOM, NLMSG_HDRLEN},
    KernelSock,
};
use core::{cell::Cell, fmt, marker::PhantomData, ptr::NonNull};
use super::compat::bindings;
use kernel::{alloc::flags::GFP_KERNEL, prelude::*};

/// One message of a [`Datagram`], as the protocol's decoder found it.
pub(crate) trait InMessage {
    /// The message, header and payload (`nlmsg_len` bytes), within the
    /// datagram.
    fn bytes(&self) -> &[u8];
    /// Where the message starts in the datagram.
    fn offset(&self) -> usize;
    /// The message's sequence number (`nlmsg_seq`), which answers carry.
    fn seq(&self) -> u32;
}

/// One datagram sent by a user socket, borrowed for the input callback.
///
/// # Invariants
///
/// `skb` is valid for `'a`, not owned by this value, and was delivered to
/// the input callback of the kernel socket `sk` (`skb->sk`); `data` is the
/// skb's linear data.
pub(crate) struct Datagram<'a> {
    skb: NonNull<bindings::sk_buff>,
    sk: &'a KernelSock,
    data: &'a [u8],
    /// Replies built but not sent yet: consecutive replies to one datagram
    /// share an skb, sent when the next one does not fit, before an ack or
    /// error (so answers keep their order), and at [`Datagram::flush`].
    pending: Cell<Option<SkBuff>>,
    /// Replies whose delivery failed when their skb was sent.
    undelivered: Cell<u32>,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> Datagram<'a> {
    /// # Safety
    ///
    /// `skb` must be valid, unmodified by anyone else and alive for `'a`,
    /// and be an skb delivered to a kernel netlink socket's input callback
    /// (so `skb->sk` is that socket, alive for `'a`). Returns `None` if the
    /// skb has no socket (never so for netlink input).
    #[inline]
    pub(super) unsafe fn from_raw(skb: NonNull<bindings::sk_buff>) -> Option<Self> {
        // SAFETY: The caller guarantees `skb` is valid.
        let s = unsafe { skb.as_ref() };
        if s.sk.is_null() {
            return None;
        }
        // SAFETY: `skb->sk` is the receiving kernel socket, unreleased while
        // its input callback runs (`'a`, caller).
        let sk = unsafe { KernelSock::from_raw(s.sk) };
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
        // INVARIANT: As guaranteed by the caller; `sk` is `skb->sk`, `data`
        // the linear data.
        Some(Datagram {
            skb,
            sk,
            data,
            pending: Cell::new(None),
            undelivered: Cell::new(0),
            _not_send: PhantomData,
        })
    }

    /// The datagram's bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The receiving kernel socket (`skb->sk`).
    #[inline]
    pub(crate) fn kernel_sock(&self) -> &'a KernelSock {
        self.sk
    }

    /// `NETLINK_CB(skb)`: the sender's parameters, stored in `skb->cb`.
    #[inline]
    fn cb(&self) -> &bindings::netlink_skb_parms {
        // SAFETY: By the type invariant the skb is valid and came from a
        // netlink socket, so its control buffer holds a `netlink_skb_parms`
        // (the C `NETLINK_CB` macro is this cast); `cb` is suitably aligned
        // (the kernel aligns it for 8-byte fields) and 48 bytes long, larger
        // than the struct.
        unsafe { &*(&raw const (*self.skb.as_ptr()).cb).cast::<bindings::netlink_skb_parms>() }
    }

    /// Whether the sender has `CAP_NET_ADMIN` over the user namespace that
    /// owns the receiving socket's network namespace (`netlink_net_capable`):
    /// both the credentials the sending socket was opened with and the task
    /// sending now must have it (a socket opened by root and handed to an
    /// unprivileged task, or the reverse, does not).
    pub(crate) fn sender_has_net_admin(&self) -> bool {
        // SAFETY: The input skb is valid (type invariant) and `skb->sk` is
        // the kernel socket, which is what `netlink_net_capable` reads.
        unsafe { bindings::netlink_net_capable(self.skb.as_ptr(), bindings::CAP_NET_ADMIN as c_int) }
    }

    /// The port id the kernel recorded for the sending socket. Replies go
    /// here; `nlmsg_pid` in the message is never trusted.
    #[inline]
    pub(crate) fn sender_portid(&self) -> u32 {
        self.cb().portid
    }

    /// Answers `msg` with a message of type `ty` and `msg`'s sequence
    /// number; its payload is `parts`, concatenated.
    ///
    /// Replies to the messages of one datagram are gathered into one skb
    /// where they fit (the room is sized from what is left of the datagram,
    /// at most [`BATCH_ROOM`] bytes) and sent together: a batch of requests
    /// costs a few allocations and wake-ups instead of one per message.
    /// Returns `ENOMEM` if no buffer could be had (nothing is queued then,
    /// and replies gathered before stay queued).
    /// Delivery failures of sent batches are counted by [`Datagram::flush`].
    #[inline(always)]
    pub(crate) fn reply<const N: usize>(
        &self,
        msg: &impl InMessage,
        ty: u16,
        flags: u16,
        parts: &[&[u8]; N],
    ) -> Result {
        let payload = payload_len(&[], parts)?;
        let portid = self.sender_portid();
        let seq = msg.seq();
        if let Some(mut skb) = self.pending.take() {
            match skb.put_message(portid, seq, ty, flags, &[], parts) {
                Ok(()) => {
                    self.pending.set(Some(skb));
                    return Ok(());
                }
                // Full: send it and start another below.
                Err(_) => self.send(skb),
            }
        }
        // Room for the answers to the rest of the datagram, about as large
        // as the requests for echoes.
        let rest = self
            .data
            .len()
            .saturating_sub(msg.offset().saturating_add(msg.bytes().len()));
        if rest == 0 {
            // The last (usually the only) message: straight out, no batch
            // (the shortest path: `make bench-profile` counts it).
            self.send(SkBuff::message(portid, seq, ty, flags, &[], parts, GFP_KERNEL)?);
            return Ok(());
        }
        let size = nlmsg_total_size(payload).ok_or(EMSGSIZE)?;
        let room = size.max(size.saturating_add(rest).min(BATCH_ROOM));
        // Input runs in the sender's task: it may sleep.
        let mut skb = SkBuff::alloc(room, GFP_KERNEL)?;
        skb.put_message(portid, seq, ty, flags, &[], parts)?;
        self.pending.set(Some(skb));
        Ok(())
    }

    /// Answers `msg` at once, in an skb of its own, after the replies
    /// gathered so far: for the answer to a message that multicast
    /// something (a BROADCAST, after [`Datagram::send_replies`]). Starting a
    /// batch there would buy nothing: the datagram's next BROADCAST sends it
    /// again before its event, so a datagram of broadcasts would pay a
    /// batch-sized skb per answer.
    pub(crate) fn reply_now<const N: usize>(
        &self,
        msg: &impl InMessage,
        ty: u16,
        flags: u16,
        parts: &[&[u8]; N],
    ) -> Result {
        self.send_pending();
        // Input runs in the sender's task: it may sleep.
        let skb = SkBuff::message(self.sender_portid(), msg.seq(), ty, flags, &[], parts, GFP_KERNEL)?;
        self.send(skb);
        Ok(())
    }

    /// Unicasts `skb` to the sender; counts its messages as undelivered if
    /// that fails (the receiver's queue is full, and netlink has flagged an
    /// overrun, `ENOBUFS`, on it; or the sender is gone).
    #[inline]
    fn send(&self, skb: SkBuff) {
        let messages = skb.messages();
        let portid = self.sender_portid();
        // SAFETY: The receiving kernel socket is alive while its input
        // callback runs (type invariant), and the skb valid; its ownership
        // passes to `netlink_unicast` (it always consumes it). `MSG_DONTWAIT`:
        // never block on a full receiver.
        let ret = unsafe {
            bindings::netlink_unicast(
                self.sk.as_ptr(),
                skb.into_raw(),
                portid,
                bindings::MSG_DONTWAIT as i32,
            )
        };
        if ret < 0 {
            self.undelivered
                .set(self.undelivered.get().saturating_add(messages));
        }
    }

    /// Sends the replies gathered so far, so that what the protocol sends
    /// next outside this datagram's answers (a multicast) follows them.
    /// Their delivery failures are counted by [`Datagram::flush`].
    #[inline]
    pub(crate) fn send_replies(&self) {
        self.send_pending();
    }

    /// Sends the replies gathered so far. Returns how many replies of this
    /// datagram could not be delivered (and resets that count).
    #[inline]
    pub(crate) fn flush(&self) -> u32 {
        self.send_pending();
        self.undelivered.replace(0)
    }

    /// Sends the skb of gathered replies, if any.
    #[inline]
    fn send_pending(&self) {
        if let Some(skb) = self.pending.take() {
            self.send(skb);
        }
    }

    /// Acknowledges `msg`: with `err` `None` an ack (error 0), otherwise an
    /// `NLMSG_ERROR` carrying the error and, for senders that enabled
    /// `NETLINK_EXT_ACK`, `text` as `NLMSGERR_ATTR_MSG`.
    pub(crate) fn ack(
        &self,
        msg: &impl InMessage,
        err: Option<Error>,
        text: Option<fmt::Arguments<'_>>,
    ) {
        self.ack_message(msg.bytes(), err, text);
    }

    /// Answers a part of the datagram that is not a well-formed message with
    /// an `NLMSG_ERROR`. The error echoes `header` (the part's first header
    /// bytes as sent, zeroes where none could be read) with `nlmsg_len` set
    /// to the header alone, as its payload cannot be located.
    pub(crate) fn ack_malformed(
        &self,
        header: Option<[u8; NLMSG_HDRLEN]>,
        err: Error,
        text: fmt::Arguments<'_>,
    ) {
        let copy = HeaderCopy::header_only(header.unwrap_or_default());
        self.ack_message(&copy.0, Some(err), Some(text));
    }

    /// Acknowledges the netlink message `message` (header and payload).
    ///
    /// `netlink_ack` reads `nlmsg_len` bytes of it (to echo the request):
    /// a message whose `nlmsg_len` is not within `message` is acknowledged
    /// with its header alone instead, so nothing outside is ever read.
    fn ack_message(&self, message: &[u8], err: Option<Error>, text: Option<fmt::Arguments<'_>>) {
        let copy;
        let message = match message.first_chunk::<NLMSG_HDRLEN>() {
            Some(h) if (NLMSG_HDRLEN..=message.len()).contains(&HeaderCopy::len_of(h)) => message,
            other => {
                copy = HeaderCopy::header_only(other.copied().unwrap_or_default());
                &copy.0[..]
            }
        };
        // Replies gathered before this ack go first.
        self.send_pending();
        let mut extack = bindings::netlink_ext_ack::default();
        if let Some(args) = text {
            set_ext_ack_text(&mut extack, args);
        }
        let errno = err.map_or(0, |e| e.to_errno());
        // SAFETY: The input skb is valid (type invariant), its `sk` the
        // kernel socket and `NETLINK_CB` the sender. `message` holds a whole
        // message: at least a header, and `nlmsg_len` readable bytes (checked
        // above). `extack` is valid for the call and `_msg`, if set, points
        // to its NUL-terminated `_msg_buf`; netlink copies it before
        // returning.
        unsafe {
            bindings::netlink_ack(
                self.skb.as_ptr(),
                message.as_ptr().cast_mut().cast::<bindings::nlmsghdr>(),
                errno,
                &extack,
            )
        };
    }
}

impl Drop for Datagram<'_> {
    #[inline]
    fn drop(&mut self) {
        // Protocols flush (and count failures) themselves; this only makes
        // sure gathered replies are never dropped unsent.
        self.send_pending();
    }
}

/// A netlink header copy aligned like `struct nlmsghdr`.
#[repr(C, align(4))]
struct HeaderCopy([u8; NLMSG_HDRLEN]);

impl HeaderCopy {
    /// `header` with `nlmsg_len` set to the header alone.
    fn header_only(mut header: [u8; NLMSG_HDRLEN]) -> Self {
        header[..4].copy_from_slice(&(NLMSG_HDRLEN as u32).to_ne_bytes());
        HeaderCopy(header)
    }

    /// The `nlmsg_len` of a header.
    fn len_of(header: &[u8; NLMSG_HDRLEN]) -> usize {
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[..4]);
        u32::from_ne_bytes(len) as usize
    }
}

/// Sets `extack`'s message to `text` as `NL_SET_ERR_MSG_FMT` does: written
/// into its `_msg_buf` (truncated to fit, NUL-terminated), traced with the
/// `netlink:netlink_extack` event, then pointed to by `_msg`.
pub(super) fn set_ext_ack_text(extack: &mut bindings::netlink_ext_ack, text: fmt::Arguments<'_>) {
    let mut w = CBufWriter::new(&mut extack._msg_buf);
    // Truncation is fine for a message text; `write_fmt` never fails
    // otherwise.
    let _ = fmt::write(&mut w, text);
    w.terminate();
    // SAFETY: `_msg_buf` is NUL-terminated (above); the tracepoint copies it.
    unsafe { bindings::do_trace_netlink_extack(extack._msg_buf.as_ptr()) };
    extack._msg = extack._msg_buf.as_ptr();
}

/// Writes formatted text into a fixed C char buffer, truncating, always
/// leaving room for the terminating NUL.
pub(super) struct CBufWriter<'b> {
    buf: &'b mut [c_char],
    len: usize,
}

impl<'b> CBufWriter<'b> {
    pub(super) fn new(buf: &'b mut [c_char]) -> Self {
        CBufWriter { buf, len: 0 }
    }

    /// NUL-terminates what was written.
    pub(super) fn terminate(self) {
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
