/*
 * fuzz_imap_search.c - the SEARCH program parser (imap_search_parse.c)
 * under arbitrary criteria.
 *
 * The input is what follows "a SEARCH " on the wire; it goes through the
 * real tokenizer (proto/imap_parse.c, with the limits a logged-in session
 * has, literals accepted as if the continuation had been sent) and every
 * complete command's arguments are parsed twice: checking only and
 * building the program. Both must agree, and a built program must be a
 * well-formed tree: every key reached exactly once from key 0, OR with
 * two children, NOT with one, leaves with none, sets non-empty, nesting
 * within the bound. Then it is freed, so ASan sees every leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/imap_search.h"
#include "proto/imap_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STORAGE (64 * 1024)
#define NARGS 4096
#define PREFIX "a SEARCH "

static int walk(const struct imap_search *prog, int k, unsigned depth,
    unsigned char *seen);
static void check_command(const struct imap_command *cmd);

/* Children of k, with k's shape checked; returns the number of keys
 * below and at k. Aborts on anything malformed. */
static int
walk(const struct imap_search *prog, int k, unsigned depth, unsigned char *seen)
{
	const struct skey *key;
	int n = 1, children = 0;

	if (k < 0 || k >= prog->nkeys || seen[k]++ ||
	    depth > IMAP_SEARCH_MAX_DEPTH + 1)
		abort();
	key = &prog->keys[k];
	for (int c = key->child; c != -1; c = prog->keys[c].next) {
		if (c < 0 || c >= prog->nkeys)
			abort();
		n += walk(prog, c, depth + 1, seen);
		children++;
	}
	switch (key->op) {
	case SK_AND:
		break;
	case SK_OR:
		if (children != 2)
			abort();
		break;
	case SK_NOT:
		if (children != 1)
			abort();
		break;
	case SK_SEQ:
	case SK_UID:
		if (children != 0 || key->nranges == 0 || key->ranges == NULL)
			abort();
		break;
	case SK_HEADER:
	case SK_ADDRESS:
		if (children != 0 || key->name == NULL || key->value == NULL ||
		    strlen(key->value) > key->vlen)
			abort();
		break;
	case SK_BODY:
	case SK_TEXT:
		if (children != 0 || key->value == NULL)
			abort();
		break;
	default:
		if (children != 0)
			abort();
		break;
	}
	return n;
}

static void
check_command(const struct imap_command *cmd)
{
	static struct imap_search prog;
	unsigned char seen[IMAP_SEARCH_MAX_KEYS];
	const char *e1 = NULL, *e2 = NULL;
	bool bad1 = false, bad2 = false;
	int r1, r2;

	r1 = imap_search_parse(NULL, cmd->args, &bad1, &e1);
	r2 = imap_search_parse(&prog, cmd->args, &bad2, &e2);
	/* the same verdict and the same text (static strings; NULL when a
	 * key's argument is simply missing: the session says "Invalid
	 * arguments") */
	if (r1 != r2 || e1 != e2 || (r1 == 0 && bad1 != bad2))
		abort();
	if (prog.nkeys < 0 || prog.nkeys > IMAP_SEARCH_MAX_KEYS)
		abort();
	if (r2 == 0) {
		memset(seen, 0, sizeof(seen));
		if (prog.nkeys == 0 || prog.keys[0].op != SK_AND ||
		    prog.keys[0].next != -1 ||
		    walk(&prog, 0, 0, seen) != prog.nkeys)
			abort();
	}
	imap_search_free(&prog);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char storage[STORAGE];
	static struct imap_arg argv[NARGS];
	struct imap_limits lim = { 0 };
	struct imap_parser p;
	char *in;
	size_t len = sizeof(PREFIX) - 1 + size + 2, off = 0;

	if (size > 256 * 1024 || (in = malloc(len)) == NULL)
		return 0;
	memcpy(in, PREFIX, sizeof(PREFIX) - 1);
	memcpy(in + sizeof(PREFIX) - 1, data, size);
	memcpy(in + len - 2, "\r\n", 2);
	lim.max_line = 16 * 1024;
	lim.max_command = STORAGE;
	lim.max_literal = 1024 * 1024;
	lim.max_inline_literal = 4096; /* larger ones stream: ptr NULL */
	lim.max_args = NARGS;
	if (imap_parse_init(&p, &lim, storage, sizeof(storage), argv, NARGS) ==
	    -1)
		abort();
	while (off < len) {
		size_t used = 0;
		enum imap_parse_status st = imap_parse_feed(&p, in + off,
		    len - off, &used);

		off += used;
		if (st == IMAP_PARSE_OK)
			check_command(&p.cmd);
		else if (st == IMAP_PARSE_FATAL ||
		    (st == IMAP_PARSE_AGAIN && used == 0))
			break;
	}
	free(in);
	return 0;
}
