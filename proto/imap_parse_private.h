/*
 * imap_parse_private.h - what the files of the IMAP parser share beyond
 * proto/imap_parse.h: the number scanner of the argument grammars,
 * imap_seqset.c (sequence sets) and imap_section.c (FETCH sections).
 * Not for other modules.
 *
 * Every position is an offset into s, and nothing reads at or past len.
 */
#ifndef RG_PROTO_IMAP_PARSE_PRIVATE_H
#define RG_PROTO_IMAP_PARSE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1*DIGIT without leading zeros, at most 2^32-1; "0" only if zero_ok. */
static inline bool
imap_parse_nz_number(const char *s, size_t len, size_t *pos, uint32_t *n_r,
    bool zero_ok)
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

#endif
