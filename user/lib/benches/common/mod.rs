//! The work both benchmarks measure, written once per codec so that the
//! timings (`codec.rs`) and the allocation counts (`allocs.rs`) are of the
//! very same code.
//!
//! Every case encodes one netlink message (or a batch) into a buffer that is
//! reused across iterations, then decodes it and hands every decoded value to
//! [`black_box`] (header fields, payload, attribute values), so neither side
//! can skip work. [`check_equivalence`] asserts, before anything is measured,
//! that both codecs produce byte-identical datagrams and read back the same
//! values.
//!
//! The netlink-packet-core side is written the way that crate's users define
//! a protocol: a payload type implementing `NetlinkSerializable` /
//! `NetlinkDeserializable` inside `NetlinkMessage` (ECHO), and a
//! `GenlFamily` with `Nla` attributes inside `GenlMessage` (generic netlink).
//! Where its API allows, it is given its best case: the ECHO payload is
//! serialized from a borrowed slice, and the default generic-netlink variant
//! serializes a representation built once, outside the measured loop. The
//! `*_owned` variants build the owned representation per message, as that
//! crate's own examples do. Decoding to an owned value (the payload copied
//! into a `Vec`, strings into `String`) is what its traits require: their
//! signatures give the result no lifetime to borrow from the input.

#![allow(dead_code)] // each bench binary uses a subset

use netlink_packet_core::{
    emit_u16, emit_u32, parse_string, parse_u16, parse_u32, parse_u64, DecodeError, DefaultNla,
    Emitable, ErrorContext, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, Nla, NlaBuffer, NlasIterator, Parseable, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use rustnl::proto::{
    nlmsg_align, put_attr, Attrs, Messages, MsgType, NlMsgHdr, NLMSG_HDRLEN, NLM_F_REQUEST,
};
use rustnl::MessageBuilder;
use std::fmt;
use std::hint::black_box;

/// rustnl's ECHO message type.
pub const ECHO: u16 = MsgType::Echo.raw();
/// Sequence number of the first message of every case.
pub const SEQ: u32 = 0x1234_5678;
/// The single-message ECHO cases: criterion group name and payload size.
pub const ECHO_CASES: [(&str, usize); 3] =
    [("echo_64", 64), ("echo_1k", 1024), ("echo_16k", 16384)];
/// Messages in the batch case, all in one datagram.
pub const BATCH_COUNT: usize = 64;
/// Payload of each batched message: small, and not a multiple of 4, so that
/// both sides write padding.
pub const BATCH_PAYLOAD: usize = 13;

/// Size of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;
/// A (dynamically assigned, as generic families are) family id.
pub const GENL_FAMILY: u16 = 0x1d;
/// Command and version of the generic netlink message.
pub const GENL_CMD: u8 = 3;
/// Version of the generic netlink family.
pub const GENL_VERSION: u8 = 1;
/// Attribute types of the generic netlink message.
pub const ATTR_NAME: u16 = 1;
/// A u32 attribute.
pub const ATTR_ID: u16 = 2;
/// A u16 attribute (2 bytes of padding).
pub const ATTR_PORT: u16 = 3;
/// A binary attribute.
pub const ATTR_DATA: u16 = 4;
/// The string attribute (`NLA_NUL_STRING`: sent with its NUL).
pub const GENL_NAME: &str = "rustnl-bench";
/// The same string with its NUL, as rustnl's `put_attr` takes it.
pub const GENL_NAME_Z: &[u8] = b"rustnl-bench\0";
/// Value of the u32 attribute.
pub const GENL_ID: u32 = 0xdead_beef;
/// Value of the u16 attribute.
pub const GENL_PORT: u16 = 4242;
/// Size of the binary attribute.
pub const GENL_DATA: usize = 32;

/// A reusable output buffer large enough for every case.
pub const OUT_BUF: usize = 64 * 1024;

/// `len` bytes of a fixed pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) + 7) as u8).collect()
}

/// What the reader of one decoded ECHO does with it: every value goes
/// through `black_box`; the sum lets the two codecs be compared.
#[inline(always)]
fn consume_echo(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> u64 {
    black_box(ty);
    black_box(flags);
    black_box(seq);
    black_box(payload);
    u64::from(ty) + u64::from(flags) + u64::from(seq) + payload.len() as u64
}

/// What the reader of the decoded generic netlink message does with it.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn consume_genl(
    ty: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    name: &str,
    id: u32,
    port: u16,
    data: &[u8],
) -> u64 {
    black_box((ty, flags, seq, cmd, version));
    black_box(name);
    black_box((id, port));
    black_box(data);
    u64::from(ty)
        + u64::from(flags)
        + u64::from(seq)
        + u64::from(cmd)
        + u64::from(version)
        + name.len() as u64
        + u64::from(id)
        + u64::from(port)
        + data.len() as u64
}

// ---------------------------------------------------------------------------
// rustnl
// ---------------------------------------------------------------------------

/// Encodes `count` ECHO requests of `payload` (sequence numbers from `seq`)
/// into the reused builder.
pub fn rustnl_echo_encode<'a>(
    b: &'a mut MessageBuilder,
    payload: &[u8],
    seq: u32,
    count: usize,
) -> &'a [u8] {
    b.clear();
    for i in 0..count {
        b.push(ECHO, NLM_F_REQUEST, seq.wrapping_add(i as u32), payload)
            .expect("message fits");
    }
    b.as_bytes()
}

/// Splits the datagram and reads every ECHO in it.
pub fn rustnl_echo_decode(datagram: &[u8]) -> u64 {
    let mut acc = 0;
    for m in Messages::new(datagram) {
        let m = m.expect("well-formed message");
        assert_eq!(m.header.ty, ECHO, "not an ECHO");
        acc += consume_echo(m.header.ty, m.header.flags, m.header.seq, m.payload);
    }
    acc
}

/// Encodes the generic netlink message into `out` with `put_attr` over
/// rustnl's header; returns its length.
pub fn rustnl_genl_encode(out: &mut [u8], seq: u32, data: &[u8]) -> usize {
    let mut pos = NLMSG_HDRLEN + GENL_HDRLEN;
    out[NLMSG_HDRLEN..pos].copy_from_slice(&[GENL_CMD, GENL_VERSION, 0, 0]);
    put_attr(out, &mut pos, ATTR_NAME, GENL_NAME_Z).expect("fits");
    put_attr(out, &mut pos, ATTR_ID, &GENL_ID.to_ne_bytes()).expect("fits");
    put_attr(out, &mut pos, ATTR_PORT, &GENL_PORT.to_ne_bytes()).expect("fits");
    put_attr(out, &mut pos, ATTR_DATA, data).expect("fits");
    let header = NlMsgHdr {
        len: pos as u32,
        ty: GENL_FAMILY,
        flags: NLM_F_REQUEST,
        seq,
        pid: 0,
    };
    out[..NLMSG_HDRLEN].copy_from_slice(&header.to_bytes());
    pos
}

/// Decodes the generic netlink message with `Messages` and `Attrs`, with the
/// same checks as netlink-packet-core's parsers (exact integer sizes, UTF-8
/// names, NUL stripped).
pub fn rustnl_genl_decode(datagram: &[u8]) -> u64 {
    let m = Messages::new(datagram)
        .next()
        .expect("one message")
        .expect("well-formed message");
    assert_eq!(m.header.ty, GENL_FAMILY, "not our family");
    let (genl, attrs) = m
        .payload
        .split_first_chunk::<GENL_HDRLEN>()
        .expect("genlmsghdr");
    let (mut name, mut id, mut port, mut data) = ("", 0, 0, &[][..]);
    for attr in Attrs::new(attrs) {
        let attr = attr.expect("well-formed attribute");
        match attr.ty {
            ATTR_NAME => {
                let text = attr.payload.strip_suffix(&[0]).unwrap_or(attr.payload);
                name = std::str::from_utf8(text).expect("UTF-8 name");
            }
            ATTR_ID => id = u32::from_ne_bytes(attr.payload.try_into().expect("u32")),
            ATTR_PORT => port = u16::from_ne_bytes(attr.payload.try_into().expect("u16")),
            ATTR_DATA => data = attr.payload,
            _ => {}
        }
    }
    consume_genl(
        m.header.ty,
        m.header.flags,
        m.header.seq,
        genl[0],
        genl[1],
        name,
        id,
        port,
        data,
    )
}

// ---------------------------------------------------------------------------
// netlink-packet-core: an ECHO protocol
// ---------------------------------------------------------------------------

/// The ECHO payload: raw bytes, borrowed (`&[u8]`) to serialize, owned
/// (`Vec<u8>`) when deserialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoPayload<B>(pub B);

/// Deserialization error of the custom payload types.
#[derive(Debug)]
pub struct WrongType(pub u16);

impl fmt::Display for WrongType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected message type {:#x}", self.0)
    }
}

impl std::error::Error for WrongType {}

impl<B: AsRef<[u8]>> NetlinkSerializable for EchoPayload<B> {
    fn message_type(&self) -> u16 {
        ECHO
    }

    fn buffer_len(&self) -> usize {
        self.0.as_ref().len()
    }

    fn serialize(&self, buffer: &mut [u8]) {
        buffer.copy_from_slice(self.0.as_ref())
    }
}

impl NetlinkDeserializable for EchoPayload<Vec<u8>> {
    type Error = WrongType;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        if header.message_type != ECHO {
            return Err(WrongType(header.message_type));
        }
        Ok(EchoPayload(payload.to_vec()))
    }
}

fn npc_header(seq: u32) -> NetlinkHeader {
    let mut h = NetlinkHeader::default();
    h.flags = NLM_F_REQUEST;
    h.sequence_number = seq;
    h
}

/// Serializes `msg` at `off` in `buf` and zeroes its padding; returns the
/// offset of the next message.
fn npc_put<I: NetlinkSerializable>(
    msg: &mut NetlinkMessage<I>,
    buf: &mut [u8],
    off: usize,
) -> usize {
    msg.finalize();
    let len = msg.buffer_len();
    msg.serialize(&mut buf[off..off + len]);
    let end = off + nlmsg_align(len);
    buf[off + len..end].fill(0);
    end
}

/// Encodes `count` ECHO requests (payload borrowed) into `buf`; returns the
/// datagram length.
pub fn npc_echo_encode(buf: &mut [u8], payload: &[u8], seq: u32, count: usize) -> usize {
    let mut off = 0;
    for i in 0..count {
        let mut msg = NetlinkMessage::new(
            npc_header(seq.wrapping_add(i as u32)),
            NetlinkPayload::InnerMessage(EchoPayload(payload)),
        );
        off = npc_put(&mut msg, buf, off);
    }
    off
}

/// Like [`npc_echo_encode`], with the payload owned by the message
/// (`payload.to_vec()`), as netlink-packet-core's protocol example does.
pub fn npc_echo_encode_owned(buf: &mut [u8], payload: &[u8], seq: u32, count: usize) -> usize {
    let mut off = 0;
    for i in 0..count {
        let mut msg = NetlinkMessage::new(
            npc_header(seq.wrapping_add(i as u32)),
            NetlinkPayload::InnerMessage(EchoPayload(payload.to_vec())),
        );
        off = npc_put(&mut msg, buf, off);
    }
    off
}

/// Deserializes every ECHO of the datagram.
pub fn npc_echo_decode(datagram: &[u8]) -> u64 {
    let mut off = 0;
    let mut acc = 0;
    while off < datagram.len() {
        let msg = NetlinkMessage::<EchoPayload<Vec<u8>>>::deserialize(&datagram[off..])
            .expect("well-formed message");
        let NetlinkPayload::InnerMessage(EchoPayload(data)) = &msg.payload else {
            panic!("not an ECHO");
        };
        let h = &msg.header;
        acc += consume_echo(h.message_type, h.flags, h.sequence_number, data);
        off += nlmsg_align(h.length as usize);
    }
    acc
}

// ---------------------------------------------------------------------------
// netlink-packet-generic: a generic netlink family
// ---------------------------------------------------------------------------

/// The family's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BenchAttr {
    /// `ATTR_NAME`: a NUL-terminated string.
    Name(String),
    /// `ATTR_ID`: u32.
    Id(u32),
    /// `ATTR_PORT`: u16.
    Port(u16),
    /// `ATTR_DATA`: bytes.
    Data(Vec<u8>),
    /// Anything else.
    Other(DefaultNla),
}

impl Nla for BenchAttr {
    fn value_len(&self) -> usize {
        match self {
            BenchAttr::Name(s) => s.len() + 1,
            BenchAttr::Id(_) => 4,
            BenchAttr::Port(_) => 2,
            BenchAttr::Data(d) => d.len(),
            BenchAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            BenchAttr::Name(_) => ATTR_NAME,
            BenchAttr::Id(_) => ATTR_ID,
            BenchAttr::Port(_) => ATTR_PORT,
            BenchAttr::Data(_) => ATTR_DATA,
            BenchAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            BenchAttr::Name(s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            BenchAttr::Id(v) => emit_u32(buffer, *v).expect("room for a u32"),
            BenchAttr::Port(v) => emit_u16(buffer, *v).expect("room for a u16"),
            BenchAttr::Data(d) => buffer.copy_from_slice(d),
            BenchAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for BenchAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            ATTR_NAME => BenchAttr::Name(parse_string(payload).context("invalid ATTR_NAME")?),
            ATTR_ID => BenchAttr::Id(parse_u32(payload).context("invalid ATTR_ID")?),
            ATTR_PORT => BenchAttr::Port(parse_u16(payload).context("invalid ATTR_PORT")?),
            ATTR_DATA => BenchAttr::Data(payload.to_vec()),
            _ => BenchAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// The family's message: a command and its attributes (like
/// netlink-packet-generic's own `GenlCtrl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchFamily {
    /// The command.
    pub cmd: u8,
    /// The attributes.
    pub nlas: Vec<BenchAttr>,
}

impl GenlFamily for BenchFamily {
    fn family_name() -> &'static str {
        "rustnl_bench"
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        GENL_VERSION
    }
}

impl Emitable for BenchFamily {
    fn buffer_len(&self) -> usize {
        self.nlas.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.nlas.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for BenchFamily {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let nlas = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| BenchAttr::parse(&nla)))
            .collect::<Result<Vec<_>, _>>()
            .context("failed to parse attributes")?;
        Ok(BenchFamily {
            cmd: header.cmd,
            nlas,
        })
    }
}

/// A netlink message of the generic family.
pub type NpcGenl = NetlinkMessage<GenlMessage<BenchFamily>>;

/// Builds the owned representation of the generic netlink message.
pub fn npc_genl_build(seq: u32, data: &[u8]) -> NpcGenl {
    let family = BenchFamily {
        cmd: GENL_CMD,
        nlas: vec![
            BenchAttr::Name(GENL_NAME.to_owned()),
            BenchAttr::Id(GENL_ID),
            BenchAttr::Port(GENL_PORT),
            BenchAttr::Data(data.to_vec()),
        ],
    };
    let mut genl = GenlMessage::from_payload(family);
    genl.set_resolved_family_id(GENL_FAMILY);
    NetlinkMessage::new(npc_header(seq), NetlinkPayload::InnerMessage(genl))
}

/// Serializes an already built message into `buf`; returns its length.
pub fn npc_genl_encode(msg: &mut NpcGenl, buf: &mut [u8]) -> usize {
    npc_put(msg, buf, 0)
}

/// Builds and serializes the message (the owned representation made per
/// message); returns its length.
pub fn npc_genl_encode_owned(buf: &mut [u8], seq: u32, data: &[u8]) -> usize {
    let mut msg = npc_genl_build(seq, data);
    npc_put(&mut msg, buf, 0)
}

/// Deserializes the generic netlink message and reads its fields.
pub fn npc_genl_decode(datagram: &[u8]) -> u64 {
    let msg = NpcGenl::deserialize(datagram).expect("well-formed message");
    let NetlinkPayload::InnerMessage(genl) = &msg.payload else {
        panic!("not a generic netlink message");
    };
    assert_eq!(msg.header.message_type, GENL_FAMILY, "not our family");
    let (mut name, mut id, mut port, mut data) = ("", 0, 0, &[][..]);
    for nla in &genl.payload.nlas {
        match nla {
            BenchAttr::Name(s) => name = s,
            BenchAttr::Id(v) => id = *v,
            BenchAttr::Port(v) => port = *v,
            BenchAttr::Data(d) => data = d,
            BenchAttr::Other(_) => {}
        }
    }
    let h = &msg.header;
    consume_genl(
        h.message_type,
        h.flags,
        h.sequence_number,
        genl.header.cmd,
        genl.header.version,
        name,
        id,
        port,
        data,
    )
}

// ---------------------------------------------------------------------------
// neli 0.7: the generic netlink message
// ---------------------------------------------------------------------------

/// The generic netlink message as neli types it: `u16` family id, `u8`
/// command, `u16` attribute types (neli's markers for untyped numbers).
pub type NeliGenl = neli::nl::Nlmsghdr<u16, neli::genl::Genlmsghdr<u8, u16>>;

/// Builds the message the way neli's users do (builders; each attribute
/// serialized into its own buffer).
pub fn neli_genl_build(seq: u32, data: &[u8]) -> NeliGenl {
    use neli::consts::nl::NlmF;
    use neli::genl::{AttrTypeBuilder, GenlmsghdrBuilder, NlattrBuilder};
    use neli::nl::{NlPayload, NlmsghdrBuilder};
    use neli::types::{Buffer, GenlBuffer};
    fn attr<P: neli::Size + neli::ToBytes>(ty: u16, p: P) -> neli::genl::Nlattr<u16, Buffer> {
        NlattrBuilder::default()
            .nla_type(
                AttrTypeBuilder::default()
                    .nla_type(ty)
                    .build()
                    .expect("type"),
            )
            .nla_payload(p)
            .build()
            .expect("attribute")
    }
    let attrs: GenlBuffer<u16, Buffer> = [
        attr(ATTR_NAME, GENL_NAME),
        attr(ATTR_ID, GENL_ID),
        attr(ATTR_PORT, GENL_PORT),
        attr(ATTR_DATA, data),
    ]
    .into_iter()
    .collect();
    let genl = GenlmsghdrBuilder::default()
        .cmd(GENL_CMD)
        .version(GENL_VERSION)
        .attrs(attrs)
        .build()
        .expect("genlmsghdr");
    NlmsghdrBuilder::default()
        .nl_type(GENL_FAMILY)
        .nl_flags(NlmF::REQUEST)
        .nl_seq(seq)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .expect("nlmsghdr")
}

/// Serializes an already built message into `out` (neli writes into a
/// `Cursor<Vec<u8>>`, reused across iterations); returns its length.
pub fn neli_genl_encode(msg: &NeliGenl, out: &mut std::io::Cursor<Vec<u8>>) -> usize {
    use neli::ToBytes;
    out.set_position(0);
    out.get_mut().clear();
    msg.to_bytes(out).expect("serializes");
    out.get_ref().len()
}

/// Builds and serializes the message per message; returns its length.
pub fn neli_genl_encode_owned(out: &mut std::io::Cursor<Vec<u8>>, seq: u32, data: &[u8]) -> usize {
    let msg = neli_genl_build(seq, data);
    neli_genl_encode(&msg, out)
}

/// Deserializes the message and reads its fields through neli's attribute
/// handle (the name as a `String`, the binary attribute borrowed).
pub fn neli_genl_decode(datagram: &[u8]) -> u64 {
    use neli::FromBytes;
    let msg =
        NeliGenl::from_bytes(&mut std::io::Cursor::new(datagram)).expect("well-formed message");
    assert_eq!(*msg.nl_type(), GENL_FAMILY, "not our family");
    let genl = msg.get_payload().expect("a payload");
    let attrs = genl.attrs().get_attr_handle();
    let name: String = attrs.get_attr_payload_as_with_len(ATTR_NAME).expect("name");
    let id: u32 = attrs.get_attr_payload_as(ATTR_ID).expect("id");
    let port: u16 = attrs.get_attr_payload_as(ATTR_PORT).expect("port");
    let data: &[u8] = attrs
        .get_attr_payload_as_with_len_borrowed(ATTR_DATA)
        .expect("data");
    consume_genl(
        *msg.nl_type(),
        msg.nl_flags().bits(),
        *msg.nl_seq(),
        *genl.cmd(),
        *genl.version(),
        &name,
        id,
        port,
        data,
    )
}

// ---------------------------------------------------------------------------
// A generic netlink event: the rustnl family's `event`, as the kernel sends it
// ---------------------------------------------------------------------------

/// The event's numbered group, origin port id, sequence number (past u32,
/// so that `uint` takes 8 bytes) and timestamp.
pub const EVENT_GROUP: u32 = 3;
/// See [`EVENT_GROUP`].
pub const EVENT_ORIGIN: u32 = 4242;
/// See [`EVENT_GROUP`].
pub const EVENT_SEQ: u64 = (1 << 33) | 9;
/// See [`EVENT_GROUP`].
pub const EVENT_TS: u64 = (1 << 40) | 7;
/// The event's payload size.
pub const EVENT_PAYLOAD: usize = 64;

/// Writes the event the module multicasts (the kernel's own writer,
/// `proto::genl::AttrWriter`, in the spec's attribute order); returns its
/// length.
pub fn genl_event(out: &mut [u8], payload: &[u8]) -> usize {
    use rustnl::proto::genl::{genl_header, Attr, AttrWriter, Cmd};
    let start = NLMSG_HDRLEN + GENL_HDRLEN;
    out[NLMSG_HDRLEN..start].copy_from_slice(&genl_header(Cmd::Event));
    let mut w = AttrWriter::new(&mut out[start..]);
    w.put_u32(Attr::Group.raw(), EVENT_GROUP).expect("room");
    w.put_u32(Attr::OriginPortid.raw(), EVENT_ORIGIN)
        .expect("room");
    w.put_uint(Attr::EventSeq.raw(), EVENT_SEQ).expect("room");
    w.put_uint(Attr::TimestampNs.raw(), EVENT_TS).expect("room");
    w.put(Attr::Payload.raw(), payload).expect("room");
    let len = start + w.len();
    let header = NlMsgHdr {
        len: len as u32,
        ty: GENL_FAMILY,
        flags: 0,
        seq: 0,
        pid: 0,
    };
    out[..NLMSG_HDRLEN].copy_from_slice(&header.to_bytes());
    len
}

#[inline(always)]
fn consume_event(group: u32, origin: u32, seq: u64, ts: u64, payload: &[u8]) -> u64 {
    black_box((group, origin, seq, ts));
    black_box(payload);
    u64::from(group) + u64::from(origin) + seq + ts + payload.len() as u64
}

/// rustnl: the library's own decoder of the family's events
/// (`rustnl::decode_genl_event`, what `Subscription::genl` hands out).
pub fn rustnl_event_decode(datagram: &[u8]) -> u64 {
    let m = Messages::new(datagram)
        .next()
        .expect("one message")
        .expect("well-formed message");
    let e = rustnl::decode_genl_event(GENL_FAMILY, &m).expect("an event");
    consume_event(
        e.header.group,
        e.header.origin,
        e.header.seq,
        e.header.timestamp_ns,
        e.payload,
    )
}

/// neli: `FromBytes` and its attribute handle (the payload borrowed).
pub fn neli_event_decode(datagram: &[u8]) -> u64 {
    use neli::FromBytes;
    use rustnl::proto::genl::Attr;
    let msg = NeliGenl::from_bytes(&mut std::io::Cursor::new(datagram)).expect("well-formed");
    let genl = msg.get_payload().expect("a payload");
    let a = genl.attrs().get_attr_handle();
    let group: u32 = a.get_attr_payload_as(Attr::Group.raw()).expect("group");
    let origin: u32 = a
        .get_attr_payload_as(Attr::OriginPortid.raw())
        .expect("origin");
    let seq: u64 = a.get_attr_payload_as(Attr::EventSeq.raw()).expect("seq");
    let ts: u64 = a.get_attr_payload_as(Attr::TimestampNs.raw()).expect("ts");
    let payload: &[u8] = a
        .get_attr_payload_as_with_len_borrowed(Attr::Payload.raw())
        .expect("payload");
    consume_event(group, origin, seq, ts, payload)
}

/// The event's attributes for netlink-packet-generic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAttr {
    /// `group`: u32.
    Group(u32),
    /// `origin-portid`: u32.
    Origin(u32),
    /// `event-seq`: u64 here.
    Seq(u64),
    /// `timestamp-ns`: u64.
    Timestamp(u64),
    /// `payload`: bytes.
    Payload(Vec<u8>),
    /// Anything else.
    Other(DefaultNla),
}

impl Nla for EventAttr {
    fn value_len(&self) -> usize {
        match self {
            EventAttr::Group(_) | EventAttr::Origin(_) => 4,
            EventAttr::Seq(_) | EventAttr::Timestamp(_) => 8,
            EventAttr::Payload(p) => p.len(),
            EventAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use rustnl::proto::genl::Attr;
        match self {
            EventAttr::Group(_) => Attr::Group.raw(),
            EventAttr::Origin(_) => Attr::OriginPortid.raw(),
            EventAttr::Seq(_) => Attr::EventSeq.raw(),
            EventAttr::Timestamp(_) => Attr::TimestampNs.raw(),
            EventAttr::Payload(_) => Attr::Payload.raw(),
            EventAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            EventAttr::Group(v) | EventAttr::Origin(v) => {
                emit_u32(buffer, *v).expect("room for a u32")
            }
            EventAttr::Seq(v) | EventAttr::Timestamp(v) => {
                buffer[..8].copy_from_slice(&v.to_ne_bytes())
            }
            EventAttr::Payload(p) => buffer.copy_from_slice(p),
            EventAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for EventAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        use rustnl::proto::genl::Attr;
        let p = buf.value();
        let kind = buf.kind();
        Ok(if kind == Attr::Group.raw() {
            EventAttr::Group(parse_u32(p).context("invalid group")?)
        } else if kind == Attr::OriginPortid.raw() {
            EventAttr::Origin(parse_u32(p).context("invalid origin-portid")?)
        } else if kind == Attr::EventSeq.raw() {
            EventAttr::Seq(parse_u64(p).context("invalid event-seq")?)
        } else if kind == Attr::TimestampNs.raw() {
            EventAttr::Timestamp(parse_u64(p).context("invalid timestamp-ns")?)
        } else if kind == Attr::Payload.raw() {
            EventAttr::Payload(p.to_vec())
        } else {
            EventAttr::Other(DefaultNla::parse(buf)?)
        })
    }
}

/// The rustnl family's event for netlink-packet-generic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFamily {
    /// The command.
    pub cmd: u8,
    /// The attributes.
    pub nlas: Vec<EventAttr>,
}

impl GenlFamily for EventFamily {
    fn family_name() -> &'static str {
        "rustnl"
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        1
    }
}

impl Emitable for EventFamily {
    fn buffer_len(&self) -> usize {
        self.nlas.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.nlas.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for EventFamily {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let nlas = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| EventAttr::parse(&nla)))
            .collect::<Result<Vec<_>, _>>()
            .context("failed to parse attributes")?;
        Ok(EventFamily {
            cmd: header.cmd,
            nlas,
        })
    }
}

/// netlink-packet-generic: deserializes the event and reads its attributes.
pub fn npc_event_decode(datagram: &[u8]) -> u64 {
    let msg = NetlinkMessage::<GenlMessage<EventFamily>>::deserialize(datagram)
        .expect("well-formed message");
    let NetlinkPayload::InnerMessage(genl) = &msg.payload else {
        panic!("not a generic netlink message");
    };
    let (mut group, mut origin, mut seq, mut ts, mut payload) = (0, 0, 0, 0, &[][..]);
    for nla in &genl.payload.nlas {
        match nla {
            EventAttr::Group(v) => group = *v,
            EventAttr::Origin(v) => origin = *v,
            EventAttr::Seq(v) => seq = *v,
            EventAttr::Timestamp(v) => ts = *v,
            EventAttr::Payload(p) => payload = p,
            EventAttr::Other(_) => {}
        }
    }
    consume_event(group, origin, seq, ts, payload)
}

/// Asserts that the three decoders read the same event.
pub fn check_event_equivalence() {
    let mut buf = vec![0u8; OUT_BUF];
    let n = genl_event(&mut buf, &pattern(EVENT_PAYLOAD));
    let a = rustnl_event_decode(&buf[..n]);
    assert_eq!(
        a,
        neli_event_decode(&buf[..n]),
        "event: neli reads other values"
    );
    assert_eq!(
        a,
        npc_event_decode(&buf[..n]),
        "event: netlink-packet-generic reads other values"
    );
    assert_ne!(a, 0);
}

// ---------------------------------------------------------------------------
// Resolving a family: CTRL_CMD_GETFAMILY by name, the controller's answer
// ---------------------------------------------------------------------------

/// The family resolved, and the multicast group looked up in the answer.
pub const RESOLVE_NAME: &str = "rustnl";
/// See [`RESOLVE_NAME`].
pub const RESOLVE_GROUP: &str = "events";
/// The group's id in the answer.
pub const RESOLVE_GROUP_ID: u32 = 0x11;

/// The controller's answer for [`RESOLVE_NAME`] as a fake controller
/// (`rustnl::testing::serve_family`) sends it: id, version, sizes, six
/// operations, two multicast groups (`rustnl::genl::encode_family`).
pub fn controller_answer(seq: u32) -> Vec<u8> {
    use rustnl::genl::{encode_family, Family, Group, Op, GENL_ID_CTRL};
    let mut f = Family::new(RESOLVE_NAME, GENL_FAMILY);
    f.version = 1;
    f.max_attr = 15;
    f.ops = (1..=6).map(|id| Op { id, flags: 0x1a }).collect();
    f.mcast_groups = vec![
        Group {
            name: "heartbeat".into(),
            id: 0x10,
        },
        Group {
            name: RESOLVE_GROUP.into(),
            id: RESOLVE_GROUP_ID,
        },
    ];
    let body = encode_family(&f).expect("encodes");
    let mut b = MessageBuilder::new();
    b.push(GENL_ID_CTRL, 0, seq, &body).expect("fits");
    b.as_bytes().to_vec()
}

/// rustnl: the request with `MessageBuilder` and `AttrBuilder` (both
/// reused), the answer read zero-copy with `AttrTable` (what
/// `GenlSocket::family` reads, without building the owned `Family`).
pub fn rustnl_resolve(
    out: &mut MessageBuilder,
    attrs: &mut rustnl::attr::AttrBuilder,
    seq: u32,
    answer: &[u8],
) -> (usize, u64) {
    use rustnl::attr::AttrTable;
    use rustnl::genl::{
        GenlHeader, GenlMessage, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME,
        CTRL_ATTR_MCAST_GROUPS, CTRL_ATTR_MCAST_GRP_ID, CTRL_ATTR_MCAST_GRP_NAME,
        CTRL_CMD_GETFAMILY, CTRL_VERSION, GENL_ID_CTRL,
    };
    attrs.clear();
    attrs
        .put_str(CTRL_ATTR_FAMILY_NAME, RESOLVE_NAME)
        .expect("fits");
    let hdr = GenlHeader {
        cmd: CTRL_CMD_GETFAMILY,
        version: CTRL_VERSION,
    }
    .to_bytes();
    out.clear();
    out.push_parts(GENL_ID_CTRL, NLM_F_REQUEST, seq, &[&hdr, attrs.as_bytes()])
        .expect("fits");
    let sent = black_box(out.as_bytes()).len();
    let m = Messages::new(answer)
        .next()
        .expect("one")
        .expect("well-formed");
    let g = GenlMessage::parse(&m).expect("genl");
    let id = g.attrs.u16(CTRL_ATTR_FAMILY_ID).expect("ok").expect("id");
    let groups: AttrTable<'_> = g
        .attrs
        .nested(CTRL_ATTR_MCAST_GROUPS)
        .expect("ok")
        .expect("groups");
    let mut group = 0;
    for e in groups.iter() {
        let t = rustnl::attr::AttrExt::get_nested(&e.expect("well-formed"));
        if t.str(CTRL_ATTR_MCAST_GRP_NAME).expect("ok") == Some(RESOLVE_GROUP) {
            group = t.u32(CTRL_ATTR_MCAST_GRP_ID).expect("ok").expect("id");
        }
    }
    (sent, u64::from(id) + u64::from(group))
}

/// netlink-packet-generic: its controller types (`GenlCtrl`), the request
/// built per call, the answer deserialized whole.
pub fn npc_resolve(buf: &mut [u8], seq: u32, answer: &[u8]) -> (usize, u64) {
    use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, McastGrpAttrs};
    use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
    let genl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(RESOLVE_NAME.to_owned())],
    });
    let mut req = NetlinkMessage::new(npc_header(seq), NetlinkPayload::InnerMessage(genl));
    let sent = npc_put(&mut req, buf, 0);
    black_box(&buf[..sent]);
    let msg = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(answer).expect("well-formed");
    let NetlinkPayload::InnerMessage(g) = &msg.payload else {
        panic!("not a generic netlink message")
    };
    let (mut id, mut group) = (0, 0);
    for nla in &g.payload.nlas {
        match nla {
            GenlCtrlAttrs::FamilyId(v) => id = *v,
            GenlCtrlAttrs::McastGroups(list) => {
                for attrs in list {
                    let name = attrs.iter().find_map(|a| match a {
                        McastGrpAttrs::Name(n) => Some(n.as_str()),
                        _ => None,
                    });
                    if name == Some(RESOLVE_GROUP) {
                        for a in attrs {
                            if let McastGrpAttrs::Id(v) = a {
                                group = *v;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (sent, u64::from(id) + u64::from(group))
}

/// neli: the request with its builders (as `NlRouter::resolve_genl_family`
/// builds it), serialized into a reused `Cursor`; the answer with
/// `FromBytes` and its handles (as `resolve_nl_mcast_group` reads it).
pub fn neli_resolve(out: &mut std::io::Cursor<Vec<u8>>, seq: u32, answer: &[u8]) -> (usize, u64) {
    use neli::consts::genl::{CtrlAttr, CtrlAttrMcastGrp, CtrlCmd, Index};
    use neli::consts::nl::NlmF;
    use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder};
    use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
    use neli::types::GenlBuffer;
    use neli::{FromBytes, ToBytes};
    let attrs: GenlBuffer<CtrlAttr, neli::types::Buffer> = std::iter::once(
        NlattrBuilder::default()
            .nla_type(
                AttrTypeBuilder::default()
                    .nla_type(CtrlAttr::FamilyName)
                    .build()
                    .expect("type"),
            )
            .nla_payload(RESOLVE_NAME)
            .build()
            .expect("attribute"),
    )
    .collect();
    let genl = GenlmsghdrBuilder::default()
        .cmd(CtrlCmd::Getfamily)
        .version(2)
        .attrs(attrs)
        .build()
        .expect("genlmsghdr");
    let req = NlmsghdrBuilder::default()
        .nl_type(rustnl::genl::GENL_ID_CTRL)
        .nl_flags(NlmF::REQUEST)
        .nl_seq(seq)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .expect("nlmsghdr");
    out.set_position(0);
    out.get_mut().clear();
    req.to_bytes(out).expect("serializes");
    let sent = black_box(out.get_ref()).len();
    let msg = Nlmsghdr::<u16, Genlmsghdr<CtrlCmd, CtrlAttr>>::from_bytes(
        &mut std::io::Cursor::new(answer),
    )
    .expect("well-formed");
    let p = msg.get_payload().expect("payload");
    let handle = p.attrs().get_attr_handle();
    let id: u16 = handle.get_attr_payload_as(CtrlAttr::FamilyId).expect("id");
    let groups = handle
        .get_nested_attributes::<Index>(CtrlAttr::McastGroups)
        .expect("groups");
    let group = groups
        .iter()
        .find_map(|item| {
            let a = item.get_attr_handle::<CtrlAttrMcastGrp>().ok()?;
            let name = a
                .get_attr_payload_as_with_len::<String>(CtrlAttrMcastGrp::Name)
                .ok()?;
            if name == RESOLVE_GROUP {
                a.get_attr_payload_as::<u32>(CtrlAttrMcastGrp::Id).ok()
            } else {
                None
            }
        })
        .expect("the group");
    (sent, u64::from(id) + u64::from(group))
}

/// Asserts that the three resolve the same family and group, and write the
/// same request.
pub fn check_resolve_equivalence() {
    let answer = controller_answer(SEQ);
    let mut b = MessageBuilder::new();
    let mut w = rustnl::attr::AttrBuilder::new();
    let (n, a) = rustnl_resolve(&mut b, &mut w, SEQ, &answer);
    assert_eq!(a, u64::from(GENL_FAMILY) + u64::from(RESOLVE_GROUP_ID));
    let mut buf = vec![0u8; OUT_BUF];
    let (t, npc) = npc_resolve(&mut buf, SEQ, &answer);
    assert_eq!(
        npc, a,
        "resolve: netlink-packet-generic reads another family"
    );
    assert_eq!(
        &b.as_bytes()[..n],
        &buf[..t],
        "resolve: netlink-packet-generic request differs"
    );
    let mut cursor = std::io::Cursor::new(Vec::new());
    let (nb, neli) = neli_resolve(&mut cursor, SEQ, &answer);
    assert_eq!(neli, a, "resolve: neli reads another family");
    assert_eq!(
        &b.as_bytes()[..n],
        &cursor.get_ref()[..nb],
        "resolve: neli request differs"
    );
}

// ---------------------------------------------------------------------------
// Equivalence
// ---------------------------------------------------------------------------

/// Asserts that, for every case, both codecs (and every variant) produce
/// identical bytes and read back identical values. Panics otherwise.
pub fn check_equivalence() {
    let mut builder = MessageBuilder::with_capacity(OUT_BUF);
    let mut theirs = vec![0u8; OUT_BUF];
    let mut owned = vec![0u8; OUT_BUF];
    let mut cases: Vec<(&str, usize, usize)> = ECHO_CASES
        .iter()
        .map(|&(name, size)| (name, size, 1))
        .collect();
    cases.push(("batch_64", BATCH_PAYLOAD, BATCH_COUNT));
    for (name, size, count) in cases {
        let payload = pattern(size);
        let ours = rustnl_echo_encode(&mut builder, &payload, SEQ, count);
        let n = npc_echo_encode(&mut theirs, &payload, SEQ, count);
        let m = npc_echo_encode_owned(&mut owned, &payload, SEQ, count);
        assert_eq!(
            ours,
            &theirs[..n],
            "{name}: netlink-packet-core bytes differ"
        );
        assert_eq!(ours, &owned[..m], "{name}: owned variant bytes differ");
        assert_eq!(Messages::new(ours).count(), count, "{name}: message count");
        let a = rustnl_echo_decode(ours);
        assert_eq!(
            a,
            npc_echo_decode(&theirs[..n]),
            "{name}: decoded values differ"
        );
        assert_ne!(a, 0);
    }

    let data = pattern(GENL_DATA);
    let mut ours = vec![0u8; OUT_BUF];
    let n = rustnl_genl_encode(&mut ours, SEQ, &data);
    let mut msg = npc_genl_build(SEQ, &data);
    let t = npc_genl_encode(&mut msg, &mut theirs);
    let o = npc_genl_encode_owned(&mut owned, SEQ, &data);
    assert_eq!(
        &ours[..n],
        &theirs[..t],
        "genl: netlink-packet-generic bytes differ"
    );
    assert_eq!(&ours[..n], &owned[..o], "genl: owned variant bytes differ");
    let a = rustnl_genl_decode(&ours[..n]);
    assert_eq!(
        a,
        npc_genl_decode(&theirs[..t]),
        "genl: decoded values differ"
    );
    assert_ne!(a, 0);
    // The decoded representation is the one that was encoded.
    let back = NpcGenl::deserialize(&ours[..n]).expect("decodes");
    let NetlinkPayload::InnerMessage(genl) = back.payload else {
        panic!("not a generic netlink message")
    };
    let NetlinkPayload::InnerMessage(sent) = &msg.payload else {
        unreachable!()
    };
    assert_eq!(genl.payload, sent.payload, "genl: attributes differ");
    // neli: the same bytes, the same values.
    let mut cursor = std::io::Cursor::new(Vec::new());
    let nb = neli_genl_encode(&neli_genl_build(SEQ, &data), &mut cursor);
    assert_eq!(
        &ours[..n],
        &cursor.get_ref()[..nb],
        "genl: neli bytes differ"
    );
    let nb = neli_genl_encode_owned(&mut cursor, SEQ, &data);
    assert_eq!(
        &ours[..n],
        &cursor.get_ref()[..nb],
        "genl: neli owned bytes differ"
    );
    assert_eq!(
        a,
        neli_genl_decode(&ours[..n]),
        "genl: neli decoded values differ"
    );
    assert_eq!(GENL_NAME_Z, format!("{GENL_NAME}\0").as_bytes());
}
