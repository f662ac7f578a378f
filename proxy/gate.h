/*
 * gate.h - ringgate's front ends (IMAP, POP3, submission): what the
 * start-up (main.c), the login hooks (gate_login.c) and the session after
 * login (session.c) share.
 *
 * A front-end listener hands its connections to the login core
 * (login/login.h) with ringgate's hooks. Once a user is in, session.c
 * picks the user's back end, logs in there as the master identity on the
 * user's behalf (proxy/upstream_login.h), answers the client and relays
 * both ways until either side ends, then writes one audit line.
 *
 * Threads: struct gate_server is built on the main thread before the
 * workers start and only read by them; struct gate_worker belongs to one
 * worker's loop (loop_ctx()).
 */
#ifndef RG_PROXY_GATE_H
#define RG_PROXY_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "login/login.h"
#include "proxy/proxy.h"

struct auth_service;
struct health;
struct listen_set;
struct login_session;
struct login_user;
struct login_worker;
struct loop;
struct metrics;
struct router;
struct route_worker;
struct tls_client;
struct throttle;
struct throttle_worker;
struct gate_thr;

/* ringgate's counters for the front ends (login/'s own are in
 * login_m). */
struct gate_metrics {
	int backend_login[GATE_PROTOS][3]; /* by enum ul_status */
	int no_backend[GATE_PROTOS];	   /* no back end to route to */
	int sessions[GATE_PROTOS];	   /* relayed sessions started */
	int active[GATE_PROTOS];	   /* gauge: relayed now */
	int bytes[GATE_PROTOS][2];	   /* [0] client->backend, [1] back */
	int backend_lost[GATE_PROTOS];	   /* back end went mid-session */
	int master_refused;
	int duration;
	/* submission: messages by the store's verdict ([0] accepted, [1]
	 * refused) and the accepted ones' content bytes */
	int messages[2];
	int message_bytes;
	/* the HTTP auth hook named an address that is no back end */
	int auth_http_refused[GATE_PROTOS];
};

struct gate_server {
	const struct proxy_config *cf;
	struct auth_service *auth;
	struct listen_set *lset;
	/* TLS toward back ends (one CA set, backend_login.ca_file); NULL
	 * when no back end has tls */
	struct tls_client *backend_tls;
	struct router *router;
	struct throttle *throttle; /* NULL: no throttle group */
	struct login_metrics login_m[GATE_PROTOS];
	struct gate_metrics m;
};

/* One front-end listener: the login hooks' ctx (login_session_ctx()). */
struct gate_listener {
	struct gate_server *srv;
	const struct listener_conf *conf;
	enum gate_proto proto;
	unsigned index; /* in the listen set, for listen_set_worker_tls */
};

/* One worker's state (loop_ctx()). */
struct gate_worker {
	struct gate_server *srv;
	struct loop *loop;
	struct login_worker *login;
	struct route_worker *route;
	struct health *health;		  /* worker 0 only */
	struct throttle_worker *throttle; /* NULL: no throttle */
};

extern const struct login_hooks gate_login_hooks;
extern const struct login_proto *const gate_protos[GATE_PROTOS];
extern const char *const gate_proto_names[GATE_PROTOS];

/* Register the front ends' metrics (login/'s and ringgate's). 0 or -1. */
int gate_metrics_init(struct gate_server *srv, struct metrics *m);

/* The back ends' TLS client (main thread, at start-up). 0, or -1 with
 * *error_r. */
int gate_backend_tls_build(struct gate_server *srv, const char **error_r);
void gate_backend_tls_free(struct gate_server *srv);

/* A session's hold on the throttle's counters, taken from the login
 * session at the hand-off (gate_login.c) and ended with the relayed
 * session. NULL-safe; gate_thr_end() nulls *gt. */
struct gate_thr *gate_thr_take(struct login_session *s);
void gate_thr_end(struct gate_thr **gt);

/* logged_in: route, back-end login, then the relay (session.c). */
void gate_session_begin(struct login_session *s, const struct login_user *u);

#endif
