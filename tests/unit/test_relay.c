/*
 * test_relay.c - the queue runner's pure parts: the SMTP reply reader
 * (proto/smtp_resp.c: multiline, EHLO keywords, every split, bounds,
 * enhanced status codes), the DSN writer (backend/relay_dsn.c: the three
 * parts of RFC 3464, only failed recipients, the original header with
 * CRLF) and the relay config's cross-field checks. The SMTP session
 * itself is tested against a real sink in
 * tests/integration/test_ringstore_relay.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/relay.h"
#include "backend/relay_private.h"
#include "proto/smtp_resp.h"

static const char ehlo[] = "250-mx.example\r\n250-PIPELINING\r\n"
			   "250-SIZE 1000\r\n250-starttls\r\n"
			   "250-AUTH LOGIN PLAIN\r\n250 8BITMIME\r\n"
			   "221 next reply\r\n";

/* Fed whole and split at every point: the same reply, stopping before
 * the next one. */
static void
test_resp_ehlo(void **state)
{
	size_t end = strlen(ehlo) - strlen("221 next reply\r\n");

	(void)state;
	for (size_t cut = 0; cut <= end; cut++) {
		struct smtp_resp r;
		size_t used = 0, u2 = 0;
		enum smtp_resp_rc rc;

		smtp_resp_init(&r);
		rc = smtp_resp_feed(&r, ehlo, cut, &used);
		if (rc == SMTP_RESP_MORE) {
			assert_int_equal(used, cut);
			rc = smtp_resp_feed(&r, ehlo + cut, strlen(ehlo) - cut,
			    &u2);
		}
		assert_int_equal(rc, SMTP_RESP_DONE);
		assert_int_equal(used + u2, end);
		assert_int_equal(r.code, 250);
		assert_int_equal(r.lines, 6);
		assert_int_equal(r.ext,
		    SMTP_EXT_PIPELINING | SMTP_EXT_STARTTLS |
			SMTP_EXT_AUTH_PLAIN | SMTP_EXT_8BITMIME);
		assert_string_equal(r.text,
		    "250 mx.example PIPELINING SIZE 1000 starttls AUTH LOGIN "
		    "PLAIN 8BITMIME");
	}
}

static enum smtp_resp_rc
feed(struct smtp_resp *r, const char *s)
{
	size_t used;

	smtp_resp_init(r);
	return smtp_resp_feed(r, s, strlen(s), &used);
}

static void
test_resp_forms(void **state)
{
	struct smtp_resp r;
	char st[16], big[SMTP_RESP_LINE_MAX + 16];

	(void)state;
	assert_int_equal(feed(&r, "354\n"), SMTP_RESP_DONE);
	assert_int_equal(r.code, 354);
	assert_int_equal(feed(&r, "550 5.1.1 <x@y> no\r\n"), SMTP_RESP_DONE);
	smtp_resp_status(&r, st, sizeof(st));
	assert_string_equal(st, "5.1.1");
	assert_int_equal(feed(&r, "451 try later\r\n"), SMTP_RESP_DONE);
	smtp_resp_status(&r, st, sizeof(st));
	assert_string_equal(st, "4.0.0");
	/* a code of the wrong class is not taken as the status */
	assert_int_equal(feed(&r, "451 5.1.1 odd\r\n"), SMTP_RESP_DONE);
	smtp_resp_status(&r, st, sizeof(st));
	assert_string_equal(st, "4.0.0");
	assert_int_equal(feed(&r, "250 2.0.0\r\n"), SMTP_RESP_DONE);
	smtp_resp_status(&r, st, sizeof(st));
	assert_string_equal(st, "2.0.0");
	/* control bytes never reach the text */
	assert_int_equal(feed(&r, "554 a\033[31mb\xff\r\n"), SMTP_RESP_DONE);
	assert_string_equal(r.text, "554 a?[31mb?");
	/* not replies */
	assert_int_equal(feed(&r, "250-a\r\n251 b\r\n"), SMTP_RESP_INVALID);
	assert_int_equal(feed(&r, "25\r\n"), SMTP_RESP_INVALID);
	assert_int_equal(feed(&r, "250x\r\n"), SMTP_RESP_INVALID);
	assert_int_equal(feed(&r, "150 early\r\n"), SMTP_RESP_INVALID);
	assert_int_equal(feed(&r, "HTTP/1.1 400\r\n"), SMTP_RESP_INVALID);
	memset(big, 'x', sizeof(big));
	memcpy(big, "250 ", 4);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(feed(&r, big), SMTP_RESP_INVALID);
	/* too many lines */
	smtp_resp_init(&r);
	for (unsigned i = 0; i < SMTP_RESP_LINES; i++) {
		size_t used;

		assert_int_equal(smtp_resp_feed(&r, "250-x\r\n", 7, &used),
		    SMTP_RESP_MORE);
	}
	size_t used;
	assert_int_equal(smtp_resp_feed(&r, "250-x\r\n", 7, &used),
	    SMTP_RESP_INVALID);
}

static void
test_header_len(void **state)
{
	const char *a = "A: 1\r\nB: 2\r\n\r\nbody\r\n";
	const char *b = "A: 1\nB: 2\n\nbody\n";
	const char *c = "A: 1\r\nB: 2\r\npartial";
	const char *d = "\r\nbody";

	(void)state;
	assert_int_equal(relay_dsn_header_len(a, strlen(a)), 12);
	assert_int_equal(relay_dsn_header_len(b, strlen(b)), 10);
	assert_int_equal(relay_dsn_header_len(c, strlen(c)), 12);
	assert_int_equal(relay_dsn_header_len(d, strlen(d)), 0);
}

static void
test_dsn(void **state)
{
	struct spool_rcpt rc[3] = {
		{ .addr = "sent@r.ex", .state = SPOOL_RCPT_SENT },
		{ .addr = "bad@r.ex", .state = SPOOL_RCPT_FAILED },
		{ .addr = "late@r.ex", .state = SPOOL_RCPT_FAILED },
	};
	struct spool_entry e = { .id = "0123456789abcdef0123",
		.sender = "me@local.test",
		.arrival = 86400,
		.rcpts = rc,
		.nrcpts = 3 };
	const struct relay_dsn d = { .reporting = "store.test",
		.remote = "smart.test",
		.now = 90000 };
	const char hdr[] = "Subject: hi\nFrom: <me@local.test>\n";
	char *out, *p;
	size_t len;
	int n = 0;

	(void)state;
	snprintf(rc[1].status, sizeof(rc[1].status), "5.1.1");
	snprintf(rc[1].reply, sizeof(rc[1].reply), "550 5.1.1 no such user");
	snprintf(rc[2].status, sizeof(rc[2].status), "4.4.7");
	snprintf(rc[2].reply, sizeof(rc[2].reply), "cannot connect");
	assert_int_equal(relay_dsn_build(&e, &d, hdr, strlen(hdr), &out, &len),
	    0);
	assert_int_equal(strlen(out), len);
	assert_non_null(strstr(out,
	    "From: Mail Delivery System <MAILER-DAEMON@store.test>\r\n"));
	assert_non_null(strstr(out, "To: <me@local.test>\r\n"));
	assert_non_null(strstr(out,
	    "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(out, "Reporting-MTA: dns; store.test\r\n"));
	assert_non_null(
	    strstr(out, "Arrival-Date: Fri, 02 Jan 1970 00:00:00 +0000\r\n"));
	assert_non_null(strstr(out,
	    "Final-Recipient: rfc822; bad@r.ex\r\nAction: failed\r\n"
	    "Status: 5.1.1\r\nRemote-MTA: dns; smart.test\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
	assert_non_null(strstr(out,
	    "Final-Recipient: rfc822; late@r.ex\r\nAction: failed\r\n"
	    "Status: 4.4.7\r\nDiagnostic-Code: X-ringstore; cannot "
	    "connect\r\n"));
	assert_null(strstr(out, "sent@r.ex"));
	assert_non_null(strstr(out,
	    "Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\nFrom: "
	    "<me@local.test>\r\n"));
	/* every line ends in CRLF, and the last boundary closes */
	for (p = out; (p = strchr(p, '\n')) != NULL; p++)
		assert_true(p > out && p[-1] == '\r');
	for (p = out; (p = strstr(p, "Final-Recipient")) != NULL; p++)
		n++;
	assert_int_equal(n, 2);
	assert_true(len > 4 && memcmp(out + len - 4, "--\r\n", 4) == 0);
	free(out);
}

static void
test_conf_check(void **state)
{
	struct relay_conf rc = { .retry_min = 1000, .retry_max = 2000 };
	struct cfg_error err;

	(void)state;
	assert_int_equal(relay_conf_check(&rc, &err), 0);
	assert_false(relay_conf_enabled(&rc));
	rc.smarthost = "smart.example:25";
	assert_int_equal(relay_conf_check(&rc, &err), 0);
	assert_true(relay_conf_enabled(&rc));
	rc.smarthost = "[::1]:2525";
	assert_int_equal(relay_conf_check(&rc, &err), 0);
	rc.smarthost = "smart.example";
	assert_int_equal(relay_conf_check(&rc, &err), -1);
	rc.smarthost = "smart.example:0";
	assert_int_equal(relay_conf_check(&rc, &err), -1);
	rc.smarthost = "smart.example:25x";
	assert_int_equal(relay_conf_check(&rc, &err), -1);
	rc.smarthost = "smart.example:25";
	rc.retry_min = 3000;
	assert_int_equal(relay_conf_check(&rc, &err), -1);
	rc.retry_min = 1000;
	rc.user = "u";
	assert_int_equal(relay_conf_check(&rc, &err), -1);
	rc.password_file = "/x";
	assert_int_equal(relay_conf_check(&rc, &err), 0);
}

static void
test_spool_path(void **state)
{
	struct relay_conf rc = { 0 };
	char *p;

	(void)state;
	p = relay_spool_path(&rc, "/var/mail");
	assert_string_equal(p, "/var/mail/.spool");
	free(p);
	rc.spool = "/var/spool/rs";
	p = relay_spool_path(&rc, "/var/mail");
	assert_string_equal(p, "/var/spool/rs");
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resp_ehlo),
		cmocka_unit_test(test_resp_forms),
		cmocka_unit_test(test_header_len),
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_conf_check),
		cmocka_unit_test(test_spool_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
