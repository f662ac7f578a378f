/*
 * test_smtp_cmd.c - the SMTP/ESMTP/LMTP command line parser
 * (proto/smtp_cmd.c and friends) and xtext (proto/smtp_xtext.c).
 *
 * Every line is parsed from its own exactly-sized heap copy, so a read
 * past the line is an ASan report, and every result is checked for the
 * contract: an answer exactly when refused, and every slice inside the
 * line or the command's decode area. The RFC examples come first, then
 * the hostile lines: each limit at and one past it, NUL, CR, LF inside,
 * 8-bit bytes with and without SMTPUTF8, bad UTF-8, huge numbers, too
 * many parameters, words not single-spaced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proto/smtp_cmd.h"
#include "proto/smtp_xtext.h"

#define ALL_EXT                                                                \
	(SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME |             \
	    SMTP_EXT_SMTPUTF8 | SMTP_EXT_AUTH | SMTP_EXT_DSN)

static const struct smtp_cmd_conf conf_all = { .ext = ALL_EXT };
static const struct smtp_cmd_conf conf_none = { .ext = 0 };

/* The line of the last parse stays allocated until the next one, so the
 * slices can be compared. */
static char *last_line;
static struct smtp_cmd cmd;

static void
check_slice(const struct smtp_str *s, const char *line, size_t len)
{
	const char *dec = cmd.dec;

	if (s->p == NULL) {
		assert_int_equal(s->len, 0);
		return;
	}
	if (s->p >= line && s->p <= line + len) {
		assert_true(s->len <= (size_t)(line + len - s->p));
		return;
	}
	assert_true(s->p >= dec && s->p + s->len <= dec + cmd.dec_used);
}

static enum smtp_cmd_rc
parse_n(const struct smtp_cmd_conf *conf, unsigned flags, const char *line,
    size_t len)
{
	enum smtp_cmd_rc rc;

	free(last_line);
	last_line = malloc(len ? len : 1);
	assert_non_null(last_line);
	memcpy(last_line, line, len);
	rc = smtp_cmd_parse(&cmd, conf, flags, last_line, len);
	if (rc == SMTP_CMD_OK) {
		assert_null(cmd.err);
	} else {
		assert_int_equal(rc, SMTP_CMD_INVALID);
		assert_non_null(cmd.err);
		assert_true(cmd.err->code >= 500 && cmd.err->code < 600);
		assert_int_equal(strlen(cmd.err->enh), 5);
		assert_true(cmd.err->enh[0] == '5' && cmd.err->enh[1] == '.');
		assert_true(strlen(cmd.err->text) > 0);
		check_slice(&cmd.bad, last_line, len);
	}
	check_slice(&cmd.arg, last_line, len);
	check_slice(&cmd.path.mailbox, last_line, len);
	check_slice(&cmd.path.local, last_line, len);
	check_slice(&cmd.path.domain, last_line, len);
	check_slice(&cmd.params.auth, last_line, len);
	check_slice(&cmd.params.envid, last_line, len);
	check_slice(&cmd.params.orcpt, last_line, len);
	check_slice(&cmd.params.orcpt_type, last_line, len);
	check_slice(&cmd.ir, last_line, len);
	for (int i = 0; i < SMTP_XA_COUNT; i++)
		check_slice(&cmd.xclient.val[i], last_line, len);
	assert_true(cmd.dec_used <= SMTP_CMD_DEC_MAX);
	return rc;
}

static enum smtp_cmd_rc
parse(const struct smtp_cmd_conf *conf, unsigned flags, const char *line)
{
	return parse_n(conf, flags, line, strlen(line));
}

static void
ok_(const struct smtp_cmd_conf *conf, unsigned flags, const char *line,
    enum smtp_verb verb)
{
	if (parse(conf, flags, line) != SMTP_CMD_OK)
		fail_msg("'%s': %u %s %s", line, cmd.err->code, cmd.err->enh,
		    cmd.err->text);
	assert_int_equal(cmd.verb, verb);
}

static void
bad_(const struct smtp_cmd_conf *conf, unsigned flags, const char *line,
    size_t len, unsigned code, const char *enh)
{
	if (parse_n(conf, flags, line, len) != SMTP_CMD_INVALID)
		fail_msg("'%.*s' was accepted", (int)len, line);
	if (cmd.err->code != code || strcmp(cmd.err->enh, enh) != 0)
		fail_msg("'%.*s': %u %s %s, want %u %s", (int)len, line,
		    cmd.err->code, cmd.err->enh, cmd.err->text, code, enh);
}

#define OK(line, verb) ok_(&conf_all, 0, line, verb)
#define BAD(line, code, enh) bad_(&conf_all, 0, line, strlen(line), code, enh)

static void
assert_str(struct smtp_str s, const char *want)
{
	if (s.p == NULL)
		fail_msg("absent, want '%s'", want);
	if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
		fail_msg("'%.*s', want '%s'", (int)s.len, s.p, want);
}

/* A string of n copies of c. */
static char *
rep(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static char *
cat(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	assert_non_null(s);
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

/* a, n copies of ch, b */
static char *
catrep(const char *a, char ch, size_t n, const char *b)
{
	char *r = rep(ch, n), *s = cat(a, r, b);

	free(r);
	return s;
}

/* RFC 5321 appendix D.1 and D.3, RFC 2033 4.2 */
static void
test_rfc_sessions(void **state)
{
	OK("EHLO bar.com", SMTP_EHLO);
	assert_str(cmd.arg, "bar.com");
	assert_false(cmd.literal);
	OK("MAIL FROM:<Smith@bar.com>", SMTP_MAIL);
	assert_str(cmd.path.mailbox, "Smith@bar.com");
	assert_str(cmd.path.local, "Smith");
	assert_str(cmd.path.domain, "bar.com");
	assert_false(cmd.path.null || cmd.path.quoted || cmd.path.utf8);
	assert_int_equal(cmd.params.count, 0);
	OK("RCPT TO:<Jones@foo.com>", SMTP_RCPT);
	assert_str(cmd.path.mailbox, "Jones@foo.com");
	OK("DATA", SMTP_DATA);
	OK("QUIT", SMTP_QUIT);
	OK("HELO foo.com", SMTP_HELO);
	assert_str(cmd.arg, "foo.com");
	OK("VRFY Crispin", SMTP_VRFY);
	assert_str(cmd.arg, "Crispin");
	OK("EXPN Example-People", SMTP_EXPN);
	OK("LHLO foo.edu", SMTP_LHLO);
	assert_str(cmd.arg, "foo.edu");
	OK("RSET", SMTP_RSET);
	OK("NOOP", SMTP_NOOP);
	assert_null(cmd.arg.p);
	OK("NOOP anything at all", SMTP_NOOP);
	assert_str(cmd.arg, "anything at all");
	OK("HELP", SMTP_HELP);
	OK("HELP MAIL", SMTP_HELP);
	OK("STARTTLS", SMTP_STARTTLS);
	OK("TURN", SMTP_TURN);
	OK("ETRN @example.com", SMTP_ETRN);
	assert_str(cmd.arg, "@example.com");
}

static void
test_verbs_any_case(void **state)
{
	OK("ehlo Bar.COM", SMTP_EHLO);
	OK("Mail From:<a@b>", SMTP_MAIL);
	OK("rcpt to:<a@b>", SMTP_RCPT);
	OK("data", SMTP_DATA);
	OK("StartTLS", SMTP_STARTTLS);
	assert_string_equal(smtp_verb_name(SMTP_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_LHLO), "LHLO");
	assert_string_equal(smtp_verb_name(SMTP_UNKNOWN), "");
}

static void
test_unknown(void **state)
{
	BAD("FOO", 500, "5.5.2");
	assert_int_equal(cmd.verb, SMTP_UNKNOWN);
	BAD("", 500, "5.5.2");
	BAD(" MAIL FROM:<a@b>", 500, "5.5.2");
	BAD("MAILFROM:<a@b>", 500, "5.5.2");
	BAD("STARTTLSX", 500, "5.5.2");
	BAD("EHL", 500, "5.5.2");
	BAD("\xc3\xa9HLO x", 500, "5.5.2");
	/* the bad slice names the word, for the log */
	BAD("XYZZY plugh", 500, "5.5.2");
	assert_int_equal(cmd.bad.len, 5);
}

/* NUL, CR, LF, TAB, DEL: anywhere, answered 500 5.5.2, verb kept */
static void
test_control_characters(void **state)
{
	static const char *lines[] = {
		"MAIL FROM:<a@b>\r",
		"RCPT TO:<a\r@b>",
		"RCPT TO:<a@b>\rDATA",
		"RCPT TO:<a@b>\nDATA",
		"NOOP\t",
		"NOOP a\x7f",
		"EHLO a.b\x01",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		BAD(lines[i], 500, "5.5.2");
	bad_(&conf_all, 0, "MAIL FROM:<a@b>\0", 16, 500, "5.5.2");
	assert_int_equal(cmd.verb, SMTP_MAIL);
	bad_(&conf_all, 0, "MAIL FROM:<a\0@b>", 16, 500, "5.5.2");
	bad_(&conf_all, 0, "\0", 1, 500, "5.5.2");
	bad_(&conf_all, 0, "DATA\0", 5, 500, "5.5.2");
	assert_int_equal(cmd.verb, SMTP_DATA);
}

static void
test_no_arguments(void **state)
{
	BAD("DATA x", 501, "5.5.4");
	assert_int_equal(cmd.verb, SMTP_DATA);
	BAD("DATA ", 501, "5.5.4");
	BAD("QUIT now", 501, "5.5.4");
	BAD("RSET ", 501, "5.5.4");
	BAD("STARTTLS x", 501, "5.5.4");
	BAD("TURN x", 501, "5.5.4");
	BAD("NOOP ", 501, "5.5.4");
	BAD("HELP ", 501, "5.5.4");
	BAD("NOOP  x", 501, "5.5.4");
	BAD("VRFY", 501, "5.5.4");
	BAD("VRFY ", 501, "5.5.4");
	BAD("VRFY x ", 501, "5.5.4");
	BAD("VRFY j\xc3\xb6rg", 501, "5.5.4");
	BAD("EXPN", 501, "5.5.4");
	BAD("ETRN", 501, "5.5.4");
	OK("VRFY <postmaster@example.com>", SMTP_VRFY);
}

static void
test_helo(void **state)
{
	char *s, *label63 = rep('a', 63), *label64 = rep('a', 64);

	OK("EHLO [192.0.2.1]", SMTP_EHLO);
	assert_true(cmd.literal);
	assert_str(cmd.arg, "[192.0.2.1]");
	OK("EHLO [IPv6:2001:db8::1]", SMTP_EHLO);
	assert_true(cmd.literal);
	OK("HELO [127.0.0.1]", SMTP_HELO);
	OK("EHLO localhost", SMTP_EHLO);
	OK("EHLO xn--bcher-kva.example", SMTP_EHLO);
	OK("EHLO 3com.com", SMTP_EHLO);
	BAD("EHLO", 501, "5.5.4");
	BAD("EHLO ", 501, "5.5.4");
	BAD("EHLO a b", 501, "5.5.4");
	BAD("EHLO  a", 501, "5.5.4");
	BAD("EHLO a ", 501, "5.5.4");
	BAD("EHLO exa_mple.com", 501, "5.5.4");
	BAD("EHLO -a.com", 501, "5.5.4");
	BAD("EHLO a-.com", 501, "5.5.4");
	BAD("EHLO a..com", 501, "5.5.4");
	BAD("EHLO a.com.", 501, "5.5.4");
	BAD("EHLO .a.com", 501, "5.5.4");
	BAD("EHLO b\xc3\xbc"
	    "cher.example",
	    501, "5.5.4");
	BAD("EHLO [192.0.2.1", 501, "5.5.4");
	BAD("EHLO [300.0.2.1]", 501, "5.5.4");
	BAD("EHLO [192.0.2.1]x", 501, "5.5.4");
	BAD("LHLO", 501, "5.5.4");
	s = cat("EHLO ", label63, ".example");
	OK(s, SMTP_EHLO);
	free(s);
	s = cat("EHLO ", label64, ".example");
	BAD(s, 501, "5.5.4");
	free(s);
	free(label63);
	free(label64);
}

static void
test_domain_length(void **state)
{
	/* four labels of 63: 255 octets, the most there can be */
	char dom[300], line[400];

	for (int l = 0; l < 4; l++) {
		memset(dom + l * 64, 'a' + l, 63);
		dom[l * 64 + 63] = '.';
	}
	dom[255] = '\0';
	snprintf(line, sizeof(line), "EHLO %s", dom);
	OK(line, SMTP_EHLO);
	/* but no path can hold it: "<a@" and ">" make 259 */
	snprintf(line, sizeof(line), "RCPT TO:<a@%s>", dom);
	BAD(line, 501, "5.1.3");
	assert_string_equal(cmd.err->text, "Recipient address too long");
	/* 256: the last label one shorter, then ".e" */
	memcpy(dom + 254, ".e", 3);
	assert_int_equal(strlen(dom), 256);
	snprintf(line, sizeof(line), "EHLO %s", dom);
	BAD(line, 501, "5.5.4");
	snprintf(line, sizeof(line), "RCPT TO:<a@%s>", dom);
	BAD(line, 501, "5.1.3");
	assert_string_equal(cmd.err->text, "Recipient address too long");
}

static void
test_literals(void **state)
{
	static const char *good[] = {
		"[0.0.0.0]",
		"[255.255.255.255]",
		"[010.1.1.1]",
		"[IPv6:::]",
		"[IPv6:::1]",
		"[ipv6:1::]",
		"[IPv6:1:2:3:4:5:6:7:8]",
		"[IPv6:1:2:3:4:5:6::]",
		"[IPv6:1::2:3:4:5:6]",
		"[IPv6:ffff:FFFF::]",
		"[IPv6:::ffff:192.0.2.1]",
		"[IPv6:1:2:3:4:5:6:192.0.2.1]",
		"[IPv6:1:2:3:4::192.0.2.1]",
		"[IPv6:::192.0.2.1]",
	};
	static const char *bad[] = {
		"[]",
		"[1.2.3]",
		"[1.2.3.4.5]",
		"[256.1.1.1]",
		"[1.2.3.4 ]",
		"[1..2.3]",
		"[0001.1.1.1]",
		"[IPv6:]",
		"[IPv6:1]",
		"[IPv6:1:2:3:4:5:6:7]",
		"[IPv6:1:2:3:4:5:6:7:8:9]",
		"[IPv6:1:2:3:4:5:6:7::]", /* "::" for one group */
		"[IPv6:1::2:3:4:5:6:7]",  /* the same */
		"[IPv6:1::2::3]",
		"[IPv6:12345::]",
		"[IPv6::1]",
		"[IPv6:1:]",
		"[IPv6:1:::2]",
		"[IPv6:g::]",
		"[IPv6:1:2:3:4:5::192.0.2.1]", /* 5 groups + v4 with :: */
		"[IPv6:1:2:3:4:5:6:7:192.0.2.1]",
		"[IPv6:192.0.2.1]",
		"[IPv6:::192.0.2.1:1]",
		"[IPv6:::1%eth0]",
		"[tag:content]",
		"[192.0.2.1",
		"192.0.2.1]",
	};
	char line[128];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(line, sizeof(line), "RCPT TO:<a@%s>", good[i]);
		OK(line, SMTP_RCPT);
		assert_true(cmd.path.literal);
		assert_str(cmd.path.domain, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "RCPT TO:<a@%s>", bad[i]);
		BAD(line, 501, "5.1.3");
	}
}

static void
test_paths(void **state)
{
	OK("MAIL FROM:<>", SMTP_MAIL);
	assert_true(cmd.path.null);
	assert_int_equal(cmd.path.mailbox.len, 0);
	OK("MAIL FROM:<> SIZE=10", SMTP_MAIL);
	assert_true(cmd.path.null);
	BAD("RCPT TO:<>", 501, "5.1.3");

	/* RFC 5321 4.1.1.3: source routes, accepted and dropped */
	OK("RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>", SMTP_RCPT);
	assert_true(cmd.path.route);
	assert_str(cmd.path.mailbox, "userc@d.bar.org");
	assert_str(cmd.path.domain, "d.bar.org");
	OK("MAIL FROM:<@a:b@c>", SMTP_MAIL);
	assert_str(cmd.path.mailbox, "b@c");
	BAD("RCPT TO:<@hosta.int,jkl.org:userc@d.bar.org>", 501, "5.1.3");
	BAD("RCPT TO:<@hosta.int:>", 501, "5.1.3");
	BAD("RCPT TO:<@:a@b>", 501, "5.1.3");
	BAD("RCPT TO:<@a,:b@c>", 501, "5.1.3");
	BAD("RCPT TO:<@[1.2.3.4]:b@c>", 501, "5.1.3");
	BAD("RCPT TO:<@a.b.c>", 501, "5.1.3");

	/* postmaster */
	OK("RCPT TO:<Postmaster>", SMTP_RCPT);
	assert_true(cmd.path.postmaster);
	assert_str(cmd.path.mailbox, "Postmaster");
	assert_int_equal(cmd.path.domain.len, 0);
	OK("RCPT TO:<POSTMASTER>", SMTP_RCPT);
	assert_true(cmd.path.postmaster);
	OK("RCPT TO:<postmaster@example.com>", SMTP_RCPT);
	assert_false(cmd.path.postmaster);
	assert_str(cmd.path.domain, "example.com");
	BAD("MAIL FROM:<Postmaster>", 501, "5.1.7");
	BAD("RCPT TO:<@a:Postmaster>", 501, "5.1.3");
	BAD("RCPT TO:<Postmasterx>", 501, "5.1.3");
	BAD("RCPT TO:<user>", 501, "5.1.3");

	/* dot-strings */
	OK("MAIL FROM:<a.b.c@example.com>", SMTP_MAIL);
	OK("MAIL FROM:<!#$%&'*+-/=?^_`{|}~@example.com>", SMTP_MAIL);
	assert_str(cmd.path.local, "!#$%&'*+-/=?^_`{|}~");
	BAD("MAIL FROM:<.a@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<a.@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<a..b@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<a b@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<a(b)@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<a@>", 501, "5.1.7");
	BAD("MAIL FROM:<a@b", 501, "5.1.7");
	BAD("MAIL FROM:<a@b>>", 501, "5.5.4");
	BAD("MAIL FROM:<a@@b>", 501, "5.1.7");
	BAD("MAIL FROM:<a@b@c>", 501, "5.1.7");
	BAD("MAIL FROM:a@b", 501, "5.1.7");
	BAD("MAIL FROM:<a@b.c.>", 501, "5.1.7");
	BAD("MAIL FROM:<", 501, "5.1.7");
	BAD("MAIL FROM:", 501, "5.1.7");
	BAD("MAIL FROM:<<a@b>>", 501, "5.1.7");

	/* quoted-strings */
	OK("MAIL FROM:<\"john doe\"@example.com>", SMTP_MAIL);
	assert_true(cmd.path.quoted);
	assert_str(cmd.path.local, "john doe");
	assert_str(cmd.path.mailbox, "\"john doe\"@example.com");
	OK("MAIL FROM:<\"a\\\"b\\\\c\"@example.com>", SMTP_MAIL);
	assert_str(cmd.path.local, "a\"b\\c");
	OK("MAIL FROM:<\"\"@example.com>", SMTP_MAIL);
	assert_int_equal(cmd.path.local.len, 0);
	OK("MAIL FROM:<\"a@b\"@example.com>", SMTP_MAIL);
	assert_str(cmd.path.local, "a@b");
	assert_str(cmd.path.domain, "example.com");
	BAD("MAIL FROM:<\"abc@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<\"a\"b@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<a\"b\"@example.com>", 501, "5.1.7");
	BAD("MAIL FROM:<\"a\\\"@example.com>", 501, "5.1.7");

	/* the verb's own words */
	BAD("MAIL TO:<a@b>", 501, "5.5.4");
	BAD("MAIL", 501, "5.5.4");
	BAD("MAIL ", 501, "5.5.4");
	BAD("MAIL FROM", 501, "5.5.4");
	BAD("RCPT FROM:<a@b>", 501, "5.5.4");
	BAD("RCPT", 501, "5.5.4");
	BAD("MAIL  FROM:<a@b>", 501, "5.5.4");
	BAD("MAIL FROM :<a@b>", 501, "5.5.4");
}

/* RFC 5321 has no space after the colon; one is accepted on request */
static void
test_space_after_colon(void **state)
{
	struct smtp_cmd_conf lax = conf_all;

	lax.space_after_colon = true;
	BAD("MAIL FROM: <a@b>", 501, "5.1.7");
	BAD("RCPT TO: <a@b>", 501, "5.1.3");
	ok_(&lax, 0, "MAIL FROM: <a@b>", SMTP_MAIL);
	assert_str(cmd.path.mailbox, "a@b");
	ok_(&lax, 0, "RCPT TO: <a@b> NOTIFY=NEVER", SMTP_RCPT);
	ok_(&lax, 0, "MAIL FROM:<a@b>", SMTP_MAIL);
	bad_(&lax, 0, "MAIL FROM:  <a@b>", 17, 501, "5.1.7");
}

static void
test_length_limits(void **state)
{
	char *l64 = rep('l', 64), *l65 = rep('l', 65);
	char *d189 = rep('d', 63), *s;
	char dom[200], line[600];

	s = cat("MAIL FROM:<", l64, "@example.com>");
	OK(s, SMTP_MAIL);
	free(s);
	s = cat("MAIL FROM:<", l65, "@example.com>");
	BAD(s, 501, "5.1.7");
	assert_string_equal(cmd.err->text, "Sender address too long");
	free(s);
	s = cat("RCPT TO:<", l65, "@example.com>");
	BAD(s, 501, "5.1.3");
	free(s);
	/* a quoted local part counts as written, quotes included */
	s = catrep("MAIL FROM:<\"", 'q', 62, "\"@example.com>");
	OK(s, SMTP_MAIL);
	assert_int_equal(cmd.path.local.len, 62);
	free(s);
	s = catrep("MAIL FROM:<\"", 'q', 63, "\"@example.com>");
	BAD(s, 501, "5.1.7");
	free(s);

	/* the path: 256 octets with its brackets. 64 + 1 + 189 + 2 */
	snprintf(dom, sizeof(dom), "%s.%s.%s", d189, d189, d189);
	assert_int_equal(strlen(dom), 191);
	dom[189] = '\0';
	assert_true(dom[188] != '.');
	snprintf(line, sizeof(line), "RCPT TO:<%s@%s>", l64, dom);
	OK(line, SMTP_RCPT);
	assert_int_equal(cmd.path.mailbox.len, 254);
	snprintf(line, sizeof(line), "RCPT TO:<%s@%sx>", l64, dom);
	BAD(line, 501, "5.1.3");
	assert_string_equal(cmd.err->text, "Recipient address too long");
	/* and with a source route, which counts */
	snprintf(line, sizeof(line), "RCPT TO:<@a:%s@%s>", l64, dom);
	BAD(line, 501, "5.1.3");
	free(l64);
	free(l65);
	free(d189);
}

/* RFC 6531: UTF-8 only when offered, and only with SMTPUTF8 */
static void
test_smtputf8(void **state)
{
	static const char mail[] = "MAIL FROM:<j\xc3\xb6rg@example.com>";
	static const char rfc[] = "MAIL FROM:<\xe7\x94\xa8\xe6\x88\xb7@"
				  "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf"
				  "\xe5\x91\x8a> SMTPUTF8";
	struct smtp_cmd_conf noutf8 = conf_all;

	noutf8.ext &= ~(unsigned)SMTP_EXT_SMTPUTF8;
	BAD(mail, 553, "5.6.7");
	ok_(&conf_all, 0, "MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8",
	    SMTP_MAIL);
	assert_true(cmd.path.utf8);
	assert_true(cmd.params.seen & SMTP_P_SMTPUTF8);
	ok_(&conf_all, 0, rfc, SMTP_MAIL);
	assert_true(cmd.path.utf8);
	/* not offered: the grammar has no 8-bit at all */
	bad_(&noutf8, 0, mail, strlen(mail), 501, "5.1.7");
	bad_(&noutf8, 0, rfc, strlen(rfc), 501, "5.1.7");
	/* RCPT goes by the transaction */
	BAD("RCPT TO:<j\xc3\xb6rg@example.com>", 553, "5.6.7");
	ok_(&conf_all, SMTP_CMD_TXN_UTF8, "RCPT TO:<j\xc3\xb6rg@example.com>",
	    SMTP_RCPT);
	ok_(&conf_all, SMTP_CMD_TXN_UTF8,
	    "RCPT TO:<a@b\xc3\xbc"
	    "cher.de>",
	    SMTP_RCPT);
	assert_true(cmd.path.utf8);
	ok_(&conf_all, SMTP_CMD_TXN_UTF8, "RCPT TO:<\"j\xc3\xb6 rg\"@x.de>",
	    SMTP_RCPT);
	assert_str(cmd.path.local, "j\xc3\xb6 rg");
	bad_(&noutf8, SMTP_CMD_TXN_UTF8, "RCPT TO:<j\xc3\xb6rg@x>",
	    strlen("RCPT TO:<j\xc3\xb6rg@x>"), 501, "5.1.3");
	/* ASCII paths do not need it */
	ok_(&conf_all, 0, "RCPT TO:<a@b>", SMTP_RCPT);
	assert_false(cmd.path.utf8);

	/* ill-formed UTF-8 is never a path */
	static const char *broken[] = {
		"\xc0\xaf",	    /* overlong */
		"\xc1\xbf",	    /* overlong */
		"\xe0\x80\xaf",	    /* overlong */
		"\xed\xa0\x80",	    /* surrogate */
		"\xf4\x90\x80\x80", /* past U+10FFFF */
		"\xf5\x80\x80\x80",
		"\x80",	    /* lone continuation */
		"\xc3",	    /* truncated */
		"\xe4\xbe", /* truncated */
		"\xff",
	};
	char line[64];

	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		snprintf(line, sizeof(line), "RCPT TO:<a%s@x>", broken[i]);
		bad_(&conf_all, SMTP_CMD_TXN_UTF8, line, strlen(line), 501,
		    "5.1.3");
		snprintf(line, sizeof(line), "RCPT TO:<a@x%s>", broken[i]);
		bad_(&conf_all, SMTP_CMD_TXN_UTF8, line, strlen(line), 501,
		    "5.1.3");
	}
	/* 8-bit in a parameter value is never allowed */
	BAD("MAIL FROM:<a@b> SMTPUTF8 ENVID=\xc3\xa9", 501, "5.5.4");
}

static void
test_params(void **state)
{
	OK("MAIL FROM:<a@b> SIZE=1000000", SMTP_MAIL);
	assert_true(cmd.params.seen & SMTP_P_SIZE);
	assert_true(cmd.params.size == 1000000);
	OK("MAIL FROM:<a@b> size=0", SMTP_MAIL);
	assert_true(cmd.params.size == 0);
	OK("MAIL FROM:<a@b> SIZE=18446744073709551615", SMTP_MAIL);
	assert_true(cmd.params.size == UINT64_MAX);
	/* 20 digits past 64 bits: over any limit, not an error */
	OK("MAIL FROM:<a@b> SIZE=99999999999999999999", SMTP_MAIL);
	assert_true(cmd.params.size == UINT64_MAX);
	BAD("MAIL FROM:<a@b> SIZE=999999999999999999999", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> SIZE=-1", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> SIZE=1k", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> SIZE=", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> SIZE", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> SIZE=1 SIZE=2", 501, "5.5.4");
	assert_string_equal(cmd.err->text, "Duplicate parameter");
	BAD("RCPT TO:<a@b> SIZE=1", 555, "5.5.4");

	OK("MAIL FROM:<a@b> BODY=8BITMIME", SMTP_MAIL);
	assert_int_equal(cmd.params.body, SMTP_BODY_8BITMIME);
	OK("MAIL FROM:<a@b> BODY=7bit", SMTP_MAIL);
	assert_int_equal(cmd.params.body, SMTP_BODY_7BIT);
	OK("MAIL FROM:<a@b> BODY=BINARYMIME", SMTP_MAIL);
	assert_int_equal(cmd.params.body, SMTP_BODY_BINARYMIME);
	BAD("MAIL FROM:<a@b> BODY=8BIT", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> BODY", 501, "5.5.4");

	OK("MAIL FROM:<a@b> SMTPUTF8", SMTP_MAIL);
	BAD("MAIL FROM:<a@b> SMTPUTF8=yes", 501, "5.5.4");
	BAD("RCPT TO:<a@b> SMTPUTF8", 555, "5.5.4");

	/* unknown: 555, named in bad */
	BAD("MAIL FROM:<a@b> FOO=BAR", 555, "5.5.4");
	assert_int_equal(cmd.bad.len, 3);
	BAD("MAIL FROM:<a@b> X-FOO", 555, "5.5.4");
	BAD("MAIL FROM:<a@b> REQUIRETLS", 555, "5.5.4");
	BAD("MAIL FROM:<a@b> SIZE=1 MT-PRIORITY=3", 555, "5.5.4");
	/* malformed keywords and values: 501 */
	BAD("MAIL FROM:<a@b> -X=1", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> X_Y=1", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> =1", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> X=a=b", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> X=", 501, "5.5.4");

	/* spacing */
	BAD("MAIL FROM:<a@b>  SIZE=1", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> SIZE=1 ", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> ", 501, "5.5.4");
	BAD("MAIL FROM:<a@b>SIZE=1", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> SIZE=1  BODY=7BIT", 501, "5.5.4");
}

static void
test_params_not_offered(void **state)
{
	static const char *mail[] = {
		"MAIL FROM:<a@b> SIZE=1",
		"MAIL FROM:<a@b> BODY=7BIT",
		"MAIL FROM:<a@b> SMTPUTF8",
		"MAIL FROM:<a@b> AUTH=<>",
		"MAIL FROM:<a@b> RET=FULL",
		"MAIL FROM:<a@b> ENVID=x",
		"RCPT TO:<a@b> NOTIFY=NEVER",
		"RCPT TO:<a@b> ORCPT=rfc822;a@b",
	};
	struct smtp_cmd_conf only8 = { .ext = SMTP_EXT_8BITMIME };

	for (size_t i = 0; i < sizeof(mail) / sizeof(mail[0]); i++) {
		ok_(&conf_all, 0, mail[i], i < 6 ? SMTP_MAIL : SMTP_RCPT);
		bad_(&conf_none, 0, mail[i], strlen(mail[i]), 555, "5.5.4");
	}
	/* BODY= with one type offered and not the other */
	ok_(&only8, 0, "MAIL FROM:<a@b> BODY=8BITMIME", SMTP_MAIL);
	bad_(&only8, 0, "MAIL FROM:<a@b> BODY=BINARYMIME",
	    strlen("MAIL FROM:<a@b> BODY=BINARYMIME"), 555, "5.5.4");
}

static void
test_max_params(void **state)
{
	struct smtp_cmd_conf three = conf_all;
	char line[2048];
	size_t n;

	three.max_params = 3;
	ok_(&three, 0, "MAIL FROM:<a@b> SIZE=1 BODY=7BIT RET=FULL", SMTP_MAIL);
	assert_int_equal(cmd.params.count, 3);
	bad_(&three, 0, "MAIL FROM:<a@b> SIZE=1 BODY=7BIT RET=FULL ENVID=x",
	    strlen("MAIL FROM:<a@b> SIZE=1 BODY=7BIT RET=FULL ENVID=x"), 501,
	    "5.5.4");
	assert_string_equal(cmd.err->text, "Too many parameters");
	/* the default (16); counted before any is judged */
	n = (size_t)snprintf(line, sizeof(line), "MAIL FROM:<a@b>");
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " X%d", i);
	BAD(line, 555, "5.5.4");
	n += (size_t)snprintf(line + n, sizeof(line) - n, " X");
	BAD(line, 501, "5.5.4");
	assert_string_equal(cmd.err->text, "Too many parameters");
	n = (size_t)snprintf(line, sizeof(line), "MAIL FROM:<a@b>");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " SIZE=%d",
		    i);
	BAD(line, 501, "5.5.4");
	assert_string_equal(cmd.err->text, "Too many parameters");
	/* a huge ceiling is held to SMTP_PARAMS_MAX */
	three.max_params = 100000;
	n = (size_t)snprintf(line, sizeof(line), "RCPT TO:<a@b> NOTIFY=NEVER");
	for (int i = 0; i < SMTP_PARAMS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " Y");
	bad_(&three, 0, line, n, 501, "5.5.4");
	assert_string_equal(cmd.err->text, "Too many parameters");
}

/* RFC 3461 examples, xtext */
static void
test_dsn(void **state)
{
	OK("MAIL FROM:<e@x> RET=HDRS ENVID=QQ314159", SMTP_MAIL);
	assert_int_equal(cmd.params.ret, SMTP_RET_HDRS);
	assert_str(cmd.params.envid, "QQ314159");
	OK("MAIL FROM:<e@x> RET=full", SMTP_MAIL);
	assert_int_equal(cmd.params.ret, SMTP_RET_FULL);
	BAD("MAIL FROM:<e@x> RET=ALL", 501, "5.5.4");
	BAD("RCPT TO:<e@x> RET=FULL", 555, "5.5.4");
	OK("MAIL FROM:<e@x> ENVID=a+2Bb+3Dc", SMTP_MAIL);
	assert_str(cmd.params.envid, "a+b=c");
	BAD("MAIL FROM:<e@x> ENVID=a+2bb", 501, "5.5.4"); /* lower-case hex */
	BAD("MAIL FROM:<e@x> ENVID=a+2", 501, "5.5.4");
	BAD("MAIL FROM:<e@x> ENVID=a+", 501, "5.5.4");
	BAD("MAIL FROM:<e@x> ENVID=a+GG", 501, "5.5.4");
	BAD("MAIL FROM:<e@x> ENVID=a+00b", 501, "5.5.4");   /* NUL */
	BAD("MAIL FROM:<e@x> ENVID=a+0D+0A", 501, "5.5.4"); /* CRLF */
	BAD("MAIL FROM:<e@x> ENVID=a+20b", 501, "5.5.4");   /* space */
	BAD("MAIL FROM:<e@x> ENVID=+C3+A9", 501, "5.5.4");  /* 8-bit */
	BAD("RCPT TO:<e@x> ENVID=x", 555, "5.5.4");
	char *s = catrep("MAIL FROM:<e@x> ENVID=", 'e', 100, "");
	OK(s, SMTP_MAIL);
	free(s);
	s = catrep("MAIL FROM:<e@x> ENVID=", 'e', 101, "");
	BAD(s, 501, "5.5.4");
	free(s);

	OK("RCPT TO:<u@y> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+40Example.COM",
	    SMTP_RCPT);
	assert_int_equal(cmd.params.notify,
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
	assert_str(cmd.params.orcpt_type, "rfc822");
	assert_str(cmd.params.orcpt, "Bob@Example.COM");
	OK("RCPT TO:<u@y> NOTIFY=never", SMTP_RCPT);
	assert_int_equal(cmd.params.notify, SMTP_NOTIFY_NEVER);
	OK("RCPT TO:<u@y> NOTIFY=DELAY,SUCCESS,FAILURE", SMTP_RCPT);
	BAD("RCPT TO:<u@y> NOTIFY=NEVER,SUCCESS", 501, "5.5.4");
	BAD("RCPT TO:<u@y> NOTIFY=SUCCESS,SUCCESS", 501, "5.5.4");
	BAD("RCPT TO:<u@y> NOTIFY=SUCCESS,", 501, "5.5.4");
	BAD("RCPT TO:<u@y> NOTIFY=,SUCCESS", 501, "5.5.4");
	BAD("RCPT TO:<u@y> NOTIFY=ALWAYS", 501, "5.5.4");
	BAD("MAIL FROM:<u@y> NOTIFY=NEVER", 555, "5.5.4");
	OK("RCPT TO:<u@y> ORCPT=utf-8;a+20b@c", SMTP_RCPT);
	assert_str(cmd.params.orcpt, "a b@c");
	BAD("RCPT TO:<u@y> ORCPT=rfc822", 501, "5.5.4");
	BAD("RCPT TO:<u@y> ORCPT=;a@b", 501, "5.5.4");
	BAD("RCPT TO:<u@y> ORCPT=rfc822;", 501, "5.5.4");
	BAD("RCPT TO:<u@y> ORCPT=rfc(822);a@b", 501, "5.5.4");
	BAD("RCPT TO:<u@y> ORCPT=rfc822;a+0Ab", 501, "5.5.4");
	BAD("RCPT TO:<u@y> ORCPT=rfc822;a+zz", 501, "5.5.4");
	s = catrep("RCPT TO:<u@y> ORCPT=rfc822;", 'o', 493, "");
	OK(s, SMTP_RCPT);
	assert_int_equal(cmd.params.orcpt.len, 493);
	free(s);
	s = catrep("RCPT TO:<u@y> ORCPT=rfc822;", 'o', 494, "");
	BAD(s, 501, "5.5.4");
	free(s);
}

/* RFC 4954 section 5 */
static void
test_auth_param(void **state)
{
	OK("MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com", SMTP_MAIL);
	assert_str(cmd.params.auth, "e=mc2@example.com");
	assert_false(cmd.params.auth_null);
	OK("MAIL FROM:<a@b> AUTH=<>", SMTP_MAIL);
	assert_true(cmd.params.auth_null);
	OK("MAIL FROM:<a@b> AUTH=+3C+3E", SMTP_MAIL);
	assert_true(cmd.params.auth_null);
	OK("MAIL FROM:<a@b> AUTH=\"a+20b\"@c", SMTP_MAIL);
	assert_str(cmd.params.auth, "\"a b\"@c");
	BAD("MAIL FROM:<a@b> AUTH=someone", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> AUTH=<a@b>", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> AUTH=a@b+00", 501, "5.5.4");
	BAD("MAIL FROM:<a@b> AUTH=", 501, "5.5.4");
	BAD("RCPT TO:<a@b> AUTH=<>", 555, "5.5.4");
	/* every decoding at once: the area holds them */
	OK("MAIL FROM:<\"q\"@b> AUTH=x@y ENVID=z", SMTP_MAIL);
	assert_str(cmd.path.local, "q");
	assert_str(cmd.params.auth, "x@y");
	assert_str(cmd.params.envid, "z");
}

static void
test_auth(void **state)
{
	/* RFC 4954 examples */
	OK("AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=", SMTP_AUTH);
	assert_string_equal(cmd.mech, "PLAIN");
	assert_str(cmd.ir, "dGVzdAB0ZXN0ADEyMzQ=");
	OK("AUTH PLAIN", SMTP_AUTH);
	assert_null(cmd.ir.p);
	OK("AUTH PLAIN =", SMTP_AUTH);
	assert_non_null(cmd.ir.p);
	assert_int_equal(cmd.ir.len, 0);
	OK("auth scram-sha-256", SMTP_AUTH);
	assert_string_equal(cmd.mech, "SCRAM-SHA-256");
	OK("AUTH X_Y-Z9", SMTP_AUTH);
	OK("AUTH ABCDEFGHIJKLMNOPQRST", SMTP_AUTH);
	BAD("AUTH ABCDEFGHIJKLMNOPQRSTU", 501, "5.5.4");
	BAD("AUTH", 501, "5.5.4");
	BAD("AUTH ", 501, "5.5.4");
	BAD("AUTH  PLAIN", 501, "5.5.4");
	BAD("AUTH PLAIN ", 501, "5.5.4");
	BAD("AUTH PLAIN  eA==", 501, "5.5.4");
	BAD("AUTH PLAIN eA== x", 501, "5.5.4");
	BAD("AUTH PLAIN e=A=", 501, "5.5.4");
	BAD("AUTH PLAIN eA===", 501, "5.5.4");
	BAD("AUTH PLAIN ==", 501, "5.5.4");
	BAD("AUTH PLAIN eA=", 501, "5.5.4");
	BAD("AUTH PLAIN A===", 501, "5.5.4");
	OK("AUTH PLAIN eHk=", SMTP_AUTH);
	OK("AUTH PLAIN eA", SMTP_AUTH); /* unpadded: base64's to judge */
	BAD("AUTH PL.AIN", 501, "5.5.4");
	BAD("AUTH PL\xc3\xa9", 501, "5.5.4");
	assert_int_equal(cmd.verb, SMTP_AUTH);
}

static void
test_bdat(void **state)
{
	OK("BDAT 1000", SMTP_BDAT);
	assert_true(cmd.chunk == 1000);
	assert_false(cmd.last);
	OK("BDAT 0 LAST", SMTP_BDAT);
	assert_true(cmd.chunk == 0 && cmd.last);
	OK("bdat 86 last", SMTP_BDAT);
	assert_true(cmd.chunk == 86 && cmd.last);
	OK("BDAT 18446744073709551615", SMTP_BDAT);
	assert_true(cmd.chunk == UINT64_MAX);
	BAD("BDAT 18446744073709551616", 501, "5.5.4");
	BAD("BDAT 99999999999999999999999999", 501, "5.5.4");
	BAD("BDAT", 501, "5.5.4");
	BAD("BDAT ", 501, "5.5.4");
	BAD("BDAT -1", 501, "5.5.4");
	BAD("BDAT +1", 501, "5.5.4");
	BAD("BDAT 1 LAST x", 501, "5.5.4");
	BAD("BDAT 1 FIRST", 501, "5.5.4");
	BAD("BDAT 1  LAST", 501, "5.5.4");
	BAD("BDAT 1 ", 501, "5.5.4");
	assert_int_equal(cmd.verb, SMTP_BDAT);
}

static void
test_xclient(void **state)
{
	const struct smtp_xclient *x = &cmd.xclient;

	OK("XCLIENT NAME=spike.porcupine.org ADDR=168.100.189.2 PORT=25 "
	   "PROTO=ESMTP HELO=spike.porcupine.org LOGIN=wietse",
	    SMTP_XCLIENT);
	assert_int_equal(x->state[SMTP_XA_NAME], SMTP_XV_VALUE);
	assert_str(x->val[SMTP_XA_NAME], "spike.porcupine.org");
	assert_str(x->val[SMTP_XA_ADDR], "168.100.189.2");
	assert_int_equal(x->family, AF_INET);
	assert_int_equal(x->port, 25);
	assert_str(x->val[SMTP_XA_PROTO], "ESMTP");
	assert_str(x->val[SMTP_XA_LOGIN], "wietse");
	assert_int_equal(x->state[SMTP_XA_DESTADDR], SMTP_XV_ABSENT);

	OK("XCLIENT ADDR=IPV6:2001:db8::1 DESTADDR=ipv6:::1 DESTPORT=587",
	    SMTP_XCLIENT);
	assert_str(x->val[SMTP_XA_ADDR], "2001:db8::1");
	assert_int_equal(x->family, AF_INET6);
	assert_str(x->val[SMTP_XA_DESTADDR], "::1");
	assert_int_equal(x->destfamily, AF_INET6);
	assert_int_equal(x->destport, 587);

	OK("XCLIENT NAME=[TEMPUNAVAIL] ADDR=[UNAVAILABLE] login=[unavailable]",
	    SMTP_XCLIENT);
	assert_int_equal(x->state[SMTP_XA_NAME], SMTP_XV_TEMPUNAVAIL);
	assert_int_equal(x->state[SMTP_XA_ADDR], SMTP_XV_UNAVAILABLE);
	assert_int_equal(x->state[SMTP_XA_LOGIN], SMTP_XV_UNAVAILABLE);
	/* decoded before the comparison, as Postfix does */
	OK("XCLIENT NAME=+5BUNAVAILABLE+5D", SMTP_XCLIENT);
	assert_int_equal(x->state[SMTP_XA_NAME], SMTP_XV_UNAVAILABLE);
	/* [TEMPUNAVAIL] is special for NAME only: a login may be that */
	OK("XCLIENT LOGIN=[TEMPUNAVAIL]", SMTP_XCLIENT);
	assert_int_equal(x->state[SMTP_XA_LOGIN], SMTP_XV_VALUE);
	BAD("XCLIENT ADDR=[TEMPUNAVAIL]", 501, "5.5.4");
	/* xtext */
	OK("XCLIENT LOGIN=user+2Bdetail+40example.com", SMTP_XCLIENT);
	assert_str(x->val[SMTP_XA_LOGIN], "user+detail@example.com");
	OK("XCLIENT LOGIN=j+C3+B6rg", SMTP_XCLIENT);
	assert_str(x->val[SMTP_XA_LOGIN], "j\xc3\xb6rg");
	BAD("XCLIENT LOGIN=a+00b", 501, "5.5.4");
	BAD("XCLIENT LOGIN=a+0Db", 501, "5.5.4");
	BAD("XCLIENT LOGIN=a+20b", 501, "5.5.4");
	BAD("XCLIENT LOGIN=+C3", 501, "5.5.4");
	BAD("XCLIENT HELO=a+2", 501, "5.5.4");
	OK("XCLIENT HELO=[1.2.3.4]", SMTP_XCLIENT);

	BAD("XCLIENT", 501, "5.5.4");
	BAD("XCLIENT ", 501, "5.5.4");
	BAD("XCLIENT FOO=bar", 501, "5.5.4");
	BAD("XCLIENT NAME", 501, "5.5.4");
	BAD("XCLIENT NAME=", 501, "5.5.4");
	BAD("XCLIENT NAME=a NAME=b", 501, "5.5.4");
	BAD("XCLIENT NAME=a  ADDR=1.2.3.4", 501, "5.5.4");
	BAD("XCLIENT NAME=a ", 501, "5.5.4");
	BAD("XCLIENT NAME=bad_host", 501, "5.5.4");
	BAD("XCLIENT ADDR=1.2.3", 501, "5.5.4");
	BAD("XCLIENT ADDR=2001:db8::1", 501, "5.5.4");
	BAD("XCLIENT ADDR=IPV6:1.2.3.4", 501, "5.5.4");
	BAD("XCLIENT ADDR=localhost", 501, "5.5.4");
	BAD("XCLIENT PORT=65536", 501, "5.5.4");
	BAD("XCLIENT PORT=123456", 501, "5.5.4");
	BAD("XCLIENT PORT=-1", 501, "5.5.4");
	OK("XCLIENT PORT=65535", SMTP_XCLIENT);
	assert_int_equal(x->port, 65535);
	BAD("XCLIENT PROTO=HTTP", 501, "5.5.4");
	char *s = catrep("XCLIENT LOGIN=", 'l', 255, "");
	OK(s, SMTP_XCLIENT);
	free(s);
	s = catrep("XCLIENT LOGIN=", 'l', 256, "");
	BAD(s, 501, "5.5.4");
	free(s);
}

/* every XCLIENT attribute at its longest: the decode area holds them */
static void
test_xclient_all_long(void **state)
{
	char line[4096], *l255 = rep('a', 255);
	size_t n;

	n = (size_t)snprintf(line, sizeof(line),
	    "XCLIENT LOGIN=%s HELO=%s NAME=a%s ADDR=IPV6:"
	    "1111:2222:3333:4444:5555:6666:7777:8888 PORT=1 PROTO=SMTP "
	    "DESTADDR=255.255.255.255 DESTPORT=2",
	    l255, l255, ".b");
	ok_(&conf_all, 0, line, SMTP_XCLIENT);
	assert_int_equal(cmd.xclient.val[SMTP_XA_LOGIN].len, 255);
	assert_int_equal(cmd.xclient.val[SMTP_XA_HELO].len, 255);
	bad_(&conf_all, 0, line, n - 1, 501, "5.5.4"); /* DESTPORT= */
	free(l255);
}

static void
test_xtext(void **state)
{
	char out[64];
	size_t len;
	unsigned char all[256];

	assert_int_equal(smtp_xtext_decode("a+2Bb", 5, out, sizeof(out), &len),
	    0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "a+b", 3);
	assert_int_equal(smtp_xtext_decode("", 0, out, 0, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(smtp_xtext_decode("a=b", 3, out, 64, &len), -1);
	assert_int_equal(smtp_xtext_decode("a b", 3, out, 64, &len), -1);
	assert_int_equal(smtp_xtext_decode("+2b", 3, out, 64, &len), -1);
	assert_int_equal(smtp_xtext_decode("+2", 2, out, 64, &len), -1);
	assert_int_equal(smtp_xtext_decode("abc", 3, out, 2, &len), -1);
	assert_int_equal(smtp_xtext_encode("a+b=c d", 7, out, 64, &len), 0);
	assert_int_equal(len, 13);
	assert_memory_equal(out, "a+2Bb+3Dc+20d", 13);
	assert_int_equal(smtp_xtext_encode("a+", 2, out, 3, &len), -1);
	/* every byte round-trips */
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	{
		char enc[768], dec[256];

		assert_int_equal(
		    smtp_xtext_encode(all, 256, enc, sizeof(enc), &len), 0);
		assert_int_equal(
		    smtp_xtext_decode(enc, len, dec, sizeof(dec), &len), 0);
		assert_int_equal(len, 256);
		assert_memory_equal(dec, all, 256);
	}
}

/* Lines far past any limit: refused with an answer, never a crash. */
static void
test_huge_lines(void **state)
{
	size_t n = 100000;
	char *s = malloc(n + 32);

	assert_non_null(s);
	memcpy(s, "MAIL FROM:<", 11);
	memset(s + 11, 'a', n);
	bad_(&conf_all, 0, s, n + 11, 501, "5.1.7");
	memcpy(s + 11 + n - 20, "@b.c>", 5);
	bad_(&conf_all, 0, s, n + 11 - 15, 501, "5.1.7");
	memcpy(s, "EHLO ", 5);
	memset(s + 5, 'a', n);
	bad_(&conf_all, 0, s, n + 5, 501, "5.5.4");
	memcpy(s, "RCPT TO:<", 9);
	for (size_t i = 9; i + 3 <= n; i += 3)
		memcpy(s + i, "@a,", 3);
	bad_(&conf_all, 0, s, n, 501, "5.1.3");
	memcpy(s, "NOOP ", 5);
	memset(s + 5, 'x', n);
	ok_(&conf_all, 0, "NOOP x", SMTP_NOOP);
	assert_int_equal(parse_n(&conf_all, 0, s, n), SMTP_CMD_OK);
	memset(s, 'A', n);
	bad_(&conf_all, 0, s, n, 500, "5.5.2");
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
		cmocka_unit_test_teardown(test_rfc_sessions, teardown),
		cmocka_unit_test_teardown(test_verbs_any_case, teardown),
		cmocka_unit_test_teardown(test_unknown, teardown),
		cmocka_unit_test_teardown(test_control_characters, teardown),
		cmocka_unit_test_teardown(test_no_arguments, teardown),
		cmocka_unit_test_teardown(test_helo, teardown),
		cmocka_unit_test_teardown(test_domain_length, teardown),
		cmocka_unit_test_teardown(test_literals, teardown),
		cmocka_unit_test_teardown(test_paths, teardown),
		cmocka_unit_test_teardown(test_space_after_colon, teardown),
		cmocka_unit_test_teardown(test_length_limits, teardown),
		cmocka_unit_test_teardown(test_smtputf8, teardown),
		cmocka_unit_test_teardown(test_params, teardown),
		cmocka_unit_test_teardown(test_params_not_offered, teardown),
		cmocka_unit_test_teardown(test_max_params, teardown),
		cmocka_unit_test_teardown(test_dsn, teardown),
		cmocka_unit_test_teardown(test_auth_param, teardown),
		cmocka_unit_test_teardown(test_auth, teardown),
		cmocka_unit_test_teardown(test_bdat, teardown),
		cmocka_unit_test_teardown(test_xclient, teardown),
		cmocka_unit_test_teardown(test_xclient_all_long, teardown),
		cmocka_unit_test_teardown(test_xtext, teardown),
		cmocka_unit_test_teardown(test_huge_lines, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
