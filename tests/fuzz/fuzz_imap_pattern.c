/*
 * fuzz_imap_pattern.c - LIST wildcard matching (proto/imap_pattern.c).
 *
 * Input: pattern, a newline, name. Properties checked, not just crashes:
 * on inputs short enough for it, the compiled matcher agrees with the
 * backtracking definition; a pattern without wildcards matches exactly
 * the name equal to it; "*" matches everything.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap_pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
naive(const char *pat, const char *pend, const char *name, const char *nend)
{
	for (; pat < pend; pat++, name++) {
		if (*pat == '*' || *pat == '%') {
			for (const char *n = name;; n++) {
				if (naive(pat + 1, pend, n, nend))
					return true;
				if (n == nend || (*pat == '%' && *n == '/'))
					return false;
			}
		}
		if (name == nend || *pat != *name)
			return false;
	}
	return name == nend;
}

static size_t
wildcards(const char *s, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += s[i] == '*' || s[i] == '%';
	return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *nl = memchr(in, '\n', size);
	const char *name = nl ? nl + 1 : in + size;
	size_t plen = nl ? (size_t)(nl - in) : size;
	size_t nlen = (size_t)(in + size - name);
	struct imap_pattern *p, *all;
	bool m;

	if ((p = imap_pattern_new(in, plen, '/')) == NULL) {
		if (plen <= IMAP_PATTERN_MAX)
			abort(); /* only too long may fail (or no memory) */
		return 0;
	}
	m = imap_pattern_match(p, name, nlen);
	if (imap_pattern_match(p, name, nlen) != m)
		abort(); /* no state left over between calls */
	if (wildcards(in, plen) == 0 &&
	    m != (plen == nlen && memcmp(in, name, plen) == 0))
		abort();
	if (wildcards(in, plen) <= 6 && plen <= 64 && nlen <= 64 &&
	    m != naive(in, in + plen, name, name + nlen))
		abort();
	imap_pattern_free(p);
	if ((all = imap_pattern_new("*", 1, '/')) == NULL)
		return 0;
	if (!imap_pattern_match(all, name, nlen))
		abort();
	imap_pattern_free(all);
	return 0;
}
