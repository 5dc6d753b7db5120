//! The system's netlink sockets (`/proc/net/netlink`), grouped by protocol
//! unit, with the processes that hold them.

use crate::errors::{Error, Result};
use std::collections::BTreeMap;

/// One netlink socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketEntry {
    /// Protocol unit.
    pub unit: u32,
    /// Port id (0: the kernel's socket).
    pub port_id: u32,
    /// Multicast group bitmap (groups 1..=32), as shown by the kernel.
    pub groups: u32,
    /// Socket inode.
    pub inode: u64,
    /// Dropped messages.
    pub drops: u64,
}

/// A user socket of a protocol unit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct User {
    /// Its port id.
    pub port_id: u32,
    /// "pid/comm" of a process holding it, if one was found.
    pub process: Option<String>,
}

/// A protocol unit and who uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Unit {
    /// The unit.
    pub unit: u32,
    /// Its well-known name, if it has one.
    pub name: &'static str,
    /// Whether the kernel has a socket for it in this namespace.
    pub kernel: bool,
    /// User sockets.
    pub users: Vec<User>,
}

/// Well-known names of netlink protocol units (`include/uapi/linux/netlink.h`).
pub fn unit_name(unit: u32) -> &'static str {
    match unit {
        0 => "route",
        1 => "unused",
        2 => "usersock",
        3 => "firewall",
        4 => "sock_diag",
        5 => "nflog",
        6 => "xfrm",
        7 => "selinux",
        8 => "iscsi",
        9 => "audit",
        10 => "fib_lookup",
        11 => "connector",
        12 => "netfilter",
        13 => "ip6_fw",
        14 => "dnrtmsg",
        15 => "kobject_uevent",
        16 => "generic",
        18 => "scsitransport",
        19 => "ecryptfs",
        20 => "rdma",
        21 => "crypto",
        22 => "smc",
        31 => "rustnl (default unit)",
        _ => "",
    }
}

/// The `NETLINK_*` constant of the kernel's standard protocol units
/// (`include/uapi/linux/netlink.h`); `None` for units the kernel does not
/// assign (1, 17, 23..=31), which modules such as rustnl may take.
pub fn unit_constant(unit: u32) -> Option<&'static str> {
    Some(match unit {
        0 => "NETLINK_ROUTE",
        2 => "NETLINK_USERSOCK",
        3 => "NETLINK_FIREWALL",
        4 => "NETLINK_SOCK_DIAG",
        5 => "NETLINK_NFLOG",
        6 => "NETLINK_XFRM",
        7 => "NETLINK_SELINUX",
        8 => "NETLINK_ISCSI",
        9 => "NETLINK_AUDIT",
        10 => "NETLINK_FIB_LOOKUP",
        11 => "NETLINK_CONNECTOR",
        12 => "NETLINK_NETFILTER",
        13 => "NETLINK_IP6_FW",
        14 => "NETLINK_DNRTMSG",
        15 => "NETLINK_KOBJECT_UEVENT",
        16 => "NETLINK_GENERIC",
        18 => "NETLINK_SCSITRANSPORT",
        19 => "NETLINK_ECRYPTFS",
        20 => "NETLINK_RDMA",
        21 => "NETLINK_CRYPTO",
        22 => "NETLINK_SMC",
        _ => return None,
    })
}

/// Parses the text of `/proc/net/netlink`.
pub fn parse(text: &str) -> Result<Vec<SocketEntry>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || Error::Malformed(format!("/proc/net/netlink line {}: {line:?}", i + 1));
        if f.len() < 10 {
            return Err(bad());
        }
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
        out.push(SocketEntry {
            unit: num(f[1])? as u32,
            port_id: num(f[2])? as u32,
            groups: u32::from_str_radix(f[3], 16).map_err(|_| bad())?,
            drops: num(f[8])?,
            inode: num(f[9])?,
        });
    }
    Ok(out)
}

/// Maps socket inodes to "pid/comm" of a process holding them (what this
/// process may see in `/proc/*/fd`).
fn socket_owners() -> BTreeMap<u64, String> {
    let mut owners = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return owners;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                if let Ok(inode) = inode.parse() {
                    owners
                        .entry(inode)
                        .or_insert_with(|| format!("{pid}/{}", comm.trim_end()));
                }
            }
        }
    }
    owners
}

/// The protocol units in use in this network namespace, in unit order.
///
/// ```
/// let units = rustnl::families::table::units()?;
/// assert!(units.iter().any(|f| f.unit == 0 && f.kernel)); // NETLINK_ROUTE
/// # Ok::<(), rustnl::Error>(())
/// ```
pub fn units() -> Result<Vec<Unit>> {
    let text = std::fs::read_to_string("/proc/net/netlink").map_err(|source| Error::Io {
        op: "read /proc/net/netlink",
        source,
    })?;
    Ok(group(parse(&text)?, &socket_owners()))
}

/// Groups socket entries by unit.
pub fn group(entries: Vec<SocketEntry>, owners: &BTreeMap<u64, String>) -> Vec<Unit> {
    let mut by_unit: BTreeMap<u32, Unit> = BTreeMap::new();
    for e in entries {
        let f = by_unit.entry(e.unit).or_insert_with(|| Unit {
            unit: e.unit,
            name: unit_name(e.unit),
            kernel: false,
            users: Vec::new(),
        });
        if e.port_id == 0 {
            f.kernel = true;
        } else {
            f.users.push(User {
                port_id: e.port_id,
                process: owners.get(&e.inode).cloned(),
            });
        }
    }
    by_unit.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
ffff888003b0d000 0   0          00000000 0        0        0     2        0        0\n\
ffff888003b0e000 31  0          00000000 0        0        0     2        0        0\n\
ffff888003b0f000 31  812        00000001 0        0        0     2        3        4242\n";

    #[test]
    fn parses_and_groups() {
        let e = parse(SAMPLE).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[2],
            SocketEntry {
                unit: 31,
                port_id: 812,
                groups: 1,
                inode: 4242,
                drops: 3
            }
        );
        let mut owners = BTreeMap::new();
        owners.insert(4242, "812/nl_recv".to_string());
        let f = group(e, &owners);
        assert_eq!(f.len(), 2);
        assert!(f[0].kernel && f[0].name == "route" && f[0].users.is_empty());
        assert_eq!(
            f[1].users,
            vec![User {
                port_id: 812,
                process: Some("812/nl_recv".to_string())
            }]
        );
        assert_eq!(unit_constant(16), Some("NETLINK_GENERIC"));
        assert_eq!(unit_constant(31), None);
        assert!(parse("header\nnot enough fields\n").is_err());
    }

    #[test]
    fn reads_this_hosts_table() {
        let f = units().unwrap();
        assert!(
            f.iter().any(|f| f.unit == 0 && f.kernel),
            "NETLINK_ROUTE always has a kernel socket"
        );
    }
}
