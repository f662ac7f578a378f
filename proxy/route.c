/*
 * route.c - picking a user's back end: host= names, the Redis route entry
 * (cached per worker), weighted rendezvous hashing; the back ends' health
 * state and the routing metrics. See route.h for the order and choices.
 *
 * The router is immutable after router_new() except for the per-back-end
 * health atomics, so workers share it without locks. Each worker has its
 * own route_worker: a Redis connection on its loop (core/redis_loop.h)
 * and a bounded, 4-way set-associative cache of user -> back end with a
 * TTL, so a busy user costs Redis one GET per TTL per worker.
 *
 * Must never: block the loop (Redis is asynchronous, everything else is
 * memory), route to an address a user entry names (only pool names), or
 * move a user to another store because theirs is down.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/redis_loop.h"
#include "proxy/route_private.h"

#define F(type, field) offsetof(type, field)
#define CACHE_WAYS 4
#define USER_MAX 512 /* longer names are not cached nor sent to Redis */

const char *const route_tls_names[] = { "none", "starttls", "implicit", NULL };
const char *const route_proto_names[] = { "imap", "pop3", "submission", NULL };

const struct cfg_field route_backend_fields[] = {
	{ "", CFG_LOC, F(struct route_backend_conf, loc) },
	{ "name", CFG_STRING, F(struct route_backend_conf, name), CFG_REQUIRED,
	    .hint = "a short label, the value users' host= fields and Redis "
		    "route entries name" },
	{ "imap", CFG_ADDR, F(struct route_backend_conf, imap) },
	{ "pop3", CFG_ADDR, F(struct route_backend_conf, pop3) },
	{ "submission", CFG_ADDR, F(struct route_backend_conf, submission) },
	{ "weight", CFG_INT, F(struct route_backend_conf, weight), 0, "1", 1,
	    10000 },
	{ "tls", CFG_ENUM, F(struct route_backend_conf, tls), 0, "none",
	    .choices = route_tls_names },
	{ "sni", CFG_STRING, F(struct route_backend_conf, sni) },
	{ NULL },
};

const struct cfg_field route_redis_fields[] = {
	{ "", CFG_LOC, F(struct route_redis_conf, loc) },
	{ "redis", CFG_STRING, F(struct route_redis_conf, redis),
	    .hint = "\"127.0.0.1:6379\" or a unix socket path" },
	{ "sentinels", CFG_STRLIST, F(struct route_redis_conf, sentinels),
	    .count_offset = F(struct route_redis_conf, nsentinels),
	    .hint = "[\"127.0.0.1:26379\", ...]: Redis Sentinels asked for "
		    "the master of master_name" },
	{ "master_name", CFG_STRING, F(struct route_redis_conf, master_name),
	    .hint = "the name the sentinels monitor the master by" },
	{ "redis_timeout", CFG_DURATION,
	    F(struct route_redis_conf, redis_timeout), 0, "200ms", 1, 60000 },
	{ "cache_ttl", CFG_DURATION, F(struct route_redis_conf, cache_ttl), 0,
	    "60s", 0, 86400000 },
	{ "cache_size", CFG_INT, F(struct route_redis_conf, cache_size), 0,
	    "10000", 0, 10000000 },
	{ "key_prefix", CFG_STRING, F(struct route_redis_conf, key_prefix), 0,
	    "rg:route:" },
	{ "auth_http_any", CFG_BOOL, F(struct route_redis_conf, auth_http_any),
	    0, "false" },
	{ NULL },
};

const struct cfg_field route_health_fields[] = {
	{ "interval", CFG_DURATION, F(struct route_health_conf, interval), 0,
	    "5s", 50, 3600000 },
	{ "timeout", CFG_DURATION, F(struct route_health_conf, timeout), 0,
	    "2s", 10, 600000 },
	{ "fall", CFG_INT, F(struct route_health_conf, fall), 0, "2", 1, 100 },
	{ "rise", CFG_INT, F(struct route_health_conf, rise), 0, "2", 1, 100 },
	{ NULL },
};

enum m_source { MS_HOST, MS_CACHE, MS_REDIS, MS_HASH, MS_NSOURCE };
enum m_fallback { MF_ERROR, MF_TIMEOUT, MF_DOWN, MF_UNKNOWN, MF_NFALLBACK };

struct router {
	struct route_backend *be;
	unsigned nbe;
	struct route_hash_node *nodes; /* one per back end, same order */
	char *redis, *prefix;
	char **sentinels; /* nsentinels > 0: Sentinel instead of redis */
	unsigned nsentinels;
	char *master_name;
	uint64_t redis_timeout, cache_ttl;
	unsigned cache_size;

	struct metrics *m;
	int m_source[MS_NSOURCE];
	int m_status[3];
	int m_fallback[MF_NFALLBACK];
	int m_host_unknown;
	int *m_up;	    /* nbe * ROUTE_NPROTO, gauge_set */
	int *m_connect;	    /* nbe, histogram */
	int *m_connect_err; /* nbe, counter */
};

struct cache_entry {
	char *user; /* NULL = empty */
	uint64_t hash;
	uint64_t expires; /* loop time */
	int be;		  /* back-end index, -1 = no route entry */
};

struct route_worker {
	struct router *r;
	struct loop *loop;
	struct redis_loop *redis; /* NULL: no Redis configured */
	struct cache_entry *cache;
	unsigned nsets;		/* power of 2; 0 = no cache */
	struct route_req *reqs; /* pending lookups, for free */
};

struct route_req {
	struct route_worker *w;
	route_done_fn *done;
	void *ctx;
	struct redis_loop_req *rreq;
	enum route_proto proto;
	uint64_t sid, hash;
	struct route_req *prev, *next;
	char user[]; /* NUL-terminated */
};

/* building */
static int router_metrics_init(struct router *r);
static void collect_up(struct metrics *m, void *arg);
static int backend_init(struct route_backend *be, unsigned i,
    const struct route_backend_conf *bc);
/* the three sources */
static bool by_host(struct route_worker *w, const struct route_query *q,
    struct route_result *res);
static bool by_cache(struct route_worker *w, const struct route_query *q,
    uint64_t hash, struct route_result *res);
static void by_hash(struct route_worker *w, const char *user, uint64_t hash,
    enum route_proto p, struct route_result *res);
static void finish_be(struct route_worker *w, unsigned i, enum route_proto p,
    enum route_source src, const char *why, struct route_result *res);
static void deliver(struct route_worker *w, route_done_fn *done, void *ctx,
    struct route_result *res, uint64_t sid, const char *user);
/* Redis */
static struct route_req *redis_ask(struct route_worker *w,
    const struct route_query *q, uint64_t hash, route_done_fn *done, void *ctx,
    enum m_fallback *why_r);
static void on_redis(void *ctx, const struct redisReply *reply,
    const char *error);
static void req_free(struct route_req *req);
/* cache */
static struct cache_entry *cache_find(struct route_worker *w, const char *user,
    uint64_t hash);
static void cache_put(struct route_worker *w, const char *user, uint64_t hash,
    int be);

/* ---- configuration ---- */

static bool
name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 64 &&
	    strspn(s,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789_-.") == n;
}

int
route_conf_check(const struct route_conf *rc, struct cfg_error *err)
{
	for (unsigned i = 0; i < rc->nbackends; i++) {
		const struct route_backend_conf *b = &rc->backends[i];

		if (!name_ok(b->name)) {
			cfg_error_at(err, &b->loc,
			    "back-end name '%s' must be 1-63 letters, digits, "
			    "'.', '_' or '-'",
			    b->name);
			return -1;
		}
		if (b->imap.len == 0 && b->pop3.len == 0 &&
		    b->submission.len == 0) {
			cfg_error_at(err, &b->loc,
			    "back end '%s' serves nothing: give at least one "
			    "of imap, pop3, submission (\"host:port\")",
			    b->name);
			return -1;
		}
		if (b->sni != NULL && strlen(b->sni) >= 256) {
			cfg_error_at(err, &b->loc,
			    "back end '%s': sni too long", b->name);
			return -1;
		}
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(rc->backends[j].name, b->name) == 0) {
				cfg_error_at(err, &b->loc,
				    "back-end name '%s' is already used at "
				    "line %d",
				    b->name, rc->backends[j].loc.line);
				return -1;
			}
		}
	}
	if (rc->route.redis != NULL && rc->route.redis[0] != '/') {
		struct cfg_addr a;

		if (cfg_parse_addr(rc->route.redis, &a) == -1) {
			cfg_error_at(err, &rc->route.loc,
			    "route.redis '%s' must be \"host:port\" with a "
			    "numeric host, or a unix socket path",
			    rc->route.redis);
			return -1;
		}
	}
	if (redis_loop_sentinel_check("route", rc->route.redis,
		rc->route.sentinels, rc->route.nsentinels,
		rc->route.master_name, &rc->route.loc, err) == -1)
		return -1;
	if (rc->route.key_prefix != NULL &&
	    strlen(rc->route.key_prefix) > 128) {
		cfg_error_at(err, &rc->route.loc,
		    "route.key_prefix is longer than 128 bytes");
		return -1;
	}
	return 0;
}

/* ---- the router ---- */

static int
backend_init(struct route_backend *be, unsigned i,
    const struct route_backend_conf *bc)
{
	const struct cfg_addr *a[ROUTE_NPROTO] = { &bc->imap, &bc->pop3,
		&bc->submission };

	snprintf(be->name, sizeof(be->name), "%s", bc->name);
	be->index = i;
	be->weight = (unsigned)(bc->weight > 0 ? bc->weight : 1);
	be->tls = (enum route_tls)bc->tls;
	snprintf(be->sni, sizeof(be->sni), "%s", bc->sni ? bc->sni : "");
	for (unsigned p = 0; p < ROUTE_NPROTO; p++) {
		be->addr[p].ss = a[p]->ss;
		be->addr[p].len = a[p]->len;
		snprintf(be->addr[p].text, sizeof(be->addr[p].text), "%s",
		    a[p]->text);
		atomic_init(&be->up[p], true);
	}
	return 0;
}

struct router *
router_new(const struct route_conf *rc, struct metrics *m, const char **error_r)
{
	struct router *r = calloc(1, sizeof(*r));
	unsigned n = rc->nbackends;

	if (r == NULL)
		goto nomem;
	r->nbe = n;
	r->be = calloc(n ? n : 1, sizeof(*r->be));
	r->nodes = calloc(n ? n : 1, sizeof(*r->nodes));
	if (r->be == NULL || r->nodes == NULL)
		goto nomem;
	for (unsigned i = 0; i < n; i++) {
		backend_init(&r->be[i], i, &rc->backends[i]);
		r->nodes[i].key = route_hash_str(r->be[i].name,
		    strlen(r->be[i].name));
		r->nodes[i].weight = r->be[i].weight;
	}
	if (rc->route.redis != NULL &&
	    (r->redis = strdup(rc->route.redis)) == NULL)
		goto nomem;
	if (rc->route.nsentinels > 0) {
		r->sentinels = calloc(rc->route.nsentinels, sizeof(char *));
		r->master_name = strdup(rc->route.master_name);
		if (r->sentinels == NULL || r->master_name == NULL)
			goto nomem;
		for (unsigned i = 0; i < rc->route.nsentinels; i++) {
			r->sentinels[i] = strdup(rc->route.sentinels[i]);
			if (r->sentinels[i] == NULL)
				goto nomem;
			r->nsentinels = i + 1;
		}
	}
	r->prefix = strdup(
	    rc->route.key_prefix ? rc->route.key_prefix : "rg:route:");
	if (r->prefix == NULL)
		goto nomem;
	r->redis_timeout = rc->route.redis_timeout ? rc->route.redis_timeout :
						     200;
	r->cache_ttl = rc->route.cache_ttl;
	r->cache_size = (unsigned)rc->route.cache_size;
	r->m = m;
	if (router_metrics_init(r) == -1) {
		*error_r = "cannot register the routing metrics";
		router_free(&r);
		return NULL;
	}
	return r;
nomem:
	*error_r = "out of memory";
	router_free(&r);
	return NULL;
}

static void
collect_up(struct metrics *m, void *arg)
{
	const struct router *r = arg;

	for (unsigned i = 0; i < r->nbe; i++)
		for (unsigned p = 0; p < ROUTE_NPROTO; p++)
			metrics_set(m, r->m_up[i * ROUTE_NPROTO + p],
			    route_backend_up(&r->be[i], (enum route_proto)p) ?
				1 :
				0);
}

static int
router_metrics_init(struct router *r)
{
	static const char *const src[] = { "host", "cache", "redis", "hash" };
	static const char *const st[] = { "ok", "down", "none" };
	static const char *const fb[] = { "error", "timeout", "down",
		"unknown_backend" };
	static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
		0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
	char l[160];

	r->m_up = malloc(sizeof(int) * (r->nbe * ROUTE_NPROTO + 1));
	r->m_connect = malloc(sizeof(int) * (r->nbe + 1));
	r->m_connect_err = malloc(sizeof(int) * (r->nbe + 1));
	if (r->m_up == NULL || r->m_connect == NULL || r->m_connect_err == NULL)
		return -1;
	for (unsigned i = 0; i < MS_NSOURCE; i++)
		r->m_source[i] = -1;
	for (unsigned i = 0; i < 3; i++)
		r->m_status[i] = -1;
	for (unsigned i = 0; i < MF_NFALLBACK; i++)
		r->m_fallback[i] = -1;
	r->m_host_unknown = -1;
	for (unsigned i = 0; i < r->nbe * ROUTE_NPROTO; i++)
		r->m_up[i] = -1;
	for (unsigned i = 0; i < r->nbe; i++)
		r->m_connect[i] = r->m_connect_err[i] = -1;
	if (r->m == NULL)
		return 0;
	for (unsigned i = 0; i < MS_NSOURCE; i++) {
		snprintf(l, sizeof(l), "source=\"%s\"", src[i]);
		r->m_source[i] = metrics_counter(r->m, "route_lookups_total",
		    "Back-end lookups, by where the answer came from.", l);
	}
	for (unsigned i = 0; i < 3; i++) {
		snprintf(l, sizeof(l), "result=\"%s\"", st[i]);
		r->m_status[i] = metrics_counter(r->m, "route_results_total",
		    "Back-end lookups, by result (down and none give the "
		    "client a temporary error).",
		    l);
	}
	for (unsigned i = 0; i < MF_NFALLBACK; i++) {
		snprintf(l, sizeof(l), "reason=\"%s\"", fb[i]);
		r->m_fallback[i] = metrics_counter(r->m,
		    "route_redis_fallback_total",
		    "Lookups hashed because the Redis route entry could not "
		    "be used.",
		    l);
	}
	/* backend_up is read from the atomics at each scrape, so two
	 * threads changing the state at once cannot leave it stale */
	if (metrics_collector(r->m, collect_up, r) == -1)
		return -1;
	r->m_host_unknown = metrics_counter(r->m, "route_host_unknown_total",
	    "host= names that are not in the back-end pool (ignored).", NULL);
	for (unsigned i = 0; i < r->nbe; i++) {
		for (unsigned p = 0; p < ROUTE_NPROTO; p++) {
			int *id = &r->m_up[i * ROUTE_NPROTO + p];

			if (r->be[i].addr[p].len == 0)
				continue;
			snprintf(l, sizeof(l), "backend=\"%s\",proto=\"%s\"",
			    r->be[i].name, route_proto_names[p]);
			*id = metrics_gauge_set(r->m, "backend_up",
			    "1 when the back end is up for new logins.", l);
		}
		snprintf(l, sizeof(l), "backend=\"%s\"", r->be[i].name);
		r->m_connect[i] = metrics_histogram(r->m,
		    "backend_connect_seconds",
		    "Time to connect to a back end (logins and health "
		    "checks).",
		    l, buckets, sizeof(buckets) / sizeof(buckets[0]));
		r->m_connect_err[i] = metrics_counter(r->m,
		    "backend_connect_failures_total",
		    "Logins that could not connect to their back end.", l);
	}
	return 0;
}

void
router_free(struct router **rp)
{
	struct router *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	free(r->be);
	free(r->nodes);
	free(r->redis);
	for (unsigned i = 0; i < r->nsentinels; i++)
		free(r->sentinels[i]);
	free(r->sentinels);
	free(r->master_name);
	free(r->prefix);
	free(r->m_up);
	free(r->m_connect);
	free(r->m_connect_err);
	free(r);
}

unsigned
router_nbackends(const struct router *r)
{
	return r->nbe;
}

const struct route_backend *
router_backend(const struct router *r, unsigned i)
{
	return i < r->nbe ? &r->be[i] : NULL;
}

const struct route_backend *
router_find(const struct router *r, const char *name, size_t len)
{
	for (unsigned i = 0; i < r->nbe; i++)
		if (strlen(r->be[i].name) == len &&
		    memcmp(r->be[i].name, name, len) == 0)
			return &r->be[i];
	return NULL;
}

static bool
same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a,
					 *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a,
					  *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

const struct route_backend *
router_find_addr(const struct router *r, enum route_proto p,
    const struct sockaddr *sa, socklen_t len)
{
	if (len == 0)
		return NULL;
	for (unsigned i = 0; i < r->nbe; i++)
		if (r->be[i].addr[p].len != 0 &&
		    same_addr((const struct sockaddr *)&r->be[i].addr[p].ss,
			sa))
			return &r->be[i];
	return NULL;
}

struct metrics *
router_metrics(const struct router *r)
{
	return r->m;
}

int
router_connect_metric(const struct router *r, unsigned i)
{
	return i < r->nbe ? r->m_connect[i] : -1;
}

bool
route_backend_up(const struct route_backend *be, enum route_proto p)
{
	return atomic_load_explicit(&be->up[p], memory_order_relaxed);
}

bool
router_set_up(struct router *r, unsigned i, enum route_proto p, bool up,
    const char *why)
{
	struct route_backend *be = &r->be[i];

	if (atomic_exchange(&be->up[p], up) == up)
		return false;
	if (up)
		log_info(0, "backend.up",
		    "backend=%s proto=%s address=%s why=%s", be->name,
		    route_proto_names[p], be->addr[p].text, why);
	else
		log_warn(0, "backend.down",
		    "backend=%s proto=%s address=%s why=%s", be->name,
		    route_proto_names[p], be->addr[p].text, why);
	return true;
}

void
route_report_connect(struct route_worker *w, const struct route_backend *be,
    enum route_proto p, bool ok, uint64_t ms)
{
	struct metrics_shard *s = loop_shard(w->loop);

	if (ok) {
		metrics_observe(s, w->r->m_connect[be->index], ms / 1000.0);
		return;
	}
	metrics_add(s, w->r->m_connect_err[be->index], 1);
	router_set_up(w->r, be->index, p, false, "login_connect_failed");
}

/* ---- per worker ---- */

struct route_worker *
route_worker_new(struct router *r, struct loop *l)
{
	struct route_worker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->r = r;
	w->loop = l;
	if (r->redis != NULL || r->nsentinels > 0) {
		struct redis_loop_conf rc = { .target = r->redis,
			.timeout_ms = r->redis_timeout,
			.retry_ms = 1000,
			.sentinels = (const char *const *)r->sentinels,
			.nsentinels = r->nsentinels,
			.master_name = r->master_name };
		const char *err;

		if ((w->redis = redis_loop_new(l, &rc, &err)) == NULL)
			goto fail;
		if (r->cache_size > 0 && r->cache_ttl > 0) {
			unsigned sets = 1;

			while (sets * CACHE_WAYS < r->cache_size)
				sets <<= 1;
			w->cache = calloc((size_t)sets * CACHE_WAYS,
			    sizeof(*w->cache));
			if (w->cache == NULL)
				goto fail;
			w->nsets = sets;
		}
	}
	return w;
fail:
	route_worker_free(&w);
	return NULL;
}

void
route_worker_free(struct route_worker **wp)
{
	struct route_worker *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	while (w->reqs != NULL) {
		struct route_req *req = w->reqs;

		redis_loop_cancel(&req->rreq);
		req_free(req);
	}
	redis_loop_free(&w->redis);
	if (w->cache != NULL)
		for (unsigned i = 0; i < w->nsets * CACHE_WAYS; i++)
			free(w->cache[i].user);
	free(w->cache);
	free(w);
}

/* ---- lookups ---- */

void
route_lookup(struct route_worker *w, const struct route_query *q,
    route_done_fn *done, void *ctx, struct route_req **req_r)
{
	struct route_result res = { 0 };
	size_t ulen = strlen(q->user);
	uint64_t hash = route_hash_str(q->user, ulen);
	enum m_fallback fb;

	*req_r = NULL;
	if (by_host(w, q, &res) || by_cache(w, q, hash, &res)) {
		deliver(w, done, ctx, &res, q->sid, q->user);
		return;
	}
	if (w->redis != NULL && ulen <= USER_MAX) {
		*req_r = redis_ask(w, q, hash, done, ctx, &fb);
		if (*req_r != NULL)
			return;
		metrics_add(loop_shard(w->loop), w->r->m_fallback[fb], 1);
		by_hash(w, q->user, hash, q->proto, &res);
		res.why = "redis down, hashed";
	} else {
		by_hash(w, q->user, hash, q->proto, &res);
	}
	deliver(w, done, ctx, &res, q->sid, q->user);
}

void
route_cancel(struct route_req **reqp)
{
	struct route_req *req = *reqp;

	if (req == NULL)
		return;
	*reqp = NULL;
	redis_loop_cancel(&req->rreq);
	req_free(req);
}

/* Count, log the unusual answers, and call back. */
static void
deliver(struct route_worker *w, route_done_fn *done, void *ctx,
    struct route_result *res, uint64_t sid, const char *user)
{
	struct metrics_shard *s = loop_shard(w->loop);
	static const enum m_source src[] = { MS_HOST, MS_REDIS, MS_HASH };
	enum m_source ms = src[res->source];

	if (res->source == ROUTE_SRC_REDIS && res->why != NULL &&
	    strcmp(res->why, "cache") == 0)
		ms = MS_CACHE;
	metrics_add(s, w->r->m_source[ms], 1);
	metrics_add(s, w->r->m_status[res->status], 1);
	if (res->status != ROUTE_OK) {
		char qu[128];

		log_info(sid, "route.unavailable",
		    "user=%s backend=%s result=%s why=\"%s\"",
		    log_quote(qu, sizeof(qu), user, (size_t)-1),
		    res->be ? res->be->name : "-",
		    res->status == ROUTE_DOWN ? "down" : "none",
		    res->why ? res->why : "");
	}
	done(ctx, res);
}

/* The user's host= list: the first listed back end that is up. */
static bool
by_host(struct route_worker *w, const struct route_query *q,
    struct route_result *res)
{
	const char *p = q->host_field, *name;
	const struct route_backend *down = NULL;
	size_t n;
	bool known = false;

	if (p == NULL)
		return false;
	while (route_host_next(&p, &name, &n)) {
		const struct route_backend *be;

		if ((be = router_find(w->r, name, n)) == NULL) {
			char qn[80], qu[128];

			metrics_add(loop_shard(w->loop), w->r->m_host_unknown,
			    1);
			log_warn(q->sid, "route.host_unknown",
			    "user=%s host=%s",
			    log_quote(qu, sizeof(qu), q->user, (size_t)-1),
			    log_quote(qn, sizeof(qn), name, n));
		} else if (be->addr[q->proto].len != 0) {
			known = true;
			if (route_backend_up(be, q->proto)) {
				finish_be(w, be->index, q->proto,
				    ROUTE_SRC_HOST, "host=", res);
				return true;
			}
			if (down == NULL)
				down = be;
		} else {
			known = true;
		}
	}
	if (!known)
		return false; /* nothing usable: as if there were no host= */
	res->source = ROUTE_SRC_HOST;
	res->be = down;
	res->status = down ? ROUTE_DOWN : ROUTE_NONE;
	res->why = down ? "host= back ends down" :
			  "host= back ends do not serve this protocol";
	return true;
}

static bool
by_cache(struct route_worker *w, const struct route_query *q, uint64_t hash,
    struct route_result *res)
{
	struct cache_entry *e;

	if (w->cache == NULL || (e = cache_find(w, q->user, hash)) == NULL)
		return false;
	if (e->be >= 0) {
		finish_be(w, (unsigned)e->be, q->proto, ROUTE_SRC_REDIS,
		    "cache", res);
	} else {
		by_hash(w, q->user, hash, q->proto, res);
		res->why = "no route entry (cached), hashed";
	}
	return true;
}

static void
by_hash(struct route_worker *w, const char *user, uint64_t hash,
    enum route_proto p, struct route_result *res)
{
	int i = route_hash_pick(w->r->nodes, w->r->nbe, hash);

	(void)user;
	if (i < 0) {
		memset(res, 0, sizeof(*res));
		res->source = ROUTE_SRC_HASH;
		res->status = ROUTE_NONE;
		res->why = "no back ends configured";
		return;
	}
	finish_be(w, (unsigned)i, p, ROUTE_SRC_HASH, "hashed", res);
}

/* The user's store is back end i: serve from it, or say why not. */
static void
finish_be(struct route_worker *w, unsigned i, enum route_proto p,
    enum route_source src, const char *why, struct route_result *res)
{
	const struct route_backend *be = &w->r->be[i];

	memset(res, 0, sizeof(*res));
	res->source = src;
	res->be = be;
	res->why = why;
	if (be->addr[p].len == 0) {
		res->status = ROUTE_NONE;
		res->why = "back end does not serve this protocol";
	} else if (!route_backend_up(be, p)) {
		res->status = ROUTE_DOWN;
		res->why = "back end down";
	} else {
		res->status = ROUTE_OK;
		res->addr = (const struct sockaddr *)&be->addr[p].ss;
		res->len = be->addr[p].len;
	}
}

/* ---- Redis ---- */

static struct route_req *
redis_ask(struct route_worker *w, const struct route_query *q, uint64_t hash,
    route_done_fn *done, void *ctx, enum m_fallback *why_r)
{
	size_t ulen = strlen(q->user), plen = strlen(w->r->prefix);
	struct route_req *req = malloc(sizeof(*req) + ulen + 1);
	char key[USER_MAX + 130];
	const char *argv[2] = { "GET", key };
	size_t lens[2] = { 3, plen + ulen };
	const char *err;

	*why_r = MF_DOWN;
	if (req == NULL)
		return NULL;
	memcpy(key, w->r->prefix, plen);
	memcpy(key + plen, q->user, ulen);
	memset(req, 0, sizeof(*req));
	memcpy(req->user, q->user, ulen + 1);
	req->w = w;
	req->done = done;
	req->ctx = ctx;
	req->proto = q->proto;
	req->sid = q->sid;
	req->hash = hash;
	req->rreq = redis_loop_cmd(w->redis, 2, argv, lens, on_redis, req,
	    &err);
	if (req->rreq == NULL) {
		log_debug(q->sid, "route.redis_unavailable", "error=\"%s\"",
		    err);
		free(req);
		return NULL;
	}
	req->next = w->reqs;
	if (w->reqs != NULL)
		w->reqs->prev = req;
	w->reqs = req;
	return req;
}

static void
on_redis(void *ctx, const struct redisReply *reply, const char *error)
{
	struct route_req *req = ctx;
	struct route_worker *w = req->w;
	struct route_result res;
	const struct route_backend *be;
	int fb = -1;

	req->rreq = NULL;
	if (reply == NULL) {
		fb = strcmp(error, "timeout") == 0 ? MF_TIMEOUT : MF_ERROR;
		log_warn(req->sid, "route.redis_error", "error=\"%s\"", error);
	} else if (reply->type == REDIS_REPLY_NIL) {
		cache_put(w, req->user, req->hash, -1);
	} else if (reply->type == REDIS_REPLY_STRING &&
	    (be = router_find(w->r, reply->str, reply->len)) != NULL) {
		cache_put(w, req->user, req->hash, (int)be->index);
		finish_be(w, be->index, req->proto, ROUTE_SRC_REDIS,
		    "redis route entry", &res);
	} else if (reply->type == REDIS_REPLY_STRING) {
		char qv[80], qu[128];

		fb = MF_UNKNOWN;
		log_warn(req->sid, "route.redis_unknown_backend",
		    "user=%s value=%s",
		    log_quote(qu, sizeof(qu), req->user, (size_t)-1),
		    log_quote(qv, sizeof(qv), reply->str, reply->len));
	} else {
		fb = MF_ERROR;
		log_warn(req->sid, "route.redis_error",
		    "error=\"unexpected reply type %d\"", reply->type);
	}
	if (fb >= 0)
		metrics_add(loop_shard(w->loop), w->r->m_fallback[fb], 1);
	if (reply == NULL || reply->type != REDIS_REPLY_STRING || fb >= 0) {
		by_hash(w, req->user, req->hash, req->proto, &res);
		res.why = fb >= 0 ? "redis route entry unusable, hashed" :
				    "no route entry, hashed";
	}
	deliver(w, req->done, req->ctx, &res, req->sid, req->user);
	req_free(req);
}

static void
req_free(struct route_req *req)
{
	struct route_worker *w = req->w;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		w->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	free(req);
}

/* ---- cache: 4-way set-associative, per worker ---- */

static struct cache_entry *
cache_find(struct route_worker *w, const char *user, uint64_t hash)
{
	struct cache_entry *set =
	    &w->cache[(hash & (w->nsets - 1)) * CACHE_WAYS];
	uint64_t now = loop_now(w->loop);

	for (unsigned i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set[i];

		if (e->user != NULL && e->hash == hash && e->expires > now &&
		    strcmp(e->user, user) == 0)
			return e;
	}
	return NULL;
}

static void
cache_put(struct route_worker *w, const char *user, uint64_t hash, int be)
{
	struct cache_entry *set, *victim;
	char *copy;

	if (w->cache == NULL)
		return;
	set = &w->cache[(hash & (w->nsets - 1)) * CACHE_WAYS];
	victim = &set[0];
	for (unsigned i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set[i];

		if (e->user != NULL && e->hash == hash &&
		    strcmp(e->user, user) == 0) {
			victim = e; /* refresh in place */
			break;
		}
		if (e->user == NULL || e->expires < victim->expires)
			victim = e; /* empty, or the one expiring first */
		if (e->user == NULL)
			break;
	}
	if (victim->user == NULL || strcmp(victim->user, user) != 0) {
		if ((copy = strdup(user)) == NULL)
			return;
		free(victim->user);
		victim->user = copy;
	}
	victim->hash = hash;
	victim->be = be;
	victim->expires = loop_now(w->loop) + w->r->cache_ttl;
}
