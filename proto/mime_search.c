/*
 * mime_search.c - IMAP SEARCH over one message: a header field, the
 * addresses of an address field, or a part's text, matched
 * case-insensitively (ASCII) after decoding.
 *
 * Bodies are decoded from base64 or quoted-printable and header values
 * from RFC 2047 encoded words as they stream into a Knuth-Morris-Pratt
 * matcher, so nothing is buffered and no needle/text pair can go
 * quadratic; an encoded word longer than MAX_WORD is searched as written.
 *
 * Relies on: the message staying mapped while searching. Must never:
 * write into the message, read outside it, or allocate.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/mime.h"
#include "proto/mime_private.h"

#define MAX_WORD 256	   /* longest RFC 2047 encoded word we decode */
#define MAX_ADDR_PART 1024 /* local part or domain kept for matching */

/* search */
struct search {
	const char *needle;
	size_t nlen, j; /* j: bytes of the needle matched so far */
	bool found;
	uint16_t fail[MIME_SEARCH_MAX];
};
static void search_init(struct search *s, const char *needle, size_t nlen);
static void search_push(struct search *s, const char *p, size_t len);
static bool search_end(struct search *s);
static void push_base64(struct search *s, const char *p, size_t len);
static void push_qp(struct search *s, const char *p, size_t len, bool q);
static void push_2047(struct search *s, const char *p, size_t len);
static int hexval(unsigned char c);
static int b64val(unsigned char c);
static size_t addr_text(struct mime_slice v, char *out, size_t cap);
static bool in_value(struct mime_slice s, const char *value, size_t vlen);
static bool addr_match(const struct mime_address *a, const char *needle,
    size_t nlen, const char *value, size_t vlen);

/*
 * Knuth-Morris-Pratt over ASCII-lowered bytes: the decoders stream into
 * it, so nothing is buffered and no needle/text pair can go quadratic.
 */
static void
search_init(struct search *s, const char *needle, size_t nlen)
{
	size_t k = 0;

	s->needle = needle;
	s->nlen = nlen;
	s->found = nlen == 0;
	s->j = 0;
	if (nlen == 0)
		return;
	s->fail[0] = 0;
	for (size_t i = 1; i < nlen; i++) {
		unsigned char c = mime_lower((unsigned char)needle[i]);

		while (k > 0 && c != mime_lower((unsigned char)needle[k]))
			k = s->fail[k - 1];
		if (c == mime_lower((unsigned char)needle[k]))
			k++;
		s->fail[i] = (uint16_t)k;
	}
}

static void
search_push(struct search *s, const char *p, size_t len)
{
	size_t j = s->j;

	for (size_t i = 0; i < len && !s->found; i++) {
		unsigned char c = mime_lower((unsigned char)p[i]);

		while (j > 0 && c != mime_lower((unsigned char)s->needle[j]))
			j = s->fail[j - 1];
		if (c == mime_lower((unsigned char)s->needle[j]))
			j++;
		if (j == s->nlen)
			s->found = true;
	}
	s->j = j;
}

static bool
search_end(struct search *s)
{
	return s->found;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = mime_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Lenient base64: non-alphabet bytes are skipped, '=' ends the data. */
static void
push_base64(struct search *s, const char *p, size_t len)
{
	char out[256];
	size_t n = 0;
	uint32_t bits = 0;
	unsigned nbits = 0;

	for (size_t k = 0; k < len && !s->found; k++) {
		int v = b64val((unsigned char)p[k]);

		if (p[k] == '=')
			break;
		if (v < 0)
			continue;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			out[n++] = (char)((bits >> nbits) & 0xff);
			bits &= (1u << nbits) - 1;
		}
		if (n == sizeof(out)) {
			search_push(s, out, n);
			n = 0;
		}
	}
	search_push(s, out, n);
}

/*
 * Quoted-printable (RFC 2045 6.7), or with q set the RFC 2047 "Q" form
 * where '_' is a space. Broken escapes pass through as they are.
 */
static void
push_qp(struct search *s, const char *p, size_t len, bool q)
{
	char out[256];
	size_t n = 0;

	for (size_t k = 0; k < len && !s->found; k++) {
		char c = p[k];

		if (c == '=' && k + 2 < len &&
		    hexval((unsigned char)p[k + 1]) >= 0 &&
		    hexval((unsigned char)p[k + 2]) >= 0) {
			c = (char)(hexval((unsigned char)p[k + 1]) * 16 +
			    hexval((unsigned char)p[k + 2]));
			k += 2;
		} else if (c == '=' && !q) {
			size_t j = k + 1;

			while (j < len && mime_is_wsp(p[j]))
				j++;
			if (j < len && p[j] == '\r')
				j++;
			if (j < len && p[j] == '\n') {
				k = j; /* soft line break */
				continue;
			}
		} else if (c == '_' && q) {
			c = ' ';
		}
		out[n++] = c;
		if (n == sizeof(out)) {
			search_push(s, out, n);
			n = 0;
		}
	}
	search_push(s, out, n);
}

/*
 * A header value with RFC 2047 encoded words decoded to their bytes (no
 * charset conversion) and folds removed; white space between two encoded
 * words disappears as the RFC says.
 */
static void
push_2047(struct search *s, const char *p, size_t len)
{
	size_t k = 0, gap = 0, win;
	bool after_word = false;

	while (k < len && !s->found) {
		const char *q1, *q2, *q3, *e;

		if (p[k] != '=' || k + 1 >= len || p[k + 1] != '?') {
			if (p[k] == '\r' || p[k] == '\n') {
				k++;
				continue;
			}
			if (!mime_is_wsp(p[k]))
				after_word = false;
			if (after_word) {
				gap++;
				k++;
				continue;
			}
			if (gap > 0) {
				search_push(s, " ", 1);
				gap = 0;
			}
			search_push(s, p + k, 1);
			k++;
			continue;
		}
		/*
		 * =?charset?X?text?=, looked for within a bounded window so
		 * that many "=?" without an end cannot make this quadratic.
		 */
		win = len - k < MAX_WORD ? len - k : MAX_WORD;
		q1 = memchr(p + k + 2, '?', win - 2);
		if (q1 == NULL || q1 + 2 >= p + k + win || q1[2] != '?')
			goto literal;
		q2 = q1 + 2;
		q3 = q2 + 1;
		e = memmem(q3, (size_t)(p + k + win - q3), "?=", 2);
		if (e == NULL)
			goto literal;
		gap = 0;
		if (mime_lower((unsigned char)q1[1]) == 'b')
			push_base64(s, q3, (size_t)(e - q3));
		else if (mime_lower((unsigned char)q1[1]) == 'q')
			push_qp(s, q3, (size_t)(e - q3), true);
		else
			goto literal;
		k = (size_t)(e - p) + 2;
		after_word = true;
		continue;
	literal:
		if (gap > 0) {
			search_push(s, " ", 1);
			gap = 0;
		}
		after_word = false;
		search_push(s, p + k, 1);
		k++;
	}
}

bool
mime_header_search(const char *hdr, size_t len, const char *name,
    const char *needle, size_t nlen)
{
	struct mime_header_iter it;
	struct mime_field f;
	struct search s;

	if (nlen > MIME_SEARCH_MAX)
		return false;
	mime_header_init(&it, hdr, len, NULL);
	while (mime_header_next(&it, &f)) {
		if (name != NULL && !mime_slice_is(f.name, name))
			continue;
		if (nlen == 0)
			return true;
		search_init(&s, needle, nlen);
		for (size_t k = 0; k < f.value.len; k++) {
			if (f.value.ptr[k] != '\r' && f.value.ptr[k] != '\n')
				search_push(&s, f.value.ptr + k, 1);
		}
		if (search_end(&s))
			return true;
		if (memmem(f.value.ptr, f.value.len, "=?", 2) == NULL)
			continue;
		search_init(&s, needle, nlen);
		push_2047(&s, f.value.ptr, f.value.len);
		if (search_end(&s))
			return true;
	}
	return false;
}

/*
 * A local part or domain as an address: comments and folding white space
 * dropped, quoted strings and quoted pairs unquoted, atoms, dots and
 * domain literals kept, truncated at cap.
 */
static size_t
addr_text(struct mime_slice v, char *out, size_t cap)
{
	size_t pos = 0, n = 0, q;

	while (pos < v.len && n < cap) {
		pos = mime_skip_cfws(v.ptr, pos, v.len, NULL, NULL);
		if (pos >= v.len)
			break;
		if (v.ptr[pos] == '"') {
			q = mime_quoted_end(v.ptr, pos, v.len);
			n += mime_unquote(v.ptr + pos, q - pos, out + n,
			    cap - n);
			pos = q;
			continue;
		}
		out[n++] = v.ptr[pos++];
	}
	return n;
}

/* The slice points into the header value (not at the parser's
 * MISSING_MAILBOX / MISSING_DOMAIN placeholders). */
static bool
in_value(struct mime_slice s, const char *value, size_t vlen)
{
	uintptr_t p = (uintptr_t)s.ptr, v = (uintptr_t)value;

	return p >= v && p <= v + vlen;
}

static bool
addr_match(const struct mime_address *a, const char *needle, size_t nlen,
    const char *value, size_t vlen)
{
	char local[MAX_ADDR_PART], domain[MAX_ADDR_PART];
	size_t ll = 0, dl = 0;
	struct search s;

	search_init(&s, needle, nlen);
	if (a->kind == MIME_ADDR_GROUP_START) {
		push_2047(&s, a->mailbox.ptr, a->mailbox.len);
		return search_end(&s);
	}
	if (in_value(a->mailbox, value, vlen))
		ll = addr_text(a->mailbox, local, sizeof(local));
	if (in_value(a->host, value, vlen))
		dl = addr_text(a->host, domain, sizeof(domain));
	if (a->name.len > 0) {
		push_2047(&s, a->name.ptr, a->name.len);
		search_push(&s, " <", 2);
	}
	search_push(&s, local, ll);
	if (dl > 0) {
		search_push(&s, "@", 1);
		search_push(&s, domain, dl);
	}
	if (a->name.len > 0)
		search_push(&s, ">", 1);
	return search_end(&s);
}

bool
mime_addr_search(const char *hdr, size_t len, const char *name,
    const char *needle, size_t nlen)
{
	struct mime_header_iter it;
	struct mime_addr_iter ai;
	struct mime_address a;
	struct mime_field f;
	char scratch[MAX_ADDR_PART];

	if (nlen > MIME_SEARCH_MAX)
		return false;
	mime_header_init(&it, hdr, len, NULL);
	while (mime_header_next(&it, &f)) {
		if (!mime_slice_is(f.name, name))
			continue;
		if (nlen == 0)
			return true;
		mime_addr_init(&ai, f.value.ptr, f.value.len);
		while (mime_addr_next(&ai, &a, scratch, sizeof(scratch))) {
			if (a.kind != MIME_ADDR_GROUP_END &&
			    addr_match(&a, needle, nlen, f.value.ptr,
				f.value.len))
				return true;
		}
	}
	return false;
}

bool
mime_body_search(const struct mime_message *m, uint32_t part,
    const char *needle, size_t nlen)
{
	if (nlen > MIME_SEARCH_MAX || part >= m->nparts)
		return false;
	for (uint32_t i = part; i < m->nparts; i++) {
		const struct mime_part *p = &m->parts[i];
		const char *body = m->data + mime_body_off(p);
		size_t blen = mime_body_len(p);
		uint32_t up = i;
		struct search s;

		/* parts are in breadth-first order: descendants come later */
		while (up != MIME_NONE && up != part)
			up = m->parts[up].parent;
		if (up == MIME_NONE ||
		    (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) ||
		    !mime_slice_is(p->type, "text"))
			continue;
		search_init(&s, needle, nlen);
		if (mime_slice_is(p->encoding, "base64"))
			push_base64(&s, body, blen);
		else if (mime_slice_is(p->encoding, "quoted-printable"))
			push_qp(&s, body, blen, false);
		else
			search_push(&s, body, blen);
		if (search_end(&s))
			return true;
	}
	return false;
}
