/*
 * ringstore.h - ringstore's own types: its configuration, the read-only
 * server context every worker shares, and the per-worker context.
 *
 * The server context is built on the main thread before any worker starts
 * and only read afterwards. Each worker loop owns one struct rs_worker
 * (its sessions, its outbox for answers from the pools); nothing in it is
 * touched by another thread except through the outbox.
 */
#ifndef RG_BACKEND_RINGSTORE_H
#define RG_BACKEND_RINGSTORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth_conf.h"
#include "backend/relay.h"
#include "backend/policy.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/listener_conf.h"
#include "core/loop.h"
#include "core/tls_conf.h"
#include "login/login.h"

struct auth_entry;
struct auth_service;
struct imap_session;
struct imap_watcher;
struct login_worker;
struct loop;
struct maildir_cache;
struct metrics;
struct pool;
struct pool_outbox;
struct rs_worker;
struct tls_server;

/* One IMAP listener. */
struct rs_config {
	struct daemon_conf daemon;
	struct {
		struct cfg_addr listen;
	} admin;
	struct tls_conf tls;
	struct {
		uint64_t handshake_timeout, idle_timeout, login_timeout;
		uint64_t login_fail_delay; /* ms before a failed login's NO */
		int64_t login_fails;	   /* per connection, then BYE */
		uint64_t output_buffer;
		uint64_t line_max_login, line_max;
		uint64_t command_max;
		uint64_t append_max;
		int64_t bad_commands;
		/* per user, for CREATE and RENAME (maildir_check_limits) */
		int64_t folders_max, folder_depth_max, folder_name_max;
		uint64_t search_cpu; /* ms of CPU per SEARCH; 0 = no limit */
		/* LMTP and submission (smtp_txn.h) */
		uint64_t message_max;	/* SIZE: bytes of one message */
		int64_t recipients_max; /* accepted RCPTs per message */
		uint64_t smtp_line_max; /* a command line, CRLF included */
		/* sessions at once (core/conn_limit.h) */
		int64_t max_sessions, fd_reserve;
	} limits;
	struct auth_conf auth;	      /* auth/auth_conf.h */
	struct content_policy policy; /* backend/policy.h */
	struct {
		char *mail_root;
		int64_t threads;
		int64_t queue;
		int64_t login_threads; /* the login lane (srv->login) */
	} storage;
	struct listener_conf *imap;
	unsigned nimap;
	struct listener_conf *pop3; /* pop3_session.c */
	unsigned npop3;
	struct relay_conf relay; /* backend/relay.h */
	/* the submission intake (submit_session.c) */
	struct listener_conf *submission;
	unsigned nsubmission;
	struct {
		char *hostname;	      /* Received: "by"; NULL: the host's */
		int64_t hops_max;     /* Received headers, then 554 5.4.6 */
		bool hide_client_ip;  /* no [ip] in Received (VisNetic) */
		char **local_domains; /* delivered here, not relayed */
		unsigned nlocal_domains;
	} submit;
	struct listener_conf *lmtp; /* LMTP (lmtp_session.c): trusted MTAs */
	unsigned nlmtp;
};

/* ringstore's services, each with a list of listeners in the config. */
enum rs_service_id { RS_IMAP = 0, RS_POP3, RS_LMTP, RS_SUBMIT, RS_SERVICES };

/* One service's listener list in a config (the "imap" list...). */
struct rs_list {
	const char *name;	 /* the config key, "imap" */
	const char *alpn;	 /* its TLS ALPN protocol */
	struct listener_conf *l; /* n entries */
	unsigned n;
};

/* Every service's list, indexed by enum rs_service_id. */
void rs_config_lists(const struct rs_config *cf,
    struct rs_list lists[RS_SERVICES]);

/* Load and check a config file. 0, or -1 with err filled (file:line). */
int rs_config_load(const char *path, struct rs_config *cf,
    struct cfg_error *err);
void rs_config_free(struct rs_config *cf);

/* The TLS server for a service's listeners (alpn: its ALPN protocol;
 * NULL when no certificate is configured). 0 or -1 with *error_r. */
int rs_tls_build(const struct rs_config *cf, const char *alpn,
    struct tls_server **ts_r, const char **error_r);

/* Bounds of srv->folders: a 10,000-message folder's snapshot is ~1.2 MB. */
#define RS_FOLDER_CACHE_ENTRIES 256
#define RS_FOLDER_CACHE_BYTES (64u << 20)

/* LMTP's metric ids (lmtp_session.c): deliveries by deliver.h's result,
 * refusals by smtp_txn.h's reason and LMTP's own (unknown user, lookup). */
#define RS_LMTP_RESULTS 4
#define RS_LMTP_REFUSALS 10
struct rs_lmtp_metrics {
	int sessions, messages, bytes;
	int deliveries[RS_LMTP_RESULTS];
	int refusals[RS_LMTP_REFUSALS];
	struct policy_metrics policy; /* backend/policy.h */
};

/* Metric ids, registered at start-up. */
struct rs_metrics {
	int sessions, commands, bad_commands;
	int store_jobs, store_busy;
	int master_refused;	       /* master logins refused (authzid) */
	int search_limit, search_gone; /* SEARCHes stopped: budget, client */
	struct rs_pop3_metrics {       /* pop3_session.c */
		int sessions, commands, bad_commands, retr_bytes;
		int closed_idle, closed_bad, in_use, update_failed;
	} pop3;
	struct rs_lmtp_metrics lmtp;
};

/* The submission intake's counters (submit_session.c), by outcome. */
enum rs_submit_count {
	RS_SUB_SESSIONS = 0, /* gauge */
	RS_SUB_ACCEPTED,     /* messages accepted (delivered or spooled) */
	RS_SUB_LOCAL,	     /* recipients delivered here */
	RS_SUB_REMOTE,	     /* recipients spooled for the smarthost */
	RS_SUB_R_SENDER,     /* refused: MAIL FROM not the user's */
	RS_SUB_R_FROM,	     /* refused: header From: not the user's */
	RS_SUB_R_RELAY,	     /* refused: remote domain, no smarthost */
	RS_SUB_R_UNKNOWN,    /* refused: local recipient unknown */
	RS_SUB_R_HOPS,	     /* refused: too many Received headers */
	RS_SUB_R_POLICY,     /* refused by the content policy */
	RS_SUB_R_CORE,	     /* refused by the SMTP core (syntax, line,
			      * sequence, recipients, size, data) */
	RS_SUB_FAILED,	     /* a temporary failure (451/452) */
	RS_SUB_COUNT,
};

struct rs_submit_metrics {
	int id[RS_SUB_COUNT];
	int core[8];		      /* by enum smtp_txn_refusal */
	struct policy_metrics policy; /* backend/policy.h */
};

/* Shared, read-only after start-up. */
struct rs_server {
	const struct rs_config *cf;
	/* the passwd-file, the verify pool, master users, SCRAM's secret
	 * (auth/auth_service.h); reloaded by the main thread only */
	struct auth_service *auth;
	struct pool *store;
	/* The login lane: jobs of sessions not yet authenticated (the
	 * Maildir set-up of a login), so logins never queue behind mailbox
	 * work; NULL: they go to store. */
	struct pool *login;
	/* Folder snapshots for SELECT/EXAMINE (maildir.h), shared by the
	 * store threads; NULL runs without. */
	struct maildir_cache *folders;
	/* every listener of every service, with its TLS context on each
	 * worker (STARTTLS takes it from there) */
	struct listen_set *lset;
	struct rs_metrics m;
	/* the relay spool and its queue runner (backend/spool.h, relay.h):
	 * spool_put() on the store pool wakes the runner; relay NULL or
	 * !relay_enabled(): no smarthost, remote RCPTs get 550 5.7.1 */
	struct spool *spool;
	struct relay *relay;
	/* the login core's counters, per protocol (by enum rs_service_id) */
	struct login_metrics login_m[RS_SERVICES];
	struct rs_submit_metrics submit_m;
};

/* submit_session.c: register the submission intake's counters. */
int rs_submit_metrics_init(struct metrics *m, struct rs_submit_metrics *sm);

struct rs_listener;

/* What a login made ready for the session after it (rs_login.c): the
 * session's start() takes what it keeps and leaves NULL / -1 behind. */
struct rs_ready {
	char *user; /* who logged in (malloc'd) */
	char *dir;  /* their Maildir, when the service has one */
	int lock;   /* a lock a service took at login, or -1 */
	char tag[LOGIN_TAG_MAX + 1]; /* the login command's tag (IMAP) */
	bool tls;
	char *helo;    /* SMTP: the client's EHLO/HELO name (malloc'd) */
	bool esmtp;    /* SMTP: it was EHLO */
	char mech[32]; /* how the user logged in ("PLAIN", "XCLIENT") */
	struct auth_entry *entry; /* the user's entry, when prepare()
				   * looked it up (submission: aliases) */
	/* on failure: the store is not ready (err, errtext) or another
	 * session holds it (in_use) */
	int err;
	const char *errtext;
	bool in_use;
};

/* One service of ringstore: how its listeners' connections are served. */
struct rs_service {
	const char *name;		    /* "imap": logs */
	const struct login_proto *login;    /* its login phase; NULL: none */
	const struct conn_handler *handler; /* without a login phase */
	bool maildir; /* the user's Maildir is made ready at login */
	/* On the login lane, after the Maildir: whatever else must be
	 * ready before the login is answered (POP3 locks the maildrop).
	 * NULL: nothing. */
	void (*prepare)(const struct rs_server *srv, struct rs_ready *r);
	/* On the loop: the session takes the connection over, its first
	 * words the login command's answer. 0, or -1 (c aborted). */
	int (*start)(struct rs_worker *w, struct conn *c,
	    const struct rs_listener *li, struct rs_ready *r, struct buf *rest);
};

/* The services (each in its session file). */
extern const struct rs_service rs_imap_service;
extern const struct rs_service rs_pop3_service;

/* pop3_session.c: its counters (ringstore_pop3_...). 0 or -1. */
int pop3_register_metrics(struct rs_server *srv, struct metrics *m);

extern const struct rs_service rs_lmtp_service;

/* lmtp_session.c: register LMTP's metrics. 0 or -1. */
int rs_lmtp_metrics_init(struct rs_server *srv, struct metrics *m);
extern const struct rs_service rs_submit_service;

/* One listener's context (for the login core's hooks, or a service's
 * handler without a login phase). */
struct rs_listener {
	const struct rs_server *srv;
	const struct listener_conf *conf;
	const struct rs_service *svc;
	unsigned index; /* in srv->lset */
};

#define RS_SESSION_BUCKETS 1024

/* Per worker loop (loop ctx). */
struct rs_worker {
	const struct rs_server *srv;
	struct loop *loop;
	struct pool_outbox *outbox;
	struct imap_watcher *watcher; /* inotify for IDLE pushes */
	struct login_worker *login;   /* sessions before login (login/) */
	struct imap_session *sessions[RS_SESSION_BUCKETS]; /* by sid */
};

/* rs_login.c: the login core's hooks (login/login.h). */
extern const struct login_hooks rs_login_hooks;

/* The session with this id on this worker, or NULL if it has gone. */
struct imap_session *rs_worker_session(struct rs_worker *w, uint64_t sid);

/* ---- session plumbing shared by the POP3 and IMAP sessions ---------- */

/* Queue n bytes on c (NULL or closing: dropped); no memory aborts it. */
static inline void
rs_conn_send(struct conn *c, const void *p, size_t n)
{
	if (c == NULL || conn_closing(c))
		return;
	if (conn_write(c, p, n) == -1)
		conn_abort(c, CR_NOMEM);
}

/* on_data: append the bytes to in and re-arm the idle timer. 0, or -1
 * when there was no memory (c is aborted). */
static inline int
rs_conn_input(struct conn *c, struct buf *in, const char *p, size_t n,
    uint64_t idle_ms)
{
	if (buf_append(in, p, n) == -1) {
		conn_abort(c, CR_NOMEM);
		return -1;
	}
	conn_set_timer(c, idle_ms);
	return 0;
}

/* on_timer: true when the session, still open, may say its goodbye (the
 * output has room for it); otherwise c is aborted (CR_TIMEOUT). */
static inline bool
rs_conn_idle(struct conn *c, bool open)
{
	if (open && !conn_out_full(c))
		return true;
	conn_abort(c, CR_TIMEOUT);
	return false;
}

/* Pause reading from c when stop holds, resume when it no longer does;
 * paused says whether it is paused now. Returns the new paused state. */
static inline bool
rs_conn_hold(struct conn *c, bool stop, bool paused)
{
	if (stop && !paused)
		conn_pause(c);
	else if (!stop && paused)
		conn_resume(c);
	return stop;
}

/* Format one reply line into line[0..size) with CRLF, cut to fit (size
 * at least 3). Returns its length. */
static inline size_t rs_vline(char *line, size_t size, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static inline size_t
rs_vline(char *line, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(line, size - 2, fmt, ap);

	if (n < 0)
		n = 0;
	if ((size_t)n > size - 3)
		n = (int)(size - 3);
	memcpy(line + n, "\r\n", 2);
	return (size_t)n + 2;
}

#endif
