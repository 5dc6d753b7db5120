// SPDX-License-Identifier: GPL-2.0
/* The C accessors again, for rustnl_kunit.ko (each module links its own). */
#include "netlink_helpers.c"
