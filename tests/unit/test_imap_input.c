/*
 * test_imap_input.c - the IMAP input discipline (proto/imap_input.c):
 * commands, raw lines, literals (synchronizing, refused, streamed), bad
 * lines with their tags, an over-long AUTHENTICATE response that ends the
 * raw-line mode, over-large LITERAL+ swallowed or fatal, the ID budget
 * before login, and reconfiguration between commands. Every script is fed
 * whole, one byte at a time and at random split points, and must give the
 * same transcript each way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap_input_driver.h"

static struct imap_input_conf
conf_small(void)
{
	struct imap_input_conf c;

	memset(&c, 0, sizeof(c));
	c.lim.max_line = 64;
	c.lim.max_command = 256;
	c.lim.max_literal = 32;
	c.lim.max_nonsync = 32;
	c.lim.max_inline_literal = 16;
	c.lim.max_args = 32;
	c.swallow_max = 1024;
	return c;
}

/* The transcript whole, byte by byte and at 200 random splittings must
 * agree; returns it (malloc'd) for the caller's expectations. */
static char *
all_splits(const struct imap_input_conf *conf, const char *script, size_t len,
    bool refuse)
{
	size_t one = 1, cuts[16];
	char *whole = drv_run(conf, script, len, NULL, 0, refuse);
	char *bytes = drv_run(conf, script, len, &one, 1, refuse);

	assert_string_equal(bytes, whole);
	free(bytes);
	srandom(1);
	for (int round = 0; round < 200; round++) {
		char *r;

		for (size_t i = 0; i < 16; i++)
			cuts[i] = 1 + (size_t)random() % 9;
		r = drv_run(conf, script, len, cuts, 16, refuse);
		assert_string_equal(r, whole);
		free(r);
	}
	return whole;
}

static void
expect_n(const struct imap_input_conf *conf, const char *script, size_t len,
    bool refuse, const char *want)
{
	char *got = all_splits(conf, script, len, refuse);

	assert_string_equal(got, want);
	free(got);
}

static void
expect(const struct imap_input_conf *conf, const char *script, bool refuse,
    const char *want)
{
	expect_n(conf, script, strlen(script), refuse, want);
}

static void
test_commands_and_lines(void **state)
{
	struct imap_input_conf c = conf_small();

	(void)state;
	expect(&c, "a NOOP\r\nb CAPABILITY\nc UID FETCH 1 FLAGS\r\n", false,
	    "CMD a NOOP argc=0\n"
	    "CMD b CAPABILITY argc=0\n"
	    "CMD c FETCH uid argc=2\n"
	    "IDLE 1\n");
	/* AUTHENTICATE asks for a raw line; the line after is a command */
	expect(&c, "a AUTHENTICATE PLAIN\r\ndGVzdA==\r\nb NOOP\r\n", false,
	    "CMD a AUTHENTICATE argc=1\n"
	    "LINE dGVzdA==\n"
	    "CMD b NOOP argc=0\n"
	    "IDLE 1\n");
	/* an empty response line is a line too */
	expect(&c, "a AUTHENTICATE PLAIN\r\n\r\nb NOOP\r\n", false,
	    "CMD a AUTHENTICATE argc=1\n"
	    "LINE \n"
	    "CMD b NOOP argc=0\n"
	    "IDLE 1\n");
}

/* An over-long SASL response must not leave the raw-line mode on, or the
 * client's next command would be taken as its response. */
static void
test_long_line_ends_line_mode(void **state)
{
	struct imap_input_conf c = conf_small();
	char script[512];

	(void)state;
	snprintf(script, sizeof(script),
	    "a AUTHENTICATE PLAIN\r\n%0100d\r\nb NOOP\r\n", 7);
	expect(&c, script, false,
	    "CMD a AUTHENTICATE argc=1\n"
	    "BAD * Line too long toobig=0 line=1\n"
	    "CMD b NOOP argc=0\n"
	    "IDLE 1\n");
}

static void
test_bad_lines(void **state)
{
	struct imap_input_conf c = conf_small();
	char script[512];

	(void)state;
	expect(&c, "t1 LOGIN (a\r\nt2 NOOP\r\n", false,
	    "BAD t1 Unbalanced parenthesis toobig=0 line=0\n"
	    "CMD t2 NOOP argc=0\n"
	    "IDLE 1\n");
	snprintf(script, sizeof(script), "t3 NOOP %0100d\r\nt4 NOOP\r\n", 1);
	expect(&c, script, false,
	    "BAD t3 Line too long toobig=0 line=0\n"
	    "CMD t4 NOOP argc=0\n"
	    "IDLE 1\n");
	expect_n(&c, "t5 NOOP a\0b\r\nt6 NOOP\r\n", 22, false,
	    "BAD t5 NUL byte in command toobig=0 line=0\n"
	    "CMD t6 NOOP argc=0\n"
	    "IDLE 1\n");
}

static void
test_literals(void **state)
{
	struct imap_input_conf c = conf_small();

	(void)state;
	/* synchronizing, inline */
	expect(&c, "a LOGIN {3}\r\nabc pw\r\n", false,
	    "LIT 3 sync=1 streamed=0\n"
	    "CMD a LOGIN argc=2\n"
	    "IDLE 1\n");
	/* refused: the client sends nothing more for that command */
	expect(&c, "a LOGIN {3}\r\nb NOOP\r\n", true,
	    "LIT 3 sync=1 streamed=0\n"
	    "REFUSED\n"
	    "CMD b NOOP argc=0\n"
	    "IDLE 1\n");
	/* over max_inline_literal: streamed out as DATA */
	expect(&c,
	    "a APPEND INBOX {20}\r\n01234567890123456789\r\n"
	    "b NOOP\r\n",
	    false,
	    "LIT 20 sync=1 streamed=1\n"
	    "DATA 01234567890123456789\n"
	    "CMD a APPEND argc=2\n"
	    "CMD b NOOP argc=0\n"
	    "IDLE 1\n");
	/* a synchronizing literal over max_literal: NO [TOOBIG], and the
	 * client sends no data */
	expect(&c, "a APPEND INBOX {999}\r\nb NOOP\r\n", false,
	    "BAD a Literal too large toobig=1 line=0\n"
	    "CMD b NOOP argc=0\n"
	    "IDLE 1\n");
}

/* An over-large LITERAL+ is read and thrown away (nothing in it is a
 * command), then answered NO [TOOBIG]; past swallow_max, or without a
 * tag, or with swallowing off, the connection cannot be saved. */
static void
test_swallow(void **state)
{
	struct imap_input_conf c = conf_small();
	char script[2048];

	(void)state;
	snprintf(script, sizeof(script),
	    "a APPEND INBOX {40+}\r\nb LOGOUT\r\nc LOGOUT\r\nd LOGOUT\r\n"
	    "e LOGOUT x\r\nf NOOP\r\n");
	expect(&c, script, false,
	    "TOOBIG a\n"
	    "CMD f NOOP argc=0\n"
	    "IDLE 1\n");
	c.swallow_max = 0;
	expect(&c, script, false, "FATAL Literal too large\nIDLE 0\n");
	c.swallow_max = 39;
	expect(&c, script, false, "FATAL Literal too large\nIDLE 0\n");
}

/* ID before login gets the big budget; other commands keep the small. */
static void
test_big_command(void **state)
{
	struct imap_input_conf c = conf_small();
	char script[4096], val[1100];

	(void)state;
	c.lim.big_name = "ID";
	c.lim.big_line = c.lim.big_command = 2048;
	memset(val, 'v', 1024);
	val[1024] = '\0';
	snprintf(script, sizeof(script),
	    "a ID (\"name\" \"%s\")\r\nb NOOP %s\r\nc NOOP\r\n", val, val);
	expect(&c, script, false,
	    "CMD a ID argc=1\n"
	    "BAD b Line too long toobig=0 line=0\n"
	    "CMD c NOOP argc=0\n"
	    "IDLE 1\n");
}

/* Limits change between commands (after login); mid-command they do
 * not. */
static void
test_reconf(void **state)
{
	struct imap_input_conf c = conf_small(), big = conf_small();
	struct imap_input in;
	size_t used;

	(void)state;
	big.lim.max_line = big.lim.max_command = 8192;
	assert_int_equal(imap_input_init(&in, &c), 0);
	assert_int_equal(imap_input_next(&in, "a NO", 4, &used), IMAP_IN_MORE);
	assert_false(imap_input_idle(&in));
	assert_int_equal(imap_input_reconf(&in, &big), -1);
	assert_int_equal(imap_input_next(&in, "OP\r\n", 4, &used),
	    IMAP_IN_COMMAND);
	assert_int_equal(imap_input_next(&in, "", 0, &used), IMAP_IN_MORE);
	assert_true(imap_input_idle(&in));
	assert_int_equal(imap_input_reconf(&in, &big), 0);
	assert_true(in.bufsize >= 8192);
	imap_input_free(&in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands_and_lines),
		cmocka_unit_test(test_long_line_ends_line_mode),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_swallow),
		cmocka_unit_test(test_big_command),
		cmocka_unit_test(test_reconf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
