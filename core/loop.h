/*
 * loop.h - the io_uring event loop: one ring per worker thread, listeners,
 * connections, timers and cross-thread messages.
 *
 * Shared-nothing: a loop and everything hanging off it (listeners,
 * connections, their buffers and timers) belong to one thread. Other
 * threads talk to a loop only through loop_post().
 *
 * Sockets: multishot accept per listener (SO_REUSEPORT, one socket per
 * worker), multishot recv into a provided buffer ring shared by all
 * connections of the loop, so an idle connection holds no receive buffer.
 * Received bytes are handed to the handler and the buffer goes straight
 * back to the ring; handlers copy what they keep. One send in flight per
 * connection; the output queue has a high-water mark the handler checks
 * with conn_out_full() to stop reading from the other side (back-pressure).
 *
 * TLS sits between the socket and the handler: with a tls_conn attached,
 * on_data sees plaintext and conn_write() takes plaintext.
 *
 * Lifetime: conn_close()/conn_abort() start the one teardown path; in-flight
 * ops are cancelled; the fd is closed once; on_close is the last callback
 * and the conn memory is freed when no op is in flight any more.
 */
#ifndef RG_CORE_LOOP_H
#define RG_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct buf;
struct conn;
struct conn_gauge;
struct conn_limits;
struct fd_poll;
struct fd_watch;
struct listener;
struct loop;
struct metrics;
struct metrics_shard;
struct net;
struct tls_client;
struct tls_conn;
struct tls_server;

/* Why a connection ended; also the "reason" label of close metrics. */
enum conn_reason {
	CR_NONE = 0, /* closed by the handler, normal end */
	CR_EOF,	     /* peer closed */
	CR_RESET,    /* socket error from the kernel */
	CR_TIMEOUT,  /* a timer set by the loop or the handler fired */
	CR_TLS,	     /* TLS handshake or record failure */
	CR_OVERFLOW, /* peer sent or refused to read too much */
	CR_NOMEM,    /* allocation failed */
	CR_DRAIN,    /* daemon shutting down */
	CR_CONNECT,  /* outgoing connect failed */
	CR_PROXY,    /* PROXY header missing, broken or from a stranger */
	CR_REFUSED,  /* client outside the listener's allow-list */
	CR_LIMIT,    /* over a session or descriptor cap (conn_limit.h) */
	CR_MAX
};
const char *conn_reason_name(enum conn_reason r);

struct conn_handler {
	/* Ready: accepted/connected and, with TLS, handshake done. */
	void (*on_open)(struct conn *c);
	/* Plaintext arrived; p is valid only during the call. */
	void (*on_data)(struct conn *c, const char *p, size_t n);
	/* The output queue fell to the low-water mark (after being full). */
	void (*on_drain)(struct conn *c);
	/* Peer finished sending. NULL means conn_close(c). */
	void (*on_eof)(struct conn *c);
	/* The conn's timer fired. NULL means conn_abort(c, CR_TIMEOUT). */
	void (*on_timer)(struct conn *c);
	/* Last call for c, once, from the teardown path. */
	void (*on_close)(struct conn *c, enum conn_reason why);
	/* c is over a session limit (core/conn_limit.h): called instead of
	 * on_open, to say the protocol's "try again later" and close. NULL:
	 * such connections are closed at accept without a word. */
	void (*on_over)(struct conn *c);
	/* May the open c be cut to make room when the daemon is at its
	 * descriptor cap? True for a session before login that is not
	 * waiting for its login's answer. NULL: never (logged in). */
	bool (*evictable)(const struct conn *c);
};

struct loop_conf {
	unsigned index;	       /* worker number: metrics shard, logs */
	unsigned ring_entries; /* 0 = 1024 */
	unsigned buf_count;    /* provided recv buffers, power of 2; 0 = 1024 */
	unsigned buf_size;     /* bytes each; 0 = 16384 */
	size_t out_high;       /* output queue high-water; 0 = 256 KiB */
	uint64_t handshake_timeout_ms; /* TLS handshake on accept; 0 = 10 s */
	struct metrics *metrics;
	/* the daemon's caps, shared by the workers (NULL: none) */
	struct conn_limits *limits;
};

/* Create a loop for the calling thread. Returns NULL with *error_r set;
 * when io_uring is unavailable the message says so and what to change. */
struct loop *loop_new(const struct loop_conf *conf, const char **error_r);
void loop_free(struct loop *l);

/* Probe io_uring once at start-up, before threads. 0 or -1 + *error_r. */
int loop_probe(const char **error_r);

/* Run until loop_stop() and the last connection is gone. 0 or -1. */
int loop_run(struct loop *l);

/* Stop accepting, close listeners; if drain_ms is 0 abort every
 * connection now, else give them drain_ms to end before aborting. */
void loop_stop(struct loop *l, uint64_t drain_ms);

/* Run fn(l, arg) on l's thread soon. Safe from any thread. 0 or -1. */
int loop_post(struct loop *l, void (*fn)(struct loop *, void *), void *arg);

uint64_t loop_now(const struct loop *l); /* monotonic ms, per iteration */
unsigned loop_index(const struct loop *l);
unsigned loop_nconns(const struct loop *l);
struct metrics_shard *loop_shard(struct loop *l);
struct metrics *loop_metrics(struct loop *l);
void *loop_ctx(const struct loop *l);
void loop_set_ctx(struct loop *l, void *ctx);

/* Called with each chunk read from a watched fd (p valid only during the
 * call), or once with p NULL and n = -errno when the fd fails or hits EOF
 * (n = 0); after that call the watch is gone. */
typedef void loop_fd_cb(void *ctx, const char *p, ssize_t n);

/* Keep one READ of up to size bytes armed on fd (an inotify or eventfd
 * style fd whose reads block until there is something), re-armed after
 * every completion. The loop takes ownership of fd and closes it when the
 * watch ends. NULL (fd closed) when out of memory. */
struct fd_watch *loop_watch_fd(struct loop *l, int fd, size_t size,
    loop_fd_cb *cb, void *ctx);
/* No more callbacks; the READ is cancelled and the fd closed once the
 * kernel lets go of it. Nulls *w; NULL is a no-op. */
void loop_unwatch_fd(struct fd_watch **w);

/* Readiness of a descriptor a library reads and writes itself (hiredis):
 * cb gets the poll(2) events that are ready (POLLIN, POLLOUT, POLLERR,
 * POLLHUP) among those asked for. Level-triggered: while an asked-for
 * event stays ready, cb is called again every loop iteration. */
typedef void loop_poll_cb(void *ctx, unsigned revents);

/* Watch fd for the events in `events` (POLLIN|POLLOUT; 0 = none for now).
 * The caller keeps owning fd. NULL when out of memory. */
struct fd_poll *loop_poll_fd(struct loop *l, int fd, unsigned events,
    loop_poll_cb *cb, void *ctx);
/* Change what is asked for; cheap when nothing changes. */
void loop_poll_set(struct fd_poll *p, unsigned events);
/* No more callbacks. Everything queued that names fd goes to the kernel
 * before this returns, so the caller may close(fd) right after. Nulls
 * *p; NULL is a no-op. Safe from inside cb. */
void loop_unpoll_fd(struct fd_poll **p);

/* A listening socket (already bound and listening) served by this loop.
 * name labels metrics and logs. The loop takes ownership of fd. */
struct listener *loop_listen(struct loop *l, int fd, const char *name,
    const struct conn_handler *h, void *ctx);
/* Accepted connections start TLS with ts (NULL: plain). Takes a ref and
 * drops the previous one; sessions already running keep theirs. */
void listener_set_tls(struct listener *li, struct tls_server *ts);
/* Every connection on li starts with a PROXY v1/v2 header (from a load
 * balancer) that is read before anything else, TLS included; the address
 * it carries becomes the conn's peer (conn_peer_addr). Connections from
 * outside nets[0..n) are closed at once, as are those whose header is
 * broken or does not arrive within the handshake timeout; each is counted
 * in connections_refused_total. nets must outlive the listener. */
void listener_set_proxy(struct listener *li, const struct net *nets,
    unsigned n);
/* Only clients inside nets[0..n) (the address after any PROXY header)
 * may use li; others are closed at accept and counted. n = 0: anyone. */
void listener_set_allow(struct listener *li, const struct net *nets,
    unsigned n);
/* Count li's connections against the daemon's caps (loop_conf.limits)
 * and g, shared by the workers' listeners of one configured listener
 * (g->max 0: no cap of its own). Listeners without this are exempt. */
void listener_set_limit(struct listener *li, struct conn_gauge *g);
const char *listener_name(const struct listener *li);
void *listener_ctx(const struct listener *li);

/* Outgoing TCP connection; on_open fires when connected (and, after
 * conn_start_tls_client(), when the handshake is done). Bytes written
 * before that are queued. NULL on immediate failure. */
struct conn *conn_connect(struct loop *l, const struct sockaddr *sa,
    socklen_t len, const struct conn_handler *h, void *ctx);

/* Bytes that go out in the clear before anything else on an outgoing
 * connection, TLS handshake included (a PROXY v2 header for a back end).
 * Only while the connect is in flight and before any other write.
 * 0 or -1. */
int conn_send_preamble(struct conn *c, const void *p, size_t n);

/* Put TLS on a connection: client side before on_open of a connect, or
 * server side for STARTTLS (plaintext still buffered by the handler must be
 * discarded by the caller; the loop discards nothing it has delivered).
 * on_open fires again when the handshake completes. 0 or -1. */
int conn_start_tls_client(struct conn *c, struct tls_client *tc,
    const char *sni);
int conn_start_tls_server(struct conn *c, struct tls_server *ts);

/* Queue plaintext. 0, or -1 if the conn is closing or out of memory. */
int conn_write(struct conn *c, const void *p, size_t n);
/* The same for a whole buffer, taking its storage instead of copying
 * when nothing else waits to be sent (plaintext connections): *b comes
 * back empty, maybe holding other storage for its next use. */
int conn_write_buf(struct conn *c, struct buf *b);
size_t conn_out_queued(const struct conn *c);
bool conn_out_full(const struct conn *c);
/* A relay's step: write p[0..n) to `to` and pause `from` while `to`'s
 * output is over its mark (resume `from` in `to`'s on_drain). 0, or -1
 * when `to` is gone or closing: `from` is then closed, or `to`'s own
 * on_close ends the pair. */
int conn_forward(struct conn *from, struct conn *to, const void *p, size_t n);

/* Stop / restart delivering on_data (back-pressure toward this peer). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

/* While paused nothing is read, so a peer that leaves goes unnoticed. With
 * the watch on, the peer's FIN, a reset or a socket error ends the
 * connection at once (on_close with CR_EOF or CR_RESET), even with input
 * still unread: for a server busy with a long command, a client that shut
 * its side is gone (Dovecot does the same). Off cancels it. */
void conn_watch_hangup(struct conn *c, bool on);

/* Read one receive buffer per arm instead of a multishot receive, so a
 * pause takes effect within one buffer: a multishot receive keeps taking
 * whatever the peer sends until its cancel lands, and all of that waits
 * in memory for the resume. For a relay joining a fast sender to a slow
 * reader; costs one submission per buffer. Sticky. */
void conn_bounded_reads(struct conn *c);

/* Graceful: flush output (TLS close_notify), then close. */
void conn_close(struct conn *c);
/* Immediate: drop queued output and close. */
void conn_abort(struct conn *c, enum conn_reason why);
bool conn_closing(const struct conn *c);

/* One timer per conn: fire on_timer after ms (0 cancels). Cheap to call
 * on every read: re-arming does not touch the kernel. */
void conn_set_timer(struct conn *c, uint64_t ms);

/* c is over a session cap (core/conn_limit.h): on_over, not on_open, was
 * called, and the handler's answer is "try again later". */
bool conn_over_limit(const struct conn *c);
void *conn_ctx(const struct conn *c);
void conn_set_ctx(struct conn *c, void *ctx);
/* Hand c to another handler (a session taking over from the login
 * phase): every later callback goes to h with ctx. Call from inside one
 * of c's callbacks or any time on the loop's thread. */
void conn_set_handler(struct conn *c, const struct conn_handler *h, void *ctx);
uint64_t conn_sid(const struct conn *c);
const char *conn_peer(const struct conn *c); /* "addr:port" */
/* The client's address (accepted conns: the socket's peer, or what a
 * PROXY header said; outgoing: where we connected), NULL if unknown. */
const struct sockaddr *conn_peer_addr(const struct conn *c, socklen_t *len_r);
/* The address the client connected to (accepted conns; the PROXY
 * header's destination when there was one), NULL if unknown. */
const struct sockaddr *conn_local_addr(struct conn *c, socklen_t *len_r);
/* Replace the peer (and, if local is not NULL, the local) address: what a
 * trusted PROXY header or load balancer says. 0, or -1 for an address
 * that is not AF_INET/AF_INET6. */
int conn_set_peer(struct conn *c, const struct sockaddr *peer,
    const struct sockaddr *local);
struct tls_conn *conn_tls(const struct conn *c);
struct loop *conn_loop(const struct conn *c);
struct listener *conn_listener(const struct conn *c); /* NULL if outgoing */
uint64_t conn_bytes_in(const struct conn *c);	      /* plaintext received */
uint64_t conn_bytes_out(const struct conn *c);	      /* plaintext sent */
uint64_t conn_started(const struct conn *c);	      /* loop_now() at start */

#endif
