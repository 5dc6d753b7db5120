//! The rustnl module over either of its faces: [`Face`] says which,
//! [`ModuleClient`] is what both clients do.

use crate::client::Client;
use crate::errors::Result;
use crate::genl_client::GenlClient;
use crate::proto::BroadcastResult;
use crate::socket::Socket;
use std::time::Duration;

/// Which face of the rustnl module to talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// Its own netlink unit (the module's `unit=` parameter, default
    /// [`DEFAULT_UNIT`](crate::proto::DEFAULT_UNIT)): payloads up to its
    /// `max_payload`.
    Classic {
        /// The unit.
        unit: u32,
    },
    /// Its generic netlink family `rustnl`, found by name: payloads of at
    /// most [`MAX_ATTR_PAYLOAD`](crate::proto::genl::MAX_ATTR_PAYLOAD).
    Genl,
}

impl Face {
    /// Connects to the module over this face, receive timeout
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT).
    ///
    /// ```no_run
    /// use rustnl::{Face, ModuleClient};
    /// for face in [Face::Classic { unit: 31 }, Face::Genl] {
    ///     let mut client = face.connect()?;
    ///     assert_eq!(client.echo(b"hi")?, b"hi");
    /// }
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn connect(self) -> Result<Box<dyn ModuleClient>> {
        Ok(match self {
            Face::Classic { unit } => Box::new(Client::connect(unit)?),
            Face::Genl => Box::new(GenlClient::connect()?),
        })
    }
}

/// What the module's clients of both faces do, for code that works on
/// either ([`Face::connect`]). `get-info` is the clients' own
/// ([`Client::info`], [`GenlClient::info`]): the generic netlink face
/// answers with both faces' counters.
pub trait ModuleClient {
    /// The face this client talks to.
    fn face(&self) -> Face;
    /// How long to wait for an answer (`None`: forever).
    fn set_timeout(&self, timeout: Option<Duration>) -> Result<()>;
    /// Sends `payload` to be echoed; returns the echo.
    fn echo(&mut self, payload: &[u8]) -> Result<&[u8]>;
    /// Sends `count` echo requests of `payload` in one datagram and checks
    /// the echoes.
    fn echo_batch(&mut self, payload: &[u8], count: usize) -> Result<()>;
    /// Asks the module to multicast `payload` to numbered `group`.
    fn broadcast(&mut self, group: u32, payload: &[u8]) -> Result<BroadcastResult>;
    /// The module's number of multicast groups (its `groups=` parameter).
    fn groups(&mut self) -> Result<u32>;
}

impl ModuleClient for Client<Socket> {
    fn face(&self) -> Face {
        Face::Classic { unit: self.unit() }
    }
    fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        Client::set_timeout(self, timeout)
    }
    fn echo(&mut self, payload: &[u8]) -> Result<&[u8]> {
        Client::echo(self, payload)
    }
    fn echo_batch(&mut self, payload: &[u8], count: usize) -> Result<()> {
        Client::echo_batch(self, payload, count)
    }
    fn broadcast(&mut self, group: u32, payload: &[u8]) -> Result<BroadcastResult> {
        Client::broadcast(self, group, payload)
    }
    fn groups(&mut self) -> Result<u32> {
        self.info().map(|i| i.groups)
    }
}

impl ModuleClient for GenlClient<Socket> {
    fn face(&self) -> Face {
        Face::Genl
    }
    fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        GenlClient::set_timeout(self, timeout)
    }
    fn echo(&mut self, payload: &[u8]) -> Result<&[u8]> {
        GenlClient::echo(self, payload)
    }
    fn echo_batch(&mut self, payload: &[u8], count: usize) -> Result<()> {
        GenlClient::echo_batch(self, payload, count)
    }
    fn broadcast(&mut self, group: u32, payload: &[u8]) -> Result<BroadcastResult> {
        GenlClient::broadcast(self, group, payload)
    }
    fn groups(&mut self) -> Result<u32> {
        self.info().map(|i| i.groups)
    }
}
