// SPDX-License-Identifier: GPL-2.0
/*
 * The unicast user program of the Kernel Korner article "Why and How to Use
 * Netlink Socket" (Linux Journal, 2005), updated to today's headers and
 * conventions, and pointed at rustnl. Changes from the article:
 *   - NETLINK_TEST is rustnl's unit (31) and the message type is ECHO (0x10);
 *   - the message carries NLM_F_REQUEST, which the kernel requires of
 *     requests today (netlink_rcv_skb ignores anything else);
 *   - int main, headers, error checks, a zeroed buffer, msghdr initialised.
 * The kernel echoes the payload; the program prints it as the article did.
 */
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETLINK_TEST 31
#define RUSTNL_MSG_ECHO 0x10
#define MAX_PAYLOAD 1024 /* maximum payload size */

int main(void)
{
	struct sockaddr_nl src_addr, dest_addr;
	struct nlmsghdr *nlh;
	struct iovec iov;
	struct msghdr msg;
	int sock_fd;

	sock_fd = socket(PF_NETLINK, SOCK_RAW, NETLINK_TEST);
	if (sock_fd < 0) {
		perror("socket");
		return 1;
	}
	memset(&src_addr, 0, sizeof(src_addr));
	src_addr.nl_family = AF_NETLINK;
	src_addr.nl_pid = getpid(); /* self pid */
	src_addr.nl_groups = 0;     /* not in mcast groups */
	if (bind(sock_fd, (struct sockaddr *)&src_addr, sizeof(src_addr)) < 0) {
		perror("bind");
		return 1;
	}
	memset(&dest_addr, 0, sizeof(dest_addr));
	dest_addr.nl_family = AF_NETLINK;
	dest_addr.nl_pid = 0;    /* For Linux Kernel */
	dest_addr.nl_groups = 0; /* unicast */

	nlh = calloc(1, NLMSG_SPACE(MAX_PAYLOAD));
	if (!nlh)
		return 1;
	/* Fill the netlink message header */
	nlh->nlmsg_len = NLMSG_SPACE(MAX_PAYLOAD);
	nlh->nlmsg_pid = getpid(); /* self pid */
	nlh->nlmsg_type = RUSTNL_MSG_ECHO;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	/* Fill in the netlink message payload */
	strcpy(NLMSG_DATA(nlh), "Hello you!");

	iov.iov_base = (void *)nlh;
	iov.iov_len = nlh->nlmsg_len;
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = (void *)&dest_addr;
	msg.msg_namelen = sizeof(dest_addr);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;

	if (sendmsg(sock_fd, &msg, 0) < 0) {
		perror("sendmsg");
		return 1;
	}
	/* Read message from kernel */
	memset(nlh, 0, NLMSG_SPACE(MAX_PAYLOAD));
	if (recvmsg(sock_fd, &msg, 0) < 0) {
		perror("recvmsg");
		return 1;
	}
	printf(" Received message payload: %s\n", (char *)NLMSG_DATA(nlh));

	/* Close Netlink Socket */
	close(sock_fd);
	free(nlh);
	return 0;
}
