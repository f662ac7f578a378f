/*
 * msg_read.c - reading a message file for FETCH and SEARCH (see
 * msg_read.h): a header-only read grows from MSG_READ_FIRST bytes,
 * doubling, until proto/mime's mime_header_end() finds the empty line;
 * whole files are read into the same buffer up to MSG_READ_WHOLE_MAX.
 * The thresholds were measured (docs/benchmarks.md, "ringstore vs
 * Dovecot"): reading beats mmap up to ~8 MiB files on this kernel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/msg_read.h"
#include "proto/mime.h"
#include "store/maildir.h"

static int reserve(struct msg_reader *r, size_t size);
static int read_header(struct msg_reader *r, int fd, struct msg_text *t);
static int read_whole(struct msg_reader *r, int fd, struct msg_text *t);

/* Make r->buf hold at least size bytes (contents kept). */
static int
reserve(struct msg_reader *r, size_t size)
{
	char *p;

	if (size <= r->cap)
		return 0;
	if ((p = realloc(r->buf, size)) == NULL)
		return -1;
	r->buf = p;
	r->cap = size;
	return 0;
}

ssize_t
msg_pread(int fd, char *p, size_t n, size_t off)
{
	size_t got = 0;
	ssize_t k;

	while (got < n) {
		k = pread(fd, p + got, n - got, (off_t)(off + got));
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1)
			return -1;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* The header block into r->buf: 1 if t holds it, 0 if it is longer than
 * MSG_READ_HEADER_MAX (read the whole file instead), -1. */
static int
read_header(struct msg_reader *r, int fd, struct msg_text *t)
{
	size_t have = 0, want = MSG_READ_FIRST, hdr;
	ssize_t k;

	for (;;) {
		if (reserve(r, have + want) == -1 ||
		    (k = msg_pread(fd, r->buf + have, want, have)) == -1)
			return -1;
		have += (size_t)k;
		/* a file that ends without an empty line is all header */
		if (mime_header_end(r->buf, have, &hdr) || (size_t)k < want)
			break;
		if (have >= MSG_READ_HEADER_MAX)
			return 0;
		want = have;
	}
	t->data = r->buf;
	t->len = hdr;
	return 1;
}

/* The whole file: read into r->buf, or mapped if it is large. */
static int
read_whole(struct msg_reader *r, int fd, struct msg_text *t)
{
	struct stat st;
	size_t size;
	ssize_t k;

	if (fstat(fd, &st) == -1)
		return -1;
	size = (size_t)st.st_size;
	if (size > MSG_READ_WHOLE_MAX) {
		t->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (t->map == MAP_FAILED) {
			t->map = NULL;
			return -1;
		}
		t->maplen = size;
		t->data = t->map;
		t->len = size;
		return 0;
	}
	if (reserve(r, size > 0 ? size : 1) == -1 ||
	    (k = msg_pread(fd, r->buf, size, 0)) == -1)
		return -1;
	t->data = r->buf;
	t->len = (size_t)k;
	return 0;
}

int
msg_read(struct msg_reader *r, struct maildir *box, size_t index,
    bool header_only, struct msg_text *t)
{
	const char *e;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	t->data = "";
	if (maildir_msg_open(box, index, &fd, &e) == -1)
		return -1;
	rc = msg_read_fd(r, fd, header_only, t);
	close(fd);
	return rc;
}

int
msg_read_fd(struct msg_reader *r, int fd, bool header_only, struct msg_text *t)
{
	int rc = 0;

	memset(t, 0, sizeof(*t));
	t->data = "";
	if (header_only)
		rc = read_header(r, fd, t);
	if (rc == 0)
		rc = read_whole(r, fd, t);
	if (rc == -1) {
		msg_read_done(t);
		return -1;
	}
	return 0;
}

int
msg_read_range(struct msg_reader *r, int fd, size_t off, size_t len,
    struct msg_text *t)
{
	memset(t, 0, sizeof(*t));
	t->data = "";
	if (reserve(r, len > 0 ? len : 1) == -1 ||
	    msg_pread(fd, r->buf, len, off) != (ssize_t)len)
		return -1;
	t->data = r->buf;
	t->len = len;
	return 0;
}

void
msg_read_done(struct msg_text *t)
{
	if (t->map != NULL)
		munmap(t->map, t->maplen);
	memset(t, 0, sizeof(*t));
	t->data = "";
}

void
msg_reader_free(struct msg_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}
