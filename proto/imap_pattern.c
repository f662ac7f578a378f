/*
 * imap_pattern.c - LIST/LSUB wildcard matching (see imap_pattern.h).
 *
 * The compiled pattern is a shift-and automaton: bit j of the state says
 * "the first j pattern bytes match what was read so far". Reading a byte
 * keeps the bits of '*' positions (and of '%' positions unless the byte is
 * the separator) and moves each bit whose pattern byte equals the input
 * one position on. A wildcard matches the empty string too, so a set bit
 * on a wildcard also sets the next bit; runs of wildcards are folded into
 * one at compile time ("%*" is "*", "%%" is "%"), so that is one step.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap_pattern.h"

struct imap_pattern {
	size_t len;   /* compiled pattern bytes; the accept bit is len */
	size_t words; /* state words: len / 64 + 1 */
	char sep;
	uint8_t cls[256]; /* byte -> row of eq (0: a byte not in the pattern) */
	uint64_t *star;	  /* '*' positions */
	uint64_t *wild;	  /* '*' and '%' positions */
	uint64_t *eq;	  /* rows of positions whose byte is that class's */
	uint64_t *state;
	uint64_t *next;
};

static size_t fold(const char *pat, size_t len, char *out);
static void set_bit(uint64_t *v, size_t j);
static void close_wild(const struct imap_pattern *p, uint64_t *v);

/* The pattern with each run of wildcards as one; returns its length. */
static size_t
fold(const char *pat, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len;) {
		if (pat[i] != '*' && pat[i] != '%') {
			out[n++] = pat[i++];
			continue;
		}
		out[n] = '%';
		for (; i < len && (pat[i] == '*' || pat[i] == '%'); i++)
			if (pat[i] == '*')
				out[n] = '*';
		n++;
	}
	return n;
}

static void
set_bit(uint64_t *v, size_t j)
{
	v[j / 64] |= (uint64_t)1 << (j % 64);
}

/* A live wildcard position also makes the position after it live. */
static void
close_wild(const struct imap_pattern *p, uint64_t *v)
{
	uint64_t carry = 0;

	for (size_t w = 0; w < p->words; w++) {
		uint64_t x = v[w] & p->wild[w];

		v[w] |= (x << 1) | carry;
		carry = x >> 63;
	}
}

struct imap_pattern *
imap_pattern_new(const char *pat, size_t len, char sep)
{
	struct imap_pattern *p;
	char folded[IMAP_PATTERN_MAX];
	size_t n, words, rows = 1;
	uint8_t cls[256] = { 0 };

	if (len > IMAP_PATTERN_MAX)
		return NULL;
	n = fold(pat, len, folded);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)folded[i];

		if (folded[i] != '*' && folded[i] != '%' && cls[c] == 0)
			cls[c] = (uint8_t)rows++;
	}
	/* rows <= 256: at most 255 distinct literal bytes, plus row 0 */
	words = n / 64 + 1;
	p = calloc(1, sizeof(*p) + (rows + 4) * words * sizeof(uint64_t));
	if (p == NULL)
		return NULL;
	p->len = n;
	p->words = words;
	p->sep = sep;
	memcpy(p->cls, cls, sizeof(cls));
	p->star = (uint64_t *)(p + 1);
	p->wild = p->star + words;
	p->state = p->wild + words;
	p->next = p->state + words;
	p->eq = p->next + words;
	for (size_t j = 0; j < n; j++) {
		if (folded[j] == '*') {
			set_bit(p->star, j);
			set_bit(p->wild, j);
		} else if (folded[j] == '%') {
			set_bit(p->wild, j);
		} else {
			set_bit(p->eq + p->cls[(uint8_t)folded[j]] * words, j);
		}
	}
	return p;
}

bool
imap_pattern_match(struct imap_pattern *p, const char *name, size_t len)
{
	uint64_t *s = p->state, *t = p->next, *swap;
	const size_t words = p->words;

	memset(s, 0, words * sizeof(*s));
	s[0] = 1;
	close_wild(p, s);
	for (size_t i = 0; i < len; i++) {
		const uint64_t *eq = p->eq + p->cls[(uint8_t)name[i]] * words;
		const uint64_t *stay = name[i] == p->sep ? p->star : p->wild;
		uint64_t carry = 0, live = 0;

		for (size_t w = 0; w < words; w++) {
			uint64_t moved = s[w] & eq[w];

			t[w] = (s[w] & stay[w]) | (moved << 1) | carry;
			carry = moved >> 63;
		}
		close_wild(p, t);
		for (size_t w = 0; w < words; w++)
			live |= t[w];
		if (live == 0)
			return false;
		swap = s;
		s = t;
		t = swap;
	}
	return (s[p->len / 64] >> (p->len % 64)) & 1;
}

void
imap_pattern_free(struct imap_pattern *p)
{
	free(p);
}
