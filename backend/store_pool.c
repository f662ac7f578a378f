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
 * Must never: block the submitting thread beyond a short mutex, run done()
 * on any thread but the outbox's, or drop a job without its done().
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "backend/store_pool.h"

struct store_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct store_job *head, *tail;
	unsigned queued, queue_max;
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
static void enqueue(struct store_pool *p, struct store_job *job);
static void outbox_drain(struct loop *l, void *arg);
static struct store_job *outbox_take(struct store_outbox *ob);

static void *
pool_main(void *arg)
{
	struct store_pool *p = arg;

	for (;;) {
		struct store_job *job;

		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->head == NULL) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		job = p->head;
		p->head = job->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		job->next = NULL;
		if (job->outbox == NULL) { /* detached: run() frees it */
			job->run(job);
			continue;
		}
		job->run(job);
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

/* Under p->lock: append job to the queue and wake a thread. */
static void
enqueue(struct store_pool *p, struct store_job *job)
{
	job->next = NULL;
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	p->queued++;
	pthread_cond_signal(&p->cond);
}

int
store_pool_detach(struct store_pool *p, struct store_job *job)
{
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	job->outbox = NULL;
	enqueue(p, job);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int
store_pool_submit(struct store_pool *p, struct store_outbox *ob,
    struct store_job *job)
{
	pthread_mutex_lock(&p->lock);
	if (p->queued >= p->queue_max || p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	store_outbox_hold(ob, job);
	enqueue(p, job);
	pthread_mutex_unlock(&p->lock);
	return 0;
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
