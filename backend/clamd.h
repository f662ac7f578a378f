/*
 * clamd.h - a blocking client for clamd's INSTREAM command, for the
 * content policy on a store pool thread (never a loop thread).
 *
 * The file is streamed from offset 0 in chunks ("zINSTREAM\0", then each
 * chunk as a 4-byte big-endian length and its bytes, then a zero length)
 * and clamd's one-line answer is read: "stream: OK" or
 * "stream: <signature> FOUND". Every wait (connect, each send, the answer)
 * is bounded by the timeout. Memory: one chunk buffer.
 */
#ifndef RG_BACKEND_CLAMD_H
#define RG_BACKEND_CLAMD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum clamd_rc {
	CLAMD_CLEAN = 0,
	CLAMD_FOUND,   /* sig holds the signature name */
	CLAMD_ERROR,   /* unreachable, timeout, I/O, unexpected answer */
	CLAMD_TOO_BIG, /* over max_bytes, or clamd's StreamMaxLength */
};

/* Where clamd listens: "/path/to/clamd.ctl" (a unix socket) or
 * "127.0.0.1:3310" / "[::1]:3310" (numeric, never resolved). */
struct clamd_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* 0, or -1 if s is neither form (or the path is too long). */
int clamd_addr_parse(const char *s, struct clamd_addr *a);

struct clamd_result {
	char sig[128];	 /* FOUND: the signature, printable ASCII */
	char error[128]; /* ERROR / TOO_BIG: what went wrong, for logs */
};

/*
 * Scan fd's bytes [0, EOF) (pread; fd's position is not used) with the
 * clamd at a. timeout_ms bounds each wait; a file longer than max_bytes
 * (0: no limit) is TOO_BIG without being sent. Fills *r.
 */
enum clamd_rc clamd_scan_fd(const struct clamd_addr *a, uint64_t timeout_ms,
    int fd, uint64_t max_bytes, struct clamd_result *r);

#endif
