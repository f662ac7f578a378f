/*
 * test_base64.c - RFC 4648 section 10 vectors, strictness (alphabet,
 * padding, pad bits, whitespace), buffer limits, overflow-safe lengths,
 * and a round trip against a naive reference encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base64.h"

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const struct {
	const char *raw, *enc;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

/* Decode a NUL-terminated string; returns the rc, output in out. */
static enum base64_rc
dec(const char *s, unsigned flags, unsigned char *out, size_t cap, size_t *len)
{
	*len = (size_t)-1;
	return base64_decode(s, strlen(s), out, cap, len, flags);
}

static void
test_rfc4648_vectors(void **state)
{
	char enc[64];
	unsigned char raw[64];
	size_t len;

	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t rl = strlen(rfc4648[i].raw);

		assert_int_equal(
		    base64_encode(rfc4648[i].raw, rl, enc, sizeof(enc), &len),
		    0);
		assert_string_equal(enc, rfc4648[i].enc);
		assert_int_equal(len, strlen(rfc4648[i].enc));
		assert_int_equal(dec(rfc4648[i].enc, 0, raw, sizeof(raw), &len),
		    BASE64_OK);
		assert_int_equal(len, rl);
		assert_memory_equal(raw, rfc4648[i].raw, rl);
	}
}

static void
test_invalid(void **state)
{
	static const char *bad[] = {
		"Zg",	    /* missing padding */
		"Zg=",	    /* half padding */
		"Z===",	    /* too much padding */
		"====",	    /* padding only */
		"=",	    /* padding only */
		"Zm9v=",    /* padding after a whole quantum */
		"Zg==Zg==", /* data after padding */
		"Zg==Z",    /* data after padding */
		"Zg=a",	    /* data inside padding */
		"Zh==",	    /* non-zero pad bits */
		"Zm9=",	    /* non-zero pad bits */
		"Zm-v",	    /* URL-safe alphabet */
		"Zm_v",	    /* URL-safe alphabet */
		"Zm9v.",    /* stray character */
		"Zm 9v",    /* whitespace without BASE64_WS */
		"Zm9v\r\n", /* line end without BASE64_WS */
		"Zm9\x80",  /* high byte */
		"A",
		"AB",
		"ABC",
	};
	unsigned char raw[64];
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dec(bad[i], 0, raw, sizeof(raw), &len),
		    BASE64_INVALID);
	/* an embedded NUL is just another bad character */
	assert_int_equal(base64_decode("Zm\0v", 4, raw, sizeof(raw), &len, 0),
	    BASE64_INVALID);
}

static void
test_whitespace_flag(void **state)
{
	unsigned char raw[64];
	size_t len;

	assert_int_equal(
	    dec(" Zm 9v\tYm\r\nFy \n", BASE64_WS, raw, sizeof(raw), &len),
	    BASE64_OK);
	assert_int_equal(len, 6);
	assert_memory_equal(raw, "foobar", 6);
	assert_int_equal(dec("Zg= =", BASE64_WS, raw, sizeof(raw), &len),
	    BASE64_OK);
	assert_int_equal(len, 1);
	assert_int_equal(dec("Zg== \r\n", BASE64_WS, raw, sizeof(raw), &len),
	    BASE64_OK);
	/* whitespace never excuses bad padding */
	assert_int_equal(dec("Zg ", BASE64_WS, raw, sizeof(raw), &len),
	    BASE64_INVALID);
	assert_int_equal(dec("Zg== x", BASE64_WS, raw, sizeof(raw), &len),
	    BASE64_INVALID);
	assert_int_equal(dec(" \r\n", BASE64_WS, raw, sizeof(raw), &len),
	    BASE64_OK);
	assert_int_equal(len, 0);
}

/* Every byte value, as the first character of a padded quantum. */
static void
test_every_character(void **state)
{
	unsigned char raw[4];
	char in[4] = { 0, 'A', '=', '=' };
	size_t len;

	for (int c = 0; c < 256; c++) {
		bool ok = c != 0 && strchr(ALPHABET, c) != NULL;

		in[0] = (char)c;
		assert_int_equal(
		    base64_decode(in, 4, raw, sizeof(raw), &len, 0),
		    ok ? BASE64_OK : BASE64_INVALID);
		if (ok) {
			assert_int_equal(len, 1);
			assert_int_equal(raw[0],
			    (unsigned)(strchr(ALPHABET, c) - ALPHABET) << 2);
		}
	}
}

static void
test_buffer_limits(void **state)
{
	unsigned char raw[8];
	char enc[8];
	size_t len;

	assert_int_equal(dec("Zm9v", 0, raw, 2, &len), BASE64_NOSPACE);
	assert_int_equal(dec("Zm9v", 0, raw, 3, &len), BASE64_OK);
	assert_int_equal(dec("Zm9vYg==", 0, raw, 3, &len), BASE64_NOSPACE);
	assert_int_equal(dec("Zm9vYg==", 0, raw, 4, &len), BASE64_OK);
	/* encoding needs the NUL too; a refused encode writes nothing */
	memset(enc, 'x', sizeof(enc));
	assert_int_equal(base64_encode("foo", 3, enc, 4, &len), -1);
	assert_int_equal(enc[0], 'x');
	assert_int_equal(base64_encode("foo", 3, enc, 5, NULL), 0);
	assert_string_equal(enc, "Zm9v");
}

static void
test_lengths(void **state)
{
	size_t len;

	assert_int_equal(base64_encoded_len(0, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(base64_encoded_len(1, &len), 0);
	assert_int_equal(len, 4);
	assert_int_equal(base64_encoded_len(3, &len), 0);
	assert_int_equal(len, 4);
	assert_int_equal(base64_encoded_len(4, &len), 0);
	assert_int_equal(len, 8);
	assert_int_equal(base64_encoded_len(SIZE_MAX, &len), -1);
	assert_int_equal(base64_encoded_len(SIZE_MAX / 4 * 3 + 1, &len), -1);
	assert_int_equal(base64_encoded_len(SIZE_MAX / 4 * 3, &len), 0);
	assert_int_equal(len, SIZE_MAX - 3);
	assert_int_equal(base64_encoded_len(SIZE_MAX / 8 * 3, &len), 0);
	assert_true(len < SIZE_MAX);
	assert_int_equal(base64_decoded_max(0), 0);
	assert_int_equal(base64_decoded_max(4), 3);
	assert_int_equal(base64_decoded_max(7), 3);
	assert_true(base64_decoded_max(SIZE_MAX) <= SIZE_MAX / 4 * 3);
}

/* The obvious table-driven encoder, to compare against. */
static void
ref_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		out[o++] = ALPHABET[v >> 18];
		out[o++] = ALPHABET[(v >> 12) & 63];
		out[o++] = left > 1 ? ALPHABET[(v >> 6) & 63] : '=';
		out[o++] = left > 2 ? ALPHABET[v & 63] : '=';
	}
	out[o] = '\0';
}

static void
test_round_trip(void **state)
{
	unsigned char raw[300], back[300];
	char enc[401], ref[401];
	size_t len, blen;

	srandom(4648);
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)random() % sizeof(raw);

		for (size_t i = 0; i < n; i++)
			raw[i] = (unsigned char)random();
		assert_int_equal(base64_encode(raw, n, enc, sizeof(enc), &len),
		    0);
		ref_encode(raw, n, ref);
		assert_string_equal(enc, ref);
		assert_int_equal(
		    base64_decode(enc, len, back, sizeof(back), &blen, 0),
		    BASE64_OK);
		assert_int_equal(blen, n);
		assert_memory_equal(back, raw, n);
		assert_true(blen <= base64_decoded_max(len));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_whitespace_flag),
		cmocka_unit_test(test_every_character),
		cmocka_unit_test(test_buffer_limits),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
