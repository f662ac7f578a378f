/*
 * conn.c - one TCP connection on a loop: receive through the provided
 * buffer ring, send with one op in flight, optional TLS in between,
 * back-pressure, timers and the one teardown path.
 *
 * Ownership: the loop owns every conn. A handler gets callbacks and may
 * call any conn_* function from inside them, on any conn of the same loop.
 * Teardown (conn_abort, or conn_close once flushed) calls on_close exactly
 * once, closes the fd exactly once, cancels what is in flight and parks the
 * conn on the loop's dead list; the loop frees it when its last op has
 * completed, so a late CQE never touches freed memory.
 *
 * Never: blocks, calls a handler after on_close, or re-enters a handler for
 * the same conn from conn_resume() (resumed delivery is deferred to the end
 * of the loop iteration).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conn_limit.h"
#include "core/log.h"
#include "core/loop_private.h"
#include "core/metrics.h"
#include "core/net.h"
#include "core/tls.h"
#include "proto/proxy_proto.h"

#define LOOP_BGID 1
#define CLOSE_FLUSH_MS 5000
#define LINGER_MS 2000
#define SWEEP_MS 1000 /* idle this long: buffers go back to the allocator */

static uint64_t sid_make(struct loop *l);
static void peer_format(char *dst, size_t cap, const struct sockaddr *sa);
static void recv_arm(struct conn *c);
static void recv_handle(struct conn *c, struct io_uring_cqe *cqe);
static void send_handle(struct conn *c, struct io_uring_cqe *cqe);
static void connect_handle(struct conn *c, struct io_uring_cqe *cqe);
static void poll_handle(struct conn *c, struct io_uring_cqe *cqe);
static void input(struct conn *c, const char *p, size_t n);
static void tls_pump(struct conn *c);
static void tls_established(struct conn *c);
static void tls_failed(struct conn *c, const char *reason);
static void peer_eof(struct conn *c);
static void flush(struct conn *c);
static void flush_later(struct conn *c);
static void flush_unlist(struct conn *c);
static void opened(struct conn *c);
static void teardown(struct conn *c, enum conn_reason why);
static void cancel_op(struct conn *c, struct op *op);
static void stop_reading(struct conn *c);
static void rearm_later(struct conn *c);
static void hs_fail_count(struct conn *c, const char *reason);
static bool eof_deferred(struct conn *c);
static void linger(struct conn *c);
static void hold(struct conn *c);
static void unhold(struct conn *c);
static int tls_attach(struct conn *c, struct tls_conn *t);
static void timer_fired(struct timer *t, void *arg);
static void session_start(struct conn *c);
static void proxy_input(struct conn *c, const char *p, size_t n);
static void refuse(struct conn *c, int why, const char *detail);
static socklen_t addr_copy(union conn_addr *dst, const struct sockaddr *sa);

static const char *const reason_names[CR_MAX] = {
	[CR_NONE] = "normal",
	[CR_EOF] = "eof",
	[CR_RESET] = "reset",
	[CR_TIMEOUT] = "timeout",
	[CR_TLS] = "tls",
	[CR_OVERFLOW] = "overflow",
	[CR_NOMEM] = "nomem",
	[CR_DRAIN] = "drain",
	[CR_CONNECT] = "connect",
	[CR_PROXY] = "proxy",
	[CR_REFUSED] = "refused",
	[CR_LIMIT] = "limit",
};

/* connections_refused_total's reasons, in listener->m_refused order */
enum {
	REFUSE_PROXY_UNTRUSTED,
	REFUSE_PROXY_INVALID,
	REFUSE_PROXY_TIMEOUT,
	REFUSE_NOT_ALLOWED,
	REFUSE_NREASONS
};
static const char *const refuse_reasons[REFUSE_NREASONS] = { "proxy_untrusted",
	"proxy_invalid", "proxy_timeout", "not_allowed" };

const char *
conn_reason_name(enum conn_reason r)
{
	return r < CR_MAX ? reason_names[r] : "unknown";
}

/* Session ids: a bijective mix (splitmix64) of a per-loop random key plus
 * a counter, so ids are unique within a loop and unguessable across. */
static uint64_t
sid_make(struct loop *l)
{
	uint64_t z = l->sid_key + ++l->sid_next * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

static void
peer_format(char *dst, size_t cap, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(dst, cap, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(dst, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(dst, cap, "unix");
	}
}

struct conn *
conn_new(struct loop *l, int fd, struct listener *li,
    const struct conn_handler *h, void *ctx)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = l;
	c->li = li;
	c->h = h;
	c->ctx = ctx;
	c->fd = fd;
	c->sid = sid_make(l);
	c->started = l->now;
	c->op_recv = (struct op){ OP_RECV, c };
	c->op_send = (struct op){ OP_SEND, c };
	c->op_connect = (struct op){ OP_CONNECT, c };
	c->op_poll = (struct op){ OP_HANGUP, c };
	timer_init(&c->timer, l, timer_fired, c);
	if (li) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
			c->peer_len = addr_copy(&c->peer_sa,
			    (struct sockaddr *)&ss);
			peer_format(c->peer, sizeof(c->peer),
			    (struct sockaddr *)&ss);
		}
		metrics_gauge_add(l->shard, li->m_open, 1);
	}
	c->next = l->live;
	if (l->live)
		l->live->prev = c;
	l->live = c;
	l->nconns++;
	return c;
}

void
conn_free(struct conn *c)
{
	c->loop->released += sizeof(*c) + c->out.cap + c->pend.cap +
	    c->stash.cap + c->early.cap + (c->tls ? 16384 : 0);
	tls_conn_free(c->tls);
	buf_free(&c->out);
	buf_free(&c->pend);
	buf_free(&c->stash);
	buf_free(&c->early);
	free(c->connect_sa);
	if (c->fd != -1)
		close(c->fd);
	free(c);
}

/* An accepted connection: a PROXY header first where the listener wants
 * one, then TLS if the listener has it, else open. */
void
conn_start(struct conn *c)
{
	struct listener *li = c->li;

	if (li->proxy) {
		if (!net_list_match(li->proxy_nets, li->nproxy_nets,
			c->peer_len ? &c->peer_sa.sa : NULL)) {
			refuse(c, REFUSE_PROXY_UNTRUSTED,
			    "source not in proxy_nets");
			return;
		}
		c->flags |= CF_PROXY_HDR;
		conn_set_timer(c, c->loop->conf.handshake_timeout_ms);
		recv_arm(c);
		return;
	}
	session_start(c);
}

static void
session_start(struct conn *c)
{
	struct listener *li = c->li;

	if (li->nallow_nets > 0 &&
	    !net_list_match(li->allow_nets, li->nallow_nets,
		c->peer_len ? &c->peer_sa.sa : NULL)) {
		refuse(c, REFUSE_NOT_ALLOWED, "client not in trusted_nets");
		return;
	}
	if (li->tls) {
		if (tls_attach(c, tls_conn_server(li->tls)) == -1) {
			teardown(c, CR_NOMEM);
			return;
		}
		c->flags |= CF_HANDSHAKE;
		conn_set_timer(c, c->loop->conf.handshake_timeout_ms);
	}
	recv_arm(c);
	if (!c->tls)
		opened(c);
}

static void
opened(struct conn *c)
{
	c->flags |= CF_OPEN;
	if (c->flags & CF_OVER) { /* over a cap: "try later" (conn_limit.c) */
		if (c->h->on_over)
			c->h->on_over(c);
		else
			teardown(c, CR_LIMIT);
		return;
	}
	if (c->h->on_open)
		c->h->on_open(c);
}

/* ---- PROXY protocol header on accepted connections ------------------ */

/* The header's bytes collect in the stash (nothing has been delivered
 * yet); what follows it is the session's first input. A trusted load
 * balancer sends the header in its first segment, so an incomplete one
 * only waits for the handshake timer, and the parser refuses anything that
 * cannot become a header at its first wrong byte. */
static void
proxy_input(struct conn *c, const char *p, size_t n)
{
	struct proxy_hdr h;
	const char *why = NULL;
	struct buf rest;
	enum proxy_rc rc;

	if (buf_append(&c->stash, p, n) == -1) {
		teardown(c, CR_NOMEM);
		return;
	}
	rc = proxy_proto_parse(buf_head(&c->stash), buf_used(&c->stash), &h,
	    &why);
	if (rc == PROXY_AGAIN)
		return;
	if (rc == PROXY_INVALID) {
		refuse(c, REFUSE_PROXY_INVALID, why);
		return;
	}
	if (!h.local &&
	    conn_set_peer(c, (struct sockaddr *)&h.src,
		(struct sockaddr *)&h.dst) == -1) {
		refuse(c, REFUSE_PROXY_INVALID, "address family");
		return;
	}
	buf_consume(&c->stash, h.len);
	rest = c->stash;
	memset(&c->stash, 0, sizeof(c->stash));
	c->flags &= ~CF_PROXY_HDR;
	conn_set_timer(c, 0);
	log_debug(c->sid, "proxy.header", "listener=%s peer=%s version=%d",
	    c->li->name, c->peer, h.version);
	session_start(c);
	if (buf_used(&rest) > 0 && !(c->flags & (CF_DEAD | CF_CLOSING))) {
		if (c->tls) {
			input(c, buf_head(&rest), buf_used(&rest));
		} else {
			/* delivered at the end of the iteration, in order
			 * with whatever arrives meanwhile */
			c->stash = rest;
			memset(&rest, 0, sizeof(rest));
			rearm_later(c);
		}
	}
	buf_free(&rest);
}

static void
refuse(struct conn *c, int why, const char *detail)
{
	metrics_add(c->loop->shard, c->li->m_refused[why], 1);
	log_info(c->sid, "conn.refused",
	    "listener=%s peer=%s reason=%s "
	    "detail=\"%s\"",
	    c->li->name, c->peer, refuse_reasons[why], detail ? detail : "");
	teardown(c,
	    why == REFUSE_PROXY_TIMEOUT	  ? CR_TIMEOUT :
		why == REFUSE_NOT_ALLOWED ? CR_REFUSED :
					    CR_PROXY);
}

/* Registered only for listeners that refuse anything (PROXY, an
 * allow-list), so other listeners' metrics stay short. */
void
conn_refuse_metrics(struct loop *l, struct listener *li)
{
	char labels[256];

	if (l->conf.metrics == NULL || li->m_refused[0] != -1)
		return; /* nowhere to count, or done already */
	for (int i = 0; i < REFUSE_NREASONS; i++) {
		snprintf(labels, sizeof(labels),
		    "listener=\"%s\",reason=\"%s\"", li->name,
		    refuse_reasons[i]);
		li->m_refused[i] = metrics_counter(l->conf.metrics,
		    "connections_refused_total",
		    "Connections closed at accept: PROXY header from outside "
		    "proxy_nets, broken or late; client outside a trusted "
		    "listener's trusted_nets.",
		    labels);
	}
}

/* ---- addresses ------------------------------------------------------ */

static socklen_t
addr_copy(union conn_addr *dst, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		memcpy(&dst->in, sa, sizeof(dst->in));
		return sizeof(dst->in);
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&dst->in6, sa, sizeof(dst->in6));
		return sizeof(dst->in6);
	}
	return 0;
}

const struct sockaddr *
conn_peer_addr(const struct conn *c, socklen_t *len_r)
{
	if (len_r)
		*len_r = c->peer_len;
	return c->peer_len ? &c->peer_sa.sa : NULL;
}

const struct sockaddr *
conn_local_addr(struct conn *c, socklen_t *len_r)
{
	if (c->local_len == 0 && c->li != NULL && c->fd != -1) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		/* asked for rarely (PROXY v2 to a back end): no syscall
		 * per accept for it */
		if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
			c->local_len = addr_copy(&c->local_sa,
			    (struct sockaddr *)&ss);
	}
	if (len_r)
		*len_r = c->local_len;
	return c->local_len ? &c->local_sa.sa : NULL;
}

int
conn_set_peer(struct conn *c, const struct sockaddr *peer,
    const struct sockaddr *local)
{
	union conn_addr a, b;
	socklen_t alen, blen = 0;

	if ((alen = addr_copy(&a, peer)) == 0)
		return -1;
	if (local != NULL && (blen = addr_copy(&b, local)) == 0)
		return -1;
	c->peer_sa = a;
	c->peer_len = alen;
	if (local != NULL) {
		c->local_sa = b;
		c->local_len = blen;
	}
	peer_format(c->peer, sizeof(c->peer), peer);
	return 0;
}

/* Busy connections keep their buffers (freeing and re-faulting them on
 * every send is most of a bulk transfer's cost); a sweep once a second
 * gives the storage back when a connection has been quiet that long, so
 * idle sessions still hold nothing. */
static void
hold(struct conn *c)
{
	struct loop *l = c->loop;

	c->last_io = l->now;
	if (c->flags & CF_HOLDS)
		return;
	c->flags |= CF_HOLDS;
	c->hold_prev = NULL;
	c->hold_next = l->holders;
	if (l->holders)
		l->holders->hold_prev = c;
	l->holders = c;
	if (l->sweep_at == 0)
		l->sweep_at = l->now + SWEEP_MS;
}

static void
unhold(struct conn *c)
{
	if (!(c->flags & CF_HOLDS))
		return;
	if (c->hold_prev)
		c->hold_prev->hold_next = c->hold_next;
	else
		c->loop->holders = c->hold_next;
	if (c->hold_next)
		c->hold_next->hold_prev = c->hold_prev;
	c->hold_next = c->hold_prev = NULL;
	c->flags &= ~CF_HOLDS;
}

void
conn_sweep(struct loop *l)
{
	struct conn *c = l->holders, *next;

	l->sweep_at = 0;
	for (; c; c = next) {
		next = c->hold_next;
		if ((c->flags & (CF_SEND_BUSY | CF_FLUSH)) ||
		    l->now - c->last_io < SWEEP_MS)
			continue;
		l->released += c->out.cap + c->pend.cap + c->stash.cap;
		buf_release(&c->out);
		buf_release(&c->pend);
		buf_release(&c->stash);
		if (c->tls)
			tls_conn_trim(c->tls);
		unhold(c);
	}
	if (l->holders)
		l->sweep_at = l->now + SWEEP_MS;
}

/* Ciphertext goes straight into pend: no copy out of OpenSSL. */
static int
tls_attach(struct conn *c, struct tls_conn *t)
{
	if (t == NULL)
		return -1;
	if (tls_conn_set_sink(t, &c->pend) == -1) {
		tls_conn_free(t);
		return -1;
	}
	c->tls = t;
	return 0;
}

/* ---- receiving ---------------------------------------------------- */

static void
recv_arm(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->flags &
	    (CF_DEAD | CF_RECV_ARMED | CF_PAUSED | CF_EOF | CF_CONNECTING))
		return;
	if ((c->flags & CF_CLOSING) && !(c->flags & CF_LINGER))
		return;
	sqe = loop_sqe(c->loop);
	if (c->flags & CF_ONESHOT)
		io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
	else
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = LOOP_BGID;
	io_uring_sqe_set_data(sqe, &c->op_recv);
	c->flags |= CF_RECV_ARMED;
	c->inflight++;
}

static void
cancel_op(struct conn *c, struct op *op)
{
	struct io_uring_sqe *sqe = loop_sqe(c->loop);

	io_uring_prep_cancel64(sqe, (uintptr_t)op, 0);
	io_uring_sqe_set_data64(sqe, 0);
}

static void
stop_reading(struct conn *c)
{
	if ((c->flags & CF_RECV_ARMED) && !(c->flags & CF_CANCEL_SENT)) {
		cancel_op(c, &c->op_recv);
		c->flags |= CF_CANCEL_SENT;
	}
}

static void
rearm_later(struct conn *c)
{
	if (c->flags & (CF_REARM | CF_DEAD))
		return;
	c->flags |= CF_REARM;
	c->rearm_next = c->loop->rearm;
	c->loop->rearm = c;
}

static void
recv_handle(struct conn *c, struct io_uring_cqe *cqe)
{
	struct loop *l = c->loop;
	bool more = cqe->flags & IORING_CQE_F_MORE;
	int res = cqe->res;

	if (!more)
		c->flags &= ~(CF_RECV_ARMED | CF_CANCEL_SENT);
	if (res > 0) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		char *p = l->bufs + (size_t)bid * l->conf.buf_size;

		if (!(c->flags & (CF_DEAD | CF_CLOSING)))
			input(c, p, (size_t)res);
		/* the handler copied what it keeps: recycle at once */
		io_uring_buf_ring_add(l->br, p, l->conf.buf_size,
		    (unsigned short)bid, l->br_mask, 0);
		io_uring_buf_ring_advance(l->br, 1);
		if (!more)
			rearm_later(c);
	} else if (res == 0 && (c->flags & CF_PROXY_HDR)) {
		/* gone before its header: nobody to tell (health checks) */
		teardown(c, CR_EOF);
	} else if (res == 0) {
		c->flags |= CF_EOF;
		/* bytes still waiting (paused: in the stash or the TLS input)
		 * come before the EOF; conn_rearm_recv() delivers both */
		if (!(c->flags & CF_DEAD) && !eof_deferred(c))
			peer_eof(c);
	} else if (res == -ENOBUFS) {
		/* every buffer is busy: back-pressure, try again shortly */
		metrics_add(l->shard, l->m_enobufs, 1);
		rearm_later(c);
	} else if (res == -ECANCELED) {
		rearm_later(c); /* resumed before the cancel landed? */
	} else if (!(c->flags & CF_DEAD)) {
		teardown(c, CR_RESET);
	}
	if (!more)
		c->inflight--;
}

static bool
eof_deferred(struct conn *c)
{
	if (c->flags & CF_CLOSING)
		return false;
	return (c->flags & CF_PAUSED) || buf_used(&c->stash) > 0;
}

static void
input(struct conn *c, const char *p, size_t n)
{
	if (c->flags & CF_PROXY_HDR) {
		proxy_input(c, p, n);
		return;
	}
	if (c->tls) {
		if (tls_conn_feed(c->tls, p, n) == -1) {
			teardown(c, CR_NOMEM);
			return;
		}
		hold(c);
		tls_pump(c);
		return;
	}
	c->bytes_in += n;
	/* keep order: while anything waits in the stash (paused, or resumed
	 * but not yet re-delivered), new bytes queue behind it */
	if ((c->flags & CF_PAUSED) || buf_used(&c->stash) > 0) {
		if (buf_append(&c->stash, p, n) == -1)
			teardown(c, CR_NOMEM);
		return;
	}
	c->h->on_data(c, p, n);
}

static void
peer_eof(struct conn *c)
{
	if (c->flags & CF_HANDSHAKE) {
		tls_failed(c, "unexpected_eof");
		return;
	}
	if (c->flags & CF_CLOSING) {
		/* still flushing: the send completion will finish up */
		if (!(c->flags & CF_SEND_BUSY))
			teardown(c, c->reason);
		return;
	}
	c->reason = CR_EOF;
	if (c->h->on_eof)
		c->h->on_eof(c);
	else
		conn_close(c);
}

/* Drive the TLS engine: finish the handshake, deliver plaintext, send
 * what it produced. Stops while paused; the ciphertext waits in the
 * engine's input BIO until conn_resume(). */
static void
tls_pump(struct conn *c)
{
	struct loop *l = c->loop;

	while (!(c->flags & (CF_DEAD | CF_CLOSING))) {
		size_t n = 0;
		bool hs = c->flags & CF_HANDSHAKE;
		enum tls_rc rc;

		if (!hs && (c->flags & CF_PAUSED))
			break;
		rc = tls_conn_read(c->tls, l->scratch, l->conf.buf_size, &n);
		if (rc == TLS_OK && hs && tls_conn_established(c->tls)) {
			tls_established(c);
			continue;
		}
		if (rc == TLS_OK && n > 0) {
			c->bytes_in += n;
			c->h->on_data(c, l->scratch, n);
			continue;
		}
		if (rc == TLS_CLOSED) {
			flush(c);
			peer_eof(c);
			return;
		}
		if (rc == TLS_ERROR) {
			const char *why = tls_conn_reason(c->tls);

			tls_failed(c, why ? why : "protocol");
			return;
		}
		break; /* TLS_WANT, or nothing more to do */
	}
	flush(c);
}

static void
tls_established(struct conn *c)
{
	c->flags &= ~CF_HANDSHAKE;
	conn_set_timer(c, 0);
	if (c->li)
		metrics_add(c->loop->shard, c->li->m_hs_ok, 1);
	if (buf_used(&c->early) > 0) {
		if (tls_conn_write(c->tls, buf_head(&c->early),
			buf_used(&c->early)) == -1) {
			teardown(c, CR_NOMEM);
			return;
		}
		buf_free(&c->early);
	}
	opened(c);
}

static void
hs_fail_count(struct conn *c, const char *reason)
{
	unsigned i;

	if (c->li == NULL)
		return;
	for (i = 0; tls_reasons[i]; i++)
		if (strcmp(tls_reasons[i], reason) == 0)
			break;
	/* an unknown reason falls on the last slot, "timeout" only when
	 * it is one; keep the labels honest */
	if (tls_reasons[i] == NULL && strcmp(reason, "timeout") != 0) {
		for (i = 0; tls_reasons[i]; i++)
			if (strcmp(tls_reasons[i], "protocol") == 0)
				break;
	}
	metrics_add(c->loop->shard, c->li->m_hs_fail[i], 1);
}

/* A failed handshake or record: count it, send the alert OpenSSL queued,
 * then close. */
static void
tls_failed(struct conn *c, const char *reason)
{
	bool hs = c->flags & CF_HANDSHAKE;

	if (hs)
		hs_fail_count(c, reason);
	log_info(c->sid, hs ? "tls.handshake_failed" : "tls.error",
	    "peer=%s reason=%s", c->peer, reason);
	c->flags &= ~CF_HANDSHAKE;
	c->flags |= CF_CLOSING;
	c->reason = CR_TLS;
	flush(c); /* the alert OpenSSL queued */
	if (c->flags & CF_DEAD)
		return;
	if (c->flags & CF_SEND_BUSY)
		conn_set_timer(c, CLOSE_FLUSH_MS);
	else
		linger(c);
}

/* Everything is sent: send our FIN and read (and drop) whatever the peer
 * still sends until its FIN or a short timer. Closing with unread bytes
 * would make the kernel send a RST, which can destroy our last words (a
 * TLS alert, a BYE) before the peer reads them. */
static void
linger(struct conn *c)
{
	if (c->flags & CF_EOF) {
		teardown(c, c->reason);
		return;
	}
	if (shutdown(c->fd, SHUT_WR) == -1) {
		teardown(c, c->reason);
		return;
	}
	c->flags &= ~CF_PAUSED;
	c->flags |= CF_LINGER;
	conn_set_timer(c, LINGER_MS);
	if (!(c->flags & CF_RECV_ARMED))
		recv_arm(c);
}

/* ---- sending ------------------------------------------------------ */

/* The TLS engine's ciphertext into `pend`; -1 when the conn died. */
static int
collect(struct conn *c)
{
	if (c->flags & CF_DEAD)
		return -1;
	if (c->tls) {
		const char *p;
		size_t n = tls_conn_out(c->tls, &p);

		if (n > 0) {
			if (buf_append(&c->pend, p, n) == -1) {
				teardown(c, CR_NOMEM);
				return -1;
			}
			tls_conn_out_consume(c->tls, n);
		}
	}
	return 0;
}

/* A handler's write: the send waits for the end of the loop's batch of
 * completions, so the lines one event produces (a pipelined ID and
 * AUTHENTICATE, a reply and the next greeting) leave in one send, not in
 * one send each behind the previous one's completion. */
static void
flush_later(struct conn *c)
{
	if (collect(c) == -1 || (c->flags & CF_FLUSH))
		return;
	c->flags |= CF_FLUSH;
	c->flush_next = c->loop->flush;
	c->loop->flush = c;
}

static void
flush_unlist(struct conn *c)
{
	struct conn **pp = &c->loop->flush;

	if (!(c->flags & CF_FLUSH))
		return;
	while (*pp != NULL && *pp != c)
		pp = &(*pp)->flush_next;
	if (*pp == c)
		*pp = c->flush_next;
	c->flush_next = NULL;
	c->flags &= ~CF_FLUSH;
}

void
conn_flush_pending(struct loop *l)
{
	while (l->flush) {
		struct conn *c = l->flush;

		l->flush = c->flush_next;
		c->flush_next = NULL;
		c->flags &= ~CF_FLUSH;
		flush(c);
	}
}

static void
flush(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (collect(c) == -1)
		return;
	if (c->flags & (CF_SEND_BUSY | CF_CONNECTING))
		return;
	if (buf_used(&c->out) == 0) {
		struct buf t = c->out;

		c->out = c->pend;
		c->pend = t;
		c->pend.off = c->pend.len = 0;
	}
	if (buf_used(&c->out) == 0)
		return;
	sqe = loop_sqe(c->loop);
	io_uring_prep_send(sqe, c->fd, buf_head(&c->out), buf_used(&c->out),
	    MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &c->op_send);
	c->flags |= CF_SEND_BUSY;
	c->inflight++;
}

static void
send_handle(struct conn *c, struct io_uring_cqe *cqe)
{
	c->flags &= ~CF_SEND_BUSY;
	c->inflight--;
	if (c->flags & CF_DEAD)
		return;
	if (cqe->res < 0) {
		teardown(c, cqe->res == -ECANCELED ? c->reason : CR_RESET);
		return;
	}
	buf_consume(&c->out, (size_t)cqe->res);
	flush(c);
	if (c->flags & CF_SEND_BUSY)
		return;
	hold(c);
	if ((c->flags & (CF_CLOSING | CF_LINGER)) == CF_CLOSING) {
		linger(c);
		return;
	}
	if ((c->flags & CF_WAS_FULL) &&
	    conn_out_queued(c) <= c->loop->conf.out_high / 4) {
		c->flags &= ~CF_WAS_FULL;
		if (c->h->on_drain)
			c->h->on_drain(c);
	}
}

int
conn_write(struct conn *c, const void *p, size_t n)
{
	int rc;

	if (c->flags & (CF_DEAD | CF_CLOSING))
		return -1;
	c->bytes_out += n;
	if (c->tls && (c->flags & CF_HANDSHAKE))
		rc = buf_append(&c->early, p, n);
	else if (c->tls)
		rc = tls_conn_write(c->tls, p, n);
	else
		rc = buf_append(&c->pend, p, n);
	if (rc == -1) {
		teardown(c, CR_NOMEM);
		return -1;
	}
	flush_later(c);
	if (conn_out_full(c))
		c->flags |= CF_WAS_FULL;
	return 0;
}

int
conn_write_buf(struct conn *c, struct buf *b)
{
	size_t n = buf_used(b);
	struct buf t;

	if (n == 0)
		return 0;
	if (c->tls || (c->flags & (CF_DEAD | CF_CLOSING)) ||
	    buf_used(&c->pend) > 0) {
		int rc = conn_write(c, buf_head(b), n);

		buf_consume(b, n);
		return rc;
	}
	/* pend is empty: b's storage becomes pend, pend's goes back */
	t = c->pend;
	c->pend = *b;
	*b = t;
	b->off = b->len = 0;
	c->bytes_out += n;
	flush_later(c);
	if (conn_out_full(c))
		c->flags |= CF_WAS_FULL;
	return 0;
}

size_t
conn_out_queued(const struct conn *c)
{
	return buf_used(&c->out) + buf_used(&c->pend) + buf_used(&c->early);
}

bool
conn_out_full(const struct conn *c)
{
	return conn_out_queued(c) >= c->loop->conf.out_high;
}

int
conn_forward(struct conn *from, struct conn *to, const void *p, size_t n)
{
	if (to == NULL || conn_closing(to)) {
		conn_close(from);
		return -1;
	}
	if (conn_write(to, p, n) == -1)
		return -1;
	if (conn_out_full(to))
		conn_pause(from);
	return 0;
}

/* ---- connecting --------------------------------------------------- */

struct conn *
conn_connect(struct loop *l, const struct sockaddr *sa, socklen_t len,
    const struct conn_handler *h, void *ctx)
{
	struct io_uring_sqe *sqe;
	struct conn *c;
	int fd, one = 1;

	if (len > sizeof(struct sockaddr_storage))
		return NULL;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return NULL;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = conn_new(l, fd, NULL, h, ctx)) == NULL) {
		close(fd);
		return NULL;
	}
	peer_format(c->peer, sizeof(c->peer), sa);
	c->peer_len = addr_copy(&c->peer_sa, sa);
	if ((c->connect_sa = malloc(sizeof(*c->connect_sa))) == NULL) {
		teardown(c, CR_NOMEM);
		return NULL;
	}
	memcpy(c->connect_sa, sa, len);
	sqe = loop_sqe(l);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)c->connect_sa, len);
	io_uring_sqe_set_data(sqe, &c->op_connect);
	c->flags |= CF_CONNECTING;
	c->inflight++;
	return c;
}

static void
connect_handle(struct conn *c, struct io_uring_cqe *cqe)
{
	c->flags &= ~CF_CONNECTING;
	c->inflight--;
	free(c->connect_sa);
	c->connect_sa = NULL;
	if (c->flags & CF_DEAD)
		return;
	if (cqe->res < 0) {
		log_info(c->sid, "conn.connect_failed", "peer=%s error=\"%s\"",
		    c->peer, strerror(-cqe->res));
		teardown(c, CR_CONNECT);
		return;
	}
	recv_arm(c);
	if (c->tls) {
		tls_pump(c); /* sends the ClientHello */
		return;
	}
	opened(c);
	flush(c);
}

/* The preamble goes into `out`, which the first send after the connect
 * takes before `pend` (where a ClientHello or early writes wait). */
int
conn_send_preamble(struct conn *c, const void *p, size_t n)
{
	if (!(c->flags & CF_CONNECTING) || c->tls != NULL ||
	    conn_out_queued(c) > 0)
		return -1;
	if (buf_append(&c->out, p, n) == -1)
		return -1;
	c->bytes_out += n;
	return 0;
}

int
conn_start_tls_client(struct conn *c, struct tls_client *tc, const char *sni)
{
	if (c->tls || (c->flags & CF_DEAD))
		return -1;
	if (tls_attach(c, tls_conn_client(tc, sni)) == -1)
		return -1;
	c->flags |= CF_HANDSHAKE | CF_TLS_CLIENT;
	if (buf_used(&c->pend) > 0 && (c->flags & CF_CONNECTING)) {
		/* plaintext queued before TLS was requested goes after it */
		if (buf_append(&c->early, buf_head(&c->pend),
			buf_used(&c->pend)) == -1)
			return -1;
		buf_free(&c->pend);
	}
	conn_set_timer(c, c->loop->conf.handshake_timeout_ms);
	if (!(c->flags & CF_CONNECTING))
		tls_pump(c);
	return 0;
}

int
conn_start_tls_server(struct conn *c, struct tls_server *ts)
{
	if (c->tls || (c->flags & CF_DEAD))
		return -1;
	if (tls_attach(c, tls_conn_server(ts)) == -1)
		return -1;
	/* Bytes that arrived in plaintext but were not delivered belong to
	 * before the upgrade and must never be read as if they came after
	 * it (CVE-2011-0411 class). */
	buf_free(&c->stash);
	c->flags |= CF_HANDSHAKE;
	conn_set_timer(c, c->loop->conf.handshake_timeout_ms);
	return 0;
}

/* ---- flow control, timers, closing -------------------------------- */

void
conn_pause(struct conn *c)
{
	if (c->flags & (CF_PAUSED | CF_DEAD))
		return;
	c->flags |= CF_PAUSED;
	stop_reading(c);
}

void
conn_resume(struct conn *c)
{
	if (!(c->flags & CF_PAUSED) || (c->flags & CF_DEAD))
		return;
	c->flags &= ~CF_PAUSED;
	rearm_later(c);
}

void
conn_bounded_reads(struct conn *c)
{
	if (c->flags & (CF_ONESHOT | CF_DEAD))
		return;
	c->flags |= CF_ONESHOT;
	/* a multishot receive in flight ends; its completion re-arms */
	stop_reading(c);
}

void
conn_watch_hangup(struct conn *c, bool on)
{
	struct io_uring_sqe *sqe;

	if (c->flags & (CF_DEAD | CF_CLOSING))
		return;
	if (!on) {
		c->flags &= ~CF_POLL_WANT;
		if ((c->flags & (CF_POLL_ARMED | CF_POLL_CANCEL)) ==
		    CF_POLL_ARMED) {
			cancel_op(c, &c->op_poll);
			c->flags |= CF_POLL_CANCEL;
		}
		return;
	}
	c->flags |= CF_POLL_WANT;
	if (c->flags & CF_POLL_ARMED)
		return; /* being cancelled: poll_handle() arms it again */
	sqe = loop_sqe(c->loop);
	io_uring_prep_poll_add(sqe, c->fd, POLLRDHUP | POLLHUP | POLLERR);
	io_uring_sqe_set_data(sqe, &c->op_poll);
	c->flags |= CF_POLL_ARMED;
	c->inflight++;
}

/* The hangup poll completed: the peer left, or the watch was cancelled
 * (then a watch wanted again meanwhile is armed anew). A hangup seen
 * after the watch was turned off is left to the normal receive path. */
static void
poll_handle(struct conn *c, struct io_uring_cqe *cqe)
{
	c->flags &= ~(CF_POLL_ARMED | CF_POLL_CANCEL);
	c->inflight--;
	if ((c->flags & (CF_DEAD | CF_CLOSING)) || !(c->flags & CF_POLL_WANT))
		return;
	if (cqe->res < 0 && cqe->res != -ECANCELED) {
		c->flags &= ~CF_POLL_WANT; /* cannot watch: leave it */
		return;
	}
	if (cqe->res > 0 && (cqe->res & (POLLRDHUP | POLLHUP | POLLERR))) {
		teardown(c, (cqe->res & POLLERR) ? CR_RESET : CR_EOF);
		return;
	}
	conn_watch_hangup(c, true);
}

/* From the loop's re-arm list, outside any handler: deliver what waited
 * while paused, then receive again. */
void
conn_rearm_recv(struct conn *c)
{
	if (c->flags & (CF_DEAD | CF_PAUSED))
		return;
	if (c->flags & CF_CLOSING) {
		buf_free(&c->stash); /* nobody will read it now */
		recv_arm(c);
		return;
	}
	if (buf_used(&c->stash) > 0) {
		struct buf held = c->stash;

		memset(&c->stash, 0, sizeof(c->stash));
		c->h->on_data(c, buf_head(&held), buf_used(&held));
		buf_free(&held);
		if (c->flags & (CF_DEAD | CF_PAUSED))
			return;
	}
	if (c->tls && !(c->flags & CF_CONNECTING))
		tls_pump(c);
	if ((c->flags & (CF_EOF | CF_DEAD | CF_CLOSING | CF_PAUSED)) ==
	    CF_EOF) {
		peer_eof(c);
		return;
	}
	recv_arm(c);
}

void
conn_set_timer(struct conn *c, uint64_t ms)
{
	if (c->flags & CF_DEAD)
		return;
	/* a conn that cannot get a timer would never time out: close it */
	if (timer_set(&c->timer, ms) == -1)
		teardown(c, CR_NOMEM);
}

static void
timer_fired(struct timer *t, void *arg)
{
	struct conn *c = arg;

	(void)t;
	if (c->flags & CF_DEAD)
		return;
	if (c->flags & CF_PROXY_HDR) {
		refuse(c, REFUSE_PROXY_TIMEOUT, "no header in time");
	} else if (c->flags & CF_HANDSHAKE) {
		hs_fail_count(c, "timeout");
		log_info(c->sid, "tls.handshake_failed",
		    "peer=%s reason=timeout", c->peer);
		teardown(c, CR_TIMEOUT);
	} else if (c->flags & CF_CLOSING) {
		teardown(c, c->reason);
	} else if (c->flags & CF_CONNECTING) {
		teardown(c, CR_CONNECT);
	} else if (c->h->on_timer) {
		c->h->on_timer(c);
	} else {
		teardown(c, CR_TIMEOUT);
	}
}

void
conn_close(struct conn *c)
{
	if (c->flags & (CF_DEAD | CF_CLOSING))
		return;
	if (c->flags & CF_CONNECTING) {
		teardown(c, c->reason);
		return;
	}
	c->flags |= CF_CLOSING; /* input from now on is dropped */
	if (c->tls && !(c->flags & CF_HANDSHAKE))
		tls_conn_shutdown(c->tls);
	flush(c);
	if (c->flags & CF_DEAD)
		return;
	if (!(c->flags & CF_SEND_BUSY)) {
		linger(c);
		return;
	}
	conn_set_timer(c, CLOSE_FLUSH_MS);
}

void
conn_abort(struct conn *c, enum conn_reason why)
{
	teardown(c, why);
}

bool
conn_closing(const struct conn *c)
{
	return c->flags & (CF_DEAD | CF_CLOSING);
}

/* The one teardown path. */
static void
teardown(struct conn *c, enum conn_reason why)
{
	struct loop *l = c->loop;

	if (c->flags & CF_DEAD)
		return;
	c->flags |= CF_DEAD;
	c->reason = why;
	timer_stop(&c->timer);
	unhold(c);
	flush_unlist(c);
	if ((c->flags & CF_RECV_ARMED) && !(c->flags & CF_CANCEL_SENT))
		cancel_op(c, &c->op_recv);
	if (c->flags & CF_SEND_BUSY)
		cancel_op(c, &c->op_send);
	if (c->flags & CF_CONNECTING)
		cancel_op(c, &c->op_connect);
	if ((c->flags & CF_POLL_ARMED) && !(c->flags & CF_POLL_CANCEL))
		cancel_op(c, &c->op_poll);
	/* through the ring, behind the cancels and any op still queued
	 * that names the fd (loop_close_fd): in-flight ops hold their own
	 * file reference, queued ones would otherwise run on whatever file
	 * another thread gets the number for next */
	if (c->flags & CF_LIM_CONN) {
		/* the fd cap's count comes back with the close's completion */
		c->flags &= ~CF_LIM_CONN;
		loop_close_fd_counted(l, c->fd);
	} else {
		loop_close_fd(l, c->fd);
	}
	c->fd = -1;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = l->dead;
	l->dead = c;
	l->nconns--;
	conn_limit_release(c);
	if (c->li) {
		metrics_gauge_add(l->shard, c->li->m_open, -1);
		metrics_add(l->shard, c->li->m_closed[why], 1);
	}
	if (c->h->on_close)
		c->h->on_close(c, why);
}

/* ---- dispatch and accessors --------------------------------------- */

void
conn_handle_cqe(struct conn *c, struct op *op, struct io_uring_cqe *cqe)
{
	switch (op->kind) {
	case OP_RECV:
		recv_handle(c, cqe);
		break;
	case OP_SEND:
		send_handle(c, cqe);
		break;
	case OP_CONNECT:
		connect_handle(c, cqe);
		break;
	case OP_HANGUP:
		poll_handle(c, cqe);
		break;
	default:
		fatal("unknown op kind %d", op->kind);
	}
}

void *
conn_ctx(const struct conn *c)
{
	return c->ctx;
}

void
conn_set_ctx(struct conn *c, void *ctx)
{
	c->ctx = ctx;
}

void
conn_set_handler(struct conn *c, const struct conn_handler *h, void *ctx)
{
	c->h = h;
	c->ctx = ctx;
	if (h->evictable == NULL) /* logged in: never cut for room */
		conn_limit_grown(c);
}

uint64_t
conn_sid(const struct conn *c)
{
	return c->sid;
}

const char *
conn_peer(const struct conn *c)
{
	return c->peer;
}

struct tls_conn *
conn_tls(const struct conn *c)
{
	return c->tls;
}

struct loop *
conn_loop(const struct conn *c)
{
	return c->loop;
}

struct listener *
conn_listener(const struct conn *c)
{
	return c->li;
}

uint64_t
conn_bytes_in(const struct conn *c)
{
	return c->bytes_in;
}

uint64_t
conn_bytes_out(const struct conn *c)
{
	return c->bytes_out;
}

uint64_t
conn_started(const struct conn *c)
{
	return c->started;
}
