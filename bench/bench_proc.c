/*
 * bench_proc.c - clock and /proc readings for the load clients (see
 * bench_proc.h). The command name in /proc/PID/stat may hold spaces and
 * parentheses, so fields are parsed after the last ')'.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_proc.h"

double
bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fields of /proc/PID/stat: 4 ppid, 14 utime, 15 stime, 16 cutime,
 * 17 cstime, 22 starttime. */
int
bench_proc_times(long pid, double *self, double *children, long *ppid,
    char *comm, size_t commsz, unsigned long long *start)
{
	unsigned long ut, st;
	long cut, cst, pp;
	unsigned long long stt;
	char path[64], line[1024], *p, *q;
	double hz = (double)sysconf(_SC_CLK_TCK);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (p == NULL || (p = strrchr(line, ')')) == NULL ||
	    (q = strchr(line, '(')) == NULL)
		return -1;
	if (sscanf(p + 2,
		"%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld "
		"%*d %*d %*d %*d %llu",
		&pp, &ut, &st, &cut, &cst, &stt) != 6)
		return -1;
	if (self)
		*self = (double)(ut + st) / hz;
	if (children)
		*children = (double)(cut + cst) / hz;
	if (ppid)
		*ppid = pp;
	if (start)
		*start = stt;
	if (comm && commsz > 0) {
		size_t n = (size_t)(p - q - 1);

		if (n >= commsz)
			n = commsz - 1;
		memcpy(comm, q + 1, n);
		comm[n] = '\0';
	}
	return 0;
}

long
bench_proc_rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}
