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
 * This file holds the life cycle, the conn callbacks and the sending;
 * each protocol's answers and next commands live in upstream_imap.c,
 * upstream_pop3.c and upstream_smtp.c (upstream_login_private.h).
 *
 * One deadline (a core/timer.h timer) covers the whole login. The conn's
 * callbacks and the timer are the only ways in; each failure goes through
 * upstream_login_finish(), which detaches the conn (it gets a handler
 * that ignores everything), aborts it, calls done once and frees the
 * login. Never blocks, never logs a password or a SASL payload.
 */
#include "proxy/upstream_login.h"
#include "proxy/upstream_login_private.h"

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
#include "proto/upstream_resp.h"

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

const char *
upstream_login_state_name(enum ul_state st)
{
	return (unsigned)st <= S_DONE ? state_names[st] : "?";
}

/* ---- helpers ------------------------------------------------------------ */

static void on_open(struct conn *c);
static void on_data(struct conn *c, const char *p, size_t n);
static void on_eof(struct conn *c);
static void on_close(struct conn *c, enum conn_reason why);
static void on_timeout(struct timer *t, void *arg);
static void discarded(struct upstream_login *ul, size_t n);
static void ul_free(struct upstream_login *ul);
static bool next_step(struct upstream_login *ul);
static int build_sasl(struct upstream_login *ul, const struct ul_params *p);
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
	[UL_WHY_CANCELLED] = "cancelled",
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
		upstream_login_format_addr(p->client, ul->client_addr,
		    sizeof(ul->client_addr), &ul->client_port);
	upstream_login_format_addr(backend, host, sizeof(host), &port);
	snprintf(ul->backend, sizeof(ul->backend),
	    strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host, port);
	if (p->proto == UL_IMAP && upstream_imap_build_id(ul, p) == -1)
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
	    ul->backend, upstream_login_state_name(ul->st),
	    (unsigned long long)(loop_now(ul->loop) - ul->started));
	if (ul->metrics != NULL)
		metrics_add(loop_shard(ul->loop),
		    ul->metrics->logins[UL_WHY_CANCELLED], 1);
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
	    upstream_login_state_name(ul->st),
	    ul->tls == UL_TLS_NONE	   ? "no" :
		ul->tls == UL_TLS_IMPLICIT ? "implicit" :
					     "starttls",
	    (unsigned long long)(loop_now(ul->loop) - ul->started),
	    ul->res.reason);
}

/* The one failure path: let go of the conn, tell the caller, free. */
void
upstream_login_finish(struct upstream_login *ul, enum ul_why why,
    const char *fmt, ...)
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
void
upstream_login_succeed(struct upstream_login *ul, const char *rest, size_t n)
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
		upstream_login_finish(ul, UL_WHY_CONNECT, "cannot connect");
		return;
	}
	upstream_login_finish(ul, UL_WHY_TIMEOUT, "no answer in time (%s)",
	    upstream_login_state_name(ul->st));
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
			(void)upstream_login_sent(ul,
			    upstream_login_send_tagged(ul, S_CAPA, UR_ONE,
				"EHLO %s", ul->helo));
			return;
		}
		(void)next_step(ul);
		return;
	}
	if (ul->st == S_CONNECT)
		upstream_login_expect(ul, S_GREETING, UR_ONE);
}

static void
on_data(struct conn *c, const char *p, size_t n)
{
	struct upstream_login *ul = conn_ctx(c);
	size_t off = 0;

	if (ul->st == S_TLS)
		return; /* plaintext after STARTTLS's OK: never read */
	if (ul->st == S_CONNECT) {
		upstream_login_finish(ul, UL_WHY_GARBAGE, "data before open");
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
			upstream_login_finish(ul,
			    ul->rd.err == UR_E_SYNTAX ? UL_WHY_GARBAGE :
							UL_WHY_LIMIT,
			    "%s: %s", upstream_login_state_name(ul->st),
			    ul->rd.error);
			return;
		}
		ul->rest = p + off;
		ul->rest_len = n - off;
		switch (ul->proto) {
		case UL_IMAP:
			alive = upstream_imap_line(ul, rc);
			break;
		case UL_POP3:
			alive = upstream_pop3_line(ul, rc);
			break;
		case UL_SMTP:
			alive = upstream_smtp_line(ul, rc);
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

	upstream_login_finish(ul, UL_WHY_CLOSED, "back end closed (%s)",
	    upstream_login_state_name(ul->st));
}

static void
on_close(struct conn *c, enum conn_reason why)
{
	struct upstream_login *ul = conn_ctx(c);

	ul->c = NULL; /* going away on its own */
	switch (why) {
	case CR_TLS:
		upstream_login_finish(ul, UL_WHY_TLS, "TLS failed (%s)",
		    upstream_login_state_name(ul->st));
		return;
	case CR_TIMEOUT:
		upstream_login_finish(ul, UL_WHY_TIMEOUT, "timed out (%s)",
		    upstream_login_state_name(ul->st));
		return;
	case CR_CONNECT:
		upstream_login_finish(ul, UL_WHY_CONNECT, "connect failed");
		return;
	case CR_EOF:
		upstream_login_finish(ul, UL_WHY_CLOSED, "back end closed (%s)",
		    upstream_login_state_name(ul->st));
		return;
	default:
		upstream_login_finish(ul,
		    ul->st == S_CONNECT ? UL_WHY_CONNECT : UL_WHY_CLOSED,
		    "connection ended: %s (%s)", conn_reason_name(why),
		    upstream_login_state_name(ul->st));
		return;
	}
}

/* ---- sending ---------------------------------------------------------- */

static int __attribute__((format(printf, 3, 0)))
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
int
upstream_login_send_line(struct upstream_login *ul, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vsend(ul, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

/* An IMAP command with a tag of the caller's (pipelined). */
int
upstream_login_send_with_tag(struct upstream_login *ul, const char *tag,
    const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vsend(ul, tag, fmt, ap);
	va_end(ap);
	return rc;
}

/* A command and what its answer is: IMAP gets a fresh tag. */
int
upstream_login_send_tagged(struct upstream_login *ul, enum ul_state next,
    enum ur_expect ex, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (ul->proto == UL_IMAP)
		snprintf(ul->tag, sizeof(ul->tag), "U%u", ++ul->ntag);
	va_start(ap, fmt);
	rc = vsend(ul, ul->proto == UL_IMAP ? ul->tag : NULL, fmt, ap);
	va_end(ap);
	if (rc == 0)
		upstream_login_expect(ul, next, ex);
	return rc;
}

void
upstream_login_expect(struct upstream_login *ul, enum ul_state st,
    enum ur_expect ex)
{
	ul->st = st;
	upstream_resp_begin(&ul->rd, ex, ul->proto == UL_IMAP ? ul->tag : NULL);
}

/* Send or fail; false when the login is gone. */
bool
upstream_login_sent(struct upstream_login *ul, int rc)
{
	if (rc == 0)
		return true;
	upstream_login_finish(ul, UL_WHY_CLOSED, "cannot write (%s)",
	    upstream_login_state_name(ul->st));
	return false;
}

bool
upstream_login_start_tls(struct upstream_login *ul)
{
	ul->st = S_TLS;
	if (conn_start_tls_client(ul->c, ul->tls_ctx, ul->sni) == -1) {
		upstream_login_finish(ul, UL_WHY_TLS, "cannot start TLS");
		return false;
	}
	upstream_resp_init(&ul->rd, ul->rd.proto);
	return true;
}

/* ---- building what is sent -------------------------------------------- */

static bool
next_step(struct upstream_login *ul)
{
	switch (ul->proto) {
	case UL_IMAP:
		return upstream_imap_next(ul);
	case UL_POP3:
		return upstream_pop3_next(ul);
	case UL_SMTP:
		return upstream_smtp_next(ul);
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

/* The address without port (IPv4-mapped IPv6 as IPv4), and the port. */
void
upstream_login_format_addr(const struct sockaddr *sa, char *dst, size_t cap,
    unsigned *port_r)
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
