/*
 * test_loop.c - the io_uring loop and connections over real loopback TCP:
 * echo of 1 MiB (through conn_write() and conn_write_buf()),
 * back-pressure with pause/resume, timers (ordering and lazy re-arm, of
 * conns and of their own), teardown exactly once, loop_post from another
 * thread and drain on stop, loop_watch_fd (chunked reads, EOF, unwatch
 * from outside and from inside the callback), loop_poll_fd
 * (level-triggered, changing events, unpoll inside and outside the
 * callback with the fd closed at once), PROXY v1/v2 listeners (peer taken
 * from the header, split headers, no header and untrusted sources closed
 * before on_open), the hangup watch of a paused connection (a FIN ends it
 * at once; a watch turned off leaves the FIN to the receive path after
 * resume), and that a conn's queued ops never reach the next file to get
 * its descriptor number. Skips (77) where io_uring is unavailable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/timer.h"
#include "proto/proxy_proto.h"

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
	struct loop_conf conf = { .out_high = out_high,
		.buf_count = 64,
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
	T.client = conn_connect(T.l, (struct sockaddr *)&T.addr.ss, T.addr.len,
	    &client_handler, NULL);
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
	    T.addr.len, &timer_handler, (void *)'a'));
	assert_non_null(conn_connect(T.l, (struct sockaddr *)&T.addr.ss,
	    T.addr.len, &timer_handler, (void *)'b'));
	assert_int_equal(loop_run(T.l), 0);
	assert_int_equal(T.norder, 2);
	assert_memory_equal(T.order, "ba", 2);
	loop_free(T.l);
}

/* ---- timers of their own, not tied to a conn ---------------------- */

struct tt {
	struct timer a, b, c;
	char order[8];
	int n;
};

static struct tt TT;

static void
tt_fired(struct timer *t, void *arg)
{
	char name = (char)(uintptr_t)arg;

	TT.order[TT.n++] = name;
	assert_false(timer_armed(t)); /* stopped before the call */
	if (name == 'c')
		assert_int_equal(timer_set(&TT.c, 25), 0); /* again, later */
	if (name == 'a')
		timer_stop(&TT.c); /* before its second turn */
	if (name == 'b')
		loop_stop(t->loop, 0);
}

static void
test_own_timers(void **state)
{
	struct loop *l = new_loop(0);

	memset(&TT, 0, sizeof(TT));
	timer_init(&TT.a, l, tt_fired, (void *)'a');
	timer_init(&TT.b, l, tt_fired, (void *)'b');
	timer_init(&TT.c, l, tt_fired, (void *)'c');
	assert_false(timer_armed(&TT.a));
	assert_int_equal(timer_set(&TT.a, 30), 0);
	assert_int_equal(timer_set(&TT.b, 10), 0);
	assert_int_equal(timer_set(&TT.b, 60), 0); /* lazily later */
	assert_int_equal(timer_set(&TT.c, 20), 0);
	assert_true(timer_deadline(&TT.b) >= loop_now(l) + 60);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(TT.n, 3);
	assert_memory_equal(TT.order, "cab", 3);
	assert_false(timer_armed(&TT.c));
	timer_set(&TT.a, 0); /* 0 stops: harmless on a stopped timer */
	loop_free(l);
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
	    T.addr.len, &writer_handler, NULL));
	assert_int_equal(loop_run(T.l), 0);
	assert_int_equal(abort_closes, 1);
	loop_free(T.l);
}

/* ---- a closed descriptor's number is never reached by its ops ------ */

/* The victim writes a secret and is aborted in the same callback, while
 * the SEND that names its descriptor still waits in the submission queue;
 * then a new pair of sockets takes the lowest free numbers, as another
 * thread's accept() would. The secret must not come out of the new pair
 * (issue 8: a close() at teardown handed the number over at once). */
static int reuse_pair[2] = { -1, -1 };

static void
victim_open(struct conn *c)
{
	assert_int_equal(conn_write(c, "SECRET", 6), 0);
	conn_abort(c, CR_NONE);
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, reuse_pair), 0);
	loop_stop(conn_loop(c), 0);
}

static const struct conn_handler victim_handler = {
	.on_open = victim_open,
};

static void
test_fd_reuse_after_abort(void **state)
{
	char got[16];
	int lfd, cfd;

	memset(&T, 0, sizeof(T));
	T.l = new_loop(0);
	lfd = listen_any(&T);
	assert_non_null(loop_listen(T.l, lfd, "t", &victim_handler, NULL));
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(
	    connect(cfd, (struct sockaddr *)&T.addr.ss, T.addr.len), 0);
	assert_int_equal(loop_run(T.l), 0);
	loop_free(T.l);
	assert_int_not_equal(reuse_pair[0], -1);
	/* nothing was sent into the pair from the old conn's SEND ... */
	assert_int_equal(read(reuse_pair[1], got, sizeof(got)), -1);
	/* ... and what goes into it now is still there to read */
	assert_int_equal(write(reuse_pair[1], "ping", 4), 4);
	assert_int_equal(read(reuse_pair[0], got, sizeof(got)), 4);
	close(reuse_pair[0]);
	close(reuse_pair[1]);
	close(cfd);
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
	    T.addr.len, &hw_client, NULL));
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
	    &refused_handler, NULL));
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

/* ---- PROXY protocol listeners --------------------------------------- */

struct px {
	struct loop *l;
	struct cfg_addr trusted, stranger;
	int opened;
	char reply[64];
};

static struct px X;

static void
px_data(struct conn *c, const char *p, size_t n)
{
	char line[80];
	socklen_t len;
	const struct sockaddr *sa = conn_peer_addr(c, &len);

	/* the payload after the header, then who the conn says it is */
	assert_true(n >= 5 && memcmp(p, "hello", 5) == 0);
	assert_non_null(sa);
	snprintf(line, sizeof(line), "%s %s\n", conn_peer(c),
	    sa->sa_family == AF_INET6 ? "v6" : "v4");
	conn_write(c, line, strlen(line));
	conn_close(c);
}

static void
px_open(struct conn *c)
{
	X.opened++;
}

static const struct conn_handler px_handler = {
	.on_open = px_open,
	.on_data = px_data,
};

/* A client on its own thread: send the parts (with a pause between, so
 * a header can arrive split), read until EOF. */
static void
px_client(const struct cfg_addr *a, const char *p1, size_t n1, const char *p2,
    size_t n2, char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t r;

	assert_int_equal(connect(fd, (const struct sockaddr *)&a->ss, a->len),
	    0);
	assert_int_equal(write(fd, p1, n1), (ssize_t)n1);
	if (n2) {
		usleep(20000);
		(void)write(fd, p2, n2); /* may fail: refused already */
	}
	while (got + 1 < cap && (r = read(fd, out + got, cap - got - 1)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(fd);
}

static void
px_stop(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l, 1000);
}

static void *
px_clients(void *arg)
{
	static const char v1[] = "PROXY TCP4 192.0.2.1 192.0.2.2 5000 143\r\n"
				 "hello";
	struct sockaddr_in6 src = { .sin6_family = AF_INET6,
		.sin6_port = htons(6000) };
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6,
		.sin6_port = htons(993) };
	char hdr[PROXY_V2_MAX_WRITE + 8], out[64];
	size_t n;

	(void)arg;
	px_client(&X.trusted, v1, sizeof(v1) - 1, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "192.0.2.1:5000 v4\n");
	/* v2, IPv6, split inside the header */
	inet_pton(AF_INET6, "2001:db8::7", &src.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::1", &dst.sin6_addr);
	n = proxy_proto_write_v2(hdr, sizeof(hdr), (struct sockaddr *)&src,
	    (struct sockaddr *)&dst);
	assert_true(n > 16);
	memcpy(hdr + n, "hello", 5);
	px_client(&X.trusted, hdr, 10, hdr + 10, n + 5 - 10, out, sizeof(out));
	assert_string_equal(out, "[2001:db8::7]:6000 v6\n");
	/* no header at all, and a source outside proxy_nets: closed */
	px_client(&X.trusted, "a LOGIN x y\r\n", 13, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "");
	px_client(&X.stranger, v1, sizeof(v1) - 1, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "");
	loop_post(X.l, px_stop, NULL);
	return NULL;
}

/* Our own outgoing conn with a PROXY v2 preamble, as ringgate sends one
 * to a back end: the header goes out first, in the clear. */
static void
pre_data(struct conn *c, const char *p, size_t n)
{
	size_t have = strlen(X.reply);

	assert_true(have + n < sizeof(X.reply));
	memcpy(X.reply + have, p, n);
	X.reply[have + n] = '\0';
}

static const struct conn_handler pre_handler = {
	.on_data = pre_data,
};

static void
pre_connect(struct px *x)
{
	struct sockaddr_in src = { .sin_family = AF_INET,
		.sin_port = htons(7000) };
	struct sockaddr_in dst = { .sin_family = AF_INET,
		.sin_port = htons(143) };
	char hdr[PROXY_V2_MAX_WRITE];
	struct conn *c;
	size_t n;

	inet_pton(AF_INET, "198.51.100.9", &src.sin_addr);
	inet_pton(AF_INET, "198.51.100.1", &dst.sin_addr);
	n = proxy_proto_write_v2(hdr, sizeof(hdr), (struct sockaddr *)&src,
	    (struct sockaddr *)&dst);
	c = conn_connect(x->l, (struct sockaddr *)&x->trusted.ss,
	    x->trusted.len, &pre_handler, NULL);
	assert_non_null(c);
	assert_int_equal(conn_write(c, "hello", 5), 0);
	/* after a write it is too late for a preamble */
	assert_int_equal(conn_send_preamble(c, hdr, n), -1);
	conn_abort(c, CR_NONE);
	c = conn_connect(x->l, (struct sockaddr *)&x->trusted.ss,
	    x->trusted.len, &pre_handler, NULL);
	assert_non_null(c);
	assert_int_equal(conn_send_preamble(c, hdr, n), 0);
	assert_int_equal(conn_write(c, "hello", 5), 0);
}

static void
test_proxy_listener(void **state)
{
	struct net lo, ten;
	struct listener *li;
	pthread_t th;
	struct t saved;
	int fd;

	memset(&X, 0, sizeof(X));
	X.l = new_loop(0);
	assert_int_equal(net_parse("127.0.0.0/8", 11, &lo), 0);
	assert_int_equal(net_parse("10.0.0.0/8", 10, &ten), 0);
	saved = T;
	fd = listen_any(&T);
	X.trusted = T.addr;
	assert_non_null(li = loop_listen(X.l, fd, "px", &px_handler, NULL));
	listener_set_proxy(li, &lo, 1);
	fd = listen_any(&T);
	X.stranger = T.addr;
	assert_non_null(li = loop_listen(X.l, fd, "px2", &px_handler, NULL));
	listener_set_proxy(li, &ten, 1);
	T = saved;
	pre_connect(&X);
	assert_int_equal(pthread_create(&th, NULL, px_clients, NULL), 0);
	assert_int_equal(loop_run(X.l), 0);
	pthread_join(th, NULL);
	assert_int_equal(X.opened, 3);
	assert_string_equal(X.reply, "198.51.100.9:7000 v4\n");
	loop_free(X.l);
}

/* ---- polled fds ----------------------------------------------------- */

struct pt {
	struct loop *l;
	struct fd_poll *p, *q;
	struct timer t;
	int a[2], b[2];
	char got[8];
	int calls, qcalls;
	unsigned rev[8];
};

static struct pt P;

static void
pt_tick(struct timer *t, void *arg)
{
	(void)t;
	(void)arg;
	/* q waits for input that never comes: unpoll it from outside its
	 * callback and close its fd at once */
	loop_unpoll_fd(&P.q);
	assert_null(P.q);
	close(P.b[0]);
	assert_int_equal(write(P.a[1], "c", 1), 1);
}

static void
pt_cb(void *ctx, unsigned revents)
{
	(void)ctx;
	assert_true(P.calls < 8);
	P.rev[P.calls++] = revents;
	if (revents & POLLIN)
		assert_int_equal(read(P.a[0], P.got + strlen(P.got), 1), 1);
	switch (P.calls) {
	case 2: /* "ab" read one at a time: level-triggered */
		loop_poll_set(P.p, POLLOUT);
		break;
	case 3:
		loop_poll_set(P.p, POLLIN);
		assert_int_equal(timer_set(&P.t, 30), 0);
		break;
	case 4:
		loop_unpoll_fd(&P.p);
		close(P.a[0]);
		loop_stop(P.l, 0);
		break;
	}
}

static void
pt_never(void *ctx, unsigned revents)
{
	(void)ctx;
	(void)revents;
	P.qcalls++;
}

static void
test_poll_fd(void **state)
{
	memset(&P, 0, sizeof(P));
	P.l = new_loop(0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, P.a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, P.b), 0);
	timer_init(&P.t, P.l, pt_tick, NULL);
	assert_int_equal(write(P.a[1], "ab", 2), 2);
	assert_non_null(P.p = loop_poll_fd(P.l, P.a[0], POLLIN, pt_cb, NULL));
	assert_non_null(
	    P.q = loop_poll_fd(P.l, P.b[0], POLLIN, pt_never, NULL));
	assert_int_equal(loop_run(P.l), 0);
	assert_int_equal(P.calls, 4);
	assert_string_equal(P.got, "abc");
	assert_int_equal(P.rev[0], POLLIN);
	assert_int_equal(P.rev[1], POLLIN);
	assert_int_equal(P.rev[2], POLLOUT);
	assert_int_equal(P.rev[3], POLLIN);
	assert_int_equal(P.qcalls, 0);
	loop_free(P.l);
	close(P.a[1]);
	close(P.b[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_1mib),
		cmocka_unit_test(test_echo_write_buf),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_own_timers),
		cmocka_unit_test(test_abort_once),
		cmocka_unit_test(test_fd_reuse_after_abort),
		cmocka_unit_test(test_post),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_watch_fd),
		cmocka_unit_test(test_poll_fd),
		cmocka_unit_test(test_proxy_listener),
		cmocka_unit_test(test_hangup_watch),
		cmocka_unit_test(test_hangup_watch_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
