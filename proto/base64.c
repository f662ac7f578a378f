/*
 * base64.c - strict RFC 4648 base64 encoding and decoding (see base64.h).
 *
 * The payloads are often secret (SASL PLAIN carries the password, the
 * SASL client encodes the master password), so the mapping between
 * characters and 6-bit values is computed with masks instead of a table
 * or branches on the value: neither the cache nor the branch predictor
 * learns which characters went by. Only the structure (where padding and
 * whitespace are) influences control flow, and that reveals no more than
 * the length.
 *
 * Relies on arithmetic right shift of negative ints (gcc and clang).
 * Never: reads outside src[0..n), writes past dst[cap), allocates.
 */
#include <stdbool.h>
#include <stdint.h>

#include "proto/base64.h"

static int b64_value(unsigned char c);
static char b64_char(unsigned v);
static bool is_ws(unsigned char c);

int
base64_encoded_len(size_t n, size_t *len_r)
{
	size_t quanta = n / 3 + (n % 3 != 0);

	/* Room for the NUL too, so callers can add one without a check. */
	if (quanta > (SIZE_MAX - 1) / 4)
		return -1;
	*len_r = quanta * 4;
	return 0;
}

size_t
base64_decoded_max(size_t n)
{
	/* Strict input is whole quanta: never more than 3 bytes per 4. */
	return n / 4 * 3;
}

int
base64_encode(const void *src, size_t n, char *dst, size_t cap, size_t *len_r)
{
	const unsigned char *in = src;
	size_t len, i, o = 0;
	uint32_t v;

	if (base64_encoded_len(n, &len) == -1 || cap < len + 1)
		return -1;
	for (i = 0; n - i >= 3; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		dst[o++] = b64_char(v >> 18);
		dst[o++] = b64_char((v >> 12) & 63);
		dst[o++] = b64_char((v >> 6) & 63);
		dst[o++] = b64_char(v & 63);
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		dst[o++] = b64_char(v >> 18);
		dst[o++] = b64_char((v >> 12) & 63);
		dst[o++] = '=';
		dst[o++] = '=';
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		dst[o++] = b64_char(v >> 18);
		dst[o++] = b64_char((v >> 12) & 63);
		dst[o++] = b64_char((v >> 6) & 63);
		dst[o++] = '=';
	}
	dst[o] = '\0';
	if (len_r != NULL)
		*len_r = o;
	return 0;
}

enum base64_rc
base64_decode(const char *src, size_t n, void *dst, size_t cap, size_t *len_r,
    unsigned flags)
{
	unsigned char *out = dst;
	uint32_t acc = 0;
	size_t o = 0, q = 0, pad = 0;
	bool done = false; /* a padded quantum ended the data */
	int v;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		if (is_ws(c)) {
			if (!(flags & BASE64_WS))
				return BASE64_INVALID;
			continue;
		}
		if (done)
			return BASE64_INVALID;
		if (c == '=') {
			/* Padding stands only for the 3rd and 4th character. */
			if (q < 2)
				return BASE64_INVALID;
			pad++;
			acc <<= 6;
			if (++q < 4)
				continue;
		} else {
			if (pad > 0 || (v = b64_value(c)) < 0)
				return BASE64_INVALID;
			acc = acc << 6 | (uint32_t)v;
			if (++q < 4)
				continue;
		}
		/* A whole quantum: 3 bytes, fewer when padded. */
		if ((pad == 1 && (acc & 0xff) != 0) ||
		    (pad == 2 && (acc & 0xffff) != 0))
			return BASE64_INVALID; /* non-zero pad bits */
		if (cap - o < 3 - pad)
			return BASE64_NOSPACE;
		out[o++] = (unsigned char)(acc >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(acc >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)acc;
		done = pad > 0;
		acc = 0;
		q = 0;
	}
	if (q != 0)
		return BASE64_INVALID; /* truncated quantum or missing padding
					*/
	*len_r = o;
	return BASE64_OK;
}

/*
 * The 6-bit value of c, or -1. Each range test yields an all-ones mask
 * (the sign of the product of two differences) only inside its range; the
 * masked offsets add up to value + 1.
 */
static int
b64_value(unsigned char c)
{
	int x = c, r = -1;

	r += (((0x40 - x) & (x - 0x5b)) >> 8) & (x - 64); /* A-Z: 0..25 */
	r += (((0x60 - x) & (x - 0x7b)) >> 8) & (x - 70); /* a-z: 26..51 */
	r += (((0x2f - x) & (x - 0x3a)) >> 8) & (x + 5);  /* 0-9: 52..61 */
	r += (((0x2a - x) & (x - 0x2c)) >> 8) & 63;	  /* '+': 62 */
	r += (((0x2e - x) & (x - 0x30)) >> 8) & 64;	  /* '/': 63 */
	return r;
}

/* The character for a 6-bit value: start from 'A' + v and shift the
 * upper ranges into place with masks instead of a table lookup. */
static char
b64_char(unsigned v)
{
	int x = (int)v, c = 'A' + x;

	c += ((25 - x) >> 8) & ('a' - 'A' - 26);
	c += ((51 - x) >> 8) & ('0' - 'a' - 26);
	c += ((61 - x) >> 8) & ('+' - '0' - 10);
	c += ((62 - x) >> 8) & ('/' - '+' - 1);
	return (char)c;
}

static bool
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
