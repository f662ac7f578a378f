/*
 * imap_parse.h - the server side IMAP command tokenizer (RFC 3501, RFC 9051,
 * LITERAL+/LITERAL- RFC 7888, literal8 RFC 3516), plus what a command
 * handler needs afterwards: argument accessors, sequence sets
 * (imap_seqset.c) and a string writer for responses. FETCH section specs
 * are proto/imap_section.h.
 *
 * The session feeds bytes as they arrive, in any split, and gets back one
 * event at a time: a complete command, a literal announcement that needs a
 * decision, a slice of a large literal to store elsewhere, or a syntax error
 * with a short text for BAD. The parser copies the command into storage the
 * caller gave it at init (capacity = the command budget) and builds a flat
 * argument tree in a caller-given array: nothing is allocated, every limit
 * is explicit, and nothing a peer sends can make it assert.
 *
 * Choices: quoted strings may carry UTF-8 (RFC 9051), never other 8-bit
 * bytes; atoms are 7-bit. Bare LF ends a line like CRLF. Arguments are
 * separated by exactly one space. Literal contents are not inspected.
 */
#ifndef RG_PROTO_IMAP_PARSE_H
#define RG_PROTO_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard ceilings for the per-parser limits below. */
#define IMAP_PARSE_MAX_DEPTH 32	  /* list nesting */
#define IMAP_PARSE_MAX_STREAMS 16 /* streamed literals in one command */

enum imap_parse_status {
	IMAP_PARSE_OK,	    /* p->cmd holds a complete command */
	IMAP_PARSE_AGAIN,   /* every byte given was consumed; feed more */
	IMAP_PARSE_INVALID, /* answer BAD/NO with p->error; already resyncing */
	IMAP_PARSE_FATAL,   /* cannot resync (non-sync literal): disconnect */
	IMAP_PARSE_LITERAL, /* a literal was announced, see p->lit */
	IMAP_PARSE_DATA,    /* p->data[0..data_len) is streamed literal data */
};

/* Why the last INVALID/FATAL happened, for the choice of response code. */
enum imap_parse_error {
	IMAP_ERR_NONE,
	IMAP_ERR_SYNTAX,  /* BAD */
	IMAP_ERR_TOOLONG, /* line or command over its limit: BAD */
	IMAP_ERR_TOOBIG,  /* literal over max_literal: NO [TOOBIG] or BAD */
};

/*
 * Zero means "as large as the storage allows" for max_line, max_command
 * and max_args, "same as max_literal" for max_nonsync and the ceiling for
 * max_depth; max_literal 0 refuses every non-empty literal.
 */
struct imap_limits {
	size_t max_line;	   /* one line, CRLF included */
	size_t max_command;	   /* lines + inline literals; <= storage */
	uint64_t max_literal;	   /* largest literal accepted at all */
	uint64_t max_nonsync;	   /* largest {n+}; 4096 for LITERAL- */
	size_t max_inline_literal; /* larger literals are streamed out */
	unsigned max_args;	   /* argument nodes (lists count); <= array */
	unsigned max_depth;	   /* list nesting, <= IMAP_PARSE_MAX_DEPTH */
	/*
	 * One command may have a larger line and command budget than the
	 * rest: big_name (upper case), such as "ID" before login, whose RFC
	 * 2971 maximum (30 pairs of 1024-octet values, about 64 KiB quoted)
	 * is far above a login line. It is recognised from the tag and name
	 * at the start of the command, so every other command is still cut
	 * at max_line / max_command. NULL: no such command. big_command is
	 * bounded by the storage, big_line by big_command; neither is ever
	 * below its max_ counterpart.
	 */
	const char *big_name;
	size_t big_line, big_command;
};

enum imap_arg_type {
	IMAP_ARG_ATOM = 1, /* also numbers, NIL, flags, seqsets, BODY[...] */
	IMAP_ARG_QUOTED,   /* contents unescaped in place */
	IMAP_ARG_LITERAL,  /* {n}, {n+} or ~{n} */
	IMAP_ARG_LIST,
};

#define IMAP_ARGF_BINARY 0x01	/* literal8: ~{n} */
#define IMAP_ARGF_NONSYNC 0x02	/* {n+} */
#define IMAP_ARGF_STREAMED 0x04 /* data went to the caller; ptr is NULL */

/*
 * One node of the argument tree. Nodes sit in pre-order in one array: a
 * list's children follow it directly, `next` is the distance to the next
 * sibling (0 for the last one). Strings point into the parser's storage and
 * stay valid until the next imap_parse_feed(). A streamed literal has len =
 * its size and `stream` = its order among the command's streamed literals.
 */
struct imap_arg {
	uint8_t type;
	uint8_t flags;
	uint16_t stream;
	uint32_t next;
	uint32_t count; /* LIST: number of direct children */
	const char *ptr;
	size_t len;
};

struct imap_command {
	const char *tag; /* NULL until known; kept for BAD after INVALID */
	size_t tag_len;
	const char *name; /* upper-cased in place, without the UID prefix */
	size_t name_len;
	bool uid;		     /* "UID FETCH" etc. */
	const struct imap_arg *args; /* first top-level argument or NULL */
	unsigned argc;		     /* top-level arguments */
	unsigned nargs;		     /* nodes in the whole tree */
	const char *line;	     /* line mode only: the line without CRLF */
	size_t line_len;
};

/* What IMAP_PARSE_LITERAL announced. */
struct imap_literal {
	uint64_t size;
	bool sync;     /* the client waits for "+ ..." unless refused */
	bool binary;   /* literal8 */
	bool streamed; /* DATA events follow; otherwise kept inline */
	unsigned stream;
};

struct imap_parser {
	/* results, read-only for the caller */
	struct imap_command cmd;
	struct imap_literal lit;
	const char *error; /* static text for BAD after INVALID/FATAL */
	enum imap_parse_error code;
	const char *data; /* IMAP_PARSE_DATA slice, inside the caller's input */
	size_t data_len;

	/* private */
	struct imap_limits lim;
	char *buf;
	size_t cap;
	struct imap_arg *argv;
	unsigned argv_cap;
	int state;
	bool reset_pending, line_mode, need_sep, just_opened, lit_pending;
	bool big; /* this command is lim.big_name: the big budgets apply */
	int stage;
	int skip_st; /* literal sniffing while discarding a bad line */
	size_t used, seg, lit_left;
	unsigned depth, nstreams;
	uint32_t open[IMAP_PARSE_MAX_DEPTH];	 /* list node per level */
	uint32_t last[IMAP_PARSE_MAX_DEPTH + 1]; /* last child, per level */
};

/*
 * Set up p over caller storage: buf[0..bufsize) holds the command text and
 * inline literals, argv[0..nargv) the argument tree. Limits above the
 * storage are lowered to it. Both regions must outlive p; nothing else is
 * owned. Returns 0, or -1 if the storage is too small to be useful.
 */
int imap_parse_init(struct imap_parser *p, const struct imap_limits *lim,
    char *buf, size_t bufsize, struct imap_arg *argv, unsigned nargv);

/*
 * Change limits and storage between commands (e.g. larger after login).
 * Returns -1 (nothing changed) if a command is half read.
 */
int imap_parse_set_limits(struct imap_parser *p, const struct imap_limits *lim,
    char *buf, size_t bufsize, struct imap_arg *argv, unsigned nargv);

/*
 * Consume input until one event. *used_r says how many bytes of data were
 * taken; call again with the rest. Results (cmd, error, lit, data) are
 * valid until the next call.
 *
 * OK: p->cmd is complete. INVALID: the command is dropped; answer
 * "<tag> BAD <error>" (or "* BAD" when cmd.tag is NULL); the rest of the
 * line is discarded silently by later calls. FATAL: disconnect; every
 * later call returns FATAL. LITERAL: if lit.sync the caller sends a
 * continuation ("+ OK") or calls imap_parse_refuse(); if lit.streamed the
 * next calls return DATA slices totalling lit.size bytes, which the caller
 * stores (they point into data, not into the parser). A synchronizing
 * literal over max_literal is INVALID (code TOOBIG) and the client will not
 * send it; a non-synchronizing one over max_nonsync/max_literal is FATAL,
 * as is one announced on a line that is being discarded.
 */
enum imap_parse_status imap_parse_feed(struct imap_parser *p, const char *data,
    size_t len, size_t *used_r);

/*
 * Refuse the synchronizing literal just announced: the command is dropped
 * and the parser waits for a new one (the client sends no literal after a
 * tagged NO/BAD). Returns -1 if no synchronizing literal is pending.
 */
int imap_parse_refuse(struct imap_parser *p);

/*
 * The next OK event carries one raw line in cmd.line instead of a command
 * (AUTHENTICATE responses, IDLE's DONE). Bounded by max_line.
 */
void imap_parse_want_line(struct imap_parser *p);

/* True between commands (nothing buffered, no literal in progress). */
bool imap_parse_idle(const struct imap_parser *p);

/* Tree navigation and argument checks for command handlers. */
static inline const struct imap_arg *
imap_arg_next(const struct imap_arg *a)
{
	return a != NULL && a->next != 0 ? a + a->next : NULL;
}

static inline const struct imap_arg *
imap_arg_child(const struct imap_arg *a)
{
	return a != NULL && a->type == IMAP_ARG_LIST && a->count > 0 ? a + 1 :
								       NULL;
}

/* Name comparison for dispatch: word is upper case. */
bool imap_command_is(const struct imap_command *cmd, const char *word);
/* An atom equal to word, ASCII case-insensitively. */
bool imap_arg_atom_is(const struct imap_arg *a, const char *word);
/* An unquoted NIL. */
bool imap_arg_is_nil(const struct imap_arg *a);
/* A string: quoted or an inline (not streamed) literal. */
bool imap_arg_is_string(const struct imap_arg *a);
/* An astring: atom or string. */
bool imap_arg_is_astring(const struct imap_arg *a);
/* number (RFC 3501): digits only, fits 32 bits. 0 or -1. */
int imap_arg_number(const struct imap_arg *a, uint32_t *n_r);
/* number64 (RFC 9051): digits only, at most 2^63-1. 0 or -1. */
int imap_arg_number64(const struct imap_arg *a, uint64_t *n_r);

/*
 * Sequence sets (RFC 9051 sequence-set, and "$" for a saved search result).
 * `*` is stored as IMAP_SEQ_STAR (0 is never a valid number); ranges keep
 * the order they were written in ("*:1" stays lo = STAR, hi = 1).
 */
#define IMAP_SEQ_STAR 0u

struct imap_range {
	uint32_t lo, hi;
};

struct imap_seqset {
	struct imap_range *ranges; /* caller storage */
	size_t cap;
	size_t count;
	bool saved;    /* "$" */
	bool resolved; /* sorted and merged, see imap_seqset_resolve() */
};

/*
 * Parse s[0..len) into set (ranges and cap set by the caller). Returns 0,
 * or -1 with *error_r ("Invalid sequence set", or "Sequence set too long"
 * when cap ranges are not enough). Numbers are 1..4294967295.
 */
int imap_seqset_parse(struct imap_seqset *set, const char *s, size_t len,
    const char **error_r);

/* Whether n is in the set, with `*` standing for star (the largest number
 * in use). A "$" set contains nothing: the caller resolves it. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n,
    uint32_t star);

/*
 * Replace `*` by star, order each range, sort and merge: afterwards ranges
 * are disjoint and ascending and imap_seqset_contains() can ignore star.
 * With star == 0 (empty mailbox) ranges naming only `*` disappear.
 */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t star);

/*
 * Response writing. The sink appends bytes and returns 0, or -1 to stop
 * (the writer then returns -1 too).
 */
typedef int imap_write_fn(void *ctx, const char *p, size_t len);

#define IMAP_WRITE_UTF8 0x01 /* UTF8=ACCEPT: valid UTF-8 may be quoted */

/* An astring: atom when safe (never "NIL"), else quoted, else literal. */
int imap_write_astring(imap_write_fn *w, void *ctx, const char *s, size_t len,
    unsigned flags);
/* A string: quoted when possible, else a literal. */
int imap_write_string(imap_write_fn *w, void *ctx, const char *s, size_t len,
    unsigned flags);
/* An nstring: NIL for s == NULL, else as imap_write_string(). */
int imap_write_nstring(imap_write_fn *w, void *ctx, const char *s, size_t len,
    unsigned flags);

#endif
