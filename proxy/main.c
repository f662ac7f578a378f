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

#include "auth/auth_service.h"
#include "core/admin.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/conn_limit.h"
#include "core/daemon.h"
#include "core/listen_set.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/tls.h"
#include "proxy/gate.h"
#include "proxy/health.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "throttle/throttle.h"

#define DEFAULT_CONFIG "/etc/ringgate/ringgate.conf"

/* The daemon's context: everything main and the workers share. Workers
 * only read it after start-up; reloads go through loop_post(). */
struct gate {
	char *config_path;
	struct proxy_config cf;
	struct relay_listener *relays; /* cf.nrelay, the listeners' ctx */
	/* the listen set: the relays [0, nrelay), then the front ends
	 * (imap, pop3, submission in proxy_config_lists() order) */
	struct listen_set *lset;
	unsigned n; /* every listener */
	/* the front ends (nfront = n - nrelay) */
	struct gate_server srv;
	struct gate_listener *fronts;
	struct login_listener *logins;
	struct login_settings *login_sets;
	struct login_worker **login_workers; /* by worker index */
	struct conn_limits limits; /* sessions and descriptors, all workers */
};

static struct tls_server **build_tls_all(const struct proxy_config *cf,
    const char **error_r);
static void free_tls_all(struct tls_server ***ts, unsigned n);
static int open_listeners(struct gate *g, struct daemon *d,
    struct tls_server *const *tls, const char **error_r);
static int worker_init(struct daemon *d, struct loop *l, unsigned i);
static void worker_exit(struct daemon *d, struct loop *l, unsigned i);
static int start_fronts(struct gate *g, struct metrics *m,
    const char **error_r);
static unsigned listener_count(const struct proxy_config *cf);
static void tick(struct daemon *d);
static void reload(struct daemon *d);
static int test_fronts(struct gate *g, const char *path);
static void test_limits(const struct proxy_config *cf);
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

static unsigned
listener_count(const struct proxy_config *cf)
{
	return cf->nrelay + proxy_front_count(cf);
}

/* One TLS server per listener: the relays' (NULL for a relay without
 * TLS), then one per front-end list shared by its listeners (with the
 * protocol's ALPN; NULL without certificates). NULL with *error_r. */
static struct tls_server **
build_tls_all(const struct proxy_config *cf, const char **error_r)
{
	unsigned n = listener_count(cf), k = cf->nrelay;
	struct tls_server **ts = calloc(n + 1, sizeof(*ts));
	struct gate_list lists[GATE_PROTOS];

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
	proxy_config_lists(cf, lists);
	for (unsigned p = 0; p < GATE_PROTOS; p++) {
		struct tls_server *one = NULL;

		if (lists[p].n > 0 && cf->tls.ncertificates > 0 &&
		    tls_conf_build(&cf->tls, lists[p].alpn, &one, error_r) ==
			-1) {
			free_tls_all(&ts, k);
			return NULL;
		}
		for (unsigned r = 0; r < lists[p].n; r++, k++)
			if ((ts[k] = one) != NULL)
				tls_server_ref(one);
		tls_server_unref(&one);
	}
	return ts;
}

/* The login core's rules for one front-end listener. */
static void
login_settings_of(const struct gate *g, const struct listener_conf *c,
    unsigned p, struct login_settings *set)
{
	const struct proxy_config *cf = &g->cf;

	*set = (struct login_settings){
		.listener = c,
		.login_timeout = cf->limits.login_timeout,
		.idle_timeout = cf->limits.login_idle_timeout,
		.fail_delay = cf->limits.login_fail_delay,
		.max_fails = (unsigned)cf->limits.login_fails,
		.max_bad = (unsigned)cf->limits.bad_commands,
		.line_max = cf->limits.line_max_login,
		.legacy_mechanisms = cf->auth.legacy_mechanisms,
		.server_name = "ringgate",
		.message_max = cf->limits.message_max,
	};
	set->scram_secret = auth_service_scram_secret(g->srv.auth,
	    &set->scram_secret_len);
	/* the throttle's bad commands per session win over limits' */
	if (g->srv.throttle != NULL)
		set->max_bad = throttle_bad_commands(g->srv.throttle,
		    (enum throttle_service)p);
}

/* Users, the verify pool, the back ends' TLS, the router: what the front
 * ends need before their listeners open. Nothing when there are none. */
static int
start_fronts(struct gate *g, struct metrics *m, const char **error_r)
{
	const struct auth_service_opts o = { 0 };

	g->srv.cf = &g->cf;
	if (proxy_front_count(&g->cf) == 0)
		return 0;
	if ((g->srv.auth = auth_service_new(&g->cf.auth, &o, error_r)) ==
		NULL ||
	    auth_service_start(g->srv.auth, error_r) == -1 ||
	    gate_backend_tls_build(&g->srv, error_r) == -1)
		return -1;
	if (m != NULL &&
	    (auth_service_metrics(g->srv.auth, m) == -1 ||
		gate_metrics_init(&g->srv, m) == -1)) {
		*error_r = "metrics registry full";
		return -1;
	}
	if (throttle_conf_enabled(&g->cf.throttle) &&
	    (g->srv.throttle = throttle_new(&g->cf.throttle, m, error_r)) ==
		NULL)
		return -1;
	g->srv.router = router_new(&g->cf.route, m, error_r);
	return g->srv.router ? 0 : -1;
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

/* The relays' contexts (registering their metrics), the front ends'
 * login listeners, and every socket. */
static int
open_listeners(struct gate *g, struct daemon *d, struct tls_server *const *tls,
    const char **error_r)
{
	unsigned n = listener_count(&g->cf), k = g->cf.nrelay;
	struct listen_set_entry *e = calloc(n + 1, sizeof(*e));
	struct gate_list lists[GATE_PROTOS];

	g->n = n;
	if (e == NULL ||
	    (g->relays = calloc(n + 1, sizeof(*g->relays))) == NULL ||
	    (g->fronts = calloc(n + 1, sizeof(*g->fronts))) == NULL ||
	    (g->logins = calloc(n + 1, sizeof(*g->logins))) == NULL ||
	    (g->login_sets = calloc(n + 1, sizeof(*g->login_sets))) == NULL ||
	    (g->login_workers = calloc(d->nworkers + 1,
		 sizeof(*g->login_workers))) == NULL) {
		free(e);
		*error_r = "out of memory";
		return -1;
	}
	for (unsigned r = 0; r < g->cf.nrelay; r++) {
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
	proxy_config_lists(&g->cf, lists);
	for (unsigned p = 0; p < GATE_PROTOS; p++)
		for (unsigned r = 0; r < lists[p].n; r++, k++) {
			const struct listener_conf *c = &lists[p].l[r];

			g->fronts[k] = (struct gate_listener){ .srv = &g->srv,
				.conf = c,
				.proto = (enum gate_proto)p,
				.index = k };
			login_settings_of(g, c, p, &g->login_sets[k]);
			g->logins[k] = (struct login_listener){
				.proto = gate_protos[p],
				.hooks = &gate_login_hooks,
				.set = &g->login_sets[k],
				.metrics = &g->srv.login_m[p],
				.workers = g->login_workers,
				.ctx = &g->fronts[k]
			};
			e[k] = (struct listen_set_entry){ .name = c->name,
				.addr = &c->listen,
				.handler = login_handler(),
				.ctx = &g->logins[k],
				.conf = c,
				.tls = c->tls };
		}
	g->lset = g->srv.lset = listen_set_open(d, e, n, tls, error_r);
	free(e);
	return g->lset ? 0 : -1;
}

static int
worker_init(struct daemon *d, struct loop *l, unsigned i)
{
	struct gate *g = d->ctx;
	struct gate_worker *w;

	if (g->srv.auth != NULL) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return -1;
		w->srv = &g->srv;
		w->loop = l;
		/* from here on worker_exit() cleans up */
		loop_set_ctx(l, w);
		if ((w->login = login_worker_new(l,
			 auth_service_users(g->srv.auth),
			 auth_service_pool(g->srv.auth))) == NULL ||
		    (w->route = route_worker_new(g->srv.router, l)) == NULL)
			return -1;
		if (g->srv.throttle != NULL) {
			const char *error = NULL;

			w->throttle = throttle_worker_new(g->srv.throttle, l,
			    &error);
			if (w->throttle == NULL) {
				log_error(0, "throttle.failed", "error=\"%s\"",
				    error ? error : "?");
				return -1;
			}
		}
		g->login_workers[i] = w->login;
		/* the health checks run on worker 0 */
		if (i == 0) {
			const char *error = NULL;

			w->health = health_new(g->srv.router,
			    &g->cf.route.health, l, g->srv.backend_tls, &error);
			if (w->health == NULL) {
				log_error(0, "health.failed", "error=\"%s\"",
				    error ? error : "?");
				return -1;
			}
		}
	}
	return listen_set_worker(g->lset, l, i);
}

/* On the worker's thread after its loop stopped: the verifications
 * still out come back and free their husks, then the worker goes. */
static void
worker_exit(struct daemon *d, struct loop *l, unsigned i)
{
	struct gate_worker *w = loop_ctx(l);

	(void)d;
	(void)i;
	if (w == NULL)
		return;
	loop_set_ctx(l, NULL);
	health_free(&w->health);
	route_worker_free(&w->route);
	login_worker_free(&w->login);
	/* last: the sessions freed above end their throttle holds */
	throttle_worker_free(&w->throttle);
	free(w);
}

/* Every auth.reload_check: pick up an edited passwd-file by itself. */
static void
tick(struct daemon *d)
{
	struct gate *g = d->ctx;

	if (g->srv.auth != NULL)
		auth_service_tick(g->srv.auth);
}

/* -t: what start-up checks short of binding ports: the passwd-file (and
 * its master users), the back ends' CA file. */
static int
test_fronts(struct gate *g, const char *path)
{
	const char *error = NULL;

	g->srv.cf = &g->cf;
	if (proxy_front_count(&g->cf) > 0) {
		const struct auth_service_opts o = { 0 };

		if ((g->srv.auth = auth_service_new(&g->cf.auth, &o, &error)) ==
			NULL ||
		    gate_backend_tls_build(&g->srv, &error) == -1) {
			fprintf(stderr, "ringgate: %s: %s\n", path, error);
			return 1;
		}
	}
	printf("ringgate: configuration file %s test is successful\n", path);
	test_limits(&g->cf);
	return 0;
}

/* -t: the session cap this config gives under this process's limit; a
 * warning, not a failure: the service's own limit (LimitNOFILE=) is what
 * counts at start-up. */
static void
test_limits(const struct proxy_config *cf)
{
	char note[200];
	const char *error = NULL;

	if (conn_limits_plan(cf->limits.max_sessions, cf->limits.fd_reserve, 2,
		note, sizeof(note), &error) == -1)
		fprintf(stderr, "ringgate: warning: %s\n", error);
	else
		printf("ringgate: %s\n", note);
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
	if (g->srv.auth != NULL)
		auth_service_reload(g->srv.auth, "signal");
	if (ncf.nrelay != g->cf.nrelay || ncf.nimap != g->cf.nimap ||
	    ncf.npop3 != g->cf.npop3 || ncf.nsubmission != g->cf.nsubmission) {
		log_warn(0, "reload.partial",
		    "note=\"listeners changed; restart to apply\"");
		proxy_config_free(&ncf);
		return;
	}
	tls = build_tls_all(&ncf, &error);
	proxy_config_free(&ncf);
	if (tls == NULL ||
	    listen_set_swap_tls(g->lset, d, tls, NULL, &error) == -1) {
		free_tls_all(&tls, g->n);
		log_error(0, "reload.failed", "error=\"%s\" kept=old", error);
		return;
	}
	free_tls_all(&tls, g->n);
	export_expiry(g, d->metrics);
	log_info(0, "reload.done", "certificates=reloaded");
}

/* Release everything main() built; safe on a partly built gate. */
static void
gate_free(struct gate *g, struct daemon *d)
{
	listen_set_free(&g->lset);
	free(g->relays);
	free(g->fronts);
	free(g->logins);
	free(g->login_sets);
	free(g->login_workers);
	daemon_free(d);
	router_free(&g->srv.router);
	throttle_free(&g->srv.throttle);
	gate_backend_tls_free(&g->srv);
	auth_service_free(&g->srv.auth);
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
		code = test_fronts(&g, args.config);
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
	/* two descriptors a session: the client's and its back end's */
	if (conn_limits_init(&g.limits, "ringgate", g.cf.limits.max_sessions,
		g.cf.limits.fd_reserve, 2, d.metrics, &error) == -1)
		goto failed;
	if (start_fronts(&g, d.metrics, &error) == -1 ||
	    open_listeners(&g, &d, tls, &error) == -1)
		goto failed;
	free_tls_all(&tls, g.n); /* the listen set holds its own */
	export_expiry(&g, d.metrics);
	if (daemon_admin(&d, &g.cf.admin.listen, NULL, NULL, &error) == -1)
		goto failed;
	/* GET /throttle, POST /throttle/unblock?ip= (ringgate-ctl) */
	if (g.srv.throttle != NULL)
		admin_set_route(d.admin, "/throttle", throttle_admin_route,
		    g.srv.throttle);
	d.pid_file = g.cf.daemon.pid_file;

	d.drain_ms = g.cf.daemon.drain_timeout;
	d.ctx = &g;
	d.worker_init = worker_init;
	d.worker_exit = worker_exit;
	d.reload = reload;
	d.tick = tick;
	d.tick_ms = g.srv.auth ? g.cf.auth.reload_check : 0;
	daemon_conf_loop(&g.cf.daemon, &d.loop_conf);
	d.loop_conf.out_high = g.cf.limits.output_buffer;
	d.loop_conf.handshake_timeout_ms = g.cf.limits.handshake_timeout;
	d.loop_conf.limits = &g.limits;
	log_info(0, "daemon.config",
	    "file=%s relays=%u imap=%u pop3=%u submission=%u backends=%u "
	    "workers=%u",
	    args.config, g.cf.nrelay, g.cf.nimap, g.cf.npop3, g.cf.nsubmission,
	    g.cf.route.nbackends, d.nworkers);
	code = daemon_run(&d);
	goto done;
failed:
	log_error(0, "daemon.failed", "error=\"%s\"", error);
	fprintf(stderr, "ringgate: %s\n", error);
	code = 1;
done:
	free_tls_all(&tls, listener_count(&g.cf));
	gate_free(&g, &d);
	return code;
}
