/*
 * imap_idle.c - IDLE (RFC 2177) and the push of folder changes: one
 * inotify instance per worker loop, watches on the new/ and cur/
 * directories of every folder a session of this worker has selected
 * (one pair per folder, refcounted by the sessions that share it), and a
 * background sync for each idling session when its folder changed.
 *
 * Relies on loop_watch_fd() to read the inotify fd and a timerfd on the
 * ring, on the store pool for every maildir_sync() (each session owns
 * its view, so each is synced on its own, borrowing s->box as commands
 * do), and on maildir_watch_paths() naming what to watch. Events are
 * coalesced: the first one arms a short timer and every event until it
 * fires only marks its folder, so a burst of deliveries costs one sync
 * per session; a session whose sync is still running gets one more
 * afterwards, never a queue of them.
 *
 * Must never: block the ring (inotify_add_watch() on a folder a job has
 * just opened is a cached lookup; the sync itself runs on the pool), send
 * an untagged EXPUNGE to a session that is not idling (RFC 3501 7.4.1: it
 * gets them at its next NOOP), or let a folder outlive its last session.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "backend/imap_private.h"
#include "core/log.h"
#include "core/loop.h"
#include "store/maildir.h"

#define IDLE_COALESCE_MS 50
/* RFC 2177: clients re-issue IDLE at least every 29 minutes. */
#define IDLE_TIMEOUT_MS (31u * 60 * 1000)
#define IDLE_EVENT_BUF 4096
#define IDLE_MASK                                                              \
	(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR)

/* One watched folder: new/ and cur/, and the sessions that selected it. */
struct idle_folder {
	char *dir;
	int wd_new, wd_cur; /* -1 once the kernel dropped the watch */
	bool dirty;
	struct imap_session *sessions; /* chained by s->fnext */
	struct idle_folder *next;
};

struct imap_watcher {
	struct rs_worker *w;
	int ifd; /* inotify; owned by its fd watch */
	struct fd_watch *events, *timer;
	int tfd; /* timerfd; owned by its fd watch */
	bool armed;
	struct idle_folder *folders;
};

struct idle_job {
	struct imap_job base;
	uint32_t exists;
};

static int check_none(struct imap_session *s, const struct imap_command *cmd);
static void run_idle(struct imap_session *s, const struct imap_command *cmd);

static void on_events(void *ctx, const char *p, ssize_t n);
static void on_timer(void *ctx, const char *p, ssize_t n);
static void mark_wd(struct imap_watcher *iw, int wd, uint32_t mask);
static void arm_timer(struct imap_watcher *iw);
static void folder_changed(struct idle_folder *f);
static struct idle_folder *folder_get(struct imap_watcher *iw,
    const struct maildir *box);
static void folder_put(struct imap_watcher *iw, struct idle_folder *f);
static void sync_start(struct imap_session *s);
static void sync_run(struct pool_job *sj);
static int sync_finish(struct imap_session *s, struct imap_job *ij);

const struct imap_cmd_def imap_cmds_idle[] = {
	{ "IDLE", ST_AUTH | ST_SELECTED, false, check_none, run_idle },
	{ NULL },
};

/* ---- the worker's watcher ------------------------------------------ */

int
imap_idle_init(struct rs_worker *w)
{
	struct imap_watcher *iw = calloc(1, sizeof(*iw));
	int ifd = -1, tfd = -1;

	if (iw == NULL)
		return -1;
	iw->w = w;
	if ((ifd = inotify_init1(IN_CLOEXEC)) == -1 ||
	    (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)) == -1) {
		log_error(0, "idle.init", "error=\"%s\"", strerror(errno));
		goto fail;
	}
	iw->ifd = ifd;
	iw->tfd = tfd;
	/* from here the fd watches own the fds, even on failure */
	iw->events = loop_watch_fd(w->loop, ifd, IDLE_EVENT_BUF, on_events, iw);
	ifd = -1;
	iw->timer = loop_watch_fd(w->loop, tfd, sizeof(uint64_t), on_timer, iw);
	tfd = -1;
	if (iw->events == NULL || iw->timer == NULL)
		goto fail;
	w->watcher = iw;
	return 0;
fail:
	if (ifd != -1)
		close(ifd);
	if (tfd != -1)
		close(tfd);
	loop_unwatch_fd(&iw->events);
	loop_unwatch_fd(&iw->timer);
	free(iw);
	return -1;
}

void
imap_idle_free(struct rs_worker *w)
{
	struct imap_watcher *iw = w->watcher;

	if (iw == NULL)
		return;
	w->watcher = NULL;
	if (iw->folders != NULL)
		log_error(0, "idle.leak", "folder=%s", iw->folders->dir);
	loop_unwatch_fd(&iw->events);
	loop_unwatch_fd(&iw->timer);
	free(iw);
}

/* inotify records: mark the folders they name, then let the timer
 * gather whatever else arrives before syncing anyone. */
static void
on_events(void *ctx, const char *p, ssize_t n)
{
	struct imap_watcher *iw = ctx;
	size_t off = 0;

	if (p == NULL) {
		/* the instance failed: no more pushes, NOOP still works */
		log_error(0, "idle.inotify", "error=\"%s\"", strerror((int)-n));
		iw->events = NULL;
		return;
	}
	while (off + sizeof(struct inotify_event) <= (size_t)n) {
		struct inotify_event ev;

		memcpy(&ev, p + off, sizeof(ev));
		mark_wd(iw, ev.wd, ev.mask);
		off += sizeof(ev) + ev.len;
	}
	arm_timer(iw);
}

static void
mark_wd(struct imap_watcher *iw, int wd, uint32_t mask)
{
	for (struct idle_folder *f = iw->folders; f; f = f->next) {
		/* a queue overflow lost events: every folder may have
		 * changed */
		if (!(mask & IN_Q_OVERFLOW) && wd != f->wd_new &&
		    wd != f->wd_cur)
			continue;
		f->dirty = true;
		if (mask & IN_IGNORED) {
			if (wd == f->wd_new)
				f->wd_new = -1;
			if (wd == f->wd_cur)
				f->wd_cur = -1;
		}
	}
}

static void
arm_timer(struct imap_watcher *iw)
{
	struct itimerspec its = { .it_value.tv_nsec = IDLE_COALESCE_MS *
		    1000000L };

	if (iw->armed || iw->timer == NULL)
		return;
	if (timerfd_settime(iw->tfd, 0, &its, NULL) == -1) {
		log_error(0, "idle.timer", "error=\"%s\"", strerror(errno));
		return;
	}
	iw->armed = true;
}

static void
on_timer(void *ctx, const char *p, ssize_t n)
{
	struct imap_watcher *iw = ctx;

	iw->armed = false;
	if (p == NULL) {
		log_error(0, "idle.timer", "error=\"%s\"", strerror((int)-n));
		iw->timer = NULL;
		return;
	}
	for (struct idle_folder *f = iw->folders; f; f = f->next)
		if (f->dirty) {
			f->dirty = false;
			folder_changed(f);
		}
}

static void
folder_changed(struct idle_folder *f)
{
	for (struct imap_session *s = f->sessions; s; s = s->fnext) {
		s->flags |= SF_CHANGED;
		if ((s->flags & SF_IDLE) && !(s->flags & SF_BUSY))
			sync_start(s);
	}
}

/* ---- folders and the sessions that selected them ------------------- */

static struct idle_folder *
folder_get(struct imap_watcher *iw, const struct maildir *box)
{
	const char *dir = maildir_dir(box), *dnew, *dcur;
	struct idle_folder *f;

	for (f = iw->folders; f; f = f->next)
		if (strcmp(f->dir, dir) == 0)
			return f;
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->dir = strdup(dir)) == NULL) {
		free(f);
		return NULL;
	}
	maildir_watch_paths(box, &dnew, &dcur);
	f->wd_new = inotify_add_watch(iw->ifd, dnew, IDLE_MASK);
	f->wd_cur = inotify_add_watch(iw->ifd, dcur, IDLE_MASK);
	if (f->wd_new == -1 || f->wd_cur == -1)
		log_error(0, "idle.watch", "folder=%s error=\"%s\"", dir,
		    strerror(errno));
	f->next = iw->folders;
	iw->folders = f;
	return f;
}

static void
folder_put(struct imap_watcher *iw, struct idle_folder *f)
{
	struct idle_folder **pp;

	if (f->sessions != NULL)
		return;
	for (pp = &iw->folders; *pp != f; pp = &(*pp)->next)
		;
	*pp = f->next;
	/* removing a watch the kernel already dropped fails harmlessly */
	if (f->wd_new != -1)
		inotify_rm_watch(iw->ifd, f->wd_new);
	if (f->wd_cur != -1 && f->wd_cur != f->wd_new)
		inotify_rm_watch(iw->ifd, f->wd_cur);
	free(f->dir);
	free(f);
}

void
imap_idle_select(struct imap_session *s)
{
	struct imap_watcher *iw = s->w->watcher;
	struct idle_folder *f;

	imap_idle_unselect(s);
	if (iw == NULL || s->box == NULL)
		return;
	if ((f = folder_get(iw, s->box)) == NULL)
		return; /* no push for this session; NOOP still works */
	s->folder = f;
	s->fnext = f->sessions;
	f->sessions = s;
	/* whatever changed between the open on the pool and the watch is
	 * picked up by the first IDLE */
	s->flags |= SF_CHANGED;
}

void
imap_idle_unselect(struct imap_session *s)
{
	struct idle_folder *f = s->folder;
	struct imap_session **pp;

	if (f == NULL)
		return;
	for (pp = &f->sessions; *pp != s; pp = &(*pp)->fnext)
		;
	*pp = s->fnext;
	s->folder = NULL;
	s->fnext = NULL;
	s->flags &= ~SF_CHANGED;
	folder_put(s->w->watcher, f);
}

/* ---- the IDLE command ---------------------------------------------- */

static int
check_none(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 0) {
		s->error = "IDLE takes no arguments";
		return -1;
	}
	return 0;
}

/* "+ idling", then lines until DONE; changes are pushed meanwhile. */
static void
run_idle(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "+", "idling");
	s->flags |= SF_IDLE | SF_LINE;
	imap_input_want_line(&s->input);
	conn_set_timer(s->c, IDLE_TIMEOUT_MS);
	if ((s->flags & SF_CHANGED) && s->box != NULL)
		sync_start(s);
}

void
imap_idle_line(struct imap_session *s, const char *line, size_t len)
{
	if (len != 4 || strncasecmp(line, "DONE", 4) != 0) {
		/* still idling: the next line may be DONE */
		imap_reply(s, "*", "BAD Expected DONE");
		conn_set_timer(s->c, IDLE_TIMEOUT_MS);
		s->flags |= SF_LINE;
		imap_input_want_line(&s->input);
		return;
	}
	s->flags &= ~SF_IDLE;
	conn_set_timer(s->c, s->srv->cf->limits.idle_timeout);
	imap_reply(s, NULL, "OK IDLE terminated");
}

/* ---- the background sync ------------------------------------------- */

/* Borrow the folder for a sync whose answer goes out untagged. A full
 * pool queue leaves SF_CHANGED set: the next event or IDLE retries. */
static void
sync_start(struct imap_session *s)
{
	struct idle_job *job = imap_job_new(s, sizeof(*job), sync_finish);

	if (job == NULL)
		return;
	s->flags &= ~SF_CHANGED;
	job->base.base.run = sync_run;
	job->base.box = s->box;
	s->box = NULL;
	if (pool_submit(s->srv->store, s->w->outbox, &job->base.base) == -1) {
		s->box = job->base.box;
		job->base.box = NULL;
		imap_job_free(&job->base);
		s->flags |= SF_CHANGED;
		return;
	}
	s->flags |= SF_BUSY;
}

static void
sync_run(struct pool_job *sj)
{
	struct idle_job *job = (struct idle_job *)sj;
	struct maildir_changes ch;
	size_t n;

	if (maildir_sync(job->base.box, &ch, &job->base.errtext) == -1) {
		job->base.err = errno ? errno : EIO;
		return;
	}
	(void)maildir_msgs(job->base.box, &n);
	job->exists = (uint32_t)n;
	imap_write_changes(&job->base.out, job->base.box, &ch);
	maildir_changes_free(&ch);
}

static int
sync_finish(struct imap_session *s, struct imap_job *ij)
{
	struct idle_job *job = (struct idle_job *)ij;

	s->box = ij->box;
	ij->box = NULL;
	if (ij->err) {
		/* the client asked for nothing: log, keep idling */
		log_error(s->sid, "imap.idle_sync_failed",
		    "errno=%d error=\"%s\"", ij->err,
		    ij->errtext ? ij->errtext : "?");
		return 0;
	}
	imap_send(s, buf_head(&ij->out), buf_used(&ij->out));
	s->exists = job->exists;
	/* events that came while this ran: one more pass */
	if ((s->flags & (SF_CHANGED | SF_IDLE)) == (SF_CHANGED | SF_IDLE))
		sync_start(s);
	return 0;
}
