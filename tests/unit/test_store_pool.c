/*
 * test_store_pool.c - the store pool's scheduling: flows take turns (one
 * job each, round-robin between the flows with jobs waiting, FIFO within
 * one), so a flow with a long backlog delays a newcomer by one job, not by
 * its backlog; the queue limit holds for submit and not for resubmit;
 * detached jobs run; the stats count waiting and running jobs. One pool
 * thread is parked on a gate while the test queues, so the order the
 * thread then takes jobs in is exactly the scheduler's choice. Answers go
 * through a real outbox on a loop that is never run: store_outbox_close()
 * runs every done() on this thread. Nothing is timed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/store_pool.h"
#include "core/loop.h"

#define MAX_ORDER 64

struct tjob {
	struct store_job base;
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
	struct store_outbox *ob;
	struct store_pool *p;
} T = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void
trun(struct store_job *sj)
{
	struct tjob *j = (struct tjob *)sj;

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
tdone(struct store_job *sj)
{
	T.done++;
	free(sj);
}

/* A detached job frees itself. */
static void
trun_detached(struct store_job *sj)
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
	assert_non_null(T.ob = store_outbox_new(T.l));
	T.p = store_pool_new(1, 8, &err);
	assert_non_null(T.p);
	T.open = T.parked = false;
	T.n = T.done = 0;
	memset(T.order, 0, sizeof(T.order));
	return 0;
}

static void release(void);

static int
teardown(void **state)
{
	(void)state;
	release(); /* a failed test may have left the thread parked */
	store_outbox_close(&T.ob);
	store_pool_free(&T.p);
	loop_free(T.l);
	return 0;
}

/* Park the pool's only thread on a gate job. */
static void
park(void)
{
	struct tjob *g = tjob('g', 999);

	g->gate = true;
	assert_int_equal(store_pool_submit(T.p, T.ob, &g->base), 0);
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

	assert_int_equal(store_pool_submit(T.p, T.ob, &j->base), 0);
}

/* Wait until every queued job ran: close the outbox (done() here). */
static void
drain(void)
{
	store_outbox_close(&T.ob);
	T.ob = store_outbox_new(T.l);
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
	struct store_pool_stats st;

	(void)state;
	park();
	for (int i = 0; i < 8; i++)
		submit((char)('0' + i), (uint64_t)i);
	store_pool_stats(T.p, &st);
	assert_int_equal(st.queued, 8);
	assert_int_equal(st.running, 1);
	assert_int_equal(st.flows, 8);
	/* the queue is full for new work, not for work already admitted */
	assert_int_equal(store_pool_submit(T.p, T.ob, &over->base), -1);
	free(over);
	assert_int_equal(store_pool_resubmit(T.p, T.ob, &again->base), 0);
	store_pool_stats(T.p, &st);
	assert_int_equal(st.queued, 9);
	assert_int_equal(st.flows, 8); /* flow 5 already waited */
	release();
	drain();
	/* flow 5's second job waited for its flow's next turn */
	assert_string_equal(T.order, "01234567r");
	store_pool_stats(T.p, &st);
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
	assert_int_equal(store_pool_detach(T.p, &d->base), 0);
	submit('s', 0);
	release();
	drain();
	/* the same flow: FIFO */
	assert_string_equal(T.order, "ds");
	assert_int_equal(T.done, 2); /* the gate and 's'; 'd' has no done */
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
