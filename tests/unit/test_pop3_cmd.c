/*
 * test_pop3_cmd.c - the POP3 command line parser (proto/pop3_cmd.c).
 *
 * Every line is parsed from its own exactly-sized heap copy (a read past
 * the line is an ASan report) and checked for the contract: an error text
 * exactly when refused, slices inside the line. The RFC 1939, 2449, 5034
 * and 2595 examples first, then the hostile lines: argument counts, the
 * 255-octet limit, NUL, CR, LF, TAB, 8-bit bytes, numbers past 2^31-1,
 * signs, leading zeros, spaces doubled or trailing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/pop3_cmd.h"

static char *last_line;
static struct pop3_cmd cmd;

static void
check_slice(const struct pop3_str *s, const char *line, size_t len)
{
	if (s->p == NULL) {
		assert_int_equal(s->len, 0);
		return;
	}
	assert_true(s->p >= line && s->p + s->len <= line + len);
}

static enum pop3_cmd_rc
parse_n(const char *line, size_t len)
{
	enum pop3_cmd_rc rc;

	free(last_line);
	last_line = malloc(len ? len : 1);
	assert_non_null(last_line);
	memcpy(last_line, line, len);
	rc = pop3_cmd_parse(&cmd, last_line, len);
	if (rc == POP3_CMD_OK) {
		assert_null(cmd.error);
	} else {
		assert_int_equal(rc, POP3_CMD_INVALID);
		assert_non_null(cmd.error);
		assert_true(strlen(cmd.error) > 0);
	}
	check_slice(&cmd.arg, last_line, len);
	check_slice(&cmd.arg2, last_line, len);
	return rc;
}

static void
ok_n(const char *line, size_t len, enum pop3_verb verb)
{
	if (parse_n(line, len) != POP3_CMD_OK)
		fail_msg("'%.*s': -ERR %s", (int)len, line, cmd.error);
	assert_int_equal(cmd.verb, verb);
}

static void
bad_n(const char *line, size_t len, enum pop3_verb verb)
{
	if (parse_n(line, len) != POP3_CMD_INVALID)
		fail_msg("'%.*s' was accepted", (int)len, line);
	if (cmd.verb != verb)
		fail_msg("'%.*s': verb %d, want %d", (int)len, line,
		    (int)cmd.verb, (int)verb);
}

#define OK(line, verb) ok_n(line, strlen(line), verb)
#define BAD(line, verb) bad_n(line, strlen(line), verb)

static void
assert_str(struct pop3_str s, const char *want)
{
	if (s.p == NULL)
		fail_msg("absent, want '%s'", want);
	if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
		fail_msg("'%.*s', want '%s'", (int)s.len, s.p, want);
}

/* RFC 1939 section 10 and the examples of sections 5 to 7 */
static void
test_rfc1939(void **state)
{
	OK("USER mrose", POP3_USER);
	assert_str(cmd.arg, "mrose");
	OK("PASS secret", POP3_PASS);
	assert_str(cmd.arg, "secret");
	OK("APOP mrose c4c9334bac560ecc979e58001b3e22fb", POP3_APOP);
	assert_str(cmd.arg, "mrose");
	assert_str(cmd.arg2, "c4c9334bac560ecc979e58001b3e22fb");
	OK("STAT", POP3_STAT);
	OK("LIST", POP3_LIST);
	assert_false(cmd.has_msg);
	OK("LIST 2", POP3_LIST);
	assert_true(cmd.has_msg);
	assert_int_equal(cmd.msg, 2);
	OK("RETR 1", POP3_RETR);
	assert_int_equal(cmd.msg, 1);
	OK("DELE 1", POP3_DELE);
	OK("NOOP", POP3_NOOP);
	OK("RSET", POP3_RSET);
	OK("QUIT", POP3_QUIT);
	OK("TOP 1 10", POP3_TOP);
	assert_int_equal(cmd.msg, 1);
	assert_int_equal(cmd.lines, 10);
	OK("TOP 100 3", POP3_TOP);
	OK("TOP 1 0", POP3_TOP);
	assert_int_equal(cmd.lines, 0);
	OK("UIDL", POP3_UIDL);
	assert_false(cmd.has_msg);
	OK("UIDL 2", POP3_UIDL);
	assert_int_equal(cmd.msg, 2);
	assert_string_equal(pop3_verb_name(POP3_UIDL), "UIDL");
	assert_string_equal(pop3_verb_name(POP3_UNKNOWN), "");
}

/* RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH */
static void
test_extensions(void **state)
{
	OK("CAPA", POP3_CAPA);
	OK("STLS", POP3_STLS);
	OK("AUTH", POP3_AUTH);
	assert_null(cmd.arg.p);
	OK("AUTH PLAIN", POP3_AUTH);
	assert_string_equal(cmd.mech, "PLAIN");
	assert_null(cmd.arg2.p);
	OK("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", POP3_AUTH);
	assert_str(cmd.arg2, "dGVzdAB0ZXN0AHRlc3Q=");
	OK("AUTH PLAIN =", POP3_AUTH);
	assert_non_null(cmd.arg2.p);
	assert_int_equal(cmd.arg2.len, 0);
	OK("auth scram-sha-256", POP3_AUTH);
	assert_string_equal(cmd.mech, "SCRAM-SHA-256");
	assert_str(cmd.arg, "scram-sha-256");
	BAD("AUTH ABCDEFGHIJKLMNOPQRSTU", POP3_AUTH);
	BAD("AUTH PL.AIN", POP3_AUTH);
	BAD("AUTH PLAIN a b", POP3_AUTH);
	BAD("AUTH PLAIN a=b", POP3_AUTH);
	BAD("AUTH PLAIN a===", POP3_AUTH);
	BAD("AUTH PLAIN ", POP3_AUTH);
	BAD("AUTH ", POP3_AUTH);
	BAD("CAPA x", POP3_CAPA);
	BAD("STLS ", POP3_STLS);
	/* the initial response is not held to 255 (RFC 5034 4) */
	{
		char line[2100];

		memcpy(line, "AUTH PLAIN ", 11);
		memset(line + 11, 'A', 2000);
		ok_n(line, 2011, POP3_AUTH);
		assert_int_equal(cmd.arg2.len, 2000);
	}
}

static void
test_case_and_unknown(void **state)
{
	OK("user MRose", POP3_USER);
	assert_str(cmd.arg, "MRose");
	OK("Retr 1", POP3_RETR);
	OK("sTlS", POP3_STLS);
	BAD("XTND XMIT", POP3_UNKNOWN);
	BAD("", POP3_UNKNOWN);
	BAD(" USER a", POP3_UNKNOWN);
	BAD("USERS a", POP3_UNKNOWN);
	BAD("RETRIEVE 1", POP3_UNKNOWN);
	BAD("US", POP3_UNKNOWN);
	BAD("\xc3\xa9TAT", POP3_UNKNOWN);
	assert_string_equal(cmd.error, "Unknown command");
}

static void
test_argument_counts(void **state)
{
	BAD("STAT 1", POP3_STAT);
	BAD("QUIT now", POP3_QUIT);
	BAD("NOOP ", POP3_NOOP);
	BAD("RSET x", POP3_RSET);
	BAD("RETR", POP3_RETR);
	BAD("RETR ", POP3_RETR);
	BAD("RETR 1 2", POP3_RETR);
	BAD("DELE", POP3_DELE);
	BAD("LIST 1 2", POP3_LIST);
	BAD("LIST ", POP3_LIST);
	BAD("UIDL 1 2", POP3_UIDL);
	BAD("TOP", POP3_TOP);
	BAD("TOP 1", POP3_TOP);
	BAD("TOP 1 2 3", POP3_TOP);
	BAD("USER", POP3_USER);
	BAD("USER ", POP3_USER);
	BAD("USER a b", POP3_USER);
	BAD("APOP mrose", POP3_APOP);
	BAD("APOP", POP3_APOP);
	BAD("APOP a b c", POP3_APOP);
	BAD("PASS", POP3_PASS);
	BAD("PASS ", POP3_PASS);
	/* single spaces, none at the end */
	BAD("RETR  1", POP3_RETR);
	BAD("RETR 1 ", POP3_RETR);
	BAD("TOP 1  2", POP3_TOP);
	BAD("USER a ", POP3_USER);
	assert_string_equal(cmd.error, "Arguments are separated by one space");
}

/* PASS takes the rest of the line, spaces, 8-bit and TAB included */
static void
test_pass(void **state)
{
	OK("PASS correct horse battery staple", POP3_PASS);
	assert_str(cmd.arg, "correct horse battery staple");
	OK("PASS  leading", POP3_PASS);
	assert_str(cmd.arg, " leading");
	OK("PASS trailing ", POP3_PASS);
	assert_str(cmd.arg, "trailing ");
	OK("PASS p\xc3\xa4ss", POP3_PASS);
	OK("PASS a\tb", POP3_PASS);
	assert_str(cmd.arg, "a\tb");
	OK("PASS \xff\xfe", POP3_PASS);
	OK("PASS \tx", POP3_PASS);
	assert_str(cmd.arg, "\tx");
	BAD("PASS\tsecret", POP3_PASS);
	BAD("PASS\t", POP3_PASS);
	bad_n("PASS a\0b", 8, POP3_PASS);
	BAD("PASS a\rb", POP3_PASS);
	BAD("PASS a\nb", POP3_PASS);
	/* 255 octets at most */
	{
		char line[300];

		memcpy(line, "PASS ", 5);
		memset(line + 5, 'p', 256);
		ok_n(line, 5 + 255, POP3_PASS);
		bad_n(line, 5 + 256, POP3_PASS);
		assert_string_equal(cmd.error, "Argument too long");
	}
}

static void
test_numbers(void **state)
{
	OK("RETR 2147483647", POP3_RETR);
	assert_int_equal(cmd.msg, 2147483647u);
	BAD("RETR 2147483648", POP3_RETR);
	assert_string_equal(cmd.error, "Invalid message number");
	BAD("RETR 4294967297", POP3_RETR); /* wraps to 1 in 32 bits */
	BAD("RETR 18446744073709551617", POP3_RETR);
	BAD("RETR 99999999999999999999999999999999", POP3_RETR);
	BAD("RETR 0", POP3_RETR);
	BAD("RETR 01", POP3_RETR);
	BAD("RETR 00", POP3_RETR);
	BAD("RETR -1", POP3_RETR);
	BAD("RETR +1", POP3_RETR);
	BAD("RETR 1a", POP3_RETR);
	BAD("RETR 0x10", POP3_RETR);
	BAD("RETR 1.0", POP3_RETR);
	BAD("RETR \xd9\xa1", POP3_RETR); /* ARABIC-INDIC DIGIT ONE */
	BAD("DELE 0", POP3_DELE);
	BAD("LIST 0", POP3_LIST);
	BAD("UIDL -5", POP3_UIDL);
	OK("TOP 5 2147483647", POP3_TOP);
	assert_int_equal(cmd.lines, 2147483647u);
	BAD("TOP 5 2147483648", POP3_TOP);
	assert_string_equal(cmd.error, "Invalid number of lines");
	BAD("TOP 5 00", POP3_TOP);
	BAD("TOP 5 -1", POP3_TOP);
	BAD("TOP 0 5", POP3_TOP);
}

static void
test_controls_and_8bit(void **state)
{
	bad_n("RETR 1\0", 7, POP3_RETR);
	assert_string_equal(cmd.error, "Invalid character in command");
	bad_n("\0", 1, POP3_UNKNOWN);
	bad_n("USER a\0b", 8, POP3_USER);
	BAD("USER a\tb", POP3_USER);
	BAD("USER a\rb", POP3_USER);
	BAD("QUIT\r", POP3_QUIT);
	BAD("RETR 1\n", POP3_RETR);
	BAD("NOOP\x7f", POP3_NOOP);
	BAD("STAT\x1b", POP3_STAT);
	/* UTF-8 names (RFC 6856 UTF8 users) */
	OK("USER j\xc3\xb6rg", POP3_USER);
	OK("APOP j\xc3\xb6rg c4c9334bac560ecc979e58001b3e22fb", POP3_APOP);
}

static void
test_apop_digest(void **state)
{
	BAD("APOP mrose C4C9334BAC560ECC979E58001B3E22FB", POP3_APOP);
	BAD("APOP mrose c4c9334bac560ecc979e58001b3e22f", POP3_APOP);
	BAD("APOP mrose c4c9334bac560ecc979e58001b3e22fbb", POP3_APOP);
	BAD("APOP mrose c4c9334bac560ecc979e58001b3e22fg", POP3_APOP);
	assert_string_equal(cmd.error, "Invalid APOP digest");
}

static void
test_argument_limit(void **state)
{
	static const char digest[] = "c4c9334bac560ecc979e58001b3e22fb";
	char line[600];

	memcpy(line, "USER ", 5);
	memset(line + 5, 'u', 300);
	ok_n(line, 5 + 255, POP3_USER);
	bad_n(line, 5 + 256, POP3_USER);
	assert_string_equal(cmd.error, "Argument too long");
	/* APOP's name: 255 fits, 256 does not */
	memcpy(line, "APOP ", 5);
	memset(line + 5, 'u', 256);
	line[5 + 256] = ' ';
	memcpy(line + 5 + 256 + 1, digest, 32);
	bad_n(line, 5 + 256 + 1 + 32, POP3_APOP);
	assert_string_equal(cmd.error, "Argument too long");
	line[5 + 255] = ' ';
	memcpy(line + 5 + 255 + 1, digest, 32);
	ok_n(line, 5 + 255 + 1 + 32, POP3_APOP);
	assert_int_equal(cmd.arg.len, 255);
}

/* Far past any limit: refused with a text, never a crash. */
static void
test_huge(void **state)
{
	size_t n = 100000;
	char *s = malloc(n);

	assert_non_null(s);
	memset(s, 'A', n);
	bad_n(s, n, POP3_UNKNOWN);
	memcpy(s, "RETR ", 5);
	memset(s + 5, '9', n - 5);
	bad_n(s, n, POP3_RETR);
	memcpy(s, "TOP ", 4);
	for (size_t i = 4; i + 2 <= n; i += 2)
		memcpy(s + i, "1 ", 2);
	bad_n(s, n, POP3_TOP);
	memset(s + 4, ' ', n - 4);
	bad_n(s, n, POP3_TOP);
	free(s);
}

static int
teardown(void **state)
{
	free(last_line);
	last_line = NULL;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_rfc1939, teardown),
		cmocka_unit_test_teardown(test_extensions, teardown),
		cmocka_unit_test_teardown(test_case_and_unknown, teardown),
		cmocka_unit_test_teardown(test_argument_counts, teardown),
		cmocka_unit_test_teardown(test_pass, teardown),
		cmocka_unit_test_teardown(test_numbers, teardown),
		cmocka_unit_test_teardown(test_controls_and_8bit, teardown),
		cmocka_unit_test_teardown(test_apop_digest, teardown),
		cmocka_unit_test_teardown(test_argument_limit, teardown),
		cmocka_unit_test_teardown(test_huge, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
