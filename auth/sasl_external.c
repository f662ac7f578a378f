/*
 * sasl_external.c - the EXTERNAL mechanism (RFC 4422 appendix A) over a
 * verified TLS client certificate.
 *
 * The identity comes from the caller (the certificate field its config
 * names), already verified by the TLS layer; the client's only response
 * is an authzid, which must be empty or that same identity (nobody
 * verifies a delegation here). Nothing is looked up, so a
 * success is final here; whether the user may log in is the caller's
 * business afterwards.
 *
 * Never: succeeds without a certificate identity.
 */
#include <string.h>

#include "auth/sasl.h"
#include "auth/sasl_private.h"

static enum sasl_rc external_begin(struct sasl_server *s);
static enum sasl_rc external_step(struct sasl_server *s, const uint8_t *p,
    size_t len);

const struct sasl_mech_ops sasl_external_ops = {
	.begin = external_begin,
	.step = external_step,
	.wipe = NULL,
};

static enum sasl_rc
external_begin(struct sasl_server *s)
{
	if (s->external_id[0] == '\0')
		return sasl_fail(s, SASL_E_NOIDENTITY);
	return sasl_continue(s, "", 0);
}

static enum sasl_rc
external_step(struct sasl_server *s, const uint8_t *p, size_t len)
{
	enum sasl_error e;

	if (s->external_id[0] == '\0')
		return sasl_fail(s, SASL_E_NOIDENTITY);
	e = sasl_set_ids(s, s->external_id, strlen(s->external_id),
	    (const char *)p, len);
	if (e != SASL_E_NONE)
		return sasl_fail(s, e);
	return sasl_success(s);
}
