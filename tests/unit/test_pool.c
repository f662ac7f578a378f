/*
 * test_pool.c - core/pool.c, the worker pool and its per-loop outboxes.
 *
 * Scheduling: flows take turns (one job each, round-robin between the
 * flows with jobs waiting, FIFO within one), so a flow with a long
 * backlog delays a newcomer by one job, not by its backlog; the queue
 * limit holds for submit and not for resubmit or detach; detached jobs
 * run, also when queued at pool_free(); the stats count waiting and
 * running jobs. One pool thread is parked on a gate while the test
 * queues, so the order the thread then takes jobs in is exactly the
 * scheduler's choice; those answers go through an outbox on a loop that
 * is never run, and pool_outbox_close() runs every done() on this thread.
 *
 * Delivery: jobs on a running loop (run() on pool threads, done() on the
 * loop's thread), answers held and completed from another thread, a
 * session gone before its answer (done() finds none and frees the job),
 * and an outbox closed with jobs still in flight. Nothing is timed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "core/pool.h"

#define MAX_ORDER 64
#define NSESSIONS 8

struct tjob {
	struct pool_job base;
	char tag;  /* recorded when it runs */
	bool gate; /* wait for the test to open the gate */
};

/* Shared by the pool thread and the test thread. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open, parked;
	char order[MAX_ORDER + 1];
	unsigned n, done;
	struct loop *l;
	struct pool_outbox *ob;
	struct pool *p;
	/* delivery tests */
	pthread_t main_thread;	  /* the loop's (and the test's) thread */
	atomic_uint ran, ran_off; /* run() calls, those off main_thread */
	unsigned done_off;	  /* done() calls not on main_thread */
	unsigned stop_at;	  /* loop_stop() after this many done() */
	bool closing;		  /* the test is about to close the outbox */
	/* a session table, as a daemon keeps one: done() looks up by sid */
	char *sessions[NSESSIONS];
	unsigned answered, dropped;
} T = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void
trun(struct pool_job *sj)
{
	struct tjob *j = (struct tjob *)sj;

	atomic_fetch_add(&T.ran, 1);
	if (!pthread_equal(pthread_self(), T.main_thread))
		atomic_fetch_add(&T.ran_off, 1);
	pthread_mutex_lock(&T.lock);
	if (j->gate) {
		T.parked = true;
		pthread_cond_broadcast(&T.cond);
		while (!T.open)
			pthread_cond_wait(&T.cond, &T.lock);
	} else if (T.n < MAX_ORDER) {
		T.order[T.n++] = j->tag;
	}
	pthread_mutex_unlock(&T.lock);
}

static void
tdone(struct pool_job *sj)
{
	if (!pthread_equal(pthread_self(), T.main_thread))
		T.done_off++;
	T.done++;
	free(sj);
	if (T.stop_at != 0 && T.done == T.stop_at)
		loop_stop(T.l, 0);
}

/* A detached job frees itself. */
static void
trun_detached(struct pool_job *sj)
{
	trun(sj);
	free(sj);
}

static struct tjob *
tjob(char tag, uint64_t flow)
{
	struct tjob *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->base.run = trun;
	j->base.done = tdone;
	j->base.flow = flow;
	j->tag = tag;
	return j;
}

static int
setup(void **state)
{
	struct loop_conf lc = { 0 };
	const char *err = NULL;

	(void)state;
	lc.buf_count = 16;
	lc.buf_size = 4096;
	T.l = loop_new(&lc, &err);
	if (T.l == NULL) {
		print_message("skip: %s\n", err);
		return -1;
	}
	assert_non_null(T.ob = pool_outbox_new(T.l));
	T.p = pool_new(1, 8, &err);
	assert_non_null(T.p);
	T.open = T.parked = T.closing = false;
	T.n = T.done = T.done_off = T.stop_at = 0;
	T.answered = T.dropped = 0;
	atomic_store(&T.ran, 0);
	atomic_store(&T.ran_off, 0);
	T.main_thread = pthread_self();
	memset(T.order, 0, sizeof(T.order));
	memset(T.sessions, 0, sizeof(T.sessions));
	return 0;
}

static void release(void);

static int
teardown(void **state)
{
	(void)state;
	release(); /* a failed test may have left the thread parked */
	pool_outbox_close(&T.ob);
	pool_free(&T.p);
	loop_free(T.l);
	for (int i = 0; i < NSESSIONS; i++)
		free(T.sessions[i]);
	return 0;
}

/* Park the pool's only thread on a gate job. */
static void
park(void)
{
	struct tjob *g = tjob('g', 999);

	g->gate = true;
	assert_int_equal(pool_submit(T.p, T.ob, &g->base), 0);
	pthread_mutex_lock(&T.lock);
	while (!T.parked)
		pthread_cond_wait(&T.cond, &T.lock);
	pthread_mutex_unlock(&T.lock);
}

static void
release(void)
{
	pthread_mutex_lock(&T.lock);
	T.open = true;
	pthread_cond_broadcast(&T.cond);
	pthread_mutex_unlock(&T.lock);
}

static void
submit(char tag, uint64_t flow)
{
	struct tjob *j = tjob(tag, flow);

	assert_int_equal(pool_submit(T.p, T.ob, &j->base), 0);
}

/* Wait until every queued job ran: close the outbox (done() here). */
static void
drain(void)
{
	pool_outbox_close(&T.ob);
	T.ob = pool_outbox_new(T.l);
	assert_non_null(T.ob);
}

static void
test_round_robin(void **state)
{
	(void)state;
	park();
	/* a backlog of four for flow 1, then two newcomers */
	submit('a', 1);
	submit('b', 1);
	submit('c', 1);
	submit('d', 1);
	submit('x', 2);
	submit('y', 3);
	submit('z', 2);
	release();
	drain();
	/* turns: 1, 2, 3, 1, 2, 1, 1; each flow's own jobs stay in order */
	assert_string_equal(T.order, "axybzcd");
	assert_int_equal(T.done, 8);
}

/* A flow that comes back after it ran dry joins the end of the ring. */
static void
test_rejoin(void **state)
{
	(void)state;
	park();
	submit('a', 1);
	submit('x', 2);
	submit('b', 2);
	submit('c', 1);
	release();
	drain();
	assert_string_equal(T.order, "axcb");
}

static void
test_limit(void **state)
{
	struct tjob *over = tjob('o', 5), *again = tjob('r', 5);
	struct pool_stats st;

	(void)state;
	park();
	for (int i = 0; i < 8; i++)
		submit((char)('0' + i), (uint64_t)i);
	pool_stats(T.p, &st);
	assert_int_equal(st.queued, 8);
	assert_int_equal(st.running, 1);
	assert_int_equal(st.flows, 8);
	/* the queue is full for new work, not for work already admitted */
	assert_int_equal(pool_submit(T.p, T.ob, &over->base), -1);
	free(over);
	assert_int_equal(pool_resubmit(T.p, T.ob, &again->base), 0);
	pool_stats(T.p, &st);
	assert_int_equal(st.queued, 9);
	assert_int_equal(st.flows, 8); /* flow 5 already waited */
	release();
	drain();
	/* flow 5's second job waited for its flow's next turn */
	assert_string_equal(T.order, "01234567r");
	pool_stats(T.p, &st);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.running, 0);
	assert_int_equal(st.flows, 0);
}

static void
test_detached(void **state)
{
	struct tjob *d = tjob('d', 0);

	(void)state;
	park();
	d->base.run = trun_detached;
	assert_int_equal(pool_detach(T.p, &d->base), 0);
	submit('s', 0);
	release();
	drain();
	/* the same flow: FIFO */
	assert_string_equal(T.order, "ds");
	assert_int_equal(T.done, 2); /* the gate and 's'; 'd' has no done */
}

/* Without an outbox run() owns the job; submit still counts against the
 * limit, detach does not. */
static void
test_no_outbox(void **state)
{
	struct tjob *j;

	(void)state;
	park();
	for (int i = 0; i < 7; i++)
		submit((char)('0' + i), 1);
	j = tjob('n', 2);
	j->base.run = trun_detached;
	assert_int_equal(pool_submit(T.p, NULL, &j->base), 0); /* 8th */
	j = tjob('o', 2);
	j->base.run = trun_detached;
	assert_int_equal(pool_submit(T.p, NULL, &j->base), -1);
	free(j);
	j = tjob('d', 2);
	j->base.run = trun_detached;
	assert_int_equal(pool_detach(T.p, &j->base), 0);
	release();
	drain();
	pool_free(&T.p); /* detached jobs are done once it returns */
	assert_string_equal(T.order, "0n1d23456");
	assert_int_equal(T.done, 8); /* the gate and 0-6 */
}

/* Detached jobs still queued when the pool stops all run first. */
static void
test_free_runs_detached(void **state)
{
	(void)state;
	park();
	for (char c = 'a'; c <= 'e'; c++) {
		struct tjob *j = tjob(c, (uint64_t)c);

		j->base.run = trun_detached;
		assert_int_equal(pool_detach(T.p, &j->base), 0);
	}
	release();
	pool_outbox_close(&T.ob); /* the gate's answer */
	pool_free(&T.p);
	assert_null(T.p);
	assert_string_equal(T.order, "abcde");
}

static void
test_new_errors(void **state)
{
	struct pool *none = NULL;
	struct pool_outbox *nob = NULL;
	const char *err = NULL;

	(void)state;
	assert_null(pool_new(0, 8, &err));
	assert_non_null(err);
	/* NULL is a no-op for both frees */
	pool_free(&none);
	pool_outbox_close(&nob);
}

/* Many jobs over a few flows on a running loop: every run() on a pool
 * thread, every done() on the loop's thread, each exactly once. */
static void
test_loop_delivery(void **state)
{
	const char *err = NULL;
	struct pool *p = pool_new(3, 0, &err);
	const unsigned n = 500;

	(void)state;
	assert_non_null(p);
	T.stop_at = n;
	for (unsigned i = 0; i < n; i++) {
		struct tjob *j = tjob('j', i % 7);

		j->base.sid = i;
		assert_int_equal(pool_submit(p, T.ob, &j->base), 0);
	}
	assert_int_equal(loop_run(T.l), 0);
	assert_int_equal(T.done, n);
	assert_int_equal(T.done_off, 0);
	assert_int_equal(atomic_load(&T.ran), n);
	assert_int_equal(atomic_load(&T.ran_off), n);
	pool_free(&p);
}

/* done() of a session-bound job: the session may have gone meanwhile. */
static void
session_done(struct pool_job *sj)
{
	char *s = sj->sid < NSESSIONS ? T.sessions[sj->sid] : NULL;

	if (s == NULL) {
		T.dropped++; /* nobody to answer: just free the job */
	} else {
		T.answered++;
		s[0] = ((struct tjob *)sj)->tag; /* touch the session */
	}
	tdone(sj);
}

static void
test_session_gone(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		assert_non_null(T.sessions[i] = calloc(1, 16));
	park();
	for (unsigned sid = 1; sid < 4; sid++) {
		struct tjob *j = tjob((char)('0' + sid), sid);

		j->base.sid = sid;
		j->base.done = session_done;
		assert_int_equal(pool_submit(T.p, T.ob, &j->base), 0);
	}
	/* session 2 closes (and is freed) while its job is queued */
	free(T.sessions[2]);
	T.sessions[2] = NULL;
	T.stop_at = 4; /* the gate and three */
	release();
	assert_int_equal(loop_run(T.l), 0);
	assert_int_equal(T.answered, 2);
	assert_int_equal(T.dropped, 1);
	assert_int_equal(T.sessions[1][0], '1');
	assert_int_equal(T.sessions[3][0], '3');
	assert_string_equal(T.order,
	    "123"); /* it ran; its answer was dropped */
}

/* Answers from elsewhere (another pool's callback thread). */
struct outside {
	struct tjob *jobs[32];
	unsigned n;
};

static void *
complete_all(void *arg)
{
	struct outside *o = arg;

	/* wait for the test to reach pool_outbox_close() when it asks to */
	pthread_mutex_lock(&T.lock);
	while (T.stop_at == 0 && !T.closing)
		pthread_cond_wait(&T.cond, &T.lock);
	pthread_mutex_unlock(&T.lock);
	for (unsigned i = 0; i < o->n; i++)
		pool_outbox_complete(&o->jobs[i]->base);
	return NULL;
}

static void
test_hold_complete(void **state)
{
	struct outside o = { .n = 32 };
	pthread_t t;

	(void)state;
	for (unsigned i = 0; i < o.n; i++) {
		o.jobs[i] = tjob('h', 0);
		o.jobs[i]->base.run = NULL; /* never on a pool thread */
		pool_outbox_hold(T.ob, &o.jobs[i]->base);
	}
	T.stop_at = o.n;
	assert_int_equal(pthread_create(&t, NULL, complete_all, &o), 0);
	assert_int_equal(loop_run(T.l), 0);
	pthread_join(t, NULL);
	assert_int_equal(T.done, o.n);
	assert_int_equal(T.done_off, 0);
}

/* Closing an outbox with jobs queued, running and held: close waits for
 * every one and runs their done() on the closing thread; nothing is left
 * for the (never run) loop. */
static void
test_close_in_flight(void **state)
{
	struct outside o = { .n = 3 };
	pthread_t t;

	(void)state;
	park(); /* one job running */
	submit('a', 1);
	submit('b', 2);
	submit('c', 1);
	for (unsigned i = 0; i < o.n; i++) {
		o.jobs[i] = tjob('h', 0);
		o.jobs[i]->base.run = NULL;
		pool_outbox_hold(T.ob, &o.jobs[i]->base);
	}
	assert_int_equal(pthread_create(&t, NULL, complete_all, &o), 0);
	pthread_mutex_lock(&T.lock);
	T.closing = true;
	T.open = true; /* the gate opens as the close begins */
	pthread_cond_broadcast(&T.cond);
	pthread_mutex_unlock(&T.lock);
	pool_outbox_close(&T.ob);
	assert_null(T.ob);
	assert_int_equal(T.done, 1 + 3 + o.n);
	assert_int_equal(T.done_off, 0);
	assert_string_equal(T.order, "abc");
	pthread_join(t, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_robin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rejoin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_outbox, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_runs_detached, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_new_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_loop_delivery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_gone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hold_complete, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_in_flight, setup,
		    teardown),
	};
	struct loop_conf lc = { 0 };
	const char *err = NULL;
	struct loop *l;

	lc.buf_count = 16;
	lc.buf_size = 4096;
	if ((l = loop_new(&lc, &err)) == NULL) {
		print_message("skip: no io_uring: %s\n", err);
		return 77;
	}
	loop_free(l);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
