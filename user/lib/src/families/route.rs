//! rtnetlink events (`NETLINK_ROUTE`): links, IPv4/IPv6 addresses and routes.
//!
//! [`decode`] is pure: it turns one message into a [`RouteEvent`] without
//! looking anything up. Interface names of addresses and routes (which carry
//! only an index) come from [`link_name`], a separate call.

use crate::errors::{Error, Result};
use crate::event::{Decode, Subscription};
use crate::proto::{Attrs, Message};
use crate::socket::Socket;
use crate::sys;
use std::fmt;
use std::mem::size_of;
use std::net::IpAddr;

/// Multicast groups of [`RouteEvents`] (a bit mask of `RTMGRP_*`).
pub mod groups {
    use crate::sys;
    /// Link changes.
    pub const LINKS: u32 = sys::RTMGRP_LINK;
    /// IPv4 and IPv6 address changes.
    pub const ADDRESSES: u32 = sys::RTMGRP_IPV4_IFADDR | sys::RTMGRP_IPV6_IFADDR;
    /// IPv4 and IPv6 route changes.
    pub const ROUTES: u32 = sys::RTMGRP_IPV4_ROUTE | sys::RTMGRP_IPV6_ROUTE;
    /// All three.
    pub const ALL: u32 = LINKS | ADDRESSES | ROUTES;
}

/// Links, IPv4/IPv6 addresses and routes: the groups `rustnl watch route`
/// joins.
pub const GROUPS: u32 = groups::ALL;

/// Added or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
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

/// An address's `IFA_F_*` flags. Displays as the words `ip monitor`
/// prints for the states of duplicate address detection and lifetime
/// (`tentative`, `dadfailed`, `deprecated`, `optimistic`), and serializes
/// as the list of those words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddrFlags(pub u32);

impl AddrFlags {
    /// `IFA_F_TENTATIVE`: duplicate address detection has not finished;
    /// the address is not usable yet.
    pub const TENTATIVE: u32 = sys::IFA_F_TENTATIVE;
    /// `IFA_F_DADFAILED`: duplicate address detection found the address
    /// in use.
    pub const DADFAILED: u32 = sys::IFA_F_DADFAILED;
    /// `IFA_F_DEPRECATED`: past its preferred lifetime.
    pub const DEPRECATED: u32 = sys::IFA_F_DEPRECATED;
    /// `IFA_F_OPTIMISTIC`: usable during duplicate address detection.
    pub const OPTIMISTIC: u32 = sys::IFA_F_OPTIMISTIC;

    /// Whether duplicate address detection is still running.
    pub fn tentative(self) -> bool {
        self.0 & Self::TENTATIVE != 0
    }

    /// The set flags `ip monitor` names, in its order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::TENTATIVE, "tentative"),
            (Self::DADFAILED, "dadfailed"),
            (Self::DEPRECATED, "deprecated"),
            (Self::OPTIMISTIC, "optimistic"),
        ]
        .into_iter()
        .filter(move |(bit, _)| self.0 & bit != 0)
        .map(|(_, name)| name)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for AddrFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// Defines a newtype over a small rtnetlink number with the names `ip`
/// prints; it displays and serializes as the name (or the number when it has
/// none).
macro_rules! named_number {
    ($(#[$doc:meta])* $name:ident($ty:ty) { $($value:literal => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $ty);

        impl $name {
            /// The name `ip` uses, if the number has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

named_number!(
    /// Routing table (`RT_TABLE_*`, `RTA_TABLE`).
    Table(u32) {
        0 => "unspec",
        253 => "default",
        254 => "main",
        255 => "local",
    }
);

named_number!(
    /// Route type (`rtm_type`, `RTN_*`).
    RouteType(u8) {
        0 => "unspec",
        1 => "unicast",
        2 => "local",
        3 => "broadcast",
        4 => "anycast",
        5 => "multicast",
        6 => "blackhole",
        7 => "unreachable",
        8 => "prohibit",
        9 => "throw",
        10 => "nat",
        11 => "xresolve",
    }
);

named_number!(
    /// Who installed a route (`rtm_protocol`, `RTPROT_*`).
    Protocol(u8) {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "mrouted",
        18 => "keepalived",
        42 => "babel",
        99 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
    }
);

named_number!(
    /// Address or route scope (`RT_SCOPE_*`).
    Scope(u8) {
        0 => "global",
        200 => "site",
        253 => "link",
        254 => "host",
        255 => "nowhere",
    }
);

/// A decoded rtnetlink event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "type", rename_all = "snake_case")
)]
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
        /// MTU (`IFLA_MTU`).
        mtu: Option<u32>,
    },
    /// An address was added or removed.
    Addr {
        /// Added or removed.
        change: Change,
        /// Interface index.
        index: u32,
        /// Label (for IPv4, usually the interface name; IPv6 has none).
        label: Option<String>,
        /// The address (`IFA_LOCAL`, else `IFA_ADDRESS`).
        addr: Option<IpAddr>,
        /// Prefix length.
        prefix_len: u8,
        /// Scope.
        scope: Scope,
        /// `IFA_F_*` flags (the `IFA_FLAGS` attribute, else `ifa_flags`):
        /// an IPv6 address is announced twice, first
        /// [`tentative`](AddrFlags::TENTATIVE) while duplicate address
        /// detection runs, then without.
        flags: AddrFlags,
    },
    /// A route was added or removed.
    Route {
        /// Added or removed.
        change: Change,
        /// Route type: unicast, local, broadcast, unreachable, ...
        kind: RouteType,
        /// Destination (`None`: default route).
        dst: Option<IpAddr>,
        /// Destination prefix length.
        dst_len: u8,
        /// Gateway.
        gateway: Option<IpAddr>,
        /// Output interface index.
        oif: Option<u32>,
        /// Routing table.
        table: Table,
        /// Who installed it.
        protocol: Protocol,
        /// Scope.
        scope: Scope,
        /// Preferred source address (`RTA_PREFSRC`).
        src: Option<IpAddr>,
        /// Metric (`RTA_PRIORITY`).
        metric: Option<u32>,
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
/// decode. Pure: reads nothing but `msg`.
pub fn decode(msg: &Message<'_>) -> Result<Option<RouteEvent>> {
    let ty = u32::from(msg.header.ty);
    let change = match ty {
        sys::RTM_NEWLINK | sys::RTM_NEWADDR | sys::RTM_NEWROUTE => Change::New,
        sys::RTM_DELLINK | sys::RTM_DELADDR | sys::RTM_DELROUTE => Change::Del,
        _ => return Ok(None),
    };
    let p = msg.payload;
    let attrs = |fixed: usize| {
        Attrs::new(
            p.get(crate::proto::nlmsg_align(fixed)..)
                .unwrap_or_default(),
        )
    };
    Ok(Some(match ty {
        sys::RTM_NEWLINK | sys::RTM_DELLINK => {
            let ifi: sys::ifinfomsg = sys::read_layout(p, "ifinfomsg")?;
            let (mut name, mut mtu) = (None, None);
            for a in attrs(size_of::<sys::ifinfomsg>()).flatten() {
                match u32::from(a.ty) {
                    sys::IFLA_IFNAME => name = Some(string_attr(a.payload)),
                    sys::IFLA_MTU => mtu = u32_attr(a.payload),
                    _ => {}
                }
            }
            RouteEvent::Link {
                change,
                index: ifi.ifi_index,
                name,
                up: ifi.ifi_flags & libc::IFF_UP as u32 != 0,
                running: ifi.ifi_flags & libc::IFF_RUNNING as u32 != 0,
                mtu,
            }
        }
        sys::RTM_NEWADDR | sys::RTM_DELADDR => {
            let ifa: sys::ifaddrmsg = sys::read_layout(p, "ifaddrmsg")?;
            let (mut local, mut address, mut label) = (None, None, None);
            let mut flags = u32::from(ifa.ifa_flags);
            for a in attrs(size_of::<sys::ifaddrmsg>()).flatten() {
                match u32::from(a.ty) {
                    sys::IFA_LOCAL => local = ip(ifa.ifa_family, a.payload),
                    sys::IFA_ADDRESS => address = ip(ifa.ifa_family, a.payload),
                    sys::IFA_LABEL => label = Some(string_attr(a.payload)),
                    // The 32-bit flags; ifa_flags holds their low 8 bits.
                    sys::IFA_FLAGS => flags = u32_attr(a.payload).unwrap_or(flags),
                    _ => {}
                }
            }
            RouteEvent::Addr {
                change,
                index: ifa.ifa_index,
                label,
                addr: local.or(address),
                prefix_len: ifa.ifa_prefixlen,
                scope: Scope(ifa.ifa_scope),
                flags: AddrFlags(flags),
            }
        }
        _ => {
            let rtm: sys::rtmsg = sys::read_layout(p, "rtmsg")?;
            let (mut dst, mut gateway, mut oif, mut table) =
                (None, None, None, u32::from(rtm.rtm_table));
            let (mut src, mut metric) = (None, None);
            for a in attrs(size_of::<sys::rtmsg>()).flatten() {
                match u32::from(a.ty) {
                    sys::RTA_DST => dst = ip(rtm.rtm_family, a.payload),
                    sys::RTA_GATEWAY => gateway = ip(rtm.rtm_family, a.payload),
                    sys::RTA_OIF => oif = u32_attr(a.payload),
                    sys::RTA_TABLE => table = u32_attr(a.payload).unwrap_or(table),
                    sys::RTA_PREFSRC => src = ip(rtm.rtm_family, a.payload),
                    sys::RTA_PRIORITY => metric = u32_attr(a.payload),
                    _ => {}
                }
            }
            RouteEvent::Route {
                change,
                kind: RouteType(rtm.rtm_type),
                dst,
                dst_len: rtm.rtm_dst_len,
                gateway,
                oif,
                table: Table(table),
                protocol: Protocol(rtm.rtm_protocol),
                scope: Scope(rtm.rtm_scope),
                src,
                metric,
            }
        }
    }))
}

/// The name of interface `index` (`if_indextoname`), if it exists now.
pub fn link_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    let bytes: Vec<u8> = buf
        .iter()
        .map(|&c| c as u8)
        .take_while(|&c| c != 0)
        .collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Formats the event in the style of `ip monitor`, naming interfaces with
/// `dev` (e.g. [`link_name`]; `None`: `if<index>`).
pub fn format_with(
    event: &RouteEvent,
    f: &mut impl fmt::Write,
    dev: impl Fn(u32) -> Option<String>,
) -> fmt::Result {
    let dev_name = |i: u32| dev(i).unwrap_or_else(|| format!("if{i}"));
    match event {
        RouteEvent::Link {
            change,
            index,
            name,
            up,
            running,
            mtu,
        } => {
            write!(
                f,
                "link {} {} index {index} {}{}",
                change.name(),
                name.as_deref().unwrap_or("?"),
                if *up { "up" } else { "down" },
                if *running { " running" } else { "" }
            )?;
            if let Some(m) = mtu {
                write!(f, " mtu {m}")?;
            }
            Ok(())
        }
        RouteEvent::Addr {
            change,
            index,
            label,
            addr,
            prefix_len,
            scope,
            flags,
        } => {
            let dev = dev_name(*index);
            write!(
                f,
                "addr {} {}/{prefix_len} dev {dev} scope {scope}",
                change.name(),
                addr.map_or("?".to_string(), |a| a.to_string()),
            )?;
            for name in flags.names() {
                write!(f, " {name}")?;
            }
            match label {
                Some(l) if *l != dev => write!(f, " label {l}"),
                _ => Ok(()),
            }
        }
        RouteEvent::Route {
            change,
            kind,
            dst,
            dst_len,
            gateway,
            oif,
            table,
            protocol,
            scope,
            src,
            metric,
        } => {
            write!(f, "route {} {kind} ", change.name())?;
            match dst {
                Some(d) => write!(f, "{d}/{dst_len}")?,
                None => f.write_str("default")?,
            }
            if let Some(g) = gateway {
                write!(f, " via {g}")?;
            }
            if let Some(o) = oif {
                write!(f, " dev {}", dev_name(*o))?;
            }
            write!(f, " table {table} proto {protocol} scope {scope}")?;
            if let Some(s) = src {
                write!(f, " src {s}")?;
            }
            if let Some(m) = metric {
                write!(f, " metric {m}")?;
            }
            Ok(())
        }
    }
}

/// `ip monitor` style, interfaces by index (`if<index>`); see
/// [`format_with`] to name them.
impl fmt::Display for RouteEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_with(self, f, |_| None)
    }
}

/// The decoder of rtnetlink's link, address and route messages
/// ([`decode`]; other types are skipped).
#[derive(Clone, Copy, Debug, Default)]
pub struct RouteEvents;

impl Decode for RouteEvents {
    type Item<'a> = RouteEvent;
    fn keep(&mut self, msg: &Message<'_>) -> bool {
        matches!(
            u32::from(msg.header.ty),
            sys::RTM_NEWLINK
                | sys::RTM_DELLINK
                | sys::RTM_NEWADDR
                | sys::RTM_DELADDR
                | sys::RTM_NEWROUTE
                | sys::RTM_DELROUTE
        )
    }
    fn decode<'a>(&mut self, msg: &Message<'a>) -> Result<RouteEvent> {
        decode(msg)?
            .ok_or_else(|| Error::Unexpected(format!("rtnetlink message type {}", msg.header.ty)))
    }
}

impl Subscription<RouteEvents> {
    /// Joins the `RTMGRP_*` groups in `groups` (see [`groups`]; [`GROUPS`]:
    /// links, IPv4/IPv6 addresses and routes).
    ///
    /// ```
    /// use rustnl::families::route;
    /// let mut events = rustnl::Subscription::route(route::groups::ROUTES)?;
    /// events.set_timeout(Some(std::time::Duration::from_millis(10)))?;
    /// match events.next_event() {
    ///     Ok(e) => println!("{e}"),
    ///     Err(rustnl::Error::Timeout) => {} // nothing changed meanwhile
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), rustnl::Error>(())
    /// ```
    pub fn route(groups: u32) -> Result<Subscription<RouteEvents>> {
        let sock = Socket::open_with_groups(sys::NETLINK_ROUTE, groups)?;
        Ok(Subscription::with_conn(sock, RouteEvents))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Messages;
    use crate::MessageBuilder;

    /// Appends attribute `ty` to `out`, as the library's builder lays it out.
    fn put_attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
        let mut w = crate::attr::AttrBuilder::new();
        w.put(ty, payload).unwrap();
        out.extend_from_slice(w.as_bytes());
    }

    fn route_message(ty: u32, rtm: [u8; 12], attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut payload = rtm.to_vec();
        for (t, v) in attrs {
            put_attr(&mut payload, *t, v);
        }
        let mut b = MessageBuilder::new();
        b.push(ty as u16, 0, 0, &payload).unwrap();
        b.as_bytes().to_vec()
    }

    #[test]
    fn route_has_type_protocol_scope_source_and_named_table() {
        // family AF_INET, dst_len 32, table local, proto kernel, scope host,
        // type local.
        let rtm = [libc::AF_INET as u8, 32, 0, 0, 255, 2, 254, 2, 0, 0, 0, 0];
        let bytes = route_message(
            sys::RTM_NEWROUTE,
            rtm,
            &[
                (sys::RTA_DST as u16, &[127, 0, 0, 2]),
                (sys::RTA_OIF as u16, &1u32.to_ne_bytes()),
                (sys::RTA_PREFSRC as u16, &[127, 0, 0, 1]),
                (sys::RTA_TABLE as u16, &255u32.to_ne_bytes()),
            ],
        );
        let m = Messages::new(&bytes).next().unwrap().unwrap();
        let e = decode(&m).unwrap().unwrap();
        let mut text = String::new();
        format_with(&e, &mut text, |i| (i == 1).then(|| "lo".to_string())).unwrap();
        assert_eq!(
            text,
            "route new local 127.0.0.2/32 dev lo table local proto kernel scope host src 127.0.0.1"
        );
        assert_eq!(
            e.to_string(),
            "route new local 127.0.0.2/32 dev if1 table local proto kernel scope host src 127.0.0.1"
        );
        // A broadcast route no longer looks like a unicast one.
        let rtm = [libc::AF_INET as u8, 32, 0, 0, 255, 2, 253, 3, 0, 0, 0, 0];
        let bytes = route_message(sys::RTM_DELROUTE, rtm, &[]);
        let m = Messages::new(&bytes).next().unwrap().unwrap();
        let e = decode(&m).unwrap().unwrap();
        assert!(e.to_string().starts_with("route del broadcast default"));
        assert_eq!(Table(1000).to_string(), "1000");
        assert_eq!(Protocol(16).to_string(), "dhcp");
    }

    /// A new IPv6 address is announced twice, first while duplicate
    /// address detection runs: the first line says `tentative`, as `ip
    /// monitor` does (before, both lines were the same). The 32-bit
    /// `IFA_FLAGS` attribute wins over the 8-bit `ifa_flags`.
    #[test]
    fn a_tentative_ipv6_address_says_so() {
        let addr = |ifa_flags: u8, attr_flags: Option<u32>| {
            let mut payload = vec![libc::AF_INET6 as u8, 64, ifa_flags, 0];
            payload.extend_from_slice(&2u32.to_ne_bytes());
            let ip: [u8; 16] = "fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
            put_attr(&mut payload, sys::IFA_ADDRESS as u16, &ip);
            if let Some(f) = attr_flags {
                put_attr(&mut payload, sys::IFA_FLAGS as u16, &f.to_ne_bytes());
            }
            let mut b = MessageBuilder::new();
            b.push(sys::RTM_NEWADDR as u16, 0, 0, &payload).unwrap();
            let bytes = b.as_bytes().to_vec();
            let m = Messages::new(&bytes).next().unwrap().unwrap();
            let e = decode(&m).unwrap().unwrap();
            let mut text = String::new();
            format_with(&e, &mut text, |_| Some("eth0".into())).unwrap();
            (e, text)
        };
        let (first, text) = addr(sys::IFA_F_TENTATIVE as u8, None);
        assert_eq!(text, "addr new fe80::1/64 dev eth0 scope global tentative");
        assert!(matches!(first, RouteEvent::Addr { flags, .. } if flags.tentative()));
        let (_, text) = addr(0, None);
        assert_eq!(text, "addr new fe80::1/64 dev eth0 scope global");
        let (_, text) = addr(0, Some(sys::IFA_F_TENTATIVE | sys::IFA_F_MANAGETEMPADDR));
        assert!(text.ends_with(" tentative"), "{text}");
        let (_, text) = addr(sys::IFA_F_TENTATIVE as u8, Some(sys::IFA_F_DADFAILED));
        assert!(text.ends_with(" dadfailed"), "{text}");
    }

    #[test]
    fn ipv6_address_is_named_by_index() {
        let mut payload = vec![libc::AF_INET6 as u8, 128, 0, 254];
        payload.extend_from_slice(&1u32.to_ne_bytes());
        let mut one = [0u8; 16];
        one[15] = 1;
        put_attr(&mut payload, sys::IFA_ADDRESS as u16, &one);
        let mut b = MessageBuilder::new();
        b.push(sys::RTM_NEWADDR as u16, 0, 0, &payload).unwrap();
        let m = Messages::new(b.as_bytes()).next().unwrap().unwrap();
        let e = decode(&m).unwrap().unwrap();
        let mut text = String::new();
        format_with(&e, &mut text, |_| Some("lo".into())).unwrap();
        assert_eq!(text, "addr new ::1/128 dev lo scope host");
    }

    #[test]
    fn loopback_has_a_name() {
        assert_eq!(link_name(1).as_deref(), Some("lo"));
        assert_eq!(link_name(0x7fff_fff0), None);
    }
}
