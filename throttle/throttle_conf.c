/*
 * throttle_conf.c - the throttle group of a daemon's config file: its
 * schema (types, defaults, bounds: the single place they live) and the
 * checks across fields. docs/throttling.md explains every key.
 *
 *   throttle {
 *     redis = "127.0.0.1:6379"; timeout = "100ms"; fail_closed = false;
 *     # or: sentinels = [ "10.0.0.5:26379", ... ]; master_name = "mymaster";
 *     allow_nets = [ "10.0.0.0/8" ];
 *     imap { conns_ip = 20; rate_ip = 10; block_fails = 10; ... };
 *     pop3 { ... }; submission { ... };
 *   };
 */
#include <stddef.h>
#include <string.h>

#include "core/redis_loop.h"
#include "throttle/throttle_private.h"

#define F(field) offsetof(struct throttle_conf, field)
#define R(field) offsetof(struct throttle_rules, field)

const char *const throttle_service_names[] = { "imap", "pop3", "submission",
	NULL };

static const struct cfg_field rules_fields[] = {
	{ "conns_ip", CFG_INT, R(conns_ip), 0, "20", 0, 1000000,
	    .hint = "concurrent connections from one address; 0 = no limit" },
	{ "conns_net", CFG_INT, R(conns_net), 0, "100", 0, 10000000,
	    .hint = "concurrent connections from one network (/24, /64, "
		    "/48); 0 = no limit" },
	{ "rate_ip", CFG_INT, R(rate_ip), 0, "10", 0, 1000000,
	    .hint = "new connections from one address per rate_interval; "
		    "0 = no limit" },
	{ "rate_net", CFG_INT, R(rate_net), 0, "50", 0, 10000000 },
	{ "rate_interval", CFG_DURATION, R(rate_interval), 0, "1s", 10,
	    3600000 },
	{ "delay", CFG_DURATION, R(delay), 0, "1s", 0, 600000,
	    .hint = "a duration like \"1s\": the tarpit after a source's "
		    "first failure, doubling per failure; 0 = none" },
	{ "delay_max", CFG_DURATION, R(delay_max), 0, "15s", 0, 600000 },
	{ "block_fails", CFG_INT, R(block_fails), 0, "10", 0, 1000000,
	    .hint = "failed logins from one address within fail_window "
		    "that block it for block_time; 0 = never" },
	{ "block_fails_net", CFG_INT, R(block_fails_net), 0, "100", 0,
	    10000000 },
	{ "fail_window", CFG_DURATION, R(fail_window), 0, "10m", 1000,
	    86400000 },
	{ "block_time", CFG_DURATION, R(block_time), 0, "15m", 100, 86400000 },
	{ "bad_commands", CFG_INT, R(bad_commands), 0, "5", 1, 1000,
	    .hint = "bad commands before login per session; reaching it "
		    "closes the session and counts one failure" },
	{ NULL },
};

const struct cfg_field throttle_conf_fields[] = {
	{ "", CFG_LOC, F(loc) },
	{ "enabled", CFG_BOOL, F(enabled), 0, "true" },
	{ "redis", CFG_STRING, F(redis), 0,
	    .hint = "\"127.0.0.1:6379\" or a unix socket path; absent "
		    "(and no sentinels): this instance's counters only" },
	{ "sentinels", CFG_STRLIST, F(sentinels), .count_offset = F(nsentinels),
	    .hint = "[\"127.0.0.1:26379\", ...]: Redis Sentinels asked for "
		    "the master of master_name (instead of redis)" },
	{ "master_name", CFG_STRING, F(master_name),
	    .hint = "the name the sentinels monitor the master by" },
	{ "timeout", CFG_DURATION, F(timeout), 0, "100ms", 1, 60000,
	    .hint = "a duration like \"100ms\": the longest a decision "
		    "waits for Redis" },
	{ "retry", CFG_DURATION, F(retry), 0, "1s", 10, 600000 },
	{ "fail_closed", CFG_BOOL, F(fail_closed), 0, "false",
	    .hint = "true or false: with Redis down, refuse connections and "
		    "logins instead of deciding on local counters" },
	{ "key_prefix", CFG_STRING, F(key_prefix), 0, "rg:thr:" },
	{ "allow_nets", CFG_NETLIST, F(allow_nets), 0,
	    .count_offset = F(nallow_nets) },
	{ "net4_prefix", CFG_INT, F(net4_prefix), 0, "24", 8, 32 },
	{ "net6_prefix", CFG_INT, F(net6_prefix), 0, "64", 16, 128 },
	{ "net6_wide_prefix", CFG_INT, F(net6_wide_prefix), 0, "48", 16, 128 },
	{ "max_tracked", CFG_INT, F(max_tracked), 0, "100000", 100, 100000000,
	    .hint = "local counters kept at most (memory: about 100 bytes "
		    "each)" },
	{ "conn_ttl", CFG_DURATION, F(conn_ttl), 0, "1h", 1000, 604800000 },
	{ "before_smtp", CFG_DURATION, F(before_smtp), 0, "0", 0, 86400000,
	    .hint = "a duration like \"10m\": after an IMAP or POP3 login "
		    "its address may submit as that user without AUTH for "
		    "this long (legacy POP-before-SMTP); 0 = off" },
	{ "imap", CFG_GROUP, F(svc[THROTTLE_IMAP]), .sub = rules_fields },
	{ "pop3", CFG_GROUP, F(svc[THROTTLE_POP3]), .sub = rules_fields },
	{ "submission", CFG_GROUP, F(svc[THROTTLE_SUBMISSION]),
	    .sub = rules_fields },
	{ NULL },
};

/* The group's location is the root's (line 0) when it is absent. */
bool
throttle_conf_enabled(const struct throttle_conf *cf)
{
	return cf->loc.line > 0 && cf->enabled;
}

bool
throttle_conf_shared(const struct throttle_conf *cf)
{
	return cf->redis != NULL || cf->nsentinels > 0;
}

int
throttle_conf_check(const struct throttle_conf *cf, struct cfg_error *err)
{
	struct cfg_addr a;

	if (!throttle_conf_enabled(cf))
		return 0;
	if (redis_loop_sentinel_check("throttle", cf->redis, cf->sentinels,
		cf->nsentinels, cf->master_name, &cf->loc, err) == -1)
		return -1;
	if (cf->redis != NULL && cf->redis[0] != '/' &&
	    cfg_parse_addr(cf->redis, &a) == -1) {
		cfg_error_at(err, &cf->loc,
		    "throttle.redis '%s' must be \"host:port\" with a numeric "
		    "host, \"[v6]:port\" or a unix socket path",
		    cf->redis);
		return -1;
	}
	if (cf->key_prefix == NULL || strlen(cf->key_prefix) > 64) {
		cfg_error_at(err, &cf->loc,
		    "throttle.key_prefix must be at most 64 bytes");
		return -1;
	}
	if (cf->net6_wide_prefix > cf->net6_prefix) {
		cfg_error_at(err, &cf->loc,
		    "throttle.net6_wide_prefix (%lld) must not be longer "
		    "than net6_prefix (%lld)",
		    (long long)cf->net6_wide_prefix,
		    (long long)cf->net6_prefix);
		return -1;
	}
	for (unsigned s = 0; s < THROTTLE_SERVICES; s++)
		if (cf->svc[s].delay_max < cf->svc[s].delay) {
			cfg_error_at(err, &cf->loc,
			    "throttle.%s.delay_max is shorter than its delay",
			    throttle_service_names[s]);
			return -1;
		}
	return 0;
}
