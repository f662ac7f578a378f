/*
 * upstream_imap.c - the IMAP side of ringgate's back-end login (see
 * upstream_login.c for the order of things): the greeting's or
 * CAPABILITY's capabilities, STARTTLS, ID with x-originating-ip/port,
 * x-connected-ip/port and x-session-ext-id (the client's own ID pairs
 * after ours, none of its "x-" keys), then
 * AUTHENTICATE PLAIN with SASL-IR (pipelined behind ID) or after a "+",
 * and the CAPABILITY the user's client is told in its tagged OK (from the
 * OK's code, or asked for). Untagged data during the login other than
 * CAPABILITY is dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/upstream_login_private.h"

static void keep_caps(struct upstream_login *ul, const char *p, size_t n);
static bool imap_auth_answer(struct upstream_login *ul);
static bool add_quoted(char *dst, size_t cap, size_t *len, const char *s);
static bool add_pair(char *dst, size_t cap, size_t *len, const char *k,
    const char *v);

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

bool
upstream_imap_line(struct upstream_login *ul, enum ur_rc rc)
{
	struct upstream_resp *r = &ul->rd;

	if (r->kind == UR_K_UNTAGGED && r->status == UR_S_NONE) {
		keep_caps(ul, r->text.p, r->text.len);
		return true; /* * CAPABILITY, * ID, anything else: noted */
	}
	if (r->kind == UR_K_UNTAGGED && r->status == UR_S_BYE &&
	    ul->st != S_GREETING) {
		upstream_login_finish(ul, UL_WHY_SERVER, "BYE (%s)",
		    upstream_login_state_name(ul->st));
		return false;
	}
	if (rc == UR_LINE)
		return true; /* untagged OK/NO/BAD: informational */
	if (r->code.p != NULL && ul->st != S_STARTTLS)
		keep_caps(ul, r->code.p, r->code.len);
	switch (ul->st) {
	case S_GREETING:
		if (r->status == UR_S_PREAUTH) {
			upstream_login_finish(ul, UL_WHY_PREAUTH,
			    "PREAUTH greeting");
			return false;
		}
		if (r->status != UR_S_OK) {
			upstream_login_finish(ul, UL_WHY_SERVER,
			    "greeting is BYE");
			return false;
		}
		return upstream_imap_next(ul);
	case S_CAPA:
		if (r->kind != UR_K_TAGGED || r->status != UR_S_OK) {
			upstream_login_finish(ul, UL_WHY_GARBAGE,
			    "CAPABILITY failed");
			return false;
		}
		if (!ul->have_caps) {
			upstream_login_finish(ul, UL_WHY_GARBAGE,
			    "no CAPABILITY answer");
			return false;
		}
		return upstream_imap_next(ul);
	case S_STARTTLS:
		if (r->kind != UR_K_TAGGED || r->status != UR_S_OK) {
			upstream_login_finish(ul, UL_WHY_NO_STARTTLS,
			    "STARTTLS refused");
			return false;
		}
		return upstream_login_start_tls(ul);
	case S_ID:
		if (r->kind != UR_K_TAGGED) {
			upstream_login_finish(ul, UL_WHY_GARBAGE,
			    "continuation to ID");
			return false;
		}
		/* refused or not, the login goes on */
		if (ul->id_pipelined) {
			snprintf(ul->tag, sizeof(ul->tag), "U%u", ul->ntag);
			ul->res.capability[0] = '\0';
			ul->have_caps = false;
			upstream_login_expect(ul, S_AUTH, UR_TAGGED);
			return true;
		}
		return upstream_imap_next(ul);
	case S_AUTH:
	case S_AUTH_CONT:
		return imap_auth_answer(ul);
	case S_POSTCAPA:
		if (r->kind != UR_K_TAGGED || r->status != UR_S_OK) {
			upstream_login_finish(ul, UL_WHY_GARBAGE,
			    "CAPABILITY after login");
			return false;
		}
		upstream_login_succeed(ul, ul->rest, ul->rest_len);
		return false;
	default:
		upstream_login_finish(ul, UL_WHY_GARBAGE, "unexpected answer");
		return false;
	}
}

/* After greeting, CAPABILITY or ID: the next command. */
bool
upstream_imap_next(struct upstream_login *ul)
{
	if (ul->tls == UL_TLS_STARTTLS && !ul->tls_up) {
		if (!ul->have_caps)
			return upstream_login_sent(ul,
			    upstream_login_send_tagged(ul, S_CAPA, UR_TAGGED,
				"CAPABILITY"));
		if (!(ul->ext & X_STARTTLS)) {
			upstream_login_finish(ul, UL_WHY_NO_STARTTLS,
			    "STARTTLS required, not offered");
			return false;
		}
		return upstream_login_sent(ul,
		    upstream_login_send_tagged(ul, S_STARTTLS, UR_TAGGED,
			"STARTTLS"));
	}
	if (!ul->have_caps)
		return upstream_login_sent(ul,
		    upstream_login_send_tagged(ul, S_CAPA, UR_TAGGED,
			"CAPABILITY"));
	if (ul->st != S_ID && ul->id_cmd != NULL && (ul->ext & X_ID)) {
		char auth_tag[16];

		if (!upstream_login_sent(ul,
			upstream_login_send_tagged(ul, S_ID, UR_TAGGED, "%s",
			    ul->id_cmd)))
			return false;
		if (!(ul->ext & X_SASL_IR))
			return true;
		/* AUTHENTICATE goes with ID: one round trip less */
		snprintf(auth_tag, sizeof(auth_tag), "U%u", ++ul->ntag);
		ul->id_pipelined = true;
		ul->ir_sent = true;
		return upstream_login_sent(ul,
		    upstream_login_send_with_tag(ul, auth_tag,
			"AUTHENTICATE PLAIN %s", ul->sasl));
	}
	ul->res.capability[0] = '\0';
	ul->have_caps = false;
	if (ul->ext & X_SASL_IR) {
		ul->ir_sent = true;
		return upstream_login_sent(ul,
		    upstream_login_send_tagged(ul, S_AUTH, UR_TAGGED,
			"AUTHENTICATE PLAIN %s", ul->sasl));
	}
	return upstream_login_sent(ul,
	    upstream_login_send_tagged(ul, S_AUTH, UR_TAGGED,
		"AUTHENTICATE PLAIN"));
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
			upstream_login_finish(ul, UL_WHY_GARBAGE,
			    "unexpected continuation");
			return false;
		}
		if (!upstream_login_sent(ul,
			upstream_login_send_line(ul, "%s", ul->sasl)))
			return false;
		upstream_login_expect(ul, S_AUTH_CONT, UR_TAGGED);
		return true;
	}
	if (r->status == UR_S_NO) {
		if (imap_code_is_temp(&r->code)) {
			upstream_login_finish(ul, UL_WHY_SERVER,
			    "login failed: %.*s",
			    (int)(r->code.len < 32 ? r->code.len : 32),
			    r->code.p);
			return false;
		}
		upstream_login_finish(ul, UL_WHY_REFUSED,
		    "master login refused (%.*s)",
		    (int)(r->code.len < 32 ? r->code.len : 32),
		    r->code.p != NULL ? r->code.p : "");
		return false;
	}
	if (r->status != UR_S_OK) {
		upstream_login_finish(ul, UL_WHY_GARBAGE,
		    "AUTHENTICATE answered BAD");
		return false;
	}
	if (ul->have_caps) {
		upstream_login_succeed(ul, ul->rest, ul->rest_len);
		return false;
	}
	return upstream_login_sent(ul,
	    upstream_login_send_tagged(ul, S_POSTCAPA, UR_TAGGED,
		"CAPABILITY"));
}

/* ---- ID ----------------------------------------------------------------- */

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
int
upstream_imap_build_id(struct upstream_login *ul, const struct ul_params *p)
{
	char *id = malloc(UL_ID_MAX);
	size_t len;
	unsigned pairs = 0;
	char port[16], laddr[64], sid[24];
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
		upstream_login_format_addr(p->local, laddr, sizeof(laddr),
		    &lport);
		snprintf(port, sizeof(port), "%u", lport);
		add_pair(id, UL_ID_MAX, &len, "x-connected-ip", laddr);
		add_pair(id, UL_ID_MAX, &len, "x-connected-port", port);
		pairs += 2;
	}
	if (p->sid != 0) {
		/* Dovecot logs it: one id across ringgate's and its lines */
		snprintf(sid, sizeof(sid), "%016llx",
		    (unsigned long long)p->sid);
		add_pair(id, UL_ID_MAX, &len, "x-session-ext-id", sid);
		pairs++;
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
