/*
 * auth_service.c - auth in a running daemon (auth/auth_service.h): the
 * passwd-file back-end and the verify pool made from an `auth { }`
 * section, master users checked against the file, SCRAM's secret read
 * from its file, reloads on SIGHUP and when the file changes, and the
 * metrics that show them. Each daemon links this instead of keeping a
 * copy of its own.
 *
 * Relies on auth_passdb_reload() swapping tables whole (a refused file
 * keeps the old one) and on the pool's counters being atomics, read by
 * the scrape collector on whatever thread scrapes. Everything else runs
 * on the main thread. Must never: drop the users in use because a new
 * file is broken, log a password or key material, or start with a
 * master user the file does not have.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "auth/auth.h"
#include "auth/auth_conf.h"
#include "auth/auth_service.h"
#include "core/log.h"
#include "core/metrics.h"

#define SECRET_FILE_MAX 4096 /* bytes read from auth.scram_secret_file */
#define SECRET_FILE_MIN 16   /* shorter is refused: guessable */

/* Metric ids; the passdb ones are set by the main thread at each load,
 * the others copied from the pool by the collector. */
struct auth_service_metrics {
	int submitted, verifies, cache_hits, cache_misses, overflows, lost;
	int result[3]; /* per enum auth_status */
	int queued;
	int users, users_version, reload_ok, reload_failed;
	int http[7]; /* auth_http_requests_total by result, connects, ... */
};

/* The pool's back-end with the HTTP hook: master users are verified
 * against the passwd-file, everyone else by the hook. */
struct hook_backend {
	struct auth_backend backend; /* first: the ops cast back */
	struct auth_service *svc;
};

struct auth_service {
	const struct auth_conf *conf;
	struct hook_backend hook;
	struct auth_scheme_opts schemes;
	struct auth_service_opts opts;
	struct auth_passdb *passdb;
	struct auth_http *http; /* the HTTP hook, when auth.http_url is set */
	struct auth_pool *pool;
	uint8_t scram_secret[SHA256_DIGEST_LENGTH];
	size_t scram_secret_len; /* 0: none configured */
	struct metrics *metrics; /* NULL until auth_service_metrics() */
	struct auth_service_metrics m;
	uint64_t n_reload_ok, n_reload_failed; /* main thread only */
};

/* Error texts outlive a service that failed to start, so they are not
 * kept in it; per thread, valid until the thread's next error here. */
static __thread char service_errbuf[600];

static void passdb_warn(void *ctx, const char *msg);
static int passdb_check_user(void *ctx, const char *user,
    const char **reason_r);
static int read_secret(struct auth_service *svc, const char *path,
    const char **error_r);
static int open_http(struct auth_service *svc, const char **error_r);
static enum auth_lookup hook_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r);
static enum auth_status hook_verify_login(struct auth_backend *b,
    const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client, const struct auth_login_info *info,
    struct auth_entry **entry_r, uint32_t *wait_ms_r, const char **error_r);
static int register_pool_metrics(struct auth_service *svc, struct metrics *m);
static int register_http_metrics(struct auth_service *svc, struct metrics *m);
static void collect(struct metrics *m, void *arg);
static void set_passdb_gauges(struct auth_service *svc);
static void set_counter(struct auth_service *svc, int id, uint64_t *n);

/* ---- start-up ------------------------------------------------------- */

struct auth_service *
auth_service_new(const struct auth_conf *conf,
    const struct auth_service_opts *opts, const char **error_r)
{
	struct auth_service *svc = calloc(1, sizeof(*svc));
	struct auth_passdb_conf pc = { 0 };

	if (svc == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	svc->conf = conf;
	if (opts != NULL)
		svc->opts = *opts;
	pc.path = conf->passwd_file;
	pc.allow_plaintext = conf->allow_plaintext;
	pc.warn = passdb_warn;
	pc.check_user = passdb_check_user;
	pc.check_ctx = svc;
	if ((svc->passdb = auth_passdb_new(&pc, error_r)) == NULL ||
	    auth_service_check_masters(svc, error_r) == -1)
		goto fail;
	if (conf->scram_secret_file != NULL &&
	    read_secret(svc, conf->scram_secret_file, error_r) == -1)
		goto fail;
	if (conf->http_url != NULL && open_http(svc, error_r) == -1)
		goto fail;
	if (conf->legacy_mechanisms)
		log_warn(0, "auth.legacy",
		    "mechanisms=CRAM-MD5 warning=\"it "
		    "needs plaintext-equivalent secrets: only users stored "
		    "as {PLAIN} or {CLEARTEXT} can use it\"");
	return svc;
fail:
	auth_service_free(&svc);
	return NULL;
}

int
auth_service_start(struct auth_service *svc, const char **error_r)
{
	const struct auth_conf *conf = svc->conf;
	struct auth_pool_conf ac = { 0 };

	ac.backend = svc->http != NULL ? &svc->hook.backend :
					 auth_passdb_backend(svc->passdb);
	ac.schemes.allow_plaintext = conf->allow_plaintext;
	auth_scheme_opts_default(&ac.schemes);
	svc->schemes = ac.schemes;
	ac.dummy_scheme = (enum auth_scheme)conf->default_scheme;
	ac.threads = (unsigned)conf->threads;
	ac.queue_max = (unsigned)conf->queue;
	ac.cache_size = (unsigned)conf->cache_size;
	ac.cache_ttl_ms = conf->cache_ttl;
	ac.cache_off = conf->cache_ttl == 0;
	svc->pool = auth_pool_new(&ac, error_r);
	return svc->pool ? 0 : -1;
}

static const struct auth_backend_ops hook_ops = {
	.name = "http",
	.lookup_nonblocking = false,
	.lookup = hook_lookup,
	.verify_login = hook_verify_login,
};

/* Passwords go to the HTTP hook; the file still names master users (and
 * verifies them) and serves the mechanisms that need a stored secret
 * (SCRAM). */
static int
open_http(struct auth_service *svc, const char **error_r)
{
	const struct auth_conf *conf = svc->conf;
	struct auth_http_conf hc = {
		.url = conf->http_url,
		.timeout_ms = (unsigned)conf->http_timeout,
		.max_connections = (unsigned)conf->http_connections,
		.headers = (const char *const *)conf->http_headers,
		.nheaders = conf->nhttp_headers,
	};
	const char *why = NULL;

	if ((svc->http = auth_http_new(&hc, &why)) == NULL) {
		snprintf(service_errbuf, sizeof(service_errbuf),
		    "auth.http_url: %s", why);
		*error_r = service_errbuf;
		return -1;
	}
	svc->hook.backend.ops = &hook_ops;
	svc->hook.svc = svc;
	log_info(0, "auth.http", "url=\"%s\" connections=%lld timeout_ms=%llu",
	    conf->http_url, (long long)conf->http_connections,
	    (unsigned long long)conf->http_timeout);
	return 0;
}

static enum auth_lookup
hook_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r)
{
	struct hook_backend *hb = (struct hook_backend *)b;
	struct auth_backend *hook = auth_http_backend(hb->svc->http);

	return hook->ops->lookup(hook, user, entry_r, error_r);
}

/* On a verify thread. A master's password is the passwd-file's business
 * (ringgate logging in here must not depend on the site's hook). */
static enum auth_status
hook_verify_login(struct auth_backend *b, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    const struct auth_login_info *info, struct auth_entry **entry_r,
    uint32_t *wait_ms_r, const char **error_r)
{
	struct hook_backend *hb = (struct hook_backend *)b;
	struct auth_service *svc = hb->svc;
	struct auth_backend *hook = auth_http_backend(svc->http);
	struct auth_entry *e = NULL;
	const char *err;

	if (!auth_conf_master(svc->conf, user))
		return hook->ops->verify_login(hook, user, password, pwlen,
		    client, info, entry_r, wait_ms_r, error_r);
	if (auth_lookup(auth_passdb_backend(svc->passdb), user, &e, &err) !=
	    AUTH_LOOKUP_FOUND)
		return AUTH_FAIL;
	if (e->password == NULL ||
	    auth_scheme_verify(e->password, password, pwlen, &svc->schemes,
		&err) != AUTH_VERIFY_OK) {
		auth_entry_unref(&e);
		return AUTH_FAIL;
	}
	*entry_r = e;
	return AUTH_OK;
}

static void
passdb_warn(void *ctx, const char *msg)
{
	log_warn(0, "auth.passdb", "warning=\"%s\"", msg);
}

/* Master users own no mailbox and act for others: the daemon's rule for
 * names (ringstore's @domain) is not theirs. */
static int
passdb_check_user(void *ctx, const char *user, const char **reason_r)
{
	struct auth_service *svc = ctx;

	if (svc->opts.check_user == NULL || auth_conf_master(svc->conf, user))
		return 0;
	return svc->opts.check_user(svc->opts.check_ctx, user, reason_r);
}

/* Every master user must be in the passwd-file: a typo would otherwise
 * show up only as refused logins at ringgate. */
int
auth_service_check_masters(struct auth_service *svc, const char **error_r)
{
	const struct auth_conf *conf = svc->conf;
	struct auth_backend *b = auth_passdb_backend(svc->passdb);

	for (unsigned i = 0; i < conf->nmaster_users; i++) {
		struct auth_entry *e = NULL;
		const char *err = NULL;

		if (auth_lookup(b, conf->master_users[i], &e, &err) ==
		    AUTH_LOOKUP_FOUND) {
			auth_entry_unref(&e);
			continue;
		}
		snprintf(service_errbuf, sizeof(service_errbuf),
		    "%s:%d: auth.master_users: '%s' is not in %s",
		    conf->loc.file, conf->loc.line, conf->master_users[i],
		    conf->passwd_file);
		*error_r = service_errbuf;
		return -1;
	}
	return 0;
}

/*
 * The secret is SHA-256 of the file's bytes (trailing white space
 * dropped), so any length from SECRET_FILE_MIN to SECRET_FILE_MAX works,
 * e.g. `openssl rand -base64 32`. Every instance given the same file
 * shows unknown users the same fake salts.
 */
static int
read_secret(struct auth_service *svc, const char *path, const char **error_r)
{
	char buf[SECRET_FILE_MAX + 1];
	const char *why = NULL;
	struct stat st;
	ssize_t n = -1;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if ((n = read(fd, buf, sizeof(buf))) == -1)
		why = strerror(errno);
	else if (n > SECRET_FILE_MAX)
		why = "longer than 4096 bytes";
	if (fd != -1)
		close(fd);
	while (why == NULL && n > 0 &&
	    (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
		buf[n - 1] == '\t'))
		n--;
	if (why == NULL && n < SECRET_FILE_MIN)
		why = "shorter than 16 bytes";
	if (why == NULL &&
	    SHA256((const uint8_t *)buf, (size_t)n, svc->scram_secret) == NULL)
		why = "SHA-256 failed";
	OPENSSL_cleanse(buf, sizeof(buf));
	if (why == NULL) {
		svc->scram_secret_len = SHA256_DIGEST_LENGTH;
		if (st.st_mode & S_IROTH)
			log_warn(0, "auth.scram_secret",
			    "path=%s warning=\"readable by everyone\"", path);
		return 0;
	}
	snprintf(service_errbuf, sizeof(service_errbuf),
	    "auth.scram_secret_file %s: %s", path, why);
	*error_r = service_errbuf;
	return -1;
}

/* ---- metrics -------------------------------------------------------- */

int
auth_service_metrics(struct auth_service *svc, struct metrics *m)
{
	struct auth_service_metrics *a = &svc->m;

	a->users = metrics_gauge_set(m, "passdb_users",
	    "Users in the passwd-file table in use.", NULL);
	a->users_version = metrics_gauge_set(m, "passdb_version",
	    "Loads of the passwd-file table in use (1 = first).", NULL);
	a->reload_ok = metrics_counter_set(m, "passdb_reloads_total",
	    "passwd-file reloads by result.", "result=\"ok\"");
	a->reload_failed = metrics_counter_set(m, "passdb_reloads_total",
	    "passwd-file reloads by result.", "result=\"refused\"");
	if (a->users < 0 || a->users_version < 0 || a->reload_ok < 0 ||
	    a->reload_failed < 0 || register_pool_metrics(svc, m) == -1 ||
	    (svc->http != NULL && register_http_metrics(svc, m) == -1))
		return -1;
	svc->metrics = m;
	set_passdb_gauges(svc);
	return svc->pool ? metrics_collector(m, collect, svc) : 0;
}

/* The pool keeps its own counters; collect() copies them in. */
static int
register_pool_metrics(struct auth_service *svc, struct metrics *m)
{
	static const char *const res[3] = { "result=\"ok\"", "result=\"fail\"",
		"result=\"tempfail\"" };
	struct auth_service_metrics *a = &svc->m;
	int bad = 0;

	a->submitted = metrics_counter_set(m, "auth_requests_total",
	    "Password verifications asked of the auth pool.", NULL);
	a->verifies = metrics_counter_set(m, "auth_hashes_total",
	    "Password hashes computed (real or dummy).", NULL);
	a->cache_hits = metrics_counter_set(m, "auth_cache_total",
	    "Positive auth cache lookups.", "result=\"hit\"");
	a->cache_misses = metrics_counter_set(m, "auth_cache_total",
	    "Positive auth cache lookups.", "result=\"miss\"");
	a->overflows = metrics_counter_set(m, "auth_queue_refused_total",
	    "Verifications refused because the auth queue was full.", NULL);
	a->lost = metrics_counter_set(m, "auth_results_lost_total",
	    "Verification results that could not be delivered.", NULL);
	for (int i = 0; i < 3; i++)
		bad |= (a->result[i] = metrics_counter_set(m,
			    "auth_results_total",
			    "Verification answers by result.", res[i])) < 0;
	a->queued = metrics_gauge_set(m, "auth_queue",
	    "Verifications waiting for a pool thread.", NULL);
	if (bad || a->submitted < 0 || a->verifies < 0 || a->cache_hits < 0 ||
	    a->cache_misses < 0 || a->overflows < 0 || a->lost < 0 ||
	    a->queued < 0)
		return -1;
	return 0;
}

static int
register_http_metrics(struct auth_service *svc, struct metrics *m)
{
	static const char *const res[4] = { "result=\"ok\"", "result=\"fail\"",
		"result=\"wait\"", "result=\"tempfail\"" };
	int *id = svc->m.http, bad = 0;

	for (int i = 0; i < 4; i++)
		bad |= (id[i] = metrics_counter_set(m,
			    "auth_http_requests_total",
			    "Logins asked of the HTTP auth hook, by answer "
			    "(wait: a failure with Auth-Wait).",
			    res[i])) < 0;
	bad |= (id[4] = metrics_counter_set(m, "auth_http_connects_total",
		    "Connections opened to the HTTP auth hook.", NULL)) < 0;
	bad |= (id[5] = metrics_counter_set(m, "auth_http_reused_total",
		    "Requests sent on a kept-alive connection.", NULL)) < 0;
	bad |= (id[6] = metrics_counter_set(m, "auth_http_pool_full_total",
		    "Requests refused: every connection to the HTTP auth "
		    "hook stayed busy past the timeout.",
		    NULL)) < 0;
	return bad ? -1 : 0;
}

/* On the scraping thread: the pool's counters are atomics. */
static void
collect(struct metrics *m, void *arg)
{
	struct auth_service *svc = arg;
	struct auth_service_metrics *a = &svc->m;
	struct auth_pool_stats st;

	auth_pool_stats(svc->pool, &st);
	metrics_set(m, a->submitted, (double)st.submitted);
	metrics_set(m, a->verifies, (double)st.verifies);
	metrics_set(m, a->cache_hits, (double)st.cache_hits);
	metrics_set(m, a->cache_misses, (double)st.cache_misses);
	metrics_set(m, a->overflows, (double)st.overflows);
	metrics_set(m, a->lost, (double)st.lost);
	for (int i = 0; i < 3; i++)
		metrics_set(m, a->result[i], (double)st.result[i]);
	metrics_set(m, a->queued, (double)st.queued);
	if (svc->http != NULL) {
		struct auth_http_stats hs;

		auth_http_stats(svc->http, &hs);
		metrics_set(m, a->http[0], (double)hs.ok);
		metrics_set(m, a->http[1],
		    (double)(hs.fail > hs.waits ? hs.fail - hs.waits : 0));
		metrics_set(m, a->http[2], (double)hs.waits);
		metrics_set(m, a->http[3], (double)hs.tempfail);
		metrics_set(m, a->http[4], (double)hs.connects);
		metrics_set(m, a->http[5], (double)hs.reused);
		metrics_set(m, a->http[6], (double)hs.pool_full);
	}
}

static void
set_passdb_gauges(struct auth_service *svc)
{
	if (svc->metrics == NULL)
		return;
	metrics_set(svc->metrics, svc->m.users,
	    (double)auth_passdb_count(svc->passdb));
	metrics_set(svc->metrics, svc->m.users_version,
	    (double)auth_passdb_version(svc->passdb));
}

/* Reload counters live here (main thread) and are copied out whole. */
static void
set_counter(struct auth_service *svc, int id, uint64_t *n)
{
	++*n;
	if (svc->metrics != NULL)
		metrics_set(svc->metrics, id, (double)*n);
}

/* ---- reloads (main thread) ------------------------------------------ */

int
auth_service_reload(struct auth_service *svc, const char *why)
{
	const char *error = NULL;

	if (auth_passdb_reload(svc->passdb, &error) == -1) {
		set_counter(svc, svc->m.reload_failed, &svc->n_reload_failed);
		log_error(0, "passdb.reload_failed",
		    "trigger=%s error=\"%s\" kept=old", why, error);
		return -1;
	}
	/* Cached answers are checked against each entry's serial anyway;
	 * an explicit reload also forgets them, as operators expect. */
	if (svc->pool != NULL)
		auth_pool_cache_flush(svc->pool);
	set_counter(svc, svc->m.reload_ok, &svc->n_reload_ok);
	set_passdb_gauges(svc);
	log_info(0, "passdb.reloaded", "trigger=%s users=%zu version=%llu", why,
	    auth_passdb_count(svc->passdb),
	    (unsigned long long)auth_passdb_version(svc->passdb));
	if (auth_service_check_masters(svc, &error) == -1)
		log_warn(0, "passdb.master_missing", "error=\"%s\"", error);
	return 0;
}

int
auth_service_tick(struct auth_service *svc)
{
	if (!auth_passdb_changed(svc->passdb))
		return 0;
	auth_service_reload(svc, "changed");
	return 1;
}

/* ---- master users --------------------------------------------------- */

enum sasl_verdict
auth_service_authorize(const struct auth_service *svc, const char *authcid,
    const char *authzid, const struct sockaddr *client, const char **why_r)
{
	struct auth_backend *b = auth_passdb_backend(svc->passdb);
	struct auth_entry *e = NULL;
	const char *err = NULL;
	enum sasl_verdict v = SASL_V_AUTHZID;

	*why_r = "ok";
	if (!auth_conf_master(svc->conf, authcid))
		*why_r = "not_master";
	else if (!auth_conf_master_net(svc->conf, client))
		*why_r = "network";
	else if (auth_lookup(b, authzid, &e, &err) != AUTH_LOOKUP_FOUND) {
		*why_r = "unknown_target";
		v = SASL_V_FAIL;
	} else if (e->nologin) {
		*why_r = "nologin_target";
		v = SASL_V_FAIL;
	} else
		v = SASL_V_OK;
	auth_entry_unref(&e);
	return v;
}

/* ---- accessors ------------------------------------------------------ */

struct auth_backend *
auth_service_users(const struct auth_service *svc)
{
	return auth_passdb_backend(svc->passdb);
}

struct auth_pool *
auth_service_pool(const struct auth_service *svc)
{
	return svc->pool;
}

size_t
auth_service_count(const struct auth_service *svc)
{
	return auth_passdb_count(svc->passdb);
}

uint64_t
auth_service_version(const struct auth_service *svc)
{
	return auth_passdb_version(svc->passdb);
}

const uint8_t *
auth_service_scram_secret(const struct auth_service *svc, size_t *len_r)
{
	*len_r = svc->scram_secret_len;
	return svc->scram_secret_len ? svc->scram_secret : NULL;
}

const struct auth_conf *
auth_service_conf(const struct auth_service *svc)
{
	return svc->conf;
}

void
auth_service_free(struct auth_service **svcp)
{
	struct auth_service *svc = svcp ? *svcp : NULL;

	if (svc == NULL)
		return;
	*svcp = NULL;
	auth_pool_free(&svc->pool);
	auth_http_free(&svc->http);
	auth_passdb_free(&svc->passdb);
	OPENSSL_cleanse(svc->scram_secret, sizeof(svc->scram_secret));
	free(svc);
}
