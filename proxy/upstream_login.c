/*
 * upstream_login.c - ringgate logs in to a back end on a user's behalf
 * (see upstream_login.h): one outgoing conn on the caller's loop, one
 * explicit state machine per login, answers read by proto/upstream_resp.
 *
 * Order, for every protocol: connect (PROXY v2 preamble, implicit TLS),
 * greeting, STARTTLS when configured (the plaintext that came with its OK
 * is dropped, never read as if it came after the handshake), the
 * capabilities, then the client's address (IMAP ID, SMTP XCLIENT) and the
 * master login (SASL PLAIN with authzid = user). A PREAUTH greeting, or a
 * back end without STARTTLS when it is required, is left before anything
 * secret is written. IMAP ID and AUTHENTICATE with SASL-IR go out in one
 * write (one round trip less).
 *
 * One deadline (a core/timer.h timer) covers the whole login. The conn's
 * callbacks and the timer are the only ways in; each failure goes through
 * finish(), which detaches the conn (it gets a handler that ignores
 * everything), aborts it, calls done once and frees the login. Never
 * blocks, never logs a password or a SASL payload.
 */
#include "proxy/upstream_login.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/timer.h"
#include "core/tls.h"
#include "proto/base64.h"
#include "proto/proxy_proto.h"
#include "proto/smtp_xtext.h"
#include "proto/upstream_resp.h"

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

static const char *const state_names[] = {
	[S_CONNECT] = "connect",
	[S_GREETING] = "greeting",
	[S_CAPA] = "capability",
	[S_STARTTLS] = "starttls",
	[S_TLS] = "tls",
	[S_ID] = "id",
	[S_XCLIENT] = "xclient",
	[S_XEHLO] = "ehlo",
	[S_AUTH] = "auth",
	[S_AUTH_CONT] = "auth",
	[S_POSTCAPA] = "capability",
	[S_DONE] = "done",
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

/* ---- helpers ------------------------------------------------------------ */

static void on_open(struct conn *c);
static void on_data(struct conn *c, const char *p, size_t n);
static void on_eof(struct conn *c);
static void discarded(struct upstream_login *ul, size_t n);
static void on_close(struct conn *c, enum conn_reason why);
static void on_timeout(struct timer *t, void *arg);
static void finish(struct upstream_login *ul, enum ul_why why, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
static void succeed(struct upstream_login *ul, const char *rest, size_t n);
static void ul_free(struct upstream_login *ul);
static int send_line(struct upstream_login *ul, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int send_with_tag(struct upstream_login *ul, const char *tag,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool sent(struct upstream_login *ul, int rc);
static int send_tagged(struct upstream_login *ul, enum ul_state next,
    enum ur_expect ex, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void expect(struct upstream_login *ul, enum ul_state st,
    enum ur_expect ex);
static bool next_step(struct upstream_login *ul);
static bool start_tls(struct upstream_login *ul);
static bool imap_line(struct upstream_login *ul, enum ur_rc rc);
static bool imap_next(struct upstream_login *ul);
static bool imap_auth_answer(struct upstream_login *ul);
static bool pop3_line(struct upstream_login *ul, enum ur_rc rc);
static bool pop3_next(struct upstream_login *ul);
static bool smtp_line(struct upstream_login *ul, enum ur_rc rc);
static bool smtp_next(struct upstream_login *ul);
static void smtp_ehlo_line(struct upstream_login *ul);
static int xclient_attrs(struct upstream_login *ul, char *dst, size_t cap);
static void keep_caps(struct upstream_login *ul, const char *p, size_t n);
static int build_sasl(struct upstream_login *ul, const struct ul_params *p);
static int build_id(struct upstream_login *ul, const struct ul_params *p);
static void format_addr(const struct sockaddr *sa, char *dst, size_t cap,
    unsigned *port_r);
static char *dup_or_null(const char *s, bool *fail);

static const struct conn_handler ul_handler = {
	.on_open = on_open,
	.on_data = on_data,
	.on_eof = on_eof,
	.on_close = on_close,
};

/* A conn the login has let go of: it is being aborted, nothing matters. */
static void
dead_data(struct conn *c, const char *p, size_t n)
{
	(void)c;
	(void)p;
	(void)n;
}

static void
dead_close(struct conn *c, enum conn_reason why)
{
	(void)c;
	(void)why;
}

static const struct conn_handler dead_handler = {
	.on_data = dead_data,
	.on_close = dead_close,
};

static const char *const why_names[] = {
	[UL_WHY_OK] = "ok",
	[UL_WHY_CONNECT] = "connect",
	[UL_WHY_TIMEOUT] = "timeout",
	[UL_WHY_TLS] = "tls",
	[UL_WHY_CLOSED] = "closed",
	[UL_WHY_GARBAGE] = "garbage",
	[UL_WHY_LIMIT] = "limit",
	[UL_WHY_PREAUTH] = "preauth",
	[UL_WHY_NO_STARTTLS] = "no_starttls",
	[UL_WHY_SERVER] = "server",
	[UL_WHY_REFUSED] = "refused",
};

const char *
ul_why_name(enum ul_why w)
{
	return (unsigned)w < UL_WHY_MAX ? why_names[w] : "?";
}

const char *
ul_status_name(enum ul_status s)
{
	switch (s) {
	case UL_OK:
		return "ok";
	case UL_TEMP:
		return "temp";
	case UL_REFUSED:
		return "refused";
	}
	return "?";
}

int
upstream_login_metrics(struct metrics *m, struct ul_metrics *um)
{
	for (unsigned w = 0; w < UL_WHY_MAX; w++) {
		char labels[48];

		snprintf(labels, sizeof(labels), "why=\"%s\"", why_names[w]);
		um->logins[w] = metrics_counter(m, "upstream_logins_total",
		    "Back-end logins by outcome", labels);
		if (um->logins[w] < 0)
			return -1;
	}
	um->starttls_discarded = metrics_counter(m,
	    "upstream_starttls_discarded_total",
	    "Back ends that sent plaintext after their STARTTLS OK", NULL);
	return um->starttls_discarded < 0 ? -1 : 0;
}

/* ---- start, cancel, finish ------------------------------------------------ */

struct upstream_login *
upstream_login_start(struct loop *l, const struct sockaddr *backend,
    socklen_t len, const struct ul_params *p, ul_done_fn *done, void *ctx,
    const char **error_r)
{
	struct upstream_login *ul;
	const char *err = "out of memory";
	bool fail = false;
	char hdr[PROXY_V2_MAX_WRITE], host[INET6_ADDRSTRLEN];
	unsigned port;

	if (p->user == NULL || p->user[0] == '\0' || p->master_user == NULL ||
	    p->master_pass == NULL) {
		err = "no user or master identity";
		goto fail_early;
	}
	if (p->proxy_v2 && (p->client == NULL || p->local == NULL)) {
		err = "PROXY v2 needs the client and local addresses";
		goto fail_early;
	}
	if (p->tls != UL_TLS_NONE && p->tls_ctx == NULL) {
		err = "TLS wanted without a TLS client";
		goto fail_early;
	}
	ul = calloc(1, sizeof(*ul));
	if (ul == NULL)
		goto fail_early;
	ul->loop = l;
	ul->res.rest = ""; /* never NULL, even when empty */
	ul->done = done;
	ul->ctx = ctx;
	ul->proto = p->proto;
	ul->tls = p->tls;
	ul->xclient = p->xclient;
	ul->sid = p->sid;
	ul->metrics = p->metrics;
	ul->started = loop_now(l);
	ul->sni = dup_or_null(p->sni, &fail);
	ul->helo = dup_or_null(p->helo != NULL ? p->helo : "ringgate", &fail);
	ul->user = dup_or_null(p->user, &fail);
	if (p->client_helo != NULL && p->client_helo[0] != '\0' &&
	    strlen(p->client_helo) <= 255)
		ul->client_helo = dup_or_null(p->client_helo, &fail);
	if (fail)
		goto fail;
	if (build_sasl(ul, p) == -1) {
		err = "user or master identity too long";
		goto fail;
	}
	if (p->client != NULL)
		format_addr(p->client, ul->client_addr, sizeof(ul->client_addr),
		    &ul->client_port);
	format_addr(backend, host, sizeof(host), &port);
	snprintf(ul->backend, sizeof(ul->backend),
	    strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host, port);
	if (p->proto == UL_IMAP && build_id(ul, p) == -1)
		goto fail;
	if (p->tls_ctx != NULL) {
		tls_client_ref(p->tls_ctx);
		ul->tls_ctx = p->tls_ctx;
	}
	upstream_resp_init(&ul->rd,
	    p->proto == UL_IMAP	    ? UR_IMAP :
		p->proto == UL_POP3 ? UR_POP3 :
				      UR_SMTP);
	timer_init(&ul->timer, l, on_timeout, ul);
	if (timer_set(&ul->timer,
		p->timeout_ms ? p->timeout_ms : UL_TIMEOUT_DEFAULT) == -1)
		goto fail;
	ul->st = S_CONNECT;
	ul->c = conn_connect(l, backend, len, &ul_handler, ul);
	if (ul->c == NULL) {
		/* reported from the loop, like any other failure */
		ul->connect_failed = true;
		(void)timer_set(&ul->timer, 1);
		return ul;
	}
	if (p->proxy_v2) {
		size_t n = proxy_proto_write_v2(hdr, sizeof(hdr), p->client,
		    p->local);

		if (n == 0 || conn_send_preamble(ul->c, hdr, n) == -1) {
			err = "cannot write the PROXY v2 header";
			goto fail_conn;
		}
	}
	if (p->tls == UL_TLS_IMPLICIT &&
	    conn_start_tls_client(ul->c, ul->tls_ctx, ul->sni) == -1) {
		err = "cannot start TLS";
		goto fail_conn;
	}
	return ul;
fail_conn:
	conn_set_handler(ul->c, &dead_handler, NULL);
	conn_abort(ul->c, CR_NOMEM);
	ul->c = NULL;
fail:
	ul_free(ul);
fail_early:
	if (error_r != NULL)
		*error_r = err;
	return NULL;
}

void
upstream_login_cancel(struct upstream_login *ul)
{
	if (ul == NULL)
		return;
	log_info(ul->sid, "upstream.cancel", "backend=%s state=%s ms=%llu",
	    ul->backend, state_names[ul->st],
	    (unsigned long long)(loop_now(ul->loop) - ul->started));
	if (ul->c != NULL) {
		conn_set_handler(ul->c, &dead_handler, NULL);
		conn_abort(ul->c, CR_NONE);
		ul->c = NULL;
	}
	ul_free(ul);
}

static void
ul_free(struct upstream_login *ul)
{
	timer_stop(&ul->timer);
	explicit_bzero(ul->sasl, sizeof(ul->sasl));
	tls_client_unref(&ul->tls_ctx);
	free(ul->sni);
	free(ul->helo);
	free(ul->client_helo);
	free(ul->user);
	free(ul->id_cmd);
	free(ul);
}

static void
count_and_log(struct upstream_login *ul)
{
	char user[96];

	if (ul->metrics != NULL)
		metrics_add(loop_shard(ul->loop),
		    ul->metrics->logins[ul->res.why], 1);
	log_info(ul->sid, "upstream.login",
	    "backend=%s user=%s result=%s why=%s state=%s tls=%s ms=%llu "
	    "reason=\"%s\"",
	    ul->backend, log_quote(user, sizeof(user), ul->user, (size_t)-1),
	    ul_status_name(ul->res.status), ul_why_name(ul->res.why),
	    state_names[ul->st],
	    ul->tls == UL_TLS_NONE	   ? "no" :
		ul->tls == UL_TLS_IMPLICIT ? "implicit" :
					     "starttls",
	    (unsigned long long)(loop_now(ul->loop) - ul->started),
	    ul->res.reason);
}

/* The one failure path: let go of the conn, tell the caller, free. */
static void
finish(struct upstream_login *ul, enum ul_why why, const char *fmt, ...)
{
	va_list ap;

	ul->res.why = why;
	ul->res.status = why == UL_WHY_REFUSED ? UL_REFUSED : UL_TEMP;
	va_start(ap, fmt);
	vsnprintf(ul->res.reason, sizeof(ul->res.reason), fmt, ap);
	va_end(ap);
	ul->res.capability[0] = '\0';
	if (ul->c != NULL) {
		conn_set_handler(ul->c, &dead_handler, NULL);
		conn_abort(ul->c, why == UL_WHY_TIMEOUT ? CR_TIMEOUT : CR_NONE);
		ul->c = NULL;
	}
	count_and_log(ul);
	ul->done(ul->ctx, NULL, &ul->res);
	ul_free(ul);
}

/* Logged in: the conn goes to the caller with what came after. */
static void
succeed(struct upstream_login *ul, const char *rest, size_t n)
{
	struct conn *c = ul->c;

	ul->st = S_DONE;
	ul->res.status = UL_OK;
	ul->res.why = UL_WHY_OK;
	snprintf(ul->res.reason, sizeof(ul->res.reason), "ok");
	ul->res.rest = rest;
	ul->res.rest_len = n;
	timer_stop(&ul->timer);
	conn_set_timer(c, 0);
	/* until the caller gives it its own handler, nothing reaches us */
	conn_set_handler(c, &dead_handler, NULL);
	ul->c = NULL;
	count_and_log(ul);
	ul->done(ul->ctx, c, &ul->res);
	ul_free(ul);
}

/* ---- conn callbacks ------------------------------------------------------- */

static void
on_timeout(struct timer *t, void *arg)
{
	struct upstream_login *ul = arg;

	(void)t;
	if (ul->connect_failed) {
		finish(ul, UL_WHY_CONNECT, "cannot connect");
		return;
	}
	finish(ul, UL_WHY_TIMEOUT, "no answer in time (%s)",
	    state_names[ul->st]);
}

static void
on_open(struct conn *c)
{
	struct upstream_login *ul = conn_ctx(c);

	if (ul->st == S_TLS) {
		ul->tls_up = true;
		ul->have_caps = false; /* what came in plaintext is stale */
		ul->ext = 0;
		if (ul->proto == UL_SMTP) {
			(void)sent(ul,
			    send_tagged(ul, S_CAPA, UR_ONE, "EHLO %s",
				ul->helo));
			return;
		}
		(void)next_step(ul);
		return;
	}
	if (ul->st == S_CONNECT)
		expect(ul, S_GREETING, UR_ONE);
}

static void
on_data(struct conn *c, const char *p, size_t n)
{
	struct upstream_login *ul = conn_ctx(c);
	size_t off = 0;

	if (ul->st == S_TLS)
		return; /* plaintext after STARTTLS's OK: never read */
	if (ul->st == S_CONNECT) {
		finish(ul, UL_WHY_GARBAGE, "data before open");
		return;
	}
	while (off < n) {
		size_t used;
		enum ur_rc rc;
		bool alive = true;

		rc = upstream_resp_feed(&ul->rd, p + off, n - off, &used);
		off += used;
		if (rc == UR_MORE)
			return;
		if (rc == UR_INVALID) {
			finish(ul,
			    ul->rd.err == UR_E_SYNTAX ? UL_WHY_GARBAGE :
							UL_WHY_LIMIT,
			    "%s: %s", state_names[ul->st], ul->rd.error);
			return;
		}
		ul->rest = p + off;
		ul->rest_len = n - off;
		switch (ul->proto) {
		case UL_IMAP:
			alive = imap_line(ul, rc);
			break;
		case UL_POP3:
			alive = pop3_line(ul, rc);
			break;
		case UL_SMTP:
			alive = smtp_line(ul, rc);
			break;
		}
		if (!alive)
			return; /* finished or handed over: ul is gone */
		if (ul->st == S_TLS) {
			if (off < n)
				discarded(ul, n - off);
			return;
		}
	}
}

/* Plaintext after STARTTLS's OK: dropped, logged, counted. */
static void
discarded(struct upstream_login *ul, size_t n)
{
	log_info(ul->sid, "upstream.starttls_injection", "backend=%s bytes=%zu",
	    ul->backend, n);
	if (ul->metrics != NULL)
		metrics_add(loop_shard(ul->loop),
		    ul->metrics->starttls_discarded, 1);
}

static void
on_eof(struct conn *c)
{
	struct upstream_login *ul = conn_ctx(c);

	finish(ul, UL_WHY_CLOSED, "back end closed (%s)", state_names[ul->st]);
}

static void
on_close(struct conn *c, enum conn_reason why)
{
	struct upstream_login *ul = conn_ctx(c);

	ul->c = NULL; /* going away on its own */
	switch (why) {
	case CR_TLS:
		finish(ul, UL_WHY_TLS, "TLS failed (%s)", state_names[ul->st]);
		return;
	case CR_TIMEOUT:
		finish(ul, UL_WHY_TIMEOUT, "timed out (%s)",
		    state_names[ul->st]);
		return;
	case CR_CONNECT:
		finish(ul, UL_WHY_CONNECT, "connect failed");
		return;
	case CR_EOF:
		finish(ul, UL_WHY_CLOSED, "back end closed (%s)",
		    state_names[ul->st]);
		return;
	default:
		finish(ul, ul->st == S_CONNECT ? UL_WHY_CONNECT : UL_WHY_CLOSED,
		    "connection ended: %s (%s)", conn_reason_name(why),
		    state_names[ul->st]);
		return;
	}
}

/* ---- sending ---------------------------------------------------------- */

static int
vsend(struct upstream_login *ul, const char *tag, const char *fmt, va_list ap)
{
	char line[UL_ID_MAX + UL_SASL_MAX + 64];
	int n = 0, m;

	if (tag != NULL)
		n = snprintf(line, sizeof(line), "%s ", tag);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	if (m < 0 || (size_t)m >= sizeof(line) - (size_t)n - 2)
		return -1;
	n += m;
	line[n++] = '\r';
	line[n++] = '\n';
	m = conn_write(ul->c, line, (size_t)n);
	explicit_bzero(line, sizeof(line));
	return m;
}

/* An untagged line (POP3, SMTP, the IMAP response to a "+"). */
static int
send_line(struct upstream_login *ul, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vsend(ul, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

/* An IMAP command with a tag of the caller's (pipelined). */
static int
send_with_tag(struct upstream_login *ul, const char *tag, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vsend(ul, tag, fmt, ap);
	va_end(ap);
	return rc;
}

/* A command and what its answer is: IMAP gets a fresh tag. */
static int
send_tagged(struct upstream_login *ul, enum ul_state next, enum ur_expect ex,
    const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (ul->proto == UL_IMAP)
		snprintf(ul->tag, sizeof(ul->tag), "U%u", ++ul->ntag);
	va_start(ap, fmt);
	rc = vsend(ul, ul->proto == UL_IMAP ? ul->tag : NULL, fmt, ap);
	va_end(ap);
	if (rc == 0)
		expect(ul, next, ex);
	return rc;
}

static void
expect(struct upstream_login *ul, enum ul_state st, enum ur_expect ex)
{
	ul->st = st;
	upstream_resp_begin(&ul->rd, ex, ul->proto == UL_IMAP ? ul->tag : NULL);
}

/* Send or fail; false when the login is gone. */
static bool
sent(struct upstream_login *ul, int rc)
{
	if (rc == 0)
		return true;
	finish(ul, UL_WHY_CLOSED, "cannot write (%s)", state_names[ul->st]);
	return false;
}

static bool
start_tls(struct upstream_login *ul)
{
	ul->st = S_TLS;
	if (conn_start_tls_client(ul->c, ul->tls_ctx, ul->sni) == -1) {
		finish(ul, UL_WHY_TLS, "cannot start TLS");
		return false;
	}
	upstream_resp_init(&ul->rd, ul->rd.proto);
	return true;
}

/* ---- IMAP ------------------------------------------------------------- */

/* A "CAPABILITY a b c" code or untagged line: keep "a b c". */
static void
keep_caps(struct upstream_login *ul, const char *p, size_t n)
{
	size_t k = strlen("CAPABILITY");

	if (n < k || strncasecmp(p, "CAPABILITY", k) != 0 ||
	    (n > k && p[k] != ' '))
		return;
	p += k;
	n -= k;
	if (n > 0) {
		p++;
		n--;
	}
	if (n >= sizeof(ul->res.capability))
		n = sizeof(ul->res.capability) - 1;
	/* only what a client may be shown: printable ASCII */
	for (size_t i = 0; i < n; i++)
		ul->res.capability[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] :
								      ' ';
	ul->res.capability[n] = '\0';
	ul->have_caps = true;
	ul->ext = 0;
	if (upstream_resp_has_atom(ul->res.capability, n, "STARTTLS"))
		ul->ext |= X_STARTTLS;
	if (upstream_resp_has_atom(ul->res.capability, n, "SASL-IR"))
		ul->ext |= X_SASL_IR;
	if (upstream_resp_has_atom(ul->res.capability, n, "ID"))
		ul->ext |= X_ID;
}

static bool
imap_line(struct upstream_login *ul, enum ur_rc rc)
{
	struct upstream_resp *r = &ul->rd;

	if (r->kind == UR_K_UNTAGGED && r->status == UR_S_NONE) {
		keep_caps(ul, r->text.p, r->text.len);
		return true; /* * CAPABILITY, * ID, anything else: noted */
	}
	if (r->kind == UR_K_UNTAGGED && r->status == UR_S_BYE &&
	    ul->st != S_GREETING) {
		finish(ul, UL_WHY_SERVER, "BYE (%s)", state_names[ul->st]);
		return false;
	}
	if (rc == UR_LINE)
		return true; /* untagged OK/NO/BAD: informational */
	if (r->code.p != NULL && ul->st != S_STARTTLS)
		keep_caps(ul, r->code.p, r->code.len);
	switch (ul->st) {
	case S_GREETING:
		if (r->status == UR_S_PREAUTH) {
			finish(ul, UL_WHY_PREAUTH, "PREAUTH greeting");
			return false;
		}
		if (r->status != UR_S_OK) {
			finish(ul, UL_WHY_SERVER, "greeting is BYE");
			return false;
		}
		return imap_next(ul);
	case S_CAPA:
		if (r->kind != UR_K_TAGGED || r->status != UR_S_OK) {
			finish(ul, UL_WHY_GARBAGE, "CAPABILITY failed");
			return false;
		}
		if (!ul->have_caps) {
			finish(ul, UL_WHY_GARBAGE, "no CAPABILITY answer");
			return false;
		}
		return imap_next(ul);
	case S_STARTTLS:
		if (r->kind != UR_K_TAGGED || r->status != UR_S_OK) {
			finish(ul, UL_WHY_NO_STARTTLS, "STARTTLS refused");
			return false;
		}
		return start_tls(ul);
	case S_ID:
		if (r->kind != UR_K_TAGGED) {
			finish(ul, UL_WHY_GARBAGE, "continuation to ID");
			return false;
		}
		/* refused or not, the login goes on */
		if (ul->id_pipelined) {
			snprintf(ul->tag, sizeof(ul->tag), "U%u", ul->ntag);
			ul->res.capability[0] = '\0';
			ul->have_caps = false;
			expect(ul, S_AUTH, UR_TAGGED);
			return true;
		}
		return imap_next(ul);
	case S_AUTH:
	case S_AUTH_CONT:
		return imap_auth_answer(ul);
	case S_POSTCAPA:
		if (r->kind != UR_K_TAGGED || r->status != UR_S_OK) {
			finish(ul, UL_WHY_GARBAGE, "CAPABILITY after login");
			return false;
		}
		succeed(ul, ul->rest, ul->rest_len);
		return false;
	default:
		finish(ul, UL_WHY_GARBAGE, "unexpected answer");
		return false;
	}
}

/* After greeting, CAPABILITY or ID: the next command. */
static bool
imap_next(struct upstream_login *ul)
{
	if (ul->tls == UL_TLS_STARTTLS && !ul->tls_up) {
		if (!ul->have_caps)
			return sent(ul,
			    send_tagged(ul, S_CAPA, UR_TAGGED, "CAPABILITY"));
		if (!(ul->ext & X_STARTTLS)) {
			finish(ul, UL_WHY_NO_STARTTLS,
			    "STARTTLS required, not offered");
			return false;
		}
		return sent(ul,
		    send_tagged(ul, S_STARTTLS, UR_TAGGED, "STARTTLS"));
	}
	if (!ul->have_caps)
		return sent(ul,
		    send_tagged(ul, S_CAPA, UR_TAGGED, "CAPABILITY"));
	if (ul->st != S_ID && ul->id_cmd != NULL && (ul->ext & X_ID)) {
		char auth_tag[16];

		if (!sent(ul,
			send_tagged(ul, S_ID, UR_TAGGED, "%s", ul->id_cmd)))
			return false;
		if (!(ul->ext & X_SASL_IR))
			return true;
		/* AUTHENTICATE goes with ID: one round trip less */
		snprintf(auth_tag, sizeof(auth_tag), "U%u", ++ul->ntag);
		ul->id_pipelined = true;
		ul->ir_sent = true;
		return sent(ul,
		    send_with_tag(ul, auth_tag, "AUTHENTICATE PLAIN %s",
			ul->sasl));
	}
	ul->res.capability[0] = '\0';
	ul->have_caps = false;
	if (ul->ext & X_SASL_IR) {
		ul->ir_sent = true;
		return sent(ul,
		    send_tagged(ul, S_AUTH, UR_TAGGED, "AUTHENTICATE PLAIN %s",
			ul->sasl));
	}
	return sent(ul,
	    send_tagged(ul, S_AUTH, UR_TAGGED, "AUTHENTICATE PLAIN"));
}

/* A NO to the master login: the back end's trouble, or a refusal. */
static bool
imap_code_is_temp(const struct ur_slice *code)
{
	static const char *const temp[] = { "UNAVAILABLE", "SERVERBUG", "LIMIT",
		"INUSE", "OVERQUOTA" };
	size_t n = 0;

	if (code->p == NULL)
		return false;
	while (n < code->len && code->p[n] != ' ')
		n++;
	for (size_t i = 0; i < sizeof(temp) / sizeof(temp[0]); i++)
		if (strlen(temp[i]) == n &&
		    strncasecmp(code->p, temp[i], n) == 0)
			return true;
	return false;
}

static bool
imap_auth_answer(struct upstream_login *ul)
{
	struct upstream_resp *r = &ul->rd;

	if (r->kind == UR_K_CONT) {
		if (ul->st == S_AUTH_CONT || ul->ir_sent) {
			finish(ul, UL_WHY_GARBAGE, "unexpected continuation");
			return false;
		}
		if (!sent(ul, send_line(ul, "%s", ul->sasl)))
			return false;
		expect(ul, S_AUTH_CONT, UR_TAGGED);
		return true;
	}
	if (r->status == UR_S_NO) {
		if (imap_code_is_temp(&r->code)) {
			finish(ul, UL_WHY_SERVER, "login failed: %.*s",
			    (int)(r->code.len < 32 ? r->code.len : 32),
			    r->code.p);
			return false;
		}
		finish(ul, UL_WHY_REFUSED, "master login refused (%.*s)",
		    (int)(r->code.len < 32 ? r->code.len : 32),
		    r->code.p != NULL ? r->code.p : "");
		return false;
	}
	if (r->status != UR_S_OK) {
		finish(ul, UL_WHY_GARBAGE, "AUTHENTICATE answered BAD");
		return false;
	}
	if (ul->have_caps) {
		succeed(ul, ul->rest, ul->rest_len);
		return false;
	}
	return sent(ul, send_tagged(ul, S_POSTCAPA, UR_TAGGED, "CAPABILITY"));
}

/* ---- POP3 ------------------------------------------------------------- */

static bool
pop3_line(struct upstream_login *ul, enum ur_rc rc)
{
	struct upstream_resp *r = &ul->rd;

	if (rc == UR_LINE) {
		/* CAPA's lines */
		if (r->kind == UR_K_BODY) {
			if (r->text.len == 4 &&
			    strncasecmp(r->text.p, "STLS", 4) == 0)
				ul->ext |= X_STARTTLS;
		}
		return true;
	}
	switch (ul->st) {
	case S_GREETING:
		if (r->status != UR_S_OK) {
			finish(ul, UL_WHY_SERVER, "greeting is -ERR");
			return false;
		}
		return pop3_next(ul);
	case S_CAPA:
		ul->have_caps = true; /* -ERR: no CAPA, so no STLS either */
		return pop3_next(ul);
	case S_STARTTLS:
		if (r->status != UR_S_OK) {
			finish(ul, UL_WHY_NO_STARTTLS, "STLS refused");
			return false;
		}
		return start_tls(ul);
	case S_AUTH:
		if (r->kind == UR_K_CONT) {
			finish(ul, UL_WHY_GARBAGE, "unexpected challenge");
			return false;
		}
		if (r->status == UR_S_OK) {
			succeed(ul, ul->rest, ul->rest_len);
			return false;
		}
		/* RFC 3206: SYS/TEMP, IN-USE, LOGIN-DELAY are not refusals */
		if (r->code.p != NULL &&
		    ((r->code.len >= 3 &&
			 strncasecmp(r->code.p, "SYS", 3) == 0 &&
			 !(r->code.len >= 8 &&
			     strncasecmp(r->code.p, "SYS/PERM", 8) == 0)) ||
			(r->code.len == 6 &&
			    strncasecmp(r->code.p, "IN-USE", 6) == 0) ||
			(r->code.len == 11 &&
			    strncasecmp(r->code.p, "LOGIN-DELAY", 11) == 0))) {
			finish(ul, UL_WHY_SERVER, "login failed: %.*s",
			    (int)r->code.len, r->code.p);
			return false;
		}
		finish(ul, UL_WHY_REFUSED, "master login refused");
		return false;
	default:
		finish(ul, UL_WHY_GARBAGE, "unexpected answer");
		return false;
	}
}

static bool
pop3_next(struct upstream_login *ul)
{
	if (ul->tls == UL_TLS_STARTTLS && !ul->tls_up) {
		if (!ul->have_caps)
			return sent(ul,
			    send_tagged(ul, S_CAPA, UR_MULTI, "CAPA"));
		if (!(ul->ext & X_STARTTLS)) {
			finish(ul, UL_WHY_NO_STARTTLS,
			    "STLS required, not offered");
			return false;
		}
		return sent(ul, send_tagged(ul, S_STARTTLS, UR_ONE, "STLS"));
	}
	return sent(ul,
	    send_tagged(ul, S_AUTH, UR_ONE, "AUTH PLAIN %s", ul->sasl));
}

/* ---- SMTP ------------------------------------------------------------- */

/* One EHLO line after the first: the extensions we use. */
static void
smtp_ehlo_line(struct upstream_login *ul)
{
	const struct ur_slice *t = &ul->rd.text;
	size_t w = 0;

	if (ul->rd.lines < 2)
		return;
	while (w < t->len && t->p[w] != ' ' && t->p[w] != '=')
		w++;
	if (w == 8 && strncasecmp(t->p, "STARTTLS", 8) == 0)
		ul->ext |= X_STARTTLS;
	if (w == 7 && strncasecmp(t->p, "XCLIENT", 7) == 0 &&
	    upstream_resp_has_atom(t->p, t->len, "ADDR") &&
	    upstream_resp_has_atom(t->p, t->len, "LOGIN")) {
		ul->ext |= X_XCLIENT;
		if (upstream_resp_has_atom(t->p, t->len, "PORT"))
			ul->ext |= X_XCLIENT_PORT;
		if (upstream_resp_has_atom(t->p, t->len, "HELO"))
			ul->ext |= X_XCLIENT_HELO;
	}
}

static bool
smtp_line(struct upstream_login *ul, enum ur_rc rc)
{
	struct upstream_resp *r = &ul->rd;
	unsigned code = r->smtp_code;

	if (ul->st == S_CAPA || ul->st == S_XEHLO)
		smtp_ehlo_line(ul);
	if (rc == UR_LINE)
		return true;
	switch (ul->st) {
	case S_GREETING:
	case S_XCLIENT:
		if (code != 220) {
			finish(ul,
			    code / 100 == 5 && ul->st == S_XCLIENT ?
				UL_WHY_REFUSED :
				UL_WHY_SERVER,
			    "%s answered %u", state_names[ul->st], code);
			return false;
		}
		ul->ext = 0;
		return sent(ul,
		    send_tagged(ul, ul->st == S_XCLIENT ? S_XEHLO : S_CAPA,
			UR_ONE, "EHLO %s", ul->helo));
	case S_CAPA:
		if (code != 250) {
			finish(ul, UL_WHY_SERVER, "EHLO answered %u", code);
			return false;
		}
		return smtp_next(ul);
	case S_XEHLO:
		if (code != 250) {
			finish(ul, UL_WHY_SERVER, "EHLO answered %u", code);
			return false;
		}
		succeed(ul, ul->rest, ul->rest_len);
		return false;
	case S_STARTTLS:
		if (code != 220) {
			finish(ul, UL_WHY_NO_STARTTLS, "STARTTLS answered %u",
			    code);
			return false;
		}
		return start_tls(ul);
	case S_AUTH:
		if (code == 235) {
			succeed(ul, ul->rest, ul->rest_len);
			return false;
		}
		if (code / 100 == 5) {
			finish(ul, UL_WHY_REFUSED, "AUTH answered %u", code);
			return false;
		}
		finish(ul, code / 100 == 4 ? UL_WHY_SERVER : UL_WHY_GARBAGE,
		    "AUTH answered %u", code);
		return false;
	default:
		finish(ul, UL_WHY_GARBAGE, "unexpected answer");
		return false;
	}
}

/* " ADDR=.. PORT=.. HELO=.. LOGIN=..": what the back end takes of it
 * (Postfix XCLIENT_README; values xtext, IPv6 with "IPV6:"). 0 or -1. */
static int
xclient_attrs(struct upstream_login *ul, char *dst, size_t cap)
{
	size_t len = 0, n;
	int m;

	if (ul->client_addr[0] != '\0') {
		m = snprintf(dst, cap, " ADDR=%s%s",
		    strchr(ul->client_addr, ':') ? "IPV6:" : "",
		    ul->client_addr);
		len = (size_t)m;
		if ((ul->ext & X_XCLIENT_PORT) && ul->client_port != 0)
			len += (size_t)snprintf(dst + len, cap - len,
			    " PORT=%u", ul->client_port);
	}
	if (ul->client_helo != NULL && (ul->ext & X_XCLIENT_HELO)) {
		len += (size_t)snprintf(dst + len, cap - len, " HELO=");
		if (smtp_xtext_encode(ul->client_helo, strlen(ul->client_helo),
			dst + len, cap - len - 1, &n) == -1)
			return -1;
		len += n;
	}
	len += (size_t)snprintf(dst + len, cap - len, " LOGIN=");
	if (smtp_xtext_encode(ul->user, strlen(ul->user), dst + len,
		cap - len - 1, &n) == -1)
		return -1;
	dst[len + n] = '\0';
	return 0;
}

static bool
smtp_next(struct upstream_login *ul)
{
	if (ul->tls == UL_TLS_STARTTLS && !ul->tls_up) {
		if (!(ul->ext & X_STARTTLS)) {
			finish(ul, UL_WHY_NO_STARTTLS,
			    "STARTTLS required, not offered");
			return false;
		}
		return sent(ul,
		    send_tagged(ul, S_STARTTLS, UR_ONE, "STARTTLS"));
	}
	if (ul->xclient && (ul->ext & X_XCLIENT)) {
		char attrs[3 * 256 + 3 * 256 + 160];

		if (xclient_attrs(ul, attrs, sizeof(attrs)) == -1) {
			finish(ul, UL_WHY_GARBAGE,
			    "XCLIENT attributes too long");
			return false;
		}
		return sent(ul,
		    send_tagged(ul, S_XCLIENT, UR_ONE, "XCLIENT%s", attrs));
	}
	return sent(ul,
	    send_tagged(ul, S_AUTH, UR_ONE, "AUTH PLAIN %s", ul->sasl));
}

/* ---- building what is sent -------------------------------------------- */

static bool
next_step(struct upstream_login *ul)
{
	switch (ul->proto) {
	case UL_IMAP:
		return imap_next(ul);
	case UL_POP3:
		return pop3_next(ul);
	case UL_SMTP:
		return smtp_next(ul);
	}
	return false;
}

/* RFC 4616: authzid NUL authcid NUL password, base64. */
static int
build_sasl(struct upstream_login *ul, const struct ul_params *p)
{
	char raw[3 * 1024];
	size_t a = strlen(p->user), b = strlen(p->master_user),
	       c = strlen(p->master_pass);
	int rc;

	if (a > 256 || b > 256 || c > 1024 || a + b + c + 2 > sizeof(raw))
		return -1;
	memcpy(raw, p->user, a);
	raw[a] = '\0';
	memcpy(raw + a + 1, p->master_user, b);
	raw[a + 1 + b] = '\0';
	memcpy(raw + a + b + 2, p->master_pass, c);
	rc = base64_encode(raw, a + b + c + 2, ul->sasl, sizeof(ul->sasl),
	    NULL);
	explicit_bzero(raw, sizeof(raw));
	return rc;
}

/* An IMAP quoted string of printable ASCII, or false (nothing added). */
static bool
add_quoted(char *dst, size_t cap, size_t *len, const char *s)
{
	size_t n = *len;

	if (s == NULL) {
		if (n + 4 >= cap)
			return false;
		memcpy(dst + n, "NIL", 3);
		*len = n + 3;
		return true;
	}
	if (strlen(s) > UL_ID_VALUE_MAX || n + 1 >= cap)
		return false;
	dst[n++] = '"';
	for (; *s != '\0'; s++) {
		if (*s < 0x20 || *s > 0x7e || n + 3 >= cap)
			return false;
		if (*s == '"' || *s == '\\')
			dst[n++] = '\\';
		dst[n++] = *s;
	}
	dst[n++] = '"';
	*len = n;
	return true;
}

static bool
add_pair(char *dst, size_t cap, size_t *len, const char *k, const char *v)
{
	size_t save = *len;

	if (dst[*len - 1] != '(')
		dst[(*len)++] = ' ';
	if (!add_quoted(dst, cap, len, k))
		goto fail;
	if (*len + 2 >= cap)
		goto fail;
	dst[(*len)++] = ' ';
	if (!add_quoted(dst, cap, len, v))
		goto fail;
	return true;
fail:
	*len = save;
	return false;
}

/* "ID (...)": our x-originating-* first, then the client's own pairs
 * that fit, minus any "x-" key (those are the proxy's to say). */
static int
build_id(struct upstream_login *ul, const struct ul_params *p)
{
	char *id = malloc(UL_ID_MAX);
	size_t len;
	unsigned pairs = 0;
	char port[16], laddr[64];
	unsigned lport = 0;

	if (id == NULL)
		return -1;
	len = (size_t)snprintf(id, UL_ID_MAX, "ID (");
	if (ul->client_addr[0] != '\0') {
		snprintf(port, sizeof(port), "%u", ul->client_port);
		add_pair(id, UL_ID_MAX, &len, "x-originating-ip",
		    ul->client_addr);
		add_pair(id, UL_ID_MAX, &len, "x-originating-port", port);
		pairs += 2;
	}
	if (p->local != NULL) {
		format_addr(p->local, laddr, sizeof(laddr), &lport);
		snprintf(port, sizeof(port), "%u", lport);
		add_pair(id, UL_ID_MAX, &len, "x-connected-ip", laddr);
		add_pair(id, UL_ID_MAX, &len, "x-connected-port", port);
		pairs += 2;
	}
	for (unsigned i = 0; i < p->client_id_n && pairs < UL_ID_PAIRS; i++) {
		const char *k = p->client_id[2 * i],
			   *v = p->client_id[2 * i + 1];

		if (k == NULL || strncasecmp(k, "x-", 2) == 0)
			continue;
		if (add_pair(id, UL_ID_MAX, &len, k, v))
			pairs++;
	}
	if (pairs == 0) {
		free(id);
		return 0; /* nothing to say */
	}
	id[len++] = ')';
	id[len] = '\0';
	ul->id_cmd = id;
	return 0;
}

/* The address without port (IPv4-mapped IPv6 as IPv4), and the port. */
static void
format_addr(const struct sockaddr *sa, char *dst, size_t cap, unsigned *port_r)
{
	dst[0] = '\0';
	*port_r = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, dst, (socklen_t)cap);
		*port_r = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], dst,
			    (socklen_t)cap);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, dst,
			    (socklen_t)cap);
		*port_r = ntohs(in6->sin6_port);
	}
}

static char *
dup_or_null(const char *s, bool *fail)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*fail = true;
	return d;
}
