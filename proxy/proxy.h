/*
 * proxy.h - ringgate's own types: its configuration and the relay slice.
 *
 * Today ringgate is a TLS-terminating relay: each listener relays every
 * connection, full duplex, to a fixed upstream. The protocol front ends
 * (IMAP, POP3, submission) will replace the fixed upstream with a login
 * and a route, reusing the relay once the session is authenticated.
 */
#ifndef RG_PROXY_PROXY_H
#define RG_PROXY_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_conf.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/listener_conf.h"
#include "core/tls_conf.h"
#include "proxy/route.h"
#include "throttle/throttle.h"

struct conn_handler;
struct metrics;
struct tls_server;

struct proxy_relay_conf {
	struct cfg_loc loc;
	char *name;
	struct cfg_addr listen;
	bool tls;
	int alpn; /* index into proxy_alpn_names; 0 = none */
	struct cfg_addr upstream;
};

/* The protocols ringgate logs users in for (its front ends). */
enum gate_proto { GATE_IMAP = 0, GATE_POP3, GATE_SMTP, GATE_PROTOS };

struct proxy_config {
	struct daemon_conf daemon;
	struct {
		struct cfg_addr listen;
	} admin;
	struct tls_conf tls;
	struct {
		uint64_t handshake_timeout, connect_timeout, idle_timeout;
		uint64_t output_buffer;
		/* before login (login/login.h's struct login_settings) */
		uint64_t login_timeout, login_fail_delay;
		uint64_t login_idle_timeout;
		int64_t login_fails, bad_commands;
		uint64_t line_max_login, message_max;
		/* sessions at once (core/conn_limit.h): 0 = the fd cap;
		 * descriptors kept for back ends and files */
		int64_t max_sessions, fd_reserve;
	} limits;
	struct proxy_relay_conf *relay;
	unsigned nrelay;
	/* the front ends: listeners per protocol (enum gate_proto order) */
	struct listener_conf *imap, *pop3, *submission;
	unsigned nimap, npop3, nsubmission;
	struct auth_conf auth; /* used when a front end is configured */
	/* back ends, Redis routes, health checks (proxy/route.h) */
	struct route_conf route;
	struct {
		struct cfg_loc loc;
		char *master_user;
		char *master_password_file;
		char *master_password; /* read from the file at load */
		uint64_t timeout;
		char *helo;    /* SMTP: our EHLO name toward back ends */
		char *ca_file; /* back ends' CAs; NULL: the system store */
		bool verify;   /* check back ends' certificates (sni) */
		bool proxy_v2; /* PROXY v2 preamble with the client address */
		bool xclient;  /* SMTP: XCLIENT instead of telling nothing */
	} backend_login;
	/* badguy throttling of the front ends (throttle/throttle.h) */
	struct throttle_conf throttle;
};

/* The listener list of protocol p. */
struct gate_list {
	const char *name; /* "imap", "pop3", "submission" */
	const char *alpn; /* "imap", "pop3", "smtp" */
	const struct listener_conf *l;
	unsigned n;
};
void proxy_config_lists(const struct proxy_config *cf,
    struct gate_list lists[GATE_PROTOS]);
/* Back end b's address for protocol p (len 0: it does not serve p). */
const struct cfg_addr *proxy_backend_addr(const struct route_backend_conf *b,
    enum gate_proto p);
/* Listeners of every front end together. */
unsigned proxy_front_count(const struct proxy_config *cf);

extern const char *const proxy_alpn_names[];

/* Load and check a config file. 0, or -1 with err filled (file:line). */
int proxy_config_load(const char *path, struct proxy_config *cf,
    struct cfg_error *err);
void proxy_config_free(struct proxy_config *cf);

/* Build the TLS server for relay r (NULL when r has no TLS). 0 or -1 with
 * *error_r set. */
int proxy_tls_build(const struct proxy_config *cf,
    const struct proxy_relay_conf *r, struct tls_server **ts_r,
    const char **error_r);

/* One relay listener's shared, read-only state (all workers). */
struct relay_listener {
	char name[64];
	struct cfg_addr upstream;
	uint64_t connect_ms, idle_ms;
	int m_c2u, m_u2c, m_duration, m_connect_fail, m_expiry;
};

/* Fill rl from r and register its metrics. 0 or -1. */
int relay_listener_init(struct relay_listener *rl,
    const struct proxy_relay_conf *r, const struct proxy_config *cf,
    struct metrics *m);

/* Handler for accepted relay connections; listener ctx = relay_listener. */
const struct conn_handler *relay_handler(void);

#endif
