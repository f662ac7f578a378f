/*
 * throttle_private.h - what the throttle's files share: a client's
 * source (its address and networks as key text), the local counter table
 * (throttle_local.c), the rules over it (throttle_rules.c, pure: the clock
 * is an argument, so unit tests drive time), and the Redis script
 * (throttle_redis.c). Nothing outside throttle/ and its unit tests
 * includes this.
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

#include "throttle/throttle.h"

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

#endif
