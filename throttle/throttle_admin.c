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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
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

/* ---- the local view and unblocking ---------------------------------------- */

struct dump_entry {
	int64_t value;
	uint64_t expires;
	char key[THR_KEY_MAX];
};

struct dump {
	struct dump_entry *e;
	size_t n, cap;
};

static void
dump_keep(void *arg, const char *key, int64_t v, uint64_t expires)
{
	struct dump *d = arg;

	if (d->n < d->cap) {
		d->e[d->n].value = v;
		d->e[d->n].expires = expires;
		snprintf(d->e[d->n].key, sizeof(d->e[0].key), "%s", key);
		d->n++;
	}
}

static int
by_value(const void *a, const void *b)
{
	const struct dump_entry *x = a, *y = b;

	return x->value < y->value ? 1 : x->value > y->value ? -1 : 0;
}

/* One list of d's entries whose key starts (blocked) or does not start
 * with "b:"; keys are our own text (scopes, normalized names) but are
 * escaped for JSON all the same. */
static int
dump_list(struct buf *out, const struct dump *d, bool blocked, unsigned max,
    uint64_t now)
{
	unsigned n = 0;

	for (size_t i = 0; i < d->n && n < max; i++) {
		const struct dump_entry *e = &d->e[i];

		if ((strncmp(e->key, "b:", 2) == 0) != blocked)
			continue;
		if (buf_printf(out, "%s{\"key\":\"", n++ ? "," : "") == -1)
			return -1;
		for (const char *p = e->key; *p; p++) {
			unsigned char ch = (unsigned char)*p;
			int rc = ch == '"' || ch == '\\' || ch < 0x20 ||
				ch >= 0x7f ?
			    buf_printf(out, "\\u%04x", ch) :
			    buf_append(out, p, 1);

			if (rc == -1)
				return -1;
		}
		if (buf_printf(out, "\",\"value\":%lld,\"ttl_ms\":%llu}",
			(long long)e->value,
			(unsigned long long)(e->expires > now ?
				e->expires - now :
				0)) == -1)
			return -1;
	}
	return 0;
}

int
throttle_dump(struct throttle *t, unsigned max, struct buf *out)
{
	struct dump d = { 0 };
	struct timespec ts;
	uint64_t now;
	size_t tracked;
	int rc = -1;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* loop_now()'s clock */
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	pthread_mutex_lock(&t->mu);
	tracked = thr_local_count(t->local);
	d.cap = tracked;
	d.e = tracked ? calloc(tracked, sizeof(*d.e)) : NULL;
	if (d.e != NULL || tracked == 0)
		thr_local_each(t->local, now, dump_keep, &d);
	pthread_mutex_unlock(&t->mu);
	if (tracked > 0 && d.e == NULL)
		return -1;
	qsort(d.e, d.n, sizeof(*d.e), by_value);
	if (buf_printf(out, "{\"blocked\":[") == 0 &&
	    dump_list(out, &d, true, max, now) == 0 &&
	    buf_printf(out, "],\"counters\":[") == 0 &&
	    dump_list(out, &d, false, max, now) == 0 &&
	    buf_printf(out, "],\"tracked\":%zu,\"backend\":\"%s\"}\n", tracked,
		!throttle_conf_shared(t->cf)   ? "none" :
		    atomic_load(&t->down) == 0 ? "up" :
						 "down") == 0)
		rc = 0;
	free(d.e);
	return rc;
}

int
throttle_unblock(struct throttle *t, char *ip)
{
	struct throttle_worker *w = t->w0;
	struct thr_source src;
	struct thr_req *q;

	if (thr_source_parse(ip, &src, t->cf) == -1)
		return -1;
	snprintf(ip, THROTTLE_IP_MAX, "%s", src.scope[0]);
	pthread_mutex_lock(&t->mu);
	thr_rules_unblock(t->local, &src);
	pthread_mutex_unlock(&t->mu);
	log_info(0, "throttle.unblock", "scope=%s", src.scope[0]);
	if (w == NULL || w->redis == NULL ||
	    (q = thr_req_new(w, RQ_FIRE, THROTTLE_IMAP, 0, &src)) == NULL)
		return 0;
	for (unsigned i = 0; i < src.nscopes; i++)
		thr_req_key(q, "f", -1, src.scope[i]);
	for (unsigned i = 0; i < src.nscopes; i++)
		thr_req_key(q, "b", -1, src.scope[i]);
	thr_req_arg(q, "u");
	thr_req_arg(q, "%u", src.nscopes);
	if (thr_req_send(q) == -1)
		thr_req_free(q);
	return 0;
}
