/*
 * sasl_scram.c - SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, server side
 * (RFC 5802, RFC 7677), with tls-exporter channel binding (RFC 9266).
 *
 * Two round trips: client-first (GS2 header, user name, client nonce) ->
 * the caller looks up the user's stored keys -> server-first (nonce, salt,
 * iterations) -> client-final (channel binding, nonce, proof) -> the proof
 * is checked against StoredKey and ServerSignature goes back. No password
 * and no PBKDF2 here: the stored keys (RFC 5803) are all a server needs.
 *
 * Unknown users must look exactly like known ones: the exchange goes on
 * with a salt derived from the (lowercased) user name and a server secret,
 * the configured iteration count and random keys, the same checks run in
 * the same order, and it fails on the proof like a wrong password.
 * Channel binding is checked byte for byte against the GS2 header plus,
 * for -PLUS, the tls-exporter data; a client that says 'y' while we offer
 * -PLUS is being downgraded and is refused (RFC 5802 section 6).
 *
 * User names are checked, not fully SASLprep'ed: strict UTF-8, no control
 * characters, "=2C"/"=3D" decoded and any other '=' refused. Relies on
 * OpenSSL for HMAC, SHA-256, CRYPTO_memcmp and OPENSSL_cleanse. Never:
 * compares secrets with memcmp, lets an unknown user fail earlier or
 * differently than a wrong password, or keeps key material after free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/auth_private.h"
#include "auth/sasl.h"
#include "auth/sasl_private.h"
#include "proto/base64.h"

#define CBIND_NAME "tls-exporter"
#define GS2_MAX (sizeof("p=" CBIND_NAME ",a=,") - 1 + 3 * SASL_NAME_MAX)
#define SERVER_NONCE_RAW 24 /* random bytes, 32 base64 characters */

/* What sasl_server_challenge64() promises to fit. */
_Static_assert((SASL_SCRAM_SFM_MAX + 2) / 3 * 4 + 1 <= SASL_CHALLENGE64_MAX,
    "server-first-message too long for SASL_CHALLENGE64_MAX");
_Static_assert((SASL_LEGACY_TS_MAX + 2) / 3 * 4 + 1 <= SASL_CHALLENGE64_MAX,
    "CRAM-MD5 challenge too long for SASL_CHALLENGE64_MAX");

/* Cursor over one message: attributes are read left to right. */
struct cursor {
	const char *p;
	size_t len, pos;
};

/* mechanism */
static enum sasl_rc scram_begin(struct sasl_server *s);
static enum sasl_rc scram_step(struct sasl_server *s, const uint8_t *p,
    size_t len);
static void scram_wipe(struct sasl_server *s);
static enum sasl_rc client_first(struct sasl_server *s, const char *p,
    size_t len);
static enum sasl_rc client_final(struct sasl_server *s, const char *p,
    size_t len);
static enum sasl_rc finish(struct sasl_server *s, const uint8_t proof[32],
    size_t cfwp_len, const char *cfwp);
static enum sasl_rc scram_allowed(struct sasl_server *s);

/* parsing */
static enum sasl_error gs2_header(struct sasl_server *s, struct cursor *c,
    char *authzid, size_t *authzid_len);
static enum sasl_error cbind_policy(struct sasl_server *s, const char *name,
    size_t len);
static bool attr(struct cursor *c, char name, const char **v, size_t *vlen);
static bool attr_any(struct cursor *c, char *name_r, const char **v,
    size_t *vlen);
static enum sasl_error saslname(const char *v, size_t vlen, char *out,
    size_t *out_len);
static bool nonce_valid(const char *v, size_t vlen);
static enum sasl_error cbind_check(struct sasl_server *s, const char *v,
    size_t vlen);

/* keys */
static int fake_keys(struct sasl_server *s);
static int server_first(struct sasl_server *s);
static int parse_b64(const char *p, size_t len, uint8_t *out, size_t min,
    size_t max, size_t *out_len);

const struct sasl_mech_ops sasl_scram_ops = {
	.begin = scram_begin,
	.step = scram_step,
	.wipe = scram_wipe,
	.allowed = scram_allowed,
};

/* ---- mechanism ---------------------------------------------------------- */

/* SCRAM is client-first: an empty challenge asks for client-first. */
static enum sasl_rc
scram_begin(struct sasl_server *s)
{
	s->u.scram.step = SCRAM_FIRST;
	return sasl_continue(s, "", 0);
}

static enum sasl_rc
scram_step(struct sasl_server *s, const uint8_t *p, size_t len)
{
	struct sasl_scram *sc = &s->u.scram;

	switch (sc->step) {
	case SCRAM_FIRST:
		return client_first(s, (const char *)p, len);
	case SCRAM_FINAL:
		return client_final(s, (const char *)p, len);
	case SCRAM_ACK:
		/* The client has checked ServerSignature; it says nothing. */
		if (len != 0)
			return sasl_fail(s, SASL_E_MALFORMED);
		return sasl_success(s);
	case SCRAM_KEYS:
	case SCRAM_POLICY:
		break; /* waiting for the caller, not the client */
	}
	return sasl_fail(s, SASL_E_STATE);
}

static void
scram_wipe(struct sasl_server *s)
{
	struct sasl_scram *sc = &s->u.scram;

	if (sc->cfm != NULL) {
		OPENSSL_cleanse(sc->cfm, sc->cfm_len);
		free(sc->cfm);
		sc->cfm = NULL;
	}
	OPENSSL_cleanse(&sc->keys, sizeof(sc->keys));
}

/*
 * client-first-message = gs2-header [reserved-mext ","] username ","
 *     nonce ["," extensions]
 */
static enum sasl_rc
client_first(struct sasl_server *s, const char *p, size_t len)
{
	struct sasl_scram *sc = &s->u.scram;
	struct cursor c = { p, len, 0 };
	char authzid[SASL_NAME_MAX + 1], user[SASL_NAME_MAX + 1], name;
	size_t zlen, ulen, vlen, gs2_len;
	const char *v;
	enum sasl_error e;

	if (!sasl_utf8_valid(p, len))
		return sasl_fail(s, SASL_E_MALFORMED);
	if ((e = gs2_header(s, &c, authzid, &zlen)) != SASL_E_NONE)
		return sasl_fail(s, e);
	gs2_len = c.pos;
	/* A mandatory extension we cannot know: RFC 5802 says fail. */
	if (len - c.pos >= 2 && p[c.pos] == 'm' && p[c.pos + 1] == '=')
		return sasl_fail(s, SASL_E_MALFORMED);
	if (!attr(&c, 'n', &v, &vlen))
		return sasl_fail(s, SASL_E_MALFORMED);
	if ((e = saslname(v, vlen, user, &ulen)) != SASL_E_NONE)
		return sasl_fail(s, e);
	if (c.pos == c.len || p[c.pos++] != ',' || !attr(&c, 'r', &v, &vlen))
		return sasl_fail(s, SASL_E_MALFORMED);
	if (vlen > SASL_SCRAM_CNONCE_MAX)
		return sasl_fail(s, SASL_E_TOOLONG);
	if (!nonce_valid(v, vlen))
		return sasl_fail(s, SASL_E_MALFORMED);
	sc->cnonce_off = (size_t)(v - p);
	sc->cnonce_len = vlen;
	/* Extensions we do not know are ignored, but must be well-formed. */
	while (c.pos < c.len) {
		if (p[c.pos++] != ',' || !attr_any(&c, &name, &v, &vlen))
			return sasl_fail(s, SASL_E_MALFORMED);
	}
	if ((e = sasl_set_ids(s, user, ulen, authzid, zlen)) != SASL_E_NONE)
		return sasl_fail(s, e);
	if ((sc->cfm = malloc(len)) == NULL)
		return sasl_fail(s, SASL_E_INTERNAL);
	memcpy(sc->cfm, p, len);
	sc->cfm_len = len;
	sc->gs2_len = gs2_len;
	sc->step = SCRAM_KEYS;
	return sasl_verify(s, SASL_REQ_SCRAM_KEYS);
}

enum sasl_rc
sasl_server_scram_keys(struct sasl_server *s, const struct sasl_scram_keys *k)
{
	struct sasl_scram *sc = &s->u.scram;

	if (s->state != SASL_S_VERIFY || s->req.kind != SASL_REQ_SCRAM_KEYS ||
	    sc->step != SCRAM_KEYS)
		return sasl_fail(s, SASL_E_STATE);
	if (k != NULL && k->iter >= 1 && k->iter <= SASL_SCRAM_ITER_MAX &&
	    k->salt_len >= 1 && k->salt_len <= SASL_SCRAM_SALT_MAX) {
		sc->keys = *k;
		sc->fake = false;
	} else if (fake_keys(s) == -1) {
		return sasl_fail(s, SASL_E_INTERNAL);
	}
	if (server_first(s) == -1)
		return sasl_fail(s, SASL_E_INTERNAL);
	sc->step = SCRAM_FINAL;
	return sasl_continue(s, sc->sfm, sc->sfm_len);
}

/*
 * client-final-message = "c=" base64 "," "r=" nonce ["," extensions] ","
 *     "p=" base64
 */
static enum sasl_rc
client_final(struct sasl_server *s, const char *p, size_t len)
{
	struct sasl_scram *sc = &s->u.scram;
	struct cursor c = { p, len, 0 };
	const char *cb, *v;
	size_t cblen, vlen, cfwp_len, plen;
	uint8_t proof[32];
	char name;
	enum sasl_error e;
	enum sasl_rc rc;

	if (!sasl_utf8_valid(p, len) || !attr(&c, 'c', &cb, &cblen) ||
	    c.pos == c.len || p[c.pos++] != ',' || !attr(&c, 'r', &v, &vlen))
		return sasl_fail(s, SASL_E_MALFORMED);
	if (vlen != sc->nonce_len ||
	    memcmp(v, sc->sfm + sc->nonce_off, vlen) != 0)
		return sasl_fail(s, SASL_E_MALFORMED);
	/* Extensions, then the proof, which must come last. */
	for (;;) {
		cfwp_len = c.pos;
		if (c.pos == c.len || p[c.pos++] != ',' ||
		    !attr_any(&c, &name, &v, &vlen))
			return sasl_fail(s, SASL_E_MALFORMED);
		if (name == 'p')
			break;
	}
	if (c.pos != c.len)
		return sasl_fail(s, SASL_E_MALFORMED);
	if ((e = cbind_check(s, cb, cblen)) != SASL_E_NONE)
		return sasl_fail(s, e);
	if (parse_b64(v, vlen, proof, 32, 32, &plen) == -1)
		return sasl_fail(s, SASL_E_MALFORMED);
	rc = finish(s, proof, cfwp_len, p);
	OPENSSL_cleanse(proof, sizeof(proof));
	return rc;
}

/*
 * Check the proof and compute ServerSignature over AuthMessage =
 * client-first-bare "," server-first "," client-final-without-proof.
 * Runs the same work whether the user is known or not.
 */
static enum sasl_rc
finish(struct sasl_server *s, const uint8_t proof[32], size_t cfwp_len,
    const char *cfwp)
{
	struct sasl_scram *sc = &s->u.scram;
	size_t bare_len = sc->cfm_len - sc->gs2_len, n = 0, am_len;
	uint8_t sig[32], key[32], stored[32];
	unsigned mdlen = 0;
	char *am;
	bool ok;

	am_len = bare_len + 1 + sc->sfm_len + 1 + cfwp_len;
	if ((am = malloc(am_len)) == NULL)
		return sasl_fail(s, SASL_E_INTERNAL);
	memcpy(am, sc->cfm + sc->gs2_len, bare_len);
	n += bare_len;
	am[n++] = ',';
	memcpy(am + n, sc->sfm, sc->sfm_len);
	n += sc->sfm_len;
	am[n++] = ',';
	memcpy(am + n, cfwp, cfwp_len);
	ok = HMAC(EVP_sha256(), sc->keys.stored_key, 32, (uint8_t *)am, am_len,
		 sig, &mdlen) != NULL;
	for (size_t i = 0; i < 32; i++)
		key[i] = proof[i] ^ sig[i];
	ok = ok && SHA256(key, 32, stored) != NULL;
	/* Both halves are always evaluated: no early exit on a mismatch. */
	ok = ok & (CRYPTO_memcmp(stored, sc->keys.stored_key, 32) == 0);
	ok = ok & !sc->fake;
	if (HMAC(EVP_sha256(), sc->keys.server_key, 32, (uint8_t *)am, am_len,
		sig, &mdlen) == NULL)
		ok = false;
	memcpy(sc->sfinal, "v=", 2);
	if (base64_encode(sig, 32, sc->sfinal + 2, sizeof(sc->sfinal) - 2,
		&n) == -1)
		ok = false;
	sc->sfinal_len = n + 2;
	OPENSSL_cleanse(am, am_len);
	free(am);
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(&sc->keys, sizeof(sc->keys));
	if (!ok)
		return sasl_fail(s, SASL_E_CREDENTIALS);
	/* the signature proves the password right: the caller's policy
	 * first (scram_allowed() sends it) */
	sc->step = SCRAM_POLICY;
	return sasl_verify(s, SASL_REQ_POLICY);
}

static enum sasl_rc
scram_allowed(struct sasl_server *s)
{
	struct sasl_scram *sc = &s->u.scram;

	if (sc->step != SCRAM_POLICY)
		return sasl_fail(s, SASL_E_STATE);
	if (s->flags & SASL_F_SUCCESS_DATA) {
		sasl_success(s);
		s->chal = (const uint8_t *)sc->sfinal;
		s->chal_len = sc->sfinal_len;
		return SASL_SUCCESS;
	}
	sc->step = SCRAM_ACK;
	return sasl_continue(s, sc->sfinal, sc->sfinal_len);
}

/* ---- parsing --------------------------------------------------------------
 */

/*
 * gs2-header = gs2-cbind-flag "," [ "a=" saslname ] ","
 * gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
 * Leaves c after the header and the decoded authzid in authzid.
 */
static enum sasl_error
gs2_header(struct sasl_server *s, struct cursor *c, char *authzid,
    size_t *authzid_len)
{
	const char *v;
	size_t vlen;
	enum sasl_error e;

	*authzid_len = 0;
	authzid[0] = '\0';
	if (c->len == 0)
		return SASL_E_MALFORMED;
	s->u.scram.cbflag = c->p[0];
	switch (c->p[0]) {
	case 'n':
	case 'y':
		c->pos = 1;
		break;
	case 'p':
		if (!attr(c, 'p', &v, &vlen))
			return SASL_E_MALFORMED;
		for (size_t i = 0; i < vlen; i++) {
			char ch = v[i];

			if (!((ch >= 'a' && ch <= 'z') ||
				(ch >= 'A' && ch <= 'Z') ||
				(ch >= '0' && ch <= '9') || ch == '.' ||
				ch == '-'))
				return SASL_E_MALFORMED;
		}
		if ((e = cbind_policy(s, v, vlen)) != SASL_E_NONE)
			return e;
		break;
	default:
		return SASL_E_MALFORMED;
	}
	if (s->u.scram.cbflag != 'p' &&
	    (e = cbind_policy(s, NULL, 0)) != SASL_E_NONE)
		return e;
	if (c->pos == c->len || c->p[c->pos++] != ',')
		return SASL_E_MALFORMED;
	if (c->pos < c->len && c->p[c->pos] == 'a') {
		if (!attr(c, 'a', &v, &vlen))
			return SASL_E_MALFORMED;
		if ((e = saslname(v, vlen, authzid, authzid_len)) !=
		    SASL_E_NONE)
			return e;
	}
	if (c->pos == c->len || c->p[c->pos++] != ',')
		return SASL_E_MALFORMED;
	return SASL_E_NONE;
}

/*
 * Is this cbind flag (name for 'p', NULL for 'n'/'y') acceptable for the
 * mechanism chosen and what we advertise?
 */
static enum sasl_error
cbind_policy(struct sasl_server *s, const char *name, size_t len)
{
	bool plus = s->mech->id == SASL_MECH_SCRAM_SHA_256_PLUS;

	if (plus) {
		/* -PLUS means binding: only to the one type we support. */
		if (name == NULL || len != strlen(CBIND_NAME) ||
		    memcmp(name, CBIND_NAME, len) != 0)
			return SASL_E_CBIND;
		return SASL_E_NONE;
	}
	/* Binding requested without -PLUS contradicts itself. */
	if (name != NULL)
		return SASL_E_CBIND;
	/* 'y': "I could bind but you do not offer it". We do: downgrade. */
	if (s->u.scram.cbflag == 'y' && (s->flags & SASL_F_CBIND))
		return SASL_E_CBIND;
	return SASL_E_NONE;
}

/*
 * Read "<name>=value" at the cursor, the value ending at ',' or the end.
 * The value must not be empty. On success the cursor is on the ',' (or
 * the end).
 */
static bool
attr(struct cursor *c, char name, const char **v, size_t *vlen)
{
	char got;

	return attr_any(c, &got, v, vlen) && got == name;
}

/* attr-val = ALPHA "=" value: any attribute, its name in *name_r. */
static bool
attr_any(struct cursor *c, char *name_r, const char **v, size_t *vlen)
{
	const char *end;
	char name;

	if (c->len - c->pos < 3)
		return false;
	name = c->p[c->pos];
	if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z')) ||
	    c->p[c->pos + 1] != '=')
		return false;
	*v = c->p + c->pos + 2;
	end = memchr(*v, ',', c->len - c->pos - 2);
	*vlen = end != NULL ? (size_t)(end - *v) : c->len - c->pos - 2;
	if (*vlen == 0)
		return false;
	c->pos += 2 + *vlen;
	*name_r = name;
	return true;
}

/*
 * saslname = 1*(value-safe-char / "=2C" / "=3D"): decode into out
 * (SASL_NAME_MAX + 1 bytes, NUL-terminated). Control characters and any
 * other use of '=' are refused.
 */
static enum sasl_error
saslname(const char *v, size_t vlen, char *out, size_t *out_len)
{
	size_t n = 0;

	for (size_t i = 0; i < vlen; i++) {
		char ch = v[i];

		if (n == SASL_NAME_MAX)
			return SASL_E_TOOLONG;
		if (ch == '=') {
			if (vlen - i < 3)
				return SASL_E_MALFORMED;
			if (v[i + 1] == '2' && v[i + 2] == 'C')
				ch = ',';
			else if (v[i + 1] == '3' && v[i + 2] == 'D')
				ch = '=';
			else
				return SASL_E_MALFORMED;
			i += 2;
		}
		out[n++] = ch;
	}
	out[n] = '\0';
	*out_len = n;
	if (n == 0 || !sasl_name_valid(out, n))
		return SASL_E_MALFORMED;
	return SASL_E_NONE;
}

/* c-nonce = 1*printable, printable = %x21-2B / %x2D-7E (no ','). */
static bool
nonce_valid(const char *v, size_t vlen)
{
	if (vlen == 0)
		return false;
	for (size_t i = 0; i < vlen; i++) {
		if (v[i] < 0x21 || v[i] > 0x7e || v[i] == ',')
			return false;
	}
	return true;
}

/* c= must be base64(gs2-header [tls-exporter data for -PLUS]). */
static enum sasl_error
cbind_check(struct sasl_server *s, const char *v, size_t vlen)
{
	struct sasl_scram *sc = &s->u.scram;
	uint8_t got[GS2_MAX + SASL_CBIND_MAX + 3];
	uint8_t want[GS2_MAX + SASL_CBIND_MAX];
	size_t glen, wlen = sc->gs2_len;
	bool ok;

	if (parse_b64(v, vlen, got, 1, sizeof(got), &glen) == -1)
		return SASL_E_MALFORMED;
	if (sc->gs2_len > GS2_MAX)
		return SASL_E_MALFORMED;
	memcpy(want, sc->cfm, sc->gs2_len);
	if (sc->cbflag == 'p') {
		memcpy(want + wlen, s->cbind, s->cbind_len);
		wlen += s->cbind_len;
	}
	ok = glen == wlen && CRYPTO_memcmp(got, want, wlen) == 0;
	return ok ? SASL_E_NONE : SASL_E_CBIND;
}

/* ---- keys --------------------------------------------------------------- */

/*
 * An unknown user's keys: a salt that is stable for the name (probing
 * twice must not show a difference a real user would not) and random keys
 * no proof can match.
 */
static int
fake_keys(struct sasl_server *s)
{
	static const char label[] = "ringgate scram fake salt";
	struct sasl_scram *sc = &s->u.scram;
	const uint8_t *secret = s->secret;
	size_t slen = s->secret_len, n = 0, ulen = strlen(s->authcid);
	uint8_t msg[sizeof(label) + SASL_NAME_MAX], mac[32];
	unsigned mdlen = 0;

	if (slen == 0 && (secret = sasl_default_secret(&slen)) == NULL)
		return -1;
	memcpy(msg, label, sizeof(label)); /* with its NUL as separator */
	n = sizeof(label);
	/* User names are looked up lowercased: so is the fake salt's. */
	for (size_t i = 0; i < ulen; i++) {
		char ch = s->authcid[i];

		msg[n++] = (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	if (HMAC(EVP_sha256(), secret, (int)slen, msg, n, mac, &mdlen) == NULL)
		return -1;
	sc->keys.iter = s->fake_iter;
	sc->keys.salt_len = SASL_SCRAM_FAKE_SALT;
	memcpy(sc->keys.salt, mac, SASL_SCRAM_FAKE_SALT);
	OPENSSL_cleanse(mac, sizeof(mac));
	if (sasl_random(sc->keys.stored_key, 32) == -1 ||
	    sasl_random(sc->keys.server_key, 32) == -1)
		return -1;
	sc->fake = true;
	return 0;
}

/* server-first-message = "r=" c-nonce s-nonce ",s=" salt ",i=" iter */
static int
server_first(struct sasl_server *s)
{
	struct sasl_scram *sc = &s->u.scram;
	char snonce[SASL_NONCE_MAX + 1], salt[SASL_SCRAM_SALT_MAX / 3 * 4 + 8];
	uint8_t raw[SERVER_NONCE_RAW];
	size_t snonce_len;
	int n;

	if (s->nonce_len > 0) {
		memcpy(snonce, s->nonce, s->nonce_len + 1);
	} else if (sasl_random(raw, sizeof(raw)) == -1 ||
	    base64_encode(raw, sizeof(raw), snonce, sizeof(snonce), NULL) ==
		-1) {
		return -1;
	}
	snonce_len = strlen(snonce);
	if (base64_encode(sc->keys.salt, sc->keys.salt_len, salt, sizeof(salt),
		NULL) == -1)
		return -1;
	n = snprintf(sc->sfm, sizeof(sc->sfm), "r=%.*s%s,s=%s,i=%u",
	    (int)sc->cnonce_len, sc->cfm + sc->cnonce_off, snonce, salt,
	    (unsigned)sc->keys.iter);
	if (n < 0 || (size_t)n >= sizeof(sc->sfm))
		return -1;
	sc->sfm_len = (size_t)n;
	sc->nonce_off = 2;
	sc->nonce_len = sc->cnonce_len + snonce_len;
	return 0;
}

int
sasl_scram_keys_parse(const char *s, size_t len, struct sasl_scram_keys *k,
    const char **error_r)
{
	static const char scheme[] = "{SCRAM-SHA-256}";
	static const char rfc5803[] = "SCRAM-SHA-256$";
	const char *f[4], *end = s + len;
	size_t flen[4], n;
	char sep[3] = { ',', ',', ',' };

	if (len >= sizeof(scheme) - 1 &&
	    strncasecmp(s, scheme, sizeof(scheme) - 1) == 0)
		s += sizeof(scheme) - 1;
	if ((size_t)(end - s) >= sizeof(rfc5803) - 1 &&
	    memcmp(s, rfc5803, sizeof(rfc5803) - 1) == 0) {
		s += sizeof(rfc5803) - 1;
		sep[0] = ':';
		sep[1] = '$';
		sep[2] = ':';
	}
	/* Four fields: iter, salt, StoredKey, ServerKey. */
	for (int i = 0; i < 4; i++) {
		const char *stop = end;

		if (i < 3 &&
		    (stop = memchr(s, sep[i], (size_t)(end - s))) == NULL) {
			*error_r = "SCRAM-SHA-256 keys are malformed";
			goto fail;
		}
		f[i] = s;
		flen[i] = (size_t)(stop - s);
		s = stop + (i < 3);
	}
	if (auth_u32_parse(f[0], flen[0], SASL_SCRAM_ITER_MAX, &k->iter) ==
		-1 ||
	    k->iter == 0) {
		*error_r = "SCRAM-SHA-256 iteration count is invalid";
		goto fail;
	}
	if (parse_b64(f[1], flen[1], k->salt, 1, SASL_SCRAM_SALT_MAX,
		&k->salt_len) == -1) {
		*error_r = "SCRAM-SHA-256 salt is not base64";
		goto fail;
	}
	if (parse_b64(f[2], flen[2], k->stored_key, 32, 32, &n) == -1 ||
	    parse_b64(f[3], flen[3], k->server_key, 32, 32, &n) == -1) {
		*error_r = "SCRAM-SHA-256 keys are not 32 bytes of base64";
		goto fail;
	}
	return 0;
fail:
	OPENSSL_cleanse(k, sizeof(*k));
	return -1;
}

/*
 * Strict base64 of min..max bytes into out, which has room for max bytes
 * (a longer value is refused without writing past it).
 */
static int
parse_b64(const char *p, size_t len, uint8_t *out, size_t min, size_t max,
    size_t *out_len)
{
	if (base64_decode(p, len, out, max, out_len, 0) != BASE64_OK)
		return -1;
	return *out_len >= min && *out_len <= max ? 0 : -1;
}
