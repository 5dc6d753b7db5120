//! Typed errors.

use std::{fmt, io};

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking netlink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `socket()` said `EPROTONOSUPPORT` for the rustnl unit: the module is
    /// not loaded (or uses another unit).
    #[error("rustnl kernel module not loaded: netlink unit {unit} has no kernel socket")]
    ModuleNotLoaded {
        /// The unit asked for.
        unit: u32,
    },
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
    /// The kernel sent something that does not decode.
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
            Error::ModuleNotLoaded { .. } | Error::ProtocolNotSupported { .. } => {
                Some(libc::EPROTONOSUPPORT)
            }
            Error::Timeout | Error::WouldBlock => Some(libc::EAGAIN),
            Error::Overrun => Some(libc::ENOBUFS),
            Error::FamilyNotFound { .. } | Error::GroupNotFound { .. } => Some(libc::ENOENT),
            _ => None,
        }
    }
}

/// An `NLMSG_ERROR` from the kernel: the errno and, when the socket enabled
/// extended acks, the kernel's own explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// Positive errno (`EINVAL`, ...).
    pub errno: i32,
    /// Extended-ack text (`NLMSGERR_ATTR_MSG`).
    pub message: Option<String>,
    /// Extended-ack offset of the offending attribute (`NLMSGERR_ATTR_OFFS`).
    pub offset: Option<u32>,
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
