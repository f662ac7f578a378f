/*
 * fuzz_redis_switch.c - the Sentinel "+switch-master" payload parser
 * (redis_switch_parse in core/redis_loop.c).
 *
 * Properties checked, not just crashes: what parses points inside the
 * input, has no empty field, no space and no NUL in the name or the host,
 * a host under 64 bytes and a port in 1..65535; the same input parses the
 * same way twice (no hidden state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/redis_loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_field(const char *base, size_t size, const char *p, size_t n)
{
	if (n == 0 || p < base || p + n > base + size)
		abort();
	if (memchr(p, ' ', n) != NULL || memchr(p, '\0', n) != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes, so ASan sees any overread */
	char *msg = malloc(size ? size : 1);
	struct redis_switch a, b;
	int rc;

	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	rc = redis_switch_parse(msg, size, &a);
	if (rc != redis_switch_parse(msg, size, &b))
		abort();
	if (rc == 0) {
		check_field(msg, size, a.name, a.name_len);
		check_field(msg, size, a.host, a.host_len);
		if (a.host_len >= 64 || a.port == 0)
			abort();
		if (a.name != b.name || a.host != b.host || a.port != b.port)
			abort();
	} else if (rc != -1) {
		abort();
	}
	free(msg);
	return 0;
}
