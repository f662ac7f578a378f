/*
 * test_auth_pool.c - the verify pool: answers (ok, wrong password,
 * unknown user, nologin, allow_nets, no password) in the plain callback
 * mode; the positive cache with an injected clock (hit, miss, TTL, case,
 * reload invalidation, negative answers never cached); queue overflow
 * giving TEMPFAIL; a hash stuck on auth's own lane holding up no other
 * pool; and results arriving through loop_post() on a real io_uring
 * loop, including one for a session that has gone. Hashes use a
 * cheap SHA512-CRYPT cost so the suite stays quick; nothing is timed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/loop.h"
#include "core/pool.h"

#define MAX_RESULTS 64

struct got {
	uint64_t sid;
	enum auth_status status;
	enum auth_reason reason;
	bool cached;
	char user[AUTH_USER_MAX + 1]; /* of the entry, on OK */
	pthread_t thread;
};

/* Results collected from whatever thread delivers them. */
struct collector {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct got got[MAX_RESULTS];
	int n;
};

struct fixture {
	char path[64];
	struct auth_scheme_opts cheap;
	struct auth_passdb *db;
	struct collector col;
	uint64_t now; /* the injected clock */
	struct {
		const char *pw;
		char *hash;
	} memo[8]; /* one hash per password: unchanged users keep lines */
};

static struct fixture F;

static uint64_t
fake_now(void *arg)
{
	return *(uint64_t *)arg;
}

static void
collect(struct loop *l, uint64_t sid, struct auth_result *res, void *ctx)
{
	struct collector *c = ctx;
	struct got *g;

	pthread_mutex_lock(&c->lock);
	assert_true(c->n < MAX_RESULTS);
	g = &c->got[c->n++];
	memset(g, 0, sizeof(*g));
	g->sid = sid;
	g->status = res->status;
	g->reason = res->reason;
	g->cached = res->cached;
	g->thread = pthread_self();
	if (res->status == AUTH_OK) {
		assert_non_null(res->entry);
		snprintf(g->user, sizeof(g->user), "%s", res->entry->user);
	} else {
		assert_null(res->entry);
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void
wait_for(int n)
{
	pthread_mutex_lock(&F.col.lock);
	while (F.col.n < n)
		pthread_cond_wait(&F.col.cond, &F.col.lock);
	pthread_mutex_unlock(&F.col.lock);
}

static const char *
hash(const char *pw)
{
	const char *err = NULL;
	int i;

	for (i = 0; i < 8 && F.memo[i].pw != NULL; i++)
		if (strcmp(F.memo[i].pw, pw) == 0)
			return F.memo[i].hash;
	assert_true(i < 8);
	F.memo[i].pw = pw;
	assert_int_equal(auth_scheme_hash(AUTH_SCHEME_SHA512_CRYPT, pw,
			     strlen(pw), &F.cheap, &F.memo[i].hash, &err),
	    0);
	return F.memo[i].hash;
}

/* alice/apple, bob/banana (nologin), carol/cherry (allow_nets), dave
 * (no password). */
static void
write_users(const char *alice_pw, const char *bob_pw)
{
	const char *a = hash(alice_pw), *b = hash(bob_pw), *c = hash("cherry");
	char tmp[80];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", F.path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fprintf(f,
	    "alice@example.org:%s\n"
	    "bob@example.org:%s::::::nologin\n"
	    "carol@example.org:%s::::::allow_nets=192.0.2.0/24\n"
	    "dave@example.org\n",
	    a, b, c);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, F.path), 0);
}

static int
setup(void **state)
{
	struct auth_passdb_conf conf = { 0 };
	const char *err = NULL;
	int fd;

	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.col.lock, NULL);
	pthread_cond_init(&F.col.cond, NULL);
	F.cheap.sha_rounds = 1000;
	snprintf(F.path, sizeof(F.path), "/tmp/rg-pool-XXXXXX");
	if ((fd = mkstemp(F.path)) == -1)
		return -1;
	close(fd);
	write_users("apple", "banana");
	conf.path = F.path;
	F.db = auth_passdb_new(&conf, &err);
	return F.db ? 0 : -1;
}

static int
teardown(void **state)
{
	auth_passdb_free(&F.db);
	unlink(F.path);
	for (int i = 0; i < 8; i++)
		free(F.memo[i].hash);
	pthread_cond_destroy(&F.col.cond);
	pthread_mutex_destroy(&F.col.lock);
	return 0;
}

static struct auth_pool *
new_pool(struct auth_backend *b, bool cache, unsigned threads,
    unsigned queue_max)
{
	struct auth_pool_conf conf = { .backend = b,
		.schemes = F.cheap,
		.dummy_scheme = AUTH_SCHEME_SHA512_CRYPT,
		.threads = threads,
		.queue_max = queue_max,
		.cache_off = !cache,
		.cache_ttl_ms = 1000,
		.now_ms = fake_now,
		.now_arg = &F.now };
	const char *err = NULL;
	struct auth_pool *p = auth_pool_new(&conf, &err);

	if (p == NULL)
		fail_msg("pool: %s", err);
	return p;
}

static void
submit(struct auth_pool *p, struct loop *l, uint64_t sid, const char *user,
    const char *pw, const char *client)
{
	struct sockaddr_in in = { .sin_family = AF_INET };

	if (client != NULL)
		assert_int_equal(inet_pton(AF_INET, client, &in.sin_addr), 1);
	assert_int_equal(auth_pool_submit(p, l, sid, user, pw, strlen(pw),
			     client ? (struct sockaddr *)&in : NULL, collect,
			     &F.col),
	    0);
}

/* Submit one and wait for its answer (plain mode). */
static struct got
ask(struct auth_pool *p, const char *user, const char *pw, const char *client)
{
	int n = F.col.n;

	submit(p, NULL, (uint64_t)n + 1, user, pw, client);
	wait_for(n + 1);
	return F.col.got[n];
}

static void
test_answers(void **state)
{
	struct auth_pool *p = new_pool(auth_passdb_backend(F.db), false, 2, 0);
	struct auth_pool_stats st;
	struct got g, wrong, unknown;

	g = ask(p, "alice@example.org", "apple", NULL);
	assert_int_equal(g.status, AUTH_OK);
	assert_string_equal(g.user, "alice@example.org");
	assert_false(g.cached);
	assert_false(pthread_equal(g.thread, pthread_self()));
	g = ask(p, "Alice@Example.Org", "apple", NULL);
	assert_int_equal(g.status, AUTH_OK);

	/* Wrong password and unknown user: the same status, no entry. */
	wrong = ask(p, "alice@example.org", "Apple", NULL);
	unknown = ask(p, "zed@example.org", "apple", NULL);
	assert_int_equal(wrong.status, AUTH_FAIL);
	assert_int_equal(unknown.status, AUTH_FAIL);
	assert_int_equal(wrong.reason, AUTH_R_PASSWORD);
	assert_int_equal(unknown.reason, AUTH_R_UNKNOWN);
	assert_int_equal(ask(p, "", "x", NULL).reason, AUTH_R_UNKNOWN);
	assert_int_equal(ask(p, "bad user", "x", NULL).reason, AUTH_R_UNKNOWN);

	/* The right password is needed before policy speaks. */
	g = ask(p, "bob@example.org", "banana", NULL);
	assert_int_equal(g.status, AUTH_FAIL);
	assert_int_equal(g.reason, AUTH_R_NOLOGIN);
	assert_int_equal(ask(p, "bob@example.org", "x", NULL).reason,
	    AUTH_R_PASSWORD);
	assert_int_equal(
	    ask(p, "carol@example.org", "cherry", "192.0.2.9").status, AUTH_OK);
	g = ask(p, "carol@example.org", "cherry", "198.51.100.1");
	assert_int_equal(g.status, AUTH_FAIL);
	assert_int_equal(g.reason, AUTH_R_NETWORK);
	assert_int_equal(ask(p, "carol@example.org", "cherry", NULL).reason,
	    AUTH_R_NETWORK);
	assert_int_equal(
	    ask(p, "carol@example.org", "x", "198.51.100.1").reason,
	    AUTH_R_PASSWORD);
	assert_int_equal(ask(p, "dave@example.org", "", NULL).reason,
	    AUTH_R_NOPASS);

	auth_pool_stats(p, &st);
	assert_int_equal(st.submitted, F.col.n);
	assert_int_equal(st.verifies, F.col.n);
	assert_int_equal(st.result[AUTH_OK], 3);
	assert_int_equal(st.result[AUTH_FAIL], F.col.n - 3);
	assert_int_equal(st.cache_hits + st.cache_misses, 0);
	assert_int_equal(st.queued, 0);
	auth_pool_free(&p);
	assert_null(p);
}

/* A password longer than the limit is refused like a wrong one. */
static void
test_long_password(void **state)
{
	struct auth_pool *p = new_pool(auth_passdb_backend(F.db), true, 1, 0);
	char *big = malloc(AUTH_PASSWORD_MAX + 50);

	memset(big, 'a', AUTH_PASSWORD_MAX + 49);
	big[AUTH_PASSWORD_MAX + 49] = '\0';
	assert_int_equal(ask(p, "alice@example.org", big, NULL).status,
	    AUTH_FAIL);
	assert_int_equal(ask(p, "zed@example.org", big, NULL).status,
	    AUTH_FAIL);
	free(big);
	auth_pool_free(&p);
}

static void
test_cache(void **state)
{
	struct auth_pool *p = new_pool(auth_passdb_backend(F.db), true, 2, 0);
	struct auth_pool_stats st;
	const char *err = NULL;
	struct got g;

	F.now = 5000;
	g = ask(p, "alice@example.org", "apple", NULL);
	assert_int_equal(g.status, AUTH_OK);
	assert_false(g.cached);
	g = ask(p, "alice@example.org", "apple", NULL);
	assert_int_equal(g.status, AUTH_OK);
	assert_true(g.cached);
	assert_string_equal(g.user, "alice@example.org");
	g = ask(p, "ALICE@example.org", "apple", NULL);
	assert_true(g.cached);
	auth_pool_stats(p, &st);
	assert_int_equal(st.verifies, 1);
	assert_int_equal(st.cache_hits, 2);
	assert_int_equal(st.cache_misses, 1);

	/* Failures are never cached: each one runs the hash. */
	assert_int_equal(ask(p, "alice@example.org", "pear", NULL).status,
	    AUTH_FAIL);
	assert_int_equal(ask(p, "alice@example.org", "pear", NULL).status,
	    AUTH_FAIL);
	assert_int_equal(ask(p, "zed@example.org", "pear", NULL).status,
	    AUTH_FAIL);
	assert_int_equal(ask(p, "zed@example.org", "pear", NULL).status,
	    AUTH_FAIL);
	/* Nor is a right password that policy refuses. */
	assert_int_equal(ask(p, "bob@example.org", "banana", NULL).reason,
	    AUTH_R_NOLOGIN);
	g = ask(p, "bob@example.org", "banana", NULL);
	assert_int_equal(g.reason, AUTH_R_NOLOGIN);
	assert_false(g.cached);
	auth_pool_stats(p, &st);
	assert_int_equal(st.verifies, 7);

	/* Policy still applies to a cached password. */
	assert_int_equal(
	    ask(p, "carol@example.org", "cherry", "192.0.2.1").status, AUTH_OK);
	g = ask(p, "carol@example.org", "cherry", "198.51.100.1");
	assert_true(g.cached);
	assert_int_equal(g.reason, AUTH_R_NETWORK);

	/* TTL: just before expiry a hit, at expiry a miss and a hash. */
	F.now = 5999;
	assert_true(ask(p, "alice@example.org", "apple", NULL).cached);
	F.now = 6000;
	g = ask(p, "alice@example.org", "apple", NULL);
	assert_int_equal(g.status, AUTH_OK);
	assert_false(g.cached);
	assert_true(ask(p, "alice@example.org", "apple", NULL).cached);

	/* A reload that changes bob only keeps alice's answer... */
	write_users("apple", "blueberry");
	assert_int_equal(auth_passdb_reload(F.db, &err), 0);
	assert_true(ask(p, "alice@example.org", "apple", NULL).cached);
	/* ...one that changes alice's password drops it. */
	write_users("apricot", "blueberry");
	assert_int_equal(auth_passdb_reload(F.db, &err), 0);
	g = ask(p, "alice@example.org", "apple", NULL);
	assert_int_equal(g.status, AUTH_FAIL);
	assert_false(g.cached);
	g = ask(p, "alice@example.org", "apricot", NULL);
	assert_int_equal(g.status, AUTH_OK);
	assert_false(g.cached);
	assert_true(ask(p, "alice@example.org", "apricot", NULL).cached);

	auth_pool_cache_flush(p);
	assert_false(ask(p, "alice@example.org", "apricot", NULL).cached);
	auth_pool_free(&p);
}

/* A small cache evicts but stays correct. */
static void
test_cache_eviction(void **state)
{
	struct auth_pool_conf conf = { .backend = auth_passdb_backend(F.db),
		.schemes = F.cheap,
		.dummy_scheme = AUTH_SCHEME_SHA512_CRYPT,
		.cache_size = 1,
		.now_ms = fake_now,
		.now_arg = &F.now };
	const char *err = NULL;
	struct auth_pool *p = auth_pool_new(&conf, &err);

	assert_non_null(p);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(
		    ask(p, "alice@example.org", "apple", NULL).status, AUTH_OK);
		assert_int_equal(
		    ask(p, "carol@example.org", "cherry", "192.0.2.1").status,
		    AUTH_OK);
	}
	auth_pool_free(&p);
}

/* ---- overflow: a back-end that blocks until the test opens a gate ---- */

struct gate_backend {
	struct auth_backend b;
	struct auth_backend *inner;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	int entered;
};

static enum auth_lookup
gate_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r)
{
	struct gate_backend *g = (struct gate_backend *)b;

	pthread_mutex_lock(&g->lock);
	g->entered++;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	if (strcmp(user, "down@example.org") == 0) {
		*error_r = "test: back-end down";
		return AUTH_LOOKUP_TEMPFAIL;
	}
	return g->inner->ops->lookup(g->inner, user, entry_r, error_r);
}

static const struct auth_backend_ops gate_ops = {
	.name = "gate",
	.lookup_nonblocking = false,
	.lookup = gate_lookup,
};

static void
test_overflow(void **state)
{
	struct gate_backend g = { .b.ops = &gate_ops,
		.inner = auth_passdb_backend(F.db) };
	struct auth_pool *p;
	struct auth_pool_stats st;

	pthread_mutex_init(&g.lock, NULL);
	pthread_cond_init(&g.cond, NULL);
	p = new_pool(&g.b, true, 1, 1);

	submit(p, NULL, 1, "alice@example.org", "apple", NULL);
	pthread_mutex_lock(&g.lock);
	while (g.entered < 1) /* the only worker is now stuck */
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);
	submit(p, NULL, 2, "alice@example.org", "apple", NULL); /* queued */
	submit(p, NULL, 3, "alice@example.org", "apple", NULL); /* full */

	/* The refusal is immediate and is the only answer so far. */
	assert_int_equal(F.col.n, 1);
	assert_int_equal(F.col.got[0].sid, 3);
	assert_int_equal(F.col.got[0].status, AUTH_TEMPFAIL);
	assert_int_equal(F.col.got[0].reason, AUTH_R_OVERFLOW);
	auth_pool_stats(p, &st);
	assert_int_equal(st.overflows, 1);
	assert_int_equal(st.queued, 1);

	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	wait_for(3);
	assert_int_equal(F.col.got[1].sid, 1);
	assert_int_equal(F.col.got[1].status, AUTH_OK);
	/* Job 2 was probed against the cache on the worker (this back-end
	 * blocks), after job 1 had filled it. */
	assert_int_equal(F.col.got[2].sid, 2);
	assert_int_equal(F.col.got[2].status, AUTH_OK);
	assert_true(F.col.got[2].cached);

	/* A back-end failure is a temporary failure, not a wrong password. */
	assert_int_equal(ask(p, "down@example.org", "x", NULL).status,
	    AUTH_TEMPFAIL);
	auth_pool_stats(p, &st);
	assert_int_equal(st.result[AUTH_TEMPFAIL], 2);
	assert_int_equal(st.result[AUTH_OK], 2);
	auth_pool_free(&p);
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
}

/* Auth runs on a lane of its own: while its only thread is stuck in a
 * verification, work on another pool (routing, throttle) still runs. */
struct lane_job {
	struct pool_job base;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	bool ran;
};

static void
lane_run(struct pool_job *pj)
{
	struct lane_job *j = (struct lane_job *)pj;

	pthread_mutex_lock(j->lock);
	j->ran = true;
	pthread_cond_broadcast(j->cond);
	pthread_mutex_unlock(j->lock);
}

static void
test_own_lane(void **state)
{
	struct gate_backend g = { .b.ops = &gate_ops,
		.inner = auth_passdb_backend(F.db) };
	struct lane_job lj = { .base.run = lane_run };
	const char *err = NULL;
	struct auth_pool *p;
	struct pool *other;

	pthread_mutex_init(&g.lock, NULL);
	pthread_cond_init(&g.cond, NULL);
	lj.lock = &g.lock;
	lj.cond = &g.cond;
	p = new_pool(&g.b, false, 1, 0);
	other = pool_new(1, 0, &err);
	assert_non_null(other);
	submit(p, NULL, 1, "alice@example.org", "apple", NULL);
	submit(p, NULL, 2, "alice@example.org", "apple", NULL);
	pthread_mutex_lock(&g.lock);
	while (g.entered < 1)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);
	/* no outbox: run() owns the job, which lives on this stack */
	assert_int_equal(pool_submit(other, NULL, &lj.base), 0);
	pthread_mutex_lock(&g.lock);
	while (!lj.ran)
		pthread_cond_wait(&g.cond, &g.lock);
	assert_int_equal(F.col.n, 0); /* auth still stuck */
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	wait_for(2);
	pool_free(&other);
	auth_pool_free(&p);
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
}

/* ---- a real loop ------------------------------------------------------ */

#define LOOP_JOBS 6

struct loop_test {
	struct auth_pool *pool;
	pthread_t loop_thread;
	bool session_gone[LOOP_JOBS + 2];
	int delivered, dropped, followups;
	struct loop *l;
};

static struct loop_test LT;

/* Like a session core: look the session up by id, drop the answer if it
 * has gone, else act on it. */
static void
on_loop_result(struct loop *l, uint64_t sid, struct auth_result *res, void *ctx)
{
	assert_ptr_equal(l, LT.l);
	assert_true(pthread_equal(pthread_self(), LT.loop_thread));
	if (LT.session_gone[sid]) {
		LT.dropped++; /* res->entry is released by the pool */
	} else {
		LT.delivered++;
		collect(l, sid, res, &F.col);
		/* A login from the loop thread itself: a cache hit now,
		 * posted back to this same loop. */
		if (sid == 1 && LT.followups++ == 0)
			assert_int_equal(auth_pool_submit(LT.pool, l,
					     LOOP_JOBS + 1, "alice@example.org",
					     "apple", 5, NULL, on_loop_result,
					     NULL),
			    0);
	}
	if (LT.delivered + LT.dropped == LOOP_JOBS + 1)
		loop_stop(l, 0);
}

static void
test_loop_post(void **state)
{
	struct loop_conf lc = { .buf_count = 8, .buf_size = 4096 };
	const char *err = NULL;
	struct auth_pool_stats st;

	memset(&LT, 0, sizeof(LT));
	LT.l = loop_new(&lc, &err);
	if (LT.l == NULL) {
		print_message("skip: %s\n", err);
		skip();
	}
	LT.loop_thread = pthread_self();
	LT.pool = new_pool(auth_passdb_backend(F.db), true, 2, 0);
	/* Session 4 goes away before its answer can arrive: the answer
	 * is posted anyway and the handler drops it. */
	LT.session_gone[4] = true;
	auth_pool_submit(LT.pool, LT.l, 1, "alice@example.org", "apple", 5,
	    NULL, on_loop_result, NULL);
	auth_pool_submit(LT.pool, LT.l, 2, "alice@example.org", "wrong", 5,
	    NULL, on_loop_result, NULL);
	auth_pool_submit(LT.pool, LT.l, 3, "nobody@example.org", "apple", 5,
	    NULL, on_loop_result, NULL);
	auth_pool_submit(LT.pool, LT.l, 4, "carol@example.org", "cherry", 6,
	    NULL, on_loop_result, NULL);
	auth_pool_submit(LT.pool, LT.l, 5, "bob@example.org", "banana", 6, NULL,
	    on_loop_result, NULL);
	auth_pool_submit(LT.pool, LT.l, 6, "dave@example.org", "", 0, NULL,
	    on_loop_result, NULL);
	assert_int_equal(loop_run(LT.l), 0);

	assert_int_equal(LT.dropped, 1);
	assert_int_equal(LT.delivered, LOOP_JOBS);
	for (int i = 0; i < F.col.n; i++) {
		struct got *g = &F.col.got[i];

		switch (g->sid) {
		case 1:
			assert_int_equal(g->status, AUTH_OK);
			break;
		case LOOP_JOBS + 1:
			assert_int_equal(g->status, AUTH_OK);
			assert_true(g->cached);
			break;
		default:
			assert_int_equal(g->status, AUTH_FAIL);
			break;
		}
	}
	auth_pool_stats(LT.pool, &st);
	assert_int_equal(st.lost, 0);
	assert_int_equal(st.cache_hits, 1);
	auth_pool_free(&LT.pool);
	loop_free(LT.l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_password, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_eviction, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_lane, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_post, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
