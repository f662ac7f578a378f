/*
 * mime_decode.c - the lenient content decoders the MIME module shares
 * (proto/mime_private.h): base64 and quoted-printable bodies, RFC 2047
 * encoded words in header values. SEARCH (mime_search.c) streams them into
 * its matcher, the walk (mime_walk.c) into file name buffers.
 *
 * Lenient on purpose: what a mail client would still show must be what
 * SEARCH matches and what the content policy checks. Bytes go out through
 * a sink in small pieces; nothing is allocated, and an encoded word is
 * looked for within MAX_WORD bytes so no input goes quadratic. No charset
 * conversion: the words' bytes are passed on as they are.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/mime.h"
#include "proto/mime_private.h"

#define MAX_WORD 256 /* longest RFC 2047 encoded word we decode */

/* A decoder's output: bytes gather in buf and go to the sink when it is
 * full, and at the end. */
struct out {
	char buf[256];
	size_t n;
	mime_write_fn *w;
	void *ctx;
};

static int b64val(unsigned char c);
static int out_put(struct out *o, char c);
static int out_end(struct out *o);

static int
out_put(struct out *o, char c)
{
	o->buf[o->n++] = c;
	if (o->n == sizeof(o->buf)) {
		if (o->w(o->ctx, o->buf, o->n) == -1)
			return -1;
		o->n = 0;
	}
	return 0;
}

static int
out_end(struct out *o)
{
	return o->n > 0 ? o->w(o->ctx, o->buf, o->n) : 0;
}

int
mime_hexval(unsigned char c)
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
int
mime_decode_base64(const char *p, size_t len, mime_write_fn *w, void *ctx)
{
	struct out o = { .w = w, .ctx = ctx };
	uint32_t bits = 0;
	unsigned nbits = 0;

	for (size_t k = 0; k < len; k++) {
		int v = b64val((unsigned char)p[k]);

		if (p[k] == '=')
			break;
		if (v < 0)
			continue;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			if (out_put(&o, (char)((bits >> nbits) & 0xff)) == -1)
				return -1;
			bits &= (1u << nbits) - 1;
		}
	}
	return out_end(&o);
}

/*
 * Quoted-printable (RFC 2045 6.7), or with q set the RFC 2047 "Q" form
 * where '_' is a space. Broken escapes pass through as they are.
 */
int
mime_decode_qp(const char *p, size_t len, bool q, mime_write_fn *w, void *ctx)
{
	struct out o = { .w = w, .ctx = ctx };

	for (size_t k = 0; k < len; k++) {
		char c = p[k];

		if (c == '=' && k + 2 < len &&
		    mime_hexval((unsigned char)p[k + 1]) >= 0 &&
		    mime_hexval((unsigned char)p[k + 2]) >= 0) {
			c = (char)(mime_hexval((unsigned char)p[k + 1]) * 16 +
			    mime_hexval((unsigned char)p[k + 2]));
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
		if (out_put(&o, c) == -1)
			return -1;
	}
	return out_end(&o);
}

/*
 * A header value with RFC 2047 encoded words decoded to their bytes (no
 * charset conversion) and folds removed; white space between two encoded
 * words disappears as the RFC says.
 */
int
mime_decode_2047(const char *p, size_t len, mime_write_fn *w, void *ctx)
{
	size_t k = 0, gap = 0, win;
	bool after_word = false;
	int rc;

	while (k < len) {
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
				if (w(ctx, " ", 1) == -1)
					return -1;
				gap = 0;
			}
			if (w(ctx, p + k, 1) == -1)
				return -1;
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
			rc = mime_decode_base64(q3, (size_t)(e - q3), w, ctx);
		else if (mime_lower((unsigned char)q1[1]) == 'q')
			rc = mime_decode_qp(q3, (size_t)(e - q3), true, w, ctx);
		else
			goto literal;
		if (rc == -1)
			return -1;
		k = (size_t)(e - p) + 2;
		after_word = true;
		continue;
	literal:
		if (gap > 0) {
			if (w(ctx, " ", 1) == -1)
				return -1;
			gap = 0;
		}
		after_word = false;
		if (w(ctx, p + k, 1) == -1)
			return -1;
		k++;
	}
	return 0;
}
