/*
 * maildir_file.c - file-level helpers shared by the maildir*.c files:
 * bounded path building, fsync of directories, lock files, atomic
 * replace-by-rename, unique message names, and the name <-> flags codec.
 *
 * Relies on rename() being atomic within a directory and on flock() locks
 * belonging to the open file description (so they separate threads too).
 * Nothing here knows about UIDs or folders, and nothing keeps state between
 * calls: uniqueness comes from the clock, the pid and getrandom().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir_private.h"

static int mkdir_p(const char *path);

int
md_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
md_fsync_dir(const char *path)
{
	int fd, ret, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	ret = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

int
md_lock_file(const char *dir, const char *file, int *fd_r)
{
	char path[PATH_MAX];
	int fd, saved;

	if (md_path(path, sizeof(path), "%s/%s", dir, file) == -1)
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return -1;
	/* flock locks belong to the open file description, so two threads
	 * of one process exclude each other as well as processes do. */
	while (flock(fd, LOCK_EX) == -1) {
		if (errno == EINTR)
			continue;
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	*fd_r = fd;
	return 0;
}

int
md_write_atomic(const char *dir, const char *file, const char *buf, size_t len)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t off = 0;
	int fd, saved;
	ssize_t n;

	/* The fixed temp name is safe because every writer holds the lock
	 * guarding this file; a stray one from a crash is truncated. */
	if (md_path(path, sizeof(path), "%s/%s", dir, file) == -1 ||
	    md_path(tmp, sizeof(tmp), "%s/%s.tmp", dir, file) == -1)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	return md_fsync_dir(dir);
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

int
md_read_file(int fd, size_t max, char **buf_r, size_t *len_r)
{
	size_t limit = max != 0 ? max : SIZE_MAX - 1, cap, len = 0;
	struct stat st;
	char *buf, *p;
	ssize_t n;

	if (fstat(fd, &st) == -1)
		return -1;
	cap = ((size_t)st.st_size < limit ? (size_t)st.st_size : limit) + 1;
	if ((buf = malloc(cap)) == NULL)
		return -1;
	/* The files are replaced whole or (the UID list) appended to under
	 * the lock the reader holds, so the size is stable; still, read to
	 * EOF in case it is not what we expect. */
	while (len < limit) {
		if (len + 1 == cap) {
			cap = cap - 1 < limit / 2 ? cap * 2 : limit + 1;
			if ((p = realloc(buf, cap)) == NULL)
				goto fail;
			buf = p;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return 0;
fail:
	free(buf);
	return -1;
}

int
md_unique(char *buf, size_t size, time_t t)
{
	char host[256], clean[1024], *o = clean;
	struct timespec ts;
	uint64_t rnd;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Random bits instead of a process-wide counter: no shared state,
	 * and still unique across threads, forks and pid reuse. */
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
		    (uint64_t)(uintptr_t)&rnd;
	if (gethostname(host, sizeof(host)) == -1)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	/* '/' and ':' cannot appear in a base name, ',' would confuse the
	 * S= parser: escape them as octal the way Maildir writers do. */
	for (i = 0; host[i] != '\0'; i++) {
		if (host[i] == '/' || host[i] == ':' || host[i] == ',') {
			o += sprintf(o, "\\%03o", (unsigned char)host[i]);
		} else if ((unsigned char)host[i] > ' ' && host[i] != 0x7f) {
			*o++ = host[i];
		}
	}
	*o = '\0';
	return md_path(buf, size, "%lld.M%ldP%dR%016llx.%s", (long long)t,
	    ts.tv_nsec / 1000, (int)getpid(), (unsigned long long)rnd, clean);
}

int
md_parse_name(const char *name, struct maildir_msg *m)
{
	const char *colon = strchr(name, ':'), *p, *q, *end;
	int missing = 0;
	uint64_t v;

	m->base_len = colon ? (size_t)(colon - name) : strlen(name);
	end = name + m->base_len;
	m->flags = 0;
	m->keywords = 0;
	if (colon != NULL && colon[1] == '2' && colon[2] == ',') {
		for (p = colon + 3; *p != '\0'; p++) {
			if ((q = strchr(MD_FLAG_LETTERS, *p)) != NULL)
				m->flags |= 1u << (q - MD_FLAG_LETTERS);
			else if (*p >= 'a' && *p <= 'z')
				m->keywords |= 1u << (*p - 'a');
		}
	}
	m->size = m->vsize = 0;
	missing |= 1;
	for (p = name; p + 3 < end; p++) {
		if (p[0] != ',' || (p[1] != 'S' && p[1] != 'W') || p[2] != '=')
			continue;
		for (v = 0, q = p + 3; q < end && *q >= '0' && *q <= '9'; q++)
			v = v * 10 + (uint64_t)(*q - '0');
		if (q == p + 3)
			continue;
		if (p[1] == 'S') {
			m->size = v;
			missing &= ~1;
		} else {
			m->vsize = v;
		}
	}
	for (v = 0, p = name;
	     p < end && *p >= '0' && *p <= '9' && v < 1000000000000ull; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (p == name || *p != '.')
		missing |= 2;
	m->date = (time_t)v;
	return missing;
}

void
md_info(char *buf, unsigned int flags, uint32_t keywords)
{
	size_t i;

	*buf++ = ':';
	*buf++ = '2';
	*buf++ = ',';
	/* ASCII order: the upper-case flags, then keyword letters. */
	for (i = 0; MD_FLAG_LETTERS[i] != '\0'; i++)
		if (flags & (1u << i))
			*buf++ = MD_FLAG_LETTERS[i];
	for (i = 0; i < 26; i++)
		if (keywords & (1u << i))
			*buf++ = (char)('a' + i);
	*buf = '\0';
}

static int
mkdir_p(const char *path)
{
	char tmp[PATH_MAX], *p;

	if (md_path(tmp, sizeof(tmp), "%s", path) == -1)
		return -1;
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

int
md_make_maildir(const char *dir, bool subfolder)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char path[PATH_MAX];
	size_t i;
	int fd;

	if (mkdir_p(dir) == -1)
		return -1;
	for (i = 0; i < 3; i++) {
		if (md_path(path, sizeof(path), "%s/%s", dir, subs[i]) == -1)
			return -1;
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			return -1;
	}
	if (subfolder) {
		if (md_path(path, sizeof(path), "%s/" MD_FOLDER_MARKER, dir) ==
		    -1)
			return -1;
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd == -1)
			return -1;
		close(fd);
	}
	return 0;
}

bool
md_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
