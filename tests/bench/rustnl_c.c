// SPDX-License-Identifier: GPL-2.0
/*
 * rustnl_c: the rustnl protocol in C, a reference for benchmarking the Rust
 * module (kmod/) side by side. It is never shipped as the product.
 *
 * This is the Kernel Korner NETLINK_TEST module ("Kernel Korner - Why and
 * How to Use Netlink Socket") brought to Linux 7.3, speaking exactly the
 * protocol of kmod/: the same message types and layouts (rustnl_proto.h,
 * generated from shared/src/proto.rs), the same replies, errnos,
 * extended-ack texts and counters. Where it cannot or does not follow the
 * Rust module, the difference is noted here:
 *
 *  - Only the initial network namespace gets the unit (no pernet
 *    operations); a socket of the unit in another namespace finds no kernel
 *    socket there and its requests fail with ECONNREFUSED.
 *  - Messages are dispatched by the kernel's netlink_rcv_skb(), the usual C
 *    helper, which decides a few cases before the handler runs: a message
 *    without NLM_F_REQUEST or with a control type (NLMSG_NOOP included) is
 *    skipped, acknowledged with 0 only if NLM_F_ACK asks for it (the Rust
 *    module refuses both with EINVAL, except NLMSG_NOOP); a malformed
 *    nlmsg_len, or stray bytes shorter than a header at the end, silently
 *    end the datagram (Rust: an NLMSG_ERROR with EINVAL). None of these is
 *    counted in "requests" or "invalid" (Rust counts every message,
 *    malformed ones included).
 *  - No heartbeat (INFO reports heartbeat_ms 0); GOODBYE is sent at unload.
 *  - The kernel socket is created with THIS_MODULE as owner, the usual C
 *    way: every user socket of the unit pins the module, so rmmod fails
 *    while clients are connected (the Rust module has no owner and waits
 *    for senders in its release instead). This is also what makes the exit
 *    path below safe: no input callback can be running when it runs.
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
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "rustnl_proto.h"

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

/* The counters of struct rustnl_info, in its order; lock-free as in Rust. */
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

static struct rustnl_c_stats stats;
/* Sequence number of the last event sent (the first is 1). */
static atomic64_t event_seq;
/* The kernel socket of the unit in init_net. */
static struct sock *nl_sk;

/* How a multicast went (kmod/netlink.rs: Delivery). */
enum rustnl_c_delivery {
	RUSTNL_C_DELIVERED,	/* someone got it, nobody failed */
	RUSTNL_C_NO_LISTENERS,	/* nobody listens on the group */
	RUSTNL_C_SOME_FAILED,	/* some listener's queue was full */
};

/* Counts a refused request by its errno and returns the errno. */
static int rustnl_c_refuse(int err)
{
	switch (err) {
	case -EINVAL:
		atomic64_inc(&stats.invalid);
		break;
	case -EOPNOTSUPP:
		atomic64_inc(&stats.not_supported);
		break;
	case -EMSGSIZE:
		atomic64_inc(&stats.too_large);
		break;
	case -EPERM:
		atomic64_inc(&stats.not_permitted);
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
static int rustnl_c_answered(int err, struct netlink_ext_ack *extack)
{
	if (!err)
		return 0;
	atomic64_inc(&stats.delivery_failures);
	if (err == -ENOMEM || err == -EMSGSIZE) {
		NL_SET_ERR_MSG(extack, "cannot allocate the answer");
		return err;
	}
	return -EINTR;
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
	int ret;

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
	ret = netlink_broadcast(sk, skb, 0, group, GFP_KERNEL);
	switch (ret) {
	case 0:
		*delivery = RUSTNL_C_DELIVERED;
		atomic64_inc(&stats.events_sent);
		return 0;
	case -ESRCH:
		*delivery = RUSTNL_C_NO_LISTENERS;
		atomic64_inc(&stats.no_listeners);
		return 0;
	case -ENOBUFS:
		*delivery = RUSTNL_C_SOME_FAILED;
		atomic64_inc(&stats.events_sent);
		atomic64_inc(&stats.delivery_failures);
		return 0;
	default:
		/* Not returned by 7.3's netlink_broadcast(); as in Rust. */
		atomic64_inc(&stats.delivery_failures);
		return ret;
	}
}

static int rustnl_c_echo(struct sk_buff *skb, const struct nlmsghdr *nlh,
			 struct netlink_ext_ack *extack)
{
	size_t len = nlmsg_len(nlh);

	if (len > max_payload) {
		NL_SET_ERR_MSG_FMT(extack,
				   "payload of %zu bytes exceeds max_payload (%u)",
				   len, max_payload);
		return rustnl_c_refuse(-EMSGSIZE);
	}
	atomic64_inc(&stats.echoes);
	return rustnl_c_answered(rustnl_c_reply(skb, RUSTNL_MSG_ECHO,
						nlh->nlmsg_seq,
						nlmsg_data(nlh), len),
				 extack);
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
		return rustnl_c_refuse(-EINVAL);
	}
	memcpy(&hdr, data, sizeof(hdr));
	if (!hdr.version) {
		NL_SET_ERR_MSG(extack,
			       "bad broadcast header: header version 0 is invalid");
		return rustnl_c_refuse(-EINVAL);
	}
	if (hdr.hdr_len > have || hdr.hdr_len < RUSTNL_BROADCAST_HDR_LEN) {
		NL_SET_ERR_MSG_FMT(extack,
				   "bad broadcast header: hdr_len %u outside %d..=%zu",
				   hdr.hdr_len, RUSTNL_BROADCAST_HDR_LEN, have);
		return rustnl_c_refuse(-EINVAL);
	}
	if (!hdr.group || hdr.group > groups) {
		NL_SET_ERR_MSG_FMT(extack, "group %u is not in 1..=%u",
				   hdr.group, groups);
		return rustnl_c_refuse(-EINVAL);
	}
	len = have - hdr.hdr_len;
	if (len > max_payload) {
		NL_SET_ERR_MSG_FMT(extack,
				   "payload of %zu bytes exceeds max_payload (%u)",
				   len, max_payload);
		return rustnl_c_refuse(-EMSGSIZE);
	}
	/* CAP_NET_ADMIN over the receiving socket's namespace. */
	if (!open_broadcast &&
	    !netlink_ns_capable(skb, sock_net(skb->sk)->user_ns,
				CAP_NET_ADMIN)) {
		NL_SET_ERR_MSG(extack,
			       "broadcast needs CAP_NET_ADMIN (or open_broadcast=1)");
		return rustnl_c_refuse(-EPERM);
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
	return rustnl_c_answered(rustnl_c_reply(skb, RUSTNL_MSG_BROADCAST,
						nlh->nlmsg_seq,
						&res, sizeof(res)),
				 extack);
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

	if (nlmsg_len(nlh)) {
		NL_SET_ERR_MSG(extack, "get_info takes no payload");
		return rustnl_c_refuse(-EINVAL);
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
	return rustnl_c_answered(rustnl_c_reply(skb, RUSTNL_MSG_INFO,
						nlh->nlmsg_seq,
						&info, sizeof(info)),
				 extack);
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
		return rustnl_c_refuse(-EOPNOTSUPP);
	}
	NL_SET_ERR_MSG_FMT(extack,
			   "message type %#x (%s) is sent by the kernel, not a request",
			   nlh->nlmsg_type, name);
	return rustnl_c_refuse(-EOPNOTSUPP);
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

static int __init rustnl_c_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.groups = groups,
		.flags = NL_CFG_F_NONROOT_RECV,	/* anyone may listen */
		.input = rustnl_c_input,
	};

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

	/* init_net only: see the comment at the top. */
	nl_sk = netlink_kernel_create(&init_net, unit, &cfg);
	if (!nl_sk) {
		pr_err("cannot create netlink unit %u: it is already in use (errno %d)\n",
		       unit, -EBUSY);
		return -EBUSY;
	}
	pr_info("netlink unit %u ready (protocol v%d, %u groups, max payload %u, heartbeat 0 ms, open_broadcast %s)\n",
		unit, RUSTNL_PROTOCOL_VERSION, groups, max_payload,
		str_true_false(open_broadcast));
	return 0;
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
	pr_info("netlink unit %u released\n", unit);
}

module_init(rustnl_c_init);
module_exit(rustnl_c_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("rustnl developers");
MODULE_DESCRIPTION("rustnl protocol in C: benchmark reference for the Rust module (NETLINK_TEST)");
