/*
 * pop3_login.c - POP3 before login, for the login core: the greeting,
 * CAPA (RFC 2449), USER/PASS (RFC 1939), AUTH with initial responses and
 * "+ " challenges (RFC 5034), STLS (RFC 2595), NOOP and QUIT, and every
 * line those answer with, with the response codes of RFC 2449 and
 * RFC 3206 ([AUTH], [SYS/TEMP], [IN-USE]). Commands of the TRANSACTION
 * state get "-ERR Log in first", anything else "-ERR Unknown command";
 * both count as bad commands.
 *
 * Relies on proto/pop3_cmd.h for the line reader and the command parser
 * and on the core for everything that is not POP3's words: SASL, STLS,
 * the limits. APOP only behind legacy_mechanisms: then the greeting
 * carries a fresh timestamp (RFC 1939 7) and APOP is checked against the
 * user's {PLAIN} password (login_apop()); otherwise no timestamp and
 * APOP is an unknown command.
 *
 * Must never: advertise USER or SASL mechanisms, or take a password,
 * before TLS on an untrusted listener; or take a line sent before STLS
 * as a command after it.
 */
#include <string.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "login/login_private.h"
#include "proto/pop3_cmd.h"

struct pop3_login {
	struct pop3_line lr;
	bool want_line;		      /* the next line answers a challenge */
	char user[AUTH_USER_MAX + 1]; /* from USER, for PASS */
	size_t user_len;	      /* 0: no USER yet */
	char ts[SASL_LEGACY_TS_MAX];  /* APOP's timestamp, "" when off */
};

static int pop3_init(struct login_session *s);
static void pop3_free(struct login_session *s);
static void pop3_greet(struct login_session *s);
static void pop3_input(struct login_session *s);
static void pop3_capability(struct login_session *s, struct buf *b);
static void pop3_sasl_challenge(struct login_session *s, const char *b64,
    size_t len);
static void pop3_auth_result(struct login_session *s, enum login_fail why);
static void pop3_starttls_reply(struct login_session *s, bool ok);
static void pop3_bye(struct login_session *s, enum login_bye why);

static void line(struct login_session *s, const char *p, size_t n);
static void command(struct login_session *s, const struct pop3_cmd *cmd);
static void bad(struct login_session *s, const char *text);
static void run_user(struct login_session *s, const struct pop3_cmd *cmd);
static void run_pass(struct login_session *s, const struct pop3_cmd *cmd);
static void run_auth(struct login_session *s, const struct pop3_cmd *cmd);
static void run_capa(struct login_session *s);
static void run_apop(struct login_session *s, const struct pop3_cmd *cmd);

const struct login_proto pop3_login_proto = {
	.name = "pop3",
	.state_size = sizeof(struct pop3_login),
	.init = pop3_init,
	.free = pop3_free,
	.greet = pop3_greet,
	.input = pop3_input,
	.capability = pop3_capability,
	.sasl_challenge = pop3_sasl_challenge,
	.auth_result = pop3_auth_result,
	.starttls_reply = pop3_starttls_reply,
	.bye = pop3_bye,
};

/* ---- the table's functions ------------------------------------------- */

static int
pop3_init(struct login_session *s)
{
	(void)s; /* the state is zeroed memory */
	return 0;
}

static void
pop3_free(struct login_session *s)
{
	struct pop3_login *st = login_proto_state(s);

	memset(st->user, 0, sizeof(st->user));
}

static void
pop3_greet(struct login_session *s)
{
	struct pop3_login *st = login_proto_state(s);

	if (login_settings(s)->legacy_mechanisms &&
	    sasl_legacy_timestamp(st->ts, sizeof(st->ts), NULL) > 0) {
		login_reply(s, "+OK %s ready %s",
		    login_settings(s)->server_name, st->ts);
		return;
	}
	st->ts[0] = '\0';
	login_reply(s, "+OK %s ready", login_settings(s)->server_name);
}

/* The CAPA lines before login, one per line (RFC 2449 5). */
static void
pop3_capability(struct login_session *s, struct buf *b)
{
	const char *names[SASL_MECH_MAX];
	size_t n;

	buf_printf(b,
	    "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
	    "PIPELINING\r\n");
	if (login_secure(s))
		buf_printf(b, "USER\r\n");
	n = login_mechanisms(s, names, SASL_MECH_MAX);
	if (n > 0) {
		buf_printf(b, "SASL");
		for (size_t i = 0; i < n; i++)
			buf_printf(b, " %s", names[i]);
		buf_printf(b, "\r\n");
	}
	if (login_can_starttls(s))
		buf_printf(b, "STLS\r\n");
	buf_printf(b, "IMPLEMENTATION %s\r\n", login_settings(s)->server_name);
}

static void
pop3_input(struct login_session *s)
{
	struct pop3_login *st = login_proto_state(s);
	struct buf *in = login_input(s);

	while (login_may_run(s) && buf_used(in) > 0) {
		size_t used = 0, len = 0;
		const char *p = buf_head(in);
		enum pop3_line_ev ev;

		ev = pop3_line_next(&st->lr, p, buf_used(in),
		    login_settings(s)->line_max, &used, &len);
		/* the line stays where it is until more is appended, and
		 * STLS may free the input under it */
		buf_consume(in, used);
		switch (ev) {
		case POP3_LINE_MORE:
			if (used == 0)
				return;
			break;
		case POP3_LINE_OK:
			line(s, p, len);
			break;
		case POP3_LINE_LONG:
			if (st->want_line) {
				/* a SASL response over the limit ends the
				 * exchange */
				st->want_line = false;
				login_long_line(s);
				login_sasl_abort(s);
				break;
			}
			login_long_line(s);
			bad(s, "Line too long");
			break;
		case POP3_LINE_BARE_LF:
			if (st->want_line) {
				st->want_line = false;
				login_sasl_abort(s);
				break;
			}
			bad(s, "Lines end with CRLF");
			break;
		}
	}
}

static void
pop3_sasl_challenge(struct login_session *s, const char *b64, size_t len)
{
	struct pop3_login *st = login_proto_state(s);

	login_reply(s, "+ %.*s", (int)len, b64);
	st->want_line = true;
}

static void
pop3_auth_result(struct login_session *s, enum login_fail why)
{
	struct pop3_login *st = login_proto_state(s);

	st->want_line = false;
	st->user_len = 0; /* RFC 1939: USER again after a failed PASS */
	switch (why) {
	case LOGIN_FAIL_CREDENTIALS:
		login_reply(s, "-ERR [AUTH] Authentication failed");
		return;
	case LOGIN_FAIL_TEMP:
		login_reply(s,
		    "-ERR [SYS/TEMP] Temporary authentication failure");
		return;
	case LOGIN_FAIL_AUTHZID:
		login_reply(s, "-ERR [AUTH] Authorization failed");
		return;
	case LOGIN_FAIL_PRIVACY:
		login_reply(s,
		    "-ERR [AUTH] Plaintext authentication disallowed "
		    "without TLS (use STLS)");
		return;
	case LOGIN_FAIL_MECH:
		login_reply(s, "-ERR Unsupported authentication mechanism");
		return;
	case LOGIN_FAIL_CANCELLED:
		login_reply(s, "-ERR Authentication cancelled");
		return;
	case LOGIN_FAIL_SYNTAX:
		login_reply(s, "-ERR Invalid SASL response");
		return;
	case LOGIN_FAIL_INUSE:
		login_reply(s,
		    "-ERR [IN-USE] Mailbox is locked by another POP3 "
		    "session");
		return;
	}
}

/* After the +OK the line reader starts afresh: what it had already
 * taken of the following line was sent in the clear. */
static void
pop3_starttls_reply(struct login_session *s, bool ok)
{
	struct pop3_login *st = login_proto_state(s);

	if (!ok) {
		bad(s, "STLS is not available here");
		return;
	}
	login_reply(s, "+OK Begin TLS negotiation now");
	memset(&st->lr, 0, sizeof(st->lr));
	st->user_len = 0;
}

static void
pop3_bye(struct login_session *s, enum login_bye why)
{
	static const char *const text[] = {
		[LOGIN_BYE_TIMEOUT] = "Disconnected: login took too long",
		[LOGIN_BYE_FAILS] = "[AUTH] Too many failed logins",
		[LOGIN_BYE_BAD] = "Too many bad commands",
		[LOGIN_BYE_REFUSED] = "[SYS/TEMP] Try again later",
		[LOGIN_BYE_INTERNAL] = "[SYS/TEMP] Internal error",
		[LOGIN_BYE_IDLE] = "Disconnected: idle for too long",
	};

	login_reply(s, "-ERR %s", text[why]);
}

/* ---- commands -------------------------------------------------------- */

static void
line(struct login_session *s, const char *p, size_t n)
{
	struct pop3_login *st = login_proto_state(s);
	struct pop3_cmd cmd;

	if (st->want_line) {
		st->want_line = false;
		login_sasl_response(s, p, n);
		return;
	}
	if (pop3_cmd_parse(&cmd, p, n) != POP3_CMD_OK) {
		bad(s, cmd.error);
		return;
	}
	command(s, &cmd);
}

static void
command(struct login_session *s, const struct pop3_cmd *cmd)
{
	switch (cmd->verb) {
	case POP3_CAPA:
		run_capa(s);
		return;
	case POP3_NOOP:
		login_reply(s, "+OK");
		return;
	case POP3_QUIT:
		login_reply(s, "+OK Logging out");
		login_close(s);
		return;
	case POP3_STLS:
		login_starttls(s);
		return;
	case POP3_USER:
		run_user(s, cmd);
		return;
	case POP3_PASS:
		run_pass(s, cmd);
		return;
	case POP3_AUTH:
		run_auth(s, cmd);
		return;
	case POP3_APOP:
		run_apop(s, cmd);
		return;
	case POP3_STAT:
	case POP3_LIST:
	case POP3_RETR:
	case POP3_DELE:
	case POP3_RSET:
	case POP3_TOP:
	case POP3_UIDL:
		bad(s, "Log in first");
		return;
	case POP3_UNKNOWN:
		break;
	}
	bad(s, "Unknown command");
}

static void
bad(struct login_session *s, const char *text)
{
	login_reply(s, "-ERR %s", text);
	login_bad(s);
}

static void
run_capa(struct login_session *s)
{
	struct buf b = { 0 };

	pop3_capability(s, &b);
	login_reply(s, "+OK Capability list follows");
	login_send(s, buf_head(&b), buf_used(&b));
	login_send(s, ".\r\n", 3);
	buf_free(&b);
}

static void
run_user(struct login_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_login *st = login_proto_state(s);

	if (!login_secure(s)) {
		/* the password would follow in the clear */
		pop3_auth_result(s, LOGIN_FAIL_PRIVACY);
		login_bad(s);
		return;
	}
	if (cmd->arg.len == 0 || cmd->arg.len > AUTH_USER_MAX) {
		bad(s, "User name too long");
		return;
	}
	memcpy(st->user, cmd->arg.p, cmd->arg.len);
	st->user[cmd->arg.len] = '\0';
	st->user_len = cmd->arg.len;
	login_reply(s, "+OK");
}

static void
run_pass(struct login_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_login *st = login_proto_state(s);
	size_t ulen = st->user_len;

	if (ulen == 0) {
		bad(s, "USER first");
		return;
	}
	if (cmd->arg.len > AUTH_PASSWORD_MAX) {
		st->user_len = 0;
		bad(s, "Password too long");
		return;
	}
	st->user_len = 0;
	login_password(s, st->user, ulen, cmd->arg.p, cmd->arg.len,
	    "POP3-USER");
}

/* AUTH alone lists the mechanisms (as many clients expect); AUTH mech
 * [ir] runs the exchange, "=" being an empty initial response. */
static void
run_auth(struct login_session *s, const struct pop3_cmd *cmd)
{
	const char *names[SASL_MECH_MAX];
	size_t n;

	if (cmd->arg.p == NULL) {
		n = login_mechanisms(s, names, SASL_MECH_MAX);
		login_reply(s, "+OK");
		for (size_t i = 0; i < n; i++)
			login_reply(s, "%s", names[i]);
		login_send(s, ".\r\n", 3);
		return;
	}
	if (cmd->arg2.p == NULL)
		login_sasl_start(s, cmd->mech, strlen(cmd->mech), NULL, 0);
	else if (cmd->arg2.len == 0)
		login_sasl_start(s, cmd->mech, strlen(cmd->mech), "=", 1);
	else
		login_sasl_start(s, cmd->mech, strlen(cmd->mech), cmd->arg2.p,
		    cmd->arg2.len);
}

/* APOP name digest: the timestamp is the greeting's (one per connection;
 * STLS keeps it, the greeting is not repeated). */
static void
run_apop(struct login_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_login *st = login_proto_state(s);

	if (st->ts[0] == '\0') {
		bad(s, "Unknown command");
		return;
	}
	st->user_len = 0;
	login_apop(s, cmd->arg.p, cmd->arg.len, st->ts, cmd->arg2.p,
	    cmd->arg2.len);
}
