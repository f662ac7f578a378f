/*
 * passdb.c - the passwd-file back-end: a Dovecot-compatible user file
 * loaded into an immutable in-memory table.
 *
 *   user:{SCHEME}hash:uid:gid:gecos:home:shell:extra fields
 *
 * Trailing fields may be left out; '#' starts a comment line; blank lines
 * are skipped. The extra field is the rest of the line (it may hold ':',
 * as IPv6 networks do) split on blanks into key=value pairs and bare
 * flags: host=, nologin, allow_nets=, quota=, alias= are understood, every
 * other field is kept for the caller. An RFC 5803 SCRAM password holds two
 * ':' of its own ("{SCRAM-SHA-256}SCRAM-SHA-256$i:salt$stored:server"),
 * so a password field starting that way spans them.
 *
 * Relies on: the whole file being read through one fd (the stat that
 * identifies the version is of that same fd), and on reference counts
 * (auth_ref) to keep a replaced table alive while any reader holds one of
 * its entries. A load parses into a fresh table and publishes it with a
 * pointer swap under a short mutex, so readers on other threads see the
 * whole old file or the whole new one, never a mix.
 *
 * Must never: publish a table that had any error (the file is refused as
 * a whole, naming file:line), keep a password in a log or warning, or let
 * a line longer than AUTH_PASSDB_LINE_MAX or holding a NUL byte in.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/auth_private.h"

#define PASSDB_MAX_ENTRIES 1000000
#define PASSDB_FILE_MAX (1024UL * 1024 * 1024)
#define SCRAM_RFC5803_TAG "{SCRAM-SHA-256}SCRAM-SHA-256$"

/* Where an entry's items start in the table-wide arrays while parsing;
 * the arrays move as they grow, so pointers are fixed up at the end. */
struct span {
	size_t nets, n_nets;
	size_t aliases, n_aliases;
	size_t fields, n_fields;
};

struct passdb_table {
	struct auth_ref ref; /* the table is the owner of all its entries */
	uint64_t version;
	char *text; /* the file, cut into NUL-terminated strings in place */

	struct auth_entry *entries;
	uint64_t *line_hash; /* per entry: did the record change? */
	struct span *spans;
	size_t n, cap;

	struct net *nets;
	size_t n_nets, cap_nets;
	const char **aliases;
	size_t n_aliases, cap_aliases;
	struct auth_field *fields;
	size_t n_fields, cap_fields;

	uint32_t *index; /* open addressing: entry number + 1, 0 = free */
	size_t index_mask;
	uint64_t seed;
};

/* What identifies one version of the file on disk. */
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool exists;
};

struct auth_passdb {
	struct auth_backend backend; /* first: the interface points here */
	char *path;
	size_t max_entries;
	bool allow_plaintext;
	void (*warn)(void *ctx, const char *msg);
	void *warn_ctx;
	int (*check_user)(void *ctx, const char *user, const char **reason_r);
	void *check_ctx;

	pthread_mutex_t lock; /* guards cur: swap, and grab + ref */
	struct passdb_table *cur;
	uint64_t version;
	struct file_id seen; /* the file as of the last load attempt */
};

/* Error text of the last failed load on this thread. */
static __thread char passdb_errbuf[512];

/* loading */
static int load(struct auth_passdb *db, const char **error_r);
static int read_file(const char *path, char **text_r, size_t *len_r,
    struct file_id *id, const char **error_r);
static int parse_text(struct auth_passdb *db, struct passdb_table *t,
    size_t len, const char **error_r);
static int parse_line(struct auth_passdb *db, struct passdb_table *t,
    char *line, unsigned lineno, const char **error_r);
static int parse_extra(struct passdb_table *t, struct auth_entry *e,
    struct span *sp, char *extra, const char **error_r);
static int parse_nets(struct passdb_table *t, struct span *sp, char *v,
    const char **error_r);
static int parse_aliases(struct passdb_table *t, struct span *sp, char *v,
    const char **error_r);
static int check_password(struct auth_passdb *db, const char *pw,
    const char *user, unsigned lineno, const char **error_r);
static char *next_field(char **p);
static char *password_field(char **p);
static int parse_id(const char *s, uint32_t *v_r, bool *has_r);
static const char *fail(const char *path, unsigned lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* table */
static struct passdb_table *table_new(uint64_t version);
static void table_release(struct auth_ref *ref);
static int index_add(struct passdb_table *t);
static void index_put(struct passdb_table *t, size_t i);
static int grow_entries(struct passdb_table *t);
static void table_unref(struct passdb_table *t);
static void table_fixup(struct passdb_table *t);
static void table_serials(struct passdb_table *t,
    const struct passdb_table *old);
static struct auth_entry *table_find(const struct passdb_table *t,
    const char *user);
static uint64_t name_hash(uint64_t seed, const char *s);
static uint64_t line_hash(const char *s, size_t n);
static int grow(void **arr, size_t *cap, size_t need, size_t size);
static struct passdb_table *current(struct auth_passdb *db);

/* back-end */
static enum auth_lookup passdb_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r);

static const struct auth_backend_ops passdb_ops = {
	.name = "passwd-file",
	.lookup_nonblocking = true,
	.lookup = passdb_lookup,
};

/* ---- public ----------------------------------------------------------- */

struct auth_passdb *
auth_passdb_new(const struct auth_passdb_conf *conf, const char **error_r)
{
	struct auth_passdb *db = calloc(1, sizeof(*db));

	if (db == NULL || (db->path = strdup(conf->path)) == NULL) {
		free(db);
		*error_r = "out of memory";
		return NULL;
	}
	db->backend.ops = &passdb_ops;
	db->max_entries = conf->max_entries ? conf->max_entries :
					      PASSDB_MAX_ENTRIES;
	db->allow_plaintext = conf->allow_plaintext;
	db->warn = conf->warn;
	db->warn_ctx = conf->warn_ctx;
	db->check_user = conf->check_user;
	db->check_ctx = conf->check_ctx;
	pthread_mutex_init(&db->lock, NULL);
	if (load(db, error_r) == -1) {
		auth_passdb_free(&db);
		return NULL;
	}
	return db;
}

void
auth_passdb_free(struct auth_passdb **dbp)
{
	struct auth_passdb *db = *dbp;

	if (db == NULL)
		return;
	*dbp = NULL;
	/* Entries still held elsewhere keep the table alive. */
	if (db->cur != NULL)
		table_unref(db->cur);
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
}

int
auth_passdb_reload(struct auth_passdb *db, const char **error_r)
{
	return load(db, error_r);
}

int
auth_passdb_changed(struct auth_passdb *db)
{
	struct stat st;

	if (stat(db->path, &st) == -1)
		return db->seen.exists ? 1 : 0;
	return !db->seen.exists || st.st_dev != db->seen.dev ||
	    st.st_ino != db->seen.ino || st.st_size != db->seen.size ||
	    st.st_mtim.tv_sec != db->seen.mtime.tv_sec ||
	    st.st_mtim.tv_nsec != db->seen.mtime.tv_nsec;
}

struct auth_backend *
auth_passdb_backend(struct auth_passdb *db)
{
	return &db->backend;
}

size_t
auth_passdb_count(struct auth_passdb *db)
{
	struct passdb_table *t = current(db);
	size_t n = t->n;

	table_unref(t);
	return n;
}

uint64_t
auth_passdb_version(struct auth_passdb *db)
{
	uint64_t v;

	pthread_mutex_lock(&db->lock);
	v = db->cur->version;
	pthread_mutex_unlock(&db->lock);
	return v;
}

/* ---- lookup ----------------------------------------------------------- */

/* The current table with a reference taken, under the lock so a swap
 * cannot free it between reading the pointer and counting. */
static struct passdb_table *
current(struct auth_passdb *db)
{
	struct passdb_table *t;

	pthread_mutex_lock(&db->lock);
	t = db->cur;
	atomic_fetch_add_explicit(&t->ref.refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&db->lock);
	return t;
}

static enum auth_lookup
passdb_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r)
{
	struct auth_passdb *db = (struct auth_passdb *)b;
	struct passdb_table *t = current(db);
	struct auth_entry *e = table_find(t, user);

	if (e == NULL) {
		table_unref(t);
		return AUTH_LOOKUP_NOTFOUND;
	}
	/* The table reference taken by current() becomes the entry's. */
	*entry_r = e;
	return AUTH_LOOKUP_FOUND;
}

/* ---- loading ---------------------------------------------------------- */

static int
load(struct auth_passdb *db, const char **error_r)
{
	struct passdb_table *t = table_new(db->version + 1), *old;
	struct file_id id = { 0 };
	size_t len;

	if (t == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	/* Remember what was tried, good or bad, so auth_passdb_changed()
	 * reports the next edit rather than the same broken file again. */
	if (read_file(db->path, &t->text, &len, &id, error_r) == -1) {
		db->seen = id;
		goto fail;
	}
	db->seen = id;
	if (parse_text(db, t, len, error_r) == -1)
		goto fail;
	table_fixup(t);
	if (db->cur != NULL)
		table_serials(t, db->cur);
	pthread_mutex_lock(&db->lock);
	old = db->cur;
	db->cur = t;
	db->version = t->version;
	pthread_mutex_unlock(&db->lock);
	if (old != NULL)
		table_unref(old);
	return 0;
fail:
	table_release(&t->ref);
	return -1;
}

static int
read_file(const char *path, char **text_r, size_t *len_r, struct file_id *id,
    const char **error_r)
{
	struct stat st;
	size_t off = 0;
	char *text = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		*error_r = fail(path, 0, "open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0)
		*id = (struct file_id){ .dev = st.st_dev,
			.ino = st.st_ino,
			.size = st.st_size,
			.mtime = st.st_mtim,
			.exists = true };
	if (!id->exists || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > PASSDB_FILE_MAX) {
		*error_r = fail(path, 0, "not a regular file under 1 GiB");
		goto fail;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
		*error_r = fail(path, 0, "out of memory");
		goto fail;
	}
	/* Read what fstat saw; a writer that does not use rename may still
	 * be appending, and the next change check will catch it. */
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, text + off, (size_t)st.st_size - off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			*error_r = fail(path, 0, "read: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	text[off] = '\0';
	close(fd);
	*text_r = text;
	*len_r = off;
	return 0;
fail:
	free(text);
	close(fd);
	return -1;
}

static int
parse_text(struct auth_passdb *db, struct passdb_table *t, size_t len,
    const char **error_r)
{
	char *p = t->text, *end = t->text + len;
	unsigned lineno = 0;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl ? nl : end, *s = p;
		size_t n = (size_t)(eol - p);

		lineno++;
		if (n > AUTH_PASSDB_LINE_MAX) {
			*error_r = fail(db->path, lineno, "line longer than %d",
			    AUTH_PASSDB_LINE_MAX);
			return -1;
		}
		if (memchr(p, '\0', n) != NULL) {
			*error_r = fail(db->path, lineno, "NUL byte");
			return -1;
		}
		if (n > 0 && eol[-1] == '\r')
			eol--;
		*eol = '\0';
		p = nl ? nl + 1 : end;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		if (t->n >= db->max_entries) {
			*error_r = fail(db->path, lineno, "more than %zu users",
			    db->max_entries);
			return -1;
		}
		if (grow_entries(t) == -1) {
			*error_r = fail(db->path, lineno, "out of memory");
			return -1;
		}
		t->line_hash[t->n] = line_hash(s, (size_t)(eol - s));
		if (parse_line(db, t, s, lineno, error_r) == -1)
			return -1;
		if (index_add(t) == -1) {
			*error_r = fail(db->path, lineno, "out of memory");
			return -1;
		}
		t->n++;
	}
	return 0;
}

/* One record into t->entries[t->n]. Byte-level, so it runs long but flat:
 * fields in file order. */
static int
parse_line(struct auth_passdb *db, struct passdb_table *t, char *line,
    unsigned lineno, const char **error_r)
{
	struct auth_entry *e = &t->entries[t->n];
	struct span *sp = &t->spans[t->n];
	char *p = line, *user, *pw, *uid, *gid;
	const char *err;

	memset(e, 0, sizeof(*e));
	memset(sp, 0, sizeof(*sp));
	user = next_field(&p);
	pw = password_field(&p);
	uid = next_field(&p);
	gid = next_field(&p);
	e->gecos = next_field(&p);
	e->home = next_field(&p);
	e->shell = next_field(&p);
	/* p is now the extra field: the rest of the line, ':' and all. */

	if (auth_user_normalize(user, strlen(user), user) == -1) {
		*error_r = fail(db->path, lineno, "invalid user name");
		return -1;
	}
	e->user = user;
	if (db->check_user != NULL &&
	    db->check_user(db->check_ctx, user, &err) == -1) {
		*error_r = fail(db->path, lineno, "user %s: %s", user, err);
		return -1;
	}
	if (table_find(t, user) != NULL) {
		*error_r = fail(db->path, lineno, "duplicate user %s", user);
		return -1;
	}
	if (*pw != '\0') {
		if (check_password(db, pw, user, lineno, error_r) == -1)
			return -1;
		e->password = pw;
	}
	if (parse_id(uid, &e->uid, &e->has_uid) == -1 ||
	    parse_id(gid, &e->gid, &e->has_gid) == -1) {
		*error_r = fail(db->path, lineno, "uid/gid is not a number");
		return -1;
	}
	if (parse_extra(t, e, sp, p, &err) == -1) {
		*error_r = fail(db->path, lineno, "%s", err);
		return -1;
	}
	e->owner = &t->ref;
	e->serial = t->version;
	return 0;
}

/* The scheme must be known and its body well formed enough to tell now;
 * a plaintext password while plaintext is off is kept but can never
 * verify, and the operator is told. */
static int
check_password(struct auth_passdb *db, const char *pw, const char *user,
    unsigned lineno, const char **error_r)
{
	struct sasl_scram_keys k;
	enum auth_scheme s;
	const char *err;
	char msg[AUTH_USER_MAX + 256];

	if (auth_scheme_of(pw, &s, &err) == -1) {
		*error_r = fail(db->path, lineno, "%s", err);
		return -1;
	}
	if (s == AUTH_SCHEME_SCRAM_SHA_256) {
		int r = sasl_scram_keys_parse(pw, strlen(pw), &k, &err);

		OPENSSL_cleanse(&k, sizeof(k));
		if (r == -1) {
			*error_r = fail(db->path, lineno, "%s", err);
			return -1;
		}
	}
	if (s == AUTH_SCHEME_PLAIN && !db->allow_plaintext && db->warn) {
		snprintf(msg, sizeof(msg),
		    "%s:%u: user %s has a plaintext password but plaintext "
		    "schemes are off: that user cannot log in",
		    db->path, lineno, user);
		db->warn(db->warn_ctx, msg);
	}
	return 0;
}

static int
parse_extra(struct passdb_table *t, struct auth_entry *e, struct span *sp,
    char *extra, const char **error_r)
{
	char *save = NULL, *tok;
	bool seen_host = false, seen_nets = false, seen_quota = false,
	     seen_alias = false;

	sp->nets = t->n_nets;
	sp->aliases = t->n_aliases;
	sp->fields = t->n_fields;
	for (tok = strtok_r(extra, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save)) {
		char *v = strchr(tok, '=');

		if (v != NULL)
			*v++ = '\0';
		if (*tok == '\0') {
			*error_r = "extra field with an empty name";
			return -1;
		}
		if (strcmp(tok, "nologin") == 0) {
			e->nologin = true;
		} else if (strcmp(tok, "host") == 0) {
			if (v == NULL || *v == '\0' || seen_host) {
				*error_r = "host= empty or given twice";
				return -1;
			}
			e->host = v;
			seen_host = true;
		} else if (strcmp(tok, "allow_nets") == 0) {
			if (v == NULL || seen_nets) {
				*error_r = "allow_nets= empty or given twice";
				return -1;
			}
			if (parse_nets(t, sp, v, error_r) == -1)
				return -1;
			seen_nets = true;
		} else if (strcmp(tok, "quota") == 0) {
			if (v == NULL || seen_quota ||
			    auth_size_parse(v, &e->quota) == -1) {
				*error_r = "quota= is not a size (e.g. 512M)";
				return -1;
			}
			e->has_quota = seen_quota = true;
		} else if (strcmp(tok, "alias") == 0) {
			if (v == NULL || seen_alias) {
				*error_r = "alias= empty or given twice";
				return -1;
			}
			if (parse_aliases(t, sp, v, error_r) == -1)
				return -1;
			seen_alias = true;
		} else {
			if (grow((void **)&t->fields, &t->cap_fields,
				t->n_fields + 1, sizeof(*t->fields)) == -1) {
				*error_r = "out of memory";
				return -1;
			}
			t->fields[t->n_fields++] =
			    (struct auth_field){ .key = tok, .value = v };
			sp->n_fields++;
		}
	}
	return 0;
}

static int
parse_nets(struct passdb_table *t, struct span *sp, char *v,
    const char **error_r)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(v, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (grow((void **)&t->nets, &t->cap_nets, t->n_nets + 1,
			sizeof(*t->nets)) == -1) {
			*error_r = "out of memory";
			return -1;
		}
		if (net_parse(tok, strlen(tok), &t->nets[t->n_nets]) == -1) {
			*error_r = "allow_nets= holds something that is not a "
				   "network (addr or addr/prefix, host bits 0)";
			return -1;
		}
		t->n_nets++;
		sp->n_nets++;
	}
	if (sp->n_nets == 0) {
		*error_r = "allow_nets= is empty";
		return -1;
	}
	return 0;
}

static int
parse_aliases(struct passdb_table *t, struct span *sp, char *v,
    const char **error_r)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(v, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (auth_user_normalize(tok, strlen(tok), tok) == -1) {
			*error_r = "alias= holds an invalid address";
			return -1;
		}
		if (grow((void **)&t->aliases, &t->cap_aliases,
			t->n_aliases + 1, sizeof(*t->aliases)) == -1) {
			*error_r = "out of memory";
			return -1;
		}
		t->aliases[t->n_aliases++] = tok;
		sp->n_aliases++;
	}
	if (sp->n_aliases == 0) {
		*error_r = "alias= is empty";
		return -1;
	}
	return 0;
}

/* Cut the next ':'-separated field off *p. At the end of the line every
 * further field is "". */
static char *
next_field(char **p)
{
	char *f = *p, *c = strchr(f, ':');

	if (c == NULL) {
		*p = f + strlen(f);
		return f;
	}
	*c = '\0';
	*p = c + 1;
	return f;
}

/* Like next_field(), but an RFC 5803 SCRAM password keeps its two ':'. */
static char *
password_field(char **p)
{
	char *f = *p, *c;

	if (strncasecmp(f, SCRAM_RFC5803_TAG, strlen(SCRAM_RFC5803_TAG)) != 0)
		return next_field(p);
	c = f;
	for (int i = 0; i < 3 && c != NULL; i++)
		c = strchr(c + (i > 0), ':');
	if (c == NULL) {
		*p = f + strlen(f);
		return f;
	}
	*c = '\0';
	*p = c + 1;
	return f;
}

/* Empty means "not set"; otherwise a decimal uid or gid. */
static int
parse_id(const char *s, uint32_t *v_r, bool *has_r)
{
	*has_r = false;
	if (*s == '\0')
		return 0;
	if (auth_u32_parse(s, strlen(s), UINT32_MAX, v_r) == -1)
		return -1;
	*has_r = true;
	return 0;
}

static const char *
fail(const char *path, unsigned lineno, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (lineno > 0)
		n = snprintf(passdb_errbuf, sizeof(passdb_errbuf),
		    "%s:%u: ", path, lineno);
	else
		n = snprintf(passdb_errbuf, sizeof(passdb_errbuf),
		    "%s: ", path);
	if (n < 0 || (size_t)n >= sizeof(passdb_errbuf))
		return passdb_errbuf;
	va_start(ap, fmt);
	vsnprintf(passdb_errbuf + n, sizeof(passdb_errbuf) - (size_t)n, fmt,
	    ap);
	va_end(ap);
	return passdb_errbuf;
}

/* ---- table ------------------------------------------------------------ */

static struct passdb_table *
table_new(uint64_t version)
{
	struct passdb_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	auth_ref_init(&t->ref, table_release);
	t->version = version;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) !=
	    sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ version;
	return t;
}

/* Runs when the last entry of a replaced table is dropped. The text holds
 * password hashes: wipe it. */
static void
table_release(struct auth_ref *ref)
{
	struct passdb_table *t = (struct passdb_table *)ref;

	if (t->text != NULL) {
		OPENSSL_cleanse(t->text, strlen(t->text));
		free(t->text);
	}
	free(t->entries);
	free(t->line_hash);
	free(t->spans);
	free(t->nets);
	free(t->aliases);
	free(t->fields);
	free(t->index);
	free(t);
}

/* Index entries[0..t->n] (the one just parsed included), doubling the
 * index when it would pass half full. Done while parsing so the duplicate
 * check of each line sees every line before it. */
static int
index_add(struct passdb_table *t)
{
	size_t size = t->index_mask + 1;

	if (t->index == NULL || (t->n + 1) * 2 > size) {
		uint32_t *old = t->index;

		size = t->index ? size * 2 : 16;
		if ((t->index = calloc(size, sizeof(*t->index))) == NULL) {
			t->index = old;
			return -1;
		}
		free(old);
		t->index_mask = size - 1;
		for (size_t i = 0; i < t->n; i++)
			index_put(t, i);
	}
	index_put(t, t->n);
	return 0;
}

static void
index_put(struct passdb_table *t, size_t i)
{
	size_t h = name_hash(t->seed, t->entries[i].user) & t->index_mask;

	while (t->index[h] != 0)
		h = (h + 1) & t->index_mask;
	t->index[h] = (uint32_t)(i + 1);
}

static void
table_fixup(struct passdb_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct auth_entry *e = &t->entries[i];
		const struct span *sp = &t->spans[i];

		e->allow_nets = sp->n_nets ? &t->nets[sp->nets] : NULL;
		e->n_allow_nets = sp->n_nets;
		e->aliases = sp->n_aliases ? &t->aliases[sp->aliases] : NULL;
		e->n_aliases = sp->n_aliases;
		e->fields = sp->n_fields ? &t->fields[sp->fields] : NULL;
		e->n_fields = sp->n_fields;
	}
}

/* A user whose line did not change keeps its serial across a reload, so
 * cached logins survive an unrelated edit. The password is compared
 * exactly; the line hash catches everything else. */
static void
table_serials(struct passdb_table *t, const struct passdb_table *old)
{
	for (size_t i = 0; i < t->n; i++) {
		struct auth_entry *e = &t->entries[i];
		const struct auth_entry *o = table_find(old, e->user);
		bool same_pw;

		if (o == NULL)
			continue;
		same_pw = (e->password == NULL && o->password == NULL) ||
		    (e->password != NULL && o->password != NULL &&
			strcmp(e->password, o->password) == 0);
		if (same_pw &&
		    t->line_hash[i] == old->line_hash[o - old->entries])
			e->serial = o->serial;
	}
}

static struct auth_entry *
table_find(const struct passdb_table *t, const char *user)
{
	size_t h;

	if (t->index == NULL)
		return NULL;
	h = name_hash(t->seed, user) & t->index_mask;
	while (t->index[h] != 0) {
		struct auth_entry *e = &t->entries[t->index[h] - 1];

		if (strcmp(e->user, user) == 0)
			return e;
		h = (h + 1) & t->index_mask;
	}
	return NULL;
}

/* FNV-1a with a per-table seed: user names in lookups come from clients. */
static uint64_t
name_hash(uint64_t seed, const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

static uint64_t
line_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int
grow_entries(struct passdb_table *t)
{
	size_t cap = t->cap;
	void *p;

	if (grow((void **)&t->entries, &cap, t->n + 1, sizeof(*t->entries)) ==
	    -1)
		return -1;
	if (cap == t->cap)
		return 0;
	/* The side arrays follow the entries' capacity. */
	if ((p = realloc(t->line_hash, cap * sizeof(*t->line_hash))) == NULL)
		return -1;
	t->line_hash = p;
	if ((p = realloc(t->spans, cap * sizeof(*t->spans))) == NULL)
		return -1;
	t->spans = p;
	t->cap = cap;
	return 0;
}

static void
table_unref(struct passdb_table *t)
{
	if (atomic_fetch_sub_explicit(&t->ref.refs, 1, memory_order_acq_rel) ==
	    1)
		t->ref.release(&t->ref);
}

static int
grow(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(*arr, ncap * size)) == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}
