/*
 * route_private.h - what route.c, route_hash.c and health.c share inside
 * ringgate's routing module (not for callers: they use route.h).
 */
#ifndef RG_PROXY_ROUTE_PRIVATE_H
#define RG_PROXY_ROUTE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/route.h"

struct metrics;

/* ---- route_hash.c: weighted rendezvous hashing, pure ---- */

struct route_hash_node {
	uint64_t key;  /* route_hash_str() of the back end's name */
	double weight; /* > 0 */
};

/* 64-bit hash of n bytes; the same on every host and every run. */
uint64_t route_hash_str(const char *s, size_t n);

/* The node with the highest score -weight / ln(u), u = a uniform value in
 * (0,1) drawn from (user, node key): ties go to the lower index. -1 when
 * n is 0. */
int route_hash_pick(const struct route_hash_node *nodes, unsigned n,
    uint64_t user_hash);

/* The score itself (tests). */
double route_hash_score(const struct route_hash_node *node, uint64_t user_hash);

/* The next back-end name in a host= list (names separated by commas
 * and/or blanks) starting at *pp: true with (*name_r, *len_r) set, len
 * >= 1, and *pp moved past it; false at the end of the string. */
bool route_host_next(const char **pp, const char **name_r, size_t *len_r);

/* Is s[0..n) (the start of a back end's first line) a ready greeting for
 * p: IMAP "* OK", POP3 "+OK", SMTP "220" followed by a blank, '-', CR,
 * LF or nothing? */
bool route_greeting_ok(enum route_proto p, const char *s, size_t n);

/* ---- route.c, for health.c ---- */

struct metrics *router_metrics(const struct router *r);

/* Set be's state for p (any thread). On a change: one log line (event
 * backend.up / backend.down with why), the backend_up gauge. Returns true
 * when the state changed. */
bool router_set_up(struct router *r, unsigned be_index, enum route_proto p,
    bool up, const char *why);

/* Connect latency histogram id for back end i (-1 when no metrics). */
int router_connect_metric(const struct router *r, unsigned be_index);

#endif
