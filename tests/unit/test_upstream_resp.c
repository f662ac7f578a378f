/*
 * test_upstream_resp.c - the back end's answer reader used by ringgate's
 * back-end login (proto/upstream_resp.c).
 *
 * Real answers first (Dovecot's and ringstore's IMAP greeting, tagged
 * OK with a CAPABILITY code, POP3 CAPA, SMTP EHLO), each read whole, one
 * byte at a time and at every split point with the same lines seen; then
 * the hostile ones: a line past 8 KiB, too many lines, a reply past the
 * byte limit, NUL, literals, wrong tags, greetings that are not greetings,
 * SMTP codes that change mid-reply. The bytes after a reply's end are
 * never taken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/upstream_resp.h"

static struct upstream_resp r;

/* A transcript of every line seen: "rc kind status [tag] [code] text|". */
struct script {
	char s[65536];
	size_t len;
	enum ur_rc last;
	size_t used; /* bytes taken up to the end of the first reply */
};

static void
add(struct script *t, const char *fmt, const struct ur_slice *sl)
{
	int n;

	if (sl->p == NULL)
		n = snprintf(t->s + t->len, sizeof(t->s) - t->len, "%s-", fmt);
	else
		n = snprintf(t->s + t->len, sizeof(t->s) - t->len, "%s%.*s",
		    fmt, (int)sl->len, sl->p);
	assert_true(n >= 0 && (size_t)n < sizeof(t->s) - t->len);
	t->len += (size_t)n;
}

static void
note(struct script *t, enum ur_rc rc)
{
	char head[64];
	struct ur_slice none = { "", 0 };

	snprintf(head, sizeof(head), "%d/%d/%d/%u ", rc, r.kind, r.status,
	    r.smtp_code);
	add(t, head, &none);
	add(t, "t=", &r.tag);
	add(t, " c=", &r.code);
	add(t, " x=", &r.text);
	add(t, "|", &none);
}

/* Feed in pieces of step bytes (0: whole; first piece cut bytes if
 * cut > 0) until the first reply ends or the input turns invalid. */
static void
read_reply(enum ur_proto proto, enum ur_expect ex, const char *tag,
    const char *in, size_t n, size_t step, size_t cut, struct script *t)
{
	size_t off = 0;

	memset(t, 0, sizeof(*t));
	upstream_resp_init(&r, proto);
	upstream_resp_begin(&r, ex, tag);
	t->last = UR_MORE;
	while (off < n) {
		size_t len = n - off, used;
		enum ur_rc rc;

		if (cut > 0) {
			len = cut < len ? cut : len;
			cut = 0;
		} else if (step > 0 && step < len) {
			len = step;
		}
		rc = upstream_resp_feed(&r, in + off, len, &used);
		assert_true(used <= len);
		off += used;
		t->last = rc;
		if (rc == UR_INVALID)
			break;
		if (rc == UR_LINE || rc == UR_DONE)
			note(t, rc);
		if (rc == UR_DONE)
			break;
	}
	t->used = off;
}

/* Whole, bytewise and every split agree; returns the whole reading. */
static void
read_all_ways(enum ur_proto proto, enum ur_expect ex, const char *tag,
    const char *in, struct script *whole)
{
	static struct script other;
	size_t n = strlen(in);

	read_reply(proto, ex, tag, in, n, 0, 0, whole);
	read_reply(proto, ex, tag, in, n, 1, 0, &other);
	assert_string_equal(whole->s, other.s);
	assert_int_equal(whole->last, other.last);
	assert_int_equal(whole->used, other.used);
	for (size_t cut = 1; cut < n; cut++) {
		read_reply(proto, ex, tag, in, n, 0, cut, &other);
		assert_string_equal(whole->s, other.s);
		assert_int_equal(whole->last, other.last);
		assert_int_equal(whole->used, other.used);
	}
}

static void
test_imap_greeting(void **state)
{
	static struct script t;
	const char *in =
	    "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID "
	    "ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot "
	    "ready.\r\nleftover";

	(void)state;
	read_all_ways(UR_IMAP, UR_ONE, NULL, in, &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(t.used, strlen(in) - strlen("leftover"));
	assert_int_equal(r.kind, UR_K_UNTAGGED);
	assert_int_equal(r.status, UR_S_OK);
	assert_int_equal(r.code.len,
	    strlen("CAPABILITY IMAP4rev1 SASL-IR "
		   "LOGIN-REFERRALS ID ENABLE IDLE "
		   "LITERAL+ STARTTLS AUTH=PLAIN"));
	assert_true(upstream_resp_has_atom(r.code.p, r.code.len, "sasl-ir"));
	assert_true(upstream_resp_has_atom(r.code.p, r.code.len, "AUTH=PLAIN"));
	assert_false(upstream_resp_has_atom(r.code.p, r.code.len, "AUTH"));
	assert_false(upstream_resp_has_atom(r.code.p, r.code.len, "IDL"));
	assert_int_equal(r.text.len, strlen("Dovecot ready."));

	read_all_ways(UR_IMAP, UR_ONE, NULL, "* PREAUTH welcome\r\n", &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.status, UR_S_PREAUTH);
	assert_null(r.code.p);
	read_all_ways(UR_IMAP, UR_ONE, NULL, "* BYE [UNAVAILABLE] busy\n", &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.status, UR_S_BYE);
	assert_int_equal(r.code.len, strlen("UNAVAILABLE"));
	/* a bare OK, lower case */
	read_all_ways(UR_IMAP, UR_ONE, NULL, "* ok\r\n", &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.status, UR_S_OK);
	assert_int_equal(r.text.len, 0);

	/* not greetings */
	const char *bad[] = { "* NO go away\r\n", "* CAPABILITY IMAP4rev1\r\n",
		"+ hello\r\n", "a1 OK hi\r\n", "\r\n", "*\r\n", "* \r\n",
		"HTTP/1.1 400 Bad Request\r\n", "* OK [ALERT no end\r\n",
		"SSH-2.0-OpenSSH_9.2\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		read_all_ways(UR_IMAP, UR_ONE, NULL, bad[i], &t);
		assert_int_equal(t.last, UR_INVALID);
		assert_int_equal(r.err, UR_E_SYNTAX);
		assert_non_null(r.error);
	}
}

static void
test_imap_tagged(void **state)
{
	static struct script t;
	const char *in =
	    "* CAPABILITY IMAP4rev1 IDLE\r\n"
	    "* ID (\"name\" \"Dovecot\" \"x-originating-ip\" \"1.2.3.4\")\r\n"
	    "ul2 OK [CAPABILITY IMAP4rev1 IDLE NAMESPACE] Logged in\r\n"
	    "* 3 EXISTS\r\n";

	(void)state;
	read_all_ways(UR_IMAP, UR_TAGGED, "ul2", in, &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.kind, UR_K_TAGGED);
	assert_int_equal(r.status, UR_S_OK);
	assert_int_equal(r.tag.len, 3);
	assert_int_equal(r.code.len,
	    strlen("CAPABILITY IMAP4rev1 IDLE "
		   "NAMESPACE"));
	assert_int_equal(t.used, strlen(in) - strlen("* 3 EXISTS\r\n"));
	assert_int_equal(r.lines, 3);
	assert_non_null(strstr(t.s, "x=CAPABILITY IMAP4rev1 IDLE|"));

	read_all_ways(UR_IMAP, UR_TAGGED, "a",
	    "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.status, UR_S_NO);
	assert_int_equal(r.code.len, strlen("AUTHENTICATIONFAILED"));
	read_all_ways(UR_IMAP, UR_TAGGED, "a", "a bad what\r\n", &t);
	assert_int_equal(r.status, UR_S_BAD);
	/* a continuation ends the wait */
	read_all_ways(UR_IMAP, UR_TAGGED, "a", "+ \r\n", &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.kind, UR_K_CONT);
	assert_int_equal(r.text.len, 0);
	read_all_ways(UR_IMAP, UR_TAGGED, "a", "+\r\n", &t);
	assert_int_equal(r.kind, UR_K_CONT);
	/* wrong tag, tagged PREAUTH, bad tag bytes, no status */
	const char *bad[] = { "b OK hi\r\n", "a PREAUTH hi\r\n", "a{ OK hi\r\n",
		"a\r\n", "a CAPABILITY x\r\n", "+x\r\n", "aa OK hi\r\n",
		"a NO [CODE\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		read_all_ways(UR_IMAP, UR_TAGGED, "a", bad[i], &t);
		assert_int_equal(t.last, UR_INVALID);
	}
	/* an untagged BYE is a line; the caller decides */
	read_all_ways(UR_IMAP, UR_TAGGED, "a", "* BYE shutting down\r\n", &t);
	assert_int_equal(t.last, UR_LINE);
	assert_int_equal(r.status, UR_S_BYE);
}

static void
test_imap_literal(void **state)
{
	static struct script t;

	(void)state;
	read_all_ways(UR_IMAP, UR_TAGGED, "a",
	    "* ID (\"name\" {7}\r\nDovecot)\r\na OK\r\n", &t);
	assert_int_equal(t.last, UR_INVALID);
	assert_int_equal(r.err, UR_E_LITERAL);
	read_all_ways(UR_IMAP, UR_ONE, NULL, "* OK {5+}\r\n", &t);
	assert_int_equal(r.err, UR_E_LITERAL);
	/* braces that are not a literal */
	read_all_ways(UR_IMAP, UR_ONE, NULL, "* OK {x}\r\n", &t);
	assert_int_equal(t.last, UR_DONE);
	read_all_ways(UR_IMAP, UR_ONE, NULL, "* OK }\r\n", &t);
	assert_int_equal(t.last, UR_DONE);
}

static void
test_pop3(void **state)
{
	static struct script t;
	const char *capa = "+OK\r\nCAPA\r\nTOP\r\nSTLS\r\nSASL PLAIN LOGIN\r\n"
			   "..x\r\n.\r\n+OK next";

	(void)state;
	read_all_ways(UR_POP3, UR_ONE, NULL, "+OK Dovecot ready. <1.2@h>\r\n",
	    &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.kind, UR_K_STATUS);
	assert_int_equal(r.status, UR_S_OK);
	read_all_ways(UR_POP3, UR_MULTI, NULL, capa, &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.kind, UR_K_END);
	assert_int_equal(t.used, strlen(capa) - strlen("+OK next"));
	assert_non_null(strstr(t.s, "x=SASL PLAIN LOGIN|"));
	assert_non_null(strstr(t.s, "x=.x|")); /* unstuffed */
	read_all_ways(UR_POP3, UR_MULTI, NULL, "-ERR no CAPA\r\n", &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.status, UR_S_NO);
	read_all_ways(UR_POP3, UR_ONE, NULL, "-ERR [SYS/TEMP] try later\r\n",
	    &t);
	assert_int_equal(r.code.len, strlen("SYS/TEMP"));
	assert_int_equal(r.text.len, strlen("try later"));
	read_all_ways(UR_POP3, UR_ONE, NULL, "-ERR [oops\r\n", &t);
	assert_int_equal(t.last, UR_DONE);
	assert_null(r.code.p);
	read_all_ways(UR_POP3, UR_ONE, NULL, "+ \r\n", &t);
	assert_int_equal(r.kind, UR_K_CONT);
	const char *bad[] = { "+OKAY\r\n", "-ERROR\r\n", "* OK imap\r\n",
		"\r\n", "ok\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		read_all_ways(UR_POP3, UR_ONE, NULL, bad[i], &t);
		assert_int_equal(t.last, UR_INVALID);
	}
}

static void
test_smtp(void **state)
{
	static struct script t;
	const char *ehlo = "250-mx.example\r\n250-STARTTLS\r\n"
			   "250-XCLIENT NAME ADDR PORT HELO LOGIN\r\n"
			   "250 AUTH PLAIN\r\n220 next";

	(void)state;
	read_all_ways(UR_SMTP, UR_ONE, NULL, ehlo, &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.smtp_code, 250);
	assert_int_equal(r.lines, 4);
	assert_int_equal(t.used, strlen(ehlo) - strlen("220 next"));
	assert_non_null(strstr(t.s, "x=XCLIENT NAME ADDR PORT HELO LOGIN|"));
	read_all_ways(UR_SMTP, UR_ONE, NULL, "220\r\n", &t);
	assert_int_equal(t.last, UR_DONE);
	assert_int_equal(r.smtp_code, 220);
	const char *bad[] = { "250-a\r\n251 b\r\n", "2500 x\r\n", "600 x\r\n",
		"199 x\r\n", "25\r\n", "abc\r\n", "250_x\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		read_all_ways(UR_SMTP, UR_ONE, NULL, bad[i], &t);
		assert_int_equal(t.last, UR_INVALID);
	}
}

/* The hostile sizes, fed in 4 KiB pieces and whole. */
static enum ur_rc
feed_big(enum ur_proto proto, enum ur_expect ex, const char *in, size_t n,
    size_t step)
{
	size_t off = 0, used;
	enum ur_rc rc = UR_MORE;

	upstream_resp_init(&r, proto);
	upstream_resp_begin(&r, ex, "a");
	while (off < n) {
		size_t len = step > 0 && step < n - off ? step : n - off;

		rc = upstream_resp_feed(&r, in + off, len, &used);
		off += used;
		if (rc == UR_INVALID || rc == UR_DONE)
			break;
	}
	return rc;
}

static void
test_limits(void **state)
{
	size_t cap = 2 * 1024 * 1024;
	char *big = malloc(cap);
	size_t n;

	(void)state;
	assert_non_null(big);
	/* a 1 MiB line */
	n = (size_t)snprintf(big, cap, "* OK ");
	memset(big + n, 'x', 1 << 20);
	n += 1 << 20;
	memcpy(big + n, "\r\n", 2);
	n += 2;
	for (size_t step = 0; step <= 4096; step += 4096) {
		assert_int_equal(feed_big(UR_IMAP, UR_ONE, big, n, step),
		    UR_INVALID);
		assert_int_equal(r.err, UR_E_LINE);
	}
	/* the longest line allowed passes */
	n = (size_t)snprintf(big, cap, "* OK ");
	memset(big + n, 'y', UR_LINE_MAX - n - 2);
	memcpy(big + UR_LINE_MAX - 2, "\r\n", 2);
	assert_int_equal(feed_big(UR_IMAP, UR_ONE, big, UR_LINE_MAX, 0),
	    UR_DONE);
	assert_int_equal(r.line.len, UR_LINE_MAX - 2);
	big[UR_LINE_MAX - 2] = 'y';
	big[UR_LINE_MAX - 1] = '\r';
	big[UR_LINE_MAX] = '\n';
	assert_int_equal(feed_big(UR_IMAP, UR_ONE, big, UR_LINE_MAX + 1, 0),
	    UR_INVALID);
	assert_int_equal(r.err, UR_E_LINE);

	/* a never-ending untagged stream before the tagged answer */
	n = 0;
	while (n + 32 < cap)
		n += (size_t)snprintf(big + n, cap - n, "* 1 EXISTS\r\n");
	assert_int_equal(feed_big(UR_IMAP, UR_TAGGED, big, n, 4096),
	    UR_INVALID);
	assert_int_equal(r.err, UR_E_LINES);
	/* SMTP continuation lines without end */
	n = 0;
	while (n + 32 < cap)
		n += (size_t)snprintf(big + n, cap - n, "250-more\r\n");
	assert_int_equal(feed_big(UR_SMTP, UR_ONE, big, n, 0), UR_INVALID);
	assert_int_equal(r.err, UR_E_LINES);
	/* few lines, many bytes */
	n = 0;
	for (unsigned i = 0; i < 40; i++) {
		memcpy(big + n, "250-", 4);
		memset(big + n + 4, 'z', 4000);
		memcpy(big + n + 4004, "\r\n", 2);
		n += 4006;
	}
	assert_int_equal(feed_big(UR_SMTP, UR_ONE, big, n, 1000), UR_INVALID);
	assert_int_equal(r.err, UR_E_BYTES);
	/* NUL, and invalid stays invalid */
	assert_int_equal(feed_big(UR_POP3, UR_ONE, "+OK a\0b\r\n", 9, 0),
	    UR_INVALID);
	assert_int_equal(r.err, UR_E_NUL);
	assert_int_equal(upstream_resp_feed(&r, "+OK\r\n", 5, &n), UR_INVALID);
	assert_int_equal(n, 0);
	free(big);
}

/* Several replies in one buffer, with begin between them. */
static void
test_sequence(void **state)
{
	const char *in = "* OK hi\r\na OK done\r\nb NO [UNAVAILABLE] x\r\n";
	size_t off = 0, used, n = strlen(in);

	(void)state;
	upstream_resp_init(&r, UR_IMAP);
	assert_int_equal(upstream_resp_feed(&r, in, n, &used), UR_DONE);
	off += used;
	upstream_resp_begin(&r, UR_TAGGED, "a");
	assert_int_equal(upstream_resp_feed(&r, in + off, n - off, &used),
	    UR_DONE);
	assert_int_equal(r.lines, 1);
	off += used;
	upstream_resp_begin(&r, UR_TAGGED, "b");
	assert_int_equal(upstream_resp_feed(&r, in + off, n - off, &used),
	    UR_DONE);
	assert_int_equal(r.status, UR_S_NO);
	assert_int_equal(off + used, n);
	assert_string_equal(upstream_resp_err_name(UR_E_LITERAL), "literal");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_greeting),
		cmocka_unit_test(test_imap_tagged),
		cmocka_unit_test(test_imap_literal),
		cmocka_unit_test(test_pop3),
		cmocka_unit_test(test_smtp),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_sequence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
