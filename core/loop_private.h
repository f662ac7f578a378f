/*
 * loop_private.h - what loop.c, conn.c and timer.c share and nobody else
 * may see: the loop, listener, connection and op structs.
 *
 * Every SQE's user_data is a pointer to a struct op embedded in its owner
 * (a conn, a listener or the loop), never an fd: fds are reused by the
 * kernel the moment they are closed. user_data 0 marks fire-and-forget
 * SQEs (cancellations, closes) whose CQEs are dropped.
 *
 * Descriptor lifetime: on a loop's thread a descriptor that an SQE may
 * have named is closed only through the ring (loop_close_fd()), queued
 * behind every SQE that names it. The descriptor table is shared by every
 * thread of the process: a close() while an SQE naming the number still
 * waits in the submission queue lets another thread's accept() or open()
 * take the number, and the op then runs on that thread's new file.
 */
#ifndef RG_CORE_LOOP_PRIVATE_H
#define RG_CORE_LOOP_PRIVATE_H

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/timer.h"

enum op_kind {
	OP_ACCEPT = 1,
	OP_RECV,
	OP_SEND,
	OP_CONNECT,
	OP_WAKE,
	OP_FD,
	OP_POLL,      /* loop_poll_fd() */
	OP_HANGUP,    /* conn_watch_hangup() */
	OP_CLOSE_CAP, /* the close of a conn counted against the fd cap */
};

struct op {
	uint8_t kind;
	void *owner;
};

/* conn flags */
enum {
	CF_RECV_ARMED = 0x001,	  /* multishot recv in flight */
	CF_SEND_BUSY = 0x002,	  /* a send in flight */
	CF_CONNECTING = 0x004,	  /* connect in flight */
	CF_PAUSED = 0x008,	  /* handler asked for no on_data */
	CF_HANDSHAKE = 0x010,	  /* TLS handshake not done yet */
	CF_OPEN = 0x020,	  /* on_open was called at least once */
	CF_CLOSING = 0x040,	  /* graceful close: flushing */
	CF_DEAD = 0x080,	  /* torn down; waiting for ops to finish */
	CF_WAS_FULL = 0x100,	  /* output passed high-water: on_drain due */
	CF_REARM = 0x200,	  /* on the loop's re-arm list */
	CF_EOF = 0x400,		  /* peer sent FIN */
	CF_CANCEL_SENT = 0x800,	  /* recv cancel already requested */
	CF_TLS_CLIENT = 0x1000,	  /* our side of the TLS is the client */
	CF_LINGER = 0x2000,	  /* FIN sent, dropping input until peer's */
	CF_HOLDS = 0x4000,	  /* on the loop's holders list */
	CF_PROXY_HDR = 0x8000,	  /* reading a PROXY header (before TLS) */
	CF_POLL_ARMED = 0x10000,  /* hangup poll in flight */
	CF_POLL_CANCEL = 0x20000, /* its cancel already requested */
	CF_POLL_WANT = 0x40000,	  /* the handler wants the hangup watch */
	CF_ONESHOT = 0x80000,	  /* one recv (one buffer) per arm */
	CF_FLUSH = 0x100000,	  /* on the loop's flush list */

	/* conn_limit.c */
	CF_OVER = 0x200000,	/* over a cap: on_over instead of on_open */
	CF_LIM_CONN = 0x400000, /* counted in the daemon's conns */
	CF_LIM_SESS = 0x800000, /* counted in sessions (and listener's) */
	CF_YOUNG = 0x1000000,	/* on the loop's young list */
};

/* A socket address small enough to keep in every conn (no
 * sockaddr_storage: AF_UNIX paths are never a peer here). */
union conn_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct conn {
	struct loop *loop;
	struct listener *li;
	const struct conn_handler *h;
	void *ctx;
	int fd;
	unsigned flags;
	unsigned inflight; /* ops whose final CQE has not arrived */
	enum conn_reason reason;
	uint64_t sid;
	struct op op_recv, op_send, op_connect, op_poll;
	/* Wire bytes (ciphertext with TLS). `out` is what the send in flight
	 * points into and must not move until it completes; new bytes go to
	 * `pend`, which becomes `out` when `out` is empty. */
	struct buf out, pend;
	struct buf stash; /* plaintext received while paused (no TLS) */
	struct buf early; /* plaintext written before the TLS handshake */
	struct tls_conn *tls;
	struct sockaddr_storage *connect_sa; /* only while connecting */
	struct timer timer; /* the conn's one deadline (conn_set_timer) */
	uint64_t started, bytes_in, bytes_out;
	struct conn *next, *prev; /* loop's live list, or dead list */
	struct conn *rearm_next;
	struct conn *flush_next;	    /* loop's flush list */
	struct conn *hold_next, *hold_prev; /* holders list */

	/* the loop's young list (conn_limit.c) */
	struct conn *young_next, *young_prev;
	uint64_t last_io;	  /* loop_now() of the last send or TLS input */
	union conn_addr peer_sa;  /* the client: socket or PROXY header */
	union conn_addr local_sa; /* what it connected to (ditto) */
	socklen_t peer_len, local_len; /* 0 = unknown */
	char peer[56];
};

struct listener {
	struct loop *loop;
	int fd;
	char *name;
	const struct conn_handler *h;
	void *ctx;
	struct tls_server *tls;
	struct op op_accept;
	bool closed;
	/* accepts in the kernel, each a descriptor it may take before we
	 * count it: one multishot on a listener the fd cap does not govern;
	 * on one it governs, single-shot ones, ACCEPT_AHEAD of them or one
	 * near the cap (loop.c), so a flood never outruns the count */
	unsigned accepts;
	uint64_t retry_at; /* re-arm accept after EMFILE and such */
	/* PROXY protocol: only these sources, each conn sends a header */
	const struct net *proxy_nets;
	unsigned nproxy_nets;
	bool proxy;
	/* allow-list of clients (after the PROXY header); 0 = anyone */
	const struct net *allow_nets;
	unsigned nallow_nets;
	struct listener *next;
	/* session caps (conn_limit.c): NULL = exempt */
	struct conn_gauge *gauge;
	/* accept failures (EMFILE...): an episode from the first failure
	 * until accepts go a while without one (loop.c), logged at both
	 * ends; resumed_at: the first accept since the last failure */
	uint64_t paused_since, resumed_at, backoff_ms, refused_accepts;
	/* refusals at the caps since the last summary line, and when the
	 * next one may be written */
	uint64_t limit_refused, limit_log_at;
	/* metric ids */
	int m_accepted, m_open, m_hs_ok, m_accept_err;
	int m_closed[CR_MAX];
	int *m_hs_fail;	  /* one per tls_reasons[] entry, plus "timeout" */
	int m_refused[4]; /* conn.c's refuse_reasons; -1 = not counted */

	int m_accept_pause; /* accept_pauses_total */
	int m_limit[3];	    /* sessions_refused_total by conn_limit.c reason */
	int m_evicted;	    /* sessions_evicted_total */
};

/* A readable fd watched by loop_watch_fd(): one READ in flight at a time
 * into buf, re-armed after each completion. The loop owns the struct and
 * the fd; a cancelled watch stays on the list until its READ completes. */
struct fd_watch {
	struct loop *loop;
	int fd;
	bool armed, cancelled;
	bool busy; /* inside cb: an unwatch only marks it */
	loop_fd_cb *cb;
	void *ctx;
	struct op op;
	struct fd_watch *next;
	size_t size;
	char buf[];
};

/* A descriptor polled for loop_poll_fd(): at most one one-shot POLL_ADD
 * in flight, re-armed after each completion while events are wanted (a
 * one-shot poll looks at the current state when armed: level-triggered,
 * as hiredis expects). `want` is what the owner asks for, `armed_for`
 * what the op in flight waits for; a change cancels it and the
 * completion re-arms with the new set. */
struct fd_poll {
	struct loop *loop;
	int fd;
	unsigned want, armed_for;
	bool armed, cancel_sent, gone, busy;
	loop_poll_cb *cb;
	void *ctx;
	struct op op;
	struct fd_poll *next;
};

struct loop_msg {
	void (*fn)(struct loop *, void *);
	void *arg;
	struct loop_msg *next;
};

struct loop {
	struct io_uring ring;
	struct loop_conf conf;
	struct metrics_shard *shard;
	void *ctx;
	uint64_t now;
	/* provided receive buffers */
	struct io_uring_buf_ring *br;
	char *bufs;
	unsigned br_mask;
	char *scratch; /* TLS plaintext, buf_size bytes */
	/* connections */
	struct conn *live, *dead;
	unsigned nconns;
	struct conn *rearm;
	struct conn *flush;   /* conns written to since their last send */
	struct conn *holders; /* conns whose buffers hold storage */
	uint64_t sweep_at;    /* 0 = no sweep due */
	size_t released;      /* bytes freed since the last malloc_trim() */
	uint64_t trim_at;     /* earliest next malloc_trim() */
	uint64_t sid_key, sid_next;
	/* accepted conns not (yet) logged in, oldest first: who is cut at
	 * the descriptor cap (conn_limit.c) */
	struct conn *young_head, *young_tail;
	/* timers: binary min-heap of every timer of the loop (timer.c) */
	struct timer **heap;
	unsigned heap_len, heap_cap;
	struct listener *listeners;
	/* cross-thread messages */
	int wake_fd;
	uint64_t wake_val;
	struct op op_wake;
	/* user data of every close of a conn counted in the fd cap: its
	 * completion gives the count back (conn_limit_closed()) */
	struct op op_close_cap;
	pthread_mutex_t msg_lock;
	struct loop_msg *msgs;
	/* the thread inside loop_run(): its own posts skip the eventfd and
	 * run at the end of the current batch of completions */
	pthread_t thread;
	bool running, self_posted;
	struct fd_watch *watches; /* loop_watch_fd(), live or cancelled */
	struct fd_poll *polls;	  /* loop_poll_fd(), live or gone */
	/* stopping */
	bool stopping;
	uint64_t drain_deadline; /* 0 = none */
	int m_enobufs;
};

/* loop.c */
struct io_uring_sqe *loop_sqe(struct loop *l);
void loop_close_fd(struct loop *l, int fd);
void loop_close_fd_counted(struct loop *l, int fd);

/* loop_fd.c */
void fd_watch_handle(struct fd_watch *w, struct io_uring_cqe *cqe);
void fd_watch_free_all(struct loop *l);
void fd_poll_handle(struct fd_poll *p, struct io_uring_cqe *cqe);
void fd_poll_free_all(struct loop *l);

/* conn.c */
void conn_handle_cqe(struct conn *c, struct op *op, struct io_uring_cqe *cqe);
struct conn *conn_new(struct loop *l, int fd, struct listener *li,
    const struct conn_handler *h, void *ctx);
void conn_start(struct conn *c);
void conn_rearm_recv(struct conn *c);
void conn_flush_pending(struct loop *l);
void conn_free(struct conn *c);
void conn_sweep(struct loop *l);
void conn_refuse_metrics(struct loop *l, struct listener *li);

/* timer.c */
uint64_t timer_next(struct loop *l);
void timer_run(struct loop *l);

#endif
