//! Typed errors.

use crate::proto::BadAttr;
use crate::proto::{
    NLMSGERR_ATTR_MISS_NEST, NLMSGERR_ATTR_MISS_TYPE, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
};
use std::{fmt, io};

/// Bytes of the send buffer that netlink keeps back: it refuses a datagram
/// longer than `SO_SNDBUF` less this (`netlink_sendmsg`).
pub const SNDBUF_OVERHEAD: usize = 32;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking netlink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The rustnl kernel module is not there to answer: not loaded, not
    /// serving this network namespace, or its generic netlink face refused
    /// a payload before sending. The other variants are what any netlink
    /// family can answer.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// `socket()` said `EPROTONOSUPPORT`: no kernel socket for this unit.
    #[error(
        "netlink protocol unit {unit} is not supported by this kernel (no kernel socket for it)"
    )]
    ProtocolNotSupported {
        /// The unit asked for.
        unit: u32,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// The call.
        op: &'static str,
        /// What it returned.
        #[source]
        source: io::Error,
    },
    /// The kernel answered with an `NLMSG_ERROR`.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// No answer within the socket's receive timeout.
    #[error("timed out waiting for the kernel's reply")]
    Timeout,
    /// A non-blocking receive found nothing to read.
    #[error("no message waiting (non-blocking socket)")]
    WouldBlock,
    /// The socket's receive queue overflowed and the kernel dropped messages
    /// (`ENOBUFS`). The socket stays usable.
    #[error("receive queue overrun: the kernel dropped messages (ENOBUFS)")]
    Overrun,
    /// A datagram did not fit the receive buffer and was lost
    /// (only with [`RecvMode::Fixed`](crate::RecvMode::Fixed)).
    #[error("a {size}-byte datagram did not fit the {buffer}-byte receive buffer and was lost")]
    Truncated {
        /// The datagram's size.
        size: usize,
        /// The buffer's size.
        buffer: usize,
    },
    /// A datagram that does not split into netlink messages.
    #[error("malformed netlink message: {0}")]
    BadMessage(#[from] crate::proto::Malformed),
    /// A message whose fixed layout (a rustnl header, `nlmsgerr`) does not
    /// decode.
    #[error("malformed {what}: {source}")]
    BadLayout {
        /// Which message.
        what: &'static str,
        /// Why.
        #[source]
        source: crate::proto::LayoutError,
    },
    /// An attribute that does not decode as its type says.
    #[error("{what}: {source}")]
    BadAttr {
        /// Which message.
        what: &'static str,
        /// Why.
        #[source]
        source: AttrError,
    },
    /// A message lacks an attribute it must have.
    #[error("{what}: attribute {attr} missing")]
    MissingAttr {
        /// Which message.
        what: &'static str,
        /// The attribute (the spec's name).
        attr: &'static str,
    },
    /// An answer of another message type than the request's answer.
    #[error("message type {ty:#x} in answer to {request} (expected {expected:#x})")]
    WrongAnswer {
        /// The request.
        request: &'static str,
        /// The type received.
        ty: u16,
        /// The type expected.
        expected: u16,
    },
    /// A generic netlink answer carrying another command than the
    /// request's answer.
    #[error("command {cmd} in answer to {request} (expected {expected})")]
    WrongCommand {
        /// The request.
        request: &'static str,
        /// The command received.
        cmd: u8,
        /// The command expected.
        expected: u8,
    },
    /// An answer addressed to another port than this socket's.
    #[error("answer addressed to port {port} (ours is {ours})")]
    WrongPort {
        /// The answer's `nlmsg_pid`.
        port: u32,
        /// This socket's port id.
        ours: u32,
    },
    /// The kernel sent something that does not decode (no finer cause).
    #[error("malformed message from the kernel: {0}")]
    Malformed(String),
    /// A well-formed message that is not the expected answer.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// The kernel did not answer a request that it answers when it acts on
    /// it (e.g. a subscription it ignored).
    #[error("no answer from the kernel to {request}")]
    NoAnswer {
        /// What was asked.
        request: &'static str,
    },
    /// A dump was interrupted (`NLM_F_DUMP_INTR`): the kernel's state changed
    /// while it was being dumped, so what was received may be inconsistent.
    /// Every message was still passed on; dump again for a consistent view.
    #[error("dump interrupted: the kernel's state changed during the dump ({seen} messages received); dump again")]
    DumpInterrupted {
        /// Messages received before the dump ended.
        seen: usize,
    },
    /// A datagram longer than the socket's send buffer allows, even after
    /// the socket grew it: netlink refuses datagrams over `SO_SNDBUF` less
    /// 32 bytes (`EMSGSIZE`), and a process without `CAP_NET_ADMIN` cannot
    /// raise `SO_SNDBUF` past `net.core.wmem_max` (the kernel doubles it).
    #[error("a {size}-byte datagram does not fit this socket's send buffer ({send_buffer} bytes, SO_SNDBUF; netlink sends at most {} bytes): {}", send_buffer.saturating_sub(SNDBUF_OVERHEAD), sndbuf_hint(*size, *wmem_max))]
    SendTooLarge {
        /// The datagram's size.
        size: usize,
        /// The send buffer's size after growing it.
        send_buffer: usize,
        /// `net.core.wmem_max`, if readable.
        wmem_max: Option<usize>,
    },
    /// A request that cannot be encoded (e.g. longer than `u32::MAX`).
    #[error("request too large: {0} bytes")]
    TooLarge(usize),
    /// The generic netlink controller (`nlctrl`) has no family of this name
    /// (it answered `ENOENT`): the family is not registered in this
    /// network namespace (its module is not loaded, or it does not exist).
    #[error("generic netlink family {name:?} not registered")]
    FamilyNotFound {
        /// The name asked for.
        name: String,
    },
    /// A generic netlink family has no multicast group of this name.
    #[error("generic netlink family {family:?} has no multicast group {group:?}")]
    GroupNotFound {
        /// The family.
        family: String,
        /// The group asked for.
        group: String,
    },
}

/// What is specific to the rustnl kernel module ([`Error::Module`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// `socket()` said `EPROTONOSUPPORT` for the rustnl unit: the module is
    /// not loaded (or uses another unit).
    #[error("rustnl kernel module not loaded: netlink unit {unit} has no kernel socket")]
    NotLoaded {
        /// The unit asked for.
        unit: u32,
    },
    /// The unit is registered but has no kernel socket in this network
    /// namespace (`sendto` said `ECONNREFUSED`): the module does not serve
    /// it (loaded with `existing_netns=0`, this namespace existed before),
    /// or it is unloading.
    #[error("netlink unit {unit} has no kernel socket in this network namespace (sendto: ECONNREFUSED): the rustnl module does not serve it")]
    NamespaceNotServed {
        /// The unit asked for.
        unit: u32,
    },
    /// The rustnl module's generic netlink family is not registered in this
    /// network namespace: the controller (`nlctrl`) does not know the name
    /// [`FAMILY_NAME`](crate::proto::genl::FAMILY_NAME) (the module is not
    /// loaded, or it is a build without the generic netlink face).
    #[error("rustnl generic netlink family not registered: the generic netlink controller knows no family \"rustnl\" in this network namespace (the rustnl kernel module is not loaded)")]
    GenlNotRegistered,
    /// A payload too large for the generic netlink face, refused before
    /// sending: it travels in one attribute, whose `nla_len` is a `u16`, so
    /// it carries at most
    /// [`MAX_ATTR_PAYLOAD`](crate::proto::genl::MAX_ATTR_PAYLOAD) bytes. The
    /// classic face carries up to the module's `max_payload`.
    #[error("payload of {size} bytes exceeds the generic netlink face's limit of {limit} bytes (one netlink attribute; nla_len is a u16); the classic face carries up to the module's max_payload")]
    GenlPayloadTooLarge {
        /// The payload's size.
        size: usize,
        /// The limit, [`MAX_ATTR_PAYLOAD`](crate::proto::genl::MAX_ATTR_PAYLOAD).
        limit: usize,
    },
}

impl ModuleError {
    /// The errno the system said (or would say) for it.
    pub fn errno(&self) -> i32 {
        match self {
            ModuleError::NotLoaded { .. } => libc::EPROTONOSUPPORT,
            ModuleError::NamespaceNotServed { .. } => libc::ECONNREFUSED,
            ModuleError::GenlNotRegistered => libc::ENOENT,
            ModuleError::GenlPayloadTooLarge { .. } => libc::EMSGSIZE,
        }
    }
}

/// An I/O error of the caller's (e.g. in a `?` chain that mixes the
/// library's calls with file or socket I/O): [`Error::Io`] with `op` "I/O".
impl From<io::Error> for Error {
    fn from(source: io::Error) -> Error {
        Error::Io { op: "I/O", source }
    }
}

/// How to send a datagram of `size` bytes: what the send buffer's cap is
/// and who may lift it.
fn sndbuf_hint(size: usize, wmem_max: Option<usize>) -> String {
    let need = size.saturating_add(SNDBUF_OVERHEAD).div_ceil(2);
    match wmem_max {
        Some(max) => format!(
            "without CAP_NET_ADMIN (SO_SNDBUFFORCE) the buffer is capped by net.core.wmem_max ({max}); run as root or raise it: sysctl -w net.core.wmem_max={need}"
        ),
        None => format!(
            "without CAP_NET_ADMIN (SO_SNDBUFFORCE) the buffer is capped by net.core.wmem_max; run as root or raise it to {need}"
        ),
    }
}

impl Error {
    pub(crate) fn io(op: &'static str) -> Error {
        Error::Io {
            op,
            source: io::Error::last_os_error(),
        }
    }

    /// The errno, for errors that carry one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Kernel(k) => Some(k.errno),
            Error::Module(m) => Some(m.errno()),
            Error::ProtocolNotSupported { .. } => Some(libc::EPROTONOSUPPORT),
            Error::Timeout | Error::WouldBlock => Some(libc::EAGAIN),
            Error::Overrun => Some(libc::ENOBUFS),
            Error::FamilyNotFound { .. } | Error::GroupNotFound { .. } => Some(libc::ENOENT),
            Error::SendTooLarge { .. } => Some(libc::EMSGSIZE),
            _ => None,
        }
    }
}

/// Why an attribute could not be read as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttrError {
    /// The attribute stream is malformed (a length too small or past the
    /// end) at this offset.
    Malformed {
        /// Offset of the bad attribute within its stream.
        offset: usize,
    },
    /// A fixed-size value whose payload has another size.
    Size {
        /// The attribute's type.
        ty: u16,
        /// The value's size in bytes.
        expected: usize,
        /// The payload's size.
        got: usize,
    },
    /// A required attribute is absent.
    Missing {
        /// The attribute's type.
        ty: u16,
    },
    /// A string attribute that is not UTF-8.
    NotUtf8 {
        /// The attribute's type.
        ty: u16,
    },
}

impl fmt::Display for AttrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrError::Malformed { offset } => {
                write!(f, "malformed netlink attribute at offset {offset}")
            }
            AttrError::Size { ty, expected, got } => write!(
                f,
                "attribute {ty}: expected a {expected}-byte value, got {got} bytes"
            ),
            AttrError::Missing { ty } => write!(f, "attribute {ty} missing"),
            AttrError::NotUtf8 { ty } => write!(f, "attribute {ty}: string is not UTF-8"),
        }
    }
}

impl std::error::Error for AttrError {}

impl From<BadAttr> for AttrError {
    fn from(b: BadAttr) -> AttrError {
        AttrError::Malformed { offset: b.offset }
    }
}

impl From<AttrError> for Error {
    fn from(e: AttrError) -> Error {
        Error::BadAttr {
            what: "attribute",
            source: e,
        }
    }
}

/// An `NLMSG_ERROR` from the kernel: the errno and, when the socket enabled
/// extended acks, the kernel's own explanation: a text, the offset of the
/// offending attribute, the type of a missing one.
///
/// Clients that know the family's attributes name the attribute the error
/// is about ([`KernelError::attr`]): the rustnl generic netlink client
/// ([`GenlClient`](crate::GenlClient)) does, with the spec's names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KernelError {
    /// Positive errno (`EINVAL`, ...).
    pub errno: i32,
    /// Extended-ack text (`NLMSGERR_ATTR_MSG`).
    pub message: Option<String>,
    /// Extended-ack offset of the offending attribute (`NLMSGERR_ATTR_OFFS`),
    /// in bytes from the start of the request's netlink header.
    pub offset: Option<u32>,
    /// Type of a required attribute the request lacks
    /// (`NLMSGERR_ATTR_MISS_TYPE`).
    pub missing_type: Option<u16>,
    /// Offset of the nest that lacks [`KernelError::missing_type`]
    /// (`NLMSGERR_ATTR_MISS_NEST`), from the start of the request's netlink
    /// header; `None` when it is missing at the top level.
    pub missing_nest: Option<u32>,
    /// The name of the attribute the error is about (the missing one, or
    /// the one at [`KernelError::offset`]), filled in by clients that know
    /// the family's attribute names.
    pub attr: Option<&'static str>,
}

impl KernelError {
    /// An error with `errno` and nothing else.
    pub fn new(errno: i32) -> KernelError {
        KernelError {
            errno,
            ..KernelError::default()
        }
    }

    /// Fills in the extended-ack attributes found in `tlvs` (the stream
    /// after `struct nlmsgerr`, or after the error of an `NLMSG_DONE`).
    pub(crate) fn read_ext_ack(&mut self, tlvs: &[u8]) {
        for a in crate::proto::Attrs::new(tlvs) {
            let Ok(a) = a else { break };
            let u32_of = |p: &[u8]| p.first_chunk::<4>().map(|b| u32::from_ne_bytes(*b));
            match a.ty {
                NLMSGERR_ATTR_MSG => {
                    let end = a
                        .payload
                        .iter()
                        .position(|&c| c == 0)
                        .unwrap_or(a.payload.len());
                    let text = a.payload.get(..end).unwrap_or_default();
                    self.message = Some(String::from_utf8_lossy(text).into_owned());
                }
                NLMSGERR_ATTR_OFFS => self.offset = u32_of(a.payload),
                NLMSGERR_ATTR_MISS_TYPE => {
                    self.missing_type = u32_of(a.payload).and_then(|t| u16::try_from(t).ok());
                }
                NLMSGERR_ATTR_MISS_NEST => self.missing_nest = u32_of(a.payload),
                _ => {}
            }
        }
    }
}

impl std::error::Error for KernelError {}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let desc = io::Error::from_raw_os_error(self.errno);
        let desc = desc.to_string();
        let desc = desc.split(" (os error").next().unwrap_or(&desc);
        write!(f, "kernel error {} ({desc})", errno_name(self.errno))?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        let (sep, close) = match &self.message {
            Some(_) => (" (", ")"),
            None => (": ", ""),
        };
        // The attribute by name, unless the kernel's text names it already.
        let said = |name: &str| {
            self.message.as_deref().is_some_and(|m| {
                m.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
                    .any(|w| w == name)
            })
        };
        match (self.missing_type, self.attr) {
            (Some(_), Some(name)) if said(name) => {}
            (Some(_), Some(name)) => write!(f, "{sep}missing attribute {name}{close}")?,
            (Some(ty), None) => write!(f, "{sep}missing attribute type {ty}{close}")?,
            (None, Some(name)) if self.offset.is_some() && !said(name) => {
                write!(f, "{sep}attribute {name}{close}")?
            }
            (None, _) => {}
        }
        Ok(())
    }
}

/// Symbolic name of the errnos netlink protocols commonly answer with.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ERANGE => "ERANGE",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOBUFS => "ENOBUFS",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ENOSPC => "ENOSPC",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `?` takes a std I/O error into the library's error.
    #[test]
    fn io_errors_convert() {
        fn read() -> Result<String> {
            Ok(std::fs::read_to_string("/nonexistent/rustnl")?)
        }
        match read() {
            Err(e @ Error::Io { .. }) => assert_eq!(e.errno(), Some(libc::ENOENT)),
            other => panic!("{other:?}"),
        }
    }
}
