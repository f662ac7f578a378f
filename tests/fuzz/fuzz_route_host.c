/*
 * fuzz_route_host.c - the pure parsing of routing: the host= list of
 * back-end names and the greeting a health check accepts.
 *
 * Properties checked, not just crashes: every name returned lies inside
 * the input, is non-empty and holds no separator; names come in order
 * and together with the separators cover the whole string; the greeting
 * check only accepts what starts with the protocol's ready prefix.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/route_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_host(const char *s, size_t len)
{
	const char *p = s, *name, *prev_end = s;
	size_t n, covered = 0;

	while (route_host_next(&p, &name, &n)) {
		if (n == 0 || name < prev_end || name + n > s + len ||
		    strcspn(name, " \t,") != n || p != name + n)
			abort();
		/* only separators between two names */
		if (strspn(prev_end, " \t,") != (size_t)(name - prev_end))
			abort();
		covered += n;
		prev_end = name + n;
	}
	if (p < prev_end || p > s + len || *p != '\0' ||
	    strspn(prev_end, " \t,") != (size_t)(p - prev_end) || covered > len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_host(s, strlen(s));
	for (unsigned p = 0; p < ROUTE_NPROTO; p++) {
		static const char *const want[] = { "* OK", "+OK", "220" };

		if (route_greeting_ok((enum route_proto)p, s, size) &&
		    (size < strlen(want[p]) ||
			memcmp(s, want[p], strlen(want[p])) != 0))
			abort();
	}
	free(s);
	return 0;
}
