/*
 * relay_client.c - the queue runner's SMTP client (backend/relay.h): one
 * attempt's connection to the smarthost, driven by the replies it reads
 * (proto/smtp_resp.h): greeting, EHLO, STARTTLS and the TLS handshake
 * with the smarthost's certificate verified (core/tls.h), EHLO again,
 * AUTH PLAIN, MAIL, one RCPT per pending recipient, DATA with the
 * message dot-stuffed (proto/smtp_data.h) from 64 KiB reads on the store
 * pool, written only while the connection's output queue has room.
 *
 * Each reply sets the outcome of the recipients it is about in the
 * attempt's envelope copy; the disk is not touched here. Commands are not
 * pipelined, so a reply always answers the command of a->st, and a peer
 * that talks out of turn (or sends bytes after its 220 to STARTTLS) is
 * cut off. on_close is where every session ends: it hands the attempt to
 * relay_finish() (relay.c), unless a read is still out, whose answer
 * does it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/relay.h"
#include "backend/relay_private.h"
#include "core/loop.h"
#include "core/pool.h"
#include "core/tls.h"
#include "proto/smtp_data.h"
#include "proto/smtp_resp.h"

static const char *const astate_names[] = { "load", "connect", "greeting",
	"ehlo", "starttls", "tls", "ehlo", "auth", "mail", "rcpt", "data",
	"data", "end of data", "quit", "update" };

/* the SMTP client */
static void c_open(struct conn *c);
static void c_data(struct conn *c, const char *p, size_t n);
static void c_drain(struct conn *c);
static void c_timer(struct conn *c);
static void c_close(struct conn *c, enum conn_reason why);
static void on_reply(struct attempt *a, const char *rest, size_t nrest);
static void send_cmd(struct attempt *a, enum astate st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void after_ehlo(struct attempt *a);
static void send_mail(struct attempt *a);
static bool ascii(const char *s);
static void next_rcpt(struct attempt *a);
static void quit(struct attempt *a);
static void apply_accepted(struct attempt *a);
static void set_rcpt(struct spool_rcpt *rc, enum spool_rcpt_state st,
    const char *status, const char *reply);
static void body_next(struct attempt *a);
static void chunk_run(struct pool_job *pj);
static void chunk_done(struct pool_job *pj);

static const struct conn_handler client_handler = {
	.on_open = c_open,
	.on_data = c_data,
	.on_drain = c_drain,
	.on_timer = c_timer,
	.on_close = c_close,
};

void
relay_client_connect(struct attempt *a)
{
	struct relay *r = a->r;

	a->st = A_CONNECT;
	smtp_resp_init(&a->resp);
	a->c = conn_connect(r->loop, (struct sockaddr *)&a->addr[a->ai],
	    a->alen[a->ai], &client_handler, a);
	if (a->c == NULL) {
		relay_client_fail(a, false, "cannot connect to the smarthost");
		relay_finish(a);
		return;
	}
	conn_set_timer(a->c, r->conf->timeout);
}

/* ---- the SMTP client ---------------------------------------------------- */

static void
set_rcpt(struct spool_rcpt *rc, enum spool_rcpt_state st, const char *status,
    const char *reply)
{
	rc->state = st;
	snprintf(rc->status, sizeof(rc->status), "%s", status);
	snprintf(rc->reply, sizeof(rc->reply), "%s", reply);
}

/* The session cannot go on: every pending recipient gets why (perm: as
 * a permanent failure). */
void
relay_client_fail(struct attempt *a, bool perm, const char *why)
{
	char status[16];

	if (why != a->diag)
		snprintf(a->diag, sizeof(a->diag), "%s", why);
	if (perm && a->resp.code >= 500)
		smtp_resp_status(&a->resp, status, sizeof(status));
	else if (a->resp.code >= 400 && a->resp.code < 500 && a->smtp)
		smtp_resp_status(&a->resp, status, sizeof(status));
	else
		snprintf(status, sizeof(status), perm ? "5.0.0" : "4.4.1");
	for (size_t i = 0; i < a->e.nrcpts; i++)
		if (a->e.rcpts[i].state == SPOOL_RCPT_PENDING)
			set_rcpt(&a->e.rcpts[i],
			    perm ? SPOOL_RCPT_FAILED : SPOOL_RCPT_PENDING,
			    status, a->diag);
}

static void
send_cmd(struct attempt *a, enum astate st, const char *fmt, ...)
{
	char b[SPOOL_ADDR_MAX + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	a->st = st;
	if (n < 0 || (size_t)n >= sizeof(b) ||
	    conn_write(a->c, b, (size_t)n) == -1) {
		relay_client_fail(a, false, "cannot send a command");
		conn_abort(a->c, CR_NOMEM);
		return;
	}
	conn_set_timer(a->c, a->r->conf->timeout);
}

static void
quit(struct attempt *a)
{
	a->st = A_QUIT;
	(void)conn_write(a->c, "QUIT\r\n", 6);
	conn_close(a->c);
}

static void
c_open(struct conn *c)
{
	struct attempt *a = conn_ctx(c);

	if (a->st == A_CONNECT) {
		a->st = A_GREETING;
		a->smtp = true;
		conn_set_timer(c, a->r->conf->timeout);
	} else if (a->st == A_TLS) {
		a->tls = true;
		send_cmd(a, A_EHLO2, "EHLO %s\r\n", a->r->helo);
	}
}

static void
c_data(struct conn *c, const char *p, size_t n)
{
	struct attempt *a = conn_ctx(c);

	while (n > 0 && !conn_closing(c)) {
		size_t used = 0;
		enum smtp_resp_rc rc;

		if (a->st == A_QUIT || a->st == A_BODY || a->st == A_TLS) {
			/* nothing is expected now: a peer talking out of
			 * turn (or injecting before TLS) is not followed */
			if (a->st != A_QUIT) {
				relay_client_fail(a, false,
				    "the smarthost sent data out of turn");
				conn_abort(c, CR_OVERFLOW);
			}
			return;
		}
		rc = smtp_resp_feed(&a->resp, p, n, &used);
		p += used;
		n -= used;
		if (rc == SMTP_RESP_INVALID) {
			relay_client_fail(a, false,
			    "the smarthost's reply does not parse");
			conn_abort(c, CR_OVERFLOW);
			return;
		}
		if (rc == SMTP_RESP_MORE)
			return;
		snprintf(a->last, sizeof(a->last), "%s", a->resp.text);
		on_reply(a, p, n);
		smtp_resp_init(&a->resp);
	}
}

/* One whole reply in a->resp for the command of a->st. rest: what came
 * after it (only pipelining would send more, and we do not pipeline). */
static void
on_reply(struct attempt *a, const char *rest, size_t nrest)
{
	unsigned code = a->resp.code;
	char status[16];

	switch (a->st) {
	case A_GREETING:
		if (code / 100 != 2) {
			relay_client_fail(a, false, a->resp.text);
			quit(a);
			return;
		}
		send_cmd(a, A_EHLO, "EHLO %s\r\n", a->r->helo);
		return;
	case A_EHLO:
	case A_EHLO2:
		if (code / 100 != 2) {
			relay_client_fail(a, false, a->resp.text);
			quit(a);
			return;
		}
		after_ehlo(a);
		return;
	case A_STARTTLS:
		if (code != 220) {
			relay_client_fail(a, false, a->resp.text);
			quit(a);
			return;
		}
		if (nrest > 0) { /* CVE-2011-0411 class: bytes before TLS */
			relay_client_fail(a, false,
			    "the smarthost sent data after 220 to STARTTLS");
			conn_abort(a->c, CR_OVERFLOW);
			return;
		}
		a->st = A_TLS;
		if (conn_start_tls_client(a->c, a->r->tls, a->r->host) == -1) {
			relay_client_fail(a, false, "cannot start TLS");
			conn_abort(a->c, CR_TLS);
		}
		return;
	case A_AUTH:
		if (code != 235) {
			relay_client_fail(a, false, a->resp.text);
			quit(a);
			return;
		}
		send_mail(a);
		return;
	case A_MAIL:
		if (code / 100 != 2) {
			relay_client_fail(a, code / 100 == 5, a->resp.text);
			quit(a);
			return;
		}
		a->ri = 0;
		a->nacc = 0;
		next_rcpt(a);
		return;
	case A_RCPT:
		smtp_resp_status(&a->resp, status, sizeof(status));
		if (code / 100 == 2) {
			a->acc[a->ri] = true;
			a->nacc++;
		} else {
			set_rcpt(&a->e.rcpts[a->ri],
			    code / 100 == 5 ? SPOOL_RCPT_FAILED :
					      SPOOL_RCPT_PENDING,
			    status, a->resp.text);
		}
		a->ri++;
		next_rcpt(a);
		return;
	case A_DATA:
		if (code != 354) {
			apply_accepted(a);
			quit(a);
			return;
		}
		a->st = A_BODY;
		a->off = 0;
		smtp_stuff_init(&a->stuff);
		body_next(a);
		return;
	case A_DOT:
		apply_accepted(a);
		quit(a);
		return;
	default:
		return;
	}
}

static void
after_ehlo(struct attempt *a)
{
	struct relay *r = a->r;

	a->ext = a->resp.ext;
	if (r->tls != NULL && !a->tls) {
		if (!(a->resp.ext & SMTP_EXT_STARTTLS)) {
			relay_client_fail(a, false,
			    "the smarthost does not offer STARTTLS");
			quit(a);
			return;
		}
		send_cmd(a, A_STARTTLS, "STARTTLS\r\n");
		return;
	}
	if (r->auth_plain != NULL) {
		if (!(a->resp.ext & SMTP_EXT_AUTH_PLAIN)) {
			relay_client_fail(a, false,
			    "the smarthost does not offer AUTH PLAIN");
			quit(a);
			return;
		}
		a->st = A_AUTH;
		if (conn_write(a->c, r->auth_plain, strlen(r->auth_plain)) ==
		    -1) {
			conn_abort(a->c, CR_NOMEM);
			return;
		}
		conn_set_timer(a->c, r->conf->timeout);
		return;
	}
	send_mail(a);
}

static void
send_mail(struct attempt *a)
{
	bool utf8 = !ascii(a->e.sender);

	for (size_t i = 0; i < a->e.nrcpts && !utf8; i++)
		utf8 = a->e.rcpts[i].state == SPOOL_RCPT_PENDING &&
		    !ascii(a->e.rcpts[i].addr);
	if (utf8 && !(a->ext & SMTP_EXT_SMTPUTF8)) {
		/* RFC 6531 3.5: it cannot be sent on without downgrading */
		relay_client_fail(a, true,
		    "the smarthost does not support SMTPUTF8");
		for (size_t i = 0; i < a->e.nrcpts; i++)
			if (a->e.rcpts[i].state == SPOOL_RCPT_FAILED &&
			    strcmp(a->e.rcpts[i].reply, a->diag) == 0)
				snprintf(a->e.rcpts[i].status,
				    sizeof(a->e.rcpts[i].status), "5.6.7");
		quit(a);
		return;
	}
	/* 8-bit bodies are declared when the smarthost can take them
	 * (declaring a 7-bit one is harmless; RFC 6152) */
	send_cmd(a, A_MAIL, "MAIL FROM:<%s>%s%s\r\n", a->e.sender,
	    a->ext & SMTP_EXT_8BITMIME ? " BODY=8BITMIME" : "",
	    utf8 ? " SMTPUTF8" : "");
}

static bool
ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* RCPT for the next pending recipient, or DATA (or QUIT when nobody was
 * accepted). */
static void
next_rcpt(struct attempt *a)
{
	while (a->ri < a->e.nrcpts &&
	    a->e.rcpts[a->ri].state != SPOOL_RCPT_PENDING)
		a->ri++;
	if (a->ri < a->e.nrcpts) {
		send_cmd(a, A_RCPT, "RCPT TO:<%s>\r\n", a->e.rcpts[a->ri].addr);
		return;
	}
	if (a->nacc == 0) {
		quit(a);
		return;
	}
	send_cmd(a, A_DATA, "DATA\r\n");
}

/* The reply to DATA or to the end of data holds for every recipient
 * RCPT accepted. */
static void
apply_accepted(struct attempt *a)
{
	unsigned code = a->resp.code;
	char status[16];

	smtp_resp_status(&a->resp, status, sizeof(status));
	for (size_t i = 0; i < a->e.nrcpts; i++) {
		if (!a->acc[i])
			continue;
		a->acc[i] = false;
		if (code / 100 == 2) {
			set_rcpt(&a->e.rcpts[i], SPOOL_RCPT_SENT, status,
			    a->resp.text);
			a->n_sent++;
		} else {
			set_rcpt(&a->e.rcpts[i],
			    code / 100 == 5 ? SPOOL_RCPT_FAILED :
					      SPOOL_RCPT_PENDING,
			    status, a->resp.text);
		}
	}
	a->nacc = 0;
}

/* ---- DATA: the message from the spool file, dot-stuffed ---------------- */

static void
body_next(struct attempt *a)
{
	if (a->chunk == NULL &&
	    (a->chunk = malloc(sizeof(*a->chunk))) == NULL) {
		relay_client_fail(a, false, "out of memory");
		conn_abort(a->c, CR_NOMEM);
		return;
	}
	memset(&a->chunk->base, 0, sizeof(a->chunk->base));
	a->chunk->a = a;
	if (relay_submit(a, &a->chunk->base, chunk_run, chunk_done, true) ==
	    -1) {
		relay_client_fail(a, false, "cannot queue a read");
		conn_abort(a->c, CR_NOMEM);
	}
}

static void
chunk_run(struct pool_job *pj)
{
	struct chunk_job *j = (struct chunk_job *)pj;
	ssize_t n;

	do
		n = pread(j->a->fd, j->buf, sizeof(j->buf), (off_t)j->a->off);
	while (n == -1 && errno == EINTR);
	j->n = n == -1 ? -errno : n;
}

static void
chunk_done(struct pool_job *pj)
{
	struct chunk_job *j = (struct chunk_job *)pj;
	struct attempt *a = j->a;
	char out[2 * 4096 + SMTP_STUFF_END_MAX];
	size_t off = 0;

	a->jobs = false;
	if (a->r->stopping || a->c == NULL || conn_closing(a->c)) {
		/* the connection went while the read was out */
		if (a->c == NULL && a->closed && !a->r->stopping)
			relay_finish(a);
		else
			relay_attempt_release(a);
		return;
	}
	if (j->n < 0) {
		relay_client_fail(a, false, "cannot read the spooled message");
		conn_abort(a->c, CR_NONE);
		return;
	}
	if (j->n == 0) {
		size_t w = smtp_stuff_end(&a->stuff, out, sizeof(out));

		a->st = A_DOT;
		if (conn_write(a->c, out, w) == -1)
			conn_abort(a->c, CR_NOMEM);
		else
			conn_set_timer(a->c, a->r->conf->timeout);
		return;
	}
	while (off < (size_t)j->n) {
		size_t used, w;

		w = smtp_stuff_put(&a->stuff, j->buf + off, (size_t)j->n - off,
		    &used, out, sizeof(out));
		off += used;
		if (w > 0 && conn_write(a->c, out, w) == -1) {
			conn_abort(a->c, CR_NOMEM);
			return;
		}
	}
	a->off += (uint64_t)j->n;
	conn_set_timer(a->c, a->r->conf->timeout);
	if (conn_out_full(a->c))
		a->wait_drain = true;
	else
		body_next(a);
}

static void
c_drain(struct conn *c)
{
	struct attempt *a = conn_ctx(c);

	if (a->wait_drain && a->st == A_BODY) {
		a->wait_drain = false;
		body_next(a);
	}
}

static void
c_timer(struct conn *c)
{
	struct attempt *a = conn_ctx(c);
	char why[96];

	snprintf(why, sizeof(why), "timeout waiting for the smarthost (%s)",
	    astate_names[a->st]);
	relay_client_fail(a, false, why);
	conn_abort(c, CR_TIMEOUT);
}

static void
c_close(struct conn *c, enum conn_reason why)
{
	struct attempt *a = conn_ctx(c);
	char text[SPOOL_REPLY_MAX];

	a->c = NULL;
	a->closed = true;
	if (why == CR_DRAIN || a->r->stopping) {
		/* shutting down: the entry stays as it was */
		a->r->stopping = a->r->stopping || why == CR_DRAIN;
		relay_attempt_release(a);
		return;
	}
	if (a->st == A_CONNECT && a->ai + 1 < a->naddr) {
		a->ai++;
		relay_client_connect(a);
		return;
	}
	if (a->st != A_QUIT && a->diag[0] == '\0') {
		const char *tr = why == CR_TLS && conn_tls(c) != NULL ?
		    tls_conn_reason(conn_tls(c)) :
		    NULL;

		if (a->st == A_CONNECT)
			snprintf(text, sizeof(text),
			    "cannot connect to the smarthost %s:%s (%s)",
			    a->r->host, a->r->port, conn_reason_name(why));
		else if (why == CR_TLS || a->st == A_TLS)
			snprintf(text, sizeof(text),
			    "TLS with the smarthost failed (%s)",
			    tr ? tr : conn_reason_name(why));
		else
			snprintf(text, sizeof(text),
			    "connection lost during %s (%s)",
			    astate_names[a->st], conn_reason_name(why));
		relay_client_fail(a, false, text);
	}
	if (a->jobs) /* a read is out: its answer finishes */
		return;
	relay_finish(a);
}
