/*
 * config.c - ringgate's configuration schema and its cross-field checks.
 *
 * The tables below are the single description of the file format: types,
 * defaults and bounds live here and nowhere else. docs/examples/
 * ringgate.conf shows every key.
 */
#include <stddef.h>
#include <string.h>

#include "core/log.h"
#include "core/tls.h"
#include "proxy/proxy.h"

const char *const proxy_alpn_names[] = { "none", "imap", "pop3", "smtp", NULL };
#define F(type, field) offsetof(type, field)

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
	/* routing (proxy/route.h) */
	{ "backends", CFG_LIST, F(struct proxy_config, route.backends),
	    .sub = route_backend_fields,
	    .elem_size = sizeof(struct route_backend_conf),
	    .count_offset = F(struct proxy_config, route.nbackends) },
	{ "route", CFG_GROUP, F(struct proxy_config, route.route),
	    .sub = route_redis_fields },
	{ "health", CFG_GROUP, F(struct proxy_config, route.health),
	    .sub = route_health_fields },
	{ NULL },
};

static int check_relays(const struct proxy_config *cf, struct cfg_error *err);

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

int
proxy_config_load(const char *path, struct proxy_config *cf,
    struct cfg_error *err)
{
	if (cfg_load(path, root_fields, cf, err) == -1)
		return -1;
	if (check_relays(cf, err) == -1 ||
	    route_conf_check(&cf->route, err) == -1) {
		cfg_free(root_fields, cf);
		return -1;
	}
	return 0;
}

void
proxy_config_free(struct proxy_config *cf)
{
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
