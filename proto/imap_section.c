/*
 * imap_section.c - FETCH section specs with partial ranges (RFC 3501
 * section, RFC 3516 BINARY): "BODY.PEEK[1.2.HEADER.FIELDS (A B)]<0.10>"
 * into a struct imap_section, and the header field names of a FIELDS list
 * one at a time.
 *
 * Relies on: the atom from imap_parse.c (7-bit, no CR/LF; the tokenizer
 * already took the bracketed part, quotes and spaces included, as one
 * argument). Works on one (ptr, len) slice, writes only into the caller's
 * structure, which points into that slice, and never allocates; every
 * number is range checked before it is stored.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/imap_parse_private.h"
#include "proto/imap_section.h"

static bool word_at(const char *s, size_t len, size_t pos, const char *word);
static int check_field_list(const char *s, size_t len);
static size_t find_close_bracket(const char *s, size_t len, size_t pos);

/* Whether word (upper case) stands at s[pos], in any ASCII case. */
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
		    !imap_parse_nz_number(s, close, &pos,
			&sec->part[sec->nparts], false))
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
	if (!imap_parse_nz_number(s, len, &pos, &sec->start, true) ||
	    pos >= len || s[pos] != '.')
		goto bad;
	pos++;
	if (!imap_parse_nz_number(s, len, &pos, &sec->count, false) ||
	    pos + 1 != len || s[pos] != '>')
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
