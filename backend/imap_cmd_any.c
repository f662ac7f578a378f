/*
 * imap_cmd_any.c - commands of any state and of the login phase:
 * CAPABILITY, NOOP, LOGOUT, ID, ENABLE, STARTTLS, LOGIN, AUTHENTICATE.
 *
 * Relies on auth/: passwords are verified on the auth pool (submitted with
 * no loop, so the answer lands in this worker's outbox like a store job)
 * and AUTHENTICATE runs auth/sasl.c's state machine. After a good password
 * a store job prepares the user's Maildir (first-login folders).
 *
 * Must never: offer or accept a password over cleartext unless the
 * listener is trusted, tell an unknown user from a wrong password, or log
 * a password or a SASL payload.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "backend/imap_private.h"
#include "backend/maildir.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/tls.h"

/* A password check on the auth pool. */
struct auth_job {
	struct imap_job base;
	enum auth_status status;
	enum auth_reason reason;
	char user[AUTH_USER_MAX + 1];
	char authzid[AUTH_USER_MAX + 1]; /* PLAIN's, "" when absent */
	bool sasl;
};

/* The user's Maildir, made ready on the store pool. */
struct login_job {
	struct imap_job base;
	char *user;
	char *dir;
};

static bool secure(const struct imap_session *s);
static int check_none(struct imap_session *s, const struct imap_command *cmd);
static int check_login(struct imap_session *s, const struct imap_command *cmd);
static int check_authenticate(struct imap_session *s,
    const struct imap_command *cmd);
static int check_id(struct imap_session *s, const struct imap_command *cmd);
static int check_enable(struct imap_session *s,
    const struct imap_command *cmd);
static void run_capability(struct imap_session *s,
    const struct imap_command *cmd);
static void run_noop(struct imap_session *s, const struct imap_command *cmd);
static void run_logout(struct imap_session *s, const struct imap_command *cmd);
static void run_id(struct imap_session *s, const struct imap_command *cmd);
static void run_enable(struct imap_session *s, const struct imap_command *cmd);
static void run_starttls(struct imap_session *s,
    const struct imap_command *cmd);
static void run_login(struct imap_session *s, const struct imap_command *cmd);
static void run_authenticate(struct imap_session *s,
    const struct imap_command *cmd);

static void verify(struct imap_session *s, const char *user,
    const char *authzid, const char *password, size_t pwlen, bool sasl);
static enum sasl_verdict master_verdict(struct imap_session *s,
    const struct auth_job *job);
static bool master_user(const struct rs_config *cf, const char *user);
static bool master_net(const struct rs_config *cf, const char *peer);
static void auth_answer(struct loop *l, uint64_t sid, struct auth_result *res,
    void *ctx);
static int auth_finish(struct imap_session *s, struct imap_job *job);
static void sasl_next(struct imap_session *s, enum sasl_rc rc);
static void login_failed(struct imap_session *s, bool tempfail);
static void login_start(struct imap_session *s, const char *user);
static void login_run(struct store_job *sj);
static int login_finish(struct imap_session *s, struct imap_job *job);
static void login_release(struct imap_job *job);

const struct imap_cmd_def imap_cmds_any[] = {
	{ "CAPABILITY", ST_ANY, false, check_none, run_capability },
	{ "NOOP", ST_NOT_AUTH | ST_AUTH, false, check_none, run_noop },
	{ "LOGOUT", ST_ANY, false, check_none, run_logout },
	{ "ID", ST_ANY, false, check_id, run_id },
	{ "ENABLE", ST_AUTH, false, check_enable, run_enable },
	{ "STARTTLS", ST_NOT_AUTH, false, check_none, run_starttls },
	{ "LOGIN", ST_NOT_AUTH, false, check_login, run_login },
	{ "AUTHENTICATE", ST_NOT_AUTH, false, check_authenticate,
	    run_authenticate },
	{ NULL },
};

/* TLS, or a listener trusted for cleartext (behind ringgate). */
static bool
secure(const struct imap_session *s)
{
	return (s->flags & SF_TLS) || s->lconf->trusted;
}

static bool
can_starttls(const struct imap_session *s)
{
	return !(s->flags & SF_TLS) && s->lconf->starttls &&
	    s->w->tls != NULL;
}

void
imap_capability_string(struct imap_session *s, struct buf *b)
{
	buf_printf(b, "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE");
	if (s->state == IS_NOT_AUTH) {
		if (can_starttls(s))
			buf_printf(b, " STARTTLS");
		buf_printf(b, secure(s) ? " AUTH=PLAIN" : " LOGINDISABLED");
		return;
	}
	buf_printf(b, " NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE"
		      " IDLE");
}

/* ---- checks ------------------------------------------------------- */

static int
check_none(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 0) {
		s->error = "This command takes no arguments";
		return -1;
	}
	return 0;
}

static int
check_login(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *u = cmd->args, *p = imap_arg_next(u);

	if (cmd->argc != 2 || !imap_arg_is_astring(u) ||
	    !imap_arg_is_astring(p)) {
		s->error = "LOGIN takes a user name and a password";
		return -1;
	}
	if (u->len == 0 || u->len > AUTH_USER_MAX ||
	    p->len > AUTH_PASSWORD_MAX) {
		s->error = "User name or password too long";
		return -1;
	}
	return 0;
}

static int
check_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *m = cmd->args, *ir = imap_arg_next(m);

	if (cmd->argc < 1 || cmd->argc > 2 || m->type != IMAP_ARG_ATOM ||
	    (ir != NULL && ir->type != IMAP_ARG_ATOM)) {
		s->error = "AUTHENTICATE takes a mechanism and an optional "
			   "initial response";
		return -1;
	}
	return 0;
}

static int
check_id(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 1 || (cmd->args->type != IMAP_ARG_LIST &&
				  !imap_arg_is_nil(cmd->args))) {
		s->error = "ID takes a parameter list or NIL";
		return -1;
	}
	return 0;
}

static int
check_enable(struct imap_session *s, const struct imap_command *cmd)
{
	for (const struct imap_arg *a = cmd->args; a; a = imap_arg_next(a))
		if (a->type != IMAP_ARG_ATOM) {
			s->error = "ENABLE takes capability names";
			return -1;
		}
	if (cmd->argc == 0) {
		s->error = "ENABLE needs a capability name";
		return -1;
	}
	return 0;
}

/* ---- actions ------------------------------------------------------ */

static void
run_capability(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf b = { 0 };

	imap_capability_string(s, &b);
	imap_reply(s, "*", "CAPABILITY %.*s", (int)buf_used(&b), buf_head(&b));
	buf_free(&b);
	imap_reply(s, NULL, "OK Capability completed");
}

static void
run_noop(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, NULL, "OK NOOP completed");
}

static void
run_logout(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "*", "BYE Logging out");
	imap_reply(s, NULL, "OK Logout completed");
	imap_enter_state(s, IS_LOGOUT);
	s->flags |= SF_CLOSING;
	conn_close(s->c);
}

static void
run_id(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "*", "ID (\"name\" \"ringstore\" \"version\" \"%s\")",
	    RG_VERSION);
	imap_reply(s, NULL, "OK ID completed");
}

/* Nothing optional is implemented yet, so nothing is enabled. */
static void
run_enable(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "*", "ENABLED");
	imap_reply(s, NULL, "OK ENABLE completed");
}

/* The OK goes out in plaintext; whatever the client pipelined after the
 * command was sent before the upgrade and is thrown away. */
static void
run_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	if (!can_starttls(s)) {
		imap_reply(s, NULL, "NO STARTTLS is not available here");
		return;
	}
	imap_reply(s, NULL, "OK Begin TLS negotiation now");
	buf_free(&s->in);
	if (conn_start_tls_server(s->c, s->w->tls) == -1) {
		conn_abort(s->c, CR_TLS);
		return;
	}
	s->flags |= SF_TLS;
}

static void
run_login(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *u = cmd->args, *p = imap_arg_next(u);
	char user[AUTH_USER_MAX + 1];

	if (!secure(s)) {
		imap_reply(s, NULL,
		    "NO [PRIVACYREQUIRED] Use STARTTLS before LOGIN");
		return;
	}
	memcpy(user, u->ptr, u->len);
	user[u->len] = '\0';
	verify(s, user, "", p->ptr, p->len, false);
}

static void
run_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *m = cmd->args, *ir = imap_arg_next(m);
	struct sasl_server_conf conf = { 0 };
	const struct sasl_mech *mech;

	conf.flags = secure(s) ? SASL_F_SECURE : 0;
	/* an authzid reaches auth_finish(), which grants it to masters */
	if (s->srv->cf->auth.nmaster_users > 0)
		conf.flags |= SASL_F_AUTHZID;
	mech = sasl_mech_find(m->ptr, m->len, conf.flags);
	if (mech == NULL) {
		imap_reply(s, NULL, secure(s) ?
			"NO Unsupported authentication mechanism" :
			"NO [PRIVACYREQUIRED] Use STARTTLS first");
		return;
	}
	if (sasl_mech_id(mech) != SASL_MECH_PLAIN) {
		imap_reply(s, NULL, "NO Unsupported authentication mechanism");
		return;
	}
	sasl_server_free(&s->sasl);
	if ((s->sasl = sasl_server_new(mech, &conf)) == NULL) {
		imap_reply(s, NULL, "NO [UNAVAILABLE] Out of memory");
		return;
	}
	sasl_next(s, sasl_server_start64(s->sasl, ir ? ir->ptr : NULL,
			 ir ? ir->len : 0));
}

/* A client response line of AUTHENTICATE. */
void
imap_auth_line(struct imap_session *s, const char *line, size_t len)
{
	if (s->sasl == NULL)
		return;
	sasl_next(s, sasl_server_step64(s->sasl, line, len));
}

static void
sasl_next(struct imap_session *s, enum sasl_rc rc)
{
	const struct sasl_request *req;
	char chal[SASL_CHALLENGE64_MAX];
	size_t n;

	switch (rc) {
	case SASL_CONTINUE:
		if (sasl_server_challenge64(s->sasl, chal, sizeof(chal),
			&n) == -1) {
			login_failed(s, true);
			return;
		}
		imap_reply(s, "+", "%s", chal);
		s->flags |= SF_LINE;
		imap_parse_want_line(&s->parser);
		return;
	case SASL_VERIFY:
		req = sasl_server_request(s->sasl);
		if (req == NULL || req->kind != SASL_REQ_PASSWORD) {
			login_failed(s, false);
			return;
		}
		verify(s, req->authcid, req->authzid, req->password,
		    req->password_len, true);
		return;
	case SASL_SUCCESS:
		login_start(s, sasl_server_user(s->sasl));
		return;
	case SASL_FAIL:
	default:
		if (sasl_server_error(s->sasl) == SASL_E_CANCELLED) {
			sasl_server_free(&s->sasl);
			imap_bad(s, "Authentication cancelled");
			return;
		}
		log_info(s->sid, "imap.auth_failed", "mech=PLAIN error=%s",
		    sasl_error_name(sasl_server_error(s->sasl)));
		if (sasl_server_error(s->sasl) == SASL_E_AUTHZID) {
			sasl_server_free(&s->sasl);
			metrics_add(loop_shard(s->w->loop),
			    s->srv->m.logins_fail, 1);
			imap_reply(s, NULL, "NO [AUTHORIZATIONFAILED] "
					    "Authorization failed");
			return;
		}
		login_failed(s, sasl_server_error(s->sasl) ==
			SASL_E_TEMPFAIL);
		return;
	}
}

static void
login_failed(struct imap_session *s, bool tempfail)
{
	sasl_server_free(&s->sasl);
	metrics_add(loop_shard(s->w->loop), s->srv->m.logins_fail, 1);
	imap_reply(s, NULL, tempfail ?
		"NO [UNAVAILABLE] Temporary authentication failure" :
		"NO [AUTHENTICATIONFAILED] Authentication failed");
}

/* ---- password verification --------------------------------------- */

static void
verify(struct imap_session *s, const char *user, const char *authzid,
    const char *password, size_t pwlen, bool sasl)
{
	struct auth_job *job = imap_job_new(s, sizeof(*job), auth_finish);

	if (job == NULL) {
		login_failed(s, true);
		return;
	}
	snprintf(job->user, sizeof(job->user), "%s", user);
	snprintf(job->authzid, sizeof(job->authzid), "%s", authzid);
	job->sasl = sasl;
	imap_job_hold(s, &job->base);
	if (auth_pool_submit(s->srv->auth, NULL, s->sid, user, password,
		pwlen, NULL, auth_answer, job) == -1) {
		job->status = AUTH_TEMPFAIL;
		store_outbox_complete(&job->base.base);
	}
}

/* On an auth pool thread (or inside auth_pool_submit): hand the answer
 * to the session's loop through the outbox. */
static void
auth_answer(struct loop *l, uint64_t sid, struct auth_result *res, void *ctx)
{
	struct auth_job *job = ctx;

	job->status = res->status;
	job->reason = res->reason;
	store_outbox_complete(&job->base.base);
}

static int
auth_finish(struct imap_session *s, struct imap_job *ij)
{
	struct auth_job *job = (struct auth_job *)ij;
	char q[AUTH_USER_MAX * 2];

	log_info(s->sid, "imap.auth", "user=%s status=%s reason=%s",
	    log_quote(q, sizeof(q), job->user, (size_t)-1),
	    auth_status_name(job->status), auth_reason_name(job->reason));
	if (job->sasl) {
		if (s->sasl == NULL)
			return 0;
		sasl_next(s, sasl_server_verified(s->sasl,
				 job->status == AUTH_OK ?
					 master_verdict(s, job) :
				 job->status == AUTH_TEMPFAIL ?
					 SASL_V_TEMPFAIL :
					 SASL_V_FAIL));
		return 0;
	}
	if (job->status != AUTH_OK) {
		login_failed(s, job->status == AUTH_TEMPFAIL);
		return 0;
	}
	login_start(s, job->user);
	return 0;
}

/* ---- master users ------------------------------------------------- */

/*
 * The password of job->user was right. Without an authzid that is all;
 * with one, job->user must be a master logging in from master_nets and
 * the target must be a user who may log in. An unknown or nologin target
 * answers like a wrong password, so a master cannot probe for names.
 */
static enum sasl_verdict
master_verdict(struct imap_session *s, const struct auth_job *job)
{
	const struct rs_config *cf = s->srv->cf;
	char qm[AUTH_USER_MAX * 2], qt[AUTH_USER_MAX * 2];
	struct auth_entry *e = NULL;
	const char *why = NULL, *err = NULL;
	enum sasl_verdict v = SASL_V_AUTHZID;

	if (job->authzid[0] == '\0')
		return SASL_V_OK;
	if (!master_user(cf, job->user))
		why = "not_master";
	else if (!master_net(cf, conn_peer(s->c)))
		why = "network";
	else if (auth_lookup(s->srv->users, job->authzid, &e, &err) !=
		AUTH_LOOKUP_FOUND) {
		why = "unknown_target";
		v = SASL_V_FAIL;
	} else if (e->nologin) {
		why = "nologin_target";
		v = SASL_V_FAIL;
	}
	auth_entry_unref(&e);
	log_info(s->sid, "imap.master", "master=%s target=%s peer=%s "
	    "result=%s", log_quote(qm, sizeof(qm), job->user, (size_t)-1),
	    log_quote(qt, sizeof(qt), job->authzid, (size_t)-1),
	    conn_peer(s->c), why ? why : "ok");
	if (why == NULL)
		return SASL_V_OK;
	metrics_add(loop_shard(s->w->loop), s->srv->m.master_refused, 1);
	return v;
}

static bool
master_user(const struct rs_config *cf, const char *user)
{
	for (unsigned i = 0; i < cf->auth.nmaster_users; i++)
		if (strcasecmp(cf->auth.master_users[i], user) == 0)
			return true;
	return false;
}

/* peer is conn_peer()'s "a.b.c.d:port" or "[v6]:port". */
static bool
master_net(const struct rs_config *cf, const char *peer)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	char host[INET6_ADDRSTRLEN + 8];
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : 0;

	if (peer[0] == '[' && n >= 2) {
		peer++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, peer, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return false;
	for (unsigned i = 0; i < cf->auth.nmaster_nets; i++)
		if (auth_net_match(&cf->auth.master_nets[i],
			(struct sockaddr *)&ss))
			return true;
	return false;
}

/* ---- after a good password: the Maildir --------------------------- */

static void
login_start(struct imap_session *s, const char *user)
{
	struct login_job *job = imap_job_new(s, sizeof(*job), login_finish);

	/* user may live in the SASL session: copy before freeing it */
	if (job == NULL || (job->user = strdup(user)) == NULL) {
		free(job);
		login_failed(s, true);
		return;
	}
	sasl_server_free(&s->sasl);
	job->base.release = login_release;
	imap_job_submit(s, &job->base, login_run);
}

static void
login_run(struct store_job *sj)
{
	struct login_job *job = (struct login_job *)sj;
	const struct rs_config *cf = job->base.w->srv->cf;

	if (maildir_user_dir(cf->storage.mail_root, job->user, &job->dir,
		&job->base.errtext) == -1 ||
	    maildir_user_init(job->dir, &job->base.errtext) == -1)
		job->base.err = errno ? errno : EIO;
}

static int
login_finish(struct imap_session *s, struct imap_job *ij)
{
	struct login_job *job = (struct login_job *)ij;
	struct buf caps = { 0 };

	if (job->base.err) {
		log_error(s->sid, "imap.maildir_failed", "error=\"%s\"",
		    job->base.errtext ? job->base.errtext : "?");
		login_failed(s, true);
		return 0;
	}
	s->user = job->user;
	s->maildir = job->dir;
	job->user = job->dir = NULL;
	imap_enter_state(s, IS_AUTH);
	if (imap_session_set_limits(s) == -1) {
		conn_abort(s->c, CR_NOMEM);
		return 0;
	}
	metrics_add(loop_shard(s->w->loop), s->srv->m.logins_ok, 1);
	imap_capability_string(s, &caps);
	imap_reply(s, NULL, "OK [CAPABILITY %.*s] Logged in",
	    (int)buf_used(&caps), buf_head(&caps));
	buf_free(&caps);
	return 0;
}

static void
login_release(struct imap_job *ij)
{
	struct login_job *job = (struct login_job *)ij;

	free(job->user);
	free(job->dir);
}
