/*
 * conn_limit.h - how many connections a daemon serves at once, and each of
 * its listeners, counted across every worker; and the descriptors kept
 * free for what its sessions open besides (back-end connections, files).
 *
 * Three caps, checked at accept on listeners made by core/listen_set.c
 * (the admin listener is exempt, so /metrics answers during a flood):
 *   - per listener, max_sessions: over it the connection gets the
 *     protocol's "try again later" (the handler's on_over) and is closed;
 *   - per daemon, max_sessions: the same;
 *   - per daemon, the descriptor cap (RLIMIT_NOFILE - fd_reserve) /
 *     fds_per_conn over every accepted connection, refusals included: at
 *     it the oldest connection of the worker that has not logged in (a
 *     TLS handshake, a PROXY header, a session before its login command;
 *     never one whose login is on its way) is cut to make room; when
 *     that worker has none, another worker is asked to cut one of its
 *     own (the new one is admitted over the cap meanwhile, by at most
 *     `slack`, which the reserve covers), else the new one is closed at
 *     once. A flood of silent connections thus never
 *     takes the descriptors a login in progress needs, and a new client
 *     always finds a place.
 *
 * Counters are atomics in struct conn_limits (the daemon's) and in one
 * struct conn_gauge per configured listener (the listen set's), shared by
 * the workers; everything else is per loop.
 */
#ifndef RG_CORE_CONN_LIMIT_H
#define RG_CORE_CONN_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct listener;
struct loop;
struct metrics;

/* A count shared by the workers and its cap (0: none). */
struct conn_gauge {
	atomic_uint cur;
	unsigned max;
};

/* The daemon's: set up once with conn_limits_init() before the workers
 * start, read and counted by them afterwards. */
struct conn_limits {
	struct conn_gauge sessions; /* admitted sessions; max_sessions */
	struct conn_gauge conns;    /* every accepted conn; the fd cap */
	unsigned nofile;	    /* RLIMIT_NOFILE (soft, after raising) */
	unsigned reserve;	    /* fd_reserve */
	unsigned slack; /* conns over the fd cap, awaiting another worker */
	struct loop **loops; /* the workers' (conn_limits_loops()) */
	unsigned nloops;
	int m_max, m_fd_cap, m_open, m_nofile; /* gauges (collector) */
};

/* Raise the soft RLIMIT_NOFILE to the hard one, then derive the fd cap:
 * (nofile - fd_reserve) / fds_per_conn (2 for a proxy: the client and its
 * back end). max_sessions 0 means "the fd cap"; a larger one is lowered
 * to it (logged). m may be NULL. 0, or -1 with *error_r when the reserve
 * leaves fewer than 16 connections. */
int conn_limits_init(struct conn_limits *cl, const char *daemon,
    uint64_t max_sessions, uint64_t fd_reserve, unsigned fds_per_conn,
    struct metrics *m, const char **error_r);

/* The daemon's loops, slots filled (atomically) by the workers as they
 * start: where an eviction is asked for when a worker has nothing young
 * of its own. Set before the workers start. */
void conn_limits_loops(struct conn_limits *cl, struct loop **loops, unsigned n);

/* -t: what conn_limits_init() would make of this process's hard limit
 * (the daemon raises its soft limit to it), worded into note. 0, or -1
 * with *error_r as conn_limits_init() would fail. */
int conn_limits_plan(uint64_t max_sessions, uint64_t fd_reserve,
    unsigned fds_per_conn, char *note, size_t size, const char **error_r);

/* ---- for the loop (loop.c, conn.c) ------------------------------------ */

/* Count the accepted c against its listener's and the daemon's caps.
 * Returns 0 when c goes on (perhaps marked over a limit: its handler's
 * on_over speaks instead of on_open), -1 when c was closed here. */
int conn_limit_admit(struct conn *c);
/* c left the young list for good (it logged in; its new handler has no
 * evictable()). Cheap; safe to call again. */
void conn_limit_grown(struct conn *c);
/* c's teardown: give back what it counted, but for its place under the
 * fd cap, which waits for the close (loop_close_fd_counted()). */
void conn_limit_release(struct conn *c);
/* li's connections count against the fd cap: its accepts must not run
 * ahead of the count (loop.c keeps a few single-shot ones in flight). */
bool conn_limit_governs(const struct listener *li);
/* li is governed and the daemon is near the cap (3/4): accept one
 * connection at a time. */
bool conn_limit_crowded(const struct listener *li);
/* A counted conn's close completed on l: its descriptor is free. */
void conn_limit_closed(struct loop *l);
/* Register li's refusal counters (the listener exists, metrics set). */
void conn_limit_metrics(struct listener *li);

#endif
