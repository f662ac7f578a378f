/*
 * test_proxy_proto.c - the PROXY v1/v2 header parser and the v2 writer.
 *
 * The parser is stateless and re-run over everything received, so feeding
 * a header split at any position means: every prefix, each in its own
 * exactly-sized heap copy (ASan catches a read past the bytes given), says
 * AGAIN, and the whole says OK with the same h->len when payload follows.
 * Broken headers are pinned down to the byte that proves them broken:
 * every shorter prefix is AGAIN, that one and every longer one INVALID.
 * v2 headers are built here byte by byte, and their CRC32c comes from a
 * bitwise implementation of our own, not the parser's table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proto/proxy_proto.h"

static const char *const rc_names[] = { "OK", "AGAIN", "INVALID" };

static const uint8_t SIG[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
	0x55, 0x49, 0x54, 0x0a };

/* A v2 header under construction. */
struct v2b {
	uint8_t b[PROXY_HDR_MAX + 64];
	size_t n;
};

static enum proxy_rc
parse_copy(const void *p, size_t n, struct proxy_hdr *h)
{
	uint8_t *copy = malloc(n ? n : 1);
	const char *err = NULL;
	enum proxy_rc rc;
	const uint8_t **slices[] = { &h->alpn, &h->authority, &h->unique_id };

	assert_non_null(copy);
	memcpy(copy, p, n);
	rc = proxy_proto_parse(copy, n, h, &err);
	if (rc == PROXY_INVALID)
		assert_non_null(err);
	if (rc == PROXY_OK) {
		assert_true(
		    h->len > 0 && h->len <= n && h->len <= PROXY_HDR_MAX);
		/* Slices must lie inside the header; move them to p. */
		for (size_t i = 0; i < 3; i++) {
			if (*slices[i] == NULL)
				continue;
			assert_true(
			    *slices[i] >= copy && *slices[i] <= copy + h->len);
			*slices[i] = (const uint8_t *)p + (*slices[i] - copy);
		}
	}
	free(copy);
	return rc;
}

/*
 * s[0..len) is exactly one valid header: every strict prefix is AGAIN, the
 * whole is OK with h->len == len, and payload behind it changes nothing.
 */
static void
check_ok(const void *s, size_t len, struct proxy_hdr *h)
{
	static const char payload[] = "a001 CAPABILITY\r\n";
	struct proxy_hdr more;
	uint8_t *buf;
	enum proxy_rc rc;

	for (size_t k = 0; k < len; k++) {
		rc = parse_copy(s, k, h);
		if (rc != PROXY_AGAIN)
			fail_msg("prefix %zu of %zu: %s, want AGAIN", k, len,
			    rc_names[rc]);
	}
	buf = malloc(len + sizeof(payload));
	assert_non_null(buf);
	memcpy(buf, s, len);
	memcpy(buf + len, payload, sizeof(payload));
	for (size_t extra = 1; extra <= sizeof(payload); extra++) {
		assert_int_equal(parse_copy(buf, len + extra, &more), PROXY_OK);
		assert_int_equal(more.len, len);
	}
	free(buf);
	rc = parse_copy(s, len, h);
	if (rc != PROXY_OK)
		fail_msg("whole header of %zu: %s", len, rc_names[rc]);
	assert_int_equal(h->len, len);
	assert_int_equal(more.local, h->local);
	assert_int_equal(more.ssl, h->ssl);
}

/*
 * ok is a valid prefix and its next byte, bad[0], proves the input broken:
 * prefixes of ok are AGAIN, ok + bad[0..k] for every k is INVALID.
 */
static void
check_bad(const void *ok, size_t oklen, const void *bad, size_t badlen)
{
	uint8_t *buf = malloc(oklen + badlen);
	struct proxy_hdr h;
	enum proxy_rc rc;

	assert_non_null(buf);
	assert_true(badlen > 0);
	memcpy(buf, ok, oklen);
	memcpy(buf + oklen, bad, badlen);
	for (size_t k = 0; k <= oklen + badlen; k++) {
		rc = parse_copy(buf, k, &h);
		if (k <= oklen && rc != PROXY_AGAIN)
			fail_msg("'%.*s' prefix %zu: %s, want AGAIN",
			    (int)oklen, (const char *)ok, k, rc_names[rc]);
		if (k > oklen && rc != PROXY_INVALID)
			fail_msg("'%.*s' + %zu bytes: %s, want INVALID",
			    (int)oklen, (const char *)ok, k - oklen,
			    rc_names[rc]);
	}
	free(buf);
}

#define BAD(ok, bad) check_bad(ok, strlen(ok), bad, strlen(bad))
#define OK(s, h) check_ok(s, strlen(s), h)

static void
assert_addr(const struct sockaddr_storage *ss, socklen_t len, const char *want,
    unsigned port)
{
	char text[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		assert_int_equal(len, sizeof(*sin));
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		assert_int_equal(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		assert_int_equal(ss->ss_family, AF_INET6);
		assert_int_equal(len, sizeof(*sin6));
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		assert_int_equal(ntohs(sin6->sin6_port), port);
	}
	assert_string_equal(text, want);
}

static void
assert_local(const struct proxy_hdr *h)
{
	assert_true(h->local);
	assert_int_equal(h->src_len, 0);
	assert_int_equal(h->dst_len, 0);
}

/* Bitwise CRC32c, independent of the parser's nibble table. */
static uint32_t
crc32c_bits(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffff;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0x82f63b78 & (0u - (crc & 1)));
	}
	return crc ^ 0xffffffff;
}

static void
v2_start(struct v2b *v, uint8_t ver_cmd, uint8_t fam)
{
	memcpy(v->b, SIG, 12);
	v->b[12] = ver_cmd;
	v->b[13] = fam;
	v->n = 16;
}

static void
v2_put(struct v2b *v, const void *p, size_t n)
{
	assert_true(v->n + n <= sizeof(v->b));
	memcpy(v->b + v->n, p, n);
	v->n += n;
}

static void
v2_tlv(struct v2b *v, uint8_t type, const void *p, size_t n)
{
	uint8_t th[3] = { type, (uint8_t)(n >> 8), (uint8_t)n };

	v2_put(v, th, 3);
	if (n > 0)
		v2_put(v, p, n);
}

/* Set the length field to cover everything put so far. */
static void
v2_end(struct v2b *v)
{
	v->b[14] = (uint8_t)((v->n - 16) >> 8);
	v->b[15] = (uint8_t)(v->n - 16);
}

/* Append a CRC32C TLV, close the header and fill the checksum in. */
static void
v2_end_crc(struct v2b *v)
{
	static const uint8_t zero[4];
	size_t at;
	uint32_t crc;

	v2_tlv(v, 0x03, zero, 4);
	at = v->n - 4;
	v2_end(v);
	crc = crc32c_bits(v->b, v->n);
	v->b[at] = (uint8_t)(crc >> 24);
	v->b[at + 1] = (uint8_t)(crc >> 16);
	v->b[at + 2] = (uint8_t)(crc >> 8);
	v->b[at + 3] = (uint8_t)crc;
}

static void
v2_inet(struct v2b *v, uint8_t ver_cmd)
{
	static const uint8_t a[12] = { 10, 0, 0, 1, 192, 168, 1, 2, 0xdb, 0x04,
		0x00, 0x8f };

	v2_start(v, ver_cmd, 0x11);
	v2_put(v, a, sizeof(a)); /* 10.0.0.1:56068 -> 192.168.1.2:143 */
}

static void
v2_inet6(struct v2b *v)
{
	uint8_t a[36] = { 0 };

	inet_pton(AF_INET6, "2001:db8::1", a);
	inet_pton(AF_INET6, "fe80::abcd:1", a + 16);
	a[32] = 0x03; /* 993 */
	a[33] = 0xe1;
	a[34] = 0x00; /* 143 */
	a[35] = 0x8f;
	v2_start(v, 0x21, 0x21);
	v2_put(v, a, sizeof(a));
}

static void
test_crc32c_reference(void **state)
{
	/* The check value of CRC-32C (RFC 3720 B.4 and every catalogue). */
	assert_int_equal(crc32c_bits((const uint8_t *)"123456789", 9),
	    0xe3069283);
}

static void
test_v1_tcp4(void **state)
{
	/* The spec's example, followed by the HTTP request it shows. */
	static const char line[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 "
				   "443\r\n";
	static const char all[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 "
				  "443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11"
				  "\r\n\r\n";
	static const char max4[] = "PROXY TCP4 255.255.255.255 "
				   "255.255.255.255 65535 65535\r\n";
	struct proxy_hdr h;

	check_ok(line, strlen(line), &h);
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	assert_false(h.ssl);
	assert_null(h.alpn);
	assert_addr(&h.src, h.src_len, "192.168.0.1", 56324);
	assert_addr(&h.dst, h.dst_len, "192.168.0.11", 443);
	assert_int_equal(parse_copy(all, strlen(all), &h), PROXY_OK);
	assert_int_equal(h.len, strlen(line));

	/* The longest TCP4 line of the spec: 56 bytes. */
	assert_int_equal(strlen(max4), 56);
	OK(max4, &h);
	assert_addr(&h.src, h.src_len, "255.255.255.255", 65535);
	OK("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", &h);
	assert_addr(&h.dst, h.dst_len, "0.0.0.0", 0);
	OK("PROXY TCP4 10.20.30.40 1.2.3.4 1 10\r\n", &h);
	assert_addr(&h.src, h.src_len, "10.20.30.40", 1);
	assert_addr(&h.dst, h.dst_len, "1.2.3.4", 10);
}

static void
test_v1_tcp6(void **state)
{
	static const char max[] = "PROXY TCP6 "
				  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
				  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
				  "65535 65535\r\n";
	struct proxy_hdr h;

	/* The longest TCP6 line of the spec: 104 bytes. */
	assert_int_equal(strlen(max), 104);
	check_ok(max, strlen(max), &h);
	assert_addr(&h.src, h.src_len,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	OK("PROXY TCP6 2001:db8::1 ::1 993 143\r\n", &h);
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	assert_addr(&h.src, h.src_len, "2001:db8::1", 993);
	assert_addr(&h.dst, h.dst_len, "::1", 143);
	OK("PROXY TCP6 FE80::AbCd :: 1 2\r\n", &h);
	assert_addr(&h.src, h.src_len, "fe80::abcd", 1);
	assert_addr(&h.dst, h.dst_len, "::", 2);
	OK("PROXY TCP6 ::ffff:10.1.2.3 2001:db8:0:0:1:0:0:1 5 6\r\n", &h);
	assert_addr(&h.src, h.src_len, "::ffff:10.1.2.3", 5);
}

static void
test_v1_unknown(void **state)
{
	static const char worst[] = "PROXY UNKNOWN "
				    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
				    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
				    "65535 65535\r\n";
	char line[200];
	struct proxy_hdr h;

	OK("PROXY UNKNOWN\r\n", &h);
	assert_int_equal(h.version, 1);
	assert_local(&h);
	/* The worst case of the spec, 107 bytes: the rest is ignored. */
	assert_int_equal(strlen(worst), 107);
	check_ok(worst, 107, &h);
	assert_local(&h);
	OK("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", &h);
	OK("PROXY UNKNOWN whatever \x01\xff junk\r\n", &h);
	assert_local(&h);
	/* One byte more than 107 is too long, whatever it holds. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 104, "\r\n", 2);
	check_ok(line, 106, &h);
	memcpy(line + 104, "x\r\n", 3);
	check_ok(line, 107, &h);
	/* A CR at offset 106 would be too late: refused as soon as byte
	 * 105 is not the CR. */
	memcpy(line + 104, "xx\r\n", 4);
	check_bad(line, 105, line + 105, 3);
	memcpy(line + 104, "xxx", 3);
	check_bad(line, 105, line + 105, 50);
}

static void
test_v1_bad_prefix(void **state)
{
	/* Not PROXY at all: refused on the first byte, no waiting. */
	BAD("", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("", "GET / HTTP/1.1\r\n");
	BAD("", "a001 LOGIN u p\r\n");
	BAD("", " PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("", "\x16\x03\x01\x00\xa5\x01");
	BAD("PROX", "I TCP4");
	BAD("PROX", "y");
	BAD("PROXY", "\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY", "\r\n");
	BAD("PROXY", "\n");
	BAD("PROXY ", " TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY", "X");
}

static void
test_v1_bad_proto(void **state)
{
	BAD("PROXY ", "tcp4 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP", "5 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP", " 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4", "\r\n");
	BAD("PROXY TCP4", "\n");
	BAD("PROXY TCP4", "x 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY U", "DP4 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY UNKNOWN", "x\r\n");
	BAD("PROXY UNKNOWN", "\n");
	BAD("PROXY UNKNOWN\r", "x");
	BAD("PROXY UNKNOWN junk", "\n");
	BAD("PROXY UNKNOWN junk\r", "\r\n");
	BAD("PROXY UNKNOW", "\r\n");
}

static void
test_v1_bad_addr(void **state)
{
	/* Leading zeros, out of range, too few or too many parts. */
	BAD("PROXY TCP4 0", "1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 1.2.3.0", "4 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 25", "6.1.1.1 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 1.2.3", " 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4", ".5 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 1.2.", ".3 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 ", ".1.2.3 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 ", " 1.2.3.4 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 ", " 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.", " 1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.123", "4 1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", " \r\n");
	/* The wrong family for the protocol named. */
	BAD("PROXY TCP4 ", ":1 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP4 1", ":: 5.6.7.8 1 2\r\n");
	BAD("PROXY TCP6 1.2.3.4", " ::1 1 2\r\n");
	BAD("PROXY TCP6 ::1 5.6.7.8", " 1 2\r\n");
	BAD("PROXY TCP6 ", "g::1 ::1 1 2\r\n");
	/* Characters that pass but text inet_pton refuses. */
	BAD("PROXY TCP6 fffff::1", " ::1 1 2\r\n");
	BAD("PROXY TCP6 1::2::3", " ::1 1 2\r\n");
	BAD("PROXY TCP6 ::1 1:2:3:4:5:6:7:8:9", " 1 2\r\n");
	BAD("PROXY TCP6 ::1", "%eth0 ::1 1 2\r\n");
	BAD("PROXY TCP6 ::1 ::1", "\r\n");
	BAD("PROXY TCP6 "
	    "0000:0000:0000:0000:0000:ffff:255.255.255.255",
	    "0 ::1 1 2\r\n");
}

static void
test_v1_bad_port(void **state)
{
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 6553", "6 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 6553", "6\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 9999", "9 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 0", "80 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 0", "0\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 ", "+1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 ", "-1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 ", "x1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 ", " 1 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 ", " 2\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 ", "\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1", "\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", " 3\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", "\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", " ");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "x\r\n");
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "\t\r\n");
	check_bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", 30, "\0\r\n", 3);
}

static void
test_v2_tcp4(void **state)
{
	struct v2b v;
	struct proxy_hdr h;

	v2_inet(&v, 0x21);
	v2_end(&v);
	assert_int_equal(v.n, 28);
	check_ok(v.b, v.n, &h);
	assert_int_equal(h.version, 2);
	assert_false(h.local);
	assert_addr(&h.src, h.src_len, "10.0.0.1", 56068);
	assert_addr(&h.dst, h.dst_len, "192.168.1.2", 143);
	assert_null(h.alpn);
	assert_null(h.authority);
	assert_null(h.unique_id);
	assert_false(h.ssl);
}

static void
test_v2_tcp6(void **state)
{
	struct v2b v;
	struct proxy_hdr h;

	v2_inet6(&v);
	v2_end(&v);
	assert_int_equal(v.n, 52);
	check_ok(v.b, v.n, &h);
	assert_false(h.local);
	assert_addr(&h.src, h.src_len, "2001:db8::1", 993);
	assert_addr(&h.dst, h.dst_len, "fe80::abcd:1", 143);
}

static void
test_v2_local_unspec_unix(void **state)
{
	static const uint8_t junk[7] = { 1, 2, 3, 4, 5, 6, 7 };
	uint8_t unix_addrs[216];
	struct v2b v;
	struct proxy_hdr h;

	/* LOCAL, UNSPEC, no addresses: a health check. */
	v2_start(&v, 0x20, 0x00);
	v2_end(&v);
	check_ok(v.b, v.n, &h);
	assert_int_equal(h.version, 2);
	assert_local(&h);
	/* LOCAL must skip a block it was given, whatever its family. */
	v2_start(&v, 0x20, 0x00);
	v2_put(&v, junk, sizeof(junk));
	v2_end(&v);
	check_ok(v.b, v.n, &h);
	assert_local(&h);
	v2_inet(&v, 0x20);
	v2_tlv(&v, 0x02, "imap.example", 12);
	v2_end(&v);
	check_ok(v.b, v.n, &h);
	assert_local(&h);
	assert_int_equal(h.authority_len, 12);
	/* PROXY with UNSPEC family or transport: addresses ignored, and the
	 * block is opaque (this "TLV" would run past the end). */
	for (int i = 0; i < 4; i++) {
		static const uint8_t fams[] = { 0x00, 0x01, 0x10, 0x20 };

		v2_start(&v, 0x21, fams[i]);
		v2_put(&v, "\x01\x00\x09", 3);
		v2_end(&v);
		check_ok(v.b, v.n, &h);
		assert_local(&h);
		assert_null(h.alpn);
	}
	/* UNIX stream: 216 bytes of addresses we cannot use, then TLVs. */
	memset(unix_addrs, 'u', sizeof(unix_addrs));
	v2_start(&v, 0x21, 0x31);
	v2_put(&v, unix_addrs, sizeof(unix_addrs));
	v2_tlv(&v, 0x01, "imap", 4);
	v2_end(&v);
	check_ok(v.b, v.n, &h);
	assert_local(&h);
	assert_int_equal(h.alpn_len, 4);
	assert_memory_equal(h.alpn, "imap", 4);
	/* ... and 215 bytes are not enough for them, nor 0. */
	v2_start(&v, 0x21, 0x31);
	v2_put(&v, unix_addrs, 215);
	v2_end(&v);
	check_bad(v.b, 15, v.b + 15, v.n - 15);
	v2_start(&v, 0x20, 0x31);
	v2_end(&v);
	check_bad(v.b, 15, v.b + 15, v.n - 15);
}

static void
test_v2_bad_fixed(void **state)
{
	struct v2b v, w;

	v2_inet(&v, 0x21);
	v2_end(&v);
	/* Any byte of the signature wrong: refused on that byte. */
	for (size_t i = 0; i < 12; i++) {
		w = v;
		w.b[i] ^= 0x20;
		check_bad(w.b, i, w.b + i, w.n - i);
	}
	/* Version other than 2, command other than LOCAL or PROXY. */
	for (unsigned vc = 0; vc < 256; vc++) {
		if (vc == 0x20 || vc == 0x21)
			continue;
		w = v;
		w.b[12] = (uint8_t)vc;
		check_bad(w.b, 12, w.b + 12, w.n - 12);
	}
	/* Families past UNIX, transports past DGRAM, and DGRAM itself. */
	for (unsigned fam = 0; fam < 256; fam++) {
		if ((fam >> 4) <= 3 && (fam & 15) <= 1)
			continue;
		w = v;
		w.b[13] = (uint8_t)fam;
		check_bad(w.b, 13, w.b + 13, w.n - 13);
	}
	/* A length that does not cover the addresses. */
	for (unsigned fam = 0x11; fam <= 0x31; fam += 0x10) {
		for (unsigned len = 0; len < (fam == 0x11 ? 12u : 36u); len++) {
			w = v;
			w.b[13] = (uint8_t)fam;
			w.b[15] = (uint8_t)len;
			check_bad(w.b, 15, w.b + 15, 13);
		}
	}
	/* The v1 signature lookalike with a v2 start. */
	check_bad("\r\n\r\n", 4, "\r\n", 2);
}

static void
test_v2_size_limit(void **state)
{
	struct v2b v;
	struct proxy_hdr h;
	static const uint8_t pad[PROXY_HDR_MAX];

	/* Exactly PROXY_HDR_MAX bytes: accepted. */
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x04, pad, PROXY_HDR_MAX - 28 - 3);
	v2_end(&v);
	assert_int_equal(v.n, PROXY_HDR_MAX);
	check_ok(v.b, v.n, &h);
	assert_false(h.local);
	/* One more: refused as soon as the length is read. */
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x04, pad, PROXY_HDR_MAX - 28 - 2);
	v2_end(&v);
	check_bad(v.b, 15, v.b + 15, v.n - 15);
	/* The largest length the field can say. */
	v2_inet(&v, 0x21);
	v.b[14] = v.b[15] = 0xff;
	check_bad(v.b, 15, v.b + 15, v.n - 15);
}

static void
test_v2_tlvs(void **state)
{
	static const uint8_t uid[128] = { 0xab };
	static const uint8_t ssl_v[] = { 0x07, 0, 0, 0, 0, 0x21, 0, 7, 'T', 'L',
		'S', 'v', '1', '.', '3', 0x22, 0, 0 };
	struct v2b v;
	struct proxy_hdr h;

	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x04, NULL, 0);		  /* NOOP, empty */
	v2_tlv(&v, 0x01, "imap", 4);		  /* ALPN */
	v2_tlv(&v, 0x02, "mail.example.org", 16); /* AUTHORITY */
	v2_tlv(&v, 0x04, "pad", 3);		  /* NOOP again */
	v2_tlv(&v, 0x05, uid, sizeof(uid));	  /* UNIQUE_ID, at max */
	v2_tlv(&v, 0x20, ssl_v, sizeof(ssl_v));	  /* SSL + sub-TLVs */
	v2_tlv(&v, 0x30, "netns", 5);		  /* NETNS: skipped */
	v2_tlv(&v, 0x00, "zero", 4);		  /* unassigned */
	v2_tlv(&v, 0x00, "zero", 4);		  /* twice is fine */
	v2_tlv(&v, 0xe0, "custom", 6);
	v2_tlv(&v, 0xff, NULL, 0);
	v2_end(&v);
	check_ok(v.b, v.n, &h);
	assert_false(h.local);
	assert_addr(&h.src, h.src_len, "10.0.0.1", 56068);
	assert_int_equal(h.alpn_len, 4);
	assert_memory_equal(h.alpn, "imap", 4);
	assert_int_equal(h.authority_len, 16);
	assert_memory_equal(h.authority, "mail.example.org", 16);
	assert_int_equal(h.unique_id_len, 128);
	assert_memory_equal(h.unique_id, uid, 128);
	assert_true(h.ssl);

	/* SSL without PP2_CLIENT_SSL, and the bare 5-byte form. */
	v2_inet6(&v);
	v2_tlv(&v, 0x20, "\x06\x00\x00\x00\x01", 5);
	v2_tlv(&v, 0x01, NULL, 0); /* an empty ALPN is present */
	v2_end(&v);
	check_ok(v.b, v.n, &h);
	assert_false(h.ssl);
	assert_non_null(h.alpn);
	assert_int_equal(h.alpn_len, 0);
	v2_inet6(&v);
	v2_tlv(&v, 0x20, "\x01\x00\x00\x00\x00", 5);
	v2_end(&v);
	check_ok(v.b, v.n, &h);
	assert_true(h.ssl);
}

static void
test_v2_bad_tlvs(void **state)
{
	static const uint8_t uid[129];
	struct v2b v;
	size_t cut;

	/* A TLV header cut short (1 and 2 bytes), a value overrunning. */
	for (size_t keep = 1; keep < 3; keep++) {
		v2_inet(&v, 0x21);
		v2_put(&v, "\x01\x00\x04", keep);
		v2_end(&v);
		check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
	}
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x01, "imap", 4);
	cut = v.n;
	v2_end(&v);
	v.b[15]--; /* the header ends one byte inside the ALPN value */
	check_bad(v.b, cut - 2, v.b + cut - 2, 1);
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x04, NULL, 0);
	v.b[v.n - 1] = 1; /* NOOP says 1 byte, none left */
	v2_end(&v);
	check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
	/* UNIQUE_ID over 128 bytes. */
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x05, uid, sizeof(uid));
	v2_end(&v);
	check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
	/* SSL shorter than flags + verify; a sub-TLV overrunning it. */
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x20, "\x01\x00\x00\x00", 4);
	v2_end(&v);
	check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x20, "\x01\x00\x00\x00\x00\x21\x00\x05TLS", 11);
	v2_end(&v);
	check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x20, "\x01\x00\x00\x00\x00\x21\x00", 7);
	v2_end(&v);
	check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
	/* Two of a TLV we interpret. */
	for (unsigned type = 1; type <= 0x20; type++) {
		if (type == 4 || (type > 5 && type != 0x20))
			continue;
		v2_inet(&v, 0x21);
		if (type == 0x20 || type == 3) {
			size_t len = type == 3 ? 4 : 5;

			v2_tlv(&v, (uint8_t)type, "\0\0\0\0\0", len);
			v2_tlv(&v, (uint8_t)type, "\0\0\0\0\0", len);
		} else {
			v2_tlv(&v, (uint8_t)type, "a", 1);
			v2_tlv(&v, (uint8_t)type, "a", 1);
		}
		v2_end(&v);
		check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
	}
}

static void
test_v2_crc32c(void **state)
{
	struct v2b v, w;
	struct proxy_hdr h;

	/* Alone, after addresses. */
	v2_inet(&v, 0x21);
	v2_end_crc(&v);
	check_ok(v.b, v.n, &h);
	assert_false(h.local);
	/* Among other TLVs, with IPv6 and LOCAL. */
	v2_inet6(&v);
	v2_tlv(&v, 0x01, "imap", 4);
	v2_end_crc(&v);
	check_ok(v.b, v.n, &h);
	assert_int_equal(h.alpn_len, 4);
	v2_inet(&v, 0x20);
	v2_tlv(&v, 0x05, "id-42", 5);
	v2_end_crc(&v);
	check_ok(v.b, v.n, &h);
	assert_local(&h);
	/* Then every single-bit flip anywhere after the fixed part (which
	 * has checks of its own) breaks it: the checksum covers it all, and
	 * a flip in a TLV length reframes the rest into an overrun. */
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0xe1, "covered", 7);
	v2_end_crc(&v);
	for (size_t i = 16; i < v.n; i++) {
		/* Except the CRC32C type: another type, and nothing is
		 * checked (the protocol's own blind spot). */
		if (i == v.n - 7)
			continue;
		for (int bit = 0; bit < 8; bit++) {
			w = v;
			w.b[i] ^= (uint8_t)(1u << bit);
			check_bad(w.b, w.n - 1, w.b + w.n - 1, 1);
		}
	}
	/* A CRC32C TLV that is not 4 bytes. */
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x03, "\0\0\0", 3);
	v2_end(&v);
	check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
	v2_inet(&v, 0x21);
	v2_tlv(&v, 0x03, "\0\0\0\0\0", 5);
	v2_end(&v);
	check_bad(v.b, v.n - 1, v.b + v.n - 1, 1);
}

static void
test_write_v4(void **state)
{
	struct sockaddr_in src = { .sin_family = AF_INET },
			   dst = { .sin_family = AF_INET };
	static const uint8_t want[28] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
		0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 203,
		0, 113, 7, 10, 0, 0, 2, 0xc3, 0x50, 0x03, 0xe1 };
	uint8_t out[PROXY_V2_MAX_WRITE];
	struct proxy_hdr h;

	inet_pton(AF_INET, "203.0.113.7", &src.sin_addr);
	inet_pton(AF_INET, "10.0.0.2", &dst.sin_addr);
	src.sin_port = htons(50000);
	dst.sin_port = htons(993);
	assert_int_equal(proxy_proto_write_v2(out, sizeof(out),
			     (struct sockaddr *)&src, (struct sockaddr *)&dst),
	    28);
	assert_memory_equal(out, want, 28);
	check_ok(out, 28, &h);
	assert_int_equal(h.version, 2);
	assert_false(h.local);
	assert_addr(&h.src, h.src_len, "203.0.113.7", 50000);
	assert_addr(&h.dst, h.dst_len, "10.0.0.2", 993);
	/* Exactly big enough, then one byte short. */
	assert_int_equal(proxy_proto_write_v2(out, 28, (struct sockaddr *)&src,
			     (struct sockaddr *)&dst),
	    28);
	assert_int_equal(proxy_proto_write_v2(out, 27, (struct sockaddr *)&src,
			     (struct sockaddr *)&dst),
	    0);
}

static void
test_write_v6_and_mixed(void **state)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 },
			    d6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	uint8_t out[PROXY_V2_MAX_WRITE + 8];
	struct proxy_hdr h;

	inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::1:2", &d6.sin6_addr);
	s6.sin6_port = htons(40000);
	d6.sin6_port = htons(143);
	inet_pton(AF_INET, "198.51.100.9", &s4.sin_addr);
	s4.sin_port = htons(1234);

	assert_int_equal(proxy_proto_write_v2(out, sizeof(out),
			     (struct sockaddr *)&s6, (struct sockaddr *)&d6),
	    52);
	assert_memory_equal(out, SIG, 12);
	assert_int_equal(out[12], 0x21);
	assert_int_equal(out[13], 0x21);
	assert_int_equal(out[14], 0);
	assert_int_equal(out[15], 36);
	check_ok(out, 52, &h);
	assert_addr(&h.src, h.src_len, "2001:db8::7", 40000);
	assert_addr(&h.dst, h.dst_len, "2001:db8::1:2", 143);

	/* Mixed, both ways round: the IPv4 side becomes IPv4-mapped. */
	assert_int_equal(proxy_proto_write_v2(out, PROXY_V2_MAX_WRITE,
			     (struct sockaddr *)&s4, (struct sockaddr *)&d6),
	    52);
	check_ok(out, 52, &h);
	assert_addr(&h.src, h.src_len, "::ffff:198.51.100.9", 1234);
	assert_addr(&h.dst, h.dst_len, "2001:db8::1:2", 143);
	assert_int_equal(proxy_proto_write_v2(out, PROXY_V2_MAX_WRITE,
			     (struct sockaddr *)&d6, (struct sockaddr *)&s4),
	    52);
	check_ok(out, 52, &h);
	assert_addr(&h.src, h.src_len, "2001:db8::1:2", 143);
	assert_addr(&h.dst, h.dst_len, "::ffff:198.51.100.9", 1234);
	assert_int_equal(proxy_proto_write_v2(out, 51, (struct sockaddr *)&s4,
			     (struct sockaddr *)&d6),
	    0);

	/* Neither family: nothing written. */
	memset(out, 0xee, sizeof(out));
	assert_int_equal(proxy_proto_write_v2(out, sizeof(out),
			     (struct sockaddr *)&un, (struct sockaddr *)&s4),
	    0);
	assert_int_equal(proxy_proto_write_v2(out, sizeof(out),
			     (struct sockaddr *)&s4, (struct sockaddr *)&un),
	    0);
	assert_int_equal(proxy_proto_write_v2(out, sizeof(out), NULL,
			     (struct sockaddr *)&s4),
	    0);
	assert_int_equal(out[0], 0xee);
}

/* A v1 header parses to what the writer then sends on as v2. */
static void
test_v1_to_v2(void **state)
{
	static const char *const lines[] = {
		"PROXY TCP4 192.0.2.1 192.0.2.2 1 65535\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n",
	};
	struct proxy_hdr a, b;
	uint8_t out[PROXY_V2_MAX_WRITE];
	size_t n;

	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(parse_copy(lines[i], strlen(lines[i]), &a),
		    PROXY_OK);
		n = proxy_proto_write_v2(out, sizeof(out),
		    (struct sockaddr *)&a.src, (struct sockaddr *)&a.dst);
		assert_int_equal(n, i == 0 ? 28 : 52);
		check_ok(out, n, &b);
		assert_int_equal(b.src_len, a.src_len);
		assert_memory_equal(&b.src, &a.src, a.src_len);
		assert_memory_equal(&b.dst, &a.dst, a.dst_len);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_reference),
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_bad_prefix),
		cmocka_unit_test(test_v1_bad_proto),
		cmocka_unit_test(test_v1_bad_addr),
		cmocka_unit_test(test_v1_bad_port),
		cmocka_unit_test(test_v2_tcp4),
		cmocka_unit_test(test_v2_tcp6),
		cmocka_unit_test(test_v2_local_unspec_unix),
		cmocka_unit_test(test_v2_bad_fixed),
		cmocka_unit_test(test_v2_size_limit),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_v2_bad_tlvs),
		cmocka_unit_test(test_v2_crc32c),
		cmocka_unit_test(test_write_v4),
		cmocka_unit_test(test_write_v6_and_mixed),
		cmocka_unit_test(test_v1_to_v2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
