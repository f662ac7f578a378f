/*
 * test_net.c - networks (core/net.h): parsing with host bits checked,
 * matching IPv4, IPv6 and IPv4-mapped addresses, lists, formatting, and
 * the config type CFG_NETLIST (a list of networks, each refused at its
 * own file:line, a lone string, the built-in default, cleanup).
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

#include "core/config.h"
#include "core/net.h"

static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &in->sin_addr), 1);
	}
	return ss;
}

static bool
in(const char *net, const char *a)
{
	struct sockaddr_storage ss = addr(a);
	struct net n;

	assert_int_equal(net_parse(net, strlen(net), &n), 0);
	return net_match(&n, (struct sockaddr *)&ss);
}

static void
test_parse(void **state)
{
	struct net n;

	(void)state;
	assert_int_equal(net_parse("10.0.0.0/8", 10, &n), 0);
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 8);
	assert_int_equal(net_parse("10.1.0.0/8", 10, &n), -1);
	assert_int_equal(net_parse("10.0.0.1", 8, &n), 0);
	assert_int_equal(n.prefix, 32);
	assert_int_equal(net_parse("0.0.0.0/0", 9, &n), 0);
	assert_int_equal(net_parse("10.0.0.0/33", 11, &n), -1);
	assert_int_equal(net_parse("10.0.0.0/", 9, &n), -1);
	assert_int_equal(net_parse("10.0.0.0/x", 10, &n), -1);
	assert_int_equal(net_parse("10.0.0.0/0008", 13, &n), -1);
	assert_int_equal(net_parse("10.0.0", 6, &n), -1);
	assert_int_equal(net_parse("fe80::/10", 9, &n), 0);
	assert_int_equal(n.family, AF_INET6);
	assert_int_equal(net_parse("fe80::1/10", 10, &n), -1);
	assert_int_equal(net_parse("::/129", 6, &n), -1);
	assert_int_equal(net_parse("", 0, &n), -1);
	assert_int_equal(net_parse("mail.example.test", 17, &n), -1);
	/* The length bounds the parse: a longer buffer is not read. */
	assert_int_equal(net_parse("10.0.0.0/8,junk", 10, &n), 0);
}

static void
test_match(void **state)
{
	struct sockaddr_un_like {
		sa_family_t family;
	} unix_sa = { AF_UNIX };
	struct net n;

	(void)state;
	assert_true(in("0.0.0.0/0", "8.8.8.8"));
	assert_false(in("0.0.0.0/0", "2001:db8::1"));
	assert_true(in("fe80::/10", "febf::1"));
	assert_false(in("fe80::/10", "fec0::1"));
	assert_true(in("192.0.2.0/25", "192.0.2.127"));
	assert_false(in("192.0.2.0/25", "192.0.2.128"));
	/* dual-stack sockets deliver IPv4 clients as mapped addresses */
	assert_true(in("127.0.0.0/8", "::ffff:127.0.0.9"));
	assert_false(in("::/0", "::ffff:127.0.0.9"));
	assert_true(in("::1", "::1"));
	assert_true(in("2001:db8::/48", "2001:db8:0:ffff::1"));
	assert_false(in("2001:db8::/48", "2001:db8:1::1"));
	assert_int_equal(net_parse("0.0.0.0/0", 9, &n), 0);
	assert_false(net_match(&n, NULL));
	assert_false(net_match(&n, (struct sockaddr *)&unix_sa));
}

static void
test_list_and_format(void **state)
{
	struct net nets[2];
	struct sockaddr_storage a = addr("10.9.8.7"), b = addr("::1"),
				c = addr("192.0.2.1");
	char buf[64];

	(void)state;
	assert_int_equal(net_parse("10.0.0.0/8", 10, &nets[0]), 0);
	assert_int_equal(net_parse("::1", 3, &nets[1]), 0);
	assert_true(net_list_match(nets, 2, (struct sockaddr *)&a));
	assert_true(net_list_match(nets, 2, (struct sockaddr *)&b));
	assert_false(net_list_match(nets, 2, (struct sockaddr *)&c));
	assert_false(net_list_match(nets, 0, (struct sockaddr *)&a));
	assert_string_equal(net_format(&nets[0], buf, sizeof(buf)),
	    "10.0.0.0/8");
	assert_string_equal(net_format(&nets[1], buf, sizeof(buf)), "::1/128");
}

/* ---- CFG_NETLIST ---------------------------------------------------- */

struct t_conf {
	struct net *trusted;
	unsigned ntrusted;
	struct net *lb;
	unsigned nlb;
};

static const struct cfg_field fields[] = {
	{ "trusted", CFG_NETLIST, offsetof(struct t_conf, trusted), 0,
	    "127.0.0.0/8, ::1",
	    .count_offset = offsetof(struct t_conf, ntrusted) },
	{ "lb", CFG_NETLIST, offsetof(struct t_conf, lb), 0,
	    .count_offset = offsetof(struct t_conf, nlb) },
	{ NULL },
};

static int
load(const char *text, struct t_conf *cf, struct cfg_error *err)
{
	char path[] = "/tmp/test_net.XXXXXX";
	int fd = mkstemp(path), rc;

	assert_int_not_equal(fd, -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	memset(cf, 0xa5, sizeof(*cf));
	rc = cfg_load(path, fields, cf, err);
	unlink(path);
	return rc;
}

static void
test_config_netlist(void **state)
{
	struct sockaddr_storage lo = addr("127.0.0.5"), v6 = addr("::1"),
				lb = addr("192.0.2.77");
	struct cfg_error err;
	struct t_conf cf;

	(void)state;
	/* absent: the default; lone string */
	assert_int_equal(load("lb = \"192.0.2.0/24\";\n", &cf, &err), 0);
	assert_int_equal(cf.ntrusted, 2);
	assert_true(
	    net_list_match(cf.trusted, cf.ntrusted, (struct sockaddr *)&lo));
	assert_true(
	    net_list_match(cf.trusted, cf.ntrusted, (struct sockaddr *)&v6));
	assert_int_equal(cf.nlb, 1);
	assert_true(net_list_match(cf.lb, cf.nlb, (struct sockaddr *)&lb));
	cfg_free(fields, &cf);
	assert_null(cf.trusted);
	assert_int_equal(cf.ntrusted, 0);

	/* an explicit empty list means none */
	assert_int_equal(load("trusted = [];\n", &cf, &err), 0);
	assert_int_equal(cf.ntrusted, 0);
	cfg_free(fields, &cf);

	/* the bad item is named at its own line */
	assert_int_equal(load("# a comment\ntrusted = [ \"10.0.0.0/8\",\n"
			      "  \"10.1.2.3/8\" ];\n",
			     &cf, &err),
	    -1);
	assert_non_null(strstr(err.msg, ":3:"));
	assert_non_null(strstr(err.msg, "trusted[1]"));
	assert_non_null(strstr(err.msg, "not a network"));
	assert_int_equal(load("lb = [ 5 ];\n", &cf, &err), -1);
	assert_non_null(strstr(err.msg, "not a network"));
	assert_int_equal(load("lb = { a = 1; };\n", &cf, &err), -1);
	assert_non_null(strstr(err.msg, "a list of networks"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_list_and_format),
		cmocka_unit_test(test_config_netlist),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
