/*
 * listener_conf.h - one listener of a daemon's config file (an entry of
 * `imap = ( ... )`, later `pop3`, `lmtp`, `submission`), described once
 * for core/config.c: name, address, TLS mode, trust for cleartext logins
 * and the PROXY protocol, with the checks every daemon needs.
 */
#ifndef RG_CORE_LISTENER_CONF_H
#define RG_CORE_LISTENER_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

struct listener;
struct net;

struct listener_conf {
	struct cfg_loc loc;
	char *name;
	struct cfg_addr listen;
	bool tls;      /* implicit TLS (993, 995, 465 style) */
	bool starttls; /* offer STARTTLS/STLS on a plaintext listener */
	/* cleartext logins allowed without TLS (a store behind ringgate);
	 * only clients inside trusted_nets may connect to such a listener */
	bool trusted;
	struct net *trusted_nets;
	unsigned ntrusted_nets;
	/* every connection starts with a PROXY v1/v2 header, accepted only
	 * from proxy_nets (the load balancers) */
	bool proxy_protocol;
	struct net *proxy_nets;
	unsigned nproxy_nets;
	/* sessions at once on this listener (all workers); over it a new
	 * connection is told to try later; 0 = no cap of its own */
	int64_t max_sessions;
};

/* Fields of struct listener_conf, for a CFG_LIST of them. */
extern const struct cfg_field listener_conf_fields[];

/* Check a list of n listeners called `what` ("imap") in one config:
 * names (1-63 of [A-Za-z0-9_-]) and addresses unique, tls only with
 * certificates, starttls not with tls, proxy_protocol with proxy_nets.
 * 0, or -1 with err naming the entry's file:line. */
int listener_conf_check(const struct listener_conf *l, unsigned n,
    const char *what, bool have_certs, struct cfg_error *err);

/* Names and addresses are unique across the lists of one daemon too
 * (imap and pop3 on one port cannot both bind): b against a. 0, or -1
 * with err at b's entry. */
int listener_conf_check_apart(const struct listener_conf *a, unsigned na,
    const struct listener_conf *b, unsigned nb, struct cfg_error *err);

/* Apply what the loop enforces at accept to a listener made from c: the
 * PROXY header and, for a trusted listener, the trusted_nets allow-list
 * (checked against the address after the PROXY header). c must outlive
 * the listener. */
void listener_conf_apply(const struct listener_conf *c, struct listener *li);

#endif
