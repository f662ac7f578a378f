/*
 * imap_bench.c - ringbench-imap, an IMAP load client for comparing IMAP
 * stores (ringstore, Dovecot) and for logins per second, on loopback.
 *
 *   ringbench-imap select -t ADDR -u USER -w PASS [-n RUNS] [ACCT...]
 *       LOGIN, then SELECT INBOX once (cold: the first open since the
 *       server started) and RUNS more times (warm)
 *   ringbench-imap fetch  ... the same, then RUNS times each
 *       FETCH 1:* (FLAGS UID RFC822.SIZE) and FETCH 1:* ENVELOPE
 *   ringbench-imap body   -t ADDR -u USER -w PASS [-n RUNS] [-m BOX]
 *       LOGIN, SELECT BOX, one untimed FETCH 1 BODY.PEEK[] (page cache,
 *       the server's own caches), then RUNS timed ones: prints MB/s of
 *       the median run (mb_per_s) besides the usual step figures
 *   ringbench-imap append -t ADDR -u USER -w PASS [-n COUNT] [-m BOX]
 *       COUNT APPENDs (synchronizing literals) of generated 2-6 KiB
 *       messages into BOX (created first if missing), one connection
 *   ringbench-imap login  -t ADDR -u USER -w PASS [-c CONC] [-d SECS] [-T]
 *       [-b SRC]
 *       CONC threads, each looping connect, greeting, LOGIN, LOGOUT,
 *       close for SECS seconds; -T speaks TLS (no verification, ALPN imap);
 *       -b binds each connection to SRC (127.0.0.0/8: one box plays many
 *       clients); with a wrong -w every cycle is a failed login (an
 *       attacker), counted in failed=
 *   ringbench-imap idle   -t ADDR -u USER -w PASS -n N [-c CONC] [-d SECS]
 *       [-T]  open N sessions (CONC threads opening them), each LOGIN and
 *       IDLE, hold them SECS seconds, close them all; prints the accounted
 *       processes' RSS before, while held (KiB per session) and 5 s after
 *       the close (-D sums RSS over the process tree)
 *
 * Server CPU accounting (ACCT, repeatable, NAME defaults to "server"):
 *   -p [NAME=]PID   utime+stime of one process (all its threads)
 *   -I [NAME=]PID   the newest child named "imap" of PID (a Dovecot
 *                   master), looked up right after LOGIN: the process
 *                   that serves this connection
 *   -D [NAME=]PID   PID and all its descendants: their utime+stime plus
 *                   cutime+cstime (children already reaped), so processes
 *                   that start and end inside a measured step count too
 * Every figure is printed as key=value on one line per step.
 *
 * Blocking sockets and threads: the client is simple on purpose, and its
 * own CPU is reported so a reader can see how much of the box it took.
 * Responses are read completely, {n} literals included; lines are bounded
 * (1 MiB) and every socket has a 15 s timeout, so a stuck server ends the
 * run instead of hanging it. Targets must be loopback addresses.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench/bench_proc.h"

#define LINE_MAX_BYTES (1 << 20)
#define IO_TIMEOUT_S 15
#define MAX_ACCTS 8
#define LAT_MAX 100000 /* latencies kept per login thread */

enum mode { M_SELECT, M_FETCH, M_BODY, M_APPEND, M_LOGIN, M_IDLE };
enum acct_kind { A_PROC, A_IMAP_CHILD, A_TREE };

/* One server whose CPU time is reported. */
struct acct {
	enum acct_kind kind;
	char name[32];
	long pid;  /* as given */
	long live; /* A_IMAP_CHILD: the resolved imap process */
	double cpu0;
};

/* A connection: a socket, optionally TLS, and a read buffer. */
struct io {
	int fd;
	SSL *ssl;
	char buf[65536];
	size_t off, len;
	uint64_t rx;
	char *line; /* the current line, NUL-terminated, CRLF kept */
	size_t line_len, line_cap;
};

/* The outcome of one command. */
struct resp {
	char status[8];	  /* OK, NO, BAD, or "" on I/O failure */
	unsigned fetches; /* untagged "* n FETCH" lines */
	unsigned exists;
	uint64_t bytes;
};

struct opts {
	enum mode mode;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct sockaddr_in src; /* -b: the source address (port 0) */
	bool bind_src;
	const char *user, *pass, *mailbox;
	unsigned runs, count, conc;
	double secs;
	bool tls;
	struct acct acct[MAX_ACCTS];
	unsigned nacct;
};

/* Per login thread. */
struct worker {
	pthread_t th;
	unsigned ok, failed;
	double *lat; /* whole cycle, seconds */
	unsigned nlat;
};

static struct opts O;
static SSL_CTX *tls_ctx;
static double deadline;

static int cmp_double(const void *a, const void *b);
static double median(double *v, unsigned n);
static void usage(void);

static double acct_cpu(struct acct *a);
static int acct_add(enum acct_kind kind, const char *arg);
static void acct_begin(void);
static long newest_imap_child(long master);
static void acct_resolve(void);
static void acct_print(const char *unit, double per);

static int parse_target(const char *arg);
static int io_connect(struct io *io);
static void io_close(struct io *io);
static int io_fill(struct io *io);
static int io_write(struct io *io, const char *p, size_t n);
static int io_line(struct io *io);
static int io_skip(struct io *io, uint64_t n);
static int literal_size(const char *line, size_t len, uint64_t *n);
static int read_resp(struct io *io, const char *tag, struct resp *r);
static int command(struct io *io, const char *tag, const char *text,
    struct resp *r);
static int login(struct io *io);
static int open_session(struct io *io);

static int run_steps(void);
static int run_body(void);
static int step(struct io *io, const char *name, const char *text,
    unsigned runs);
static int run_append(void);
static size_t make_message(char *buf, size_t cap, unsigned i);
static int run_login(void);
static void *login_thread(void *arg);
static int login_once(struct io *io);
static int run_idle(void);

/* ---- small helpers ------------------------------------------------ */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v in place. */
static double
median(double *v, unsigned n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double
self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- server CPU from /proc ---------------------------------------- */

/*
 * The tree's CPU: every process whose ancestry reaches root counts its
 * own time and its reaped children's. A child that exits moves its time
 * from its own entry into its parent's cutime, so differences between two
 * readings stay right across exits (a zombie still shows its own times).
 */
static double
tree_cpu(long root)
{
	static long pids[65536], parents[65536];
	unsigned n = 0;
	double sum = 0;
	struct dirent *de;
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && n < 65536) {
		long pid = strtol(de->d_name, NULL, 10), pp;

		if (pid <= 0 ||
		    bench_proc_times(pid, NULL, NULL, &pp, NULL, 0, NULL) == -1)
			continue;
		pids[n] = pid;
		parents[n++] = pp;
	}
	closedir(d);
	for (unsigned i = 0; i < n; i++) {
		long p = pids[i];
		double s, c;

		/* walk up at most 16 levels looking for root */
		for (int depth = 0; depth < 16 && p > 1 && p != root; depth++) {
			unsigned j;

			for (j = 0; j < n && pids[j] != p; j++)
				;
			p = j < n ? parents[j] : 0;
		}
		if (p != root)
			continue;
		if (bench_proc_times(pids[i], &s, &c, NULL, NULL, 0, NULL) == 0)
			sum += s + c;
	}
	return sum;
}

static double
acct_cpu(struct acct *a)
{
	double s;

	switch (a->kind) {
	case A_PROC:
		return bench_proc_times(a->pid, &s, NULL, NULL, NULL, 0,
			   NULL) == 0 ?
		    s :
		    -1;
	case A_IMAP_CHILD:
		if (a->live <= 0)
			return -1;
		return bench_proc_times(a->live, &s, NULL, NULL, NULL, 0,
			   NULL) == 0 ?
		    s :
		    -1;
	case A_TREE:
		return tree_cpu(a->pid);
	}
	return -1;
}

static int
acct_add(enum acct_kind kind, const char *arg)
{
	struct acct *a;
	const char *eq = strchr(arg, '=');

	if (O.nacct == MAX_ACCTS)
		return -1;
	a = &O.acct[O.nacct++];
	a->kind = kind;
	snprintf(a->name, sizeof(a->name), "%.*s", eq ? (int)(eq - arg) : 6,
	    eq ? arg : "server");
	a->pid = atol(eq ? eq + 1 : arg);
	return a->pid > 0 ? 0 : -1;
}

static void
acct_begin(void)
{
	for (unsigned i = 0; i < O.nacct; i++)
		O.acct[i].cpu0 = acct_cpu(&O.acct[i]);
}

/* The newest (latest start time) child of master whose name is "imap". */
static long
newest_imap_child(long master)
{
	unsigned long long best = 0, st;
	long found = -1, pp;
	struct dirent *de;
	char comm[64];
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		long pid = strtol(de->d_name, NULL, 10);

		if (pid <= 0 ||
		    bench_proc_times(pid, NULL, NULL, &pp, comm, sizeof(comm),
			&st) == -1)
			continue;
		if (pp == master && strcmp(comm, "imap") == 0 && st >= best) {
			best = st;
			found = pid;
		}
	}
	closedir(d);
	return found;
}

static void
acct_resolve(void)
{
	for (unsigned i = 0; i < O.nacct; i++) {
		struct acct *a = &O.acct[i];

		if (a->kind != A_IMAP_CHILD)
			continue;
		a->live = newest_imap_child(a->pid);
		if (a->live > 0)
			printf("# %s: imap process %ld\n", a->name, a->live);
		else
			fprintf(stderr,
			    "ringbench-imap: no imap child of "
			    "%ld\n",
			    a->pid);
	}
}

/* " cpu_NAME_ms=total cpu_NAME_UNIT=total/per" for every account. */
static void
acct_print(const char *unit, double per)
{
	for (unsigned i = 0; i < O.nacct; i++) {
		struct acct *a = &O.acct[i];
		double c = acct_cpu(a);

		if (c < 0 || a->cpu0 < 0) {
			printf(" cpu_%s_ms=?", a->name);
			continue;
		}
		c -= a->cpu0;
		printf(" cpu_%s_ms=%.0f", a->name, c * 1e3);
		if (unit && per > 0)
			printf(" cpu_%s_%s=%.3f", a->name, unit, c * 1e3 / per);
	}
}

/* ---- connections -------------------------------------------------- */

/* "127.0.0.1:143" or "[::1]:143"; loopback only. */
static int
parse_target(const char *arg)
{
	char host[64];
	const char *colon = strrchr(arg, ':');
	long port;

	if (colon == NULL || (size_t)(colon - arg) >= sizeof(host))
		return -1;
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -1;
	if (arg[0] == '[') {
		struct sockaddr_in6 *in6 = (void *)&O.ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - arg - 2),
		    arg + 1);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return -1;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		O.sslen = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (void *)&O.ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - arg), arg);
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1 ||
		    (ntohl(in->sin_addr.s_addr) >> 24) != 127)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		O.sslen = sizeof(*in);
	}
	return 0;
}

static int
io_connect(struct io *io)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int one = 1;

	io->off = io->len = 0;
	io->ssl = NULL;
	io->fd = socket(O.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (io->fd == -1)
		return -1;
	setsockopt(io->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(io->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(io->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (O.bind_src &&
	    bind(io->fd, (struct sockaddr *)&O.src, sizeof(O.src)) == -1)
		goto fail;
	if (connect(io->fd, (struct sockaddr *)&O.ss, O.sslen) == -1)
		goto fail;
	if (!O.tls)
		return 0;
	if ((io->ssl = SSL_new(tls_ctx)) == NULL ||
	    SSL_set_fd(io->ssl, io->fd) != 1 || SSL_connect(io->ssl) != 1)
		goto fail;
	return 0;
fail:
	io_close(io);
	return -1;
}

static void
io_close(struct io *io)
{
	if (io->ssl) {
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
	if (io->fd != -1)
		close(io->fd);
	io->fd = -1;
	ERR_clear_error();
}

/* Reads more into the buffer; 0, or -1 on EOF, error or timeout. */
static int
io_fill(struct io *io)
{
	ssize_t n;

	if (io->off == io->len)
		io->off = io->len = 0;
	if (io->len == sizeof(io->buf)) {
		memmove(io->buf, io->buf + io->off, io->len - io->off);
		io->len -= io->off;
		io->off = 0;
	}
	if (io->ssl) {
		int r = SSL_read(io->ssl, io->buf + io->len,
		    (int)(sizeof(io->buf) - io->len));

		n = r > 0 ? r : -1;
	} else {
		do {
			n = recv(io->fd, io->buf + io->len,
			    sizeof(io->buf) - io->len, 0);
		} while (n == -1 && errno == EINTR);
	}
	if (n <= 0)
		return -1;
	io->len += (size_t)n;
	io->rx += (uint64_t)n;
	return 0;
}

static int
io_write(struct io *io, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;

		if (io->ssl) {
			int r = SSL_write(io->ssl, p, (int)n);

			w = r > 0 ? r : -1;
		} else {
			w = send(io->fd, p, n, MSG_NOSIGNAL);
			if (w == -1 && errno == EINTR)
				continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one line (up to and including LF) into io->line. */
static int
io_line(struct io *io)
{
	io->line_len = 0;
	for (;;) {
		char *lf = memchr(io->buf + io->off, '\n', io->len - io->off);
		size_t n = lf ? (size_t)(lf - (io->buf + io->off)) + 1 :
				io->len - io->off;

		if (io->line_len + n + 1 > io->line_cap) {
			size_t cap = io->line_cap ? io->line_cap * 2 : 4096;
			char *p;

			while (cap < io->line_len + n + 1)
				cap *= 2;
			if (cap > LINE_MAX_BYTES ||
			    (p = realloc(io->line, cap)) == NULL)
				return -1;
			io->line = p;
			io->line_cap = cap;
		}
		memcpy(io->line + io->line_len, io->buf + io->off, n);
		io->line_len += n;
		io->off += n;
		if (lf) {
			io->line[io->line_len] = '\0';
			return 0;
		}
		if (io_fill(io) == -1)
			return -1;
	}
}

/* Consumes n bytes of a literal without keeping them. */
static int
io_skip(struct io *io, uint64_t n)
{
	while (n > 0) {
		size_t have = io->len - io->off;

		if (have == 0) {
			if (io_fill(io) == -1)
				return -1;
			continue;
		}
		if (have > n)
			have = (size_t)n;
		io->off += have;
		n -= have;
	}
	return 0;
}

/* Does the line end in "{n}\r\n" (or "{n+}")? 1 with *n set, else 0. */
static int
literal_size(const char *line, size_t len, uint64_t *n)
{
	size_t i;

	if (len < 4 || line[len - 1] != '\n')
		return 0;
	len -= line[len - 2] == '\r' ? 2 : 1;
	if (line[len - 1] != '}')
		return 0;
	i = len - 1;
	if (i > 0 && line[i - 1] == '+')
		i--;
	*n = 0;
	for (size_t d = 0; i > 0 && isdigit((unsigned char)line[i - 1]);
	     i--, d++) {
		if (d >= 12)
			return 0;
	}
	if (i == 0 || line[i - 1] != '{')
		return 0;
	*n = strtoull(line + i, NULL, 10);
	return 1;
}

/*
 * Reads untagged and continuation lines until the tagged answer for tag.
 * A logical line may be split by literals: the text after a literal is
 * read as the next physical line but is never taken as a new response.
 */
static int
read_resp(struct io *io, const char *tag, struct resp *r)
{
	size_t taglen = strlen(tag);
	uint64_t rx0 = io->rx - (io->len - io->off), lit;
	bool start = true;

	memset(r, 0, sizeof(*r));
	for (;;) {
		if (io_line(io) == -1)
			return -1;
		if (start && strncmp(io->line, tag, taglen) == 0 &&
		    io->line[taglen] == ' ') {
			snprintf(r->status, sizeof(r->status), "%.*s",
			    (int)strcspn(io->line + taglen + 1, " \r\n"),
			    io->line + taglen + 1);
			r->bytes = io->rx - (io->len - io->off) - rx0;
			return 0;
		}
		if (start && io->line[0] == '*') {
			const char *sp = strchr(io->line + 2, ' ');

			if (sp && strncmp(sp, " FETCH ", 7) == 0)
				r->fetches++;
			else if (sp && strncmp(sp, " EXISTS", 7) == 0)
				r->exists = (unsigned)atol(io->line + 2);
		}
		if (literal_size(io->line, io->line_len, &lit)) {
			if (io_skip(io, lit) == -1)
				return -1;
			start = false;
		} else {
			start = true;
		}
	}
}

static int
command(struct io *io, const char *tag, const char *text, struct resp *r)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s %s\r\n", tag, text);

	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    io_write(io, buf, (size_t)n) == -1)
		return -1;
	return read_resp(io, tag, r);
}

/* Appends s as an IMAP quoted string. */
static void
quote(char *dst, size_t cap, const char *s)
{
	size_t o = 0;

	dst[o++] = '"';
	for (; *s && o + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			dst[o++] = '\\';
		dst[o++] = *s;
	}
	dst[o++] = '"';
	dst[o] = '\0';
}

/* Greeting, then LOGIN; 0 when the server said OK. */
static int
login(struct io *io)
{
	char u[300], p[300], text[620];
	struct resp r;

	if (io_line(io) == -1 || strncmp(io->line, "* OK", 4) != 0)
		return -1;
	quote(u, sizeof(u), O.user);
	quote(p, sizeof(p), O.pass);
	snprintf(text, sizeof(text), "LOGIN %s %s", u, p);
	if (command(io, "a", text, &r) == -1 || strcmp(r.status, "OK") != 0)
		return -1;
	return 0;
}

/* Connect and LOGIN, then find the server processes to account. */
static int
open_session(struct io *io)
{
	if (io_connect(io) == -1 || login(io) == -1) {
		fprintf(stderr, "ringbench-imap: connect or LOGIN failed\n");
		return -1;
	}
	acct_resolve();
	return 0;
}

/* ---- select / fetch ----------------------------------------------- */

/*
 * Runs text runs times; prints the first and median wall time, the bytes
 * of one response, and the servers' CPU per run.
 */
static int
step(struct io *io, const char *name, const char *text, unsigned runs)
{
	double *t = calloc(runs, sizeof(double)), first = 0;
	uint64_t bytes = 0;
	unsigned fetches = 0, exists = 0;
	struct resp r;
	char tag[16];

	if (t == NULL)
		return -1;
	acct_begin();
	for (unsigned i = 0; i < runs; i++) {
		double t0 = bench_now_s();

		snprintf(tag, sizeof(tag), "s%u", i);
		if (command(io, tag, text, &r) == -1 ||
		    strcmp(r.status, "OK") != 0) {
			fprintf(stderr, "ringbench-imap: %s: %s\n", name,
			    r.status[0] ? r.status : "connection lost");
			free(t);
			return -1;
		}
		t[i] = bench_now_s() - t0;
		if (i == 0) {
			first = t[0];
			bytes = r.bytes;
			fetches = r.fetches;
			exists = r.exists;
		}
	}
	printf("step=%s runs=%u first_ms=%.2f median_ms=%.2f bytes=%llu", name,
	    runs, first * 1e3, median(t, runs) * 1e3,
	    (unsigned long long)bytes);
	if (O.mode == M_BODY)
		printf(" mb_per_s=%.1f", (double)bytes / median(t, runs) / 1e6);
	if (fetches)
		printf(" fetch_lines=%u", fetches);
	if (exists)
		printf(" exists=%u", exists);
	acct_print("ms_per_run", runs);
	printf("\n");
	fflush(stdout);
	free(t);
	return 0;
}

static int
run_steps(void)
{
	struct io io = { .fd = -1 };
	int rc = -1;

	if (open_session(&io) == -1)
		goto out;
	if (step(&io, "select_cold", "SELECT INBOX", 1) == -1 ||
	    step(&io, "select_warm", "SELECT INBOX", O.runs) == -1)
		goto out;
	if (O.mode == M_FETCH &&
	    (step(&io, "fetch_flags", "FETCH 1:* (FLAGS UID RFC822.SIZE)",
		 O.runs) == -1 ||
		step(&io, "fetch_envelope", "FETCH 1:* ENVELOPE", O.runs) ==
		    -1))
		goto out;
	rc = 0;
out:
	if (io.fd != -1) {
		struct resp r;

		(void)command(&io, "z", "LOGOUT", &r);
	}
	io_close(&io);
	free(io.line);
	printf("client_cpu_s=%.2f\n", self_cpu());
	return rc;
}

/* One large message, fetched whole again and again: streaming rate and
 * the server's CPU per byte. */
static int
run_body(void)
{
	struct io io = { .fd = -1 };
	char box[300], text[320];
	struct resp r;
	int rc = -1;

	if (open_session(&io) == -1)
		goto out;
	quote(box, sizeof(box), O.mailbox);
	snprintf(text, sizeof(text), "SELECT %s", box);
	if (command(&io, "b", text, &r) == -1 || strcmp(r.status, "OK") != 0 ||
	    r.exists == 0 ||
	    command(&io, "w", "FETCH 1 BODY.PEEK[]", &r) == -1 ||
	    strcmp(r.status, "OK") != 0) {
		fprintf(stderr,
		    "ringbench-imap: SELECT %s or the first FETCH "
		    "failed\n",
		    O.mailbox);
		goto out;
	}
	if (step(&io, "fetch_body", "FETCH 1 BODY.PEEK[]", O.runs) == -1)
		goto out;
	rc = 0;
out:
	if (io.fd != -1) {
		(void)command(&io, "z", "LOGOUT", &r);
	}
	io_close(&io);
	free(io.line);
	printf("client_cpu_s=%.2f\n", self_cpu());
	return rc;
}

/* ---- append ------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Message i: ordinary headers and a plain text body of 2-6 KiB, CRLF. */
static size_t
make_message(char *buf, size_t cap, unsigned i)
{
	static const char *const words[] = { "the", "quarterly", "report",
		"meeting", "invoice", "server", "please", "review", "attached",
		"deadline", "thanks", "regards", "update", "project", "mail",
		"tomorrow", "budget", "ticket", "release", "notes" };
	size_t target = 2048 + (size_t)(rng() % 4096), o;
	unsigned col = 0;

	o = (size_t)snprintf(buf, cap,
	    "Return-Path: <sender%u@example.org>\r\n"
	    "From: Sender %u <sender%u@example.org>\r\n"
	    "To: Bench User <bench@example.test>\r\n"
	    "Subject: Appended message %u about the %s\r\n"
	    "Date: Mon, 23 Nov 2026 12:%02u:%02u +0000\r\n"
	    "Message-ID: <append.%u.%llx@example.org>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n",
	    i % 97, i % 97, i % 97, i, words[i % 20], i / 60 % 60, i % 60, i,
	    (unsigned long long)rng());
	while (o < target && o + 32 < cap) {
		const char *w = words[rng() % 20];
		size_t n = strlen(w);

		if (col + n > 72) {
			memcpy(buf + o, "\r\n", 2);
			o += 2;
			col = 0;
		}
		memcpy(buf + o, w, n);
		buf[o + n] = ' ';
		o += n + 1;
		col += (unsigned)n + 1;
	}
	memcpy(buf + o, "\r\n", 2);
	return o + 2;
}

static int
run_append(void)
{
	static char msg[8192];
	char text[300], box[200], tag[16];
	struct io io = { .fd = -1 };
	double t0, secs;
	unsigned done = 0;
	struct resp r;
	int rc = -1;

	if (open_session(&io) == -1)
		goto out;
	quote(box, sizeof(box), O.mailbox);
	snprintf(text, sizeof(text), "CREATE %s", box);
	(void)command(&io, "c", text, &r); /* NO when it exists: fine */
	acct_begin();
	t0 = bench_now_s();
	for (; done < O.count; done++) {
		size_t n = make_message(msg, sizeof(msg), done);
		int len;

		snprintf(tag, sizeof(tag), "p%u", done);
		len = snprintf(text, sizeof(text),
		    "%s APPEND %s (\\Seen) {%zu}"
		    "\r\n",
		    tag, box, n);
		if (io_write(&io, text, (size_t)len) == -1 ||
		    io_line(&io) == -1 || io.line[0] != '+')
			break;
		if (io_write(&io, msg, n) == -1 ||
		    io_write(&io, "\r\n", 2) == -1 ||
		    read_resp(&io, tag, &r) == -1 ||
		    strcmp(r.status, "OK") != 0)
			break;
	}
	secs = bench_now_s() - t0;
	printf("step=append mailbox=%s appends=%u failed=%u seconds=%.2f "
	       "appends_per_s=%.1f",
	    O.mailbox, done, O.count - done, secs, done / secs);
	acct_print("ms_per_append", done);
	printf("\n");
	rc = done == O.count ? 0 : -1;
out:
	if (io.fd != -1)
		(void)command(&io, "z", "LOGOUT", &r);
	io_close(&io);
	free(io.line);
	printf("client_cpu_s=%.2f\n", self_cpu());
	return rc;
}

/* ---- login -------------------------------------------------------- */

/* One full cycle: connect, greeting, LOGIN, LOGOUT, close. */
static int
login_once(struct io *io)
{
	struct resp r;
	int rc = -1;

	if (io_connect(io) == -1)
		return -1;
	if (login(io) == 0 && command(io, "b", "LOGOUT", &r) == 0 &&
	    strcmp(r.status, "OK") == 0)
		rc = 0;
	if (io->ssl)
		SSL_shutdown(io->ssl);
	io_close(io);
	return rc;
}

static void *
login_thread(void *arg)
{
	struct worker *w = arg;
	struct io *io = calloc(1, sizeof(*io));
	double t0;

	if (io == NULL)
		return NULL;
	io->fd = -1;
	while ((t0 = bench_now_s()) < deadline) {
		if (login_once(io) == 0) {
			w->ok++;
			if (w->nlat < LAT_MAX)
				w->lat[w->nlat++] = bench_now_s() - t0;
		} else {
			w->failed++;
			usleep(10000); /* a refusing server is not a spin */
		}
	}
	free(io->line);
	free(io);
	return NULL;
}

static int
run_login(void)
{
	struct worker *w = calloc(O.conc, sizeof(*w));
	unsigned ok = 0, failed = 0, nlat = 0;
	double t0, secs, *lat;

	if (w == NULL ||
	    (lat = calloc((size_t)O.conc * LAT_MAX, sizeof(double))) == NULL)
		return -1;
	acct_begin();
	t0 = bench_now_s();
	deadline = t0 + O.secs;
	for (unsigned i = 0; i < O.conc; i++) {
		w[i].lat = lat + (size_t)i * LAT_MAX;
		if (pthread_create(&w[i].th, NULL, login_thread, &w[i]) != 0)
			return -1;
	}
	for (unsigned i = 0; i < O.conc; i++) {
		pthread_join(w[i].th, NULL);
		ok += w[i].ok;
		failed += w[i].failed;
		memmove(lat + nlat, w[i].lat, w[i].nlat * sizeof(double));
		nlat += w[i].nlat;
	}
	secs = bench_now_s() - t0;
	printf("step=login tls=%s conc=%u seconds=%.2f logins=%u failed=%u "
	       "logins_per_s=%.1f median_ms=%.2f",
	    O.tls ? "yes" : "no", O.conc, secs, ok, failed, ok / secs,
	    median(lat, nlat) * 1e3);
	if (nlat)
		printf(" p99_ms=%.2f", lat[(size_t)(nlat * 0.99)] * 1e3);
	acct_print("ms_per_login", ok);
	printf(" client_cpu_s=%.2f\n", self_cpu());
	free(lat);
	free(w);
	return ok > 0 ? 0 : -1;
}

/* ---- idle sessions ------------------------------------------------ */

/* A held session: only its socket and TLS state, so the client's own
 * memory stays small next to the servers'. */
struct held {
	int fd;
	SSL *ssl;
};

struct idle_worker {
	pthread_t th;
	struct held *h;
	unsigned want, ok, failed;
};

/* RSS of root and every process below it, KiB. */
static long
tree_rss(long root)
{
	long sum = 0, pp;
	struct dirent *de;
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		long pid = strtol(de->d_name, NULL, 10), kb;

		if (pid <= 0 ||
		    bench_proc_times(pid, NULL, NULL, &pp, NULL, 0, NULL) == -1)
			continue;
		if ((pid == root || pp == root) &&
		    (kb = bench_proc_rss_kb(pid)) > 0)
			sum += kb;
	}
	closedir(d);
	return sum;
}

static long
acct_rss(const struct acct *a)
{
	return a->kind == A_TREE ? tree_rss(a->pid) : bench_proc_rss_kb(a->pid);
}

static void
rss_print(const char *what, const long *base, unsigned n)
{
	for (unsigned i = 0; i < O.nacct; i++) {
		long kb = acct_rss(&O.acct[i]);

		printf(" rss_%s_%s_kb=%ld", O.acct[i].name, what, kb);
		if (base != NULL && n > 0 && kb > 0)
			printf(" kb_per_session_%s=%.1f", O.acct[i].name,
			    (double)(kb - base[i]) / n);
	}
}

/* connect, LOGIN, IDLE and wait for its continuation */
static int
idle_open(struct io *io)
{
	if (io_connect(io) == -1)
		return -1;
	if (login(io) == 0 && io_write(io, "i IDLE\r\n", 8) == 0 &&
	    io_line(io) == 0 && io->line[0] == '+')
		return 0;
	io_close(io);
	return -1;
}

static void *
idle_thread(void *arg)
{
	struct idle_worker *w = arg;
	struct io *io = calloc(1, sizeof(*io));

	if (io == NULL)
		return NULL;
	for (unsigned i = 0; i < w->want; i++) {
		io->fd = -1;
		if (idle_open(io) == -1) {
			w->failed++;
			continue;
		}
		w->h[w->ok].fd = io->fd;
		w->h[w->ok++].ssl = io->ssl;
	}
	free(io->line);
	free(io);
	return NULL;
}

static int
run_idle(void)
{
	unsigned n = O.count, conc = O.conc < n ? O.conc : n, ok = 0,
		 failed = 0;
	struct idle_worker *w = calloc(conc, sizeof(*w));
	struct held *h = calloc(n, sizeof(*h));
	long base[MAX_ACCTS];
	double t0;

	if (w == NULL || h == NULL)
		return -1;
	if (tls_ctx != NULL)
		SSL_CTX_set_mode(tls_ctx, SSL_MODE_RELEASE_BUFFERS);
	for (unsigned i = 0; i < O.nacct; i++)
		base[i] = acct_rss(&O.acct[i]);
	printf("step=idle_before sessions=0");
	rss_print("before", NULL, 0);
	printf("\n");
	t0 = bench_now_s();
	for (unsigned i = 0, at = 0; i < conc; i++) {
		w[i].want = n / conc + (i < n % conc);
		w[i].h = h + at;
		at += w[i].want;
		if (pthread_create(&w[i].th, NULL, idle_thread, &w[i]) != 0)
			return -1;
	}
	for (unsigned i = 0; i < conc; i++) {
		pthread_join(w[i].th, NULL);
		ok += w[i].ok;
		failed += w[i].failed;
	}
	printf("step=idle_open tls=%s sessions=%u failed=%u seconds=%.2f",
	    O.tls ? "yes" : "no", ok, failed, bench_now_s() - t0);
	printf(" client_rss_kb=%ld\n", bench_proc_rss_kb((long)getpid()));
	sleep(2); /* let the servers settle (idle sweeps, buffers released) */
	printf("step=idle_held sessions=%u", ok);
	rss_print("held", base, ok);
	printf("\n");
	usleep((useconds_t)(O.secs * 1e6));
	for (unsigned i = 0; i < conc; i++)
		for (unsigned k = 0; k < w[i].ok; k++) {
			if (w[i].h[k].ssl != NULL)
				SSL_free(w[i].h[k].ssl);
			close(w[i].h[k].fd);
		}
	sleep(5);
	printf("step=idle_closed sessions=%u", ok);
	rss_print("closed", NULL, 0);
	printf(" client_cpu_s=%.2f\n", self_cpu());
	free(h);
	free(w);
	return ok > 0 ? 0 : -1;
}

/* ---- main --------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: ringbench-imap select|fetch -t ADDR -u USER -w PASS "
	    "[-n RUNS] [ACCT...]\n"
	    "       ringbench-imap body -t ADDR -u USER -w PASS [-n RUNS] "
	    "[-m BOX] [ACCT...]\n"
	    "       ringbench-imap append -t ADDR -u USER -w PASS [-n COUNT] "
	    "[-m BOX] [ACCT...]\n"
	    "       ringbench-imap login -t ADDR -u USER -w PASS [-c CONC] "
	    "[-d SECS] [-T] [-b SRC] [ACCT...]\n"
	    "       ringbench-imap idle -t ADDR -u USER -w PASS -n N [-c CONC] "
	    "[-d SECS] [-T] [ACCT...]\n"
	    "ACCT: -p [NAME=]PID (a process), -I [NAME=]PID (newest imap "
	    "child of a Dovecot master),\n"
	    "      -D [NAME=]PID (a process tree, reaped children "
	    "included)\n"
	    "ADDR is a loopback address: 127.0.0.1:143 or [::1]:143\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *cmd;
	int ch, rc;

	if (argc < 2)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "select") == 0)
		O.mode = M_SELECT;
	else if (strcmp(cmd, "fetch") == 0)
		O.mode = M_FETCH;
	else if (strcmp(cmd, "body") == 0)
		O.mode = M_BODY;
	else if (strcmp(cmd, "append") == 0)
		O.mode = M_APPEND;
	else if (strcmp(cmd, "login") == 0)
		O.mode = M_LOGIN;
	else if (strcmp(cmd, "idle") == 0)
		O.mode = M_IDLE;
	else
		usage();
	O.runs = 5;
	O.count = 1000;
	O.conc = 4;
	O.secs = 5;
	O.mailbox = "Bench";
	optind = 2;
	while ((ch = getopt(argc, argv, "t:u:w:n:m:c:d:Tb:p:I:D:")) != -1) {
		switch (ch) {
		case 't':
			if (parse_target(optarg) == -1) {
				fprintf(stderr,
				    "ringbench-imap: -t must be a "
				    "loopback address:port\n");
				return 2;
			}
			break;
		case 'u':
			O.user = optarg;
			break;
		case 'w':
			O.pass = optarg;
			break;
		case 'n':
			O.runs = O.count = (unsigned)atoi(optarg);
			break;
		case 'm':
			O.mailbox = optarg;
			break;
		case 'c':
			O.conc = (unsigned)atoi(optarg);
			break;
		case 'd':
			O.secs = atof(optarg);
			break;
		case 'T':
			O.tls = true;
			break;
		case 'b':
			/* a loopback source, so one box plays many clients
			 * (the throttle bench's attackers) */
			O.src.sin_family = AF_INET;
			if (inet_pton(AF_INET, optarg, &O.src.sin_addr) != 1 ||
			    (ntohl(O.src.sin_addr.s_addr) >> 24) != 127) {
				fprintf(stderr,
				    "ringbench-imap: -b must be an "
				    "address in 127.0.0.0/8\n");
				return 2;
			}
			O.bind_src = true;
			break;
		case 'p':
		case 'I':
		case 'D':
			if (acct_add(ch == 'p' ? A_PROC :
				    ch == 'I'  ? A_IMAP_CHILD :
						 A_TREE,
				optarg) == -1)
				usage();
			break;
		default:
			usage();
		}
	}
	if (O.sslen == 0 || O.user == NULL || O.pass == NULL || O.runs == 0 ||
	    O.conc == 0 || O.conc > 256 || O.secs <= 0 || O.secs > 600)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (O.tls) {
		static const unsigned char alpn[] = "\x04imap";

		if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
			return 1;
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_alpn_protos(tls_ctx, alpn, sizeof(alpn) - 1);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (O.mode == M_SELECT || O.mode == M_FETCH)
		rc = run_steps();
	else if (O.mode == M_BODY)
		rc = run_body();
	else if (O.mode == M_APPEND)
		rc = run_append();
	else if (O.mode == M_IDLE)
		rc = run_idle();
	else
		rc = run_login();
	if (tls_ctx)
		SSL_CTX_free(tls_ctx);
	return rc == 0 ? 0 : 1;
}
