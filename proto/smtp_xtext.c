/*
 * smtp_xtext.c - xtext decoding and encoding (proto/smtp_xtext.h).
 *
 * Strict in what it reads (upper-case hex only, as RFC 3461 writes it);
 * encodes only what it must ("+", "=" and bytes outside %d33-126), so an
 * encoded value reads the same to every decoder. Never reads past n or
 * writes past cap.
 */
#include <stdint.h>

#include "proto/smtp_xtext.h"

static int hexval(unsigned char c);

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
smtp_xtext_decode(const char *src, size_t n, char *dst, size_t cap,
    size_t *len_r)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;
	int hi, lo;

	for (size_t i = 0; i < n; i++) {
		if (o == cap)
			return -1;
		if (s[i] < 33 || s[i] > 126 || s[i] == '=')
			return -1;
		if (s[i] != '+') {
			dst[o++] = (char)s[i];
			continue;
		}
		if (n - i < 3 || (hi = hexval(s[i + 1])) == -1 ||
		    (lo = hexval(s[i + 2])) == -1)
			return -1;
		dst[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	*len_r = o;
	return 0;
}

int
smtp_xtext_encode(const void *src, size_t n, char *dst, size_t cap,
    size_t *len_r)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = src;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 33 && s[i] <= 126 && s[i] != '+' && s[i] != '=') {
			if (o == cap)
				return -1;
			dst[o++] = (char)s[i];
			continue;
		}
		if (cap - o < 3)
			return -1;
		dst[o++] = '+';
		dst[o++] = hex[s[i] >> 4];
		dst[o++] = hex[s[i] & 15];
	}
	*len_r = o;
	return 0;
}
