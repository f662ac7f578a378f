/*
 * smtp_data.h - the SMTP/LMTP DATA stream both ways (RFC 5321 4.1.1.4 and
 * 4.5.2): a reader that takes the bytes a client sends after "354" and
 * hands out the message, and a writer (smtp_stuff_*) that turns a stored
 * message into what is sent after DATA or in a POP3 RETR/TOP answer.
 *
 * Pure: no I/O, no allocation, any split of the input. The reader hands
 * out slices of the caller's input (no copy) or of a static CRLF; it
 * never takes a byte after the end-of-data line, which is the next
 * command's.
 *
 * No SMTP smuggling (CVE-2023-51764 family; PRODUCT.md section 6): only
 * CR LF "." CR LF ends the data (the first CRLF may be the one that ended
 * the DATA line). Bare LF, bare CR, "\n.\n", "\r.\r", "\n.\r\n",
 * "\r\n.\n" never end it, and a dot after a bare LF or CR is not at the
 * start of a line (it is not unstuffed either). Every bare CR and bare LF
 * is counted, and what is handed out never holds one:
 *   SMTP_DATA_REJECT     from the first one on, nothing more is handed
 *                        out (the reader keeps reading to the end so the
 *                        next command is found); smtp_data_error() says
 *                        550 5.5.2 at the end. The default.
 *   SMTP_DATA_NORMALISE  a bare LF is handed out as CRLF, a bare CR is
 *                        dropped; the message goes on. (A session that
 *                        wants Postfix's harsher way can also answer and
 *                        close as soon as d->bare_lf or d->bare_cr moves.)
 * So the bytes handed out have CRLF line ends only; a writer that stuffs
 * them (smtp_stuff_put) can never produce an early end-of-data for the
 * next hop.
 */
#ifndef RG_PROTO_SMTP_DATA_H
#define RG_PROTO_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/smtp_reply.h"

#define SMTP_DATA_LINE_MAX 1000 /* RFC 5321 4.5.3.1.6, CRLF included */
#define SMTP_STUFF_END_MAX 5	/* the most smtp_stuff_end() writes */

enum smtp_data_mode {
	SMTP_DATA_REJECT = 0,
	SMTP_DATA_NORMALISE,
};

struct smtp_data_conf {
	enum smtp_data_mode mode;
	/* past this many message bytes nothing more is handed out and
	 * too_big is set (552 at the end); 0: no limit */
	uint64_t max_size;
	/* a longer line (CRLF included, the stuffing dot not) is counted
	 * in long_lines; 0: SMTP_DATA_LINE_MAX */
	uint64_t max_line;
};

enum smtp_data_ev {
	SMTP_DATA_MORE = 0, /* every byte given was taken; give more */
	SMTP_DATA_BYTES,    /* message bytes: *out_r[0..*out_len_r) */
	SMTP_DATA_END,	    /* the end-of-data line was taken */
};

struct smtp_data {
	/* What the message was like so far; read them at any time. */
	uint64_t size;	     /* message bytes (unstuffed, with the CRLF a
			      * bare LF becomes), including those not
			      * handed out */
	uint64_t bare_cr;    /* CRs not followed by LF */
	uint64_t bare_lf;    /* LFs not preceded by CR */
	uint64_t nul;	     /* NUL bytes (RFC 6152 forbids them in 8bit) */
	uint64_t long_lines; /* lines over max_line */
	uint64_t longest;    /* the longest finished line, CRLF included */
	bool eight_bit;	     /* a byte over 127 */
	bool too_big;	     /* size went past max_size */
	bool discarding;     /* bytes are no longer handed out */
	bool done;	     /* END was returned */

	/* private */
	struct smtp_data_conf conf;
	int state;
	uint64_t line_len;
	bool line_long;
};

/* Ready for one message (after the 354). conf is copied. */
void smtp_data_init(struct smtp_data *d, const struct smtp_data_conf *conf);

/*
 * One step over p[0..n): *used_r bytes were taken (keep the rest and give
 * it again, with what arrives next). BYTES: *out_r[0..*out_len_r) are
 * message bytes, pointing into p or to static memory: store them before
 * p changes. END: the message is whole (it ended with the CRLF before the
 * end-of-data line); p[*used_r] is the next command's first byte. After
 * END, every call is END with nothing taken. MORE: all of p was taken
 * (n == 0 included).
 */
enum smtp_data_ev smtp_data_next(struct smtp_data *d, const char *p, size_t n,
    size_t *used_r, const char **out_r, size_t *out_len_r);

/* Hand out nothing more (the session has stopped storing: a write error,
 * a quota); the reader still finds the end. */
void smtp_data_discard(struct smtp_data *d);

/*
 * What the session answers at the end when the reader alone refuses the
 * message, or NULL: 552 5.3.4 when too_big, else 550 5.5.2 for a bare CR
 * or LF in REJECT mode. Line lengths, NULs and 8-bit data are the
 * session's policy (the counters above).
 */
const struct smtp_reply *smtp_data_error(const struct smtp_data *d);

/*
 * The writer: a message (any line ends) into the DATA wire form: CRLF line
 * ends (a bare LF becomes CRLF, a bare CR is dropped, as the reader's
 * NORMALISE does), a "." at the start of a line doubled, and at the end a
 * CRLF if the last line had none and ".\r\n".
 */
struct smtp_stuff {
	int state; /* private */
};

void smtp_stuff_init(struct smtp_stuff *st);

/*
 * Encode src[0..n) into dst (cap bytes, at least 2 to be sure of
 * progress). Returns the bytes written; *used_r source bytes were taken
 * (call again with the rest when dst was full). Never writes past cap.
 */
size_t smtp_stuff_put(struct smtp_stuff *st, const void *src, size_t n,
    size_t *used_r, void *dst, size_t cap);

/* The end of the message: writes 3 to SMTP_STUFF_END_MAX bytes, or
 * nothing (returns 0) when cap is too small. */
size_t smtp_stuff_end(struct smtp_stuff *st, void *dst, size_t cap);

#endif
