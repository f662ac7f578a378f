/*
 * buf.h - a growable byte buffer with a read offset.
 *
 * Used for connection output queues and line assembly. An empty buffer holds
 * no memory after buf_release(), which is how idle connections stay small.
 * Growth is bounded by the caller (the buffer itself never refuses to grow
 * except on allocation failure): limits are policy, not mechanism.
 */
#ifndef RG_CORE_BUF_H
#define RG_CORE_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t off; /* first unread byte */
	size_t len; /* end of written bytes */
	size_t cap;
};

/* Bytes waiting to be read. */
static inline size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* Never NULL + 0 (undefined behaviour) for a buffer never written. */
static inline const char *
buf_head(const struct buf *b)
{
	return b->data != NULL ? b->data + b->off : "";
}

/* Append n bytes. Returns 0, or -1 if memory ran out (b unchanged). */
int buf_append(struct buf *b, const void *p, size_t n);

/* Reserve room for n more bytes; returns a pointer to write them, then call
 * buf_commit(b, written). NULL on allocation failure. */
char *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);

/* printf-append. Returns 0 or -1. */
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Drop n bytes from the head. When the buffer empties, offsets reset. */
void buf_consume(struct buf *b, size_t n);

/* Free the storage if nothing is waiting (idle connections keep nothing). */
void buf_release(struct buf *b);

/* Free the storage unconditionally. */
void buf_free(struct buf *b);

#endif
