/*
 * test_mime_walk.c - the streaming MIME walk: leaves, types, file names
 * (RFC 2231 with continuations and charsets, RFC 2047 B and Q words,
 * name.pdf.exe, long names), offsets, nested multiparts and encapsulated
 * messages, a missing close delimiter, and every limit. Each message is
 * walked in one piece, one byte at a time and at random split points, and
 * the three must report the same.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/mime_walk_driver.h"

/* Walk msg whole, byte by byte and at random cuts; all must agree. */
static void
walk(const char *msg, const struct mime_walk_limits *lim, struct mw_result *r)
{
	size_t len = strlen(msg);
	size_t *cuts = calloc(len + 1, sizeof(*cuts));
	struct mw_result *other = malloc(sizeof(*other));
	unsigned seed = 11;

	assert_non_null(cuts);
	assert_non_null(other);
	mw_run(msg, len, lim, NULL, 0, r);
	for (size_t k = 0; k < len; k++)
		cuts[k] = k + 1;
	mw_run(msg, len, lim, cuts, len, other);
	assert_true(mw_same(r, other));
	for (int round = 0; round < 20; round++) {
		size_t n = 0, pos = 0;

		while (pos < len) {
			seed = seed * 1103515245u + 12345u;
			pos += 1 + (seed >> 16) % 97;
			if (pos < len)
				cuts[n++] = pos;
		}
		mw_run(msg, len, lim, cuts, n, other);
		assert_true(mw_same(r, other));
	}
	free(cuts);
	free(other);
}

static void
check_span(const char *msg, const struct mime_walk_part *p, const char *hdr,
    const char *body)
{
	size_t hl = strlen(hdr), bl = strlen(body);

	assert_int_equal(p->body_off - p->hdr_off, hl);
	assert_memory_equal(msg + p->hdr_off, hdr, hl);
	assert_int_equal(p->end_off - p->body_off, bl);
	assert_memory_equal(msg + p->body_off, body, bl);
}

static void
test_single(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\nhello\r\n";
	struct mw_result r;

	(void)state;
	walk(msg, NULL, &r);
	assert_int_equal(r.status, MIME_WALK_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.parts[0].type, "text/plain");
	assert_int_equal(r.parts[0].nnames, 0);
	assert_int_equal(r.parts[0].depth, 0);
	check_span(msg, &r.parts[0], "Subject: x\r\n\r\n", "hello\r\n");
}

static const char mixed[] =
    "From: a@b\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "body text\r\n"
    "--XX\r\n"
    "Content-Type: application/pdf; name=\"ignored.pdf\"\r\n"
    "Content-Disposition: attachment;\r\n"
    "\tfilename=\"report.PDF.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "TVqQAAMAAAAEAAAA\r\n"
    "--XX--  \r\n"
    "epilogue --XX\r\n";

static void
test_mixed(void **state)
{
	struct mw_result r;

	(void)state;
	walk(mixed, NULL, &r);
	assert_int_equal(r.status, MIME_WALK_OK);
	assert_int_equal(r.n, 2);
	check_span(mixed, &r.parts[0], "Content-Type: text/plain\r\n\r\n",
	    "body text");
	assert_int_equal(r.parts[1].depth, 1);
	assert_string_equal(r.parts[1].type, "application/pdf");
	assert_string_equal(r.parts[1].disposition, "attachment");
	assert_string_equal(r.parts[1].encoding, "base64");
	assert_int_equal(r.parts[1].nnames, 2);
	/* the disposition's name first, whatever the field order */
	assert_string_equal(r.parts[1].names[0].s, "report.PDF.exe");
	assert_string_equal(r.parts[1].names[1].s, "ignored.pdf");
	assert_memory_equal(mixed + r.parts[1].body_off,
	    "TVqQAAMAAAAEAAAA\r\n--XX--", 24);
	assert_int_equal(r.parts[1].end_off - r.parts[1].body_off, 16);
}

static void
test_rfc2231(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n"
	    "Content-Disposition: attachment;\r\n"
	    " filename*0*=utf-8'en'%E2%82%AC%20pay;\r\n"
	    " filename*1*=ment%2E;\r\n"
	    " filename*2=\"pdf.exe\"\r\n\r\nx\r\n"
	    "--b\r\n"
	    "Content-Disposition: attachment; filename*=iso-8859-1''caf%E9.JS\r\n"
	    "\r\ny\r\n"
	    "--b\r\n"
	    "Content-Type: application/octet-stream; name*=\"''%41.scr\"\r\n"
	    "\r\nz\r\n"
	    "--b--\r\n";
	struct mw_result r;

	(void)state;
	walk(msg, NULL, &r);
	assert_int_equal(r.status, MIME_WALK_OK);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.parts[0].nnames, 1);
	assert_string_equal(r.parts[0].names[0].s,
	    "\xe2\x82\xac payment.pdf.exe");
	assert_string_equal(r.parts[1].names[0].s, "caf\xe9.JS");
	assert_string_equal(r.parts[2].names[0].s, "A.scr");
}

static void
test_encoded_words(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n"
	    "Content-Type: application/x-foo;\r\n"
	    " name=\"=?utf-8?B?ZXZpbC5wZGYuZXhl?=\"\r\n\r\nx\r\n"
	    "--b\r\n"
	    "Content-Disposition: attachment;\r\n"
	    " filename==?iso-8859-1?Q?caf=E9_x?= =?us-ascii?q?.vbs?=\r\n"
	    "\r\ny\r\n"
	    "--b--\r\n";
	struct mw_result r;

	(void)state;
	walk(msg, NULL, &r);
	assert_int_equal(r.status, MIME_WALK_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.parts[0].names[0].s, "evil.pdf.exe");
	/* unquoted and lenient: up to the white space, or to the ';' */
	assert_int_equal(r.parts[1].nnames, 2);
	assert_string_equal(r.parts[1].names[0].s, "caf\xe9 x");
	assert_string_equal(r.parts[1].names[1].s, "caf\xe9 x.vbs");
}

static void
test_long_name(void **state)
{
	char msg[4096], name[1501];
	struct mw_result r;

	(void)state;
	memset(name, 'A', 1496);
	memcpy(name + 1496, ".exe", 5);
	snprintf(msg, sizeof(msg),
	    "Content-Disposition: attachment; filename=\"%s\"\r\n\r\nx\r\n",
	    name);
	walk(msg, NULL, &r);
	assert_int_equal(r.n, 1);
	assert_true(r.parts[0].names[0].cut);
	assert_int_equal(r.parts[0].names[0].len, MIME_WALK_NAME_MAX - 1);
	assert_memory_equal(r.parts[0].names[0].s + r.parts[0].names[0].len - 4,
	    ".exe", 4);
	assert_memory_equal(r.parts[0].names[0].s + 96, "...", 3);
}

static void
test_nested(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
	    "--outer\r\n"
	    "Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
	    "--inner\r\n\r\nplain\r\n"
	    "--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
	    /* no close of inner: the outer delimiter ends it */
	    "--outer\r\n"
	    "Content-Type: message/rfc822\r\n\r\n"
	    "Subject: fwd\r\n"
	    "Content-Type: multipart/mixed; boundary=m\r\n\r\n"
	    "--m\r\n"
	    "Content-Type: application/x-msdownload; name=a.dll\r\n\r\nMZ\r\n"
	    "--m--\r\n"
	    "--outer\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA==\r\n"
	    "--outer--\r\n";
	struct mw_result r;

	(void)state;
	walk(msg, NULL, &r);
	assert_int_equal(r.status, MIME_WALK_OK);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.parts[0].type, "text/plain");
	assert_int_equal(r.parts[0].depth, 2);
	assert_string_equal(r.parts[1].type, "text/html");
	assert_int_equal(r.parts[1].end_off - r.parts[1].body_off, 11);
	assert_string_equal(r.parts[2].type, "application/x-msdownload");
	assert_true(r.parts[2].in_message);
	assert_int_equal(r.parts[2].depth, 3);
	assert_string_equal(r.parts[2].names[0].s, "a.dll");
	/* base64 message/rfc822: cannot be walked into, a leaf */
	assert_string_equal(r.parts[3].type, "message/rfc822");
	assert_false(r.parts[3].in_message);
}

static void
test_no_close(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=\"q\"\r\n\r\n"
	    "--q\r\n\r\none\r\n"
	    "--q \t\r\n"
	    "Content-Type: application/hta\r\n\r\ntwo\r\nlast";
	struct mw_result r;

	(void)state;
	walk(msg, NULL, &r);
	assert_int_equal(r.status, MIME_WALK_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.parts[1].type, "application/hta");
	assert_int_equal(r.parts[1].end_off, strlen(msg));
	assert_memory_equal(msg + r.parts[1].body_off, "two\r\nlast", 9);
}

static void
test_broken_and_lf(void **state)
{
	/* no delimiter ever: the multipart is one (broken) leaf */
	static const char nob[] =
	    "Content-Type: multipart/mixed; boundary=zz\n"
	    "Content-Disposition: attachment; filename=x.bat\n\n"
	    "--zzz\n--zz-x\n";
	/* bare LF line ends; delimiter at the very end without one */
	static const char close_first[] =
	    "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	    "--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n"
	    "--i--\r\nepilogue\r\n--o--\r\n";
	static const char lf[] = "Content-Type: multipart/mixed; boundary=k\n\n"
				 "--k\nContent-Type: text/x\n\nA\n--k--";
	struct mw_result r;

	(void)state;
	walk(nob, NULL, &r);
	assert_int_equal(r.n, 1);
	assert_true(r.parts[0].broken);
	assert_string_equal(r.parts[0].names[0].s, "x.bat");
	assert_int_equal(r.parts[0].end_off, strlen(nob));
	walk(lf, NULL, &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.parts[0].type, "text/x");
	assert_int_equal(r.parts[0].end_off - r.parts[0].body_off, 1);
	/* closed before any part: one broken leaf up to the outer end */
	walk(close_first, NULL, &r);
	assert_int_equal(r.n, 1);
	assert_true(r.parts[0].broken);
	assert_string_equal(r.parts[0].type, "multipart/mixed");
	assert_memory_equal(close_first + r.parts[0].hdr_off,
	    "Content-Type: multipart/mixed; boundary=i", 41);
	assert_memory_equal(close_first + r.parts[0].end_off, "\r\n--o--", 7);
}

static void
test_limits(void **state)
{
	struct mime_walk_limits lim = { 5, 10, 300, 20 };
	char msg[8192];
	size_t n = 0;
	struct mw_result r;

	(void)state;
	/* depth: multiparts nested 8 deep */
	for (int d = 0; d < 8; d++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n,
		    "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
		    "--b%d\r\n",
		    d, d);
	snprintf(msg + n, sizeof(msg) - n, "\r\nx\r\n");
	walk(msg, &lim, &r);
	assert_int_equal(r.status, MIME_WALK_DEPTH);
	/* parts: 12 */
	n = (size_t)snprintf(msg, sizeof(msg),
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (int k = 0; k < 12; k++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n,
		    "--b\r\n\r\n%d\r\n", k);
	walk(msg, &lim, &r);
	assert_int_equal(r.status, MIME_WALK_PARTS);
	assert_int_equal(r.n, 9); /* the 10th entity cannot start */
	/* header */
	n = (size_t)snprintf(msg, sizeof(msg), "Subject: ");
	memset(msg + n, 'x', 400);
	snprintf(msg + n + 400, sizeof(msg) - n - 400, "\r\n\r\nbody\r\n");
	walk(msg, &lim, &r);
	assert_int_equal(r.status, MIME_WALK_HEADER);
	assert_int_equal(r.n, 0);
	/* boundary */
	walk("Content-Type: multipart/mixed; "
	     "boundary=\"0123456789012345678901\"\r\n\r\n--x\r\n",
	    &lim, &r);
	assert_int_equal(r.status, MIME_WALK_BOUNDARY);
	/* a long header within the default limit is fine */
	walk(msg, NULL, &r);
	assert_int_equal(r.status, MIME_WALK_OK);
	assert_int_equal(r.n, 1);
}

/* A delimiter line padded with white space past the line prefix is one;
 * one with anything else after the padding is not. */
static void
test_padding(void **state)
{
	char msg[4096];
	size_t n;
	struct mw_result r;

	(void)state;
	n = (size_t)snprintf(msg, sizeof(msg),
	    "Content-Type: multipart/mixed; boundary=p\r\n\r\n--p");
	memset(msg + n, ' ', 1000);
	n += 1000;
	n += (size_t)snprintf(msg + n, sizeof(msg) - n,
	    "\r\nContent-Type: a/b\r\n\r\n1\r\n--p");
	memset(msg + n, ' ', 1000);
	n += 1000;
	snprintf(msg + n, sizeof(msg) - n, "x\r\n--p\r\n\r\n2\r\n--p--\r\n");
	walk(msg, NULL, &r);
	assert_int_equal(r.status, MIME_WALK_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.parts[0].type, "a/b");
	assert_int_equal(r.parts[0].end_off - r.parts[0].body_off, 1007);
}

static int
stop_at_first(void *ctx, const struct mime_walk_part *p)
{
	(void)p;
	(*(int *)ctx)++;
	return -1;
}

static void
test_stop(void **state)
{
	int calls = 0;
	struct mime_walk *w = mime_walk_new(NULL, stop_at_first, &calls);

	(void)state;
	assert_non_null(w);
	assert_int_equal(mime_walk_feed(w, mixed, strlen(mixed)), -1);
	assert_int_equal(mime_walk_status(w), MIME_WALK_STOPPED);
	assert_int_equal(mime_walk_feed(w, "x", 1), -1);
	assert_int_equal(mime_walk_finish(w), -1);
	assert_int_equal(calls, 1);
	assert_string_equal(mime_walk_status_name(MIME_WALK_STOPPED),
	    "stopped");
	mime_walk_free(&w);
	assert_null(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_rfc2231),
		cmocka_unit_test(test_encoded_words),
		cmocka_unit_test(test_long_name),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_no_close),
		cmocka_unit_test(test_broken_and_lf),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
