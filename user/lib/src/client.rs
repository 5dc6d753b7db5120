//! The rustnl protocol client: requests and a typed event subscription.

use crate::conn::Conn;
use crate::error::{Error, KernelError, Result};
use crate::message::MessageBuilder;
use crate::proto::{
    nlmsg_align, BroadcastHdr, BroadcastResult, ErrorMsg, EventHdr, Info, Message, MsgType,
    NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_REQUEST,
};
use crate::socket::Socket;
use std::time::Duration;

/// Default time to wait for the kernel's answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens a socket of the rustnl unit; "protocol not supported" there means
/// the module is not loaded.
fn open(unit: u32, groups: u32) -> Result<Socket> {
    Socket::open_with_groups(unit, groups).map_err(|e| match e {
        Error::ProtocolNotSupported { unit } => Error::ModuleNotLoaded { unit },
        e => e,
    })
}

/// A connection to the rustnl kernel module, over a [`Socket`] or, in tests,
/// any [`Conn`] (e.g. a [`FakeConn`](crate::testing::FakeConn)).
#[derive(Debug)]
pub struct Client<C = Socket> {
    sock: C,
    unit: u32,
    seq: u32,
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
            seq: 0,
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
            seq: 0,
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

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request of type `ty` (payload `parts`) and returns the
    /// payload of the kernel's answer of type `answer`, borrowed from the
    /// receive buffer. Answers to earlier (timed-out) requests and messages
    /// from anyone but the kernel are skipped; an `NLMSG_ERROR` becomes
    /// [`Error::Kernel`].
    pub fn call(&mut self, ty: MsgType, parts: &[&[u8]], answer: MsgType) -> Result<&[u8]> {
        let seq = self.next_seq();
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
        })?;
        let (start, len) =
            found.ok_or_else(|| Error::Unexpected(format!("no answer to {}", ty.name())))?;
        Ok(&self.sock.last()[start..start + len])
    }

    /// Sends `payload` in an ECHO request and returns the kernel's echo.
    pub fn echo(&mut self, payload: &[u8]) -> Result<&[u8]> {
        self.call(MsgType::Echo, &[payload], MsgType::Echo)
    }

    /// Sends `count` ECHO requests of `payload` in one datagram and checks
    /// that `count` echoes come back, in order and unchanged.
    pub fn echo_batch(&mut self, payload: &[u8], count: usize) -> Result<()> {
        let first = self.seq.wrapping_add(1);
        self.out.clear();
        for _ in 0..count {
            let seq = self.next_seq();
            self.out
                .push(MsgType::Echo.raw(), NLM_F_REQUEST, seq, payload)?;
        }
        self.sock.send(self.out.as_bytes())?;
        let mut next = first;
        let mut got = 0;
        while got < count {
            let dgram = self.sock.recv()?;
            if dgram.sender != 0 {
                continue;
            }
            for msg in dgram.messages() {
                let msg = msg.map_err(|m| Error::Malformed(m.to_string()))?;
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
        BroadcastResult::parse(answer)
            .map_err(|e| Error::Malformed(format!("broadcast answer: {e}")))
    }

    /// The module's configuration and this namespace's counters.
    pub fn info(&mut self) -> Result<Info> {
        let answer = self.call(MsgType::GetInfo, &[], MsgType::Info)?;
        Info::parse(answer).map_err(|e| Error::Malformed(format!("info answer: {e}")))
    }
}

/// What kind of event arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum EventKind {
    /// A BROADCAST's payload.
    Broadcast,
    /// The kernel's periodic greeting.
    Heartbeat,
    /// The module is unloading.
    Goodbye,
}

impl EventKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Broadcast => "broadcast",
            EventKind::Heartbeat => "heartbeat",
            EventKind::Goodbye => "goodbye",
        }
    }
}

/// One event, borrowed from the subscription's receive buffer. With the
/// `serde` feature it serializes as `kind`, the header's fields and the
/// payload as text (invalid UTF-8 replaced).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Event<'a> {
    /// Its kind (message type).
    pub kind: EventKind,
    /// Group, origin, sequence number and timestamp.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub header: EventHdr,
    /// The payload.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::lossy_text"))]
    pub payload: &'a [u8],
}

/// A listener on rustnl multicast groups, yielding typed events.
#[derive(Debug)]
pub struct Subscription {
    sock: Socket,
    pending: std::collections::VecDeque<(usize, usize)>,
}

impl Subscription {
    /// Listens on `groups` of the module's `unit` (any group number,
    /// through `NETLINK_ADD_MEMBERSHIP`). Non-root processes may listen.
    ///
    /// ```no_run
    /// let mut sub = rustnl::Subscription::new(rustnl::proto::DEFAULT_UNIT, &[1])?;
    /// let event = sub.next_event()?;
    /// println!("{} on group {}", event.kind.name(), event.header.group);
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn new(unit: u32, groups: &[u32]) -> Result<Subscription> {
        let sock = open(unit, 0)?;
        for &g in groups {
            sock.add_membership(g)?;
        }
        Ok(Subscription {
            sock,
            pending: Default::default(),
        })
    }

    /// The underlying socket (for timeouts, options, polling).
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// The underlying socket, mutably.
    pub fn socket_mut(&mut self) -> &mut Socket {
        &mut self.sock
    }

    /// The socket, for another way of reading it (e.g. an async stream);
    /// events already received but not yet returned are dropped.
    pub fn into_socket(self) -> Socket {
        self.sock
    }

    /// Waits for the next event. [`Error::Overrun`] reports that the kernel
    /// dropped events because this listener's queue was full; the
    /// subscription stays usable.
    pub fn next_event(&mut self) -> Result<Event<'_>> {
        next_queued(&mut self.sock, &mut self.pending, |_| true, decode_event)
    }
}

/// The next kernel message of an event stream on `conn` that `keep`
/// selects, decoded by `decode`: a datagram's messages are queued by their
/// place in the receive buffer and handed out one per call, zero-copy (both
/// faces' subscriptions).
pub(crate) fn next_queued<'a, C: Conn, T>(
    conn: &'a mut C,
    pending: &mut std::collections::VecDeque<(usize, usize)>,
    keep: impl Fn(&Message<'_>) -> bool,
    decode: impl FnOnce(&Message<'a>) -> Result<T>,
) -> Result<T> {
    while pending.is_empty() {
        let dgram = conn.recv()?;
        if dgram.sender != 0 {
            continue;
        }
        for msg in dgram.messages() {
            let msg = msg.map_err(|m| Error::Malformed(m.to_string()))?;
            if keep(&msg) {
                pending.push_back((msg.offset, msg.bytes.len()));
            }
        }
    }
    let (start, len) = pending.pop_front().unwrap_or_default();
    let bytes = conn
        .last()
        .get(start..start.saturating_add(len))
        .unwrap_or_default();
    match crate::proto::Messages::new(bytes).next() {
        Some(Ok(msg)) => decode(&msg),
        _ => Err(Error::Malformed(
            "event message vanished from the buffer".into(),
        )),
    }
}

/// An [`Event`] that owns its payload (e.g. an item of an async stream).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct OwnedEvent {
    /// Its kind (message type).
    pub kind: EventKind,
    /// Group, origin, sequence number and timestamp.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub header: EventHdr,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Event<'_> {
    /// A copy that owns its payload.
    pub fn to_owned_event(&self) -> OwnedEvent {
        OwnedEvent {
            kind: self.kind,
            header: self.header,
            payload: self.payload.to_vec(),
        }
    }
}

/// Decodes one multicast message of the rustnl module.
pub fn decode_event<'a>(msg: &Message<'a>) -> Result<Event<'a>> {
    let kind = match MsgType::from_raw(msg.header.ty) {
        Some(MsgType::Event) => EventKind::Broadcast,
        Some(MsgType::Heartbeat) => EventKind::Heartbeat,
        Some(MsgType::Goodbye) => EventKind::Goodbye,
        _ => {
            return Err(Error::Unexpected(format!(
                "message type {:#x} on a multicast group",
                msg.header.ty
            )))
        }
    };
    let (header, payload) = EventHdr::parse(msg.payload)
        .map_err(|e| Error::Malformed(format!("{} event: {e}", kind.name())))?;
    Ok(Event {
        kind,
        header,
        payload,
    })
}

/// Checks that `msg`, an answer to request `what`, has the type `ty` it
/// must have and is addressed to `port_id` (both faces' clients).
pub(crate) fn check_answer(msg: &Message<'_>, ty: u16, port_id: u32, what: &str) -> Result<()> {
    if msg.header.ty != ty {
        return Err(Error::Unexpected(format!(
            "message type {:#x} in answer to {what} (expected {ty:#x})",
            msg.header.ty
        )));
    }
    if msg.header.pid != port_id {
        return Err(Error::Unexpected(format!(
            "{what} answer addressed to port {} (ours is {port_id})",
            msg.header.pid
        )));
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
    let e = ErrorMsg::parse(msg.payload, msg.header.flags)
        .map_err(|e| Error::Malformed(e.to_string()))?;
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
