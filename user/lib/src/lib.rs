//! rustnl: a netlink library, and the client of the rustnl kernel module.
//!
//! - [`Socket`]: a netlink socket of any protocol unit (port id from
//!   `getsockname`, groups, timeouts, receive sizing that never truncates).
//! - [`MessageBuilder`]: appends netlink messages to one buffer, for batching
//!   several requests into a single `send`.
//! - [`proto`]: the rustnl message layouts and the zero-copy, never-panicking
//!   message splitter ([`proto::Messages`]), shared with the kernel module.
//! - [`Client`]: the rustnl protocol (ECHO) over a [`Socket`].
//! - [`genl`]: generic netlink for any family: resolution by name through
//!   `nlctrl` ([`genl::Family`]) and requests with a `genlmsghdr`.
//! - [`GenlClient`] / [`GenlSubscription`]: the rustnl protocol over the
//!   module's generic netlink family `rustnl` ([`genl_client`]).
//! - [`attr`]: netlink attributes: a builder with nesting and typed,
//!   zero-copy getters.
//!
//! The library never prints; every failure is an [`Error`].

pub mod attr;
pub mod client;
pub mod conn;
pub mod error;
pub mod families;
pub mod genl;
pub mod genl_client;
pub mod message;
pub mod request;
pub mod socket;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use client::{Client, Event, EventKind, OwnedEvent, Subscription};
pub use conn::{testing, Conn};
pub use error::{Error, KernelError, Result};
pub use genl_client::{GenlClient, GenlInfo, GenlSubscription};
pub use message::MessageBuilder;
pub use request::request;
pub use rustnl_shared as proto;
pub use socket::{Datagram, RecvMode, Socket};

/// Serializes bytes as text, invalid UTF-8 replaced (for payloads).
#[cfg(feature = "serde")]
fn lossy_text<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
