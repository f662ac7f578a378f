/*
 * test_utf7.c - modified UTF-7: RFC 3501 examples, round trips through
 * every plane, and the non-canonical spellings the decoder must refuse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "proto/utf7.h"

static void
check_pair(const char *utf8, const char *utf7)
{
	char out[256];
	size_t n;
	const char *err = NULL;

	assert_int_equal(
	    utf7_from_utf8(utf8, strlen(utf8), out, sizeof(out), &n, &err), 0);
	assert_string_equal(out, utf7);
	assert_int_equal(n, strlen(utf7));
	assert_int_equal(
	    utf7_to_utf8(utf7, strlen(utf7), out, sizeof(out), &n, &err), 0);
	assert_string_equal(out, utf8);
	assert_true(utf7_valid(utf7, strlen(utf7)));
}

static void
test_examples(void **state)
{
	check_pair("", "");
	check_pair("INBOX", "INBOX");
	check_pair("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	check_pair("&", "&-");
	check_pair("a&b&&", "a&-b&-&-");
	/* RFC 3501 5.1.3 */
	check_pair(
	    "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
	    "\xe8\xaa\x9e",
	    "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	/* shifted run at the very end, and a lone non-ASCII char */
	check_pair("\xc3\xa9", "&AOk-");
	check_pair("Gel\xc3\xb6scht", "Gel&APY-scht");
	/* outside the BMP: a surrogate pair (U+1F600) */
	check_pair("\xf0\x9f\x98\x80", "&2D3eAA-");
	/* control characters are shifted too */
	check_pair("a\tb", "a&AAk-b");
	/* '&' right after a shifted run */
	check_pair("\xc3\xa9&", "&AOk-&-");
}

static void
test_bad_utf7(void **state)
{
	static const char *const bad[] = {
		"&",	      /* unterminated */
		"&AOk",	      /* unterminated */
		"&AGE-",      /* 'a' encoded: must be direct */
		"&AOk-&AOk-", /* adjacent runs: canonical is one */
		"&AOl-",      /* non-zero padding bits */
		"&AO-",	      /* incomplete UTF-16 unit */
		"&AOkA-",     /* extra sextet */
		"&2D0-",      /* truncated */
		"&2D3YPQ-",   /* high surrogate followed by high surrogate */
		"&3gA-",      /* lone low surrogate */
		"&2D0AZQ-",   /* high surrogate then 'e' */
		"&AOk/-",     /* '/' is not in the modified alphabet */
		"&=-",	      /* not base64 */
		"a\x80",      /* 8-bit on the wire */
		"a\tb",	      /* control on the wire */
		"&AAA-",      /* U+0000 */
	};
	char out[64];
	size_t n;
	const char *err = NULL;

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		assert_int_equal(utf7_to_utf8(bad[k], strlen(bad[k]), out,
				     sizeof(out), &n, &err),
		    -1);
		assert_false(utf7_valid(bad[k], strlen(bad[k])));
		assert_non_null(err);
	}
}

static void
test_bad_utf8(void **state)
{
	static const char *const bad[] = {
		"\xc3",		    /* truncated */
		"\xc0\xaf",	    /* overlong */
		"\xed\xa0\x80",	    /* surrogate */
		"\xf4\x90\x80\x80", /* above U+10FFFF */
		"\xff",
		"a\x80",
	};
	char out[64];
	size_t n;
	const char *err = NULL;

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(utf7_from_utf8(bad[k], strlen(bad[k]), out,
				     sizeof(out), &n, &err),
		    -1);
	assert_int_equal(utf7_from_utf8("a\0b", 3, out, sizeof(out), &n, &err),
	    -1);
}

static void
test_short_buffer(void **state)
{
	char out[16];
	size_t n;
	const char *err = NULL;

	/* "Entw&APw-rfe" needs 13 bytes with the NUL */
	assert_int_equal(
	    utf7_from_utf8("Entw\xc3\xbcrfe", 9, out, 12, &n, &err), -1);
	assert_string_equal(err, "Mailbox name too long");
	assert_int_equal(utf7_to_utf8("abcdefgh", 8, out, 8, &n, &err), -1);
	assert_int_equal(utf7_to_utf8("abcdefg", 7, out, 8, &n, &err), 0);
	assert_string_equal(out, "abcdefg");
}

/* Every BMP code point (minus surrogates) and a sample of the astral ones
 * survive the round trip, alone and between ASCII. */
static void
test_round_trip_all(void **state)
{
	for (uint32_t cp = 1; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 97) {
		char u8[16], u7[64], back[16];
		size_t n8 = 0, n7, nb;
		const char *err = NULL;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		u8[n8++] = 'x';
		if (cp < 0x80) {
			u8[n8++] = (char)cp;
		} else if (cp < 0x800) {
			u8[n8++] = (char)(0xc0 | (cp >> 6));
			u8[n8++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			u8[n8++] = (char)(0xe0 | (cp >> 12));
			u8[n8++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u8[n8++] = (char)(0x80 | (cp & 0x3f));
		} else {
			u8[n8++] = (char)(0xf0 | (cp >> 18));
			u8[n8++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			u8[n8++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u8[n8++] = (char)(0x80 | (cp & 0x3f));
		}
		u8[n8++] = 'y';
		assert_int_equal(
		    utf7_from_utf8(u8, n8, u7, sizeof(u7), &n7, &err), 0);
		assert_true(utf7_valid(u7, n7));
		assert_int_equal(
		    utf7_to_utf8(u7, n7, back, sizeof(back), &nb, &err), 0);
		assert_int_equal(nb, n8);
		assert_memory_equal(back, u8, n8);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_bad_utf7),
		cmocka_unit_test(test_bad_utf8),
		cmocka_unit_test(test_short_buffer),
		cmocka_unit_test(test_round_trip_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
