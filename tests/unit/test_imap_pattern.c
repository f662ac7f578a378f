/*
 * test_imap_pattern.c - LIST wildcard matching: RFC 3501's rules, the
 * compiled matcher against a plain backtracking one on random short
 * inputs, and patterns that made the backtracking matcher exponential.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap_pattern.h"

/* The definition, written the obvious way (exponential in the worst
 * case; only used on short strings here). */
static bool
naive(const char *pat, const char *name)
{
	for (; *pat; pat++, name++) {
		if (*pat == '*' || *pat == '%') {
			for (const char *n = name;; n++) {
				if (naive(pat + 1, n))
					return true;
				if (*n == '\0' || (*pat == '%' && *n == '/'))
					return false;
			}
		}
		if (*pat != *name)
			return false;
	}
	return *name == '\0';
}

static bool
match(const char *pat, const char *name)
{
	struct imap_pattern *p = imap_pattern_new(pat, strlen(pat), '/');
	bool r;

	assert_non_null(p);
	r = imap_pattern_match(p, name, strlen(name));
	imap_pattern_free(p);
	return r;
}

static void
test_rules(void **state)
{
	(void)state;
	assert_true(match("*", ""));
	assert_true(match("*", "a/b/c"));
	assert_true(match("%", "INBOX"));
	assert_false(match("%", "a/b"));
	assert_true(match("%/%", "a/b"));
	assert_true(match("a/*", "a/b/c"));
	assert_false(match("a/%", "a/b/c"));
	assert_true(match("a/%", "a/"));
	assert_true(match("", ""));
	assert_false(match("", "a"));
	assert_true(match("INBOX", "INBOX"));
	assert_false(match("INBOX", "INBOXx"));
	assert_false(match("INBOX", "INBO"));
	assert_true(match("%%", "abc"));
	assert_true(match("%*", "a/b"));
	assert_true(match("*%", "a/b"));
	assert_false(match("%%%", "a/b"));
	assert_true(match("a*b*c", "aXbYc"));
	assert_true(match("a*b*c", "abc"));
	assert_false(match("a*b*c", "acb"));
	assert_true(match("*x", "xxxx"));
	/* the wildcards match literal '*' and '%' too, and bytes >= 0x80 */
	assert_true(match("%", "100%*"));
	assert_true(match("caf\xc3\xa9/*", "caf\xc3\xa9/x"));
	assert_false(match("caf\xc3\xa9", "cafe"));
}

static uint32_t
next_rand(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 16;
}

/* A random string of fewer than max bytes from the first nalpha of
 * alpha, NUL-terminated; returns its length. */
static size_t
random_word(char *out, size_t max, const char *alpha, size_t nalpha,
    uint32_t *seed)
{
	size_t len = next_rand(seed) % max;

	for (size_t i = 0; i < len; i++)
		out[i] = alpha[next_rand(seed) % nalpha];
	out[len] = '\0';
	return len;
}

/* Every pattern and name over a small alphabet, the way the definition
 * says, across word boundaries of the state (patterns over 64 bytes). */
static void
test_against_definition(void **state)
{
	static const char alpha[] = "ab/*%";
	char pat[160], name[160];
	uint32_t seed = 12345;

	(void)state;
	for (int round = 0; round < 200000; round++) {
		bool long_one = round % 10 == 0;
		size_t pl = random_word(pat, long_one ? 150 : 9, alpha, 5,
		    &seed);

		/* names without wildcard bytes: "ab/" */
		random_word(name, long_one ? 150 : 10, alpha, 3, &seed);
		/* keep the reference's backtracking small: long patterns
		 * only with few wildcards */
		if (pl > 9 && (strchr(pat, '*') || strchr(pat, '%')))
			for (size_t i = 0; i < pl; i++)
				if ((pat[i] == '*' || pat[i] == '%') && i % 16)
					pat[i] = 'a';
		if (match(pat, name) != naive(pat, name))
			fail_msg("pattern \"%s\" name \"%s\": %d", pat, name,
			    naive(pat, name));
	}
}

/* The patterns that made the recursive matcher run for minutes: many
 * wildcards before a byte the name lacks, against long names. */
static void
test_hostile(void **state)
{
	char pat[IMAP_PATTERN_MAX + 2], name[1024];
	struct imap_pattern *p;

	(void)state;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	memset(pat, '*', 1000);
	strcpy(pat + 1000, "x");
	assert_false(match(pat, name));
	for (size_t i = 0; i < 2000; i += 2) {
		pat[i] = i % 4 ? '%' : '*';
		pat[i + 1] = 'a';
	}
	strcpy(pat + 2000, "x");
	assert_false(match(pat, name));
	strcpy(pat + 2000, "a");
	assert_true(match(pat, name)); /* 1001 a's needed, 1023 there */
	name[1000] = '\0';
	assert_false(match(pat, name));
	/* the longest accepted, and one more */
	memset(pat, '*', IMAP_PATTERN_MAX + 1);
	assert_non_null(p = imap_pattern_new(pat, IMAP_PATTERN_MAX, '/'));
	assert_true(imap_pattern_match(p, name, strlen(name)));
	imap_pattern_free(p);
	assert_null(imap_pattern_new(pat, IMAP_PATTERN_MAX + 1, '/'));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_against_definition),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
