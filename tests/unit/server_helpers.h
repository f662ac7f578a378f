/*
 * server_helpers.h - what the unit tests that start a real server (slapd,
 * redis-server) share: a free loopback port, "is it listening yet", wait
 * for a SIGSTOPped server to really stop, a monotonic clock in ms.
 *
 * Header-only (static inline) so each test stays one executable with no
 * extra sources; include after <cmocka.h>, whose asserts it uses.
 */
#ifndef RG_TESTS_SERVER_HELPERS_H
#define RG_TESTS_SERVER_HELPERS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* A loopback TCP port nobody listens on right now. */
static inline uint16_t
free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_not_equal(fd, -1);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* Does something accept connections on 127.0.0.1:port? */
static inline bool
port_open(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/* kill(SIGSTOP) returns before the target has stopped: a fast server
 * could still answer one more request. Wait for state T (2 s at most). */
static inline void
wait_stopped(pid_t pid)
{
	char path[64], buf[256], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 400; i++) {
		struct timespec ts = { .tv_nsec = 5 * 1000 * 1000 };
		FILE *f = fopen(path, "r");
		size_t n = 0;

		if (f != NULL) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = '\0';
		if ((p = strrchr(buf, ')')) != NULL && p[1] == ' ' &&
		    (p[2] == 'T' || p[2] == 't'))
			return;
		nanosleep(&ts, NULL);
	}
	fail_msg("pid %d did not stop", (int)pid);
}

static inline uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
