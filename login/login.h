/*
 * login.h - the pre-login session both daemons share (the Dovecot
 * login-common idea): everything a connection does before its user is
 * known - greeting, capabilities, STARTTLS, the SASL exchange and plain
 * logins, the limits every protocol must enforce meanwhile - and the
 * hand-off once the user is in.
 *
 * Three parts meet here and nowhere else: this core (login_session.c,
 * login_sasl.c, login_starttls.c), one protocol's table of functions
 * (struct login_proto, login_proto.h: imap_login.c, later POP3 and SMTP),
 * and one daemon's hooks (struct login_hooks below: admit a connection,
 * authorize a master identity, take the session over). The core reaches
 * commands and the hand-off only through those tables.
 *
 * What the core enforces for every protocol and daemon: an absolute
 * pre-login deadline that commands do not restart; a delay (on the loop's
 * timers) before every failed login's answer and a number of failed logins
 * per connection, then the protocol's goodbye; failed logins count as bad
 * commands; no input is read while the output queue is over its mark; a
 * SASL response over its limit ends the exchange; STARTTLS drops what was
 * pipelined after it.
 */
#ifndef RG_LOGIN_LOGIN_H
#define RG_LOGIN_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/sasl.h"

struct auth_backend;
struct auth_entry;
struct auth_pool;
struct buf;
struct conn;
struct conn_handler;
struct listener_conf;
struct login_proto;
struct login_session;
struct login_worker;
struct loop;
struct metrics;
struct tls_server;

#define LOGIN_TAG_MAX 128 /* an IMAP tag longer than this is refused */
#define LOGIN_ID_PAIRS 30 /* IMAP ID parameters kept (RFC 2971's limit) */

/* Why a login did not succeed: one answer per kind, worded by the
 * protocol. A wrong password, an unknown user and a refused one (nologin,
 * allow_nets=) are all LOGIN_FAIL_CREDENTIALS. */
enum login_fail {
	LOGIN_FAIL_CREDENTIALS = 0,
	LOGIN_FAIL_TEMP,      /* a back-end or queue could not answer */
	LOGIN_FAIL_AUTHZID,   /* right password, may not act as that user */
	LOGIN_FAIL_PRIVACY,   /* not before TLS */
	LOGIN_FAIL_MECH,      /* no such mechanism (here, now) */
	LOGIN_FAIL_CANCELLED, /* the client cancelled the exchange ("*") */
	LOGIN_FAIL_SYNTAX,    /* a SASL response that is not one (bad
			       * base64, over the limit) */
	LOGIN_FAIL_INUSE,     /* the store is held by another session
			       * (POP3's maildrop) */
};

/* One listener's rules, from the daemon's config. Outlives its sessions. */
struct login_settings {
	const struct listener_conf *listener; /* name, tls, starttls, trusted */
	uint64_t login_timeout;	 /* ms from accept to logged in, absolute */
	uint64_t idle_timeout;	 /* ms without a byte from the client before
				  * login (0: none; waits for a verification
				  * or a fail delay do not count) */
	uint64_t fail_delay;	 /* ms before each failed login's answer */
	unsigned max_fails;	 /* failed logins, then the goodbye */
	unsigned max_bad;	 /* bad commands (failed logins count too) */
	size_t line_max;	 /* bytes in a line before login */
	bool legacy_mechanisms;	 /* CRAM-MD5 (needs {PLAIN} passwords) */
	const char *server_name; /* "ringstore": greetings, IMAP ID */
	/* SCRAM's fake salts for unknown users, the same on every instance
	 * (NULL: a random per-process secret) */
	const uint8_t *scram_secret;
	size_t scram_secret_len;
	/* SMTP: the message size announced in EHLO's SIZE (0: no number) */
	uint64_t message_max;
};

/* Who logged in, for logged_in(). Strings live until the hook returns. */
struct login_user {
	const char *user;    /* the identity to serve (a master's target) */
	const char *authcid; /* who proved it (the master, or user) */
	const char *mech;    /* "SCRAM-SHA-256", "PLAIN", ..., or the
			      * protocol's plain login ("IMAP-LOGIN") */
	const char *tag;     /* IMAP: the command's tag; else "" */
};

/* admit()'s answers. */
enum login_admit {
	LOGIN_ADMIT_REFUSE = -1, /* the protocol's temporary error, close */
	LOGIN_ADMIT_OK = 0,	 /* greet it now */
	LOGIN_ADMIT_PENDING = 1, /* login_session_admitted() says, maybe
				  * before admit() returns */
};

struct login_hooks {
	/* A connection arrived: an enum login_admit (the throttle hooks in
	 * here). While pending the session reads nothing and says nothing;
	 * the client may hang up meanwhile (find the session by id). NULL:
	 * everyone is admitted. */
	int (*admit)(struct login_session *s);
	/* A login's outcome is known (ok: the password was right; user as
	 * far as known, maybe "") and its answer waits for the daemon's
	 * login_session_judged(), maybe before judge() returns: the
	 * throttle's tarpit and block. Meanwhile the session reads
	 * nothing. NULL: answered at once (after fail_delay for a
	 * failure). */
	void (*judge)(struct login_session *s, const char *user, bool ok);
	/* The session is being freed (closed, or handed off: then the
	 * daemon took what it needed first). bad: it was closed for too
	 * many bad commands. NULL: nothing to do. */
	void (*ended)(struct login_session *s, bool bad);
	/* SMTP: a MAIL command came before any login. The daemon may vouch
	 * for a user (POP/IMAP-before-SMTP) with login_session_vouched(),
	 * maybe before this returns; meanwhile the session reads nothing.
	 * NULL: such a command is refused (530). */
	void (*vouch)(struct login_session *s);
	/* A password is about to be verified: true when the client's source
	 * is known blocked now (answered at once, from memory), so the
	 * password is not verified at all and the login fails like a wrong
	 * one (judge() then holds its answer). Saves a blocked guesser's
	 * hashing. NULL: always verified. */
	bool (*blocked)(struct login_session *s);
	/* authcid's password was right and it asks to act as authzid (not
	 * empty, different): SASL_V_OK, SASL_V_AUTHZID (not allowed to) or
	 * SASL_V_FAIL (a target that cannot log in: answered like a wrong
	 * password, so nobody probes names). NULL: no authzid is offered. */
	enum sasl_verdict (*authorize)(struct login_session *s,
	    const char *authcid, const char *authzid);
	/* The user is in. The daemon takes over and answers later, on this
	 * loop, with login_session_handoff() or login_session_refuse();
	 * meanwhile the session reads nothing. The session may go away
	 * first (the client hung up): find it again by its id. */
	void (*logged_in)(struct login_session *s, const struct login_user *u);
	/* The certificates for STARTTLS now (reloaded on SIGHUP), NULL for
	 * none (STARTTLS is then not offered). */
	struct tls_server *(*tls)(struct login_session *s);
};

/* Counters of one protocol's pre-login phase (login_metrics_init()). */
struct login_metrics {
	int sessions;	  /* gauge: sessions before login */
	int logins_ok;	  /* <proto>_logins_total{result="ok"} */
	int logins_fail;  /* ... {result="fail"}: every failed attempt */
	int bad_commands; /* <proto>_bad_commands_total */
	int closed[6];	  /* <proto>_login_closed_total{reason}: the
			    * goodbyes (enum login_bye order) */
	int long_lines;	  /* <proto>_login_long_lines_total */
};

/* What a listener hands its connections to: the ctx of loop_listen() with
 * login_handler(). Shared by the workers; each finds its own login_worker
 * in workers[loop_index()]. */
struct login_listener {
	const struct login_proto *proto;
	const struct login_hooks *hooks;
	const struct login_settings *set;
	const struct login_metrics *metrics;
	struct login_worker **workers; /* one per worker, by loop index */
	void *ctx; /* the daemon's, for its hooks: login_session_ctx() */
};

/* Register proto's counters in m (at start-up). 0, or -1 without memory. */
int login_metrics_init(struct metrics *m, const struct login_proto *proto,
    struct login_metrics *lm);

/* The protocols (login/<proto>_login.c). */
extern const struct login_proto imap_login_proto;
extern const struct login_proto pop3_login_proto;
extern const struct login_proto smtp_login_proto;

/* ---- per worker ------------------------------------------------------ */

/* The worker's sessions (by id, so late answers find them or are
 * dropped) and what they share: the users, the verify pool, metrics.
 * On l's thread. NULL when out of memory. */
struct login_worker *login_worker_new(struct loop *l,
    struct auth_backend *users, struct auth_pool *verify);
/* After the loop stopped: waits for verifications still out, then frees
 * (every session is gone by then). Nulls *w. */
void login_worker_free(struct login_worker **w);
/* Sessions before login on this worker now, husks waiting for a late
 * answer included (tests, metrics). */
unsigned login_worker_sessions(const struct login_worker *w);

/* The connection handler for login listeners (ctx: login_listener). */
const struct conn_handler *login_handler(void);

/* ---- for the daemon's hooks ----------------------------------------- */

struct login_session *login_session_find(struct login_worker *w, uint64_t sid);
uint64_t login_session_sid(const struct login_session *s);
struct conn *login_session_conn(const struct login_session *s);
void *login_session_ctx(const struct login_session *s);
bool login_session_tls(const struct login_session *s);
/* SMTP: the name the client gave in EHLO/HELO (or XCLIENT HELO), "" for
 * none; ESMTP: it said EHLO. */
const char *login_session_helo(const struct login_session *s);
bool login_session_esmtp(const struct login_session *s);
/* IMAP: the client's ID parameters as field/value pairs ((*pairs_r)[2i],
 * (*pairs_r)[2i+1], a NULL value for NIL); returns the number of pairs
 * (0: it sent no ID, or ID NIL). Valid while s lives. */
unsigned login_session_client_id(const struct login_session *s,
    const char *const **pairs_r);
/* The route the auth back-end gave with the login's answer (the HTTP
 * hook's Auth-Server:Auth-Port, the entry's host=), or NULL: valid in
 * logged_in() and until the session is handed off. */
const char *login_session_auth_host(const struct login_session *s);

/* The daemon's answer to admit(): ok greets the client, otherwise it
 * hears the protocol's temporary error and the connection closes. */
void login_session_admitted(struct login_session *s, bool ok);
/* The daemon's answer to judge(): the login's answer waits delay_ms more
 * (a failure: at least fail_delay); refuse turns a right password into a
 * wrong one (counted and answered as one). */
void login_session_judged(struct login_session *s, uint64_t delay_ms,
    bool refuse);
/* The daemon's answer to vouch(): user logs in without a password (its
 * entry's policy still applies) and the command that asked is replayed
 * to whoever takes the session over; NULL refuses the command as
 * before. */
void login_session_vouched(struct login_session *s, const char *user);

/* One pointer the daemon keeps with the session (NULL at first); the
 * daemon frees what it points to (ended() is its last chance). */
void login_session_set_data(struct login_session *s, void *data);
void *login_session_data(const struct login_session *s);
/* The session's loop (valid while the session is). */
struct loop *login_session_loop(const struct login_session *s);

/* The daemon finished what logged_in() started: the session's connection
 * and any input the client pipelined after its login command (appended
 * to *rest) are the caller's now, and s is freed. The caller gives the
 * connection its own handler and ctx at once (conn_set_handler()). */
struct conn *login_session_handoff(struct login_session *s, struct buf *rest);

/* The daemon could not serve the user after all: the client gets the
 * protocol's answer for why (LOGIN_FAIL_TEMP: the store is down;
 * LOGIN_FAIL_INUSE: another session holds it) and stays logged out. log
 * says more for the log line. */
void login_session_refuse(struct login_session *s, enum login_fail why,
    const char *log);

#endif
