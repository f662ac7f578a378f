/*
 * loop_fd.c - descriptors that are not connections, on the ring: a
 * watched fd (one IORING_OP_READ in flight into a small buffer owned by
 * the watch, re-armed after every completion, so a daemon can follow an
 * inotify or eventfd style fd without a thread or a poll loop of its own),
 * and a polled fd (readiness only, for libraries that do their own I/O).
 *
 * Relies on the op/dispatch design of loop.c: the SQE's user_data is the
 * op inside the watch, never the fd. A cancelled watch stays on the
 * loop's list until its READ completes (or the ring is torn down), so a
 * late CQE never touches freed memory.
 *
 * Never: blocks (the fd is only read by the kernel through the ring),
 * calls back after loop_unwatch_fd(), or closes the fd twice.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/loop_private.h"

static void watch_arm(struct fd_watch *w);
static void watch_unlink_free(struct fd_watch *w);

struct fd_watch *
loop_watch_fd(struct loop *l, int fd, size_t size, loop_fd_cb *cb, void *ctx)
{
	struct fd_watch *w = calloc(1, sizeof(*w) + size);

	if (w == NULL) {
		close(fd);
		return NULL;
	}
	w->loop = l;
	w->fd = fd;
	w->size = size;
	w->cb = cb;
	w->ctx = ctx;
	w->op.kind = OP_FD;
	w->op.owner = w;
	w->next = l->watches;
	l->watches = w;
	watch_arm(w);
	return w;
}

void
loop_unwatch_fd(struct fd_watch **wp)
{
	struct fd_watch *w = *wp;
	struct io_uring_sqe *sqe;

	*wp = NULL;
	if (w == NULL)
		return;
	w->cancelled = true;
	if (w->busy)
		return; /* inside its own callback: fd_watch_handle frees */
	if (!w->armed) {
		watch_unlink_free(w);
		return;
	}
	/* the READ's CQE (-ECANCELED or data) frees the watch */
	sqe = loop_sqe(w->loop);
	io_uring_prep_cancel64(sqe, (uintptr_t)&w->op, 0);
	io_uring_sqe_set_data(sqe, NULL);
}

void
fd_watch_handle(struct fd_watch *w, struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	w->armed = false;
	if (w->cancelled) {
		watch_unlink_free(w);
		return;
	}
	if (res == -EINTR || res == -EAGAIN) {
		watch_arm(w);
		return;
	}
	if (res <= 0) {
		/* the callback is told once, then the watch is gone: a fd
		 * that fails once would fail on every re-arm */
		w->busy = true;
		w->cb(w->ctx, NULL, res);
		watch_unlink_free(w);
		return;
	}
	w->busy = true;
	w->cb(w->ctx, w->buf, res);
	w->busy = false;
	/* the callback may have unwatched: then nothing is in flight */
	if (w->cancelled)
		watch_unlink_free(w);
	else
		watch_arm(w);
}

/* At loop_free(), after the ring is gone: nothing can complete any more,
 * so the descriptors are closed directly. */
void
fd_watch_free_all(struct loop *l)
{
	while (l->watches) {
		struct fd_watch *w = l->watches;

		l->watches = w->next;
		close(w->fd);
		free(w);
	}
}

static void
watch_arm(struct fd_watch *w)
{
	struct io_uring_sqe *sqe = loop_sqe(w->loop);

	io_uring_prep_read(sqe, w->fd, w->buf, (unsigned)w->size, 0);
	io_uring_sqe_set_data(sqe, &w->op);
	w->armed = true;
}

static void
watch_unlink_free(struct fd_watch *w)
{
	struct fd_watch **pp = &w->loop->watches;

	while (*pp && *pp != w)
		pp = &(*pp)->next;
	if (*pp)
		*pp = w->next;
	loop_close_fd(w->loop, w->fd); /* the one rule: see loop_private.h */
	free(w);
}

/* ---- polled descriptors (loop_poll_fd) ---------------------------------
 *
 * For libraries that do their own reads and writes (hiredis): we only say
 * when the descriptor is ready. The descriptor stays the caller's, which
 * is why loop_unpoll_fd() submits at once: once it returns, no SQE of ours
 * that names the number is still waiting to be issued, and the caller may
 * close() it (see the descriptor rule in loop_private.h). */

static void poll_arm(struct fd_poll *p);
static void poll_cancel(struct fd_poll *p);
static void poll_unlink_free(struct fd_poll *p);

struct fd_poll *
loop_poll_fd(struct loop *l, int fd, unsigned events, loop_poll_cb *cb,
    void *ctx)
{
	struct fd_poll *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->loop = l;
	p->fd = fd;
	p->want = events;
	p->cb = cb;
	p->ctx = ctx;
	p->op.kind = OP_POLL;
	p->op.owner = p;
	p->next = l->polls;
	l->polls = p;
	poll_arm(p);
	return p;
}

void
loop_poll_set(struct fd_poll *p, unsigned events)
{
	p->want = events;
	if (p->busy || p->gone)
		return; /* fd_poll_handle() arms after the callback */
	if (!p->armed)
		poll_arm(p);
	else if (p->armed_for != events)
		poll_cancel(p); /* the completion re-arms with `want` */
}

void
loop_unpoll_fd(struct fd_poll **pp)
{
	struct fd_poll *p = *pp;

	*pp = NULL;
	if (p == NULL)
		return;
	p->gone = true;
	if (p->busy)
		return; /* inside its callback: nothing armed, handle frees */
	if (!p->armed) {
		poll_unlink_free(p);
		return;
	}
	poll_cancel(p);
	/* the POLL_ADD goes in (holding its own file reference) before the
	 * caller can close the number; its -ECANCELED completion frees p */
	io_uring_submit(&p->loop->ring);
}

void
fd_poll_handle(struct fd_poll *p, struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	p->armed = p->cancel_sent = false;
	if (p->gone) {
		poll_unlink_free(p);
		return;
	}
	if (res > 0 || (res < 0 && res != -ECANCELED)) {
		/* a failed poll (the fd is gone) is reported as an error
		 * once, and nothing is armed until the owner asks again */
		unsigned rev = res > 0 ?
		    (unsigned)res & (p->want | POLLERR | POLLHUP) :
		    POLLERR;

		if (res < 0)
			p->want = 0;
		if (rev) {
			p->busy = true;
			p->cb(p->ctx, rev);
			p->busy = false;
			if (p->gone) {
				poll_unlink_free(p);
				return;
			}
		}
	}
	poll_arm(p); /* level-triggered: still ready means called again */
}

/* At loop_free(), after the ring is gone. The descriptors are not ours. */
void
fd_poll_free_all(struct loop *l)
{
	while (l->polls) {
		struct fd_poll *p = l->polls;

		l->polls = p->next;
		free(p);
	}
}

static void
poll_arm(struct fd_poll *p)
{
	struct io_uring_sqe *sqe;

	if (p->armed || p->gone || p->want == 0)
		return;
	sqe = loop_sqe(p->loop);
	io_uring_prep_poll_add(sqe, p->fd, p->want);
	io_uring_sqe_set_data(sqe, &p->op);
	p->armed = true;
	p->armed_for = p->want;
}

static void
poll_cancel(struct fd_poll *p)
{
	struct io_uring_sqe *sqe;

	if (p->cancel_sent)
		return;
	sqe = loop_sqe(p->loop);
	io_uring_prep_cancel64(sqe, (uintptr_t)&p->op, 0);
	io_uring_sqe_set_data(sqe, NULL);
	p->cancel_sent = true;
}

static void
poll_unlink_free(struct fd_poll *p)
{
	struct fd_poll **pp = &p->loop->polls;

	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	free(p);
}
