/*
 * test_upstream_login.c - ringgate's back-end login client
 * (proxy/upstream_login.c) on a real loop against scripted fake back ends.
 *
 * Each fake is a thread on a loopback listener speaking blocking sockets
 * (and OpenSSL for STARTTLS and implicit TLS with a self-signed
 * certificate the client trusts): it reads the client's lines until the
 * one a step waits for, writes the step's answer, and keeps a transcript
 * of everything it received. The cases: IMAP with SASL-IR and ID
 * pipelined (x-originating-* ours, the client's own x- keys dropped),
 * without SASL-IR (continuation, CAPABILITY after login), refusals and
 * server errors, POP3 and SMTP (AUTH and XCLIENT), the PROXY v2 preamble,
 * and the hostile back ends: garbage, silence (the timeout), a close
 * mid-greeting, a 1 MiB line, PREAUTH and a missing STARTTLS (no
 * credential may have been sent), STARTTLS with injected plaintext after
 * the OK (never read), a certificate for another name, cancel. Skips (77)
 * where io_uring is unavailable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cert_helpers.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/timer.h"
#include "core/tls.h"
#include "proto/base64.h"
#include "proto/proxy_proto.h"
#include "proxy/upstream_login.h"

#define T_2031_01_01 1924992000

/* ---- the fake back end -------------------------------------------------- */

enum fake_tls { F_PLAIN, F_IMPLICIT, F_STARTTLS };

struct step {
	const char
	    *wait; /* read lines until one starts with this; NULL: none */
	const char *send; /* then write this (NULL: nothing) */
	bool tls;	  /* then do the TLS handshake (STARTTLS) */
	bool close;	  /* then close */
	bool big;	  /* then write a 1 MiB line */
};

struct fake {
	int lfd, fd;
	SSL_CTX *ctx;
	SSL *ssl;
	enum fake_tls tls;
	bool proxy_v2; /* read a PROXY v2 header first */
	const struct step *steps;
	pthread_t th;
	char got[16384]; /* every line received, "\n"-separated */
	size_t got_len;
	char proxy_src[64];
	bool eof; /* the client closed (read to the end after the script) */
	uint16_t port;
};

static struct {
	char dir[64];
	struct pem cert;
	struct tls_client *tc;
	struct metrics *m;
	struct ul_metrics um;
} fx;

static ssize_t
f_read(struct fake *f, char *p, size_t n)
{
	if (f->ssl != NULL) {
		int r = SSL_read(f->ssl, p, (int)n);

		return r > 0 ? r : 0;
	}
	return recv(f->fd, p, n, 0);
}

static void
f_write(struct fake *f, const char *p, size_t n)
{
	if (f->ssl != NULL)
		(void)SSL_write(f->ssl, p, (int)n);
	else
		(void)send(f->fd, p, n, MSG_NOSIGNAL);
}

/* One line (without CRLF) into line, byte by byte so no byte after it is
 * taken before a TLS handshake. false at EOF. */
static bool
f_line(struct fake *f, char *line, size_t cap)
{
	size_t n = 0;
	char c;

	for (;;) {
		if (f_read(f, &c, 1) != 1)
			return false;
		if (c == '\n')
			break;
		if (c != '\r' && n + 1 < cap)
			line[n++] = c;
	}
	line[n] = '\0';
	if (f->got_len + n + 2 < sizeof(f->got)) {
		memcpy(f->got + f->got_len, line, n);
		f->got_len += n;
		f->got[f->got_len++] = '\n';
		f->got[f->got_len] = '\0';
	}
	return true;
}

static bool
f_handshake(struct fake *f)
{
	f->ssl = SSL_new(f->ctx);
	SSL_set_fd(f->ssl, f->fd);
	return SSL_accept(f->ssl) == 1;
}

/* A PROXY v2 header before anything else: keep its source. */
static void
f_proxy(struct fake *f)
{
	unsigned char hdr[256];
	size_t n = 0, want = 16;
	struct proxy_hdr h;
	char host[INET_ADDRSTRLEN];
	const struct sockaddr_in *in = (const void *)&h.src;

	while (n < want) {
		ssize_t r = recv(f->fd, hdr + n, want - n, 0);

		if (r <= 0)
			return;
		n += (size_t)r;
		if (n == 16)
			want = 16 + ((size_t)hdr[14] << 8 | hdr[15]);
		if (want > sizeof(hdr))
			return;
	}
	if (proxy_proto_parse(hdr, n, &h, NULL) != PROXY_OK || h.local ||
	    h.len != n || h.src.ss_family != AF_INET)
		return;
	inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
	snprintf(f->proxy_src, sizeof(f->proxy_src), "%s:%u", host,
	    ntohs(in->sin_port));
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	char line[8192];

	int one = 1;

	f->fd = accept(f->lfd, NULL, NULL);
	if (f->fd == -1)
		return NULL;
	setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (f->proxy_v2)
		f_proxy(f);
	if (f->tls == F_IMPLICIT && !f_handshake(f))
		goto out;
	for (const struct step *s = f->steps;
	     s->wait || s->send || s->tls || s->close || s->big; s++) {
		if (s->wait != NULL) {
			bool found = false;

			while (!found && f_line(f, line, sizeof(line)))
				found = strncmp(line, s->wait,
					    strlen(s->wait)) == 0;
			if (!found) {
				f->eof = true;
				goto out;
			}
		}
		if (s->send != NULL)
			f_write(f, s->send, strlen(s->send));
		if (s->big) {
			char *big = malloc(1 << 20);

			memset(big, 'x', 1 << 20);
			memcpy(big, "* OK ", 5);
			f_write(f, big, 1 << 20);
			f_write(f, "\r\n", 2);
			free(big);
		}
		if (s->tls && !f_handshake(f))
			goto out;
		if (s->close)
			goto out;
	}
	/* the rest of what the client says, until it closes */
	while (f_line(f, line, sizeof(line)))
		;
	f->eof = true;
out:
	if (f->ssl != NULL) {
		SSL_free(f->ssl);
		f->ssl = NULL;
	}
	close(f->fd);
	return NULL;
}

static void
fake_start(struct fake *f, const struct step *steps, enum fake_tls tls)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int one = 1;

	memset(f, 0, sizeof(*f));
	f->steps = steps;
	f->tls = tls;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &len), 0);
	f->port = ntohs(sin.sin_port);
	if (tls != F_PLAIN) {
		f->ctx = SSL_CTX_new(TLS_server_method());
		assert_int_equal(SSL_CTX_use_certificate_file(f->ctx,
				     fx.cert.cert, SSL_FILETYPE_PEM),
		    1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(f->ctx,
				     fx.cert.key, SSL_FILETYPE_PEM),
		    1);
	}
}

static void
fake_run(struct fake *f)
{
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void
fake_join(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	if (f->ctx != NULL)
		SSL_CTX_free(f->ctx);
}

/* ---- the client side ---------------------------------------------------- */

struct outcome {
	bool called;
	enum ul_status status;
	enum ul_why why;
	char capability[UL_CAPABILITY_MAX];
	char reason[UL_REASON_MAX];
	char rest[256];
	size_t rest_len;
	struct loop *l;
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
	struct outcome *o = ctx;

	assert_false(o->called);
	o->called = true;
	o->status = r->status;
	o->why = r->why;
	snprintf(o->capability, sizeof(o->capability), "%s", r->capability);
	snprintf(o->reason, sizeof(o->reason), "%s", r->reason);
	assert_true(r->rest_len < sizeof(o->rest));
	memcpy(o->rest, r->rest, r->rest_len);
	o->rest_len = r->rest_len;
	assert_true((backend != NULL) == (r->status == UL_OK));
	if (backend != NULL) {
		conn_set_handler(backend, &sink, NULL);
		conn_close(backend);
	}
	loop_stop(o->l, 0);
}

static struct sockaddr_in client_sin, local_sin;

static void
default_params(struct ul_params *p, enum ul_proto proto)
{
	memset(p, 0, sizeof(*p));
	p->proto = proto;
	p->user = "alice";
	p->master_user = "master";
	p->master_pass = "s3cret";
	client_sin.sin_family = AF_INET;
	client_sin.sin_port = htons(4242);
	inet_pton(AF_INET, "192.0.2.7", &client_sin.sin_addr);
	local_sin.sin_family = AF_INET;
	local_sin.sin_port = htons(993);
	inet_pton(AF_INET, "198.51.100.1", &local_sin.sin_addr);
	p->client = (struct sockaddr *)&client_sin;
	p->local = (struct sockaddr *)&local_sin;
	p->timeout_ms = 5000;
	p->metrics = &fx.um;
}

static struct loop *
new_loop(void)
{
	struct loop_conf conf = { .buf_count = 64,
		.buf_size = 4096,
		.metrics = fx.m };
	const char *err = NULL;
	struct loop *l = loop_new(&conf, &err);

	if (l == NULL) {
		print_message("skip: %s\n", err);
		exit(77);
	}
	return l;
}

/* Log in to fake f with p and run until done. */
static void
run_login(struct fake *f, const struct ul_params *p, struct outcome *o)
{
	struct sockaddr_in be = { .sin_family = AF_INET,
		.sin_port = htons(f->port) };
	const char *err = NULL;

	memset(o, 0, sizeof(*o));
	be.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	o->l = new_loop();
	fake_run(f);
	assert_non_null(upstream_login_start(o->l, (struct sockaddr *)&be,
	    sizeof(be), p, done, o, &err));
	assert_int_equal(loop_run(o->l), 0);
	loop_free(o->l);
	fake_join(f);
	assert_true(o->called);
}

/* A port nothing listens on: the connect is refused. */
static void
run_login_closed(const struct ul_params *p, uint16_t port, struct outcome *o)
{
	struct sockaddr_in be = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	const char *err = NULL;

	memset(o, 0, sizeof(*o));
	be.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	o->l = new_loop();
	assert_non_null(upstream_login_start(o->l, (struct sockaddr *)&be,
	    sizeof(be), p, done, o, &err));
	assert_int_equal(loop_run(o->l), 0);
	loop_free(o->l);
	assert_true(o->called);
}

/* The PLAIN response the fake must see for alice / master / s3cret. */
static const char plain_b64[] = "YWxpY2UAbWFzdGVyAHMzY3JldA==";

/* ---- IMAP ----------------------------------------------------------------- */

static void
test_imap_sasl_ir_id(void **state)
{
	static const char *const cid[] = { "name", "Thunder\"bird",
		"x-originating-ip", "10.6.6.6", "version", NULL };
	static const struct step steps[] = {
		{ .send = "* OK [CAPABILITY IMAP4rev1 SASL-IR ID "
			  "AUTH=PLAIN] ready\r\n" },
		{ .wait = "U2 AUTHENTICATE",
		    .send =
			"* ID NIL\r\nU1 OK ID done\r\nU2 OK [CAPABILITY "
			"IMAP4rev1 IDLE MOVE] Logged in\r\n* 3 EXISTS\r\n" },
		{ 0 },
	};
	struct fake f;
	struct ul_params p;
	struct outcome o;

	(void)state;
	fake_start(&f, steps, F_PLAIN);
	default_params(&p, UL_IMAP);
	p.client_id = cid;
	p.client_id_n = 3;
	p.sid = 0xc0ffee;
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	assert_string_equal(o.capability, "IMAP4rev1 IDLE MOVE");
	assert_int_equal(o.rest_len, strlen("* 3 EXISTS\r\n"));
	assert_memory_equal(o.rest, "* 3 EXISTS\r\n", o.rest_len);
	/* ID first, ours, the client's name; no client x- key */
	assert_non_null(strstr(f.got,
	    "U1 ID (\"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" "
	    "\"4242\" \"x-connected-ip\" \"198.51.100.1\" "
	    "\"x-connected-port\" \"993\" \"x-session-ext-id\" "
	    "\"0000000000c0ffee\" \"name\" \"Thunder\\\"bird\" "
	    "\"version\" NIL)\n"));
	assert_null(strstr(f.got, "10.6.6.6"));
	assert_non_null(strstr(f.got,
	    "U2 AUTHENTICATE PLAIN YWxpY2UAbWFzdGVyAHMz"
	    "Y3JldA==\n"));
	assert_true(f.eof);
}

static void
test_imap_continuation(void **state)
{
	static const struct step steps[] = {
		{ .send = "* OK ready\r\n" },
		{ .wait = "U1 CAPABILITY",
		    .send = "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nU1 OK\r\n" },
		{ .wait = "U2 AUTHENTICATE PLAIN", .send = "+ \r\n" },
		{ .wait = plain_b64, .send = "U2 OK Logged in\r\n" },
		{ .wait = "U3 CAPABILITY",
		    .send = "* CAPABILITY IMAP4rev1 X-AFTER\r\nU3 OK\r\n" },
		{ 0 },
	};
	struct fake f;
	struct ul_params p;
	struct outcome o;

	(void)state;
	fake_start(&f, steps, F_PLAIN);
	default_params(&p, UL_IMAP);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	assert_string_equal(o.capability, "IMAP4rev1 X-AFTER");
	assert_int_equal(o.rest_len, 0);
	assert_null(strstr(f.got, " ID ")); /* not announced: not sent */
}

static void
imap_answer(const char *answer, enum ul_status st, enum ul_why why)
{
	struct step steps[] = {
		{ .send = "* OK [CAPABILITY IMAP4rev1 SASL-IR] ready\r\n" },
		{ .wait = "U1 AUTHENTICATE", .send = answer },
		{ 0 },
	};
	struct fake f;
	struct ul_params p;
	struct outcome o;

	fake_start(&f, steps, F_PLAIN);
	default_params(&p, UL_IMAP);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, st);
	assert_int_equal(o.why, why);
	assert_null(strstr(o.reason, "s3cret"));
}

static void
test_imap_refusals(void **state)
{
	(void)state;
	imap_answer("U1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
	    UL_REFUSED, UL_WHY_REFUSED);
	imap_answer("U1 NO no reason\r\n", UL_REFUSED, UL_WHY_REFUSED);
	imap_answer("U1 NO [UNAVAILABLE] try later\r\n", UL_TEMP,
	    UL_WHY_SERVER);
	imap_answer("U1 BAD what\r\n", UL_TEMP, UL_WHY_GARBAGE);
	imap_answer("* BYE shutting down\r\n", UL_TEMP, UL_WHY_SERVER);
	imap_answer("U7 OK wrong tag\r\n", UL_TEMP, UL_WHY_GARBAGE);
	imap_answer("+ more?\r\n", UL_TEMP, UL_WHY_GARBAGE);
	imap_answer("* ID (\"k\" {3}\r\n", UL_TEMP, UL_WHY_LIMIT);

	/* an untagged flood that never reaches the tagged answer */
	char *flood = malloc(300 * 12 + 1);

	for (int i = 0; i < 300; i++)
		memcpy(flood + 12 * i, "* 1 EXISTS\r\n", 12);
	flood[300 * 12] = '\0';
	imap_answer(flood, UL_TEMP, UL_WHY_LIMIT);
	free(flood);
}

/* A back end that is not what it should be: nothing is sent to it. */
static void
hostile(const struct step *steps, enum ul_tls tls, enum ul_why why,
    bool nothing_sent)
{
	struct fake f;
	struct ul_params p;
	struct outcome o;

	fake_start(&f, steps, F_PLAIN);
	default_params(&p, UL_IMAP);
	p.timeout_ms = 300;
	p.tls = tls;
	p.tls_ctx = fx.tc;
	p.sni = "localhost";
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_TEMP);
	assert_int_equal(o.why, why);
	if (nothing_sent)
		assert_int_equal(f.got_len, 0);
	assert_null(strstr(f.got, plain_b64));
}

static void
test_imap_hostile(void **state)
{
	static const struct step garbage[] = {
		{ .send = "SSH-2.0-OpenSSH_9.2p1\r\n" }, { 0 }
	};
	static const struct step silent[] = { { .wait = "never" }, { 0 } };
	static const struct step half[] = {
		{ .send = "* OK [CAPABIL", .close = true }, { 0 }
	};
	static const struct step big[] = { { .big = true }, { 0 } };
	static const struct step preauth[] = {
		{ .send = "* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n" }, { 0 }
	};
	static const struct step no_tls[] = {
		{ .send = "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] "
			  "hi\r\n" },
		{ 0 }
	};
	static const struct step no_tls_asked[] = { { .send = "* OK hi\r\n" },
		{ .wait = "U1 CAPABILITY",
		    .send = "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nU1 OK\r\n" },
		{ 0 } };
	static const struct step tls_refused[] = {
		{ .send = "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n" },
		{ .wait = "U1 STARTTLS", .send = "U1 NO not today\r\n" }, { 0 }
	};

	(void)state;
	hostile(garbage, UL_TLS_NONE, UL_WHY_GARBAGE, true);
	hostile(silent, UL_TLS_NONE, UL_WHY_TIMEOUT, true);
	hostile(half, UL_TLS_NONE, UL_WHY_CLOSED, true);
	hostile(big, UL_TLS_NONE, UL_WHY_LIMIT, true);
	hostile(preauth, UL_TLS_NONE, UL_WHY_PREAUTH, true);
	hostile(no_tls, UL_TLS_STARTTLS, UL_WHY_NO_STARTTLS, true);
	hostile(no_tls_asked, UL_TLS_STARTTLS, UL_WHY_NO_STARTTLS, false);
	hostile(tls_refused, UL_TLS_STARTTLS, UL_WHY_NO_STARTTLS, false);
}

static void
test_imap_starttls_injection(void **state)
{
	/* the injected CAPABILITY and OK ride in the segment of the OK */
	static const struct step steps[] = {
		{ .send = "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n" },
		{ .wait = "U1 STARTTLS",
		    .send = "U1 OK Begin TLS\r\n* CAPABILITY IMAP4rev1 SASL-IR "
			    "AUTH=PLAIN\r\nU2 OK [CAPABILITY INJECTED] ok\r\n",
		    .tls = true },
		{ .wait = "U2 CAPABILITY",
		    .send = "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nU2 OK\r\n" },
		{ .wait = "U3 AUTHENTICATE PLAIN", .send = "+ \r\n" },
		{ .wait = plain_b64,
		    .send = "U3 OK [CAPABILITY IMAP4rev1 TLSED] in\r\n" },
		{ 0 },
	};
	struct fake f;
	struct ul_params p;
	struct outcome o;

	double discarded0 = metrics_value(fx.m, fx.um.starttls_discarded);

	(void)state;
	fake_start(&f, steps, F_STARTTLS);
	default_params(&p, UL_IMAP);
	p.tls = UL_TLS_STARTTLS;
	p.tls_ctx = fx.tc;
	p.sni = "localhost";
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	assert_string_equal(o.capability, "IMAP4rev1 TLSED");
	assert_true(
	    metrics_value(fx.m, fx.um.starttls_discarded) == discarded0 + 1);
	assert_null(strstr(f.got, "U2 AUTHENTICATE"));
}

static void
test_imap_implicit_tls(void **state)
{
	static const struct step steps[] = {
		{ .send = "* OK [CAPABILITY IMAP4rev1 SASL-IR] hi\r\n" },
		{ .wait = "U1 AUTHENTICATE PLAIN " /* with the IR */,
		    .send = "U1 OK [CAPABILITY IMAP4rev1] in\r\n" },
		{ 0 },
	};
	struct fake f;
	struct ul_params p;
	struct outcome o;

	(void)state;
	fake_start(&f, steps, F_IMPLICIT);
	default_params(&p, UL_IMAP);
	p.tls = UL_TLS_IMPLICIT;
	p.tls_ctx = fx.tc;
	p.sni = "localhost";
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);

	/* the certificate is for localhost, not this name */
	fake_start(&f, steps, F_IMPLICIT);
	p.sni = "mail.example.test";
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_TEMP);
	assert_int_equal(o.why, UL_WHY_TLS);
	assert_int_equal(f.got_len, 0);
}

static void
test_proxy_v2(void **state)
{
	static const struct step steps[] = {
		{ .send = "* OK [CAPABILITY IMAP4rev1 SASL-IR] hi\r\n" },
		{ .wait = "U1 AUTHENTICATE", .send = "U1 OK in\r\n" },
		{ .wait = "U2 CAPABILITY",
		    .send = "* CAPABILITY IMAP4rev1\r\nU2 OK\r\n" },
		{ 0 },
	};
	struct fake f;
	struct ul_params p;
	struct outcome o;

	(void)state;
	fake_start(&f, steps, F_IMPLICIT);
	f.proxy_v2 = true;
	default_params(&p, UL_IMAP);
	p.proxy_v2 = true;
	p.tls = UL_TLS_IMPLICIT;
	p.tls_ctx = fx.tc;
	p.sni = "localhost";
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	assert_string_equal(f.proxy_src, "192.0.2.7:4242");
	assert_string_equal(o.capability, "IMAP4rev1");
}

/* ---- POP3 and SMTP -------------------------------------------------------- */

static void
test_pop3(void **state)
{
	static const struct step ok[] = { { .send = "+OK Dovecot ready.\r\n" },
		{ .wait = "AUTH PLAIN YWxpY2UAbWFzdGVyAHMzY3JldA==",
		    .send = "+OK Logged in.\r\n" },
		{ 0 } };
	static const struct step refused[] = { { .send = "+OK ready\r\n" },
		{ .wait = "AUTH PLAIN",
		    .send = "-ERR [AUTH] Authentication failed.\r\n" },
		{ 0 } };
	static const struct step temp[] = { { .send = "+OK ready\r\n" },
		{ .wait = "AUTH PLAIN", .send = "-ERR [SYS/TEMP] later\r\n" },
		{ 0 } };
	static const struct step stls[] = { { .send = "+OK ready\r\n" },
		{ .wait = "CAPA",
		    .send = "+OK\r\nTOP\r\nSTLS\r\nSASL PLAIN\r\n.\r\n" },
		{ .wait = "STLS",
		    .send = "+OK Begin TLS\r\n+OK injected\r\n",
		    .tls = true },
		{ .wait = "AUTH PLAIN", .send = "+OK Logged in.\r\n" }, { 0 } };
	static const struct step no_stls[] = { { .send = "+OK ready\r\n" },
		{ .wait = "CAPA", .send = "+OK\r\nTOP\r\n.\r\n" }, { 0 } };
	struct fake f;
	struct ul_params p;
	struct outcome o;

	double refused0 = metrics_value(fx.m, fx.um.logins[UL_WHY_REFUSED]);

	(void)state;
	default_params(&p, UL_POP3);
	fake_start(&f, ok, F_PLAIN);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	fake_start(&f, refused, F_PLAIN);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_REFUSED);
	assert_true(
	    metrics_value(fx.m, fx.um.logins[UL_WHY_REFUSED]) == refused0 + 1);
	fake_start(&f, temp, F_PLAIN);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_TEMP);
	assert_int_equal(o.why, UL_WHY_SERVER);
	p.tls = UL_TLS_STARTTLS;
	p.tls_ctx = fx.tc;
	p.sni = "localhost";
	fake_start(&f, stls, F_STARTTLS);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	fake_start(&f, no_stls, F_PLAIN);
	run_login(&f, &p, &o);
	assert_int_equal(o.why, UL_WHY_NO_STARTTLS);
	assert_null(strstr(f.got, "AUTH"));
}

static void
test_smtp(void **state)
{
	static const struct step xclient[] = { { .send = "220 mx ESMTP\r\n" },
		{ .wait = "EHLO gate.test",
		    .send =
			"250-mx\r\n250-XCLIENT NAME ADDR PORT HELO LOGIN\r\n"
			"250 AUTH PLAIN\r\n" },
		{ .wait = "XCLIENT ", .send = "220 mx ESMTP again\r\n" },
		{ .wait = "EHLO gate.test",
		    .send = "250-mx\r\n250 SIZE 1\r\n" },
		{ 0 } };
	static const struct step auth[] = {
		{ .send = "220-mx ESMTP\r\n220 more\r\n" },
		{ .wait = "EHLO", .send = "250-mx\r\n250 AUTH PLAIN\r\n" },
		{ .wait = "AUTH PLAIN YWxpY2UAbWFzdGVyAHMzY3JldA==",
		    .send = "235 2.7.0 ok\r\n" },
		{ 0 }
	};
	static const struct step refused[] = { { .send = "220 mx\r\n" },
		{ .wait = "EHLO", .send = "250 mx\r\n" },
		{ .wait = "AUTH", .send = "535 5.7.8 no\r\n" }, { 0 } };
	static const struct step busy[] = { { .send = "421 4.3.2 busy\r\n" },
		{ 0 } };
	static const struct step stls[] = { { .send = "220 mx\r\n" },
		{ .wait = "EHLO", .send = "250-mx\r\n250 STARTTLS\r\n" },
		{ .wait = "STARTTLS",
		    .send = "220 go\r\n250 injected\r\n",
		    .tls = true },
		{ .wait = "EHLO", .send = "250-mx\r\n250 AUTH PLAIN\r\n" },
		{ .wait = "AUTH PLAIN", .send = "235 ok\r\n" }, { 0 } };
	struct fake f;
	struct ul_params p;
	struct outcome o;

	(void)state;
	default_params(&p, UL_SMTP);
	p.helo = "gate.test";
	p.client_helo = "client+x.example";
	p.xclient = true;
	fake_start(&f, xclient, F_PLAIN);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	assert_non_null(strstr(f.got,
	    "XCLIENT ADDR=192.0.2.7 PORT=4242 HELO=client+2Bx.example "
	    "LOGIN=alice\n"));
	assert_null(strstr(f.got, "AUTH"));

	/* IPv6 as Postfix writes it; IPv4-mapped as IPv4 */
	struct sockaddr_in6 c6 = { .sin6_family = AF_INET6,
		.sin6_port = htons(4243) };
	const struct sockaddr *v4 = p.client;

	p.client = (struct sockaddr *)&c6;
	inet_pton(AF_INET6, "2001:db8::7", &c6.sin6_addr);
	fake_start(&f, xclient, F_PLAIN);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	assert_non_null(
	    strstr(f.got, "XCLIENT ADDR=IPV6:2001:db8::7 PORT=4243 "));
	inet_pton(AF_INET6, "::ffff:192.0.2.9", &c6.sin6_addr);
	fake_start(&f, xclient, F_PLAIN);
	run_login(&f, &p, &o);
	assert_non_null(strstr(f.got, "XCLIENT ADDR=192.0.2.9 PORT=4243 "));
	p.client = v4;

	fake_start(&f, auth, F_PLAIN);
	run_login(&f, &p, &o); /* XCLIENT wanted, not offered: AUTH */
	assert_int_equal(o.status, UL_OK);
	p.xclient = false;
	fake_start(&f, refused, F_PLAIN);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_REFUSED);
	fake_start(&f, busy, F_PLAIN);
	run_login(&f, &p, &o);
	assert_int_equal(o.why, UL_WHY_SERVER);
	p.tls = UL_TLS_STARTTLS;
	p.tls_ctx = fx.tc;
	p.sni = "localhost";
	fake_start(&f, stls, F_STARTTLS);
	run_login(&f, &p, &o);
	assert_int_equal(o.status, UL_OK);
	assert_int_equal(o.rest_len, 0);
}

/* ---- cancel, connect failure ------------------------------------------------ */

struct cancel_ctx {
	struct upstream_login *ul;
	struct loop *l;
	struct timer t;
};

static void
cancel_now(struct timer *t, void *arg)
{
	struct cancel_ctx *cc = arg;

	(void)t;
	upstream_login_cancel(cc->ul);
	loop_stop(cc->l, 1000);
}

static void
test_cancel_and_refused(void **state)
{
	static const struct step silent[] = { { .send = "* OK hi\r\n" },
		{ .wait = "never" }, { 0 } };
	struct sockaddr_in be = { .sin_family = AF_INET };
	struct fake f;
	struct ul_params p;
	struct outcome o;
	struct cancel_ctx cc;
	const char *err = NULL;

	(void)state;
	fake_start(&f, silent, F_PLAIN);
	default_params(&p, UL_IMAP);
	memset(&o, 0, sizeof(o));
	be.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	be.sin_port = htons(f.port);
	cc.l = o.l = new_loop();
	fake_run(&f);
	cc.ul = upstream_login_start(o.l, (struct sockaddr *)&be, sizeof(be),
	    &p, done, &o, &err);
	assert_non_null(cc.ul);
	timer_init(&cc.t, o.l, cancel_now, &cc);
	timer_set(&cc.t, 200);
	assert_int_equal(loop_run(o.l), 0);
	loop_free(o.l);
	fake_join(&f);
	assert_false(o.called);
	assert_true(f.eof); /* the back end saw the close */
	assert_true(metrics_value(fx.m, fx.um.logins[UL_WHY_CANCELLED]) == 1);

	/* nothing listens there any more */
	run_login_closed(&p, ntohs(be.sin_port), &o);
	assert_int_equal(o.status, UL_TEMP);
	assert_int_equal(o.why, UL_WHY_CONNECT);

	/* bad parameters: NULL, done never called */
	p.user = NULL;
	o.l = new_loop();
	assert_null(upstream_login_start(o.l, (struct sockaddr *)&be,
	    sizeof(be), &p, done, &o, &err));
	assert_non_null(err);
	loop_free(o.l);
}

/* ---- setup ------------------------------------------------------------- */

static int
group_setup(void **state)
{
	struct tls_client_conf c = { .verify = true };
	const char *err = NULL;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	fx.m = metrics_new("ringgate", 1);
	if (fx.m == NULL || upstream_login_metrics(fx.m, &fx.um) == -1)
		return -1;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_ul.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	make_cert(fx.dir, &fx.cert, "be", false, "localhost", "DNS:localhost",
	    T_2031_01_01);
	c.ca_file = fx.cert.cert;
	fx.tc = tls_client_new(&c, &err);
	return fx.tc != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	tls_client_unref(&fx.tc);
	metrics_free(fx.m);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx.dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_sasl_ir_id),
		cmocka_unit_test(test_imap_continuation),
		cmocka_unit_test(test_imap_refusals),
		cmocka_unit_test(test_imap_hostile),
		cmocka_unit_test(test_imap_starttls_injection),
		cmocka_unit_test(test_imap_implicit_tls),
		cmocka_unit_test(test_proxy_v2),
		cmocka_unit_test(test_pop3),
		cmocka_unit_test(test_smtp),
		cmocka_unit_test(test_cancel_and_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
