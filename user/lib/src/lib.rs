//! rustnl: a netlink library, and the client of the rustnl kernel module.
//!
//! - [`Socket`]: a netlink socket of any protocol unit (port id from
//!   `getsockname`, groups, timeouts, receive sizing that never truncates).
//! - [`MessageBuilder`]: appends netlink messages to one buffer, for batching
//!   several requests into a single `send`.
//! - [`proto`]: the rustnl message layouts and the zero-copy, never-panicking
//!   message splitter ([`proto::Messages`]), shared with the kernel module.
//! - [`Client`]: the rustnl protocol (ECHO) over a [`Socket`].
//! - [`Subscription`]: a listener on multicast groups, generic over a
//!   decoder ([`Decode`]): the module's events of either face, process and
//!   rtnetlink events.
//! - [`genl`]: generic netlink for any family: resolution by name through
//!   `nlctrl` ([`genl::Family`]) and requests with a `genlmsghdr`.
//! - [`GenlClient`] / [`GenlEvents`]: the rustnl protocol over the
//!   module's generic netlink family `rustnl`.
//! - [`attr`]: netlink attributes: a builder with nesting and typed,
//!   zero-copy getters.
//!
//! The library never prints; every failure is an [`Error`].

// One public path per item: the modules are private and their items are
// re-exported here, except the namespaces `attr`, `genl`, `families`,
// `testing` and `tokio`, whose items live only there.
pub mod attr;
mod client;
mod conn;
mod errors;
mod event;
mod face;
pub mod families;
pub mod genl;
mod genl_client;
mod message;
mod request;
mod socket;
mod sys;
pub mod testing;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use client::Client;
pub use conn::Conn;
pub use errors::{errno_name, Error, KernelError, ModuleError, Result, SNDBUF_OVERHEAD};
pub use event::{decode_event, ClassicEvents, Decode, Event, EventKind, OwnedEvent, Subscription};
pub use face::{Face, ModuleClient};
pub use genl_client::{
    counters, decode_genl_event, mcast_groups_of, resolve_rustnl, GenlClient, GenlEvents,
    GenlInfo,
};
pub use message::MessageBuilder;
pub use request::request;
pub use rustnl_shared as proto;
pub use socket::{Datagram, RecvMode, Socket, DEFAULT_TIMEOUT};

/// Serializes bytes as text, invalid UTF-8 replaced (for payloads).
#[cfg(feature = "serde")]
fn lossy_text<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
