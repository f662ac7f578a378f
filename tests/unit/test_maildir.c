/*
 * test_maildir.c - Maildir++ storage: delivery and stable UIDs across
 * reopen, files dropped or removed by other programs, flags, copy/move with
 * UID pairs, folder create/delete/rename/list, subscriptions, crash
 * recovery (stray temp lists, an old list put back, a delivering child
 * killed with SIGKILL) and a 10,000-message scan. Each test works in its
 * own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir.h"
#include "tests/unit/maildir_fixture.h"

struct fixture {
	char root[PATH_MAX];
	char md[PATH_MAX]; /* the user's Maildir */
};

static char *read_msg(struct maildir *box, size_t index);
static uint32_t deliver_text(struct fixture *fx, const char *folder,
    const char *text, unsigned int flags);
static const struct maildir_folder *find_folder(const struct maildir_folder *v,
    size_t n, const char *name);

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (md_fixture_make(fx->root, fx->md, "rg-maildir",
		"User@Example.COM") == -1)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	md_fixture_remove(fx->root);
	free(fx);
	return 0;
}

static char *
read_msg(struct maildir *box, size_t index)
{
	static char buf[4096];
	const char *err;
	ssize_t n;
	int fd;

	assert_int_equal(maildir_msg_open(box, index, &fd, &err), 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* Byte copy of src to dst (a new inode). */
static void
copy_file(const char *src, const char *dst)
{
	char buf[8192];
	size_t n;
	FILE *in = fopen(src, "r"), *out = fopen(dst, "w");

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

static uint32_t
deliver_text(struct fixture *fx, const char *folder, const char *text,
    unsigned int flags)
{
	struct maildir_delivery opt = { .flags = flags };
	uint32_t uidv, uid;
	const char *err;

	assert_int_equal(maildir_deliver(fx->md, folder, text, strlen(text),
			     &opt, &uidv, &uid, &err),
	    0);
	return uid;
}

static const struct maildir_folder *
find_folder(const struct maildir_folder *v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/* ---- names ---- */

static void
test_user_dir(void **state)
{
	struct fixture *fx = *state;
	const char *err;
	char want[PATH_MAX], *dir;

	fmt_path(want, "%s/example.com/user/Maildir", fx->root);
	assert_string_equal(fx->md, want);
	assert_int_equal(maildir_user_dir("/r", "a.b@x.org", &dir, &err), 0);
	assert_string_equal(dir, "/r/x.org/a.b/Maildir");
	free(dir);
	const char *bad[] = { "nodomain", "a@b@c", "@x.org", "a@", "../x@y",
		"a/b@x.org", "a@../x", ".a@x.org", "a@.x.org", "a\n@x.org",
		"a..b@x.org", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_int_equal(maildir_user_dir("/r", bad[i], &dir, &err),
		    -1);
		assert_int_equal(errno, EINVAL);
	}
}

static void
test_folder_names(void **state)
{
	const char *err;
	char *dir;
	static const struct {
		const char *name, *dir;
	} ok[] = {
		{ "INBOX", "/m" },
		{ "inbox", "/m" },
		{ "a", "/m/.a" },
		{ "a/b", "/m/.a.b" },
		{ "v1.2", "/m/.v1%2E2" },
		{ "100%", "/m/.100%25" },
		{ "Inbox/x", "/m/.INBOX.x" },
		{ "x/inbox", "/m/.x.inbox" },
		{ "K\xc3\xa4se", "/m/.K\xc3\xa4se" },
	};
	static const char *const bad[] = { "", "/a", "a/", "a//b", "a\tb",
		"\xc3", "\xff", "a\x7f" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(
		    maildir_folder_dir("/m", ok[i].name, &dir, &err), 0);
		assert_string_equal(dir, ok[i].dir);
		free(dir);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(maildir_folder_dir("/m", bad[i], &dir, &err),
		    -1);
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(maildir_folder_dir("/m", longname, &dir, &err), -1);
}

/* ---- messages ---- */

static void
test_deliver_reopen(void **state)
{
	struct fixture *fx = *state;
	const struct maildir_msg *m;
	struct maildir_status st;
	struct maildir *box;
	uint32_t uidv, uidv2, uid;
	const char *err;
	char path[PATH_MAX];
	size_t n;

	assert_int_equal(maildir_deliver(fx->md, "INBOX", "a\r\n", 3, NULL,
			     &uidv, &uid, &err),
	    0);
	assert_int_equal(uid, 1);
	assert_int_equal(deliver_text(fx, "INBOX", "bb\nline\n", 0), 2);
	assert_int_equal(deliver_text(fx, "INBOX", "ccc\r\n", 0), 3);
	fmt_path(path, "%s/new", fx->md);
	assert_int_equal(md_count_dir(path), 3);

	assert_int_equal(maildir_status(fx->md, "INBOX", &st, &err), 0);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.recent, 3);
	assert_int_equal(st.unseen, 3);
	assert_int_equal(st.uidnext, 4);
	assert_int_equal(st.uidvalidity, uidv);

	/* read-write open: moved to cur/, \Recent in this session only */
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 3);
	assert_int_equal(maildir_uidvalidity(box), uidv);
	assert_int_equal(maildir_uidnext(box), 4);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(m[i].uid, i + 1);
		assert_true(m[i].flags & MAILDIR_FLAG_RECENT);
		assert_memory_equal(m[i].file, "cur/", 4);
	}
	assert_int_equal(m[0].size, 3);
	assert_int_equal(m[0].vsize, 3);
	assert_int_equal(m[1].size, 8);
	assert_int_equal(m[1].vsize, 10); /* two bare LFs */
	assert_true(labs((long)(m[0].date - time(NULL))) < 5);
	assert_string_equal(read_msg(box, 1), "bb\nline\n");
	maildir_close(&box);
	assert_null(box);
	fmt_path(path, "%s/cur", fx->md);
	assert_int_equal(md_count_dir(path), 3);

	assert_int_equal(maildir_open(fx->md, "inbox", 0, &box, &err), 0);
	assert_string_equal(maildir_name(box), "INBOX");
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 3);
	assert_false(m[0].flags & MAILDIR_FLAG_RECENT);
	assert_int_equal(m[2].uid, 3);
	assert_string_equal(read_msg(box, 2), "ccc\r\n");
	uidv2 = maildir_uidvalidity(box);
	assert_int_equal(uidv2, uidv);
	maildir_close(&box);

	/* APPEND with flags and date goes straight to cur/ */
	struct maildir_delivery opt = { .flags = MAILDIR_FLAG_SEEN |
		    MAILDIR_FLAG_DRAFT,
		.date = 1000000000 };
	assert_int_equal(
	    maildir_deliver(fx->md, "INBOX", "d", 1, &opt, &uidv2, &uid, &err),
	    0);
	assert_int_equal(uid, 4);
	assert_int_equal(
	    maildir_open(fx->md, "INBOX", MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 4);
	/* no read-write view has seen it: read-only views show \Recent */
	assert_int_equal(m[3].flags,
	    MAILDIR_FLAG_SEEN | MAILDIR_FLAG_DRAFT | MAILDIR_FLAG_RECENT);
	assert_int_equal(m[3].date, 1000000000);
	assert_non_null(strstr(m[3].file, ":2,DS"));
	assert_int_equal(maildir_set_flags(box, 0, 0, &err), -1);
	assert_int_equal(errno, EROFS);
	maildir_close(&box);

	/* from an fd (LMTP spools to a file first): read to EOF */
	FILE *spool = tmpfile();
	assert_non_null(spool);
	fputs("skip\nbody\nend\n", spool);
	fflush(spool);
	assert_int_equal(lseek(fileno(spool), 5, SEEK_SET), 5);
	assert_int_equal(maildir_deliver_fd(fx->md, "INBOX", fileno(spool),
			     NULL, &uidv2, &uid, &err),
	    0);
	fclose(spool);
	assert_int_equal(uid, 5);
	assert_int_equal(
	    maildir_open(fx->md, "INBOX", MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 5);
	assert_int_equal(m[4].size, 9);
	assert_int_equal(m[4].vsize, 11);
	assert_string_equal(read_msg(box, 4), "body\nend\n");
	maildir_close(&box);

	/* other folders must exist */
	errno = 0;
	assert_int_equal(
	    maildir_deliver(fx->md, "Nope", "x", 1, NULL, &uidv, &uid, &err),
	    -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_external_drop(void **state)
{
	struct fixture *fx = *state;
	struct maildir_changes ch;
	const struct maildir_msg *m;
	struct maildir *box;
	const char *err;
	char path[PATH_MAX];
	size_t n;

	deliver_text(fx, "INBOX", "one", 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	/* an MDA writes into new/, a MUA into cur/; order is the time prefix */
	fmt_path(path, "%s/new/2000000200.P1.mda,S=5", fx->md);
	write_file(path, "third");
	fmt_path(path, "%s/new/2000000100.P2.mda", fx->md);
	write_file(path, "first-no-size");
	fmt_path(path, "%s/cur/2000000150.P3.mua:2,FS", fx->md);
	write_file(path, "second");
	fmt_path(path, "%s/cur/.hidden", fx->md);
	write_file(path, "ignored");

	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 4);
	assert_int_equal(ch.expunged_count, 0);
	assert_int_equal(ch.new_first, 1);
	assert_int_equal(ch.new_count, 3);
	assert_int_equal(ch.flag_changed_count, 0);
	maildir_changes_free(&ch);
	assert_int_equal(m[1].uid, 2);
	assert_string_equal(read_msg(box, 1), "first-no-size");
	assert_int_equal(m[1].size, 13); /* stat, no S= */
	assert_int_equal(m[1].date, 2000000100);
	assert_int_equal(m[2].uid, 3);
	assert_int_equal(m[2].flags & MAILDIR_FLAGS_STORED,
	    MAILDIR_FLAG_FLAGGED | MAILDIR_FLAG_SEEN);
	assert_int_equal(m[3].uid, 4);
	assert_int_equal(m[3].size, 5);
	/* new to the folder, whichever directory it was dropped into */
	assert_true(m[1].flags & MAILDIR_FLAG_RECENT);
	assert_true(m[2].flags & MAILDIR_FLAG_RECENT);
	assert_int_equal(maildir_find_uid(box, 3), 2);
	assert_int_equal(maildir_find_uid(box, 9), -1);

	/* a second sync sees nothing new and keeps \Recent */
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	assert_int_equal(
	    ch.new_count + ch.expunged_count + ch.flag_changed_count, 0);
	maildir_changes_free(&ch);
	m = maildir_msgs(box, &n);
	assert_true(m[1].flags & MAILDIR_FLAG_RECENT);
	maildir_close(&box);
}

static void
test_external_unlink(void **state)
{
	struct fixture *fx = *state;
	struct maildir *box, *other;
	struct maildir_changes ch;
	const struct maildir_msg *m;
	const char *err;
	char path[PATH_MAX];
	uint32_t uids[1];
	size_t n;

	for (int i = 0; i < 5; i++)
		deliver_text(fx, "INBOX", "msg", 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &other, &err), 0);
	/* another program removes 2 and 4 */
	assert_int_equal(maildir_msg_path(box, 1, path, sizeof(path)), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(maildir_msg_path(box, 3, path, sizeof(path)), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	assert_int_equal(ch.expunged_count, 2);
	assert_int_equal(ch.expunged_uids[0], 2);
	assert_int_equal(ch.expunged_seqs[0], 2);
	assert_int_equal(ch.expunged_uids[1], 4);
	assert_int_equal(ch.expunged_seqs[1], 4);
	assert_int_equal(ch.new_count, 0);
	maildir_changes_free(&ch);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].uid, 1);
	assert_int_equal(m[1].uid, 3);
	assert_int_equal(m[2].uid, 5);

	/* our own expunge, seen by the other session too; UIDs never reused */
	uids[0] = 5;
	assert_int_equal(maildir_expunge(box, uids, 1, &err), 0);
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	assert_int_equal(ch.expunged_count, 1);
	assert_int_equal(ch.expunged_seqs[0], 3);
	maildir_changes_free(&ch);
	assert_int_equal(deliver_text(fx, "INBOX", "new", 0), 6);
	assert_int_equal(maildir_sync(other, &ch, &err), 0);
	assert_int_equal(ch.expunged_count, 3);
	assert_int_equal(ch.new_count, 1);
	m = maildir_msgs(other, &n);
	assert_int_equal(m[ch.new_first].uid, 6);
	maildir_changes_free(&ch);
	maildir_close(&other);
	maildir_close(&box);
}

static void
test_flags(void **state)
{
	struct fixture *fx = *state;
	struct maildir *box, *other;
	struct maildir_changes ch;
	const struct maildir_msg *m;
	const char *err;
	char from[PATH_MAX], to[PATH_MAX];
	size_t n;

	deliver_text(fx, "INBOX", "x", 0);
	deliver_text(fx, "INBOX", "y", 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &other, &err), 0);
	assert_int_equal(maildir_set_flags(box, 0,
			     MAILDIR_FLAG_SEEN | MAILDIR_FLAG_FLAGGED |
				 MAILDIR_FLAG_DELETED | MAILDIR_FLAG_RECENT,
			     &err),
	    0);
	m = maildir_msgs(box, &n);
	assert_non_null(strstr(m[0].file, ":2,FST"));
	assert_true(m[0].flags & MAILDIR_FLAG_RECENT); /* kept, not stored */
	/* own change is not reported back */
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	assert_int_equal(ch.flag_changed_count, 0);
	maildir_changes_free(&ch);
	/* the other session sees it */
	assert_int_equal(maildir_sync(other, &ch, &err), 0);
	assert_int_equal(ch.flag_changed_count, 1);
	assert_int_equal(ch.flag_changed[0], 0);
	maildir_changes_free(&ch);
	m = maildir_msgs(other, &n);
	assert_int_equal(m[0].flags,
	    MAILDIR_FLAG_SEEN | MAILDIR_FLAG_FLAGGED | MAILDIR_FLAG_DELETED);
	/* other renames behind box's back (its stored name is now stale):
	 * set_flags and msg_open follow the new name */
	assert_int_equal(
	    maildir_set_flags(other, 0, MAILDIR_FLAG_ANSWERED, &err), 0);
	assert_string_equal(read_msg(box, 0), "x");
	assert_int_equal(maildir_set_flags(box, 0,
			     MAILDIR_FLAG_SEEN | MAILDIR_FLAG_ANSWERED, &err),
	    0);
	m = maildir_msgs(box, &n);
	assert_non_null(strstr(m[0].file, ":2,RS"));
	/* a MUA renames a file by hand, keeping an unknown keyword letter */
	assert_int_equal(maildir_msg_path(box, 1, from, sizeof(from)), 0);
	fmt_path(to, "%s/cur/%.*s:2,Pa", fx->md, (int)m[1].base_len,
	    m[1].file + 4);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	assert_int_equal(ch.flag_changed_count, 1);
	assert_int_equal(ch.flag_changed[0], 1);
	maildir_changes_free(&ch);
	m = maildir_msgs(box, &n);
	assert_int_equal(m[1].flags & MAILDIR_FLAGS_STORED,
	    MAILDIR_FLAG_PASSED);
	assert_int_equal(m[1].keywords, 1);
	assert_int_equal(maildir_set_flags(box, 1,
			     MAILDIR_FLAG_PASSED | MAILDIR_FLAG_SEEN, &err),
	    0);
	m = maildir_msgs(box, &n);
	assert_non_null(strstr(m[1].file, ":2,PSa"));
	maildir_close(&other);
	maildir_close(&box);

	/* flags survive a reopen */
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(m[0].flags, MAILDIR_FLAG_SEEN | MAILDIR_FLAG_ANSWERED);
	maildir_close(&box);
}

static void
test_copy_move(void **state)
{
	struct fixture *fx = *state;
	struct maildir *box, *dst;
	struct maildir_changes ch;
	const struct maildir_msg *m;
	uint32_t uids[3] = { 1, 3, 99 }, dest[3], uidv;
	struct maildir_status st;
	const char *err;
	size_t n;

	deliver_text(fx, "INBOX", "m1", 0);
	deliver_text(fx, "INBOX", "m2", MAILDIR_FLAG_SEEN);
	deliver_text(fx, "INBOX", "m3", MAILDIR_FLAG_FLAGGED);
	assert_int_equal(maildir_create(fx->md, "Archive", &err), 0);
	assert_int_equal(maildir_status(fx->md, "Archive", &st, &err), 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);

	errno = 0;
	assert_int_equal(
	    maildir_copy(box, uids, 3, "Nope", false, &uidv, dest, &err), -1);
	assert_int_equal(errno, ENOENT);

	assert_int_equal(
	    maildir_copy(box, uids, 3, "Archive", false, &uidv, dest, &err), 0);
	assert_int_equal(uidv, st.uidvalidity);
	assert_int_equal(dest[0], 1);
	assert_int_equal(dest[1], 2);
	assert_int_equal(dest[2], 0); /* no such source */
	/* copy into the same folder gets new UIDs there */
	assert_int_equal(
	    maildir_copy(box, uids, 1, "INBOX", false, &uidv, dest, &err), 0);
	assert_int_equal(dest[0], 4);
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	assert_int_equal(ch.new_count, 1);
	maildir_changes_free(&ch);

	/* move 2 and 3 */
	uids[0] = 2;
	uids[1] = 3;
	assert_int_equal(
	    maildir_copy(box, uids, 2, "Archive", true, &uidv, dest, &err), 0);
	assert_int_equal(dest[0], 3);
	assert_int_equal(dest[1], 4);
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	assert_int_equal(ch.expunged_count, 2);
	assert_int_equal(ch.expunged_uids[0], 2);
	assert_int_equal(ch.expunged_uids[1], 3);
	maildir_changes_free(&ch);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	assert_int_equal(m[0].uid, 1);
	assert_int_equal(m[1].uid, 4);

	assert_int_equal(maildir_open(fx->md, "Archive", 0, &dst, &err), 0);
	m = maildir_msgs(dst, &n);
	assert_int_equal(n, 4);
	assert_string_equal(read_msg(dst, 0), "m1");
	assert_string_equal(read_msg(dst, 1), "m3");
	assert_string_equal(read_msg(dst, 2), "m2");
	assert_string_equal(read_msg(dst, 3), "m3");
	assert_int_equal(m[1].flags & MAILDIR_FLAGS_STORED,
	    MAILDIR_FLAG_FLAGGED);
	assert_int_equal(m[2].flags & MAILDIR_FLAGS_STORED, MAILDIR_FLAG_SEEN);
	assert_int_equal(m[0].size, 2);
	maildir_close(&dst);

	/* a read-only source cannot move */
	maildir_close(&box);
	assert_int_equal(
	    maildir_open(fx->md, "INBOX", MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	assert_int_equal(
	    maildir_copy(box, uids, 1, "Archive", true, &uidv, dest, &err), -1);
	assert_int_equal(errno, EROFS);
	maildir_close(&box);
}

static void
test_stale_view(void **state)
{
	struct fixture *fx = *state;
	struct maildir *box;
	const char *err;

	assert_int_equal(maildir_create(fx->md, "Tmp", &err), 0);
	deliver_text(fx, "Tmp", "x", 0);
	assert_int_equal(maildir_open(fx->md, "Tmp", 0, &box, &err), 0);
	assert_int_equal(maildir_delete(fx->md, "Tmp", &err), 0);
	assert_int_equal(maildir_sync(box, NULL, &err), -1);
	assert_int_equal(errno, ENOENT);
	/* same name again: a different folder, the open view is dead */
	assert_int_equal(maildir_create(fx->md, "Tmp", &err), 0);
	assert_int_equal(maildir_sync(box, NULL, &err), -1);
	assert_int_equal(errno, ESTALE);
	maildir_close(&box);
}

static void
test_diff(void **state)
{
	struct maildir_msg old[4] = { { .uid = 1 }, { .uid = 2 },
		{ .uid = 5, .flags = MAILDIR_FLAG_SEEN }, { .uid = 7 } };
	struct maildir_msg cur[4] = { { .uid = 2 }, { .uid = 5 }, { .uid = 8 },
		{ .uid = 9 } };
	struct maildir_changes ch;

	assert_int_equal(maildir_diff(old, 4, cur, 4, &ch), 0);
	assert_int_equal(ch.expunged_count, 2);
	assert_int_equal(ch.expunged_uids[0], 1);
	assert_int_equal(ch.expunged_seqs[0], 1);
	assert_int_equal(ch.expunged_uids[1], 7);
	assert_int_equal(ch.expunged_seqs[1], 4);
	assert_int_equal(ch.flag_changed_count, 1);
	assert_int_equal(ch.flag_changed[0], 1);
	assert_int_equal(ch.new_first, 2);
	assert_int_equal(ch.new_count, 2);
	maildir_changes_free(&ch);
	assert_int_equal(maildir_diff(NULL, 0, cur, 4, &ch), 0);
	assert_int_equal(ch.new_first, 0);
	assert_int_equal(ch.new_count, 4);
	maildir_changes_free(&ch);
	assert_int_equal(maildir_diff(old, 4, NULL, 0, &ch), 0);
	assert_int_equal(ch.expunged_count, 4);
	assert_int_equal(ch.new_count, 0);
	maildir_changes_free(&ch);
}

/* ---- folders ---- */

static void
test_folders(void **state)
{
	struct fixture *fx = *state;
	const struct maildir_folder *f;
	struct maildir_folder *v;
	struct maildir_status st;
	const char *err;
	char path[PATH_MAX];
	size_t n;

	assert_int_equal(maildir_create(fx->md, "a/b/c", &err), 0);
	assert_int_equal(maildir_create(fx->md, "a/b", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(maildir_create(fx->md, "INBOX", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(maildir_create(fx->md, "v1.2", &err), 0);
	assert_int_equal(maildir_create(fx->md, "a b", &err), 0);
	fmt_path(path, "%s/.a.b.c/maildirfolder", fx->md);
	assert_int_equal(access(path, F_OK), 0);
	fmt_path(path, "%s/.v1%%2E2/cur", fx->md);
	assert_int_equal(access(path, F_OK), 0);
	/* another tool made ".p.q" without ".p"; and junk entries */
	fmt_path(path, "%s/.p.q", fx->md);
	assert_int_equal(mkdir(path, 0700), 0);
	fmt_path(path, "%s/.p.q/cur", fx->md);
	assert_int_equal(mkdir(path, 0700), 0);
	fmt_path(path, "%s/.inbox", fx->md);
	assert_int_equal(mkdir(path, 0700), 0);
	fmt_path(path, "%s/..x", fx->md);
	assert_int_equal(mkdir(path, 0700), 0);
	fmt_path(path, "%s/.notafolder", fx->md);
	write_file(path, "a file");

	assert_int_equal(maildir_list(fx->md, &v, &n, &err), 0);
	assert_int_equal(n, 8);
	assert_string_equal(v[0].name, "INBOX");
	assert_int_equal(v[0].attrs, MAILDIR_ATTR_HASNOCHILDREN);
	assert_string_equal(v[1].name, "a");
	assert_string_equal(v[2].name, "a/b");
	assert_string_equal(v[3].name, "a/b/c");
	assert_string_equal(v[4].name, "a b");
	assert_int_equal(v[1].attrs, MAILDIR_ATTR_HASCHILDREN);
	assert_int_equal(v[3].attrs, MAILDIR_ATTR_HASNOCHILDREN);
	f = find_folder(v, n, "p");
	assert_non_null(f);
	assert_int_equal(f->attrs,
	    MAILDIR_ATTR_NOSELECT | MAILDIR_ATTR_HASCHILDREN);
	assert_non_null(find_folder(v, n, "p/q"));
	assert_non_null(find_folder(v, n, "v1.2"));
	maildir_list_free(v, n);

	/* delete: INBOX never, parents only once childless */
	assert_int_equal(maildir_delete(fx->md, "INBOX", &err), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(maildir_delete(fx->md, "a", &err), -1);
	assert_int_equal(errno, ENOTEMPTY);
	assert_int_equal(maildir_delete(fx->md, "zz", &err), -1);
	assert_int_equal(errno, ENOENT);
	deliver_text(fx, "a/b/c", "inside", 0);
	assert_int_equal(maildir_delete(fx->md, "a/b/c", &err), 0);
	assert_int_equal(maildir_status(fx->md, "a/b/c", &st, &err), -1);
	assert_int_equal(errno, ENOENT);
	/* re-created: a new UIDVALIDITY even within the same second */
	assert_int_equal(maildir_status(fx->md, "a/b", &st, &err), 0);
	uint32_t old = st.uidvalidity;
	assert_int_equal(maildir_delete(fx->md, "a/b", &err), 0);
	assert_int_equal(maildir_create(fx->md, "a/b", &err), 0);
	assert_int_equal(maildir_status(fx->md, "a/b", &st, &err), 0);
	assert_true(st.uidvalidity > old);
	assert_int_equal(maildir_delete(fx->md, "a/b", &err), 0);

	/* rename with children and a new parent; subscriptions follow */
	assert_int_equal(maildir_create(fx->md, "r/s/t", &err), 0);
	deliver_text(fx, "r/s", "keep me", 0);
	assert_int_equal(maildir_subscribe(fx->md, "r/s/t", true, &err), 0);
	assert_int_equal(maildir_rename(fx->md, "r/s", "r/s/x", &err), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(maildir_rename(fx->md, "r/s", "a", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(maildir_rename(fx->md, "nope", "n2", &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(maildir_rename(fx->md, "r/s", "new/top", &err), 0);
	assert_int_equal(maildir_status(fx->md, "new/top", &st, &err), 0);
	assert_int_equal(st.messages, 1);
	assert_int_equal(maildir_status(fx->md, "new/top/t", &st, &err), 0);
	assert_int_equal(maildir_status(fx->md, "r/s", &st, &err), -1);
	assert_int_equal(maildir_status(fx->md, "r", &st, &err), 0);
	char **subs;
	size_t ns;
	assert_int_equal(maildir_subscriptions(fx->md, &subs, &ns, &err), 0);
	assert_int_equal(ns, 1);
	assert_string_equal(subs[0], "new/top/t");
	maildir_strings_free(subs, ns);
}

static void
test_rename_inbox(void **state)
{
	struct fixture *fx = *state;
	struct maildir_status st;
	struct maildir *box;
	const char *err;

	deliver_text(fx, "INBOX", "one", 0);
	deliver_text(fx, "INBOX", "two", MAILDIR_FLAG_SEEN);
	assert_int_equal(maildir_create(fx->md, "INBOX/child", &err), 0);
	assert_int_equal(maildir_rename(fx->md, "INBOX", "Old", &err), 0);
	assert_int_equal(maildir_status(fx->md, "INBOX", &st, &err), 0);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.uidnext, 3); /* never reused */
	assert_int_equal(maildir_status(fx->md, "INBOX/child", &st, &err), 0);
	assert_int_equal(maildir_open(fx->md, "Old", 0, &box, &err), 0);
	size_t n;
	const struct maildir_msg *m = maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	assert_string_equal(read_msg(box, 0), "one");
	assert_int_equal(m[1].flags & MAILDIR_FLAGS_STORED, MAILDIR_FLAG_SEEN);
	maildir_close(&box);
	assert_int_equal(maildir_rename(fx->md, "Old", "inbox", &err), -1);
	assert_int_equal(errno, EEXIST);
}

static void
test_user_init_subscriptions(void **state)
{
	struct fixture *fx = *state;
	struct maildir_folder *v;
	const char *err;
	char **subs;
	size_t n, i;

	assert_int_equal(maildir_user_init(fx->md, &err), 0);
	assert_int_equal(maildir_list(fx->md, &v, &n, &err), 0);
	assert_int_equal(n, 5);
	static const struct {
		const char *name;
		unsigned int attr;
	} want[] = { { "INBOX", 0 }, { "Drafts", MAILDIR_ATTR_DRAFTS },
		{ "Junk", MAILDIR_ATTR_JUNK }, { "Sent", MAILDIR_ATTR_SENT },
		{ "Trash", MAILDIR_ATTR_TRASH } };
	for (i = 0; i < 5; i++) {
		assert_string_equal(v[i].name, want[i].name);
		assert_int_equal(v[i].attrs,
		    want[i].attr | MAILDIR_ATTR_SUBSCRIBED |
			MAILDIR_ATTR_HASNOCHILDREN);
	}
	maildir_list_free(v, n);

	/* a deleted default stays deleted */
	assert_int_equal(maildir_delete(fx->md, "Junk", &err), 0);
	assert_int_equal(maildir_user_init(fx->md, &err), 0);
	assert_int_equal(maildir_list(fx->md, &v, &n, &err), 0);
	assert_int_equal(n, 4);
	maildir_list_free(v, n);

	assert_int_equal(maildir_subscribe(fx->md, "Sent", false, &err), 0);
	assert_int_equal(maildir_subscribe(fx->md, "Sent", false, &err), 0);
	assert_int_equal(maildir_subscribe(fx->md, "Gone/x", true, &err), 0);
	assert_int_equal(maildir_subscribe(fx->md, "Gone/x", true, &err), 0);
	assert_int_equal(maildir_subscribe(fx->md, "inbox", true, &err), 0);
	assert_int_equal(maildir_subscribe(fx->md, "a//b", true, &err), -1);
	assert_int_equal(maildir_subscriptions(fx->md, &subs, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_string_equal(subs[0], "INBOX");
	assert_string_equal(subs[1], "Drafts");
	assert_string_equal(subs[2], "Trash");
	assert_string_equal(subs[3], "Junk");
	assert_string_equal(subs[4], "Gone/x");
	maildir_strings_free(subs, n);

	/* within limits: 5 subscribed = INBOX + 4 folders, the cap */
	{
		const struct maildir_limits lim = { .max_folders = 4,
			.max_name = 8 };

		errno = 0;
		assert_int_equal(
		    maildir_subscribe_limited(fx->md, "More", true, &lim, &err),
		    -1);
		assert_int_equal(errno, EMLINK);
		assert_string_equal(err, "Too many subscriptions");
		/* already subscribed, and removing: always fine */
		assert_int_equal(maildir_subscribe_limited(fx->md, "Gone/x",
				     true, &lim, &err),
		    0);
		assert_int_equal(maildir_subscribe_limited(fx->md, "Gone/x",
				     false, &lim, &err),
		    0);
		errno = 0;
		assert_int_equal(maildir_subscribe_limited(fx->md, "123456789",
				     true, &lim, &err),
		    -1);
		assert_int_equal(errno, ENAMETOOLONG);
		assert_int_equal(maildir_subscribe_limited(fx->md, "12345678",
				     true, &lim, &err),
		    0);
		assert_int_equal(maildir_subscriptions(fx->md, &subs, &n, &err),
		    0);
		assert_int_equal(n, 5);
		assert_string_equal(subs[4], "12345678");
		maildir_strings_free(subs, n);
	}
}

/* ---- crashes ---- */

static void
test_crash_stray_and_old_list(void **state)
{
	struct fixture *fx = *state;
	const struct maildir_msg *m;
	struct maildir *box;
	const char *err;
	char path[PATH_MAX], saved[PATH_MAX], list[PATH_MAX];
	uint32_t uidv;
	size_t n;

	deliver_text(fx, "INBOX", "1", 0);
	deliver_text(fx, "INBOX", "2", 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	uidv = maildir_uidvalidity(box);
	maildir_close(&box);

	/* killed mid-rewrite: a partial temp list */
	fmt_path(path, "%s/ringstore-uidlist.tmp", fx->md);
	write_file(path, "ringstore-uidlist 1 12");
	/* and a stray half-written delivery in tmp/ */
	fmt_path(path, "%s/tmp/123.partial.host", fx->md);
	write_file(path, "half");
	assert_int_equal(deliver_text(fx, "INBOX", "3", 0), 3);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	assert_int_equal(maildir_uidvalidity(box), uidv);
	maildir_msgs(box, &n);
	assert_int_equal(n, 3);
	maildir_close(&box);

	/* killed between link and the list's append: the list as it was
	 * (a copy: the append writes in place) and the new file has no UID;
	 * it gets the next one, nothing reused */
	fmt_path(list, "%s/ringstore-uidlist", fx->md);
	fmt_path(saved, "%s/saved-list", fx->root);
	copy_file(list, saved);
	assert_int_equal(deliver_text(fx, "INBOX", "4", 0), 4);
	assert_int_equal(rename(saved, list), 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 4);
	assert_int_equal(m[3].uid, 4);
	assert_string_equal(read_msg(box, 3), "4");
	assert_int_equal(maildir_uidnext(box), 5);
	maildir_close(&box);

	/* a damaged line loses only that entry's UID, never reuses one */
	FILE *f = fopen(list, "r+");
	assert_non_null(f);
	char text[4096];
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	text[len] = '\0';
	char *line2 = strchr(text, '\n') + 1;
	line2[0] = 'x';
	rewind(f);
	fwrite(text, 1, len, f);
	fclose(f);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 4);
	assert_int_equal(m[0].uid, 2);
	assert_int_equal(m[3].uid, 5);
	assert_string_equal(read_msg(box, 3), "1");
	maildir_close(&box);
}

/* Append bytes to a file as a crash could have left them. */
static void
append_bytes(const char *path, const char *bytes, size_t len)
{
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The list's text (NULs shown as '@'), into a static buffer. */
static const char *
list_text(struct fixture *fx)
{
	static char text[8192];
	char path[PATH_MAX];
	size_t i, len;
	FILE *f;

	fmt_path(path, "%s/ringstore-uidlist", fx->md);
	f = fopen(path, "r");
	assert_non_null(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	for (i = 0; i < len; i++)
		if (text[i] == '\0')
			text[i] = '@';
	text[len] = '\0';
	return text;
}

/* Deliveries append "<uid> <base>\n" records to the list (one inode, no
 * rewrite); a sync that drops an entry rewrites it whole (compaction). */
static void
test_uidlist_append(void **state)
{
	struct fixture *fx = *state;
	const struct maildir_msg *m;
	struct maildir *box;
	struct stat a, b;
	char path[PATH_MAX], file[PATH_MAX];
	const char *err, *text;
	size_t n;

	fmt_path(path, "%s/ringstore-uidlist", fx->md);
	assert_int_equal(deliver_text(fx, "INBOX", "1", 0), 1);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(deliver_text(fx, "INBOX", "2", 0), 2);
	assert_int_equal(deliver_text(fx, "INBOX", "3", 0), 3);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino == b.st_ino);
	assert_true(b.st_size > a.st_size);
	text = list_text(fx);
	/* the header still says nextuid 2: the records raise it */
	assert_non_null(strstr(text, "ringstore-uidlist 2 "));
	assert_non_null(strstr(text, "\n2 "));
	assert_non_null(strstr(text, "\n3 "));

	/* a read-only open reads the appended list and writes nothing */
	assert_int_equal(
	    maildir_open(fx->md, "INBOX", MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 3);
	assert_int_equal(m[2].uid, 3);
	assert_int_equal(maildir_uidnext(box), 4);
	/* expunge 2 behind its back: the next sync compacts the list */
	fmt_path(file, "%s/%s", fx->md, m[1].file);
	assert_int_equal(unlink(file), 0);
	maildir_close(&box);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	assert_int_equal(m[1].uid, 3);
	assert_int_equal(maildir_uidnext(box), 4);
	maildir_close(&box);
	assert_int_equal(stat(path, &a), 0);
	assert_true(a.st_ino != b.st_ino);
	assert_null(strstr(list_text(fx), "\n2 "));
	assert_int_equal(deliver_text(fx, "INBOX", "4", 0), 4);
}

/* What a crash can leave at the end of an appended list: a torn record
 * (never acknowledged) is not appended after but rewritten away; a block
 * of NULs (an unwritten block) does not hide the records after it. */
static void
test_uidlist_torn(void **state)
{
	struct fixture *fx = *state;
	const struct maildir_msg *m;
	struct maildir *box;
	char path[PATH_MAX], *p, *text;
	const char *err;
	uint32_t uidv;
	size_t n, len;
	FILE *f;

	fmt_path(path, "%s/ringstore-uidlist", fx->md);
	assert_int_equal(deliver_text(fx, "INBOX", "1", 0), 1);
	assert_int_equal(deliver_text(fx, "INBOX", "2", 0), 2);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	uidv = maildir_uidvalidity(box);
	maildir_close(&box);

	/* a torn record without its newline: the next delivery rewrites */
	append_bytes(path, "3 1700000000.M1P2.torn", 22);
	assert_int_equal(deliver_text(fx, "INBOX", "3", 0), 3);
	assert_null(strstr(list_text(fx), "torn"));
	/* zeros where a crash lost a block */
	append_bytes(path, "\0\0\0\0\0\0", 6);
	assert_int_equal(deliver_text(fx, "INBOX", "4", 0), 4);
	assert_null(strchr(list_text(fx), '@'));

	/* zeros over record 2, records after it intact: 3 and 4 keep
	 * their UIDs, 2's file gets a new one, nothing is reused */
	text = strdup(list_text(fx));
	assert_non_null(text);
	p = strstr(text, "\n2 ") + 1;
	len = strlen(text);
	memset(p, '\0', (size_t)(strchr(p, '\n') - p));
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(text);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	assert_int_equal(maildir_uidvalidity(box), uidv);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 4);
	assert_int_equal(m[0].uid, 1);
	assert_int_equal(m[1].uid, 3);
	assert_string_equal(read_msg(box, 1), "3");
	assert_int_equal(m[2].uid, 4);
	assert_int_equal(m[3].uid, 5);
	assert_string_equal(read_msg(box, 3), "2");
	maildir_close(&box);
	assert_int_equal(deliver_text(fx, "INBOX", "5", 0), 6);
}

/* A version 1 list (an older ringstore) is read and appended to. */
static void
test_uidlist_v1(void **state)
{
	struct fixture *fx = *state;
	const struct maildir_msg *m;
	struct maildir *box;
	char path[PATH_MAX], line[PATH_MAX + 64];
	const char *err;
	size_t n;
	FILE *f;

	assert_int_equal(deliver_text(fx, "INBOX", "1", 0), 1);
	assert_int_equal(
	    maildir_open(fx->md, "INBOX", MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	m = maildir_msgs(box, &n);
	snprintf(line, sizeof(line), "ringstore-uidlist 1 77 8\n7 %.*s\n",
	    (int)m[0].base_len, m[0].file + 4);
	maildir_close(&box);
	fmt_path(path, "%s/ringstore-uidlist", fx->md);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(line, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(deliver_text(fx, "INBOX", "2", 0), 8);
	assert_non_null(strstr(list_text(fx), "ringstore-uidlist 1 77 8\n"));
	assert_int_equal(
	    maildir_open(fx->md, "INBOX", MAILDIR_OPEN_READONLY, &box, &err),
	    0);
	assert_int_equal(maildir_uidvalidity(box), 77);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	assert_int_equal(m[0].uid, 7);
	assert_int_equal(m[1].uid, 8);
	assert_string_equal(read_msg(box, 1), "2");
	maildir_close(&box);
}

/* Deliver numbered messages until killed; report each acknowledged UID. */
static void
deliver_loop(const char *md, int out, int id)
{
	char text[64];
	uint32_t uidv, uid, rec[2];
	const char *err;

	for (uint32_t i = 0;; i++) {
		snprintf(text, sizeof(text), "child %d message %u", id, i);
		if (maildir_deliver(md, "INBOX", text, strlen(text), NULL,
			&uidv, &uid, &err) == -1)
			_exit(1);
		rec[0] = uid;
		rec[1] = i;
		if (write(out, rec, sizeof(rec)) != sizeof(rec))
			_exit(1);
	}
}

static void
test_crash_kill(void **state)
{
	struct fixture *fx = *state;
	enum { CHILDREN = 2 };
	struct {
		uint32_t uid, i, child;
	} acked[20000];
	size_t nacked = 0, n, i, j;
	const struct maildir_msg *m;
	struct maildir *box;
	const char *err;
	pid_t pids[CHILDREN];
	int pipes[CHILDREN][2], c, syncs = 0;
	char want[64];
	uint32_t rec[2];

	assert_int_equal(maildir_user_init(fx->md, &err), 0);
	for (c = 0; c < CHILDREN; c++) {
		assert_int_equal(pipe(pipes[c]), 0);
		pids[c] = fork();
		assert_true(pids[c] != -1);
		if (pids[c] == 0) {
			close(pipes[c][0]);
			deliver_loop(fx->md, pipes[c][1], c);
		}
		close(pipes[c][1]);
	}
	/* sync concurrently (moving new/ to cur/) while they deliver */
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		assert_int_equal(maildir_sync(box, NULL, &err), 0);
		syncs++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000 +
		(now.tv_nsec - start.tv_nsec) / 1000000 <
	    700);
	for (c = 0; c < CHILDREN; c++)
		kill(pids[c], SIGKILL);
	for (c = 0; c < CHILDREN; c++) {
		waitpid(pids[c], NULL, 0);
		while (read(pipes[c][0], rec, sizeof(rec)) == sizeof(rec) &&
		    nacked < sizeof(acked) / sizeof(acked[0])) {
			acked[nacked].uid = rec[0];
			acked[nacked].i = rec[1];
			acked[nacked++].child = (uint32_t)c;
		}
		close(pipes[c][0]);
	}
	assert_int_equal(maildir_sync(box, NULL, &err), 0);
	m = maildir_msgs(box, &n);
	print_message("killed %d deliverers: %zu acknowledged, %zu in the "
		      "folder, %d concurrent syncs\n",
	    CHILDREN, nacked, n, syncs);
	assert_true(nacked > 0);
	for (i = 1; i < n; i++)
		assert_true(m[i].uid > m[i - 1].uid);
	for (j = 0; j < nacked; j++) {
		long idx = maildir_find_uid(box, acked[j].uid);

		assert_true(idx >= 0);
		fmt_path(want, "child %u message %u", acked[j].child,
		    acked[j].i);
		assert_string_equal(read_msg(box, (size_t)idx), want);
	}
	/* at most one unacknowledged message per child */
	assert_true(n <= nacked + CHILDREN);
	maildir_close(&box);
}

/* ---- scale ---- */

static void
test_scan_10k(void **state)
{
	struct fixture *fx = *state;
	enum { N = 10000 };
	struct timespec t0, t1, t2;
	struct maildir_changes ch;
	const struct maildir_msg *m;
	struct maildir *box;
	const char *err;
	char path[PATH_MAX];
	size_t n, i;
	int fd;

	assert_int_equal(maildir_user_init(fx->md, &err), 0);
	for (i = 0; i < N; i++) {
		fmt_path(path, "%s/cur/%zu.M%zuP1.bulk,S=10:2,%s", fx->md,
		    1600000000 + i / 7, i, i % 3 ? "S" : "");
		fd = open(path, O_WRONLY | O_CREAT, 0600);
		assert_true(fd != -1);
		assert_int_equal(write(fd, "0123456789", 10), 10);
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(maildir_sync(box, &ch, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	assert_int_equal(ch.new_count + ch.expunged_count, 0);
	maildir_changes_free(&ch);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, N);
	for (i = 0; i < n; i++) {
		assert_int_equal(m[i].uid, i + 1);
		assert_int_equal(m[i].size, 10);
	}
	print_message("10000 messages: first open (assigning UIDs) %.1f ms, "
		      "resync %.1f ms\n",
	    (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
	    (t2.tv_sec - t1.tv_sec) * 1e3 + (t2.tv_nsec - t1.tv_nsec) / 1e6);
	maildir_close(&box);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_user_dir, setup, teardown),
		cmocka_unit_test(test_folder_names),
		cmocka_unit_test_setup_teardown(test_deliver_reopen, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_external_drop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_external_unlink, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_move, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stale_view, setup,
		    teardown),
		cmocka_unit_test(test_diff),
		cmocka_unit_test_setup_teardown(test_folders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_inbox, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_user_init_subscriptions,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_stray_and_old_list,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_uidlist_append, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_uidlist_torn, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_uidlist_v1, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_kill, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scan_10k, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
