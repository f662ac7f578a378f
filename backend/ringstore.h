/*
 * ringstore.h - ringstore's own types: its configuration, the read-only
 * server context every worker shares, and the per-worker context.
 *
 * The server context is built on the main thread before any worker starts
 * and only read afterwards. Each worker loop owns one struct rs_worker
 * (its sessions, its outbox for answers from the pools); nothing in it is
 * touched by another thread except through the outbox.
 */
#ifndef RG_BACKEND_RINGSTORE_H
#define RG_BACKEND_RINGSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_conf.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/listener_conf.h"
#include "core/tls_conf.h"
#include "login/login.h"

struct auth_service;
struct imap_session;
struct imap_watcher;
struct login_worker;
struct loop;
struct maildir_cache;
struct metrics;
struct pool;
struct pool_outbox;
struct tls_server;

/* One IMAP listener. */
struct rs_config {
	struct daemon_conf daemon;
	struct {
		struct cfg_addr listen;
	} admin;
	struct tls_conf tls;
	struct {
		uint64_t handshake_timeout, idle_timeout, login_timeout;
		uint64_t login_fail_delay; /* ms before a failed login's NO */
		int64_t login_fails;	   /* per connection, then BYE */
		uint64_t output_buffer;
		uint64_t line_max_login, line_max;
		uint64_t command_max;
		uint64_t append_max;
		int64_t bad_commands;
		/* per user, for CREATE and RENAME (maildir_check_limits) */
		int64_t folders_max, folder_depth_max, folder_name_max;
		uint64_t search_cpu; /* ms of CPU per SEARCH; 0 = no limit */
	} limits;
	struct auth_conf auth; /* auth/auth_conf.h */
	struct {
		char *mail_root;
		int64_t threads;
		int64_t queue;
		int64_t login_threads; /* the login lane (srv->login) */
	} storage;
	struct listener_conf *imap;
	unsigned nimap;
};

/* Load and check a config file. 0, or -1 with err filled (file:line). */
int rs_config_load(const char *path, struct rs_config *cf,
    struct cfg_error *err);
void rs_config_free(struct rs_config *cf);

/* The TLS server for the listeners (NULL when no certificate is
 * configured). 0 or -1 with *error_r. */
int rs_tls_build(const struct rs_config *cf, struct tls_server **ts_r,
    const char **error_r);

/* Bounds of srv->folders: a 10,000-message folder's snapshot is ~1.2 MB. */
#define RS_FOLDER_CACHE_ENTRIES 256
#define RS_FOLDER_CACHE_BYTES (64u << 20)

/* Metric ids, registered at start-up. */
struct rs_metrics {
	int sessions, commands, bad_commands;
	int store_jobs, store_busy;
	int master_refused;	       /* master logins refused (authzid) */
	int search_limit, search_gone; /* SEARCHes stopped: budget, client */
};

/* Shared, read-only after start-up. */
struct rs_server {
	const struct rs_config *cf;
	/* the passwd-file, the verify pool, master users, SCRAM's secret
	 * (auth/auth_service.h); reloaded by the main thread only */
	struct auth_service *auth;
	struct pool *store;
	/* The login lane: jobs of sessions not yet authenticated (the
	 * Maildir set-up of a login), so logins never queue behind mailbox
	 * work; NULL: they go to store. */
	struct pool *login;
	/* Folder snapshots for SELECT/EXAMINE (maildir.h), shared by the
	 * store threads; NULL runs without. */
	struct maildir_cache *folders;
	struct tls_server *tls; /* as started; workers hold w->tls */
	struct rs_metrics m;
	struct login_metrics login_m; /* the login core's, for IMAP */
};

/* One IMAP listener's context (listener ctx). */
struct rs_listener {
	const struct rs_server *srv;
	const struct listener_conf *conf;
};

#define RS_SESSION_BUCKETS 1024

/* Per worker loop (loop ctx). */
struct rs_worker {
	const struct rs_server *srv;
	struct loop *loop;
	struct pool_outbox *outbox;
	/* This worker's reference to the current certificates (STARTTLS
	 * and the TLS listeners); swapped on SIGHUP, NULL: no TLS. */
	struct tls_server *tls;
	struct imap_watcher *watcher; /* inotify for IDLE pushes */
	struct login_worker *login;   /* sessions before login (login/) */
	struct imap_session *sessions[RS_SESSION_BUCKETS]; /* by sid */
};

/* rs_login.c: the login core's hooks (login/login.h). */
extern const struct login_hooks rs_login_hooks;

/* The session with this id on this worker, or NULL if it has gone. */
struct imap_session *rs_worker_session(struct rs_worker *w, uint64_t sid);

#endif
