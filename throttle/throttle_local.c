/*
 * throttle_local.c - the local counter table: string keys to integers
 * with an expiry, what Redis holds for the throttle, kept per instance so
 * decisions go on when Redis is slow or down.
 *
 * A chained hash table over FNV-1a with a fixed bucket count (a power of
 * two near max), entries allocated one by one. Expired entries read as
 * absent and are reused in place; thr_local_sweep() drops them a few at a
 * time (the caller runs it from a timer), so memory follows the sources
 * seen in the last window, bounded by max.
 *
 * Pure: no clock (now is an argument), no locks (the caller's mutex), no
 * I/O. Must never grow past max entries, whatever keys a peer makes us
 * count.
 */
#include <stdlib.h>
#include <string.h>

#include "throttle/throttle_private.h"

struct thr_entry {
	struct thr_entry *next;
	char *str; /* thr_local_set_str()'s value, or NULL */
	int64_t value;
	uint64_t expires; /* now > expires: gone */
	char key[];
};

struct thr_local {
	struct thr_entry **b;
	size_t nb; /* power of two */
	size_t n, max;
	size_t sweep_at; /* the bucket the next sweep starts at */
};

static uint64_t hash(const char *key);
static struct thr_entry **slot(struct thr_local *t, const char *key);
static struct thr_entry *live(struct thr_local *t, const char *key,
    uint64_t now);

struct thr_local *
thr_local_new(size_t max)
{
	struct thr_local *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->max = max > 0 ? max : 1;
	for (t->nb = 64; t->nb < t->max && t->nb < ((size_t)1 << 24);)
		t->nb <<= 1;
	if ((t->b = calloc(t->nb, sizeof(*t->b))) == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void
thr_local_free(struct thr_local **tp)
{
	struct thr_local *t = *tp;

	*tp = NULL;
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nb; i++)
		for (struct thr_entry *e = t->b[i], *nx; e; e = nx) {
			nx = e->next;
			free(e->str);
			free(e);
		}
	free(t->b);
	free(t);
}

static uint64_t
hash(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

/* Where key is or would be chained. */
static struct thr_entry **
slot(struct thr_local *t, const char *key)
{
	struct thr_entry **p = &t->b[hash(key) & (t->nb - 1)];

	while (*p != NULL && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

static struct thr_entry *
live(struct thr_local *t, const char *key, uint64_t now)
{
	struct thr_entry *e = *slot(t, key);

	return e != NULL && now <= e->expires ? e : NULL;
}

int64_t
thr_local_get(struct thr_local *t, const char *key, uint64_t now)
{
	struct thr_entry *e = live(t, key, now);

	return e ? e->value : 0;
}

int64_t
thr_local_add(struct thr_local *t, const char *key, int64_t by, uint64_t ttl,
    bool refresh, uint64_t now)
{
	struct thr_entry **p = slot(t, key), *e = *p;
	size_t klen;

	if (e != NULL && now > e->expires) {
		e->value = 0; /* expired: starts again in place */
		e->expires = now + ttl;
	} else if (e == NULL) {
		if (t->n >= t->max)
			return by;
		klen = strlen(key) + 1;
		if ((e = malloc(sizeof(*e) + klen)) == NULL)
			return by;
		memcpy(e->key, key, klen);
		e->next = NULL;
		e->str = NULL;
		e->value = 0;
		e->expires = now + ttl;
		*p = e;
		t->n++;
	} else if (refresh) {
		e->expires = now + ttl;
	}
	e->value += by;
	return e->value;
}

void
thr_local_set_nx(struct thr_local *t, const char *key, int64_t v, uint64_t ttl,
    uint64_t now)
{
	if (live(t, key, now) != NULL)
		return;
	thr_local_add(t, key, v, ttl, true, now);
	/* an expired entry restarted at 0 by add: make it exactly v */
	if (live(t, key, now) != NULL)
		live(t, key, now)->value = v;
}

void
thr_local_del(struct thr_local *t, const char *key)
{
	struct thr_entry **p = slot(t, key), *e = *p;

	if (e == NULL)
		return;
	*p = e->next;
	free(e->str);
	free(e);
	t->n--;
}

void
thr_local_set_str(struct thr_local *t, const char *key, const char *str,
    uint64_t ttl, uint64_t now)
{
	struct thr_entry *e;
	char *copy = strdup(str);

	if (copy == NULL)
		return;
	thr_local_del(t, key);
	thr_local_add(t, key, 1, ttl, true, now);
	if ((e = live(t, key, now)) == NULL) {
		free(copy);
		return;
	}
	e->str = copy;
}

const char *
thr_local_get_str(struct thr_local *t, const char *key, uint64_t now)
{
	struct thr_entry *e = live(t, key, now);

	return e != NULL ? e->str : NULL;
}

size_t
thr_local_count(const struct thr_local *t)
{
	return t->n;
}

void
thr_local_sweep(struct thr_local *t, uint64_t now, size_t budget)
{
	/* buckets looked at per call, so one sweep is bounded too */
	size_t look = budget * 4 + 16;

	for (; look > 0 && budget > 0; look--) {
		struct thr_entry **p = &t->b[t->sweep_at];

		while (*p != NULL && budget > 0) {
			struct thr_entry *e = *p;

			if (now > e->expires) {
				*p = e->next;
				free(e->str);
				free(e);
				t->n--;
				budget--;
			} else {
				p = &e->next;
			}
		}
		t->sweep_at = (t->sweep_at + 1) & (t->nb - 1);
	}
}

void
thr_local_each(struct thr_local *t, uint64_t now, thr_local_visit_fn *fn,
    void *arg)
{
	for (size_t i = 0; i < t->nb; i++)
		for (struct thr_entry *e = t->b[i]; e; e = e->next)
			if (now <= e->expires)
				fn(arg, e->key, e->value, e->expires);
}
