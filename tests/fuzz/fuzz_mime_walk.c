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
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/mime_walk_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
