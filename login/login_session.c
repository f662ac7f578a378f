/*
 * login_session.c - the pre-login session core: the connection's
 * callbacks, the session's states (ACTIVE -> VERIFY -> DELAY/HANDOFF ->
 * gone), the absolute deadline and the failed-login delay on the loop's
 * timers, the counts that end a session, flow control, the worker's
 * session table for late answers, and the hand-off to the daemon.
 *
 * Relies on core/ for I/O and timers, on the protocol's table for every
 * word the client sees, and on the daemon's hooks for what happens around
 * a login. The session is freed only where no callback of its own is on
 * the stack and no verification is out (a husk waits for its answer).
 *
 * Must never: read input while a login is decided, the output queue is
 * over its mark or a failed login's answer is held back; let a command
 * restart the pre-login deadline; log a password.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/listener_conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "login/login_private.h"

static void on_open(struct conn *c);
static void on_data(struct conn *c, const char *p, size_t n);
static void on_drain(struct conn *c);
static void on_close(struct conn *c, enum conn_reason why);
static void on_over(struct conn *c);
static bool evictable(const struct conn *c);

static struct login_session *session_new(struct conn *c);
static void session_free(struct login_session *s);
static void table_add(struct login_worker *w, struct login_session *s);
static void table_del(struct login_worker *w, struct login_session *s);
static void run_input(struct login_session *s);
static void greet(struct login_session *s);
static void goodbye(struct login_session *s, enum login_bye why);
static void deadline_fired(struct timer *t, void *arg);
static void delay_fired(struct timer *t, void *arg);
static void idle_fired(struct timer *t, void *arg);
static void idle_rearm(struct login_session *s);
static void answer_failure(struct login_session *s, enum login_fail why);
static void judge(struct login_session *s);
static void hold_failure(struct login_session *s, uint64_t d);
static void success_now(struct login_session *s);

static const struct conn_handler handler = {
	.on_open = on_open,
	.on_data = on_data,
	.on_drain = on_drain,
	.on_close = on_close,
	.on_over = on_over,
	.evictable = evictable,
};

const struct conn_handler *
login_handler(void)
{
	return &handler;
}

/* ---- metrics ----------------------------------------------------------- */

int
login_metrics_init(struct metrics *m, const struct login_proto *proto,
    struct login_metrics *lm)
{
	static const char *const reasons[] = { "timeout", "fails", "bad",
		"refused", "internal", "idle" };
	char name[96], help[160];

	snprintf(name, sizeof(name), "%s_login_sessions", proto->name);
	lm->sessions = metrics_gauge(m, name,
	    "Sessions before login (greeting to logged in).", NULL);
	snprintf(name, sizeof(name), "%s_logins_total", proto->name);
	snprintf(help, sizeof(help), "%s logins, by result.", proto->name);
	lm->logins_ok = metrics_counter(m, name, help, "result=\"ok\"");
	lm->logins_fail = metrics_counter(m, name, help, "result=\"fail\"");
	snprintf(name, sizeof(name), "%s_bad_commands_total", proto->name);
	lm->bad_commands = metrics_counter(m, name,
	    "Commands answered BAD (or the protocol's equivalent).", NULL);
	snprintf(name, sizeof(name), "%s_login_closed_total", proto->name);
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		snprintf(help, sizeof(help), "reason=\"%s\"", reasons[i]);
		lm->closed[i] = metrics_counter(m, name,
		    "Sessions ended before login by a limit: the pre-login "
		    "deadline, failed logins, bad commands, not admitted, "
		    "idle.",
		    help);
		if (lm->closed[i] < 0)
			return -1;
	}
	snprintf(name, sizeof(name), "%s_login_long_lines_total", proto->name);
	lm->long_lines = metrics_counter(m, name,
	    "Lines before login over the line limit (refused as bad "
	    "commands).",
	    NULL);
	return lm->sessions < 0 || lm->logins_ok < 0 || lm->logins_fail < 0 ||
		lm->long_lines < 0 || lm->bad_commands < 0 ?
	    -1 :
	    0;
}

void
login_count(struct login_session *s, int id, int64_t n)
{
	struct metrics_shard *sh = loop_shard(s->w->loop);

	if (n < 0 || id == s->li->metrics->sessions)
		metrics_gauge_add(sh, id, n);
	else
		metrics_add(sh, id, (uint64_t)n);
}

/* ---- the worker ------------------------------------------------------ */

struct login_worker *
login_worker_new(struct loop *l, struct auth_backend *users,
    struct auth_pool *verify)
{
	struct login_worker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->loop = l;
	w->users = users;
	w->verify = verify;
	if ((w->outbox = pool_outbox_new(l)) == NULL) {
		free(w);
		return NULL;
	}
	return w;
}

void
login_worker_free(struct login_worker **wp)
{
	struct login_worker *w = *wp;

	*wp = NULL;
	if (w == NULL)
		return;
	/* the answers still out find no session and free themselves */
	pool_outbox_close(&w->outbox);
	for (unsigned b = 0; b < LOGIN_SESSION_BUCKETS; b++)
		if (w->table[b] != NULL)
			log_error(0, "login.leak", "bucket=%u", b);
	free(w);
}

unsigned
login_worker_sessions(const struct login_worker *w)
{
	unsigned n = 0;

	for (unsigned b = 0; b < LOGIN_SESSION_BUCKETS; b++)
		for (struct login_session *s = w->table[b]; s; s = s->hnext)
			n++;
	return n;
}

static void
table_add(struct login_worker *w, struct login_session *s)
{
	struct login_session **b = &w->table[s->sid % LOGIN_SESSION_BUCKETS];

	s->hnext = *b;
	*b = s;
}

static void
table_del(struct login_worker *w, struct login_session *s)
{
	struct login_session **p = &w->table[s->sid % LOGIN_SESSION_BUCKETS];

	for (; *p; p = &(*p)->hnext)
		if (*p == s) {
			*p = s->hnext;
			return;
		}
}

struct login_session *
login_session_find(struct login_worker *w, uint64_t sid)
{
	struct login_session *s = w->table[sid % LOGIN_SESSION_BUCKETS];

	while (s != NULL && s->sid != sid)
		s = s->hnext;
	return s;
}

/* ---- life cycle ------------------------------------------------------ */

static struct login_session *
session_new(struct conn *c)
{
	const struct login_listener *li = listener_ctx(conn_listener(c));
	struct login_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (li->proto->state_size > 0 &&
	    (s->proto_state = calloc(1, li->proto->state_size)) == NULL) {
		free(s);
		return NULL;
	}
	s->li = li;
	s->w = li->workers[loop_index(conn_loop(c))];
	s->c = c;
	s->sid = conn_sid(c);
	s->started = loop_now(conn_loop(c));
	s->tls = conn_tls(c) != NULL;
	timer_init(&s->deadline, conn_loop(c), deadline_fired, s);
	timer_init(&s->delay, conn_loop(c), delay_fired, s);
	timer_init(&s->idle, conn_loop(c), idle_fired, s);
	if (li->proto->init(s) == -1) {
		free(s->proto_state);
		free(s);
		return NULL;
	}
	table_add(s->w, s);
	login_count(s, li->metrics->sessions, 1);
	return s;
}

static void
session_free(struct login_session *s)
{
	if (s->li->hooks->ended != NULL)
		s->li->hooks->ended(s, s->bad_bye);
	login_count(s, s->li->metrics->sessions, -1);
	table_del(s->w, s);
	timer_stop(&s->deadline);
	timer_stop(&s->delay);
	timer_stop(&s->idle);
	sasl_server_free(&s->sasl);
	login_clear_id(s);
	s->li->proto->free(s);
	buf_free(&s->in);
	buf_free(&s->replay);
	free(s->proto_state);
	free(s);
}

/* Loop callbacks and late answers nest: the outermost frees a session
 * whose connection went (or was handed off) under it, unless a
 * verification is still out (its answer frees it then). */
void
login_call_begin(struct login_session *s)
{
	s->calls++;
}

void
login_call_end(struct login_session *s)
{
	if (--s->calls == 0 && s->gone && !s->verifying)
		session_free(s);
}

/* ---- connection callbacks ------------------------------------------- */

static void
on_open(struct conn *c)
{
	struct login_session *s = conn_ctx(c);
	const struct login_hooks *h;

	if (s != NULL) {
		/* the STARTTLS handshake is done; the client speaks next */
		s->tls = true;
		idle_rearm(s);
		login_call_begin(s);
		login_flow(s);
		login_call_end(s);
		return;
	}
	if ((s = session_new(c)) == NULL) {
		conn_abort(c, CR_NOMEM);
		return;
	}
	conn_set_ctx(c, s);
	h = s->li->hooks;
	log_info(s->sid, "login.open", "proto=%s listener=%s client=%s tls=%s",
	    s->li->proto->name, s->li->set->listener->name, conn_peer(c),
	    s->tls ? "yes" : "no");
	/* absolute: commands do not move it */
	if (timer_set(&s->deadline, s->li->set->login_timeout) == -1) {
		conn_abort(c, CR_NOMEM);
		return;
	}
	idle_rearm(s);
	login_call_begin(s);
	if (h->admit == NULL) {
		greet(s);
	} else {
		int r;

		/* nothing is read or said until the daemon answers */
		s->state = LS_ADMIT;
		login_flow(s);
		r = h->admit(s);
		if (r != LOGIN_ADMIT_PENDING)
			login_session_admitted(s, r == LOGIN_ADMIT_OK);
	}
	login_call_end(s);
}

static void
greet(struct login_session *s)
{
	s->state = LS_ACTIVE;
	s->greeted = true;
	s->li->proto->greet(s);
	login_flow(s);
}

void
login_session_admitted(struct login_session *s, bool ok)
{
	if (s->c == NULL || s->state != LS_ADMIT)
		return;
	login_call_begin(s);
	if (!ok) {
		/* the daemon logged why; login.close follows */
		goodbye(s, LOGIN_BYE_REFUSED);
	} else {
		greet(s);
		/* what a client pipelined before its greeting */
		run_input(s);
	}
	login_call_end(s);
}

static void
on_data(struct conn *c, const char *p, size_t n)
{
	struct login_session *s = conn_ctx(c);

	if (s == NULL || s->state == LS_CLOSING)
		return;
	if (buf_append(&s->in, p, n) == -1) {
		conn_abort(c, CR_NOMEM);
		return;
	}
	idle_rearm(s);
	login_call_begin(s);
	run_input(s);
	login_call_end(s);
}

static void
on_drain(struct conn *c)
{
	struct login_session *s = conn_ctx(c);

	if (s == NULL)
		return;
	login_call_begin(s);
	run_input(s);
	login_call_end(s);
}

static void
on_close(struct conn *c, enum conn_reason why)
{
	struct login_session *s = conn_ctx(c);

	if (s == NULL)
		return;
	log_info(s->sid, "login.close",
	    "proto=%s reason=%s user=%s "
	    "fails=%u bad=%u ms=%llu",
	    s->li->proto->name, conn_reason_name(why),
	    s->user[0] ? s->user : "-", s->fails, s->bad,
	    (unsigned long long)(loop_now(conn_loop(c)) - s->started));
	conn_set_ctx(c, NULL);
	s->c = NULL;
	s->gone = true;
	timer_stop(&s->deadline);
	timer_stop(&s->delay);
	timer_stop(&s->idle);
	if (s->calls == 0 && !s->verifying)
		session_free(s);
}

/* Over a session cap (core/conn_limit.h), instead of on_open: a session
 * only to say the protocol's "try again later" (no admit hook, no
 * greeting) and close. */
static void
on_over(struct conn *c)
{
	struct login_session *s = session_new(c);

	if (s == NULL) {
		conn_abort(c, CR_NOMEM);
		return;
	}
	conn_set_ctx(c, s);
	log_debug(s->sid, "login.over_limit", "proto=%s listener=%s client=%s",
	    s->li->proto->name, s->li->set->listener->name, conn_peer(c));
	login_call_begin(s);
	goodbye(s, LOGIN_BYE_REFUSED);
	login_call_end(s);
}

/* At the descriptor cap the loop cuts the oldest connection not logged
 * in: one reading commands, holding a failure's answer or saying goodbye
 * may go; one whose login is on its way (the verify pool, the back end,
 * or any state added later) is kept. */
static bool
evictable(const struct conn *c)
{
	const struct login_session *s = conn_ctx(c);

	return s == NULL || s->state == LS_ACTIVE || s->state == LS_DELAY ||
	    s->state == LS_CLOSING;
}

/* Run commands while one may run; then pause or resume reading. */
static void
run_input(struct login_session *s)
{
	if (s->c != NULL && !login_busy(s) && !conn_out_full(s->c) &&
	    buf_used(&s->in) > 0)
		s->li->proto->input(s);
	if (s->c != NULL) {
		buf_release(&s->in);
		login_flow(s);
	}
}

void
login_flow(struct login_session *s)
{
	bool stop;

	if (s->c == NULL || s->state == LS_CLOSING)
		return;
	stop = login_busy(s) || conn_out_full(s->c);
	if (stop && !s->paused) {
		s->paused = true;
		conn_pause(s->c);
	} else if (!stop && s->paused) {
		/* what already waits in s->in is run by whoever made the
		 * session free again (run_input), never from here */
		s->paused = false;
		conn_resume(s->c);
	}
}

/* ---- timers ---------------------------------------------------------- */

/* The pre-login phase is over, whatever the client was doing. */
static void
deadline_fired(struct timer *t, void *arg)
{
	struct login_session *s = arg;

	(void)t;
	login_call_begin(s);
	log_info(s->sid, "login.timeout", "proto=%s state=%d",
	    s->li->proto->name, (int)s->state);
	goodbye(s, LOGIN_BYE_TIMEOUT);
	login_call_end(s);
}

/* The client sent nothing for idle_timeout. A login on the verify pool,
 * a held failure or the daemon's back-end login is our wait, not the
 * client's: the timer starts again. */
static void
idle_fired(struct timer *t, void *arg)
{
	struct login_session *s = arg;

	(void)t;
	if (s->state != LS_ACTIVE) {
		if (s->state != LS_CLOSING)
			idle_rearm(s);
		return;
	}
	login_call_begin(s);
	log_info(s->sid, "login.idle", "proto=%s", s->li->proto->name);
	goodbye(s, LOGIN_BYE_IDLE);
	login_call_end(s);
}

static void
idle_rearm(struct login_session *s)
{
	if (s->li->set->idle_timeout > 0)
		(void)timer_set(&s->idle, s->li->set->idle_timeout);
}

/* A failed login's answer goes out now. */
static void
delay_fired(struct timer *t, void *arg)
{
	struct login_session *s = arg;

	(void)t;
	if (s->state == LS_TARPIT) {
		login_call_begin(s);
		success_now(s);
		login_call_end(s);
		return;
	}
	if (s->state != LS_DELAY)
		return;
	login_call_begin(s);
	s->state = LS_ACTIVE;
	answer_failure(s, s->delayed);
	run_input(s);
	login_call_end(s);
}

/* ---- outcomes -------------------------------------------------------- */

static void
answer_failure(struct login_session *s, enum login_fail why)
{
	const struct login_settings *set = s->li->set;

	s->li->proto->auth_result(s, why);
	if (set->max_fails > 0 && s->fails >= set->max_fails)
		goodbye(s, LOGIN_BYE_FAILS);
	else if (set->max_bad > 0 && s->bad >= set->max_bad)
		goodbye(s, LOGIN_BYE_BAD);
}

/*
 * Credentials that were wrong (or refused) count twice, as a failed login
 * and as a bad command, and their answer waits fail_delay on the loop's
 * timer, reading nothing meanwhile: a guesser gets one try per delay per
 * connection and a few per connection. The other failures say something
 * about the request, not the password, and answer at once.
 */
void
login_failed(struct login_session *s, enum login_fail why)
{
	sasl_server_free(&s->sasl);
	s->state = LS_ACTIVE;
	if (why != LOGIN_FAIL_CREDENTIALS && why != LOGIN_FAIL_AUTHZID &&
	    why != LOGIN_FAIL_TEMP) {
		s->bad++;
		login_count(s, s->li->metrics->bad_commands, 1);
	} else {
		login_count(s, s->li->metrics->logins_fail, 1);
	}
	if (why == LOGIN_FAIL_CREDENTIALS || why == LOGIN_FAIL_AUTHZID) {
		s->fails++;
		s->bad++;
		uint64_t d = s->li->set->fail_delay;

		/* The auth back-end may ask for longer (HTTP Auth-Wait). */
		if (s->wait_ms > d)
			d = s->wait_ms;
		s->wait_ms = 0;
		s->delayed = why;
		if (s->li->hooks->judge != NULL) {
			/* the throttle counts it and may hold it longer */
			s->hold = d;
			s->judging_ok = false;
			judge(s);
			return;
		}
		if (d > 0 && timer_set(&s->delay, d) == 0) {
			s->state = LS_DELAY;
			login_flow(s);
			return;
		}
	}
	answer_failure(s, why);
}

/* Ask the daemon about this outcome; its answer may come at once. */
static void
judge(struct login_session *s)
{
	s->state = LS_JUDGE;
	login_flow(s);
	s->in_judge = true;
	s->li->hooks->judge(s, s->user, s->judging_ok);
	s->in_judge = false;
}

/* A failure's answer after d ms (now, when d is 0). */
static void
hold_failure(struct login_session *s, uint64_t d)
{
	if (d > 0 && timer_set(&s->delay, d) == 0) {
		s->state = LS_DELAY;
		login_flow(s);
		return;
	}
	s->state = LS_ACTIVE;
	answer_failure(s, s->delayed);
	/* inside judge() the protocol's input loop goes on by itself */
	if (!s->in_judge)
		run_input(s);
}

void
login_session_judged(struct login_session *s, uint64_t delay_ms, bool refuse)
{
	if (s->c == NULL || s->state != LS_JUDGE)
		return;
	login_call_begin(s);
	if (s->judging_ok && !refuse) {
		if (delay_ms > 0 && timer_set(&s->delay, delay_ms) == 0) {
			s->state = LS_TARPIT;
			login_flow(s);
		} else {
			success_now(s);
		}
	} else {
		if (s->judging_ok) {
			/* a blocked source: the right password fails like
			 * a wrong one, counted as one */
			log_info(s->sid, "login.blocked", "proto=%s user=%s",
			    s->li->proto->name, s->user[0] ? s->user : "-");
			s->judging_ok = false;
			s->fails++;
			s->bad++;
			login_count(s, s->li->metrics->logins_fail, 1);
			s->delayed = LOGIN_FAIL_CREDENTIALS;
			s->hold = s->li->set->fail_delay;
		}
		hold_failure(s, delay_ms > s->hold ? delay_ms : s->hold);
	}
	login_call_end(s);
}

void
login_succeeded(struct login_session *s, const char *user, const char *authcid)
{
	char who[sizeof(s->user)];

	/* both may point into the SASL session (or user into s->user) */
	snprintf(who, sizeof(who), "%s", authcid);
	snprintf(s->authcid, sizeof(s->authcid), "%s", who);
	if (user != s->user)
		snprintf(s->user, sizeof(s->user), "%s", user);
	sasl_server_free(&s->sasl);
	if (s->li->hooks->judge != NULL) {
		s->judging_ok = true;
		judge(s);
		return;
	}
	success_now(s);
}

/* The user is in: the daemon takes over. */
static void
success_now(struct login_session *s)
{
	struct login_user u = {
		.user = s->user,
		.authcid = s->authcid,
		.mech = s->mech,
		.tag = s->tag,
	};

	s->state = LS_HANDOFF;
	login_flow(s);
	s->li->hooks->logged_in(s, &u);
}

struct conn *
login_session_handoff(struct login_session *s, struct buf *rest)
{
	struct conn *c = s->c;

	login_count(s, s->li->metrics->logins_ok, 1);
	if (c != NULL) {
		/* a vouched-for command first, then what followed it */
		if ((buf_used(&s->replay) > 0 &&
			buf_append(rest, buf_head(&s->replay),
			    buf_used(&s->replay)) == -1) ||
		    buf_append(rest, buf_head(&s->in), buf_used(&s->in)) ==
			-1) {
			conn_abort(c, CR_NOMEM);
			return NULL;
		}
		/* the daemon's session decides its own flow from here */
		if (s->paused)
			conn_resume(c);
		conn_set_ctx(c, NULL);
	}
	s->c = NULL;
	s->gone = true;
	timer_stop(&s->deadline);
	timer_stop(&s->delay);
	timer_stop(&s->idle);
	if (s->calls == 0 && !s->verifying)
		session_free(s);
	return c;
}

void
login_session_refuse(struct login_session *s, enum login_fail why,
    const char *log)
{
	log_warn(s->sid, "login.refused", "proto=%s user=%s why=\"%s\"",
	    s->li->proto->name, s->user, log ? log : "");
	if (s->c == NULL || s->state != LS_HANDOFF)
		return;
	login_call_begin(s);
	s->state = LS_ACTIVE;
	s->li->proto->auth_result(s, why);
	run_input(s);
	login_call_end(s);
}

/* The protocol's last words, then close; one who does not read them is
 * cut off at once. */
static void
goodbye(struct login_session *s, enum login_bye why)
{
	if (s->c == NULL || s->state == LS_CLOSING)
		return;
	s->li->proto->bye(s, why);
	login_count(s, s->li->metrics->closed[why], 1);
	s->bad_bye = why == LOGIN_BYE_BAD;
	s->state = LS_CLOSING;
	timer_stop(&s->deadline);
	timer_stop(&s->delay);
	timer_stop(&s->idle);
	if (conn_out_full(s->c))
		conn_abort(s->c,
		    why == LOGIN_BYE_TIMEOUT || why == LOGIN_BYE_IDLE ?
			CR_TIMEOUT :
			CR_OVERFLOW);
	else
		conn_close(s->c);
}

/* ---- services for the protocols -------------------------------------- */

void *
login_proto_state(struct login_session *s)
{
	return s->proto_state;
}

const struct login_settings *
login_settings(const struct login_session *s)
{
	return s->li->set;
}

struct buf *
login_input(struct login_session *s)
{
	return &s->in;
}

bool
login_busy(const struct login_session *s)
{
	return s->state != LS_ACTIVE || s->c == NULL;
}

bool
login_may_run(const struct login_session *s)
{
	return !login_busy(s) && !conn_out_full(s->c);
}

void
login_send(struct login_session *s, const void *p, size_t n)
{
	if (s->c == NULL || conn_closing(s->c))
		return;
	if (conn_write(s->c, p, n) == -1)
		conn_abort(s->c, CR_NOMEM);
}

void
login_reply(struct login_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)(sizeof(line) - 3);
	memcpy(line + n, "\r\n", 2);
	login_send(s, line, (size_t)n + 2);
}

void
login_long_line(struct login_session *s)
{
	login_count(s, s->li->metrics->long_lines, 1);
}

void
login_bad(struct login_session *s)
{
	unsigned max = s->li->set->max_bad;

	login_count(s, s->li->metrics->bad_commands, 1);
	if (max > 0 && ++s->bad >= max)
		goodbye(s, LOGIN_BYE_BAD);
}

void
login_close(struct login_session *s)
{
	if (s->c == NULL || s->state == LS_CLOSING)
		return;
	s->state = LS_CLOSING;
	timer_stop(&s->deadline);
	conn_close(s->c);
}

void
login_set_helo(struct login_session *s, const char *p, size_t n, bool esmtp)
{
	if (n >= sizeof(s->helo))
		n = sizeof(s->helo) - 1;
	memcpy(s->helo, p, n);
	s->helo[n] = '\0';
	s->esmtp = esmtp;
}

void
login_set_tag(struct login_session *s, const char *tag, size_t len)
{
	if (len > LOGIN_TAG_MAX)
		len = 0;
	memcpy(s->tag, tag, len);
	s->tag[len] = '\0';
}

const char *
login_tag(const struct login_session *s)
{
	return s->tag;
}

bool
login_secure(const struct login_session *s)
{
	return s->tls || s->li->set->listener->trusted;
}

void
login_log_auth(struct login_session *s, const char *user, bool ok, int reason)
{
	char q[AUTH_USER_MAX * 2], ev[32];

	/* "imap.auth": one event name per protocol, so a grep for a
	 * service's logins finds them all */
	snprintf(ev, sizeof(ev), "%s.auth", s->li->proto->name);
	log_info(s->sid, ev, "user=%s mech=%s status=%s reason=%s",
	    log_quote(q, sizeof(q), user, (size_t)-1), s->mech,
	    ok ? "ok" : "fail", auth_reason_name((enum auth_reason)reason));
}

void
login_log_failed(struct login_session *s, const char *error)
{
	char q[AUTH_USER_MAX * 2], ev[40];

	snprintf(ev, sizeof(ev), "%s.auth_failed", s->li->proto->name);
	log_info(s->sid, ev, "mech=%s user=%s error=%s", s->mech,
	    log_quote(q, sizeof(q), s->user, (size_t)-1), error);
}

/* ---- POP/IMAP-before-SMTP --------------------------------------------- */

bool
login_vouch(struct login_session *s, const char *line, size_t n)
{
	if (s->li->hooks->vouch == NULL || s->li->proto->vouch_refused == NULL)
		return false;
	buf_free(&s->replay);
	if (buf_append(&s->replay, line, n) == -1 ||
	    buf_append(&s->replay, "\r\n", 2) == -1) {
		buf_free(&s->replay);
		return false;
	}
	s->state = LS_VOUCH;
	login_flow(s);
	s->in_vouch = true;
	s->li->hooks->vouch(s);
	s->in_vouch = false;
	return true;
}

void
login_session_vouched(struct login_session *s, const char *user)
{
	bool inside = s->in_vouch;

	if (s->c == NULL || s->state != LS_VOUCH)
		return;
	login_call_begin(s);
	s->state = LS_ACTIVE;
	if (user == NULL || user[0] == '\0') {
		buf_free(&s->replay);
		s->li->proto->vouch_refused(s);
	} else {
		log_info(s->sid, "login.vouched", "proto=%s",
		    s->li->proto->name);
		login_assert_user(s, user, strlen(user), "BEFORE-SMTP");
		if (s->state == LS_ACTIVE)
			buf_free(&s->replay); /* refused after all */
	}
	/* inside vouch() the protocol's input loop goes on by itself */
	if (!inside && s->c != NULL)
		run_input(s);
	login_call_end(s);
}

/* ---- accessors for the daemon ---------------------------------------- */

void
login_session_set_data(struct login_session *s, void *data)
{
	s->data = data;
}

void *
login_session_data(const struct login_session *s)
{
	return s->data;
}

struct loop *
login_session_loop(const struct login_session *s)
{
	return s->w->loop;
}

uint64_t
login_session_sid(const struct login_session *s)
{
	return s->sid;
}

struct conn *
login_session_conn(const struct login_session *s)
{
	return s->c;
}

void *
login_session_ctx(const struct login_session *s)
{
	return s->li->ctx;
}

bool
login_session_tls(const struct login_session *s)
{
	return s->tls;
}

const char *
login_session_helo(const struct login_session *s)
{
	return s->helo;
}

const char *
login_session_auth_host(const struct login_session *s)
{
	return s->auth_host[0] != '\0' ? s->auth_host : NULL;
}

bool
login_session_esmtp(const struct login_session *s)
{
	return s->esmtp;
}

unsigned
login_session_client_id(const struct login_session *s,
    const char *const **pairs_r)
{
	*pairs_r = (const char *const *)s->id;
	return s->nid;
}

void
login_clear_id(struct login_session *s)
{
	for (unsigned i = 0; i < 2 * s->nid; i++)
		free(s->id[i]);
	memset(s->id, 0, sizeof(s->id));
	s->nid = 0;
}

int
login_keep_id(struct login_session *s, const char *field, size_t flen,
    const char *value, size_t vlen)
{
	char *f, *v = NULL;

	if (s->nid >= LOGIN_ID_PAIRS)
		return 0;
	if ((f = strndup(field, flen)) == NULL ||
	    (value != NULL && (v = strndup(value, vlen)) == NULL)) {
		free(f);
		return -1;
	}
	s->id[2 * s->nid] = f;
	s->id[2 * s->nid + 1] = v;
	s->nid++;
	return 0;
}
