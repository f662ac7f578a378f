/*
 * maildir.c - an open folder: scan, sync against the UID list, flags,
 * expunge, plus the small file helpers the other maildir files share.
 *
 * A sync reads new/ and then cur/ once each (in that order, so a message
 * moving from new/ to cur/ meanwhile is seen at least once), matches file
 * base names to the UID list through a hash index, and stats a file only
 * when its name lacks S= or a time prefix. A listed message that was not
 * seen is looked for in a second scan before it is dropped, because a
 * concurrent rename (a flag change elsewhere) can hide a file from one
 * readdir. The list lock is held for the whole match-and-write, never
 * while moving files from new/ to cur/ (that does not change base names).
 * With a snapshot cache (maildir_cache.c) a sync first stat()s new/, cur/
 * and the UID list and, if they match a snapshot, copies its view instead
 * of scanning, without the lock: the snapshot is what a locked sync would
 * build from those very files. A scan that found both directories
 * settled is stored for the next one, with the identity of the list it
 * read or (stat()ed under the lock) wrote. Views copied from a
 * snapshot keep their names in one block (box->names), so every place
 * that replaces a name frees through file_free().
 * Flag changes never trust the view: each computes the new name from the
 * flags in the name the file has when it is renamed, and a rename from
 * that exact name is the compare-and-swap that keeps concurrent changes
 * by other sessions and programs (change_msg()).
 * \Recent is a claim in the UID list: the list's first_recent is the
 * first UID no read-write view has seen; the first read-write sync to
 * find messages at or above it marks them \Recent and moves it to
 * nextuid, under the lock, so each message is \Recent in exactly one
 * view whichever directory it arrived in. Read-only views show the
 * unclaimed ones without claiming them.
 * This file must never rewrite message contents: messages are immutable
 * once delivered; only their names change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir_private.h"

/* A directory listing: messages with file set, uid 0. */
struct scan {
	struct maildir_msg *files;
	size_t count;
	size_t cap;
};

/* Scanning */
static int scan_dir(const char *dir, const char *sub, struct scan *s);
static int scan_folder(const char *dir, struct scan *s);
static void scan_free(struct scan *s);
static bool name_ok(const char *name);

/* Matching */
static void match(struct uidlist *list, struct scan *s,
    struct maildir_msg **found, struct maildir_msg **unknown,
    size_t *unknown_count);
static int cmp_base(const void *a, const void *b);
static int cmp_date(const void *a, const void *b);
static size_t dedupe_unknown(struct maildir_msg **unknown, size_t count);
static int sync_locked(struct maildir *box, struct md_view *v, bool *dirty_r);
static bool claim_recent(struct maildir *box, struct uidlist *list,
    const struct md_view *v);
static int build_view(struct maildir *box, struct uidlist *list,
    struct maildir_msg **found, struct maildir_msg **unknown,
    size_t unknown_count, struct maildir_msg **msgs_r, size_t *count_r);
static int write_view(const char *dir, const struct uidlist *old,
    const struct maildir_msg *msgs, size_t count);

/* Whole syncs, through the snapshot cache */
static int sync_view(struct maildir *box, struct md_view *v,
    const char **error_r);
static bool cache_hit(struct maildir *box, const struct md_folder_id *id,
    struct md_view *v);
static void cache_store(struct maildir *box, const struct md_folder_id *id,
    const struct timespec *t0, const struct md_view *v);

/* After the lock */
static void move_new_to_cur(struct maildir *box, struct md_view *v);
static void mark_recent(const struct maildir *box, struct md_view *v);
static void carry_recent(const struct maildir_msg *old, size_t old_count,
    struct maildir_msg *cur, size_t cur_count);
static void backoff(int tries);
static int change_msg(struct maildir *box, size_t index,
    const struct maildir_flag_change *c);
static void free_msgs(struct maildir_msg *msgs, size_t count);
static void view_free(struct md_view *v);
static void file_free(const char *names, size_t names_size, char *file);
static void refresh_keywords(struct maildir *box);

/* ---- finding a renamed message ---- */

int
md_refind(struct maildir *box, size_t index)
{
	static const char *const subs[] = { "cur", "new" };
	struct maildir_msg *m = &box->msgs[index];
	const char *base = m->file + 4;
	char path[PATH_MAX], *file;
	struct dirent *de;
	size_t i, n;
	DIR *d;

	/* cur/ first: a renamed message is almost always there. */
	for (i = 0; i < 2; i++) {
		if (md_path(path, sizeof(path), "%s/%s", box->dir, subs[i]) ==
		    -1)
			return -1;
		if ((d = opendir(path)) == NULL)
			return -1;
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, base, m->base_len) != 0 ||
			    (de->d_name[m->base_len] != ':' &&
				de->d_name[m->base_len] != '\0'))
				continue;
			n = strlen(de->d_name);
			if ((file = malloc(n + 5)) == NULL) {
				closedir(d);
				return -1;
			}
			memcpy(file, subs[i], 3);
			file[3] = '/';
			memcpy(file + 4, de->d_name, n + 1);
			closedir(d);
			/* The view keeps its flags: the next sync reports
			 * the other writer's change as a flag change. */
			file_free(box->names, box->names_size, m->file);
			m->file = file;
			return 0;
		}
		closedir(d);
	}
	errno = ENOENT;
	return -1;
}

/* ---- scanning ---- */

/* Names this module will track: no dot files, nothing that would break a
 * line of the UID list. */
static bool
name_ok(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (*p == '.' || *p == '\0')
		return false;
	for (; *p != '\0'; p++)
		if (*p < ' ' || *p == 0x7f)
			return false;
	return true;
}

static int
scan_dir(const char *dir, const char *sub, struct scan *s)
{
	char path[PATH_MAX];
	struct maildir_msg *m;
	struct dirent *de;
	struct stat st;
	int missing, saved;
	size_t n;
	DIR *d;

	if (md_path(path, sizeof(path), "%s/%s", dir, sub) == -1)
		return -1;
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_type == DT_DIR || !name_ok(de->d_name))
			continue;
		if (s->count == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 256;

			m = reallocarray(s->files, cap, sizeof(*m));
			if (m == NULL)
				goto fail;
			s->files = m;
			s->cap = cap;
		}
		m = &s->files[s->count];
		memset(m, 0, sizeof(*m));
		missing = md_parse_name(de->d_name, m);
		if (missing != 0) {
			/* Only names from other writers lack S= or a time. */
			if (fstatat(dirfd(d), de->d_name, &st, 0) == -1)
				continue; /* gone already */
			if (missing & 1)
				m->size = (uint64_t)st.st_size;
			if (missing & 2)
				m->date = st.st_mtime;
		}
		n = strlen(de->d_name);
		if ((m->file = malloc(n + 5)) == NULL)
			goto fail;
		memcpy(m->file, sub, 3);
		m->file[3] = '/';
		memcpy(m->file + 4, de->d_name, n + 1);
		s->count++;
	}
	closedir(d);
	return 0;
fail:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

static int
scan_folder(const char *dir, struct scan *s)
{
	memset(s, 0, sizeof(*s));
	/* new/ before cur/: see the top of the file. */
	if (scan_dir(dir, "new", s) == -1 || scan_dir(dir, "cur", s) == -1)
		return -1;
	return 0;
}

static void
scan_free(struct scan *s)
{
	size_t i;

	for (i = 0; i < s->count; i++)
		free(s->files[i].file);
	free(s->files);
	memset(s, 0, sizeof(*s));
}

/* ---- matching ---- */

/*
 * Point found[entry] at the scanned file with that entry's base; files not
 * in the list go to unknown (when unknown is not NULL). If a base shows up
 * twice (caught mid-move from new/ to cur/), the cur/ copy wins.
 */
static void
match(struct uidlist *list, struct scan *s, struct maildir_msg **found,
    struct maildir_msg **unknown, size_t *unknown_count)
{
	struct maildir_msg *m;
	size_t i;
	long idx;

	for (i = 0; i < s->count; i++) {
		m = &s->files[i];
		idx = uidlist_find(list, m->file + 4, m->base_len);
		if (idx < 0) {
			if (unknown != NULL)
				unknown[(*unknown_count)++] = m;
		} else if (found[idx] == NULL ||
		    (found[idx]->file[0] == 'n' && m->file[0] == 'c')) {
			found[idx] = m;
		}
	}
}

static int
cmp_base(const void *a, const void *b)
{
	const struct maildir_msg *x = *(struct maildir_msg *const *)a;
	const struct maildir_msg *y = *(struct maildir_msg *const *)b;
	size_t n = x->base_len < y->base_len ? x->base_len : y->base_len;
	int c = memcmp(x->file + 4, y->file + 4, n);

	if (c != 0)
		return c;
	if (x->base_len != y->base_len)
		return x->base_len < y->base_len ? -1 : 1;
	/* cur/ sorts before new/, so dedupe keeps the cur/ copy */
	return (unsigned char)x->file[0] - (unsigned char)y->file[0];
}

/* New UIDs go in delivery order: the name's time, then the name. */
static int
cmp_date(const void *a, const void *b)
{
	const struct maildir_msg *x = *(struct maildir_msg *const *)a;
	const struct maildir_msg *y = *(struct maildir_msg *const *)b;

	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return cmp_base(a, b);
}

static size_t
dedupe_unknown(struct maildir_msg **unknown, size_t count)
{
	size_t i, out = 0;

	if (count == 0)
		return 0;
	qsort(unknown, count, sizeof(*unknown), cmp_base);
	for (i = 0; i < count; i++) {
		if (out > 0 &&
		    unknown[out - 1]->base_len == unknown[i]->base_len &&
		    memcmp(unknown[out - 1]->file + 4, unknown[i]->file + 4,
			unknown[i]->base_len) == 0)
			continue;
		unknown[out++] = unknown[i];
	}
	qsort(unknown, out, sizeof(*unknown), cmp_date);
	return out;
}

/* Move matched files into a fresh view (taking their file strings) and
 * give unknown ones new UIDs. */
static int
build_view(struct maildir *box, struct uidlist *list,
    struct maildir_msg **found, struct maildir_msg **unknown,
    size_t unknown_count, struct maildir_msg **msgs_r, size_t *count_r)
{
	struct maildir_msg *msgs;
	size_t i, n = 0;

	msgs = calloc(list->count + unknown_count + 1, sizeof(*msgs));
	if (msgs == NULL)
		return -1;
	for (i = 0; i < list->count; i++) {
		if (found[i] == NULL)
			continue;
		msgs[n] = *found[i];
		msgs[n++].uid = list->entries[i].uid;
		found[i]->file = NULL;
	}
	for (i = 0; i < unknown_count; i++) {
		if (list->nextuid == UINT32_MAX) {
			free_msgs(msgs, n);
			errno = EOVERFLOW;
			return -1;
		}
		msgs[n] = *unknown[i];
		msgs[n++].uid = list->nextuid++;
		unknown[i]->file = NULL;
	}
	*msgs_r = msgs;
	*count_r = n;
	return 0;
}

static int
write_view(const char *dir, const struct uidlist *old,
    const struct maildir_msg *msgs, size_t count)
{
	struct uidlist out = { .exists = true };
	size_t i;
	int ret;

	out.uidvalidity = old->uidvalidity;
	out.nextuid = old->nextuid;
	out.first_recent = old->first_recent;
	for (i = 0; i < count; i++) {
		if (uidlist_push(&out, msgs[i].uid, msgs[i].file + 4,
			msgs[i].base_len) == -1) {
			uidlist_free(&out);
			return -1;
		}
	}
	ret = uidlist_write(dir, &out);
	uidlist_free(&out);
	return ret;
}

/* A read-write view that holds messages nobody has claimed yet takes
 * them: they are \Recent here only (RFC 3501 2.3.2). v is sorted by UID.
 * True if the list changed. */
static bool
claim_recent(struct maildir *box, struct uidlist *list, const struct md_view *v)
{
	if (box->readonly || v->count == 0 ||
	    v->msgs[v->count - 1].uid < list->first_recent)
		return false;
	box->recent_from = list->first_recent;
	list->first_recent = list->nextuid;
	return true;
}

/*
 * The part of a sync that runs under the folder lock: read the list, scan,
 * match, assign, claim \Recent, write the list back if anything changed.
 */
static int
sync_locked(struct maildir *box, struct md_view *v, bool *dirty_r)
{
	struct scan s1 = { 0 }, s2 = { 0 };
	struct maildir_msg **found = NULL, **unknown = NULL;
	struct uidlist list;
	size_t i, missing = 0, unknown_count = 0;
	bool dirty = false;
	int ret = -1, saved;

	if (uidlist_read(box->dir, &list) == -1)
		goto out;
	if (!list.exists) {
		if (uidlist_init_new(box->maildir, &list) == -1)
			goto out;
		dirty = true;
	}
	if (box->uidvalidity != 0 && list.uidvalidity != box->uidvalidity) {
		/* The list was lost and rebuilt: this view is meaningless. */
		errno = ESTALE;
		goto out;
	}
	if (list.nextuid < box->uidnext) {
		/* An older list was put back: never hand out seen UIDs. */
		list.nextuid = box->uidnext;
		dirty = true;
	}
	if (uidlist_index(&list) == -1 || scan_folder(box->dir, &s1) == -1)
		goto out;
	found = calloc(list.count + 1, sizeof(*found));
	unknown = calloc(s1.count + 1, sizeof(*unknown));
	if (found == NULL || unknown == NULL)
		goto out;
	match(&list, &s1, found, unknown, &unknown_count);
	for (i = 0; i < list.count; i++)
		missing += found[i] == NULL;
	if (missing > 0) {
		/* Second look before declaring anything expunged. */
		if (scan_folder(box->dir, &s2) == -1)
			goto out;
		match(&list, &s2, found, NULL, NULL);
		for (missing = 0, i = 0; i < list.count; i++)
			missing += found[i] == NULL;
		dirty = dirty || missing > 0;
	}
	unknown_count = dedupe_unknown(unknown, unknown_count);
	dirty = dirty || unknown_count > 0;
	if (build_view(box, &list, found, unknown, unknown_count, &v->msgs,
		&v->count) == -1)
		goto out;
	dirty = claim_recent(box, &list, v) || dirty;
	if (dirty && write_view(box->dir, &list, v->msgs, v->count) == -1) {
		saved = errno;
		free_msgs(v->msgs, v->count);
		v->msgs = NULL;
		v->count = 0;
		box->recent_from = 0;
		errno = saved;
		goto out;
	}
	box->uidvalidity = list.uidvalidity;
	box->uidnext = list.nextuid;
	v->first_recent = list.first_recent;
	*dirty_r = dirty;
	ret = 0;
out:
	saved = errno;
	free(found);
	free(unknown);
	scan_free(&s1);
	scan_free(&s2);
	uidlist_free(&list);
	errno = saved;
	return ret;
}

/* ---- after the lock ---- */

/* Read-write opens take new/ messages to cur/ (a Maildir reader has
 * seen them); \Recent is the list's claim, not the winner of a rename. */
static void
move_new_to_cur(struct maildir *box, struct md_view *v)
{
	char from[PATH_MAX], to[PATH_MAX], info[40], *file;
	struct maildir_msg *m;
	size_t i, n;

	for (i = 0; i < v->count; i++) {
		m = &v->msgs[i];
		if (m->file[0] != 'n')
			continue;
		md_info(info, m->flags, m->keywords);
		n = 4 + m->base_len + strlen(info) + 1;
		if ((file = malloc(n)) == NULL)
			return; /* stays in new/; the next sync tries again */
		snprintf(file, n, "cur/%.*s%s", (int)m->base_len, m->file + 4,
		    info);
		if (md_path(from, sizeof(from), "%s/%s", box->dir, m->file) ==
			-1 ||
		    md_path(to, sizeof(to), "%s/%s", box->dir, file) == -1 ||
		    rename(from, to) == -1) {
			free(file);
			continue; /* another session moved it first */
		}
		file_free(v->names, v->names_size, m->file);
		m->file = file;
	}
}

/* \Recent of a fresh view: what this read-write sync claimed, or (read
 * only) what nobody has claimed yet. */
static void
mark_recent(const struct maildir *box, struct md_view *v)
{
	uint32_t from = box->readonly ? v->first_recent : box->recent_from;
	size_t i;

	if (from == 0)
		return;
	for (i = v->count; i > 0 && v->msgs[i - 1].uid >= from; i--)
		v->msgs[i - 1].flags |= MAILDIR_FLAG_RECENT;
}

static void
carry_recent(const struct maildir_msg *old, size_t old_count,
    struct maildir_msg *cur, size_t cur_count)
{
	size_t i = 0, j = 0;

	while (i < old_count && j < cur_count) {
		if (old[i].uid < cur[j].uid) {
			i++;
		} else if (old[i].uid > cur[j].uid) {
			j++;
		} else {
			cur[j].flags |= old[i].flags & MAILDIR_FLAG_RECENT;
			i++;
			j++;
		}
	}
}

static void
free_msgs(struct maildir_msg *msgs, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(msgs[i].file);
	free(msgs);
}

/* A name inside a view's block goes with the block; others were
 * malloc'd alone (a fresh scan, or renamed since the copy). */
static void
file_free(const char *names, size_t names_size, char *file)
{
	uintptr_t p = (uintptr_t)file, b = (uintptr_t)names;

	if (names == NULL || p < b || p >= b + names_size)
		free(file);
}

static void
view_free(struct md_view *v)
{
	size_t i;

	for (i = 0; i < v->count; i++)
		file_free(v->names, v->names_size, v->msgs[i].file);
	free(v->msgs);
	free(v->names);
	memset(v, 0, sizeof(*v));
}

/* ---- public ---- */

int
maildir_open(const char *maildir, const char *name, unsigned int flags,
    struct maildir **box_r, const char **error_r)
{
	return maildir_open_cached(NULL, maildir, name, flags, box_r, error_r);
}

int
maildir_open_cached(struct maildir_cache *cache, const char *maildir,
    const char *name, unsigned int flags, struct maildir **box_r,
    const char **error_r)
{
	char dir[PATH_MAX], norm[PATH_MAX], path[PATH_MAX];
	struct maildir *box;
	int saved;

	if (md_folder_resolve(maildir, name, dir, norm, true, error_r) == -1)
		return -1;
	if ((box = calloc(1, sizeof(*box))) == NULL)
		goto nomem;
	box->readonly = (flags & MAILDIR_OPEN_READONLY) != 0;
	box->cache = cache;
	md_keywords_init(&box->kw);
	if ((box->maildir = strdup(maildir)) == NULL ||
	    (box->dir = strdup(dir)) == NULL ||
	    (box->name = strdup(norm)) == NULL)
		goto nomem;
	if (md_path(path, sizeof(path), "%s/new", dir) == -1 ||
	    (box->new_path = strdup(path)) == NULL)
		goto nomem;
	if (md_path(path, sizeof(path), "%s/cur", dir) == -1 ||
	    (box->cur_path = strdup(path)) == NULL)
		goto nomem;
	if (maildir_sync(box, NULL, error_r) == -1)
		goto fail;
	box->kw_changed = false; /* the opener lists the names anyway */
	if (!box->readonly)
		md_clean_tmp(dir, time(NULL));
	*box_r = box;
	return 0;
nomem:
	*error_r = "out of memory";
fail:
	saved = errno;
	maildir_close(&box);
	errno = saved;
	return -1;
}

void
maildir_close(struct maildir **boxp)
{
	struct maildir *box = *boxp;
	struct md_view view;

	if (box == NULL)
		return;
	view = (struct md_view){ .msgs = box->msgs,
		.count = box->count,
		.names = box->names,
		.names_size = box->names_size };
	view_free(&view);
	md_keywords_free(&box->kw);
	free(box->maildir);
	free(box->dir);
	free(box->name);
	free(box->new_path);
	free(box->cur_path);
	free(box);
	*boxp = NULL;
}

/* Serve the view from a snapshot if its identity still holds and it
 * agrees with what this folder already handed out. A read-write view
 * with unclaimed messages needs the lock to claim them: no hit. */
static bool
cache_hit(struct maildir *box, const struct md_folder_id *id, struct md_view *v)
{
	if (md_cache_get(box->cache, box->dir, id, !box->readonly, v) != 1)
		return false;
	if ((box->uidvalidity != 0 && v->uidvalidity != box->uidvalidity) ||
	    v->uidnext < box->uidnext) {
		/* Let the full sync report or repair it. */
		view_free(v);
		return false;
	}
	box->uidvalidity = v->uidvalidity;
	box->uidnext = v->uidnext;
	return true;
}

/* A scan is worth keeping only if the directories had settled before it
 * began (id->list is then the list it read or wrote). */
static void
cache_store(struct maildir *box, const struct md_folder_id *id,
    const struct timespec *t0, const struct md_view *v)
{
	if (id == NULL || !md_cache_settled(box->cache, id, t0))
		md_cache_unsettled(box->cache);
	else
		md_cache_put(box->cache, box->dir, id, v);
}

/*
 * The synced view, without \Recent and before anything moves to cur/.
 * With a cache: t0, then the identity, then (on a miss) the scan, in that
 * order, so that the identity stored is never newer than what the scan
 * saw. Taking it before the lock is fine for the same reason: a list
 * replaced in between only makes the snapshot miss later.
 */
static int
sync_view(struct maildir *box, struct md_view *v, const char **error_r)
{
	struct md_folder_id id;
	struct timespec t0;
	bool have_id = false, dirty = false;
	int lock, ret, saved;

	memset(v, 0, sizeof(*v));
	box->recent_from = 0;
	if (box->cache != NULL) {
		clock_gettime(CLOCK_REALTIME, &t0);
		have_id = md_folder_id_read(box->dir, &id) == 0;
		if (have_id && cache_hit(box, &id, v))
			return 0;
	}
	if (uidlist_lock(box->dir, &lock) == -1) {
		*error_r = errno == ENOENT ? "folder was deleted" :
					     "cannot lock the UID list";
		return -1;
	}
	ret = sync_locked(box, v, &dirty);
	saved = errno;
	if (ret == 0 && dirty && have_id) {
		/* The list we just wrote, stat()ed before anyone else can
		 * replace it: the new view matches it exactly. */
		have_id = md_file_id_read(box->dir, MD_UIDLIST, &id.list) == 0;
	}
	close(lock);
	if (ret == -1) {
		errno = saved;
		*error_r = errno == ESTALE ? "UIDVALIDITY changed" :
					     "cannot sync the folder";
		return -1;
	}
	v->uidvalidity = box->uidvalidity;
	v->uidnext = box->uidnext;
	if (box->cache != NULL)
		cache_store(box, have_id ? &id : NULL, &t0, v);
	return 0;
}

/* The keyword names, read after the directories were scanned: a name is
 * written before any file carries its letter, so every letter the scan
 * saw is named. A file we cannot read keeps the names we had. */
static void
refresh_keywords(struct maildir *box)
{
	bool changed;

	if (md_keywords_load(box->dir, &box->kw, &changed) == 0 && changed)
		box->kw_changed = true;
}

int
maildir_sync(struct maildir *box, struct maildir_changes *changes,
    const char **error_r)
{
	struct md_view v, old;

	if (changes != NULL)
		memset(changes, 0, sizeof(*changes));
	if (sync_view(box, &v, error_r) == -1)
		return -1;
	refresh_keywords(box);
	if (!box->readonly)
		move_new_to_cur(box, &v);
	mark_recent(box, &v);
	carry_recent(box->msgs, box->count, v.msgs, v.count);
	if (changes != NULL &&
	    maildir_diff(box->msgs, box->count, v.msgs, v.count, changes) ==
		-1) {
		view_free(&v);
		*error_r = "out of memory";
		return -1;
	}
	old = (struct md_view){ .msgs = box->msgs,
		.count = box->count,
		.names = box->names,
		.names_size = box->names_size };
	view_free(&old);
	box->msgs = v.msgs;
	box->count = v.count;
	box->names = v.names;
	box->names_size = v.names_size;
	if (changes != NULL)
		changes->keywords_changed = maildir_keywords_changed(box);
	return 0;
}

void
maildir_changes_free(struct maildir_changes *changes)
{
	free(changes->expunged_uids);
	free(changes->expunged_seqs);
	free(changes->flag_changed);
	memset(changes, 0, sizeof(*changes));
}

int
maildir_diff(const struct maildir_msg *old, size_t old_count,
    const struct maildir_msg *cur, size_t cur_count, struct maildir_changes *ch)
{
	uint32_t max_old = old_count ? old[old_count - 1].uid : 0;
	size_t i = 0, j = 0, n = old_count ? old_count : 1;

	memset(ch, 0, sizeof(*ch));
	ch->expunged_uids = malloc(n * sizeof(uint32_t));
	ch->expunged_seqs = malloc(n * sizeof(uint32_t));
	ch->flag_changed = malloc(n * sizeof(size_t));
	if (ch->expunged_uids == NULL || ch->expunged_seqs == NULL ||
	    ch->flag_changed == NULL) {
		maildir_changes_free(ch);
		errno = ENOMEM;
		return -1;
	}
	while (i < old_count) {
		if (j == cur_count || old[i].uid < cur[j].uid) {
			ch->expunged_uids[ch->expunged_count] = old[i].uid;
			ch->expunged_seqs[ch->expunged_count++] = (uint32_t)i +
			    1;
			i++;
		} else if (old[i].uid > cur[j].uid) {
			j++; /* cannot happen: UIDs are assigned ascending */
		} else {
			if (old[i].flags != cur[j].flags ||
			    old[i].keywords != cur[j].keywords)
				ch->flag_changed[ch->flag_changed_count++] = j;
			i++;
			j++;
		}
	}
	for (j = 0; j < cur_count && cur[j].uid <= max_old; j++)
		;
	ch->new_first = j;
	ch->new_count = cur_count - j;
	return 0;
}

const struct maildir_msg *
maildir_msgs(const struct maildir *box, size_t *count_r)
{
	*count_r = box->count;
	return box->msgs;
}

long
maildir_find_uid(const struct maildir *box, uint32_t uid)
{
	size_t lo = 0, hi = box->count, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (box->msgs[mid].uid == uid)
			return (long)mid;
		if (box->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

uint32_t
maildir_uidvalidity(const struct maildir *box)
{
	return box->uidvalidity;
}

uint32_t
maildir_uidnext(const struct maildir *box)
{
	return box->uidnext;
}

const char *
maildir_name(const struct maildir *box)
{
	return box->name;
}

bool
maildir_readonly(const struct maildir *box)
{
	return box->readonly;
}

const char *
maildir_dir(const struct maildir *box)
{
	return box->dir;
}

void
maildir_watch_paths(const struct maildir *box, const char **new_r,
    const char **cur_r)
{
	*new_r = box->new_path;
	*cur_r = box->cur_path;
}

int
maildir_msg_path(const struct maildir *box, size_t index, char *buf,
    size_t size)
{
	if (index >= box->count) {
		errno = EINVAL;
		return -1;
	}
	return md_path(buf, size, "%s/%s", box->dir, box->msgs[index].file);
}

int
maildir_msg_open(struct maildir *box, size_t index, int *fd_r,
    const char **error_r)
{
	char path[PATH_MAX];
	int fd, tries;

	for (tries = 0; tries < 3; tries++) {
		if (maildir_msg_path(box, index, path, sizeof(path)) == -1)
			break;
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
			*fd_r = fd;
			return 0;
		}
		if (errno != ENOENT || md_refind(box, index) == -1)
			break;
	}
	*error_r = errno == ENOENT ? "message expunged" : "cannot open message";
	return -1;
}

/* Writers that keep renaming one file in lockstep could starve each
 * other: after a second conflict, wait a jittered moment that doubles
 * with each one (about 16 us, up to 1 ms; worker threads only). */
static void
backoff(int tries)
{
	struct timespec ts;
	long max = 16000L << (tries < 6 ? tries : 6);

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec = (long)((unsigned long)ts.tv_nsec * 2654435761u %
	    (unsigned long)max);
	ts.tv_sec = 0;
	nanosleep(&ts, NULL);
}

/*
 * The compare-and-swap behind every flag change. m->file is the name we
 * believe current; the new name is computed from the flags in that very
 * name, and rename() from it succeeds only if the file still has it. If
 * someone renamed it meanwhile (ENOENT), look the name up again and
 * recompute from there: a change made by another writer between our
 * look-up and our rename is never overwritten. A name that needs no
 * change is checked to exist, so the view never reports flags the file
 * no longer has.
 */
static int
change_msg(struct maildir *box, size_t index,
    const struct maildir_flag_change *c)
{
	struct maildir_msg *m = &box->msgs[index], disk;
	char from[PATH_MAX], to[PATH_MAX], info[40], *file;
	unsigned int flags;
	uint32_t keywords;
	size_t n;
	int tries;

	for (tries = 0; tries < MAILDIR_STORE_TRIES; tries++) {
		md_parse_name(m->file + 4, &disk);
		flags = ((disk.flags & ~c->clear) | c->set) &
		    MAILDIR_FLAGS_STORED;
		keywords = ((disk.keywords & ~c->clear_keywords) |
			       c->set_keywords) &
		    MD_ALL_KEYWORDS;
		if (md_path(from, sizeof(from), "%s/%s", box->dir, m->file) ==
		    -1)
			return -1;
		if (flags == disk.flags && keywords == disk.keywords) {
			if (access(from, F_OK) == 0) {
				file = NULL;
				goto done;
			}
		} else {
			md_info(info, flags, keywords);
			n = 4 + m->base_len + strlen(info) + 1;
			if ((file = malloc(n)) == NULL)
				return -1;
			snprintf(file, n, "cur/%.*s%s", (int)m->base_len,
			    m->file + 4, info);
			if (md_path(to, sizeof(to), "%s/%s", box->dir, file) ==
			    -1) {
				free(file);
				return -1;
			}
			if (rename(from, to) == 0)
				goto done;
			{
				int saved = errno;

				free(file);
				errno = saved;
			}
		}
		if (errno != ENOENT || md_refind(box, index) == -1)
			return -1;
		if (tries > 0)
			backoff(tries);
	}
	/* Renamed under us every time: let the client retry. */
	errno = EAGAIN;
	return -1;
done:
	if (file != NULL) {
		file_free(box->names, box->names_size, m->file);
		m->file = file;
	}
	m->flags = flags | (m->flags & MAILDIR_FLAG_RECENT);
	m->keywords = keywords;
	return 0;
}

static int
check_change(struct maildir *box, size_t index, const char **error_r)
{
	if (box->readonly) {
		errno = EROFS;
		*error_r = "folder is read-only";
		return -1;
	}
	if (index >= box->count) {
		errno = EINVAL;
		*error_r = "no such message";
		return -1;
	}
	return 0;
}

int
maildir_change_flags(struct maildir *box, size_t index,
    const struct maildir_flag_change *change, const char **error_r)
{
	if (check_change(box, index, error_r) == -1)
		return -1;
	if (change_msg(box, index, change) == -1) {
		*error_r = errno == ENOENT ? "message expunged" :
		    errno == EAGAIN	   ? "message renamed by others "
					     "too often" :
					     "cannot change flags";
		return -1;
	}
	return 0;
}

int
maildir_set_flags(struct maildir *box, size_t index, unsigned int flags,
    const char **error_r)
{
	struct maildir_flag_change c = {
		.set = flags & MAILDIR_FLAGS_STORED,
		.clear = MAILDIR_FLAGS_STORED & ~flags,
	};

	return maildir_change_flags(box, index, &c, error_r);
}

int
maildir_expunge(struct maildir *box, const uint32_t *uids, size_t count,
    const char **error_r)
{
	char path[PATH_MAX];
	size_t i;
	long idx;

	if (box->readonly) {
		errno = EROFS;
		*error_r = "folder is read-only";
		return -1;
	}
	for (i = 0; i < count; i++) {
		if ((idx = maildir_find_uid(box, uids[i])) < 0)
			continue;
		if (maildir_msg_path(box, (size_t)idx, path, sizeof(path)) ==
			0 &&
		    unlink(path) == 0)
			continue;
		if (errno != ENOENT)
			goto fail;
		/* Renamed by someone: unlink the current name, if any. */
		if (md_refind(box, (size_t)idx) == -1) {
			if (errno == ENOENT)
				continue;
			goto fail;
		}
		if (maildir_msg_path(box, (size_t)idx, path, sizeof(path)) ==
			-1 ||
		    (unlink(path) == -1 && errno != ENOENT))
			goto fail;
	}
	if (count > 0 && md_fsync_dir(box->cur_path) == -1)
		goto fail;
	return 0;
fail:
	*error_r = "cannot expunge";
	return -1;
}
