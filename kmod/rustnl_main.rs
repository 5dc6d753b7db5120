// SPDX-License-Identifier: GPL-2.0

//! rustnl: the classic Kernel Korner netlink example (`NETLINK_TEST`), in Rust.
//!
//! Creates its own netlink protocol unit in every network namespace, echoes
//! ECHO requests to their sender, multicasts BROADCAST payloads and its own
//! HEARTBEAT and GOODBYE events to listeners, and reports its configuration
//! and per-namespace counters on GET_INFO. The message layouts come from the
//! shared `proto.rs`, the same file userspace compiles.

use kernel::prelude::*;

mod netlink;
#[path = "../shared/src/proto.rs"]
#[allow(dead_code, unreachable_pub)]
mod proto;
#[path = "../shared/src/genl.rs"]
#[allow(dead_code, unreachable_pub)]
mod genl;
mod protocol;
use netlink::compat;

/// The module's declaration. `$flag`, `$off`: the type and default of the
/// on/off parameters, `bool` (Linux 7.3) or `u8` 0/1 (7.2, whose `module!`
/// has no `bool` parameters; see `netlink/compat.rs`).
macro_rules! rustnl_module {
    ($flag:ident, $off:tt) => {
        module! {
            type: RustnlModule,
            name: "rustnl",
            authors: ["rustnl developers"],
            description: "Netlink echo and multicast example protocol (NETLINK_TEST) in Rust",
            license: "GPL",
            // socket(AF_NETLINK, SOCK_RAW, 31) loads the installed module, and
            // so does a generic netlink client resolving the family `rustnl`
            // (`MODULE_ALIAS_GENL_FAMILY`: the controller asks for this name).
            alias: ["net-pf-16-proto-31", "net-pf-16-proto-16-family-rustnl"],
            params: {
                unit: u32 {
                    default: 31,
                    description: "Netlink protocol unit to create (23..31, the ones uapi leaves free; default 31)",
                },
                groups: u32 {
                    default: 32,
                    description: "Number of multicast groups (1..1024, default 32)",
                },
                max_payload: u32 {
                    default: 65536,
                    description: "Largest ECHO/BROADCAST payload in bytes (0..1048576, default 65536)",
                },
                open_broadcast: $flag {
                    default: $off,
                    description: "Let anyone BROADCAST (default: CAP_NET_ADMIN only)",
                },
                heartbeat_ms: u32 {
                    default: 0,
                    description: "Send a HEARTBEAT to group 1 every N ms (10..3600000; 0 = off)",
                },
                existing_netns: $flag {
                    default: $off,
                    description: "Also serve the network namespaces (besides the initial one) that exist at load; safe only on kernels with the netlink load-time fix (docs/own-kernel.md)",
                },
            },
        }
    };
}
#[cfg(not(rustnl_linux_7_2))]
rustnl_module!(bool, false);
#[cfg(rustnl_linux_7_2)]
rustnl_module!(u8, 0);

/// The configuration, read from the parameters (validated by `init`).
pub(crate) fn config() -> protocol::Config {
    protocol::Config {
        unit: compat::param(module_parameters::unit.value()),
        limits: proto::Limits {
            max_payload: compat::param(module_parameters::max_payload.value()) as usize,
            groups: compat::param(module_parameters::groups.value()),
        },
        open_broadcast: compat::flag(module_parameters::open_broadcast.value()),
        heartbeat_ms: compat::param(module_parameters::heartbeat_ms.value()),
    }
}

/// Checks the parameters, logging what is wrong.
fn validate(c: &protocol::Config) -> Result {
    let bad = |what: &str, value: u64, range: &str| {
        pr_err!("{}={} is out of range: {}\n", what, value, range);
        Err(EINVAL)
    };
    if c.unit >= proto::MAX_LINKS {
        return bad("unit", c.unit.into(), "netlink units are 0..31");
    }
    if c.unit < proto::FIRST_FREE_UNIT {
        pr_err!(
            "unit={} is one of the kernel's own netlink units (0..22 in <linux/netlink.h>): use one of 23..31\n",
            c.unit
        );
        return Err(EINVAL);
    }
    if c.limits.groups == 0 || c.limits.groups > proto::MAX_GROUPS {
        return bad("groups", c.limits.groups.into(), "1..1024");
    }
    if c.limits.max_payload > proto::MAX_PAYLOAD_LIMIT {
        return bad("max_payload", c.limits.max_payload as u64, "0..1048576");
    }
    if c.heartbeat_ms != 0
        && !(proto::MIN_HEARTBEAT_MS..=proto::MAX_HEARTBEAT_MS).contains(&c.heartbeat_ms)
    {
        return bad(
            "heartbeat_ms",
            c.heartbeat_ms.into(),
            "0 (off) or 10..3600000",
        );
    }
    Ok(())
}

/// The module: both faces of the protocol. Field order is drop order, the
/// reverse of `init`'s: the unit's sockets go first (saying goodbye on both
/// faces), then the generic netlink family (waiting for its operations in
/// flight), then the namespaces' states.
struct RustnlModule {
    unit: u32,
    _unit: netlink::Unit<protocol::Rustnl>,
    _genl: netlink::GenlFamily<protocol::Rustnl>,
    _states: netlink::States<protocol::Rustnl>,
}

impl kernel::Module for RustnlModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let c = config();
        validate(&c)?;
        // First what publishes nothing (any failure is undone whole), then
        // the family (its operations find every state), last the unit: from
        // its first socket on, user sockets pin the module, and nothing
        // fails after that (`netlink/pernet.rs`).
        let states = netlink::States::<protocol::Rustnl>::register().inspect_err(|e| {
            pr_err!("cannot set up the network namespaces' state (errno {})\n", e.to_errno());
        })?;
        let genl = netlink::GenlFamily::<protocol::Rustnl>::register(&states, module).inspect_err(|e| {
            if *e == EEXIST {
                pr_err!(
                    "cannot register the generic netlink family {}: another module has registered that name (errno {})\n",
                    genl::FAMILY_NAME,
                    e.to_errno()
                );
            } else {
                pr_err!(
                    "cannot register the generic netlink family {} (errno {})\n",
                    genl::FAMILY_NAME,
                    e.to_errno()
                );
            }
        })?;
        let existing = compat::flag(module_parameters::existing_netns.value());
        let (unit, left_out) = netlink::Unit::<protocol::Rustnl>::register(&states, module, existing)
            .inspect_err(|e| {
                if *e == EBUSY {
                    // The netlink core gives the same answer (no socket) for
                    // a taken unit and for a failed allocation.
                    pr_err!(
                        "cannot create netlink unit {}: it is already in use, or memory ran out (errno {})\n",
                        c.unit,
                        e.to_errno()
                    );
                } else {
                    pr_err!("cannot set up netlink unit {} (errno {})\n", c.unit, e.to_errno());
                }
            })?;
        pr_info!(
            "netlink unit {} ready (protocol v{}, {} groups, max payload {}, heartbeat {} ms, open_broadcast {})\n",
            c.unit,
            proto::PROTOCOL_VERSION,
            c.limits.groups,
            c.limits.max_payload,
            c.heartbeat_ms,
            c.open_broadcast
        );
        pr_info!(
            "generic netlink family {} registered (groups {} and {})\n",
            genl::FAMILY_NAME,
            genl::McastGroup::Events.name(),
            genl::McastGroup::Heartbeat.name()
        );
        if left_out > 0 {
            pr_info!(
                "{} network namespace(s) that existed at load are not served by the unit (existing_netns=0, or set-up failed; new ones are)\n",
                left_out
            );
        }
        Ok(RustnlModule {
            unit: c.unit,
            _unit: unit,
            _genl: genl,
            _states: states,
        })
    }
}

impl Drop for RustnlModule {
    fn drop(&mut self) {
        // `_unit` drops after this: GOODBYE goes out, then every socket is
        // released.
        pr_info!("netlink unit {} released\n", self.unit);
    }
}
