/*
 * upstream_resp.h - the reader of a back end's answers during ringgate's
 * back-end login (proxy/upstream_login.c), for IMAP (greeting, untagged,
 * continuation and tagged lines with response codes), POP3 (+OK / -ERR /
 * "+ " challenges, dot-terminated multi-line answers such as CAPA) and
 * SMTP (multi-line reply codes).
 *
 * The back end is not trusted: every line is at most UR_LINE_MAX bytes,
 * one reply at most UR_LINES_MAX lines and UR_BYTES_MAX bytes, a NUL byte
 * or an IMAP literal ends the reading (nothing during a login needs one),
 * and any syntax it does not expect is INVALID, never a crash or a wait.
 * Pure: no I/O, no allocation, any split of the input gives the same
 * lines. A line's slices point into the reader and live until the next
 * feed.
 */
#ifndef RG_PROTO_UPSTREAM_RESP_H
#define RG_PROTO_UPSTREAM_RESP_H

#include <stdbool.h>
#include <stddef.h>

#define UR_LINE_MAX 8192    /* one line, CRLF included */
#define UR_LINES_MAX 256    /* lines in one reply */
#define UR_BYTES_MAX 131072 /* bytes in one reply */
#define UR_TAG_MAX 32

enum ur_proto { UR_IMAP, UR_POP3, UR_SMTP };

/* What the caller waits for. */
enum ur_expect {
	/* IMAP: one untagged line (the greeting); POP3: one status line or a
	 * "+ " challenge; SMTP: one reply, multi-line included. */
	UR_ONE,
	/* IMAP: untagged lines, then the tagged answer to the tag given to
	 * upstream_resp_begin() or a continuation; others as UR_ONE. */
	UR_TAGGED,
	/* POP3: "+OK" and a body ended by "." (CAPA), or one "-ERR" line;
	 * others as UR_ONE. */
	UR_MULTI,
};

enum ur_rc {
	UR_MORE = 0, /* every byte taken, no whole line yet */
	UR_LINE,     /* a line of the reply; more lines follow */
	UR_DONE,     /* the reply's last line: the reply is whole */
	UR_INVALID,  /* broken or over a limit (error, err): stop reading */
};

enum ur_kind {
	UR_K_NONE = 0,
	UR_K_UNTAGGED, /* IMAP "* ..." */
	UR_K_TAGGED,   /* IMAP "tag OK|NO|BAD ..." */
	UR_K_CONT,     /* IMAP or POP3 "+ text" continuation / challenge */
	UR_K_STATUS,   /* POP3 "+OK" / "-ERR" */
	UR_K_BODY,     /* POP3 a multi-line answer's line (unstuffed) */
	UR_K_END,      /* POP3 the "." ending a multi-line answer */
	UR_K_SMTP,     /* SMTP "250-..." / "250 ..." */
};

enum ur_status {
	UR_S_NONE = 0, /* untagged data ("* CAPABILITY ..."), body, SMTP */
	UR_S_OK,       /* IMAP OK, POP3 +OK */
	UR_S_NO,       /* IMAP NO, POP3 -ERR */
	UR_S_BAD,
	UR_S_PREAUTH,
	UR_S_BYE,
};

enum ur_err {
	UR_E_NONE = 0,
	UR_E_SYNTAX,  /* not what the protocol allows here */
	UR_E_LINE,    /* a line longer than UR_LINE_MAX */
	UR_E_LINES,   /* more than UR_LINES_MAX lines */
	UR_E_BYTES,   /* more than UR_BYTES_MAX bytes */
	UR_E_NUL,     /* a NUL byte */
	UR_E_LITERAL, /* an IMAP literal */
};

/* A slice of the current line; p is NULL when absent. */
struct ur_slice {
	const char *p;
	size_t len;
};

struct upstream_resp {
	/* The current line (after UR_LINE / UR_DONE), valid until the next
	 * feed. line: without CRLF. */
	enum ur_kind kind;
	enum ur_status status;
	struct ur_slice line;
	struct ur_slice tag;  /* IMAP tagged */
	struct ur_slice code; /* inside "[...]": IMAP and POP3 response code */
	/* IMAP: after status and code, or the untagged data ("CAPABILITY
	 * IMAP4rev1 ..."); POP3: after status and code, the body line, the
	 * challenge; SMTP: after "250-" / "250 "; continuation: after "+ ". */
	struct ur_slice text;
	unsigned smtp_code; /* SMTP: 200..599 */
	unsigned lines;	    /* lines so far in this reply */

	enum ur_err err;   /* after UR_INVALID */
	const char *error; /* after UR_INVALID: static text for logs */

	/* private */
	enum ur_proto proto;
	enum ur_expect expect;
	bool in_body; /* POP3 multi-line after +OK */
	bool done;    /* the last feed ended a reply: the next starts anew */
	bool failed;
	size_t bytes;
	size_t len;
	char want_tag[UR_TAG_MAX + 1];
	char buf[UR_LINE_MAX];
};

/* A reader for proto, expecting the first reply as UR_ONE. */
void upstream_resp_init(struct upstream_resp *r, enum ur_proto proto);

/* Wait for the next reply as expect; tag: IMAP UR_TAGGED's tag (at most
 * UR_TAG_MAX bytes, else it is cut). Call it between replies; without it
 * a reply after UR_DONE is read as the previous one was. */
void upstream_resp_begin(struct upstream_resp *r, enum ur_expect expect,
    const char *tag);

/* Take bytes of p[0..n); *used_r says how many. UR_LINE / UR_DONE stop
 * right after the line's LF: the rest of p is the caller's to feed again
 * (after UR_DONE it belongs to whatever comes next, e.g. bytes to relay).
 * UR_MORE: all of p was taken. UR_INVALID is final (it stays so). */
enum ur_rc upstream_resp_feed(struct upstream_resp *r, const char *p, size_t n,
    size_t *used_r);

/* True if an IMAP capability list (space separated atoms, e.g. the
 * text of an untagged CAPABILITY or a CAPABILITY response code without
 * its first word) holds cap, case-insensitively. */
bool upstream_resp_has_atom(const char *list, size_t len, const char *cap);

const char *upstream_resp_err_name(enum ur_err e);

#endif
