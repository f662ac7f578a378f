/*
 * conn_limit.c - session and descriptor caps at accept (conn_limit.h):
 * the daemon's counters, each listener's, and the young list of a loop
 * (accepted connections that have not logged in, oldest first) from
 * which one is cut when the daemon is at its descriptor cap.
 *
 * Runs on the loops' threads at accept and teardown (counters are
 * atomics shared by the workers, the young list is the loop's own), and
 * once on the main thread at start-up (conn_limits_init()).
 *
 * Never: logs a line per refused connection at info or above (a flood
 * would flood the log too: one summary line per listener and worker
 * every LOG_EVERY_MS at most), or cuts a connection whose login is on its
 * way (the handler's evictable() says so).
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "core/conn_limit.h"
#include "core/log.h"
#include "core/loop_private.h"
#include "core/metrics.h"

#define EVICT_SCAN 32 /* young conns looked at per eviction */
#define FD_CAP_MIN 16 /* fewer connections than this: refuse to run */
#define NOFILE_MAX (1u << 24)
#define LOG_EVERY_MS 10000 /* summary lines of refusals, per listener */

/* sessions_refused_total's reasons, in listener->m_limit order; then
 * LIM_EVICT, which only names the summary line of evictions */
enum { LIM_LISTENER = 0, LIM_DAEMON, LIM_FD, LIM_NREASONS, LIM_EVICT = 3 };
static const char *const limit_reasons[LIM_NREASONS + 1] = { "listener_max",
	"daemon_max", "fd_reserve", "fd_reserve_evicted" };

static unsigned nofile_raise(void);
static unsigned cap_of(unsigned nofile, uint64_t fd_reserve,
    unsigned fds_per_conn, const char **error_r);
static void collect(struct metrics *m, void *arg);
static bool gauge_take(struct conn_gauge *g);
static void gauge_give(struct conn_gauge *g);
static void young_add(struct conn *c);
static bool evict_one(struct loop *l, struct conn *self);
static bool evict_elsewhere(struct loop *l, unsigned n);
static void evict_asked(struct loop *l, void *arg);
static int over(struct conn *c, int why);
static void refused_log(struct conn *c, int why);

static __thread char limit_errbuf[200];

/* ---- start-up --------------------------------------------------------- */

/* The soft limit up to the hard one: a daemon that polls nothing with
 * select() has no reason to stay at the historical 1024. */
static unsigned
nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max == RLIM_INFINITY ? NOFILE_MAX :
							     rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = up.rlim_cur;
	}
	return rl.rlim_cur > NOFILE_MAX ? NOFILE_MAX : (unsigned)rl.rlim_cur;
}

/* The cap of accepted connections for nofile descriptors, or 0 with
 * *error_r when the reserve leaves fewer than FD_CAP_MIN. */
static unsigned
cap_of(unsigned nofile, uint64_t fd_reserve, unsigned fds_per_conn,
    const char **error_r)
{
	if (fd_reserve >= nofile ||
	    (nofile - fd_reserve) / fds_per_conn < FD_CAP_MIN) {
		snprintf(limit_errbuf, sizeof(limit_errbuf),
		    "RLIMIT_NOFILE %u leaves fewer than %u connections after "
		    "limits.fd_reserve %llu: raise it (LimitNOFILE= under "
		    "systemd) or lower fd_reserve",
		    nofile, FD_CAP_MIN, (unsigned long long)fd_reserve);
		*error_r = limit_errbuf;
		return 0;
	}
	return (unsigned)((nofile - fd_reserve) / fds_per_conn);
}

int
conn_limits_plan(uint64_t max_sessions, uint64_t fd_reserve,
    unsigned fds_per_conn, char *note, size_t size, const char **error_r)
{
	struct rlimit rl;
	unsigned nofile = 1024, cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		nofile = rl.rlim_max > NOFILE_MAX ? NOFILE_MAX :
						    (unsigned)rl.rlim_max;
	if (fds_per_conn == 0)
		fds_per_conn = 1;
	if ((cap = cap_of(nofile, fd_reserve, fds_per_conn, error_r)) == 0)
		return -1;
	snprintf(note, size,
	    "at most %u sessions at once (RLIMIT_NOFILE %u here - fd_reserve "
	    "%llu) / %u%s",
	    max_sessions > 0 && max_sessions < cap ? (unsigned)max_sessions :
						     cap,
	    nofile, (unsigned long long)fd_reserve, fds_per_conn,
	    max_sessions > cap ? "; max_sessions is above that" : "");
	return 0;
}

int
conn_limits_init(struct conn_limits *cl, const char *daemon,
    uint64_t max_sessions, uint64_t fd_reserve, unsigned fds_per_conn,
    struct metrics *m, const char **error_r)
{
	unsigned nofile = nofile_raise(), cap;

	memset(cl, 0, sizeof(*cl));
	atomic_init(&cl->sessions.cur, 0);
	atomic_init(&cl->conns.cur, 0);
	if (fds_per_conn == 0)
		fds_per_conn = 1;
	if ((cap = cap_of(nofile, fd_reserve, fds_per_conn, error_r)) == 0)
		return -1;
	cl->nofile = nofile;
	cl->reserve = (unsigned)fd_reserve;
	cl->slack = cl->reserve / (2 * fds_per_conn);
	cl->conns.max = cap;
	if (max_sessions > cap)
		log_warn(0, "limits.lowered",
		    "max_sessions=%llu fd_cap=%u nofile=%u fd_reserve=%u "
		    "note=\"max_sessions above what the descriptors allow: "
		    "the descriptor cap rules\"",
		    (unsigned long long)max_sessions, cap, nofile, cl->reserve);
	else
		cl->sessions.max = (unsigned)max_sessions;
	log_info(0, "limits.sessions",
	    "daemon=%s nofile=%u fd_reserve=%u fds_per_session=%u fd_cap=%u "
	    "max_sessions=%u",
	    daemon, nofile, cl->reserve, fds_per_conn, cap, cl->sessions.max);
	if (m == NULL)
		return 0;
	cl->m_max = metrics_gauge_set(m, "sessions_max",
	    "Sessions served at once before new ones are told to try later "
	    "(limits.max_sessions, or the descriptor cap).",
	    NULL);
	cl->m_fd_cap = metrics_gauge_set(m, "connections_fd_cap",
	    "Accepted connections at most: (RLIMIT_NOFILE - "
	    "limits.fd_reserve) / descriptors per session.",
	    NULL);
	cl->m_open = metrics_gauge_set(m, "sessions_admitted",
	    "Connections admitted under the session caps, open now.", NULL);
	cl->m_nofile = metrics_gauge_set(m, "open_files_limit",
	    "RLIMIT_NOFILE after start-up raised the soft limit.", NULL);
	if (metrics_collector(m, collect, cl) == -1) {
		*error_r = "metrics registry full";
		return -1;
	}
	return 0;
}

void
conn_limits_loops(struct conn_limits *cl, struct loop **loops, unsigned n)
{
	cl->loops = loops;
	cl->nloops = n;
}

static void
collect(struct metrics *m, void *arg)
{
	struct conn_limits *cl = arg;

	metrics_set(m, cl->m_max,
	    cl->sessions.max ? cl->sessions.max : cl->conns.max);
	metrics_set(m, cl->m_fd_cap, cl->conns.max);
	metrics_set(m, cl->m_open, atomic_load(&cl->sessions.cur));
	metrics_set(m, cl->m_nofile, cl->nofile);
}

void
conn_limit_metrics(struct listener *li)
{
	struct metrics *m = li->loop->conf.metrics;
	char labels[256];

	if (m == NULL || li->loop->conf.limits == NULL)
		return;
	for (int i = 0; i < LIM_NREASONS; i++) {
		snprintf(labels, sizeof(labels),
		    "listener=\"%s\",reason=\"%s\"", li->name,
		    limit_reasons[i]);
		li->m_limit[i] = metrics_counter(m, "sessions_refused_total",
		    "Connections told to try later and closed (or closed at "
		    "once at the descriptor cap), by the cap that refused "
		    "them.",
		    labels);
	}
	snprintf(labels, sizeof(labels), "listener=\"%s\"", li->name);
	li->m_evicted = metrics_counter(m, "sessions_evicted_total",
	    "Connections not logged in yet, cut to make room for a new one at "
	    "the descriptor cap.",
	    labels);
}

/* ---- at accept and teardown ------------------------------------------ */

/* One more, unless that passes the cap. Two workers racing at the cap
 * may both back out: a refusal too many, never one admitted too many. */
static bool
gauge_take(struct conn_gauge *g)
{
	unsigned n = atomic_fetch_add(&g->cur, 1) + 1;

	if (g->max != 0 && n > g->max) {
		atomic_fetch_sub(&g->cur, 1);
		return false;
	}
	return true;
}

static void
gauge_give(struct conn_gauge *g)
{
	atomic_fetch_sub(&g->cur, 1);
}

int
conn_limit_admit(struct conn *c)
{
	struct listener *li = c->li;
	struct conn_limits *cl = c->loop->conf.limits;
	unsigned n;

	if (li == NULL || li->gauge == NULL || cl == NULL)
		return 0;
	n = atomic_fetch_add(&cl->conns.cur, 1) + 1;
	c->flags |= CF_LIM_CONN;
	young_add(c);
	if (cl->conns.max != 0 && n > cl->conns.max) {
		if (!evict_one(c->loop, c) && !evict_elsewhere(c->loop, n)) {
			metrics_add(c->loop->shard, li->m_limit[LIM_FD], 1);
			refused_log(c, LIM_FD);
			conn_abort(c, CR_LIMIT);
			return -1;
		}
		refused_log(c, LIM_EVICT);
	}
	if (!gauge_take(&cl->sessions))
		return over(c, LIM_DAEMON);
	if (!gauge_take(li->gauge)) {
		gauge_give(&cl->sessions);
		return over(c, LIM_LISTENER);
	}
	c->flags |= CF_LIM_SESS;
	return 0;
}

/* Over a session cap: the handler says "try later" instead of its
 * greeting, or, if it has no words for that, c is closed now. */
static int
over(struct conn *c, int why)
{
	metrics_add(c->loop->shard, c->li->m_limit[why], 1);
	refused_log(c, why);
	c->flags |= CF_OVER;
	if (c->h->on_over == NULL) {
		conn_abort(c, CR_LIMIT);
		return -1;
	}
	return 0;
}

/* Each refusal at debug; at most one summary line per listener per
 * LOG_EVERY_MS at warn, with how many went (refused, or made room for
 * by an eviction) since the last one. */
static void
refused_log(struct conn *c, int why)
{
	struct listener *li = c->li;
	struct loop *l = c->loop;

	if (why != LIM_EVICT)
		log_debug(c->sid, "conn.over_limit",
		    "listener=%s peer=%s limit=%s", li->name, c->peer,
		    limit_reasons[why]);
	li->limit_refused++;
	if (li->limit_log_at != 0 && l->now < li->limit_log_at)
		return;
	log_warn(0, "sessions.limit",
	    "listener=%s limit=%s refused=%llu sessions=%u max=%u "
	    "listener_sessions=%u listener_max=%u conns=%u fd_cap=%u",
	    li->name, limit_reasons[why], (unsigned long long)li->limit_refused,
	    atomic_load(&l->conf.limits->sessions.cur),
	    l->conf.limits->sessions.max, atomic_load(&li->gauge->cur),
	    li->gauge->max, atomic_load(&l->conf.limits->conns.cur),
	    l->conf.limits->conns.max);
	li->limit_refused = 0;
	li->limit_log_at = l->now + LOG_EVERY_MS;
}

bool
conn_over_limit(const struct conn *c)
{
	return c->flags & CF_OVER;
}

void
conn_limit_release(struct conn *c)
{
	struct conn_limits *cl = c->loop->conf.limits;

	conn_limit_grown(c);
	if (c->flags & CF_LIM_CONN)
		gauge_give(&cl->conns);
	if (c->flags & CF_LIM_SESS) {
		gauge_give(&cl->sessions);
		gauge_give(c->li->gauge);
	}
	c->flags &= ~(CF_LIM_CONN | CF_LIM_SESS);
}

bool
conn_limit_governs(const struct listener *li)
{
	const struct conn_limits *cl = li->loop->conf.limits;

	return li->gauge != NULL && cl != NULL && cl->conns.max != 0;
}

bool
conn_limit_crowded(const struct listener *li)
{
	const struct conn_limits *cl = li->loop->conf.limits;
	unsigned max;

	if (!conn_limit_governs(li))
		return false;
	max = cl->conns.max;
	return atomic_load(&cl->conns.cur) >= max - max / 4;
}

void
conn_limit_closed(struct loop *l)
{
	struct conn_limits *cl = l->conf.limits;

	if (cl != NULL)
		gauge_give(&cl->conns);
}

/* ---- the young list -------------------------------------------------- */

static void
young_add(struct conn *c)
{
	struct loop *l = c->loop;

	c->young_prev = l->young_tail;
	c->young_next = NULL;
	if (l->young_tail)
		l->young_tail->young_next = c;
	else
		l->young_head = c;
	l->young_tail = c;
	c->flags |= CF_YOUNG;
}

void
conn_limit_grown(struct conn *c)
{
	struct loop *l = c->loop;

	if (!(c->flags & CF_YOUNG))
		return;
	if (c->young_prev)
		c->young_prev->young_next = c->young_next;
	else
		l->young_head = c->young_next;
	if (c->young_next)
		c->young_next->young_prev = c->young_prev;
	else
		l->young_tail = c->young_prev;
	c->young_next = c->young_prev = NULL;
	c->flags &= ~CF_YOUNG;
}

/* Cut the oldest connection of l that has not logged in and is not
 * waiting for its login's answer: one still in its TLS handshake or
 * PROXY header, one told to try later, or a session whose handler says
 * it may go. Those that logged in meanwhile leave the list on the way. */
static bool
evict_one(struct loop *l, struct conn *self)
{
	struct conn *c = l->young_head, *next;

	for (unsigned i = 0; c != NULL && i < EVICT_SCAN; c = next, i++) {
		next = c->young_next;
		if (c == self)
			continue;
		if ((c->flags & CF_OPEN) && !(c->flags & CF_OVER)) {
			if (c->h->evictable == NULL) {
				conn_limit_grown(c);
				continue;
			}
			if (!c->h->evictable(c))
				continue;
		}
		if (c->li != NULL)
			metrics_add(l->shard, c->li->m_evicted, 1);
		log_debug(c->sid, "conn.evicted",
		    "listener=%s peer=%s age_ms=%llu",
		    c->li ? c->li->name : "-", c->peer,
		    (unsigned long long)(l->now - c->started));
		conn_abort(c, CR_LIMIT);
		return true;
	}
	return false;
}

/* l has nothing young to cut for the n-th connection: while n stays
 * within the slack, admit it and ask the next worker to cut one of its
 * own (it passes the request on if it has none either). The reserve
 * lends the descriptors meanwhile; past the slack, refuse. */
static bool
evict_elsewhere(struct loop *l, unsigned n)
{
	struct conn_limits *cl = l->conf.limits;
	struct loop *next;

	if (cl->nloops < 2 || n > cl->conns.max + cl->slack)
		return false;
	next = __atomic_load_n(&cl->loops[(l->conf.index + 1) % cl->nloops],
	    __ATOMIC_ACQUIRE);
	if (next == NULL)
		return false;
	return loop_post(next, evict_asked,
		   (void *)(uintptr_t)(cl->nloops - 1)) == 0;
}

/* On another worker's request: cut our oldest young connection while
 * the daemon is still over its cap, else pass the request on to the
 * worker after us until every other worker has been asked. */
static void
evict_asked(struct loop *l, void *arg)
{
	struct conn_limits *cl = l->conf.limits;
	uintptr_t hops = (uintptr_t)arg;
	struct loop *next;

	if (atomic_load(&cl->conns.cur) <= cl->conns.max || l->stopping ||
	    evict_one(l, NULL) || hops <= 1)
		return;
	next = __atomic_load_n(&cl->loops[(l->conf.index + 1) % cl->nloops],
	    __ATOMIC_ACQUIRE);
	if (next != NULL)
		(void)loop_post(next, evict_asked, (void *)(hops - 1));
}
