/*
 * test_smtp_data.c - the DATA reader and the dot-stuffing writer
 * (proto/smtp_data.c).
 *
 * Each case states what the reader must hand out, then every way of
 * feeding it must agree: the whole at once, split at every position, one
 * byte at a time, and random pieces. The reference model of
 * smtp_data_driver.h (terminator first, then unstuffing, then
 * normalising) covers random inputs. The smuggling sequences of
 * CVE-2023-51764 and kin must never end the data, in either mode, and
 * what comes out must never hold a bare CR or LF. The writer is checked
 * byte-exact on known messages and by round trips through the reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/smtp_data_driver.h"

static const struct smtp_data_conf c_reject = { .mode = SMTP_DATA_REJECT };
static const struct smtp_data_conf c_norm = { .mode = SMTP_DATA_NORMALISE };

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
same_result(const struct dd_result *a, const struct dd_result *b,
    const char *how)
{
	const char *why = dd_same(a, b);

	if (why != NULL)
		fail_msg("%s: %s differ", how, why);
}

static void
against_model(const struct smtp_data_conf *conf, const char *in, size_t len,
    const struct dd_result *r)
{
	const char *why = dd_vs_model(conf, in, len, r);

	if (why != NULL)
		fail_msg("'%.*s': %s differ from the model", (int)len, in, why);
}

/* Whole, every two-piece split, byte by byte, random pieces: the same
 * result, and the model's. Returns the whole-input result. */
static void
every_split(const struct smtp_data_conf *conf, const char *in, size_t len,
    struct dd_result *whole)
{
	struct dd_result r;
	size_t cuts[8], one = 1;

	dd_read(conf, in, len, NULL, 0, whole);
	against_model(conf, in, len, whole);
	for (size_t k = 1; k < len; k++) {
		cuts[0] = k;
		cuts[1] = len;
		dd_read(conf, in, len, cuts, 2, &r);
		same_result(whole, &r, "two pieces");
		dd_free(&r.out);
	}
	dd_read(conf, in, len, &one, 1, &r);
	same_result(whole, &r, "byte by byte");
	dd_free(&r.out);
	for (int it = 0; it < 40; it++) {
		for (size_t i = 0; i < 8; i++)
			cuts[i] = 1 + next_rand() % 7;
		dd_read(conf, in, len, cuts, 8, &r);
		same_result(whole, &r, "random pieces");
		dd_free(&r.out);
	}
}

/* in must read as exactly want (the message), taking used bytes, in the
 * given mode, however it is split. */
static void
expect(const struct smtp_data_conf *conf, const char *in, size_t len,
    const char *want, size_t wlen, size_t used, bool ended)
{
	struct dd_result r;

	every_split(conf, in, len, &r);
	if (r.out.len != wlen || (wlen && memcmp(r.out.p, want, wlen) != 0))
		fail_msg("'%.*s': handed out '%.*s', want '%.*s'", (int)len, in,
		    (int)r.out.len, r.out.p ? r.out.p : "", (int)wlen, want);
	assert_int_equal(r.used, used);
	assert_int_equal(r.ended, ended);
	dd_free(&r.out);
}

#define EXPECT(conf, in, want, used, ended)                                    \
	expect(conf, in, sizeof(in) - 1, want, sizeof(want) - 1, used, ended)

static void
test_basic(void **state)
{
	EXPECT(&c_reject, "Hello\r\n.\r\n", "Hello\r\n", 10, true);
	/* the next command is never taken */
	EXPECT(&c_reject, "Hello\r\n.\r\nQUIT\r\n", "Hello\r\n", 10, true);
	EXPECT(&c_reject, "a\r\n.\r\n.\r\n", "a\r\n", 6, true);
	/* empty: the DATA line's CRLF starts the first line */
	EXPECT(&c_reject, ".\r\n", "", 3, true);
	EXPECT(&c_reject, ".\r\nRSET\r\n", "", 3, true);
	EXPECT(&c_reject, "\r\n.\r\n", "\r\n", 5, true);
	/* no end yet */
	EXPECT(&c_reject, "Hello\r\n", "Hello\r\n", 7, false);
	EXPECT(&c_reject, "Hello\r\n.\r", "Hello\r\n", 9, false);
	EXPECT(&c_reject, "", "", 0, false);
	/* 8-bit and NUL are data */
	EXPECT(&c_reject, "\xff\xfe\0\x01\r\n.\r\n", "\xff\xfe\0\x01\r\n", 9,
	    true);
}

/* RFC 5321 4.5.2 */
static void
test_unstuffing(void **state)
{
	EXPECT(&c_reject, "..\r\n.\r\n", ".\r\n", 7, true);
	EXPECT(&c_reject, "...\r\n.\r\n", "..\r\n", 8, true);
	EXPECT(&c_reject, "a\r\n..b\r\n.\r\n", "a\r\n.b\r\n", 11, true);
	/* a client that did not stuff: the dot still goes */
	EXPECT(&c_reject, "a\r\n.b\r\n.\r\n", "a\r\nb\r\n", 10, true);
	/* only at the start of a line */
	EXPECT(&c_reject, "a.\r\n.\r\n", "a.\r\n", 7, true);
	EXPECT(&c_reject, "a\r\n ..\r\n.\r\n", "a\r\n ..\r\n", 11, true);
	/* a stuffed terminator is a line of one dot */
	EXPECT(&c_reject, "a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 13, true);
}

/* The smuggling sequences: never an end, always counted; REJECT stops at
 * the first, NORMALISE makes CRLF of a bare LF and drops a bare CR. */
static void
test_smuggling(void **state)
{
	static const struct {
		const char *in, *norm;
		unsigned cr, lf;
	} cases[] = {
		{ "a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 0, 2 },
		{ "a\r.\rb\r\n.\r\n", "a.b\r\n", 2, 0 },
		{ "a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 0, 1 },
		{ "a\r\n.\nb\r\n.\r\n", "a\r\n\r\nb\r\n", 0, 1 },
		{ "a\r\n.\rb\r\n.\r\n", "a\r\nb\r\n", 1, 0 },
		{ "a\r.\r\nb\r\n.\r\n", "a.\r\nb\r\n", 1, 0 },
		{ "a\n\n.\n\nb\r\n.\r\n", "a\r\n\r\n.\r\n\r\nb\r\n", 0, 4 },
		{ "\n.\n\r\n.\r\n", "\r\n.\r\n\r\n", 0, 2 },
		{ "\r.\r\r\n.\r\n", ".\r\n", 2, 0 },
		{ ".\n.\r\n.\r\n", "\r\n.\r\n", 0, 1 },
		{ ".\r.\r\n.\r\n", ".\r\n", 1, 0 },
		{ "a\r\r\n.\r\n", "a\r\n", 1, 0 },
		{ "a\n\r\n.\r\n", "a\r\n\r\n", 0, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in;
		size_t len = strlen(in);
		struct dd_result r;

		every_split(&c_norm, in, len, &r);
		if (!r.ended || r.used != len ||
		    r.out.len != strlen(cases[i].norm) ||
		    memcmp(r.out.p, cases[i].norm, r.out.len) != 0)
			fail_msg("case %zu: '%.*s' used %zu of %zu", i,
			    (int)r.out.len, r.out.p, r.used, len);
		assert_true(r.d.bare_cr == cases[i].cr);
		assert_true(r.d.bare_lf == cases[i].lf);
		assert_null(smtp_data_error(&r.d));
		dd_free(&r.out);

		every_split(&c_reject, in, len, &r);
		assert_true(r.ended && r.used == len);
		assert_true(r.d.bare_cr == cases[i].cr);
		assert_true(r.d.bare_lf == cases[i].lf);
		assert_non_null(smtp_data_error(&r.d));
		assert_int_equal(smtp_data_error(&r.d)->code, 550);
		assert_string_equal(smtp_data_error(&r.d)->enh, "5.5.2");
		assert_true(r.d.discarding);
		for (size_t k = 0; k < r.out.len; k++)
			if ((r.out.p[k] == '\r') !=
			    (k + 1 < r.out.len && r.out.p[k + 1] == '\n'))
				fail_msg("case %zu: bare CR/LF out", i);
		dd_free(&r.out);
	}
}

/* A message that is nothing but would-be terminators never ends. */
static void
test_never_ends(void **state)
{
	static const char *seqs[] = { "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n",
		"\r.\r\n", "\n\r.\r\n" };

	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		char buf[600];
		size_t n = 0, len = strlen(seqs[i]);
		struct dd_result r;

		while (n + len <= sizeof(buf)) {
			memcpy(buf + n, seqs[i], len);
			n += len;
		}
		every_split(&c_norm, buf, n, &r);
		assert_false(r.ended);
		assert_int_equal(r.used, n); /* a last CR is held, taken */
		dd_free(&r.out);
		every_split(&c_reject, buf, n, &r);
		assert_false(r.ended);
		dd_free(&r.out);
	}
}

static void
test_after_end(void **state)
{
	struct smtp_data d;
	const char *out;
	size_t used, olen;

	smtp_data_init(&d, &c_reject);
	assert_int_equal(smtp_data_next(&d, ".\r\nMAIL", 7, &used, &out, &olen),
	    SMTP_DATA_END);
	assert_int_equal(used, 3);
	assert_int_equal(smtp_data_next(&d, "MAIL", 4, &used, &out, &olen),
	    SMTP_DATA_END);
	assert_int_equal(used, 0);
	assert_int_equal(olen, 0);
	assert_null(smtp_data_error(&d));
	/* nothing given: MORE, nothing taken */
	smtp_data_init(&d, &c_reject);
	assert_int_equal(smtp_data_next(&d, "", 0, &used, &out, &olen),
	    SMTP_DATA_MORE);
	assert_int_equal(used, 0);
}

static void
test_size_limit(void **state)
{
	struct smtp_data_conf conf = { .max_size = 10 };
	struct dd_result r, full;
	static const char in[] = "0123456789\r\nabc\r\n.\r\nNOOP\r\n";
	size_t one = 1;

	/* exactly at the limit: fine */
	dd_read(&conf, "01234567\r\n.\r\n", 13, NULL, 0, &r);
	assert_true(r.ended && !r.d.too_big);
	assert_null(smtp_data_error(&r.d));
	dd_free(&r.out);
	/* one over: nothing more out, the end still found */
	dd_read(&c_reject, in, sizeof(in) - 1, NULL, 0, &full);
	for (int how = 0; how < 2; how++) {
		dd_read(&conf, in, sizeof(in) - 1, how ? &one : NULL, how, &r);
		assert_true(r.ended && r.d.too_big && r.d.discarding);
		assert_int_equal(r.used, 20);
		assert_true(r.d.size == 17);
		assert_true(r.out.len <= 10);
		assert_true(r.out.len == 0 ||
		    memcmp(r.out.p, full.out.p, r.out.len) == 0);
		assert_int_equal(smtp_data_error(&r.d)->code, 552);
		assert_string_equal(smtp_data_error(&r.d)->enh, "5.3.4");
		dd_free(&r.out);
	}
	dd_free(&full.out);
	/* too big wins over bare LF in the answer */
	dd_read(&conf, "a\nbcdefghijkl\r\n.\r\n", 18, NULL, 0, &r);
	assert_int_equal(smtp_data_error(&r.d)->code, 552);
	dd_free(&r.out);
}

static void
test_long_lines(void **state)
{
	struct smtp_data_conf conf = { .mode = SMTP_DATA_NORMALISE,
		.max_line = 10 };
	struct dd_result r;

	/* 8 + CRLF = 10: not long; 9 + CRLF = 11: long */
	every_split(&conf, "12345678\r\n123456789\r\n.\r\n", 24, &r);
	assert_true(r.d.long_lines == 1);
	assert_true(r.d.longest == 11);
	dd_free(&r.out);
	/* the stuffing dot does not count */
	every_split(&conf, "..2345678\r\n.\r\n", 14, &r);
	assert_true(r.d.long_lines == 0 && r.d.longest == 10);
	dd_free(&r.out);
	/* counted once per line, as soon as it passes */
	every_split(&conf, "123456789012345678901234567890", 30, &r);
	assert_true(r.d.long_lines == 1);
	assert_true(r.d.longest == 0);
	dd_free(&r.out);
	/* a bare LF ends an output line too */
	every_split(&conf, "12345678\n12345678901\r\n.\r\n", 25, &r);
	assert_true(r.d.long_lines == 1 && r.d.longest == 13);
	dd_free(&r.out);
	/* the default: 1000 with CRLF */
	{
		char buf[2100];
		struct smtp_data_conf def = { .mode = SMTP_DATA_REJECT };

		memset(buf, 'x', 998);
		memcpy(buf + 998, "\r\n", 2);
		memset(buf + 1000, 'y', 999);
		memcpy(buf + 1999, "\r\n.\r\n", 5);
		dd_read(&def, buf, 2004, NULL, 0, &r);
		assert_true(r.ended && r.d.long_lines == 1);
		assert_true(r.d.longest == 1001);
		dd_free(&r.out);
	}
}

static void
test_discard(void **state)
{
	struct smtp_data d;
	const char *out;
	size_t used, olen;
	static const char in[] = "abc\r\ndef\r\n.\r\nQUIT";

	smtp_data_init(&d, &c_norm);
	assert_int_equal(smtp_data_next(&d, in, 3, &used, &out, &olen),
	    SMTP_DATA_BYTES);
	assert_int_equal(olen, 3);
	smtp_data_discard(&d);
	assert_int_equal(
	    smtp_data_next(&d, in + 3, sizeof(in) - 4, &used, &out, &olen),
	    SMTP_DATA_END);
	assert_int_equal(used, 10);
	assert_true(d.size == 10);
	assert_null(smtp_data_error(&d));
}

/* Random inputs from an alphabet of the bytes that matter, against the
 * model, every way of feeding them, both modes. */
static void
test_random_against_model(void **state)
{
	static const char alpha[] = { '.', '.', '\r', '\n', '\r', '\n', 'a',
		'\0', '\xff', ' ' };
	char buf[64];
	struct dd_result r;
	struct smtp_data_conf conf;

	for (int it = 0; it < 3000; it++) {
		size_t len = next_rand() % sizeof(buf);

		for (size_t i = 0; i < len; i++)
			buf[i] = alpha[next_rand() % sizeof(alpha)];
		conf = (struct smtp_data_conf){ .mode = it & 1 ?
			    SMTP_DATA_NORMALISE :
			    SMTP_DATA_REJECT,
			.max_line = 1 + next_rand() % 8 };
		every_split(&conf, buf, len, &r);
		dd_free(&r.out);
	}
}

static void
stuffed(const char *in, size_t len, const char *want, size_t wlen)
{
	struct dd_bytes out = { 0 };
	size_t cuts[] = { 0, 1, 2, 3, 7 };

	for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		for (size_t cap = 2; cap < 12; cap += 3) {
			dd_stuff(in, len, cuts[c], cap, &out);
			if (out.len != wlen || memcmp(out.p, want, wlen) != 0)
				fail_msg("'%.*s' (cut %zu cap %zu): '%.*s'",
				    (int)len, in, cuts[c], cap, (int)out.len,
				    out.p);
			dd_free(&out);
		}
	}
	dd_stuff(in, len, 0, 65536, &out);
	assert_int_equal(out.len, wlen);
	dd_free(&out);
}

#define STUFFED(in, want) stuffed(in, sizeof(in) - 1, want, sizeof(want) - 1)

static void
test_stuff(void **state)
{
	STUFFED("", ".\r\n");
	STUFFED("a\r\n", "a\r\n.\r\n");
	STUFFED("a", "a\r\n.\r\n");
	STUFFED(".", "..\r\n.\r\n");
	STUFFED(".\r\n", "..\r\n.\r\n");
	STUFFED("a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n.\r\n");
	STUFFED("a.\r\n", "a.\r\n.\r\n");
	/* LF line ends (a Maildir file) become CRLF */
	STUFFED("a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n");
	STUFFED("\n\n", "\r\n\r\n.\r\n");
	/* a bare CR is dropped, as the reader's NORMALISE does */
	STUFFED("a\rb\r\n", "ab\r\n.\r\n");
	STUFFED("a\r", "a\r\n.\r\n");
	STUFFED("a\r.\r\n", "a.\r\n.\r\n");
	STUFFED("\r\r\n.", "\r\n..\r\n.\r\n");
	/* the smuggling sequences come out harmless */
	STUFFED("x\r\n.\r\ny", "x\r\n..\r\ny\r\n.\r\n");
	STUFFED("x\n.\ny", "x\r\n..\r\ny\r\n.\r\n");
	STUFFED("x\r.\ry", "x.y\r\n.\r\n");
	STUFFED("x\n.\r\ny", "x\r\n..\r\ny\r\n.\r\n");
	STUFFED("\0\xff", "\0\xff\r\n.\r\n");
}

static const char *
escaped(const char *s, size_t n)
{
	static char buf[512];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
		    s[i] == '\r'     ? "\\r" :
			s[i] == '\n' ? "\\n" :
				       "%c",
		    s[i]);
	buf[o] = '\0';
	return buf;
}

/* x with CRLF line ends: a bare LF becomes one, a bare CR goes, and a
 * last line without one gets one. */
static void
normalised(const char *x, size_t n, struct dd_bytes *out)
{
	for (size_t i = 0; i < n; i++) {
		if (x[i] == '\r' && i + 1 < n && x[i + 1] == '\n') {
			dd_put(out, "\r\n", 2);
			i++;
		} else if (x[i] == '\n') {
			dd_put(out, "\r\n", 2);
		} else if (x[i] != '\r') {
			dd_put(out, x + i, 1);
		}
	}
	if (out->len > 0 && memcmp(out->p + out->len - 2, "\r\n", 2) != 0)
		dd_put(out, "\r\n", 2);
}

/* stuff(x) read back is normalise(x) (with a final CRLF), ends exactly at
 * its end, with nothing bare; and read(y) stuffed reads back the same. */
static void
test_round_trips(void **state)
{
	static const char alpha[] = { '.', '\r', '\n', 'a', '.', '\n' };
	char buf[48];
	struct dd_bytes wire = { 0 }, wire2 = { 0 }, norm = { 0 };
	struct dd_result r, r2;

	for (int it = 0; it < 3000; it++) {
		size_t len = next_rand() % sizeof(buf);
		size_t cut = next_rand() % 5, cap = 2 + next_rand() % 9;

		for (size_t i = 0; i < len; i++)
			buf[i] = alpha[next_rand() % sizeof(alpha)];
		dd_stuff(buf, len, cut, cap, &wire);
		/* the wire form has CRLF line ends only */
		for (size_t k = 0; k < wire.len; k++)
			if ((wire.p[k] == '\r') !=
			    (k + 1 < wire.len && wire.p[k + 1] == '\n'))
				fail_msg("bare CR/LF in the wire form");
		dd_read(&c_reject, wire.p, wire.len, NULL, 0, &r);
		assert_true(r.ended);
		assert_int_equal(r.used, wire.len);
		assert_true(r.d.bare_cr == 0 && r.d.bare_lf == 0);
		/* the message with CRLF line ends and a final one */
		normalised(buf, len, &norm);
		if (r.out.len != norm.len)
			fail_msg("'%s' -> '%.*s' -> '%.*s'", escaped(buf, len),
			    (int)wire.len, wire.p, (int)r.out.len, r.out.p);
		assert_memory_equal(r.out.p, norm.p, r.out.len);
		dd_free(&norm);
		/* and back again */
		dd_stuff(r.out.p, r.out.len, cut, cap, &wire2);
		assert_int_equal(wire2.len, wire.len);
		assert_memory_equal(wire2.p, wire.p, wire.len);
		dd_read(&c_norm, wire2.p, wire2.len, NULL, 0, &r2);
		same_result(&r, &r2, "round trip");
		dd_free(&r.out);
		dd_free(&r2.out);
		dd_free(&wire);
		dd_free(&wire2);
	}
}

/* A large message through the reader in realistic pieces: what comes out
 * is what went in before stuffing, byte for byte. */
static void
test_large(void **state)
{
	size_t n = 1 << 20;
	char *msg = malloc(n);
	struct dd_bytes wire = { 0 };
	struct dd_result r;
	size_t cuts[] = { 4096, 1, 65536, 1500, 3 };

	assert_non_null(msg);
	for (size_t i = 0; i < n; i++) {
		uint64_t x = next_rand() % 100;

		msg[i] = x < 3 ? '.' : x < 6 ? '\n' : (char)('a' + x % 26);
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r') &&
		    i + 1 < n) {
			msg[i] = '\r';
			msg[++i] = '\n';
		}
	}
	memcpy(msg + n - 2, "\r\n", 2);
	dd_stuff(msg, n, 8192, 65536, &wire);
	dd_read(&c_reject, wire.p, wire.len, cuts, 5, &r);
	assert_true(r.ended && r.used == wire.len);
	assert_int_equal(r.out.len, n);
	assert_memory_equal(r.out.p, msg, n);
	assert_true(r.d.size == n);
	assert_null(smtp_data_error(&r.d));
	dd_free(&r.out);
	dd_free(&wire);
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_unstuffing),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_never_ends),
		cmocka_unit_test(test_after_end),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_discard),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_stuff),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
