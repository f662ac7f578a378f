/*
 * test_smtp_meter.c - the side-watcher of relayed submission sessions
 * (proto/smtp_meter.c): a transcript of client and server bytes in the
 * order the relay sees them, fed whole and one byte at a time, and the
 * counts that come out: messages accepted and refused with their sizes
 * (DATA with dot-stuffing and tricky almost-ends, pipelined commands,
 * BDAT chunks, a refused DATA whose would-be content are commands), QUIT
 * only as a command, and hostile input (long lines, bogus BDAT sizes,
 * more pipelined messages than it tracks) that changes counts only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/smtp_meter.h"

/* One step of a transcript: 'C' client bytes, 'S' server bytes. */
struct step {
	char who;
	const char *bytes;
};

/* Feed the transcript whole (by step) and byte by byte; both readings
 * must agree on every result. */
static void
play(const struct step *s, struct smtp_meter *out)
{
	struct smtp_meter a, b;

	smtp_meter_init(&a);
	smtp_meter_init(&b);
	for (; s->who != 0; s++) {
		size_t n = strlen(s->bytes);

		if (s->who == 'C')
			smtp_meter_client(&a, s->bytes, n);
		else
			smtp_meter_server(&a, s->bytes, n);
		for (size_t i = 0; i < n; i++) {
			if (s->who == 'C')
				smtp_meter_client(&b, s->bytes + i, 1);
			else
				smtp_meter_server(&b, s->bytes + i, 1);
		}
	}
	assert_int_equal(a.accepted, b.accepted);
	assert_int_equal(a.refused, b.refused);
	assert_int_equal(a.accepted_bytes, b.accepted_bytes);
	assert_int_equal(a.largest, b.largest);
	assert_int_equal(a.quit, b.quit);
	assert_int_equal(a.state, b.state);
	*out = a;
}

static void
test_data(void **state)
{
	/* the body is "Subject: x\r\n\r\nhello\r\n" (21 bytes) */
	static const struct step s[] = {
		{ 'C', "EHLO client.example\r\n" },
		{ 'S',
		    "250-mail.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n" },
		{ 'C', "MAIL FROM:<a@example.test>\r\n" },
		{ 'S', "250 2.1.0 Ok\r\n" },
		{ 'C', "RCPT TO:<b@example.test>\r\n" },
		{ 'S', "250 2.1.5 Ok\r\n" },
		{ 'C', "DATA\r\n" },
		{ 'S', "354 End data with <CR><LF>.<CR><LF>\r\n" },
		{ 'C', "Subject: x\r\n\r\nhello\r\n.\r\n" },
		{ 'S', "250 2.0.0 Ok: queued\r\n" },
		{ 'C', "QUIT\r\n" },
		{ 'S', "221 2.0.0 Bye\r\n" },
		{ 0, NULL },
	};
	struct smtp_meter m;

	(void)state;
	play(s, &m);
	assert_int_equal(m.accepted, 1);
	assert_int_equal(m.refused, 0);
	assert_int_equal(m.accepted_bytes, 21);
	assert_int_equal(m.largest, 21);
	assert_true(m.quit);
	assert_int_equal(m.state, SMTP_METER_CMD);
}

static void
test_pipelined_and_refused(void **state)
{
	/* RFC 2920: the group up to DATA in one write, replies in one;
	 * the second message is too big (552), the third is empty */
	static const struct step s[] = {
		{ 'C', "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n354 go\r\n" },
		{ 'C', "one\r\n.\r\n" },
		{ 'S', "250 queued\r\n" },
		{ 'C', "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n354 go\r\n" },
		{ 'C', "..leading dot\r\nx.\r\n.x\r\n\r.\r\n.\r\r\n.\r\n" },
		{ 'S', "552 5.3.4 too big\r\n" },
		{ 'C', "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n354 go\r\n" },
		{ 'C', ".\r\n" },
		{ 'S', "250 queued\r\n" },
		{ 0, NULL },
	};
	struct smtp_meter m;

	(void)state;
	play(s, &m);
	assert_int_equal(m.accepted, 2);
	assert_int_equal(m.refused, 1);
	assert_int_equal(m.accepted_bytes, 5); /* "one\r\n" and "" */
	/* "..leading dot\r\nx.\r\n.x\r\n\r.\r\n.\r\r\n" */
	assert_int_equal(m.largest, 31);
	assert_false(m.quit);
}

static void
test_data_refused(void **state)
{
	/* no valid recipient: DATA gets 554, the client goes on with
	 * commands, and "QUIT" is one of them */
	static const struct step s[] = {
		{ 'C', "MAIL FROM:<a@x>\r\nRCPT TO:<nobody@x>\r\nDATA\r\n" },
		{ 'S',
		    "250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no "
		    "valid recipients\r\n" },
		{ 'C', "RSET\r\nQUIT\r\n" },
		{ 'S', "250 ok\r\n221 bye\r\n" },
		{ 0, NULL },
	};
	struct smtp_meter m;

	(void)state;
	play(s, &m);
	assert_int_equal(m.accepted + m.refused, 0);
	assert_true(m.quit);
	assert_int_equal(m.state, SMTP_METER_CMD);
}

static void
test_quit_in_content(void **state)
{
	static const struct step s[] = {
		{ 'C', "DATA\r\n" },
		{ 'S', "354 go\r\n" },
		{ 'C', "QUIT\r\nquit\r\n" },
		{ 0, NULL },
	};
	struct smtp_meter m;

	(void)state;
	play(s, &m);
	assert_false(m.quit);
	assert_int_equal(m.state, SMTP_METER_DATA);
}

static void
test_bdat(void **state)
{
	/* RFC 3030: chunks by size, a chunk may hold "\r\n.\r\n" and
	 * "QUIT\r\n"; BDAT 0 LAST ends a message with an empty chunk */
	static const struct step s[] = {
		{ 'C', "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n" },
		{ 'C', "BDAT 13\r\nab\r\n.\r\nQUIT\r\n" },
		{ 'C', "BDAT 3 LAST\r\nxyz" },
		{ 'S', "250 2.0.0 chunk\r\n250 2.0.0 queued\r\n" },
		{ 'C',
		    "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 4\r\n1234"
		    "BDAT 0 LAST\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n250 chunk\r\n554 refused\r\n" },
		{ 0, NULL },
	};
	struct smtp_meter m;

	(void)state;
	play(s, &m);
	assert_int_equal(m.accepted, 1);
	assert_int_equal(m.accepted_bytes, 16);
	assert_int_equal(m.refused, 1);
	assert_int_equal(m.largest, 16);
	assert_false(m.quit);
	assert_int_equal(m.state, SMTP_METER_CMD);
}

static void
test_hostile(void **state)
{
	struct smtp_meter m;
	char big[4096];

	(void)state;
	smtp_meter_init(&m);
	/* a long line is one command; its tail never overflows */
	memset(big, 'A', sizeof(big));
	smtp_meter_client(&m, big, sizeof(big));
	smtp_meter_client(&m, "\r\n", 2);
	assert_int_equal(m.asked, 1);
	/* bogus BDAT sizes are commands, not chunks */
	smtp_meter_client(&m, "BDAT 99999999999999999999999\r\n", 30);
	smtp_meter_client(&m, "BDAT -1\r\nBDAT 1 FIRST\r\nBDAT\r\n", 29);
	assert_int_equal(m.state, SMTP_METER_CMD);
	assert_int_equal(m.asked, 5);
	/* BDAT with a size that fits 64 bits stays in the chunk */
	smtp_meter_client(&m, "BDAT 18446744073709551615 LAST\r\n", 32);
	smtp_meter_client(&m, big, sizeof(big));
	assert_int_equal(m.state, SMTP_METER_BDAT);
	assert_int_equal(m.size, sizeof(big));
	/* more pipelined messages than tracked: counted as unmatched */
	smtp_meter_init(&m);
	for (int i = 0; i < SMTP_METER_ENDS + 3; i++)
		smtp_meter_client(&m, "BDAT 1 LAST\r\nx", 14);
	assert_int_equal(m.nends, SMTP_METER_ENDS);
	assert_int_equal(m.unmatched, 3);
	for (int i = 0; i < SMTP_METER_ENDS + 3; i++)
		smtp_meter_server(&m, "250 ok\r\n", 8);
	assert_int_equal(m.accepted, SMTP_METER_ENDS);
	assert_int_equal(m.nends, 0);
	/* server junk: lines without a code, NULs, bare LFs */
	smtp_meter_server(&m, "\0\0\0\n\n-\n25", 9);
	assert_int_equal(m.answered, SMTP_METER_ENDS + 3 + 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_pipelined_and_refused),
		cmocka_unit_test(test_data_refused),
		cmocka_unit_test(test_quit_in_content),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
