/*
 * pop3_cmd.h - POP3 command lines, server side: RFC 1939 (USER, PASS,
 * APOP, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL), RFC 2449
 * (CAPA), RFC 5034 (AUTH), RFC 2595 (STLS).
 *
 * One call parses one line the session's line reader has cut, without its
 * CRLF (the reader enforces the line limit: 255 octets by RFC 2449, more
 * for AUTH's initial response, RFC 5034 4). Pure: no I/O, no allocation;
 * results are slices into the line, valid while it stays where it is.
 * Which commands a state allows is the session's business.
 *
 * Keywords are case-insensitive, arguments are separated by exactly one
 * space (none at the end), each at most 255 octets (RFC 2449 4; the AUTH
 * initial response excepted); no NUL, CR, LF or other control character
 * (PASS takes the rest of the line, spaces and 8-bit bytes included, a
 * TAB too; USER and APOP's name take 8-bit bytes). Message numbers are
 * 1 to 2^31-1 in plain decimal (no sign, no leading zero), TOP's line
 * count 0 to 2^31-1.
 */
#ifndef RG_PROTO_POP3_CMD_H
#define RG_PROTO_POP3_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/sasl_syntax.h"
#define POP3_ARG_MAX 255 /* RFC 2449 4 */
#define POP3_MECH_MAX SASL_SYNTAX_MECH_MAX
#define POP3_NUM_MAX 0x7fffffffu

enum pop3_verb {
	POP3_UNKNOWN = 0,
	POP3_USER,
	POP3_PASS,
	POP3_APOP,
	POP3_AUTH,
	POP3_STAT,
	POP3_LIST,
	POP3_RETR,
	POP3_DELE,
	POP3_NOOP,
	POP3_RSET,
	POP3_QUIT,
	POP3_TOP,
	POP3_UIDL,
	POP3_CAPA,
	POP3_STLS,
};

enum pop3_cmd_rc {
	POP3_CMD_OK = 0,
	POP3_CMD_INVALID, /* answer "-ERR <cmd->error>"; verb set if known */
};

struct pop3_str {
	const char *p; /* NULL when absent */
	size_t len;
};

struct pop3_cmd {
	enum pop3_verb verb;
	const char *error; /* INVALID: static text for "-ERR " */
	/*
	 * USER: the name; PASS: the password (the rest of the line); APOP:
	 * the name; AUTH: the mechanism (also upper-cased in mech), absent
	 * for a bare AUTH (RFC 5034: list the mechanisms).
	 */
	struct pop3_str arg;
	/* APOP: the digest (32 lower-case hex digits); AUTH: the initial
	 * response as written ("=" gives len 0), absent when none */
	struct pop3_str arg2;
	bool has_msg;	/* LIST and UIDL: a message number was given */
	uint32_t msg;	/* LIST, UIDL (if has_msg), RETR, DELE, TOP */
	uint32_t lines; /* TOP */
	char mech[POP3_MECH_MAX + 1];
};

/*
 * Parse line[0..len) (no CRLF) into *cmd (reset first). Returns
 * POP3_CMD_OK, or POP3_CMD_INVALID with cmd->error set (and cmd->verb
 * when the keyword was known, so the session can count or log it). The
 * error texts hold no peer bytes.
 */
enum pop3_cmd_rc pop3_cmd_parse(struct pop3_cmd *cmd, const char *line,
    size_t len);

/* The keyword in upper case ("RETR"); "" for POP3_UNKNOWN. */
const char *pop3_verb_name(enum pop3_verb verb);

/*
 * The line reader both POP3 sides share (login/pop3_login.c before login,
 * backend/pop3_session.c after): cuts CRLF lines out of what arrived,
 * any split of the input. A line longer than max octets (CRLF not
 * counted) is reported once, as soon as it is known, and its bytes up to
 * its LF are dropped; a line that ends in a bare LF is reported whole.
 */
enum pop3_line_ev {
	POP3_LINE_MORE = 0, /* *used_r bytes taken (dropped): call again
			     * if that is not 0, else wait for more */
	POP3_LINE_OK,	    /* p[0..*len_r) is a line (CRLF not included) */
	POP3_LINE_LONG,	    /* a line over max: answer "-ERR", once */
	POP3_LINE_BARE_LF,  /* a line ended with LF alone: answer "-ERR" */
};

struct pop3_line {
	bool skip; /* dropping the rest of a line over max */
};

/* One step over p[0..n): take *used_r bytes from the input (for OK the
 * line is p[0..*len_r) and lies inside them; read it before the input
 * moves). */
enum pop3_line_ev pop3_line_next(struct pop3_line *lr, const char *p, size_t n,
    size_t max, size_t *used_r, size_t *len_r);

#endif
