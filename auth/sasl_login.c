/*
 * sasl_login.c - the LOGIN mechanism (draft-murchison-sasl-login).
 *
 * Not a standard, but what Outlook and many older clients still use: the
 * server asks "Username:" then "Password:", one response each, and the
 * pair goes to the caller as a SASL_REQ_PASSWORD like PLAIN's. An initial
 * response, when a client sends one (SMTP "AUTH LOGIN <user>"), is the
 * user name. LOGIN has no authzid.
 *
 * Never: accepts an empty user name or password, or either over 255
 * bytes.
 */
#include "auth/sasl.h"
#include "auth/sasl_private.h"

static enum sasl_rc login_begin(struct sasl_server *s);
static enum sasl_rc login_step(struct sasl_server *s, const uint8_t *p,
    size_t len);

const struct sasl_mech_ops sasl_login_ops = {
	.begin = login_begin,
	.step = login_step,
	.wipe = NULL,
};

static const char user_prompt[] = "Username:";
static const char password_prompt[] = "Password:";

static enum sasl_rc
login_begin(struct sasl_server *s)
{
	s->u.login = LOGIN_USER;
	return sasl_continue(s, user_prompt, sizeof(user_prompt) - 1);
}

static enum sasl_rc
login_step(struct sasl_server *s, const uint8_t *p, size_t len)
{
	enum sasl_error e;

	switch (s->u.login) {
	case LOGIN_USER:
		if ((e = sasl_set_ids(s, (const char *)p, len, "", 0)) !=
		    SASL_E_NONE)
			return sasl_fail(s, e);
		s->u.login = LOGIN_PASSWORD;
		return sasl_continue(s, password_prompt,
		    sizeof(password_prompt) - 1);
	case LOGIN_PASSWORD:
		if ((e = sasl_set_password(s, (const char *)p, len)) !=
		    SASL_E_NONE)
			return sasl_fail(s, e);
		return sasl_verify(s, SASL_REQ_PASSWORD);
	}
	return sasl_fail(s, SASL_E_STATE);
}
