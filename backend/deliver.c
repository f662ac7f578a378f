/*
 * deliver.c - the received message's tmp file and its local delivery to
 * N users' INBOX (see deliver.h for the rules: one copy per recipient,
 * Return-Path and Delivered-To prepended, fsync before any 250, quota,
 * full disk).
 *
 * Runs on store-pool threads only (blocking file I/O). Relies on
 * store/maildir.h for the Maildir files (tmp/, new/, the UID list) and on
 * the caller for the user's quota (from the passwd entry).
 *
 * Must never: make a message visible in new/ before it is whole and
 * fsync'd, leave a tmp file behind after a failed write, or read more
 * than one COPY_BYTES buffer of a message into memory.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/deliver.h"
#include "store/maildir.h"

#define COPY_BYTES (128 * 1024)

struct deliver_msg {
	int fd;
	uint64_t size;
};

static const struct smtp_reply REP_DELIVERED = { 250, "2.1.5", "Delivered" };
static const struct smtp_reply REP_QUOTA = { 552, "5.2.2",
	"Mailbox full: over quota" };
static const struct smtp_reply REP_FULL = { 452, "4.3.1",
	"Insufficient system storage" };
static const struct smtp_reply REP_TEMP = { 451, "4.3.0",
	"Local error in delivery" };

static int tmp_file(const char *dir);
static int deliver_one(const struct deliver_env *env, struct deliver_msg *msg,
    struct deliver_rcpt *r, char *copy, const char **error_r);
static int copy_body(struct deliver_msg *msg, struct maildir_incoming *in,
    char *copy, const char **error_r);
static int header_line(char *dst, size_t cap, const char *name,
    const char *addr);
static uint64_t name_size(const char *name, int dirfd);
static int usage_dir(int parent, const char *sub, uint64_t *bytes);

/* ---- the received message ------------------------------------------ */

/* An unlinked file: O_TMPFILE where the file system has it, else a
 * mkstemp() name removed at once. */
static int
tmp_file(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd != -1 ||
	    (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	if (snprintf(path, sizeof(path), "%s/.lmtp.XXXXXX", dir) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
		unlink(path);
	return fd;
}

/* dir, and its parent if missing (the mail root before any user). */
static int
make_dir(const char *dir)
{
	char parent[PATH_MAX];
	char *slash;

	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT ||
	    snprintf(parent, sizeof(parent), "%s", dir) >=
		(int)sizeof(parent) ||
	    (slash = strrchr(parent, '/')) == NULL || slash == parent)
		return -1;
	*slash = '\0';
	if (mkdir(parent, 0700) == -1 && errno != EEXIST)
		return -1;
	return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int
deliver_msg_open(const char *dir, struct deliver_msg **msg_r,
    const char **error_r)
{
	struct deliver_msg *m;

	*msg_r = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (make_dir(dir) == -1) {
		int saved = errno;

		*error_r = strerror(errno);
		free(m);
		errno = saved;
		return -1;
	}
	if ((m->fd = tmp_file(dir)) == -1) {
		int saved = errno;

		*error_r = strerror(errno);
		free(m);
		errno = saved;
		return -1;
	}
	*msg_r = m;
	return 0;
}

int
deliver_msg_write(struct deliver_msg *msg, const void *p, size_t n,
    const char **error_r)
{
	if (maildir_write_all(msg->fd, p, n) == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	msg->size += n;
	return 0;
}

int
deliver_msg_copy(const char *dir, const char *prefix, int src,
    struct deliver_msg **msg_r, const char **error_r)
{
	enum { CHUNK = 64 * 1024 };
	char *chunk = malloc(CHUNK);
	off_t off = 0;
	ssize_t n = 0;

	*msg_r = NULL;
	if (chunk == NULL) {
		*error_r = strerror(errno);
		return -1;
	}
	if (deliver_msg_open(dir, msg_r, error_r) == -1 ||
	    (prefix != NULL &&
		deliver_msg_write(*msg_r, prefix, strlen(prefix), error_r) ==
		    -1))
		goto fail;
	while ((n = pread(src, chunk, CHUNK, off)) > 0) {
		if (deliver_msg_write(*msg_r, chunk, (size_t)n, error_r) == -1)
			goto fail;
		off += n;
	}
	if (n < 0) {
		*error_r = strerror(errno);
		goto fail;
	}
	free(chunk);
	return 0;
fail:
	free(chunk);
	if (*msg_r != NULL) {
		int e = errno;

		deliver_msg_free(msg_r);
		errno = e;
	}
	return -1;
}

uint64_t
deliver_msg_size(const struct deliver_msg *msg)
{
	return msg->size;
}

int
deliver_msg_fd(const struct deliver_msg *msg)
{
	return msg->fd;
}

void
deliver_msg_free(struct deliver_msg **msg)
{
	if (*msg == NULL)
		return;
	close((*msg)->fd);
	free(*msg);
	*msg = NULL;
}

/* ---- recipients ----------------------------------------------------- */

int
deliver_rcpt_user(const char *addr, size_t len, char *user, size_t cap,
    const char **detail_r)
{
	const char *at = NULL, *plus = NULL;
	size_t o = 0;

	if (detail_r != NULL)
		*detail_r = NULL;
	for (size_t i = 0; i < len; i++)
		if (addr[i] == '@')
			at = addr + i;
	if (at == NULL || at == addr || at == addr + len - 1)
		return -1;
	for (const char *p = addr; p < at; p++)
		if (*p == '+') {
			plus = p;
			break;
		}
	if (plus == addr)
		return -1;
	for (const char *p = addr; p < (plus ? plus : at); p++) {
		if (o + 1 >= cap)
			return -1;
		user[o++] = (char)tolower((unsigned char)*p);
	}
	for (const char *p = at; p < addr + len; p++) {
		if (o + 1 >= cap)
			return -1;
		user[o++] = (char)tolower((unsigned char)*p);
	}
	user[o] = '\0';
	if (detail_r != NULL && plus != NULL)
		*detail_r = plus + 1;
	return 0;
}

enum deliver_result
deliver_result_of(const struct deliver_rcpt *r)
{
	if (r->reply.code / 100 == 2)
		return DELIVER_OK;
	if (r->reply.code == 552)
		return DELIVER_QUOTA;
	if (r->reply.code == 452)
		return DELIVER_FULL;
	return DELIVER_TEMPFAIL;
}

const char *
deliver_result_name(enum deliver_result res)
{
	static const char *const names[DELIVER_RESULTS] = {
		[DELIVER_OK] = "delivered",
		[DELIVER_QUOTA] = "quota",
		[DELIVER_FULL] = "disk_full",
		[DELIVER_TEMPFAIL] = "tempfail",
	};

	return res < DELIVER_RESULTS ? names[res] : "?";
}

/* ---- delivery ------------------------------------------------------- */

/* "Name: <addr>\r\n" with CR, LF and other controls in addr dropped (an
 * RFC 5321 path has none; this only keeps the header well-formed).
 * Length, or -1 when it does not fit. */
static int
header_line(char *dst, size_t cap, const char *name, const char *addr)
{
	size_t o;
	int n = snprintf(dst, cap, "%s: <", name);

	if (n < 0 || (size_t)n >= cap)
		return -1;
	o = (size_t)n;
	for (const char *p = addr; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		if (o + 4 >= cap)
			return -1;
		dst[o++] = *p;
	}
	memcpy(dst + o, ">\r\n", 3);
	return (int)(o + 3);
}

/* The message bytes after the headers, COPY_BYTES at a time. */
static int
copy_body(struct deliver_msg *msg, struct maildir_incoming *in, char *copy,
    const char **error_r)
{
	uint64_t off = 0;

	while (off < msg->size) {
		size_t want = msg->size - off < COPY_BYTES ?
		    (size_t)(msg->size - off) :
		    COPY_BYTES;
		ssize_t r = pread(msg->fd, copy, want, (off_t)off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			*error_r = strerror(errno);
			return -1;
		}
		if (maildir_deliver_write(in, copy, (size_t)r, error_r) == -1)
			return -1;
		off += (uint64_t)r;
	}
	return 0;
}

static int
deliver_one(const struct deliver_env *env, struct deliver_msg *msg,
    struct deliver_rcpt *r, char *copy, const char **error_r)
{
	struct maildir_incoming *in = NULL;
	char *dir = NULL;
	char head[2 * 600];
	int n1, n2;
	size_t extra = env->headers != NULL ? strlen(env->headers) : 0;
	uint32_t uidv;

	n1 = header_line(head, sizeof(head) / 2, "Return-Path",
	    env->return_path);
	n2 = header_line(head + (n1 > 0 ? n1 : 0), sizeof(head) / 2,
	    "Delivered-To", r->addr);
	if (n1 < 0 || n2 < 0) {
		errno = EINVAL;
		*error_r = "address too long for a header";
		return -1;
	}
	if (maildir_user_dir(env->mail_root, r->user, &dir, error_r) == -1 ||
	    maildir_user_init(dir, error_r) == -1)
		goto fail;
	if (r->has_quota &&
	    deliver_quota_check(dir, r->quota,
		msg->size + (uint64_t)(n1 + n2) + extra, error_r) == -1) {
		if (errno != EDQUOT)
			goto fail;
		free(dir);
		r->reply = REP_QUOTA;
		r->err = EDQUOT;
		return -1;
	}
	if (maildir_deliver_begin(dir, "INBOX", NULL, &in, error_r) == -1 ||
	    maildir_deliver_write(in, head, (size_t)(n1 + n2), error_r) == -1 ||
	    (extra > 0 &&
		maildir_deliver_write(in, env->headers, extra, error_r) ==
		    -1) ||
	    copy_body(msg, in, copy, error_r) == -1)
		goto fail;
	if (maildir_deliver_commit(&in, &uidv, &r->uid, error_r) == -1)
		goto fail;
	free(dir);
	r->reply = REP_DELIVERED;
	r->err = 0;
	return 0;
fail:
	r->err = errno ? errno : EIO;
	maildir_deliver_abort(&in);
	free(dir);
	r->reply = r->err == ENOSPC || r->err == EDQUOT ? REP_FULL : REP_TEMP;
	return -1;
}

size_t
deliver_run(const struct deliver_env *env, struct deliver_msg *msg,
    struct deliver_rcpt *rcpts, size_t n)
{
	char *copy = malloc(COPY_BYTES);
	size_t ok = 0;

	for (size_t i = 0; i < n; i++) {
		const char *error = NULL;

		if (copy == NULL) {
			rcpts[i].reply = REP_TEMP;
			rcpts[i].err = ENOMEM;
			continue;
		}
		errno = 0;
		if (deliver_one(env, msg, &rcpts[i], copy, &error) == 0)
			ok++;
	}
	free(copy);
	return ok;
}

/* ---- quota usage ---------------------------------------------------- */

/* A message's size from its name's ",S=<n>" (what store/ writes), else
 * from stat(). */
static uint64_t
name_size(const char *name, int dirfd)
{
	const char *s = strstr(name, ",S=");
	struct stat st;

	if (s != NULL) {
		char *end;
		unsigned long long v = strtoull(s + 3, &end, 10);

		if (end != s + 3)
			return (uint64_t)v;
	}
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode))
		return (uint64_t)st.st_size;
	return 0;
}

/* Add the sizes in parent/sub/new and parent/sub/cur ("" for parent). */
static int
usage_dir(int parent, const char *sub, uint64_t *bytes)
{
	static const char *const parts[] = { "new", "cur" };

	for (size_t k = 0; k < 2; k++) {
		char path[NAME_MAX + 8];
		struct dirent *de;
		DIR *d;
		int fd;

		snprintf(path, sizeof(path), "%s%s%s", sub, *sub ? "/" : "",
		    parts[k]);
		fd = openat(parent, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd == -1) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			return -1;
		}
		if ((d = fdopendir(fd)) == NULL) {
			close(fd);
			return -1;
		}
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				*bytes += name_size(de->d_name, dirfd(d));
		closedir(d);
	}
	return 0;
}

int
deliver_quota_check(const char *dir, uint64_t quota, uint64_t add,
    const char **error_r)
{
	uint64_t used = 0;

	if (deliver_usage(dir, &used) == -1) {
		*error_r = "cannot measure the mailbox";
		return -1;
	}
	if (used + add > quota) {
		errno = EDQUOT;
		*error_r = "over quota";
		return -1;
	}
	return 0;
}

int
deliver_usage(const char *dir, uint64_t *bytes_r)
{
	struct dirent *de;
	DIR *d;
	int fd;

	*bytes_r = 0;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (usage_dir(fd, "", bytes_r) == -1) {
		close(fd);
		return -1;
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	/* Maildir++ folders: ".Name" directories */
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (usage_dir(dirfd(d), de->d_name, bytes_r) == -1) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}
