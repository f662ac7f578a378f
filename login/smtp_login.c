/*
 * smtp_login.c - ESMTP before login, for the login core (the submission
 * intake's and, later, ringgate's front end): the 220 greeting, EHLO and
 * HELO, STARTTLS (RFC 3207), AUTH with an initial response and 334
 * challenges (RFC 4954), Postfix's XCLIENT from a trusted front end,
 * NOOP, RSET, HELP, VRFY (252, nothing learned), EXPN/ETRN/TURN/ATRN
 * (502), QUIT, and 530 for every mail command before a login.
 *
 * Relies on proto/smtp_cmd.c for the command grammar (one line, no CRLF)
 * and on the core for SASL, STARTTLS and every limit; this file cuts
 * lines (CRLF only, at most line_max octets) and words the replies, each
 * with its RFC 3463 enhanced code.
 *
 * Must never: advertise AUTH before TLS on an untrusted listener, take a
 * line sent before STARTTLS as a command after it, believe XCLIENT from
 * anyone but a trusted listener's trusted networks, or say whether a
 * VRFY'd address exists.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/listener_conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "login/login_private.h"
#include "proto/smtp_cmd.h"

struct smtp_login {
	bool helo;	  /* EHLO or HELO since the (last) greeting */
	bool want_line;	  /* the next line answers a SASL challenge */
	bool skip;	  /* inside an overlong line: drop up to its LF */
	bool xclient_ok;  /* the first peer is a trusted front end */
	bool helo_locked; /* XCLIENT HELO= named the client: EHLO keeps it */
	char *line;	  /* the line being run (line_max + 1) */
	struct smtp_cmd cmd;
};

static int smtp_init(struct login_session *s);
static void smtp_free(struct login_session *s);
static void smtp_greet(struct login_session *s);
static void smtp_input(struct login_session *s);
static void smtp_capability(struct login_session *s, struct buf *b);
static void smtp_sasl_challenge(struct login_session *s, const char *b64,
    size_t len);
static void smtp_auth_result(struct login_session *s, enum login_fail why);
static void smtp_starttls_reply(struct login_session *s, bool ok);
static void smtp_bye(struct login_session *s, enum login_bye why);

static void line(struct login_session *s, char *p, size_t n, bool crlf);
static void dispatch(struct login_session *s, const char *p, size_t n);
static void bad(struct login_session *s, unsigned code, const char *enh,
    const char *text);
static void run_ehlo(struct login_session *s, const struct smtp_cmd *cmd);
static void run_auth(struct login_session *s, const struct smtp_cmd *cmd);
static void run_xclient(struct login_session *s, const struct smtp_cmd *cmd);
static void smtp_vouch_refused(struct login_session *s);
static bool xclient_allowed(struct login_session *s);

const struct login_proto smtp_login_proto = {
	.name = "smtp",
	.state_size = sizeof(struct smtp_login),
	.init = smtp_init,
	.free = smtp_free,
	.greet = smtp_greet,
	.input = smtp_input,
	.capability = smtp_capability,
	.sasl_challenge = smtp_sasl_challenge,
	.auth_result = smtp_auth_result,
	.starttls_reply = smtp_starttls_reply,
	.bye = smtp_bye,
	.vouch_refused = smtp_vouch_refused,
};

/* ---- the table's functions ------------------------------------------- */

static int
smtp_init(struct login_session *s)
{
	struct smtp_login *st = login_proto_state(s);

	st->line = malloc(login_settings(s)->line_max + 1);
	return st->line ? 0 : -1;
}

static void
smtp_free(struct login_session *s)
{
	struct smtp_login *st = login_proto_state(s);

	free(st->line);
	st->line = NULL;
}

static void
smtp_greet(struct login_session *s)
{
	struct smtp_login *st = login_proto_state(s);

	st->xclient_ok = xclient_allowed(s);
	login_reply(s, "220 %s ESMTP ready", login_settings(s)->server_name);
}

/* EHLO's keywords, one per line after the first, "\n"-separated here
 * (run_ehlo turns them into 250- lines). */
static void
smtp_capability(struct login_session *s, struct buf *b)
{
	struct smtp_login *st = login_proto_state(s);
	const char *names[SASL_MECH_MAX];
	uint64_t max = login_settings(s)->message_max;
	size_t n;

	buf_printf(b, "PIPELINING\n");
	if (max > 0)
		buf_printf(b, "SIZE %llu\n", (unsigned long long)max);
	else
		buf_printf(b, "SIZE\n");
	buf_printf(b, "8BITMIME\nENHANCEDSTATUSCODES\n");
	if (login_can_starttls(s))
		buf_printf(b, "STARTTLS\n");
	n = login_mechanisms(s, names, SASL_MECH_MAX);
	if (n > 0) {
		buf_printf(b, "AUTH");
		for (size_t i = 0; i < n; i++)
			buf_printf(b, " %s", names[i]);
		buf_printf(b, "\n");
	}
	if (st->xclient_ok)
		buf_printf(b, "XCLIENT NAME ADDR PORT PROTO HELO LOGIN\n");
}

/* Lines end with CRLF; one over line_max is refused whole (its rest is
 * dropped up to the LF); one ending in a bare LF is refused too (a
 * smuggling tool, RFC 5321 2.3.8). */
static void
smtp_input(struct login_session *s)
{
	struct smtp_login *st = login_proto_state(s);
	struct buf *in = login_input(s);
	size_t max = login_settings(s)->line_max;

	while (login_may_run(s) && buf_used(in) > 0) {
		const char *p = buf_head(in), *lf;
		size_t n = buf_used(in), len;

		lf = memchr(p, '\n', n);
		if (st->skip) {
			buf_consume(in, lf ? (size_t)(lf - p) + 1 : n);
			st->skip = lf == NULL;
			continue;
		}
		if (lf == NULL) {
			if (n > max) {
				buf_consume(in, n);
				st->skip = true;
				line(s, NULL, 0, false);
			}
			break;
		}
		len = (size_t)(lf - p);
		if (len + 1 > max) {
			buf_consume(in, len + 1);
			line(s, NULL, 0, false);
			continue;
		}
		memcpy(st->line, p, len);
		buf_consume(in, len + 1);
		if (len > 0 && st->line[len - 1] == '\r')
			line(s, st->line, len - 1, true);
		else
			line(s, st->line, len, false);
	}
}

static void
smtp_sasl_challenge(struct login_session *s, const char *b64, size_t len)
{
	struct smtp_login *st = login_proto_state(s);

	login_reply(s, "334 %.*s", (int)len, b64);
	st->want_line = true;
}

static void
smtp_auth_result(struct login_session *s, enum login_fail why)
{
	struct smtp_login *st = login_proto_state(s);

	st->want_line = false;
	switch (why) {
	case LOGIN_FAIL_CREDENTIALS:
		login_reply(s, "535 5.7.8 Authentication credentials invalid");
		return;
	case LOGIN_FAIL_TEMP:
		login_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	case LOGIN_FAIL_AUTHZID:
		login_reply(s,
		    "535 5.7.8 Not authorized to act as that "
		    "user");
		return;
	case LOGIN_FAIL_PRIVACY:
		login_reply(s,
		    "538 5.7.11 Encryption required for requested "
		    "authentication mechanism");
		return;
	case LOGIN_FAIL_MECH:
		login_reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	case LOGIN_FAIL_CANCELLED:
		login_reply(s, "501 5.0.0 Authentication cancelled");
		return;
	case LOGIN_FAIL_SYNTAX:
		login_reply(s, "501 5.5.2 Invalid SASL response");
		return;
	case LOGIN_FAIL_INUSE:
		login_reply(s, "454 4.7.0 Mailbox in use, try again later");
		return;
	}
}

/* After the 220, the client starts over: EHLO again (RFC 3207 4.2). */
static void
smtp_starttls_reply(struct login_session *s, bool ok)
{
	struct smtp_login *st = login_proto_state(s);

	if (!ok) {
		login_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	login_reply(s, "220 2.0.0 Ready to start TLS");
	st->helo = false;
	st->skip = false;
	st->want_line = false;
	if (!st->helo_locked)
		login_set_helo(s, "", 0, false);
}

static void
smtp_bye(struct login_session *s, enum login_bye why)
{
	static const char *const enh[] = {
		[LOGIN_BYE_TIMEOUT] = "4.4.2",
		[LOGIN_BYE_FAILS] = "4.7.0",
		[LOGIN_BYE_BAD] = "4.7.0",
		[LOGIN_BYE_REFUSED] = "4.7.0",
		[LOGIN_BYE_INTERNAL] = "4.3.0",
		[LOGIN_BYE_IDLE] = "4.4.2",
	};
	static const char *const text[] = {
		[LOGIN_BYE_TIMEOUT] = "Timeout",
		[LOGIN_BYE_FAILS] = "Too many failed authentications",
		[LOGIN_BYE_BAD] = "Too many bad commands",
		[LOGIN_BYE_REFUSED] = "Service not available, try again later",
		[LOGIN_BYE_INTERNAL] = "Internal error",
		[LOGIN_BYE_IDLE] = "Idle timeout",
	};

	login_reply(s, "421 %s %s %s, closing", enh[why],
	    login_settings(s)->server_name, text[why]);
}

/* Nobody logged in to a mailbox from here lately: MAIL as without. */
static void
smtp_vouch_refused(struct login_session *s)
{
	bad(s, 530, "5.7.0", "Authentication required");
}

/* ---- lines ------------------------------------------------------------ */

/* One line: p NULL for one over the limit. A SASL response goes to the
 * exchange; anything else is a command. */
static void
line(struct login_session *s, char *p, size_t n, bool crlf)
{
	struct smtp_login *st = login_proto_state(s);

	if (st->want_line) {
		st->want_line = false;
		if (p == NULL || !crlf) {
			if (p == NULL)
				login_long_line(s);
			login_sasl_abort(s);
			return;
		}
		login_sasl_response(s, p, n);
		return;
	}
	if (p == NULL) {
		login_long_line(s);
		bad(s, 500, "5.5.6", "Line too long");
		return;
	}
	if (!crlf) {
		bad(s, 500, "5.5.2", "Line must end with CRLF");
		return;
	}
	dispatch(s, p, n);
}

static void
dispatch(struct login_session *s, const char *p, size_t n)
{
	struct smtp_login *st = login_proto_state(s);
	const struct smtp_cmd_conf conf = { .ext = SMTP_EXT_SIZE |
		    SMTP_EXT_8BITMIME | SMTP_EXT_AUTH };
	struct smtp_cmd *cmd = &st->cmd;
	enum smtp_cmd_rc rc = smtp_cmd_parse(cmd, &conf, 0, p, n);

	switch (cmd->verb) {
	case SMTP_MAIL:
		/* POP/IMAP-before-SMTP, where the daemon offers it */
		if (rc == SMTP_CMD_OK && st->helo && login_vouch(s, p, n))
			return;
		bad(s, 530, "5.7.0", "Authentication required");
		return;
	case SMTP_RCPT:
	case SMTP_DATA:
		bad(s, 530, "5.7.0", "Authentication required");
		return;
	case SMTP_BDAT:
		/* its chunk follows: no way to tell where it ends here */
		login_reply(s, "530 5.7.0 Authentication required");
		login_close(s);
		return;
	case SMTP_EXPN:
		login_reply(s, "502 5.5.1 EXPN not available");
		return;
	case SMTP_ETRN:
	case SMTP_TURN:
		login_reply(s, "502 5.5.1 %s not available",
		    smtp_verb_name(cmd->verb));
		return;
	case SMTP_VRFY:
		login_reply(s,
		    "252 2.5.2 Cannot VRFY user, but will accept message "
		    "and attempt delivery");
		return;
	case SMTP_QUIT:
		login_reply(s, "221 2.0.0 %s closing connection",
		    login_settings(s)->server_name);
		login_close(s);
		return;
	case SMTP_UNKNOWN:
		if (n >= 4 && strncasecmp(p, "ATRN", 4) == 0 &&
		    (n == 4 || p[4] == ' ')) {
			login_reply(s, "502 5.5.1 ATRN not available");
			return;
		}
		break;
	default:
		break;
	}
	if (rc != SMTP_CMD_OK) {
		bad(s, cmd->err->code, cmd->err->enh, cmd->err->text);
		return;
	}
	switch (cmd->verb) {
	case SMTP_EHLO:
	case SMTP_HELO:
		run_ehlo(s, cmd);
		return;
	case SMTP_LHLO:
		bad(s, 500, "5.5.1", "This is not LMTP");
		return;
	case SMTP_NOOP:
	case SMTP_RSET:
		login_reply(s, "250 2.0.0 OK");
		return;
	case SMTP_HELP:
		login_reply(s,
		    "214 2.0.0 See RFC 5321 and RFC 4954; "
		    "log in with AUTH");
		return;
	case SMTP_STARTTLS:
		if (!st->helo) {
			bad(s, 503, "5.5.1", "Send EHLO first");
			return;
		}
		login_starttls(s);
		return;
	case SMTP_AUTH:
		run_auth(s, cmd);
		return;
	case SMTP_XCLIENT:
		run_xclient(s, cmd);
		return;
	default:
		bad(s, 502, "5.5.1", "Command not implemented");
		return;
	}
}

static void
bad(struct login_session *s, unsigned code, const char *enh, const char *text)
{
	login_reply(s, "%u %s %s", code, enh, text);
	login_bad(s);
}

/* ---- commands --------------------------------------------------------- */

static void
run_ehlo(struct login_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_login *st = login_proto_state(s);
	const char *name = login_settings(s)->server_name;
	struct buf b = { 0 };
	const char *p, *end, *nl;

	st->helo = true;
	if (!st->helo_locked)
		login_set_helo(s, cmd->arg.p, cmd->arg.len,
		    cmd->verb == SMTP_EHLO);
	if (cmd->verb == SMTP_HELO) {
		login_reply(s, "250 %s", name);
		return;
	}
	smtp_capability(s, &b);
	login_reply(s, "250-%s", name);
	p = buf_head(&b);
	end = p + buf_used(&b);
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		login_reply(s, "250%c%.*s", nl + 1 < end ? '-' : ' ',
		    (int)(nl - p), p);
		p = nl + 1;
	}
	buf_free(&b);
}

static void
run_auth(struct login_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_login *st = login_proto_state(s);
	const char *ir = cmd->ir.p;
	size_t irlen = cmd->ir.len;

	if (!st->helo) {
		bad(s, 503, "5.5.1", "Send EHLO first");
		return;
	}
	if (ir != NULL && irlen == 0) { /* "=": an empty response */
		ir = "=";
		irlen = 1;
	}
	login_sasl_start(s, cmd->mech, strlen(cmd->mech), ir, irlen);
}

/* The listener is a back-end port (trusted) and the client one of its
 * trusted networks: a front end that may speak for its clients. On any
 * other listener the default trusted_nets (loopback) would let every
 * local user name any sender. */
static bool
xclient_allowed(struct login_session *s)
{
	const struct listener_conf *c = login_settings(s)->listener;
	struct conn *conn = login_session_conn(s);

	return c->trusted && conn != NULL &&
	    net_list_match(c->trusted_nets, c->ntrusted_nets,
		conn_peer_addr(conn, NULL));
}

/*
 * XCLIENT (Postfix XCLIENT_README): the front end says who its client
 * is. ADDR becomes the connection's peer (logs, allow_nets, Received),
 * HELO its EHLO name; the session starts over with a 220 and the client
 * says EHLO again. LOGIN logs that user in with no password; its answer
 * is then the session's own 220 after the hand-off.
 */
static void
run_xclient(struct login_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_login *st = login_proto_state(s);
	const struct smtp_xclient *x = &cmd->xclient;
	struct conn *c = login_session_conn(s);
	struct sockaddr_storage ss;
	char addr[64];

	if (!st->xclient_ok) {
		log_info(login_session_sid(s), "smtp.xclient_refused",
		    "client=%s", conn_peer(c));
		bad(s, 550, "5.7.0", "Insufficient authorization");
		return;
	}
	if (x->state[SMTP_XA_ADDR] == SMTP_XV_VALUE) {
		size_t n = x->val[SMTP_XA_ADDR].len;

		memset(&ss, 0, sizeof(ss));
		if (n >= sizeof(addr)) {
			bad(s, 501, "5.5.4", "Bad XCLIENT attribute value");
			return;
		}
		memcpy(addr, x->val[SMTP_XA_ADDR].p, n);
		addr[n] = '\0';
		if (x->family == AF_INET6) {
			struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons(x->port);
			if (inet_pton(AF_INET6, addr, &a6->sin6_addr) != 1)
				n = 0;
		} else {
			struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;

			a4->sin_family = AF_INET;
			a4->sin_port = htons(x->port);
			if (inet_pton(AF_INET, addr, &a4->sin_addr) != 1)
				n = 0;
		}
		if (n == 0 ||
		    conn_set_peer(c, (struct sockaddr *)&ss, NULL) == -1) {
			bad(s, 501, "5.5.4", "Bad XCLIENT attribute value");
			return;
		}
	}
	/* the front end's own EHLO name is not its client's */
	if (x->state[SMTP_XA_HELO] == SMTP_XV_VALUE) {
		login_set_helo(s, x->val[SMTP_XA_HELO].p,
		    x->val[SMTP_XA_HELO].len, true);
		st->helo_locked = true;
	} else if (!st->helo_locked) {
		login_set_helo(s, "", 0, false);
	}
	log_info(login_session_sid(s), "smtp.xclient",
	    "client=%s helo=%s login=%s", conn_peer(c),
	    x->state[SMTP_XA_HELO] == SMTP_XV_VALUE ? "yes" : "no",
	    x->state[SMTP_XA_LOGIN] == SMTP_XV_VALUE ? "yes" : "no");
	st->helo = false;
	if (x->state[SMTP_XA_LOGIN] == SMTP_XV_VALUE) {
		login_assert_user(s, x->val[SMTP_XA_LOGIN].p,
		    x->val[SMTP_XA_LOGIN].len, "XCLIENT");
		return;
	}
	login_reply(s, "220 %s ESMTP ready", login_settings(s)->server_name);
}
