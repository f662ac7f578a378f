/*
 * fuzz_throttle_query.c - the admin's query parser for the throttle
 * (POST /throttle/unblock?ip=...): throttle_admin_query() on a peer's
 * bytes, then the address parser the unblock feeds it to.
 *
 * Properties checked, not just crashes: a value found is non-empty,
 * NUL-terminated within the buffer, printable ASCII without spaces and
 * no longer than the input; a buffer too small for it is refused, never
 * overrun; a source parsed from it has one to three scopes, each a
 * NUL-terminated string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "throttle/throttle_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *q, size_t n, size_t cap)
{
	char out[THROTTLE_IP_MAX + 8];
	struct throttle_conf cf = { .net4_prefix = 24,
		.net6_prefix = 64,
		.net6_wide_prefix = 48 };
	struct thr_source src;

	memset(out, 'X', sizeof(out));
	if (throttle_admin_query(q, n, "ip", out, cap) == -1) {
		/* nothing written past cap either way */
		for (size_t i = cap; i < sizeof(out); i++)
			if (out[i] != 'X')
				abort();
		return;
	}
	size_t len = strnlen(out, cap);

	if (len == 0 || len >= cap || len > n)
		abort();
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] <= 0x20 ||
		    (unsigned char)out[i] >= 0x7f)
			abort();
	if (thr_source_parse(out, &src, &cf) == 0) {
		if (src.nscopes < 1 || src.nscopes > THR_SCOPES)
			abort();
		for (unsigned i = 0; i < src.nscopes; i++)
			if (strnlen(src.scope[i], THR_SCOPE_MAX) >=
			    THR_SCOPE_MAX)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *q = (const char *)data;

	check(q, size, THROTTLE_IP_MAX);
	check(q, size, 8);
	check(q, size, 1);
	return 0;
}
