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
 * A SEARCH never holds a pool thread for long: it runs in slices of about
 * SLICE_MS, between messages or, within a message, between keys that
 * read the file (whose results are kept, so the message resumes where it
 * stopped), and each slice re-queues the job behind the other flows
 * waiting. The message's bytes are dropped between slices. Its CPU time
 * is summed over the slices; past limits.search_cpu it ends with
 * NO [LIMIT]. A client that leaves meanwhile ends the session (the
 * connection's hangup watch), and the next slice is never queued.
 *
 * Must never: touch a message file on the ring thread, recurse or
 * allocate without a bound set by the client's input, answer with more
 * than one "* SEARCH" line, or keep a pool thread past its slice by more
 * than one key over one message.
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
#include "backend/msg_read.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "proto/mime.h"
#include "store/maildir.h"

#define MAX_PARTS 256
#define SLICE_MS 20 /* a slice's wall time on a pool thread */

/* A file key's result for the message being evaluated. */
enum memo {
	MEMO_NONE = 0,
	MEMO_TRUE,
	MEMO_FALSE,
};

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
	/* where it is: the next message, and for it the file keys done */
	bool started, finished, limited;
	bool yield; /* the slice is over: evaluate no more file keys */
	size_t pos, nmsgs;
	unsigned char memo[IMAP_SEARCH_MAX_KEYS];
	uint64_t slice_end; /* CLOCK_MONOTONIC ns */
	uint64_t cpu_ns, budget_ns;
};

static int check_search(struct imap_session *s, const struct imap_command *cmd);
static void run_search(struct imap_session *s, const struct imap_command *cmd);
static void search_run(struct pool_job *sj);
static void search_start(struct search_job *job);
static uint64_t clock_ns(clockid_t id);
static bool eval(struct search_job *job, int k, size_t i);
static bool eval_file(struct search_job *job, const struct skey *key, size_t i);
static bool eval_file_key(struct search_job *job, const struct skey *key,
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
	if (imap_search_parse(&job->prog, cmd->args, &badcharset, &s->error) ==
	    -1) {
		imap_reply(s, NULL, "BAD %s", s->error);
		imap_job_free(&job->base);
		return;
	}
	if (badcharset) {
		imap_reply(s, NULL,
		    "NO [BADCHARSET (UTF-8 US-ASCII)] "
		    "Unsupported charset");
		imap_job_free(&job->base);
		return;
	}
	job->budget_ns = s->srv->cf->limits.search_cpu * 1000000ULL;
	job->base.box = s->box;
	s->box = NULL;
	if (imap_job_submit(s, &job->base, search_run) == 0)
		conn_watch_hangup(s->c, true);
}

/* ---- evaluation (store pool) -------------------------------------- */

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The first slice: resolve `*` once, against the view the client was
 * told of, and see whether any key needs more than the header. */
static void
search_start(struct search_job *job)
{
	const struct maildir_msg *msgs;
	size_t n;

	msgs = maildir_msgs(job->base.box, &n);
	job->nmsgs = n;
	job->header_only = true;
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
		imap_seqset_resolve(&set,
		    key->op == SK_SEQ ? (uint32_t)n :
			n	      ? msgs[n - 1].uid :
					0);
		key->nranges = set.count;
	}
	buf_printf(&job->base.out, "* SEARCH");
	job->started = true;
}

/* One slice: messages from job->pos until the slice's time is up. */
static void
search_run(struct pool_job *sj)
{
	struct search_job *job = (struct search_job *)sj;
	const struct maildir_msg *msgs;
	struct buf *b = &job->base.out;
	uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	size_t n;

	if (!job->started)
		search_start(job);
	job->yield = false;
	job->slice_end = clock_ns(CLOCK_MONOTONIC) + SLICE_MS * 1000000ULL;
	while (job->pos < job->nmsgs) {
		bool hit = eval(job, 0, job->pos);

		if (job->yield)
			break; /* this message again next slice, from memo */
		unload(job);
		memset(job->memo, 0, sizeof(job->memo));
		msgs = maildir_msgs(job->base.box, &n);
		if (hit)
			buf_printf(b, " %u",
			    job->uid ? msgs[job->pos].uid :
				       (uint32_t)job->pos + 1);
		job->pos++;
		if (clock_ns(CLOCK_MONOTONIC) >= job->slice_end)
			break;
	}
	unload(job);
	job->cpu_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	if (job->pos == job->nmsgs)
		buf_printf(b, "\r\n");
	else if (job->budget_ns > 0 && job->cpu_ns >= job->budget_ns)
		job->limited = true;
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
	size_t k = (size_t)(key - job->prog.keys);
	bool r;

	if (job->memo[k] != MEMO_NONE)
		return job->memo[k] == MEMO_TRUE;
	if (job->yield)
		return false; /* not recorded: evaluated next slice */
	r = eval_file_key(job, key, i);
	job->memo[k] = r ? MEMO_TRUE : MEMO_FALSE;
	if (clock_ns(CLOCK_MONOTONIC) >= job->slice_end)
		job->yield = true;
	return r;
}

static bool
eval_file_key(struct search_job *job, const struct skey *key, size_t i)
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

/* A slice is back: the next one, or the answer. */
static int
search_finish(struct imap_session *s, struct imap_job *ij)
{
	struct search_job *job = (struct search_job *)ij;
	struct metrics_shard *ms = loop_shard(s->w->loop);

	if (!ij->err && !job->limited && job->pos < job->nmsgs &&
	    imap_job_again(s, ij) == 0)
		return 1;
	job->finished = true;
	if (s->c != NULL)
		conn_watch_hangup(s->c, false);
	s->box = ij->box;
	ij->box = NULL;
	if (ij->err) {
		imap_reply(s, NULL, "NO [SERVERBUG] Internal error");
		return 0;
	}
	if (job->limited) {
		metrics_add(ms, s->srv->m.search_limit, 1);
		log_info(s->sid, "imap.search_stopped",
		    "reason=limit "
		    "messages=%zu/%zu cpu_ms=%llu",
		    job->pos, job->nmsgs,
		    (unsigned long long)(job->cpu_ns / 1000000));
		imap_reply(s, NULL,
		    "NO [LIMIT] SEARCH took too much time; "
		    "search fewer messages or keys");
		return 0;
	}
	if (job->pos < job->nmsgs) { /* the pool is stopping */
		imap_reply(s, NULL, "NO [UNAVAILABLE] Server busy, try again");
		return 0;
	}
	imap_send(s, buf_head(&ij->out), buf_used(&ij->out));
	imap_reply(s, NULL, "OK SEARCH completed");
	return 0;
}

/* A SEARCH freed before its answer lost its client: count and log it
 * (the session is gone; this is the job's last trace). */
static void
search_release(struct imap_job *ij)
{
	struct search_job *job = (struct search_job *)ij;

	if (job->started && !job->finished) {
		metrics_add(loop_shard(ij->w->loop), ij->w->srv->m.search_gone,
		    1);
		log_info(ij->base.sid, "imap.search_stopped",
		    "reason=disconnect messages=%zu/%zu cpu_ms=%llu", job->pos,
		    job->nmsgs, (unsigned long long)(job->cpu_ns / 1000000));
	}

	unload(job);
	msg_reader_free(&job->rd);
	imap_search_free(&job->prog);
}
