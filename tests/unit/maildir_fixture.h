/*
 * maildir_fixture.h - what the Maildir unit tests share: a private mail
 * root under $TMPDIR (or /tmp) with one user's Maildir path, removed
 * whole at teardown, bounded path formatting, small file writes and
 * counting a directory's entries.
 *
 * Header-only (static inline) so each test stays one executable; include
 * after <cmocka.h>, whose asserts it uses.
 */
#ifndef RG_TESTS_MAILDIR_FIXTURE_H
#define RG_TESTS_MAILDIR_FIXTURE_H

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/maildir.h"

/* vsnprintf into a PATH_MAX buffer; the fixtures' paths are short. */
static inline void __attribute__((format(printf, 2, 3)))
fmt_path(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && n < PATH_MAX);
}

/* A fresh "<tmp>/<stem>-XXXXXX" into root (PATH_MAX bytes) and user's
 * Maildir path under it into md (PATH_MAX bytes; not created). 0 or -1. */
static inline int
md_fixture_make(char *root, char *md, const char *stem, const char *user)
{
	const char *tmp = getenv("TMPDIR");
	const char *err;
	char *dir;

	snprintf(root, PATH_MAX, "%s/%s-XXXXXX", tmp ? tmp : "/tmp", stem);
	if (mkdtemp(root) == NULL ||
	    maildir_user_dir(root, user, &dir, &err) == -1)
		return -1;
	snprintf(md, PATH_MAX, "%s", dir);
	free(dir);
	return 0;
}

static inline int
md_fixture_rm_cb(const char *p, const struct stat *st, int t, struct FTW *f)
{
	(void)st;
	(void)t;
	(void)f;
	return remove(p);
}

/* Create or replace path with text. */
static inline void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Entries in dir that do not start with '.'; dir must open. */
static inline size_t
md_count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Remove the whole mail root. */
static inline void
md_fixture_remove(const char *root)
{
	nftw(root, md_fixture_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A cmocka fixture: a fresh mail root with user@example.test's Maildir
 * set up as at first login (INBOX, Drafts, Sent, Trash, Junk). */
struct md_fixture {
	char root[PATH_MAX];
	char md[PATH_MAX]; /* the user's Maildir */
};

/* setup/teardown bodies: *state gets a struct md_fixture under
 * "<tmp>/<stem>-XXXXXX". */
static inline int
md_fixture_setup(void **state, const char *stem)
{
	struct md_fixture *fx = calloc(1, sizeof(*fx));
	const char *err;

	if (fx == NULL ||
	    md_fixture_make(fx->root, fx->md, stem, "user@example.test") ==
		-1 ||
	    maildir_user_init(fx->md, &err) == -1) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static inline int
md_fixture_teardown(void **state)
{
	struct md_fixture *fx = *state;

	md_fixture_remove(fx->root);
	free(fx);
	return 0;
}

#endif
