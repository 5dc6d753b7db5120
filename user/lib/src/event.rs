//! Events: what the rustnl module multicasts ([`Event`]), decoded from
//! either face, and [`Subscription`], a listener yielding them.

use crate::client::open;
use crate::conn::Conn;
use crate::error::{Error, Result};
use crate::proto::{EventHdr, Message, MsgType};
use crate::socket::Socket;

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
