/*
 * imap_cmd_message.c - message commands of the selected state: STORE,
 * EXPUNGE, CLOSE, UNSELECT, NOOP/CHECK (folder sync), their UID forms,
 * and APPEND (any authenticated state). FETCH is imap_cmd_fetch.c.
 *
 * Relies on the folder being borrowed by the job (one thread at a time),
 * and on the view of the folder changing only through syncs whose results
 * are announced, so sequence numbers the client knows always match the
 * view's indexes.
 *
 * A large APPEND message (a literal the parser streams) never sits in
 * memory whole: when its literal is announced a pool job creates the
 * file in the folder's tmp/ (maildir_deliver_begin()), only then is the
 * continuation sent; bytes are gathered into a CHUNK_BYTES buffer and
 * each full one is written by a pool job while the next fills. Reading
 * stops while a full buffer waits for the write before it, so a session
 * holds at most two chunks. The command's end commits (fsync, link, UID)
 * on the pool exactly like a small APPEND; anything else (disconnect,
 * BAD, a failed write) unlinks the tmp file, on the pool too.
 *
 * Must never: touch a message file on the ring thread, change flags or
 * expunge in a read-only (EXAMINE) folder, or send EXPUNGE during STORE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/imap_private.h"
#include "backend/maildir.h"
#include "core/log.h"
#include "core/loop.h"

#define CHUNK_BYTES (256 * 1024)
#define MAX_RANGES 256

/* STORE, EXPUNGE, CLOSE, NOOP: one job type over the folder. */
struct msg_job {
	struct imap_job base;
	bool uid;
	bool readonly;
	uint32_t *idx; /* view indexes the command applies to */
	size_t nidx;
	/* STORE */
	int store_op; /* 0 replace, 1 add, -1 remove */
	bool silent;
	struct imap_flag_list fl;
	bool store_retry; /* a message kept being renamed by others */
	/* EXPUNGE / sync */
	bool expunge, quiet, close_after;
	uint32_t exists;
};

struct append_job {
	struct imap_job base;
	char *maildir;
	char name[IMAP_MBOX_MAX];
	struct buf data;
	struct maildir_delivery opt;
	struct imap_flag_list fl; /* opt's keywords live here */
	uint32_t uidvalidity, uid;
};

/* Where a streamed APPEND is. */
enum append_state {
	AS_BEGIN,    /* the tmp file is being created */
	AS_STREAM,   /* literal bytes arriving */
	AS_RECEIVED, /* all of them; the command line is being read */
	AS_COMMIT,   /* APPEND ran: commit once no write is out */
	AS_ABORTED,  /* dropped while a write is out: unlink after it */
};

/* The streamed APPEND of a session (s->app). Owned by the session; its
 * jobs point at it, and it is freed only when none is out. `in` is used
 * by one job at a time and never on the ring. */
struct imap_append {
	enum append_state state;
	struct maildir_incoming *in;
	char name[IMAP_MBOX_MAX];
	struct maildir_delivery opt;
	struct imap_flag_list fl; /* opt's keywords live here */
	uint64_t size, received;  /* the literal's, and so far */
	char *fill;		  /* CHUNK_BYTES, filling; NULL until needed */
	size_t len;
	char *spare; /* the other buffer, back from a write */
	bool job_out;
	bool sync; /* the literal waits for a continuation */
	int err;   /* a failure so far: the rest is dropped, then NO */
	const char *errtext;
};

/* Create the tmp file, write a chunk, or commit: one job type. */
struct stream_job {
	struct imap_job base;
	struct imap_append *app;
	const char *maildir; /* the session's, outlives the job */
	char *data;	     /* the chunk written, owned */
	size_t len;
	uint32_t uidvalidity, uid;
};

/* Unlinks an abandoned tmp file on the pool, after its session. */
struct dispose_job {
	struct pool_job base;
	struct maildir_incoming *in;
};

static int check_store(struct imap_session *s, const struct imap_command *cmd);
static int check_append(struct imap_session *s, const struct imap_command *cmd);
static int check_expunge(struct imap_session *s,
    const struct imap_command *cmd);
static void run_store(struct imap_session *s, const struct imap_command *cmd);
static void run_expunge(struct imap_session *s, const struct imap_command *cmd);
static void run_close(struct imap_session *s, const struct imap_command *cmd);
static void run_unselect(struct imap_session *s,
    const struct imap_command *cmd);
static void run_noop(struct imap_session *s, const struct imap_command *cmd);
static void run_append(struct imap_session *s, const struct imap_command *cmd);

static int parse_set(struct imap_session *s, const struct imap_arg *a, bool uid,
    struct msg_job *job);
static int parse_date(const char *p, size_t n, time_t *t_r);
static struct msg_job *msg_job(struct imap_session *s);
static void msg_release(struct imap_job *ij);
static void store_run(struct pool_job *sj);
static int store_resolve(struct msg_job *job, struct maildir_flag_change *c);
static bool store_expected(const struct maildir_msg *before,
    const struct maildir_msg *after, const struct maildir_flag_change *c);
static int store_finish(struct imap_session *s, struct imap_job *ij);
static void sync_run(struct pool_job *sj);
static int sync_finish(struct imap_session *s, struct imap_job *ij);
static void append_run(struct pool_job *sj);
static int append_finish(struct imap_session *s, struct imap_job *ij);
static void append_release(struct imap_job *ij);
static int check_append_args(struct imap_session *s,
    const struct imap_command *cmd, const struct imap_arg **last_r);
static int append_options(struct imap_session *s,
    const struct imap_command *cmd, struct maildir_delivery *opt,
    struct imap_flag_list *fl);
static void append_fail(struct imap_session *s, int err, const char *text);

/* streamed APPEND */
static struct stream_job *stream_job(struct imap_session *s,
    int (*finish)(struct imap_session *, struct imap_job *));
static void stream_release(struct imap_job *ij);
static void begin_run(struct pool_job *sj);
static int begin_finish(struct imap_session *s, struct imap_job *ij);
static void write_submit(struct imap_session *s);
static void write_run(struct pool_job *sj);
static int write_finish(struct imap_session *s, struct imap_job *ij);
static void commit_submit(struct imap_session *s);
static void commit_run(struct pool_job *sj);
static int commit_finish(struct imap_session *s, struct imap_job *ij);
static void stream_drop(struct imap_session *s);
static void dispose(struct imap_session *s, struct maildir_incoming **in);
static void dispose_run(struct pool_job *sj);

const struct imap_cmd_def imap_cmds_message[] = {
	{ "STORE", ST_SELECTED, true, check_store, run_store },
	{ "EXPUNGE", ST_SELECTED, true, check_expunge, run_expunge },
	{ "CLOSE", ST_SELECTED, false, imap_check_none, run_close },
	{ "UNSELECT", ST_SELECTED, false, imap_check_none, run_unselect },
	{ "NOOP", ST_SELECTED, false, imap_check_none, run_noop },
	{ "CHECK", ST_SELECTED, false, imap_check_none, run_noop },
	{ "APPEND", ST_AUTH | ST_SELECTED, false, check_append, run_append },
	{ NULL },
};

const char *const imap_months[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* ---- argument parsing ---------------------------------------------- */

/* Resolve a sequence or UID set against the current view into indexes.
 * With job NULL only the syntax is checked. */
static int
parse_set(struct imap_session *s, const struct imap_arg *a, bool uid,
    struct msg_job *job)
{
	if (job == NULL)
		return imap_set_resolve(s, a, uid, NULL, NULL);
	return imap_set_resolve(s, a, uid, &job->idx, &job->nidx);
}

int
imap_set_resolve(struct imap_session *s, const struct imap_arg *a, bool uid,
    uint32_t **idx_r, size_t *nidx_r)
{
	struct imap_range ranges[MAX_RANGES];
	struct imap_seqset set = { ranges, MAX_RANGES, 0, false, false };
	const struct maildir_msg *msgs;
	uint32_t *idx;
	size_t n, k = 0;

	if (a == NULL || a->type != IMAP_ARG_ATOM) {
		s->error = "Expected a sequence set";
		return -1;
	}
	if (imap_seqset_parse(&set, a->ptr, a->len, &s->error) == -1)
		return -1;
	if (set.saved) {
		s->error = "Saved search results are not supported";
		return -1;
	}
	if (idx_r == NULL)
		return 0;
	msgs = maildir_msgs(s->box, &n);
	if (uid)
		imap_seqset_resolve(&set, n ? msgs[n - 1].uid : 0);
	else {
		imap_seqset_resolve(&set, (uint32_t)n);
		for (size_t r = 0; r < set.count; r++)
			if (set.ranges[r].hi > n) {
				s->error = "Invalid message sequence number";
				return -1;
			}
	}
	if ((idx = calloc(n + 1, sizeof(*idx))) == NULL) {
		s->error = "Out of memory";
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (imap_seqset_contains(&set,
			uid ? msgs[i].uid : (uint32_t)i + 1, 0))
			idx[k++] = (uint32_t)i;
	*idx_r = idx;
	*nidx_r = k;
	return 0;
}

static int
check_store(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *op = imap_arg_next(cmd->args);
	const struct imap_arg *fl = imap_arg_next(op);

	if (cmd->argc < 3 || op->type != IMAP_ARG_ATOM) {
		s->error = "STORE takes a set, an item and flags";
		return -1;
	}
	if (parse_set(s, cmd->args, cmd->uid, NULL) == -1)
		return -1;
	if (!imap_arg_atom_is(op, "FLAGS") && !imap_arg_atom_is(op, "+FLAGS") &&
	    !imap_arg_atom_is(op, "-FLAGS") &&
	    !imap_arg_atom_is(op, "FLAGS.SILENT") &&
	    !imap_arg_atom_is(op, "+FLAGS.SILENT") &&
	    !imap_arg_atom_is(op, "-FLAGS.SILENT")) {
		s->error = "Unknown STORE item";
		return -1;
	}
	/* flags as one list, or as bare atoms (RFC 3501 allows both) */
	return imap_flags_parse(s, fl, true, NULL);
}

static int
check_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->uid)
		return cmd->argc == 1 ?
		    parse_set(s, cmd->args, true, NULL) :
		    (s->error = "UID EXPUNGE takes a UID set", -1);
	return imap_check_none(s, cmd);
}

/* "dd-Mon-yyyy hh:mm:ss +zzzz", the day may be space-padded. */
static int
parse_date(const char *p, size_t n, time_t *t_r)
{
	char buf[40], mon[4], sign;
	struct tm tm = { 0 };
	int day, year, hh, mm, ss, zone, used = 0;

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	if (sscanf(buf, "%2d-%3s-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year,
		&hh, &mm, &ss, &sign, &zone, &used) != 8 ||
	    (size_t)used != n || (sign != '+' && sign != '-'))
		return -1;
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++)
		if (strcasecmp(mon, imap_months[i]) == 0)
			tm.tm_mon = i;
	if (tm.tm_mon < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 ||
	    ss > 60 || year < 1970 || zone % 100 > 59)
		return -1;
	tm.tm_mday = day;
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t_r = timegm(&tm) -
	    (sign == '-' ? -1 : 1) * ((zone / 100) * 3600 + (zone % 100) * 60);
	return 0;
}

/* APPEND mailbox [(flags)] [date-time] literal: everything but the
 * literal's contents, so it also serves when the literal is announced
 * (the message is the last argument so far). *last_r: the literal. */
static int
check_append_args(struct imap_session *s, const struct imap_command *cmd,
    const struct imap_arg **last_r)
{
	const struct imap_arg *a = imap_arg_next(cmd->args), *last = a;
	time_t t;

	if (cmd->argc < 2 || cmd->argc > 4) {
		s->error = "APPEND takes a mailbox, flags, a date and a "
			   "message";
		return -1;
	}
	if (imap_get_mailbox(s, cmd->args, s->a.mbox, sizeof(s->a.mbox)) == -1)
		return -1;
	while (imap_arg_next(last))
		last = imap_arg_next(last);
	if (last->type != IMAP_ARG_LITERAL ||
	    (last->flags & IMAP_ARGF_BINARY)) {
		s->error = "APPEND needs the message as a literal";
		return -1;
	}
	if (a != last && a->type == IMAP_ARG_LIST) {
		if (imap_flags_parse(s, a, false, NULL) == -1)
			return -1;
		a = imap_arg_next(a);
	}
	if (a != last) {
		if (a->type != IMAP_ARG_QUOTED ||
		    parse_date(a->ptr, a->len, &t) == -1) {
			s->error = "Invalid date-time";
			return -1;
		}
		a = imap_arg_next(a);
	}
	if (a != last) {
		s->error = "Too many APPEND arguments";
		return -1;
	}
	*last_r = last;
	return 0;
}

static int
check_append(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *last;

	if (check_append_args(s, cmd, &last) == -1)
		return -1;
	/* a streamed message must be the one s->app received */
	if ((last->flags & IMAP_ARGF_STREAMED) &&
	    (s->lit_over || last->stream != 0 || s->app == NULL ||
		s->app->state != AS_RECEIVED ||
		s->app->received != last->len)) {
		s->error = "Literal not received in full";
		return -1;
	}
	return 0;
}

/* Flags, keywords (kept in fl) and internal date of a checked APPEND.
 * -1 with s->error if the keywords cannot be kept (out of memory). */
static int
append_options(struct imap_session *s, const struct imap_command *cmd,
    struct maildir_delivery *opt, struct imap_flag_list *fl)
{
	const struct imap_arg *a = imap_arg_next(cmd->args), *last = a;

	while (imap_arg_next(last))
		last = imap_arg_next(last);
	if (a != last && a->type == IMAP_ARG_LIST) {
		if (imap_flags_parse(s, a, false, fl) == -1)
			return -1;
		opt->flags = fl->flags;
		/* a keyword too long to keep is dropped like one that
		 * does not fit: the message matters more */
		opt->keywords = fl->too_long ?
		    NULL :
		    (const char *const *)fl->keywords;
		opt->keyword_count = fl->too_long ? 0 : fl->nkeywords;
		a = imap_arg_next(a);
	}
	if (a != last)
		parse_date(a->ptr, a->len, &opt->date);
	return 0;
}

/* ---- jobs over the selected folder -------------------------------- */

static struct msg_job *
msg_job(struct imap_session *s)
{
	struct msg_job *job = imap_job_new(s, sizeof(*job), NULL);

	if (job == NULL) {
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return NULL;
	}
	job->base.release = msg_release;
	job->readonly = s->readonly;
	return job;
}

static void
msg_release(struct imap_job *ij)
{
	struct msg_job *job = (struct msg_job *)ij;

	free(job->idx);
	imap_flags_free(&job->fl);
}

/* Lend the folder and queue the job. */
static void
submit_on_box(struct imap_session *s, struct msg_job *job,
    int (*finish)(struct imap_session *, struct imap_job *), pool_run_fn *run)
{
	job->base.finish = finish;
	job->base.box = s->box;
	s->box = NULL;
	imap_job_submit(s, &job->base, run);
}

/* ---- STORE ------------------------------------------------------- */

static void
run_store(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *op = imap_arg_next(cmd->args);
	struct msg_job *job;

	if (s->readonly) {
		imap_reply(s, NULL, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	if ((job = msg_job(s)) == NULL)
		return;
	if (parse_set(s, cmd->args, cmd->uid, job) == -1 ||
	    imap_flags_parse(s, imap_arg_next(op), true, &job->fl) == -1) {
		imap_reply(s, NULL, "BAD %s", s->error);
		imap_job_free(&job->base);
		return;
	}
	if (job->fl.too_long) {
		imap_reply(s, NULL, "NO [LIMIT] Keyword longer than %d bytes",
		    MAILDIR_KEYWORD_LEN_MAX);
		imap_job_free(&job->base);
		return;
	}
	job->uid = cmd->uid;
	job->store_op = op->ptr[0] == '+' ? 1 : op->ptr[0] == '-' ? -1 : 0;
	job->silent = op->len > 6 &&
	    strncasecmp(op->ptr + op->len - 7, ".SILENT", 7) == 0;
	submit_on_box(s, job, store_finish, store_run);
}

/* The change as the storage applies it, to the flags each file has on
 * disk when it is renamed (so concurrent STOREs never undo each other):
 * keywords become letters, new ones are added to the folder (not for
 * -FLAGS, which cannot need them). Replacing leaves what IMAP cannot
 * name: the P flag and letters without a keyword. */
static int
store_resolve(struct msg_job *job, struct maildir_flag_change *c)
{
	struct maildir *box = job->base.box;
	uint32_t letters = 0;

	memset(c, 0, sizeof(*c));
	if (job->fl.nkeywords > 0 &&
	    maildir_keywords_get(box, (const char *const *)job->fl.keywords,
		job->fl.nkeywords, job->store_op >= 0, &letters,
		&job->base.errtext) == -1)
		return -1;
	if (job->store_op > 0) {
		c->set = job->fl.flags;
		c->set_keywords = maildir_keywords_canon(box, letters);
	} else if (job->store_op < 0) {
		c->clear = job->fl.flags;
		c->clear_keywords = letters; /* every letter of the name */
	} else {
		c->set = job->fl.flags;
		c->clear = (MAILDIR_FLAGS_STORED & ~MAILDIR_FLAG_PASSED) &
		    ~job->fl.flags;
		c->set_keywords = maildir_keywords_canon(box, letters);
		c->clear_keywords = maildir_keywords_named(box) & ~letters;
	}
	return 0;
}

/* Whether after is what this change makes of before: if not, someone
 * else changed the message too, and even .SILENT reports it (RFC 3501
 * 6.4.6). */
static bool
store_expected(const struct maildir_msg *before,
    const struct maildir_msg *after, const struct maildir_flag_change *c)
{
	unsigned f = ((before->flags & ~c->clear) | c->set) &
	    MAILDIR_FLAGS_STORED;
	uint32_t k = (before->keywords & ~c->clear_keywords) | c->set_keywords;

	return (after->flags & MAILDIR_FLAGS_STORED) == f &&
	    after->keywords == k;
}

static void
store_run(struct pool_job *sj)
{
	struct msg_job *job = (struct msg_job *)sj;
	struct maildir *box = job->base.box;
	struct buf *b = &job->base.out;
	struct maildir_flag_change c;
	const struct maildir_msg *msgs;
	size_t n;

	errno = 0;
	if (store_resolve(job, &c) == -1) {
		job->base.err = errno ? errno : EIO;
		return;
	}
	/* new keywords are announced before any FETCH shows one */
	if (maildir_keywords_changed(box))
		imap_write_flag_lists(b, box);
	for (size_t k = 0; k < job->nidx; k++) {
		size_t i = job->idx[k];
		struct maildir_msg before;
		const char *e;

		msgs = maildir_msgs(box, &n);
		before = msgs[i];
		if (maildir_change_flags(box, i, &c, &e) == -1) {
			/* expunged meanwhile: nothing to report (RFC 3501
			 * 7.4.1 lets the EXPUNGE come later) */
			if (errno == EAGAIN)
				job->store_retry = true;
			else if (errno != ENOENT) {
				job->base.err = errno ? errno : EIO;
				job->base.errtext = e;
			}
			continue;
		}
		msgs = maildir_msgs(box, &n);
		if (job->silent && store_expected(&before, &msgs[i], &c))
			continue;
		buf_printf(b, "* %zu FETCH (", i + 1);
		imap_write_flags(b, box, &msgs[i]);
		if (job->uid)
			buf_printf(b, " UID %u", msgs[i].uid);
		buf_printf(b, ")\r\n");
	}
	maildir_msgs(box, &n);
	job->exists = (uint32_t)n;
}

static int
store_finish(struct imap_session *s, struct imap_job *ij)
{
	struct msg_job *job = (struct msg_job *)ij;

	s->box = ij->box;
	ij->box = NULL;
	/* what did change is reported whatever the outcome */
	imap_send(s, buf_head(&ij->out), buf_used(&ij->out));
	if (ij->err == EOVERFLOW) {
		imap_reply(s, NULL,
		    "NO [LIMIT] Too many keywords in this "
		    "mailbox (%d)",
		    MAILDIR_KEYWORDS_MAX);
	} else if (ij->err) {
		log_error(s->sid, "imap.store_failed", "errno=%d error=\"%s\"",
		    ij->err, ij->errtext ? ij->errtext : "?");
		imap_reply(s, NULL, "NO [SERVERBUG] Internal error");
	} else if (job->store_retry) {
		imap_reply(s, NULL,
		    "NO [INUSE] Messages changed by others "
		    "meanwhile, try again");
	} else {
		imap_reply(s, NULL, "OK STORE completed");
	}
	return 0;
}

/* ---- EXPUNGE, CLOSE, NOOP: sync the folder ------------------------ */

static void
run_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	struct msg_job *job;

	if (s->readonly) {
		imap_reply(s, NULL, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	if ((job = msg_job(s)) == NULL)
		return;
	if (cmd->uid && parse_set(s, cmd->args, true, job) == -1) {
		imap_reply(s, NULL, "BAD %s", s->error);
		imap_job_free(&job->base);
		return;
	}
	job->uid = cmd->uid;
	job->expunge = true;
	submit_on_box(s, job, sync_finish, sync_run);
}

static void
run_close(struct imap_session *s, const struct imap_command *cmd)
{
	struct msg_job *job;

	if (s->readonly) {
		imap_unselect(s);
		imap_reply(s, NULL, "OK CLOSE completed");
		return;
	}
	if ((job = msg_job(s)) == NULL)
		return;
	job->expunge = job->quiet = job->close_after = true;
	submit_on_box(s, job, sync_finish, sync_run);
}

static void
run_unselect(struct imap_session *s, const struct imap_command *cmd)
{
	imap_unselect(s);
	imap_reply(s, NULL, "OK UNSELECT completed");
}

static void
run_noop(struct imap_session *s, const struct imap_command *cmd)
{
	struct msg_job *job = msg_job(s);

	if (job != NULL)
		submit_on_box(s, job, sync_finish, sync_run);
}

/* Expunge (if asked) and rescan; announce what changed. */
static void
sync_run(struct pool_job *sj)
{
	struct msg_job *job = (struct msg_job *)sj;
	struct maildir *box = job->base.box;
	struct buf *b = &job->base.out;
	struct maildir_changes ch;
	const struct maildir_msg *msgs;
	size_t n;

	msgs = maildir_msgs(box, &n);
	if (job->expunge) {
		uint32_t *uids = calloc(n + 1, sizeof(*uids));
		size_t nu = 0;

		if (uids == NULL) {
			job->base.err = ENOMEM;
			return;
		}
		if (job->uid) {
			for (size_t k = 0; k < job->nidx; k++)
				if (msgs[job->idx[k]].flags &
				    MAILDIR_FLAG_DELETED)
					uids[nu++] = msgs[job->idx[k]].uid;
		} else {
			for (size_t i = 0; i < n; i++)
				if (msgs[i].flags & MAILDIR_FLAG_DELETED)
					uids[nu++] = msgs[i].uid;
		}
		if (nu > 0 &&
		    maildir_expunge(box, uids, nu, &job->base.errtext) == -1)
			job->base.err = errno ? errno : EIO;
		free(uids);
		if (job->base.err)
			return;
	}
	if (maildir_sync(box, &ch, &job->base.errtext) == -1) {
		job->base.err = errno ? errno : EIO;
		return;
	}
	msgs = maildir_msgs(box, &n);
	job->exists = (uint32_t)n;
	if (job->quiet) {
		maildir_changes_free(&ch);
		return;
	}
	imap_write_changes(b, box, &ch);
	maildir_changes_free(&ch);
}

void
imap_write_changes(struct buf *b, const struct maildir *box,
    const struct maildir_changes *ch)
{
	const struct maildir_msg *msgs;
	size_t n;

	msgs = maildir_msgs(box, &n);
	/* descending: each EXPUNGE leaves the lower numbers valid */
	for (size_t k = ch->expunged_count; k > 0; k--)
		buf_printf(b, "* %u EXPUNGE\r\n", ch->expunged_seqs[k - 1]);
	if (ch->keywords_changed)
		imap_write_flag_lists(b, box);
	for (size_t k = 0; k < ch->flag_changed_count; k++) {
		size_t i = ch->flag_changed[k];

		buf_printf(b, "* %zu FETCH (", i + 1);
		imap_write_flags(b, box, &msgs[i]);
		buf_printf(b, " UID %u)\r\n", msgs[i].uid);
	}
	if (ch->new_count > 0 || ch->expunged_count > 0) {
		size_t recent = 0;

		/* RFC 3501 7.3.2: RECENT goes with a change of size */
		for (size_t i = 0; i < n; i++)
			recent += (msgs[i].flags & MAILDIR_FLAG_RECENT) != 0;
		buf_printf(b, "* %zu EXISTS\r\n* %zu RECENT\r\n", n, recent);
	}
}

static int
sync_finish(struct imap_session *s, struct imap_job *ij)
{
	struct msg_job *job = (struct msg_job *)ij;

	s->box = ij->box;
	ij->box = NULL;
	if (ij->err) {
		log_error(s->sid, "imap.store_failed", "errno=%d error=\"%s\"",
		    ij->err, ij->errtext ? ij->errtext : "?");
		imap_reply(s, NULL, "NO [SERVERBUG] Internal error");
		return 0;
	}
	imap_send(s, buf_head(&ij->out), buf_used(&ij->out));
	s->exists = job->exists;
	if (job->close_after) {
		imap_unselect(s);
		imap_reply(s, NULL, "OK CLOSE completed");
		return 0;
	}
	imap_reply(s, NULL, "OK Completed");
	return 0;
}

/* ---- APPEND -------------------------------------------------------- */

static void
run_append(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *last = cmd->args;
	struct append_job *job;

	while (imap_arg_next(last))
		last = imap_arg_next(last);
	if (last->flags & IMAP_ARGF_STREAMED) {
		/* check_append() made sure s->app holds all of it */
		s->app->state = AS_COMMIT;
		if (!s->app->job_out)
			commit_submit(s);
		return;
	}
	if ((job = imap_job_new(s, sizeof(*job), append_finish)) == NULL) {
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return;
	}
	job->base.release = append_release;
	job->maildir = s->maildir;
	memcpy(job->name, s->a.mbox, sizeof(job->name));
	if (append_options(s, cmd, &job->opt, &job->fl) == -1 ||
	    buf_append(&job->data, last->ptr, last->len) == -1) {
		imap_job_free(&job->base);
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return;
	}
	imap_announce_lend(s, &job->base, job->name);
	imap_job_submit(s, &job->base, append_run);
}

static void
append_run(struct pool_job *sj)
{
	struct append_job *job = (struct append_job *)sj;

	errno = 0;
	if (maildir_deliver(job->maildir, job->name, buf_head(&job->data),
		buf_used(&job->data), &job->opt, &job->uidvalidity, &job->uid,
		&job->base.errtext) == -1)
		job->base.err = errno ? errno : EIO;
	else
		imap_announce_sync(&job->base);
}

/* The tagged NO for a failed APPEND; unexpected errors are logged. */
static void
append_fail(struct imap_session *s, int err, const char *text)
{
	switch (err) {
	case ENOENT:
		imap_reply(s, NULL, "NO [TRYCREATE] Mailbox does not exist");
		return;
	case EINVAL:
		imap_reply(s, NULL, "NO [CANNOT] Invalid mailbox name");
		return;
	case ENAMETOOLONG:
		imap_reply(s, NULL, "NO [LIMIT] Mailbox name too long");
		return;
	case ENOSPC:
	case EDQUOT:
		imap_reply(s, NULL, "NO [OVERQUOTA] Mailbox full");
		return;
	case EAGAIN:
		imap_reply(s, NULL, "NO [UNAVAILABLE] Server busy, try again");
		return;
	default:
		log_error(s->sid, "imap.append_failed", "errno=%d error=\"%s\"",
		    err, text ? text : "?");
		imap_reply(s, NULL, "NO [SERVERBUG] Internal error");
	}
}

static int
append_finish(struct imap_session *s, struct imap_job *ij)
{
	struct append_job *job = (struct append_job *)ij;

	imap_announce_finish(s, ij);
	if (ij->err) {
		append_fail(s, ij->err, ij->errtext);
		return 0;
	}
	imap_reply(s, NULL, "OK [APPENDUID %u %u] APPEND completed",
	    job->uidvalidity, job->uid);
	return 0;
}

static void
append_release(struct imap_job *ij)
{
	buf_free(&((struct append_job *)ij)->data);
	imap_flags_free(&((struct append_job *)ij)->fl);
}

/* ---- streamed APPEND ------------------------------------------------ */

void
imap_append_literal(struct imap_session *s)
{
	const struct imap_literal *lit = &s->input.parser.lit;
	struct imap_command cmd = s->input.parser.cmd;
	const struct imap_arg *last;
	struct imap_append *app;
	struct stream_job *job = NULL;

	/* the command so far: its arguments end with this literal */
	cmd.args = cmd.nargs > 0 ? s->input.argv : NULL;
	s->error = NULL;
	s->a.refuse = NULL;
	if (s->app != NULL || check_append_args(s, &cmd, &last) == -1 ||
	    !(last->flags & IMAP_ARGF_STREAMED)) {
		/* a synchronizing literal is refused now; a LITERAL+ one is
		 * dropped as it comes and check_append() answers after it */
		if (lit->sync && imap_input_refuse(&s->input) == 0) {
			if (s->a.refuse != NULL)
				imap_reply(s, NULL, "NO %s", s->a.refuse);
			else
				imap_bad(s,
				    s->error ? s->error : "Invalid APPEND");
		}
		return;
	}
	if ((app = calloc(1, sizeof(*app))) == NULL) {
		/* a LITERAL+ one is dropped: BAD "not received in full" */
		if (lit->sync && imap_input_refuse(&s->input) == 0)
			imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return;
	}
	memcpy(app->name, s->a.mbox, sizeof(app->name));
	app->size = lit->size;
	app->sync = lit->sync;
	s->app = app;
	if (append_options(s, &cmd, &app->opt, &app->fl) == -1 ||
	    (job = stream_job(s, begin_finish)) == NULL ||
	    imap_job_queue(s, &job->base, begin_run, SF_BUSY) == -1) {
		app->err = job ? EAGAIN : ENOMEM;
		app->state = AS_STREAM;
		if (app->sync) {
			if (imap_input_refuse(&s->input) == 0)
				append_fail(s, app->err, "cannot queue");
			stream_drop(s);
		}
		return;
	}
	app->job_out = true;
}

static struct stream_job *
stream_job(struct imap_session *s,
    int (*finish)(struct imap_session *, struct imap_job *))
{
	struct stream_job *job = imap_job_new(s, sizeof(*job), finish);

	if (job == NULL)
		return NULL;
	job->base.release = stream_release;
	job->app = s->app;
	job->maildir = s->maildir;
	return job;
}

static void
stream_release(struct imap_job *ij)
{
	free(((struct stream_job *)ij)->data);
}

static void
begin_run(struct pool_job *sj)
{
	struct stream_job *job = (struct stream_job *)sj;
	struct imap_append *app = job->app;

	errno = 0;
	if (maildir_deliver_begin(job->maildir, app->name, &app->opt, &app->in,
		&job->base.errtext) == -1)
		job->base.err = errno ? errno : EIO;
}

/* The tmp file is there: ask for the message. If it could not be made,
 * a synchronizing literal is refused with NO; a LITERAL+ one is dropped
 * as it arrives and the NO comes at the command's end. */
static int
begin_finish(struct imap_session *s, struct imap_job *ij)
{
	struct imap_append *app = s->app;

	app->job_out = false;
	app->state = app->size > 0 ? AS_STREAM : AS_RECEIVED;
	if (ij->err == 0) {
		if (app->sync)
			imap_reply(s, "+", "OK");
		return 0;
	}
	app->err = ij->err;
	app->errtext = ij->errtext;
	if (app->sync && imap_input_refuse(&s->input) == 0) {
		append_fail(s, app->err, app->errtext);
		stream_drop(s);
	}
	return 0;
}

void
imap_append_data(struct imap_session *s, const char *p, size_t n)
{
	struct imap_append *app = s->app;

	if (app == NULL || app->state != AS_STREAM)
		return;
	app->received += n;
	if (app->received >= app->size)
		app->state = AS_RECEIVED;
	if (app->err != 0)
		return; /* dropped: the NO comes at the end */
	if (app->fill == NULL) {
		app->fill = app->spare ? app->spare : malloc(CHUNK_BYTES);
		app->spare = NULL;
		app->len = 0;
		if (app->fill == NULL) {
			app->err = ENOMEM;
			app->errtext = "out of memory";
			return;
		}
	}
	if (n > CHUNK_BYTES - app->len) {
		/* imap_append_room() bounds what is fed: cannot happen */
		app->err = EIO;
		app->errtext = "chunk overflow";
		return;
	}
	memcpy(app->fill + app->len, p, n);
	app->len += n;
	if (app->len == CHUNK_BYTES && !app->job_out)
		write_submit(s);
}

size_t
imap_append_room(const struct imap_session *s)
{
	const struct imap_append *app = s->app;

	if (app == NULL)
		return SIZE_MAX;
	switch (app->state) {
	case AS_STREAM:
		if (app->err != 0)
			return SIZE_MAX;
		return app->fill == NULL ? CHUNK_BYTES : CHUNK_BYTES - app->len;
	case AS_COMMIT:
	case AS_ABORTED:
		return 0; /* until the write out comes back */
	default:
		return SIZE_MAX;
	}
}

/* Hand the full chunk to the pool; the next one fills meanwhile. */
static void
write_submit(struct imap_session *s)
{
	struct imap_append *app = s->app;
	struct stream_job *job = stream_job(s, write_finish);

	if (job == NULL) {
		app->err = ENOMEM;
		app->errtext = "out of memory";
		return;
	}
	job->data = app->fill;
	job->len = app->len;
	app->fill = NULL;
	app->len = 0;
	if (imap_job_queue(s, &job->base, write_run, SF_WRITING) == -1) {
		app->err = EAGAIN; /* the chunk went with the job */
		app->errtext = "store queue full";
		return;
	}
	app->job_out = true;
}

static void
write_run(struct pool_job *sj)
{
	struct stream_job *job = (struct stream_job *)sj;

	errno = 0;
	if (maildir_deliver_write(job->app->in, job->data, job->len,
		&job->base.errtext) == -1)
		job->base.err = errno ? errno : EIO;
}

static int
write_finish(struct imap_session *s, struct imap_job *ij)
{
	struct stream_job *job = (struct stream_job *)ij;
	struct imap_append *app = s->app;

	app->job_out = false;
	/* The buffer comes back for reuse, unless one is spare already: a
	 * chunk that filled while this one was out, went out in turn and is
	 * back before any byte asked for the spare. */
	if (app->spare == NULL) {
		app->spare = job->data;
		job->data = NULL;
	}
	if (ij->err != 0 && app->err == 0) {
		app->err = ij->err;
		app->errtext = ij->errtext;
		free(app->fill);
		app->fill = NULL;
		app->len = 0;
		dispose(s, &app->in); /* no need to keep a full disk full */
	}
	switch (app->state) {
	case AS_ABORTED:
		stream_drop(s);
		break;
	case AS_COMMIT:
		commit_submit(s);
		break;
	default:
		if (app->err == 0 && app->len == CHUNK_BYTES)
			write_submit(s);
		break;
	}
	return 0;
}

/* APPEND ran and no write is out: the last bytes, fsync, link, UID. */
static void
commit_submit(struct imap_session *s)
{
	struct imap_append *app = s->app;
	struct stream_job *job;

	if (app->err != 0) {
		append_fail(s, app->err, app->errtext);
		stream_drop(s);
		return;
	}
	if ((job = stream_job(s, commit_finish)) == NULL) {
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		stream_drop(s);
		return;
	}
	job->data = app->fill;
	job->len = app->len;
	app->fill = NULL;
	app->len = 0;
	imap_announce_lend(s, &job->base, app->name);
	if (imap_job_submit(s, &job->base, commit_run) == -1) {
		stream_drop(s);
		return;
	}
	app->job_out = true;
}

static void
commit_run(struct pool_job *sj)
{
	struct stream_job *job = (struct stream_job *)sj;
	struct imap_append *app = job->app;

	errno = 0;
	if ((job->len > 0 &&
		maildir_deliver_write(app->in, job->data, job->len,
		    &job->base.errtext) == -1) ||
	    maildir_deliver_commit(&app->in, &job->uidvalidity, &job->uid,
		&job->base.errtext) == -1)
		job->base.err = errno ? errno : EIO;
	else
		imap_announce_sync(&job->base);
}

static int
commit_finish(struct imap_session *s, struct imap_job *ij)
{
	struct stream_job *job = (struct stream_job *)ij;

	s->app->job_out = false;
	imap_announce_finish(s, ij);
	if (ij->err != 0)
		append_fail(s, ij->err, ij->errtext);
	else
		imap_reply(s, NULL, "OK [APPENDUID %u %u] APPEND completed",
		    job->uidvalidity, job->uid);
	stream_drop(s);
	return 0;
}

void
imap_append_end(struct imap_session *s)
{
	struct imap_append *app = s->app;

	if (app == NULL || app->state == AS_COMMIT || app->state == AS_ABORTED)
		return;
	if (app->job_out) {
		app->state = AS_ABORTED; /* after the write comes back */
		return;
	}
	stream_drop(s);
}

/* Forget the streamed APPEND (no job out): the tmp file, if any, goes. */
static void
stream_drop(struct imap_session *s)
{
	struct imap_append *app = s->app;

	if (app == NULL)
		return;
	dispose(s, &app->in);
	free(app->fill);
	free(app->spare);
	imap_flags_free(&app->fl);
	free(app);
	s->app = NULL;
}

void
imap_append_free(struct imap_session *s)
{
	stream_drop(s);
}

/* Unlink an unfinished tmp file on the pool; if the pool has stopped
 * (or memory is short), here. */
static void
dispose(struct imap_session *s, struct maildir_incoming **in)
{
	struct dispose_job *job;

	if (*in == NULL)
		return;
	if ((job = calloc(1, sizeof(*job))) != NULL) {
		job->base.run = dispose_run;
		job->in = *in;
		if (pool_detach(s->srv->store, &job->base) == 0) {
			*in = NULL;
			return;
		}
		free(job);
	}
	maildir_deliver_abort(in);
}

static void
dispose_run(struct pool_job *sj)
{
	struct dispose_job *job = (struct dispose_job *)sj;

	maildir_deliver_abort(&job->in);
	free(job);
}
