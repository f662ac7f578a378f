/*
 * backend_http.c - the HTTP hook back-end: each login is one GET to a
 * site's auth service speaking nginx's auth_http protocol (request headers
 * Auth-Method, Auth-User, Auth-Pass, Auth-Protocol, Auth-Login-Attempt,
 * Client-IP, Client-Host; answer headers Auth-Status, Auth-Server,
 * Auth-Port, Auth-Wait, Auth-Error-Code), so a site leaving nginx's mail
 * proxy keeps its service unchanged. See auth.h for what the answers mean.
 *
 * Relies on running only on the verify pool's worker threads: the I/O is
 * blocking in style (non-blocking sockets and poll() against a deadline),
 * bounded by the configured timeout per phase. Connections are HTTP/1.1
 * keep-alive and kept in a mutex-protected stack shared by the workers; at
 * most max_connections are open, a worker waits (up to the timeout) for
 * one to come back when all are busy. A kept connection the service closed
 * meanwhile is found before use (a peek), or when its request fails before
 * any answer byte, and the request is then sent once more on a fresh one.
 * Answers are parsed by proto/http_resp.c with a bounded head; a body is
 * read and dropped only when small and framed by Content-Length, else the
 * connection is closed.
 *
 * Must never: answer a wrong password when the service could not be asked
 * (down, slow, garbage, a status other than 200: TEMPFAIL), run on a ring
 * thread, keep a password or put one into a log or error text.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/auth_private.h"
#include "core/log.h"
#include "proto/http_resp.h"

#define HTTP_TIMEOUT_MS 5000
#define HTTP_CONNECTIONS 8
#define HTTP_HOST_MAX 255
#define HTTP_PATH_MAX 1024
#define HTTP_HEADERS_MAX 4096 /* extra configured header bytes */
#define HTTP_REQUEST_MAX 16384
#define HTTP_HEAD_MAX 8192    /* answer head */
#define HTTP_BODY_DRAIN 65536 /* larger bodies: close instead of reading */
#define HTTP_WAIT_MAX 3600    /* seconds of Auth-Wait honoured */
#define HTTP_FIELD_MAX 256    /* Auth-Server, Auth-Port, Auth-User */

struct http_counters {
	_Atomic uint64_t requests, ok, fail, waits, tempfail;
	_Atomic uint64_t connects, reused, pool_full;
};

struct auth_http {
	struct auth_backend backend; /* first: the ops cast back */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host_header[HTTP_HOST_MAX + 8]; /* "host[:port]" as configured */
	char *path;
	char *extra; /* "Name: value\r\n"... */
	unsigned timeout_ms, max_conns;

	pthread_mutex_t lock; /* idle[], n_idle, n_busy */
	pthread_cond_t freed; /* a connection came back or closed */
	int *idle;
	unsigned n_idle, n_busy;

	struct http_counters n;
};

/* One exchange's answer, as far as it matters. */
struct answer {
	int status; /* HTTP status */
	bool keep;  /* the connection may serve another request */
	bool has_status, ok;
	char server[HTTP_FIELD_MAX], port[HTTP_FIELD_MAX], user[HTTP_FIELD_MAX];
	char error_code[HTTP_FIELD_MAX];
	uint32_t wait_s;
	bool has_wait;
};

/* set-up */
static int parse_url(struct auth_http *h, const char *url,
    const char **error_r);
static int add_headers(struct auth_http *h, const struct auth_http_conf *conf,
    const char **error_r);

/* verification */
static enum auth_lookup http_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r);
static enum auth_status http_verify_login(struct auth_backend *b,
    const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client, const struct auth_login_info *info,
    struct auth_entry **entry_r, uint32_t *wait_ms_r, const char **error_r);
static int build_request(struct auth_http *h, char *out, size_t max,
    const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client, const struct auth_login_info *info);
static enum auth_status interpret(struct auth_http *h, const char *user,
    const struct answer *a, struct auth_entry **entry_r, uint32_t *wait_ms_r,
    const char **error_r);

/* exchange */
static int exchange(struct auth_http *h, const char *req, size_t len,
    struct answer *a, const char **error_r);
static int exchange_once(struct auth_http *h, int fd, const char *req,
    size_t len, struct answer *a, bool *retry_r, const char **error_r);
static int read_answer(struct auth_http *h, int fd, uint64_t deadline,
    struct answer *a, bool *nothing_r, const char **error_r);
static void take_fields(const struct http_resp *r, struct answer *a);
static int drain_body(int fd, size_t left, uint64_t deadline);

/* connections */
static int conn_take(struct auth_http *h, bool *reused_r, const char **error_r);
static void conn_give(struct auth_http *h, int fd, bool keep);
static int conn_open(struct auth_http *h, const char **error_r);
static bool conn_alive(int fd);

/* small helpers */
static uint64_t now_ms(void);
static int wait_fd(int fd, short ev, uint64_t deadline);
static size_t escape(char *out, size_t max, const char *s, size_t n);
static bool escaped_byte(unsigned char c);
static bool header_safe(const char *v);
static int appendf(char *out, size_t max, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static const struct auth_backend_ops http_ops = {
	.name = "http",
	.lookup_nonblocking = false,
	.lookup = http_lookup,
	.verify_login = http_verify_login,
};

/* ---- public ----------------------------------------------------------- */

struct auth_http *
auth_http_new(const struct auth_http_conf *conf, const char **error_r)
{
	struct auth_http *h = calloc(1, sizeof(*h));
	pthread_condattr_t ca;

	if (h == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	h->backend.ops = &http_ops;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->freed, &ca);
	pthread_condattr_destroy(&ca);
	h->timeout_ms = conf->timeout_ms ? conf->timeout_ms : HTTP_TIMEOUT_MS;
	h->max_conns = conf->max_connections ? conf->max_connections :
					       HTTP_CONNECTIONS;
	if (conf->url == NULL || parse_url(h, conf->url, error_r) == -1 ||
	    add_headers(h, conf, error_r) == -1)
		goto fail;
	if ((h->idle = calloc(h->max_conns, sizeof(*h->idle))) == NULL) {
		*error_r = "out of memory";
		goto fail;
	}
	return h;
fail:
	if (conf->url == NULL)
		*error_r = "http: no url";
	auth_http_free(&h);
	return NULL;
}

void
auth_http_free(struct auth_http **hp)
{
	struct auth_http *h = *hp;

	if (h == NULL)
		return;
	for (unsigned i = 0; i < h->n_idle; i++)
		close(h->idle[i]);
	free(h->idle);
	free(h->path);
	free(h->extra);
	pthread_cond_destroy(&h->freed);
	pthread_mutex_destroy(&h->lock);
	free(h);
	*hp = NULL;
}

struct auth_backend *
auth_http_backend(struct auth_http *h)
{
	return &h->backend;
}

void
auth_http_stats(struct auth_http *h, struct auth_http_stats *st)
{
	st->requests = atomic_load(&h->n.requests);
	st->ok = atomic_load(&h->n.ok);
	st->fail = atomic_load(&h->n.fail);
	st->waits = atomic_load(&h->n.waits);
	st->tempfail = atomic_load(&h->n.tempfail);
	st->connects = atomic_load(&h->n.connects);
	st->reused = atomic_load(&h->n.reused);
	st->pool_full = atomic_load(&h->n.pool_full);
}

/* ---- set-up ------------------------------------------------------------ */

/* http://host[:port][/path]; host a name, an IPv4 address or [IPv6]. */
static int
parse_url(struct auth_http *h, const char *url, const char **error_r)
{
	char host[HTTP_HOST_MAX + 1], port[8] = "80";
	const char *p, *hend, *path;
	struct addrinfo hints = { 0 }, *ai = NULL;
	size_t hl;

	if (strncasecmp(url, "http://", 7) != 0) {
		*error_r = "http: url must start with http:// (no https)";
		return -1;
	}
	p = url + 7;
	if (*p == '[') {
		if ((hend = strchr(p, ']')) == NULL) {
			*error_r = "http: url: unclosed [ in host";
			return -1;
		}
		hl = (size_t)(hend - p - 1);
		memcpy(host, p + 1, hl < sizeof(host) ? hl : 0);
		hend++;
	} else {
		hend = p + strcspn(p, ":/");
		hl = (size_t)(hend - p);
		if (hl < sizeof(host))
			memcpy(host, p, hl);
	}
	if (hl == 0 || hl > HTTP_HOST_MAX) {
		*error_r = "http: url: empty or too long host";
		return -1;
	}
	host[hl] = '\0';
	path = hend + strcspn(hend, "/");
	if (*hend == ':') {
		size_t pl = (size_t)(path - hend - 1);
		char *end;
		long v;

		if (pl == 0 || pl >= sizeof(port)) {
			*error_r = "http: url: bad port";
			return -1;
		}
		memcpy(port, hend + 1, pl);
		port[pl] = '\0';
		v = strtol(port, &end, 10);
		if (*end != '\0' || v < 1 || v > 65535) {
			*error_r = "http: url: bad port";
			return -1;
		}
	} else if (hend != path) {
		*error_r = "http: url: junk after the host";
		return -1;
	}
	if (*path == '\0')
		path = "/";
	if (strlen(path) > HTTP_PATH_MAX || strpbrk(path, " \t\r\n") != NULL) {
		*error_r = "http: url: path too long or holding blanks";
		return -1;
	}
	for (const char *c = path; *c; c++)
		if ((unsigned char)*c < 0x21 || (unsigned char)*c == 0x7f) {
			*error_r = "http: url: control byte in the path";
			return -1;
		}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		*error_r = "http: url: host does not resolve";
		return -1;
	}
	memcpy(&h->addr, ai->ai_addr, ai->ai_addrlen);
	h->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	snprintf(h->host_header, sizeof(h->host_header), "%.*s",
	    (int)(path - (url + 7)), url + 7);
	if ((h->path = strdup(path)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

/* Each "Name: value": a token name, a value without control bytes. */
static int
add_headers(struct auth_http *h, const struct auth_http_conf *conf,
    const char **error_r)
{
	char buf[HTTP_HEADERS_MAX];
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < conf->nheaders; i++) {
		const char *s = conf->headers[i];
		size_t n = strcspn(s, ":");

		if (n == 0 || s[n] != ':') {
			*error_r = "http: header must be \"Name: value\"";
			return -1;
		}
		for (size_t k = 0; s[k] != '\0'; k++) {
			unsigned char c = (unsigned char)s[k];

			if ((c < 0x20 && c != '\t') || c == 0x7f ||
			    (k < n && (c == ' ' || c == '\t'))) {
				*error_r = "http: header holds a blank in "
					   "its name or a control byte";
				return -1;
			}
		}
		if (appendf(buf, sizeof(buf), &len, "%s\r\n", s) == -1) {
			*error_r = "http: extra headers longer than 4 KiB";
			return -1;
		}
	}
	if ((h->extra = strdup(buf)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

/* ---- verification ------------------------------------------------------ */

/* The service only answers whole logins: nobody is found by name alone. */
static enum auth_lookup
http_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r)
{
	(void)b;
	(void)user;
	(void)error_r;
	*entry_r = NULL;
	return AUTH_LOOKUP_NOTFOUND;
}

static enum auth_status
http_verify_login(struct auth_backend *b, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    const struct auth_login_info *info, struct auth_entry **entry_r,
    uint32_t *wait_ms_r, const char **error_r)
{
	struct auth_http *h = (struct auth_http *)b;
	char *req = malloc(HTTP_REQUEST_MAX);
	struct answer a;
	enum auth_status st;
	int len = -1;

	*entry_r = NULL;
	*wait_ms_r = 0;
	atomic_fetch_add(&h->n.requests, 1);
	if (req == NULL) {
		*error_r = "http: out of memory";
		st = AUTH_TEMPFAIL;
		goto out;
	}
	len = build_request(h, req, HTTP_REQUEST_MAX, user, password, pwlen,
	    client, info);
	if (len == -1) {
		/* Only an absurd name or password gets here. */
		st = AUTH_FAIL;
		goto wipe;
	}
	if (exchange(h, req, (size_t)len, &a, error_r) == -1) {
		st = AUTH_TEMPFAIL;
		goto wipe;
	}
	st = interpret(h, user, &a, entry_r, wait_ms_r, error_r);
wipe:
	/* only what was written can hold the password */
	OPENSSL_cleanse(req, len > 0 ? (size_t)len : HTTP_REQUEST_MAX);
	free(req);
out:
	if (st == AUTH_OK)
		atomic_fetch_add(&h->n.ok, 1);
	else if (st == AUTH_FAIL)
		atomic_fetch_add(&h->n.fail, 1);
	else
		atomic_fetch_add(&h->n.tempfail, 1);
	return st;
}

/* The request nginx's mail proxy would send, keep-alive. -1 when it does
 * not fit (a name and password can take at most ~4 KiB escaped). */
static int
build_request(struct auth_http *h, char *out, size_t max, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    const struct auth_login_info *info)
{
	char euser[AUTH_USER_MAX * 3 + 1], epass[AUTH_PASSWORD_MAX * 3 + 1];
	char ip[INET6_ADDRSTRLEN] = "";
	const char *proto = info && info->protocol ? info->protocol : "imap";
	const char *method = info && info->method ? info->method : "plain";
	size_t len = 0;
	int rc = 0;

	escape(euser, sizeof(euser), user, strlen(user));
	escape(epass, sizeof(epass), password, pwlen);
	if (client != NULL && client->sa_family == AF_INET)
		inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)client)->sin_addr, ip,
		    sizeof(ip));
	else if (client != NULL && client->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)client)->sin6_addr, ip,
		    sizeof(ip));
	rc |= appendf(out, max, &len,
	    "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "Auth-Method: %s\r\nAuth-User: %s\r\nAuth-Pass: %s\r\n"
	    "Auth-Protocol: %s\r\nAuth-Login-Attempt: %u\r\n"
	    "Client-IP: %s\r\nClient-Host: %s\r\n",
	    h->path, h->host_header, method, euser, epass, proto,
	    info && info->attempt ? info->attempt : 1u,
	    ip[0] ? ip : "[UNAVAILABLE]",
	    info && header_safe(info->client_host) ? info->client_host :
						     "[UNAVAILABLE]");
	if (info && header_safe(info->helo))
		rc |= appendf(out, max, &len, "Auth-SMTP-Helo: %s\r\n",
		    info->helo);
	if (info && header_safe(info->mail_from))
		rc |= appendf(out, max, &len, "Auth-SMTP-From: %s\r\n",
		    info->mail_from);
	if (info && header_safe(info->rcpt_to))
		rc |= appendf(out, max, &len, "Auth-SMTP-To: %s\r\n",
		    info->rcpt_to);
	rc |= appendf(out, max, &len, "%s\r\n", h->extra);
	OPENSSL_cleanse(epass, sizeof(epass));
	return rc == 0 ? (int)len : -1;
}

/* What the service said, as a verification's answer. */
static enum auth_status
interpret(struct auth_http *h, const char *user, const struct answer *a,
    struct auth_entry **entry_r, uint32_t *wait_ms_r, const char **error_r)
{
	struct auth_pair pairs[4];
	char norm[AUTH_USER_MAX + 1], host[2 * HTTP_FIELD_MAX + 4];
	size_t n = 0;

	if (a->status != 200) {
		*error_r = "http: the service answered a status other than 200";
		return AUTH_TEMPFAIL;
	}
	if (!a->has_status) {
		*error_r = "http: no Auth-Status in the answer";
		return AUTH_TEMPFAIL;
	}
	if (!a->ok) {
		if (a->has_wait) {
			*wait_ms_r = a->wait_s * 1000u;
			atomic_fetch_add(&h->n.waits, 1);
		}
		if (a->error_code[0] != '\0')
			log_info(0, "auth.http_refused", "error_code=\"%s\"",
			    a->error_code);
		return AUTH_FAIL;
	}
	if ((a->server[0] != '\0') != (a->port[0] != '\0')) {
		*error_r = "http: Auth-Server without Auth-Port or the reverse";
		return AUTH_TEMPFAIL;
	}
	if (auth_user_normalize(user, strlen(user), norm) == -1)
		return AUTH_FAIL;
	if (a->server[0] != '\0') {
		snprintf(host, sizeof(host),
		    strchr(a->server, ':') ? "[%s]:%s" : "%s:%s", a->server,
		    a->port);
		pairs[n++] = (struct auth_pair){ "host", host, strlen(host) };
		pairs[n++] = (struct auth_pair){ "auth_server", a->server,
			strlen(a->server) };
		pairs[n++] = (struct auth_pair){ "auth_port", a->port,
			strlen(a->port) };
	}
	if (a->user[0] != '\0')
		pairs[n++] = (struct auth_pair){ "auth_user", a->user,
			strlen(a->user) };
	if (auth_entry_build(norm, pairs, n, NULL, entry_r, error_r) == -1)
		return AUTH_TEMPFAIL;
	return AUTH_OK;
}

/* ---- exchange ---------------------------------------------------------- */

/* Send req and read the answer; once more on a fresh connection when a
 * kept one turns out closed before any answer byte. 0 or -1. */
static int
exchange(struct auth_http *h, const char *req, size_t len, struct answer *a,
    const char **error_r)
{
	for (int round = 0; round < 2; round++) {
		bool reused = false, retry = false;
		int fd = conn_take(h, &reused, error_r);

		if (fd == -1)
			return -1;
		if (exchange_once(h, fd, req, len, a, &retry, error_r) == 0) {
			conn_give(h, fd, a->keep);
			return 0;
		}
		conn_give(h, fd, false);
		if (!reused || !retry)
			return -1;
	}
	return -1;
}

static int
exchange_once(struct auth_http *h, int fd, const char *req, size_t len,
    struct answer *a, bool *retry_r, const char **error_r)
{
	uint64_t deadline = now_ms() + h->timeout_ms;
	size_t off = 0;
	bool nothing = false;

	while (off < len) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) == -1) {
				*error_r = "http: timeout sending";
				return -1;
			}
			continue;
		}
		*retry_r = off == 0;
		*error_r = "http: the connection broke while sending";
		return -1;
	}
	if (read_answer(h, fd, deadline, a, &nothing, error_r) == -1) {
		*retry_r = nothing;
		return -1;
	}
	return 0;
}

static int
read_answer(struct auth_http *h, int fd, uint64_t deadline, struct answer *a,
    bool *nothing_r, const char **error_r)
{
	char buf[HTTP_HEAD_MAX];
	struct http_resp *r = malloc(sizeof(*r));
	size_t have = 0;
	int ret = -1;

	(void)h;
	if (r == NULL) {
		*error_r = "http: out of memory";
		return -1;
	}
	for (;;) {
		enum http_rc rc = http_parse_response(buf, have, sizeof(buf),
		    r);
		ssize_t n;

		if (rc == HTTP_OK)
			break;
		if (rc == HTTP_INVALID) {
			*error_r = "http: the answer is not HTTP";
			goto out;
		}
		if (rc == HTTP_TOO_LARGE) {
			*error_r = "http: answer head larger than 8 KiB";
			goto out;
		}
		/* The service has not answered yet right after the send:
		 * wait first instead of a recv bound to say EAGAIN. */
		if (have == 0 && wait_fd(fd, POLLIN, deadline) == -1) {
			*error_r = "http: timeout waiting for the answer";
			goto out;
		}
		n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLIN, deadline) == -1) {
				*error_r = "http: timeout waiting for the "
					   "answer";
				goto out;
			}
			continue;
		}
		*nothing_r = have == 0;
		*error_r = "http: the service closed the connection";
		goto out;
	}
	memset(a, 0, sizeof(*a));
	a->status = r->status;
	take_fields(r, a);
	a->keep = r->keep_alive;
	if (a->keep) {
		size_t extra = have - r->head_len;
		uint64_t cl = (uint64_t)r->content_length;

		/* A pipelined surplus or a big body: just close. */
		if (extra > cl || cl > HTTP_BODY_DRAIN)
			a->keep = false;
		else if (cl > extra &&
		    drain_body(fd, (size_t)(cl - extra), deadline) == -1)
			a->keep = false;
	}
	ret = 0;
out:
	free(r);
	return ret;
}

/* The answer headers we act on; values longer than a field are cut (and
 * then fail to parse where that matters). */
static void
take_fields(const struct http_resp *r, struct answer *a)
{
	const char *v;
	size_t n;

	if ((v = http_resp_header(r, "Auth-Status", &n)) != NULL) {
		a->has_status = true;
		a->ok = n == 2 && memcmp(v, "OK", 2) == 0;
	}
	if ((v = http_resp_header(r, "Auth-Server", &n)) != NULL)
		snprintf(a->server, sizeof(a->server), "%.*s", (int)n, v);
	if ((v = http_resp_header(r, "Auth-Port", &n)) != NULL)
		snprintf(a->port, sizeof(a->port), "%.*s", (int)n, v);
	if ((v = http_resp_header(r, "Auth-User", &n)) != NULL)
		snprintf(a->user, sizeof(a->user), "%.*s", (int)n, v);
	if ((v = http_resp_header(r, "Auth-Error-Code", &n)) != NULL)
		snprintf(a->error_code, sizeof(a->error_code), "%.*s", (int)n,
		    v);
	if ((v = http_resp_header(r, "Auth-Wait", &n)) != NULL && n > 0 &&
	    n <= 9) {
		uint32_t w = 0;
		size_t i;

		for (i = 0; i < n && v[i] >= '0' && v[i] <= '9'; i++)
			w = w * 10 + (uint32_t)(v[i] - '0');
		if (i == n) {
			a->has_wait = true;
			a->wait_s = w > HTTP_WAIT_MAX ? HTTP_WAIT_MAX : w;
		}
	}
}

static int
drain_body(int fd, size_t left, uint64_t deadline)
{
	char buf[4096];

	while (left > 0) {
		ssize_t n = recv(fd, buf,
		    left < sizeof(buf) ? left : sizeof(buf), 0);

		if (n > 0) {
			left -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_fd(fd, POLLIN, deadline) == 0)
			continue;
		return -1;
	}
	return 0;
}

/* ---- connections ------------------------------------------------------- */

/* A kept connection that still looks open, or a new one while fewer than
 * max_conns are open; else wait up to the timeout for one. */
static int
conn_take(struct auth_http *h, bool *reused_r, const char **error_r)
{
	uint64_t deadline = now_ms() + h->timeout_ms;
	struct timespec ts = { .tv_sec = (time_t)(deadline / 1000),
		.tv_nsec = (long)(deadline % 1000) * 1000000L };
	int fd;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (h->n_idle > 0) {
			fd = h->idle[--h->n_idle];
			if (conn_alive(fd)) {
				h->n_busy++;
				pthread_mutex_unlock(&h->lock);
				atomic_fetch_add(&h->n.reused, 1);
				*reused_r = true;
				return fd;
			}
			close(fd);
		}
		if (h->n_busy < h->max_conns)
			break;
		if (pthread_cond_timedwait(&h->freed, &h->lock, &ts) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&h->lock);
			atomic_fetch_add(&h->n.pool_full, 1);
			*error_r = "http: every connection busy past the "
				   "timeout";
			return -1;
		}
	}
	h->n_busy++;
	pthread_mutex_unlock(&h->lock);
	*reused_r = false;
	if ((fd = conn_open(h, error_r)) == -1)
		conn_give(h, -1, false);
	return fd;
}

/* Back from a request: kept when keep, else closed. fd -1: only the
 * slot is given back. */
static void
conn_give(struct auth_http *h, int fd, bool keep)
{
	pthread_mutex_lock(&h->lock);
	h->n_busy--;
	if (fd != -1 && keep && h->n_idle < h->max_conns)
		h->idle[h->n_idle++] = fd;
	else if (fd != -1)
		close(fd);
	pthread_cond_signal(&h->freed);
	pthread_mutex_unlock(&h->lock);
}

static int
conn_open(struct auth_http *h, const char **error_r)
{
	uint64_t deadline = now_ms() + h->timeout_ms;
	int fd = socket(h->addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, err = 0;
	socklen_t el = sizeof(err);

	if (fd == -1) {
		*error_r = "http: socket() failed";
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	atomic_fetch_add(&h->n.connects, 1);
	if (connect(fd, (const struct sockaddr *)&h->addr, h->addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		*error_r = "http: connection refused";
		close(fd);
		return -1;
	}
	if (wait_fd(fd, POLLOUT, deadline) == -1) {
		*error_r = "http: connect timeout";
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1 || err != 0) {
		*error_r = "http: connection refused";
		close(fd);
		return -1;
	}
	return fd;
}

/* Nothing to read on an idle keep-alive connection: neither a close nor
 * stray bytes. */
static bool
conn_alive(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* ---- small helpers ----------------------------------------------------- */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* 0 when fd is ready for ev before deadline, else -1. */
static int
wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd pfd = { .fd = fd, .events = ev };
		int n;

		if (now >= deadline)
			return -1;
		n = poll(&pfd, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n == 0 || errno != EINTR)
			return -1;
	}
}

/* nginx's escaping of Auth-User and Auth-Pass: space, '"', '#', '%', '\'',
 * control bytes and every byte from 0x7f as %XX. Returns the length; out
 * holds 3 * n + 1 bytes at most. */
static size_t
escape(char *out, size_t max, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 <= max; i++) {
		unsigned char c = (unsigned char)s[i];

		if (escaped_byte(c)) {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
}

static bool
escaped_byte(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || c == '"' || c == '#' || c == '%' ||
	    c == '\'';
}

/* A value that can go into a header line as it is: present, at most 255
 * bytes, no control byte (a CR or LF would start a header of its own). */
static bool
header_safe(const char *v)
{
	size_t n = 0;

	if (v == NULL)
		return false;
	for (; v[n] != '\0'; n++)
		if ((unsigned char)v[n] < 0x20 || v[n] == 0x7f || n > 255)
			return false;
	return n > 0;
}

static int
appendf(char *out, size_t max, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= max)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(out + *len, max - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= max - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}
