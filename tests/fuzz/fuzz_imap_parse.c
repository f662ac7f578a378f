/*
 * fuzz_imap_parse.c - the IMAP command tokenizer under arbitrary input.
 *
 * The first byte picks the limits (with or without a larger budget for
 * ID) and the literal policy; the rest is fed
 * once whole and once in pseudo-random pieces (seeded by the input), and
 * both runs must produce the same event trace. Every command is walked and
 * its atoms run through the sequence-set and section parsers and the
 * response writer, so those see tokenizer output too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap_parse.h"
#include "proto/imap_section.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	uint64_t hash;
	uint32_t rng;
	bool refuse;
};

static void
mix(struct run *r, const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t k = 0; k < len; k++)
		r->hash = (r->hash ^ s[k]) * 0x100000001b3ull;
}

static int
null_sink(void *ctx, const char *p, size_t len)
{
	mix(ctx, p, len);
	return 0;
}

static void
walk(struct run *r, const struct imap_arg *a, unsigned depth)
{
	struct imap_range ranges[16];
	struct imap_seqset set = { ranges, 16 };
	struct imap_section sec;
	const char *err, *name;
	size_t pos = 0, len;

	for (; a != NULL; a = imap_arg_next(a)) {
		mix(r, &a->type, 1);
		mix(r, &a->len, sizeof(a->len));
		if (a->type == IMAP_ARG_LIST) {
			if (depth > IMAP_PARSE_MAX_DEPTH)
				abort();
			walk(r, imap_arg_child(a), depth + 1);
			continue;
		}
		if (a->ptr == NULL) {
			if (!(a->flags & IMAP_ARGF_STREAMED))
				abort();
			continue;
		}
		mix(r, a->ptr, a->len);
		imap_write_astring(null_sink, r, a->ptr, a->len,
		    a->len & 1 ? IMAP_WRITE_UTF8 : 0);
		if (a->type != IMAP_ARG_ATOM)
			continue;
		if (imap_seqset_parse(&set, a->ptr, a->len, &err) == 0) {
			imap_seqset_contains(&set, 5, 10);
			imap_seqset_resolve(&set, (uint32_t)a->len);
			imap_seqset_contains(&set, 5, 0);
		}
		if (imap_section_parse(a->ptr, a->len, &sec, &err) == 0 &&
		    (sec.kind == IMAP_SECT_FIELDS ||
			sec.kind == IMAP_SECT_FIELDS_NOT)) {
			while (imap_section_field_next(&sec, &pos, &name, &len))
				mix(r, name, len);
		}
	}
}

static bool
event(struct run *r, struct imap_parser *p, enum imap_parse_status st)
{
	/* DATA comes in input-sized pieces: only its bytes are compared. */
	if (st != IMAP_PARSE_DATA)
		mix(r, &st, sizeof(st));
	switch (st) {
	case IMAP_PARSE_OK:
		if (p->cmd.line != NULL) {
			mix(r, p->cmd.line, p->cmd.line_len);
			break;
		}
		mix(r, p->cmd.tag, p->cmd.tag_len);
		mix(r, p->cmd.name, p->cmd.name_len);
		walk(r, p->cmd.args, 0);
		/* AUTHENTICATE style: the next line is raw */
		if (imap_command_is(&p->cmd, "AUTHENTICATE"))
			imap_parse_want_line(p);
		break;
	case IMAP_PARSE_INVALID:
	case IMAP_PARSE_FATAL:
		mix(r, p->error, strlen(p->error));
		if (p->cmd.tag != NULL)
			mix(r, p->cmd.tag, p->cmd.tag_len);
		return st != IMAP_PARSE_FATAL;
	case IMAP_PARSE_LITERAL:
		mix(r, &p->lit, sizeof(p->lit.size));
		if (r->refuse && p->lit.sync && imap_parse_refuse(p) != 0)
			abort();
		break;
	case IMAP_PARSE_DATA:
		mix(r, p->data, p->data_len);
		break;
	default:
		abort();
	}
	return true;
}

static uint64_t
run(const uint8_t *in, size_t size, const struct imap_limits *lim, bool refuse,
    uint32_t seed, bool split)
{
	static char buf[8192];
	static struct imap_arg argv[64];
	struct imap_parser p;
	struct run r = { 0xcbf29ce484222325ull, seed, refuse };
	size_t off = 0;

	if (imap_parse_init(&p, lim, buf, sizeof(buf), argv, 64) != 0)
		abort();
	while (off < size) {
		size_t chunk = size - off, used;
		enum imap_parse_status st;

		if (split) {
			r.rng = r.rng * 1103515245u + 12345u;
			chunk = 1 + (r.rng >> 16) % (chunk < 17 ? chunk : 17);
		}
		for (;;) {
			st = imap_parse_feed(&p, (const char *)in + off, chunk,
			    &used);
			if (used > chunk)
				abort();
			off += used;
			chunk -= used;
			if (st == IMAP_PARSE_AGAIN) {
				if (chunk != 0)
					abort();
				break;
			}
			if (!event(&r, &p, st))
				return r.hash;
		}
	}
	return r.hash;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_limits lim = {
		.max_line = 256,
		.max_command = 2048,
		.max_literal = 4096,
		.max_nonsync = 0,
		.max_inline_literal = 32,
		.max_args = 64,
		.max_depth = 6,
	};
	uint8_t mode;

	if (size == 0)
		return 0;
	mode = data[0];
	data++;
	size--;
	if (mode & 1)
		lim.max_line = 40;
	if (mode & 2)
		lim.max_nonsync = 16;
	if (mode & 4)
		lim.max_args = 8;
	if (mode & 8)
		lim.max_inline_literal = 4096;
	if (mode & 32) {
		/* one command ("ID") with a larger budget than the rest */
		lim.big_name = "ID";
		lim.big_line = mode & 64 ? 1024 : 0;
		lim.big_command = 8192;
	}
	if (run(data, size, &lim, mode & 16, mode, false) !=
	    run(data, size, &lim, mode & 16, mode, true))
		abort();
	return 0;
}
