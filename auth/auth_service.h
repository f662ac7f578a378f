/*
 * auth_service.h - auth's start-up and life in a daemon, from its
 * `auth { }` section (auth/auth_conf.h): the passwd-file, the check that
 * every master user is in it, SCRAM's server secret, the verify pool,
 * reloads (SIGHUP and the reload_check tick) and auth's metrics.
 *
 * A daemon calls, on its main thread:
 *
 *   auth_service_new()      at start-up, before any worker (and for -t)
 *   auth_service_start()    the verify pool (not for -t)
 *   auth_service_metrics()  once its registry exists
 *   auth_service_reload()   on SIGHUP
 *   auth_service_tick()     every auth.reload_check ms (0: never)
 *   auth_service_free()     after every worker loop has gone
 *
 * and hands the workers auth_service_users() and auth_service_pool(),
 * which stay the same objects for the service's life (a reload swaps the
 * table inside the passwd-file back-end, not the back-end).
 */
#ifndef RG_AUTH_AUTH_SERVICE_H
#define RG_AUTH_AUTH_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth/sasl.h"

struct auth_backend;
struct auth_conf;
struct auth_pool;
struct auth_service;
struct metrics;

struct auth_service_opts {
	/* Optional: the daemon's own rule for user names, applied at every
	 * load of the passwd-file (auth_passdb_conf.check_user). Master
	 * users are exempt: they act for others and own nothing. */
	int (*check_user)(void *ctx, const char *user, const char **reason_r);
	void *check_ctx;
};

/* Open the passwd-file (parsed whole), check that every master user is
 * in it, read scram_secret_file, warn about legacy_mechanisms. conf (and
 * opts' ctx) must outlive the service. NULL with *error_r naming the file
 * (and line) and the reason; the text is the calling thread's and stays
 * valid until its next failed call here. Starts no thread. */
struct auth_service *auth_service_new(const struct auth_conf *conf,
    const struct auth_service_opts *opts, const char **error_r);

/* Start the verify pool (its threads, queue, cache and the dummy hash of
 * default_scheme, which takes as long as one verification). 0, or -1
 * with *error_r. */
int auth_service_start(struct auth_service *svc, const char **error_r);

/* Register auth's metrics in m (auth_*, passdb_*) and the collector that
 * copies the pool's counters at every scrape. After auth_service_start();
 * m must outlive the service's reloads. 0, or -1 when the registry is
 * full. */
int auth_service_metrics(struct auth_service *svc, struct metrics *m);

/* Read the passwd-file again (why names the trigger in the log: "signal",
 * "changed"). A file that does not load keeps the old table, logs
 * passdb.reload_failed and counts a refused reload: -1. A good one
 * forgets the positive cache, sets the passdb gauges, logs
 * passdb.reloaded and warns (passdb.master_missing) if a master user has
 * gone: 0. */
int auth_service_reload(struct auth_service *svc, const char *why);

/* Reload if the passwd-file changed since the last attempt (one stat(2)).
 * 1 if it reloaded (good or refused), 0 if nothing changed. */
int auth_service_tick(struct auth_service *svc);

/* Every master user must be in the passwd-file in use: 0, or -1 with
 * *error_r "file:line: auth.master_users: 'NAME' is not in PATH". */
int auth_service_check_masters(struct auth_service *svc, const char **error_r);

/* authcid's credentials were right and it asks to act as authzid. Only a
 * master user, from master_nets, for a target in the users back-end who
 * may log in: SASL_V_OK. SASL_V_AUTHZID when authcid may not act for
 * others (not a master, or from elsewhere); SASL_V_FAIL for an unknown or
 * nologin target, so a master cannot probe for names. *why_r: "ok",
 * "not_master", "network", "unknown_target" or "nologin_target", for
 * the daemon's log. Any thread (the lookup never blocks). */
enum sasl_verdict auth_service_authorize(const struct auth_service *svc,
    const char *authcid, const char *authzid, const struct sockaddr *client,
    const char **why_r);

/* The users back-end (non-blocking lookups) and the verify pool (NULL
 * before auth_service_start()). */
struct auth_backend *auth_service_users(const struct auth_service *svc);
struct auth_pool *auth_service_pool(const struct auth_service *svc);

/* Users in the table in use, and its version (1 = first load). */
size_t auth_service_count(const struct auth_service *svc);
uint64_t auth_service_version(const struct auth_service *svc);

/* SHA-256 of scram_secret_file (*len_r 32), or NULL (*len_r 0) without
 * one: SASL then uses a random secret of its own per process. */
const uint8_t *auth_service_scram_secret(const struct auth_service *svc,
    size_t *len_r);

/* The section the service was made from. */
const struct auth_conf *auth_service_conf(const struct auth_service *svc);

/* Stop the pool, close the passwd-file, wipe the secret; *svc = NULL.
 * After every loop the pool answers to has gone. NULL is fine. */
void auth_service_free(struct auth_service **svc);

#endif
