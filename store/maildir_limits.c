/*
 * maildir_limits.c - per-user folder limits: how many folders a user may
 * have, how deep a name may go and how long it may be, checked before a
 * CREATE or RENAME (maildir_check_limits()).
 *
 * A user who may create folders without bound can fill a directory with
 * entries every LIST, STATUS-all and login then reads (ten thousand in 25
 * seconds was measured), so the IMAP layer asks here first. The count is
 * one readdir of the Maildir (maildir_list()); depth and length are string
 * work. The check is not atomic with the create that follows: sessions of
 * one user creating at the same moment can each pass with one folder to
 * spare, so the limit can be overshot by the number of such sessions,
 * never without bound. Nothing here writes to the disk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/maildir_private.h"

static unsigned int depth_of(const char *name);
static bool listed(const struct maildir_folder *v, size_t n, const char *name);
static int check_shape(const struct maildir_limits *lim, size_t len,
    unsigned int depth, const char **error_r);
static unsigned int missing_parents(const struct maildir_folder *v, size_t n,
    char *name);
static int fail_limit(int err, const char *text, const char **error_r);

static unsigned int
depth_of(const char *name)
{
	unsigned int d = 1;

	for (; *name != '\0'; name++)
		d += *name == '/';
	return d;
}

/* name is a folder of its own (not only an implied \Noselect parent). */
static bool
listed(const struct maildir_folder *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return (v[i].attrs & MAILDIR_ATTR_NOSELECT) == 0;
	return false;
}

static int
fail_limit(int err, const char *text, const char **error_r)
{
	errno = err;
	*error_r = text;
	return -1;
}

/* A name of len bytes and depth levels within the limits. */
static int
check_shape(const struct maildir_limits *lim, size_t len, unsigned int depth,
    const char **error_r)
{
	if (lim->max_depth != 0 && depth > lim->max_depth)
		return fail_limit(ENAMETOOLONG, "folder name too deep",
		    error_r);
	if (lim->max_name != 0 && len > lim->max_name)
		return fail_limit(ENAMETOOLONG, "folder name too long",
		    error_r);
	return 0;
}

/* Ancestors of name ("a", "a/b" for "a/b/c") that are no folder yet:
 * creating name creates them. name is cut and restored in place. */
static unsigned int
missing_parents(const struct maildir_folder *v, size_t n, char *name)
{
	unsigned int missing = 0;
	char *slash;

	for (slash = strchr(name, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		/* INBOX/x: the parent is the Maildir itself */
		if (strcmp(name, "INBOX") != 0 && !listed(v, n, name))
			missing++;
		*slash = '/';
	}
	return missing;
}

int
maildir_check_limits(const char *maildir, const struct maildir_limits *lim,
    const char *name, const char *from, const char **error_r)
{
	char entry[PATH_MAX], to[PATH_MAX], src[PATH_MAX];
	struct maildir_folder *v = NULL;
	size_t n = 0, i, flen = 0, folders = 0, adding;
	unsigned int fdepth = 0;
	int ret = -1;

	if (lim == NULL ||
	    (lim->max_folders == 0 && lim->max_depth == 0 &&
		lim->max_name == 0))
		return 0;
	/* Bad names are refused later with their own error. */
	if (md_name_to_entry(name, entry, sizeof(entry), to, error_r) == -1)
		return 0;
	if (from != NULL) {
		if (md_name_to_entry(from, entry, sizeof(entry), src,
			error_r) == -1)
			return 0;
		flen = strlen(src);
		fdepth = depth_of(src);
	}
	if (check_shape(lim, strlen(to), depth_of(to), error_r) == -1)
		return -1;
	if (maildir_list(maildir, &v, &n, error_r) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		const char *f = v[i].name;

		if (!(v[i].attrs & MAILDIR_ATTR_NOSELECT) &&
		    strcmp(f, "INBOX") != 0)
			folders++;
		/* RENAME moves the children along: their new names too */
		if (from != NULL && strcmp(src, "INBOX") != 0 &&
		    strncmp(f, src, flen) == 0 && f[flen] == '/' &&
		    check_shape(lim, strlen(to) + strlen(f) - flen,
			depth_of(to) + depth_of(f) - fdepth, error_r) == -1)
			goto out;
	}
	/* CREATE adds the folder and its missing parents; RENAME only the
	 * missing parents of the target, except that renaming INBOX makes
	 * a new folder of its messages. */
	adding = missing_parents(v, n, to);
	if (from == NULL ? !listed(v, n, to) : strcmp(src, "INBOX") == 0)
		adding++;
	if (lim->max_folders != 0 && adding > 0 &&
	    folders + adding > lim->max_folders) {
		fail_limit(EMLINK, "too many folders", error_r);
		goto out;
	}
	ret = 0;
out:
	maildir_list_free(v, n);
	return ret;
}
