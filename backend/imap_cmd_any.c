/*
 * imap_cmd_any.c - commands of any state and of the login phase:
 * CAPABILITY, NOOP, LOGOUT, ID, ENABLE, STARTTLS, and the table entries of
 * LOGIN and AUTHENTICATE, which live in imap_auth.c with everything else
 * about logging in.
 *
 * Must never: offer STARTTLS once TLS is on, or act on input pipelined
 * before the TLS handshake.
 */
#include "backend/imap_private.h"
#include "core/loop.h"

static int check_id(struct imap_session *s, const struct imap_command *cmd);
static int check_enable(struct imap_session *s, const struct imap_command *cmd);
static void run_capability(struct imap_session *s,
    const struct imap_command *cmd);
static void run_noop(struct imap_session *s, const struct imap_command *cmd);
static void run_logout(struct imap_session *s, const struct imap_command *cmd);
static void run_id(struct imap_session *s, const struct imap_command *cmd);
static void run_enable(struct imap_session *s, const struct imap_command *cmd);
static void run_starttls(struct imap_session *s,
    const struct imap_command *cmd);

const struct imap_cmd_def imap_cmds_any[] = {
	{ "CAPABILITY", ST_ANY, false, imap_check_none, run_capability },
	{ "NOOP", ST_NOT_AUTH | ST_AUTH, false, imap_check_none, run_noop },
	{ "LOGOUT", ST_ANY, false, imap_check_none, run_logout },
	{ "ID", ST_ANY, false, check_id, run_id },
	{ "ENABLE", ST_AUTH, false, check_enable, run_enable },
	{ "STARTTLS", ST_NOT_AUTH, false, imap_check_none, run_starttls },
	{ "LOGIN", ST_NOT_AUTH, false, imap_auth_check_login,
	    imap_auth_run_login },
	{ "AUTHENTICATE", ST_NOT_AUTH, false, imap_auth_check_authenticate,
	    imap_auth_run_authenticate },
	{ NULL },
};

static bool
can_starttls(const struct imap_session *s)
{
	return !(s->flags & SF_TLS) && s->lconf->starttls && s->w->tls != NULL;
}

void
imap_capability_string(struct imap_session *s, struct buf *b)
{
	buf_printf(b, "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE");
	if (s->state == IS_NOT_AUTH) {
		if (can_starttls(s))
			buf_printf(b, " STARTTLS");
		imap_auth_capability(s, b);
		return;
	}
	buf_printf(b,
	    " NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE"
	    " IDLE");
}

/* ---- checks ------------------------------------------------------- */

static int
check_id(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 1 ||
	    (cmd->args->type != IMAP_ARG_LIST && !imap_arg_is_nil(cmd->args))) {
		s->error = "ID takes a parameter list or NIL";
		return -1;
	}
	return 0;
}

static int
check_enable(struct imap_session *s, const struct imap_command *cmd)
{
	for (const struct imap_arg *a = cmd->args; a; a = imap_arg_next(a))
		if (a->type != IMAP_ARG_ATOM) {
			s->error = "ENABLE takes capability names";
			return -1;
		}
	if (cmd->argc == 0) {
		s->error = "ENABLE needs a capability name";
		return -1;
	}
	return 0;
}

/* ---- actions ------------------------------------------------------ */

static void
run_capability(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf b = { 0 };

	imap_capability_string(s, &b);
	imap_reply(s, "*", "CAPABILITY %.*s", (int)buf_used(&b), buf_head(&b));
	buf_free(&b);
	imap_reply(s, NULL, "OK Capability completed");
}

static void
run_noop(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, NULL, "OK NOOP completed");
}

static void
run_logout(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "*", "BYE Logging out");
	imap_reply(s, NULL, "OK Logout completed");
	imap_enter_state(s, IS_LOGOUT);
	s->flags |= SF_CLOSING;
	conn_close(s->c);
}

static void
run_id(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "*", "ID (\"name\" \"ringstore\" \"version\" \"%s\")",
	    RG_VERSION);
	imap_reply(s, NULL, "OK ID completed");
}

/* Nothing optional is implemented yet, so nothing is enabled. */
static void
run_enable(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "*", "ENABLED");
	imap_reply(s, NULL, "OK ENABLE completed");
}

/* The OK goes out in plaintext; whatever the client pipelined after the
 * command was sent before the upgrade and is thrown away. */
static void
run_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	if (!can_starttls(s)) {
		imap_reply(s, NULL, "NO STARTTLS is not available here");
		return;
	}
	imap_reply(s, NULL, "OK Begin TLS negotiation now");
	buf_free(&s->in);
	if (conn_start_tls_server(s->c, s->w->tls) == -1) {
		conn_abort(s->c, CR_TLS);
		return;
	}
	s->flags |= SF_TLS;
}
