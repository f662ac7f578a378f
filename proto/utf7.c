/*
 * utf7.c - modified UTF-7 <-> UTF-8 for mailbox names (RFC 3501 5.1.3).
 *
 * Shifted runs are UTF-16BE in base64 with ',' for '/', opened by '&' and
 * closed by '-'; "&-" is '&'. Decoding rejects every non-canonical form so
 * that two spellings can never name two folders that are really one.
 * Relies on nothing but the caller's output buffer; never writes past
 * outsize and never allocates.
 */
#include <stdint.h>
#include <string.h>

#include "proto/utf7.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

struct out {
	char *p;
	size_t size, len;
	bool full;
};

static void put(struct out *o, char c);
static void put_utf8(struct out *o, uint32_t cp);
static int b64_value(unsigned char c);
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp_r);
static int finish(struct out *o, size_t *outlen_r, const char **error_r);
static int decode(const char *in, size_t len, struct out *o);
static void flush_bits(struct out *o, uint32_t bits, unsigned nbits);

/* Append one byte, always leaving room for the terminating NUL. */
static void
put(struct out *o, char c)
{
	if (o->len + 1 >= o->size) {
		o->full = true;
		return;
	}
	if (o->p != NULL)
		o->p[o->len] = c;
	o->len++;
}

static void
put_utf8(struct out *o, uint32_t cp)
{
	if (cp < 0x80) {
		put(o, (char)cp);
	} else if (cp < 0x800) {
		put(o, (char)(0xc0 | (cp >> 6)));
		put(o, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		put(o, (char)(0xe0 | (cp >> 12)));
		put(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
		put(o, (char)(0x80 | (cp & 0x3f)));
	} else {
		put(o, (char)(0xf0 | (cp >> 18)));
		put(o, (char)(0x80 | ((cp >> 12) & 0x3f)));
		put(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
		put(o, (char)(0x80 | (cp & 0x3f)));
	}
}

static int
b64_value(unsigned char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64, c)) == NULL)
		return -1;
	return (int)(p - b64);
}

/*
 * One well-formed UTF-8 sequence (RFC 3629) at s: its length, or 0 for
 * overlongs, surrogates, values above U+10FFFF and truncation.
 */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp_r)
{
	uint32_t cp, min;
	size_t len;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

static int
finish(struct out *o, size_t *outlen_r, const char **error_r)
{
	if (o->full || o->size == 0) {
		*error_r = "Mailbox name too long";
		return -1;
	}
	if (o->p != NULL)
		o->p[o->len] = '\0';
	if (outlen_r != NULL)
		*outlen_r = o->len;
	return 0;
}

/*
 * The decoder proper; o->p may be NULL to validate only. Returns 0 or -1
 * for anything but the canonical encoding.
 */
static int
decode(const char *in, size_t len, struct out *o)
{
	size_t i = 0;
	bool after_shift = false;

	while (i < len) {
		unsigned char c = (unsigned char)in[i++];
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0, units = 0;

		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			put(o, (char)c);
			after_shift = false;
			continue;
		}
		if (i < len && in[i] == '-') {
			put(o, '&');
			i++;
			after_shift = false;
			continue;
		}
		/* Two shifted runs in a row would have been one. */
		if (after_shift)
			return -1;
		for (; i < len && in[i] != '-'; i++) {
			int v = b64_value((unsigned char)in[i]);
			uint32_t u;

			if (v < 0)
				return -1;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			u = (bits >> nbits) & 0xffff;
			bits &= (1u << nbits) - 1;
			units++;
			if (high != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					return -1;
				put_utf8(o,
				    0x10000 + ((high - 0xd800) << 10) +
					(u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return -1;
			} else if (u == 0 || (u >= 0x20 && u <= 0x7e)) {
				/* printable ASCII must be written directly */
				return -1;
			} else {
				put_utf8(o, u);
			}
		}
		if (i == len || units == 0 || high != 0 || nbits >= 6 ||
		    bits != 0)
			return -1;
		i++;
		after_shift = true;
	}
	return 0;
}

int
utf7_to_utf8(const char *in, size_t len, char *out, size_t outsize,
    size_t *outlen_r, const char **error_r)
{
	struct out o = { out, outsize, 0, false };

	if (decode(in, len, &o) == -1) {
		*error_r = "Invalid modified UTF-7 mailbox name";
		return -1;
	}
	return finish(&o, outlen_r, error_r);
}

bool
utf7_valid(const char *in, size_t len)
{
	struct out o = { NULL, SIZE_MAX, 0, false };

	return decode(in, len, &o) == 0;
}

/* Close a shifted run: pad the last sextet with zero bits, then '-'. */
static void
flush_bits(struct out *o, uint32_t bits, unsigned nbits)
{
	if (nbits > 0)
		put(o, b64[(bits << (6 - nbits)) & 0x3f]);
	put(o, '-');
}

int
utf7_from_utf8(const char *in, size_t len, char *out, size_t outsize,
    size_t *outlen_r, const char **error_r)
{
	const unsigned char *s = (const unsigned char *)in;
	struct out o = { out, outsize, 0, false };
	bool shifted = false;
	uint32_t bits = 0;
	unsigned nbits = 0;
	size_t i = 0;

	while (i < len) {
		uint32_t cp, units[2];
		size_t n = utf8_decode(s + i, len - i, &cp), nu;

		if (n == 0 || cp == 0) {
			*error_r = "Invalid UTF-8 mailbox name";
			return -1;
		}
		i += n;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (shifted) {
				flush_bits(&o, bits, nbits);
				shifted = false;
				bits = 0;
				nbits = 0;
			}
			put(&o, (char)cp);
			if (cp == '&')
				put(&o, '-');
			continue;
		}
		if (!shifted) {
			put(&o, '&');
			shifted = true;
		}
		if (cp >= 0x10000) {
			units[0] = 0xd800 + ((cp - 0x10000) >> 10);
			units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			nu = 2;
		} else {
			units[0] = cp;
			nu = 1;
		}
		for (size_t k = 0; k < nu; k++) {
			bits = (bits << 16) | units[k];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				put(&o, b64[(bits >> nbits) & 0x3f]);
			}
			bits &= (1u << nbits) - 1;
		}
	}
	if (shifted)
		flush_bits(&o, bits, nbits);
	return finish(&o, outlen_r, error_r);
}
