/*
 * upstream_standin.c - a stand-in for proxy/upstream_login.c (branch
 * i12-blogin) so the front ends run end to end before the real back-end
 * login lands: the same API, plaintext back ends only (no STARTTLS, TLS,
 * ID, XCLIENT or PROXY v2), SASL PLAIN as the master with authzid = user,
 * lines bounded at 4 KiB. Deleted when i12-blogin is merged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "proto/base64.h"
#include "proxy/upstream_login.h"

#define LINE_MAX_SI 4096

enum step { ST_GREETING, ST_EHLO, ST_AUTH, ST_CAPA };

struct upstream_login {
	struct conn *c;
	enum ul_proto proto;
	enum step step;
	ul_done_fn *done;
	void *ctx;
	char auth[1024]; /* the AUTH line */
	char line[LINE_MAX_SI];
	size_t nline;
	struct ul_result res;
	bool finished;
};

static void on_open(struct conn *c);
static void on_data(struct conn *c, const char *p, size_t n);
static void on_timer(struct conn *c);
static void on_close(struct conn *c, enum conn_reason why);
static bool finish(struct upstream_login *ul, enum ul_status st,
    const char *why, const char *rest, size_t nrest);
static bool take_line(struct upstream_login *ul, const char *line, size_t len,
    const char *rest, size_t nrest);

static const struct conn_handler handler = {
	.on_open = on_open,
	.on_data = on_data,
	.on_timer = on_timer,
	.on_close = on_close,
};

const char *
ul_status_name(enum ul_status s)
{
	return s == UL_OK ? "ok" : s == UL_TEMP ? "temp" : "refused";
}

struct upstream_login *
upstream_login_start(struct loop *l, const struct sockaddr *backend,
    socklen_t len, const struct ul_params *p, ul_done_fn *done, void *ctx,
    const char **error_r)
{
	struct upstream_login *ul;
	char plain[800], b64[1100];
	size_t ulen, mlen, plen;
	int n;

	if (p->user == NULL || p->master_user == NULL ||
	    p->master_pass == NULL || p->tls != UL_TLS_NONE) {
		if (error_r)
			*error_r = "stand-in: plaintext back ends only";
		return NULL;
	}
	ulen = strlen(p->user);
	mlen = strlen(p->master_user);
	plen = strlen(p->master_pass);
	if (ulen + mlen + plen + 2 > sizeof(plain) ||
	    (ul = calloc(1, sizeof(*ul))) == NULL) {
		if (error_r)
			*error_r = "out of memory";
		return NULL;
	}
	memcpy(plain, p->user, ulen);
	plain[ulen] = '\0';
	memcpy(plain + ulen + 1, p->master_user, mlen);
	plain[ulen + 1 + mlen] = '\0';
	memcpy(plain + ulen + mlen + 2, p->master_pass, plen);
	base64_encode(plain, ulen + mlen + plen + 2, b64, sizeof(b64), NULL);
	explicit_bzero(plain, sizeof(plain));
	n = snprintf(ul->auth, sizeof(ul->auth),
	    p->proto == UL_IMAP ? "L1 AUTHENTICATE PLAIN %s\r\n" :
				  "AUTH PLAIN %s\r\n",
	    b64);
	explicit_bzero(b64, sizeof(b64));
	if (n <= 0 || (size_t)n >= sizeof(ul->auth)) {
		free(ul);
		return NULL;
	}
	ul->proto = p->proto;
	ul->done = done;
	ul->ctx = ctx;
	ul->c = conn_connect(l, backend, len, &handler, ul);
	if (ul->c == NULL) {
		free(ul);
		if (error_r)
			*error_r = "connect failed at once";
		return NULL;
	}
	conn_set_timer(ul->c, p->timeout_ms ? p->timeout_ms : 10000);
	return ul;
}

void
upstream_login_cancel(struct upstream_login *ul)
{
	if (ul == NULL)
		return;
	ul->finished = true;
	ul->done = NULL;
	conn_abort(ul->c, CR_NONE);
}

static void
on_open(struct conn *c)
{
	(void)c;
}

static void
send_str(struct upstream_login *ul, const char *s)
{
	conn_write(ul->c, s, strlen(s));
}

/* One line of the back end's: true when the login finished (ul may be
 * gone then). */
static bool
take_line(struct upstream_login *ul, const char *line, size_t len,
    const char *rest, size_t nrest)
{
	switch (ul->proto) {
	case UL_IMAP:
		if (ul->step == ST_GREETING) {
			if (len < 4 || memcmp(line, "* OK", 4) != 0) {
				return finish(ul, UL_TEMP, "bad greeting", NULL,
				    0);
			}
			ul->step = ST_AUTH;
			send_str(ul, ul->auth);
			return false;
		}
		if (ul->step == ST_AUTH) {
			if (line[0] == '*')
				return false;
			if (len >= 5 && memcmp(line, "L1 OK", 5) == 0) {
				ul->step = ST_CAPA;
				send_str(ul, "L2 CAPABILITY\r\n");
				return false;
			}
			return finish(ul, UL_REFUSED, "login refused", NULL, 0);
		}
		if (len > 13 && memcmp(line, "* CAPABILITY ", 13) == 0) {
			snprintf(ul->res.capability, sizeof(ul->res.capability),
			    "%.*s", (int)(len - 13), line + 13);
			return false;
		}
		if (len >= 5 && memcmp(line, "L2 OK", 5) == 0)
			return finish(ul, UL_OK, "ok", rest, nrest);
		if (line[0] != '*')
			return finish(ul, UL_TEMP, "CAPABILITY failed", NULL,
			    0);
		return false;
	case UL_POP3:
		if (ul->step == ST_GREETING) {
			if (len < 3 || memcmp(line, "+OK", 3) != 0) {
				return finish(ul, UL_TEMP, "bad greeting", NULL,
				    0);
			}
			ul->step = ST_AUTH;
			send_str(ul, ul->auth);
			return false;
		}
		if (len >= 3 && memcmp(line, "+OK", 3) == 0)
			return finish(ul, UL_OK, "ok", rest, nrest);
		else
			return finish(ul, UL_REFUSED, "login refused", NULL, 0);
	case UL_SMTP:
		if (len < 4) {
			return finish(ul, UL_TEMP, "short reply", NULL, 0);
		}
		if (line[3] == '-')
			return false;
		if (ul->step == ST_GREETING) {
			if (line[0] != '2') {
				return finish(ul, UL_TEMP, "bad greeting", NULL,
				    0);
			}
			ul->step = ST_EHLO;
			send_str(ul, "EHLO ringgate\r\n");
			return false;
		}
		if (ul->step == ST_EHLO) {
			if (line[0] != '2') {
				return finish(ul, UL_TEMP, "EHLO refused", NULL,
				    0);
			}
			ul->step = ST_AUTH;
			send_str(ul, ul->auth);
			return false;
		}
		if (memcmp(line, "235", 3) == 0)
			return finish(ul, UL_OK, "ok", rest, nrest);
		else
			return finish(ul, line[0] == '4' ? UL_TEMP : UL_REFUSED,
			    "login refused", NULL, 0);
	}
	return false;
}

static void
on_data(struct conn *c, const char *p, size_t n)
{
	struct upstream_login *ul = conn_ctx(c);

	for (size_t i = 0; i < n; i++) {
		if (ul->nline + 1 >= sizeof(ul->line)) {
			finish(ul, UL_TEMP, "line too long", NULL, 0);
			return;
		}
		ul->line[ul->nline++] = p[i];
		if (p[i] == '\n') {
			size_t len = ul->nline;

			while (len > 0 &&
			    (ul->line[len - 1] == '\n' ||
				ul->line[len - 1] == '\r'))
				len--;
			ul->line[len] = '\0';
			ul->nline = 0;
			if (take_line(ul, ul->line, len, p + i + 1, n - i - 1))
				return;
		}
	}
}

static void
on_timer(struct conn *c)
{
	struct upstream_login *ul = conn_ctx(c);

	finish(ul, UL_TEMP, "timeout", NULL, 0);
}

static void
on_close(struct conn *c, enum conn_reason why)
{
	struct upstream_login *ul = conn_ctx(c);

	(void)why;
	ul->c = NULL;
	if (!ul->finished)
		finish(ul, UL_TEMP, "back end closed", NULL, 0);
	free(ul);
}

/* Once: hand over (UL_OK) or close; ul itself goes in on_close (after
 * the abort) or right here (UL_OK: the conn is the caller's). */
static bool
finish(struct upstream_login *ul, enum ul_status st, const char *why,
    const char *rest, size_t nrest)
{
	struct conn *c = ul->c;

	if (ul->finished)
		return true;
	ul->finished = true;
	ul->res.status = st;
	snprintf(ul->res.reason, sizeof(ul->res.reason), "%s", why);
	ul->res.rest = rest;
	ul->res.rest_len = nrest;
	if (st != UL_OK) {
		ul->done(ul->ctx, NULL, &ul->res);
		ul->done = NULL;
		if (c != NULL)
			conn_abort(c, CR_NONE); /* on_close frees ul */
		return true;
	}
	conn_set_timer(c, 0);
	ul->done(ul->ctx, c, &ul->res);
	free(ul);
	return true;
}
