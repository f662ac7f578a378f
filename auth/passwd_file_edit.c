/*
 * passwd_file_edit.c - change one user's line of a passwd-file so that a
 * reader (ringgate reloading on SIGHUP or on change, another editor, a
 * crash halfway) only ever sees the whole old file or the whole new one.
 *
 * Relies on rename(2) within one directory being atomic, on flock(2) of a
 * side file "<path>.lock" to serialise editors (the passwd-file itself is
 * replaced on every edit, so a lock on its inode would protect nothing for
 * the next editor), and on auth_passdb_new() to prove the new file loads
 * before it is put in place. The line format follows auth/passdb.c: the
 * user is the first field after leading blanks, '#' starts a comment, and
 * an RFC 5803 SCRAM password spans two ':' of its own.
 *
 * The editor's own write loop, passwd_write_all(), is also the one the
 * command line front end uses for stdout and the terminal.
 *
 * Must never: touch a byte of any other line, leave a partial file under
 * the real name, install a file the server would refuse, widen the file's
 * permissions or silently give it a new owner, or replace a symbolic link
 * by a regular file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_private.h"
#include "auth/passwd_private.h"

#define SCRAM_RFC5803_TAG "{SCRAM-SHA-256}SCRAM-SHA-256$"
#define FILE_MAX (1024UL * 1024 * 1024)
#define LOCK_POLL_NS (10 * 1000 * 1000)

/* One edit in progress: what it works on and what it must clean up. */
struct edit {
	const struct passwd_edit *e;
	char path[PATH_MAX];	  /* the real file, links resolved */
	char lock_path[PATH_MAX]; /* "<path>.lock" */
	char tmp_path[PATH_MAX];  /* "<path>.tmp.XXXXXX" while it exists */
	int lock_fd, tmp_fd;
	bool exists;	 /* the file is there (else add creates it) */
	struct stat st;	 /* of the old file, when it exists */
	char *old, *new; /* contents */
	size_t old_len, new_len;
	char *err;
	size_t errlen;
};

/* Where the user's line lies in the old text (byte offsets). */
struct line_pos {
	size_t start, end;	 /* the line, without "\r\n" or "\n" */
	size_t next;		 /* where the following line starts */
	size_t pw_start, pw_end; /* the password field */
	bool has_pw_colon;	 /* a ':' follows the name */
};

/* steps */
static int resolve_path(struct edit *ed);
static int take_lock(struct edit *ed);
static int read_old(struct edit *ed);
static int build_new(struct edit *ed, enum passwd_edit_why *why_r);
static int write_tmp(struct edit *ed);
static int check_loads(struct edit *ed);
static int install(struct edit *ed);
static void edit_cleanup(struct edit *ed);

/* lines */
static int find_user(const char *text, size_t len, const char *user,
    struct line_pos *pos);
static bool line_user(const char *text, size_t s, size_t end, const char *user,
    struct line_pos *pos);
static size_t password_end(const char *text, size_t f, size_t end);
static int build_add(struct edit *ed);
static int build_set(struct edit *ed, const struct line_pos *pos);
static void build_del(struct edit *ed, const struct line_pos *pos);

/* small tools */
static int read_all(const char *path, char **text_r, size_t *len_r,
    struct stat *st, char *err, size_t errlen);
static int fsync_dir(const char *path);
static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int
passwd_file_has_user(const char *path, const char *user, char *err,
    size_t errlen)
{
	struct line_pos pos;
	struct stat st;
	char *text;
	size_t len;
	int r;

	if (access(path, F_OK) == -1 && errno == ENOENT)
		return 0;
	if (read_all(path, &text, &len, &st, err, errlen) == -1)
		return -1;
	r = find_user(text, len, user, &pos);
	free(text);
	return r;
}

int
passwd_file_edit(const struct passwd_edit *e, enum passwd_edit_why *why_r,
    char *err, size_t errlen)
{
	struct edit ed = { .e = e,
		.lock_fd = -1,
		.tmp_fd = -1,
		.err = err,
		.errlen = errlen };
	int ret = -1;

	*why_r = PASSWD_EDIT_FAILED;
	if (resolve_path(&ed) == -1 || take_lock(&ed) == -1 ||
	    read_old(&ed) == -1 || build_new(&ed, why_r) == -1 ||
	    write_tmp(&ed) == -1 || check_loads(&ed) == -1 ||
	    install(&ed) == -1)
		goto fail;
	*why_r = PASSWD_EDIT_OK;
	ret = 0;
fail:
	edit_cleanup(&ed);
	return ret;
}

int
passwd_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = write(fd, p, n);

		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ---- steps ------------------------------------------------------------ */

/* Follow a link so the rename replaces its target, not the link. A file
 * that is not there yet keeps the name it was given (add creates it). */
static int
resolve_path(struct edit *ed)
{
	const char *path = ed->e->path;
	int n;

	if (realpath(path, ed->path) == NULL) {
		if (errno != ENOENT)
			return errf(ed->err, ed->errlen, "%s: %s", path,
			    strerror(errno));
		if (strlen(path) >= sizeof(ed->path))
			return errf(ed->err, ed->errlen, "%s: name too long",
			    path);
		strcpy(ed->path, path);
	}
	n = snprintf(ed->lock_path, sizeof(ed->lock_path), "%s.lock", ed->path);
	if (n < 0 || (size_t)n >= sizeof(ed->lock_path) ||
	    strlen(ed->path) + 12 >= sizeof(ed->tmp_path))
		return errf(ed->err, ed->errlen, "%s: name too long", path);
	return 0;
}

/* Poll rather than block, so a stuck editor costs the next one a clear
 * message instead of a hang. The lock file stays behind on purpose:
 * unlinking it would let a third editor lock a fresh inode while a second
 * still waits on the old one. */
static int
take_lock(struct edit *ed)
{
	struct timespec nap = { 0, LOCK_POLL_NS };
	unsigned waited_ms = 0;

	ed->lock_fd = open(ed->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ed->lock_fd == -1)
		return errf(ed->err, ed->errlen, "%s: %s", ed->lock_path,
		    strerror(errno));
	while (flock(ed->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return errf(ed->err, ed->errlen, "%s: flock: %s",
			    ed->lock_path, strerror(errno));
		if (waited_ms >= ed->e->lock_wait_ms)
			return errf(ed->err, ed->errlen,
			    "%s: locked by another editor for %u ms",
			    ed->lock_path, waited_ms);
		nanosleep(&nap, NULL);
		waited_ms += LOCK_POLL_NS / 1000000;
	}
	return 0;
}

static int
read_old(struct edit *ed)
{
	if (access(ed->path, F_OK) == -1 && errno == ENOENT) {
		if (ed->e->op != PASSWD_EDIT_ADD)
			return errf(ed->err, ed->errlen, "%s: no such file",
			    ed->path);
		ed->old = strdup("");
		if (ed->old == NULL)
			return errf(ed->err, ed->errlen, "out of memory");
		return 0;
	}
	if (read_all(ed->path, &ed->old, &ed->old_len, &ed->st, ed->err,
		ed->errlen) == -1)
		return -1;
	if (!S_ISREG(ed->st.st_mode))
		return errf(ed->err, ed->errlen, "%s: not a regular file",
		    ed->path);
	ed->exists = true;
	return 0;
}

static int
build_new(struct edit *ed, enum passwd_edit_why *why_r)
{
	struct line_pos pos;
	int found = find_user(ed->old, ed->old_len, ed->e->user, &pos);

	if (ed->e->op == PASSWD_EDIT_ADD) {
		if (found) {
			*why_r = PASSWD_EDIT_EXISTS;
			return errf(ed->err, ed->errlen, "%s: user %s exists",
			    ed->path, ed->e->user);
		}
		return build_add(ed);
	}
	if (!found) {
		*why_r = PASSWD_EDIT_MISSING;
		return errf(ed->err, ed->errlen, "%s: no user %s", ed->path,
		    ed->e->user);
	}
	if (ed->e->op == PASSWD_EDIT_SET)
		return build_set(ed, &pos);
	build_del(ed, &pos);
	return 0;
}

/* mkstemp() makes the file 0600, so nobody can read it before its mode is
 * set; the owner is set before the mode because chown may clear bits. */
static int
write_tmp(struct edit *ed)
{
	mode_t mode = ed->exists ? (ed->st.st_mode & 07777) : 0600;

	snprintf(ed->tmp_path, sizeof(ed->tmp_path), "%s.tmp.XXXXXX", ed->path);
	ed->tmp_fd = mkostemp(ed->tmp_path, O_CLOEXEC);
	if (ed->tmp_fd == -1) {
		int saved = errno;

		ed->tmp_path[0] = '\0';
		return errf(ed->err, ed->errlen, "%s: cannot create: %s",
		    ed->path, strerror(saved));
	}
	if (ed->exists &&
	    (ed->st.st_uid != geteuid() || ed->st.st_gid != getegid()) &&
	    fchown(ed->tmp_fd, ed->st.st_uid, ed->st.st_gid) == -1)
		return errf(ed->err, ed->errlen,
		    "%s: cannot keep owner %u:%u: %s", ed->path,
		    (unsigned)ed->st.st_uid, (unsigned)ed->st.st_gid,
		    strerror(errno));
	if (fchmod(ed->tmp_fd, mode) == -1 ||
	    passwd_write_all(ed->tmp_fd, ed->new, ed->new_len) == -1 ||
	    fsync(ed->tmp_fd) == -1)
		return errf(ed->err, ed->errlen, "%s: %s", ed->tmp_path,
		    strerror(errno));
	return 0;
}

/* Load the new file the way the server will, and make sure the edit did
 * what it meant to; errors are reported against the real file's name. */
static int
check_loads(struct edit *ed)
{
	struct auth_passdb_conf conf = { .path = ed->tmp_path,
		.allow_plaintext = true };
	struct auth_passdb *db;
	struct auth_entry *entry = NULL;
	const char *error, *rest;
	enum auth_lookup r;
	bool ok;

	if ((db = auth_passdb_new(&conf, &error)) == NULL) {
		size_t n = strlen(ed->tmp_path);

		rest = strncmp(error, ed->tmp_path, n) == 0 ? error + n : error;
		return errf(ed->err, ed->errlen,
		    "%s%s (the file is left unchanged)", ed->path, rest);
	}
	r = auth_lookup(auth_passdb_backend(db), ed->e->user, &entry, &error);
	if (ed->e->op == PASSWD_EDIT_DEL)
		ok = r == AUTH_LOOKUP_NOTFOUND;
	else
		ok = r == AUTH_LOOKUP_FOUND && entry->password != NULL &&
		    strcmp(entry->password, ed->e->hash) == 0;
	auth_entry_unref(&entry);
	auth_passdb_free(&db);
	if (!ok)
		return errf(ed->err, ed->errlen,
		    "%s: the edited file does not read back as meant "
		    "(the file is left unchanged)",
		    ed->path);
	return 0;
}

static int
install(struct edit *ed)
{
	if (close(ed->tmp_fd) == -1) {
		ed->tmp_fd = -1;
		return errf(ed->err, ed->errlen, "%s: %s", ed->tmp_path,
		    strerror(errno));
	}
	ed->tmp_fd = -1;
	if (rename(ed->tmp_path, ed->path) == -1)
		return errf(ed->err, ed->errlen, "rename %s: %s", ed->tmp_path,
		    strerror(errno));
	ed->tmp_path[0] = '\0';
	/* The rename is done; a failed directory fsync only means it might
	 * not survive a power cut, which is worth saying but not undoing. */
	if (fsync_dir(ed->path) == -1)
		fprintf(stderr,
		    "ringgate-passwd: warning: fsync of the "
		    "directory of %s: %s\n",
		    ed->path, strerror(errno));
	return 0;
}

static void
edit_cleanup(struct edit *ed)
{
	if (ed->tmp_fd != -1)
		close(ed->tmp_fd);
	if (ed->tmp_path[0] != '\0')
		unlink(ed->tmp_path);
	if (ed->lock_fd != -1)
		close(ed->lock_fd); /* releases the flock */
	free(ed->old);
	free(ed->new);
}

/* ---- lines ------------------------------------------------------------ */

/* 1 and *pos if user has a line in text, else 0. The first line wins; a
 * file with the user twice does not load, which check_loads() reports. */
static int
find_user(const char *text, size_t len, const char *user, struct line_pos *pos)
{
	size_t p = 0;

	while (p < len) {
		const char *nl = memchr(text + p, '\n', len - p);
		size_t end = nl ? (size_t)(nl - text) : len;

		pos->next = nl ? end + 1 : len;
		pos->start = p;
		if (end > p && text[end - 1] == '\r')
			end--;
		pos->end = end;
		if (line_user(text, p, end, user, pos))
			return 1;
		p = pos->next;
	}
	return 0;
}

/* Is the line text[s, end) the record of user? Fills the password field's
 * position when it is. */
static bool
line_user(const char *text, size_t s, size_t end, const char *user,
    struct line_pos *pos)
{
	char norm[AUTH_USER_MAX + 1];
	const char *colon;
	size_t name_end;

	while (s < end && (text[s] == ' ' || text[s] == '\t'))
		s++;
	if (s == end || text[s] == '#')
		return false;
	colon = memchr(text + s, ':', end - s);
	name_end = colon ? (size_t)(colon - text) : end;
	if (auth_user_normalize(text + s, name_end - s, norm) == -1 ||
	    strcmp(norm, user) != 0)
		return false;
	pos->has_pw_colon = colon != NULL;
	pos->pw_start = colon ? name_end + 1 : end;
	pos->pw_end = password_end(text, pos->pw_start, end);
	return true;
}

/* Where the password field starting at f ends: the next ':', or the third
 * one for an RFC 5803 SCRAM password, or the end of the line. */
static size_t
password_end(const char *text, size_t f, size_t end)
{
	size_t tag = strlen(SCRAM_RFC5803_TAG), c = f;
	int colons = 1;

	if (end - f >= tag &&
	    strncasecmp(text + f, SCRAM_RFC5803_TAG, tag) == 0)
		colons = 3;
	for (; c < end; c++)
		if (text[c] == ':' && --colons == 0)
			return c;
	return end;
}

/* The new record goes last; a file without a final newline gets one first
 * so the old last line stays a line of its own. */
static int
build_add(struct edit *ed)
{
	const char *extra = ed->e->extra;
	bool need_nl = ed->old_len > 0 && ed->old[ed->old_len - 1] != '\n';
	size_t cap = ed->old_len + strlen(ed->e->user) + strlen(ed->e->hash) +
	    (extra ? strlen(extra) : 0) + 16;
	int n;

	if ((ed->new = malloc(cap)) == NULL)
		return errf(ed->err, ed->errlen, "out of memory");
	memcpy(ed->new, ed->old, ed->old_len);
	n = snprintf(ed->new + ed->old_len, cap - ed->old_len, "%s%s:%s%s%s\n",
	    need_nl ? "\n" : "", ed->e->user, ed->e->hash,
	    extra ? "::::::" : "", extra ? extra : "");
	ed->new_len = ed->old_len + (size_t)n;
	return 0;
}

/* Only the password field changes; uid, gid, home and extra fields stay
 * as they were, byte for byte. */
static int
build_set(struct edit *ed, const struct line_pos *pos)
{
	size_t hlen = strlen(ed->e->hash);
	size_t cap = ed->old_len + hlen + 2;
	char *p;

	if ((ed->new = p = malloc(cap)) == NULL)
		return errf(ed->err, ed->errlen, "out of memory");
	memcpy(p, ed->old, pos->pw_start);
	p += pos->pw_start;
	if (!pos->has_pw_colon)
		*p++ = ':';
	memcpy(p, ed->e->hash, hlen);
	p += hlen;
	memcpy(p, ed->old + pos->pw_end, ed->old_len - pos->pw_end);
	p += ed->old_len - pos->pw_end;
	ed->new_len = (size_t)(p - ed->new);
	return 0;
}

static void
build_del(struct edit *ed, const struct line_pos *pos)
{
	/* Cannot fail: the result is smaller than the old text. */
	ed->new = ed->old;
	ed->old = NULL;
	memmove(ed->new + pos->start, ed->new + pos->next,
	    ed->old_len - pos->next);
	ed->new_len = ed->old_len - (pos->next - pos->start);
}

/* ---- small tools ------------------------------------------------------ */

static int
read_all(const char *path, char **text_r, size_t *len_r, struct stat *st,
    char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *text = NULL;
	size_t off = 0;

	if (fd == -1)
		return errf(err, errlen, "%s: %s", path, strerror(errno));
	if (fstat(fd, st) == -1 || (size_t)st->st_size > FILE_MAX) {
		close(fd);
		return errf(err, errlen, "%s: cannot stat or too large", path);
	}
	if ((text = malloc((size_t)st->st_size + 1)) == NULL) {
		close(fd);
		return errf(err, errlen, "out of memory");
	}
	while (off < (size_t)st->st_size) {
		ssize_t r = read(fd, text + off, (size_t)st->st_size - off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shrank under us: take what is there */
		off += (size_t)r;
	}
	close(fd);
	text[off] = '\0';
	*text_r = text;
	*len_r = off;
	return 0;
}

static int
fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, r, saved;

	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* Always -1, so a step can fail in one statement. */
static int
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
