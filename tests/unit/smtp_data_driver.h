/*
 * smtp_data_driver.h - a session stand-in for proto/smtp_data.c, shared by
 * its unit test and its fuzz target, and a reference model to hold it to.
 *
 * dd_read() feeds a client's bytes to the reader in given pieces as a
 * session would (keeping what was not taken, each call on an exactly-sized
 * heap copy so a read past n is an ASan report), checks the contract of
 * every call and collects what was handed out. dd_model() computes from
 * the whole input, by a different method (find the terminator first,
 * then unstuff, then normalise), what the reader must hand out and count.
 * dd_stuff() runs the writer in given pieces into a given room.
 * A broken contract aborts: libFuzzer reports it, cmocka fails the test.
 */
#ifndef RG_TESTS_SMTP_DATA_DRIVER_H
#define RG_TESTS_SMTP_DATA_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_data.h"

struct dd_bytes {
	char *p;
	size_t len, cap;
};

struct dd_result {
	struct dd_bytes out; /* what was handed out */
	size_t used;	     /* input bytes taken */
	bool ended;
	struct smtp_data d; /* the counters at the end */
};

/* What the reader must do with an input, worked out independently. */
struct dd_model {
	struct dd_bytes out; /* in NORMALISE mode */
	size_t reject_len;   /* REJECT mode hands out out[0..reject_len) */
	size_t used;	     /* the terminator's end, or the whole input */
	bool ended;
	uint64_t bare_cr, bare_lf, nul, long_lines, longest;
	bool eight_bit;
};

static void
dd_put(struct dd_bytes *b, const void *p, size_t n)
{
	if (n == 0)
		return; /* p may be NULL (an empty message) */
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap - b->len < n)
			cap *= 2;
		if ((b->p = realloc(b->p, cap)) == NULL)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
dd_free(struct dd_bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* One reader call on an exact copy of p[0..n), its contract checked. */
static enum smtp_data_ev
dd_step(struct smtp_data *d, const char *p, size_t n, size_t *used_r,
    struct dd_bytes *out)
{
	char *copy = malloc(n ? n : 1);
	const char *o;
	size_t olen;
	enum smtp_data_ev ev;
	bool was_done = d->done;

	if (copy == NULL)
		abort();
	memcpy(copy, p, n);
	ev = smtp_data_next(d, copy, n, used_r, &o, &olen);
	if (*used_r > n)
		abort();
	switch (ev) {
	case SMTP_DATA_MORE:
		if (*used_r != n || olen != 0 || d->done)
			abort();
		break;
	case SMTP_DATA_BYTES:
		if (olen == 0 || o == NULL || d->done || d->discarding)
			abort();
		/* a slice of the input taken, or the made-up CRLF */
		if (o >= copy && o < copy + n) {
			if (o + olen > copy + *used_r)
				abort();
		} else if (olen != 2 || o[0] != '\r' || o[1] != '\n') {
			abort();
		}
		/* progress: a call that hands out takes something */
		if (*used_r == 0)
			abort();
		dd_put(out, o, olen);
		break;
	case SMTP_DATA_END:
		if (!d->done || olen != 0 || (was_done && *used_r != 0))
			abort();
		break;
	default:
		abort();
	}
	free(copy);
	return ev;
}

/*
 * Feed in[0..len) in pieces of cuts[0], cuts[1], ... (cycled; ncuts 0:
 * all at once), as a session keeps what was not taken and adds what
 * arrives. Stops at END.
 */
static void
dd_read(const struct smtp_data_conf *conf, const char *in, size_t len,
    const size_t *cuts, size_t ncuts, struct dd_result *r)
{
	struct dd_bytes pend = { 0 };
	size_t fed = 0, k = 0, used, start = 0;
	enum smtp_data_ev ev;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&r->d, conf);
	while (fed < len && !r->ended) {
		size_t piece = ncuts ? cuts[k++ % ncuts] : len;

		if (piece == 0 || piece > len - fed)
			piece = len - fed;
		dd_put(&pend, in + fed, piece);
		fed += piece;
		for (;;) {
			ev = dd_step(&r->d, pend.p + start, pend.len - start,
			    &used, &r->out);
			start += used;
			r->used += used;
			if (ev == SMTP_DATA_END) {
				r->ended = true;
				/* once done, done */
				if (dd_step(&r->d, pend.p + start,
					pend.len - start, &used,
					&r->out) != SMTP_DATA_END)
					abort();
				break;
			}
			if (ev == SMTP_DATA_MORE)
				break;
		}
		memmove(pend.p, pend.p + start, pend.len - start);
		pend.len -= start;
		start = 0;
	}
	dd_free(&pend);
}

/* The end of the data: the first ".\r\n" at the start of a line, where a
 * line starts at 0 and after every CR LF. */
static bool
dd_find_end(const char *in, size_t len, size_t *at_r)
{
	for (size_t p = 0; p + 3 <= len; p++) {
		if (memcmp(in + p, ".\r\n", 3) != 0)
			continue;
		if (p == 0 ||
		    (p >= 2 && in[p - 2] == '\r' && in[p - 1] == '\n')) {
			*at_r = p;
			return true;
		}
	}
	return false;
}

static void
dd_model(const struct smtp_data_conf *conf, const char *in, size_t len,
    struct dd_model *m)
{
	uint64_t max_line = conf->max_line ? conf->max_line :
					     SMTP_DATA_LINE_MAX;
	struct dd_bytes un = { 0 };
	size_t end, line = 0;
	bool first_bare = true;

	memset(m, 0, sizeof(*m));
	m->ended = dd_find_end(in, len, &end);
	m->used = m->ended ? end + 3 : len;
	if (!m->ended)
		end = len;
	/* unstuff: a dot that starts a line goes */
	for (size_t i = 0; i < end; i++) {
		bool bol = i == 0 ||
		    (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n');

		if (bol && in[i] == '.')
			continue;
		dd_put(&un, in + i, 1);
	}
	/* normalise, count */
	for (size_t i = 0; i < un.len; i++) {
		unsigned char c = (unsigned char)un.p[i];
		bool eol = false;

		if (c == '\r' && i + 1 < un.len && un.p[i + 1] == '\n') {
			dd_put(&m->out, "\r\n", 2);
			i++;
			eol = true;
		} else if (c == '\r') {
			/* bare, unless it is the last byte of an input
			 * that has not ended: its LF may come */
			if (i + 1 == un.len && !m->ended)
				break;
			m->bare_cr++;
		} else if (c == '\n') {
			m->bare_lf++;
			if (first_bare)
				m->reject_len = m->out.len;
			first_bare = false;
			dd_put(&m->out, "\r\n", 2);
			eol = true;
		} else {
			m->nul += c == 0;
			m->eight_bit = m->eight_bit || c > 127;
			dd_put(&m->out, un.p + i, 1);
		}
		if (c == '\r' && !eol && first_bare) {
			m->reject_len = m->out.len;
			first_bare = false;
		}
		/* a line is counted once, when it passes the limit */
		if (eol) {
			m->long_lines += line <= max_line &&
			    line + 2 > max_line;
			line += 2;
			if (line > m->longest)
				m->longest = line;
			line = 0;
		} else if (c != '\r') {
			line++;
			m->long_lines += line == max_line + 1;
		}
	}
	if (first_bare)
		m->reject_len = m->out.len;
	dd_free(&un);
}

/* Where two readings differ, or NULL. */
static const char *
dd_same(const struct dd_result *a, const struct dd_result *b)
{
	if (a->out.len != b->out.len ||
	    (a->out.len && memcmp(a->out.p, b->out.p, a->out.len) != 0))
		return "output";
	if (a->used != b->used || a->ended != b->ended)
		return "bytes taken or end";
	if (a->d.size != b->d.size || a->d.bare_cr != b->d.bare_cr ||
	    a->d.bare_lf != b->d.bare_lf || a->d.nul != b->d.nul ||
	    a->d.long_lines != b->d.long_lines ||
	    a->d.longest != b->d.longest || a->d.eight_bit != b->d.eight_bit ||
	    a->d.too_big != b->d.too_big)
		return "counters";
	return NULL;
}

/* Where a reading of in[0..len) differs from the model, or NULL. */
static const char *
dd_vs_model(const struct smtp_data_conf *conf, const char *in, size_t len,
    const struct dd_result *r)
{
	const char *why = NULL;
	struct dd_model m;
	size_t want;

	dd_model(conf, in, len, &m);
	want = conf->mode == SMTP_DATA_REJECT ? m.reject_len : m.out.len;
	if (r->out.len != want ||
	    (want && memcmp(r->out.p, m.out.p, want) != 0))
		why = "output";
	else if (r->used != m.used || r->ended != m.ended)
		why = "bytes taken or end";
	else if (r->d.size != m.out.len || r->d.bare_cr != m.bare_cr ||
	    r->d.bare_lf != m.bare_lf || r->d.nul != m.nul ||
	    r->d.long_lines != m.long_lines || r->d.longest != m.longest ||
	    r->d.eight_bit != m.eight_bit)
		why = "counters";
	dd_free(&m.out);
	return why;
}

/* The writer over in[0..len) in pieces of cut (0: whole) into a room of
 * cap bytes at a time, then the end. */
static void
dd_stuff(const char *in, size_t len, size_t cut, size_t cap,
    struct dd_bytes *out)
{
	struct smtp_stuff st;
	char *room = malloc(
	    cap > SMTP_STUFF_END_MAX ? cap : SMTP_STUFF_END_MAX);
	size_t fed = 0, used, w;

	if (room == NULL)
		abort();
	smtp_stuff_init(&st);
	while (fed < len) {
		size_t piece = cut && cut < len - fed ? cut : len - fed;
		size_t at = 0;

		while (at < piece) {
			w = smtp_stuff_put(&st, in + fed + at, piece - at,
			    &used, room, cap);
			if (w > cap || used > piece - at)
				abort();
			if (w == 0 && used == 0)
				abort(); /* no progress with cap >= 2 */
			dd_put(out, room, w);
			at += used;
		}
		fed += piece;
	}
	if (smtp_stuff_end(&st, room, 2) != 0)
		abort(); /* too small: nothing */
	w = smtp_stuff_end(&st, room, SMTP_STUFF_END_MAX);
	if (w < 3 || w > SMTP_STUFF_END_MAX)
		abort();
	dd_put(out, room, w);
	free(room);
}

#endif
