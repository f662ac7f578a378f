/*
 * health.c - active health checks of the back ends (see health.h).
 *
 * One target per (back end, protocol it serves), each with its own timer
 * on the checking loop, so checks are spread over the interval and a slow
 * back end delays nobody else. A check is an ordinary outgoing conn on the
 * ring: connect, (implicit TLS handshake,) read one greeting line of at
 * most GREET_MAX bytes, say goodbye politely, close. Its conn timer is the
 * check's timeout. Exactly one result per check, recorded before or at
 * on_close; the next check is scheduled from on_close, so at most one
 * check per target is in flight.
 *
 * Must never: block (it is all on the ring), or keep more than one
 * connection per target.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/tls.h"
#include "core/timer.h"
#include "proxy/health.h"
#include "proxy/route_private.h"

#define GREET_MAX 256

struct target {
	struct health *h;
	const struct route_backend *be;
	enum route_proto proto;
	struct conn *c;	    /* the check in flight, or NULL */
	struct timer timer; /* next check */
	uint64_t started;
	unsigned fails, oks; /* in a row */
	bool was_up;	     /* the state when we last looked */
	bool done;	     /* this check's result is recorded */
	size_t glen;
	char greet[GREET_MAX];
	int m_ok, m_fail;
};

struct health {
	struct router *r;
	struct loop *loop;
	struct tls_client *tc;
	uint64_t interval, timeout;
	unsigned fall, rise;
	uint64_t rounds;
	struct target *t;
	unsigned nt;
};

static void check_start(struct timer *tm, void *arg);
static void check_result(struct target *t, bool ok, const char *why);
static void on_open(struct conn *c);
static void on_data(struct conn *c, const char *p, size_t n);
static void on_eof(struct conn *c);
static void on_timer(struct conn *c);
static void on_close(struct conn *c, enum conn_reason why);

static const struct conn_handler check_handler = {
	.on_open = on_open,
	.on_data = on_data,
	.on_eof = on_eof,
	.on_timer = on_timer,
	.on_close = on_close,
};
static const struct conn_handler orphan_handler = { 0 };

static int
targets_init(struct health *h)
{
	unsigned n = router_nbackends(h->r), k = 0;
	struct metrics *m = router_metrics(h->r);
	char l[160];

	h->t = calloc((size_t)n * ROUTE_NPROTO + 1, sizeof(*h->t));
	if (h->t == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		const struct route_backend *be = router_backend(h->r, i);

		for (unsigned p = 0; p < ROUTE_NPROTO; p++) {
			struct target *t = &h->t[k];

			if (be->addr[p].len == 0)
				continue;
			t->h = h;
			t->be = be;
			t->proto = (enum route_proto)p;
			t->was_up = route_backend_up(be, t->proto);
			t->m_ok = t->m_fail = -1;
			timer_init(&t->timer, h->loop, check_start, t);
			if (m != NULL) {
				snprintf(l, sizeof(l),
				    "backend=\"%s\",proto=\"%s\",result=\"ok\"",
				    be->name, route_proto_names[p]);
				t->m_ok = metrics_counter(m,
				    "health_checks_total",
				    "Back-end health checks, by result.", l);
				snprintf(l, sizeof(l),
				    "backend=\"%s\",proto=\"%s\",result=\"fail\"",
				    be->name, route_proto_names[p]);
				t->m_fail = metrics_counter(m,
				    "health_checks_total",
				    "Back-end health checks, by result.", l);
			}
			k++;
		}
	}
	h->nt = k;
	return 0;
}

struct health *
health_new(struct router *r, const struct route_health_conf *hc, struct loop *l,
    struct tls_client *tc, const char **error_r)
{
	struct health *h = calloc(1, sizeof(*h));

	if (h == NULL || (h->r = r, h->loop = l, targets_init(h) == -1)) {
		free(h);
		*error_r = "out of memory";
		return NULL;
	}
	h->interval = hc->interval ? hc->interval : 5000;
	h->timeout = hc->timeout ? hc->timeout : 2000;
	h->fall = hc->fall > 0 ? (unsigned)hc->fall : 2;
	h->rise = hc->rise > 0 ? (unsigned)hc->rise : 2;
	if (tc != NULL) {
		tls_client_ref(tc);
		h->tc = tc;
	}
	/* first round at once, spread over the first interval after that */
	for (unsigned i = 0; i < h->nt; i++)
		timer_set(&h->t[i].timer, 1 + h->interval * i / h->nt / 4);
	return h;
}

void
health_free(struct health **hp)
{
	struct health *h = *hp;

	if (h == NULL)
		return;
	*hp = NULL;
	for (unsigned i = 0; i < h->nt; i++) {
		struct target *t = &h->t[i];

		timer_stop(&t->timer);
		if (t->c != NULL) {
			conn_set_handler(t->c, &orphan_handler, NULL);
			conn_abort(t->c, CR_DRAIN);
			t->c = NULL;
		}
	}
	if (h->tc != NULL)
		tls_client_unref(&h->tc);
	free(h->t);
	free(h);
}

uint64_t
health_rounds(const struct health *h)
{
	return h->rounds;
}

static void
check_start(struct timer *tm, void *arg)
{
	struct target *t = arg;
	struct health *h = t->h;
	const struct route_addr *a = &t->be->addr[t->proto];

	(void)tm;
	t->done = false;
	t->glen = 0;
	t->started = loop_now(h->loop);
	t->c = conn_connect(h->loop, (const struct sockaddr *)&a->ss, a->len,
	    &check_handler, t);
	if (t->c == NULL) {
		check_result(t, false, "connect_failed");
		timer_set(&t->timer, h->interval);
		return;
	}
	if (t->be->tls == ROUTE_TLS_IMPLICIT && h->tc != NULL &&
	    conn_start_tls_client(t->c, h->tc,
		t->be->sni[0] ? t->be->sni : NULL) == -1) {
		check_result(t, false, "tls_setup");
		conn_abort(t->c, CR_TLS);
		return;
	}
	conn_set_timer(t->c, h->timeout);
}

/* Count one check, move the state after fall/rise in a row. */
static void
check_result(struct target *t, bool ok, const char *why)
{
	struct health *h = t->h;
	struct metrics_shard *s = loop_shard(h->loop);
	bool up = route_backend_up(t->be, t->proto);

	if (t->done)
		return;
	t->done = true;
	h->rounds++;
	if (!up && t->was_up)
		t->oks = 0; /* marked down elsewhere (a failed login) */
	metrics_add(s, ok ? t->m_ok : t->m_fail, 1);
	if (ok) {
		t->fails = 0;
		if (!up && ++t->oks >= h->rise)
			router_set_up(h->r, t->be->index, t->proto, true,
			    "health_check");
	} else {
		t->oks = 0;
		if (up && ++t->fails >= h->fall)
			router_set_up(h->r, t->be->index, t->proto, false, why);
		log_debug(0, "health.fail", "backend=%s proto=%s why=%s",
		    t->be->name, route_proto_names[t->proto], why);
	}
	t->was_up = route_backend_up(t->be, t->proto);
}

static void
on_open(struct conn *c)
{
	struct target *t = conn_ctx(c);
	uint64_t ms = loop_now(t->h->loop) - t->started;

	metrics_observe(loop_shard(t->h->loop),
	    router_connect_metric(t->h->r, t->be->index), ms / 1000.0);
	if (t->be->tls == ROUTE_TLS_IMPLICIT && t->h->tc == NULL) {
		/* no TLS client to read its greeting with: TCP only */
		check_result(t, true, "ok");
		conn_close(c);
	}
}

static void
on_data(struct conn *c, const char *p, size_t n)
{
	static const char *const bye[] = { "a LOGOUT\r\n", "QUIT\r\n",
		"QUIT\r\n" };
	struct target *t = conn_ctx(c);
	size_t room = sizeof(t->greet) - t->glen;

	if (t->done)
		return;
	if (n > room)
		n = room;
	memcpy(t->greet + t->glen, p, n);
	t->glen += n;
	if (memchr(t->greet, '\n', t->glen) == NULL &&
	    t->glen < sizeof(t->greet))
		return;
	if (route_greeting_ok(t->proto, t->greet, t->glen)) {
		check_result(t, true, "ok");
		conn_write(c, bye[t->proto], strlen(bye[t->proto]));
		conn_close(c);
	} else {
		check_result(t, false, "bad_greeting");
		conn_abort(c, CR_NONE);
	}
}

static void
on_eof(struct conn *c)
{
	struct target *t = conn_ctx(c);

	check_result(t, false, "closed");
	conn_abort(c, CR_EOF);
}

static void
on_timer(struct conn *c)
{
	struct target *t = conn_ctx(c);

	check_result(t, false, "timeout");
	conn_abort(c, CR_TIMEOUT);
}

static void
on_close(struct conn *c, enum conn_reason why)
{
	struct target *t = conn_ctx(c);

	if (t == NULL)
		return;
	t->c = NULL;
	check_result(t, false, conn_reason_name(why));
	timer_set(&t->timer, t->h->interval);
}
