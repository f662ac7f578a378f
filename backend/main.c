/*
 * main.c - ringstore start-up: configuration, the passwd-file, the auth
 * and store pools, TLS, metrics, the admin listener and the IMAP
 * listeners on every worker loop; then, on the main thread, reloads:
 * SIGHUP re-reads certificates and the passwd-file, and a tick notices
 * an edited passwd-file by itself.
 *
 * Everything that can fail is done here, before the first worker starts,
 * so a bad config, an unreadable passwd-file or a busy port stops the
 * daemon with a message naming the cause. Relies on the daemon's
 * worker_exit hook to close each worker's outbox after its loop stopped
 * and before daemon_run() frees the loop, so no pool answer is ever
 * posted to a freed loop. Must never: start serving with a half built
 * context, or drop the running certificates or users because a new file
 * is broken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_service.h"
#include "backend/imap_private.h"
#include "backend/relay.h"
#include "backend/ringstore.h"
#include "backend/spool.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/conn_limit.h"
#include "core/listen_set.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "core/tls.h"
#include "store/maildir.h"

#define DEFAULT_CONFIG "/etc/ringgate/ringstore.conf"

/* Metrics the main thread and the scrape collector set. */
struct sd_metrics {
	/* folder snapshot cache (store/maildir_cache.c) */
	int folders_hit, folders_miss, folders_unsettled, folders_evicted;
	int folders_entries, folders_bytes;
	/* the store pool and its login lane: [0] mailbox, [1] login */
	int pool_queued[2], pool_running[2];
};

/* The daemon's context: built by main, read by the workers. After start-up
 * only the main thread changes it (reloads), and workers learn of new
 * certificates through loop_post. */
struct store_daemon {
	const char *config_path;
	struct rs_config cf;
	struct rs_server srv;
	/* every service's listeners, in rs_config_lists() order (n) */
	unsigned n;
	struct rs_listener *listeners; /* the hooks' or handler's ctx */
	/* a login service's listener ctx: the login core's view of it */
	struct login_listener *logins;
	struct login_settings *login_sets;
	struct login_worker **login_workers; /* by worker index */
	struct tls_server **tls; /* per listener, as the main thread set */
	struct metrics *metrics;
	struct sd_metrics am;
	struct conn_limits limits; /* sessions and descriptors, all workers */
};

/* How each service's listeners are served (enum rs_service_id). */
static const struct rs_service *const services[RS_SERVICES] = {
	[RS_IMAP] = &rs_imap_service,
	[RS_POP3] = &rs_pop3_service,
	[RS_LMTP] = &rs_lmtp_service,
	[RS_SUBMIT] = &rs_submit_service,
};

static int check_user(void *ctx, const char *user, const char **reason_r);
static struct auth_service *open_auth(const struct rs_config *cf,
    const char **error_r);
static int test_config(struct store_daemon *sd, const char *path);
static int start_pools(struct store_daemon *sd, const char **error_r);
static int register_metrics(struct rs_server *srv, struct metrics *m);
static int start_relay(struct store_daemon *sd, struct metrics *m,
    const char **error_r);
static unsigned listener_count(const struct rs_config *cf);
static void login_settings_of(const struct store_daemon *sd,
    const struct listener_conf *c, struct login_settings *set);
static int register_folder_metrics(struct store_daemon *sd, struct metrics *m);
static void collect_folders(struct metrics *m, void *arg);

/* reloads, on the main thread */
static void reload(struct daemon *d);
static void tick(struct daemon *d);
static void reload_tls(struct store_daemon *sd, struct daemon *d,
    const struct rs_config *ncf);
static int open_listeners(struct store_daemon *sd, struct daemon *d,
    const char **error_r);
static struct tls_server **build_tls(const struct rs_config *cf, unsigned n,
    const char **error_r);
static void free_tls(struct tls_server **tls, unsigned n);
static int worker_init(struct daemon *d, struct loop *l, unsigned i);
static void worker_exit(struct daemon *d, struct loop *l, unsigned i);
static void sd_free(struct store_daemon *sd, struct daemon *d);

/* Mail lives under <mail_root>/<domain>/<localpart>: a passwd-file user
 * without a domain would authenticate and then never get a mailbox, so
 * the file is refused naming the line (at -t, at start, at a reload,
 * which keeps the old table). A default domain was the other choice; it
 * would give one mailbox two names ("bob", "bob@example.org") that
 * ringgate hashes to different stores. Master users own no mailbox and
 * may omit the domain (auth_service exempts them). */
static int
check_user(void *ctx, const char *user, const char **reason_r)
{
	return maildir_user_check(user, reason_r);
}

static struct auth_service *
open_auth(const struct rs_config *cf, const char **error_r)
{
	const struct auth_service_opts o = { .check_user = check_user };

	return auth_service_new(&cf->auth, &o, error_r);
}

/* -t: everything start-up would check short of binding ports, the
 * passwd-file included (parsed whole, master users present). */
static int
test_config(struct store_daemon *sd, const char *path)
{
	char note[200];
	struct tls_server **tls;
	const char *error = NULL;
	unsigned n = listener_count(&sd->cf);

	if ((tls = build_tls(&sd->cf, n, &error)) == NULL) {
		fprintf(stderr, "ringstore: %s: %s\n", path, error);
		return 1;
	}
	free_tls(tls, n);
	if (relay_conf_enabled(&sd->cf.relay)) {
		struct relay *r = relay_new(
		    &(struct relay_opts){ .conf = &sd->cf.relay,
			.mail_root = sd->cf.storage.mail_root },
		    &error);

		if (r == NULL) {
			fprintf(stderr, "ringstore: %s: %s\n", path, error);
			return 1;
		}
		relay_free(&r);
	}
	if ((sd->srv.auth = open_auth(&sd->cf, &error)) == NULL) {
		fprintf(stderr, "ringstore: %s\n", error);
		return 1;
	}
	printf("ringstore: configuration file %s test is successful (%zu "
	       "users)\n",
	    path, auth_service_count(sd->srv.auth));
	/* a warning only: the service's own limit counts at start-up */
	if (conn_limits_plan(sd->cf.limits.max_sessions,
		sd->cf.limits.fd_reserve, 1, note, sizeof(note), &error) == -1)
		fprintf(stderr, "ringstore: warning: %s\n", error);
	else
		printf("ringstore: %s\n", note);
	return 0;
}

static int
start_pools(struct store_daemon *sd, const char **error_r)
{
	const struct rs_config *cf = &sd->cf;

	if ((sd->srv.auth = open_auth(cf, error_r)) == NULL ||
	    auth_service_start(sd->srv.auth, error_r) == -1)
		return -1;
	sd->srv.folders = maildir_cache_new(RS_FOLDER_CACHE_ENTRIES,
	    RS_FOLDER_CACHE_BYTES, MAILDIR_CACHE_SETTLE_MS);
	if (sd->srv.folders == NULL) {
		*error_r = "cannot allocate the folder cache";
		return -1;
	}
	sd->srv.store = pool_new((unsigned)cf->storage.threads,
	    (unsigned)cf->storage.queue, error_r);
	if (sd->srv.store == NULL)
		return -1;
	sd->srv.login = pool_new((unsigned)cf->storage.login_threads,
	    (unsigned)cf->storage.queue, error_r);
	return sd->srv.login ? 0 : -1;
}

/* The relay spool and its queue runner, when a smarthost is configured
 * (backend/relay.h); the runner starts on worker 0. */
static int
start_relay(struct store_daemon *sd, struct metrics *m, const char **error_r)
{
	const struct rs_config *cf = &sd->cf;
	char *dir;
	int rc;

	if (!relay_conf_enabled(&cf->relay))
		return 0;
	if ((dir = relay_spool_path(&cf->relay, cf->storage.mail_root)) ==
	    NULL) {
		*error_r = "out of memory";
		return -1;
	}
	rc = spool_open(dir, &sd->srv.spool, error_r);
	free(dir);
	if (rc == -1)
		return -1;
	sd->srv.relay = relay_new(&(struct relay_opts){ .conf = &cf->relay,
				      .mail_root = cf->storage.mail_root,
				      .spool = sd->srv.spool,
				      .store = sd->srv.store,
				      .metrics = m },
	    error_r);
	return sd->srv.relay ? 0 : -1;
}

static int
register_metrics(struct rs_server *srv, struct metrics *m)
{
	struct rs_metrics *x = &srv->m;

	x->sessions = metrics_gauge(m, "imap_sessions",
	    "IMAP sessions open now.", NULL);
	x->commands = metrics_counter(m, "imap_commands_total",
	    "IMAP commands received.", NULL);
	x->bad_commands = metrics_counter(m, "imap_bad_commands_total",
	    "IMAP commands answered BAD.", NULL);
	x->store_jobs = metrics_counter(m, "store_jobs_total",
	    "Jobs queued on the store pool.", NULL);
	x->store_busy = metrics_counter(m, "store_jobs_refused_total",
	    "Jobs refused because the store queue was full.", NULL);
	x->master_refused = metrics_counter(m, "imap_master_refused_total",
	    "Master-user logins refused (authzid not allowed).", NULL);
	x->search_limit = metrics_counter(m, "imap_search_stopped_total",
	    "SEARCH commands stopped before the end.", "reason=\"limit\"");
	x->search_gone = metrics_counter(m, "imap_search_stopped_total",
	    "SEARCH commands stopped before the end.", "reason=\"disconnect\"");
	if (pop3_register_metrics(srv, m) == -1)
		return -1;
	if (rs_submit_metrics_init(m, &srv->submit_m) == -1)
		return -1;
	for (unsigned i = 0; i < RS_SERVICES; i++)
		if (services[i]->login != NULL &&
		    login_metrics_init(m, services[i]->login,
			&srv->login_m[i]) == -1)
			return -1;
	if (rs_lmtp_metrics_init(srv, m) == -1)
		return -1;
	if (x->sessions < 0 || x->commands < 0 || x->bad_commands < 0 ||
	    x->store_jobs < 0 || x->store_busy < 0 || x->master_refused < 0 ||
	    x->search_limit < 0 || x->search_gone < 0)
		return -1;
	return 0;
}

/* The folder snapshot cache: how often SELECT/NOOP skipped a rescan. */
static int
register_folder_metrics(struct store_daemon *sd, struct metrics *m)
{
	struct sd_metrics *a = &sd->am;
	const char *h = "Folder opens and syncs by snapshot cache result.";

	a->folders_hit = metrics_counter_set(m, "folder_cache_total", h,
	    "result=\"hit\"");
	a->folders_miss = metrics_counter_set(m, "folder_cache_total", h,
	    "result=\"miss\"");
	a->folders_unsettled = metrics_counter_set(m,
	    "folder_cache_unsettled_total",
	    "Scans not kept: the folder changed within the settle time.", NULL);
	a->folders_evicted = metrics_counter_set(m,
	    "folder_cache_evictions_total",
	    "Snapshots dropped for the entry or byte bound.", NULL);
	a->folders_entries = metrics_gauge_set(m, "folder_cache_entries",
	    "Folder snapshots held.", NULL);
	a->folders_bytes = metrics_gauge_set(m, "folder_cache_bytes",
	    "Bytes held by folder snapshots.", NULL);
	for (int i = 0; i < 2; i++) {
		const char *lane = i ? "lane=\"login\"" : "lane=\"mailbox\"";

		a->pool_queued[i] = metrics_gauge_set(m, "store_queue",
		    "Store pool jobs waiting for a thread.", lane);
		a->pool_running[i] = metrics_gauge_set(m, "store_running",
		    "Store pool jobs on a thread now.", lane);
		if (a->pool_queued[i] < 0 || a->pool_running[i] < 0)
			return -1;
	}
	if (a->folders_hit < 0 || a->folders_miss < 0 ||
	    a->folders_unsettled < 0 || a->folders_evicted < 0 ||
	    a->folders_entries < 0 || a->folders_bytes < 0)
		return -1;
	return metrics_collector(m, collect_folders, sd);
}

static void
collect_folders(struct metrics *m, void *arg)
{
	struct store_daemon *sd = arg;
	struct sd_metrics *a = &sd->am;
	struct maildir_cache_stats st;

	maildir_cache_stats(sd->srv.folders, &st);
	metrics_set(m, a->folders_hit, (double)st.hits);
	metrics_set(m, a->folders_miss, (double)st.misses);
	metrics_set(m, a->folders_unsettled, (double)st.unsettled);
	metrics_set(m, a->folders_evicted, (double)st.evictions);
	metrics_set(m, a->folders_entries, (double)st.entries);
	metrics_set(m, a->folders_bytes, (double)st.bytes);
	for (int i = 0; i < 2; i++) {
		struct pool_stats ps;

		pool_stats(i ? sd->srv.login : sd->srv.store, &ps);
		metrics_set(m, a->pool_queued[i], (double)ps.queued);
		metrics_set(m, a->pool_running[i], (double)ps.running);
	}
}

/* ---- reloads (main thread) ---------------------------------------- */

/* SIGHUP: certificates and users. Listen addresses, limits and paths need
 * a restart; a change to them is logged, not applied. A file that does
 * not load keeps what runs and says why. */
static void
reload(struct daemon *d)
{
	struct store_daemon *sd = d->ctx;
	struct rs_config ncf;
	struct cfg_error err;

	if (rs_config_load(sd->config_path, &ncf, &err) == -1) {
		log_error(0, "reload.failed", "error=\"%s\" kept=old", err.msg);
	} else {
		if (strcmp(ncf.auth.passwd_file, sd->cf.auth.passwd_file) !=
			0 ||
		    listener_count(&ncf) != sd->n)
			log_warn(0, "reload.partial",
			    "note=\"passwd_file or "
			    "listeners changed; restart to apply\"");
		else
			reload_tls(sd, d, &ncf);
		rs_config_free(&ncf);
	}
	auth_service_reload(sd->srv.auth, "signal");
}

/* Every auth.reload_check: pick up an edited passwd-file by itself. */
static void
tick(struct daemon *d)
{
	struct store_daemon *sd = d->ctx;

	auth_service_tick(sd->srv.auth);
}

/* Every listener of every service, in rs_config_lists() order. */
static unsigned
listener_count(const struct rs_config *cf)
{
	struct rs_list lists[RS_SERVICES];
	unsigned n = 0;

	rs_config_lists(cf, lists);
	for (unsigned i = 0; i < RS_SERVICES; i++)
		n += lists[i].n;
	return n;
}

/* New certificates for new connections; sessions keep theirs. */
static void
reload_tls(struct store_daemon *sd, struct daemon *d,
    const struct rs_config *ncf)
{
	struct tls_server **tls;
	const char *error = NULL;

	if ((tls = build_tls(ncf, sd->n, &error)) == NULL ||
	    listen_set_swap_tls(sd->srv.lset, d, tls, NULL, &error) == -1) {
		if (tls != NULL)
			free_tls(tls, sd->n);
		log_error(0, "reload.failed", "error=\"%s\" kept=old", error);
		return;
	}
	free_tls(sd->tls, sd->n);
	sd->tls = tls;
	log_info(0, "reload.done", "certificates=%s",
	    sd->cf.tls.ncertificates ? "reloaded" : "none");
}

/* One context per listener (for its service's ALPN), shared by the
 * listeners of a service; NULL entries without certificates. NULL with
 * *error_r naming the file. */
static struct tls_server **
build_tls(const struct rs_config *cf, unsigned n, const char **error_r)
{
	struct tls_server **tls = calloc(n + 1, sizeof(*tls));
	struct rs_list lists[RS_SERVICES];
	unsigned k = 0;

	if (tls == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	rs_config_lists(cf, lists);
	for (unsigned i = 0; i < RS_SERVICES; i++) {
		struct tls_server *ts = NULL;

		if (lists[i].n > 0 &&
		    rs_tls_build(cf, lists[i].alpn, &ts, error_r) == -1) {
			free_tls(tls, n);
			return NULL;
		}
		for (unsigned r = 0; r < lists[i].n && k < n; r++, k++)
			if ((tls[k] = ts) != NULL)
				tls_server_ref(ts);
		tls_server_unref(&ts);
	}
	return tls;
}

static void
free_tls(struct tls_server **tls, unsigned n)
{
	if (tls == NULL)
		return;
	for (unsigned i = 0; i < n; i++)
		tls_server_unref(&tls[i]);
	free(tls);
}

/* The login core's rules for one listener, from the config. */
static void
login_settings_of(const struct store_daemon *sd, const struct listener_conf *c,
    struct login_settings *set)
{
	const struct rs_config *cf = &sd->cf;

	*set = (struct login_settings){
		.listener = c,
		.login_timeout = cf->limits.login_timeout,
		.fail_delay = cf->limits.login_fail_delay,
		.max_fails = (unsigned)cf->limits.login_fails,
		.max_bad = (unsigned)cf->limits.bad_commands,
		.line_max = cf->limits.line_max_login,
		.legacy_mechanisms = cf->auth.legacy_mechanisms,
		.server_name = "ringstore",
		.message_max = cf->limits.message_max,
	};
	set->scram_secret = auth_service_scram_secret(sd->srv.auth,
	    &set->scram_secret_len);
}

/* One listener r of service id: its context, and the login core's view
 * of it when the service has a login phase. */
static void
listener_of(struct store_daemon *sd, unsigned r, unsigned id,
    const struct listener_conf *c, struct listen_set_entry *e)
{
	const struct rs_service *svc = services[id];

	sd->listeners[r] = (struct rs_listener){ .srv = &sd->srv,
		.conf = c,
		.svc = svc,
		.index = r };
	*e = (struct listen_set_entry){ .name = c->name,
		.addr = &c->listen,
		.handler = svc->handler,
		.ctx = &sd->listeners[r],
		.conf = c,
		.tls = c->tls };
	if (svc->login == NULL)
		return;
	login_settings_of(sd, c, &sd->login_sets[r]);
	sd->logins[r] = (struct login_listener){ .proto = svc->login,
		.hooks = &rs_login_hooks,
		.set = &sd->login_sets[r],
		.metrics = &sd->srv.login_m[id],
		.workers = sd->login_workers,
		.ctx = &sd->listeners[r] };
	e->handler = login_handler();
	e->ctx = &sd->logins[r];
}

static int
open_listeners(struct store_daemon *sd, struct daemon *d, const char **error_r)
{
	struct rs_list lists[RS_SERVICES];
	struct listen_set_entry *e;
	unsigned n = listener_count(&sd->cf), r = 0;

	sd->n = n;
	if ((sd->tls = build_tls(&sd->cf, n, error_r)) == NULL)
		return -1;
	if ((e = calloc(n + 1, sizeof(*e))) == NULL ||
	    (sd->listeners = calloc(n + 1, sizeof(*sd->listeners))) == NULL ||
	    (sd->logins = calloc(n + 1, sizeof(*sd->logins))) == NULL ||
	    (sd->login_sets = calloc(n + 1, sizeof(*sd->login_sets))) == NULL ||
	    (sd->login_workers = calloc(d->nworkers + 1,
		 sizeof(*sd->login_workers))) == NULL) {
		free(e);
		*error_r = "out of memory";
		return -1;
	}
	rs_config_lists(&sd->cf, lists);
	for (unsigned i = 0; i < RS_SERVICES; i++)
		for (unsigned k = 0; k < lists[i].n; k++, r++)
			listener_of(sd, r, i, &lists[i].l[k], &e[r]);
	sd->srv.lset = listen_set_open(d, e, n, sd->tls, error_r);
	free(e);
	return sd->srv.lset ? 0 : -1;
}

static int
worker_init(struct daemon *d, struct loop *l, unsigned i)
{
	struct store_daemon *sd = d->ctx;
	struct rs_worker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -1;
	w->srv = &sd->srv;
	w->loop = l;
	if ((w->outbox = pool_outbox_new(l)) == NULL) {
		free(w);
		return -1;
	}
	/* From here on worker_exit() cleans up, whatever happens. */
	loop_set_ctx(l, w);
	if (imap_idle_init(w) == -1 ||
	    (w->login = login_worker_new(l, auth_service_users(sd->srv.auth),
		 auth_service_pool(sd->srv.auth))) == NULL)
		return -1;
	sd->login_workers[i] = w->login;
	if (i == 0 && sd->srv.relay != NULL &&
	    relay_worker_start(sd->srv.relay, l, w->outbox) == -1)
		return -1;
	return listen_set_worker(sd->srv.lset, l, i);
}

/* On the worker's thread: its loop has stopped (every connection is
 * gone) and is not freed yet. Wait for the jobs still out, let their
 * answers free the husks of closed sessions, then free the worker. */
static void
worker_exit(struct daemon *d, struct loop *l, unsigned i)
{
	struct rs_worker *w = loop_ctx(l);

	if (w == NULL) /* worker_init failed before it made one */
		return;
	loop_set_ctx(l, NULL);
	if (i == 0)
		relay_worker_stop(w->srv->relay);
	/* first the store's answers (a login's Maildir job looks for its
	 * login session), then the verifications still out */
	pool_outbox_close(&w->outbox);
	login_worker_free(&w->login);
	/* after the husks: their session_free() leaves their folders */
	imap_idle_free(w);
	for (unsigned b = 0; b < RS_SESSION_BUCKETS; b++)
		if (w->sessions[b] != NULL)
			log_error(0, "worker.leak", "bucket=%u", b);
	free(w);
}

static void
sd_free(struct store_daemon *sd, struct daemon *d)
{
	listen_set_free(&sd->srv.lset);
	/* Loops are gone: no answer can be posted any more. */
	pool_free(&sd->srv.store);
	pool_free(&sd->srv.login);
	relay_free(&sd->srv.relay);
	spool_free(&sd->srv.spool);
	maildir_cache_free(&sd->srv.folders);
	auth_service_free(&sd->srv.auth);
	free_tls(sd->tls, sd->n);
	free(sd->listeners);
	free(sd->logins);
	free(sd->login_sets);
	free(sd->login_workers);
	daemon_free(d);
	rs_config_free(&sd->cf);
}

int
main(int argc, char **argv)
{
	struct daemon_args args;
	struct store_daemon sd;
	struct daemon d;
	struct cfg_error err;
	const char *error = NULL;
	int code = 1;

	daemon_args_parse(&args, argc, argv, "ringstore", DEFAULT_CONFIG);
	memset(&sd, 0, sizeof(sd));
	memset(&d, 0, sizeof(d));
	sd.config_path = args.config;
	if (rs_config_load(args.config, &sd.cf, &err) == -1) {
		fprintf(stderr, "ringstore: %s\n", err.msg);
		return 1;
	}
	sd.srv.cf = &sd.cf;
	if (args.test) {
		code = test_config(&sd, args.config);
		goto done;
	}
	if (daemon_conf_log_open("ringstore", &sd.cf.daemon) == -1)
		goto done;
	if (loop_probe(&error) == -1 || start_pools(&sd, &error) == -1)
		goto failed;
	d.name = "ringstore";
	d.nworkers = daemon_conf_workers(&sd.cf.daemon);
	if (daemon_metrics_new(&d) == -1 ||
	    register_metrics(&sd.srv, d.metrics) == -1 ||
	    auth_service_metrics(sd.srv.auth, d.metrics) == -1 ||
	    register_folder_metrics(&sd, d.metrics) == -1)
		fatal("metrics registry: out of memory");
	sd.metrics = d.metrics;
	/* one descriptor a session; mail files come out of the reserve */
	if (conn_limits_init(&sd.limits, "ringstore", sd.cf.limits.max_sessions,
		sd.cf.limits.fd_reserve, 1, d.metrics, &error) == -1)
		goto failed;
	if (start_relay(&sd, d.metrics, &error) == -1 ||
	    open_listeners(&sd, &d, &error) == -1 ||
	    daemon_admin(&d, &sd.cf.admin.listen, NULL, NULL, &error) == -1)
		goto failed;
	d.pid_file = sd.cf.daemon.pid_file;
	d.drain_ms = sd.cf.daemon.drain_timeout;
	d.ctx = &sd;
	d.worker_init = worker_init;
	d.worker_exit = worker_exit;
	d.reload = reload;
	d.tick = tick;
	d.tick_ms = sd.cf.auth.reload_check;
	daemon_conf_loop(&sd.cf.daemon, &d.loop_conf);
	d.loop_conf.out_high = sd.cf.limits.output_buffer;
	d.loop_conf.handshake_timeout_ms = sd.cf.limits.handshake_timeout;
	d.loop_conf.limits = &sd.limits;
	log_info(0, "daemon.config",
	    "file=%s listeners=%u workers=%u mail_root=%s", args.config, sd.n,
	    d.nworkers, sd.cf.storage.mail_root);
	code = daemon_run(&d);
	goto done;
failed:
	log_error(0, "daemon.failed", "error=\"%s\"",
	    error ? error : "out of memory");
	fprintf(stderr, "ringstore: %s\n", error ? error : "out of memory");
	code = 1;
done:
	sd_free(&sd, &d);
	return code;
}
