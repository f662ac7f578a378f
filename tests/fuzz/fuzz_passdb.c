/*
 * fuzz_passdb.c - the passwd-file loader and the stored-password parsers
 * on arbitrary bytes. The input is served as a file through a memfd (the
 * loader reads paths), then looked up; the same bytes also go to the
 * SCRAM key parser, the scheme detector and the network parser. Nothing
 * here hashes: verification cost is not what is being fuzzed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
load(const uint8_t *data, size_t size)
{
	struct auth_passdb_conf conf = { .max_entries = 1000 };
	struct auth_passdb *db;
	struct auth_entry *e = NULL;
	const char *err = NULL;
	char path[64];
	int fd = memfd_create("fuzz_passdb", MFD_CLOEXEC);

	if (fd == -1)
		return;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	conf.path = path;
	db = auth_passdb_new(&conf, &err);
	if (db != NULL) {
		/* The first name in the file, if any, must be found. */
		char user[AUTH_USER_MAX + 1];
		size_t n = 0;

		while (n < size && n < AUTH_USER_MAX && data[n] != ':' &&
		    data[n] != '\n')
			n++;
		memcpy(user, data, n);
		user[n] = '\0';
		if (auth_lookup(auth_passdb_backend(db), user, &e, &err) ==
		    AUTH_LOOKUP_FOUND) {
			(void)auth_user_allowed_from(e, NULL);
			(void)auth_entry_has_alias(e, "x@y");
			auth_entry_unref(&e);
		}
		(void)auth_passdb_reload(db, &err);
		auth_passdb_free(&db);
	}
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sasl_scram_keys k;
	struct net net;
	enum auth_scheme s;
	const char *err;
	char *str;

	load(data, size);
	if ((str = malloc(size + 1)) == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	(void)sasl_scram_keys_parse(str, strlen(str), &k, &err);
	(void)auth_scheme_of(str, &s, &err);
	(void)net_parse(str, size, &net);
	free(str);
	return 0;
}
