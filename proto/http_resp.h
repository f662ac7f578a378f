/*
 * http_resp.h - a bounded HTTP/1.x response-head parser, for clients of
 * small HTTP services (the auth_http-compatible back-end in
 * auth/backend_http.c).
 *
 * Pure: no I/O, no allocation, no state between calls. The caller keeps
 * the bytes received and calls http_parse_response() on all of them each
 * time more arrive; header slices point into the caller's buffer. Strict
 * like the request parser (proto/http.h): what two readers could frame
 * differently is INVALID.
 */
#ifndef RG_PROTO_HTTP_RESP_H
#define RG_PROTO_HTTP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/http.h" /* enum http_rc, HTTP_MAX_HEADERS */

struct http_header {
	const char *name; /* token, as sent (any case) */
	size_t name_len;
	const char *value; /* without leading and trailing blanks */
	size_t value_len;
};

struct http_resp {
	int version_minor; /* 0 or 1 */
	int status;	   /* 100..999 */
	size_t head_len;   /* bytes up to and including the empty line */
	unsigned nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
	int64_t content_length; /* -1 when absent */
	bool chunked;		/* Transfer-Encoding present (any coding) */
	/* The connection may carry another request afterwards: HTTP/1.1
	 * without "Connection: close", or HTTP/1.0 with "keep-alive", and a
	 * body framed by Content-Length. */
	bool keep_alive;
};

/*
 * Parse the response head at the start of p[0..n); max bounds the head
 * (HTTP_TOO_LARGE when n >= max without a complete head in it). r is only
 * meaningful on HTTP_OK. INVALID: a status line that is not
 * `HTTP/1.0|1.1 SP 3DIGIT [SP reason]`, header lines as refused by
 * http_parse_request(), a bad or repeated Content-Length, or both
 * Content-Length and Transfer-Encoding.
 */
enum http_rc http_parse_response(const char *p, size_t n, size_t max,
    struct http_resp *r);

/* The value of the first header called name (case-insensitive), or NULL;
 * *len_r gets its length. */
const char *http_resp_header(const struct http_resp *r, const char *name,
    size_t *len_r);

#endif
