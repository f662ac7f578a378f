/*
 * fuzz_lmtp_session.c - ringstore's LMTP service under arbitrary client
 * bytes: the real transaction core (backend/smtp_txn.c: line cutting,
 * the state machine, DATA and BDAT into the tmp file) and the real
 * delivery (backend/deliver.c into a Maildir), on a real io_uring loop
 * with the real store pool and passwd-file.
 *
 * Set up once (like fuzz_imap_session.c, plumbing in fuzz_session.h): a temporary directory (on
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_service.h"
#include "backend/ringstore.h"
#include "core/config.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"

#define FUZZ_NAME "fuzz_lmtp_session"
#include "fuzz_session.h"

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
	struct fs_loop_thread th;
	bool echo; /* FUZZ_SESSION_ECHO set: server output to stderr */
} F;

static void
remove_dir(void)
{
	fs_wipe(F.dir);
	rmdir(F.dir);
}

/* On the loop thread: the worker, its outbox and the LMTP listener. */
static int
worker_start(void)
{
	int fd;

	if (fs_worker_start(&F.srv, F.metrics, &F.loop, &F.w) == -1 ||
	    (fd = fs_listen_loopback(&F.addr)) == -1)
		return -1;
	return loop_listen(F.loop, fd, "fuzz", rs_lmtp_service.handler,
		   &F.rl) != NULL ?
	    0 :
	    -1;
}

static void
setup(void)
{
	char path[256], conf[2048];
	const char *error = NULL;
	struct cfg_error err;

	F.echo = getenv("FUZZ_SESSION_ECHO") != NULL;
	fs_setup_begin(F.dir, sizeof(F.dir), "rg-fuzz-lmtp-XXXXXX", F.mail,
	    sizeof(F.mail));
	atexit(remove_dir);
	snprintf(path, sizeof(path), "%s/passwd", F.dir);
	fs_put_file(path, USER ":{PLAIN}x::::::quota=64K\n");
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
	fs_put_file(path, conf);
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
	if (fs_loop_thread_start(&F.th, worker_start, &F.loop, &error) == 0)
		return;
fail:
	fprintf(stderr, "fuzz_lmtp_session: %s\n", error ? error : "?");
	abort();
}

/* On the loop thread: LMTP sessions (husks too). */
static int
count_sessions(struct loop *l)
{
	(void)l;
	return (int)metrics_value(F.metrics, F.srv.m.lmtp.sessions);
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
	if (F.th.ready == 0)
		setup();
	n = (size_t)snprintf(buf, sizeof(buf), "%s", prefixes[data[0] % 3]);
	memcpy(buf + n, data + 1, size - 1);
	fs_run_session(&F.addr, F.echo, SESSION_MS, buf, n + size - 1);
	fs_wait_sessions_gone(F.loop, count_sessions, SESSION_MS);
	fs_wipe(F.mail);
	return 0;
}
