/*
 * imap_auth.c - logging in: LOGIN and AUTHENTICATE with every SASL
 * mechanism of auth/sasl.h (PLAIN, LOGIN, SCRAM-SHA-256, -PLUS when the
 * TLS is ours, CRAM-MD5 when auth.legacy_mechanisms is on), the AUTH=
 * capabilities, master users, and the Maildir made ready after a login.
 *
 * Passwords (PLAIN, LOGIN and the LOGIN command) are verified on the auth
 * pool, submitted with no loop so the answer lands in this worker's
 * outbox like a store job; the pool applies nologin and allow_nets= to
 * the client address. SCRAM keys and CRAM-MD5 secrets are looked up on the
 * ring thread, which only the in-memory passwd-file allows
 * (lookup_nonblocking); those mechanisms apply the same policy here after
 * a correct proof, before SCRAM's server signature goes out. EXTERNAL is
 * never offered: ringstore does not verify client certificates. IMAP has
 * no room for SASL data in the tagged OK (RFC 3501, RFC 9051 6.2.2), so
 * SCRAM's server-final goes out as a last "+ " challenge and the client
 * answers with an empty line.
 *
 * Must never: offer or accept a password over cleartext unless the
 * listener is trusted, tell an unknown user from a wrong password, or log
 * a password, a SASL payload or key material.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "backend/imap_private.h"
#include "backend/maildir.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/tls.h"

#define CBIND_LEN 32	     /* RFC 9266 tls-exporter */
#define SECRET_FILE_MAX 4096 /* bytes read from auth.scram_secret_file */
#define SECRET_FILE_MIN 16   /* shorter is refused: guessable */

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

/* start-up */
static int read_secret(const char *path, uint8_t out[SHA256_DIGEST_LENGTH],
    const char **error_r);

/* policy */
static bool secure(const struct imap_session *s);
static unsigned mech_flags(struct imap_session *s, uint8_t cb[CBIND_LEN]);
static enum auth_reason entry_policy(struct imap_session *s, const char *user);

/* the SASL exchange */
static void sasl_next(struct imap_session *s, enum sasl_rc rc);
static void sasl_request(struct imap_session *s);
static enum sasl_rc scram_keys(struct imap_session *s, const char *user);
static enum sasl_rc cram_secret(struct imap_session *s, const char *user);
static enum auth_lookup stored_entry(struct imap_session *s, const char *user,
    struct auth_entry **e_r);
static enum sasl_rc policy(struct imap_session *s, const char *user);
static void sasl_success(struct imap_session *s);
static void sasl_failed(struct imap_session *s);
static const char *mech_of(const struct imap_session *s);
static void auth_log(struct imap_session *s, const char *user, const char *mech,
    enum auth_status st, enum auth_reason r);
static void login_failed(struct imap_session *s, bool tempfail);

/* passwords on the auth pool */
static void verify(struct imap_session *s, const char *user,
    const char *authzid, const char *password, size_t pwlen, bool sasl);
static void auth_answer(struct loop *l, uint64_t sid, struct auth_result *res,
    void *ctx);
static int auth_finish(struct imap_session *s, struct imap_job *job);

/* master users */
static enum sasl_verdict master_verdict(struct imap_session *s,
    const struct auth_job *job);
static bool master_user(const struct rs_config *cf, const char *user);
static bool master_net(const struct imap_session *s);

/* the Maildir */
static void login_start(struct imap_session *s, const char *user);
static void login_run(struct pool_job *sj);
static int login_finish(struct imap_session *s, struct imap_job *job);
static void login_release(struct imap_job *job);

/* ---- start-up ------------------------------------------------------ */

int
imap_auth_init(struct rs_server *srv, const char **error_r)
{
	const struct rs_config *cf = srv->cf;

	srv->scram_secret_len = 0;
	if (cf->auth.scram_secret_file != NULL) {
		if (read_secret(cf->auth.scram_secret_file, srv->scram_secret,
			error_r) == -1)
			return -1;
		srv->scram_secret_len = SHA256_DIGEST_LENGTH;
	}
	if (cf->auth.legacy_mechanisms)
		log_warn(0, "auth.legacy",
		    "mechanisms=CRAM-MD5 warning=\"it "
		    "needs plaintext-equivalent secrets: only users stored "
		    "as {PLAIN} or {CLEARTEXT} can use it\"");
	return 0;
}

/*
 * The secret is SHA-256 of the file's bytes (trailing white space
 * dropped), so any length from SECRET_FILE_MIN to SECRET_FILE_MAX works,
 * e.g. `openssl rand -base64 32`. Every instance given the same file
 * shows unknown users the same fake salts.
 */
static int
read_secret(const char *path, uint8_t out[SHA256_DIGEST_LENGTH],
    const char **error_r)
{
	static char msg[600];
	char buf[SECRET_FILE_MAX + 1];
	const char *why = NULL;
	struct stat st;
	ssize_t n = -1;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if ((n = read(fd, buf, sizeof(buf))) == -1)
		why = strerror(errno);
	else if (n > SECRET_FILE_MAX)
		why = "longer than 4096 bytes";
	if (fd != -1)
		close(fd);
	while (why == NULL && n > 0 &&
	    (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
		buf[n - 1] == '\t'))
		n--;
	if (why == NULL && n < SECRET_FILE_MIN)
		why = "shorter than 16 bytes";
	if (why == NULL && SHA256((const uint8_t *)buf, (size_t)n, out) == NULL)
		why = "SHA-256 failed";
	OPENSSL_cleanse(buf, sizeof(buf));
	if (why == NULL) {
		if (st.st_mode & S_IROTH)
			log_warn(0, "auth.scram_secret",
			    "path=%s warning=\""
			    "readable by everyone\"",
			    path);
		return 0;
	}
	snprintf(msg, sizeof(msg), "auth.scram_secret_file %s: %s", path, why);
	*error_r = msg;
	return -1;
}

/* ---- policy -------------------------------------------------------- */

/* TLS, or a listener trusted for cleartext (behind ringgate). */
static bool
secure(const struct imap_session *s)
{
	return (s->flags & SF_TLS) || s->lconf->trusted;
}

/*
 * What this session may use (enum sasl_flags). Channel binding only when
 * ringstore terminates the TLS itself and it is TLS 1.3: RFC 9266 allows
 * tls-exporter on TLS 1.2 only with the extended master secret, which we
 * do not check. Behind ringgate the TLS is ringgate's, so no -PLUS.
 */
static unsigned
mech_flags(struct imap_session *s, uint8_t cb[CBIND_LEN])
{
	struct tls_conn *t = conn_tls(s->c);
	const char *v;
	unsigned f;

	if (!secure(s))
		return 0;
	f = SASL_F_SECURE;
	if ((s->flags & SF_TLS) && t != NULL && tls_conn_established(t) &&
	    (v = tls_conn_version(t)) != NULL && strcmp(v, "TLSv1.3") == 0 &&
	    tls_conn_exporter(t, cb) == 0)
		f |= SASL_F_CBIND;
	if (s->srv->cf->auth.legacy_mechanisms)
		f |= SASL_F_LEGACY;
	return f;
}

void
imap_auth_capability(struct imap_session *s, struct buf *b)
{
	const char *names[SASL_MECH_MAX];
	uint8_t cb[CBIND_LEN];
	size_t n;

	n = sasl_mech_list(mech_flags(s, cb), names, SASL_MECH_MAX);
	OPENSSL_cleanse(cb, sizeof(cb));
	if (n == 0) {
		buf_printf(b, " LOGINDISABLED");
		return;
	}
	for (size_t i = 0; i < n && i < SASL_MECH_MAX; i++)
		buf_printf(b, " AUTH=%s", names[i]);
}

/*
 * After a correct SCRAM proof or CRAM-MD5 digest: what the auth pool
 * checks after a correct password (nologin, allow_nets= against the
 * client address). The entry is looked up again, so a reload in between
 * applies. AUTH_R_NONE: may log in.
 */
static enum auth_reason
entry_policy(struct imap_session *s, const char *user)
{
	struct auth_entry *e = NULL;
	const char *err = NULL;
	enum auth_reason r;

	if (auth_lookup(s->srv->users, user, &e, &err) != AUTH_LOOKUP_FOUND)
		return AUTH_R_UNKNOWN;
	r = auth_entry_policy(e, conn_peer_addr(s->c, NULL));
	auth_entry_unref(&e);
	return r;
}

/* ---- LOGIN and AUTHENTICATE ---------------------------------------- */

int
imap_auth_check_login(struct imap_session *s, const struct imap_command *cmd)
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

int
imap_auth_check_authenticate(struct imap_session *s,
    const struct imap_command *cmd)
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

void
imap_auth_run_login(struct imap_session *s, const struct imap_command *cmd)
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

void
imap_auth_run_authenticate(struct imap_session *s,
    const struct imap_command *cmd)
{
	const struct imap_arg *m = cmd->args, *ir = imap_arg_next(m);
	const struct rs_server *srv = s->srv;
	struct sasl_server_conf conf = { 0 };
	const struct sasl_mech *mech;
	uint8_t cb[CBIND_LEN];

	conf.flags = mech_flags(s, cb);
	/* an authzid reaches auth_finish(), which grants it to masters */
	if (srv->cf->auth.nmaster_users > 0)
		conf.flags |= SASL_F_AUTHZID;
	if (conf.flags & SASL_F_CBIND) {
		conf.cbind = cb;
		conf.cbind_len = sizeof(cb);
	}
	if (srv->scram_secret_len > 0) {
		conf.secret = srv->scram_secret;
		conf.secret_len = srv->scram_secret_len;
	}
	mech = sasl_mech_find(m->ptr, m->len, conf.flags);
	sasl_server_free(&s->sasl);
	if (mech == NULL) {
		imap_reply(s, NULL,
		    secure(s) ? "NO Unsupported authentication mechanism" :
				"NO [PRIVACYREQUIRED] Use STARTTLS first");
	} else if ((s->sasl = sasl_server_new(mech, &conf)) == NULL) {
		imap_reply(s, NULL, "NO [UNAVAILABLE] Out of memory");
	} else {
		sasl_next(s,
		    sasl_server_start64(s->sasl, ir ? ir->ptr : NULL,
			ir ? ir->len : 0));
	}
	OPENSSL_cleanse(cb, sizeof(cb));
}

/* A client response line of AUTHENTICATE. */
void
imap_auth_line(struct imap_session *s, const char *line, size_t len)
{
	if (s->sasl == NULL)
		return;
	sasl_next(s, sasl_server_step64(s->sasl, line, len));
}

/* A response line over the limit: the exchange ends here with a tagged
 * BAD (counted), and the client's next line is a command again. */
void
imap_auth_line_failed(struct imap_session *s, const char *text)
{
	sasl_server_free(&s->sasl);
	imap_bad(s, text);
}

/* ---- the SASL exchange --------------------------------------------- */

static void
sasl_next(struct imap_session *s, enum sasl_rc rc)
{
	char chal[SASL_CHALLENGE64_MAX];
	size_t n;

	switch (rc) {
	case SASL_CONTINUE:
		if (sasl_server_challenge64(s->sasl, chal, sizeof(chal), &n) ==
		    -1) {
			login_failed(s, true);
			return;
		}
		imap_reply(s, "+", "%s", chal);
		s->flags |= SF_LINE;
		imap_input_want_line(&s->input);
		return;
	case SASL_VERIFY:
		sasl_request(s);
		return;
	case SASL_SUCCESS:
		sasl_success(s);
		return;
	case SASL_FAIL:
	default:
		sasl_failed(s);
		return;
	}
}

/* What the mechanism asks for: a password goes to the auth pool, the
 * lookups are answered here. */
static void
sasl_request(struct imap_session *s)
{
	const struct sasl_request *req = sasl_server_request(s->sasl);

	if (req == NULL) {
		login_failed(s, false);
		return;
	}
	switch (req->kind) {
	case SASL_REQ_PASSWORD:
		verify(s, req->authcid, req->authzid, req->password,
		    req->password_len, true);
		return;
	case SASL_REQ_SCRAM_KEYS:
		sasl_next(s, scram_keys(s, req->authcid));
		return;
	case SASL_REQ_SECRET:
		sasl_next(s, cram_secret(s, req->authcid));
		return;
	case SASL_REQ_POLICY:
		sasl_next(s, policy(s, req->authcid));
		return;
	}
	login_failed(s, false);
}

/*
 * The user's entry for a mechanism that needs its stored secret (SCRAM,
 * CRAM-MD5), looked up on the ring thread. A back-end that could block
 * cannot be asked here; only the passwd-file exists in ringstore now, so
 * that is a TEMPFAIL. Sets s->auth_reason for NOTFOUND and TEMPFAIL; on
 * FOUND *e_r is a reference the caller drops.
 */
static enum auth_lookup
stored_entry(struct imap_session *s, const char *user, struct auth_entry **e_r)
{
	const char *err = NULL;
	enum auth_lookup r = AUTH_LOOKUP_TEMPFAIL;

	*e_r = NULL;
	if (s->srv->users->ops->lookup_nonblocking)
		r = auth_lookup(s->srv->users, user, e_r, &err);
	if (r == AUTH_LOOKUP_NOTFOUND)
		s->auth_reason = AUTH_R_UNKNOWN;
	else if (r != AUTH_LOOKUP_FOUND)
		s->auth_reason = AUTH_R_BACKEND;
	return r;
}

/*
 * The user's stored SCRAM-SHA-256 keys. Unknown users, users stored
 * with another scheme and unreadable keys all answer NULL: the exchange
 * goes on with fake keys and fails on the proof like a wrong password.
 */
static enum sasl_rc
scram_keys(struct imap_session *s, const char *user)
{
	struct sasl_scram_keys k;
	struct auth_entry *e = NULL;
	const char *err = NULL;
	enum auth_scheme scheme;
	enum sasl_rc rc;
	bool ok = false;

	switch (stored_entry(s, user, &e)) {
	case AUTH_LOOKUP_FOUND:
		ok = e->password != NULL &&
		    auth_scheme_of(e->password, &scheme, &err) == 0 &&
		    scheme == AUTH_SCHEME_SCRAM_SHA_256 &&
		    sasl_scram_keys_parse(e->password, strlen(e->password), &k,
			&err) == 0;
		s->auth_reason = ok ? AUTH_R_PASSWORD : AUTH_R_NOPASS;
		auth_entry_unref(&e);
		break;
	case AUTH_LOOKUP_NOTFOUND:
		break;
	default:
		return sasl_server_verified(s->sasl, SASL_V_TEMPFAIL);
	}
	rc = sasl_server_scram_keys(s->sasl, ok ? &k : NULL);
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

/* CRAM-MD5's plaintext-equivalent secret: only a {PLAIN}/{CLEARTEXT}
 * password, and only with auth.allow_plaintext. */
static enum sasl_rc
cram_secret(struct imap_session *s, const char *user)
{
	struct auth_entry *e = NULL;
	const char *err = NULL, *secret = NULL;
	enum auth_scheme scheme;
	enum sasl_rc rc;

	switch (stored_entry(s, user, &e)) {
	case AUTH_LOOKUP_FOUND:
		if (s->srv->cf->auth.allow_plaintext && e->password != NULL &&
		    e->password[0] == '{' &&
		    auth_scheme_of(e->password, &scheme, &err) == 0 &&
		    scheme == AUTH_SCHEME_PLAIN)
			secret = strchr(e->password, '}') + 1;
		s->auth_reason = secret ? AUTH_R_PASSWORD : AUTH_R_NOPASS;
		break;
	case AUTH_LOOKUP_NOTFOUND:
		break;
	default:
		return sasl_server_verified(s->sasl, SASL_V_TEMPFAIL);
	}
	rc = sasl_server_secret(s->sasl, secret, secret ? strlen(secret) : 0);
	auth_entry_unref(&e);
	return rc;
}

/* After a correct proof or digest, before anything confirms it: the
 * entry's policy (auth_entry_policy(), looked up again so a reload in
 * between applies), logged as the pool logs a password check. */
static enum sasl_rc
policy(struct imap_session *s, const char *user)
{
	enum auth_reason r = entry_policy(s, user);

	/* a refusal is logged with its reason by sasl_failed() */
	if (r == AUTH_R_NONE)
		auth_log(s, user, mech_of(s), AUTH_OK, r);
	s->auth_reason = r;
	return sasl_server_verified(s->sasl,
	    r == AUTH_R_NONE	    ? SASL_V_OK :
		r == AUTH_R_BACKEND ? SASL_V_TEMPFAIL :
				      SASL_V_FAIL);
}

/* The mechanism said yes: PLAIN and LOGIN had the pool's policy applied,
 * SCRAM and CRAM-MD5 answered a SASL_REQ_POLICY. */
static void
sasl_success(struct imap_session *s)
{
	login_start(s, sasl_server_user(s->sasl));
}

static void
sasl_failed(struct imap_session *s)
{
	enum sasl_error e = sasl_server_error(s->sasl);
	enum sasl_mech_id id = sasl_mech_id(sasl_server_mech(s->sasl));
	char q[AUTH_USER_MAX * 2];

	if (e == SASL_E_CANCELLED) {
		sasl_server_free(&s->sasl);
		imap_bad(s, "Authentication cancelled");
		return;
	}
	if (e == SASL_E_CREDENTIALS &&
	    (id == SASL_MECH_SCRAM_SHA_256 ||
		id == SASL_MECH_SCRAM_SHA_256_PLUS || id == SASL_MECH_CRAM_MD5))
		auth_log(s, sasl_server_authcid(s->sasl), mech_of(s), AUTH_FAIL,
		    (enum auth_reason)s->auth_reason);
	else
		log_info(s->sid, "imap.auth_failed",
		    "mech=%s user=%s "
		    "error=%s",
		    mech_of(s),
		    log_quote(q, sizeof(q), sasl_server_authcid(s->sasl),
			(size_t)-1),
		    sasl_error_name(e));
	if (e == SASL_E_AUTHZID) {
		sasl_server_free(&s->sasl);
		metrics_add(loop_shard(s->w->loop), s->srv->m.logins_fail, 1);
		imap_reply(s, NULL,
		    "NO [AUTHORIZATIONFAILED] "
		    "Authorization failed");
		return;
	}
	login_failed(s, e == SASL_E_TEMPFAIL);
}

static const char *
mech_of(const struct imap_session *s)
{
	return s->sasl ? sasl_mech_name(sasl_server_mech(s->sasl)) :
			 "IMAP-LOGIN";
}

static void
auth_log(struct imap_session *s, const char *user, const char *mech,
    enum auth_status st, enum auth_reason r)
{
	char q[AUTH_USER_MAX * 2];

	log_info(s->sid, "imap.auth", "user=%s mech=%s status=%s reason=%s",
	    log_quote(q, sizeof(q), user, (size_t)-1), mech,
	    auth_status_name(st), auth_reason_name(r));
}

/* One answer for every credential failure, whatever the mechanism. */
static void
login_failed(struct imap_session *s, bool tempfail)
{
	sasl_server_free(&s->sasl);
	metrics_add(loop_shard(s->w->loop), s->srv->m.logins_fail, 1);
	imap_reply(s, NULL,
	    tempfail ? "NO [UNAVAILABLE] Temporary authentication failure" :
		       "NO [AUTHENTICATIONFAILED] Authentication failed");
}

/* ---- password verification ----------------------------------------- */

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
	if (auth_pool_submit(s->srv->auth, NULL, s->sid, user, password, pwlen,
		conn_peer_addr(s->c, NULL), auth_answer, job) == -1) {
		job->status = AUTH_TEMPFAIL;
		pool_outbox_complete(&job->base.base);
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
	pool_outbox_complete(&job->base.base);
}

static int
auth_finish(struct imap_session *s, struct imap_job *ij)
{
	struct auth_job *job = (struct auth_job *)ij;

	auth_log(s, job->user, mech_of(s), job->status, job->reason);
	if (job->sasl) {
		if (s->sasl == NULL)
			return 0;
		sasl_next(s,
		    sasl_server_verified(s->sasl,
			job->status == AUTH_OK ? master_verdict(s, job) :
			    job->status == AUTH_TEMPFAIL ? SASL_V_TEMPFAIL :
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

/* ---- master users --------------------------------------------------- */

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
	else if (!master_net(s))
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
	log_info(s->sid, "imap.master",
	    "master=%s target=%s peer=%s "
	    "result=%s",
	    log_quote(qm, sizeof(qm), job->user, (size_t)-1),
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

static bool
master_net(const struct imap_session *s)
{
	const struct rs_config *cf = s->srv->cf;

	return net_list_match(cf->auth.master_nets, cf->auth.nmaster_nets,
	    conn_peer_addr(s->c, NULL));
}

/* ---- after a good password: the Maildir ----------------------------- */

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
login_run(struct pool_job *sj)
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
