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
 * Sentinel: a second hiredis context (a "link", like the master's) asks
 * one sentinel at a time, with its own timer; a third stays subscribed to
 * a sentinel's +switch-master channel (the first that answered, the next
 * one after a failure), so an operator's failover, after which the old
 * master may take writes for seconds before the sentinel demotes it,
 * moves us at once. Until a master is known, commands are kept formatted
 * in our own queue (their deadlines still run) and handed to hiredis when
 * the master connection opens. A link's
 * context is only ever freed by us outside hiredis's callbacks, or by
 * hiredis itself after the callback that asked for it returns; the next
 * sentinel is asked from the timer, never from inside a callback, so a
 * link never sees two contexts at once.
 *
 * Never blocks: targets and the addresses sentinels answer are numeric
 * (no DNS), connects are non-blocking, and hiredis only reads and writes
 * when told it may.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/redis_loop.h"
#include "core/timer.h"

#define RL_SENTINELS_MAX 16

struct redis_loop_req {
	struct redis_loop *rl;
	redis_loop_cb *cb; /* NULL once cancelled */
	void *ctx;
	uint64_t deadline;
	char *fmt; /* formatted command not yet given to hiredis, or NULL */
	int fmtlen;
	struct redis_loop_req *prev, *next;
};

struct rl_addr {
	char host[64];
	char *path; /* unix socket, or NULL for host:port */
	int port;
};

/* One hiredis context watched by the loop: the master's or a sentinel's. */
struct rl_link {
	struct redis_loop *rl;
	redisAsyncContext *ac; /* NULL: not connected */
	struct fd_poll *poll;
	unsigned events; /* POLLIN/POLLOUT hiredis asked for */
};

enum rl_sentinel_state {
	RS_IDLE,   /* master known, or nobody waiting for one */
	RS_ASKING, /* a sentinel is being asked; commands wait in the queue */
};

struct redis_loop {
	struct loop *loop;
	struct rl_addr master; /* configured, or what a sentinel answered */
	uint64_t timeout_ms, retry_ms;
	uint64_t retry_at; /* loop time before which we do not reconnect */

	struct rl_link ml;  /* the master connection */
	const char *why;    /* set while we drop the connection ourselves */
	struct timer timer; /* the oldest pending command's deadline */
	struct redis_loop_req *head, *tail;
	unsigned npending;

	/* Sentinel (nsentinels == 0: a plain target) */
	struct rl_addr *sentinels;
	unsigned nsentinels;
	char *master_name;
	bool master_known;
	enum rl_sentinel_state sstate;
	unsigned sfirst;     /* the sentinel asked first: the last good one */
	unsigned sasked;     /* how many were asked this round */
	struct rl_link sl;   /* the sentinel being asked */
	struct timer stimer; /* its deadline, or "ask the next one now" */
	bool sdropping;	     /* we are freeing sl ourselves */
	bool sfailing;	     /* the last round failed (logged once) */
	const char *serror;  /* why the last sentinel asked gave nothing */
	bool sbad_logged;    /* a bad address was logged (once per episode) */
	bool sanswered;	     /* some sentinel has answered */
	struct rl_link xl;   /* subscribed to +switch-master */
	unsigned xidx;	     /* the sentinel it is (to be) subscribed to */
	struct timer xtimer; /* resubscribe after a failure */
	bool freeing;	     /* redis_loop_free() is running */
};

/* configuration */
static int parse_addr(struct rl_addr *a, const char *text,
    const char **error_r);
static int sentinels_init(struct redis_loop *rl,
    const struct redis_loop_conf *conf, const char **error_r);
/* connection */
static int link_open(struct rl_link *k, const struct rl_addr *a,
    const char **error_r);
static int rl_connect(struct redis_loop *rl, const char **error_r);
static void rl_drop(struct redis_loop *rl, const char *why);
static void rl_on_connect(const redisAsyncContext *ac, int status);
/* hiredis event hooks (data is a struct rl_link) */
static void ev_add_read(void *p);
static void ev_del_read(void *p);
static void ev_add_write(void *p);
static void ev_del_write(void *p);
static void ev_cleanup(void *p);
static void ev_set(struct rl_link *k, unsigned events);
static void on_poll(void *ctx, unsigned revents);
/* sentinel */
static int sentinel_start(struct redis_loop *rl, const char **error_r);
static int sentinel_ask_next(struct redis_loop *rl, const char **error_r);
static void sentinel_fail(struct redis_loop *rl, const char *error);
static void on_sentinel_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static int sentinel_master(struct redis_loop *rl, const redisReply *r);
static void on_sentinel_timer(struct timer *t, void *arg);
static int port_parse(const char *s, size_t n, uint16_t *port_r);
static int set_master(struct redis_loop *rl, const char *host, size_t hostlen,
    uint16_t port, const char *why);
static void master_flush(struct redis_loop *rl);
static void switch_subscribe(struct redis_loop *rl);
static void on_switch_timer(struct timer *t, void *arg);
static void on_switch(redisAsyncContext *ac, void *reply, void *privdata);
/* commands */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void req_fail(struct redis_loop_req *req, const char *error);
static void req_unlink(struct redis_loop *rl, struct redis_loop_req *req);
static void rearm(struct redis_loop *rl);
static void on_timeout(struct timer *t, void *arg);

/* ---- configuration ---- */

static int
parse_addr(struct rl_addr *ra, const char *text, const char **error_r)
{
	struct cfg_addr a;

	if (text == NULL || text[0] == '\0') {
		*error_r = "no Redis target";
		return -1;
	}
	if (text[0] == '/') {
		if ((ra->path = strdup(text)) == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		return 0;
	}
	if (cfg_parse_addr(text, &a) == -1) {
		*error_r = "Redis target must be \"host:port\" with a numeric "
			   "host, or a unix socket path";
		return -1;
	}
	if (a.ss.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&a.ss;

		inet_ntop(AF_INET, &s->sin_addr, ra->host, sizeof(ra->host));
		ra->port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const void *)&a.ss;

		inet_ntop(AF_INET6, &s->sin6_addr, ra->host, sizeof(ra->host));
		ra->port = ntohs(s->sin6_port);
	}
	return 0;
}

static int
sentinels_init(struct redis_loop *rl, const struct redis_loop_conf *conf,
    const char **error_r)
{
	unsigned i;

	if (conf->master_name == NULL || conf->master_name[0] == '\0') {
		*error_r = "Redis sentinels need a master_name";
		return -1;
	}
	if (conf->nsentinels > RL_SENTINELS_MAX) {
		*error_r = "at most 16 Redis sentinels";
		return -1;
	}
	rl->sentinels = calloc(conf->nsentinels, sizeof(*rl->sentinels));
	rl->master_name = strdup(conf->master_name);
	if (rl->sentinels == NULL || rl->master_name == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	rl->nsentinels = conf->nsentinels;
	for (i = 0; i < conf->nsentinels; i++)
		if (parse_addr(&rl->sentinels[i], conf->sentinels[i],
			error_r) == -1)
			return -1;
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
	rl->ml.rl = rl;
	rl->sl.rl = rl;
	rl->xl.rl = rl;
	timer_init(&rl->timer, l, on_timeout, rl);
	timer_init(&rl->stimer, l, on_sentinel_timer, rl);
	timer_init(&rl->xtimer, l, on_switch_timer, rl);
	if (conf->nsentinels > 0) {
		if (sentinels_init(rl, conf, error_r) == -1)
			goto fail;
	} else {
		if (parse_addr(&rl->master, conf->target, error_r) == -1)
			goto fail;
		rl->master_known = true;
	}
	return rl;
fail:
	redis_loop_free(&rl);
	return NULL;
}

void
redis_loop_free(struct redis_loop **rlp)
{
	struct redis_loop *rl = *rlp;
	struct redis_loop_req *q, *next;
	unsigned i;

	if (rl == NULL)
		return;
	*rlp = NULL;
	rl->freeing = true;
	for (q = rl->head; q != NULL; q = q->next)
		q->cb = NULL;
	if (rl->ml.ac != NULL)
		rl_drop(rl, "closed");
	/* what is left never reached hiredis */
	for (q = rl->head; q != NULL; q = next) {
		next = q->next;
		free(q->fmt);
		free(q);
	}
	if (rl->sl.ac != NULL) {
		rl->sdropping = true;
		redisAsyncFree(rl->sl.ac);
	}
	if (rl->xl.ac != NULL)
		redisAsyncFree(rl->xl.ac);
	timer_stop(&rl->timer);
	timer_stop(&rl->stimer);
	timer_stop(&rl->xtimer);
	free(rl->master.path);
	for (i = 0; i < rl->nsentinels; i++)
		free(rl->sentinels[i].path);
	free(rl->sentinels);
	free(rl->master_name);
	free(rl);
}

unsigned
redis_loop_pending(const struct redis_loop *rl)
{
	return rl->npending;
}

/* ---- connection ---- */

/* A non-blocking connect of k to a, watched by the loop. */
static int
link_open(struct rl_link *k, const struct rl_addr *a, const char **error_r)
{
	redisAsyncContext *ac;

	ac = a->path ? redisAsyncConnectUnix(a->path) :
		       redisAsyncConnect(a->host, a->port);
	if (ac == NULL || ac->err) {
		*error_r = "connect failed";
		if (ac != NULL)
			redisAsyncFree(ac);
		return -1;
	}
	k->poll = loop_poll_fd(k->rl->loop, ac->c.fd, 0, on_poll, k);
	if (k->poll == NULL) {
		*error_r = "out of memory";
		redisAsyncFree(ac);
		return -1;
	}
	k->ac = ac;
	k->events = 0;
	ac->data = k->rl;
	ac->ev.data = k;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	return 0;
}

static int
rl_connect(struct redis_loop *rl, const char **error_r)
{
	if (loop_now(rl->loop) < rl->retry_at) {
		*error_r = "down (waiting before reconnecting)";
		return -1;
	}
	if (link_open(&rl->ml, &rl->master, error_r) == -1) {
		rl->retry_at = loop_now(rl->loop) + rl->retry_ms;
		if (rl->nsentinels > 0)
			rl->master_known = false;
		return -1;
	}
	redisAsyncSetConnectCallback(rl->ml.ac, rl_on_connect);
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
	redisAsyncContext *ac = rl->ml.ac;

	rl->why = why;
	redisAsyncFree(ac); /* runs on_reply(NULL) for each, then cleanup */
	rl->why = NULL;
}

static void
ev_set(struct rl_link *k, unsigned events)
{
	if (k->events == events || k->poll == NULL)
		return;
	k->events = events;
	loop_poll_set(k->poll, events);
}

static void
ev_add_read(void *p)
{
	struct rl_link *k = p;

	ev_set(k, k->events | POLLIN);
}

static void
ev_del_read(void *p)
{
	struct rl_link *k = p;

	ev_set(k, k->events & ~(unsigned)POLLIN);
}

static void
ev_add_write(void *p)
{
	struct rl_link *k = p;

	ev_set(k, k->events | POLLOUT);
}

static void
ev_del_write(void *p)
{
	struct rl_link *k = p;

	ev_set(k, k->events & ~(unsigned)POLLOUT);
}

/* The context is going away (after the pending callbacks ran). With
 * sentinels, a lost master is asked for again before the next connect. */
static void
ev_cleanup(void *p)
{
	struct rl_link *k = p;
	struct redis_loop *rl = k->rl;

	loop_unpoll_fd(&k->poll);
	k->events = 0;
	if (k->ac != NULL)
		k->ac->data = NULL;
	k->ac = NULL;
	if (k == &rl->ml) {
		rl->why = NULL;
		if (rl->nsentinels > 0)
			rl->master_known = false;
	}
}

static void
on_poll(void *ctx, unsigned revents)
{
	struct rl_link *k = ctx;
	redisAsyncContext *ac = k->ac;
	struct fd_poll *p = k->poll;

	if (ac == NULL)
		return;
	if ((k->events & POLLIN) && (revents & (POLLIN | POLLERR | POLLHUP)))
		redisAsyncHandleRead(ac);
	/* the read may have ended this context (and maybe started another) */
	if (k->ac != ac || k->poll != p)
		return;
	if ((k->events & POLLOUT) && (revents & (POLLOUT | POLLERR | POLLHUP)))
		redisAsyncHandleWrite(ac);
}

/* ---- sentinel ---- */

/* A round: ask the sentinels in turn, the last good one first. 0, or -1
 * when none could even be connected to (nothing is waiting yet). */
static int
sentinel_start(struct redis_loop *rl, const char **error_r)
{
	if (loop_now(rl->loop) < rl->retry_at) {
		*error_r = "down (waiting before asking the sentinels again)";
		return -1;
	}
	rl->sstate = RS_ASKING;
	rl->sasked = 0;
	rl->serror = "no sentinel";
	if (sentinel_ask_next(rl, error_r) == -1) {
		rl->sstate = RS_IDLE;
		rl->retry_at = loop_now(rl->loop) + rl->retry_ms;
		return -1;
	}
	return 0;
}

static int
sentinel_ask_next(struct redis_loop *rl, const char **error_r)
{
	const char *argv[3] = { "SENTINEL", "get-master-addr-by-name",
		rl->master_name };

	*error_r = "no sentinel";
	while (rl->sasked < rl->nsentinels) {
		unsigned i = (rl->sfirst + rl->sasked++) % rl->nsentinels;

		if (link_open(&rl->sl, &rl->sentinels[i], error_r) == -1) {
			rl->serror = "sentinel: connect failed";
			continue;
		}
		if (redisAsyncCommandArgv(rl->sl.ac, on_sentinel_reply,
			(void *)(uintptr_t)i, 3, argv, NULL) != REDIS_OK) {
			rl->sdropping = true;
			redisAsyncFree(rl->sl.ac);
			rl->sdropping = false;
			*error_r = "command refused by hiredis";
			continue;
		}
		timer_set(&rl->stimer, rl->timeout_ms);
		return 0;
	}
	return -1;
}

/* Nobody told us the master: whatever waits for it fails. */
static void
sentinel_fail(struct redis_loop *rl, const char *error)
{
	struct redis_loop_req *q;

	rl->sstate = RS_IDLE;
	timer_stop(&rl->stimer);
	rl->retry_at = loop_now(rl->loop) + rl->retry_ms;
	if (!rl->sfailing)
		log_warn(0, "redis.sentinel_failed",
		    "master_name=%s error=\"%s\"", rl->master_name, error);
	rl->sfailing = true;
	while ((q = rl->head) != NULL && q->fmt != NULL)
		req_fail(q, error);
	rearm(rl);
}

static void
on_sentinel_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_loop *rl = ac->data;
	unsigned i = (unsigned)(uintptr_t)privdata;

	if (rl == NULL || rl->sdropping || rl->sstate != RS_ASKING ||
	    ac != rl->sl.ac)
		return;
	if (reply != NULL) /* done with this sentinel either way */
		redisAsyncFree(ac);
	if (reply != NULL && sentinel_master(rl, reply) == 0) {
		rl->sfirst = i;
		if (!rl->sanswered)
			rl->xidx = i;
		rl->sanswered = true;
		rl->sstate = RS_IDLE;
		rl->sfailing = false;
		timer_stop(&rl->stimer);
		master_flush(rl);
		switch_subscribe(rl);
		return;
	}
	if (reply == NULL)
		rl->serror = "sentinel: connection failed";
	/* the next sentinel, from the timer: this context is not gone yet */
	timer_set(&rl->stimer, 1);
}

/* A reply of [host, port] becomes the master address. 0 or -1. */
static int
sentinel_master(struct redis_loop *rl, const redisReply *r)
{
	uint16_t port;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		/* nil: the sentinel does not know master_name */
		rl->serror = r->type == REDIS_REPLY_ERROR ?
		    "sentinel: an error reply (is it a sentinel?)" :
		    "no sentinel knows the master";
		return -1;
	}
	rl->serror = "sentinel: master address not numeric";
	if (port_parse(r->element[1]->str, r->element[1]->len, &port) == -1)
		port = 0; /* refused, and logged, below */
	return set_master(rl, r->element[0]->str, r->element[0]->len, port,
	    "asked");
}

/* Decimal 1..65535, exactly n bytes. 0 or -1. */
static int
port_parse(const char *s, size_t n, uint16_t *port_r)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port_r = (uint16_t)v;
	return 0;
}

int
redis_switch_parse(const char *msg, size_t len, struct redis_switch *out)
{
	const char *f[5];
	size_t flen[5], i = 0;
	unsigned n;

	if (memchr(msg, '\0', len) != NULL)
		return -1;
	for (n = 0; n < 5; n++) {
		const char *sp = memchr(msg + i, ' ', len - i);
		size_t end = sp ? (size_t)(sp - msg) : len;

		if (end == i || (n < 4) != (sp != NULL))
			return -1; /* an empty field, or not five */
		f[n] = msg + i;
		flen[n] = end - i;
		i = end + 1;
	}
	if (flen[3] >= 64 || port_parse(f[4], flen[4], &out->port) == -1)
		return -1;
	out->name = f[0];
	out->name_len = flen[0];
	out->host = f[3];
	out->host_len = flen[3];
	return 0;
}

/* host (hostlen bytes) and port from a sentinel become the master. 0,
 * or -1 when they are not a numeric address (port 0: no valid port). */
static int
set_master(struct redis_loop *rl, const char *host, size_t hostlen,
    uint16_t port, const char *why)
{
	struct rl_addr a;
	char text[96];
	const char *err;

	if (port == 0 || hostlen == 0 || hostlen >= sizeof(a.host) ||
	    memchr(host, '\0', hostlen) != NULL)
		goto bad;
	snprintf(text, sizeof(text),
	    memchr(host, ':', hostlen) ? "[%.*s]:%u" : "%.*s:%u", (int)hostlen,
	    host, (unsigned)port);
	/* numeric only: a host name would need a blocking resolver */
	memset(&a, 0, sizeof(a));
	if (text[0] == '/' || parse_addr(&a, text, &err) == -1)
		goto bad;
	if (strcmp(a.host, rl->master.host) != 0 || a.port != rl->master.port)
		log_info(0, "redis.sentinel_master",
		    "master_name=%s master=%s:%d why=%s", rl->master_name,
		    a.host, a.port, why);
	rl->master = a;
	rl->master_known = true;
	rl->sbad_logged = false;
	return 0;
bad:
	if (!rl->sbad_logged)
		log_warn(0, "redis.sentinel_bad_master",
		    "master_name=%s error=\"not a numeric host:port (run the "
		    "sentinels without resolve-hostnames)\"",
		    rl->master_name);
	rl->sbad_logged = true;
	return -1;
}

/* The sentinel being asked is late, or failed: the next one. */
static void
on_sentinel_timer(struct timer *t, void *arg)
{
	struct redis_loop *rl = arg;
	const char *err = NULL;

	(void)t;
	if (rl->sstate != RS_ASKING)
		return;
	if (rl->sl.ac != NULL) {
		/* no answer in time: like a command, a "timeout" */
		rl->serror = "timeout";
		rl->sdropping = true;
		redisAsyncFree(rl->sl.ac);
		rl->sdropping = false;
	}
	if (rl->head == NULL) {
		/* everyone waiting gave up: ask again when someone needs it */
		rl->sstate = RS_IDLE;
		return;
	}
	if (sentinel_ask_next(rl, &err) == -1)
		sentinel_fail(rl, rl->serror);
}

/* The master is known: connect and hand it what waited. */
static void
master_flush(struct redis_loop *rl)
{
	struct redis_loop_req *q;
	const char *err = NULL;

	if (rl->head == NULL)
		return; /* connect when the next command comes */
	rl->retry_at = 0;
	if (rl_connect(rl, &err) == -1) {
		while ((q = rl->head) != NULL)
			req_fail(q, err);
		rearm(rl);
		return;
	}
	for (q = rl->head; q != NULL; q = q->next) {
		if (redisAsyncFormattedCommand(rl->ml.ac, on_reply, q, q->fmt,
			(size_t)q->fmtlen) != REDIS_OK)
			break; /* cannot happen on a fresh context */
		free(q->fmt);
		q->fmt = NULL;
	}
}

/* Listen for failovers, once some sentinel has answered, unless we
 * already do. A failure tries the next sentinel after retry_ms. */
static void
switch_subscribe(struct redis_loop *rl)
{
	const char *argv[2] = { "SUBSCRIBE", "+switch-master" };
	const char *err;

	if (rl->nsentinels == 0 || !rl->sanswered || rl->xl.ac != NULL ||
	    rl->freeing)
		return;
	if (link_open(&rl->xl, &rl->sentinels[rl->xidx], &err) == -1) {
		rl->xidx = (rl->xidx + 1) % rl->nsentinels;
		timer_set(&rl->xtimer, rl->retry_ms);
		return;
	}
	if (redisAsyncCommandArgv(rl->xl.ac, on_switch, NULL, 2, argv, NULL) !=
	    REDIS_OK) {
		redisAsyncFree(rl->xl.ac);
		timer_set(&rl->xtimer, rl->retry_ms);
	}
}

static void
on_switch_timer(struct timer *t, void *arg)
{
	(void)t;
	switch_subscribe(arg);
}

/* "+switch-master <name> <old ip> <old port> <new ip> <new port>": ours
 * moved, so the connection to the old one goes now. */
static void
on_switch(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_loop *rl = ac->data;
	const redisReply *r = reply;
	struct redis_switch sw;

	(void)privdata;
	if (rl != NULL && r == NULL && !rl->freeing) {
		/* the subscription is gone: another sentinel, later */
		rl->xidx = (rl->xidx + 1) % rl->nsentinels;
		timer_set(&rl->xtimer, rl->retry_ms);
		return;
	}
	if (rl == NULL || r == NULL || r->type != REDIS_REPLY_ARRAY ||
	    r->elements != 3 || r->element[2]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0)
		return; /* the subscription's confirmation, or going away */
	if (redis_switch_parse(r->element[2]->str, r->element[2]->len, &sw) ==
	    -1) {
		log_warn(0, "redis.sentinel_bad_switch",
		    "master_name=%s error=\"malformed +switch-master\"",
		    rl->master_name);
		return;
	}
	if (sw.name_len != strlen(rl->master_name) ||
	    memcmp(sw.name, rl->master_name, sw.name_len) != 0)
		return; /* another master of the same sentinels */
	if (rl->ml.ac != NULL &&
	    !(rl->ml.ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
		rl_drop(rl, "master switched");
	/* a new master: no reason to wait out the old one's retry delay */
	if (set_master(rl, sw.host, sw.host_len, sw.port, "switch-master") == 0)
		rl->retry_at = 0;
}

/* ---- commands ---- */

/* With sentinels and no master yet: keep the command for later. */
static struct redis_loop_req *
req_queue(struct redis_loop *rl, int argc, const char **argv,
    const size_t *lens, const char **error_r)
{
	struct redis_loop_req *req;

	if (rl->sstate != RS_ASKING && sentinel_start(rl, error_r) == -1)
		return NULL;
	if ((req = calloc(1, sizeof(*req))) == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	req->fmtlen = redisFormatCommandArgv(&req->fmt, argc, argv, lens);
	if (req->fmtlen < 0) {
		free(req);
		*error_r = "out of memory";
		return NULL;
	}
	return req;
}

struct redis_loop_req *
redis_loop_cmd(struct redis_loop *rl, int argc, const char **argv,
    const size_t *lens, redis_loop_cb *cb, void *ctx, const char **error_r)
{
	struct redis_loop_req *req;

	if (rl->ml.ac != NULL &&
	    (rl->ml.ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))) {
		*error_r = "closing";
		return NULL;
	}
	if (rl->ml.ac == NULL && !rl->master_known) {
		if ((req = req_queue(rl, argc, argv, lens, error_r)) == NULL)
			return NULL;
	} else {
		if (rl->ml.ac == NULL && rl_connect(rl, error_r) == -1)
			return NULL;
		if ((req = calloc(1, sizeof(*req))) == NULL) {
			*error_r = "out of memory";
			return NULL;
		}
		if (redisAsyncCommandArgv(rl->ml.ac, on_reply, req, argc, argv,
			lens) != REDIS_OK) {
			free(req);
			*error_r = "command refused by hiredis";
			return NULL;
		}
	}
	req->rl = rl;
	req->cb = cb;
	req->ctx = ctx;
	req->deadline = loop_now(rl->loop) + rl->timeout_ms;
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
	const redisReply *r = reply;
	const char *error = NULL;

	req_unlink(rl, req);
	if (reply == NULL)
		error = rl->why ? rl->why : ac->err ? ac->errstr : "closed";
	if (req->cb != NULL)
		req->cb(req->ctx, reply, error);
	free(req);
	/* a demoted master (failover): drop it, the sentinels know better */
	if (r != NULL && r->type == REDIS_REPLY_ERROR && rl->nsentinels > 0 &&
	    strncmp(r->str, "READONLY", 8) == 0 && rl->ml.ac == ac &&
	    !(ac->c.flags & REDIS_FREEING)) {
		log_warn(0, "redis.master_readonly",
		    "master_name=%s master=%s:%d", rl->master_name,
		    rl->master.host, rl->master.port);
		rl->why = "master became read-only";
		redisAsyncFree(ac); /* after this callback returns */
	}
	rearm(rl);
}

/* A command that never reached hiredis: answer it here. */
static void
req_fail(struct redis_loop_req *req, const char *error)
{
	struct redis_loop *rl = req->rl;

	req_unlink(rl, req);
	if (req->cb != NULL)
		req->cb(req->ctx, NULL, error);
	free(req->fmt);
	free(req);
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
	struct redis_loop_req *q;
	uint64_t now = loop_now(rl->loop);

	(void)t;
	/* still waiting for the sentinels: only the late ones give up */
	while ((q = rl->head) != NULL && q->fmt != NULL && q->deadline <= now)
		req_fail(q, "timeout");
	if (rl->head == NULL || rl->ml.ac == NULL) {
		rearm(rl);
		return;
	}
	if (rl->head->deadline > now) {
		rearm(rl);
		return;
	}
	rl->retry_at = now + rl->retry_ms;
	rl_drop(rl, "timeout");
}

int
redis_loop_sentinel_check(const char *group, const char *redis,
    char *const *sentinels, unsigned nsentinels, const char *master_name,
    const struct cfg_loc *loc, struct cfg_error *err)
{
	struct cfg_addr a;

	if (nsentinels == 0) {
		if (master_name == NULL)
			return 0;
		cfg_error_at(err, loc,
		    "%s.master_name needs %s.sentinels = [\"host:port\", ...]",
		    group, group);
		return -1;
	}
	if (redis != NULL) {
		cfg_error_at(err, loc,
		    "%s.redis and %s.sentinels exclude each other: with "
		    "sentinels the master is asked for, drop redis",
		    group, group);
		return -1;
	}
	if (master_name == NULL || master_name[0] == '\0') {
		cfg_error_at(err, loc,
		    "%s.sentinels needs %s.master_name (the name in the "
		    "sentinels' \"sentinel monitor <name> ...\" line)",
		    group, group);
		return -1;
	}
	if (nsentinels > 16) {
		cfg_error_at(err, loc, "%s.sentinels: at most 16", group);
		return -1;
	}
	for (unsigned i = 0; i < nsentinels; i++) {
		if (cfg_parse_addr(sentinels[i], &a) == -1) {
			cfg_error_at(err, loc,
			    "%s.sentinels: '%s' must be \"host:port\" with a "
			    "numeric host",
			    group, sentinels[i]);
			return -1;
		}
	}
	return 0;
}
