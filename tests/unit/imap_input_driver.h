/*
 * imap_input_driver.h - a session stand-in for proto/imap_input.c, shared
 * by its unit test and its fuzz target: feeds a script of client bytes in
 * given pieces and writes the events as one text transcript, acting as a
 * session would (a raw line after AUTHENTICATE, a refusal where the
 * script asks for one). Streamed DATA is merged per literal, so any split
 * of the same bytes must give the same transcript.
 */
#ifndef RG_TESTS_IMAP_INPUT_DRIVER_H
#define RG_TESTS_IMAP_INPUT_DRIVER_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proto/imap_input.h"

struct driver {
	struct imap_input in;
	struct buf pending; /* bytes fed but not taken yet */
	struct buf out;	    /* the transcript */
	bool in_data;	    /* the last event was DATA */
	bool fatal;
	bool refuse_sync; /* refuse every synchronizing literal */
};

static void
drv_event(struct driver *d, enum imap_input_ev ev)
{
	const struct imap_parser *ps = &d->in.parser;
	const struct imap_command *cmd = &ps->cmd;

	if (ev != IMAP_IN_DATA && d->in_data) {
		buf_printf(&d->out, "\n"); /* the end of a literal's DATA */
		d->in_data = false;
	}
	switch (ev) {
	case IMAP_IN_COMMAND:
		buf_printf(&d->out, "CMD %.*s %.*s%s argc=%u\n",
		    (int)cmd->tag_len, cmd->tag, (int)cmd->name_len, cmd->name,
		    cmd->uid ? " uid" : "", cmd->argc);
		if (cmd->name_len == 12 &&
		    memcmp(cmd->name, "AUTHENTICATE", 12) == 0)
			imap_input_want_line(&d->in);
		break;
	case IMAP_IN_LINE:
		buf_printf(&d->out, "LINE %.*s\n", (int)cmd->line_len,
		    cmd->line);
		break;
	case IMAP_IN_LITERAL:
		buf_printf(&d->out, "LIT %llu sync=%d streamed=%d\n",
		    (unsigned long long)ps->lit.size, ps->lit.sync,
		    ps->lit.streamed);
		if (ps->lit.sync && d->refuse_sync &&
		    imap_input_refuse(&d->in) == 0)
			buf_printf(&d->out, "REFUSED\n");
		break;
	case IMAP_IN_DATA:
		if (!d->in_data)
			buf_printf(&d->out, "DATA ");
		buf_append(&d->out, ps->data, ps->data_len);
		d->in_data = true;
		break;
	case IMAP_IN_BAD:
		buf_printf(&d->out, "BAD %s %s toobig=%d line=%d\n", d->in.tag,
		    d->in.error, d->in.toobig, d->in.line_failed);
		break;
	case IMAP_IN_TOOBIG:
		buf_printf(&d->out, "TOOBIG %s\n", d->in.tag);
		break;
	case IMAP_IN_FATAL:
		buf_printf(&d->out, "FATAL %s\n", d->in.error);
		d->fatal = true;
		break;
	case IMAP_IN_MORE:
		break;
	}
}

/* Feed one piece; run every event it completes. */
static void
drv_feed(struct driver *d, const char *p, size_t n)
{
	enum imap_input_ev ev;
	size_t used;

	if (d->fatal)
		return;
	buf_append(&d->pending, p, n);
	for (;;) {
		ev = imap_input_next(&d->in, buf_head(&d->pending),
		    buf_used(&d->pending), &used);
		buf_consume(&d->pending, used);
		if (ev == IMAP_IN_MORE)
			break;
		drv_event(d, ev);
		if (d->fatal)
			break;
	}
}

/* The transcript of script fed in pieces of the given lengths (cycled;
 * NULL cuts: all at once), as a malloc'd string. */
static char *
drv_run(const struct imap_input_conf *conf, const char *script, size_t len,
    const size_t *cuts, size_t ncuts, bool refuse_sync)
{
	struct driver d;
	size_t off = 0, k = 0;
	char *text;

	memset(&d, 0, sizeof(d));
	d.refuse_sync = refuse_sync;
	if (imap_input_init(&d.in, conf) == -1)
		return strdup("INIT FAILED\n");
	while (off < len) {
		size_t n = cuts ? cuts[k++ % ncuts] : len - off;

		if (n == 0 || n > len - off)
			n = len - off;
		drv_feed(&d, script + off, n);
		off += n;
	}
	if (d.in_data)
		buf_printf(&d.out, "\n");
	buf_printf(&d.out, "IDLE %d\n", imap_input_idle(&d.in));
	text = strndup(buf_head(&d.out), buf_used(&d.out));
	imap_input_free(&d.in);
	buf_free(&d.pending);
	buf_free(&d.out);
	return text;
}

#endif
