/*
 * store_pool.c - the storage worker pool and the per-loop outboxes.
 *
 * Relies on loop_post() being safe from any thread, and on the outbox
 * being closed by its loop's thread after loop_run() returned but before
 * loop_free() (ringstore does that from a thread-exit destructor), so no
 * answer is ever posted to a freed loop. A wake-up message is posted only
 * when an outbox goes from empty to non-empty; its argument is the outbox
 * itself, so a wake-up dropped by loop_free() leaks nothing.
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
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "backend/store_pool.h"

#define FLOW_BUCKETS 256
#define FLOW_SPARE_MAX 64

/* Jobs of one fairness key waiting for a thread. */
struct flow {
	uint64_t key;
	struct store_job *head, *tail;
	struct flow *next;  /* ring of waiting flows, or the free list */
	struct flow *hnext; /* hash chain */
};

struct store_pool {
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

struct store_outbox {
	struct loop *loop;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	struct store_job *done, *done_tail;
	unsigned inflight; /* held or queued, not yet in done */
	bool wake_posted;
	bool closed;
};

static void *pool_main(void *arg);
static struct flow **flow_slot(struct store_pool *p, uint64_t key);
static int enqueue(struct store_pool *p, struct store_job *job);
static struct store_job *dequeue(struct store_pool *p);
static void flow_put(struct store_pool *p, struct flow *f);
static int submit(struct store_pool *p, struct store_outbox *ob,
    struct store_job *job, bool limited);
static void outbox_drain(struct loop *l, void *arg);
static struct store_job *outbox_take(struct store_outbox *ob);

static void *
pool_main(void *arg)
{
	struct store_pool *p = arg;

	for (;;) {
		struct store_job *job;

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
		if (job->outbox == NULL) { /* detached: run() frees it */
			job->run(job);
			p->running--;
			continue;
		}
		job->run(job);
		/* not running any more once its answer can be seen */
		p->running--;
		store_outbox_complete(job);
	}
}

struct store_pool *
store_pool_new(unsigned threads, unsigned queue_max, const char **error_r)
{
	struct store_pool *p = calloc(1, sizeof(*p));

	if (p == NULL || threads == 0 ||
	    (p->threads = calloc(threads, sizeof(pthread_t))) == NULL) {
		free(p);
		*error_r = "out of memory";
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->queue_max = queue_max ? queue_max : 1024;
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0) {
			*error_r = "cannot start store threads";
			store_pool_free(&p);
			return NULL;
		}
		p->nthreads++;
	}
	return p;
}

void
store_pool_free(struct store_pool **pp)
{
	struct store_pool *p = *pp;

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
store_pool_queued(struct store_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void
store_pool_stats(struct store_pool *p, struct store_pool_stats *st)
{
	pthread_mutex_lock(&p->lock);
	st->queued = p->queued;
	st->flows = p->nflows;
	pthread_mutex_unlock(&p->lock);
	st->running = p->running;
}

struct store_outbox *
store_outbox_new(struct loop *l)
{
	struct store_outbox *ob = calloc(1, sizeof(*ob));

	if (ob == NULL)
		return NULL;
	ob->loop = l;
	pthread_mutex_init(&ob->lock, NULL);
	pthread_cond_init(&ob->idle, NULL);
	return ob;
}

void
store_outbox_hold(struct store_outbox *ob, struct store_job *job)
{
	job->outbox = ob;
	pthread_mutex_lock(&ob->lock);
	ob->inflight++;
	pthread_mutex_unlock(&ob->lock);
}

/* Under p->lock: where the flow with this key is, or would be linked. */
static struct flow **
flow_slot(struct store_pool *p, uint64_t key)
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
enqueue(struct store_pool *p, struct store_job *job)
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
static struct store_job *
dequeue(struct store_pool *p)
{
	struct flow *f = p->ring_head;
	struct store_job *job = f->head;

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
flow_put(struct store_pool *p, struct flow *f)
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
store_pool_detach(struct store_pool *p, struct store_job *job)
{
	int rc = -1;

	pthread_mutex_lock(&p->lock);
	if (!p->stopping) {
		job->outbox = NULL;
		rc = enqueue(p, job);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int
submit(struct store_pool *p, struct store_outbox *ob, struct store_job *job,
    bool limited)
{
	pthread_mutex_lock(&p->lock);
	if ((limited && p->queued >= p->queue_max) || p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	job->outbox = ob;
	if (enqueue(p, job) == -1) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	/* counted before the lock is dropped: a thread may finish it now */
	store_outbox_hold(ob, job);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int
store_pool_submit(struct store_pool *p, struct store_outbox *ob,
    struct store_job *job)
{
	return submit(p, ob, job, true);
}

int
store_pool_resubmit(struct store_pool *p, struct store_outbox *ob,
    struct store_job *job)
{
	return submit(p, ob, job, false);
}

/* Any thread: the work is finished; hand the job to its loop. Once the
 * outbox is closing, its owner is waiting on `idle` and runs done(). */
void
store_outbox_complete(struct store_job *job)
{
	struct store_outbox *ob = job->outbox;
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

static struct store_job *
outbox_take(struct store_outbox *ob)
{
	struct store_job *list;

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
	struct store_job *job = outbox_take(arg);

	while (job) {
		struct store_job *next = job->next;

		job->done(job);
		job = next;
	}
}

void
store_outbox_close(struct store_outbox **obp)
{
	struct store_outbox *ob = *obp;

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
