/*
 * daemon_conf.c - the `daemon { }` section every daemon's config file has
 * (threads, pid file, logging, drain), described once for core/config.c,
 * and opening the log it names.
 *
 * Runs at start-up only; never on a ring thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/daemon.h"
#include "core/log.h"

static const char *const log_levels[] = { "error", "warn", "info", "debug",
	NULL };

#define F(field) offsetof(struct daemon_conf, field)

const struct cfg_field daemon_conf_fields[] = {
	{ "workers", CFG_INT, F(workers), 0, "0", 0, 256,
	    .hint = "a number of threads, 0 for one per core" },
	{ "pid_file", CFG_STRING, F(pid_file) },
	{ "log_level", CFG_ENUM, F(log_level), 0, "info",
	    .choices = log_levels },
	{ "log_file", CFG_STRING, F(log_file) },
	{ "drain_timeout", CFG_DURATION, F(drain_timeout), 0, "30s", 0,
	    3600000 },
	{ "recv_buffers", CFG_INT, F(recv_buffers), 0, "1024", 16, 32768,
	    .hint = "receive buffers of 16 KiB per worker, shared by its "
		    "connections (rounded up to a power of two)" },
	{ NULL },
};

int
daemon_conf_log_open(const char *ident, const struct daemon_conf *dc)
{
	int fd = STDERR_FILENO;

	if (dc->log_file && dc->log_file[0]) {
		fd = open(dc->log_file,
		    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd == -1) {
			fprintf(stderr, "%s: log_file %s: %s\n", ident,
			    dc->log_file, strerror(errno));
			return -1;
		}
	}
	log_init(ident, (enum log_level)dc->log_level, fd);
	return 0;
}

unsigned
daemon_conf_workers(const struct daemon_conf *dc)
{
	return dc->workers > 0 ? (unsigned)dc->workers : daemon_ncpu();
}

void
daemon_conf_loop(const struct daemon_conf *dc, struct loop_conf *lc)
{
	unsigned n = 16;

	/* the provided-buffer ring wants a power of two */
	while (n < (unsigned)dc->recv_buffers && n < 32768)
		n <<= 1;
	lc->buf_count = n;
}
