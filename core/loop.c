/*
 * loop.c - the io_uring event loop: ring set-up, the provided receive
 * buffer ring, CQE dispatch, listeners with multishot accept, cross-thread
 * messages and shutdown.
 *
 * Relies on: Linux >= 6.1 features through liburing 2.3 (multishot accept
 * and recv, registered buffer rings, EXT_ARG waits). Falls back to fewer
 * ring set-up flags on older kernels; refuses to start without io_uring.
 *
 * Never: blocks (no file or DNS work here), frees a connection that still
 * has an op in flight, or touches a loop from another thread except via
 * loop_post().
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/conn_limit.h"
#include "core/log.h"
#include "core/loop_private.h"
#include "core/metrics.h"
#include "core/tls.h"

#define LOOP_BGID 1
#define ACCEPT_RETRY_MS 50 /* first pause after an accept failure */
#define ACCEPT_AHEAD 4	   /* single-shot accepts in flight, under a cap */
#define ACCEPT_BACKOFF_MAX_MS 1000
/* accepts without a failure for this long end an episode */
#define ACCEPT_QUIET_MS 1000
#define TRIM_BYTES (4u << 20) /* freed since the last trim */
#define TRIM_EVERY_MS 1000

static int ring_init(struct loop *l, const char **error_r);
static int bufring_init(struct loop *l, const char **error_r);
static void wake_arm(struct loop *l);
static void wake_handle(struct loop *l, struct io_uring_cqe *cqe);
static void accept_arm(struct listener *li);
static void accept_handle(struct listener *li, struct io_uring_cqe *cqe);
static bool accept_transient(int err);
static void accept_failed(struct listener *li, int err);
static void accept_resumed(struct listener *li);
static uint64_t accept_due(const struct listener *li);
static void listener_metrics(struct loop *l, struct listener *li);
static void listener_close(struct listener *li);
static void dispatch(struct loop *l, struct io_uring_cqe *cqe);
static void reap(struct loop *l);
static void rearm_pending(struct loop *l);
static void listeners_retry(struct loop *l);
static void trim(struct loop *l);
static uint64_t clock_ms(void);
static const char *uring_error(int err);

static __thread char loop_errbuf[256];

static uint64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *
uring_error(int err)
{
	if (err == EPERM || err == ENOSYS || err == EACCES)
		snprintf(loop_errbuf, sizeof(loop_errbuf),
		    "io_uring is not available (%s): set sysctl "
		    "kernel.io_uring_disabled=0 (or 1 with this user in "
		    "kernel.io_uring_group) and allow io_uring_setup in any "
		    "seccomp profile (container runtime, systemd "
		    "SystemCallFilter=)",
		    strerror(err));
	else
		snprintf(loop_errbuf, sizeof(loop_errbuf),
		    "io_uring set-up failed: %s (raise RLIMIT_MEMLOCK or "
		    "lower ring_entries)",
		    strerror(err));
	return loop_errbuf;
}

int
loop_probe(const char **error_r)
{
	struct io_uring ring;
	int rc;

	if ((rc = io_uring_queue_init(4, &ring, 0)) < 0) {
		*error_r = uring_error(-rc);
		return -1;
	}
	io_uring_queue_exit(&ring);
	return 0;
}

static int
ring_init(struct loop *l, const char **error_r)
{
	/* Most specific first: DEFER_TASKRUN needs 6.1, SINGLE_ISSUER 6.0,
	 * COOP_TASKRUN 5.19. Each is an optimisation, none is required. */
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		    IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		0,
	};
	int rc = -EINVAL;

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i];
		rc = io_uring_queue_init_params(l->conf.ring_entries, &l->ring,
		    &p);
		if (rc == 0) {
			if (!(p.features & IORING_FEAT_EXT_ARG)) {
				io_uring_queue_exit(&l->ring);
				*error_r =
				    "this kernel's io_uring lacks "
				    "IORING_FEAT_EXT_ARG: Linux 5.11 or later "
				    "is required (6.1+ recommended)";
				return -1;
			}
			return 0;
		}
		if (rc != -EINVAL)
			break;
	}
	*error_r = uring_error(-rc);
	return -1;
}

static int
bufring_init(struct loop *l, const char **error_r)
{
	struct io_uring_buf_reg reg;
	size_t ring_bytes = l->conf.buf_count * sizeof(struct io_uring_buf);
	void *mem;
	int rc;

	if (posix_memalign(&mem, 4096, ring_bytes) != 0 ||
	    (l->bufs = malloc((size_t)l->conf.buf_count * l->conf.buf_size)) ==
		NULL ||
	    (l->scratch = malloc(l->conf.buf_size)) == NULL) {
		*error_r = "out of memory for receive buffers";
		return -1;
	}
	memset(mem, 0, ring_bytes);
	l->br = mem;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uintptr_t)l->br;
	reg.ring_entries = l->conf.buf_count;
	reg.bgid = LOOP_BGID;
	if ((rc = io_uring_register_buf_ring(&l->ring, &reg, 0)) < 0) {
		snprintf(loop_errbuf, sizeof(loop_errbuf),
		    "io_uring buffer ring registration failed: %s (Linux 5.19 "
		    "or later is required)",
		    strerror(-rc));
		*error_r = loop_errbuf;
		return -1;
	}
	io_uring_buf_ring_init(l->br);
	l->br_mask = io_uring_buf_ring_mask(l->conf.buf_count);
	for (unsigned i = 0; i < l->conf.buf_count; i++)
		io_uring_buf_ring_add(l->br,
		    l->bufs + (size_t)i * l->conf.buf_size, l->conf.buf_size,
		    (unsigned short)i, l->br_mask, (int)i);
	io_uring_buf_ring_advance(l->br, (int)l->conf.buf_count);
	return 0;
}

struct loop *
loop_new(const struct loop_conf *conf, const char **error_r)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	l->conf = *conf;
	if (l->conf.ring_entries == 0)
		l->conf.ring_entries = 1024;
	if (l->conf.buf_count == 0)
		l->conf.buf_count = 1024;
	if (l->conf.buf_size == 0)
		l->conf.buf_size = 16384;
	if (l->conf.out_high == 0)
		l->conf.out_high = 256 * 1024;
	if (l->conf.handshake_timeout_ms == 0)
		l->conf.handshake_timeout_ms = 10000;
	if (l->conf.buf_count & (l->conf.buf_count - 1) ||
	    l->conf.buf_count > 32768) {
		*error_r = "buf_count must be a power of two <= 32768";
		free(l);
		return NULL;
	}
	l->wake_fd = -1;
	pthread_mutex_init(&l->msg_lock, NULL);
	if (ring_init(l, error_r) == -1) {
		pthread_mutex_destroy(&l->msg_lock);
		free(l);
		return NULL;
	}
	if (bufring_init(l, error_r) == -1)
		goto fail;
	if ((l->wake_fd = eventfd(0, EFD_CLOEXEC)) == -1) {
		*error_r = "eventfd failed";
		goto fail;
	}
	if (getrandom(&l->sid_key, sizeof(l->sid_key), 0) != sizeof(l->sid_key))
		l->sid_key = clock_ms() ^ ((uint64_t)conf->index << 56);
	if (conf->metrics) {
		l->shard = metrics_shard(conf->metrics, conf->index);
		l->m_enobufs = metrics_counter(conf->metrics,
		    "recv_buffer_exhausted_total",
		    "Times a connection waited for a free receive buffer "
		    "(back-pressure, not an error).",
		    NULL);
	} else {
		l->m_enobufs = -1;
	}
	l->now = clock_ms();
	wake_arm(l);
	return l;
fail:
	loop_free(l);
	return NULL;
}

void
loop_free(struct loop *l)
{
	struct loop_msg *m;

	if (l == NULL)
		return;
	/* First the ring: what was queued after loop_run() returned (closes
	 * from a worker's exit hook) goes in, then once the ring is gone no
	 * op can name a descriptor and the ones still held below are closed
	 * directly. */
	io_uring_submit(&l->ring);
	io_uring_queue_exit(&l->ring);
	while (l->listeners) {
		struct listener *li = l->listeners;

		l->listeners = li->next;
		if (li->fd != -1)
			close(li->fd);
		tls_server_unref(&li->tls);
		free(li->m_hs_fail);
		free(li->name);
		free(li);
	}
	while (l->live) {
		struct conn *c = l->live;

		l->live = c->next;
		conn_free(c);
	}
	while (l->dead) {
		struct conn *c = l->dead;

		l->dead = c->next;
		conn_free(c);
	}
	while ((m = l->msgs) != NULL) {
		l->msgs = m->next;
		free(m);
	}
	fd_watch_free_all(l);
	fd_poll_free_all(l);
	if (l->wake_fd != -1)
		close(l->wake_fd);
	pthread_mutex_destroy(&l->msg_lock);
	free(l->heap);
	free(l->br);
	free(l->bufs);
	free(l->scratch);
	free(l);
}

/* An SQE, submitting what is queued if the SQ is full. Never NULL: a full
 * SQ after a submit means the kernel is not consuming, a broken
 * invariant. */
struct io_uring_sqe *
loop_sqe(struct loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (sqe == NULL) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
		if (sqe == NULL)
			fatal("io_uring submission queue stuck");
	}
	return sqe;
}

/* Close fd behind everything already queued on this ring. The kernel
 * issues SQEs in queue order and an issued op holds its own reference to
 * the file, so every op that names fd (a SEND prepared a moment ago, a
 * RECV re-armed this iteration) runs on this file, and the number only
 * becomes free for another thread's accept() or open() once none of our
 * SQEs can name it any more. Registered (direct) descriptors would avoid
 * the shared table altogether, but getpeername(), shutdown() and
 * setsockopt() on accepted sockets need real ones. */
void
loop_close_fd(struct loop *l, int fd)
{
	struct io_uring_sqe *sqe;

	if (fd == -1)
		return;
	sqe = loop_sqe(l);
	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data64(sqe, 0);
}

/* The same for a conn counted against the fd cap: the count is given
 * back when the close completes, not before, since the number stays
 * taken until then (a flood's evictions must not let accepts outrun
 * the closes and hit EMFILE). */
void
loop_close_fd_counted(struct loop *l, int fd)
{
	struct io_uring_sqe *sqe = loop_sqe(l);

	l->op_close_cap.kind = OP_CLOSE_CAP;
	l->op_close_cap.owner = l;
	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data(sqe, &l->op_close_cap);
}

static void
wake_arm(struct loop *l)
{
	struct io_uring_sqe *sqe = loop_sqe(l);

	l->op_wake.kind = OP_WAKE;
	l->op_wake.owner = l;
	io_uring_prep_read(sqe, l->wake_fd, &l->wake_val, sizeof(l->wake_val),
	    0);
	io_uring_sqe_set_data(sqe, &l->op_wake);
}

int
loop_post(struct loop *l, void (*fn)(struct loop *, void *), void *arg)
{
	struct loop_msg *m = malloc(sizeof(*m)), **tail;
	uint64_t one = 1;
	bool self;

	if (m == NULL)
		return -1;
	m->fn = fn;
	m->arg = arg;
	m->next = NULL;
	pthread_mutex_lock(&l->msg_lock);
	for (tail = &l->msgs; *tail; tail = &(*tail)->next)
		;
	*tail = m;
	/* read only by the loop's own thread, written before it runs */
	self = l->running && pthread_equal(l->thread, pthread_self());
	if (self)
		l->self_posted = true;
	pthread_mutex_unlock(&l->msg_lock);
	/* a post from the loop's own thread (an answer straight from a
	 * cache) needs no wake-up: loop_run() looks for it */
	if (!self && write(l->wake_fd, &one, sizeof(one)) == -1 &&
	    errno != EAGAIN)
		return -1;
	return 0;
}

static void
msgs_run(struct loop *l)
{
	struct loop_msg *m;

	pthread_mutex_lock(&l->msg_lock);
	m = l->msgs;
	l->msgs = NULL;
	l->self_posted = false;
	pthread_mutex_unlock(&l->msg_lock);
	while (m) {
		struct loop_msg *next = m->next;

		m->fn(l, m->arg);
		free(m);
		m = next;
	}
}

static void
wake_handle(struct loop *l, struct io_uring_cqe *cqe)
{
	msgs_run(l);
	wake_arm(l);
}

/* ---- listeners ---------------------------------------------------- */

static void
listener_metrics(struct loop *l, struct listener *li)
{
	struct metrics *m = l->conf.metrics;
	char labels[256];
	unsigned n = 0;

	li->m_accepted = li->m_open = li->m_hs_ok = li->m_accept_err = -1;
	li->m_accept_pause = li->m_evicted = -1;
	for (size_t i = 0; i < sizeof(li->m_limit) / sizeof(int); i++)
		li->m_limit[i] = -1; /* listener_set_limit() when used */
	for (size_t i = 0; i < sizeof(li->m_refused) / sizeof(int); i++)
		li->m_refused[i] = -1; /* conn_refuse_metrics() when used */
	for (int r = 0; r < CR_MAX; r++)
		li->m_closed[r] = -1;
	while (tls_reasons[n])
		n++;
	li->m_hs_fail = malloc((n + 1) * sizeof(int));
	if (m == NULL || li->m_hs_fail == NULL) {
		if (li->m_hs_fail)
			for (unsigned i = 0; i <= n; i++)
				li->m_hs_fail[i] = -1;
		return;
	}
	snprintf(labels, sizeof(labels), "listener=\"%s\"", li->name);
	li->m_accepted = metrics_counter(m, "connections_accepted_total",
	    "Connections accepted.", labels);
	li->m_open = metrics_gauge(m, "connections_open",
	    "Connections open now.", labels);
	li->m_accept_err = metrics_counter(m, "accept_errors_total",
	    "accept() failures (e.g. out of file descriptors).", labels);
	li->m_accept_pause = metrics_counter(m, "accept_pauses_total",
	    "Episodes of accept() failures: the listener paused accepting "
	    "and resumed by itself.",
	    labels);
	li->m_hs_ok = metrics_counter(m, "tls_handshakes_total",
	    "TLS handshakes completed.", labels);
	for (int r = 0; r < CR_MAX; r++) {
		snprintf(labels, sizeof(labels),
		    "listener=\"%s\",reason=\"%s\"", li->name,
		    conn_reason_name((enum conn_reason)r));
		li->m_closed[r] = metrics_counter(m, "connections_closed_total",
		    "Connections closed, by reason.", labels);
	}
	for (unsigned i = 0; i <= n; i++) {
		snprintf(labels, sizeof(labels),
		    "listener=\"%s\",reason=\"%s\"", li->name,
		    i < n ? tls_reasons[i] : "timeout");
		li->m_hs_fail[i] = metrics_counter(m,
		    "tls_handshake_failures_total",
		    "TLS handshakes that failed, by reason.", labels);
	}
}

struct listener *
loop_listen(struct loop *l, int fd, const char *name,
    const struct conn_handler *h, void *ctx)
{
	struct listener *li = calloc(1, sizeof(*li));

	if (li == NULL || (li->name = strdup(name)) == NULL) {
		free(li);
		return NULL;
	}
	li->loop = l;
	li->fd = fd;
	li->h = h;
	li->ctx = ctx;
	li->op_accept.kind = OP_ACCEPT;
	li->op_accept.owner = li;
	listener_metrics(l, li);
	if (li->m_hs_fail == NULL) {
		free(li->name);
		free(li);
		return NULL;
	}
	li->next = l->listeners;
	l->listeners = li;
	/* armed by listeners_retry() before the loop next waits, once the
	 * caller has said whether the fd cap governs it */
	return li;
}

void
listener_set_tls(struct listener *li, struct tls_server *ts)
{
	if (ts)
		tls_server_ref(ts);
	tls_server_unref(&li->tls);
	li->tls = ts;
}

void
listener_set_proxy(struct listener *li, const struct net *nets, unsigned n)
{
	conn_refuse_metrics(li->loop, li);
	li->proxy = true;
	li->proxy_nets = nets;
	li->nproxy_nets = n;
}

void
listener_set_allow(struct listener *li, const struct net *nets, unsigned n)
{
	conn_refuse_metrics(li->loop, li);
	li->allow_nets = nets;
	li->nallow_nets = n;
}

void
listener_set_limit(struct listener *li, struct conn_gauge *g)
{
	li->gauge = g;
	conn_limit_metrics(li);
}

const char *
listener_name(const struct listener *li)
{
	return li->name;
}

void *
listener_ctx(const struct listener *li)
{
	return li->ctx;
}

/* How many accepts li keeps in the kernel. A multishot accept takes every
 * connection in the backlog (up to 4096), each a descriptor, as fast as
 * the kernel can, before we see one of them: only where no fd cap counts
 * them. Under the cap, ACCEPT_AHEAD single-shot ones, one near it, so at
 * most (workers x listeners x ACCEPT_AHEAD) descriptors are taken ahead
 * of the count, well inside the reserve, and eviction keeps up. */
static unsigned
accept_want(const struct listener *li)
{
	if (!conn_limit_governs(li))
		return 1;
	return conn_limit_crowded(li) ? 1 : ACCEPT_AHEAD;
}

static void
accept_arm(struct listener *li)
{
	struct io_uring_sqe *sqe = loop_sqe(li->loop);

	/* Accepted sockets inherit TCP_NODELAY from the listener on Linux,
	 * which the daemon sets, so accept needs no setsockopt of its own. */
	if (conn_limit_governs(li))
		io_uring_prep_accept(sqe, li->fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_multishot_accept(sqe, li->fd, NULL, NULL,
		    SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &li->op_accept);
	li->accepts++;
}

/* Stop every accept li has in the kernel (their completions, -ECANCELED,
 * come back and are counted off). */
static void
accept_cancel(struct listener *li)
{
	struct io_uring_sqe *sqe;

	if (li->accepts == 0)
		return;
	sqe = loop_sqe(li->loop);
	io_uring_prep_cancel64(sqe, (uintptr_t)&li->op_accept,
	    IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, 0);
}

/* Errors accept(2) passes on from one connection (it went before we took
 * it, a network error pending on it): the next one may be fine, so no
 * pause and no episode. */
static bool
accept_transient(int err)
{
	switch (err) {
	case ECONNABORTED:
	case EAGAIN:
	case EINTR:
	case EPROTO:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

/* accept() failed (EMFILE, ENFILE, ENOBUFS, ENOMEM...): the listener
 * pauses, backing off from ACCEPT_RETRY_MS up to ACCEPT_BACKOFF_MAX_MS,
 * and listeners_retry() re-arms it; sessions already running are not
 * touched. An episode runs from the first failure until accepts have
 * gone ACCEPT_QUIET_MS without one (a descriptor freed now and then
 * does not end it): one line at each end, every failure counted. */
static void
accept_failed(struct listener *li, int err)
{
	struct loop *l = li->loop;

	metrics_add(l->shard, li->m_accept_err, 1);
	li->refused_accepts++;
	li->resumed_at = 0;
	if (li->retry_at > l->now)
		return; /* another accept in flight failed alike: same pause */
	if (li->paused_since == 0) {
		li->paused_since = l->now;
		li->backoff_ms = ACCEPT_RETRY_MS;
		metrics_add(l->shard, li->m_accept_pause, 1);
		log_warn(0, "accept.paused",
		    "listener=%s worker=%u error=\"%s\" backoff_ms=%llu "
		    "open=%u",
		    li->name, l->conf.index, strerror(err),
		    (unsigned long long)li->backoff_ms, l->nconns);
	} else if (li->backoff_ms < ACCEPT_BACKOFF_MAX_MS) {
		li->backoff_ms *= 2;
		if (li->backoff_ms > ACCEPT_BACKOFF_MAX_MS)
			li->backoff_ms = ACCEPT_BACKOFF_MAX_MS;
	}
	li->retry_at = l->now + li->backoff_ms;
	accept_cancel(li); /* the others would fail alike: pause them all */
}

/* The episode is over: accepts went ACCEPT_QUIET_MS without a failure
 * since the first one that worked. */
static void
accept_resumed(struct listener *li)
{
	struct loop *l = li->loop;

	log_warn(0, "accept.resumed",
	    "listener=%s worker=%u refused_accepts=%llu paused_ms=%llu",
	    li->name, l->conf.index, (unsigned long long)li->refused_accepts,
	    (unsigned long long)(li->resumed_at - li->paused_since));
	li->paused_since = li->resumed_at = 0;
	li->backoff_ms = 0;
	li->refused_accepts = 0;
}

/* When li next needs the loop: a retry, or the end of an episode. */
static uint64_t
accept_due(const struct listener *li)
{
	uint64_t due = li->retry_at;

	if (li->resumed_at != 0 &&
	    (due == 0 || li->resumed_at + ACCEPT_QUIET_MS < due))
		due = li->resumed_at + ACCEPT_QUIET_MS;
	return due;
}

static void
accept_handle(struct listener *li, struct io_uring_cqe *cqe)
{
	struct loop *l = li->loop;
	struct conn *c;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		li->accepts--;
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED && !li->closed &&
		    !accept_transient(-cqe->res))
			accept_failed(li, -cqe->res);
		return; /* transient: listeners_retry() re-arms */
	}
	if (li->closed || l->stopping) {
		loop_close_fd(l, cqe->res);
		return;
	}
	if (li->paused_since != 0 && li->resumed_at == 0)
		li->resumed_at = l->now;
	metrics_add(l->shard, li->m_accepted, 1);
	/* the conn starts with no ctx of its own: on_open sets one, and
	 * listener_ctx(conn_listener(c)) reaches the listener's */
	c = conn_new(l, cqe->res, li, li->h, NULL);
	if (c == NULL) {
		loop_close_fd(l, cqe->res);
		return;
	}
	if (conn_limit_admit(c) == 0)
		conn_start(c);
}

static void
listeners_retry(struct loop *l)
{
	for (struct listener *li = l->listeners; li; li = li->next) {
		unsigned want = accept_want(li);

		if (!li->closed && li->retry_at <= l->now &&
		    li->accepts < want) {
			li->retry_at = 0;
			while (li->accepts < want)
				accept_arm(li);
		}
		if (li->resumed_at != 0 &&
		    li->resumed_at + ACCEPT_QUIET_MS <= l->now)
			accept_resumed(li);
	}
}

static void
listener_close(struct listener *li)
{
	if (li->closed)
		return;
	li->closed = true;
	accept_cancel(li);
	/* The accept op holds its own reference to the socket until its
	 * cancellation lands, and until then the kernel would keep
	 * completing handshakes into the backlog. shutdown() stops the
	 * socket listening now, whoever holds it. */
	(void)shutdown(li->fd, SHUT_RDWR);
	loop_close_fd(li->loop, li->fd);
	li->fd = -1;
}

/* ---- the loop ----------------------------------------------------- */

static void
dispatch(struct loop *l, struct io_uring_cqe *cqe)
{
	struct op *op = io_uring_cqe_get_data(cqe);

	if (op == NULL)
		return; /* fire-and-forget cancel */
	switch (op->kind) {
	case OP_ACCEPT:
		accept_handle(op->owner, cqe);
		break;
	case OP_WAKE:
		wake_handle(l, cqe);
		break;
	case OP_CLOSE_CAP:
		conn_limit_closed(l);
		break;
	case OP_FD:
		fd_watch_handle(op->owner, cqe);
		break;
	case OP_POLL:
		fd_poll_handle(op->owner, cqe);
		break;
	default:
		conn_handle_cqe(op->owner, op, cqe);
		break;
	}
}

static void
rearm_pending(struct loop *l)
{
	/* delivering may queue more conns (a resume from inside on_data):
	 * run until empty so nothing stays listed past reap() */
	while (l->rearm) {
		struct conn *c = l->rearm;

		l->rearm = c->rearm_next;
		c->flags &= ~CF_REARM;
		c->rearm_next = NULL;
		conn_rearm_recv(c);
	}
}

static void
reap(struct loop *l)
{
	struct conn **pp = &l->dead;

	while (*pp) {
		struct conn *c = *pp;

		if (c->inflight == 0 && !(c->flags & CF_REARM)) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* After many sessions close, glibc keeps their pages in its free lists;
 * hand them back to the kernel so a burst does not pin its peak RSS for
 * ever. Rate-limited: malloc_trim() walks the arenas. */
static void
trim(struct loop *l)
{
	if (l->released < TRIM_BYTES || l->now < l->trim_at)
		return;
	l->released = 0;
	l->trim_at = l->now + TRIM_EVERY_MS;
	malloc_trim(0);
}

static void
drain_expired(struct loop *l)
{
	struct conn *c;

	l->drain_deadline = 0;
	while ((c = l->live) != NULL)
		conn_abort(c, CR_DRAIN);
}

void
loop_stop(struct loop *l, uint64_t drain_ms)
{
	l->stopping = true;
	for (struct listener *li = l->listeners; li; li = li->next)
		listener_close(li);
	if (drain_ms == 0)
		drain_expired(l);
	else
		l->drain_deadline = l->now + drain_ms;
}

int
loop_run(struct loop *l)
{
	pthread_mutex_lock(&l->msg_lock);
	l->thread = pthread_self();
	l->running = true;
	pthread_mutex_unlock(&l->msg_lock);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts, *tsp = NULL;
		uint64_t next = timer_next(l);
		unsigned head, count = 0;
		int rc;

		listeners_retry(l); /* new listeners, ended accepts */
		if (l->drain_deadline &&
		    (next == 0 || l->drain_deadline < next))
			next = l->drain_deadline;
		for (struct listener *li = l->listeners; li; li = li->next) {
			uint64_t due = accept_due(li);

			if (due && (next == 0 || due < next))
				next = due;
		}
		if (l->sweep_at && (next == 0 || l->sweep_at < next))
			next = l->sweep_at;
		if (l->released >= TRIM_BYTES &&
		    (next == 0 || l->trim_at < next))
			next = l->trim_at; /* a trim is owed: wake for it */
		if (next) {
			uint64_t wait = next > l->now ? next - l->now : 0;

			ts.tv_sec = (long long)(wait / 1000);
			ts.tv_nsec = (long long)(wait % 1000) * 1000000;
			tsp = &ts;
		}
		conn_flush_pending(l); /* writes made outside a batch */
		if (l->self_posted) { /* posted outside a batch: run them now */
			ts.tv_sec = 0;
			ts.tv_nsec = 0;
			tsp = &ts;
		}
		if (l->stopping && l->live == NULL && l->dead == NULL)
			break;
		rc = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, tsp,
		    NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN &&
		    rc != -EBUSY) {
			log_error(0, "loop.error", "error=\"%s\"",
			    strerror(-rc));
			pthread_mutex_lock(&l->msg_lock);
			l->running = false;
			pthread_mutex_unlock(&l->msg_lock);
			return -1;
		}
		l->now = clock_ms();
		io_uring_for_each_cqe(&l->ring, head, cqe) {
			dispatch(l, cqe);
			count++;
		}
		io_uring_cq_advance(&l->ring, count);
		/* posts from this batch; theirs in turn wait for the next */
		if (l->self_posted)
			msgs_run(l);
		timer_run(l);
		if (l->drain_deadline && l->drain_deadline <= l->now)
			drain_expired(l);
		rearm_pending(l);
		conn_flush_pending(l);
		if (l->sweep_at && l->sweep_at <= l->now)
			conn_sweep(l);
		reap(l);
		trim(l);
	}
	pthread_mutex_lock(&l->msg_lock);
	l->running = false;
	pthread_mutex_unlock(&l->msg_lock);
	io_uring_submit(&l->ring);
	return 0;
}

uint64_t
loop_now(const struct loop *l)
{
	return l->now;
}

unsigned
loop_index(const struct loop *l)
{
	return l->conf.index;
}

unsigned
loop_nconns(const struct loop *l)
{
	return l->nconns;
}

struct metrics_shard *
loop_shard(struct loop *l)
{
	return l->shard;
}

struct metrics *
loop_metrics(struct loop *l)
{
	return l->conf.metrics;
}

void *
loop_ctx(const struct loop *l)
{
	return l->ctx;
}

void
loop_set_ctx(struct loop *l, void *ctx)
{
	l->ctx = ctx;
}
