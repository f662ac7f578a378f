/*
 * smtp_cmd.h - SMTP, ESMTP and LMTP command lines, server side: RFC 5321,
 * RFC 2033 (LHLO), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 3030 (BDAT,
 * BINARYMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN), RFC 4954 (AUTH),
 * RFC 3207 (STARTTLS), RFC 1985 (ETRN) and Postfix's XCLIENT.
 *
 * One call parses one line that the session's line reader has cut, without
 * its CRLF (the reader enforces the line limit: 512 octets by RFC 5321
 * section 4.5.3.1.4, or the configured one), into a verb and its
 * arguments. Pure: no I/O, no allocation. Results are slices into the
 * line, or into a bounded area inside struct smtp_cmd for what had to be
 * decoded (xtext, a quoted local part); they stay valid until the next
 * call on the same struct and while the line stays where it is. A refused
 * line carries the reply the session sends (struct smtp_reply, static).
 *
 * Strict where two readers could disagree: verbs and keywords are
 * case-insensitive, nothing else is loose. Words are separated by exactly
 * one space, with none at the end. No control character (NUL, CR, LF,
 * TAB, DEL) anywhere. 8-bit bytes only in paths, only when SMTPUTF8 is
 * offered and only as well-formed UTF-8; a MAIL needs its own SMTPUTF8
 * parameter (RCPT: the transaction's) for them, else 553 5.6.7. Paths are
 * RFC 5321 section 4.1.2's: a dot-string or quoted-string local part, a
 * domain or an [IPv4] / [IPv6:...] address literal (no general literals),
 * source routes accepted and dropped, <> only on MAIL, <Postmaster> only
 * on RCPT, local part <= 64 octets, domain <= 255, path <= 256 with its
 * brackets (section 4.5.3.1).
 */
#ifndef RG_PROTO_SMTP_CMD_H
#define RG_PROTO_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/sasl_syntax.h"
#include "proto/smtp_reply.h"

#define SMTP_MECH_MAX SASL_SYNTAX_MECH_MAX
#define SMTP_LOCAL_MAX 64	   /* RFC 5321 4.5.3.1.1, as written */
#define SMTP_DOMAIN_MAX 255	   /* 4.5.3.1.2 */
#define SMTP_PATH_MAX 256	   /* 4.5.3.1.3, "<" and ">" included */
#define SMTP_PARAMS_MAX 64	   /* ceiling of smtp_cmd_conf.max_params */
#define SMTP_ENVID_MAX 100	   /* RFC 3461 4.4, encoded */
#define SMTP_XTEXT_PARAM_MAX 500   /* AUTH= and ORCPT= values, encoded */
#define SMTP_XCLIENT_VALUE_MAX 255 /* one XCLIENT value, encoded */
#define SMTP_CMD_DEC_MAX 2048	   /* decoded values of one line, see .c */

enum smtp_verb {
	SMTP_UNKNOWN = 0,
	SMTP_EHLO,
	SMTP_HELO,
	SMTP_LHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_HELP,
	SMTP_AUTH,
	SMTP_STARTTLS,
	SMTP_XCLIENT,
	SMTP_ETRN,
	SMTP_TURN,
};

enum smtp_cmd_rc {
	SMTP_CMD_OK = 0,  /* cmd->verb and its fields below */
	SMTP_CMD_INVALID, /* answer cmd->err; cmd->verb is set if known */
};

/* What the session offers (its EHLO/LHLO answer): a MAIL or RCPT
 * parameter of an extension not offered is answered 555. */
enum smtp_ext {
	SMTP_EXT_SIZE = 1 << 0,	      /* SIZE= */
	SMTP_EXT_8BITMIME = 1 << 1,   /* BODY=7BIT / 8BITMIME */
	SMTP_EXT_BINARYMIME = 1 << 2, /* BODY=BINARYMIME */
	SMTP_EXT_SMTPUTF8 = 1 << 3,   /* SMTPUTF8, UTF-8 in paths */
	SMTP_EXT_AUTH = 1 << 4,	      /* AUTH= on MAIL */
	SMTP_EXT_DSN = 1 << 5,	      /* RET= ENVID= NOTIFY= ORCPT= */
};

struct smtp_cmd_conf {
	unsigned ext;	     /* enum smtp_ext bits */
	unsigned max_params; /* per MAIL/RCPT/XCLIENT line; 0: 16 */
	/* accept one space after "FROM:"/"TO:" (some old clients send it;
	 * RFC 5321 has none) */
	bool space_after_colon;
};

/* smtp_cmd_parse() flags: the session's state the grammar depends on */
enum smtp_cmd_flags {
	SMTP_CMD_TXN_UTF8 = 1 << 0, /* this transaction's MAIL had SMTPUTF8 */
};

struct smtp_str {
	const char *p; /* NULL when absent */
	size_t len;
};

struct smtp_path {
	/* "local@domain" as written, the source route dropped; empty for
	 * <>, "Postmaster" for <Postmaster> */
	struct smtp_str mailbox;
	struct smtp_str local;	/* the local part, quotes and \ removed */
	struct smtp_str domain; /* as written: a name or "[...]"; empty for
				 * <> and <Postmaster> */
	bool null;		/* MAIL FROM:<> */
	bool postmaster;	/* RCPT TO:<Postmaster> (any case, no domain) */
	bool quoted;		/* the local part was a quoted-string */
	bool literal;		/* the domain is an address literal */
	bool utf8;		/* it holds UTF-8 (SMTPUTF8) */
	bool route;		/* a source route was given (and dropped) */
};

enum smtp_body {
	SMTP_BODY_NONE = 0, /* no BODY= */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

enum smtp_ret {
	SMTP_RET_NONE = 0,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

enum smtp_notify {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

/* The parameters a MAIL or RCPT line gave (bits of smtp_params.seen). */
enum smtp_param {
	SMTP_P_SIZE = 1 << 0,
	SMTP_P_BODY = 1 << 1,
	SMTP_P_SMTPUTF8 = 1 << 2,
	SMTP_P_AUTH = 1 << 3,
	SMTP_P_RET = 1 << 4,
	SMTP_P_ENVID = 1 << 5,
	SMTP_P_NOTIFY = 1 << 6,
	SMTP_P_ORCPT = 1 << 7,
};

struct smtp_params {
	unsigned seen;		    /* enum smtp_param bits */
	unsigned count;		    /* parameters on the line */
	uint64_t size;		    /* SIZE=; UINT64_MAX when it does not fit */
	enum smtp_body body;	    /* BODY= */
	enum smtp_ret ret;	    /* RET= */
	unsigned notify;	    /* NOTIFY=: enum smtp_notify bits */
	bool auth_null;		    /* AUTH=<> (the submitter is not known) */
	struct smtp_str auth;	    /* AUTH=, decoded: a Mailbox, or "<>" */
	struct smtp_str envid;	    /* ENVID=, decoded: printable, no space */
	struct smtp_str orcpt_type; /* ORCPT= address type ("rfc822") */
	struct smtp_str orcpt;	    /* ORCPT= address, decoded: printable */
};

/* XCLIENT attributes (Postfix XCLIENT_README) */
enum smtp_xattr {
	SMTP_XA_NAME = 0, /* the client's host name */
	SMTP_XA_ADDR,	  /* its address: "1.2.3.4" or "IPV6:..." */
	SMTP_XA_PORT,
	SMTP_XA_PROTO, /* SMTP or ESMTP */
	SMTP_XA_HELO,
	SMTP_XA_LOGIN, /* the SASL login name */
	SMTP_XA_DESTADDR,
	SMTP_XA_DESTPORT,
	SMTP_XA_COUNT,
};

enum smtp_xval {
	SMTP_XV_ABSENT = 0,  /* not on the line */
	SMTP_XV_VALUE,	     /* see smtp_xclient.val */
	SMTP_XV_UNAVAILABLE, /* [UNAVAILABLE] */
	SMTP_XV_TEMPUNAVAIL, /* [TEMPUNAVAIL] (NAME only) */
};

struct smtp_xclient {
	enum smtp_xval state[SMTP_XA_COUNT];
	/* decoded values; ADDR and DESTADDR without their "IPV6:" */
	struct smtp_str val[SMTP_XA_COUNT];
	int family, destfamily;	 /* ADDR, DESTADDR: AF_INET or AF_INET6 */
	uint16_t port, destport; /* PORT, DESTPORT */
};

struct smtp_cmd {
	enum smtp_verb verb;
	const struct smtp_reply *err; /* INVALID: what to answer */
	/* INVALID: the part of the line at fault, for the log (peer bytes:
	 * escape them) */
	struct smtp_str bad;

	/* EHLO, HELO, LHLO: the domain or address literal as written;
	 * VRFY, EXPN, ETRN: the argument; HELP, NOOP: the optional one */
	struct smtp_str arg;
	bool literal; /* EHLO, HELO, LHLO: arg is an address literal */

	struct smtp_path path;	   /* MAIL, RCPT */
	struct smtp_params params; /* MAIL, RCPT */

	char mech[SMTP_MECH_MAX + 1]; /* AUTH: the mechanism, upper-cased */
	/* AUTH: the initial response as written (base64 characters, not
	 * decoded); "=" (an empty one) gives len 0; p NULL: none given */
	struct smtp_str ir;

	uint64_t chunk; /* BDAT: the chunk size */
	bool last;	/* BDAT: LAST */

	struct smtp_xclient xclient;

	/* private: decoded values live here */
	char dec[SMTP_CMD_DEC_MAX];
	size_t dec_used;
};

/*
 * Parse line[0..len) (no CRLF) into *cmd, which is reset first. flags:
 * enum smtp_cmd_flags. Returns SMTP_CMD_OK, or SMTP_CMD_INVALID with
 * cmd->err the answer:
 *   500 5.5.2  unknown verb, empty line, a control character
 *   501 5.5.4  bad arguments or parameters, too many parameters, a
 *              duplicate, a bad xtext, words not single-spaced
 *   501 5.1.7  MAIL: a reverse-path that is not RFC 5321's
 *   501 5.1.3  RCPT: a forward-path that is not (also <>)
 *   553 5.6.7  UTF-8 in a path without SMTPUTF8 on the MAIL
 *   555 5.5.4  a parameter not known, not offered, or not of this verb
 * The verb is known from the first word alone, so the session can count
 * or log the command even when its arguments are refused. After an
 * INVALID BDAT the session cannot know how many bytes follow: close.
 */
enum smtp_cmd_rc smtp_cmd_parse(struct smtp_cmd *cmd,
    const struct smtp_cmd_conf *conf, unsigned flags, const char *line,
    size_t len);

/* The verb in upper case ("EHLO"); "" for SMTP_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb verb);

#endif
