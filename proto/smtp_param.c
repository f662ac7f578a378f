/*
 * smtp_param.c - the ESMTP parameters of MAIL and RCPT (RFC 5321 4.1.2
 * esmtp-param): SIZE= (RFC 1870), BODY= (RFC 6152, RFC 3030), SMTPUTF8
 * (RFC 6531), AUTH= (RFC 4954), RET= ENVID= NOTIFY= ORCPT= (RFC 3461).
 *
 * Each keyword is known with the verb it belongs to and the extension
 * that offers it; anything else, or a known one the session did not
 * offer, is 555 (RFC 5321 4.1.1.11), a duplicate or a bad value 501. The
 * xtext values are decoded into the command's decode area and judged
 * after decoding: no control character reaches a DSN or a header.
 * Never allocates; the length caps on written values bound the area.
 */
#include <string.h>

#include "proto/smtp_private.h"

#define DEFAULT_MAX_PARAMS 16
#define SIZE_DIGITS_MAX 20 /* RFC 1870 size-value */

static const struct smtp_reply r_size = { 501, "5.5.4", "Bad SIZE value" };
static const struct smtp_reply r_body = { 501, "5.5.4", "Bad BODY value" };
static const struct smtp_reply r_body_off = { 555, "5.5.4",
	"BODY type not supported" };
static const struct smtp_reply r_novalue = { 501, "5.5.4",
	"Parameter takes no value" };
static const struct smtp_reply r_value = { 501, "5.5.4",
	"Parameter needs a value" };
static const struct smtp_reply r_auth = { 501, "5.5.4", "Bad AUTH= address" };
static const struct smtp_reply r_ret = { 501, "5.5.4", "Bad RET value" };
static const struct smtp_reply r_envid = { 501, "5.5.4", "Bad ENVID value" };
static const struct smtp_reply r_notify = { 501, "5.5.4", "Bad NOTIFY value" };
static const struct smtp_reply r_orcpt = { 501, "5.5.4", "Bad ORCPT value" };

struct keyword;
typedef int param_fn(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen);

struct keyword {
	const char *name;
	unsigned bit;	 /* enum smtp_param */
	unsigned ext;	 /* any of these offered: enum smtp_ext */
	bool mail, rcpt; /* the verbs it belongs to */
	bool value;	 /* takes "=value" (else must not) */
	param_fn *fn;
};

static const struct keyword *find_keyword(const char *s, size_t n);
static param_fn p_size, p_body, p_none, p_auth, p_ret, p_envid, p_notify,
    p_orcpt;
static bool keyword_ok(const char *s, size_t n);
static bool value_ok(const char *s, size_t n);
static int one_param(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    bool rcpt, const char *w, size_t wl);

static const struct keyword keywords[] = {
	{ "SIZE", SMTP_P_SIZE, SMTP_EXT_SIZE, true, false, true, p_size },
	{ "BODY", SMTP_P_BODY, SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME, true,
	    false, true, p_body },
	{ "SMTPUTF8", SMTP_P_SMTPUTF8, SMTP_EXT_SMTPUTF8, true, false, false,
	    p_none },
	{ "AUTH", SMTP_P_AUTH, SMTP_EXT_AUTH, true, false, true, p_auth },
	{ "RET", SMTP_P_RET, SMTP_EXT_DSN, true, false, true, p_ret },
	{ "ENVID", SMTP_P_ENVID, SMTP_EXT_DSN, true, false, true, p_envid },
	{ "NOTIFY", SMTP_P_NOTIFY, SMTP_EXT_DSN, false, true, true, p_notify },
	{ "ORCPT", SMTP_P_ORCPT, SMTP_EXT_DSN, false, true, true, p_orcpt },
};

/*
 * s[0..n) follows the path: nothing, or SP esmtp-param *(SP esmtp-param)
 * with esmtp-param = esmtp-keyword ["=" esmtp-value]. Left to right, the
 * first fault is the answer.
 */
int
smtp_param_parse(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    bool rcpt, const char *s, size_t n)
{
	unsigned max = conf->max_params ? conf->max_params : DEFAULT_MAX_PARAMS;
	size_t i = 0, wl;
	const char *sp;

	if (max > SMTP_PARAMS_MAX)
		max = SMTP_PARAMS_MAX;
	/* counted before any is judged: one space before each (a line not
	 * single-spaced is refused anyway), so a line with thousands of
	 * parameters is turned away in one pass */
	for (size_t k = 0, count = 0; k < n; k++)
		if (s[k] == ' ' && ++count > max)
			return smtp_cmd_fail(cmd, &smtp_r_too_many, s + k,
			    n - k);
	while (i < n) {
		if (s[i] != ' ')
			return smtp_cmd_fail(cmd, &smtp_r_syntax, s + i, n - i);
		i++;
		sp = memchr(s + i, ' ', n - i);
		wl = sp ? (size_t)(sp - (s + i)) : n - i;
		if (wl == 0) /* two spaces, or one at the end */
			return smtp_cmd_fail(cmd, &smtp_r_syntax, s + i - 1, 1);
		cmd->params.count++;
		if (one_param(cmd, conf, rcpt, s + i, wl) == -1)
			return -1;
		i += wl;
	}
	return 0;
}

static int
one_param(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf, bool rcpt,
    const char *w, size_t wl)
{
	const char *eq = memchr(w, '=', wl);
	size_t klen = eq ? (size_t)(eq - w) : wl;
	const struct keyword *kw;

	if (!keyword_ok(w, klen) ||
	    (eq != NULL && !value_ok(eq + 1, wl - klen - 1)))
		return smtp_cmd_fail(cmd, &smtp_r_syntax, w, wl);
	kw = find_keyword(w, klen);
	if (kw == NULL || (kw->ext & conf->ext) == 0 ||
	    !(rcpt ? kw->rcpt : kw->mail))
		return smtp_cmd_fail(cmd, &smtp_r_unknown_param, w, klen);
	if (cmd->params.seen & kw->bit)
		return smtp_cmd_fail(cmd, &smtp_r_duplicate, w, klen);
	if (kw->value && eq == NULL)
		return smtp_cmd_fail(cmd, &r_value, w, wl);
	if (!kw->value && eq != NULL)
		return smtp_cmd_fail(cmd, &r_novalue, w, wl);
	cmd->params.seen |= kw->bit;
	if (eq == NULL)
		return kw->fn(cmd, conf, kw, NULL, 0);
	return kw->fn(cmd, conf, kw, eq + 1, wl - klen - 1);
}

static const struct keyword *
find_keyword(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (smtp_cmd_ieq(s, n, keywords[i].name))
			return &keywords[i];
	return NULL;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool
keyword_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c == '-' && i > 0))
			continue;
		return false;
	}
	return n > 0;
}

/* esmtp-value = 1*(%d33-60 / %d62-126): no "=", no space, 7-bit */
static bool
value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return n > 0;
}

/* SIZE=1*20DIGIT; a value past 64 bits is UINT64_MAX: over any limit. */
static int
p_size(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen)
{
	uint64_t size = 0;

	if (vlen > SIZE_DIGITS_MAX)
		return smtp_cmd_fail(cmd, &r_size, v, vlen);
	for (size_t i = 0; i < vlen; i++) {
		unsigned d = (unsigned)(v[i] - '0');

		if (v[i] < '0' || v[i] > '9')
			return smtp_cmd_fail(cmd, &r_size, v, vlen);
		size = size > (UINT64_MAX - d) / 10 ? UINT64_MAX :
						      size * 10 + d;
	}
	cmd->params.size = size;
	return 0;
}

/* BODY=7BIT / 8BITMIME / BINARYMIME: a type whose extension is not
 * offered is 555, an unknown one 501. */
static int
p_body(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen)
{
	enum smtp_body body;
	unsigned need = 0;

	if (smtp_cmd_ieq(v, vlen, "7BIT")) {
		body = SMTP_BODY_7BIT;
	} else if (smtp_cmd_ieq(v, vlen, "8BITMIME")) {
		body = SMTP_BODY_8BITMIME;
		need = SMTP_EXT_8BITMIME;
	} else if (smtp_cmd_ieq(v, vlen, "BINARYMIME")) {
		body = SMTP_BODY_BINARYMIME;
		need = SMTP_EXT_BINARYMIME;
	} else {
		return smtp_cmd_fail(cmd, &r_body, v, vlen);
	}
	if ((conf->ext & need) != need)
		return smtp_cmd_fail(cmd, &r_body_off, v, vlen);
	cmd->params.body = body;
	return 0;
}

/* SMTPUTF8 (and any other flag parameter): nothing to read */
static int
p_none(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen)
{
	return 0;
}

/* AUTH=xtext, decoding to a Mailbox or "<>" (RFC 4954 5). */
static int
p_auth(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen)
{
	struct smtp_str *a = &cmd->params.auth;
	enum smtp_addr_why why;
	struct smtp_mbox m;

	if (vlen > SMTP_XTEXT_PARAM_MAX)
		return smtp_cmd_fail(cmd, &smtp_r_long, v, vlen);
	if (smtp_cmd_xtext(cmd, v, vlen, a) == -1)
		return -1;
	if (a->len == 2 && a->p[0] == '<' && a->p[1] == '>') {
		cmd->params.auth_null = true;
		return 0;
	}
	if (smtp_addr_mailbox(a->p, a->len, conf->ext & SMTP_EXT_SMTPUTF8, &m,
		&why) != a->len)
		return smtp_cmd_fail(cmd, &r_auth, v, vlen);
	return 0;
}

static int
p_ret(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen)
{
	if (smtp_cmd_ieq(v, vlen, "FULL"))
		cmd->params.ret = SMTP_RET_FULL;
	else if (smtp_cmd_ieq(v, vlen, "HDRS"))
		cmd->params.ret = SMTP_RET_HDRS;
	else
		return smtp_cmd_fail(cmd, &r_ret, v, vlen);
	return 0;
}

/* ENVID=xtext of at most 100 characters, decoding to printable US-ASCII
 * without spaces (RFC 3461 4.4): it goes into a DSN as it is. */
static int
p_envid(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen)
{
	struct smtp_str *e = &cmd->params.envid;

	if (vlen > SMTP_ENVID_MAX)
		return smtp_cmd_fail(cmd, &r_envid, v, vlen);
	if (smtp_cmd_xtext(cmd, v, vlen, e) == -1)
		return -1;
	if (e->len == 0 || !smtp_cmd_printable(e->p, e->len, 0x21, false))
		return smtp_cmd_fail(cmd, &r_envid, v, vlen);
	return 0;
}

/* NOTIFY=NEVER, or a list of SUCCESS, FAILURE, DELAY, each at most once
 * (RFC 3461 4.1). */
static int
p_notify(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen)
{
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {
		{ "NEVER", SMTP_NOTIFY_NEVER },
		{ "SUCCESS", SMTP_NOTIFY_SUCCESS },
		{ "FAILURE", SMTP_NOTIFY_FAILURE },
		{ "DELAY", SMTP_NOTIFY_DELAY },
	};
	unsigned got = 0, bit;
	size_t i = 0, wl;
	const char *comma;

	for (;;) {
		comma = memchr(v + i, ',', vlen - i);
		wl = comma ? (size_t)(comma - (v + i)) : vlen - i;
		bit = 0;
		for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (smtp_cmd_ieq(v + i, wl, words[k].name))
				bit = words[k].bit;
		if (bit == 0 || (got & bit))
			return smtp_cmd_fail(cmd, &r_notify, v, vlen);
		got |= bit;
		if (comma == NULL)
			break;
		i += wl + 1;
	}
	if ((got & SMTP_NOTIFY_NEVER) && got != SMTP_NOTIFY_NEVER)
		return smtp_cmd_fail(cmd, &r_notify, v, vlen);
	cmd->params.notify = got;
	return 0;
}

/* ORCPT=addr-type ";" xtext (RFC 3461 4.2), at most 500 characters; the
 * address decodes to printable US-ASCII (space allowed), not empty. */
static int
p_orcpt(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const struct keyword *kw, const char *v, size_t vlen)
{
	const char *semi = memchr(v, ';', vlen);
	struct smtp_str *o = &cmd->params.orcpt;
	size_t tlen;

	if (vlen > SMTP_XTEXT_PARAM_MAX)
		return smtp_cmd_fail(cmd, &smtp_r_long, v, vlen);
	if (semi == NULL)
		return smtp_cmd_fail(cmd, &r_orcpt, v, vlen);
	tlen = (size_t)(semi - v);
	if (tlen == 0)
		return smtp_cmd_fail(cmd, &r_orcpt, v, vlen);
	for (size_t i = 0; i < tlen; i++)
		if (!smtp_addr_atext((unsigned char)v[i]))
			return smtp_cmd_fail(cmd, &r_orcpt, v, vlen);
	cmd->params.orcpt_type = (struct smtp_str){ v, tlen };
	if (smtp_cmd_xtext(cmd, semi + 1, vlen - tlen - 1, o) == -1)
		return -1;
	if (o->len == 0 || !smtp_cmd_printable(o->p, o->len, 0x20, false))
		return smtp_cmd_fail(cmd, &r_orcpt, v, vlen);
	return 0;
}
