/*
 * timer.c - every timer of a loop in one binary min-heap.
 *
 * The loop never submits a timeout SQE per timer: it passes the earliest
 * deadline to io_uring_submit_and_wait_timeout() (one kernel wait per loop
 * iteration, whatever the number of timers).
 *
 * Re-arming is cheap on purpose: handlers push an idle deadline forward on
 * every read. A later deadline only updates t->deadline; the heap entry
 * keeps its earlier position and, when it comes due, is moved to the new
 * deadline instead of firing. Only an earlier deadline touches the heap.
 *
 * Owners embed their timers (core/timer.h); connections embed one for
 * their single deadline. Never: calls a callback for a stopped timer, or
 * touches a timer after its callback returned.
 */
#include <stdlib.h>

#include "core/loop_private.h"
#include "core/timer.h"

static void heap_swap(struct loop *l, unsigned a, unsigned b);
static void heap_up(struct loop *l, unsigned i);
static void heap_down(struct loop *l, unsigned i);
static int heap_push(struct loop *l, struct timer *t);
static void heap_pop_at(struct loop *l, unsigned i);

static void
heap_swap(struct loop *l, unsigned a, unsigned b)
{
	struct timer *t = l->heap[a];

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

		if (left < l->heap_len &&
		    l->heap[left]->heap_deadline < l->heap[min]->heap_deadline)
			min = left;
		if (right < l->heap_len &&
		    l->heap[right]->heap_deadline < l->heap[min]->heap_deadline)
			min = right;
		if (min == i)
			return;
		heap_swap(l, i, min);
		i = min;
	}
}

static int
heap_push(struct loop *l, struct timer *t)
{
	if (l->heap_len == l->heap_cap) {
		unsigned cap = l->heap_cap ? l->heap_cap * 2 : 256;
		struct timer **h = realloc(l->heap, cap * sizeof(*h));

		if (h == NULL)
			return -1;
		l->heap = h;
		l->heap_cap = cap;
	}
	t->heap_deadline = t->deadline;
	l->heap[l->heap_len] = t;
	t->heap_idx = ++l->heap_len;
	heap_up(l, l->heap_len - 1);
	return 0;
}

static void
heap_pop_at(struct loop *l, unsigned i)
{
	struct timer *t = l->heap[i];

	l->heap_len--;
	if (i != l->heap_len) {
		l->heap[i] = l->heap[l->heap_len];
		l->heap[i]->heap_idx = i + 1;
		heap_down(l, i);
		heap_up(l, i);
	}
	t->heap_idx = 0;
}

void
timer_init(struct timer *t, struct loop *l, timer_cb *cb, void *arg)
{
	t->loop = l;
	t->cb = cb;
	t->arg = arg;
	t->deadline = t->heap_deadline = 0;
	t->heap_idx = 0;
}

int
timer_set_at(struct timer *t, uint64_t at)
{
	struct loop *l = t->loop;

	if (at == 0) {
		timer_stop(t);
		return 0;
	}
	t->deadline = at;
	if (t->heap_idx == 0) {
		if (heap_push(l, t) == -1) {
			t->deadline = 0;
			return -1;
		}
		return 0;
	}
	if (at < t->heap_deadline) {
		t->heap_deadline = at;
		heap_up(l, t->heap_idx - 1);
	}
	/* later deadline: fixed up lazily when the entry comes due */
	return 0;
}

int
timer_set(struct timer *t, uint64_t ms)
{
	return timer_set_at(t, ms ? t->loop->now + ms : 0);
}

void
timer_stop(struct timer *t)
{
	t->deadline = 0;
	if (t->heap_idx)
		heap_pop_at(t->loop, t->heap_idx - 1);
}

bool
timer_armed(const struct timer *t)
{
	return t->deadline != 0;
}

uint64_t
timer_deadline(const struct timer *t)
{
	return t->deadline;
}

/* Earliest deadline in ms, or 0 when there is none. */
uint64_t
timer_next(struct loop *l)
{
	return l->heap_len ? l->heap[0]->heap_deadline : 0;
}

/* Fire what is due. A callback may set, stop or re-arm any timer (its
 * own or another's) and free its owner. */
void
timer_run(struct loop *l)
{
	while (l->heap_len && l->heap[0]->heap_deadline <= l->now) {
		struct timer *t = l->heap[0];

		if (t->deadline > l->now) {
			/* pushed forward since it was queued */
			t->heap_deadline = t->deadline;
			heap_down(l, 0);
			continue;
		}
		heap_pop_at(l, 0);
		t->deadline = 0;
		t->cb(t, t->arg);
	}
}
