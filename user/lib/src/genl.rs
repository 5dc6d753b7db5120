//! Generic netlink (`NETLINK_GENERIC`) for any family: name resolution
//! through the kernel's controller, `nlctrl` ([`GenlSocket::family`],
//! [`GenlSocket::families`]), and requests with a `genlmsghdr` and
//! attributes ([`GenlSocket::request`]) over the library's request/dump
//! exchange, so that acks, errors with extended-ack text, multipart dumps
//! and interrupted dumps behave as on any other unit.
//!
//! A generic netlink family has a number the kernel assigns when it
//! registers, and multicast group ids likewise: clients look both up by
//! name (`CTRL_CMD_GETFAMILY`) before anything else. [`GenlSocket::resolve`]
//! and [`GenlSocket::resolve_group`] remember what they looked up (as the
//! rust-netlink `genetlink` crate's resolver does); [`GenlSocket::join`]
//! joins a group by name.
//!
//! ```
//! use rustnl::genl::{GenlSocket, GENL_ID_CTRL, CTRL_CMD_GETFAMILY};
//! let mut genl = GenlSocket::open()?;
//! let ctrl = genl.family("nlctrl")?;
//! assert_eq!(ctrl.id, GENL_ID_CTRL);
//! assert!(ctrl.op(CTRL_CMD_GETFAMILY.into()).is_some_and(|op| op.can_dump()));
//! assert!(ctrl.group("notify").is_some());
//! assert_eq!(genl.join("nlctrl", "notify")?, u32::from(GENL_ID_CTRL));
//! match genl.family("no-such-family") {
//!     Err(rustnl::Error::FamilyNotFound { name }) => assert_eq!(name, "no-such-family"),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), rustnl::Error>(())
//! ```

use crate::attr::{AttrError, AttrExt, AttrTable, AttrBuilder};
use crate::conn::Conn;
use crate::errors::{Error, Result};
use crate::message::MessageBuilder;
use crate::proto::{Message, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use crate::socket::{Socket, DEFAULT_TIMEOUT};
use std::collections::HashMap;

/// The netlink protocol unit of generic netlink (`NETLINK_GENERIC`).
pub const NETLINK_GENERIC: u32 = 16;
/// Size of `struct genlmsghdr`.
pub use crate::proto::genl::GENL_HDRLEN;
/// Longest family name, without its NUL (`GENL_NAMSIZ - 1`).
pub const GENL_NAME_MAX: usize = 15;
/// The controller's fixed family id (`GENL_ID_CTRL`).
pub const GENL_ID_CTRL: u16 = 0x10;
/// The controller's version this library speaks.
pub const CTRL_VERSION: u8 = 2;
/// `CTRL_CMD_NEWFAMILY`: the controller's answer (and notification).
pub const CTRL_CMD_NEWFAMILY: u8 = 1;
/// `CTRL_CMD_GETFAMILY`: look a family up (do) or list them (dump).
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (NUL-terminated string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `CTRL_ATTR_VERSION` (u32).
pub const CTRL_ATTR_VERSION: u16 = 3;
/// `CTRL_ATTR_HDRSIZE` (u32).
pub const CTRL_ATTR_HDRSIZE: u16 = 4;
/// `CTRL_ATTR_MAXATTR` (u32).
pub const CTRL_ATTR_MAXATTR: u16 = 5;
/// `CTRL_ATTR_OPS` (nested array of nested `CTRL_ATTR_OP_*`).
pub const CTRL_ATTR_OPS: u16 = 6;
/// `CTRL_ATTR_MCAST_GROUPS` (nested array of nested `CTRL_ATTR_MCAST_GRP_*`).
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
/// `CTRL_ATTR_OP_ID` (u32).
pub const CTRL_ATTR_OP_ID: u16 = 1;
/// `CTRL_ATTR_OP_FLAGS` (u32).
pub const CTRL_ATTR_OP_FLAGS: u16 = 2;
/// `CTRL_ATTR_MCAST_GRP_NAME` (string).
pub const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
/// `CTRL_ATTR_MCAST_GRP_ID` (u32).
pub const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;

/// Operation flags (`CTRL_ATTR_OP_FLAGS`).
pub mod op_flags {
    /// `GENL_ADMIN_PERM`: needs `CAP_NET_ADMIN` in the initial namespace.
    pub const ADMIN_PERM: u32 = 0x01;
    /// `GENL_CMD_CAP_DO`: answers a request.
    pub const CAP_DO: u32 = 0x02;
    /// `GENL_CMD_CAP_DUMP`: answers a dump.
    pub const CAP_DUMP: u32 = 0x04;
    /// `GENL_CMD_CAP_HASPOL`: has an attribute policy.
    pub const CAP_HASPOL: u32 = 0x08;
    /// `GENL_UNS_ADMIN_PERM`: needs `CAP_NET_ADMIN` in the namespace's
    /// user namespace.
    pub const UNS_ADMIN_PERM: u32 = 0x10;
}

/// The generic netlink header (`struct genlmsghdr`) that starts the payload
/// of every generic netlink message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenlHeader {
    /// The family's command.
    pub cmd: u8,
    /// The family's interface version.
    pub version: u8,
}

impl GenlHeader {
    /// The 4 bytes on the wire (`reserved` zero).
    pub fn to_bytes(self) -> [u8; GENL_HDRLEN] {
        [self.cmd, self.version, 0, 0]
    }

    /// Splits a message payload into its header and attributes; `None` if
    /// shorter than a header.
    pub fn parse(payload: &[u8]) -> Option<(GenlHeader, &[u8])> {
        let (h, rest) = payload.split_first_chunk::<GENL_HDRLEN>()?;
        Some((
            GenlHeader {
                cmd: h[0],
                version: h[1],
            },
            rest,
        ))
    }
}

/// A generic netlink request: to which family (its id), which command of
/// which interface version, with which `nlmsg_flags` (`NLM_F_REQUEST` is
/// always added). Built with [`GenlRequest::new`] and the flag setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenlRequest {
    /// The family's id (the message type).
    pub family: u16,
    /// The command.
    pub cmd: u8,
    /// The family's interface version.
    pub version: u8,
    /// `nlmsg_flags` besides `NLM_F_REQUEST`.
    pub flags: u16,
}

impl GenlRequest {
    /// Command `cmd` of interface `version` to family `family`, no flags.
    pub const fn new(family: u16, cmd: u8, version: u8) -> GenlRequest {
        GenlRequest {
            family,
            cmd,
            version,
            flags: 0,
        }
    }

    /// A dump (`NLM_F_DUMP`).
    pub const fn dump(mut self) -> GenlRequest {
        self.flags |= NLM_F_DUMP;
        self
    }

    /// Asks for an ack (`NLM_F_ACK`).
    pub const fn ack(mut self) -> GenlRequest {
        self.flags |= NLM_F_ACK;
        self
    }

    /// With `flags` added.
    pub const fn flags(mut self, flags: u16) -> GenlRequest {
        self.flags |= flags;
        self
    }
}

/// One generic netlink message of an answer, borrowed from the receive
/// buffer.
#[derive(Clone, Copy, Debug)]
pub struct GenlMessage<'a> {
    /// The netlink message (header, whole payload).
    pub message: Message<'a>,
    /// Its generic netlink header.
    pub header: GenlHeader,
    /// Its attributes (after the family's own header, if it has one: see
    /// [`Family::hdr_size`]).
    pub attrs: AttrTable<'a>,
}

impl<'a> GenlMessage<'a> {
    /// Decodes `msg`'s generic netlink header; the rest are attributes.
    pub fn parse(msg: &Message<'a>) -> Result<GenlMessage<'a>> {
        let (header, attrs) = GenlHeader::parse(msg.payload).ok_or(Error::BadLayout {
            what: "genlmsghdr",
            source: crate::proto::LayoutError::Short {
                need: crate::proto::genl::GENL_HDRLEN,
                have: msg.payload.len(),
            },
        })?;
        Ok(GenlMessage {
            message: *msg,
            header,
            attrs: AttrTable::new(attrs),
        })
    }
}

/// One operation of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Op {
    /// The command number.
    pub id: u32,
    /// Its flags ([`op_flags`]).
    pub flags: u32,
}

impl Op {
    /// Answers requests (`GENL_CMD_CAP_DO`).
    pub fn can_do(&self) -> bool {
        self.flags & op_flags::CAP_DO != 0
    }
    /// Answers dumps (`GENL_CMD_CAP_DUMP`).
    pub fn can_dump(&self) -> bool {
        self.flags & op_flags::CAP_DUMP != 0
    }
    /// Has an attribute policy (`GENL_CMD_CAP_HASPOL`).
    pub fn has_policy(&self) -> bool {
        self.flags & op_flags::CAP_HASPOL != 0
    }
    /// Needs `CAP_NET_ADMIN` in the initial user namespace
    /// (`GENL_ADMIN_PERM`).
    pub fn admin_perm(&self) -> bool {
        self.flags & op_flags::ADMIN_PERM != 0
    }
    /// Needs `CAP_NET_ADMIN` in the namespace's user namespace
    /// (`GENL_UNS_ADMIN_PERM`).
    pub fn uns_admin_perm(&self) -> bool {
        self.flags & op_flags::UNS_ADMIN_PERM != 0
    }
    /// The flags as `genl ctrl list` words them, in bit order.
    pub fn capabilities(&self) -> Vec<&'static str> {
        [
            (op_flags::ADMIN_PERM, "requires admin permission"),
            (
                op_flags::UNS_ADMIN_PERM,
                "requires namespace admin permission",
            ),
            (op_flags::CAP_DO, "can doit"),
            (op_flags::CAP_DUMP, "can dumpit"),
            (op_flags::CAP_HASPOL, "has policy"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.flags & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }
}

/// One multicast group of a family.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its id: the group number to join ([`Socket::add_membership`]).
    pub id: u32,
}

/// A generic netlink family as the controller describes it
/// (`CTRL_CMD_NEWFAMILY`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Family {
    /// Its name.
    pub name: String,
    /// Its id: the `nlmsg_type` of its messages.
    pub id: u16,
    /// Its interface version.
    pub version: u32,
    /// Size of its own header after the `genlmsghdr` (usually 0).
    pub hdr_size: u32,
    /// Its highest attribute type.
    pub max_attr: u32,
    /// Its operations.
    pub ops: Vec<Op>,
    /// Its multicast groups.
    pub mcast_groups: Vec<Group>,
}

impl Family {
    /// A family with `name` and `id`, version, sizes 0 and no operations
    /// or groups (for tests and fakes; fill the fields in).
    pub fn new(name: &str, id: u16) -> Family {
        Family {
            name: name.to_string(),
            id,
            version: 0,
            hdr_size: 0,
            max_attr: 0,
            ops: Vec::new(),
            mcast_groups: Vec::new(),
        }
    }

    /// Decodes the attributes of a controller answer (`CTRL_CMD_NEWFAMILY`).
    /// Name and id are required; the rest default to 0 / empty when absent.
    pub fn parse(attrs: AttrTable<'_>) -> Result<Family, AttrError> {
        let missing = |ty: u16| AttrError::Missing { ty };
        let name = attrs
            .str(CTRL_ATTR_FAMILY_NAME)?
            .ok_or_else(|| missing(CTRL_ATTR_FAMILY_NAME))?
            .to_string();
        let id = attrs
            .u16(CTRL_ATTR_FAMILY_ID)?
            .ok_or_else(|| missing(CTRL_ATTR_FAMILY_ID))?;
        let mut ops = Vec::new();
        if let Some(list) = attrs.nested(CTRL_ATTR_OPS)? {
            for entry in list.iter() {
                let op = entry?.get_nested();
                ops.push(Op {
                    id: op.u32(CTRL_ATTR_OP_ID)?.unwrap_or_default(),
                    flags: op.u32(CTRL_ATTR_OP_FLAGS)?.unwrap_or_default(),
                });
            }
        }
        let mut mcast_groups = Vec::new();
        if let Some(list) = attrs.nested(CTRL_ATTR_MCAST_GROUPS)? {
            for entry in list.iter() {
                let g = entry?.get_nested();
                mcast_groups.push(Group {
                    name: g
                        .str(CTRL_ATTR_MCAST_GRP_NAME)?
                        .unwrap_or_default()
                        .to_string(),
                    id: g.u32(CTRL_ATTR_MCAST_GRP_ID)?.unwrap_or_default(),
                });
            }
        }
        Ok(Family {
            name,
            id,
            version: attrs.u32(CTRL_ATTR_VERSION)?.unwrap_or_default(),
            hdr_size: attrs.u32(CTRL_ATTR_HDRSIZE)?.unwrap_or_default(),
            max_attr: attrs.u32(CTRL_ATTR_MAXATTR)?.unwrap_or_default(),
            ops,
            mcast_groups,
        })
    }

    /// The id of multicast group `name`, if the family has it.
    pub fn group(&self, name: &str) -> Option<u32> {
        self.mcast_groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.id)
    }

    /// Operation `id`, if the family has it.
    pub fn op(&self, id: u32) -> Option<Op> {
        self.ops.iter().copied().find(|o| o.id == id)
    }
}

/// Decodes one controller message into a [`Family`].
fn family_of(msg: &Message<'_>) -> Result<Family> {
    if msg.header.ty != GENL_ID_CTRL {
        return Err(Error::WrongAnswer {
            request: "CTRL_CMD_GETFAMILY",
            ty: msg.header.ty,
            expected: GENL_ID_CTRL,
        });
    }
    let m = GenlMessage::parse(msg)?;
    Family::parse(m.attrs).map_err(|source| Error::BadAttr {
        what: "nlctrl family",
        source,
    })
}

/// A generic netlink connection: a `NETLINK_GENERIC` [`Socket`] (or, in
/// tests, any [`Conn`] such as [`FakeConn`](crate::testing::FakeConn)),
/// its sequence numbers and request buffer, and the families it resolved
/// ([`GenlSocket::resolve`]).
#[derive(Debug)]
pub struct GenlSocket<C = Socket> {
    conn: C,
    out: MessageBuilder,
    attrs: AttrBuilder,
    cache: HashMap<String, Family>,
}

impl GenlSocket<Socket> {
    /// Opens a `NETLINK_GENERIC` socket with extended acks on and a receive
    /// timeout of [`crate::DEFAULT_TIMEOUT`].
    pub fn open() -> Result<GenlSocket<Socket>> {
        let sock = Socket::open(NETLINK_GENERIC)?;
        sock.set_ext_ack(true)?;
        sock.set_recv_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(GenlSocket::with_conn(sock))
    }
}

impl<C: Conn> GenlSocket<C> {
    /// Generic netlink over `conn`.
    pub fn with_conn(conn: C) -> GenlSocket<C> {
        GenlSocket {
            conn,
            out: MessageBuilder::new(),
            attrs: AttrBuilder::new(),
            cache: HashMap::new(),
        }
    }

    /// The connection.
    pub fn conn(&self) -> &C {
        &self.conn
    }

    /// The connection, mutable (timeouts, groups, ...).
    pub fn conn_mut(&mut self) -> &mut C {
        &mut self.conn
    }

    /// The connection, by value.
    pub fn into_conn(self) -> C {
        self.conn
    }

    /// Sends request `req` with `attrs` (see [`AttrBuilder`]) after its
    /// `genlmsghdr` (`NLM_F_REQUEST` is added to its flags; the sequence
    /// number is the connection's, [`Conn::next_seq`]) and passes each
    /// answer to `each` until the exchange is over, as [`Socket::request`]
    /// does. Returns how many answers `each` saw.
    ///
    /// ```
    /// use rustnl::genl::{GenlRequest, GenlSocket, CTRL_CMD_GETFAMILY, CTRL_VERSION, GENL_ID_CTRL};
    /// let mut genl = GenlSocket::open()?;
    /// let dump = GenlRequest::new(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_VERSION).dump();
    /// let families = genl.request(dump, &[], |_| Ok(()))?;
    /// assert!(families >= 1); // nlctrl itself
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn request<F>(&mut self, req: GenlRequest, attrs: &[u8], mut each: F) -> Result<usize>
    where
        F: FnMut(&GenlMessage<'_>) -> Result<()>,
    {
        let seq = self.conn.next_seq();
        self.out.clear();
        let hdr = GenlHeader {
            cmd: req.cmd,
            version: req.version,
        }
        .to_bytes();
        self.out
            .push_parts(req.family, req.flags | NLM_F_REQUEST, seq, &[&hdr, attrs])?;
        crate::request::request(&mut self.conn, self.out.as_bytes(), |msg| {
            each(&GenlMessage::parse(msg)?)
        })
    }

    /// Looks family `name` up (`CTRL_CMD_GETFAMILY`). A family the
    /// controller does not know (`ENOENT`), or a name too long to be
    /// registered, is [`Error::FamilyNotFound`].
    pub fn family(&mut self, name: &str) -> Result<Family> {
        let not_found = || Error::FamilyNotFound {
            name: name.to_string(),
        };
        if name.len() > GENL_NAME_MAX || name.contains('\0') {
            return Err(not_found());
        }
        let mut attrs = std::mem::take(&mut self.attrs);
        attrs.clear();
        attrs.put_str(CTRL_ATTR_FAMILY_NAME, name)?;
        let mut found = None;
        let r = self.request(
            GenlRequest::new(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_VERSION),
            attrs.as_bytes(),
            |m| {
                found = Some(family_of(&m.message)?);
                Ok(())
            },
        );
        self.attrs = attrs;
        match r {
            Ok(_) => {}
            Err(Error::Kernel(k)) if k.errno == libc::ENOENT => {
                self.cache.remove(name);
                return Err(not_found());
            }
            Err(e) => return Err(e),
        }
        let family = found.ok_or_else(|| Error::Unexpected("no answer from nlctrl".into()))?;
        if family.name != name {
            return Err(Error::Unexpected(format!(
                "nlctrl answered family {:?} for {name:?}",
                family.name
            )));
        }
        self.cache.insert(family.name.clone(), family.clone());
        Ok(family)
    }

    /// Family `name`, looked up once and then remembered (the kernel keeps
    /// a family's id and group ids while it stays registered; after its
    /// module reloads they may differ: [`GenlSocket::forget`] it, or look it
    /// up afresh with [`GenlSocket::family`], which refreshes the cache).
    pub fn resolve(&mut self, name: &str) -> Result<&Family> {
        if !self.cache.contains_key(name) {
            self.family(name)?;
        }
        self.cache
            .get(name)
            .ok_or_else(|| Error::Unexpected(format!("family {name:?} vanished from the cache")))
    }

    /// The id of multicast group `group` of family `family` (resolved and
    /// cached as [`GenlSocket::resolve`] does): [`Error::GroupNotFound`]
    /// if the family has no such group.
    pub fn resolve_group(&mut self, family: &str, group: &str) -> Result<u32> {
        self.resolve(family)?
            .group(group)
            .ok_or_else(|| Error::GroupNotFound {
                family: family.to_string(),
                group: group.to_string(),
            })
    }

    /// Forgets what [`GenlSocket::resolve`] remembered of `name`.
    pub fn forget(&mut self, name: &str) {
        self.cache.remove(name);
    }

    /// Every registered family (a `CTRL_CMD_GETFAMILY` dump), in the
    /// controller's order (by id).
    pub fn families(&mut self) -> Result<Vec<Family>> {
        let mut out = Vec::new();
        self.request(
            GenlRequest::new(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_VERSION).dump(),
            &[],
            |m| {
                out.push(family_of(&m.message)?);
                Ok(())
            },
        )?;
        Ok(out)
    }
}

impl GenlSocket<Socket> {
    /// Joins multicast group `group` of family `family` (resolved by name)
    /// and returns its id; the socket then receives the family's
    /// notifications on that group.
    pub fn join(&mut self, family: &str, group: &str) -> Result<u32> {
        let id = self.resolve_group(family, group)?;
        self.conn.add_membership(id)?;
        Ok(id)
    }
}

/// Bytes of a controller answer carrying `family`, after the netlink
/// header: what the kernel sends (for tests and fakes).
pub fn encode_family(family: &Family) -> Result<Vec<u8>> {
    let mut w = AttrBuilder::new();
    w.put_u16(CTRL_ATTR_FAMILY_ID, family.id)?
        .put_str(CTRL_ATTR_FAMILY_NAME, &family.name)?
        .put_u32(CTRL_ATTR_VERSION, family.version)?
        .put_u32(CTRL_ATTR_HDRSIZE, family.hdr_size)?
        .put_u32(CTRL_ATTR_MAXATTR, family.max_attr)?;
    if !family.ops.is_empty() {
        w.nested(CTRL_ATTR_OPS, |w| {
            for (i, op) in family.ops.iter().enumerate() {
                w.nested(i as u16 + 1, |w| {
                    w.put_u32(CTRL_ATTR_OP_ID, op.id)?
                        .put_u32(CTRL_ATTR_OP_FLAGS, op.flags)?;
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    if !family.mcast_groups.is_empty() {
        w.nested(CTRL_ATTR_MCAST_GROUPS, |w| {
            for (i, g) in family.mcast_groups.iter().enumerate() {
                w.nested(i as u16 + 1, |w| {
                    w.put_str(CTRL_ATTR_MCAST_GRP_NAME, &g.name)?
                        .put_u32(CTRL_ATTR_MCAST_GRP_ID, g.id)?;
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    let mut out = GenlHeader {
        cmd: CTRL_CMD_NEWFAMILY,
        version: CTRL_VERSION,
    }
    .to_bytes()
    .to_vec();
    out.extend_from_slice(w.as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests;
