/*
 * sasl.c - the SASL mechanism table and the session every mechanism
 * shares (see sasl.h).
 *
 * The outer state machine lives here: INIT -> RESPONSE <-> VERIFY ->
 * SUCCESS | FAIL. A call that does not fit the current state fails the
 * session (SASL_E_STATE) rather than guessing, so a confused caller can
 * never turn a half-finished exchange into a login. The mechanisms
 * (sasl_<mech>.c) only parse and decide; identities, limits, the request
 * to the caller and the wiping of secrets are done once, here.
 *
 * Relies on OpenSSL for the CSPRNG and OPENSSL_cleanse(). Never: logs,
 * blocks, verifies a password itself, or keeps a password past the answer
 * to the request that needed it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/sasl.h"
#include "auth/sasl_private.h"
#include "proto/base64.h"

static const struct sasl_mech mechs[SASL_MECH_MAX] = {
	{ "SCRAM-SHA-256-PLUS", SASL_MECH_SCRAM_SHA_256_PLUS,
	    SASL_F_SECURE | SASL_F_CBIND, false, &sasl_scram_ops },
	{ "SCRAM-SHA-256", SASL_MECH_SCRAM_SHA_256, SASL_F_SECURE, false,
	    &sasl_scram_ops },
	{ "EXTERNAL", SASL_MECH_EXTERNAL, SASL_F_SECURE | SASL_F_EXTERNAL,
	    false, &sasl_external_ops },
	{ "PLAIN", SASL_MECH_PLAIN, SASL_F_SECURE, false, &sasl_plain_ops },
	{ "LOGIN", SASL_MECH_LOGIN, SASL_F_SECURE, false, &sasl_login_ops },
	{ "CRAM-MD5", SASL_MECH_CRAM_MD5, SASL_F_SECURE | SASL_F_LEGACY, true,
	    &sasl_cram_ops },
};

static const char *const error_names[SASL_E_MAX] = {
	[SASL_E_NONE] = "none",
	[SASL_E_MALFORMED] = "malformed",
	[SASL_E_CANCELLED] = "cancelled",
	[SASL_E_TOOLONG] = "too_long",
	[SASL_E_CREDENTIALS] = "credentials",
	[SASL_E_AUTHZID] = "authzid_refused",
	[SASL_E_CBIND] = "channel_binding",
	[SASL_E_NOIDENTITY] = "no_identity",
	[SASL_E_TEMPFAIL] = "tempfail",
	[SASL_E_STATE] = "state",
	[SASL_E_INTERNAL] = "internal",
};

/* conf checks and copies */
static int conf_copy(struct sasl_server *s, const struct sasl_mech *m,
    const struct sasl_server_conf *conf);
static int copy_str(char *dst, size_t cap, const char *src);

/* secrets */
static void wipe_credentials(struct sasl_server *s);
static void default_secret_init(void);

/* text */
static size_t utf8_seq(const unsigned char *p, size_t left, uint32_t *cp_r);

static pthread_once_t default_secret_once = PTHREAD_ONCE_INIT;
static uint8_t default_secret[32];
static int default_secret_ok;

/* ---- mechanism table ---------------------------------------------------- */

const struct sasl_mech *
sasl_mech_find(const char *name, size_t len, unsigned flags)
{
	for (size_t i = 0; i < SASL_MECH_MAX; i++) {
		const struct sasl_mech *m = &mechs[i];

		if (strlen(m->name) != len ||
		    strncasecmp(m->name, name, len) != 0)
			continue;
		return (flags & m->needs) == m->needs ? m : NULL;
	}
	return NULL;
}

const struct sasl_mech *
sasl_mech_get(enum sasl_mech_id id)
{
	if ((unsigned)id >= SASL_MECH_MAX)
		return NULL;
	return &mechs[id];
}

const char *
sasl_mech_name(const struct sasl_mech *m)
{
	return m->name;
}

enum sasl_mech_id
sasl_mech_id(const struct sasl_mech *m)
{
	return m->id;
}

size_t
sasl_mech_list(unsigned flags, const char **names, size_t max)
{
	size_t n = 0;

	/* The table is in order of preference already. */
	for (size_t i = 0; i < SASL_MECH_MAX; i++) {
		if ((flags & mechs[i].needs) != mechs[i].needs)
			continue;
		if (n < max)
			names[n] = mechs[i].name;
		n++;
	}
	return n;
}

const char *
sasl_error_name(enum sasl_error e)
{
	if ((unsigned)e >= SASL_E_MAX)
		return "unknown";
	return error_names[e];
}

/* ---- sessions ------------------------------------------------------------ */

struct sasl_server *
sasl_server_new(const struct sasl_mech *m, const struct sasl_server_conf *conf)
{
	struct sasl_server *s;

	if (m == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->mech = m;
	if (conf_copy(s, m, conf) == -1)
		goto fail;
	s->req.authcid = s->authcid;
	s->req.authzid = s->authzid;
	return s;
fail:
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	return NULL;
}

void
sasl_server_free(struct sasl_server **sp)
{
	struct sasl_server *s;

	if (sp == NULL || (s = *sp) == NULL)
		return;
	if (s->mech->ops->wipe != NULL)
		s->mech->ops->wipe(s);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	*sp = NULL;
}

enum sasl_rc
sasl_server_start(struct sasl_server *s, const void *ir, size_t len)
{
	if (s->state != SASL_S_INIT)
		return sasl_fail(s, SASL_E_STATE);
	if (ir == NULL)
		return s->mech->ops->begin(s);
	/* The server speaks first in CRAM-MD5: there is nothing to answer. */
	if (s->mech->server_first)
		return sasl_fail(s, SASL_E_MALFORMED);
	if (len > SASL_RESPONSE_MAX)
		return sasl_fail(s, SASL_E_TOOLONG);
	s->state = SASL_S_RESPONSE;
	return s->mech->ops->step(s, ir, len);
}

enum sasl_rc
sasl_server_step(struct sasl_server *s, const void *resp, size_t len)
{
	if (s->state != SASL_S_RESPONSE)
		return sasl_fail(s, SASL_E_STATE);
	if (len > SASL_RESPONSE_MAX)
		return sasl_fail(s, SASL_E_TOOLONG);
	return s->mech->ops->step(s, resp, len);
}

enum sasl_rc
sasl_server_start64(struct sasl_server *s, const char *line, size_t len)
{
	uint8_t raw[SASL_RESPONSE_MAX];
	size_t n;
	enum sasl_rc rc;

	if (line == NULL)
		return sasl_server_start(s, NULL, 0);
	if (s->state != SASL_S_INIT)
		return sasl_fail(s, SASL_E_STATE);
	if (len == 1 && line[0] == '*')
		return sasl_fail(s, SASL_E_CANCELLED);
	/* "=" is the empty initial response (an empty line would be no
	 * response at all in most protocols, but decodes to empty too). */
	if (len == 1 && line[0] == '=')
		return sasl_server_start(s, "", 0);
	if (len > SASL_LINE_MAX)
		return sasl_fail(s, SASL_E_TOOLONG);
	if (base64_decode(line, len, raw, sizeof(raw), &n, 0) != BASE64_OK)
		return sasl_fail(s, SASL_E_MALFORMED);
	rc = sasl_server_start(s, raw, n);
	OPENSSL_cleanse(raw, n);
	return rc;
}

enum sasl_rc
sasl_server_step64(struct sasl_server *s, const char *line, size_t len)
{
	uint8_t raw[SASL_RESPONSE_MAX];
	size_t n;
	enum sasl_rc rc;

	if (s->state != SASL_S_RESPONSE)
		return sasl_fail(s, SASL_E_STATE);
	if (len == 1 && line[0] == '*')
		return sasl_fail(s, SASL_E_CANCELLED);
	if (len > SASL_LINE_MAX)
		return sasl_fail(s, SASL_E_TOOLONG);
	if (base64_decode(line, len, raw, sizeof(raw), &n, 0) != BASE64_OK)
		return sasl_fail(s, SASL_E_MALFORMED);
	rc = sasl_server_step(s, raw, n);
	OPENSSL_cleanse(raw, n);
	return rc;
}

const uint8_t *
sasl_server_challenge(const struct sasl_server *s, size_t *len_r)
{
	static const uint8_t empty[1];

	if (s->chal == NULL ||
	    (s->state != SASL_S_RESPONSE && s->state != SASL_S_SUCCESS)) {
		*len_r = 0;
		return empty;
	}
	*len_r = s->chal_len;
	return s->chal;
}

int
sasl_server_challenge64(const struct sasl_server *s, char *dst, size_t cap,
    size_t *len_r)
{
	const uint8_t *p;
	size_t n;

	p = sasl_server_challenge(s, &n);
	return base64_encode(p, n, dst, cap, len_r);
}

const struct sasl_request *
sasl_server_request(const struct sasl_server *s)
{
	return s->state == SASL_S_VERIFY ? &s->req : NULL;
}

enum sasl_rc
sasl_server_verified(struct sasl_server *s, enum sasl_verdict v)
{
	if (s->state != SASL_S_VERIFY)
		return sasl_fail(s, SASL_E_STATE);
	switch (v) {
	case SASL_V_TEMPFAIL:
		return sasl_fail(s, SASL_E_TEMPFAIL);
	case SASL_V_AUTHZID:
		return sasl_fail(s, SASL_E_AUTHZID);
	case SASL_V_FAIL:
		/* A failed lookup is an unknown user: the mechanisms that
		 * look things up handle that themselves. */
		if (s->req.kind == SASL_REQ_SCRAM_KEYS)
			return sasl_server_scram_keys(s, NULL);
		if (s->req.kind == SASL_REQ_SECRET)
			return sasl_server_secret(s, NULL, 0);
		return sasl_fail(s, SASL_E_CREDENTIALS);
	case SASL_V_OK:
		if (s->req.kind == SASL_REQ_POLICY &&
		    s->mech->ops->allowed != NULL)
			return s->mech->ops->allowed(s);
		if (s->req.kind != SASL_REQ_PASSWORD)
			return sasl_fail(s, SASL_E_STATE);
		return sasl_success(s);
	}
	return sasl_fail(s, SASL_E_STATE);
}

const char *
sasl_server_user(const struct sasl_server *s)
{
	if (s->state != SASL_S_SUCCESS)
		return NULL;
	return s->authzid[0] != '\0' ? s->authzid : s->authcid;
}

const char *
sasl_server_authcid(const struct sasl_server *s)
{
	return s->authcid;
}

const char *
sasl_server_authzid(const struct sasl_server *s)
{
	return s->authzid;
}

enum sasl_error
sasl_server_error(const struct sasl_server *s)
{
	return s->error;
}

const struct sasl_mech *
sasl_server_mech(const struct sasl_server *s)
{
	return s->mech;
}

int
sasl_server_set_nonce(struct sasl_server *s, const char *p, size_t len)
{
	if (s->state != SASL_S_INIT || len == 0 || len > SASL_NONCE_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		/* Printable and never ',' so it is a valid SCRAM nonce. */
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return -1;
	}
	memcpy(s->nonce, p, len);
	s->nonce[len] = '\0';
	s->nonce_len = len;
	return 0;
}

/* ---- for the mechanisms -------------------------------------------------- */

enum sasl_rc
sasl_continue(struct sasl_server *s, const void *chal, size_t len)
{
	s->chal = chal;
	s->chal_len = len;
	s->state = SASL_S_RESPONSE;
	return SASL_CONTINUE;
}

enum sasl_rc
sasl_verify(struct sasl_server *s, enum sasl_req_kind kind)
{
	s->req.kind = kind;
	s->req.password = kind == SASL_REQ_PASSWORD ? s->password : NULL;
	s->req.password_len = kind == SASL_REQ_PASSWORD ? s->password_len : 0;
	s->chal = NULL;
	s->chal_len = 0;
	s->state = SASL_S_VERIFY;
	return SASL_VERIFY;
}

enum sasl_rc
sasl_success(struct sasl_server *s)
{
	wipe_credentials(s);
	/* Success data, if any, is set by the mechanism afterwards: a last
	 * challenge already sent must not go out twice. */
	s->chal = NULL;
	s->chal_len = 0;
	s->state = SASL_S_SUCCESS;
	s->error = SASL_E_NONE;
	return SASL_SUCCESS;
}

enum sasl_rc
sasl_fail(struct sasl_server *s, enum sasl_error e)
{
	wipe_credentials(s);
	s->chal = NULL;
	s->chal_len = 0;
	s->state = SASL_S_FAIL;
	/* Keep the first reason: a later out-of-turn call says nothing new. */
	if (s->error == SASL_E_NONE)
		s->error = e;
	return SASL_FAIL;
}

enum sasl_error
sasl_set_ids(struct sasl_server *s, const char *authcid, size_t authcid_len,
    const char *authzid, size_t authzid_len)
{
	if (authcid_len > SASL_NAME_MAX || authzid_len > SASL_NAME_MAX)
		return SASL_E_TOOLONG;
	if (authcid_len == 0 || !sasl_name_valid(authcid, authcid_len) ||
	    !sasl_name_valid(authzid, authzid_len))
		return SASL_E_MALFORMED;
	memcpy(s->authcid, authcid, authcid_len);
	s->authcid[authcid_len] = '\0';
	memcpy(s->authzid, authzid, authzid_len);
	s->authzid[authzid_len] = '\0';
	/* Acting as someone else is a master-user privilege the caller must
	 * grant explicitly; asking to be yourself is the same as not asking. */
	if (authzid_len > 0 && strcmp(s->authzid, s->authcid) == 0)
		s->authzid[0] = '\0';
	else if (authzid_len > 0 && !(s->flags & SASL_F_AUTHZID))
		return SASL_E_AUTHZID;
	return SASL_E_NONE;
}

enum sasl_error
sasl_set_password(struct sasl_server *s, const char *p, size_t len)
{
	if (len > SASL_NAME_MAX)
		return SASL_E_TOOLONG;
	if (len == 0 || memchr(p, '\0', len) != NULL)
		return SASL_E_MALFORMED;
	memcpy(s->password, p, len);
	s->password[len] = '\0';
	s->password_len = len;
	return SASL_E_NONE;
}

bool
sasl_utf8_valid(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	uint32_t cp;
	size_t n;

	for (size_t i = 0; i < len; i += n) {
		if ((n = utf8_seq(u + i, len - i, &cp)) == 0 || cp == 0)
			return false;
	}
	return true;
}

bool
sasl_name_valid(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	uint32_t cp;
	size_t n;

	for (size_t i = 0; i < len; i += n) {
		if ((n = utf8_seq(u + i, len - i, &cp)) == 0)
			return false;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return false;
	}
	return true;
}

int
sasl_random(void *p, size_t n)
{
	if (n > 0x7fffffff || RAND_bytes(p, (int)n) != 1)
		return -1;
	return 0;
}

const uint8_t *
sasl_default_secret(size_t *len_r)
{
	pthread_once(&default_secret_once, default_secret_init);
	if (!default_secret_ok)
		return NULL;
	*len_r = sizeof(default_secret);
	return default_secret;
}

/* ---- helpers ---------------------------------------------------------------
 */

/* Check conf against m and copy what the session keeps. 0 or -1. */
static int
conf_copy(struct sasl_server *s, const struct sasl_mech *m,
    const struct sasl_server_conf *conf)
{
	s->flags = conf->flags;
	/* Only PLAIN hands the authzid to a verifier that can refuse it;
	 * SCRAM and EXTERNAL succeed here, so they never act for others. */
	if (m->id != SASL_MECH_PLAIN)
		s->flags &= ~(unsigned)SASL_F_AUTHZID;
	if (conf->cbind_len > SASL_CBIND_MAX ||
	    (conf->cbind_len > 0 && conf->cbind == NULL))
		return -1;
	/* Offering channel binding without the data would let a -PLUS client
	 * bind to nothing, and turn every 'y' client into a "downgrade". */
	if ((conf->flags & SASL_F_CBIND) && conf->cbind_len == 0)
		return -1;
	if (m->id == SASL_MECH_SCRAM_SHA_256_PLUS &&
	    (!(conf->flags & SASL_F_CBIND) || conf->cbind_len == 0))
		return -1;
	if (conf->cbind_len > 0)
		memcpy(s->cbind, conf->cbind, conf->cbind_len);
	s->cbind_len = conf->cbind_len;
	if (conf->secret_len > SASL_SECRET_MAX ||
	    (conf->secret_len > 0 && conf->secret == NULL))
		return -1;
	if (conf->secret_len > 0)
		memcpy(s->secret, conf->secret, conf->secret_len);
	s->secret_len = conf->secret_len;
	s->fake_iter = conf->fake_iter != 0 ? conf->fake_iter : 4096;
	if (s->fake_iter > SASL_SCRAM_ITER_MAX)
		return -1;
	if (conf->external_id != NULL &&
	    (copy_str(s->external_id, sizeof(s->external_id),
		 conf->external_id) == -1 ||
		s->external_id[0] == '\0' ||
		!sasl_name_valid(s->external_id, strlen(s->external_id))))
		return -1;
	if (copy_str(s->hostname, sizeof(s->hostname),
		conf->hostname != NULL ? conf->hostname : "localhost") == -1)
		return -1;
	return 0;
}

/* Bounded string copy: -1 if src does not fit in cap with its NUL. */
static int
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap);

	if (n == cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* Passwords go as soon as the answer is in; identities stay for logs. */
static void
wipe_credentials(struct sasl_server *s)
{
	OPENSSL_cleanse(s->password, sizeof(s->password));
	s->password_len = 0;
	s->req.password = NULL;
	s->req.password_len = 0;
}

static void
default_secret_init(void)
{
	default_secret_ok = sasl_random(default_secret,
				sizeof(default_secret)) == 0;
}

/*
 * Decode one UTF-8 sequence at p (left bytes available): its length, or 0
 * if it is not well-formed (truncated, overlong, surrogate, > U+10FFFF).
 */
static size_t
utf8_seq(const unsigned char *p, size_t left, uint32_t *cp_r)
{
	uint32_t cp, min;
	size_t n;

	if (p[0] < 0x80) {
		*cp_r = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
		min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
		min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}
