/*
 * scheme.c - password schemes: verify a password against a stored
 * "{SCHEME}data" string and make new hashes.
 *
 * Relies on libsodium for ARGON2ID with one lane (p=1) and libargon2 for
 * the rest of ARGON2ID, libxcrypt's crypt_rn() and
 * crypt_gensalt_rn() for the crypt family (bcrypt, sha512/256-crypt,
 * yescrypt), OpenSSL for PBKDF2/HMAC/SHA-256 (SCRAM), CRYPTO_memcmp() and
 * OPENSSL_cleanse(), getrandom(2) for salts, proto/base64.h for SCRAM key
 * text and sasl_scram_keys_parse() (auth/sasl_scram.c) to read stored
 * SCRAM keys.
 *
 * Everything here is re-entrant and keeps no state between calls, so any
 * number of worker threads may verify at once. It must never leave a
 * password copy or a derived key in freed memory, never compare secrets
 * with memcmp(), and never accept a stored string whose body does not
 * match its {SCHEME} tag (a {BLF-CRYPT} holding a DES crypt would
 * otherwise verify through crypt_rn() at DES strength).
 *
 * Why two Argon2 libraries: at m=64 MiB, t=3, p=1 libsodium takes less than
 * half the CPU of Debian's libargon2 (docs/benchmarks.md, "auth:
 * verifications per second"): it maps its memory with MAP_POPULATE instead
 * of taking 16,384 page faults inside the fill loop, and picks SIMD code at
 * run time where Debian builds libargon2's portable code. Both compute the
 * same function and write the same PHC strings. libsodium has one lane
 * only and reads only v=19 strings with a tag of 16 bytes or more, so
 * everything else (p>1 hashes from other tools, v=16, short tags) still
 * goes to libargon2, which reads every form it ever wrote.
 */
#include <argon2.h>
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <sodium.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "proto/base64.h"

#define SALT_BYTES 16
#define ARGON2_HASH_BYTES 32
#define ARGON2_SODIUM_PREFIX "$argon2id$v=19$m="
#define ARGON2_SODIUM_MIN_TAG64 22 /* base64 of libsodium's 16-byte minimum */
#define SCRAM_PREFIX "SCRAM-SHA-256$"

struct scheme_def {
	const char *name;
	enum auth_scheme id;
	const char *crypt_prefix; /* what crypt_gensalt_rn() wants, or NULL */
};

static const struct scheme_def schemes[] = {
	{ "ARGON2ID", AUTH_SCHEME_ARGON2ID, NULL },
	{ "BLF-CRYPT", AUTH_SCHEME_BLF_CRYPT, "$2b$" },
	{ "SHA512-CRYPT", AUTH_SCHEME_SHA512_CRYPT, "$6$" },
	{ "SHA256-CRYPT", AUTH_SCHEME_SHA256_CRYPT, "$5$" },
	{ "YESCRYPT", AUTH_SCHEME_YESCRYPT, "$y$" },
	{ "SCRAM-SHA-256", AUTH_SCHEME_SCRAM_SHA_256, NULL },
	{ "PLAIN", AUTH_SCHEME_PLAIN, NULL },
	{ "CLEARTEXT", AUTH_SCHEME_PLAIN, NULL },
};

/* Stored-string prefixes that identify a scheme without a {TAG}, and what
 * a tagged body must start with. */
static const struct {
	const char *prefix;
	enum auth_scheme id;
} body_prefixes[] = {
	{ "$argon2id$", AUTH_SCHEME_ARGON2ID },
	{ "$2b$", AUTH_SCHEME_BLF_CRYPT },
	{ "$2y$", AUTH_SCHEME_BLF_CRYPT },
	{ "$2a$", AUTH_SCHEME_BLF_CRYPT },
	{ "$6$", AUTH_SCHEME_SHA512_CRYPT },
	{ "$5$", AUTH_SCHEME_SHA256_CRYPT },
	{ "$y$", AUTH_SCHEME_YESCRYPT },
	{ SCRAM_PREFIX, AUTH_SCHEME_SCRAM_SHA_256 },
};

/* scheme lookup */
static int split_stored(const char *stored, enum auth_scheme *s_r,
    const char **body_r, const char **error_r);
static int body_scheme(const char *body, enum auth_scheme *s_r);
static void opts_fill(const struct auth_scheme_opts *in,
    struct auth_scheme_opts *out);

/* verification per family */
static bool sodium_ready(void);
static void sodium_setup(void);
static bool argon2_sodium_reads(const char *body);
static enum auth_verify verify_argon2_sodium(const char *body, const char *pw,
    size_t pwlen, const char **error_r);
static enum auth_verify verify_argon2(const char *body, const char *pw,
    size_t pwlen, const char **error_r);
static enum auth_verify verify_crypt(const char *body, const char *pw,
    size_t pwlen, const char **error_r);
static enum auth_verify verify_scram(const char *body, const char *pw,
    size_t pwlen, const char **error_r);
static enum auth_verify verify_plain(const char *body, const char *pw,
    size_t pwlen);

/* generation per family */
static int hash_argon2(const char *pw, size_t pwlen,
    const struct auth_scheme_opts *o, char **out_r, const char **error_r);
static int hash_argon2_sodium(const char *pw, size_t pwlen,
    const struct auth_scheme_opts *o, char **out_r, const char **error_r);
static int hash_crypt(const struct scheme_def *d, const char *pw, size_t pwlen,
    const struct auth_scheme_opts *o, char **out_r, const char **error_r);
static int hash_scram(const char *pw, size_t pwlen,
    const struct auth_scheme_opts *o, char **out_r, const char **error_r);
static int hash_plain(const char *pw, size_t pwlen, char **out_r,
    const char **error_r);

/* small tools */
static char *pw_cstring(const char *pw, size_t pwlen);
static void pw_free(char *copy, size_t pwlen);
static int random_bytes(void *p, size_t n);
static char *tagged(enum auth_scheme s, const char *body);

void
auth_scheme_opts_default(struct auth_scheme_opts *o)
{
	opts_fill(o, o);
}

static void
opts_fill(const struct auth_scheme_opts *in, struct auth_scheme_opts *out)
{
	*out = *in;
	if (out->argon2_m_kib == 0)
		out->argon2_m_kib = 65536;
	if (out->argon2_t == 0)
		out->argon2_t = 3;
	if (out->argon2_p == 0)
		out->argon2_p = 1;
	if (out->bcrypt_cost == 0)
		out->bcrypt_cost = 10;
	if (out->sha_rounds == 0)
		out->sha_rounds = 5000;
	if (out->yescrypt_cost == 0)
		out->yescrypt_cost = 5;
	if (out->scram_iter == 0)
		out->scram_iter = 4096;
}

int
auth_scheme_parse(const char *name, size_t n, enum auth_scheme *s_r)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].name) == n &&
		    strncasecmp(schemes[i].name, name, n) == 0) {
			*s_r = schemes[i].id;
			return 0;
		}
	}
	return -1;
}

const char *
auth_scheme_name(enum auth_scheme s)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (schemes[i].id == s)
			return schemes[i].name;
	return "UNKNOWN";
}

static int
body_scheme(const char *body, enum auth_scheme *s_r)
{
	size_t n = sizeof(body_prefixes) / sizeof(body_prefixes[0]);

	for (size_t i = 0; i < n; i++) {
		const char *p = body_prefixes[i].prefix;

		if (strncmp(body, p, strlen(p)) == 0) {
			*s_r = body_prefixes[i].id;
			return 0;
		}
	}
	return -1;
}

/* "{TAG}body" or a bare crypt body. {CRYPT} (Dovecot's generic tag) is
 * accepted for the strong crypt prefixes only. */
static int
split_stored(const char *stored, enum auth_scheme *s_r, const char **body_r,
    const char **error_r)
{
	const char *close;
	enum auth_scheme from_body;

	if (stored[0] != '{') {
		if (body_scheme(stored, s_r) == -1) {
			*error_r =
			    "password has no {SCHEME} and no known prefix";
			return -1;
		}
		*body_r = stored;
		return 0;
	}
	close = strchr(stored, '}');
	if (close == NULL) {
		*error_r = "unterminated {SCHEME}";
		return -1;
	}
	*body_r = close + 1;
	if (close - stored - 1 == 5 &&
	    strncasecmp(stored + 1, "CRYPT", 5) == 0) {
		if (body_scheme(*body_r, s_r) == -1 ||
		    *s_r == AUTH_SCHEME_SCRAM_SHA_256) {
			*error_r = "{CRYPT} body is not a supported crypt";
			return -1;
		}
		return 0;
	}
	if (auth_scheme_parse(stored + 1, close - stored - 1, s_r) == -1) {
		*error_r = "unknown password scheme";
		return -1;
	}
	switch (*s_r) {
	case AUTH_SCHEME_PLAIN:
		return 0;
	case AUTH_SCHEME_SCRAM_SHA_256:
		/* Dovecot's comma form has no prefix; checked when parsed. */
		return 0;
	default:
		if (body_scheme(*body_r, &from_body) == -1 ||
		    from_body != *s_r) {
			*error_r = "hash does not match its {SCHEME}";
			return -1;
		}
		return 0;
	}
}

int
auth_scheme_of(const char *stored, enum auth_scheme *s_r, const char **error_r)
{
	const char *body;

	return split_stored(stored, s_r, &body, error_r);
}

enum auth_verify
auth_scheme_verify(const char *stored, const char *password, size_t pwlen,
    const struct auth_scheme_opts *o, const char **error_r)
{
	enum auth_scheme s;
	const char *body;

	if (stored == NULL) {
		*error_r = "no password";
		return AUTH_VERIFY_ERROR;
	}
	if (split_stored(stored, &s, &body, error_r) == -1)
		return AUTH_VERIFY_ERROR;
	switch (s) {
	case AUTH_SCHEME_ARGON2ID:
		return verify_argon2(body, password, pwlen, error_r);
	case AUTH_SCHEME_BLF_CRYPT:
	case AUTH_SCHEME_SHA512_CRYPT:
	case AUTH_SCHEME_SHA256_CRYPT:
	case AUTH_SCHEME_YESCRYPT:
		return verify_crypt(body, password, pwlen, error_r);
	case AUTH_SCHEME_SCRAM_SHA_256:
		return verify_scram(body, password, pwlen, error_r);
	case AUTH_SCHEME_PLAIN:
		if (o == NULL || !o->allow_plaintext) {
			*error_r = "plaintext passwords are not enabled";
			return AUTH_VERIFY_ERROR;
		}
		return verify_plain(body, password, pwlen);
	default:
		*error_r = "unknown password scheme";
		return AUTH_VERIFY_ERROR;
	}
}

/* sodium_init() must run before any other libsodium call. Callers reach
 * this file from the verify pool, ringgate-passwd and tests, with no common
 * start-up, so the first libsodium use in the process runs it, once, under
 * pthread_once(). If it fails, libargon2 does all the work. */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static bool sodium_ok;

static void
sodium_setup(void)
{
	sodium_ok = sodium_init() >= 0;
}

static bool
sodium_ready(void)
{
	(void)pthread_once(&sodium_once, sodium_setup);
	return sodium_ok;
}

/* Whether libsodium reads body exactly as libargon2 would: it must be
 * "$argon2id$v=19$m=<digits>,t=<digits>,p=1$<salt>$<tag>" with a tag of at
 * least 16 bytes. Only the shape is checked, on the stored string alone
 * (never the password); libsodium decodes the numbers and base64 itself.
 * A string that fails here is not refused, only left to libargon2. */
static bool
argon2_sodium_reads(const char *body)
{
	size_t n = strlen(ARGON2_SODIUM_PREFIX);
	const char *p, *tag;

	if (strncmp(body, ARGON2_SODIUM_PREFIX, n) != 0)
		return false;
	p = body + n;
	if ((n = strspn(p, "0123456789")) == 0 || strncmp(p + n, ",t=", 3) != 0)
		return false;
	p += n + 3;
	if ((n = strspn(p, "0123456789")) == 0 ||
	    strncmp(p + n, ",p=1$", 5) != 0)
		return false;
	p += n + 5;
	tag = strrchr(p, '$');
	return tag != NULL && strlen(tag + 1) >= ARGON2_SODIUM_MIN_TAG64;
}

/* libsodium compares the tag with sodium_memcmp() (constant time). It
 * returns -1 both for a wrong password and for a string it cannot use;
 * only the former sets errno to EINVAL. */
static enum auth_verify
verify_argon2_sodium(const char *body, const char *pw, size_t pwlen,
    const char **error_r)
{
	errno = 0;
	if (crypto_pwhash_argon2id_str_verify(body, pw, pwlen) == 0)
		return AUTH_VERIFY_OK;
	if (errno == EINVAL)
		return AUTH_VERIFY_MISMATCH;
	*error_r = errno == ENOMEM ? "out of memory" :
				     "argon2id hash is malformed";
	return AUTH_VERIFY_ERROR;
}

/* libargon2 decodes the parameters from the string and compares the tag
 * in constant time itself. Which library runs depends on the stored string
 * only, so the time still says nothing about the password. */
static enum auth_verify
verify_argon2(const char *body, const char *pw, size_t pwlen,
    const char **error_r)
{
	int r;

	if (argon2_sodium_reads(body) && sodium_ready())
		return verify_argon2_sodium(body, pw, pwlen, error_r);
	r = argon2id_verify(body, pw, pwlen);
	if (r == ARGON2_OK)
		return AUTH_VERIFY_OK;
	if (r == ARGON2_VERIFY_MISMATCH)
		return AUTH_VERIFY_MISMATCH;
	*error_r = argon2_error_message(r);
	return AUTH_VERIFY_ERROR;
}

static enum auth_verify
verify_crypt(const char *body, const char *pw, size_t pwlen,
    const char **error_r)
{
	struct crypt_data *cd;
	enum auth_verify ret = AUTH_VERIFY_MISMATCH;
	char *copy;
	const char *out;
	size_t blen = strlen(body);

	/* crypt() sees a C string: an embedded NUL would silently shorten
	 * the password, so such a password simply does not match. */
	if (memchr(pw, '\0', pwlen) != NULL)
		return AUTH_VERIFY_MISMATCH;
	if ((copy = pw_cstring(pw, pwlen)) == NULL) {
		*error_r = "out of memory";
		return AUTH_VERIFY_ERROR;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		pw_free(copy, pwlen);
		*error_r = "out of memory";
		return AUTH_VERIFY_ERROR;
	}
	out = crypt_rn(copy, body, cd, sizeof(*cd));
	if (out == NULL) {
		*error_r = "crypt hash is malformed";
		ret = AUTH_VERIFY_ERROR;
	} else if (strlen(out) == blen && CRYPTO_memcmp(out, body, blen) == 0) {
		ret = AUTH_VERIFY_OK;
	}
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	pw_free(copy, pwlen);
	return ret;
}

static enum auth_verify
verify_scram(const char *body, const char *pw, size_t pwlen,
    const char **error_r)
{
	struct sasl_scram_keys stored, mine;
	enum auth_verify ret = AUTH_VERIFY_MISMATCH;

	if (sasl_scram_keys_parse(body, strlen(body), &stored, error_r) == -1)
		return AUTH_VERIFY_ERROR;
	mine.iter = stored.iter;
	mine.salt_len = stored.salt_len;
	memcpy(mine.salt, stored.salt, stored.salt_len);
	if (auth_scram_derive(pw, pwlen, &mine) == -1) {
		*error_r = "SCRAM key derivation failed";
		ret = AUTH_VERIFY_ERROR;
	} else if (CRYPTO_memcmp(mine.stored_key, stored.stored_key,
		       sizeof(mine.stored_key)) == 0) {
		ret = AUTH_VERIFY_OK;
	}
	OPENSSL_cleanse(&mine, sizeof(mine));
	return ret;
}

/* Compare digests, not the strings, so the time does not depend on where
 * the first difference is nor on the stored length. */
static enum auth_verify
verify_plain(const char *body, const char *pw, size_t pwlen)
{
	uint8_t a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
	bool same;

	SHA256((const uint8_t *)body, strlen(body), a);
	SHA256((const uint8_t *)pw, pwlen, b);
	same = CRYPTO_memcmp(a, b, sizeof(a)) == 0 && strlen(body) == pwlen;
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return same ? AUTH_VERIFY_OK : AUTH_VERIFY_MISMATCH;
}

/* ---- SCRAM ------------------------------------------------------------ */

/* Stored keys are parsed by sasl_scram_keys_parse() (auth/sasl_scram.c),
 * the one reader of both stored forms. */

int
auth_scram_derive(const char *password, size_t pwlen, struct sasl_scram_keys *k)
{
	uint8_t salted[32], client_key[32];
	unsigned int len = 0;
	int ret = -1;

	if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, k->salt, (int)k->salt_len,
		(int)k->iter, EVP_sha256(), sizeof(salted), salted) != 1)
		goto fail;
	if (HMAC(EVP_sha256(), salted, sizeof(salted),
		(const uint8_t *)"Client Key", 10, client_key, &len) == NULL)
		goto fail;
	SHA256(client_key, sizeof(client_key), k->stored_key);
	if (HMAC(EVP_sha256(), salted, sizeof(salted),
		(const uint8_t *)"Server Key", 10, k->server_key, &len) == NULL)
		goto fail;
	ret = 0;
fail:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ret;
}

/* ---- generation ------------------------------------------------------- */

int
auth_scheme_hash(enum auth_scheme s, const char *password, size_t pwlen,
    const struct auth_scheme_opts *o, char **hash_r, const char **error_r)
{
	struct auth_scheme_opts opts = { 0 };

	if (o != NULL)
		opts = *o;
	opts_fill(&opts, &opts);
	if (pwlen > AUTH_PASSWORD_MAX) {
		*error_r = "password too long";
		return -1;
	}
	switch (s) {
	case AUTH_SCHEME_ARGON2ID:
		return hash_argon2(password, pwlen, &opts, hash_r, error_r);
	case AUTH_SCHEME_BLF_CRYPT:
	case AUTH_SCHEME_SHA512_CRYPT:
	case AUTH_SCHEME_SHA256_CRYPT:
	case AUTH_SCHEME_YESCRYPT:
		for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]);
		     i++)
			if (schemes[i].id == s)
				return hash_crypt(&schemes[i], password, pwlen,
				    &opts, hash_r, error_r);
		break;
	case AUTH_SCHEME_SCRAM_SHA_256:
		return hash_scram(password, pwlen, &opts, hash_r, error_r);
	case AUTH_SCHEME_PLAIN:
		if (!opts.allow_plaintext) {
			*error_r = "plaintext passwords are not enabled";
			return -1;
		}
		return hash_plain(password, pwlen, hash_r, error_r);
	default:
		break;
	}
	*error_r = "unknown password scheme";
	return -1;
}

/* One lane goes to libsodium, whose string has the same form as ours
 * (16-byte salt, 32-byte tag); p>1 and costs libsodium refuses (m<8 KiB,
 * which libargon2 refuses too) go to libargon2. */
static int
hash_argon2(const char *pw, size_t pwlen, const struct auth_scheme_opts *o,
    char **out_r, const char **error_r)
{
	uint8_t salt[SALT_BYTES];
	size_t elen;
	char *enc;
	int r;

	if (o->argon2_p == 1 && o->argon2_m_kib >= 8 && sodium_ready())
		return hash_argon2_sodium(pw, pwlen, o, out_r, error_r);
	elen = argon2_encodedlen(o->argon2_t, o->argon2_m_kib, o->argon2_p,
	    SALT_BYTES, ARGON2_HASH_BYTES, Argon2_id);
	enc = malloc(elen + 1);
	if (enc == NULL || random_bytes(salt, sizeof(salt)) == -1) {
		free(enc);
		*error_r = "out of memory or randomness";
		return -1;
	}
	r = argon2id_hash_encoded(o->argon2_t, o->argon2_m_kib, o->argon2_p, pw,
	    pwlen, salt, sizeof(salt), ARGON2_HASH_BYTES, enc, elen + 1);
	if (r != ARGON2_OK) {
		free(enc);
		*error_r = argon2_error_message(r);
		return -1;
	}
	*out_r = tagged(AUTH_SCHEME_ARGON2ID, enc);
	free(enc);
	if (*out_r == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

static int
hash_argon2_sodium(const char *pw, size_t pwlen,
    const struct auth_scheme_opts *o, char **out_r, const char **error_r)
{
	char enc[crypto_pwhash_argon2id_STRBYTES];

	if (crypto_pwhash_argon2id_str(enc, pw, pwlen, o->argon2_t,
		(size_t)o->argon2_m_kib * 1024) != 0) {
		*error_r = errno == ENOMEM ? "out of memory" :
					     "invalid argon2id cost";
		return -1;
	}
	if ((*out_r = tagged(AUTH_SCHEME_ARGON2ID, enc)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

static int
hash_crypt(const struct scheme_def *d, const char *pw, size_t pwlen,
    const struct auth_scheme_opts *o, char **out_r, const char **error_r)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE], *copy = NULL;
	uint8_t rnd[SALT_BYTES];
	unsigned long count;
	struct crypt_data *cd = NULL;
	const char *out;
	int ret = -1;

	*error_r = "out of memory";
	if (memchr(pw, '\0', pwlen) != NULL) {
		*error_r = "crypt schemes cannot hold a NUL byte";
		return -1;
	}
	switch (d->id) {
	case AUTH_SCHEME_BLF_CRYPT:
		count = o->bcrypt_cost;
		break;
	case AUTH_SCHEME_YESCRYPT:
		count = o->yescrypt_cost;
		break;
	default:
		count = o->sha_rounds;
		break;
	}
	if (random_bytes(rnd, sizeof(rnd)) == -1) {
		*error_r = "getrandom failed";
		return -1;
	}
	if (crypt_gensalt_rn(d->crypt_prefix, count, (const char *)rnd,
		sizeof(rnd), setting, sizeof(setting)) == NULL) {
		*error_r = "invalid crypt cost";
		return -1;
	}
	if ((copy = pw_cstring(pw, pwlen)) == NULL ||
	    (cd = calloc(1, sizeof(*cd))) == NULL)
		goto fail;
	if ((out = crypt_rn(copy, setting, cd, sizeof(*cd))) == NULL) {
		*error_r = "crypt failed";
		goto fail;
	}
	if ((*out_r = tagged(d->id, out)) == NULL)
		goto fail;
	ret = 0;
fail:
	if (cd != NULL)
		OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	pw_free(copy, pwlen);
	return ret;
}

static int
hash_scram(const char *pw, size_t pwlen, const struct auth_scheme_opts *o,
    char **out_r, const char **error_r)
{
	struct sasl_scram_keys k = { .iter = o->scram_iter,
		.salt_len = SALT_BYTES };
	char salt64[64], stored64[64], server64[64], body[256];

	/* The buffers hold base64 of 16 and 32 bytes: encoding cannot fail. */
	if (o->scram_iter > SASL_SCRAM_ITER_MAX ||
	    random_bytes(k.salt, k.salt_len) == -1 ||
	    auth_scram_derive(pw, pwlen, &k) == -1 ||
	    base64_encode(k.salt, k.salt_len, salt64, sizeof(salt64), NULL) ==
		-1 ||
	    base64_encode(k.stored_key, sizeof(k.stored_key), stored64,
		sizeof(stored64), NULL) == -1 ||
	    base64_encode(k.server_key, sizeof(k.server_key), server64,
		sizeof(server64), NULL) == -1) {
		OPENSSL_cleanse(&k, sizeof(k));
		*error_r = "SCRAM key derivation failed";
		return -1;
	}
	snprintf(body, sizeof(body), SCRAM_PREFIX "%u:%s$%s:%s", k.iter, salt64,
	    stored64, server64);
	OPENSSL_cleanse(&k, sizeof(k));
	if ((*out_r = tagged(AUTH_SCHEME_SCRAM_SHA_256, body)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

/* A plaintext password must survive a passwd-file line. */
static int
hash_plain(const char *pw, size_t pwlen, char **out_r, const char **error_r)
{
	char *copy;

	for (size_t i = 0; i < pwlen; i++) {
		if (pw[i] == ':' || pw[i] == '\n' || pw[i] == '\r' ||
		    pw[i] == '\0') {
			*error_r = "a plaintext password cannot hold ':', "
				   "a line break or NUL";
			return -1;
		}
	}
	if ((copy = pw_cstring(pw, pwlen)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	*out_r = tagged(AUTH_SCHEME_PLAIN, copy);
	pw_free(copy, pwlen);
	if (*out_r == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

int
auth_scheme_dummy(enum auth_scheme s, const struct auth_scheme_opts *o,
    char **hash_r, const char **error_r)
{
	uint8_t rnd[24];
	char pw[64];
	size_t n;
	int r;

	if (random_bytes(rnd, sizeof(rnd)) == -1) {
		*error_r = "getrandom failed";
		return -1;
	}
	/* base64 keeps it printable, so every scheme can hold it. */
	if (base64_encode(rnd, sizeof(rnd), pw, sizeof(pw), &n) == -1) {
		OPENSSL_cleanse(rnd, sizeof(rnd));
		*error_r = "base64 failed";
		return -1;
	}
	r = auth_scheme_hash(s, pw, n, o, hash_r, error_r);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	OPENSSL_cleanse(pw, sizeof(pw));
	return r;
}

/* ---- small tools ------------------------------------------------------ */

static char *
pw_cstring(const char *pw, size_t pwlen)
{
	char *copy = malloc(pwlen + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, pw, pwlen);
	copy[pwlen] = '\0';
	return copy;
}

static void
pw_free(char *copy, size_t pwlen)
{
	if (copy == NULL)
		return;
	OPENSSL_cleanse(copy, pwlen + 1);
	free(copy);
}

static int
random_bytes(void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = getrandom(b, n, 0);

		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static char *
tagged(enum auth_scheme s, const char *body)
{
	const char *name = auth_scheme_name(s);
	size_t n = strlen(name) + strlen(body) + 3;
	char *out = malloc(n);

	if (out != NULL)
		snprintf(out, n, "{%s}%s", name, body);
	return out;
}
