/*
 * imap_cmd_any.c - commands of every state after login: CAPABILITY,
 * NOOP, LOGOUT, ID, ENABLE. Before login the same commands (and STARTTLS,
 * LOGIN, AUTHENTICATE) are login/imap_login.c's.
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

const struct imap_cmd_def imap_cmds_any[] = {
	{ "CAPABILITY", ST_ANY, false, imap_check_none, run_capability },
	{ "NOOP", ST_AUTH, false, imap_check_none, run_noop },
	{ "LOGOUT", ST_ANY, false, imap_check_none, run_logout },
	{ "ID", ST_ANY, false, check_id, run_id },
	{ "ENABLE", ST_AUTH, false, check_enable, run_enable },
	{ NULL },
};

void
imap_capability_string(struct imap_session *s, struct buf *b)
{
	(void)s;
	buf_printf(b, "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE");
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
