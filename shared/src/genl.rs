// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The rustnl generic netlink family: the numbers of `spec/rustnl.yaml`.
//!
//! The YNL spec `shared/spec/rustnl.yaml` is the contract of the family; this
//! module holds every number YNL derives from it (command ids, attribute ids,
//! multicast group names, limits) so that the kernel module and the library
//! take them from one place. `tests/spec/` parses the spec, numbers it by
//! YNL's rules and generates the ids and names into `genl_spec.rs` (included
//! below); it fails when that file, or what this module writes by hand, and
//! the spec disagree.
//!
//! Like `proto.rs`, this file must compile in the kernel module too: `core`
//! only, no allocation, no `unsafe`, no panics. It reaches `proto.rs` as
//! `super::proto`, so the module includes both files side by side:
//! `#[path = ".../proto.rs"] mod proto;` and `#[path = ".../genl.rs"] mod genl;`.

use super::proto::{
    counter_table, nlmsg_align, wire_enum, Action, Attrs, Counters, ErrorKind, Limits,
    RequestError, MAX_GROUPS, NLA_F_NESTED, NLA_HDRLEN,
};

// The family's name, commands, attributes and multicast groups, generated
// from the spec by tests/spec/ (`RUSTNL_BLESS=1` rewrites it; `cargo test`
// fails when it and the spec differ).
include!("genl_spec.rs");

/// Version of the family (`genl_family.version`): the spec sets none, so the
/// YNL default, 1.
pub const FAMILY_VERSION: u8 = 1;
/// `GENL_NAMSIZ`: a family or multicast group name, NUL included, fits in
/// this many bytes.
pub const GENL_NAMSIZ: usize = 16;
/// Size of `struct genlmsghdr` (cmd, version, reserved).
pub const GENL_HDRLEN: usize = 4;

/// Largest payload one attribute carries (spec constant `max-attr-payload`):
/// `nla_len` is a u16 and counts the attribute header.
pub const MAX_ATTR_PAYLOAD: usize = u16::MAX as usize - NLA_HDRLEN;
/// Smallest numbered group (the `min` check of attribute `group`).
pub const GROUP_MIN: u32 = 1;
/// Largest numbered group the policy accepts (spec constant `max-groups`,
/// the `max` check of attribute `group`); the kernel then checks the
/// module's `groups`.
pub const GROUP_MAX: u32 = MAX_GROUPS;

const _: () = assert!(MAX_ATTR_PAYLOAD == 65531);
// The generated policy (src/genl_spec.rs) and the constants the code uses.
const _: () = assert!(matches!(Attr::Group.range(), Some((GROUP_MIN, GROUP_MAX))));
const _: () = assert!(matches!(
    Attr::ListenGroup.range(),
    Some((GROUP_MIN, GROUP_MAX))
));
const _: () = assert!(Attr::ListenGroup.multi() && !Attr::Group.multi());
const _: () = assert!(matches!(Attr::Payload.max_len(), Some(MAX_ATTR_PAYLOAD)));
const _: () = assert!(FAMILY_NAME_NUL.len() == FAMILY_NAME.len() + 1);
const _: () = assert!(FAMILY_NAME_NUL.len() <= GENL_NAMSIZ);

impl Cmd {
    /// Whether the command is an event (sent by the kernel only).
    pub const fn is_event(self) -> bool {
        self.mcast_group().is_some()
    }
}

/// The netlink type of an attribute, as the spec names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrType {
    /// `u32`: exactly 4 bytes.
    U32,
    /// `uint`: 4 bytes when the value fits, else 8 (`nla_put_uint`).
    Uint,
    /// `binary`: any bytes, up to the check's `max-len`.
    Binary,
    /// `flag`: no payload; present means true.
    Flag,
    /// `nest`: attributes of [`CounterAttr`] (`NLA_F_NESTED`).
    NestCounters,
}

impl AttrType {
    /// The spec's name of the type.
    pub const fn name(self) -> &'static str {
        match self {
            AttrType::U32 => "u32",
            AttrType::Uint => "uint",
            AttrType::Binary => "binary",
            AttrType::Flag => "flag",
            AttrType::NestCounters => "nest",
        }
    }
}

/// Defines [`CounterAttr`] from the counter table (`proto::counter_table`).
macro_rules! define_counter_attrs {
    ($( $(#[$doc:meta])* $field:ident: $attr:ident = $id:literal => $ynl:literal, )+) => {
        wire_enum! {
            /// Attributes of the nested set `counters` (C prefix
            /// `RUSTNL_A_COUNTERS_`), all `uint`, named as in the spec, in
            /// the order of [`Counters::to_array`].
            pub enum CounterAttr: u16 {
                $(
                    #[doc = concat!("[`Counters::", stringify!($field), "`].")]
                    $attr = $id => $ynl,
                )+
            }
        }
    };
}
counter_table!(define_counter_attrs);

const _: () = assert!(CounterAttr::COUNT == Counters::COUNT);

impl CounterAttr {
    /// Position in `Counters::to_array()`.
    pub const fn index(self) -> usize {
        (self as usize).saturating_sub(1)
    }

    /// The JSON name ([`Counters::JSON_NAMES`]: the spec's with `_`).
    pub const fn json_name(self) -> &'static str {
        let i = self.index();
        if i < Counters::COUNT {
            Counters::JSON_NAMES[i]
        } else {
            self.name()
        }
    }

    /// The counter a refusal of `kind` counts in.
    pub const fn refused(kind: ErrorKind) -> CounterAttr {
        match kind {
            ErrorKind::Invalid => CounterAttr::ErrorsInvalid,
            ErrorKind::NotSupported => CounterAttr::ErrorsNotSupported,
            ErrorKind::TooLarge => CounterAttr::ErrorsTooLarge,
            ErrorKind::NotPermitted => CounterAttr::ErrorsNotPermitted,
        }
    }
}

impl McastGroup {
    /// Index in the family's `mcgrps` array.
    pub const fn index(self) -> usize {
        self as usize
    }
}

// --- Encoding -----------------------------------------------------------------

/// `NLA_ALIGNTO`: attributes start on 4-byte boundaries.
pub const NLA_ALIGNTO: usize = 4;

/// Zero bytes to pad an attribute payload with (at most 3 are used).
pub const NLA_PAD: [u8; NLA_ALIGNTO] = [0; NLA_ALIGNTO];

/// How many padding bytes follow an attribute payload of `len` bytes.
#[inline]
pub const fn nla_pad_len(len: usize) -> usize {
    (NLA_ALIGNTO - len % NLA_ALIGNTO) % NLA_ALIGNTO
}

/// The header of an attribute of type `ty` with a payload of `len` bytes
/// (`nla_len` counts the header, not the padding); `None` if it does not fit
/// a u16, i.e. `len` > [`MAX_ATTR_PAYLOAD`].
#[inline]
pub const fn nla_header(ty: u16, len: usize) -> Option<[u8; NLA_HDRLEN]> {
    if len > MAX_ATTR_PAYLOAD {
        return None;
    }
    let l = ((len + NLA_HDRLEN) as u16).to_ne_bytes();
    let t = ty.to_ne_bytes();
    Some([l[0], l[1], t[0], t[1]])
}

/// The generic netlink header of a message of this family carrying `cmd`.
#[inline]
pub const fn genl_header(cmd: Cmd) -> [u8; GENL_HDRLEN] {
    [cmd.raw(), FAMILY_VERSION, 0, 0]
}

/// The attribute is not room for what was written ([`AttrWriter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom;

/// Writes attributes into a fixed buffer, as the kernel's `nla_put_*` lay
/// them out: header, payload, zeroed padding to 4 bytes. Used by the kernel
/// module for its replies and events (on the stack) and by the tests that
/// model them.
#[derive(Debug)]
pub struct AttrWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> AttrWriter<'b> {
    /// A writer filling `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        AttrWriter { buf, len: 0 }
    }

    /// The attributes written so far.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `data` at the end, then zeroes `pad` bytes.
    fn push(&mut self, data: &[u8], pad: usize) -> Result<(), NoRoom> {
        let end = self.len.checked_add(data.len()).ok_or(NoRoom)?;
        let padded = end.checked_add(pad).ok_or(NoRoom)?;
        let dst = self.buf.get_mut(self.len..padded).ok_or(NoRoom)?;
        let (body, tail) = dst.split_at_mut(data.len());
        body.copy_from_slice(data);
        tail.fill(0);
        self.len = padded;
        Ok(())
    }

    /// `nla_put`: an attribute of type `ty` carrying `data`.
    pub fn put(&mut self, ty: u16, data: &[u8]) -> Result<(), NoRoom> {
        let hdr = nla_header(ty, data.len()).ok_or(NoRoom)?;
        let start = self.len;
        self.push(&hdr, 0)?;
        self.push(data, nla_pad_len(data.len()))
            .inspect_err(|_| self.len = start)
    }

    /// Appends an attribute whose payload is exactly `data` (`N` a
    /// multiple of [`NLA_ALIGNTO`]: no padding) with fixed-size stores only.
    /// [`AttrWriter::put`] copies through `copy_from_slice` / `fill`, which
    /// the kernel's build of `core` keeps out of line: a call each, and
    /// `memcpy` / `memset` behind them (a genl broadcast wrote 14
    /// attributes so, ~1,200 instructions more than the C reference module
    /// in `make bench`).
    #[inline]
    fn put_array<const N: usize>(&mut self, ty: u16, data: [u8; N]) -> Result<(), NoRoom> {
        const { assert!(N % NLA_ALIGNTO == 0) };
        let hdr = nla_header(ty, N).ok_or(NoRoom)?;
        let end = self.len.checked_add(NLA_HDRLEN + N).ok_or(NoRoom)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(NoRoom)?;
        let (h, rest) = dst.split_first_chunk_mut::<NLA_HDRLEN>().ok_or(NoRoom)?;
        let (d, _) = rest.split_first_chunk_mut::<N>().ok_or(NoRoom)?;
        *h = hdr;
        *d = data;
        self.len = end;
        Ok(())
    }

    /// `nla_put_u32`.
    #[inline]
    pub fn put_u32(&mut self, ty: u16, v: u32) -> Result<(), NoRoom> {
        self.put_array(ty, v.to_ne_bytes())
    }

    /// `nla_put_uint`: 4 bytes when the value fits a u32, else 8.
    #[inline]
    pub fn put_uint(&mut self, ty: u16, v: u64) -> Result<(), NoRoom> {
        match u32::try_from(v) {
            Ok(small) => self.put_u32(ty, small),
            Err(_) => self.put_array(ty, v.to_ne_bytes()),
        }
    }

    /// `nla_put_flag`: an attribute without payload, written only if `set`.
    #[inline]
    pub fn put_flag(&mut self, ty: u16, set: bool) -> Result<(), NoRoom> {
        if set {
            self.put_array(ty, [])
        } else {
            Ok(())
        }
    }

    /// `nla_nest_start` … `nla_nest_end`: the attributes `fill` writes,
    /// nested in one of type `ty` (with [`NLA_F_NESTED`]).
    pub fn nest(
        &mut self,
        ty: u16,
        fill: impl FnOnce(&mut AttrWriter<'_>) -> Result<(), NoRoom>,
    ) -> Result<(), NoRoom> {
        let start = self.len;
        let inner_start = start.checked_add(NLA_HDRLEN).ok_or(NoRoom)?;
        let inner_buf = self.buf.get_mut(inner_start..).ok_or(NoRoom)?;
        let mut inner = AttrWriter::new(inner_buf);
        fill(&mut inner)?;
        let inner_len = inner.len;
        let hdr = nla_header(ty | NLA_F_NESTED, inner_len).ok_or(NoRoom)?;
        self.push(&hdr, 0)?;
        self.len = inner_start + inner_len;
        Ok(())
    }

    /// The counters of one face, as the `counters` attribute set.
    pub fn put_counters(&mut self, ty: u16, c: &Counters) -> Result<(), NoRoom> {
        let values = c.to_array();
        self.nest(ty, |w| {
            CounterAttr::ALL
                .iter()
                .zip(values.iter())
                .try_for_each(|(a, v)| w.put_uint(a.raw(), *v))
        })
    }
}

// --- Numbered groups a socket listens to -----------------------------------------

/// A set of numbered groups, 1..=[`MAX_GROUPS`]: the groups one socket of
/// the family receives the events of (`set-groups`). A bitmap, group `g` at
/// bit `g - 1`, in [`GroupSet::WORDS`] words: the layout the kernel module
/// keeps per socket.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupSet([u64; GroupSet::WORDS]);

const _: () = assert!(MAX_GROUPS % 64 == 0);

impl GroupSet {
    /// Words of the bitmap.
    pub const WORDS: usize = MAX_GROUPS as usize / 64;
    /// No group.
    pub const EMPTY: GroupSet = GroupSet([0; GroupSet::WORDS]);
    /// Every group: what a socket receives until it chooses (and again after
    /// a `set-groups` without `listen-group`).
    pub const ALL: GroupSet = GroupSet([u64::MAX; GroupSet::WORDS]);

    /// The set of the bitmap `words` (group `g` at bit `g - 1`).
    pub const fn from_words(words: [u64; GroupSet::WORDS]) -> GroupSet {
        GroupSet(words)
    }

    /// The bitmap (group `g` at bit `g - 1`).
    pub const fn words(&self) -> &[u64; GroupSet::WORDS] {
        &self.0
    }

    /// Word and bit of group `g`, if it is in 1..=[`MAX_GROUPS`].
    const fn slot(g: u32) -> Option<(usize, u64)> {
        if g == 0 || g > MAX_GROUPS {
            return None;
        }
        let i = (g - 1) as usize;
        Some((i / 64, 1 << (i % 64)))
    }

    /// Whether group `g` is in the set (never for a group outside
    /// 1..=[`MAX_GROUPS`]).
    #[inline]
    pub const fn contains(&self, g: u32) -> bool {
        match Self::slot(g) {
            Some((w, bit)) => self.0[w] & bit != 0,
            None => false,
        }
    }

    /// Adds group `g`; false (nothing added) outside 1..=[`MAX_GROUPS`].
    pub fn insert(&mut self, g: u32) -> bool {
        match Self::slot(g).and_then(|(w, bit)| Some((self.0.get_mut(w)?, bit))) {
            Some((word, bit)) => {
                *word |= bit;
                true
            }
            None => false,
        }
    }

    /// Whether no group is in the set.
    pub const fn is_empty(&self) -> bool {
        let mut i = 0;
        while i < Self::WORDS {
            if self.0[i] != 0 {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The groups in the set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (1..=MAX_GROUPS).filter(|&g| self.contains(g))
    }
}

impl Default for GroupSet {
    /// [`GroupSet::ALL`]: a socket receives every group until it chooses.
    fn default() -> Self {
        GroupSet::ALL
    }
}

impl core::fmt::Debug for GroupSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if *self == GroupSet::ALL {
            return f.write_str("GroupSet(all)");
        }
        f.debug_set().entries(self.iter()).finish()
    }
}

// --- Requests -------------------------------------------------------------------

/// What a request of the family carries, once the kernel's policy has
/// validated it (types, lengths, the `group` and `listen-group` ranges
/// 1..=[`GROUP_MAX`], no trailing bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// `genlmsghdr.cmd`.
    pub cmd: u8,
    /// Attribute `payload`, if present (the last one, as the kernel's
    /// parse keeps it).
    pub payload: Option<&'a [u8]>,
    /// Attribute `group`, if present (the last one).
    pub group: Option<u32>,
    /// Every attribute as sent, after the generic netlink header: where
    /// the `multi-attr` ones (`listen-group`) are read from, each of them.
    pub attrs: &'a [u8],
}

/// What a policy-valid request of the family asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requested<'a> {
    /// What the classic face's requests ask too: echo, broadcast, get-info.
    Shared(Action<'a>),
    /// `set-groups`: the requesting socket receives the events of these
    /// numbered groups only ([`ListenGroups::set`]; every group when the
    /// request named none).
    SetGroups(ListenGroups<'a>),
}

/// The `listen-group` attributes of a `set-groups` that [`classify`]
/// accepted (each in 1..=`limits.groups`), read where they are in the
/// request: the answer of `classify` stays as small as the other
/// commands' (a [`GroupSet`] is 128 bytes, which every echo would carry
/// through).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenGroups<'a> {
    attrs: &'a [u8],
}

impl<'a> ListenGroups<'a> {
    /// Each `listen-group` as sent, in order (repeats included).
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        listen_group_attrs(self.attrs).map(|(_, group)| group)
    }

    /// The set they name; [`GroupSet::ALL`] when there is none.
    pub fn set(&self) -> GroupSet {
        let mut set = GroupSet::EMPTY;
        for g in self.iter() {
            set.insert(g);
        }
        if set.is_empty() {
            GroupSet::ALL
        } else {
            set
        }
    }
}

/// Why a policy-valid request is refused by the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// As on the classic face: payload over `max_payload`, group over
    /// `groups`.
    Request(RequestError),
    /// As [`Refusal::Request`], about one of several attributes of a type
    /// (`listen-group`): the one at `offset` in [`Request::attrs`].
    At {
        /// What is wrong with it.
        error: RequestError,
        /// Where it starts (its header) in [`Request::attrs`].
        offset: usize,
    },
    /// A required attribute is absent (`NLMSGERR_ATTR_MISS_TYPE`).
    Missing(Attr),
    /// A command the family has no `do` operation for (the core refuses
    /// these first; kept so the function is total).
    NotAnOperation(u8),
}

impl Refusal {
    /// The class (and so the errno) of the refusal.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Refusal::Request(e) | Refusal::At { error: e, .. } => e.kind(),
            Refusal::Missing(_) => ErrorKind::Invalid,
            Refusal::NotAnOperation(_) => ErrorKind::NotSupported,
        }
    }

    /// The attribute the ext-ack points at (`NLMSGERR_ATTR_OFFS`), if any,
    /// by type (the last of its type, as the kernel's parse keeps it); see
    /// [`Refusal::attr_offset`] for one of several.
    pub const fn bad_attr(&self) -> Option<Attr> {
        match self {
            Refusal::Request(RequestError::PayloadTooLarge { .. }) => Some(Attr::Payload),
            Refusal::Request(RequestError::BadGroup { .. }) => Some(Attr::Group),
            _ => None,
        }
    }

    /// Where in [`Request::attrs`] the attribute the ext-ack points at
    /// starts, when it is one of several of its type ([`Refusal::At`]).
    pub const fn attr_offset(&self) -> Option<usize> {
        match self {
            Refusal::At { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::Request(e) | Refusal::At { error: e, .. } => e.fmt(f),
            Refusal::Missing(a) => write!(f, "missing attribute: {}", a.name()),
            Refusal::NotAnOperation(cmd) => write!(f, "command {cmd} is not an operation"),
        }
    }
}

/// Decides what a policy-valid request asks for, or why it is refused: the
/// checks the policy cannot express (the module's `groups` and
/// `max_payload`, a required `group`), in the classic face's order.
#[inline]
pub fn classify<'a>(req: &Request<'a>, limits: &Limits) -> Result<Requested<'a>, Refusal> {
    let payload = req.payload.unwrap_or(&[]);
    let too_large = |len: usize| {
        if len > limits.max_payload {
            Err(Refusal::Request(RequestError::PayloadTooLarge {
                len,
                max: limits.max_payload,
            }))
        } else {
            Ok(())
        }
    };
    match Cmd::from_raw(req.cmd) {
        Some(Cmd::Echo) => {
            too_large(payload.len())?;
            Ok(Requested::Shared(Action::Echo { payload }))
        }
        Some(Cmd::Broadcast) => {
            let group = req.group.ok_or(Refusal::Missing(Attr::Group))?;
            if group == 0 || group > limits.groups {
                return Err(Refusal::Request(RequestError::BadGroup {
                    group,
                    groups: limits.groups,
                }));
            }
            too_large(payload.len())?;
            Ok(Requested::Shared(Action::Broadcast { group, payload }))
        }
        Some(Cmd::GetInfo) => Ok(Requested::Shared(Action::GetInfo)),
        Some(Cmd::SetGroups) => {
            check_listen_groups(req.attrs, limits)?;
            Ok(Requested::SetGroups(ListenGroups { attrs: req.attrs }))
        }
        _ => Err(Refusal::NotAnOperation(req.cmd)),
    }
}

/// Each `listen-group` attribute of `attrs` with its offset there.
fn listen_group_attrs(attrs: &[u8]) -> impl Iterator<Item = (usize, u32)> + '_ {
    let mut offset = 0usize;
    // Policy-valid: well formed, 4-aligned, no trailing bytes (a malformed
    // tail would only end the walk).
    Attrs::new(attrs).map_while(Result::ok).filter_map(move |a| {
        let at = offset;
        offset = offset.saturating_add(nlmsg_align(NLA_HDRLEN + a.payload.len()));
        // 4 bytes, as the policy checked (else group 0, refused).
        let group = a
            .payload
            .first_chunk::<4>()
            .map_or(0, |b| u32::from_ne_bytes(*b));
        (a.ty == Attr::ListenGroup.raw()).then_some((at, group))
    })
}

/// Every `listen-group` of `attrs` in 1..=`limits.groups` (also within
/// [`GroupSet`]'s range), or the first one outside, pointed at.
fn check_listen_groups(attrs: &[u8], limits: &Limits) -> Result<(), Refusal> {
    for (at, group) in listen_group_attrs(attrs) {
        if group == 0 || group > limits.groups || group > MAX_GROUPS {
            return Err(Refusal::At {
                error: RequestError::BadGroup {
                    group,
                    groups: limits.groups,
                },
                offset: at,
            });
        }
    }
    Ok(())
}
