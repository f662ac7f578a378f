/*
 * fuzz_mime.c - the MIME/header parser and its IMAP writers under
 * arbitrary messages.
 *
 * Parses with a small part array and depth so the limits are reached,
 * checks that every part lies inside its parent, writes ENVELOPE and
 * BODYSTRUCTURE and checks that the text is balanced IMAP (quoted strings
 * closed, literal counts right, parentheses matched), resolves sections,
 * runs the address iterator and the three searches, and checks that a parse
 * of just the header (mime_header_end() over a prefix) writes the same
 * ENVELOPE as the whole message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	char buf[1 << 16];
	size_t len;
	bool overflow;
};

static int
sink_write(void *ctx, const char *p, size_t len)
{
	struct sink *s = ctx;

	if (len > sizeof(s->buf) - s->len) {
		s->overflow = true;
		return -1;
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	return 0;
}

/* A balanced IMAP value list: every string closed, every literal whole. */
static void
check_imap(const char *s, size_t len)
{
	long depth = 0;

	for (size_t k = 0; k < len; k++) {
		if (s[k] == '(') {
			depth++;
		} else if (s[k] == ')') {
			if (--depth < 0)
				abort();
		} else if (s[k] == '"') {
			for (k++; k < len && s[k] != '"'; k++) {
				if (s[k] == '\r' || s[k] == '\n' || s[k] == 0 ||
				    (unsigned char)s[k] >= 0x80)
					abort();
				if (s[k] == '\\')
					k++;
			}
			if (k >= len)
				abort();
		} else if (s[k] == '{') {
			size_t n = strtoul(s + k + 1, NULL, 10);
			const char *crlf = memchr(s + k, '\n', len - k);

			if (crlf == NULL || n > len - (size_t)(crlf + 1 - s))
				abort();
			k = (size_t)(crlf - s) + n;
		}
	}
	if (depth != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mime_part parts[48];
	static struct sink out;
	const char *msg = (const char *)data;
	struct mime_limits lim = { .max_depth = 12,
		.max_headers = 50,
		.max_field = 4096 };
	struct mime_message m;
	uint32_t path[4];

	if (mime_parse(&m, msg, size, parts, 48, &lim) != 0)
		abort();
	for (uint32_t i = 0; i < m.nparts; i++) {
		const struct mime_part *p = &parts[i], *up;

		if (p->off > size || p->len > size - p->off ||
		    p->hdr_len > p->len || p->depth > lim.max_depth)
			abort();
		if (p->parent == MIME_NONE)
			continue;
		up = &parts[p->parent];
		if (p->off < mime_body_off(up) ||
		    p->off + p->len > up->off + up->len)
			abort();
	}
	for (uint32_t i = 0; i < m.nparts; i++) {
		out.len = 0;
		out.overflow = false;
		if (mime_write_bodystructure(&m, i, i & 1, sink_write, &out) ==
		    0)
			check_imap(out.buf, out.len);
		else if (!out.overflow)
			abort();
		if (i == 0 ||
		    (parts[i].parent != MIME_NONE &&
			(parts[parts[i].parent].flags & MIME_PART_MESSAGE))) {
			out.len = 0;
			out.overflow = false;
			if (mime_write_envelope(&m, i, sink_write, &out) == 0)
				check_imap(out.buf, out.len);
			else if (!out.overflow)
				abort();
		}
	}
	/* sections: paths made of small numbers taken from the input */
	for (unsigned n = 0; n <= 3; n++) {
		for (unsigned k = 0; k < n; k++)
			path[k] = size > k ? data[k] % 4 : 1;
		for (int kind = MIME_SECT_BODY; kind <= MIME_SECT_MIME;
		     kind++) {
			size_t off, len;
			uint32_t part;

			if (mime_section(&m, path, n, kind, &off, &len,
				&part) == 0 &&
			    (off > size || len > size - off ||
				part >= m.nparts))
				abort();
		}
	}
	{
		struct mime_slice names[2] = { { "subject", 7 }, { "To", 2 } };
		size_t want = mime_header_fields(msg, parts[0].hdr_len, names,
		    2, size & 1, NULL, NULL);

		out.len = 0;
		out.overflow = false;
		if (mime_header_fields(msg, parts[0].hdr_len, names, 2,
			size & 1, sink_write, &out) != want &&
		    !out.overflow)
			abort();
	}
	{
		struct mime_header_iter it;
		struct mime_field f;

		mime_header_init(&it, msg, parts[0].hdr_len, &lim);
		while (mime_header_next(&it, &f)) {
			struct mime_addr_iter ai;
			struct mime_address a;
			char scratch[64];

			mime_addr_init(&ai, f.value.ptr, f.value.len);
			while (
			    mime_addr_next(&ai, &a, scratch, sizeof(scratch))) {
				if (a.name.len > sizeof(scratch))
					abort();
			}
		}
	}
	/* a header-only FETCH reads a prefix until mime_header_end() and
	 * parses just the header: same header length, same ENVELOPE */
	for (size_t cut = size / 2;; cut = size) {
		static struct mime_part hparts[4];
		static struct sink whole, head;
		struct mime_message hm;
		size_t h;

		if (!mime_header_end(msg, cut, &h)) {
			if (h != cut ||
			    (cut == size && parts[0].hdr_len != size))
				abort();
		} else {
			if (h > cut || h != parts[0].hdr_len ||
			    mime_parse(&hm, msg, h, hparts, 4, &lim) != 0 ||
			    hparts[0].hdr_len != h)
				abort();
			whole.len = head.len = 0;
			whole.overflow = head.overflow = false;
			mime_write_envelope(&m, 0, sink_write, &whole);
			mime_write_envelope(&hm, 0, sink_write, &head);
			if (whole.overflow != head.overflow ||
			    (!whole.overflow &&
				(whole.len != head.len ||
				    memcmp(whole.buf, head.buf, whole.len) !=
					0)))
				abort();
		}
		if (cut == size)
			break;
	}
	if (size > 4) {
		mime_header_search(msg, parts[0].hdr_len, NULL, msg + size - 3,
		    3);
		mime_header_search(msg, parts[0].hdr_len, "subject", msg, 2);
		mime_addr_search(msg, parts[0].hdr_len, "from", msg + size - 3,
		    3);
		mime_addr_search(msg, parts[0].hdr_len, "to", msg, 1);
		mime_body_search(&m, 0, msg + size - 4, 4);
	}
	return 0;
}
