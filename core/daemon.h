/*
 * daemon.h - what every daemon's main() shares: command line, listening
 * sockets, worker threads with one loop each, signals, pid file.
 *
 * The main thread owns start-up, signals and reloads; worker threads own
 * their loops. Signals are blocked in every thread and taken by the main
 * thread with sigwaitinfo(): SIGHUP calls the daemon's reload hook on the
 * main thread, SIGTERM/SIGINT drain every loop and return. Between
 * signals the main thread may run the daemon's tick hook.
 */
#ifndef RG_CORE_DAEMON_H
#define RG_CORE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"

struct cfg_addr;

struct daemon_args {
	const char *config; /* -c */
	bool test;	    /* -t */
};

/* Parse argv: -c FILE, -t, -V, -h. Prints usage/version and exits for
 * -h/-V and on errors. default_config is used without -c. Also blocks
 * the signals daemon_run() takes, so call it before starting any thread. */
void daemon_args_parse(struct daemon_args *a, int argc, char **argv,
    const char *name, const char *default_config);

/* A bound, listening TCP socket with SO_REUSEADDR, TCP_NODELAY (inherited
 * by accepted sockets) and, when reuseport, SO_REUSEPORT so each worker
 * can have its own. Returns the fd or -1 with *error_r naming the address
 * and the errno text. */
int daemon_listen(const struct cfg_addr *a, bool reuseport,
    const char **error_r);

/* Write our pid to path (created 0644, replaced atomically). 0 or -1. */
int daemon_pidfile(const char *path);

/* Number of online CPUs (at least 1). */
unsigned daemon_ncpu(void);

/* The `daemon { }` section every config file has (core/daemon_conf.c):
 * use daemon_conf_fields as a CFG_GROUP at the struct's offset. */
struct daemon_conf {
	int64_t workers; /* 0 = one per core */
	char *pid_file;
	int log_level;		/* enum log_level */
	char *log_file;		/* NULL or "" = stderr */
	uint64_t drain_timeout; /* ms */
	/* receive buffers per worker (16 KiB each, touched as they are
	 * used): memory a worker may hold for input, whatever the number
	 * of connections */
	int64_t recv_buffers;
};
struct cfg_field;
extern const struct cfg_field daemon_conf_fields[];

/* log_init() from the section, opening log_file if set. 0, or -1 after
 * telling stderr why. */
int daemon_conf_log_open(const char *ident, const struct daemon_conf *dc);
unsigned daemon_conf_workers(const struct daemon_conf *dc);
/* What the section says about every worker's loop (recv_buffers). */
void daemon_conf_loop(const struct daemon_conf *dc, struct loop_conf *lc);

struct admin;
struct buf;

struct daemon {
	const char *name;
	unsigned nworkers;
	struct metrics *metrics; /* daemon_metrics_new() */
	const char *pid_file;	 /* written at start, removed at exit */
	uint64_t drain_ms;
	struct loop_conf loop_conf; /* template: index and metrics set here */
	void *ctx;		    /* the daemon's own state */
	/* On worker i's thread, after its loop exists: add listeners.
	 * 0 or -1 (the daemon then stops with an error). */
	int (*worker_init)(struct daemon *d, struct loop *l, unsigned i);
	/* On worker i's thread after its loop stopped (every connection
	 * gone) and before the loop is freed: close what must not outlive
	 * the loop (an outbox answers still arrive through), free the
	 * worker's own state. Also after a failed worker_init, to undo what
	 * it began. NULL: nothing to do. */
	void (*worker_exit)(struct daemon *d, struct loop *l, unsigned i);
	/* On the main thread, for SIGHUP. */
	void (*reload)(struct daemon *d);
	/* On the main thread about every tick_ms (0: never) while serving:
	 * cheap periodic checks such as "did the users file change?". */
	uint64_t tick_ms;
	void (*tick)(struct daemon *d);
	/* filled by daemon_admin() and daemon_run() */
	struct admin *admin;
	int admin_fd; /* until worker 0 takes it */
	struct loop **loops;
	uint64_t next_tick_ms; /* CLOCK_MONOTONIC */
};

/* ---- start-up, on the main thread before daemon_run() ------------------ */

/* The metrics registry (namespace d->name, a shard per worker plus one)
 * with its build_info gauge, into d->metrics. Set d->nworkers first.
 * 0, or -1 when out of memory. */
int daemon_metrics_new(struct daemon *d);

/* The admin HTTP listener (/metrics, /healthz) on a, served by worker 0.
 * health as for admin_new() (NULL: always healthy). 0, or -1 with
 * *error_r naming the address. */
int daemon_admin(struct daemon *d, const struct cfg_addr *a,
    int (*health)(void *arg, struct buf *detail), void *arg,
    const char **error_r);

/* One SO_REUSEPORT socket on a per worker into fds[0..d->nworkers). On
 * failure every socket opened here is closed, fds[] is -1 and *error_r
 * names the address. 0 or -1. */
int daemon_listen_workers(struct daemon *d, const struct cfg_addr *a, int *fds,
    const char **error_r);

/* Free what the daemon_* calls made (registry, admin, loops array).
 * Call once after daemon_run() returned, or after a failed start-up. */
void daemon_free(struct daemon *d);

/* Start the workers, serve signals until SIGTERM/SIGINT, drain, join.
 * Returns the process exit code. */
int daemon_run(struct daemon *d);

/* Run fn(loop, arg) on every worker loop (reload fan-out). */
void daemon_broadcast(struct daemon *d, void (*fn)(struct loop *, void *),
    void *arg);

/* The same, then done(arg) on the thread of the last worker to finish,
 * once every worker has run fn (the place to drop what arg holds).
 * 0, or -1 when out of memory (nothing runs). */
int daemon_broadcast_done(struct daemon *d, void (*fn)(struct loop *, void *),
    void *arg, void (*done)(void *));

#endif
