/*
 * lmtp_session.c - ringstore's LMTP service (RFC 2033): a trusted MTA hands
 * over messages for local users, delivered into their INBOX.
 *
 * No login phase: the listener's handler greets and hands the connection
 * to the transaction core (smtp_txn.h) in LMTP mode; this file supplies
 * its hooks. RCPT looks the user up in auth's users back-end (the
 * passwd-file answers at once; a back-end that may block is asked on the
 * store pool): unknown 550 5.1.1, a lookup failure 451 4.3.0. After DATA
 * one store-pool job delivers the received tmp file to every accepted
 * recipient (deliver.h: fsync before 250, quota 552 5.2.2, full disk 452
 * 4.3.1) and one reply per recipient goes out in RCPT order.
 *
 * LMTP trusts its client (any sender, any local recipient): its listeners
 * should be `trusted` (only trusted_nets may connect); docs/backend.md.
 *
 * Relies on smtp_txn.c for the protocol and keeping the session alive
 * while a job of ours is out (we end each hook with smtp_txn_done()), on
 * deliver.c for the files. Must never: answer 250 for a recipient before
 * its copy is durable, or tell anything but "unknown" about a user.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_service.h"
#include "backend/deliver.h"
#include "backend/policy.h"
#include "backend/ringstore.h"
#include "backend/smtp_txn.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "store/maildir.h"

#define LMTP_REF_UNKNOWN_USER SMTP_REF_COUNT
#define LMTP_REF_LOOKUP (SMTP_REF_COUNT + 1)
_Static_assert(SMTP_REF_COUNT + 2 == RS_LMTP_REFUSALS,
    "RS_LMTP_REFUSALS: the core's refusals and ours");
_Static_assert(DELIVER_RESULTS == RS_LMTP_RESULTS,
    "RS_LMTP_RESULTS: deliver.h's results");

struct lmtp_rcpt {
	char user[AUTH_USER_MAX + 1];
	char addr[SMTP_PATH_MAX + 1];
	bool has_quota;
	uint64_t quota;
};

struct lmtp_session {
	struct rs_worker *w;
	const struct rs_listener *li;
	struct smtp_txn *t;
	struct smtp_txn_conf conf;
	char hostname[256];
	char *tmp_dir;
	struct lmtp_rcpt *rcpts; /* accepted, in RCPT order */
	unsigned n, cap;
	struct lmtp_rcpt next; /* the RCPT being looked up */
};

/* A user lookup off the loop (back-ends that may block). */
struct lookup_job {
	struct pool_job base;
	struct lmtp_session *s;
	struct auth_backend *users;
	char user[AUTH_USER_MAX + 1];
	enum auth_lookup res;
	bool has_quota;
	uint64_t quota;
};

/* The delivery of one message to every accepted recipient. */
struct deliver_job {
	struct pool_job base;
	struct lmtp_session *s;
	struct deliver_env env;
	char from[SMTP_PATH_MAX + 1];
	struct deliver_msg *msg;
	struct deliver_rcpt *r;
	unsigned n;
	uint64_t size;
	const struct rs_config *cf;
	/* the content policy's verdict (policy_ran), and whether it refused
	 * the message for every recipient */
	struct policy_result pr;
	bool policy_ran, refused;
};

static void on_open(struct conn *c);
static void on_close_early(struct conn *c, enum conn_reason why);
static void on_over(struct conn *c);
static void h_rcpt(struct smtp_txn *t, const struct smtp_path *to,
    const struct smtp_params *params);
static void h_data_end(struct smtp_txn *t, struct deliver_msg *msg,
    const struct smtp_data *data);
static void h_reset(struct smtp_txn *t);
static void h_refused(struct smtp_txn *t, enum smtp_txn_refusal why);
static void h_closed(struct smtp_txn *t, enum smtp_txn_end why);
static void rcpt_found(struct lmtp_session *s, enum auth_lookup res,
    bool has_quota, uint64_t quota);
static void lookup_run(struct pool_job *pj);
static void lookup_done(struct pool_job *pj);
static void deliver_job_run(struct pool_job *pj);
static void deliver_job_done(struct pool_job *pj);
static void count_refusal(struct lmtp_session *s, unsigned reason);

static const struct conn_handler lmtp_handler = {
	.on_open = on_open,
	.on_close = on_close_early,
	.on_over = on_over,
};

static const struct smtp_txn_hooks lmtp_hooks = {
	.mail = NULL, /* any sender: the MTA checked it */
	.rcpt = h_rcpt,
	.data_end = h_data_end,
	.reset = h_reset,
	.refused = h_refused,
	.closed = h_closed,
};

const struct rs_service rs_lmtp_service = {
	.name = "lmtp",
	.handler = &lmtp_handler,
};

/* ---- metrics --------------------------------------------------------- */

int
rs_lmtp_metrics_init(struct rs_server *srv, struct metrics *m)
{
	struct rs_lmtp_metrics *x = &srv->m.lmtp;
	char label[64];

	x->sessions = metrics_gauge(m, "lmtp_sessions",
	    "LMTP sessions open now.", NULL);
	x->messages = metrics_counter(m, "lmtp_messages_total",
	    "Messages received over LMTP (DATA ended).", NULL);
	x->bytes = metrics_counter(m, "lmtp_bytes_total",
	    "Message bytes received over LMTP.", NULL);
	if (x->sessions < 0 || x->messages < 0 || x->bytes < 0 ||
	    policy_metrics_init(m, "lmtp", &x->policy) == -1)
		return -1;
	for (unsigned i = 0; i < RS_LMTP_RESULTS; i++) {
		snprintf(label, sizeof(label), "result=\"%s\"",
		    deliver_result_name(i));
		if ((x->deliveries[i] = metrics_counter(m,
			 "lmtp_deliveries_total",
			 "LMTP recipient deliveries by result.", label)) < 0)
			return -1;
	}
	for (unsigned i = 0; i < RS_LMTP_REFUSALS; i++) {
		snprintf(label, sizeof(label), "reason=\"%s\"",
		    i == LMTP_REF_UNKNOWN_USER ? "unknown_user" :
			i == LMTP_REF_LOOKUP   ? "lookup_failed" :
						 smtp_txn_refusal_name(i));
		if ((x->refusals[i] = metrics_counter(m, "lmtp_refusals_total",
			 "LMTP commands refused, by reason.", label)) < 0)
			return -1;
	}
	return 0;
}

static struct metrics_shard *
shard(struct lmtp_session *s)
{
	return loop_shard(s->w->loop);
}

static void
count_refusal(struct lmtp_session *s, unsigned reason)
{
	metrics_add(shard(s), s->w->srv->m.lmtp.refusals[reason], 1);
}

/* ---- the connection ------------------------------------------------- */

/* Before the core takes over (an allocation failure). */
static void
on_close_early(struct conn *c, enum conn_reason why)
{
	(void)c;
	(void)why;
}

/* Over a session cap (core/conn_limit.h): the MTA keeps the message and
 * tries again later. */
static void
on_over(struct conn *c)
{
	static const char busy[] = "421 4.3.2 ringstore busy, try again "
				   "later\r\n";

	conn_write(c, busy, sizeof(busy) - 1);
	conn_close(c);
}

static void
on_open(struct conn *c)
{
	const struct rs_listener *li = listener_ctx(conn_listener(c));
	const struct rs_config *cf = li->srv->cf;
	struct lmtp_session *s = calloc(1, sizeof(*s));
	char greeting[300];

	if (s == NULL ||
	    asprintf(&s->tmp_dir, "%s/.incoming", cf->storage.mail_root) ==
		-1) {
		free(s);
		conn_abort(c, CR_NOMEM);
		return;
	}
	s->w = loop_ctx(conn_loop(c));
	s->li = li;
	if (gethostname(s->hostname, sizeof(s->hostname) - 1) == -1 ||
	    s->hostname[0] == '\0')
		snprintf(s->hostname, sizeof(s->hostname), "ringstore");
	s->conf = (struct smtp_txn_conf){
		.mode = SMTP_TXN_LMTP,
		.hostname = s->hostname,
		.ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME,
		.enhanced = true,
		.line_max = cf->limits.smtp_line_max,
		.size_max = cf->limits.message_max,
		.rcpt_max = (unsigned)cf->limits.recipients_max,
		.bad_max = (unsigned)cf->limits.bad_commands,
		.idle_timeout = cf->limits.idle_timeout,
		.bare = SMTP_DATA_REJECT,
		.refuse_nul = false,
		.pool = li->srv->store,
		.outbox = s->w->outbox,
		.tmp_dir = s->tmp_dir,
		.chunking = true,
	};
	snprintf(greeting, sizeof(greeting), "220 %s LMTP ringstore ready\r\n",
	    s->hostname);
	if ((s->t = smtp_txn_start(c, &s->conf, &lmtp_hooks, s, SMTP_TXN_HELLO,
		 greeting, NULL)) == NULL) {
		free(s->tmp_dir);
		free(s);
		conn_abort(c, CR_NOMEM);
		return;
	}
	metrics_gauge_add(shard(s), li->srv->m.lmtp.sessions, 1);
	log_info(conn_sid(c), "lmtp.open", "listener=%s client=%s",
	    li->conf->name, conn_peer(c));
}

static void
h_closed(struct smtp_txn *t, enum smtp_txn_end why)
{
	struct lmtp_session *s = smtp_txn_ctx(t);

	metrics_gauge_add(shard(s), s->w->srv->m.lmtp.sessions, -1);
	log_info(smtp_txn_sid(t), "lmtp.close", "reason=%s messages=%llu",
	    smtp_txn_end_name(why), (unsigned long long)smtp_txn_messages(t));
	free(s->rcpts);
	free(s->tmp_dir);
	free(s);
}

static void
h_reset(struct smtp_txn *t)
{
	struct lmtp_session *s = smtp_txn_ctx(t);

	s->n = 0;
}

static void
h_refused(struct smtp_txn *t, enum smtp_txn_refusal why)
{
	struct lmtp_session *s = smtp_txn_ctx(t);

	count_refusal(s, why);
	log_info(smtp_txn_sid(t), "lmtp.refused", "reason=%s",
	    smtp_txn_refusal_name(why));
}

/* ---- RCPT --------------------------------------------------------- */

static void
h_rcpt(struct smtp_txn *t, const struct smtp_path *to,
    const struct smtp_params *params)
{
	struct lmtp_session *s = smtp_txn_ctx(t);
	struct auth_backend *users = auth_service_users(s->w->srv->auth);
	struct lmtp_rcpt *r = &s->next;
	const char *why = NULL;
	struct lookup_job *job;

	(void)params;
	memset(r, 0, sizeof(*r));
	snprintf(r->addr, sizeof(r->addr), "%.*s", (int)to->mailbox.len,
	    to->mailbox.p ? to->mailbox.p : "");
	if (to->postmaster || to->quoted || to->literal ||
	    deliver_rcpt_user(to->mailbox.p, to->mailbox.len, r->user,
		sizeof(r->user), NULL) == -1 ||
	    maildir_user_check(r->user, &why) == -1) {
		rcpt_found(s, AUTH_LOOKUP_NOTFOUND, false, 0);
		return;
	}
	if (users->ops->lookup_nonblocking) {
		struct auth_entry *e = NULL;
		const char *error = NULL;
		enum auth_lookup res = auth_lookup(users, r->user, &e, &error);

		rcpt_found(s, res, e && e->has_quota, e ? e->quota : 0);
		auth_entry_unref(&e);
		return;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		rcpt_found(s, AUTH_LOOKUP_TEMPFAIL, false, 0);
		return;
	}
	job->s = s;
	job->users = users;
	memcpy(job->user, r->user, sizeof(job->user));
	job->base.run = lookup_run;
	job->base.done = lookup_done;
	job->base.sid = smtp_txn_sid(t);
	job->base.flow = job->base.sid;
	if (pool_submit(s->w->srv->store, s->w->outbox, &job->base) == -1) {
		free(job);
		metrics_add(shard(s), s->w->srv->m.store_busy, 1);
		rcpt_found(s, AUTH_LOOKUP_TEMPFAIL, false, 0);
	}
}

static void
lookup_run(struct pool_job *pj)
{
	struct lookup_job *job = (struct lookup_job *)pj;
	struct auth_entry *e = NULL;
	const char *error = NULL;

	job->res = auth_lookup(job->users, job->user, &e, &error);
	if (e != NULL) {
		job->has_quota = e->has_quota;
		job->quota = e->quota;
	}
	auth_entry_unref(&e);
}

static void
lookup_done(struct pool_job *pj)
{
	struct lookup_job *job = (struct lookup_job *)pj;

	/* the core keeps s alive while our RCPT is pending */
	rcpt_found(job->s, job->res, job->has_quota, job->quota);
	free(job);
}

/* The lookup's answer for s->next: accept it or say why not. */
static void
rcpt_found(struct lmtp_session *s, enum auth_lookup res, bool has_quota,
    uint64_t quota)
{
	struct smtp_txn *t = s->t;
	char q[2 * SMTP_PATH_MAX];

	if (res != AUTH_LOOKUP_FOUND) {
		bool temp = res == AUTH_LOOKUP_TEMPFAIL;

		if (temp)
			smtp_txn_reply(t, 451, "4.3.0",
			    "Cannot look the user up now");
		else
			smtp_txn_reply(t, 550, "5.1.1", "User unknown");
		count_refusal(s,
		    temp ? LMTP_REF_LOOKUP : LMTP_REF_UNKNOWN_USER);
		log_info(smtp_txn_sid(t), "lmtp.refused", "reason=%s rcpt=%s",
		    temp ? "lookup_failed" : "unknown_user",
		    log_quote(q, sizeof(q), s->next.addr, (size_t)-1));
		smtp_txn_done(t, false);
		return;
	}
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 4;
		struct lmtp_rcpt *n = realloc(s->rcpts, cap * sizeof(*n));

		if (n == NULL) {
			smtp_txn_reply(t, 451, "4.3.0", "Out of memory");
			smtp_txn_done(t, false);
			return;
		}
		s->rcpts = n;
		s->cap = cap;
	}
	s->next.has_quota = has_quota;
	s->next.quota = quota;
	s->rcpts[s->n++] = s->next;
	smtp_txn_done(t, true);
}

/* ---- DATA end: the delivery ---------------------------------------- */

static void
h_data_end(struct smtp_txn *t, struct deliver_msg *msg,
    const struct smtp_data *data)
{
	struct lmtp_session *s = smtp_txn_ctx(t);
	struct deliver_job *job = calloc(1, sizeof(*job));

	if (job != NULL &&
	    (job->r = calloc(s->n ? s->n : 1, sizeof(*job->r))) == NULL) {
		free(job);
		job = NULL;
	}
	if (job == NULL) {
		for (unsigned i = 0; i < s->n; i++)
			smtp_txn_reply(t, 451, "4.3.0", "Out of memory");
		smtp_txn_done(t, false);
		return;
	}
	job->s = s;
	job->msg = msg;
	job->n = s->n;
	job->size = data->size;
	snprintf(job->from, sizeof(job->from), "%s", smtp_txn_from(t));
	job->cf = s->w->srv->cf;
	policy_result_init(&job->pr);
	job->env.mail_root = s->w->srv->cf->storage.mail_root;
	job->env.return_path = job->from;
	for (unsigned i = 0; i < s->n; i++) {
		job->r[i].user = s->rcpts[i].user;
		job->r[i].addr = s->rcpts[i].addr;
		job->r[i].has_quota = s->rcpts[i].has_quota;
		job->r[i].quota = s->rcpts[i].quota;
	}
	job->base.run = deliver_job_run;
	job->base.done = deliver_job_done;
	job->base.sid = smtp_txn_sid(t);
	job->base.flow = job->base.sid;
	metrics_add(shard(s), s->w->srv->m.lmtp.messages, 1);
	metrics_add(shard(s), s->w->srv->m.lmtp.bytes, data->size);
	if (pool_submit(s->w->srv->store, s->w->outbox, &job->base) == -1) {
		metrics_add(shard(s), s->w->srv->m.store_busy, 1);
		for (unsigned i = 0; i < s->n; i++)
			smtp_txn_reply(t, 451, "4.3.2",
			    "Server busy, try again later");
		free(job->r);
		free(job);
		smtp_txn_done(t, false);
	}
}

/* Every recipient gets the answer line ("554 5.7.1 text"), which stays
 * in job->pr.reply until the job is freed. */
static void
refuse_all(struct deliver_job *job, char *line)
{
	struct smtp_reply rep = { 451, "4.3.0", line };

	(void)policy_reply_split(line, &rep);
	job->refused = true;
	for (unsigned i = 0; i < job->n; i++) {
		job->r[i].reply = rep;
		job->r[i].err = 0;
	}
}

/* The content policy (backend/policy.h) on the received file: 0 with
 * *msg_r what to deliver (job->msg, or the stripped copy under strip), or
 * -1 with every recipient refused. Pool thread. */
static int
content_policy(struct deliver_job *job, struct deliver_msg **msg_r)
{
	const struct rs_config *cf = job->cf;
	const char *err = NULL;

	*msg_r = job->msg;
	if (!policy_enabled(&cf->policy))
		return 0;
	job->policy_ran = true;
	switch (policy_run(&cf->policy, deliver_msg_fd(job->msg),
	    cf->storage.mail_root, &job->pr)) {
	case POLICY_PASS:
		return 0;
	case POLICY_STRIPPED:
		if (deliver_msg_copy(cf->storage.mail_root, NULL, job->pr.fd,
			msg_r, &err) == 0)
			return 0;
		snprintf(job->pr.reply, sizeof(job->pr.reply), "%s",
		    errno == ENOSPC ? "452 4.3.1 Insufficient system storage" :
				      "451 4.3.0 Local error in processing");
		refuse_all(job, job->pr.reply);
		return -1;
	default: /* REJECT, VIRUS, TEMPFAIL: the policy's own line */
		refuse_all(job, job->pr.reply);
		return -1;
	}
}

static void
deliver_job_run(struct pool_job *pj)
{
	struct deliver_job *job = (struct deliver_job *)pj;
	struct deliver_msg *msg;

	if (content_policy(job, &msg) == 0)
		deliver_run(&job->env, msg, job->r, job->n);
	if (msg != job->msg)
		deliver_msg_free(&msg);
	/* the stripped copy goes, delivered or not; the verdict stays */
	if (job->policy_ran)
		policy_result_discard(&job->pr);
}

/* One reply per recipient, in RCPT order; s is alive (pending DATA). */
static void
deliver_job_done(struct pool_job *pj)
{
	struct deliver_job *job = (struct deliver_job *)pj;
	struct lmtp_session *s = job->s;
	char q[2 * SMTP_PATH_MAX];

	for (unsigned i = 0; i < job->n; i++) {
		const struct deliver_rcpt *r = &job->r[i];
		enum deliver_result res = deliver_result_of(r);

		smtp_txn_reply(s->t, r->reply.code, r->reply.enh, "%s <%s>",
		    r->reply.text, r->addr);
		if (job->refused) {
			log_info(pj->sid, "lmtp.refused",
			    "rcpt=%s reply=%u reason=%s",
			    log_quote(q, sizeof(q), r->addr, (size_t)-1),
			    r->reply.code, policy_reason_name(job->pr.reason));
			continue;
		}
		metrics_add(shard(s), s->w->srv->m.lmtp.deliveries[res], 1);
		if (res == DELIVER_OK)
			log_info(pj->sid, "lmtp.delivered",
			    "rcpt=%s size=%llu uid=%u",
			    log_quote(q, sizeof(q), r->addr, (size_t)-1),
			    (unsigned long long)job->size, r->uid);
		else
			log_warn(pj->sid, "lmtp.not_delivered",
			    "rcpt=%s result=%s error=\"%s\"",
			    log_quote(q, sizeof(q), r->addr, (size_t)-1),
			    deliver_result_name(res), strerror(r->err));
	}
	if (job->policy_ran)
		policy_account(&s->w->srv->m.lmtp.policy, shard(s), pj->sid,
		    "lmtp", &job->pr);
	free(job->r);
	free(job);
	smtp_txn_done(s->t, true);
}
