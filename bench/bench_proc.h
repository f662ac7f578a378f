/*
 * bench_proc.h - what the load clients read off the machine: a monotonic
 * clock, and a process's CPU time, parent, name and RSS from /proc.
 *
 * Servers are measured from outside (the client shares the box with
 * them), so every figure comes from /proc/PID/stat or /proc/PID/status;
 * nothing here changes the measured process.
 */
#ifndef RG_BENCH_PROC_H
#define RG_BENCH_PROC_H

#include <stddef.h>

/* CLOCK_MONOTONIC in seconds. */
double bench_now_s(void);

/*
 * From /proc/PID/stat: self = utime + stime, children = cutime + cstime
 * (reaped children), both in seconds; the parent pid; the command name
 * (NUL-terminated, cut to commsz - 1 bytes); starttime in clock ticks.
 * Any output pointer may be NULL. 0, or -1 if the process is gone.
 */
int bench_proc_times(long pid, double *self, double *children, long *ppid,
    char *comm, size_t commsz, unsigned long long *start);

/* VmRSS of pid in KiB, or -1. */
long bench_proc_rss_kb(long pid);

#endif
