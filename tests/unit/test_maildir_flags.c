/*
 * test_maildir_flags.c - flag changes and keywords in the Maildir library.
 *
 * Flag changes apply to the flags the file has on disk when it is renamed:
 * a stale view's change keeps another view's (the issue 9 sequence), and
 * three processes toggling their own flag or keyword on one message with
 * views they never sync lose nothing over many rounds. Keywords: the
 * dovecot-keywords parser on odd input, a folder's file read (duplicates,
 * names that are no keyword, letters without a line) and extended in
 * Dovecot's format, the 26-letter limit (all or nothing), delivery with
 * keywords, and COPY/MOVE mapping letters into the destination's file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/maildir_private.h"
#include "tests/unit/maildir_fixture.h"

#define ROUNDS 500

struct fixture {
	char root[PATH_MAX];
	char md[PATH_MAX];
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *err;

	if (fx == NULL ||
	    md_fixture_make(fx->root, fx->md, "rg-flags", "u@example.test") ==
		-1 ||
	    maildir_user_init(fx->md, &err) == -1)
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

static uint32_t
deliver(struct fixture *fx, const char *folder, unsigned int flags,
    const char *const *keywords, size_t nkw)
{
	struct maildir_delivery opt = { .flags = flags,
		.keywords = keywords,
		.keyword_count = nkw };
	uint32_t uidv, uid;
	const char *err;

	assert_int_equal(maildir_deliver(fx->md, folder, "Subject: x\r\n\r\n",
			     15, &opt, &uidv, &uid, &err),
	    0);
	return uid;
}

/* The info after ":2," of the only message file of a folder's cur/. */
static void
only_info(const char *dir, char *info, size_t size)
{
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	fmt_path(path, "%s/cur", dir);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		const char *p = strstr(de->d_name, ":2,");

		if (p == NULL)
			continue;
		snprintf(info, size, "%s", p + 3);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
}

static char *
slurp(const char *path)
{
	static char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	assert_true(fd != -1);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* ---- flag changes ---- */

static void
test_stale_view_keeps_other_change(void **state)
{
	struct fixture *fx = *state;
	struct maildir_flag_change answered = { .set = MAILDIR_FLAG_ANSWERED };
	struct maildir_flag_change unseen = { .clear = MAILDIR_FLAG_SEEN };
	struct maildir *a, *b;
	const struct maildir_msg *m;
	const char *err;
	char info[64];
	size_t n;

	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN, NULL, 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &a, &err), 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &b, &err), 0);
	assert_int_equal(maildir_change_flags(a, 0, &answered, &err), 0);
	/* b never synced: its view still says (\Seen) under the old name */
	assert_int_equal(maildir_change_flags(b, 0, &unseen, &err), 0);
	m = maildir_msgs(b, &n);
	/* \Recent is the view's own (the first read-write one claims it) */
	assert_int_equal(m[0].flags & ~MAILDIR_FLAG_RECENT,
	    MAILDIR_FLAG_ANSWERED);
	only_info(fx->md, info, sizeof(info));
	assert_string_equal(info, "R");
	/* a no-op change on a stale name finds the file and reports it */
	assert_int_equal(maildir_change_flags(a, 0, &answered, &err), 0);
	m = maildir_msgs(a, &n);
	assert_int_equal(m[0].flags & ~MAILDIR_FLAG_RECENT,
	    MAILDIR_FLAG_ANSWERED);
	maildir_close(&a);
	maildir_close(&b);
}

/* One process: toggle bit (or keyword letter 0) ROUNDS times on message
 * 0 through a view it never syncs, ending set; exit 1 on a wrong view. */
static void
toggler(const char *md, unsigned int flag, uint32_t letter)
{
	struct maildir *box;
	const struct maildir_msg *m;
	const char *err;
	size_t n;
	int r;

	if (maildir_open(md, "INBOX", 0, &box, &err) == -1)
		_exit(2);
	for (r = 0; r < ROUNDS; r++) {
		bool set = r % 2 == 1;
		struct maildir_flag_change c = { 0 };

		if (set) {
			c.set = flag;
			c.set_keywords = letter;
		} else {
			c.clear = flag;
			c.clear_keywords = letter;
		}
		if (maildir_change_flags(box, 0, &c, &err) == -1)
			_exit(errno == EAGAIN ? 3 : 4);
		m = maildir_msgs(box, &n);
		if ((flag != 0 && ((m[0].flags & flag) != 0) != set) ||
		    (letter != 0 && ((m[0].keywords & letter) != 0) != set) ||
		    !(m[0].flags & MAILDIR_FLAG_SEEN))
			_exit(1);
	}
	maildir_close(&box);
	_exit(0);
}

static void
test_three_processes_toggle(void **state)
{
	struct fixture *fx = *state;
	struct maildir *box;
	const struct maildir_msg *m;
	const char *err;
	pid_t pids[3];
	size_t n;
	int i, st;

	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN, NULL, 0);
	for (i = 0; i < 3; i++) {
		pids[i] = fork();
		assert_true(pids[i] != -1);
		if (pids[i] == 0)
			toggler(fx->md,
			    i == 0     ? MAILDIR_FLAG_ANSWERED :
				i == 1 ? MAILDIR_FLAG_FLAGGED :
					 0,
			    i == 2 ? 1u : 0);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 1);
	assert_int_equal(m[0].flags,
	    MAILDIR_FLAG_SEEN | MAILDIR_FLAG_ANSWERED | MAILDIR_FLAG_FLAGGED);
	assert_int_equal(m[0].keywords, 1);
	maildir_close(&box);
}

/* ---- the keyword file ---- */

static void
test_parse(void **state)
{
	static const char input[] =
	    "0 $Junk\r\n"	  /* CRLF tolerated */
	    "2 first\n2 second\n" /* a later line wins */
	    "3 \n"		  /* empty name: skipped */
	    "26 over\n"		  /* past z */
	    "999999999999999999 huge\n"
	    "x4 bad\n4bad\n" /* no index, no space */
	    "5 a]b\n"	     /* kept, not a keyword */
	    "6 $JUNK\n"	     /* a duplicate of 0 */
	    "7 NIL\n"	     /* an atom like any other */
	    "1 no-newline-at-end";
	struct md_keywords kw;

	(void)state;
	md_keywords_init(&kw);
	assert_int_equal(md_keywords_parse(input, sizeof(input) - 1, &kw), 0);
	assert_int_equal(kw.present, 0xe7);
	assert_int_equal(kw.valid, 0xc7);
	assert_string_equal(kw.names[0], "$Junk");
	assert_string_equal(kw.names[1], "no-newline-at-end");
	assert_string_equal(kw.names[2], "second");
	assert_string_equal(kw.names[5], "a]b");
	assert_int_equal(kw.canon[6], 0);
	assert_int_equal(md_keywords_find(&kw, "$junk"), 0x41);
	assert_int_equal(md_keywords_find(&kw, "a]b"), 0);
	/* a NUL inside a line: not a name */
	assert_int_equal(md_keywords_parse("0 a\0b\n1 ok\n", 11, &kw), 0);
	assert_int_equal(kw.present, 2);
	md_keywords_free(&kw);
	assert_true(maildir_keyword_valid("NIL", 3));
	assert_false(maildir_keyword_valid("\\Seen", 5));
	assert_false(maildir_keyword_valid("", 0));
	assert_false(maildir_keyword_valid("a b", 3));
	assert_false(maildir_keyword_valid("\xc3\xa9", 2));
	assert_true(maildir_keyword_valid("$Forwarded", 10));
	assert_true(maildir_keyword_valid("[x]", 2));
}

static void
test_folder_file(void **state)
{
	struct fixture *fx = *state;
	const char *names[] = { "$new", "$junk", "$new" };
	struct maildir *box;
	const struct maildir_msg *m;
	char path[PATH_MAX];
	const char *err;
	uint32_t letters;
	size_t n;

	fmt_path(path, "%s/dovecot-keywords", fx->md);
	write_file(path, "0 $Junk\n1 NonJunk\n2 bad]name\n4 $JUNK\n");
	fmt_path(path, "%s/cur/1700000000.M1P1.x:2,Sae", fx->md);
	write_file(path, "Subject: a\n\nb\n");
	fmt_path(path, "%s/cur/1700000001.M1P1.x:2,dc", fx->md);
	write_file(path, "Subject: a\n\nb\n");
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	assert_string_equal(maildir_keyword_name(box, 0), "$Junk");
	assert_string_equal(maildir_keyword_name(box, 1), "NonJunk");
	assert_null(maildir_keyword_name(box, 2)); /* no keyword */
	assert_null(maildir_keyword_name(box, 3)); /* no line */
	assert_null(maildir_keyword_name(box, 4)); /* duplicate of a */
	assert_int_equal(maildir_keywords_named(box), 0x13);
	m = maildir_msgs(box, &n);
	assert_int_equal(n, 2);
	assert_int_equal(maildir_keywords_canon(box, m[0].keywords), 1);
	assert_int_equal(maildir_keywords_canon(box, m[1].keywords), 0);
	/* lookup finds every letter of a name */
	assert_int_equal(
	    maildir_keywords_get(box, &names[1], 1, false, &letters, &err), 0);
	assert_int_equal(letters, 0x11);
	/* a new name takes the lowest letter with no line that no file
	 * uses: d (3) is on a file, so f (5); once only */
	assert_false(maildir_keywords_changed(box));
	assert_int_equal(
	    maildir_keywords_get(box, names, 3, true, &letters, &err), 0);
	assert_int_equal(letters, 0x31);
	assert_true(maildir_keywords_changed(box));
	assert_false(maildir_keywords_changed(box));
	fmt_path(path, "%s/dovecot-keywords", fx->md);
	assert_string_equal(slurp(path),
	    "0 $Junk\n1 NonJunk\n2 bad]name\n4 $JUNK\n5 $new\n");
	maildir_close(&box);
}

static void
test_limit(void **state)
{
	struct fixture *fx = *state;
	const char *names[MAILDIR_KEYWORDS_MAX + 1];
	char buf[MAILDIR_KEYWORDS_MAX + 1][8], path[PATH_MAX];
	struct maildir *box;
	const char *err;
	uint32_t letters;
	int i;

	for (i = 0; i <= MAILDIR_KEYWORDS_MAX; i++) {
		snprintf(buf[i], sizeof(buf[i]), "k%d", i);
		names[i] = buf[i];
	}
	deliver(fx, "INBOX", 0, NULL, 0);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	assert_true(maildir_keywords_room(box));
	/* 27: all or nothing */
	assert_int_equal(maildir_keywords_get(box, names,
			     MAILDIR_KEYWORDS_MAX + 1, true, &letters, &err),
	    -1);
	assert_int_equal(errno, EOVERFLOW);
	fmt_path(path, "%s/dovecot-keywords", fx->md);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(maildir_keywords_get(box, names, MAILDIR_KEYWORDS_MAX,
			     true, &letters, &err),
	    0);
	assert_int_equal(letters, MD_ALL_KEYWORDS);
	assert_false(maildir_keywords_room(box));
	assert_int_equal(
	    maildir_keywords_get(box, &names[26], 1, true, &letters, &err), -1);
	assert_int_equal(errno, EOVERFLOW);
	maildir_close(&box);
	/* delivery drops what does not fit, keeps the rest and the mail */
	deliver(fx, "INBOX", MAILDIR_FLAG_SEEN, &names[25], 2);
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	assert_int_equal(maildir_msgs(box, &(size_t){ 0 })[1].keywords,
	    1u << 25);
	maildir_close(&box);
}

static void
test_deliver_copy_move(void **state)
{
	struct fixture *fx = *state;
	const char *src_kw[] = { "$one", "$two" }, *dst_kw[] = { "$dst" };
	uint32_t uids[2], dst[2], uidv;
	struct maildir *box, *other;
	const struct maildir_msg *m;
	char dir[PATH_MAX], info[PATH_MAX], path[PATH_MAX];
	const char *err;
	size_t n;

	assert_int_equal(maildir_create(fx->md, "Other", &err), 0);
	assert_int_equal(maildir_create(fx->md, "Third", &err), 0);
	deliver(fx, "Other", 0, dst_kw, 1);
	uids[0] = deliver(fx, "INBOX", MAILDIR_FLAG_SEEN, src_kw, 2);
	uids[1] = deliver(fx, "INBOX", 0, &src_kw[1], 1);
	fmt_path(path, "%s/dovecot-keywords", fx->md);
	assert_string_equal(slurp(path), "0 $one\n1 $two\n");
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &box, &err), 0);
	m = maildir_msgs(box, &n);
	assert_int_equal(m[0].keywords, 3);
	assert_int_equal(m[1].keywords, 2);
	/* another view adds \Flagged to the first: the copy carries it */
	assert_int_equal(maildir_open(fx->md, "INBOX", 0, &other, &err), 0);
	assert_int_equal(maildir_set_flags(other, 0,
			     MAILDIR_FLAG_SEEN | MAILDIR_FLAG_FLAGGED, &err),
	    0);
	maildir_close(&other);
	assert_int_equal(
	    maildir_copy(box, uids, 1, "Other", false, &uidv, dst, &err), 0);
	assert_int_equal(
	    maildir_copy(box, &uids[1], 1, "Other", true, &uidv, dst, &err), 0);
	fmt_path(dir, "%s/.Other", fx->md);
	fmt_path(path, "%s/dovecot-keywords", dir);
	assert_string_equal(slurp(path), "0 $dst\n1 $one\n2 $two\n");
	assert_int_equal(maildir_open(fx->md, "Other", 0, &other, &err), 0);
	m = maildir_msgs(other, &n);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].keywords, 1);
	assert_int_equal(m[1].keywords, 6);
	assert_int_equal(m[1].flags & ~MAILDIR_FLAG_RECENT,
	    MAILDIR_FLAG_SEEN | MAILDIR_FLAG_FLAGGED);
	assert_int_equal(m[2].keywords, 4);
	/* a letter the source cannot name (z, put there by a MUA behind
	 * the view's back) is not carried; the named one gets Third's a */
	assert_int_equal(maildir_msg_path(other, 0, path, sizeof(path)), 0);
	fmt_path(info, "%s", path);
	fmt_path(path, "%sz", info);
	assert_int_equal(rename(info, path), 0);
	assert_int_equal(
	    maildir_copy(other, &m[0].uid, 1, "Third", false, &uidv, dst, &err),
	    0);
	assert_int_not_equal(dst[0], 0);
	maildir_close(&other);
	fmt_path(dir, "%s/.Third", fx->md);
	only_info(dir, info, sizeof(info));
	assert_string_equal(info, "a");
	maildir_close(&box);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_stale_view_keeps_other_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_three_processes_toggle,
		    setup, teardown),
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_folder_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_copy_move, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
