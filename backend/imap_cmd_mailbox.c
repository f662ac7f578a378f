/*
 * imap_cmd_mailbox.c - mailbox commands: SELECT, EXAMINE, LIST (with
 * SPECIAL-USE), LSUB, STATUS, CREATE, DELETE, RENAME, SUBSCRIBE,
 * UNSUBSCRIBE, NAMESPACE.
 *
 * Relies on store/maildir.h for everything on disk, called only from
 * store pool jobs; untagged output is formatted on the pool thread into
 * the job's buffer and queued by finish() on the loop. Names travel as
 * UTF-8 inside and as modified UTF-7 on the wire.
 *
 * Must never: call the store from the ring thread, or keep a folder open
 * after a failed SELECT (RFC 3501: the old one is closed either way).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/imap_private.h"
#include "proto/imap_pattern.h"
#include "core/log.h"
#include "core/loop.h"
#include "store/maildir.h"

enum folder_op { OP_CREATE, OP_DELETE, OP_RENAME, OP_SUB, OP_UNSUB };

/* STATUS items, bit per item. */
#define STATUS_MESSAGES 0x01
#define STATUS_RECENT 0x02
#define STATUS_UIDNEXT 0x04
#define STATUS_UIDVALIDITY 0x08
#define STATUS_UNSEEN 0x10

/* LIST selection options. */
#define LIST_SPECIAL 0x01
#define LIST_SUBSCRIBED 0x02
#define LIST_LSUB 0x04
#define LIST_NOTHING 0x08 /* a name no mailbox can have: OK, no lines */

struct mbox_job {
	struct imap_job base;
	enum folder_op op;
	char *maildir;		     /* the session's; it outlives the job */
	struct maildir_cache *cache; /* the server's; may be NULL */
	struct maildir_limits lim;   /* CREATE and RENAME */
	char name[IMAP_MBOX_MAX];
	char name2[IMAP_MBOX_MAX];
	unsigned items;
	bool readonly;
	/* SELECT results */
	uint32_t exists, recent, unseen_seq, uidvalidity, uidnext;
	struct maildir_status st;
};

static int check_mailbox(struct imap_session *s,
    const struct imap_command *cmd);
static int check_select(struct imap_session *s, const struct imap_command *cmd);
static int check_rename(struct imap_session *s, const struct imap_command *cmd);
static int check_list(struct imap_session *s, const struct imap_command *cmd);
static int check_status(struct imap_session *s, const struct imap_command *cmd);

static void run_select(struct imap_session *s, const struct imap_command *cmd);
static void run_folder_op(struct imap_session *s,
    const struct imap_command *cmd);
static void run_list(struct imap_session *s, const struct imap_command *cmd);
static void run_status(struct imap_session *s, const struct imap_command *cmd);
static void run_namespace(struct imap_session *s,
    const struct imap_command *cmd);

static struct mbox_job *mbox_job(struct imap_session *s,
    int (*finish)(struct imap_session *, struct imap_job *));
static void select_run(struct pool_job *sj);
static int select_finish(struct imap_session *s, struct imap_job *job);
static void folder_run(struct pool_job *sj);
static int folder_finish(struct imap_session *s, struct imap_job *job);
static void list_run(struct pool_job *sj);
static void status_run(struct pool_job *sj);
static int output_finish(struct imap_session *s, struct imap_job *job);
static void reply_error(struct imap_session *s, struct imap_job *job);
static bool matches(struct imap_pattern *p, const char *name);
static void list_line(struct buf *b, const char *verb, unsigned attrs,
    const char *name);
static void lsub_run(struct mbox_job *job, struct imap_pattern *pat);
static int lsub_parents(const char *text, struct imap_pattern *pat, char **subs,
    size_t n, char ***parents_r, size_t *count_r);
static int cmp_str(const void *a, const void *b);

const struct imap_cmd_def imap_cmds_mailbox[] = {
	{ "SELECT", ST_AUTH | ST_SELECTED, false, check_select, run_select },
	{ "EXAMINE", ST_AUTH | ST_SELECTED, false, check_select, run_select },
	{ "CREATE", ST_AUTH | ST_SELECTED, false, check_mailbox,
	    run_folder_op },
	{ "DELETE", ST_AUTH | ST_SELECTED, false, check_mailbox,
	    run_folder_op },
	{ "RENAME", ST_AUTH | ST_SELECTED, false, check_rename, run_folder_op },
	{ "SUBSCRIBE", ST_AUTH | ST_SELECTED, false, check_mailbox,
	    run_folder_op },
	{ "UNSUBSCRIBE", ST_AUTH | ST_SELECTED, false, check_mailbox,
	    run_folder_op },
	{ "LIST", ST_AUTH | ST_SELECTED, false, check_list, run_list },
	{ "LSUB", ST_AUTH | ST_SELECTED, false, check_list, run_list },
	{ "STATUS", ST_AUTH | ST_SELECTED, false, check_status, run_status },
	{ "NAMESPACE", ST_AUTH | ST_SELECTED, false, imap_check_none,
	    run_namespace },
	{ NULL },
};

/* ---- checks ------------------------------------------------------- */

static int
check_mailbox(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 1) {
		s->error = "Expected one mailbox name";
		return -1;
	}
	return imap_get_mailbox(s, cmd->args, s->a.mbox, sizeof(s->a.mbox));
}

/* A refused name still runs SELECT: RFC 3501 6.3.1 closes the selected
 * folder whenever a SELECT is attempted, and run_select() answers NO. */
static int
check_select(struct imap_session *s, const struct imap_command *cmd)
{
	if (check_mailbox(s, cmd) == -1 && s->a.refuse == NULL)
		return -1;
	return 0;
}

static int
check_rename(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->argc != 2) {
		s->error = "RENAME takes two mailbox names";
		return -1;
	}
	if (imap_get_mailbox(s, cmd->args, s->a.mbox, sizeof(s->a.mbox)) == -1)
		return -1;
	return imap_get_mailbox(s, imap_arg_next(cmd->args), s->a.mbox2,
	    sizeof(s->a.mbox2));
}

/* LIST [(selection options)] reference pattern [RETURN (...)]. The
 * pattern (reference + mailbox) lands in mbox2. */
static int
check_list(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *a = cmd->args;
	char ref[IMAP_MBOX_MAX], pat[IMAP_MBOX_MAX];

	if (imap_command_is(cmd, "LSUB"))
		s->a.items |= LIST_LSUB;
	if (a != NULL && a->type == IMAP_ARG_LIST &&
	    !(s->a.items & LIST_LSUB)) {
		for (const struct imap_arg *o = imap_arg_child(a); o;
		     o = imap_arg_next(o)) {
			if (imap_arg_atom_is(o, "SPECIAL-USE"))
				s->a.items |= LIST_SPECIAL;
			else if (imap_arg_atom_is(o, "SUBSCRIBED"))
				s->a.items |= LIST_SUBSCRIBED;
			else if (!imap_arg_atom_is(o, "RECURSIVEMATCH") &&
			    !imap_arg_atom_is(o, "REMOTE")) {
				s->error = "Unknown LIST selection option";
				return -1;
			}
		}
		a = imap_arg_next(a);
	}
	if (a == NULL || imap_arg_next(a) == NULL) {
		s->error = "LIST takes a reference and a mailbox pattern";
		return -1;
	}
	if (imap_get_mailbox(s, a, ref, sizeof(ref)) == -1 ||
	    imap_get_mailbox(s, imap_arg_next(a), pat, sizeof(pat)) == -1) {
		if (s->a.refuse == NULL)
			return -1;
		/* not modified UTF-7, or longer than any name: it matches
		 * no mailbox, which is not an error for LIST (RFC 3501
		 * 6.3.8: NO is for a reference or name it cannot list) */
		s->a.refuse = NULL;
		s->a.items |= LIST_NOTHING;
		ref[0] = pat[0] = '\0';
	}
	a = imap_arg_next(imap_arg_next(a));
	if (a != NULL && !imap_arg_atom_is(a, "RETURN")) {
		s->error = "Unexpected LIST argument";
		return -1;
	}
	/* an empty mailbox name asks for the delimiter and the root name
	 * whatever the reference (RFC 3501 6.3.8); one namespace, root "" */
	if (pat[0] == '\0')
		ref[0] = '\0';
	if (snprintf(s->a.mbox2, sizeof(s->a.mbox2), "%s%s", ref, pat) >=
	    (int)sizeof(s->a.mbox2)) {
		s->error = "Pattern too long";
		return -1;
	}
	if (strncasecmp(s->a.mbox2, "INBOX", 5) == 0 &&
	    (s->a.mbox2[5] == '\0' || s->a.mbox2[5] == '/'))
		memcpy(s->a.mbox2, "INBOX", 5);
	return 0;
}

static int
check_status(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *l = imap_arg_next(cmd->args);
	static const struct {
		const char *name;
		unsigned bit;
	} items[] = { { "MESSAGES", STATUS_MESSAGES },
		{ "RECENT", STATUS_RECENT }, { "UIDNEXT", STATUS_UIDNEXT },
		{ "UIDVALIDITY", STATUS_UIDVALIDITY },
		{ "UNSEEN", STATUS_UNSEEN } };

	if (cmd->argc != 2 || l->type != IMAP_ARG_LIST || l->count == 0) {
		s->error = "STATUS takes a mailbox and a list of items";
		return -1;
	}
	if (imap_get_mailbox(s, cmd->args, s->a.mbox, sizeof(s->a.mbox)) == -1)
		return -1;
	for (const struct imap_arg *i = imap_arg_child(l); i;
	     i = imap_arg_next(i)) {
		size_t k;

		for (k = 0; k < sizeof(items) / sizeof(items[0]); k++)
			if (imap_arg_atom_is(i, items[k].name))
				break;
		if (k == sizeof(items) / sizeof(items[0])) {
			s->error = "Unknown STATUS item";
			return -1;
		}
		s->a.items |= items[k].bit;
	}
	return 0;
}

/* ---- shared job plumbing ------------------------------------------ */

static struct mbox_job *
mbox_job(struct imap_session *s,
    int (*finish)(struct imap_session *, struct imap_job *))
{
	struct mbox_job *job = imap_job_new(s, sizeof(*job), finish);

	if (job == NULL) {
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return NULL;
	}
	job->maildir = s->maildir;
	job->cache = s->srv->folders;
	job->lim.max_folders = (unsigned)s->srv->cf->limits.folders_max;
	job->lim.max_depth = (unsigned)s->srv->cf->limits.folder_depth_max;
	job->lim.max_name = (unsigned)s->srv->cf->limits.folder_name_max;
	memcpy(job->name, s->a.mbox, sizeof(job->name));
	memcpy(job->name2, s->a.mbox2, sizeof(job->name2));
	job->items = s->a.items;
	return job;
}

static void
reply_error(struct imap_session *s, struct imap_job *job)
{
	switch (job->err) {
	case ENOENT:
		imap_reply(s, NULL, "NO [NONEXISTENT] Mailbox does not exist");
		break;
	case EEXIST:
		imap_reply(s, NULL, "NO [ALREADYEXISTS] Mailbox exists");
		break;
	case ENOTEMPTY:
		imap_reply(s, NULL,
		    "NO [HASCHILDREN] Mailbox has children; "
		    "delete them first");
		break;
	case EPERM:
		imap_reply(s, NULL, "NO [CANNOT] Not allowed for INBOX");
		break;
	case EINVAL:
		imap_reply(s, NULL, "NO [CANNOT] Invalid mailbox name");
		break;
	case EMLINK:
	case ENAMETOOLONG:
		/* the library's text says which: too many folders, name
		 * too deep, name too long */
		imap_reply(s, NULL, "NO [LIMIT] %s",
		    job->errtext ? job->errtext : "Limit reached");
		break;
	default:
		log_error(s->sid, "imap.store_failed", "errno=%d error=\"%s\"",
		    job->err, job->errtext ? job->errtext : "?");
		imap_reply(s, NULL,
		    "NO [SERVERBUG] Internal error, see the "
		    "server log");
		break;
	}
}

/* Queue the untagged lines built on the pool, then the tagged answer. */
static int
output_finish(struct imap_session *s, struct imap_job *job)
{
	if (job->err) {
		reply_error(s, job);
		return 0;
	}
	imap_send(s, buf_head(&job->out), buf_used(&job->out));
	imap_reply(s, NULL, "OK Completed");
	return 0;
}

/* ---- SELECT / EXAMINE -------------------------------------------- */

void
imap_unselect(struct imap_session *s)
{
	imap_idle_unselect(s);
	maildir_close(&s->box);
	s->exists = 0;
	if (s->state == IS_SELECTED)
		imap_enter_state(s, IS_AUTH);
}

static void
run_select(struct imap_session *s, const struct imap_command *cmd)
{
	struct mbox_job *job;

	imap_unselect(s);
	if (s->a.refuse != NULL) {
		imap_reply(s, NULL, "NO %s", s->a.refuse);
		return;
	}
	if ((job = mbox_job(s, select_finish)) == NULL)
		return;
	job->readonly = imap_command_is(cmd, "EXAMINE");
	imap_job_submit(s, &job->base, select_run);
}

static void
select_run(struct pool_job *sj)
{
	struct mbox_job *job = (struct mbox_job *)sj;
	const struct maildir_msg *msgs;
	size_t n;

	if (maildir_open_cached(job->cache, job->maildir, job->name,
		job->readonly ? MAILDIR_OPEN_READONLY : 0, &job->base.box,
		&job->base.errtext) == -1) {
		job->base.err = errno ? errno : EIO;
		return;
	}
	msgs = maildir_msgs(job->base.box, &n);
	job->exists = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].flags & MAILDIR_FLAG_RECENT)
			job->recent++;
		if (!(msgs[i].flags & MAILDIR_FLAG_SEEN) && !job->unseen_seq)
			job->unseen_seq = (uint32_t)i + 1;
	}
	job->uidvalidity = maildir_uidvalidity(job->base.box);
	job->uidnext = maildir_uidnext(job->base.box);
}

static int
select_finish(struct imap_session *s, struct imap_job *ij)
{
	struct mbox_job *job = (struct mbox_job *)ij;

	if (ij->err) {
		reply_error(s, ij);
		return 0;
	}
	s->box = ij->box;
	ij->box = NULL;
	s->readonly = job->readonly;
	s->exists = job->exists;
	imap_idle_select(s);
	imap_enter_state(s, IS_SELECTED);
	/* the folder's keywords too; box is the session's now */
	imap_write_flag_lists(&ij->out, s->box);
	imap_send(s, buf_head(&ij->out), buf_used(&ij->out));
	imap_reply(s, "*", "%u EXISTS", job->exists);
	imap_reply(s, "*", "%u RECENT", job->recent);
	if (job->unseen_seq)
		imap_reply(s, "*", "OK [UNSEEN %u] First unseen",
		    job->unseen_seq);
	imap_reply(s, "*", "OK [UIDVALIDITY %u] UIDs valid", job->uidvalidity);
	imap_reply(s, "*", "OK [UIDNEXT %u] Predicted next UID", job->uidnext);
	imap_reply(s, NULL, "OK [%s] %s completed",
	    job->readonly ? "READ-ONLY" : "READ-WRITE",
	    job->readonly ? "EXAMINE" : "SELECT");
	return 0;
}

/* ---- CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE ------------------ */

static void
run_folder_op(struct imap_session *s, const struct imap_command *cmd)
{
	struct mbox_job *job = mbox_job(s, folder_finish);

	if (job == NULL)
		return;
	job->op = imap_command_is(cmd, "CREATE") ? OP_CREATE :
	    imap_command_is(cmd, "DELETE")	 ? OP_DELETE :
	    imap_command_is(cmd, "RENAME")	 ? OP_RENAME :
	    imap_command_is(cmd, "SUBSCRIBE")	 ? OP_SUB :
						   OP_UNSUB;
	/* RFC 3501 6.3.3: a trailing separator declares that the name will
	 * have children; Maildir++ needs no such declaration, so it is
	 * ignored and the folder created like any other (a parent is an
	 * ordinary folder here). */
	if (job->op == OP_CREATE) {
		size_t len = strlen(job->name);

		if (len > 1 && job->name[len - 1] == '/')
			job->name[len - 1] = '\0';
	}
	/* Deleting the selected folder: unselect it first. */
	if (job->op == OP_DELETE && s->box != NULL &&
	    strcmp(maildir_name(s->box), job->name) == 0)
		imap_unselect(s);
	imap_job_submit(s, &job->base, folder_run);
}

static void
folder_run(struct pool_job *sj)
{
	struct mbox_job *job = (struct mbox_job *)sj;
	const char **e = &job->base.errtext;
	int rc = -1;

	errno = 0;
	switch (job->op) {
	case OP_CREATE:
		rc = maildir_check_limits(job->maildir, &job->lim, job->name,
		    NULL, e);
		if (rc == 0)
			rc = maildir_create(job->maildir, job->name, e);
		break;
	case OP_DELETE:
		rc = maildir_delete(job->maildir, job->name, e);
		break;
	case OP_RENAME:
		rc = maildir_check_limits(job->maildir, &job->lim, job->name2,
		    job->name, e);
		if (rc == 0)
			rc = maildir_rename(job->maildir, job->name, job->name2,
			    e);
		break;
	case OP_SUB:
	case OP_UNSUB:
		rc = maildir_subscribe_limited(job->maildir, job->name,
		    job->op == OP_SUB, &job->lim, e);
		break;
	}
	if (rc == -1)
		job->base.err = errno ? errno : EIO;
}

static int
folder_finish(struct imap_session *s, struct imap_job *job)
{
	if (job->err) {
		reply_error(s, job);
		return 0;
	}
	imap_reply(s, NULL, "OK Completed");
	return 0;
}

/* ---- LIST / LSUB --------------------------------------------------- */

static void
run_list(struct imap_session *s, const struct imap_command *cmd)
{
	struct mbox_job *job;

	if (s->a.items & LIST_NOTHING) {
		imap_reply(s, NULL, "OK Completed");
		return;
	}
	if (s->a.mbox2[0] == '\0') {
		imap_reply(s, "*", "%s (\\Noselect) \"/\" \"\"",
		    imap_command_is(cmd, "LSUB") ? "LSUB" : "LIST");
		imap_reply(s, NULL, "OK Completed");
		return;
	}
	if ((job = mbox_job(s, output_finish)) != NULL)
		imap_job_submit(s, &job->base, list_run);
}

/* LIST wildcards ('*', '%' stopping at '/'): proto/imap_pattern.c. */
static bool
matches(struct imap_pattern *p, const char *name)
{
	return imap_pattern_match(p, name, strlen(name));
}

static void
list_line(struct buf *b, const char *verb, unsigned attrs, const char *name)
{
	static const struct {
		unsigned bit;
		const char *text;
	} names[] = { { MAILDIR_ATTR_NOSELECT, "\\Noselect" },
		{ MAILDIR_ATTR_HASCHILDREN, "\\HasChildren" },
		{ MAILDIR_ATTR_HASNOCHILDREN, "\\HasNoChildren" },
		{ MAILDIR_ATTR_SUBSCRIBED, "\\Subscribed" },
		{ MAILDIR_ATTR_DRAFTS, "\\Drafts" },
		{ MAILDIR_ATTR_SENT, "\\Sent" },
		{ MAILDIR_ATTR_TRASH, "\\Trash" },
		{ MAILDIR_ATTR_JUNK, "\\Junk" } };
	const char *sep = "";

	buf_printf(b, "* %s (", verb);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (attrs & names[i].bit) {
			buf_printf(b, "%s%s", sep, names[i].text);
			sep = " ";
		}
	buf_printf(b, ") \"/\" ");
	imap_put_mailbox(b, name);
	buf_printf(b, "\r\n");
}

static void
list_run(struct pool_job *sj)
{
	struct mbox_job *job = (struct mbox_job *)sj;
	const unsigned special = MAILDIR_ATTR_DRAFTS | MAILDIR_ATTR_SENT |
	    MAILDIR_ATTR_TRASH | MAILDIR_ATTR_JUNK;
	struct maildir_folder *list = NULL;
	struct imap_pattern *pat;
	size_t n = 0;

	errno = 0;
	pat = imap_pattern_new(job->name2, strlen(job->name2), '/');
	if (pat == NULL) {
		job->base.err = ENOMEM;
		job->base.errtext = "out of memory";
		return;
	}
	if (job->items & LIST_LSUB) {
		lsub_run(job, pat);
		imap_pattern_free(pat);
		return;
	}
	if (maildir_list(job->maildir, &list, &n, &job->base.errtext) == -1) {
		job->base.err = errno ? errno : EIO;
		imap_pattern_free(pat);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned attrs = list[i].attrs;

		if (!matches(pat, list[i].name))
			continue;
		if ((job->items & LIST_SPECIAL) && !(attrs & special))
			continue;
		if ((job->items & LIST_SUBSCRIBED) &&
		    !(attrs & MAILDIR_ATTR_SUBSCRIBED))
			continue;
		if (!(job->items & LIST_SUBSCRIBED))
			attrs &= ~MAILDIR_ATTR_SUBSCRIBED;
		list_line(&job->base.out, "LIST", attrs, list[i].name);
	}
	maildir_list_free(list, n);
	imap_pattern_free(pat);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* RFC 3501 6.3.9: with '%', a name that matches but is not subscribed
 * while something below it is comes back \Noselect ("foo/%" over a
 * subscribed "foo/bar/baz" gives "foo/bar"). The ancestors of every
 * subscribed name the pattern does not match itself, that do match and
 * are not subscribed, sorted and unique into *parents_r. */
static int
lsub_parents(const char *text, struct imap_pattern *pat, char **subs, size_t n,
    char ***parents_r, size_t *count_r)
{
	char **v = NULL, **nv, pfx[IMAP_MBOX_MAX];
	size_t cap = 0, k = 0, len;

	*parents_r = NULL;
	*count_r = 0;
	if (strchr(text, '%') == NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (matches(pat, subs[i]))
			continue;
		for (const char *slash = strchr(subs[i], '/'); slash != NULL;
		     slash = strchr(slash + 1, '/')) {
			if ((len = (size_t)(slash - subs[i])) >= sizeof(pfx))
				break;
			memcpy(pfx, subs[i], len);
			pfx[len] = '\0';
			if (!matches(pat, pfx))
				continue;
			if (k == cap) {
				cap = cap ? cap * 2 : 8;
				if ((nv = reallocarray(v, cap, sizeof(*v))) ==
				    NULL)
					goto fail;
				v = nv;
			}
			if ((v[k] = strdup(pfx)) == NULL)
				goto fail;
			k++;
		}
	}
	if (k > 0)
		qsort(v, k, sizeof(*v), cmp_str);
	*parents_r = v;
	*count_r = k;
	return 0;
fail:
	maildir_strings_free(v, k);
	return -1;
}

static void
lsub_run(struct mbox_job *job, struct imap_pattern *pat)
{
	char **subs = NULL, **parents = NULL, **sorted = NULL;
	size_t n = 0, np = 0;

	if (maildir_subscriptions(job->maildir, &subs, &n,
		&job->base.errtext) == -1) {
		job->base.err = errno ? errno : EIO;
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (matches(pat, subs[i]))
			list_line(&job->base.out, "LSUB", 0, subs[i]);
	if (lsub_parents(job->name2, pat, subs, n, &parents, &np) == -1 ||
	    (sorted = calloc(n + 1, sizeof(*sorted))) == NULL) {
		job->base.err = ENOMEM;
		job->base.errtext = "out of memory";
		goto out;
	}
	/* the subscribed names, sorted, to skip parents that are
	 * subscribed themselves */
	memcpy(sorted, subs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	for (size_t i = 0; i < np; i++) {
		if ((i > 0 && strcmp(parents[i], parents[i - 1]) == 0) ||
		    bsearch(&parents[i], sorted, n, sizeof(*sorted), cmp_str) !=
			NULL)
			continue;
		list_line(&job->base.out, "LSUB", MAILDIR_ATTR_NOSELECT,
		    parents[i]);
	}
out:
	free(sorted);
	maildir_strings_free(parents, np);
	maildir_strings_free(subs, n);
}

/* ---- STATUS -------------------------------------------------------- */

static void
run_status(struct imap_session *s, const struct imap_command *cmd)
{
	struct mbox_job *job = mbox_job(s, output_finish);

	if (job != NULL)
		imap_job_submit(s, &job->base, status_run);
}

static void
status_run(struct pool_job *sj)
{
	struct mbox_job *job = (struct mbox_job *)sj;
	struct buf *b = &job->base.out;
	const char *sep = "";

	errno = 0;
	if (maildir_status(job->maildir, job->name, &job->st,
		&job->base.errtext) == -1) {
		job->base.err = errno ? errno : EIO;
		return;
	}
	buf_printf(b, "* STATUS ");
	imap_put_mailbox(b, job->name);
	buf_printf(b, " (");
#define ITEM(bit, name, v)                                                     \
	if (job->items & (bit)) {                                              \
		buf_printf(b, "%s%s %u", sep, name, (unsigned)(v));            \
		sep = " ";                                                     \
	}
	ITEM(STATUS_MESSAGES, "MESSAGES", job->st.messages)
	ITEM(STATUS_RECENT, "RECENT", job->st.recent)
	ITEM(STATUS_UIDNEXT, "UIDNEXT", job->st.uidnext)
	ITEM(STATUS_UIDVALIDITY, "UIDVALIDITY", job->st.uidvalidity)
	ITEM(STATUS_UNSEEN, "UNSEEN", job->st.unseen)
#undef ITEM
	buf_printf(b, ")\r\n");
}

/* ---- NAMESPACE ----------------------------------------------------- */

static void
run_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	imap_reply(s, "*", "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_reply(s, NULL, "OK NAMESPACE completed");
}
