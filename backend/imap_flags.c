/*
 * imap_flags.c - message flags in their IMAP form: the flag lists of
 * STORE and APPEND (system flags and keywords) parsed and checked, a
 * message's "FLAGS (...)" written, and a folder's FLAGS and
 * PERMANENTFLAGS lines (RFC 3501 sections 2.3.2, 7.1 and 7.2.6).
 *
 * Keywords are named per folder by the storage (maildir_keywords.c);
 * here they are atoms a client sent or a name the storage keeps. A
 * keyword must be an atom of RFC 3501 (no atom-specials, which the
 * tokenizer lets through in the wide sense for other arguments: '%',
 * '*', ']'), is never NIL (clients read NIL in a flag list as the special
 * form, RFC 3501 section 4.5, and fail) and never starts with '\'.
 * Anything else is a syntax error (BAD); a keyword longer than the
 * storage keeps is a limit (NO [LIMIT]), said by the caller.
 *
 * Runs on the ring (parsing) and on the store pool (writing, with the
 * folder borrowed). Must never: emit a keyword the folder has no name
 * for, or let a flag that is no atom reach a response.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/imap_private.h"
#include "store/maildir.h"

static const struct {
	const char *name;
	unsigned bit;
} system_flags[] = {
	{ "\\Seen", MAILDIR_FLAG_SEEN },
	{ "\\Answered", MAILDIR_FLAG_ANSWERED },
	{ "\\Flagged", MAILDIR_FLAG_FLAGGED },
	{ "\\Deleted", MAILDIR_FLAG_DELETED },
	{ "\\Draft", MAILDIR_FLAG_DRAFT },
	{ "\\Recent", MAILDIR_FLAG_RECENT },
};
#define NSYSTEM (sizeof(system_flags) / sizeof(system_flags[0]))
/* What SELECT lists: the flags a client may store (not \Recent). */
#define SETTABLE "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

static int parse_one(struct imap_session *s, const struct imap_arg *f,
    struct imap_flag_list *fl, size_t *bytes);
static int copy_keywords(const struct imap_arg *a, bool chain,
    struct imap_flag_list *fl, size_t bytes);
static void write_keywords(struct buf *b, const struct maildir *box,
    uint32_t letters, const char *sep);

/* ---- parsing ------------------------------------------------------- */

/* One flag. Counts a keyword's bytes (for the copy) in *bytes. */
static int
parse_one(struct imap_session *s, const struct imap_arg *f,
    struct imap_flag_list *fl, size_t *bytes)
{
	size_t i;

	if (f->type != IMAP_ARG_ATOM) {
		s->error = "Flags are atoms";
		return -1;
	}
	if (f->ptr[0] == '\\') {
		for (i = 0; i < NSYSTEM; i++)
			if (imap_arg_atom_is(f, system_flags[i].name))
				break;
		if (i == NSYSTEM) {
			s->error = "Unknown system flag";
			return -1;
		}
		/* \Recent is the server's to set: accepted, ignored */
		fl->flags |= system_flags[i].bit & MAILDIR_FLAGS_STORED;
		return 0;
	}
	/* "NIL" is an atom, so a keyword like any other (RFC 3501's
	 * flag-keyword); no flags at all is an empty list */
	for (i = 0; i < f->len; i++)
		if (!maildir_keyword_valid(f->ptr + i, 1)) {
			s->error = "Invalid character in keyword";
			return -1;
		}
	/* a limit, not syntax: the caller answers NO [LIMIT] */
	if (f->len > MAILDIR_KEYWORD_LEN_MAX)
		fl->too_long = true;
	fl->nkeywords++;
	*bytes += f->len + 1;
	return 0;
}

int
imap_flags_parse(struct imap_session *s, const struct imap_arg *a, bool chain,
    struct imap_flag_list *fl)
{
	struct imap_flag_list tmp;
	const struct imap_arg *f;
	size_t bytes = 0;

	memset(fl ? fl : &tmp, 0, sizeof(tmp));
	if (fl == NULL)
		fl = &tmp;
	if (a == NULL) {
		s->error = "Flags expected";
		return -1;
	}
	if (a->type == IMAP_ARG_LIST) {
		if (chain && imap_arg_next(a) != NULL) {
			s->error = "One flag list, or flags without one";
			return -1;
		}
		chain = false;
		f = imap_arg_child(a);
	} else if (!chain) {
		s->error = "Flag list expected";
		return -1;
	} else {
		f = a;
	}
	for (; f != NULL; f = imap_arg_next(f))
		if (parse_one(s, f, fl, &bytes) == -1)
			return -1;
	if (fl == &tmp || fl->nkeywords == 0)
		return 0;
	if (copy_keywords(a, chain, fl, bytes) == -1) {
		s->error = "Out of memory";
		return -1;
	}
	return 0;
}

/* The keywords as one allocation: a NULL-terminated array of pointers,
 * then the strings (the parser's storage goes away, jobs keep these). */
static int
copy_keywords(const struct imap_arg *a, bool chain, struct imap_flag_list *fl,
    size_t bytes)
{
	const struct imap_arg *f = chain ? a : imap_arg_child(a);
	size_t head = (fl->nkeywords + 1) * sizeof(char *), k = 0;
	char *p;

	if ((fl->keywords = malloc(head + bytes)) == NULL)
		return -1;
	p = (char *)fl->keywords + head;
	for (; f != NULL; f = imap_arg_next(f)) {
		if (f->ptr[0] == '\\')
			continue;
		memcpy(p, f->ptr, f->len);
		p[f->len] = '\0';
		fl->keywords[k++] = p;
		p += f->len + 1;
	}
	fl->keywords[k] = NULL;
	return 0;
}

void
imap_flags_free(struct imap_flag_list *fl)
{
	free(fl->keywords);
	memset(fl, 0, sizeof(*fl));
}

/* ---- writing ------------------------------------------------------- */

static void
write_keywords(struct buf *b, const struct maildir *box, uint32_t letters,
    const char *sep)
{
	for (unsigned i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		const char *name;

		if (!(letters & (1u << i)) ||
		    (name = maildir_keyword_name(box, i)) == NULL)
			continue;
		buf_printf(b, "%s%s", sep, name);
		sep = " ";
	}
}

void
imap_write_flags(struct buf *b, const struct maildir *box,
    const struct maildir_msg *m)
{
	const char *sep = "";

	buf_printf(b, "FLAGS (");
	for (size_t i = 0; i < NSYSTEM; i++)
		if (m->flags & system_flags[i].bit) {
			buf_printf(b, "%s%s", sep, system_flags[i].name);
			sep = " ";
		}
	write_keywords(b, box, maildir_keywords_canon(box, m->keywords), sep);
	buf_printf(b, ")");
}

void
imap_write_flag_lists(struct buf *b, const struct maildir *box)
{
	uint32_t named = maildir_keywords_canon(box,
	    maildir_keywords_named(box));

	buf_printf(b, "* FLAGS (" SETTABLE);
	write_keywords(b, box, named, " ");
	buf_printf(b, ")\r\n");
	if (maildir_readonly(box)) {
		buf_printf(b, "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
		return;
	}
	buf_printf(b, "* OK [PERMANENTFLAGS (" SETTABLE);
	write_keywords(b, box, named, " ");
	/* \* only while a letter is free for a new keyword */
	buf_printf(b, "%s)] Flags permitted\r\n",
	    maildir_keywords_room(box) ? " \\*" : "");
}
