/*
 * auth_conf.c - the `auth { }` config section every daemon that logs
 * users in shares (auth/auth_conf.h): the passwd-file, the verify pool,
 * the positive cache, the reload check, master users and their networks,
 * the legacy mechanisms and SCRAM's secret; types, defaults and bounds
 * live here and nowhere else. Relies on core/config.c for parsing and for
 * errors that name file:line.
 *
 * Runs at start-up and on reload, on the main thread only. Must never
 * accept a section that would fail later for a reason visible here.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/auth_conf.h"
#include "auth/auth_private.h"
#include "core/net.h"

static int check_masters(const struct auth_conf *ac, struct cfg_error *err);
static int check_http(const struct auth_conf *ac, struct cfg_error *err);

/* Same order as enum auth_scheme; PLAIN is left out on purpose: the
 * dummy hash of unknown users must cost what a real hash costs. */
static const char *const scheme_names[] = { "ARGON2ID", "BLF-CRYPT",
	"SHA512-CRYPT", "SHA256-CRYPT", "YESCRYPT", "SCRAM-SHA-256", NULL };

#define F(field) offsetof(struct auth_conf, field)

const struct cfg_field auth_conf_fields[] = {
	{ "passwd_file", CFG_STRING, F(passwd_file), CFG_REQUIRED,
	    .hint = "a Dovecot-style passwd-file: user:{SCHEME}hash:..." },
	{ "allow_plaintext", CFG_BOOL, F(allow_plaintext), 0, "false" },
	{ "default_scheme", CFG_ENUM, F(default_scheme), 0, "SCRAM-SHA-256",
	    .choices = scheme_names,
	    .hint = "the scheme most users' hashes use (unknown users cost "
		    "the same)" },
	{ "threads", CFG_INT, F(threads), 0, "2", 1, 64 },
	{ "queue", CFG_INT, F(queue), 0, "256", 1, 100000,
	    .hint = "verifications waiting; more are refused as temporary "
		    "failures" },
	{ "cache_ttl", CFG_DURATION, F(cache_ttl), 0, "60s", 0, 86400000,
	    .hint = "0 turns the positive cache off" },
	{ "cache_size", CFG_INT, F(cache_size), 0, "4096", 1, 10000000 },
	{ "reload_check", CFG_DURATION, F(reload_check), 0, "2s", 0, 3600000,
	    .hint = "how often the passwd-file is checked for "
		    "changes; 0 = only on SIGHUP" },
	{ "", CFG_LOC, F(loc) },
	{ "master_users", CFG_STRLIST, F(master_users), 0,
	    .count_offset = F(nmaster_users),
	    .hint = "passwd-file users that may act as any user (ringgate)" },
	{ "master_nets", CFG_NETLIST, F(master_nets), 0,
	    .count_offset = F(nmaster_nets),
	    .hint = "networks masters may log in from, like "
		    "[ \"127.0.0.0/8\", \"::1\" ]" },
	{ "legacy_mechanisms", CFG_BOOL, F(legacy_mechanisms), 0, "false",
	    .hint = "CRAM-MD5 for {PLAIN} users; needs "
		    "allow_plaintext" },
	{ "scram_secret_file", CFG_STRING, F(scram_secret_file), 0,
	    .hint = "the same file on every instance: unknown users get the "
		    "same fake SCRAM salts everywhere" },
	{ "http_url", CFG_STRING, F(http_url), 0,
	    .hint = "an nginx auth_http-style service, like "
		    "\"http://127.0.0.1:9000/auth\": it verifies passwords "
		    "instead of passwd_file" },
	{ "http_timeout", CFG_DURATION, F(http_timeout), 0, "5s", 1, 600000,
	    .hint = "connect, send and answer, each" },
	{ "http_connections", CFG_INT, F(http_connections), 0, "8", 1, 1024,
	    .hint = "connections to the HTTP hook open at once (kept "
		    "alive)" },
	{ "http_header", CFG_STRLIST, F(http_headers), 0,
	    .count_offset = F(nhttp_headers),
	    .hint = "extra request headers, like [ \"X-Key: secret\" ]" },
	{ NULL },
};

int
auth_conf_check(const struct auth_conf *ac, struct cfg_error *err)
{
	/* CRAM-MD5 needs the plaintext secret: without allow_plaintext it
	 * would be advertised and fail for everyone. */
	if (ac->legacy_mechanisms && !ac->allow_plaintext) {
		cfg_error_at(err, &ac->loc,
		    "auth.legacy_mechanisms needs "
		    "auth.allow_plaintext = true ({PLAIN} passwords)");
		return -1;
	}
	if (ac->http_url != NULL && check_http(ac, err) == -1)
		return -1;
	return check_masters(ac, err);
}

/* The URL and headers as the back-end will read them: a section that
 * loads starts. */
static int
check_http(const struct auth_conf *ac, struct cfg_error *err)
{
	struct auth_http_conf hc = {
		.url = ac->http_url,
		.headers = (const char *const *)ac->http_headers,
		.nheaders = ac->nhttp_headers,
	};
	const char *why = NULL;
	struct auth_http *h = auth_http_new(&hc, &why);

	if (h == NULL) {
		cfg_error_at(err, &ac->loc, "auth.http_url: %s", why);
		return -1;
	}
	auth_http_free(&h);
	return 0;
}

/* A master name a passwd-file cannot hold would only show up as refused
 * logins at ringgate; a name listed twice is a paste error. Presence in
 * the file is checked when the file is read (auth_service_check). */
static int
check_masters(const struct auth_conf *ac, struct cfg_error *err)
{
	char norm[AUTH_USER_MAX + 1];

	for (unsigned i = 0; i < ac->nmaster_users; i++) {
		const char *u = ac->master_users[i];

		if (auth_user_normalize(u, strnlen(u, AUTH_USER_MAX + 1),
			norm) == -1) {
			cfg_error_at(err, &ac->loc,
			    "auth.master_users: '%.64s' is not a user name "
			    "(1 to %d bytes without blanks, control bytes "
			    "or ':')",
			    u, AUTH_USER_MAX);
			return -1;
		}
		for (unsigned j = 0; j < i; j++)
			if (strcasecmp(ac->master_users[j], u) == 0) {
				cfg_error_at(err, &ac->loc,
				    "auth.master_users: '%s' is listed twice",
				    u);
				return -1;
			}
	}
	return 0;
}

bool
auth_conf_master(const struct auth_conf *ac, const char *user)
{
	for (unsigned i = 0; i < ac->nmaster_users; i++)
		if (strcasecmp(ac->master_users[i], user) == 0)
			return true;
	return false;
}

bool
auth_conf_master_net(const struct auth_conf *ac, const struct sockaddr *client)
{
	return net_list_match(ac->master_nets, ac->nmaster_nets, client);
}
