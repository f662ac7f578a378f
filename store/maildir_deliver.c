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
 *
 * The tmp/ cleanup lives here too, because it and the deliverer follow
 * one protocol: a deliverer holds flock() on its tmp file from creation
 * until the file is linked, names it after the creation time (never the
 * internal date, which APPEND chooses), and sets the file's mtime to the
 * internal date; the cleanup takes a file only if it is old by ctime,
 * which nobody can set (utimes() moves it to now), old by the time in its
 * name, and not locked. So it never removes a file in flight, whatever
 * date an APPEND gave.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir_private.h"

/* Nothing links from tmp/ after 36 hours: the classic Maildir rule. */
#define TMP_MAX_AGE (36 * 3600)

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

/* A message being written under tmp/: every delivery goes through one,
 * on the stack for a whole message at once, on the heap between
 * maildir_deliver_begin() and _commit()/_abort(). */
struct maildir_incoming {
	char *maildir;		 /* owned; NULL on the stack */
	char dir[PATH_MAX];	 /* the folder */
	char uniq[NAME_MAX + 1]; /* base name without sizes */
	char tmp[PATH_MAX];
	int fd; /* -1 once closed */
	time_t date;
	unsigned int flags;
	uint32_t keywords;
	uint64_t size, bare; /* bytes, and LFs without a CR before them */
	char last;	     /* last byte written, for the next chunk */
};

static uint64_t count_bare_lf(const char *p, size_t len, char *last);
static int tmp_open(struct maildir_incoming *in, const char *dir, time_t date,
    unsigned int flags, uint32_t keywords);
static int tmp_write(struct maildir_incoming *in, const char *p, size_t len);
static int tmp_copy(struct maildir_incoming *in, const struct source *src);
static int tmp_publish(struct maildir_incoming *in, struct stored *out);
static void tmp_discard(struct maildir_incoming *in);
static int publish(const char *tmp, const char *dst);
static int store(const char *dir, const struct source *src, time_t date,
    unsigned int flags, uint32_t keywords, struct stored *out);
static const char *store_error(void);
static int delivery_keywords(const char *dir,
    const struct maildir_delivery *opt, uint32_t *letters_r,
    const char **error_r);
static int deliver(const char *maildir, const char *name,
    const struct source *src, const struct maildir_delivery *opt,
    uint32_t *uidvalidity_r, uint32_t *uid_r, const char **error_r);
struct kw_map;
static int map_keywords(struct maildir *box, struct kw_map *km,
    uint32_t letters, uint32_t *dst_r);
static int dest_name(const char *dir, const struct maildir_msg *m,
    unsigned int flags, uint32_t keywords, struct stored *out);
static int transfer(struct maildir *box, size_t index, struct kw_map *km,
    bool move, struct stored *out, char *src_r);
static void roll_back(char **made, char **orig, size_t count, bool move);
static bool tmp_stale(int dfd, const char *name, time_t limit);
static time_t name_time(const char *name);

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

/*
 * Create a fresh file under dir/tmp (O_EXCL: never an existing one) and
 * lock it until it is published or discarded, so the tmp/ cleanup leaves
 * it alone. Its tmp name carries the creation time; the base name (its
 * name in new/ or cur/) carries the internal date with the same unique
 * tail.
 */
static int
tmp_open(struct maildir_incoming *in, const char *dir, time_t date,
    unsigned int flags, uint32_t keywords)
{
	const char *tail;

	in->fd = -1;
	in->tmp[0] = '\0';
	in->date = date;
	in->flags = flags;
	in->keywords = keywords;
	in->size = in->bare = 0;
	in->last = '\0';
	if (md_path(in->dir, sizeof(in->dir), "%s", dir) == -1 ||
	    md_unique(in->uniq, sizeof(in->uniq) - 48, date) == -1)
		return -1;
	tail = strchr(in->uniq, '.');
	if (md_path(in->tmp, sizeof(in->tmp), "%s/tmp/%lld%s", dir,
		(long long)time(NULL), tail) == -1) {
		in->tmp[0] = '\0';
		return -1;
	}
	in->fd = open(in->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (in->fd == -1) {
		in->tmp[0] = '\0'; /* not ours: never unlink it */
		return -1;
	}
	/* A file nobody else has opened yet: this cannot block. */
	if (flock(in->fd, LOCK_EX | LOCK_NB) == -1) {
		tmp_discard(in);
		return -1;
	}
	return 0;
}

static int
tmp_write(struct maildir_incoming *in, const char *p, size_t len)
{
	in->bare += count_bare_lf(p, len, &in->last);
	in->size += len;
	return maildir_write_all(in->fd, p, len);
}

static int
tmp_copy(struct maildir_incoming *in, const struct source *src)
{
	char buf[65536];
	ssize_t n;

	if (src->fd == -1)
		return tmp_write(in, src->data, src->len);
	for (;;) {
		n = read(src->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			return 0;
		if (tmp_write(in, buf, (size_t)n) == -1)
			return -1;
	}
}

/* Close and forget the file; errno is kept. */
static void
tmp_discard(struct maildir_incoming *in)
{
	int saved = errno;

	if (in->fd != -1)
		close(in->fd);
	in->fd = -1;
	if (in->tmp[0] != '\0')
		unlink(in->tmp);
	in->tmp[0] = '\0';
	errno = saved;
}

/* fsync the file, give it its final name in new/ (no flags) or cur/ and
 * fsync that directory. The tmp name is gone afterwards, either way. The
 * file stays open (and locked) until it has its final name. */
static int
tmp_publish(struct maildir_incoming *in, struct stored *out)
{
	struct timespec times[2] = { { .tv_sec = in->date },
		{ .tv_sec = in->date } };
	char info[40], sub[PATH_MAX];
	bool cur = in->flags != 0 || in->keywords != 0;
	int ret, closed, saved;

	/* mtime = internal date, for tools that read it instead of the
	 * name; the cleanup judges by ctime, which this sets to now */
	if (futimens(in->fd, times) == -1 || fsync(in->fd) == -1)
		goto fail;
	md_info(info, in->flags, in->keywords);
	if (md_path(out->base, sizeof(out->base), "%s,S=%llu,W=%llu", in->uniq,
		(unsigned long long)in->size,
		(unsigned long long)(in->size + in->bare)) == -1 ||
	    md_path(sub, sizeof(sub), "%s/%s", in->dir, cur ? "cur" : "new") ==
		-1 ||
	    md_path(out->path, sizeof(out->path), "%s/%s%s", sub, out->base,
		cur ? info : "") == -1)
		goto fail;
	ret = publish(in->tmp, out->path);
	saved = errno;
	in->tmp[0] = '\0'; /* published, or unlinked by publish() */
	closed = close(in->fd);
	in->fd = -1;
	if (ret == -1) {
		errno = saved;
		return -1;
	}
	if (closed == -1 || md_fsync_dir(sub) == -1) {
		saved = errno;
		unlink(out->path);
		errno = saved;
		return -1;
	}
	return 0;
fail:
	tmp_discard(in);
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
	struct maildir_incoming in = { .fd = -1 };

	if (tmp_open(&in, dir, date, flags, keywords) == -1)
		return -1;
	if (tmp_copy(&in, src) == -1) {
		tmp_discard(&in);
		return -1;
	}
	return tmp_publish(&in, out);
}

/* The letters of the delivery's keywords in the folder dir, added to its
 * keyword file as needed (names that do not fit are dropped). */
static int
delivery_keywords(const char *dir, const struct maildir_delivery *opt,
    uint32_t *letters_r, const char **error_r)
{
	struct md_keywords kw;
	int ret;

	*letters_r = 0;
	if (opt == NULL || opt->keyword_count == 0)
		return 0;
	md_keywords_init(&kw);
	ret = md_keywords_resolve(dir, &kw, opt->keywords, opt->keyword_count,
	    letters_r);
	md_keywords_free(&kw);
	if (ret == -1)
		*error_r = "cannot write the keyword file";
	return ret;
}

/* The error text for a failed write, from errno. */
static const char *
store_error(void)
{
	return errno == ENOSPC || errno == EDQUOT ? "mailbox full" :
						    "cannot write message";
}

static int
deliver(const char *maildir, const char *name, const struct source *src,
    const struct maildir_delivery *opt, uint32_t *uidvalidity_r,
    uint32_t *uid_r, const char **error_r)
{
	char dir[PATH_MAX], norm[PATH_MAX], *base;
	time_t date = opt != NULL && opt->date != 0 ? opt->date : time(NULL);
	unsigned int flags = opt != NULL ? opt->flags & MAILDIR_FLAGS_STORED :
					   0;
	struct stored out;

	uint32_t keywords;

	if (md_folder_resolve(maildir, name, dir, norm, true, error_r) == -1)
		return -1;
	if (delivery_keywords(dir, opt, &keywords, error_r) == -1)
		return -1;
	if (store(dir, src, date, flags, keywords, &out) == -1) {
		*error_r = store_error();
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
    size_t len, const struct maildir_delivery *opt, uint32_t *uidvalidity_r,
    uint32_t *uid_r, const char **error_r)
{
	struct source src = { .data = data, .len = len, .fd = -1 };

	return deliver(maildir, name, &src, opt, uidvalidity_r, uid_r, error_r);
}

int
maildir_deliver_fd(const char *maildir, const char *name, int fd,
    const struct maildir_delivery *opt, uint32_t *uidvalidity_r,
    uint32_t *uid_r, const char **error_r)
{
	struct source src = { .fd = fd };

	return deliver(maildir, name, &src, opt, uidvalidity_r, uid_r, error_r);
}

/* ---- a message written in pieces ---- */

int
maildir_deliver_begin(const char *maildir, const char *name,
    const struct maildir_delivery *opt, struct maildir_incoming **in_r,
    const char **error_r)
{
	char dir[PATH_MAX], norm[PATH_MAX];
	time_t date = opt != NULL && opt->date != 0 ? opt->date : time(NULL);
	unsigned int flags = opt != NULL ? opt->flags & MAILDIR_FLAGS_STORED :
					   0;
	struct maildir_incoming *in;
	uint32_t keywords;

	*in_r = NULL;
	if (md_folder_resolve(maildir, name, dir, norm, true, error_r) == -1)
		return -1;
	if (delivery_keywords(dir, opt, &keywords, error_r) == -1)
		return -1;
	if ((in = calloc(1, sizeof(*in))) == NULL ||
	    (in->maildir = strdup(maildir)) == NULL) {
		free(in);
		errno = ENOMEM;
		*error_r = "out of memory";
		return -1;
	}
	if (tmp_open(in, dir, date, flags, keywords) == -1) {
		int saved = errno;

		*error_r = store_error();
		free(in->maildir);
		free(in);
		errno = saved;
		return -1;
	}
	*in_r = in;
	return 0;
}

int
maildir_deliver_write(struct maildir_incoming *in, const void *data, size_t len,
    const char **error_r)
{
	if (in->fd == -1) {
		errno = EBADF;
		*error_r = "delivery already failed";
		return -1;
	}
	if (tmp_write(in, data, len) == -1) {
		*error_r = store_error();
		return -1;
	}
	return 0;
}

uint64_t
maildir_deliver_size(const struct maildir_incoming *in)
{
	return in->size;
}

int
maildir_deliver_commit(struct maildir_incoming **inp, uint32_t *uidvalidity_r,
    uint32_t *uid_r, const char **error_r)
{
	struct maildir_incoming *in = *inp;
	struct stored out;
	char *base = out.base;
	int ret = -1, saved;

	*inp = NULL;
	if (in->fd == -1) {
		errno = EBADF;
		*error_r = "delivery already failed";
	} else if (tmp_publish(in, &out) == -1) {
		*error_r = store_error();
	} else if (uidlist_assign(in->maildir, in->dir, &base, 1, uidvalidity_r,
		       uid_r) == -1) {
		*error_r = "cannot update the UID list";
	} else {
		ret = 0;
	}
	saved = errno;
	tmp_discard(in);
	free(in->maildir);
	free(in);
	errno = saved;
	return ret;
}

void
maildir_deliver_abort(struct maildir_incoming **inp)
{
	struct maildir_incoming *in = *inp;

	if (in == NULL)
		return;
	*inp = NULL;
	tmp_discard(in);
	free(in->maildir);
	free(in);
}

/* ---- tmp/ cleanup ---- */

/* The decimal time a name starts with ("<time>.", as Maildir writers
 * name tmp files), or 0 if it has none. */
static time_t
name_time(const char *name)
{
	long long v = 0;
	const char *p;

	for (p = name; *p >= '0' && *p <= '9' && v < 100000000000LL; p++)
		v = v * 10 + (*p - '0');
	return p != name && *p == '.' ? (time_t)v : 0;
}

/*
 * Whether the tmp/ entry name (dfd: the tmp/ directory) is garbage for
 * the caller to unlink: a regular file whose ctime and name time (if it
 * has one) are both before limit, and which no deliverer holds locked.
 */
static bool
tmp_stale(int dfd, const char *name, time_t limit)
{
	struct stat st, again;
	bool stale = false;
	time_t t = name_time(name);
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode) || st.st_ctime >= limit || t >= limit)
		return false;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return false;
	/* A ringstore deliverer holds its lock until the link; the inode
	 * and ctime are checked again under ours, so the file judged is the
	 * file removed. */
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &again) == 0 &&
	    again.st_ino == st.st_ino && again.st_dev == st.st_dev &&
	    again.st_ctime < limit)
		stale = true;
	close(fd);
	return stale;
}

void
md_clean_tmp(const char *dir, time_t now)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (md_path(path, sizeof(path), "%s/tmp", dir) == -1 ||
	    (d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' &&
		    tmp_stale(dirfd(d), de->d_name, now - TMP_MAX_AGE))
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* ---- COPY and MOVE ---- */

/* Keyword letters of the source folder mapped to the destination's. */
struct kw_map {
	const char *ddir;
	struct md_keywords dst; /* the destination's file, as last read */
	int8_t to[MAILDIR_KEYWORDS_MAX]; /* KW_UNMAPPED, -1 none, letter */
};
#define KW_UNMAPPED (-2)

/* The destination letters of source letters, mapping the ones not seen
 * yet: by name (the source's file is re-read for a letter it does not
 * name yet), added to the destination's file as needed. Letters without
 * a name, or whose name does not fit there, are dropped. */
static int
map_keywords(struct maildir *box, struct kw_map *km, uint32_t letters,
    uint32_t *dst_r)
{
	const char *names[MAILDIR_KEYWORDS_MAX];
	int src[MAILDIR_KEYWORDS_MAX], got[MAILDIR_KEYWORDS_MAX];
	size_t i, n = 0;
	bool changed;

	if ((letters & ~box->kw.valid) != 0 &&
	    md_keywords_load(box->dir, &box->kw, &changed) == 0 && changed)
		box->kw_changed = true;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		if (!(letters & (1u << i)) || km->to[i] != KW_UNMAPPED)
			continue;
		km->to[i] = -1;
		if (!(box->kw.valid & (1u << i)))
			continue;
		src[n] = (int)i;
		names[n++] = box->kw.names[i];
	}
	if (n > 0) {
		if (md_keywords_add(km->ddir, &km->dst, names, n, 0, false, got,
			&changed) == -1)
			return -1;
		for (i = 0; i < n; i++)
			km->to[src[i]] = (int8_t)got[i];
	}
	*dst_r = 0;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if ((letters & (1u << i)) && km->to[i] >= 0)
			*dst_r |= 1u << km->to[i];
	return 0;
}

/* A fresh name in the destination keeping the internal date (time
 * prefix) and sizes of m, with these flags and keywords. */
static int
dest_name(const char *dir, const struct maildir_msg *m, unsigned int flags,
    uint32_t keywords, struct stored *out)
{
	char uniq[NAME_MAX + 1], info[40], vs[32] = "";
	bool cur = flags != 0 || keywords != 0;

	if (md_unique(uniq, sizeof(uniq) - 48, m->date) == -1)
		return -1;
	if (m->vsize != 0)
		snprintf(vs, sizeof(vs), ",W=%llu",
		    (unsigned long long)m->vsize);
	md_info(info, flags, keywords);
	if (md_path(out->base, sizeof(out->base), "%s,S=%llu%s", uniq,
		(unsigned long long)m->size, vs) == -1)
		return -1;
	return md_path(out->path, sizeof(out->path), "%s/%s/%s%s", dir,
	    cur ? "cur" : "new", out->base, cur ? info : "");
}

/*
 * Put one message into ddir: link (copy) or rename (move) its file, with a
 * byte copy across devices. The flags are the ones in the source's name
 * as it is linked or renamed (a rename elsewhere makes the link fail and
 * the name is looked up again), not the view's. src_r receives the
 * source path (PATH_MAX). Returns 1 if done, 0 if the message was gone,
 * -1 on error.
 */
static int
transfer(struct maildir *box, size_t index, struct kw_map *km, bool move,
    struct stored *out, char *src_r)
{
	const struct maildir_msg *m = &box->msgs[index];
	struct source src = { .fd = -1 };
	struct maildir_msg disk;
	uint32_t keywords = 0;
	int tries, ret, saved;

	for (tries = 0; tries < MAILDIR_STORE_TRIES; tries++) {
		md_parse_name(m->file + 4, &disk);
		if (map_keywords(box, km, disk.keywords, &keywords) == -1 ||
		    dest_name(km->ddir, m, disk.flags, keywords, out) == -1 ||
		    md_path(src_r, PATH_MAX, "%s/%s", box->dir, m->file) == -1)
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
		/* A flag change elsewhere renamed it: follow. */
		if (md_refind(box, index) == -1)
			return errno == ENOENT ? 0 : -1;
	}
	if (tries == MAILDIR_STORE_TRIES)
		errno = EAGAIN;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
	    errno != ENOTSUP)
		return -1;
	if ((src.fd = open(src_r, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	ret = store(km->ddir, &src, m->date, disk.flags, keywords, out);
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
    const char *dest, bool move, uint32_t *uidvalidity_r, uint32_t *dest_uids,
    const char **error_r)
{
	char ddir[PATH_MAX], norm[PATH_MAX], src[PATH_MAX], path[PATH_MAX];
	char **bases = NULL, **made = NULL, **orig = NULL;
	struct kw_map km;
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
	km.ddir = ddir;
	md_keywords_init(&km.dst);
	memset(km.to, KW_UNMAPPED, sizeof(km.to));
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
		r = transfer(box, (size_t)idx, &km, move, &out, src);
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
	if (move &&
	    (md_fsync_dir(box->new_path) == -1 ||
		md_fsync_dir(box->cur_path) == -1)) {
		*error_r = "cannot sync source";
		goto rollback;
	}
	if (n > 0 &&
	    uidlist_assign(box->maildir, ddir, bases, n, uidvalidity_r,
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
	md_keywords_free(&km.dst);
	return ret;
}

int
maildir_write_all(int fd, const void *p, size_t n)
{
	const char *q = p;

	while (n > 0) {
		ssize_t w = write(fd, q, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		q += w;
		n -= (size_t)w;
	}
	return 0;
}
