/*
 * submit_session.c - ringstore's submission intake (what ringgate forwards
 * SMTP submission to): after login/'s SMTP pre-login (AUTH, or XCLIENT
 * LOGIN= from a trusted front end) the session is backend/smtp_txn.c's
 * transaction core with these hooks:
 *
 *   MAIL FROM   one of the user's addresses (its name, its alias= field)
 *               else 553 5.7.1;
 *   RCPT TO     looked up on the store pool: a passwd-file user, or an
 *               address in a local domain (local_domains, the user's own
 *               and its aliases' domains), is delivered here (unknown:
 *               550 5.1.1); any other domain is relayed only when a
 *               smarthost spool exists, else 550 5.7.1;
 *   end of DATA on the store pool: the header's From: must be the user's
 *               too (553 5.7.1), more than hops_max Received headers is
 *               a loop (554 5.4.6); then a Received header is prepended
 *               (the client's address left out with hide_client_ip) and
 *               the message delivered to the local recipients' INBOXes
 *               (deliver.h), fsync'd before the 250.
 *
 * Nothing is accepted without a login: the login core answers 530 to
 * every mail command before one. Everything that touches the disk or a
 * user back-end runs on the store pool; the loop only keeps the
 * envelope.
 *
 * Must never: accept a sender the user does not own, relay to a remote
 * domain without a smarthost, or answer 250 before every local copy is
 * on disk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "auth/auth.h"
#include "auth/auth_service.h"
#include "backend/deliver.h"
#include "backend/policy.h"
#include "backend/relay.h"
#include "backend/ringstore.h"
#include "backend/smtp_txn.h"
#include "backend/spool.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "proto/mime.h"

#define HEADER_READ_MAX (256 * 1024) /* the header block we look into */
#define RECEIVED_MAX 1024

/* One accepted recipient. */
struct submit_rcpt {
	char addr[SMTP_PATH_MAX + 1]; /* as given, without <> */
	char user[AUTH_USER_MAX + 1]; /* local: the Maildir user */
	bool local;
	bool has_quota;
	uint64_t quota;
};

struct submit_session {
	struct rs_worker *w;
	const struct rs_listener *li;
	struct smtp_txn *t;
	uint64_t sid;
	char *user;
	struct auth_entry *entry; /* aliases, for MAIL FROM and From: */
	char *helo;		  /* from the login phase */
	bool helo_fixed; /* XCLIENT HELO=: later EHLOs are the front end's */
	char client_ip[64];
	bool tls;
	struct smtp_txn_conf conf;
	struct submit_rcpt *rcpts;
	unsigned nrcpts, cap;
	unsigned messages;
};

/* RCPT's lookup on the store pool. */
struct rcpt_job {
	struct pool_job base;
	struct submit_session *ss;
	struct submit_rcpt r;
	bool domain_local; /* decided on the loop: a local domain */
	enum auth_lookup found;
};

/* End of DATA on the store pool. */
struct data_job {
	struct pool_job base;
	struct submit_session *ss;
	struct deliver_msg *msg; /* the txn's; not ours to free */
	struct auth_entry *entry;
	const struct rs_server *srv;
	char received[RECEIVED_MAX];
	char from[SMTP_PATH_MAX + 1];
	struct deliver_rcpt *local;
	size_t nlocal, nremote;
	const char **remote; /* addresses for the spool */
	char user[AUTH_USER_MAX + 1];
	char spool_id[SPOOL_ID_LEN + 1];
	/* out */
	unsigned code;
	char enh[16];
	char text[320];
	enum rs_submit_count why; /* RS_SUB_ACCEPTED or the refusal */
	size_t delivered;
	bool policy_ran;
	struct policy_result pr;
};

static int session_start(struct rs_worker *w, struct conn *c,
    const struct rs_listener *li, struct rs_ready *r, struct buf *rest);
static void prepare(const struct rs_server *srv, struct rs_ready *r);
static void on_mail(struct smtp_txn *t, const struct smtp_path *from,
    const struct smtp_params *params);
static void on_rcpt(struct smtp_txn *t, const struct smtp_path *to,
    const struct smtp_params *params);
static void on_data_end(struct smtp_txn *t, struct deliver_msg *msg,
    const struct smtp_data *data);
static void on_reset(struct smtp_txn *t);
static bool on_other(struct smtp_txn *t, const struct smtp_cmd *cmd);
static void on_refused(struct smtp_txn *t, enum smtp_txn_refusal why);
static void on_closed(struct smtp_txn *t, enum smtp_txn_end why);
static void rcpt_run(struct pool_job *pj);
static void rcpt_done(struct pool_job *pj);
static void data_run(struct pool_job *pj);
static void data_done(struct pool_job *pj);
static void count(struct submit_session *ss, enum rs_submit_count id);
static bool domain_local(const struct submit_session *ss, const char *domain,
    size_t len);
static void make_received(struct submit_session *ss, struct smtp_txn *t,
    char *out, size_t cap);

const struct rs_service rs_submit_service = {
	.name = "submission",
	.login = &smtp_login_proto,
	.maildir = false,
	.prepare = prepare,
	.start = session_start,
};

static const struct smtp_txn_hooks hooks = {
	.mail = on_mail,
	.rcpt = on_rcpt,
	.data_end = on_data_end,
	.reset = on_reset,
	.other = on_other,
	.refused = on_refused,
	.closed = on_closed,
};

/* ---- metrics ------------------------------------------------------------ */

int
rs_submit_metrics_init(struct metrics *m, struct rs_submit_metrics *sm)
{
	static const char *const refusals[] = { "sender", "from", "relay",
		"unknown_user", "hops", "policy", "core" };
	const char *h = "Submission intake refusals, by reason.";
	char label[64];

	sm->id[RS_SUB_SESSIONS] = metrics_gauge(m, "submit_sessions",
	    "Submission sessions after login.", NULL);
	sm->id[RS_SUB_ACCEPTED] = metrics_counter(m, "submit_messages_total",
	    "Messages the submission intake accepted.", NULL);
	sm->id[RS_SUB_LOCAL] = metrics_counter(m, "submit_recipients_total",
	    "Recipients of accepted messages.", "where=\"local\"");
	sm->id[RS_SUB_REMOTE] = metrics_counter(m, "submit_recipients_total",
	    "Recipients of accepted messages.", "where=\"remote\"");
	for (int i = RS_SUB_R_SENDER; i <= RS_SUB_R_CORE; i++) {
		snprintf(label, sizeof(label), "reason=\"%s\"",
		    refusals[i - RS_SUB_R_SENDER]);
		sm->id[i] = metrics_counter(m, "submit_refused_total", h,
		    label);
	}
	sm->id[RS_SUB_FAILED] = metrics_counter(m, "submit_tempfail_total",
	    "Messages or recipients answered with a temporary failure.", NULL);
	for (int i = 0; i < SMTP_REF_COUNT && i < 8; i++) {
		snprintf(label, sizeof(label), "reason=\"%s\"",
		    smtp_txn_refusal_name((enum smtp_txn_refusal)i));
		sm->core[i] = metrics_counter(m, "submit_smtp_refused_total",
		    "Commands the SMTP core refused in submission sessions.",
		    label);
		if (sm->core[i] < 0)
			return -1;
	}
	if (policy_metrics_init(m, "submission", &sm->policy) == -1)
		return -1;
	for (int i = 0; i < RS_SUB_COUNT; i++)
		if (sm->id[i] < 0)
			return -1;
	return 0;
}

static void
count(struct submit_session *ss, enum rs_submit_count id)
{
	const struct rs_submit_metrics *sm = &ss->w->srv->submit_m;

	metrics_add(loop_shard(ss->w->loop), sm->id[id], 1);
}

/* ---- login ------------------------------------------------------------ */

/* On the login lane: the user's entry, for its aliases. */
static void
prepare(const struct rs_server *srv, struct rs_ready *r)
{
	const char *err = NULL;

	switch (auth_lookup(auth_service_users(srv->auth), r->user, &r->entry,
	    &err)) {
	case AUTH_LOOKUP_FOUND:
		return;
	case AUTH_LOOKUP_NOTFOUND:
		r->err = ENOENT;
		r->errtext = "no such user";
		return;
	default:
		r->err = EAGAIN;
		r->errtext = err ? err : "user back-end unavailable";
		return;
	}
}

static void
client_ip(struct conn *c, char *out, size_t cap)
{
	const struct sockaddr *sa = conn_peer_addr(c, NULL);

	snprintf(out, cap, "unknown");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, (socklen_t)cap);
	else if (sa->sa_family == AF_INET6) {
		char a[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, a,
		    sizeof(a));
		snprintf(out, cap, "IPv6:%s", a);
	}
}

static int
session_start(struct rs_worker *w, struct conn *c, const struct rs_listener *li,
    struct rs_ready *r, struct buf *rest)
{
	const struct rs_config *cf = w->srv->cf;
	struct submit_session *ss = calloc(1, sizeof(*ss));
	bool xclient = strcmp(r->mech, "XCLIENT") == 0;
	char greeting[128];

	if (ss == NULL) {
		conn_abort(c, CR_NOMEM);
		return -1;
	}
	ss->w = w;
	ss->li = li;
	ss->sid = conn_sid(c);
	ss->tls = r->tls;
	ss->user = r->user;
	ss->helo = r->helo;
	ss->entry = r->entry;
	ss->helo_fixed = xclient && ss->helo != NULL && ss->helo[0] != '\0';
	r->user = r->helo = NULL;
	r->entry = NULL;
	client_ip(c, ss->client_ip, sizeof(ss->client_ip));
	ss->conf = (struct smtp_txn_conf){
		.mode = SMTP_TXN_SMTP,
		.hostname = "ringstore",
		.ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME,
		.enhanced = true,
		.line_max = cf->limits.smtp_line_max,
		.size_max = cf->limits.message_max,
		.rcpt_max = (unsigned)cf->limits.recipients_max,
		.bad_max = (unsigned)cf->limits.bad_commands,
		.idle_timeout = cf->limits.idle_timeout,
		.bare = SMTP_DATA_REJECT,
		.refuse_nul = true,
		.pool = w->srv->store,
		.outbox = w->outbox,
		.tmp_dir = cf->storage.mail_root,
	};
	/* XCLIENT: the session starts over (220, then EHLO); AUTH: the
	 * client said EHLO before it */
	snprintf(greeting, sizeof(greeting), "%s",
	    xclient ? "220 ringstore ESMTP ready\r\n" :
		      "235 2.7.0 Authentication successful\r\n");
	ss->t = smtp_txn_start(c, &ss->conf, &hooks, ss,
	    xclient ? SMTP_TXN_HELLO : SMTP_TXN_READY, greeting, rest);
	if (ss->t == NULL) {
		free(ss->user);
		free(ss->helo);
		auth_entry_unref(&ss->entry);
		free(ss);
		conn_abort(c, CR_NOMEM);
		return -1;
	}
	metrics_gauge_add(loop_shard(w->loop),
	    w->srv->submit_m.id[RS_SUB_SESSIONS], 1);
	log_info(ss->sid, "submit.start", "user=%s mech=%s client=%s tls=%s",
	    ss->user, r->mech, ss->client_ip, ss->tls ? "yes" : "no");
	return 0;
}

/* ---- hooks ------------------------------------------------------------- */

/* The user's own name or one of its aliases (case-insensitive). */
static bool
owned(const struct submit_session *ss, const char *addr, size_t len)
{
	char a[SMTP_PATH_MAX + 1];

	if (len == 0 || len >= sizeof(a))
		return false;
	memcpy(a, addr, len);
	a[len] = '\0';
	return ss->entry != NULL && auth_entry_has_alias(ss->entry, a);
}

static void
on_mail(struct smtp_txn *t, const struct smtp_path *from,
    const struct smtp_params *params)
{
	struct submit_session *ss = smtp_txn_ctx(t);
	char q[SMTP_PATH_MAX * 2];

	(void)params;
	ss->t = t;
	if (from->null || !owned(ss, from->mailbox.p, from->mailbox.len)) {
		log_info(ss->sid, "submit.sender_refused", "user=%s from=%s",
		    ss->user,
		    log_quote(q, sizeof(q),
			from->mailbox.p ? from->mailbox.p : "",
			from->mailbox.len));
		count(ss, RS_SUB_R_SENDER);
		smtp_txn_reply(t, 553, "5.7.1",
		    "Sender address rejected: not owned by user %s", ss->user);
		smtp_txn_done(t, false);
		return;
	}
	smtp_txn_done(t, true);
}

/* A domain delivered here: listed in local_domains, or the domain of the
 * user or of one of its aliases. */
static bool
domain_local(const struct submit_session *ss, const char *d, size_t len)
{
	const struct rs_config *cf = ss->w->srv->cf;
	const char *at;

	for (unsigned i = 0; i < cf->submit.nlocal_domains; i++)
		if (strlen(cf->submit.local_domains[i]) == len &&
		    strncasecmp(cf->submit.local_domains[i], d, len) == 0)
			return true;
	if ((at = strrchr(ss->user, '@')) != NULL && strlen(at + 1) == len &&
	    strncasecmp(at + 1, d, len) == 0)
		return true;
	for (size_t i = 0; ss->entry && i < ss->entry->n_aliases; i++)
		if ((at = strrchr(ss->entry->aliases[i], '@')) != NULL &&
		    strlen(at + 1) == len && strncasecmp(at + 1, d, len) == 0)
			return true;
	return false;
}

/* Remote recipients need the relay's spool and a smarthost. */
static bool
relay_available(const struct submit_session *ss)
{
	const struct rs_server *srv = ss->w->srv;

	return srv->spool != NULL && relay_conf_enabled(&srv->cf->relay);
}

static void
on_rcpt(struct smtp_txn *t, const struct smtp_path *to,
    const struct smtp_params *params)
{
	struct submit_session *ss = smtp_txn_ctx(t);
	struct rcpt_job *job;

	(void)params;
	ss->t = t;
	if (to->postmaster || to->mailbox.len >= sizeof(job->r.addr)) {
		count(ss, RS_SUB_R_UNKNOWN);
		smtp_txn_reply(t, 550, "5.1.1", "No such recipient here");
		smtp_txn_done(t, false);
		return;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		smtp_txn_reply(t, 451, "4.3.0", "Out of memory");
		smtp_txn_done(t, false);
		return;
	}
	job->ss = ss;
	memcpy(job->r.addr, to->mailbox.p, to->mailbox.len);
	job->domain_local = !to->literal &&
	    domain_local(ss, to->domain.p, to->domain.len);
	job->base.run = rcpt_run;
	job->base.done = rcpt_done;
	job->base.sid = ss->sid;
	job->base.flow = ss->sid;
	if (pool_submit(ss->w->srv->store, ss->w->outbox, &job->base) == -1) {
		free(job);
		count(ss, RS_SUB_FAILED);
		smtp_txn_reply(t, 451, "4.3.0", "Server busy, try again");
		smtp_txn_done(t, false);
	}
}

/* Pool: is the recipient a user of ours? */
static void
rcpt_run(struct pool_job *pj)
{
	struct rcpt_job *job = (struct rcpt_job *)pj;
	struct auth_entry *e = NULL;
	const char *err = NULL;

	job->found = AUTH_LOOKUP_NOTFOUND;
	if (deliver_rcpt_user(job->r.addr, strlen(job->r.addr), job->r.user,
		sizeof(job->r.user), NULL) == -1)
		return;
	job->found = auth_lookup(auth_service_users(job->ss->w->srv->auth),
	    job->r.user, &e, &err);
	if (job->found == AUTH_LOOKUP_FOUND) {
		job->r.has_quota = e->has_quota;
		job->r.quota = e->quota;
		auth_entry_unref(&e);
	}
}

static void
rcpt_done(struct pool_job *pj)
{
	struct rcpt_job *job = (struct rcpt_job *)pj;
	struct submit_session *ss = job->ss;
	struct smtp_txn *t = ss->t;
	char q[SMTP_PATH_MAX * 2];
	struct submit_rcpt *n;

	if (job->found == AUTH_LOOKUP_TEMPFAIL) {
		count(ss, RS_SUB_FAILED);
		smtp_txn_reply(t, 451, "4.3.0",
		    "Recipient lookup failed, try again later");
		smtp_txn_done(t, false);
		free(job);
		return;
	}
	job->r.local = job->found == AUTH_LOOKUP_FOUND;
	if (!job->r.local && job->domain_local) {
		count(ss, RS_SUB_R_UNKNOWN);
		smtp_txn_reply(t, 550, "5.1.1", "No such user here");
		smtp_txn_done(t, false);
		free(job);
		return;
	}
	if (!job->r.local && !relay_available(ss)) {
		log_info(ss->sid, "submit.relay_refused", "user=%s rcpt=%s",
		    ss->user, log_quote(q, sizeof(q), job->r.addr, (size_t)-1));
		count(ss, RS_SUB_R_RELAY);
		smtp_txn_reply(t, 550, "5.7.1", "Relaying denied");
		smtp_txn_done(t, false);
		free(job);
		return;
	}
	if (ss->nrcpts == ss->cap) {
		unsigned cap = ss->cap ? ss->cap * 2 : 8;

		if ((n = realloc(ss->rcpts, cap * sizeof(*n))) == NULL) {
			smtp_txn_reply(t, 451, "4.3.0", "Out of memory");
			smtp_txn_done(t, false);
			free(job);
			return;
		}
		ss->rcpts = n;
		ss->cap = cap;
	}
	ss->rcpts[ss->nrcpts++] = job->r;
	smtp_txn_done(t, true);
	free(job);
}

static void
on_data_end(struct smtp_txn *t, struct deliver_msg *msg,
    const struct smtp_data *data)
{
	struct submit_session *ss = smtp_txn_ctx(t);
	struct data_job *job = calloc(1, sizeof(*job));
	size_t k = 0;

	(void)data;
	ss->t = t;
	if (job == NULL ||
	    (job->local = calloc(ss->nrcpts + 1, sizeof(*job->local))) ==
		NULL ||
	    (job->remote = calloc(ss->nrcpts + 1, sizeof(*job->remote))) ==
		NULL) {
		if (job != NULL)
			free(job->local);
		free(job);
		smtp_txn_reply(t, 451, "4.3.0", "Out of memory");
		smtp_txn_done(t, false);
		return;
	}
	job->ss = ss;
	job->msg = msg;
	job->srv = ss->w->srv;
	job->entry = ss->entry ? auth_entry_ref(ss->entry) : NULL;
	snprintf(job->from, sizeof(job->from), "%s", smtp_txn_from(t));
	snprintf(job->user, sizeof(job->user), "%s", ss->user);
	for (unsigned i = 0; i < ss->nrcpts; i++) {
		const struct submit_rcpt *r = &ss->rcpts[i];

		if (!r->local) {
			job->remote[job->nremote++] = r->addr;
			continue;
		}
		job->local[k] = (struct deliver_rcpt){ .user = r->user,
			.addr = r->addr,
			.has_quota = r->has_quota,
			.quota = r->quota };
		k++;
	}
	job->nlocal = k;
	ss->messages++;
	make_received(ss, t, job->received, sizeof(job->received));
	job->base.run = data_run;
	job->base.done = data_done;
	job->base.sid = ss->sid;
	job->base.flow = ss->sid;
	if (pool_submit(ss->w->srv->store, ss->w->outbox, &job->base) == -1) {
		auth_entry_unref(&job->entry);
		free(job->local);
		free(job->remote);
		free(job);
		count(ss, RS_SUB_FAILED);
		smtp_txn_reply(t, 451, "4.3.0", "Server busy, try again");
		smtp_txn_done(t, false);
	}
}

/* "Received: from <helo> ([ip]) by <host> with ESMTPSA id <id>; <date>"
 * (RFC 5321 4.4, RFC 3848 for the protocol word), folded. */
static void
make_received(struct submit_session *ss, struct smtp_txn *t, char *out,
    size_t cap)
{
	const struct rs_config *cf = ss->w->srv->cf;
	const char *helo = smtp_txn_helo(t);
	char host[256], date[64], ip[80] = "";
	struct tm tm;
	time_t now = time(NULL);

	if (ss->helo_fixed || helo == NULL || helo[0] == '\0')
		helo = ss->helo && ss->helo[0] ? ss->helo : "unknown";
	if (cf->submit.hostname != NULL)
		snprintf(host, sizeof(host), "%s", cf->submit.hostname);
	else if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "ringstore");
	host[sizeof(host) - 1] = '\0';
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (!cf->submit.hide_client_ip)
		snprintf(ip, sizeof(ip), " ([%s])", ss->client_ip);
	snprintf(out, cap,
	    "Received: from %s%s\r\n\tby %s with %s id %016llx.%u;\r\n"
	    "\t%s\r\n",
	    helo, ip, host, ss->tls ? "ESMTPSA" : "ESMTPA",
	    (unsigned long long)ss->sid, ss->messages, date);
}

/* ---- end of DATA, on the store pool -------------------------------------- */

static void
refuse(struct data_job *job, unsigned code, const char *enh, const char *text,
    enum rs_submit_count why)
{
	job->code = code;
	snprintf(job->enh, sizeof(job->enh), "%s", enh);
	snprintf(job->text, sizeof(job->text), "%s", text);
	job->why = why;
}

/* The header block: Received count and every From: address the user's. */
static int
check_header(struct data_job *job, int fd)
{
	char *hdr = malloc(HEADER_READ_MAX);
	size_t got = 0, hlen = 0;
	struct mime_header_iter it;
	struct mime_field f;
	struct mime_limits lim = { .max_depth = 1,
		.max_headers = 10000,
		.max_field = HEADER_READ_MAX };
	unsigned hops = 0;
	bool bad_from = false;
	ssize_t n;

	if (hdr == NULL) {
		refuse(job, 451, "4.3.0", "Out of memory", RS_SUB_FAILED);
		return -1;
	}
	while (got < HEADER_READ_MAX &&
	    (n = pread(fd, hdr + got, HEADER_READ_MAX - got, (off_t)got)) > 0)
		got += (size_t)n;
	if (!mime_header_end(hdr, got, &hlen))
		hlen = got;
	mime_header_init(&it, hdr, hlen, &lim);
	while (mime_header_next(&it, &f)) {
		if (f.name.len == 8 &&
		    strncasecmp(f.name.ptr, "Received", 8) == 0)
			hops++;
		if (f.name.len == 4 &&
		    strncasecmp(f.name.ptr, "From", 4) == 0) {
			struct mime_addr_iter ai;
			struct mime_address a;
			char scratch[256], addr[SMTP_PATH_MAX + 1];

			mime_addr_init(&ai, f.value.ptr, f.value.len);
			while (
			    mime_addr_next(&ai, &a, scratch, sizeof(scratch))) {
				int k;

				if (a.kind != MIME_ADDR_MAILBOX)
					continue;
				k = snprintf(addr, sizeof(addr), "%.*s@%.*s",
				    (int)a.mailbox.len, a.mailbox.ptr,
				    (int)a.host.len, a.host.ptr);
				if (k < 0 || (size_t)k >= sizeof(addr) ||
				    job->entry == NULL ||
				    !auth_entry_has_alias(job->entry, addr))
					bad_from = true;
			}
		}
	}
	free(hdr);
	if (hops > (unsigned)job->srv->cf->submit.hops_max) {
		refuse(job, 554, "5.4.6", "Too many hops (mail loop?)",
		    RS_SUB_R_HOPS);
		return -1;
	}
	if (bad_from) {
		refuse(job, 553, "5.7.1",
		    "From: header address not owned by the authenticated "
		    "user",
		    RS_SUB_R_FROM);
		return -1;
	}
	return 0;
}

/* out = Received header + src's bytes. */
static int
compose(struct data_job *job, int src, struct deliver_msg **out_r)
{
	const char *err = NULL;

	if (deliver_msg_copy(job->srv->cf->storage.mail_root, job->received,
		src, out_r, &err) == 0)
		return 0;
	refuse(job, errno == ENOSPC ? 452 : 451,
	    errno == ENOSPC ? "4.3.1" : "4.3.0",
	    errno == ENOSPC ? "Insufficient system storage" :
			      "Local error in processing",
	    RS_SUB_FAILED);
	return -1;
}

/* Remote recipients: into the relay spool, durably, with the Received
 * header in front. */
static int
spool_remote(struct data_job *job, int src)
{
	const struct spool_msg m = {
		.user = job->user,
		.sender = job->from,
		.rcpts = job->remote,
		.nrcpts = job->nremote,
		.prefix = job->received,
		.prefix_len = strlen(job->received),
		.fd = src,
	};
	const char *err = NULL;

	if (spool_put(job->srv->spool, &m, job->spool_id, &err) == 0)
		return 0;
	if (errno == ENOSPC || errno == EDQUOT)
		refuse(job, 452, "4.3.1", "Insufficient system storage",
		    RS_SUB_FAILED);
	else
		refuse(job, 451, "4.3.0", "Local error in processing",
		    RS_SUB_FAILED);
	return -1;
}

/* The policy's whole reply line ("554 5.7.1 attachment ...") as ours. */
static void
refuse_line(struct data_job *job, char *line, enum rs_submit_count why)
{
	struct smtp_reply rep = { 554, "5.7.1", line };

	(void)policy_reply_split(line, &rep);
	refuse(job, rep.code, rep.enh, rep.text, why);
}

/* The content policy (backend/policy.h) on the received file: *src_r is
 * what to deliver (the stripped copy under strip). 0, or -1 refused. */
static int
content_policy(struct data_job *job, int fd, int *src_r)
{
	const struct rs_config *cf = job->srv->cf;
	struct policy_result *pr = &job->pr;

	*src_r = fd;
	if (!policy_enabled(&cf->policy))
		return 0;
	job->policy_ran = true;
	switch (policy_run(&cf->policy, fd, cf->storage.mail_root, pr)) {
	case POLICY_PASS:
		return 0;
	case POLICY_STRIPPED:
		*src_r = pr->fd;
		return 0;
	case POLICY_REJECT:
	case POLICY_VIRUS:
		refuse_line(job, pr->reply, RS_SUB_R_POLICY);
		return -1;
	case POLICY_TEMPFAIL:
	default:
		refuse_line(job, pr->reply, RS_SUB_FAILED);
		return -1;
	}
}

static void
data_run(struct pool_job *pj)
{
	struct data_job *job = (struct data_job *)pj;
	struct deliver_msg *out = NULL;
	struct deliver_env env = { .mail_root = job->srv->cf->storage.mail_root,
		.return_path = job->from };
	int fd = deliver_msg_fd(job->msg), src;

	job->why = RS_SUB_ACCEPTED;
	job->pr.fd = -1;
	if (check_header(job, fd) == -1 || content_policy(job, fd, &src) == -1)
		goto out;
	/* the spool first: a refusal then leaves nothing delivered */
	if (job->nremote > 0 && spool_remote(job, src) == -1)
		goto out;
	if (job->nlocal > 0) {
		if (compose(job, src, &out) == -1)
			goto out;
		job->delivered = deliver_run(&env, out, job->local,
		    job->nlocal);
		deliver_msg_free(&out);
	}
	if (job->nlocal > 0 && job->delivered == 0 && job->nremote == 0) {
		/* nothing went anywhere: the first recipient's reason */
		const struct smtp_reply *r = &job->local[0].reply;

		refuse(job, r->code, r->enh, r->text, RS_SUB_FAILED);
		goto out;
	}
	refuse(job, 250, "2.0.0", "", RS_SUB_ACCEPTED);
out:
	/* the stripped copy, if any: delivered or not, it goes */
	if (job->policy_ran)
		policy_result_discard(&job->pr);
}

static void
data_done(struct pool_job *pj)
{
	struct data_job *job = (struct data_job *)pj;
	struct submit_session *ss = job->ss;
	struct smtp_txn *t = ss->t;

	if (job->why == RS_SUB_ACCEPTED) {
		smtp_txn_reply(t, 250, "2.0.0", "Ok: queued as %016llx.%u",
		    (unsigned long long)ss->sid, ss->messages);
		count(ss, RS_SUB_ACCEPTED);
		for (size_t i = 0; i < job->delivered; i++)
			count(ss, RS_SUB_LOCAL);
		for (size_t i = 0; i < job->nremote; i++)
			count(ss, RS_SUB_REMOTE);
		for (size_t i = 0; i < job->nlocal; i++)
			if (job->local[i].err != 0)
				log_warn(ss->sid, "submit.rcpt_failed",
				    "rcpt=%s reply=%u", job->local[i].addr,
				    job->local[i].reply.code);
	} else {
		smtp_txn_reply(t, job->code, job->enh, "%s", job->text);
		count(ss, job->why);
	}
	if (job->policy_ran)
		policy_account(&ss->w->srv->submit_m.policy,
		    loop_shard(ss->w->loop), ss->sid, "submission", &job->pr);
	log_info(ss->sid, "submit.message",
	    "user=%s from=%s local=%zu remote=%zu delivered=%zu result=%u",
	    ss->user, job->from, job->nlocal, job->nremote, job->delivered,
	    job->code);
	smtp_txn_done(t, job->why == RS_SUB_ACCEPTED);
	auth_entry_unref(&job->entry);
	free(job->local);
	free(job->remote);
	free(job);
}

static void
on_reset(struct smtp_txn *t)
{
	struct submit_session *ss = smtp_txn_ctx(t);

	ss->nrcpts = 0;
}

/* After the login: a second AUTH, STARTTLS or XCLIENT is out of place. */
static bool
on_other(struct smtp_txn *t, const struct smtp_cmd *cmd)
{
	switch (cmd->verb) {
	case SMTP_AUTH:
		smtp_txn_reply(t, 503, "5.5.1", "Already authenticated");
		break;
	case SMTP_STARTTLS:
		smtp_txn_reply(t, 503, "5.5.1",
		    "STARTTLS not possible after login");
		break;
	case SMTP_XCLIENT:
		smtp_txn_reply(t, 503, "5.5.1", "XCLIENT not possible now");
		break;
	default:
		return false;
	}
	smtp_txn_done(t, false);
	return true;
}

static void
on_refused(struct smtp_txn *t, enum smtp_txn_refusal why)
{
	struct submit_session *ss = smtp_txn_ctx(t);

	count(ss, RS_SUB_R_CORE);
	if ((int)why < 8)
		metrics_add(loop_shard(ss->w->loop),
		    ss->w->srv->submit_m.core[why], 1);
	log_info(ss->sid, "submit.refused", "user=%s reason=%s", ss->user,
	    smtp_txn_refusal_name(why));
}

static void
on_closed(struct smtp_txn *t, enum smtp_txn_end why)
{
	struct submit_session *ss = smtp_txn_ctx(t);

	log_info(ss->sid, "submit.close", "user=%s reason=%s messages=%u",
	    ss->user, smtp_txn_end_name(why), ss->messages);
	metrics_gauge_add(loop_shard(ss->w->loop),
	    ss->w->srv->submit_m.id[RS_SUB_SESSIONS], -1);
	free(ss->user);
	free(ss->helo);
	auth_entry_unref(&ss->entry);
	free(ss->rcpts);
	free(ss);
}
