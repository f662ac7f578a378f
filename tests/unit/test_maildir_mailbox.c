/*
 * test_maildir_mailbox.c - what several sessions of one mailbox may
 * assume of each other at the library level (issue 9):
 *
 * - tmp/ cleanup: a file is removed only when its ctime and the time in
 *   its name are both 36 hours old and no deliverer holds it; an mtime
 *   an APPEND set to 2020 does not count, nor does a file in flight;
 *   deliveries dated 2020 (whole and in pieces) all succeed while
 *   another thread opens the folder read-write in a loop;
 * - \Recent: each message is recent in exactly one read-write view (the
 *   first to sync after it got its UID), whether it came to new/, or to
 *   cur/ with flags, or by COPY; read-only views and STATUS report what
 *   nobody has claimed and do not claim it;
 * - folder names: "." and ".." (also as components) are refused, names
 *   longer than a directory entry are ENAMETOOLONG;
 * - maildir_check_limits(): folder count (with the parents a CREATE or
 *   RENAME makes), depth and length, children's new names for RENAME.
 *
 * Each test works in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir_private.h"
#include "tests/unit/maildir_fixture.h"

/* 2020-03-15 10:00:00 UTC: a date a migration tool would APPEND with */
#define OLD_DATE ((time_t)1584266400)
#define HOURS(n) ((time_t)(n)*3600)

static size_t count_entries(const char *dir);
static bool exists_in(const char *dir, const char *name);
static int make_tmp(const char *tmpdir, const char *name);
static void set_mtime(const char *path, time_t t);
static uint32_t deliver(struct md_fixture *fx, const char *folder,
    unsigned int flags, time_t date);
static size_t recent_count(struct maildir *box);
static uint32_t status_recent(struct md_fixture *fx, const char *folder);

static int
setup(void **state)
{
	return md_fixture_setup(state, "rg-mdbox");
}

static int
teardown(void **state)
{
	return md_fixture_teardown(state);
}

static size_t
count_entries(const char *dir)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool
exists_in(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	fmt_path(path, "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* A file in tmp/ as a deliverer would leave it; returns its open fd. */
static int
make_tmp(const char *tmpdir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	fmt_path(path, "%s/%s", tmpdir, name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "x\r\n", 3), 3);
	return fd;
}

static void
set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { .tv_sec = t }, { .tv_sec = t } };

	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static uint32_t
deliver(struct md_fixture *fx, const char *folder, unsigned int flags,
    time_t date)
{
	struct maildir_delivery opt = { .flags = flags, .date = date };
	static const char text[] = "Subject: hi\r\n\r\nbody\r\n";
	uint32_t uidv, uid;
	const char *err;

	assert_int_equal(maildir_deliver(fx->md, folder, text, sizeof(text) - 1,
			     &opt, &uidv, &uid, &err),
	    0);
	return uid;
}

static size_t
recent_count(struct maildir *box)
{
	const struct maildir_msg *m;
	size_t n, i, r = 0;

	m = maildir_msgs(box, &n);
	for (i = 0; i < n; i++)
		r += (m[i].flags & MAILDIR_FLAG_RECENT) != 0;
	return r;
}

static uint32_t
status_recent(struct md_fixture *fx, const char *folder)
{
	struct maildir_status st;
	const char *err;

	assert_int_equal(maildir_status(fx->md, folder, &st, &err), 0);
	return st.recent;
}

/* ---- tmp/ cleanup ---- */

/* Which tmp/ files go, judged 1 hour and 37 hours from now. */
static void
test_tmp_cleanup_rules(void **state)
{
	struct md_fixture *fx = *state;
	char tmp[PATH_MAX], path[PATH_MAX], name[64];
	time_t now = time(NULL);
	int stray, dated, future, held_fd;

	fmt_path(tmp, "%s/tmp", fx->md);
	/* a delivery killed before its link: no time in the name */
	stray = make_tmp(tmp, "stray");
	close(stray);
	/* an APPEND dated 2020 set the mtime to 2020 before its link */
	dated = make_tmp(tmp, "dated");
	close(dated);
	fmt_path(path, "%s/dated", tmp);
	set_mtime(path, OLD_DATE);
	/* a delivery in flight holds its lock */
	held_fd = make_tmp(tmp, "held");
	assert_int_equal(flock(held_fd, LOCK_EX | LOCK_NB), 0);
	/* a name that says it was made later than the limit */
	snprintf(name, sizeof(name), "%lld.M1P1.host",
	    (long long)(now + HOURS(40)));
	future = make_tmp(tmp, name);
	close(future);
	fmt_path(path, "%s/sub", tmp);
	assert_int_equal(mkdir(path, 0700), 0);
	fmt_path(path, "%s/link", tmp);
	assert_int_equal(symlink("/nonexistent", path), 0);

	md_clean_tmp(fx->md, now + HOURS(1));
	assert_int_equal(count_entries(tmp), 6); /* nothing is old yet */

	md_clean_tmp(fx->md, now + HOURS(37));
	assert_false(exists_in(tmp, "stray"));
	assert_false(exists_in(tmp, "dated"));
	assert_true(exists_in(tmp, "held"));
	assert_true(exists_in(tmp, name));
	assert_true(exists_in(tmp, "sub"));
	assert_true(exists_in(tmp, "link"));

	/* released: it is garbage now */
	close(held_fd);
	md_clean_tmp(fx->md, now + HOURS(37));
	assert_false(exists_in(tmp, "held"));
}

/* A delivery in pieces is in tmp/ for as long as its client takes; the
 * cleanup never takes it, even when it judges 37 hours ahead. */
static void
test_tmp_in_flight_survives(void **state)
{
	struct md_fixture *fx = *state;
	struct maildir_delivery opt = { .date = OLD_DATE };
	struct maildir_incoming *in;
	struct maildir *box;
	char tmp[PATH_MAX];
	uint32_t uidv, uid;
	const char *err;
	size_t n;

	fmt_path(tmp, "%s/tmp", fx->md);
	assert_int_equal(
	    maildir_deliver_begin(fx->md, "INBOX", &opt, &in, &err), 0);
	assert_int_equal(
	    maildir_deliver_write(in, "Subject: x\r\n\r\n", 14, &err), 0);
	md_clean_tmp(fx->md, time(NULL) + HOURS(37));
	assert_int_equal(count_entries(tmp), 1);
	/* and a read-write open meanwhile does not take it either */
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	maildir_close(&box);
	assert_int_equal(maildir_deliver_commit(&in, &uidv, &uid, &err), 0);
	assert_int_equal(count_entries(tmp), 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	assert_int_equal(maildir_msgs(box, &n)->date, OLD_DATE);
	assert_int_equal(n, 1);
	maildir_close(&box);
}

struct opener {
	const char *md;
	atomic_bool stop;
	unsigned long opens;
	int failed;
};

static void *
open_loop(void *arg)
{
	struct opener *o = arg;
	struct maildir *box;
	const char *err;

	while (!atomic_load(&o->stop)) {
		if (maildir_open(o->md, "INBOX", 0, &box, &err) == -1) {
			o->failed++;
			continue;
		}
		maildir_close(&box);
		o->opens++;
	}
	return NULL;
}

/* Issue 9 bug 1 at the library level: every delivery dated 2020 lands
 * while another thread opens the folder read-write (and so runs the
 * cleanup) as fast as it can. */
static void
test_old_dates_while_opening(void **state)
{
	struct md_fixture *fx = *state;
	struct opener o = { .md = fx->md };
	struct maildir_delivery opt = { .date = OLD_DATE };
	struct maildir_incoming *in;
	struct maildir *box;
	uint32_t uidv, uid;
	const char *err;
	pthread_t t;
	int i, failed = 0, ok = 0;
	size_t n;

	assert_int_equal(pthread_create(&t, NULL, open_loop, &o), 0);
	for (i = 0; i < 300; i++) {
		opt.flags = i % 3 == 0 ? MAILDIR_FLAG_SEEN : 0;
		if (i % 2 == 0) {
			if (maildir_deliver(fx->md, "INBOX", "a\r\n", 3, &opt,
				&uidv, &uid, &err) == 0)
				ok++;
			else
				failed++;
			continue;
		}
		if (maildir_deliver_begin(fx->md, "INBOX", &opt, &in, &err) ==
			0 &&
		    maildir_deliver_write(in, "b\r\n", 3, &err) == 0 &&
		    maildir_deliver_commit(&in, &uidv, &uid, &err) == 0)
			ok++;
		else
			failed++;
		maildir_deliver_abort(&in);
	}
	atomic_store(&o.stop, true);
	pthread_join(t, NULL);
	print_message("%d of 300 deliveries failed against %lu opens\n", failed,
	    o.opens);
	assert_int_equal(failed, 0);
	assert_int_equal(o.failed, 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	maildir_msgs(box, &n);
	assert_int_equal(n, (size_t)ok);
	maildir_close(&box);
}

/* ---- \Recent ---- */

/* Whatever way a message arrives (new/, cur/ with flags, COPY, MOVE, a
 * file another program drops), the first read-write view to sync gets
 * it as \Recent, and only that one; read-only views and STATUS show the
 * unclaimed ones and leave them unclaimed. */
static void
test_recent_first_view(void **state)
{
	struct md_fixture *fx = *state;
	struct maildir *a, *b, *ro, *src;
	uint32_t uids[1], dest[1], uidv;
	char path[PATH_MAX];
	const char *err;

	deliver(fx, "INBOX", 0, 0);
	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN, 0);
	deliver(fx, "INBOX", MAILDIR_FLAG_FLAGGED, OLD_DATE);
	assert_int_equal(status_recent(fx, "INBOX"), 3);
	assert_int_equal(
	    maildir_open(fx->md, "INBOX", MAILDIR_OPEN_READONLY, &ro, &err), 0);
	assert_int_equal(recent_count(ro), 3);
	assert_int_equal(status_recent(fx, "INBOX"), 3); /* still */

	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &a, &err), 0);
	assert_int_equal(recent_count(a), 3);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &b, &err), 0);
	assert_int_equal(recent_count(b), 0);
	assert_int_equal(status_recent(fx, "INBOX"), 0);

	/* COPY into the folder: the first sync after it claims it */
	deliver(fx, "Trash", MAILDIR_FLAG_ANSWERED, 0);
	assert_int_equal(maildir_open(fx->md, "Trash", 0, &src, &err), 0);
	uids[0] = maildir_msgs(src, &(size_t){ 0 })[0].uid;
	assert_int_equal(
	    maildir_copy(src, uids, 1, "INBOX", false, &uidv, dest, &err), 0);
	assert_int_equal(status_recent(fx, "INBOX"), 1);
	assert_int_equal(maildir_sync(b, NULL, &err), 0);
	assert_int_equal(maildir_sync(a, NULL, &err), 0);
	assert_int_equal(recent_count(b), 1);
	assert_int_equal(recent_count(a), 3);
	assert_true(
	    maildir_msgs(b, &(size_t){ 0 })[3].flags & MAILDIR_FLAG_RECENT);
	/* MOVE: the same */
	assert_int_equal(
	    maildir_copy(src, uids, 1, "INBOX", true, &uidv, dest, &err), 0);
	assert_int_equal(maildir_sync(a, NULL, &err), 0);
	assert_int_equal(maildir_sync(b, NULL, &err), 0);
	assert_int_equal(recent_count(a), 4);
	assert_int_equal(recent_count(b), 1);
	/* a file another program drops into cur/ */
	fmt_path(path, "%s/cur/2000000000.P9.mua:2,S", fx->md);
	write_file(path, "dropped\r\n");
	assert_int_equal(maildir_sync(b, NULL, &err), 0);
	assert_int_equal(maildir_sync(a, NULL, &err), 0);
	assert_int_equal(recent_count(b), 2);
	assert_int_equal(recent_count(a), 4);
	/* the read-only view keeps what it showed and shows the new ones
	 * (it cannot know who claimed them: RFC 3501 says show them) */
	assert_int_equal(maildir_sync(ro, NULL, &err), 0);
	assert_int_equal(recent_count(ro), 3);
	maildir_close(&ro);
	assert_int_equal(status_recent(fx, "INBOX"), 0);
	maildir_close(&a);
	maildir_close(&b);
	maildir_close(&src);
}

/* A UID list from before \Recent was recorded (version 1): what it
 * lists counts as seen, what it does not list is new. */
static void
test_recent_version1_list(void **state)
{
	struct md_fixture *fx = *state;
	struct maildir *box;
	char path[PATH_MAX], line[128];
	const struct maildir_msg *m;
	uint32_t uidv;
	const char *err;
	size_t n;
	FILE *f;

	deliver(fx, "INBOX", 0, 0);
	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN, 0);
	assert_int_equal(
	    maildir_open(fx->md, "INBOX", MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	uidv = maildir_uidvalidity(box);
	fmt_path(path, "%s/ringstore-uidlist", fx->md);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "ringstore-uidlist 1 %u 3\n", uidv);
	snprintf(line, sizeof(line), "%u %.*s\n", m[0].uid, (int)m[0].base_len,
	    m[0].file + 4);
	fputs(line, f);
	assert_int_equal(fclose(f), 0);
	maildir_close(&box);
	/* UID 2 fell out of the list: it comes back as UID 3, new */
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	assert_int_equal(maildir_uidvalidity(box), uidv);
	assert_false(m[0].flags & MAILDIR_FLAG_RECENT);
	assert_int_equal(m[1].uid, 3);
	assert_true(m[1].flags & MAILDIR_FLAG_RECENT);
	maildir_close(&box);
}

enum { RECENT_MSGS = 240, RECENT_THREADS = 4 };

struct claimer {
	struct md_fixture *fx;
	struct maildir_cache *cache; /* NULL: no snapshots */
	atomic_bool *stop;
	atomic_uint *seen; /* per UID: views that had it \Recent */
	int failed;
};

/* Count the \Recent ones among view indexes [from, n). A read-write
 * view decides \Recent at the sync a message first appears in. */
static void
count_claims(struct maildir *box, size_t from, atomic_uint *seen)
{
	const struct maildir_msg *m;
	size_t n, i;

	m = maildir_msgs(box, &n);
	for (i = from; i < n; i++)
		if ((m[i].flags & MAILDIR_FLAG_RECENT) &&
		    m[i].uid <= RECENT_MSGS)
			atomic_fetch_add(&seen[m[i].uid], 1);
}

static void *
claim_loop(void *arg)
{
	struct claimer *c = arg;
	struct maildir_changes ch;
	struct maildir *box;
	const char *err;
	bool last = false;

	/* one more round after stop, so nothing delivered is left */
	while (!last) {
		last = atomic_load(c->stop);
		if (maildir_open_cached(c->cache, c->fx->md, "INBOX", 0, &box,
			&err) == -1) {
			c->failed++;
			continue;
		}
		count_claims(box, 0, c->seen);
		/* a sync of an open view may claim too */
		if (maildir_sync(box, &ch, &err) == -1) {
			c->failed++;
		} else {
			count_claims(box, ch.new_first, c->seen);
			maildir_changes_free(&ch);
		}
		maildir_close(&box);
	}
	return NULL;
}

/* Threads (half of them through one snapshot cache, like ringstore's
 * store pool) open and sync the folder read-write while messages
 * arrive in every way: each message is \Recent in exactly one view. */
static void
test_recent_exactly_once(void **state)
{
	struct md_fixture *fx = *state;
	struct claimer c[RECENT_THREADS];
	pthread_t t[RECENT_THREADS];
	static atomic_uint seen[RECENT_MSGS + 1];
	atomic_bool stop = false;
	struct maildir_cache *cache;
	uint32_t uid;
	int i;

	cache = maildir_cache_new(16, 1u << 20, 0);
	assert_non_null(cache);
	for (i = 0; i <= RECENT_MSGS; i++)
		atomic_store(&seen[i], 0);
	for (i = 0; i < RECENT_THREADS; i++) {
		c[i] = (struct claimer){ .fx = fx,
			.cache = i % 2 ? cache : NULL,
			.stop = &stop,
			.seen = seen };
		assert_int_equal(pthread_create(&t[i], NULL, claim_loop, &c[i]),
		    0);
	}
	for (i = 1; i <= RECENT_MSGS; i++) {
		uid = deliver(fx, "INBOX", i % 3 ? 0 : MAILDIR_FLAG_SEEN, 0);
		assert_int_equal(uid, (uint32_t)i);
	}
	atomic_store(&stop, true);
	for (i = 0; i < RECENT_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].failed, 0);
	}
	maildir_cache_free(&cache);
	for (i = 1; i <= RECENT_MSGS; i++)
		if (atomic_load(&seen[i]) != 1)
			fail_msg("UID %d was \\Recent in %u views", i,
			    atomic_load(&seen[i]));
	assert_int_equal(status_recent(fx, "INBOX"), 0);
}

/* ---- folder names and limits ---- */

/* "." and ".." are path steps to every tool, never folder names; names
 * longer than a directory entry are a limit (ENAMETOOLONG), not a bad
 * name. */
static void
test_dot_names(void **state)
{
	static const char *const bad[] = { ".", "..", "a/..", "../a", "a/../b",
		"a/./b", "INBOX/..", "./." };
	static const char *const good[] = { "...", "..a", "a..", ".a", "a.",
		"v1.2/..x" };
	struct md_fixture *fx = *state;
	char name[300];
	const char *err;
	char *dir;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_int_equal(maildir_folder_dir(fx->md, bad[i], &dir, &err),
		    -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(maildir_create(fx->md, bad[i], &err), -1);
		assert_int_equal(errno, EINVAL);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(maildir_create(fx->md, good[i], &err), 0);
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(maildir_create(fx->md, name, &err), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	name[254] = '\0'; /* ".xxx...": exactly one 255-byte entry */
	assert_int_equal(maildir_create(fx->md, name, &err), 0);
}

static size_t
folder_count(struct md_fixture *fx)
{
	struct maildir_folder *v;
	const char *err;
	size_t n, i, k = 0;

	assert_int_equal(maildir_list(fx->md, &v, &n, &err), 0);
	for (i = 0; i < n; i++)
		k += !(v[i].attrs & MAILDIR_ATTR_NOSELECT) &&
		    strcmp(v[i].name, "INBOX") != 0;
	maildir_list_free(v, n);
	return k;
}

static void
test_folder_limits(void **state)
{
	struct md_fixture *fx = *state;
	struct maildir_limits lim = { .max_folders = 8,
		.max_depth = 3,
		.max_name = 20 };
	struct maildir_limits none = { 0 };
	char path[PATH_MAX];
	const char *err;

	/* setup made Drafts, Sent, Trash, Junk */
	assert_int_equal(folder_count(fx), 4);
	assert_int_equal(
	    maildir_check_limits(fx->md, NULL, "a/b/c/d/e", NULL, &err), 0);
	assert_int_equal(
	    maildir_check_limits(fx->md, &none, "a/b/c/d/e", NULL, &err), 0);
	/* depth and length of the name */
	assert_int_equal(
	    maildir_check_limits(fx->md, &lim, "a/b/c", NULL, &err), 0);
	assert_int_equal(
	    maildir_check_limits(fx->md, &lim, "a/b/c/d", NULL, &err), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(maildir_check_limits(fx->md, &lim,
			     "aaaaaaaaaabbbbbbbbbbc", NULL, &err),
	    -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* the count: a/b/c makes three folders (7), then one more fits */
	assert_int_equal(maildir_create(fx->md, "a/b/c", &err), 0);
	assert_int_equal(folder_count(fx), 7);
	assert_int_equal(maildir_check_limits(fx->md, &lim, "x/y", NULL, &err),
	    -1);
	assert_int_equal(errno, EMLINK);
	assert_int_equal(maildir_check_limits(fx->md, &lim, "x", NULL, &err),
	    0);
	/* an existing name adds nothing (CREATE then says EEXIST) */
	assert_int_equal(maildir_check_limits(fx->md, &lim, "a/b", NULL, &err),
	    0);
	/* INBOX/x has the Maildir itself as parent */
	assert_int_equal(
	    maildir_check_limits(fx->md, &lim, "INBOX/x", NULL, &err), 0);
	assert_int_equal(maildir_create(fx->md, "x", &err), 0);
	assert_int_equal(maildir_check_limits(fx->md, &lim, "y", NULL, &err),
	    -1);
	assert_int_equal(errno, EMLINK);
	/* RENAME: moves add nothing; new parents do; so does INBOX, whose
	 * messages become a new folder; children's new names count */
	assert_int_equal(maildir_check_limits(fx->md, &lim, "z", "x", &err), 0);
	assert_int_equal(maildir_check_limits(fx->md, &lim, "p/q", "x", &err),
	    -1);
	assert_int_equal(errno, EMLINK);
	assert_int_equal(
	    maildir_check_limits(fx->md, &lim, "old", "INBOX", &err), -1);
	assert_int_equal(errno, EMLINK);
	assert_int_equal(maildir_check_limits(fx->md, &lim, "x/n", "a", &err),
	    -1); /* a/b/c would become x/n/b/c: four levels */
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(maildir_check_limits(fx->md, &lim, "a/b", "x", &err),
	    0);
	assert_int_equal(maildir_check_limits(fx->md, &lim,
			     "0123456789012345678", "a", &err),
	    -1); /* ...8/b/c is 23 bytes */
	assert_int_equal(errno, ENAMETOOLONG);
	/* a parent made by another program (a bare directory) is no folder:
	 * creating below it counts it */
	fmt_path(path, "%s/.bare.child", fx->md);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(folder_count(fx), 8);
	lim.max_folders = 9;
	assert_int_equal(maildir_check_limits(fx->md, &lim, "bare", NULL, &err),
	    0);
	assert_int_equal(
	    maildir_check_limits(fx->md, &lim, "bare/more", NULL, &err), -1);
	assert_int_equal(errno, EMLINK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tmp_cleanup_rules, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tmp_in_flight_survives,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_dates_while_opening,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent_first_view, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recent_version1_list,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent_exactly_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_dot_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_folder_limits, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
