/*
 * imap_seqset.c - sequence sets (RFC 9051 sequence-set, "$" of RFC 5182),
 * parsed from an atom after the tokenizer, matched against a number and
 * resolved (sorted, merged) against the largest number in use.
 *
 * Relies on: atoms from imap_parse.c (7-bit, no CR/LF). Works on one
 * (ptr, len) slice, writes only into the caller's structure and never
 * allocates; every number is range checked before it is stored.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/imap_parse.h"
#include "proto/imap_parse_private.h"

static int seq_number(const char *s, size_t len, size_t *pos, uint32_t *n_r);
static int cmp_range(const void *a, const void *b);

int
imap_seqset_parse(struct imap_seqset *set, const char *s, size_t len,
    const char **error_r)
{
	size_t pos = 0;

	set->count = 0;
	set->saved = false;
	set->resolved = false;
	if (len == 1 && s[0] == '$') {
		set->saved = true;
		return 0;
	}
	for (;;) {
		struct imap_range r;

		if (seq_number(s, len, &pos, &r.lo) == -1)
			goto bad;
		r.hi = r.lo;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (seq_number(s, len, &pos, &r.hi) == -1)
				goto bad;
		}
		if (set->count == set->cap) {
			*error_r = "Sequence set too long";
			return -1;
		}
		set->ranges[set->count++] = r;
		if (pos == len)
			return 0;
		if (s[pos] != ',')
			goto bad;
		pos++;
	}
bad:
	*error_r = "Invalid sequence set";
	return -1;
}

/* seq-number = nz-number / "*" */
static int
seq_number(const char *s, size_t len, size_t *pos, uint32_t *n_r)
{
	if (*pos < len && s[*pos] == '*') {
		(*pos)++;
		*n_r = IMAP_SEQ_STAR;
		return 0;
	}
	return imap_parse_nz_number(s, len, pos, n_r, false) ? 0 : -1;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
	if (set->resolved) {
		size_t lo = 0, hi = set->count;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (n < set->ranges[mid].lo)
				hi = mid;
			else if (n > set->ranges[mid].hi)
				lo = mid + 1;
			else
				return true;
		}
		return false;
	}
	for (size_t k = 0; k < set->count; k++) {
		uint32_t a = set->ranges[k].lo, b = set->ranges[k].hi, t;

		if (a == IMAP_SEQ_STAR)
			a = star;
		if (b == IMAP_SEQ_STAR)
			b = star;
		if (a > b) {
			t = a;
			a = b;
			b = t;
		}
		if (n >= a && n <= b && n != 0)
			return true;
	}
	return false;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void
imap_seqset_resolve(struct imap_seqset *set, uint32_t star)
{
	size_t k, out = 0;

	if (set->saved || set->resolved)
		return;
	for (k = 0; k < set->count; k++) {
		struct imap_range r = set->ranges[k];
		uint32_t t;

		if (r.lo == IMAP_SEQ_STAR)
			r.lo = star;
		if (r.hi == IMAP_SEQ_STAR)
			r.hi = star;
		if (r.lo > r.hi) {
			t = r.lo;
			r.lo = r.hi;
			r.hi = t;
		}
		/* Only an empty mailbox makes 0 appear: it matches nothing. */
		if (r.hi == 0)
			continue;
		if (r.lo == 0)
			r.lo = 1;
		set->ranges[out++] = r;
	}
	set->count = out;
	if (out > 1)
		qsort(set->ranges, out, sizeof(set->ranges[0]), cmp_range);
	out = 0;
	for (k = 0; k < set->count; k++) {
		struct imap_range *last = out > 0 ? &set->ranges[out - 1] :
						    NULL;

		if (last != NULL &&
		    (last->hi == UINT32_MAX ||
			set->ranges[k].lo <= last->hi + 1)) {
			if (set->ranges[k].hi > last->hi)
				last->hi = set->ranges[k].hi;
			continue;
		}
		set->ranges[out++] = set->ranges[k];
	}
	set->count = out;
	set->resolved = true;
}
