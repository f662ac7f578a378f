/*
 * throttle_private.h - what the throttle's files share: a client's
 * source (its address and networks as key text), the local counter table
 * (throttle_local.c), the rules over it (throttle_rules.c, pure: the clock
 * is an argument, so unit tests drive time), the Redis script
 * (throttle_redis.c), and the plumbing of decisions on a worker's loop
 * (throttle.c: the instance, the worker, requests out on Redis) that
 * throttle_admin.c and throttle_before_smtp.c use. Nothing outside
 * throttle/ and its tests includes this.
 *
 * Key layout, the same locally and in Redis (after key_prefix):
 *   c:<svc>:<scope>   concurrent connections        TTL conn_ttl
 *   r:<svc>:<scope>   new connections this interval TTL rate_interval
 *   f:<scope>         failed logins                 TTL fail_window
 *   fu:<user>         failed logins against user    TTL fail_window
 *   fui:<user>|<ip>   ... of user from this address TTL fail_window
 *   b:<scope>         blocked                       TTL block_time
 *   pbs:<ip>          user of a recent mailbox login TTL before_smtp
 * where <scope> is an address ("192.0.2.7", "2001:db8::1") or a network
 * ("192.0.2.0/24", "2001:db8::/64", "2001:db8::/48").
 */
#ifndef RG_THROTTLE_THROTTLE_PRIVATE_H
#define RG_THROTTLE_THROTTLE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <pthread.h>
#include <stdatomic.h>

#include "core/timer.h"
#include "throttle/throttle.h"

struct redisReply;
struct redis_loop;
struct redis_loop_req;

#define THR_SCOPES 3	 /* address, network, wide network (IPv6) */
#define THR_SCOPE_MAX 64 /* "ffff:...:ffff/128" fits */
#define THR_USER_MAX 256 /* longer names are cut for counting */
#define THR_KEY_MAX (THR_USER_MAX + THR_SCOPE_MAX + 32)

/* A client as the rules see it. */
struct thr_source {
	unsigned nscopes; /* 2 (IPv4: address, /24) or 3 (IPv6) */
	char scope[THR_SCOPES][THR_SCOPE_MAX];
};

/* sa's scopes under cf's prefixes: 0, or -1 for a peer that is not IPv4
 * or IPv6 (a unix socket: never throttled). An IPv4-mapped IPv6 address
 * is its IPv4 address. */
int thr_source_of(const struct throttle_conf *cf, const struct sockaddr *sa,
    struct thr_source *src);
/* "192.0.2.7" or "2001:db8::/64" (bits below the prefix cleared) into
 * src's form: 0, or -1 when text is neither (the admin's unblock). */
int thr_source_parse(const char *text, struct thr_source *src,
    const struct throttle_conf *cf);

/* A user name as counted: ASCII lower case, cut at THR_USER_MAX, no
 * '|' kept (it separates fui:'s parts). */
void thr_user_norm(const char *user, char out[THR_USER_MAX + 1]);

/* ---- the local table (throttle_local.c) ---- */

/* Counters with an expiry: key -> value, gone (0) once now passes its
 * expiry. At most max keys; past that new keys are not kept (counted as
 * 0, so the rules fail open for them) and thr_local_full() tells. */
struct thr_local;

struct thr_local *thr_local_new(size_t max);
void thr_local_free(struct thr_local **t);
int64_t thr_local_get(struct thr_local *t, const char *key, uint64_t now);
/* Add by; a new (or expired) key starts at 0 and lives ttl ms; refresh
 * also moves an existing key's expiry to now + ttl. Returns the new
 * value (a key that could not be kept: by). */
int64_t thr_local_add(struct thr_local *t, const char *key, int64_t by,
    uint64_t ttl, bool refresh, uint64_t now);
/* Set only when absent (SET NX PX). */
void thr_local_set_nx(struct thr_local *t, const char *key, int64_t v,
    uint64_t ttl, uint64_t now);
void thr_local_del(struct thr_local *t, const char *key);
/* A string value (POP-before-SMTP's user), replacing key; read back with
 * thr_local_get_str() (NULL: absent or expired; valid until the table
 * changes, so copy it under the caller's lock). */
void thr_local_set_str(struct thr_local *t, const char *key, const char *str,
    uint64_t ttl, uint64_t now);
const char *thr_local_get_str(struct thr_local *t, const char *key,
    uint64_t now);
/* Keys held now (expired ones not yet swept included). */
size_t thr_local_count(const struct thr_local *t);
/* Drop up to budget expired keys. */
void thr_local_sweep(struct thr_local *t, uint64_t now, size_t budget);
/* Visit every live key (the admin's dump). */
typedef void thr_local_visit_fn(void *arg, const char *key, int64_t v,
    uint64_t expires);
void thr_local_each(struct thr_local *t, uint64_t now, thr_local_visit_fn *fn,
    void *arg);

/* ---- the rules (throttle_rules.c) ---- */

enum thr_admit {
	THR_ADMIT_OK = 0,
	THR_ADMIT_CONNS, /* too many concurrent connections */
	THR_ADMIT_RATE,	 /* too many new connections this interval */
};

struct thr_admit_result {
	enum thr_admit verdict;
	unsigned scope; /* which scope was over (0: address) */
};

/* What a login decision is made of: the counts after this attempt was
 * counted (failures), or as they stood (a success). */
struct thr_login_counts {
	int64_t ipf;  /* failures from the address */
	int64_t netf; /* ... from its most failing network */
	int64_t uf;   /* ... against the user name, from anywhere */
	int64_t uipf; /* ... against the user name, from this address */
	bool blocked; /* the address or one of its networks is blocked */
};

/* The key text for kind ("c", "r", "f", "b") and scope i of src, service
 * svc where the kind has one; prefix first ("" locally). */
void thr_key(char *out, size_t cap, const char *prefix, const char *kind,
    int svc, const char *scope);
void thr_key_user(char *out, size_t cap, const char *prefix, const char *user,
    const char *ip);

/* New connection from src: counts it (rate always; concurrency when it
 * is admitted). */
struct thr_admit_result thr_rules_admit(struct thr_local *t,
    const struct throttle_conf *cf, enum throttle_service svc,
    const struct thr_source *src, uint64_t now);
/* The connection admitted by thr_rules_admit() ended. */
void thr_rules_release(struct thr_local *t, enum throttle_service svc,
    const struct thr_source *src);
/* A failed login (user "" for a bad-command session): counts it, blocks
 * past the thresholds, returns the counts. */
struct thr_login_counts thr_rules_fail(struct thr_local *t,
    const struct throttle_conf *cf, enum throttle_service svc,
    const struct thr_source *src, const char *user, uint64_t now);
/* A right password: the counts as they stood; unless blocked, the user's
 * failures from this address are forgiven (taken off every counter). */
struct thr_login_counts thr_rules_ok(struct thr_local *t,
    const struct thr_source *src, const char *user, uint64_t now);
/* The wait before the answer: none for a source that has not failed;
 * else delay * 2^(n-1) capped at delay_max, n the source's failures or,
 * when more, the user name's (password spraying). */
uint64_t thr_rules_delay(const struct throttle_rules *r,
    const struct thr_login_counts *c);
/* Forget src's blocks and failures. */
void thr_rules_unblock(struct thr_local *t, const struct thr_source *src);

/* ---- Redis (throttle_redis.c) ---- */

/* The one script every decision calls (EVALSHA, EVAL on NOSCRIPT). */
extern const char thr_redis_script[];
/* Its SHA-1 in hex (41 bytes with the NUL). */
void thr_redis_sha(char out[41]);

/* ---- the decisions' plumbing (throttle.c), for throttle_admin.c and
 * throttle_before_smtp.c ---- */

#define THR_MAX_KEYS (2 * THR_SCOPES + 2) /* keys of one script call */
#define THR_MAX_ARGS 8			  /* its arguments */

/* Decisions by rule and result (throttle_decisions_total). */
enum m_dec {
	D_ADMITTED,
	D_ALLOWED,
	D_CONNS_IP,
	D_CONNS_NET,
	D_RATE_IP,
	D_RATE_NET,
	D_CLOSED,
	D_LOGIN_PASSED,
	D_LOGIN_DELAYED,
	D_LOGIN_BLOCKED,
	D_FAIL_COUNTED,
	D_BAD_COUNTED,
	D_UNVERIFIED,
	D_N
};

enum m_err { E_TIMEOUT, E_DOWN, E_ERROR, E_N };

struct throttle {
	const struct throttle_conf *cf;
	pthread_mutex_t mu;
	struct thr_local *local;
	char sha[41];
	/* for the logs: the redis address, "sentinel:<master_name>" or
	 * "none" */
	char backend[128];
	struct metrics *m;
	atomic_uint down; /* workers whose Redis is down now */
	/* worker 0's, for the admin's unblock (its thread only) */
	struct throttle_worker *w0;
	int m_up, m_tracked, m_local;
	int m_dec[D_N], m_err[E_N];
};

enum req_kind { RQ_ADMIT, RQ_LOGIN, RQ_FIRE, RQ_VOUCH };

/* One decision out on Redis (or a fire-and-forget update). */
struct thr_req {
	struct throttle_worker *w;
	struct thr_req *prev, *next;
	enum req_kind kind;
	enum throttle_service svc;
	uint64_t sid;
	struct thr_source src;
	bool ok;	 /* a login that succeeded */
	bool evaled;	 /* the script was sent whole after NOSCRIPT */
	bool maybe;	 /* no answer, but Redis may still apply it */
	bool unverified; /* a login throttle_blocked_now() stopped */
	bool held_local; /* admit: the local counters hold this one */
	struct thr_login_counts local;	/* the local answer, for a fallback */
	struct thr_admit_result ladmit; /* admit: the local verdict */
	throttle_admit_cb *acb;
	throttle_login_cb *lcb;
	throttle_vouch_cb *vcb;
	char user[THR_USER_MAX + 1]; /* vouch: the local answer, "" none */
	void *ctx;
	struct redis_loop_req *rreq;
	int nkeys, nargs;
	char keys[THR_MAX_KEYS][THR_KEY_MAX];
	char args[THR_MAX_ARGS][24];
};

/* A release Redis must still get (it was down when the connection
 * ended). */
struct thr_backlog {
	enum throttle_service svc;
	struct thr_source src;
};

struct throttle_worker {
	struct throttle *t;
	struct loop *loop;
	struct redis_loop *redis; /* NULL: local counters only */
	bool down;
	struct thr_backlog *backlog; /* sent when Redis is back */
	size_t nbacklog;
	bool backlog_full_logged;
	struct timer tick;
	struct redis_loop_req *ping;
	struct thr_req *reqs;
};

struct throttle_conn {
	struct throttle_worker *w;
	enum throttle_service svc;
	struct thr_source src;
	bool local, shared; /* which counters hold it */
};

/* Count one decision or error on w's shard. */
void thr_count(struct throttle_worker *w, int id);
/* Redis answered (up) or failed for w: logged and gauged per change. */
void thr_backend_state(struct throttle_worker *w, bool up, const char *error);
/* A request on w for src, linked in w's list; NULL out of memory. */
struct thr_req *thr_req_new(struct throttle_worker *w, enum req_kind kind,
    enum throttle_service svc, uint64_t sid, const struct thr_source *src);
void thr_req_free(struct thr_req *q);
void thr_req_arg(struct thr_req *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One key of kind for svc (-1: none) and scope, with the key prefix. */
void thr_req_key(struct thr_req *q, const char *kind, int svc,
    const char *scope);
/* The script with q's keys and args; or a plain command (at most 8
 * words). 0, or -1 with Redis known down (nothing will answer). */
int thr_req_send(struct thr_req *q);
int thr_req_plain(struct thr_req *q, int argc, const char **argv);
/* Never throttled: the allow-list. */
bool thr_allowed(const struct throttle *t, const struct sockaddr *sa);
/* throttle_before_smtp.c: a vouch request's answer (r NULL: none). */
void thr_vouch_answer(struct thr_req *q, const struct redisReply *r);

#endif
