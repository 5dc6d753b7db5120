// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The rustnl wire protocol: message type numbers, layouts and length checks.
//!
//! This file is compiled twice: as the `rustnl-shared` crate for userspace and,
//! through `#[path]`, as a module of the kernel module. It therefore uses only
//! `core`, contains no `unsafe`, and never panics on any input: every length is
//! checked before a slice is taken.
//!
//! Netlink headers and payload integers are in host byte order, as netlink
//! itself defines them.

use core::fmt;

// ---------------------------------------------------------------------------
// Netlink framing (uapi `linux/netlink.h`). Defined here rather than taken from
// `libc` or the kernel bindings so that both sides read the same constants.
// ---------------------------------------------------------------------------

/// Size of `struct nlmsghdr` (`NLMSG_HDRLEN`).
pub const NLMSG_HDRLEN: usize = 16;
/// Netlink messages and attributes are aligned to this many bytes.
pub const NLMSG_ALIGNTO: usize = 4;

/// Rounds `len` up to the netlink alignment (`NLMSG_ALIGN`).
///
/// Saturates instead of overflowing; callers only pass lengths that fit in a
/// datagram, for which the result is exact.
#[inline]
pub const fn nlmsg_align(len: usize) -> usize {
    len.saturating_add(NLMSG_ALIGNTO - 1) & !(NLMSG_ALIGNTO - 1)
}

/// `NLM_F_REQUEST`: the message is a request.
pub const NLM_F_REQUEST: u16 = 0x01;
/// `NLM_F_MULTI`: part of a multipart reply, ended by `NLMSG_DONE`.
pub const NLM_F_MULTI: u16 = 0x02;
/// `NLM_F_ACK`: the sender wants an acknowledgement.
pub const NLM_F_ACK: u16 = 0x04;
/// `NLM_F_ECHO`: echo this request.
pub const NLM_F_ECHO: u16 = 0x08;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`): a dump request.
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_CAPPED` (on `NLMSG_ERROR`): the original payload was cut off.
pub const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` (on `NLMSG_ERROR`): extended-ack attributes follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLM_F_DUMP_INTR`: set on the messages of a dump during which the
/// kernel's state changed (the dump may be inconsistent).
pub const NLM_F_DUMP_INTR: u16 = 0x10;

/// `NLMSG_NOOP`: nothing, to be ignored.
pub const NLMSG_NOOP: u16 = 0x1;
/// `NLMSG_ERROR`: an error or, with error 0, an acknowledgement.
pub const NLMSG_ERROR: u16 = 0x2;
/// `NLMSG_DONE`: end of a multipart reply.
pub const NLMSG_DONE: u16 = 0x3;
/// `NLMSG_OVERRUN`: data lost.
pub const NLMSG_OVERRUN: u16 = 0x4;
/// Types below this are netlink control messages.
pub const NLMSG_MIN_TYPE: u16 = 0x10;

/// Extended-ack attribute: human readable error text (NUL terminated).
pub const NLMSGERR_ATTR_MSG: u16 = 1;
/// Extended-ack attribute: offset of the offending attribute in the request.
pub const NLMSGERR_ATTR_OFFS: u16 = 2;
/// Extended-ack attribute: type of a missing required attribute (u32).
pub const NLMSGERR_ATTR_MISS_TYPE: u16 = 5;
/// Extended-ack attribute: offset of the nest that lacks it (u32).
pub const NLMSGERR_ATTR_MISS_NEST: u16 = 6;

/// Number of netlink protocol units (`MAX_LINKS`); valid units are `0..MAX_LINKS`.
pub const MAX_LINKS: u32 = 32;
/// The first unit uapi's `<linux/netlink.h>` leaves free: 0..=22 are the
/// kernel's own (`NETLINK_ROUTE` .. `NETLINK_SMC`, with 1 and 3 "unused",
/// 17 kept for `NETLINK_DM`), registered statically or by subsystems with
/// their own rules (`NETLINK_USERSOCK` lets anyone send and multicast).
/// rustnl creates only `FIRST_FREE_UNIT..MAX_LINKS`.
pub const FIRST_FREE_UNIT: u32 = 23;

// ---------------------------------------------------------------------------
// rustnl protocol constants.
// ---------------------------------------------------------------------------

/// Version of the rustnl protocol described in this file.
pub const PROTOCOL_VERSION: u32 = 1;
/// The netlink protocol unit rustnl uses unless told otherwise (`NETLINK_TEST`).
pub const DEFAULT_UNIT: u32 = 31;
/// Largest request payload accepted by default (module parameter `max_payload`).
pub const DEFAULT_MAX_PAYLOAD: usize = 65536;
/// Upper bound of the `max_payload` module parameter.
pub const MAX_PAYLOAD_LIMIT: usize = 1 << 20;
/// Number of multicast groups by default (module parameter `groups`).
pub const DEFAULT_GROUPS: u32 = 32;
/// Upper bound of the `groups` module parameter.
pub const MAX_GROUPS: u32 = 1024;
/// The group kernel-originated events (heartbeat, goodbye) go to.
pub const KERNEL_EVENT_GROUP: u32 = 1;
/// Shortest heartbeat period accepted (module parameter `heartbeat_ms`; 0 = off).
pub const MIN_HEARTBEAT_MS: u32 = 10;
/// Longest heartbeat period accepted.
pub const MAX_HEARTBEAT_MS: u32 = 3_600_000;

/// Defines a wire enum from one table: each variant's number and name, and
/// from them `COUNT`, `ALL` (table order), `MAX`, `from_raw`, `raw`, `name`
/// and `name_nul`. Every enum of the protocol (message types, commands,
/// attributes, counter attributes, multicast groups) is written this way.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $repr:ident {
            $( $(#[$vmeta:meta])* $var:ident = $val:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vmeta])* $var = $val, )+
        }

        impl $name {
            /// How many values there are.
            pub const COUNT: usize = [$($text),+].len();
            /// Every value, in table order.
            pub const ALL: [$name; Self::COUNT] = [$($name::$var),+];
            /// The largest number.
            pub const MAX: $repr = {
                let mut max = 0;
                let mut i = 0;
                while i < Self::COUNT {
                    if Self::ALL[i] as $repr > max {
                        max = Self::ALL[i] as $repr;
                    }
                    i += 1;
                }
                max
            };

            /// The value numbered `raw`, if any.
            pub const fn from_raw(raw: $repr) -> Option<$name> {
                match raw {
                    $( $val => Some($name::$var), )+
                    _ => None,
                }
            }

            /// The number carried on the wire.
            pub const fn raw(self) -> $repr {
                self as $repr
            }

            /// The name (see the type's documentation for which convention).
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$var => $text, )+
                }
            }

            /// [`name`](Self::name) NUL terminated, as C tables hold names
            /// (`genl_multicast_group.name`).
            pub const fn name_nul(self) -> &'static [u8] {
                match self {
                    $( $name::$var => concat!($text, "\0").as_bytes(), )+
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// rustnl message types. Each number is written here and nowhere else;
    /// names are lower case, as the CLI and logs use them.
    pub enum MsgType: u16 {
        /// Request: the payload (raw bytes after the netlink header) is sent back
        /// to the sender unchanged, with the request's sequence number, in a
        /// message of the same type.
        Echo = 0x10 => "echo",
        /// Request: [`BroadcastHdr`] then the payload. The kernel multicasts an
        /// [`MsgType::Event`] carrying the payload to the group and answers with a
        /// [`BroadcastResult`] in a message of this type.
        Broadcast = 0x11 => "broadcast",
        /// Multicast: [`EventHdr`] then the payload of a BROADCAST request.
        Event = 0x12 => "event",
        /// Multicast to [`KERNEL_EVENT_GROUP`] every `heartbeat_ms`: [`EventHdr`],
        /// then the text "Greeting from kernel!".
        Heartbeat = 0x13 => "heartbeat",
        /// Multicast to [`KERNEL_EVENT_GROUP`] when the module unloads: [`EventHdr`]
        /// with an empty payload.
        Goodbye = 0x14 => "goodbye",
        /// Request, empty payload: answered with [`MsgType::Info`].
        GetInfo = 0x15 => "get_info",
        /// Answer to GET_INFO: [`Info`].
        Info = 0x16 => "info",
    }
}

// ---------------------------------------------------------------------------
// The netlink message header.
// ---------------------------------------------------------------------------

/// `struct nlmsghdr`, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NlMsgHdr {
    /// Length of the message including this header.
    pub len: u32,
    /// Message type.
    pub ty: u16,
    /// `NLM_F_*` flags.
    pub flags: u16,
    /// Sequence number chosen by the requester.
    pub seq: u32,
    /// Port id of the sender (0 for the kernel). Never trusted by rustnl.
    pub pid: u32,
}

impl NlMsgHdr {
    /// Encoded size (`NLMSG_HDRLEN`).
    pub const LEN: usize = NLMSG_HDRLEN;

    /// Decodes the header at the start of `buf`; `None` if `buf` is shorter
    /// than a header. Does not validate `len`.
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<NlMsgHdr> {
        let (h, _) = buf.split_first_chunk::<NLMSG_HDRLEN>()?;
        Some(NlMsgHdr {
            len: u32::from_ne_bytes([h[0], h[1], h[2], h[3]]),
            ty: u16::from_ne_bytes([h[4], h[5]]),
            flags: u16::from_ne_bytes([h[6], h[7]]),
            seq: u32::from_ne_bytes([h[8], h[9], h[10], h[11]]),
            pid: u32::from_ne_bytes([h[12], h[13], h[14], h[15]]),
        })
    }

    /// Encodes the header.
    #[inline]
    pub fn to_bytes(self) -> [u8; NLMSG_HDRLEN] {
        // Fixed-size pieces joined by value: plain stores (see `Writer`).
        let [l0, l1, l2, l3] = self.len.to_ne_bytes();
        let [t0, t1] = self.ty.to_ne_bytes();
        let [f0, f1] = self.flags.to_ne_bytes();
        let [s0, s1, s2, s3] = self.seq.to_ne_bytes();
        let [p0, p1, p2, p3] = self.pid.to_ne_bytes();
        [l0, l1, l2, l3, t0, t1, f0, f1, s0, s1, s2, s3, p0, p1, p2, p3]
    }

    /// Whether all of `flags` are set.
    #[inline]
    pub const fn has(&self, flags: u16) -> bool {
        self.flags & flags == flags
    }
}

// ---------------------------------------------------------------------------
// Splitting a datagram into messages.
// ---------------------------------------------------------------------------

/// One well-formed message of a datagram: its header and its payload, borrowed
/// from the datagram (zero copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The decoded header; `header.len` is within the datagram.
    pub header: NlMsgHdr,
    /// The bytes after the header, `header.len - NLMSG_HDRLEN` of them.
    pub payload: &'a [u8],
    /// The whole message: header followed by payload.
    pub bytes: &'a [u8],
    /// Offset of the message within the datagram.
    pub offset: usize,
}

/// Why the rest of a datagram could not be split into messages. After one of
/// these no further message can be located, so iteration stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer bytes than a header remain.
    TruncatedHeader {
        /// Offset of the stray bytes.
        offset: usize,
        /// How many bytes remain.
        available: usize,
    },
    /// `nlmsg_len` is smaller than the header itself.
    LengthTooSmall {
        /// Offset of the message.
        offset: usize,
        /// The header as received.
        header: NlMsgHdr,
    },
    /// `nlmsg_len` runs past the end of the datagram.
    LengthPastEnd {
        /// Offset of the message.
        offset: usize,
        /// The header as received.
        header: NlMsgHdr,
        /// How many bytes remain from `offset`.
        available: usize,
    },
}

impl Malformed {
    /// The header, where one could be read.
    pub fn header(&self) -> Option<NlMsgHdr> {
        match *self {
            Malformed::TruncatedHeader { .. } => None,
            Malformed::LengthTooSmall { header, .. } | Malformed::LengthPastEnd { header, .. } => {
                Some(header)
            }
        }
    }

    /// Offset of the malformed part within the datagram.
    pub fn offset(&self) -> usize {
        match *self {
            Malformed::TruncatedHeader { offset, .. }
            | Malformed::LengthTooSmall { offset, .. }
            | Malformed::LengthPastEnd { offset, .. } => offset,
        }
    }
}

impl core::error::Error for Malformed {}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Malformed::TruncatedHeader { offset, available } => write!(
                f,
                "{available} stray bytes at offset {offset}, shorter than a netlink header"
            ),
            Malformed::LengthTooSmall { header, .. } => {
                write!(
                    f,
                    "nlmsg_len {} is shorter than the netlink header",
                    header.len
                )
            }
            Malformed::LengthPastEnd {
                header, available, ..
            } => write!(
                f,
                "nlmsg_len {} exceeds the {available} bytes left in the datagram",
                header.len
            ),
        }
    }
}

/// Position in a stream of netlink TLVs (messages or attributes): both walk
/// 4-byte-aligned length-prefixed records and stop at the first bad one.
#[derive(Clone, Debug)]
struct TlvCursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> TlvCursor<'a> {
    /// The offset and the bytes from the current position, or `None` at the
    /// end. Moves to the end: unless [`TlvCursor::advance`] follows (the
    /// record was good), iteration is over.
    #[inline]
    fn take(&mut self) -> Option<(usize, &'a [u8])> {
        let offset = self.pos;
        let rest = self.buf.get(offset..).filter(|r| !r.is_empty())?;
        self.pos = self.buf.len();
        Some((offset, rest))
    }

    /// After a good record of `len` bytes at `offset`: the next one starts at
    /// the aligned end (a short final pad is fine).
    #[inline]
    fn advance(&mut self, offset: usize, len: usize) {
        self.pos = core::cmp::min(offset.saturating_add(nlmsg_align(len)), self.buf.len());
    }
}

/// Iterator over the messages of one datagram.
///
/// Yields each well-formed message in order; on the first malformed one it
/// yields that error and stops. Never panics and never reads out of bounds,
/// whatever the input.
#[derive(Clone, Debug)]
pub struct Messages<'a> {
    cursor: TlvCursor<'a>,
}

impl<'a> Messages<'a> {
    /// Starts splitting `datagram`.
    #[inline]
    pub fn new(datagram: &'a [u8]) -> Self {
        Messages {
            cursor: TlvCursor {
                buf: datagram,
                pos: 0,
            },
        }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, Malformed>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (offset, rest) = self.cursor.take()?;
        let Some(header) = NlMsgHdr::parse(rest) else {
            return Some(Err(Malformed::TruncatedHeader {
                offset,
                available: rest.len(),
            }));
        };
        let len = header.len as usize;
        if len < NLMSG_HDRLEN {
            return Some(Err(Malformed::LengthTooSmall { offset, header }));
        }
        let (Some(bytes), Some(payload)) = (rest.get(..len), rest.get(NLMSG_HDRLEN..len)) else {
            return Some(Err(Malformed::LengthPastEnd {
                offset,
                header,
                available: rest.len(),
            }));
        };
        self.cursor.advance(offset, len);
        Some(Ok(Message {
            header,
            payload,
            bytes,
            offset,
        }))
    }
}

// ---------------------------------------------------------------------------
// Fixed layouts of the structured messages.
//
// Each starts with `version: u16` and `hdr_len: u16`, the size of the fixed
// part as its writer laid it out; the payload (if any) starts at `hdr_len`.
// Readers take the fields they know and skip to `hdr_len`, so a later version
// can append fields without breaking older readers, and a reader refuses a
// header shorter than the version-1 layout. All integers are host order;
// every layout has explicit sizes and 8-byte alignment for its u64s.
// ---------------------------------------------------------------------------

/// Why a fixed layout could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// Fewer bytes than the version-1 layout.
    Short {
        /// Bytes the layout needs.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// Version 0 (never valid).
    BadVersion,
    /// `hdr_len` is shorter than the version-1 layout or longer than the
    /// message.
    BadHdrLen {
        /// The `hdr_len` field.
        hdr_len: u16,
        /// The version-1 size.
        min: usize,
        /// Bytes present.
        have: usize,
    },
}

impl core::error::Error for LayoutError {}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::Short { need, have } => {
                write!(f, "header needs {need} bytes, message has {have}")
            }
            LayoutError::BadVersion => f.write_str("header version 0 is invalid"),
            LayoutError::BadHdrLen { hdr_len, min, have } => {
                write!(f, "hdr_len {hdr_len} outside {min}..={have}")
            }
        }
    }
}

/// Reads native-endian integers from a slice already checked to be long
/// enough; a short read yields 0 rather than a panic.
#[derive(Clone, Copy)]
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u16(self, off: usize) -> u16 {
        self.0
            .get(off..)
            .and_then(|b| b.first_chunk::<2>())
            .map_or(0, |b| u16::from_ne_bytes(*b))
    }
    fn u32(self, off: usize) -> u32 {
        self.0
            .get(off..)
            .and_then(|b| b.first_chunk::<4>())
            .map_or(0, |b| u32::from_ne_bytes(*b))
    }
    fn u64(self, off: usize) -> u64 {
        self.0
            .get(off..)
            .and_then(|b| b.first_chunk::<8>())
            .map_or(0, |b| u64::from_ne_bytes(*b))
    }
}

/// Writes native-endian integers into a fixed array.
///
/// Each field is an assignment of a fixed-size array (`[u8; M]`), which
/// compiles to plain stores. A slice's `copy_from_slice` would not: the
/// kernel's build of `core` keeps it out of line, a call and a `memcpy` per
/// field even at a constant length (`make bench-profile`: a classic
/// BROADCAST's event header and answer paid eleven of them, ~400
/// instructions, 1.09x the C module's time at fan-out N = 1).
struct Writer<const N: usize>([u8; N]);

impl<const N: usize> Writer<N> {
    /// Starts a layout of `N` bytes: version and `hdr_len = N`.
    #[inline]
    fn new() -> Self {
        let mut w = Writer([0; N]);
        w.put(0, (PROTOCOL_VERSION as u16).to_ne_bytes());
        w.put(2, (N as u16).to_ne_bytes());
        w
    }
    #[inline]
    fn put<const M: usize>(&mut self, off: usize, bytes: [u8; M]) -> &mut Self {
        if let Some(dst) = self.0.get_mut(off..).and_then(|s| s.first_chunk_mut::<M>()) {
            *dst = bytes;
        }
        self
    }
    #[inline]
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.put(off, v.to_ne_bytes())
    }
    #[inline]
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.put(off, v.to_ne_bytes())
    }
}

/// Splits `payload` into its fixed part (at least `min` bytes, `hdr_len` of
/// them) and the rest.
fn split_fixed(payload: &[u8], min: usize) -> Result<(Fields<'_>, &[u8]), LayoutError> {
    let have = payload.len();
    if have < min {
        return Err(LayoutError::Short { need: min, have });
    }
    let f = Fields(payload);
    if f.u16(0) == 0 {
        return Err(LayoutError::BadVersion);
    }
    let hdr_len = f.u16(2);
    let (Some(fixed), Some(rest)) = (
        payload.get(..hdr_len as usize),
        payload.get(hdr_len as usize..),
    ) else {
        return Err(LayoutError::BadHdrLen { hdr_len, min, have });
    };
    if (hdr_len as usize) < min {
        return Err(LayoutError::BadHdrLen { hdr_len, min, have });
    }
    Ok((Fields(fixed), rest))
}

/// BROADCAST request header; the payload to multicast follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BroadcastHdr {
    /// Multicast group, `1..=groups`.
    pub group: u32,
}

impl BroadcastHdr {
    /// Version-1 size.
    pub const LEN: usize = 8;

    /// Encodes the header.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        Writer::<{ Self::LEN }>::new().u32(4, self.group).0
    }

    /// Reads the header and returns it with the payload that follows.
    pub fn parse(payload: &[u8]) -> Result<(BroadcastHdr, &[u8]), LayoutError> {
        let (f, rest) = split_fixed(payload, Self::LEN)?;
        Ok((BroadcastHdr { group: f.u32(4) }, rest))
    }
}

/// The kernel's answer to BROADCAST.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BroadcastResult {
    /// The group broadcast to.
    pub group: u32,
    /// Whether at least one listener received the event.
    pub delivered: bool,
    /// Whether delivery failed for some listener (its queue was full).
    pub delivery_failed: bool,
    /// Sequence number of the EVENT in this network namespace.
    pub event_seq: u64,
}

impl BroadcastResult {
    /// Version-1 size.
    pub const LEN: usize = 24;

    /// Encodes the answer.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let flags = u32::from(self.delivered) | (u32::from(self.delivery_failed) << 1);
        Writer::<{ Self::LEN }>::new()
            .u32(4, self.group)
            .u32(8, flags)
            .u64(16, self.event_seq)
            .0
    }

    /// Reads the answer.
    pub fn parse(payload: &[u8]) -> Result<BroadcastResult, LayoutError> {
        let (f, _) = split_fixed(payload, Self::LEN)?;
        let flags = f.u32(8);
        Ok(BroadcastResult {
            group: f.u32(4),
            delivered: flags & 1 != 0,
            delivery_failed: flags & 2 != 0,
            event_seq: f.u64(16),
        })
    }
}

/// Header of the multicast messages (EVENT, HEARTBEAT, GOODBYE); the payload
/// follows it.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHdr {
    /// The group it was sent to.
    pub group: u32,
    /// Port id of the BROADCAST's sender; 0 for kernel-originated events.
    pub origin: u32,
    /// Sequence number among the events of this network namespace (from 1).
    pub seq: u64,
    /// `CLOCK_REALTIME` when the kernel sent it, in nanoseconds.
    pub timestamp_ns: u64,
}

impl EventHdr {
    /// Version-1 size.
    pub const LEN: usize = 32;

    /// Encodes the header.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        Writer::<{ Self::LEN }>::new()
            .u32(4, self.group)
            .u32(8, self.origin)
            .u64(16, self.seq)
            .u64(24, self.timestamp_ns)
            .0
    }

    /// Reads the header and returns it with the payload that follows.
    pub fn parse(payload: &[u8]) -> Result<(EventHdr, &[u8]), LayoutError> {
        let (f, rest) = split_fixed(payload, Self::LEN)?;
        Ok((
            EventHdr {
                group: f.u32(4),
                origin: f.u32(8),
                seq: f.u64(16),
                timestamp_ns: f.u64(24),
            },
            rest,
        ))
    }
}

/// The counters, one row each: the Rust field of [`Counters`], the variant
/// and id of the spec's attribute (`genl::CounterAttr`), and the spec's name.
/// Every other name is derived: the JSON name is the spec's with `_` for `-`
/// ([`Counters::JSON_NAMES`]). The table is handed to the macro `$then`,
/// which defines what it needs from it: [`Counters`] here, `CounterAttr` in
/// `genl.rs`.
macro_rules! counter_table {
    ($then:ident) => {
        $then! {
            /// Messages received (well-formed or not).
            requests: Requests = 1 => "requests",
            /// ECHO requests answered.
            echoes: Echoes = 2 => "echoes",
            /// BROADCAST requests carried out.
            broadcasts: Broadcasts = 3 => "broadcasts",
            /// Events (EVENT, HEARTBEAT, GOODBYE) that reached at least one listener.
            events_sent: EventsSent = 4 => "events-sent",
            /// Requests refused with `EINVAL` ([`ErrorKind::Invalid`]).
            invalid: ErrorsInvalid = 5 => "errors-invalid",
            /// Requests refused with `EOPNOTSUPP` ([`ErrorKind::NotSupported`]).
            not_supported: ErrorsNotSupported = 6 => "errors-not-supported",
            /// Requests refused with `EMSGSIZE` ([`ErrorKind::TooLarge`]).
            too_large: ErrorsTooLarge = 7 => "errors-too-large",
            /// Requests refused with `EPERM` ([`ErrorKind::NotPermitted`]).
            not_permitted: ErrorsNotPermitted = 8 => "errors-not-permitted",
            /// Deliveries that failed: a listener's or requester's queue was full
            /// (it sees `ENOBUFS`), or no buffer could be allocated.
            delivery_failures: DeliveryFailures = 9 => "delivery-failures",
            /// Events sent while nobody listened on their group.
            no_listeners: NoListeners = 10 => "no-listeners",
        }
    };
}
pub(crate) use counter_table;

/// `name` with `_` for `-`, as an array of `N` bytes (`N` = `name.len()`).
const fn underscored<const N: usize>(name: &str) -> [u8; N] {
    let from = name.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < from.len() {
        out[i] = if from[i] == b'-' { b'_' } else { from[i] };
        i += 1;
    }
    out
}

/// Defines [`Counters`] from [`counter_table`].
macro_rules! define_counters {
    ($( $(#[$doc:meta])* $field:ident: $attr:ident = $id:literal => $ynl:literal, )+) => {
        /// Per-network-namespace counters, as reported by INFO. In JSON each
        /// is named as in the spec with `_` for `-` ([`Counters::JSON_NAMES`]).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$doc])* pub $field: u64, )+
        }

        impl Counters {
            /// Number of counters.
            pub const COUNT: usize = [$($ynl),+].len();

            /// The JSON name of each counter, in wire order: the spec's name
            /// with `_` for `-`.
            pub const JSON_NAMES: [&'static str; Self::COUNT] = [$({
                const BYTES: [u8; $ynl.len()] = underscored($ynl);
                const NAME: &str = match core::str::from_utf8(&BYTES) {
                    Ok(name) => name,
                    Err(_) => $ynl,
                };
                NAME
            }),+];

            /// The counters in wire order.
            pub const fn to_array(self) -> [u64; Self::COUNT] {
                [$(self.$field),+]
            }

            /// The counters from wire order.
            pub const fn from_array(a: [u64; Self::COUNT]) -> Counters {
                let [$($field),+] = a;
                Counters { $($field),+ }
            }
        }
    };
}
counter_table!(define_counters);

#[cfg(feature = "serde")]
impl serde::Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Counters", Self::COUNT)?;
        for (name, value) in Self::JSON_NAMES.iter().zip(self.to_array()) {
            out.serialize_field(name, &value)?;
        }
        out.end()
    }
}

/// The answer to GET_INFO: the module's configuration and this network
/// namespace's counters.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// Protocol version of the module.
    #[cfg_attr(feature = "serde", serde(rename = "protocol_version"))]
    pub version: u16,
    /// Netlink protocol unit.
    pub unit: u32,
    /// Number of multicast groups.
    pub groups: u32,
    /// Largest accepted request payload.
    pub max_payload: u32,
    /// Heartbeat period in ms (0: off).
    pub heartbeat_ms: u32,
    /// Whether anyone may BROADCAST.
    pub open_broadcast: bool,
    /// This namespace's counters.
    pub counters: Counters,
}

impl Info {
    /// Offset of the counters.
    const COUNTERS_AT: usize = 24;
    /// Version-1 size.
    pub const LEN: usize = Self::COUNTERS_AT + 8 * Counters::COUNT;

    /// Encodes the answer (its `version` field is [`PROTOCOL_VERSION`]).
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut w = Writer::<{ Self::LEN }>::new();
        w.u32(4, self.unit)
            .u32(8, self.groups)
            .u32(12, self.max_payload)
            .u32(16, self.heartbeat_ms)
            .u32(20, u32::from(self.open_broadcast));
        for (i, c) in self.counters.to_array().iter().enumerate() {
            w.u64(Self::COUNTERS_AT + 8 * i, *c);
        }
        w.0
    }

    /// Reads the answer.
    pub fn parse(payload: &[u8]) -> Result<Info, LayoutError> {
        let (f, _) = split_fixed(payload, Self::LEN)?;
        let mut c = [0u64; Counters::COUNT];
        for (i, v) in c.iter_mut().enumerate() {
            *v = f.u64(Self::COUNTERS_AT + 8 * i);
        }
        Ok(Info {
            version: f.u16(0),
            unit: f.u32(4),
            groups: f.u32(8),
            max_payload: f.u32(12),
            heartbeat_ms: f.u32(16),
            open_broadcast: f.u32(20) != 0,
            counters: Counters::from_array(c),
        })
    }
}

// ---------------------------------------------------------------------------
// Request validation: the kernel decides with this, userspace explains with it.
// ---------------------------------------------------------------------------

/// Broad class of a request error; each maps to one errno on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed or short (`EINVAL`).
    Invalid,
    /// Unknown message type (`EOPNOTSUPP`).
    NotSupported,
    /// Payload larger than allowed (`EMSGSIZE`).
    TooLarge,
    /// Sender lacks the privilege (`EPERM`).
    NotPermitted,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::Invalid,
        ErrorKind::NotSupported,
        ErrorKind::TooLarge,
        ErrorKind::NotPermitted,
    ];

    /// The errno a refusal of this kind is answered with, as a positive
    /// number in Linux's generic numbering (`asm-generic/errno*.h`, the
    /// architectures the module builds for): the kernel module turns it
    /// into its `Error`, userspace compares it with `nlmsgerr.error`.
    pub const fn errno(self) -> i32 {
        match self {
            ErrorKind::Invalid => 22,      // EINVAL
            ErrorKind::NotSupported => 95, // EOPNOTSUPP
            ErrorKind::TooLarge => 90,     // EMSGSIZE
            ErrorKind::NotPermitted => 1,  // EPERM
        }
    }
}

/// The limits a request is checked against (the module's parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of an ECHO or BROADCAST.
    pub max_payload: usize,
    /// Number of multicast groups; valid groups are `1..=groups`.
    pub groups: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: DEFAULT_MAX_PAYLOAD,
            groups: DEFAULT_GROUPS,
        }
    }
}

/// What a well-formed message asks of rustnl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// `NLMSG_NOOP`: nothing to do (an ack if asked for).
    Noop,
    /// Echo `payload` back to the sender.
    Echo {
        /// Bytes to send back.
        payload: &'a [u8],
    },
    /// Multicast `payload` to `group` (the sender's privilege is checked by
    /// the kernel, which alone knows it).
    Broadcast {
        /// A valid group.
        group: u32,
        /// Bytes to multicast.
        payload: &'a [u8],
    },
    /// Report configuration and counters.
    GetInfo,
}

/// Why a well-formed netlink message is not an acceptable rustnl request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The message lacks `NLM_F_REQUEST`.
    NotARequest {
        /// Its type.
        ty: u16,
    },
    /// A netlink control type other than `NLMSG_NOOP`.
    ControlMessage {
        /// Its type.
        ty: u16,
    },
    /// A dump request (`NLM_F_DUMP`): rustnl answers each request with
    /// one message, never a multipart dump, so a dump reader would wait for
    /// an `NLMSG_DONE` that never comes. Refused like the generic netlink
    /// core refuses a dump of an operation without `dumpit`.
    DumpNotSupported {
        /// Its type.
        ty: u16,
    },
    /// A type rustnl does not know.
    UnknownType {
        /// Its type.
        ty: u16,
    },
    /// A type only the kernel sends.
    KernelOnly {
        /// The type.
        ty: MsgType,
    },
    /// The payload exceeds the configured maximum.
    PayloadTooLarge {
        /// Payload length received.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A fixed header that does not decode.
    BadLayout {
        /// The message type.
        ty: MsgType,
        /// What is wrong.
        error: LayoutError,
    },
    /// A group outside `1..=groups`.
    BadGroup {
        /// The group asked for.
        group: u32,
        /// The number of groups.
        groups: u32,
    },
    /// A payload where none is allowed.
    UnexpectedPayload {
        /// The message type.
        ty: MsgType,
    },
    /// The sender lacks `CAP_NET_ADMIN` for BROADCAST (decided by the kernel).
    BroadcastNotPermitted,
}

impl RequestError {
    /// The class (and so the errno) of this error.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            RequestError::NotARequest { .. }
            | RequestError::ControlMessage { .. }
            | RequestError::BadLayout { .. }
            | RequestError::BadGroup { .. }
            | RequestError::UnexpectedPayload { .. } => ErrorKind::Invalid,
            RequestError::DumpNotSupported { .. }
            | RequestError::UnknownType { .. }
            | RequestError::KernelOnly { .. } => ErrorKind::NotSupported,
            RequestError::PayloadTooLarge { .. } => ErrorKind::TooLarge,
            RequestError::BroadcastNotPermitted => ErrorKind::NotPermitted,
        }
    }
}

impl core::error::Error for RequestError {}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RequestError::NotARequest { ty } => {
                write!(f, "message type {ty:#x} lacks NLM_F_REQUEST")
            }
            RequestError::ControlMessage { ty } => {
                write!(f, "netlink control type {ty:#x} is not a request")
            }
            RequestError::DumpNotSupported { ty } => write!(
                f,
                "message type {ty:#x}: NLM_F_DUMP is not supported (one answer per request)"
            ),
            RequestError::UnknownType { ty } => write!(f, "unknown message type {ty:#x}"),
            RequestError::KernelOnly { ty } => write!(
                f,
                "message type {:#x} ({}) is sent by the kernel, not a request",
                ty.raw(),
                ty.name()
            ),
            RequestError::PayloadTooLarge { len, max } => {
                let unit = if len == 1 { "byte" } else { "bytes" };
                write!(f, "payload of {len} {unit} exceeds max_payload ({max})")
            }
            RequestError::BadLayout { ty, error } => write!(f, "bad {} header: {error}", ty.name()),
            RequestError::BadGroup { group, groups } => {
                write!(f, "group {group} is not in 1..={groups}")
            }
            RequestError::UnexpectedPayload { ty } => write!(f, "{} takes no payload", ty.name()),
            RequestError::BroadcastNotPermitted => {
                f.write_str("broadcast needs CAP_NET_ADMIN (or open_broadcast=1)")
            }
        }
    }
}

/// Decides what a well-formed message asks for, or why it is refused.
#[inline]
pub fn classify<'a>(msg: &Message<'a>, limits: &Limits) -> Result<Action<'a>, RequestError> {
    let ty = msg.header.ty;
    if !msg.header.has(NLM_F_REQUEST) {
        return Err(RequestError::NotARequest { ty });
    }
    if msg.header.flags & NLM_F_DUMP == NLM_F_DUMP {
        return Err(RequestError::DumpNotSupported { ty });
    }
    if ty < NLMSG_MIN_TYPE {
        return if ty == NLMSG_NOOP {
            Ok(Action::Noop)
        } else {
            Err(RequestError::ControlMessage { ty })
        };
    }
    let Some(kind) = MsgType::from_raw(ty) else {
        return Err(RequestError::UnknownType { ty });
    };
    let too_large = |len: usize| {
        if len > limits.max_payload {
            Err(RequestError::PayloadTooLarge {
                len,
                max: limits.max_payload,
            })
        } else {
            Ok(())
        }
    };
    match kind {
        MsgType::Echo => {
            too_large(msg.payload.len())?;
            Ok(Action::Echo {
                payload: msg.payload,
            })
        }
        MsgType::Broadcast => {
            let (hdr, payload) = BroadcastHdr::parse(msg.payload)
                .map_err(|error| RequestError::BadLayout { ty: kind, error })?;
            if hdr.group == 0 || hdr.group > limits.groups {
                return Err(RequestError::BadGroup {
                    group: hdr.group,
                    groups: limits.groups,
                });
            }
            too_large(payload.len())?;
            Ok(Action::Broadcast {
                group: hdr.group,
                payload,
            })
        }
        MsgType::GetInfo if msg.payload.is_empty() => Ok(Action::GetInfo),
        MsgType::GetInfo => Err(RequestError::UnexpectedPayload { ty: kind }),
        MsgType::Event | MsgType::Heartbeat | MsgType::Goodbye | MsgType::Info => {
            Err(RequestError::KernelOnly { ty: kind })
        }
    }
}

// ---------------------------------------------------------------------------
// Netlink attributes (`struct nlattr`), as used by extended acks.
// ---------------------------------------------------------------------------

/// Size of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;
/// `NLA_F_NESTED`, set in the type of an attribute holding attributes.
pub const NLA_F_NESTED: u16 = 1 << 15;
/// `NLA_F_NET_BYTEORDER`: the payload is in network byte order.
pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
/// The bits of `nla_type` that are the type (`NLA_TYPE_MASK`).
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// One attribute: its type (flags masked off) and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    /// `nla_type` without the `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits.
    pub ty: u16,
    /// The payload, `nla_len - NLA_HDRLEN` bytes.
    pub payload: &'a [u8],
}

/// A malformed attribute stream (length too small or past the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadAttr {
    /// Offset of the bad attribute within the stream.
    pub offset: usize,
}

impl core::error::Error for BadAttr {}

impl fmt::Display for BadAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed netlink attribute at offset {}", self.offset)
    }
}

/// Iterator over a stream of netlink attributes; stops at the first malformed
/// one after yielding its error. Never panics.
#[derive(Clone, Debug)]
pub struct Attrs<'a> {
    cursor: TlvCursor<'a>,
}

impl<'a> Attrs<'a> {
    /// Starts reading attributes from `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs {
            cursor: TlvCursor { buf, pos: 0 },
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, BadAttr>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (offset, rest) = self.cursor.take()?;
        let bad = Some(Err(BadAttr { offset }));
        let Some((h, _)) = rest.split_first_chunk::<NLA_HDRLEN>() else {
            return bad;
        };
        let len = u16::from_ne_bytes([h[0], h[1]]) as usize;
        let ty = u16::from_ne_bytes([h[2], h[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN {
            return bad;
        }
        let Some(payload) = rest.get(NLA_HDRLEN..len) else {
            return bad;
        };
        self.cursor.advance(offset, len);
        Some(Ok(Attr { ty, payload }))
    }
}

/// Appends one attribute (header, payload, zeroed padding) to `out` at `*pos`.
/// Returns `None`, writing nothing, if it does not fit or is too long for
/// `nla_len`.
#[inline]
pub fn put_attr(out: &mut [u8], pos: &mut usize, ty: u16, payload: &[u8]) -> Option<()> {
    let len = NLA_HDRLEN.checked_add(payload.len())?;
    let len16 = u16::try_from(len).ok()?;
    let end = pos.checked_add(nlmsg_align(len))?;
    let dst = out.get_mut(*pos..end)?;
    let (hdr, rest) = dst.split_at_mut(NLA_HDRLEN);
    hdr[..2].copy_from_slice(&len16.to_ne_bytes());
    hdr[2..].copy_from_slice(&ty.to_ne_bytes());
    let (body, pad) = rest.split_at_mut(payload.len());
    body.copy_from_slice(payload);
    pad.fill(0);
    *pos = end;
    Some(())
}

// ---------------------------------------------------------------------------
// NLMSG_ERROR payload (`struct nlmsgerr` plus extended-ack attributes).
// ---------------------------------------------------------------------------

/// A decoded `NLMSG_ERROR` message: an acknowledgement when `error == 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorMsg<'a> {
    /// Negative errno, or 0 for an ack.
    pub error: i32,
    /// Header of the request this answers.
    pub request: NlMsgHdr,
    /// Extended-ack text (`NLMSGERR_ATTR_MSG`), without its NUL.
    pub ext_msg: Option<&'a [u8]>,
    /// Extended-ack offset of the offending attribute (`NLMSGERR_ATTR_OFFS`).
    pub ext_offset: Option<u32>,
    /// Type of a required attribute the request lacks
    /// (`NLMSGERR_ATTR_MISS_TYPE`).
    pub ext_miss_type: Option<u32>,
}

/// Why an `NLMSG_ERROR` payload could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadErrorMsg;

impl core::error::Error for BadErrorMsg {}

impl fmt::Display for BadErrorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("truncated NLMSG_ERROR payload")
    }
}

impl<'a> ErrorMsg<'a> {
    /// Decodes the payload of an `NLMSG_ERROR` message whose header flags are
    /// `flags`.
    pub fn parse(payload: &'a [u8], flags: u16) -> Result<ErrorMsg<'a>, BadErrorMsg> {
        let (err, rest) = payload.split_first_chunk::<4>().ok_or(BadErrorMsg)?;
        let error = i32::from_ne_bytes(*err);
        let request = NlMsgHdr::parse(rest).ok_or(BadErrorMsg)?;
        let mut out = ErrorMsg {
            error,
            request,
            ext_msg: None,
            ext_offset: None,
            ext_miss_type: None,
        };
        if flags & NLM_F_ACK_TLVS == 0 {
            return Ok(out);
        }
        // The request's payload is included unless capped (or this is an ack).
        let echoed = if flags & NLM_F_CAPPED != 0 || error == 0 {
            0
        } else {
            (request.len as usize).saturating_sub(NLMSG_HDRLEN)
        };
        let tlvs = rest
            .get(nlmsg_align(NLMSG_HDRLEN.saturating_add(echoed))..)
            .unwrap_or(&[]);
        for attr in Attrs::new(tlvs) {
            let Ok(attr) = attr else { break };
            match attr.ty {
                NLMSGERR_ATTR_MSG => {
                    let text = attr.payload;
                    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                    out.ext_msg = text.get(..end);
                }
                NLMSGERR_ATTR_OFFS => {
                    if let Some(b) = attr.payload.first_chunk::<4>() {
                        out.ext_offset = Some(u32::from_ne_bytes(*b));
                    }
                }
                NLMSGERR_ATTR_MISS_TYPE => {
                    if let Some(b) = attr.payload.first_chunk::<4>() {
                        out.ext_miss_type = Some(u32::from_ne_bytes(*b));
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}
