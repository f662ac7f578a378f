/*
 * redis_loop.c - hiredis's async API on a worker's loop (see redis_loop.h).
 *
 * hiredis asks for read/write interest through its ev hooks; those become
 * the events of one loop_poll_fd() watch on the context's descriptor, and
 * readiness is handed back with redisAsyncHandleRead/Write. hiredis 0.14
 * has no timeouts of its own, so every command carries a deadline and one
 * timer watches the oldest; replies are in order, so a late oldest reply
 * means the connection is dropped and everything pending fails.
 *
 * Never blocks: the target is numeric (no DNS), the connect is
 * non-blocking, and hiredis only reads and writes when told it may.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/config.h"
#include "core/loop.h"
#include "core/redis_loop.h"
#include "core/timer.h"

struct redis_loop_req {
	struct redis_loop *rl;
	redis_loop_cb *cb; /* NULL once cancelled */
	void *ctx;
	uint64_t deadline;
	struct redis_loop_req *prev, *next;
};

struct redis_loop {
	struct loop *loop;
	char host[64];
	char *path; /* unix socket, or NULL for host:port */
	int port;
	uint64_t timeout_ms, retry_ms;
	uint64_t retry_at; /* loop time before which we do not reconnect */

	redisAsyncContext *ac; /* NULL: not connected */
	struct fd_poll *poll;
	unsigned events;    /* POLLIN/POLLOUT hiredis asked for */
	const char *why;    /* set while we drop the connection ourselves */
	struct timer timer; /* the oldest pending command's deadline */
	struct redis_loop_req *head, *tail;
	unsigned npending;
};

/* connection */
static int rl_connect(struct redis_loop *rl, const char **error_r);
static void rl_drop(struct redis_loop *rl, const char *why);
static void rl_on_connect(const redisAsyncContext *ac, int status);
/* hiredis event hooks */
static void ev_add_read(void *p);
static void ev_del_read(void *p);
static void ev_add_write(void *p);
static void ev_del_write(void *p);
static void ev_cleanup(void *p);
static void ev_set(struct redis_loop *rl, unsigned events);
static void on_poll(void *ctx, unsigned revents);
/* commands */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void req_unlink(struct redis_loop *rl, struct redis_loop_req *req);
static void rearm(struct redis_loop *rl);
static void on_timeout(struct timer *t, void *arg);

static int
parse_target(struct redis_loop *rl, const char *target, const char **error_r)
{
	struct cfg_addr a;

	if (target == NULL || target[0] == '\0') {
		*error_r = "no Redis target";
		return -1;
	}
	if (target[0] == '/') {
		if ((rl->path = strdup(target)) == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		return 0;
	}
	if (cfg_parse_addr(target, &a) == -1) {
		*error_r = "Redis target must be \"host:port\" with a numeric "
			   "host, or a unix socket path";
		return -1;
	}
	if (a.ss.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&a.ss;

		inet_ntop(AF_INET, &s->sin_addr, rl->host, sizeof(rl->host));
		rl->port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const void *)&a.ss;

		inet_ntop(AF_INET6, &s->sin6_addr, rl->host, sizeof(rl->host));
		rl->port = ntohs(s->sin6_port);
	}
	return 0;
}

struct redis_loop *
redis_loop_new(struct loop *l, const struct redis_loop_conf *conf,
    const char **error_r)
{
	struct redis_loop *rl = calloc(1, sizeof(*rl));

	if (rl == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	rl->loop = l;
	rl->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 1000;
	rl->retry_ms = conf->retry_ms ? conf->retry_ms : 1000;
	timer_init(&rl->timer, l, on_timeout, rl);
	if (parse_target(rl, conf->target, error_r) == -1) {
		free(rl);
		return NULL;
	}
	return rl;
}

void
redis_loop_free(struct redis_loop **rlp)
{
	struct redis_loop *rl = *rlp;

	if (rl == NULL)
		return;
	*rlp = NULL;
	for (struct redis_loop_req *q = rl->head; q != NULL; q = q->next)
		q->cb = NULL;
	if (rl->ac != NULL)
		rl_drop(rl, "closed");
	timer_stop(&rl->timer);
	free(rl->path);
	free(rl);
}

unsigned
redis_loop_pending(const struct redis_loop *rl)
{
	return rl->npending;
}

/* ---- connection ---- */

static int
rl_connect(struct redis_loop *rl, const char **error_r)
{
	redisAsyncContext *ac;

	if (loop_now(rl->loop) < rl->retry_at) {
		*error_r = "down (waiting before reconnecting)";
		return -1;
	}
	ac = rl->path ? redisAsyncConnectUnix(rl->path) :
			redisAsyncConnect(rl->host, rl->port);
	if (ac == NULL || ac->err) {
		*error_r = "connect failed";
		if (ac != NULL)
			redisAsyncFree(ac);
		rl->retry_at = loop_now(rl->loop) + rl->retry_ms;
		return -1;
	}
	rl->poll = loop_poll_fd(rl->loop, ac->c.fd, 0, on_poll, rl);
	if (rl->poll == NULL) {
		*error_r = "out of memory";
		redisAsyncFree(ac);
		return -1;
	}
	rl->ac = ac;
	rl->events = 0;
	ac->data = rl;
	ac->ev.data = rl;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, rl_on_connect);
	return 0;
}

/* hiredis gave up connecting: do not try again at once. */
static void
rl_on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_loop *rl = ac->data;

	if (status != REDIS_OK && rl != NULL)
		rl->retry_at = loop_now(rl->loop) + rl->retry_ms;
}

/* Our own decision (timeout, free): every pending command fails with why. */
static void
rl_drop(struct redis_loop *rl, const char *why)
{
	redisAsyncContext *ac = rl->ac;

	rl->why = why;
	redisAsyncFree(ac); /* runs on_reply(NULL) for each, then cleanup */
	rl->why = NULL;
}

static void
ev_set(struct redis_loop *rl, unsigned events)
{
	if (rl->events == events || rl->poll == NULL)
		return;
	rl->events = events;
	loop_poll_set(rl->poll, events);
}

static void
ev_add_read(void *p)
{
	struct redis_loop *rl = p;

	ev_set(rl, rl->events | POLLIN);
}

static void
ev_del_read(void *p)
{
	struct redis_loop *rl = p;

	ev_set(rl, rl->events & ~(unsigned)POLLIN);
}

static void
ev_add_write(void *p)
{
	struct redis_loop *rl = p;

	ev_set(rl, rl->events | POLLOUT);
}

static void
ev_del_write(void *p)
{
	struct redis_loop *rl = p;

	ev_set(rl, rl->events & ~(unsigned)POLLOUT);
}

/* The context is going away (after the pending callbacks ran). */
static void
ev_cleanup(void *p)
{
	struct redis_loop *rl = p;

	loop_unpoll_fd(&rl->poll);
	rl->events = 0;
	if (rl->ac != NULL)
		rl->ac->data = NULL;
	rl->ac = NULL;
}

static void
on_poll(void *ctx, unsigned revents)
{
	struct redis_loop *rl = ctx;
	redisAsyncContext *ac = rl->ac;
	struct fd_poll *p = rl->poll;

	if (ac == NULL)
		return;
	if ((rl->events & POLLIN) && (revents & (POLLIN | POLLERR | POLLHUP)))
		redisAsyncHandleRead(ac);
	/* the read may have ended this context (and maybe started another) */
	if (rl->ac != ac || rl->poll != p)
		return;
	if ((rl->events & POLLOUT) && (revents & (POLLOUT | POLLERR | POLLHUP)))
		redisAsyncHandleWrite(ac);
}

/* ---- commands ---- */

struct redis_loop_req *
redis_loop_cmd(struct redis_loop *rl, int argc, const char **argv,
    const size_t *lens, redis_loop_cb *cb, void *ctx, const char **error_r)
{
	struct redis_loop_req *req;

	if (rl->ac != NULL &&
	    (rl->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))) {
		*error_r = "closing";
		return NULL;
	}
	if (rl->ac == NULL && rl_connect(rl, error_r) == -1)
		return NULL;
	if ((req = calloc(1, sizeof(*req))) == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	req->rl = rl;
	req->cb = cb;
	req->ctx = ctx;
	req->deadline = loop_now(rl->loop) + rl->timeout_ms;
	if (redisAsyncCommandArgv(rl->ac, on_reply, req, argc, argv, lens) !=
	    REDIS_OK) {
		free(req);
		*error_r = "command refused by hiredis";
		return NULL;
	}
	req->prev = rl->tail;
	if (rl->tail != NULL)
		rl->tail->next = req;
	else
		rl->head = req;
	rl->tail = req;
	rl->npending++;
	if (!timer_armed(&rl->timer))
		rearm(rl);
	return req;
}

void
redis_loop_cancel(struct redis_loop_req **reqp)
{
	if (*reqp != NULL)
		(*reqp)->cb = NULL;
	*reqp = NULL;
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_loop_req *req = privdata;
	struct redis_loop *rl = req->rl;
	const char *error = NULL;

	req_unlink(rl, req);
	if (reply == NULL)
		error = rl->why ? rl->why : ac->err ? ac->errstr : "closed";
	if (req->cb != NULL)
		req->cb(req->ctx, reply, error);
	free(req);
	rearm(rl);
}

static void
req_unlink(struct redis_loop *rl, struct redis_loop_req *req)
{
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		rl->head = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	else
		rl->tail = req->prev;
	rl->npending--;
}

static void
rearm(struct redis_loop *rl)
{
	if (rl->head == NULL)
		timer_stop(&rl->timer);
	else
		timer_set_at(&rl->timer, rl->head->deadline);
}

static void
on_timeout(struct timer *t, void *arg)
{
	struct redis_loop *rl = arg;

	(void)t;
	if (rl->head == NULL || rl->ac == NULL)
		return;
	if (rl->head->deadline > loop_now(rl->loop)) {
		rearm(rl);
		return;
	}
	rl->retry_at = loop_now(rl->loop) + rl->retry_ms;
	rl_drop(rl, "timeout");
}
