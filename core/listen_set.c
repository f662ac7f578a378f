/*
 * listen_set.c - a daemon's listeners across its workers, and the TLS
 * swap at a reload (see listen_set.h).
 *
 * Relies on: daemon_listen_workers() for the sockets, loop_post() order
 * (a swap posted before the stop message is handled before it, so no
 * swap ever meets a closed listener), and atomic tls_server references,
 * since workers drop theirs on their own threads. Must never: let an
 * implicit-TLS listener accept in cleartext, or drop a context a worker
 * may still hand to a new connection.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/conn_limit.h"
#include "core/daemon.h"
#include "core/listen_set.h"
#include "core/listener_conf.h"
#include "core/loop.h"
#include "core/tls.h"

struct listen_set {
	unsigned n, nworkers;
	struct listen_set_entry *e; /* n */
	int *fds;		    /* [r * nworkers + i], -1 once taken */
	struct tls_server **tls;    /* main thread's view, [r] */
	struct tls_server **wtls;   /* worker i's view, [i * n + r] */
	struct listener **lis;	    /* [i * n + r], set by worker i */
	/* each entry's sessions across the workers, and its max_sessions
	 * (core/conn_limit.h) */
	struct conn_gauge *gauges; /* [r] */
};

/* A swap on its way to every worker. */
struct swap {
	struct listen_set *ls;
	listen_set_adopted_fn *adopted;
	struct tls_server *tls[]; /* n references, dropped in swap_done */
};

static int check_tls(const struct listen_set *ls, struct tls_server *const *tls,
    const char **error_r);
static void slot_set(struct tls_server **slot, struct tls_server *ts);
static void swap_step(struct loop *l, void *arg);
static void swap_done(void *arg);
static void unref_all(struct tls_server **tls, unsigned n);

struct listen_set *
listen_set_open(struct daemon *d, const struct listen_set_entry *e, unsigned n,
    struct tls_server *const *tls, const char **error_r)
{
	struct listen_set *ls = calloc(1, sizeof(*ls));
	size_t cells = (size_t)n * d->nworkers;

	if (ls == NULL || (ls->e = calloc(n + 1, sizeof(*ls->e))) == NULL ||
	    (ls->fds = calloc(cells + 1, sizeof(*ls->fds))) == NULL ||
	    (ls->tls = calloc(n + 1, sizeof(*ls->tls))) == NULL ||
	    (ls->wtls = calloc(cells + 1, sizeof(*ls->wtls))) == NULL ||
	    (ls->lis = calloc(cells + 1, sizeof(*ls->lis))) == NULL ||
	    (ls->gauges = calloc(n + 1, sizeof(*ls->gauges))) == NULL) {
		*error_r = "out of memory";
		goto fail;
	}
	ls->n = n;
	ls->nworkers = d->nworkers;
	if (n > 0)
		memcpy(ls->e, e, n * sizeof(*e));
	for (size_t c = 0; c < cells; c++)
		ls->fds[c] = -1;
	for (unsigned r = 0; r < n; r++) {
		atomic_init(&ls->gauges[r].cur, 0);
		ls->gauges[r].max = e[r].conf != NULL ?
		    (unsigned)e[r].conf->max_sessions :
		    0;
	}
	if (check_tls(ls, tls, error_r) == -1)
		goto fail;
	for (unsigned r = 0; r < n; r++) {
		slot_set(&ls->tls[r], tls[r]);
		if (daemon_listen_workers(d, e[r].addr,
			&ls->fds[(size_t)r * d->nworkers], error_r) == -1)
			goto fail;
	}
	return ls;
fail:
	listen_set_free(&ls);
	return NULL;
}

/* An implicit-TLS listener without a context would accept cleartext. */
static int
check_tls(const struct listen_set *ls, struct tls_server *const *tls,
    const char **error_r)
{
	for (unsigned r = 0; r < ls->n; r++) {
		if (ls->e[r].tls && tls[r] == NULL) {
			*error_r = "a TLS listener has no certificate";
			return -1;
		}
	}
	return 0;
}

/* Hold a reference to ts (may be NULL) in *slot, dropping the old one. */
static void
slot_set(struct tls_server **slot, struct tls_server *ts)
{
	if (ts != NULL)
		tls_server_ref(ts);
	tls_server_unref(slot);
	*slot = ts;
}

int
listen_set_worker(struct listen_set *ls, struct loop *l, unsigned i)
{
	for (unsigned r = 0; r < ls->n && i < ls->nworkers; r++) {
		const struct listen_set_entry *e = &ls->e[r];
		int *fd = &ls->fds[(size_t)r * ls->nworkers + i];
		size_t cell = (size_t)i * ls->n + r;
		struct listener *li;

		li = loop_listen(l, *fd, e->name, e->handler, e->ctx);
		if (li == NULL)
			return -1; /* the fd stays ours: closed at free */
		*fd = -1;
		if (e->conf != NULL)
			listener_conf_apply(e->conf, li);
		listener_set_limit(li, &ls->gauges[r]);
		/* the main thread waits for the workers: its view is still */
		slot_set(&ls->wtls[cell], ls->tls[r]);
		if (e->tls)
			listener_set_tls(li, ls->wtls[cell]);
		ls->lis[cell] = li;
	}
	return 0;
}

int
listen_set_swap_tls(struct listen_set *ls, struct daemon *d,
    struct tls_server *const *tls, listen_set_adopted_fn *adopted,
    const char **error_r)
{
	struct swap *sw;

	if (check_tls(ls, tls, error_r) == -1)
		return -1;
	if ((sw = calloc(1, sizeof(*sw) + ls->n * sizeof(sw->tls[0]))) ==
	    NULL) {
		*error_r = "out of memory";
		return -1;
	}
	sw->ls = ls;
	sw->adopted = adopted;
	for (unsigned r = 0; r < ls->n; r++)
		slot_set(&sw->tls[r], tls[r]);
	/* sw may be freed by the last worker before this returns: the main
	 * thread's view is taken from tls[], which the caller still holds */
	if (daemon_broadcast_done(d, swap_step, sw, swap_done) == -1) {
		swap_done(sw);
		*error_r = "out of memory";
		return -1;
	}
	for (unsigned r = 0; r < ls->n; r++)
		slot_set(&ls->tls[r], tls[r]);
	return 0;
}

/* On a worker: new connections get the new contexts from now on. */
static void
swap_step(struct loop *l, void *arg)
{
	struct swap *sw = arg;
	struct listen_set *ls = sw->ls;
	unsigned i = loop_index(l);

	for (unsigned r = 0; r < ls->n && i < ls->nworkers; r++) {
		size_t cell = (size_t)i * ls->n + r;

		slot_set(&ls->wtls[cell], sw->tls[r]);
		if (ls->e[r].tls && ls->lis[cell] != NULL)
			listener_set_tls(ls->lis[cell], sw->tls[r]);
	}
	if (sw->adopted != NULL)
		sw->adopted(ls, l);
}

/* After the last worker adopted them: the swap's own references go. */
static void
swap_done(void *arg)
{
	struct swap *sw = arg;

	unref_all(sw->tls, sw->ls->n);
	free(sw);
}

static void
unref_all(struct tls_server **tls, unsigned n)
{
	for (unsigned r = 0; r < n; r++)
		tls_server_unref(&tls[r]);
}

struct tls_server *
listen_set_tls(const struct listen_set *ls, unsigned r)
{
	return r < ls->n ? ls->tls[r] : NULL;
}

struct tls_server *
listen_set_worker_tls(const struct listen_set *ls, const struct loop *l,
    unsigned r)
{
	unsigned i = loop_index(l);

	if (r >= ls->n || i >= ls->nworkers)
		return NULL;
	return ls->wtls[(size_t)i * ls->n + r];
}

void
listen_set_free(struct listen_set **lsp)
{
	struct listen_set *ls = *lsp;
	size_t cells;

	if (ls == NULL)
		return;
	cells = (size_t)ls->n * ls->nworkers;
	if (ls->fds != NULL)
		for (size_t c = 0; c < cells; c++)
			if (ls->fds[c] != -1)
				close(ls->fds[c]);
	if (ls->tls != NULL)
		unref_all(ls->tls, ls->n);
	if (ls->wtls != NULL)
		for (size_t c = 0; c < cells; c++)
			tls_server_unref(&ls->wtls[c]);
	free(ls->e);
	free(ls->fds);
	free(ls->tls);
	free(ls->wtls);
	free(ls->lis);
	free(ls->gauges);
	free(ls);
	*lsp = NULL;
}
