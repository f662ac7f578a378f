/*
 * ringbench.c - load generator for ringgate (and its peers), built on the
 * same io_uring core so the client side is cheap enough to measure the
 * server side on a small box.
 *
 *   ringbench serve  -l ADDR [-m echo|sink|source] [-s BYTES]
 *       plain TCP upstream for relay benchmarks (source: send BYTES on
 *       connect then close; sink: read and discard; echo: send back)
 *   ringbench handshake -t ADDR [-c CONC] [-d SECS] [-p PID]
 *       full TLS handshakes, each connection closed after (resumed
 *       handshakes are measured with `openssl s_time -reuse`)
 *   ringbench idle -t ADDR -n N [-c CONC] [-d SECS] [-p PID]
 *       open N TLS sessions (CONC handshakes in flight, default 64),
 *       hold them idle, report the server's RSS
 *   ringbench bulk -t ADDR [-c CONC] [-p PID]
 *       read everything the server sends over TLS (against a relay whose
 *       upstream is `serve -m source`), report MB/s
 *
 * -p PID: the server process to account: its CPU time (utime+stime from
 * /proc/PID/stat) and RSS (VmRSS) before and after, so reports give the
 * server's own cost per operation, not just whole-box rates.
 * Targets must be loopback addresses: this tool refuses anything else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_proc.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/tls.h"

enum mode { M_SERVE, M_HANDSHAKE, M_IDLE, M_BULK };
enum serve_mode { S_ECHO, S_SINK, S_SOURCE };

/* The whole run's state: one loop, one thread. */
struct bench {
	enum mode mode;
	enum serve_mode smode;
	struct cfg_addr target;
	struct loop *loop;
	struct tls_client *tls;
	const char *alpn;
	unsigned conc, n;
	double secs;
	uint64_t bytes; /* serve source size */
	long pid;
	struct conn *last; /* idle mode: holds the report timer */
	bool holding;
	/* progress */
	uint64_t started_ms, deadline_ms;
	unsigned active, opened, done, failed, started;
	uint64_t rx;
	/* the server's counters at start */
	double cpu0;
	long rss0;
	char *chunk;
};

static struct bench B;

static double proc_cpu(long pid);
static void usage(void);
static int loopback_only(const struct cfg_addr *a);
static void start_one(void);
static void cl_open(struct conn *c);
static void cl_data(struct conn *c, const char *p, size_t n);
static void cl_close(struct conn *c, enum conn_reason why);
static void cl_timer(struct conn *c);
static void idle_check(void);
static void idle_report(void);
static void sv_open(struct conn *c);
static void sv_data(struct conn *c, const char *p, size_t n);
static void sv_drain(struct conn *c);
static void report(void);

static const struct conn_handler client_h = {
	.on_open = cl_open,
	.on_data = cl_data,
	.on_timer = cl_timer,
	.on_close = cl_close,
};

static const struct conn_handler server_h = {
	.on_open = sv_open,
	.on_data = sv_data,
	.on_drain = sv_drain,
};

static int
loopback_only(const struct cfg_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&a->ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127 ? 0 : -1;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&a->ss;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ? 0 : -1;
	}
	return -1;
}

/* ---- client side -------------------------------------------------- */

static void
start_one(void)
{
	struct conn *c;

	c = conn_connect(B.loop, (struct sockaddr *)&B.target.ss, B.target.len,
	    &client_h, NULL);
	if (c == NULL || conn_start_tls_client(c, B.tls, NULL) == -1) {
		B.failed++;
		if (c)
			conn_abort(c, CR_NOMEM);
		return;
	}
	B.active++;
	B.started++;
}

static void
cl_open(struct conn *c)
{
	B.opened++;
	if (B.mode == M_HANDSHAKE) {
		conn_close(c); /* close_notify, then the next one */
	} else if (B.mode == M_IDLE) {
		/* keep -c handshakes in flight, so the server's peak is its
		 * idle cost, not n simultaneous handshakes */
		B.last = c;
		if (B.started < B.n)
			start_one();
		idle_check();
	}
}

static void
cl_data(struct conn *c, const char *p, size_t n)
{
	B.rx += n;
}

/* Idle mode: once every session is up (or failed), hold for -d seconds
 * on one conn's timer, then report and stop. */
static void
idle_check(void)
{
	if (B.holding || B.opened + B.failed < B.n || B.last == NULL)
		return;
	B.holding = true;
	fprintf(stderr, "ringbench: %u sessions open, holding %.0f s\n",
	    B.opened, B.secs);
	conn_set_timer(B.last, (uint64_t)(B.secs * 1000));
}

static void
cl_timer(struct conn *c)
{
	if (B.mode == M_IDLE) {
		idle_report();
		loop_stop(B.loop, 0);
		return;
	}
	conn_abort(c, CR_TIMEOUT);
}

static void
cl_close(struct conn *c, enum conn_reason why)
{
	B.active--;
	if (c == B.last)
		B.last = NULL;
	if (why == CR_TLS || why == CR_CONNECT || why == CR_RESET ||
	    why == CR_TIMEOUT || (why == CR_EOF && B.mode != M_BULK))
		B.failed++;
	else
		B.done++;
	if (B.mode == M_HANDSHAKE && loop_now(B.loop) < B.deadline_ms)
		start_one();
	else if (B.mode == M_IDLE && !B.holding) {
		if (B.started < B.n)
			start_one();
		idle_check();
	} else if (B.active == 0)
		loop_stop(B.loop, 0);
}

/* ---- server side (plain upstream) --------------------------------- */

static void
source_fill(struct conn *c)
{
	uint64_t *left = conn_ctx(c);

	while (*left > 0 && !conn_out_full(c)) {
		size_t n = *left > 65536 ? 65536 : (size_t)*left;

		conn_write(c, B.chunk, n);
		*left -= n;
	}
	if (*left == 0) {
		free(left);
		conn_set_ctx(c, NULL);
		conn_close(c);
	}
}

static void
sv_open(struct conn *c)
{
	uint64_t *left;

	if (B.smode != S_SOURCE)
		return;
	if ((left = malloc(sizeof(*left))) == NULL) {
		conn_abort(c, CR_NOMEM);
		return;
	}
	*left = B.bytes;
	conn_set_ctx(c, left);
	source_fill(c);
}

static void
sv_data(struct conn *c, const char *p, size_t n)
{
	if (B.smode == S_ECHO) {
		conn_write(c, p, n);
		if (conn_out_full(c))
			conn_pause(c);
	}
}

static void
sv_drain(struct conn *c)
{
	if (B.smode == S_SOURCE && conn_ctx(c))
		source_fill(c);
	else
		conn_resume(c);
}

/* ---- reports ------------------------------------------------------ */

static void
report(void)
{
	double secs = bench_now_s() - (double)B.started_ms / 1000.0;
	struct rusage ru;
	double self;

	getrusage(RUSAGE_SELF, &ru);
	self = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("mode=%s seconds=%.2f ok=%u failed=%u client_cpu=%.2f",
	    B.mode == M_HANDSHAKE ? "handshake" :
		B.mode == M_IDLE  ? "idle" :
				    "bulk",
	    secs, B.done, B.failed, self);
	if (B.mode == M_HANDSHAKE)
		printf(" handshakes_per_s=%.0f", B.done / secs);
	if (B.mode == M_BULK)
		printf(" bytes=%llu mb_per_s=%.1f", (unsigned long long)B.rx,
		    (double)B.rx / secs / 1e6);
	if (B.pid > 0) {
		double cpu = proc_cpu(B.pid) - B.cpu0;

		printf(" server_cpu=%.2f", cpu);
		if (B.mode == M_HANDSHAKE && B.done)
			printf(" server_us_per_handshake=%.0f",
			    cpu * 1e6 / B.done);
		if (B.mode == M_BULK && B.rx)
			printf(" server_cpu_s_per_gb=%.2f",
			    cpu / ((double)B.rx / 1e9));
	}
	printf("\n");
}

static void
idle_report(void)
{
	long rss = bench_proc_rss_kb(B.pid);

	printf("mode=idle sessions=%u failed=%u server_rss_before_kb=%ld "
	       "server_rss_after_kb=%ld bytes_per_session=%.0f\n",
	    B.opened, B.failed, B.rss0, rss,
	    B.opened ? (double)(rss - B.rss0) * 1024.0 / B.opened : 0.0);
}

/* utime + stime of pid in seconds, or -1. */
static double
proc_cpu(long pid)
{
	double cpu;

	return bench_proc_times(pid, &cpu, NULL, NULL, NULL, 0, NULL) == 0 ?
	    cpu :
	    -1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: ringbench serve -l ADDR [-m echo|sink|source] [-s BYTES]\n"
	    "       ringbench handshake -t ADDR [-c CONC] [-d SECS] "
	    "[--resume] [-a ALPN] [-p PID]\n"
	    "       ringbench idle -t ADDR -n N [-d SECS] [-p PID]\n"
	    "       ringbench bulk -t ADDR [-c CONC] [-p PID]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct loop_conf lc = { .buf_count = 4096,
		.buf_size = 16384,
		.out_high = 1 << 20 };
	struct tls_client_conf tcc = { 0 };
	const char *err = NULL, *cmd;
	struct cfg_addr listen_addr;
	int ch, fd;

	if (argc < 2)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "serve") == 0)
		B.mode = M_SERVE;
	else if (strcmp(cmd, "handshake") == 0)
		B.mode = M_HANDSHAKE;
	else if (strcmp(cmd, "idle") == 0)
		B.mode = M_IDLE;
	else if (strcmp(cmd, "bulk") == 0)
		B.mode = M_BULK;
	else
		usage();
	B.conc = 1;
	B.secs = 5;
	B.bytes = 1 << 30;
	memset(&listen_addr, 0, sizeof(listen_addr));
	optind = 2;
	while ((ch = getopt(argc, argv, "l:m:s:t:c:d:n:p:a:")) != -1) {
		switch (ch) {
		case 'l':
			if (cfg_parse_addr(optarg, &listen_addr) == -1)
				usage();
			break;
		case 'm':
			B.smode = strcmp(optarg, "sink") == 0 ? S_SINK :
			    strcmp(optarg, "source") == 0     ? S_SOURCE :
								S_ECHO;
			break;
		case 's':
			if (cfg_parse_size(optarg, &B.bytes) == -1)
				usage();
			break;
		case 't':
			if (cfg_parse_addr(optarg, &B.target) == -1)
				usage();
			break;
		case 'c':
			B.conc = (unsigned)atoi(optarg);
			break;
		case 'd':
			B.secs = atof(optarg);
			break;
		case 'n':
			B.n = (unsigned)atoi(optarg);
			break;
		case 'p':
			B.pid = atol(optarg);
			break;
		case 'a':
			B.alpn = optarg;
			break;
		default:
			usage();
		}
	}
	log_init("ringbench", LL_WARN, 2);
	if ((B.loop = loop_new(&lc, &err)) == NULL) {
		fprintf(stderr, "ringbench: %s\n", err);
		return 1;
	}
	if (B.mode == M_SERVE) {
		if (listen_addr.len == 0 || loopback_only(&listen_addr) == -1)
			usage();
		if ((B.chunk = calloc(1, 65536)) == NULL ||
		    (fd = daemon_listen(&listen_addr, false, &err)) == -1) {
			fprintf(stderr, "ringbench: %s\n", err ? err : "oom");
			return 1;
		}
		loop_listen(B.loop, fd, "serve", &server_h, NULL);
		return loop_run(B.loop) == 0 ? 0 : 1;
	}
	if (B.target.len == 0 || loopback_only(&B.target) == -1) {
		fprintf(stderr, "ringbench: -t must be a loopback address\n");
		return 2;
	}
	tcc.verify = false;
	tcc.alpn = B.alpn;
	if ((B.tls = tls_client_new(&tcc, &err)) == NULL) {
		fprintf(stderr, "ringbench: %s\n", err);
		return 1;
	}
	if (B.pid > 0) {
		B.cpu0 = proc_cpu(B.pid);
		B.rss0 = bench_proc_rss_kb(B.pid);
	}
	B.deadline_ms = loop_now(B.loop) + (uint64_t)(B.secs * 1000);
	B.started_ms = (uint64_t)(bench_now_s() * 1000);
	if (B.mode == M_IDLE && B.conc == 1)
		B.conc = 64;
	for (unsigned i = 0; i < B.conc && (B.mode != M_IDLE || i < B.n); i++)
		start_one();
	loop_run(B.loop);
	if (B.mode != M_IDLE)
		report();
	return 0;
}
