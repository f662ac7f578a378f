/*
 * buf.c - growable byte buffer with a read offset.
 *
 * Growth doubles capacity (minimum 1 KiB) and compacts first when more than
 * half of the storage is already consumed, so a queue that is written and
 * drained steadily does not creep. Nothing here enforces limits.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

#define BUF_MIN 1024

static int buf_grow(struct buf *b, size_t need);

static int
buf_grow(struct buf *b, size_t need)
{
	size_t used = buf_used(b), cap;
	char *p;

	if (b->off > 0 && b->off >= b->cap / 2) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		if (b->cap - b->len >= need)
			return 0;
	}
	if (need > SIZE_MAX / 2 - b->len)
		return -1;
	cap = b->cap ? b->cap : BUF_MIN;
	while (cap - b->len < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

char *
buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len < n && buf_grow(b, n) == -1)
		return NULL;
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->len += n;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	char *dst;

	if (n == 0)
		return 0;
	if ((dst = buf_reserve(b, n)) == NULL)
		return -1;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *dst;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (dst = buf_reserve(b, (size_t)n + 1)) == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(dst, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= buf_used(b)) {
		b->off = b->len = 0;
		return;
	}
	b->off += n;
}

void
buf_release(struct buf *b)
{
	if (buf_used(b) == 0)
		buf_free(b);
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}
