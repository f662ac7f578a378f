/*
 * fuzz_session.h - the plumbing the whole-session fuzz targets
 * (fuzz_imap_session.c, fuzz_lmtp_session.c) share: dying loudly, the
 * monotonic clock, writing a set-up file, wiping a temporary tree, the
 * ephemeral loopback listener, the ringstore worker and its loop, the
 * worker loop's own thread, one client connection that sends an input
 * while draining the answers, and waiting until the worker loop has no
 * session left.
 *
 * The includer defines FUZZ_NAME (its name in messages) first. Every
 * helper is static inline: a target uses what it needs.
 */
#ifndef RG_TESTS_FUZZ_SESSION_H
#define RG_TESTS_FUZZ_SESSION_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/ringstore.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/pool.h"

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including fuzz_session.h"
#endif

static inline void
fs_die(const char *what)
{
	fprintf(stderr, FUZZ_NAME ": %s: %s\n", what, strerror(errno));
	abort();
}

static inline uint64_t
fs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void
fs_put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) == EOF)
		fs_die(path);
}

static inline int
fs_wipe_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

/* The start of every set-up: SIGPIPE ignored; no io_uring here
 * (seccomp, sysctl): nothing to fuzz, exit 77; logs to /dev/null (errors
 * a peer can cause are not interesting); a fresh temporary directory dir
 * from tmpl (a name ending in XXXXXX; on /dev/shm when there is one, so
 * fsyncs are cheap) holding an empty mail root mail. */
static inline void
fs_setup_begin(char *dir, size_t dirsz, const char *tmpl, char *mail,
    size_t mailsz)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	const char *error = NULL;
	int null_fd;

	signal(SIGPIPE, SIG_IGN);
	if (loop_probe(&error) == -1) {
		fprintf(stderr, FUZZ_NAME ": skipped: %s\n", error);
		exit(77);
	}
	if ((null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
		fs_die("/dev/null");
	log_init("fuzz", LL_ERROR, null_fd);
	snprintf(dir, dirsz, "%s/%s", base, tmpl);
	if (mkdtemp(dir) == NULL)
		fs_die("mkdtemp");
	snprintf(mail, mailsz, "%s/mail", dir);
	if (mkdir(mail, 0700) == -1)
		fs_die(mail);
}

/* Everything below dir goes; dir itself stays. */
static inline void
fs_wipe(const char *dir)
{
	nftw(dir, fs_wipe_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A listening socket on 127.0.0.1 with an ephemeral port, written to
 * *addr (core/ adopts sockets only through listeners, so a loopback TCP
 * pair stands in for a socketpair). The fd, or -1. */
static inline int
fs_listen_loopback(struct sockaddr_in *addr)
{
	socklen_t alen = sizeof(*addr);
	int fd;

	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)addr, &alen) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* On the loop thread: the worker loop for srv (64 buffers, the config's
 * output mark, metrics m) in *loop_r and its worker with an outbox in
 * *w_r, the loop's ctx. 0, or -1. */
static inline int
fs_worker_start(struct rs_server *srv, struct metrics *m, struct loop **loop_r,
    struct rs_worker **w_r)
{
	struct loop_conf lc = { .buf_count = 64,
		.out_high = srv->cf->limits.output_buffer,
		.metrics = m };
	const char *error = NULL;
	struct rs_worker *w;

	if ((*loop_r = loop_new(&lc, &error)) == NULL) {
		fprintf(stderr, FUZZ_NAME ": %s\n", error);
		return -1;
	}
	if ((*w_r = w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->srv = srv;
	w->loop = *loop_r;
	if ((w->outbox = pool_outbox_new(*loop_r)) == NULL)
		return -1;
	loop_set_ctx(*loop_r, w);
	return 0;
}

/* Wait for a non-blocking connect to finish. 0, or -1 with errno. */
static inline int
fs_connected(int fd, uint64_t deadline)
{
	struct pollfd pfd = { fd, POLLOUT, 0 };
	socklen_t len = sizeof(int);
	int err = 0;

	while (poll(&pfd, 1, 100) != 1) {
		if (fs_now_ms() > deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -1;
	errno = err;
	return err == 0 ? 0 : -1;
}

/* One connection to addr: write p[0..n) while draining the output (to
 * stderr when echo), then half-close and read to EOF. Aborts when the
 * server has not closed within session_ms. */
static inline void
fs_run_session(const struct sockaddr_in *addr, bool echo, uint64_t session_ms,
    const char *p, size_t n)
{
	uint64_t deadline = fs_now_ms() + session_ms;
	size_t off = 0;
	bool wr_open = true;
	char sink[16384];
	int fd;

	/* non-blocking from the start: libFuzzer's timer signals would
	 * interrupt a blocking connect() */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1 ||
	    (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == -1 &&
		errno != EINPROGRESS && errno != EINTR))
		fs_die("connect");
	if (fs_connected(fd, deadline) == -1)
		fs_die("connect");
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t r;

		if (wr_open && off == n) {
			shutdown(fd, SHUT_WR);
			wr_open = false;
		}
		if (wr_open)
			pfd.events |= POLLOUT;
		if (fs_now_ms() > deadline) {
			fprintf(stderr,
			    FUZZ_NAME ": the session did "
				      "not end after the client's EOF\n");
			abort();
		}
		if (poll(&pfd, 1, 100) == -1 && errno != EINTR)
			fs_die("poll");
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			r = read(fd, sink, sizeof(sink));
			if (r > 0 && echo)
				fwrite(sink, 1, (size_t)r, stderr);
			if (r == 0 ||
			    (r == -1 && errno != EAGAIN && errno != EINTR))
				break; /* closed (or reset) by the server */
		}
		if (wr_open && (pfd.revents & POLLOUT)) {
			r = send(fd, p + off, n - off, MSG_NOSIGNAL);
			if (r > 0)
				off += (size_t)r;
			else if (r == -1 && errno != EAGAIN && errno != EINTR)
				wr_open = false; /* the server hung up */
		}
	}
	close(fd);
}

/* One probe posted to the loop: count() runs on the loop thread. */
struct fs_probe {
	int (*count)(struct loop *l);
	atomic_int left;
	atomic_int done;
};

static inline void
fs_probe_run(struct loop *l, void *arg)
{
	struct fs_probe *p = arg;

	atomic_store(&p->left, p->count(l) + (int)loop_nconns(l));
	atomic_store(&p->done, 1);
}

/* Until count() (sessions, husks included) plus the loop's connections
 * is 0; aborts when that takes more than session_ms. */
static inline void
fs_wait_sessions_gone(struct loop *loop, int (*count)(struct loop *l),
    uint64_t session_ms)
{
	uint64_t deadline = fs_now_ms() + session_ms;
	struct fs_probe p = { .count = count };

	for (;;) {
		atomic_store(&p.done, 0);
		if (loop_post(loop, fs_probe_run, &p) == -1)
			fs_die("loop_post");
		while (!atomic_load(&p.done)) {
			if (fs_now_ms() > deadline) {
				fprintf(stderr, FUZZ_NAME ": loop stuck\n");
				abort();
			}
			usleep(100);
		}
		if (atomic_load(&p.left) == 0)
			return;
		if (fs_now_ms() > deadline) {
			fprintf(stderr,
			    FUZZ_NAME ": a session "
				      "outlived its connection\n");
			abort();
		}
		usleep(200);
	}
}

/* The worker loop's thread: start() runs on it first (the loop, the
 * worker, the listener: *loop set), then the loop runs until the process
 * exits. The includer keeps this in its set-up state. */
struct fs_loop_thread {
	int (*start)(void);
	struct loop **loop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready; /* 0 not yet, 1 running, -1 failed */
};

static inline void *
fs_loop_main(void *arg)
{
	struct fs_loop_thread *t = arg;
	int ok = t->start() == 0;
	struct loop *loop = *t->loop;

	pthread_mutex_lock(&t->lock);
	t->ready = ok ? 1 : -1;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (ok)
		loop_run(loop); /* until the process exits */
	return NULL;
}

/* Start the thread and wait for start()'s answer. 0, or -1 with *error. */
static inline int
fs_loop_thread_start(struct fs_loop_thread *t, int (*start)(void),
    struct loop **loop, const char **error)
{
	pthread_t th;

	t->start = start;
	t->loop = loop;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	if (pthread_create(&th, NULL, fs_loop_main, t) != 0) {
		*error = "pthread_create";
		return -1;
	}
	pthread_detach(th);
	pthread_mutex_lock(&t->lock);
	while (t->ready == 0)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	if (t->ready == 1)
		return 0;
	*error = "the worker loop did not start (io_uring?)";
	return -1;
}

#endif
