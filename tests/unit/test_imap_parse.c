/*
 * test_imap_parse.c - the IMAP command tokenizer and its helpers.
 *
 * Every case is a byte string and the expected trace of events; each is fed
 * whole, one byte at a time and split in two at every position, and all
 * three must give the same trace. Literal decisions are automatic (accept)
 * except in the refusal tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap_parse.h"
#include "proto/imap_section.h"

#define NARGS 64

struct trace {
	char text[16384];
	size_t len;
	char streams[IMAP_PARSE_MAX_STREAMS][1024];
	size_t stream_len[IMAP_PARSE_MAX_STREAMS];
};

static const struct imap_limits test_limits = {
	.max_line = 1024,
	.max_command = 4096,
	.max_literal = 1 << 20,
	.max_nonsync = 1 << 20,
	.max_inline_literal = 64,
	.max_args = NARGS,
	.max_depth = 8,
};

static char storage[8192];
static struct imap_arg argv_store[256];

static void __attribute__((format(printf, 2, 3)))
tprintf(struct trace *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(t->text) - t->len);
	t->len += (size_t)n;
}

static void
render_args(struct trace *t, const struct imap_arg *a)
{
	for (; a != NULL; a = imap_arg_next(a)) {
		switch (a->type) {
		case IMAP_ARG_ATOM:
			tprintf(t, " %.*s", (int)a->len, a->ptr);
			break;
		case IMAP_ARG_QUOTED:
			tprintf(t, " \"%.*s\"", (int)a->len, a->ptr);
			break;
		case IMAP_ARG_LITERAL:
			tprintf(t, " %s{%zu%s}",
			    a->flags & IMAP_ARGF_BINARY ? "~" : "", a->len,
			    a->flags & IMAP_ARGF_NONSYNC ? "+" : "");
			if (a->flags & IMAP_ARGF_STREAMED)
				tprintf(t, "S%.*s",
				    (int)t->stream_len[a->stream],
				    t->streams[a->stream]);
			else
				tprintf(t, "%.*s", (int)a->len, a->ptr);
			break;
		case IMAP_ARG_LIST:
			tprintf(t, " (");
			render_args(t, imap_arg_child(a));
			tprintf(t, " )");
			break;
		default:
			fail_msg("bad arg type %d", a->type);
		}
	}
}

/* Handle one event; returns false when parsing must stop (FATAL). */
static bool
event(struct imap_parser *p, enum imap_parse_status st, struct trace *t)
{
	const struct imap_command *c = &p->cmd;

	switch (st) {
	case IMAP_PARSE_OK:
		if (c->line != NULL) {
			tprintf(t, "LINE %.*s\n", (int)c->line_len, c->line);
			return true;
		}
		tprintf(t, "OK %.*s %s%.*s", (int)c->tag_len, c->tag,
		    c->uid ? "UID " : "", (int)c->name_len, c->name);
		render_args(t, c->args);
		tprintf(t, "\n");
		memset(t->stream_len, 0, sizeof(t->stream_len));
		return true;
	case IMAP_PARSE_INVALID:
		tprintf(t, "BAD %.*s %s\n", c->tag ? (int)c->tag_len : 1,
		    c->tag ? c->tag : "*", p->error);
		memset(t->stream_len, 0, sizeof(t->stream_len));
		return true;
	case IMAP_PARSE_FATAL:
		tprintf(t, "FATAL %s\n", p->error);
		return false;
	case IMAP_PARSE_LITERAL:
		tprintf(t, "LIT %llu %s %s\n", (unsigned long long)p->lit.size,
		    p->lit.sync ? "sync" : "nonsync",
		    p->lit.streamed ? "stream" : "inline");
		return true;
	case IMAP_PARSE_DATA: {
		size_t *n = &t->stream_len[p->lit.stream];

		assert_true(*n + p->data_len <= sizeof(t->streams[0]));
		memcpy(t->streams[p->lit.stream] + *n, p->data, p->data_len);
		*n += p->data_len;
		return true;
	}
	case IMAP_PARSE_AGAIN:
	default:
		fail_msg("unexpected status %d", st);
	}
	return false;
}

/* Feed one chunk completely. */
static bool
feed_chunk(struct imap_parser *p, const char *data, size_t len, struct trace *t)
{
	for (;;) {
		size_t used;
		enum imap_parse_status st = imap_parse_feed(p, data, len,
		    &used);

		assert_true(used <= len);
		data += used;
		len -= used;
		if (st == IMAP_PARSE_AGAIN) {
			assert_int_equal(len, 0);
			return true;
		}
		if (!event(p, st, t))
			return false;
	}
}

/* Feed input split at the given cut points (ascending, < len). */
static void
run_split(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    struct trace *t, const struct imap_limits *lim)
{
	struct imap_parser p;
	size_t start = 0;

	memset(t, 0, sizeof(*t));
	assert_int_equal(imap_parse_init(&p, lim, storage, sizeof(storage),
			     argv_store, NARGS),
	    0);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;

		if (!feed_chunk(&p, in + start, end - start, t))
			return;
		start = end;
	}
}

static void
check_case(const char *in, size_t len, const char *expect,
    const struct imap_limits *lim)
{
	static struct trace t;
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));

	assert_non_null(cuts);
	run_split(in, len, NULL, 0, &t, lim);
	if (strcmp(t.text, expect) != 0)
		fail_msg("whole:\n%s\nexpected:\n%s", t.text, expect);
	for (size_t k = 1; k < len; k++)
		cuts[k - 1] = k;
	run_split(in, len, cuts, len > 0 ? len - 1 : 0, &t, lim);
	if (strcmp(t.text, expect) != 0)
		fail_msg("bytewise:\n%s\nexpected:\n%s", t.text, expect);
	for (size_t k = 1; k < len; k++) {
		run_split(in, len, &k, 1, &t, lim);
		if (strcmp(t.text, expect) != 0)
			fail_msg("split at %zu:\n%s\nexpected:\n%s", k, t.text,
			    expect);
	}
	free(cuts);
}

#define CHECK(in, expect) check_case(in, sizeof(in) - 1, expect, &test_limits)

static void
test_rfc_examples(void **state)
{
	CHECK("a001 LOGIN SMITH SESAME\r\n", "OK a001 LOGIN SMITH SESAME\n");
	CHECK("A142 SELECT INBOX\r\n", "OK A142 SELECT INBOX\n");
	CHECK("a002 noop\r\n", "OK a002 NOOP\n");
	CHECK("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
	    "OK A654 FETCH 2:4 ( FLAGS BODY[HEADER.FIELDS (DATE FROM)] )\n");
	CHECK("A003 UID STORE 2:4 +FLAGS.SILENT (\\Deleted)\r\n",
	    "OK A003 UID STORE 2:4 +FLAGS.SILENT ( \\Deleted )\n");
	CHECK("a uid fetch 1:* flags\r\n", "OK a UID FETCH 1:* flags\n");
	CHECK("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
	    "OK A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\n");
	CHECK("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX OR (SEEN UNSEEN) "
	      "NOT DELETED\r\n",
	    "LIT 6 sync inline\n"
	    "OK A284 SEARCH CHARSET UTF-8 TEXT {6}XXXXXX OR ( SEEN UNSEEN )"
	    " NOT DELETED\n");
	CHECK("A202 LIST ~/Mail/ %\r\n", "OK A202 LIST ~/Mail/ %\n");
	CHECK("A101 LIST \"\" \"\"\r\n", "OK A101 LIST \"\" \"\"\n");
	CHECK("a LIST \"\" [Gmail]/*\r\n", "OK a LIST \"\" [Gmail]/*\n");
	CHECK("A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
	    "OK A042 STATUS blurdybloop ( UIDNEXT MESSAGES )\n");
	CHECK("a ID (\"name\" \"x\" \"version\" NIL)\r\n",
	    "OK a ID ( \"name\" \"x\" \"version\" NIL )\n");
	CHECK("a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0\r\n",
	    "OK a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0\n");
	CHECK("a UID SEARCH $\r\n", "OK a UID SEARCH $\n");
	CHECK("a SELECT \"Entw\xc3\xbcrfe\"\r\n",
	    "OK a SELECT \"Entw\xc3\xbcrfe\"\n");
}

static void
test_fetch_atts(void **state)
{
	CHECK("a FETCH 1 (BODY.PEEK[1.2.MIME] BODY[]<0.100> "
	      "BINARY.PEEK[1]<5.10> RFC822.SIZE ENVELOPE BODYSTRUCTURE UID "
	      "INTERNALDATE BODY[TEXT] BODY[1.2.HEADER] "
	      "body[HEADER.FIELDS.NOT (\"X-A\" B)] BINARY.SIZE[2] RFC822 "
	      "RFC822.HEADER RFC822.TEXT FLAGS BODY)\r\n",
	    "OK a FETCH 1 ( BODY.PEEK[1.2.MIME] BODY[]<0.100> "
	    "BINARY.PEEK[1]<5.10> RFC822.SIZE ENVELOPE BODYSTRUCTURE UID "
	    "INTERNALDATE BODY[TEXT] BODY[1.2.HEADER] "
	    "body[HEADER.FIELDS.NOT (\"X-A\" B)] BINARY.SIZE[2] RFC822 "
	    "RFC822.HEADER RFC822.TEXT FLAGS BODY )\n");
	CHECK("a FETCH 1:3,5 BODY[1]\r\n", "OK a FETCH 1:3,5 BODY[1]\n");
	CHECK("a FETCH 1 BODY[HEADER.FIELDS (\"]\")]\r\n",
	    "OK a FETCH 1 BODY[HEADER.FIELDS (\"]\")]\n");
}

static void
test_literals(void **state)
{
	char msg[400], in[600], expect[1200];
	int n;

	memset(msg, 'm', 310);
	memcpy(msg, "From: x\r\n\r\n", 11);
	n = snprintf(in, sizeof(in),
	    "A003 APPEND saved-messages (\\Seen) \"05-Jan-2024 10:00:00 +0100\""
	    " {310}\r\n%.310s\r\n",
	    msg);
	snprintf(expect, sizeof(expect),
	    "LIT 310 sync stream\n"
	    "OK A003 APPEND saved-messages ( \\Seen ) \"05-Jan-2024 10:00:00 "
	    "+0100\" {310}S%.310s\n",
	    msg);
	check_case(in, (size_t)n, expect, &test_limits);

	/* LITERAL+: no continuation, inline */
	CHECK("a LOGIN {4+}\r\nfred {4+}\r\npass\r\n",
	    "OK a LOGIN {4+}fred {4+}pass\n");
	/* literal8 */
	CHECK("a APPEND INBOX ~{3}\r\na\0c\r\n",
	    "LIT 3 sync inline\nOK a APPEND INBOX ~{3}a\n");
	/* an empty literal, then more arguments */
	CHECK("a LOGIN {0}\r\n {0+}\r\n\r\n",
	    "LIT 0 sync inline\nOK a LOGIN {0} {0+}\n");
	/* a literal inside a list, and the list closing after it */
	CHECK("a X (a {2}\r\nbc) d\r\n",
	    "LIT 2 sync inline\nOK a X ( a {2}bc ) d\n");
	/* MULTIAPPEND-style: two streamed literals */
	{
		char big[100];

		memset(big, 'z', sizeof(big));
		n = snprintf(in, sizeof(in),
		    "a APPEND box {100+}\r\n%.100s {100}\r\n%.100s\r\n", big,
		    big);
		snprintf(expect, sizeof(expect),
		    "LIT 100 nonsync stream\nLIT 100 sync stream\n"
		    "OK a APPEND box {100+}S%.100s {100}S%.100s\n",
		    big, big);
		check_case(in, (size_t)n, expect, &test_limits);
	}
	/* pipelined commands and empty lines in between */
	CHECK("a NOOP\r\n\r\nb NOOP\nc CHECK\r\n",
	    "OK a NOOP\nOK b NOOP\nOK c CHECK\n");
}

static void
test_quoting(void **state)
{
	CHECK("a LOGIN \"fr\\\"ed\" \"p\\\\w\"\r\n",
	    "OK a LOGIN \"fr\"ed\" \"p\\w\"\n");
	CHECK("a X ((a) (b (c)) ())\r\n", "OK a X ( ( a ) ( b ( c ) ) ( ) )\n");
	CHECK("a X () NIL\r\n", "OK a X ( ) NIL\n");
}

static void
test_errors(void **state)
{
	CHECK("a1\r\n", "BAD a1 Missing space after tag\n");
	CHECK(" a\r\n", "BAD * Invalid tag\n");
	CHECK("a+ NOOP\r\n", "BAD * Invalid character in tag\n");
	CHECK("a \r\n", "BAD a Missing command\n");
	CHECK("a UID\r\n", "BAD a Missing command after UID\n");
	CHECK("a LOGIN (x\r\n", "BAD a Unbalanced parenthesis\n");
	CHECK("a LOGIN x)\r\n", "BAD a Unbalanced parenthesis\n");
	CHECK("a LOGIN \"x\r\n", "BAD a Unterminated quoted string\n");
	CHECK("a X \"\\q\"\r\n", "BAD a Invalid escape in quoted string\n");
	CHECK("a X  y\r\n", "BAD a Unexpected space\n");
	CHECK("a X (y )\r\n", "BAD a Unexpected space\n");
	CHECK("a NOOP \r\n", "BAD a Unexpected space at end of line\n");
	CHECK("a X y(z)\r\n", "BAD a Missing space between arguments\n");
	CHECK("a SELECT Entw\xc3\xbcrfe\r\n",
	    "BAD a Invalid character in argument\n");
	CHECK("a SELECT \"\xff\"\r\n",
	    "BAD a Invalid UTF-8 in quoted string\n");
	CHECK("a SELECT \"\xc3\"\r\n",
	    "BAD a Invalid UTF-8 in quoted string\n");
	CHECK("a FETCH 1 BODY[HEADER\r\n", "BAD a Unterminated section\n");
	CHECK("a X {3} y\r\n",
	    "BAD a Literal announcement must end the line\n");
	CHECK("a X {}\r\n", "BAD a Invalid literal\n");
	CHECK("a X ((((((((((x))))))))))\r\n",
	    "BAD a Too deeply nested lists\n");
	CHECK("a FETCH[1]\r\n", "BAD a Invalid command name\n");
	/* resync after each bad command */
	CHECK("a X y\0z\r\nb NOOP\r\n",
	    "BAD a NUL byte in command\nOK b NOOP\n");
	CHECK("a X \"bad\r\nb NOOP\r\n",
	    "BAD a Unterminated quoted string\nOK b NOOP\n");
	/* a synchronizing literal on a bad line: the client waits, we move on
	 */
	CHECK("a X (\" {5}\r\nb NOOP\r\n",
	    "BAD a Unterminated quoted string\nOK b NOOP\n");
	/* a non-synchronizing one cannot be skipped safely */
	CHECK("a X ) {5+}\r\nhello\r\n", "FATAL Unbalanced parenthesis\n");
}

static void
test_limit_errors(void **state)
{
	static char in[6000], expect[256];
	size_t n;

	/* line too long, then resync */
	n = (size_t)sprintf(in, "a X ");
	memset(in + n, 'x', 2000);
	n += 2000;
	n += (size_t)sprintf(in + n, "\r\nb NOOP\r\n");
	check_case(in, n, "BAD a Line too long\nOK b NOOP\n", &test_limits);

	/* ... ending in a non-synchronizing literal: disconnect */
	n = (size_t)sprintf(in, "a X ");
	memset(in + n, 'x', 2000);
	n += 2000;
	n += (size_t)sprintf(in + n, " {5+}\r\nhello\r\n");
	check_case(in, n,
	    "BAD a Line too long\n"
	    "FATAL Non-synchronizing literal after a bad command\n",
	    &test_limits);

	/* a line of exactly max_line bytes is fine */
	n = (size_t)sprintf(in, "a X ");
	memset(in + n, 'x', 1024 - 6);
	n += 1024 - 6;
	n += (size_t)sprintf(in + n, "\r\n");
	assert_int_equal(n, 1024);
	{
		struct trace *t = malloc(sizeof(*t));

		run_split(in, n, NULL, 0, t, &test_limits);
		assert_memory_equal(t->text, "OK a X xxx", 10);
		free(t);
	}

	/* synchronizing literal too large: NO/BAD, client sends nothing */
	CHECK("a APPEND x {9999999}\r\nb NOOP\r\n",
	    "BAD a Literal too large\nOK b NOOP\n");
	CHECK("a APPEND x {99999999999999999999999}\r\nb NOOP\r\n",
	    "BAD a Literal too large\nOK b NOOP\n");
	/* non-synchronizing literal too large: cannot refuse, disconnect */
	CHECK("a APPEND x {9999999+}\r\nxxxx", "FATAL Literal too large\n");

	/* too many arguments */
	n = (size_t)sprintf(in, "a X");
	for (int k = 0; k < 70; k++)
		n += (size_t)sprintf(in + n, " %d", k);
	n += (size_t)sprintf(in + n, "\r\nb NOOP\r\n");
	check_case(in, n, "BAD a Too many arguments\nOK b NOOP\n",
	    &test_limits);

	/* inline literals charged against the command budget */
	n = (size_t)sprintf(in, "a X");
	for (int k = 0; k < 70; k++) {
		n += (size_t)sprintf(in + n, " {60+}\r\n");
		memset(in + n, 'l', 60);
		n += 60;
	}
	n += (size_t)sprintf(in + n, "\r\n");
	check_case(in, n, "FATAL Command too long\n", &test_limits);

	/* LITERAL-: small non-sync limit */
	{
		struct imap_limits lim = test_limits;

		lim.max_nonsync = 4096;
		check_case("a APPEND x {4097+}\r\n", 20,
		    "FATAL Literal too large\n", &lim);
		snprintf(expect, sizeof(expect), "LIT 4097 sync stream\n");
		check_case("a APPEND x {4097}\r\n", 19, expect, &lim);
	}
}

/* What feeding in at the cut points (every one if step is 1, else every
 * step-th) gave for the first command: its status and, on OK, the number
 * of children of its first argument. */
static enum imap_parse_status
big_feed(const struct imap_limits *lim, const char *in, size_t len, size_t step,
    unsigned *children_r, size_t *len3_r)
{
	static char big_storage[80000];
	struct imap_parser p;
	enum imap_parse_status st = IMAP_PARSE_AGAIN;
	size_t off = 0, used, chunk;

	assert_int_equal(imap_parse_init(&p, lim, big_storage,
			     sizeof(big_storage), argv_store, 256),
	    0);
	while (off < len) {
		chunk = len - off < step ? len - off : step;
		st = imap_parse_feed(&p, in + off, chunk, &used);
		off += used;
		if (st == IMAP_PARSE_LITERAL)
			continue; /* accepted */
		if (st != IMAP_PARSE_AGAIN)
			break;
	}
	if (st == IMAP_PARSE_OK) {
		const struct imap_arg *l = p.cmd.args, *v;

		*children_r = l->type == IMAP_ARG_LIST ? l->count : 0;
		v = imap_arg_next(imap_arg_child(l));
		*len3_r = v != NULL ? v->len : 0;
	}
	return st;
}

/* ID (RFC 2971): 30 pairs of 30-octet fields and 1024-octet values,
 * every byte escaped, about 63 KiB: accepted under big_name while other
 * commands stay within max_line; with literals too. */
static void
test_big_command(void **state)
{
	static char in[140000];
	struct imap_limits lim = test_limits;
	static const size_t steps[] = { 1 << 20, 1, 7, 4096 };
	unsigned children = 0;
	size_t n, k, s, len3 = 0;

	lim.max_line = lim.max_command = 1024;
	lim.max_inline_literal = 4096;
	lim.big_name = "ID";
	lim.big_line = lim.big_command = 65536;
	n = (size_t)sprintf(in, "tag1 id (");
	for (k = 0; k < 30; k++) {
		n += (size_t)sprintf(in + n, "%s\"", k ? " " : "");
		for (s = 0; s < 30; s++)
			n += (size_t)sprintf(in + n, "\\\"");
		n += (size_t)sprintf(in + n, "\" \"");
		for (s = 0; s < 1024; s++)
			n += (size_t)sprintf(in + n, "\\\\");
		n += (size_t)sprintf(in + n, "\"");
	}
	n += (size_t)sprintf(in + n, ")\r\n");
	assert_true(n > 60000 && n < 65536);
	for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		assert_int_equal(
		    big_feed(&lim, in, n, steps[k], &children, &len3),
		    IMAP_PARSE_OK);
		assert_int_equal(children, 60);
		assert_int_equal(len3, 1024);
	}
	/* the same size under another name is too long */
	memcpy(in, "tag1 IX", 7);
	assert_int_equal(big_feed(&lim, in, n, 1 << 20, &children, &len3),
	    IMAP_PARSE_INVALID);
	memcpy(in, "tag1 id", 7);
	/* IDX is not ID; nor is a name after a long tag */
	n = (size_t)sprintf(in, "t IDX ");
	memset(in + n, 'x', 2000);
	n += 2000;
	n += (size_t)sprintf(in + n, "\r\n");
	assert_int_equal(big_feed(&lim, in, n, 1, &children, &len3),
	    IMAP_PARSE_INVALID);
	/* over the big budget is too long for ID as well */
	n = (size_t)sprintf(in, "t ID (\"a\" \"");
	memset(in + n, 'x', 70000);
	n += 70000;
	n += (size_t)sprintf(in + n, "\")\r\n");
	assert_int_equal(big_feed(&lim, in, n, 1 << 20, &children, &len3),
	    IMAP_PARSE_INVALID);
	/* values as literals: over max_command in total, each inline */
	n = (size_t)sprintf(in, "t ID (");
	for (k = 0; k < 30; k++) {
		n += (size_t)sprintf(in + n, "%s\"field%zu\" {1024+}\r\n",
		    k ? " " : "", k);
		memset(in + n, 'v', 1024);
		n += 1024;
	}
	n += (size_t)sprintf(in + n, ")\r\n");
	for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		assert_int_equal(
		    big_feed(&lim, in, n, steps[k], &children, &len3),
		    IMAP_PARSE_OK);
		assert_int_equal(children, 60);
	}
	/* and a small command after a big one is small again */
	{
		static char big_storage[80000];
		struct imap_parser p;
		size_t off = 0, used;

		n += (size_t)sprintf(in + n, "u NOOP ");
		memset(in + n, 'x', 2000);
		n += 2000;
		n += (size_t)sprintf(in + n, "\r\n");
		assert_int_equal(imap_parse_init(&p, &lim, big_storage,
				     sizeof(big_storage), argv_store, 256),
		    0);
		while (imap_parse_feed(&p, in + off, n - off, &used) ==
		    IMAP_PARSE_LITERAL)
			off += used;
		off += used;
		assert_memory_equal(p.cmd.name, "ID", 2);
		assert_int_equal(imap_parse_feed(&p, in + off, n - off, &used),
		    IMAP_PARSE_INVALID);
		assert_string_equal(p.error, "Line too long");
	}
}

static void
test_refuse(void **state)
{
	struct imap_parser p;
	size_t used;
	const char *in = "a APPEND nobox {300}\r\nb NOOP\r\n";

	assert_int_equal(imap_parse_init(&p, &test_limits, storage,
			     sizeof(storage), argv_store, NARGS),
	    0);
	assert_int_equal(imap_parse_refuse(&p), -1);
	assert_int_equal(imap_parse_feed(&p, in, strlen(in), &used),
	    IMAP_PARSE_LITERAL);
	assert_true(p.lit.sync && p.lit.streamed);
	assert_int_equal(p.lit.size, 300);
	assert_int_equal(p.cmd.tag_len, 1);
	assert_memory_equal(p.cmd.name, "APPEND", 6);
	assert_int_equal(imap_parse_refuse(&p), 0);
	assert_memory_equal(p.cmd.tag, "a", 1);
	assert_false(imap_parse_idle(&p) == false);
	in += used;
	assert_int_equal(imap_parse_feed(&p, in, strlen(in), &used),
	    IMAP_PARSE_OK);
	assert_true(imap_command_is(&p.cmd, "NOOP"));
	assert_memory_equal(p.cmd.tag, "b", 1);

	/* a non-synchronizing literal cannot be refused */
	in = "a APPEND x {300+}\r\n";
	assert_int_equal(imap_parse_feed(&p, in, strlen(in), &used),
	    IMAP_PARSE_LITERAL);
	assert_int_equal(imap_parse_refuse(&p), -1);
	assert_false(imap_parse_idle(&p));
}

static void
test_line_mode(void **state)
{
	struct imap_parser p;
	size_t used;
	const char *in = "a AUTHENTICATE PLAIN\r\nAGZyZWQAc2VjcmV0\r\n\r\n";

	assert_int_equal(imap_parse_init(&p, &test_limits, storage,
			     sizeof(storage), argv_store, NARGS),
	    0);
	assert_int_equal(imap_parse_feed(&p, in, strlen(in), &used),
	    IMAP_PARSE_OK);
	assert_true(imap_command_is(&p.cmd, "AUTHENTICATE"));
	assert_true(imap_arg_atom_is(p.cmd.args, "plain"));
	assert_int_equal(p.cmd.argc, 1);
	in += used;
	imap_parse_want_line(&p);
	assert_int_equal(imap_parse_feed(&p, in, strlen(in), &used),
	    IMAP_PARSE_OK);
	assert_int_equal(p.cmd.line_len, 16);
	assert_memory_equal(p.cmd.line, "AGZyZWQAc2VjcmV0", 16);
	in += used;
	imap_parse_want_line(&p);
	assert_int_equal(imap_parse_feed(&p, in, strlen(in), &used),
	    IMAP_PARSE_OK);
	assert_int_equal(p.cmd.line_len, 0);
	assert_true(imap_parse_idle(&p));
}

static void
test_set_limits(void **state)
{
	struct imap_parser p;
	size_t used;
	struct imap_limits small = test_limits;
	static char small_buf[128];
	const char *in = "a LOGIN x";

	small.max_line = 100;
	assert_int_equal(imap_parse_init(&p, &small, small_buf,
			     sizeof(small_buf), argv_store, 4),
	    0);
	assert_int_equal(imap_parse_feed(&p, in, strlen(in), &used),
	    IMAP_PARSE_AGAIN);
	assert_int_equal(imap_parse_set_limits(&p, &test_limits, storage,
			     sizeof(storage), argv_store, NARGS),
	    -1);
	assert_int_equal(imap_parse_feed(&p, " y\r\n", 4, &used),
	    IMAP_PARSE_OK);
	assert_int_equal(imap_parse_set_limits(&p, &test_limits, storage,
			     sizeof(storage), argv_store, NARGS),
	    0);
	assert_int_equal(
	    imap_parse_init(&p, &small, small_buf, 8, argv_store, 4), -1);
}

static void
test_arg_helpers(void **state)
{
	struct imap_parser p;
	size_t used;
	const char *in = "t1 X 42 4294967296 007 \"q\" {1+}\r\nL NIL \"NIL\" "
			 "9223372036854775807 (a)\r\n";
	const struct imap_arg *a;
	uint32_t n;
	uint64_t n64;

	assert_int_equal(imap_parse_init(&p, &test_limits, storage,
			     sizeof(storage), argv_store, NARGS),
	    0);
	assert_int_equal(imap_parse_feed(&p, in, strlen(in), &used),
	    IMAP_PARSE_OK);
	assert_int_equal(p.cmd.argc, 9);
	assert_int_equal(p.cmd.nargs, 10);
	a = p.cmd.args;
	assert_int_equal(imap_arg_number(a, &n), 0);
	assert_int_equal(n, 42);
	a = imap_arg_next(a);
	assert_int_equal(imap_arg_number(a, &n), -1);
	assert_int_equal(imap_arg_number64(a, &n64), 0);
	assert_int_equal(n64, 4294967296ull);
	a = imap_arg_next(a);
	assert_int_equal(imap_arg_number(a, &n), 0);
	assert_int_equal(n, 7);
	a = imap_arg_next(a);
	assert_true(imap_arg_is_string(a) && imap_arg_is_astring(a));
	assert_int_equal(imap_arg_number(a, &n), -1);
	a = imap_arg_next(a);
	assert_true(imap_arg_is_string(a));
	assert_memory_equal(a->ptr, "L", 1);
	a = imap_arg_next(a);
	assert_true(imap_arg_is_nil(a));
	assert_false(imap_arg_is_string(a));
	assert_true(imap_arg_is_astring(a));
	a = imap_arg_next(a);
	assert_false(imap_arg_is_nil(a));
	a = imap_arg_next(a);
	assert_int_equal(imap_arg_number64(a, &n64), 0);
	a = imap_arg_next(a);
	assert_int_equal(a->type, IMAP_ARG_LIST);
	assert_int_equal(a->count, 1);
	assert_true(imap_arg_atom_is(imap_arg_child(a), "A"));
	assert_null(imap_arg_next(a));
	assert_null(imap_arg_next(imap_arg_child(a)));
}

static void
test_seqset(void **state)
{
	struct imap_range r[8];
	struct imap_seqset set = { r, 8 };
	const char *err;
	static const char *const bad[] = { "", "0", "1,", ",1", "1::2",
		"1:", ":1", "4294967296", "1 2", "01", "1,,2", "a", "*:", "$,1",
		"1:0", "99999999999999999999" };

	assert_int_equal(imap_seqset_parse(&set, "1:*,3,5:7", 9, &err), 0);
	assert_int_equal(set.count, 3);
	assert_int_equal(set.ranges[0].lo, 1);
	assert_int_equal(set.ranges[0].hi, IMAP_SEQ_STAR);
	assert_true(imap_seqset_contains(&set, 100, 100));
	assert_false(imap_seqset_contains(&set, 101, 100));

	assert_int_equal(imap_seqset_parse(&set, "*:4", 3, &err), 0);
	assert_true(imap_seqset_contains(&set, 4, 10));
	assert_true(imap_seqset_contains(&set, 10, 10));
	assert_false(imap_seqset_contains(&set, 3, 10));
	assert_true(imap_seqset_contains(&set, 3, 3)); /* *:4 is 3:4 */

	assert_int_equal(imap_seqset_parse(&set, "4294967295", 10, &err), 0);
	assert_int_equal(set.ranges[0].lo, UINT32_MAX);

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		err = NULL;
		if (imap_seqset_parse(&set, bad[k], strlen(bad[k]), &err) != -1)
			fail_msg("accepted \"%s\"", bad[k]);
		assert_string_equal(err, "Invalid sequence set");
	}
	assert_int_equal(imap_seqset_parse(&set, "1,2,3,4,5,6,7,8,9", 17, &err),
	    -1);
	assert_string_equal(err, "Sequence set too long");

	assert_int_equal(imap_seqset_parse(&set, "$", 1, &err), 0);
	assert_true(set.saved);
	assert_false(imap_seqset_contains(&set, 1, 1));

	/* resolve: sort, merge adjacent and overlapping, drop the star */
	assert_int_equal(
	    imap_seqset_parse(&set, "9:7,1,2,20:*,3:4,15", 19, &err), 0);
	imap_seqset_resolve(&set, 18);
	assert_int_equal(set.count, 4);
	assert_int_equal(set.ranges[0].lo, 1);
	assert_int_equal(set.ranges[0].hi, 4);
	assert_int_equal(set.ranges[1].lo, 7);
	assert_int_equal(set.ranges[1].hi, 9);
	assert_int_equal(set.ranges[2].lo, 15);
	assert_int_equal(set.ranges[2].hi, 15);
	assert_int_equal(set.ranges[3].lo, 18);
	assert_int_equal(set.ranges[3].hi, 20);
	assert_true(imap_seqset_contains(&set, 19, 0));
	assert_false(imap_seqset_contains(&set, 5, 0));
	assert_false(imap_seqset_contains(&set, 21, 0));

	assert_int_equal(imap_seqset_parse(&set, "*,4294967295,1", 14, &err),
	    0);
	imap_seqset_resolve(&set, 0);
	assert_int_equal(set.count, 2);
	assert_false(imap_seqset_contains(&set, 0, 0));
}

static void
test_section(void **state)
{
	struct imap_section s;
	const char *err, *name;
	size_t pos = 0, len;
	static const char *const bad[] = { "BODY[", "BODY[0]", "BODY[1.]",
		"BODY[.1]", "BODY[MIME]", "BODY[1.FOO]", "BODY[]<1>",
		"BODY[]<1.0>", "BODY[]<.1>", "BODY[]x", "BINARY[HEADER]",
		"BINARY.SIZE[1]<0.1>", "BODY[HEADER.FIELDS ()]",
		"BODY[HEADER.FIELDS A]", "BODY[HEADER.FIELDS (A  B)]",
		"BODY[HEADER.FIELDS]",
		"BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15."
		"16.17.18.19.20.21.22.23.24.25.26.27.28."
		"29.30.31.32.33]",
		"BODY[4294967296]", "BODY[]<0.1>x" };

	assert_int_equal(imap_section_parse("FLAGS", 5, &s, &err), 1);
	assert_int_equal(imap_section_parse("BODY", 4, &s, &err), 1);
	assert_int_equal(imap_section_parse("[Gmail]", 7, &s, &err), 1);

	assert_int_equal(imap_section_parse("BODY[]", 6, &s, &err), 0);
	assert_int_equal(s.kind, IMAP_SECT_ALL);
	assert_int_equal(s.nparts, 0);
	assert_false(s.peek || s.partial);

	assert_int_equal(
	    imap_section_parse("body.peek[1.2.mime]<10.20>", 26, &s, &err), 0);
	assert_true(s.peek && s.partial);
	assert_int_equal(s.kind, IMAP_SECT_MIME);
	assert_int_equal(s.nparts, 2);
	assert_int_equal(s.part[0], 1);
	assert_int_equal(s.part[1], 2);
	assert_int_equal(s.start, 10);
	assert_int_equal(s.count, 20);
	assert_int_equal(s.spec_len, 8);

	name = "BODY[3.HEADER.FIELDS.NOT (DATE \"X-Y\" FROM)]";
	assert_int_equal(imap_section_parse(name, strlen(name), &s, &err), 0);
	assert_int_equal(s.kind, IMAP_SECT_FIELDS_NOT);
	assert_int_equal(s.nparts, 1);
	assert_int_equal(imap_section_field_next(&s, &pos, &name, &len), 1);
	assert_int_equal(len, 4);
	assert_memory_equal(name, "DATE", 4);
	assert_int_equal(imap_section_field_next(&s, &pos, &name, &len), 1);
	assert_memory_equal(name, "X-Y", 3);
	assert_int_equal(imap_section_field_next(&s, &pos, &name, &len), 1);
	assert_memory_equal(name, "FROM", 4);
	assert_int_equal(imap_section_field_next(&s, &pos, &name, &len), 0);

	assert_int_equal(imap_section_parse("BODY[TEXT]", 10, &s, &err), 0);
	assert_int_equal(s.kind, IMAP_SECT_TEXT);
	assert_int_equal(
	    imap_section_parse("BODY[2.HEADER]<0.1>", 19, &s, &err), 0);
	assert_int_equal(s.kind, IMAP_SECT_HEADER);
	assert_int_equal(imap_section_parse("BINARY.SIZE[1.2]", 16, &s, &err),
	    0);
	assert_int_equal(s.att, IMAP_ATT_BINARY_SIZE);

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		if (imap_section_parse(bad[k], strlen(bad[k]), &s, &err) != -1)
			fail_msg("accepted %s", bad[k]);
	}
}

struct sink {
	char buf[256];
	size_t len;
	int fail_after;
};

static int
sink_write(void *ctx, const char *p, size_t len)
{
	struct sink *s = ctx;

	if (s->fail_after-- == 0)
		return -1;
	assert_true(s->len + len < sizeof(s->buf));
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	s->buf[s->len] = '\0';
	return 0;
}

static void
check_write(const char *in, size_t len, unsigned flags, const char *expect)
{
	struct sink s = { .fail_after = -1 };

	assert_int_equal(imap_write_astring(sink_write, &s, in, len, flags), 0);
	assert_string_equal(s.buf, expect);
}

static void
test_writer(void **state)
{
	struct sink s = { .fail_after = -1 };

	check_write("INBOX", 5, 0, "INBOX");
	check_write("a]b", 3, 0, "a]b");
	check_write("", 0, 0, "\"\"");
	check_write("nil", 3, 0, "\"nil\"");
	check_write("a b", 3, 0, "\"a b\"");
	check_write("a\"b\\c", 5, 0, "\"a\\\"b\\\\c\"");
	check_write("a*", 2, 0, "\"a*\"");
	check_write("a\r\nb", 4, 0, "{4}\r\na\r\nb");
	check_write("\xc3\xbc", 2, 0, "{2}\r\n\xc3\xbc");
	check_write("\xc3\xbc", 2, IMAP_WRITE_UTF8, "\"\xc3\xbc\"");
	check_write("\xff", 1, IMAP_WRITE_UTF8, "{1}\r\n\xff");
	assert_int_equal(imap_write_nstring(sink_write, &s, NULL, 0, 0), 0);
	assert_string_equal(s.buf, "NIL");
	s.len = 0;
	assert_int_equal(imap_write_string(sink_write, &s, "x", 1, 0), 0);
	assert_string_equal(s.buf, "\"x\"");
	for (int k = 0; k < 3; k++) {
		s.len = 0;
		s.fail_after = k;
		assert_int_equal(imap_write_string(sink_write, &s, "a\"", 2, 0),
		    -1);
	}
}

/* Random splits over a long pipelined session must match feeding whole. */
static void
test_random_splits(void **state)
{
	static const char in[] = "a1 LOGIN {4}\r\nuser {6+}\r\nsecret\r\n"
				 "a2 SELECT \"Entw\xc3\xbcrfe\"\r\n"
				 "a3 UID FETCH 1:* (FLAGS "
				 "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.2>)\r\n"
				 "a4 X ) bad\r\n"
				 "a5 APPEND box (\\Seen) {80}\r\n"
				 "0123456789012345678901234567890123456789"
				 "0123456789012345678901234567890123456789\r\n"
				 "a6 LOGOUT\r\n";
	static struct trace whole, split;
	size_t cuts[8];

	run_split(in, sizeof(in) - 1, NULL, 0, &whole, &test_limits);
	srand(7);
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = (size_t)(rand() % 8);

		for (size_t k = 0; k < n; k++)
			cuts[k] = 1 + (size_t)rand() % (sizeof(in) - 2);
		for (size_t k = 1; k < n; k++) {
			for (size_t j = k; j > 0 && cuts[j - 1] > cuts[j];
			     j--) {
				size_t t = cuts[j];

				cuts[j] = cuts[j - 1];
				cuts[j - 1] = t;
			}
		}
		run_split(in, sizeof(in) - 1, cuts, n, &split, &test_limits);
		assert_string_equal(split.text, whole.text);
	}
	assert_non_null(strstr(whole.text, "OK a6 LOGOUT"));
	assert_non_null(strstr(whole.text, "BAD a4 Unbalanced parenthesis"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_examples),
		cmocka_unit_test(test_fetch_atts),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limit_errors),
		cmocka_unit_test(test_big_command),
		cmocka_unit_test(test_refuse),
		cmocka_unit_test(test_line_mode),
		cmocka_unit_test(test_set_limits),
		cmocka_unit_test(test_arg_helpers),
		cmocka_unit_test(test_seqset),
		cmocka_unit_test(test_section),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_random_splits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
