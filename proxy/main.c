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
#include "core/listen_set.h"
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
	struct relay_listener *relays; /* cf.nrelay, the listeners' ctx */
	struct listen_set *lset;       /* the relay listeners */
};

static struct tls_server **build_tls_all(const struct proxy_config *cf,
    const char **error_r);
static void free_tls_all(struct tls_server ***ts, unsigned n);
static int open_listeners(struct gate *g, struct daemon *d,
    struct tls_server *const *tls, const char **error_r);
static int worker_init(struct daemon *d, struct loop *l, unsigned i);
static void reload(struct daemon *d);
static void export_expiry(struct gate *g, struct metrics *m);
static void gate_free(struct gate *g, struct daemon *d);

/* The array and the references it holds. */
static void
free_tls_all(struct tls_server ***tsp, unsigned n)
{
	struct tls_server **ts = *tsp;

	if (ts == NULL)
		return;
	for (unsigned i = 0; i < n; i++)
		tls_server_unref(&ts[i]);
	free(ts);
	*tsp = NULL;
}

/* One TLS server per relay (NULL for a relay without TLS). NULL with
 * *error_r. */
static struct tls_server **
build_tls_all(const struct proxy_config *cf, const char **error_r)
{
	struct tls_server **ts = calloc(cf->nrelay + 1, sizeof(*ts));

	if (ts == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	for (unsigned i = 0; i < cf->nrelay; i++) {
		if (proxy_tls_build(cf, &cf->relay[i], &ts[i], error_r) == -1) {
			free_tls_all(&ts, i);
			return NULL;
		}
	}
	return ts;
}

static void
export_expiry(struct gate *g, struct metrics *m)
{
	for (unsigned i = 0; i < g->cf.nrelay; i++) {
		struct tls_server *ts = listen_set_tls(g->lset, i);

		if (ts != NULL)
			metrics_set(m, g->relays[i].m_expiry,
			    (double)tls_server_expiry(ts));
	}
}

/* The relays' contexts (registering their metrics) and their sockets. */
static int
open_listeners(struct gate *g, struct daemon *d, struct tls_server *const *tls,
    const char **error_r)
{
	unsigned n = g->cf.nrelay;
	struct listen_set_entry *e = calloc(n + 1, sizeof(*e));

	if (e == NULL ||
	    (g->relays = calloc(n + 1, sizeof(*g->relays))) == NULL) {
		free(e);
		*error_r = "out of memory";
		return -1;
	}
	for (unsigned r = 0; r < n; r++) {
		if (relay_listener_init(&g->relays[r], &g->cf.relay[r], &g->cf,
			d->metrics) == -1) {
			free(e);
			*error_r = "metrics registry full";
			return -1;
		}
		e[r] = (struct listen_set_entry){ .name = g->relays[r].name,
			.addr = &g->cf.relay[r].listen,
			.handler = relay_handler(),
			.ctx = &g->relays[r],
			.tls = g->cf.relay[r].tls };
	}
	g->lset = listen_set_open(d, e, n, tls, error_r);
	free(e);
	return g->lset ? 0 : -1;
}

static int
worker_init(struct daemon *d, struct loop *l, unsigned i)
{
	struct gate *g = d->ctx;

	return listen_set_worker(g->lset, l, i);
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
	struct tls_server **tls;
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
	tls = build_tls_all(&ncf, &error);
	proxy_config_free(&ncf);
	if (tls == NULL ||
	    listen_set_swap_tls(g->lset, d, tls, NULL, &error) == -1) {
		free_tls_all(&tls, g->cf.nrelay);
		log_error(0, "reload.failed", "error=\"%s\" kept=old", error);
		return;
	}
	free_tls_all(&tls, g->cf.nrelay);
	export_expiry(g, d->metrics);
	log_info(0, "reload.done", "certificates=reloaded");
}

/* Release everything main() built; safe on a partly built gate. */
static void
gate_free(struct gate *g, struct daemon *d)
{
	listen_set_free(&g->lset);
	free(g->relays);
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
	struct tls_server **tls = NULL;
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
	if ((tls = build_tls_all(&g.cf, &error)) == NULL) {
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
	if (daemon_metrics_new(&d) == -1)
		fatal("out of memory");
	if (open_listeners(&g, &d, tls, &error) == -1)
		goto failed;
	free_tls_all(&tls, g.cf.nrelay); /* the listen set holds its own */
	export_expiry(&g, d.metrics);
	if (daemon_admin(&d, &g.cf.admin.listen, NULL, NULL, &error) == -1)
		goto failed;
	d.pid_file = g.cf.daemon.pid_file;

	d.drain_ms = g.cf.daemon.drain_timeout;
	d.ctx = &g;
	d.worker_init = worker_init;
	d.reload = reload;
	daemon_conf_loop(&g.cf.daemon, &d.loop_conf);
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
	free_tls_all(&tls, g.cf.nrelay);
	gate_free(&g, &d);
	return code;
}
