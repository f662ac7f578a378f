/*
 * mime_walk_driver.h - runs proto/mime_walk.c over a message fed in given
 * pieces and records what it reports, for its unit test and its fuzz
 * target. mw_run() feeds each piece from an exactly-sized heap copy (a
 * read past it is an ASan report) and checks the contract of every
 * report: offsets ordered and inside the input, leaves in stream order,
 * not overlapping, names NUL-terminated at their length. A broken contract
 * aborts: libFuzzer reports it, cmocka fails the test.
 */
#ifndef RG_TESTS_MIME_WALK_DRIVER_H
#define RG_TESTS_MIME_WALK_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime_walk.h"

#define MW_MAX_PARTS 64

struct mw_result {
	enum mime_walk_status status;
	unsigned n;	/* reports seen */
	unsigned kept;	/* of which recorded in parts[] */
	uint64_t total; /* input length, for the checks */
	struct mime_walk_part parts[MW_MAX_PARTS];
};

static void
mw_check(bool ok)
{
	if (!ok)
		abort();
}

static int
mw_record(void *ctx, const struct mime_walk_part *p)
{
	struct mw_result *r = ctx;

	mw_check(p->hdr_off <= p->body_off && p->body_off <= p->end_off);
	mw_check(p->end_off <= r->total);
	mw_check(p->index == r->n);
	if (r->kept > 0) {
		const struct mime_walk_part *q = &r->parts[r->kept - 1];

		/* a broken multipart's leaf may be reported after its
		 * would-be children never came; leaves never overlap */
		mw_check(p->hdr_off >= q->end_off || p->end_off <= q->hdr_off ||
		    p->broken || q->broken);
	}
	mw_check(p->nnames <= MIME_WALK_NAMES);
	for (unsigned k = 0; k < p->nnames; k++) {
		mw_check(p->names[k].len > 0 &&
		    p->names[k].len < MIME_WALK_NAME_MAX);
		mw_check(p->names[k].s[p->names[k].len] == '\0');
	}
	mw_check(memchr(p->type, '\0', sizeof(p->type)) != NULL);
	r->n++;
	if (r->kept < MW_MAX_PARTS)
		r->parts[r->kept++] = *p;
	return 0;
}

/*
 * Walk data[0..len) with lim, fed in pieces: cuts[0..ncuts) are
 * increasing offsets where a piece ends (any out of range are skipped).
 */
static void
mw_run(const char *data, size_t len, const struct mime_walk_limits *lim,
    const size_t *cuts, size_t ncuts, struct mw_result *r)
{
	struct mime_walk *w;
	size_t pos = 0;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	r->total = len;
	w = mime_walk_new(lim, mw_record, r);
	mw_check(w != NULL);
	for (size_t c = 0; c <= ncuts && rc == 0; c++) {
		size_t end = c < ncuts ? cuts[c] : len;
		char *copy;

		if (end < pos || end > len)
			continue;
		copy = malloc(end - pos + 1);
		mw_check(copy != NULL);
		memcpy(copy, data + pos, end - pos);
		rc = mime_walk_feed(w, copy, end - pos);
		free(copy);
		pos = end;
	}
	if (rc == 0)
		rc = mime_walk_finish(w);
	r->status = mime_walk_status(w);
	mw_check((rc == 0) == (r->status == MIME_WALK_OK));
	mw_check(mime_walk_leaves(w) == r->n);
	mime_walk_free(&w);
	mw_check(w == NULL);
}

/* Two results agree: same status, same reports in the same order. */
static bool
mw_same(const struct mw_result *a, const struct mw_result *b)
{
	if (a->status != b->status || a->n != b->n || a->kept != b->kept)
		return false;
	for (unsigned k = 0; k < a->kept; k++) {
		const struct mime_walk_part *p = &a->parts[k],
					    *q = &b->parts[k];

		if (p->hdr_off != q->hdr_off || p->body_off != q->body_off ||
		    p->end_off != q->end_off || p->depth != q->depth ||
		    p->broken != q->broken || p->in_message != q->in_message ||
		    strcmp(p->type, q->type) != 0 ||
		    strcmp(p->disposition, q->disposition) != 0 ||
		    p->nnames != q->nnames)
			return false;
		for (unsigned i = 0; i < p->nnames; i++) {
			if (p->names[i].len != q->names[i].len ||
			    memcmp(p->names[i].s, q->names[i].s,
				p->names[i].len) != 0)
				return false;
		}
	}
	return true;
}

#endif
