// SPDX-License-Identifier: GPL-2.0
/*
 * The multicast user program of the Kernel Korner article "Why and How to
 * Use Netlink Socket" (Linux Journal, 2005), updated to today's headers and
 * pointed at rustnl. Changes from the article:
 *   - NETLINK_TEST is rustnl's unit (31);
 *   - int main, headers, error checks, msghdr initialised;
 *   - the payload is written out whole (fwrite) instead of with printf("%s"):
 *     a rustnl event starts with a binary header, the broadcast text follows.
 * It binds to multicast group 1 (nl_groups = 1), as in the article, and
 * prints the first message the kernel multicasts there.
 */
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETLINK_TEST 31
#define MAX_PAYLOAD 1024 /* maximum payload size */

int main(void)
{
	struct sockaddr_nl src_addr, dest_addr;
	struct nlmsghdr *nlh;
	struct iovec iov;
	struct msghdr msg;
	int sock_fd;
	ssize_t n;

	sock_fd = socket(PF_NETLINK, SOCK_RAW, NETLINK_TEST);
	if (sock_fd < 0) {
		perror("socket");
		return 1;
	}
	memset(&src_addr, 0, sizeof(src_addr));
	src_addr.nl_family = AF_NETLINK;
	src_addr.nl_pid = getpid(); /* self pid */
	/* interested in group 1<<0 */
	src_addr.nl_groups = 1;
	if (bind(sock_fd, (struct sockaddr *)&src_addr, sizeof(src_addr)) < 0) {
		perror("bind");
		return 1;
	}
	memset(&dest_addr, 0, sizeof(dest_addr));

	nlh = calloc(1, NLMSG_SPACE(MAX_PAYLOAD));
	if (!nlh)
		return 1;
	iov.iov_base = (void *)nlh;
	iov.iov_len = NLMSG_SPACE(MAX_PAYLOAD);
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = (void *)&dest_addr;
	msg.msg_namelen = sizeof(dest_addr);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;

	printf("Waiting for message from kernel\n");
	fflush(stdout);
	/* Read message from kernel */
	n = recvmsg(sock_fd, &msg, 0);
	if (n < 0) {
		perror("recvmsg");
		return 1;
	}
	if (!NLMSG_OK(nlh, (unsigned int)n)) {
		fprintf(stderr, "short message\n");
		return 1;
	}
	printf(" Received message payload: ");
	fwrite(NLMSG_DATA(nlh), 1, NLMSG_PAYLOAD(nlh, 0), stdout);
	printf("\n");
	close(sock_fd);
	free(nlh);
	return 0;
}
