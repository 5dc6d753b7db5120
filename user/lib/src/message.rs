//! Building netlink messages.

use crate::errors::{Error, Result};
use crate::proto::{nlmsg_align, NlMsgHdr, NLMSG_HDRLEN};

/// Appends netlink messages (header, payload, zeroed padding) to one buffer,
/// so that several requests go out in a single `send`.
#[derive(Debug, Default, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    count: usize,
}

impl MessageBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        MessageBuilder {
            buf: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    /// Appends one message of type `ty` with `flags`, `seq` and `payload`.
    /// Its `nlmsg_pid` is 0: the kernel identifies senders by their socket.
    ///
    /// ```
    /// use rustnl::proto::{Messages, NLM_F_REQUEST};
    /// let mut b = rustnl::MessageBuilder::new();
    /// b.push(0x10, NLM_F_REQUEST, 1, b"abc")?.push(0x10, NLM_F_REQUEST, 2, b"")?;
    /// assert_eq!(b.as_bytes().len(), 20 + 16); // aligned to 4 bytes
    /// let seqs: Vec<u32> = Messages::new(b.as_bytes())
    ///     .map(|m| m.map(|m| m.header.seq))
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(seqs, [1, 2]);
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    #[inline]
    pub fn push(&mut self, ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Result<&mut Self> {
        self.push_parts(ty, flags, seq, &[payload])
    }

    /// Appends one message whose payload is `parts`, concatenated.
    #[inline]
    pub fn push_parts(
        &mut self,
        ty: u16,
        flags: u16,
        seq: u32,
        parts: &[&[u8]],
    ) -> Result<&mut Self> {
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        // Not `ok_or(Error::..)`: that builds an `Error` on every call and
        // drops it (an out-of-line `drop_in_place`) on success.
        let Some(len) = NLMSG_HDRLEN
            .checked_add(payload_len)
            .filter(|&l| u32::try_from(l).is_ok())
        else {
            return Err(Error::TooLarge(payload_len));
        };
        let start = self.buf.len();
        let header = NlMsgHdr {
            len: len as u32,
            ty,
            flags,
            seq,
            pid: 0,
        };
        self.buf.extend_from_slice(&header.to_bytes());
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.buf.resize(start + nlmsg_align(len), 0);
        self.count += 1;
        Ok(self)
    }

    /// Appends `header` (written exactly as given, `len` included) followed
    /// by `payload` and padding to the next 4-byte boundary.
    #[inline]
    pub fn push_header(&mut self, header: NlMsgHdr, payload: &[u8]) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&header.to_bytes());
        self.buf.extend_from_slice(payload);
        let end = start + nlmsg_align(NLMSG_HDRLEN + payload.len());
        self.buf.resize(end, 0);
        self.count += 1;
        self
    }

    /// The encoded messages.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Number of messages appended.
    #[inline]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Empties the builder, keeping its allocation.
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Messages;

    #[test]
    fn batches_messages_aligned_with_zeroed_padding() {
        let mut b = MessageBuilder::new();
        b.push(0x10, 1, 1, b"abc")
            .unwrap()
            .push(0x10, 5, 2, b"")
            .unwrap();
        assert_eq!(b.count(), 2);
        assert_eq!(b.as_bytes().len(), 20 + 16);
        assert_eq!(b.as_bytes()[19], 0);
        let m: Vec<_> = Messages::new(b.as_bytes()).map(Result::unwrap).collect();
        assert_eq!((m[0].header.len, m[0].payload), (19, &b"abc"[..]));
        assert_eq!((m[1].header.seq, m[1].header.flags), (2, 5));
        b.clear();
        assert_eq!((b.count(), b.as_bytes().len()), (0, 0));
    }
}
