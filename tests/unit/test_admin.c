/*
 * test_admin.c - the admin listener's request-to-response step, driven
 * directly through admin_respond() with a real metrics registry (no loop).
 *
 * Every response is checked for the invariants the listener promises:
 * a status line, Content-Length equal to the body actually sent (0 bytes
 * for HEAD), and Connection: close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/admin.h"
#include "core/buf.h"
#include "core/metrics.h"

#define PROMTOOL "/usr/bin/promtool"

struct resp {
	int status;
	char head[2048]; /* status line and headers, NUL-terminated */
	char *body;	 /* NUL-terminated copy */
	size_t body_len;
	size_t content_length;
};

struct health {
	int ok;
	const char *detail;
};

static struct metrics *m;
static int req_id;

static int
setup(void **state)
{
	double b[] = { 0.1, 1 };

	m = metrics_new("ringgate", 2);
	req_id = metrics_counter(m, "admin_test_total", "A test counter.",
	    "kind=\"x\"");
	metrics_add(metrics_shard(m, 1), req_id, 42);
	metrics_observe(metrics_shard(m, 0),
	    metrics_histogram(m, "admin_test_seconds", "A test histogram.",
		NULL, b, 2),
	    0.25);
	return m ? 0 : -1;
}

static int
teardown(void **state)
{
	metrics_free(m);
	return 0;
}

static int
health_cb(void *arg, struct buf *detail)
{
	struct health *h = arg;

	buf_printf(detail, "%s", h->detail);
	return h->ok;
}

/* Split and check one response. */
static void
parse_resp(const struct buf *out, struct resp *r)
{
	const char *s = buf_head(out), *end, *cl;
	size_t n = buf_used(out), hlen;

	assert_true(n > 12);
	assert_memory_equal(s, "HTTP/1.1 ", 9);
	r->status = atoi(s + 9);
	end = memmem(s, n, "\r\n\r\n", 4);
	assert_non_null(end);
	hlen = (size_t)(end - s) + 4;
	assert_true(hlen < sizeof(r->head));
	memcpy(r->head, s, hlen);
	r->head[hlen] = '\0';
	r->body_len = n - hlen;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, s + hlen, r->body_len);
	r->body[r->body_len] = '\0';
	assert_non_null(strstr(r->head, "\r\nConnection: close\r\n"));
	cl = strstr(r->head, "\r\nContent-Length: ");
	assert_non_null(cl);
	r->content_length = strtoul(cl + 18, NULL, 10);
}

/* Send req whole (after checking every prefix asks for more). */
static void
ask(struct admin *a, const char *req, struct resp *r, bool is_head)
{
	size_t n = strlen(req);
	struct buf out = { 0 };

	assert_int_equal(admin_respond(a, req, n, &out), 1);
	parse_resp(&out, r);
	if (is_head)
		assert_int_equal(r->body_len, 0);
	else
		assert_int_equal(r->body_len, r->content_length);
	buf_free(&out);
}

static int
promtool_ok(const char *text)
{
	FILE *p;

	if (access(PROMTOOL, X_OK) != 0)
		return -1;
	if ((p = popen(PROMTOOL " check metrics >/dev/null 2>&1", "w")) == NULL)
		return -1;
	fputs(text, p);
	return pclose(p) == 0;
}

static void
test_metrics_get(void **state)
{
	struct admin *a = admin_new(m, NULL, NULL);
	struct buf want = { 0 };
	struct resp r;

	ask(a, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r, false);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.head, "HTTP/1.1 200 OK\r\n", 17);
	assert_non_null(strstr(r.head,
	    "\r\nContent-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\n"));
	assert_int_equal(metrics_render(m, &want), 0);
	assert_int_equal(r.body_len, buf_used(&want));
	assert_memory_equal(r.body, buf_head(&want), r.body_len);
	assert_non_null(
	    strstr(r.body, "\nringgate_admin_test_total{kind=\"x\"} 42\n"));
	assert_int_not_equal(promtool_ok(r.body), 0);
	buf_free(&want);
	free(r.body);

	/* Query strings are ignored; HTTP/1.0 and bare LF work. */
	ask(a, "GET /metrics?name[]=x HTTP/1.0\n\n", &r, false);
	assert_int_equal(r.status, 200);
	free(r.body);
	admin_free(a);
}

static void
test_metrics_head(void **state)
{
	struct admin *a = admin_new(m, NULL, NULL);
	struct resp get, head;

	ask(a, "GET /metrics HTTP/1.1\r\n\r\n", &get, false);
	ask(a, "HEAD /metrics HTTP/1.1\r\n\r\n", &head, true);
	assert_int_equal(head.status, 200);
	/* HEAD announces the length GET would send. */
	assert_int_equal(head.content_length, get.body_len);
	free(get.body);
	free(head.body);
	admin_free(a);
}

static void
test_healthz(void **state)
{
	struct health h = { 1, "workers=4" };
	struct admin *a = admin_new(m, health_cb, &h), *plain;
	struct resp r;

	ask(a, "GET /healthz HTTP/1.1\r\n\r\n", &r, false);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	free(r.body);

	h.ok = 0;
	h.detail = "backend=down";
	ask(a, "GET /healthz?verbose HTTP/1.1\r\n\r\n", &r, false);
	assert_int_equal(r.status, 503);
	assert_memory_equal(r.head, "HTTP/1.1 503 Service Unavailable\r\n", 34);
	assert_string_equal(r.body, "backend=down\n");
	free(r.body);

	h.detail = "already a line\n";
	ask(a, "GET /healthz HTTP/1.1\r\n\r\n", &r, false);
	assert_string_equal(r.body, "already a line\n");
	free(r.body);

	h.detail = "";
	ask(a, "HEAD /healthz HTTP/1.1\r\n\r\n", &r, true);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.content_length, strlen("unhealthy\n"));
	free(r.body);

	plain = admin_new(m, NULL, NULL);
	ask(plain, "GET /healthz HTTP/1.1\r\n\r\n", &r, false);
	assert_int_equal(r.status, 200);
	free(r.body);
	admin_free(plain);
	admin_free(a);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *req;
		int status;
		bool head;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n\r\n", 404, false },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", 404, false },
		{ "GET /metrics/ HTTP/1.1\r\n\r\n", 404, false },
		{ "GET /METRICS HTTP/1.1\r\n\r\n", 404, false },
		{ "HEAD /nope HTTP/1.1\r\n\r\n", 404, true },
		{ "OPTIONS * HTTP/1.1\r\n\r\n", 404, false },
		{ "POST /metrics HTTP/1.1\r\n\r\n", 405, false },
		{ "DELETE /healthz HTTP/1.1\r\n\r\n", 405, false },
		{ "get /metrics HTTP/1.1\r\n\r\n", 405, false },
		{ "GET /metrics HTTP/2.0\r\n\r\n", 400, false },
		{ "GET /metrics\r\n\r\n", 400, false },
		{ "GET /metrics HTTP/1.1\r\nBad header\r\n\r\n", 400, false },
		{ "\x16\x03\x01\x00\xa5\x01\x00", 400, false },
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
		    413, false },
		{ "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		    413, false },
	};
	struct admin *a = admin_new(m, NULL, NULL);
	struct resp r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ask(a, cases[i].req, &r, cases[i].head);
		if (r.status != cases[i].status)
			fail_msg("%s: got %d want %d", cases[i].req, r.status,
			    cases[i].status);
		if (r.status == 405)
			assert_non_null(
			    strstr(r.head, "\r\nAllow: GET, HEAD\r\n"));
		else
			assert_null(strstr(r.head, "Allow:"));
		free(r.body);
	}
	admin_free(a);
}

static void
test_incomplete_and_too_large(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct admin *a = admin_new(m, NULL, NULL);
	struct buf out = { 0 };
	char big[9000];
	struct resp r;

	for (size_t k = 0; k < sizeof(req) - 1; k++) {
		assert_int_equal(admin_respond(a, req, k, &out), 0);
		assert_int_equal(buf_used(&out), 0);
	}
	memcpy(big, "GET /metrics HTTP/1.1\r\nX-Pad: ", 30);
	memset(big + 30, 'a', sizeof(big) - 31);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(admin_respond(a, big, 8191, &out), 0);
	assert_int_equal(admin_respond(a, big, 8192, &out), 1);
	parse_resp(&out, &r);
	assert_int_equal(r.status, 431);
	assert_int_equal(r.body_len, r.content_length);
	free(r.body);
	buf_free(&out);
	admin_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_get),
		cmocka_unit_test(test_metrics_head),
		cmocka_unit_test(test_healthz),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_incomplete_and_too_large),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
