/*
 * upstream_login_private.h - what the back-end login's files share
 * (upstream_login.c: life cycle, conn callbacks, sending; upstream_imap.c,
 * upstream_pop3.c, upstream_smtp.c: each protocol's answers and next
 * commands). Not for anyone else: the API is upstream_login.h.
 *
 * Every per-protocol function that gets an answer returns false when the
 * login is over (finished or handed over: ul is freed), true to go on.
 */
#ifndef RG_PROXY_UPSTREAM_LOGIN_PRIVATE_H
#define RG_PROXY_UPSTREAM_LOGIN_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timer.h"
#include "proto/upstream_resp.h"
#include "proxy/upstream_login.h"

#define UL_TIMEOUT_DEFAULT 10000
#define UL_ID_MAX 4096	     /* the whole ID command we send */
#define UL_ID_VALUE_MAX 1024 /* one forwarded ID key or value */
#define UL_ID_PAIRS 30	     /* forwarded ID pairs (RFC 2971's limit) */
#define UL_SASL_MAX 2112     /* base64 of authzid NUL authcid NUL password */

enum ul_state {
	S_CONNECT, /* connecting (and implicit TLS handshake) */
	S_GREETING,
	S_CAPA,	     /* IMAP CAPABILITY, POP3 CAPA, SMTP EHLO */
	S_STARTTLS,  /* waiting for STARTTLS / STLS answer */
	S_TLS,	     /* STARTTLS handshake */
	S_ID,	     /* IMAP ID answer */
	S_XCLIENT,   /* SMTP XCLIENT answer (a new 220 greeting) */
	S_XEHLO,     /* SMTP EHLO after XCLIENT */
	S_AUTH,	     /* the AUTH(ENTICATE) answer */
	S_AUTH_CONT, /* IMAP: response sent after the "+" */
	S_POSTCAPA,  /* IMAP CAPABILITY after login */
	S_DONE,
};

/* What the back end announced (IMAP capabilities, POP3 CAPA, EHLO). */
enum ul_ext {
	X_STARTTLS = 1 << 0,
	X_SASL_IR = 1 << 1,
	X_ID = 1 << 2,
	X_XCLIENT = 1 << 3, /* with ADDR and LOGIN */
	X_XCLIENT_PORT = 1 << 4,
	X_XCLIENT_HELO = 1 << 5,
};

struct upstream_login {
	struct loop *loop;
	struct conn *c;
	struct timer timer;
	ul_done_fn *done;
	void *ctx;

	enum ul_proto proto;
	enum ul_tls tls;
	enum ul_state st;
	bool tls_up;	/* STARTTLS done */
	bool have_caps; /* ext/caps are current (IMAP, POP3) */
	bool id_pipelined;
	bool ir_sent;	     /* SASL-IR: the response went with the command */
	bool connect_failed; /* conn_connect() failed at once */
	bool xclient;
	unsigned ext;
	unsigned ntag;
	char tag[16];
	uint64_t sid, started;
	const struct ul_metrics *metrics;

	struct tls_client *tls_ctx;
	char *sni, *helo, *user;
	char *client_helo; /* SMTP: the client's EHLO name for XCLIENT HELO= */
	char *id_cmd;	   /* IMAP "ID (...)" without tag, or NULL */
	char sasl[UL_SASL_MAX]; /* base64 PLAIN response: secret */
	char client_addr[64];	/* for ID / XCLIENT, "" if unknown */
	unsigned client_port;
	char backend[80]; /* "addr:port" for logs */

	const char *rest; /* the current chunk after the line just read */
	size_t rest_len;
	struct ul_result res;
	struct upstream_resp rd;
};

/* The one failure path: let go of the conn, tell the caller, free. */
void upstream_login_finish(struct upstream_login *ul, enum ul_why why,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Logged in: the conn goes to the caller with rest[0..n). */
void upstream_login_succeed(struct upstream_login *ul, const char *rest,
    size_t n);

/* Queue a line (CRLF added): untagged, with the caller's tag, or a
 * command with a fresh IMAP tag after which the login waits for the
 * answer as ex in state next. 0 or -1. */
int upstream_login_send_line(struct upstream_login *ul, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int upstream_login_send_with_tag(struct upstream_login *ul, const char *tag,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int upstream_login_send_tagged(struct upstream_login *ul, enum ul_state next,
    enum ur_expect ex, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Wait for the next answer as ex (IMAP: for ul->tag) in state st. */
void upstream_login_expect(struct upstream_login *ul, enum ul_state st,
    enum ur_expect ex);
/* rc of a send: true, or finish the login and false. */
bool upstream_login_sent(struct upstream_login *ul, int rc);
/* The back end said yes to STARTTLS: the handshake, then on_open. */
bool upstream_login_start_tls(struct upstream_login *ul);

const char *upstream_login_state_name(enum ul_state st);
/* The address without port (IPv4-mapped IPv6 as IPv4), and the port. */
void upstream_login_format_addr(const struct sockaddr *sa, char *dst,
    size_t cap, unsigned *port_r);

/* Per protocol: one line of an answer (rc UR_LINE or UR_DONE), and the
 * next command after the greeting, capabilities or STARTTLS. */
bool upstream_imap_line(struct upstream_login *ul, enum ur_rc rc);
bool upstream_imap_next(struct upstream_login *ul);
/* IMAP "ID (...)" into ul->id_cmd (NULL when there is nothing to say).
 * 0, or -1 when out of memory. */
int upstream_imap_build_id(struct upstream_login *ul,
    const struct ul_params *p);
bool upstream_pop3_line(struct upstream_login *ul, enum ur_rc rc);
bool upstream_pop3_next(struct upstream_login *ul);
bool upstream_smtp_line(struct upstream_login *ul, enum ur_rc rc);
bool upstream_smtp_next(struct upstream_login *ul);

#endif
