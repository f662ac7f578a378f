/*
 * timer.h - timers on a loop that belong to whoever embeds them: a
 * connection's deadline, a failed login's delay, a Redis or back-end
 * timeout, a health check. All of a loop's timers live in one min-heap;
 * the loop waits in the kernel until the earliest one, so a timer costs
 * no SQE and no syscall.
 *
 * A struct timer is embedded in its owner (no allocation per timer) and
 * belongs to one loop; only that loop's thread may touch it. The owner
 * must timer_stop() it before freeing the memory it lives in.
 */
#ifndef RG_CORE_TIMER_H
#define RG_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct timer;

/* Called once when the deadline passes, on the loop's thread. The timer
 * is stopped by then: the callback may set it again, stop or set any
 * other timer, or free the owner (the timer is not touched after). */
typedef void timer_cb(struct timer *t, void *arg);

/* Fields are the loop's; read them only through the functions below. */
struct timer {
	struct loop *loop;
	timer_cb *cb;
	void *arg;
	uint64_t deadline;	/* what the owner wants; 0 = stopped */
	uint64_t heap_deadline; /* where the heap entry sits */
	unsigned heap_idx;	/* 0 = not in the heap; else index + 1 */
};

/* A stopped timer of loop l that calls cb(t, arg). */
void timer_init(struct timer *t, struct loop *l, timer_cb *cb, void *arg);

/* Fire ms milliseconds from now (the loop's clock; 0 stops it). Moving a
 * deadline later only writes a field: the heap entry is fixed up when it
 * comes due, so re-arming on every read is cheap. 0, or -1 when the heap
 * could not grow (the timer is then stopped). */
int timer_set(struct timer *t, uint64_t ms);

/* Fire at an absolute loop time (loop_now() based); 0 stops it. */
int timer_set_at(struct timer *t, uint64_t at);

void timer_stop(struct timer *t);
bool timer_armed(const struct timer *t);

/* loop_now() at which it fires, 0 when stopped. */
uint64_t timer_deadline(const struct timer *t);

#endif
