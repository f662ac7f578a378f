/*
 * test_auth_conf.c - the `auth { }` section (auth/auth_conf.c) as every
 * daemon loads it: each field stored, the defaults, the scheme names in
 * enum auth_scheme's order, bounds and typos refused at file:line, and
 * the cross-field checks (legacy_mechanisms without allow_plaintext,
 * master user names a passwd-file cannot hold or listed twice) naming
 * the section's file:line; then the master user and network queries.
 *
 * Each case writes a config to a mkstemp() file and loads it through a
 * root table holding the section as a CFG_GROUP, as a daemon does. Built
 * with ASan, LeakSanitizer checks that loads, failed or not, leave
 * nothing behind after cfg_free().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_conf.h"
#include "core/config.h"

struct t_conf {
	int64_t other; /* a key outside the section */
	struct auth_conf auth;
};

static const struct cfg_field root_fields[] = {
	{ "other", CFG_INT, offsetof(struct t_conf, other), 0, "0" },
	{ "auth", CFG_GROUP, offsetof(struct t_conf, auth),
	    .sub = auth_conf_fields },
	{ NULL },
};

static char path[64];

static void
write_conf(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Load text and run the section's checks, as rs_config_load() does.
 * 0, or -1 with err filled and nothing left to free. */
static int
load(const char *text, struct t_conf *c, struct cfg_error *err)
{
	write_conf(text);
	memset(c, 0, sizeof(*c));
	if (cfg_load(path, root_fields, c, err) == -1)
		return -1;
	if (auth_conf_check(&c->auth, err) == -1) {
		cfg_free(root_fields, c);
		return -1;
	}
	return 0;
}

/* The load fails with "PATH:line: ..." holding want. */
static void
refused_at(const char *text, int line, const char *want)
{
	struct cfg_error err;
	struct t_conf c;
	char at[96];

	assert_int_equal(load(text, &c, &err), -1);
	snprintf(at, sizeof(at), "%s:%d: ", path, line);
	if (strncmp(err.msg, at, strlen(at)) != 0 ||
	    strstr(err.msg, want) == NULL)
		fail_msg("want \"%s...%s\", got \"%s\"", at, want, err.msg);
}

static int
setup(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/rg-authconf-XXXXXX");
	if ((fd = mkstemp(path)) == -1)
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
test_every_field(void **state)
{
	struct cfg_error err;
	struct t_conf c;
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	assert_int_equal(
	    load("other = 1;\n"
		 "auth = {\n"
		 "  passwd_file = \"/etc/users\";\n"
		 "  allow_plaintext = true;\n"
		 "  default_scheme = \"SHA512-CRYPT\";\n"
		 "  threads = 8;\n"
		 "  queue = 1000;\n"
		 "  cache_ttl = \"5m\";\n"
		 "  cache_size = 100;\n"
		 "  reload_check = \"500ms\";\n"
		 "  master_users = [ \"gate\", \"Gate2@x.test\" ];\n"
		 "  master_nets = [ \"10.0.0.0/8\", \"::1\" ];\n"
		 "  legacy_mechanisms = true;\n"
		 "  scram_secret_file = \"/etc/scram.secret\";\n"
		 "};\n",
		&c, &err),
	    0);
	assert_string_equal(c.auth.passwd_file, "/etc/users");
	assert_true(c.auth.allow_plaintext);
	assert_int_equal(c.auth.default_scheme, AUTH_SCHEME_SHA512_CRYPT);
	assert_int_equal(c.auth.threads, 8);
	assert_int_equal(c.auth.queue, 1000);
	assert_int_equal(c.auth.cache_ttl, 300000);
	assert_int_equal(c.auth.cache_size, 100);
	assert_int_equal(c.auth.reload_check, 500);
	assert_int_equal(c.auth.nmaster_users, 2);
	assert_string_equal(c.auth.master_users[1], "Gate2@x.test");
	assert_int_equal(c.auth.nmaster_nets, 2);
	assert_true(c.auth.legacy_mechanisms);
	assert_string_equal(c.auth.scram_secret_file, "/etc/scram.secret");
	/* the section's place, for errors found after loading */
	assert_string_equal(c.auth.loc.file, path);
	assert_int_equal(c.auth.loc.line, 2);

	/* master queries: any case; v4 and v6 networks; no address */
	assert_true(auth_conf_master(&c.auth, "GATE"));
	assert_true(auth_conf_master(&c.auth, "gate2@X.TEST"));
	assert_false(auth_conf_master(&c.auth, "gate3"));
	assert_false(auth_conf_master(&c.auth, ""));
	inet_pton(AF_INET, "10.1.2.3", &in.sin_addr);
	assert_true(auth_conf_master_net(&c.auth, (struct sockaddr *)&in));
	inet_pton(AF_INET, "11.1.2.3", &in.sin_addr);
	assert_false(auth_conf_master_net(&c.auth, (struct sockaddr *)&in));
	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	assert_true(auth_conf_master_net(&c.auth, (struct sockaddr *)&in6));
	inet_pton(AF_INET6, "::2", &in6.sin6_addr);
	assert_false(auth_conf_master_net(&c.auth, (struct sockaddr *)&in6));
	assert_false(auth_conf_master_net(&c.auth, NULL));
	cfg_free(root_fields, &c);
}

static void
test_defaults(void **state)
{
	struct cfg_error err;
	struct t_conf c;
	struct sockaddr_in in = { .sin_family = AF_INET };

	assert_int_equal(load("auth = { passwd_file = \"/p\"; };\n", &c, &err),
	    0);
	assert_false(c.auth.allow_plaintext);
	assert_int_equal(c.auth.default_scheme, AUTH_SCHEME_SCRAM_SHA_256);
	assert_int_equal(c.auth.threads, 2);
	assert_int_equal(c.auth.queue, 256);
	assert_int_equal(c.auth.cache_ttl, 60000);
	assert_int_equal(c.auth.cache_size, 4096);
	assert_int_equal(c.auth.reload_check, 2000);
	assert_int_equal(c.auth.nmaster_users, 0);
	assert_int_equal(c.auth.nmaster_nets, 0);
	assert_false(c.auth.legacy_mechanisms);
	assert_null(c.auth.scram_secret_file);
	/* no master_nets: nobody may act as a master */
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	assert_false(auth_conf_master_net(&c.auth, (struct sockaddr *)&in));
	cfg_free(root_fields, &c);
}

/* The choices are enum auth_scheme's order: a scheme name in the file
 * must give the scheme of that name. PLAIN is not a choice. */
static void
test_scheme_names(void **state)
{
	char text[256];
	struct cfg_error err;
	struct t_conf c;

	for (int s = 0; s < AUTH_SCHEME_PLAIN; s++) {
		snprintf(text, sizeof(text),
		    "auth = { passwd_file = \"/p\"; default_scheme = \"%s\"; "
		    "};\n",
		    auth_scheme_name((enum auth_scheme)s));
		assert_int_equal(load(text, &c, &err), 0);
		assert_int_equal(c.auth.default_scheme, s);
		cfg_free(root_fields, &c);
	}
	refused_at("auth = {\n passwd_file = \"/p\";\n"
		   " default_scheme = \"PLAIN\";\n};\n",
	    3, "auth.default_scheme");
}

static void
test_fields_refused(void **state)
{
	refused_at("other = 2;\n\nauth = {\n  threads = 2;\n};\n", 3,
	    "missing required key 'auth.passwd_file'");
	refused_at("auth = {\n passwd_file = \"/p\";\n threads = 0;\n};\n", 3,
	    "auth.threads");
	refused_at("auth = {\n passwd_file = \"/p\";\n queue = 100001;\n};\n",
	    3, "auth.queue");
	refused_at("auth = {\n passwd_file = \"/p\";\n"
		   " cache_ttl = \"2d\";\n};\n",
	    3, "auth.cache_ttl");
	refused_at("auth = {\n passwd_file = \"/p\";\n"
		   " reload_chek = \"1s\";\n};\n",
	    3, "did you mean 'reload_check'");
	refused_at("auth = {\n passwd_file = \"/p\";\n"
		   " master_nets = [ \"10.0.0.1/8\" ];\n};\n",
	    3, "auth.master_nets");
	refused_at("auth = {\n passwd_file = \"/p\";\n"
		   " allow_plaintext = \"yes\";\n};\n",
	    3, "auth.allow_plaintext");
}

/* Checks across fields name the section's line. */
static void
test_cross_checks(void **state)
{
	char text[600], big[AUTH_USER_MAX + 2];
	struct cfg_error err;
	struct t_conf c;

	refused_at("other = 1;\nauth = {\n passwd_file = \"/p\";\n"
		   " legacy_mechanisms = true;\n};\n",
	    2, "auth.legacy_mechanisms needs auth.allow_plaintext = true");
	assert_int_equal(load("auth = { passwd_file = \"/p\"; "
			      "legacy_mechanisms = true; "
			      "allow_plaintext = true; };\n",
			     &c, &err),
	    0);
	cfg_free(root_fields, &c);

	refused_at("\nauth = {\n passwd_file = \"/p\";\n"
		   " master_users = [ \"gate\", \"x\", \"GATE\" ];\n};\n",
	    2, "auth.master_users: 'GATE' is listed twice");
	refused_at("auth = {\n passwd_file = \"/p\";\n"
		   " master_users = [ \"ring gate\" ];\n};\n",
	    1, "auth.master_users: 'ring gate' is not a user name");
	refused_at("auth = {\n passwd_file = \"/p\";\n"
		   " master_users = [ \"a:b\" ];\n};\n",
	    1, "is not a user name");
	refused_at("auth = {\n passwd_file = \"/p\";\n"
		   " master_users = [ \"\" ];\n};\n",
	    1, "is not a user name");
	/* 256 bytes is the longest name a back-end looks up, 257 is not */
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(text, sizeof(text),
	    "auth = { passwd_file = \"/p\"; master_users = [ \"%s\" ]; };\n",
	    big);
	refused_at(text, 1, "is not a user name");
	big[AUTH_USER_MAX] = '\0';
	snprintf(text, sizeof(text),
	    "auth = { passwd_file = \"/p\"; master_users = [ \"%s\" ]; };\n",
	    big);
	assert_int_equal(load(text, &c, &err), 0);
	cfg_free(root_fields, &c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_field),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_scheme_names),
		cmocka_unit_test(test_fields_refused),
		cmocka_unit_test(test_cross_checks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
