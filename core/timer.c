/*
 * timer.c - one timer per connection, kept in a binary min-heap per loop.
 *
 * The loop never submits a timeout SQE per timer: it passes the earliest
 * deadline to io_uring_submit_and_wait_timeout() (one kernel wait per loop
 * iteration, whatever the number of timers).
 *
 * Re-arming is cheap on purpose: handlers push an idle deadline forward on
 * every read. A later deadline only updates conn->deadline; the heap entry
 * keeps its earlier position and, when it comes due, is moved to the new
 * deadline instead of firing. Only an earlier deadline touches the heap.
 */
#include <stdlib.h>

#include "core/loop_private.h"

static void heap_swap(struct loop *l, unsigned a, unsigned b);
static void heap_up(struct loop *l, unsigned i);
static void heap_down(struct loop *l, unsigned i);
static int heap_push(struct loop *l, struct conn *c);
static void heap_pop_at(struct loop *l, unsigned i);

static void
heap_swap(struct loop *l, unsigned a, unsigned b)
{
	struct conn *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_idx = a + 1;
	l->heap[b]->heap_idx = b + 1;
}

static void
heap_up(struct loop *l, unsigned i)
{
	while (i > 0) {
		unsigned parent = (i - 1) / 2;

		if (l->heap[parent]->heap_deadline <= l->heap[i]->heap_deadline)
			break;
		heap_swap(l, parent, i);
		i = parent;
	}
}

static void
heap_down(struct loop *l, unsigned i)
{
	for (;;) {
		unsigned left = 2 * i + 1, right = left + 1, min = i;

		if (left < l->heap_len && l->heap[left]->heap_deadline <
		    l->heap[min]->heap_deadline)
			min = left;
		if (right < l->heap_len && l->heap[right]->heap_deadline <
		    l->heap[min]->heap_deadline)
			min = right;
		if (min == i)
			return;
		heap_swap(l, i, min);
		i = min;
	}
}

static int
heap_push(struct loop *l, struct conn *c)
{
	if (l->heap_len == l->heap_cap) {
		unsigned cap = l->heap_cap ? l->heap_cap * 2 : 256;
		struct conn **h = realloc(l->heap, cap * sizeof(*h));

		if (h == NULL)
			return -1;
		l->heap = h;
		l->heap_cap = cap;
	}
	c->heap_deadline = c->deadline;
	l->heap[l->heap_len] = c;
	c->heap_idx = ++l->heap_len;
	heap_up(l, l->heap_len - 1);
	return 0;
}

static void
heap_pop_at(struct loop *l, unsigned i)
{
	struct conn *c = l->heap[i];

	l->heap_len--;
	if (i != l->heap_len) {
		l->heap[i] = l->heap[l->heap_len];
		l->heap[i]->heap_idx = i + 1;
		heap_down(l, i);
		heap_up(l, i);
	}
	c->heap_idx = 0;
}

/* Called after c->deadline changed. An allocation failure leaves the conn
 * without a timer; the loop then closes it rather than let it hang. */
void
timer_update(struct loop *l, struct conn *c)
{
	if (c->deadline == 0) {
		if (c->heap_idx)
			heap_pop_at(l, c->heap_idx - 1);
		return;
	}
	if (c->heap_idx == 0) {
		if (heap_push(l, c) == -1)
			conn_abort(c, CR_NOMEM);
		return;
	}
	if (c->deadline < c->heap_deadline) {
		c->heap_deadline = c->deadline;
		heap_up(l, c->heap_idx - 1);
	}
	/* later deadline: fixed up lazily when the entry comes due */
}

void
timer_remove(struct loop *l, struct conn *c)
{
	c->deadline = 0;
	if (c->heap_idx)
		heap_pop_at(l, c->heap_idx - 1);
}

/* Earliest deadline in ms, or 0 when there is none. */
uint64_t
timer_next(struct loop *l)
{
	return l->heap_len ? l->heap[0]->heap_deadline : 0;
}

/* Fire what is due. A handler may set, clear or re-arm any timer (its own
 * or another conn's) from inside the callback. */
void
timer_run(struct loop *l)
{
	while (l->heap_len && l->heap[0]->heap_deadline <= l->now) {
		struct conn *c = l->heap[0];

		if (c->deadline > l->now) {
			/* pushed forward since it was queued */
			c->heap_deadline = c->deadline;
			heap_down(l, 0);
			continue;
		}
		heap_pop_at(l, 0);
		c->deadline = 0;
		conn_timer_fire(c);
	}
}
