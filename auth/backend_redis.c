/*
 * backend_redis.c - the Redis user back-end: one hash per user at
 * "<prefix>user:<name>", read with one HGETALL, for sites where several
 * ringgate hosts share their users.
 *
 * Relies on hiredis's synchronous API with a connect and a command
 * timeout, used only from the verify pool's worker threads (a lookup may
 * block, never longer than those timeouts). Connections are kept in a
 * small mutex-protected stack: a worker takes one, or opens a new one when
 * none is idle, and gives it back only if it is still healthy. A kept
 * connection that turns out dead (Redis restarted) is retried once on a
 * fresh one, so the first lookup after a restart already works.
 *
 * Must never: answer "unknown user" or "wrong password" when Redis could
 * not be asked (down, slow, error reply, unreadable record: all TEMPFAIL),
 * run on a ring thread, or put a password or hash into an error text.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>
#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/auth_private.h"

#define REDIS_DEFAULT_HOST "127.0.0.1"
#define REDIS_DEFAULT_PORT 6379
#define REDIS_DEFAULT_PREFIX "ringgate:"
#define REDIS_PREFIX_MAX 128
#define REDIS_TIMEOUT_MS 1000
#define REDIS_IDLE_MAX 4
#define REDIS_FIELDS_MAX 1024 /* pairs in one user hash */

struct auth_redis {
	struct auth_backend backend; /* first: the ops cast back */
	char *host, *username, *password, *prefix;
	uint16_t port;
	unsigned db;
	struct timeval connect_tv, command_tv;

	pthread_mutex_t lock; /* idle[] and n_idle */
	redisContext **idle;
	unsigned n_idle, max_idle;
};

/* connections */
static redisContext *conn_take(struct auth_redis *r, bool *fresh_r,
    const char **error_r);
static redisContext *conn_open(struct auth_redis *r, const char **error_r);
static int conn_setup(struct auth_redis *r, redisContext *c,
    const char **error_r);
static int conn_status(redisContext *c, redisReply *reply, const char *refused,
    const char **error_r);
static void conn_give(struct auth_redis *r, redisContext *c);
static bool conn_dead(const redisContext *c, int err);
static const char *conn_error(const redisContext *c, int err);

/* lookup */
static enum auth_lookup redis_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r);
static redisReply *hgetall(struct auth_redis *r, const char *key, size_t klen,
    const char **error_r);
static enum auth_lookup build_entry(const char *user, const redisReply *reply,
    struct auth_entry **entry_r, const char **error_r);

static const struct auth_backend_ops redis_ops = {
	.name = "redis",
	.lookup_nonblocking = false,
	.lookup = redis_lookup,
};

/* ---- public ----------------------------------------------------------- */

struct auth_redis *
auth_redis_new(const struct auth_redis_conf *conf, const char **error_r)
{
	struct auth_redis *r = calloc(1, sizeof(*r));
	const char *prefix = conf->prefix != NULL ? conf->prefix :
						    REDIS_DEFAULT_PREFIX;

	if (r == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->backend.ops = &redis_ops;
	if (strlen(prefix) > REDIS_PREFIX_MAX) {
		*error_r = "redis: key prefix longer than 128 bytes";
		goto fail;
	}
	if (conf->host != NULL && *conf->host == '\0') {
		*error_r = "redis: empty host";
		goto fail;
	}
	r->port = conf->port != 0 ? conf->port : REDIS_DEFAULT_PORT;
	r->db = conf->db;
	r->connect_tv = backend_ms_to_tv(conf->connect_timeout_ms,
	    REDIS_TIMEOUT_MS);
	r->command_tv = backend_ms_to_tv(conf->command_timeout_ms,
	    REDIS_TIMEOUT_MS);
	r->max_idle = conf->max_idle != 0 ? conf->max_idle : REDIS_IDLE_MAX;
	if (backend_dup_opt(conf->host != NULL ? conf->host :
						 REDIS_DEFAULT_HOST,
		&r->host) == -1 ||
	    backend_dup_opt(conf->username, &r->username) == -1 ||
	    backend_dup_opt(conf->password, &r->password) == -1 ||
	    backend_dup_opt(prefix, &r->prefix) == -1 ||
	    (r->idle = calloc(r->max_idle, sizeof(*r->idle))) == NULL) {
		*error_r = "out of memory";
		goto fail;
	}
	return r;
fail:
	auth_redis_free(&r);
	return NULL;
}

void
auth_redis_free(struct auth_redis **rp)
{
	struct auth_redis *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	for (unsigned i = 0; i < r->n_idle; i++)
		redisFree(r->idle[i]);
	free(r->idle);
	if (r->password != NULL) {
		OPENSSL_cleanse(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->host);
	free(r->username);
	free(r->prefix);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

struct auth_backend *
auth_redis_backend(struct auth_redis *r)
{
	return &r->backend;
}

/* ---- lookup ----------------------------------------------------------- */

static enum auth_lookup
redis_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r)
{
	struct auth_redis *r = (struct auth_redis *)b;
	char key[REDIS_PREFIX_MAX + sizeof("user:") + AUTH_USER_MAX];
	redisReply *reply;
	enum auth_lookup ret;
	int klen;

	*entry_r = NULL;
	klen = snprintf(key, sizeof(key), "%suser:%s", r->prefix, user);
	if (klen < 0 || (size_t)klen >= sizeof(key))
		return AUTH_LOOKUP_NOTFOUND; /* cannot happen: both bounded */
	if ((reply = hgetall(r, key, (size_t)klen, error_r)) == NULL)
		return AUTH_LOOKUP_TEMPFAIL;
	ret = build_entry(user, reply, entry_r, error_r);
	freeReplyObject(reply);
	return ret;
}

/* One HGETALL, retried once on a fresh connection when a kept one was
 * found dead. NULL with *error_r when Redis could not be asked. */
static redisReply *
hgetall(struct auth_redis *r, const char *key, size_t klen,
    const char **error_r)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		redisContext *c;
		redisReply *reply;
		bool fresh;
		int err;

		if ((c = conn_take(r, &fresh, error_r)) == NULL)
			return NULL;
		reply = redisCommand(c, "HGETALL %b", key, klen);
		err = errno;
		if (reply != NULL) {
			conn_give(r, c);
			return reply;
		}
		*error_r = conn_error(c, err);
		/* A timeout is not retried: that would double the wait. */
		if (fresh || !conn_dead(c, err)) {
			redisFree(c);
			return NULL;
		}
		redisFree(c);
	}
	return NULL;
}

/* The reply to HGETALL: an empty array is a missing key. Everything that
 * is not a clean array of strings is the server's or the record's fault,
 * so TEMPFAIL, never an unknown user. */
static enum auth_lookup
build_entry(const char *user, const redisReply *reply,
    struct auth_entry **entry_r, const char **error_r)
{
	struct auth_pair *pairs;
	size_t n;
	int rc;

	if (reply->type == REDIS_REPLY_ERROR) {
		*error_r = "redis: error reply (is the user's key a hash?)";
		return AUTH_LOOKUP_TEMPFAIL;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
		*error_r = "redis: unexpected reply to HGETALL";
		return AUTH_LOOKUP_TEMPFAIL;
	}
	if (reply->elements == 0)
		return AUTH_LOOKUP_NOTFOUND;
	n = reply->elements / 2;
	if (n > REDIS_FIELDS_MAX) {
		*error_r = "redis: user record has too many fields";
		return AUTH_LOOKUP_TEMPFAIL;
	}
	if ((pairs = calloc(n, sizeof(*pairs))) == NULL) {
		*error_r = "out of memory";
		return AUTH_LOOKUP_TEMPFAIL;
	}
	for (size_t i = 0; i < n; i++) {
		const redisReply *k = reply->element[2 * i];
		const redisReply *v = reply->element[2 * i + 1];

		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING ||
		    strlen(k->str) != (size_t)k->len) {
			free(pairs);
			*error_r = "redis: user record has a binary field name";
			return AUTH_LOOKUP_TEMPFAIL;
		}
		pairs[i] = (struct auth_pair){ .key = k->str,
			.value = v->str,
			.vlen = (size_t)v->len };
	}
	rc = auth_entry_build(user, pairs, n, NULL, entry_r, error_r);
	free(pairs);
	return rc == 0 ? AUTH_LOOKUP_FOUND : AUTH_LOOKUP_TEMPFAIL;
}

/* ---- connections ------------------------------------------------------ */

/* A kept connection if there is one, else a new one (*fresh_r). */
static redisContext *
conn_take(struct auth_redis *r, bool *fresh_r, const char **error_r)
{
	redisContext *c = NULL;

	pthread_mutex_lock(&r->lock);
	if (r->n_idle > 0)
		c = r->idle[--r->n_idle];
	pthread_mutex_unlock(&r->lock);
	*fresh_r = c == NULL;
	return c != NULL ? c : conn_open(r, error_r);
}

static redisContext *
conn_open(struct auth_redis *r, const char **error_r)
{
	redisContext *c;

	if (r->host[0] == '/')
		c = redisConnectUnixWithTimeout(r->host, r->connect_tv);
	else
		c = redisConnectWithTimeout(r->host, r->port, r->connect_tv);
	if (c == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	if (c->err != 0) {
		*error_r = "redis: cannot connect";
		redisFree(c);
		return NULL;
	}
	if (conn_setup(r, c, error_r) == -1) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Command timeout, then AUTH and SELECT when configured. */
static int
conn_setup(struct auth_redis *r, redisContext *c, const char **error_r)
{
	redisReply *reply;

	if (redisSetTimeout(c, r->command_tv) != REDIS_OK) {
		*error_r = "redis: cannot set the command timeout";
		return -1;
	}
	if (r->password != NULL) {
		reply = r->username != NULL ?
		    redisCommand(c, "AUTH %s %s", r->username, r->password) :
		    redisCommand(c, "AUTH %s", r->password);
		if (conn_status(c, reply, "redis: AUTH refused", error_r) == -1)
			return -1;
	}
	if (r->db != 0) {
		reply = redisCommand(c, "SELECT %u", r->db);
		if (conn_status(c, reply, "redis: SELECT refused", error_r) ==
		    -1)
			return -1;
	}
	return 0;
}

/* Consume the reply to a set-up command, which must be +OK. Call right
 * after the command: a NULL reply's reason is still in errno. */
static int
conn_status(redisContext *c, redisReply *reply, const char *refused,
    const char **error_r)
{
	bool ok;

	if (reply == NULL) {
		*error_r = conn_error(c, errno);
		return -1;
	}
	ok = reply->type == REDIS_REPLY_STATUS;
	freeReplyObject(reply);
	if (!ok)
		*error_r = refused;
	return ok ? 0 : -1;
}

/* Keep a healthy connection for the next lookup, if there is room. */
static void
conn_give(struct auth_redis *r, redisContext *c)
{
	if (c->err == 0) {
		pthread_mutex_lock(&r->lock);
		if (r->n_idle < r->max_idle) {
			r->idle[r->n_idle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&r->lock);
	}
	if (c != NULL)
		redisFree(c);
}

/* Closed or reset by the server, as opposed to merely slow. */
static bool
conn_dead(const redisContext *c, int err)
{
	if (c->err == REDIS_ERR_EOF)
		return true;
	return c->err == REDIS_ERR_IO && err != EAGAIN && err != EWOULDBLOCK &&
	    err != ETIMEDOUT && err != EINPROGRESS;
}

/* hiredis reports a command timeout as an I/O error with EAGAIN. */
static const char *
conn_error(const redisContext *c, int err)
{
	if (c->err == REDIS_ERR_IO &&
	    (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT))
		return "redis: timed out";
	if (c->err == REDIS_ERR_EOF || c->err == REDIS_ERR_IO)
		return "redis: connection lost";
	if (c->err == REDIS_ERR_OOM)
		return "out of memory";
	return "redis: protocol error";
}

/* ---- helpers ---------------------------------------------------------- */
