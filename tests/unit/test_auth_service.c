/*
 * test_auth_service.c - auth in a daemon without the daemon
 * (auth/auth_service.c): start-up from a loaded `auth { }` section (the
 * passwd-file, master users present, the daemon's name rule with masters
 * exempt, the SCRAM secret file and its checks); reloads that keep the
 * old table on a broken file and count it; the tick picking up an edit
 * once; a reload forgetting the positive cache; a master that went
 * missing; master authorization verdicts; the metrics under their names.
 *
 * Each case writes a passwd-file and a config into a mkdtemp() directory
 * and loads the section through core/config.c as a daemon does. Users
 * have {PLAIN} passwords and the dummy hash is SHA256-CRYPT, so the
 * suite stays quick; nothing is timed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "auth/auth.h"
#include "auth/auth_conf.h"
#include "auth/auth_service.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"

struct t_conf {
	struct auth_conf auth;
};

static const struct cfg_field root_fields[] = {
	{ "auth", CFG_GROUP, offsetof(struct t_conf, auth),
	    .sub = auth_conf_fields },
	{ NULL },
};

/* One verification's answer, from a pool thread. */
struct answer {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	enum auth_status status;
	bool cached;
};

static struct {
	char dir[64];
	char passwd[96];
	char conf[96];
	char secret[96];
	struct t_conf c;
	bool loaded;
	struct auth_service *svc;
} F;

#define USERS                                                                  \
	"alice@example.test:{PLAIN}apple\n"                                    \
	"bob@example.test:{PLAIN}banana::::::nologin\n"                        \
	"gate:{PLAIN}master-pw\n"

static void
write_file(const char *path, const char *text)
{
	char tmp[128];
	FILE *f;

	/* by rename, as ringgate-passwd does: a new inode each time */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* Write the section (extra: more keys) and load it into F.c. */
static void
load_conf(const char *extra)
{
	char text[1024];
	struct cfg_error err;

	snprintf(text, sizeof(text),
	    "auth = {\n"
	    "  passwd_file = \"%s\";\n"
	    "  allow_plaintext = true;\n"
	    "  default_scheme = \"SHA256-CRYPT\";\n"
	    "  threads = 1;\n"
	    "%s"
	    "};\n",
	    F.passwd, extra ? extra : "");
	write_file(F.conf, text);
	if (cfg_load(F.conf, root_fields, &F.c, &err) == -1 ||
	    auth_conf_check(&F.c.auth, &err) == -1)
		fail_msg("%s", err.msg);
	F.loaded = true;
}

static void
unload_conf(void)
{
	cfg_free(root_fields, &F.c);
	F.loaded = false;
}

static struct auth_service *
must_new(const struct auth_service_opts *o)
{
	const char *error = NULL;
	struct auth_service *svc = auth_service_new(&F.c.auth, o, &error);

	if (svc == NULL)
		fail_msg("auth_service_new: %s", error);
	return svc;
}

static const char *
new_fails(const struct auth_service_opts *o)
{
	const char *error = NULL;

	assert_null(auth_service_new(&F.c.auth, o, &error));
	assert_non_null(error);
	return error;
}

static bool
has_user(struct auth_service *svc, const char *user)
{
	struct auth_entry *e = NULL;
	const char *err = NULL;
	bool found = auth_lookup(auth_service_users(svc), user, &e, &err) ==
	    AUTH_LOOKUP_FOUND;

	auth_entry_unref(&e);
	return found;
}

static int
setup(void **state)
{
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/rg-authsvc-XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return -1;
	snprintf(F.passwd, sizeof(F.passwd), "%s/passwd", F.dir);
	snprintf(F.conf, sizeof(F.conf), "%s/t.conf", F.dir);
	snprintf(F.secret, sizeof(F.secret), "%s/scram.secret", F.dir);
	write_file(F.passwd, USERS);
	return 0;
}

static int
teardown(void **state)
{
	auth_service_free(&F.svc);
	if (F.loaded)
		cfg_free(root_fields, &F.c);
	unlink(F.passwd);
	unlink(F.conf);
	unlink(F.secret);
	rmdir(F.dir);
	return 0;
}

/* ---- start-up ------------------------------------------------------- */

static void
test_start(void **state)
{
	size_t len = 1;

	load_conf(NULL);
	F.svc = must_new(NULL);
	assert_int_equal(auth_service_count(F.svc), 3);
	assert_int_equal(auth_service_version(F.svc), 1);
	assert_true(has_user(F.svc, "Alice@Example.TEST"));
	assert_ptr_equal(auth_service_conf(F.svc), &F.c.auth);
	/* no pool before start, no secret without a file */
	assert_null(auth_service_pool(F.svc));
	assert_null(auth_service_scram_secret(F.svc, &len));
	assert_int_equal(len, 0);
	auth_service_free(&F.svc);
	assert_null(F.svc);
	auth_service_free(&F.svc); /* twice is fine */
}

static void
test_broken_file_at_start(void **state)
{
	char want[128];

	write_file(F.passwd, USERS "broken:{NOSUCH}x\n");
	load_conf(NULL);
	snprintf(want, sizeof(want), "%s:4:", F.passwd);
	assert_non_null(strstr(new_fails(NULL), want));
}

static void
test_masters_at_start(void **state)
{
	char want[256];

	load_conf("  master_users = [ \"GATE\" ];\n");
	F.svc = must_new(NULL);
	assert_int_equal(
	    auth_service_check_masters(F.svc, &(const char *){ 0 }), 0);
	auth_service_free(&F.svc);
	unload_conf();

	load_conf("  master_users = [ \"gate\", \"ghost@example.test\" ];\n");
	snprintf(want, sizeof(want),
	    "%s:1: auth.master_users: 'ghost@example.test' is not in %s",
	    F.conf, F.passwd);
	assert_string_equal(new_fails(NULL), want);
}

/* ringstore's rule: a name needs a domain. Master users are exempt. */
static int
need_domain(void *ctx, const char *user, const char **reason_r)
{
	(*(int *)ctx)++;
	if (strchr(user, '@') != NULL)
		return 0;
	*reason_r = "no @domain";
	return -1;
}

static void
test_name_rule(void **state)
{
	int calls = 0;
	struct auth_service_opts o = { .check_user = need_domain,
		.check_ctx = &calls };
	char want[128];

	/* "gate" has no domain: refused unless it is a master */
	load_conf(NULL);
	snprintf(want, sizeof(want), "%s:3: user gate: no @domain", F.passwd);
	assert_non_null(strstr(new_fails(&o), want));
	unload_conf();

	load_conf("  master_users = [ \"gate\" ];\n");
	calls = 0;
	F.svc = must_new(&o);
	assert_int_equal(calls, 2); /* alice, bob; not the master */
	/* the rule holds at reloads too, keeping the old table */
	write_file(F.passwd, USERS "carol:{PLAIN}c\n");
	assert_int_equal(auth_service_reload(F.svc, "test"), -1);
	assert_false(has_user(F.svc, "carol"));
	assert_true(has_user(F.svc, "alice@example.test"));
	assert_int_equal(auth_service_version(F.svc), 1);
}

static void
test_scram_secret(void **state)
{
	const char *text = "0123456789abcdef-a-secret";
	uint8_t want[SHA256_DIGEST_LENGTH];
	const uint8_t *got, *got2;
	char extra[256];
	size_t len = 0;

	snprintf(extra, sizeof(extra), "  scram_secret_file = \"%s\";\n",
	    F.secret);
	load_conf(extra);

	/* SHA-256 of the bytes, trailing white space dropped */
	write_file(F.secret, "0123456789abcdef-a-secret \t\r\n\n");
	chmod(F.secret, 0600);
	SHA256((const uint8_t *)text, strlen(text), want);
	F.svc = must_new(NULL);
	got = auth_service_scram_secret(F.svc, &len);
	assert_int_equal(len, SHA256_DIGEST_LENGTH);
	assert_memory_equal(got, want, sizeof(want));
	auth_service_free(&F.svc);
	write_file(F.secret, text);
	F.svc = must_new(NULL);
	got2 = auth_service_scram_secret(F.svc, &len);
	assert_memory_equal(got2, want, sizeof(want));
	auth_service_free(&F.svc);

	/* 16 bytes is the shortest accepted */
	write_file(F.secret, "0123456789abcde\n");
	assert_non_null(strstr(new_fails(NULL), "shorter than 16 bytes"));
	write_file(F.secret, "0123456789abcdef\n");
	F.svc = must_new(NULL);
	auth_service_free(&F.svc);

	unlink(F.secret);
	assert_non_null(strstr(new_fails(NULL), "No such file"));
	assert_non_null(strstr(new_fails(NULL), "auth.scram_secret_file"));
	assert_int_equal(mkdir(F.secret, 0700), 0);
	assert_non_null(strstr(new_fails(NULL), "not a regular file"));
	rmdir(F.secret);
	{
		char *big = malloc(5000);

		memset(big, 'x', 4999);
		big[4999] = '\0';
		write_file(F.secret, big);
		free(big);
	}
	assert_non_null(strstr(new_fails(NULL), "longer than 4096 bytes"));
}

/* ---- reloads -------------------------------------------------------- */

static double
metric(struct metrics *m, const char *name, const char *labels)
{
	/* registering again returns the existing id */
	int id = strstr(name, "reloads") ?
	    metrics_counter_set(m, name, "x", labels) :
	    metrics_gauge_set(m, name, "x", labels);

	assert_true(id >= 0);
	return metrics_value(m, id);
}

static void
test_reload_keeps_old_table(void **state)
{
	struct metrics *m = metrics_new("t", 1);

	load_conf(NULL);
	F.svc = must_new(NULL);
	assert_int_equal(auth_service_metrics(F.svc, m), 0);
	assert_int_equal(metric(m, "passdb_users", NULL), 3);
	assert_int_equal(metric(m, "passdb_version", NULL), 1);

	/* a broken file: the whole of it refused, the old table stays */
	write_file(F.passwd,
	    "carol@example.test:{PLAIN}c\nbroken line without fields\n");
	assert_int_equal(auth_service_reload(F.svc, "signal"), -1);
	assert_true(has_user(F.svc, "alice@example.test"));
	assert_false(has_user(F.svc, "carol@example.test"));
	assert_int_equal(auth_service_count(F.svc), 3);
	assert_int_equal(auth_service_version(F.svc), 1);
	assert_int_equal(
	    metric(m, "passdb_reloads_total", "result=\"refused\""), 1);
	assert_int_equal(metric(m, "passdb_reloads_total", "result=\"ok\""), 0);
	assert_int_equal(metric(m, "passdb_version", NULL), 1);

	/* fixed: in, counted, gauges follow */
	write_file(F.passwd, "carol@example.test:{PLAIN}c\n");
	assert_int_equal(auth_service_reload(F.svc, "signal"), 0);
	assert_true(has_user(F.svc, "carol@example.test"));
	assert_false(has_user(F.svc, "alice@example.test"));
	assert_int_equal(auth_service_version(F.svc), 2);
	assert_int_equal(metric(m, "passdb_reloads_total", "result=\"ok\""), 1);
	assert_int_equal(metric(m, "passdb_users", NULL), 1);
	assert_int_equal(metric(m, "passdb_version", NULL), 2);
	auth_service_free(&F.svc);
	metrics_free(m);
}

static void
test_tick(void **state)
{
	load_conf(NULL);
	F.svc = must_new(NULL);
	assert_int_equal(auth_service_tick(F.svc), 0);
	assert_int_equal(auth_service_tick(F.svc), 0);

	write_file(F.passwd, USERS "dave@example.test:{PLAIN}d\n");
	assert_int_equal(auth_service_tick(F.svc), 1);
	assert_true(has_user(F.svc, "dave@example.test"));
	assert_int_equal(auth_service_version(F.svc), 2);
	assert_int_equal(auth_service_tick(F.svc), 0);

	/* a broken edit is tried once, not at every tick */
	write_file(F.passwd, USERS "erin\n:\n");
	assert_int_equal(auth_service_tick(F.svc), 1);
	assert_int_equal(auth_service_tick(F.svc), 0);
	assert_true(has_user(F.svc, "dave@example.test"));
	assert_int_equal(auth_service_version(F.svc), 2);

	/* the file gone is a change too; the table stays */
	unlink(F.passwd);
	assert_int_equal(auth_service_tick(F.svc), 1);
	assert_int_equal(auth_service_tick(F.svc), 0);
	assert_true(has_user(F.svc, "dave@example.test"));
	write_file(F.passwd, USERS);
	assert_int_equal(auth_service_tick(F.svc), 1);
	assert_false(has_user(F.svc, "dave@example.test"));
	assert_int_equal(auth_service_version(F.svc), 3);
}

static void
test_master_gone_on_reload(void **state)
{
	const char *error = NULL;

	load_conf("  master_users = [ \"gate\" ];\n");
	F.svc = must_new(NULL);
	/* the reload itself succeeds (users keep logging in); the missing
	 * master is reported */
	write_file(F.passwd, "alice@example.test:{PLAIN}apple\n");
	assert_int_equal(auth_service_reload(F.svc, "signal"), 0);
	assert_int_equal(auth_service_check_masters(F.svc, &error), -1);
	assert_non_null(strstr(error, "auth.master_users: 'gate' is not in"));
	write_file(F.passwd, USERS);
	assert_int_equal(auth_service_reload(F.svc, "signal"), 0);
	assert_int_equal(auth_service_check_masters(F.svc, &error), 0);
}

/* ---- master authorization ------------------------------------------- */

static void
test_authorize(void **state)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in out = { .sin_family = AF_INET };
	const struct sockaddr *inside = (struct sockaddr *)&in;
	const struct sockaddr *outside = (struct sockaddr *)&out;
	const struct {
		const char *authcid, *authzid;
		const struct sockaddr *client;
		enum sasl_verdict v;
		const char *why;
	} cases[] = {
		{ "Gate", "alice@example.test", inside, SASL_V_OK, "ok" },
		{ "alice@example.test", "bob@example.test", inside,
		    SASL_V_AUTHZID, "not_master" },
		{ "gate", "alice@example.test", outside, SASL_V_AUTHZID,
		    "network" },
		{ "gate", "alice@example.test", NULL, SASL_V_AUTHZID,
		    "network" },
		/* a master learns nothing about targets: like a wrong
		 * password */
		{ "gate", "ghost@example.test", inside, SASL_V_FAIL,
		    "unknown_target" },
		{ "gate", "bob@example.test", inside, SASL_V_FAIL,
		    "nologin_target" },
	};

	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	inet_pton(AF_INET, "192.0.2.1", &out.sin_addr);
	load_conf("  master_users = [ \"gate\" ];\n"
		  "  master_nets = [ \"127.0.0.0/8\" ];\n");
	F.svc = must_new(NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;

		assert_int_equal(auth_service_authorize(F.svc, cases[i].authcid,
				     cases[i].authzid, cases[i].client, &why),
		    cases[i].v);
		assert_string_equal(why, cases[i].why);
	}
}

/* ---- the pool ------------------------------------------------------- */

static void
answered(struct loop *l, uint64_t sid, struct auth_result *res, void *ctx)
{
	struct answer *a = ctx;

	pthread_mutex_lock(&a->lock);
	a->status = res->status;
	a->cached = res->cached;
	a->done = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static struct answer
verify(const char *user, const char *pw)
{
	struct answer a = { .lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER };

	assert_int_equal(auth_pool_submit(auth_service_pool(F.svc), NULL, 1,
			     user, pw, strlen(pw), NULL, answered, &a),
	    0);
	pthread_mutex_lock(&a.lock);
	while (!a.done)
		pthread_cond_wait(&a.cond, &a.lock);
	pthread_mutex_unlock(&a.lock);
	return a;
}

static void
test_pool_and_metrics(void **state)
{
	struct metrics *m = metrics_new("t", 1);
	const char *error = NULL;
	struct buf out = { 0 };
	struct answer a;
	char *text;

	load_conf(NULL);
	F.svc = must_new(NULL);
	assert_int_equal(auth_service_start(F.svc, &error), 0);
	assert_non_null(auth_service_pool(F.svc));
	assert_int_equal(auth_service_metrics(F.svc, m), 0);

	a = verify("alice@example.test", "apple");
	assert_int_equal(a.status, AUTH_OK);
	assert_false(a.cached);
	a = verify("alice@example.test", "apple");
	assert_true(a.cached);
	assert_int_equal(verify("alice@example.test", "pear").status,
	    AUTH_FAIL);
	/* the same file again: entries keep their serials, so only the
	 * reload's flush makes the next answer a fresh hash */
	write_file(F.passwd, USERS);
	assert_int_equal(auth_service_reload(F.svc, "signal"), 0);
	a = verify("alice@example.test", "apple");
	assert_int_equal(a.status, AUTH_OK);
	assert_false(a.cached);

	/* the names dashboards and tests use, with the pool's counts */
	assert_int_equal(metrics_render(m, &out), 0);
	assert_int_equal(buf_append(&out, "", 1), 0);
	text = out.data + out.off;
	assert_non_null(strstr(text, "t_auth_requests_total 4\n"));
	assert_non_null(strstr(text, "t_auth_hashes_total 3\n"));
	assert_non_null(strstr(text, "t_auth_cache_total{result=\"hit\"} 1\n"));
	assert_non_null(
	    strstr(text, "t_auth_results_total{result=\"ok\"} 3\n"));
	assert_non_null(
	    strstr(text, "t_auth_results_total{result=\"fail\"} 1\n"));
	assert_non_null(strstr(text, "t_auth_queue_refused_total 0\n"));
	assert_non_null(strstr(text, "t_auth_results_lost_total 0\n"));
	assert_non_null(strstr(text, "t_auth_queue 0\n"));
	assert_non_null(strstr(text, "t_passdb_users 3\n"));
	assert_non_null(strstr(text, "t_passdb_version 2\n"));
	assert_non_null(
	    strstr(text, "t_passdb_reloads_total{result=\"ok\"} 1\n"));
	assert_non_null(
	    strstr(text, "t_passdb_reloads_total{result=\"refused\"} 0\n"));
	buf_free(&out);
	auth_service_free(&F.svc);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_file_at_start,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_masters_at_start, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_name_rule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scram_secret, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reload_keeps_old_table,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_gone_on_reload,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_authorize, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pool_and_metrics, setup,
		    teardown),
	};

	/* the service logs reloads and warnings: keep the output to errors */
	log_init("test", LL_ERROR, 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
