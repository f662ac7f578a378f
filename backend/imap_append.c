/*
 * imap_append.c - APPEND (RFC 3501 6.3.11, with LITERAL+ and APPENDUID of
 * UIDPLUS): a small message is delivered whole by one store-pool job; a
 * large one (a literal the parser streams, see proto/imap_input.h) goes
 * to disk in chunks while it arrives.
 *
 * The streaming state machine: when the message literal is announced a
 * pool job creates the file in the folder's tmp/ (maildir_deliver_begin())
 * and only then is the continuation sent; bytes are gathered into a
 * CHUNK_BYTES buffer and each full one is written by a pool job while the
 * next fills. Reading stops while a full buffer waits for the write before
 * it (imap_append_room() returns 0), so a session holds at most two
 * chunks. The command's end commits (fsync, link, UID) on the pool exactly
 * like a small APPEND; anything else (disconnect, BAD, a failed write)
 * unlinks the tmp file, on the pool too.
 *
 * Relies on imap_session.c to feed the events of the input discipline in
 * order (literal, data, end) and to call imap_append_free() only when no
 * job is out; on the store library for every file operation; on
 * imap_announce.c to show the new message in the selected folder.
 *
 * Must never: touch a message file on the ring thread, keep more than two
 * chunks of a message in memory, free s->app while one of its jobs is
 * out, or leave a tmp file behind when the command does not complete.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/deliver.h"
#include "backend/imap_private.h"
#include "core/log.h"
#include "store/maildir.h"

#define CHUNK_BYTES (256 * 1024)

/* A small APPEND: the whole message, delivered by one job. */
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

static int check_append(struct imap_session *s, const struct imap_command *cmd);
static void run_append(struct imap_session *s, const struct imap_command *cmd);

static int parse_date(const char *p, size_t n, time_t *t_r);
static int check_append_args(struct imap_session *s,
    const struct imap_command *cmd, const struct imap_arg **last_r);
static int append_options(struct imap_session *s,
    const struct imap_command *cmd, struct maildir_delivery *opt,
    struct imap_flag_list *fl);
static void append_run(struct pool_job *sj);
static int append_finish(struct imap_session *s, struct imap_job *ij);
static void append_release(struct imap_job *ij);
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

const struct imap_cmd_def imap_cmds_append[] = {
	{ "APPEND", ST_AUTH | ST_SELECTED, false, check_append, run_append },
	{ NULL },
};

const char *const imap_months[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* ---- arguments ----------------------------------------------------- */

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
	if ((job->base.has_quota &&
		deliver_quota_check(job->maildir, job->base.quota,
		    buf_used(&job->data), &job->base.errtext) == -1) ||
	    maildir_deliver(job->maildir, job->name, buf_head(&job->data),
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
	if ((job->base.has_quota &&
		deliver_quota_check(job->maildir, job->base.quota, app->size,
		    &job->base.errtext) == -1) ||
	    maildir_deliver_begin(job->maildir, app->name, &app->opt, &app->in,
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
