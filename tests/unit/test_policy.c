/*
 * test_policy.c - the content policy (backend/policy.c) on message files:
 * the policy { } config group and its errors, reject and strip by
 * extension (name.pdf.exe, RFC 2231, encoded words) and by type, the strip
 * copy byte for byte, MIME limits under each setting, a message bigger
 * than many read chunks; and the clamd client against a real clamd this
 * test starts (Debian's clamav-daemon, foreground, its own config and a
 * one-signature database for the EICAR test string): EICAR found, a clean
 * message passed, the scan of the stripped copy, size limits, and clamd
 * unreachable or silent under fail-open and fail-closed. Without a clamd
 * binary those cases are skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/clamd.h"
#include "backend/policy.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "proto/base64.h"
#include "proto/mime_walk.h"

#define CLAMD_BIN "/usr/sbin/clamd"

/* EICAR's test string, written in two halves so that this source file
 * itself is no test virus. */
#define EICAR_A "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDA"
#define EICAR_B "RD-ANTIVIRUS-TEST-FILE!$H+H*"

struct fixture {
	char dir[64];
	char sock[100];
	pid_t clamd;
	bool have_clamd;
};

static struct fixture fx;

static const struct cfg_field root_fields[] = {
	{ "policy", CFG_GROUP, 0, .sub = policy_conf_fields },
	{ NULL },
};

static void
write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd != -1);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Load "policy { <body> }"; 0 or -1 with err. */
static int
load(struct content_policy *cp, const char *body, struct cfg_error *err)
{
	char path[128], text[2048];
	int rc;

	snprintf(path, sizeof(path), "%s/t.conf", fx.dir);
	snprintf(text, sizeof(text), "# test\npolicy = {\n%s\n};\n", body);
	write_file(path, text, strlen(text));
	rc = cfg_load(path, root_fields, cp, err);
	if (rc == 0 && policy_conf_check(cp, err) == -1) {
		cfg_free(root_fields, cp);
		rc = -1;
	}
	return rc;
}

static void
load_ok(struct content_policy *cp, const char *body)
{
	struct cfg_error err;

	if (load(cp, body, &err) == -1)
		fail_msg("%s", err.msg);
}

/* Run cp on msg[0..len). */
static enum policy_verdict
run_len(const struct content_policy *cp, const char *msg, size_t len,
    struct policy_result *r)
{
	char path[128];
	enum policy_verdict v;
	int fd;

	snprintf(path, sizeof(path), "%s/msg", fx.dir);
	write_file(path, msg, len);
	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	v = policy_run(cp, fd, fx.dir, r);
	close(fd);
	assert_int_equal(v, r->verdict);
	if (v != POLICY_STRIPPED) {
		assert_int_equal(r->fd, -1);
		assert_string_equal(r->path, "");
	}
	return v;
}

static enum policy_verdict
run(const struct content_policy *cp, const char *msg, struct policy_result *r)
{
	return run_len(cp, msg, strlen(msg), r);
}

/* The whole stripped copy, NUL-terminated (caller frees). */
static char *
slurp(int fd, size_t *len_r)
{
	struct stat st;
	char *buf;

	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	buf[st.st_size] = '\0';
	*len_r = (size_t)st.st_size;
	return buf;
}

static void
test_conf(void **state)
{
	struct content_policy cp;
	struct cfg_error err;

	(void)state;
	load_ok(&cp, "");
	assert_int_equal(cp.attachments, POLICY_ATTACH_OFF);
	assert_int_equal(cp.nextensions, 20);
	assert_string_equal(cp.extensions[0], ".exe");
	assert_string_equal(cp.extensions[19], ".dll");
	assert_true(cp.ntypes >= 4);
	assert_null(cp.clamd);
	assert_int_equal(cp.clamd_fail, POLICY_CLAMD_CLOSED);
	assert_int_equal(cp.clamd_timeout, 10000);
	assert_int_equal(cp.max_depth, 20);
	assert_false(policy_enabled(&cp));
	cfg_free(root_fields, &cp);

	load_ok(&cp,
	    "attachments = \"strip\"; extensions = [ \"EXE\", \".js\" ];"
	    " clamd = \"127.0.0.1:3310\"; clamd_fail = \"open\";"
	    " clamd_timeout = \"2s\";");
	assert_int_equal(cp.attachments, POLICY_ATTACH_STRIP);
	assert_int_equal(cp.nextensions, 2);
	assert_int_equal(cp.clamd_fail, POLICY_CLAMD_OPEN);
	assert_int_equal(cp.clamd_timeout, 2000);
	assert_true(policy_enabled(&cp));
	cfg_free(root_fields, &cp);

	/* errors name the file and line */
	assert_int_equal(load(&cp, "\n\nclamd = \"localhost:3310\";", &err),
	    -1);
	assert_non_null(strstr(err.msg, "t.conf:"));
	assert_non_null(strstr(err.msg, "policy.clamd"));
	assert_int_equal(load(&cp, "extensions = [ \"tar.gz\" ];", &err), -1);
	assert_non_null(strstr(err.msg, "tar.gz"));
	assert_int_equal(load(&cp, "\nattachments = \"quarantine\";", &err),
	    -1);
	assert_non_null(strstr(err.msg, "t.conf:4"));
	assert_int_equal(load(&cp, "attachment = \"reject\";", &err), -1);

	assert_string_equal(policy_verdict_name(POLICY_STRIPPED), "stripped");
	assert_string_equal(policy_reason_name(POLICY_R_ROOT_ATTACHMENT),
	    "root_attachment");
}

static const char with_exe[] =
    "From: a@example.org\r\n"
    "Subject: report\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n"
    "\r\n"
    "--=_b1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "see attached\r\n"
    "--=_b1\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename=\"Invoice.PDF.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "--=_b1\r\n"
    "Content-Type: application/pdf; name=\"real.pdf\"\r\n"
    "\r\n"
    "JVBERi0xLjQK\r\n"
    "--=_b1--\r\n";

static void
test_reject(void **state)
{
	struct content_policy cp;
	struct policy_result r;

	(void)state;
	load_ok(&cp, "attachments = \"reject\";");
	assert_int_equal(run(&cp, with_exe, &r), POLICY_REJECT);
	assert_string_equal(r.reply,
	    "554 5.7.1 attachment \"Invoice.PDF.exe\" refused by policy");
	assert_int_equal(r.reason, POLICY_R_EXTENSION);
	assert_int_equal(r.refused, 1);

	/* RFC 2231 continuation, last extension .js */
	assert_int_equal(run(&cp,
			     "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			     "--b\r\nContent-Disposition: attachment;\r\n"
			     " filename*0*=utf-8''%E2%82%AC.pdf;\r\n"
			     " filename*1*=%2E%4A%53\r\n\r\nx\r\n--b--\r\n",
			     &r),
	    POLICY_REJECT);
	assert_string_equal(r.reply,
	    "554 5.7.1 attachment \"???.pdf.JS\" refused by policy");

	/* an encoded word in a quoted name */
	assert_int_equal(run(&cp,
			     "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			     "--b\r\nContent-Type: application/zip;"
			     " name=\"=?UTF-8?Q?setup=2Escr?=\"\r\n\r\nx\r\n"
			     "--b--\r\n",
			     &r),
	    POLICY_REJECT);
	assert_non_null(strstr(r.reply, "\"setup.scr\""));

	/* by type, without a name; trailing dot and NUL tricks */
	assert_int_equal(
	    run(&cp,
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\n\r\nhi\r\n--b\r\n"
		"Content-Type: Application/X-MSDownload\r\n\r\nMZ\r\n"
		"--b--\r\n",
		&r),
	    POLICY_REJECT);
	assert_string_equal(r.reply,
	    "554 5.7.1 attachment of type application/x-msdownload refused "
	    "by policy");
	assert_int_equal(r.reason, POLICY_R_TYPE);
	assert_int_equal(run(&cp,
			     "Content-Disposition: attachment; "
			     "filename*=''a.bat%00.txt\r\n\r\nx\r\n",
			     &r),
	    POLICY_REJECT);
	assert_int_equal(run(&cp,
			     "Content-Disposition: attachment; "
			     "filename=\"a.cmd. .\"\r\n\r\nx\r\n",
			     &r),
	    POLICY_REJECT);

	/* fine messages pass; a name that only looks like one */
	assert_int_equal(run(&cp,
			     "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			     "--b\r\nContent-Disposition: attachment; "
			     "filename=\"exe.pdf\"\r\n\r\nx\r\n--b--\r\n",
			     &r),
	    POLICY_PASS);
	assert_int_equal(r.parts, 1);
	assert_string_equal(r.reply, "");
	cfg_free(root_fields, &cp);

	/* attachments = off: nothing looked at */
	load_ok(&cp, "");
	assert_int_equal(run(&cp, with_exe, &r), POLICY_PASS);
	assert_int_equal(r.parts, 0);
	cfg_free(root_fields, &cp);
}

static void
test_strip(void **state)
{
	static const char note[] =
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Disposition: inline\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "\r\n"
	    "The attachment \"Invoice.PDF.exe\" (application/octet-stream) was "
	    "removed by the mail server's content policy.";
	const char *hs = strstr(with_exe, "Content-Type: application/octet");
	const char *he = strstr(hs, "\r\n--=_b1");
	struct content_policy cp;
	struct policy_result r;
	char want[4096], *got, path[sizeof(r.path)];
	size_t len;

	(void)state;
	load_ok(&cp, "attachments = \"strip\";");
	assert_int_equal(run(&cp, with_exe, &r), POLICY_STRIPPED);
	assert_string_equal(r.reply, "");
	assert_int_equal(r.refused, 1);
	assert_int_equal(r.parts, 3);
	assert_true(r.fd != -1);
	assert_memory_equal(r.path, fx.dir, strlen(fx.dir));
	/* every byte but the refused part's, unchanged */
	snprintf(want, sizeof(want), "%.*s%s%s", (int)(hs - with_exe), with_exe,
	    note, he);
	got = slurp(r.fd, &len);
	assert_int_equal(r.size, len);
	assert_string_equal(got, want);
	free(got);
	snprintf(path, sizeof(path), "%s", r.path);
	policy_result_discard(&r);
	assert_int_equal(access(path, F_OK), -1);
	policy_result_discard(&r);

	/* the message itself is the attachment: nothing to keep */
	assert_int_equal(run(&cp,
			     "Subject: x\r\nContent-Type: application/hta\r\n"
			     "\r\n<script>\r\n",
			     &r),
	    POLICY_REJECT);
	assert_int_equal(r.reason, POLICY_R_ROOT_ATTACHMENT);

	/* LF-only input gets LF-only notes; several parts, one nested */
	assert_int_equal(
	    run(&cp,
		"Content-Type: multipart/mixed; boundary=o\n\n"
		"--o\nContent-Type: multipart/mixed; boundary=i\n\n"
		"--i\nContent-Type: a/x; name=one.vbs\n\n1\n--i--\n"
		"--o\nContent-Type: text/plain\n\nkeep\n"
		"--o\nContent-Type: b/y; name=two.lnk\n\n2\n--o--\n",
		&r),
	    POLICY_STRIPPED);
	assert_int_equal(r.refused, 2);
	got = slurp(r.fd, &len);
	assert_null(strchr(got, '\r'));
	assert_non_null(strstr(got, "\"one.vbs\" (a/x)"));
	assert_non_null(strstr(got, "\"two.lnk\" (b/y)"));
	assert_non_null(strstr(got,
	    "\n--o\nContent-Type: text/plain\n\nkeep\n"
	    "--o\nContent-Type: text/plain; "));
	assert_null(strstr(got, "\n1\n"));
	free(got);
	policy_result_discard(&r);
	cfg_free(root_fields, &cp);
}

static void
test_limits(void **state)
{
	struct content_policy cp;
	struct policy_result r;
	char msg[4096];
	size_t n = 0;

	(void)state;
	for (int d = 0; d < 10; d++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n,
		    "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
		    "--b%d\r\n",
		    d, d);
	snprintf(msg + n, sizeof(msg) - n, "\r\nx\r\n");
	load_ok(&cp, "attachments = \"reject\"; max_depth = 5;");
	assert_int_equal(run(&cp, msg, &r), POLICY_REJECT);
	assert_string_equal(r.reply,
	    "554 5.6.0 message structure refused (depth limit)");
	assert_int_equal(r.reason, POLICY_R_MIME_LIMIT);
	cfg_free(root_fields, &cp);
	load_ok(&cp,
	    "attachments = \"strip\"; max_depth = 5; mime_limit = \"tempfail\";");
	assert_int_equal(run(&cp, msg, &r), POLICY_TEMPFAIL);
	assert_memory_equal(r.reply, "451 4.6.0 ", 10);
	cfg_free(root_fields, &cp);
	load_ok(&cp,
	    "attachments = \"reject\"; max_depth = 5; mime_limit = \"accept\";");
	assert_int_equal(run(&cp, msg, &r), POLICY_PASS);
	cfg_free(root_fields, &cp);
}

/* A message of many read chunks: the refused part at its very end. */
static void
test_big(void **state)
{
	static const char head[] =
	    "Content-Type: multipart/mixed; boundary=big\r\n\r\n"
	    "--big\r\nContent-Type: text/plain\r\n\r\n";
	static const char tail[] =
	    "\r\n--big\r\nContent-Disposition: attachment;\r\n"
	    " filename=\"last.jar\"\r\n\r\nPK\r\n--big--\r\n";
	size_t body = 3u << 20, len = strlen(head) + body + strlen(tail);
	char *msg = malloc(len + 1), *got;
	struct content_policy cp;
	struct policy_result r;
	size_t glen;

	(void)state;
	assert_non_null(msg);
	memcpy(msg, head, strlen(head));
	for (size_t k = 0; k < body; k++)
		msg[strlen(head) + k] = (k % 77 == 76) ? '\n' : 'a';
	memcpy(msg + strlen(head) + body, tail, strlen(tail) + 1);
	load_ok(&cp, "attachments = \"strip\";");
	assert_int_equal(run_len(&cp, msg, len, &r), POLICY_STRIPPED);
	got = slurp(r.fd, &glen);
	assert_memory_equal(got, msg, strlen(head) + body + 9);
	assert_non_null(strstr(got + strlen(head) + body, "\"last.jar\""));
	free(got);
	policy_result_discard(&r);
	cfg_free(root_fields, &cp);
	free(msg);
}

/* The shared counters and the log line. */
static void
test_account(void **state)
{
	struct metrics *m = metrics_new("ringstore", 1);
	struct policy_metrics pm;
	struct policy_result r;
	int pipefd[2];
	char line[1024];
	ssize_t n;

	(void)state;
	assert_non_null(m);
	assert_int_equal(policy_metrics_init(m, "lmtp", &pm), 0);
	assert_int_equal(pipe(pipefd), 0);
	log_init("test", LL_INFO, pipefd[1]);
	memset(&r, 0, sizeof(r));
	r.verdict = POLICY_PASS;
	policy_account(&pm, metrics_shard(m, 0), 0x1234, "lmtp", &r);
	r.verdict = POLICY_REJECT;
	r.reason = POLICY_R_EXTENSION;
	r.refused = 1;
	r.parts = 2;
	snprintf(r.detail, sizeof(r.detail), "x y.exe application/x");
	policy_account(&pm, metrics_shard(m, 0), 0x1234, "lmtp", &r);
	r.verdict = POLICY_PASS;
	r.unscanned = true;
	policy_account(&pm, metrics_shard(m, 0), 0x1234, "lmtp", &r);
	log_init("test", LL_ERROR, 2);
	close(pipefd[1]);
	n = read(pipefd[0], line, sizeof(line) - 1);
	close(pipefd[0]);
	assert_true(n > 0);
	line[n] = '\0';
	/* the plain pass is not logged: the reject comes first */
	assert_non_null(strstr(line,
	    "event=policy.verdict service=lmtp "
	    "verdict=reject reason=extension "
	    "detail=\"x y.exe application/x\" parts=2 "
	    "refused=1"));
	assert_non_null(strstr(line, "verdict=pass reason=extension"));
	assert_true(metrics_value(m, pm.verdict[POLICY_PASS]) == 2);
	assert_true(metrics_value(m, pm.verdict[POLICY_REJECT]) == 1);
	assert_true(metrics_value(m, pm.unscanned) == 1);
	metrics_free(m);
}

/* ---- clamd ---- */

static int
connectable(const char *path)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM, 0), rc;

	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	rc = connect(s, (struct sockaddr *)&un, sizeof(un));
	close(s);
	return rc;
}

static void
start_clamd(void)
{
	char conf[256], db[256], text[1024], sig[512];
	const char *e = EICAR_A EICAR_B;
	size_t n = 0;

	if (access(CLAMD_BIN, X_OK) == -1)
		return;
	snprintf(db, sizeof(db), "%s/db", fx.dir);
	assert_int_equal(mkdir(db, 0755), 0);
	/* a body signature (.ndb): any file containing the string */
	n = (size_t)snprintf(sig, sizeof(sig), "Ringstore.Test.EICAR:0:*:");
	for (size_t k = 0; e[k] != '\0'; k++)
		n += (size_t)snprintf(sig + n, sizeof(sig) - n, "%02x",
		    (unsigned char)e[k]);
	snprintf(sig + n, sizeof(sig) - n, "\n");
	snprintf(conf, sizeof(conf), "%s/db/rgtest.ndb", fx.dir);
	write_file(conf, sig, strlen(sig));
	snprintf(fx.sock, sizeof(fx.sock), "%s/clamd.sock", fx.dir);
	snprintf(text, sizeof(text),
	    "Foreground yes\nLocalSocket %s\nDatabaseDirectory %s\n"
	    "LogFile %s/clamd.log\nTemporaryDirectory %s\n"
	    "StreamMaxLength 1M\nSelfCheck 0\n",
	    fx.sock, db, fx.dir, fx.dir);
	snprintf(conf, sizeof(conf), "%s/clamd.conf", fx.dir);
	write_file(conf, text, strlen(text));
	fx.clamd = fork();
	assert_true(fx.clamd != -1);
	if (fx.clamd == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execl(CLAMD_BIN, "clamd", "-c", conf, (char *)NULL);
		_exit(127);
	}
	/* wait until it listens (or died) */
	for (;;) {
		int status;

		if (connectable(fx.sock) == 0) {
			fx.have_clamd = true;
			return;
		}
		if (waitpid(fx.clamd, &status, WNOHANG) == fx.clamd) {
			fx.clamd = 0;
			fail_msg("clamd exited; see %s/clamd.log", fx.dir);
		}
		usleep(50 * 1000);
	}
}

static void
test_clamd(void **state)
{
	static const char clean[] = "Subject: hi\r\n\r\nnothing here\r\n";
	char msg[1024], body[256], b64[128], *got;
	struct content_policy cp;
	struct policy_result r;
	size_t len;

	(void)state;
	if (!fx.have_clamd)
		skip();
	snprintf(body, sizeof(body), "clamd = \"%s\"; attachments = \"strip\";",
	    fx.sock);
	load_ok(&cp, body);
	snprintf(msg, sizeof(msg), "Subject: test\r\n\r\n%s%s\r\n", EICAR_A,
	    EICAR_B);
	assert_int_equal(run(&cp, msg, &r), POLICY_VIRUS);
	assert_string_equal(r.reply,
	    "554 5.7.1 virus found: Ringstore.Test.EICAR.UNOFFICIAL");
	assert_true(r.scanned);
	assert_int_equal(run(&cp, clean, &r), POLICY_PASS);
	assert_true(r.scanned);
	assert_false(r.unscanned);
	assert_int_equal(r.reason, POLICY_R_NONE);

	/* what is scanned is what is delivered: the stripped copy */
	snprintf(msg, sizeof(msg),
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n\r\nhello\r\n"
	    "--b\r\nContent-Disposition: attachment; filename=eicar.com\r\n"
	    "\r\n%s%s\r\n--b--\r\n",
	    EICAR_A, EICAR_B);
	assert_int_equal(run(&cp, msg, &r), POLICY_STRIPPED);
	assert_true(r.scanned);
	got = slurp(r.fd, &len);
	assert_null(strstr(got, EICAR_B));
	free(got);
	policy_result_discard(&r);
	cfg_free(root_fields, &cp);

	/* with attachments off the same message is a virus */
	snprintf(body, sizeof(body), "clamd = \"%s\"; attachments = \"off\";",
	    fx.sock);
	load_ok(&cp, body);
	assert_int_equal(run(&cp, msg, &r), POLICY_VIRUS);
	/* clamd decodes a base64 attachment of a real-looking mail itself */
	assert_int_equal(base64_encode(EICAR_A EICAR_B, strlen(EICAR_A EICAR_B),
			     b64, sizeof(b64), NULL),
	    0);
	snprintf(msg, sizeof(msg),
	    "From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
	    "--b\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n"
	    "%s\r\n--b--\r\n",
	    b64);
	assert_null(strstr(msg, EICAR_B));
	assert_int_equal(run(&cp, msg, &r), POLICY_VIRUS);
	assert_string_equal(r.detail, "Ringstore.Test.EICAR.UNOFFICIAL");
	cfg_free(root_fields, &cp);
}

static void
test_clamd_limits(void **state)
{
	struct content_policy cp;
	struct policy_result r;
	char body[256], *big;
	size_t n = 2u << 20;

	(void)state;
	if (!fx.have_clamd)
		skip();
	big = malloc(n);
	assert_non_null(big);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	memset(big + 16, 'x', n - 16);
	/* our own limit: not even sent */
	snprintf(body, sizeof(body), "clamd = \"%s\"; clamd_max = \"1k\";",
	    fx.sock);
	load_ok(&cp, body);
	assert_int_equal(run_len(&cp, big, 2048, &r), POLICY_TEMPFAIL);
	assert_int_equal(r.reason, POLICY_R_CLAMD_TOO_BIG);
	assert_string_equal(r.reply,
	    "451 4.7.1 virus scanner unavailable, try again later");
	cfg_free(root_fields, &cp);
	/* clamd's StreamMaxLength (1M here) */
	snprintf(body, sizeof(body), "clamd = \"%s\";", fx.sock);
	load_ok(&cp, body);
	assert_int_equal(run_len(&cp, big, n, &r), POLICY_TEMPFAIL);
	assert_true(r.reason == POLICY_R_CLAMD_TOO_BIG ||
	    r.reason == POLICY_R_CLAMD_ERROR);
	cfg_free(root_fields, &cp);
	snprintf(body, sizeof(body), "clamd = \"%s\"; clamd_fail = \"open\";",
	    fx.sock);
	load_ok(&cp, body);
	assert_int_equal(run_len(&cp, big, n, &r), POLICY_PASS);
	assert_true(r.unscanned);
	assert_false(r.scanned);
	cfg_free(root_fields, &cp);
	free(big);
}

/* clamd down (no socket, a refused port, a listener that never answers):
 * PASS under fail-open, TEMPFAIL under fail-closed. */
static void
test_clamd_down(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\nhello\r\n";
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char body[512], silent[100];
	const char *addrs[3];
	struct content_policy cp;
	struct policy_result r;
	int ls;

	(void)state;
	snprintf(silent, sizeof(silent), "%s/silent.sock", fx.dir);
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", silent);
	ls = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&un, sizeof(un)), 0);
	assert_int_equal(listen(ls, 8), 0);
	addrs[0] = "/nonexistent/clamd.ctl";
	addrs[1] = "127.0.0.1:1";
	addrs[2] = silent;
	for (int k = 0; k < 3; k++) {
		snprintf(body, sizeof(body),
		    "clamd = \"%s\"; clamd_fail = \"open\"; "
		    "clamd_timeout = \"300ms\";",
		    addrs[k]);
		load_ok(&cp, body);
		assert_int_equal(run(&cp, msg, &r), POLICY_PASS);
		assert_true(r.unscanned);
		assert_int_equal(r.reason, POLICY_R_CLAMD_ERROR);
		assert_string_equal(r.reply, "");
		cfg_free(root_fields, &cp);
		snprintf(body, sizeof(body),
		    "clamd = \"%s\"; clamd_timeout = \"300ms\";", addrs[k]);
		load_ok(&cp, body);
		assert_int_equal(run(&cp, msg, &r), POLICY_TEMPFAIL);
		assert_string_equal(r.reply,
		    "451 4.7.1 virus scanner unavailable, try again later");
		assert_memory_equal(r.detail, "clamd: ", 7);
		cfg_free(root_fields, &cp);
	}
	close(ls);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_policy.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	start_clamd();
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (fx.clamd > 0) {
		kill(fx.clamd, SIGTERM);
		waitpid(fx.clamd, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_reject),
		cmocka_unit_test(test_strip),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_big),
		cmocka_unit_test(test_account),
		cmocka_unit_test(test_clamd),
		cmocka_unit_test(test_clamd_limits),
		cmocka_unit_test(test_clamd_down),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
