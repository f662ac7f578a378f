/*
 * metrics.c - the metrics registry, per-thread shards and the Prometheus
 * text renderer.
 *
 * A metric's id is the index of its first slot. Every shard is one
 * cache-line-aligned array of METRICS_SLOTS _Atomic uint64_t, allocated up
 * front at its full size: registration may happen while workers record, so
 * a shard can never be reallocated under a writer. Slot use per type:
 *
 *   counter     1 slot, a uint64 count
 *   gauge       1 slot, an int64 delta stored two's complement (a shard's
 *               slot may read "negative"; the sum over shards is right)
 *   gauge_set   1 slot, unused in shards; the value lives in the def as
 *   counter_set the bits of a double, written by any thread
 *   histogram   nbuckets + 2 slots: one per bucket including +Inf, each
 *               counting observations that fell in that bucket only
 *               (cumulated at render time; their total is _count), then
 *               _sum as the bits of a double
 *
 * Only a shard's owner writes it, so a histogram's _sum is a relaxed load,
 * add and store, not a CAS loop. Scrapes read with relaxed loads and get
 * eventually consistent totals.
 *
 * Registration and rendering take the registry mutex; the hot path never
 * does, and never touches memory another thread writes.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/metrics.h"

#define METRICS_MAX_DEFS 1024
#define METRICS_SLOTS 2048
#define METRICS_MAX_BUCKETS 64
#define METRICS_MAX_COLLECTORS 8
#define CACHE_LINE 64

struct metric_def {
	char *name; /* with namespace prefix */
	char *help;
	char *labels; /* "" when none */
	enum metric_type type;
	unsigned slot;
	unsigned nbuckets; /* histogram bounds, +Inf not included */
	double *buckets;
	int family_next; /* next def of the same family, -1 at the end */
	bool family_head;
	_Atomic uint64_t set_bits; /* *_SET value, double bits */
};

struct metrics_shard {
	alignas(CACHE_LINE) _Atomic uint64_t slot[METRICS_SLOTS];
	struct metrics *m;
};

struct metrics {
	pthread_mutex_t lock;
	char *ns;
	unsigned nshards;
	struct metrics_shard **shards;
	unsigned ndefs;
	/* Read without the lock by the hot path's bounds check. */
	_Atomic unsigned nslots;
	/* slot -> def index; written before the id is handed out */
	int16_t slot_def[METRICS_SLOTS];
	struct metric_def defs[METRICS_MAX_DEFS];
	unsigned ncollectors;
	struct {
		metrics_collect_fn *fn;
		void *arg;
	} collectors[METRICS_MAX_COLLECTORS];
};

/* registration */
static bool name_ok(const char *s);
static int family_find(const struct metrics *m, const char *name, int *tail_r);
static int metric_register(struct metrics *m, const char *name,
    const char *help, const char *labels, enum metric_type type,
    const double *buckets, unsigned nbuckets);
static int def_fill(struct metric_def *d, const char *full, const char *help,
    const char *labels, const double *buckets, unsigned nbuckets);
static struct metric_def *def_of(struct metrics *m, int id);

/* reading */
static uint64_t slot_sum(const struct metrics *m, unsigned slot);
static double bits_double(uint64_t u);
static uint64_t double_bits(double v);

/* rendering */
static const char *fmt_double(char *dst, size_t cap, double v);
static int render_family(struct metrics *m, unsigned head, struct buf *out);
static int render_help(const struct metric_def *d, struct buf *out);
static int render_sample(struct metrics *m, const struct metric_def *d,
    struct buf *out);
static int render_histogram(struct metrics *m, const struct metric_def *d,
    struct buf *out);

static const char *const type_names[] = {
	[METRIC_COUNTER] = "counter",
	[METRIC_GAUGE] = "gauge",
	[METRIC_GAUGE_SET] = "gauge",
	[METRIC_HISTOGRAM] = "histogram",
	[METRIC_COUNTER_SET] = "counter",
};

struct metrics *
metrics_new(const char *ns, unsigned nshards)
{
	struct metrics *m;

	if (nshards == 0 || (ns != NULL && ns[0] != '\0' && !name_ok(ns)))
		return NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	if ((m->ns = strdup(ns ? ns : "")) == NULL ||
	    (m->shards = calloc(nshards, sizeof(*m->shards))) == NULL)
		goto fail;
	m->nshards = nshards;
	for (unsigned i = 0; i < nshards; i++) {
		m->shards[i] = aligned_alloc(CACHE_LINE,
		    sizeof(struct metrics_shard));
		if (m->shards[i] == NULL)
			goto fail;
		for (unsigned j = 0; j < METRICS_SLOTS; j++)
			atomic_init(&m->shards[i]->slot[j], 0);
		m->shards[i]->m = m;
	}
	return m;
fail:
	metrics_free(m);
	return NULL;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	for (unsigned i = 0; i < m->ndefs; i++) {
		free(m->defs[i].name);
		free(m->defs[i].help);
		free(m->defs[i].labels);
		free(m->defs[i].buckets);
	}
	for (unsigned i = 0; m->shards != NULL && i < m->nshards; i++)
		free(m->shards[i]);
	free(m->shards);
	free(m->ns);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

struct metrics_shard *
metrics_shard(struct metrics *m, unsigned i)
{
	if (m == NULL || i >= m->nshards)
		return NULL;
	return m->shards[i];
}

int
metrics_counter(struct metrics *m, const char *name, const char *help,
    const char *labels)
{
	return metric_register(m, name, help, labels, METRIC_COUNTER, NULL, 0);
}

int
metrics_gauge(struct metrics *m, const char *name, const char *help,
    const char *labels)
{
	return metric_register(m, name, help, labels, METRIC_GAUGE, NULL, 0);
}

int
metrics_gauge_set(struct metrics *m, const char *name, const char *help,
    const char *labels)
{
	return metric_register(m, name, help, labels, METRIC_GAUGE_SET, NULL,
	    0);
}

int
metrics_counter_set(struct metrics *m, const char *name, const char *help,
    const char *labels)
{
	return metric_register(m, name, help, labels, METRIC_COUNTER_SET, NULL,
	    0);
}

int
metrics_collector(struct metrics *m, metrics_collect_fn *fn, void *arg)
{
	int rc = -1;

	pthread_mutex_lock(&m->lock);
	if (m->ncollectors < METRICS_MAX_COLLECTORS) {
		m->collectors[m->ncollectors].fn = fn;
		m->collectors[m->ncollectors].arg = arg;
		m->ncollectors++;
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int
metrics_histogram(struct metrics *m, const char *name, const char *help,
    const char *labels, const double *buckets, unsigned nbuckets)
{
	if (nbuckets > METRICS_MAX_BUCKETS || (nbuckets > 0 && !buckets))
		return -1;
	for (unsigned i = 0; i < nbuckets; i++)
		if (!isfinite(buckets[i]) ||
		    (i > 0 && !(buckets[i] > buckets[i - 1])))
			return -1;
	return metric_register(m, name, help, labels, METRIC_HISTOGRAM, buckets,
	    nbuckets);
}

static bool
name_ok(const char *s)
{
	if (s == NULL ||
	    !(s[0] == '_' || s[0] == ':' || (s[0] >= 'a' && s[0] <= 'z') ||
		(s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (s++; *s; s++)
		if (!(*s == '_' || *s == ':' || (*s >= 'a' && *s <= 'z') ||
			(*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* The head of the family called name, or -1; *tail_r is its last def. */
static int
family_find(const struct metrics *m, const char *name, int *tail_r)
{
	for (unsigned i = 0; i < m->ndefs; i++) {
		if (!m->defs[i].family_head || strcmp(m->defs[i].name, name))
			continue;
		*tail_r = (int)i;
		while (m->defs[*tail_r].family_next != -1)
			*tail_r = m->defs[*tail_r].family_next;
		return (int)i;
	}
	return -1;
}

static int
metric_register(struct metrics *m, const char *name, const char *help,
    const char *labels, enum metric_type type, const double *buckets,
    unsigned nbuckets)
{
	unsigned need = type == METRIC_HISTOGRAM ? nbuckets + 2 : 1;
	char full[256];
	int head, tail = -1, id = -1, n;
	struct metric_def *d;

	if (m == NULL || !name_ok(name))
		return -1;
	n = snprintf(full, sizeof(full), "%s%s%s", m->ns, m->ns[0] ? "_" : "",
	    name);
	if (n < 0 || (size_t)n >= sizeof(full))
		return -1;
	if (labels == NULL)
		labels = "";
	pthread_mutex_lock(&m->lock);
	head = family_find(m, full, &tail);
	if (head != -1 && m->defs[head].type != type)
		goto out;
	for (int i = head; i != -1; i = m->defs[i].family_next) {
		if (strcmp(m->defs[i].labels, labels) == 0) {
			id = (int)m->defs[i].slot;
			goto out;
		}
	}
	if (m->ndefs == METRICS_MAX_DEFS || METRICS_SLOTS - m->nslots < need)
		goto out;
	d = &m->defs[m->ndefs];
	if (def_fill(d, full, help, labels, buckets, nbuckets) == -1)
		goto out;
	d->type = type;
	d->slot = m->nslots;
	d->family_next = -1;
	d->family_head = head == -1;
	if (tail != -1)
		m->defs[tail].family_next = (int)m->ndefs;
	for (unsigned i = 0; i < need; i++)
		m->slot_def[d->slot + i] = (int16_t)m->ndefs;
	m->ndefs++;
	/* Publishes the def and slot_def[] to lock-free readers. */
	atomic_store_explicit(&m->nslots, m->nslots + need,
	    memory_order_release);
	id = (int)d->slot;
out:
	pthread_mutex_unlock(&m->lock);
	return id;
}

static int
def_fill(struct metric_def *d, const char *full, const char *help,
    const char *labels, const double *buckets, unsigned nbuckets)
{
	memset(d, 0, sizeof(*d));
	d->name = strdup(full);
	d->help = strdup(help ? help : "");
	d->labels = strdup(labels);
	if (nbuckets > 0) {
		d->buckets = malloc(nbuckets * sizeof(double));
		if (d->buckets != NULL)
			memcpy(d->buckets, buckets, nbuckets * sizeof(double));
	}
	d->nbuckets = nbuckets;
	atomic_init(&d->set_bits, double_bits(0));
	if (d->name && d->help && d->labels && (nbuckets == 0 || d->buckets))
		return 0;
	free(d->name);
	free(d->help);
	free(d->labels);
	free(d->buckets);
	return -1;
}

static struct metric_def *
def_of(struct metrics *m, int id)
{
	if (m == NULL || id < 0 ||
	    (unsigned)id >=
		atomic_load_explicit(&m->nslots, memory_order_acquire))
		return NULL;
	return &m->defs[m->slot_def[id]];
}

void
metrics_add(struct metrics_shard *s, int id, uint64_t n)
{
	if (s == NULL || id < 0 || id >= METRICS_SLOTS)
		return;
	atomic_fetch_add_explicit(&s->slot[id], n, memory_order_relaxed);
}

void
metrics_gauge_add(struct metrics_shard *s, int id, int64_t delta)
{
	/* Unsigned wrap-around is exactly two's complement addition. */
	metrics_add(s, id, (uint64_t)delta);
}

void
metrics_observe(struct metrics_shard *s, int id, double v)
{
	const struct metric_def *d;
	_Atomic uint64_t *sum;
	unsigned b;

	if (s == NULL || (d = def_of(s->m, id)) == NULL ||
	    d->type != METRIC_HISTOGRAM)
		return;
	/* NaN compares false everywhere and lands in +Inf, as in Go. */
	for (b = 0; b < d->nbuckets && !(v <= d->buckets[b]); b++)
		;
	atomic_fetch_add_explicit(&s->slot[d->slot + b], 1,
	    memory_order_relaxed);
	sum = &s->slot[d->slot + d->nbuckets + 1];
	atomic_store_explicit(sum,
	    double_bits(
		bits_double(atomic_load_explicit(sum, memory_order_relaxed)) +
		v),
	    memory_order_relaxed);
}

void
metrics_set(struct metrics *m, int id, double v)
{
	struct metric_def *d = def_of(m, id);

	if (d == NULL ||
	    (d->type != METRIC_GAUGE_SET && d->type != METRIC_COUNTER_SET))
		return;
	atomic_store_explicit(&d->set_bits, double_bits(v),
	    memory_order_relaxed);
}

double
metrics_value(struct metrics *m, int id)
{
	const struct metric_def *d = def_of(m, id);
	uint64_t count = 0;

	if (d == NULL)
		return 0;
	switch (d->type) {
	case METRIC_COUNTER:
		return (double)slot_sum(m, d->slot);
	case METRIC_GAUGE:
		return (double)(int64_t)slot_sum(m, d->slot);
	case METRIC_GAUGE_SET:
	case METRIC_COUNTER_SET:
		return bits_double(
		    atomic_load_explicit(&d->set_bits, memory_order_relaxed));
	case METRIC_HISTOGRAM:
		for (unsigned b = 0; b <= d->nbuckets; b++)
			count += slot_sum(m, d->slot + b);
		return (double)count;
	}
	return 0;
}

static uint64_t
slot_sum(const struct metrics *m, unsigned slot)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < m->nshards; i++)
		sum += atomic_load_explicit(&m->shards[i]->slot[slot],
		    memory_order_relaxed);
	return sum;
}

static double
bits_double(uint64_t u)
{
	double v;

	memcpy(&v, &u, sizeof(v));
	return v;
}

static uint64_t
double_bits(double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	return u;
}

int
metrics_render(struct metrics *m, struct buf *out)
{
	int rc = 0;

	unsigned nc;

	if (m == NULL)
		return 0;
	/* Collectors set values without the lock (metrics_set takes none);
	 * the table itself is read under it. */
	pthread_mutex_lock(&m->lock);
	nc = m->ncollectors;
	pthread_mutex_unlock(&m->lock);
	for (unsigned i = 0; i < nc; i++)
		m->collectors[i].fn(m, m->collectors[i].arg);
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->ndefs && rc == 0; i++)
		if (m->defs[i].family_head)
			rc = render_family(m, i, out);
	pthread_mutex_unlock(&m->lock);
	if (rc == -1)
		errno = ENOMEM;
	return rc;
}

/*
 * Prometheus parses floats with Go's ParseFloat: integers print without an
 * exponent, other values in the shortest form that reads back exactly.
 */
static const char *
fmt_double(char *dst, size_t cap, double v)
{
	if (isnan(v))
		snprintf(dst, cap, "NaN");
	else if (isinf(v))
		snprintf(dst, cap, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		snprintf(dst, cap, "%.0f", v);
	else {
		snprintf(dst, cap, "%.15g", v);
		if (strtod(dst, NULL) != v)
			snprintf(dst, cap, "%.17g", v);
	}
	return dst;
}

static int
render_family(struct metrics *m, unsigned head, struct buf *out)
{
	const struct metric_def *d = &m->defs[head];

	if (render_help(d, out) == -1 ||
	    buf_printf(out, "# TYPE %s %s\n", d->name, type_names[d->type]))
		return -1;
	for (int i = (int)head; i != -1; i = m->defs[i].family_next) {
		d = &m->defs[i];
		if ((d->type == METRIC_HISTOGRAM ?
			    render_histogram(m, d, out) :
			    render_sample(m, d, out)) == -1)
			return -1;
	}
	return 0;
}

/* HELP text escapes backslash and newline, as the format requires. */
static int
render_help(const struct metric_def *d, struct buf *out)
{
	if (buf_printf(out, "# HELP %s ", d->name) == -1)
		return -1;
	for (const char *p = d->help; *p; p++) {
		const char *esc = *p == '\\' ? "\\\\" :
		    *p == '\n'		     ? "\\n" :
					       NULL;

		if (esc ? buf_append(out, esc, 2) : buf_append(out, p, 1))
			return -1;
	}
	return buf_append(out, "\n", 1);
}

static int
render_sample(struct metrics *m, const struct metric_def *d, struct buf *out)
{
	const char *open = d->labels[0] ? "{" : "", *close = open[0] ? "}" : "";
	char num[64];

	switch (d->type) {
	case METRIC_COUNTER:
		snprintf(num, sizeof(num), "%" PRIu64, slot_sum(m, d->slot));
		break;
	case METRIC_GAUGE:
		snprintf(num, sizeof(num), "%" PRId64,
		    (int64_t)slot_sum(m, d->slot));
		break;
	default:
		fmt_double(num, sizeof(num), metrics_value(m, (int)d->slot));
		break;
	}
	return buf_printf(out, "%s%s%s%s %s\n", d->name, open, d->labels, close,
	    num);
}

static int
render_histogram(struct metrics *m, const struct metric_def *d, struct buf *out)
{
	const char *sep = d->labels[0] ? "," : "";
	const char *open = d->labels[0] ? "{" : "", *close = open[0] ? "}" : "";
	uint64_t cum = 0, sum_bits;
	double sum = 0;
	char le[64], num[64];

	for (unsigned b = 0; b <= d->nbuckets; b++) {
		cum += slot_sum(m, d->slot + b);
		if (b < d->nbuckets)
			fmt_double(le, sizeof(le), d->buckets[b]);
		else
			snprintf(le, sizeof(le), "+Inf");
		if (buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n",
			d->name, d->labels, sep, le, cum) == -1)
			return -1;
	}
	/* Shards' sums are added as doubles, not as bit patterns. */
	for (unsigned i = 0; i < m->nshards; i++) {
		sum_bits = atomic_load_explicit(
		    &m->shards[i]->slot[d->slot + d->nbuckets + 1],
		    memory_order_relaxed);
		sum += bits_double(sum_bits);
	}
	fmt_double(num, sizeof(num), sum);
	if (buf_printf(out, "%s_sum%s%s%s %s\n", d->name, open, d->labels,
		close, num) == -1)
		return -1;
	return buf_printf(out, "%s_count%s%s%s %" PRIu64 "\n", d->name, open,
	    d->labels, close, cum);
}
