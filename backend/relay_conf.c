/*
 * relay_conf.c - the `relay { }` section of ringstore's config
 * (backend/relay.h): the smarthost, the spool directory, STARTTLS and
 * certificate checks, the retry schedule. Types, defaults and bounds live
 * here and nowhere else; core/config.c parses and names file:line.
 *
 * Main thread, at start-up and reload. Must never accept a section that
 * would fail later at start-up for a reason visible here.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/relay.h"

static const char *const starttls_names[] = { "required", "off", NULL };

#define F(field) offsetof(struct relay_conf, field)

const struct cfg_field relay_conf_fields[] = {
	{ "", CFG_LOC, F(loc) },
	{ "smarthost", CFG_STRING, F(smarthost), 0,
	    .hint = "\"host:port\" of the server that takes mail for other "
		    "domains; absent: remote recipients are refused" },
	{ "spool", CFG_STRING, F(spool), 0,
	    .hint = "a directory for queued mail; default <mail_root>/.spool" },
	{ "starttls", CFG_ENUM, F(starttls), 0, "required",
	    .choices = starttls_names,
	    .hint = "\"required\" (the default) or \"off\"" },
	{ "verify", CFG_BOOL, F(verify), 0, "true",
	    .hint = "check the smarthost's certificate and name" },
	{ "ca_file", CFG_STRING, F(ca_file), 0,
	    .hint = "PEM CA certificates; absent: the system store" },
	{ "helo", CFG_STRING, F(helo), 0,
	    .hint = "the name sent in EHLO; absent: the host name" },
	{ "user", CFG_STRING, F(user), 0,
	    .hint = "AUTH PLAIN user at the smarthost; needs password_file" },
	{ "password_file", CFG_STRING, F(password_file), 0,
	    .hint = "a file whose first line is relay.user's password" },
	{ "retry_min", CFG_DURATION, F(retry_min), 0, "60s", 100, 86400000,
	    .hint = "the first retry's delay; each later one doubles" },
	{ "retry_max", CFG_DURATION, F(retry_max), 0, "1h", 100, 604800000,
	    .hint = "the longest delay between two attempts" },
	{ "give_up", CFG_DURATION, F(give_up), 0, "5d", 1000,
	    (int64_t)90 * 86400000,
	    .hint = "after this long since arrival a DSN is sent" },
	{ "timeout", CFG_DURATION, F(timeout), 0, "5m", 100, 3600000,
	    .hint = "the longest wait for one smarthost reply" },
	{ "scan_interval", CFG_DURATION, F(scan_interval), 0, "10s", 100,
	    3600000, .hint = "how often the spool directory is read anyway" },
	{ "connections", CFG_INT, F(connections), 0, "4", 1, 256,
	    .hint = "smarthost connections at once" },
	{ NULL },
};

/* "host:port" or "[v6]:port", port 1..65535. */
static int
check_hostport(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (colon == NULL || colon == s || colon[1] == '\0')
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return -1;
	if (s[0] == '[' && colon[-1] != ']')
		return -1;
	return 0;
}

int
relay_conf_check(const struct relay_conf *rc, struct cfg_error *err)
{
	if (rc->smarthost != NULL && check_hostport(rc->smarthost) == -1) {
		cfg_error_at(err, &rc->loc,
		    "relay.smarthost: '%.64s' is not \"host:port\"",
		    rc->smarthost);
		return -1;
	}
	if (rc->retry_min > rc->retry_max) {
		cfg_error_at(err, &rc->loc,
		    "relay.retry_min must not exceed relay.retry_max");
		return -1;
	}
	if ((rc->user != NULL) != (rc->password_file != NULL)) {
		cfg_error_at(err, &rc->loc,
		    "relay.user and relay.password_file go together");
		return -1;
	}
	return 0;
}

char *
relay_spool_path(const struct relay_conf *rc, const char *mail_root)
{
	char *p;

	if (rc->spool != NULL)
		return strdup(rc->spool);
	if (asprintf(&p, "%s/.spool", mail_root) == -1)
		return NULL;
	return p;
}

bool
relay_conf_enabled(const struct relay_conf *rc)
{
	return rc->smarthost != NULL && rc->smarthost[0] != '\0';
}
