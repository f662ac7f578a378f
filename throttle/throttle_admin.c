/*
 * throttle_admin.c - the operators' view of the throttle on the admin
 * listener (core/admin.h's daemon route): GET /throttle lists this
 * instance's blocked sources and biggest counters as JSON, POST
 * /throttle/unblock?ip=ADDR[/PREFIX] forgets an address's (or a
 * network's) blocks and failures here and in Redis. scripts/ringgate-ctl
 * calls them.
 *
 * The query parser (throttle_admin_query()) takes a peer's bytes and
 * has a fuzz target (tests/fuzz/fuzz_throttle_query.c). Runs on the admin's
 * thread, worker 0's loop, whose throttle worker sends the Redis part.
 * Must never echo request bytes into a response or a log line.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "throttle/throttle_private.h"

#define CT_JSON "application/json"
#define DUMP_MAX 100 /* blocked sources and counters listed, each */

static int hexval(char c);

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
throttle_admin_query(const char *q, size_t n, const char *name, char *out,
    size_t cap)
{
	size_t nlen = strlen(name), i = 0;

	if (cap == 0)
		return -1;
	while (i < n) {
		size_t end = i;

		while (end < n && q[end] != '&')
			end++;
		if (end - i > nlen && memcmp(q + i, name, nlen) == 0 &&
		    q[i + nlen] == '=') {
			size_t o = 0;

			for (size_t k = i + nlen + 1; k < end; k++) {
				char c = q[k];

				if (c == '%') {
					int hi, lo;

					if (k + 2 >= end)
						return -1;
					hi = hexval(q[k + 1]);
					lo = hexval(q[k + 2]);
					if (hi < 0 || lo < 0)
						return -1;
					c = (char)(hi * 16 + lo);
					k += 2;
				} else if (c == '+') {
					c = ' ';
				}
				/* addresses are printable ASCII */
				if ((unsigned char)c <= 0x20 ||
				    (unsigned char)c >= 0x7f || o + 1 >= cap)
					return -1;
				out[o++] = c;
			}
			out[o] = '\0';
			return o > 0 ? 0 : -1;
		}
		i = end + 1;
	}
	return -1;
}

int
throttle_admin_route(void *arg, const char *method, size_t mlen,
    const char *target, size_t tlen, struct buf *body, const char **ctype_r)
{
	struct throttle *t = arg;
	const char *qm = memchr(target, '?', tlen);
	size_t plen = qm ? (size_t)(qm - target) : tlen;
	bool get = mlen == 3 && memcmp(method, "GET", 3) == 0;
	bool post = mlen == 4 && memcmp(method, "POST", 4) == 0;
	char ip[THROTTLE_IP_MAX];

	*ctype_r = CT_JSON;
	if (plen == 9 && memcmp(target, "/throttle", 9) == 0) {
		if (!get)
			return 405;
		return throttle_dump(t, DUMP_MAX, body) == -1 ? -1 : 200;
	}
	if (plen != 17 || memcmp(target, "/throttle/unblock", 17) != 0)
		return 404;
	if (!post)
		return 405;
	if (qm == NULL ||
	    throttle_admin_query(qm + 1, tlen - plen - 1, "ip", ip,
		sizeof(ip)) == -1 ||
	    throttle_unblock(t, ip) == -1) {
		*ctype_r = NULL;
		return buf_printf(body,
			   "400 Bad Request: ip=ADDRESS or ip=NETWORK/PREFIX "
			   "expected\n") == -1 ?
		    -1 :
		    400;
	}
	return buf_printf(body, "{\"unblocked\":\"%s\"}\n", ip) == -1 ? -1 :
									200;
}
