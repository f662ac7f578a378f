/*
 * maildir_uidlist.c - the per-folder UID list (ringstore-uidlist).
 *
 * The list maps UIDs to message base names (the file name without its
 * ":2," info, which changes with flags). A sync that drops or renumbers
 * entries replaces it whole: written to a temp file, fsynced, renamed over
 * the old one and the directory fsynced, so a crash leaves either the old
 * or the new list. A delivery only adds UIDs, so it appends its
 * "<uid> <base>\n" records to the end of the file with one write() under
 * the lock and fdatasyncs it after releasing the lock: deliveries to one
 * folder then share journal commits instead of queueing behind each
 * other's fsyncs, and the next full rewrite compacts the file. The format
 * is unchanged (readers always took the highest listed UID as a floor for
 * nextuid), so a list appended to is read by older code too.
 *
 * nextuid only grows, so no UID is ever handed out twice, even for entries
 * that were dropped. Every read-modify-write happens under flock() on
 * ringstore-uidlist.lock; readers that do not write take it too, because
 * they would otherwise act on a list that is about to change. Nothing here
 * scans message directories: that is maildir.c's job.
 *
 * Crashes: an acknowledged delivery's record was fdatasynced, and that
 * covered every byte appended before it, so only records after the last
 * acknowledged one can be torn or missing. The parser skips bad lines
 * (without stopping at a NUL, which a crash can leave in an appended
 * block), and an append never follows a torn last line: the list is
 * rewritten whole instead.
 */
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

/* Reading */
static bool parse_u32(const char **p, uint32_t *v);
static int parse_list(struct uidlist *list, char *buf, size_t len);
static int read_fd(int fd, struct uidlist *list);

/* Appending */
static long find_linear(const struct uidlist *list, const char *base,
    size_t len);
static size_t format_record(char *p, uint32_t uid, const char *base,
    size_t len);
static int append_all(int fd, const char *buf, size_t len, off_t old);

/* Index */
static uint32_t hash_base(const char *s, size_t len);

static bool
parse_u32(const char **p, uint32_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			return false;
		s++;
	}
	*v = (uint32_t)n;
	*p = s;
	return true;
}

/*
 * Header: "ringstore-uidlist 2 <uidvalidity> <nextuid> <first recent>\n"
 * (version 1 has no first recent: everything listed counts as seen),
 * then lines "<uid> <base>\n". Entries out of order or malformed are
 * skipped: their files simply get new UIDs at the next sync. A UID at or
 * above nextuid raises nextuid, so even a damaged list never causes
 * reuse. Returns -1 only when memory runs out.
 */
static int
parse_list(struct uidlist *list, char *buf, size_t len)
{
	const char *p = buf, *magic = MD_UIDLIST_MAGIC " ";
	uint32_t version, uid, last = 0;
	char *eol, *line;

	list->exists = false;
	if (strncmp(p, magic, strlen(magic)) != 0)
		return 0;
	p += strlen(magic);
	if (!parse_u32(&p, &version) || (version != 1 && version != 2) ||
	    *p++ != ' ' || !parse_u32(&p, &list->uidvalidity) || *p++ != ' ' ||
	    !parse_u32(&p, &list->nextuid) || list->uidvalidity == 0 ||
	    list->nextuid == 0)
		return 0;
	list->first_recent = list->nextuid;
	if (version == 2 &&
	    (*p++ != ' ' || !parse_u32(&p, &list->first_recent)))
		return 0;
	if (*p != '\n')
		return 0;
	if (list->first_recent == 0 || list->first_recent > list->nextuid)
		list->first_recent = list->nextuid;
	list->exists = true;
	line = (char *)p + 1;
	for (; line < buf + len; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(buf + len - line));
		if (eol == NULL)
			break; /* a torn last line: ignore */
		*eol = '\0';
		p = line;
		/* A NUL inside: a block a crash left unwritten. */
		if (memchr(line, '\0', (size_t)(eol - line)) != NULL ||
		    !parse_u32(&p, &uid) || *p != ' ' || p[1] == '\0' ||
		    uid <= last)
			continue;
		p++;
		if (uidlist_push(list, uid, p, (size_t)(eol - p)) == -1)
			return -1;
		last = uid;
		if (uid >= list->nextuid && uid < UINT32_MAX)
			list->nextuid = uid + 1;
	}
	return 0;
}

/* Read and parse the list open on fd (from its start). */
static int
read_fd(int fd, struct uidlist *list)
{
	size_t len;

	if (md_read_file(fd, 0, &list->buf, &len) == -1)
		return -1;
	list->whole = len > 0 && list->buf[len - 1] == '\n';
	if (parse_list(list, list->buf, len) == -1)
		return -1;
	if (!list->exists)
		list->count = 0;
	return 0;
}

int
uidlist_read(const char *dir, struct uidlist *list)
{
	char path[PATH_MAX];
	int fd, ret, saved;

	memset(list, 0, sizeof(*list));
	if (md_path(path, sizeof(path), "%s/" MD_UIDLIST, dir) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	ret = read_fd(fd, list);
	saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

int
uidlist_init_new(const char *maildir, struct uidlist *list)
{
	if (md_new_uidvalidity(maildir, &list->uidvalidity) == -1)
		return -1;
	list->nextuid = 1;
	list->first_recent = 1;
	list->count = 0;
	return 0;
}

int
uidlist_push(struct uidlist *list, uint32_t uid, const char *base, size_t len)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 64;
		struct uidlist_entry *e;

		e = reallocarray(list->entries, cap, sizeof(*e));
		if (e == NULL)
			return -1;
		list->entries = e;
		list->cap = cap;
	}
	list->entries[list->count].uid = uid;
	list->entries[list->count].base = base;
	list->entries[list->count].len = (uint32_t)len;
	list->count++;
	return 0;
}

/* FNV-1a: base names share long prefixes (time, host), so a hash that
 * mixes every byte matters more than speed here. */
static uint32_t
hash_base(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

int
uidlist_index(struct uidlist *list)
{
	size_t size = 16, i, slot;

	while (size < list->count * 2)
		size *= 2;
	free(list->index);
	if ((list->index = calloc(size, sizeof(*list->index))) == NULL)
		return -1;
	list->index_mask = size - 1;
	for (i = 0; i < list->count; i++) {
		slot = hash_base(list->entries[i].base, list->entries[i].len) &
		    list->index_mask;
		while (list->index[slot] != 0)
			slot = (slot + 1) & list->index_mask;
		list->index[slot] = (uint32_t)i + 1;
	}
	return 0;
}

long
uidlist_find(const struct uidlist *list, const char *base, size_t len)
{
	const struct uidlist_entry *e;
	size_t slot;

	if (list->index == NULL)
		return -1;
	slot = hash_base(base, len) & list->index_mask;
	while (list->index[slot] != 0) {
		e = &list->entries[list->index[slot] - 1];
		if (e->len == len && memcmp(e->base, base, len) == 0)
			return (long)list->index[slot] - 1;
		slot = (slot + 1) & list->index_mask;
	}
	return -1;
}

int
uidlist_write(const char *dir, const struct uidlist *list)
{
	size_t cap = 64, len, i;
	char *buf, *p;
	int ret, n;

	for (i = 0; i < list->count; i++)
		cap += list->entries[i].len + 12;
	if ((buf = malloc(cap)) == NULL)
		return -1;
	n = snprintf(buf, cap, "%s %d %u %u %u\n", MD_UIDLIST_MAGIC,
	    MD_UIDLIST_VERSION, list->uidvalidity, list->nextuid,
	    list->first_recent);
	p = buf + n;
	for (i = 0; i < list->count; i++) {
		n = snprintf(p, 12, "%u ", list->entries[i].uid);
		p += n;
		memcpy(p, list->entries[i].base, list->entries[i].len);
		p += list->entries[i].len;
		*p++ = '\n';
	}
	len = (size_t)(p - buf);
	ret = md_write_atomic(dir, MD_UIDLIST, buf, len);
	free(buf);
	return ret;
}

void
uidlist_free(struct uidlist *list)
{
	free(list->entries);
	free(list->buf);
	free(list->index);
	memset(list, 0, sizeof(*list));
}

int
uidlist_lock(const char *dir, int *fd_r)
{
	return md_lock_file(dir, MD_UIDLIST_LOCK, fd_r);
}

/* Up to this many names (a delivery) are looked up by comparing them with
 * each entry: hashing every base name of a large folder to build the index
 * costs more, and it would be done under the lock. */
#define ASSIGN_LINEAR_MAX 4

/* The entry with this base name, newest first (a sync that listed a
 * delivered file listed it last), or -1. */
static long
find_linear(const struct uidlist *list, const char *base, size_t len)
{
	const struct uidlist_entry *e;
	size_t i;

	for (i = list->count; i-- > 0;) {
		e = &list->entries[i];
		if (e->len == len && memcmp(e->base, base, len) == 0)
			return (long)i;
	}
	return -1;
}

/* One "<uid> <base>\n" record at p (room for 12 + len bytes); its length. */
static size_t
format_record(char *p, uint32_t uid, const char *base, size_t len)
{
	int n = snprintf(p, 12, "%u ", uid);

	memcpy(p + n, base, len);
	p[(size_t)n + len] = '\n';
	return (size_t)n + len + 1;
}

/* write() all of buf to an O_APPEND fd. On failure, cut the file back to
 * old bytes (best effort) so that no half record is left behind. */
static int
append_all(int fd, const char *buf, size_t len, off_t old)
{
	size_t off = 0;
	int saved;
	ssize_t n;

	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			if (off > 0 && ftruncate(fd, old) == -1) {
				/* the torn tail makes the next writer
				 * rewrite the list whole */
			}
			errno = saved;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/*
 * New UIDs are appended to a list whose last line is whole; a missing,
 * invalid or torn list is written whole instead (fsynced under the lock).
 * The append's fdatasync runs after the lock is released, so the
 * deliveries that queued behind this one append while it syncs and the
 * filesystem commits them together. That is safe: this fd is the list
 * that was current under the lock, and a full rewrite by someone else in
 * between read our records and fsynced its copy before renaming it in.
 */
int
uidlist_assign(const char *maildir, const char *dir, char *const *bases,
    size_t count, uint32_t *uidvalidity_r, uint32_t *uids)
{
	char path[PATH_MAX], *rec = NULL;
	struct uidlist list;
	size_t i, rec_cap = 0, rec_len = 0, len;
	bool dirty = false, readonly = false;
	int lock, fd = -1, saved;
	off_t old = 0;
	long idx;

	memset(&list, 0, sizeof(list));
	if (md_path(path, sizeof(path), "%s/" MD_UIDLIST, dir) == -1)
		return -1;
	for (i = 0; i < count; i++)
		rec_cap += strlen(bases[i]) + 12;
	if ((rec = malloc(rec_cap + 1)) == NULL)
		return -1;
	if (uidlist_lock(dir, &lock) == -1) {
		free(rec);
		return -1;
	}
	/* Opened under the lock: the list nobody can replace until we
	 * release it. */
	fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (fd == -1 && (errno == EACCES || errno == EPERM)) {
		/* A list we may not write in place (another program's
		 * mode): read it and replace it whole, as before. */
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1)
			readonly = true;
	}
	if (fd == -1 && errno != ENOENT)
		goto fail;
	if (fd != -1 && read_fd(fd, &list) == -1)
		goto fail;
	if (!list.exists) {
		uidlist_free(&list);
		if (uidlist_init_new(maildir, &list) == -1)
			goto fail;
		dirty = true;
	}
	if (count > ASSIGN_LINEAR_MAX && uidlist_index(&list) == -1)
		goto fail;
	for (i = 0; i < count; i++) {
		len = strlen(bases[i]);
		/* A sync in another process may have seen the file first. */
		idx = count > ASSIGN_LINEAR_MAX ?
		    uidlist_find(&list, bases[i], len) :
		    find_linear(&list, bases[i], len);
		if (idx >= 0) {
			uids[i] = list.entries[idx].uid;
			continue;
		}
		if (list.nextuid == UINT32_MAX) {
			errno = EOVERFLOW;
			goto fail;
		}
		uids[i] = list.nextuid++;
		if (uidlist_push(&list, uids[i], bases[i], len) == -1)
			goto fail;
		rec_len += format_record(rec + rec_len, uids[i], bases[i], len);
		dirty = true;
	}
	if (dirty && (fd == -1 || readonly || !list.exists || !list.whole)) {
		/* Nothing to append to: write it whole (synced). */
		if (uidlist_write(dir, &list) == -1)
			goto fail;
		if (fd != -1)
			close(fd);
		fd = -1;
	} else if (dirty) {
		if ((old = lseek(fd, 0, SEEK_END)) == -1 ||
		    append_all(fd, rec, rec_len, old) == -1)
			goto fail;
	}
	*uidvalidity_r = list.uidvalidity;
	uidlist_free(&list);
	free(rec);
	close(lock);
	if (fd != -1) {
		if (dirty && fdatasync(fd) == -1) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		close(fd);
	}
	return 0;
fail:
	saved = errno;
	uidlist_free(&list);
	free(rec);
	if (fd != -1)
		close(fd);
	close(lock);
	errno = saved;
	return -1;
}

int
md_new_uidvalidity(const char *maildir, uint32_t *uidvalidity_r)
{
	char path[PATH_MAX], buf[32];
	uint32_t last = 0, now = (uint32_t)time(NULL), v;
	const char *p = buf;
	int lock, fd, saved;
	ssize_t n;

	if (md_lock_file(maildir, MD_USER_LOCK, &lock) == -1)
		return -1;
	if (md_path(path, sizeof(path), "%s/" MD_UIDVALIDITY, maildir) == -1)
		goto fail;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (!parse_u32(&p, &last))
			last = 0;
	} else if (errno != ENOENT)
		goto fail;
	v = now > last ? now : last + 1;
	if (v == 0)
		v = 1;
	n = snprintf(buf, sizeof(buf), "%u\n", v);
	if (md_write_atomic(maildir, MD_UIDVALIDITY, buf, (size_t)n) == -1)
		goto fail;
	close(lock);
	*uidvalidity_r = v;
	return 0;
fail:
	saved = errno;
	close(lock);
	errno = saved;
	return -1;
}
