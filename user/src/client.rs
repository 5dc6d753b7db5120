//! The rustnl protocol client.

use crate::error::{Error, KernelError, Result};
use crate::message::MessageBuilder;
use crate::proto::{ErrorMsg, Message, MsgType, NLMSG_ERROR, NLM_F_REQUEST};
use crate::socket::Socket;
use std::time::Duration;

/// Default time to wait for the kernel's answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to the rustnl kernel module.
#[derive(Debug)]
pub struct Client {
    sock: Socket,
    unit: u32,
    seq: u32,
    out: MessageBuilder,
}

impl Client {
    /// Connects to the module's netlink `unit`, with extended acks on and
    /// [`DEFAULT_TIMEOUT`].
    pub fn connect(unit: u32) -> Result<Client> {
        let sock = Socket::open(unit).map_err(|e| match e {
            Error::ProtocolNotSupported { unit } => Error::ModuleNotLoaded { unit },
            e => e,
        })?;
        sock.set_ext_ack(true)?;
        sock.set_recv_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(Client {
            sock,
            unit,
            seq: 0,
            out: MessageBuilder::new(),
        })
    }

    /// The unit this client talks to.
    pub fn unit(&self) -> u32 {
        self.unit
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// The underlying socket, mutably (for options).
    pub fn socket_mut(&mut self) -> &mut Socket {
        &mut self.sock
    }

    /// How long to wait for an answer (`None`: forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.sock.set_recv_timeout(timeout)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `payload` in an ECHO request and returns the kernel's echo,
    /// borrowed from the receive buffer.
    pub fn echo(&mut self, payload: &[u8]) -> Result<&[u8]> {
        let seq = self.next_seq();
        self.out.clear();
        self.out
            .push(MsgType::Echo.raw(), NLM_F_REQUEST, seq, payload)?;
        self.sock.send(self.out.as_bytes())?;
        let port_id = self.sock.port_id();
        loop {
            let dgram = self.sock.recv()?;
            if dgram.sender != 0 {
                // Only the kernel (port 0) answers; ignore anything else.
                continue;
            }
            let mut found = None;
            for msg in dgram.messages() {
                let msg = msg.map_err(|m| Error::Malformed(m.to_string()))?;
                if msg.header.seq != seq {
                    continue; // a late answer to an earlier, timed-out request
                }
                check_error(&msg)?;
                if msg.header.ty != MsgType::Echo.raw() {
                    return Err(Error::Unexpected(format!(
                        "message type {:#x} in answer to echo",
                        msg.header.ty
                    )));
                }
                if msg.header.pid != port_id {
                    return Err(Error::Unexpected(format!(
                        "echo addressed to port {} (ours is {port_id})",
                        msg.header.pid
                    )));
                }
                found = Some((msg.offset + crate::proto::NLMSG_HDRLEN, msg.payload.len()));
                break;
            }
            if let Some((start, len)) = found {
                let dgram = self.sock.last();
                return Ok(&dgram[start..start + len]);
            }
        }
    }
}

/// Turns an `NLMSG_ERROR` with a non-zero error into [`Error::Kernel`]; acks
/// and other messages pass.
pub(crate) fn check_error(msg: &Message<'_>) -> Result<()> {
    if msg.header.ty != NLMSG_ERROR {
        return Ok(());
    }
    let e = ErrorMsg::parse(msg.payload, msg.header.flags)
        .map_err(|e| Error::Malformed(e.to_string()))?;
    if e.error == 0 {
        return Ok(());
    }
    Err(Error::Kernel(KernelError {
        errno: e.error.saturating_neg(),
        message: e.ext_msg.map(|m| String::from_utf8_lossy(m).into_owned()),
        offset: e.ext_offset,
    }))
}
