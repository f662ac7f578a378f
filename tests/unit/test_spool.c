/*
 * test_spool.c - the relay spool (backend/spool.c): an entry written by
 * spool_put() reads back whole (prefix + message from an fd, a path or
 * memory; odd bytes in addresses and replies survive the envelope's
 * encoding); updates replace the envelope; removal; bad envelopes are
 * refused before anything is written; start-up removes tmp/ leftovers and
 * messages without an envelope; a child killed with SIGKILL while
 * queueing leaves only whole entries; the envelope parser refuses what it
 * did not write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/spool.h"
#include "tests/unit/maildir_fixture.h"

struct fixture {
	char root[PATH_MAX];
	char dir[PATH_MAX]; /* the spool */
	struct spool *sp;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char md[PATH_MAX];
	const char *err = NULL;

	assert_non_null(fx);
	assert_int_equal(md_fixture_make(fx->root, md, "spool", "a@b.c"), 0);
	fmt_path(fx->dir, "%s/.spool", fx->root);
	assert_int_equal(spool_open(fx->dir, &fx->sp, &err), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	spool_free(&fx->sp);
	md_fixture_remove(fx->root);
	free(fx);
	return 0;
}

static char *
slurp_fd(int fd, size_t *n_r)
{
	static char b[1 << 16];
	ssize_t r = pread(fd, b, sizeof(b) - 1, 0);

	assert_true(r >= 0);
	b[r] = '\0';
	*n_r = (size_t)r;
	return b;
}

static void
put_text(struct fixture *fx, const char *sender, const char *const *rcpts,
    size_t n, const char *body, char *id)
{
	struct spool_msg m = { .user = "a@b.c",
		.sender = sender,
		.rcpts = rcpts,
		.nrcpts = n,
		.prefix = "Received: x\r\n",
		.prefix_len = 13,
		.fd = -1,
		.data = body,
		.len = strlen(body) };
	const char *err = NULL;

	assert_int_equal(spool_put(fx->sp, &m, id, &err), 0);
}

static void
test_put_load(void **state)
{
	struct fixture *fx = *state;
	const char *rcpts[] = { "x@remote.example", "\"odd <%> one\"@r.ex" };
	char id[SPOOL_ID_LEN + 1], (*ids)[SPOOL_ID_LEN + 1] = NULL;
	struct spool_entry e;
	const char *err = NULL;
	size_t n;
	int fd;
	char *got;

	put_text(fx, "a@b.c", rcpts, 2, "Subject: hi\r\n\r\nbody\r\n", id);
	assert_int_equal(strlen(id), SPOOL_ID_LEN);
	assert_int_equal(spool_list(fx->sp, &ids, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], id);
	free(ids);
	assert_int_equal(spool_load(fx->sp, id, &e, &err), 0);
	assert_string_equal(e.user, "a@b.c");
	assert_string_equal(e.sender, "a@b.c");
	assert_int_equal(e.nrcpts, 2);
	assert_string_equal(e.rcpts[1].addr, rcpts[1]);
	assert_int_equal(e.rcpts[0].state, SPOOL_RCPT_PENDING);
	assert_int_equal(e.attempts, 0);
	assert_true(e.next <= time(NULL) && e.arrival == e.next);
	assert_int_equal(e.size, 13 + 21);
	assert_false(spool_entry_done(&e));
	fd = spool_open_msg(fx->sp, id);
	assert_true(fd >= 0);
	got = slurp_fd(fd, &n);
	close(fd);
	assert_string_equal(got, "Received: x\r\nSubject: hi\r\n\r\nbody\r\n");

	/* an update replaces the envelope whole */
	e.rcpts[0].state = SPOOL_RCPT_SENT;
	e.rcpts[1].state = SPOOL_RCPT_FAILED;
	snprintf(e.rcpts[1].status, sizeof(e.rcpts[1].status), "5.1.1");
	snprintf(e.rcpts[1].reply, sizeof(e.rcpts[1].reply),
	    "550 5.1.1 <%%x> no such user\ttab");
	e.attempts = 3;
	e.next += 120;
	assert_int_equal(spool_update(fx->sp, &e, &err), 0);
	spool_entry_free(&e);
	assert_int_equal(spool_load(fx->sp, id, &e, &err), 0);
	assert_int_equal(e.attempts, 3);
	assert_int_equal(e.rcpts[0].state, SPOOL_RCPT_SENT);
	assert_int_equal(e.rcpts[1].state, SPOOL_RCPT_FAILED);
	assert_string_equal(e.rcpts[1].status, "5.1.1");
	assert_string_equal(e.rcpts[1].reply,
	    "550 5.1.1 <%x> no such user\ttab");
	assert_string_equal(e.rcpts[0].status, "");
	e.rcpts[1].state = SPOOL_RCPT_BOUNCED;
	assert_true(spool_entry_done(&e));
	spool_entry_free(&e);

	assert_int_equal(spool_remove(fx->sp, id, &err), 0);
	assert_int_equal(spool_load(fx->sp, id, &e, &err), -1);
	assert_int_equal(errno, ENOENT);
	char p[PATH_MAX];
	fmt_path(p, "%s/msg", fx->dir);
	assert_int_equal(md_count_dir(p), 0);
	fmt_path(p, "%s/tmp", fx->dir);
	assert_int_equal(md_count_dir(p), 0);
}

/* The message from an fd (read from offset 0 whatever its position) and
 * from a path; the null sender and no user. */
static void
test_put_sources(void **state)
{
	struct fixture *fx = *state;
	const char *rcpts[] = { "x@r.ex" };
	char path[PATH_MAX], id[SPOOL_ID_LEN + 1];
	struct spool_msg m = { .sender = "", .rcpts = rcpts, .nrcpts = 1 };
	struct spool_entry e;
	const char *err = NULL;
	size_t n;
	int fd;

	fmt_path(path, "%s/in.eml", fx->root);
	write_file(path, "A: b\r\n\r\nfrom a file\r\n");
	m.fd = open(path, O_RDONLY);
	assert_true(m.fd >= 0);
	assert_int_equal(lseek(m.fd, 5, SEEK_SET), 5);
	assert_int_equal(spool_put(fx->sp, &m, id, &err), 0);
	close(m.fd);
	fd = spool_open_msg(fx->sp, id);
	assert_string_equal(slurp_fd(fd, &n), "A: b\r\n\r\nfrom a file\r\n");
	close(fd);
	assert_int_equal(spool_load(fx->sp, id, &e, &err), 0);
	assert_null(e.user);
	assert_string_equal(e.sender, "");
	spool_entry_free(&e);

	m.fd = -1;
	m.path = path;
	assert_int_equal(spool_put(fx->sp, &m, id, &err), 0);
	fd = spool_open_msg(fx->sp, id);
	assert_string_equal(slurp_fd(fd, &n), "A: b\r\n\r\nfrom a file\r\n");
	close(fd);

	/* a path that does not exist: nothing is left behind */
	m.path = "/nonexistent/x";
	assert_int_equal(spool_put(fx->sp, &m, id, &err), -1);
	char(*ids)[SPOOL_ID_LEN + 1];
	assert_int_equal(spool_list(fx->sp, &ids, &n, &err), 0);
	assert_int_equal(n, 2);
	free(ids);
	fmt_path(path, "%s/tmp", fx->dir);
	assert_int_equal(md_count_dir(path), 0);
	fmt_path(path, "%s/msg", fx->dir);
	assert_int_equal(md_count_dir(path), 2);
}

static void
test_bad_envelope(void **state)
{
	struct fixture *fx = *state;
	const char *bad_rcpt[] = { "x@r.ex\r\nRCPT TO:<y@z>" };
	const char *empty[] = { "" };
	const char *ok[] = { "x@r.ex" };
	char id[SPOOL_ID_LEN + 1], p[PATH_MAX];
	struct spool_msg m = { .sender = "a@b.c",
		.rcpts = bad_rcpt,
		.nrcpts = 1,
		.fd = -1,
		.data = "x",
		.len = 1 };
	const char *err = NULL;

	assert_int_equal(spool_put(fx->sp, &m, id, &err), -1);
	assert_int_equal(errno, EINVAL);
	m.rcpts = empty;
	assert_int_equal(spool_put(fx->sp, &m, id, &err), -1);
	m.rcpts = ok;
	m.nrcpts = 0;
	assert_int_equal(spool_put(fx->sp, &m, id, &err), -1);
	m.nrcpts = 1;
	m.sender = "a\nb";
	assert_int_equal(spool_put(fx->sp, &m, id, &err), -1);
	fmt_path(p, "%s/env", fx->dir);
	assert_int_equal(md_count_dir(p), 0);
	fmt_path(p, "%s/msg", fx->dir);
	assert_int_equal(md_count_dir(p), 0);
}

/* Leftovers of a crash: tmp/ files and a message without an envelope go
 * at the next open; whole entries stay. */
static void
test_cleanup(void **state)
{
	struct fixture *fx = *state;
	const char *rcpts[] = { "x@r.ex" };
	char id[SPOOL_ID_LEN + 1], p[PATH_MAX];
	const char *err = NULL;

	put_text(fx, "a@b.c", rcpts, 1, "x\r\n", id);
	fmt_path(p, "%s/tmp/0123456789abcdef0123.msg", fx->dir);
	write_file(p, "half");
	fmt_path(p, "%s/msg/0123456789abcdef0123", fx->dir);
	write_file(p, "orphan");
	spool_free(&fx->sp);
	assert_int_equal(spool_open(fx->dir, &fx->sp, &err), 0);
	fmt_path(p, "%s/tmp", fx->dir);
	assert_int_equal(md_count_dir(p), 0);
	fmt_path(p, "%s/msg", fx->dir);
	assert_int_equal(md_count_dir(p), 1);
	fmt_path(p, "%s/msg/%s", fx->dir, id);
	assert_int_equal(access(p, F_OK), 0);
}

/* A child queues as fast as it can and is killed with SIGKILL; it
 * writes each id it got to a pipe, as a caller would answer 250. Every
 * id reported is a whole entry, and after the next open there is no
 * entry without its message and no message without its entry. */
static void
test_kill(void **state)
{
	struct fixture *fx = *state;
	int pfd[2];
	pid_t pid;
	char buf[(SPOOL_ID_LEN + 1) * 4096];
	size_t got = 0, n;
	const char *err = NULL;
	char(*ids)[SPOOL_ID_LEN + 1];

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *rcpts[] = { "x@r.ex", "y@r.ex" };
		char body[8192];
		struct spool_msg m = { .sender = "a@b.c",
			.rcpts = rcpts,
			.nrcpts = 2,
			.fd = -1,
			.data = body,
			.len = sizeof(body) };
		char id[SPOOL_ID_LEN + 2];

		memset(body, 'x', sizeof(body));
		close(pfd[0]);
		for (int i = 0; i < 4000; i++) {
			if (spool_put(fx->sp, &m, id, &err) == -1)
				_exit(1);
			id[SPOOL_ID_LEN] = '\n';
			if (write(pfd[1], id, SPOOL_ID_LEN + 1) !=
			    SPOOL_ID_LEN + 1)
				_exit(1);
		}
		_exit(0);
	}
	close(pfd[1]);
	/* let it get going, then kill it mid-write */
	while (got < (SPOOL_ID_LEN + 1) * 20) {
		ssize_t r = read(pfd[0], buf + got, sizeof(buf) - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (;;) {
		ssize_t r = read(pfd[0], buf + got, sizeof(buf) - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(pfd[0]);
	spool_free(&fx->sp);
	assert_int_equal(spool_open(fx->dir, &fx->sp, &err), 0);
	for (size_t off = 0; off + SPOOL_ID_LEN < got;
	     off += SPOOL_ID_LEN + 1) {
		struct spool_entry e;
		char id[SPOOL_ID_LEN + 1];

		memcpy(id, buf + off, SPOOL_ID_LEN);
		id[SPOOL_ID_LEN] = '\0';
		assert_int_equal(spool_load(fx->sp, id, &e, &err), 0);
		assert_int_equal(e.size, 8192);
		assert_int_equal(e.nrcpts, 2);
		spool_entry_free(&e);
	}
	/* entries the parent was never told of are whole too */
	assert_int_equal(spool_list(fx->sp, &ids, &n, &err), 0);
	assert_true(n >= got / (SPOOL_ID_LEN + 1));
	for (size_t i = 0; i < n; i++) {
		struct spool_entry e;

		assert_int_equal(spool_load(fx->sp, ids[i], &e, &err), 0);
		assert_int_equal(e.size, 8192);
		spool_entry_free(&e);
	}
	free(ids);
	char p[PATH_MAX];
	fmt_path(p, "%s/msg", fx->dir);
	assert_int_equal(md_count_dir(p), n);
	fmt_path(p, "%s/tmp", fx->dir);
	assert_int_equal(md_count_dir(p), 0);
}

static int
parse(const char *s)
{
	struct spool_entry e;
	int rc = spool_entry_parse(s, strlen(s), &e);

	if (rc == 0)
		spool_entry_free(&e);
	return rc;
}

#define HEAD                                                                   \
	"ringstore-spool 1\nid 0123456789abcdef0123\nuser <>\nsender "         \
	"<a@b>\narrival 1\nnext 2\nattempts 0\n"

static void
test_parse(void **state)
{
	(void)state;
	assert_int_equal(parse(HEAD "rcpt pending - <x@y> <>\n"), 0);
	assert_int_equal(parse(HEAD "rcpt sent 2.0.0 <x@y> <250%20ok>\n"), 0);
	/* no recipient; no final LF; unknown state; junk after; order */
	assert_int_equal(parse(HEAD), -1);
	assert_int_equal(parse(HEAD "rcpt pending - <x@y> <>"), -1);
	assert_int_equal(parse(HEAD "rcpt lost - <x@y> <>\n"), -1);
	assert_int_equal(parse(HEAD "rcpt pending - <x@y> <> z\n"), -1);
	assert_int_equal(parse(HEAD "rcpt pending - <> <>\n"), -1);
	assert_int_equal(parse(HEAD "rcpt pending - <x@y> <%0>\n"), -1);
	assert_int_equal(parse(HEAD "rcpt pending - <x@y> <%00>\n"), -1);
	assert_int_equal(parse(HEAD "rcpt pending - <x@y>\n"), -1);
	assert_int_equal(parse(HEAD "rcpt pending - <x@y> <>\nnext 3\n"), -1);
	assert_int_equal(parse("ringstore-spool 2\n"), -1);
	assert_int_equal(parse("ringstore-spool 1\nid 0123456789ABCDEF0123\n"
			       "user <>\nsender <a@b>\narrival 1\nnext 2\n"
			       "attempts 0\nrcpt pending - <x@y> <>\n"),
	    -1);
	assert_int_equal(parse("ringstore-spool 1\nid 0123456789abcdef0123\n"
			       "user <>\nsender <a@b>\narrival -1\nnext 2\n"
			       "attempts 0\nrcpt pending - <x@y> <>\n"),
	    -1);
	assert_int_equal(parse(""), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_sources, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_envelope, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill, setup, teardown),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
