/*
 * fuzz_upstream_login.c - ringgate's back-end login client
 * (proxy/upstream_login.c) against a back end that says arbitrary bytes,
 * on a real io_uring loop over loopback TCP.
 *
 * Each input is one login on a fresh loop: the first byte picks the
 * protocol (IMAP, POP3, SMTP), the TLS mode (none or STARTTLS), XCLIENT,
 * and whether the fake back end closes after speaking or stays silent
 * (then the login's timeout ends it); the rest is everything the back end
 * sends, at once, as soon as the client connects. The fake back end is a
 * listener on the same loop that records what the client writes.
 *
 * Properties, not just crashes (ASan sees every login freed): done runs
 * exactly once, with a conn exactly when the result is UL_OK; with
 * STARTTLS required (the fake cannot do TLS) the login never succeeds
 * and the fake never sees the credentials, an XCLIENT or an ID. A broken
 * property aborts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/tls.h"
#include "proxy/upstream_login.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (256 * 1024)
#define SEEN_MAX (64 * 1024)
/* base64 of "alice\0master\0s3cret" */
#define PLAIN_B64 "YWxpY2UAbWFzdGVyAHMzY3JldA=="

static struct {
	struct tls_client *tc;
	const uint8_t *say;
	size_t say_len;
	bool close_after;
	char seen[SEEN_MAX + 1];
	size_t seen_len;
	unsigned done_calls;
	enum ul_status status;
	struct loop *l;
} F;

static void
fake_open(struct conn *c)
{
	if (F.say_len > 0)
		conn_write(c, F.say, F.say_len);
	if (F.close_after)
		conn_close(c);
}

static void
fake_data(struct conn *c, const char *p, size_t n)
{
	(void)c;
	if (n > SEEN_MAX - F.seen_len)
		n = SEEN_MAX - F.seen_len;
	memcpy(F.seen + F.seen_len, p, n);
	F.seen_len += n;
	F.seen[F.seen_len] = '\0';
}

static const struct conn_handler fake_handler = {
	.on_open = fake_open,
	.on_data = fake_data,
};

static void
sink_data(struct conn *c, const char *p, size_t n)
{
	(void)c;
	(void)p;
	(void)n;
}

static const struct conn_handler sink = { .on_data = sink_data };

static void
done(void *ctx, struct conn *backend, const struct ul_result *r)
{
	(void)ctx;
	F.done_calls++;
	F.status = r->status;
	if ((backend != NULL) != (r->status == UL_OK) || r->rest == NULL)
		abort();
	if (strlen(r->capability) >= UL_CAPABILITY_MAX ||
	    strlen(r->reason) >= UL_REASON_MAX)
		abort();
	if (backend != NULL) {
		conn_set_handler(backend, &sink, NULL);
		conn_close(backend);
	}
	loop_stop(F.l, 0);
}

static void
setup(void)
{
	struct tls_client_conf tc = { .verify = true };
	const char *err = NULL;

	signal(SIGPIPE, SIG_IGN);
	if (loop_probe(&err) == -1) {
		fprintf(stderr, "fuzz_upstream_login: skipped: %s\n", err);
		exit(77);
	}
	log_init("fuzz", LL_ERROR, 2);
	if ((F.tc = tls_client_new(&tc, &err)) == NULL) {
		fprintf(stderr, "fuzz_upstream_login: %s\n", err);
		exit(1);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static const enum ul_proto protos[] = { UL_IMAP, UL_POP3, UL_SMTP };
	static const char *const cid[] = { "name", "fuzz", "x-originating-ip",
		"10.1.1.1" };
	struct sockaddr_in sin = { .sin_family = AF_INET }, client = sin;
	socklen_t alen = sizeof(sin);
	struct loop_conf lc = { .buf_count = 16, .buf_size = 4096 };
	struct ul_params p = { 0 };
	const char *err = NULL;
	unsigned sel;
	int fd;

	if (!ready) {
		setup();
		ready = true;
	}
	if (size < 1 || size > MAX_INPUT)
		return 0;
	sel = data[0];
	F.say = data + 1;
	F.say_len = size - 1;
	F.close_after = !(sel & 0x20);
	F.seen_len = 0;
	F.seen[0] = '\0';
	F.done_calls = 0;

	p.proto = protos[(sel & 3) % 3];
	p.tls = sel & 4 ? UL_TLS_STARTTLS : UL_TLS_NONE;
	p.tls_ctx = F.tc;
	p.sni = "backend.example.test";
	p.xclient = sel & 8;
	p.user = "alice";
	p.master_user = "master";
	p.master_pass = "s3cret";
	p.client_id = cid;
	p.client_id_n = 2;
	client.sin_port = htons(4242);
	inet_pton(AF_INET, "192.0.2.7", &client.sin_addr);
	p.client = (struct sockaddr *)&client;
	p.timeout_ms = 100;

	if ((F.l = loop_new(&lc, &err)) == NULL) {
		fprintf(stderr, "fuzz_upstream_login: %s\n", err);
		exit(77);
	}
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 4) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &alen) == -1 ||
	    loop_listen(F.l, fd, "fake", &fake_handler, NULL) == NULL)
		abort();
	if (upstream_login_start(F.l, (struct sockaddr *)&sin, sizeof(sin), &p,
		done, NULL, &err) == NULL)
		abort();
	loop_run(F.l);
	loop_free(F.l);

	if (F.done_calls != 1)
		abort();
	if (p.tls == UL_TLS_STARTTLS &&
	    (F.status == UL_OK || strstr(F.seen, PLAIN_B64) != NULL ||
		strstr(F.seen, "XCLIENT") != NULL ||
		strstr(F.seen, " ID (") != NULL))
		abort();
	if (strstr(F.seen, "10.1.1.1") != NULL) /* the client's x- key */
		abort();
	return 0;
}
