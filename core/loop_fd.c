/*
 * loop_fd.c - watching a readable fd on the ring: one IORING_OP_READ in
 * flight into a small buffer owned by the watch, re-armed after every
 * completion, so a daemon can follow an inotify or eventfd style fd
 * without a thread or a poll loop of its own.
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
#include <stdlib.h>
#include <unistd.h>

#include "core/loop_private.h"

static void watch_arm(struct fd_watch *w);
static void watch_unlink_free(struct fd_watch *w);

struct fd_watch *
loop_watch_fd(struct loop *l, int fd, size_t size, loop_fd_cb *cb,
    void *ctx)
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
