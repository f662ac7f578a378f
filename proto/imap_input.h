/*
 * imap_input.h - the input discipline around the IMAP parser, as one
 * event source for every IMAP session (ringstore's, login/'s, ringgate's
 * front end): commands, raw lines (AUTHENTICATE responses, IDLE's DONE),
 * literal announcements, streamed literal data, and the errors a session
 * answers with BAD, NO [TOOBIG] or BYE, including swallowing an over-large
 * LITERAL+ so that its bytes are never read as commands.
 *
 * Pure: no I/O, no allocation after init. The caller keeps the bytes that
 * arrived and feeds them in any split; each call returns one event and
 * says how many bytes it took. What an event carries (in->parser.cmd,
 * .lit, .data, in->tag, in->error) is valid until the next call.
 */
#ifndef RG_PROTO_IMAP_INPUT_H
#define RG_PROTO_IMAP_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/imap_parse.h"

#define IMAP_INPUT_TAG_MAX 128 /* longer tags are answered as "*" */

enum imap_input_ev {
	IMAP_IN_MORE = 0, /* every byte given was taken: feed more */
	IMAP_IN_COMMAND,  /* in->parser.cmd is a whole command */
	IMAP_IN_LINE,	  /* in->parser.cmd.line: the raw line asked for */
	IMAP_IN_LITERAL,  /* in->parser.lit was announced (see below) */
	IMAP_IN_DATA,	  /* in->parser.data: streamed literal bytes */
	IMAP_IN_BAD,	  /* answer "<tag> BAD <error>", or "<tag> NO
			   * [TOOBIG] <error>" when in->toobig */
	IMAP_IN_TOOBIG,	  /* a swallowed LITERAL+ is over: "<tag> NO
			   * [TOOBIG] <error>" */
	IMAP_IN_FATAL,	  /* cannot go on: "* BYE <error>" and close */
};

struct imap_input_conf {
	struct imap_limits lim;
	/* A non-synchronizing literal over the limits, on a tagged
	 * command, of at most this many bytes is read and thrown away and
	 * answered NO [TOOBIG] (RFC 7888) instead of ending the connection;
	 * 0: never (before login, where a peer should not cost that). */
	uint64_t swallow_max;
};

struct imap_input {
	struct imap_parser parser; /* results: cmd, lit, data, error, code */
	/* the event's tag, "*" when there was none or it was too long */
	char tag[IMAP_INPUT_TAG_MAX + 1];
	const char *error; /* text for BAD, NO [TOOBIG] or BYE */
	bool toobig;	   /* the BAD is a NO [TOOBIG] (literal too large) */
	/* the BAD or FATAL ended a raw line asked for (too long): the
	 * session ends whatever asked for it; the next line is a command */
	bool line_failed;

	/* private */
	struct imap_input_conf conf;
	char *buf;
	size_t bufsize;
	struct imap_arg *argv;
	unsigned nargv;
	uint64_t skip;	/* literal bytes still to throw away */
	bool skip_line; /* then the rest of that line */
	bool want_line; /* the next complete line is a raw LINE event */
};

/* Storage for the command budget (the larger of max_command and
 * big_command) and max_args nodes, then the parser. 0, or -1 when out of
 * memory or the limits are unusable (nothing to free then). */
int imap_input_init(struct imap_input *in, const struct imap_input_conf *conf);

/* New limits between commands (larger after login). Storage grows only
 * when it must. 0, or -1 (nothing changed) mid-command or out of memory. */
int imap_input_reconf(struct imap_input *in,
    const struct imap_input_conf *conf);

void imap_input_free(struct imap_input *in);

/*
 * One event from p[0..n); *used_r bytes were taken, feed the rest next.
 *
 * LITERAL: a synchronizing literal waits for the caller's "+ ..." or
 * imap_input_refuse(); a streamed one is followed by DATA events that
 * total lit.size bytes (they point into p: store them before the next
 * call). BAD and TOOBIG name the command by in->tag; the rest of a bad
 * line is discarded by later calls. After FATAL every call is FATAL.
 */
enum imap_input_ev imap_input_next(struct imap_input *in, const char *p,
    size_t n, size_t *used_r);

/* The next complete line is returned raw as LINE (AUTHENTICATE, DONE). */
void imap_input_want_line(struct imap_input *in);

/* Refuse the synchronizing literal just announced: the command is
 * dropped. 0, or -1 if none is pending. */
int imap_input_refuse(struct imap_input *in);

/* Nothing half read: a command boundary. */
bool imap_input_idle(const struct imap_input *in);

#endif
