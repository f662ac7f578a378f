/*
 * maildir_cache.c - per-process snapshots of synced folder views, so that
 * opening an unchanged folder skips the directory scans and the UID list.
 *
 * A snapshot is the view a sync built (UIDs, flags, sizes, dates, file
 * names; never \Recent, which belongs to a session) with the identity of
 * new/, cur/ and the UID list as stat()ed BEFORE that sync's scan. It is
 * used while all three still stat the same; any entry added, renamed or
 * removed in a directory moves its mtime, and the UID list is only ever
 * replaced by a rename, which gives it a new inode. Coarse timestamps are
 * the catch: a change in the same clock tick as the scan can leave mtime
 * where it was, so maildir.c stores only scans of directories that had
 * not changed for settle_ns before the scan started (md_cache_settled).
 * docs/backend.md spells the argument out.
 *
 * Snapshots are immutable once stored and reference counted, so the copy
 * out happens outside the mutex; the mutex guards the LRU list and the
 * counters only. The cache holds no file descriptors and never touches
 * the disk itself; it must never hand out a view whose identity check
 * failed, nor keep more than max_entries snapshots or max_bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/maildir_private.h"

/* The ctime margin (see md_cache_settled): ten 100 Hz ticks. */
#define CTIME_SETTLE_NS (100 * 1000000LL)

struct snapshot {
	char *dir;
	uint32_t hash;
	struct md_folder_id id;
	struct md_view view;
	size_t bytes;  /* what it counts against max_bytes */
	unsigned refs; /* the cache's own (while listed) + copiers */
	struct snapshot *prev, *next; /* LRU: head is the newest */
};

struct maildir_cache {
	pthread_mutex_t mutex;
	size_t max_entries, max_bytes;
	int64_t settle_ns;
	struct snapshot *head, *tail;
	struct maildir_cache_stats st; /* entries and bytes kept current */
};

/* Identity */
static bool folder_id_equal(const struct md_folder_id *a,
    const struct md_folder_id *b);
static int64_t ts_ns(const struct timespec *ts);

/* Snapshots */
static uint32_t hash_dir(const char *dir);
static struct snapshot *snap_new(const char *dir, const struct md_folder_id *id,
    const struct md_view *view);
static void snap_unref(struct snapshot *s);
static int view_copy(const struct md_view *from, struct md_view *to);

/* LRU, under the mutex */
static struct snapshot *lru_find(struct maildir_cache *c, const char *dir,
    uint32_t hash);
static void lru_unlink(struct maildir_cache *c, struct snapshot *s);
static void lru_push(struct maildir_cache *c, struct snapshot *s);
static void lru_drop(struct maildir_cache *c, struct snapshot *s);

/* ---- identity ---- */

void
md_file_id(const struct stat *st, struct md_file_id *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

bool
md_file_id_equal(const struct md_file_id *a, const struct md_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec &&
	    a->ctime.tv_sec == b->ctime.tv_sec &&
	    a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static bool
folder_id_equal(const struct md_folder_id *a, const struct md_folder_id *b)
{
	return md_file_id_equal(&a->new_dir, &b->new_dir) &&
	    md_file_id_equal(&a->cur_dir, &b->cur_dir) &&
	    md_file_id_equal(&a->list, &b->list);
}

static int64_t
ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int
md_file_id_read(const char *dir, const char *name, struct md_file_id *id)
{
	char path[PATH_MAX];
	struct stat st;

	if (md_path(path, sizeof(path), "%s/%s", dir, name) == -1 ||
	    stat(path, &st) == -1)
		return -1;
	md_file_id(&st, id);
	return 0;
}

/* A missing list (a folder made by another program) reads as all zeroes,
 * which no stored snapshot has: the sync that writes it records it. */
int
md_folder_id_read(const char *dir, struct md_folder_id *id)
{
	if (md_file_id_read(dir, "new", &id->new_dir) == -1 ||
	    md_file_id_read(dir, "cur", &id->cur_dir) == -1)
		return -1;
	if (md_file_id_read(dir, MD_UIDLIST, &id->list) == -1) {
		if (errno != ENOENT)
			return -1;
		memset(&id->list, 0, sizeof(id->list));
	}
	return 0;
}

/*
 * A change after t0 gets a time from the kernel's coarse clock, which lags
 * the real one by at most a tick, so its mtime differs from any time older
 * than t0 - settle as long as settle exceeds the tick and the file
 * system's time granularity. ctime only has to catch utimes() putting an
 * mtime back (cp -a, rsync -t): the kernel sets it to the current time, so
 * a margin of a few ticks does; a whole settle time would make every
 * folder copied with its times unstorable for that long. The UID list
 * needs no margin: it is replaced, not changed, and ringstore replaces it
 * only when new/ or cur/ changed.
 */
bool
md_cache_settled(const struct maildir_cache *c, const struct md_folder_id *id,
    const struct timespec *t0)
{
	int64_t mlimit = ts_ns(t0) - c->settle_ns;
	int64_t climit = ts_ns(t0) -
	    (c->settle_ns < CTIME_SETTLE_NS ? c->settle_ns : CTIME_SETTLE_NS);

	return ts_ns(&id->new_dir.mtime) < mlimit &&
	    ts_ns(&id->cur_dir.mtime) < mlimit &&
	    ts_ns(&id->new_dir.ctime) < climit &&
	    ts_ns(&id->cur_dir.ctime) < climit;
}

/* ---- snapshots ---- */

static uint32_t
hash_dir(const char *dir)
{
	uint32_t h = 2166136261u;

	for (; *dir != '\0'; dir++) {
		h ^= (unsigned char)*dir;
		h *= 16777619u;
	}
	return h;
}

/* One array for the messages, one block for all their names: a copy is
 * two allocations and two memcpy()s whatever the folder size. */
static int
view_copy(const struct md_view *from, struct md_view *to)
{
	size_t i;

	memset(to, 0, sizeof(*to));
	to->msgs = malloc((from->count + 1) * sizeof(*to->msgs));
	to->names = malloc(from->names_size + 1);
	if (to->msgs == NULL || to->names == NULL) {
		free(to->msgs);
		free(to->names);
		memset(to, 0, sizeof(*to));
		errno = ENOMEM;
		return -1;
	}
	memcpy(to->msgs, from->msgs, from->count * sizeof(*to->msgs));
	memcpy(to->names, from->names, from->names_size);
	for (i = 0; i < from->count; i++)
		to->msgs[i].file = to->names +
		    (from->msgs[i].file - from->names);
	to->count = from->count;
	to->names_size = from->names_size;
	to->uidvalidity = from->uidvalidity;
	to->uidnext = from->uidnext;
	to->first_recent = from->first_recent;
	return 0;
}

/* A snapshot of a view whose names live anywhere (a fresh sync's are
 * malloc'd one by one): packed into one block here. */
static struct snapshot *
snap_new(const char *dir, const struct md_folder_id *id,
    const struct md_view *view)
{
	struct snapshot *s;
	size_t i, n, size = 0;
	char *p;

	for (i = 0; i < view->count; i++)
		size += strlen(view->msgs[i].file) + 1;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->dir = strdup(dir)) == NULL)
		goto fail;
	s->view.msgs = malloc((view->count + 1) * sizeof(*s->view.msgs));
	s->view.names = malloc(size + 1);
	if (s->view.msgs == NULL || s->view.names == NULL)
		goto fail;
	p = s->view.names;
	for (i = 0; i < view->count; i++) {
		s->view.msgs[i] = view->msgs[i];
		n = strlen(view->msgs[i].file) + 1;
		memcpy(p, view->msgs[i].file, n);
		s->view.msgs[i].file = p;
		p += n;
	}
	s->view.count = view->count;
	s->view.names_size = size;
	s->view.uidvalidity = view->uidvalidity;
	s->view.uidnext = view->uidnext;
	s->view.first_recent = view->first_recent;
	s->hash = hash_dir(dir);
	s->id = *id;
	s->bytes = sizeof(*s) + strlen(dir) + 1 + size +
	    view->count * sizeof(*s->view.msgs);
	s->refs = 1;
	return s;
fail:
	if (s != NULL) {
		s->refs = 1;
		snap_unref(s);
	}
	return NULL;
}

/* Drop a reference; called under the mutex, or on a snapshot nobody else
 * can see yet. */
static void
snap_unref(struct snapshot *s)
{
	if (--s->refs > 0)
		return;
	free(s->dir);
	free(s->view.msgs);
	free(s->view.names);
	free(s);
}

/* ---- LRU (mutex held) ---- */

static struct snapshot *
lru_find(struct maildir_cache *c, const char *dir, uint32_t hash)
{
	struct snapshot *s;

	for (s = c->head; s != NULL; s = s->next)
		if (s->hash == hash && strcmp(s->dir, dir) == 0)
			return s;
	return NULL;
}

static void
lru_unlink(struct maildir_cache *c, struct snapshot *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		c->tail = s->prev;
	s->prev = s->next = NULL;
}

static void
lru_push(struct maildir_cache *c, struct snapshot *s)
{
	s->prev = NULL;
	s->next = c->head;
	if (c->head != NULL)
		c->head->prev = s;
	else
		c->tail = s;
	c->head = s;
}

/* Take s out of the cache; copiers still holding it free it last. */
static void
lru_drop(struct maildir_cache *c, struct snapshot *s)
{
	lru_unlink(c, s);
	c->st.entries--;
	c->st.bytes -= s->bytes;
	snap_unref(s);
}

/* ---- private interface ---- */

/* Whether a read-write view of s would have to claim \Recent. */
static bool
unclaimed(const struct snapshot *s)
{
	const struct md_view *v = &s->view;

	return v->count > 0 && v->msgs[v->count - 1].uid >= v->first_recent;
}

int
md_cache_get(struct maildir_cache *c, const char *dir,
    const struct md_folder_id *id, bool claimed_only, struct md_view *view)
{
	uint32_t hash = hash_dir(dir);
	struct snapshot *s;
	int ret;

	pthread_mutex_lock(&c->mutex);
	s = lru_find(c, dir, hash);
	if (s != NULL && !folder_id_equal(&s->id, id)) {
		/* Stale for good: identities never move back. */
		lru_drop(c, s);
		s = NULL;
	}
	if (s == NULL || (claimed_only && unclaimed(s))) {
		c->st.misses++;
		pthread_mutex_unlock(&c->mutex);
		return 0;
	}
	lru_unlink(c, s);
	lru_push(c, s);
	s->refs++;
	pthread_mutex_unlock(&c->mutex);

	ret = view_copy(&s->view, view);

	pthread_mutex_lock(&c->mutex);
	if (ret == 0)
		c->st.hits++;
	snap_unref(s);
	pthread_mutex_unlock(&c->mutex);
	return ret == 0 ? 1 : -1;
}

void
md_cache_put(struct maildir_cache *c, const char *dir,
    const struct md_folder_id *id, const struct md_view *view)
{
	struct snapshot *s, *old;

	/* Built outside the mutex: the copy is the expensive part. */
	if ((s = snap_new(dir, id, view)) == NULL)
		return;
	pthread_mutex_lock(&c->mutex);
	if ((old = lru_find(c, dir, s->hash)) != NULL)
		lru_drop(c, old);
	if (s->bytes > c->max_bytes || c->max_entries == 0) {
		pthread_mutex_unlock(&c->mutex);
		snap_unref(s);
		return;
	}
	while (c->tail != NULL &&
	    (c->st.entries >= c->max_entries ||
		c->st.bytes + s->bytes > c->max_bytes)) {
		lru_drop(c, c->tail);
		c->st.evictions++;
	}
	lru_push(c, s);
	c->st.entries++;
	c->st.bytes += s->bytes;
	c->st.stores++;
	pthread_mutex_unlock(&c->mutex);
}

void
md_cache_unsettled(struct maildir_cache *c)
{
	pthread_mutex_lock(&c->mutex);
	c->st.unsettled++;
	pthread_mutex_unlock(&c->mutex);
}

/* ---- public ---- */

struct maildir_cache *
maildir_cache_new(size_t max_entries, size_t max_bytes, unsigned int settle_ms)
{
	struct maildir_cache *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (pthread_mutex_init(&c->mutex, NULL) != 0) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->max_entries = max_entries;
	c->max_bytes = max_bytes;
	c->settle_ns = (int64_t)settle_ms * 1000000;
	return c;
}

void
maildir_cache_free(struct maildir_cache **cp)
{
	struct maildir_cache *c = *cp;

	if (c == NULL)
		return;
	while (c->head != NULL)
		lru_drop(c, c->head);
	pthread_mutex_destroy(&c->mutex);
	free(c);
	*cp = NULL;
}

void
maildir_cache_stats(struct maildir_cache *c, struct maildir_cache_stats *st)
{
	pthread_mutex_lock(&c->mutex);
	*st = c->st;
	pthread_mutex_unlock(&c->mutex);
}
