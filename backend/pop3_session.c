/*
 * pop3_session.c - ringstore's POP3 service after login (RFC 1939, CAPA of
 * RFC 2449): the maildrop lock taken on the login lane, the TRANSACTION
 * state (STAT, LIST, RETR, DELE, RSET, NOOP, TOP, UIDL, CAPA, QUIT) and
 * the UPDATE state at QUIT. login/pop3_login.c speaks before login.
 *
 * The maildrop is INBOX as IMAP sees it (new/ and cur/), scanned once at
 * login on the store pool, opened read-only (nothing moves from new/ and
 * no \Recent is claimed; UIDs are assigned as any sync does). A message's
 * UIDL is "<uidvalidity>.<uid>" from the folder's UID list, so it is
 * stable across sessions and names the same message IMAP shows in INBOX.
 * DELE only marks; the marked messages are unlinked at QUIT (the UPDATE
 * state, on the store pool); a connection that ends any other way
 * changes nothing. Retrieved messages are not marked \Seen (as Dovecot's
 * default): POP3 reads leave IMAP's view alone.
 *
 * RETR and TOP stream: a job on the store pool preads a chunk of the file,
 * dot-stuffs it (CRLF line ends; proto/smtp_data.h's writer) and comes
 * back; the next chunk is read only when the output queue is under its
 * mark, so a session holds at most one chunk and the connection's queue,
 * whatever the message size. While a job runs nothing is read from the
 * client.
 *
 * Must never: apply a DELE without a QUIT, serve a maildrop another POP3
 * session holds, block the loop on the disk, or queue output without
 * bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "backend/msg_read.h"
#include "backend/ringstore.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "proto/pop3_cmd.h"
#include "proto/smtp_data.h"
#include "store/maildir.h"

#define POP3_LOCK_FILE "ringstore-pop3.lock"
#define POP3_LINE_MAX 1000     /* a command line after login */
#define POP3_CHUNK (64 * 1024) /* file bytes read per job */

enum pop3_state {
	PS_START = 0, /* the maildrop is being scanned */
	PS_TRANSACTION,
	PS_UPDATE, /* QUIT: deletions being applied */
	PS_CLOSING,
};

struct pop3_msg {
	uint32_t uid;
	uint64_t size; /* what LIST says: the CRLF size when known */
	bool deleted;
};

struct pop3_session {
	struct rs_worker *w;
	const struct rs_server *srv;
	struct conn *c;
	uint64_t sid;
	enum pop3_state state;
	char *user, *dir;
	int lock;    /* the maildrop lock (flock on POP3_LOCK_FILE) */
	bool busy;   /* a job is out (it holds box) */
	bool more;   /* a RETR chunk waits for the output to drain */
	bool gone;   /* the connection closed under a job */
	bool paused; /* we paused reading */
	unsigned calls;
	struct buf in;
	struct pop3_line lr;
	struct maildir *box; /* INBOX, read-only, the session's view */
	struct pop3_msg *msgs;
	size_t nmsgs;
	uint32_t uidvalidity;
	uint64_t commands;
	unsigned bad, ndeleted;
	struct pop3_job *next; /* the RETR job waiting in `more` */
};

enum job_kind { JOB_SCAN, JOB_RETR, JOB_UPDATE };

struct pop3_job {
	struct pool_job base;
	struct pop3_session *s; /* kept alive while the job is out */
	enum job_kind kind;
	struct maildir *box;
	const char *dir;
	struct maildir_cache *cache;
	int err;
	const char *errtext;
	/* JOB_SCAN */
	struct pop3_msg *msgs;
	size_t nmsgs;
	uint32_t uidvalidity;
	/* JOB_RETR */
	size_t index;	   /* in box's view */
	uint32_t msgno;	   /* 1-based, for logs */
	uint64_t announce; /* the size in "+OK" */
	bool top, in_body, started, finished;
	uint64_t line_len; /* TOP: bytes of the current line, CR aside */
	uint32_t lines;	   /* TOP: body lines still to send */
	int fd;
	uint64_t off;
	struct smtp_stuff stuff;
	char *chunk;
	struct buf out;
	/* JOB_UPDATE */
	uint32_t *uids;
	size_t nuids;
};

static void on_data(struct conn *c, const char *p, size_t n);
static void on_drain(struct conn *c);
static void on_timer(struct conn *c);
static void on_close(struct conn *c, enum conn_reason why);
static int session_start(struct rs_worker *w, struct conn *c,
    const struct rs_listener *li, struct rs_ready *r, struct buf *rest);
static void prepare(const struct rs_server *srv, struct rs_ready *r);

static void session_free(struct pop3_session *s);
static void call_begin(struct pop3_session *s);
static void call_end(struct pop3_session *s);
static void process(struct pop3_session *s);
static void flow(struct pop3_session *s);
static void reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void send_bytes(struct pop3_session *s, const void *p, size_t n);
static void bad(struct pop3_session *s, const char *text);
static void goodbye(struct pop3_session *s, const char *text);
static void count(struct pop3_session *s, int id, uint64_t n);
static void line(struct pop3_session *s, const char *p, size_t n);
static void command(struct pop3_session *s, const struct pop3_cmd *cmd);
static struct pop3_msg *find_msg(struct pop3_session *s, uint32_t n);
static void run_list(struct pop3_session *s, const struct pop3_cmd *cmd,
    bool uidl);
static void run_retr(struct pop3_session *s, uint32_t n, bool top,
    uint32_t lines);
static void run_quit(struct pop3_session *s);
static void release_lock(struct pop3_session *s);

static struct pop3_job *job_new(struct pop3_session *s, enum job_kind kind);
static void job_free(struct pop3_job *job);
static int job_submit(struct pop3_session *s, struct pop3_job *job, bool again);
static void job_run(struct pool_job *pj);
static void job_done(struct pool_job *pj);
static void scan_run(struct pop3_job *job);
static void scan_done(struct pop3_session *s, struct pop3_job *job);
static void retr_run(struct pop3_job *job);
static bool retr_done(struct pop3_session *s, struct pop3_job *job);
static void update_run(struct pop3_job *job);
static void update_done(struct pop3_session *s, struct pop3_job *job);

static const struct conn_handler handler = {
	.on_data = on_data,
	.on_drain = on_drain,
	.on_timer = on_timer,
	.on_close = on_close,
};

/* POP3: login/pop3_login.c before login, this file after. */
const struct rs_service rs_pop3_service = {
	.name = "pop3",
	.login = &pop3_login_proto,
	.maildir = true,
	.prepare = prepare,
	.start = session_start,
};

/* ---- metrics --------------------------------------------------------- */

int
pop3_register_metrics(struct rs_server *srv, struct metrics *m)
{
	struct rs_pop3_metrics *x = &srv->m.pop3;
	const char *refused = "POP3 sessions or commands refused, by reason.";

	x->sessions = metrics_gauge(m, "pop3_sessions",
	    "POP3 sessions after login.", NULL);
	x->commands = metrics_counter(m, "pop3_commands_total",
	    "POP3 commands received after login.", NULL);
	x->bad_commands = metrics_counter(m, "pop3_refused_total", refused,
	    "reason=\"bad_command\"");
	x->closed_bad = metrics_counter(m, "pop3_refused_total", refused,
	    "reason=\"too_many_bad\"");
	x->closed_idle = metrics_counter(m, "pop3_refused_total", refused,
	    "reason=\"idle\"");
	x->in_use = metrics_counter(m, "pop3_refused_total", refused,
	    "reason=\"in_use\"");
	x->update_failed = metrics_counter(m, "pop3_refused_total", refused,
	    "reason=\"update_failed\"");
	x->retr_bytes = metrics_counter(m, "pop3_retr_bytes_total",
	    "Bytes of RETR and TOP answers sent (dot-stuffed, CRLF).", NULL);
	return x->sessions < 0 || x->commands < 0 || x->bad_commands < 0 ||
		x->closed_bad < 0 || x->closed_idle < 0 || x->in_use < 0 ||
		x->update_failed < 0 || x->retr_bytes < 0 ?
	    -1 :
	    0;
}

static void
count(struct pop3_session *s, int id, uint64_t n)
{
	metrics_add(loop_shard(s->w->loop), id, n);
}

/* ---- the maildrop lock (login lane) ---------------------------------- */

/*
 * One POP3 session per maildrop: an exclusive flock() on a file in the
 * Maildir, taken before the login is answered and held until the session
 * ends (the kernel drops it if the process dies). flock() locks belong to
 * an open file description, so two sessions of this process exclude each
 * other like two processes do.
 */
static void
prepare(const struct rs_server *srv, struct rs_ready *r)
{
	char path[4096];
	int fd;

	(void)srv;
	if (snprintf(path, sizeof(path), "%s/%s", r->dir, POP3_LOCK_FILE) >=
	    (int)sizeof(path)) {
		r->err = ENAMETOOLONG;
		r->errtext = "maildrop lock path too long";
		return;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		r->err = errno;
		r->errtext = "cannot open the maildrop lock";
		return;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK) {
			r->in_use = true;
			return;
		}
		r->err = e;
		r->errtext = "cannot lock the maildrop";
		return;
	}
	r->lock = fd;
}

static void
release_lock(struct pop3_session *s)
{
	if (s->lock != -1) {
		close(s->lock); /* a regular file: no wait */
		s->lock = -1;
	}
}

/* ---- life cycle ------------------------------------------------------ */

/*
 * The login core handed over c for r->user with the maildrop locked
 * (r->lock). The answer to PASS/AUTH waits for the scan of the maildrop
 * on the store pool. Takes r->user, r->dir and r->lock on success.
 */
static int
session_start(struct rs_worker *w, struct conn *c, const struct rs_listener *li,
    struct rs_ready *r, struct buf *rest)
{
	struct pop3_session *s = calloc(1, sizeof(*s));
	struct pop3_job *job;

	if (s == NULL ||
	    buf_append(&s->in, buf_head(rest), buf_used(rest)) == -1) {
		if (s != NULL)
			buf_free(&s->in);
		free(s);
		conn_abort(c, CR_NOMEM);
		return -1;
	}
	s->w = w;
	s->srv = li->srv;
	s->c = c;
	s->sid = conn_sid(c);
	s->user = r->user;
	s->dir = r->dir;
	s->lock = r->lock;
	r->user = r->dir = NULL;
	r->lock = -1;
	s->state = PS_START;
	conn_set_handler(c, &handler, s);
	metrics_gauge_add(loop_shard(w->loop), s->srv->m.pop3.sessions, 1);
	log_info(s->sid, "pop3.login", "user=%s listener=%s tls=%s", s->user,
	    li->conf->name, r->tls ? "yes" : "no");
	conn_set_timer(c, s->srv->cf->limits.idle_timeout);
	call_begin(s);
	if ((job = job_new(s, JOB_SCAN)) == NULL ||
	    job_submit(s, job, false) == -1)
		goodbye(s, "[SYS/TEMP] Server busy, try again later");
	flow(s);
	call_end(s);
	return 0;
}

static void
session_free(struct pop3_session *s)
{
	release_lock(s);
	if (s->next != NULL)
		job_free(s->next);
	maildir_close(&s->box);
	buf_free(&s->in);
	free(s->msgs);
	free(s->user);
	free(s->dir);
	free(s);
}

static void
call_begin(struct pop3_session *s)
{
	s->calls++;
}

/* The outermost callback frees a session whose connection went, unless
 * a job still holds it (job_done frees it then). */
static void
call_end(struct pop3_session *s)
{
	if (--s->calls == 0 && s->gone && !s->busy)
		session_free(s);
}

/* ---- connection callbacks -------------------------------------------- */

static void
on_data(struct conn *c, const char *p, size_t n)
{
	struct pop3_session *s = conn_ctx(c);

	if (s == NULL || s->state == PS_CLOSING)
		return;
	if (rs_conn_input(c, &s->in, p, n, s->srv->cf->limits.idle_timeout) ==
	    -1)
		return;
	call_begin(s);
	process(s);
	call_end(s);
}

/* The client read: the next RETR chunk, or the next commands. */
static void
on_drain(struct conn *c)
{
	struct pop3_session *s = conn_ctx(c);
	struct pop3_job *job;

	if (s == NULL)
		return;
	conn_set_timer(c, s->srv->cf->limits.idle_timeout);
	call_begin(s);
	if (s->more) {
		s->more = false;
		job = s->next;
		s->next = NULL;
		if (job_submit(s, job, true) == -1)
			goodbye(s, "[SYS/TEMP] Server busy");
	} else {
		process(s);
	}
	call_end(s);
}

static void
on_timer(struct conn *c)
{
	struct pop3_session *s = conn_ctx(c);

	if (rs_conn_idle(c, s != NULL && s->state != PS_CLOSING)) {
		count(s, s->srv->m.pop3.closed_idle, 1);
		goodbye(s, "Disconnected for inactivity");
	}
}

/* Nothing is applied here: only QUIT enters the UPDATE state. */
static void
on_close(struct conn *c, enum conn_reason why)
{
	struct pop3_session *s = conn_ctx(c);

	if (s == NULL)
		return;
	metrics_gauge_add(loop_shard(conn_loop(c)), s->srv->m.pop3.sessions,
	    -1);
	log_info(s->sid, "pop3.close",
	    "reason=%s user=%s commands=%llu marked=%u in=%llu out=%llu",
	    conn_reason_name(why), s->user, (unsigned long long)s->commands,
	    s->ndeleted, (unsigned long long)conn_bytes_in(c),
	    (unsigned long long)conn_bytes_out(c));
	conn_set_ctx(c, NULL);
	s->c = NULL;
	s->gone = true;
	if (s->busy || s->calls > 0)
		return;
	session_free(s);
}

/* ---- output ---------------------------------------------------------- */

static void
send_bytes(struct pop3_session *s, const void *p, size_t n)
{
	rs_conn_send(s->c, p, n);
}

static void
reply(struct pop3_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = rs_vline(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	send_bytes(s, buf, n);
}

static void
bad(struct pop3_session *s, const char *text)
{
	count(s, s->srv->m.pop3.bad_commands, 1);
	log_info(s->sid, "pop3.bad_command", "error=\"%s\" count=%u", text,
	    s->bad + 1);
	reply(s, "-ERR %s", text);
	if (++s->bad >= (unsigned)s->srv->cf->limits.bad_commands) {
		count(s, s->srv->m.pop3.closed_bad, 1);
		log_info(s->sid, "pop3.limit", "what=bad_commands count=%u",
		    s->bad);
		goodbye(s, "Too many bad commands");
	}
}

/* Last words without the UPDATE state; the lock goes with the session. */
static void
goodbye(struct pop3_session *s, const char *text)
{
	if (s->state == PS_CLOSING)
		return;
	reply(s, "-ERR %s", text);
	s->state = PS_CLOSING;
	if (s->c != NULL)
		conn_close(s->c);
}

/* ---- input ----------------------------------------------------------- */

static void
flow(struct pop3_session *s)
{
	bool stop;

	if (s->c == NULL || s->state == PS_CLOSING)
		return;
	stop = s->busy || s->more || s->state != PS_TRANSACTION ||
	    conn_out_full(s->c);
	s->paused = rs_conn_hold(s->c, stop, s->paused);
}

static void
process(struct pop3_session *s)
{
	while (s->c != NULL && s->state == PS_TRANSACTION && !s->busy &&
	    !s->more && !conn_out_full(s->c) && buf_used(&s->in) > 0) {
		const char *p = buf_head(&s->in);
		size_t used = 0, len = 0;
		enum pop3_line_ev ev;

		ev = pop3_line_next(&s->lr, p, buf_used(&s->in), POP3_LINE_MAX,
		    &used, &len);
		buf_consume(&s->in, used); /* p stays valid: nothing appends */
		if (ev == POP3_LINE_MORE) {
			if (used == 0)
				break;
			continue;
		}
		if (ev == POP3_LINE_LONG) {
			log_info(s->sid, "pop3.limit", "what=line max=%u",
			    POP3_LINE_MAX);
			bad(s, "Line too long");
		} else if (ev == POP3_LINE_BARE_LF) {
			bad(s, "Lines end with CRLF");
		} else {
			line(s, p, len);
		}
	}
	if (s->c != NULL) {
		buf_release(&s->in);
		flow(s);
	}
}

static void
line(struct pop3_session *s, const char *p, size_t n)
{
	struct pop3_cmd cmd;

	s->commands++;
	count(s, s->srv->m.pop3.commands, 1);
	if (pop3_cmd_parse(&cmd, p, n) != POP3_CMD_OK) {
		bad(s, cmd.error);
		return;
	}
	command(s, &cmd);
}

/* Message n of the maildrop, NULL (answered) if there is none or it is
 * marked deleted. */
static struct pop3_msg *
find_msg(struct pop3_session *s, uint32_t n)
{
	if (n == 0 || n > s->nmsgs) {
		reply(s, "-ERR No such message");
		return NULL;
	}
	if (s->msgs[n - 1].deleted) {
		reply(s, "-ERR Message %u already deleted", n);
		return NULL;
	}
	return &s->msgs[n - 1];
}

static void
command(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	static const char capa[] = "TOP\r\nUIDL\r\nRESP-CODES\r\n"
				   "PIPELINING\r\nIMPLEMENTATION ringstore\r\n"
				   ".\r\n";
	struct pop3_msg *m;

	switch (cmd->verb) {
	case POP3_STAT: {
		uint64_t total = 0;
		size_t live = 0;

		for (size_t i = 0; i < s->nmsgs; i++)
			if (!s->msgs[i].deleted) {
				live++;
				total += s->msgs[i].size;
			}
		reply(s, "+OK %zu %llu", live, (unsigned long long)total);
		return;
	}
	case POP3_LIST:
		run_list(s, cmd, false);
		return;
	case POP3_UIDL:
		run_list(s, cmd, true);
		return;
	case POP3_RETR:
		if (find_msg(s, cmd->msg) != NULL)
			run_retr(s, cmd->msg, false, 0);
		return;
	case POP3_TOP:
		if (find_msg(s, cmd->msg) != NULL)
			run_retr(s, cmd->msg, true, cmd->lines);
		return;
	case POP3_DELE:
		if ((m = find_msg(s, cmd->msg)) == NULL)
			return;
		m->deleted = true;
		s->ndeleted++;
		reply(s, "+OK Message %u deleted", cmd->msg);
		return;
	case POP3_RSET:
		for (size_t i = 0; i < s->nmsgs; i++)
			s->msgs[i].deleted = false;
		s->ndeleted = 0;
		reply(s, "+OK %zu messages", s->nmsgs);
		return;
	case POP3_NOOP:
		reply(s, "+OK");
		return;
	case POP3_CAPA:
		reply(s, "+OK Capability list follows");
		send_bytes(s, capa, sizeof(capa) - 1);
		return;
	case POP3_QUIT:
		run_quit(s);
		return;
	case POP3_USER:
	case POP3_PASS:
	case POP3_APOP:
	case POP3_AUTH:
	case POP3_STLS:
		bad(s, "Already logged in");
		return;
	case POP3_UNKNOWN:
		break;
	}
	bad(s, "Unknown command");
}

/* LIST / UIDL, one message or the scan listing. The listing is built
 * whole: its size follows the message count, which the session holds in
 * memory anyway (about 30 bytes a message). */
static void
run_list(struct pop3_session *s, const struct pop3_cmd *cmd, bool uidl)
{
	struct buf b = { 0 };
	struct pop3_msg *m;

	if (cmd->has_msg) {
		if ((m = find_msg(s, cmd->msg)) == NULL)
			return;
		if (uidl)
			reply(s, "+OK %u %u.%u", cmd->msg, s->uidvalidity,
			    m->uid);
		else
			reply(s, "+OK %u %llu", cmd->msg,
			    (unsigned long long)m->size);
		return;
	}
	if (buf_printf(&b, "+OK %s\r\n",
		uidl ? "Unique-ID listing follows" : "Scan listing follows") ==
	    -1)
		goto nomem;
	for (size_t i = 0; i < s->nmsgs; i++) {
		int rc;

		m = &s->msgs[i];
		if (m->deleted)
			continue;
		rc = uidl ? buf_printf(&b, "%zu %u.%u\r\n", i + 1,
				s->uidvalidity, m->uid) :
			    buf_printf(&b, "%zu %llu\r\n", i + 1,
				(unsigned long long)m->size);
		if (rc == -1)
			goto nomem;
	}
	if (buf_append(&b, ".\r\n", 3) == -1)
		goto nomem;
	if (s->c != NULL && !conn_closing(s->c) &&
	    conn_write_buf(s->c, &b) == -1)
		conn_abort(s->c, CR_NOMEM);
	buf_free(&b);
	return;
nomem:
	buf_free(&b);
	reply(s, "-ERR [SYS/TEMP] Out of memory");
}

static void
run_retr(struct pop3_session *s, uint32_t n, bool top, uint32_t lines)
{
	struct pop3_job *job = job_new(s, JOB_RETR);

	if (job == NULL || (job->chunk = malloc(POP3_CHUNK)) == NULL) {
		job_free(job);
		reply(s, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	job->index = n - 1;
	job->msgno = n;
	job->announce = s->msgs[n - 1].size;
	job->top = top;
	job->lines = lines;
	job->fd = -1;
	smtp_stuff_init(&job->stuff);
	if (job_submit(s, job, false) == -1)
		reply(s, "-ERR [SYS/TEMP] Server busy, try again");
}

/* QUIT: the UPDATE state when messages are marked, else goodbye. */
static void
run_quit(struct pop3_session *s)
{
	struct pop3_job *job;
	size_t k = 0;

	if (s->ndeleted == 0) {
		release_lock(s);
		reply(s, "+OK Logging out");
		s->state = PS_CLOSING;
		conn_close(s->c);
		return;
	}
	if ((job = job_new(s, JOB_UPDATE)) == NULL ||
	    (job->uids = calloc(s->ndeleted, sizeof(*job->uids))) == NULL) {
		job_free(job);
		goodbye(s, "[SYS/TEMP] Out of memory; nothing deleted");
		return;
	}
	for (size_t i = 0; i < s->nmsgs; i++)
		if (s->msgs[i].deleted)
			job->uids[k++] = s->msgs[i].uid;
	job->nuids = k;
	s->state = PS_UPDATE;
	if (job_submit(s, job, false) == -1)
		goodbye(s, "[SYS/TEMP] Server busy; nothing deleted");
}

/* ---- jobs ------------------------------------------------------------ */

static struct pop3_job *
job_new(struct pop3_session *s, enum job_kind kind)
{
	struct pop3_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->base.run = job_run;
	job->base.done = job_done;
	job->base.sid = s->sid;
	job->s = s;
	job->kind = kind;
	job->dir = s->dir;
	job->cache = s->srv->folders;
	job->fd = -1;
	return job;
}

static void
job_free(struct pop3_job *job)
{
	if (job == NULL)
		return;
	if (job->fd != -1)
		close(job->fd);
	maildir_close(&job->box);
	free(job->msgs);
	free(job->uids);
	free(job->chunk);
	buf_free(&job->out);
	free(job);
}

/* The store pool, with the user as the fairness flow (as IMAP's jobs:
 * FNV-1a of the name). The job takes the session's folder while out.
 * again: the next chunk of a RETR already admitted. */
static int
job_submit(struct pop3_session *s, struct pop3_job *job, bool again)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	int rc;

	for (const unsigned char *p = (const void *)s->user; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	job->base.flow = h;
	if (job->box == NULL) {
		job->box = s->box;
		s->box = NULL;
	}
	rc = again ? pool_resubmit(s->srv->store, s->w->outbox, &job->base) :
		     pool_submit(s->srv->store, s->w->outbox, &job->base);
	if (rc == -1) {
		s->box = job->box;
		job->box = NULL;
		job_free(job);
		count(s, s->srv->m.store_busy, 1);
		return -1;
	}
	count(s, s->srv->m.store_jobs, 1);
	s->busy = true;
	flow(s);
	return 0;
}

static void
job_run(struct pool_job *pj)
{
	struct pop3_job *job = (struct pop3_job *)pj;

	switch (job->kind) {
	case JOB_SCAN:
		scan_run(job);
		return;
	case JOB_RETR:
		retr_run(job);
		return;
	case JOB_UPDATE:
		update_run(job);
		return;
	}
}

/* On the loop (or at outbox close): the session gets its folder back
 * and the answer. */
static void
job_done(struct pool_job *pj)
{
	struct pop3_job *job = (struct pop3_job *)pj;
	struct pop3_session *s = job->s;
	bool keep = false;

	s->busy = false;
	if (s->box == NULL) {
		s->box = job->box;
		job->box = NULL;
	}
	if (s->gone) {
		job_free(job);
		if (s->calls == 0)
			session_free(s);
		return;
	}
	call_begin(s);
	switch (job->kind) {
	case JOB_SCAN:
		scan_done(s, job);
		break;
	case JOB_RETR:
		keep = retr_done(s, job);
		break;
	case JOB_UPDATE:
		update_done(s, job);
		break;
	}
	if (!keep)
		job_free(job);
	process(s);
	call_end(s);
}

/* ---- the scan (store pool) ------------------------------------------- */

static void
scan_run(struct pop3_job *job)
{
	const struct maildir_msg *v;
	size_t n;

	if (maildir_open_cached(job->cache, job->dir, "INBOX",
		MAILDIR_OPEN_READONLY, &job->box, &job->errtext) == -1) {
		job->err = errno ? errno : EIO;
		return;
	}
	v = maildir_msgs(job->box, &n);
	job->uidvalidity = maildir_uidvalidity(job->box);
	if (n > 0 && (job->msgs = calloc(n, sizeof(*job->msgs))) == NULL) {
		job->err = ENOMEM;
		job->errtext = "out of memory";
		return;
	}
	for (size_t i = 0; i < n; i++) {
		job->msgs[i].uid = v[i].uid;
		job->msgs[i].size = v[i].vsize ? v[i].vsize : v[i].size;
	}
	job->nmsgs = n;
}

static void
scan_done(struct pop3_session *s, struct pop3_job *job)
{
	uint64_t total = 0;

	if (job->err) {
		log_error(s->sid, "pop3.scan_failed", "user=%s error=\"%s\"",
		    s->user, job->errtext ? job->errtext : "?");
		goodbye(s, "[SYS/TEMP] Cannot open the maildrop");
		return;
	}
	s->msgs = job->msgs;
	s->nmsgs = job->nmsgs;
	s->uidvalidity = job->uidvalidity;
	job->msgs = NULL;
	for (size_t i = 0; i < s->nmsgs; i++)
		total += s->msgs[i].size;
	s->state = PS_TRANSACTION;
	reply(s, "+OK Logged in, %zu messages (%llu octets)", s->nmsgs,
	    (unsigned long long)total);
}

/* ---- RETR and TOP (store pool) --------------------------------------- */

/* TOP: the length of src[0..n) to send: the header, its empty line and
 * job->lines body lines; sets finished when the cut falls inside. A line
 * is empty when it has nothing but a CR before its LF (line_len counts
 * its other bytes, across chunks). */
static size_t
top_cut(struct pop3_job *job, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool empty;

		if (src[i] != '\n') {
			if (src[i] != '\r')
				job->line_len++;
			continue;
		}
		empty = job->line_len == 0;
		job->line_len = 0;
		if (!job->in_body) {
			if (!empty)
				continue;
			job->in_body = true;
			if (job->lines == 0) {
				job->finished = true;
				return i + 1;
			}
			continue;
		}
		if (--job->lines == 0) {
			job->finished = true;
			return i + 1;
		}
	}
	return n;
}

/* One chunk: the status line first, then up to POP3_CHUNK file bytes,
 * stuffed into job->out; at the end of the file (or TOP's cut) the
 * terminating line. */
static void
retr_run(struct pop3_job *job)
{
	ssize_t k;
	size_t n, done = 0;

	if (!job->started) {
		job->started = true;
		if (maildir_msg_open(job->box, job->index, &job->fd,
			&job->errtext) == -1) {
			job->err = errno ? errno : EIO;
			return;
		}
		if (buf_printf(&job->out, "+OK %llu octets\r\n",
			(unsigned long long)job->announce) == -1) {
			job->err = ENOMEM;
			return;
		}
	}
	if ((k = msg_pread(job->fd, job->chunk, POP3_CHUNK, job->off)) == -1) {
		job->err = errno ? errno : EIO;
		job->errtext = "read error";
		return;
	}
	n = (size_t)k;
	if (job->top)
		n = top_cut(job, job->chunk, n);
	job->off += (size_t)k;
	if (k == 0 || (size_t)k < POP3_CHUNK)
		job->finished = true;
	while (done < n) {
		size_t used = 0, w, room = 2 * (n - done) + 8;
		char *dst = buf_reserve(&job->out, room);

		if (dst == NULL) {
			job->err = ENOMEM;
			return;
		}
		w = smtp_stuff_put(&job->stuff, job->chunk + done, n - done,
		    &used, dst, room);
		buf_commit(&job->out, w);
		done += used;
	}
	if (job->finished) {
		char *dst = buf_reserve(&job->out, SMTP_STUFF_END_MAX);

		if (dst == NULL) {
			job->err = ENOMEM;
			return;
		}
		buf_commit(&job->out,
		    smtp_stuff_end(&job->stuff, dst, SMTP_STUFF_END_MAX));
		close(job->fd);
		job->fd = -1;
	}
}

/* Send the chunk; true if the job goes on (kept for the next chunk). */
static bool
retr_done(struct pop3_session *s, struct pop3_job *job)
{
	size_t n = buf_used(&job->out);

	if (job->err) {
		if (buf_used(&job->out) == 0) {
			/* nothing sent yet: a plain answer */
			log_info(s->sid, "pop3.retr_failed",
			    "msg=%u error=\"%s\"", job->msgno,
			    job->errtext ? job->errtext : "?");
			reply(s,
			    job->err == ENOENT ?
				"-ERR Message %u was removed meanwhile" :
				"-ERR [SYS/TEMP] Cannot read message %u",
			    job->msgno);
			return false;
		}
		/* half a message went out: the client must not take it
		 * for a whole one */
		log_error(s->sid, "pop3.retr_failed", "msg=%u error=\"%s\"",
		    job->msgno, job->errtext ? job->errtext : "?");
		s->state = PS_CLOSING;
		conn_abort(s->c, CR_NONE);
		return false;
	}
	count(s, s->srv->m.pop3.retr_bytes, n);
	if (s->c != NULL && !conn_closing(s->c) &&
	    conn_write_buf(s->c, &job->out) == -1) {
		conn_abort(s->c, CR_NOMEM);
		return false;
	}
	buf_consume(&job->out, buf_used(&job->out));
	if (job->finished)
		return false;
	if (s->c == NULL || conn_out_full(s->c)) {
		/* on_drain sends it on */
		s->more = true;
		s->next = job;
		flow(s);
		return true;
	}
	if (job_submit(s, job, true) == -1) {
		s->state = PS_CLOSING;
		conn_abort(s->c, CR_NOMEM);
		return false;
	}
	return true;
}

/* ---- UPDATE (store pool) --------------------------------------------- */

/* The marked messages go; the folder is opened read-write for it (the
 * session's view is read-only). A message IMAP expunged meanwhile is
 * simply not there any more. */
static void
update_run(struct pop3_job *job)
{
	struct maildir *rw = NULL;

	if (maildir_open_cached(job->cache, job->dir, "INBOX", 0, &rw,
		&job->errtext) == -1 ||
	    maildir_expunge(rw, job->uids, job->nuids, &job->errtext) == -1 ||
	    maildir_sync(rw, NULL, &job->errtext) == -1)
		job->err = errno ? errno : EIO;
	maildir_close(&rw);
}

static void
update_done(struct pop3_session *s, struct pop3_job *job)
{
	if (job->err) {
		count(s, s->srv->m.pop3.update_failed, 1);
		log_error(s->sid, "pop3.update_failed",
		    "user=%s marked=%zu error=\"%s\"", s->user, job->nuids,
		    job->errtext ? job->errtext : "?");
		goodbye(s, "[SYS/TEMP] Some deleted messages were not removed");
		return;
	}
	log_info(s->sid, "pop3.update", "user=%s deleted=%zu", s->user,
	    job->nuids);
	/* the next session may lock the maildrop before this one's close */
	release_lock(s);
	reply(s, "+OK Logging out, %zu messages deleted", job->nuids);
	s->state = PS_CLOSING;
	conn_close(s->c);
}
