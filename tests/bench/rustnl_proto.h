/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rustnl wire protocol for C: constants and fixed message layouts.
 *
 * GENERATED from shared/src/proto.rs by shared/tests/c_header.rs, which
 * probes every layout through to_bytes(). Do not edit: regenerate with
 *   RUSTNL_BLESS=1 cargo test -p rustnl-shared --test c_header
 * (cargo test fails while this file differs from a fresh rendering).
 *
 * All integers are in host byte order, as netlink's own. Each fixed layout
 * starts with version and hdr_len, the size of the fixed part as its
 * writer laid it out; a payload, if any, starts hdr_len bytes in, so a
 * reader must skip hdr_len (not sizeof) bytes and refuse a hdr_len below
 * the *_LEN here. Padding members are zero. Kernel or user C alike: only
 * <linux/types.h> is needed.
 */
#ifndef RUSTNL_PROTO_H
#define RUSTNL_PROTO_H

#include <linux/types.h>

/* Protocol constants and module parameter limits. */
#define RUSTNL_PROTOCOL_VERSION 1
#define RUSTNL_DEFAULT_UNIT 31
#define RUSTNL_MAX_LINKS 32
#define RUSTNL_DEFAULT_MAX_PAYLOAD 65536
#define RUSTNL_MAX_PAYLOAD_LIMIT 1048576
#define RUSTNL_DEFAULT_GROUPS 32
#define RUSTNL_MAX_GROUPS 1024
#define RUSTNL_KERNEL_EVENT_GROUP 1
#define RUSTNL_MIN_HEARTBEAT_MS 10
#define RUSTNL_MAX_HEARTBEAT_MS 3600000

/* Message types (nlmsg_type). */
#define RUSTNL_MSG_ECHO 0x10
#define RUSTNL_MSG_BROADCAST 0x11
#define RUSTNL_MSG_EVENT 0x12
#define RUSTNL_MSG_HEARTBEAT 0x13
#define RUSTNL_MSG_GOODBYE 0x14
#define RUSTNL_MSG_GET_INFO 0x15
#define RUSTNL_MSG_INFO 0x16

/* Number of u64 counters in struct rustnl_info. */
#define RUSTNL_INFO_COUNTERS 10

/*
 * BROADCAST request header; the payload to multicast follows it
 * (at hdr_len). group is in 1..groups.
 * Rust: BroadcastHdr (8 bytes).
 */
struct rustnl_broadcast_hdr {
	__u16 version;
	__u16 hdr_len;
	__u32 group;
};

#define RUSTNL_BROADCAST_HDR_LEN 8
_Static_assert(sizeof(struct rustnl_broadcast_hdr) == RUSTNL_BROADCAST_HDR_LEN,
	       "struct rustnl_broadcast_hdr size");
_Static_assert(__builtin_offsetof(struct rustnl_broadcast_hdr, version) == 0,
	       "rustnl_broadcast_hdr.version offset");
_Static_assert(__builtin_offsetof(struct rustnl_broadcast_hdr, hdr_len) == 2,
	       "rustnl_broadcast_hdr.hdr_len offset");
_Static_assert(__builtin_offsetof(struct rustnl_broadcast_hdr, group) == 4,
	       "rustnl_broadcast_hdr.group offset");

/*
 * The kernel's answer to BROADCAST (in a BROADCAST message). event_seq
 * is the EVENT's sequence number in its network namespace.
 * Rust: BroadcastResult (24 bytes).
 */
struct rustnl_broadcast_result {
	__u16 version;
	__u16 hdr_len;
	__u32 group;
	__u32 flags;	/* RUSTNL_BROADCAST_RESULT_* bits */
	__u8 pad0[4];
	__u64 event_seq;
};

#define RUSTNL_BROADCAST_RESULT_LEN 24
#define RUSTNL_BROADCAST_RESULT_DELIVERED (1U << 0)
#define RUSTNL_BROADCAST_RESULT_DELIVERY_FAILED (1U << 1)
_Static_assert(sizeof(struct rustnl_broadcast_result) == RUSTNL_BROADCAST_RESULT_LEN,
	       "struct rustnl_broadcast_result size");
_Static_assert(__builtin_offsetof(struct rustnl_broadcast_result, version) == 0,
	       "rustnl_broadcast_result.version offset");
_Static_assert(__builtin_offsetof(struct rustnl_broadcast_result, hdr_len) == 2,
	       "rustnl_broadcast_result.hdr_len offset");
_Static_assert(__builtin_offsetof(struct rustnl_broadcast_result, group) == 4,
	       "rustnl_broadcast_result.group offset");
_Static_assert(__builtin_offsetof(struct rustnl_broadcast_result, flags) == 8,
	       "rustnl_broadcast_result.flags offset");
_Static_assert(__builtin_offsetof(struct rustnl_broadcast_result, event_seq) == 16,
	       "rustnl_broadcast_result.event_seq offset");

/*
 * Header of the multicast messages (EVENT, HEARTBEAT, GOODBYE); the
 * payload follows at hdr_len. origin is the BROADCAST sender's port id
 * (0 for kernel events), seq counts events from 1, timestamp_ns is
 * CLOCK_REALTIME in nanoseconds.
 * Rust: EventHdr (32 bytes).
 */
struct rustnl_event_hdr {
	__u16 version;
	__u16 hdr_len;
	__u32 group;
	__u32 origin;
	__u8 pad0[4];
	__u64 seq;
	__u64 timestamp_ns;
};

#define RUSTNL_EVENT_HDR_LEN 32
_Static_assert(sizeof(struct rustnl_event_hdr) == RUSTNL_EVENT_HDR_LEN,
	       "struct rustnl_event_hdr size");
_Static_assert(__builtin_offsetof(struct rustnl_event_hdr, version) == 0,
	       "rustnl_event_hdr.version offset");
_Static_assert(__builtin_offsetof(struct rustnl_event_hdr, hdr_len) == 2,
	       "rustnl_event_hdr.hdr_len offset");
_Static_assert(__builtin_offsetof(struct rustnl_event_hdr, group) == 4,
	       "rustnl_event_hdr.group offset");
_Static_assert(__builtin_offsetof(struct rustnl_event_hdr, origin) == 8,
	       "rustnl_event_hdr.origin offset");
_Static_assert(__builtin_offsetof(struct rustnl_event_hdr, seq) == 16,
	       "rustnl_event_hdr.seq offset");
_Static_assert(__builtin_offsetof(struct rustnl_event_hdr, timestamp_ns) == 24,
	       "rustnl_event_hdr.timestamp_ns offset");

/*
 * The answer to GET_INFO (in an INFO message): the module's
 * configuration and its namespace's counters (Rust: Info with
 * Counters, flattened here).
 * Rust: Info (104 bytes).
 */
struct rustnl_info {
	__u16 version;
	__u16 hdr_len;
	__u32 unit;
	__u32 groups;
	__u32 max_payload;
	__u32 heartbeat_ms;
	__u32 open_broadcast;	/* 0 or 1 */
	__u64 requests;
	__u64 echoes;
	__u64 broadcasts;
	__u64 events_sent;
	__u64 invalid;
	__u64 not_supported;
	__u64 too_large;
	__u64 not_permitted;
	__u64 delivery_failures;
	__u64 no_listeners;
};

#define RUSTNL_INFO_LEN 104
_Static_assert(sizeof(struct rustnl_info) == RUSTNL_INFO_LEN,
	       "struct rustnl_info size");
_Static_assert(__builtin_offsetof(struct rustnl_info, version) == 0,
	       "rustnl_info.version offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, hdr_len) == 2,
	       "rustnl_info.hdr_len offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, unit) == 4,
	       "rustnl_info.unit offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, groups) == 8,
	       "rustnl_info.groups offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, max_payload) == 12,
	       "rustnl_info.max_payload offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, heartbeat_ms) == 16,
	       "rustnl_info.heartbeat_ms offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, open_broadcast) == 20,
	       "rustnl_info.open_broadcast offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, requests) == 24,
	       "rustnl_info.requests offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, echoes) == 32,
	       "rustnl_info.echoes offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, broadcasts) == 40,
	       "rustnl_info.broadcasts offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, events_sent) == 48,
	       "rustnl_info.events_sent offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, invalid) == 56,
	       "rustnl_info.invalid offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, not_supported) == 64,
	       "rustnl_info.not_supported offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, too_large) == 72,
	       "rustnl_info.too_large offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, not_permitted) == 80,
	       "rustnl_info.not_permitted offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, delivery_failures) == 88,
	       "rustnl_info.delivery_failures offset");
_Static_assert(__builtin_offsetof(struct rustnl_info, no_listeners) == 96,
	       "rustnl_info.no_listeners offset");

#endif /* RUSTNL_PROTO_H */
