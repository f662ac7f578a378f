/*
 * test_log.c - logfmt lines, quoting, levels, truncation and fatal().
 *
 * Lines are written to a pipe and read back, so each test sees exactly the
 * bytes one write(2) produced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"

static int pipefd[2];

static int
setup(void **state)
{
	if (pipe2(pipefd, O_NONBLOCK) == -1)
		return -1;
	log_init("testd", LL_DEBUG, pipefd[1]);
	return 0;
}

static int
teardown(void **state)
{
	log_init(NULL, LL_INFO, 2);
	close(pipefd[0]);
	close(pipefd[1]);
	return 0;
}

/* Everything written so far, NUL-terminated, in a static buffer. */
static const char *
drain(size_t *len_r)
{
	static char out[65536];
	ssize_t n = read(pipefd[0], out, sizeof(out) - 1);

	if (n < 0)
		n = 0;
	out[n] = '\0';
	if (len_r)
		*len_r = (size_t)n;
	return out;
}

static void
test_line_format(void **state)
{
	regex_t re;
	const char *line;

	log_info(0x0f3a9c1e22b04d17ULL, "conn.open", "listener=%s port=%d",
	    "imaps", 993);
	line = drain(NULL);
	assert_int_equal(
	    regcomp(&re,
		"^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
		"\\.[0-9]{3}Z level=info daemon=testd sid=0f3a9c1e22b04d17 "
		"event=conn\\.open listener=imaps port=993\n$",
		REG_EXTENDED | REG_NOSUB),
	    0);
	assert_int_equal(regexec(&re, line, 0, NULL, 0), 0);
	regfree(&re);
}

static void
test_no_sid_no_fmt(void **state)
{
	const char *line;

	log_warn(0, "daemon.reload", NULL);
	line = drain(NULL);
	assert_null(strstr(line, "sid="));
	assert_non_null(strstr(line,
	    " level=warn daemon=testd "
	    "event=daemon.reload\n"));
	/* Small sids still print as 16 digits. */
	log_error(1, "x", "k=v");
	line = drain(NULL);
	assert_non_null(strstr(line, " sid=0000000000000001 event=x k=v\n"));
}

static void
test_levels(void **state)
{
	size_t len;

	log_init("testd", LL_WARN, pipefd[1]);
	log_info(0, "hidden", NULL);
	log_debug(0, "hidden", NULL);
	drain(&len);
	assert_int_equal(len, 0);
	log_error(0, "shown", NULL);
	log_warn(0, "shown", NULL);
	drain(&len);
	assert_true(len > 0);
	log_init("testd", LL_DEBUG, pipefd[1]);

	assert_int_equal(log_level_parse("error"), LL_ERROR);
	assert_int_equal(log_level_parse("warn"), LL_WARN);
	assert_int_equal(log_level_parse("info"), LL_INFO);
	assert_int_equal(log_level_parse("debug"), LL_DEBUG);
	assert_int_equal(log_level_parse("Info"), -1);
	assert_int_equal(log_level_parse(""), -1);
	assert_int_equal(log_level_parse(NULL), -1);
}

static void
test_quote(void **state)
{
	char q[64];

	assert_string_equal(log_quote(q, sizeof(q), "alice@example.org", -1),
	    "alice@example.org");
	assert_string_equal(log_quote(q, sizeof(q), "1.2.3.4:993", -1),
	    "1.2.3.4:993");
	assert_string_equal(log_quote(q, sizeof(q), "", -1), "\"\"");
	assert_string_equal(log_quote(q, sizeof(q), NULL, 0), "\"\"");
	assert_string_equal(log_quote(q, sizeof(q), "a b", -1), "\"a b\"");
	assert_string_equal(log_quote(q, sizeof(q), "x=1", -1), "\"x=1\"");
	assert_string_equal(log_quote(q, sizeof(q), "say \"hi\"\\", -1),
	    "\"say \\\"hi\\\"\\\\\"");
	assert_string_equal(log_quote(q, sizeof(q), "a\r\n\tb", -1),
	    "\"a\\r\\n\\tb\"");
	assert_string_equal(log_quote(q, sizeof(q), "\x01\x7f\xc3\xa9", -1),
	    "\"\\x01\\x7f\\xc3\\xa9\"");
	/* n bounds the input: embedded NUL and bytes past n. */
	assert_string_equal(log_quote(q, sizeof(q), "ab\0cd", 5),
	    "\"ab\\x00cd\"");
	assert_string_equal(log_quote(q, sizeof(q), "abcdef", 3), "abc");
}

static void
test_quote_truncate(void **state)
{
	char q[16];
	const char *long_bare = "abcdefghijklmnopqrstuvwxyz";

	assert_string_equal(log_quote(q, sizeof(q), long_bare, -1),
	    "abcdefghijkl...");
	assert_int_equal(strlen(q), sizeof(q) - 1);
	assert_string_equal(
	    log_quote(q, sizeof(q), "hello world, how are you", -1),
	    "\"hello worl...\"");
	assert_int_equal(strlen(q), sizeof(q) - 1);
	/* An escape is never cut in half. */
	assert_string_equal(log_quote(q, sizeof(q), "abcdefg\x01zzzzzz", -1),
	    "\"abcdefg...\"");
	assert_string_equal(log_quote(q, sizeof(q), "abcdef\"zzzzzzz", -1),
	    "\"abcdef\\\"zz...\"");
	/* Exactly fitting: no ellipsis. */
	assert_string_equal(log_quote(q, sizeof(q), "a b c d e f g", -1),
	    "\"a b c d e f g\"");
	/* Tiny buffers stay terminated. */
	assert_string_equal(log_quote(q, 1, "abc", -1), "");
	assert_string_equal(log_quote(q, 3, "a b", -1), "\"\"");
	assert_string_equal(log_quote(q, 4, "abcdef", -1), "...");
	for (size_t cap = 1; cap < sizeof(q); cap++) {
		log_quote(q, cap, "a\"b\\c\x01 d\xff e", -1);
		assert_true(strlen(q) < cap);
	}
}

static void
test_truncated_line(void **state)
{
	char big[8192];
	const char *line;
	size_t len, quotes = 0;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[4000] = '\\';
	log_info(7, "big", "k=\"%s\"", big);
	line = drain(&len);
	assert_true(len <= 4096);
	assert_int_equal(line[len - 1], '\n');
	assert_non_null(strstr(line, "...\" truncated=true\n"));
	for (size_t i = 0; i < len; i++)
		if (line[i] == '"')
			quotes++;
	assert_int_equal(quotes % 2, 0);
	assert_ptr_equal(strchr(line, '\n'), line + len - 1);

	/* Unquoted overflow: marker only. */
	log_info(7, "big", "k=%s", big + 4001);
	line = drain(&len);
	assert_true(len <= 4096);
	assert_non_null(strstr(line, "aaaa truncated=true\n"));
}

static void
test_controls_scrubbed(void **state)
{
	const char *line;
	size_t len;

	/* A caller that forgot log_quote() still cannot forge a line. */
	log_info(0, "oops", "user=%s", "bob\nts=x level=error\r");
	line = drain(&len);
	assert_ptr_equal(strchr(line, '\n'), line + len - 1);
	assert_null(strchr(line, '\r'));
}

static void
test_fatal(void **state)
{
	pid_t pid = fork();
	int status;
	const char *line;

	assert_true(pid != -1);
	if (pid == 0)
		fatal("cannot bind %s: %s", "[::]:993", "Address in use");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	line = drain(NULL);
	assert_non_null(strstr(line,
	    " level=error daemon=testd event=fatal "
	    "error=\"cannot bind [::]:993: Address "
	    "in use\"\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_no_sid_no_fmt),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_quote_truncate),
		cmocka_unit_test(test_truncated_line),
		cmocka_unit_test(test_controls_scrubbed),
		cmocka_unit_test(test_fatal),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
