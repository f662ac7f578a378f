/*
 * test_throttle.c - the throttle's rules on the local counters with an
 * injected clock (throttle/throttle_rules.c, throttle_local.c): scopes of
 * IPv4, IPv6 and mapped addresses; new connections per interval and
 * concurrent connections per address and network; the tarpit doubling to
 * its cap; the block after N failures and its expiry; a success
 * forgiving only the user's own failures; password spraying slowing the
 * sprayers and never a clean source; the table's bound and sweep; the
 * config's Redis/Sentinel checks. No timing: time is a number the tests
 * move.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "throttle/throttle_private.h"

/* The documented defaults (throttle_conf.c), by hand. */
static void
conf_defaults(struct throttle_conf *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->loc.line = 1;
	cf->enabled = true;
	cf->key_prefix = "rg:thr:";
	cf->net4_prefix = 24;
	cf->net6_prefix = 64;
	cf->net6_wide_prefix = 48;
	cf->max_tracked = 100000;
	cf->conn_ttl = 3600000;
	for (unsigned s = 0; s < THROTTLE_SERVICES; s++)
		cf->svc[s] = (struct throttle_rules){ .conns_ip = 20,
			.conns_net = 100,
			.rate_ip = 10,
			.rate_net = 50,
			.rate_interval = 1000,
			.delay = 1000,
			.delay_max = 15000,
			.block_fails = 10,
			.block_fails_net = 100,
			.fail_window = 600000,
			.block_time = 900000,
			.bad_commands = 5 };
}

static struct sockaddr_storage
v4(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	s->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, a, &s->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage
v6(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	s->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &s->sin6_addr), 1);
	return ss;
}

static struct thr_source
src_of(const struct throttle_conf *cf, struct sockaddr_storage ss)
{
	struct thr_source src;

	assert_int_equal(thr_source_of(cf, (struct sockaddr *)&ss, &src), 0);
	return src;
}

static void
test_scopes(void **state)
{
	struct throttle_conf cf;
	struct thr_source s;
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	(void)state;
	conf_defaults(&cf);
	s = src_of(&cf, v4("192.0.2.77"));
	assert_int_equal(s.nscopes, 2);
	assert_string_equal(s.scope[0], "192.0.2.77");
	assert_string_equal(s.scope[1], "192.0.2.0/24");
	s = src_of(&cf, v6("2001:db8:1:2:3:4:5:6"));
	assert_int_equal(s.nscopes, 3);
	assert_string_equal(s.scope[0], "2001:db8:1:2:3:4:5:6");
	assert_string_equal(s.scope[1], "2001:db8:1:2::/64");
	assert_string_equal(s.scope[2], "2001:db8:1::/48");
	s = src_of(&cf, v6("::ffff:198.51.100.9"));
	assert_int_equal(s.nscopes, 2);
	assert_string_equal(s.scope[1], "198.51.100.0/24");
	s = src_of(&cf, v6("::1"));
	assert_string_equal(s.scope[1], "::/64");
	assert_int_equal(thr_source_of(&cf, (struct sockaddr *)&un, &s), -1);
	assert_int_equal(thr_source_of(&cf, NULL, &s), -1);
	/* a prefix that is not a byte boundary */
	cf.net4_prefix = 20;
	s = src_of(&cf, v4("10.1.255.3"));
	assert_string_equal(s.scope[1], "10.1.240.0/20");
	/* the admin's text */
	conf_defaults(&cf);
	assert_int_equal(thr_source_parse("192.0.2.5", &s, &cf), 0);
	assert_int_equal(s.nscopes, 2);
	assert_int_equal(thr_source_parse("192.0.2.0/24", &s, &cf), 0);
	assert_int_equal(s.nscopes, 1);
	assert_string_equal(s.scope[0], "192.0.2.0/24");
	assert_int_equal(thr_source_parse("nonsense", &s, &cf), -1);
	assert_int_equal(thr_source_parse("", &s, &cf), -1);
	assert_int_equal(thr_source_parse("/24", &s, &cf), -1);
}

static void
test_rate_per_interval(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_source s;
	struct thr_admit_result r;
	uint64_t now = 5000;

	(void)state;
	conf_defaults(&cf);
	s = src_of(&cf, v4("192.0.2.1"));
	for (int i = 0; i < 10; i++) {
		r = thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now);
		assert_int_equal(r.verdict, THR_ADMIT_OK);
		thr_rules_release(t, THROTTLE_IMAP, &s);
	}
	r = thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now + 999);
	assert_int_equal(r.verdict, THR_ADMIT_RATE);
	assert_int_equal(r.scope, 0);
	/* another service counts apart */
	r = thr_rules_admit(t, &cf, THROTTLE_POP3, &s, now + 999);
	assert_int_equal(r.verdict, THR_ADMIT_OK);
	thr_rules_release(t, THROTTLE_POP3, &s);
	/* the next interval */
	r = thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now + 1001);
	assert_int_equal(r.verdict, THR_ADMIT_OK);
	thr_rules_release(t, THROTTLE_IMAP, &s);
	/* the network: 50 per interval from many addresses */
	now += 10000;
	for (int i = 0; i < 50; i++) {
		char a[32];

		snprintf(a, sizeof(a), "198.51.100.%d", i + 1);
		s = src_of(&cf, v4(a));
		r = thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now);
		assert_int_equal(r.verdict, THR_ADMIT_OK);
		thr_rules_release(t, THROTTLE_IMAP, &s);
	}
	s = src_of(&cf, v4("198.51.100.200"));
	r = thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now);
	assert_int_equal(r.verdict, THR_ADMIT_RATE);
	assert_int_equal(r.scope, 1);
	/* 0 is no limit */
	cf.svc[THROTTLE_IMAP].rate_ip = cf.svc[THROTTLE_IMAP].rate_net = 0;
	r = thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now);
	assert_int_equal(r.verdict, THR_ADMIT_OK);
	thr_local_free(&t);
}

static void
test_concurrency(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_source s, s2;
	uint64_t now = 1;

	(void)state;
	conf_defaults(&cf);
	cf.svc[THROTTLE_IMAP].rate_ip = cf.svc[THROTTLE_IMAP].rate_net = 0;
	cf.svc[THROTTLE_IMAP].conns_ip = 3;
	cf.svc[THROTTLE_IMAP].conns_net = 5;
	s = src_of(&cf, v6("2001:db8::1"));
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now).verdict,
		    THR_ADMIT_OK);
	assert_int_equal(
	    thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now).verdict,
	    THR_ADMIT_CONNS);
	/* the refusal held nothing: one release makes room for one */
	thr_rules_release(t, THROTTLE_IMAP, &s);
	assert_int_equal(
	    thr_rules_admit(t, &cf, THROTTLE_IMAP, &s, now).verdict,
	    THR_ADMIT_OK);
	/* the /64 holds 3; two more from a neighbour, then the net is full */
	s2 = src_of(&cf, v6("2001:db8::2"));
	assert_int_equal(
	    thr_rules_admit(t, &cf, THROTTLE_IMAP, &s2, now).verdict,
	    THR_ADMIT_OK);
	assert_int_equal(
	    thr_rules_admit(t, &cf, THROTTLE_IMAP, &s2, now).verdict,
	    THR_ADMIT_OK);
	struct thr_admit_result r = thr_rules_admit(t, &cf, THROTTLE_IMAP, &s2,
	    now);
	assert_int_equal(r.verdict, THR_ADMIT_CONNS);
	assert_int_equal(r.scope, 1);
	/* a different /64 in the same /48 counts on the /48 too */
	s2 = src_of(&cf, v6("2001:db8:0:1::9"));
	r = thr_rules_admit(t, &cf, THROTTLE_IMAP, &s2, now);
	assert_int_equal(r.verdict, THR_ADMIT_CONNS);
	assert_int_equal(r.scope, 2);
	/* every release brings the counters back to nothing */
	for (int i = 0; i < 3; i++)
		thr_rules_release(t, THROTTLE_IMAP, &s);
	s2 = src_of(&cf, v6("2001:db8::2"));
	thr_rules_release(t, THROTTLE_IMAP, &s2);
	thr_rules_release(t, THROTTLE_IMAP, &s2);
	assert_int_equal(thr_local_get(t, "c:imap:2001:db8::/64", now), 0);
	assert_int_equal(thr_local_get(t, "c:imap:2001:db8::/48", now), 0);
	thr_local_free(&t);
}

static void
test_tarpit_doubles_to_cap_then_blocks(void **state)
{
	static const uint64_t want[] = { 1000, 2000, 4000, 8000, 15000, 15000,
		15000, 15000, 15000 };
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_source s;
	struct thr_login_counts c;
	const struct throttle_rules *r;
	uint64_t now = 100;

	(void)state;
	conf_defaults(&cf);
	r = &cf.svc[THROTTLE_IMAP];
	s = src_of(&cf, v4("203.0.113.5"));
	for (int i = 0; i < 9; i++) {
		c = thr_rules_fail(t, &cf, THROTTLE_IMAP, &s, "victim", now);
		assert_int_equal(c.ipf, i + 1);
		assert_false(c.blocked);
		assert_int_equal(thr_rules_delay(r, &c), want[i]);
		now += 1000;
	}
	c = thr_rules_fail(t, &cf, THROTTLE_IMAP, &s, "victim", now);
	assert_true(c.blocked);
	/* blocked: the right password reads as a wrong one */
	c = thr_rules_ok(t, &s, "victim", now);
	assert_true(c.blocked);
	assert_int_equal(thr_rules_delay(r, &c), 15000);
	/* another address of the network is not blocked */
	struct thr_source other = src_of(&cf, v4("203.0.113.6"));
	c = thr_rules_ok(t, &other, "someone", now);
	assert_false(c.blocked);
	assert_int_equal(thr_rules_delay(r, &c), 0);
	/* the block lasts block_time (past the failure window here) */
	c = thr_rules_ok(t, &s, "victim", now + r->block_time - 1);
	assert_true(c.blocked);
	c = thr_rules_ok(t, &s, "victim", now + r->block_time + 1);
	assert_false(c.blocked);
	assert_int_equal(c.ipf, 0); /* the 10-minute window ended too */
	thr_local_free(&t);
}

static void
test_window_restarts(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_source s;
	struct thr_login_counts c;

	(void)state;
	conf_defaults(&cf);
	s = src_of(&cf, v4("203.0.113.9"));
	for (int i = 0; i < 9; i++)
		thr_rules_fail(t, &cf, THROTTLE_IMAP, &s, "x", 1000);
	/* the window counts from the first failure */
	c = thr_rules_fail(t, &cf, THROTTLE_IMAP, &s, "x", 1000 + 600001);
	assert_int_equal(c.ipf, 1);
	assert_false(c.blocked);
	thr_local_free(&t);
}

static void
test_success_forgives_own_failures_only(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(1000);
	struct thr_source s;
	struct thr_login_counts c;
	const struct throttle_rules *r;

	(void)state;
	conf_defaults(&cf);
	r = &cf.svc[THROTTLE_POP3];
	s = src_of(&cf, v4("192.0.2.50"));
	/* two typos by alice, three guesses against bob */
	thr_rules_fail(t, &cf, THROTTLE_POP3, &s, "alice", 10);
	thr_rules_fail(t, &cf, THROTTLE_POP3, &s, "Alice", 10);
	for (int i = 0; i < 3; i++)
		thr_rules_fail(t, &cf, THROTTLE_POP3, &s, "bob", 10);
	c = thr_rules_ok(t, &s, "ALICE", 20);
	assert_int_equal(c.ipf, 5);
	assert_int_equal(c.uipf, 2);
	assert_false(c.blocked);
	/* the answer to the success waits like any from this source */
	assert_int_equal(thr_rules_delay(r, &c), 15000);
	/* alice's two are gone, bob's three stay */
	c = thr_rules_ok(t, &s, "alice", 30);
	assert_int_equal(c.ipf, 3);
	assert_int_equal(c.uipf, 0);
	assert_int_equal(c.uf, 0);
	assert_int_equal(thr_local_get(t, "fu:bob", 30), 3);
	assert_int_equal(thr_local_get(t, "f:192.0.2.0/24", 30), 3);
	thr_local_free(&t);
}

/* Failures against one name from many addresses slow those addresses'
 * answers; the user from a clean address is neither slowed nor blocked. */
static void
test_spraying_spares_clean_sources(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(10000);
	struct thr_source s;
	struct thr_login_counts c;
	const struct throttle_rules *r;
	char a[32];

	(void)state;
	conf_defaults(&cf);
	r = &cf.svc[THROTTLE_IMAP];
	for (int i = 0; i < 200; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.1", i / 100, i % 100);
		s = src_of(&cf, v4(a));
		c = thr_rules_fail(t, &cf, THROTTLE_IMAP, &s, "ceo", 50);
		assert_false(c.blocked);
		assert_int_equal(c.ipf, 1);
		assert_int_equal(c.uf, i + 1);
	}
	/* a sprayer's next answer: its one failure, scaled by the name's */
	assert_int_equal(thr_rules_delay(r, &c), 15000);
	/* the real user from home: nothing */
	s = src_of(&cf, v4("192.0.2.200"));
	c = thr_rules_ok(t, &s, "ceo", 60);
	assert_false(c.blocked);
	assert_int_equal(c.uf, 200);
	assert_int_equal(thr_rules_delay(r, &c), 0);
	/* and with a typo first: slowed by the name's count, then in */
	c = thr_rules_fail(t, &cf, THROTTLE_IMAP, &s, "ceo", 70);
	assert_int_equal(thr_rules_delay(r, &c), 15000);
	c = thr_rules_ok(t, &s, "ceo", 80);
	assert_false(c.blocked);
	c = thr_rules_ok(t, &s, "ceo", 90);
	assert_int_equal(c.ipf, 0);
	assert_int_equal(thr_rules_delay(r, &c), 0);
	thr_local_free(&t);
}

static void
test_bad_commands_feed_the_address(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(100);
	struct thr_source s;
	struct thr_login_counts c;

	(void)state;
	conf_defaults(&cf);
	s = src_of(&cf, v4("192.0.2.99"));
	/* a session closed for bad commands: one failure, no user */
	c = thr_rules_fail(t, &cf, THROTTLE_SUBMISSION, &s, "", 5);
	assert_int_equal(c.ipf, 1);
	assert_int_equal(c.uf, 0);
	assert_int_equal(thr_local_count(t), 2); /* address and network */
	thr_local_free(&t);
}

static void
test_network_block(void **state)
{
	struct throttle_conf cf;
	struct thr_local *t = thr_local_new(10000);
	struct thr_source s;
	struct thr_login_counts c;
	char a[32];

	(void)state;
	conf_defaults(&cf);
	cf.svc[THROTTLE_IMAP].block_fails_net = 20;
	for (int i = 0; i < 20; i++) {
		snprintf(a, sizeof(a), "198.51.100.%d", i + 1);
		s = src_of(&cf, v4(a));
		c = thr_rules_fail(t, &cf, THROTTLE_IMAP, &s, "u", 5);
	}
	assert_true(c.blocked);
	assert_int_equal(c.netf, 20);
	s = src_of(&cf, v4("198.51.100.250"));
	c = thr_rules_ok(t, &s, "u", 6);
	assert_true(c.blocked);
	thr_rules_unblock(t, &s);
	c = thr_rules_ok(t, &s, "u", 7);
	assert_false(c.blocked);
	thr_local_free(&t);
}

static void
test_table_bound_and_sweep(void **state)
{
	struct thr_local *t = thr_local_new(100);
	char key[32];

	(void)state;
	for (int i = 0; i < 150; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		/* one over the bound still answers as if counted once */
		assert_int_equal(thr_local_add(t, key, 1, 1000, false, 0), 1);
	}
	assert_int_equal(thr_local_count(t), 100);
	assert_int_equal(thr_local_get(t, "k149", 0), 0);
	assert_int_equal(thr_local_get(t, "k5", 1000), 1);
	assert_int_equal(thr_local_get(t, "k5", 1001), 0);
	/* set_nx keeps a live value, replaces a dead one */
	thr_local_set_nx(t, "k5", 7, 1000, 500);
	assert_int_equal(thr_local_get(t, "k5", 500), 1);
	thr_local_set_nx(t, "k5", 7, 1000, 1500);
	assert_int_equal(thr_local_get(t, "k5", 1500), 7);
	for (int i = 0; i < 200; i++)
		thr_local_sweep(t, 1400, 64);
	assert_int_equal(thr_local_count(t), 1);
	thr_local_del(t, "k5");
	assert_int_equal(thr_local_count(t), 0);
	thr_local_free(&t);
	thr_local_free(&t); /* NULL is fine */
}

static void
test_user_norm_and_script(void **state)
{
	char u[THR_USER_MAX + 1], big[600], sha[41];

	(void)state;
	thr_user_norm("Al|Ice@EXAMPLE.org", u);
	assert_string_equal(u, "al_ice@example.org");
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	thr_user_norm(big, u);
	assert_int_equal(strlen(u), THR_USER_MAX);
	thr_redis_sha(sha);
	assert_int_equal(strlen(sha), 40);
	assert_non_null(strstr(thr_redis_script, "mode == 'a'"));
}

/* throttle.sentinels/master_name: the checks across fields. */
static void
test_conf_sentinels(void **state)
{
	struct throttle_conf cf;
	struct cfg_error err;
	char *two[] = { "127.0.0.1:26379", "[::1]:26379" };
	char *named[] = { "localhost:26379" };
	char redis[] = "127.0.0.1:6379", name[] = "mymaster", empty[] = "";

	(void)state;
	conf_defaults(&cf);
	assert_false(throttle_conf_shared(&cf));
	cf.sentinels = two;
	cf.nsentinels = 2;
	cf.master_name = name;
	assert_int_equal(throttle_conf_check(&cf, &err), 0);
	assert_true(throttle_conf_shared(&cf));
	cf.redis = redis;
	assert_int_equal(throttle_conf_check(&cf, &err), -1);
	assert_non_null(strstr(err.msg, "exclude each other"));
	cf.redis = NULL;
	cf.master_name = NULL;
	assert_int_equal(throttle_conf_check(&cf, &err), -1);
	assert_non_null(strstr(err.msg, "needs throttle.master_name"));
	cf.master_name = empty;
	assert_int_equal(throttle_conf_check(&cf, &err), -1);
	cf.master_name = name;
	cf.sentinels = named;
	cf.nsentinels = 1;
	assert_int_equal(throttle_conf_check(&cf, &err), -1);
	assert_non_null(strstr(err.msg, "numeric host"));
	cf.sentinels = NULL;
	cf.nsentinels = 0;
	assert_int_equal(throttle_conf_check(&cf, &err), -1);
	assert_non_null(strstr(err.msg, "needs throttle.sentinels"));
	cf.master_name = NULL;
	cf.redis = redis;
	assert_int_equal(throttle_conf_check(&cf, &err), 0);
	assert_true(throttle_conf_shared(&cf));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_rate_per_interval),
		cmocka_unit_test(test_concurrency),
		cmocka_unit_test(test_tarpit_doubles_to_cap_then_blocks),
		cmocka_unit_test(test_window_restarts),
		cmocka_unit_test(test_success_forgives_own_failures_only),
		cmocka_unit_test(test_spraying_spares_clean_sources),
		cmocka_unit_test(test_bad_commands_feed_the_address),
		cmocka_unit_test(test_network_block),
		cmocka_unit_test(test_table_bound_and_sweep),
		cmocka_unit_test(test_user_norm_and_script),
		cmocka_unit_test(test_conf_sentinels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
