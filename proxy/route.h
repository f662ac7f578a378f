/*
 * route.h - which back end (store) serves a user: ringgate's routing.
 *
 * Order (PRODUCT.md §4), first answer wins:
 *   1. the user entry's host= field: a comma-separated list of back-end
 *      NAMES from the configured pool (never addresses: a user entry must
 *      not be able to send the master credentials to an arbitrary host).
 *      The first listed back end that is up serves; all listed down gives
 *      ROUTE_DOWN. A name not in the pool is a data error: logged, counted
 *      (route_host_unknown_total) and ignored, as if host= were absent;
 *   2. a Redis route entry "<key_prefix><user>" (a plain string holding a
 *      back-end name), when route.redis is configured, read with hiredis's
 *      async API driven by the worker's loop (redis/redis_loop.h), cached
 *      per worker with a TTL (no entry is cached too); a Redis error,
 *      timeout or unknown name falls back to hashing and is counted;
 *   3. weighted rendezvous (highest random weight) hashing of the user
 *      name over the pool (proxy/route_hash.h): stable across restarts and
 *      hosts, and adding a back end moves only its share of the users.
 *
 * A user stays on their store: when the back end chosen by 2 or 3 is down
 * the answer is ROUTE_DOWN (the caller gives the protocol's temporary
 * error), never another store. Health state (proxy/health.h) is kept per
 * back end and protocol in atomics, written by the health checker's
 * worker and by any worker whose real connect failed.
 *
 * Threads: a router is built from config on the main thread and shared
 * read-only by every worker (besides the atomics); each worker makes its
 * own route_worker (Redis connection, cache) on its loop's thread.
 */
#ifndef RG_PROXY_ROUTE_H
#define RG_PROXY_ROUTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

struct loop;
struct metrics;
struct router;
struct route_worker;
struct route_req;

enum route_proto { ROUTE_IMAP, ROUTE_POP3, ROUTE_SUBMISSION, ROUTE_NPROTO };
enum route_tls { ROUTE_TLS_NONE, ROUTE_TLS_STARTTLS, ROUTE_TLS_IMPLICIT };

/* ---- configuration (proxy/config.c embeds struct route_conf) ---- */

struct route_backend_conf {
	struct cfg_loc loc;
	char *name;
	struct cfg_addr imap, pop3, submission; /* len 0 = not served */
	int64_t weight;
	int tls;   /* enum route_tls, via route_tls_names */
	char *sni; /* certificate name to verify; NULL = none configured */
};

struct route_redis_conf {
	struct cfg_loc loc;
	char *redis; /* "host:port" or a unix socket path; NULL = no Redis */
	/* or Redis Sentinel: the master of master_name, asked from these
	 * ("host:port"); exclusive with redis */
	char **sentinels;
	unsigned nsentinels;
	char *master_name;
	uint64_t redis_timeout; /* ms, connect and each command */
	uint64_t cache_ttl;	/* ms */
	int64_t cache_size;	/* entries per worker */
	char *key_prefix;	/* "rg:route:" */
	/* the HTTP auth hook's Auth-Server/Auth-Port may name an address
	 * that is no configured back end (plain, no health state) */
	bool auth_http_any;
};

struct route_health_conf {
	uint64_t interval, timeout; /* ms */
	int64_t fall, rise;	    /* failures to go down, successes up */
};

struct route_conf {
	struct route_backend_conf *backends;
	unsigned nbackends;
	struct route_redis_conf route;
	struct route_health_conf health;
};

extern const char *const route_tls_names[];   /* "none","starttls","implicit" */
extern const char *const route_proto_names[]; /* "imap","pop3","submission" */

/* Field tables; offsets are relative to the struct each describes:
 *   "backends" CFG_LIST of route_backend_fields (struct route_backend_conf)
 *   "route"    CFG_GROUP of route_redis_fields  (struct route_redis_conf)
 *   "health"   CFG_GROUP of route_health_fields (struct route_health_conf)
 */
extern const struct cfg_field route_backend_fields[];
extern const struct cfg_field route_redis_fields[];
extern const struct cfg_field route_health_fields[];

/* Cross-field checks after cfg_load (names unique and well-formed, each
 * back end serves at least one protocol). 0, or -1 with err filled. */
int route_conf_check(const struct route_conf *rc, struct cfg_error *err);

/* ---- the router ---- */

struct route_addr {
	struct sockaddr_storage ss;
	socklen_t len; /* 0: this back end does not serve the protocol */
	char text[64];
};

struct route_backend {
	char name[64];
	unsigned index;
	unsigned weight;
	enum route_tls tls;
	char sni[256]; /* "" = none configured */
	struct route_addr addr[ROUTE_NPROTO];
	/* health, per protocol: true = up (starts up). Read with
	 * route_backend_up(); written by health.c and route_report_connect. */
	atomic_bool up[ROUTE_NPROTO];
};

/* Build the router from rc (after route_conf_check) and register its
 * metrics in m (may be NULL in tests). NULL with *error_r. */
struct router *router_new(const struct route_conf *rc, struct metrics *m,
    const char **error_r);
/* After every worker freed its route_worker. Nulls *r; NULL is a no-op. */
void router_free(struct router **r);

unsigned router_nbackends(const struct router *r);
const struct route_backend *router_backend(const struct router *r, unsigned i);
const struct route_backend *router_find(const struct router *r,
    const char *name, size_t len);

/* The back end whose address for p is sa (family, address and port
 * equal), or NULL. */
const struct route_backend *router_find_addr(const struct router *r,
    enum route_proto p, const struct sockaddr *sa, socklen_t len);

/* Health state, any thread. */
bool route_backend_up(const struct route_backend *be, enum route_proto p);

/* A real login connected to be (ok, after ms) or could not (connect
 * refused, timeout, no greeting): records the connect latency and, on
 * failure, marks be down for p at once (passive check) so the next login
 * does not wait; the health checker brings it back. Loop thread of w. */
void route_report_connect(struct route_worker *w,
    const struct route_backend *be, enum route_proto p, bool ok, uint64_t ms);

/* ---- per worker ---- */

/* On l's thread; NULL on allocation failure. Connects to Redis lazily. */
struct route_worker *route_worker_new(struct router *r, struct loop *l);
/* On l's thread, before the loop is freed: pending lookups are
 * cancelled without callbacks. Nulls *w; NULL is a no-op. */
void route_worker_free(struct route_worker **w);

/* ---- lookups ---- */

enum route_status {
	ROUTE_OK,   /* be serves the user: connect to addr */
	ROUTE_DOWN, /* the user's back end is down: temporary error */
	ROUTE_NONE, /* no back end serves this protocol: temporary error */
};
enum route_source { ROUTE_SRC_HOST, ROUTE_SRC_REDIS, ROUTE_SRC_HASH };

struct route_query {
	const char *user;	/* NUL-terminated */
	const char *host_field; /* the user entry's host=, or NULL */
	enum route_proto proto;
	uint64_t sid; /* for logs */
};

struct route_result {
	enum route_status status;
	enum route_source source;
	const struct route_backend *be; /* OK: chosen; DOWN: the one down */
	const struct sockaddr *addr;	/* OK: be->addr[proto] */
	socklen_t len;
	const char *why; /* static text for logs ("redis timeout, hashed") */
};

typedef void route_done_fn(void *ctx, const struct route_result *res);

/* Find the back end for q. When the answer is known at once (host=, cache
 * hit, no Redis) done() runs before this returns and *req_r is NULL.
 * Otherwise *req_r is set and done() runs later on w's loop thread,
 * unless route_cancel() is called first. q's strings are copied. Never
 * fails: every error becomes a result (falling back to hashing). */
void route_lookup(struct route_worker *w, const struct route_query *q,
    route_done_fn *done, void *ctx, struct route_req **req_r);
/* The session left: no callback. Nulls *req; NULL is a no-op. */
void route_cancel(struct route_req **req);

#endif
