/*
 * http.h - a bounded HTTP/1.x request-head parser for the admin listener.
 *
 * Pure: no I/O, no allocation, no state between calls. The caller keeps the
 * received bytes and calls http_parse_request() on all of them each time
 * more arrive; the result slices point into the caller's buffer. Strict on
 * purpose (RFC 9112 with no leniency beyond bare-LF line ends): anything an
 * intermediary could read differently is INVALID, never guessed at.
 */
#ifndef RG_PROTO_HTTP_H
#define RG_PROTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

enum http_rc {
	HTTP_OK,	/* a complete head; r is filled in */
	HTTP_AGAIN,	/* valid so far, need more bytes */
	HTTP_INVALID,	/* malformed: answer 400 and close */
	HTTP_TOO_LARGE, /* no complete head within max bytes: 431 */
};

struct http_req {
	const char *method; /* token, e.g. "GET" */
	size_t method_len;
	const char *target; /* "/path?query" or "*" */
	size_t target_len;
	int version_minor; /* 0 or 1 */
	size_t head_len;   /* bytes up to and including the empty line */
	unsigned nheaders;
	int64_t content_length; /* -1 when absent */
	bool has_body; /* Content-Length > 0 or any Transfer-Encoding */
};

/*
 * Parse the request head at the start of p[0..n). max bounds the head:
 * HTTP_TOO_LARGE when n >= max and no complete head lies within the first
 * max bytes. Errors seen in the bytes available are reported at once, even
 * before the head is complete. Bytes after head_len (a body, a pipelined
 * request) are not looked at. r is only meaningful on HTTP_OK.
 *
 * INVALID: a request line that is not `token SP target SP HTTP/1.0|1.1`
 * (target starting with '/' or exactly "*"), a header line without a
 * token name directly followed by ':', obs-fold, control bytes other than
 * HTAB (NUL included), a CR not followed by LF, more than
 * HTTP_MAX_HEADERS headers, a Content-Length that is not all digits, too
 * big or repeated, or both Content-Length and Transfer-Encoding.
 */
enum http_rc http_parse_request(const char *p, size_t n, size_t max,
    struct http_req *r);

/* ---- lexing, for this parser and the response parser (http_resp.c) ---- */

/* The line starting at pos in p[0..lim): *end_r where its CRLF or LF
 * starts, *next_r the first byte after it. AGAIN when no line end lies
 * before lim; INVALID on a control byte other than HTAB, or a CR not
 * followed by LF, wherever the line stops. */
enum http_rc http_line_next(const char *p, size_t lim, size_t pos,
    size_t *end_r, size_t *next_r);
/* RFC 9110 tchar: the characters of a method, a header name, a token. */
bool http_tchar(unsigned char c);
/* name[0..len) is lower, ASCII case ignored (lower is lowercase). */
bool http_token_is(const char *name, size_t len, const char *lower);

#endif
