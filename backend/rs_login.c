/*
 * rs_login.c - ringstore's side of the login core (login/login.h): the
 * hooks that make a logged-in user an IMAP session here. A master user
 * (ringgate) may act as any user from master_nets; once a user is in,
 * the Maildir is made ready on the login lane of the store pool (logins
 * never queue behind mailbox work), then the connection goes to the IMAP
 * session core with the login command's tagged OK. Who may act as whom
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

#include "auth/auth.h"
#include "auth/auth_service.h"
#include "backend/imap_private.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "login/login.h"
#include "store/maildir.h"

/* The user's Maildir made ready on the login lane; answered into the
 * worker's outbox, where the login session is found again by its id. */
struct maildir_job {
	struct pool_job base;
	struct rs_worker *w;
	const struct rs_listener *li;
	char *user;
	char *dir;
	char tag[LOGIN_TAG_MAX + 1];
	const char *errtext;
	int err;
};

static enum sasl_verdict authorize(struct login_session *s, const char *authcid,
    const char *authzid);
static void logged_in(struct login_session *s, const struct login_user *u);
static struct tls_server *starttls_server(struct login_session *s);
static void maildir_run(struct pool_job *pj);
static void maildir_done(struct pool_job *pj);
static void maildir_job_free(struct maildir_job *job);

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

static struct tls_server *
starttls_server(struct login_session *s)
{
	struct rs_worker *w = loop_ctx(conn_loop(login_session_conn(s)));

	return w->tls;
}

/* ---- the hand-off ---------------------------------------------------- */

static void
logged_in(struct login_session *s, const struct login_user *u)
{
	const struct rs_listener *li = login_session_ctx(s);
	struct rs_worker *w = loop_ctx(conn_loop(login_session_conn(s)));
	struct maildir_job *job = calloc(1, sizeof(*job));

	if (job == NULL || (job->user = strdup(u->user)) == NULL) {
		free(job);
		login_session_refuse(s, "out of memory");
		return;
	}
	snprintf(job->tag, sizeof(job->tag), "%s", u->tag);
	job->w = w;
	job->li = li;
	job->base.run = maildir_run;
	job->base.done = maildir_done;
	job->base.sid = login_session_sid(s);
	job->base.flow = job->base.sid;
	if (pool_submit(w->srv->login ? w->srv->login : w->srv->store,
		w->outbox, &job->base) == -1) {
		maildir_job_free(job);
		metrics_add(loop_shard(w->loop), w->srv->m.store_busy, 1);
		login_session_refuse(s, "store queue full");
	}
}

static void
maildir_run(struct pool_job *pj)
{
	struct maildir_job *job = (struct maildir_job *)pj;
	const struct rs_config *cf = job->w->srv->cf;

	if (maildir_user_dir(cf->storage.mail_root, job->user, &job->dir,
		&job->errtext) == -1 ||
	    maildir_user_init(job->dir, &job->errtext) == -1)
		job->err = errno ? errno : EIO;
}

/* On the loop: the login session (if the client is still there) becomes
 * an IMAP session, or hears that its store is not ready. */
static void
maildir_done(struct pool_job *pj)
{
	struct maildir_job *job = (struct maildir_job *)pj;
	struct rs_worker *w = job->w;
	struct login_session *s = login_session_find(w->login, pj->sid);
	struct buf rest = { 0 };
	struct conn *c;
	bool tls;

	if (s == NULL) {
		maildir_job_free(job);
		return;
	}
	if (job->err) {
		log_error(pj->sid, "imap.maildir_failed", "error=\"%s\"",
		    job->errtext ? job->errtext : "?");
		login_session_refuse(s, "maildir");
		maildir_job_free(job);
		return;
	}
	tls = login_session_tls(s);
	if ((c = login_session_handoff(s, &rest)) != NULL &&
	    imap_session_start(w, c, job->li, job->user, job->dir, job->tag,
		tls, &rest) == 0)
		job->user = job->dir = NULL; /* the session's now */
	buf_free(&rest);
	maildir_job_free(job);
}

static void
maildir_job_free(struct maildir_job *job)
{
	free(job->user);
	free(job->dir);
	free(job);
}
