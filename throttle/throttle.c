/*
 * throttle.c - the throttle's decisions on a worker's loop: the rules on
 * the local counters first (always kept, under the instance's mutex),
 * then, where a Redis is configured, the same rules on the shared
 * counters in one script call (throttle_redis.c) whose answer wins. A
 * Redis that does not answer within the timeout, or is known down, leaves
 * the local answer (fail-open) or a refusal (fail_closed); each worker
 * logs its Redis going down and coming back once per change and a ping
 * every second notices the return without waiting for traffic.
 *
 * Relies on core/redis_loop.h for the connection (deadline per command,
 * reconnect back-off, commands failing at once while Redis is down), on
 * the caller to find its session by id when an answer comes late.
 *
 * Must never: block the loop, keep a client waiting past the timeout for
 * a dead Redis, throttle an allow-listed or non-IP peer, or hold the
 * mutex across anything but the local table.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/net.h"
#include "core/redis_loop.h"
#include "core/timer.h"
#include "throttle/throttle_private.h"

#define TICK_MS 1000	  /* the health ping and the local sweep */
#define SWEEP_BUDGET 512  /* expired local keys dropped per tick */
#define BACKLOG_MAX 10000 /* releases kept for Redis's return, per worker */
/* How long a block Redis reported is believed without asking again (an
 * unblock through another instance takes this long to reach this one),
 * never past the block's own end. */
#define BLOCK_MEMORY_MS 5000

static const char *const dec_labels[D_N] = {
	[D_ADMITTED] = "rule=\"connection\",result=\"admitted\"",
	[D_ALLOWED] = "rule=\"allow_nets\",result=\"admitted\"",
	[D_CONNS_IP] = "rule=\"conns_ip\",result=\"refused\"",
	[D_CONNS_NET] = "rule=\"conns_net\",result=\"refused\"",
	[D_RATE_IP] = "rule=\"rate_ip\",result=\"refused\"",
	[D_RATE_NET] = "rule=\"rate_net\",result=\"refused\"",
	[D_CLOSED] = "rule=\"fail_closed\",result=\"refused\"",
	[D_LOGIN_PASSED] = "rule=\"login\",result=\"passed\"",
	[D_LOGIN_DELAYED] = "rule=\"tarpit\",result=\"delayed\"",
	[D_LOGIN_BLOCKED] = "rule=\"block\",result=\"refused\"",
	[D_FAIL_COUNTED] = "rule=\"failed_login\",result=\"counted\"",
	[D_BAD_COUNTED] = "rule=\"bad_commands\",result=\"counted\"",
	[D_UNVERIFIED] = "rule=\"block\",result=\"not_verified\"",
};

static const char *const err_labels[E_N] = { "reason=\"timeout\"",
	"reason=\"down\"", "reason=\"error\"" };

static void tick_fired(struct timer *tm, void *arg);
static void on_ping(void *ctx, const struct redisReply *r, const char *error);
static void thr_on_reply(void *ctx, const struct redisReply *r,
    const char *error);
static void login_keys(struct thr_req *q, const char *mode, const char *user);
static void admit_answer(struct thr_req *q, const struct redisReply *r);
static void login_answer(struct thr_req *q, const struct redisReply *r);
static void admit_finish(struct throttle_worker *w, struct thr_req *q,
    enum thr_admit v, unsigned scope, bool shared);
static void login_finish(struct throttle_worker *w, enum throttle_service svc,
    uint64_t sid, const struct thr_login_counts *c, bool closed,
    throttle_login_cb *cb, void *ctx);
static void shared_release(struct throttle_worker *w, enum throttle_service svc,
    const struct thr_source *src);
static void backlog_flush(struct throttle_worker *w);
static void forget_block(struct throttle_worker *w,
    const struct thr_source *src);
static void remember_block(struct throttle_worker *w, enum throttle_service svc,
    const struct thr_source *src, long long left_ms);

/* ---- the instance -------------------------------------------------------- */

static int
metrics_init(struct throttle *t, struct metrics *m)
{
	int bad = 0;

	t->m_up = metrics_gauge_set(m, "throttle_backend_up",
	    "1 while every worker reaches the throttle's Redis, 0 when one "
	    "decides on local counters (or no Redis is configured).",
	    NULL);
	t->m_tracked = metrics_gauge_set(m, "throttle_tracked",
	    "Local throttle counters held now.", NULL);
	t->m_local = metrics_counter(m, "throttle_local_decisions_total",
	    "Throttle decisions made on local counters because Redis did "
	    "not answer.",
	    NULL);
	for (unsigned i = 0; i < D_N; i++) {
		t->m_dec[i] = metrics_counter(m, "throttle_decisions_total",
		    "Throttle decisions, by rule and result.", dec_labels[i]);
		bad |= t->m_dec[i] < 0;
	}
	for (unsigned i = 0; i < E_N; i++) {
		t->m_err[i] = metrics_counter(m,
		    "throttle_backend_errors_total",
		    "Throttle Redis calls that failed, by reason.",
		    err_labels[i]);
		bad |= t->m_err[i] < 0;
	}
	return bad || t->m_up < 0 || t->m_tracked < 0 || t->m_local < 0 ? -1 :
									  0;
}

static void
collect(struct metrics *m, void *arg)
{
	struct throttle *t = arg;
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = thr_local_count(t->local);
	pthread_mutex_unlock(&t->mu);
	metrics_set(m, t->m_tracked, (double)n);
}

struct throttle *
throttle_new(const struct throttle_conf *cf, struct metrics *m,
    const char **error_r)
{
	struct throttle *t = calloc(1, sizeof(*t));

	if (t == NULL ||
	    (t->local = thr_local_new((size_t)cf->max_tracked)) == NULL) {
		free(t);
		*error_r = "out of memory";
		return NULL;
	}
	t->cf = cf;
	pthread_mutex_init(&t->mu, NULL);
	thr_redis_sha(t->sha);
	if (cf->nsentinels > 0)
		snprintf(t->backend, sizeof(t->backend), "sentinel:%s",
		    cf->master_name);
	else
		snprintf(t->backend, sizeof(t->backend), "%s",
		    cf->redis ? cf->redis : "none");
	atomic_init(&t->down, 0);
	t->m_up = t->m_tracked = t->m_local = -1;
	for (unsigned i = 0; i < D_N; i++)
		t->m_dec[i] = -1;
	for (unsigned i = 0; i < E_N; i++)
		t->m_err[i] = -1;
	if (m != NULL) {
		t->m = m;
		if (metrics_init(t, m) == -1 ||
		    metrics_collector(m, collect, t) == -1) {
			throttle_free(&t);
			*error_r = "metrics registry full";
			return NULL;
		}
		metrics_set(m, t->m_up, throttle_conf_shared(cf) ? 1 : 0);
	}
	log_info(0, "throttle.start",
	    "redis=%s timeout_ms=%llu fail_closed=%s allow_nets=%u", t->backend,
	    (unsigned long long)cf->timeout, cf->fail_closed ? "yes" : "no",
	    cf->nallow_nets);
	return t;
}

void
throttle_free(struct throttle **tp)
{
	struct throttle *t = *tp;

	*tp = NULL;
	if (t == NULL)
		return;
	thr_local_free(&t->local);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

unsigned
throttle_bad_commands(const struct throttle *t, enum throttle_service svc)
{
	return (unsigned)t->cf->svc[svc].bad_commands;
}

bool
thr_allowed(const struct throttle *t, const struct sockaddr *sa)
{
	return net_list_match(t->cf->allow_nets, t->cf->nallow_nets, sa);
}

/* ---- the worker ---------------------------------------------------------- */

struct throttle_worker *
throttle_worker_new(struct throttle *t, struct loop *l, const char **error_r)
{
	struct throttle_worker *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	w->t = t;
	w->loop = l;
	timer_init(&w->tick, l, tick_fired, w);
	if (throttle_conf_shared(t->cf)) {
		struct redis_loop_conf rc = { .target = t->cf->redis,
			.timeout_ms = t->cf->timeout,
			.retry_ms = t->cf->retry,
			.sentinels = (const char *const *)t->cf->sentinels,
			.nsentinels = t->cf->nsentinels,
			.master_name = t->cf->master_name };

		if ((w->redis = redis_loop_new(l, &rc, error_r)) == NULL) {
			free(w);
			return NULL;
		}
	}
	if (loop_index(l) == 0)
		t->w0 = w;
	/* the first ping soon: the gauge tells the truth from the start */
	(void)timer_set(&w->tick, 10);
	return w;
}

void
throttle_worker_free(struct throttle_worker **wp)
{
	struct throttle_worker *w = *wp;

	*wp = NULL;
	if (w == NULL)
		return;
	timer_stop(&w->tick);
	redis_loop_cancel(&w->ping);
	while (w->reqs != NULL) {
		struct thr_req *q = w->reqs;

		redis_loop_cancel(&q->rreq);
		if (q->kind == RQ_ADMIT && q->held_local) {
			pthread_mutex_lock(&w->t->mu);
			thr_rules_release(w->t->local, q->svc, &q->src);
			pthread_mutex_unlock(&w->t->mu);
		}
		thr_req_free(q);
	}
	if (w->down)
		atomic_fetch_sub(&w->t->down, 1);
	if (w->t->w0 == w)
		w->t->w0 = NULL;
	free(w->backlog);
	redis_loop_free(&w->redis);
	free(w);
}

void
thr_count(struct throttle_worker *w, int id)
{
	metrics_add(loop_shard(w->loop), id, 1);
}

/* Redis came back or went away for this worker: logged once per change,
 * the gauge follows every worker. */
void
thr_backend_state(struct throttle_worker *w, bool up, const char *error)
{
	unsigned down;

	if (w->redis == NULL || up == !w->down)
		return;
	w->down = !up;
	if (up) {
		down = atomic_fetch_sub(&w->t->down, 1) - 1;
		log_info(0, "throttle.backend",
		    "state=up worker=%u redis=%s releases=%zu",
		    loop_index(w->loop), w->t->backend, w->nbacklog);
		backlog_flush(w);
	} else {
		down = atomic_fetch_add(&w->t->down, 1) + 1;
		log_warn(0, "throttle.backend",
		    "state=down worker=%u redis=%s error=\"%s\" decide=%s",
		    loop_index(w->loop), w->t->backend, error ? error : "?",
		    w->t->cf->fail_closed ? "refuse" : "local");
	}
	if (w->t->m != NULL)
		metrics_set(w->t->m, w->t->m_up, down == 0 ? 1 : 0);
}

static void
tick_fired(struct timer *tm, void *arg)
{
	struct throttle_worker *w = arg;
	const char *argv[] = { "PING" };
	size_t lens[] = { 4 };
	const char *err = NULL;

	(void)tm;
	pthread_mutex_lock(&w->t->mu);
	thr_local_sweep(w->t->local, loop_now(w->loop), SWEEP_BUDGET);
	pthread_mutex_unlock(&w->t->mu);
	if (w->redis != NULL && w->ping == NULL) {
		w->ping = redis_loop_cmd(w->redis, 1, argv, lens, on_ping, w,
		    &err);
		if (w->ping == NULL)
			thr_backend_state(w, false, err);
	}
	(void)timer_set(&w->tick, TICK_MS);
}

static void
on_ping(void *ctx, const struct redisReply *r, const char *error)
{
	struct throttle_worker *w = ctx;

	w->ping = NULL;
	thr_backend_state(w, r != NULL, error);
}

/* ---- requests ------------------------------------------------------------ */

struct thr_req *
thr_req_new(struct throttle_worker *w, enum req_kind kind,
    enum throttle_service svc, uint64_t sid, const struct thr_source *src)
{
	struct thr_req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->w = w;
	q->kind = kind;
	q->svc = svc;
	q->sid = sid;
	q->src = *src;
	q->next = w->reqs;
	if (w->reqs != NULL)
		w->reqs->prev = q;
	w->reqs = q;
	return q;
}

void
thr_req_free(struct thr_req *q)
{
	struct throttle_worker *w = q->w;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		w->reqs = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	free(q);
}

void
thr_req_arg(struct thr_req *q, const char *fmt, ...)
{
	va_list ap;

	if (q->nargs >= THR_MAX_ARGS)
		return;
	va_start(ap, fmt);
	vsnprintf(q->args[q->nargs++], sizeof(q->args[0]), fmt, ap);
	va_end(ap);
}

void
thr_req_key(struct thr_req *q, const char *kind, int svc, const char *scope)
{
	thr_key(q->keys[q->nkeys++], THR_KEY_MAX, q->w->t->cf->key_prefix, kind,
	    svc, scope);
}

/* EVALSHA (or EVAL after a NOSCRIPT) with q's keys and args. 0, or -1
 * with Redis known down (the caller decides without it). */
int
thr_req_send(struct thr_req *q)
{
	const char *argv[3 + THR_MAX_KEYS + THR_MAX_ARGS];
	size_t lens[3 + THR_MAX_KEYS + THR_MAX_ARGS];
	char nk[8];
	const char *err = NULL;
	int n = 0;

	snprintf(nk, sizeof(nk), "%d", q->nkeys);
	argv[n++] = q->evaled ? "EVAL" : "EVALSHA";
	argv[n++] = q->evaled ? thr_redis_script : q->w->t->sha;
	argv[n++] = nk;
	for (int i = 0; i < q->nkeys; i++)
		argv[n++] = q->keys[i];
	for (int i = 0; i < q->nargs; i++)
		argv[n++] = q->args[i];
	for (int i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	q->rreq = redis_loop_cmd(q->w->redis, n, argv, lens, thr_on_reply, q,
	    &err);
	if (q->rreq != NULL)
		return 0;
	thr_count(q->w, q->w->t->m_err[E_DOWN]);
	thr_backend_state(q->w, false, err);
	return -1;
}

static void
thr_on_reply(void *ctx, const struct redisReply *r, const char *error)
{
	struct thr_req *q = ctx;
	struct throttle_worker *w = q->w;

	q->rreq = NULL;
	if (r != NULL && r->type == REDIS_REPLY_ERROR && !q->evaled &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* a Redis that restarted or was flushed: load it again */
		q->evaled = true;
		if (thr_req_send(q) == 0)
			return;
		r = NULL;
		error = "closed";
	}
	if (r == NULL) {
		thr_count(w,
		    w->t->m_err[error && strcmp(error, "timeout") == 0 ?
			    E_TIMEOUT :
			    E_DOWN]);
		/* sent but not answered: a stalled Redis may still run it */
		q->maybe = error == NULL || strstr(error, "refused") == NULL;
		thr_backend_state(w, false, error);
	} else if (r->type == REDIS_REPLY_ERROR) {
		thr_count(w, w->t->m_err[E_ERROR]);
		log_warn(q->sid, "throttle.redis_error", "error=\"%.*s\"",
		    (int)r->len, r->str);
		r = NULL;
	} else {
		thr_backend_state(w, true, NULL);
	}
	if (q->kind == RQ_ADMIT)
		admit_answer(q, r);
	else if (q->kind == RQ_LOGIN)
		login_answer(q, r);
	else if (q->kind == RQ_VOUCH)
		thr_vouch_answer(q, r);
	thr_req_free(q);
}

/* An integer element of an array reply, or -1. */
static long long
elem(const struct redisReply *r, size_t i)
{
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	return r->element[i]->integer;
}

/* ---- admission ------------------------------------------------------------ */

void
throttle_admit(struct throttle_worker *w, enum throttle_service svc,
    uint64_t sid, const struct sockaddr *sa, throttle_admit_cb *cb, void *ctx)
{
	struct throttle *t = w->t;
	const struct throttle_rules *r = &t->cf->svc[svc];
	struct thr_admit_result lr;
	struct thr_source src;
	struct thr_req *q;

	if (thr_source_of(t->cf, sa, &src) == -1 || thr_allowed(t, sa)) {
		thr_count(w, t->m_dec[D_ALLOWED]);
		cb(ctx, sid, true, NULL);
		return;
	}
	pthread_mutex_lock(&t->mu);
	lr = thr_rules_admit(t->local, t->cf, svc, &src, loop_now(w->loop));
	pthread_mutex_unlock(&t->mu);
	if ((q = thr_req_new(w, RQ_ADMIT, svc, sid, &src)) == NULL) {
		/* out of memory: refuse, holding nothing */
		if (lr.verdict == THR_ADMIT_OK) {
			pthread_mutex_lock(&t->mu);
			thr_rules_release(t->local, svc, &src);
			pthread_mutex_unlock(&t->mu);
		}
		cb(ctx, sid, false, NULL);
		return;
	}
	q->held_local = lr.verdict == THR_ADMIT_OK;
	q->ladmit = lr;
	q->acb = cb;
	q->ctx = ctx;
	if (w->redis != NULL) {
		for (unsigned i = 0; i < src.nscopes; i++)
			thr_req_key(q, "r", (int)svc, src.scope[i]);
		for (unsigned i = 0; i < src.nscopes; i++)
			thr_req_key(q, "c", (int)svc, src.scope[i]);
		thr_req_arg(q, "a");
		thr_req_arg(q, "%u", src.nscopes);
		thr_req_arg(q, "%lld", (long long)r->conns_ip);
		thr_req_arg(q, "%lld", (long long)r->conns_net);
		thr_req_arg(q, "%lld", (long long)r->rate_ip);
		thr_req_arg(q, "%lld", (long long)r->rate_net);
		thr_req_arg(q, "%llu", (unsigned long long)r->rate_interval);
		thr_req_arg(q, "%llu", (unsigned long long)t->cf->conn_ttl);
		if (thr_req_send(q) == 0)
			return;
		admit_answer(q, NULL);
	} else {
		admit_finish(w, q, lr.verdict, lr.scope, false);
	}
	thr_req_free(q);
}

/* Redis's verdict (r), or none: the local one or, fail-closed, a
 * refusal. */
static void
admit_answer(struct thr_req *q, const struct redisReply *r)
{
	struct throttle_worker *w = q->w;
	long long v = elem(r, 0), scope = elem(r, 1);

	if (v < 0 || scope < 0) {
		bool closed = w->redis != NULL && w->t->cf->fail_closed;
		enum thr_admit lv = closed ? THR_ADMIT_CONNS :
					     q->ladmit.verdict;

		if (closed)
			thr_count(w, w->t->m_dec[D_CLOSED]);
		else
			thr_count(w, w->t->m_local);
		/* Redis may count it late: an admitted connection releases
		 * it when it ends, a refused one now */
		if (q->maybe && lv != THR_ADMIT_OK)
			shared_release(w, q->svc, &q->src);
		admit_finish(w, q, lv, closed ? 0 : q->ladmit.scope, q->maybe);
		return;
	}
	admit_finish(w, q, (enum thr_admit)v, (unsigned)scope, true);
}

static void
admit_finish(struct throttle_worker *w, struct thr_req *q, enum thr_admit v,
    unsigned scope, bool shared)
{
	struct throttle *t = w->t;
	struct throttle_conn *tc = NULL;
	char a[THR_SCOPE_MAX];

	if (v == THR_ADMIT_OK && (tc = calloc(1, sizeof(*tc))) == NULL)
		v = THR_ADMIT_CONNS;
	if (v != THR_ADMIT_OK) {
		if (q->held_local) {
			pthread_mutex_lock(&t->mu);
			thr_rules_release(t->local, q->svc, &q->src);
			pthread_mutex_unlock(&t->mu);
		}
		thr_count(w,
		    t->m_dec[v == THR_ADMIT_RATE ?
			    (scope == 0 ? D_RATE_IP : D_RATE_NET) :
			    (scope == 0 ? D_CONNS_IP : D_CONNS_NET)]);
		snprintf(a, sizeof(a), "%s",
		    q->src.scope[scope < q->src.nscopes ? scope : 0]);
		log_info(q->sid, "throttle.refused",
		    "service=%s rule=%s%s scope=%s",
		    throttle_service_names[q->svc],
		    v == THR_ADMIT_RATE ? "rate" : "conns",
		    scope == 0 ? "_ip" : "_net", a);
		q->acb(q->ctx, q->sid, false, NULL);
		return;
	}
	tc->w = w;
	tc->svc = q->svc;
	tc->src = q->src;
	tc->local = q->held_local;
	tc->shared = shared;
	thr_count(w, t->m_dec[D_ADMITTED]);
	q->acb(q->ctx, q->sid, true, tc);
}

void
throttle_conn_end(struct throttle_conn **tcp)
{
	struct throttle_conn *tc = *tcp;
	struct throttle_worker *w;

	*tcp = NULL;
	if (tc == NULL)
		return;
	w = tc->w;
	if (tc->local) {
		pthread_mutex_lock(&w->t->mu);
		thr_rules_release(w->t->local, tc->svc, &tc->src);
		pthread_mutex_unlock(&w->t->mu);
	}
	if (tc->shared)
		shared_release(w, tc->svc, &tc->src);
	free(tc);
}

/* One connection off src's shared counts: now, or when Redis is back. */
static void
shared_release(struct throttle_worker *w, enum throttle_service svc,
    const struct thr_source *src)
{
	struct thr_req *q;

	if (w->redis == NULL)
		return;
	if (!w->down && (q = thr_req_new(w, RQ_FIRE, svc, 0, src)) != NULL) {
		for (unsigned i = 0; i < src->nscopes; i++)
			thr_req_key(q, "c", (int)svc, src->scope[i]);
		thr_req_arg(q, "r");
		thr_req_arg(q, "%u", src->nscopes);
		thr_req_arg(q, "%llu", (unsigned long long)w->t->cf->conn_ttl);
		if (thr_req_send(q) == 0)
			return;
		thr_req_free(q);
	}
	if (w->backlog == NULL &&
	    (w->backlog = calloc(BACKLOG_MAX, sizeof(*w->backlog))) == NULL)
		return;
	if (w->nbacklog >= BACKLOG_MAX) {
		/* the count lingers until conn_ttl */
		if (!w->backlog_full_logged)
			log_warn(0, "throttle.backlog_full", "worker=%u",
			    loop_index(w->loop));
		w->backlog_full_logged = true;
		return;
	}
	w->backlog[w->nbacklog++] = (struct thr_backlog){ svc, *src };
}

/* Redis is back: the releases it missed. */
static void
backlog_flush(struct throttle_worker *w)
{
	size_t n = w->nbacklog;
	struct thr_backlog *b = w->backlog;

	w->backlog = NULL;
	w->nbacklog = 0;
	w->backlog_full_logged = false;
	for (size_t i = 0; i < n; i++)
		shared_release(w, b[i].svc, &b[i].src);
	free(b);
}

/* ---- logins ---------------------------------------------------------------- */

/* q's keys and args for mode "f" or "o" (throttle_redis.c). */
static void
login_keys(struct thr_req *q, const char *mode, const char *user)
{
	const struct throttle_rules *r = &q->w->t->cf->svc[q->svc];
	const char *prefix = q->w->t->cf->key_prefix;
	char u[THR_USER_MAX + 1];

	thr_user_norm(user, u);
	for (unsigned i = 0; i < q->src.nscopes; i++)
		thr_req_key(q, "f", -1, q->src.scope[i]);
	for (unsigned i = 0; i < q->src.nscopes; i++)
		thr_req_key(q, "b", -1, q->src.scope[i]);
	if (u[0] != '\0') {
		thr_key_user(q->keys[q->nkeys++], THR_KEY_MAX, prefix, u, NULL);
		thr_key_user(q->keys[q->nkeys++], THR_KEY_MAX, prefix, u,
		    q->src.scope[0]);
	}
	thr_req_arg(q, "%s", mode);
	thr_req_arg(q, "%u", q->src.nscopes);
	if (mode[0] == 'f') {
		thr_req_arg(q, "%llu", (unsigned long long)r->fail_window);
		thr_req_arg(q, "%lld", (long long)r->block_fails);
		thr_req_arg(q, "%lld", (long long)r->block_fails_net);
		thr_req_arg(q, "%llu", (unsigned long long)r->block_time);
	}
	thr_req_arg(q, "%d", u[0] != '\0');
}

static void
login_start(struct throttle_worker *w, enum req_kind kind,
    enum throttle_service svc, uint64_t sid, const struct sockaddr *sa,
    const char *user, bool ok, throttle_login_cb *cb, void *ctx,
    bool unverified)
{
	struct throttle *t = w->t;
	struct thr_login_counts c;
	struct thr_source src;
	struct thr_req *q;
	uint64_t now = loop_now(w->loop);

	if (thr_source_of(t->cf, sa, &src) == -1 || thr_allowed(t, sa)) {
		if (cb != NULL)
			cb(ctx, sid, 0, false);
		return;
	}
	pthread_mutex_lock(&t->mu);
	c = ok ? thr_rules_ok(t->local, &src, user, now) :
		 thr_rules_fail(t->local, t->cf, svc, &src, user, now);
	pthread_mutex_unlock(&t->mu);
	if (!ok)
		thr_count(w,
		    t->m_dec[kind == RQ_FIRE ? D_BAD_COUNTED : D_FAIL_COUNTED]);
	if (w->redis == NULL ||
	    (q = thr_req_new(w, kind, svc, sid, &src)) == NULL) {
		if (cb != NULL)
			login_finish(w, svc, sid, &c, false, cb, ctx);
		return;
	}
	q->ok = ok;
	q->unverified = unverified;
	q->local = c;
	q->lcb = cb;
	q->ctx = ctx;
	login_keys(q, ok ? "o" : "f", user);
	if (thr_req_send(q) == 0)
		return;
	if (cb != NULL)
		login_answer(q, NULL);
	thr_req_free(q);
}

void
throttle_login(struct throttle_worker *w, enum throttle_service svc,
    uint64_t sid, const struct sockaddr *sa, const char *user, bool ok,
    throttle_login_cb *cb, void *ctx)
{
	login_start(w, RQ_LOGIN, svc, sid, sa, user, ok, cb, ctx, false);
}

/* The counts as they stand ("o" without a user forgives nothing), not
 * one more failure. */
void
throttle_login_unverified(struct throttle_worker *w, enum throttle_service svc,
    uint64_t sid, const struct sockaddr *sa, throttle_login_cb *cb, void *ctx)
{
	login_start(w, RQ_LOGIN, svc, sid, sa, "", true, cb, ctx, true);
}

void
throttle_bad(struct throttle_worker *w, enum throttle_service svc, uint64_t sid,
    const struct sockaddr *sa)
{
	login_start(w, RQ_FIRE, svc, sid, sa, "", false, NULL, NULL, false);
}

static void
login_answer(struct thr_req *q, const struct redisReply *r)
{
	struct thr_login_counts c;

	if (elem(r, 4) < 0) {
		if (q->w->t->cf->fail_closed) {
			login_finish(q->w, q->svc, q->sid, &q->local, true,
			    q->lcb, q->ctx);
			return;
		}
		thr_count(q->w, q->w->t->m_local);
		login_finish(q->w, q->svc, q->sid, &q->local, false, q->lcb,
		    q->ctx);
		return;
	}
	c = (struct thr_login_counts){ .ipf = elem(r, 0),
		.netf = elem(r, 1),
		.uf = elem(r, 2),
		.uipf = elem(r, 3),
		.blocked = elem(r, 4) > 0 };
	if (c.blocked)
		remember_block(q->w, q->svc, &q->src, elem(r, 4));
	else if (q->unverified)
		forget_block(q->w, &q->src);
	login_finish(q->w, q->svc, q->sid, &c, false, q->lcb, q->ctx);
}

/* Redis says src is blocked for left_ms more: believe it for a while
 * without asking, so its next passwords are not even verified
 * (throttle_blocked_now()), but not once the block has ended. */
static void
remember_block(struct throttle_worker *w, enum throttle_service svc,
    const struct thr_source *src, long long left_ms)
{
	const struct throttle_rules *r = &w->t->cf->svc[svc];
	uint64_t ttl = BLOCK_MEMORY_MS;
	char key[THR_KEY_MAX];

	if (r->block_time < ttl)
		ttl = r->block_time;
	if ((uint64_t)left_ms < ttl)
		ttl = (uint64_t)left_ms;
	thr_key(key, sizeof(key), "", "rb", -1, src->scope[0]);
	pthread_mutex_lock(&w->t->mu);
	thr_local_set_nx(w->t->local, key, 1, ttl, loop_now(w->loop));
	pthread_mutex_unlock(&w->t->mu);
}

/* Redis no longer blocks src (unblocked, or the block ran out). */
static void
forget_block(struct throttle_worker *w, const struct thr_source *src)
{
	char key[THR_KEY_MAX];

	thr_key(key, sizeof(key), "", "rb", -1, src->scope[0]);
	pthread_mutex_lock(&w->t->mu);
	thr_local_del(w->t->local, key);
	pthread_mutex_unlock(&w->t->mu);
}

bool
throttle_blocked_now(struct throttle_worker *w, const struct sockaddr *sa)
{
	struct throttle *t = w->t;
	struct thr_source src;
	char key[THR_KEY_MAX];
	uint64_t now = loop_now(w->loop);
	bool b = false;

	if (thr_source_of(t->cf, sa, &src) == -1 || thr_allowed(t, sa))
		return false;
	pthread_mutex_lock(&t->mu);
	if (w->redis != NULL && !w->down) {
		/* Redis decides; what it said lately stands in for it */
		thr_key(key, sizeof(key), "", "rb", -1, src.scope[0]);
		b = thr_local_get(t->local, key, now) > 0;
	} else {
		/* this instance's own counts decide */
		for (unsigned i = 0; i < src.nscopes && !b; i++) {
			thr_key(key, sizeof(key), "", "b", -1, src.scope[i]);
			b = thr_local_get(t->local, key, now) > 0;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (b)
		thr_count(w, t->m_dec[D_UNVERIFIED]);
	return b;
}

static void
login_finish(struct throttle_worker *w, enum throttle_service svc, uint64_t sid,
    const struct thr_login_counts *c, bool closed, throttle_login_cb *cb,
    void *ctx)
{
	const struct throttle_rules *r = &w->t->cf->svc[svc];
	uint64_t d = thr_rules_delay(r, c);

	if (closed) {
		thr_count(w, w->t->m_dec[D_CLOSED]);
		cb(ctx, sid, d > r->delay ? d : r->delay, true);
		return;
	}
	thr_count(w,
	    w->t->m_dec[c->blocked ? D_LOGIN_BLOCKED :
		    d > 0	   ? D_LOGIN_DELAYED :
				     D_LOGIN_PASSED]);
	if (c->blocked || d > 0)
		log_info(sid, "throttle.login",
		    "service=%s delay_ms=%llu blocked=%s fails_ip=%lld "
		    "fails_net=%lld fails_user=%lld",
		    throttle_service_names[svc], (unsigned long long)d,
		    c->blocked ? "yes" : "no", (long long)c->ipf,
		    (long long)c->netf, (long long)c->uf);
	cb(ctx, sid, d, c->blocked);
}

/* A plain command (SET, GET) for q: argv as given. */
int
thr_req_plain(struct thr_req *q, int argc, const char **argv)
{
	size_t lens[8];
	const char *err = NULL;

	if (argc > 8)
		return -1;
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	q->rreq = redis_loop_cmd(q->w->redis, argc, argv, lens, thr_on_reply, q,
	    &err);
	if (q->rreq != NULL)
		return 0;
	thr_count(q->w, q->w->t->m_err[E_DOWN]);
	thr_backend_state(q->w, false, err);
	return -1;
}
