/*
 * upstream_resp.c - the back end's answers during ringgate's back-end
 * login, read line by line with hard limits (see upstream_resp.h).
 *
 * Bytes are copied into one fixed line buffer until LF; its capacity is
 * the line limit, so "no LF yet and the buffer is full" is "line too
 * long" and nothing grows. Each whole line is then classified by the
 * protocol's rules; the reply ends on the line that ends it (IMAP's
 * greeting or tagged answer or a continuation, POP3's status or ".",
 * SMTP's "ddd " line). Never allocates, never reads past n.
 */
#include "proto/upstream_resp.h"

#include <string.h>
#include <strings.h>

/* ---- helpers ---------------------------------------------------------- */

static enum ur_rc fail(struct upstream_resp *r, enum ur_err e, const char *why);
static void clear_line(struct upstream_resp *r);
static enum ur_rc take_line(struct upstream_resp *r);
static enum ur_rc imap_line(struct upstream_resp *r, const char *s, size_t n);
static enum ur_rc pop3_line(struct upstream_resp *r, const char *s, size_t n);
static enum ur_rc smtp_line(struct upstream_resp *r, const char *s, size_t n);
static int imap_cond(struct upstream_resp *r, const char *s, size_t n);
static void resp_code(struct upstream_resp *r, const char *s, size_t n);
static bool word_is(const char *s, size_t n, const char *w);
static bool ends_in_literal(const char *s, size_t n);

static const char *const err_names[] = {
	[UR_E_NONE] = "none",
	[UR_E_SYNTAX] = "syntax",
	[UR_E_LINE] = "line_too_long",
	[UR_E_LINES] = "too_many_lines",
	[UR_E_BYTES] = "reply_too_long",
	[UR_E_NUL] = "nul",
	[UR_E_LITERAL] = "literal",
};

const char *
upstream_resp_err_name(enum ur_err e)
{
	if ((unsigned)e >= sizeof(err_names) / sizeof(err_names[0]))
		return "?";
	return err_names[e];
}

void
upstream_resp_init(struct upstream_resp *r, enum ur_proto proto)
{
	memset(r, 0, sizeof(*r) - sizeof(r->buf));
	r->proto = proto;
	r->expect = UR_ONE;
}

void
upstream_resp_begin(struct upstream_resp *r, enum ur_expect expect,
    const char *tag)
{
	size_t n = tag != NULL ? strlen(tag) : 0;

	if (n > UR_TAG_MAX)
		n = UR_TAG_MAX;
	memcpy(r->want_tag, tag != NULL ? tag : "", n);
	r->want_tag[n] = '\0';
	r->expect = expect;
	r->done = true; /* the next feed starts a new reply */
}

static enum ur_rc
fail(struct upstream_resp *r, enum ur_err e, const char *why)
{
	r->failed = true;
	r->err = e;
	r->error = why;
	return UR_INVALID;
}

static void
clear_line(struct upstream_resp *r)
{
	r->kind = UR_K_NONE;
	r->status = UR_S_NONE;
	r->line = (struct ur_slice){ NULL, 0 };
	r->tag = r->line;
	r->code = r->line;
	r->text = r->line;
}

enum ur_rc
upstream_resp_feed(struct upstream_resp *r, const char *p, size_t n,
    size_t *used_r)
{
	size_t used = 0;

	*used_r = 0;
	if (r->failed)
		return UR_INVALID;
	if (r->done) {
		r->done = false;
		r->in_body = false;
		r->lines = 0;
		r->bytes = 0;
		r->smtp_code = 0;
	}
	clear_line(r);
	while (used < n) {
		const char *lf = memchr(p + used, '\n', n - used);
		size_t chunk = lf != NULL ? (size_t)(lf - (p + used)) + 1 :
					    n - used;

		size_t line_room = UR_LINE_MAX - r->len;
		size_t reply_room = UR_BYTES_MAX - r->bytes;
		size_t room = line_room < reply_room ? line_room : reply_room;

		/* whichever comes first in the bytes, so any split of the
		 * input fails the same way */
		if (memchr(p + used, '\0', chunk < room ? chunk : room) != NULL)
			return fail(r, UR_E_NUL, "NUL byte");
		if (chunk > line_room && line_room <= reply_room)
			return fail(r, UR_E_LINE, "line too long");
		if (chunk > reply_room)
			return fail(r, UR_E_BYTES, "reply too long");
		memcpy(r->buf + r->len, p + used, chunk);
		r->len += chunk;
		r->bytes += chunk;
		used += chunk;
		if (lf != NULL) {
			enum ur_rc rc;

			*used_r = used;
			rc = take_line(r);
			if (rc == UR_DONE)
				r->done = true;
			return rc;
		}
	}
	*used_r = used;
	return UR_MORE;
}

/* buf[0..len) ends in LF: strip the line ending and classify it. */
static enum ur_rc
take_line(struct upstream_resp *r)
{
	size_t n = r->len - 1;

	r->len = 0;
	if (n > 0 && r->buf[n - 1] == '\r')
		n--;
	if (++r->lines > UR_LINES_MAX)
		return fail(r, UR_E_LINES, "too many lines");
	r->line = (struct ur_slice){ r->buf, n };
	switch (r->proto) {
	case UR_IMAP:
		return imap_line(r, r->buf, n);
	case UR_POP3:
		return pop3_line(r, r->buf, n);
	case UR_SMTP:
		return smtp_line(r, r->buf, n);
	}
	return fail(r, UR_E_SYNTAX, "bad protocol");
}

/* ---- IMAP --------------------------------------------------------------- */

/* A tag is an IMAP atom without '+' (RFC 9051 "tag"). */
static bool
tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]+", c) == NULL;
}

static enum ur_rc
imap_line(struct upstream_resp *r, const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return fail(r, UR_E_SYNTAX, "empty line");
	if (ends_in_literal(s, n))
		return fail(r, UR_E_LITERAL, "literal in a response");
	if (s[0] == '+') {
		if (n > 1 && s[1] != ' ')
			return fail(r, UR_E_SYNTAX, "bad continuation");
		r->kind = UR_K_CONT;
		r->text = (struct ur_slice){ s + (n > 1 ? 2 : 1),
			n > 1 ? n - 2 : 0 };
		if (r->expect != UR_TAGGED)
			return fail(r, UR_E_SYNTAX, "unexpected continuation");
		return UR_DONE;
	}
	if (s[0] == '*') {
		if (n < 3 || s[1] != ' ')
			return fail(r, UR_E_SYNTAX, "bad untagged line");
		r->kind = UR_K_UNTAGGED;
		if (imap_cond(r, s + 2, n - 2) == -1)
			return fail(r, UR_E_SYNTAX, "bad response code");
		if (r->expect == UR_TAGGED)
			return UR_LINE;
		if (r->status != UR_S_OK && r->status != UR_S_PREAUTH &&
		    r->status != UR_S_BYE)
			return fail(r, UR_E_SYNTAX, "not a greeting");
		return UR_DONE;
	}
	for (i = 0; i < n && s[i] != ' '; i++)
		if (!tag_char((unsigned char)s[i]))
			return fail(r, UR_E_SYNTAX, "bad tag");
	if (i == n)
		return fail(r, UR_E_SYNTAX, "tag without a status");
	r->kind = UR_K_TAGGED;
	r->tag = (struct ur_slice){ s, i };
	if (r->expect != UR_TAGGED)
		return fail(r, UR_E_SYNTAX, "unexpected tagged line");
	if (i != strlen(r->want_tag) || memcmp(s, r->want_tag, i) != 0)
		return fail(r, UR_E_SYNTAX, "unexpected tag");
	if (imap_cond(r, s + i + 1, n - i - 1) == -1)
		return fail(r, UR_E_SYNTAX, "bad response code");
	if (r->status != UR_S_OK && r->status != UR_S_NO &&
	    r->status != UR_S_BAD)
		return fail(r, UR_E_SYNTAX, "bad tagged status");
	return UR_DONE;
}

/* s[0..n) after "* " or "tag ": a status word with its optional code and
 * text, or (untagged only) data kept whole in text. -1: a code without
 * its ']'. */
static int
imap_cond(struct upstream_resp *r, const char *s, size_t n)
{
	static const struct {
		const char *w;
		enum ur_status st;
	} words[] = {
		{ "OK", UR_S_OK },
		{ "NO", UR_S_NO },
		{ "BAD", UR_S_BAD },
		{ "PREAUTH", UR_S_PREAUTH },
		{ "BYE", UR_S_BYE },
	};
	size_t w = 0, k;

	while (w < n && s[w] != ' ')
		w++;
	for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
		if (word_is(s, w, words[k].w))
			break;
	if (k == sizeof(words) / sizeof(words[0])) {
		r->text = (struct ur_slice){ s, n };
		return 0;
	}
	r->status = words[k].st;
	if (w < n)
		w++;
	resp_code(r, s + w, n - w);
	return r->code.p == NULL && w < n && s[w] == '[' ? -1 : 0;
}

/* s[0..n) is what follows a status: "[code] text" or "text". Sets code
 * and text; an unclosed '[' leaves code NULL (IMAP: an error; POP3: the
 * bracket is plain text). */
static void
resp_code(struct upstream_resp *r, const char *s, size_t n)
{
	const char *close;
	size_t off;

	r->text = (struct ur_slice){ s, n };
	if (n == 0 || s[0] != '[')
		return;
	close = memchr(s, ']', n);
	if (close == NULL)
		return;
	r->code = (struct ur_slice){ s + 1, (size_t)(close - s) - 1 };
	off = (size_t)(close - s) + 1;
	if (off < n && s[off] == ' ')
		off++;
	r->text = (struct ur_slice){ s + off, n - off };
}

/* "{123}" or "{123+}" at the end of a line announces a literal. */
static bool
ends_in_literal(const char *s, size_t n)
{
	size_t i;

	if (n < 3 || s[n - 1] != '}')
		return false;
	i = n - 1;
	if (s[i - 1] == '+')
		i--;
	if (i == 0 || s[i - 1] < '0' || s[i - 1] > '9')
		return false;
	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	return i > 0 && s[i - 1] == '{';
}

/* ---- POP3 --------------------------------------------------------------- */

static enum ur_rc
pop3_line(struct upstream_resp *r, const char *s, size_t n)
{
	if (r->in_body) {
		if (n == 1 && s[0] == '.') {
			r->kind = UR_K_END;
			return UR_DONE;
		}
		r->kind = UR_K_BODY;
		r->text = n > 0 && s[0] == '.' ?
		    (struct ur_slice){ s + 1, n - 1 } :
		    (struct ur_slice){ s, n };
		return UR_LINE;
	}
	if (n >= 3 && memcmp(s, "+OK", 3) == 0 && (n == 3 || s[3] == ' ')) {
		r->status = UR_S_OK;
		s += 3;
		n -= 3;
	} else if (n >= 4 && memcmp(s, "-ERR", 4) == 0 &&
	    (n == 4 || s[4] == ' ')) {
		r->status = UR_S_NO;
		s += 4;
		n -= 4;
	} else if (s[0] == '+' && (n == 1 || s[1] == ' ')) {
		r->kind = UR_K_CONT;
		r->text = (struct ur_slice){ s + (n > 1 ? 2 : 1),
			n > 1 ? n - 2 : 0 };
		if (r->expect == UR_MULTI)
			return fail(r, UR_E_SYNTAX, "unexpected challenge");
		return UR_DONE;
	} else {
		return fail(r, UR_E_SYNTAX, "not +OK or -ERR");
	}
	r->kind = UR_K_STATUS;
	if (n > 0) {
		s++;
		n--;
	}
	resp_code(r, s, n);
	if (r->expect == UR_MULTI && r->status == UR_S_OK) {
		r->in_body = true;
		return UR_LINE;
	}
	return UR_DONE;
}

/* ---- SMTP --------------------------------------------------------------- */

static enum ur_rc
smtp_line(struct upstream_resp *r, const char *s, size_t n)
{
	unsigned code;

	if (n < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || (n > 3 && s[3] != ' ' && s[3] != '-'))
		return fail(r, UR_E_SYNTAX, "not an SMTP reply line");
	code = (unsigned)(s[0] - '0') * 100 + (unsigned)(s[1] - '0') * 10 +
	    (unsigned)(s[2] - '0');
	if (r->lines > 1 && code != r->smtp_code)
		return fail(r, UR_E_SYNTAX, "reply code changed mid-reply");
	r->kind = UR_K_SMTP;
	r->smtp_code = code;
	r->text = (struct ur_slice){ s + (n > 3 ? 4 : 3), n > 3 ? n - 4 : 0 };
	return n > 3 && s[3] == '-' ? UR_LINE : UR_DONE;
}

/* ---- shared --------------------------------------------------------------- */

static bool
word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

bool
upstream_resp_has_atom(const char *list, size_t len, const char *cap)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i;

		while (j < len && list[j] != ' ')
			j++;
		if (word_is(list + i, j - i, cap))
			return true;
		i = j + 1;
	}
	return false;
}
