/*
 * imap_announce.c - what a command puts into the selected folder reaches
 * the session before its tagged OK: RFC 3501 6.3.11 (APPEND) and 6.4.7
 * (COPY) ask for the new message's EXISTS, so that the client may FETCH
 * it by sequence number at once; UID COPY and MOVE alike.
 *
 * A command whose target is the selected folder borrows the session's
 * view for its job (imap_announce_lend(), on the ring: checking the name
 * is string work). After the store call the job syncs that view on the
 * pool (imap_announce_sync()), which also claims \Recent for this
 * session, since it is the first to see the message, and writes
 * EXPUNGE / FETCH / EXISTS / RECENT into the job's output; the finish
 * gives the view back and sends that output ahead of the tagged answer
 * (imap_announce_finish()). A command into another folder changes
 * nothing here.
 *
 * Must never: touch the disk on the ring, or fail a command whose store
 * call succeeded because the sync after it failed (that is logged, and
 * the next NOOP reports the changes).
 */
#include <errno.h>

#include "backend/imap_private.h"
#include "core/log.h"
#include "store/maildir.h"

bool
imap_announce_lend(struct imap_session *s, struct imap_job *job,
    const char *name)
{
	if (s->box == NULL || job->box != NULL ||
	    !maildir_is_folder(s->box, name))
		return false;
	job->box = s->box;
	s->box = NULL;
	return true;
}

void
imap_announce_sync(struct imap_job *job)
{
	struct maildir_changes ch;
	const char *err = NULL;

	if (job->box == NULL)
		return;
	if (maildir_sync(job->box, &ch, &err) == -1) {
		log_error(job->base.sid, "imap.announce_failed",
		    "errno=%d error=\"%s\"", errno, err ? err : "?");
		return;
	}
	imap_write_changes(&job->out, job->box, &ch);
	maildir_changes_free(&ch);
}

void
imap_announce_finish(struct imap_session *s, struct imap_job *job)
{
	size_t n;

	if (job->box == NULL)
		return;
	s->box = job->box;
	job->box = NULL;
	imap_send(s, buf_head(&job->out), buf_used(&job->out));
	buf_consume(&job->out, buf_used(&job->out));
	maildir_msgs(s->box, &n);
	s->exists = (uint32_t)n;
}
