/*
 * test_loop.c - the io_uring loop and connections over real loopback TCP:
 * echo of 1 MiB (through conn_write() and conn_write_buf()),
 * back-pressure with pause/resume, timers (ordering and lazy re-arm),
 * teardown exactly once, loop_post from another thread and drain on
 * stop, loop_watch_fd (chunked reads, EOF, unwatch from outside and from
 * inside the callback), and the hangup watch of a paused connection (a
 * FIN ends it at once; a watch turned off leaves the FIN to the receive
 * path after resume). Skips (77) where io_uring is unavailable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/loop.h"

struct t {
	struct loop *l;
	struct cfg_addr addr;
	struct conn *client, *server;
	size_t sent, recvd, want;
	unsigned char *pattern;
	int opened, closed_client, closed_server, drains, timers;
	char order[8];
	int norder;
	bool bad_byte;
};

static struct t T;

/* A listening socket on 127.0.0.1 with a kernel-chosen port; t->addr
 * gets the address to connect to. */
static int
listen_any(struct t *t)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&t->addr.ss;
	socklen_t len = sizeof(*in);
	const char *err = NULL;
	int fd;

	assert_int_equal(cfg_parse_addr("127.0.0.1:1", &t->addr), 0);
	in->sin_port = 0;
	fd = daemon_listen(&t->addr, false, &err);
	assert_int_not_equal(fd, -1);
	assert_int_equal(getsockname(fd, (struct sockaddr *)in, &len), 0);
	t->addr.len = len;
	return fd;
}

static struct loop *
new_loop(size_t out_high)
{
	struct loop_conf conf = { .out_high = out_high, .buf_count = 64,
		.buf_size = 4096 };
	const char *err = NULL;
	struct loop *l = loop_new(&conf, &err);

	if (l == NULL) {
		print_message("skip: %s\n", err);
		exit(77);
	}
	return l;
}

/* ---- echo --------------------------------------------------------- */

static void
echo_data(struct conn *c, const char *p, size_t n)
{
	conn_write(c, p, n);
	if (conn_out_full(c))
		conn_pause(c);
}

static void
echo_drain(struct conn *c)
{
	conn_resume(c);
}

static void
server_close(struct conn *c, enum conn_reason why)
{
	T.closed_server++;
}

static const struct conn_handler echo_handler = {
	.on_data = echo_data,
	.on_drain = echo_drain,
	.on_close = server_close,
};

/* The same echo through conn_write_buf(): storage taken when nothing
 * waits, copied otherwise; the buffer comes back empty every time. */
static struct buf echo_b;

static void
echo_buf_data(struct conn *c, const char *p, size_t n)
{
	assert_int_equal(buf_append(&echo_b, p, n), 0);
	assert_int_equal(conn_write_buf(c, &echo_b), 0);
	assert_int_equal(buf_used(&echo_b), 0);
	if (conn_out_full(c))
		conn_pause(c);
}

static const struct conn_handler echo_buf_handler = {
	.on_data = echo_buf_data,
	.on_drain = echo_drain,
	.on_close = server_close,
};

static void
client_push(struct conn *c)
{
	while (T.sent < T.want && !conn_out_full(c)) {
		size_t n = T.want - T.sent > 3000 ? 3000 : T.want - T.sent;

		conn_write(c, T.pattern + T.sent, n);
		T.sent += n;
	}
}

static void
client_open(struct conn *c)
{
	T.opened++;
	client_push(c);
}

static void
client_data(struct conn *c, const char *p, size_t n)
{
	if (memcmp(p, T.pattern + T.recvd, n) != 0)
		T.bad_byte = true;
	T.recvd += n;
	if (T.recvd == T.want)
		conn_close(c);
}

static void
client_drain(struct conn *c)
{
	T.drains++;
	client_push(c);
}

static void
client_close(struct conn *c, enum conn_reason why)
{
	T.closed_client++;
	loop_stop(conn_loop(c), 1000);
}

static const struct conn_handler client_handler = {
	.on_open = client_open,
	.on_data = client_data,
	.on_drain = client_drain,
	.on_close = client_close,
};

static void
run_echo(const struct conn_handler *server)
{
	int fd;

	memset(&T, 0, sizeof(T));
	T.l = new_loop(64 * 1024);
	fd = listen_any(&T);
	assert_non_null(loop_listen(T.l, fd, "test", server, NULL));
	T.want = 1 << 20;
	T.pattern = malloc(T.want);
	for (size_t i = 0; i < T.want; i++)
		T.pattern[i] = (unsigned char)(i * 7 + (i >> 10));
	T.client = conn_connect(T.l, (struct sockaddr *)&T.addr.ss,
	    T.addr.len, "client", &client_handler, NULL);
	assert_non_null(T.client);
	assert_int_equal(loop_run(T.l), 0);
	assert_int_equal(T.opened, 1);
	assert_int_equal(T.recvd, T.want);
	assert_false(T.bad_byte);
	assert_int_equal(T.closed_client, 1);
	assert_int_equal(T.closed_server, 1);
	assert_true(T.drains > 0); /* 1 MiB through a 64 KiB queue */
	loop_free(T.l);
	free(T.pattern);
}

static void
test_echo_1mib(void **state)
{
	run_echo(&echo_handler);
}

static void
test_echo_write_buf(void **state)
{
	run_echo(&echo_buf_handler);
	buf_free(&echo_b);
}

/* ---- timers ------------------------------------------------------- */

static void
timer_fired(struct conn *c)
{
	T.order[T.norder++] = (char)(uintptr_t)conn_ctx(c);
	if (T.norder == 1) {
		/* the other conn's timer was pushed later: it has not fired */
		conn_set_timer(c, 0);
	}
	if (T.norder == 2)
		loop_stop(conn_loop(c), 0);
}

static void
timer_open(struct conn *c)
{
	if (conn_ctx(c) == (void *)'a') {
		conn_set_timer(c, 10);
		conn_set_timer(c, 300); /* lazy re-arm to a later deadline */
	} else {
		conn_set_timer(c, 100);
	}
}

static const struct conn_handler timer_handler = {
	.on_open = timer_open,
	.on_timer = timer_fired,
};

static const struct conn_handler quiet_handler = { 0 };

static void
test_timers(void **state)
{
	int fd;

	memset(&T, 0, sizeof(T));
	T.l = new_loop(0);
	fd = listen_any(&T);
	assert_non_null(loop_listen(T.l, fd, "t", &quiet_handler, NULL));
	assert_non_null(conn_connect(T.l, (struct sockaddr *)&T.addr.ss,
	    T.addr.len, "a", &timer_handler, (void *)'a'));
	assert_non_null(conn_connect(T.l, (struct sockaddr *)&T.addr.ss,
	    T.addr.len, "b", &timer_handler, (void *)'b'));
	assert_int_equal(loop_run(T.l), 0);
	assert_int_equal(T.norder, 2);
	assert_memory_equal(T.order, "ba", 2);
	loop_free(T.l);
}

/* ---- teardown: abort inside on_data, on_close exactly once -------- */

static int abort_closes;

static void
abort_data(struct conn *c, const char *p, size_t n)
{
	conn_abort(c, CR_OVERFLOW);
	conn_abort(c, CR_OVERFLOW); /* idempotent */
	conn_close(c);
	assert_int_equal(conn_write(c, "x", 1), -1);
}

static void
abort_close(struct conn *c, enum conn_reason why)
{
	abort_closes++;
	assert_int_equal(why, CR_OVERFLOW);
}

static const struct conn_handler abort_handler = {
	.on_data = abort_data,
	.on_close = abort_close,
};

static void
writer_open(struct conn *c)
{
	conn_write(c, "hello", 5);
}

static void
writer_close(struct conn *c, enum conn_reason why)
{
	loop_stop(conn_loop(c), 0);
}

static const struct conn_handler writer_handler = {
	.on_open = writer_open,
	.on_close = writer_close,
};

static void
test_abort_once(void **state)
{
	int fd;

	memset(&T, 0, sizeof(T));
	abort_closes = 0;
	T.l = new_loop(0);
	fd = listen_any(&T);
	assert_non_null(loop_listen(T.l, fd, "t", &abort_handler, NULL));
	assert_non_null(conn_connect(T.l, (struct sockaddr *)&T.addr.ss,
	    T.addr.len, "w", &writer_handler, NULL));
	assert_int_equal(loop_run(T.l), 0);
	assert_int_equal(abort_closes, 1);
	loop_free(T.l);
}

/* ---- hangup watch while paused ------------------------------------ */

static struct {
	bool keep_watch; /* false: turn the watch off again at once */
	enum conn_reason why;
	char order[8];
	int n;
} HW;

static void
hw_data(struct conn *c, const char *p, size_t n)
{
	/* a long command starts: no more reading, watch for the peer */
	conn_pause(c);
	conn_watch_hangup(c, true);
	if (!HW.keep_watch)
		conn_watch_hangup(c, false);
	conn_set_timer(c, HW.keep_watch ? 5000 : 300);
	HW.order[HW.n++] = 'D';
}

static void
hw_timer(struct conn *c)
{
	HW.order[HW.n++] = 'T';
	conn_set_timer(c, 5000);
	if (HW.keep_watch)
		conn_abort(c, CR_TIMEOUT); /* the watch missed the FIN */
	else
		conn_resume(c); /* the receive path finds the FIN */
}

static void
hw_close(struct conn *c, enum conn_reason why)
{
	HW.order[HW.n++] = 'C';
	HW.why = why;
	loop_stop(conn_loop(c), 0);
}

static const struct conn_handler hw_handler = {
	.on_data = hw_data,
	.on_timer = hw_timer,
	.on_close = hw_close,
};

static void
hw_client_open(struct conn *c)
{
	conn_write(c, "long command\r\n", 14);
	conn_close(c); /* FIN after the bytes */
}

static const struct conn_handler hw_client = {
	.on_open = hw_client_open,
};

static void
run_hangup(bool keep_watch)
{
	int fd;

	memset(&T, 0, sizeof(T));
	memset(&HW, 0, sizeof(HW));
	HW.keep_watch = keep_watch;
	T.l = new_loop(0);
	fd = listen_any(&T);
	assert_non_null(loop_listen(T.l, fd, "t", &hw_handler, NULL));
	assert_non_null(conn_connect(T.l, (struct sockaddr *)&T.addr.ss,
	    T.addr.len, "c", &hw_client, NULL));
	assert_int_equal(loop_run(T.l), 0);
	loop_free(T.l);
}

static void
test_hangup_watch(void **state)
{
	run_hangup(true);
	assert_string_equal(HW.order, "DC");
	assert_int_equal(HW.why, CR_EOF);
}

static void
test_hangup_watch_off(void **state)
{
	run_hangup(false);
	assert_string_equal(HW.order, "DTC");
	assert_int_equal(HW.why, CR_EOF);
}

/* ---- loop_post from another thread -------------------------------- */

static int posted;

static void
on_post(struct loop *l, void *arg)
{
	posted += (int)(uintptr_t)arg;
	if (posted == 3)
		loop_stop(l, 0);
}

static void *
poster(void *arg)
{
	loop_post(arg, on_post, (void *)1);
	loop_post(arg, on_post, (void *)2);
	return NULL;
}

static void
test_post(void **state)
{
	struct loop *l = new_loop(0);
	pthread_t th;

	posted = 0;
	pthread_create(&th, NULL, poster, l);
	assert_int_equal(loop_run(l), 0);
	pthread_join(th, NULL);
	assert_int_equal(posted, 3);
	loop_free(l);
}

/* ---- connect failure ---------------------------------------------- */

static enum conn_reason refused_why = CR_MAX;

static void
refused_close(struct conn *c, enum conn_reason why)
{
	refused_why = why;
	loop_stop(conn_loop(c), 0);
}

static const struct conn_handler refused_handler = {
	.on_close = refused_close,
};

static void
test_connect_refused(void **state)
{
	struct loop *l = new_loop(0);
	struct sockaddr_in in = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t len = sizeof(in);

	/* a port that was free a moment ago and has no listener now */
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	close(fd);
	assert_non_null(conn_connect(l, (struct sockaddr *)&in, sizeof(in),
	    "r", &refused_handler, NULL));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(refused_why, CR_CONNECT);
	loop_free(l);
}

/* ---- watched fds ------------------------------------------------- */

struct fdt {
	char got[16];
	size_t n;
	int eof, calls_b, calls_c;
	int a_wr, c_wr;
	struct fd_watch *b, *c;
	struct loop *l;
};

static struct fdt F;

static void
on_fd_a(void *ctx, const char *p, ssize_t n)
{
	struct fdt *f = ctx;

	if (p == NULL) {
		f->eof++;
		assert_int_equal(n, 0);
		loop_stop(f->l, 0);
		return;
	}
	assert_true(n <= 4); /* the watch's buffer size */
	assert_true(f->n + (size_t)n <= sizeof(f->got));
	memcpy(f->got + f->n, p, (size_t)n);
	f->n += (size_t)n;
	if (f->n == 5) {
		close(f->a_wr); /* EOF next */
	}
}

static void
on_fd_b(void *ctx, const char *p, ssize_t n)
{
	(void)p;
	(void)n;
	((struct fdt *)ctx)->calls_b++;
}

static void
on_fd_c(void *ctx, const char *p, ssize_t n)
{
	struct fdt *f = ctx;

	(void)p;
	(void)n;
	f->calls_c++;
	/* pending input must not bring a second call once unwatched */
	assert_int_equal(write(f->c_wr, "y", 1), 1);
	loop_unwatch_fd(&f->c);
	assert_null(f->c);
}

static void
unwatch_b(struct loop *l, void *arg)
{
	struct fdt *f = arg;

	(void)l;
	loop_unwatch_fd(&f->b);
	loop_unwatch_fd(&f->b); /* NULL: no-op */
}

static void
test_watch_fd(void **state)
{
	struct loop *l = new_loop(0);
	int a[2], b[2], c[2];

	memset(&F, 0, sizeof(F));
	F.l = l;
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	assert_int_equal(pipe(c), 0);
	F.a_wr = a[1];
	F.c_wr = c[1];
	assert_non_null(loop_watch_fd(l, a[0], 4, on_fd_a, &F));
	assert_non_null(F.b = loop_watch_fd(l, b[0], 4, on_fd_b, &F));
	assert_non_null(F.c = loop_watch_fd(l, c[0], 4, on_fd_c, &F));
	assert_int_equal(write(c[1], "x", 1), 1);
	assert_int_equal(loop_post(l, unwatch_b, &F), 0);
	assert_int_equal(write(a[1], "hello", 5), 5);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(F.n, 5);
	assert_memory_equal(F.got, "hello", 5);
	assert_int_equal(F.eof, 1);
	assert_int_equal(F.calls_b, 0);
	assert_int_equal(F.calls_c, 1);
	loop_free(l);
	close(b[1]);
	close(c[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_1mib),
		cmocka_unit_test(test_echo_write_buf),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_abort_once),
		cmocka_unit_test(test_post),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_watch_fd),
		cmocka_unit_test(test_hangup_watch),
		cmocka_unit_test(test_hangup_watch_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
