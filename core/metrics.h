/*
 * metrics.h - lock-free per-thread counters, gauges and histograms, summed
 * when /metrics is scraped, rendered in Prometheus text format 0.0.4.
 *
 * A metric is registered once (any thread, takes a mutex) and gets a small
 * integer id. Each worker thread owns one shard: an array of slots it alone
 * writes with relaxed atomics, so the hot path is one uncontended add with
 * no lock and no shared cache line. A scrape reads every shard's slots with
 * relaxed loads and adds them up: totals are eventually consistent, which is
 * what Prometheus expects.
 *
 * The same name may be registered several times with different label sets;
 * they render as one family (one HELP/TYPE). Label text is given verbatim,
 * e.g. "listener=\"imaps\",reason=\"alpn\"", and must be trusted (never a
 * peer's bytes).
 */
#ifndef RG_CORE_METRICS_H
#define RG_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct metrics;
struct metrics_shard;

enum metric_type {
	METRIC_COUNTER,	  /* monotonic, per-thread adds summed */
	METRIC_GAUGE,	  /* per-thread +/- deltas summed (e.g. open conns) */
	METRIC_GAUGE_SET, /* one global value set with metrics_set() */
	METRIC_HISTOGRAM, /* per-thread buckets summed */
	/* A counter kept elsewhere (a pool's own stats) and copied in by a
	 * collector with metrics_set(); rendered as a counter. */
	METRIC_COUNTER_SET,
};

/* Create a registry with nshards shards (one per worker thread, plus any
 * other thread that records). ns is the namespace every name gets as a
 * prefix ("ringgate" makes "conn_open" render as "ringgate_conn_open").
 * Returns NULL on allocation failure. */
struct metrics *metrics_new(const char *ns, unsigned nshards);
void metrics_free(struct metrics *m);

/* Shard i (0 <= i < nshards) for the thread that owns it. */
struct metrics_shard *metrics_shard(struct metrics *m, unsigned i);

/* Registration. Returns the id (>= 0), or -1 if the registry is full or
 * the name is invalid. Registering the same name+labels again returns the
 * existing id. buckets: upper bounds, ascending, without +Inf. */
int metrics_counter(struct metrics *m, const char *name, const char *help,
    const char *labels);
int metrics_gauge(struct metrics *m, const char *name, const char *help,
    const char *labels);
int metrics_gauge_set(struct metrics *m, const char *name, const char *help,
    const char *labels);
int metrics_counter_set(struct metrics *m, const char *name, const char *help,
    const char *labels);
int metrics_histogram(struct metrics *m, const char *name, const char *help,
    const char *labels, const double *buckets, unsigned nbuckets);

/* A function run at the start of every metrics_render(), on the scraping
 * thread, to copy values kept elsewhere into GAUGE_SET/COUNTER_SET
 * metrics with metrics_set(). It must not register metrics or render.
 * At most 8 per registry; register them before the first scrape.
 * 0, or -1 when the table is full. */
typedef void metrics_collect_fn(struct metrics *m, void *arg);
int metrics_collector(struct metrics *m, metrics_collect_fn *fn, void *arg);

/* Hot path; an id < 0 is ignored, so unregistered metrics cost nothing. */
void metrics_add(struct metrics_shard *s, int id, uint64_t n);
void metrics_gauge_add(struct metrics_shard *s, int id, int64_t delta);
void metrics_observe(struct metrics_shard *s, int id, double v);
/* GAUGE_SET and COUNTER_SET only; any thread. */
void metrics_set(struct metrics *m, int id, double v);

/* Sum of a counter or gauge across shards (tests, healthz). */
double metrics_value(struct metrics *m, int id);

/* Render every family as Prometheus text 0.0.4. Returns 0 or -1 (ENOMEM). */
int metrics_render(struct metrics *m, struct buf *out);

#endif
