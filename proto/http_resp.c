/*
 * http_resp.c - the HTTP/1.x response-head parser (see http_resp.h).
 *
 * Line by line over the caller's bytes, from the start on every call
 * (heads are capped at a few KiB, so re-parsing costs little and the
 * parser keeps no state). Control bytes other than HTAB, and a CR not
 * followed by LF, are refused as soon as they are seen.
 *
 * Never: allocates, reads past min(n, max), keeps more than
 * HTTP_MAX_HEADERS headers, or accepts a head whose body framing is
 * ambiguous (repeated or non-numeric Content-Length, Content-Length with
 * Transfer-Encoding, obs-fold).
 */
#include <string.h>
#include <strings.h>

#include "proto/http_resp.h"

#define CL_MAX 1000000000000000LL

static enum http_rc status_line(const char *p, size_t len, struct http_resp *r);
static enum http_rc header(const char *p, size_t len, struct http_resp *r,
    int *conn_r);

enum http_rc
http_parse_response(const char *p, size_t n, size_t max, struct http_resp *r)
{
	size_t lim = n < max ? n : max, pos = 0, end, next;
	int conn = 0; /* 1 close, 2 keep-alive */
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
			rc = status_line(p, end, r);
		else if (end == pos)
			break;
		else
			rc = header(p + pos, end - pos, r, &conn);
		if (rc != HTTP_OK)
			return rc;
		pos = next;
	}
	if (r->chunked && r->content_length != -1)
		return HTTP_INVALID;
	r->head_len = next;
	r->keep_alive = r->content_length != -1 && conn != 1 &&
	    (r->version_minor == 1 || conn == 2);
	return HTTP_OK;
}

const char *
http_resp_header(const struct http_resp *r, const char *name, size_t *len_r)
{
	size_t nl = strlen(name);

	for (unsigned i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];

		if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0) {
			*len_r = h->value_len;
			return h->value;
		}
	}
	*len_r = 0;
	return NULL;
}

/* HTTP/1.x SP 3DIGIT [SP reason] */
static enum http_rc
status_line(const char *p, size_t len, struct http_resp *r)
{
	if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1') || p[8] != ' ')
		return HTTP_INVALID;
	r->version_minor = p[7] - '0';
	for (int i = 9; i < 12; i++)
		if (p[i] < '0' || p[i] > '9')
			return HTTP_INVALID;
	if (p[9] == '0' || (len > 12 && p[12] != ' '))
		return HTTP_INVALID;
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	return HTTP_OK;
}

static enum http_rc
header(const char *p, size_t len, struct http_resp *r, int *conn_r)
{
	struct http_header *h;
	size_t i = 0, vs, ve;

	if (p[0] == ' ' || p[0] == '\t')
		return HTTP_INVALID; /* obs-fold */
	while (i < len && http_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == len || p[i] != ':')
		return HTTP_INVALID;
	if (r->nheaders == HTTP_MAX_HEADERS)
		return HTTP_INVALID;
	vs = i + 1;
	while (vs < len && (p[vs] == ' ' || p[vs] == '\t'))
		vs++;
	ve = len;
	while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
		ve--;
	h = &r->headers[r->nheaders++];
	h->name = p;
	h->name_len = i;
	h->value = p + vs;
	h->value_len = ve - vs;
	if (http_token_is(p, i, "content-length")) {
		int64_t v = 0;

		if (r->content_length != -1 || h->value_len == 0)
			return HTTP_INVALID;
		for (size_t k = 0; k < h->value_len; k++) {
			char c = h->value[k];

			if (c < '0' || c > '9' || v > CL_MAX / 10)
				return HTTP_INVALID;
			v = v * 10 + (c - '0');
		}
		r->content_length = v;
	} else if (http_token_is(p, i, "transfer-encoding")) {
		r->chunked = true;
	} else if (http_token_is(p, i, "connection")) {
		if (http_token_is(h->value, h->value_len, "close"))
			*conn_r = 1;
		else if (http_token_is(h->value, h->value_len, "keep-alive") &&
		    *conn_r == 0)
			*conn_r = 2;
	}
	return HTTP_OK;
}
