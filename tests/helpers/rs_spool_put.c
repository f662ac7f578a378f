/*
 * rs_spool_put.c - a test helper, built only for the tests: queues one
 * message into a ringstore relay spool with spool_put(), as the
 * submission intake does, and prints its queue id once it is durable.
 * The integration tests seed the spool with it (tests/integration/
 * test_ringstore_relay.py) while ringstore runs or is down.
 *
 *   rs_spool_put SPOOL_DIR USER|- SENDER MESSAGE_FILE RCPT...
 *
 * USER "-" queues with no local user (a DSN then goes to SENDER through
 * the spool); SENDER "" is the null sender. Exit 0, or 1 with a message.
 */
#include <stdio.h>
#include <string.h>

#include "backend/spool.h"

int
main(int argc, char **argv)
{
	struct spool *sp = NULL;
	const char *err = NULL;
	char id[SPOOL_ID_LEN + 1];
	struct spool_msg m = { .fd = -1 };

	if (argc < 6) {
		fprintf(stderr,
		    "usage: rs_spool_put SPOOL_DIR USER|- SENDER "
		    "MESSAGE_FILE RCPT...\n");
		return 1;
	}
	m.user = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	m.sender = argv[3];
	m.path = argv[4];
	m.rcpts = (const char *const *)(argv + 5);
	m.nrcpts = (size_t)(argc - 5);
	m.prefix =
	    "Received: from test by rs_spool_put; for the relay test\r\n";
	m.prefix_len = strlen(m.prefix);
	if (spool_attach(argv[1], &sp, &err) == -1 ||
	    spool_put(sp, &m, id, &err) == -1) {
		fprintf(stderr, "rs_spool_put: %s\n", err);
		spool_free(&sp);
		return 1;
	}
	spool_free(&sp);
	printf("%s\n", id);
	return 0;
}
