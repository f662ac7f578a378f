/*
 * imap_login.c - IMAP before login, for the login core: the greeting,
 * CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN and AUTHENTICATE with
 * SASL-IR (RFC 3501, RFC 9051, RFC 4959, RFC 2971), and every line those
 * answer with. Commands of the authenticated states get "BAD Log in
 * first"; anything else "BAD Unknown command".
 *
 * Relies on proto/imap_input.c for the input discipline (small budgets
 * before login; only ID gets RFC 2971's size) and on the core for
 * everything that is not IMAP's words: SASL, STARTTLS, the limits.
 *
 * Must never: advertise AUTH= or accept LOGIN before TLS on an untrusted
 * listener (LOGINDISABLED instead), or take a line sent before STARTTLS
 * as a command after it.
 */
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/listener_conf.h"
#include "login/login_private.h"
#include "proto/imap_input.h"

/* ID (RFC 2971): 30 pairs of a field of at most 30 octets and a value of
 * at most 1024, each byte escaped in a quoted string, and the tag: under
 * 64 KiB. Only ID gets it; every other command keeps line_max. */
#define ID_COMMAND_MAX (64 * 1024)
#define LITERAL_MAX 4096 /* before login */

struct imap_login {
	struct imap_input input;
	bool want_line; /* the next line answers a SASL challenge */
};

struct imap_login_cmd {
	const char *name;
	void (*run)(struct login_session *s, const struct imap_command *cmd);
};

static int imap_init(struct login_session *s);
static void imap_free(struct login_session *s);
static void imap_greet(struct login_session *s);
static void imap_input(struct login_session *s);
static void imap_capability(struct login_session *s, struct buf *b);
static void imap_sasl_challenge(struct login_session *s, const char *b64,
    size_t len);
static void imap_auth_result(struct login_session *s, enum login_fail why);
static void imap_starttls_reply(struct login_session *s, bool ok);
static void imap_bye(struct login_session *s, enum login_bye why);
static void keep_id(struct login_session *s, const struct imap_arg *list);

static int input_init(struct login_session *s);
static void handle(struct login_session *s, enum imap_input_ev ev);
static void dispatch(struct login_session *s, const struct imap_command *cmd);
static void bad(struct login_session *s, const char *text);
static bool no_args(struct login_session *s, const struct imap_command *cmd);

static void run_capability(struct login_session *s,
    const struct imap_command *cmd);
static void run_noop(struct login_session *s, const struct imap_command *cmd);
static void run_logout(struct login_session *s, const struct imap_command *cmd);
static void run_id(struct login_session *s, const struct imap_command *cmd);
static void run_starttls(struct login_session *s,
    const struct imap_command *cmd);
static void run_login(struct login_session *s, const struct imap_command *cmd);
static void run_authenticate(struct login_session *s,
    const struct imap_command *cmd);

const struct login_proto imap_login_proto = {
	.name = "imap",
	.state_size = sizeof(struct imap_login),
	.init = imap_init,
	.free = imap_free,
	.greet = imap_greet,
	.input = imap_input,
	.capability = imap_capability,
	.sasl_challenge = imap_sasl_challenge,
	.auth_result = imap_auth_result,
	.starttls_reply = imap_starttls_reply,
	.bye = imap_bye,
};

static const struct imap_login_cmd commands[] = {
	{ "CAPABILITY", run_capability },
	{ "NOOP", run_noop },
	{ "LOGOUT", run_logout },
	{ "ID", run_id },
	{ "STARTTLS", run_starttls },
	{ "LOGIN", run_login },
	{ "AUTHENTICATE", run_authenticate },
	{ NULL, NULL },
};

/* The commands of the authenticated states (RFC 3501, 9051 and the
 * extensions servers commonly have): "Log in first", not "Unknown". */
static const char *const later[] = { "SELECT", "EXAMINE", "CREATE", "DELETE",
	"RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS",
	"APPEND", "CHECK", "CLOSE", "EXPUNGE", "SEARCH", "FETCH", "STORE",
	"COPY", "MOVE", "UID", "IDLE", "NAMESPACE", "ENABLE", "UNSELECT",
	"GETQUOTA", "GETQUOTAROOT", "SETQUOTA", "GETACL", "SETACL", "MYRIGHTS",
	"LISTRIGHTS", "GETMETADATA", "SETMETADATA", "COMPRESS", "NOTIFY",
	NULL };

/* ---- the table's functions ------------------------------------------- */

static int
input_init(struct login_session *s)
{
	struct imap_login *st = login_proto_state(s);
	const struct login_settings *set = login_settings(s);
	struct imap_input_conf conf;

	memset(&conf, 0, sizeof(conf));
	conf.lim.max_line = set->line_max;
	conf.lim.max_command = set->line_max;
	conf.lim.max_literal = LITERAL_MAX;
	conf.lim.max_nonsync = LITERAL_MAX;
	conf.lim.max_inline_literal = LITERAL_MAX;
	conf.lim.max_args = 64;
	conf.lim.big_name = "ID";
	conf.lim.big_line = conf.lim.big_command = ID_COMMAND_MAX;
	st->want_line = false;
	return imap_input_init(&st->input, &conf);
}

static int
imap_init(struct login_session *s)
{
	return input_init(s);
}

static void
imap_free(struct login_session *s)
{
	struct imap_login *st = login_proto_state(s);

	imap_input_free(&st->input);
}

static void
imap_greet(struct login_session *s)
{
	struct buf caps = { 0 };

	imap_capability(s, &caps);
	login_reply(s, "* OK [CAPABILITY %.*s] %s ready", (int)buf_used(&caps),
	    buf_head(&caps), login_settings(s)->server_name);
	buf_free(&caps);
}

static void
imap_capability(struct login_session *s, struct buf *b)
{
	const char *names[SASL_MECH_MAX];
	size_t n;

	buf_printf(b, "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE");
	if (login_can_starttls(s))
		buf_printf(b, " STARTTLS");
	n = login_mechanisms(s, names, SASL_MECH_MAX);
	if (n == 0)
		buf_printf(b, " LOGINDISABLED");
	for (size_t i = 0; i < n; i++)
		buf_printf(b, " AUTH=%s", names[i]);
}

static void
imap_input(struct login_session *s)
{
	struct imap_login *st = login_proto_state(s);
	struct buf *in = login_input(s);

	while (login_may_run(s) && buf_used(in) > 0) {
		size_t used = 0;
		enum imap_input_ev ev;

		ev = imap_input_next(&st->input, buf_head(in), buf_used(in),
		    &used);
		buf_consume(in, used);
		if (ev == IMAP_IN_MORE)
			break;
		handle(s, ev);
	}
}

static void
imap_sasl_challenge(struct login_session *s, const char *b64, size_t len)
{
	struct imap_login *st = login_proto_state(s);

	login_reply(s, "+ %.*s", (int)len, b64);
	st->want_line = true;
	imap_input_want_line(&st->input);
}

static void
imap_auth_result(struct login_session *s, enum login_fail why)
{
	struct imap_login *st = login_proto_state(s);
	const char *tag = login_tag(s);

	st->want_line = false;
	switch (why) {
	case LOGIN_FAIL_CREDENTIALS:
		login_reply(s,
		    "%s NO [AUTHENTICATIONFAILED] Authentication "
		    "failed",
		    tag);
		return;
	case LOGIN_FAIL_TEMP:
		login_reply(s,
		    "%s NO [UNAVAILABLE] Temporary authentication "
		    "failure",
		    tag);
		return;
	case LOGIN_FAIL_AUTHZID:
		login_reply(s,
		    "%s NO [AUTHORIZATIONFAILED] Authorization "
		    "failed",
		    tag);
		return;
	case LOGIN_FAIL_PRIVACY:
		login_reply(s, "%s NO [PRIVACYREQUIRED] Use STARTTLS first",
		    tag);
		return;
	case LOGIN_FAIL_MECH:
		login_reply(s, "%s NO Unsupported authentication mechanism",
		    tag);
		return;
	case LOGIN_FAIL_CANCELLED:
		login_reply(s, "%s BAD Authentication cancelled", tag);
		return;
	case LOGIN_FAIL_SYNTAX:
		login_reply(s, "%s BAD Invalid SASL response", tag);
		return;
	case LOGIN_FAIL_INUSE:
		login_reply(s, "%s NO [INUSE] Mailbox in use", tag);
		return;
	}
}

/* After the OK, the parser starts afresh: what it had already taken of
 * the following line was sent in the clear and is not a command. */
static void
imap_starttls_reply(struct login_session *s, bool ok)
{
	struct imap_login *st = login_proto_state(s);

	if (!ok) {
		login_reply(s, "%s NO STARTTLS is not available here",
		    login_tag(s));
		return;
	}
	login_reply(s, "%s OK Begin TLS negotiation now", login_tag(s));
	imap_input_free(&st->input);
	if (input_init(s) == -1)
		imap_bye(s, LOGIN_BYE_INTERNAL);
}

static void
imap_bye(struct login_session *s, enum login_bye why)
{
	static const char *const text[] = {
		[LOGIN_BYE_TIMEOUT] = "Autologout; login took too long",
		[LOGIN_BYE_FAILS] = "Too many failed logins",
		[LOGIN_BYE_BAD] = "Too many bad commands",
		[LOGIN_BYE_REFUSED] = "[UNAVAILABLE] Try again later",
		[LOGIN_BYE_INTERNAL] = "Internal error",
		[LOGIN_BYE_IDLE] = "Autologout; idle for too long",
	};

	login_reply(s, "* BYE %s", text[why]);
}

/* ---- input events ---------------------------------------------------- */

static void
handle(struct login_session *s, enum imap_input_ev ev)
{
	struct imap_login *st = login_proto_state(s);
	const struct imap_command *cmd = &st->input.parser.cmd;

	switch (ev) {
	case IMAP_IN_COMMAND:
		dispatch(s, cmd);
		return;
	case IMAP_IN_LINE:
		st->want_line = false;
		login_sasl_response(s, cmd->line, cmd->line_len);
		return;
	case IMAP_IN_LITERAL:
		if (st->input.parser.lit.sync)
			login_reply(s, "+ OK");
		return;
	case IMAP_IN_BAD:
		if (st->input.parser.code == IMAP_ERR_TOOLONG)
			login_long_line(s);
		if (st->input.line_failed && st->want_line) {
			/* a SASL response over the limit ends the exchange */
			st->want_line = false;
			login_sasl_abort(s);
			return;
		}
		login_set_tag(s, st->input.tag, strlen(st->input.tag));
		if (st->input.toobig) {
			login_reply(s, "%s NO [TOOBIG] %s", login_tag(s),
			    st->input.error);
			login_bad(s);
			return;
		}
		bad(s, st->input.error);
		return;
	case IMAP_IN_TOOBIG:
		login_set_tag(s, st->input.tag, strlen(st->input.tag));
		login_reply(s, "%s NO [TOOBIG] %s", login_tag(s),
		    st->input.error);
		return;
	case IMAP_IN_FATAL:
		login_reply(s, "* BYE %s", st->input.error);
		login_close(s);
		return;
	case IMAP_IN_DATA:
	case IMAP_IN_MORE:
		return;
	}
}

static void
dispatch(struct login_session *s, const struct imap_command *cmd)
{
	if (cmd->tag_len > LOGIN_TAG_MAX) {
		login_set_tag(s, "*", 1);
		bad(s, "Tag too long");
		return;
	}
	login_set_tag(s, cmd->tag, cmd->tag_len);
	for (const struct imap_login_cmd *c = commands; c->name; c++)
		if (!cmd->uid && imap_command_is(cmd, c->name)) {
			c->run(s, cmd);
			return;
		}
	for (const char *const *n = later; *n; n++)
		if (imap_command_is(cmd, *n)) {
			bad(s, "Log in first");
			return;
		}
	bad(s, "Unknown command");
}

static void
bad(struct login_session *s, const char *text)
{
	login_reply(s, "%s BAD %s", login_tag(s), text);
	login_bad(s);
}

static bool
no_args(struct login_session *s, const struct imap_command *cmd)
{
	if (cmd->argc == 0)
		return true;
	bad(s, "This command takes no arguments");
	return false;
}

/* ---- commands -------------------------------------------------------- */

static void
run_capability(struct login_session *s, const struct imap_command *cmd)
{
	struct buf b = { 0 };

	if (!no_args(s, cmd))
		return;
	imap_capability(s, &b);
	login_reply(s, "* CAPABILITY %.*s", (int)buf_used(&b), buf_head(&b));
	buf_free(&b);
	login_reply(s, "%s OK Capability completed", login_tag(s));
}

static void
run_noop(struct login_session *s, const struct imap_command *cmd)
{
	if (no_args(s, cmd))
		login_reply(s, "%s OK NOOP completed", login_tag(s));
}

static void
run_logout(struct login_session *s, const struct imap_command *cmd)
{
	if (!no_args(s, cmd))
		return;
	login_reply(s, "* BYE Logging out");
	login_reply(s, "%s OK Logout completed", login_tag(s));
	login_close(s);
}

/* The client's ID parameters, kept for a daemon that forwards them
 * (ringgate to its back end). A field that is not a string ends the
 * walk; memory running out keeps what was kept. */
static void
keep_id(struct login_session *s, const struct imap_arg *list)
{
	const struct imap_arg *f = imap_arg_child(list), *v;

	login_clear_id(s);
	for (; f != NULL && (v = imap_arg_next(f)) != NULL;
	     f = imap_arg_next(v)) {
		if (!imap_arg_is_string(f) ||
		    (!imap_arg_is_string(v) && !imap_arg_is_nil(v)))
			return;
		if (login_keep_id(s, f->ptr, f->len,
			imap_arg_is_nil(v) ? NULL : v->ptr, v->len) == -1)
			return;
	}
}

static void
run_id(struct login_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 1 ||
	    (cmd->args->type != IMAP_ARG_LIST && !imap_arg_is_nil(cmd->args))) {
		bad(s, "ID takes a parameter list or NIL");
		return;
	}
	keep_id(s, cmd->args);
	login_reply(s, "* ID (\"name\" \"%s\" \"version\" \"%s\")",
	    login_settings(s)->server_name, RG_VERSION);
	login_reply(s, "%s OK ID completed", login_tag(s));
}

static void
run_starttls(struct login_session *s, const struct imap_command *cmd)
{
	if (no_args(s, cmd))
		login_starttls(s);
}

static void
run_login(struct login_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *u = cmd->args, *p = imap_arg_next(u);

	if (cmd->argc != 2 || !imap_arg_is_astring(u) ||
	    !imap_arg_is_astring(p)) {
		bad(s, "LOGIN takes a user name and a password");
		return;
	}
	if (u->len == 0 || u->len > AUTH_USER_MAX ||
	    p->len > AUTH_PASSWORD_MAX) {
		bad(s, "User name or password too long");
		return;
	}
	login_password(s, u->ptr, u->len, p->ptr, p->len, "IMAP-LOGIN");
}

static void
run_authenticate(struct login_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *m = cmd->args, *ir = imap_arg_next(m);

	if (cmd->argc < 1 || cmd->argc > 2 || m->type != IMAP_ARG_ATOM ||
	    (ir != NULL && ir->type != IMAP_ARG_ATOM)) {
		bad(s,
		    "AUTHENTICATE takes a mechanism and an optional "
		    "initial response");
		return;
	}
	login_sasl_start(s, m->ptr, m->len, ir ? ir->ptr : NULL,
	    ir ? ir->len : 0);
}
