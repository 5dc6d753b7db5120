//! Request/reply exchanges on any netlink protocol: sequence and port-id
//! checks, acks, errors with extended-ack text, multipart dumps.

use crate::conn::Conn;
use crate::errors::{Error, KernelError, Result};
use crate::proto::{
    nlmsg_align, ErrorMsg, Message, NlMsgHdr, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP,
    NLMSG_OVERRUN, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_MULTI,
};
use crate::socket::{Datagram, Socket};

/// The state of one request/answer exchange: fed the answer messages one by
/// one, it says when the exchange is over and how it ended. Separate from
/// the socket so that it can be driven by any source of messages.
#[derive(Debug)]
pub(crate) struct Exchange {
    seq: u32,
    port_id: u32,
    want_ack: bool,
    dump: bool,
    seen: usize,
    interrupted: bool,
}

impl Exchange {
    pub(crate) fn new(request: &NlMsgHdr, port_id: u32) -> Exchange {
        Exchange {
            seq: request.seq,
            port_id,
            want_ack: request.has(NLM_F_ACK),
            // Any of NLM_F_ROOT / NLM_F_MATCH starts a dump; the kernel
            // never acks a dump, even with NLM_F_ACK: it ends at NLMSG_DONE.
            dump: request.flags & NLM_F_DUMP != 0,
            seen: 0,
            interrupted: false,
        }
    }

    /// The exchange for the encoded `request`, sent from `port_id`.
    pub(crate) fn start(request: &[u8], port_id: u32) -> Result<Exchange> {
        let hdr = NlMsgHdr::parse(request)
            .ok_or_else(|| Error::Unexpected("request shorter than a netlink header".into()))?;
        Ok(Exchange::new(&hdr, port_id))
    }

    /// Takes one received datagram: datagrams not from the kernel are
    /// skipped, its messages go to [`Exchange::on_message`] in order;
    /// `Some` when the exchange is over.
    pub(crate) fn on_datagram<F>(
        &mut self,
        dgram: &Datagram<'_>,
        each: &mut F,
    ) -> Option<Result<usize>>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        if dgram.sender != 0 {
            return None;
        }
        for msg in dgram.messages() {
            let end = match msg {
                Ok(msg) => self.on_message(&msg, each),
                Err(m) => Some(Err(Error::BadMessage(m))),
            };
            if end.is_some() {
                return end;
            }
        }
        None
    }

    /// Takes one received message; `Some` when the exchange is over.
    pub(crate) fn on_message<F>(&mut self, msg: &Message<'_>, each: &mut F) -> Option<Result<usize>>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        if msg.header.seq != self.seq {
            return None; // a late answer to an earlier request
        }
        if msg.header.pid != self.port_id && msg.header.pid != 0 {
            return Some(Err(Error::WrongPort {
                port: msg.header.pid,
                ours: self.port_id,
            }));
        }
        if msg.header.flags & NLM_F_DUMP_INTR != 0 {
            self.interrupted = true;
        }
        match msg.header.ty {
            NLMSG_NOOP => None,
            NLMSG_OVERRUN => Some(Err(Error::Overrun)),
            NLMSG_ERROR => Some(check_error(msg).map(|()| self.seen)), // the ack
            NLMSG_DONE => {
                if let Err(e) = done_error(msg) {
                    return Some(Err(e));
                }
                if self.interrupted {
                    return Some(Err(Error::DumpInterrupted { seen: self.seen }));
                }
                if self.want_ack && !self.dump {
                    return None; // a multipart answer to a request: its ack follows
                }
                Some(Ok(self.seen))
            }
            _ => {
                if let Err(e) = each(msg) {
                    return Some(Err(e));
                }
                self.seen += 1;
                if msg.header.flags & NLM_F_MULTI == 0 && !self.want_ack {
                    return Some(Ok(self.seen));
                }
                None
            }
        }
    }
}

/// The error an `NLMSG_DONE` carries (a dump that failed part-way): its
/// errno, and the extended-ack text and offset that follow it when the
/// socket asked for extended acks (`NLM_F_ACK_TLVS`).
fn done_error(msg: &Message<'_>) -> Result<()> {
    let Some(err) = msg
        .payload
        .first_chunk::<4>()
        .map(|b| i32::from_ne_bytes(*b))
    else {
        return Ok(());
    };
    if err >= 0 {
        return Ok(());
    }
    let mut k = KernelError::new(err.saturating_neg());
    if msg.header.flags & NLM_F_ACK_TLVS != 0 {
        k.read_ext_ack(msg.payload.get(4..).unwrap_or_default());
    }
    Err(Error::Kernel(k))
}

/// Sends `request` (one message with `NLM_F_REQUEST`) on `conn` and passes
/// each answer to `each`, zero-copy, until the exchange is over; see
/// [`Socket::request`]. Generic over the [`Conn`], so that code built on it
/// runs against a [`FakeConn`](crate::testing::FakeConn) in tests.
pub fn request<C, F>(conn: &mut C, request: &[u8], mut each: F) -> Result<usize>
where
    C: Conn + ?Sized,
    F: FnMut(&Message<'_>) -> Result<()>,
{
    let mut exchange = Exchange::start(request, conn.port_id())?;
    conn.send(request)?;
    loop {
        if let Some(end) = exchange.on_datagram(&conn.recv()?, &mut each) {
            return end;
        }
    }
}

impl Socket {
    /// Sends `request` (one message with `NLM_F_REQUEST`) and passes each
    /// answer to `each`, zero-copy, until the exchange is over: the
    /// `NLMSG_DONE` of a dump (`NLM_F_DUMP`; the kernel never acks a dump,
    /// `NLM_F_ACK` or not) or of another multipart answer, the ack when
    /// `NLM_F_ACK` was asked for, or else the first answer. Messages with
    /// another sequence number (late answers to earlier requests) and
    /// datagrams not from the kernel are skipped; answers addressed to
    /// another port id are an error. Returns how many answers `each` saw.
    ///
    /// An `NLMSG_ERROR` becomes [`Error::Kernel`] with the kernel's text; an
    /// `NLMSG_DONE` carrying an error (a dump that failed part-way) likewise,
    /// with the extended-ack text it carries. A dump during which the
    /// kernel's state changed (`NLM_F_DUMP_INTR`) ends in
    /// [`Error::DumpInterrupted`] after every message was passed to `each`:
    /// use them or dump again.
    ///
    /// A dump of the network interfaces (`RTM_GETLINK` with an all-zero
    /// `ifinfomsg`):
    ///
    /// ```
    /// use rustnl::proto::{NLM_F_DUMP, NLM_F_REQUEST};
    /// let mut sock = rustnl::Socket::open(libc::NETLINK_ROUTE as u32)?;
    /// sock.set_recv_timeout(Some(std::time::Duration::from_secs(2)))?;
    /// let mut req = rustnl::MessageBuilder::new();
    /// req.push(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0u8; 16])?;
    /// let links = sock.request(req.as_bytes(), |msg| {
    ///     assert_eq!(msg.header.ty, libc::RTM_NEWLINK);
    ///     Ok(())
    /// })?;
    /// assert!(links >= 1); // lo at least
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn request<F>(&mut self, request: &[u8], each: F) -> Result<usize>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        crate::request::request(self, request, each)
    }

    /// `NETLINK_GET_STRICT_CHK`: ask the kernel to check dump requests
    /// strictly (header fields and attributes it would otherwise ignore)
    /// and to filter dumps by the attributes given.
    pub fn set_strict_check(&self, on: bool) -> Result<()> {
        self.set_netlink_option(
            libc::NETLINK_GET_STRICT_CHK,
            on,
            "setsockopt(NETLINK_GET_STRICT_CHK)",
        )
    }
}

/// Checks that `msg`, an answer to request `what`, has the type `ty` it
/// must have and is addressed to `port_id` (both faces' clients).
pub(crate) fn check_answer(
    msg: &Message<'_>,
    ty: u16,
    port_id: u32,
    what: &'static str,
) -> Result<()> {
    if msg.header.ty != ty {
        return Err(Error::WrongAnswer {
            request: what,
            ty: msg.header.ty,
            expected: ty,
        });
    }
    if msg.header.pid != port_id {
        return Err(Error::WrongPort {
            port: msg.header.pid,
            ours: port_id,
        });
    }
    Ok(())
}

/// Turns an `NLMSG_ERROR` with a non-zero error into [`Error::Kernel`]; acks
/// and other messages pass. Every extended-ack attribute this library knows
/// is kept: text, offset, missing attribute type and nest.
pub(crate) fn check_error(msg: &Message<'_>) -> Result<()> {
    if msg.header.ty != NLMSG_ERROR {
        return Ok(());
    }
    // Too short is the only way it fails: the errno and the request's header.
    let e = ErrorMsg::parse(msg.payload, msg.header.flags).map_err(|_| Error::BadLayout {
        what: "NLMSG_ERROR",
        source: crate::proto::LayoutError::Short {
            need: 4 + NLMSG_HDRLEN,
            have: msg.payload.len(),
        },
    })?;
    if e.error == 0 {
        return Ok(());
    }
    let mut k = KernelError::new(e.error.saturating_neg());
    if msg.header.flags & NLM_F_ACK_TLVS != 0 {
        // As ErrorMsg::parse finds them: after the request's header, and
        // its payload unless the kernel capped it.
        let echoed = if msg.header.flags & NLM_F_CAPPED != 0 {
            0
        } else {
            (e.request.len as usize).saturating_sub(NLMSG_HDRLEN)
        };
        let at = 4usize.saturating_add(nlmsg_align(NLMSG_HDRLEN.saturating_add(echoed)));
        k.read_ext_ack(msg.payload.get(at..).unwrap_or_default());
    }
    Err(Error::Kernel(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS, NLM_F_REQUEST};
    use crate::MessageBuilder;

    /// A truncated `NLMSG_ERROR` is a typed layout error with the sizes.
    #[test]
    fn truncated_error_message_is_a_layout_error() {
        let mut b = MessageBuilder::new();
        b.push(NLMSG_ERROR, 0, 1, &[0xff; 7]).unwrap();
        let msg = crate::proto::Messages::new(b.as_bytes()).next().unwrap().unwrap();
        let e = check_error(&msg).unwrap_err();
        assert!(
            matches!(
                e,
                Error::BadLayout {
                    what: "NLMSG_ERROR",
                    source: crate::proto::LayoutError::Short { need: 20, have: 7 }
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn dump_collects_every_link_until_done() {
        let mut s = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
        s.set_recv_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut b = MessageBuilder::new();
        b.push(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 7, &[0u8; 16])
            .unwrap();
        let mut names = 0;
        let n = s
            .request(b.as_bytes(), |m| {
                assert_eq!(m.header.ty, libc::RTM_NEWLINK);
                names += 1;
                Ok(())
            })
            .unwrap();
        assert!(n >= 1 && n == names);
    }

    /// A dump with NLM_F_ACK ends at NLMSG_DONE: the kernel sends no ack
    /// after a dump (it used to wait for one until the timeout).
    #[test]
    fn dump_with_ack_ends_at_done_without_waiting() {
        let mut s = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
        s.set_recv_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut b = MessageBuilder::new();
        b.push(
            libc::RTM_GETLINK,
            NLM_F_REQUEST | NLM_F_DUMP | crate::proto::NLM_F_ACK,
            9,
            &[0u8; 16],
        )
        .unwrap();
        let start = std::time::Instant::now();
        let n = s.request(b.as_bytes(), |_| Ok(())).unwrap();
        assert!(n >= 1);
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    /// A dump the kernel refuses part-way (strict checking, a link dump
    /// filtered by index) ends in an NLMSG_DONE carrying the errno and the
    /// extended-ack text; both reach the caller.
    #[test]
    fn failed_dump_reports_the_ext_ack_text_of_its_done() {
        let mut s = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
        s.set_ext_ack(true).unwrap();
        s.set_strict_check(true).unwrap();
        s.set_recv_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut ifi = [0u8; 16];
        ifi[4..8].copy_from_slice(&1i32.to_ne_bytes());
        let mut b = MessageBuilder::new();
        b.push(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 10, &ifi)
            .unwrap();
        match s.request(b.as_bytes(), |_| Ok(())) {
            Err(Error::Kernel(k)) => {
                assert_eq!(k.errno, libc::EINVAL);
                let text = k.message.expect("extended-ack text");
                assert!(text.contains("index"), "{text}");
            }
            other => panic!("expected EINVAL with a text, got {other:?}"),
        }
    }

    fn run(request_flags: u16, answers: &[(u16, u16, Vec<u8>)]) -> (Option<Result<usize>>, usize) {
        let req = NlMsgHdr {
            len: 16,
            ty: 0x12,
            flags: NLM_F_REQUEST | request_flags,
            seq: 5,
            pid: 0,
        };
        let mut ex = Exchange::new(&req, 100);
        let mut b = MessageBuilder::new();
        for (ty, flags, payload) in answers {
            b.push(*ty, *flags, 5, payload).unwrap();
        }
        let mut calls = 0;
        let mut each = |_: &Message<'_>| {
            calls += 1;
            Ok(())
        };
        let mut end = None;
        for m in crate::proto::Messages::new(b.as_bytes()) {
            if let Some(e) = ex.on_message(&m.unwrap(), &mut each) {
                end = Some(e);
                break;
            }
        }
        (end, calls)
    }

    #[test]
    fn interrupted_dump_is_reported_after_every_message() {
        let (end, calls) = run(
            NLM_F_DUMP,
            &[
                (0x12, NLM_F_MULTI, vec![1; 4]),
                (0x12, NLM_F_MULTI | NLM_F_DUMP_INTR, vec![2; 4]),
                (
                    NLMSG_DONE,
                    NLM_F_MULTI | NLM_F_DUMP_INTR,
                    0i32.to_ne_bytes().to_vec(),
                ),
            ],
        );
        assert!(
            matches!(end, Some(Err(Error::DumpInterrupted { seen: 2 }))),
            "{end:?}"
        );
        assert_eq!(calls, 2);
    }

    #[test]
    fn done_ext_ack_attributes_are_decoded() {
        let mut payload = (-libc::EINVAL).to_ne_bytes().to_vec();
        let text = b"no such filter\0";
        payload.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        payload.resize(crate::proto::nlmsg_align(payload.len()), 0);
        payload.extend_from_slice(&8u16.to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_OFFS.to_ne_bytes());
        payload.extend_from_slice(&20u32.to_ne_bytes());
        let (end, _) = run(
            NLM_F_DUMP | NLM_F_ACK,
            &[(NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS, payload)],
        );
        match end {
            Some(Err(Error::Kernel(k))) => {
                assert_eq!(k.errno, libc::EINVAL);
                assert_eq!(k.message.as_deref(), Some("no such filter"));
                assert_eq!(k.offset, Some(20));
            }
            other => panic!("{other:?}"),
        }
        // A successful dump with NLM_F_ACK: DONE ends it.
        let (end, _) = run(
            NLM_F_DUMP | NLM_F_ACK,
            &[(NLMSG_DONE, NLM_F_MULTI, vec![0; 4])],
        );
        assert!(matches!(end, Some(Ok(0))));
        // A multipart answer to a plain request with NLM_F_ACK: the ack
        // after DONE ends it.
        let (end, _) = run(
            NLM_F_ACK,
            &[
                (0x12, NLM_F_MULTI, vec![]),
                (NLMSG_DONE, NLM_F_MULTI, vec![0; 4]),
            ],
        );
        assert!(end.is_none());
    }

    #[test]
    fn kernel_error_carries_errno_and_ack_ends_exchange() {
        let mut s = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
        s.set_ext_ack(true).unwrap();
        s.set_recv_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        // RTM_GETLINK for ifindex 0x7ffffff0, which does not exist: ENODEV.
        let mut ifi = [0u8; 16];
        ifi[4..8].copy_from_slice(&0x7fff_fff0i32.to_ne_bytes());
        let mut b = MessageBuilder::new();
        b.push(
            libc::RTM_GETLINK,
            NLM_F_REQUEST | crate::proto::NLM_F_ACK,
            8,
            &ifi,
        )
        .unwrap();
        match s.request(b.as_bytes(), |_| Ok(())) {
            Err(Error::Kernel(k)) => assert_eq!(k.errno, libc::ENODEV),
            other => panic!("expected ENODEV, got {other:?}"),
        }
    }
}
