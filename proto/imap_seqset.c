/*
 * imap_seqset.c - the argument grammars command handlers parse after the
 * tokenizer: sequence sets (RFC 9051 sequence-set, "$" of RFC 5182) and
 * FETCH section specs with partial ranges (RFC 3501 section, RFC 3516
 * BINARY).
 *
 * Relies on: atoms from imap_parse.c (7-bit, no CR/LF). Both parsers work
 * on one (ptr, len) slice, write only into the caller's structures and
 * never allocate; every number is range checked before it is stored.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/imap_parse.h"

static int seq_number(const char *s, size_t len, size_t *pos, uint32_t *n_r);
static int cmp_range(const void *a, const void *b);
static bool nz_number(const char *s, size_t len, size_t *pos, uint32_t *n_r,
    bool zero_ok);
static bool word_at(const char *s, size_t len, size_t pos, const char *word);
static int check_field_list(const char *s, size_t len);
static size_t find_close_bracket(const char *s, size_t len, size_t pos);

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
	return nz_number(s, len, pos, n_r, false) ? 0 : -1;
}

/* 1*DIGIT without leading zeros, at most 2^32-1; "0" only if zero_ok. */
static bool
nz_number(const char *s, size_t len, size_t *pos, uint32_t *n_r, bool zero_ok)
{
	uint64_t n = 0;
	size_t start = *pos, k = *pos;

	while (k < len && s[k] >= '0' && s[k] <= '9') {
		n = n * 10 + (uint64_t)(s[k] - '0');
		if (n > UINT32_MAX)
			return false;
		k++;
	}
	if (k == start || (s[start] == '0' && (k - start > 1 || !zero_ok)))
		return false;
	*pos = k;
	*n_r = (uint32_t)n;
	return true;
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

static bool
word_at(const char *s, size_t len, size_t pos, const char *word)
{
	size_t n = strlen(word);

	if (len - pos < n)
		return false;
	for (size_t k = 0; k < n; k++) {
		char c = s[pos + k];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		if (c != word[k])
			return false;
	}
	return true;
}

/* The ']' closing the section opened at s[pos] == '[', skipping quotes. */
static size_t
find_close_bracket(const char *s, size_t len, size_t pos)
{
	for (size_t k = pos + 1; k < len; k++) {
		if (s[k] == ']')
			return k;
		if (s[k] != '"')
			continue;
		for (k++; k < len && s[k] != '"'; k++) {
			if (s[k] == '\\')
				k++;
		}
	}
	return 0;
}

/* "(" header-fld-name *(SP header-fld-name) ")", names atoms or quoted. */
static int
check_field_list(const char *s, size_t len)
{
	size_t k = 1;

	if (len < 3 || s[0] != '(' || s[len - 1] != ')')
		return -1;
	len--;
	for (;;) {
		size_t start = k;

		if (k < len && s[k] == '"') {
			for (k++; k < len && s[k] != '"'; k++) {
				if (s[k] == '\\')
					k++;
			}
			if (k >= len)
				return -1;
			k++;
		} else {
			while (k < len && s[k] > 0x20 && s[k] < 0x7f &&
			    strchr("(){%*\"\\", s[k]) == NULL)
				k++;
		}
		if (k == start)
			return -1;
		if (k == len)
			return 0;
		if (s[k] != ' ')
			return -1;
		k++;
	}
}

int
imap_section_parse(const char *s, size_t len, struct imap_section *sec,
    const char **error_r)
{
	static const struct {
		const char *name;
		enum imap_section_att att;
		bool peek;
	} atts[] = {
		{ "BODY", IMAP_ATT_BODY, false },
		{ "BODY.PEEK", IMAP_ATT_BODY, true },
		{ "BINARY", IMAP_ATT_BINARY, false },
		{ "BINARY.PEEK", IMAP_ATT_BINARY, true },
		{ "BINARY.SIZE", IMAP_ATT_BINARY_SIZE, false },
	};
	const char *lb = memchr(s, '[', len);
	size_t open, close, pos, k;

	memset(sec, 0, sizeof(*sec));
	if (lb == NULL)
		return 1;
	open = (size_t)(lb - s);
	for (k = 0; k < sizeof(atts) / sizeof(atts[0]); k++) {
		if (strlen(atts[k].name) == open &&
		    word_at(s, len, 0, atts[k].name))
			break;
	}
	if (k == sizeof(atts) / sizeof(atts[0]))
		return 1;
	sec->att = atts[k].att;
	sec->peek = atts[k].peek;
	if ((close = find_close_bracket(s, len, open)) == 0)
		goto bad;
	sec->spec = s + open + 1;
	sec->spec_len = close - open - 1;

	/* section-part: nz-number *("." nz-number) */
	pos = open + 1;
	while (pos < close && s[pos] >= '0' && s[pos] <= '9') {
		if (sec->nparts == IMAP_SECTION_MAX_PARTS ||
		    !nz_number(s, close, &pos, &sec->part[sec->nparts], false))
			goto bad;
		sec->nparts++;
		if (pos == close)
			break;
		if (s[pos] != '.' || pos + 1 == close)
			goto bad;
		pos++;
	}
	sec->kind = IMAP_SECT_ALL;
	if (pos < close && sec->att != IMAP_ATT_BODY)
		goto bad;
	if (pos == close) {
		/* nothing more */
	} else if (word_at(s, close, pos, "HEADER.FIELDS.NOT ")) {
		sec->kind = IMAP_SECT_FIELDS_NOT;
		pos += strlen("HEADER.FIELDS.NOT ");
	} else if (word_at(s, close, pos, "HEADER.FIELDS ")) {
		sec->kind = IMAP_SECT_FIELDS;
		pos += strlen("HEADER.FIELDS ");
	} else if (close - pos == 6 && word_at(s, close, pos, "HEADER")) {
		sec->kind = IMAP_SECT_HEADER;
	} else if (close - pos == 4 && word_at(s, close, pos, "TEXT")) {
		sec->kind = IMAP_SECT_TEXT;
	} else if (close - pos == 4 && word_at(s, close, pos, "MIME") &&
	    sec->nparts > 0) {
		sec->kind = IMAP_SECT_MIME;
	} else {
		goto bad;
	}
	if (sec->kind == IMAP_SECT_FIELDS ||
	    sec->kind == IMAP_SECT_FIELDS_NOT) {
		if (check_field_list(s + pos, close - pos) == -1)
			goto bad;
		sec->fields = s + pos + 1;
		sec->fields_len = close - pos - 2;
	}

	/* partial = "<" number "." nz-number ">" */
	pos = close + 1;
	if (pos == len)
		return 0;
	if (s[pos] != '<' || sec->att == IMAP_ATT_BINARY_SIZE)
		goto bad;
	pos++;
	if (!nz_number(s, len, &pos, &sec->start, true) || pos >= len ||
	    s[pos] != '.')
		goto bad;
	pos++;
	if (!nz_number(s, len, &pos, &sec->count, false) || pos + 1 != len ||
	    s[pos] != '>')
		goto bad;
	sec->partial = true;
	return 0;
bad:
	*error_r = "Invalid section";
	return -1;
}

int
imap_section_field_next(const struct imap_section *sec, size_t *pos,
    const char **name_r, size_t *len_r)
{
	const char *s = sec->fields;
	size_t k = *pos, len = sec->fields_len, start;

	while (k < len && s[k] == ' ')
		k++;
	if (k >= len)
		return 0;
	if (s[k] == '"') {
		start = ++k;
		while (k < len && s[k] != '"')
			k += s[k] == '\\' ? 2 : 1;
		if (k > len)
			k = len;
		*name_r = s + start;
		*len_r = k - start;
		*pos = k < len ? k + 1 : len;
		return 1;
	}
	start = k;
	while (k < len && s[k] != ' ')
		k++;
	*name_r = s + start;
	*len_r = k - start;
	*pos = k;
	return 1;
}
