/*
 * fuzz_lmtp_session.c - ringstore's LMTP service under arbitrary client
 * bytes: the real transaction core (backend/smtp_txn.c: line cutting,
 * the state machine, DATA and BDAT into the tmp file) and the real
 * delivery (backend/deliver.c into a Maildir), on a real io_uring loop
 * with the real store pool and passwd-file.
 *
 * Set up once (like fuzz_imap_session.c): a temporary directory (on
 * /dev/shm when there is one) with a config, a passwd-file with one user
 * (quota 64K, so the quota path runs too) and the mail root; the store
 * pool; one worker loop on its own thread listening on an ephemeral
 * loopback port with the LMTP handler. Each input is one connection: its
 * first byte picks a prefix (nothing; LHLO; LHLO, MAIL and a RCPT), the
 * rest follows as client bytes while the output is read and dropped; the
 * client then half-closes and reads to EOF. The target waits until no
 * LMTP session is left (husks whose pool job is still out included),
 * wipes the mail root and returns, so ASan sees every session freed.
 *
 * FUZZ_SESSION_ECHO in the environment copies the server's answers to
 * stderr. A session that does not end within SESSION_MS of the client's EOF is a
 * bug: the target aborts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_service.h"
#include "backend/ringstore.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SESSION_MS 30000
#define MAX_INPUT (1024 * 1024)
#define USER "fuzz@example.test"

static struct {
	char dir[128], mail[192];
	struct rs_config cf;
	struct rs_server srv;
	struct rs_listener rl;
	struct metrics *metrics;
	struct loop *loop;
	struct rs_worker *w;
	struct sockaddr_in addr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready; /* 1 running, -1 failed */
	bool echo; /* FUZZ_SESSION_ECHO set: server output to stderr */
} F;

static atomic_int left;
static atomic_int probed;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_lmtp_session: %s: %s\n", what, strerror(errno));
	abort();
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) == EOF)
		die(path);
}

static int
wipe_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

static void
remove_dir(void)
{
	nftw(F.dir, wipe_one, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(F.dir);
}

/* On the loop thread: the worker, its outbox and the LMTP listener. */
static int
worker_start(void)
{
	struct loop_conf lc = { .buf_count = 64,
		.out_high = F.cf.limits.output_buffer,
		.metrics = F.metrics };
	socklen_t alen = sizeof(F.addr);
	const char *error = NULL;
	int fd;

	if ((F.loop = loop_new(&lc, &error)) == NULL) {
		fprintf(stderr, "fuzz_lmtp_session: %s\n", error);
		return -1;
	}
	if ((F.w = calloc(1, sizeof(*F.w))) == NULL)
		return -1;
	F.w->srv = &F.srv;
	F.w->loop = F.loop;
	if ((F.w->outbox = pool_outbox_new(F.loop)) == NULL)
		return -1;
	loop_set_ctx(F.loop, F.w);
	F.addr.sin_family = AF_INET;
	F.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&F.addr, sizeof(F.addr)) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&F.addr, &alen) == -1)
		return -1;
	return loop_listen(F.loop, fd, "fuzz", rs_lmtp_service.handler,
		   &F.rl) != NULL ?
	    0 :
	    -1;
}

static void *
loop_main(void *arg)
{
	int ok = worker_start() == 0;

	(void)arg;
	pthread_mutex_lock(&F.lock);
	F.ready = ok ? 1 : -1;
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
	if (ok)
		loop_run(F.loop); /* until the process exits */
	return NULL;
}

static void
setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char path[256], conf[2048];
	const char *error = NULL;
	struct cfg_error err;
	pthread_t th;
	int null_fd;

	signal(SIGPIPE, SIG_IGN);
	F.echo = getenv("FUZZ_SESSION_ECHO") != NULL;
	if (loop_probe(&error) == -1) {
		fprintf(stderr, "fuzz_lmtp_session: skipped: %s\n", error);
		exit(77);
	}
	if ((null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
		die("/dev/null");
	log_init("fuzz", LL_ERROR, null_fd);
	snprintf(F.dir, sizeof(F.dir), "%s/rg-fuzz-lmtp-XXXXXX", base);
	if (mkdtemp(F.dir) == NULL)
		die("mkdtemp");
	atexit(remove_dir);
	snprintf(F.mail, sizeof(F.mail), "%s/mail", F.dir);
	if (mkdir(F.mail, 0700) == -1)
		die(F.mail);
	snprintf(path, sizeof(path), "%s/passwd", F.dir);
	put_file(path, USER ":{PLAIN}x::::::quota=64K\n");
	snprintf(conf, sizeof(conf),
	    "daemon = { workers = 1; };\n"
	    "limits = { idle_timeout = \"20s\"; bad_commands = 50;\n"
	    "  message_max = \"256k\"; recipients_max = 20;\n"
	    "  smtp_line_max = \"1k\"; };\n"
	    "auth = { passwd_file = \"%s\"; allow_plaintext = true;\n"
	    "  default_scheme = \"SHA256-CRYPT\"; threads = 1; };\n"
	    "storage = { mail_root = \"%s\"; threads = 2; queue = 64; };\n"
	    "lmtp = ( { name = \"fuzz\"; listen = \"127.0.0.1:1\";\n"
	    "  trusted = true; } );\n",
	    path, F.mail);
	snprintf(path, sizeof(path), "%s/ringstore.conf", F.dir);
	put_file(path, conf);
	if (rs_config_load(path, &F.cf, &err) == -1) {
		fprintf(stderr, "fuzz_lmtp_session: %s\n", err.msg);
		abort();
	}
	F.srv.cf = &F.cf;
	if ((F.srv.auth = auth_service_new(&F.cf.auth, NULL, &error)) == NULL ||
	    (F.srv.store = pool_new(2, 64, &error)) == NULL)
		goto fail;
	F.srv.m.store_busy = -1;
	if ((F.metrics = metrics_new("fuzz", 2)) == NULL ||
	    rs_lmtp_metrics_init(&F.srv, F.metrics) == -1) {
		error = "metrics";
		goto fail;
	}
	F.rl = (struct rs_listener){ .srv = &F.srv,
		.conf = &F.cf.lmtp[0],
		.svc = &rs_lmtp_service };
	pthread_mutex_init(&F.lock, NULL);
	pthread_cond_init(&F.cond, NULL);
	if (pthread_create(&th, NULL, loop_main, NULL) != 0) {
		error = "pthread_create";
		goto fail;
	}
	pthread_detach(th);
	pthread_mutex_lock(&F.lock);
	while (F.ready == 0)
		pthread_cond_wait(&F.cond, &F.lock);
	pthread_mutex_unlock(&F.lock);
	if (F.ready == 1)
		return;
	error = "the worker loop did not start (io_uring?)";
fail:
	fprintf(stderr, "fuzz_lmtp_session: %s\n", error ? error : "?");
	abort();
}

/* On the loop thread: LMTP sessions (husks too) and connections left. */
static void
probe(struct loop *l, void *arg)
{
	double n = metrics_value(F.metrics, F.srv.m.lmtp.sessions);

	(void)arg;
	atomic_store(&left, (int)n + (int)loop_nconns(l));
	atomic_store(&probed, 1);
}

static void
wait_sessions_gone(void)
{
	uint64_t deadline = now_ms() + SESSION_MS;

	for (;;) {
		atomic_store(&probed, 0);
		if (loop_post(F.loop, probe, NULL) == -1)
			die("loop_post");
		while (!atomic_load(&probed)) {
			if (now_ms() > deadline) {
				fprintf(stderr, "fuzz_lmtp_session: stuck\n");
				abort();
			}
			usleep(100);
		}
		if (atomic_load(&left) == 0)
			return;
		if (now_ms() > deadline) {
			fprintf(stderr,
			    "fuzz_lmtp_session: a session "
			    "outlived its connection\n");
			abort();
		}
		usleep(200);
	}
}

/* One connection: send everything while draining the output, then
 * half-close and read to EOF. */
static void
run_session(const char *p, size_t n)
{
	uint64_t deadline = now_ms() + SESSION_MS;
	struct pollfd pfd;
	size_t off = 0;
	bool sending = true;
	char sink[16384];
	int fd, err = 0;
	socklen_t elen = sizeof(err);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1 ||
	    (connect(fd, (struct sockaddr *)&F.addr, sizeof(F.addr)) == -1 &&
		errno != EINPROGRESS && errno != EINTR))
		die("connect");
	pfd = (struct pollfd){ fd, POLLOUT, 0 };
	while (poll(&pfd, 1, 100) != 1)
		if (now_ms() > deadline)
			die("connect timed out");
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1 || err)
		die("connect");
	for (;;) {
		ssize_t r;

		if (sending && off == n) {
			shutdown(fd, SHUT_WR);
			sending = false;
		}
		pfd = (struct pollfd){ fd, POLLIN | (sending ? POLLOUT : 0),
			0 };
		if (now_ms() > deadline) {
			fprintf(stderr,
			    "fuzz_lmtp_session: the session did "
			    "not end after the client's EOF\n");
			abort();
		}
		if (poll(&pfd, 1, 100) == -1 && errno != EINTR)
			die("poll");
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			r = read(fd, sink, sizeof(sink));
			if (r > 0 && F.echo)
				fwrite(sink, 1, (size_t)r, stderr);
			if (r == 0 ||
			    (r == -1 && errno != EAGAIN && errno != EINTR))
				break;
		}
		if (sending && (pfd.revents & POLLOUT)) {
			r = send(fd, p + off, n - off, MSG_NOSIGNAL);
			if (r > 0)
				off += (size_t)r;
			else if (r == -1 && errno != EAGAIN && errno != EINTR)
				sending = false;
		}
	}
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefixes[] = {
		"",
		"LHLO fuzz.example\r\n",
		"LHLO fuzz.example\r\nMAIL FROM:<a@example.org>\r\n"
		"RCPT TO:<" USER ">\r\n",
	};
	static char buf[MAX_INPUT + 256];
	size_t n;

	if (size == 0 || size > MAX_INPUT)
		return 0;
	if (F.ready == 0)
		setup();
	n = (size_t)snprintf(buf, sizeof(buf), "%s", prefixes[data[0] % 3]);
	memcpy(buf + n, data + 1, size - 1);
	run_session(buf, n + size - 1);
	wait_sessions_gone();
	nftw(F.mail, wipe_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
