//! What request/answer exchanges run over: a [`Conn`] is a [`Socket`] or,
//! in tests, a [`FakeConn`](crate::testing::FakeConn) that answers from a
//! closure, without a kernel (after mdlayher/netlink's `nltest`).

use crate::errors::Result;
use crate::socket::{Datagram, Socket};

/// A netlink connection: sends datagrams to the kernel and receives its
/// answers. [`Socket`] is the real one; [`FakeConn`](crate::testing::FakeConn) a test double.
pub trait Conn {
    /// The port id answers are addressed to.
    fn port_id(&self) -> u32;
    /// The sequence number of the next request sent on this connection
    /// (the connection owns them, so that no two requests on it share one,
    /// whoever builds them).
    fn next_seq(&mut self) -> u32;
    /// Sends one datagram (one or more messages) to the kernel.
    fn send(&mut self, bytes: &[u8]) -> Result<()>;
    /// Receives the next datagram.
    fn recv(&mut self) -> Result<Datagram<'_>>;
    /// The bytes of the datagram the last successful `recv` returned.
    fn last(&self) -> &[u8];
}

impl Conn for Socket {
    fn port_id(&self) -> u32 {
        Socket::port_id(self)
    }
    fn next_seq(&mut self) -> u32 {
        Socket::next_seq(self)
    }
    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        Socket::send(self, bytes)
    }
    fn recv(&mut self) -> Result<Datagram<'_>> {
        Socket::recv(self)
    }
    fn last(&self) -> &[u8] {
        Socket::last(self)
    }
}
