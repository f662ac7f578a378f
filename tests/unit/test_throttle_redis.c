/*
 * test_throttle_redis.c - the throttle's Lua script (throttle_redis.c)
 * against a real redis-server, step by step beside the C rules on the
 * local table (throttle_rules.c): the same admissions, the same refusals
 * with the same scope, the same failure counts and blocks, the same
 * forgiving success, the same unblock. Keys and arguments are built as
 * throttle.c builds them. Also: every key the script leaves has a TTL.
 *
 * Windows are minutes long, so nothing expires during a run and the two
 * clocks (the table's injected one, Redis's own) never disagree. Skips
 * (77) without redis-server (fails under CI).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "throttle/throttle_private.h"

#include "redis_fixture.h"
#include "server_helpers.h"

#define PREFIX "t:"

static struct redis_srv rs;
static redisContext *rc;

static void
conf_defaults(struct throttle_conf *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->loc.line = 1;
	cf->enabled = true;
	cf->key_prefix = PREFIX;
	cf->net4_prefix = 24;
	cf->net6_prefix = 64;
	cf->net6_wide_prefix = 48;
	cf->max_tracked = 100000;
	cf->conn_ttl = 3600000;
	for (unsigned s = 0; s < THROTTLE_SERVICES; s++)
		cf->svc[s] = (struct throttle_rules){ .conns_ip = 3,
			.conns_net = 5,
			.rate_ip = 6,
			.rate_net = 9,
			.rate_interval = 600000,
			.delay = 1000,
			.delay_max = 15000,
			.block_fails = 4,
			.block_fails_net = 7,
			.fail_window = 600000,
			.block_time = 900000,
			.bad_commands = 5 };
}

/* An EVAL of the script: argv is keys then args. */
struct call {
	int nkeys, nargs;
	char keys[2 * THR_SCOPES + 2][THR_KEY_MAX];
	char args[8][32];
};

static void
key(struct call *c, const char *kind, int svc, const char *scope)
{
	thr_key(c->keys[c->nkeys++], THR_KEY_MAX, PREFIX, kind, svc, scope);
}

static void
arg(struct call *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->args[c->nargs++], sizeof(c->args[0]), fmt, ap);
	va_end(ap);
}

static redisReply *
eval(const struct call *c)
{
	const char *argv[3 + 2 * THR_SCOPES + 2 + 8];
	size_t lens[3 + 2 * THR_SCOPES + 2 + 8];
	char nk[8];
	int n = 0;
	redisReply *r;

	snprintf(nk, sizeof(nk), "%d", c->nkeys);
	argv[n++] = "EVAL";
	argv[n++] = thr_redis_script;
	argv[n++] = nk;
	for (int i = 0; i < c->nkeys; i++)
		argv[n++] = c->keys[i];
	for (int i = 0; i < c->nargs; i++)
		argv[n++] = c->args[i];
	for (int i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	r = redisCommandArgv(rc, n, argv, lens);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("script error: %s", r->str);
	return r;
}

static long long
el(const redisReply *r, size_t i)
{
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_true(i < r->elements);
	assert_int_equal(r->element[i]->type, REDIS_REPLY_INTEGER);
	return r->element[i]->integer;
}

static struct thr_source
src_of(const struct throttle_conf *cf, const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct thr_source src;

	if (strchr(a, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, a, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, a, &s4->sin_addr), 1);
	}
	assert_int_equal(thr_source_of(cf, (struct sockaddr *)&ss, &src), 0);
	return src;
}

/* ---- one step, both ways ---------------------------------------------- */

static void
admit_both(struct thr_local *t, const struct throttle_conf *cf,
    const struct thr_source *s)
{
	const struct throttle_rules *r = &cf->svc[THROTTLE_IMAP];
	struct thr_admit_result lr = thr_rules_admit(t, cf, THROTTLE_IMAP, s,
	    1000);
	struct call c = { 0 };
	redisReply *rr;

	for (unsigned i = 0; i < s->nscopes; i++)
		key(&c, "r", THROTTLE_IMAP, s->scope[i]);
	for (unsigned i = 0; i < s->nscopes; i++)
		key(&c, "c", THROTTLE_IMAP, s->scope[i]);
	arg(&c, "a");
	arg(&c, "%u", s->nscopes);
	arg(&c, "%lld", (long long)r->conns_ip);
	arg(&c, "%lld", (long long)r->conns_net);
	arg(&c, "%lld", (long long)r->rate_ip);
	arg(&c, "%lld", (long long)r->rate_net);
	arg(&c, "%llu", (unsigned long long)r->rate_interval);
	arg(&c, "%llu", (unsigned long long)cf->conn_ttl);
	rr = eval(&c);
	assert_int_equal(el(rr, 0), lr.verdict);
	if (lr.verdict != THR_ADMIT_OK)
		assert_int_equal(el(rr, 1), lr.scope);
	freeReplyObject(rr);
}

static void
release_both(struct thr_local *t, const struct thr_source *s)
{
	struct call c = { 0 };

	thr_rules_release(t, THROTTLE_IMAP, s);
	for (unsigned i = 0; i < s->nscopes; i++)
		key(&c, "c", THROTTLE_IMAP, s->scope[i]);
	arg(&c, "r");
	arg(&c, "%u", s->nscopes);
	arg(&c, "%llu", 3600000ULL);
	freeReplyObject(eval(&c));
}

/* A stalled Redis may run an admission after the release that was meant
 * to cancel it: the two commute, the count ends where it started. */
static void
test_late_admission_after_release(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_local *scratch = thr_local_new(1000);
	struct thr_source a;
	redisReply *r;

	(void)state;
	conf_defaults(&cf);
	a = src_of(&cf, "100.64.0.5");
	release_both(t, &a); /* Redis: -1, with a TTL */
	r = redisCommand(rc, "PTTL " PREFIX "c:imap:100.64.0.5");
	assert_true(r->integer > 0);
	freeReplyObject(r);
	/* the late admission: counted from -1, so 0 */
	admit_both(scratch, &cf, &a);
	r = redisCommand(rc, "GET " PREFIX "c:imap:100.64.0.5");
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "0");
	freeReplyObject(r);
	thr_local_free(&t);
	thr_local_free(&scratch);
}

static struct call
login_call(const struct throttle_conf *cf, const struct thr_source *s,
    const char *user, bool ok)
{
	const struct throttle_rules *r = &cf->svc[THROTTLE_IMAP];
	struct call c = { 0 };
	char u[THR_USER_MAX + 1];

	thr_user_norm(user, u);
	for (unsigned i = 0; i < s->nscopes; i++)
		key(&c, "f", -1, s->scope[i]);
	for (unsigned i = 0; i < s->nscopes; i++)
		key(&c, "b", -1, s->scope[i]);
	if (u[0] != '\0') {
		thr_key_user(c.keys[c.nkeys++], THR_KEY_MAX, PREFIX, u, NULL);
		thr_key_user(c.keys[c.nkeys++], THR_KEY_MAX, PREFIX, u,
		    s->scope[0]);
	}
	arg(&c, ok ? "o" : "f");
	arg(&c, "%u", s->nscopes);
	if (!ok) {
		arg(&c, "%llu", (unsigned long long)r->fail_window);
		arg(&c, "%lld", (long long)r->block_fails);
		arg(&c, "%lld", (long long)r->block_fails_net);
		arg(&c, "%llu", (unsigned long long)r->block_time);
	}
	arg(&c, "%d", u[0] != '\0');
	return c;
}

static void
login_both(struct thr_local *t, const struct throttle_conf *cf,
    const struct thr_source *s, const char *user, bool ok)
{
	struct thr_login_counts lc = ok ?
	    thr_rules_ok(t, s, user, 1000) :
	    thr_rules_fail(t, cf, THROTTLE_IMAP, s, user, 1000);
	struct call c = login_call(cf, s, user, ok);
	redisReply *rr = eval(&c);

	assert_int_equal(el(rr, 0), lc.ipf);
	assert_int_equal(el(rr, 1), lc.netf);
	assert_int_equal(el(rr, 2), lc.uf);
	assert_int_equal(el(rr, 3), lc.uipf);
	/* blocked: the block's milliseconds left */
	assert_int_equal(el(rr, 4) > 0, lc.blocked);
	assert_true(el(rr, 4) <= (long long)cf->svc[THROTTLE_IMAP].block_time);
	freeReplyObject(rr);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_admission_parity(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_source a, b, v6a, v6b;

	(void)state;
	conf_defaults(&cf);
	a = src_of(&cf, "192.0.2.1");
	b = src_of(&cf, "192.0.2.2");
	for (int i = 0; i < 4; i++) /* the 4th: conns_ip */
		admit_both(t, &cf, &a);
	release_both(t, &a);
	admit_both(t, &cf, &a);
	admit_both(t, &cf, &b);
	admit_both(t, &cf, &b);
	admit_both(t, &cf, &b); /* the /24 holds 5: conns_net */
	for (int i = 0; i < 3; i++)
		admit_both(t, &cf, &a); /* rate_ip: 6 per interval */
	v6a = src_of(&cf, "2001:db8:5:1::1");
	v6b = src_of(&cf, "2001:db8:5:2::1");
	for (int i = 0; i < 4; i++)
		admit_both(t, &cf, &v6a);
	for (int i = 0; i < 3; i++)
		admit_both(t, &cf, &v6b); /* the /48 holds 5 */
	thr_local_free(&t);
}

static void
test_login_parity(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_source a, b, c;

	(void)state;
	conf_defaults(&cf);
	a = src_of(&cf, "198.51.100.1");
	b = src_of(&cf, "198.51.100.2");
	c = src_of(&cf, "2001:db8:9::1");
	login_both(t, &cf, &a, "Alice", false);
	login_both(t, &cf, &a, "bob", false);
	login_both(t, &cf, &b, "alice", false);
	login_both(t, &cf, &a, "alice", true); /* forgives alice's one */
	login_both(t, &cf, &a, "alice", true);
	login_both(t, &cf, &c, "", false); /* a bad-command session */
	for (int i = 0; i < 4; i++)
		login_both(t, &cf, &b, "carol", false); /* blocked at 4 */
	login_both(t, &cf, &b, "carol", true); /* blocked: no forgiving */
	login_both(t, &cf, &b, "carol", true);
	for (int i = 0; i < 3; i++) /* the /24 reaches 7: blocked */
		login_both(t, &cf, &a, "dave", false);
	login_both(t, &cf, &c, "dave", true);
	thr_local_free(&t);
}

static void
test_unblock_and_ttls(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_source a, net;
	struct call c = { 0 };
	redisReply *r;

	(void)state;
	conf_defaults(&cf);
	a = src_of(&cf, "203.0.113.1");
	for (int i = 0; i < 4; i++)
		login_both(t, &cf, &a, "erin", false);
	login_both(t, &cf, &a, "erin", true);
	thr_rules_unblock(t, &a);
	for (unsigned i = 0; i < a.nscopes; i++)
		key(&c, "f", -1, a.scope[i]);
	for (unsigned i = 0; i < a.nscopes; i++)
		key(&c, "b", -1, a.scope[i]);
	arg(&c, "u");
	arg(&c, "%u", a.nscopes);
	freeReplyObject(eval(&c));
	login_both(t, &cf, &a, "erin", true);
	assert_int_equal(thr_source_parse("203.0.113.0/24", &net, &cf), 0);
	/* every key left has a TTL */
	r = redisCommand(rc, "KEYS " PREFIX "*");
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_true(r->elements > 0);
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *ttl = redisCommand(rc, "PTTL %s",
		    r->element[i]->str);

		if (ttl->integer <= 0)
			fail_msg("%s has no TTL", r->element[i]->str);
		freeReplyObject(ttl);
	}
	freeReplyObject(r);
	thr_local_free(&t);
}

static int
group_setup(void **state)
{
	(void)state;
	snprintf(rs.dir, sizeof(rs.dir), "/tmp/test_throttle_redis_XXXXXX");
	if (mkdtemp(rs.dir) == NULL)
		return -1;
	rs.port = free_port();
	redis_srv_start(&rs);
	rc = redis_srv_conn(&rs);
	return rc ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (rc != NULL)
		redisFree(rc);
	redis_srv_stop(&rs);
	rmdir(rs.dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admission_parity),
		cmocka_unit_test(test_login_parity),
		cmocka_unit_test(test_unblock_and_ttls),
		cmocka_unit_test(test_late_admission_after_release),
	};

	if (!redis_in_path("redis-server")) {
		if (getenv("CI") != NULL) {
			fprintf(stderr,
			    "redis-server missing under CI; "
			    "scripts/deps.sh installs it\n");
			return 1;
		}
		fprintf(stderr, "redis-server not installed: skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
