/*
 * imap_cmd_search.c - SEARCH and UID SEARCH (RFC 3501 section 6.4.4).
 *
 * The search program is parsed on the ring into a small tree of keys
 * (an array; AND is a list of children, OR two, NOT one) that owns
 * copies of its strings, then evaluated on the store pool with the
 * folder borrowed, so message files are only ever read there. Keys on
 * flags, sizes, internal dates and sequence or UID sets are answered
 * from the view; a message's file is opened and parsed only when a
 * header or body key is actually reached (AND and OR short-circuit).
 *
 * Strings match as ASCII case-insensitive substrings through
 * proto/mime.h, which also decodes RFC 2047 words and transfer
 * encodings; no charset beyond UTF-8 and US-ASCII is accepted.
 *
 * Must never: touch a message file on the ring thread, recurse or
 * allocate without a bound set by the client's input, or answer with
 * more than one "* SEARCH" line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/imap_private.h"
#include "backend/maildir.h"
#include "core/log.h"
#include "proto/mime.h"

#define MAX_KEYS 256  /* nodes of one search program */
#define MAX_DEPTH 32  /* nesting of NOT / OR / parentheses */
#define MAX_RANGES 256
#define MAX_PARTS 256

enum skey_op {
	SK_AND = 1, /* children in order; an empty AND is ALL */
	SK_OR,
	SK_NOT,
	SK_SEQ,	 /* ranges against sequence numbers */
	SK_UID,	 /* ranges against UIDs */
	SK_FLAG, /* (flags & mask) == want */
	SK_NONE, /* KEYWORD: keywords are not stored, nothing matches */
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE, /* internal date, by UTC day */
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE, /* Date: header, by its own day */
	SK_SENTON,
	SK_SENTSINCE,
	SK_HEADER, /* name (NULL: any field) contains value */
	SK_BODY,
	SK_TEXT,
};

struct skey {
	enum skey_op op;
	int child, next; /* indexes into the program, -1 for none */
	unsigned mask, want;
	uint64_t n;	 /* size, or a day number for dates */
	char *name;	 /* HEADER field name, owned */
	char *value;	 /* string to find, owned */
	size_t vlen;
	struct imap_range *ranges; /* SEQ / UID, owned */
	size_t nranges;
};

struct search_job {
	struct imap_job base;
	bool uid;
	struct skey keys[MAX_KEYS];
	int nkeys;
	/* the message being evaluated; its file is read on demand */
	int loaded; /* 0 not yet, 1 parsed, -1 unreadable */
	char *map;
	size_t size;
	struct mime_message m;
	struct mime_part parts[MAX_PARTS];
};

/* What the parser works on: the program and where the error goes. */
struct sparse {
	struct imap_session *s;
	struct search_job *job; /* NULL: syntax check only */
	int nkeys;
	bool badcharset;
};

static int check_search(struct imap_session *s,
    const struct imap_command *cmd);
static void run_search(struct imap_session *s,
    const struct imap_command *cmd);
static int parse_program(struct sparse *p, const struct imap_arg *a);
static int parse_key(struct sparse *p, const struct imap_arg **ap,
    unsigned depth);
static int parse_list(struct sparse *p, const struct imap_arg *a,
    unsigned depth, int parent);
static int new_key(struct sparse *p, enum skey_op op);
static int get_string(struct sparse *p, const struct imap_arg *a,
    char **dst, size_t *len_r);
static int get_day(struct sparse *p, const struct imap_arg *a, uint64_t *d);
static int parse_day(const char *str, size_t len, uint64_t *day_r);
static int get_ranges(struct sparse *p, const struct imap_arg *a, int k);
static void search_run(struct store_job *sj);
static bool eval(struct search_job *job, int k, size_t i);
static bool eval_file(struct search_job *job, const struct skey *key,
    size_t i);
static int load(struct search_job *job, size_t i);
static void unload(struct search_job *job);
static bool sent_day(struct search_job *job, uint64_t *day_r);
static int search_finish(struct imap_session *s, struct imap_job *ij);
static void search_release(struct imap_job *ij);

const struct imap_cmd_def imap_cmds_search[] = {
	{ "SEARCH", ST_SELECTED, true, check_search, run_search },
	{ NULL },
};

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* ---- parsing ------------------------------------------------------- */

static int
check_search(struct imap_session *s, const struct imap_command *cmd)
{
	struct sparse p = { s, NULL, 0, false };

	return parse_program(&p, cmd->args);
}

/* [CHARSET name] key... as one AND at index 0. */
static int
parse_program(struct sparse *p, const struct imap_arg *a)
{
	if (a != NULL && imap_arg_atom_is(a, "CHARSET")) {
		const struct imap_arg *cs = imap_arg_next(a);

		if (cs == NULL || !imap_arg_is_astring(cs) || cs->ptr == NULL) {
			p->s->error = "CHARSET needs a name";
			return -1;
		}
		/* an unknown charset is NO, not BAD: remember, go on */
		if (!(cs->len == 5 && strncasecmp(cs->ptr, "UTF-8", 5) == 0) &&
		    !(cs->len == 8 && strncasecmp(cs->ptr, "US-ASCII", 8) == 0))
			p->badcharset = true;
		a = imap_arg_next(cs);
	}
	if (a == NULL) {
		p->s->error = "SEARCH needs at least one key";
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
		if (p->job == NULL)
			continue;
		if (last == -1)
			p->job->keys[parent].child = k;
		else
			p->job->keys[last].next = k;
		last = k;
	}
	return 0;
}

static int
new_key(struct sparse *p, enum skey_op op)
{
	struct skey *key;

	if (p->nkeys == MAX_KEYS) {
		p->s->error = "Search program too long";
		return -1;
	}
	if (p->job != NULL) {
		key = &p->job->keys[p->nkeys];
		memset(key, 0, sizeof(*key));
		key->op = op;
		key->child = key->next = -1;
		p->job->nkeys = p->nkeys + 1;
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
		{ "DELETED", SK_FLAG, MAILDIR_FLAG_DELETED, MAILDIR_FLAG_DELETED },
		{ "DRAFT", SK_FLAG, MAILDIR_FLAG_DRAFT, MAILDIR_FLAG_DRAFT },
		{ "FLAGGED", SK_FLAG, MAILDIR_FLAG_FLAGGED, MAILDIR_FLAG_FLAGGED },
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
		{ "FROM", SK_HEADER, "From" }, { "TO", SK_HEADER, "To" },
		{ "CC", SK_HEADER, "Cc" }, { "BCC", SK_HEADER, "Bcc" },
		{ "SUBJECT", SK_HEADER, "Subject" }, { "BODY", SK_BODY, NULL },
		{ "TEXT", SK_TEXT, NULL },
	};
	static const struct {
		const char *name;
		enum skey_op op;
	} dates[] = {
		{ "BEFORE", SK_BEFORE }, { "ON", SK_ON }, { "SINCE", SK_SINCE },
		{ "SENTBEFORE", SK_SENTBEFORE }, { "SENTON", SK_SENTON },
		{ "SENTSINCE", SK_SENTSINCE },
	};
	const struct imap_arg *a = *ap, *arg1 = imap_arg_next(a);
	struct skey *key;
	size_t i;
	int k, c;

	if (depth >= MAX_DEPTH) {
		p->s->error = "Search program nested too deep";
		return -1;
	}
	*ap = arg1;
	if (a->type == IMAP_ARG_LIST) {
		if (a->count == 0) {
			p->s->error = "Empty parentheses in SEARCH";
			return -1;
		}
		if ((k = new_key(p, SK_AND)) == -1)
			return -1;
		return parse_list(p, imap_arg_child(a), depth + 1, k) == -1 ?
			-1 : k;
	}
	if (a->type != IMAP_ARG_ATOM) {
		p->s->error = "Expected a search key";
		return -1;
	}
	for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (imap_arg_atom_is(a, simple[i].name)) {
			if ((k = new_key(p, simple[i].op)) != -1 && p->job) {
				p->job->keys[k].mask = simple[i].mask;
				p->job->keys[k].want = simple[i].want;
			}
			return k;
		}
	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		if (imap_arg_atom_is(a, strings[i].name)) {
			if ((k = new_key(p, strings[i].op)) == -1)
				return -1;
			*ap = imap_arg_next(arg1);
			if (p->job == NULL)
				return get_string(p, arg1, NULL, NULL) == -1 ?
					-1 : k;
			key = &p->job->keys[k];
			if (get_string(p, arg1, &key->value, &key->vlen) == -1)
				return -1;
			if (strings[i].field != NULL &&
			    (key->name = strdup(strings[i].field)) == NULL) {
				p->s->error = "Out of memory";
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
			if (p->job)
				p->job->keys[k].n = day;
			*ap = imap_arg_next(arg1);
			return k;
		}
	if (imap_arg_atom_is(a, "LARGER") || imap_arg_atom_is(a, "SMALLER")) {
		uint64_t n;

		if (arg1 == NULL || imap_arg_number64(arg1, &n) == -1) {
			p->s->error = "LARGER and SMALLER take a number";
			return -1;
		}
		if ((k = new_key(p, imap_arg_atom_is(a, "LARGER") ? SK_LARGER :
			    SK_SMALLER)) != -1 && p->job)
			p->job->keys[k].n = n;
		*ap = imap_arg_next(arg1);
		return k;
	}
	if (imap_arg_atom_is(a, "HEADER")) {
		const struct imap_arg *arg2 = imap_arg_next(arg1);
		size_t nlen;

		if ((k = new_key(p, SK_HEADER)) == -1)
			return -1;
		*ap = imap_arg_next(arg2);
		if (p->job == NULL)
			return get_string(p, arg1, NULL, NULL) == -1 ||
			    get_string(p, arg2, NULL, NULL) == -1 ? -1 : k;
		key = &p->job->keys[k];
		return get_string(p, arg1, &key->name, &nlen) == -1 ||
		    get_string(p, arg2, &key->value, &key->vlen) == -1 ? -1 : k;
	}
	if (imap_arg_atom_is(a, "KEYWORD") || imap_arg_atom_is(a, "UNKEYWORD")) {
		/* keywords are not stored: no message has one */
		if (arg1 == NULL || arg1->type != IMAP_ARG_ATOM) {
			p->s->error = "KEYWORD takes a flag keyword";
			return -1;
		}
		*ap = imap_arg_next(arg1);
		return new_key(p, imap_arg_atom_is(a, "KEYWORD") ? SK_NONE :
							 SK_AND);
	}
	if (imap_arg_atom_is(a, "NOT") || imap_arg_atom_is(a, "OR")) {
		bool or = imap_arg_atom_is(a, "OR");
		int c2;

		if (arg1 == NULL) {
			p->s->error = "NOT and OR need search keys";
			return -1;
		}
		if ((k = new_key(p, or ? SK_OR : SK_NOT)) == -1 ||
		    (c = parse_key(p, ap, depth + 1)) == -1)
			return -1;
		if (p->job)
			p->job->keys[k].child = c;
		if (!or)
			return k;
		if (*ap == NULL) {
			p->s->error = "OR needs two search keys";
			return -1;
		}
		if ((c2 = parse_key(p, ap, depth + 1)) == -1)
			return -1;
		if (p->job)
			p->job->keys[c].next = c2;
		return k;
	}
	if (imap_arg_atom_is(a, "UID")) {
		if ((k = new_key(p, SK_UID)) == -1 || get_ranges(p, arg1, k) == -1)
			return -1;
		*ap = imap_arg_next(arg1);
		return k;
	}
	if ((k = new_key(p, SK_SEQ)) == -1 || get_ranges(p, a, k) == -1) {
		p->s->error = "Unknown search key";
		return -1;
	}
	return k;
}

/* An astring argument, copied (the parser's storage goes away). */
static int
get_string(struct sparse *p, const struct imap_arg *a, char **dst,
    size_t *len_r)
{
	if (a == NULL || !imap_arg_is_astring(a) || a->ptr == NULL) {
		p->s->error = "Search key needs a string";
		return -1;
	}
	if (dst == NULL)
		return 0;
	if ((*dst = strndup(a->ptr, a->len)) == NULL) {
		p->s->error = "Out of memory";
		return -1;
	}
	*len_r = a->len;
	return 0;
}

static int
get_day(struct sparse *p, const struct imap_arg *a, uint64_t *day_r)
{
	if (a == NULL || (a->type != IMAP_ARG_ATOM &&
			     a->type != IMAP_ARG_QUOTED) ||
	    parse_day(a->ptr, a->len, day_r) == -1) {
		p->s->error = "Invalid date (expected d-Mon-yyyy)";
		return -1;
	}
	return 0;
}

/* "d-Mon-yyyy" (RFC 3501 date) into days since the epoch. */
static int
parse_day(const char *str, size_t len, uint64_t *day_r)
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
	struct imap_range ranges[MAX_RANGES];
	struct imap_seqset set = { ranges, MAX_RANGES, 0, false, false };
	struct skey *key;

	if (a == NULL || a->type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(&set, a->ptr, a->len, &p->s->error) == -1)
		return -1;
	if (set.saved) {
		p->s->error = "Saved search results are not supported";
		return -1;
	}
	if (p->job == NULL)
		return 0;
	key = &p->job->keys[k];
	if ((key->ranges = calloc(set.count, sizeof(*key->ranges))) == NULL) {
		p->s->error = "Out of memory";
		return -1;
	}
	memcpy(key->ranges, ranges, set.count * sizeof(*ranges));
	key->nranges = set.count;
	return 0;
}

static void
run_search(struct imap_session *s, const struct imap_command *cmd)
{
	struct search_job *job = imap_job_new(s, sizeof(*job), search_finish);
	struct sparse p = { s, job, 0, false };

	if (job == NULL) {
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return;
	}
	job->base.release = search_release;
	job->uid = cmd->uid;
	if (parse_program(&p, cmd->args) == -1) {
		imap_reply(s, NULL, "BAD %s", s->error);
		imap_job_free(&job->base);
		return;
	}
	if (p.badcharset) {
		imap_reply(s, NULL, "NO [BADCHARSET (UTF-8 US-ASCII)] "
				    "Unsupported charset");
		imap_job_free(&job->base);
		return;
	}
	job->base.box = s->box;
	s->box = NULL;
	imap_job_submit(s, &job->base, search_run);
}

/* ---- evaluation (store pool) -------------------------------------- */

static void
search_run(struct store_job *sj)
{
	struct search_job *job = (struct search_job *)sj;
	const struct maildir_msg *msgs;
	struct buf *b = &job->base.out;
	size_t n;

	msgs = maildir_msgs(job->base.box, &n);
	/* resolve `*` once: against the view the client was told of */
	for (int k = 0; k < job->nkeys; k++) {
		struct skey *key = &job->keys[k];
		struct imap_seqset set = { key->ranges, key->nranges,
			key->nranges, false, false };

		if (key->op != SK_SEQ && key->op != SK_UID)
			continue;
		imap_seqset_resolve(&set, key->op == SK_SEQ ? (uint32_t)n :
		    n ? msgs[n - 1].uid : 0);
		key->nranges = set.count;
	}
	buf_printf(b, "* SEARCH");
	for (size_t i = 0; i < n; i++) {
		bool hit = eval(job, 0, i);

		unload(job);
		msgs = maildir_msgs(job->base.box, &n);
		if (hit)
			buf_printf(b, " %u", job->uid ? msgs[i].uid :
							(uint32_t)i + 1);
	}
	buf_printf(b, "\r\n");
}

static bool
eval(struct search_job *job, int k, size_t i)
{
	const struct skey *key = &job->keys[k];
	const struct maildir_msg *msgs;
	struct imap_seqset set = { key->ranges, key->nranges, key->nranges,
		false, true };
	size_t n;
	int c;

	msgs = maildir_msgs(job->base.box, &n);
	switch (key->op) {
	case SK_AND:
		for (c = key->child; c != -1; c = job->keys[c].next)
			if (!eval(job, c, i))
				return false;
		return true;
	case SK_OR:
		return eval(job, key->child, i) ||
		    eval(job, job->keys[key->child].next, i);
	case SK_NOT:
		return !eval(job, key->child, i);
	case SK_SEQ:
		return imap_seqset_contains(&set, (uint32_t)i + 1, 0);
	case SK_UID:
		return imap_seqset_contains(&set, msgs[i].uid, 0);
	case SK_FLAG:
		return (msgs[i].flags & key->mask) == key->want;
	case SK_NONE:
		return false;
	case SK_LARGER:
	case SK_SMALLER: {
		uint64_t size = msgs[i].vsize ? msgs[i].vsize : msgs[i].size;

		return key->op == SK_LARGER ? size > key->n : size < key->n;
	}
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE: {
		uint64_t day = (uint64_t)(msgs[i].date / 86400 + 25567);

		return key->op == SK_BEFORE ? day < key->n :
		    key->op == SK_ON	    ? day == key->n :
					      day >= key->n;
	}
	default:
		return eval_file(job, key, i);
	}
}

/* Keys that need the message itself. An unreadable message (expunged
 * by another program meanwhile) matches none of them. */
static bool
eval_file(struct search_job *job, const struct skey *key, size_t i)
{
	const struct mime_part *root = &job->parts[0];
	uint64_t day;

	if (load(job, i) == -1)
		return false;
	switch (key->op) {
	case SK_HEADER:
		return mime_header_search(job->m.data, root->hdr_len, key->name,
		    key->value, key->vlen);
	case SK_BODY:
		return mime_body_search(&job->m, 0, key->value, key->vlen);
	case SK_TEXT:
		return mime_header_search(job->m.data, root->hdr_len, NULL,
			   key->value, key->vlen) ||
		    mime_body_search(&job->m, 0, key->value, key->vlen);
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if (!sent_day(job, &day))
			return false;
		return key->op == SK_SENTBEFORE ? day < key->n :
		    key->op == SK_SENTON	? day == key->n :
						  day >= key->n;
	default:
		return false;
	}
}

/* Map and parse message i once per message. 0, or -1 if unreadable. */
static int
load(struct search_job *job, size_t i)
{
	struct mime_limits lim = { 32, 256, 64 * 1024 };
	struct stat st;
	const char *e;
	int fd;

	if (job->loaded != 0)
		return job->loaded == 1 ? 0 : -1;
	job->loaded = -1;
	if (maildir_msg_open(job->base.box, i, &fd, &e) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	job->size = (size_t)st.st_size;
	if (job->size > 0 && (job->map = mmap(NULL, job->size, PROT_READ,
				  MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
		job->map = NULL;
		close(fd);
		return -1;
	}
	close(fd);
	mime_parse(&job->m, job->map ? job->map : "", job->size, job->parts,
	    MAX_PARTS, &lim);
	job->loaded = 1;
	return 0;
}

static void
unload(struct search_job *job)
{
	if (job->map != NULL)
		munmap(job->map, job->size);
	job->map = NULL;
	job->size = 0;
	job->loaded = 0;
}

/* The day of the Date: header, "[Day,] d Mon yyyy ...", in the sender's
 * own zone as RFC 3501 asks (time and zone disregarded). */
static bool
sent_day(struct search_job *job, uint64_t *day_r)
{
	struct mime_slice v;
	char buf[64], dstr[16], mon[4];
	const char *p;
	int day, year;

	if (!mime_header_get(job->m.data, job->parts[0].hdr_len, "Date", &v) ||
	    v.len >= sizeof(buf))
		return false;
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = '\0';
	p = strchr(buf, ',') ? strchr(buf, ',') + 1 : buf;
	if (sscanf(p, " %2d %3[A-Za-z] %4d", &day, mon, &year) != 3)
		return false;
	snprintf(dstr, sizeof(dstr), "%d-%s-%d", day, mon, year);
	return parse_day(dstr, strlen(dstr), day_r) == 0;
}

static int
search_finish(struct imap_session *s, struct imap_job *ij)
{
	s->box = ij->box;
	ij->box = NULL;
	if (ij->err) {
		imap_reply(s, NULL, "NO [SERVERBUG] Internal error");
		return 0;
	}
	imap_send(s, buf_head(&ij->out), buf_used(&ij->out));
	imap_reply(s, NULL, "OK SEARCH completed");
	return 0;
}

static void
search_release(struct imap_job *ij)
{
	struct search_job *job = (struct search_job *)ij;

	unload(job);
	for (int k = 0; k < job->nkeys; k++) {
		free(job->keys[k].name);
		free(job->keys[k].value);
		free(job->keys[k].ranges);
	}
}
