//! Events: what the rustnl module multicasts ([`Event`]), decoded from
//! either face, and [`Subscription`], a listener yielding them.

use crate::client::open;
use crate::conn::Conn;
use crate::errors::{Error, Result};
use crate::proto::{EventHdr, Message, MsgType};
use crate::socket::Socket;
use std::collections::VecDeque;
use std::time::Duration;

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

/// How a [`Subscription`] turns the kernel's messages into its items:
/// [`Decode::keep`] picks the messages (cheaply, when a datagram arrives),
/// [`Decode::decode`] decodes one when it is handed out, zero-copy
/// (`Item<'a>` may borrow from the receive buffer).
///
/// The rustnl module's faces have [`ClassicEvents`] and
/// [`GenlEvents`](crate::GenlEvents); the kernel's families
/// [`ProcEvents`](crate::families::proc_events::ProcEvents) and
/// [`RouteEvents`](crate::families::route::RouteEvents). Any closure
/// `FnMut(&Message<'_>) -> Result<T>` is a decoder of owned `T`s that keeps
/// every message.
pub trait Decode {
    /// What one message decodes to.
    type Item<'a>;
    /// Whether `msg` is one of this stream's (others are skipped).
    fn keep(&mut self, msg: &Message<'_>) -> bool {
        let _ = msg;
        true
    }
    /// Decodes a kept message.
    fn decode<'a>(&mut self, msg: &Message<'a>) -> Result<Self::Item<'a>>;
}

impl<T, F> Decode for F
where
    F: FnMut(&Message<'_>) -> Result<T>,
{
    type Item<'a> = T;
    fn decode<'a>(&mut self, msg: &Message<'a>) -> Result<T> {
        self(msg)
    }
}

/// The decoder of the classic face's multicasts (netlink unit 31): every
/// message is an [`Event`] ([`decode_event`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassicEvents;

impl Decode for ClassicEvents {
    type Item<'a> = Event<'a>;
    fn decode<'a>(&mut self, msg: &Message<'a>) -> Result<Event<'a>> {
        decode_event(msg)
    }
}

/// A listener: a socket that joined multicast groups (or, in tests, any
/// [`Conn`]) and a decoder `D` ([`Decode`]) of what arrives, one item per
/// [`Subscription::next_event`], zero-copy. The synchronous twin of the
/// async [`tokio::EventStream`](crate::tokio::EventStream).
///
/// - `Subscription::new(unit, groups)`: the classic face's events
///   ([`ClassicEvents`]);
/// - `Subscription::genl(groups)`: the generic netlink face's
///   ([`GenlEvents`](crate::GenlEvents)), by multicast group;
///   `Subscription::genl_numbered(groups)` by numbered group, as the
///   classic face's (the kernel sends the socket those groups only);
/// - `Subscription::proc_events()` and `Subscription::route(groups)`: the
///   kernel's process and rtnetlink events;
/// - [`Subscription::with_conn`]: any connection and decoder.
///
/// Messages from anyone but the kernel are skipped. Every subscription has
/// [`Subscription::set_timeout`] (none at first: wait forever).
#[derive(Debug)]
pub struct Subscription<D = ClassicEvents, C = Socket> {
    conn: C,
    decoder: D,
    pending: VecDeque<(usize, usize)>,
}

impl Subscription {
    /// Listens on `groups` of the module's `unit` (any group number,
    /// through `NETLINK_ADD_MEMBERSHIP`). Non-root processes may listen.
    ///
    /// ```no_run
    /// let mut sub = rustnl::Subscription::new(rustnl::proto::DEFAULT_UNIT, &[1])?;
    /// sub.set_timeout(Some(std::time::Duration::from_secs(5)))?;
    /// let event = sub.next_event()?;
    /// println!("{} on group {}", event.kind.name(), event.header.group);
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn new(unit: u32, groups: &[u32]) -> Result<Subscription> {
        let sock = open(unit, 0)?;
        for &g in groups {
            sock.add_membership(g)?;
        }
        Ok(Subscription::with_conn(sock, ClassicEvents))
    }
}

impl<D> Subscription<D, Socket> {
    /// The underlying socket (for options, polling).
    pub fn socket(&self) -> &Socket {
        &self.conn
    }

    /// The underlying socket, mutably.
    pub fn socket_mut(&mut self) -> &mut Socket {
        &mut self.conn
    }

    /// How long [`Subscription::next_event`] waits (`None`: forever); then
    /// it ends in [`Error::Timeout`].
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.conn.set_recv_timeout(timeout)
    }

    /// The socket, for another way of reading it; messages already
    /// received but not yet handed out are dropped (see
    /// [`EventStream::from_subscription`](crate::tokio::EventStream::from_subscription)
    /// to keep them).
    pub fn into_socket(self) -> Socket {
        self.conn
    }
}

impl<D: Decode, C: Conn> Subscription<D, C> {
    /// Events decoded with `decoder` from `conn`, which has joined its
    /// groups already (or is a test double).
    pub fn with_conn(conn: C, decoder: D) -> Subscription<D, C> {
        Subscription {
            conn,
            decoder,
            pending: VecDeque::new(),
        }
    }

    /// The connection.
    pub fn conn(&self) -> &C {
        &self.conn
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// Marks the messages of the last datagram from byte `from` on as
    /// received but not yet handed out (a subscription handshake read them
    /// together with its answer).
    pub(crate) fn keep_rest_of_last(&mut self, from: usize) -> Result<()> {
        let rest = self.conn.last().get(from..).unwrap_or_default();
        for msg in crate::proto::Messages::new(rest) {
            let msg = msg?;
            if self.decoder.keep(&msg) {
                self.pending.push_back((from + msg.offset, msg.bytes.len()));
            }
        }
        Ok(())
    }

    /// Waits for the next event. [`Error::Overrun`] reports that the kernel
    /// dropped events because this listener's queue was full; the
    /// subscription stays usable.
    pub fn next_event(&mut self) -> Result<D::Item<'_>> {
        while self.pending.is_empty() {
            let dgram = self.conn.recv()?;
            if dgram.sender != 0 {
                continue;
            }
            for msg in dgram.messages() {
                let msg = msg?;
                if self.decoder.keep(&msg) {
                    self.pending.push_back((msg.offset, msg.bytes.len()));
                }
            }
        }
        let (start, len) = self.pending.pop_front().unwrap_or_default();
        let bytes = self
            .conn
            .last()
            .get(start..start.saturating_add(len))
            .unwrap_or_default();
        match crate::proto::Messages::new(bytes).next() {
            Some(Ok(msg)) => self.decoder.decode(&msg),
            _ => Err(Error::Malformed(
                "event message vanished from the buffer".into(),
            )),
        }
    }

    /// The connection and the messages received but not yet handed out
    /// (their bytes).
    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (C, Vec<Vec<u8>>) {
        let last = self.conn.last();
        let queued = self
            .pending
            .iter()
            .filter_map(|&(s, l)| last.get(s..s.saturating_add(l)).map(<[u8]>::to_vec))
            .collect();
        (self.conn, queued)
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
    let (header, payload) = EventHdr::parse(msg.payload).map_err(|source| Error::BadLayout {
        what: "event header",
        source,
    })?;
    Ok(Event {
        kind,
        header,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{EventHdr, NLM_F_REQUEST};
    use crate::testing::FakeConn;
    use crate::MessageBuilder;

    fn event(ty: MsgType, group: u32, payload: &[u8]) -> Vec<u8> {
        let hdr = EventHdr {
            group,
            origin: 7,
            seq: 1,
            timestamp_ns: 2,
        }
        .to_bytes();
        let mut b = MessageBuilder::new();
        b.push_parts(ty.raw(), 0, 0, &[&hdr, payload]).unwrap();
        b.as_bytes().to_vec()
    }

    /// One subscription type for every decoder: the classic face's events
    /// zero-copy, and a closure (capturing state) giving owned items; the
    /// queue hands out one message per call, several per datagram.
    #[test]
    fn one_subscription_for_every_decoder() {
        let mut queue = vec![
            [
                event(MsgType::Event, 3, b"a"),
                event(MsgType::Heartbeat, 1, b""),
            ]
            .concat(),
            event(MsgType::Goodbye, 1, b""),
        ];
        queue.reverse();
        let q = queue.clone();
        let conn = FakeConn::new(move |_: &[Message<'_>]| Ok(queue.pop().into_iter().collect()));
        let mut sub = Subscription::with_conn(conn, ClassicEvents);
        let kinds: Vec<_> = (0..3).map(|_| sub.next_event().unwrap().kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Broadcast,
                EventKind::Heartbeat,
                EventKind::Goodbye
            ]
        );
        assert!(matches!(sub.next_event(), Err(Error::Timeout)));

        let mut queue = q;
        let conn = FakeConn::new(move |_: &[Message<'_>]| Ok(queue.pop().into_iter().collect()));
        let mut n = 0;
        let mut sub = Subscription::with_conn(conn, move |m: &Message<'_>| {
            n += 1;
            Ok((n, m.header.ty))
        });
        assert_eq!(sub.next_event().unwrap(), (1, MsgType::Event.raw()));
        assert_eq!(sub.next_event().unwrap(), (2, MsgType::Heartbeat.raw()));
        assert_eq!(sub.next_event().unwrap(), (3, MsgType::Goodbye.raw()));
    }

    /// Every subscription has `set_timeout`: a route listener with nothing
    /// happening times out instead of blocking.
    #[test]
    fn subscriptions_time_out() {
        let mut sub = Subscription::route(0).unwrap();
        sub.set_timeout(Some(Duration::from_millis(20))).unwrap();
        assert!(matches!(sub.next_event(), Err(Error::Timeout)));
    }

    /// The connection owns the sequence numbers: the client's requests,
    /// single or batched, number on from the connection's counter.
    #[test]
    fn the_connection_numbers_every_request() {
        let conn = FakeConn::new(|req: &[Message<'_>]| {
            Ok(req
                .iter()
                .map(|m| crate::testing::answer(m, m.header.ty, 0, m.payload))
                .collect())
        });
        let mut c = crate::Client::with_conn(conn, 31);
        c.echo(b"x").unwrap();
        c.echo_batch(b"y", 3).unwrap();
        c.echo(b"z").unwrap();
        let seqs: Vec<u32> = c
            .conn()
            .sent()
            .iter()
            .flat_map(|d| {
                crate::proto::Messages::new(d)
                    .map(|m| m.unwrap().header.seq)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        let mut b = MessageBuilder::new();
        let next = c.conn_mut().next_seq();
        assert_eq!(next, 6);
        b.push(0x10, NLM_F_REQUEST, next, b"").unwrap();
    }
}
