//! Test doubles for code built on this library, below the connection (as
//! mdlayher/netlink's `nltest` and `genltest` are): [`FakeConn`], a
//! [`Conn`] whose "kernel" is a closure, the answers a kernel gives
//! ([`answer`], [`ack`], [`error`], [`kernel_error`], [`multipart`]) and a
//! fake generic netlink controller ([`serve_family`]).
//!
//! ```
//! use rustnl::proto::{NLM_F_DUMP, NLM_F_REQUEST};
//! use rustnl::testing::{self, FakeConn};
//! use rustnl::{Client, MessageBuilder};
//!
//! // A dump answered with two messages and NLMSG_DONE.
//! let mut conn = FakeConn::new(|req| {
//!     Ok(vec![testing::multipart(&req[0], 0x10, &[b"one", b"two"])])
//! });
//! let mut b = MessageBuilder::new();
//! b.push(0x12, NLM_F_REQUEST | NLM_F_DUMP, 1, b"")?;
//! let mut seen = Vec::new();
//! rustnl::request(&mut conn, b.as_bytes(), |m| {
//!     seen.push(m.payload.to_vec());
//!     Ok(())
//! })?;
//! assert_eq!(seen, [b"one".to_vec(), b"two".to_vec()]);
//!
//! // The rustnl client against a fake module that echoes.
//! let mut client = Client::with_conn(
//!     FakeConn::new(|req| Ok(req.iter().map(|m| testing::answer(m, m.header.ty, 0, m.payload)).collect())),
//!     31,
//! );
//! assert_eq!(client.echo(b"hi")?, b"hi");
//! # Ok::<(), rustnl::Error>(())
//! ```

use crate::conn::Conn;
use crate::errors::{Error, Result};
use crate::proto::{
    Message, Messages, NlMsgHdr, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_MULTI,
};
use crate::socket::Datagram;
use std::collections::VecDeque;

/// The port id of every [`FakeConn`] (answers carry it).
pub const PORT_ID: u32 = 1;

/// A [`Conn`] that passes each sent datagram's messages to a closure and
/// hands out the datagrams it returns, in order. A receive with nothing
/// queued calls the closure with no request (for multicast: return the
/// events); if that queues nothing either, the receive is
/// [`Error::Timeout`]. An error from the closure is returned to the
/// sender (from `send`) or receiver (from `recv`) as is.
pub struct FakeConn<F> {
    kernel: F,
    queue: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
    sent: Vec<Vec<u8>>,
    seq: u32,
}

impl<F> std::fmt::Debug for FakeConn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeConn")
            .field("queued", &self.queue.len())
            .field("sent", &self.sent.len())
            .finish()
    }
}

impl<F> FakeConn<F>
where
    F: FnMut(&[Message<'_>]) -> Result<Vec<Vec<u8>>>,
{
    /// A fake connection answering with `kernel`.
    pub fn new(kernel: F) -> FakeConn<F> {
        FakeConn {
            kernel,
            queue: VecDeque::new(),
            buf: Vec::new(),
            sent: Vec::new(),
            seq: 0,
        }
    }

    /// Every datagram sent so far.
    pub fn sent(&self) -> &[Vec<u8>] {
        &self.sent
    }

    /// Queues `datagram` to be received (e.g. an event), without asking
    /// the closure.
    pub fn push(&mut self, datagram: Vec<u8>) {
        self.queue.push_back(datagram);
    }
}

impl<F> Conn for FakeConn<F>
where
    F: FnMut(&[Message<'_>]) -> Result<Vec<Vec<u8>>>,
{
    fn port_id(&self) -> u32 {
        PORT_ID
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let msgs = Messages::new(bytes)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::BadMessage)?;
        let answers = (self.kernel)(&msgs)?;
        self.sent.push(bytes.to_vec());
        self.queue.extend(answers);
        Ok(())
    }

    fn recv(&mut self) -> Result<Datagram<'_>> {
        if self.queue.is_empty() {
            let more = (self.kernel)(&[])?;
            self.queue.extend(more);
        }
        self.buf = self.queue.pop_front().ok_or(Error::Timeout)?;
        Ok(Datagram::new(&self.buf))
    }

    fn last(&self) -> &[u8] {
        &self.buf
    }
}

fn message(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = NlMsgHdr {
        len: (NLMSG_HDRLEN + payload.len()) as u32,
        ty,
        flags,
        seq,
        pid: PORT_ID,
    }
    .to_bytes()
    .to_vec();
    out.extend_from_slice(payload);
    out.resize(crate::proto::nlmsg_align(out.len()), 0);
    out
}

/// One datagram with one answer to `req`: type `ty`, `flags`, `payload`.
pub fn answer(req: &Message<'_>, ty: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    message(ty, flags, req.header.seq, payload)
}

/// An `NLMSG_ERROR` for `req` with `errno` (0: an ack) and, like the
/// kernel's, the request's header.
pub fn error(req: &Message<'_>, errno: i32) -> Vec<u8> {
    let mut payload = errno.saturating_neg().to_ne_bytes().to_vec();
    payload.extend_from_slice(&req.header.to_bytes());
    let flags = crate::proto::NLM_F_CAPPED;
    message(NLMSG_ERROR, flags, req.header.seq, &payload)
}

/// An `NLMSG_ERROR` for `req` with `errno` and an extended-ack `text`
/// (`NLMSGERR_ATTR_MSG`), as for a socket with `NETLINK_EXT_ACK`.
pub fn error_with_text(req: &Message<'_>, errno: i32, text: &str) -> Vec<u8> {
    let mut payload = errno.saturating_neg().to_ne_bytes().to_vec();
    payload.extend_from_slice(&req.header.to_bytes());
    let attr_len = 4 + text.len() + 1;
    payload.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    payload.extend_from_slice(&crate::proto::NLMSGERR_ATTR_MSG.to_ne_bytes());
    payload.extend_from_slice(text.as_bytes());
    payload.push(0);
    payload.resize(crate::proto::nlmsg_align(payload.len()), 0);
    let flags = crate::proto::NLM_F_CAPPED | crate::proto::NLM_F_ACK_TLVS;
    message(NLMSG_ERROR, flags, req.header.seq, &payload)
}

/// An `NLMSG_ERROR` for `req` as the kernel sends it to a socket with
/// `NETLINK_EXT_ACK` (and without `NETLINK_CAP_ACK`): `k.errno`, the
/// whole request echoed, then the extended-ack attributes `k` has
/// (text, offset, missing attribute type and nest; `NLM_F_ACK_TLVS`
/// when there is any). [`KernelError::attr`](crate::KernelError::attr)
/// is the client's, not sent.
pub fn kernel_error(req: &Message<'_>, k: &crate::KernelError) -> Vec<u8> {
    use crate::proto::{
        NLMSGERR_ATTR_MISS_NEST, NLMSGERR_ATTR_MISS_TYPE, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
        NLM_F_ACK_TLVS,
    };
    let mut payload = k.errno.saturating_neg().to_ne_bytes().to_vec();
    payload.extend_from_slice(req.bytes);
    payload.resize(4 + crate::proto::nlmsg_align(req.bytes.len()), 0);
    let mut tlvs = crate::attr::AttrBuilder::new();
    let mut put = |ty: u16, v: &[u8]| tlvs.put(ty, v).map(|_| ());
    let text = k.message.as_ref().map(|m| [m.as_bytes(), &[0]].concat());
    // Each fits an attribute (a message is at most the kernel's 80 bytes
    // in practice; a longer one is left out rather than panic).
    let _ = text.map(|t| put(NLMSGERR_ATTR_MSG, &t));
    let _ = k.offset.map(|o| put(NLMSGERR_ATTR_OFFS, &o.to_ne_bytes()));
    let _ = k
        .missing_type
        .map(|t| put(NLMSGERR_ATTR_MISS_TYPE, &u32::from(t).to_ne_bytes()));
    let _ = k
        .missing_nest
        .map(|n| put(NLMSGERR_ATTR_MISS_NEST, &n.to_ne_bytes()));
    let flags = if tlvs.as_bytes().is_empty() {
        0
    } else {
        NLM_F_ACK_TLVS
    };
    payload.extend_from_slice(tlvs.as_bytes());
    message(NLMSG_ERROR, flags, req.header.seq, &payload)
}

/// The ack of `req`.
pub fn ack(req: &Message<'_>) -> Vec<u8> {
    error(req, 0)
}

/// A fake kernel's closure (for [`FakeConn::new`]) that answers the
/// generic netlink controller's `CTRL_CMD_GETFAMILY` with `family` (by
/// name; `ENOENT` for any other name; the dump lists `family` alone) and
/// passes every other datagram, and every receive without a request, to
/// `next` (after mdlayher/genetlink's `genltest.ServeFamily`).
///
/// ```
/// use rustnl::genl::{Family, GenlSocket};
/// use rustnl::testing::{self, FakeConn};
///
/// let family = Family::new("example", 0x20);
/// let kernel = testing::serve_family(family.clone(), |_| Ok(vec![]));
/// let mut genl = GenlSocket::with_conn(FakeConn::new(kernel));
/// assert_eq!(genl.family("example")?, family);
/// assert!(genl.family("other").is_err());
/// # Ok::<(), rustnl::Error>(())
/// ```
pub fn serve_family<F>(
    family: crate::genl::Family,
    mut next: F,
) -> impl FnMut(&[Message<'_>]) -> Result<Vec<Vec<u8>>>
where
    F: FnMut(&[Message<'_>]) -> Result<Vec<Vec<u8>>>,
{
    use crate::genl::{
        encode_family, GenlMessage, CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY, GENL_ID_CTRL,
    };
    move |req| {
        if req.first().is_none_or(|m| m.header.ty != GENL_ID_CTRL) {
            return next(req);
        }
        let body = encode_family(&family)?;
        let mut out = Vec::new();
        for m in req {
            let g = GenlMessage::parse(m)?;
            if g.header.cmd != CTRL_CMD_GETFAMILY {
                out.push(error(m, libc::EOPNOTSUPP));
            } else if m.header.flags & crate::proto::NLM_F_DUMP == crate::proto::NLM_F_DUMP {
                out.push(multipart(m, GENL_ID_CTRL, &[&body]));
            } else if g.attrs.str(CTRL_ATTR_FAMILY_NAME).ok().flatten() == Some(&family.name) {
                out.push(answer(m, GENL_ID_CTRL, 0, &body));
            } else {
                out.push(error(m, libc::ENOENT));
            }
        }
        Ok(out)
    }
}

/// A multipart answer to `req` in one datagram: one `NLM_F_MULTI`
/// message of type `ty` per payload, then `NLMSG_DONE`.
pub fn multipart(req: &Message<'_>, ty: u16, payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        out.extend(message(ty, NLM_F_MULTI, req.header.seq, p));
    }
    out.extend(message(
        NLMSG_DONE,
        NLM_F_MULTI,
        req.header.seq,
        &0i32.to_ne_bytes(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::{self as testing, FakeConn};
    use crate::errors::{Error, ModuleError, Result};
    use crate::proto::NLM_F_DUMP_INTR;
    use crate::proto::{
        classify, Action, BroadcastResult, Info, Limits, Message, NLM_F_DUMP, NLM_F_MULTI,
        NLM_F_REQUEST,
    };
    use crate::{Client, MessageBuilder};

    /// A fake rustnl module: the shared request validation and the
    /// protocol's answers, as the kernel module gives them.
    fn module(req: &[Message<'_>]) -> Result<Vec<Vec<u8>>> {
        let limits = Limits {
            max_payload: 64,
            groups: 32,
        };
        Ok(req
            .iter()
            .map(|m| match classify(m, &limits) {
                Ok(Action::Echo { payload }) => testing::answer(m, m.header.ty, 0, payload),
                Ok(Action::Broadcast { group, .. }) => {
                    let r = BroadcastResult {
                        group,
                        delivered: false,
                        delivery_failed: false,
                        event_seq: 7,
                    };
                    testing::answer(m, m.header.ty, 0, &r.to_bytes())
                }
                Ok(Action::GetInfo) => {
                    let i = Info {
                        unit: 31,
                        groups: 32,
                        max_payload: 64,
                        ..Default::default()
                    };
                    testing::answer(m, 0x16, 0, &i.to_bytes())
                }
                Ok(Action::Noop) => testing::ack(m),
                Err(e) => testing::error_with_text(m, e.kind().errno(), &e.to_string()),
            })
            .collect())
    }

    /// A unit without a kernel socket in this namespace refuses sends
    /// (`ECONNREFUSED`): the classic client says the namespace is not
    /// served (it was a bare `Error::Io`).
    #[test]
    fn an_unserved_namespace_is_a_module_error() {
        let refuse = |_: &[Message<'_>]| -> Result<Vec<Vec<u8>>> {
            Err(Error::Io {
                op: "sendto",
                source: std::io::Error::from_raw_os_error(libc::ECONNREFUSED),
            })
        };
        let mut c = Client::with_conn(FakeConn::new(refuse), 31);
        for r in [
            c.echo(b"x").map(|_| ()),
            c.echo_batch(b"x", 2),
            c.info().map(|_| ()),
        ] {
            match r {
                Err(e @ Error::Module(ModuleError::NamespaceNotServed { unit: 31 })) => {
                    assert_eq!(e.errno(), Some(libc::ECONNREFUSED));
                    assert!(e.to_string().contains("this network namespace"), "{e}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn error_kinds_are_this_hosts_errnos() {
        use crate::proto::ErrorKind;
        let libc = [libc::EINVAL, libc::EOPNOTSUPP, libc::EMSGSIZE, libc::EPERM];
        assert_eq!(ErrorKind::ALL.map(ErrorKind::errno), libc);
    }

    #[test]
    fn client_against_a_fake_module() {
        let mut c = Client::with_conn(FakeConn::new(module), 31);
        assert_eq!(c.echo(b"hello").unwrap(), b"hello");
        assert_eq!(c.info().unwrap().max_payload, 64);
        assert_eq!(c.broadcast(3, b"x").unwrap().event_seq, 7);
        c.echo_batch(b"many", 10).unwrap();
        match c.echo(&[0; 65]) {
            Err(Error::Kernel(k)) => {
                assert_eq!(k.errno, libc::EMSGSIZE);
                assert_eq!(
                    k.message.as_deref(),
                    Some("payload of 65 bytes exceeds max_payload (64)")
                );
            }
            other => panic!("{other:?}"),
        }
        match c.broadcast(33, b"") {
            Err(Error::Kernel(k)) => assert_eq!(k.errno, libc::EINVAL),
            other => panic!("{other:?}"),
        }
        // 1 + 1 + 1 + 1 (batch) + 2 refused datagrams.
        assert_eq!(c.conn().sent().len(), 6);
    }

    #[test]
    fn late_answers_are_skipped_and_silence_is_a_timeout() {
        let mut late = true;
        let conn = FakeConn::new(move |req: &[Message<'_>]| {
            let Some(m) = req.first() else {
                return Ok(vec![]);
            };
            let mut out = Vec::new();
            if late {
                // An answer to an earlier request first.
                let mut old = testing::answer(m, m.header.ty, 0, b"stale");
                old[8..12].copy_from_slice(&m.header.seq.wrapping_sub(1).to_ne_bytes());
                out.push(old);
                late = false;
            }
            out.push(testing::answer(m, m.header.ty, 0, m.payload));
            Ok(out)
        });
        let mut c = Client::with_conn(conn, 31);
        assert_eq!(c.echo(b"fresh").unwrap(), b"fresh");
        let mut silent = Client::with_conn(FakeConn::new(|_: &[Message<'_>]| Ok(vec![])), 31);
        assert!(matches!(silent.echo(b"x"), Err(Error::Timeout)));
    }

    #[test]
    fn dumps_through_the_fake() {
        let mut conn = FakeConn::new(|req: &[Message<'_>]| {
            let Some(m) = req.first() else {
                return Ok(vec![]);
            };
            // Two datagrams, the second marked interrupted.
            let first = testing::answer(m, 0x20, NLM_F_MULTI, b"a");
            let mut second = testing::multipart(m, 0x20, &[b"b"]);
            for off in [6usize, 6 + 20] {
                let flags = u16::from_ne_bytes([second[off], second[off + 1]]) | NLM_F_DUMP_INTR;
                second[off..off + 2].copy_from_slice(&flags.to_ne_bytes());
            }
            Ok(vec![first, second])
        });
        let mut b = MessageBuilder::new();
        b.push(0x22, NLM_F_REQUEST | NLM_F_DUMP, 3, b"").unwrap();
        let mut got = Vec::new();
        let r = crate::request(&mut conn, b.as_bytes(), |m| {
            got.push(m.payload[0]);
            Ok(())
        });
        assert!(
            matches!(r, Err(Error::DumpInterrupted { seen: 2 })),
            "{r:?}"
        );
        assert_eq!(got, b"ab");
    }
}
