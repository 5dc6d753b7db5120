//! The kernel's standard netlink families, on the same library: they work on
//! any Linux, with or without rustnl.
//!
//! - [`proc_events`]: connector process events (fork, exec, exit, ...).
//! - [`route`]: rtnetlink link, address and route events, decoded.
//! - [`table`]: the netlink sockets of the system, from `/proc/net/netlink`.

pub mod proc_events;
pub mod route;
pub mod table;

use crate::error::{Error, Result};
use crate::proto::Message;
use crate::socket::Socket;
use std::collections::VecDeque;

/// Returns the next of the decoded events queued in `pending`, receiving
/// datagrams from the kernel (others are skipped) and decoding each message
/// with `decode` (`None`: not an event of interest) when it is empty.
pub(crate) fn next_from_kernel<T>(
    sock: &mut Socket,
    pending: &mut VecDeque<T>,
    mut decode: impl FnMut(&Message<'_>) -> Result<Option<T>>,
) -> Result<T> {
    loop {
        if let Some(e) = pending.pop_front() {
            return Ok(e);
        }
        let d = sock.recv()?;
        if d.sender != 0 {
            continue;
        }
        for m in d.messages() {
            let m = m.map_err(|e| Error::Malformed(e.to_string()))?;
            if let Some(e) = decode(&m)? {
                pending.push_back(e);
            }
        }
    }
}
