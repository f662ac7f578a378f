/*
 * relay.h - ringstore's queue runner: hands the messages in the relay
 * spool (backend/spool.h) to the configured smarthost, and its config
 * group `relay { }`.
 *
 * The runner lives on one worker's loop (worker 0): a timer picks due
 * entries, an SMTP client on conn_connect() speaks EHLO, STARTTLS
 * (required and verified unless configured otherwise), MAIL, one RCPT per
 * recipient, DATA with the message dot-stuffed and streamed from the
 * spool file with back-pressure. Every disk access (listing, loading,
 * reading chunks, updating, removing, writing DSNs) and the smarthost's
 * name lookup run on the store pool and answer through the worker's
 * outbox. Per recipient: 2xx done; 5xx failed at once; 4xx, a connection
 * failure or a timeout retries after relay.retry_min, doubling up to
 * relay.retry_max, until relay.give_up after arrival. Failed recipients
 * get one RFC 3464 DSN (backend/relay_dsn.c): into the submitting user's
 * INBOX when the entry names one, else through the spool to the sender;
 * never for a null sender. An entry is removed when every recipient is
 * final.
 *
 * Threads: relay_conf_* and relay_new()/relay_free() on the main thread;
 * relay_enabled() and relay_wake() anywhere; relay_worker_*() on the
 * runner's loop thread.
 */
#ifndef RG_BACKEND_RELAY_H
#define RG_BACKEND_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

struct loop;
struct metrics;
struct pool;
struct pool_outbox;
struct relay;
struct spool;

/* The `relay { }` section. */
struct relay_conf {
	struct cfg_loc loc;
	char *smarthost;     /* "host:port"; NULL: remote mail is refused */
	char *spool;	     /* NULL: <mail_root>/.spool */
	int starttls;	     /* enum relay_starttls */
	bool verify;	     /* the smarthost's certificate and name */
	char *ca_file;	     /* NULL: the system store */
	char *helo;	     /* the EHLO name; NULL: the host name */
	char *user;	     /* AUTH PLAIN to the smarthost when set */
	char *password_file; /* its password (first line) */
	uint64_t retry_min, retry_max, give_up; /* ms */
	uint64_t timeout;			/* ms per SMTP step */
	uint64_t scan_interval; /* ms between spool directory scans */
	int64_t connections;	/* at most this many at once */
};

enum relay_starttls { RELAY_STARTTLS_REQUIRED = 0, RELAY_STARTTLS_OFF };

/* Fields of struct relay_conf, for a CFG_GROUP named "relay". */
extern const struct cfg_field relay_conf_fields[];

/* Cross-field checks: smarthost is host:port, retry_min <= retry_max,
 * user needs password_file. 0 or -1 with err at the section. */
int relay_conf_check(const struct relay_conf *rc, struct cfg_error *err);

/* The spool directory the config names (malloc'd): relay.spool or
 * <mail_root>/.spool. NULL when out of memory. */
char *relay_spool_path(const struct relay_conf *rc, const char *mail_root);

/* Whether mail for other domains is accepted at all: a smarthost is
 * configured. Without one the submission session answers a remote RCPT
 * with 550 5.7.1. Any thread. */
bool relay_conf_enabled(const struct relay_conf *rc);

/* Everything the runner needs, from main. */
struct relay_opts {
	const struct relay_conf *conf;
	const char *mail_root; /* for DSNs into local INBOXes */
	struct spool *spool;   /* opened by the caller, outlives the runner */
	struct pool *store;    /* disk and DNS jobs */
	struct metrics *metrics;
};

/* Build the runner (TLS client context, metrics). Main thread, before
 * the workers start. NULL with *error_r. With spool and metrics NULL it
 * only checks what start-up would (ringstore -t: the CA file, the
 * password file). */
struct relay *relay_new(const struct relay_opts *o, const char **error_r);
/* After relay_worker_stop() and the outbox closed. Nulls *r. */
void relay_free(struct relay **r);

/* True when r runs (a smarthost is configured). NULL is false. */
bool relay_enabled(const struct relay *r);

/* Something was spooled: look at the queue now rather than at the next
 * scan. Any thread; a no-op before the runner started or on NULL.
 * relay_new() makes every spool_put() on its spool call it
 * (spool_set_notify), so callers of spool_put() need not. */
void relay_wake(struct relay *r);

/* On the runner's loop thread (worker_init of worker 0): scan the spool
 * and start delivering; jobs answer through ob. 0 or -1. */
int relay_worker_start(struct relay *r, struct loop *l, struct pool_outbox *ob);
/* On that thread after its loop stopped and before ob is closed: no new
 * work; answers still out are dropped as they arrive. */
void relay_worker_stop(struct relay *r);

#endif
