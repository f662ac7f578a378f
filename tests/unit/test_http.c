/*
 * test_http.c - the HTTP request-head parser on good, bad and oversized
 * heads.
 *
 * The parser is stateless and re-run over everything received, so "one
 * byte at a time" and "split at every position" both mean: every prefix
 * of the input, each in its own exactly-sized heap copy (ASan catches any
 * read past the bytes given), must say AGAIN until the verdict on the whole
 * input, and once a prefix is INVALID every longer one is too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"

#define MAX 8192

static const char *const rc_names[] = { "OK", "AGAIN", "INVALID", "TOO_LARGE" };

static enum http_rc
parse_copy(const char *p, size_t n, size_t max, struct http_req *r)
{
	char *copy = malloc(n ? n : 1);
	enum http_rc rc;

	memcpy(copy, p, n);
	rc = http_parse_request(copy, n, max, r);
	/* Slices must point into the buffer given. */
	if (rc == HTTP_OK) {
		assert_true(r->method >= copy && r->method < copy + n);
		assert_true(r->target >= copy && r->target < copy + n);
		r->method = p + (r->method - copy);
		r->target = p + (r->target - copy);
	}
	free(copy);
	return rc;
}

/* Feed every prefix of s; the whole gives want. */
static void
check_prefixes(const char *s, size_t len, enum http_rc want)
{
	struct http_req r;
	enum http_rc rc, prev = HTTP_AGAIN;
	size_t head_len = len;

	if (want == HTTP_OK) {
		assert_int_equal(parse_copy(s, len, MAX, &r), HTTP_OK);
		head_len = r.head_len;
	}
	for (size_t k = 0; k < len; k++) {
		rc = parse_copy(s, k, MAX, &r);
		if (k < head_len && rc != HTTP_AGAIN &&
		    !(want == HTTP_INVALID && rc == HTTP_INVALID))
			fail_msg("prefix %zu of %zu: %s, want AGAIN or %s", k,
			    len, rc_names[rc], rc_names[want]);
		if (prev == HTTP_INVALID && rc != HTTP_INVALID)
			fail_msg("prefix %zu: INVALID did not stick", k);
		prev = rc;
	}
	rc = parse_copy(s, len, MAX, &r);
	if (rc != want)
		fail_msg("whole %.*s: %s, want %s", (int)len, s, rc_names[rc],
		    rc_names[want]);
}

#define CHECK(s, want) check_prefixes(s, sizeof(s) - 1, want)

static void
test_simple_get(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
				  "Accept: */*\r\n\r\n";
	struct http_req r;

	CHECK(req, HTTP_OK);
	assert_int_equal(http_parse_request(req, sizeof(req) - 1, MAX, &r),
	    HTTP_OK);
	assert_int_equal(r.method_len, 3);
	assert_memory_equal(r.method, "GET", 3);
	assert_int_equal(r.target_len, 8);
	assert_memory_equal(r.target, "/metrics", 8);
	assert_int_equal(r.version_minor, 1);
	assert_int_equal(r.head_len, sizeof(req) - 1);
	assert_int_equal(r.nheaders, 2);
	assert_int_equal(r.content_length, -1);
	assert_false(r.has_body);
}

static void
test_good_variants(void **state)
{
	struct http_req r;
	static const char lf[] = "HEAD /healthz?probe=1 HTTP/1.0\nX: y\n\n";
	static const char mixed[] = "GET / HTTP/1.1\nA: b\r\n\n";
	static const char star[] = "OPTIONS * HTTP/1.1\r\n\r\n";
	static const char values[] =
	    "GET /x HTTP/1.1\r\nX-Empty:\r\n"
	    "X-Tab:\t spaced \t\r\nX-Utf8: caf\xc3\xa9\r\n"
	    "x-odd!#$%&'*+-.^_`|~: v\r\n\r\n";

	CHECK(lf, HTTP_OK);
	assert_int_equal(http_parse_request(lf, sizeof(lf) - 1, MAX, &r),
	    HTTP_OK);
	assert_int_equal(r.version_minor, 0);
	assert_int_equal(r.target_len, 16);
	assert_int_equal(r.nheaders, 1);
	CHECK(mixed, HTTP_OK);
	CHECK(star, HTTP_OK);
	assert_int_equal(http_parse_request(star, sizeof(star) - 1, MAX, &r),
	    HTTP_OK);
	assert_int_equal(r.target_len, 1);
	assert_int_equal(r.nheaders, 0);
	CHECK(values, HTTP_OK);
	CHECK("PROPFIND /a/b/c HTTP/1.1\r\n\r\n", HTTP_OK);
	CHECK("GET /%7e?a=b&c=d#frag HTTP/1.1\r\n\r\n", HTTP_OK);
}

static void
test_body_framing(void **state)
{
	struct http_req r;
	static const char post[] = "POST /x HTTP/1.1\r\nContent-Length: 5"
				   "\r\n\r\nhello";
	static const char zero[] = "POST /x HTTP/1.1\r\ncontent-LENGTH:  0 "
				   "\r\n\r\n";
	static const char te[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: "
				 "chunked\r\n\r\n";
	static const char two[] = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n"
				  "\r\n";

	assert_int_equal(http_parse_request(post, sizeof(post) - 1, MAX, &r),
	    HTTP_OK);
	assert_int_equal(r.content_length, 5);
	assert_true(r.has_body);
	assert_int_equal(r.head_len, sizeof(post) - 1 - 5);
	CHECK(post, HTTP_OK);
	assert_int_equal(http_parse_request(zero, sizeof(zero) - 1, MAX, &r),
	    HTTP_OK);
	assert_int_equal(r.content_length, 0);
	assert_false(r.has_body);
	assert_int_equal(http_parse_request(te, sizeof(te) - 1, MAX, &r),
	    HTTP_OK);
	assert_int_equal(r.content_length, -1);
	assert_true(r.has_body);
	/* Pipelined: the first head only. */
	assert_int_equal(http_parse_request(two, sizeof(two) - 1, MAX, &r),
	    HTTP_OK);
	assert_int_equal(r.head_len, 19);
	assert_memory_equal(r.target, "/a", 2);
	/* Bytes after the head are never looked at. */
	assert_int_equal(
	    http_parse_request("GET / HTTP/1.1\r\n\r\n\0\x01", 20, MAX, &r),
	    HTTP_OK);
}

static void
test_bad_request_line(void **state)
{
	CHECK("\r\nGET / HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("\r\n", HTTP_INVALID);
	CHECK("GET  / HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET /  HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK(" GET / HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET\t/ HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1 \r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.2\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/2.0\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.10\r\n\r\n", HTTP_INVALID);
	CHECK("GET / http/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.\r\n\r\n", HTTP_INVALID);
	CHECK("GET /\r\n\r\n", HTTP_INVALID);
	CHECK("GET\r\n\r\n", HTTP_INVALID);
	CHECK("G(T / HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET x HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET http://h/ HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET ** HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET /a\x80 HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET /\x7f HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET /\x01 HTTP/1.1\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\rX\n\r\n", HTTP_INVALID);
	CHECK("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HTTP_INVALID);
	check_prefixes("GET /\0 HTTP/1.1\r\n\r\n", 20, HTTP_INVALID);
}

static void
test_bad_headers(void **state)
{
	CHECK("GET / HTTP/1.1\r\nNoColon\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\n: x\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\nA: b\r\n\tfolded\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\n Lead: x\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\nA(b: x\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\nA: \x1b[2J\r\n\r\n", HTTP_INVALID);
	CHECK("GET / HTTP/1.1\r\n\r\r\n", HTTP_INVALID);
	check_prefixes("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 27, HTTP_INVALID);
}

static void
test_content_length(void **state)
{
	CHECK("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n", HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length: 1 1\r\n\r\n", HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n"
	      "\r\n",
	    HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n"
	      "\r\n",
	    HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: "
	      "chunked\r\n\r\n",
	    HTTP_INVALID);
	CHECK("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	      "Content-Length: 3\r\n\r\n",
	    HTTP_INVALID);
	/* Lookalike names are ordinary headers. */
	CHECK("POST / HTTP/1.1\r\nContent-Lengths: x\r\nContent-Lengt: y\r\n"
	      "\r\n",
	    HTTP_OK);
	CHECK("POST / HTTP/1.1\r\nContent-Length: 000000000000000000007\r\n"
	      "\r\n",
	    HTTP_OK);
}

/* A head with n "X-i: v" headers, in a static buffer. */
static size_t
many_headers(char *buf, size_t cap, unsigned n)
{
	size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");

	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "X-%u: v\r\n", i);
	len += (size_t)snprintf(buf + len, cap - len, "\r\n");
	return len;
}

static void
test_header_limit(void **state)
{
	char buf[4096];
	struct http_req r;
	size_t len;

	len = many_headers(buf, sizeof(buf), HTTP_MAX_HEADERS);
	assert_int_equal(http_parse_request(buf, len, MAX, &r), HTTP_OK);
	assert_int_equal(r.nheaders, HTTP_MAX_HEADERS);
	len = many_headers(buf, sizeof(buf), HTTP_MAX_HEADERS + 1);
	check_prefixes(buf, len, HTTP_INVALID);
}

static void
test_too_large(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t len = sizeof(req) - 1;
	struct http_req r;
	char big[600];

	/* The head exactly fills max: fine, with or without more bytes. */
	assert_int_equal(http_parse_request(req, len, len, &r), HTTP_OK);
	assert_int_equal(
	    http_parse_request("GET / HTTP/1.1\r\nHost: x\r\n\r\nX", len + 1,
		len, &r),
	    HTTP_OK);
	/* One byte short of the head at max. */
	assert_int_equal(http_parse_request(req, len - 1, len - 1, &r),
	    HTTP_TOO_LARGE);
	assert_int_equal(http_parse_request(req, len - 2, len - 1, &r),
	    HTTP_AGAIN);
	/* The CR of the final CRLF at the limit, the LF beyond it. */
	assert_int_equal(http_parse_request(req, len, len - 1, &r),
	    HTTP_TOO_LARGE);
	/* A long valid-looking header. */
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	memset(big + 19, 'a', sizeof(big) - 19);
	assert_int_equal(http_parse_request(big, sizeof(big), 512, &r),
	    HTTP_TOO_LARGE);
	assert_int_equal(http_parse_request(big, 511, 512, &r), HTTP_AGAIN);
	/* Errors inside the limit win over size. */
	big[100] = '\0';
	assert_int_equal(http_parse_request(big, sizeof(big), 512, &r),
	    HTTP_INVALID);
	/* An error only beyond the limit is not seen. */
	big[100] = 'a';
	big[550] = '\0';
	assert_int_equal(http_parse_request(big, sizeof(big), 512, &r),
	    HTTP_TOO_LARGE);
	assert_int_equal(http_parse_request("", 0, 0, &r), HTTP_TOO_LARGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_good_variants),
		cmocka_unit_test(test_body_framing),
		cmocka_unit_test(test_bad_request_line),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_too_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
