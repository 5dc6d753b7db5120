// SPDX-License-Identifier: GPL-2.0

//! rustnl: the classic Kernel Korner netlink example (`NETLINK_TEST`), in Rust.
//!
//! Creates its own netlink protocol unit and answers ECHO requests by sending
//! the payload back to the sender's port id. The message layouts come from
//! the shared `proto.rs`, the same file userspace compiles.

use kernel::prelude::*;

mod netlink;
#[path = "../shared/src/proto.rs"]
#[allow(dead_code, unreachable_pub)]
mod proto;
mod protocol;

module! {
    type: RustnlModule,
    name: "rustnl",
    authors: ["rustnl developers"],
    description: "Netlink echo and multicast example protocol (NETLINK_TEST) in Rust",
    license: "GPL",
    params: {
        unit: u32 {
            default: 31,
            description: "Netlink protocol unit to create (0..31, default 31)",
        },
    },
}

struct RustnlModule {
    socket: netlink::KernelSocket,
}

impl kernel::Module for RustnlModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let unit = module_parameters::unit.value();
        if unit >= proto::MAX_LINKS {
            pr_err!(
                "unit={} is out of range: netlink units are 0..{}\n",
                unit,
                proto::MAX_LINKS - 1
            );
            return Err(EINVAL);
        }
        let socket = netlink::KernelSocket::new::<protocol::Rustnl>(module, unit, 0, 0)
            .inspect_err(|e| {
                pr_err!(
                    "cannot create netlink unit {}: it is already in use (errno {})\n",
                    unit,
                    e.to_errno()
                );
            })?;
        pr_info!(
            "netlink unit {} ready (protocol v{}, max payload {})\n",
            socket.unit(),
            proto::PROTOCOL_VERSION,
            proto::DEFAULT_MAX_PAYLOAD
        );
        Ok(RustnlModule { socket })
    }
}

impl Drop for RustnlModule {
    fn drop(&mut self) {
        pr_info!("netlink unit {} released\n", self.socket.unit());
    }
}
