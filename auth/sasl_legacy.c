/*
 * sasl_legacy.c - CRAM-MD5 (RFC 2195) and the POP3 APOP digest (RFC 1939).
 *
 * Both are challenge-response schemes over MD5 that need the server to
 * hold a plaintext-equivalent secret, which is why they exist only as an
 * opt-in (SASL_F_LEGACY; the daemon warns at start when it is on). The
 * challenge is "<random.time@host>" with 64 random bits, so a digest seen
 * once is useless later. The secret is asked of the caller after the
 * response is in, used for one HMAC or digest and wiped; unknown users run
 * the same computation over a random key and fail the same way.
 *
 * Relies on OpenSSL's MD5 and HMAC (the default provider). Never: compares
 * digests with memcmp, or stores the secret in the session.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/sasl.h"
#include "auth/sasl_private.h"

static enum sasl_rc cram_begin(struct sasl_server *s);
static enum sasl_rc cram_step(struct sasl_server *s, const uint8_t *p,
    size_t len);
static enum sasl_rc cram_allowed(struct sasl_server *s);
static int hex_digest(const char *hex, size_t len, uint8_t out[16]);
static int hex_nibble(char c);
static bool host_valid(const char *host, size_t len);

const struct sasl_mech_ops sasl_cram_ops = {
	.begin = cram_begin,
	.step = cram_step,
	.wipe = NULL,
	.allowed = cram_allowed,
};

/* ---- CRAM-MD5 ------------------------------------------------------------ */

/* The server speaks first: the challenge, or an injected one in tests. */
static enum sasl_rc
cram_begin(struct sasl_server *s)
{
	struct sasl_cram *c = &s->u.cram;
	int n;

	if (s->nonce_len > 0) {
		memcpy(c->chal, s->nonce, s->nonce_len);
		c->chal_len = s->nonce_len;
	} else {
		n = sasl_legacy_timestamp(c->chal, sizeof(c->chal),
		    s->hostname);
		if (n == -1)
			return sasl_fail(s, SASL_E_INTERNAL);
		c->chal_len = (size_t)n;
	}
	return sasl_continue(s, c->chal, c->chal_len);
}

/* response = user SP digest, digest = 32 hex digits (RFC 2195 section 2);
 * the last space separates, so a name could even contain one. */
static enum sasl_rc
cram_step(struct sasl_server *s, const uint8_t *p, size_t len)
{
	const char *msg = (const char *)p, *sp;
	enum sasl_error e;
	size_t ulen;

	if ((sp = memrchr(msg, ' ', len)) == NULL)
		return sasl_fail(s, SASL_E_MALFORMED);
	ulen = (size_t)(sp - msg);
	if (hex_digest(sp + 1, len - ulen - 1, s->u.cram.digest) == -1)
		return sasl_fail(s, SASL_E_MALFORMED);
	if ((e = sasl_set_ids(s, msg, ulen, "", 0)) != SASL_E_NONE)
		return sasl_fail(s, e);
	return sasl_verify(s, SASL_REQ_SECRET);
}

enum sasl_rc
sasl_server_secret(struct sasl_server *s, const void *secret, size_t len)
{
	struct sasl_cram *c = &s->u.cram;
	uint8_t dummy[32], mac[16];
	unsigned mdlen = 0;
	bool ok;

	if (s->state != SASL_S_VERIFY || s->req.kind != SASL_REQ_SECRET)
		return sasl_fail(s, SASL_E_STATE);
	/* An unknown user costs the same HMAC, keyed with noise. */
	if (secret == NULL) {
		if (sasl_random(dummy, sizeof(dummy)) == -1)
			return sasl_fail(s, SASL_E_INTERNAL);
		secret = dummy;
		len = sizeof(dummy);
	}
	ok = len <= 0x7fffffff &&
	    HMAC(EVP_md5(), secret, (int)len, (const uint8_t *)c->chal,
		c->chal_len, mac, &mdlen) != NULL &&
	    mdlen == sizeof(mac);
	ok = ok && CRYPTO_memcmp(mac, c->digest, sizeof(mac)) == 0;
	ok = ok && secret != dummy;
	OPENSSL_cleanse(dummy, sizeof(dummy));
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!ok)
		return sasl_fail(s, SASL_E_CREDENTIALS);
	return sasl_verify(s, SASL_REQ_POLICY);
}

/* The digest was right and the caller allowed the user. */
static enum sasl_rc
cram_allowed(struct sasl_server *s)
{
	return sasl_success(s);
}

/* ---- shared helpers --------------------------------------------------------
 */

int
sasl_legacy_timestamp(char *buf, size_t cap, const char *host)
{
	struct timespec ts;
	uint64_t r;
	int n;

	if (host == NULL)
		host = "localhost";
	if (!host_valid(host, strlen(host)) || sasl_random(&r, sizeof(r)) == -1)
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(buf, cap, "<%llu.%lld@%s>", (unsigned long long)r,
	    (long long)ts.tv_sec, host);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

int
sasl_legacy_apop_digest(const char *ts, size_t ts_len, const void *secret,
    size_t secret_len, char hex[33])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, ts, ts_len) == 1 &&
	    EVP_DigestUpdate(ctx, secret, secret_len) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 16;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	for (size_t i = 0; i < 16; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[32] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

bool
sasl_legacy_apop_verify(const char *ts, size_t ts_len, const void *secret,
    size_t secret_len, const char *digest, size_t digest_len)
{
	char hex[33];
	uint8_t want[16], got[16];
	bool ok;

	if (sasl_legacy_apop_digest(ts, ts_len, secret, secret_len, hex) == -1)
		return false;
	ok = hex_digest(hex, 32, want) == 0;
	ok = ok & (hex_digest(digest, digest_len, got) == 0);
	ok = ok && CRYPTO_memcmp(want, got, sizeof(want)) == 0;
	OPENSSL_cleanse(hex, sizeof(hex));
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

/* Exactly 32 hex digits, either case, into 16 bytes. 0 or -1. */
static int
hex_digest(const char *hex, size_t len, uint8_t out[16])
{
	int hi, lo;

	if (len != 32)
		return -1;
	for (size_t i = 0; i < 16; i++) {
		if ((hi = hex_nibble(hex[2 * i])) < 0 ||
		    (lo = hex_nibble(hex[2 * i + 1])) < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A host name fit for "<...@host>": printable, no brackets or spaces. */
static bool
host_valid(const char *host, size_t len)
{
	if (len == 0 || len > SASL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (host[i] <= 0x20 || host[i] > 0x7e || host[i] == '<' ||
		    host[i] == '>')
			return false;
	}
	return true;
}
