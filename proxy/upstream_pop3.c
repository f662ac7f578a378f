/*
 * upstream_pop3.c - the POP3 side of ringgate's back-end login: the
 * greeting, CAPA and STLS when TLS is required (a back end without STLS
 * is left before anything secret is sent), then AUTH PLAIN with its
 * initial response (RFC 5034). A -ERR with SYS/TEMP, IN-USE or
 * LOGIN-DELAY (RFC 3206, 2449) is the back end's trouble; any other is a
 * refusal of the master login.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/upstream_login_private.h"

/* ---- POP3 ------------------------------------------------------------- */

bool
upstream_pop3_line(struct upstream_login *ul, enum ur_rc rc)
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
			upstream_login_finish(ul, UL_WHY_SERVER,
			    "greeting is -ERR");
			return false;
		}
		return upstream_pop3_next(ul);
	case S_CAPA:
		ul->have_caps = true; /* -ERR: no CAPA, so no STLS either */
		return upstream_pop3_next(ul);
	case S_STARTTLS:
		if (r->status != UR_S_OK) {
			upstream_login_finish(ul, UL_WHY_NO_STARTTLS,
			    "STLS refused");
			return false;
		}
		return upstream_login_start_tls(ul);
	case S_AUTH:
		if (r->kind == UR_K_CONT) {
			upstream_login_finish(ul, UL_WHY_GARBAGE,
			    "unexpected challenge");
			return false;
		}
		if (r->status == UR_S_OK) {
			upstream_login_succeed(ul, ul->rest, ul->rest_len);
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
			upstream_login_finish(ul, UL_WHY_SERVER,
			    "login failed: %.*s", (int)r->code.len, r->code.p);
			return false;
		}
		upstream_login_finish(ul, UL_WHY_REFUSED,
		    "master login refused");
		return false;
	default:
		upstream_login_finish(ul, UL_WHY_GARBAGE, "unexpected answer");
		return false;
	}
}

bool
upstream_pop3_next(struct upstream_login *ul)
{
	if (ul->tls == UL_TLS_STARTTLS && !ul->tls_up) {
		if (!ul->have_caps)
			return upstream_login_sent(ul,
			    upstream_login_send_tagged(ul, S_CAPA, UR_MULTI,
				"CAPA"));
		if (!(ul->ext & X_STARTTLS)) {
			upstream_login_finish(ul, UL_WHY_NO_STARTTLS,
			    "STLS required, not offered");
			return false;
		}
		return upstream_login_sent(ul,
		    upstream_login_send_tagged(ul, S_STARTTLS, UR_ONE, "STLS"));
	}
	return upstream_login_sent(ul,
	    upstream_login_send_tagged(ul, S_AUTH, UR_ONE, "AUTH PLAIN %s",
		ul->sasl));
}
