//! Request/reply exchanges on any netlink protocol: sequence and port-id
//! checks, acks, errors with extended-ack text, multipart dumps.

use crate::client::check_error;
use crate::error::{Error, Result};
use crate::proto::{
    Message, NlMsgHdr, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_MULTI,
};
use crate::socket::Socket;

impl Socket {
    /// Sends `request` (one message with `NLM_F_REQUEST`) and passes each
    /// answer to `each`, zero-copy, until the exchange is over: the
    /// `NLMSG_DONE` of a multipart (`NLM_F_MULTI`) answer, the ack when
    /// `NLM_F_ACK` was asked for, or else the first answer. Messages with
    /// another sequence number (late answers to earlier requests) and
    /// datagrams not from the kernel are skipped; answers addressed to
    /// another port id are an error. Returns how many answers `each` saw.
    ///
    /// An `NLMSG_ERROR` becomes [`Error::Kernel`] with the kernel's text; an
    /// `NLMSG_DONE` carrying an error (a failed dump) likewise.
    pub fn request<F>(&mut self, request: &[u8], mut each: F) -> Result<usize>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        let hdr = NlMsgHdr::parse(request)
            .ok_or_else(|| Error::Unexpected("request shorter than a netlink header".into()))?;
        let want_ack = hdr.has(NLM_F_ACK);
        self.send(request)?;
        let port_id = self.port_id();
        let mut seen = 0;
        loop {
            let dgram = self.recv()?;
            if dgram.sender != 0 {
                continue;
            }
            for msg in dgram.messages() {
                let msg = msg.map_err(|m| Error::Malformed(m.to_string()))?;
                if msg.header.seq != hdr.seq {
                    continue;
                }
                if msg.header.pid != port_id && msg.header.pid != 0 {
                    return Err(Error::Unexpected(format!(
                        "answer addressed to port {} (ours is {port_id})",
                        msg.header.pid
                    )));
                }
                match msg.header.ty {
                    NLMSG_NOOP => continue,
                    NLMSG_OVERRUN => return Err(Error::Overrun),
                    NLMSG_ERROR => {
                        check_error(&msg)?;
                        return Ok(seen); // the ack
                    }
                    NLMSG_DONE => {
                        if let Some(err) = msg
                            .payload
                            .first_chunk::<4>()
                            .map(|b| i32::from_ne_bytes(*b))
                        {
                            if err < 0 {
                                return Err(Error::Kernel(crate::KernelError {
                                    errno: err.saturating_neg(),
                                    message: None,
                                    offset: None,
                                }));
                            }
                        }
                        if !want_ack {
                            return Ok(seen);
                        }
                    }
                    _ => {
                        each(&msg)?;
                        seen += 1;
                        if msg.header.flags & NLM_F_MULTI == 0 && !want_ack {
                            return Ok(seen);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::proto::{NLM_F_DUMP, NLM_F_REQUEST};
    use crate::{Error, MessageBuilder, Socket};

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
