/*
 * imap_search_parse.c - the SEARCH program parser (imap_search.h): the
 * argument tree of a SEARCH command into a small array of keys.
 *
 * Relies on proto/imap_parse.c's argument tree (bounded by its limits)
 * and on imap_seqset_parse() for sets. Recursion follows the nesting of
 * NOT, OR and parentheses and stops at IMAP_SEARCH_MAX_DEPTH; the number
 * of keys stops at IMAP_SEARCH_MAX_KEYS; a set holds at most
 * IMAP_SEARCH_MAX_RANGES ranges. Only checking (no program) allocates
 * nothing. Must never: read past the tree, touch a session or the disk,
 * or leave an allocation that imap_search_free() would not find.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/imap_search.h"
#include "store/maildir.h"

/* What the parser works on: the program and where the error goes. */
struct sparse {
	struct imap_search *prog; /* NULL: syntax check only */
	const char **error;
	int nkeys;
	bool badcharset;
};

static int parse_program(struct sparse *p, const struct imap_arg *a);
static int parse_key(struct sparse *p, const struct imap_arg **ap,
    unsigned depth);
static int parse_list(struct sparse *p, const struct imap_arg *a,
    unsigned depth, int parent);
static int new_key(struct sparse *p, enum skey_op op);
static int get_string(struct sparse *p, const struct imap_arg *a, char **dst,
    size_t *len_r);
static int get_day(struct sparse *p, const struct imap_arg *a, uint64_t *d);
static int get_ranges(struct sparse *p, const struct imap_arg *a, int k);
static bool keyword_chars(const struct imap_arg *a);

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

int
imap_search_parse(struct imap_search *prog, const struct imap_arg *args,
    bool *badcharset_r, const char **error_r)
{
	struct sparse p = { prog, error_r, 0, false };
	int rc;

	if (prog != NULL)
		prog->nkeys = 0;
	rc = parse_program(&p, args);
	*badcharset_r = p.badcharset;
	return rc;
}

void
imap_search_free(struct imap_search *prog)
{
	for (int k = 0; k < prog->nkeys; k++) {
		free(prog->keys[k].name);
		free(prog->keys[k].value);
		free(prog->keys[k].ranges);
	}
	prog->nkeys = 0;
}

/* [CHARSET name] key... as one AND at index 0. */
static int
parse_program(struct sparse *p, const struct imap_arg *a)
{
	if (a != NULL && imap_arg_atom_is(a, "CHARSET")) {
		const struct imap_arg *cs = imap_arg_next(a);

		if (cs == NULL || !imap_arg_is_astring(cs) || cs->ptr == NULL) {
			*p->error = "CHARSET needs a name";
			return -1;
		}
		/* an unknown charset is NO, not BAD: remember, go on */
		if (!(cs->len == 5 && strncasecmp(cs->ptr, "UTF-8", 5) == 0) &&
		    !(cs->len == 8 && strncasecmp(cs->ptr, "US-ASCII", 8) == 0))
			p->badcharset = true;
		a = imap_arg_next(cs);
	}
	if (a == NULL) {
		*p->error = "SEARCH needs at least one key";
		return -1;
	}
	if (new_key(p, SK_AND) == -1)
		return -1;
	return parse_list(p, a, 0, 0);
}

/* Keys from a to the end of its level, as children of parent. */
static int
parse_list(struct sparse *p, const struct imap_arg *a, unsigned depth,
    int parent)
{
	int last = -1, k;

	while (a != NULL) {
		if ((k = parse_key(p, &a, depth)) == -1)
			return -1;
		if (p->prog == NULL)
			continue;
		if (last == -1)
			p->prog->keys[parent].child = k;
		else
			p->prog->keys[last].next = k;
		last = k;
	}
	return 0;
}

static int
new_key(struct sparse *p, enum skey_op op)
{
	struct skey *key;

	if (p->nkeys == IMAP_SEARCH_MAX_KEYS) {
		*p->error = "Search program too long";
		return -1;
	}
	if (p->prog != NULL) {
		key = &p->prog->keys[p->nkeys];
		memset(key, 0, sizeof(*key));
		key->op = op;
		key->child = key->next = -1;
		p->prog->nkeys = p->nkeys + 1;
	}
	return p->nkeys++;
}

/* One search key at *ap; *ap moves past it and its arguments. Returns
 * the key's index (any number when only checking), or -1. */
static int
parse_key(struct sparse *p, const struct imap_arg **ap, unsigned depth)
{
	static const struct {
		const char *name;
		enum skey_op op;
		unsigned mask, want;
	} simple[] = {
		{ "ALL", SK_AND, 0, 0 },
		{ "ANSWERED", SK_FLAG, MAILDIR_FLAG_ANSWERED,
		    MAILDIR_FLAG_ANSWERED },
		{ "DELETED", SK_FLAG, MAILDIR_FLAG_DELETED,
		    MAILDIR_FLAG_DELETED },
		{ "DRAFT", SK_FLAG, MAILDIR_FLAG_DRAFT, MAILDIR_FLAG_DRAFT },
		{ "FLAGGED", SK_FLAG, MAILDIR_FLAG_FLAGGED,
		    MAILDIR_FLAG_FLAGGED },
		{ "SEEN", SK_FLAG, MAILDIR_FLAG_SEEN, MAILDIR_FLAG_SEEN },
		{ "RECENT", SK_FLAG, MAILDIR_FLAG_RECENT, MAILDIR_FLAG_RECENT },
		{ "NEW", SK_FLAG, MAILDIR_FLAG_RECENT | MAILDIR_FLAG_SEEN,
		    MAILDIR_FLAG_RECENT },
		{ "OLD", SK_FLAG, MAILDIR_FLAG_RECENT, 0 },
		{ "UNANSWERED", SK_FLAG, MAILDIR_FLAG_ANSWERED, 0 },
		{ "UNDELETED", SK_FLAG, MAILDIR_FLAG_DELETED, 0 },
		{ "UNDRAFT", SK_FLAG, MAILDIR_FLAG_DRAFT, 0 },
		{ "UNFLAGGED", SK_FLAG, MAILDIR_FLAG_FLAGGED, 0 },
		{ "UNSEEN", SK_FLAG, MAILDIR_FLAG_SEEN, 0 },
	};
	static const struct {
		const char *name;
		enum skey_op op;
		const char *field;
	} strings[] = {
		{ "FROM", SK_ADDRESS, "From" },
		{ "TO", SK_ADDRESS, "To" },
		{ "CC", SK_ADDRESS, "Cc" },
		{ "BCC", SK_ADDRESS, "Bcc" },
		{ "SUBJECT", SK_HEADER, "Subject" },
		{ "BODY", SK_BODY, NULL },
		{ "TEXT", SK_TEXT, NULL },
	};
	static const struct {
		const char *name;
		enum skey_op op;
	} dates[] = {
		{ "BEFORE", SK_BEFORE },
		{ "ON", SK_ON },
		{ "SINCE", SK_SINCE },
		{ "SENTBEFORE", SK_SENTBEFORE },
		{ "SENTON", SK_SENTON },
		{ "SENTSINCE", SK_SENTSINCE },
	};
	const struct imap_arg *a = *ap, *arg1 = imap_arg_next(a);
	struct skey *key;
	size_t i;
	int k, c;

	if (depth >= IMAP_SEARCH_MAX_DEPTH) {
		*p->error = "Search program nested too deep";
		return -1;
	}
	*ap = arg1;
	if (a->type == IMAP_ARG_LIST) {
		if (a->count == 0) {
			*p->error = "Empty parentheses in SEARCH";
			return -1;
		}
		if ((k = new_key(p, SK_AND)) == -1)
			return -1;
		return parse_list(p, imap_arg_child(a), depth + 1, k) == -1 ?
		    -1 :
		    k;
	}
	if (a->type != IMAP_ARG_ATOM) {
		*p->error = "Expected a search key";
		return -1;
	}
	for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (imap_arg_atom_is(a, simple[i].name)) {
			if ((k = new_key(p, simple[i].op)) != -1 && p->prog) {
				p->prog->keys[k].mask = simple[i].mask;
				p->prog->keys[k].want = simple[i].want;
			}
			return k;
		}
	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		if (imap_arg_atom_is(a, strings[i].name)) {
			if ((k = new_key(p, strings[i].op)) == -1)
				return -1;
			*ap = imap_arg_next(arg1);
			if (p->prog == NULL)
				return get_string(p, arg1, NULL, NULL) == -1 ?
				    -1 :
				    k;
			key = &p->prog->keys[k];
			if (get_string(p, arg1, &key->value, &key->vlen) == -1)
				return -1;
			if (strings[i].field != NULL &&
			    (key->name = strdup(strings[i].field)) == NULL) {
				*p->error = "Out of memory";
				return -1;
			}
			return k;
		}
	for (i = 0; i < sizeof(dates) / sizeof(dates[0]); i++)
		if (imap_arg_atom_is(a, dates[i].name)) {
			uint64_t day;

			if ((k = new_key(p, dates[i].op)) == -1 ||
			    get_day(p, arg1, &day) == -1)
				return -1;
			if (p->prog)
				p->prog->keys[k].n = day;
			*ap = imap_arg_next(arg1);
			return k;
		}
	if (imap_arg_atom_is(a, "LARGER") || imap_arg_atom_is(a, "SMALLER")) {
		uint64_t n;

		if (arg1 == NULL || imap_arg_number64(arg1, &n) == -1) {
			*p->error = "LARGER and SMALLER take a number";
			return -1;
		}
		if ((k = new_key(p,
			 imap_arg_atom_is(a, "LARGER") ? SK_LARGER :
							 SK_SMALLER)) != -1 &&
		    p->prog)
			p->prog->keys[k].n = n;
		*ap = imap_arg_next(arg1);
		return k;
	}
	if (imap_arg_atom_is(a, "HEADER")) {
		const struct imap_arg *arg2 = imap_arg_next(arg1);
		size_t nlen;

		if ((k = new_key(p, SK_HEADER)) == -1)
			return -1;
		*ap = imap_arg_next(arg2);
		if (p->prog == NULL)
			return get_string(p, arg1, NULL, NULL) == -1 ||
				get_string(p, arg2, NULL, NULL) == -1 ?
			    -1 :
			    k;
		key = &p->prog->keys[k];
		return get_string(p, arg1, &key->name, &nlen) == -1 ||
			get_string(p, arg2, &key->value, &key->vlen) == -1 ?
		    -1 :
		    k;
	}
	if (imap_arg_atom_is(a, "KEYWORD") ||
	    imap_arg_atom_is(a, "UNKEYWORD")) {
		size_t vlen;

		/* flag-keyword is an atom (a name no folder can hold, too
		 * long or NIL, simply matches nothing) */
		if (arg1 == NULL || arg1->type != IMAP_ARG_ATOM ||
		    !keyword_chars(arg1)) {
			*p->error = "KEYWORD takes a flag keyword";
			return -1;
		}
		*ap = imap_arg_next(arg1);
		if ((k = new_key(p,
			 imap_arg_atom_is(a, "KEYWORD") ? SK_KEYWORD :
							  SK_UNKEYWORD)) ==
			-1 ||
		    p->prog == NULL)
			return k;
		return get_string(p, arg1, &p->prog->keys[k].value, &vlen) ==
			-1 ?
		    -1 :
		    k;
	}
	if (imap_arg_atom_is(a, "NOT") || imap_arg_atom_is(a, "OR")) {
		bool or = imap_arg_atom_is(a, "OR");
		int c2;

		if (arg1 == NULL) {
			*p->error = "NOT and OR need search keys";
			return -1;
		}
		if ((k = new_key(p, or ? SK_OR : SK_NOT)) == -1 ||
		    (c = parse_key(p, ap, depth + 1)) == -1)
			return -1;
		if (p->prog)
			p->prog->keys[k].child = c;
		if (! or)
			return k;
		if (*ap == NULL) {
			*p->error = "OR needs two search keys";
			return -1;
		}
		if ((c2 = parse_key(p, ap, depth + 1)) == -1)
			return -1;
		if (p->prog)
			p->prog->keys[c].next = c2;
		return k;
	}
	if (imap_arg_atom_is(a, "UID")) {
		if ((k = new_key(p, SK_UID)) == -1 ||
		    get_ranges(p, arg1, k) == -1)
			return -1;
		*ap = imap_arg_next(arg1);
		return k;
	}
	if ((k = new_key(p, SK_SEQ)) == -1 || get_ranges(p, a, k) == -1) {
		*p->error = "Unknown search key";
		return -1;
	}
	return k;
}

/* An astring argument, copied (the parser's storage goes away). */
/* Every byte an ATOM-CHAR: the tokenizer's atoms also allow '%', '*',
 * ']' and a leading '\\'. */
static bool
keyword_chars(const struct imap_arg *a)
{
	for (size_t i = 0; i < a->len; i++)
		if (!maildir_keyword_valid(a->ptr + i, 1))
			return false;
	return true;
}

static int
get_string(struct sparse *p, const struct imap_arg *a, char **dst,
    size_t *len_r)
{
	if (a == NULL || !imap_arg_is_astring(a) || a->ptr == NULL) {
		*p->error = "Search key needs a string";
		return -1;
	}
	if (dst == NULL)
		return 0;
	/* every byte: a literal may hold a NUL, and the length is a->len */
	if ((*dst = malloc(a->len + 1)) == NULL) {
		*p->error = "Out of memory";
		return -1;
	}
	memcpy(*dst, a->ptr, a->len);
	(*dst)[a->len] = '\0';
	*len_r = a->len;
	return 0;
}

static int
get_day(struct sparse *p, const struct imap_arg *a, uint64_t *day_r)
{
	if (a == NULL ||
	    (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_QUOTED) ||
	    imap_search_parse_day(a->ptr, a->len, day_r) == -1) {
		*p->error = "Invalid date (expected d-Mon-yyyy)";
		return -1;
	}
	return 0;
}

int
imap_search_parse_day(const char *str, size_t len, uint64_t *day_r)
{
	char buf[16], mon[4];
	struct tm tm = { 0 };
	int day, year, used = 0;

	if (str == NULL || len >= sizeof(buf))
		return -1;
	memcpy(buf, str, len);
	buf[len] = '\0';
	if (sscanf(buf, "%2d-%3[A-Za-z]-%4d%n", &day, mon, &year, &used) != 3 ||
	    (size_t)used != len || day < 1 || day > 31 || year < 1900)
		return -1;
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++)
		if (strcasecmp(mon, months[i]) == 0)
			tm.tm_mon = i;
	if (tm.tm_mon < 0)
		return -1;
	tm.tm_mday = day;
	tm.tm_year = year - 1900;
	tm.tm_hour = 12;
	*day_r = (uint64_t)(timegm(&tm) / 86400 + 25567); /* from 1900 */
	return 0;
}

/* A sequence or UID set for key k, kept unresolved: `*` depends on the
 * view at evaluation time. */
static int
get_ranges(struct sparse *p, const struct imap_arg *a, int k)
{
	struct imap_range ranges[IMAP_SEARCH_MAX_RANGES];
	struct imap_seqset set = { ranges, IMAP_SEARCH_MAX_RANGES, 0, false,
		false };
	struct skey *key;

	if (a == NULL || a->type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(&set, a->ptr, a->len, p->error) == -1)
		return -1;
	if (set.saved) {
		*p->error = "Saved search results are not supported";
		return -1;
	}
	if (p->prog == NULL)
		return 0;
	key = &p->prog->keys[k];
	if ((key->ranges = calloc(set.count, sizeof(*key->ranges))) == NULL) {
		*p->error = "Out of memory";
		return -1;
	}
	memcpy(key->ranges, ranges, set.count * sizeof(*ranges));
	key->nranges = set.count;
	return 0;
}
