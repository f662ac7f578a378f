/*
 * main.c - ringgate start-up: configuration, sockets, TLS, metrics, the
 * admin listener, worker loops, and SIGHUP certificate reloads.
 *
 * Everything that can fail is done here, before the first worker starts,
 * so a bad config or a busy port stops the daemon with a message naming
 * the cause, never half-way into serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/tls.h"
#include "proxy/proxy.h"

#define DEFAULT_CONFIG "/etc/ringgate/ringgate.conf"

/* The daemon's context: everything main and the workers share. Workers
 * only read it after start-up; reloads go through loop_post(). */
struct gate {
	char *config_path;
	struct proxy_config cf;
	struct relay_listener *relays; /* cf.nrelay */
	int *relay_fds;		       /* nrelay * nworkers */
	struct tls_server **tls;       /* per relay, main's current set */
	unsigned nworkers;
	struct listener ***listeners; /* [worker][relay] */
};

struct tls_swap {
	struct gate *g;
	struct tls_server **tls; /* per relay */
};

static int build_tls_all(struct gate *g, const struct proxy_config *cf,
    struct tls_server **out, const char **error_r);
static void free_tls_all(struct tls_server **ts, unsigned n);
static int worker_init(struct daemon *d, struct loop *l, unsigned i);
static void reload(struct daemon *d);
static void swap_tls(struct loop *l, void *arg);
static void swap_done(void *arg);
static void export_expiry(struct gate *g, struct metrics *m);
static void gate_free(struct gate *g, struct daemon *d);

static void
free_tls_all(struct tls_server **ts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		tls_server_unref(&ts[i]);
}

static int
build_tls_all(struct gate *g, const struct proxy_config *cf,
    struct tls_server **out, const char **error_r)
{
	for (unsigned i = 0; i < cf->nrelay; i++) {
		if (proxy_tls_build(cf, &cf->relay[i], &out[i], error_r) ==
		    -1) {
			free_tls_all(out, i);
			return -1;
		}
	}
	return 0;
}

static void
export_expiry(struct gate *g, struct metrics *m)
{
	for (unsigned i = 0; i < g->cf.nrelay; i++)
		if (g->tls[i])
			metrics_set(m, g->relays[i].m_expiry,
			    (double)tls_server_expiry(g->tls[i]));
}

static int
worker_init(struct daemon *d, struct loop *l, unsigned i)
{
	struct gate *g = d->ctx;

	for (unsigned r = 0; r < g->cf.nrelay; r++) {
		int fd = g->relay_fds[r * g->nworkers + i];
		struct listener *li = loop_listen(l, fd, g->relays[r].name,
		    relay_handler(), &g->relays[r]);

		if (li == NULL)
			return -1;
		g->relay_fds[r * g->nworkers + i] = -1; /* the loop owns it */
		listener_set_tls(li, g->tls[r]);
		g->listeners[i][r] = li;
	}
	return 0;
}

/* On a worker: adopt the new certificates for new connections. */
static void
swap_tls(struct loop *l, void *arg)
{
	struct tls_swap *sw = arg;
	struct gate *g = sw->g;
	unsigned i = loop_index(l);

	for (unsigned r = 0; r < g->cf.nrelay; r++)
		if (g->listeners[i][r] && sw->tls[r])
			listener_set_tls(g->listeners[i][r], sw->tls[r]);
}

/* After the last worker: drop the swap's own references. */
static void
swap_done(void *arg)
{
	struct tls_swap *sw = arg;

	free_tls_all(sw->tls, sw->g->cf.nrelay);
	free(sw->tls);
	free(sw);
}

/* SIGHUP: re-read the certificate files named by the config file. A
 * broken file keeps the running set and says why. Listen addresses and
 * upstreams need a restart; that is logged, not applied. */
static void
reload(struct daemon *d)
{
	struct gate *g = d->ctx;
	struct proxy_config ncf;
	struct cfg_error err;
	struct tls_swap *sw;
	const char *error = NULL;

	if (proxy_config_load(g->config_path, &ncf, &err) == -1) {
		log_error(0, "reload.failed", "error=\"%s\" kept=old", err.msg);
		return;
	}
	if (ncf.nrelay != g->cf.nrelay) {
		log_warn(0, "reload.partial",
		    "note=\"relay listeners changed; restart to apply\"");
		proxy_config_free(&ncf);
		return;
	}
	sw = calloc(1, sizeof(*sw));
	if (sw == NULL ||
	    (sw->tls = calloc(ncf.nrelay, sizeof(*sw->tls))) == NULL ||
	    build_tls_all(g, &ncf, sw->tls, &error) == -1) {
		log_error(0, "reload.failed", "error=\"%s\" kept=old",
		    error ? error : "out of memory");
		if (sw)
			free(sw->tls);
		free(sw);
		proxy_config_free(&ncf);
		return;
	}
	proxy_config_free(&ncf);
	/* main's own view, for the expiry metric */
	free_tls_all(g->tls, g->cf.nrelay);
	for (unsigned r = 0; r < g->cf.nrelay; r++) {
		g->tls[r] = sw->tls[r];
		if (g->tls[r])
			tls_server_ref(g->tls[r]);
	}
	export_expiry(g, d->metrics);
	sw->g = g;
	if (daemon_broadcast_done(d, swap_tls, sw, swap_done) == -1) {
		swap_done(sw);
		log_error(0, "reload.failed", "error=\"out of memory\"");
		return;
	}
	log_info(0, "reload.done", "certificates=reloaded");
}

/* Release everything main() built; safe on a partly built gate. */
static void
gate_free(struct gate *g, struct daemon *d)
{
	if (g->tls)
		free_tls_all(g->tls, g->cf.nrelay);
	if (g->relay_fds)
		for (unsigned i = 0; i < g->cf.nrelay * g->nworkers; i++)
			if (g->relay_fds[i] != -1)
				close(g->relay_fds[i]);
	if (g->listeners)
		for (unsigned i = 0; i < g->nworkers; i++)
			free(g->listeners[i]);
	free(g->listeners);
	free(g->relay_fds);
	free(g->relays);
	free(g->tls);
	daemon_free(d);
	proxy_config_free(&g->cf);
}

int
main(int argc, char **argv)
{
	struct daemon_args args;
	struct daemon d;
	struct gate g;
	struct cfg_error err;
	const char *error = NULL;
	int code;

	daemon_args_parse(&args, argc, argv, "ringgate", DEFAULT_CONFIG);
	memset(&g, 0, sizeof(g));
	memset(&d, 0, sizeof(d));
	g.config_path = (char *)args.config;
	if (proxy_config_load(args.config, &g.cf, &err) == -1) {
		fprintf(stderr, "ringgate: %s\n", err.msg);
		return 1;
	}
	if ((g.tls = calloc(g.cf.nrelay + 1, sizeof(*g.tls))) == NULL)
		fatal("out of memory");
	g.nworkers = 0;
	if (build_tls_all(&g, &g.cf, g.tls, &error) == -1) {
		fprintf(stderr, "ringgate: %s: %s\n", args.config, error);
		code = 1;
		goto done;
	}
	if (args.test) {
		printf("ringgate: configuration file %s test is successful\n",
		    args.config);
		code = 0;
		goto done;
	}
	if (daemon_conf_log_open("ringgate", &g.cf.daemon) == -1 ||
	    loop_probe(&error) == -1) {
		if (error) {
			log_error(0, "daemon.failed", "error=\"%s\"", error);
			fprintf(stderr, "ringgate: %s\n", error);
		}
		code = 1;
		goto done;
	}

	d.name = "ringgate";
	d.nworkers = daemon_conf_workers(&g.cf.daemon);
	g.nworkers = d.nworkers;
	if (daemon_metrics_new(&d) == -1)
		fatal("out of memory");
	g.relays = calloc(g.cf.nrelay + 1, sizeof(*g.relays));
	g.relay_fds = calloc(g.cf.nrelay * d.nworkers + 1, sizeof(int));
	g.listeners = calloc(d.nworkers, sizeof(*g.listeners));
	if (g.relays == NULL || g.relay_fds == NULL || g.listeners == NULL)
		fatal("out of memory");
	for (unsigned i = 0; i < g.cf.nrelay * d.nworkers; i++)
		g.relay_fds[i] = -1;
	for (unsigned i = 0; i < d.nworkers; i++)
		if ((g.listeners[i] = calloc(g.cf.nrelay + 1,
			 sizeof(**g.listeners))) == NULL)
			fatal("out of memory");
	for (unsigned r = 0; r < g.cf.nrelay; r++) {
		if (relay_listener_init(&g.relays[r], &g.cf.relay[r], &g.cf,
			d.metrics) == -1)
			fatal("metrics registry full");
		if (daemon_listen_workers(&d, &g.cf.relay[r].listen,
			&g.relay_fds[r * d.nworkers], &error) == -1)
			goto failed;
	}
	export_expiry(&g, d.metrics);
	if (daemon_admin(&d, &g.cf.admin.listen, NULL, NULL, &error) == -1)
		goto failed;
	d.pid_file = g.cf.daemon.pid_file;

	d.drain_ms = g.cf.daemon.drain_timeout;
	d.ctx = &g;
	d.worker_init = worker_init;
	d.reload = reload;
	d.loop_conf.out_high = g.cf.limits.output_buffer;
	d.loop_conf.handshake_timeout_ms = g.cf.limits.handshake_timeout;
	log_info(0, "daemon.config", "file=%s relays=%u workers=%u",
	    args.config, g.cf.nrelay, d.nworkers);
	code = daemon_run(&d);
	goto done;
failed:
	log_error(0, "daemon.failed", "error=\"%s\"", error);
	fprintf(stderr, "ringgate: %s\n", error);
	code = 1;
done:
	gate_free(&g, &d);
	return code;
}
