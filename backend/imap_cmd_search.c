/*
 * imap_cmd_search.c - SEARCH and UID SEARCH (RFC 3501 section 6.4.4).
 *
 * The search program is parsed on the ring (imap_search_parse.c) into a
 * small tree of keys (an array; AND is a list of children, OR two, NOT
 * one) that owns copies of its strings, then evaluated on the store pool
 * with the folder borrowed, so message files are only ever read there.
 * Keys on flags, sizes, internal dates and sequence or UID sets are
 * answered from the view; a message's file is opened and parsed only when a
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
#include <time.h>
#include <unistd.h>

#include "backend/imap_private.h"
#include "backend/imap_search.h"
#include "backend/maildir.h"
#include "backend/msg_read.h"
#include "core/log.h"
#include "proto/mime.h"

#define MAX_PARTS 256

struct search_job {
	struct imap_job base;
	bool uid;
	struct imap_search prog;
	/* the message being evaluated; its file is read on demand, only
	 * its header when no key looks at the body */
	bool header_only;
	int loaded; /* 0 not yet, 1 parsed, -1 unreadable */
	struct msg_reader rd;
	struct msg_text text;
	struct mime_message m;
	struct mime_part parts[MAX_PARTS];
};

static int check_search(struct imap_session *s,
    const struct imap_command *cmd);
static void run_search(struct imap_session *s,
    const struct imap_command *cmd);
static void search_run(struct store_job *sj);
static bool eval(struct search_job *job, int k, size_t i);
static bool eval_file(struct search_job *job, const struct skey *key,
    size_t i);
static int load(struct search_job *job, size_t i);
static void unload(struct search_job *job);
static bool sent_day(struct search_job *job, uint64_t *day_r);
static void key_letters(struct maildir *box, struct skey *key);
static int search_finish(struct imap_session *s, struct imap_job *ij);
static void search_release(struct imap_job *ij);

const struct imap_cmd_def imap_cmds_search[] = {
	{ "SEARCH", ST_SELECTED, true, check_search, run_search },
	{ NULL },
};

/* ---- parsing ------------------------------------------------------- */

static int
check_search(struct imap_session *s, const struct imap_command *cmd)
{
	bool badcharset;

	return imap_search_parse(NULL, cmd->args, &badcharset, &s->error);
}

static void
run_search(struct imap_session *s, const struct imap_command *cmd)
{
	struct search_job *job = imap_job_new(s, sizeof(*job), search_finish);
	bool badcharset;

	if (job == NULL) {
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return;
	}
	job->base.release = search_release;
	job->uid = cmd->uid;
	if (imap_search_parse(&job->prog, cmd->args, &badcharset,
		&s->error) == -1) {
		imap_reply(s, NULL, "BAD %s", s->error);
		imap_job_free(&job->base);
		return;
	}
	if (badcharset) {
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
	job->header_only = true;
	/* resolve `*` once: against the view the client was told of */
	for (int k = 0; k < job->prog.nkeys; k++) {
		struct skey *key = &job->prog.keys[k];

		if (key->op == SK_BODY || key->op == SK_TEXT)
			job->header_only = false;
		if (key->op == SK_KEYWORD || key->op == SK_UNKEYWORD)
			key_letters(job->base.box, key);
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

/* The letters that carry a KEYWORD key's name in this folder (every one:
 * a name may repeat); none for a name the folder does not know. */
static void
key_letters(struct maildir *box, struct skey *key)
{
	const char *name = key->value;
	const char *e;
	uint32_t letters = 0;

	if (maildir_keyword_valid(name, strlen(name)))
		maildir_keywords_get(box, &name, 1, false, &letters, &e);
	key->mask = letters;
}

static bool
eval(struct search_job *job, int k, size_t i)
{
	const struct skey *key = &job->prog.keys[k];
	const struct maildir_msg *msgs;
	struct imap_seqset set = { key->ranges, key->nranges, key->nranges,
		false, true };
	size_t n;
	int c;

	msgs = maildir_msgs(job->base.box, &n);
	switch (key->op) {
	case SK_AND:
		for (c = key->child; c != -1; c = job->prog.keys[c].next)
			if (!eval(job, c, i))
				return false;
		return true;
	case SK_OR:
		return eval(job, key->child, i) ||
		    eval(job, job->prog.keys[key->child].next, i);
	case SK_NOT:
		return !eval(job, key->child, i);
	case SK_SEQ:
		return imap_seqset_contains(&set, (uint32_t)i + 1, 0);
	case SK_UID:
		return imap_seqset_contains(&set, msgs[i].uid, 0);
	case SK_FLAG:
		return (msgs[i].flags & key->mask) == key->want;
	case SK_KEYWORD:
		return (msgs[i].keywords & key->mask) != 0;
	case SK_UNKEYWORD:
		return (msgs[i].keywords & key->mask) == 0;
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
	case SK_ADDRESS:
		return mime_addr_search(job->m.data, root->hdr_len, key->name,
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

/* Read and parse message i once per message. 0, or -1 if unreadable. */
static int
load(struct search_job *job, size_t i)
{
	struct mime_limits lim = { 32, 256, 64 * 1024 };

	if (job->loaded != 0)
		return job->loaded == 1 ? 0 : -1;
	job->loaded = -1;
	if (msg_read(&job->rd, job->base.box, i, job->header_only,
		&job->text) == -1)
		return -1;
	mime_parse(&job->m, job->text.data, job->text.len, job->parts,
	    MAX_PARTS, &lim);
	job->loaded = 1;
	return 0;
}

static void
unload(struct search_job *job)
{
	msg_read_done(&job->text);
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
	return imap_search_parse_day(dstr, strlen(dstr), day_r) == 0;
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
	msg_reader_free(&job->rd);
	imap_search_free(&job->prog);
}
