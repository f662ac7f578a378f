/*
 * fuzz_http_resp.c - libFuzzer target for the HTTP response-head parser
 * (proto/http_resp.c) that the HTTP auth hook reads its answers with.
 *
 * Each input is parsed whole, then every prefix as the back-end sees it
 * while bytes arrive, checking what auth/backend_http.c relies on: header
 * slices stay inside the head, head_len never exceeds the bytes or the
 * limit, a status of 100..999, keep-alive only with a Content-Length, a
 * complete head stays the same with more bytes behind it, and an INVALID
 * prefix stays INVALID. A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http_resp.h"

#define FUZZ_MAX 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_resp(const char *p, size_t n, size_t max,
    const struct http_resp *r);

static void
check_resp(const char *p, size_t n, size_t max, const struct http_resp *r)
{
	size_t len;

	if (r->head_len == 0 || r->head_len > n || r->head_len > max)
		abort();
	if (r->status < 100 || r->status > 999 || r->version_minor < 0 ||
	    r->version_minor > 1 || r->nheaders > HTTP_MAX_HEADERS)
		abort();
	if (r->keep_alive && r->content_length < 0)
		abort();
	if (r->chunked && r->content_length != -1)
		abort();
	for (unsigned i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];

		if (h->name < p || h->name_len == 0 ||
		    h->name + h->name_len > p + r->head_len || h->value < p ||
		    h->value + h->value_len > p + r->head_len)
			abort();
		if (memchr(h->value, '\n', h->value_len) != NULL)
			abort();
	}
	if (r->nheaders > 0 &&
	    http_resp_header(r, "Auth-Status", &len) != NULL &&
	    len > r->head_len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct http_resp *whole = malloc(sizeof(*whole));
	struct http_resp *r = malloc(sizeof(*r));
	enum http_rc rc, prev = HTTP_AGAIN;

	if (whole == NULL || r == NULL)
		abort();
	rc = http_parse_response(p, size, FUZZ_MAX, whole);
	if (rc == HTTP_OK)
		check_resp(p, size, FUZZ_MAX, whole);
	for (size_t k = 0; k <= size && k <= FUZZ_MAX + 1; k++) {
		enum http_rc pr = http_parse_response(p, k, FUZZ_MAX, r);

		if (prev == HTTP_INVALID && pr != HTTP_INVALID)
			abort();
		if (pr == HTTP_OK) {
			check_resp(p, k, FUZZ_MAX, r);
			if (rc != HTTP_OK || whole->head_len != r->head_len ||
			    whole->nheaders != r->nheaders ||
			    whole->status != r->status ||
			    whole->content_length != r->content_length ||
			    whole->keep_alive != r->keep_alive)
				abort();
			break;
		}
		prev = pr;
	}
	free(whole);
	free(r);
	return 0;
}
