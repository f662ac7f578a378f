/*
 * fuzz_upstream_resp.c - libFuzzer target for the back end's answer
 * reader (proto/upstream_resp.c) that ringgate's back-end login uses.
 *
 * The first byte picks the protocol and what is expected (IMAP greeting
 * then tagged replies for tag "a1", POP3 single or multi-line, SMTP);
 * the second a cut point. The rest is read three ways: whole, one byte
 * at a time, and cut in two. Properties, not just crashes: the three
 * readings see the same lines (kind, status, tag, code, text, SMTP code,
 * line or end of reply) and turn invalid at the same byte with the same
 * error; every slice lies inside the line, no line is longer than the
 * limit or holds a NUL, a reply never passes its line and byte limits.
 * A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/upstream_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reading {
	uint64_t hash;
	unsigned events;
	size_t invalid_at; /* SIZE_MAX: never */
	enum ur_err err;
};

static void
mix(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= 1099511628211ULL;
	}
}

static void
mix_slice(uint64_t *h, const struct upstream_resp *r, struct ur_slice s)
{
	uint64_t off = s.p == NULL ? UINT64_MAX : (uint64_t)(s.p - r->line.p);

	if (s.p != NULL &&
	    (s.p < r->line.p || s.p + s.len > r->line.p + r->line.len))
		abort();
	mix(h, &off, sizeof(off));
	mix(h, &s.len, sizeof(s.len));
	if (s.p != NULL)
		mix(h, s.p, s.len);
}

static void
record(struct reading *out, const struct upstream_resp *r, enum ur_rc rc)
{
	unsigned v[5] = { rc, r->kind, r->status, r->smtp_code, r->lines };

	if (r->line.p == NULL || r->line.len >= UR_LINE_MAX ||
	    memchr(r->line.p, '\0', r->line.len) != NULL ||
	    r->lines > UR_LINES_MAX || r->lines == 0)
		abort();
	if (r->kind == UR_K_SMTP && (r->smtp_code < 200 || r->smtp_code > 599))
		abort();
	mix(&out->hash, v, sizeof(v));
	mix_slice(&out->hash, r, r->tag);
	mix_slice(&out->hash, r, r->code);
	mix_slice(&out->hash, r, r->text);
	out->events++;
}

/* The expectation for reply number i. */
static void
begin(struct upstream_resp *r, unsigned sel, unsigned i)
{
	switch (sel % 3) {
	case 0: /* IMAP: greeting, then tagged */
		upstream_resp_begin(r, i == 0 ? UR_ONE : UR_TAGGED, "a1");
		break;
	case 1: /* POP3: alternate single and multi-line */
		upstream_resp_begin(r, (i + sel / 3) % 2 ? UR_MULTI : UR_ONE,
		    NULL);
		break;
	default:
		upstream_resp_begin(r, UR_ONE, NULL);
		break;
	}
}

static void
read_all(const char *data, size_t size, unsigned sel, size_t step, size_t cut,
    struct reading *out)
{
	static struct upstream_resp r;
	static const enum ur_proto protos[] = { UR_IMAP, UR_POP3, UR_SMTP };
	size_t off = 0;
	unsigned replies = 0;

	memset(out, 0, sizeof(*out));
	out->hash = 14695981039346656037ULL;
	out->invalid_at = SIZE_MAX;
	upstream_resp_init(&r, protos[sel % 3]);
	begin(&r, sel, replies);
	while (off < size) {
		size_t len = size - off, used;
		enum ur_rc rc;

		if (cut > 0) {
			len = cut < len ? cut : len;
			cut = 0;
		} else if (step > 0 && step < len) {
			len = step;
		}
		rc = upstream_resp_feed(&r, data + off, len, &used);
		if (used > len || (rc == UR_MORE && used != len))
			abort();
		off += used;
		if (rc == UR_INVALID) {
			size_t again;

			if (r.err == UR_E_NONE || r.error == NULL)
				abort();
			if (upstream_resp_feed(&r, "x\n", 2, &again) !=
				UR_INVALID ||
			    again != 0)
				abort();
			out->invalid_at = off;
			out->err = r.err;
			return;
		}
		if (rc == UR_LINE || rc == UR_DONE)
			record(out, &r, rc);
		if (rc == UR_DONE)
			begin(&r, sel, ++replies);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct reading a, b, c;
	unsigned sel;
	size_t cut;

	if (size < 2)
		return 0;
	sel = data[0];
	cut = data[1];
	data += 2;
	size -= 2;
	read_all((const char *)data, size, sel, 0, 0, &a);
	read_all((const char *)data, size, sel, 1, 0, &b);
	read_all((const char *)data, size, sel, 0, cut, &c);
	if (a.hash != b.hash || a.hash != c.hash || a.events != b.events ||
	    a.events != c.events)
		abort();
	if (a.err != b.err || a.err != c.err)
		abort();
	/* Syntax is judged on whole lines, so every reading stops at the
	 * same byte; a limit or a NUL stops a reading within the line, where
	 * its piece happens to cross it. */
	if (a.err != UR_E_LINE && a.err != UR_E_BYTES && a.err != UR_E_NUL &&
	    (a.invalid_at != b.invalid_at || a.invalid_at != c.invalid_at))
		abort();
	return 0;
}
