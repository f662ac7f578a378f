/*
 * test_deliver.c - backend/deliver.c on its own: recipient addresses to
 * Maildir users (detail dropped, lowercased, refusals), the received
 * message's unlinked tmp file, a delivery to several users with the
 * prepended headers byte-exact, extra headers, the quota rule (552 5.2.2
 * and nothing written) and the usage count over every folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/deliver.h"

static char root[256];

static int
setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/test_deliver.XXXXXX");
	return mkdtemp(root) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_rcpt_user(void **state)
{
	char user[64];
	const char *detail;
	static const struct {
		const char *addr, *user, *detail;
	} ok[] = {
		{ "bob@example.org", "bob@example.org", NULL },
		{ "Bob+Lists@Example.ORG", "bob@example.org",
		    "Lists@Example.ORG" },
		{ "bob+a+b@x.y", "bob@x.y", "a+b@x.y" },
		{ "bob+@x.y", "bob@x.y", "@x.y" },
	};
	static const char *const bad[] = { "bob", "@x.y", "bob@", "+d@x.y",
		"" };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(deliver_rcpt_user(ok[i].addr,
				     strlen(ok[i].addr), user, sizeof(user),
				     &detail),
		    0);
		assert_string_equal(user, ok[i].user);
		if (ok[i].detail == NULL)
			assert_null(detail);
		else
			assert_string_equal(detail, ok[i].detail);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(deliver_rcpt_user(bad[i], strlen(bad[i]), user,
				     sizeof(user), NULL),
		    -1);
	/* does not fit */
	assert_int_equal(
	    deliver_rcpt_user("abcdefgh@example.org", 20, user, 8, NULL), -1);
}

/* The only file in dir/new, read whole (NULL if not exactly one). */
static char *
only_new(const char *maildir, size_t *len_r)
{
	char path[512], *data = NULL;
	struct dirent *de;
	int count = 0;
	DIR *d;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/new", maildir);
	if ((d = opendir(path)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && count++ == 0)
			snprintf(path, sizeof(path), "%s/new/%s", maildir,
			    de->d_name);
	closedir(d);
	if (count != 1 || (f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	data = malloc((size_t)n + 1);
	if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
		free(data);
		data = NULL;
	}
	fclose(f);
	*len_r = (size_t)n;
	return data;
}

static void
test_deliver_several(void **state)
{
	static const char body[] = "Subject: t\r\n\r\n.dot\r\n\xff\x00x\r\n";
	const size_t blen = sizeof(body) - 1;
	struct deliver_msg *msg = NULL;
	const char *error = NULL;
	char dir[300], md[400], *data, want[512];
	size_t len, wlen;
	uint64_t used;
	struct deliver_rcpt r[3] = {
		{ .user = "ann@example.org", .addr = "ann+x@example.org" },
		{ .user = "bob@example.org",
		    .addr = "bob@example.org",
		    .has_quota = true,
		    .quota = 10 },
		{ .user = "cy@example.org",
		    .addr = "Cy@example.org",
		    .has_quota = true,
		    .quota = 1000 },
	};
	struct deliver_env env = { .mail_root = root,
		.return_path = "s@example.net",
		.headers = "Received: from test\r\n" };

	(void)state;
	snprintf(dir, sizeof(dir), "%s/.incoming", root);
	assert_int_equal(deliver_msg_open(dir, &msg, &error), 0);
	assert_int_equal(deliver_msg_write(msg, body, 10, &error), 0);
	assert_int_equal(deliver_msg_write(msg, body + 10, blen - 10, &error),
	    0);
	assert_int_equal(deliver_msg_size(msg), blen);
	/* unlinked: nothing in the directory */
	{
		DIR *d = opendir(dir);
		struct dirent *de;
		int n = 0;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			n += de->d_name[0] != '.';
		closedir(d);
		assert_int_equal(n, 0);
	}
	assert_int_equal(deliver_run(&env, msg, r, 3), 2);
	assert_int_equal(r[0].reply.code, 250);
	assert_int_equal(r[1].reply.code, 552);
	assert_string_equal(r[1].reply.enh, "5.2.2");
	assert_int_equal(deliver_result_of(&r[1]), DELIVER_QUOTA);
	assert_int_equal(r[2].reply.code, 250);

	snprintf(md, sizeof(md), "%s/example.org/ann/Maildir", root);
	data = only_new(md, &len);
	assert_non_null(data);
	wlen = (size_t)snprintf(want, sizeof(want),
	    "Return-Path: <s@example.net>\r\nDelivered-To: "
	    "<ann+x@example.org>\r\nReceived: from test\r\n");
	memcpy(want + wlen, body, blen);
	wlen += blen;
	assert_int_equal(len, wlen);
	assert_memory_equal(data, want, wlen);
	free(data);
	assert_int_equal(deliver_usage(md, &used), 0);
	assert_int_equal(used, wlen);

	snprintf(md, sizeof(md), "%s/example.org/bob/Maildir", root);
	assert_int_equal(deliver_usage(md, &used), 0);
	assert_int_equal(used, 0);
	assert_null(only_new(md, &len));

	/* cy's quota: a second copy no longer fits */
	assert_int_equal(deliver_run(&env, msg, &r[2], 1), 1);
	r[2].quota = 2 * wlen + 10;
	assert_int_equal(deliver_run(&env, msg, &r[2], 1), 0);
	assert_int_equal(r[2].reply.code, 552);
	deliver_msg_free(&msg);
	assert_null(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rcpt_user),
		cmocka_unit_test_setup_teardown(test_deliver_several, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
