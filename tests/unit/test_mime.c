/*
 * test_mime.c - header iteration, MIME structure, IMAP sections,
 * ENVELOPE/BODYSTRUCTURE text and SEARCH over whole messages, including
 * broken and hostile ones (missing close delimiter, no boundary, deep
 * nesting, too many parts, malformed header lines).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime.h"

struct sink {
	char *buf;
	size_t len, cap;
};

static int
sink_write(void *ctx, const char *p, size_t len)
{
	struct sink *s = ctx;

	if (s->len + len + 1 > s->cap) {
		s->cap = (s->len + len + 1) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	s->buf[s->len] = '\0';
	return 0;
}

static char *
bodystructure(const struct mime_message *m, uint32_t part, bool ext)
{
	struct sink s = { 0 };

	assert_int_equal(mime_write_bodystructure(m, part, ext, sink_write, &s),
	    0);
	return s.buf;
}

static char *
envelope(const struct mime_message *m, uint32_t part)
{
	struct sink s = { 0 };

	assert_int_equal(mime_write_envelope(m, part, sink_write, &s), 0);
	return s.buf;
}

#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		char *g_ = (got);                                              \
		if (strcmp(g_, (want)) != 0)                                   \
			fail_msg("got\n%s\nwant\n%s", g_, (want));             \
		free(g_);                                                      \
	} while (0)

static void
check_section(const struct mime_message *m, const uint32_t *path, unsigned n,
    enum mime_sect kind, const char *want)
{
	size_t off, len;
	uint32_t part;

	if (want == NULL) {
		assert_int_equal(
		    mime_section(m, path, n, kind, &off, &len, &part), -1);
		return;
	}
	assert_int_equal(mime_section(m, path, n, kind, &off, &len, &part), 0);
	if (len != strlen(want) || memcmp(m->data + off, want, len) != 0)
		fail_msg("section got [%.*s] want [%s]", (int)len,
		    m->data + off, want);
}

static const char simple[] =
    "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    "From: \"Fred Foobar\" <foobar@Blurdybloop.example>\r\n"
    "Subject: afternoon\r\n meeting\r\n"
    "To: mooch@owatagu.example\r\n"
    "Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    "\r\n"
    "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

static void
test_simple(void **state)
{
	struct mime_part parts[8];
	struct mime_message m;
	static const uint32_t one[] = { 1 }, two[] = { 2 }, oneone[] = { 1, 1 };

	assert_int_equal(
	    mime_parse(&m, simple, sizeof(simple) - 1, parts, 8, NULL), 0);
	assert_int_equal(m.nparts, 1);
	assert_false(m.limited);
	CHECK_STR(envelope(&m, 0),
	    "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
	    "((NIL NIL \"mooch\" \"owatagu.example\")) NIL NIL NIL "
	    "\"<B27397-0100000@Blurdybloop.example>\")");
	CHECK_STR(bodystructure(&m, 0, true),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 55 "
	    "1 NIL NIL NIL NIL)");
	CHECK_STR(bodystructure(&m, 0, false),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 55 "
	    "1)");
	check_section(&m, NULL, 0, MIME_SECT_TEXT,
	    "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n");
	check_section(&m, one, 1, MIME_SECT_BODY,
	    "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n");
	check_section(&m, NULL, 0, MIME_SECT_BODY, simple);
	check_section(&m, two, 1, MIME_SECT_BODY, NULL);
	check_section(&m, oneone, 2, MIME_SECT_BODY, NULL);
	check_section(&m, one, 1, MIME_SECT_HEADER, NULL);
	check_section(&m, NULL, 0, MIME_SECT_MIME, NULL);
	assert_true(mime_header_search(simple, parts[0].hdr_len, "subject",
	    "NOON MEET", 9));
	assert_true(
	    mime_header_search(simple, parts[0].hdr_len, "subject", "", 0));
	assert_false(mime_header_search(simple, parts[0].hdr_len, "cc", "", 0));
	assert_false(
	    mime_header_search(simple, parts[0].hdr_len, "to", "fred", 4));
	assert_true(
	    mime_header_search(simple, parts[0].hdr_len, NULL, "fred", 4));
	assert_true(mime_body_search(&m, 0, "3:30 TOMORROW", 13));
	assert_false(mime_body_search(&m, 0, "tonight", 7));
}

static const char nested[] =
    "From: a@b.example\r\n"
    "To: undisclosed-recipients:;\r\n"
    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n =?UTF-8?B?YXVz?= Berlin\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed;\r\n\tboundary=\"outer \\\"b\\\"\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer \"b\"\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=C3=A9 soft=\r\n"
    "break\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>hi</p>\r\n"
    "--inner--\r\n"
    "--outer \"b\"  \r\n"
    "Content-Type: application/pdf; name=\"a.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"a.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Language: en, de\r\n"
    "Content-ID: <id1@x>\r\n"
    "\r\n"
    "aGVsbG8gd29ybGQ=\r\n"
    "--outer \"b\"\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Description: forwarded\r\n"
    "\r\n"
    "From: Inner <in@x.example>\r\n"
    "Subject: inner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "inner body\r\n"
    "--outer \"b\"--\r\n"
    "epilogue\r\n";

static void
test_nested(void **state)
{
	struct mime_part parts[16];
	struct mime_message m;
	static const uint32_t p1[] = { 1 }, p11[] = { 1, 1 }, p12[] = { 1, 2 },
			      p2[] = { 2 }, p3[] = { 3 }, p31[] = { 3, 1 },
			      p4[] = { 4 }, p111[] = { 1, 1, 1 },
			      p13[] = { 1, 3 }, p0[] = { 0 };

	assert_int_equal(
	    mime_parse(&m, nested, sizeof(nested) - 1, parts, 16, NULL), 0);
	assert_false(m.limited);
	assert_int_equal(m.nparts, 7);
	assert_int_equal(parts[0].nchildren, 3);
	assert_true(parts[0].flags & MIME_PART_MULTIPART);
	assert_true(parts[3].flags & MIME_PART_MESSAGE);

	check_section(&m, p1, 1, MIME_SECT_MIME,
	    "Content-Type: multipart/alternative; boundary=inner\r\n\r\n");
	check_section(&m, p11, 2, MIME_SECT_BODY, "Caf=C3=A9 soft=\r\nbreak");
	check_section(&m, p12, 2, MIME_SECT_BODY, "<p>hi</p>");
	check_section(&m, p2, 1, MIME_SECT_BODY, "aGVsbG8gd29ybGQ=");
	check_section(&m, p3, 1, MIME_SECT_BODY,
	    "From: Inner <in@x.example>\r\nSubject: inner\r\n"
	    "Content-Type: text/plain\r\n\r\ninner body");
	check_section(&m, p3, 1, MIME_SECT_HEADER,
	    "From: Inner <in@x.example>\r\nSubject: inner\r\n"
	    "Content-Type: text/plain\r\n\r\n");
	check_section(&m, p3, 1, MIME_SECT_TEXT, "inner body");
	check_section(&m, p31, 2, MIME_SECT_BODY, "inner body");
	check_section(&m, p3, 1, MIME_SECT_MIME,
	    "Content-Type: message/rfc822\r\n"
	    "Content-Description: forwarded\r\n\r\n");
	check_section(&m, p4, 1, MIME_SECT_BODY, NULL);
	check_section(&m, p0, 1, MIME_SECT_BODY, NULL);
	check_section(&m, p111, 3, MIME_SECT_BODY, NULL);
	check_section(&m, p13, 2, MIME_SECT_BODY, NULL);
	check_section(&m, p2, 1, MIME_SECT_HEADER, NULL);
	check_section(&m, p1, 1, MIME_SECT_TEXT, NULL);

	CHECK_STR(bodystructure(&m, 0, true),
	    "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	    "\"quoted-printable\" 22 2 NIL NIL NIL NIL)"
	    "(\"text\" \"html\" NIL NIL NIL \"7BIT\" 9 1 NIL NIL NIL NIL) "
	    "\"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)"
	    "(\"application\" \"pdf\" (\"name\" \"a.pdf\") \"<id1@x>\" NIL "
	    "\"base64\" 16 NIL (\"attachment\" (\"filename\" \"a.pdf\")) "
	    "(\"en\" \"de\") NIL)"
	    "(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7BIT\" 82 "
	    "(NIL \"inner\" ((\"Inner\" NIL \"in\" \"x.example\")) "
	    "((\"Inner\" NIL \"in\" \"x.example\")) "
	    "((\"Inner\" NIL \"in\" \"x.example\")) NIL NIL NIL NIL NIL) "
	    "(\"text\" \"plain\" NIL NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL) 5 "
	    "NIL NIL NIL NIL) "
	    "\"mixed\" (\"boundary\" \"outer \\\"b\\\"\") NIL NIL NIL)");
	CHECK_STR(bodystructure(&m, 0, false),
	    "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	    "\"quoted-printable\" 22 2)"
	    "(\"text\" \"html\" NIL NIL NIL \"7BIT\" 9 1) \"alternative\")"
	    "(\"application\" \"pdf\" (\"name\" \"a.pdf\") \"<id1@x>\" NIL "
	    "\"base64\" 16)"
	    "(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7BIT\" 82 "
	    "(NIL \"inner\" ((\"Inner\" NIL \"in\" \"x.example\")) "
	    "((\"Inner\" NIL \"in\" \"x.example\")) "
	    "((\"Inner\" NIL \"in\" \"x.example\")) NIL NIL NIL NIL NIL) "
	    "(\"text\" \"plain\" NIL NIL NIL \"7BIT\" 10 1) 5) \"mixed\")");
	/* the subject is raw (encoded words stay), groups appear as such */
	CHECK_STR(envelope(&m, 0),
	    "(NIL \"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?B?YXVz?= Berlin\" "
	    "((NIL NIL \"a\" \"b.example\")) ((NIL NIL \"a\" \"b.example\")) "
	    "((NIL NIL \"a\" \"b.example\")) "
	    "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
	    "NIL NIL NIL NIL)");

	assert_true(mime_body_search(&m, 0, "caf\xc3\xa9", 5));
	assert_true(mime_body_search(&m, 0, "softbreak", 9));
	assert_true(mime_body_search(&m, 0, "<P>HI", 5));
	assert_true(mime_body_search(&m, 0, "inner body", 10));
	assert_false(mime_body_search(&m, 0, "hello world", 11));
	assert_false(mime_body_search(&m, 0, "preamble", 8));
	assert_false(mime_body_search(&m, 1, "inner", 5));
	assert_true(mime_body_search(&m, 3, "inner", 5));
	assert_true(mime_header_search(nested, parts[0].hdr_len, "subject",
	    "gr\xc3\xbc\xc3\x9f"
	    "eaus berlin",
	    16));
	assert_true(mime_header_search(nested, parts[0].hdr_len, "subject",
	    "?q?gr", 5));
	assert_false(mime_header_search(nested, parts[0].hdr_len, "subject",
	    "gr\xc3\xbc\xc3\x9f"
	    "e aus",
	    10));
}

/* SEARCH FROM/TO/CC/BCC match the parsed addresses (issue 9): comments,
 * quotes and folds do not count, the joined local@domain does. */
static void
test_addr_search(void **state)
{
	static const char hdr[] =
	    "From: <user-from (comment)@ (comment) domain.org>\r\n"
	    "To: Pete(A nice \\) chap) <pete@silly.test(his host)>,\r\n"
	    " \"john q\"@quoted.test, a (c) . b@dots.test, nodomain\r\n"
	    "Cc: Undisclosed recipients:;\r\n"
	    "Bcc: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>,"
	    " bare@host (Real Name)\r\n"
	    "Subject: user-from@domain.org\r\n"
	    "\r\n";
	static const struct {
		const char *field, *needle;
		bool found;
	} cases[] = {
		{ "from", "user-from@domain.org", true },
		{ "FROM", "USER-FROM@DOMAIN.ORG", true },
		{ "from", "from@domain", true },
		{ "from", "domain.org", true },
		{ "from", "comment", false },
		{ "from", "(", false },
		{ "from", "<user-from", false }, /* no name: no brackets */
		{ "to", "Pete <pete@silly.test>", true },
		{ "to", "pete@silly.test", true },
		{ "to", "nice", false },
		{ "to", "his host", false },
		{ "to", "john q@quoted.test", true },
		{ "to", "a.b@dots.test", true },
		{ "to", "nodomain", true },
		{ "to", "MISSING", false },
		{ "to", "user-from", false }, /* only the named field */
		{ "cc", "undisclosed", true },
		{ "bcc", "Andr\xe9 Pirard <pirard@", true },
		{ "bcc", "=?ISO", false },
		{ "bcc", "Real Name <bare@host>", true },
		{ "cc", "", true },
		{ "reply-to", "", false },
	};
	struct mime_part parts[2];
	struct mime_message m;
	size_t i;

	(void)state;
	assert_int_equal(mime_parse(&m, hdr, sizeof(hdr) - 1, parts, 2, NULL),
	    0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = mime_addr_search(hdr, parts[0].hdr_len,
		    cases[i].field, cases[i].needle, strlen(cases[i].needle));

		if (got != cases[i].found)
			fail_msg("%s %s: %d", cases[i].field, cases[i].needle,
			    got);
	}
}

static void
test_addresses(void **state)
{
	static const char hdr[] =
	    "From: Pete(A nice \\) chap) <pete@silly.test(his "
	    "host)>\r\n"
	    "To: A Group:Ed Jones <c@a.test>,joe@where.test,John "
	    "<jdoe@one.test>;"
	    ", \"Smith, \\\"J\\\"\" <s@x.test>,\r\n (comment) bare@host (Real "
	    "Name), <@r1,@r2:route@x.test>, nodomain, ,\r\n"
	    "Cc: Undisclosed recipients:;\r\n"
	    "Bcc: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>,"
	    " <>, @nolocal, \xc3\xa9t\xc3\xa9 <e@x>\r\n"
	    "Reply-To:\r\n"
	    "In-Reply-To: <a@b>\r\n"
	    "\r\n";
	struct mime_part parts[2];
	struct mime_message m;

	assert_int_equal(mime_parse(&m, hdr, sizeof(hdr) - 1, parts, 2, NULL),
	    0);
	CHECK_STR(envelope(&m, 0),
	    "(NIL NIL "
	    "((\"Pete\" NIL \"pete\" \"silly.test\")) "
	    "((\"Pete\" NIL \"pete\" \"silly.test\")) "
	    "((\"Pete\" NIL \"pete\" \"silly.test\")) "
	    "((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")"
	    "(NIL NIL \"joe\" \"where.test\")(\"John\" NIL \"jdoe\" "
	    "\"one.test\")(NIL NIL NIL NIL)"
	    "(\"Smith, \\\"J\\\"\" NIL \"s\" \"x.test\")"
	    "(\"Real Name\" NIL \"bare\" \"host\")"
	    "(NIL \"@r1,@r2\" \"route\" \"x.test\")"
	    "(NIL NIL \"nodomain\" \"MISSING_DOMAIN\")) "
	    "((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)) "
	    "((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" "
	    "\"vm1.ulg.ac.be\")"
	    "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
	    "(NIL NIL \"MISSING_MAILBOX\" \"nolocal\")"
	    "({5}\r\n\xc3\xa9t\xc3\xa9 NIL \"e\" \"x\")) "
	    "\"<a@b>\" NIL)");
}

static void
test_iterator_and_fields(void **state)
{
	static const char hdr[] = " stray continuation\r\n"
				  "Subject: one\r\n\ttwo\r\n"
				  "no colon here\r\n"
				  "X-Empty:\r\n"
				  "Bad Name: x\r\n"
				  "Received : from a\r\n"
				  "To: x@y\n"
				  "\r\n"
				  "Body: not a header\r\n";
	struct mime_header_iter it;
	struct mime_field f;
	struct mime_slice names[2] = { { "to", 2 }, { "SUBJECT", 7 } };
	struct sink s = { 0 };
	struct mime_limits lim = { .max_headers = 2 };
	size_t n;

	mime_header_init(&it, hdr, sizeof(hdr) - 1, NULL);
	assert_true(mime_header_next(&it, &f));
	assert_int_equal(f.name.len, 7);
	assert_int_equal(f.value.len, 9);
	assert_memory_equal(f.value.ptr, "one\r\n\ttwo", 9);
	assert_true(mime_header_next(&it, &f));
	assert_int_equal(f.name.len, 7);
	assert_int_equal(f.value.len, 0);
	assert_true(mime_header_next(&it, &f));
	assert_int_equal(f.name.len, 8); /* "Received", WSP before ':' */
	assert_memory_equal(f.value.ptr, "from a", 6);
	assert_true(mime_header_next(&it, &f));
	assert_memory_equal(f.value.ptr, "x@y", 3);
	assert_int_equal(f.value.len, 3);
	assert_false(mime_header_next(&it, &f));

	mime_header_init(&it, hdr, sizeof(hdr) - 1, &lim);
	assert_true(mime_header_next(&it, &f));
	assert_true(mime_header_next(&it, &f));
	assert_false(mime_header_next(&it, &f));
	assert_true(it.limited);

	n = mime_header_fields(hdr, sizeof(hdr) - 1, names, 2, false, NULL,
	    NULL);
	assert_int_equal(mime_header_fields(hdr, sizeof(hdr) - 1, names, 2,
			     false, sink_write, &s),
	    n);
	assert_string_equal(s.buf, "Subject: one\r\n\ttwo\r\nTo: x@y\n\r\n");
	assert_int_equal(n, strlen(s.buf));
	s.len = 0;
	mime_header_fields(hdr, sizeof(hdr) - 1, names, 2, true, sink_write,
	    &s);
	assert_string_equal(s.buf, "X-Empty:\r\nReceived : from a\r\n\r\n");
	free(s.buf);
}

static void
test_params(void **state)
{
	static const char v[] = "; charset = \"utf\\\"8\" (c) ; junk ; "
				"format=flowed;name*0=a;  x=\"unterminated";
	struct mime_slice rest = { v + 0, sizeof(v) - 1 }, n, val;
	bool quoted;
	char buf[16];

	assert_true(mime_param_next(&rest, &n, &val, &quoted));
	assert_memory_equal(n.ptr, "charset", 7);
	assert_true(quoted);
	assert_true(mime_param_next(&rest, &n, &val, &quoted));
	assert_memory_equal(n.ptr, "format", 6);
	assert_false(quoted);
	assert_int_equal(val.len, 6);
	assert_true(mime_param_next(&rest, &n, &val, &quoted));
	assert_memory_equal(n.ptr, "name*0", 6);
	assert_true(mime_param_next(&rest, &n, &val, &quoted));
	assert_memory_equal(n.ptr, "x", 1);
	assert_false(mime_param_next(&rest, &n, &val, &quoted));

	rest.ptr = v;
	rest.len = sizeof(v) - 1;
	assert_int_equal(mime_param_get(rest, "CHARSET", buf, sizeof(buf)), 5);
	assert_string_equal(buf, "utf\"8");
	assert_int_equal(mime_param_get(rest, "nope", buf, sizeof(buf)), -1);
	assert_int_equal(mime_param_get(rest, "charset", buf, 5), -1);
}

static void
test_broken(void **state)
{
	/* no close delimiter: the last part runs to the end */
	static const char noclose[] =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\ntwo\r\n";
	/* no delimiter at all, and no boundary parameter */
	static const char nodelim[] =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\njust text\r\n";
	static const char noboundary[] =
	    "Content-Type: multipart/mixed\r\n\r\n--b\r\nx\r\n";
	/* a header without body, a bad Content-Type, LF-only lines */
	static const char headonly[] = "Subject: x\nContent-Type: garbage";
	/* boundary that is a prefix of a longer line is not a delimiter */
	static const char prefix[] =
	    "Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\n\n--bx\n--b \nContent-Type: text/plain\n\nz\n--b--";
	static const char digest[] =
	    "Content-Type: multipart/digest; boundary=d\r\n\r\n"
	    "--d\r\n\r\nSubject: in digest\r\n\r\nhi\r\n--d--\r\n";
	struct mime_part parts[8];
	struct mime_message m;
	static const uint32_t p1[] = { 1 }, p2[] = { 2 }, p11[] = { 1, 1 };

	assert_int_equal(
	    mime_parse(&m, noclose, sizeof(noclose) - 1, parts, 8, NULL), 0);
	assert_int_equal(parts[0].nchildren, 2);
	check_section(&m, p1, 1, MIME_SECT_BODY, "one");
	check_section(&m, p2, 1, MIME_SECT_BODY, "two\r\n");
	CHECK_STR(bodystructure(&m, 0, false),
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
	    "\"7BIT\" 3 "
	    "1)(\"text\" \"html\" NIL NIL NIL \"7BIT\" 5 1) \"mixed\")");

	assert_int_equal(
	    mime_parse(&m, nodelim, sizeof(nodelim) - 1, parts, 8, NULL), 0);
	assert_true(parts[0].flags & MIME_PART_BROKEN);
	CHECK_STR(bodystructure(&m, 0, false),
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
	    "\"7BIT\" 11 "
	    "1)");
	assert_int_equal(
	    mime_parse(&m, noboundary, sizeof(noboundary) - 1, parts, 8, NULL),
	    0);
	assert_true(parts[0].flags & MIME_PART_BROKEN);

	assert_int_equal(
	    mime_parse(&m, headonly, sizeof(headonly) - 1, parts, 8, NULL), 0);
	assert_int_equal(parts[0].hdr_len, sizeof(headonly) - 1);
	assert_true(parts[0].flags & MIME_PART_DEFAULTED);
	CHECK_STR(bodystructure(&m, 0, false),
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 "
	    "0)");
	check_section(&m, NULL, 0, MIME_SECT_TEXT, "");

	assert_int_equal(
	    mime_parse(&m, prefix, sizeof(prefix) - 1, parts, 8, NULL), 0);
	assert_int_equal(parts[0].nchildren, 2);
	check_section(&m, p1, 1, MIME_SECT_BODY, "--bx");
	check_section(&m, p2, 1, MIME_SECT_BODY, "z");

	assert_int_equal(
	    mime_parse(&m, digest, sizeof(digest) - 1, parts, 8, NULL), 0);
	assert_true(parts[1].flags & MIME_PART_MESSAGE);
	check_section(&m, p11, 2, MIME_SECT_BODY, "hi");
	CHECK_STR(bodystructure(&m, 0, false),
	    "((\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 24 (NIL \"in "
	    "digest\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" "
	    "(\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 2 1) 3) \"digest\")");
}

/* 100 nested multiparts and a message/rfc822 chain: limited, not broken. */
static void
test_limits(void **state)
{
	static char msg[20000];
	struct mime_part parts[64];
	struct mime_message m;
	struct mime_limits lim = { .max_depth = 32 };
	size_t n = 0;
	char *bs;

	for (int k = 0; k < 100; k++)
		n += (size_t)sprintf(msg + n,
		    "Content-Type: multipart/mixed; "
		    "boundary=b%d\r\n\r\n--b%d\r\n",
		    k, k);
	n += (size_t)sprintf(msg + n, "\r\ndeep\r\n");
	assert_int_equal(mime_parse(&m, msg, n, parts, 64, &lim), 0);
	assert_true(m.limited);
	for (unsigned k = 0; k < m.nparts; k++)
		assert_true(parts[k].depth <= 32);
	bs = bodystructure(&m, 0, true);
	assert_non_null(strstr(bs, "\"mixed\""));
	free(bs);

	n = 0;
	for (int k = 0; k < 100; k++)
		n += (size_t)sprintf(msg + n,
		    "Content-Type: message/rfc822\r\n\r\n");
	assert_int_equal(mime_parse(&m, msg, n, parts, 64, &lim), 0);
	assert_true(m.limited);
	bs = bodystructure(&m, 0, true);
	/* the innermost unopened one is described as opaque data */
	assert_non_null(strstr(bs, "\"application\" \"octet-stream\""));
	free(bs);

	/* more parts than the array holds */
	n = (size_t)sprintf(msg,
	    "Content-Type: multipart/mixed; boundary=x\r\n"
	    "\r\n");
	for (int k = 0; k < 10; k++)
		n += (size_t)sprintf(msg + n, "--x\r\n\r\npart %d\r\n", k);
	n += (size_t)sprintf(msg + n, "--x--\r\n");
	assert_int_equal(mime_parse(&m, msg, n, parts, 4, &lim), 0);
	assert_true(m.limited);
	assert_int_equal(m.nparts, 4);
	assert_int_equal(parts[0].nchildren, 3);
	assert_int_equal(mime_parse(&m, msg, n, parts, 0, &lim), -1);
}

static int
failing_sink(void *ctx, const char *p, size_t len)
{
	int *budget = ctx;

	return (*budget)-- > 0 ? 0 : -1;
}

static void
test_sink_failure(void **state)
{
	struct mime_part parts[16];
	struct mime_message m;

	assert_int_equal(
	    mime_parse(&m, nested, sizeof(nested) - 1, parts, 16, NULL), 0);
	/* the structure takes two 512-byte flushes, the envelope one */
	for (int k = 0; k < 2; k++) {
		int budget = k;

		assert_int_equal(mime_write_bodystructure(&m, 0, true,
				     failing_sink, &budget),
		    -1);
	}
	{
		int budget = 0;

		assert_int_equal(
		    mime_write_envelope(&m, 0, failing_sink, &budget), -1);
		budget = 1;
		assert_int_equal(
		    mime_write_envelope(&m, 0, failing_sink, &budget), 0);
	}
	assert_int_equal(mime_write_envelope(&m, 99, sink_write, NULL), -1);
}

/* A long base64 text body, and needles that overlap themselves. */
static void
test_search_window(void **state)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static char msg[60000], plain[30000];
	struct mime_part parts[2];
	struct mime_message m;
	size_t n, k, o = 0;
	uint32_t bits = 0;
	int nbits = 0;

	for (k = 0; k < sizeof(plain); k++)
		plain[k] = (char)('a' + k % 26);
	memcpy(plain + 8190, "NEEDLE", 6);
	n = (size_t)sprintf(msg,
	    "Content-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n");
	for (k = 0; k < sizeof(plain); k++) {
		bits = (bits << 8) | (unsigned char)plain[k];
		nbits += 8;
		while (nbits >= 6) {
			nbits -= 6;
			msg[n++] = b64[(bits >> nbits) & 63];
			if (++o % 76 == 0) {
				msg[n++] = '\r';
				msg[n++] = '\n';
			}
		}
	}
	assert_int_equal(mime_parse(&m, msg, n, parts, 2, NULL), 0);
	assert_true(mime_body_search(&m, 0, "needle", 6));
	assert_true(mime_body_search(&m, 0, "xyzabc", 6));
	assert_false(mime_body_search(&m, 0, "needles", 7));
	assert_false(mime_body_search(&m, 0, "aa", 2));

	n = (size_t)sprintf(msg, "Subject: x\r\n\r\naaab ababababc AbAbAbAc");
	assert_int_equal(mime_parse(&m, msg, n, parts, 2, NULL), 0);
	assert_true(mime_body_search(&m, 0, "AAB", 3));
	assert_true(mime_body_search(&m, 0, "ababc", 5));
	assert_true(mime_body_search(&m, 0, "abac", 4));
	assert_false(mime_body_search(&m, 0, "ababababab", 10));
	assert_true(mime_body_search(&m, 0, "", 0));
}

/*
 * mime_header_end() over every prefix of a message, as a header-only
 * FETCH reads it: once it finds the header's end it must be the whole
 * message's, and a parse of just the header must give the same ENVELOPE
 * and header fields as a parse of the whole message.
 */
static void
check_header_end(const char *msg, size_t len)
{
	static const struct mime_slice names[] = { { "subject", 7 },
		{ "from", 4 } };
	struct mime_part parts[16], hparts[16];
	struct mime_message m, hm;
	struct sink a = { 0 }, b = { 0 };
	bool seen = false;
	char *want;
	size_t h;

	assert_int_equal(mime_parse(&m, msg, len, parts, 16, NULL), 0);
	for (size_t k = 0; k <= len; k++) {
		if (!mime_header_end(msg, k, &h)) {
			assert_false(seen);
			assert_int_equal(h, k);
			continue;
		}
		seen = true;
		assert_true(h <= k);
		assert_int_equal(h, parts[0].hdr_len);
		assert_int_equal(mime_parse(&hm, msg, h, hparts, 16, NULL), 0);
		assert_int_equal(hparts[0].hdr_len, h);
		want = envelope(&m, 0);
		CHECK_STR(envelope(&hm, 0), want);
		free(want);
		a.len = b.len = 0;
		mime_header_fields(msg, parts[0].hdr_len, names, 2, false,
		    sink_write, &a);
		mime_header_fields(msg, hparts[0].hdr_len, names, 2, false,
		    sink_write, &b);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.buf, b.buf, a.len);
	}
	/* no empty line at all: the whole message is its header */
	if (!seen)
		assert_int_equal(parts[0].hdr_len, len);
	free(a.buf);
	free(b.buf);
}

static void
test_header_end(void **state)
{
	static const char *const msgs[] = {
		"Subject: lf\nFrom: a@b\n\nbody\n\nmore\n",
		"Subject: crlf\r\nFrom: a@b\r\n\r\nbody\r\n",
		"Subject: folded\r\n  on two\r\n\tlines\r\nFrom: a@b\r\n\r\n",
		"Subject: no empty line\r\nFrom: a@b\r\n",
		"Subject: no line end",
		"Subject: a CR at the end\r",
		"Subject: a bare CR\r\rFrom: a@b\r\n\r\nx",
		"\nan empty header\n",
		"\r\n",
		"",
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n",
	};

	(void)state;
	check_header_end(simple, sizeof(simple) - 1);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		check_header_end(msgs[i], strlen(msgs[i]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_addr_search),
		cmocka_unit_test(test_iterator_and_fields),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_sink_failure),
		cmocka_unit_test(test_search_window),
		cmocka_unit_test(test_header_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
