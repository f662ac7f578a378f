/*
 * test_metrics.c - registry rules, exact rendered text, promtool
 * acceptance, and exact totals under concurrent per-shard writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/metrics.h"

#define PROMTOOL "/usr/bin/promtool"

/* Render m into a NUL-terminated string the caller frees. */
static char *
render(struct metrics *m)
{
	struct buf b = { 0 };
	char *s;

	assert_int_equal(metrics_render(m, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	s = strdup(buf_head(&b));
	buf_free(&b);
	return s;
}

/* 1 if promtool accepts text, 0 if it rejects it, -1 if not installed. */
static int
promtool_ok(const char *text)
{
	FILE *p;

	if (access(PROMTOOL, X_OK) != 0)
		return -1;
	p = popen(PROMTOOL " check metrics >/dev/null 2>&1", "w");
	if (p == NULL)
		return -1;
	fputs(text, p);
	return pclose(p) == 0;
}

static void
test_register_rules(void **state)
{
	struct metrics *m = metrics_new("rg", 2);
	double b[] = { 1, 2 }, bad[] = { 2, 1 }, inf[] = { 1, INFINITY };
	int a, a2, c;

	assert_non_null(m);
	a = metrics_counter(m, "req_total", "Requests.", "l=\"x\"");
	assert_true(a >= 0);
	a2 = metrics_counter(m, "req_total", "Requests.", "l=\"y\"");
	assert_true(a2 >= 0 && a2 != a);
	assert_int_equal(
	    metrics_counter(m, "req_total", "Other help.", "l=\"x\""), a);
	/* Same family, different type. */
	assert_int_equal(metrics_gauge(m, "req_total", "g", "l=\"z\""), -1);
	assert_int_equal(metrics_histogram(m, "req_total", "h", NULL, b, 2),
	    -1);
	/* Names. */
	assert_int_equal(metrics_counter(m, "", "x", NULL), -1);
	assert_int_equal(metrics_counter(m, "9lives", "x", NULL), -1);
	assert_int_equal(metrics_counter(m, "a-b", "x", NULL), -1);
	assert_int_equal(metrics_counter(m, "a b", "x", NULL), -1);
	assert_int_equal(metrics_counter(m, NULL, "x", NULL), -1);
	assert_true(metrics_counter(m, "_ok:name_9", "x", NULL) >= 0);
	/* Buckets must ascend and be finite. */
	assert_int_equal(metrics_histogram(m, "h1", "h", NULL, bad, 2), -1);
	assert_int_equal(metrics_histogram(m, "h2", "h", NULL, inf, 2), -1);
	c = metrics_histogram(m, "h3", "h", NULL, b, 2);
	assert_true(c >= 0);
	assert_int_equal(metrics_histogram(m, "h3", "h", NULL, b, 2), c);
	assert_null(metrics_new("bad-ns", 1));
	assert_null(metrics_new("ok", 0));
	assert_null(metrics_shard(m, 2));
	assert_int_equal(metrics_counter(NULL, "x", "x", NULL), -1);
	metrics_free(m);
}

static void
test_registry_full(void **state)
{
	struct metrics *m = metrics_new("rg", 1);
	char labels[32];
	int last = 0, n;

	for (n = 0; n < 100000; n++) {
		snprintf(labels, sizeof(labels), "i=\"%d\"", n);
		if ((last = metrics_counter(m, "many", "x", labels)) == -1)
			break;
	}
	assert_int_equal(last, -1);
	assert_true(n >= 1000);
	metrics_free(m);
}

static void
test_hot_path_ignores(void **state)
{
	struct metrics *m = metrics_new("rg", 1);
	int id = metrics_counter(m, "c", "c", NULL);

	metrics_add(NULL, id, 1);
	metrics_add(metrics_shard(m, 0), -1, 1);
	metrics_gauge_add(metrics_shard(m, 0), -1, 1);
	metrics_observe(metrics_shard(m, 0), -1, 1);
	metrics_observe(metrics_shard(m, 0), id, 1); /* not a histogram */
	metrics_set(m, -1, 1);
	metrics_set(m, id, 5); /* not a gauge_set */
	metrics_set(NULL, id, 5);
	assert_true(metrics_value(m, id) == 0);
	assert_true(metrics_value(m, -1) == 0);
	assert_true(metrics_value(m, 12345) == 0);
	metrics_free(m);
}

static void
test_render_exact(void **state)
{
	struct metrics *m = metrics_new("ringgate", 2);
	struct metrics_shard *s0 = metrics_shard(m, 0),
			     *s1 = metrics_shard(m, 1);
	double b[] = { 0.005, 0.1, 1, 10 };
	int c1, c2, g, gs, h, hl;
	char *text;

	c1 = metrics_counter(m, "conn_total", "Connections.",
	    "listener=\"imaps\"");
	g = metrics_gauge(m, "conn_open", "Open now.\nSecond \\ line.", NULL);
	c2 = metrics_counter(m, "conn_total", "Connections.",
	    "listener=\"pop3s\"");
	gs = metrics_gauge_set(m, "cert_expiry_seconds", "Expiry.", "cn=\"a\"");
	h = metrics_histogram(m, "dur_seconds", "Durations.", NULL, b, 4);
	hl = metrics_histogram(m, "dur_seconds", "Durations.", "x=\"1\"", b, 4);

	metrics_add(s0, c1, 3);
	metrics_add(s1, c1, 4);
	metrics_add(s1, c2, 1);
	metrics_gauge_add(s0, g, 5);
	metrics_gauge_add(s1, g, -7);
	metrics_set(m, gs, 1234567.25);
	metrics_observe(s0, h, 0.001);
	metrics_observe(s1, h, 0.1); /* bounds are inclusive */
	metrics_observe(s0, h, 3);
	metrics_observe(s1, h, 100);
	metrics_observe(s0, hl, 0.5);

	assert_true(metrics_value(m, c1) == 7);
	assert_true(metrics_value(m, g) == -2);
	assert_true(metrics_value(m, gs) == 1234567.25);
	assert_true(metrics_value(m, h) == 4);

	text = render(m);
	assert_string_equal(text,
	    "# HELP ringgate_conn_total Connections.\n"
	    "# TYPE ringgate_conn_total counter\n"
	    "ringgate_conn_total{listener=\"imaps\"} 7\n"
	    "ringgate_conn_total{listener=\"pop3s\"} 1\n"
	    "# HELP ringgate_conn_open Open now.\\nSecond \\\\ line.\n"
	    "# TYPE ringgate_conn_open gauge\n"
	    "ringgate_conn_open -2\n"
	    "# HELP ringgate_cert_expiry_seconds Expiry.\n"
	    "# TYPE ringgate_cert_expiry_seconds gauge\n"
	    "ringgate_cert_expiry_seconds{cn=\"a\"} 1234567.25\n"
	    "# HELP ringgate_dur_seconds Durations.\n"
	    "# TYPE ringgate_dur_seconds histogram\n"
	    "ringgate_dur_seconds_bucket{le=\"0.005\"} 1\n"
	    "ringgate_dur_seconds_bucket{le=\"0.1\"} 2\n"
	    "ringgate_dur_seconds_bucket{le=\"1\"} 2\n"
	    "ringgate_dur_seconds_bucket{le=\"10\"} 3\n"
	    "ringgate_dur_seconds_bucket{le=\"+Inf\"} 4\n"
	    "ringgate_dur_seconds_sum 103.101\n"
	    "ringgate_dur_seconds_count 4\n"
	    "ringgate_dur_seconds_bucket{x=\"1\",le=\"0.005\"} 0\n"
	    "ringgate_dur_seconds_bucket{x=\"1\",le=\"0.1\"} 0\n"
	    "ringgate_dur_seconds_bucket{x=\"1\",le=\"1\"} 1\n"
	    "ringgate_dur_seconds_bucket{x=\"1\",le=\"10\"} 1\n"
	    "ringgate_dur_seconds_bucket{x=\"1\",le=\"+Inf\"} 1\n"
	    "ringgate_dur_seconds_sum{x=\"1\"} 0.5\n"
	    "ringgate_dur_seconds_count{x=\"1\"} 1\n");
	assert_int_not_equal(promtool_ok(text), 0);
	free(text);
	metrics_free(m);
}

/* A collector copies a pool's own counters in at every scrape. */
struct pool_stats {
	int id_jobs, id_depth;
	uint64_t jobs;
	unsigned depth;
	unsigned calls;
};

static void
collect_pool(struct metrics *m, void *arg)
{
	struct pool_stats *p = arg;

	p->calls++;
	metrics_set(m, p->id_jobs, (double)p->jobs);
	metrics_set(m, p->id_depth, (double)p->depth);
}

static void
test_collector(void **state)
{
	struct metrics *m = metrics_new("ringstore", 1);
	struct pool_stats p = { 0 };
	char *text;

	p.id_jobs = metrics_counter_set(m, "auth_jobs_total", "Jobs.", NULL);
	p.id_depth = metrics_gauge_set(m, "auth_queue", "Queued.", NULL);
	assert_true(p.id_jobs >= 0 && p.id_depth >= 0);
	/* a counter_set ignores the per-thread hot path */
	metrics_add(metrics_shard(m, 0), p.id_jobs, 5);
	assert_int_equal(metrics_collector(m, collect_pool, &p), 0);
	p.jobs = 42;
	p.depth = 3;
	text = render(m);
	assert_int_equal(p.calls, 1);
	assert_string_equal(text,
	    "# HELP ringstore_auth_jobs_total Jobs.\n"
	    "# TYPE ringstore_auth_jobs_total counter\n"
	    "ringstore_auth_jobs_total 42\n"
	    "# HELP ringstore_auth_queue Queued.\n"
	    "# TYPE ringstore_auth_queue gauge\n"
	    "ringstore_auth_queue 3\n");
	assert_int_not_equal(promtool_ok(text), 0);
	free(text);
	for (int i = 1; i < 8; i++)
		assert_int_equal(metrics_collector(m, collect_pool, &p), 0);
	assert_int_equal(metrics_collector(m, collect_pool, &p), -1);
	metrics_free(m);
}

static void
test_render_floats(void **state)
{
	struct metrics *m = metrics_new(NULL, 1);
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ -0.0, "-0" },
		{ 0.1, "0.1" },
		{ 1e-7, "1e-07" },
		{ 1e300, "1e+300" },
		{ 1e15, "1000000000000000" },
		{ 1.0 / 3, "0.33333333333333331" },
		{ -2.5, "-2.5" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
		{ NAN, "NaN" },
	};
	char name[16], want[64], *text;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "g%zu", i);
		metrics_set(m, metrics_gauge_set(m, name, "x", NULL),
		    cases[i].v);
	}
	text = render(m);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(want, sizeof(want), "\ng%zu %s\n", i, cases[i].text);
		if (strstr(text, want) == NULL)
			fail_msg("missing %s in:\n%s", want, text);
	}
	/* No namespace: no leading underscore. */
	assert_int_equal(strncmp(text, "# HELP g0 x\n", 12), 0);
	assert_int_not_equal(promtool_ok(text), 0);
	free(text);
	metrics_free(m);
}

static void
test_promtool_rejects_garbage(void **state)
{
	/* Proves the promtool checks above can fail. */
	if (promtool_ok("# TYPE x counter\nx{ 1\n") == -1)
		skip();
	assert_int_equal(promtool_ok("# TYPE x counter\nx{ 1\n"), 0);
}

#define NTHREADS 4
#define NADDS 200000

struct worker {
	struct metrics *m;
	unsigned idx;
	int c, g, h;
};

static void *
hammer(void *arg)
{
	struct worker *w = arg;
	struct metrics_shard *s = metrics_shard(w->m, w->idx);
	char labels[32];

	for (unsigned i = 0; i < NADDS; i++) {
		metrics_add(s, w->c, 1);
		metrics_gauge_add(s, w->g, (i & 1) ? -1 : 2);
		metrics_observe(s, w->h, (double)(i % 4));
	}
	/* Registration from a worker while others record. */
	snprintf(labels, sizeof(labels), "w=\"%u\"", w->idx);
	metrics_add(s, metrics_counter(w->m, "late_total", "x", labels), 1);
	return NULL;
}

static void
test_concurrent_exact(void **state)
{
	struct metrics *m = metrics_new("rg", NTHREADS);
	double b[] = { 0.5, 1.5, 2.5 };
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	int c = metrics_counter(m, "ops_total", "x", NULL);
	int g = metrics_gauge(m, "level", "x", NULL);
	int h = metrics_histogram(m, "obs", "x", NULL, b, 3);
	char *text;

	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ m, i, c, g, h };
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
	}
	/* Scrapes while writers run must not crash or block them. */
	for (int i = 0; i < 20; i++)
		free(render(m));
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	assert_true(metrics_value(m, c) == (double)NTHREADS * NADDS);
	assert_true(metrics_value(m, g) == (double)NTHREADS * NADDS / 2);
	assert_true(metrics_value(m, h) == (double)NTHREADS * NADDS);
	text = render(m);
	assert_non_null(strstr(text, "\nrg_obs_sum 1200000\n"));
	assert_non_null(strstr(text, "\nrg_obs_bucket{le=\"1.5\"} 400000\n"));
	assert_non_null(strstr(text, "\nrg_late_total{w=\"3\"} 1\n"));
	assert_int_not_equal(promtool_ok(text), 0);
	free(text);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_rules),
		cmocka_unit_test(test_registry_full),
		cmocka_unit_test(test_hot_path_ignores),
		cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_render_floats),
		cmocka_unit_test(test_collector),
		cmocka_unit_test(test_promtool_rejects_garbage),
		cmocka_unit_test(test_concurrent_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
