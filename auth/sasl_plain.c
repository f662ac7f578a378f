/*
 * sasl_plain.c - the PLAIN mechanism (RFC 4616), server and client side.
 *
 * The server side parses "[authzid] NUL authcid NUL passwd" from one
 * response and hands the three to the caller as a SASL_REQ_PASSWORD; it
 * decides nothing about the password itself. Every field is strict UTF-8
 * of at most 255 bytes, identities hold no control characters, and exactly
 * two NULs separate the fields. The client side builds the same message
 * for ringgate's master-user logins to back-ends.
 *
 * Never: keeps a raw message after use (it holds the password), or
 * accepts an empty authcid or password.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "auth/sasl.h"
#include "auth/sasl_private.h"
#include "proto/base64.h"

static enum sasl_rc plain_begin(struct sasl_server *s);
static enum sasl_rc plain_step(struct sasl_server *s, const uint8_t *p,
    size_t len);

const struct sasl_mech_ops sasl_plain_ops = {
	.begin = plain_begin,
	.step = plain_step,
	.wipe = NULL,
};

/* The client sends everything in one response: ask for it. */
static enum sasl_rc
plain_begin(struct sasl_server *s)
{
	return sasl_continue(s, "", 0);
}

static enum sasl_rc
plain_step(struct sasl_server *s, const uint8_t *p, size_t len)
{
	const char *msg = (const char *)p, *nul1, *nul2, *pw;
	size_t zlen, clen, pwlen;
	enum sasl_error e;

	if ((nul1 = memchr(msg, '\0', len)) == NULL)
		return sasl_fail(s, SASL_E_MALFORMED);
	zlen = (size_t)(nul1 - msg);
	nul2 = memchr(nul1 + 1, '\0', len - zlen - 1);
	if (nul2 == NULL)
		return sasl_fail(s, SASL_E_MALFORMED);
	clen = (size_t)(nul2 - nul1 - 1);
	pw = nul2 + 1;
	pwlen = len - zlen - clen - 2;
	/* A third NUL would make the password ambiguous between readers. */
	if (pwlen > SASL_NAME_MAX)
		return sasl_fail(s, SASL_E_TOOLONG);
	if (!sasl_utf8_valid(pw, pwlen))
		return sasl_fail(s, SASL_E_MALFORMED);
	if ((e = sasl_set_ids(s, nul1 + 1, clen, msg, zlen)) != SASL_E_NONE ||
	    (e = sasl_set_password(s, pw, pwlen)) != SASL_E_NONE)
		return sasl_fail(s, e);
	return sasl_verify(s, SASL_REQ_PASSWORD);
}

int
sasl_client_plain(const char *authzid, const char *authcid,
    const char *password, char out[SASL_CLIENT_PLAIN_MAX])
{
	char raw[3 * SASL_NAME_MAX + 2];
	size_t zlen = authzid != NULL ? strlen(authzid) : 0;
	size_t clen = strlen(authcid), pwlen = strlen(password), n = 0, len;
	int rc;

	if (zlen > SASL_NAME_MAX || clen > SASL_NAME_MAX ||
	    pwlen > SASL_NAME_MAX || clen == 0 || pwlen == 0)
		return -1;
	memcpy(raw, authzid != NULL ? authzid : "", zlen);
	n += zlen;
	raw[n++] = '\0';
	memcpy(raw + n, authcid, clen);
	n += clen;
	raw[n++] = '\0';
	memcpy(raw + n, password, pwlen);
	n += pwlen;
	rc = base64_encode(raw, n, out, SASL_CLIENT_PLAIN_MAX, &len);
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc == -1 ? -1 : (int)len;
}
