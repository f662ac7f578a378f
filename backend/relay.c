/*
 * relay.c - the queue runner (backend/relay.h): on one worker's loop, a
 * timer and a wake-up eventfd start scans of the spool; each due entry
 * becomes an attempt, an SMTP client connection to the smarthost
 * (relay_client.c) driven by the replies it reads; its outcome is
 * written back to the spool here, with a DSN for recipients that failed
 * (relay_dsn.c).
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

#define RELAY_DUE_MAX 1024
#define RELAY_ERR_RETRY_MS 1000

/* runner */
static void wake_notify(void *arg);
static void wake_cb(void *ctx, const char *p, ssize_t n);
static void timer_cb_fn(struct timer *t, void *arg);
static void scan(struct relay *r);
static void arm(struct relay *r, uint64_t ms);

/* attempts */
static void attempt_start(struct relay *r, const char *id);
static void attempt_free(struct attempt *a);
static void load_run(struct pool_job *pj);
static void load_done(struct pool_job *pj);
static void update_run(struct pool_job *pj);
static void update_done(struct pool_job *pj);

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
	if (r->spool != NULL)
		spool_set_notify(r->spool, wake_notify, r);
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
	if (r->spool != NULL)
		spool_set_notify(r->spool, NULL, NULL);
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

static void
wake_notify(void *arg)
{
	relay_wake(arg);
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

int
relay_submit(struct attempt *a, struct pool_job *j, pool_run_fn *run,
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
	if (relay_submit(a, &j->base, load_run, load_done, false) == -1) {
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
void
relay_attempt_release(struct attempt *a)
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
		relay_attempt_release(a);
		return;
	}
	if (!has_pending(&a->e) || a->diag[0] != '\0' || a->naddr == 0) {
		/* nothing to send (only a DSN is due), or no address */
		if (has_pending(&a->e) && a->diag[0] == '\0')
			snprintf(a->diag, sizeof(a->diag),
			    "no address for the smarthost %s", a->r->host);
		if (a->diag[0] != '\0')
			relay_client_fail(a, false, a->diag);
		relay_finish(a);
		return;
	}
	relay_client_connect(a);
}
/* The SMTP part is over: write the outcome back. */
void
relay_finish(struct attempt *a)
{
	struct attempt_job *j;

	if (a->r->stopping) {
		relay_attempt_release(a);
		return;
	}
	a->st = A_UPDATE;
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->a = a,
		relay_submit(a, &j->base, update_run, update_done, true)) ==
		-1) {
		free(j);
		log_error(a->sid, "relay.update_failed",
		    "queue_id=%s error=\"cannot queue the update\"", a->id);
		arm(a->r, RELAY_ERR_RETRY_MS);
		relay_attempt_release(a);
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
	/* a clock stepped back must not expire everything at once */
	expired = now > e->arrival &&
	    (uint64_t)(now - e->arrival) * 1000 >= rc->give_up;
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
	bool failed;

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
	failed = a->error[0] != '\0';
	relay_attempt_release(a);
	/* a slot is free, and a DSN may have been spooled; but an entry
	 * whose update failed still looks due: not again at once */
	if (failed)
		arm(r, r->conf->retry_min);
	else
		scan(r);
}
