/*
 * test_conn_limit.c - the session caps at accept (core/conn_limit.c) on a
 * real loop over loopback TCP: a listener's cap hands the surplus to the
 * handler's on_over instead of on_open (or closes it at accept when the
 * handler has none); at the descriptor cap the oldest accepted connection
 * the handler lets go is cut for the new one, a busy one is skipped, and
 * with nothing to cut the new one is closed at accept; every count is back
 * to zero once the connections are gone; a worker with nothing of its own
 * to cut asks another worker to cut its oldest. Clients connect one at a time,
 * each after the server has dealt with the one before, so the order of
 * accepts is the order of connects. Skips (77) where io_uring is
 * unavailable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/conn_limit.h"
#include "core/daemon.h"
#include "core/loop.h"

#define MAX_CONNS 8

struct t {
	struct loop *l;
	struct cfg_addr addr;
	struct conn_limits limits;
	struct conn_gauge gauge;
	int want;			  /* clients to connect in all */
	int connected;			  /* clients connected so far */
	int handled;			  /* the server dealt with that many */
	int opened, over;		  /* on_open, on_over calls */
	int refused;			  /* closed at accept (never opened) */
	int evicted[MAX_CONNS], nevicted; /* their numbers, 1-based */
	int busy;			  /* this one says it may not be cut */
};

static struct t T;

/* A listening socket on a free loopback port, its address in *a. */
static int
listen_any_at(struct cfg_addr *a)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
	socklen_t len = sizeof(*in);
	const char *err = NULL;
	int fd;

	assert_int_equal(cfg_parse_addr("127.0.0.1:1", a), 0);
	in->sin_port = 0;
	fd = daemon_listen(a, false, &err);
	assert_int_not_equal(fd, -1);
	assert_int_equal(getsockname(fd, (struct sockaddr *)in, &len), 0);
	a->len = len;
	return fd;
}

static void
client_data(struct conn *c, const char *p, size_t n)
{
	(void)c;
	(void)p;
	(void)n;
}

static const struct conn_handler client_handler = { .on_data = client_data };

static void
next_client(void)
{
	if (++T.handled >= T.want) {
		loop_stop(T.l, 0);
		return;
	}
	T.connected++;
	assert_non_null(conn_connect(T.l, (struct sockaddr *)&T.addr.ss,
	    T.addr.len, &client_handler, NULL));
}

static void
srv_open(struct conn *c)
{
	assert_false(conn_over_limit(c));
	conn_set_ctx(c, (void *)(uintptr_t)++T.opened);
	next_client();
}

static void
srv_over(struct conn *c)
{
	assert_true(conn_over_limit(c));
	T.over++;
	conn_write(c, "busy\r\n", 6);
	conn_close(c);
	next_client();
}

static void
srv_close(struct conn *c, enum conn_reason why)
{
	uintptr_t n = (uintptr_t)conn_ctx(c);

	if (why != CR_LIMIT)
		return;
	if (n == 0) { /* at accept, before any open */
		T.refused++;
		next_client();
	} else if (T.nevicted < MAX_CONNS) {
		T.evicted[T.nevicted++] = (int)n;
	}
}

static bool
srv_evictable(const struct conn *c)
{
	return (int)(uintptr_t)conn_ctx(c) != T.busy;
}

static const struct conn_handler greeter = {
	.on_open = srv_open,
	.on_close = srv_close,
	.on_over = srv_over,
	.evictable = srv_evictable,
};

static const struct conn_handler mute = {
	.on_open = srv_open,
	.on_close = srv_close,
	.evictable = srv_evictable,
};

/* A loop with the caps given and one listener counted against them;
 * want clients, one after another. */
static void
run(const struct conn_handler *h, unsigned fd_cap, unsigned listener_max,
    int want)
{
	struct loop_conf conf = { .buf_count = 64, .buf_size = 4096 };
	struct listener *li;
	const char *err = NULL;
	int fd;

	memset(&T, 0, sizeof(T));
	atomic_init(&T.limits.conns.cur, 0);
	atomic_init(&T.limits.sessions.cur, 0);
	atomic_init(&T.gauge.cur, 0);
	T.limits.conns.max = fd_cap;
	T.gauge.max = listener_max;
	T.limits.m_max = T.limits.m_fd_cap = T.limits.m_open = -1;
	T.limits.m_nofile = -1;
	conf.limits = &T.limits;
	if ((T.l = loop_new(&conf, &err)) == NULL) {
		print_message("skip: %s\n", err);
		exit(77);
	}
	fd = listen_any_at(&T.addr);
	assert_non_null(li = loop_listen(T.l, fd, "t", h, NULL));
	listener_set_limit(li, &T.gauge);
	T.want = want;
	T.busy = -1;
}

static void
go(void)
{
	T.connected = 1;
	assert_non_null(conn_connect(T.l, (struct sockaddr *)&T.addr.ss,
	    T.addr.len, &client_handler, NULL));
	assert_int_equal(loop_run(T.l), 0);
	/* every connection gone: every count given back */
	assert_int_equal(atomic_load(&T.limits.conns.cur), 0);
	assert_int_equal(atomic_load(&T.limits.sessions.cur), 0);
	assert_int_equal(atomic_load(&T.gauge.cur), 0);
	loop_free(T.l);
}

static void
test_listener_cap_says_over(void **state)
{
	(void)state;
	run(&greeter, 0, 2, 4);
	go();
	assert_int_equal(T.opened, 2);
	assert_int_equal(T.over, 2);
	assert_int_equal(T.refused, 0);
	assert_int_equal(T.nevicted, 0);
}

static void
test_listener_cap_without_words(void **state)
{
	(void)state;
	run(&mute, 0, 1, 3);
	go();
	assert_int_equal(T.opened, 1);
	assert_int_equal(T.over, 0);
	assert_int_equal(T.refused, 2);
}

static void
test_fd_cap_cuts_oldest_not_busy(void **state)
{
	(void)state;
	run(&greeter, 3, 0, 5);
	T.busy = 1; /* the oldest waits for its login: kept */
	go();
	assert_int_equal(T.opened, 5);
	assert_int_equal(T.refused, 0);
	assert_int_equal(T.nevicted, 2);
	assert_int_equal(T.evicted[0], 2);
	assert_int_equal(T.evicted[1], 3);
}

static void
test_fd_cap_cuts_in_age_order(void **state)
{
	(void)state;
	run(&greeter, 2, 0, 4);
	go();
	assert_int_equal(T.opened, 4);
	assert_int_equal(T.nevicted, 2);
	assert_int_equal(T.evicted[0], 1);
	assert_int_equal(T.evicted[1], 2);
}

static bool
never(const struct conn *c)
{
	(void)c;
	return false;
}

static const struct conn_handler stubborn = {
	.on_open = srv_open,
	.on_close = srv_close,
	.on_over = srv_over,
	.evictable = never,
};

static void
test_fd_cap_all_busy_refuses_new(void **state)
{
	(void)state;
	run(&stubborn, 2, 0, 4);
	go();
	assert_int_equal(T.opened, 2);
	assert_int_equal(T.refused, 2);
	assert_int_equal(T.nevicted, 0);
}

/* ---- two workers: one asks the other to make room ------------------ */

struct two {
	struct loop *l[2];
	struct loop *loops[2];
	struct cfg_addr addr[2];
	pthread_t thread[2];
	struct conn_limits limits;
	struct conn_gauge gauge;
	atomic_int opened[2], evicted[2], refused, ready;
};

static struct two W;

static int
side_of(const struct conn *c)
{
	return (int)(uintptr_t)listener_ctx(conn_listener(c));
}

static void
two_open(struct conn *c)
{
	conn_set_ctx(c,
	    (void *)(uintptr_t)(atomic_fetch_add(&W.opened[side_of(c)], 1) +
		1));
}

static void
two_close(struct conn *c, enum conn_reason why)
{
	if (why != CR_LIMIT)
		return;
	if (conn_ctx(c) == NULL)
		atomic_fetch_add(&W.refused, 1);
	else
		atomic_fetch_add(&W.evicted[side_of(c)], 1);
}

static bool
always(const struct conn *c)
{
	(void)c;
	return true;
}

static const struct conn_handler two_handler = {
	.on_open = two_open,
	.on_close = two_close,
	.evictable = always,
};

/* One worker: its loop is made on the thread that runs it (the ring is
 * single-issuer), with one listener counted against the shared caps. */
static void *
two_run(void *arg)
{
	int i = (int)(uintptr_t)arg;
	struct loop_conf conf = { .buf_count = 64,
		.buf_size = 4096,
		.index = (unsigned)i,
		.limits = &W.limits };
	struct listener *li;
	const char *err = NULL;
	struct loop *l;

	if ((l = loop_new(&conf, &err)) == NULL) {
		print_message("skip: %s\n", err);
		exit(77);
	}
	assert_non_null(li = loop_listen(l, listen_any_at(&W.addr[i]),
			    i ? "b" : "a", &two_handler, (void *)(uintptr_t)i));
	listener_set_limit(li, &W.gauge);
	W.l[i] = l;
	__atomic_store_n(&W.loops[i], l, __ATOMIC_RELEASE);
	atomic_store(&W.ready, 1 + atomic_load(&W.ready));
	assert_int_equal(loop_run(l), 0);
	return NULL;
}

static void
two_stop(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l, 0);
}

/* A blocking client of side i's listener. */
static int
two_client(int i)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_not_equal(fd, -1);
	assert_int_equal(
	    connect(fd, (struct sockaddr *)&W.addr[i].ss, W.addr[i].len), 0);
	return fd;
}

/* Wait until *v reaches want; a minute without is a hang, not slowness. */
static void
two_wait(atomic_int *v, int want)
{
	struct timespec ts = { 0, 2000000 };

	for (int i = 0; atomic_load(v) < want; i++) {
		if (i == 30000)
			fail_msg("still %d, not %d, after a minute",
			    atomic_load(v), want);
		nanosleep(&ts, NULL);
	}
}

static bool
peer_closed(int fd)
{
	char ch;
	struct timeval tv = { 30, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return recv(fd, &ch, 1, 0) == 0;
}

static void
test_fd_cap_asks_another_worker(void **state)
{
	int a1, a2, b1;

	(void)state;
	memset(&W, 0, sizeof(W));
	atomic_init(&W.limits.conns.cur, 0);
	atomic_init(&W.limits.sessions.cur, 0);
	atomic_init(&W.gauge.cur, 0);
	W.limits.conns.max = 2;
	W.limits.slack = 2;
	W.limits.m_max = W.limits.m_fd_cap = W.limits.m_open = -1;
	W.limits.m_nofile = -1;
	conn_limits_loops(&W.limits, W.loops, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_create(&W.thread[i], NULL, two_run,
				     (void *)(uintptr_t)i),
		    0);
		two_wait(&W.ready, i + 1);
	}
	/* worker a takes the whole cap with two silent connections */
	a1 = two_client(0);
	two_wait(&W.opened[0], 1);
	a2 = two_client(0);
	two_wait(&W.opened[0], 2);
	/* one more at worker b, which has nothing young of its own: a cuts
	 * its oldest for it, and nothing is refused */
	b1 = two_client(1);
	two_wait(&W.opened[1], 1);
	two_wait(&W.evicted[0], 1);
	assert_true(peer_closed(a1));
	assert_int_equal(atomic_load(&W.refused), 0);
	assert_int_equal(atomic_load(&W.evicted[1]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(loop_post(W.l[i], two_stop, NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(W.thread[i], NULL);
	assert_int_equal(atomic_load(&W.limits.conns.cur), 0);
	assert_int_equal(atomic_load(&W.gauge.cur), 0);
	for (int i = 0; i < 2; i++)
		loop_free(W.l[i]);
	close(a1);
	close(a2);
	close(b1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listener_cap_says_over),
		cmocka_unit_test(test_listener_cap_without_words),
		cmocka_unit_test(test_fd_cap_cuts_oldest_not_busy),
		cmocka_unit_test(test_fd_cap_cuts_in_age_order),
		cmocka_unit_test(test_fd_cap_all_busy_refuses_new),
		cmocka_unit_test(test_fd_cap_asks_another_worker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
