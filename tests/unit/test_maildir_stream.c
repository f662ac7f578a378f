/*
 * test_maildir_stream.c - a delivery written in pieces
 * (maildir_deliver_begin/write/commit/abort, what a streamed APPEND uses):
 * the bytes land whole and in order under a name whose S= and W= count
 * every piece (a CRLF split between two pieces is not a bare LF), the
 * file sits in tmp/ until the commit and nowhere after it, flags put it
 * in cur/, abort leaves nothing, a missing folder is ENOENT before any
 * file exists, and the UIDs of streamed and whole deliveries interleave.
 * Each test works in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/maildir.h"
#include "tests/unit/maildir_fixture.h"

static size_t count_dir(const char *md, const char *sub, char *name_r);
static char *slurp(const char *path, size_t *len_r);

static int
setup(void **state)
{
	return md_fixture_setup(state, "rg-mdstream");
}

static int
teardown(void **state)
{
	return md_fixture_teardown(state);
}

/* Entries of md/sub (not dot files); the last one's name into name_r. */
static size_t
count_dir(const char *md, const char *sub, char *name_r)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", md, sub);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (name_r != NULL)
			snprintf(name_r, NAME_MAX + 1, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static char *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	assert_non_null(p = malloc((size_t)n + 1));
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	p[n] = '\0';
	*len_r = (size_t)n;
	return p;
}

static void
test_pieces_land_whole(void **state)
{
	struct md_fixture *fx = *state;
	/* one bare LF ("b\n"), and a CRLF split across two pieces */
	const char *pieces[] = { "Subject: s\r\n\r\na\r", "\nb\n", "c\r\n" };
	struct maildir_incoming *in = NULL;
	char name[NAME_MAX + 1], path[PATH_MAX + 256];
	uint32_t uidv = 0, uid = 0, uid2 = 0;
	const char *err = NULL;
	size_t len;
	char *data;

	assert_int_equal(
	    maildir_deliver_begin(fx->md, "INBOX", NULL, &in, &err), 0);
	assert_non_null(in);
	assert_int_equal(count_dir(fx->md, "tmp", NULL), 1);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(maildir_deliver_write(in, pieces[i],
				     strlen(pieces[i]), &err),
		    0);
	assert_int_equal(maildir_deliver_size(in), 22);
	assert_int_equal(count_dir(fx->md, "new", NULL), 0);
	assert_int_equal(maildir_deliver_commit(&in, &uidv, &uid, &err), 0);
	assert_null(in);
	assert_true(uidv != 0 && uid != 0);
	assert_int_equal(count_dir(fx->md, "tmp", NULL), 0);
	assert_int_equal(count_dir(fx->md, "new", name), 1);
	/* 22 bytes, and one more with the bare LF made CRLF */
	assert_non_null(strstr(name, ",S=22,W=23"));
	assert_true(snprintf(path, sizeof(path), "%s/new/%.200s", fx->md,
			name) < (int)sizeof(path));
	data = slurp(path, &len);
	assert_int_equal(len, 22);
	assert_memory_equal(data, "Subject: s\r\n\r\na\r\nb\nc\r\n", 22);
	free(data);
	/* a whole delivery after it gets the next UID */
	assert_int_equal(maildir_deliver(fx->md, "INBOX", "x\r\n", 3, NULL,
			     &uidv, &uid2, &err),
	    0);
	assert_int_equal(uid2, uid + 1);
}

static void
test_flags_go_to_cur(void **state)
{
	struct md_fixture *fx = *state;
	struct maildir_delivery opt = { .flags = MAILDIR_FLAG_SEEN,
		.date = 1700000000 };
	struct maildir_incoming *in = NULL;
	char name[NAME_MAX + 1];
	uint32_t uidv, uid;
	const char *err;

	assert_int_equal(
	    maildir_deliver_begin(fx->md, "Trash", &opt, &in, &err), 0);
	assert_int_equal(maildir_deliver_write(in, "x\r\n", 3, &err), 0);
	assert_int_equal(maildir_deliver_commit(&in, &uidv, &uid, &err), 0);
	assert_int_equal(count_dir(fx->md, ".Trash/cur", name), 1);
	assert_int_equal(strncmp(name, "1700000000.", 11), 0);
	assert_non_null(strstr(name, ":2,S"));
}

static void
test_abort_leaves_nothing(void **state)
{
	struct md_fixture *fx = *state;
	struct maildir_incoming *in = NULL;
	const char *err;

	assert_int_equal(
	    maildir_deliver_begin(fx->md, "INBOX", NULL, &in, &err), 0);
	assert_int_equal(maildir_deliver_write(in, "partial", 7, &err), 0);
	assert_int_equal(count_dir(fx->md, "tmp", NULL), 1);
	maildir_deliver_abort(&in);
	assert_null(in);
	maildir_deliver_abort(&in); /* NULL: a no-op */
	assert_int_equal(count_dir(fx->md, "tmp", NULL), 0);
	assert_int_equal(count_dir(fx->md, "new", NULL), 0);
	assert_int_equal(count_dir(fx->md, "cur", NULL), 0);
}

static void
test_missing_folder(void **state)
{
	struct md_fixture *fx = *state;
	struct maildir_incoming *in = (struct maildir_incoming *)&in;
	const char *err = NULL;

	errno = 0;
	assert_int_equal(
	    maildir_deliver_begin(fx->md, "Nowhere", NULL, &in, &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_null(in);
	assert_non_null(err);
	errno = 0;
	assert_int_equal(maildir_deliver_begin(fx->md, "a//b", NULL, &in, &err),
	    -1);
	assert_int_equal(errno, EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pieces_land_whole, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_flags_go_to_cur, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_abort_leaves_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_folder, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
