/*
 * throttle_rules.c - the throttle's rules over the local counters: a
 * client's scopes (address and networks), admission (new connections per
 * interval, concurrent connections), failed logins (tarpit delay, block),
 * a success forgiving the user's own failures. throttle_redis.c's script
 * is the same rules over Redis's keys: change both together.
 *
 * Pure: the clock is an argument and nothing here locks or does I/O, so
 * the unit tests drive every rule through time (tests/unit/
 * test_throttle.c). Must never: delay or block a source that has not
 * failed (password spraying slows the sprayers, not the user), or count
 * anything for an address it could not scope.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/net.h"
#include "throttle/throttle_private.h"

static void net_text(int family, const uint8_t *addr, unsigned prefix,
    char *out, size_t cap);
static int64_t fail_at(struct thr_local *t, const char *key, uint64_t window,
    uint64_t now);
static void take_off(struct thr_local *t, const char *key, int64_t n);

/* ---- sources ------------------------------------------------------------ */

/* addr with the bits below prefix cleared, as "a.b.c.0/24". */
static void
net_text(int family, const uint8_t *addr, unsigned prefix, char *out,
    size_t cap)
{
	uint8_t a[16] = { 0 };
	unsigned bytes = family == AF_INET ? 4 : 16;
	char t[INET6_ADDRSTRLEN];

	for (unsigned i = 0; i < bytes; i++) {
		unsigned bit = i * 8;

		if (bit + 8 <= prefix)
			a[i] = addr[i];
		else if (bit < prefix)
			a[i] = addr[i] &
			    (uint8_t)(0xff << (8 - (prefix - bit)));
	}
	inet_ntop(family, a, t, sizeof(t));
	snprintf(out, cap, "%s/%u", t, prefix);
}

static int
source_bytes(const struct throttle_conf *cf, int family, const uint8_t *addr,
    struct thr_source *src)
{
	memset(src, 0, sizeof(*src));
	if (!inet_ntop(family, addr, src->scope[0], sizeof(src->scope[0])))
		return -1;
	if (family == AF_INET) {
		src->nscopes = 2;
		net_text(family, addr, (unsigned)cf->net4_prefix, src->scope[1],
		    sizeof(src->scope[1]));
	} else {
		src->nscopes = 3;
		net_text(family, addr, (unsigned)cf->net6_prefix, src->scope[1],
		    sizeof(src->scope[1]));
		net_text(family, addr, (unsigned)cf->net6_wide_prefix,
		    src->scope[2], sizeof(src->scope[2]));
	}
	return 0;
}

int
thr_source_of(const struct throttle_conf *cf, const struct sockaddr *sa,
    struct thr_source *src)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET)
		return source_bytes(cf, AF_INET,
		    (const uint8_t *)&((const struct sockaddr_in *)sa)
			->sin_addr,
		    src);
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a))
			return source_bytes(cf, AF_INET, a->s6_addr + 12, src);
		return source_bytes(cf, AF_INET6, a->s6_addr, src);
	}
	return -1;
}

int
thr_source_parse(const char *text, struct thr_source *src,
    const struct throttle_conf *cf)
{
	uint8_t a[16];
	struct net net;

	if (strchr(text, '/') != NULL) {
		/* a network is the one scope to clear: no host bits below
		 * its prefix, in its canonical text */
		if (net_parse(text, strlen(text), &net) == -1)
			return -1;
		memset(src, 0, sizeof(*src));
		src->nscopes = 1;
		net_text(net.family, net.addr, net.prefix, src->scope[0],
		    sizeof(src->scope[0]));
		return 0;
	}
	if (inet_pton(AF_INET, text, a) == 1)
		return source_bytes(cf, AF_INET, a, src);
	if (inet_pton(AF_INET6, text, a) == 1)
		return source_bytes(cf, AF_INET6, a, src);
	return -1;
}

void
thr_user_norm(const char *user, char out[THR_USER_MAX + 1])
{
	size_t i = 0;

	for (; user[i] != '\0' && i < THR_USER_MAX; i++) {
		char c = user[i];

		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') :
		    c == '|'		      ? '_' :
						c;
	}
	out[i] = '\0';
}

/* ---- keys --------------------------------------------------------------- */

void
thr_key(char *out, size_t cap, const char *prefix, const char *kind, int svc,
    const char *scope)
{
	if (svc >= 0)
		snprintf(out, cap, "%s%s:%s:%s", prefix, kind,
		    throttle_service_names[svc], scope);
	else
		snprintf(out, cap, "%s%s:%s", prefix, kind, scope);
}

void
thr_key_user(char *out, size_t cap, const char *prefix, const char *user,
    const char *ip)
{
	if (ip != NULL)
		snprintf(out, cap, "%sfui:%s|%s", prefix, user, ip);
	else
		snprintf(out, cap, "%sfu:%s", prefix, user);
}

/* ---- admission ---------------------------------------------------------- */

/*
 * The rate counts every new connection, refused ones included, so a
 * flood stays refused while it lasts; the concurrency counters only hold
 * admitted connections (a refusal takes its count back).
 */
struct thr_admit_result
thr_rules_admit(struct thr_local *t, const struct throttle_conf *cf,
    enum throttle_service svc, const struct thr_source *src, uint64_t now)
{
	const struct throttle_rules *r = &cf->svc[svc];
	struct thr_admit_result res = { THR_ADMIT_OK, 0 };
	char key[THR_KEY_MAX];

	for (unsigned i = 0; i < src->nscopes; i++) {
		int64_t lim = i == 0 ? r->rate_ip : r->rate_net;
		int64_t v;

		thr_key(key, sizeof(key), "", "r", (int)svc, src->scope[i]);
		v = thr_local_add(t, key, 1, r->rate_interval, false, now);
		if (lim > 0 && v > lim && res.verdict == THR_ADMIT_OK)
			res = (struct thr_admit_result){ THR_ADMIT_RATE, i };
	}
	if (res.verdict != THR_ADMIT_OK)
		return res;
	for (unsigned i = 0; i < src->nscopes; i++) {
		int64_t lim = i == 0 ? r->conns_ip : r->conns_net;

		thr_key(key, sizeof(key), "", "c", (int)svc, src->scope[i]);
		if (thr_local_add(t, key, 1, cf->conn_ttl, true, now) > lim &&
		    lim > 0 && res.verdict == THR_ADMIT_OK)
			res = (struct thr_admit_result){ THR_ADMIT_CONNS, i };
	}
	if (res.verdict != THR_ADMIT_OK)
		thr_rules_release(t, svc, src);
	return res;
}

void
thr_rules_release(struct thr_local *t, enum throttle_service svc,
    const struct thr_source *src)
{
	char key[THR_KEY_MAX];

	for (unsigned i = 0; i < src->nscopes; i++) {
		thr_key(key, sizeof(key), "", "c", (int)svc, src->scope[i]);
		take_off(t, key, 1);
	}
}

/* n off key's count; at 0 the key goes. */
static void
take_off(struct thr_local *t, const char *key, int64_t n)
{
	/* any time: an expired key reads 0 and is dropped */
	if (thr_local_add(t, key, -n, 0, false, 0) <= 0)
		thr_local_del(t, key);
}

/* ---- logins ------------------------------------------------------------- */

/* One more failure on key (the window starts with the first). */
static int64_t
fail_at(struct thr_local *t, const char *key, uint64_t window, uint64_t now)
{
	return thr_local_add(t, key, 1, window, false, now);
}

struct thr_login_counts
thr_rules_fail(struct thr_local *t, const struct throttle_conf *cf,
    enum throttle_service svc, const struct thr_source *src, const char *user,
    uint64_t now)
{
	const struct throttle_rules *r = &cf->svc[svc];
	struct thr_login_counts c = { 0 };
	char key[THR_KEY_MAX], u[THR_USER_MAX + 1];

	for (unsigned i = 0; i < src->nscopes; i++) {
		int64_t v, lim = i == 0 ? r->block_fails : r->block_fails_net;

		thr_key(key, sizeof(key), "", "f", -1, src->scope[i]);
		v = fail_at(t, key, r->fail_window, now);
		if (i == 0)
			c.ipf = v;
		else if (v > c.netf)
			c.netf = v;
		if (lim > 0 && v >= lim) {
			thr_key(key, sizeof(key), "", "b", -1, src->scope[i]);
			thr_local_set_nx(t, key, 1, r->block_time, now);
		}
	}
	thr_user_norm(user, u);
	if (u[0] != '\0') {
		thr_key_user(key, sizeof(key), "", u, NULL);
		c.uf = fail_at(t, key, r->fail_window, now);
		thr_key_user(key, sizeof(key), "", u, src->scope[0]);
		c.uipf = fail_at(t, key, r->fail_window, now);
	}
	for (unsigned i = 0; i < src->nscopes; i++) {
		thr_key(key, sizeof(key), "", "b", -1, src->scope[i]);
		c.blocked |= thr_local_get(t, key, now) > 0;
	}
	return c;
}

/*
 * A right password: the user's own failures from this address were
 * typos, so they come off the address's, the networks' and the user
 * name's counts. Failures against other names stay: logging in to one's
 * own account does not clear what was tried against others.
 */
struct thr_login_counts
thr_rules_ok(struct thr_local *t, const struct thr_source *src,
    const char *user, uint64_t now)
{
	struct thr_login_counts c = { 0 };
	char key[THR_KEY_MAX], u[THR_USER_MAX + 1];

	for (unsigned i = 0; i < src->nscopes; i++) {
		int64_t v;

		thr_key(key, sizeof(key), "", "b", -1, src->scope[i]);
		c.blocked |= thr_local_get(t, key, now) > 0;
		thr_key(key, sizeof(key), "", "f", -1, src->scope[i]);
		v = thr_local_get(t, key, now);
		if (i == 0)
			c.ipf = v;
		else if (v > c.netf)
			c.netf = v;
	}
	thr_user_norm(user, u);
	if (u[0] == '\0')
		return c;
	thr_key_user(key, sizeof(key), "", u, NULL);
	c.uf = thr_local_get(t, key, now);
	thr_key_user(key, sizeof(key), "", u, src->scope[0]);
	c.uipf = thr_local_get(t, key, now);
	if (c.blocked || c.uipf == 0)
		return c;
	thr_local_del(t, key);
	thr_key_user(key, sizeof(key), "", u, NULL);
	take_off(t, key, c.uipf);
	for (unsigned i = 0; i < src->nscopes; i++) {
		thr_key(key, sizeof(key), "", "f", -1, src->scope[i]);
		take_off(t, key, c.uipf);
	}
	return c;
}

uint64_t
thr_rules_delay(const struct throttle_rules *r,
    const struct thr_login_counts *c)
{
	int64_t n = c->ipf;
	uint64_t d = r->delay;

	if (n <= 0 || d == 0)
		return 0;
	if (c->uf > n)
		n = c->uf;
	for (int64_t i = 1; i < n && d < r->delay_max; i++)
		d *= 2;
	return d < r->delay_max ? d : r->delay_max;
}

void
thr_rules_unblock(struct thr_local *t, const struct thr_source *src)
{
	char key[THR_KEY_MAX];

	for (unsigned i = 0; i < src->nscopes; i++) {
		thr_key(key, sizeof(key), "", "b", -1, src->scope[i]);
		thr_local_del(t, key);
		thr_key(key, sizeof(key), "", "rb", -1, src->scope[i]);
		thr_local_del(t, key);
		thr_key(key, sizeof(key), "", "f", -1, src->scope[i]);
		thr_local_del(t, key);
	}
}
