// SPDX-License-Identifier: GPL-2.0
/*
 * rustnl_c: the rustnl protocol in C, a reference for benchmarking the Rust
 * module (kmod/) side by side. It is never shipped as the product.
 *
 * It has the two faces of the Rust module:
 *
 *  - the classic unit: the Kernel Korner NETLINK_TEST module ("Kernel
 *    Korner - Why and How to Use Netlink Socket") brought to Linux 7.3,
 *    speaking exactly the protocol of kmod/: the same message types and
 *    layouts (rustnl_proto.h, generated from shared/src/proto.rs), the same
 *    replies, errnos, extended-ack texts and counters;
 *  - the generic netlink family "rustnl" of shared/spec/rustnl.yaml, written
 *    the way an upstream family is: the uAPI header ynl_gen_c.py renders
 *    from the spec (rustnl_genl.h; scripts/spec.sh check fails when it
 *    differs from a fresh rendering), split ops with the per-op policies it
 *    would generate (NLA_POLICY_MAX_LEN, NLA_POLICY_RANGE), genlmsg_new /
 *    genlmsg_put_reply / nla_put / genlmsg_reply, events with
 *    genlmsg_multicast_netns to the sender's namespace, per-namespace
 *    counters through net_generic. The family has the Rust module's name:
 *    like the unit, it is one module's at a time (the bench loads them in
 *    turn). set-groups keeps each socket's numbered groups in the family's
 *    per-socket private memory and a broadcast's event goes out with
 *    genlmsg_multicast_netns_filtered, skipping the sockets that chose
 *    other groups, as devlink does for its notification filters.
 *
 * Where it cannot or does not follow the Rust module, the difference is
 * noted here:
 *
 *  - Only the initial network namespace gets the unit (no kernel socket per
 *    namespace); a socket of the unit in another namespace finds no kernel
 *    socket there and its requests fail with ECONNREFUSED. The generic
 *    netlink face serves every namespace (netnsok), with its own counters
 *    and event sequence in each; in the initial namespace the event
 *    sequence is the classic face's, and classic-counters (GET_INFO) are
 *    all 0 in the others.
 *  - Classic messages are dispatched by the kernel's netlink_rcv_skb(), the
 *    usual C helper, which decides a few cases before the handler runs: a
 *    message without NLM_F_REQUEST or with a control type (NLMSG_NOOP
 *    included) is skipped, acknowledged with 0 only if NLM_F_ACK asks for
 *    it (the Rust module refuses both with EINVAL, except NLMSG_NOOP); a
 *    malformed nlmsg_len, or stray bytes shorter than a header at the end,
 *    silently end the datagram (Rust: an NLMSG_ERROR with EINVAL). None of
 *    these is counted in "requests" or "invalid" (Rust counts every
 *    message, malformed ones included). On the generic netlink face the
 *    core decides those for both modules, and refuses what the policies
 *    and GENL_UNS_ADMIN_PERM refuse before a handler (and its counters)
 *    sees it.
 *  - No heartbeat (INFO reports heartbeat_ms 0); GOODBYE is sent at unload,
 *    on both faces.
 *  - The unit's kernel socket is created with THIS_MODULE as owner, the
 *    usual C way: every user socket of the unit pins the module, so rmmod
 *    fails while clients are connected (the Rust module has no owner and
 *    waits for senders in its release instead). This is also what makes
 *    the exit path below safe: no input callback can be running when it
 *    runs. Generic netlink sockets pin nothing: genl_unregister_family()
 *    waits for the operations in flight, in both modules.
 *  - A broadcast that reaches listeners of its group which all fail to
 *    receive it is "no listeners" here (genlmsg_multicast_netns_filtered()
 *    and netlink_broadcast() say -ESRCH either way); the Rust module counts
 *    the listeners its filter sees and reports delivery-failed.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/err.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <linux/string_choices.h>
#include <linux/timekeeping.h>
#include <linux/rwsem.h>
#include <linux/bitmap.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/xarray.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/netns/generic.h>
#include <net/sock.h>

#include "rustnl_proto.h"
#include "rustnl_genl.h"

static unsigned int unit = RUSTNL_DEFAULT_UNIT;
module_param(unit, uint, 0444);
MODULE_PARM_DESC(unit, "Netlink protocol unit to create (0..31, default 31)");

static unsigned int groups = RUSTNL_DEFAULT_GROUPS;
module_param(groups, uint, 0444);
MODULE_PARM_DESC(groups, "Number of multicast groups (1..1024, default 32)");

static unsigned int max_payload = RUSTNL_DEFAULT_MAX_PAYLOAD;
module_param(max_payload, uint, 0444);
MODULE_PARM_DESC(max_payload,
		 "Largest ECHO/BROADCAST payload in bytes (0..1048576, default 65536)");

static bool open_broadcast;
module_param(open_broadcast, bool, 0444);
MODULE_PARM_DESC(open_broadcast,
		 "Let anyone BROADCAST (default: CAP_NET_ADMIN only)");

/*
 * The counters of struct rustnl_info (and of the counters nest), in its
 * order; lock-free as in Rust.
 */
struct rustnl_c_stats {
	atomic64_t requests;
	atomic64_t echoes;
	atomic64_t broadcasts;
	atomic64_t events_sent;
	atomic64_t invalid;
	atomic64_t not_supported;
	atomic64_t too_large;
	atomic64_t not_permitted;
	atomic64_t delivery_failures;
	atomic64_t no_listeners;
};

/* The classic face's counters (it serves init_net only). */
static struct rustnl_c_stats stats;
/* Sequence number of the last event sent in init_net (the first is 1). */
static atomic64_t event_seq;
/* The kernel socket of the unit in init_net. */
static struct sock *nl_sk;

/* The generic netlink face's state of one network namespace. */
struct rustnl_c_net {
	struct rustnl_c_stats genl;
	/* Sequence number of the last event sent; unused in init_net. */
	atomic64_t event_seq;
};

static unsigned int rustnl_c_net_id __read_mostly;

static struct rustnl_c_net *rustnl_c_pernet(const struct net *net)
{
	return net_generic(net, rustnl_c_net_id);
}

/* One event sequence per namespace, whichever face sends the event. */
static atomic64_t *rustnl_c_event_seq(struct net *net)
{
	if (net_eq(net, &init_net))
		return &event_seq;
	return &rustnl_c_pernet(net)->event_seq;
}

/* How a multicast went (kmod/netlink.rs: Delivery). */
enum rustnl_c_delivery {
	RUSTNL_C_DELIVERED,	/* someone got it, nobody failed */
	RUSTNL_C_NO_LISTENERS,	/* nobody listens on the group */
	RUSTNL_C_SOME_FAILED,	/* some listener's queue was full */
};

/* Counts a refused request in @st by its errno and returns the errno. */
static int rustnl_c_refuse(struct rustnl_c_stats *st, int err)
{
	switch (err) {
	case -EINVAL:
		atomic64_inc(&st->invalid);
		break;
	case -EOPNOTSUPP:
		atomic64_inc(&st->not_supported);
		break;
	case -EMSGSIZE:
		atomic64_inc(&st->too_large);
		break;
	case -EPERM:
		atomic64_inc(&st->not_permitted);
		break;
	}
	return err;
}

/*
 * Builds one netlink message: header (type @type, sequence @seq, nlmsg_pid
 * @portid, no flags) and payload @a then @b. nlmsg_put() zeroes the
 * alignment padding and every payload byte is copied in, so nothing
 * uninitialised is sent.
 */
static struct sk_buff *rustnl_c_message(u32 portid, u32 seq, u16 type,
					const void *a, size_t alen,
					const void *b, size_t blen)
{
	size_t len = alen + blen;
	struct nlmsghdr *nlh;
	struct sk_buff *skb;

	if (len < alen || len > INT_MAX - NLMSG_HDRLEN - NLMSG_ALIGNTO)
		return ERR_PTR(-EMSGSIZE);
	skb = nlmsg_new(len, GFP_KERNEL);
	if (!skb)
		return ERR_PTR(-ENOMEM);
	nlh = nlmsg_put(skb, portid, seq, type, len, 0);
	if (!nlh) {
		nlmsg_free(skb);
		return ERR_PTR(-EMSGSIZE);
	}
	if (alen)
		memcpy(nlmsg_data(nlh), a, alen);
	if (blen)
		memcpy((u8 *)nlmsg_data(nlh) + alen, b, blen);
	return skb;
}

/*
 * Sends a message to the sender of @in, at the port id the kernel recorded
 * for its socket (never nlmsg_pid); the header's nlmsg_pid is that port id
 * too, as in kmod/netlink.rs (Datagram::reply). Never blocks on a full
 * receiver.
 */
static int rustnl_c_reply(struct sk_buff *in, u16 type, u32 seq,
			  const void *a, size_t alen)
{
	u32 portid = NETLINK_CB(in).portid;
	struct sk_buff *skb;
	int ret;

	skb = rustnl_c_message(portid, seq, type, a, alen, NULL, 0);
	if (IS_ERR(skb))
		return PTR_ERR(skb);
	/* netlink_unicast() consumes the skb, whatever it returns. */
	ret = netlink_unicast(in->sk, skb, portid, MSG_DONTWAIT);
	return ret < 0 ? ret : 0;
}

/*
 * What the handler returns after trying to answer (kmod/protocol.rs, end of
 * Rustnl::handle): 0, so that netlink_rcv_skb() acks if NLM_F_ACK asked;
 * for a buffer that could not be had, the errno with a text; for a failed
 * delivery (the sender's queue is full, and netlink flagged ENOBUFS on it,
 * or the sender is gone), nothing: -EINTR makes netlink_rcv_skb() skip the
 * ack, as the Rust module sends none in that case.
 */
static int rustnl_c_answered(struct rustnl_c_stats *st, int err,
			     struct netlink_ext_ack *extack)
{
	if (!err)
		return 0;
	atomic64_inc(&st->delivery_failures);
	if (err == -ENOMEM || err == -EMSGSIZE) {
		NL_SET_ERR_MSG(extack, "cannot allocate the answer");
		return err;
	}
	return -EINTR;
}

/*
 * Accounts for a multicast that returned @ret (netlink_broadcast(): 0,
 * -ESRCH or -ENOBUFS) in @st: 0 with how delivery went, or the errno.
 */
static int rustnl_c_delivered(struct rustnl_c_stats *st, int ret,
			      enum rustnl_c_delivery *delivery)
{
	switch (ret) {
	case 0:
		*delivery = RUSTNL_C_DELIVERED;
		atomic64_inc(&st->events_sent);
		return 0;
	case -ESRCH:
		*delivery = RUSTNL_C_NO_LISTENERS;
		atomic64_inc(&st->no_listeners);
		return 0;
	case -ENOBUFS:
		*delivery = RUSTNL_C_SOME_FAILED;
		atomic64_inc(&st->events_sent);
		atomic64_inc(&st->delivery_failures);
		return 0;
	default:
		/* Not returned by 7.3's netlink_broadcast(); as in Rust. */
		atomic64_inc(&st->delivery_failures);
		return ret;
	}
}

/*
 * Multicasts an event of type @type to @group: struct rustnl_event_hdr then
 * @payload. Returns 0 with the event's sequence number and how delivery
 * went, or the errno if no buffer could be had.
 */
static int rustnl_c_send_event(struct sock *sk, u16 type, u32 group,
			       u32 origin, const void *payload, size_t len,
			       u64 *seq, enum rustnl_c_delivery *delivery)
{
	/* Named members only: the padding members are zeroed too. */
	struct rustnl_event_hdr hdr = {
		.version = RUSTNL_PROTOCOL_VERSION,
		.hdr_len = RUSTNL_EVENT_HDR_LEN,
		.group = group,
		.origin = origin,
	};
	struct sk_buff *skb;

	*seq = (u64)atomic64_inc_return(&event_seq);
	hdr.seq = *seq;
	/* The clock kmod/netlink.rs (realtime_ns) reads. */
	hdr.timestamp_ns = ktime_get_real_fast_ns();

	skb = rustnl_c_message(0, (u32)*seq, type, &hdr, sizeof(hdr),
			       payload, len);
	if (IS_ERR(skb)) {
		atomic64_inc(&stats.delivery_failures);
		return PTR_ERR(skb);
	}
	/* Process context (input callback or module exit): may sleep. */
	return rustnl_c_delivered(&stats,
				  netlink_broadcast(sk, skb, 0, group,
						    GFP_KERNEL),
				  delivery);
}

static int rustnl_c_echo(struct sk_buff *skb, const struct nlmsghdr *nlh,
			 struct netlink_ext_ack *extack)
{
	size_t len = nlmsg_len(nlh);
	int err;

	if (len > max_payload) {
		NL_SET_ERR_MSG_FMT(extack,
				   "payload of %zu bytes exceeds max_payload (%u)",
				   len, max_payload);
		return rustnl_c_refuse(&stats, -EMSGSIZE);
	}
	atomic64_inc(&stats.echoes);
	err = rustnl_c_reply(skb, RUSTNL_MSG_ECHO, nlh->nlmsg_seq,
			     nlmsg_data(nlh), len);
	return rustnl_c_answered(&stats, err, extack);
}

static int rustnl_c_broadcast(struct sk_buff *skb, const struct nlmsghdr *nlh,
			      struct netlink_ext_ack *extack)
{
	size_t have = nlmsg_len(nlh);
	const u8 *data = nlmsg_data(nlh);
	struct rustnl_broadcast_result res = {
		.version = RUSTNL_PROTOCOL_VERSION,
		.hdr_len = RUSTNL_BROADCAST_RESULT_LEN,
	};
	struct rustnl_broadcast_hdr hdr;
	enum rustnl_c_delivery delivery;
	size_t len;
	u64 seq;
	int err;

	/* The checks of proto.rs split_fixed(), in its order and words. */
	if (have < RUSTNL_BROADCAST_HDR_LEN) {
		NL_SET_ERR_MSG_FMT(extack,
				   "bad broadcast header: header needs %d bytes, message has %zu",
				   RUSTNL_BROADCAST_HDR_LEN, have);
		return rustnl_c_refuse(&stats, -EINVAL);
	}
	memcpy(&hdr, data, sizeof(hdr));
	if (!hdr.version) {
		NL_SET_ERR_MSG(extack,
			       "bad broadcast header: header version 0 is invalid");
		return rustnl_c_refuse(&stats, -EINVAL);
	}
	if (hdr.hdr_len > have || hdr.hdr_len < RUSTNL_BROADCAST_HDR_LEN) {
		NL_SET_ERR_MSG_FMT(extack,
				   "bad broadcast header: hdr_len %u outside %d..=%zu",
				   hdr.hdr_len, RUSTNL_BROADCAST_HDR_LEN, have);
		return rustnl_c_refuse(&stats, -EINVAL);
	}
	if (!hdr.group || hdr.group > groups) {
		NL_SET_ERR_MSG_FMT(extack, "group %u is not in 1..=%u",
				   hdr.group, groups);
		return rustnl_c_refuse(&stats, -EINVAL);
	}
	len = have - hdr.hdr_len;
	if (len > max_payload) {
		NL_SET_ERR_MSG_FMT(extack,
				   "payload of %zu bytes exceeds max_payload (%u)",
				   len, max_payload);
		return rustnl_c_refuse(&stats, -EMSGSIZE);
	}
	/* CAP_NET_ADMIN over the receiving socket's namespace. */
	if (!open_broadcast &&
	    !netlink_ns_capable(skb, sock_net(skb->sk)->user_ns,
				CAP_NET_ADMIN)) {
		NL_SET_ERR_MSG(extack,
			       "broadcast needs CAP_NET_ADMIN (or open_broadcast=1)");
		return rustnl_c_refuse(&stats, -EPERM);
	}

	atomic64_inc(&stats.broadcasts);
	err = rustnl_c_send_event(skb->sk, RUSTNL_MSG_EVENT, hdr.group,
				  NETLINK_CB(skb).portid, data + hdr.hdr_len,
				  len, &seq, &delivery);
	if (err) {
		/* Counted as a delivery failure once, in send_event (as Rust). */
		if (err == -ENOMEM || err == -EMSGSIZE) {
			NL_SET_ERR_MSG(extack, "cannot allocate the answer");
			return err;
		}
		return -EINTR;
	}

	res.group = hdr.group;
	if (delivery == RUSTNL_C_DELIVERED)
		res.flags |= RUSTNL_BROADCAST_RESULT_DELIVERED;
	if (delivery == RUSTNL_C_SOME_FAILED)
		res.flags |= RUSTNL_BROADCAST_RESULT_DELIVERY_FAILED;
	res.event_seq = seq;
	err = rustnl_c_reply(skb, RUSTNL_MSG_BROADCAST, nlh->nlmsg_seq,
			     &res, sizeof(res));
	return rustnl_c_answered(&stats, err, extack);
}

static int rustnl_c_get_info(struct sk_buff *skb, const struct nlmsghdr *nlh,
			     struct netlink_ext_ack *extack)
{
	struct rustnl_info info = {
		.version = RUSTNL_PROTOCOL_VERSION,
		.hdr_len = RUSTNL_INFO_LEN,
		.unit = unit,
		.groups = groups,
		.max_payload = max_payload,
		.heartbeat_ms = 0,
		.open_broadcast = open_broadcast,
	};
	int err;

	if (nlmsg_len(nlh)) {
		NL_SET_ERR_MSG(extack, "get_info takes no payload");
		return rustnl_c_refuse(&stats, -EINVAL);
	}
	info.requests = atomic64_read(&stats.requests);
	info.echoes = atomic64_read(&stats.echoes);
	info.broadcasts = atomic64_read(&stats.broadcasts);
	info.events_sent = atomic64_read(&stats.events_sent);
	info.invalid = atomic64_read(&stats.invalid);
	info.not_supported = atomic64_read(&stats.not_supported);
	info.too_large = atomic64_read(&stats.too_large);
	info.not_permitted = atomic64_read(&stats.not_permitted);
	info.delivery_failures = atomic64_read(&stats.delivery_failures);
	info.no_listeners = atomic64_read(&stats.no_listeners);
	err = rustnl_c_reply(skb, RUSTNL_MSG_INFO, nlh->nlmsg_seq,
			     &info, sizeof(info));
	return rustnl_c_answered(&stats, err, extack);
}

/*
 * One request. netlink_rcv_skb() calls this only for a message with
 * NLM_F_REQUEST, a type of at least NLMSG_MIN_TYPE and an nlmsg_len within
 * the datagram; it acks on a non-zero return (with the extack text) and on
 * 0 if NLM_F_ACK asks for one.
 */
static int rustnl_c_rcv_msg(struct sk_buff *skb, struct nlmsghdr *nlh,
			    struct netlink_ext_ack *extack)
{
	const char *name;

	atomic64_inc(&stats.requests);
	/* One answer per request, never a multipart dump (as the Rust module). */
	if ((nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP) {
		NL_SET_ERR_MSG_FMT(extack,
				   "message type %#x: NLM_F_DUMP is not supported (one answer per request)",
				   nlh->nlmsg_type);
		return rustnl_c_refuse(&stats, -EOPNOTSUPP);
	}
	switch (nlh->nlmsg_type) {
	case RUSTNL_MSG_ECHO:
		return rustnl_c_echo(skb, nlh, extack);
	case RUSTNL_MSG_BROADCAST:
		return rustnl_c_broadcast(skb, nlh, extack);
	case RUSTNL_MSG_GET_INFO:
		return rustnl_c_get_info(skb, nlh, extack);
	case RUSTNL_MSG_EVENT:
		name = "event";
		break;
	case RUSTNL_MSG_HEARTBEAT:
		name = "heartbeat";
		break;
	case RUSTNL_MSG_GOODBYE:
		name = "goodbye";
		break;
	case RUSTNL_MSG_INFO:
		name = "info";
		break;
	default:
		NL_SET_ERR_MSG_FMT(extack, "unknown message type %#x",
				   nlh->nlmsg_type);
		return rustnl_c_refuse(&stats, -EOPNOTSUPP);
	}
	NL_SET_ERR_MSG_FMT(extack,
			   "message type %#x (%s) is sent by the kernel, not a request",
			   nlh->nlmsg_type, name);
	return rustnl_c_refuse(&stats, -EOPNOTSUPP);
}

/*
 * The input callback: runs in the sending task's context for every datagram
 * a user socket sends to the kernel socket, concurrently for concurrent
 * senders (the state is atomics only, no lock).
 */
static void rustnl_c_input(struct sk_buff *skb)
{
	netlink_rcv_skb(skb, rustnl_c_rcv_msg);
}

/* The generic netlink face. */

/* The family's multicast groups (ynl_gen_c.py's kernel header names). */
enum {
	RUSTNL_NLGRP_EVENTS,
	RUSTNL_NLGRP_HEARTBEAT,
};

static struct genl_family rustnl_c_genl_family;

/*
 * The numbered groups one socket of the family receives the events of
 * (set-groups), group g at bit g - 1: the family's per-socket private
 * memory. A socket without it (it never chose) receives every group.
 * Written by set-groups and read by a broadcast's filter, both doits,
 * which the core runs one at a time (the family is not parallel_ops).
 */
struct rustnl_c_sock_priv {
	DECLARE_BITMAP(groups, RUSTNL_MAX_GROUPS);
};

static void rustnl_c_sock_priv_init(void *priv)
{
	struct rustnl_c_sock_priv *p = priv;

	bitmap_fill(p->groups, RUSTNL_MAX_GROUPS);
}

/*
 * __genl_sk_priv_get() and genl_sk_priv_get() are not exported to modules
 * (7.2, 7.3): their bodies, on the xarray of the family's per-socket
 * private memory (keyed by the socket's address), which
 * genl_register_family() allocates for a family with a sock_priv_size and
 * the core empties, kfree()ing each entry, when a socket is released and
 * when the family is unregistered. The lookup wants RCU or the socket's
 * own guarantee (a listener on the list the filter is walking; a doit's
 * sender).
 */
static struct rustnl_c_sock_priv *rustnl_c_sk_priv_lookup(struct sock *sk)
{
	return xa_load(rustnl_c_genl_family.sock_privs, (unsigned long)sk);
}

static struct rustnl_c_sock_priv *rustnl_c_sk_priv_get(struct sock *sk)
{
	struct rustnl_c_sock_priv *priv;
	void *old;

	priv = rustnl_c_sk_priv_lookup(sk);
	if (priv)
		return priv;
	priv = kzalloc(rustnl_c_genl_family.sock_priv_size, GFP_KERNEL);
	if (!priv)
		return ERR_PTR(-ENOMEM);
	rustnl_c_genl_family.sock_priv_init(priv);
	old = xa_cmpxchg(rustnl_c_genl_family.sock_privs, (unsigned long)sk,
			 NULL, priv, GFP_KERNEL);
	if (old) {
		kfree(priv);
		if (xa_is_err(old))
			return ERR_PTR(xa_err(old));
		/* Another request of the socket stored first. */
		return old;
	}
	return priv;
}

/*
 * The filter of a broadcast's event (genlmsg_multicast_netns_filtered()):
 * non-zero skips @dsk, a listener that chose groups without the event's
 * (@data). As devlink_nl_notify_filter().
 */
static int rustnl_c_genl_filter(struct sock *dsk, struct sk_buff *skb,
				void *data)
{
	u32 group = *(const u32 *)data;
	struct rustnl_c_sock_priv *priv;
	int skip = 0;

	rcu_read_lock();
	priv = rustnl_c_sk_priv_lookup(dsk);
	if (priv)
		skip = !test_bit(group - 1, priv->groups);
	rcu_read_unlock();
	return skip;
}

/* Sizes of the attributes of an event (the payload aside). */
#define RUSTNL_C_EVENT_ATTRS_SIZE					\
	(2 * nla_total_size(sizeof(u32)) + 2 * nla_total_size(sizeof(u64)))

/*
 * Multicasts event @cmd (RUSTNL_CMD_EVENT, _HEARTBEAT or _GOODBYE) of
 * numbered group @group to multicast group @mcgrp of the family in @net:
 * group, origin-portid, event-seq, timestamp-ns and, if @payload, the
 * payload attribute; an event to the listeners of @group only. Returns 0
 * with the event's sequence number and how delivery went, or the errno if
 * no buffer could be had.
 */
static int rustnl_c_genl_event(struct net *net, u8 cmd, unsigned int mcgrp,
			       u32 group, u32 origin,
			       const void *payload, u32 len,
			       u64 *seq, enum rustnl_c_delivery *delivery)
{
	struct rustnl_c_stats *st = &rustnl_c_pernet(net)->genl;
	struct sk_buff *msg;
	void *hdr;
	int err;

	*seq = (u64)atomic64_inc_return(rustnl_c_event_seq(net));
	msg = genlmsg_new(RUSTNL_C_EVENT_ATTRS_SIZE +
			  (payload ? nla_total_size(len) : 0), GFP_KERNEL);
	if (!msg) {
		err = -ENOMEM;
		goto err_count;
	}
	/* nlmsg_seq 0, as the Rust module's events (event-seq has it). */
	hdr = genlmsg_put(msg, 0, 0, &rustnl_c_genl_family, 0, cmd);
	if (!hdr ||
	    nla_put_u32(msg, RUSTNL_A_GROUP, group) ||
	    nla_put_u32(msg, RUSTNL_A_ORIGIN_PORTID, origin) ||
	    nla_put_uint(msg, RUSTNL_A_EVENT_SEQ, *seq) ||
	    nla_put_uint(msg, RUSTNL_A_TIMESTAMP_NS,
			 ktime_get_real_fast_ns()) ||
	    (payload && nla_put(msg, RUSTNL_A_PAYLOAD, len, payload))) {
		err = -EMSGSIZE;
		goto err_free;
	}
	genlmsg_end(msg, hdr);
	/* Process context (a doit or module exit): may sleep. */
	if (cmd == RUSTNL_CMD_EVENT)
		err = genlmsg_multicast_netns_filtered(&rustnl_c_genl_family,
						       net, msg, 0, mcgrp,
						       GFP_KERNEL,
						       rustnl_c_genl_filter,
						       &group);
	else
		err = genlmsg_multicast_netns(&rustnl_c_genl_family, net, msg,
					      0, mcgrp, GFP_KERNEL);
	return rustnl_c_delivered(st, err, delivery);

err_free:
	nlmsg_free(msg);
err_count:
	atomic64_inc(&st->delivery_failures);
	return err;
}

/*
 * Sends @msg, a reply, to the requester; what to return from the doit as
 * rustnl_c_answered() says (the core acks or not by it).
 */
static int rustnl_c_genl_reply(struct rustnl_c_stats *st, struct sk_buff *msg,
			       struct genl_info *info)
{
	return rustnl_c_answered(st, genlmsg_reply(msg, info), info->extack);
}

/* A reply that could not be had: counted and told, as on the classic face. */
static int rustnl_c_genl_no_reply(struct rustnl_c_stats *st,
				  struct sk_buff *msg, int err,
				  struct genl_info *info)
{
	nlmsg_free(msg);
	return rustnl_c_answered(st, err, info->extack);
}

static int rustnl_c_genl_echo_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct rustnl_c_stats *st = &rustnl_c_pernet(genl_info_net(info))->genl;
	const struct nlattr *attr = info->attrs[RUSTNL_A_PAYLOAD];
	u32 len = attr ? nla_len(attr) : 0;
	struct sk_buff *msg;
	void *hdr;

	atomic64_inc(&st->requests);
	/* The policy allowed up to RUSTNL_MAX_ATTR_PAYLOAD. */
	if (len > max_payload) {
		NL_SET_ERR_MSG_ATTR_FMT(info->extack, attr,
					"payload of %u bytes exceeds max_payload (%u)",
					len, max_payload);
		return rustnl_c_refuse(st, -EMSGSIZE);
	}
	atomic64_inc(&st->echoes);
	msg = genlmsg_new(nla_total_size(len), GFP_KERNEL);
	if (!msg)
		return rustnl_c_answered(st, -ENOMEM, info->extack);
	hdr = genlmsg_put_reply(msg, info, &rustnl_c_genl_family, 0,
				RUSTNL_CMD_ECHO);
	/* The reply always carries the payload, an empty one too. */
	if (!hdr || nla_put(msg, RUSTNL_A_PAYLOAD, len,
			    attr ? nla_data(attr) : NULL))
		return rustnl_c_genl_no_reply(st, msg, -EMSGSIZE, info);
	genlmsg_end(msg, hdr);
	return rustnl_c_genl_reply(st, msg, info);
}

static int rustnl_c_genl_broadcast_doit(struct sk_buff *skb,
					struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct rustnl_c_stats *st = &rustnl_c_pernet(net)->genl;
	const struct nlattr *attr = info->attrs[RUSTNL_A_PAYLOAD];
	u32 len = attr ? nla_len(attr) : 0;
	enum rustnl_c_delivery delivery;
	struct sk_buff *msg;
	void *hdr;
	u32 group;
	u64 seq;
	int err;

	atomic64_inc(&st->requests);
	if (GENL_REQ_ATTR_CHECK(info, RUSTNL_A_GROUP)) {
		NL_SET_ERR_MSG(info->extack, "missing attribute: group");
		return rustnl_c_refuse(st, -EINVAL);
	}
	/* The policy allowed 1..RUSTNL_MAX_GROUPS; the module has fewer. */
	group = nla_get_u32(info->attrs[RUSTNL_A_GROUP]);
	if (group > groups) {
		NL_SET_ERR_MSG_ATTR_FMT(info->extack,
					info->attrs[RUSTNL_A_GROUP],
					"group %u is not in 1..=%u",
					group, groups);
		return rustnl_c_refuse(st, -EINVAL);
	}
	if (len > max_payload) {
		NL_SET_ERR_MSG_ATTR_FMT(info->extack, attr,
					"payload of %u bytes exceeds max_payload (%u)",
					len, max_payload);
		return rustnl_c_refuse(st, -EMSGSIZE);
	}
	/* CAP_NET_ADMIN was checked by the core (GENL_UNS_ADMIN_PERM). */
	atomic64_inc(&st->broadcasts);
	err = rustnl_c_genl_event(net, RUSTNL_CMD_EVENT, RUSTNL_NLGRP_EVENTS,
				  group, info->snd_portid,
				  attr ? nla_data(attr) : "", len,
				  &seq, &delivery);
	if (err) {
		/* Counted as a delivery failure once, in genl_event. */
		if (err == -ENOMEM || err == -EMSGSIZE) {
			NL_SET_ERR_MSG(info->extack,
				       "cannot allocate the event");
			return err;
		}
		return -EINTR;
	}

	msg = genlmsg_new(nla_total_size(sizeof(u32)) + 2 * nla_total_size(0) +
			  nla_total_size(sizeof(u64)), GFP_KERNEL);
	if (!msg)
		return rustnl_c_answered(st, -ENOMEM, info->extack);
	hdr = genlmsg_put_reply(msg, info, &rustnl_c_genl_family, 0,
				RUSTNL_CMD_BROADCAST);
	if (!hdr ||
	    nla_put_u32(msg, RUSTNL_A_GROUP, group) ||
	    (delivery == RUSTNL_C_DELIVERED &&
	     nla_put_flag(msg, RUSTNL_A_DELIVERED)) ||
	    (delivery == RUSTNL_C_SOME_FAILED &&
	     nla_put_flag(msg, RUSTNL_A_DELIVERY_FAILED)) ||
	    nla_put_uint(msg, RUSTNL_A_EVENT_SEQ, seq))
		return rustnl_c_genl_no_reply(st, msg, -EMSGSIZE, info);
	genlmsg_end(msg, hdr);
	return rustnl_c_genl_reply(st, msg, info);
}

static int rustnl_c_genl_set_groups_doit(struct sk_buff *skb,
					 struct genl_info *info)
{
	struct rustnl_c_stats *st = &rustnl_c_pernet(genl_info_net(info))->genl;
	DECLARE_BITMAP(chosen, RUSTNL_MAX_GROUPS);
	struct rustnl_c_sock_priv *priv;
	const struct nlattr *attr;
	bool named = false;
	int rem;

	atomic64_inc(&st->requests);
	bitmap_zero(chosen, RUSTNL_MAX_GROUPS);
	nlmsg_for_each_attr_type(attr, RUSTNL_A_LISTEN_GROUP, info->nlhdr,
				 GENL_HDRLEN, rem) {
		/* The policy allowed 1..RUSTNL_MAX_GROUPS; the module has fewer. */
		u32 group = nla_get_u32(attr);

		if (group > groups) {
			NL_SET_ERR_MSG_ATTR_FMT(info->extack, attr,
						"group %u is not in 1..=%u",
						group, groups);
			return rustnl_c_refuse(st, -EINVAL);
		}
		__set_bit(group - 1, chosen);
		named = true;
	}
	/* None named: every group again. */
	if (!named)
		bitmap_fill(chosen, RUSTNL_MAX_GROUPS);
	priv = rustnl_c_sk_priv_get(NETLINK_CB(skb).sk);
	if (IS_ERR(priv)) {
		if (PTR_ERR(priv) == -ENOMEM)
			NL_SET_ERR_MSG(info->extack,
				       "cannot allocate the socket's groups");
		return PTR_ERR(priv);
	}
	bitmap_copy(priv->groups, chosen, RUSTNL_MAX_GROUPS);
	/* No reply: the core acks if asked. */
	return 0;
}

/* Counters of a face that does not serve the namespace. */
static const struct rustnl_c_stats rustnl_c_no_stats;

/* A counters nest of attribute type @type: @st's counters. */
static int rustnl_c_put_counters(struct sk_buff *msg, int type,
				 const struct rustnl_c_stats *st)
{
	const atomic64_t *c[] = {
		&st->requests, &st->echoes, &st->broadcasts, &st->events_sent,
		&st->invalid, &st->not_supported, &st->too_large,
		&st->not_permitted, &st->delivery_failures, &st->no_listeners,
	};
	struct nlattr *nest;
	int i;

	BUILD_BUG_ON(ARRAY_SIZE(c) != RUSTNL_A_COUNTERS_MAX);
	nest = nla_nest_start(msg, type);
	if (!nest)
		return -EMSGSIZE;
	for (i = 0; i < ARRAY_SIZE(c); i++) {
		if (nla_put_uint(msg, RUSTNL_A_COUNTERS_REQUESTS + i,
				 atomic64_read(c[i]))) {
			nla_nest_cancel(msg, nest);
			return -EMSGSIZE;
		}
	}
	nla_nest_end(msg, nest);
	return 0;
}

static int rustnl_c_genl_get_info_doit(struct sk_buff *skb,
				       struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct rustnl_c_stats *st = &rustnl_c_pernet(net)->genl;
	struct sk_buff *msg;
	void *hdr;

	atomic64_inc(&st->requests);
	msg = genlmsg_new(GENLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return rustnl_c_answered(st, -ENOMEM, info->extack);
	hdr = genlmsg_put_reply(msg, info, &rustnl_c_genl_family, 0,
				RUSTNL_CMD_GET_INFO);
	/* The classic face serves init_net only: 0 elsewhere. */
	if (!hdr ||
	    nla_put_u32(msg, RUSTNL_A_VERSION, RUSTNL_PROTOCOL_VERSION) ||
	    nla_put_u32(msg, RUSTNL_A_UNIT, unit) ||
	    nla_put_u32(msg, RUSTNL_A_GROUPS, groups) ||
	    nla_put_u32(msg, RUSTNL_A_MAX_PAYLOAD, max_payload) ||
	    nla_put_u32(msg, RUSTNL_A_HEARTBEAT_MS, 0) ||
	    (open_broadcast && nla_put_flag(msg, RUSTNL_A_OPEN_BROADCAST)) ||
	    rustnl_c_put_counters(msg, RUSTNL_A_CLASSIC_COUNTERS,
				  net_eq(net, &init_net) ?
				  &stats : &rustnl_c_no_stats) ||
	    rustnl_c_put_counters(msg, RUSTNL_A_GENL_COUNTERS, st))
		return rustnl_c_genl_no_reply(st, msg, -EMSGSIZE, info);
	genlmsg_end(msg, hdr);
	return rustnl_c_genl_reply(st, msg, info);
}

/*
 * The policies and ops ynl_gen_c.py renders from shared/spec/rustnl.yaml
 * (--mode kernel --source), with two differences:
 *
 *  - the payload's max-len: the generator writes
 *    NLA_POLICY_MAX_LEN(RUSTNL_MAX_ATTR_PAYLOAD), whose s16 .max cannot hold
 *    65531 (it becomes -5: a compile error here, a WARN in
 *    nla_get_range_unsigned() at run time). The length goes in .len, the
 *    form NLA_POLICY_MAX_LEN stands for when the bound fits; no attribute
 *    is longer anyway (nla_len is a u16).
 *  - parallel_ops: the family is not parallel, like the Rust module's
 *    (each doit runs under genl_mutex).
 */
#define RUSTNL_C_PAYLOAD_POLICY \
	{ .type = NLA_BINARY, .len = RUSTNL_MAX_ATTR_PAYLOAD }

static const struct nla_policy rustnl_c_echo_policy[RUSTNL_A_PAYLOAD + 1] = {
	[RUSTNL_A_PAYLOAD] = RUSTNL_C_PAYLOAD_POLICY,
};

static const struct nla_policy rustnl_c_broadcast_policy[RUSTNL_A_GROUP + 1] = {
	[RUSTNL_A_GROUP] = NLA_POLICY_RANGE(NLA_U32, 1, RUSTNL_MAX_GROUPS),
	[RUSTNL_A_PAYLOAD] = RUSTNL_C_PAYLOAD_POLICY,
};

static const struct nla_policy rustnl_c_set_groups_policy[RUSTNL_A_LISTEN_GROUP + 1] = {
	[RUSTNL_A_LISTEN_GROUP] = NLA_POLICY_RANGE(NLA_U32, 1, RUSTNL_MAX_GROUPS),
};

/* Not const: open_broadcast=1 drops GENL_UNS_ADMIN_PERM before register. */
static struct genl_split_ops rustnl_c_genl_ops[] __ro_after_init = {
	{
		.cmd		= RUSTNL_CMD_ECHO,
		.doit		= rustnl_c_genl_echo_doit,
		.policy		= rustnl_c_echo_policy,
		.maxattr	= RUSTNL_A_PAYLOAD,
		.flags		= GENL_CMD_CAP_DO,
	},
	{
		.cmd		= RUSTNL_CMD_BROADCAST,
		.doit		= rustnl_c_genl_broadcast_doit,
		.policy		= rustnl_c_broadcast_policy,
		.maxattr	= RUSTNL_A_GROUP,
		.flags		= GENL_UNS_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= RUSTNL_CMD_GET_INFO,
		.doit		= rustnl_c_genl_get_info_doit,
		.flags		= GENL_CMD_CAP_DO,
	},
	{
		.cmd		= RUSTNL_CMD_SET_GROUPS,
		.doit		= rustnl_c_genl_set_groups_doit,
		.policy		= rustnl_c_set_groups_policy,
		.maxattr	= RUSTNL_A_LISTEN_GROUP,
		.flags		= GENL_CMD_CAP_DO,
	},
};

static const struct genl_multicast_group rustnl_c_genl_mcgrps[] = {
	[RUSTNL_NLGRP_EVENTS] = { .name = RUSTNL_MCGRP_EVENTS, },
	[RUSTNL_NLGRP_HEARTBEAT] = { .name = RUSTNL_MCGRP_HEARTBEAT, },
};

static struct genl_family rustnl_c_genl_family __ro_after_init = {
	.name		= RUSTNL_FAMILY_NAME,
	.version	= RUSTNL_FAMILY_VERSION,
	.netnsok	= true,
	.module		= THIS_MODULE,
	.split_ops	= rustnl_c_genl_ops,
	.n_split_ops	= ARRAY_SIZE(rustnl_c_genl_ops),
	.mcgrps		= rustnl_c_genl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(rustnl_c_genl_mcgrps),
	.sock_priv_size	= sizeof(struct rustnl_c_sock_priv),
	.sock_priv_init	= rustnl_c_sock_priv_init,
};

/* Zeroed by the core; nothing else to set up or tear down. */
static struct pernet_operations rustnl_c_net_ops = {
	.id	= &rustnl_c_net_id,
	.size	= sizeof(struct rustnl_c_net),
};

/* GOODBYE on the heartbeat group of every namespace. */
static void rustnl_c_genl_goodbye(void)
{
	enum rustnl_c_delivery delivery;
	struct net *net;
	u64 seq;

	/* net_rwsem: may sleep (GFP_KERNEL), every listed net is set up. */
	down_read(&net_rwsem);
	for_each_net(net)
		rustnl_c_genl_event(net, RUSTNL_CMD_GOODBYE,
				    RUSTNL_NLGRP_HEARTBEAT,
				    RUSTNL_KERNEL_EVENT_GROUP, 0, NULL, 0,
				    &seq, &delivery);
	up_read(&net_rwsem);
}

static int __init rustnl_c_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.groups = groups,
		.flags = NL_CFG_F_NONROOT_RECV,	/* anyone may listen */
		.input = rustnl_c_input,
	};
	int err, i;

	/* The checks and messages of kmod/rustnl_main.rs (validate). */
	if (unit >= RUSTNL_MAX_LINKS) {
		pr_err("unit=%u is out of range: netlink units are 0..31\n",
		       unit);
		return -EINVAL;
	}
	if (!groups || groups > RUSTNL_MAX_GROUPS) {
		pr_err("groups=%u is out of range: 1..1024\n", groups);
		return -EINVAL;
	}
	if (max_payload > RUSTNL_MAX_PAYLOAD_LIMIT) {
		pr_err("max_payload=%u is out of range: 0..1048576\n",
		       max_payload);
		return -EINVAL;
	}

	/* The per-namespace state before the family that uses it. */
	err = register_pernet_subsys(&rustnl_c_net_ops);
	if (err)
		return err;

	/* init_net only: see the comment at the top. */
	nl_sk = netlink_kernel_create(&init_net, unit, &cfg);
	if (!nl_sk) {
		pr_err("cannot create netlink unit %u: it is already in use (errno %d)\n",
		       unit, -EBUSY);
		err = -EBUSY;
		goto err_pernet;
	}

	/* open_broadcast: anyone may broadcast, as on the classic face. */
	for (i = 0; open_broadcast && i < ARRAY_SIZE(rustnl_c_genl_ops); i++)
		rustnl_c_genl_ops[i].flags &= ~GENL_UNS_ADMIN_PERM;
	err = genl_register_family(&rustnl_c_genl_family);
	if (err) {
		pr_err("cannot register generic netlink family %s (errno %d)\n",
		       RUSTNL_FAMILY_NAME, err);
		goto err_unit;
	}

	pr_info("netlink unit %u and generic netlink family %s (id %u) ready (protocol v%d, %u groups, max payload %u, heartbeat 0 ms, open_broadcast %s)\n",
		unit, RUSTNL_FAMILY_NAME, rustnl_c_genl_family.id,
		RUSTNL_PROTOCOL_VERSION, groups, max_payload,
		str_true_false(open_broadcast));
	return 0;

err_unit:
	netlink_kernel_release(nl_sk);
err_pernet:
	unregister_pernet_subsys(&rustnl_c_net_ops);
	return err;
}

static void __exit rustnl_c_exit(void)
{
	enum rustnl_c_delivery delivery;
	u64 seq;

	/* Listeners learn that the unit goes away, as from the Rust module. */
	rustnl_c_send_event(nl_sk, RUSTNL_MSG_GOODBYE,
			    RUSTNL_KERNEL_EVENT_GROUP, 0, NULL, 0,
			    &seq, &delivery);
	netlink_kernel_release(nl_sk);
	/* And the family's, in every namespace. */
	rustnl_c_genl_goodbye();
	/* Waits for the doits in flight; none starts after it. */
	genl_unregister_family(&rustnl_c_genl_family);
	unregister_pernet_subsys(&rustnl_c_net_ops);
	pr_info("netlink unit %u and generic netlink family %s released\n",
		unit, RUSTNL_FAMILY_NAME);
}

module_init(rustnl_c_init);
module_exit(rustnl_c_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("rustnl developers");
MODULE_DESCRIPTION("rustnl protocol in C: benchmark reference for the Rust module (NETLINK_TEST and generic netlink)");
