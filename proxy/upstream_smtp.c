/*
 * upstream_smtp.c - the submission side of ringgate's back-end login:
 * greeting, EHLO, STARTTLS and EHLO again when TLS is required, then
 * either XCLIENT (Postfix XCLIENT_README: ADDR, PORT, HELO, LOGIN; the
 * back end answers with a new greeting and wants EHLO again) when asked
 * for and offered, or AUTH PLAIN with an initial response (RFC 4954).
 * 5xx to AUTH or XCLIENT is a refusal; 4xx the back end's trouble.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/smtp_xtext.h"
#include "proxy/upstream_login_private.h"

static void smtp_ehlo_line(struct upstream_login *ul);
static int xclient_attrs(struct upstream_login *ul, char *dst, size_t cap);

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

bool
upstream_smtp_line(struct upstream_login *ul, enum ur_rc rc)
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
			upstream_login_finish(ul,
			    code / 100 == 5 && ul->st == S_XCLIENT ?
				UL_WHY_REFUSED :
				UL_WHY_SERVER,
			    "%s answered %u", upstream_login_state_name(ul->st),
			    code);
			return false;
		}
		ul->ext = 0;
		return upstream_login_sent(ul,
		    upstream_login_send_tagged(ul,
			ul->st == S_XCLIENT ? S_XEHLO : S_CAPA, UR_ONE,
			"EHLO %s", ul->helo));
	case S_CAPA:
		if (code != 250) {
			upstream_login_finish(ul, UL_WHY_SERVER,
			    "EHLO answered %u", code);
			return false;
		}
		return upstream_smtp_next(ul);
	case S_XEHLO:
		if (code != 250) {
			upstream_login_finish(ul, UL_WHY_SERVER,
			    "EHLO answered %u", code);
			return false;
		}
		upstream_login_succeed(ul, ul->rest, ul->rest_len);
		return false;
	case S_STARTTLS:
		if (code != 220) {
			upstream_login_finish(ul, UL_WHY_NO_STARTTLS,
			    "STARTTLS answered %u", code);
			return false;
		}
		return upstream_login_start_tls(ul);
	case S_AUTH:
		if (code == 235) {
			upstream_login_succeed(ul, ul->rest, ul->rest_len);
			return false;
		}
		if (code / 100 == 5) {
			upstream_login_finish(ul, UL_WHY_REFUSED,
			    "AUTH answered %u", code);
			return false;
		}
		upstream_login_finish(ul,
		    code / 100 == 4 ? UL_WHY_SERVER : UL_WHY_GARBAGE,
		    "AUTH answered %u", code);
		return false;
	default:
		upstream_login_finish(ul, UL_WHY_GARBAGE, "unexpected answer");
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

bool
upstream_smtp_next(struct upstream_login *ul)
{
	if (ul->tls == UL_TLS_STARTTLS && !ul->tls_up) {
		if (!(ul->ext & X_STARTTLS)) {
			upstream_login_finish(ul, UL_WHY_NO_STARTTLS,
			    "STARTTLS required, not offered");
			return false;
		}
		return upstream_login_sent(ul,
		    upstream_login_send_tagged(ul, S_STARTTLS, UR_ONE,
			"STARTTLS"));
	}
	if (ul->xclient && (ul->ext & X_XCLIENT)) {
		char attrs[3 * 256 + 3 * 256 + 160];

		if (xclient_attrs(ul, attrs, sizeof(attrs)) == -1) {
			upstream_login_finish(ul, UL_WHY_GARBAGE,
			    "XCLIENT attributes too long");
			return false;
		}
		return upstream_login_sent(ul,
		    upstream_login_send_tagged(ul, S_XCLIENT, UR_ONE,
			"XCLIENT%s", attrs));
	}
	return upstream_login_sent(ul,
	    upstream_login_send_tagged(ul, S_AUTH, UR_ONE, "AUTH PLAIN %s",
		ul->sasl));
}
