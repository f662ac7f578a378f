/*
 * redis_fixture.h - a private redis-server for unit tests that need a
 * real one (test_auth_redis, test_route_redis): start it on a port in a
 * scratch directory, open admin connections, kill it. Header-only; the
 * including test owns its struct redis_srv.
 */
#ifndef RG_TESTS_REDIS_FIXTURE_H
#define RG_TESTS_REDIS_FIXTURE_H

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

struct redis_srv {
	char dir[64]; /* its --dir */
	uint16_t port;
	pid_t pid; /* 0: not running */
};

/* Whether prog is an executable in $PATH. */
static inline bool
redis_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (path == NULL)
		path = "/usr/bin:/bin";
	while (*path != '\0') {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (access(buf, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

/* A short-lived admin connection, or NULL when the server is not up. */
static inline redisContext *
redis_srv_conn(const struct redis_srv *r)
{
	struct timeval tv = { .tv_sec = 1 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);

	if (c != NULL && c->err != 0) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Start redis-server (no persistence) and wait until it answers. */
static inline void
redis_srv_start(struct redis_srv *r)
{
	char port[8];
	redisContext *c = NULL;

	snprintf(port, sizeof(port), "%u", r->port);
	r->pid = fork();
	assert_int_not_equal(r->pid, -1);
	if (r->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execlp("redis-server", "redis-server", "--port", port, "--bind",
		    "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
		    r->dir, "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && c == NULL; i++) {
		struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };

		if ((c = redis_srv_conn(r)) == NULL)
			nanosleep(&ts, NULL);
	}
	if (c == NULL)
		fail_msg("redis-server did not come up on port %u", r->port);
	redisFree(c);
}

/* Start a Sentinel (redis-server --sentinel) on r->port watching
 * 127.0.0.1:master_port as master_name, its config file in r->dir, and
 * wait until it answers. */
static inline void
redis_sentinel_start(struct redis_srv *r, const char *master_name,
    uint16_t master_port)
{
	char conf[128];
	redisContext *c = NULL;
	FILE *fp;

	snprintf(conf, sizeof(conf), "%s/sentinel-%u.conf", r->dir, r->port);
	fp = fopen(conf, "w");
	assert_non_null(fp);
	fprintf(fp,
	    "port %u\nbind 127.0.0.1\ndir %s\n"
	    "sentinel monitor %s 127.0.0.1 %u 1\n",
	    r->port, r->dir, master_name, master_port);
	fclose(fp);
	r->pid = fork();
	assert_int_not_equal(r->pid, -1);
	if (r->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execlp("redis-server", "redis-server", conf, "--sentinel",
		    (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && c == NULL; i++) {
		struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };

		if ((c = redis_srv_conn(r)) == NULL)
			nanosleep(&ts, NULL);
	}
	if (c == NULL)
		fail_msg("redis sentinel did not come up on port %u", r->port);
	redisFree(c);
}

/* Kill it (a frozen one too: SIGCONT first) and reap it. */
static inline void
redis_srv_stop(struct redis_srv *r)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, SIGCONT);
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	r->pid = 0;
}

#endif
