/*
 * test_auth_redis.c - the Redis user back-end against a real redis-server
 * that the test starts on a free loopback port in a temporary directory
 * (no persistence) and kills at the end: every field of a record, unknown
 * users, case, the verify path (right, wrong, nologin, allow_nets), broken
 * records as TEMPFAIL, serials that follow the record, Redis stopped and
 * frozen (TEMPFAIL within the timeout), Redis back (works again at once),
 * AUTH and SELECT.
 *
 * Skips (77) when redis-server is not installed, except under CI, where
 * scripts/deps.sh installs it and its absence is a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "auth/auth.h"
#include "tests/unit/redis_fixture.h"
#include "tests/unit/server_helpers.h"

#define PASSWORD "correct horse battery"
#define COMMAND_TIMEOUT_MS 300

/* The running server and what every test shares. */
struct rctx {
	struct redis_srv srv; /* redis_fixture.h */
	struct auth_scheme_opts schemes;
	char *hash, *dummy;
};

static struct rctx rc;

/* One command on a short-lived admin connection; must not fail. */
static void
cmd(const char *fmt, ...)
{
	redisContext *c = redis_srv_conn(&rc.srv);
	redisReply *reply;
	va_list ap;

	assert_non_null(c);
	va_start(ap, fmt);
	reply = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(reply);
	if (reply->type == REDIS_REPLY_ERROR)
		fail_msg("redis: %s", reply->str);
	freeReplyObject(reply);
	redisFree(c);
}

static void
populate(void)
{
	cmd("FLUSHALL");
	cmd("HSET ringgate:user:alice@example.org password %s host 10.0.0.5 "
	    "quota 512M alias %s allow_nets %s uid 1000 gid 1001 "
	    "home /home/alice userdb_mail maildir:~/M",
	    rc.hash, "A@example.org,Postmaster@Example.org",
	    "192.0.2.0/24, 2001:db8::/32");
	cmd("HSET ringgate:user:bob@example.org password %s nologin yes",
	    rc.hash);
	cmd("HSET ringgate:user:carol@example.org password %s allow_nets %s",
	    rc.hash, "10.1.2.3/8");
	cmd("SET ringgate:user:dave@example.org notahash");
	cmd("HSET ringgate:user:erin@example.org quota lots");
}

static int
group_setup(void **state)
{
	const char *err = NULL;

	snprintf(rc.srv.dir, sizeof(rc.srv.dir), "/tmp/rg-redis-XXXXXX");
	if (mkdtemp(rc.srv.dir) == NULL)
		return -1;
	rc.srv.port = free_port();
	redis_srv_start(&rc.srv);
	rc.schemes.sha_rounds = 1000;
	auth_scheme_opts_default(&rc.schemes);
	if (auth_scheme_hash(AUTH_SCHEME_SHA512_CRYPT, PASSWORD,
		strlen(PASSWORD), &rc.schemes, &rc.hash, &err) == -1 ||
	    auth_scheme_dummy(AUTH_SCHEME_SHA512_CRYPT, &rc.schemes, &rc.dummy,
		&err) == -1)
		return -1;
	populate();
	return 0;
}

static int
group_teardown(void **state)
{
	char buf[128];

	redis_srv_stop(&rc.srv);
	snprintf(buf, sizeof(buf), "rm -rf '%s'", rc.srv.dir);
	if (system(buf) != 0)
		return -1;
	free(rc.hash);
	free(rc.dummy);
	return 0;
}

static struct auth_redis *
open_redis(const char *password, unsigned db)
{
	struct auth_redis_conf conf = {
		.port = rc.srv.port,
		.password = password,
		.db = db,
		.connect_timeout_ms = COMMAND_TIMEOUT_MS,
		.command_timeout_ms = COMMAND_TIMEOUT_MS,
		.max_idle = 2,
	};
	const char *err = NULL;
	struct auth_redis *r = auth_redis_new(&conf, &err);

	if (r == NULL)
		fail_msg("auth_redis_new: %s", err);
	return r;
}

static enum auth_lookup
look(struct auth_redis *r, const char *user, struct auth_entry **e)
{
	const char *err = NULL;

	return auth_lookup(auth_redis_backend(r), user, e, &err);
}

static struct sockaddr_in
v4(const char *s)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	assert_int_equal(inet_pton(AF_INET, s, &sin.sin_addr), 1);
	return sin;
}

static void
verify(struct auth_redis *r, const char *user, const char *pw, const char *from,
    struct auth_result *res)
{
	struct auth_verifier v = { .backend = auth_redis_backend(r),
		.schemes = &rc.schemes,
		.dummy_hash = rc.dummy };
	struct sockaddr_in sin = v4(from);

	auth_verify(&v, user, pw, strlen(pw), (struct sockaddr *)&sin, res);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_fields(void **state)
{
	struct auth_redis *r = open_redis(NULL, 0);
	struct auth_entry *e = NULL;
	struct sockaddr_in in = v4("192.0.2.77"), out = v4("198.51.100.1");

	assert_int_equal(look(r, "Alice@Example.ORG", &e), AUTH_LOOKUP_FOUND);
	assert_string_equal(e->user, "alice@example.org");
	assert_string_equal(e->password, rc.hash);
	assert_string_equal(e->host, "10.0.0.5");
	assert_true(e->has_quota);
	assert_int_equal(e->quota, 512ULL << 20);
	assert_int_equal(e->n_aliases, 2);
	assert_true(auth_entry_has_alias(e, "postmaster@example.org"));
	assert_true(auth_entry_has_alias(e, "a@EXAMPLE.org"));
	assert_int_equal(e->n_allow_nets, 2);
	assert_true(auth_user_allowed_from(e, (struct sockaddr *)&in));
	assert_false(auth_user_allowed_from(e, (struct sockaddr *)&out));
	assert_true(e->has_uid && e->has_gid);
	assert_int_equal(e->uid, 1000);
	assert_int_equal(e->gid, 1001);
	assert_string_equal(e->home, "/home/alice");
	assert_string_equal(e->shell, "");
	assert_false(e->nologin);
	assert_false(e->verify_by_backend);
	assert_string_equal(auth_entry_field(e, "userdb_mail"), "maildir:~/M");
	assert_null(auth_entry_field(e, "host"));
	auth_entry_unref(&e);

	assert_int_equal(look(r, "bob@example.org", &e), AUTH_LOOKUP_FOUND);
	assert_true(e->nologin);
	assert_null(e->host);
	assert_false(e->has_quota);
	auth_entry_unref(&e);

	assert_int_equal(look(r, "nobody@example.org", &e),
	    AUTH_LOOKUP_NOTFOUND);
	assert_null(e);
	assert_int_equal(look(r, "bad user", &e), AUTH_LOOKUP_NOTFOUND);
	auth_redis_free(&r);
	assert_null(r);
}

/* A record that cannot be understood must not become "unknown user" or,
 * worse, a user without its restrictions. */
static void
test_broken_records(void **state)
{
	struct auth_redis *r = open_redis(NULL, 0);
	struct auth_entry *e = NULL;
	const char *err = NULL;

	assert_int_equal(
	    auth_lookup(auth_redis_backend(r), "carol@example.org", &e, &err),
	    AUTH_LOOKUP_TEMPFAIL);
	assert_non_null(strstr(err, "allow_nets"));
	assert_int_equal(
	    auth_lookup(auth_redis_backend(r), "dave@example.org", &e, &err),
	    AUTH_LOOKUP_TEMPFAIL);
	assert_non_null(strstr(err, "error reply"));
	assert_int_equal(look(r, "erin@example.org", &e), AUTH_LOOKUP_TEMPFAIL);
	assert_null(e);
	auth_redis_free(&r);
}

static void
test_verify(void **state)
{
	struct auth_redis *r = open_redis(NULL, 0);
	struct auth_result res;

	verify(r, "alice@example.org", PASSWORD, "192.0.2.1", &res);
	assert_int_equal(res.status, AUTH_OK);
	assert_non_null(res.entry);
	assert_string_equal(res.entry->user, "alice@example.org");
	auth_entry_unref(&res.entry);

	verify(r, "alice@example.org", "wrong", "192.0.2.1", &res);
	assert_int_equal(res.status, AUTH_FAIL);
	assert_int_equal(res.reason, AUTH_R_PASSWORD);
	assert_null(res.entry);

	verify(r, "nobody@example.org", PASSWORD, "192.0.2.1", &res);
	assert_int_equal(res.status, AUTH_FAIL);
	assert_int_equal(res.reason, AUTH_R_UNKNOWN);

	verify(r, "alice@example.org", PASSWORD, "198.51.100.1", &res);
	assert_int_equal(res.status, AUTH_FAIL);
	assert_int_equal(res.reason, AUTH_R_NETWORK);

	verify(r, "bob@example.org", PASSWORD, "192.0.2.1", &res);
	assert_int_equal(res.status, AUTH_FAIL);
	assert_int_equal(res.reason, AUTH_R_NOLOGIN);

	verify(r, "carol@example.org", PASSWORD, "192.0.2.1", &res);
	assert_int_equal(res.status, AUTH_TEMPFAIL);
	assert_int_equal(res.reason, AUTH_R_BACKEND);
	auth_redis_free(&r);
}

/* The cache trusts a serial: same record, same serial; any change, a new
 * one. */
static void
test_serial(void **state)
{
	struct auth_redis *r = open_redis(NULL, 0);
	struct auth_entry *a = NULL, *b = NULL;

	assert_int_equal(look(r, "bob@example.org", &a), AUTH_LOOKUP_FOUND);
	assert_int_equal(look(r, "bob@example.org", &b), AUTH_LOOKUP_FOUND);
	assert_true(a != b);
	assert_true(a->serial == b->serial);
	auth_entry_unref(&b);
	cmd("HSET ringgate:user:bob@example.org password {PLAIN}x");
	assert_int_equal(look(r, "bob@example.org", &b), AUTH_LOOKUP_FOUND);
	assert_true(a->serial != b->serial);
	/* The old entry outlives the change untouched. */
	assert_string_equal(a->password, rc.hash);
	auth_entry_unref(&a);
	auth_entry_unref(&b);
	cmd("HSET ringgate:user:bob@example.org password %s", rc.hash);
	auth_redis_free(&r);
}

static void
test_down_and_back(void **state)
{
	struct auth_redis *r = open_redis(NULL, 0);
	struct auth_entry *e = NULL;
	struct auth_result res;
	const char *err = NULL;

	/* Leave kept connections behind, then take the server away. */
	assert_int_equal(look(r, "bob@example.org", &e), AUTH_LOOKUP_FOUND);
	auth_entry_unref(&e);
	redis_srv_stop(&rc.srv);
	assert_int_equal(
	    auth_lookup(auth_redis_backend(r), "bob@example.org", &e, &err),
	    AUTH_LOOKUP_TEMPFAIL);
	assert_null(e);
	assert_non_null(strstr(err, "redis:"));
	verify(r, "alice@example.org", PASSWORD, "192.0.2.1", &res);
	assert_int_equal(res.status, AUTH_TEMPFAIL);
	assert_int_equal(res.reason, AUTH_R_BACKEND);
	verify(r, "nobody@example.org", PASSWORD, "192.0.2.1", &res);
	assert_int_equal(res.status, AUTH_TEMPFAIL);

	redis_srv_start(&rc.srv);
	populate();
	verify(r, "alice@example.org", PASSWORD, "192.0.2.1", &res);
	assert_int_equal(res.status, AUTH_OK);
	auth_entry_unref(&res.entry);

	/* Kept connections to a restarted server are dead: the very first
	 * lookup afterwards still succeeds. */
	redis_srv_stop(&rc.srv);
	redis_srv_start(&rc.srv);
	populate();
	assert_int_equal(look(r, "bob@example.org", &e), AUTH_LOOKUP_FOUND);
	auth_entry_unref(&e);
	auth_redis_free(&r);
}

/* A server that accepts but never answers costs one command timeout. */
static void
test_frozen(void **state)
{
	struct auth_redis *r = open_redis(NULL, 0);
	struct auth_entry *e = NULL;
	const char *err = NULL;
	uint64_t t0, dt;

	assert_int_equal(look(r, "bob@example.org", &e), AUTH_LOOKUP_FOUND);
	auth_entry_unref(&e);
	kill(rc.srv.pid, SIGSTOP);
	wait_stopped(rc.srv.pid);
	t0 = now_ms();
	assert_int_equal(
	    auth_lookup(auth_redis_backend(r), "bob@example.org", &e, &err),
	    AUTH_LOOKUP_TEMPFAIL);
	dt = now_ms() - t0;
	assert_string_equal(err, "redis: timed out");
	assert_true(dt >= COMMAND_TIMEOUT_MS - 50);
	assert_true(dt < 3 * COMMAND_TIMEOUT_MS);
	kill(rc.srv.pid, SIGCONT);
	assert_int_equal(look(r, "bob@example.org", &e), AUTH_LOOKUP_FOUND);
	auth_entry_unref(&e);
	auth_redis_free(&r);
}

static void
test_auth_and_select(void **state)
{
	struct auth_redis *r;
	struct auth_entry *e = NULL;
	const char *err = NULL;

	{
		redisContext *c = redis_srv_conn(&rc.srv);
		redisReply *reply;

		assert_non_null(c);
		reply = redisCommand(c, "SELECT 3");
		freeReplyObject(reply);
		reply = redisCommand(c,
		    "HSET t:user:zed@example.org password %s", rc.hash);
		assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
		freeReplyObject(reply);
		reply = redisCommand(c, "CONFIG SET requirepass s3cret");
		assert_int_equal(reply->type, REDIS_REPLY_STATUS);
		freeReplyObject(reply);
		redisFree(c);
	}
	r = open_redis(NULL, 3);
	assert_int_equal(
	    auth_lookup(auth_redis_backend(r), "zed@example.org", &e, &err),
	    AUTH_LOOKUP_TEMPFAIL);
	auth_redis_free(&r);

	{
		struct auth_redis_conf conf = { .port = rc.srv.port,
			.password = "s3cret",
			.db = 3,
			.prefix = "t:" };

		r = auth_redis_new(&conf, &err);
		assert_non_null(r);
	}
	assert_int_equal(look(r, "zed@example.org", &e), AUTH_LOOKUP_FOUND);
	assert_string_equal(e->password, rc.hash);
	auth_entry_unref(&e);
	assert_int_equal(look(r, "alice@example.org", &e),
	    AUTH_LOOKUP_NOTFOUND);
	auth_redis_free(&r);

	r = open_redis("wrong", 0);
	assert_int_equal(
	    auth_lookup(auth_redis_backend(r), "alice@example.org", &e, &err),
	    AUTH_LOOKUP_TEMPFAIL);
	assert_string_equal(err, "redis: AUTH refused");
	auth_redis_free(&r);
}

static void
test_conf(void **state)
{
	char prefix[200];
	struct auth_redis_conf conf = { .prefix = prefix };
	const char *err = NULL;

	memset(prefix, 'p', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	assert_null(auth_redis_new(&conf, &err));
	assert_non_null(strstr(err, "prefix"));
	conf = (struct auth_redis_conf){ .host = "" };
	assert_null(auth_redis_new(&conf, &err));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_broken_records),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_frozen),
		cmocka_unit_test(test_down_and_back),
		/* Last: it leaves a password on the server. */
		cmocka_unit_test(test_auth_and_select),
	};

	if (!redis_in_path("redis-server")) {
		if (getenv("CI") != NULL) {
			fprintf(stderr,
			    "redis-server missing under CI; "
			    "scripts/deps.sh installs it\n");
			return 1;
		}
		fprintf(stderr, "redis-server not installed: skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
