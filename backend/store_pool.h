/*
 * store_pool.h - blocking work off the ring threads: a few threads run
 * jobs (Maildir calls, message reads) from one bounded queue, and each
 * answer goes back to the loop that asked through that loop's outbox.
 *
 * A job is a struct the caller allocates with a struct store_job at its
 * start: run() executes on a pool thread, done() on the owning loop's
 * thread afterwards. done() receives the job's session id and must look
 * the session up and drop the answer (freeing the job) if it has gone.
 *
 * Fairness: every job names a flow (ringstore uses one per user, and
 * one per session before login). Jobs of one flow run in the order they
 * were queued; flows with jobs waiting take turns, one job each, so a
 * flow that queues many jobs delays the others by at most one job per
 * turn, never by its whole backlog. Long work is cut into jobs that
 * re-queue themselves (store_pool_resubmit()), which puts them behind
 * every other waiting flow.
 *
 * The outbox exists so that answers never outlive the loop: every job
 * submitted through an outbox is counted there, and store_outbox_close()
 * (run by the owning thread after its loop stopped, before the loop is
 * freed) waits for the count to reach zero and runs every remaining
 * done(). Other asynchronous answers (the auth pool) can go through the
 * same outbox with store_outbox_hold() / store_outbox_complete().
 */
#ifndef RG_BACKEND_STORE_POOL_H
#define RG_BACKEND_STORE_POOL_H

#include <stdint.h>

struct loop;
struct store_job;
struct store_outbox;
struct store_pool;

typedef void store_run_fn(struct store_job *job);
typedef void store_done_fn(struct store_job *job);

struct store_job {
	store_run_fn *run;   /* pool thread; NULL for outside answers */
	store_done_fn *done; /* owning loop's thread (or at outbox close) */
	struct store_outbox *outbox;
	uint64_t sid;
	uint64_t flow; /* fairness key (any value; 0 is as good as any) */
	struct store_job *next; /* private */
};

/* A snapshot for metrics. */
struct store_pool_stats {
	unsigned queued;  /* jobs waiting */
	unsigned running; /* jobs on a thread now */
	unsigned flows;	  /* flows with jobs waiting */
};

/* Start threads (>= 1) with room for queue_max waiting jobs. NULL with
 * *error_r on failure. */
struct store_pool *store_pool_new(unsigned threads, unsigned queue_max,
    const char **error_r);

/* Stop and join the threads. Every outbox must have been closed first,
 * so no job is left. Sets *p to NULL. */
void store_pool_free(struct store_pool **p);

/* Jobs waiting now (for metrics). */
unsigned store_pool_queued(struct store_pool *p);
void store_pool_stats(struct store_pool *p, struct store_pool_stats *st);

/* An outbox for loop l; call on l's thread. NULL on allocation failure. */
struct store_outbox *store_outbox_new(struct loop *l);

/* After l stopped, on its thread: wait for every counted job, run every
 * pending done(), free the outbox. Never call done() on a loop after. */
void store_outbox_close(struct store_outbox **ob);

/* Queue job (job->run, done, sid set by the caller) on p, answering into
 * ob. 0, or -1 if the queue is full (nothing happens; the caller answers
 * "try again later" and frees the job). Never blocks. */
int store_pool_submit(struct store_pool *p, struct store_outbox *ob,
    struct store_job *job);

/* The same for the next part of work already admitted (a FETCH batch, a
 * SEARCH slice): queued like any job (so other flows take their turns
 * first) but not held to the queue limit, since its command already
 * holds a place (a session has at most one). -1 only when the pool is
 * stopping or memory ran out. */
int store_pool_resubmit(struct store_pool *p, struct store_outbox *ob,
    struct store_job *job);

/* Queue job with no answer: run() on a pool thread owns the job and frees
 * it; done is unused. For clean-up that must happen after its session has
 * gone (unlinking an abandoned tmp file). Not held to the queue limit: a
 * session has at most one, and dropping it would leak a file. Queued jobs
 * all run before store_pool_free() returns. 0, or -1 when the pool is
 * stopping (nothing happens; the caller does the work itself). */
int store_pool_detach(struct store_pool *p, struct store_job *job);

/* For answers from elsewhere: count job as in flight on ob (any thread
 * before the work starts) and later hand it in with
 * store_outbox_complete() from whatever thread finished it. */
void store_outbox_hold(struct store_outbox *ob, struct store_job *job);
void store_outbox_complete(struct store_job *job);

#endif
