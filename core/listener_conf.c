/*
 * listener_conf.c - a listener's config entry (core/listener_conf.h):
 * its fields, the checks that stop a bad entry at file:line, and what
 * of it the loop enforces at accept.
 *
 * Runs at start-up and on reload (fields, checks) and on each worker's
 * thread when its listeners are made (apply).
 */
#include <stddef.h>
#include <string.h>

#include "core/listener_conf.h"
#include "core/loop.h"
#include "core/net.h"

#define F(field) offsetof(struct listener_conf, field)

static int check_one(const struct listener_conf *r, const char *what,
    bool have_certs, struct cfg_error *err);
static bool same(const struct listener_conf *a, const struct listener_conf *b);

const struct cfg_field listener_conf_fields[] = {
	{ "", CFG_LOC, F(loc) },
	{ "name", CFG_STRING, F(name), CFG_REQUIRED,
	    .hint = "a short label, like \"imap\"" },
	{ "listen", CFG_ADDR, F(listen), CFG_REQUIRED },
	{ "tls", CFG_BOOL, F(tls), 0, "false" },
	{ "starttls", CFG_BOOL, F(starttls), 0, "true" },
	{ "trusted", CFG_BOOL, F(trusted), 0, "false",
	    .hint = "true or false: cleartext logins without TLS, only for "
		    "clients in trusted_nets (ringgate in front)" },
	{ "trusted_nets", CFG_NETLIST, F(trusted_nets), 0, "127.0.0.0/8, ::1",
	    .count_offset = F(ntrusted_nets) },
	{ "proxy_protocol", CFG_BOOL, F(proxy_protocol), 0, "false",
	    .hint = "true or false: connections start with a PROXY v1/v2 "
		    "header from a load balancer in proxy_nets" },
	{ "proxy_nets", CFG_NETLIST, F(proxy_nets), 0,
	    .count_offset = F(nproxy_nets) },
	{ "max_sessions", CFG_INT, F(max_sessions), 0, "0", 0, 10000000,
	    .hint = "sessions at once on this listener, over it \"try "
		    "later\"; 0 = only the daemon's limits" },
	{ NULL },
};

static int
check_one(const struct listener_conf *r, const char *what, bool have_certs,
    struct cfg_error *err)
{
	size_t n = strlen(r->name);

	if (n == 0 || n >= 64 ||
	    strspn(r->name,
		"abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n) {
		cfg_error_at(err, &r->loc,
		    "%s name '%s' must be 1-63 letters, "
		    "digits, '_' or '-'",
		    what, r->name);
		return -1;
	}
	if (r->tls && !have_certs) {
		cfg_error_at(err, &r->loc,
		    "%s '%s' has tls = true but "
		    "tls.certificates is empty",
		    what, r->name);
		return -1;
	}
	if (r->proxy_protocol && r->nproxy_nets == 0) {
		cfg_error_at(err, &r->loc,
		    "%s '%s' has proxy_protocol = true "
		    "but no proxy_nets: name the load balancers' networks, "
		    "like proxy_nets = [ \"10.0.0.0/24\" ]",
		    what, r->name);
		return -1;
	}
	if (r->trusted && r->ntrusted_nets == 0) {
		cfg_error_at(err, &r->loc,
		    "%s '%s' has trusted = true and an "
		    "empty trusted_nets: nobody could connect",
		    what, r->name);
		return -1;
	}
	return 0;
}

static bool
same(const struct listener_conf *a, const struct listener_conf *b)
{
	return strcmp(a->name, b->name) == 0 ||
	    strcmp(a->listen.text, b->listen.text) == 0;
}

int
listener_conf_check(const struct listener_conf *l, unsigned n, const char *what,
    bool have_certs, struct cfg_error *err)
{
	for (unsigned i = 0; i < n; i++) {
		if (check_one(&l[i], what, have_certs, err) == -1)
			return -1;
		for (unsigned j = 0; j < i; j++)
			if (same(&l[j], &l[i])) {
				cfg_error_at(err, &l[i].loc,
				    "%s '%s' repeats "
				    "the name or address of line %d",
				    what, l[i].name, l[j].loc.line);
				return -1;
			}
	}
	return 0;
}

int
listener_conf_check_apart(const struct listener_conf *a, unsigned na,
    const struct listener_conf *b, unsigned nb, struct cfg_error *err)
{
	for (unsigned i = 0; i < nb; i++)
		for (unsigned j = 0; j < na; j++)
			if (same(&a[j], &b[i])) {
				cfg_error_at(err, &b[i].loc,
				    "listener '%s' repeats the name or "
				    "address of line %d",
				    b[i].name, a[j].loc.line);
				return -1;
			}
	return 0;
}

void
listener_conf_apply(const struct listener_conf *c, struct listener *li)
{
	if (c->proxy_protocol)
		listener_set_proxy(li, c->proxy_nets, c->nproxy_nets);
	if (c->trusted)
		listener_set_allow(li, c->trusted_nets, c->ntrusted_nets);
}
