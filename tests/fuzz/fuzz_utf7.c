/*
 * fuzz_utf7.c - modified UTF-7 both ways. Canonical means reversible:
 * whatever decodes must re-encode to the same bytes, and whatever encodes
 * must decode back to the same UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[16384], b[16384];
	const char *in = (const char *)data, *err;
	size_t na, nb;

	if (size > 4000)
		return 0;
	if (utf7_to_utf8(in, size, a, sizeof(a), &na, &err) == 0) {
		if (!utf7_valid(in, size))
			abort();
		if (utf7_from_utf8(a, na, b, sizeof(b), &nb, &err) != 0 ||
		    nb != size || memcmp(b, in, size) != 0)
			abort();
	} else if (utf7_valid(in, size)) {
		abort();
	}
	if (utf7_from_utf8(in, size, a, sizeof(a), &na, &err) == 0) {
		if (!utf7_valid(a, na))
			abort();
		if (utf7_to_utf8(a, na, b, sizeof(b), &nb, &err) != 0 ||
		    nb != size || memcmp(b, in, size) != 0)
			abort();
	}
	/* a short output buffer fails cleanly */
	utf7_to_utf8(in, size, a, size / 2, &na, &err);
	utf7_from_utf8(in, size, a, size / 2, &na, &err);
	return 0;
}
