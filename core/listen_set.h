/*
 * listen_set.h - a daemon's listeners, described once: N configured
 * listeners times one SO_REUSEPORT socket per worker, opened on the main
 * thread before any worker starts (so a busy port stops start-up with a
 * message), made into listeners on each worker's loop in worker_init, and
 * given new TLS contexts on every worker at a reload.
 *
 * Each listener has a TLS context (NULL: none): an implicit-TLS listener
 * starts every accepted connection with a handshake on it, the others
 * keep it for STARTTLS (listen_set_worker_tls()). A reload hands in the
 * next set of contexts; each worker adopts them between two events, new
 * connections use them, running sessions keep the one they started with,
 * and the set's references to the previous ones are dropped once every
 * worker has let go.
 *
 * Threads: listen_set_open/swap_tls/tls/free on the main thread;
 * listen_set_worker and listen_set_worker_tls on the worker's own thread.
 * No lock: the main thread's view and each worker's view are separate
 * arrays, and the swap travels by loop_post().
 */
#ifndef RG_CORE_LISTEN_SET_H
#define RG_CORE_LISTEN_SET_H

#include <stdbool.h>

struct cfg_addr;
struct conn_handler;
struct daemon;
struct listen_set;
struct listener_conf;
struct loop;
struct tls_server;

/* One configured listener. Pointers are kept, not copied: they must
 * outlive the set (they point into the daemon's config). */
struct listen_set_entry {
	const char *name; /* labels metrics and logs */
	const struct cfg_addr *addr;
	const struct conn_handler *handler;
	void *ctx; /* the listener's ctx (listener_ctx()) */
	/* PROXY header and trusted_nets, applied with listener_conf_apply();
	 * NULL: neither */
	const struct listener_conf *conf;
	bool tls; /* implicit TLS: every connection starts with a handshake */
};

/* Open one listening socket per entry per worker (d->nworkers set).
 * tls[0..n) are the first contexts (NULL entries allowed, except for an
 * implicit-TLS entry); the set takes references of its own. NULL with
 * *error_r naming the address (every socket opened here closed). */
struct listen_set *listen_set_open(struct daemon *d,
    const struct listen_set_entry *e, unsigned n, struct tls_server *const *tls,
    const char **error_r);

/* In worker_init of worker i, on its thread: put worker i's sockets on l
 * (the loop owns them from here). 0, or -1 when out of memory. */
int listen_set_worker(struct listen_set *ls, struct loop *l, unsigned i);

/* Called on each worker after its listeners took new contexts, for a
 * daemon that keeps a copy of one elsewhere (ringstore's w->tls). */
typedef void listen_set_adopted_fn(struct listen_set *ls, struct loop *l);

/* SIGHUP: tls[0..n) become the listeners' contexts on every worker (the
 * set takes references of its own; the caller keeps its). -1 with
 * *error_r (nothing changes) when an implicit-TLS listener would get NULL
 * or memory ran out. adopted may be NULL. */
int listen_set_swap_tls(struct listen_set *ls, struct daemon *d,
    struct tls_server *const *tls, listen_set_adopted_fn *adopted,
    const char **error_r);

/* The context of entry r as the main thread last set it (for metrics such
 * as certificate expiry). Main thread only. */
struct tls_server *listen_set_tls(const struct listen_set *ls, unsigned r);

/* The context entry r uses on l's worker now (for STARTTLS). On that
 * worker's thread only; NULL when r is out of range. */
struct tls_server *listen_set_worker_tls(const struct listen_set *ls,
    const struct loop *l, unsigned r);

/* After daemon_run() returned (or a failed start-up): close the sockets no
 * worker took, drop every reference. Nulls *ls; NULL is a no-op. */
void listen_set_free(struct listen_set **ls);

#endif
