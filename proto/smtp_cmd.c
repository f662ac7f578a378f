/*
 * smtp_cmd.c - the SMTP/ESMTP/LMTP command line parser (proto/smtp_cmd.h):
 * the verb, the arguments of the verbs that have simple ones (EHLO, HELO,
 * LHLO, AUTH, BDAT, VRFY, EXPN, HELP, NOOP, ETRN, and none for the rest),
 * and the dispatch of MAIL and RCPT (smtp_addr.c, smtp_param.c) and
 * XCLIENT (smtp_xclient.c). The replies every file shares live here.
 *
 * Relies on the session's line reader for the line limit and the CRLF.
 * Never allocates, never reads at or past len, never writes to the line,
 * and never puts a peer's byte into a reply text.
 */
#include <stddef.h>
#include <string.h>

#include "proto/sasl_syntax.h"
#include "proto/smtp_private.h"
#include "proto/smtp_xtext.h"

#define VERB_MAX 8 /* STARTTLS */

/* The replies, shared with the other smtp_*.c files. */
static const struct smtp_reply r_unknown = { 500, "5.5.2",
	"Command unrecognized" };
static const struct smtp_reply r_char = { 500, "5.5.2",
	"Invalid character in command" };
static const struct smtp_reply r_no_args = { 501, "5.5.4",
	"No parameters allowed" };
static const struct smtp_reply r_domain = { 501, "5.5.4",
	"Syntax: domain name or address literal required" };
static const struct smtp_reply r_mail = { 501, "5.5.4",
	"Syntax: MAIL FROM:<address>" };
static const struct smtp_reply r_rcpt = { 501, "5.5.4",
	"Syntax: RCPT TO:<address>" };
static const struct smtp_reply r_sender = { 501, "5.1.7",
	"Bad sender address syntax" };
static const struct smtp_reply r_sender_long = { 501, "5.1.7",
	"Sender address too long" };
static const struct smtp_reply r_rcpt_bad = { 501, "5.1.3",
	"Bad recipient address syntax" };
static const struct smtp_reply r_rcpt_long = { 501, "5.1.3",
	"Recipient address too long" };
static const struct smtp_reply r_utf8 = { 553, "5.6.7",
	"Non-ASCII address needs SMTPUTF8" };
static const struct smtp_reply r_mech = { 501, "5.5.4",
	"Syntax: AUTH mechanism [initial-response]" };
static const struct smtp_reply r_bdat = { 501, "5.5.4",
	"Syntax: BDAT chunk-size [LAST]" };
static const struct smtp_reply r_arg = { 501, "5.5.4", "Argument required" };
const struct smtp_reply smtp_r_syntax = { 501, "5.5.4",
	"Syntax error in parameters" };
const struct smtp_reply smtp_r_too_many = { 501, "5.5.4",
	"Too many parameters" };
const struct smtp_reply smtp_r_duplicate = { 501, "5.5.4",
	"Duplicate parameter" };
const struct smtp_reply smtp_r_xtext = { 501, "5.5.4",
	"Invalid xtext in parameter" };
const struct smtp_reply smtp_r_long = { 501, "5.5.4",
	"Parameter value too long" };
const struct smtp_reply smtp_r_unknown_param = { 555, "5.5.4",
	"Unsupported parameter" };

/* How a verb's arguments are read. */
enum args {
	A_NONE,	    /* nothing may follow */
	A_DOMAIN,   /* EHLO, HELO, LHLO */
	A_TEXT,	    /* VRFY, EXPN, ETRN: required */
	A_OPT_TEXT, /* HELP, NOOP: optional */
	A_MAIL,
	A_RCPT,
	A_AUTH,
	A_BDAT,
	A_XCLIENT,
};

static const struct verb {
	const char *name;
	enum smtp_verb verb;
	enum args args;
} verbs[] = {
	{ "EHLO", SMTP_EHLO, A_DOMAIN },
	{ "HELO", SMTP_HELO, A_DOMAIN },
	{ "LHLO", SMTP_LHLO, A_DOMAIN },
	{ "MAIL", SMTP_MAIL, A_MAIL },
	{ "RCPT", SMTP_RCPT, A_RCPT },
	{ "DATA", SMTP_DATA, A_NONE },
	{ "BDAT", SMTP_BDAT, A_BDAT },
	{ "RSET", SMTP_RSET, A_NONE },
	{ "NOOP", SMTP_NOOP, A_OPT_TEXT },
	{ "QUIT", SMTP_QUIT, A_NONE },
	{ "VRFY", SMTP_VRFY, A_TEXT },
	{ "EXPN", SMTP_EXPN, A_TEXT },
	{ "HELP", SMTP_HELP, A_OPT_TEXT },
	{ "AUTH", SMTP_AUTH, A_AUTH },
	{ "STARTTLS", SMTP_STARTTLS, A_NONE },
	{ "XCLIENT", SMTP_XCLIENT, A_XCLIENT },
	{ "ETRN", SMTP_ETRN, A_TEXT },
	{ "TURN", SMTP_TURN, A_NONE },
};

static const struct verb *find_verb(const char *s, size_t n);
static bool has_control(const char *s, size_t n, size_t *at_r);
static int parse_args(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    unsigned flags, enum args args, const char *s, size_t n);
static int domain_arg(struct smtp_cmd *cmd, const char *s, size_t n);
static int text_arg(struct smtp_cmd *cmd, const char *s, size_t n,
    bool required);
static int mail_rcpt(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    unsigned flags, bool rcpt, const char *s, size_t n);
static int auth_arg(struct smtp_cmd *cmd, const char *s, size_t n);
static int bdat_arg(struct smtp_cmd *cmd, const char *s, size_t n);

enum smtp_cmd_rc
smtp_cmd_parse(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    unsigned flags, const char *line, size_t len)
{
	const struct verb *v;
	size_t wlen = 0, at;

	/* the decode area is left as it is: only dec_used says what is in
	 * it, and clearing 2 KiB per command would be waste */
	memset(cmd, 0, offsetof(struct smtp_cmd, dec));
	cmd->dec_used = 0;
	/* the verb ends at a space, or at a control character so that
	 * "DATA\0" is still known as DATA when it is refused */
	while (wlen < len && (unsigned char)line[wlen] > 0x20 &&
	    line[wlen] != 0x7f)
		wlen++;
	if ((v = find_verb(line, wlen)) != NULL)
		cmd->verb = v->verb;
	if (has_control(line, len, &at)) {
		smtp_cmd_fail(cmd, &r_char, line + at, 1);
		return SMTP_CMD_INVALID;
	}
	if (v == NULL) {
		smtp_cmd_fail(cmd, &r_unknown, line, wlen);
		return SMTP_CMD_INVALID;
	}
	/* the arguments: what follows the verb, its space included */
	if (parse_args(cmd, conf, flags, v->args, line + wlen, len - wlen) ==
	    -1)
		return SMTP_CMD_INVALID;
	return SMTP_CMD_OK;
}

const char *
smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "";
}

static const struct verb *
find_verb(const char *s, size_t n)
{
	if (n == 0 || n > VERB_MAX)
		return NULL;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (smtp_cmd_ieq(s, n, verbs[i].name))
			return &verbs[i];
	return NULL;
}

/* A control character (C0 or DEL) anywhere: nothing in SMTP's command
 * grammar has one, and a CR or NUL inside a line is a smuggling try. */
static bool
has_control(const char *s, size_t n, size_t *at_r)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			*at_r = i;
			return true;
		}
	}
	return false;
}

/* s[0..n) follows the verb: empty, or a space and the arguments. A space
 * with nothing after it is an empty argument, refused below. */
static int
parse_args(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    unsigned flags, enum args args, const char *s, size_t n)
{
	bool sp = n > 0;

	if (sp) {
		s++;
		n--;
	}
	switch (args) {
	case A_NONE:
		if (sp)
			return smtp_cmd_fail(cmd, &r_no_args, s, n);
		return 0;
	case A_DOMAIN:
		return domain_arg(cmd, s, n);
	case A_TEXT:
		return text_arg(cmd, s, n, true);
	case A_OPT_TEXT:
		if (!sp)
			return 0;
		return text_arg(cmd, s, n, false);
	case A_MAIL:
		return mail_rcpt(cmd, conf, flags, false, s, n);
	case A_RCPT:
		return mail_rcpt(cmd, conf, flags, true, s, n);
	case A_AUTH:
		return auth_arg(cmd, s, n);
	case A_BDAT:
		return bdat_arg(cmd, s, n);
	case A_XCLIENT:
		if (!sp)
			return smtp_cmd_fail(cmd, &r_arg, s, n);
		return smtp_xclient_parse(cmd, conf, s, n);
	}
	return smtp_cmd_fail(cmd, &smtp_r_syntax, s, n);
}

/* EHLO, HELO, LHLO: Domain or address-literal (RFC 5321 4.1.1.1). HELO
 * takes a literal too, as clients send one; 7-bit only, as SMTPUTF8 is
 * not negotiated yet. */
static int
domain_arg(struct smtp_cmd *cmd, const char *s, size_t n)
{
	enum smtp_addr_why why;
	bool u8 = false;
	size_t k;

	if (n > 0 && s[0] == '[') {
		k = smtp_addr_literal(s, n);
		cmd->literal = true;
	} else {
		k = smtp_addr_domain(s, n, false, &u8, &why);
	}
	if (k == 0 || k != n)
		return smtp_cmd_fail(cmd, &r_domain, s, n);
	cmd->arg = (struct smtp_str){ s, n };
	return 0;
}

/* VRFY, EXPN, ETRN (required), HELP, NOOP (optional, but not empty after
 * a space): printable ASCII, no space first or last. The session does not
 * act on it (VRFY answers 252 whatever it is), so nothing finer. */
static int
text_arg(struct smtp_cmd *cmd, const char *s, size_t n, bool required)
{
	if (n == 0)
		return smtp_cmd_fail(cmd, required ? &r_arg : &smtp_r_syntax, s,
		    n);
	if (s[0] == ' ' || s[n - 1] == ' ' ||
	    !smtp_cmd_printable(s, n, 0x20, false))
		return smtp_cmd_fail(cmd, &smtp_r_syntax, s, n);
	cmd->arg = (struct smtp_str){ s, n };
	return 0;
}

/*
 * "MAIL FROM:" Reverse-path [SP Mail-parameters] and "RCPT TO:"
 * Forward-path [SP Rcpt-parameters] (s is after "MAIL "). UTF-8 in the
 * path is read when SMTPUTF8 is offered, and then needs the SMTPUTF8
 * parameter on this MAIL (or on the transaction's MAIL, for RCPT).
 */
static int
mail_rcpt(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    unsigned flags, bool rcpt, const char *s, size_t n)
{
	const char *prefix = rcpt ? "TO:" : "FROM:";
	size_t plen = strlen(prefix), i, end;
	const struct smtp_reply *bad = rcpt ? &r_rcpt_bad : &r_sender;
	const struct smtp_reply *lng = rcpt ? &r_rcpt_long : &r_sender_long;
	enum smtp_addr_why why;
	unsigned opt;
	bool utf8_ok;

	if (n < plen || !smtp_cmd_ieq(s, plen, prefix))
		return smtp_cmd_fail(cmd, rcpt ? &r_rcpt : &r_mail, s, n);
	i = plen;
	if (conf->space_after_colon && i < n && s[i] == ' ')
		i++;
	opt = rcpt ? SMTP_PATH_POSTMASTER : SMTP_PATH_NULL_OK;
	if (conf->ext & SMTP_EXT_SMTPUTF8)
		opt |= SMTP_PATH_UTF8;
	if (smtp_addr_path(cmd, s + i, n - i, opt, &end, &why) == -1)
		return smtp_cmd_fail(cmd, why == SMTP_AW_LONG ? lng : bad,
		    s + i, n - i);
	if (smtp_param_parse(cmd, conf, rcpt, s + i + end, n - i - end) == -1)
		return -1;
	utf8_ok = rcpt ? (flags & SMTP_CMD_TXN_UTF8) != 0 :
			 (cmd->params.seen & SMTP_P_SMTPUTF8) != 0;
	if (cmd->path.utf8 && !utf8_ok)
		return smtp_cmd_fail(cmd, &r_utf8, s + i, end);
	return 0;
}

/* "AUTH" SP sasl-mech [SP initial-response] (RFC 4954 4); the SASL layer
 * decodes and judges the base64. */
static int
auth_arg(struct smtp_cmd *cmd, const char *s, size_t n)
{
	const char *sp = memchr(s, ' ', n);
	size_t mlen = sp ? (size_t)(sp - s) : n;
	bool empty;

	if (!sasl_syntax_mech(s, mlen, cmd->mech))
		return smtp_cmd_fail(cmd, &r_mech, s, mlen);
	if (sp == NULL)
		return 0;
	if (!sasl_syntax_response(sp + 1, n - mlen - 1, &empty))
		return smtp_cmd_fail(cmd, &r_mech, sp + 1, n - mlen - 1);
	cmd->ir = (struct smtp_str){ sp + 1, empty ? 0 : n - mlen - 1 };
	return 0;
}

/* "BDAT" SP chunk-size [SP "LAST"] (RFC 3030 2): chunk-size = 1*DIGIT,
 * refused when it does not fit in 64 bits. */
static int
bdat_arg(struct smtp_cmd *cmd, const char *s, size_t n)
{
	const char *sp = memchr(s, ' ', n);
	size_t dlen = sp ? (size_t)(sp - s) : n;
	uint64_t v = 0;

	if (dlen == 0)
		return smtp_cmd_fail(cmd, &r_bdat, s, n);
	for (size_t i = 0; i < dlen; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return smtp_cmd_fail(cmd, &r_bdat, s, n);
		v = v * 10 + d;
	}
	cmd->chunk = v;
	if (sp == NULL)
		return 0;
	if (!smtp_cmd_ieq(sp + 1, n - dlen - 1, "LAST"))
		return smtp_cmd_fail(cmd, &r_bdat, s, n);
	cmd->last = true;
	return 0;
}

int
smtp_cmd_fail(struct smtp_cmd *cmd, const struct smtp_reply *r, const char *s,
    size_t n)
{
	cmd->err = r;
	cmd->bad = (struct smtp_str){ s, n };
	return -1;
}

/*
 * The decode area holds what one line needs decoded: at most a local part
 * (64) and the AUTH= (500) and ENVID= (100) values of a MAIL, a local
 * part and an ORCPT= (500) for RCPT, eight XCLIENT values of 255. A value
 * never decodes longer than it is written, so the caps on written lengths
 * bound it; NULL here means a cap is missing.
 */
char *
smtp_cmd_dec(struct smtp_cmd *cmd, size_t n)
{
	char *p;

	if (n > sizeof(cmd->dec) - cmd->dec_used)
		return NULL;
	p = cmd->dec + cmd->dec_used;
	cmd->dec_used += n;
	return p;
}

bool
smtp_cmd_ieq(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n && word[i] != '\0'; i++) {
		unsigned char a = (unsigned char)s[i];
		unsigned char b = (unsigned char)word[i];

		if (a >= 'a' && a <= 'z')
			a = (unsigned char)(a - 'a' + 'A');
		if (b >= 'a' && b <= 'z')
			b = (unsigned char)(b - 'a' + 'A');
		if (a != b)
			return false;
	}
	return i == n && word[i] == '\0';
}

int
smtp_cmd_xtext(struct smtp_cmd *cmd, const char *s, size_t n,
    struct smtp_str *out)
{
	char *d = smtp_cmd_dec(cmd, n);
	size_t len;

	if (d == NULL)
		return smtp_cmd_fail(cmd, &smtp_r_long, s, n);
	if (smtp_xtext_decode(s, n, d, n, &len) == -1) {
		cmd->dec_used -= n;
		return smtp_cmd_fail(cmd, &smtp_r_xtext, s, n);
	}
	cmd->dec_used -= n - len; /* give back what decoding saved */
	*out = (struct smtp_str){ d, len };
	return 0;
}

bool
smtp_cmd_printable(const char *s, size_t n, unsigned char lo, bool utf8)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k;

	for (size_t i = 0; i < n; i++) {
		if (u[i] >= lo && u[i] <= 0x7e)
			continue;
		if (!utf8 || (k = smtp_addr_utf8(u + i, n - i)) == 0)
			return false;
		i += k - 1;
	}
	return true;
}
