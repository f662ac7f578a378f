/*
 * test_route_redis.c - the Redis route entry against a real redis-server:
 * core/redis_loop (hiredis async on the loop: replies, cancel, timeout of
 * a frozen server, fast failure while down, reconnect) and proxy/route's
 * use of it (entry wins over hashing, per-worker cache with its TTL, no
 * entry cached too, an unknown back-end name or a Redis that is down or
 * frozen falls back to hashing and is counted, host= still wins); and
 * redis_loop with Redis Sentinel (a real redis-server --sentinel): the
 * master asked for while commands wait, a dead sentinel skipped, a master
 * demoted under a connection (-READONLY: dropped, asked again), a frozen
 * sentinel timing commands out without holding the loop, an unknown
 * master name failing them.
 *
 * Each test is a script of steps run on one loop: a step starts an
 * action; the next runs once the answer is in (or a wait has passed).
 * Skips (77) without redis-server or io_uring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/loop.h"
#include "core/metrics.h"
#include "core/redis_loop.h"
#include "core/timer.h"
#include "proxy/route.h"
#include "proxy/route_private.h"

#include "redis_fixture.h"
#include "server_helpers.h"

static struct redis_srv rs;

static void
cmd(const char *fmt, ...)
{
	redisContext *c = redis_srv_conn(&rs);
	redisReply *reply;
	va_list ap;

	assert_non_null(c);
	va_start(ap, fmt);
	reply = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(reply);
	assert_int_not_equal(reply->type, REDIS_REPLY_ERROR);
	freeReplyObject(reply);
	redisFree(c);
}

static int
group_setup(void **state)
{
	(void)state;
	snprintf(rs.dir, sizeof(rs.dir), "/tmp/test_route_redis_XXXXXX");
	if (mkdtemp(rs.dir) == NULL)
		return -1;
	rs.port = free_port();
	redis_srv_start(&rs);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	redis_srv_stop(&rs);
	rmdir(rs.dir);
	return 0;
}

/* ---- the script driver ---- */

struct rt;
typedef void step_fn(struct rt *t);

struct rt {
	struct loop *l;
	struct metrics *m;
	struct router *r;
	struct route_worker *w;
	struct redis_loop *rl;
	step_fn *const *steps;
	unsigned step;
	bool waiting;	     /* an answer is due */
	uint64_t wait_until; /* or a pause */
	struct timer tick, guard;
	bool timed_out;
	/* last route answer */
	int calls;
	struct route_result res;
	struct route_req *req;
	char be_name[64];
	/* last redis_loop answer */
	int type;
	char str[64];
	char error[64];
	struct redis_loop_req *rreq;
	int cancelled_calls;
};

static struct rt T;

static void
rt_tick(struct timer *tm, void *arg)
{
	struct rt *t = arg;

	(void)tm;
	if (!t->waiting && loop_now(t->l) >= t->wait_until) {
		if (t->steps[t->step] == NULL) {
			timer_stop(&t->guard);
			loop_stop(t->l, 0);
			return;
		}
		t->steps[t->step++](t);
	}
	timer_set(&t->tick, 5);
}

static void
rt_guard(struct timer *tm, void *arg)
{
	struct rt *t = arg;

	(void)tm;
	t->timed_out = true;
	timer_stop(&t->tick);
	loop_stop(t->l, 0);
}

static void
rt_pause(struct rt *t, uint64_t ms)
{
	t->wait_until = loop_now(t->l) + ms;
}

static void
rt_run(const struct route_conf *rc, step_fn *const *steps)
{
	struct loop_conf lc = { .buf_count = 64, .buf_size = 4096 };
	const char *err = NULL;

	memset(&T, 0, sizeof(T));
	T.m = metrics_new("ringgate", 1);
	lc.metrics = T.m;
	T.l = loop_new(&lc, &err);
	if (T.l == NULL) {
		print_message("skip: %s\n", err);
		exit(77);
	}
	if (rc != NULL) {
		T.r = router_new(rc, T.m, &err);
		assert_non_null(T.r);
		T.w = route_worker_new(T.r, T.l);
		assert_non_null(T.w);
	}
	T.steps = steps;
	timer_init(&T.tick, T.l, rt_tick, &T);
	timer_init(&T.guard, T.l, rt_guard, &T);
	timer_set(&T.tick, 1);
	timer_set(&T.guard, 30000); /* a hang guard, not a measurement */
	assert_int_equal(loop_run(T.l), 0);
	assert_false(T.timed_out);
	route_worker_free(&T.w);
	redis_loop_free(&T.rl);
	router_free(&T.r);
	loop_free(T.l);
}

static void
rt_done(void)
{
	metrics_free(T.m);
}

static double
counter(const char *name, const char *labels)
{
	return metrics_value(T.m, metrics_counter(T.m, name, "", labels));
}

/* ---- redis_loop directly ---- */

static void
on_redis(void *ctx, const struct redisReply *reply, const char *error)
{
	struct rt *t = ctx;

	t->waiting = false;
	t->rreq = NULL;
	t->type = reply ? reply->type : -1;
	snprintf(t->str, sizeof(t->str), "%s",
	    reply &&
		    (reply->type == REDIS_REPLY_STRING ||
			reply->type == REDIS_REPLY_ERROR) ?
		reply->str :
		"");
	snprintf(t->error, sizeof(t->error), "%s", error ? error : "");
}

static void
on_cancelled(void *ctx, const struct redisReply *reply, const char *error)
{
	(void)reply;
	(void)error;
	((struct rt *)ctx)->cancelled_calls++;
}

static void
send_cmd(struct rt *t, int argc, const char **argv, const size_t *lens)
{
	const char *err = NULL;

	t->rreq = redis_loop_cmd(t->rl, argc, argv, lens, on_redis, t, &err);
	t->waiting = t->rreq != NULL;
	if (t->rreq == NULL) {
		t->type = -2; /* refused at once */
		snprintf(t->error, sizeof(t->error), "%s", err);
	}
}

static void
rl_set(struct rt *t)
{
	static const char *const argv[] = { "SET", "k", "v\0x" };
	static const size_t lens[] = { 3, 1, 3 };
	struct redis_loop_conf c = { .timeout_ms = 300, .retry_ms = 500 };
	char target[32];
	const char *err = NULL;

	snprintf(target, sizeof(target), "127.0.0.1:%u", rs.port);
	c.target = target;
	t->rl = redis_loop_new(t->l, &c, &err);
	assert_non_null(t->rl);
	send_cmd(t, 3, (const char **)argv, lens);
	assert_non_null(t->rreq);
}

static void
rl_get(struct rt *t)
{
	static const char *const argv[] = { "GET", "k" };
	static const size_t lens[] = { 3, 1 };
	struct redis_loop_req *cancelled;
	const char *err = NULL;

	assert_int_equal(t->type, REDIS_REPLY_STATUS);
	/* one cancelled command before ours: its answer goes nowhere */
	cancelled = redis_loop_cmd(t->rl, 2, (const char **)argv, lens,
	    on_cancelled, t, &err);
	assert_non_null(cancelled);
	redis_loop_cancel(&cancelled);
	assert_null(cancelled);
	send_cmd(t, 2, (const char **)argv, lens);
	assert_int_equal(redis_loop_pending(t->rl), 2);
}

static void
rl_freeze(struct rt *t)
{
	static const char *const argv[] = { "GET", "k" };
	static const size_t lens[] = { 3, 1 };

	assert_int_equal(t->type, REDIS_REPLY_STRING);
	assert_memory_equal(t->str, "v", 2); /* binary value "v\0x" */
	assert_int_equal(t->cancelled_calls, 0);
	assert_int_equal(redis_loop_pending(t->rl), 0);
	kill(rs.pid, SIGSTOP);
	wait_stopped(rs.pid);
	send_cmd(t, 2, (const char **)argv, lens);
	assert_non_null(t->rreq);
}

static void
rl_after_timeout(struct rt *t)
{
	static const char *const argv[] = { "GET", "k" };
	static const size_t lens[] = { 3, 1 };

	assert_int_equal(t->type, -1);
	assert_string_equal(t->error, "timeout");
	/* within retry_ms of the failure: refused at once, no waiting */
	send_cmd(t, 2, (const char **)argv, lens);
	assert_int_equal(t->type, -2);
	kill(rs.pid, SIGCONT);
	rt_pause(t, 600); /* past retry_ms */
}

static void
rl_reconnect(struct rt *t)
{
	static const char *const argv[] = { "GET", "k" };
	static const size_t lens[] = { 3, 1 };

	send_cmd(t, 2, (const char **)argv, lens);
	assert_non_null(t->rreq);
}

static void
rl_check_back(struct rt *t)
{
	assert_int_equal(t->type, REDIS_REPLY_STRING);
	assert_string_equal(t->str, "v");
}

static void
test_redis_loop(void **state)
{
	static step_fn *const steps[] = { rl_set, rl_get, rl_freeze,
		rl_after_timeout, rl_reconnect, rl_check_back, NULL };

	(void)state;
	rt_run(NULL, steps);
	rt_done();
}

/* ---- redis_loop through a Sentinel ---- */

static void
test_switch_parse(void **state)
{
	static const char *const bad[] = { "", "m", "m a 1 b", "m a 1 b 2 x",
		"m  a 1 b 2", "m a 1 b 2 ", " m a 1 b 2", "m a 1 b 0",
		"m a 1 b 65536", "m a 1 b 6379x", "m a 1 b -1", "m a 1  2",
		"m a 1 "
		"0123456789012345678901234567890123456789012345678901234567890123"
		" 2" };
	const char *ok = "mymaster 127.0.0.1 6379 ::1 26380";
	struct redis_switch sw;

	(void)state;
	assert_int_equal(redis_switch_parse(ok, strlen(ok), &sw), 0);
	assert_int_equal(sw.name_len, 8);
	assert_memory_equal(sw.name, "mymaster", 8);
	assert_int_equal(sw.host_len, 3);
	assert_memory_equal(sw.host, "::1", 3);
	assert_int_equal(sw.port, 26380);
	/* a NUL inside is refused, the length is what counts */
	assert_int_equal(redis_switch_parse("m a 1 b\0 2", 10, &sw), -1);
	assert_int_equal(redis_switch_parse(ok, strlen(ok) - 1, &sw), 0);
	assert_int_equal(sw.port, 2638);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (redis_switch_parse(bad[i], strlen(bad[i]), &sw) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
}

static struct redis_srv sn; /* the sentinel */

static void
sn_new(struct rt *t, const char *master_name, bool with_dead)
{
	char live[32], dead[32];
	const char *list[2] = { dead, live };
	struct redis_loop_conf c = { .timeout_ms = 300, .retry_ms = 500 };
	const char *err = NULL;

	redis_loop_free(&t->rl);
	snprintf(live, sizeof(live), "127.0.0.1:%u", sn.port);
	snprintf(dead, sizeof(dead), "127.0.0.1:%u", free_port());
	c.sentinels = with_dead ? list : list + 1;
	c.nsentinels = with_dead ? 2 : 1;
	c.master_name = master_name;
	t->rl = redis_loop_new(t->l, &c, &err);
	assert_non_null(t->rl);
}

static void
sn_get(struct rt *t)
{
	static const char *const argv[] = { "GET", "sk" };
	static const size_t lens[] = { 3, 2 };

	send_cmd(t, 2, (const char **)argv, lens);
	assert_non_null(t->rreq);
}

static void
sn_set(struct rt *t)
{
	static const char *const argv[] = { "SET", "sk", "sv" };
	static const size_t lens[] = { 3, 2, 2 };

	/* the first sentinel listed is dead: the second answers */
	sn_new(t, "m1", true);
	send_cmd(t, 3, (const char **)argv, lens);
	assert_non_null(t->rreq);
	/* two commands wait for the master, in order */
	sn_get(t);
	assert_int_equal(redis_loop_pending(t->rl), 2);
}

static void
sn_readonly(struct rt *t)
{
	static const char *const argv[] = { "SET", "sk", "sv" };
	static const size_t lens[] = { 3, 2, 2 };

	assert_int_equal(t->type, REDIS_REPLY_STRING);
	assert_string_equal(t->str, "sv");
	/* the master demoted under our connection: writes say READONLY */
	cmd("REPLICAOF 127.0.0.1 %u", free_port());
	send_cmd(t, 3, (const char **)argv, lens);
	assert_non_null(t->rreq);
}

static void
sn_after_readonly(struct rt *t)
{
	assert_int_equal(t->type, REDIS_REPLY_ERROR);
	assert_memory_equal(t->str, "READONLY", 8);
	/* that connection was dropped: the next command asks again and
	 * finds the (restored) master */
	cmd("REPLICAOF NO ONE");
	sn_get(t);
}

static void
sn_freeze(struct rt *t)
{
	assert_int_equal(t->type, REDIS_REPLY_STRING);
	assert_string_equal(t->str, "sv");
	/* a fresh connection must ask; the sentinel takes it, never answers */
	kill(sn.pid, SIGSTOP);
	wait_stopped(sn.pid);
	sn_new(t, "m1", false);
	sn_get(t);
}

static void
sn_after_timeout(struct rt *t)
{
	assert_int_equal(t->type, -1);
	assert_string_equal(t->error, "timeout");
	kill(sn.pid, SIGCONT);
	rt_pause(t, 600); /* past retry_ms */
}

static void
sn_unknown(struct rt *t)
{
	assert_int_equal(t->type, REDIS_REPLY_STRING);
	assert_string_equal(t->str, "sv");
	sn_new(t, "nosuch", false);
	sn_get(t);
}

static void
sn_get_refused(struct rt *t)
{
	static const char *const argv[] = { "GET", "sk" };
	static const size_t lens[] = { 3, 2 };

	send_cmd(t, 2, (const char **)argv, lens);
	assert_int_equal(t->type, -2);
}

static void
sn_check_unknown(struct rt *t)
{
	assert_int_equal(t->type, -1);
	assert_string_equal(t->error, "no sentinel knows the master");
	/* within retry_ms: refused at once */
	sn_get_refused(t);
}

static void
test_sentinel(void **state)
{
	static step_fn *const steps[] = { sn_set, sn_readonly,
		sn_after_readonly, sn_freeze, sn_after_timeout, sn_get,
		sn_unknown, sn_check_unknown, NULL };

	(void)state;
	/* redis-server --sentinel: no need for the redis-sentinel package */
	memcpy(sn.dir, rs.dir, sizeof(sn.dir));
	sn.port = free_port();
	redis_sentinel_start(&sn, "m1", rs.port);
	rt_run(NULL, steps);
	rt_done();
}

/* Also after a failed assertion: no sentinel left running. */
static int
sentinel_teardown(void **state)
{
	char conf[128];

	(void)state;
	redis_srv_stop(&sn);
	snprintf(conf, sizeof(conf), "%s/sentinel-%u.conf", sn.dir, sn.port);
	unlink(conf);
	return 0;
}

/* ---- routing with Redis ---- */

static struct route_backend_conf B[3];
static struct route_conf RC;

static void
conf_init(uint64_t ttl)
{
	static const char *const names[] = { "s1", "s2", "s3" };
	static char target[32];

	memset(B, 0, sizeof(B));
	for (unsigned i = 0; i < 3; i++) {
		char a[32];

		B[i].name = (char *)names[i];
		B[i].weight = 1;
		snprintf(a, sizeof(a), "127.0.0.1:%u", 2000 + i);
		assert_int_equal(cfg_parse_addr(a, &B[i].imap), 0);
	}
	snprintf(target, sizeof(target), "127.0.0.1:%u", rs.port);
	memset(&RC, 0, sizeof(RC));
	RC.backends = B;
	RC.nbackends = 3;
	RC.route.redis = target;
	RC.route.redis_timeout = 150;
	RC.route.cache_ttl = ttl;
	RC.route.cache_size = 100;
	RC.route.key_prefix = "rg:route:";
}

static void
on_route(void *ctx, const struct route_result *res)
{
	struct rt *t = ctx;

	t->calls++;
	t->waiting = false;
	t->req = NULL;
	t->res = *res;
	snprintf(t->be_name, sizeof(t->be_name), "%s",
	    res->be ? res->be->name : "");
}

/* Start a lookup; returns whether it was answered at once. */
static bool
ask(struct rt *t, const char *user, const char *host)
{
	struct route_query q = { .user = user,
		.host_field = host,
		.proto = ROUTE_IMAP };

	t->calls = 0;
	t->waiting = true;
	route_lookup(t->w, &q, on_route, t, &t->req);
	if (t->req == NULL) {
		assert_int_equal(t->calls, 1);
		return true;
	}
	assert_int_equal(t->calls, 0);
	return false;
}

/* The back end hashing gives user, and one it does not. */
static const char *
hashed(const char *user)
{
	int i = route_hash_pick(
	    (struct route_hash_node[]){ { route_hash_str("s1", 2), 1 },
		{ route_hash_str("s2", 2), 1 },
		{ route_hash_str("s3", 2), 1 } },
	    3, route_hash_str(user, strlen(user)));

	return B[i].name;
}

static const char *
not_hashed(const char *user)
{
	return strcmp(hashed(user), "s1") == 0 ? "s2" : "s1";
}

static void
re_first(struct rt *t)
{
	cmd("SET rg:route:alice %s", not_hashed("alice"));
	assert_false(ask(t, "alice", NULL)); /* a GET is in flight */
}

static void
re_cached(struct rt *t)
{
	assert_int_equal(t->res.status, ROUTE_OK);
	assert_int_equal(t->res.source, ROUTE_SRC_REDIS);
	assert_string_equal(t->be_name, not_hashed("alice"));
	/* gone from Redis, still cached: answered at once */
	cmd("DEL rg:route:alice");
	assert_true(ask(t, "alice", NULL));
	assert_int_equal(t->res.source, ROUTE_SRC_REDIS);
	assert_string_equal(t->be_name, not_hashed("alice"));
	assert_int_equal(counter("route_lookups_total", "source=\"cache\""), 1);
	rt_pause(t, 400); /* cache_ttl is 300 ms */
}

static void
re_expired(struct rt *t)
{
	assert_false(ask(t, "alice", NULL)); /* asked again */
}

static void
re_no_entry(struct rt *t)
{
	assert_int_equal(t->res.source, ROUTE_SRC_HASH);
	assert_string_equal(t->be_name, hashed("alice"));
	/* "no entry" is cached too */
	assert_true(ask(t, "alice", NULL));
	assert_int_equal(t->res.source, ROUTE_SRC_HASH);
	assert_string_equal(t->be_name, hashed("alice"));
	cmd("SET rg:route:bob nosuch");
	assert_false(ask(t, "bob", NULL));
}

static void
re_unknown(struct rt *t)
{
	assert_int_equal(t->res.status, ROUTE_OK);
	assert_int_equal(t->res.source, ROUTE_SRC_HASH);
	assert_string_equal(t->be_name, hashed("bob"));
	assert_int_equal(
	    counter("route_redis_fallback_total", "reason=\"unknown_backend\""),
	    1);
	/* host= wins without asking Redis */
	cmd("SET rg:route:carol s2");
	assert_true(ask(t, "carol", "s3"));
	assert_int_equal(t->res.source, ROUTE_SRC_HOST);
	assert_string_equal(t->be_name, "s3");
	/* a Redis entry pointing at a down back end: DOWN, not another */
	router_set_up(T.r, 1, ROUTE_IMAP, false, "test");
	assert_false(ask(t, "carol", NULL));
}

static void
re_down_backend(struct rt *t)
{
	assert_int_equal(t->res.status, ROUTE_DOWN);
	assert_int_equal(t->res.source, ROUTE_SRC_REDIS);
	assert_string_equal(t->be_name, "s2");
	router_set_up(T.r, 1, ROUTE_IMAP, true, "test");
	/* a session that leaves before the answer: no callback */
	assert_false(ask(t, "dave", NULL));
	route_cancel(&t->req);
	assert_null(t->req);
	t->waiting = false;
	rt_pause(t, 200);
}

static void
re_cancel_checked(struct rt *t)
{
	assert_int_equal(t->calls, 0);
}

static void
test_route_entry(void **state)
{
	static step_fn *const steps[] = { re_first, re_cached, re_expired,
		re_no_entry, re_unknown, re_down_backend, re_cancel_checked,
		NULL };

	(void)state;
	conf_init(300);
	rt_run(&RC, steps);
	rt_done();
}

/* Redis frozen (timeout) then dead (connect refused): hashing, counted. */
static void
fb_freeze(struct rt *t)
{
	kill(rs.pid, SIGSTOP);
	wait_stopped(rs.pid);
	assert_false(ask(t, "erin", NULL));
}

static void
fb_timed_out(struct rt *t)
{
	assert_int_equal(t->res.status, ROUTE_OK);
	assert_int_equal(t->res.source, ROUTE_SRC_HASH);
	assert_string_equal(t->be_name, hashed("erin"));
	assert_int_equal(
	    counter("route_redis_fallback_total", "reason=\"timeout\""), 1);
	/* right after: no waiting at all, hashed at once */
	assert_true(ask(t, "frank", NULL));
	assert_string_equal(t->be_name, hashed("frank"));
	assert_int_equal(
	    counter("route_redis_fallback_total", "reason=\"down\""), 1);
	redis_srv_stop(&rs);
	rt_pause(t, 1100); /* past the reconnect delay */
}

static void
fb_dead(struct rt *t)
{
	/* connecting to nothing: refused, at once or by callback */
	if (!ask(t, "gina", NULL))
		return;
}

static void
fb_dead_checked(struct rt *t)
{
	assert_int_equal(t->res.source, ROUTE_SRC_HASH);
	assert_string_equal(t->be_name, hashed("gina"));
	assert_int_equal(
	    counter("route_redis_fallback_total", "reason=\"timeout\"") +
		counter("route_redis_fallback_total", "reason=\"down\"") +
		counter("route_redis_fallback_total", "reason=\"error\""),
	    3);
	redis_srv_start(&rs);
	cmd("SET rg:route:gina %s", not_hashed("gina"));
	rt_pause(t, 1100);
}

static void
fb_back(struct rt *t)
{
	assert_false(ask(t, "gina", NULL));
}

static void
fb_back_checked(struct rt *t)
{
	assert_int_equal(t->res.source, ROUTE_SRC_REDIS);
	assert_string_equal(t->be_name, not_hashed("gina"));
}

static void
test_redis_fallback(void **state)
{
	static step_fn *const steps[] = { fb_freeze, fb_timed_out, fb_dead,
		fb_dead_checked, fb_back, fb_back_checked, NULL };

	(void)state;
	conf_init(60000);
	rt_run(&RC, steps);
	rt_done();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redis_loop),
		cmocka_unit_test(test_route_entry),
		cmocka_unit_test(test_redis_fallback),
		cmocka_unit_test(test_switch_parse),
		cmocka_unit_test_teardown(test_sentinel, sentinel_teardown),
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
