/*
 * imap_search.h - the SEARCH program of ringstore (RFC 3501 section
 * 6.4.4) as a tree of keys, and its parser.
 *
 * The parser is pure: it reads the argument tree proto/imap_parse.c built
 * for a SEARCH command and either only checks it or builds the program,
 * which owns copies of every string and set it needs, so it outlives the
 * parser's storage and can be evaluated on another thread
 * (imap_cmd_search.c evaluates it on the store pool). It never touches a
 * session, a folder or the disk, and every bound (keys, nesting, ranges)
 * is fixed here, whatever the input.
 */
#ifndef RG_BACKEND_IMAP_SEARCH_H
#define RG_BACKEND_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/imap_parse.h"

#define IMAP_SEARCH_MAX_KEYS 256   /* nodes of one search program */
#define IMAP_SEARCH_MAX_DEPTH 32   /* nesting of NOT / OR / parentheses */
#define IMAP_SEARCH_MAX_RANGES 256 /* ranges of one sequence or UID set */

/* Key i's children are child, keys[child].next, ... (-1 ends); OR has
 * exactly two, NOT one, AND any number (none: ALL). Index 0 is the
 * program's top AND. */
enum skey_op {
	SK_AND = 1, /* children in order; an empty AND is ALL */
	SK_OR,
	SK_NOT,
	SK_SEQ,	      /* ranges against sequence numbers */
	SK_UID,	      /* ranges against UIDs */
	SK_FLAG,      /* (flags & mask) == want */
	SK_KEYWORD,   /* value is a keyword; mask its letters, set when
		       * the program runs on the folder */
	SK_UNKEYWORD, /* the same, not set */
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE, /* internal date, by UTC day */
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE, /* Date: header, by its own day */
	SK_SENTON,
	SK_SENTSINCE,
	SK_HEADER,  /* name (NULL: any field) contains value */
	SK_ADDRESS, /* FROM/TO/CC/BCC: an address of field name does */
	SK_BODY,
	SK_TEXT,
};

struct skey {
	enum skey_op op;
	int child, next;     /* indexes into the program, -1 for none */
	unsigned mask, want; /* SK_FLAG; mask also SK_(UN)KEYWORD */
	uint64_t n;	     /* size, or a day number for dates */
	char *name;	     /* HEADER field name, owned */
	char *value;	     /* string to find, owned */
	size_t vlen;
	struct imap_range *ranges; /* SEQ / UID, owned */
	size_t nranges;
};

/* A parsed program: keys[0..nkeys). */
struct imap_search {
	struct skey keys[IMAP_SEARCH_MAX_KEYS];
	int nkeys;
};

/*
 * Parse "[CHARSET name] key..." from args (a SEARCH command's first
 * argument). With prog NULL only the syntax is checked; otherwise the
 * program is built into prog (overwritten; free it with
 * imap_search_free() whatever the result). Returns 0, or -1 with
 * *error_r a static text for BAD. A charset other than UTF-8 and
 * US-ASCII is not an error: *badcharset_r says so (NO [BADCHARSET]).
 */
int imap_search_parse(struct imap_search *prog, const struct imap_arg *args,
    bool *badcharset_r, const char **error_r);

/* Free what the keys own; prog can be parsed into again. */
void imap_search_free(struct imap_search *prog);

/* "d-Mon-yyyy" (RFC 3501 date) into days since 1900-01-01. 0 or -1. */
int imap_search_parse_day(const char *str, size_t len, uint64_t *day_r);

#endif
