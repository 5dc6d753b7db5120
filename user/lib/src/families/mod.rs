//! The kernel's standard netlink families, on the same library: they work on
//! any Linux, with or without rustnl.
//!
//! - [`proc_events`]: connector process events (fork, exec, exit, ...).
//! - [`route`]: rtnetlink link, address and route events, decoded.
//! - [`table`]: the netlink sockets of the system, from `/proc/net/netlink`.

pub mod proc_events;
pub mod route;
pub mod table;
