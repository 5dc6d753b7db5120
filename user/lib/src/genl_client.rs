//! The rustnl protocol over generic netlink: the module's family `rustnl`
//! (`shared/spec/rustnl.yaml`), found by name through the kernel's
//! controller. [`GenlClient`] mirrors the classic [`Client`](crate::Client)
//! (echo, broadcast, get-info) and [`GenlEvents`] decode the events for
//! a [`Subscription`]; both decode into the same types
//! ([`BroadcastResult`], [`Event`]) so that a program can switch faces.
//! What differs from the classic face: see [`GenlClient`].

use crate::attr::{AttrError, AttrExt, AttrTable};
use crate::conn::Conn;
use crate::errors::{Error, KernelError, ModuleError, Result};
use crate::event::{Decode, Event, EventKind, Subscription};
use crate::genl::{Family, GenlMessage, GenlSocket};
use crate::message::MessageBuilder;
use crate::proto::genl::{
    genl_header, nla_header, nla_pad_len, Attr, Cmd, CounterAttr, McastGroup, FAMILY_NAME,
    GENL_HDRLEN, MAX_ATTR_PAYLOAD, NLA_PAD,
};
use crate::proto::{
    BroadcastResult, Counters, EventHdr, Message, Messages, KERNEL_EVENT_GROUP, NLMSG_HDRLEN,
    NLM_F_ACK, NLM_F_REQUEST,
};
use crate::request::{check_answer, check_error};
use crate::socket::{Socket, DEFAULT_TIMEOUT};
use std::time::Duration;

/// Looks the module's family up on `genl` (remembered there, see
/// [`GenlSocket::resolve`]): [`ModuleError::GenlNotRegistered`] when the
/// controller does not know it.
pub fn resolve_rustnl<C: Conn>(genl: &mut GenlSocket<C>) -> Result<Family> {
    match genl.family(FAMILY_NAME) {
        Err(Error::FamilyNotFound { .. }) => Err(ModuleError::GenlNotRegistered.into()),
        r => r,
    }
}

/// Where `inner` starts within `outer`, if it lies within it.
fn offset_within(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let off = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (off.checked_add(inner.len())? <= outer.len()).then_some(off)
}

/// Names the attribute `k` is about with the spec's name: the missing one
/// (`NLMSGERR_ATTR_MISS_TYPE`, at the top level: the family has no nested
/// request attributes), or the one of `request` (the message sent, from its
/// netlink header) at the extended ack's offset.
pub(crate) fn name_attr(k: &mut KernelError, request: &[u8]) {
    if let Some(ty) = k.missing_type {
        if k.missing_nest.is_none() {
            k.attr = Attr::from_raw(ty).map(Attr::name);
        }
        return;
    }
    let Some(offset) = k.offset.and_then(|o| usize::try_from(o).ok()) else {
        return;
    };
    let start = NLMSG_HDRLEN + GENL_HDRLEN;
    let Some(attrs) = request.get(start..) else {
        return;
    };
    let mut at = start;
    for a in crate::proto::Attrs::new(attrs) {
        let Ok(a) = a else { return };
        if at == offset {
            k.attr = Attr::from_raw(a.ty).map(Attr::name);
            return;
        }
        at = at.saturating_add(crate::proto::nlmsg_align(
            crate::proto::NLA_HDRLEN + a.payload.len(),
        ));
        if at > offset {
            return;
        }
    }
}

/// A required attribute of a reply or event, or [`Error::MissingAttr`] /
/// [`Error::BadAttr`] naming it.
fn required<T>(what: &'static str, attr: Attr, v: Result<Option<T>, AttrError>) -> Result<T> {
    match v {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(Error::MissingAttr {
            what,
            attr: attr.name(),
        }),
        Err(source) => Err(Error::BadAttr { what, source }),
    }
}

/// The answer to `get-info` on the generic netlink face: the module's
/// configuration and this network namespace's counters of each face.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GenlInfo {
    /// Protocol version of the module (`version`).
    #[cfg_attr(feature = "serde", serde(rename = "protocol_version"))]
    pub version: u32,
    /// The classic face's netlink protocol unit (`unit`).
    pub unit: u32,
    /// Number of numbered multicast groups (`groups`).
    pub groups: u32,
    /// Largest accepted request payload (`max-payload`); the generic
    /// netlink face carries at most [`MAX_ATTR_PAYLOAD`] of it.
    pub max_payload: u32,
    /// Heartbeat period in ms, 0: off (`heartbeat-ms`).
    pub heartbeat_ms: u32,
    /// Whether anyone may broadcast (`open-broadcast`).
    pub open_broadcast: bool,
    /// What the classic unit served in this namespace (`classic-counters`).
    pub classic_counters: Counters,
    /// What the generic netlink family served (`genl-counters`).
    pub genl_counters: Counters,
}

impl GenlInfo {
    /// Decodes the attributes of a `get-info` reply. The configuration and
    /// both counter nests are required; a counter missing from a nest is 0
    /// and counters this library does not know are skipped.
    pub fn parse(attrs: AttrTable<'_>) -> Result<GenlInfo> {
        let what = "get-info reply";
        let u32_of = |a: Attr| required(what, a, attrs.u32(a.raw()));
        let counters = |a: Attr| required(what, a, attrs.nested(a.raw())).and_then(parse_counters);
        Ok(GenlInfo {
            version: u32_of(Attr::Version)?,
            unit: u32_of(Attr::Unit)?,
            groups: u32_of(Attr::Groups)?,
            max_payload: u32_of(Attr::MaxPayload)?,
            heartbeat_ms: u32_of(Attr::HeartbeatMs)?,
            open_broadcast: attrs
                .flag(Attr::OpenBroadcast.raw())
                .map_err(|source| Error::BadAttr { what, source })?,
            classic_counters: counters(Attr::ClassicCounters)?,
            genl_counters: counters(Attr::GenlCounters)?,
        })
    }
}

/// The counters with their attribute in the spec ([`CounterAttr`], whose
/// [`name`](CounterAttr::name) is the spec's; with `_` for `-` it is the
/// JSON name), in the spec's order: one table for every reader.
pub fn counters(c: &Counters) -> [(CounterAttr, u64); Counters::COUNT] {
    let values = c.to_array();
    CounterAttr::ALL.map(|a| (a, values.get(a.index()).copied().unwrap_or_default()))
}

/// Decodes one `counters` nest (`uint`s of [`CounterAttr`]).
fn parse_counters(t: AttrTable<'_>) -> Result<Counters> {
    let mut values = [0u64; Counters::COUNT];
    for a in t.iter() {
        let a = a.map_err(|source| Error::BadAttr {
            what: "counters",
            source,
        })?;
        let Some(c) = CounterAttr::from_raw(a.ty) else {
            continue;
        };
        let v = a.get_uint().map_err(|source| Error::BadAttr {
            what: "counters",
            source,
        })?;
        if let Some(slot) = values.get_mut(c.index()) {
            *slot = v;
        }
    }
    Ok(Counters::from_array(values))
}

/// Decodes the attributes of a `broadcast` reply.
fn parse_broadcast(attrs: AttrTable<'_>) -> Result<BroadcastResult> {
    let what = "broadcast reply";
    let flag = |a: Attr| {
        attrs
            .flag(a.raw())
            .map_err(|source| Error::BadAttr { what, source })
    };
    Ok(BroadcastResult {
        group: required(what, Attr::Group, attrs.u32(Attr::Group.raw()))?,
        delivered: flag(Attr::Delivered)?,
        delivery_failed: flag(Attr::DeliveryFailed)?,
        event_seq: required(what, Attr::EventSeq, attrs.uint(Attr::EventSeq.raw()))?,
    })
}

/// Decodes one multicast message of the family `family_id` (the family's
/// `event`, `heartbeat` or `goodbye`) into the classic face's [`Event`]: the
/// same kind, header fields and payload (empty for `goodbye`).
pub fn decode_genl_event<'a>(family_id: u16, msg: &Message<'a>) -> Result<Event<'a>> {
    if msg.header.ty != family_id {
        return Err(Error::Unexpected(format!(
            "message type {:#x} on a multicast group of family {FAMILY_NAME} ({family_id:#x})",
            msg.header.ty
        )));
    }
    let m = GenlMessage::parse(msg)?;
    let kind = match Cmd::from_raw(m.header.cmd) {
        Some(Cmd::Event) => EventKind::Broadcast,
        Some(Cmd::Heartbeat) => EventKind::Heartbeat,
        Some(Cmd::Goodbye) => EventKind::Goodbye,
        _ => {
            return Err(Error::Unexpected(format!(
                "command {} on a multicast group of family {FAMILY_NAME}",
                m.header.cmd
            )))
        }
    };
    let what = kind.name();
    let a = m.attrs;
    let header = EventHdr {
        group: required(what, Attr::Group, a.u32(Attr::Group.raw()))?,
        origin: required(what, Attr::OriginPortid, a.u32(Attr::OriginPortid.raw()))?,
        seq: required(what, Attr::EventSeq, a.uint(Attr::EventSeq.raw()))?,
        timestamp_ns: required(what, Attr::TimestampNs, a.uint(Attr::TimestampNs.raw()))?,
    };
    let payload = a
        .bytes(Attr::Payload.raw())
        .map_err(|source| Error::BadAttr { what, source })?
        .unwrap_or_default();
    Ok(Event {
        kind,
        header,
        payload,
    })
}

/// A client of the rustnl module's generic netlink family, over a
/// `NETLINK_GENERIC` [`Socket`] or, in tests, any [`Conn`] (e.g. a
/// [`FakeConn`](crate::testing::FakeConn) serving the controller with
/// [`testing::serve_family`](crate::testing::serve_family)).
///
/// Every number (command and attribute ids, group names, the payload limit)
/// comes from [`proto::genl`](crate::proto::genl), the one definition the
/// kernel module compiles too.
///
/// Differences from the classic face:
///
/// - A payload travels in one attribute, so it is at most
///   [`MAX_ATTR_PAYLOAD`] (65,531) bytes; a larger one is refused before
///   sending, [`ModuleError::GenlPayloadTooLarge`].
/// - The family is looked up by name first: on a kernel without the module
///   it is [`ModuleError::GenlNotRegistered`].
/// - The kernel's refusals are [`Error::Kernel`] with the attribute they are
///   about named with the spec's name ([`KernelError::attr`]): the one at the
///   extended ack's offset, or the missing one (`NLMSGERR_ATTR_MISS_TYPE`).
/// - `get-info` reports the counters of both faces ([`GenlInfo`]).
/// - Events arrive on two multicast groups, [`McastGroup::Events`] (the
///   events of every numbered group) and [`McastGroup::Heartbeat`]
///   (heartbeats and the goodbye); an event's `group` is its numbered group.
///   A socket receives the events of every numbered group until it chooses
///   some with `set-groups` ([`GenlClient::set_groups`],
///   [`Subscription::genl_numbered`]); a broadcast counts as delivered only
///   if a socket that receives its group got it, as on the classic face.
///
/// ```no_run
/// use rustnl::proto::genl::McastGroup;
/// let mut client = rustnl::GenlClient::connect()?;
/// assert_eq!(client.echo(b"Hello you!")?, b"Hello you!");
/// let info = client.info()?;
/// println!("{} echoes over genl", info.genl_counters.echoes);
/// let mut sub = rustnl::Subscription::genl(&[McastGroup::Events])?;
/// let event = sub.next_event()?;
/// println!("{} on group {}", event.kind.name(), event.header.group);
/// # Ok::<(), rustnl::Error>(())
/// ```
#[derive(Debug)]
pub struct GenlClient<C = Socket> {
    genl: GenlSocket<C>,
    family: Family,
    out: MessageBuilder,
}

impl GenlClient {
    /// Opens a generic netlink socket (extended acks on, receive timeout
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT)) and looks the
    /// family up: [`ModuleError::GenlNotRegistered`] if the module is not loaded.
    pub fn connect() -> Result<GenlClient> {
        let genl = GenlSocket::open()?;
        genl.conn().set_recv_timeout(Some(DEFAULT_TIMEOUT))?;
        GenlClient::with_genl(genl)
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        self.genl.conn()
    }

    /// How long to wait for an answer (`None`: forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.genl.conn().set_recv_timeout(timeout)
    }
}

impl<C: Conn> GenlClient<C> {
    /// A client over `conn` (a socket opened another way, or a test
    /// double); looks the family up first.
    pub fn with_conn(conn: C) -> Result<GenlClient<C>> {
        GenlClient::with_genl(GenlSocket::with_conn(conn))
    }

    /// A client over a generic netlink connection; looks the family up
    /// first.
    pub fn with_genl(mut genl: GenlSocket<C>) -> Result<GenlClient<C>> {
        let family = resolve_rustnl(&mut genl)?;
        Ok(GenlClient {
            genl,
            family,
            out: MessageBuilder::new(),
        })
    }

    /// The family as the controller described it (id, operations, the ids
    /// of its multicast groups).
    pub fn family(&self) -> &Family {
        &self.family
    }

    /// The generic netlink connection (for other families too).
    pub fn genl_mut(&mut self) -> &mut GenlSocket<C> {
        &mut self.genl
    }

    /// The connection.
    pub fn conn(&self) -> &C {
        self.genl.conn()
    }

    /// Appends request `cmd` with `attrs` (attribute streams, concatenated)
    /// and, if any, the `payload` attribute last; refuses a payload one
    /// attribute cannot carry.
    fn push(&mut self, cmd: Cmd, attrs: &[u8], payload: Option<&[u8]>) -> Result<u32> {
        self.push_flags(cmd, NLM_F_REQUEST, attrs, payload)
    }

    /// [`Self::push`] with these `flags`.
    fn push_flags(
        &mut self,
        cmd: Cmd,
        flags: u16,
        attrs: &[u8],
        payload: Option<&[u8]>,
    ) -> Result<u32> {
        let seq = self.genl.conn_mut().next_seq();
        let genl = genl_header(cmd);
        match payload {
            None => {
                self.out
                    .push_parts(self.family.id, flags, seq, &[&genl, attrs])?;
            }
            Some(p) => {
                let Some(hdr) = nla_header(Attr::Payload.raw(), p.len()) else {
                    return Err(ModuleError::GenlPayloadTooLarge {
                        size: p.len(),
                        limit: MAX_ATTR_PAYLOAD,
                    }
                    .into());
                };
                let pad = NLA_PAD.get(..nla_pad_len(p.len())).unwrap_or_default();
                self.out
                    .push_parts(self.family.id, flags, seq, &[&genl, attrs, &hdr, p, pad])?;
            }
        }
        Ok(seq)
    }

    /// Sends request `cmd` and passes the reply (checked: the family's
    /// type, command `cmd`, addressed to this port) to `decode`. A kernel
    /// error gets the name of the attribute it is about.
    fn call<T>(
        &mut self,
        cmd: Cmd,
        attrs: &[u8],
        payload: Option<&[u8]>,
        mut decode: impl FnMut(&GenlMessage<'_>) -> Result<T>,
    ) -> Result<T> {
        self.out.clear();
        self.push(cmd, attrs, payload)?;
        let id = self.family.id;
        let port_id = self.genl.conn().port_id();
        let mut found = None;
        let r = crate::request::request(self.genl.conn_mut(), self.out.as_bytes(), |msg| {
            let m = check_reply(id, port_id, cmd, msg)?;
            found = Some(decode(&m)?);
            Ok(())
        });
        match r {
            Ok(_) => found.ok_or_else(|| Error::Unexpected(format!("no reply to {}", cmd.name()))),
            Err(Error::Kernel(mut k)) => {
                name_attr(&mut k, self.out.as_bytes());
                Err(Error::Kernel(k))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `payload` in an `echo` request and returns the kernel's echo,
    /// borrowed from the receive buffer. A payload over
    /// [`MAX_ATTR_PAYLOAD`] is [`ModuleError::GenlPayloadTooLarge`], not sent.
    pub fn echo(&mut self, payload: &[u8]) -> Result<&[u8]> {
        let (start, len) = self.call(Cmd::Echo, &[], Some(payload), |m| {
            let p = required(
                "echo reply",
                Attr::Payload,
                m.attrs.bytes(Attr::Payload.raw()),
            )?;
            let within = offset_within(m.message.payload, p)
                .ok_or_else(|| Error::Unexpected("echo payload outside its message".into()))?;
            Ok((m.message.offset + NLMSG_HDRLEN + within, p.len()))
        })?;
        self.genl
            .conn()
            .last()
            .get(start..start.saturating_add(len))
            .ok_or_else(|| Error::Unexpected("echo reply vanished from the buffer".into()))
    }

    /// Sends `count` `echo` requests of `payload` in one datagram and checks
    /// that `count` echoes come back, in order and unchanged.
    pub fn echo_batch(&mut self, payload: &[u8], count: usize) -> Result<()> {
        self.out.clear();
        let mut first = None;
        for _ in 0..count {
            let seq = self.push(Cmd::Echo, &[], Some(payload))?;
            first.get_or_insert(seq);
        }
        let Some(first) = first else { return Ok(()) };
        let id = self.family.id;
        let port_id = self.genl.conn().port_id();
        let conn = self.genl.conn_mut();
        conn.send(self.out.as_bytes())?;
        let mut next = first;
        let mut got = 0usize;
        while got < count {
            let dgram = conn.recv()?;
            if dgram.sender != 0 {
                continue;
            }
            for msg in dgram.messages() {
                let msg = msg?;
                if msg.header.seq.wrapping_sub(first) >= count as u32 {
                    continue; // not this batch
                }
                if let Err(e) = check_error(&msg) {
                    return Err(match e {
                        Error::Kernel(mut k) => {
                            // Every request of the batch has the same layout.
                            let one = Messages::new(self.out.as_bytes())
                                .next()
                                .and_then(|m| m.ok())
                                .map(|m| m.bytes)
                                .unwrap_or_default();
                            name_attr(&mut k, one);
                            Error::Kernel(k)
                        }
                        e => e,
                    });
                }
                let m = check_reply(id, port_id, Cmd::Echo, &msg)?;
                let echoed = m.attrs.bytes(Attr::Payload.raw()).ok().flatten();
                if msg.header.seq != next || echoed != Some(payload) {
                    return Err(Error::Unexpected(format!(
                        "echo {got} of the batch: seq {}, {} bytes",
                        msg.header.seq,
                        echoed.map_or(0, <[u8]>::len)
                    )));
                }
                next = next.wrapping_add(1);
                got += 1;
            }
        }
        Ok(())
    }

    /// Asks the kernel to multicast `payload` as an `event` of numbered
    /// `group`; says whether any listener received it ("no listeners" is
    /// not an error). Needs `CAP_NET_ADMIN` over the network namespace
    /// unless the module has `open_broadcast=1` (else `EPERM`).
    pub fn broadcast(&mut self, group: u32, payload: &[u8]) -> Result<BroadcastResult> {
        let mut attrs = [0u8; 8];
        let hdr = nla_header(Attr::Group.raw(), 4).unwrap_or_default();
        attrs[..4].copy_from_slice(&hdr);
        attrs[4..].copy_from_slice(&group.to_ne_bytes());
        self.call(Cmd::Broadcast, &attrs, Some(payload), |m| {
            parse_broadcast(m.attrs)
        })
    }

    /// The module's configuration and this namespace's counters of both
    /// faces.
    pub fn info(&mut self) -> Result<GenlInfo> {
        self.call(Cmd::GetInfo, &[], None, |m| GenlInfo::parse(m.attrs))
    }

    /// `set-groups`: from now on this client's socket receives, on the
    /// family's [`McastGroup::Events`] (if it joined it), the events of
    /// numbered `groups` only, and counts as a listener of those only; an
    /// empty slice means every group again (what a socket receives until it
    /// chooses). Anyone may choose for their own socket. A group outside
    /// the module's `1..=groups` is [`Error::Kernel`] (`EINVAL`, or the
    /// policy's `ERANGE` outside 1..=1024) naming `listen-group`. To listen
    /// on a socket of its own, see [`Subscription::genl_numbered`].
    pub fn set_groups(&mut self, groups: &[u32]) -> Result<()> {
        let attrs = listen_group_attrs(groups);
        self.out.clear();
        self.push_flags(Cmd::SetGroups, NLM_F_REQUEST | NLM_F_ACK, &attrs, None)?;
        let id = self.family.id;
        let port_id = self.genl.conn().port_id();
        let r = crate::request::request(self.genl.conn_mut(), self.out.as_bytes(), |msg| {
            check_reply(id, port_id, Cmd::SetGroups, msg)?;
            Err(Error::Unexpected(
                "a reply to set-groups, which has none".into(),
            ))
        });
        match r {
            Ok(_) => Ok(()),
            Err(Error::Kernel(mut k)) => {
                name_attr(&mut k, self.out.as_bytes());
                Err(Error::Kernel(k))
            }
            Err(e) => Err(e),
        }
    }
}

/// The attributes of a `set-groups` request: one `listen-group` per group,
/// in the order given.
pub(crate) fn listen_group_attrs(groups: &[u32]) -> Vec<u8> {
    let hdr = nla_header(Attr::ListenGroup.raw(), 4).unwrap_or_default();
    groups
        .iter()
        .flat_map(|g| hdr.into_iter().chain(g.to_ne_bytes()))
        .collect()
}

/// Checks that `msg` is the family's reply to `cmd` for `port_id`.
fn check_reply<'a>(id: u16, port_id: u32, cmd: Cmd, msg: &Message<'a>) -> Result<GenlMessage<'a>> {
    check_answer(msg, id, port_id, cmd.name())?;
    let m = GenlMessage::parse(msg)?;
    if m.header.cmd != cmd.raw() {
        return Err(Error::WrongCommand {
            request: cmd.name(),
            cmd: m.header.cmd,
            expected: cmd.raw(),
        });
    }
    Ok(m)
}

/// The decoder of the generic netlink face's multicasts: the messages of
/// the family (by its id; others are skipped), each an [`Event`] like the
/// classic face's ([`decode_genl_event`]).
#[derive(Clone, Debug)]
pub struct GenlEvents {
    family: Family,
}

impl GenlEvents {
    /// The events of `family` (as the controller described it).
    pub fn new(family: Family) -> GenlEvents {
        GenlEvents { family }
    }

    /// The family.
    pub fn family(&self) -> &Family {
        &self.family
    }
}

impl Decode for GenlEvents {
    type Item<'a> = Event<'a>;
    fn keep(&mut self, msg: &Message<'_>) -> bool {
        msg.header.ty == self.family.id
    }
    fn decode<'a>(&mut self, msg: &Message<'a>) -> Result<Event<'a>> {
        decode_genl_event(self.family.id, msg)
    }
}

/// Opens a generic netlink socket, looks the module's family up and joins
/// `groups` by name (their ids from the controller).
pub(crate) fn genl_listener(groups: &[McastGroup]) -> Result<(Socket, Family)> {
    let mut genl = GenlSocket::open()?;
    let family = resolve_rustnl(&mut genl)?;
    let sock = genl.into_conn();
    join(&sock, &family, groups)?;
    sock.set_recv_timeout(None)?;
    Ok((sock, family))
}

/// The family's multicast groups that carry the events of numbered
/// `groups`: [`McastGroup::Events`] for any, [`McastGroup::Heartbeat`] too
/// for [`KERNEL_EVENT_GROUP`], where the heartbeats and the goodbye go.
pub fn mcast_groups_of(groups: &[u32]) -> Vec<McastGroup> {
    let mut out = Vec::new();
    if !groups.is_empty() {
        out.push(McastGroup::Events);
    }
    if groups.contains(&KERNEL_EVENT_GROUP) {
        out.push(McastGroup::Heartbeat);
    }
    out
}

/// A listener of numbered `groups`: a socket that told the module which
/// groups it receives (`set-groups`, before joining anything, so no event
/// can arrive in the middle of the exchange) and then joined
/// [`mcast_groups_of`] them.
pub(crate) fn genl_numbered_listener(groups: &[u32]) -> Result<(Socket, Family)> {
    let genl = GenlSocket::open()?;
    genl.conn().set_recv_timeout(Some(DEFAULT_TIMEOUT))?;
    let mut client = GenlClient::with_genl(genl)?;
    if !groups.is_empty() {
        client.set_groups(groups)?;
    }
    let GenlClient { genl, family, .. } = client;
    let sock = genl.into_conn();
    join(&sock, &family, &mcast_groups_of(groups))?;
    sock.set_recv_timeout(None)?;
    Ok((sock, family))
}

/// Joins `groups` by name (their ids from `family`).
fn join(sock: &Socket, family: &Family, groups: &[McastGroup]) -> Result<()> {
    for g in groups {
        let id = family.group(g.name()).ok_or_else(|| Error::GroupNotFound {
            family: FAMILY_NAME.to_string(),
            group: g.name().to_string(),
        })?;
        sock.add_membership(id)?;
    }
    Ok(())
}

impl Subscription<GenlEvents> {
    /// Looks the module's generic netlink family up and joins `groups` by
    /// name (their ids from the controller); no receive timeout. Non-root
    /// processes may listen. [`McastGroup::Events`] brings the events of
    /// every numbered group ([`Subscription::genl_numbered`] chooses some).
    pub fn genl(groups: &[McastGroup]) -> Result<Subscription<GenlEvents>> {
        let (sock, family) = genl_listener(groups)?;
        Ok(Subscription::with_conn(sock, GenlEvents::new(family)))
    }

    /// The events of numbered `groups` (1..=the module's `groups`) on the
    /// generic netlink face, as [`Subscription::new`] gives them on the
    /// classic one: the socket tells the module which groups it receives
    /// (`set-groups`), so it gets those only and counts as a listener of
    /// those only (a broadcast to another group is not delivered to it),
    /// then joins [`mcast_groups_of`] them. No receive timeout; non-root
    /// processes may listen. A group the module does not have is
    /// [`Error::Kernel`] (`EINVAL`) naming `listen-group`.
    ///
    /// ```no_run
    /// let mut sub = rustnl::Subscription::genl_numbered(&[3])?;
    /// let event = sub.next_event()?;
    /// assert_eq!(event.header.group, 3);
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn genl_numbered(groups: &[u32]) -> Result<Subscription<GenlEvents>> {
        let (sock, family) = genl_numbered_listener(groups)?;
        Ok(Subscription::with_conn(sock, GenlEvents::new(family)))
    }
}

#[cfg(test)]
mod tests;
