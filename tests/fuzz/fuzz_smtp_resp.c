/*
 * fuzz_smtp_resp.c - libFuzzer target for the SMTP reply reader
 * (proto/smtp_resp.c) the relay's client uses on a smarthost's answers.
 *
 * The input is read three ways: whole, one byte at a time, and cut at a
 * point the first byte picks. Properties, not just crashes: the three
 * readings give the same replies (code, text, ext, line count) and stop
 * at the same byte when the input turns invalid; a reply's code is
 * 200..599; its text is printable ASCII within the bound and starts with
 * the code; the status derived from it looks like "d.d.d" with the
 * code's class. A broken property aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXR 64

struct reading {
	unsigned n;
	unsigned code[MAXR], lines[MAXR], ext[MAXR];
	char text[MAXR][SMTP_RESP_TEXT_MAX + 1];
	size_t invalid_at; /* SIZE_MAX: never */
};

static void
check(const struct smtp_resp *r)
{
	char st[16];

	if (r->code < 200 || r->code > 599 || r->lines == 0)
		abort();
	if (strlen(r->text) > SMTP_RESP_TEXT_MAX || strlen(r->text) < 3)
		abort();
	for (const char *p = r->text; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
	if ((unsigned)(r->text[0] - '0') != r->code / 100)
		abort();
	smtp_resp_status(r, st, sizeof(st));
	if (st[0] != r->text[0] || st[1] != '.')
		abort();
}

/* Feed data[0..size) in pieces of at most step bytes (0: all at once;
 * cut: first piece is cut bytes). */
static void
read_all(const char *data, size_t size, size_t step, size_t cut,
    struct reading *out)
{
	static struct smtp_resp r;
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	out->invalid_at = SIZE_MAX;
	smtp_resp_init(&r);
	while (off < size) {
		size_t len = size - off, used;
		enum smtp_resp_rc rc;

		if (cut > 0) {
			len = cut < len ? cut : len;
			cut = 0;
		} else if (step > 0 && step < len) {
			len = step;
		}
		rc = smtp_resp_feed(&r, data + off, len, &used);
		if (used > len)
			abort();
		off += used;
		if (rc == SMTP_RESP_INVALID) {
			out->invalid_at = off;
			return;
		}
		if (rc == SMTP_RESP_DONE) {
			check(&r);
			if (out->n < MAXR) {
				out->code[out->n] = r.code;
				out->lines[out->n] = r.lines;
				out->ext[out->n] = r.ext;
				memcpy(out->text[out->n], r.text,
				    sizeof(r.text));
			}
			out->n++;
			smtp_resp_init(&r);
		} else if (used != len) {
			abort();
		}
	}
}

static void
same(const struct reading *a, const struct reading *b)
{
	if (a->n != b->n || a->invalid_at != b->invalid_at)
		abort();
	for (unsigned i = 0; i < a->n && i < MAXR; i++)
		if (a->code[i] != b->code[i] || a->lines[i] != b->lines[i] ||
		    a->ext[i] != b->ext[i] || strcmp(a->text[i], b->text[i]))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct reading whole, bytes, split;
	size_t cut;

	if (size == 0 || size > 1 << 16)
		return 0;
	cut = 1 + data[0] % size;
	read_all((const char *)data, size, 0, 0, &whole);
	read_all((const char *)data, size, 1, 0, &bytes);
	read_all((const char *)data, size, 0, cut, &split);
	same(&whole, &bytes);
	same(&whole, &split);
	return 0;
}
