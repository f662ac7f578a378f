/*
 * throttle.h - badguy throttling (PRODUCT.md §5, the MeterMaid idea):
 * per client address and network, concurrent and new connections; per
 * address, network and user name, failed logins that slow (tarpit) and
 * then block a source. Counters are shared by every instance through one
 * Redis (one atomic script call per decision) and kept locally too, so a
 * slow or dead Redis costs a client at most the timeout and decisions go
 * on from the local counters (fail-open, or fail-closed by config).
 *
 * Three objects: struct throttle, one per daemon (its config, the local
 * counters behind a mutex, the metrics); struct throttle_worker, one per
 * loop (its Redis connection and the requests out on it); struct
 * throttle_conn, one admitted connection's hold on the concurrency
 * counters, released with throttle_conn_end() when the connection ends.
 *
 * Answers come through callbacks keyed by the caller's session id, maybe
 * before the call returns (no Redis, Redis known down), otherwise later on
 * the loop: the caller finds its session again by id and drops an answer
 * for a session that has gone (releasing a ticket it gets).
 */
#ifndef RG_THROTTLE_THROTTLE_H
#define RG_THROTTLE_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

struct buf;
struct loop;
struct metrics;
struct net;
struct throttle;
struct throttle_conn;
struct throttle_worker;

enum throttle_service {
	THROTTLE_IMAP = 0,
	THROTTLE_POP3,
	THROTTLE_SUBMISSION,
	THROTTLE_SERVICES,
};

/* One service's rules (throttle.imap { ... }). 0 turns a limit off. */
struct throttle_rules {
	int64_t conns_ip, conns_net; /* concurrent connections */
	int64_t rate_ip, rate_net;   /* new connections per rate_interval */
	uint64_t rate_interval;	     /* ms */
	uint64_t delay, delay_max;   /* tarpit: delay * 2^(n-1), capped */
	int64_t block_fails;	     /* failures from an address: block */
	int64_t block_fails_net;     /* failures from a network: block */
	uint64_t fail_window;	     /* ms the failure counters live */
	uint64_t block_time;	     /* ms a block lasts */
	int64_t bad_commands;	     /* per session; reaching it = 1 fail */
};

struct throttle_conf {
	struct cfg_loc loc; /* line 0: no throttle group in the file */
	bool enabled;
	char *redis; /* "127.0.0.1:6379", a socket path, NULL: local */
	/* or Redis Sentinel: the master of master_name, asked from these
	 * ("host:port"); exclusive with redis */
	char **sentinels;
	unsigned nsentinels;
	char *master_name;
	uint64_t timeout; /* ms a decision waits for Redis */
	uint64_t retry;	  /* ms before reconnecting after a failure */
	bool fail_closed; /* Redis down: refuse instead of local counters */
	char *key_prefix; /* "rg:thr:" */
	struct net *allow_nets;
	unsigned nallow_nets;
	int64_t net4_prefix, net6_prefix, net6_wide_prefix;
	int64_t max_tracked;  /* local counters kept at most */
	uint64_t conn_ttl;    /* ms a concurrency counter outlives its last
			       * new connection (a crashed instance's holds) */
	uint64_t before_smtp; /* POP/IMAP-before-SMTP: ms a mailbox login
			       * lets its address submit; 0: off */
	struct throttle_rules svc[THROTTLE_SERVICES];
};

extern const struct cfg_field throttle_conf_fields[];
extern const char *const throttle_service_names[];

/* A throttle group was written (and not disabled). */
bool throttle_conf_enabled(const struct throttle_conf *cf);
/* Cross-field checks (the Redis address or the sentinels). 0, or -1
 * with err. */
int throttle_conf_check(const struct throttle_conf *cf, struct cfg_error *err);
/* Redis is configured, directly or through sentinels. */
bool throttle_conf_shared(const struct throttle_conf *cf);

/* At start-up: the local counters and the metrics. NULL with *error_r. */
struct throttle *throttle_new(const struct throttle_conf *cf, struct metrics *m,
    const char **error_r);
/* After every worker is gone. Nulls *t. */
void throttle_free(struct throttle **t);
/* A service's bad commands per session (the login core's max_bad). */
unsigned throttle_bad_commands(const struct throttle *t,
    enum throttle_service svc);

/* On l's thread: its Redis connection (opened on first use) and a health
 * ping. NULL with *error_r. */
struct throttle_worker *throttle_worker_new(struct throttle *t, struct loop *l,
    const char **error_r);
/* On l's thread after the loop stopped: requests still out are dropped
 * (their tickets released locally). Nulls *w. */
void throttle_worker_free(struct throttle_worker **w);

/* ---- decisions --------------------------------------------------------- */

/* A connection from sa may be served (ok) or is refused with the
 * protocol's temporary error. When ok, tc is the connection's hold on the
 * counters (NULL for an allow-listed or non-IP peer): the receiver owns
 * it and ends it with throttle_conn_end(). */
typedef void throttle_admit_cb(void *ctx, uint64_t sid, bool ok,
    struct throttle_conn *tc);
void throttle_admit(struct throttle_worker *w, enum throttle_service svc,
    uint64_t sid, const struct sockaddr *sa, throttle_admit_cb *cb, void *ctx);
/* The connection ended: its concurrency counts go. Nulls *tc. */
void throttle_conn_end(struct throttle_conn **tc);

/* A login from sa for user ("" when unknown) was ok (the password was
 * right) or failed: the answer waits delay_ms; refuse turns a right
 * password into a wrong one (a blocked source). A failure is counted; a
 * success clears the user's failures from this source. */
typedef void throttle_login_cb(void *ctx, uint64_t sid, uint64_t delay_ms,
    bool refuse);
void throttle_login(struct throttle_worker *w, enum throttle_service svc,
    uint64_t sid, const struct sockaddr *sa, const char *user, bool ok,
    throttle_login_cb *cb, void *ctx);
/* Whether sa is blocked now as far as this instance knows (its own
 * counts and the blocks Redis reported to it): no I/O, any thread. A
 * blocked source's passwords need not be verified. */
bool throttle_blocked_now(struct throttle_worker *w, const struct sockaddr *sa);

/* A login from sa failed without its password being verified because
 * throttle_blocked_now() said so: answered like throttle_login()'s
 * failure (cb, the delay), but not counted again; a source Redis no
 * longer blocks is forgotten, so its next password is verified. */
void throttle_login_unverified(struct throttle_worker *w,
    enum throttle_service svc, uint64_t sid, const struct sockaddr *sa,
    throttle_login_cb *cb, void *ctx);

/* A session reached the service's bad commands: one failure on sa's
 * score (no user). No answer. */
void throttle_bad(struct throttle_worker *w, enum throttle_service svc,
    uint64_t sid, const struct sockaddr *sa);

/* ---- POP/IMAP-before-SMTP (legacy, off unless before_smtp) ------------- */

/* Whether before_smtp is on. */
bool throttle_before_smtp_on(const struct throttle *t);
/* user logged in to a mailbox (IMAP, POP3) from sa: for before_smtp its
 * address may submit as user without AUTH. Locally and in Redis. */
void throttle_mailbox_login(struct throttle_worker *w,
    const struct sockaddr *sa, const char *user);
/* Who logged in to a mailbox from sa within before_smtp: cb gets the
 * user, or NULL for nobody (allow-listed or not, an unknown address is
 * nobody), maybe before this returns. */
typedef void throttle_vouch_cb(void *ctx, uint64_t sid, const char *user);
void throttle_before_smtp(struct throttle_worker *w, uint64_t sid,
    const struct sockaddr *sa, throttle_vouch_cb *cb, void *ctx);

/* ---- operators (the admin listener, throttle_admin.c) -------------------- */

/* The blocked sources and the biggest local counters (at most max of
 * each, biggest first) as JSON. 0, or -1 out of memory. */
int throttle_dump(struct throttle *t, unsigned max, struct buf *out);
/* Forget the blocks and failures of address or network ip ("192.0.2.7",
 * "2001:db8::/64") here and, through worker 0, in Redis; its normalized
 * text into ip (THROTTLE_IP_MAX bytes). On worker 0's thread (the
 * admin's). 0, or -1 when ip is neither. */
#define THROTTLE_IP_MAX 64
int throttle_unblock(struct throttle *t, char *ip);
/* core/admin.h's admin_route_fn for "/throttle" (arg: the throttle). */
int throttle_admin_route(void *arg, const char *method, size_t mlen,
    const char *target, size_t tlen, struct buf *body, const char **ctype_r);
/* The value of name in a query string q[0..n) ("ip=192.0.2.7&x=1"),
 * %-decoded, into out (cap bytes, NUL-terminated): 0, or -1 when it is
 * absent, empty, malformed, longer than cap - 1 or not printable ASCII. */
int throttle_admin_query(const char *q, size_t n, const char *name, char *out,
    size_t cap);

#endif
