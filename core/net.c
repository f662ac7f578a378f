/*
 * net.c - networks and membership tests (core/net.h).
 *
 * Relies on inet_pton()/inet_ntop() only. Never: resolves names, accepts
 * a network with host bits set below its prefix, or matches an address of
 * a family it cannot read.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/net.h"

static int parse_prefix(const char *s, unsigned max, uint8_t *prefix_r);
static bool host_bits_zero(const struct net *net);
static int sa_bytes(const struct sockaddr *sa, uint8_t *family_r,
    const uint8_t **addr_r);

int
net_parse(const char *s, size_t len, struct net *net)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(net, 0, sizeof(*net));
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		net->prefix = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		net->prefix = 128;
	} else {
		return -1;
	}
	if (slash != NULL &&
	    parse_prefix(slash, net->prefix, &net->prefix) == -1)
		return -1;
	return host_bits_zero(net) ? 0 : -1;
}

/* One to three digits, at most max: "/0032" is as wrong as it looks. */
static int
parse_prefix(const char *s, unsigned max, uint8_t *prefix_r)
{
	size_t n = strlen(s);
	unsigned v = 0;

	if (n == 0 || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*prefix_r = (uint8_t)v;
	return 0;
}

static bool
host_bits_zero(const struct net *net)
{
	unsigned bytes = net->family == AF_INET ? 4 : 16;

	for (unsigned i = 0; i < bytes; i++) {
		unsigned bit = i * 8;
		uint8_t mask;

		if (bit + 8 <= net->prefix)
			continue;
		mask = bit >= net->prefix ?
		    0xff :
		    (uint8_t)(0xff >> (net->prefix - bit));
		if (net->addr[i] & mask)
			return false;
	}
	return true;
}

/* The address bytes of sa; an IPv4-mapped IPv6 address is reported as the
 * IPv4 address it carries. */
static int
sa_bytes(const struct sockaddr *sa, uint8_t *family_r, const uint8_t **addr_r)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		*family_r = AF_INET;
		*addr_r = (const uint8_t *)&((const struct sockaddr_in *)sa)
			      ->sin_addr;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			*family_r = AF_INET;
			*addr_r = a->s6_addr + 12;
		} else {
			*family_r = AF_INET6;
			*addr_r = a->s6_addr;
		}
		return 0;
	}
	return -1;
}

bool
net_match(const struct net *net, const struct sockaddr *sa)
{
	const uint8_t *a;
	uint8_t family;
	unsigned full, rest;

	if (sa_bytes(sa, &family, &a) == -1 || family != net->family)
		return false;
	full = net->prefix / 8;
	rest = net->prefix % 8;
	if (memcmp(a, net->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ net->addr[full]) & (uint8_t)(0xff << (8 - rest))) ==
	    0;
}

bool
net_list_match(const struct net *nets, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (net_match(&nets[i], sa))
			return true;
	return false;
}

const char *
net_format(const struct net *net, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	inet_ntop(net->family, net->addr, host, sizeof(host));
	snprintf(buf, len, "%s/%u", host, net->prefix);
	return buf;
}
