// SPDX-License-Identifier: GPL-2.0
/*
 * C accessors for the rustnl netlink layer (kmod/netlink/).
 *
 * `struct sock` and `struct net_generic` are opaque to the kernel's Rust
 * bindings, and several netlink/workqueue/xarray helpers are `static inline`. These
 * one-line wrappers give the Rust layer exactly what it needs and nothing
 * else; every use is documented at its call site in netlink/.
 */
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <net/sock.h>

#include "netlink_helpers.h"

void *rustnl_net_generic(const struct net *net, unsigned int id)
{
	return net_generic(net, id);
}

void *rustnl_sock_net_generic(const struct sock *sk, const unsigned int *id)
{
	/*
	 * The namespace's slot, cached in sk_user_data once the socket exists
	 * (rustnl_set_sk_user_data). The slot lives as long as the namespace
	 * and is not RCU-freed: only the dependency ordering of the load is
	 * needed, which rcu_dereference_raw() gives without lockdep's
	 * read-section check. Before the store, net_generic() finds it.
	 */
	uintptr_t v = (uintptr_t)rcu_dereference_raw(sk->sk_user_data);

	if (likely(v & SK_USER_DATA_PTRMASK))
		return (void *)(v & SK_USER_DATA_PTRMASK);
	return net_generic(sock_net(sk), *id);
}

void rustnl_set_sk_user_data(struct sock *sk, void *data)
{
	rcu_assign_sk_user_data(sk, data);
}

void rustnl_init_delayed_work(struct delayed_work *dwork, work_func_t func)
{
	INIT_DELAYED_WORK(dwork, func);
}

void *rustnl_xa_cmpxchg(struct xarray *xa, unsigned long index, void *old,
			void *entry, gfp_t gfp)
{
	return xa_cmpxchg(xa, index, old, entry, gfp);
}

int rustnl_xa_err(void *entry)
{
	return xa_err(entry);
}
