/*
 * imap_session.c - the IMAP session core of ringstore after login: the
 * login core (login/) hands each logged-in connection over through
 * its service start(); from there connection callbacks, the states
 * (AUTH -> SELECTED -> LOGOUT), input through proto/imap_input.c, the
 * command dispatcher, replies and job plumbing.
 *
 * Relies on core/loop.c for I/O and back-pressure, and on the store pool
 * for every blocking call: this file never touches the disk. While a job
 * runs the connection is paused and what already arrived waits in s->in.
 * An APPEND literal is not kept here: its bytes go to imap_append.c,
 * which writes them out in chunks and says how much may be fed
 * (imap_append_room()), so reading stops while a full chunk waits.
 *
 * Must never: read the next command while a job runs, queue output
 * without bound (a peer that does not read is paused, then timed out),
 * or let a peer's bytes reach an assert.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/auth_service.h"
#include "auth/sasl.h"
#include "backend/imap_private.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "proto/utf7.h"
#include "store/maildir.h"

static void on_data(struct conn *c, const char *p, size_t n);
static void on_drain(struct conn *c);
static void on_timer(struct conn *c);
static void on_close(struct conn *c, enum conn_reason why);

static void session_free(struct imap_session *s);
static void table_add(struct rs_worker *w, struct imap_session *s);
static void table_del(struct rs_worker *w, struct imap_session *s);

static void process(struct imap_session *s);
static void call_begin(struct imap_session *s);
static void call_end(struct imap_session *s);
static void flow(struct imap_session *s);
static void fill_conf(const struct imap_session *s,
    struct imap_input_conf *conf);
static void handle(struct imap_session *s, enum imap_input_ev ev);
static void handle_line(struct imap_session *s);
static void handle_literal(struct imap_session *s);
static void handle_bad(struct imap_session *s);
static void dispatch(struct imap_session *s, const struct imap_command *cmd);
static const struct imap_cmd_def *find_cmd(const struct imap_command *cmd,
    enum imap_state state);
static void set_tag(struct imap_session *s, const char *tag);
static uint64_t job_flow(const struct imap_session *s);
static void job_done(struct pool_job *sj);

static const struct conn_handler handler = {
	.on_data = on_data,
	.on_drain = on_drain,
	.on_timer = on_timer,
	.on_close = on_close,
};

static void prepare(const struct rs_server *srv, struct rs_ready *r);
static int session_start(struct rs_worker *w, struct conn *c,
    const struct rs_listener *li, struct rs_ready *r, struct buf *rest);

/* IMAP: login/imap_login.c before login, this file after. */
const struct rs_service rs_imap_service = {
	.name = "imap",
	.login = &imap_login_proto,
	.maildir = true,
	.prepare = prepare,
	.start = session_start,
};

/* ---- the worker's session table ---------------------------------- */

static void
table_add(struct rs_worker *w, struct imap_session *s)
{
	struct imap_session **b = &w->sessions[s->sid % RS_SESSION_BUCKETS];

	s->hnext = *b;
	*b = s;
}

static void
table_del(struct rs_worker *w, struct imap_session *s)
{
	struct imap_session **p = &w->sessions[s->sid % RS_SESSION_BUCKETS];

	for (; *p; p = &(*p)->hnext)
		if (*p == s) {
			*p = s->hnext;
			return;
		}
}

struct imap_session *
rs_worker_session(struct rs_worker *w, uint64_t sid)
{
	struct imap_session *s = w->sessions[sid % RS_SESSION_BUCKETS];

	while (s && s->sid != sid)
		s = s->hnext;
	return s;
}

/* ---- life cycle ----------------------------------------------------- */

/* On the login lane: the user's entry, for its quota (APPEND and COPY
 * keep to it like deliveries). The user has proved who they are; an entry
 * the back end cannot give now only means no quota for this session. */
static void
prepare(const struct rs_server *srv, struct rs_ready *r)
{
	const char *err = NULL;

	if (auth_lookup(auth_service_users(srv->auth), r->user, &r->entry,
		&err) != AUTH_LOOKUP_FOUND)
		auth_entry_unref(&r->entry);
}

/*
 * The login core handed over c for r->user (rs_login.c): an authenticated
 * session from here, whose first words are the login command's tagged OK
 * with the capabilities after login. rest is what the client pipelined
 * after that command; it runs next. Takes r->user and r->dir on success;
 * 0, or -1 (c aborted, nothing taken).
 */
static int
session_start(struct rs_worker *w, struct conn *c, const struct rs_listener *li,
    struct rs_ready *r, struct buf *rest)
{
	const char *user = r->user;
	bool tls = r->tls;
	struct imap_session *s = calloc(1, sizeof(*s));
	struct buf caps = { 0 };

	if (s == NULL) {
		conn_abort(c, CR_NOMEM);
		return -1;
	}
	s->w = w;
	s->srv = li->srv;
	s->lconf = li->conf;
	s->c = c;
	s->sid = conn_sid(c);
	s->state = IS_AUTH;
	if (tls)
		s->flags |= SF_TLS;
	if (imap_session_set_limits(s) == -1 ||
	    buf_append(&s->in, buf_head(rest), buf_used(rest)) == -1) {
		imap_input_free(&s->input);
		buf_free(&s->in);
		free(s);
		conn_abort(c, CR_NOMEM);
		return -1;
	}
	s->user = r->user;
	s->maildir = r->dir;
	if (r->entry != NULL) {
		s->has_quota = r->entry->has_quota;
		s->quota = r->entry->quota;
	}
	r->user = r->dir = NULL; /* the session's now */
	table_add(w, s);
	conn_set_handler(c, &handler, s);
	metrics_gauge_add(loop_shard(w->loop), s->srv->m.sessions, 1);
	log_info(s->sid, "imap.login", "user=%s listener=%s tls=%s", user,
	    s->lconf->name, tls ? "yes" : "no");
	snprintf(s->tag, sizeof(s->tag), "%s", r->tag);
	imap_capability_string(s, &caps);
	imap_reply(s, NULL, "OK [CAPABILITY %.*s] Logged in",
	    (int)buf_used(&caps), buf_head(&caps));
	buf_free(&caps);
	conn_set_timer(c, s->srv->cf->limits.idle_timeout);
	call_begin(s);
	process(s);
	call_end(s);
	return 0;
}

static void
session_free(struct imap_session *s)
{
	table_del(s->w, s);
	imap_idle_unselect(s);
	imap_append_free(s);
	if (s->more)
		imap_job_free(s->more);
	maildir_close(&s->box);
	buf_free(&s->in);
	imap_input_free(&s->input);
	free(s->user);
	free(s->maildir);
	free(s);
}

/* The input's limits after login. An over-large LITERAL+ is swallowed
 * (within four times append_max) and answered NO [TOOBIG]. */
static void
fill_conf(const struct imap_session *s, struct imap_input_conf *conf)
{
	const struct rs_config *cf = s->srv->cf;
	struct imap_limits *lim = &conf->lim;

	memset(conf, 0, sizeof(*conf));
	lim->max_line = cf->limits.line_max;
	lim->max_command = cf->limits.command_max;
	lim->max_literal = cf->limits.append_max;
	lim->max_nonsync = cf->limits.append_max;
	lim->max_inline_literal = 65536;
	lim->max_args = 4096;
	conf->swallow_max = 4 * cf->limits.append_max;
}

/* The command budget and literal limits (the configured ones). */
int
imap_session_set_limits(struct imap_session *s)
{
	struct imap_input_conf conf;

	fill_conf(s, &conf);
	if (s->input.buf == NULL)
		return imap_input_init(&s->input, &conf);
	return imap_input_reconf(&s->input, &conf);
}

void
imap_enter_state(struct imap_session *s, enum imap_state st)
{
	static const char *const names[] = { "not_auth", "auth", "selected",
		"logout" };

	log_debug(s->sid, "imap.state", "from=%s to=%s", names[s->state],
	    names[st]);
	s->state = st;
}

/* ---- connection callbacks ---------------------------------------- */

static void
on_data(struct conn *c, const char *p, size_t n)
{
	struct imap_session *s = conn_ctx(c);

	if (s == NULL || (s->flags & SF_CLOSING))
		return;
	if (rs_conn_input(c, &s->in, p, n, s->srv->cf->limits.idle_timeout) ==
	    -1)
		return;
	call_begin(s);
	process(s);
	call_end(s);
}

static void
on_drain(struct conn *c)
{
	struct imap_session *s = conn_ctx(c);

	if (s == NULL)
		return;
	call_begin(s);
	if (s->flags & SF_MORE) {
		s->flags &= ~SF_MORE;
		imap_more(s);
	} else {
		process(s);
	}
	call_end(s);
}

static void
call_begin(struct imap_session *s)
{
	s->calls++;
}

/* The outermost callback frees a session whose connection closed under
 * it, unless a job still holds it (job_done frees it then). */
static void
call_end(struct imap_session *s)
{
	if (--s->calls == 0 && (s->flags & SF_GONE) &&
	    !(s->flags & (SF_BUSY | SF_WRITING)))
		session_free(s);
}

static void
on_timer(struct conn *c)
{
	struct imap_session *s = conn_ctx(c);

	if (rs_conn_idle(c, s != NULL && !(s->flags & SF_CLOSING)))
		imap_bye(s, "Autologout; idle for too long");
}

static void
on_close(struct conn *c, enum conn_reason why)
{
	struct imap_session *s = conn_ctx(c);

	if (s == NULL)
		return;
	metrics_gauge_add(loop_shard(conn_loop(c)), s->srv->m.sessions, -1);
	log_info(s->sid, "imap.close",
	    "reason=%s user=%s commands=%llu "
	    "in=%llu out=%llu",
	    conn_reason_name(why), s->user ? s->user : "-",
	    (unsigned long long)s->commands,
	    (unsigned long long)conn_bytes_in(c),
	    (unsigned long long)conn_bytes_out(c));
	conn_set_ctx(c, NULL);
	s->c = NULL;
	if ((s->flags & (SF_BUSY | SF_WRITING)) || s->calls > 0) {
		s->flags |= SF_GONE; /* freed when the job or call returns */
		return;
	}
	session_free(s);
}

/* ---- replies ------------------------------------------------------ */

/* The one place output is queued: every line goes through here or
 * imap_send(). Output is bounded by construction rather than by a cap
 * here: input is not read while the queue is over its mark (flow()), a
 * batched FETCH continues only after a drain, so at most one batch and a
 * few lines sit above the mark; a peer that stops reading is timed out. */
void
imap_send(struct imap_session *s, const void *p, size_t n)
{
	rs_conn_send(s->c, p, n);
}

void
imap_send_buf(struct imap_session *s, struct buf *b)
{
	if (s->c == NULL || conn_closing(s->c)) {
		buf_consume(b, buf_used(b));
		return;
	}
	if (conn_write_buf(s->c, b) == -1)
		conn_abort(s->c, CR_NOMEM);
}

void
imap_reply(struct imap_session *s, const char *tag, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t n;
	int m;

	m = snprintf(line, sizeof(line), "%s ", tag ? tag : s->tag);
	if (m < 0 || (size_t)m >= sizeof(line) - 3)
		m = snprintf(line, sizeof(line), "* ");
	va_start(ap, fmt);
	n = rs_vline(line + m, sizeof(line) - (size_t)m, fmt, ap);
	va_end(ap);
	imap_send(s, line, (size_t)m + n);
}

void
imap_bad(struct imap_session *s, const char *text)
{
	metrics_add(loop_shard(s->w->loop), s->srv->m.bad_commands, 1);
	imap_reply(s, NULL, "BAD %s", text);
	if (++s->bad >= (unsigned)s->srv->cf->limits.bad_commands)
		imap_bye(s, "Too many bad commands");
}

void
imap_bye(struct imap_session *s, const char *text)
{
	if (s->flags & SF_CLOSING)
		return;
	imap_reply(s, "*", "BYE %s", text);
	s->flags |= SF_CLOSING;
	if (s->c)
		conn_close(s->c);
}

/* ---- input -------------------------------------------------------- */

/* Pause reading while a job runs, the output is over its mark or an
 * APPEND chunk waits for its write; read again when none holds. */
static void
flow(struct imap_session *s)
{
	bool stop = (s->flags & (SF_BUSY | SF_MORE)) || conn_out_full(s->c) ||
	    imap_append_room(s) == 0;

	if (rs_conn_hold(s->c, stop, s->flags & SF_PAUSED))
		s->flags |= SF_PAUSED;
	else
		s->flags &= ~SF_PAUSED;
}

static void
process(struct imap_session *s)
{
	while (s->c != NULL && !(s->flags & (SF_BUSY | SF_CLOSING | SF_MORE)) &&
	    !conn_out_full(s->c) && buf_used(&s->in) > 0) {
		size_t used = 0, len = buf_used(&s->in);
		size_t room = imap_append_room(s);
		enum imap_input_ev ev;

		if (room == 0)
			break;
		ev = imap_input_next(&s->input, buf_head(&s->in),
		    len < room ? len : room, &used);
		buf_consume(&s->in, used);
		if (ev == IMAP_IN_MORE)
			break;
		handle(s, ev);
	}
	if (s->c != NULL) {
		buf_release(&s->in);
		flow(s);
	}
}

/* One input event. Whatever ends a command also ends a streamed APPEND
 * that did not take its message (the tmp file goes). */
static void
handle(struct imap_session *s, enum imap_input_ev ev)
{
	const struct imap_parser *ps = &s->input.parser;

	switch (ev) {
	case IMAP_IN_LITERAL:
		handle_literal(s);
		return;
	case IMAP_IN_DATA:
		if (ps->lit.stream == 0)
			imap_append_data(s, ps->data, ps->data_len);
		return;
	case IMAP_IN_COMMAND:
		dispatch(s, &ps->cmd);
		break;
	case IMAP_IN_LINE:
		handle_line(s);
		break;
	case IMAP_IN_BAD:
		handle_bad(s);
		break;
	case IMAP_IN_TOOBIG:
		set_tag(s, s->input.tag);
		imap_reply(s, NULL, "NO [TOOBIG] %s", s->input.error);
		break;
	case IMAP_IN_FATAL:
		imap_bye(s, s->input.error);
		break;
	case IMAP_IN_MORE:
		return;
	}
	imap_append_end(s);
	s->lit_over = false;
}

/* The raw line asked for: IDLE's DONE. */
static void
handle_line(struct imap_session *s)
{
	const struct imap_command *cmd = &s->input.parser.cmd;

	s->flags &= ~SF_LINE;
	imap_idle_line(s, cmd->line, cmd->line_len);
}

/* A literal was announced: only one streamed literal per command (the
 * APPEND message, which goes to a tmp file and answers the continuation
 * itself); a synchronizing one gets its continuation. */
static void
handle_literal(struct imap_session *s)
{
	const struct imap_literal *lit = &s->input.parser.lit;
	const struct imap_command *cmd = &s->input.parser.cmd;

	if (lit->streamed && lit->stream > 0) {
		s->lit_over = true;
		if (lit->sync && imap_input_refuse(&s->input) == 0) {
			set_tag(s, NULL);
			imap_bad(s, "Only one large literal per command");
			imap_append_end(s);
			return;
		}
	}
	if (lit->streamed && lit->stream == 0 && !cmd->uid &&
	    imap_command_is(cmd, "APPEND")) {
		set_tag(s, NULL);
		imap_append_literal(s);
		return;
	}
	if (lit->sync)
		imap_reply(s, "+", "OK");
}

/* A bad line. One that was IDLE's raw line (too long) is not DONE:
 * IDLE waits for DONE again. */
static void
handle_bad(struct imap_session *s)
{
	if (s->input.line_failed && (s->flags & SF_LINE)) {
		s->flags &= ~SF_LINE;
		imap_idle_line(s, "", 0);
		return;
	}
	set_tag(s, s->input.tag);
	if (s->input.toobig)
		imap_reply(s, NULL, "NO [TOOBIG] %s", s->input.error);
	else
		imap_bad(s, s->input.error);
}

/* The tag answers go to: the parser's current command (NULL), or a tag
 * imap_input kept for an error answer. */
static void
set_tag(struct imap_session *s, const char *tag)
{
	const struct imap_command *cmd = &s->input.parser.cmd;

	if (tag != NULL) {
		snprintf(s->tag, sizeof(s->tag), "%s", tag);
		return;
	}
	if (cmd->tag == NULL || cmd->tag_len == 0 ||
	    cmd->tag_len > IMAP_TAG_MAX) {
		memcpy(s->tag, "*", 2);
		return;
	}
	memcpy(s->tag, cmd->tag, cmd->tag_len);
	s->tag[cmd->tag_len] = '\0';
}

/* ---- dispatch ----------------------------------------------------- */

static const struct imap_cmd_def *
find_cmd(const struct imap_command *cmd, enum imap_state state)
{
	static const struct imap_cmd_def *const tables[] = { imap_cmds_any,
		imap_cmds_mailbox, imap_cmds_message, imap_cmds_append,
		imap_cmds_fetch, imap_cmds_copy, imap_cmds_search,
		imap_cmds_idle };
	const struct imap_cmd_def *named = NULL;

	/* A name may have one entry per state (NOOP syncs when selected). */
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct imap_cmd_def *d = tables[t]; d->name; d++) {
			if (!imap_command_is(cmd, d->name) ||
			    (cmd->uid && !d->uid))
				continue;
			if (d->states & (1u << state))
				return d;
			if (named == NULL)
				named = d;
		}
	return named;
}

static void
dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd_def *d;
	char qname[64];

	set_tag(s, NULL);
	if (cmd->tag_len > IMAP_TAG_MAX) {
		imap_bad(s, "Tag too long");
		return;
	}
	s->commands++;
	metrics_add(loop_shard(s->w->loop), s->srv->m.commands, 1);
	if ((d = find_cmd(cmd, s->state)) == NULL) {
		log_debug(s->sid, "imap.unknown", "command=%s",
		    log_quote(qname, sizeof(qname), cmd->name, cmd->name_len));
		imap_bad(s, "Unknown command");
		return;
	}
	if (!(d->states & (1u << s->state))) {
		imap_bad(s,
		    s->state == IS_AUTH ? "Select a mailbox first" :
					  "Not allowed now");
		return;
	}
	s->error = NULL;
	s->a.mbox[0] = s->a.mbox2[0] = '\0';
	s->a.items = 0;
	s->a.refuse = NULL;
	if (d->check && d->check(s, cmd) == -1) {
		if (s->a.refuse != NULL)
			imap_reply(s, NULL, "NO %s", s->a.refuse);
		else
			imap_bad(s, s->error ? s->error : "Invalid arguments");
		return;
	}
	d->run(s, cmd);
}

/* ---- jobs --------------------------------------------------------- */

void *
imap_job_new(struct imap_session *s, size_t size,
    int (*finish)(struct imap_session *, struct imap_job *))
{
	struct imap_job *job = calloc(1, size);

	if (job == NULL)
		return NULL;
	job->base.done = job_done;
	job->base.sid = s->sid;
	job->base.flow = job_flow(s);
	job->w = s->w;
	job->finish = finish;
	job->has_quota = s->has_quota;
	job->quota = s->quota;
	return job;
}

void
imap_job_free(struct imap_job *job)
{
	if (job == NULL)
		return;
	if (job->release)
		job->release(job);
	maildir_close(&job->box);
	buf_free(&job->out);
	free(job);
}

/* The pool's fairness key: the user once logged in (all of a user's
 * sessions share one turn), the session before. FNV-1a; a collision only
 * makes two users share a turn. */
static uint64_t
job_flow(const struct imap_session *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	if (s->user == NULL)
		return s->sid;
	for (const unsigned char *p = (const void *)s->user; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h;
}

/* Mailbox work runs on the store lane; the Maildir set-up of a login
 * has a lane of its own (rs_login.c), so logins never wait behind it. */
struct pool *
imap_job_pool(const struct imap_session *s)
{
	return s->srv->store;
}

int
imap_job_queue(struct imap_session *s, struct imap_job *job, pool_run_fn *run,
    unsigned flag)
{
	job->base.run = run;
	job->hold = flag;
	if ((s->flags & (SF_BUSY | SF_WRITING)) != 0) {
		/* one job per session in the pool: a caller broke the rule */
		log_error(s->sid, "imap.job_overlap", "flags=%#x", s->flags);
		metrics_add(loop_shard(s->w->loop), s->srv->m.store_busy, 1);
		if (job->box) {
			s->box = job->box;
			job->box = NULL;
		}
		imap_job_free(job);
		return -1;
	}
	if (pool_submit(imap_job_pool(s), s->w->outbox, &job->base) == -1) {
		if (job->box) { /* give the folder back */
			s->box = job->box;
			job->box = NULL;
		}
		imap_job_free(job);
		metrics_add(loop_shard(s->w->loop), s->srv->m.store_busy, 1);
		return -1;
	}
	metrics_add(loop_shard(s->w->loop), s->srv->m.store_jobs, 1);
	s->flags |= flag;
	return 0;
}

int
imap_job_submit(struct imap_session *s, struct imap_job *job, pool_run_fn *run)
{
	if (imap_job_queue(s, job, run, SF_BUSY) == -1) {
		imap_reply(s, NULL, "NO [UNAVAILABLE] Server busy, try again");
		return -1;
	}
	return 0;
}

int
imap_job_again(struct imap_session *s, struct imap_job *job)
{
	job->hold = SF_BUSY;
	if (pool_resubmit(s->srv->store, s->w->outbox, &job->base) == -1)
		return -1;
	s->flags |= SF_BUSY;
	return 0;
}

void
imap_job_hold(struct imap_session *s, struct imap_job *job)
{
	job->hold = SF_BUSY;
	pool_outbox_hold(s->w->outbox, &job->base);
	s->flags |= SF_BUSY;
}

/* On the loop (or at outbox close): the answer of a job. */
static void
job_done(struct pool_job *sj)
{
	struct imap_job *job = (struct imap_job *)sj;
	struct imap_session *s = rs_worker_session(job->w, sj->sid);

	if (s == NULL) {
		imap_job_free(job);
		return;
	}
	s->flags &= ~(job->hold ? job->hold : (unsigned)SF_BUSY);
	if (s->flags & SF_GONE) {
		/* a husk: free it once its last job is back */
		imap_job_free(job);
		if (!(s->flags & (SF_BUSY | SF_WRITING)))
			session_free(s);
		return;
	}
	call_begin(s);
	if (job->finish(s, job) == 0)
		imap_job_free(job);
	if (s->c != NULL && !(s->flags & SF_BUSY))
		process(s);
	call_end(s);
}

/* ---- argument helpers ------------------------------------------- */

int
imap_check_none(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 0) {
		s->error = "This command takes no arguments";
		return -1;
	}
	return 0;
}

int
imap_buf_write(void *ctx, const char *p, size_t len)
{
	return buf_append(ctx, p, len);
}

int
imap_get_astring(struct imap_session *s, const struct imap_arg *a, char *dst,
    size_t cap)
{
	if (a == NULL || !imap_arg_is_astring(a)) {
		s->error = "Expected a string";
		return -1;
	}
	if (a->len >= cap || memchr(a->ptr, '\0', a->len) != NULL) {
		s->error = "String too long or holds a NUL";
		return -1;
	}
	memcpy(dst, a->ptr, a->len);
	dst[a->len] = '\0';
	return 0;
}

int
imap_get_mailbox(struct imap_session *s, const struct imap_arg *a, char *dst,
    size_t cap)
{
	size_t n;

	if (a == NULL || !imap_arg_is_astring(a)) {
		s->error = "Expected a mailbox name";
		return -1;
	}
	if (utf7_to_utf8(a->ptr, a->len, dst, cap, &n, &s->error) == -1) {
		/* well-formed, but no mailbox can have that name: clients
		 * expect NO, and BAD would count toward the disconnect */
		s->a.refuse = a->len >= cap ? "[LIMIT] Mailbox name too long" :
					      "[CANNOT] Invalid mailbox name";
		return -1;
	}
	if (strncasecmp(dst, "INBOX", 5) == 0 &&
	    (dst[5] == '\0' || dst[5] == '/'))
		memcpy(dst, "INBOX", 5);
	return 0;
}

int
imap_put_mailbox(struct buf *b, const char *name)
{
	char enc[IMAP_MBOX_MAX * 3];
	size_t n;
	const char *err;

	if (utf7_from_utf8(name, strlen(name), enc, sizeof(enc), &n, &err) ==
	    -1)
		return -1;
	return imap_write_astring(imap_buf_write, b, enc, n, 0);
}
