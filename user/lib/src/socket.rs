//! Netlink sockets.

use crate::errors::{Error, Result, SNDBUF_OVERHEAD};
use crate::proto::Messages;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// How [`Socket::recv`] sizes its buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvMode {
    /// Peek at each datagram's size first (`MSG_PEEK | MSG_TRUNC`) and grow
    /// the buffer to fit: never loses data; two system calls per datagram.
    #[default]
    Grow,
    /// One system call per datagram into the current buffer; a datagram that
    /// does not fit is detected (`MSG_TRUNC`) and reported as
    /// [`Error::Truncated`], the buffer then grown for the next one.
    Fixed,
}

/// What a receive learnt besides the bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecvMeta {
    sender: u32,
    groups: u32,
    nsid: Option<i32>,
}

/// How long the library's clients wait for the kernel's answer unless told
/// otherwise (their `set_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// `net.core.wmem_max`, the cap on `SO_SNDBUF` without `CAP_NET_ADMIN`.
fn wmem_max() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Initial receive buffer: a page-sized multiple that holds typical replies.
const INITIAL_BUFFER: usize = 32 * 1024;

/// A netlink socket of one protocol unit, bound to a kernel-chosen port id.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    protocol: u32,
    port_id: u32,
    buf: Vec<u8>,
    mode: RecvMode,
    nonblocking: bool,
    all_nsid: bool,
    last_len: usize,
    seq: u32,
}

/// One received datagram, borrowed from the socket's buffer.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Datagram<'a> {
    /// The bytes received.
    pub bytes: &'a [u8],
    /// Port id of the sender (0: the kernel).
    pub sender: u32,
    /// Multicast group mask it was sent to (0: unicast).
    pub groups: u32,
    /// With [`Socket::set_listen_all_nsid`]: the id, in the socket's network
    /// namespace, of the namespace the datagram comes from (`None`: none was
    /// reported, e.g. the socket's own namespace without an id).
    pub nsid: Option<i32>,
}

impl<'a> Datagram<'a> {
    /// A datagram from the kernel (sender 0, unicast), e.g. for a
    /// [`Conn`](crate::Conn) test double.
    pub fn new(bytes: &'a [u8]) -> Datagram<'a> {
        Datagram {
            bytes,
            sender: 0,
            groups: 0,
            nsid: None,
        }
    }

    /// The messages of this datagram (zero copy; never panics).
    pub fn messages(&self) -> Messages<'a> {
        Messages::new(self.bytes)
    }
}

/// `socket(AF_NETLINK, SOCK_RAW, protocol)`.
fn raw_socket(protocol: u32) -> Result<OwnedFd> {
    // SAFETY: plain system call.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol as libc::c_int,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPROTONOSUPPORT) => Error::ProtocolNotSupported { unit: protocol },
            _ => Error::Io {
                op: "socket(AF_NETLINK)",
                source: err,
            },
        });
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr(pid: u32, groups: u32) -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_pid = pid;
    sa.nl_groups = groups;
    sa
}

impl Socket {
    /// Opens a socket of netlink protocol `protocol` and binds it with no
    /// multicast groups; the kernel assigns the port id.
    ///
    /// ```
    /// let a = rustnl::Socket::open(libc::NETLINK_ROUTE as u32)?;
    /// let b = rustnl::Socket::open(libc::NETLINK_ROUTE as u32)?;
    /// assert_ne!(a.port_id(), b.port_id()); // two sockets per process work
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn open(protocol: u32) -> Result<Socket> {
        Self::open_with_groups(protocol, 0)
    }

    /// Opens a socket and binds it to the multicast `groups` bit mask (groups
    /// 1..=32; use [`Socket::add_membership`] for any group number).
    pub fn open_with_groups(protocol: u32, groups: u32) -> Result<Socket> {
        Self::bind_new(raw_socket(protocol)?, protocol, groups)
    }

    /// Opens a socket in the network namespace `netns` (a descriptor of
    /// `/proc/PID/ns/net`, `/run/netns/NAME`, ...) and binds it to `groups`.
    /// A socket stays in the namespace it was created in: a short-lived
    /// thread enters `netns` (`setns`) to create it, nothing else changes
    /// namespace. Needs `CAP_SYS_ADMIN` over the namespace.
    pub fn open_in_netns(protocol: u32, groups: u32, netns: BorrowedFd<'_>) -> Result<Socket> {
        let ns = netns.as_raw_fd();
        let fd = std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: plain system call on a descriptor the caller
                // lends us; it changes this (short-lived) thread only.
                if unsafe { libc::setns(ns, libc::CLONE_NEWNET) } < 0 {
                    return Err(Error::io("setns(CLONE_NEWNET)"));
                }
                raw_socket(protocol)
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Unexpected("namespace thread failed".into())))
        })?;
        Self::bind_new(fd, protocol, groups)
    }

    /// [`Socket::open_in_netns`] for the namespace file at `path`
    /// (`/run/netns/NAME`, `/proc/PID/ns/net`).
    pub fn open_in_netns_path(
        protocol: u32,
        groups: u32,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Socket> {
        let ns = std::fs::File::open(path).map_err(|source| Error::Io {
            op: "open(network namespace)",
            source,
        })?;
        Self::open_in_netns(protocol, groups, ns.as_fd())
    }

    /// Takes over a netlink socket opened elsewhere (inherited, received
    /// over a Unix socket, created in another namespace). Its protocol and
    /// port id are read from the kernel; an unbound socket is bound (no
    /// groups). Anything but an `AF_NETLINK` socket is refused.
    pub fn from_fd(fd: OwnedFd) -> Result<Socket> {
        let mut protocol: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `protocol`/`len` describe a writable c_int.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PROTOCOL,
                (&mut protocol as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(Error::io("getsockopt(SO_PROTOCOL)"));
        }
        // SAFETY: plain fcntl on a descriptor we own.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        if flags < 0 {
            return Err(Error::io("fcntl(F_GETFL)"));
        }
        let mut sock = Socket::wrap(fd, protocol as u32);
        sock.nonblocking = flags & libc::O_NONBLOCK != 0;
        let addr = sock.local_addr()?;
        if i32::from(addr.nl_family) != libc::AF_NETLINK {
            return Err(Error::Unexpected(format!(
                "descriptor is a socket of address family {}, not AF_NETLINK",
                addr.nl_family
            )));
        }
        if addr.nl_pid == 0 {
            sock.bind(0)?;
        } else {
            sock.port_id = addr.nl_pid;
        }
        Ok(sock)
    }

    fn wrap(fd: OwnedFd, protocol: u32) -> Socket {
        Socket {
            fd,
            protocol,
            port_id: 0,
            buf: vec![0; INITIAL_BUFFER],
            mode: RecvMode::default(),
            nonblocking: false,
            all_nsid: false,
            last_len: 0,
            seq: 0,
        }
    }

    fn bind_new(fd: OwnedFd, protocol: u32, groups: u32) -> Result<Socket> {
        let mut sock = Socket::wrap(fd, protocol);
        sock.bind(groups)?;
        Ok(sock)
    }

    fn bind(&mut self, groups: u32) -> Result<()> {
        let sa = sockaddr(0, groups);
        // SAFETY: `sa` is a valid sockaddr_nl of the given length.
        let rc = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::io("bind(AF_NETLINK)"));
        }
        self.port_id = self.local_addr()?.nl_pid;
        Ok(())
    }

    fn local_addr(&self) -> Result<libc::sockaddr_nl> {
        let mut sa = sockaddr(0, 0);
        let mut len = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `sa`/`len` describe a writable sockaddr_nl.
        let rc = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&mut sa as *mut libc::sockaddr_nl).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(Error::io("getsockname"));
        }
        Ok(sa)
    }

    /// The port id the kernel assigned to this socket (from `getsockname`).
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// The sequence number for the next request on this socket: 1, 2, ...
    /// (wrapping). The library's clients take theirs here too.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The netlink protocol unit.
    pub fn protocol(&self) -> u32 {
        self.protocol
    }

    fn setsockopt<T>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: T,
        op: &'static str,
    ) -> Result<()> {
        // SAFETY: `value` is a valid, readable `T` of the given size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&value as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::io(op));
        }
        Ok(())
    }

    /// Receive timeout for blocking receives (`None`: wait forever).
    pub fn set_recv_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        let tv = match timeout {
            Some(d) => libc::timeval {
                tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                // A zero timeval means "forever": round tiny timeouts up.
                tv_usec: if d.as_secs() == 0 && d.subsec_micros() == 0 {
                    1
                } else {
                    d.subsec_micros() as libc::suseconds_t
                },
            },
            None => libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        self.setsockopt(
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            tv,
            "setsockopt(SO_RCVTIMEO)",
        )
    }

    /// Switches `O_NONBLOCK`; a receive with nothing queued then returns
    /// [`Error::WouldBlock`].
    pub fn set_nonblocking(&mut self, on: bool) -> Result<()> {
        let fd = self.fd.as_raw_fd();
        // SAFETY: plain fcntl on our descriptor.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(Error::io("fcntl(F_GETFL)"));
        }
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
            return Err(Error::io("fcntl(F_SETFL)"));
        }
        self.nonblocking = on;
        Ok(())
    }

    /// Sets a boolean `SOL_NETLINK` option.
    pub(crate) fn set_netlink_option(
        &self,
        name: libc::c_int,
        on: bool,
        op: &'static str,
    ) -> Result<()> {
        self.setsockopt(libc::SOL_NETLINK, name, on as libc::c_int, op)
    }

    /// `NETLINK_LISTEN_ALL_NSID`: receive the multicasts of every network
    /// namespace that has an id in this socket's namespace (and on which the
    /// caller has `CAP_NET_BROADCAST`), each [`Datagram`] telling its
    /// namespace's id in [`Datagram::nsid`] (read from the control message
    /// of `recvmsg`).
    pub fn set_listen_all_nsid(&mut self, on: bool) -> Result<()> {
        self.set_netlink_option(
            libc::NETLINK_LISTEN_ALL_NSID,
            on,
            "setsockopt(NETLINK_LISTEN_ALL_NSID)",
        )?;
        self.all_nsid = on;
        Ok(())
    }

    /// `NETLINK_EXT_ACK`: ask for error texts in `NLMSG_ERROR`.
    pub fn set_ext_ack(&self, on: bool) -> Result<()> {
        self.setsockopt(
            libc::SOL_NETLINK,
            libc::NETLINK_EXT_ACK,
            on as libc::c_int,
            "setsockopt(NETLINK_EXT_ACK)",
        )
    }

    /// `NETLINK_CAP_ACK`: errors do not echo the request's payload.
    pub fn set_cap_ack(&self, on: bool) -> Result<()> {
        self.setsockopt(
            libc::SOL_NETLINK,
            libc::NETLINK_CAP_ACK,
            on as libc::c_int,
            "setsockopt(NETLINK_CAP_ACK)",
        )
    }

    /// Joins multicast `group` (any number, also above 32:
    /// `NETLINK_ADD_MEMBERSHIP`).
    pub fn add_membership(&self, group: u32) -> Result<()> {
        self.setsockopt(
            libc::SOL_NETLINK,
            libc::NETLINK_ADD_MEMBERSHIP,
            group,
            "setsockopt(NETLINK_ADD_MEMBERSHIP)",
        )
    }

    /// Leaves multicast `group` (`NETLINK_DROP_MEMBERSHIP`).
    pub fn drop_membership(&self, group: u32) -> Result<()> {
        self.setsockopt(
            libc::SOL_NETLINK,
            libc::NETLINK_DROP_MEMBERSHIP,
            group,
            "setsockopt(NETLINK_DROP_MEMBERSHIP)",
        )
    }

    /// `NETLINK_BROADCAST_ERROR`: a multicast this socket could not take
    /// (full receive queue) counts as a delivery failure for the sender, so
    /// the kernel's broadcast reports it instead of only flagging an overrun
    /// here.
    pub fn set_broadcast_error(&self, on: bool) -> Result<()> {
        self.setsockopt(
            libc::SOL_NETLINK,
            libc::NETLINK_BROADCAST_ERROR,
            on as libc::c_int,
            "setsockopt(NETLINK_BROADCAST_ERROR)",
        )
    }

    /// `NETLINK_NO_ENOBUFS`: do not report receive-queue overruns.
    pub fn set_no_enobufs(&self, on: bool) -> Result<()> {
        self.setsockopt(
            libc::SOL_NETLINK,
            libc::NETLINK_NO_ENOBUFS,
            on as libc::c_int,
            "setsockopt(NETLINK_NO_ENOBUFS)",
        )
    }

    /// Receive buffer size (`SO_RCVBUF`; the kernel doubles it and caps it
    /// at `net.core.rmem_max` unless the caller may use `SO_RCVBUFFORCE`).
    pub fn set_recv_buffer_size(&self, bytes: usize) -> Result<()> {
        let v = bytes.min(libc::c_int::MAX as usize / 2) as libc::c_int;
        self.setsockopt(
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            v,
            "setsockopt(SO_RCVBUFFORCE)",
        )
        .or_else(|_| {
            self.setsockopt(
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                v,
                "setsockopt(SO_RCVBUF)",
            )
        })
    }

    /// The send buffer's size (`SO_SNDBUF` as the kernel reports it: twice
    /// what was asked for). Netlink refuses a datagram longer than this
    /// less [`SNDBUF_OVERHEAD`] bytes (`EMSGSIZE`).
    pub fn send_buffer_size(&self) -> Result<usize> {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v`/`len` describe a writable c_int.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(Error::io("getsockopt(SO_SNDBUF)"));
        }
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// Sizes the send buffer so that datagrams of up to `bytes` bytes can
    /// be sent, and returns the size the kernel set
    /// ([`Socket::send_buffer_size`]). `SO_SNDBUFFORCE` first, which needs
    /// `CAP_NET_ADMIN` (in the socket's network namespace's user
    /// namespace); without it `SO_SNDBUF`, which the kernel caps at
    /// `net.core.wmem_max` (so an unprivileged socket sends at most about
    /// twice `wmem_max`, 425,952 bytes with the default sysctl).
    /// [`Socket::send`] calls it by itself when a datagram does not fit.
    pub fn set_send_buffer_size(&self, bytes: usize) -> Result<usize> {
        let want = bytes.saturating_add(SNDBUF_OVERHEAD);
        // The kernel doubles the value (for its bookkeeping overhead).
        let v = want.div_ceil(2).min(libc::c_int::MAX as usize / 2) as libc::c_int;
        self.setsockopt(
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            v,
            "setsockopt(SO_SNDBUFFORCE)",
        )
        .or_else(|_| {
            self.setsockopt(
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                v,
                "setsockopt(SO_SNDBUF)",
            )
        })?;
        self.send_buffer_size()
    }

    /// How the receive buffer is sized (see [`RecvMode`]).
    pub fn set_recv_mode(&mut self, mode: RecvMode) {
        self.mode = mode;
    }

    fn recv_once(&mut self, flags: libc::c_int) -> Result<(usize, libc::sockaddr_nl, Option<i32>)> {
        loop {
            let mut sa = sockaddr(0, 0);
            let mut nsid = None;
            let n = if self.all_nsid {
                let mut iov = libc::iovec {
                    iov_base: self.buf.as_mut_ptr().cast(),
                    iov_len: self.buf.len(),
                };
                // Room for a few control messages, aligned for cmsghdr.
                let mut control = [0u64; 16];
                // SAFETY: msghdr is plain data; all-zero is a valid value.
                let mut msg: libc::msghdr = unsafe { zeroed() };
                msg.msg_name = (&mut sa as *mut libc::sockaddr_nl).cast();
                msg.msg_namelen = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&control) as _;
                // SAFETY: every pointer in `msg` refers to live, writable
                // memory of the length given.
                let n = unsafe {
                    libc::recvmsg(self.fd.as_raw_fd(), &mut msg, flags | libc::MSG_TRUNC)
                };
                if n >= 0 {
                    // SAFETY: `msg` was filled by recvmsg; the CMSG_* helpers
                    // stay within `msg_control`/`msg_controllen`.
                    let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
                    while !c.is_null() {
                        // SAFETY: `c` points at a cmsghdr inside `control`.
                        let h = unsafe { &*c };
                        if h.cmsg_level == libc::SOL_NETLINK
                            && h.cmsg_type == libc::NETLINK_LISTEN_ALL_NSID
                            && h.cmsg_len as usize >= unsafe { libc::CMSG_LEN(4) } as usize
                        {
                            // SAFETY: the kernel wrote an int after the header.
                            nsid = Some(unsafe {
                                std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>())
                            });
                        }
                        // SAFETY: as above.
                        c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
                    }
                }
                n
            } else {
                let mut len = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
                // SAFETY: `buf` is writable for its length; `sa`/`len` describe a
                // writable sockaddr_nl.
                unsafe {
                    libc::recvfrom(
                        self.fd.as_raw_fd(),
                        self.buf.as_mut_ptr().cast(),
                        self.buf.len(),
                        flags | libc::MSG_TRUNC,
                        (&mut sa as *mut libc::sockaddr_nl).cast(),
                        &mut len,
                    )
                }
            };
            if n >= 0 {
                return Ok((n as usize, sa, nsid));
            }
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) if self.nonblocking => Error::WouldBlock,
                Some(libc::EAGAIN) => Error::Timeout,
                Some(libc::ENOBUFS) => Error::Overrun,
                _ => Error::Io {
                    op: "recvfrom",
                    source: err,
                },
            });
        }
    }

    /// Receives one datagram, never silently truncated (see [`RecvMode`]).
    pub fn recv(&mut self) -> Result<Datagram<'_>> {
        let meta = self.recv_meta()?;
        Ok(self.datagram(meta))
    }

    /// The last datagram received, with `meta` from [`Socket::recv_meta`].
    pub(crate) fn datagram(&self, meta: RecvMeta) -> Datagram<'_> {
        Datagram {
            bytes: &self.buf[..self.last_len],
            sender: meta.sender,
            groups: meta.groups,
            nsid: meta.nsid,
        }
    }

    /// Receives one datagram into the buffer ([`Socket::last`]) and returns
    /// what else is known about it (for callers that cannot hold a borrow).
    pub(crate) fn recv_meta(&mut self) -> Result<RecvMeta> {
        let (n, sa, nsid) = match self.mode {
            RecvMode::Grow => {
                let (size, _, _) = self.recv_once(libc::MSG_PEEK)?;
                if size > self.buf.len() {
                    self.buf.resize(size, 0);
                }
                self.recv_once(0)?
            }
            RecvMode::Fixed => {
                let (size, sa, nsid) = self.recv_once(0)?;
                if size > self.buf.len() {
                    let buffer = self.buf.len();
                    self.buf.resize(size, 0);
                    return Err(Error::Truncated { size, buffer });
                }
                (size, sa, nsid)
            }
        };
        // The peeked datagram is the one consumed, so it fits; `min` keeps
        // this true even if another thread raced us on the same socket.
        let n = n.min(self.buf.len());
        self.last_len = n;
        Ok(RecvMeta {
            sender: sa.nl_pid,
            groups: sa.nl_groups,
            nsid,
        })
    }

    /// The bytes of the datagram the last successful [`Socket::recv`]
    /// returned (empty before the first).
    pub fn last(&self) -> &[u8] {
        &self.buf[..self.last_len]
    }

    /// Sends `bytes` (one or more netlink messages) to the kernel.
    ///
    /// A datagram longer than the send buffer allows is not an error as
    /// long as the buffer can grow: the socket grows it
    /// ([`Socket::set_send_buffer_size`]) and sends again. When it cannot
    /// grow enough (no `CAP_NET_ADMIN` and `net.core.wmem_max` too small),
    /// [`Error::SendTooLarge`] says which limit was hit.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        self.send_to(bytes, 0, 0)
    }

    /// Sends `bytes` to port id `pid` and/or multicast `groups` (see
    /// [`Socket::send`] for datagrams larger than the send buffer).
    pub fn send_to(&self, bytes: &[u8], pid: u32, groups: u32) -> Result<()> {
        match self.send_once(bytes, pid, groups) {
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EMSGSIZE) => {
                let have = self.send_buffer_size()?;
                let grown = if have < bytes.len().saturating_add(SNDBUF_OVERHEAD) {
                    self.set_send_buffer_size(bytes.len())?
                } else {
                    have
                };
                if grown < bytes.len().saturating_add(SNDBUF_OVERHEAD) {
                    return Err(Error::SendTooLarge {
                        size: bytes.len(),
                        send_buffer: grown,
                        wmem_max: wmem_max(),
                    });
                }
                self.send_once(bytes, pid, groups)
            }
            r => r,
        }
    }

    fn send_once(&self, bytes: &[u8], pid: u32, groups: u32) -> Result<()> {
        let sa = sockaddr(pid, groups);
        loop {
            // SAFETY: `bytes` is readable for its length; `sa` is valid.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    0,
                    (&sa as *const libc::sockaddr_nl).cast(),
                    size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) if self.nonblocking => return Err(Error::WouldBlock),
                _ => {
                    return Err(Error::Io {
                        op: "sendto",
                        source: err,
                    })
                }
            }
        }
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{NlMsgHdr, NLMSG_DONE, NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST};
    use crate::MessageBuilder;

    /// A 300,000-byte request (a NLMSG_NOOP with NLM_F_ACK, which any
    /// netlink unit acks) is more than the default send buffer
    /// (`net.core.wmem_default`, 212,992 bytes) lets through: `sendto` says
    /// EMSGSIZE. The socket grows its send buffer and the kernel acks.
    #[test]
    fn a_datagram_over_the_send_buffer_grows_it() {
        for unit in [libc::NETLINK_ROUTE as u32, libc::NETLINK_GENERIC as u32] {
            let mut s = Socket::open(unit).unwrap();
            s.set_cap_ack(true).unwrap();
            s.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
            let before = s.send_buffer_size().unwrap();
            let size = 300_000;
            assert!(before < size, "default send buffer {before}");
            let mut b = MessageBuilder::new();
            let payload = vec![0u8; size - crate::proto::NLMSG_HDRLEN];
            b.push(
                crate::proto::NLMSG_NOOP,
                NLM_F_REQUEST | crate::proto::NLM_F_ACK,
                1,
                &payload,
            )
            .unwrap();
            assert_eq!(b.as_bytes().len(), size);
            s.request(b.as_bytes(), |_| Ok(())).unwrap();
            assert!(s.send_buffer_size().unwrap() >= size + SNDBUF_OVERHEAD);
        }
    }

    /// Drops `CAP_NET_ADMIN` from this thread's effective set (capabilities
    /// are per thread: the other tests keep theirs).
    fn drop_net_admin() {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let mut h = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let mut d = [Data::default(); 2];
        // SAFETY: `h` and `d` are the header and two data structs capget
        // and capset read and write for version 3.
        unsafe {
            assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
            d[0].effective &= !(1 << 12); // CAP_NET_ADMIN
            assert_eq!(libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()), 0);
        }
    }

    /// Without CAP_NET_ADMIN the send buffer stops at twice
    /// `net.core.wmem_max`: a larger datagram is `Error::SendTooLarge`,
    /// naming the buffer, the sysctl and the capability, not sent.
    #[test]
    fn an_unprivileged_datagram_past_wmem_max_is_a_typed_error() {
        let wmem_max = wmem_max().expect("net.core.wmem_max");
        let size = 2 * wmem_max + 4096;
        assert!(
            size < 256 << 20,
            "net.core.wmem_max {wmem_max} too large to test"
        );
        std::thread::spawn(move || {
            drop_net_admin();
            let s = Socket::open(libc::NETLINK_GENERIC as u32).unwrap();
            let mut b = MessageBuilder::new();
            let payload = vec![0u8; size - crate::proto::NLMSG_HDRLEN];
            b.push(crate::proto::NLMSG_NOOP, NLM_F_REQUEST, 1, &payload)
                .unwrap();
            match s.send(b.as_bytes()) {
                Err(e @ Error::SendTooLarge { .. }) => {
                    let Error::SendTooLarge {
                        size: got,
                        send_buffer,
                        wmem_max: w,
                    } = e
                    else {
                        unreachable!()
                    };
                    assert_eq!((got, w), (size, Some(wmem_max)));
                    assert!(send_buffer <= 2 * wmem_max, "{send_buffer}");
                    assert_eq!(e.errno(), Some(libc::EMSGSIZE));
                    let text = e.to_string();
                    for word in [
                        "send buffer",
                        "CAP_NET_ADMIN",
                        "net.core.wmem_max",
                        "sysctl -w",
                    ] {
                        assert!(text.contains(word), "{text}");
                    }
                }
                other => panic!("{other:?}"),
            }
        })
        .join()
        .unwrap();
    }

    // NETLINK_ROUTE exists on every Linux host, so these run anywhere.

    #[test]
    fn two_sockets_in_one_process_get_distinct_kernel_assigned_port_ids() {
        let a = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
        let b = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
        assert_ne!(a.port_id(), 0);
        assert_ne!(a.port_id(), b.port_id());
        assert!(a.as_raw_fd() >= 0);
    }

    #[test]
    fn unit_without_kernel_socket_is_protocol_not_supported() {
        // Unit 30 is unused on stock kernels; /proc/net/netlink says whether
        // something on this host created it, and the answer must agree.
        let table = std::fs::read_to_string("/proc/net/netlink").unwrap_or_default();
        let unit30_exists = table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some("30"));
        match Socket::open(30) {
            Err(Error::ProtocolNotSupported { unit: 30 }) => assert!(!unit30_exists),
            Ok(_) => assert!(unit30_exists, "socket(30) worked but no unit 30 is listed"),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn timeout_and_nonblocking_are_reported_as_such() {
        let mut s = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
        s.set_recv_timeout(Some(Duration::from_millis(20))).unwrap();
        assert!(matches!(s.recv(), Err(Error::Timeout)));
        s.set_nonblocking(true).unwrap();
        assert!(matches!(s.recv(), Err(Error::WouldBlock)));
    }

    #[test]
    fn from_fd_takes_over_a_socket_and_refuses_other_descriptors() {
        // SAFETY: plain system call; the descriptor is owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        assert!(raw >= 0);
        // SAFETY: fresh descriptor, owned by nothing else.
        let mut s = Socket::from_fd(unsafe { OwnedFd::from_raw_fd(raw) }).unwrap();
        assert_eq!(s.protocol(), libc::NETLINK_ROUTE as u32);
        assert_ne!(s.port_id(), 0, "an unbound socket is bound");
        assert!(
            matches!(s.recv(), Err(Error::WouldBlock)),
            "O_NONBLOCK is seen"
        );
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(Socket::from_fd(OwnedFd::from(file)).is_err());
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        match Socket::from_fd(OwnedFd::from(udp)) {
            Err(Error::Unexpected(m)) => assert!(m.contains("not AF_NETLINK"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// A fresh network namespace (kept by a descriptor), or `None` where
    /// this process may not create one.
    fn new_netns() -> Option<std::fs::File> {
        std::thread::spawn(|| {
            // SAFETY: plain system call; it changes this thread only.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return None;
            }
            std::fs::File::open("/proc/thread-self/ns/net").ok()
        })
        .join()
        .unwrap()
    }

    fn link_count(s: &mut Socket) -> usize {
        s.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = MessageBuilder::new();
        b.push(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0u8; 16])
            .unwrap();
        s.request(b.as_bytes(), |_| Ok(())).unwrap()
    }

    /// A socket opened in another namespace sees that namespace (only `lo`
    /// in a fresh one); with NETLINK_LISTEN_ALL_NSID a socket here receives
    /// that namespace's link events, tagged with the id we gave it.
    #[test]
    fn socket_in_another_netns_and_events_tagged_with_its_nsid() {
        let Some(ns) = new_netns() else {
            eprintln!("skipped: cannot create a network namespace here");
            return;
        };
        let mut inside = Socket::open_in_netns(libc::NETLINK_ROUTE as u32, 0, ns.as_fd()).unwrap();
        assert_eq!(link_count(&mut inside), 1, "a fresh namespace has lo only");
        let path = format!("/proc/self/fd/{}", ns.as_raw_fd());
        let mut by_path = Socket::open_in_netns_path(libc::NETLINK_ROUTE as u32, 0, path).unwrap();
        assert_eq!(link_count(&mut by_path), 1);

        // Give the namespace an id here (RTM_NEWNSID: rtgenmsg, NETNSA_FD,
        // NETNSA_NSID).
        let nsid = 1000 + (std::process::id() % 20000) as i32;
        let mut here = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
        here.set_ext_ack(true).unwrap();
        here.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut p = vec![0u8; 4];
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&3u16.to_ne_bytes()); // NETNSA_FD
        p.extend_from_slice(&(ns.as_raw_fd() as u32).to_ne_bytes());
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes()); // NETNSA_NSID
        p.extend_from_slice(&nsid.to_ne_bytes());
        let mut b = MessageBuilder::new();
        b.push(88, NLM_F_REQUEST | crate::proto::NLM_F_ACK, 2, &p) // RTM_NEWNSID
            .unwrap();
        here.request(b.as_bytes(), |_| Ok(())).unwrap();

        let mut all = Socket::open_with_groups(libc::NETLINK_ROUTE as u32, 1).unwrap(); // RTMGRP_LINK
        all.set_listen_all_nsid(true).unwrap();
        all.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
        // Set lo up in the other namespace.
        let mut ifi = [0u8; 16];
        ifi[4..8].copy_from_slice(&1i32.to_ne_bytes());
        ifi[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        ifi[12..16].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        let mut b = MessageBuilder::new();
        b.push(
            libc::RTM_NEWLINK,
            NLM_F_REQUEST | crate::proto::NLM_F_ACK,
            3,
            &ifi,
        )
        .unwrap();
        inside.request(b.as_bytes(), |_| Ok(())).unwrap();
        loop {
            let d = all.recv().expect("the other namespace's link event");
            let is_link = d
                .messages()
                .flatten()
                .any(|m| m.header.ty == libc::RTM_NEWLINK);
            if is_link && d.nsid == Some(nsid) {
                break;
            }
        }
    }

    #[test]
    fn dump_reply_is_received_whole_in_both_modes() {
        for mode in [RecvMode::Grow, RecvMode::Fixed] {
            let mut s = Socket::open(libc::NETLINK_ROUTE as u32).unwrap();
            s.set_recv_mode(mode);
            s.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
            // RTM_GETLINK dump with an ifinfomsg (16 bytes, AF_UNSPEC).
            let mut b = MessageBuilder::new();
            b.push(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0u8; 16])
                .unwrap();
            s.send(b.as_bytes()).unwrap();
            let mut links = 0;
            'outer: loop {
                let d = s.recv().unwrap();
                assert_eq!(d.sender, 0);
                for m in d.messages() {
                    let m = m.unwrap();
                    let NlMsgHdr { ty, flags, seq, .. } = m.header;
                    assert_eq!(seq, 1);
                    if ty == NLMSG_DONE {
                        break 'outer;
                    }
                    assert_eq!(ty, libc::RTM_NEWLINK);
                    assert!(flags & NLM_F_MULTI != 0);
                    links += 1;
                }
            }
            assert!(links >= 1, "no link at all (loopback always exists)");
        }
    }
}
