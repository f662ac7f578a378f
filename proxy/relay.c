/*
 * relay.c - the relay: bytes from the client go to the upstream and back,
 * full duplex, with back-pressure both ways.
 *
 * A relay session joins two conns of the same loop. When one side's output
 * queue passes the high-water mark we pause reading from the other side,
 * and resume when it drains, so a slow reader costs at most one output
 * queue per direction, never unbounded memory. Either side ending closes
 * the other after it has flushed what it already has.
 *
 * Never: reads from a side whose peer queue is full, or touches a conn
 * after its on_close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "proxy/proxy.h"

struct relay_session {
	const struct relay_listener *rl;
	struct loop *loop;
	struct conn *client;
	struct conn *upstream;
	uint64_t sid;
	uint64_t c2u, u2c; /* plaintext bytes relayed */
	uint64_t started;
	enum conn_reason why;
	bool up_open;
};

static void client_open(struct conn *c);
static void client_data(struct conn *c, const char *p, size_t n);
static void client_drain(struct conn *c);
static void client_timer(struct conn *c);
static void client_close(struct conn *c, enum conn_reason why);
static void up_open(struct conn *c);
static void up_data(struct conn *c, const char *p, size_t n);
static void up_drain(struct conn *c);
static void up_close(struct conn *c, enum conn_reason why);
static void forward(struct relay_session *s, struct conn *from, struct conn *to,
    const char *p, size_t n);
static void session_end(struct relay_session *s);

static const struct conn_handler client_handler = {
	.on_open = client_open,
	.on_data = client_data,
	.on_drain = client_drain,
	.on_timer = client_timer,
	.on_close = client_close,
};

static const struct conn_handler upstream_handler = {
	.on_open = up_open,
	.on_data = up_data,
	.on_drain = up_drain,
	.on_timer = client_timer,
	.on_close = up_close,
};

const struct conn_handler *
relay_handler(void)
{
	return &client_handler;
}

int
relay_listener_init(struct relay_listener *rl, const struct proxy_relay_conf *r,
    const struct proxy_config *cf, struct metrics *m)
{
	static const double dur_buckets[] = { 0.01, 0.1, 1, 10, 60, 300, 1800,
		3600, 14400, 86400 };
	char labels[128];

	memset(rl, 0, sizeof(*rl));
	snprintf(rl->name, sizeof(rl->name), "%s", r->name);
	rl->upstream = r->upstream;
	rl->connect_ms = cf->limits.connect_timeout;
	rl->idle_ms = cf->limits.idle_timeout;
	snprintf(labels, sizeof(labels),
	    "listener=\"%s\",direction=\"client_to_upstream\"", r->name);
	rl->m_c2u = metrics_counter(m, "relay_bytes_total",
	    "Plaintext bytes relayed.", labels);
	snprintf(labels, sizeof(labels),
	    "listener=\"%s\",direction=\"upstream_to_client\"", r->name);
	rl->m_u2c = metrics_counter(m, "relay_bytes_total",
	    "Plaintext bytes relayed.", labels);
	snprintf(labels, sizeof(labels), "listener=\"%s\"", r->name);
	rl->m_duration = metrics_histogram(m, "relay_session_duration_seconds",
	    "Relay session duration.", labels, dur_buckets,
	    sizeof(dur_buckets) / sizeof(dur_buckets[0]));
	rl->m_connect_fail = metrics_counter(m,
	    "upstream_connect_failures_total",
	    "Upstream connections that failed or timed out.", labels);
	rl->m_expiry = metrics_gauge_set(m,
	    "tls_certificate_expiry_timestamp_seconds",
	    "Earliest certificate notAfter of the listener, Unix time.",
	    labels);
	if (rl->m_c2u < 0 || rl->m_u2c < 0 || rl->m_duration < 0 ||
	    rl->m_connect_fail < 0 || rl->m_expiry < 0)
		return -1;
	return 0;
}

/* TLS (if any) is done: connect to the upstream. Bytes the client sends
 * meanwhile queue on the upstream conn, bounded by the pause below. */
static void
client_open(struct conn *c)
{
	struct listener *li = conn_listener(c);
	const struct relay_listener *rl = listener_ctx(li);
	struct relay_session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		conn_abort(c, CR_NOMEM);
		return;
	}
	s->rl = rl;
	s->loop = conn_loop(c);
	s->client = c;
	s->sid = conn_sid(c);
	s->started = loop_now(conn_loop(c));
	conn_set_ctx(c, s);
	s->upstream = conn_connect(conn_loop(c),
	    (const struct sockaddr *)&rl->upstream.ss, rl->upstream.len,
	    &upstream_handler, s);
	if (s->upstream == NULL) {
		metrics_add(loop_shard(conn_loop(c)), rl->m_connect_fail, 1);
		log_warn(s->sid, "relay.connect_failed", "upstream=%s",
		    rl->upstream.text);
		conn_abort(c, CR_CONNECT);
		return;
	}
	conn_set_timer(s->upstream, rl->connect_ms);
	conn_set_timer(c, rl->connect_ms + rl->idle_ms);
	log_info(s->sid, "relay.open", "listener=%s client=%s upstream=%s",
	    rl->name, conn_peer(c), rl->upstream.text);
}

static void
forward(struct relay_session *s, struct conn *from, struct conn *to,
    const char *p, size_t n)
{
	if (conn_forward(from, to, p, n) == -1)
		return;
	conn_set_timer(s->client, s->rl->idle_ms);
	if (s->up_open)
		conn_set_timer(s->upstream, s->rl->idle_ms);
}

static void
client_data(struct conn *c, const char *p, size_t n)
{
	struct relay_session *s = conn_ctx(c);

	s->c2u += n;
	metrics_add(loop_shard(s->loop), s->rl->m_c2u, n);
	forward(s, c, s->upstream, p, n);
}

static void
up_data(struct conn *c, const char *p, size_t n)
{
	struct relay_session *s = conn_ctx(c);

	s->u2c += n;
	metrics_add(loop_shard(s->loop), s->rl->m_u2c, n);
	forward(s, c, s->client, p, n);
}

static void
client_drain(struct conn *c)
{
	struct relay_session *s = conn_ctx(c);

	if (s && s->upstream)
		conn_resume(s->upstream);
}

static void
up_drain(struct conn *c)
{
	struct relay_session *s = conn_ctx(c);

	if (s->client)
		conn_resume(s->client);
}

static void
up_open(struct conn *c)
{
	struct relay_session *s = conn_ctx(c);

	s->up_open = true;
	conn_set_timer(c, s->rl->idle_ms);
	if (s->client)
		conn_set_timer(s->client, s->rl->idle_ms);
}

/* Idle timeout on either side: end both. (A connect that times out is
 * torn down by the loop with CR_CONNECT and lands in up_close.) */
static void
client_timer(struct conn *c)
{
	struct relay_session *s = conn_ctx(c);

	if (s)
		s->why = CR_TIMEOUT;
	conn_abort(c, CR_TIMEOUT);
}

static void
client_close(struct conn *c, enum conn_reason why)
{
	struct relay_session *s = conn_ctx(c);

	if (s == NULL)
		return; /* TLS never finished: no session */
	s->client = NULL;
	if (s->why == CR_NONE)
		s->why = why;
	if (s->upstream) {
		conn_close(s->upstream);
		return;
	}
	session_end(s);
}

static void
up_close(struct conn *c, enum conn_reason why)
{
	struct relay_session *s = conn_ctx(c);

	s->upstream = NULL;
	if (why == CR_CONNECT) {
		metrics_add(loop_shard(conn_loop(c)), s->rl->m_connect_fail, 1);
		log_warn(s->sid, "relay.connect_failed", "upstream=%s",
		    s->rl->upstream.text);
	}
	if (s->why == CR_NONE)
		s->why = why;
	if (s->client) {
		conn_close(s->client);
		return;
	}
	session_end(s);
}

/* Both sides are gone: account, log one summary line, free. */
static void
session_end(struct relay_session *s)
{
	struct metrics_shard *ms = loop_shard(s->loop);
	double secs = (double)(loop_now(s->loop) - s->started) / 1000.0;

	metrics_observe(ms, s->rl->m_duration, secs);
	log_info(s->sid, "relay.close",
	    "listener=%s reason=%s client_to_upstream=%llu "
	    "upstream_to_client=%llu duration=%.3f",
	    s->rl->name, conn_reason_name(s->why), (unsigned long long)s->c2u,
	    (unsigned long long)s->u2c, secs);
	free(s);
}
