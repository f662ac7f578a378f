/*
 * fuzz_http.c - libFuzzer target for the HTTP request-head parser.
 *
 * Each input is parsed whole, then every prefix is parsed as the admin
 * listener would see it while bytes trickle in, and the properties the
 * listener relies on are checked: slices stay inside the input, head_len
 * never exceeds the bytes or the limit, a complete head is still complete
 * (and identical) with more bytes behind it, and an INVALID prefix stays
 * INVALID. A broken property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"

#define FUZZ_MAX 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_req(const char *p, size_t n, size_t max,
    const struct http_req *r);

static void
check_req(const char *p, size_t n, size_t max, const struct http_req *r)
{
	if (r->head_len == 0 || r->head_len > n || r->head_len > max)
		abort();
	if (r->method < p || r->method + r->method_len > p + r->head_len ||
	    r->target < p || r->target + r->target_len > p + r->head_len)
		abort();
	if (r->method_len == 0 || r->target_len == 0)
		abort();
	if (r->version_minor != 0 && r->version_minor != 1)
		abort();
	if (r->nheaders > HTTP_MAX_HEADERS || r->content_length < -1)
		abort();
	if (r->has_body != (r->content_length > 0) && r->content_length != -1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct http_req whole, r;
	enum http_rc rc, prev = HTTP_AGAIN;

	rc = http_parse_request(p, size, FUZZ_MAX, &whole);
	if (rc == HTTP_OK)
		check_req(p, size, FUZZ_MAX, &whole);
	/* Prefix walk, bounded so one input stays fast. */
	for (size_t k = 0; k <= size && k <= FUZZ_MAX + 1; k++) {
		enum http_rc pr = http_parse_request(p, k, FUZZ_MAX, &r);

		if (prev == HTTP_INVALID && pr != HTTP_INVALID)
			abort();
		if (pr == HTTP_OK) {
			check_req(p, k, FUZZ_MAX, &r);
			/* Once complete, more bytes change nothing. */
			if (rc != HTTP_OK || whole.head_len != r.head_len ||
			    whole.nheaders != r.nheaders ||
			    whole.content_length != r.content_length)
				abort();
			break;
		}
		prev = pr;
	}
	return 0;
}
