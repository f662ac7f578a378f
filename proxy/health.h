/*
 * health.h - active health checks of ringgate's back ends.
 *
 * One worker's loop runs them (the daemon picks worker 0): for every back
 * end and protocol it serves, every interval, a TCP connect (and the TLS
 * handshake for implicit-TLS back ends when a tls_client is given) and a
 * read of the greeting with a timeout: IMAP "* OK", POP3 "+OK", SMTP
 * "220". fall failures in a row mark the pair down, rise successes up;
 * the state lives in the route_backend's atomics, so every worker sees it
 * at once. A real login that could not connect (route_report_connect)
 * marks it down too; the checker then needs rise successes to bring it
 * back. One log line per state change; metrics:
 *   ringgate_backend_up{backend,proto}          1/0
 *   ringgate_health_checks_total{backend,proto,result}  ok|fail
 *   ringgate_backend_connect_seconds{backend}  connect latency histogram
 */
#ifndef RG_PROXY_HEALTH_H
#define RG_PROXY_HEALTH_H

#include "proxy/route.h"

struct health;
struct loop;
struct tls_client;

/* Start checking r's back ends from l (call on l's thread) with rc's
 * interval, timeout, fall and rise. tc (may be NULL: implicit-TLS back
 * ends then get a TCP connect only) is referenced. NULL with *error_r. */
struct health *health_new(struct router *r, const struct route_health_conf *hc,
    struct loop *l, struct tls_client *tc, const char **error_r);

/* On l's thread before the loop is freed: checks in flight are aborted.
 * Nulls *h; NULL is a no-op. */
void health_free(struct health **h);

/* Checks completed so far (tests wait on it). */
uint64_t health_rounds(const struct health *h);

#endif
