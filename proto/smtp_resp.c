/*
 * smtp_resp.c - the SMTP reply reader (proto/smtp_resp.h): lines are
 * gathered in the reader's own bounded buffer, checked (three digits, a
 * '-' or ' ' or nothing after them, one code for the whole reply) and
 * folded into a short printable text; EHLO keywords are noted on the way.
 * Pure: no I/O, no allocation.
 */
#include <string.h>
#include <strings.h>

#include "proto/smtp_resp.h"

static int take_line(struct smtp_resp *r, bool *last_r);
static void add_text(struct smtp_resp *r, const char *p, size_t n);
static void note_ext(struct smtp_resp *r, const char *p, size_t n);
static bool word_is(const char *p, size_t n, const char *w);

void
smtp_resp_init(struct smtp_resp *r)
{
	r->code = 0;
	r->text[0] = '\0';
	r->lines = 0;
	r->ext = 0;
	r->len = 0;
	r->text_len = 0;
}

enum smtp_resp_rc
smtp_resp_feed(struct smtp_resp *r, const char *p, size_t n, size_t *used_r)
{
	size_t used = 0;

	while (used < n) {
		const char *nl = memchr(p + used, '\n', n - used);
		size_t take = nl ? (size_t)(nl - (p + used)) : n - used;
		bool last;

		if (take > sizeof(r->line) - r->len) {
			/* stop at the first byte that does not fit, however
			 * the input was split */
			*used_r = used + (sizeof(r->line) - r->len);
			r->len = sizeof(r->line);
			return SMTP_RESP_INVALID;
		}
		memcpy(r->line + r->len, p + used, take);
		r->len += take;
		used += take;
		if (nl == NULL)
			break;
		used++; /* the LF */
		if (take_line(r, &last) == -1) {
			*used_r = used;
			return SMTP_RESP_INVALID;
		}
		if (last) {
			*used_r = used;
			return SMTP_RESP_DONE;
		}
	}
	*used_r = used;
	return SMTP_RESP_MORE;
}

/* One line (without its LF; a CR before it is dropped). */
static int
take_line(struct smtp_resp *r, bool *last_r)
{
	const char *l = r->line;
	size_t n = r->len;
	unsigned code;

	r->len = 0;
	if (n > 0 && l[n - 1] == '\r')
		n--;
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
	    l[2] < '0' || l[2] > '9')
		return -1;
	if (n > 3 && l[3] != ' ' && l[3] != '-')
		return -1;
	code = (unsigned)(l[0] - '0') * 100 + (unsigned)(l[1] - '0') * 10 +
	    (unsigned)(l[2] - '0');
	if (r->lines > 0 && code != r->code)
		return -1;
	if (++r->lines > SMTP_RESP_LINES)
		return -1;
	r->code = code;
	if (r->lines == 1)
		add_text(r, l, 3);
	if (n > 4) {
		add_text(r, " ", 1);
		add_text(r, l + 4, n - 4);
		if (r->lines > 1)
			note_ext(r, l + 4, n - 4);
	}
	*last_r = n == 3 || l[3] == ' ';
	return 0;
}

static void
add_text(struct smtp_resp *r, const char *p, size_t n)
{
	for (size_t i = 0; i < n && r->text_len < SMTP_RESP_TEXT_MAX; i++) {
		unsigned char c = (unsigned char)p[i];

		r->text[r->text_len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	r->text[r->text_len] = '\0';
}

static bool
word_is(const char *p, size_t n, const char *w)
{
	return n == strlen(w) && strncasecmp(p, w, n) == 0;
}

/* "STARTTLS", "AUTH LOGIN PLAIN", "PIPELINING", ... */
static void
note_ext(struct smtp_resp *r, const char *p, size_t n)
{
	const char *sp = memchr(p, ' ', n);
	size_t kw = sp ? (size_t)(sp - p) : n;

	if (word_is(p, kw, "STARTTLS"))
		r->ext |= SMTP_EXT_STARTTLS;
	else if (word_is(p, kw, "PIPELINING"))
		r->ext |= SMTP_EXT_PIPELINING;
	else if (word_is(p, kw, "8BITMIME"))
		r->ext |= SMTP_EXT_8BITMIME;
	else if (word_is(p, kw, "SMTPUTF8"))
		r->ext |= SMTP_EXT_SMTPUTF8;
	else if (word_is(p, kw, "AUTH"))
		while (sp != NULL) {
			const char *w = sp + 1, *end = p + n;

			sp = memchr(w, ' ', (size_t)(end - w));
			if (word_is(w,
				sp ? (size_t)(sp - w) : (size_t)(end - w),
				"PLAIN"))
				r->ext |= SMTP_EXT_AUTH_PLAIN;
		}
}

void
smtp_resp_status(const struct smtp_resp *r, char *out, size_t cap)
{
	const char *t = r->text;
	size_t i = 4, d1 = 0, d2 = 0;

	/* "550 5.1.1 ..." : class digit, '.', 1-3 digits, '.', 1-3 digits */
	if (r->text_len > 9 && t[3] == ' ' && t[4] == t[0] && t[5] == '.') {
		for (i = 6; i < r->text_len && t[i] >= '0' && t[i] <= '9'; i++)
			d1++;
		if (d1 >= 1 && d1 <= 3 && i < r->text_len && t[i] == '.') {
			for (i++; i < r->text_len && t[i] >= '0' && t[i] <= '9';
			     i++)
				d2++;
			if (d2 >= 1 && d2 <= 3 &&
			    (i == r->text_len || t[i] == ' ') && i - 4 < cap) {
				memcpy(out, t + 4, i - 4);
				out[i - 4] = '\0';
				return;
			}
		}
	}
	if (cap >= 6) {
		out[0] = r->code ? (char)('0' + r->code / 100) : '4';
		memcpy(out + 1, ".0.0", 5);
	} else if (cap > 0) {
		out[0] = '\0';
	}
}
