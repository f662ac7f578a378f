/*
 * passwd_bench.c - `ringgate-passwd bench`, hidden: how many verifications
 * per second each scheme costs at its default cost on this machine, for
 * docs/benchmarks.md and for sizing the verify pool.
 *
 * Relies on auth_scheme_hash() and auth_scheme_verify() being re-entrant
 * (threads verify at once, as the pool's workers do), on CLOCK_MONOTONIC
 * for the rate and CLOCK_THREAD_CPUTIME_ID for the CPU cost of each
 * verification, which noise from other work on the box disturbs less.
 *
 * Must never: assert a speed (machines differ; it prints what it saw),
 * or count a verification that did not succeed.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/passwd_private.h"

#define BENCH_MIN_COUNT 5 /* per thread, so the slowest scheme is timed */
#define BENCH_PASSWORD "correct horse battery staple"

/* What one timing thread does: verify stored against the password until
 * its time is up and it has done at least BENCH_MIN_COUNT. */
struct bench_job {
	const char *stored;
	double seconds;
	uint64_t count;
	double cpu; /* this thread's CPU seconds for those verifications */
	bool failed;
	pthread_t tid;
};

static int bench_scheme(enum auth_scheme s, const struct auth_scheme_opts *o,
    unsigned seconds, unsigned threads);
static void *bench_thread(void *arg);
static void bench_cost(enum auth_scheme s, const struct auth_scheme_opts *o,
    char *buf, size_t cap);
static double now_s(void);
static double thread_cpu_s(void);

int
passwd_bench(unsigned seconds, unsigned threads)
{
	static const enum auth_scheme list[] = { AUTH_SCHEME_ARGON2ID,
		AUTH_SCHEME_BLF_CRYPT, AUTH_SCHEME_SHA512_CRYPT,
		AUTH_SCHEME_SHA256_CRYPT, AUTH_SCHEME_YESCRYPT,
		AUTH_SCHEME_SCRAM_SHA_256 };
	struct auth_scheme_opts o = { 0 };

	if (threads == 0 || threads > PASSWD_BENCH_THREADS_MAX)
		return -1;
	auth_scheme_opts_default(&o);
	printf("| scheme | default cost | threads | verifications | seconds "
	       "| verifications/s | wall ms each | CPU ms each |\n"
	       "|---|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
		if (bench_scheme(list[i], &o, seconds, threads) == -1)
			return -1;
	return 0;
}

/* One table row. The time is the wall clock of the whole round, so with
 * several threads it is the throughput the pool would see. */
static int
bench_scheme(enum auth_scheme s, const struct auth_scheme_opts *o,
    unsigned seconds, unsigned threads)
{
	struct bench_job jobs[PASSWD_BENCH_THREADS_MAX];
	const char *error;
	char cost[64], *stored;
	unsigned started = 0;
	uint64_t total = 0;
	bool failed = false;
	double start, took, cpu = 0;

	if (auth_scheme_hash(s, BENCH_PASSWORD, strlen(BENCH_PASSWORD), o,
		&stored, &error) == -1) {
		fprintf(stderr, "ringgate-passwd: %s: %s\n",
		    auth_scheme_name(s), error);
		return -1;
	}
	start = now_s();
	for (; started < threads; started++) {
		jobs[started] = (struct bench_job){ .stored = stored,
			.seconds = seconds };
		if (pthread_create(&jobs[started].tid, NULL, bench_thread,
			&jobs[started]) != 0) {
			failed = true;
			break;
		}
	}
	for (unsigned k = 0; k < started; k++) {
		pthread_join(jobs[k].tid, NULL);
		total += jobs[k].count;
		cpu += jobs[k].cpu;
		failed |= jobs[k].failed;
	}
	took = now_s() - start;
	free(stored);
	if (failed || total == 0) {
		fprintf(stderr,
		    "ringgate-passwd: %s: a thread failed to start or a "
		    "right password did not verify\n",
		    auth_scheme_name(s));
		return -1;
	}
	bench_cost(s, o, cost, sizeof(cost));
	printf("| %s | %s | %u | %llu | %.1f | %.1f | %.1f | %.2f |\n",
	    auth_scheme_name(s), cost, threads, (unsigned long long)total, took,
	    (double)total / took, 1000.0 * took * threads / (double)total,
	    1000.0 * cpu / (double)total);
	fflush(stdout);
	return 0;
}

static void *
bench_thread(void *arg)
{
	struct bench_job *j = arg;
	double end = now_s() + j->seconds, cpu0 = thread_cpu_s();
	const char *error;

	do {
		if (auth_scheme_verify(j->stored, BENCH_PASSWORD,
			strlen(BENCH_PASSWORD), NULL,
			&error) != AUTH_VERIFY_OK) {
			j->failed = true;
			break;
		}
		j->count++;
	} while (now_s() < end || j->count < BENCH_MIN_COUNT);
	j->cpu = thread_cpu_s() - cpu0;
	return NULL;
}

/* The cost each scheme gets by default, as the table shows it. */
static void
bench_cost(enum auth_scheme s, const struct auth_scheme_opts *o, char *buf,
    size_t cap)
{
	switch (s) {
	case AUTH_SCHEME_ARGON2ID:
		snprintf(buf, cap, "m=%u KiB, t=%u, p=%u", o->argon2_m_kib,
		    o->argon2_t, o->argon2_p);
		break;
	case AUTH_SCHEME_BLF_CRYPT:
		snprintf(buf, cap, "cost %u", o->bcrypt_cost);
		break;
	case AUTH_SCHEME_YESCRYPT:
		snprintf(buf, cap, "cost %u", o->yescrypt_cost);
		break;
	case AUTH_SCHEME_SCRAM_SHA_256:
		snprintf(buf, cap, "%u iterations", o->scram_iter);
		break;
	default:
		snprintf(buf, cap, "%u rounds", o->sha_rounds);
		break;
	}
}

/* CPU time of the calling thread: steadier than the wall clock on a box
 * whose cores are shared with other work. */
static double
thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
