/* Kernel uapi headers whose layouts the rustnl library needs and libc lacks.
 * scripts/uapi.sh runs bindgen over this with the 7.3 tree's exported
 * headers; the result is checked in as user/lib/src/sys/uapi.rs. */
#include <linux/netlink.h>
#include <linux/connector.h>
#include <linux/cn_proc.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
