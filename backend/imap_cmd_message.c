/*
 * imap_cmd_message.c - message commands of the selected state: STORE,
 * EXPUNGE, CLOSE, UNSELECT, NOOP/CHECK (folder sync) and their UID forms.
 * FETCH is imap_cmd_fetch.c, APPEND imap_append.c.
 *
 * Relies on the folder being borrowed by the job (one thread at a time),
 * and on the view of the folder changing only through syncs whose results
 * are announced, so sequence numbers the client knows always match the
 * view's indexes.
 *
 * Must never: touch a message file on the ring thread, change flags or
 * expunge in a read-only (EXAMINE) folder, or send EXPUNGE during STORE.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/imap_private.h"
#include "core/log.h"
#include "store/maildir.h"

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

static int check_store(struct imap_session *s, const struct imap_command *cmd);
static int check_expunge(struct imap_session *s,
    const struct imap_command *cmd);
static void run_store(struct imap_session *s, const struct imap_command *cmd);
static void run_expunge(struct imap_session *s, const struct imap_command *cmd);
static void run_close(struct imap_session *s, const struct imap_command *cmd);
static void run_unselect(struct imap_session *s,
    const struct imap_command *cmd);
static void run_noop(struct imap_session *s, const struct imap_command *cmd);

static int parse_set(struct imap_session *s, const struct imap_arg *a, bool uid,
    struct msg_job *job);
static struct msg_job *msg_job(struct imap_session *s);
static void msg_release(struct imap_job *ij);
static void store_run(struct pool_job *sj);
static int store_resolve(struct msg_job *job, struct maildir_flag_change *c);
static bool store_expected(const struct maildir_msg *before,
    const struct maildir_msg *after, const struct maildir_flag_change *c);
static int store_finish(struct imap_session *s, struct imap_job *ij);
static void sync_run(struct pool_job *sj);
static int sync_finish(struct imap_session *s, struct imap_job *ij);

const struct imap_cmd_def imap_cmds_message[] = {
	{ "STORE", ST_SELECTED, true, check_store, run_store },
	{ "EXPUNGE", ST_SELECTED, true, check_expunge, run_expunge },
	{ "CLOSE", ST_SELECTED, false, imap_check_none, run_close },
	{ "UNSELECT", ST_SELECTED, false, imap_check_none, run_unselect },
	{ "NOOP", ST_SELECTED, false, imap_check_none, run_noop },
	{ "CHECK", ST_SELECTED, false, imap_check_none, run_noop },
	{ NULL },
};

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
