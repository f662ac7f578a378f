/*
 * mime_write.c - the IMAP ENVELOPE and BODYSTRUCTURE writers over a
 * parsed message (mime.c), streamed through the caller's mime_write_fn.
 *
 * Output goes through a small buffer in struct out; header values are
 * written as IMAP nstrings (unfolded, quoted or as literals when they hold
 * bytes a quoted string cannot), parameters and extension data as RFC
 * 3501 section 7.4.2 lays them out.
 *
 * Relies on: the message staying mapped while writing. Must never: write
 * into the message, allocate, or recurse deeper than the parse depth limit
 * (the writers follow the part tree, which that limit bounds).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/mime.h"
#include "proto/mime_private.h"

#define NAME_SCRATCH 1024

/* output */
struct out {
	mime_write_fn *w;
	void *ctx;
	bool err;
	size_t n;
	char buf[512];
};
enum xf {
	XF_UNFOLD, /* raw value: drop CR and LF */
	XF_QUOTED, /* quoted-string: drop the quotes, undo escapes */
};
static void out_bytes(struct out *o, const char *p, size_t len);
static void out_str(struct out *o, const char *s);
static int out_end(struct out *o);
static void out_nstring(struct out *o, const char *p, size_t len, enum xf mode);
static void out_number(struct out *o, size_t n);
static void out_params(struct out *o, struct mime_slice params, bool defaulted);
static void out_ext(struct out *o, const struct mime_part *p, bool multi);
static void out_addresses(struct out *o, struct mime_slice v);
static size_t addr_count(struct mime_slice v);
static void out_envelope(struct out *o, const struct mime_message *m,
    uint32_t part);
static void out_body(struct out *o, const struct mime_message *m, uint32_t i,
    bool ext);

static void
out_bytes(struct out *o, const char *p, size_t len)
{
	if (o->err)
		return;
	if (len > sizeof(o->buf) - o->n) {
		if (o->n > 0 && o->w(o->ctx, o->buf, o->n) == -1) {
			o->err = true;
			return;
		}
		o->n = 0;
		if (len >= sizeof(o->buf)) {
			if (o->w(o->ctx, p, len) == -1)
				o->err = true;
			return;
		}
	}
	memcpy(o->buf + o->n, p, len);
	o->n += len;
}

static void
out_str(struct out *o, const char *s)
{
	out_bytes(o, s, strlen(s));
}

static int
out_end(struct out *o)
{
	if (!o->err && o->n > 0 && o->w(o->ctx, o->buf, o->n) == -1)
		o->err = true;
	o->n = 0;
	return o->err ? -1 : 0;
}

static void
out_number(struct out *o, size_t n)
{
	char b[32];
	int len = snprintf(b, sizeof(b), "%zu", n);

	out_bytes(o, b, (size_t)len);
}

/*
 * An IMAP nstring from a header value: unfolded (and unquoted in XF_QUOTED
 * mode), as a quoted string if it is plain 7-bit, else as a literal. Two
 * passes over the source instead of a copy.
 */
static void
out_nstring(struct out *o, const char *p, size_t len, enum xf mode)
{
	size_t n = 0, k = 0, end = len;
	bool quotable = true;

	if (p == NULL) {
		out_str(o, "NIL");
		return;
	}
	if (mode == XF_QUOTED && len > 0 && p[0] == '"') {
		k = 1;
		end = mime_quoted_end(p, 0, len);
		if (end > 1 && p[end - 1] == '"')
			end--;
	}
	for (size_t i = k; i < end; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r' || c == '\n')
			continue;
		if (mode == XF_QUOTED && c == '\\' && i + 1 < end)
			c = (unsigned char)p[++i];
		if (c == 0 || c >= 0x80 || c == '\r' || c == '\n')
			quotable = false;
		n++;
	}
	if (quotable) {
		out_bytes(o, "\"", 1);
	} else {
		out_bytes(o, "{", 1);
		out_number(o, n);
		out_bytes(o, "}\r\n", 3);
	}
	for (size_t i = k; i < end; i++) {
		char c = p[i];
		size_t run = i;

		/* runs of bytes that need nothing done go out in one piece */
		while (run < end && p[run] != '\r' && p[run] != '\n' &&
		    p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			out_bytes(o, p + i, run - i);
			i = run - 1;
			continue;
		}
		if (c == '\r' || c == '\n')
			continue;
		if (mode == XF_QUOTED && c == '\\' && i + 1 < end)
			c = p[++i];
		if (quotable && (c == '"' || c == '\\'))
			out_bytes(o, "\\", 1);
		out_bytes(o, &c, 1);
	}
	if (quotable)
		out_bytes(o, "\"", 1);
}

static void
out_params(struct out *o, struct mime_slice params, bool defaulted)
{
	struct mime_slice n, v;
	bool quoted, any = false;

	if (defaulted) {
		out_str(o, "(\"charset\" \"us-ascii\")");
		return;
	}
	while (mime_param_next(&params, &n, &v, &quoted)) {
		out_str(o, any ? " " : "(");
		any = true;
		out_nstring(o, n.ptr, n.len, XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_nstring(o, v.ptr, v.len, quoted ? XF_QUOTED : XF_UNFOLD);
	}
	out_str(o, any ? ")" : "NIL");
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc (md5 first if !multi). */
static void
out_ext(struct out *o, const struct mime_part *p, bool multi)
{
	size_t pos = 0, t0, count = 0;
	const char *s = p->language.ptr;

	if (!multi) {
		out_bytes(o, " ", 1);
		out_nstring(o, p->md5.ptr, p->md5.len, XF_UNFOLD);
	}
	out_bytes(o, " ", 1);
	if (p->disposition.ptr != NULL) {
		out_bytes(o, "(", 1);
		out_nstring(o, p->disposition.ptr, p->disposition.len,
		    XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_params(o, p->disposition_params, false);
		out_bytes(o, ")", 1);
	} else {
		out_str(o, "NIL");
	}
	out_bytes(o, " ", 1);
	/* Content-Language: a comma separated list of tags */
	for (int pass = 0; pass < 2; pass++) {
		size_t k = 0;

		for (pos = 0; s != NULL && pos < p->language.len;) {
			pos = mime_skip_cfws(s, pos, p->language.len, NULL,
			    NULL);
			t0 = pos;
			pos = mime_token_end(s, pos, p->language.len);
			if (pos > t0) {
				if (pass == 0) {
					count++;
				} else {
					if (count > 1)
						out_str(o, k == 0 ? "(" : " ");
					out_nstring(o, s + t0, pos - t0,
					    XF_UNFOLD);
					k++;
				}
			} else {
				pos++; /* ',' or junk */
			}
		}
		if (pass == 0 && count == 0) {
			out_str(o, "NIL");
			break;
		}
	}
	if (count > 1)
		out_bytes(o, ")", 1);
	out_bytes(o, " ", 1);
	out_nstring(o, p->location.ptr, p->location.len, XF_UNFOLD);
}

static size_t
addr_count(struct mime_slice v)
{
	struct mime_addr_iter it;
	struct mime_address a;
	char scratch[16];
	size_t n = 0;

	mime_addr_init(&it, v.ptr, v.len);
	while (mime_addr_next(&it, &a, scratch, sizeof(scratch)))
		n++;
	return n;
}

static void
out_addresses(struct out *o, struct mime_slice v)
{
	struct mime_addr_iter it;
	struct mime_address a;
	char scratch[NAME_SCRATCH];
	bool any = false;

	mime_addr_init(&it, v.ptr, v.len);
	while (mime_addr_next(&it, &a, scratch, sizeof(scratch))) {
		out_str(o, any ? "(" : "((");
		any = true;
		out_nstring(o, a.name.ptr, a.name.len, XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_nstring(o, a.adl.ptr, a.adl.len, XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_nstring(o, a.mailbox.ptr, a.mailbox.len, XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_nstring(o, a.host.ptr, a.host.len, XF_UNFOLD);
		out_bytes(o, ")", 1);
	}
	out_str(o, any ? ")" : "NIL");
}

static void
out_envelope(struct out *o, const struct mime_message *m, uint32_t part)
{
	static const char *const fields[] = { "date", "subject", "from",
		"sender", "reply-to", "to", "cc", "bcc", "in-reply-to",
		"message-id" };
	const struct mime_part *p = &m->parts[part];
	struct mime_header_iter it;
	struct mime_field f;
	struct mime_slice v[10] = { { NULL, 0 } }, from;

	/* one pass, first field of each name: what mime_header_get() per
	 * name would find, without walking the header ten times */
	mime_header_init(&it, m->data + p->off, p->hdr_len, NULL);
	while (mime_header_next(&it, &f)) {
		for (size_t k = 0; k < 10; k++) {
			if (v[k].ptr == NULL &&
			    mime_slice_is(f.name, fields[k])) {
				v[k] = f.value;
				break;
			}
		}
	}
	from = v[2];
	/* RFC 3501: absent or empty Sender and Reply-To default to From */
	if (v[3].ptr == NULL || addr_count(v[3]) == 0)
		v[3] = from;
	if (v[4].ptr == NULL || addr_count(v[4]) == 0)
		v[4] = from;
	out_bytes(o, "(", 1);
	for (size_t k = 0; k < 10; k++) {
		if (k > 0)
			out_bytes(o, " ", 1);
		if (k >= 2 && k <= 7)
			out_addresses(o, v[k]);
		else
			out_nstring(o, v[k].ptr, v[k].len, XF_UNFOLD);
	}
	out_bytes(o, ")", 1);
}

static void
out_body(struct out *o, const struct mime_message *m, uint32_t i, bool ext)
{
	const struct mime_part *p = &m->parts[i];
	bool message = (p->flags & MIME_PART_MESSAGE) != 0;
	struct mime_slice type = p->type, subtype = p->subtype;

	out_bytes(o, "(", 1);
	if (p->flags & MIME_PART_MULTIPART) {
		for (uint32_t k = 0; k < p->nchildren; k++)
			out_body(o, m, p->child + k, ext);
		out_bytes(o, " ", 1);
		out_nstring(o, p->subtype.ptr, p->subtype.len, XF_UNFOLD);
		if (ext) {
			out_bytes(o, " ", 1);
			out_params(o, p->params, false);
			out_ext(o, p, true);
		}
		out_bytes(o, ")", 1);
		return;
	}
	/* A message/rfc822 we could not open must not promise an envelope. */
	if (!message && mime_slice_is(type, "message") &&
	    (mime_slice_is(subtype, "rfc822") ||
		mime_slice_is(subtype, "global"))) {
		type.ptr = "application";
		type.len = 11;
		subtype.ptr = "octet-stream";
		subtype.len = 12;
	}
	out_nstring(o, type.ptr, type.len, XF_UNFOLD);
	out_bytes(o, " ", 1);
	out_nstring(o, subtype.ptr, subtype.len, XF_UNFOLD);
	out_bytes(o, " ", 1);
	out_params(o, p->params,
	    (p->flags & (MIME_PART_DEFAULTED | MIME_PART_BROKEN)) != 0 &&
		mime_slice_is(p->type, "text"));
	out_bytes(o, " ", 1);
	out_nstring(o, p->id.ptr, p->id.len, XF_UNFOLD);
	out_bytes(o, " ", 1);
	out_nstring(o, p->description.ptr, p->description.len, XF_UNFOLD);
	out_bytes(o, " ", 1);
	if (p->encoding.ptr != NULL)
		out_nstring(o, p->encoding.ptr, p->encoding.len, XF_UNFOLD);
	else
		out_str(o, "\"7BIT\"");
	out_bytes(o, " ", 1);
	out_number(o, mime_body_len(p));
	if (message) {
		out_bytes(o, " ", 1);
		out_envelope(o, m, p->child);
		out_bytes(o, " ", 1);
		out_body(o, m, p->child, ext);
		out_bytes(o, " ", 1);
		out_number(o, p->body_lines);
	} else if (mime_slice_is(type, "text")) {
		out_bytes(o, " ", 1);
		out_number(o, p->body_lines);
	}
	if (ext)
		out_ext(o, p, false);
	out_bytes(o, ")", 1);
}

int
mime_write_envelope(const struct mime_message *m, uint32_t part,
    mime_write_fn *w, void *ctx)
{
	struct out o = { .w = w, .ctx = ctx };

	if (part >= m->nparts)
		return -1;
	out_envelope(&o, m, part);
	return out_end(&o);
}

int
mime_write_bodystructure(const struct mime_message *m, uint32_t part,
    bool extended, mime_write_fn *w, void *ctx)
{
	struct out o = { .w = w, .ctx = ctx };

	if (part >= m->nparts)
		return -1;
	out_body(&o, m, part, extended);
	return out_end(&o);
}
