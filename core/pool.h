/*
 * pool.h - blocking work off the ring threads: a few threads run jobs
 * from one bounded queue, and each answer goes back to the loop that
 * asked through that loop's outbox. A daemon makes one pool per lane
 * (ringstore: mailbox work, the login lane; auth: password hashes), so
 * one kind of work never waits behind another.
 *
 * A job is a struct the caller allocates with a struct pool_job at its
 * start: run() executes on a pool thread, done() on the owning loop's
 * thread afterwards. done() receives the job's session id and must look
 * the session up and drop the answer (freeing the job) if it has gone.
 *
 * Fairness: every job names a flow (ringstore uses one per user, and one
 * per session before login). Jobs of one flow run in the order they were
 * queued; flows with jobs waiting take turns, one job each, so a flow
 * that queues many jobs delays the others by at most one job per turn,
 * never by its whole backlog. Long work is cut into jobs that re-queue
 * themselves (pool_resubmit()), which puts them behind every other
 * waiting flow.
 *
 * The outbox exists so that answers never outlive the loop: every job
 * submitted through an outbox is counted there, and pool_outbox_close()
 * (run by the owning thread after its loop stopped, before the loop is
 * freed: the daemon's worker_exit hook) waits for the count to reach zero
 * and runs every remaining done(). Asynchronous answers from elsewhere
 * (another pool's callback) can go through the same outbox with
 * pool_outbox_hold() / pool_outbox_complete().
 *
 * Knows nothing of what the jobs do; never blocks a submitting thread
 * beyond a short mutex.
 */
#ifndef RG_CORE_POOL_H
#define RG_CORE_POOL_H

#include <stdint.h>

struct loop;
struct pool;
struct pool_job;
struct pool_outbox;

typedef void pool_run_fn(struct pool_job *job);
typedef void pool_done_fn(struct pool_job *job);

struct pool_job {
	pool_run_fn *run;   /* pool thread; NULL for outside answers */
	pool_done_fn *done; /* owning loop's thread (or at outbox close) */
	struct pool_outbox *outbox;
	uint64_t sid;
	uint64_t flow;	       /* fairness key (any value; 0 is as good) */
	struct pool_job *next; /* private */
};

/* A snapshot for metrics. */
struct pool_stats {
	unsigned queued;  /* jobs waiting */
	unsigned running; /* jobs on a thread now */
	unsigned flows;	  /* flows with jobs waiting */
};

/* Start threads (>= 1) with room for queue_max waiting jobs (0: 1024).
 * The threads take no asynchronous signals. NULL with *error_r. */
struct pool *pool_new(unsigned threads, unsigned queue_max,
    const char **error_r);

/* Stop and join the threads. Every outbox must have been closed first;
 * jobs still queued without an outbox (detached ones) run before this
 * returns. Sets *p to NULL; NULL is a no-op. */
void pool_free(struct pool **p);

/* Jobs waiting now (for metrics). */
unsigned pool_queued(struct pool *p);
void pool_stats(struct pool *p, struct pool_stats *st);

/* An outbox for loop l; call on l's thread. NULL on allocation failure. */
struct pool_outbox *pool_outbox_new(struct loop *l);

/* After l stopped, on its thread: wait for every counted job, run every
 * pending done(), free the outbox. Never call done() on a loop after.
 * Nulls *ob; NULL is a no-op. */
void pool_outbox_close(struct pool_outbox **ob);

/* Queue job (job->run, done, sid, flow set by the caller) on p, answering
 * into ob. 0, or -1 if the queue is full (nothing happens; the caller
 * answers "try again later" and frees the job). Never blocks.
 * ob may be NULL: then there is no done(); run() owns the job, answers
 * by its own means (loop_post()) and frees it. */
int pool_submit(struct pool *p, struct pool_outbox *ob, struct pool_job *job);

/* The same for the next part of work already admitted (a FETCH batch, a
 * SEARCH slice): queued like any job (so other flows take their turns
 * first) but not held to the queue limit, since its command already
 * holds a place (a session has at most one). -1 only when the pool is
 * stopping or memory ran out. */
int pool_resubmit(struct pool *p, struct pool_outbox *ob, struct pool_job *job);

/* Queue job with no answer: run() on a pool thread owns the job and frees
 * it; done is unused. For clean-up that must happen after its session has
 * gone (unlinking an abandoned tmp file). Not held to the queue limit: a
 * session has at most one, and dropping it would leak a file. Queued jobs
 * all run before pool_free() returns. 0, or -1 when the pool is stopping
 * or out of memory (nothing happens; the caller does the work itself). */
int pool_detach(struct pool *p, struct pool_job *job);

/* For answers from elsewhere: count job as in flight on ob (any thread,
 * before the work starts) and later hand it in with pool_outbox_complete()
 * from whatever thread finished it. */
void pool_outbox_hold(struct pool_outbox *ob, struct pool_job *job);
void pool_outbox_complete(struct pool_job *job);

#endif
