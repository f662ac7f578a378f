/*
 * upstream_login.h - ringgate's back-end login client: connect to the
 * back end chosen for a user, read its greeting, STARTTLS when asked, pass
 * the client's address along and log in as the master identity on the
 * user's behalf (SASL PLAIN, authzid = user), for IMAP, POP3 and SMTP
 * submission. Everything runs on the caller's loop (io_uring, no thread,
 * no blocking call); the back end's answers go through proto/upstream_resp
 * with hard limits, so a broken or hostile back end costs a bounded
 * amount of memory and time and never reaches an assert.
 *
 * The login ends in exactly one call of done (unless cancelled first):
 * UL_OK hands the connected back-end conn over; anything else means the
 * conn is already gone. Credentials are never sent before the back end
 * is known to be what it should be (TLS verified when asked, no PREAUTH,
 * STARTTLS offered when required) and never appear in logs or reasons.
 */
#ifndef RG_PROXY_UPSTREAM_LOGIN_H
#define RG_PROXY_UPSTREAM_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conn;
struct loop;
struct metrics;
struct tls_client;
struct upstream_login;

enum ul_proto { UL_IMAP, UL_POP3, UL_SMTP };

enum ul_tls {
	UL_TLS_NONE = 0, /* plaintext all the way */
	UL_TLS_STARTTLS, /* STARTTLS / STLS before anything else */
	UL_TLS_IMPLICIT, /* TLS from the first byte (after PROXY v2) */
};

enum ul_status {
	UL_OK = 0,  /* logged in: the conn is the caller's */
	UL_TEMP,    /* back end down, timed out, garbage, TLS, server error */
	UL_REFUSED, /* the back end refused the master login */
};

#define UL_CAPABILITY_MAX 2048 /* IMAP capability list kept for the client */
#define UL_REASON_MAX 128

/* Why a login ended: the "why" label of the metrics and the log line. */
enum ul_why {
	UL_WHY_OK = 0,
	UL_WHY_CONNECT, /* refused, unreachable, reset */
	UL_WHY_TIMEOUT, /* the whole login took longer than timeout_ms */
	UL_WHY_TLS,	/* handshake or certificate verification failed */
	UL_WHY_CLOSED,	/* the back end hung up mid-login */
	UL_WHY_GARBAGE, /* not the protocol, or an unexpected answer */
	UL_WHY_LIMIT,	/* a reader limit: line, lines, bytes, literal, NUL */
	UL_WHY_PREAUTH, /* IMAP PREAUTH: refused before any credential */
	UL_WHY_NO_STARTTLS, /* STARTTLS required but not offered or refused */
	UL_WHY_SERVER,	    /* the back end said it cannot now (NO/-ERR/4xx) */
	UL_WHY_REFUSED,	    /* the master login was refused */
	UL_WHY_CANCELLED,   /* the client left first (counted, no done call) */
	UL_WHY_MAX
};

/* Counter ids, registered once per daemon (upstream_login_metrics) and
 * shared read-only by every worker; counted in the loop's shard. */
struct ul_metrics {
	int logins[UL_WHY_MAX]; /* ringgate_upstream_logins_total{why} */
	/* ringgate_upstream_starttls_discarded_total: logins whose back end
	 * sent plaintext after its STARTTLS OK (dropped, never read) */
	int starttls_discarded;
};

struct ul_params {
	enum ul_proto proto;
	const char *user;	 /* log in as this user (the SASL authzid) */
	const char *master_user; /* SASL PLAIN authcid */
	const char *master_pass; /* its password */
	/* The client's address (ID x-originating-ip/port, XCLIENT ADDR/PORT,
	 * PROXY v2 source) and where it connected (PROXY v2 destination);
	 * either may be NULL (then nothing is said about it). */
	const struct sockaddr *client, *local;
	enum ul_tls tls;
	/* TLS toward the back end (STARTTLS or IMPLICIT); its conf decides
	 * verification (CA + name); sni is the name sent and verified (NULL:
	 * none). The login takes its own reference. */
	struct tls_client *tls_ctx;
	const char *sni;
	/* a PROXY v2 header (client -> local, both needed) before anything */
	bool proxy_v2;
	bool xclient;	  /* SMTP: XCLIENT ADDR/PORT/HELO/LOGIN when offered */
	const char *helo; /* SMTP: our EHLO name; NULL = "ringgate" */
	/* SMTP with XCLIENT: the client's own EHLO name (HELO=), or NULL */
	const char *client_helo;
	/* IMAP: the client's own ID parameters, forwarded as key/value
	 * pairs (client_id[2i], client_id[2i+1]; a NULL value is NIL).
	 * Keys beginning with "x-" are dropped: x-originating-* is ours. */
	const char *const *client_id;
	unsigned client_id_n; /* number of pairs */
	uint64_t timeout_ms;  /* the whole login, connect included; 0 = 10 s */
	/* the client session's id: our logs, and IMAP ID x-session-ext-id
	 * (Dovecot names its session with it); 0: none */
	uint64_t sid;
	const struct ul_metrics *metrics; /* NULL: not counted */
};

struct ul_result {
	enum ul_status status;
	enum ul_why why;
	/* IMAP: the back end's CAPABILITY after login ("IMAP4rev1 IDLE ..."
	 * without the word CAPABILITY), for the client's tagged OK; "" if
	 * it could not be had or for POP3/SMTP. */
	char capability[UL_CAPABILITY_MAX];
	/* Why it failed (or "ok"), for logs only: never shown to clients and
	 * never containing credentials. */
	char reason[UL_REASON_MAX];
	/* UL_OK: plaintext the back end sent after its login answer (usually
	 * none; never NULL). Valid only during the done call: relay or copy
	 * it there. */
	const char *rest;
	size_t rest_len;
};

/* Called once, on the loop's thread. UL_OK: backend is connected and
 * logged in, its timer off, with a handler that ignores everything: the
 * callback must give it its own (conn_set_handler) or close it before
 * returning, and relay r->rest. Otherwise backend is NULL (already being
 * closed). The struct upstream_login is freed right after the call
 * returns; do not cancel it from here or later. */
typedef void ul_done_fn(void *ctx, struct conn *backend,
    const struct ul_result *r);

/* Start logging in to backend[0..len) with p (copied: strings and
 * addresses may go once this returns; tls_ctx is referenced). Returns the
 * login, or NULL (nothing started, done never called) when out of memory
 * or p is unusable (no user, no master, TLS wanted without a ctx); the
 * error is in *error_r when error_r is not NULL. done is never called
 * from inside this function: the first callback comes from the loop. */
struct upstream_login *upstream_login_start(struct loop *l,
    const struct sockaddr *backend, socklen_t len, const struct ul_params *p,
    ul_done_fn *done, void *ctx, const char **error_r);

/* The client left: close the back-end conn, free everything; done is not
 * called. Only before done has run. NULL is a no-op. */
void upstream_login_cancel(struct upstream_login *ul);

/* Register the counters in m ("upstream_logins_total" by why,
 * "upstream_starttls_discarded_total"). 0, or -1 if the registry is full. */
int upstream_login_metrics(struct metrics *m, struct ul_metrics *um);

const char *ul_status_name(enum ul_status s);
const char *ul_why_name(enum ul_why w);

#endif
