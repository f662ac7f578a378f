/*
 * http.c - the HTTP/1.x request-head parser (see http.h).
 *
 * Works line by line over the caller's bytes and re-parses from the start
 * on every call: heads are capped at a few KiB, so the quadratic worst case
 * is bounded and the parser needs no state. Control bytes are refused as
 * soon as they are seen, even in an unfinished line, so binary garbage is
 * rejected on its first read instead of waiting for the size limit.
 *
 * Never: allocates, reads past min(n, max), or accepts a head two
 * readers could frame differently (duplicate or non-numeric
 * Content-Length, Content-Length with Transfer-Encoding, obs-fold).
 */
#include <string.h>

#include "proto/http.h"

/* Largest Content-Length we parse; anything bigger is refused anyway. */
#define HTTP_CL_MAX 1000000000000000LL

static enum http_rc request_line(const char *p, size_t len, struct http_req *r);
static enum http_rc header_line(const char *p, size_t len, struct http_req *r,
    bool *te);
static enum http_rc content_length(const char *v, size_t len,
    struct http_req *r);

enum http_rc
http_parse_request(const char *p, size_t n, size_t max, struct http_req *r)
{
	size_t lim = n < max ? n : max, pos = 0, end, next;
	bool te = false;
	enum http_rc rc;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	for (;;) {
		rc = http_line_next(p, lim, pos, &end, &next);
		if (rc == HTTP_AGAIN)
			return n >= max ? HTTP_TOO_LARGE : HTTP_AGAIN;
		if (rc != HTTP_OK)
			return rc;
		if (pos == 0)
			rc = request_line(p, end, r);
		else if (end == pos)
			break; /* the empty line ends the head */
		else
			rc = header_line(p + pos, end - pos, r, &te);
		if (rc != HTTP_OK)
			return rc;
		pos = next;
	}
	if (te && r->content_length != -1)
		return HTTP_INVALID;
	r->head_len = next;
	r->has_body = te || r->content_length > 0;
	return HTTP_OK;
}

/* ---- lexing, shared with http_resp.c --------------------------------- */

enum http_rc
http_line_next(const char *p, size_t lim, size_t pos, size_t *end_r,
    size_t *next_r)
{
	unsigned char c;

	for (size_t i = pos; i < lim; i++) {
		c = (unsigned char)p[i];
		if (c == '\n') {
			*end_r = i;
			*next_r = i + 1;
			return HTTP_OK;
		}
		if (c == '\r') {
			if (i + 1 == lim)
				return HTTP_AGAIN;
			if (p[i + 1] != '\n')
				return HTTP_INVALID;
			*end_r = i;
			*next_r = i + 2;
			return HTTP_OK;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return HTTP_INVALID;
	}
	return HTTP_AGAIN;
}

bool
http_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool
http_token_is(const char *name, size_t len, const char *lower)
{
	size_t i;

	for (i = 0; i < len && lower[i] != '\0'; i++) {
		char c = name[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lower[i])
			return false;
	}
	return i == len && lower[i] == '\0';
}

/* ---- the request head -------------------------------------------------- */

/* method SP request-target SP HTTP-version, nothing else. */
static enum http_rc
request_line(const char *p, size_t len, struct http_req *r)
{
	size_t i = 0, t;

	while (i < len && http_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == len || p[i] != ' ')
		return HTTP_INVALID;
	r->method = p;
	r->method_len = i;
	t = ++i;
	while (i < len && p[i] > 0x20 && p[i] < 0x7f)
		i++;
	if (i == t || i == len || p[i] != ' ')
		return HTTP_INVALID;
	r->target = p + t;
	r->target_len = i - t;
	if (p[t] != '/' && !(r->target_len == 1 && p[t] == '*'))
		return HTTP_INVALID;
	i++;
	if (len - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 ||
	    (p[i + 7] != '0' && p[i + 7] != '1'))
		return HTTP_INVALID;
	r->version_minor = p[i + 7] - '0';
	return HTTP_OK;
}

/* field-name ":" OWS field-value OWS; a leading space is obs-fold. */
static enum http_rc
header_line(const char *p, size_t len, struct http_req *r, bool *te)
{
	size_t i = 0, name_len, v, e;

	if (++r->nheaders > HTTP_MAX_HEADERS)
		return HTTP_INVALID;
	while (i < len && http_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == len || p[i] != ':')
		return HTTP_INVALID;
	name_len = i;
	v = i + 1;
	while (v < len && (p[v] == ' ' || p[v] == '\t'))
		v++;
	e = len;
	while (e > v && (p[e - 1] == ' ' || p[e - 1] == '\t'))
		e--;
	if (http_token_is(p, name_len, "content-length"))
		return content_length(p + v, e - v, r);
	if (http_token_is(p, name_len, "transfer-encoding"))
		*te = true;
	return HTTP_OK;
}

static enum http_rc
content_length(const char *v, size_t len, struct http_req *r)
{
	int64_t cl = 0;

	if (r->content_length != -1 || len == 0)
		return HTTP_INVALID;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return HTTP_INVALID;
		cl = cl * 10 + (v[i] - '0');
		if (cl > HTTP_CL_MAX)
			return HTTP_INVALID;
	}
	r->content_length = cl;
	return HTTP_OK;
}
