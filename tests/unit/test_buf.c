/*
 * test_buf.c - the byte buffer: append/consume, compaction, reserve and
 * commit, printf, release leaving no storage behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/buf.h"

static void
test_append_consume(void **state)
{
	struct buf b = { 0 };
	char big[5000];

	assert_int_equal(buf_append(&b, "hello ", 6), 0);
	assert_int_equal(buf_append(&b, "world", 5), 0);
	assert_int_equal(buf_used(&b), 11);
	assert_memory_equal(buf_head(&b), "hello world", 11);
	buf_consume(&b, 6);
	assert_memory_equal(buf_head(&b), "world", 5);
	/* growth after consumption keeps the unread bytes intact */
	memset(big, 'x', sizeof(big));
	assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
	assert_int_equal(buf_used(&b), 5 + sizeof(big));
	assert_memory_equal(buf_head(&b), "worldxxx", 8);
	buf_consume(&b, buf_used(&b));
	assert_int_equal(buf_used(&b), 0);
	assert_int_equal(b.off, 0);
	buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
}

static void
test_release_keeps_pending(void **state)
{
	struct buf b = { 0 };

	assert_int_equal(buf_append(&b, "abc", 3), 0);
	buf_release(&b); /* bytes waiting: must not free */
	assert_non_null(b.data);
	assert_memory_equal(buf_head(&b), "abc", 3);
	buf_free(&b);
	assert_null(b.data);
}

static void
test_reserve_printf(void **state)
{
	struct buf b = { 0 };
	char *p = buf_reserve(&b, 4);

	assert_non_null(p);
	memcpy(p, "1234", 4);
	buf_commit(&b, 4);
	assert_int_equal(buf_printf(&b, "-%d-%s", 56, "78"), 0);
	assert_int_equal(buf_used(&b), 10);
	assert_memory_equal(buf_head(&b), "1234-56-78", 10);
	buf_free(&b);
}

/* many small appends and consumes: the buffer reuses its storage rather
 * than growing with the total volume */
static void
test_steady_stream_bounded(void **state)
{
	struct buf b = { 0 };
	char chunk[700];

	memset(chunk, 'y', sizeof(chunk));
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
		if (buf_used(&b) > 3000)
			buf_consume(&b, 2100);
	}
	assert_true(b.cap <= 8192);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_consume),
		cmocka_unit_test(test_release_keeps_pending),
		cmocka_unit_test(test_reserve_printf),
		cmocka_unit_test(test_steady_stream_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
