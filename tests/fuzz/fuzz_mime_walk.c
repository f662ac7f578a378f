/*
 * fuzz_mime_walk.c - the streaming MIME walk (proto/mime_walk.c) under
 * arbitrary messages.
 *
 * The first byte picks the limits (small ones, so depth, parts, header
 * and boundary limits are all reached) and the next two seed the split
 * points; the rest is the message. It is walked in one piece, one byte at
 * a time and in pseudo-random pieces: every run must report the same
 * leaves (offsets, types, names) and end with the same status, and the
 * driver checks each report's contract (tests/unit/mime_walk_driver.h).
 * With the default limits, a walk that ends OK must find the leaves
 * proto/mime.c's parser finds (what IMAP shows): same ranges, same types.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime.h"
#include "tests/unit/mime_walk_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CROSS_PARTS 4096

static bool
type_is(const struct mime_part *p, const char *type)
{
	size_t tl = p->type.len, sl = p->subtype.len;

	if (strlen(type) != tl + 1 + sl || type[tl] != '/')
		return false;
	for (size_t k = 0; k < tl; k++)
		if ((p->type.ptr[k] | 0x20) != (type[k] | 0x20))
			return false;
	for (size_t k = 0; k < sl; k++)
		if ((p->subtype.ptr[k] | 0x20) != (type[tl + 1 + k] | 0x20))
			return false;
	return true;
}

/* Leaves of mime_parse() in stream order against the walk's. */
static void
cross_check(const char *msg, size_t len, const struct mw_result *r)
{
	static struct mime_part parts[CROSS_PARTS];
	struct mime_limits lim = { 20, 1000, 64 * 1024 };
	struct mime_message m;
	unsigned k = 0;

	if (r->n > MW_MAX_PARTS ||
	    mime_parse(&m, msg, len, parts, CROSS_PARTS, &lim) == -1 ||
	    m.limited)
		return;
	/* children follow their parent in the array but leaves of different
	 * parents interleave: match each walk leaf by its offset */
	for (unsigned i = 0; i < m.nparts; i++) {
		const struct mime_part *p = &parts[i];
		bool found = false;

		if (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))
			continue;
		k++;
		for (unsigned j = 0; j < r->kept && !found; j++) {
			const struct mime_walk_part *q = &r->parts[j];

			if (q->hdr_off != p->off)
				continue;
			found = true;
			mw_check(q->end_off == p->off + p->len);
			mw_check(q->body_off == p->off + p->hdr_len);
			mw_check(
			    q->broken == ((p->flags & MIME_PART_BROKEN) != 0));
			/* a type cut to fit is not compared */
			mw_check(q->broken ||
			    strlen(q->type) == MIME_WALK_TYPE_MAX - 1 ||
			    type_is(p, q->type));
		}
		mw_check(found);
	}
	mw_check(k == r->n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mw_result one, other;
	struct mime_walk_limits lim = { 0 };
	const char *msg;
	size_t len, *cuts, n = 0, pos = 0;
	unsigned seed;

	if (size < 3)
		return 0;
	if (data[0] & 1) {
		lim.max_depth = 1 + (data[0] >> 1) % 6;
		lim.max_parts = 2 + (data[0] >> 3) % 12;
		lim.max_header = 64 + (size_t)(data[0] >> 4) * 64;
		lim.max_boundary = 4 + (data[0] >> 2) % 40;
	}
	seed = (unsigned)data[1] << 8 | data[2];
	msg = (const char *)data + 3;
	len = size - 3;
	cuts = calloc(len + 1, sizeof(*cuts));
	if (cuts == NULL)
		return 0;
	mw_run(msg, len, &lim, NULL, 0, &one);
	if (!(data[0] & 1) && one.status == MIME_WALK_OK)
		cross_check(msg, len, &one);
	while (pos < len) {
		seed = seed * 1103515245u + 12345u;
		pos += 1 + (seed >> 16) % 23;
		if (pos < len)
			cuts[n++] = pos;
	}
	mw_run(msg, len, &lim, cuts, n, &other);
	mw_check(mw_same(&one, &other));
	if (len <= 4096) {
		for (size_t k = 0; k < len; k++)
			cuts[k] = k + 1;
		mw_run(msg, len, &lim, cuts, len, &other);
		mw_check(mw_same(&one, &other));
	}
	free(cuts);
	return 0;
}
