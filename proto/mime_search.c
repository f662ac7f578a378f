/*
 * mime_search.c - IMAP SEARCH over one message: a header field, the
 * addresses of an address field, or a part's text, matched
 * case-insensitively (ASCII) after decoding.
 *
 * Bodies are decoded from base64 or quoted-printable and header values
 * from RFC 2047 encoded words as they stream into a Knuth-Morris-Pratt
 * matcher, so nothing is buffered and no needle/text pair can go
 * quadratic (the decoders are in mime_decode.c).
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
static int search_sink(void *ctx, const char *p, size_t len);
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

/* The decoders' sink: feeds the matcher, stops once it matched. */
static int
search_sink(void *ctx, const char *p, size_t len)
{
	struct search *s = ctx;

	search_push(s, p, len);
	return s->found ? -1 : 0;
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
		(void)mime_decode_2047(f.value.ptr, f.value.len, search_sink,
		    &s);
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
		(void)mime_decode_2047(a->mailbox.ptr, a->mailbox.len,
		    search_sink, &s);
		return search_end(&s);
	}
	if (in_value(a->mailbox, value, vlen))
		ll = addr_text(a->mailbox, local, sizeof(local));
	if (in_value(a->host, value, vlen))
		dl = addr_text(a->host, domain, sizeof(domain));
	if (a->name.len > 0) {
		(void)mime_decode_2047(a->name.ptr, a->name.len, search_sink,
		    &s);
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
			(void)mime_decode_base64(body, blen, search_sink, &s);
		else if (mime_slice_is(p->encoding, "quoted-printable"))
			(void)mime_decode_qp(body, blen, false, search_sink,
			    &s);
		else
			search_push(&s, body, blen);
		if (search_end(&s))
			return true;
	}
	return false;
}
