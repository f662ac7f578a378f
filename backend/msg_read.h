/*
 * msg_read.h - one message file of an open folder, read for FETCH and
 * SEARCH on a store-pool thread.
 *
 * Files are read with pread() into a buffer the caller keeps for a whole
 * command (a header-only read stops at the header's empty line); only
 * files above MSG_READ_WHOLE_MAX are mapped. Reading avoids munmap(),
 * whose TLB-shootdown IPIs to every other CPU of the process cost more
 * than parsing a small message. Blocking I/O: never on a ring thread.
 *
 * Not part of the store/ library on purpose: how much of a file to read
 * is a session's choice (FETCH, SEARCH, later POP3 RETR) and needs
 * proto/mime's header scan, while store/ stays libc-only; it reaches the
 * file through maildir_msg_open() like any other user of the library.
 */
#ifndef RG_BACKEND_MSG_READ_H
#define RG_BACKEND_MSG_READ_H

#include <stdbool.h>
#include <stddef.h>

struct maildir;

#define MSG_READ_FIRST (8 * 1024)	     /* first header read */
#define MSG_READ_HEADER_MAX (256 * 1024)     /* longer: read it all */
#define MSG_READ_WHOLE_MAX (4 * 1024 * 1024) /* larger: mapped */

/* The caller's reusable buffer; zero-initialise, msg_reader_free(). */
struct msg_reader {
	char *buf;
	size_t cap;
};

/* data[0..len) is the whole file or, for a header-only read, its header
 * block (the whole file when it has no empty line). data points into the
 * reader's buffer or a mapping, valid until msg_read_done() or the next
 * msg_read() with the same reader. */
struct msg_text {
	const char *data;
	size_t len;
	char *map;
	size_t maplen;
};

/* Read message index of box into t. 0, or -1 if the file could not be
 * opened or read (expunged meanwhile: callers skip the message). */
int msg_read(struct msg_reader *r, struct maildir *box, size_t index,
    bool header_only, struct msg_text *t);

/* The same from a descriptor the caller opened (and closes). */
int msg_read_fd(struct msg_reader *r, int fd, bool header_only,
    struct msg_text *t);

/* Bytes [off, off + len) of fd into r's buffer (t points at them): for a
 * part's header that a FETCH needs again after its read was dropped. 0,
 * or -1 if they could not all be read. */
int msg_read_range(struct msg_reader *r, int fd, size_t off, size_t len,
    struct msg_text *t);

/* pread() until n bytes or the end of the file: the count read, or -1. */
ssize_t msg_pread(int fd, char *p, size_t n, size_t off);

/* Release a mapping t may hold; t reads as empty afterwards. */
void msg_read_done(struct msg_text *t);

void msg_reader_free(struct msg_reader *r);

#endif
