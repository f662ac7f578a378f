/*
 * spool.c - the durable relay spool (backend/spool.h): queue entries as
 * a message file and an envelope file, written so that a crash at any
 * point leaves a whole entry or none, and read back by the queue runner.
 *
 * Relies on rename(2) being atomic within a file system and on fsync of
 * a directory making the names in it durable; tmp/, msg/ and env/ must
 * therefore sit on one file system (they are subdirectories of one
 * spool). Plain blocking file I/O: store-pool threads and start-up only,
 * never a loop thread. Must never: make an envelope visible before its
 * message file is durable, or leave a half-written file under a final
 * name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/spool.h"
#include "store/maildir.h"

#define ENV_MAGIC "ringstore-spool 1"
#define ENV_FILE_MAX (32u << 20)
#define COPY_CHUNK (64u << 10)

struct spool {
	char *dir;
	int dfd, tmp, msg, env; /* directory fds */
	void (*notify)(void *arg);
	void *notify_arg;
};

static const char *const state_names[] = { "pending", "sent", "failed",
	"bounced" };

/* files and directories */
static int open_subdir(int dfd, const char *name, const char **error_r);
static void clean_tmp(struct spool *sp);
static void clean_orphans(struct spool *sp);
static int copy_fd(int out, int in);
static int write_msg(struct spool *sp, const struct spool_msg *m,
    const char *tmpname);
static int put_file(struct spool *sp, int dir, const char *tmpname,
    const char *name, const void *p, size_t n);
static void make_id(char *id);
static bool valid_id(const char *s);

/* envelope text */
struct text {
	char *p;
	size_t len, cap;
};
static int text_add(struct text *t, const char *s, size_t n);
static int text_printf(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int text_enc(struct text *t, const char *s);
static int entry_format(const struct spool_entry *e, struct text *t);
static bool addr_ok(const char *s);
static char *dec_field(const char **pp, const char *end);
static int parse_rcpt(const char *p, const char *end, struct spool_rcpt *r);

/* ---- opening and start-up clean-up -------------------------------- */

static int
open_subdir(int dfd, const char *name, const char **error_r)
{
	int fd;

	if (mkdirat(dfd, name, 0700) == -1 && errno != EEXIST) {
		*error_r = "cannot create a spool subdirectory";
		return -1;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		*error_r = "cannot open a spool subdirectory";
	return fd;
}

static int open_spool(const char *dir, bool clean, struct spool **sp_r,
    const char **error_r);

/* mkdir -p: the mail root itself may not exist yet at first start. */
static int
mkdir_parents(const char *dir)
{
	char *p = strdup(dir);

	if (p == NULL)
		return -1;
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	return mkdir(dir, 0700) == -1 && errno != EEXIST ? -1 : 0;
}

int
spool_open(const char *dir, struct spool **sp_r, const char **error_r)
{
	return open_spool(dir, true, sp_r, error_r);
}

int
spool_attach(const char *dir, struct spool **sp_r, const char **error_r)
{
	return open_spool(dir, false, sp_r, error_r);
}

static int
open_spool(const char *dir, bool clean, struct spool **sp_r,
    const char **error_r)
{
	struct spool *sp = calloc(1, sizeof(*sp));

	if (sp == NULL || (sp->dir = strdup(dir)) == NULL) {
		free(sp);
		*error_r = "out of memory";
		return -1;
	}
	sp->dfd = sp->tmp = sp->msg = sp->env = -1;
	if (mkdir_parents(dir) == -1) {
		*error_r = "cannot create the spool directory";
		goto fail;
	}
	sp->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dfd == -1) {
		*error_r = "cannot open the spool directory";
		goto fail;
	}
	if ((sp->tmp = open_subdir(sp->dfd, "tmp", error_r)) == -1 ||
	    (sp->msg = open_subdir(sp->dfd, "msg", error_r)) == -1 ||
	    (sp->env = open_subdir(sp->dfd, "env", error_r)) == -1)
		goto fail;
	if (fsync(sp->dfd) == -1) {
		*error_r = "cannot fsync the spool directory";
		goto fail;
	}
	if (clean) {
		clean_tmp(sp);
		clean_orphans(sp);
	}
	*sp_r = sp;
	return 0;
fail:
	spool_free(&sp);
	return -1;
}

void
spool_free(struct spool **spp)
{
	struct spool *sp = *spp;

	if (sp == NULL)
		return;
	*spp = NULL;
	if (sp->dfd != -1)
		close(sp->dfd);
	if (sp->tmp != -1)
		close(sp->tmp);
	if (sp->msg != -1)
		close(sp->msg);
	if (sp->env != -1)
		close(sp->env);
	free(sp->dir);
	free(sp);
}

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

/* Whatever is in tmp/ at start-up was being written when the process
 * died: nobody was told it was queued. */
static void
clean_tmp(struct spool *sp)
{
	int fd = dup(sp->tmp);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (d == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			(void)unlinkat(sp->tmp, de->d_name, 0);
	closedir(d);
}

/* A message whose envelope never reached env/ (a crash between the two
 * renames): no entry, nobody answered 250 for it. */
static void
clean_orphans(struct spool *sp)
{
	int fd = dup(sp->msg);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *de;
	struct stat st;
	bool removed = false;

	if (d == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(sp->env, de->d_name, &st, 0) == -1 &&
		    errno == ENOENT) {
			(void)unlinkat(sp->msg, de->d_name, 0);
			removed = true;
		}
	}
	closedir(d);
	if (removed)
		(void)fsync(sp->msg);
}

/* ---- writing ------------------------------------------------------- */

/* in from offset 0 to EOF, whatever its current offset. */
static int
copy_fd(int out, int in)
{
	char *b = malloc(COPY_CHUNK);
	off_t off = 0;
	int rc = -1;

	if (b == NULL)
		return -1;
	for (;;) {
		ssize_t r = pread(in, b, COPY_CHUNK, off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			break;
		if (r == 0) {
			rc = 0;
			break;
		}
		if (maildir_write_all(out, b, (size_t)r) == -1)
			break;
		off += r;
	}
	free(b);
	return rc;
}

static int
write_msg(struct spool *sp, const struct spool_msg *m, const char *tmpname)
{
	int fd = openat(sp->tmp, tmpname,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int in = -1, rc = -1, saved;

	if (fd == -1)
		return -1;
	if (m->prefix_len > 0 &&
	    maildir_write_all(fd, m->prefix, m->prefix_len) == -1)
		goto out;
	if (m->fd >= 0) {
		if (copy_fd(fd, m->fd) == -1)
			goto out;
	} else if (m->path != NULL) {
		if ((in = open(m->path, O_RDONLY | O_CLOEXEC)) == -1 ||
		    copy_fd(fd, in) == -1)
			goto out;
	} else if (m->len > 0 && maildir_write_all(fd, m->data, m->len) == -1) {
		goto out;
	}
	rc = fsync(fd);
out:
	saved = errno;
	if (in != -1)
		close(in);
	if (close(fd) == -1 && rc == 0) {
		saved = errno;
		rc = -1;
	}
	errno = saved;
	return rc;
}

/* p[0..n) durably under dir/name, through tmp/tmpname. */
static int
put_file(struct spool *sp, int dir, const char *tmpname, const char *name,
    const void *p, size_t n)
{
	int fd = openat(sp->tmp, tmpname,
	    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int saved;

	if (fd == -1)
		return -1;
	if (maildir_write_all(fd, p, n) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		(void)unlinkat(sp->tmp, tmpname, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1 || renameat(sp->tmp, tmpname, dir, name) == -1) {
		saved = errno;
		(void)unlinkat(sp->tmp, tmpname, 0);
		errno = saved;
		return -1;
	}
	return fsync(dir);
}

/* 8 hex digits of seconds (ids sort by arrival) and 48 random bits. */
static void
make_id(char *id)
{
	unsigned char r[6];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n > 0)
			got += (size_t)n;
		else if (errno != EINTR)
			break; /* cannot happen after boot; time still differs */
	}
	snprintf(id, SPOOL_ID_LEN + 1, "%08" PRIx32 "%02x%02x%02x%02x%02x%02x",
	    (uint32_t)time(NULL), r[0], r[1], r[2], r[3], r[4], r[5]);
}

static bool
valid_id(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == SPOOL_ID_LEN;
}

/* An envelope address: bounded, and no byte that would let it end a
 * line in the SMTP commands it goes into. */
static bool
addr_ok(const char *s)
{
	size_t n = strnlen(s, SPOOL_ADDR_MAX + 1);

	if (n > SPOOL_ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

int
spool_put(struct spool *sp, const struct spool_msg *m, char *id_r,
    const char **error_r)
{
	struct spool_entry e = { 0 };
	struct text t = { 0 };
	char id[SPOOL_ID_LEN + 1], tmsg[SPOOL_ID_LEN + 8],
	    tenv[SPOOL_ID_LEN + 8];
	int saved;

	if (m->nrcpts == 0 || m->nrcpts > SPOOL_RCPTS_MAX ||
	    m->sender == NULL || !addr_ok(m->sender) ||
	    (m->user != NULL && !addr_ok(m->user))) {
		*error_r = "bad envelope";
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i][0] == '\0' || !addr_ok(m->rcpts[i])) {
			*error_r = "bad recipient";
			errno = EINVAL;
			return -1;
		}
	make_id(id);
	snprintf(tmsg, sizeof(tmsg), "%s.msg", id);
	snprintf(tenv, sizeof(tenv), "%s.env", id);
	if ((e.rcpts = calloc(m->nrcpts, sizeof(*e.rcpts))) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	memcpy(e.id, id, sizeof(id));
	e.user = (char *)m->user;
	e.sender = (char *)m->sender;
	e.arrival = e.next = time(NULL);
	e.nrcpts = m->nrcpts;
	for (size_t i = 0; i < m->nrcpts; i++)
		e.rcpts[i].addr = (char *)m->rcpts[i];
	if (entry_format(&e, &t) == -1) {
		free(e.rcpts);
		free(t.p);
		*error_r = "out of memory";
		return -1;
	}
	free(e.rcpts);
	/* the message first, durable under its final name ... */
	if (write_msg(sp, m, tmsg) == -1) {
		saved = errno;
		(void)unlinkat(sp->tmp, tmsg, 0);
		*error_r = "cannot write the message file";
		goto fail;
	}
	if (renameat(sp->tmp, tmsg, sp->msg, id) == -1 ||
	    fsync(sp->msg) == -1) {
		saved = errno;
		(void)unlinkat(sp->tmp, tmsg, 0);
		(void)unlinkat(sp->msg, id, 0);
		*error_r = "cannot move the message file into msg/";
		goto fail;
	}
	/* ... then the envelope, which makes the entry exist */
	if (put_file(sp, sp->env, tenv, id, t.p, t.len) == -1) {
		saved = errno;
		/* the rename may have happened: an entry the caller will
		 * refuse must not be delivered */
		(void)unlinkat(sp->env, id, 0);
		(void)unlinkat(sp->msg, id, 0);
		*error_r = "cannot write the envelope file";
		goto fail;
	}
	free(t.p);
	memcpy(id_r, id, sizeof(id));
	if (sp->notify != NULL)
		sp->notify(sp->notify_arg);
	return 0;
fail:
	free(t.p);
	errno = saved;
	return -1;
}

/* ---- the runner's side --------------------------------------------- */

void
spool_set_notify(struct spool *sp, void (*fn)(void *arg), void *arg)
{
	sp->notify = fn;
	sp->notify_arg = arg;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

int
spool_list(struct spool *sp, char (**ids_r)[SPOOL_ID_LEN + 1], size_t *n_r,
    const char **error_r)
{
	int fd = dup(sp->env);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	char(*ids)[SPOOL_ID_LEN + 1] = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (d == NULL) {
		if (fd != -1)
			close(fd);
		*error_r = "cannot read the spool's env/";
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!valid_id(de->d_name))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *q = realloc(ids, nc * sizeof(*ids));

			if (q == NULL) {
				free(ids);
				closedir(d);
				*error_r = "out of memory";
				return -1;
			}
			ids = q;
			cap = nc;
		}
		memcpy(ids[n++], de->d_name, SPOOL_ID_LEN + 1);
	}
	closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof(*ids), cmp_id);
	*ids_r = ids;
	*n_r = n;
	return 0;
}

int
spool_load(struct spool *sp, const char *id, struct spool_entry *e,
    const char **error_r)
{
	int fd;
	struct stat st;
	char *b;
	ssize_t r;
	size_t got = 0;

	memset(e, 0, sizeof(*e));
	if (!valid_id(id)) {
		errno = EINVAL;
		*error_r = "bad queue id";
		return -1;
	}
	if ((fd = openat(sp->env, id, O_RDONLY | O_CLOEXEC)) == -1) {
		*error_r = "cannot open the envelope";
		return -1;
	}
	if (fstat(fd, &st) == -1 || st.st_size > ENV_FILE_MAX ||
	    (b = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		errno = EINVAL;
		*error_r = "cannot read the envelope";
		return -1;
	}
	while (got < (size_t)st.st_size &&
	    ((r = read(fd, b + got, (size_t)st.st_size - got)) > 0 ||
		(r == -1 && errno == EINTR)))
		if (r > 0)
			got += (size_t)r;
	close(fd);
	if (spool_entry_parse(b, got, e) == -1 || strcmp(e->id, id) != 0) {
		free(b);
		spool_entry_free(e);
		errno = EINVAL;
		*error_r = "the envelope does not parse";
		return -1;
	}
	free(b);
	if (fstatat(sp->msg, id, &st, 0) == -1) {
		spool_entry_free(e);
		*error_r = "the message file is missing";
		return -1;
	}
	e->size = (uint64_t)st.st_size;
	return 0;
}

void
spool_entry_free(struct spool_entry *e)
{
	for (size_t i = 0; i < e->nrcpts; i++)
		free(e->rcpts[i].addr);
	free(e->rcpts);
	free(e->user);
	free(e->sender);
	memset(e, 0, sizeof(*e));
}

int
spool_open_msg(struct spool *sp, const char *id)
{
	if (!valid_id(id)) {
		errno = EINVAL;
		return -1;
	}
	return openat(sp->msg, id, O_RDONLY | O_CLOEXEC);
}

int
spool_update(struct spool *sp, const struct spool_entry *e,
    const char **error_r)
{
	struct text t = { 0 };
	char tenv[SPOOL_ID_LEN + 8];
	int rc;

	if (!valid_id(e->id)) {
		errno = EINVAL;
		*error_r = "bad queue id";
		return -1;
	}
	if (entry_format(e, &t) == -1) {
		free(t.p);
		*error_r = "out of memory";
		return -1;
	}
	snprintf(tenv, sizeof(tenv), "%s.upd", e->id);
	rc = put_file(sp, sp->env, tenv, e->id, t.p, t.len);
	free(t.p);
	if (rc == -1)
		*error_r = "cannot write the envelope file";
	return rc;
}

int
spool_remove(struct spool *sp, const char *id, const char **error_r)
{
	if (!valid_id(id)) {
		errno = EINVAL;
		*error_r = "bad queue id";
		return -1;
	}
	if (unlinkat(sp->env, id, 0) == -1 && errno != ENOENT) {
		*error_r = "cannot remove the envelope";
		return -1;
	}
	(void)unlinkat(sp->msg, id, 0);
	if (fsync(sp->env) == -1) {
		*error_r = "cannot fsync env/";
		return -1;
	}
	return 0;
}

bool
spool_entry_done(const struct spool_entry *e)
{
	for (size_t i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].state != SPOOL_RCPT_SENT &&
		    e->rcpts[i].state != SPOOL_RCPT_BOUNCED)
			return false;
	return true;
}

/* ---- the envelope's text form ---------------------------------------
 *
 *   ringstore-spool 1
 *   id 6750a1b29f3c0e1a77b2
 *   user <bob@example.org>          (<> : none)
 *   sender <bob@example.org>        (<> : null sender)
 *   arrival 1733500000
 *   next 1733500060
 *   attempts 1
 *   rcpt pending - <x@remote.example> <>
 *   rcpt failed 5.1.1 <y@remote.example> <550 5.1.1 no such user>
 *
 * A value in <> is percent-encoded: '%', '<', '>', controls, space and
 * DEL are %XX, so any byte survives and no value can end a line. */

static int
text_add(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t nc = t->cap ? t->cap : 512;
		char *q;

		while (nc < t->len + n + 1)
			nc *= 2;
		if ((q = realloc(t->p, nc)) == NULL)
			return -1;
		t->p = q;
		t->cap = nc;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
	return 0;
}

static int
text_printf(struct text *t, const char *fmt, ...)
{
	char b[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(b))
		return -1;
	return text_add(t, b, (size_t)n);
}

static int
text_enc(struct text *t, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	if (text_add(t, "<", 1) == -1)
		return -1;
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (c <= 0x20 || c == 0x7f || c == '%' || c == '<' ||
		    c == '>') {
			if (text_add(t, e, 3) == -1)
				return -1;
		} else if (text_add(t, s, 1) == -1) {
			return -1;
		}
	}
	return text_add(t, ">", 1);
}

int
spool_entry_format(const struct spool_entry *e, char **out_r, size_t *len_r)
{
	struct text t = { 0 };

	if (entry_format(e, &t) == -1) {
		free(t.p);
		return -1;
	}
	*out_r = t.p;
	*len_r = t.len;
	return 0;
}

static int
entry_format(const struct spool_entry *e, struct text *t)
{
	if (text_printf(t, "%s\nid %s\nuser ", ENV_MAGIC, e->id) == -1 ||
	    text_enc(t, e->user) == -1 || text_add(t, "\nsender ", 8) == -1 ||
	    text_enc(t, e->sender) == -1 ||
	    text_printf(t, "\narrival %lld\nnext %lld\nattempts %u\n",
		(long long)e->arrival, (long long)e->next, e->attempts) == -1)
		return -1;
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct spool_rcpt *r = &e->rcpts[i];

		if (text_printf(t, "rcpt %s %s ", state_names[r->state],
			r->status[0] ? r->status : "-") == -1 ||
		    text_enc(t, r->addr) == -1 || text_add(t, " ", 1) == -1 ||
		    text_enc(t, r->reply) == -1 || text_add(t, "\n", 1) == -1)
			return -1;
	}
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "<...>" at *pp: the decoded value (malloc'd), *pp after the '>'. */
static char *
dec_field(const char **pp, const char *end)
{
	const char *p = *pp, *close;
	char *out, *o;

	if (p >= end || *p != '<')
		return NULL;
	p++;
	if ((close = memchr(p, '>', (size_t)(end - p))) == NULL ||
	    (out = malloc((size_t)(close - p) + 1)) == NULL)
		return NULL;
	for (o = out; p < close; p++) {
		unsigned char c = (unsigned char)*p;

		/* the writer encodes these: a raw one is not our file */
		if (c <= 0x20 || c == 0x7f || c == '<') {
			free(out);
			return NULL;
		}
		if (*p == '%') {
			int h, l;

			if (close - p < 3 || (h = hexval(p[1])) < 0 ||
			    (l = hexval(p[2])) < 0 || (h == 0 && l == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(h << 4 | l);
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	*pp = close + 1;
	return out;
}

/* A reply goes into a DSN's fields: no line break or other control
 * byte but a tab, and within the bound. */
static bool
reply_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > SPOOL_REPLY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f)
			return false;
	return true;
}

/* "<state> <status> <addr> <reply>" */
static int
parse_rcpt(const char *p, const char *end, struct spool_rcpt *r)
{
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	char *reply;
	unsigned st;
	size_t n;

	if (sp == NULL)
		return -1;
	for (st = 0; st < 4; st++)
		if ((size_t)(sp - p) == strlen(state_names[st]) &&
		    memcmp(p, state_names[st], (size_t)(sp - p)) == 0)
			break;
	if (st == 4)
		return -1;
	r->state = st;
	p = sp + 1;
	if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL ||
	    (n = (size_t)(sp - p)) == 0 || n >= sizeof(r->status))
		return -1;
	if (!(n == 1 && *p == '-')) {
		/* an RFC 3463 code: digits and dots */
		for (size_t i = 0; i < n; i++)
			if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '.'))
				return -1;
		memcpy(r->status, p, n);
	}
	r->status[n == 1 && *p == '-' ? 0 : n] = '\0';
	p = sp + 1;
	if ((r->addr = dec_field(&p, end)) == NULL)
		return -1;
	if (p >= end || *p++ != ' ' || (reply = dec_field(&p, end)) == NULL)
		return -1;
	if (!reply_ok(reply)) {
		free(reply);
		return -1;
	}
	snprintf(r->reply, sizeof(r->reply), "%s", reply);
	free(reply);
	return p == end && r->addr[0] != '\0' && addr_ok(r->addr) ? 0 : -1;
}

/* Strict: every line known, each header once in its place, rcpt last;
 * a file that does not parse is not guessed at. */
int
spool_entry_parse(const char *p, size_t n, struct spool_entry *e)
{
	const char *end = p + n, *line = p;
	unsigned have = 0;
	size_t cap = 0;

	memset(e, 0, sizeof(*e));
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *v;
		long long x;
		char num[24];
		size_t vl;

		if (nl == NULL)
			goto fail; /* a file always ends with a LF */
		v = memchr(line, ' ', (size_t)(nl - line));
		v = v ? v + 1 : nl;
		vl = (size_t)(nl - v);
#define KEY(k)                                                                 \
	((size_t)(v - line) == sizeof(k) && memcmp(line, k " ", sizeof(k)) == 0)
		if (have == 0) {
			if ((size_t)(nl - line) != strlen(ENV_MAGIC) ||
			    memcmp(line, ENV_MAGIC, strlen(ENV_MAGIC)) != 0)
				goto fail;
			have = 1;
		} else if (have == 1 && KEY("id")) {
			if (vl != SPOOL_ID_LEN)
				goto fail;
			memcpy(e->id, v, vl);
			e->id[vl] = '\0';
			if (!valid_id(e->id))
				goto fail;
			have = 2;
		} else if (have == 2 && KEY("user")) {
			const char *q = v;

			if ((e->user = dec_field(&q, nl)) == NULL || q != nl ||
			    !addr_ok(e->user))
				goto fail;
			if (e->user[0] == '\0') {
				free(e->user);
				e->user = NULL;
			}
			have = 3;
		} else if (have == 3 && KEY("sender")) {
			const char *q = v;

			if ((e->sender = dec_field(&q, nl)) == NULL ||
			    q != nl || !addr_ok(e->sender))
				goto fail;
			have = 4;
		} else if (have >= 4 && have <= 6 &&
		    (KEY("arrival") || KEY("next") || KEY("attempts"))) {
			char *ep;

			if (vl == 0 || vl >= sizeof(num))
				goto fail;
			memcpy(num, v, vl);
			num[vl] = '\0';
			if (num[0] < '0' || num[0] > '9')
				goto fail;
			errno = 0;
			x = strtoll(num, &ep, 10);
			if (*ep != '\0' || errno != 0)
				goto fail;
			if (have == 4 && KEY("arrival"))
				e->arrival = (time_t)x;
			else if (have == 5 && KEY("next"))
				e->next = (time_t)x;
			else if (have == 6 && KEY("attempts") && x <= 1000000)
				e->attempts = (unsigned)x;
			else
				goto fail;
			have++;
		} else if (have == 7 && KEY("rcpt")) {
			if (e->nrcpts == SPOOL_RCPTS_MAX)
				goto fail;
			if (e->nrcpts == cap) {
				size_t nc = cap ? cap * 2 : 4;
				void *q = realloc(e->rcpts,
				    nc * sizeof(*e->rcpts));

				if (q == NULL)
					goto fail;
				e->rcpts = q;
				cap = nc;
			}
			memset(&e->rcpts[e->nrcpts], 0, sizeof(*e->rcpts));
			if (parse_rcpt(v, nl, &e->rcpts[e->nrcpts]) == -1) {
				free(e->rcpts[e->nrcpts].addr);
				goto fail;
			}
			e->nrcpts++;
		} else {
			goto fail;
		}
#undef KEY
		line = nl + 1;
	}
	if (have != 7 || e->nrcpts == 0)
		goto fail;
	return 0;
fail:
	spool_entry_free(e);
	return -1;
}
