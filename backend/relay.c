/*
 * relay.c - the queue runner (backend/relay.h): on one worker's loop, a
 * timer and a wake-up eventfd start scans of the spool; each due entry
 * becomes an attempt, an SMTP client connection to the smarthost driven
 * by the replies it reads (proto/smtp_resp.h); its outcome is written
 * back to the spool, with a DSN for recipients that failed.
 *
 * An attempt's life: LOAD (pool: envelope, message fd, the smarthost's
 * addresses) -> CONNECT -> GREETING -> EHLO -> STARTTLS -> (TLS
 * handshake) -> EHLO -> AUTH -> MAIL -> RCPT... -> DATA -> BODY (pool
 * reads of 64 KiB, dot-stuffed, written while the connection's output
 * queue has room) -> DOT -> QUIT; then UPDATE (pool: retry time or
 * give-up, DSN, envelope rewrite or removal). The connection's on_close
 * is the one place an SMTP session ends, so every path reaches UPDATE
 * exactly once. Disk and DNS never run on the loop thread.
 *
 * An attempt owns its jobs: it is freed only when no job is out and its
 * connection has gone, so a job's done() reaches it through its pointer
 * rather than a lookup. At shutdown (relay_worker_stop) nothing new is
 * started and answers still out only free what they carry: the spool
 * stays as it was, and the entry is tried again at the next start.
 *
 * Must never: answer for a recipient before the smarthost did, lose an
 * entry (it leaves the spool only when every recipient is final and the
 * DSN, if one is due, is durable), or log message content.
 */
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backend/relay.h"
#include "backend/relay_private.h"
#include "backend/spool.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "core/timer.h"
#include "core/tls.h"
#include "proto/base64.h"
#include "proto/smtp_data.h"
#include "proto/smtp_resp.h"
#include "store/maildir.h"

#define RELAY_FLOW 0x72656c6179ull /* "relay": its own fairness flow */
#define RELAY_CHUNK (64u << 10)
#define RELAY_ADDRS 4
#define RELAY_DUE_MAX 1024
#define RELAY_ERR_RETRY_MS 1000

struct relay_metrics {
	int queued;
	int att_sent, att_deferred, att_failed;
	int delivered, bounced;
	int dsn_inbox, dsn_spool, dsn_none;
};

struct attempt;

struct relay {
	const struct relay_conf *conf;
	char *mail_root;
	struct spool *spool;
	struct pool *store;
	struct metrics *metrics;
	struct tls_client *tls; /* NULL: starttls off */
	char host[256], port[8], helo[256];
	char *auth_plain; /* "AUTH PLAIN <base64>\r\n", or NULL */
	int wake_fd;	  /* eventfd relay_wake() writes */
	struct relay_metrics m;

	/* the runner's loop thread only */
	struct loop *loop;
	struct pool_outbox *ob;
	struct fd_watch *wake;
	struct timer timer;
	bool started, stopping, scanning, rescan;
	struct attempt *attempts;
	unsigned nattempts;
	uint64_t next_sid;
};

enum astate {
	A_LOAD,
	A_CONNECT,
	A_GREETING,
	A_EHLO,
	A_STARTTLS,
	A_TLS,
	A_EHLO2,
	A_AUTH,
	A_MAIL,
	A_RCPT,
	A_DATA,
	A_BODY,
	A_DOT,
	A_QUIT,
	A_UPDATE,
};

static const char *const astate_names[] = { "load", "connect", "greeting",
	"ehlo", "starttls", "tls", "ehlo", "auth", "mail", "rcpt", "data",
	"data", "end of data", "quit", "update" };

struct chunk_job {
	struct pool_job base;
	struct attempt *a;
	ssize_t n; /* bytes read, or -errno */
	char buf[RELAY_CHUNK];
};

struct attempt {
	struct relay *r;
	struct attempt *next;
	uint64_t sid;
	enum astate st;
	char id[SPOOL_ID_LEN + 1];
	struct spool_entry e;
	bool loaded;
	int fd; /* msg/<id> */
	struct sockaddr_storage addr[RELAY_ADDRS];
	socklen_t alen[RELAY_ADDRS];
	unsigned naddr, ai;
	struct conn *c;
	struct smtp_resp resp;
	size_t ri; /* the recipient the RCPT out is for */
	bool *acc; /* accepted in this transaction, by recipient */
	unsigned nacc;
	bool tls, smtp; /* TLS is on; an SMTP session took place */
	bool jobs;	/* a pool job is out */
	bool wait_drain, closed;
	bool gone; /* the entry was removed meanwhile */
	uint64_t off;
	struct smtp_stuff stuff;
	struct chunk_job *chunk;
	char diag[SPOOL_REPLY_MAX + 1]; /* why the session failed */
	char last[SPOOL_REPLY_MAX + 1]; /* the last reply, for logs */
	/* the update's outcome, for logs and metrics */
	unsigned n_sent, n_bounced, n_pending;
	const char *dsn;
	char error[128];
};

/* runner */
static void wake_cb(void *ctx, const char *p, ssize_t n);
static void timer_cb_fn(struct timer *t, void *arg);
static void scan(struct relay *r);
static void arm(struct relay *r, uint64_t ms);

/* attempts */
static void attempt_start(struct relay *r, const char *id);
static void attempt_free(struct attempt *a);
static void attempt_maybe_free(struct attempt *a);
static void load_run(struct pool_job *pj);
static void load_done(struct pool_job *pj);
static void connect_next(struct attempt *a);
static void finish(struct attempt *a);
static void update_run(struct pool_job *pj);
static void update_done(struct pool_job *pj);
static int submit(struct attempt *a, struct pool_job *j, pool_run_fn *run,
    pool_done_fn *done, bool admitted);

/* the SMTP client */
static void c_open(struct conn *c);
static void c_data(struct conn *c, const char *p, size_t n);
static void c_drain(struct conn *c);
static void c_timer(struct conn *c);
static void c_close(struct conn *c, enum conn_reason why);
static void on_reply(struct attempt *a, const char *rest, size_t nrest);
static void send_cmd(struct attempt *a, enum astate st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void after_ehlo(struct attempt *a);
static void send_mail(struct attempt *a);
static void next_rcpt(struct attempt *a);
static void fail_session(struct attempt *a, bool perm, const char *why);
static void quit(struct attempt *a);
static void apply_accepted(struct attempt *a);
static void set_rcpt(struct spool_rcpt *rc, enum spool_rcpt_state st,
    const char *status, const char *reply);
static void body_next(struct attempt *a);
static void chunk_run(struct pool_job *pj);
static void chunk_done(struct pool_job *pj);

static const struct conn_handler client_handler = {
	.on_open = c_open,
	.on_data = c_data,
	.on_drain = c_drain,
	.on_timer = c_timer,
	.on_close = c_close,
};

/* ---- start-up (main thread) ---------------------------------------- */

static int
split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t hl;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl >= 2 && colon[-1] == ']') {
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= hcap || strlen(colon + 1) >= pcap)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, pcap, "%s", colon + 1);
	return 0;
}

/* "AUTH PLAIN base64(\0user\0password)\r\n" from password_file's first
 * line. */
static int
load_auth(struct relay *r, const char **error_r)
{
	const struct relay_conf *rc = r->conf;
	char pw[512], raw[1100], b64[1500];
	size_t ul = strlen(rc->user), pl, bl;
	FILE *f;

	if ((f = fopen(rc->password_file, "re")) == NULL) {
		*error_r = "relay.password_file cannot be read";
		return -1;
	}
	if (fgets(pw, sizeof(pw), f) == NULL)
		pw[0] = '\0';
	fclose(f);
	pw[strcspn(pw, "\r\n")] = '\0';
	pl = strlen(pw);
	if (pl == 0 || ul + pl + 2 > sizeof(raw)) {
		explicit_bzero(pw, sizeof(pw));
		*error_r = "relay.password_file: empty or too long";
		return -1;
	}
	raw[0] = '\0';
	memcpy(raw + 1, rc->user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pw, pl);
	explicit_bzero(pw, sizeof(pw));
	if (base64_encode(raw, ul + pl + 2, b64, sizeof(b64), &bl) == -1 ||
	    asprintf(&r->auth_plain, "AUTH PLAIN %.*s\r\n", (int)bl, b64) ==
		-1) {
		explicit_bzero(raw, sizeof(raw));
		*error_r = "out of memory";
		r->auth_plain = NULL;
		return -1;
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
	return 0;
}

static int
register_metrics(struct relay *r)
{
	struct metrics *m = r->metrics;
	struct relay_metrics *x = &r->m;
	const char *ha = "Relay attempts by result.";
	const char *hd = "DSNs written, by where they went.";

	x->queued = metrics_gauge_set(m, "relay_queued",
	    "Entries in the relay spool at the last scan.", NULL);
	x->att_sent = metrics_counter(m, "relay_attempts_total", ha,
	    "result=\"sent\"");
	x->att_deferred = metrics_counter(m, "relay_attempts_total", ha,
	    "result=\"deferred\"");
	x->att_failed = metrics_counter(m, "relay_attempts_total", ha,
	    "result=\"failed\"");
	x->delivered = metrics_counter(m, "relay_delivered_total",
	    "Recipients the smarthost accepted.", NULL);
	x->bounced = metrics_counter(m, "relay_bounced_total",
	    "Recipients given up on (permanent failure or give-up time).",
	    NULL);
	x->dsn_inbox = metrics_counter(m, "relay_dsn_total", hd,
	    "to=\"inbox\"");
	x->dsn_spool = metrics_counter(m, "relay_dsn_total", hd,
	    "to=\"spool\"");
	x->dsn_none = metrics_counter(m, "relay_dsn_total", hd, "to=\"none\"");
	if (x->queued < 0 || x->att_sent < 0 || x->att_deferred < 0 ||
	    x->att_failed < 0 || x->delivered < 0 || x->bounced < 0 ||
	    x->dsn_inbox < 0 || x->dsn_spool < 0 || x->dsn_none < 0)
		return -1;
	return 0;
}

struct relay *
relay_new(const struct relay_opts *o, const char **error_r)
{
	const struct relay_conf *rc = o->conf;
	struct relay *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	r->wake_fd = -1;
	r->conf = rc;
	r->spool = o->spool;
	r->store = o->store;
	r->metrics = o->metrics;
	r->next_sid = 0x7265000000000000ull;
	if ((r->mail_root = strdup(o->mail_root)) == NULL) {
		*error_r = "out of memory";
		goto fail;
	}
	if (!relay_conf_enabled(rc) ||
	    split_hostport(rc->smarthost, r->host, sizeof(r->host), r->port,
		sizeof(r->port)) == -1) {
		*error_r = "relay.smarthost is not host:port";
		goto fail;
	}
	if (rc->helo != NULL)
		snprintf(r->helo, sizeof(r->helo), "%s", rc->helo);
	else if (gethostname(r->helo, sizeof(r->helo)) == -1 ||
	    r->helo[0] == '\0')
		snprintf(r->helo, sizeof(r->helo), "localhost");
	r->helo[sizeof(r->helo) - 1] = '\0';
	if (rc->starttls == RELAY_STARTTLS_REQUIRED) {
		const struct tls_client_conf tc = { .ca_file = rc->ca_file,
			.verify = rc->verify };

		if ((r->tls = tls_client_new(&tc, error_r)) == NULL)
			goto fail;
	}
	if (rc->user != NULL && load_auth(r, error_r) == -1)
		goto fail;
	if ((r->wake_fd = eventfd(0, EFD_CLOEXEC)) == -1) {
		*error_r = "eventfd failed";
		goto fail;
	}
	if (r->metrics != NULL && register_metrics(r) == -1) {
		*error_r = "metrics registry: out of memory";
		goto fail;
	}
	return r;
fail:
	relay_free(&r);
	return NULL;
}

void
relay_free(struct relay **rp)
{
	struct relay *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	while (r->attempts != NULL) {
		struct attempt *a = r->attempts;

		r->attempts = a->next;
		attempt_free(a);
	}
	if (r->wake_fd != -1)
		close(r->wake_fd);
	tls_client_unref(&r->tls);
	if (r->auth_plain != NULL) {
		explicit_bzero(r->auth_plain, strlen(r->auth_plain));
		free(r->auth_plain);
	}
	free(r->mail_root);
	free(r);
}

bool
relay_enabled(const struct relay *r)
{
	return r != NULL;
}

/* Any thread: the eventfd stays open until relay_free(), which runs
 * after every worker has stopped. */
void
relay_wake(struct relay *r)
{
	uint64_t one = 1;

	if (r == NULL || r->wake_fd == -1)
		return;
	if (write(r->wake_fd, &one, sizeof(one)) == -1)
		return; /* the counter cannot overflow in practice */
}

/* ---- the runner on its loop ---------------------------------------- */

int
relay_worker_start(struct relay *r, struct loop *l, struct pool_outbox *ob)
{
	int fd = dup(r->wake_fd);

	r->loop = l;
	r->ob = ob;
	timer_init(&r->timer, l, timer_cb_fn, r);
	if (fd == -1 ||
	    (r->wake = loop_watch_fd(l, fd, sizeof(uint64_t), wake_cb, r)) ==
		NULL)
		return -1;
	r->started = true;
	log_info(0, "relay.start", "smarthost=%s:%s starttls=%s verify=%s",
	    r->host, r->port, r->tls ? "required" : "off",
	    r->conf->verify ? "yes" : "no");
	scan(r);
	return 0;
}

void
relay_worker_stop(struct relay *r)
{
	if (r == NULL || !r->started)
		return;
	r->stopping = true;
	timer_stop(&r->timer);
	loop_unwatch_fd(&r->wake);
}

static void
wake_cb(void *ctx, const char *p, ssize_t n)
{
	struct relay *r = ctx;

	if (p == NULL) {
		r->wake = NULL; /* the watch has ended; scans stay timed */
		return;
	}
	if (!r->stopping)
		scan(r);
}

static void
timer_cb_fn(struct timer *t, void *arg)
{
	struct relay *r = arg;

	if (!r->stopping)
		scan(r);
}

static void
arm(struct relay *r, uint64_t ms)
{
	if (r->stopping)
		return;
	if (ms == 0)
		ms = 1;
	if (!timer_armed(&r->timer) ||
	    timer_deadline(&r->timer) > loop_now(r->loop) + ms)
		(void)timer_set(&r->timer, ms);
}

struct due {
	char id[SPOOL_ID_LEN + 1];
};

struct scan_job {
	struct pool_job base;
	struct relay *r;
	struct due *due;
	size_t ndue, total;
	time_t earliest; /* 0: none in the future */
	const char *error;
};

static void
scan_run(struct pool_job *pj)
{
	struct scan_job *j = (struct scan_job *)pj;
	char(*ids)[SPOOL_ID_LEN + 1] = NULL;
	time_t now = time(NULL);
	size_t n = 0;

	if (spool_list(j->r->spool, &ids, &n, &j->error) == -1)
		return;
	j->total = n;
	j->due = calloc(n < RELAY_DUE_MAX ? n + 1 : RELAY_DUE_MAX,
	    sizeof(*j->due));
	for (size_t i = 0; i < n && j->due != NULL; i++) {
		struct spool_entry e;
		const char *err;

		if (spool_load(j->r->spool, ids[i], &e, &err) == -1) {
			if (errno != ENOENT)
				log_warn(0, "relay.entry_unreadable",
				    "queue_id=%s error=\"%s\"", ids[i], err);
			continue;
		}
		if (e.next <= now && j->ndue < RELAY_DUE_MAX)
			memcpy(j->due[j->ndue++].id, ids[i], SPOOL_ID_LEN + 1);
		else if (e.next > now &&
		    (j->earliest == 0 || e.next < j->earliest))
			j->earliest = e.next;
		spool_entry_free(&e);
	}
	free(ids);
}

static bool
in_flight(const struct relay *r, const char *id)
{
	for (const struct attempt *a = r->attempts; a != NULL; a = a->next)
		if (strcmp(a->id, id) == 0)
			return true;
	return false;
}

static void
scan_done(struct pool_job *pj)
{
	struct scan_job *j = (struct scan_job *)pj;
	struct relay *r = j->r;
	uint64_t wait = r->conf->scan_interval;
	size_t i;

	r->scanning = false;
	if (r->stopping) {
		free(j->due);
		free(j);
		return;
	}
	if (j->error != NULL) {
		log_error(0, "relay.scan_failed", "error=\"%s\"", j->error);
		wait = RELAY_ERR_RETRY_MS;
	} else if (r->metrics != NULL) {
		metrics_set(r->metrics, r->m.queued, (double)j->total);
	}
	for (i = 0; i < j->ndue; i++) {
		if (in_flight(r, j->due[i].id))
			continue;
		if (r->nattempts >= (unsigned)r->conf->connections)
			break; /* the next attempt's end scans again */
		attempt_start(r, j->due[i].id);
	}
	if (j->earliest != 0) {
		time_t now = time(NULL);
		uint64_t ms = j->earliest > now ?
		    (uint64_t)(j->earliest - now) * 1000 :
		    1;

		if (ms < wait)
			wait = ms;
	}
	arm(r, wait);
	free(j->due);
	free(j);
	if (r->rescan) {
		r->rescan = false;
		scan(r);
	}
}

static void
scan(struct relay *r)
{
	struct scan_job *j;

	if (r->stopping)
		return;
	if (r->scanning) {
		r->rescan = true;
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		arm(r, RELAY_ERR_RETRY_MS);
		return;
	}
	j->r = r;
	j->base.run = scan_run;
	j->base.done = scan_done;
	j->base.flow = RELAY_FLOW;
	if (pool_submit(r->store, r->ob, &j->base) == -1) {
		free(j);
		arm(r, RELAY_ERR_RETRY_MS);
		return;
	}
	r->scanning = true;
}

/* ---- attempts -------------------------------------------------------- */

struct attempt_job {
	struct pool_job base;
	struct attempt *a;
};

static int
submit(struct attempt *a, struct pool_job *j, pool_run_fn *run,
    pool_done_fn *done, bool admitted)
{
	struct relay *r = a->r;
	int rc;

	j->run = run;
	j->done = done;
	j->sid = a->sid;
	j->flow = RELAY_FLOW;
	rc = admitted ? pool_resubmit(r->store, r->ob, j) :
			pool_submit(r->store, r->ob, j);
	if (rc == 0)
		a->jobs = true;
	return rc;
}

static void
attempt_start(struct relay *r, const char *id)
{
	struct attempt *a = calloc(1, sizeof(*a));
	struct attempt_job *j = calloc(1, sizeof(*j));

	if (a == NULL || j == NULL) {
		free(a);
		free(j);
		arm(r, RELAY_ERR_RETRY_MS);
		return;
	}
	a->r = r;
	a->fd = -1;
	a->sid = ++r->next_sid;
	a->st = A_LOAD;
	memcpy(a->id, id, sizeof(a->id));
	j->a = a;
	if (submit(a, &j->base, load_run, load_done, false) == -1) {
		free(j);
		free(a);
		arm(r, RELAY_ERR_RETRY_MS);
		return;
	}
	a->next = r->attempts;
	r->attempts = a;
	r->nattempts++;
}

static void
attempt_free(struct attempt *a)
{
	if (a->loaded)
		spool_entry_free(&a->e);
	if (a->fd != -1)
		close(a->fd);
	free(a->acc);
	free(a->chunk);
	free(a);
}

/* Unlink and free once nothing refers to a any more. */
static void
attempt_maybe_free(struct attempt *a)
{
	struct relay *r = a->r;

	if (a->jobs || a->c != NULL)
		return;
	for (struct attempt **pp = &r->attempts; *pp != NULL; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			r->nattempts--;
			break;
		}
	attempt_free(a);
}

/* Pool: the envelope, the message, the smarthost's addresses. */
static void
load_run(struct pool_job *pj)
{
	struct attempt *a = ((struct attempt_job *)pj)->a;
	struct relay *r = a->r;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	const char *err = NULL;
	int rc;

	if (spool_load(r->spool, a->id, &a->e, &err) == -1) {
		a->gone = errno == ENOENT;
		snprintf(a->error, sizeof(a->error), "%s", err);
		return;
	}
	a->loaded = true;
	if ((a->fd = spool_open_msg(r->spool, a->id)) == -1) {
		snprintf(a->error, sizeof(a->error), "cannot open the message");
		return;
	}
	if ((a->acc = calloc(a->e.nrcpts, sizeof(*a->acc))) == NULL) {
		snprintf(a->error, sizeof(a->error), "out of memory");
		return;
	}
	if ((rc = getaddrinfo(r->host, r->port, &hints, &res)) != 0) {
		snprintf(a->diag, sizeof(a->diag),
		    "cannot resolve the smarthost %s: %s", r->host,
		    gai_strerror(rc));
		return;
	}
	for (struct addrinfo *ai = res; ai != NULL && a->naddr < RELAY_ADDRS;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(a->addr[0]))
			continue;
		memcpy(&a->addr[a->naddr], ai->ai_addr, ai->ai_addrlen);
		a->alen[a->naddr++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
}

static bool
has_pending(const struct spool_entry *e)
{
	for (size_t i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].state == SPOOL_RCPT_PENDING)
			return true;
	return false;
}

static void
load_done(struct pool_job *pj)
{
	struct attempt *a = ((struct attempt_job *)pj)->a;

	free(pj);
	a->jobs = false;
	if (a->r->stopping || a->error[0] != '\0') {
		if (a->error[0] != '\0' && !a->r->stopping && !a->gone)
			log_warn(a->sid, "relay.load_failed",
			    "queue_id=%s error=\"%s\"", a->id, a->error);
		attempt_maybe_free(a);
		return;
	}
	if (!has_pending(&a->e) || a->diag[0] != '\0' || a->naddr == 0) {
		/* nothing to send (only a DSN is due), or no address */
		if (has_pending(&a->e) && a->diag[0] == '\0')
			snprintf(a->diag, sizeof(a->diag),
			    "no address for the smarthost %s", a->r->host);
		if (a->diag[0] != '\0')
			fail_session(a, false, a->diag);
		finish(a);
		return;
	}
	connect_next(a);
}

static void
connect_next(struct attempt *a)
{
	struct relay *r = a->r;

	a->st = A_CONNECT;
	smtp_resp_init(&a->resp);
	a->c = conn_connect(r->loop, (struct sockaddr *)&a->addr[a->ai],
	    a->alen[a->ai], &client_handler, a);
	if (a->c == NULL) {
		fail_session(a, false, "cannot connect to the smarthost");
		finish(a);
		return;
	}
	conn_set_timer(a->c, r->conf->timeout);
}

/* The SMTP part is over: write the outcome back. */
static void
finish(struct attempt *a)
{
	struct attempt_job *j;

	if (a->r->stopping) {
		attempt_maybe_free(a);
		return;
	}
	a->st = A_UPDATE;
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->a = a, submit(a, &j->base, update_run, update_done, true)) ==
		-1) {
		free(j);
		log_error(a->sid, "relay.update_failed",
		    "queue_id=%s error=\"cannot queue the update\"", a->id);
		arm(a->r, RELAY_ERR_RETRY_MS);
		attempt_maybe_free(a);
	}
}

/* ---- the update, on the pool ------------------------------------------ */

static uint64_t
backoff_ms(const struct relay_conf *rc, unsigned attempts)
{
	uint64_t d = rc->retry_min;

	for (unsigned i = 1; i < attempts && d < rc->retry_max; i++)
		d *= 2;
	return d < rc->retry_max ? d : rc->retry_max;
}

/* The first RELAY_DSN_HEADERS_MAX bytes of the message, cut to its
 * header. */
static char *
read_header(int fd, size_t *len_r)
{
	char *b = malloc(RELAY_DSN_HEADERS_MAX);
	size_t got = 0;

	if (b == NULL)
		return NULL;
	while (got < RELAY_DSN_HEADERS_MAX) {
		ssize_t n = pread(fd, b + got, RELAY_DSN_HEADERS_MAX - got,
		    (off_t)got);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*len_r = relay_dsn_header_len(b, got);
	return b;
}

/* The DSN for e's failed recipients: into the submitting user's INBOX,
 * or through the spool to the sender. 0 or -1 (a->error). */
static int
send_dsn(struct attempt *a)
{
	struct relay *r = a->r;
	const struct relay_dsn d = { .reporting = r->helo,
		.remote = r->host,
		.now = time(NULL) };
	char *hdr, *dsn = NULL, *dir = NULL, qid[SPOOL_ID_LEN + 1];
	size_t hlen = 0, len = 0;
	const char *err = NULL;
	uint32_t uv, uid;
	int rc = -1;

	if ((hdr = read_header(a->fd, &hlen)) == NULL ||
	    relay_dsn_build(&a->e, &d, hdr, hlen, &dsn, &len) == -1) {
		snprintf(a->error, sizeof(a->error), "out of memory");
		goto out;
	}
	if (a->e.user != NULL) {
		if (maildir_user_dir(r->mail_root, a->e.user, &dir, &err) ==
			-1 ||
		    maildir_deliver(dir, "INBOX", dsn, len, NULL, &uv, &uid,
			&err) == -1) {
			snprintf(a->error, sizeof(a->error), "DSN to %s: %s",
			    a->e.user, err ? err : "failed");
			goto out;
		}
		a->dsn = "inbox";
	} else {
		const char *to[] = { a->e.sender };
		const struct spool_msg m = { .sender = "",
			.rcpts = to,
			.nrcpts = 1,
			.fd = -1,
			.data = dsn,
			.len = len };

		if (spool_put(r->spool, &m, qid, &err) == -1) {
			snprintf(a->error, sizeof(a->error), "DSN: %s", err);
			goto out;
		}
		a->dsn = "spool";
	}
	rc = 0;
out:
	free(hdr);
	free(dsn);
	free(dir);
	return rc;
}

static void
update_run(struct pool_job *pj)
{
	struct attempt *a = ((struct attempt_job *)pj)->a;
	const struct relay_conf *rc = a->r->conf;
	struct spool_entry *e = &a->e;
	time_t now = time(NULL);
	bool failed = false, expired;
	const char *err = NULL;

	if (a->smtp || a->diag[0] != '\0')
		e->attempts++;
	expired = (uint64_t)(now - e->arrival) * 1000 >= rc->give_up;
	for (size_t i = 0; i < e->nrcpts; i++) {
		struct spool_rcpt *r = &e->rcpts[i];

		if (r->state == SPOOL_RCPT_PENDING && expired) {
			/* keep the last temporary reason, say it expired */
			if (r->status[0] == '\0')
				snprintf(r->status, sizeof(r->status), "4.4.7");
			if (r->reply[0] == '\0')
				snprintf(r->reply, sizeof(r->reply),
				    "delivery time expired");
			r->state = SPOOL_RCPT_FAILED;
		}
		failed |= r->state == SPOOL_RCPT_FAILED;
	}
	a->n_pending = 0;
	for (size_t i = 0; i < e->nrcpts; i++)
		a->n_pending += e->rcpts[i].state == SPOOL_RCPT_PENDING;
	e->next = now + (time_t)((backoff_ms(rc, e->attempts) + 999) / 1000);
	if (failed) {
		/* never a DSN for a null sender (a DSN itself) */
		if (e->sender[0] == '\0')
			a->dsn = "none";
		else if (send_dsn(a) == -1)
			e->next = now + (time_t)((rc->retry_min + 999) / 1000);
		if (a->dsn != NULL)
			for (size_t i = 0; i < e->nrcpts; i++)
				if (e->rcpts[i].state == SPOOL_RCPT_FAILED) {
					e->rcpts[i].state = SPOOL_RCPT_BOUNCED;
					a->n_bounced++;
				}
	}
	if (spool_entry_done(e)) {
		if (spool_remove(a->r->spool, e->id, &err) == -1)
			snprintf(a->error, sizeof(a->error), "%s", err);
	} else if (spool_update(a->r->spool, e, &err) == -1) {
		snprintf(a->error, sizeof(a->error), "%s", err);
	}
}

static void
update_done(struct pool_job *pj)
{
	struct attempt *a = ((struct attempt_job *)pj)->a;
	struct relay *r = a->r;
	struct metrics_shard *s = loop_shard(r->loop);
	char reply[SPOOL_REPLY_MAX + 8];
	const char *result;

	free(pj);
	a->jobs = false;
	if (a->error[0] != '\0')
		log_error(a->sid, "relay.update_error",
		    "queue_id=%s error=\"%s\"", a->id, a->error);
	if (a->smtp || a->diag[0] != '\0') {
		result = a->n_pending > 0 ? "deferred" :
		    a->n_bounced > 0	  ? "failed" :
					    "sent";
		metrics_add(s,
		    a->n_pending > 0 ? r->m.att_deferred :
			a->n_bounced ? r->m.att_failed :
				       r->m.att_sent,
		    1);
		log_info(a->sid, "relay.attempt",
		    "queue_id=%s smarthost=%s:%s result=%s tls=%s sent=%u "
		    "bounced=%u pending=%u attempts=%u reply=%s",
		    a->id, r->host, r->port, result, a->tls ? "yes" : "no",
		    a->n_sent, a->n_bounced, a->n_pending, a->e.attempts,
		    log_quote(reply, sizeof(reply),
			a->diag[0] ? a->diag : a->last, (size_t)-1));
	}
	metrics_add(s, r->m.delivered, a->n_sent);
	metrics_add(s, r->m.bounced, a->n_bounced);
	if (a->dsn != NULL) {
		metrics_add(s,
		    strcmp(a->dsn, "inbox") == 0     ? r->m.dsn_inbox :
			strcmp(a->dsn, "spool") == 0 ? r->m.dsn_spool :
						       r->m.dsn_none,
		    1);
		log_info(a->sid, "relay.bounce",
		    "queue_id=%s dsn=%s recipients=%u", a->id, a->dsn,
		    a->n_bounced);
	}
	attempt_maybe_free(a);
	/* a slot is free, and a DSN may have been spooled */
	scan(r);
}

/* ---- the SMTP client ---------------------------------------------------- */

static void
set_rcpt(struct spool_rcpt *rc, enum spool_rcpt_state st, const char *status,
    const char *reply)
{
	rc->state = st;
	snprintf(rc->status, sizeof(rc->status), "%s", status);
	snprintf(rc->reply, sizeof(rc->reply), "%s", reply);
}

/* The session cannot go on: every pending recipient gets why (perm: as
 * a permanent failure). */
static void
fail_session(struct attempt *a, bool perm, const char *why)
{
	char status[16];

	if (why != a->diag)
		snprintf(a->diag, sizeof(a->diag), "%s", why);
	if (perm && a->resp.code >= 500)
		smtp_resp_status(&a->resp, status, sizeof(status));
	else if (a->resp.code >= 400 && a->resp.code < 500 && a->smtp)
		smtp_resp_status(&a->resp, status, sizeof(status));
	else
		snprintf(status, sizeof(status), perm ? "5.0.0" : "4.4.1");
	for (size_t i = 0; i < a->e.nrcpts; i++)
		if (a->e.rcpts[i].state == SPOOL_RCPT_PENDING)
			set_rcpt(&a->e.rcpts[i],
			    perm ? SPOOL_RCPT_FAILED : SPOOL_RCPT_PENDING,
			    status, a->diag);
}

static void
send_cmd(struct attempt *a, enum astate st, const char *fmt, ...)
{
	char b[SPOOL_ADDR_MAX + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	a->st = st;
	if (n < 0 || (size_t)n >= sizeof(b) ||
	    conn_write(a->c, b, (size_t)n) == -1) {
		fail_session(a, false, "cannot send a command");
		conn_abort(a->c, CR_NOMEM);
		return;
	}
	conn_set_timer(a->c, a->r->conf->timeout);
}

static void
quit(struct attempt *a)
{
	a->st = A_QUIT;
	(void)conn_write(a->c, "QUIT\r\n", 6);
	conn_close(a->c);
}

static void
c_open(struct conn *c)
{
	struct attempt *a = conn_ctx(c);

	if (a->st == A_CONNECT) {
		a->st = A_GREETING;
		a->smtp = true;
		conn_set_timer(c, a->r->conf->timeout);
	} else if (a->st == A_TLS) {
		a->tls = true;
		send_cmd(a, A_EHLO2, "EHLO %s\r\n", a->r->helo);
	}
}

static void
c_data(struct conn *c, const char *p, size_t n)
{
	struct attempt *a = conn_ctx(c);

	while (n > 0 && !conn_closing(c)) {
		size_t used = 0;
		enum smtp_resp_rc rc;

		if (a->st == A_QUIT || a->st == A_BODY || a->st == A_TLS) {
			/* nothing is expected now: a peer talking out of
			 * turn (or injecting before TLS) is not followed */
			if (a->st != A_QUIT) {
				fail_session(a, false,
				    "the smarthost sent data out of turn");
				conn_abort(c, CR_OVERFLOW);
			}
			return;
		}
		rc = smtp_resp_feed(&a->resp, p, n, &used);
		p += used;
		n -= used;
		if (rc == SMTP_RESP_INVALID) {
			fail_session(a, false,
			    "the smarthost's reply does not parse");
			conn_abort(c, CR_OVERFLOW);
			return;
		}
		if (rc == SMTP_RESP_MORE)
			return;
		snprintf(a->last, sizeof(a->last), "%s", a->resp.text);
		on_reply(a, p, n);
		smtp_resp_init(&a->resp);
	}
}

/* One whole reply in a->resp for the command of a->st. rest: what came
 * after it (only pipelining would send more, and we do not pipeline). */
static void
on_reply(struct attempt *a, const char *rest, size_t nrest)
{
	unsigned code = a->resp.code;
	char status[16];

	switch (a->st) {
	case A_GREETING:
		if (code / 100 != 2) {
			fail_session(a, false, a->resp.text);
			quit(a);
			return;
		}
		send_cmd(a, A_EHLO, "EHLO %s\r\n", a->r->helo);
		return;
	case A_EHLO:
	case A_EHLO2:
		if (code / 100 != 2) {
			fail_session(a, false, a->resp.text);
			quit(a);
			return;
		}
		after_ehlo(a);
		return;
	case A_STARTTLS:
		if (code != 220) {
			fail_session(a, false, a->resp.text);
			quit(a);
			return;
		}
		if (nrest > 0) { /* CVE-2011-0411 class: bytes before TLS */
			fail_session(a, false,
			    "the smarthost sent data after 220 to STARTTLS");
			conn_abort(a->c, CR_OVERFLOW);
			return;
		}
		a->st = A_TLS;
		if (conn_start_tls_client(a->c, a->r->tls, a->r->host) == -1) {
			fail_session(a, false, "cannot start TLS");
			conn_abort(a->c, CR_TLS);
		}
		return;
	case A_AUTH:
		if (code != 235) {
			fail_session(a, false, a->resp.text);
			quit(a);
			return;
		}
		send_mail(a);
		return;
	case A_MAIL:
		if (code / 100 != 2) {
			fail_session(a, code / 100 == 5, a->resp.text);
			quit(a);
			return;
		}
		a->ri = 0;
		a->nacc = 0;
		next_rcpt(a);
		return;
	case A_RCPT:
		smtp_resp_status(&a->resp, status, sizeof(status));
		if (code / 100 == 2) {
			a->acc[a->ri] = true;
			a->nacc++;
		} else {
			set_rcpt(&a->e.rcpts[a->ri],
			    code / 100 == 5 ? SPOOL_RCPT_FAILED :
					      SPOOL_RCPT_PENDING,
			    status, a->resp.text);
		}
		a->ri++;
		next_rcpt(a);
		return;
	case A_DATA:
		if (code != 354) {
			apply_accepted(a);
			quit(a);
			return;
		}
		a->st = A_BODY;
		a->off = 0;
		smtp_stuff_init(&a->stuff);
		body_next(a);
		return;
	case A_DOT:
		apply_accepted(a);
		quit(a);
		return;
	default:
		return;
	}
}

static void
after_ehlo(struct attempt *a)
{
	struct relay *r = a->r;

	if (r->tls != NULL && !a->tls) {
		if (!(a->resp.ext & SMTP_EXT_STARTTLS)) {
			fail_session(a, false,
			    "the smarthost does not offer STARTTLS");
			quit(a);
			return;
		}
		send_cmd(a, A_STARTTLS, "STARTTLS\r\n");
		return;
	}
	if (r->auth_plain != NULL) {
		if (!(a->resp.ext & SMTP_EXT_AUTH_PLAIN)) {
			fail_session(a, false,
			    "the smarthost does not offer AUTH PLAIN");
			quit(a);
			return;
		}
		a->st = A_AUTH;
		if (conn_write(a->c, r->auth_plain, strlen(r->auth_plain)) ==
		    -1) {
			conn_abort(a->c, CR_NOMEM);
			return;
		}
		conn_set_timer(a->c, r->conf->timeout);
		return;
	}
	send_mail(a);
}

static void
send_mail(struct attempt *a)
{
	send_cmd(a, A_MAIL, "MAIL FROM:<%s>\r\n", a->e.sender);
}

/* RCPT for the next pending recipient, or DATA (or QUIT when nobody was
 * accepted). */
static void
next_rcpt(struct attempt *a)
{
	while (a->ri < a->e.nrcpts &&
	    a->e.rcpts[a->ri].state != SPOOL_RCPT_PENDING)
		a->ri++;
	if (a->ri < a->e.nrcpts) {
		send_cmd(a, A_RCPT, "RCPT TO:<%s>\r\n", a->e.rcpts[a->ri].addr);
		return;
	}
	if (a->nacc == 0) {
		quit(a);
		return;
	}
	send_cmd(a, A_DATA, "DATA\r\n");
}

/* The reply to DATA or to the end of data holds for every recipient
 * RCPT accepted. */
static void
apply_accepted(struct attempt *a)
{
	unsigned code = a->resp.code;
	char status[16];

	smtp_resp_status(&a->resp, status, sizeof(status));
	for (size_t i = 0; i < a->e.nrcpts; i++) {
		if (!a->acc[i])
			continue;
		a->acc[i] = false;
		if (code / 100 == 2) {
			set_rcpt(&a->e.rcpts[i], SPOOL_RCPT_SENT, status,
			    a->resp.text);
			a->n_sent++;
		} else {
			set_rcpt(&a->e.rcpts[i],
			    code / 100 == 5 ? SPOOL_RCPT_FAILED :
					      SPOOL_RCPT_PENDING,
			    status, a->resp.text);
		}
	}
	a->nacc = 0;
}

/* ---- DATA: the message from the spool file, dot-stuffed ---------------- */

static void
body_next(struct attempt *a)
{
	if (a->chunk == NULL &&
	    (a->chunk = malloc(sizeof(*a->chunk))) == NULL) {
		fail_session(a, false, "out of memory");
		conn_abort(a->c, CR_NOMEM);
		return;
	}
	memset(&a->chunk->base, 0, sizeof(a->chunk->base));
	a->chunk->a = a;
	if (submit(a, &a->chunk->base, chunk_run, chunk_done, true) == -1) {
		fail_session(a, false, "cannot queue a read");
		conn_abort(a->c, CR_NOMEM);
	}
}

static void
chunk_run(struct pool_job *pj)
{
	struct chunk_job *j = (struct chunk_job *)pj;
	ssize_t n;

	do
		n = pread(j->a->fd, j->buf, sizeof(j->buf), (off_t)j->a->off);
	while (n == -1 && errno == EINTR);
	j->n = n == -1 ? -errno : n;
}

static void
chunk_done(struct pool_job *pj)
{
	struct chunk_job *j = (struct chunk_job *)pj;
	struct attempt *a = j->a;
	char out[2 * 4096 + SMTP_STUFF_END_MAX];
	size_t off = 0;

	a->jobs = false;
	if (a->r->stopping || a->c == NULL || conn_closing(a->c)) {
		/* the connection went while the read was out */
		if (a->c == NULL && a->closed && !a->r->stopping)
			finish(a);
		else
			attempt_maybe_free(a);
		return;
	}
	if (j->n < 0) {
		fail_session(a, false, "cannot read the spooled message");
		conn_abort(a->c, CR_NONE);
		return;
	}
	if (j->n == 0) {
		size_t w = smtp_stuff_end(&a->stuff, out, sizeof(out));

		a->st = A_DOT;
		if (conn_write(a->c, out, w) == -1)
			conn_abort(a->c, CR_NOMEM);
		else
			conn_set_timer(a->c, a->r->conf->timeout);
		return;
	}
	while (off < (size_t)j->n) {
		size_t used, w;

		w = smtp_stuff_put(&a->stuff, j->buf + off, (size_t)j->n - off,
		    &used, out, sizeof(out));
		off += used;
		if (w > 0 && conn_write(a->c, out, w) == -1) {
			conn_abort(a->c, CR_NOMEM);
			return;
		}
	}
	a->off += (uint64_t)j->n;
	conn_set_timer(a->c, a->r->conf->timeout);
	if (conn_out_full(a->c))
		a->wait_drain = true;
	else
		body_next(a);
}

static void
c_drain(struct conn *c)
{
	struct attempt *a = conn_ctx(c);

	if (a->wait_drain && a->st == A_BODY) {
		a->wait_drain = false;
		body_next(a);
	}
}

static void
c_timer(struct conn *c)
{
	struct attempt *a = conn_ctx(c);
	char why[96];

	snprintf(why, sizeof(why), "timeout waiting for the smarthost (%s)",
	    astate_names[a->st]);
	fail_session(a, false, why);
	conn_abort(c, CR_TIMEOUT);
}

static void
c_close(struct conn *c, enum conn_reason why)
{
	struct attempt *a = conn_ctx(c);
	char text[SPOOL_REPLY_MAX];

	a->c = NULL;
	a->closed = true;
	if (why == CR_DRAIN || a->r->stopping) {
		/* shutting down: the entry stays as it was */
		a->r->stopping = a->r->stopping || why == CR_DRAIN;
		attempt_maybe_free(a);
		return;
	}
	if (a->st == A_CONNECT && a->ai + 1 < a->naddr) {
		a->ai++;
		connect_next(a);
		return;
	}
	if (a->st != A_QUIT && a->diag[0] == '\0') {
		const char *tr = why == CR_TLS && conn_tls(c) != NULL ?
		    tls_conn_reason(conn_tls(c)) :
		    NULL;

		if (a->st == A_CONNECT)
			snprintf(text, sizeof(text),
			    "cannot connect to the smarthost %s:%s (%s)",
			    a->r->host, a->r->port, conn_reason_name(why));
		else if (why == CR_TLS || a->st == A_TLS)
			snprintf(text, sizeof(text),
			    "TLS with the smarthost failed (%s)",
			    tr ? tr : conn_reason_name(why));
		else
			snprintf(text, sizeof(text),
			    "connection lost during %s (%s)",
			    astate_names[a->st], conn_reason_name(why));
		fail_session(a, false, text);
	}
	if (a->jobs) /* a read is out: its answer finishes */
		return;
	finish(a);
}
