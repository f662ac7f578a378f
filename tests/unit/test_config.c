/*
 * test_config.c - cfg_load() against real files, its messages, and the
 * duration, size and address parsers.
 *
 * Each case writes a config to a mkstemp() file, loads it with a field table
 * shaped like ringgate's (docs/examples/ringgate.conf) and checks either
 * every stored value or that the error names FILE:LINE, the key path and the
 * reason. Built with ASan, LeakSanitizer checks that both a successful load
 * followed by cfg_free() and every failed load leave nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

/* ------------------------------------------------------------ the schema */

struct t_cert {
	struct cfg_loc loc;
	char *cert;
	char *key;
};

struct t_relay {
	struct cfg_loc loc;
	char *name;
	struct cfg_addr listen;
	bool tls;
	int alpn;
	struct cfg_addr upstream;
	uint64_t idle;
};

struct t_conf {
	struct cfg_loc loc;
	struct {
		int64_t workers;
		char *pid_file;
		int log_level;
		char *log_file;
		uint64_t drain_timeout;
		bool verbose;
	} daemon;
	struct {
		struct cfg_addr listen;
	} admin;
	struct {
		struct t_cert *certificates;
		unsigned ncertificates;
		int min_version;
		char **groups;
		unsigned ngroups;
		char **protocols;
		unsigned nprotocols;
		char *ciphers;
	} tls;
	struct {
		uint64_t handshake_timeout, connect_timeout, idle_timeout;
		uint64_t output_buffer, max_message;
	} limits;
	struct t_relay *relay;
	unsigned nrelay;
	int64_t answer;
};

static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const versions[] = { "TLSv1.2", "TLSv1.3", NULL };
static const char *const alpns[] = { "none", "imap", "pop3", "smtp", NULL };

#define C(field) offsetof(struct t_conf, field)

static const struct cfg_field daemon_fields[] = {
	{ "workers", CFG_INT, C(daemon.workers), 0, "0", 0, 256,
	    .hint = "a number of threads, 0 for one per core" },
	{ "pid_file", CFG_STRING, C(daemon.pid_file), 0, "/run/t.pid" },
	{ "log_level", CFG_ENUM, C(daemon.log_level), 0, "info",
	    .choices = levels },
	{ "log_file", CFG_STRING, C(daemon.log_file) },
	{ "drain_timeout", CFG_DURATION, C(daemon.drain_timeout), 0, "30s", 0,
	    3600000 },
	{ "verbose", CFG_BOOL, C(daemon.verbose), 0, "false" },
	{ NULL },
};

static const struct cfg_field admin_fields[] = {
	{ "listen", CFG_ADDR, C(admin.listen), 0, "127.0.0.1:19100" },
	{ NULL },
};

static const struct cfg_field cert_fields[] = {
	{ "", CFG_LOC, offsetof(struct t_cert, loc) },
	{ "cert", CFG_STRING, offsetof(struct t_cert, cert), CFG_REQUIRED,
	    .hint = "the path of a PEM certificate chain" },
	{ "key", CFG_STRING, offsetof(struct t_cert, key), CFG_REQUIRED },
	{ NULL },
};

static const struct cfg_field tls_fields[] = {
	{ "certificates", CFG_LIST, C(tls.certificates), .sub = cert_fields,
	    .elem_size = sizeof(struct t_cert),
	    .count_offset = C(tls.ncertificates) },
	{ "min_version", CFG_ENUM, C(tls.min_version), 0, "TLSv1.2",
	    .choices = versions },
	{ "groups", CFG_STRLIST, C(tls.groups), 0, "X25519, P-256",
	    .count_offset = C(tls.ngroups) },
	{ "protocols", CFG_STRLIST, C(tls.protocols),
	    .count_offset = C(tls.nprotocols) },
	{ "ciphers", CFG_STRING, C(tls.ciphers) },
	{ NULL },
};

static const struct cfg_field limits_fields[] = {
	{ "handshake_timeout", CFG_DURATION, C(limits.handshake_timeout), 0,
	    "10s", 100, 600000 },
	{ "connect_timeout", CFG_DURATION, C(limits.connect_timeout), 0, "5",
	    100, 600000 },
	{ "idle_timeout", CFG_DURATION, C(limits.idle_timeout), 0, "30m", 1000,
	    86400000 },
	{ "output_buffer", CFG_SIZE, C(limits.output_buffer), 0, "256k", 16384,
	    64 << 20 },
	{ "max_message", CFG_SIZE, C(limits.max_message), 0, "50M", 1024 },
	{ NULL },
};

#define R(field) offsetof(struct t_relay, field)

static const struct cfg_field relay_fields[] = {
	{ "", CFG_LOC, R(loc) },
	{ "name", CFG_STRING, R(name), CFG_REQUIRED },
	{ "listen", CFG_ADDR, R(listen), CFG_REQUIRED },
	{ "tls", CFG_BOOL, R(tls), 0, "true" },
	{ "alpn", CFG_ENUM, R(alpn), 0, "none", .choices = alpns },
	{ "upstream", CFG_ADDR, R(upstream), CFG_REQUIRED },
	{ "idle", CFG_DURATION, R(idle) },
	{ NULL },
};

static const struct cfg_field root_fields[] = {
	{ "", CFG_LOC, C(loc) },
	{ "daemon", CFG_GROUP, 0, .sub = daemon_fields },
	{ "admin", CFG_GROUP, 0, .sub = admin_fields },
	{ "tls", CFG_GROUP, 0, .sub = tls_fields },
	{ "limits", CFG_GROUP, 0, .sub = limits_fields },
	{ "relay", CFG_LIST, C(relay), .sub = relay_fields,
	    .elem_size = sizeof(struct t_relay), .count_offset = C(nrelay) },
	{ "answer", CFG_INT, C(answer), 0, "42" },
	{ NULL },
};

/* ------------------------------------------------------------- plumbing */

static char conf_path[64];
static char inc_path[64];

/* Writes text to a fresh temporary file whose name lands in conf_path. */
static void
write_conf(const char *text)
{
	size_t len = strlen(text);
	int fd;

	if (conf_path[0] != '\0')
		unlink(conf_path);
	snprintf(conf_path, sizeof(conf_path), "/tmp/test_config.XXXXXX");
	fd = mkstemp(conf_path);
	assert_int_not_equal(fd, -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static int
teardown(void **state)
{
	if (conf_path[0] != '\0')
		unlink(conf_path);
	if (inc_path[0] != '\0')
		unlink(inc_path);
	conf_path[0] = inc_path[0] = '\0';
	return 0;
}

/* Every pointer cfg_load() may set, after a failure or a cfg_free(). */
static void
assert_empty(const struct t_conf *cf)
{
	assert_null(cf->loc.file);
	assert_null(cf->daemon.pid_file);
	assert_null(cf->daemon.log_file);
	assert_null(cf->tls.certificates);
	assert_int_equal(cf->tls.ncertificates, 0);
	assert_null(cf->tls.groups);
	assert_int_equal(cf->tls.ngroups, 0);
	assert_null(cf->tls.protocols);
	assert_null(cf->tls.ciphers);
	assert_null(cf->relay);
	assert_int_equal(cf->nrelay, 0);
}

static int
load_text(const char *text, struct t_conf *cf, struct cfg_error *err)
{
	write_conf(text);
	/* Garbage first: cfg_load() must not trust what it is given. */
	memset(cf, 0xa5, sizeof(*cf));
	return cfg_load(conf_path, root_fields, cf, err);
}

static void
assert_contains(const char *msg, const char *needle)
{
	if (strstr(msg, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
}

/*
 * Loads text, expects failure at `line` of the file (0: the file as a
 * whole) and each NULL-terminated needle in the message.
 */
static void
expect_error(const char *text, int line, ...)
{
	struct cfg_error err;
	struct t_conf cf;
	char where[128];
	const char *needle;
	va_list ap;

	if (load_text(text, &cf, &err) != -1)
		fail_msg("loaded but expected an error at line %d", line);
	assert_empty(&cf);
	if (line > 0)
		snprintf(where, sizeof(where), "%s:%d: ", conf_path, line);
	else
		snprintf(where, sizeof(where), "%s: ", conf_path);
	if (strncmp(err.msg, where, strlen(where)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", err.msg,
		    where);
	va_start(ap, line);
	while ((needle = va_arg(ap, const char *)) != NULL)
		assert_contains(err.msg, needle);
	va_end(ap);
}

static void
assert_addr4(const struct cfg_addr *a, const char *ip, int port,
    const char *text)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
	char buf[INET_ADDRSTRLEN];

	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(a->len, sizeof(*in));
	assert_non_null(inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)));
	assert_string_equal(buf, ip);
	assert_int_equal(ntohs(in->sin_port), port);
	assert_string_equal(a->text, text);
}

static void
assert_addr6(const struct cfg_addr *a, const char *ip, int port,
    const char *text)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(a->len, sizeof(*in6));
	assert_non_null(inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)));
	assert_string_equal(buf, ip);
	assert_int_equal(ntohs(in6->sin6_port), port);
	assert_string_equal(a->text, text);
}

/* ------------------------------------------------------ valid configs */

static const char full_conf[] =
    "# like docs/examples/ringgate.conf\n"			     /* 1 */
    "daemon = {\n"						     /* 2 */
    "  workers = 4;\n"						     /* 3 */
    "  pid_file = \"/run/ringgate/ringgate.pid\";\n"		     /* 4 */
    "  log_level = \"DEBUG\";\n"				     /* 5 */
    "  log_file = \"\";\n"					     /* 6 */
    "  drain_timeout = \"1m\";\n"				     /* 7 */
    "  verbose = true;\n"					     /* 8 */
    "};\n"							     /* 9 */
    "admin = { listen = \"*:19100\"; };\n"			     /* 10 */
    "tls = {\n"							     /* 11 */
    "  certificates = (\n"					     /* 12 */
    "    { cert = \"/e/ecdsa.crt\"; key = \"/e/ecdsa.key\"; },\n"    /* 13 */
    "    { cert = \"/e/rsa.crt\";   key = \"/e/rsa.key\"; }\n"	     /* 14 */
    "  );\n"							     /* 15 */
    "  min_version = \"TLSv1.3\";\n"				     /* 16 */
    "  groups = [ \"X448\" ];\n"				     /* 17 */
    "  protocols = ( \"imap\", \"pop3\", \"smtp\" );\n"		     /* 18 */
    "};\n"							     /* 19 */
    "limits = {\n"						     /* 20 */
    "  handshake_timeout = \"500ms\";\n"			     /* 21 */
    "  connect_timeout = 7;\n"					     /* 22 */
    "  idle_timeout = \"1h30m\";\n"				     /* 23 */
    "  output_buffer = \"64KiB\";\n"				     /* 24 */
    "  max_message = 5000000000L;\n"				     /* 25 */
    "};\n"							     /* 26 */
    "relay = (\n"						     /* 27 */
    "  { name = \"imaps\"; listen = \"127.0.0.1:10993\";\n"	     /* 28 */
    "    tls = true; alpn = \"imap\";\n"			     /* 29 */
    "    upstream = \"127.0.0.1:20143\"; },\n"			     /* 30 */
    "  { name = \"pop3s\"; listen = \"[::1]:10995\"; tls = false;\n" /* 31 */
    "    upstream = \"[2001:db8::5]:110\"; idle = \"2h\"; }\n"	     /* 32 */
    ");\n"							     /* 33 */
    "answer = -7;\n";						     /* 34 */

static void
test_full_config(void **state)
{
	struct cfg_error err;
	struct t_conf cf;

	if (load_text(full_conf, &cf, &err) == -1)
		fail_msg("%s", err.msg);
	assert_string_equal(cf.loc.file, conf_path);
	assert_int_equal(cf.loc.line, 0);

	assert_int_equal(cf.daemon.workers, 4);
	assert_string_equal(cf.daemon.pid_file, "/run/ringgate/ringgate.pid");
	assert_int_equal(cf.daemon.log_level, 3);
	assert_string_equal(cf.daemon.log_file, "");
	assert_int_equal(cf.daemon.drain_timeout, 60000);
	assert_true(cf.daemon.verbose);
	assert_addr4(&cf.admin.listen, "0.0.0.0", 19100, "*:19100");

	assert_int_equal(cf.tls.ncertificates, 2);
	assert_string_equal(cf.tls.certificates[0].cert, "/e/ecdsa.crt");
	assert_string_equal(cf.tls.certificates[0].key, "/e/ecdsa.key");
	assert_string_equal(cf.tls.certificates[1].cert, "/e/rsa.crt");
	assert_string_equal(cf.tls.certificates[1].key, "/e/rsa.key");
	assert_string_equal(cf.tls.certificates[1].loc.file, conf_path);
	assert_int_equal(cf.tls.certificates[0].loc.line, 13);
	assert_int_equal(cf.tls.certificates[1].loc.line, 14);
	assert_int_equal(cf.tls.min_version, 1);
	assert_int_equal(cf.tls.ngroups, 1);
	assert_string_equal(cf.tls.groups[0], "X448");
	assert_int_equal(cf.tls.nprotocols, 3);
	assert_string_equal(cf.tls.protocols[0], "imap");
	assert_string_equal(cf.tls.protocols[2], "smtp");
	assert_null(cf.tls.ciphers);

	assert_int_equal(cf.limits.handshake_timeout, 500);
	assert_int_equal(cf.limits.connect_timeout, 7000);
	assert_int_equal(cf.limits.idle_timeout, 5400000);
	assert_int_equal(cf.limits.output_buffer, 65536);
	assert_int_equal(cf.limits.max_message, 5000000000ULL);

	assert_int_equal(cf.nrelay, 2);
	assert_string_equal(cf.relay[0].name, "imaps");
	assert_string_equal(cf.relay[0].loc.file, conf_path);
	assert_int_equal(cf.relay[0].loc.line, 28);
	assert_addr4(&cf.relay[0].listen, "127.0.0.1", 10993,
	    "127.0.0.1:10993");
	assert_true(cf.relay[0].tls);
	assert_int_equal(cf.relay[0].alpn, 1);
	assert_addr4(&cf.relay[0].upstream, "127.0.0.1", 20143,
	    "127.0.0.1:20143");
	assert_int_equal(cf.relay[0].idle, 0);
	assert_string_equal(cf.relay[1].name, "pop3s");
	assert_int_equal(cf.relay[1].loc.line, 31);
	assert_addr6(&cf.relay[1].listen, "::1", 10995, "[::1]:10995");
	assert_false(cf.relay[1].tls);
	assert_int_equal(cf.relay[1].alpn, 0);
	assert_addr6(&cf.relay[1].upstream, "2001:db8::5", 110,
	    "[2001:db8::5]:110");
	assert_int_equal(cf.relay[1].idle, 7200000);
	assert_int_equal(cf.answer, -7);

	cfg_free(root_fields, &cf);
	assert_empty(&cf);
	/* Twice is harmless. */
	cfg_free(root_fields, &cf);
}

/* An empty file: every group absent, every field at its default. */
static void
test_defaults(void **state)
{
	struct cfg_error err;
	struct t_conf cf;

	if (load_text("# nothing\n", &cf, &err) == -1)
		fail_msg("%s", err.msg);
	assert_int_equal(cf.daemon.workers, 0);
	assert_string_equal(cf.daemon.pid_file, "/run/t.pid");
	assert_int_equal(cf.daemon.log_level, 2);
	assert_null(cf.daemon.log_file);
	assert_int_equal(cf.daemon.drain_timeout, 30000);
	assert_false(cf.daemon.verbose);
	assert_addr4(&cf.admin.listen, "127.0.0.1", 19100, "127.0.0.1:19100");
	assert_null(cf.tls.certificates);
	assert_int_equal(cf.tls.ncertificates, 0);
	assert_int_equal(cf.tls.min_version, 0);
	assert_int_equal(cf.tls.ngroups, 2);
	assert_string_equal(cf.tls.groups[0], "X25519");
	assert_string_equal(cf.tls.groups[1], "P-256");
	assert_null(cf.tls.protocols);
	assert_int_equal(cf.tls.nprotocols, 0);
	assert_int_equal(cf.limits.handshake_timeout, 10000);
	assert_int_equal(cf.limits.connect_timeout, 5000);
	assert_int_equal(cf.limits.idle_timeout, 1800000);
	assert_int_equal(cf.limits.output_buffer, 262144);
	assert_int_equal(cf.limits.max_message, 50 << 20);
	assert_null(cf.relay);
	assert_int_equal(cf.nrelay, 0);
	assert_int_equal(cf.answer, 42);
	cfg_free(root_fields, &cf);
	assert_empty(&cf);
}

/* A present group takes defaults for the keys it leaves out; a lone
 * string is a list of one; empty lists are empty. */
static void
test_partial_groups_and_lists(void **state)
{
	struct cfg_error err;
	struct t_conf cf;

	if (load_text("daemon = { workers = 2; };\n"
		      "tls = { certificates = (); protocols = \"imap\";\n"
		      "  groups = []; };\n"
		      "relay = [];\n",
		&cf, &err) == -1)
		fail_msg("%s", err.msg);
	assert_int_equal(cf.daemon.workers, 2);
	assert_string_equal(cf.daemon.pid_file, "/run/t.pid");
	assert_int_equal(cf.tls.ncertificates, 0);
	assert_null(cf.tls.certificates);
	assert_int_equal(cf.tls.nprotocols, 1);
	assert_string_equal(cf.tls.protocols[0], "imap");
	assert_int_equal(cf.tls.ngroups, 0);
	assert_null(cf.tls.groups);
	assert_int_equal(cf.nrelay, 0);
	cfg_free(root_fields, &cf);
	assert_empty(&cf);
}

/* @include is found beside the including file; its errors name it. */
static void
test_include(void **state)
{
	static const char inc[] = "limits = {\n  idle_timeout = \"soon\";\n"
				  "};\n";
	char text[256], where[96];
	struct cfg_error err;
	struct t_conf cf;
	const char *base;
	int fd;

	snprintf(inc_path, sizeof(inc_path), "/tmp/test_config_inc.XXXXXX");
	fd = mkstemp(inc_path);
	assert_int_not_equal(fd, -1);
	assert_int_equal(write(fd, inc, strlen(inc)), (ssize_t)strlen(inc));
	close(fd);
	/* Named relative to the including file, which is in /tmp too. */
	base = strrchr(inc_path, '/') + 1;
	snprintf(text, sizeof(text), "answer = 1;\n@include \"%s\"\n", base);
	assert_int_equal(load_text(text, &cf, &err), -1);
	assert_empty(&cf);
	snprintf(where, sizeof(where), "%s:2: ", base);
	assert_contains(err.msg, where);
	assert_contains(err.msg, "'limits.idle_timeout'");
}

/* --------------------------------------------------------------- errors */

static void
test_unknown_key(void **state)
{
	expect_error("relay = (\n"
		     "  { name = \"a\"; listen = \"*:1\";\n"
		     "    upstream = \"*:2\"; },\n"
		     "  { name = \"b\";\n"
		     "    lisen = \"*:3\"; upstream = \"*:4\"; }\n"
		     ");\n",
	    5, "unknown key 'relay[1].lisen'", "did you mean 'listen'?", NULL);
	expect_error("tls = { certificates = (\n"
		     "  { cert = \"a\"; key = \"b\"; },\n"
		     "  { cert = \"a\"; kye = \"b\"; }\n"
		     "); };\n",
	    3, "unknown key 'tls.certificates[1].kye'", "did you mean 'key'?",
	    NULL);
	expect_error("daemon = {\n  drain_timout = \"5s\";\n};\n", 2,
	    "unknown key 'daemon.drain_timout'",
	    "did you mean 'drain_timeout'?", NULL);
	expect_error("answer = 1;\n\nlimitz = { a = 1; };\n", 3,
	    "unknown key 'limitz'", "did you mean 'limits'?", NULL);
	expect_error("admin = {\n  bind = \"*:1\";\n};\n", 2,
	    "unknown key 'admin.bind'", "known keys here are: listen", NULL);
	/* Case is only one edit away. */
	expect_error("admin = { Listen = \"*:1\"; };\n", 1,
	    "did you mean 'listen'?", NULL);
}

static void
test_wrong_type(void **state)
{
	expect_error("limits = {\n  idle_timeout = true;\n};\n", 2,
	    "'limits.idle_timeout' = true: must be a duration like \"30s\", "
	    "\"5m\" or a number of seconds",
	    NULL);
	expect_error("daemon = { workers = \"4\"; };\n", 1,
	    "'daemon.workers' = \"4\": must be a number of threads, 0 for one "
	    "per core",
	    NULL);
	expect_error("daemon = { verbose = 1; };\n", 1,
	    "'daemon.verbose' = 1: must be true or false", NULL);
	expect_error("daemon = { pid_file = 5; };\n", 1,
	    "'daemon.pid_file' = 5: must be a string", NULL);
	expect_error("limits = { output_buffer = 1.5; };\n", 1,
	    "'limits.output_buffer' = 1.5: must be a size like", NULL);
	expect_error("\ndaemon = 5;\n", 2, "'daemon' = 5: must be a group",
	    NULL);
	expect_error("relay = { name = \"x\"; };\n", 1,
	    "'relay' = { ... }: must be a list of groups", NULL);
	expect_error("relay = ( \"x\" );\n", 1,
	    "'relay[0]' = \"x\": each entry of 'relay' must be a group", NULL);
	/* libconfig itself refuses mixed arrays, at the odd element. */
	expect_error("tls = {\n  protocols = [ \"imap\",\n 5 ]; };\n", 3,
	    "syntax error: mismatched element type in array", NULL);
	expect_error("tls = {\n  protocols = ( \"imap\",\n 5 ); };\n", 3,
	    "'tls.protocols[1]' = 5: must be a string", NULL);
	expect_error("tls = { protocols = 5; };\n", 1,
	    "'tls.protocols' = 5: must be a list of strings", NULL);
}

static void
test_out_of_range(void **state)
{
	expect_error("limits = {\n\n  idle_timeout = \"2d\";\n};\n", 3,
	    "'limits.idle_timeout' = \"2d\": must be between 1s and 1d", NULL);
	expect_error("limits = { handshake_timeout = \"50ms\"; };\n", 1,
	    "must be between 100ms and 10m", NULL);
	expect_error("limits = { output_buffer = 1024; };\n", 1,
	    "'limits.output_buffer' = 1024: must be between 16k and 64M", NULL);
	expect_error("limits = { max_message = \"1000\"; };\n", 1,
	    "'limits.max_message' = \"1000\": must be at least 1k", NULL);
	expect_error("daemon = { workers = 300; };\n", 1,
	    "'daemon.workers' = 300: must be between 0 and 256", NULL);
	expect_error("daemon = { workers = -1; };\n", 1,
	    "must be between 0 and 256", NULL);
	expect_error("limits = { idle_timeout = -5; };\n", 1,
	    "must not be negative", NULL);
	expect_error("limits = { output_buffer = -5; };\n", 1,
	    "must not be negative", NULL);
}

static void
test_missing_required(void **state)
{
	/* At the line of the group that lacks it. */
	expect_error("relay = (\n"
		     "  { name = \"a\"; listen = \"*:1\";\n"
		     "    upstream = \"*:2\"; },\n"
		     "  { name = \"b\";\n"
		     "    upstream = \"*:4\"; }\n"
		     ");\n",
	    4, "missing required key 'relay[1].listen'", "numeric address",
	    NULL);
	expect_error("tls = { certificates = (\n"
		     "  { key = \"b\"; }\n"
		     "); };\n",
	    2, "missing required key 'tls.certificates[0].cert'",
	    "(the path of a PEM certificate chain)", NULL);
}

/* Required keys in the root and in absent groups, with tables of their
 * own. */
struct t_small {
	struct {
		char *name;
	} g;
	int64_t n;
	struct cfg_addr *list;
	unsigned nlist;
};

static const struct cfg_field small_g[] = {
	{ "name", CFG_STRING, offsetof(struct t_small, g.name), CFG_REQUIRED },
	{ NULL },
};

static const struct cfg_field small_root[] = {
	{ "g", CFG_GROUP, 0, .sub = small_g },
	{ "n", CFG_INT, offsetof(struct t_small, n), CFG_REQUIRED },
	{ NULL },
};

static const struct cfg_field empty_fields[] = { { NULL } };

static const struct cfg_field small_list_root[] = {
	{ "l", CFG_LIST, offsetof(struct t_small, list), CFG_REQUIRED,
	    .sub = empty_fields, .elem_size = 1,
	    .count_offset = offsetof(struct t_small, nlist) },
	{ NULL },
};

static void
small_error(const struct cfg_field *fields, const char *text,
    const char *needle)
{
	struct cfg_error err;
	struct t_small s;

	/* Zeroed: each table here covers only part of the struct. */
	memset(&s, 0, sizeof(s));
	write_conf(text);
	assert_int_equal(cfg_load(conf_path, fields, &s, &err), -1);
	assert_null(s.g.name);
	assert_null(s.list);
	assert_contains(err.msg, conf_path);
	assert_contains(err.msg, needle);
	unlink(conf_path);
}

static void
test_missing_required_small(void **state)
{
	small_error(small_root, "g = { name = \"x\"; };\n",
	    ": missing required key 'n'");
	small_error(small_root, "n = 1;\n", ": missing required key 'g.name'");
	small_error(small_root, "n = 1;\ng = {\n};\n",
	    ":2: missing required key 'g.name'");
	small_error(small_list_root, "\n", "missing required key 'l'");
	small_error(small_list_root, "l = ();\n",
	    ":1: 'l' is empty; it needs at least one entry");
	small_error(small_list_root, "l = ( { x = 1; } );\n",
	    ":1: unknown key 'l[0].x'; this group takes no keys");
}

static void
test_bad_enum(void **state)
{
	expect_error("daemon = {\n  log_level = \"loud\";\n};\n", 2,
	    "'daemon.log_level' = \"loud\": must be one of: error, warn, info, "
	    "debug",
	    NULL);
	expect_error("daemon = { log_level = 1; };\n", 1,
	    "must be one of: error, warn, info, debug", NULL);
}

static void
test_bad_address(void **state)
{
	static const char head[] = "relay = (\n  { name = \"a\";\n";
	static const struct {
		const char *listen, *why;
	} cases[] = {
		{ "mail.example.test:143", "host names are never resolved" },
		{ "1.2.3.4", "the :port is missing" },
		{ "1.2.3.4:0", "port must be a number from 1 to 65535" },
		{ "1.2.3.4:65536", "port must be a number from 1 to 65535" },
		{ "::1:993", "IPv6 address goes in brackets" },
		{ "[::1]993", "the port is missing after ']'" },
		{ "[::1:993", "the ']' is missing" },
		{ "[1.2.3.4]:993", "not a numeric IPv6 address" },
		{ "1.2.3.400:993", "not a valid IPv4 address" },
		{ ":993", "\"*:port\" means all addresses" },
	};
	char text[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
		    "%s    listen = \"%s\";\n    upstream = \"*:1\"; }\n);\n",
		    head, cases[i].listen);
		expect_error(text, 3, "'relay[0].listen' = \"", cases[i].listen,
		    cases[i].why, "must be a numeric address like", NULL);
		teardown(NULL);
	}
	expect_error("admin = { listen = 19100; };\n", 1,
	    "'admin.listen' = 19100: must be a numeric address", NULL);
}

static void
test_bad_duration_and_size(void **state)
{
	expect_error("limits = {\n  idle_timeout = \"10 parsecs\";\n};\n", 2,
	    "'limits.idle_timeout' = \"10 parsecs\": unknown unit "
	    "\"parsecs\"",
	    "must be a duration like", NULL);
	expect_error("limits = { idle_timeout = \"5S\"; };\n", 1,
	    "unknown unit \"S\"", NULL);
	expect_error("limits = { idle_timeout = \"5 m\"; };\n", 1,
	    "remove the space before \"m\"", NULL);
	expect_error("limits = { idle_timeout = \"1.5h\"; };\n", 1,
	    "fractions are not supported", NULL);
	expect_error("limits = { idle_timeout = \"\"; };\n", 1, "it is empty",
	    NULL);
	expect_error("limits = { output_buffer = \"64 kilo\"; };\n", 1,
	    "'limits.output_buffer' = \"64 kilo\": unknown unit \"kilo\"",
	    "must be a size like", NULL);
	expect_error("limits = {\n"
		     "  output_buffer = \"99999999999999999999\"; };\n",
	    2, "too large", NULL);
}

static void
test_syntax_error(void **state)
{
	expect_error("daemon = {\n  workers = 1;\n  log_level = ;\n};\n", 3,
	    "syntax error", NULL);
	expect_error("answer = 1;\nanswer = 2;\n", 2, "duplicate setting name",
	    NULL);
	/* An unterminated string is noticed where the file ends. */
	expect_error("daemon = {\n  pid_file = \"unterminated;\n};\n", 4,
	    "syntax error", NULL);
}

static void
test_cannot_open(void **state)
{
	struct cfg_error err;
	struct t_conf cf;

	assert_int_equal(
	    cfg_load("/nonexistent/ringgate.conf", root_fields, &cf, &err), -1);
	assert_string_equal(err.msg,
	    "/nonexistent/ringgate.conf: cannot "
	    "open: No such file or directory");
	assert_empty(&cf);
	assert_int_equal(cfg_load("/tmp", root_fields, &cf, &err), -1);
	assert_string_equal(err.msg, "/tmp: cannot open: Is a directory");
}

/* A default that its own parser refuses is the table's fault. */
static void
test_bad_default(void **state)
{
	static const struct cfg_field fields[] = {
		{ "d", CFG_DURATION, 0, 0, "soon" },
		{ NULL },
	};
	struct cfg_error err;
	uint64_t d;

	write_conf("\n");
	assert_int_equal(cfg_load(conf_path, fields, &d, &err), -1);
	assert_contains(err.msg,
	    "built-in default of 'd' = \"soon\" is "
	    "invalid (a bug)");
}

/* Errors after lists, strings and locations were filled unwind them all
 * (LeakSanitizer would report what was left). */
static void
test_failure_frees_everything(void **state)
{
	char text[sizeof(full_conf) + 64];

	snprintf(text, sizeof(text), "%sbroken = 1;\n", full_conf);
	expect_error(text, 35, "unknown key 'broken'", NULL);
	teardown(NULL);
	/* Fails inside the second relay, after the first was filled. */
	expect_error("daemon = { pid_file = \"/p\"; };\n"
		     "tls = { groups = [ \"a\", \"b\" ]; certificates = (\n"
		     "  { cert = \"c\"; key = \"k\"; } ); };\n"
		     "relay = (\n"
		     "  { name = \"a\"; listen = \"*:1\";\n"
		     "    upstream = \"*:2\"; },\n"
		     "  { name = \"b\"; listen = \"*:3\";\n"
		     "    upstream = \"x:4\"; }\n"
		     ");\n",
	    8, "'relay[1].upstream'", NULL);
}

static void
test_error_at(void **state)
{
	struct cfg_loc loc = { "/etc/ringgate.conf", 12 };
	struct cfg_error err;

	cfg_error_at(&err, &loc, "relay '%s' is already used", "imaps");
	assert_string_equal(err.msg,
	    "/etc/ringgate.conf:12: relay 'imaps' is already used");
	loc.line = 0;
	cfg_error_at(&err, &loc, "x");
	assert_string_equal(err.msg, "/etc/ringgate.conf: x");
	cfg_error_at(&err, NULL, "plain %d", 1);
	assert_string_equal(err.msg, "plain 1");
}

/* -------------------------------------------------------------- parsers */

static void
test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} ok[] = {
		{ "0", 0 },
		{ "0s", 0 },
		{ "30", 30000 },
		{ "500ms", 500 },
		{ "30s", 30000 },
		{ "5m", 300000 },
		{ "2h", 7200000 },
		{ "1d", 86400000 },
		{ "1h30m", 5400000 },
		{ "1m30s250ms", 90250 },
		{ "18446744073709551615ms", UINT64_MAX },
		{ "18446744073709551s", 18446744073709551000ULL },
	};
	static const char *const bad[] = {
		"",
		" 5s",
		"5s ",
		"5 s",
		"5S",
		"5M",
		"-1s",
		"+1s",
		"1.5s",
		"5x",
		"s",
		"ms5",
		"1h30",
		"0s30",
		"18446744073709551616ms", /* 2^64 */
		"18446744073709552s",	  /* seconds that overflow in ms */
		"99999999999999999999999",
		"213503982335d",
	};
	uint64_t ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = 12345;
		if (cfg_parse_duration(ok[i].s, &ms) != 0)
			fail_msg("\"%s\" refused", ok[i].s);
		if (ms != ok[i].ms)
			fail_msg("\"%s\" = %ju", ok[i].s, (uintmax_t)ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 12345;
		if (cfg_parse_duration(bad[i], &ms) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(ms, 12345);
	}
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} ok[] = {
		{ "0", 0 },
		{ "512", 512 },
		{ "512B", 512 },
		{ "64k", 65536 },
		{ "64K", 65536 },
		{ "64KB", 65536 },
		{ "64KiB", 65536 },
		{ "10M", 10485760 },
		{ "10m", 10485760 },
		{ "1G", 1073741824 },
		{ "2T", 2199023255552ULL },
		{ "16777215T", 16777215ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = {
		"",
		" 1k",
		"1k ",
		"1 k",
		"1kb",
		"1b",
		"1iB",
		"1KiBB",
		"-1",
		"1.5G",
		"1P",
		"k",
		"1k2",
		"16777216T",		/* 2^64 */
		"18446744073709551616", /* 2^64 */
		"17179869184G",
	};
	uint64_t n;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		n = 12345;
		if (cfg_parse_size(ok[i].s, &n) != 0)
			fail_msg("\"%s\" refused", ok[i].s);
		if (n != ok[i].bytes)
			fail_msg("\"%s\" = %ju", ok[i].s, (uintmax_t)n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 12345;
		if (cfg_parse_size(bad[i], &n) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(n, 12345);
	}
}

static void
test_parse_addr(void **state)
{
	static const char *const bad[] = {
		"",
		"1.2.3.4",
		"1.2.3.4:",
		":993",
		"*",
		"*:0",
		"*:65536",
		"*:99999",
		"*:-1",
		"*:+1",
		"*:1a",
		"1.2.3:993",
		"01.2.3.4:1",
		"localhost:143",
		"::1:993",
		"[::1]",
		"[::1]:",
		"[::1:993",
		"[]:993",
		"[fe80::1%eth0]:993",
		"[1.2.3.4]:1",
		" 1.2.3.4:1",
		"1.2.3.4:1 ",
		/* junk after the port */
		"[1111:2222:3333:4444:5555:6666:7777:8888]:6553500000000000000",
	};
	struct cfg_addr a;

	assert_int_equal(cfg_parse_addr("1.2.3.4:993", &a), 0);
	assert_addr4(&a, "1.2.3.4", 993, "1.2.3.4:993");
	assert_int_equal(cfg_parse_addr("*:65535", &a), 0);
	assert_addr4(&a, "0.0.0.0", 65535, "*:65535");
	assert_int_equal(cfg_parse_addr("[::1]:1", &a), 0);
	assert_addr6(&a, "::1", 1, "[::1]:1");
	assert_int_equal(cfg_parse_addr("[::]:993", &a), 0);
	assert_addr6(&a, "::", 993, "[::]:993");
	assert_int_equal(cfg_parse_addr("[::ffff:10.0.0.1]:25", &a), 0);
	assert_addr6(&a, "::ffff:10.0.0.1", 25, "[::ffff:10.0.0.1]:25");
	assert_int_equal(
	    cfg_parse_addr("[1111:2222:3333:4444:5555:6666:7777:8888]:65535",
		&a),
	    0);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port),
	    65535);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&a, 0x5a, sizeof(a));
		if (cfg_parse_addr(bad[i], &a) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		/* A refused address leaves the target alone. */
		assert_int_equal(((unsigned char *)&a)[0], 0x5a);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_full_config, teardown),
		cmocka_unit_test_teardown(test_defaults, teardown),
		cmocka_unit_test_teardown(test_partial_groups_and_lists,
		    teardown),
		cmocka_unit_test_teardown(test_include, teardown),
		cmocka_unit_test_teardown(test_unknown_key, teardown),
		cmocka_unit_test_teardown(test_wrong_type, teardown),
		cmocka_unit_test_teardown(test_out_of_range, teardown),
		cmocka_unit_test_teardown(test_missing_required, teardown),
		cmocka_unit_test_teardown(test_missing_required_small,
		    teardown),
		cmocka_unit_test_teardown(test_bad_enum, teardown),
		cmocka_unit_test_teardown(test_bad_address, teardown),
		cmocka_unit_test_teardown(test_bad_duration_and_size, teardown),
		cmocka_unit_test_teardown(test_syntax_error, teardown),
		cmocka_unit_test_teardown(test_cannot_open, teardown),
		cmocka_unit_test_teardown(test_bad_default, teardown),
		cmocka_unit_test_teardown(test_failure_frees_everything,
		    teardown),
		cmocka_unit_test(test_error_at),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
