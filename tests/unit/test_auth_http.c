/*
 * test_auth_http.c - the HTTP hook back-end (auth/backend_http.c) against
 * a tiny auth_http responder running in a thread of the test: the request
 * as nginx would send it (escaping, protocol, attempt, client, SMTP
 * fields, extra headers), OK with Auth-Server/Port as the entry's route,
 * refusals, Auth-Wait as a failure with a delay, every broken answer
 * (garbage, status 500, no Auth-Status, silence past the timeout, a close
 * without answer) and the service down as TEMPFAIL, keep-alive reuse, a
 * kept connection the service closed, the connection bound, the URL and
 * header checks, and the verify path (auth_verify_login).
 *
 * The responder picks its answer from the Auth-User header, so each test
 * names the behaviour it wants; it serves one connection at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"
#include "proto/http_resp.h"

#define TIMEOUT_MS 400

struct responder {
	int lfd;
	uint16_t port;
	pthread_t th;
	atomic_bool stop;
	atomic_int accepts, requests;
	pthread_mutex_t lock;
	char last[8192]; /* the last request head */
};

static struct responder R;

static const char *
header_value(const char *req, const char *name, char *out, size_t max)
{
	char pat[64];
	const char *p;
	size_t n;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	if ((p = strstr(req, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	n = strcspn(p, "\r");
	snprintf(out, max, "%.*s", (int)n, p);
	return out;
}

static void
say(int fd, const char *s)
{
	(void)!write(fd, s, strlen(s));
}

/* One request's answer; returns false when the connection must close. */
static bool
answer(int fd, const char *req)
{
	char user[256] = "";

	header_value(req, "Auth-User", user, sizeof(user));
	if (strcasecmp(user, "ok@x") == 0 || strcasecmp(user, "pass@x") == 0) {
		say(fd,
		    "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\n"
		    "Auth-Server: 10.0.0.5\r\nAuth-Port: 1143\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strcasecmp(user, "v6@x") == 0) {
		say(fd,
		    "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\n"
		    "Auth-Server: ::1\r\nAuth-Port: 1143\r\n"
		    "Auth-User: renamed@x\r\nContent-Length: 0\r\n\r\n");
	} else if (strcasecmp(user, "noroute@x") == 0) {
		say(fd, "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n\r\n");
		return false; /* 1.0 without length: close */
	} else if (strcasecmp(user, "bad@x") == 0) {
		say(fd,
		    "HTTP/1.1 200 OK\r\nAuth-Status: Invalid login or "
		    "password\r\nAuth-Error-Code: 535 5.7.8\r\n"
		    "Content-Length: 5\r\n\r\nnope!");
	} else if (strcasecmp(user, "wait@x") == 0) {
		say(fd,
		    "HTTP/1.1 200 OK\r\nAuth-Status: Temporary failure, "
		    "try again later\r\nAuth-Wait: 3\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strcasecmp(user, "nostatus@x") == 0) {
		say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	} else if (strcasecmp(user, "500@x") == 0) {
		say(fd,
		    "HTTP/1.1 500 Oops\r\nAuth-Status: OK\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strcasecmp(user, "garbage@x") == 0) {
		say(fd, "* OK IMAP4rev1 ready\r\n\r\n");
		return false;
	} else if (strcasecmp(user, "halfport@x") == 0) {
		say(fd,
		    "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\n"
		    "Auth-Server: 10.0.0.5\r\nContent-Length: 0\r\n\r\n");
	} else if (strcasecmp(user, "slow@x") == 0) {
		usleep((TIMEOUT_MS + 300) * 1000);
		return false;
	} else if (strcasecmp(user, "hold@x") == 0) {
		usleep(300 * 1000);
		say(fd,
		    "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\n"
		    "Content-Length: 0\r\n\r\n");
	} else if (strcasecmp(user, "close@x") == 0) {
		return false;
	} else if (strcasecmp(user, "okclose@x") == 0) {
		/* answers keep-alive, then closes the kept connection */
		say(fd,
		    "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\n"
		    "Content-Length: 0\r\n\r\n");
		usleep(50 * 1000);
		return false;
	} else {
		say(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	}
	return true;
}

/* Requests on one connection until it closes or an answer closes it. */
static void
serve(int fd)
{
	char buf[8192];
	size_t have = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *end;
		ssize_t n;

		if (atomic_load(&R.stop))
			return;
		if (poll(&p, 1, 50) <= 0)
			continue;
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
			size_t hl = (size_t)(end + 4 - buf);

			pthread_mutex_lock(&R.lock);
			snprintf(R.last, sizeof(R.last), "%.*s", (int)hl, buf);
			pthread_mutex_unlock(&R.lock);
			atomic_fetch_add(&R.requests, 1);
			if (!answer(fd, buf))
				return;
			memmove(buf, buf + hl, have - hl + 1);
			have -= hl;
		}
	}
}

/* One thread per connection, so a test that fails with a connection
 * still open does not stall the next one. */
static void *
conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;

	serve(fd);
	close(fd);
	return NULL;
}

static void *
responder_main(void *arg)
{
	pthread_t th;

	(void)arg;
	while (!atomic_load(&R.stop)) {
		struct pollfd p = { .fd = R.lfd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((fd = accept(R.lfd, NULL, NULL)) == -1)
			continue;
		atomic_fetch_add(&R.accepts, 1);
		if (pthread_create(&th, NULL, conn_main,
			(void *)(intptr_t)fd) != 0)
			close(fd);
		else
			pthread_detach(th);
	}
	return NULL;
}

static int
setup(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	(void)state;
	memset(&R, 0, sizeof(R));
	pthread_mutex_init(&R.lock, NULL);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	R.lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (R.lfd == -1 || bind(R.lfd, (struct sockaddr *)&sin, len) == -1 ||
	    listen(R.lfd, 16) == -1 ||
	    getsockname(R.lfd, (struct sockaddr *)&sin, &len) == -1)
		return -1;
	R.port = ntohs(sin.sin_port);
	return pthread_create(&R.th, NULL, responder_main, NULL) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	atomic_store(&R.stop, true);
	pthread_join(R.th, NULL);
	close(R.lfd);
	return 0;
}

static struct auth_http *
new_http_h(unsigned conns, unsigned timeout_ms, const char *const *headers,
    unsigned nheaders)
{
	char url[64];
	struct auth_http_conf c = { .url = url,
		.timeout_ms = timeout_ms,
		.max_connections = conns,
		.headers = headers,
		.nheaders = nheaders };
	const char *err = NULL;
	struct auth_http *h;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/mail/auth", R.port);
	h = auth_http_new(&c, &err);
	assert_non_null(h);
	return h;
}

static struct auth_http *
new_http(unsigned conns, const char *const *headers, unsigned nheaders)
{
	return new_http_h(conns, TIMEOUT_MS, headers, nheaders);
}

static struct auth_http *
new_http_t(unsigned conns, unsigned timeout_ms)
{
	return new_http_h(conns, timeout_ms, NULL, 0);
}

static enum auth_status
ask(struct auth_http *h, const char *user, const char *pw,
    const struct auth_login_info *info, struct auth_entry **e, uint32_t *wait)
{
	struct auth_backend *b = auth_http_backend(h);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	const char *err = NULL;

	sin.sin_addr.s_addr = htonl(0xc0000207); /* 192.0.2.7 */
	enum auth_status st;

	st = b->ops->verify_login(b, user, pw, strlen(pw),
	    (struct sockaddr *)&sin, info, e, wait, &err);
	if (st == AUTH_TEMPFAIL && getenv("TEST_VERBOSE") != NULL)
		fprintf(stderr, "%s: %s\n", user, err);
	return st;
}

static void
last_header(const char *name, char *out, size_t max)
{
	pthread_mutex_lock(&R.lock);
	if (header_value(R.last, name, out, max) == NULL)
		snprintf(out, max, "(none)");
	pthread_mutex_unlock(&R.lock);
}

static void
test_ok_request(void **state)
{
	static const char *const extra[] = { "X-Key: s3cret" };
	struct auth_login_info info = { .protocol = "smtp",
		.attempt = 3,
		.helo = "client.example" };
	struct auth_http *h = new_http(2, extra, 1);
	struct auth_entry *e = NULL;
	uint32_t wait = 7;
	char v[256];

	(void)state;
	assert_int_equal(
	    ask(h, "ok@x", "p a%s\"#'\x01\xc3\xa9", &info, &e, &wait), AUTH_OK);
	assert_non_null(e);
	assert_int_equal(wait, 0);
	assert_string_equal(e->user, "ok@x");
	assert_string_equal(e->host, "10.0.0.5:1143");
	assert_string_equal(auth_entry_field(e, "auth_server"), "10.0.0.5");
	assert_string_equal(auth_entry_field(e, "auth_port"), "1143");
	auth_entry_unref(&e);

	pthread_mutex_lock(&R.lock);
	assert_memory_equal(R.last, "GET /mail/auth HTTP/1.1\r\n", 25);
	pthread_mutex_unlock(&R.lock);
	last_header("Auth-Pass", v, sizeof(v));
	assert_string_equal(v, "p%20a%25s%22%23%27%01%C3%A9");
	last_header("Auth-Method", v, sizeof(v));
	assert_string_equal(v, "plain");
	last_header("Auth-Protocol", v, sizeof(v));
	assert_string_equal(v, "smtp");
	last_header("Auth-Login-Attempt", v, sizeof(v));
	assert_string_equal(v, "3");
	last_header("Client-IP", v, sizeof(v));
	assert_string_equal(v, "192.0.2.7");
	last_header("Client-Host", v, sizeof(v));
	assert_string_equal(v, "[UNAVAILABLE]");
	last_header("Auth-SMTP-Helo", v, sizeof(v));
	assert_string_equal(v, "client.example");
	/* a value that could start a header of its own is left out */
	info.helo = "evil\r\nAuth-Status: OK";
	assert_int_equal(ask(h, "ok@x", "pw", &info, &e, &wait), AUTH_OK);
	auth_entry_unref(&e);
	last_header("Auth-SMTP-Helo", v, sizeof(v));
	assert_string_equal(v, "(none)");
	last_header("X-Key", v, sizeof(v));
	assert_string_equal(v, "s3cret");
	last_header("Host", v, sizeof(v));
	assert_non_null(strstr(v, "127.0.0.1:"));
	auth_http_free(&h);
}

static void
test_route_forms(void **state)
{
	struct auth_http *h = new_http(2, NULL, 0);
	struct auth_entry *e = NULL;
	uint32_t wait;

	(void)state;
	assert_int_equal(ask(h, "V6@x", "pw", NULL, &e, &wait), AUTH_OK);
	/* the responder saw the name as given; the entry is lowercased */
	assert_string_equal(e->host, "[::1]:1143");
	assert_string_equal(e->user, "v6@x");
	assert_string_equal(auth_entry_field(e, "auth_user"), "renamed@x");
	auth_entry_unref(&e);
	assert_int_equal(ask(h, "noroute@x", "pw", NULL, &e, &wait), AUTH_OK);
	assert_null(e->host);
	auth_entry_unref(&e);
	auth_http_free(&h);
}

static void
test_refusals(void **state)
{
	struct auth_http *h = new_http(2, NULL, 0);
	struct auth_entry *e = NULL;
	struct auth_http_stats st;
	uint32_t wait = 0;

	(void)state;
	assert_int_equal(ask(h, "bad@x", "pw", NULL, &e, &wait), AUTH_FAIL);
	assert_null(e);
	assert_int_equal(wait, 0);
	assert_int_equal(ask(h, "wait@x", "pw", NULL, &e, &wait), AUTH_FAIL);
	assert_null(e);
	assert_int_equal(wait, 3000);
	auth_http_stats(h, &st);
	assert_int_equal(st.fail, 2);
	assert_int_equal(st.waits, 1);
	/* the body of the refusal was read: the connection was kept */
	assert_int_equal(st.connects, 1);
	auth_http_free(&h);
}

static void
test_broken_answers(void **state)
{
	static const char *const users[] = { "nostatus@x", "500@x", "garbage@x",
		"halfport@x", "close@x", "slow@x" };
	struct auth_http *h = new_http(2, NULL, 0);
	struct auth_entry *e = NULL;
	struct auth_http_stats st;
	uint32_t wait;

	(void)state;
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		assert_int_equal(ask(h, users[i], "pw", NULL, &e, &wait),
		    AUTH_TEMPFAIL);
		assert_null(e);
	}
	/* and it still works afterwards */
	assert_int_equal(ask(h, "ok@x", "pw", NULL, &e, &wait), AUTH_OK);
	auth_entry_unref(&e);
	auth_http_stats(h, &st);
	assert_int_equal(st.tempfail, 6);
	assert_int_equal(st.ok, 1);
	auth_http_free(&h);
}

static void
test_keep_alive(void **state)
{
	struct auth_http *h = new_http(2, NULL, 0);
	struct auth_entry *e = NULL;
	struct auth_http_stats st;
	int before = atomic_load(&R.accepts);
	uint32_t wait;

	(void)state;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ask(h, "ok@x", "pw", NULL, &e, &wait),
		    AUTH_OK);
		auth_entry_unref(&e);
	}
	assert_int_equal(atomic_load(&R.accepts) - before, 1);
	auth_http_stats(h, &st);
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.reused, 4);

	/* the service closes the kept connection: the next login works on
	 * a fresh one */
	assert_int_equal(ask(h, "okclose@x", "pw", NULL, &e, &wait), AUTH_OK);
	auth_entry_unref(&e);
	usleep(150 * 1000);
	assert_int_equal(ask(h, "ok@x", "pw", NULL, &e, &wait), AUTH_OK);
	auth_entry_unref(&e);
	auth_http_stats(h, &st);
	assert_int_equal(st.connects, 2);
	auth_http_free(&h);
}

static void
test_down(void **state)
{
	struct auth_http_conf c = { .url = "http://127.0.0.1:1/x",
		.timeout_ms = TIMEOUT_MS };
	const char *err = NULL;
	struct auth_http *h = auth_http_new(&c, &err);
	struct auth_backend *b;
	struct auth_entry *e = NULL;
	uint32_t wait;

	(void)state;
	assert_non_null(h);
	b = auth_http_backend(h);
	assert_int_equal(b->ops->verify_login(b, "ok@x", "pw", 2, NULL, NULL,
			     &e, &wait, &err),
	    AUTH_TEMPFAIL);
	assert_non_null(err);
	/* no lookup by name: the service only answers logins */
	assert_int_equal(auth_lookup(b, "ok@x", &e, &err),
	    AUTH_LOOKUP_NOTFOUND);
	auth_http_free(&h);
}

static void
test_conf_checks(void **state)
{
	static const char *const bad_urls[] = { "https://127.0.0.1/", "http://",
		"http://127.0.0.1:0/", "http://127.0.0.1:99999/",
		"http://[::1/", "http://127.0.0.1:80x/", "ftp://h/",
		"http://127.0.0.1/a b", "http://no.such.host.invalid/" };
	static const char *const bad_hdr[] = { "X Key: v" };
	static const char *const bad_hdr2[] = { "NoColon" };
	static const char *const bad_hdr3[] = { "X-A: a\r\nX-B: b" };
	struct auth_http_conf c = { 0 };
	const char *err;
	struct auth_http *h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		c.url = bad_urls[i];
		err = NULL;
		h = auth_http_new(&c, &err);
		if (h != NULL)
			fail_msg("accepted %s", bad_urls[i]);
		assert_non_null(err);
	}
	c.url = "http://127.0.0.1:9/";
	c.nheaders = 1;
	c.headers = bad_hdr;
	assert_null(auth_http_new(&c, &err));
	c.headers = bad_hdr2;
	assert_null(auth_http_new(&c, &err));
	c.headers = bad_hdr3;
	assert_null(auth_http_new(&c, &err));
	c.nheaders = 0;
	c.url = "http://[::1]:9";
	h = auth_http_new(&c, &err);
	assert_non_null(h);
	auth_http_free(&h);
}

/* Through the verification entry point the pool uses. */
static void
test_verify_path(void **state)
{
	struct auth_http *h = new_http(2, NULL, 0);
	struct auth_verifier v = { .backend = auth_http_backend(h) };
	struct auth_login_info info = { .protocol = "pop3" };
	struct auth_result res;
	char pr[32];

	(void)state;
	auth_verify_login(&v, "ok@x", "pw", 2, NULL, &info, &res);
	assert_int_equal(res.status, AUTH_OK);
	assert_non_null(res.entry);
	assert_string_equal(res.entry->host, "10.0.0.5:1143");
	auth_entry_unref(&res.entry);
	last_header("Auth-Protocol", pr, sizeof(pr));
	assert_string_equal(pr, "pop3");

	auth_verify_login(&v, "wait@x", "pw", 2, NULL, NULL, &res);
	assert_int_equal(res.status, AUTH_FAIL);
	assert_int_equal(res.wait_ms, 3000);
	assert_null(res.entry);

	auth_verify_login(&v, "500@x", "pw", 2, NULL, NULL, &res);
	assert_int_equal(res.status, AUTH_TEMPFAIL);
	assert_int_equal(res.reason, AUTH_R_BACKEND);

	/* an empty password never leaves the host */
	int n = atomic_load(&R.requests);
	auth_verify(&v, "ok@x", "", 0, NULL, &res);
	assert_int_equal(res.status, AUTH_FAIL);
	assert_int_equal(atomic_load(&R.requests), n);
	auth_http_free(&h);
}

/* One connection allowed and a slow answer holding it: a second request
 * waits for that connection instead of opening another. */
struct hold_arg {
	struct auth_http *h;
	enum auth_status st;
};

static void *
hold_worker(void *arg)
{
	struct hold_arg *a = arg;
	struct auth_entry *e = NULL;
	uint32_t wait;

	a->st = ask(a->h, "hold@x", "pw", NULL, &e, &wait);
	auth_entry_unref(&e);
	return NULL;
}

static bool
last_is(const char *user)
{
	bool yes;

	pthread_mutex_lock(&R.lock);
	yes = strstr(R.last, user) != NULL;
	pthread_mutex_unlock(&R.lock);
	return yes;
}

static void
test_connection_bound(void **state)
{
	struct auth_http *h = new_http_t(1, 5000);
	struct hold_arg a = { .h = h };
	struct auth_http_stats st;
	struct auth_entry *e = NULL;
	pthread_t th;
	uint32_t wait;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, hold_worker, &a), 0);
	while (!last_is("hold@x"))
		usleep(5000);
	assert_int_equal(ask(h, "ok@x", "pw", NULL, &e, &wait), AUTH_OK);
	auth_entry_unref(&e);
	pthread_join(th, NULL);
	assert_int_equal(a.st, AUTH_OK);
	auth_http_stats(h, &st);
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.reused, 1);
	auth_http_free(&h);
}

static void
test_resp_parser(void **state)
{
	struct http_resp r;
	const char *v;
	size_t n;
	const char *ok = "HTTP/1.1 200 OK\r\nAuth-Status:  OK \r\n"
			 "Content-Length: 0\r\n\r\nrest";

	(void)state;
	assert_int_equal(http_parse_response(ok, strlen(ok), 8192, &r),
	    HTTP_OK);
	assert_int_equal(r.status, 200);
	assert_true(r.keep_alive);
	assert_int_equal(r.head_len, strlen(ok) - 4);
	v = http_resp_header(&r, "auth-status", &n);
	assert_int_equal(n, 2);
	assert_memory_equal(v, "OK", 2);
	assert_int_equal(http_parse_response(ok, 20, 8192, &r), HTTP_AGAIN);
	assert_int_equal(http_parse_response(ok, strlen(ok), 20, &r),
	    HTTP_TOO_LARGE);
#define BAD(s)                                                                 \
	assert_int_equal(http_parse_response(s, strlen(s), 8192, &r),          \
	    HTTP_INVALID)
	BAD("HTTP/2 200 OK\r\n\r\n");
	BAD("HTTP/1.1 20 OK\r\n\r\n");
	BAD("HTTP/1.1 200OK\r\n\r\n");
	BAD("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n");
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n");
	BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	BAD("HTTP/1.1 200 OK\r\nA\x01: b\r\n\r\n");
	BAD("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n");
#undef BAD
	v = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(http_parse_response(v, strlen(v), 8192, &r), HTTP_OK);
	assert_false(r.keep_alive);
	v = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(http_parse_response(v, strlen(v), 8192, &r), HTTP_OK);
	assert_true(r.keep_alive);
	v = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(http_parse_response(v, strlen(v), 8192, &r), HTTP_OK);
	assert_false(r.keep_alive);
	v = "HTTP/1.1 200 OK\r\n\r\n";
	assert_int_equal(http_parse_response(v, strlen(v), 8192, &r), HTTP_OK);
	assert_false(r.keep_alive);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resp_parser),
		cmocka_unit_test(test_ok_request),
		cmocka_unit_test(test_route_forms),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_broken_answers),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_down),
		cmocka_unit_test(test_conf_checks),
		cmocka_unit_test(test_verify_path),
		cmocka_unit_test(test_connection_bound),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
