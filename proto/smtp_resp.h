/*
 * smtp_resp.h - the client side's reader of SMTP replies (RFC 5321 4.2):
 * what a smarthost answers to the relay's greeting wait, EHLO, STARTTLS,
 * AUTH, MAIL, RCPT, DATA and the end of data, multiline included.
 *
 * Pure and bounded: no I/O, no allocation, any split of the input. A
 * line is at most SMTP_RESP_LINE_MAX bytes and a reply at most
 * SMTP_RESP_LINES lines; every line must carry the same code. The text
 * kept for logs and DSNs is printable ASCII only (anything else becomes
 * '?') and cut at SMTP_RESP_TEXT_MAX. It never takes a byte past the
 * reply's last line, which belongs to the next reply.
 */
#ifndef RG_PROTO_SMTP_RESP_H
#define RG_PROTO_SMTP_RESP_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_RESP_LINE_MAX 2048 /* RFC 5321 says 512; peers exceed it */
#define SMTP_RESP_LINES 128
#define SMTP_RESP_TEXT_MAX 512

/* EHLO keywords the relay cares about (smtp_resp.ext). */
enum smtp_resp_ext {
	SMTP_EXT_STARTTLS = 1 << 0,
	SMTP_EXT_AUTH_PLAIN = 1 << 1,
	SMTP_EXT_PIPELINING = 1 << 2,
	SMTP_EXT_8BITMIME = 1 << 3,
	SMTP_EXT_SMTPUTF8 = 1 << 4,
};

enum smtp_resp_rc {
	SMTP_RESP_MORE = 0, /* every byte taken, the reply is not whole */
	SMTP_RESP_DONE,	    /* a whole reply: code, text, ext */
	SMTP_RESP_INVALID,  /* not a reply (or over a bound): give up */
};

struct smtp_resp {
	unsigned code;			   /* 200..599 when DONE */
	char text[SMTP_RESP_TEXT_MAX + 1]; /* "550 5.1.1 no such user" */
	unsigned lines;
	unsigned ext; /* enum smtp_resp_ext, from the lines after the first */

	/* private */
	char line[SMTP_RESP_LINE_MAX];
	size_t len;
	size_t text_len;
};

/* Ready for the next reply. */
void smtp_resp_init(struct smtp_resp *r);

/* Take bytes of p[0..n) (*used_r of them). DONE: the reply is whole and
 * p[*used_r] starts the next one (call smtp_resp_init() before feeding
 * it). MORE: all of p was taken. INVALID: stop reading this peer. */
enum smtp_resp_rc smtp_resp_feed(struct smtp_resp *r, const char *p, size_t n,
    size_t *used_r);

/* The RFC 3463 code at the start of the text ("5.1.1") into out (at
 * least 16 bytes), or one made of the reply code's class ("5.0.0"). */
void smtp_resp_status(const struct smtp_resp *r, char *out, size_t cap);

#endif
