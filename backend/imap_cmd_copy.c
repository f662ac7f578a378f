/*
 * imap_cmd_copy.c - COPY and MOVE (RFC 3501, RFC 6851) and their UID
 * forms, answered with UIDPLUS's COPYUID (RFC 4315).
 *
 * The set is resolved on the ring against the view the client knows; the
 * copy itself (links or renames, the destination's UID list) runs on the
 * store pool with the folder borrowed, like every other message command.
 * A MOVE then syncs the source folder on the pool, so its EXPUNGEs come
 * from the same change report as EXPUNGE's and are numbered correctly; a
 * COPY into the selected folder syncs it too, so the copies' EXISTS (and
 * their \Recent, which is this session's) precede the tagged OK.
 *
 * Must never: touch files on the ring thread, move out of a read-only
 * (EXAMINE) folder, or claim COPYUID pairs for messages that were gone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/deliver.h"
#include "backend/imap_private.h"
#include "core/log.h"
#include "store/maildir.h"

struct copy_job {
	struct imap_job base;
	bool move;
	char dest[IMAP_MBOX_MAX];
	uint32_t *uids; /* source UIDs, ascending */
	uint32_t *dst;	/* destination UIDs, 0 where the source was gone */
	size_t n;
	uint32_t uidvalidity;
	bool announce;	     /* the view changes: MOVE, or COPY into itself */
	const char *maildir; /* the session's, outlives the job */
	uint64_t bytes;	     /* a COPY adds these to the Maildir (quota) */
};

static int check_copy(struct imap_session *s, const struct imap_command *cmd);
static void run_copy(struct imap_session *s, const struct imap_command *cmd);
static void copy_run(struct pool_job *sj);
static int copy_finish(struct imap_session *s, struct imap_job *ij);
static void copy_release(struct imap_job *ij);
static void write_uid_set(struct buf *b, const uint32_t *set,
    const uint32_t *dst, size_t n);

const struct imap_cmd_def imap_cmds_copy[] = {
	{ "COPY", ST_SELECTED, true, check_copy, run_copy },
	{ "MOVE", ST_SELECTED, true, check_copy, run_copy },
	{ NULL },
};

/* COPY set mailbox */
static int
check_copy(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 2) {
		s->error = "Expected a sequence set and a mailbox";
		return -1;
	}
	if (imap_set_resolve(s, cmd->args, cmd->uid, NULL, NULL) == -1)
		return -1;
	return imap_get_mailbox(s, imap_arg_next(cmd->args), s->a.mbox,
	    sizeof(s->a.mbox));
}

static void
run_copy(struct imap_session *s, const struct imap_command *cmd)
{
	struct copy_job *job;
	const struct maildir_msg *msgs;
	uint32_t *idx = NULL;
	size_t nidx = 0, n;
	bool move = imap_command_is(cmd, "MOVE");

	if (move && s->readonly) {
		imap_reply(s, NULL, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	job = imap_job_new(s, sizeof(*job), copy_finish);
	if (job == NULL) {
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return;
	}
	job->base.release = copy_release;
	job->move = move;
	memcpy(job->dest, s->a.mbox, sizeof(job->dest));
	if (imap_set_resolve(s, cmd->args, cmd->uid, &idx, &nidx) == -1) {
		imap_reply(s, NULL, "BAD %s", s->error);
		imap_job_free(&job->base);
		return;
	}
	/* The pool works by UID: indexes would shift under a sync. */
	job->uids = calloc(nidx + 1, sizeof(*job->uids));
	job->dst = calloc(nidx + 1, sizeof(*job->dst));
	if (job->uids == NULL || job->dst == NULL) {
		free(idx);
		imap_job_free(&job->base);
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return;
	}
	msgs = maildir_msgs(s->box, &n);
	for (size_t k = 0; k < nidx; k++) {
		job->uids[k] = msgs[idx[k]].uid;
		job->bytes += msgs[idx[k]].size;
	}
	job->maildir = s->maildir;
	job->n = nidx;
	free(idx);
	job->announce = move || maildir_is_folder(s->box, job->dest);
	job->base.box = s->box;
	s->box = NULL;
	imap_job_submit(s, &job->base, copy_run);
}

static void
copy_run(struct pool_job *sj)
{
	struct copy_job *job = (struct copy_job *)sj;

	errno = 0;
	/* a MOVE within the Maildir adds nothing */
	if (!job->move && job->base.has_quota &&
	    deliver_quota_check(job->maildir, job->base.quota, job->bytes,
		&job->base.errtext) == -1) {
		job->base.err = errno ? errno : EIO;
		return;
	}
	if (maildir_copy(job->base.box, job->uids, job->n, job->dest, job->move,
		&job->uidvalidity, job->dst, &job->base.errtext) == -1) {
		job->base.err = errno ? errno : EIO;
		return;
	}
	/* Moved files are gone from the source, copies into the selected
	 * folder are new in it: announce either now. */
	if (job->announce)
		imap_announce_sync(&job->base);
}

/* The pairs that were copied, as a compact uid-set: set[i] for every i
 * with dst[i] != 0, consecutive runs as ranges. */
static void
write_uid_set(struct buf *b, const uint32_t *set, const uint32_t *dst, size_t n)
{
	const char *sep = "";

	for (size_t i = 0; i < n;) {
		size_t j = i;

		if (dst[i] == 0) {
			i++;
			continue;
		}
		while (j + 1 < n && dst[j + 1] != 0 && set[j + 1] == set[j] + 1)
			j++;
		if (j == i)
			buf_printf(b, "%s%u", sep, set[i]);
		else
			buf_printf(b, "%s%u:%u", sep, set[i], set[j]);
		sep = ",";
		i = j + 1;
	}
}

static int
copy_finish(struct imap_session *s, struct imap_job *ij)
{
	struct copy_job *job = (struct copy_job *)ij;
	const char *verb = job->move ? "MOVE" : "COPY";
	struct buf code = { 0 };
	size_t copied = 0, n;

	s->box = ij->box;
	ij->box = NULL;
	if (ij->err == ENOENT) {
		imap_reply(s, NULL, "NO [TRYCREATE] Mailbox does not exist");
		return 0;
	}
	if (ij->err == EDQUOT || ij->err == ENOSPC) {
		imap_reply(s, NULL, "NO [OVERQUOTA] %s",
		    ij->err == EDQUOT ? "Over quota" : "Mailbox full");
		return 0;
	}
	if (ij->err) {
		log_error(s->sid, "imap.copy_failed", "errno=%d error=\"%s\"",
		    ij->err, ij->errtext ? ij->errtext : "?");
		imap_reply(s, NULL,
		    ij->err == EINVAL ? "NO [CANNOT] Invalid mailbox name" :
			ij->err == ENAMETOOLONG ?
					"NO [LIMIT] Mailbox name too long" :
					"NO [SERVERBUG] Internal error");
		return 0;
	}
	for (size_t i = 0; i < job->n; i++)
		copied += job->dst[i] != 0;
	if (copied > 0) {
		buf_printf(&code, "COPYUID %u ", job->uidvalidity);
		write_uid_set(&code, job->uids, job->dst, job->n);
		buf_printf(&code, " ");
		write_uid_set(&code, job->dst, job->dst, job->n);
	}
	/* RFC 6851: a MOVE's COPYUID comes in an untagged OK before the
	 * EXPUNGEs, which leave the source UIDs meaningless; the tagged OK
	 * repeats it for clients that only look there. */
	if (job->move && copied > 0)
		imap_reply(s, "*", "OK [%.*s] Moved", (int)buf_used(&code),
		    buf_head(&code));
	imap_send(s, buf_head(&ij->out), buf_used(&ij->out));
	maildir_msgs(s->box, &n);
	s->exists = (uint32_t)n;
	if (copied == 0)
		imap_reply(s, NULL, "OK %s completed, no messages", verb);
	else
		imap_reply(s, NULL, "OK [%.*s] %s completed",
		    (int)buf_used(&code), buf_head(&code), verb);
	buf_free(&code);
	return 0;
}

static void
copy_release(struct imap_job *ij)
{
	struct copy_job *job = (struct copy_job *)ij;

	free(job->uids);
	free(job->dst);
}
