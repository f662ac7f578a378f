/*
 * test_maildir_cache.c - folder snapshots (maildir_cache.c): an unchanged
 * folder opens from its snapshot (seen through the hit counter, never
 * through timing); a file dropped into new/ or cur/, a rename in cur/, an
 * unlink and a UID list rewritten by another process each show at the next
 * open even when made right after the snapshot was stored; ringstore's own
 * flag changes, expunges, appends and moves too; \Recent still goes to one
 * session; a sync that had to write the UID list is stored with the list
 * it wrote; a folder changed within the settle time is not stored; the
 * entry and byte bounds hold; threads opening one folder concurrently
 * while files arrive always see every file delivered before they began.
 * Each test works in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir.h"
#include "tests/unit/maildir_fixture.h"

/* Short enough to keep the tests quick, longer than any clock tick. */
#define SETTLE_MS 100

struct fixture {
	char root[PATH_MAX];
	char md[PATH_MAX]; /* the user's Maildir; INBOX is its directory */
	struct maildir_cache *cache;
};

static void deliver(struct fixture *fx, const char *folder, unsigned flags);
static void settle(void);
static void linger(void);
static struct maildir *open_box(struct fixture *fx, const char *name,
    unsigned flags);
static size_t count_of(struct fixture *fx, const char *name);
static void stats(struct fixture *fx, struct maildir_cache_stats *st);
static void prime(struct fixture *fx, const char *name);
static void same_view(struct maildir *a, struct maildir *b);

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (md_fixture_make(fx->root, fx->md, "rg-mdcache",
		"user@example.com") == -1)
		return -1;
	fx->cache = maildir_cache_new(64, 64u << 20, SETTLE_MS);
	if (fx->cache == NULL)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	maildir_cache_free(&fx->cache);
	assert_null(fx->cache);
	md_fixture_remove(fx->root);
	free(fx);
	return 0;
}

static void
deliver(struct fixture *fx, const char *folder, unsigned flags)
{
	static const char text[] = "From: a@b\nSubject: t\n\nbody\n";
	struct maildir_delivery opt = { .flags = flags };
	uint32_t uidv, uid;
	const char *err;

	assert_int_equal(maildir_deliver(fx->md, folder, text, sizeof(text) - 1,
			     &opt, &uidv, &uid, &err),
	    0);
}

/* Let the directories age past the settle time, so a scan may be
 * stored. A wait, not a timing assertion. */
static void
settle(void)
{
	struct timespec ts = { 0, (SETTLE_MS + 50) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Settled for long enough that busy reader threads surely open the
 * folder a few times while it is storable. */
static void
linger(void)
{
	for (int i = 0; i < 4; i++)
		settle();
}

static struct maildir *
open_box(struct fixture *fx, const char *name, unsigned flags)
{
	struct maildir *box = NULL;
	const char *err;

	assert_int_equal(
	    maildir_open_cached(fx->cache, fx->md, name, flags, &box, &err), 0);
	return box;
}

static size_t
count_of(struct fixture *fx, const char *name)
{
	struct maildir *box = open_box(fx, name, MAILDIR_OPEN_READONLY);
	size_t n;

	maildir_msgs(box, &n);
	maildir_close(&box);
	return n;
}

static void
stats(struct fixture *fx, struct maildir_cache_stats *st)
{
	maildir_cache_stats(fx->cache, st);
}

/* Settle, then open once so the folder has a snapshot, and check the
 * next open is served from it. */
static void
prime(struct fixture *fx, const char *name)
{
	struct maildir_cache_stats a, b;
	struct maildir *box;

	settle();
	box = open_box(fx, name, MAILDIR_OPEN_READONLY);
	maildir_close(&box);
	stats(fx, &a);
	box = open_box(fx, name, MAILDIR_OPEN_READONLY);
	maildir_close(&box);
	stats(fx, &b);
	assert_int_equal(b.hits, a.hits + 1);
	assert_int_equal(b.misses, a.misses);
}

static void
same_view(struct maildir *a, struct maildir *b)
{
	const struct maildir_msg *x, *y;
	size_t n, m, i;

	x = maildir_msgs(a, &n);
	y = maildir_msgs(b, &m);
	assert_int_equal(n, m);
	assert_int_equal(maildir_uidvalidity(a), maildir_uidvalidity(b));
	assert_int_equal(maildir_uidnext(a), maildir_uidnext(b));
	for (i = 0; i < n; i++) {
		assert_int_equal(x[i].uid, y[i].uid);
		assert_int_equal(x[i].flags, y[i].flags);
		assert_int_equal(x[i].keywords, y[i].keywords);
		assert_int_equal(x[i].size, y[i].size);
		assert_int_equal(x[i].vsize, y[i].vsize);
		assert_int_equal(x[i].date, y[i].date);
		assert_int_equal(x[i].base_len, y[i].base_len);
		assert_string_equal(x[i].file, y[i].file);
	}
}

/* ---- tests ---- */

static void
test_hit_when_unchanged(void **state)
{
	struct fixture *fx = *state;
	struct maildir_cache_stats st, st2;
	struct maildir *plain = NULL, *box;
	struct maildir_changes ch;
	const char *err;
	int i;

	for (i = 0; i < 5; i++)
		deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	settle();
	box = open_box(fx, "INBOX", 0);
	maildir_close(&box);
	stats(fx, &st);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.stores, 1);
	assert_int_equal(st.entries, 1);
	assert_true(st.bytes > 0);

	/* Read-write and read-only opens and a sync all hit, and see
	 * exactly what an uncached open sees. */
	box = open_box(fx, "INBOX", 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &plain, &err), 0);
	same_view(box, plain);
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	assert_int_equal(
	    ch.expunged_count + ch.new_count + ch.flag_changed_count, 0);
	maildir_changes_free(&ch);
	same_view(box, plain);
	maildir_close(&box);
	maildir_close(&plain);
	assert_int_equal(count_of(fx, "INBOX"), 5);
	stats(fx, &st2);
	assert_int_equal(st2.hits, 3);
	assert_int_equal(st2.misses, 1);
	assert_int_equal(st2.stores, 1);
}

static void
test_external_changes(void **state)
{
	struct fixture *fx = *state;
	struct maildir_cache_stats a, b;
	const struct maildir_msg *msgs;
	char path[PATH_MAX], to[PATH_MAX];
	struct maildir *box;
	size_t n;
	int i;

	for (i = 0; i < 4; i++)
		deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	prime(fx, "INBOX");
	stats(fx, &a);

	/* Each change comes right after a snapshot was stored or used,
	 * well within the same second. */
	fmt_path(path, "%s/new/1000.drop1.host", fx->md);
	write_file(path, "From: x\n\nnew\n");
	assert_int_equal(count_of(fx, "INBOX"), 5);
	prime(fx, "INBOX");

	fmt_path(path, "%s/cur/1001.drop2.host:2,S", fx->md);
	write_file(path, "From: x\n\ncur\n");
	assert_int_equal(count_of(fx, "INBOX"), 6);
	prime(fx, "INBOX");

	/* Another program flags a message: a rename in cur/. */
	box = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	msgs = maildir_msgs(box, &n);
	assert_false(msgs[0].flags & MAILDIR_FLAG_FLAGGED);
	fmt_path(path, "%s/%s", fx->md, msgs[0].file);
	fmt_path(to, "%s/cur/%.*s:2,FS", fx->md, (int)msgs[0].base_len,
	    msgs[0].file + 4);
	maildir_close(&box);
	assert_int_equal(rename(path, to), 0);
	box = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	msgs = maildir_msgs(box, &n);
	assert_int_equal(n, 6);
	assert_true(msgs[0].flags & MAILDIR_FLAG_FLAGGED);
	maildir_close(&box);
	prime(fx, "INBOX");

	/* ... and removes one. */
	assert_int_equal(unlink(to), 0);
	assert_int_equal(count_of(fx, "INBOX"), 5);

	stats(fx, &b);
	assert_true(b.misses >= a.misses + 4);
}

/* Another process replaces the UID list (a lost list rebuilt): new
 * UIDVALIDITY and UIDs, directories untouched. */
static void
test_uidlist_rewrite(void **state)
{
	struct fixture *fx = *state;
	const struct maildir_msg *msgs;
	struct maildir *box, *held;
	char path[PATH_MAX], tmp[PATH_MAX], line[PATH_MAX + 32];
	uint32_t uidv, first;
	const char *err;
	struct maildir_changes ch;
	pid_t pid;
	size_t n, i;
	int status;
	FILE *f;

	for (i = 0; i < 3; i++)
		deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	prime(fx, "INBOX");
	held = open_box(fx, "INBOX", 0);
	msgs = maildir_msgs(held, &n);
	uidv = maildir_uidvalidity(held);
	first = msgs[0].uid;

	fmt_path(path, "%s/ringstore-uidlist", fx->md);
	fmt_path(tmp, "%s/ringstore-uidlist.other", fx->md);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		f = fopen(tmp, "w");
		if (f == NULL)
			_exit(1);
		fprintf(f, "ringstore-uidlist 1 %u %u\n", uidv + 7, 100);
		for (i = 0; i < n; i++) {
			snprintf(line, sizeof(line), "%zu %.*s\n", 50 + i,
			    (int)msgs[i].base_len, msgs[i].file + 4);
			fputs(line, f);
		}
		if (fclose(f) != 0 || rename(tmp, path) != 0)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	box = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	msgs = maildir_msgs(box, &n);
	assert_int_equal(n, 3);
	assert_int_equal(maildir_uidvalidity(box), uidv + 7);
	assert_int_equal(msgs[0].uid, 50);
	assert_int_equal(maildir_uidnext(box), 100);
	maildir_close(&box);
	/* The session that had the folder open must learn it too. */
	assert_int_equal(maildir_sync(held, &ch, &err), -1);
	assert_int_equal(errno, ESTALE);
	maildir_close(&held);
	assert_true(first != 50);
}

/* A settled folder whose sync had to write the list (files from another
 * program, or no list at all) is stored with the list it wrote; removing
 * the list afterwards is noticed. */
static void
test_dirty_scan_stored(void **state)
{
	struct fixture *fx = *state;
	struct maildir_cache_stats a, b;
	const struct maildir_msg *x, *y;
	struct maildir *first, *second;
	char path[PATH_MAX];
	size_t n, m, i;
	uint32_t uidv;

	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	fmt_path(path, "%s/new/1000.other.host", fx->md);
	write_file(path, "From: x\n\ndropped\n");
	settle();
	stats(fx, &a);
	first = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	second = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	stats(fx, &b);
	assert_int_equal(b.stores, a.stores + 1);
	assert_int_equal(b.hits, a.hits + 1);
	x = maildir_msgs(first, &n);
	y = maildir_msgs(second, &m);
	assert_int_equal(n, 2);
	assert_int_equal(m, 2);
	for (i = 0; i < n; i++)
		assert_int_equal(x[i].uid, y[i].uid);
	uidv = maildir_uidvalidity(first);
	maildir_close(&first);
	maildir_close(&second);

	fmt_path(path, "%s/ringstore-uidlist", fx->md);
	assert_int_equal(unlink(path), 0);
	settle();
	first = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	assert_true(maildir_uidvalidity(first) != uidv);
	maildir_close(&first);
	stats(fx, &a);
	first = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	stats(fx, &b);
	assert_int_equal(b.hits, a.hits + 1);
	assert_true(maildir_uidvalidity(first) != uidv);
	maildir_close(&first);
}

/* Flag changes, expunges, appends, copies and moves made by ringstore
 * itself show at the next open through the same cache. */
static void
test_own_changes(void **state)
{
	struct fixture *fx = *state;
	const struct maildir_msg *msgs;
	struct maildir *box, *view;
	uint32_t uids[2], dest[2], uidv;
	const char *err;
	size_t n;
	int i;

	assert_int_equal(maildir_create(fx->md, "Other", &err), 0);
	for (i = 0; i < 4; i++)
		deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	deliver(fx, "Other", MAILDIR_FLAG_SEEN);
	prime(fx, "INBOX");
	prime(fx, "Other");

	box = open_box(fx, "INBOX", 0);
	assert_int_equal(maildir_set_flags(box, 1,
			     MAILDIR_FLAG_SEEN | MAILDIR_FLAG_ANSWERED, &err),
	    0);
	view = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	msgs = maildir_msgs(view, &n);
	assert_true(msgs[1].flags & MAILDIR_FLAG_ANSWERED);
	maildir_close(&view);

	prime(fx, "INBOX");
	msgs = maildir_msgs(box, &n);
	uids[0] = msgs[0].uid;
	assert_int_equal(maildir_expunge(box, uids, 1, &err), 0);
	assert_int_equal(count_of(fx, "INBOX"), 3);
	assert_int_equal(maildir_sync(box, NULL, &err), 0);

	prime(fx, "INBOX");
	deliver(fx, "INBOX", 0);
	assert_int_equal(count_of(fx, "INBOX"), 4);
	assert_int_equal(maildir_sync(box, NULL, &err), 0);

	prime(fx, "INBOX");
	prime(fx, "Other");
	msgs = maildir_msgs(box, &n);
	uids[0] = msgs[0].uid;
	uids[1] = msgs[1].uid;
	assert_int_equal(
	    maildir_copy(box, uids, 1, "Other", false, &uidv, dest, &err), 0);
	assert_int_equal(count_of(fx, "Other"), 2);
	assert_int_equal(count_of(fx, "INBOX"), 4);
	prime(fx, "Other");
	assert_int_equal(
	    maildir_copy(box, uids + 1, 1, "Other", true, &uidv, dest, &err),
	    0);
	assert_int_equal(count_of(fx, "Other"), 3);
	assert_int_equal(count_of(fx, "INBOX"), 3);
	maildir_close(&box);
}

/* \Recent goes to the one read-write view that syncs first after a
 * message got its UID, in new/ or (with flags) in cur/. Read-only opens
 * are served from the snapshot and show the unclaimed messages without
 * taking them; a read-write open of a snapshot with unclaimed messages
 * is not served from it, since claiming needs the lock. */
static void
test_recent(void **state)
{
	struct fixture *fx = *state;
	struct maildir_cache_stats a, b, c;
	const struct maildir_msg *msgs;
	struct maildir *box;
	size_t n, i;

	deliver(fx, "INBOX", 0);
	deliver(fx, "INBOX", 0);
	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	prime(fx, "INBOX"); /* EXAMINE leaves new/ and the claim alone */
	stats(fx, &a);
	box = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	stats(fx, &b);
	assert_int_equal(b.hits, a.hits + 1);
	msgs = maildir_msgs(box, &n);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++)
		assert_true(msgs[i].flags & MAILDIR_FLAG_RECENT);
	maildir_close(&box);

	box = open_box(fx, "INBOX", 0);
	stats(fx, &c);
	assert_int_equal(c.hits, b.hits);
	msgs = maildir_msgs(box, &n);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		assert_true(msgs[i].flags & MAILDIR_FLAG_RECENT);
		assert_memory_equal(msgs[i].file, "cur/", 4);
	}
	maildir_close(&box);
	box = open_box(fx, "INBOX", 0);
	msgs = maildir_msgs(box, &n);
	for (i = 0; i < n; i++)
		assert_false(msgs[i].flags & MAILDIR_FLAG_RECENT);
	maildir_close(&box);
	/* claimed: read-only opens, served from a snapshot once the folder
	 * settled, show none either */
	prime(fx, "INBOX");
	box = open_box(fx, "INBOX", MAILDIR_OPEN_READONLY);
	msgs = maildir_msgs(box, &n);
	for (i = 0; i < n; i++)
		assert_false(msgs[i].flags & MAILDIR_FLAG_RECENT);
	maildir_close(&box);
}

/* A folder that changed within the settle time is scanned but not
 * stored; a change right after such a scan is seen. Uses the daemon's
 * settle time. */
static void
test_unsettled(void **state)
{
	struct fixture *fx = *state;
	struct maildir_cache *c;
	struct maildir_cache_stats st;
	struct maildir *box;
	char path[PATH_MAX];
	const char *err;
	size_t n;

	c = maildir_cache_new(8, 1u << 20, MAILDIR_CACHE_SETTLE_MS);
	assert_non_null(c);
	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	assert_int_equal(maildir_open_cached(c, fx->md, "INBOX",
			     MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	maildir_close(&box);
	fmt_path(path, "%s/new/1000.tick.host", fx->md);
	write_file(path, "From: x\n\nsame tick\n");
	assert_int_equal(maildir_open_cached(c, fx->md, "INBOX",
			     MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	maildir_close(&box);
	maildir_cache_stats(c, &st);
	assert_int_equal(st.stores, 0);
	assert_int_equal(st.unsettled, 2);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.entries, 0);
	maildir_cache_free(&c);
}

static void
backdate(const char *dir, const struct timespec *when)
{
	struct timespec times[2] = { *when, *when };

	assert_int_equal(utimensat(AT_FDCWD, dir, times, 0), 0);
}

/* Directories copied with their times (cp -a, rsync -t) have an old mtime
 * and a fresh ctime: storable after the short ctime margin, not the whole
 * settle time; and a change hidden by putting the same mtime back is still
 * seen, through ctime. */
static void
test_backdated_mtime(void **state)
{
	struct fixture *fx = *state;
	struct timespec old = { .tv_sec = time(NULL) - 3600, .tv_nsec = 0 };
	struct maildir_cache_stats st;
	char newd[PATH_MAX], curd[PATH_MAX], path[PATH_MAX];
	struct maildir_cache *c;
	struct maildir *box;
	const char *err;
	size_t n;

	c = maildir_cache_new(8, 1u << 20, MAILDIR_CACHE_SETTLE_MS);
	assert_non_null(c);
	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	fmt_path(newd, "%s/new", fx->md);
	fmt_path(curd, "%s/cur", fx->md);
	backdate(newd, &old);
	backdate(curd, &old);
	settle(); /* past the ctime margin, far from MAILDIR_CACHE_SETTLE_MS */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(maildir_open_cached(c, fx->md, "INBOX",
				     MAILDIR_OPEN_READONLY, &box, &err),
		    0);
		maildir_close(&box);
	}
	maildir_cache_stats(c, &st);
	assert_int_equal(st.stores, 1);
	assert_int_equal(st.hits, 1);

	fmt_path(path, "%s/cur/1000.hidden.host:2,S", fx->md);
	write_file(path, "From: x\n\nhidden\n");
	backdate(curd, &old);
	assert_int_equal(maildir_open_cached(c, fx->md, "INBOX",
			     MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	maildir_close(&box);
	maildir_cache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	maildir_cache_free(&c);
}

static void
test_bounds(void **state)
{
	struct fixture *fx = *state;
	struct maildir_cache_stats st;
	static const char *const names[] = { "a", "b", "c", "d" };
	struct maildir_cache *c;
	struct maildir *box;
	const char *err;
	size_t i;

	for (i = 0; i < 4; i++) {
		assert_int_equal(maildir_create(fx->md, names[i], &err), 0);
		deliver(fx, names[i], MAILDIR_FLAG_SEEN);
		deliver(fx, names[i], MAILDIR_FLAG_SEEN);
	}
	settle();
	/* Entries: two at most, the least recently used goes. */
	maildir_cache_free(&fx->cache);
	fx->cache = maildir_cache_new(2, 64u << 20, SETTLE_MS);
	for (i = 0; i < 4; i++)
		count_of(fx, names[i]);
	stats(fx, &st);
	assert_int_equal(st.stores, 4);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.evictions, 2);
	count_of(fx, "d"); /* hit */
	count_of(fx, "a"); /* miss, evicts c (d was used last) */
	count_of(fx, "d"); /* still a hit */
	stats(fx, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.entries, 2);

	/* Bytes: room for one two-message folder, not two. */
	c = maildir_cache_new(100, st.bytes / 2 + st.bytes / 4, SETTLE_MS);
	assert_non_null(c);
	for (i = 0; i < 4; i++) {
		assert_int_equal(maildir_open_cached(c, fx->md, names[i],
				     MAILDIR_OPEN_READONLY, &box, &err),
		    0);
		maildir_close(&box);
	}
	maildir_cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.evictions, 3);
	maildir_cache_free(&c);

	/* A snapshot bigger than the whole budget is never kept. */
	c = maildir_cache_new(100, 16, SETTLE_MS);
	assert_non_null(c);
	assert_int_equal(maildir_open_cached(c, fx->md, "a",
			     MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	maildir_close(&box);
	maildir_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	maildir_cache_free(&c);
}

/* ---- threads ---- */

struct race {
	struct fixture *fx;
	atomic_uint delivered; /* files in the folder, bumped after each */
	atomic_bool stop;
	unsigned opens;
	int failed;
};

/* Open over and over; every open must see at least what was delivered
 * before it began, with UIDs strictly ascending. */
static void *
race_reader(void *arg)
{
	struct race *r = arg;
	const struct maildir_msg *msgs;
	struct maildir *box;
	const char *err;
	unsigned before;
	size_t n, i;

	while (!atomic_load(&r->stop)) {
		before = atomic_load(&r->delivered);
		if (maildir_open_cached(r->fx->cache, r->fx->md, "INBOX",
			MAILDIR_OPEN_READONLY, &box, &err) == -1) {
			r->failed = 1;
			break;
		}
		msgs = maildir_msgs(box, &n);
		if (n < before)
			r->failed = 2;
		for (i = 1; i < n; i++)
			if (msgs[i].uid <= msgs[i - 1].uid)
				r->failed = 3;
		maildir_close(&box);
		r->opens++;
		if (r->failed)
			break;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct fixture *fx = *state;
	struct race r[3];
	struct maildir_cache_stats st;
	struct timespec pause = { 0, 20 * 1000000L };
	pthread_t t[3];
	char path[PATH_MAX];
	unsigned i, k, total = 20;

	for (i = 0; i < total; i++)
		deliver(fx, "INBOX", MAILDIR_FLAG_SEEN);
	settle();
	for (i = 0; i < 3; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].fx = fx;
		atomic_store(&r[i].delivered, total);
		assert_int_equal(
		    pthread_create(&t[i], NULL, race_reader, &r[i]), 0);
	}
	/* Quiet first (snapshots stored and shared), then files arrive
	 * from "another program" while the readers keep opening. */
	settle();
	for (k = 0; k < 10; k++) {
		fmt_path(path, "%s/new/%u.race%u.host", fx->md, 2000 + k, k);
		write_file(path, "From: x\n\nrace\n");
		total++;
		for (i = 0; i < 3; i++)
			atomic_store(&r[i].delivered, total);
		nanosleep(&pause, NULL);
		if (k == 5)
			linger(); /* let a snapshot of the new state in */
	}
	linger();
	for (i = 0; i < 3; i++) {
		atomic_store(&r[i].stop, true);
		pthread_join(t[i], NULL);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(r[i].failed, 0);
		assert_true(r[i].opens > 0);
	}
	assert_int_equal(count_of(fx, "INBOX"), total);
	stats(fx, &st);
	assert_true(st.hits > 0);
	assert_true(st.stores >= 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hit_when_unchanged, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_external_changes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_uidlist_rewrite, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_dirty_scan_stored, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_own_changes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsettled, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backdated_mtime, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
