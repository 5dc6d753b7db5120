// SPDX-License-Identifier: GPL-2.0

//! rustnl's KUnit suite as a module of its own: the netlink layer and the
//! shared decoder compiled as in `rustnl.ko`, with the layer's tests
//! (`netlink/kunit.rs`, `--cfg rustnl_kunit`). KUnit runs the suite when
//! this module loads; `rustnl.ko` itself carries no tests, so loading it
//! never runs them or taints the kernel (`TAINT_TEST`). The guest suite
//! loads it (`kunit_suites_pass`); a kernel without `CONFIG_KUNIT` does not
//! build it.

use kernel::prelude::*;

// The layer's items the module does not use (it registers nothing).
#[allow(dead_code, unreachable_pub, unused_imports)]
mod netlink;
#[path = "../shared/src/proto.rs"]
#[allow(dead_code, unreachable_pub)]
mod proto;
#[path = "../shared/src/genl.rs"]
#[allow(dead_code, unreachable_pub)]
mod genl;

module! {
    type: RustnlKunit,
    name: "rustnl_kunit",
    authors: ["rustnl developers"],
    description: "KUnit tests of rustnl's netlink layer and shared decoder",
    license: "GPL",
}

struct RustnlKunit;

impl kernel::Module for RustnlKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustnlKunit)
    }
}
