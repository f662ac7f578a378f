/*
 * maildir_deliver.c - crash-safe delivery, APPEND, COPY and MOVE.
 *
 * A message becomes visible in exactly one step: it is written and fsynced
 * under tmp/ (created O_EXCL), then linked into new/ or cur/ and that
 * directory fsynced; only then is its UID written to the list. A crash
 * before the link leaves a stray file in tmp/ (never seen by readers); a
 * crash after it leaves a message without a UID, which the next sync gives
 * one. Either way no acknowledged message is lost and no UID is reused.
 * Copies are hard links (same immutable content, a new name), moves are
 * renames; a byte copy through tmp/ is the fallback across devices. This
 * file must never overwrite an existing message name (link() and
 * RENAME_NOREPLACE refuse to).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/maildir_private.h"

/* The source of a new file: a buffer, or an fd read to EOF. */
struct source {
	const void *data;
	size_t len;
	int fd;
};

/* Where a stored message ended up. */
struct stored {
	char base[NAME_MAX + 1];
	char path[PATH_MAX];
};

static int write_all(int fd, const char *p, size_t len);
static uint64_t count_bare_lf(const char *p, size_t len, char *last);
static int write_tmp(const char *path, const struct source *src, time_t date,
		     uint64_t *size_r, uint64_t *vsize_r);
static int publish(const char *tmp, const char *dst);
static int store(const char *dir, const struct source *src, time_t date,
		 unsigned int flags, uint32_t keywords, struct stored *out);
static int deliver(const char *maildir, const char *name,
		   const struct source *src, const struct maildir_delivery *opt,
		   uint32_t *uidvalidity_r, uint32_t *uid_r,
		   const char **error_r);
static int dest_name(const char *dir, const struct maildir_msg *m,
		     struct stored *out);
static int transfer(struct maildir *box, size_t index, const char *ddir,
		    bool move, struct stored *out, char *src_r);
static void roll_back(char **made, char **orig, size_t count, bool move);

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* W= is the size with every line ending CRLF, what RFC822.SIZE reports.
 * last carries the previous chunk's final byte across calls. */
static uint64_t
count_bare_lf(const char *p, size_t len, char *last)
{
	const char *end = p + len, *lf;
	uint64_t n = 0;

	if (len == 0)
		return 0;
	for (lf = memchr(p, '\n', len); lf != NULL;
	     lf = memchr(lf + 1, '\n', (size_t)(end - lf - 1))) {
		if ((lf == p ? *last : lf[-1]) != '\r')
			n++;
		if (lf + 1 == end)
			break;
	}
	*last = end[-1];
	return n;
}

static int
write_tmp(const char *path, const struct source *src, time_t date,
	  uint64_t *size_r, uint64_t *vsize_r)
{
	struct timespec times[2] = {{.tv_sec = date}, {.tv_sec = date}};
	uint64_t size = 0, bare = 0;
	char buf[65536], last = '\0';
	int fd, saved;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (src->fd == -1) {
		bare = count_bare_lf(src->data, src->len, &last);
		size = src->len;
		if (write_all(fd, src->data, src->len) == -1)
			goto fail;
	} else {
		for (;;) {
			n = read(src->fd, buf, sizeof(buf));
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				goto fail;
			if (n == 0)
				break;
			bare += count_bare_lf(buf, (size_t)n, &last);
			size += (uint64_t)n;
			if (write_all(fd, buf, (size_t)n) == -1)
				goto fail;
		}
	}
	/* mtime = internal date, for tools that read it instead of the name */
	if (futimens(fd, times) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	*size_r = size;
	*vsize_r = size + bare;
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(path);
	errno = saved;
	return -1;
}

/* link() never replaces an existing name; filesystems without hard links
 * get a no-replace rename instead. The tmp name is gone afterwards. */
static int
publish(const char *tmp, const char *dst)
{
	int saved;

	if (link(tmp, dst) == 0) {
		unlink(tmp);
		return 0;
	}
	if (errno == EPERM || errno == ENOTSUP || errno == EMLINK) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) ==
		    0)
			return 0;
	}
	saved = errno;
	unlink(tmp);
	errno = saved;
	return -1;
}

/* Write a new message file into dir: tmp/, fsync, new/ (no flags) or cur/,
 * fsync that directory. out gets its base name and final path. */
static int
store(const char *dir, const struct source *src, time_t date,
      unsigned int flags, uint32_t keywords, struct stored *out)
{
	char uniq[NAME_MAX + 1], tmp[PATH_MAX], info[40], sub[PATH_MAX];
	uint64_t size, vsize;
	bool cur = flags != 0 || keywords != 0;

	if (md_unique(uniq, sizeof(uniq) - 48, date) == -1 ||
	    md_path(tmp, sizeof(tmp), "%s/tmp/%s", dir, uniq) == -1)
		return -1;
	if (write_tmp(tmp, src, date, &size, &vsize) == -1)
		return -1;
	md_info(info, flags, keywords);
	if (md_path(out->base, sizeof(out->base), "%s,S=%llu,W=%llu", uniq,
		    (unsigned long long)size,
		    (unsigned long long)vsize) == -1 ||
	    md_path(sub, sizeof(sub), "%s/%s", dir, cur ? "cur" : "new") ==
		-1 ||
	    md_path(out->path, sizeof(out->path), "%s/%s%s", sub, out->base,
		    cur ? info : "") == -1) {
		unlink(tmp);
		return -1;
	}
	if (publish(tmp, out->path) == -1)
		return -1;
	if (md_fsync_dir(sub) == -1) {
		unlink(out->path);
		return -1;
	}
	return 0;
}

static int
deliver(const char *maildir, const char *name, const struct source *src,
	const struct maildir_delivery *opt, uint32_t *uidvalidity_r,
	uint32_t *uid_r, const char **error_r)
{
	char dir[PATH_MAX], norm[PATH_MAX], *base;
	time_t date = opt != NULL && opt->date != 0 ? opt->date : time(NULL);
	unsigned int flags =
	    opt != NULL ? opt->flags & MAILDIR_FLAGS_STORED : 0;
	struct stored out;

	if (md_folder_resolve(maildir, name, dir, norm, true, error_r) == -1)
		return -1;
	if (store(dir, src, date, flags, 0, &out) == -1) {
		*error_r = errno == ENOSPC || errno == EDQUOT
			       ? "mailbox full"
			       : "cannot write message";
		return -1;
	}
	/* The message is durable now. If the list cannot be written it
	 * still gets a UID at the next sync, but we cannot promise one. */
	base = out.base;
	if (uidlist_assign(maildir, dir, &base, 1, uidvalidity_r, uid_r) ==
	    -1) {
		*error_r = "cannot update the UID list";
		return -1;
	}
	return 0;
}

int
maildir_deliver(const char *maildir, const char *name, const void *data,
		size_t len, const struct maildir_delivery *opt,
		uint32_t *uidvalidity_r, uint32_t *uid_r, const char **error_r)
{
	struct source src = {.data = data, .len = len, .fd = -1};

	return deliver(maildir, name, &src, opt, uidvalidity_r, uid_r, error_r);
}

int
maildir_deliver_fd(const char *maildir, const char *name, int fd,
		   const struct maildir_delivery *opt, uint32_t *uidvalidity_r,
		   uint32_t *uid_r, const char **error_r)
{
	struct source src = {.fd = fd};

	return deliver(maildir, name, &src, opt, uidvalidity_r, uid_r, error_r);
}

/* ---- COPY and MOVE ---- */

/* A fresh name in the destination keeping the internal date (time
 * prefix), sizes, flags and keywords of m. */
static int
dest_name(const char *dir, const struct maildir_msg *m, struct stored *out)
{
	char uniq[NAME_MAX + 1], info[40], vs[32] = "";
	unsigned int flags = m->flags & MAILDIR_FLAGS_STORED;
	bool cur = flags != 0 || m->keywords != 0;

	if (md_unique(uniq, sizeof(uniq) - 48, m->date) == -1)
		return -1;
	if (m->vsize != 0)
		snprintf(vs, sizeof(vs), ",W=%llu",
			 (unsigned long long)m->vsize);
	md_info(info, flags, m->keywords);
	if (md_path(out->base, sizeof(out->base), "%s,S=%llu%s", uniq,
		    (unsigned long long)m->size, vs) == -1)
		return -1;
	return md_path(out->path, sizeof(out->path), "%s/%s/%s%s", dir,
		       cur ? "cur" : "new", out->base, cur ? info : "");
}

/*
 * Put one message into ddir: link (copy) or rename (move) its file, with a
 * byte copy across devices. src_r receives the source path (PATH_MAX).
 * Returns 1 if done, 0 if the message was gone, -1 on error.
 */
static int
transfer(struct maildir *box, size_t index, const char *ddir, bool move,
	 struct stored *out, char *src_r)
{
	const struct maildir_msg *m = &box->msgs[index];
	struct source src = {.fd = -1};
	int tries, ret, saved;

	if (dest_name(ddir, m, out) == -1)
		return -1;
	for (tries = 0; tries < 3; tries++) {
		if (md_path(src_r, PATH_MAX, "%s/%s", box->dir, m->file) == -1)
			return -1;
		if (move)
			ret = renameat2(AT_FDCWD, src_r, AT_FDCWD, out->path,
					RENAME_NOREPLACE);
		else
			ret = link(src_r, out->path);
		if (ret == 0)
			return 1;
		if (errno != ENOENT)
			break;
		/* A flag change elsewhere renamed it: follow once more. */
		if (md_refind(box, index) == -1)
			return errno == ENOENT ? 0 : -1;
	}
	if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
	    errno != ENOTSUP)
		return -1;
	if ((src.fd = open(src_r, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	ret = store(ddir, &src, m->date, m->flags & MAILDIR_FLAGS_STORED,
		    m->keywords, out);
	saved = errno;
	close(src.fd);
	errno = saved;
	if (ret == -1)
		return -1;
	if (move && unlink(src_r) == -1 && errno != ENOENT) {
		unlink(out->path);
		return -1;
	}
	return 1;
}

/* Best effort: a failed COPY leaves no copies; a failed MOVE puts moved
 * files back where they came from. */
static void
roll_back(char **made, char **orig, size_t count, bool move)
{
	size_t i;

	for (i = 0; i < count; i++) {
		if (made[i] == NULL)
			continue;
		if (move && rename(made[i], orig[i]) == 0)
			continue;
		if (!move)
			unlink(made[i]);
	}
}

int
maildir_copy(struct maildir *box, const uint32_t *uids, size_t count,
	     const char *dest, bool move, uint32_t *uidvalidity_r,
	     uint32_t *dest_uids, const char **error_r)
{
	char ddir[PATH_MAX], norm[PATH_MAX], src[PATH_MAX], path[PATH_MAX];
	char **bases = NULL, **made = NULL, **orig = NULL;
	uint32_t *assigned = NULL;
	struct stored out;
	size_t i, n = 0;
	int ret = -1, r;
	long idx;

	if (move && box->readonly) {
		errno = EROFS;
		*error_r = "folder is read-only";
		return -1;
	}
	if (md_folder_resolve(box->maildir, dest, ddir, norm, true, error_r) ==
	    -1)
		return -1;
	bases = calloc(count + 1, sizeof(*bases));
	made = calloc(count + 1, sizeof(*made));
	orig = calloc(count + 1, sizeof(*orig));
	assigned = calloc(count + 1, sizeof(*assigned));
	if (bases == NULL || made == NULL || orig == NULL || assigned == NULL)
		goto nomem;
	for (i = 0; i < count; i++) {
		dest_uids[i] = 0;
		if ((idx = maildir_find_uid(box, uids[i])) < 0)
			continue;
		r = transfer(box, (size_t)idx, ddir, move, &out, src);
		if (r == -1) {
			*error_r = "cannot copy message";
			goto rollback;
		}
		if (r == 0)
			continue;
		made[i] = strdup(out.path);
		orig[i] = strdup(src);
		bases[n] = strdup(out.base);
		if (made[i] == NULL || orig[i] == NULL || bases[n] == NULL) {
			/* Undo this one by hand: its record is incomplete. */
			if (move)
				rename(out.path, src);
			else
				unlink(out.path);
			free(made[i]);
			free(orig[i]);
			made[i] = orig[i] = NULL;
			goto nomem_rollback;
		}
		n++;
	}
	/* One fsync per directory for the whole batch. */
	if (md_path(path, sizeof(path), "%s/new", ddir) == -1 ||
	    md_fsync_dir(path) == -1 ||
	    md_path(path, sizeof(path), "%s/cur", ddir) == -1 ||
	    md_fsync_dir(path) == -1) {
		*error_r = "cannot sync destination";
		goto rollback;
	}
	if (move && (md_fsync_dir(box->new_path) == -1 ||
		     md_fsync_dir(box->cur_path) == -1)) {
		*error_r = "cannot sync source";
		goto rollback;
	}
	if (n > 0 && uidlist_assign(box->maildir, ddir, bases, n, uidvalidity_r,
				    assigned) == -1) {
		*error_r = "cannot update the UID list";
		goto rollback;
	}
	if (n == 0) {
		/* Still report the destination's UIDVALIDITY. */
		struct maildir_status st;

		if (maildir_status(box->maildir, norm, &st, error_r) == -1)
			goto out;
		*uidvalidity_r = st.uidvalidity;
	}
	for (i = 0, n = 0; i < count; i++)
		if (made[i] != NULL)
			dest_uids[i] = assigned[n++];
	ret = 0;
	goto out;
nomem_rollback:
	*error_r = "out of memory";
rollback:
	roll_back(made, orig, count, move);
	for (i = 0; i < count; i++)
		dest_uids[i] = 0;
	goto out;
nomem:
	*error_r = "out of memory";
out:
	if (made != NULL)
		maildir_strings_free(made, count);
	if (orig != NULL)
		maildir_strings_free(orig, count);
	if (bases != NULL)
		maildir_strings_free(bases, count);
	free(assigned);
	return ret;
}
