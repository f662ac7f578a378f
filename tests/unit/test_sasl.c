/*
 * test_sasl.c - the SASL mechanisms: RFC 4616 PLAIN edge cases, LOGIN,
 * SCRAM-SHA-256 byte for byte against RFC 7677's example, wrong proofs and
 * unknown users failing alike, -PLUS channel binding and the 'y'
 * downgrade, malformed SCRAM attributes, EXTERNAL, CRAM-MD5 with RFC
 * 2195's example, APOP with RFC 1939's, the PLAIN client, stored-key
 * parsing, advertising policy and out-of-turn calls. Messages are also
 * fed truncated at every length, the analogue of split points for
 * mechanisms that take whole responses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/sasl.h"
#include "auth/sasl_private.h" /* to see that secrets are wiped */
#include "proto/base64.h"

#define SECURE SASL_F_SECURE

/* RFC 7677 section 3. */
#define R_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define R_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define R_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define R_CFIRST "n,,n=user,r=" R_CNONCE
#define R_SFIRST "r=" R_CNONCE R_SNONCE ",s=" R_SALT ",i=4096"
#define R_CFINAL                                                               \
	"c=biws,r=" R_CNONCE R_SNONCE                                          \
	",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define R_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static const uint8_t CBIND[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
	14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
	32 };

/* ---- helpers ------------------------------------------------------------- */

static struct sasl_server *
new_session(enum sasl_mech_id id, unsigned flags)
{
	struct sasl_server_conf conf = { .flags = flags | SECURE };
	struct sasl_server *s;

	if (flags & SASL_F_CBIND) {
		conf.cbind = CBIND;
		conf.cbind_len = sizeof(CBIND);
	}
	conf.secret = (const uint8_t *)"test secret";
	conf.secret_len = 11;
	s = sasl_server_new(sasl_mech_get(id), &conf);
	assert_non_null(s);
	return s;
}

static enum sasl_rc
step_str(struct sasl_server *s, const char *msg)
{
	return sasl_server_step(s, msg, strlen(msg));
}

static void
assert_challenge(struct sasl_server *s, const char *want)
{
	size_t len;
	const uint8_t *p = sasl_server_challenge(s, &len);

	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
}

/* Answer the policy question a right SCRAM proof or CRAM-MD5 digest asks
 * (SASL_REQ_POLICY) with `allow`; any other rc passes through. */
static enum sasl_rc
policy(struct sasl_server *s, enum sasl_rc rc, enum sasl_verdict allow)
{
	const struct sasl_request *req = sasl_server_request(s);

	if (rc != SASL_VERIFY)
		return rc;
	assert_non_null(req);
	assert_int_equal(req->kind, SASL_REQ_POLICY);
	assert_null(req->password);
	/* nothing has gone to the client yet */
	assert_challenge(s, "");
	return sasl_server_verified(s, allow);
}

/* A last client message whose proof is right, and the user allowed. */
static enum sasl_rc
step_allowed(struct sasl_server *s, const char *msg)
{
	return policy(s, step_str(s, msg), SASL_V_OK);
}

/* Keys for password, as ringgate-passwd would store them; the client key
 * too, for the test's own client. */
static void
derive(const char *pw, const uint8_t *salt, size_t salt_len, uint32_t iter,
    struct sasl_scram_keys *k, uint8_t client_key[32])
{
	uint8_t sp[32];
	unsigned len;

	memset(k, 0, sizeof(*k));
	k->iter = iter;
	k->salt_len = salt_len;
	memcpy(k->salt, salt, salt_len);
	assert_int_equal(PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt,
			     (int)salt_len, (int)iter, EVP_sha256(), 32, sp),
	    1);
	assert_non_null(HMAC(EVP_sha256(), sp, 32,
	    (const uint8_t *)"Client Key", 10, client_key, &len));
	SHA256(client_key, 32, k->stored_key);
	assert_non_null(HMAC(EVP_sha256(), sp, 32,
	    (const uint8_t *)"Server Key", 10, k->server_key, &len));
}

/* The RFC 7677 user's keys. */
static void
rfc7677_keys(struct sasl_scram_keys *k, uint8_t client_key[32])
{
	uint8_t salt[16];
	size_t n;

	assert_int_equal(
	    base64_decode(R_SALT, strlen(R_SALT), salt, sizeof(salt), &n, 0),
	    BASE64_OK);
	derive("pencil", salt, n, 4096, k, client_key);
}

/*
 * A SCRAM client's final message for the exchange so far: cfirst is the
 * whole client-first, sfirst what the server sent, cbdata the channel
 * binding data appended to the GS2 header (NULL: none). Writes the
 * expected "v=..." into want_v.
 */
static void
client_final(const char *cfirst, const char *sfirst, const uint8_t *cbdata,
    size_t cblen, const struct sasl_scram_keys *k, const uint8_t client_key[32],
    char *out, size_t cap, char *want_v)
{
	const char *bare = strstr(cfirst, "n=");
	size_t gs2_len = (size_t)(bare - cfirst);
	const char *nonce = sfirst + 2;
	size_t nonce_len = strcspn(nonce, ",");
	uint8_t cbin[512], sig[32], proof[32];
	char cb64[700], am[2048], p64[64], v64[64], wfp[1024];
	unsigned len;
	int n;

	memcpy(cbin, cfirst, gs2_len);
	if (cbdata != NULL)
		memcpy(cbin + gs2_len, cbdata, cblen);
	else
		cblen = 0;
	assert_int_equal(
	    base64_encode(cbin, gs2_len + cblen, cb64, sizeof(cb64), NULL), 0);
	n = snprintf(wfp, sizeof(wfp), "c=%s,r=%.*s", cb64, (int)nonce_len,
	    nonce);
	assert_true(n > 0 && (size_t)n < sizeof(wfp));
	n = snprintf(am, sizeof(am), "%s,%s,%s", bare, sfirst, wfp);
	assert_true(n > 0 && (size_t)n < sizeof(am));
	HMAC(EVP_sha256(), k->stored_key, 32, (uint8_t *)am, strlen(am), sig,
	    &len);
	for (int i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ sig[i];
	base64_encode(proof, 32, p64, sizeof(p64), NULL);
	n = snprintf(out, cap, "%s,p=%s", wfp, p64);
	assert_true(n > 0 && (size_t)n < cap);
	HMAC(EVP_sha256(), k->server_key, 32, (uint8_t *)am, strlen(am), sig,
	    &len);
	base64_encode(sig, 32, v64, sizeof(v64), NULL);
	sprintf(want_v, "v=%s", v64);
}

/* Run client-first to the server-first message; returns it (static). */
static const char *
scram_first(struct sasl_server *s, const char *cfirst,
    const struct sasl_scram_keys *k)
{
	static char sfirst[600];
	const struct sasl_request *req;
	const uint8_t *p;
	size_t len;

	assert_int_equal(sasl_server_start(s, cfirst, strlen(cfirst)),
	    SASL_VERIFY);
	req = sasl_server_request(s);
	assert_non_null(req);
	assert_int_equal(req->kind, SASL_REQ_SCRAM_KEYS);
	assert_null(req->password);
	assert_int_equal(sasl_server_scram_keys(s, k), SASL_CONTINUE);
	p = sasl_server_challenge(s, &len);
	assert_true(len < sizeof(sfirst));
	memcpy(sfirst, p, len);
	sfirst[len] = '\0';
	return sfirst;
}

/* ---- mechanism table ----------------------------------------------------- */

static void
test_mech_policy(void **state)
{
	const char *names[8];
	size_t n;

	assert_null(sasl_mech_find("PLAIN", 5, 0)); /* never before TLS */
	assert_non_null(sasl_mech_find("plain", 5, SECURE));
	assert_non_null(sasl_mech_find("Login", 5, SECURE));
	assert_null(sasl_mech_find("PLAIN2", 6, SECURE));
	assert_null(sasl_mech_find("PLAI", 4, SECURE));
	assert_null(sasl_mech_find("CRAM-MD5", 8, SECURE));
	assert_non_null(sasl_mech_find("CRAM-MD5", 8, SECURE | SASL_F_LEGACY));
	assert_null(sasl_mech_find("SCRAM-SHA-256-PLUS", 18, SECURE));
	assert_non_null(
	    sasl_mech_find("SCRAM-SHA-256-PLUS", 18, SECURE | SASL_F_CBIND));
	assert_null(sasl_mech_find("EXTERNAL", 8, SECURE));
	assert_non_null(
	    sasl_mech_find("EXTERNAL", 8, SECURE | SASL_F_EXTERNAL));

	assert_int_equal(sasl_mech_list(0, names, 8), 0);
	n = sasl_mech_list(SECURE, names, 8);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "SCRAM-SHA-256");
	assert_string_equal(names[1], "PLAIN");
	assert_string_equal(names[2], "LOGIN");
	n = sasl_mech_list(
	    SECURE | SASL_F_CBIND | SASL_F_LEGACY | SASL_F_EXTERNAL, names, 8);
	assert_int_equal(n, 6);
	assert_string_equal(names[0], "SCRAM-SHA-256-PLUS");
	assert_string_equal(names[5], "CRAM-MD5");
	/* a short array still reports the full count */
	assert_int_equal(sasl_mech_list(SECURE | SASL_F_CBIND, names, 1), 4);
	assert_string_equal(names[0], "SCRAM-SHA-256-PLUS");
}

static void
test_conf_checks(void **state)
{
	struct sasl_server_conf conf = { .flags = SECURE | SASL_F_CBIND };
	const struct sasl_mech *plus = sasl_mech_get(
	    SASL_MECH_SCRAM_SHA_256_PLUS);

	/* advertising channel binding without the data is refused */
	assert_null(sasl_server_new(plus, &conf));
	assert_null(
	    sasl_server_new(sasl_mech_get(SASL_MECH_SCRAM_SHA_256), &conf));
	conf.flags = SECURE;
	conf.cbind = CBIND;
	conf.cbind_len = 32;
	assert_null(sasl_server_new(plus, &conf));
	conf.cbind_len = SASL_CBIND_MAX + 1;
	conf.flags |= SASL_F_CBIND;
	assert_null(sasl_server_new(plus, &conf));
	conf.cbind_len = 32;
	conf.external_id = "";
	assert_null(sasl_server_new(plus, &conf));
	conf.external_id = "bad\nname";
	assert_null(sasl_server_new(plus, &conf));
	assert_null(sasl_mech_get(SASL_MECH_MAX));
	assert_string_equal(sasl_error_name(SASL_E_CBIND), "channel_binding");
	assert_string_equal(sasl_error_name(SASL_E_MAX), "unknown");
}

/* ---- PLAIN --------------------------------------------------------------- */

static void
test_plain_ok(void **state)
{
	struct sasl_server *s = new_session(SASL_MECH_PLAIN, 0);
	const struct sasl_request *req;

	assert_int_equal(sasl_server_start(s, "\0tim\0tanstaaf", 13),
	    SASL_VERIFY);
	req = sasl_server_request(s);
	assert_int_equal(req->kind, SASL_REQ_PASSWORD);
	assert_string_equal(req->authcid, "tim");
	assert_string_equal(req->authzid, "");
	assert_int_equal(req->password_len, 8);
	assert_memory_equal(req->password, "tanstaaf", 8);
	assert_null(sasl_server_user(s));
	assert_int_equal(sasl_server_verified(s, SASL_V_OK), SASL_SUCCESS);
	assert_string_equal(sasl_server_user(s), "tim");
	assert_null(sasl_server_request(s));
	/* the password went with the answer */
	for (size_t i = 0; i < sizeof(s->password); i++)
		assert_int_equal(s->password[i], 0);
	sasl_server_free(&s);
	assert_null(s);

	/* no initial response: an empty challenge, then the message */
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	assert_challenge(s, "");
	assert_int_equal(sasl_server_step(s, "\0tim\0pw", 7), SASL_VERIFY);
	assert_int_equal(sasl_server_verified(s, SASL_V_FAIL), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
	assert_null(sasl_server_user(s));
	sasl_server_free(&s);

	/* authzid equal to authcid is the same as none */
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, "tim\0tim\0pw", 10), SASL_VERIFY);
	assert_string_equal(sasl_server_request(s)->authzid, "");
	assert_int_equal(sasl_server_verified(s, SASL_V_TEMPFAIL), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_TEMPFAIL);
	sasl_server_free(&s);
	sasl_server_free(&s); /* NULL is fine */
}

static void
test_plain_authzid(void **state)
{
	struct sasl_server *s = new_session(SASL_MECH_PLAIN, 0);

	/* acting for someone else needs the switch */
	assert_int_equal(sasl_server_start(s, "bob\0master\0pw", 13),
	    SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_AUTHZID);
	sasl_server_free(&s);

	s = new_session(SASL_MECH_PLAIN, SASL_F_AUTHZID);
	assert_int_equal(sasl_server_start(s, "bob\0master\0pw", 13),
	    SASL_VERIFY);
	assert_string_equal(sasl_server_request(s)->authzid, "bob");
	assert_string_equal(sasl_server_request(s)->authcid, "master");
	assert_int_equal(sasl_server_verified(s, SASL_V_OK), SASL_SUCCESS);
	assert_string_equal(sasl_server_user(s), "bob");
	assert_string_equal(sasl_server_authcid(s), "master");
	sasl_server_free(&s);

	s = new_session(SASL_MECH_PLAIN, SASL_F_AUTHZID);
	assert_int_equal(sasl_server_start(s, "bob\0mallory\0pw", 14),
	    SASL_VERIFY);
	assert_int_equal(sasl_server_verified(s, SASL_V_AUTHZID), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_AUTHZID);
	sasl_server_free(&s);
}

static void
test_plain_malformed(void **state)
{
	static const struct {
		const char *msg;
		size_t len;
		enum sasl_error e;
	} cases[] = {
		{ "", 0, SASL_E_MALFORMED },
		{ "timpw", 5, SASL_E_MALFORMED },	 /* no NUL */
		{ "tim\0pw", 6, SASL_E_MALFORMED },	 /* one NUL */
		{ "\0tim\0pw\0", 8, SASL_E_MALFORMED },	 /* three NULs */
		{ "a\0tim\0p\0w", 9, SASL_E_MALFORMED }, /* NUL in passwd */
		{ "\0tim\0", 5, SASL_E_MALFORMED },	 /* empty passwd */
		{ "\0\0pw", 4, SASL_E_MALFORMED },	 /* empty authcid */
		{ "\0\0", 2, SASL_E_MALFORMED },
		{ "\0t\xffm\0pw", 7, SASL_E_MALFORMED },	/* not UTF-8 */
		{ "\0tim\0p\xc0\xafw", 8, SASL_E_MALFORMED },	/* overlong */
		{ "\0tim\0\xed\xa0\x80", 8, SASL_E_MALFORMED }, /* surrogate */
		{ "\0t\nim\0pw", 8, SASL_E_MALFORMED }, /* control in name */
		{ "\0t\xc2\x85m\0pw", 8, SASL_E_MALFORMED }, /* C1 NEL */
		{ "x\ty\0tim\0pw", 10, SASL_E_MALFORMED }, /* control authzid */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sasl_server *s = new_session(SASL_MECH_PLAIN, 0);

		assert_int_equal(
		    sasl_server_start(s, cases[i].msg, cases[i].len),
		    SASL_FAIL);
		assert_int_equal(sasl_server_error(s), cases[i].e);
		assert_null(sasl_server_request(s));
		sasl_server_free(&s);
	}
}

static void
test_plain_limits(void **state)
{
	char msg[SASL_RESPONSE_MAX + 2];
	struct sasl_server *s;
	size_t n = 0;

	/* 255 bytes each is fine (RFC 4616 minimum), 256 is not */
	msg[n++] = '\0';
	memset(msg + n, 'u', 255);
	n += 255;
	msg[n++] = '\0';
	memset(msg + n, 'p', 255);
	n += 255;
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, msg, n), SASL_VERIFY);
	assert_int_equal(strlen(sasl_server_request(s)->authcid), 255);
	sasl_server_free(&s);
	msg[n++] = 'p';
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, msg, n), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_TOOLONG);
	sasl_server_free(&s);
	memset(msg, 'a', sizeof(msg));
	memcpy(msg, "\0u\0", 3);
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, msg, SASL_RESPONSE_MAX + 1),
	    SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_TOOLONG);
	sasl_server_free(&s);
}

static void
test_plain_base64(void **state)
{
	struct sasl_server *s = new_session(SASL_MECH_PLAIN, 0);
	char line[SASL_LINE_MAX + 8];

	/* "\0tim\0tanstaaf" */
	assert_int_equal(sasl_server_start64(s, "AHRpbQB0YW5zdGFhZg==", 20),
	    SASL_VERIFY);
	assert_string_equal(sasl_server_request(s)->authcid, "tim");
	sasl_server_free(&s);

	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start64(s, NULL, 0), SASL_CONTINUE);
	assert_int_equal(sasl_server_step64(s, "*", 1), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CANCELLED);
	sasl_server_free(&s);

	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start64(s, "*", 1), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CANCELLED);
	sasl_server_free(&s);

	/* "=" is an empty initial response: not a valid PLAIN message */
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start64(s, "=", 1), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_MALFORMED);
	sasl_server_free(&s);

	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start64(s, NULL, 0), SASL_CONTINUE);
	assert_int_equal(sasl_server_step64(s, "AHRpbQB0YW5zdGFhZg", 18),
	    SASL_FAIL); /* unpadded */
	assert_int_equal(sasl_server_error(s), SASL_E_MALFORMED);
	sasl_server_free(&s);

	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start64(s, "AHRpbQB0 YW5zdGFhZg==", 21),
	    SASL_FAIL);
	sasl_server_free(&s);

	memset(line, 'A', sizeof(line));
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start64(s, line, SASL_LINE_MAX + 4),
	    SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_TOOLONG);
	sasl_server_free(&s);
}

/* Every truncation of a valid message is refused without a crash. */
static void
test_plain_truncations(void **state)
{
	static const char msg[] = "bob\0master\0secret";
	size_t full = sizeof(msg) - 1;

	for (size_t n = 0; n <= full; n++) {
		struct sasl_server *s = new_session(SASL_MECH_PLAIN,
		    SASL_F_AUTHZID);
		enum sasl_rc rc = sasl_server_start(s, msg, n);

		/* a cut password is still a (different) password */
		assert_int_equal(rc, n > 11 ? SASL_VERIFY : SASL_FAIL);
		sasl_server_free(&s);
	}
}

static void
test_plain_client(void **state)
{
	char out[SASL_CLIENT_PLAIN_MAX], big[300];
	struct sasl_server *s;
	const struct sasl_request *req;
	int n;

	n = sasl_client_plain("bob", "master", "secret", out);
	assert_int_equal(n, (int)strlen(out));
	assert_string_equal(out, "Ym9iAG1hc3RlcgBzZWNyZXQ=");
	n = sasl_client_plain(NULL, "tim", "tanstaaf", out);
	assert_string_equal(out, "AHRpbQB0YW5zdGFhZg==");

	/* what the client writes, the server reads */
	n = sasl_client_plain("bob", "master", "secret", out);
	s = new_session(SASL_MECH_PLAIN, SASL_F_AUTHZID);
	assert_int_equal(sasl_server_start64(s, out, (size_t)n), SASL_VERIFY);
	req = sasl_server_request(s);
	assert_string_equal(req->authzid, "bob");
	assert_string_equal(req->authcid, "master");
	assert_memory_equal(req->password, "secret", 6);
	sasl_server_free(&s);

	memset(big, 'x', sizeof(big));
	big[255] = '\0';
	assert_true(sasl_client_plain(big, big, big, out) > 0);
	assert_true(strlen(out) < SASL_CLIENT_PLAIN_MAX);
	big[255] = 'x';
	big[256] = '\0';
	assert_int_equal(sasl_client_plain(NULL, big, "pw", out), -1);
	assert_int_equal(sasl_client_plain(big, "u", "pw", out), -1);
	assert_int_equal(sasl_client_plain(NULL, "u", big, out), -1);
	assert_int_equal(sasl_client_plain(NULL, "", "pw", out), -1);
	assert_int_equal(sasl_client_plain(NULL, "u", "", out), -1);
}

/* ---- LOGIN --------------------------------------------------------------- */

static void
test_login(void **state)
{
	struct sasl_server *s = new_session(SASL_MECH_LOGIN, 0);
	const struct sasl_request *req;

	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	assert_challenge(s, "Username:");
	assert_int_equal(step_str(s, "tim"), SASL_CONTINUE);
	assert_challenge(s, "Password:");
	assert_int_equal(step_str(s, "tanstaaf"), SASL_VERIFY);
	req = sasl_server_request(s);
	assert_int_equal(req->kind, SASL_REQ_PASSWORD);
	assert_string_equal(req->authcid, "tim");
	assert_string_equal(req->authzid, "");
	assert_memory_equal(req->password, "tanstaaf", 8);
	assert_int_equal(sasl_server_verified(s, SASL_V_OK), SASL_SUCCESS);
	assert_string_equal(sasl_server_user(s), "tim");
	sasl_server_free(&s);

	/* SMTP "AUTH LOGIN dGlt": the initial response is the user */
	s = new_session(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_start64(s, "dGlt", 4), SASL_CONTINUE);
	assert_challenge(s, "Password:");
	assert_int_equal(sasl_server_step64(s, "dGFuc3RhYWY=", 12),
	    SASL_VERIFY);
	assert_string_equal(sasl_server_request(s)->authcid, "tim");
	sasl_server_free(&s);

	s = new_session(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	assert_int_equal(step_str(s, ""), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_MALFORMED);
	sasl_server_free(&s);

	s = new_session(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	assert_int_equal(step_str(s, "tim"), SASL_CONTINUE);
	assert_int_equal(step_str(s, ""), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_MALFORMED);
	sasl_server_free(&s);

	s = new_session(SASL_MECH_LOGIN, 0);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	assert_int_equal(step_str(s, "tim"), SASL_CONTINUE);
	assert_int_equal(sasl_server_step(s, "a\0b", 3), SASL_FAIL);
	sasl_server_free(&s);
}

/* ---- SCRAM --------------------------------------------------------------- */

static void
test_scram_rfc7677(void **state)
{
	struct sasl_scram_keys k;
	uint8_t ck[32];
	struct sasl_server *s;

	rfc7677_keys(&k, ck);
	for (int data = 0; data < 2; data++) {
		s = new_session(SASL_MECH_SCRAM_SHA_256,
		    data ? SASL_F_SUCCESS_DATA : 0);
		assert_int_equal(
		    sasl_server_set_nonce(s, R_SNONCE, strlen(R_SNONCE)), 0);
		assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
		assert_challenge(s, "");
		assert_int_equal(step_str(s, R_CFIRST), SASL_VERIFY);
		assert_string_equal(sasl_server_request(s)->authcid, "user");
		assert_int_equal(sasl_server_scram_keys(s, &k), SASL_CONTINUE);
		assert_challenge(s, R_SFIRST);
		if (data) {
			assert_int_equal(step_allowed(s, R_CFINAL),
			    SASL_SUCCESS);
			assert_challenge(s, R_SFINAL);
		} else {
			assert_int_equal(step_allowed(s, R_CFINAL),
			    SASL_CONTINUE);
			assert_challenge(s, R_SFINAL);
			assert_int_equal(step_str(s, ""), SASL_SUCCESS);
			assert_challenge(s, ""); /* already sent */
		}
		assert_string_equal(sasl_server_user(s), "user");
		assert_int_equal(sasl_server_error(s), SASL_E_NONE);
		/* the keys are gone once the proof is checked */
		for (size_t i = 0; i < 32; i++)
			assert_int_equal(s->u.scram.keys.server_key[i] |
				s->u.scram.keys.stored_key[i],
			    0);
		sasl_server_free(&s);
	}

	/* the same exchange in base64, as IMAP carries it */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sasl_server_set_nonce(s, R_SNONCE, strlen(R_SNONCE));
	{
		char b64[512], chal[512];
		size_t len;

		base64_encode(R_CFIRST, strlen(R_CFIRST), b64, sizeof(b64),
		    &len);
		assert_int_equal(sasl_server_start64(s, b64, len), SASL_VERIFY);
		assert_int_equal(sasl_server_scram_keys(s, &k), SASL_CONTINUE);
		assert_int_equal(
		    sasl_server_challenge64(s, chal, sizeof(chal), &len), 0);
		base64_encode(R_SFIRST, strlen(R_SFIRST), b64, sizeof(b64),
		    NULL);
		assert_string_equal(chal, b64);
		assert_int_equal(sasl_server_challenge64(s, chal, 10, &len),
		    -1);
		base64_encode(R_CFINAL, strlen(R_CFINAL), b64, sizeof(b64),
		    &len);
		assert_int_equal(
		    policy(s, sasl_server_step64(s, b64, len), SASL_V_OK),
		    SASL_CONTINUE);
		assert_int_equal(sasl_server_step64(s, "", 0), SASL_SUCCESS);
	}
	sasl_server_free(&s);
}

static void
test_scram_random_nonce(void **state)
{
	struct sasl_scram_keys k;
	uint8_t ck[32];
	struct sasl_server *s;
	const char *sf;
	char final[1024], want_v[64], first_nonce[128];

	rfc7677_keys(&k, ck);
	for (int round = 0; round < 2; round++) {
		s = new_session(SASL_MECH_SCRAM_SHA_256, SASL_F_SUCCESS_DATA);
		sf = scram_first(s, R_CFIRST, &k);
		/* our nonce extends the client's, and differs every time */
		assert_memory_equal(sf, "r=" R_CNONCE, 22);
		assert_true(strlen(sf) > strlen(R_SFIRST) - 8);
		if (round == 0)
			snprintf(first_nonce, sizeof(first_nonce), "%.*s",
			    (int)strcspn(sf, ","), sf);
		else
			assert_true(
			    strncmp(sf, first_nonce, strlen(first_nonce)) != 0);
		client_final(R_CFIRST, sf, NULL, 0, &k, ck, final,
		    sizeof(final), want_v);
		assert_int_equal(step_allowed(s, final), SASL_SUCCESS);
		assert_challenge(s, want_v);
		sasl_server_free(&s);
	}
}

/* Wrong proof and unknown user: the same answers at the same steps. */
static void
test_scram_wrong_and_unknown(void **state)
{
	struct sasl_scram_keys k, wrong;
	uint8_t ck[32], wck[32], salt[16] = "0123456789abcdef";
	struct sasl_server *s;
	const char *sf;
	char final[1024], want_v[64], sf1[600], sf2[600];
	enum sasl_rc rc[2];

	rfc7677_keys(&k, ck);
	derive("not pencil", k.salt, k.salt_len, 4096, &wrong, wck);

	/* wrong password: the client's proof comes from other keys */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sf = scram_first(s, R_CFIRST, &k);
	client_final(R_CFIRST, sf, NULL, 0, &wrong, wck, final, sizeof(final),
	    want_v);
	rc[0] = step_str(s, final);
	assert_int_equal(rc[0], SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
	assert_challenge(s, ""); /* nothing goes back */
	sasl_server_free(&s);

	/* unknown user: a plausible server-first, then the same failure */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sf = scram_first(s, "n,,n=nobody,r=abc", NULL);
	snprintf(sf1, sizeof(sf1), "%s", sf);
	assert_non_null(strstr(sf1, ",s="));
	assert_non_null(strstr(sf1, ",i=4096"));
	derive("pencil", salt, 16, 4096, &wrong, wck);
	client_final("n,,n=nobody,r=abc", sf1, NULL, 0, &wrong, wck, final,
	    sizeof(final), want_v);
	rc[1] = step_str(s, final);
	assert_int_equal(rc[1], rc[0]);
	assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
	sasl_server_free(&s);

	/* its salt is stable per name (any case), and differs per name */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sasl_server_start(s, "n,,n=NoBody,r=abc", 17);
	assert_int_equal(sasl_server_verified(s, SASL_V_FAIL), SASL_CONTINUE);
	snprintf(sf2, sizeof(sf2), "%s",
	    (const char *)sasl_server_challenge(s, &(size_t){ 0 }));
	assert_string_equal(strstr(sf1, ",s="), strstr(sf2, ",s="));
	sasl_server_free(&s);
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sf = scram_first(s, "n,,n=somebody,r=abc", NULL);
	assert_string_not_equal(strstr(sf1, ",s="), strstr(sf, ",s="));
	sasl_server_free(&s);

	/* a wrong proof against a fake user fails even if well-formed */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sf = scram_first(s, R_CFIRST, NULL);
	client_final(R_CFIRST, sf, NULL, 0, &k, ck, final, sizeof(final),
	    want_v);
	assert_int_equal(step_str(s, final), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
	sasl_server_free(&s);

	/* keys the caller got wrong count as no keys */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	wrong.iter = 0;
	sf = scram_first(s, R_CFIRST, &wrong);
	assert_non_null(strstr(sf, ",i=4096"));
	sasl_server_free(&s);

	/* a tempfail on the lookup ends the session */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_start(s, R_CFIRST, strlen(R_CFIRST)),
	    SASL_VERIFY);
	assert_int_equal(sasl_server_verified(s, SASL_V_TEMPFAIL), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_TEMPFAIL);
	sasl_server_free(&s);
}

static void
test_scram_plus(void **state)
{
	static const char cf[] = "p=tls-exporter,,n=user,r=" R_CNONCE;
	struct sasl_scram_keys k;
	uint8_t ck[32], other[32];
	struct sasl_server *s;
	const char *sf;
	char final[1024], want_v[64];

	rfc7677_keys(&k, ck);
	s = new_session(SASL_MECH_SCRAM_SHA_256_PLUS, SASL_F_CBIND);
	sf = scram_first(s, cf, &k);
	client_final(cf, sf, CBIND, sizeof(CBIND), &k, ck, final, sizeof(final),
	    want_v);
	assert_int_equal(step_allowed(s, final), SASL_CONTINUE);
	assert_challenge(s, want_v);
	assert_int_equal(step_str(s, ""), SASL_SUCCESS);
	sasl_server_free(&s);

	/* another TLS connection's exporter: refused before the proof */
	memcpy(other, CBIND, sizeof(other));
	other[31] ^= 1;
	s = new_session(SASL_MECH_SCRAM_SHA_256_PLUS, SASL_F_CBIND);
	sf = scram_first(s, cf, &k);
	client_final(cf, sf, other, sizeof(other), &k, ck, final, sizeof(final),
	    want_v);
	assert_int_equal(step_str(s, final), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CBIND);
	sasl_server_free(&s);

	/* binding data missing from c= */
	s = new_session(SASL_MECH_SCRAM_SHA_256_PLUS, SASL_F_CBIND);
	sf = scram_first(s, cf, &k);
	client_final(cf, sf, NULL, 0, &k, ck, final, sizeof(final), want_v);
	assert_int_equal(step_str(s, final), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CBIND);
	sasl_server_free(&s);

	/* -PLUS without binding, or to another type */
	s = new_session(SASL_MECH_SCRAM_SHA_256_PLUS, SASL_F_CBIND);
	assert_int_equal(step_str(s, R_CFIRST), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_STATE);
	sasl_server_free(&s);
	s = new_session(SASL_MECH_SCRAM_SHA_256_PLUS, SASL_F_CBIND);
	assert_int_equal(sasl_server_start(s, R_CFIRST, strlen(R_CFIRST)),
	    SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CBIND);
	sasl_server_free(&s);
	s = new_session(SASL_MECH_SCRAM_SHA_256_PLUS, SASL_F_CBIND);
	assert_int_equal(sasl_server_start(s, "p=tls-unique,,n=user,r=abc", 26),
	    SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CBIND);
	sasl_server_free(&s);

	/* binding requested under the non-PLUS name */
	s = new_session(SASL_MECH_SCRAM_SHA_256, SASL_F_CBIND);
	assert_int_equal(sasl_server_start(s, cf, strlen(cf)), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CBIND);
	sasl_server_free(&s);
}

static void
test_scram_downgrade(void **state)
{
	static const char cf[] = "y,,n=user,r=" R_CNONCE;
	struct sasl_scram_keys k;
	uint8_t ck[32];
	struct sasl_server *s;
	const char *sf;
	char final[1024], want_v[64];

	rfc7677_keys(&k, ck);
	/* we offer -PLUS: a 'y' client was talked out of it */
	s = new_session(SASL_MECH_SCRAM_SHA_256, SASL_F_CBIND);
	assert_int_equal(sasl_server_start(s, cf, strlen(cf)), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CBIND);
	sasl_server_free(&s);

	/* we do not: 'y' is honest, and c= must say "y,," */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sf = scram_first(s, cf, &k);
	client_final(cf, sf, NULL, 0, &k, ck, final, sizeof(final), want_v);
	assert_memory_equal(final, "c=eSws,", 7);
	assert_int_equal(step_allowed(s, final), SASL_CONTINUE);
	assert_int_equal(step_str(s, ""), SASL_SUCCESS);
	sasl_server_free(&s);

	/* c= must repeat the header exactly: "n,," after a 'y' header */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sf = scram_first(s, cf, &k);
	client_final("n,,n=user,r=" R_CNONCE, sf, NULL, 0, &k, ck, final,
	    sizeof(final), want_v);
	assert_int_equal(step_str(s, final), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CBIND);
	sasl_server_free(&s);
}

static void
test_scram_names(void **state)
{
	struct sasl_server *s;

	/* =2C and =3D are ',' and '=' */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(step_str(s, ""), SASL_FAIL); /* before start */
	sasl_server_free(&s);
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_start(s, "n,,n=a=2Cb=3Dc,r=x", 18),
	    SASL_VERIFY);
	assert_string_equal(sasl_server_request(s)->authcid, "a,b=c");
	sasl_server_free(&s);

	/* UTF-8 names pass as they are */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_start(s, "n,,n=j\xc3\xb6rg,r=x", 14),
	    SASL_VERIFY);
	assert_string_equal(sasl_server_request(s)->authcid, "j\xc3\xb6rg");
	sasl_server_free(&s);

	/* an authzid naming yourself is fine, anyone else is not */
	s = new_session(SASL_MECH_SCRAM_SHA_256, SASL_F_AUTHZID);
	assert_int_equal(sasl_server_start(s, "n,a=user,n=user,r=x", 19),
	    SASL_VERIFY);
	sasl_server_free(&s);
	s = new_session(SASL_MECH_SCRAM_SHA_256, SASL_F_AUTHZID);
	assert_int_equal(sasl_server_start(s, "n,a=bob,n=user,r=x", 18),
	    SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_AUTHZID);
	sasl_server_free(&s);
}

static void
test_scram_malformed_first(void **state)
{
	static const char *bad[] = {
		"",
		"n",
		"n,",
		"n,,",
		"x,,n=user,r=abc",
		"N,,n=user,r=abc",
		"n,,r=abc,n=user",
		"n,,n=,r=abc",
		"n,,n=user,r=",
		"n,,n=user",
		"n,,n=user,",
		"n,,n=user,r=abc,",
		"n,,n=user,r=abc,x",
		"n,,n=user,r=abc,=x",
		"n,,n=user,r=abc,1=x",
		"n,,n=user,r=abc,x=",
		"n,,n=us=er,r=abc",
		"n,,n=us=2c,r=abc",
		"n,,n=user=2,r=abc",
		"n,,n=user=,r=abc",
		"n,,n=us\x01r,r=abc",
		"n,,n=us\x7fr,r=abc",
		"n,,n=us\xc2\x9fr,r=abc",
		"n,,n=us\xffr,r=abc",
		"n,,n=user,r=a\177b",
		"n,,n=user,r=a\xc3\xa9",
		"n,,m=ext,n=user,r=abc",
		"n,a=,n=user,r=abc",
		"n,a=x=41,n=user,r=abc",
		"n,b=user,n=user,r=abc",
		"n,a=user,,n=user,r=abc",
		"p,,n=user,r=abc",
		"p=,,n=user,r=abc",
		"p=tls exporter,,n=user,r=abc",
		"n,,,n=user,r=abc",
		"n ,,n=user,r=abc",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256,
		    SASL_F_AUTHZID);

		if (sasl_server_start(s, bad[i], strlen(bad[i])) != SASL_FAIL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(sasl_server_error(s) == SASL_E_MALFORMED ||
		    sasl_server_error(s) == SASL_E_CBIND);
		sasl_server_free(&s);
	}
	/* an embedded NUL */
	{
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256, 0);

		assert_int_equal(sasl_server_start(s, "n,,n=us\0r,r=abc", 15),
		    SASL_FAIL);
		sasl_server_free(&s);
	}
	/* over-long names and nonces */
	{
		char msg[1200], nonce[64], b64[SASL_CHALLENGE64_MAX];
		struct sasl_scram_keys k;
		size_t len;
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256, 0);

		memcpy(msg, "n,,n=", 5);
		memset(msg + 5, 'u', 256);
		strcpy(msg + 261, ",r=abc");
		assert_int_equal(sasl_server_start(s, msg, strlen(msg)),
		    SASL_FAIL);
		assert_int_equal(sasl_server_error(s), SASL_E_TOOLONG);
		sasl_server_free(&s);
		s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
		strcpy(msg, "n,,n=u,r=");
		memset(msg + 9, 'r', 257);
		msg[9 + 257] = '\0';
		assert_int_equal(sasl_server_start(s, msg, strlen(msg)),
		    SASL_FAIL);
		assert_int_equal(sasl_server_error(s), SASL_E_TOOLONG);
		sasl_server_free(&s);
		/* the longest nonces, salt and count still fit */
		s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
		memset(nonce, 'n', sizeof(nonce));
		assert_int_equal(sasl_server_set_nonce(s, nonce, 64), 0);
		msg[9 + 256] = '\0';
		assert_int_equal(sasl_server_start(s, msg, strlen(msg)),
		    SASL_VERIFY);
		memset(&k, 'k', sizeof(k));
		k.iter = SASL_SCRAM_ITER_MAX;
		k.salt_len = SASL_SCRAM_SALT_MAX;
		assert_int_equal(sasl_server_scram_keys(s, &k), SASL_CONTINUE);
		assert_int_equal(
		    sasl_server_challenge64(s, b64, sizeof(b64), &len), 0);
		/* r=256+64 ,s=172 ,i=8 */
		assert_int_equal(len, (2 + 320 + 3 + 172 + 3 + 8 + 2) / 3 * 4);
		sasl_server_free(&s);
	}
}

static void
test_scram_malformed_final(void **state)
{
	static const char *bad[] = {
		"",
		"c=biws",
		"c=biws,r=" R_CNONCE R_SNONCE,
		"c=biws,r=" R_CNONCE R_SNONCE ",",
		"c=biws,r=" R_CNONCE R_SNONCE ",p=",
		"c=biws,r=" R_CNONCE R_SNONCE
		",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=y",
		"c=biws,r=" R_CNONCE R_SNONCE ",p=dHzbZapWIk4jUhN+Ute9",
		"c=biws,r=" R_CNONCE R_SNONCE
		",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
		"c=biws,r=" R_CNONCE R_SNONCE
		",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=AAAA",
		"c=biws,r=" R_CNONCE
		",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" R_CNONCE R_SNONCE
		"x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"r=" R_CNONCE R_SNONCE
		",c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biw,r=" R_CNONCE R_SNONCE
		",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=,r=" R_CNONCE R_SNONCE
		",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=eSws,r=" R_CNONCE R_SNONCE
		",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" R_CNONCE R_SNONCE
		",,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	};
	struct sasl_scram_keys k;
	uint8_t ck[32];

	rfc7677_keys(&k, ck);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256, 0);

		sasl_server_set_nonce(s, R_SNONCE, strlen(R_SNONCE));
		scram_first(s, R_CFIRST, &k);
		if (step_str(s, bad[i]) != SASL_FAIL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(sasl_server_error(s) == SASL_E_MALFORMED ||
		    sasl_server_error(s) == SASL_E_CBIND);
		sasl_server_free(&s);
	}
	/* unknown extensions before the proof are ignored (but signed) */
	{
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
		const char *sf = scram_first(s, R_CFIRST, &k);
		char final[1024], want_v[64], ext[1100];

		client_final(R_CFIRST, sf, NULL, 0, &k, ck, final,
		    sizeof(final), want_v);
		/* the extension would change AuthMessage: proof fails */
		snprintf(ext, sizeof(ext), "%.*s,x=ext%s",
		    (int)(strstr(final, ",p=") - final), final,
		    strstr(final, ",p="));
		assert_int_equal(step_str(s, ext), SASL_FAIL);
		assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
		sasl_server_free(&s);
	}
	/* after success data, only an empty response is acceptable */
	{
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256, 0);

		sasl_server_set_nonce(s, R_SNONCE, strlen(R_SNONCE));
		scram_first(s, R_CFIRST, &k);
		assert_int_equal(step_allowed(s, R_CFINAL), SASL_CONTINUE);
		assert_int_equal(step_str(s, "x"), SASL_FAIL);
		assert_int_equal(sasl_server_error(s), SASL_E_MALFORMED);
		assert_null(sasl_server_user(s));
		sasl_server_free(&s);
	}
}

/* Every truncation of both client messages fails cleanly. */
static void
test_scram_truncations(void **state)
{
	struct sasl_scram_keys k;
	uint8_t ck[32];
	size_t full = strlen(R_CFIRST);

	rfc7677_keys(&k, ck);
	for (size_t n = 0; n < full; n++) {
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
		enum sasl_rc rc = sasl_server_start(s, R_CFIRST, n);

		/* cutting the nonce leaves a shorter, valid nonce */
		assert_int_equal(rc, n > 12 ? SASL_VERIFY : SASL_FAIL);
		sasl_server_free(&s);
	}
	full = strlen(R_CFINAL);
	for (size_t n = 0; n < full; n++) {
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256, 0);

		sasl_server_set_nonce(s, R_SNONCE, strlen(R_SNONCE));
		scram_first(s, R_CFIRST, &k);
		assert_int_equal(sasl_server_step(s, R_CFINAL, n), SASL_FAIL);
		sasl_server_free(&s);
	}
}

static void
test_scram_keys_parse(void **state)
{
	struct sasl_scram_keys k, want;
	const char *err = NULL;
	uint8_t ck[32];
	char str[512], salt[64], sk[64], svk[64];

	rfc7677_keys(&want, ck);
	base64_encode(want.salt, want.salt_len, salt, sizeof(salt), NULL);
	base64_encode(want.stored_key, 32, sk, sizeof(sk), NULL);
	base64_encode(want.server_key, 32, svk, sizeof(svk), NULL);

	snprintf(str, sizeof(str), "SCRAM-SHA-256$4096:%s$%s:%s", salt, sk,
	    svk);
	assert_int_equal(sasl_scram_keys_parse(str, strlen(str), &k, &err), 0);
	assert_int_equal(k.iter, 4096);
	assert_int_equal(k.salt_len, 16);
	assert_memory_equal(k.salt, want.salt, 16);
	assert_memory_equal(k.stored_key, want.stored_key, 32);
	assert_memory_equal(k.server_key, want.server_key, 32);

	snprintf(str, sizeof(str), "{SCRAM-SHA-256}SCRAM-SHA-256$4096:%s$%s:%s",
	    salt, sk, svk);
	assert_int_equal(sasl_scram_keys_parse(str, strlen(str), &k, &err), 0);
	snprintf(str, sizeof(str), "{scram-sha-256}4096,%s,%s,%s", salt, sk,
	    svk);
	assert_int_equal(sasl_scram_keys_parse(str, strlen(str), &k, &err), 0);
	assert_memory_equal(k.server_key, want.server_key, 32);

	/* parsed keys drive a real exchange */
	{
		struct sasl_server *s = new_session(SASL_MECH_SCRAM_SHA_256, 0);

		sasl_server_set_nonce(s, R_SNONCE, strlen(R_SNONCE));
		assert_string_equal(scram_first(s, R_CFIRST, &k), R_SFIRST);
		assert_int_equal(step_allowed(s, R_CFINAL), SASL_CONTINUE);
		assert_challenge(s, R_SFINAL);
		sasl_server_free(&s);
	}

	static const char *bad[] = {
		"",
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$0:%s$%s:%s",
		"SCRAM-SHA-256$10000001:%s$%s:%s",
		"SCRAM-SHA-256$-1:%s$%s:%s",
		"SCRAM-SHA-256$+4096:%s$%s:%s",
		"SCRAM-SHA-256$4096:%s$%s",
		"SCRAM-SHA-256$4096:%s:%s:%s",
		"SCRAM-SHA-256$4096:%s$%s:%s:",
		"SCRAM-SHA-256$4096:%s$%sAA:%s",
		"SCRAM-SHA-256$4096:$%s:%s%s",
		"SCRAM-SHA-1$4096:%s$%s:%s",
		"4096,%s,%s",
		"4096:%s$%s:%s",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(str, sizeof(str), bad[i], salt, sk, svk);
#pragma GCC diagnostic pop
		err = NULL;
		if (sasl_scram_keys_parse(str, strlen(str), &k, &err) != -1)
			fail_msg("accepted \"%s\"", str);
		assert_non_null(err);
	}
}

/* ---- EXTERNAL ------------------------------------------------------------ */

static void
test_external(void **state)
{
	struct sasl_server_conf conf = { .flags = SECURE | SASL_F_EXTERNAL |
		    SASL_F_AUTHZID,
		.external_id = "alice" };
	const struct sasl_mech *m = sasl_mech_find("EXTERNAL", 8, conf.flags);
	struct sasl_server *s;

	s = sasl_server_new(m, &conf);
	assert_int_equal(sasl_server_start(s, "", 0), SASL_SUCCESS);
	assert_string_equal(sasl_server_user(s), "alice");
	sasl_server_free(&s);

	s = sasl_server_new(m, &conf);
	assert_int_equal(sasl_server_start(s, "alice", 5), SASL_SUCCESS);
	assert_string_equal(sasl_server_user(s), "alice");
	sasl_server_free(&s);

	s = sasl_server_new(m, &conf);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	assert_challenge(s, "");
	assert_int_equal(sasl_server_step(s, "", 0), SASL_SUCCESS);
	sasl_server_free(&s);

	/* even with SASL_F_AUTHZID: nobody could refuse the delegation */
	s = sasl_server_new(m, &conf);
	assert_int_equal(sasl_server_start(s, "bob", 3), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_AUTHZID);
	assert_null(sasl_server_user(s));
	sasl_server_free(&s);

	s = sasl_server_new(m, &conf);
	assert_int_equal(sasl_server_start(s, "al\nice", 6), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_MALFORMED);
	sasl_server_free(&s);

	/* no certificate identity */
	conf.external_id = NULL;
	s = sasl_server_new(m, &conf);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_NOIDENTITY);
	sasl_server_free(&s);
	s = sasl_server_new(m, &conf);
	assert_int_equal(sasl_server_start(s, "", 0), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_NOIDENTITY);
	sasl_server_free(&s);
}

/* ---- CRAM-MD5 and APOP ----------------------------------------------------
 */

#define CRAM_CHAL "<1896.697170952@postoffice.reston.mci.net>"

static struct sasl_server *
cram_session(void)
{
	struct sasl_server *s = new_session(SASL_MECH_CRAM_MD5, SASL_F_LEGACY);

	assert_int_equal(sasl_server_set_nonce(s, CRAM_CHAL, strlen(CRAM_CHAL)),
	    0);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	assert_challenge(s, CRAM_CHAL);
	return s;
}

static void
test_cram_md5(void **state)
{
	static const char resp[] = "tim b913a602c7eda7a495b4e6e7334d3890";
	struct sasl_server *s = cram_session();
	const struct sasl_request *req;
	const uint8_t *chal;
	size_t len;

	assert_int_equal(step_str(s, resp), SASL_VERIFY);
	req = sasl_server_request(s);
	assert_int_equal(req->kind, SASL_REQ_SECRET);
	assert_string_equal(req->authcid, "tim");
	assert_int_equal(
	    policy(s, sasl_server_secret(s, "tanstaaftanstaaf", 16), SASL_V_OK),
	    SASL_SUCCESS);
	assert_string_equal(sasl_server_user(s), "tim");
	sasl_server_free(&s);

	/* upper-case hex is the same digest */
	s = cram_session();
	assert_int_equal(step_str(s, "tim B913A602C7EDA7A495B4E6E7334D3890"),
	    SASL_VERIFY);
	assert_int_equal(
	    policy(s, sasl_server_secret(s, "tanstaaftanstaaf", 16), SASL_V_OK),
	    SASL_SUCCESS);
	sasl_server_free(&s);

	s = cram_session();
	assert_int_equal(step_str(s, resp), SASL_VERIFY);
	assert_int_equal(sasl_server_secret(s, "tanstaaf", 8), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
	sasl_server_free(&s);

	/* unknown user: the same failure, by either answer */
	s = cram_session();
	assert_int_equal(step_str(s, resp), SASL_VERIFY);
	assert_int_equal(sasl_server_secret(s, NULL, 0), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
	sasl_server_free(&s);
	s = cram_session();
	assert_int_equal(step_str(s, resp), SASL_VERIFY);
	assert_int_equal(sasl_server_verified(s, SASL_V_FAIL), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
	sasl_server_free(&s);

	static const char *bad[] = {
		"",
		"tim",
		"timb913a602c7eda7a495b4e6e7334d3890",
		"tim b913a602c7eda7a495b4e6e7334d389",
		"tim b913a602c7eda7a495b4e6e7334d38900",
		"tim b913a602c7eda7a495b4e6e7334d389g",
		" b913a602c7eda7a495b4e6e7334d3890",
		"t\x01m b913a602c7eda7a495b4e6e7334d3890",
		"tim b913a602c7eda7a495b4e6e7334d3890 ",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = cram_session();
		assert_int_equal(step_str(s, bad[i]), SASL_FAIL);
		sasl_server_free(&s);
	}

	/* the server speaks first: an initial response is refused */
	s = new_session(SASL_MECH_CRAM_MD5, SASL_F_LEGACY);
	assert_int_equal(sasl_server_start(s, resp, strlen(resp)), SASL_FAIL);
	sasl_server_free(&s);

	/* a real challenge: <digits.digits@host> */
	s = new_session(SASL_MECH_CRAM_MD5, SASL_F_LEGACY);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	chal = sasl_server_challenge(s, &len);
	assert_true(len > 14);
	assert_int_equal(chal[0], '<');
	assert_int_equal(chal[len - 1], '>');
	assert_memory_equal(chal + len - 11, "@localhost>", 11);
	sasl_server_free(&s);
}

static void
test_apop(void **state)
{
	static const char ts[] = "<1896.697170952@dbc.mtview.ca.us>";
	char hex[33], buf[SASL_LEGACY_TS_MAX], buf2[SASL_LEGACY_TS_MAX];
	char host[300];

	/* RFC 1939 section 7 */
	assert_int_equal(
	    sasl_legacy_apop_digest(ts, strlen(ts), "tanstaaf", 8, hex), 0);
	assert_string_equal(hex, "c4c9334bac560ecc979e58001b3e22fb");
	assert_true(sasl_legacy_apop_verify(ts, strlen(ts), "tanstaaf", 8,
	    "c4c9334bac560ecc979e58001b3e22fb", 32));
	assert_true(sasl_legacy_apop_verify(ts, strlen(ts), "tanstaaf", 8,
	    "C4C9334BAC560ECC979E58001B3E22FB", 32));
	assert_false(sasl_legacy_apop_verify(ts, strlen(ts), "tanstaaF", 8,
	    "c4c9334bac560ecc979e58001b3e22fb", 32));
	assert_false(sasl_legacy_apop_verify(ts, strlen(ts), "tanstaaf", 8,
	    "c4c9334bac560ecc979e58001b3e22f", 31));
	assert_false(sasl_legacy_apop_verify(ts, strlen(ts), "tanstaaf", 8,
	    "c4c9334bac560ecc979e58001b3e22fx", 32));

	assert_true(
	    sasl_legacy_timestamp(buf, sizeof(buf), "mail.example") > 0);
	assert_true(
	    sasl_legacy_timestamp(buf2, sizeof(buf2), "mail.example") > 0);
	assert_string_not_equal(buf, buf2);
	assert_int_equal(buf[0], '<');
	assert_non_null(strstr(buf, "@mail.example>"));
	assert_int_equal(sasl_legacy_timestamp(buf, 10, "mail.example"), -1);
	assert_int_equal(sasl_legacy_timestamp(buf, sizeof(buf), "a b"), -1);
	assert_int_equal(sasl_legacy_timestamp(buf, sizeof(buf), "a>"), -1);
	assert_int_equal(sasl_legacy_timestamp(buf, sizeof(buf), ""), -1);
	memset(host, 'h', 255);
	host[255] = '\0';
	assert_true(sasl_legacy_timestamp(buf, sizeof(buf), host) > 0);
	host[255] = 'h';
	host[256] = '\0';
	assert_int_equal(sasl_legacy_timestamp(buf, sizeof(buf), host), -1);
}

/* ---- out-of-turn calls ----------------------------------------------------
 */

static void
test_state_misuse(void **state)
{
	struct sasl_server *s;
	struct sasl_scram_keys k;
	uint8_t ck[32];

	rfc7677_keys(&k, ck);
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_step(s, "\0a\0b", 4), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_STATE);
	/* a failed session stays failed */
	assert_int_equal(sasl_server_start(s, "\0a\0b", 4), SASL_FAIL);
	assert_int_equal(sasl_server_verified(s, SASL_V_OK), SASL_FAIL);
	assert_null(sasl_server_user(s));
	sasl_server_free(&s);

	/* a response while a verification is pending */
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, "\0a\0b", 4), SASL_VERIFY);
	assert_int_equal(sasl_server_step(s, "\0a\0b", 4), SASL_FAIL);
	assert_int_equal(sasl_server_verified(s, SASL_V_OK), SASL_FAIL);
	assert_null(sasl_server_user(s));
	sasl_server_free(&s);

	/* answers of the wrong kind */
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, "\0a\0b", 4), SASL_VERIFY);
	assert_int_equal(sasl_server_scram_keys(s, &k), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_STATE);
	sasl_server_free(&s);
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, "\0a\0b", 4), SASL_VERIFY);
	assert_int_equal(sasl_server_secret(s, "x", 1), SASL_FAIL);
	sasl_server_free(&s);
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_start(s, R_CFIRST, strlen(R_CFIRST)),
	    SASL_VERIFY);
	assert_int_equal(sasl_server_verified(s, SASL_V_OK), SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_STATE);
	sasl_server_free(&s);

	/* after success, nothing more */
	s = new_session(SASL_MECH_PLAIN, 0);
	assert_int_equal(sasl_server_start(s, "\0a\0b", 4), SASL_VERIFY);
	assert_int_equal(sasl_server_verified(s, SASL_V_OK), SASL_SUCCESS);
	assert_int_equal(sasl_server_step(s, "", 0), SASL_FAIL);
	assert_null(sasl_server_user(s));
	sasl_server_free(&s);

	/* nonce injection only before start, printable, no ',' */
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	assert_int_equal(sasl_server_set_nonce(s, "a,b", 3), -1);
	assert_int_equal(sasl_server_set_nonce(s, "a b", 3), -1);
	assert_int_equal(sasl_server_set_nonce(s, "", 0), -1);
	assert_int_equal(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	assert_int_equal(sasl_server_set_nonce(s, "ab", 2), -1);
	sasl_server_free(&s);
}

/* A right proof for a user the caller refuses (nologin, allow_nets=):
 * the same failure as a wrong proof, and no server signature goes out;
 * the same for CRAM-MD5's digest; a temporary failure stays one. */
static void
test_policy_refused(void **state)
{
	struct sasl_scram_keys k;
	struct sasl_server *s;
	uint8_t ck[32];

	(void)state;
	rfc7677_keys(&k, ck);
	for (int data = 0; data < 2; data++) {
		s = new_session(SASL_MECH_SCRAM_SHA_256,
		    data ? SASL_F_SUCCESS_DATA : 0);
		sasl_server_set_nonce(s, R_SNONCE, strlen(R_SNONCE));
		scram_first(s, R_CFIRST, &k);
		assert_int_equal(policy(s, step_str(s, R_CFINAL), SASL_V_FAIL),
		    SASL_FAIL);
		assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
		assert_challenge(s, "");
		assert_null(sasl_server_user(s));
		sasl_server_free(&s);
	}
	s = new_session(SASL_MECH_SCRAM_SHA_256, 0);
	sasl_server_set_nonce(s, R_SNONCE, strlen(R_SNONCE));
	scram_first(s, R_CFIRST, &k);
	assert_int_equal(policy(s, step_str(s, R_CFINAL), SASL_V_TEMPFAIL),
	    SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_TEMPFAIL);
	sasl_server_free(&s);

	s = cram_session();
	assert_int_equal(step_str(s, "tim b913a602c7eda7a495b4e6e7334d3890"),
	    SASL_VERIFY);
	assert_int_equal(policy(s,
			     sasl_server_secret(s, "tanstaaftanstaaf", 16),
			     SASL_V_FAIL),
	    SASL_FAIL);
	assert_int_equal(sasl_server_error(s), SASL_E_CREDENTIALS);
	sasl_server_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mech_policy),
		cmocka_unit_test(test_conf_checks),
		cmocka_unit_test(test_plain_ok),
		cmocka_unit_test(test_plain_authzid),
		cmocka_unit_test(test_plain_malformed),
		cmocka_unit_test(test_plain_limits),
		cmocka_unit_test(test_plain_base64),
		cmocka_unit_test(test_plain_truncations),
		cmocka_unit_test(test_plain_client),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_scram_rfc7677),
		cmocka_unit_test(test_scram_random_nonce),
		cmocka_unit_test(test_scram_wrong_and_unknown),
		cmocka_unit_test(test_scram_plus),
		cmocka_unit_test(test_scram_downgrade),
		cmocka_unit_test(test_scram_names),
		cmocka_unit_test(test_scram_malformed_first),
		cmocka_unit_test(test_scram_malformed_final),
		cmocka_unit_test(test_scram_truncations),
		cmocka_unit_test(test_scram_keys_parse),
		cmocka_unit_test(test_external),
		cmocka_unit_test(test_cram_md5),
		cmocka_unit_test(test_policy_refused),
		cmocka_unit_test(test_apop),
		cmocka_unit_test(test_state_misuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
