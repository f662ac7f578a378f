/*
 * fuzz_sasl.c - every SASL server mechanism, and the stored-key and APOP
 * parsers, from one input.
 *
 * The first byte chooses: bits 0-2 the target (the mechanism ids, then 6 =
 * stored SCRAM keys, 7 = an APOP digest), bit 3 base64 lines instead of
 * raw responses, bit 4 channel binding offered, bit 5 authzid allowed,
 * bit 6 success data, bit 7 no initial response. The rest, split at '\n',
 * is the client's responses in order. Verification requests are answered
 * like a tiny user database (user/pencil with the RFC 7677 SCRAM keys,
 * tim/tanstaaftanstaaf for CRAM-MD5) and the nonces are fixed, so the
 * fuzzer can reach every success path from the dictionary. Checks that a
 * session never claims success without a user and that out-of-turn calls
 * after the end are refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"

#define USER_KEYS                                                              \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"                         \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"                        \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define SCRAM_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define CRAM_CHAL "<1896.697170952@postoffice.reston.mci.net>"
#define APOP_TS "<1896.697170952@dbc.mtview.ca.us>"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum sasl_rc answer(struct sasl_server *s);
static enum sasl_rc feed(struct sasl_server *s, bool b64, bool first,
    const uint8_t *p, size_t len);
static void run_session(unsigned ctl, const uint8_t *p, size_t n);

static const uint8_t cbind[32] = "0123456789abcdef0123456789abcdef";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sasl_scram_keys k;
	const char *err;

	if (size == 0)
		return 0;
	switch (data[0] & 7) {
	case 6:
		if (sasl_scram_keys_parse((const char *)data + 1, size - 1, &k,
			&err) == 0 &&
		    (k.iter == 0 || k.salt_len == 0 ||
			k.salt_len > SASL_SCRAM_SALT_MAX))
			abort();
		break;
	case 7:
		if (sasl_legacy_apop_verify(APOP_TS, strlen(APOP_TS),
			"tanstaaf", 8, (const char *)data + 1, size - 1) &&
		    size - 1 != 32)
			abort();
		break;
	default:
		run_session(data[0], data + 1, size - 1);
		break;
	}
	return 0;
}

static void
run_session(unsigned ctl, const uint8_t *p, size_t n)
{
	struct sasl_server_conf conf = { 0 };
	const struct sasl_mech *m = sasl_mech_get((enum sasl_mech_id)(ctl & 7));
	struct sasl_server *s;
	bool b64 = ctl & 8, first = true, done = false;
	enum sasl_rc rc = SASL_CONTINUE;
	char chal[SASL_CHALLENGE64_MAX];
	size_t clen;

	conf.flags = SASL_F_SECURE | SASL_F_LEGACY | SASL_F_EXTERNAL;
	conf.flags |= (ctl & 0x10) ? SASL_F_CBIND : 0;
	conf.flags |= (ctl & 0x20) ? SASL_F_AUTHZID : 0;
	conf.flags |= (ctl & 0x40) ? SASL_F_SUCCESS_DATA : 0;
	if (sasl_mech_id(m) == SASL_MECH_SCRAM_SHA_256_PLUS)
		conf.flags |= SASL_F_CBIND;
	if (conf.flags & SASL_F_CBIND) {
		conf.cbind = cbind;
		conf.cbind_len = sizeof(cbind);
	}
	conf.external_id = "user";
	conf.hostname = "fuzz.example";
	conf.secret = (const uint8_t *)"fuzz";
	conf.secret_len = 4;
	if ((s = sasl_server_new(m, &conf)) == NULL)
		abort();
	if (sasl_mech_id(m) == SASL_MECH_CRAM_MD5)
		sasl_server_set_nonce(s, CRAM_CHAL, strlen(CRAM_CHAL));
	else
		sasl_server_set_nonce(s, SCRAM_NONCE, strlen(SCRAM_NONCE));
	if (ctl & 0x80) {
		rc = sasl_server_start(s, NULL, 0);
		first = false;
	}
	while (!done) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t len = nl != NULL ? (size_t)(nl - p) : n;

		if (rc == SASL_SUCCESS || rc == SASL_FAIL)
			done = true; /* one more call, which must fail */
		rc = feed(s, b64, first, p, len);
		first = false;
		while (rc == SASL_VERIFY)
			rc = answer(s);
		if (rc == SASL_SUCCESS && sasl_server_user(s) == NULL)
			abort();
		if (done && rc != SASL_FAIL)
			abort();
		if (sasl_server_challenge64(s, chal, sizeof(chal), &clen) == -1)
			abort();
		if (nl == NULL)
			break;
		n -= len + 1;
		p = nl + 1;
	}
	sasl_server_free(&s);
}

static enum sasl_rc
feed(struct sasl_server *s, bool b64, bool first, const uint8_t *p, size_t len)
{
	if (b64 && first)
		return sasl_server_start64(s, (const char *)p, len);
	if (b64)
		return sasl_server_step64(s, (const char *)p, len);
	if (first)
		return sasl_server_start(s, p, len);
	return sasl_server_step(s, p, len);
}

/* The tiny user database. */
static enum sasl_rc
answer(struct sasl_server *s)
{
	const struct sasl_request *req = sasl_server_request(s);
	struct sasl_scram_keys k;
	const char *err;
	bool user;

	if (req == NULL)
		abort();
	user = strcmp(req->authcid, "user") == 0;
	switch (req->kind) {
	case SASL_REQ_PASSWORD:
		if (req->password == NULL ||
		    strlen(req->password) != req->password_len)
			abort();
		if (user && req->password_len == 6 &&
		    memcmp(req->password, "pencil", 6) == 0)
			return sasl_server_verified(s,
			    req->authzid[0] == '\0' ? SASL_V_OK :
						      SASL_V_AUTHZID);
		return sasl_server_verified(s, SASL_V_FAIL);
	case SASL_REQ_SCRAM_KEYS:
		if (!user)
			return sasl_server_scram_keys(s, NULL);
		if (sasl_scram_keys_parse(USER_KEYS, strlen(USER_KEYS), &k,
			&err) == -1)
			abort();
		return sasl_server_scram_keys(s, &k);
	case SASL_REQ_SECRET:
		if (strcmp(req->authcid, "tim") == 0)
			return sasl_server_secret(s, "tanstaaftanstaaf", 16);
		return sasl_server_secret(s, NULL, 0);
	case SASL_REQ_POLICY:
		/* only after a right proof, and only for a known user */
		if (!user && strcmp(req->authcid, "tim") != 0)
			abort();
		return sasl_server_verified(s, SASL_V_OK);
	}
	abort();
}
