/*
 * net.h - IPv4 and IPv6 networks ("10.0.0.0/8", "::1") and the questions
 * every daemon asks of a client address: is it inside this network, this
 * list of networks? Used for trusted listeners, PROXY-protocol sources,
 * master logins, allow_nets= in user entries and the throttle's
 * allow-list. Pure: no I/O, no allocation.
 */
#ifndef RG_CORE_NET_H
#define RG_CORE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One network in binary form. */
struct net {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t prefix; /* 0..32 or 0..128 */
	uint8_t addr[16];
};

/* Parse "a.b.c.d[/n]" or "v6[/n]" (s is len bytes, not NUL-terminated); a
 * bare address is a host network. Host bits below the prefix must be zero,
 * so a typo such as 10.1.2.3/8 is refused rather than silently widened.
 * Returns 0, or -1 if it is not a network. */
int net_parse(const char *s, size_t len, struct net *net);

/* Does sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as its
 * IPv4 address, as dual-stack sockets deliver IPv4 clients) lie inside
 * net? Anything else (NULL, AF_UNIX) is inside no network. */
bool net_match(const struct net *net, const struct sockaddr *sa);

/* Inside any of the n networks? */
bool net_list_match(const struct net *nets, size_t n,
    const struct sockaddr *sa);

/* "10.0.0.0/8" into buf (at least 64 bytes), for logs. */
const char *net_format(const struct net *net, char *buf, size_t len);

#endif
