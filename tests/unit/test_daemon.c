/*
 * test_daemon.c - a real daemon_run() with two workers, driven by
 * signals sent to its thread: the worker_init/worker_exit hooks (exit on
 * the worker's own thread, after its loop stopped and before it is freed;
 * also after a failed worker_init) and core/listen_set.c (every listener
 * on every worker, PROXY/allow-list settings applied from a listener_conf,
 * implicit TLS, the TLS swap at SIGHUP seen by new connections on every
 * worker, a swap that would leave a TLS listener without a certificate
 * refused, no socket left open after a failed start).
 *
 * Certificates are made in a temporary directory; clients are blocking
 * sockets and OpenSSL on loopback. Waits are bounded; nothing is timed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/config.h"
#include "core/daemon.h"
#include "core/listen_set.h"
#include "core/listener_conf.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/tls.h"
#include "cert_helpers.h"
#include "server_helpers.h"

#define NWORKERS 2
#define NLIS 3 /* plain, tls, guarded */
#define WAIT_MS 10000

static struct {
	char dir[64];
	struct pem one, two;
	struct tls_server *ts_one, *ts_two;
	uint16_t port[NLIS];
	struct cfg_addr addr[NLIS];
	struct net stranger; /* the guarded listener's only trusted net */
	struct listener_conf guarded;

	struct daemon d;
	struct listen_set *ls;
	pthread_t thread; /* runs daemon_run(): the daemon's main thread */
	bool running;	  /* thread started, not joined yet */
	int rc;
	int fail_worker; /* worker_init of this worker fails; -1: none */

	/* hooks, written on worker threads under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t worker_thread[NWORKERS];
	int marker[NWORKERS]; /* loop ctx */
	unsigned inits, exits, exits_wrong, adopted, adopted_wrong;
	bool reloaded;
	int reload_rc;
} D = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* ---- the daemon's side ------------------------------------------------ */

/* Every connection is told the name of its listener, then closed. */
static void
greet_open(struct conn *c)
{
	const char *name = listener_name(conn_listener(c));

	conn_write(c, name, strlen(name));
	conn_write(c, "\n", 1);
	conn_close(c);
}

static void
greet_data(struct conn *c, const char *p, size_t n)
{
}

static const struct conn_handler greet = { .on_open = greet_open,
	.on_data = greet_data };

/* Count an event (and, if wrong, a wrong one) for the test thread. */
static void
note(unsigned *counter, bool wrong, unsigned *wrong_counter)
{
	pthread_mutex_lock(&D.lock);
	(*counter)++;
	if (wrong && wrong_counter != NULL)
		(*wrong_counter)++;
	pthread_cond_broadcast(&D.cond);
	pthread_mutex_unlock(&D.lock);
}

static int
worker_init(struct daemon *d, struct loop *l, unsigned i)
{
	D.worker_thread[i] = pthread_self();
	loop_set_ctx(l, &D.marker[i]);
	note(&D.inits, false, NULL);
	if ((int)i == D.fail_worker)
		return -1;
	return listen_set_worker(D.ls, l, i);
}

/* On the worker's thread, its loop stopped but still there. */
static void
worker_exit(struct daemon *d, struct loop *l, unsigned i)
{
	bool wrong = i >= NWORKERS ||
	    !pthread_equal(pthread_self(), D.worker_thread[i]) ||
	    loop_ctx(l) != &D.marker[i] || loop_nconns(l) != 0;

	note(&D.exits, wrong, &D.exits_wrong);
}

static void
adopted(struct listen_set *ls, struct loop *l)
{
	bool wrong = listen_set_worker_tls(ls, l, 1) != D.ts_two ||
	    listen_set_worker_tls(ls, l, 0) != NULL ||
	    listen_set_worker_tls(ls, l, NLIS) != NULL;

	note(&D.adopted, wrong, &D.adopted_wrong);
}

/* SIGHUP, on the daemon's main thread: certificate two for the TLS one. */
static void
reload(struct daemon *d)
{
	struct tls_server *next[NLIS] = { NULL, D.ts_two, NULL };
	const char *err = NULL;
	int rc = listen_set_swap_tls(D.ls, d, next, adopted, &err);

	pthread_mutex_lock(&D.lock);
	D.reload_rc = rc;
	D.reloaded = true;
	pthread_cond_broadcast(&D.cond);
	pthread_mutex_unlock(&D.lock);
}

static void *
run_daemon(void *arg)
{
	D.rc = daemon_run(&D.d);
	return NULL;
}

/* ---- the client's side ------------------------------------------------ */

static int
dial(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_int_not_equal(fd, -1);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Everything the server sends before it closes (cap bytes at most). */
static size_t
read_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap - 1 && (n = read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	return got;
}

static void
expect_greeting(uint16_t port, const char *want)
{
	char buf[64];
	int fd = dial(port);

	read_all(fd, buf, sizeof(buf));
	close(fd);
	assert_string_equal(buf, want);
}

/* The CN of the certificate the server on port shows. */
static void
tls_cn(uint16_t port, char *cn, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int fd = dial(port);
	SSL *ssl;
	X509 *x;

	assert_non_null(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	assert_non_null(ssl = SSL_new(ctx));
	SSL_set_fd(ssl, fd);
	assert_int_equal(SSL_connect(ssl), 1);
	assert_non_null(x = SSL_get0_peer_certificate(ssl));
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
			NID_commonName, cn, (int)cap) > 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

/* Wait (bounded) until *counter reaches n. */
static void
wait_count(const unsigned *counter, unsigned n)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&D.lock);
	while (*counter < n)
		if (pthread_cond_timedwait(&D.cond, &D.lock, &until) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&D.lock);
	assert_true(*counter >= n);
}

static unsigned
open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(dir);
	while (readdir(dir) != NULL)
		n++;
	closedir(dir);
	return n;
}

/* ---- fixture ---------------------------------------------------------- */

static struct tls_server *
server_for(const struct pem *p)
{
	struct tls_cert_conf cert = { p->cert, p->key };
	struct tls_server_conf conf = { .certs = &cert,
		.ncerts = 1,
		.min_version = 12 };
	const char *err = NULL;
	struct tls_server *ts = tls_server_new(&conf, &err);

	if (ts == NULL)
		fail_msg("tls: %s", err);
	return ts;
}

static int
group_setup(void **state)
{
	snprintf(D.dir, sizeof(D.dir), "/tmp/test_daemon.XXXXXX");
	if (mkdtemp(D.dir) == NULL)
		return -1;
	make_cert(D.dir, &D.one, "one", false, "one", NULL, 1956528000LL);
	make_cert(D.dir, &D.two, "two", false, "two", NULL, 1956528000LL);
	D.ts_one = server_for(&D.one);
	D.ts_two = server_for(&D.two);
	assert_int_equal(net_parse("192.0.2.0/24", 12, &D.stranger), 0);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	tls_server_unref(&D.ts_one);
	tls_server_unref(&D.ts_two);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", D.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A daemon with three listeners on fresh ports, not started yet. */
static int
setup(void **state)
{
	static const char *const names[NLIS] = { "plain", "tls", "guarded" };
	struct listen_set_entry e[NLIS];
	struct tls_server *tls[NLIS] = { NULL, D.ts_one, NULL };
	const char *err = NULL;

	D.inits = D.exits = D.exits_wrong = 0;
	D.adopted = D.adopted_wrong = 0;
	D.reloaded = false;
	D.fail_worker = -1;
	memset(&D.d, 0, sizeof(D.d));
	D.d.name = "test";
	D.d.nworkers = NWORKERS;
	D.d.worker_init = worker_init;
	D.d.worker_exit = worker_exit;
	D.d.reload = reload;
	D.d.loop_conf.buf_count = 16;
	D.d.loop_conf.buf_size = 4096;
	assert_int_equal(daemon_metrics_new(&D.d), 0);
	D.guarded = (struct listener_conf){ .name = "guarded",
		.trusted = true,
		.trusted_nets = &D.stranger,
		.ntrusted_nets = 1 };
	for (int r = 0; r < NLIS; r++) {
		char text[32];

		D.port[r] = free_port();
		snprintf(text, sizeof(text), "127.0.0.1:%u", D.port[r]);
		assert_int_equal(cfg_parse_addr(text, &D.addr[r]), 0);
		e[r] = (struct listen_set_entry){ .name = names[r],
			.addr = &D.addr[r],
			.handler = &greet,
			.conf = r == 2 ? &D.guarded : NULL,
			.tls = r == 1 };
	}
	D.ls = listen_set_open(&D.d, e, NLIS, tls, &err);
	if (D.ls == NULL)
		fail_msg("listen_set_open: %s", err);
	return 0;
}

/* A test that failed half-way may have left the daemon running. */
static void
daemon_stop(void)
{
	if (!D.running)
		return;
	pthread_kill(D.thread, SIGTERM);
	pthread_join(D.thread, NULL);
	D.running = false;
}

static int
teardown(void **state)
{
	daemon_stop();
	listen_set_free(&D.ls);
	daemon_free(&D.d);
	return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_serve_and_swap(void **state)
{
	struct tls_server *none[NLIS] = { NULL, NULL, NULL };
	const char *err = NULL;
	char cn[64], buf[64];
	int fd;

	assert_int_equal(pthread_create(&D.thread, NULL, run_daemon, NULL), 0);
	D.running = true;
	wait_count(&D.inits, NWORKERS);
	/* every worker has its listeners before daemon_run() serves */
	for (int k = 0; k < 8; k++)
		expect_greeting(D.port[0], "plain\n");
	tls_cn(D.port[1], cn, sizeof(cn));
	assert_string_equal(cn, "one");
	assert_ptr_equal(listen_set_tls(D.ls, 1), D.ts_one);
	/* loopback is not among the guarded listener's trusted nets */
	fd = dial(D.port[2]);
	assert_int_equal(read_all(fd, buf, sizeof(buf)), 0);
	close(fd);

	/* a TLS listener is never left without a certificate */
	assert_int_equal(listen_set_swap_tls(D.ls, &D.d, none, NULL, &err), -1);
	assert_non_null(err);
	tls_cn(D.port[1], cn, sizeof(cn));
	assert_string_equal(cn, "one");

	assert_int_equal(pthread_kill(D.thread, SIGHUP), 0);
	wait_count(&D.adopted, NWORKERS);
	assert_int_equal(D.adopted_wrong, 0);
	pthread_mutex_lock(&D.lock);
	while (!D.reloaded)
		pthread_cond_wait(&D.cond, &D.lock);
	pthread_mutex_unlock(&D.lock);
	assert_int_equal(D.reload_rc, 0);
	assert_ptr_equal(listen_set_tls(D.ls, 1), D.ts_two);
	/* whichever worker takes it, a new connection sees the new one */
	for (int k = 0; k < 8; k++) {
		tls_cn(D.port[1], cn, sizeof(cn));
		assert_string_equal(cn, "two");
	}
	expect_greeting(D.port[0], "plain\n");

	daemon_stop();
	assert_int_equal(D.rc, 0);
	assert_int_equal(D.exits, NWORKERS);
	assert_int_equal(D.exits_wrong, 0);
}

/* Worker 1 fails to start: daemon_run() gives up, both workers' exit
 * hooks run (the failed one too), and no socket stays open. */
static void
test_failed_worker(void **state)
{
	unsigned before;

	teardown(state); /* count fds without the set's sockets */
	before = open_fds();
	setup(state);
	D.fail_worker = 1;
	assert_int_equal(pthread_create(&D.thread, NULL, run_daemon, NULL), 0);
	pthread_join(D.thread, NULL); /* it stops by itself */
	assert_int_equal(D.rc, 1);
	assert_int_equal(D.inits, NWORKERS);
	assert_int_equal(D.exits, NWORKERS);
	assert_int_equal(D.exits_wrong, 0);
	listen_set_free(&D.ls);
	daemon_free(&D.d);
	assert_int_equal(open_fds(), before);
}

/* A busy port fails the whole set, closing what it had opened; so does
 * an implicit-TLS entry without a certificate. */
static void
test_open_errors(void **state)
{
	struct cfg_addr fresh, taken;
	struct listen_set_entry e[2] = {
		{ .name = "fresh", .addr = &fresh, .handler = &greet },
		{ .name = "taken", .addr = &taken, .handler = &greet },
	};
	struct tls_server *none[2] = { NULL, NULL };
	const char *err = NULL;
	unsigned before;
	char text[2][32];
	int fd;

	for (int i = 0; i < 2; i++)
		snprintf(text[i], sizeof(text[i]), "127.0.0.1:%u", free_port());
	assert_int_equal(cfg_parse_addr(text[0], &fresh), 0);
	assert_int_equal(cfg_parse_addr(text[1], &taken), 0);
	/* without SO_REUSEPORT nobody else can bind the port */
	assert_int_not_equal(fd = daemon_listen(&taken, false, &err), -1);
	before = open_fds();
	assert_null(listen_set_open(&D.d, e, 2, none, &err));
	assert_non_null(strstr(err, text[1]));
	assert_int_equal(open_fds(), before);
	close(fd);

	e[1].tls = true;
	err = NULL;
	assert_null(listen_set_open(&D.d, e, 2, none, &err));
	assert_non_null(err);
	assert_int_equal(open_fds(), before - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_serve_and_swap, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failed_worker, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup,
		    teardown),
	};
	const char *err = NULL;
	sigset_t set;

	if (loop_probe(&err) == -1) {
		print_message("skip: no io_uring: %s\n", err);
		return 77;
	}
	/* As daemon_args_parse() does: every thread started from here on
	 * leaves these to the daemon's main thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
