/*
 * fuzz_smtp_data.c - libFuzzer target for the DATA reader and the
 * dot-stuffing writer (proto/smtp_data.c), through the session stand-in
 * and the reference model of tests/unit/smtp_data_driver.h.
 *
 * The first byte picks the mode, the line limit and (sometimes) a size
 * limit; the second seeds the split. The rest is the client's bytes after
 * "354", fed whole, one byte at a time and in pseudo-random pieces.
 * Properties checked, not just crashes: all three agree, and agree with
 * the model (what is handed out, what is taken, every counter); nothing
 * handed out holds a bare CR or LF; the end is never found anywhere but
 * at a CRLF "." CRLF; with a size limit nothing past it is handed out and
 * what is is a prefix of the unlimited output. Then the writer: the
 * handed-out message stuffed (in small pieces into a small room) reads
 * back identical and ends exactly at the writer's last byte; and the raw
 * input taken as a message, stuffed, reads back with CRLF line ends and
 * nothing bare. A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/smtp_data_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
crlf_only(const struct dd_bytes *b)
{
	for (size_t k = 0; k < b->len; k++)
		if ((b->p[k] == '\r') !=
		    (k + 1 < b->len && b->p[k + 1] == '\n'))
			abort();
	for (size_t k = 0; k < b->len; k++)
		if (b->p[k] == '\n' && (k == 0 || b->p[k - 1] != '\r'))
			abort();
}

static void
against_model(const struct smtp_data_conf *conf, const char *in, size_t len,
    const struct dd_result *r)
{
	if (dd_vs_model(conf, in, len, r) != NULL)
		abort();
	/* END only right after CRLF "." CRLF (or ".\r\n" first) */
	if (r->ended &&
	    (r->used < 3 || memcmp(in + r->used - 3, ".\r\n", 3) != 0 ||
		(r->used > 3 && memcmp(in + r->used - 5, "\r\n", 2) != 0)))
		abort();
}

/* The writer's output read back gives the message again. */
static void
stuff_back(const char *msg, size_t len, size_t cut, size_t cap)
{
	static const struct smtp_data_conf strict = { 0 };
	struct dd_bytes wire = { 0 };
	struct dd_result r;

	dd_stuff(msg, len, cut, cap, &wire);
	crlf_only(&wire);
	dd_read(&strict, wire.p, wire.len, NULL, 0, &r);
	if (!r.ended || r.used != wire.len || r.d.bare_cr || r.d.bare_lf)
		abort();
	crlf_only(&r.out);
	dd_free(&r.out);
	dd_free(&wire);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data_conf conf;
	struct dd_result whole, r;
	struct dd_bytes wire = { 0 };
	size_t cuts[8], one = 1;
	const char *in;

	if (size < 2 || size > 8192)
		return 0;
	memset(&conf, 0, sizeof(conf));
	conf.mode = data[0] & 1 ? SMTP_DATA_NORMALISE : SMTP_DATA_REJECT;
	conf.max_line = (data[0] >> 1) & 7; /* 0: the default 1000 */
	if (data[0] & 0x10)
		conf.max_size = data[0] >> 5;
	for (size_t i = 0; i < 8; i++)
		cuts[i] = 1 + ((data[1] >> (i % 4)) + i * 7) % 13;
	in = (const char *)data + 2;
	size -= 2;

	dd_read(&conf, in, size, NULL, 0, &whole);
	crlf_only(&whole.out);
	if (conf.max_size == 0) {
		against_model(&conf, in, size, &whole);
		dd_read(&conf, in, size, &one, 1, &r);
		if (dd_same(&whole, &r) != NULL)
			abort();
		dd_free(&r.out);
		dd_read(&conf, in, size, cuts, 8, &r);
		if (dd_same(&whole, &r) != NULL)
			abort();
		dd_free(&r.out);
	} else {
		/* how much comes out before the limit depends on the
		 * pieces; that it is a prefix and within the limit does
		 * not, nor does anything else */
		struct smtp_data_conf unlimited = conf;
		struct dd_result u;

		unlimited.max_size = 0;
		dd_read(&unlimited, in, size, NULL, 0, &u);
		dd_read(&conf, in, size, &one, 1, &r);
		if (whole.d.too_big != (u.d.size > conf.max_size) ||
		    whole.used != u.used || r.used != u.used ||
		    whole.d.size != u.d.size || r.d.too_big != whole.d.too_big)
			abort();
		if (whole.out.len > conf.max_size ||
		    r.out.len > conf.max_size || whole.out.len > u.out.len ||
		    r.out.len > u.out.len ||
		    (whole.out.len &&
			memcmp(whole.out.p, u.out.p, whole.out.len) != 0) ||
		    (r.out.len && memcmp(r.out.p, u.out.p, r.out.len) != 0))
			abort();
		dd_free(&r.out);
		dd_free(&u.out);
	}
	/* the writer, both ways */
	stuff_back(whole.out.p, whole.out.len, cuts[0], 2 + data[1] % 7);
	stuff_back(in, size, cuts[1], 2 + data[1] % 5);
	/* reading then writing the read message gives the same wire
	 * bytes as writing it at once */
	dd_stuff(whole.out.p, whole.out.len, 0, 4096, &wire);
	{
		struct dd_bytes wire2 = { 0 };

		dd_stuff(whole.out.p, whole.out.len, 1, 2, &wire2);
		if (wire.len != wire2.len ||
		    memcmp(wire.p, wire2.p, wire.len) != 0)
			abort();
		dd_free(&wire2);
	}
	dd_free(&wire);
	dd_free(&whole.out);
	return 0;
}
