/*
 * passwd_private.h - what the files of ringgate-passwd share: the atomic
 * passwd-file editor (passwd_file_edit.c) and its write loop as the
 * command line front end (passwd_tool.c) sees them, and the hidden bench
 * (passwd_bench.c). None of them is part of libauth; the tool links
 * libauth for the schemes and for loading the file it writes.
 */
#ifndef RG_AUTH_PASSWD_PRIVATE_H
#define RG_AUTH_PASSWD_PRIVATE_H

#include <stddef.h>

enum passwd_edit_op {
	PASSWD_EDIT_ADD, /* append a line; the user must not exist */
	PASSWD_EDIT_SET, /* replace the password field; the user must exist */
	PASSWD_EDIT_DEL, /* remove the line; the user must exist */
};

/* Why an edit failed, so the tool can pick its exit code. */
enum passwd_edit_why {
	PASSWD_EDIT_OK = 0,
	PASSWD_EDIT_EXISTS,  /* add: the user already has a line */
	PASSWD_EDIT_MISSING, /* set, del: the user has no line */
	PASSWD_EDIT_FAILED,  /* lock, I/O, or the file would not load */
};

struct passwd_edit {
	const char *path;
	enum passwd_edit_op op;
	const char *user;  /* already lowercased (auth_user_normalize) */
	const char *hash;  /* "{SCHEME}data" for add and set */
	const char *extra; /* add: extra fields ("host=x nologin") or NULL */
	unsigned lock_wait_ms; /* give up on the lock after this long */
};

/* Room for any error text the editor writes. */
#define PASSWD_ERR_MAX 1024

/* Does user have a line in path right now? Read without the lock, so only
 * good for refusing early (before prompting for a password); the edit
 * checks again under the lock. A missing file has no users. Returns 1 or
 * 0, or -1 with the reason in err. */
int passwd_file_has_user(const char *path, const char *user, char *err,
    size_t errlen);

/* Apply e to its file atomically: under an exclusive flock(2) on
 * "<path>.lock", read the file, change the one line, write a temporary
 * file in the same directory with the old file's mode and owner, check
 * that the result loads as a passwd-file, fsync it, rename it over the
 * old one and fsync the directory. Comments, blank lines, other users and
 * their order are kept byte for byte. add creates a missing file (mode
 * 0600). A symbolic link is followed, not replaced. Returns 0, or -1 with
 * *why_r and a message in err; the old file is then untouched. */
int passwd_file_edit(const struct passwd_edit *e, enum passwd_edit_why *why_r,
    char *err, size_t errlen);

/* Write all n bytes of p to fd, going on after EINTR and short writes.
 * Returns 0, or -1 with errno from write(2); some bytes may have been
 * written then. Nothing is kept: p stays the caller's. */
int passwd_write_all(int fd, const char *p, size_t n);

/* ---- passwd_bench.c ---------------------------------------------------- */

#define PASSWD_BENCH_THREADS_MAX 64

/* Print a markdown table to stdout: for each scheme, verifications of a
 * right password per second at the default cost, by threads threads for
 * seconds each. Measures, never judges. 0, or -1 after saying why on
 * stderr (a hash failed, a right password did not verify). */
int passwd_bench(unsigned seconds, unsigned threads);

#endif
