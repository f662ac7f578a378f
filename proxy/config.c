/*
 * config.c - ringgate's configuration schema and its cross-field checks.
 *
 * The tables below are the single description of the file format: types,
 * defaults and bounds live here and nowhere else. docs/examples/
 * ringgate.conf shows every key.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/tls.h"
#include "proxy/proxy.h"

const char *const proxy_alpn_names[] = { "none", "imap", "pop3", "smtp", NULL };
#define F(type, field) offsetof(type, field)
#define FC(field) offsetof(struct proxy_config, field)

static const struct cfg_field admin_fields[] = {
	{ "listen", CFG_ADDR, F(struct proxy_config, admin.listen), 0,
	    "127.0.0.1:19100" },
	{ NULL },
};

static const struct cfg_field limits_fields[] = {
	{ "handshake_timeout", CFG_DURATION,
	    F(struct proxy_config, limits.handshake_timeout), 0, "10s", 100,
	    600000 },
	{ "connect_timeout", CFG_DURATION,
	    F(struct proxy_config, limits.connect_timeout), 0, "5s", 100,
	    600000 },
	{ "idle_timeout", CFG_DURATION,
	    F(struct proxy_config, limits.idle_timeout), 0, "30m", 1000,
	    86400000 },
	{ "output_buffer", CFG_SIZE,
	    F(struct proxy_config, limits.output_buffer), 0, "256k", 16384,
	    64 << 20 },
	/* the front ends, before login */
	{ "login_timeout", CFG_DURATION, FC(limits.login_timeout), 0, "60s",
	    1000, 3600000,
	    .hint = "a duration like \"60s\": from connect to logged in "
		    "(TLS, commands and the back-end login included)" },
	{ "login_idle_timeout", CFG_DURATION, FC(limits.login_idle_timeout), 0,
	    "30s", 1000, 3600000,
	    .hint = "a duration like \"30s\": no bytes from the client "
		    "before login for this long close it (our own waits, "
		    "verification and back-end login, excluded)" },
	{ "login_fail_delay", CFG_DURATION, FC(limits.login_fail_delay), 0,
	    "1s", 0, 60000,
	    .hint = "a duration like \"1s\": wait before each failed "
		    "login's answer; 0 = none" },
	{ "login_fails", CFG_INT, FC(limits.login_fails), 0, "3", 1, 100,
	    .hint = "failed logins (AUTH attempts) per connection before it "
		    "is closed" },
	{ "bad_commands", CFG_INT, FC(limits.bad_commands), 0, "10", 1, 1000,
	    .hint = "bad commands before login, then the connection is "
		    "closed" },
	{ "line_max_login", CFG_SIZE, FC(limits.line_max_login), 0, "8k", 1024,
	    1 << 20 },
	{ "max_sessions", CFG_INT, FC(limits.max_sessions), 0, "0", 0, 10000000,
	    .hint = "sessions at once in the daemon, over it new connections "
		    "are told to try later; 0 = what the descriptors allow" },
	{ "fd_reserve", CFG_INT, FC(limits.fd_reserve), 0, "64", 0, 1000000,
	    .hint =
		"descriptors of RLIMIT_NOFILE kept for back-end connections, log and listeners, never "
		"taken by accepted connections" },
	{ "message_max", CFG_SIZE, FC(limits.message_max), 0, "50M", 0,
	    (int64_t)1 << 31,
	    .hint = "submission: the SIZE announced in EHLO (the back end "
		    "enforces its own); 0 = no number" },
	{ NULL },
};

static const struct cfg_field backend_login_fields[] = {
	{ "", CFG_LOC, FC(backend_login.loc) },
	{ "master_user", CFG_STRING, FC(backend_login.master_user), 0,
	    .hint = "the master identity the back ends accept (their "
		    "auth.master_users)" },
	{ "master_password_file", CFG_STRING,
	    FC(backend_login.master_password_file), 0,
	    .hint = "a file whose first line is the master's password" },
	{ "timeout", CFG_DURATION, FC(backend_login.timeout), 0, "10s", 100,
	    600000,
	    .hint = "connect, greeting, TLS and login at the back end" },
	{ "helo", CFG_STRING, FC(backend_login.helo), 0, "ringgate" },
	{ "ca_file", CFG_STRING, FC(backend_login.ca_file), 0,
	    .hint = "PEM CA certificates for back ends with tls; default: "
		    "the system store" },
	{ "verify", CFG_BOOL, FC(backend_login.verify), 0, "true",
	    .hint = "true or false: check a TLS back end's certificate "
		    "against its sni" },
	{ "proxy_v2", CFG_BOOL, FC(backend_login.proxy_v2), 0, "false",
	    .hint = "true or false: start each back-end connection with a "
		    "PROXY v2 header carrying the client's address" },
	{ "xclient", CFG_BOOL, FC(backend_login.xclient), 0, "false",
	    .hint = "true or false: submission logs in with XCLIENT when "
		    "the back end offers it" },
	{ NULL },
};

static const struct cfg_field relay_fields[] = {
	{ "", CFG_LOC, F(struct proxy_relay_conf, loc) },
	{ "name", CFG_STRING, F(struct proxy_relay_conf, name), CFG_REQUIRED,
	    .hint = "a short label for logs and metrics, like \"imaps\"" },
	{ "listen", CFG_ADDR, F(struct proxy_relay_conf, listen),
	    CFG_REQUIRED },
	{ "tls", CFG_BOOL, F(struct proxy_relay_conf, tls), 0, "true" },
	{ "alpn", CFG_ENUM, F(struct proxy_relay_conf, alpn), 0, "none",
	    .choices = proxy_alpn_names },
	{ "upstream", CFG_ADDR, F(struct proxy_relay_conf, upstream),
	    CFG_REQUIRED },
	{ NULL },
};

static const struct cfg_field root_fields[] = {
	{ "daemon", CFG_GROUP, F(struct proxy_config, daemon),
	    .sub = daemon_conf_fields },
	{ "admin", CFG_GROUP, 0, .sub = admin_fields },
	{ "tls", CFG_GROUP, F(struct proxy_config, tls),
	    .sub = tls_conf_fields },
	{ "limits", CFG_GROUP, 0, .sub = limits_fields },
	{ "relay", CFG_LIST, F(struct proxy_config, relay), .sub = relay_fields,
	    .elem_size = sizeof(struct proxy_relay_conf),
	    .count_offset = F(struct proxy_config, nrelay) },
	{ "imap", CFG_LIST, FC(imap), .sub = listener_conf_fields,
	    .elem_size = sizeof(struct listener_conf),
	    .count_offset = FC(nimap) },
	{ "pop3", CFG_LIST, FC(pop3), .sub = listener_conf_fields,
	    .elem_size = sizeof(struct listener_conf),
	    .count_offset = FC(npop3) },
	{ "submission", CFG_LIST, FC(submission), .sub = listener_conf_fields,
	    .elem_size = sizeof(struct listener_conf),
	    .count_offset = FC(nsubmission) },
	/* .sub is auth_conf_fields, with passwd_file optional: a relay-only
	 * config has no auth group (see load_fields()) */
	{ "auth", CFG_GROUP, FC(auth), .sub = auth_conf_fields },
	{ "backends", CFG_LIST, FC(route.backends), .sub = route_backend_fields,
	    .elem_size = sizeof(struct route_backend_conf),
	    .count_offset = FC(route.nbackends) },
	{ "route", CFG_GROUP, FC(route.route), .sub = route_redis_fields },
	{ "health", CFG_GROUP, FC(route.health), .sub = route_health_fields },
	{ "backend_login", CFG_GROUP, 0, .sub = backend_login_fields },
	{ "throttle", CFG_GROUP, FC(throttle), .sub = throttle_conf_fields },
	{ NULL },
};

#define AUTH_FIELDS_MAX 32
#define ROOT_FIELDS_MAX 16

static int check_relays(const struct proxy_config *cf, struct cfg_error *err);
static int check_fronts(struct proxy_config *cf, struct cfg_error *err);
static int check_backends(const struct proxy_config *cf, struct cfg_error *err);
static int read_master_password(struct proxy_config *cf, struct cfg_error *err);

void
proxy_config_lists(const struct proxy_config *cf,
    struct gate_list lists[GATE_PROTOS])
{
	lists[GATE_IMAP] = (struct gate_list){ "imap", "imap", cf->imap,
		cf->nimap };
	lists[GATE_POP3] = (struct gate_list){ "pop3", "pop3", cf->pop3,
		cf->npop3 };
	lists[GATE_SMTP] = (struct gate_list){ "submission", "smtp",
		cf->submission, cf->nsubmission };
}

unsigned
proxy_front_count(const struct proxy_config *cf)
{
	return cf->nimap + cf->npop3 + cf->nsubmission;
}

/* The listeners: each list's own checks, apart from each other and from
 * the relay listeners; then what a front end needs besides. */
static int
check_fronts(struct proxy_config *cf, struct cfg_error *err)
{
	struct gate_list lists[GATE_PROTOS];

	proxy_config_lists(cf, lists);
	for (unsigned i = 0; i < GATE_PROTOS; i++) {
		if (listener_conf_check(lists[i].l, lists[i].n, lists[i].name,
			cf->tls.ncertificates > 0, err) == -1)
			return -1;
		for (unsigned j = 0; j < i; j++)
			if (listener_conf_check_apart(lists[j].l, lists[j].n,
				lists[i].l, lists[i].n, err) == -1)
				return -1;
		for (unsigned k = 0; k < lists[i].n; k++)
			for (unsigned r = 0; r < cf->nrelay; r++) {
				const struct listener_conf *l = &lists[i].l[k];

				if (strcmp(l->listen.text,
					cf->relay[r].listen.text) == 0 ||
				    strcmp(l->name, cf->relay[r].name) == 0) {
					cfg_error_at(err, &l->loc,
					    "%s '%s' has the name or address "
					    "of relay '%s'",
					    lists[i].name, l->name,
					    cf->relay[r].name);
					return -1;
				}
			}
	}
	if (proxy_front_count(cf) == 0)
		return 0;
	if (cf->auth.passwd_file == NULL) {
		cfg_error_at(err, NULL,
		    "imap, pop3 or submission listeners need an auth group "
		    "with passwd_file (the users ringgate logs in)");
		return -1;
	}
	if (auth_conf_check(&cf->auth, err) == -1)
		return -1;
	if (cf->route.nbackends == 0) {
		cfg_error_at(err, NULL,
		    "imap, pop3 or submission listeners need a backends list "
		    "(where users' mail lives)");
		return -1;
	}
	if (check_backends(cf, err) == -1)
		return -1;
	if (cf->backend_login.master_user == NULL ||
	    cf->backend_login.master_password_file == NULL) {
		cfg_error_at(err, &cf->backend_login.loc,
		    "backend_login needs master_user and master_password_file "
		    "(the identity ringgate logs in to back ends with)");
		return -1;
	}
	return read_master_password(cf, err);
}

/* The route module's own checks, then: every protocol with a listener
 * served by some back end, a name to verify TLS back ends against. */
static int
check_backends(const struct proxy_config *cf, struct cfg_error *err)
{
	const struct route_conf *rc = &cf->route;
	struct gate_list lists[GATE_PROTOS];

	proxy_config_lists(cf, lists);
	for (unsigned i = 0; i < rc->nbackends; i++) {
		const struct route_backend_conf *b = &rc->backends[i];

		if (b->tls != ROUTE_TLS_NONE && cf->backend_login.verify &&
		    b->sni == NULL) {
			cfg_error_at(err, &b->loc,
			    "backend '%s' has tls but no sni (the name its "
			    "certificate is checked against); add sni = "
			    "\"...\" or set backend_login.verify = false",
			    b->name);
			return -1;
		}
	}
	for (unsigned p = 0; p < GATE_PROTOS; p++) {
		bool served = false;

		for (unsigned i = 0; i < rc->nbackends; i++)
			served |= proxy_backend_addr(&rc->backends[i], p)->len >
			    0;
		if (lists[p].n > 0 && !served) {
			cfg_error_at(err, &lists[p].l[0].loc,
			    "%s '%s': no backend has a %s address",
			    lists[p].name, lists[p].l[0].name, lists[p].name);
			return -1;
		}
	}
	return 0;
}

const struct cfg_addr *
proxy_backend_addr(const struct route_backend_conf *b, enum gate_proto p)
{
	return p == GATE_IMAP ? &b->imap :
	    p == GATE_POP3    ? &b->pop3 :
				&b->submission;
}

/* The master's password: the first line of its file, without the line
 * end. Read at every load, so -t finds an unreadable file. */
static int
read_master_password(struct proxy_config *cf, struct cfg_error *err)
{
	const char *path = cf->backend_login.master_password_file;
	char line[1024];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		cfg_error_at(err, &cf->backend_login.loc,
		    "backend_login.master_password_file '%s': %s", path,
		    strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0) {
		cfg_error_at(err, &cf->backend_login.loc,
		    "backend_login.master_password_file '%s' is empty", path);
		return -1;
	}
	cf->backend_login.master_password = strdup(line);
	explicit_bzero(line, sizeof(line));
	if (cf->backend_login.master_password == NULL) {
		cfg_error_at(err, NULL, "out of memory");
		return -1;
	}
	return 0;
}

static int
check_relays(const struct proxy_config *cf, struct cfg_error *err)
{
	for (unsigned i = 0; i < cf->nrelay; i++) {
		const struct proxy_relay_conf *r = &cf->relay[i];

		if (strlen(r->name) >= 64 ||
		    strspn(r->name,
			"abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
			strlen(r->name) ||
		    r->name[0] == '\0') {
			cfg_error_at(err, &r->loc,
			    "relay name '%s' must be 1-63 letters, digits, "
			    "'_' or '-'",
			    r->name);
			return -1;
		}
		if (r->tls && cf->tls.ncertificates == 0) {
			cfg_error_at(err, &r->loc,
			    "relay '%s' has tls = true but tls.certificates "
			    "is empty; add a certificate or set tls = false",
			    r->name);
			return -1;
		}
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(cf->relay[j].name, r->name) == 0) {
				cfg_error_at(err, &r->loc,
				    "relay name '%s' is already used at "
				    "line %d",
				    r->name, cf->relay[j].loc.line);
				return -1;
			}
			if (strcmp(cf->relay[j].listen.text, r->listen.text) ==
			    0) {
				cfg_error_at(err, &r->loc,
				    "relay '%s' listens on %s like relay "
				    "'%s'",
				    r->name, r->listen.text, cf->relay[j].name);
				return -1;
			}
		}
	}
	return 0;
}

/* root_fields with an auth group whose passwd_file is optional: a
 * relay-only config has none, and check_fronts() asks for it when a
 * front end is configured. Built on the caller's stack. */
static void
load_fields(struct cfg_field root[ROOT_FIELDS_MAX],
    struct cfg_field auth[AUTH_FIELDS_MAX])
{
	unsigned i;

	for (i = 0; auth_conf_fields[i].name != NULL && i + 1 < AUTH_FIELDS_MAX;
	     i++) {
		auth[i] = auth_conf_fields[i];
		if (strcmp(auth[i].name, "passwd_file") == 0)
			auth[i].flags &= ~(unsigned)CFG_REQUIRED;
	}
	auth[i] = (struct cfg_field){ NULL };
	for (i = 0; root_fields[i].name != NULL && i + 1 < ROOT_FIELDS_MAX;
	     i++) {
		root[i] = root_fields[i];
		if (strcmp(root[i].name, "auth") == 0)
			root[i].sub = auth;
	}
	root[i] = (struct cfg_field){ NULL };
}

int
proxy_config_load(const char *path, struct proxy_config *cf,
    struct cfg_error *err)
{
	struct cfg_field root[ROOT_FIELDS_MAX], auth[AUTH_FIELDS_MAX];

	memset(cf, 0, sizeof(*cf)); /* master_password is no field */
	load_fields(root, auth);
	if (cfg_load(path, root, cf, err) == -1)
		return -1;
	if (check_relays(cf, err) == -1 ||
	    route_conf_check(&cf->route, err) == -1 ||
	    throttle_conf_check(&cf->throttle, err) == -1 ||
	    check_fronts(cf, err) == -1) {
		proxy_config_free(cf);
		return -1;
	}
	return 0;
}

void
proxy_config_free(struct proxy_config *cf)
{
	if (cf->backend_login.master_password != NULL) {
		explicit_bzero(cf->backend_login.master_password,
		    strlen(cf->backend_login.master_password));
		free(cf->backend_login.master_password);
		cf->backend_login.master_password = NULL;
	}
	cfg_free(root_fields, cf);
}

int
proxy_tls_build(const struct proxy_config *cf, const struct proxy_relay_conf *r,
    struct tls_server **ts_r, const char **error_r)
{
	*ts_r = NULL;
	if (!r->tls)
		return 0;
	return tls_conf_build(&cf->tls,
	    r->alpn ? proxy_alpn_names[r->alpn] : NULL, ts_r, error_r);
}
