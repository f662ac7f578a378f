/*
 * fuzz_spool_entry.c - libFuzzer target for the relay spool's envelope
 * parser (backend/spool.c, spool_entry_parse), which reads files back
 * after a crash or a restart.
 *
 * Properties, not just crashes: whatever parses has a valid id, at least
 * one recipient, and no control byte in an address (addresses go into
 * SMTP commands) nor a line break in a reply (replies go into DSN
 * fields); formatting it and parsing that again gives the same fields,
 * and formatting those gives the same bytes. A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
no_controls(const char *s, int allow_tab)
{
	for (; s != NULL && *s; s++)
		if (((unsigned char)*s < 0x20 && !(allow_tab && *s == '\t')) ||
		    *s == 0x7f)
			abort();
}

static int
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
same(const struct spool_entry *a, const struct spool_entry *b)
{
	if (strcmp(a->id, b->id) || !same_str(a->user, b->user) ||
	    !same_str(a->sender, b->sender) || a->arrival != b->arrival ||
	    a->next != b->next || a->attempts != b->attempts ||
	    a->nrcpts != b->nrcpts)
		abort();
	for (size_t i = 0; i < a->nrcpts; i++)
		if (strcmp(a->rcpts[i].addr, b->rcpts[i].addr) ||
		    a->rcpts[i].state != b->rcpts[i].state ||
		    strcmp(a->rcpts[i].status, b->rcpts[i].status) ||
		    strcmp(a->rcpts[i].reply, b->rcpts[i].reply))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_entry e, e2;
	char *out, *out2;
	size_t len, len2;

	if (size > 1 << 20 ||
	    spool_entry_parse((const char *)data, size, &e) == -1)
		return 0;
	if (strlen(e.id) != SPOOL_ID_LEN || e.nrcpts == 0 || e.sender == NULL)
		abort();
	no_controls(e.user, 0);
	no_controls(e.sender, 0);
	for (size_t i = 0; i < e.nrcpts; i++) {
		if (e.rcpts[i].addr[0] == '\0')
			abort();
		no_controls(e.rcpts[i].addr, 0);
		no_controls(e.rcpts[i].reply, 1);
	}
	if (spool_entry_format(&e, &out, &len) == -1)
		abort();
	if (spool_entry_parse(out, len, &e2) == -1)
		abort();
	same(&e, &e2);
	if (spool_entry_format(&e2, &out2, &len2) == -1 || len2 != len ||
	    memcmp(out, out2, len) != 0)
		abort();
	free(out);
	free(out2);
	spool_entry_free(&e);
	spool_entry_free(&e2);
	return 0;
}
