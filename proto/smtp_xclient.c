/*
 * smtp_xclient.c - the arguments of Postfix's XCLIENT command
 * (XCLIENT_README): "XCLIENT" 1*( SP attribute-name "=" attribute-value )
 * with names NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT (any case)
 * and xtext values, [UNAVAILABLE] for any of them and [TEMPUNAVAIL] for
 * NAME.
 *
 * Whether the peer may send XCLIENT at all (trusted networks) is the
 * session's call; this file only makes sure that what it would believe
 * is well-formed: an address that is an address, a port that is a port,
 * a host name that is one, and no control character in any decoded
 * value (they go into logs and the Received header). Never allocates.
 */
#include <string.h>
#include <sys/socket.h>

#include "proto/smtp_private.h"

static const struct smtp_reply r_name = { 501, "5.5.4",
	"Bad XCLIENT attribute name" };
static const struct smtp_reply r_value = { 501, "5.5.4",
	"Bad XCLIENT attribute value" };

static const struct {
	const char *name;
	enum smtp_xattr id;
} attrs[] = {
	{ "NAME", SMTP_XA_NAME },
	{ "ADDR", SMTP_XA_ADDR },
	{ "PORT", SMTP_XA_PORT },
	{ "PROTO", SMTP_XA_PROTO },
	{ "HELO", SMTP_XA_HELO },
	{ "LOGIN", SMTP_XA_LOGIN },
	{ "DESTADDR", SMTP_XA_DESTADDR },
	{ "DESTPORT", SMTP_XA_DESTPORT },
};

static int attribute(struct smtp_cmd *cmd, const char *w, size_t wl);
static bool value_ok(struct smtp_xclient *x, enum smtp_xattr id,
    struct smtp_str *v);
static bool addr_ok(struct smtp_str *v, int *family);
static bool port_ok(const struct smtp_str *v, uint16_t *port);

int
smtp_xclient_parse(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const char *s, size_t n)
{
	unsigned max = conf->max_params ? conf->max_params : 16, count = 0;
	size_t i = 0, wl;
	const char *sp;

	if (max > SMTP_PARAMS_MAX)
		max = SMTP_PARAMS_MAX;
	for (;;) {
		sp = memchr(s + i, ' ', n - i);
		wl = sp ? (size_t)(sp - (s + i)) : n - i;
		if (wl == 0) /* nothing, two spaces, one at the end */
			return smtp_cmd_fail(cmd, &smtp_r_syntax, s + i, n - i);
		if (++count > max)
			return smtp_cmd_fail(cmd, &smtp_r_too_many, s + i,
			    n - i);
		if (attribute(cmd, s + i, wl) == -1)
			return -1;
		i += wl;
		if (i == n)
			return 0;
		i++; /* the space */
	}
}

static int
attribute(struct smtp_cmd *cmd, const char *w, size_t wl)
{
	struct smtp_xclient *x = &cmd->xclient;
	const char *eq = memchr(w, '=', wl);
	size_t nlen = eq ? (size_t)(eq - w) : wl, vlen;
	struct smtp_str v;
	int id = -1;

	for (size_t k = 0; k < sizeof(attrs) / sizeof(attrs[0]); k++)
		if (smtp_cmd_ieq(w, nlen, attrs[k].name))
			id = (int)attrs[k].id;
	if (id == -1 || eq == NULL)
		return smtp_cmd_fail(cmd, &r_name, w, nlen);
	if (x->state[id] != SMTP_XV_ABSENT)
		return smtp_cmd_fail(cmd, &smtp_r_duplicate, w, nlen);
	vlen = wl - nlen - 1;
	if (vlen == 0)
		return smtp_cmd_fail(cmd, &r_value, w, wl);
	if (vlen > SMTP_XCLIENT_VALUE_MAX)
		return smtp_cmd_fail(cmd, &smtp_r_long, w, wl);
	if (smtp_cmd_xtext(cmd, eq + 1, vlen, &v) == -1)
		return -1;
	/* the special values are compared decoded, as Postfix does */
	if (smtp_cmd_ieq(v.p, v.len, "[UNAVAILABLE]")) {
		x->state[id] = SMTP_XV_UNAVAILABLE;
		return 0;
	}
	if (id == SMTP_XA_NAME && smtp_cmd_ieq(v.p, v.len, "[TEMPUNAVAIL]")) {
		x->state[id] = SMTP_XV_TEMPUNAVAIL;
		return 0;
	}
	if (!value_ok(x, (enum smtp_xattr)id, &v))
		return smtp_cmd_fail(cmd, &r_value, w, wl);
	x->state[id] = SMTP_XV_VALUE;
	x->val[id] = v;
	return 0;
}

static bool
value_ok(struct smtp_xclient *x, enum smtp_xattr id, struct smtp_str *v)
{
	enum smtp_addr_why why;
	bool u8 = false;

	switch (id) {
	case SMTP_XA_NAME:
		return smtp_addr_domain(v->p, v->len, false, &u8, &why) ==
		    v->len;
	case SMTP_XA_ADDR:
		return addr_ok(v, &x->family);
	case SMTP_XA_DESTADDR:
		return addr_ok(v, &x->destfamily);
	case SMTP_XA_PORT:
		return port_ok(v, &x->port);
	case SMTP_XA_DESTPORT:
		return port_ok(v, &x->destport);
	case SMTP_XA_PROTO:
		return smtp_cmd_ieq(v->p, v->len, "SMTP") ||
		    smtp_cmd_ieq(v->p, v->len, "ESMTP");
	case SMTP_XA_HELO:
		return smtp_cmd_printable(v->p, v->len, 0x21, false);
	case SMTP_XA_LOGIN:
		return smtp_cmd_printable(v->p, v->len, 0x21, true);
	case SMTP_XA_COUNT:
		break;
	}
	return false;
}

/* A dotted quad, or "IPV6:" and an IPv6 address (any case), as Postfix
 * writes them; v loses its "IPV6:". */
static bool
addr_ok(struct smtp_str *v, int *family)
{
	if (v->len > 5 && smtp_cmd_ieq(v->p, 5, "IPV6:")) {
		if (!smtp_addr_ipv6(v->p + 5, v->len - 5))
			return false;
		v->p += 5;
		v->len -= 5;
		*family = AF_INET6;
		return true;
	}
	if (!smtp_addr_ipv4(v->p, v->len))
		return false;
	*family = AF_INET;
	return true;
}

/* 1*5DIGIT, at most 65535 */
static bool
port_ok(const struct smtp_str *v, uint16_t *port)
{
	unsigned p = 0;

	if (v->len == 0 || v->len > 5)
		return false;
	for (size_t i = 0; i < v->len; i++) {
		if (v->p[i] < '0' || v->p[i] > '9')
			return false;
		p = p * 10 + (unsigned)(v->p[i] - '0');
	}
	if (p > 65535)
		return false;
	*port = (uint16_t)p;
	return true;
}
