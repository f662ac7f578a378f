/*
 * pool.c - credential verification off the ring threads: a worker pool of
 * auth's own (a core/pool.c instance, so no other kind of work ever queues
 * behind a cold password hash, nor a hash behind it) runs verify jobs from
 * one bounded queue and posts each answer back to the loop that asked,
 * with loop_post(); plus a positive cache so a client that logs in every
 * minute costs one hash per TTL.
 *
 * Relies on: loop_post() being safe from any thread, back-ends whose
 * lookup is thread-safe, and the schemes in scheme.c being re-entrant.
 * Jobs go to the core pool without an outbox: run() owns each one and
 * delivers it itself, so answers may go to a loop or, for a NULL loop,
 * straight to the callback on the pool thread.
 * The cache key is HMAC-SHA256(per-process random secret, user NUL
 * password): the password itself is never stored, and without the secret
 * the keys cannot be tested offline. A cached answer is trusted only while
 * the user's record still carries the serial it was made under, so a
 * reload that changes the user (its password above all) invalidates it.
 *
 * Must never: block the submitting (ring) thread beyond a short mutex,
 * cache anything but a verified password, tell an unknown user from a
 * wrong password in the status, or keep a password copy after its job
 * has been verified (copies are wiped before the answer is posted).
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"
#include "auth/auth_private.h"
#include "core/loop.h"
#include "core/pool.h"

#define POOL_THREADS 2
#define POOL_QUEUE_MAX 256
#define CACHE_SIZE 4096
#define CACHE_TTL_MS 60000
#define CACHE_WAYS 4 /* set-associative: evict the least recently used */
#define KEY_LEN 32

struct job {
	struct pool_job base; /* run = job_main; no outbox */
	struct auth_pool *pool;
	struct loop *loop;
	uint64_t sid;
	auth_result_cb *cb;
	void *ctx;
	struct auth_result res;
	bool has_client, has_key;
	struct sockaddr_storage client;
	uint8_t key[KEY_LEN]; /* cache key, once computed */
	bool has_info;	      /* the login's details below */
	unsigned attempt;
	char protocol[16], method[16];
	char client_host[256], helo[256], mail_from[256], rcpt_to[256];
	char user[AUTH_USER_MAX + 2]; /* one more than valid: too long */
	size_t pwlen;
	char password[]; /* pwlen bytes + NUL, wiped before posting */
};

struct cache_slot {
	uint8_t key[KEY_LEN];
	uint64_t serial;
	uint64_t expires, used; /* ms; expires 0 = free */
};

struct cache {
	pthread_mutex_t lock;
	uint8_t secret[KEY_LEN];
	struct cache_slot *slots;
	size_t set_mask; /* number of sets - 1 */
	uint64_t ttl_ms;
	bool on;
};

struct pool_counters {
	_Atomic uint64_t submitted, verifies, hits, misses, overflows, lost;
	_Atomic uint64_t result[3];
};

struct auth_pool {
	struct auth_verifier v;
	struct auth_scheme_opts schemes;
	char *dummy;
	uint64_t (*now_ms)(void *arg);
	void *now_arg;

	struct pool *workers;
	/* set by auth_pool_free(): jobs still queued are dropped unanswered
	 * instead of hashed */
	atomic_bool stopping;

	struct cache cache;
	struct pool_counters n;
};

/* jobs */
static struct job *job_new(const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client);
static void job_info(struct job *j, const struct auth_login_info *info);
static void job_wipe(struct job *j);
static void job_free(struct job *j);
static void job_deliver(struct auth_pool *p, struct job *j);
static void job_run(struct loop *l, void *arg);
static void job_main(struct pool_job *pj);
static void job_verify(struct auth_pool *p, struct job *j);

/* cache */
static int cache_init(struct cache *c, const struct auth_pool_conf *conf);
static void cache_key(struct cache *c, struct job *j);
static bool cache_answer(struct auth_pool *p, struct job *j);
static bool cache_find(struct auth_pool *p, const uint8_t *key,
    uint64_t *serial_r);
static void cache_store(struct auth_pool *p, const uint8_t *key,
    uint64_t serial);

/* verification */
static void apply_policy(struct auth_entry *e, const struct sockaddr *client,
    struct auth_result *res);
static void login_verify(const struct auth_verifier *v, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    const struct auth_login_info *info, struct auth_result *res);
static void burn_dummy(const struct auth_verifier *v, const char *password,
    size_t pwlen);
static void backend_verify(const struct auth_verifier *v, struct auth_entry *e,
    const char *password, size_t pwlen, const struct sockaddr *client,
    struct auth_result *res);
static uint64_t clock_ms(void *arg);

/* ---- public ----------------------------------------------------------- */

struct auth_pool *
auth_pool_new(const struct auth_pool_conf *conf, const char **error_r)
{
	struct auth_pool *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	p->schemes = conf->schemes;
	auth_scheme_opts_default(&p->schemes);
	p->now_ms = conf->now_ms ? conf->now_ms : clock_ms;
	p->now_arg = conf->now_arg;
	if (cache_init(&p->cache, conf) == -1) {
		*error_r = "out of memory";
		goto fail;
	}
	if (auth_scheme_dummy(conf->dummy_scheme, &p->schemes, &p->dummy,
		error_r) == -1)
		goto fail;
	p->v = (struct auth_verifier){ .backend = conf->backend,
		.schemes = &p->schemes,
		.dummy_hash = p->dummy };
	p->workers = pool_new(conf->threads ? conf->threads : POOL_THREADS,
	    conf->queue_max ? conf->queue_max : POOL_QUEUE_MAX, error_r);
	if (p->workers == NULL)
		goto fail;
	return p;
fail:
	auth_pool_free(&p);
	return NULL;
}

void
auth_pool_free(struct auth_pool **pp)
{
	struct auth_pool *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	/* Jobs a thread already took finish and answer; pool_free() hands
	 * the queued ones to job_main(), which now drops them. */
	atomic_store(&p->stopping, true);
	pool_free(&p->workers);
	if (p->dummy != NULL) {
		OPENSSL_cleanse(p->dummy, strlen(p->dummy));
		free(p->dummy);
	}
	OPENSSL_cleanse(&p->cache.secret, sizeof(p->cache.secret));
	free(p->cache.slots);
	pthread_mutex_destroy(&p->cache.lock);
	free(p);
}

int
auth_pool_submit(struct auth_pool *p, struct loop *l, uint64_t sid,
    const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client, auth_result_cb *cb, void *ctx)
{
	return auth_pool_submit_login(p, l, sid, user, password, pwlen, client,
	    NULL, cb, ctx);
}

int
auth_pool_submit_login(struct auth_pool *p, struct loop *l, uint64_t sid,
    const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client, const struct auth_login_info *info,
    auth_result_cb *cb, void *ctx)
{
	struct job *j;

	if (pwlen > AUTH_PASSWORD_MAX)
		pwlen = AUTH_PASSWORD_MAX + 1; /* verified as given: no match */
	if ((j = job_new(user, password, pwlen, client)) == NULL)
		return -1;
	if (info != NULL)
		job_info(j, info);
	j->pool = p;
	j->loop = l;
	j->sid = sid;
	j->cb = cb;
	j->ctx = ctx;
	j->base.run = job_main;
	j->base.sid = sid;
	atomic_fetch_add(&p->n.submitted, 1);

	/* An in-memory back-end makes the cache probe cheap enough for the
	 * ring thread, and a hit then never waits behind queued hashes. */
	if (p->cache.on && p->v.backend->ops->lookup_nonblocking &&
	    cache_answer(p, j)) {
		job_deliver(p, j);
		return 0;
	}
	/* One flow: verifications run in the order they came. */
	if (pool_submit(p->workers, NULL, &j->base) == -1) {
		atomic_fetch_add(&p->n.overflows, 1);
		j->res.status = AUTH_TEMPFAIL;
		j->res.reason = AUTH_R_OVERFLOW;
		job_deliver(p, j);
	}
	return 0;
}

void
auth_pool_cache_flush(struct auth_pool *p)
{
	size_t n = (p->cache.set_mask + 1) * CACHE_WAYS;

	if (p->cache.slots == NULL)
		return;
	pthread_mutex_lock(&p->cache.lock);
	OPENSSL_cleanse(p->cache.slots, n * sizeof(*p->cache.slots));
	pthread_mutex_unlock(&p->cache.lock);
}

void
auth_pool_stats(struct auth_pool *p, struct auth_pool_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->submitted = atomic_load(&p->n.submitted);
	st->verifies = atomic_load(&p->n.verifies);
	st->cache_hits = atomic_load(&p->n.hits);
	st->cache_misses = atomic_load(&p->n.misses);
	st->overflows = atomic_load(&p->n.overflows);
	st->lost = atomic_load(&p->n.lost);
	for (int i = 0; i < 3; i++)
		st->result[i] = atomic_load(&p->n.result[i]);
	st->queued = pool_queued(p->workers);
}

/* ---- verification ----------------------------------------------------- */

void
auth_verify(const struct auth_verifier *v, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    struct auth_result *res)
{
	auth_verify_login(v, user, password, pwlen, client, NULL, res);
}

void
auth_verify_login(const struct auth_verifier *v, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    const struct auth_login_info *info, struct auth_result *res)
{
	struct auth_entry *e = NULL;
	const char *err = NULL;
	enum auth_verify r;

	memset(res, 0, sizeof(*res));
	res->status = AUTH_FAIL;
	if (v->backend->ops->verify_login != NULL) {
		login_verify(v, user, password, pwlen, client, info, res);
		return;
	}
	switch (auth_lookup(v->backend, user, &e, &err)) {
	case AUTH_LOOKUP_TEMPFAIL:
		res->status = AUTH_TEMPFAIL;
		res->reason = AUTH_R_BACKEND;
		return;
	case AUTH_LOOKUP_NOTFOUND:
		/* Same work as a real user with a wrong password. */
		burn_dummy(v, password, pwlen);
		res->reason = AUTH_R_UNKNOWN;
		return;
	case AUTH_LOOKUP_FOUND:
		break;
	}
	if (e->verify_by_backend) {
		backend_verify(v, e, password, pwlen, client, res);
		return;
	}
	r = pwlen > AUTH_PASSWORD_MAX ?
	    AUTH_VERIFY_MISMATCH :
	    auth_scheme_verify(e->password, password, pwlen, v->schemes, &err);
	switch (r) {
	case AUTH_VERIFY_OK:
		apply_policy(e, client, res);
		break;
	case AUTH_VERIFY_MISMATCH:
		res->reason = AUTH_R_PASSWORD;
		break;
	case AUTH_VERIFY_ERROR:
		/* No usable hash: the failure was quick, pay the cost. */
		burn_dummy(v, password, pwlen);
		res->reason = AUTH_R_NOPASS;
		break;
	}
	if (res->status != AUTH_OK)
		auth_entry_unref(&e);
}

/* The back-end checks the password itself (an LDAP bind). An empty
 * password never reaches it: to a directory that is an unauthenticated
 * bind, which succeeds. A failure costs the dummy hash too, so a wrong
 * password takes as long as an unknown user. Takes e's reference. */
static void
backend_verify(const struct auth_verifier *v, struct auth_entry *e,
    const char *password, size_t pwlen, const struct sockaddr *client,
    struct auth_result *res)
{
	const struct auth_backend_ops *ops = v->backend->ops;
	enum auth_status st = AUTH_FAIL;
	const char *err = NULL;

	if (ops->verify == NULL) {
		burn_dummy(v, password, pwlen);
		res->reason = AUTH_R_NOPASS;
		auth_entry_unref(&e);
		return;
	}
	if (pwlen > 0 && pwlen <= AUTH_PASSWORD_MAX)
		st = ops->verify(v->backend, e, password, pwlen, &err);
	switch (st) {
	case AUTH_OK:
		apply_policy(e, client, res);
		break;
	case AUTH_TEMPFAIL:
		res->status = AUTH_TEMPFAIL;
		res->reason = AUTH_R_BACKEND;
		break;
	case AUTH_FAIL:
		burn_dummy(v, password, pwlen);
		res->reason = AUTH_R_PASSWORD;
		break;
	}
	if (res->status != AUTH_OK)
		auth_entry_unref(&e);
}

/* The back-end decides the whole login (the HTTP hook). The remote
 * service owns the timing of its answers, so no dummy hash here; an
 * empty or oversized password never leaves the host. */
static void
login_verify(const struct auth_verifier *v, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    const struct auth_login_info *info, struct auth_result *res)
{
	struct auth_entry *e = NULL;
	const char *err = NULL;
	enum auth_status st;
	size_t ulen = strnlen(user, AUTH_USER_MAX + 1);

	res->reason = AUTH_R_PASSWORD;
	if (ulen == 0 || ulen > AUTH_USER_MAX || pwlen == 0 ||
	    pwlen > AUTH_PASSWORD_MAX)
		return;
	st = v->backend->ops->verify_login(v->backend, user, password, pwlen,
	    client, info, &e, &res->wait_ms, &err);
	switch (st) {
	case AUTH_OK:
		if (e == NULL) {
			res->status = AUTH_TEMPFAIL;
			res->reason = AUTH_R_BACKEND;
			break;
		}
		apply_policy(e, client, res);
		if (res->status != AUTH_OK)
			auth_entry_unref(&e);
		break;
	case AUTH_TEMPFAIL:
		res->status = AUTH_TEMPFAIL;
		res->reason = AUTH_R_BACKEND;
		break;
	case AUTH_FAIL:
		break;
	}
}

/* Password known right: the entry's own rules decide. Takes e's
 * reference into res on OK, else leaves e with the caller. */
static void
apply_policy(struct auth_entry *e, const struct sockaddr *client,
    struct auth_result *res)
{
	res->reason = auth_entry_policy(e, client);
	res->status = res->reason == AUTH_R_NONE ? AUTH_OK : AUTH_FAIL;
	if (res->status == AUTH_OK)
		res->entry = e;
}

static void
burn_dummy(const struct auth_verifier *v, const char *password, size_t pwlen)
{
	const char *err;

	if (v->dummy_hash != NULL && pwlen <= AUTH_PASSWORD_MAX)
		(void)auth_scheme_verify(v->dummy_hash, password, pwlen,
		    v->schemes, &err);
}

/* ---- jobs ------------------------------------------------------------- */

static struct job *
job_new(const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client)
{
	struct job *j = calloc(1, sizeof(*j) + pwlen + 1);

	if (j == NULL)
		return NULL;
	/* A name too long to be valid stays too long (and unknown). */
	strncpy(j->user, user, sizeof(j->user) - 1);
	if (pwlen > AUTH_PASSWORD_MAX)
		pwlen = AUTH_PASSWORD_MAX + 1;
	memcpy(j->password, password, pwlen);
	j->pwlen = pwlen;
	if (client != NULL &&
	    (client->sa_family == AF_INET || client->sa_family == AF_INET6)) {
		size_t n = client->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6);

		memcpy(&j->client, client, n);
		j->has_client = true;
	}
	return j;
}

static void
job_info(struct job *j, const struct auth_login_info *info)
{
#define COPY(f)                                                                \
	snprintf(j->f, sizeof(j->f), "%s", info->f != NULL ? info->f : "")
	COPY(protocol);
	COPY(method);
	COPY(client_host);
	COPY(helo);
	COPY(mail_from);
	COPY(rcpt_to);
#undef COPY
	j->attempt = info->attempt;
	j->has_info = true;
}

static void
job_wipe(struct job *j)
{
	OPENSSL_cleanse(j->password, j->pwlen + 1);
	OPENSSL_cleanse(j->key, sizeof(j->key));
	j->pwlen = 0;
}

static void
job_free(struct job *j)
{
	job_wipe(j);
	auth_entry_unref(&j->res.entry);
	free(j);
}

/* Count the answer and hand it to its loop. Nothing after loop_post()
 * touches the pool, so a pool freed before the loop drains is safe. */
static void
job_deliver(struct auth_pool *p, struct job *j)
{
	job_wipe(j);
	atomic_fetch_add(&p->n.result[j->res.status], 1);
	if (j->loop == NULL) {
		job_run(NULL, j);
		return;
	}
	if (loop_post(j->loop, job_run, j) == -1) {
		atomic_fetch_add(&p->n.lost, 1);
		job_free(j);
	}
}

static void
job_run(struct loop *l, void *arg)
{
	struct job *j = arg;

	j->cb(l, j->sid, &j->res, j->ctx);
	job_free(j);
}

/* On a pool thread: verify and answer, or drop the job unanswered when
 * the pool is being freed. */
static void
job_main(struct pool_job *pj)
{
	struct job *j = (struct job *)pj;
	struct auth_pool *p = j->pool;

	if (atomic_load(&p->stopping)) {
		job_free(j);
		return;
	}
	job_verify(p, j);
	job_deliver(p, j);
}

static void
job_verify(struct auth_pool *p, struct job *j)
{
	const struct sockaddr *client = j->has_client ?
	    (const struct sockaddr *)&j->client :
	    NULL;

	struct auth_login_info info = { 0 };
	/* A back-end deciding whole logins (HTTP) is asked every time:
	 * its answer carries the route and may change between calls. */
	bool cache = p->cache.on && p->v.backend->ops->verify_login == NULL;

	/* Back-ends that block were not probed at submit time. */
	if (cache && !p->v.backend->ops->lookup_nonblocking &&
	    cache_answer(p, j))
		return;
	if (j->has_info) {
		info.protocol = j->protocol[0] ? j->protocol : NULL;
		info.method = j->method[0] ? j->method : NULL;
		info.attempt = j->attempt;
		info.client_host = j->client_host[0] ? j->client_host : NULL;
		info.helo = j->helo[0] ? j->helo : NULL;
		info.mail_from = j->mail_from[0] ? j->mail_from : NULL;
		info.rcpt_to = j->rcpt_to[0] ? j->rcpt_to : NULL;
	}
	auth_verify_login(&p->v, j->user, j->password, j->pwlen, client,
	    j->has_info ? &info : NULL, &j->res);
	atomic_fetch_add(&p->n.verifies, 1);
	if (cache && j->res.status == AUTH_OK && j->has_key)
		cache_store(p, j->key, j->res.entry->serial);
}

/* ---- cache ------------------------------------------------------------ */

static int
cache_init(struct cache *c, const struct auth_pool_conf *conf)
{
	size_t want = conf->cache_size ? conf->cache_size : CACHE_SIZE;
	size_t sets = 1;

	pthread_mutex_init(&c->lock, NULL);
	c->ttl_ms = conf->cache_ttl_ms ? conf->cache_ttl_ms : CACHE_TTL_MS;
	c->on = !conf->cache_off;
	if (!c->on)
		return 0;
	while (sets * CACHE_WAYS < want)
		sets <<= 1;
	c->set_mask = sets - 1;
	if ((c->slots = calloc(sets * CACHE_WAYS, sizeof(*c->slots))) == NULL)
		return -1;
	if (getrandom(c->secret, sizeof(c->secret), 0) != sizeof(c->secret))
		return -1;
	return 0;
}

/* HMAC over the normalised name, so "Bob" and "bob" share an entry. A
 * name that cannot be valid gets no key and is never cached. */
static void
cache_key(struct cache *c, struct job *j)
{
	uint8_t msg[AUTH_USER_MAX + 1 + AUTH_PASSWORD_MAX + 1];
	unsigned int len = 0;
	int n;

	if (j->has_key || j->pwlen > AUTH_PASSWORD_MAX ||
	    (n = auth_user_normalize(j->user, strlen(j->user), (char *)msg)) ==
		-1)
		return;
	/* user NUL password: the NUL keeps ("ab","c") apart from ("a","bc"). */
	memcpy(msg + n + 1, j->password, j->pwlen);
	if (HMAC(EVP_sha256(), c->secret, sizeof(c->secret), msg,
		(size_t)n + 1 + j->pwlen, j->key, &len) != NULL &&
	    len == KEY_LEN)
		j->has_key = true;
	OPENSSL_cleanse(msg, sizeof(msg));
}

/* A hit fills j->res (policy applied to the current entry) and returns
 * true. Anything doubtful is a miss and the job runs the hash. */
static bool
cache_answer(struct auth_pool *p, struct job *j)
{
	const struct sockaddr *client = j->has_client ?
	    (const struct sockaddr *)&j->client :
	    NULL;
	struct auth_entry *e = NULL;
	const char *err;
	uint64_t serial;

	cache_key(&p->cache, j);
	if (!j->has_key || !cache_find(p, j->key, &serial))
		goto miss;
	if (auth_lookup(p->v.backend, j->user, &e, &err) != AUTH_LOOKUP_FOUND)
		goto miss;
	if (e->serial != serial) {
		auth_entry_unref(&e);
		goto miss;
	}
	atomic_fetch_add(&p->n.hits, 1);
	apply_policy(e, client, &j->res);
	j->res.cached = true;
	if (j->res.status != AUTH_OK)
		auth_entry_unref(&e);
	return true;
miss:
	atomic_fetch_add(&p->n.misses, 1);
	return false;
}

static bool
cache_find(struct auth_pool *p, const uint8_t *key, uint64_t *serial_r)
{
	struct cache *c = &p->cache;
	uint64_t now = p->now_ms(p->now_arg), set;
	struct cache_slot *s;
	bool found = false;

	memcpy(&set, key, sizeof(set));
	pthread_mutex_lock(&c->lock);
	s = &c->slots[(set & c->set_mask) * CACHE_WAYS];
	for (int i = 0; i < CACHE_WAYS; i++, s++) {
		if (s->expires == 0 || CRYPTO_memcmp(s->key, key, KEY_LEN) != 0)
			continue;
		if (s->expires <= now) {
			OPENSSL_cleanse(s, sizeof(*s));
			break;
		}
		s->used = now;
		*serial_r = s->serial;
		found = true;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* Replace the same key, else a free or expired way, else the least
 * recently used one of the set. */
static void
cache_store(struct auth_pool *p, const uint8_t *key, uint64_t serial)
{
	struct cache *c = &p->cache;
	uint64_t now = p->now_ms(p->now_arg), set;
	struct cache_slot *s, *victim = NULL;

	memcpy(&set, key, sizeof(set));
	pthread_mutex_lock(&c->lock);
	s = &c->slots[(set & c->set_mask) * CACHE_WAYS];
	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_slot *w = &s[i];

		if (w->expires != 0 && memcmp(w->key, key, KEY_LEN) == 0) {
			victim = w;
			break;
		}
		if (w->expires <= now) {
			if (victim == NULL || victim->expires > now)
				victim = w;
		} else if (victim == NULL ||
		    (victim->expires > now && w->used < victim->used)) {
			victim = w;
		}
	}
	memcpy(victim->key, key, KEY_LEN);
	victim->serial = serial;
	victim->expires = now + c->ttl_ms;
	victim->used = now;
	pthread_mutex_unlock(&c->lock);
}

static uint64_t
clock_ms(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
