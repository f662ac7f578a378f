/*
 * login_sasl.c - the SASL driver of the login core: any mechanism of
 * auth/sasl.h through one exchange, for every protocol, plus plain logins
 * (IMAP LOGIN, POP3 USER/PASS) through the same verification.
 *
 * The mechanism says what it needs (struct sasl_request) and this file
 * answers: passwords go to the verify pool with the client's address (the
 * pool applies the entry's policy), SCRAM keys and CRAM-MD5 secrets are
 * looked up on the ring thread where the user back-end allows it
 * (lookup_nonblocking, the in-memory passwd-file), and the policy question
 * a right proof asks (SASL_REQ_POLICY) is auth_entry_policy() on a fresh
 * lookup. A master's authzid goes to the daemon's authorize hook. The
 * protocol words every challenge and answer (struct login_proto).
 *
 * Must never: offer or accept a password before TLS on an untrusted
 * listener, tell an unknown user from a wrong password, or log a
 * password, a SASL payload or key material.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/pool.h"
#include "core/tls.h"
#include "login/login_private.h"

#define CBIND_LEN 32 /* RFC 9266 tls-exporter */

/* A password on the verify pool, answered through the worker's outbox. */
struct verify_job {
	struct pool_job base;
	struct login_worker *w;
	enum auth_status status;
	enum auth_reason reason;
	uint32_t wait_ms; /* the back-end's delay hint on a failure */
	char host[262];	  /* the answer's route (host=), "" for none */
	bool sasl;	  /* answer the SASL exchange, not a plain login */
	char user[AUTH_USER_MAX + 1];
	char authzid[AUTH_USER_MAX + 1]; /* "" when none */
};

static unsigned mech_flags(struct login_session *s, uint8_t cb[CBIND_LEN]);
static bool cert_identity(struct login_session *s, char *out, size_t cap);
static void next(struct login_session *s, enum sasl_rc rc);
static void request(struct login_session *s);
static void sasl_failed(struct login_session *s);
static enum sasl_rc scram_keys(struct login_session *s, const char *user);
static enum sasl_rc cram_secret(struct login_session *s, const char *user);
static enum sasl_rc policy(struct login_session *s, const char *user);
static int entry_policy(struct login_session *s, const char *user,
    enum auth_reason *r);
static int take_user(struct login_session *s, const char *user, size_t ulen,
    char *name);
static enum auth_lookup stored_entry(struct login_session *s, const char *user,
    struct auth_entry **e_r);
static const struct auth_login_info *login_info(const struct login_session *s,
    struct auth_login_info *info);
static void verify(struct login_session *s, const char *user,
    const char *authzid, const char *password, size_t pwlen, bool sasl);
static void verify_answer(struct loop *l, uint64_t sid, struct auth_result *res,
    void *ctx);
static void verify_done(struct pool_job *pj);
static void verify_finish(struct login_session *s, struct verify_job *job);
static enum sasl_verdict authorize(struct login_session *s,
    const struct verify_job *job);

/* ---- what this session may use --------------------------------------- */

/*
 * enum sasl_flags for the session. Channel binding only where the TLS is
 * ours and is TLS 1.3: RFC 9266 allows tls-exporter on TLS 1.2 only with
 * the extended master secret, which we do not check.
 */
static unsigned
mech_flags(struct login_session *s, uint8_t cb[CBIND_LEN])
{
	struct tls_conn *t = s->c ? conn_tls(s->c) : NULL;
	const char *v;
	unsigned f;

	if (!login_secure(s))
		return 0;
	f = SASL_F_SECURE;
	if (s->tls && t != NULL && tls_conn_established(t) &&
	    (v = tls_conn_version(t)) != NULL && strcmp(v, "TLSv1.3") == 0 &&
	    tls_conn_exporter(t, cb) == 0)
		f |= SASL_F_CBIND;
	if (s->li->set->legacy_mechanisms)
		f |= SASL_F_LEGACY;
	if (cert_identity(s, NULL, 0))
		f |= SASL_F_EXTERNAL;
	return f;
}

/* A verified client certificate on our own TLS (the listener's
 * tls.client_ca_file): its CN is the identity EXTERNAL logs in as. With
 * out NULL only says whether there is one. */
static bool
cert_identity(struct login_session *s, char *out, size_t cap)
{
	struct tls_conn *t = s->c ? conn_tls(s->c) : NULL;
	char buf[AUTH_USER_MAX + 1];

	if (!s->tls || t == NULL || !tls_conn_established(t))
		return false;
	if (out == NULL) {
		out = buf;
		cap = sizeof(buf);
	}
	return tls_conn_peer_cn(t, out, cap) > 0;
}

size_t
login_mechanisms(struct login_session *s, const char **names, size_t max)
{
	uint8_t cb[CBIND_LEN];
	size_t n = sasl_mech_list(mech_flags(s, cb), names, max);

	OPENSSL_cleanse(cb, sizeof(cb));
	return n < max ? n : max;
}

bool
login_sasl_active(const struct login_session *s)
{
	return s->sasl != NULL;
}

/* ---- the exchange ---------------------------------------------------- */

void
login_sasl_start(struct login_session *s, const char *name, size_t nlen,
    const char *ir, size_t irlen)
{
	struct sasl_server_conf conf = { 0 };
	const struct login_settings *set = s->li->set;
	const struct sasl_mech *mech;
	uint8_t cb[CBIND_LEN];

	conf.flags = mech_flags(s, cb);
	if (s->li->hooks->authorize != NULL)
		conf.flags |= SASL_F_AUTHZID;
	if (conf.flags & SASL_F_CBIND) {
		conf.cbind = cb;
		conf.cbind_len = sizeof(cb);
	}
	if ((conf.flags & SASL_F_EXTERNAL) &&
	    cert_identity(s, s->cert_id, sizeof(s->cert_id)))
		conf.external_id = s->cert_id;
	conf.secret = set->scram_secret;
	conf.secret_len = set->scram_secret_len;
	mech = sasl_mech_find(name, nlen, conf.flags);
	sasl_server_free(&s->sasl);
	if (mech == NULL) {
		OPENSSL_cleanse(cb, sizeof(cb));
		login_failed(s,
		    login_secure(s) ? LOGIN_FAIL_MECH : LOGIN_FAIL_PRIVACY);
		return;
	}
	snprintf(s->mech, sizeof(s->mech), "%s", sasl_mech_name(mech));
	s->sasl = sasl_server_new(mech, &conf);
	OPENSSL_cleanse(cb, sizeof(cb));
	if (s->sasl == NULL) {
		login_failed(s, LOGIN_FAIL_TEMP);
		return;
	}
	next(s, sasl_server_start64(s->sasl, ir, irlen));
}

void
login_sasl_response(struct login_session *s, const char *line, size_t len)
{
	if (s->sasl == NULL)
		return;
	next(s, sasl_server_step64(s->sasl, line, len));
}

void
login_sasl_abort(struct login_session *s)
{
	if (s->sasl == NULL)
		return;
	login_log_failed(s, "response_too_long");
	login_failed(s, LOGIN_FAIL_SYNTAX);
}

static void
next(struct login_session *s, enum sasl_rc rc)
{
	char chal[SASL_CHALLENGE64_MAX];
	size_t n;

	switch (rc) {
	case SASL_CONTINUE:
		if (sasl_server_challenge64(s->sasl, chal, sizeof(chal), &n) ==
		    -1) {
			login_failed(s, LOGIN_FAIL_TEMP);
			return;
		}
		s->li->proto->sasl_challenge(s, chal, n);
		return;
	case SASL_VERIFY:
		request(s);
		return;
	case SASL_SUCCESS:
		if (strcmp(s->mech, "EXTERNAL") == 0) {
			/* the certificate proved the name; the user must
			 * exist and its policy let it in */
			login_assert_user(s, s->cert_id, strlen(s->cert_id),
			    "EXTERNAL");
			return;
		}
		login_succeeded(s, sasl_server_user(s->sasl),
		    sasl_server_authcid(s->sasl));
		return;
	case SASL_FAIL:
	default:
		sasl_failed(s);
		return;
	}
}

/* What the mechanism needs: a password goes to the pool, lookups and
 * the policy are answered here. */
static void
request(struct login_session *s)
{
	const struct sasl_request *req = sasl_server_request(s->sasl);

	if (req == NULL) {
		login_failed(s, LOGIN_FAIL_TEMP);
		return;
	}
	snprintf(s->user, sizeof(s->user), "%s", req->authcid);
	switch (req->kind) {
	case SASL_REQ_PASSWORD:
		verify(s, req->authcid, req->authzid, req->password,
		    req->password_len, true);
		return;
	case SASL_REQ_SCRAM_KEYS:
		next(s, scram_keys(s, req->authcid));
		return;
	case SASL_REQ_SECRET:
		next(s, cram_secret(s, req->authcid));
		return;
	case SASL_REQ_POLICY:
		next(s, policy(s, req->authcid));
		return;
	}
	login_failed(s, LOGIN_FAIL_TEMP);
}

static void
sasl_failed(struct login_session *s)
{
	enum sasl_error e = sasl_server_error(s->sasl);

	switch (e) {
	case SASL_E_CANCELLED:
		login_failed(s, LOGIN_FAIL_CANCELLED);
		return;
	case SASL_E_MALFORMED:
	case SASL_E_TOOLONG:
		login_log_failed(s, sasl_error_name(e));
		login_failed(s, LOGIN_FAIL_SYNTAX);
		return;
	case SASL_E_CREDENTIALS:
		login_log_auth(s, sasl_server_authcid(s->sasl), false,
		    s->reason ? s->reason : AUTH_R_PASSWORD);
		login_failed(s, LOGIN_FAIL_CREDENTIALS);
		return;
	case SASL_E_AUTHZID:
		login_failed(s, LOGIN_FAIL_AUTHZID);
		return;
	case SASL_E_TEMPFAIL:
		login_failed(s, LOGIN_FAIL_TEMP);
		return;
	default:
		login_log_failed(s, sasl_error_name(e));
		login_failed(s, LOGIN_FAIL_CREDENTIALS);
		return;
	}
}

/* ---- lookups on the ring thread -------------------------------------- */

/*
 * The user's entry for a mechanism that needs its stored secret, looked
 * up here only where the back-end never blocks (the in-memory
 * passwd-file); any other back-end is a temporary failure for SCRAM and
 * CRAM-MD5. Sets s->reason for NOTFOUND and TEMPFAIL.
 */
static enum auth_lookup
stored_entry(struct login_session *s, const char *user, struct auth_entry **e_r)
{
	struct auth_backend *users = s->w->users;
	const char *err = NULL;
	enum auth_lookup r = AUTH_LOOKUP_TEMPFAIL;

	*e_r = NULL;
	if (users != NULL && users->ops->lookup_nonblocking)
		r = auth_lookup(users, user, e_r, &err);
	if (r == AUTH_LOOKUP_NOTFOUND)
		s->reason = AUTH_R_UNKNOWN;
	else if (r != AUTH_LOOKUP_FOUND)
		s->reason = AUTH_R_BACKEND;
	return r;
}

/* SCRAM-SHA-256 keys. Unknown users and users stored with another scheme
 * answer NULL: the exchange goes on with fake keys and fails at the end
 * like a wrong password. */
static enum sasl_rc
scram_keys(struct login_session *s, const char *user)
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
		s->reason = ok ? AUTH_R_PASSWORD : AUTH_R_NOPASS;
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

/* CRAM-MD5's plaintext-equivalent secret: only a {PLAIN} password (the
 * daemon allows CRAM-MD5 only where such passwords are allowed). */
static enum sasl_rc
cram_secret(struct login_session *s, const char *user)
{
	struct auth_entry *e = NULL;
	const char *err = NULL, *secret = NULL;
	enum auth_scheme scheme;
	enum sasl_rc rc;

	switch (stored_entry(s, user, &e)) {
	case AUTH_LOOKUP_FOUND:
		if (e->password != NULL && e->password[0] == '{' &&
		    auth_scheme_of(e->password, &scheme, &err) == 0 &&
		    scheme == AUTH_SCHEME_PLAIN)
			secret = strchr(e->password, '}') + 1;
		s->reason = secret ? AUTH_R_PASSWORD : AUTH_R_NOPASS;
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

/* The stored entry's policy for user from this client in *r
 * (AUTH_R_UNKNOWN when there is no such user): 0, or -1 when the
 * back-end failed. */
static int
entry_policy(struct login_session *s, const char *user, enum auth_reason *r)
{
	struct auth_entry *e = NULL;

	switch (stored_entry(s, user, &e)) {
	case AUTH_LOOKUP_FOUND:
		*r = auth_entry_policy(e, conn_peer_addr(s->c, NULL));
		auth_entry_unref(&e);
		return 0;
	case AUTH_LOOKUP_NOTFOUND:
		*r = AUTH_R_UNKNOWN;
		return 0;
	default:
		return -1;
	}
}

/* A right proof or digest, before anything confirms it: the entry's
 * policy, looked up again so that a reload in between applies. */
static enum sasl_rc
policy(struct login_session *s, const char *user)
{
	enum auth_reason r;

	if (entry_policy(s, user, &r) == -1)
		return sasl_server_verified(s->sasl, SASL_V_TEMPFAIL);
	s->reason = r;
	if (r == AUTH_R_NONE)
		login_log_auth(s, user, true, r);
	return sasl_server_verified(s->sasl,
	    r == AUTH_R_NONE ? SASL_V_OK : SASL_V_FAIL);
}

/* ---- a user a trusted front end vouches for ---------------------------- */

/* user[0..ulen) as a C string in name (AUTH_USER_MAX + 1 bytes) and in
 * s->user: 0, or -1 with the login failed (empty, too long or holding a
 * NUL). */
static int
take_user(struct login_session *s, const char *user, size_t ulen, char *name)
{
	if (ulen == 0 || ulen > AUTH_USER_MAX ||
	    memchr(user, '\0', ulen) != NULL) {
		login_failed(s, LOGIN_FAIL_CREDENTIALS);
		return -1;
	}
	memcpy(name, user, ulen);
	name[ulen] = '\0';
	snprintf(s->user, sizeof(s->user), "%s", name);
	return 0;
}

void
login_assert_user(struct login_session *s, const char *user, size_t ulen,
    const char *mech)
{
	char name[AUTH_USER_MAX + 1];
	enum auth_reason r = AUTH_R_NONE;

	snprintf(s->mech, sizeof(s->mech), "%s", mech);
	if (take_user(s, user, ulen, name) == -1)
		return;
	/* a back-end that may block is asked later, off the loop, by the
	 * daemon's own readiness step */
	if (s->w->users != NULL && s->w->users->ops->lookup_nonblocking &&
	    entry_policy(s, name, &r) == -1) {
		login_log_auth(s, name, false, AUTH_R_BACKEND);
		login_failed(s, LOGIN_FAIL_TEMP);
		return;
	}
	s->reason = r;
	login_log_auth(s, name, r == AUTH_R_NONE, r);
	if (r != AUTH_R_NONE) {
		login_failed(s, LOGIN_FAIL_CREDENTIALS);
		return;
	}
	login_succeeded(s, name, name);
}

/* ---- POP3 APOP ------------------------------------------------------- */

void
login_apop(struct login_session *s, const char *user, size_t ulen,
    const char *ts, const char *digest, size_t dlen)
{
	char name[AUTH_USER_MAX + 1];
	struct auth_entry *e = NULL;
	const char *err = NULL, *secret = NULL;
	enum auth_scheme scheme;
	enum auth_reason r = AUTH_R_PASSWORD;
	bool ok = false;

	snprintf(s->mech, sizeof(s->mech), "%s", "APOP");
	if (!s->li->set->legacy_mechanisms || ts == NULL || ts[0] == '\0') {
		login_failed(s, LOGIN_FAIL_MECH);
		return;
	}
	if (!login_secure(s)) {
		login_failed(s, LOGIN_FAIL_PRIVACY);
		return;
	}
	if (ulen == 0 || ulen > AUTH_USER_MAX ||
	    memchr(user, '\0', ulen) != NULL) {
		login_failed(s, LOGIN_FAIL_CREDENTIALS);
		return;
	}
	memcpy(name, user, ulen);
	name[ulen] = '\0';
	snprintf(s->user, sizeof(s->user), "%s", name);
	switch (stored_entry(s, name, &e)) {
	case AUTH_LOOKUP_FOUND:
		if (e->password != NULL && e->password[0] == '{' &&
		    auth_scheme_of(e->password, &scheme, &err) == 0 &&
		    scheme == AUTH_SCHEME_PLAIN)
			secret = strchr(e->password, '}') + 1;
		ok = secret != NULL &&
		    sasl_legacy_apop_verify(ts, strlen(ts), secret,
			strlen(secret), digest, dlen);
		r = secret == NULL ? AUTH_R_NOPASS :
		    ok ? auth_entry_policy(e, conn_peer_addr(s->c, NULL)) :
			 AUTH_R_PASSWORD;
		auth_entry_unref(&e);
		break;
	case AUTH_LOOKUP_NOTFOUND:
		r = AUTH_R_UNKNOWN;
		break;
	default:
		login_log_auth(s, name, false, AUTH_R_BACKEND);
		login_failed(s, LOGIN_FAIL_TEMP);
		return;
	}
	ok = ok && r == AUTH_R_NONE;
	s->reason = r;
	login_log_auth(s, name, ok, r);
	if (!ok) {
		login_failed(s, LOGIN_FAIL_CREDENTIALS);
		return;
	}
	login_succeeded(s, name, name);
}

/* ---- passwords on the verify pool ------------------------------------ */

void
login_password(struct login_session *s, const char *user, size_t ulen,
    const char *password, size_t plen, const char *mech)
{
	char name[AUTH_USER_MAX + 1];

	snprintf(s->mech, sizeof(s->mech), "%s", mech);
	if (!login_secure(s)) {
		login_failed(s, LOGIN_FAIL_PRIVACY);
		return;
	}
	if (plen > AUTH_PASSWORD_MAX) {
		login_failed(s, LOGIN_FAIL_CREDENTIALS);
		return;
	}
	if (take_user(s, user, ulen, name) == -1)
		return;
	verify(s, name, "", password, plen, false);
}

static void
verify(struct login_session *s, const char *user, const char *authzid,
    const char *password, size_t pwlen, bool sasl)
{
	struct verify_job *job = calloc(1, sizeof(*job));
	struct auth_login_info info;

	if (job == NULL) {
		login_failed(s, LOGIN_FAIL_TEMP);
		return;
	}
	job->base.done = verify_done;
	job->base.sid = s->sid;
	job->w = s->w;
	job->sasl = sasl;
	snprintf(job->user, sizeof(job->user), "%s", user);
	snprintf(job->authzid, sizeof(job->authzid), "%s", authzid);
	s->state = LS_VERIFY;
	s->verifying = true;
	login_flow(s);
	pool_outbox_hold(s->w->outbox, &job->base);
	if (s->li->hooks->blocked != NULL && s->li->hooks->blocked(s)) {
		/* a known-blocked source: its answer is a wrong password's
		 * whatever it sent, so nothing is hashed */
		job->status = AUTH_FAIL;
		job->reason = AUTH_R_PASSWORD;
		pool_outbox_complete(&job->base);
	} else if (s->w->verify == NULL ||
	    auth_pool_submit_login(s->w->verify, NULL, s->sid, user, password,
		pwlen, conn_peer_addr(s->c, NULL), login_info(s, &info),
		verify_answer, job) == -1) {
		job->status = AUTH_TEMPFAIL;
		job->reason = AUTH_R_OVERFLOW;
		pool_outbox_complete(&job->base);
	}
}

/* What the HTTP hook is told of this login (nginx's Auth-Protocol names:
 * imap, pop3, smtp). */
static const struct auth_login_info *
login_info(const struct login_session *s, struct auth_login_info *info)
{
	const char *name = s->li->proto->name;

	memset(info, 0, sizeof(*info));
	info->protocol = strncmp(name, "imap", 4) == 0 ? "imap" :
	    strncmp(name, "pop3", 4) == 0	       ? "pop3" :
							 "smtp";
	info->attempt = s->fails + 1;
	info->helo = s->helo[0] != '\0' ? s->helo : NULL;
	return info;
}

/* On a verify thread (or inside auth_pool_submit()): the answer goes to
 * the session's loop through the outbox. */
static void
verify_answer(struct loop *l, uint64_t sid, struct auth_result *res, void *ctx)
{
	struct verify_job *job = ctx;

	(void)l;
	(void)sid;
	job->status = res->status;
	job->reason = res->reason;
	job->wait_ms = res->wait_ms;
	if (res->status == AUTH_OK && res->entry != NULL &&
	    res->entry->host != NULL)
		snprintf(job->host, sizeof(job->host), "%s", res->entry->host);
	pool_outbox_complete(&job->base);
}

/* On the loop (or when the outbox closes): a session that went meanwhile
 * is a husk waiting for this; free both. */
static void
verify_done(struct pool_job *pj)
{
	struct verify_job *job = (struct verify_job *)pj;
	struct login_session *s = login_session_find(job->w, pj->sid);

	if (s == NULL) {
		free(job);
		return;
	}
	s->verifying = false;
	login_call_begin(s);
	if (!s->gone)
		verify_finish(s, job);
	free(job);
	login_call_end(s); /* frees a husk */
}

static void
verify_finish(struct login_session *s, struct verify_job *job)
{
	enum sasl_verdict v;

	s->state = LS_ACTIVE;
	s->reason = job->reason;
	s->wait_ms = job->status == AUTH_FAIL ? job->wait_ms : 0;
	snprintf(s->auth_host, sizeof(s->auth_host), "%s", job->host);
	if (job->status != AUTH_OK || !job->sasl)
		login_log_auth(s, job->user, job->status == AUTH_OK,
		    job->reason);
	if (job->sasl) {
		if (s->sasl == NULL)
			return;
		v = job->status == AUTH_OK	 ? authorize(s, job) :
		    job->status == AUTH_TEMPFAIL ? SASL_V_TEMPFAIL :
						   SASL_V_FAIL;
		if (v == SASL_V_OK)
			login_log_auth(s, job->user, true, job->reason);
		next(s, sasl_server_verified(s->sasl, v));
	} else if (job->status == AUTH_OK) {
		login_succeeded(s, job->user, job->user);
	} else {
		login_failed(s,
		    job->status == AUTH_TEMPFAIL ? LOGIN_FAIL_TEMP :
						   LOGIN_FAIL_CREDENTIALS);
	}
	login_flow(s);
}

/* The password of job->user was right. With an authzid the daemon says
 * whether job->user may act as it. */
static enum sasl_verdict
authorize(struct login_session *s, const struct verify_job *job)
{
	if (job->authzid[0] == '\0' || strcmp(job->authzid, job->user) == 0)
		return SASL_V_OK;
	if (s->li->hooks->authorize == NULL)
		return SASL_V_AUTHZID;
	return s->li->hooks->authorize(s, job->user, job->authzid);
}
