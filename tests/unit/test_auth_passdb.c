/*
 * test_auth_passdb.c - the passwd-file back-end: a file using every field
 * and extra field, comments, CRLF and short lines; bad lines refused with
 * file:line; a broken reload keeping the old table; serials across
 * reloads; readers holding entries of a replaced table; case handling;
 * allow_nets matching for IPv4, IPv6 and IPv4-mapped clients; limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"

#define SHA512_PW                                                              \
	"{SHA512-CRYPT}$6$Q9b2kL0x$UMxKgu9axRbztdip4eF26aytVOxo5rw1x.1vxWyFK"  \
	"oSFg.mLJ1JfKm4Crgt7vHy9KxwVRwLL3KrQWbtDoOqKd0"
#define SCRAM_PW                                                               \
	"{SCRAM-SHA-256}SCRAM-SHA-256$4096:cmluZ2dhdGUtdGVzdC1zYWx0$IIlELKiu"  \
	"r9JwXZwiB6rr20TWaGzV3cZyYqS5eiSkuhE=:mT3QJF9p6Q8aeeUZWwab8CiC376LMc"  \
	"O7NBhGXapfi6U="

static const char good_file[] =
    "# users of example.org\n"
    "\n"
    "   # indented comment\n"
    "Alice@Example.ORG:" SHA512_PW ":1000:1000:Alice A:/home/alice:/bin/sh:"
    "host=10.0.0.5 quota=512M alias=A@example.org,postmaster@Example.org "
    "allow_nets=192.0.2.0/24,2001:db8::/32,::1 userdb_mail=maildir:~/M "
    "proxy\n"
    "bob@example.org:" SCRAM_PW "::::::nologin\r\n"
    "carol@example.org:{PLAIN}secret\n"
    "dave@example.org\n"
    "\t\n"
    "erin@example.org:" SHA512_PW ":5:6";

struct warned {
	int n;
	char last[512];
};

static char path[64];

static void
write_file(const char *text, size_t n)
{
	char tmp[80];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	/* rename: a new inode, as ringgate-passwd and editors do. */
	assert_int_equal(rename(tmp, path), 0);
}

static void
write_str(const char *text)
{
	write_file(text, strlen(text));
}

static int
setup(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/rg-passdb-XXXXXX");
	fd = mkstemp(path);
	if (fd == -1)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	unlink(path);
	return 0;
}

static void
warn_cb(void *ctx, const char *msg)
{
	struct warned *w = ctx;

	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
}

static struct auth_passdb *
open_db(struct warned *w, bool plain)
{
	struct auth_passdb_conf conf = { .path = path,
		.warn = warn_cb,
		.warn_ctx = w,
		.allow_plaintext = plain };
	const char *err = NULL;
	struct auth_passdb *db = auth_passdb_new(&conf, &err);

	if (db == NULL)
		fail_msg("load failed: %s", err);
	return db;
}

static struct auth_entry *
find(struct auth_passdb *db, const char *user)
{
	struct auth_entry *e = NULL;
	const char *err = NULL;

	if (auth_lookup(auth_passdb_backend(db), user, &e, &err) !=
	    AUTH_LOOKUP_FOUND)
		return NULL;
	return e;
}

static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &in->sin_addr), 1);
	}
	return ss;
}

static bool
allowed(const struct auth_entry *e, const char *a)
{
	struct sockaddr_storage ss = addr(a);

	return auth_user_allowed_from(e, (struct sockaddr *)&ss);
}

static void
test_good_file(void **state)
{
	struct warned w = { 0 };
	struct auth_passdb *db;
	struct auth_entry *e;

	write_str(good_file);
	db = open_db(&w, false);
	assert_int_equal(auth_passdb_count(db), 5);
	assert_int_equal(auth_passdb_version(db), 1);
	/* carol's {PLAIN} is kept, but the operator is told. */
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, ":6: user carol@example.org"));
	assert_null(strstr(w.last, "secret"));

	e = find(db, "ALICE@example.org");
	assert_non_null(e);
	assert_string_equal(e->user, "alice@example.org");
	assert_string_equal(e->password, SHA512_PW);
	assert_true(e->has_uid && e->has_gid);
	assert_int_equal(e->uid, 1000);
	assert_int_equal(e->gid, 1000);
	assert_string_equal(e->gecos, "Alice A");
	assert_string_equal(e->home, "/home/alice");
	assert_string_equal(e->shell, "/bin/sh");
	assert_string_equal(e->host, "10.0.0.5");
	assert_false(e->nologin);
	assert_true(e->has_quota);
	assert_int_equal(e->quota, 512ULL << 20);
	assert_int_equal(e->n_aliases, 2);
	assert_string_equal(e->aliases[0], "a@example.org");
	assert_string_equal(e->aliases[1], "postmaster@example.org");
	assert_true(auth_entry_has_alias(e, "Postmaster@EXAMPLE.org"));
	assert_true(auth_entry_has_alias(e, "alice@example.org"));
	assert_false(auth_entry_has_alias(e, "bob@example.org"));
	assert_int_equal(e->n_allow_nets, 3);
	assert_string_equal(auth_entry_field(e, "userdb_mail"), "maildir:~/M");
	assert_string_equal(auth_entry_field(e, "proxy"), "");
	assert_null(auth_entry_field(e, "host"));
	assert_int_equal(e->serial, 1);
	auth_entry_unref(&e);
	assert_null(e);

	e = find(db, "bob@example.org");
	assert_non_null(e);
	assert_string_equal(e->password, SCRAM_PW);
	assert_true(e->nologin);
	assert_false(e->has_uid);
	assert_string_equal(e->home, "");
	assert_null(e->host);
	assert_int_equal(e->n_allow_nets, 0);
	assert_true(allowed(e, "203.0.113.9"));
	auth_entry_unref(&e);

	e = find(db, "dave@example.org");
	assert_non_null(e);
	assert_null(e->password);
	auth_entry_unref(&e);

	e = find(db, "erin@example.org");
	assert_non_null(e);
	assert_int_equal(e->uid, 5);
	assert_int_equal(e->gid, 6);
	auth_entry_unref(&e);

	assert_null(find(db, "nobody@example.org"));
	assert_null(find(db, "alice"));
	assert_null(find(db, ""));
	assert_null(find(db, "alice@example.org "));
	auth_passdb_free(&db);
	assert_null(db);
}

static void
test_allow_nets(void **state)
{
	struct warned w = { 0 };
	struct auth_passdb *db;
	struct auth_entry *e;

	write_str(good_file);
	db = open_db(&w, false);
	e = find(db, "alice@example.org");
	assert_true(allowed(e, "192.0.2.1"));
	assert_true(allowed(e, "192.0.2.255"));
	assert_false(allowed(e, "192.0.3.1"));
	assert_false(allowed(e, "10.0.0.5"));
	assert_true(allowed(e, "2001:db8:ffff::1"));
	assert_false(allowed(e, "2001:db9::1"));
	assert_true(allowed(e, "::1"));
	assert_false(allowed(e, "::2"));
	/* A v4 client on a dual-stack socket. */
	assert_true(allowed(e, "::ffff:192.0.2.77"));
	assert_false(allowed(e, "::ffff:198.51.100.1"));
	assert_false(auth_user_allowed_from(e, NULL));
	auth_entry_unref(&e);
	auth_passdb_free(&db);
}

struct bad_case {
	const char *text;
	const char *expect; /* ":line: reason" fragment */
};

static void
test_bad_lines(void **state)
{
	static const struct bad_case cases[] = {
		{ "ok:" SHA512_PW "\n:" SHA512_PW "\n", ":2: invalid user" },
		{ "a b:" SHA512_PW "\n", ":1: invalid user" },
		{ "# c\nu:{MD5}abc\n", ":2: unknown password scheme" },
		{ "u:{BLF-CRYPT}$6$abc$def\n", ":1: hash does not match" },
		{ "u:nohash\n", ":1: password has no {SCHEME}" },
		{ "u:{SCRAM-SHA-256}SCRAM-SHA-256$4096:abc$def:ghi\n",
		    ":1: SCRAM-SHA-256" },
		{ "u::x:1\n", ":1: uid/gid is not a number" },
		{ "u::1:99999999999\n", ":1: uid/gid is not a number" },
		{ "u:::::::quota=lots\n", ":1: quota=" },
		{ "u:::::::allow_nets=10.0.0.1/8\n", ":1: allow_nets=" },
		{ "u:::::::allow_nets=\n", ":1: allow_nets=" },
		{ "u:::::::allow_nets=1.2.3.4 allow_nets=1.2.3.5\n",
		    ":1: allow_nets=" },
		{ "u:::::::host=\n", ":1: host=" },
		{ "u:::::::host=a host=b\n", ":1: host=" },
		{ "u:::::::alias=a,b\\x01\n", ":1: alias=" },
		{ "u:::::::=v\n", ":1: extra field with an empty name" },
		{ "A:::\na:::\n", ":2: duplicate user a" },
	};
	struct auth_passdb_conf conf = { .path = path };
	const char *err = NULL;
	char want[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];

		/* "\\x01" in the table stands for a control byte. */
		snprintf(text, sizeof(text), "%s", cases[i].text);
		for (char *p = text; (p = strstr(p, "\\x01")) != NULL;) {
			*p = '\x01';
			memmove(p + 1, p + 4, strlen(p + 4) + 1);
		}
		write_str(text);
		err = NULL;
		assert_null(auth_passdb_new(&conf, &err));
		assert_non_null(err);
		snprintf(want, sizeof(want), "%s%s", path, cases[i].expect);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err,
			    want);
	}
}

/* The daemon's own rule for names (ringstore: localpart@domain), at
 * load and at reload: the file is refused naming the line, a reload
 * keeps the old table. */
static int
need_domain(void *ctx, const char *user, const char **reason_r)
{
	++*(int *)ctx;
	if (strchr(user, '@') != NULL || strcmp(user, "master") == 0)
		return 0;
	*reason_r = "no @domain";
	return -1;
}

static void
test_check_user(void **state)
{
	int calls = 0;
	struct auth_passdb_conf conf = { .path = path,
		.check_user = need_domain,
		.check_ctx = &calls };
	struct auth_passdb *db;
	struct auth_entry *e;
	const char *err = NULL;
	char want[128];

	write_str("A@x.test:::\nMaster:::\n# bob:::\n");
	db = auth_passdb_new(&conf, &err);
	assert_non_null(db);
	assert_int_equal(calls, 2); /* names as stored: lowercased */
	write_str("a@x.test:::\n\nBob:::\n");
	assert_int_equal(auth_passdb_reload(db, &err), -1);
	snprintf(want, sizeof(want), "%s:3: user bob: no @domain", path);
	assert_string_equal(err, want);
	assert_non_null(e = find(db, "master"));
	auth_entry_unref(&e);
	auth_passdb_free(&db);
	assert_null(auth_passdb_new(&conf, &err));
	assert_string_equal(err, want);
}

static void
test_limits(void **state)
{
	struct auth_passdb_conf conf = { .path = path, .max_entries = 2 };
	const char *err = NULL;
	size_t n = AUTH_PASSDB_LINE_MAX + 10;
	char *big = malloc(n + 1);
	struct auth_passdb *db;

	/* NUL byte. */
	write_file("a:::\nb\0:::\n", 11);
	assert_null(auth_passdb_new(&conf, &err));
	assert_non_null(strstr(err, ":2: NUL byte"));

	/* Too many users. */
	write_str("a\nb\nc\n");
	assert_null(auth_passdb_new(&conf, &err));
	assert_non_null(strstr(err, ":3: more than 2 users"));

	/* A line of exactly the limit is fine; one byte more is not. */
	memset(big, 'x', n);
	memcpy(big, "u:::::::k=", 10);
	big[AUTH_PASSDB_LINE_MAX] = '\n';
	write_file(big, AUTH_PASSDB_LINE_MAX + 1);
	db = auth_passdb_new(&conf, &err);
	assert_non_null(db);
	auth_passdb_free(&db);
	big[AUTH_PASSDB_LINE_MAX] = 'x';
	big[AUTH_PASSDB_LINE_MAX + 1] = '\n';
	write_file(big, AUTH_PASSDB_LINE_MAX + 2);
	assert_null(auth_passdb_new(&conf, &err));
	assert_non_null(strstr(err, ":1: line longer than 8192"));
	free(big);

	/* Missing file. */
	unlink(path);
	assert_null(auth_passdb_new(&conf, &err));
	assert_non_null(strstr(err, "open:"));
	write_str("");
	db = auth_passdb_new(&conf, &err);
	assert_non_null(db);
	assert_int_equal(auth_passdb_count(db), 0);
	auth_passdb_free(&db);
}

/* A broken file is refused whole and the old table keeps answering;
 * readers holding an entry of a replaced table keep it alive; serials
 * change only for users whose line changed. */
static void
test_reload(void **state)
{
	struct warned w = { 0 };
	struct auth_passdb *db;
	struct auth_entry *alice, *bob, *e;
	const char *err = NULL;
	uint64_t alice_serial;

	write_str(good_file);
	db = open_db(&w, true);
	assert_int_equal(w.n, 0); /* plaintext allowed: no warning */
	assert_int_equal(auth_passdb_changed(db), 0);
	alice = find(db, "alice@example.org");
	bob = find(db, "bob@example.org");
	alice_serial = alice->serial;

	/* Broken: the new user is fine but line 3 is not. */
	write_str("alice@example.org:" SHA512_PW "\n"
		  "zed@example.org:" SHA512_PW "\n"
		  "x:{NOPE}y\n");
	assert_int_equal(auth_passdb_changed(db), 1);
	assert_int_equal(auth_passdb_reload(db, &err), -1);
	assert_non_null(strstr(err, ":3: unknown password scheme"));
	/* Seen: the change check does not nag until the next edit. */
	assert_int_equal(auth_passdb_changed(db), 0);
	assert_int_equal(auth_passdb_version(db), 1);
	assert_int_equal(auth_passdb_count(db), 5);
	assert_null(find(db, "zed@example.org"));
	e = find(db, "carol@example.org");
	assert_non_null(e);
	auth_entry_unref(&e);

	/* Good again: bob's line changes, alice's is the same text. */
	write_str("# reordered\n"
		  "bob@example.org:{PLAIN}new::::::nologin\n"
		  "Alice@Example.ORG:" SHA512_PW
		  ":1000:1000:Alice A:/home/alice:/bin/sh:"
		  "host=10.0.0.5 quota=512M alias=A@example.org,"
		  "postmaster@Example.org "
		  "allow_nets=192.0.2.0/24,2001:db8::/32,::1 "
		  "userdb_mail=maildir:~/M proxy\n"
		  "zed@example.org:" SHA512_PW "\n");
	assert_int_equal(auth_passdb_changed(db), 1);
	assert_int_equal(auth_passdb_reload(db, &err), 0);
	assert_int_equal(auth_passdb_changed(db), 0);
	assert_int_equal(auth_passdb_version(db), 2);
	assert_int_equal(auth_passdb_count(db), 3);
	assert_null(find(db, "carol@example.org"));

	e = find(db, "alice@example.org");
	assert_int_equal(e->serial, alice_serial);
	assert_ptr_not_equal(e, alice);
	auth_entry_unref(&e);
	e = find(db, "bob@example.org");
	assert_int_equal(e->serial, 2);
	assert_string_equal(e->password, "{PLAIN}new");
	auth_entry_unref(&e);
	e = find(db, "zed@example.org");
	assert_int_equal(e->serial, 2);
	auth_entry_unref(&e);

	/* The old table is still whole for its readers. */
	assert_string_equal(bob->password, SCRAM_PW);
	assert_string_equal(alice->aliases[1], "postmaster@example.org");
	e = auth_entry_ref(alice);
	assert_ptr_equal(e, alice);
	auth_entry_unref(&e);
	auth_passdb_free(&db);
	/* Entries outlive the database too. */
	assert_string_equal(alice->home, "/home/alice");
	auth_entry_unref(&alice);
	auth_entry_unref(&bob);
}

static void
test_quota_sizes(void **state)
{
	static const struct {
		const char *v;
		uint64_t bytes;
	} sizes[] = {
		{ "100", 100 },
		{ "10kb", 10240 },
		{ "3M", 3ULL << 20 },
		{ "2g", 2ULL << 30 },
		{ "1TB", 1ULL << 40 },
	};
	struct warned w = { 0 };
	struct auth_passdb *db;
	struct auth_entry *e;
	char line[64];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(line, sizeof(line), "u:::::::quota=%s\n", sizes[i].v);
		write_str(line);
		db = open_db(&w, false);
		e = find(db, "u");
		assert_true(e->has_quota);
		assert_int_equal(e->quota, sizes[i].bytes);
		auth_entry_unref(&e);
		auth_passdb_free(&db);
	}
	write_str("u:::::::quota=99999999999999999999\n");
	assert_null(auth_passdb_new(&(struct auth_passdb_conf){ .path = path },
	    &(const char *){ NULL }));
	write_str("u:::::::quota=16777216T\n");
	assert_null(auth_passdb_new(&(struct auth_passdb_conf){ .path = path },
	    &(const char *){ NULL }));
}

static void
test_changed_vanished(void **state)
{
	struct warned w = { 0 };
	struct auth_passdb *db;
	const char *err = NULL;

	write_str("a:::\n");
	db = open_db(&w, false);
	unlink(path);
	assert_int_equal(auth_passdb_changed(db), 1);
	assert_int_equal(auth_passdb_reload(db, &err), -1);
	assert_int_equal(auth_passdb_count(db), 1);
	auth_passdb_free(&db);
	write_str("");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_allow_nets, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_lines, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_user, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_sizes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_changed_vanished, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
