/* SPDX-License-Identifier: GPL-2.0 */
/* Accessors for the rustnl netlink layer; declared in Rust in netlink/ffi.rs. */
#ifndef RUSTNL_NETLINK_HELPERS_H
#define RUSTNL_NETLINK_HELPERS_H

#include <linux/types.h>
#include <linux/workqueue.h>

struct net;
struct sock;
struct xarray;

void *rustnl_net_generic(const struct net *net, unsigned int id);
void *rustnl_sock_net_generic(const struct sock *sk, const unsigned int *id);
void rustnl_set_sk_user_data(struct sock *sk, void *data);
void rustnl_init_delayed_work(struct delayed_work *dwork, work_func_t func);
void *rustnl_xa_cmpxchg(struct xarray *xa, unsigned long index, void *old,
			void *entry, gfp_t gfp);
int rustnl_xa_err(void *entry);

#endif
