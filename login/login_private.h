/*
 * login_private.h - what the login core (login_session.c, login_sasl.c,
 * login_starttls.c) shares with the protocol files (imap_login.c, ...):
 * the session, the protocol's table of functions, and the services a
 * protocol calls. Nothing outside login/ includes this.
 *
 * The split: a protocol file parses its commands and formats every line
 * the client sees (struct login_proto); the core owns the connection,
 * the session's state and timers, the SASL exchange with auth/, STARTTLS,
 * and every limit. A protocol never touches the connection, the auth pool
 * or a timer; the core never writes a protocol's words.
 */
#ifndef RG_LOGIN_LOGIN_PRIVATE_H
#define RG_LOGIN_LOGIN_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/sasl.h"
#include "core/buf.h"
#include "core/timer.h"
#include "login/login.h"

#define LOGIN_SESSION_BUCKETS 1024

/* Why the session ends before login: the protocol's goodbye. */
enum login_bye {
	LOGIN_BYE_TIMEOUT = 0, /* the pre-login deadline passed */
	LOGIN_BYE_FAILS,       /* too many failed logins */
	LOGIN_BYE_BAD,	       /* too many bad commands */
	LOGIN_BYE_REFUSED,     /* not admitted: try again later */
	LOGIN_BYE_INTERNAL,    /* out of memory and such */
	LOGIN_BYE_IDLE,	       /* nothing from the client for idle_timeout */
};

/* One protocol's pre-login: commands in, words out. */
struct login_proto {
	const char *name;  /* "imap": logs, metric names */
	size_t state_size; /* its own state, kept with the session */
	/* State set up (zeroed memory); 0, or -1 out of memory. */
	int (*init)(struct login_session *s);
	void (*free)(struct login_session *s);
	/* The first words, when the session is ready (after an implicit
	 * TLS handshake). */
	void (*greet)(struct login_session *s);
	/* Input waits in login_input(s): take commands from it until it
	 * holds no whole one or login_busy(s) (each command answers through
	 * the services below). */
	void (*input)(struct login_session *s);
	/* The capability list as this protocol words it (IMAP: the atoms
	 * after "CAPABILITY"). */
	void (*capability)(struct login_session *s, struct buf *b);
	/* A SASL challenge (base64, NUL-terminated) to send; the next
	 * client line is the response (login_sasl_response()). */
	void (*sasl_challenge)(struct login_session *s, const char *b64,
	    size_t len);
	/* A login command ended without a login (after the delay, for
	 * credentials). */
	void (*auth_result)(struct login_session *s, enum login_fail why);
	/* The answer to STARTTLS: ok is false when it is not available. */
	void (*starttls_reply)(struct login_session *s, bool ok);
	/* The last words before the core closes the connection. */
	void (*bye)(struct login_session *s, enum login_bye why);
	/* SMTP: nobody vouched for the command login_vouch() held: refuse
	 * it as without a daemon (NULL for protocols that never ask). */
	void (*vouch_refused)(struct login_session *s);
};

enum login_state {
	LS_ACTIVE = 0, /* reading commands */
	LS_VERIFY,     /* a password is on the verify pool */
	LS_DELAY,      /* a failed login waits for its answer */
	LS_HANDOFF,    /* the daemon is taking over */
	LS_ADMIT,      /* admit() has not answered yet: not greeted */
	LS_JUDGE,      /* judge() has not answered yet */
	LS_TARPIT,     /* a right password's answer waits the throttle's
			* delay */
	LS_VOUCH,      /* vouch() has not answered yet */
	LS_CLOSING,    /* goodbye said */
};

struct login_worker {
	struct loop *loop;
	struct auth_backend *users;
	struct auth_pool *verify;
	struct pool_outbox *outbox; /* verify answers come back here */
	struct login_session *table[LOGIN_SESSION_BUCKETS]; /* by sid */
};

struct login_session {
	const struct login_listener *li;
	struct login_worker *w;
	struct conn *c;
	uint64_t sid;
	enum login_state state;
	bool tls;	/* TLS is on (implicit, or after STARTTLS) */
	bool paused;	/* we paused the connection */
	bool gone;	/* the connection closed under a verification */
	bool greeted;	/* greet() ran */
	unsigned calls; /* callbacks on the stack: free on the way out */
	unsigned bad, fails;
	uint64_t started;
	struct buf in; /* received, not yet taken by the protocol */
	struct timer deadline, delay, idle;
	enum login_fail delayed; /* the answer the delay holds back */
	uint64_t hold;		 /* a failure's own delay, until judged */
	bool judging_ok;	 /* LS_JUDGE for a right password */
	bool in_judge;		 /* inside judge(): answer without input */
	bool bad_bye;		 /* closed for too many bad commands */
	void *data;		 /* the daemon's (login_session_data()) */
	char authcid[257];	 /* a right password's prover, until judged */
	bool in_vouch;		 /* inside vouch(): answer without input */
	struct buf replay;	 /* the command vouch() was asked for, for the
			    * daemon after the hand-off */
	struct sasl_server *sasl;
	char cert_id[SASL_NAME_MAX + 1]; /* EXTERNAL: the client cert's CN */
	int reason;	/* enum auth_reason of the last failure, for logs */
	bool verifying; /* a verification is out (session kept until back) */
	/* The auth back-end's delay for this failure (HTTP Auth-Wait). */
	uint32_t wait_ms;
	/* The verify answer's route (host=, Auth-Server:Auth-Port), "". */
	char auth_host[262];
	char tag[LOGIN_TAG_MAX + 1]; /* the login command's tag (IMAP) */
	char user[257];		     /* as far as known, for logs */
	char mech[32];
	char helo[256]; /* SMTP: EHLO/HELO's name, "" for none */
	bool esmtp;	/* SMTP: it was EHLO */
	/* IMAP: the client's last ID parameters, field/value pairs (a NULL
	 * value is NIL), for a daemon that forwards them */
	char *id[2 * LOGIN_ID_PAIRS];
	unsigned nid;
	void *proto_state;
	struct login_session *hnext; /* the worker's table chain */
};

/* ---- services for the protocol files (login_session.c) ---- */

void *login_proto_state(struct login_session *s);
const struct login_settings *login_settings(const struct login_session *s);
/* The bytes received and not taken yet; consume what a command took. */
struct buf *login_input(struct login_session *s);
/* A command may not run now (a login in progress, a delay, closing):
 * stop taking input; the core calls input() again when it may. */
bool login_busy(const struct login_session *s);
/* Neither busy nor waiting for the client to read what it was sent:
 * the protocol's input loop runs while this holds. */
bool login_may_run(const struct login_session *s);
/* One line: fmt's text and CRLF. */
void login_reply(struct login_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void login_send(struct login_session *s, const void *p, size_t n);
/* A bad command (after its answer): counted toward max_bad; past it the
 * session says goodbye. */
void login_bad(struct login_session *s);
/* A line over line_max (its answer is the protocol's; count it as a bad
 * command with login_bad() too). */
void login_long_line(struct login_session *s);
/* Log out: close after the output. */
void login_close(struct login_session *s);
/* SMTP: the client's EHLO/HELO name (p[0..n), no control characters),
 * for the session after login. */
void login_set_helo(struct login_session *s, const char *p, size_t n,
    bool esmtp);
/* IMAP ID: forget the kept parameters, then keep one pair at a time
 * (value NULL: NIL). Past LOGIN_ID_PAIRS pairs the rest is not kept.
 * 0, or -1 out of memory. */
void login_clear_id(struct login_session *s);
int login_keep_id(struct login_session *s, const char *field, size_t flen,
    const char *value, size_t vlen);
/* The login command's tag, for the answers that follow (IMAP). */
void login_set_tag(struct login_session *s, const char *tag, size_t len);
const char *login_tag(const struct login_session *s);

/* TLS is on or the listener is trusted for cleartext logins. */
bool login_secure(const struct login_session *s);
/* STARTTLS may be offered now. */
bool login_can_starttls(struct login_session *s);
/* The mechanisms to advertise now (none before TLS), strongest first,
 * into names[0..max); returns how many. */
size_t login_mechanisms(struct login_session *s, const char **names,
    size_t max);

/* ---- login_sasl.c ---- */

/* AUTHENTICATE/AUTH mech [initial response]: ir is the client's base64
 * text (NULL: none; "=": empty). Answers through sasl_challenge(),
 * auth_result() or the daemon's logged_in(). */
void login_sasl_start(struct login_session *s, const char *mech, size_t mlen,
    const char *ir, size_t irlen);
/* The client's response line to a challenge. */
void login_sasl_response(struct login_session *s, const char *line, size_t len);
/* The response line was over the limit: the exchange ends
 * (auth_result(LOGIN_FAIL_SYNTAX), counted as a bad command). */
void login_sasl_abort(struct login_session *s);
bool login_sasl_active(const struct login_session *s);
/* A plain login (IMAP LOGIN, POP3 USER+PASS): mech names it in logs. */
void login_password(struct login_session *s, const char *user, size_t ulen,
    const char *password, size_t plen, const char *mech);

/* POP3 APOP (RFC 1939), only with legacy_mechanisms and where a password
 * could be taken (TLS or a trusted listener): digest is the client's hex
 * MD5(ts || secret), checked against the user's {PLAIN} password where
 * the user back-end answers without blocking (the passwd-file); any other
 * scheme or an unknown user fails like a wrong digest. */
void login_apop(struct login_session *s, const char *user, size_t ulen,
    const char *ts, const char *digest, size_t dlen);

/* A trusted front end (SMTP XCLIENT LOGIN=, from the listener's trusted
 * networks) vouches for user: no password. The user must exist and its
 * policy (nologin, allow_nets against the current client address) must
 * let it in, where the user back-end answers without blocking (the
 * passwd-file); otherwise the daemon's readiness step finds out. mech
 * names it in logs ("XCLIENT"). Answers like a login: logged_in(), or
 * auth_result(). */
void login_assert_user(struct login_session *s, const char *user, size_t ulen,
    const char *mech);

/* SMTP: a mail command before any login (line[0..n), without its line
 * end): false when the daemon has no vouch hook (refuse it as usual);
 * true when the daemon was asked, the answer being a login (the line
 * replayed after the hand-off) or vouch_refused(). */
bool login_vouch(struct login_session *s, const char *line, size_t n);

/* ---- login_starttls.c ---- */

/* STARTTLS/STLS: starttls_reply(), then the upgrade; whatever the client
 * pipelined after the command is thrown away. */
void login_starttls(struct login_session *s);

/* ---- inside the core ---- */

/* A login failed: count it, hold the answer for fail_delay, then answer
 * (and say goodbye past max_fails). TEMP and the rest answer at once. */
void login_failed(struct login_session *s, enum login_fail why);
/* The user is in: hand over to the daemon. */
void login_succeeded(struct login_session *s, const char *user,
    const char *authcid);
/* Around anything that may close the connection under the session (a
 * callback, a late answer): the outermost end frees a session that went
 * meanwhile, unless a verification is still out. */
void login_call_begin(struct login_session *s);
void login_call_end(struct login_session *s);
/* Pause or resume reading as the state and the output queue say. */
void login_flow(struct login_session *s);
/* Count one of login_metrics' counters on the session's worker. */
void login_count(struct login_session *s, int id, int64_t n);
/* Log an auth outcome ("<proto>.auth": user, mech, status, reason), or
 * an exchange that failed for something other than credentials
 * ("<proto>.auth_failed": mech, user as far as known, error). */
void login_log_auth(struct login_session *s, const char *user, bool ok,
    int reason);
void login_log_failed(struct login_session *s, const char *error);

#endif
