/*
 * fuzz_imap_session.c - the whole ringstore IMAP session under arbitrary
 * client bytes: the real login core (login/, IMAP) handing over to the
 * real IMAP session core on a real io_uring loop, with the real auth pool
 * (passwd-file), store pool and a Maildir on disk.
 *
 * Set up once (the plumbing in fuzz_session.h): a temporary directory (on /dev/shm when there is one, so
 * the Maildir's fsyncs are cheap) with a config, a passwd-file holding
 * one {PLAIN} user and the mail root; the pools; one worker loop on its
 * own thread listening on 127.0.0.1 (an ephemeral port; core/ adopts
 * sockets only through listeners, so a loopback TCP pair stands in for a
 * socketpair). Each input is one connection: its first byte picks a
 * prefix (none: the login state is fuzzed; LOGIN; or LOGIN, two APPENDs
 * and SELECT INBOX), the rest follows as client bytes, written while the
 * output is read and dropped; then the client half-closes and reads to
 * EOF. The loop processes every byte before it sees that EOF (a paused
 * connection defers it), so the whole input is consumed. The target then
 * waits until the worker's session table is empty (husks included: every
 * pool job answered), wipes the mail root and returns, so inputs do not
 * see each other's mail and ASan sees every session freed.
 *
 * A session that does not end within SESSION_MS of the client's EOF, or
 * a husk that never goes, is a bug: the target aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/auth_service.h"
#include "backend/imap_private.h"
#include "backend/ringstore.h"
#include "login/login.h"
#include "core/config.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/pool.h"

#define FUZZ_NAME "fuzz_imap_session"
#include "fuzz_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SESSION_MS 30000
#define MAX_INPUT (1024 * 1024) /* seeds stream APPENDs past 256 KiB */

#define USER "fuzz@example.test"
#define PASS "fuzz-secret"
#define LOGIN "a LOGIN " USER " " PASS "\r\n"
#define MSG1                                                                   \
	"From: Alice <alice@example.test>\r\n"                                 \
	"To: fuzz@example.test\r\n"                                            \
	"Subject: =?UTF-8?B?aMOpbGxv?= one\r\n"                                \
	"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"                            \
	"Message-ID: <one@example.test>\r\n"                                   \
	"MIME-Version: 1.0\r\n"                                                \
	"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"                \
	"--b\r\nContent-Type: text/plain\r\n\r\nhello body\r\n"                \
	"--b\r\nContent-Type: text/plain\r\n"                                  \
	"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gYmFzZTY0\r\n"        \
	"--b--\r\n"
#define MSG2 "From: bob@example.test\r\nSubject: two\r\n\r\nsecond\r\n"

static struct {
	char dir[128];
	char mail[192];
	struct rs_config cf;
	struct rs_server srv;
	struct rs_listener rl;
	struct login_listener ll;
	struct login_settings ls;
	struct login_worker *lw;
	struct metrics *metrics;
	struct loop *loop;
	struct rs_worker *w;
	int lfd;
	struct sockaddr_in addr;
	struct fs_loop_thread th;
	bool echo; /* FUZZ_SESSION_ECHO set: server output to stderr */
} F = { .lfd = -1 };

static void setup(void);
static int worker_start(void);
static int register_metrics(struct rs_server *srv, struct metrics *m);
static int count_sessions(struct loop *l);
static void remove_dir(void);

static int
register_metrics(struct rs_server *srv, struct metrics *m)
{
	struct rs_metrics *x = &srv->m;

	x->sessions = metrics_gauge(m, "imap_sessions", "s", NULL);
	if (login_metrics_init(m, &imap_login_proto, &srv->login_m[RS_IMAP]) ==
	    -1)
		return -1;
	x->commands = metrics_counter(m, "imap_commands_total", "c", NULL);
	x->bad_commands = metrics_counter(m, "imap_bad_total", "b", NULL);
	x->store_jobs = metrics_counter(m, "store_jobs_total", "j", NULL);
	x->store_busy = metrics_counter(m, "store_refused_total", "r", NULL);
	x->master_refused = metrics_counter(m, "master_refused_total", "m",
	    NULL);
	return x->sessions < 0 || x->master_refused < 0 ? -1 : 0;
}

/* Once: files, config, pools, the worker loop. */
static void
setup(void)
{
	char path[256], conf[2048];
	struct cfg_error err;
	const char *error = NULL;

	F.echo = getenv("FUZZ_SESSION_ECHO") != NULL;
	fs_setup_begin(F.dir, sizeof(F.dir), "rg-fuzz-session-XXXXXX", F.mail,
	    sizeof(F.mail));
	atexit(remove_dir);
	snprintf(path, sizeof(path), "%s/passwd", F.dir);
	fs_put_file(path, USER ":{PLAIN}" PASS "::::::\n");
	snprintf(conf, sizeof(conf),
	    "daemon = { workers = 1; };\n"
	    "limits = { login_timeout = \"20s\"; idle_timeout = \"20s\";\n"
	    "  login_fail_delay = \"1ms\"; login_fails = 20;\n"
	    "  line_max = \"16k\"; command_max = \"64k\";\n"
	    "  append_max = \"512k\"; bad_commands = 50; };\n"
	    "auth = { passwd_file = \"%s\"; allow_plaintext = true;\n"
	    "  default_scheme = \"SHA256-CRYPT\"; threads = 1; };\n"
	    "storage = { mail_root = \"%s\"; threads = 2; queue = 64; };\n"
	    "imap = ( { name = \"fuzz\"; listen = \"127.0.0.1:1\";\n"
	    "  starttls = false; trusted = true; } );\n",
	    path, F.mail);
	snprintf(path, sizeof(path), "%s/ringstore.conf", F.dir);
	fs_put_file(path, conf);
	if (rs_config_load(path, &F.cf, &err) == -1) {
		fprintf(stderr, "fuzz_imap_session: %s\n", err.msg);
		abort();
	}
	F.srv.cf = &F.cf;
	if ((F.srv.auth = auth_service_new(&F.cf.auth, NULL, &error)) == NULL ||
	    auth_service_start(F.srv.auth, &error) == -1 ||
	    (F.srv.store = pool_new(2, 64, &error)) == NULL)
		goto fail;
	if ((F.metrics = metrics_new("fuzz", 2)) == NULL ||
	    register_metrics(&F.srv, F.metrics) == -1) {
		error = "metrics";
		goto fail;
	}
	F.rl.srv = &F.srv;
	F.rl.conf = &F.cf.imap[0];
	F.rl.svc = &rs_imap_service; /* no STARTTLS here: no listen set */
	F.ls = (struct login_settings){ .listener = &F.cf.imap[0],
		.login_timeout = F.cf.limits.login_timeout,
		.fail_delay = F.cf.limits.login_fail_delay,
		.max_fails = (unsigned)F.cf.limits.login_fails,
		.max_bad = (unsigned)F.cf.limits.bad_commands,
		.line_max = F.cf.limits.line_max_login,
		.server_name = "ringstore" };
	F.ll = (struct login_listener){ .proto = &imap_login_proto,
		.hooks = &rs_login_hooks,
		.set = &F.ls,
		.metrics = &F.srv.login_m[RS_IMAP],
		.workers = &F.lw,
		.ctx = &F.rl };
	if (fs_loop_thread_start(&F.th, worker_start, &F.loop, &error) == 0)
		return;
fail:
	fprintf(stderr, "fuzz_imap_session: %s\n", error ? error : "?");
	abort();
}

/* On the loop thread: the worker, its outbox, the watcher, a listener
 * on an ephemeral loopback port. */
static int
worker_start(void)
{
	if (fs_worker_start(&F.srv, F.metrics, &F.loop, &F.w) == -1 ||
	    imap_idle_init(F.w) == -1 ||
	    (F.w->login = F.lw = login_worker_new(F.loop,
		 auth_service_users(F.srv.auth),
		 auth_service_pool(F.srv.auth))) == NULL)
		return -1;
	if ((F.lfd = fs_listen_loopback(&F.addr)) == -1)
		return -1;
	if (loop_listen(F.loop, F.lfd, "fuzz", login_handler(), &F.ll) == NULL)
		return -1;
	return 0;
}

/* On the loop thread: how many sessions (husks too) are left. */
static int
count_sessions(struct loop *l)
{
	struct rs_worker *w = loop_ctx(l);
	int n = 0;

	for (unsigned b = 0; b < RS_SESSION_BUCKETS; b++)
		for (struct imap_session *s = w->sessions[b]; s; s = s->hnext)
			n++;
	return n + (int)login_worker_sessions(w->login);
}

/* At exit: the whole temporary directory goes (no session is running:
 * each input waited for its own to end). */
static void
remove_dir(void)
{
	fs_wipe(F.dir);
	rmdir(F.dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[MAX_INPUT + 4096];
	size_t n = 0;
	unsigned mode;

	if (size == 0 || size > MAX_INPUT)
		return 0;
	if (F.th.ready == 0)
		setup();
	mode = data[0] % 3;
	if (mode < 2) {
		n = (size_t)snprintf(buf, sizeof(buf), "%s",
		    mode == 0 ? "" : LOGIN);
	} else {
		n = (size_t)snprintf(buf, sizeof(buf),
		    LOGIN "b APPEND INBOX {%zu+}\r\n%s\r\n"
			  "c APPEND INBOX (\\Flagged \\Seen) "
			  "\"02-Feb-2026 10:11:12 +0100\" {%zu+}\r\n%s\r\n"
			  "d SELECT INBOX\r\n",
		    sizeof(MSG1) - 1, MSG1, sizeof(MSG2) - 1, MSG2);
	}
	memcpy(buf + n, data + 1, size - 1);
	n += size - 1;
	fs_run_session(&F.addr, F.echo, SESSION_MS, buf, n);
	fs_wait_sessions_gone(F.loop, count_sessions, SESSION_MS);
	fs_wipe(F.mail);
	return 0;
}
