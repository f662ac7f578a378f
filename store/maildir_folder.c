/*
 * maildir_folder.c - user and folder names, folder create/delete/rename/
 * status, first-login setup (LIST and subscriptions: maildir_list.c).
 *
 * Folder names arrive as UTF-8 with '/' as the hierarchy separator (the IMAP
 * layer decodes modified UTF-7). On disk a folder is the Maildir++ entry
 * ".a.b" for "a/b"; a literal '.' or '%' in a component is written %2E /
 * %25 so the mapping is reversible. A directory entry that does not map
 * back to itself (".inbox", "..x", bad escapes) is not a folder we show.
 * Folders appear atomically: they are built under a temporary name with
 * tmp/ new/ cur/ and their UID list, then renamed into place; deletes
 * rename away first, then remove. This file must never touch another
 * user's Maildir: every path is built from the Maildir it was given.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir_private.h"

/* Names */
static bool utf8_ok(const unsigned char *s);
static bool user_part_ok(const char *s, size_t len);
static bool is_inbox(const char *s, size_t len);

/* Folders */
static int create_entry(const char *maildir, const char *entry,
    bool must_be_new);
static int create_parents(const char *maildir, const char *entry);
static int rm_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw);
static int remove_tree(const char *path);
static int child_entries(const char *maildir, const char *entry,
    char ***children_r, size_t *count_r);
static int rename_inbox(const char *maildir, const char *to,
    const char **error_r);
static int fail_with(int err, const char *msg, const char **error_r);
static void clean_stale(const char *maildir);

/* ---- names ---- */

/* Strict enough to keep garbage off the disk; the IMAP layer has already
 * decoded modified UTF-7, so anything else is a bug or an attack. */
static bool
utf8_ok(const unsigned char *s)
{
	int n;

	while (*s != '\0') {
		if (*s < 0x80) {
			if (*s < ' ' || *s == 0x7f)
				return false;
			s++;
			continue;
		}
		if ((*s & 0xe0) == 0xc0 && *s >= 0xc2)
			n = 1;
		else if ((*s & 0xf0) == 0xe0)
			n = 2;
		else if ((*s & 0xf8) == 0xf0 && *s <= 0xf4)
			n = 3;
		else
			return false;
		for (s++; n > 0; n--, s++)
			if ((*s & 0xc0) != 0x80)
				return false;
	}
	return true;
}

static bool
is_inbox(const char *s, size_t len)
{
	return len == 5 && strncasecmp(s, "INBOX", 5) == 0;
}

int
md_name_to_entry(const char *name, char *entry, size_t size, char *norm,
    const char **error_r)
{
	const char *comp, *slash;
	size_t len, o = 0, no = 0, i, esc;
	bool inbox;

	if (*name == '\0' || !utf8_ok((const unsigned char *)name) ||
	    strlen(name) >= PATH_MAX)
		goto bad;
	for (comp = name; comp != NULL; comp = slash ? slash + 1 : NULL) {
		slash = strchr(comp, '/');
		len = slash ? (size_t)(slash - comp) : strlen(comp);
		/* "." and ".." would be stored as literal names (%2E), but
		 * every client and tool reads them as path steps. */
		if (len == 0 ||
		    (comp[0] == '.' &&
			(len == 1 || (len == 2 && comp[1] == '.'))))
			goto bad;
		/* INBOX is case-insensitive, and only as the first part. */
		inbox = comp == name && is_inbox(comp, len);
		if (norm != NULL) {
			memcpy(norm + no, inbox ? "INBOX" : comp, len);
			if (slash != NULL)
				norm[no + len] = '/';
		}
		no += len + (slash != NULL);
		if (inbox && slash == NULL)
			break; /* INBOX itself is the Maildir: entry "" */
		for (esc = len, i = 0; i < len; i++)
			esc += (comp[i] == '.' || comp[i] == '%') * 2;
		/* One directory entry holds the whole hierarchy. */
		if (o + 1 + esc >= size || o + 1 + esc > 255)
			goto toolong;
		entry[o++] = '.';
		for (i = 0; i < len; i++) {
			if (inbox)
				entry[o++] = "INBOX"[i];
			else if (comp[i] == '.' || comp[i] == '%')
				o += (size_t)sprintf(entry + o, "%%%02X",
				    (unsigned char)comp[i]);
			else
				entry[o++] = comp[i];
		}
	}
	entry[o] = '\0';
	if (norm != NULL)
		norm[no] = '\0';
	return 0;
toolong:
	*error_r = "folder name too long";
	errno = ENAMETOOLONG;
	return -1;
bad:
	*error_r = "invalid folder name";
	errno = EINVAL;
	return -1;
}

int
md_entry_to_name(const char *entry, char *name, size_t size)
{
	char check[PATH_MAX];
	const char *p, *err;
	size_t o = 0;
	unsigned int c;

	if (entry[0] != '.' || entry[1] == '\0' || entry[1] == '.')
		return -1;
	for (p = entry + 1; *p != '\0'; p++) {
		if (o + 2 > size)
			return -1;
		if (*p == '.') {
			name[o++] = '/';
		} else if (*p == '%') {
			if (!isxdigit((unsigned char)p[1]) ||
			    !isxdigit((unsigned char)p[2]) ||
			    sscanf(p + 1, "%2x", &c) != 1)
				return -1;
			name[o++] = (char)c;
			p += 2;
		} else {
			name[o++] = *p;
		}
	}
	name[o] = '\0';
	/* Only names that map back to this very entry are ours. */
	if (md_name_to_entry(name, check, sizeof(check), NULL, &err) == -1 ||
	    strcmp(check, entry) != 0)
		return -1;
	return 0;
}

int
md_folder_resolve(const char *maildir, const char *name, char *dir, char *norm,
    bool create_inbox, const char **error_r)
{
	char entry[PATH_MAX], cur[PATH_MAX];

	if (md_name_to_entry(name, entry, sizeof(entry), norm, error_r) == -1)
		return -1;
	if (md_path(dir, PATH_MAX, "%s%s%s", maildir, *entry ? "/" : "",
		entry) == -1 ||
	    md_path(cur, sizeof(cur), "%s/cur", dir) == -1) {
		*error_r = "path too long";
		return -1;
	}
	if (md_is_dir(cur))
		return 0;
	if (*entry == '\0' && create_inbox) {
		if (md_make_maildir(dir, false) == 0)
			return 0;
		*error_r = "cannot create INBOX";
		return -1;
	}
	errno = ENOENT;
	*error_r = "no such folder";
	return -1;
}

static bool
user_part_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 255 || s[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f || s[i] == '/')
			return false;
		if (s[i] == '.' && i + 1 < len && s[i + 1] == '.')
			return false;
	}
	return true;
}

int
maildir_user_check(const char *user, const char **error_r)
{
	const char *at = strchr(user, '@');
	size_t len = strlen(user);

	if (at == NULL) {
		*error_r = "no @domain (mail is kept under "
			   "<mail_root>/<domain>/<localpart>: write "
			   "localpart@domain)";
	} else if (strchr(at + 1, '@') != NULL) {
		*error_r = "more than one '@'";
	} else if (len >= 512 || !user_part_ok(user, (size_t)(at - user)) ||
	    !user_part_ok(at + 1, strlen(at + 1))) {
		*error_r = "an empty or too long part, '/', '..', a leading "
			   "'.' or a control character";
	} else {
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int
maildir_user_dir(const char *root, const char *user, char **dir_r,
    const char **error_r)
{
	char lower[512], path[PATH_MAX], *at;
	size_t i, len = strlen(user);

	if (maildir_user_check(user, error_r) == -1)
		goto bad;
	for (i = 0; i <= len; i++)
		lower[i] = (char)tolower((unsigned char)user[i]);
	at = strchr(lower, '@');
	*at = '\0';
	if (md_path(path, sizeof(path), "%s/%s/%s/Maildir", root, at + 1,
		lower) == -1)
		goto bad;
	if ((*dir_r = strdup(path)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
bad:
	errno = EINVAL;
	*error_r = "invalid user name";
	return -1;
}

int
maildir_folder_dir(const char *maildir, const char *name, char **dir_r,
    const char **error_r)
{
	char entry[PATH_MAX], path[PATH_MAX];

	if (md_name_to_entry(name, entry, sizeof(entry), NULL, error_r) == -1)
		return -1;
	if (md_path(path, sizeof(path), "%s%s%s", maildir, *entry ? "/" : "",
		entry) == -1) {
		*error_r = "path too long";
		return -1;
	}
	if ((*dir_r = strdup(path)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

bool
maildir_is_folder(const struct maildir *box, const char *name)
{
	char entry[PATH_MAX], path[PATH_MAX];
	const char *err;

	if (md_name_to_entry(name, entry, sizeof(entry), NULL, &err) == -1 ||
	    md_path(path, sizeof(path), "%s%s%s", box->maildir,
		*entry ? "/" : "", entry) == -1)
		return false;
	return strcmp(path, box->dir) == 0;
}

/* ---- folders ---- */

static int
fail_with(int err, const char *msg, const char **error_r)
{
	errno = err;
	*error_r = msg;
	return -1;
}

/* Build the folder under a temporary name, then rename it into place, so
 * no reader ever sees a folder without cur/ or without its UIDVALIDITY. */
static int
create_entry(const char *maildir, const char *entry, bool must_be_new)
{
	char tmp[PATH_MAX], path[PATH_MAX], uniq[PATH_MAX];
	struct uidlist list = { .exists = true,
		.nextuid = 1,
		.first_recent = 1 };
	int saved;

	if (md_path(path, sizeof(path), "%s/%s", maildir, entry) == -1)
		return -1;
	if (md_is_dir(path)) {
		if (!must_be_new)
			return 0;
		errno = EEXIST;
		return -1;
	}
	if (md_unique(uniq, sizeof(uniq), time(NULL)) == -1 ||
	    md_path(tmp, sizeof(tmp), "%s/" MD_CREATING_PREFIX "%s", maildir,
		uniq) == -1)
		return -1;
	if (md_make_maildir(tmp, true) == -1 ||
	    md_new_uidvalidity(maildir, &list.uidvalidity) == -1 ||
	    uidlist_write(tmp, &list) == -1)
		goto fail;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == -1) {
		/* Filesystems without NOREPLACE: rename() still refuses a
		 * non-empty target, and a real folder is never empty. */
		if (errno != EINVAL || rename(tmp, path) == -1) {
			if (errno == ENOTEMPTY)
				errno = EEXIST;
			if (errno == EEXIST && !must_be_new) {
				remove_tree(tmp);
				return 0;
			}
			goto fail;
		}
	}
	return md_fsync_dir(maildir);
fail:
	saved = errno;
	remove_tree(tmp);
	errno = saved;
	return -1;
}

/* Every proper prefix of ".a.b.c" (".a", ".a.b") as a folder. */
static int
create_parents(const char *maildir, const char *entry)
{
	char prefix[PATH_MAX];
	const char *p;

	for (p = strchr(entry + 1, '.'); p != NULL; p = strchr(p + 1, '.')) {
		if ((size_t)(p - entry) >= sizeof(prefix))
			return -1;
		memcpy(prefix, entry, (size_t)(p - entry));
		prefix[p - entry] = '\0';
		/* INBOX/x: the parent is the Maildir itself, not ".INBOX" */
		if (strcmp(prefix, ".INBOX") == 0)
			continue;
		if (create_entry(maildir, prefix, false) == -1)
			return -1;
	}
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (remove(path) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

static int
remove_tree(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Entries under the Maildir named entry + "." + anything: the children. */
static int
child_entries(const char *maildir, const char *entry, char ***children_r,
    size_t *count_r)
{
	size_t len = strlen(entry), n = 0, cap = 0;
	char **v = NULL, **nv;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(maildir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, entry, len) != 0 ||
		    de->d_name[len] != '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		if ((v[n] = strdup(de->d_name)) == NULL)
			goto fail;
		n++;
	}
	closedir(d);
	*children_r = v;
	*count_r = n;
	return 0;
fail:
	closedir(d);
	maildir_strings_free(v, n);
	errno = ENOMEM;
	return -1;
}

/* Leftovers of a create or delete that crashed half-way are invisible (not
 * ".Name") but take space; an hour is far longer than either takes. */
static void
clean_stale(const char *maildir)
{
	time_t limit = time(NULL) - 3600;
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if ((d = opendir(maildir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, MD_CREATING_PREFIX,
			strlen(MD_CREATING_PREFIX)) != 0 &&
		    strncmp(de->d_name, MD_DELETING_PREFIX,
			strlen(MD_DELETING_PREFIX)) != 0)
			continue;
		if (md_path(path, sizeof(path), "%s/%s", maildir, de->d_name) ==
			-1 ||
		    lstat(path, &st) == -1 || !S_ISDIR(st.st_mode) ||
		    st.st_mtime >= limit)
			continue;
		remove_tree(path);
	}
	closedir(d);
}

int
maildir_user_init(const char *maildir, const char **error_r)
{
	static const char *const defaults[] = { "INBOX", "Drafts", "Sent",
		"Trash", "Junk" };
	char marker[PATH_MAX];
	size_t i;
	int fd;

	if (md_make_maildir(maildir, false) == -1)
		return fail_with(errno, "cannot create the Maildir", error_r);
	if (md_path(marker, sizeof(marker), "%s/" MD_INITIALIZED, maildir) ==
	    -1)
		return fail_with(errno, "path too long", error_r);
	clean_stale(maildir);
	if (access(marker, F_OK) == 0)
		return 0;
	for (i = 1; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (maildir_create(maildir, defaults[i], error_r) == -1 &&
		    errno != EEXIST)
			return -1;
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (maildir_subscribe(maildir, defaults[i], true, error_r) ==
		    -1)
			return -1;
	/* Last, so a crash part-way repeats the (idempotent) setup. */
	fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1)
		return fail_with(errno, "cannot write the init marker",
		    error_r);
	close(fd);
	return 0;
}

int
maildir_create(const char *maildir, const char *name, const char **error_r)
{
	char entry[PATH_MAX];

	if (md_name_to_entry(name, entry, sizeof(entry), NULL, error_r) == -1)
		return -1;
	if (*entry == '\0')
		return fail_with(EEXIST, "INBOX always exists", error_r);
	if (md_make_maildir(maildir, false) == -1 ||
	    create_parents(maildir, entry) == -1)
		return fail_with(errno, "cannot create parent folder", error_r);
	if (create_entry(maildir, entry, true) == -1)
		return fail_with(errno,
		    errno == EEXIST ? "folder already exists" :
				      "cannot create folder",
		    error_r);
	return 0;
}

int
maildir_delete(const char *maildir, const char *name, const char **error_r)
{
	char entry[PATH_MAX], path[PATH_MAX], gone[PATH_MAX], uniq[PATH_MAX];
	char **children;
	size_t n;

	if (md_name_to_entry(name, entry, sizeof(entry), NULL, error_r) == -1)
		return -1;
	if (*entry == '\0')
		return fail_with(EPERM, "INBOX cannot be deleted", error_r);
	if (md_path(path, sizeof(path), "%s/%s", maildir, entry) == -1 ||
	    md_unique(uniq, sizeof(uniq), time(NULL)) == -1 ||
	    md_path(gone, sizeof(gone), "%s/" MD_DELETING_PREFIX "%s", maildir,
		uniq) == -1)
		return fail_with(ENAMETOOLONG, "path too long", error_r);
	if (!md_is_dir(path))
		return fail_with(ENOENT, "no such folder", error_r);
	if (child_entries(maildir, entry, &children, &n) == -1)
		return fail_with(errno, "cannot read the Maildir", error_r);
	maildir_strings_free(children, n);
	if (n > 0)
		return fail_with(ENOTEMPTY, "folder has children", error_r);
	/* Gone from every listing in one step; the removal can take its
	 * time (and a crash leaves only an invisible directory). */
	if (rename(path, gone) == -1)
		return fail_with(errno,
		    errno == ENOENT ? "no such folder" : "cannot delete folder",
		    error_r);
	if (md_fsync_dir(maildir) == -1 || remove_tree(gone) == -1)
		return fail_with(errno, "cannot remove folder files", error_r);
	return 0;
}

/* RFC 3501: renaming INBOX moves its messages to a new folder. */
static int
rename_inbox(const char *maildir, const char *to, const char **error_r)
{
	const struct maildir_msg *msgs;
	struct maildir *box = NULL;
	uint32_t *uids = NULL, *dest = NULL, uidvalidity;
	size_t count, i;
	int ret = -1;

	if (maildir_create(maildir, to, error_r) == -1)
		return -1;
	if (maildir_open(maildir, "INBOX", 0, &box, error_r) == -1)
		return -1;
	msgs = maildir_msgs(box, &count);
	uids = calloc(count + 1, sizeof(*uids));
	dest = calloc(count + 1, sizeof(*dest));
	if (uids == NULL || dest == NULL) {
		*error_r = "out of memory";
		goto out;
	}
	for (i = 0; i < count; i++)
		uids[i] = msgs[i].uid;
	if (maildir_copy(box, uids, count, to, true, &uidvalidity, dest,
		error_r) == -1 ||
	    maildir_sync(box, NULL, error_r) == -1)
		goto out;
	ret = 0;
out:
	free(uids);
	free(dest);
	maildir_close(&box);
	return ret;
}

int
maildir_rename(const char *maildir, const char *from, const char *to,
    const char **error_r)
{
	char fe[PATH_MAX], te[PATH_MAX], fn[PATH_MAX], tn[PATH_MAX];
	char src[PATH_MAX], dst[PATH_MAX];
	size_t flen = 0, n = 0, i;
	char **children = NULL;
	int ret = -1;

	if (md_name_to_entry(from, fe, sizeof(fe), fn, error_r) == -1 ||
	    md_name_to_entry(to, te, sizeof(te), tn, error_r) == -1)
		return -1;
	if (*te == '\0')
		return fail_with(EEXIST, "INBOX already exists", error_r);
	if (*fe == '\0')
		return rename_inbox(maildir, tn, error_r);
	flen = strlen(fe);
	if (strcmp(fe, te) == 0)
		return fail_with(EEXIST, "folder already exists", error_r);
	if (strncmp(te, fe, flen) == 0 && te[flen] == '.')
		return fail_with(EINVAL, "cannot move a folder into itself",
		    error_r);
	if (md_path(src, sizeof(src), "%s/%s", maildir, fe) == -1 ||
	    md_path(dst, sizeof(dst), "%s/%s", maildir, te) == -1)
		return fail_with(ENAMETOOLONG, "path too long", error_r);
	if (!md_is_dir(src))
		return fail_with(ENOENT, "no such folder", error_r);
	if (md_is_dir(dst))
		return fail_with(EEXIST, "folder already exists", error_r);
	if (child_entries(maildir, fe, &children, &n) == -1)
		return fail_with(errno, "cannot read the Maildir", error_r);
	/* Refuse before moving anything if a child's new name is taken. */
	for (i = 0; i < n; i++) {
		if (md_path(dst, sizeof(dst), "%s/%s%s", maildir, te,
			children[i] + flen) == -1 ||
		    strlen(te) + strlen(children[i] + flen) >= 256) {
			fail_with(ENAMETOOLONG, "folder name too long",
			    error_r);
			goto out;
		}
		if (md_is_dir(dst)) {
			fail_with(EEXIST, "a child folder already exists",
			    error_r);
			goto out;
		}
	}
	if (create_parents(maildir, te) == -1) {
		fail_with(errno, "cannot create parent folder", error_r);
		goto out;
	}
	if (md_path(dst, sizeof(dst), "%s/%s", maildir, te) == -1 ||
	    renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == -1) {
		fail_with(errno, "cannot rename folder", error_r);
		goto out;
	}
	/* Children follow one by one; a crash in between leaves both
	 * names valid folders, never a lost one. */
	for (i = 0; i < n; i++) {
		if (md_path(src, sizeof(src), "%s/%s", maildir, children[i]) ==
			-1 ||
		    md_path(dst, sizeof(dst), "%s/%s%s", maildir, te,
			children[i] + flen) == -1 ||
		    renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) ==
			-1) {
			fail_with(errno, "cannot rename child folder", error_r);
			goto out;
		}
	}
	if (md_fsync_dir(maildir) == -1 ||
	    md_rename_subscriptions(maildir, fn, tn) == -1) {
		fail_with(errno, "cannot update subscriptions", error_r);
		goto out;
	}
	ret = 0;
out:
	maildir_strings_free(children, n);
	return ret;
}

int
maildir_status(const char *maildir, const char *name, struct maildir_status *st,
    const char **error_r)
{
	const struct maildir_msg *msgs;
	struct maildir *box;
	size_t count, i;

	if (maildir_open(maildir, name, MAILDIR_OPEN_READONLY, &box, error_r) ==
	    -1)
		return -1;
	msgs = maildir_msgs(box, &count);
	memset(st, 0, sizeof(*st));
	st->messages = (uint32_t)count;
	for (i = 0; i < count; i++) {
		/* a read-only view shows what nobody has claimed */
		st->recent += (msgs[i].flags & MAILDIR_FLAG_RECENT) != 0;
		st->unseen += (msgs[i].flags & MAILDIR_FLAG_SEEN) == 0;
	}
	st->uidnext = maildir_uidnext(box);
	st->uidvalidity = maildir_uidvalidity(box);
	maildir_close(&box);
	return 0;
}
