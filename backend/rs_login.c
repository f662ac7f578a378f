/*
 * rs_login.c - ringstore's side of the login core (login/login.h): the
 * hooks that make a logged-in user a session of the listener's service
 * (IMAP, POP3, submission). A master user (ringgate) may act as any user
 * from master_nets; once a user is in, what the service needs (the
 * Maildir, POP3's maildrop lock) is made ready on the login lane of the
 * store pool (logins never queue behind mailbox work), then the
 * connection goes to the service's start() with the login command's
 * answer. Who may act as whom
 * is auth's decision (auth_service_authorize); this file logs and counts
 * it.
 *
 * Must never: let a master act for a user outside master_nets, tell a
 * master whether a target exists (an unknown or nologin target answers
 * like a wrong password), or log key material.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_service.h"
#include "backend/imap_private.h"
#include "core/listen_set.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "login/login.h"
#include "store/maildir.h"

/* What a login needs ready before it is answered, on the login lane;
 * answered into the worker's outbox, where the login session is found
 * again by its id. */
struct ready_job {
	struct pool_job base;
	struct rs_worker *w;
	const struct rs_listener *li;
	struct rs_ready r;
};

static enum sasl_verdict authorize(struct login_session *s, const char *authcid,
    const char *authzid);
static void logged_in(struct login_session *s, const struct login_user *u);
static struct tls_server *starttls_server(struct login_session *s);
static void ready_run(struct pool_job *pj);
static void ready_done(struct pool_job *pj);
static void ready_job_free(struct ready_job *job);

const struct login_hooks rs_login_hooks = {
	.admit = NULL,
	.authorize = authorize,
	.logged_in = logged_in,
	.tls = starttls_server,
};

/* ---- master users ---------------------------------------------------- */

/* authcid's password was right and it asks to act as authzid. */
static enum sasl_verdict
authorize(struct login_session *s, const char *authcid, const char *authzid)
{
	const struct rs_listener *li = login_session_ctx(s);
	const struct rs_server *srv = li->srv;
	struct conn *c = login_session_conn(s);
	char qm[AUTH_USER_MAX * 2], qt[AUTH_USER_MAX * 2];
	const char *why = NULL;
	enum sasl_verdict v;

	v = auth_service_authorize(srv->auth, authcid, authzid,
	    conn_peer_addr(c, NULL), &why);
	log_info(login_session_sid(s), "imap.master",
	    "master=%s target=%s peer=%s result=%s",
	    log_quote(qm, sizeof(qm), authcid, (size_t)-1),
	    log_quote(qt, sizeof(qt), authzid, (size_t)-1), conn_peer(c), why);
	if (v != SASL_V_OK)
		metrics_add(loop_shard(conn_loop(c)), srv->m.master_refused, 1);
	return v;
}

/* The listener's context on this worker (swapped on SIGHUP). */
static struct tls_server *
starttls_server(struct login_session *s)
{
	const struct rs_listener *li = login_session_ctx(s);

	return listen_set_worker_tls(li->srv->lset,
	    conn_loop(login_session_conn(s)), li->index);
}

/* ---- the hand-off ---------------------------------------------------- */

static void
logged_in(struct login_session *s, const struct login_user *u)
{
	const struct rs_listener *li = login_session_ctx(s);
	struct rs_worker *w = loop_ctx(conn_loop(login_session_conn(s)));
	struct ready_job *job = calloc(1, sizeof(*job));

	if (job == NULL || (job->r.user = strdup(u->user)) == NULL) {
		free(job);
		login_session_refuse(s, LOGIN_FAIL_TEMP, "out of memory");
		return;
	}
	snprintf(job->r.tag, sizeof(job->r.tag), "%s", u->tag);
	snprintf(job->r.mech, sizeof(job->r.mech), "%s", u->mech);
	job->r.esmtp = login_session_esmtp(s);
	if ((job->r.helo = strdup(login_session_helo(s))) == NULL) {
		ready_job_free(job);
		login_session_refuse(s, LOGIN_FAIL_TEMP, "out of memory");
		return;
	}
	job->r.lock = -1;
	job->r.tls = login_session_tls(s);
	job->w = w;
	job->li = li;
	job->base.run = ready_run;
	job->base.done = ready_done;
	job->base.sid = login_session_sid(s);
	job->base.flow = job->base.sid;
	if (pool_submit(w->srv->login ? w->srv->login : w->srv->store,
		w->outbox, &job->base) == -1) {
		ready_job_free(job);
		metrics_add(loop_shard(w->loop), w->srv->m.store_busy, 1);
		login_session_refuse(s, LOGIN_FAIL_TEMP, "store queue full");
	}
}

/* On the login lane: the user's Maildir (when the service has one),
 * then whatever else the service needs ready. */
static void
ready_run(struct pool_job *pj)
{
	struct ready_job *job = (struct ready_job *)pj;
	const struct rs_server *srv = job->w->srv;
	const struct rs_service *svc = job->li->svc;
	struct rs_ready *r = &job->r;

	if (svc->maildir &&
	    (maildir_user_dir(srv->cf->storage.mail_root, r->user, &r->dir,
		 &r->errtext) == -1 ||
		maildir_user_init(r->dir, &r->errtext) == -1)) {
		r->err = errno ? errno : EIO;
		return;
	}
	if (svc->prepare != NULL)
		svc->prepare(srv, r);
}

/* On the loop: the login session (if the client is still there) becomes
 * the service's session, or hears why not. */
static void
ready_done(struct pool_job *pj)
{
	struct ready_job *job = (struct ready_job *)pj;
	struct rs_worker *w = job->w;
	struct login_session *s = login_session_find(w->login, pj->sid);
	struct buf rest = { 0 };
	struct conn *c;

	if (s == NULL) {
		ready_job_free(job);
		return;
	}
	if (job->r.err || job->r.in_use) {
		if (job->r.in_use) /* only POP3 locks its store */
			metrics_add(loop_shard(w->loop), w->srv->m.pop3.in_use,
			    1);
		if (job->r.err)
			log_error(pj->sid, "login.store_failed",
			    "service=%s error=\"%s\"", job->li->svc->name,
			    job->r.errtext ? job->r.errtext : "?");
		login_session_refuse(s,
		    job->r.in_use ? LOGIN_FAIL_INUSE : LOGIN_FAIL_TEMP,
		    job->r.in_use ? "in use" : "store");
		ready_job_free(job);
		return;
	}
	if ((c = login_session_handoff(s, &rest)) != NULL)
		job->li->svc->start(w, c, job->li, &job->r, &rest);
	buf_free(&rest);
	ready_job_free(job);
}

/* What start() did not take. */
static void
ready_job_free(struct ready_job *job)
{
	free(job->r.user);
	free(job->r.dir);
	free(job->r.helo);
	auth_entry_unref(&job->r.entry);
	if (job->r.lock != -1)
		close(job->r.lock);
	free(job);
}
