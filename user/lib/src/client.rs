//! The rustnl protocol client of the classic face (netlink unit 31).

use crate::conn::Conn;
use crate::errors::{Error, ModuleError, Result};
use crate::message::MessageBuilder;
use crate::proto::{BroadcastHdr, BroadcastResult, Info, MsgType, NLMSG_HDRLEN, NLM_F_REQUEST};
use crate::request::{check_answer, check_error};
use crate::socket::{Socket, DEFAULT_TIMEOUT};
use std::time::Duration;

/// Opens a socket of the rustnl unit; "protocol not supported" there means
/// the module is not loaded.
pub(crate) fn open(unit: u32, groups: u32) -> Result<Socket> {
    Socket::open_with_groups(unit, groups).map_err(|e| match e {
        Error::ProtocolNotSupported { unit } => ModuleError::NotLoaded { unit }.into(),
        e => e,
    })
}

/// A send to `unit` refused with `ECONNREFUSED`: the unit is registered
/// but has no kernel socket in this network namespace, which the module
/// does not serve ([`ModuleError::NamespaceNotServed`]).
fn served(unit: u32) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Io { ref source, .. } if source.raw_os_error() == Some(libc::ECONNREFUSED) => {
            ModuleError::NamespaceNotServed { unit }.into()
        }
        e => e,
    }
}

/// A connection to the rustnl kernel module, over a [`Socket`] or, in tests,
/// any [`Conn`] (e.g. a [`FakeConn`](crate::testing::FakeConn)).
#[derive(Debug)]
pub struct Client<C = Socket> {
    sock: C,
    unit: u32,
    out: MessageBuilder,
}

impl Client {
    /// Connects to the module's netlink `unit`, with extended acks on and
    /// [`DEFAULT_TIMEOUT`].
    ///
    /// ```no_run
    /// let mut client = rustnl::Client::connect(rustnl::proto::DEFAULT_UNIT)?;
    /// assert_eq!(client.echo(b"Hello you!")?, b"Hello you!");
    /// let info = client.info()?;
    /// println!("{} echoes so far", info.counters.echoes);
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn connect(unit: u32) -> Result<Client> {
        let sock = open(unit, 0)?;
        sock.set_ext_ack(true)?;
        sock.set_recv_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(Client {
            sock,
            unit,
            out: MessageBuilder::new(),
        })
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
}

impl<C: Conn> Client<C> {
    /// A client of the module's `unit` over `conn` (a socket opened another
    /// way, or a test double).
    pub fn with_conn(conn: C, unit: u32) -> Client<C> {
        Client {
            sock: conn,
            unit,
            out: MessageBuilder::new(),
        }
    }

    /// The unit this client talks to.
    pub fn unit(&self) -> u32 {
        self.unit
    }

    /// The connection.
    pub fn conn(&self) -> &C {
        &self.sock
    }

    /// The connection, mutably.
    pub fn conn_mut(&mut self) -> &mut C {
        &mut self.sock
    }

    /// Sends one request of type `ty` (payload `parts`) and returns the
    /// payload of the kernel's answer of type `answer`, borrowed from the
    /// receive buffer. Answers to earlier (timed-out) requests and messages
    /// from anyone but the kernel are skipped; an `NLMSG_ERROR` becomes
    /// [`Error::Kernel`].
    pub fn call(&mut self, ty: MsgType, parts: &[&[u8]], answer: MsgType) -> Result<&[u8]> {
        let seq = self.sock.next_seq();
        self.out.clear();
        self.out.push_parts(ty.raw(), NLM_F_REQUEST, seq, parts)?;
        let port_id = self.sock.port_id();
        let mut found = None;
        // The generic exchange checks sequence number and sender, and turns an
        // NLMSG_ERROR into Error::Kernel; it ends at this single answer.
        crate::request::request(&mut self.sock, self.out.as_bytes(), |msg| {
            check_answer(msg, answer.raw(), port_id, ty.name())?;
            found = Some((msg.offset + NLMSG_HDRLEN, msg.payload.len()));
            Ok(())
        })
        .map_err(served(self.unit))?;
        let (start, len) = found.ok_or(Error::NoAnswer { request: ty.name() })?;
        Ok(&self.sock.last()[start..start + len])
    }

    /// Sends `payload` in an ECHO request and returns the kernel's echo.
    pub fn echo(&mut self, payload: &[u8]) -> Result<&[u8]> {
        self.call(MsgType::Echo, &[payload], MsgType::Echo)
    }

    /// Sends `count` ECHO requests of `payload` in one datagram and checks
    /// that `count` echoes come back, in order and unchanged.
    pub fn echo_batch(&mut self, payload: &[u8], count: usize) -> Result<()> {
        self.out.clear();
        let mut first = None;
        for _ in 0..count {
            let seq = self.sock.next_seq();
            first.get_or_insert(seq);
            self.out
                .push(MsgType::Echo.raw(), NLM_F_REQUEST, seq, payload)?;
        }
        let Some(first) = first else { return Ok(()) };
        self.sock
            .send(self.out.as_bytes())
            .map_err(served(self.unit))?;
        let mut next = first;
        let mut got = 0;
        while got < count {
            let dgram = self.sock.recv()?;
            if dgram.sender != 0 {
                continue;
            }
            for msg in dgram.messages() {
                let msg = msg?;
                if msg.header.seq.wrapping_sub(first) >= count as u32 {
                    continue; // not this batch
                }
                check_error(&msg)?;
                if msg.header.seq != next
                    || msg.header.ty != MsgType::Echo.raw()
                    || msg.payload != payload
                {
                    return Err(Error::Unexpected(format!(
                        "echo {} of the batch: seq {} type {:#x}, {} bytes",
                        got,
                        msg.header.seq,
                        msg.header.ty,
                        msg.payload.len()
                    )));
                }
                next = next.wrapping_add(1);
                got += 1;
            }
        }
        Ok(())
    }

    /// Asks the kernel to multicast `payload` to `group`; says whether any
    /// listener received it ("no listeners" is not an error).
    pub fn broadcast(&mut self, group: u32, payload: &[u8]) -> Result<BroadcastResult> {
        let hdr = BroadcastHdr { group }.to_bytes();
        let answer = self.call(MsgType::Broadcast, &[&hdr, payload], MsgType::Broadcast)?;
        BroadcastResult::parse(answer).map_err(|source| Error::BadLayout {
            what: "broadcast answer",
            source,
        })
    }

    /// The module's configuration and this namespace's counters.
    pub fn info(&mut self) -> Result<Info> {
        let answer = self.call(MsgType::GetInfo, &[], MsgType::Info)?;
        Info::parse(answer).map_err(|source| Error::BadLayout {
            what: "info answer",
            source,
        })
    }
}
