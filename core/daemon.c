/*
 * daemon.c - shared start-up and process control for ringgate and
 * ringstore: argv, listening sockets, pid file, worker threads, signals.
 *
 * Signals: blocked in every thread before any is created, then taken
 * synchronously by the main thread, so no handler ever runs on a ring
 * thread and no async-signal-safety puzzles exist.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/admin.h"
#include "core/config.h"
#include "core/conn_limit.h"
#include "core/daemon.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"

struct worker {
	struct daemon *d;
	unsigned index;
	pthread_t thread;
	int rc;
	/* start-up handshake with the main thread */
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	unsigned *ready;
};

struct stop_msg {
	uint64_t drain_ms;
};

static void usage(const char *name, const char *default_config, int code);
static void signal_set(sigset_t *set);
static void *worker_main(void *arg);
static void stop_loop(struct loop *l, void *arg);
static int wait_signal(struct daemon *d, const sigset_t *set);
static void broadcast_step(struct loop *l, void *arg);

/* A daemon_broadcast_done() in flight. */
struct broadcast {
	void (*fn)(struct loop *, void *);
	void (*done)(void *);
	void *arg;
	atomic_uint pending;
};

static __thread char daemon_errbuf[256];

static void
usage(const char *name, const char *default_config, int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: %s [-t] [-c FILE] [-V]\n"
	    "  -c FILE  configuration file (default %s)\n"
	    "  -t       check the configuration and exit\n"
	    "  -V       print the version and exit\n",
	    name, default_config);
	exit(code);
}

/* The signals the main thread takes with sigwaitinfo(). */
static void
signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGPIPE);
}

void
daemon_args_parse(struct daemon_args *a, int argc, char **argv,
    const char *name, const char *default_config)
{
	sigset_t set;
	int ch;

	/* Block before any thread exists (verify and store pools start
	 * before the workers): a thread with SIGTERM unblocked would take
	 * the default action and kill the process instead of draining. */
	signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	a->config = default_config;
	a->test = false;
	while ((ch = getopt(argc, argv, "c:thV")) != -1) {
		switch (ch) {
		case 'c':
			a->config = optarg;
			break;
		case 't':
			a->test = true;
			break;
		case 'V':
			printf("%s %s\n", name, RG_VERSION);
			exit(0);
		case 'h':
			usage(name, default_config, 0);
			break;
		default:
			usage(name, default_config, 2);
		}
	}
	if (optind != argc)
		usage(name, default_config, 2);
}

int
daemon_listen(const struct cfg_addr *a, bool reuseport, const char **error_r)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		goto fail;
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	if (a->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1 ||
	    listen(fd, 4096) == -1)
		goto fail;
	return fd;
fail:
	snprintf(daemon_errbuf, sizeof(daemon_errbuf), "listen on %s: %s%s",
	    a->text, strerror(errno),
	    errno == EADDRINUSE ? " (is another instance running?)" :
		errno == EACCES ? " (ports below 1024 need root or "
				  "CAP_NET_BIND_SERVICE)" :
				  "");
	*error_r = daemon_errbuf;
	if (fd != -1)
		close(fd);
	return -1;
}

int
daemon_pidfile(const char *path)
{
	char tmp[4096], line[32];
	int fd, n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n || close(fd) == -1 ||
	    rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

unsigned
daemon_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct daemon *d = w->d;
	struct loop_conf conf = d->loop_conf;
	const char *err = NULL;
	struct loop *l;

	conf.index = w->index;
	conf.metrics = d->metrics;
	l = loop_new(&conf, &err);
	if (l != NULL && w->index == 0 && d->admin != NULL) {
		if (loop_listen(l, d->admin_fd, "admin", admin_handler(),
			d->admin) == NULL) {
			err = "admin listener set-up failed";
			loop_free(l);
			l = NULL;
		} else {
			d->admin_fd = -1; /* the loop owns it */
		}
	}
	if (l != NULL && d->worker_init(d, l, w->index) == -1) {
		err = "worker set-up failed";
		if (d->worker_exit != NULL)
			d->worker_exit(d, l, w->index);
		loop_free(l);
		l = NULL;
	}
	pthread_mutex_lock(w->lock);
	/* read by other workers too (conn_limit.c asks them to evict) */
	__atomic_store_n(&d->loops[w->index], l, __ATOMIC_RELEASE);
	(*w->ready)++;
	pthread_cond_signal(w->cond);
	pthread_mutex_unlock(w->lock);
	if (l == NULL) {
		log_error(0, "worker.failed", "worker=%u error=\"%s\"",
		    w->index, err);
		w->rc = -1;
		return NULL;
	}
	w->rc = loop_run(l);
	/* the main thread frees l once this thread has been joined */
	if (d->worker_exit != NULL)
		d->worker_exit(d, l, w->index);
	return NULL;
}

/* The next signal in set, or 0 when the daemon's tick is due. Ticks are
 * measured on CLOCK_MONOTONIC, so a burst of signals cannot starve them. */
static int
wait_signal(struct daemon *d, const sigset_t *set)
{
	struct timespec now, ts;
	siginfo_t si;
	uint64_t now_ms, wait_ms;
	int sig;

	for (;;) {
		if (d->tick == NULL || d->tick_ms == 0) {
			if ((sig = sigwaitinfo(set, &si)) > 0)
				return sig;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		now_ms = (uint64_t)now.tv_sec * 1000 +
		    (uint64_t)now.tv_nsec / 1000000;
		if (d->next_tick_ms == 0)
			d->next_tick_ms = now_ms + d->tick_ms;
		if (now_ms >= d->next_tick_ms) {
			d->next_tick_ms = now_ms + d->tick_ms;
			return 0;
		}
		wait_ms = d->next_tick_ms - now_ms;
		ts.tv_sec = (time_t)(wait_ms / 1000);
		ts.tv_nsec = (long)(wait_ms % 1000) * 1000000;
		if ((sig = sigtimedwait(set, &si, &ts)) > 0)
			return sig;
	}
}

static void
stop_loop(struct loop *l, void *arg)
{
	struct stop_msg *m = arg;

	loop_stop(l, m->drain_ms);
}

void
daemon_broadcast(struct daemon *d, void (*fn)(struct loop *, void *), void *arg)
{
	for (unsigned i = 0; i < d->nworkers; i++)
		if (d->loops[i])
			loop_post(d->loops[i], fn, arg);
}

int
daemon_broadcast_done(struct daemon *d, void (*fn)(struct loop *, void *),
    void *arg, void (*done)(void *))
{
	struct broadcast *b = malloc(sizeof(*b));
	unsigned n = 0;

	if (b == NULL)
		return -1;
	for (unsigned i = 0; i < d->nworkers; i++)
		n += d->loops[i] != NULL;
	if (n == 0) {
		free(b);
		done(arg);
		return 0;
	}
	b->fn = fn;
	b->done = done;
	b->arg = arg;
	atomic_init(&b->pending, n);
	daemon_broadcast(d, broadcast_step, b);
	return 0;
}

static void
broadcast_step(struct loop *l, void *arg)
{
	struct broadcast *b = arg;

	b->fn(l, b->arg);
	if (atomic_fetch_sub(&b->pending, 1) == 1) {
		b->done(b->arg);
		free(b);
	}
}

/* ---- start-up helpers ----------------------------------------------- */

int
daemon_metrics_new(struct daemon *d)
{
	char help[64];

	if ((d->metrics = metrics_new(d->name, d->nworkers + 1)) == NULL)
		return -1;
	snprintf(help, sizeof(help), "%s build.", d->name);
	metrics_set(d->metrics,
	    metrics_gauge_set(d->metrics, "build_info", help,
		"version=\"" RG_VERSION "\""),
	    1);
	return 0;
}

int
daemon_admin(struct daemon *d, const struct cfg_addr *a,
    int (*health)(void *arg, struct buf *detail), void *arg,
    const char **error_r)
{
	if ((d->admin = admin_new(d->metrics, health, arg)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if ((d->admin_fd = daemon_listen(a, false, error_r)) == -1) {
		admin_free(d->admin);
		d->admin = NULL;
		return -1;
	}
	return 0;
}

int
daemon_listen_workers(struct daemon *d, const struct cfg_addr *a, int *fds,
    const char **error_r)
{
	for (unsigned i = 0; i < d->nworkers; i++)
		fds[i] = -1;
	for (unsigned i = 0; i < d->nworkers; i++) {
		if ((fds[i] = daemon_listen(a, true, error_r)) != -1)
			continue;
		for (unsigned j = 0; j < i; j++) {
			close(fds[j]);
			fds[j] = -1;
		}
		return -1;
	}
	return 0;
}

void
daemon_free(struct daemon *d)
{
	if (d->admin != NULL && d->admin_fd != -1)
		close(d->admin_fd);
	admin_free(d->admin);
	d->admin = NULL;
	free(d->loops);
	d->loops = NULL;
	metrics_free(d->metrics);
	d->metrics = NULL;
}

int
daemon_run(struct daemon *d)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct stop_msg stop = { d->drain_ms };
	struct worker *w;
	unsigned ready = 0, started = 0;
	bool failed = false;
	sigset_t set;
	int code = 0;

	signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (d->pid_file && daemon_pidfile(d->pid_file) == -1)
		log_warn(0, "daemon.pidfile", "path=%s error=\"%s\"",
		    d->pid_file, strerror(errno));
	d->loops = calloc(d->nworkers, sizeof(*d->loops));
	w = calloc(d->nworkers, sizeof(*w));
	if (d->loops == NULL || w == NULL)
		fatal("out of memory");
	if (d->loop_conf.limits != NULL)
		conn_limits_loops(d->loop_conf.limits, d->loops, d->nworkers);
	for (unsigned i = 0; i < d->nworkers; i++) {
		w[i] = (struct worker){ .d = d,
			.index = i,
			.lock = &lock,
			.cond = &cond,
			.ready = &ready };
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
			fatal("pthread_create: %s", strerror(errno));
		started++;
	}
	pthread_mutex_lock(&lock);
	while (ready < started)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < d->nworkers; i++)
		if (d->loops[i] == NULL)
			failed = true;
	if (failed) {
		stop.drain_ms = 0;
		code = 1;
	} else {
		log_info(0, "daemon.started", "workers=%u pid=%ld", d->nworkers,
		    (long)getpid());
		for (;;) {
			int sig = wait_signal(d, &set);

			if (sig == 0) {
				d->tick(d);
			} else if (sig == SIGHUP) {
				log_info(0, "daemon.reload", NULL);
				if (d->reload)
					d->reload(d);
			} else if (sig == SIGTERM || sig == SIGINT) {
				log_info(0, "daemon.stopping",
				    "signal=%s drain_ms=%llu",
				    sig == SIGTERM ? "TERM" : "INT",
				    (unsigned long long)d->drain_ms);
				break;
			}
		}
	}
	daemon_broadcast(d, stop_loop, &stop);
	/* every worker gone before any loop is freed: a draining one may
	 * still post to another (an eviction asked for) */
	for (unsigned i = 0; i < d->nworkers; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].rc != 0)
			code = 1;
	}
	for (unsigned i = 0; i < d->nworkers; i++) {
		loop_free(d->loops[i]);
		d->loops[i] = NULL;
	}
	if (d->loop_conf.limits != NULL)
		conn_limits_loops(d->loop_conf.limits, NULL, 0);
	free(w);
	if (d->pid_file)
		unlink(d->pid_file);
	log_info(0, "daemon.stopped", "code=%d", code);
	return code;
}
