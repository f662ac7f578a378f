/*
 * admin.c - the admin HTTP listener: /metrics for Prometheus, /healthz for
 * load balancers and orchestrators.
 *
 * One request per connection, one response, then close: no keep-alive, no
 * request bodies, no chunking, so the whole server is the pure function
 * admin_respond() over the bytes received so far, plus a little loop glue.
 * Request heads are parsed by proto/http.c and capped at ADMIN_HEAD_MAX;
 * a connection that has not sent a full head within ADMIN_TIMEOUT_MS is
 * dropped by its timer.
 *
 * Relies on: the loop delivering on_data on the listener's thread, and the
 * listener ctx being the struct admin. The metrics registry and the health
 * callback are safe to call from that thread.
 *
 * Never: echoes request bytes into a response or a log line, keeps more
 * than ADMIN_HEAD_MAX bytes per connection, or answers without
 * Content-Length and Connection: close.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admin.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "proto/http.h"

#define ADMIN_HEAD_MAX 8192
#define ADMIN_TIMEOUT_MS 10000

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct admin {
	struct metrics *m;
	int (*healthy)(void *arg, struct buf *detail);
	void *arg;
	/* the daemon's own paths (admin_set_route()), prefix NULL: none */
	const char *prefix;
	admin_route_fn *route_fn;
	void *route_arg;
};

/* Per connection: the bytes of the request head received so far. */
struct admin_conn {
	struct buf in;
	bool done; /* a response is queued; ignore anything more */
};

/* request -> response */
static int respond(struct admin *a, const char *req, size_t n, struct buf *out,
    int *status_r);
static int route(struct admin *a, const struct http_req *r, struct buf *out,
    int *status_r);
static int serve_metrics(struct admin *a, bool head, struct buf *out);
static int serve_healthz(struct admin *a, bool head, struct buf *out,
    int *status_r);
static int reply(struct buf *out, int status, const char *ctype,
    const char *extra, const char *body, size_t len, bool head);
static int reply_error(struct buf *out, int status, const char *extra,
    bool head);
static const char *status_text(int status);
static bool method_is(const struct http_req *r, const char *m);
static bool path_is(const struct http_req *r, const char *path);
static bool path_under(const struct http_req *r, const char *prefix);
static int serve_route(struct admin *a, const struct http_req *r,
    struct buf *out, int *status_r);

/* loop glue */
static void admin_open(struct conn *c);
static void admin_data(struct conn *c, const char *p, size_t n);
static void admin_closed(struct conn *c, enum conn_reason why);

static const struct conn_handler admin_conn_handler = {
	.on_open = admin_open,
	.on_data = admin_data,
	.on_close = admin_closed,
	/* on_eof: close; on_timer: abort with CR_TIMEOUT (loop defaults) */
};

struct admin *
admin_new(struct metrics *m, int (*healthy)(void *arg, struct buf *detail),
    void *arg)
{
	struct admin *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->m = m;
	a->healthy = healthy;
	a->arg = arg;
	return a;
}

void
admin_set_route(struct admin *a, const char *prefix, admin_route_fn *fn,
    void *arg)
{
	a->prefix = prefix;
	a->route_fn = fn;
	a->route_arg = arg;
}

void
admin_free(struct admin *a)
{
	free(a);
}

const struct conn_handler *
admin_handler(void)
{
	return &admin_conn_handler;
}

int
admin_respond(struct admin *a, const char *req, size_t n, struct buf *out)
{
	int status;

	return respond(a, req, n, out, &status);
}

static int
respond(struct admin *a, const char *req, size_t n, struct buf *out,
    int *status_r)
{
	struct http_req r;
	int status = 0;

	switch (http_parse_request(req, n, ADMIN_HEAD_MAX, &r)) {
	case HTTP_AGAIN:
		return 0;
	case HTTP_INVALID:
		status = 400;
		break;
	case HTTP_TOO_LARGE:
		status = 431;
		break;
	case HTTP_OK:
		/* Nothing here takes a body, so none is ever read. */
		if (r.has_body)
			status = 413;
		else
			return route(a, &r, out, status_r);
		break;
	}
	*status_r = status;
	return reply_error(out, status, "", false);
}

static int
route(struct admin *a, const struct http_req *r, struct buf *out, int *status_r)
{
	bool get = method_is(r, "GET"), head = method_is(r, "HEAD");
	bool metrics = path_is(r, "/metrics"), healthz = path_is(r, "/healthz");

	if (a->prefix != NULL && path_under(r, a->prefix))
		return serve_route(a, r, out, status_r);
	if (!metrics && !healthz) {
		*status_r = 404;
		return reply_error(out, 404, "", head);
	}
	if (!get && !head) {
		*status_r = 405;
		return reply_error(out, 405, "Allow: GET, HEAD\r\n", false);
	}
	if (healthz)
		return serve_healthz(a, head, out, status_r);
	*status_r = 200;
	return serve_metrics(a, head, out);
}

static int
serve_metrics(struct admin *a, bool head, struct buf *out)
{
	struct buf body = { 0 };
	int rc;

	/* HEAD renders too: its Content-Length must be GET's. */
	if (metrics_render(a->m, &body) == -1) {
		buf_free(&body);
		return -1;
	}
	rc = reply(out, 200, CT_METRICS, "", body.data ? buf_head(&body) : "",
	    buf_used(&body), head);
	buf_free(&body);
	return rc;
}

static int
serve_healthz(struct admin *a, bool head, struct buf *out, int *status_r)
{
	struct buf detail = { 0 };
	int ok = 1, rc;

	if (a->healthy != NULL)
		ok = a->healthy(a->arg, &detail);
	if (ok) {
		*status_r = 200;
		rc = reply(out, 200, CT_TEXT, "", "ok\n", 3, head);
	} else {
		/* The detail is a line; make sure it ends like one. */
		if (buf_used(&detail) == 0)
			rc = buf_append(&detail, "unhealthy\n", 10);
		else if (buf_head(&detail)[buf_used(&detail) - 1] != '\n')
			rc = buf_append(&detail, "\n", 1);
		else
			rc = 0;
		*status_r = 503;
		if (rc == 0)
			rc = reply(out, 503, CT_TEXT, "", buf_head(&detail),
			    buf_used(&detail), head);
	}
	buf_free(&detail);
	return rc;
}

/* Append a whole response. Returns 1 (done) or -1 (out of memory). */
static int
reply(struct buf *out, int status, const char *ctype, const char *extra,
    const char *body, size_t len, bool head)
{
	if (buf_printf(out,
		"HTTP/1.1 %d %s\r\n"
		"Content-Type: %s\r\n"
		"Content-Length: %zu\r\n"
		"Cache-Control: no-store\r\n"
		"Connection: close\r\n"
		"%s\r\n",
		status, status_text(status), ctype, len, extra) == -1)
		return -1;
	if (!head && buf_append(out, body, len) == -1)
		return -1;
	return 1;
}

/* Errors carry a one-line text body naming the status, never request
 * bytes. */
static int
reply_error(struct buf *out, int status, const char *extra, bool head)
{
	char body[64];
	int len = snprintf(body, sizeof(body), "%d %s\n", status,
	    status_text(status));

	return reply(out, status, CT_TEXT, extra, body, (size_t)len, head);
}

static const char *
status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	}
	return "Error";
}

static bool
method_is(const struct http_req *r, const char *m)
{
	return r->method_len == strlen(m) &&
	    memcmp(r->method, m, r->method_len) == 0;
}

/* The target's path (query string ignored) equals path exactly. */
static bool
path_is(const struct http_req *r, const char *path)
{
	const char *q = memchr(r->target, '?', r->target_len);
	size_t len = q ? (size_t)(q - r->target) : r->target_len;

	return len == strlen(path) && memcmp(r->target, path, len) == 0;
}

/* The target's path is prefix or lies under it. */
static bool
path_under(const struct http_req *r, const char *prefix)
{
	const char *q = memchr(r->target, '?', r->target_len);
	size_t len = q ? (size_t)(q - r->target) : r->target_len;
	size_t n = strlen(prefix);

	return len >= n && memcmp(r->target, prefix, n) == 0 &&
	    (len == n || r->target[n] == '/');
}

static int
serve_route(struct admin *a, const struct http_req *r, struct buf *out,
    int *status_r)
{
	struct buf body = { 0 };
	const char *ctype = NULL;
	int status, rc;

	status = a->route_fn(a->route_arg, r->method, r->method_len, r->target,
	    r->target_len, &body, &ctype);
	if (status == -1) {
		buf_free(&body);
		return -1;
	}
	*status_r = status;
	if (status >= 400 && buf_used(&body) == 0) {
		buf_free(&body);
		return reply_error(out, status,
		    status == 405 ? "Allow: GET, POST\r\n" : "", false);
	}
	rc = reply(out, status, ctype ? ctype : CT_TEXT, "",
	    body.data ? buf_head(&body) : "", buf_used(&body),
	    method_is(r, "HEAD"));
	buf_free(&body);
	return rc;
}

static void
admin_open(struct conn *c)
{
	struct admin_conn *ac = calloc(1, sizeof(*ac));

	if (ac == NULL) {
		conn_abort(c, CR_NOMEM);
		return;
	}
	conn_set_ctx(c, ac);
	conn_set_timer(c, ADMIN_TIMEOUT_MS);
}

static void
admin_data(struct conn *c, const char *p, size_t n)
{
	struct admin_conn *ac = conn_ctx(c);
	struct admin *a = listener_ctx(conn_listener(c));
	struct buf out = { 0 };
	size_t room;
	int rc, status = 0;

	if (ac == NULL || ac->done)
		return;
	/* Bytes past the cap cannot change the answer: the parser reports
	 * TOO_LARGE once it has ADMIN_HEAD_MAX bytes without a full head. */
	room = ADMIN_HEAD_MAX - buf_used(&ac->in);
	if (buf_append(&ac->in, p, n < room ? n : room) == -1) {
		conn_abort(c, CR_NOMEM);
		return;
	}
	rc = respond(a, buf_head(&ac->in), buf_used(&ac->in), &out, &status);
	if (rc == 0)
		return;
	ac->done = true;
	buf_free(&ac->in);
	if (rc == -1 || conn_write(c, buf_head(&out), buf_used(&out)) == -1) {
		buf_free(&out);
		conn_abort(c, CR_NOMEM);
		return;
	}
	buf_free(&out);
	log_debug(conn_sid(c), "admin.request", "peer=%s status=%d",
	    conn_peer(c), status);
	conn_close(c);
}

static void
admin_closed(struct conn *c, enum conn_reason why)
{
	struct admin_conn *ac = conn_ctx(c);

	if (ac == NULL)
		return;
	buf_free(&ac->in);
	free(ac);
	conn_set_ctx(c, NULL);
}
