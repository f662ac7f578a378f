/*
 * clamd.c - clamd INSTREAM client (backend/clamd.h).
 *
 * One connection per scan, blocking with SO_SNDTIMEO / SO_RCVTIMEO and a
 * non-blocking connect bounded by poll(), because it runs on a store pool
 * thread where blocking is the point. clamd drops the connection once a
 * stream passes its StreamMaxLength, sometimes after answering
 * "INSTREAM size limit exceeded": a failed send is therefore followed by
 * an attempt to read that answer before calling it an error.
 *
 * Must never: run on a loop thread, raise SIGPIPE (MSG_NOSIGNAL), or keep
 * more than one chunk of the file in memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend/clamd.h"
#include "core/config.h"

#define CHUNK (64 * 1024)
#define REPLY_MAX 512

static int connect_to(const struct clamd_addr *a, uint64_t timeout_ms,
    struct clamd_result *r);
static int send_all(int s, const void *p, size_t len);
static int send_file(int s, int fd, struct clamd_result *r);
static ssize_t read_reply(int s, char *buf, size_t cap);
static enum clamd_rc parse_reply(char *buf, size_t len, struct clamd_result *r);
static void printable(char *dst, size_t cap, const char *src, size_t len);

int
clamd_addr_parse(const char *s, struct clamd_addr *a)
{
	struct cfg_addr ca;

	memset(a, 0, sizeof(*a));
	if (s == NULL || *s == '\0')
		return -1;
	if (s[0] == '/') {
		struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
		size_t n = strlen(s);

		if (n >= sizeof(un->sun_path))
			return -1;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, s, n + 1);
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    n + 1);
		return 0;
	}
	if (s[0] == '*' || cfg_parse_addr(s, &ca) == -1)
		return -1;
	a->ss = ca.ss;
	a->len = ca.len;
	return 0;
}

enum clamd_rc
clamd_scan_fd(const struct clamd_addr *a, uint64_t timeout_ms, int fd,
    uint64_t max_bytes, struct clamd_result *r)
{
	char reply[REPLY_MAX];
	struct stat st;
	enum clamd_rc rc = CLAMD_ERROR;
	ssize_t n;
	int s;

	memset(r, 0, sizeof(*r));
	if (fstat(fd, &st) == -1) {
		snprintf(r->error, sizeof(r->error), "fstat: %s",
		    strerror(errno));
		return CLAMD_ERROR;
	}
	if (max_bytes > 0 && (uint64_t)st.st_size > max_bytes) {
		snprintf(r->error, sizeof(r->error),
		    "message of %lld bytes over the scan limit",
		    (long long)st.st_size);
		return CLAMD_TOO_BIG;
	}
	s = connect_to(a, timeout_ms, r);
	if (s == -1)
		return CLAMD_ERROR;
	if (send_all(s, "zINSTREAM", 10) == -1) {
		snprintf(r->error, sizeof(r->error), "send: %s",
		    strerror(errno));
		goto out;
	}
	if (send_file(s, fd, r) == -1 && r->error[0] != '\0' &&
	    strncmp(r->error, "send", 4) != 0)
		goto out; /* reading the file failed: no answer to wait for */
	n = read_reply(s, reply, sizeof(reply));
	if (n <= 0) {
		if (r->error[0] == '\0')
			snprintf(r->error, sizeof(r->error), "%s",
			    n == 0 ? "clamd closed without an answer" :
				     strerror(errno));
		goto out;
	}
	r->error[0] = '\0';
	rc = parse_reply(reply, (size_t)n, r);
out:
	close(s);
	return rc;
}

/* A socket connected within timeout_ms, with that timeout on each send
 * and receive; -1 with r->error. */
static int
connect_to(const struct clamd_addr *a, uint64_t timeout_ms,
    struct clamd_result *r)
{
	struct timeval tv = { (time_t)(timeout_ms / 1000),
		(suseconds_t)(timeout_ms % 1000) * 1000 };
	struct pollfd pfd;
	int s, err = 0, flags;
	socklen_t elen = sizeof(err);

	s = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (s == -1) {
		snprintf(r->error, sizeof(r->error), "socket: %s",
		    strerror(errno));
		return -1;
	}
	if (connect(s, (const struct sockaddr *)&a->ss, a->len) == -1) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			err = errno;
			goto fail;
		}
		pfd.fd = s;
		pfd.events = POLLOUT;
		do
			err = poll(&pfd, 1, (int)timeout_ms);
		while (err == -1 && errno == EINTR);
		if (err == 0) {
			err = ETIMEDOUT;
			goto fail;
		}
		if (err == -1 ||
		    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) == -1) {
			err = errno;
			goto fail;
		}
		if (err != 0)
			goto fail;
	}
	flags = fcntl(s, F_GETFL);
	if (flags == -1 || fcntl(s, F_SETFL, flags & ~O_NONBLOCK) == -1 ||
	    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1) {
		err = errno;
		goto fail;
	}
	return s;
fail:
	snprintf(r->error, sizeof(r->error), "connect: %s", strerror(err));
	close(s);
	return -1;
}

static int
send_all(int s, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		ssize_t n = send(s, c, len, MSG_NOSIGNAL);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The file as length-prefixed chunks, then the zero length. -1 with
 * r->error ("send: ..." when the socket failed). */
static int
send_file(int s, int fd, struct clamd_result *r)
{
	unsigned char *buf = malloc(CHUNK + 4);
	static const unsigned char end[4] = { 0, 0, 0, 0 };
	off_t off = 0;
	ssize_t n;
	int rc = -1;

	if (buf == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	for (;;) {
		n = pread(fd, buf + 4, CHUNK, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(r->error, sizeof(r->error), "read: %s",
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		buf[0] = (unsigned char)((uint32_t)n >> 24);
		buf[1] = (unsigned char)((uint32_t)n >> 16);
		buf[2] = (unsigned char)((uint32_t)n >> 8);
		buf[3] = (unsigned char)n;
		if (send_all(s, buf, (size_t)n + 4) == -1)
			goto send_fail;
		off += n;
	}
	if (send_all(s, end, sizeof(end)) == -1)
		goto send_fail;
	rc = 0;
	goto out;
send_fail:
	snprintf(r->error, sizeof(r->error), "send: %s",
	    errno == EAGAIN ? "timeout" : strerror(errno));
out:
	free(buf);
	return rc;
}

/* Up to the NUL that ends a z-command's answer (or EOF); NUL-terminated.
 * Returns its length, 0 on EOF with nothing, -1 on error/timeout. */
static ssize_t
read_reply(int s, char *buf, size_t cap)
{
	size_t len = 0;

	while (len + 1 < cap) {
		ssize_t n = recv(s, buf + len, cap - 1 - len, 0);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			if (errno == EAGAIN)
				errno = ETIMEDOUT;
			return len > 0 ? (ssize_t)len : -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\0', len) != NULL)
			break;
	}
	buf[len] = '\0';
	return (ssize_t)strlen(buf);
}

/* "stream: OK", "stream: <sig> FOUND", "INSTREAM size limit exceeded.
 * ERROR", anything else is an error. */
static enum clamd_rc
parse_reply(char *buf, size_t len, struct clamd_result *r)
{
	static const char pfx[] = "stream: ", found[] = " FOUND";

	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (strcmp(buf, "stream: OK") == 0)
		return CLAMD_CLEAN;
	if (len > sizeof(pfx) - 1 + sizeof(found) - 1 &&
	    strncmp(buf, pfx, sizeof(pfx) - 1) == 0 &&
	    strcmp(buf + len - (sizeof(found) - 1), found) == 0) {
		printable(r->sig, sizeof(r->sig), buf + sizeof(pfx) - 1,
		    len - (sizeof(pfx) - 1) - (sizeof(found) - 1));
		return CLAMD_FOUND;
	}
	printable(r->error, sizeof(r->error), buf, len);
	if (strstr(buf, "size limit exceeded") != NULL)
		return CLAMD_TOO_BIG;
	return CLAMD_ERROR;
}

static void
printable(char *dst, size_t cap, const char *src, size_t len)
{
	size_t n = 0;

	for (size_t k = 0; k < len && n + 1 < cap; k++) {
		unsigned char c = (unsigned char)src[k];

		dst[n++] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
	}
	dst[n] = '\0';
}
