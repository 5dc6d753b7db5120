//! rtnetlink events (`NETLINK_ROUTE`): links, IPv4/IPv6 addresses and routes.

use crate::error::{Error, Result};
use crate::proto::{Attrs, Message};
use crate::socket::Socket;
use crate::sys;
use std::fmt;
use std::mem::size_of;
use std::net::IpAddr;

/// The groups [`RouteEvents`] joins: links, IPv4/IPv6 addresses and routes.
pub const GROUPS: u32 = sys::RTMGRP_LINK
    | sys::RTMGRP_IPV4_IFADDR
    | sys::RTMGRP_IPV4_ROUTE
    | sys::RTMGRP_IPV6_IFADDR
    | sys::RTMGRP_IPV6_ROUTE;

/// Added or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// `RTM_NEW*`.
    New,
    /// `RTM_DEL*`.
    Del,
}

impl Change {
    /// "new" / "del".
    pub fn name(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Del => "del",
        }
    }
}

/// A decoded rtnetlink event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteEvent {
    /// A link appeared, changed or went away.
    Link {
        /// New (also: changed) or removed.
        change: Change,
        /// Interface index.
        index: i32,
        /// Interface name.
        name: Option<String>,
        /// Administratively up (`IFF_UP`).
        up: bool,
        /// Operationally running (`IFF_RUNNING`).
        running: bool,
    },
    /// An address was added or removed.
    Addr {
        /// Added or removed.
        change: Change,
        /// Interface index.
        index: u32,
        /// Label (for IPv4, usually the interface name).
        label: Option<String>,
        /// The address (`IFA_LOCAL`, else `IFA_ADDRESS`).
        addr: Option<IpAddr>,
        /// Prefix length.
        prefix_len: u8,
    },
    /// A route was added or removed.
    Route {
        /// Added or removed.
        change: Change,
        /// Destination (`None`: default route).
        dst: Option<IpAddr>,
        /// Destination prefix length.
        dst_len: u8,
        /// Gateway.
        gateway: Option<IpAddr>,
        /// Output interface index.
        oif: Option<u32>,
        /// Routing table.
        table: u32,
    },
}

fn ip(family: u8, b: &[u8]) -> Option<IpAddr> {
    match (i32::from(family), b.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        (libc::AF_INET6, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn u32_attr(b: &[u8]) -> Option<u32> {
    b.first_chunk::<4>().map(|b| u32::from_ne_bytes(*b))
}

fn string_attr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Decodes one rtnetlink message; `None` for types this module does not
/// decode.
pub fn decode(msg: &Message<'_>) -> Result<Option<RouteEvent>> {
    let ty = u32::from(msg.header.ty);
    let change = match ty {
        sys::RTM_NEWLINK | sys::RTM_NEWADDR | sys::RTM_NEWROUTE => Change::New,
        sys::RTM_DELLINK | sys::RTM_DELADDR | sys::RTM_DELROUTE => Change::Del,
        _ => return Ok(None),
    };
    let short = |what: &str| Error::Malformed(format!("short {what}"));
    let p = msg.payload;
    let attrs = |fixed: usize| {
        Attrs::new(
            p.get(crate::proto::nlmsg_align(fixed)..)
                .unwrap_or_default(),
        )
    };
    Ok(Some(match ty {
        sys::RTM_NEWLINK | sys::RTM_DELLINK => {
            let ifi: sys::ifinfomsg = sys::read(p).ok_or_else(|| short("ifinfomsg"))?;
            let mut name = None;
            for a in attrs(size_of::<sys::ifinfomsg>()).flatten() {
                if a.ty as u32 == sys::IFLA_IFNAME {
                    name = Some(string_attr(a.payload));
                }
            }
            RouteEvent::Link {
                change,
                index: ifi.ifi_index,
                name,
                up: ifi.ifi_flags & libc::IFF_UP as u32 != 0,
                running: ifi.ifi_flags & libc::IFF_RUNNING as u32 != 0,
            }
        }
        sys::RTM_NEWADDR | sys::RTM_DELADDR => {
            let ifa: sys::ifaddrmsg = sys::read(p).ok_or_else(|| short("ifaddrmsg"))?;
            let (mut local, mut address, mut label) = (None, None, None);
            for a in attrs(size_of::<sys::ifaddrmsg>()).flatten() {
                match a.ty as u32 {
                    sys::IFA_LOCAL => local = ip(ifa.ifa_family, a.payload),
                    sys::IFA_ADDRESS => address = ip(ifa.ifa_family, a.payload),
                    sys::IFA_LABEL => label = Some(string_attr(a.payload)),
                    _ => {}
                }
            }
            RouteEvent::Addr {
                change,
                index: ifa.ifa_index,
                label,
                addr: local.or(address),
                prefix_len: ifa.ifa_prefixlen,
            }
        }
        _ => {
            let rtm: sys::rtmsg = sys::read(p).ok_or_else(|| short("rtmsg"))?;
            let (mut dst, mut gateway, mut oif, mut table) =
                (None, None, None, u32::from(rtm.rtm_table));
            for a in attrs(size_of::<sys::rtmsg>()).flatten() {
                match a.ty as u32 {
                    sys::RTA_DST => dst = ip(rtm.rtm_family, a.payload),
                    sys::RTA_GATEWAY => gateway = ip(rtm.rtm_family, a.payload),
                    sys::RTA_OIF => oif = u32_attr(a.payload),
                    sys::RTA_TABLE => table = u32_attr(a.payload).unwrap_or(table),
                    _ => {}
                }
            }
            RouteEvent::Route {
                change,
                dst,
                dst_len: rtm.rtm_dst_len,
                gateway,
                oif,
                table,
            }
        }
    }))
}

impl fmt::Display for RouteEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteEvent::Link {
                change,
                index,
                name,
                up,
                running,
            } => write!(
                f,
                "link {} {} index {index} {}{}",
                change.name(),
                name.as_deref().unwrap_or("?"),
                if *up { "up" } else { "down" },
                if *running { " running" } else { "" }
            ),
            RouteEvent::Addr {
                change,
                index,
                label,
                addr,
                prefix_len,
            } => write!(
                f,
                "addr {} {}/{prefix_len} dev {} (index {index})",
                change.name(),
                addr.map_or("?".to_string(), |a| a.to_string()),
                label.as_deref().unwrap_or("?")
            ),
            RouteEvent::Route {
                change,
                dst,
                dst_len,
                gateway,
                oif,
                table,
            } => {
                write!(f, "route {} ", change.name())?;
                match dst {
                    Some(d) => write!(f, "{d}/{dst_len}")?,
                    None => f.write_str("default")?,
                }
                if let Some(g) = gateway {
                    write!(f, " via {g}")?;
                }
                if let Some(o) = oif {
                    write!(f, " oif {o}")?;
                }
                let t = match *table {
                    sys::RT_TABLE_LOCAL => "local".to_string(),
                    sys::RT_TABLE_MAIN => "main".to_string(),
                    t => t.to_string(),
                };
                write!(f, " table {t}")
            }
        }
    }
}

/// A subscription to link, address and route events.
#[derive(Debug)]
pub struct RouteEvents {
    sock: Socket,
    pending: std::collections::VecDeque<RouteEvent>,
}

impl RouteEvents {
    /// Joins the link, IPv4/IPv6 address and route groups.
    pub fn subscribe() -> Result<RouteEvents> {
        Ok(RouteEvents {
            sock: Socket::open_with_groups(sys::NETLINK_ROUTE, GROUPS)?,
            pending: Default::default(),
        })
    }

    /// The underlying socket (timeouts, polling).
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Waits for the next event. [`Error::Overrun`] means events were lost.
    pub fn next_event(&mut self) -> Result<RouteEvent> {
        super::next_from_kernel(&mut self.sock, &mut self.pending, decode)
    }
}
