/*
 * smtp_meter.h - watches a relayed SMTP submission session from the
 * side, without holding or changing a byte: which client bytes are
 * commands and which are message content (DATA up to the end-of-data
 * line, BDAT chunks by their announced size), and which of the server's
 * replies answers which of them, so ringgate can count the messages a
 * user submitted, their sizes and whether the store took them.
 *
 * The relay stays byte-transparent: the meter is fed copies of what
 * passed each way and keeps a few dozen bytes of state, whatever the
 * lines or messages. It trusts nobody: a client that breaks the rules
 * (content before the 354, a bogus BDAT size) can only make its own
 * counts wrong; the store still parses and enforces everything.
 *
 * Numbering: every command line, every end-of-data and every BDAT
 * command expects exactly one final reply (RFC 5321 §4.2, RFC 2920,
 * RFC 3030), so replies are matched to what asked for them by count.
 */
#ifndef RG_PROTO_SMTP_METER_H
#define RG_PROTO_SMTP_METER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_METER_LINE 40 /* command bytes kept: "BDAT <20 digits> LAST" */
#define SMTP_METER_ENDS 8  /* messages waiting for their reply */

enum smtp_meter_state {
	SMTP_METER_CMD = 0, /* client lines are commands */
	SMTP_METER_DATA,    /* content after DATA, up to <CRLF>.<CRLF> */
	SMTP_METER_BDAT,    /* a BDAT chunk's bytes */
};

struct smtp_meter {
	enum smtp_meter_state state;
	/* client side */
	char line[SMTP_METER_LINE];
	size_t nline;	  /* bytes of the current line kept */
	uint8_t eod;	  /* how much of "\r\n.\r\n" was just seen */
	uint64_t left;	  /* BDAT: chunk bytes still to come */
	bool last;	  /* BDAT: this chunk ends the message */
	uint64_t size;	  /* content bytes of the message so far */
	uint64_t asked;	  /* final replies the client asked for so far */
	uint64_t data_at; /* the DATA command's reply number (0: none) */
	/* server side */
	char code[4]; /* the reply line's first bytes */
	size_t ncode;
	uint64_t answered; /* final replies seen */
	/* messages whose end went out, waiting for their reply */
	struct {
		uint64_t reply;
		uint64_t size;
	} ends[SMTP_METER_ENDS];
	unsigned nends;
	/* results */
	uint64_t accepted, refused; /* messages, by their final reply */
	uint64_t accepted_bytes;    /* content bytes of the accepted ones */
	uint64_t unmatched;	    /* ends over SMTP_METER_ENDS: not judged */
	uint64_t largest;	    /* the biggest message sent */
	bool quit;		    /* the client sent QUIT as a command */
};

void smtp_meter_init(struct smtp_meter *m);
/* Bytes the client sent toward the server. */
void smtp_meter_client(struct smtp_meter *m, const char *p, size_t n);
/* Bytes the server sent toward the client. */
void smtp_meter_server(struct smtp_meter *m, const char *p, size_t n);

#endif
