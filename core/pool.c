/*
 * pool.c - a worker pool (threads taking turns between flows) and the
 * per-loop outboxes its answers come home through.
 *
 * Relies on loop_post() being safe from any thread, and on the outbox
 * being closed by its loop's thread after loop_run() returned but before
 * loop_free() (a daemon's worker_exit hook), so no answer is ever posted
 * to a freed loop. A wake-up message is posted only when an outbox goes
 * from empty to non-empty; its argument is the outbox itself, so a
 * wake-up dropped by loop_free() leaks nothing.
 *
 * Waiting jobs sit in per-flow FIFOs; the flows that have jobs waiting
 * form a ring, and a thread takes the first job of the flow at the head
 * and moves that flow to the tail (or drops it when it has no more).
 * That is round-robin between flows, FIFO within one. Flow structs are
 * found through a small hash table and recycled through a free list, so
 * a submit allocates only the first time a flow appears.
 *
 * Must never: block the submitting thread beyond a short mutex, run done()
 * on any thread but the outbox's, or drop a job without its done().
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "core/pool.h"

#define FLOW_BUCKETS 256
#define FLOW_SPARE_MAX 64

/* Jobs of one fairness key waiting for a thread. */
struct flow {
	uint64_t key;
	struct pool_job *head, *tail;
	struct flow *next;  /* ring of waiting flows, or the free list */
	struct flow *hnext; /* hash chain */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct flow *ring_head, *ring_tail;
	struct flow *buckets[FLOW_BUCKETS];
	struct flow *spare;
	unsigned nspare, nflows;
	unsigned queued, queue_max;
	atomic_uint running;
	bool stopping;
	unsigned nthreads;
	pthread_t *threads;
};

struct pool_outbox {
	struct loop *loop;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	struct pool_job *done, *done_tail;
	unsigned inflight; /* held or queued, not yet in done */
	bool wake_posted;
	bool closed;
};

static void *thread_main(void *arg);
static int threads_start(struct pool *p, unsigned n);
static struct flow **flow_slot(struct pool *p, uint64_t key);
static int enqueue(struct pool *p, struct pool_job *job);
static struct pool_job *dequeue(struct pool *p);
static void flow_put(struct pool *p, struct flow *f);
static int submit(struct pool *p, struct pool_outbox *ob, struct pool_job *job,
    bool limited);
static void outbox_drain(struct loop *l, void *arg);
static struct pool_job *outbox_take(struct pool_outbox *ob);

static void *
thread_main(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		struct pool_job *job;

		pthread_mutex_lock(&p->lock);
		while (p->ring_head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->ring_head == NULL) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		job = dequeue(p);
		p->running++;
		pthread_mutex_unlock(&p->lock);
		if (job->outbox == NULL) { /* no answer: run() frees it */
			job->run(job);
			p->running--;
			continue;
		}
		job->run(job);
		/* not running any more once its answer can be seen */
		p->running--;
		pool_outbox_complete(job);
	}
}

struct pool *
pool_new(unsigned threads, unsigned queue_max, const char **error_r)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (p == NULL || threads == 0 ||
	    (p->threads = calloc(threads, sizeof(pthread_t))) == NULL) {
		free(p);
		*error_r = threads ? "out of memory" : "a pool needs a thread";
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->queue_max = queue_max ? queue_max : 1024;
	if (threads_start(p, threads) == -1) {
		*error_r = "cannot start pool threads";
		pool_free(&p);
		return NULL;
	}
	return p;
}

/* The threads inherit a mask with every asynchronous signal blocked: the
 * daemon takes those on its main thread, and a stray SIGTERM delivered to
 * a pool thread would kill the process instead of draining it. Faults
 * stay unblocked so they still reach the sanitizers' handlers. */
static int
threads_start(struct pool *p, unsigned n)
{
	static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
		SIGABRT, SIGSYS };
	sigset_t set, old;
	int rc = 0;

	sigfillset(&set);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(&set, faults[i]);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (unsigned i = 0; i < n && rc == 0; i++) {
		if (pthread_create(&p->threads[i], NULL, thread_main, p) != 0)
			rc = -1;
		else
			p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

void
pool_free(struct pool **pp)
{
	struct pool *p = *pp;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	while (p->spare) {
		struct flow *f = p->spare;

		p->spare = f->next;
		free(f);
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
	*pp = NULL;
}

unsigned
pool_queued(struct pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void
pool_stats(struct pool *p, struct pool_stats *st)
{
	pthread_mutex_lock(&p->lock);
	st->queued = p->queued;
	st->flows = p->nflows;
	pthread_mutex_unlock(&p->lock);
	st->running = p->running;
}

struct pool_outbox *
pool_outbox_new(struct loop *l)
{
	struct pool_outbox *ob = calloc(1, sizeof(*ob));

	if (ob == NULL)
		return NULL;
	ob->loop = l;
	pthread_mutex_init(&ob->lock, NULL);
	pthread_cond_init(&ob->idle, NULL);
	return ob;
}

void
pool_outbox_hold(struct pool_outbox *ob, struct pool_job *job)
{
	job->outbox = ob;
	pthread_mutex_lock(&ob->lock);
	ob->inflight++;
	pthread_mutex_unlock(&ob->lock);
}

/* Under p->lock: where the flow with this key is, or would be linked. */
static struct flow **
flow_slot(struct pool *p, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ULL;
	struct flow **fp = &p->buckets[h >> 56];

	while (*fp != NULL && (*fp)->key != key)
		fp = &(*fp)->hnext;
	return fp;
}

/* Under p->lock: append job to its flow (which joins the ring's tail if
 * it had nothing waiting) and wake a thread. -1 without memory. */
static int
enqueue(struct pool *p, struct pool_job *job)
{
	struct flow **fp = flow_slot(p, job->flow), *f = *fp;

	job->next = NULL;
	if (f == NULL) {
		if (p->spare != NULL) {
			f = p->spare;
			p->spare = f->next;
			p->nspare--;
		} else if ((f = malloc(sizeof(*f))) == NULL) {
			return -1;
		}
		memset(f, 0, sizeof(*f));
		f->key = job->flow;
		*fp = f;
		if (p->ring_tail)
			p->ring_tail->next = f;
		else
			p->ring_head = f;
		p->ring_tail = f;
		p->nflows++;
	}
	if (f->tail)
		f->tail->next = job;
	else
		f->head = job;
	f->tail = job;
	p->queued++;
	pthread_cond_signal(&p->cond);
	return 0;
}

/* Under p->lock, ring not empty: the first job of the flow whose turn it
 * is; the flow goes to the back of the ring, or away if now empty. */
static struct pool_job *
dequeue(struct pool *p)
{
	struct flow *f = p->ring_head;
	struct pool_job *job = f->head;

	f->head = job->next;
	job->next = NULL;
	p->queued--;
	p->ring_head = f->next;
	if (p->ring_head == NULL)
		p->ring_tail = NULL;
	f->next = NULL;
	if (f->head != NULL) {
		if (p->ring_tail)
			p->ring_tail->next = f;
		else
			p->ring_head = f;
		p->ring_tail = f;
	} else {
		f->tail = NULL;
		flow_put(p, f);
	}
	return job;
}

/* Under p->lock: unhash an empty flow and keep it for reuse. */
static void
flow_put(struct pool *p, struct flow *f)
{
	struct flow **fp = flow_slot(p, f->key);

	*fp = f->hnext;
	p->nflows--;
	if (p->nspare >= FLOW_SPARE_MAX) {
		free(f);
		return;
	}
	f->next = p->spare;
	p->spare = f;
	p->nspare++;
}

int
pool_detach(struct pool *p, struct pool_job *job)
{
	return submit(p, NULL, job, false);
}

static int
submit(struct pool *p, struct pool_outbox *ob, struct pool_job *job,
    bool limited)
{
	pthread_mutex_lock(&p->lock);
	if ((limited && p->queued >= p->queue_max) || p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	job->outbox = ob; /* NULL: run() owns the job */
	if (enqueue(p, job) == -1) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	/* counted before the lock is dropped: a thread may finish it now */
	if (ob != NULL)
		pool_outbox_hold(ob, job);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int
pool_submit(struct pool *p, struct pool_outbox *ob, struct pool_job *job)
{
	return submit(p, ob, job, true);
}

int
pool_resubmit(struct pool *p, struct pool_outbox *ob, struct pool_job *job)
{
	return submit(p, ob, job, false);
}

/* Any thread: the work is finished; hand the job to its loop. Once the
 * outbox is closing, its owner is waiting on `idle` and runs done(). */
void
pool_outbox_complete(struct pool_job *job)
{
	struct pool_outbox *ob = job->outbox;
	bool post;

	job->next = NULL;
	pthread_mutex_lock(&ob->lock);
	if (ob->done_tail)
		ob->done_tail->next = job;
	else
		ob->done = job;
	ob->done_tail = job;
	ob->inflight--;
	post = !ob->wake_posted && !ob->closed;
	if (post)
		ob->wake_posted = true;
	if (ob->inflight == 0)
		pthread_cond_broadcast(&ob->idle);
	if (post && loop_post(ob->loop, outbox_drain, ob) == -1)
		ob->wake_posted = false; /* the next answer tries again */
	pthread_mutex_unlock(&ob->lock);
}

static struct pool_job *
outbox_take(struct pool_outbox *ob)
{
	struct pool_job *list;

	pthread_mutex_lock(&ob->lock);
	list = ob->done;
	ob->done = ob->done_tail = NULL;
	ob->wake_posted = false;
	pthread_mutex_unlock(&ob->lock);
	return list;
}

/* On the loop: run every finished job's done(). */
static void
outbox_drain(struct loop *l, void *arg)
{
	struct pool_job *job = outbox_take(arg);

	while (job) {
		struct pool_job *next = job->next;

		job->done(job);
		job = next;
	}
}

void
pool_outbox_close(struct pool_outbox **obp)
{
	struct pool_outbox *ob = *obp;

	if (ob == NULL)
		return;
	pthread_mutex_lock(&ob->lock);
	ob->closed = true;
	while (ob->inflight > 0)
		pthread_cond_wait(&ob->idle, &ob->lock);
	pthread_mutex_unlock(&ob->lock);
	outbox_drain(ob->loop, ob);
	pthread_cond_destroy(&ob->idle);
	pthread_mutex_destroy(&ob->lock);
	free(ob);
	*obp = NULL;
}
