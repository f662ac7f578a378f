/*
 * auth_private.h - declarations shared by the files of auth/ and by the
 * back-ends that will join them (Redis, LDAP); not for other modules.
 */
#ifndef RG_AUTH_AUTH_PRIVATE_H
#define RG_AUTH_AUTH_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"

/* Lowercase (ASCII) the n bytes of in into out, which holds
 * AUTH_USER_MAX + 1 bytes, NUL-terminated. Returns the length, or -1 if
 * the name is empty, too long, or holds a control byte, space, ':' or
 * DEL (none of which a passwd-file can store). */
int auth_user_normalize(const char *in, size_t n, char *out);

/* Start a reference count at one owner reference. */
void auth_ref_init(struct auth_ref *ref, void (*release)(struct auth_ref *));

/* The n bytes at s as a decimal number of at most max: 1..10 digits and
 * nothing else (no sign, no space, no NUL). 0 with *v_r set, or -1 with
 * *v_r untouched. What uid=, gid=, a /prefix and a SCRAM iteration count
 * are read with (auth/entry.c). */
int auth_u32_parse(const char *s, size_t n, uint32_t max, uint32_t *v_r);

/* One field of a user record as a network back-end read it: key is a
 * NUL-terminated name, value vlen bytes (not necessarily terminated). */
struct auth_pair {
	const char *key;
	const char *value;
	size_t vlen;
};

/* Build a stand-alone entry (auth/backend_entry.c) for user (already
 * normalised) from a record's pairs: password, host, nologin, allow_nets,
 * quota, alias (the last three lists may repeat), uid, gid and home mean
 * what they mean in a passwd-file; any other key becomes an auth_field.
 * Every string is copied. The serial is a hash of user, every pair (in
 * any order) and version (NULL or extra text that changes with the
 * record, e.g. an LDAP entryCSN). Returns 0 with *entry_r holding one
 * reference, or -1 with *error_r naming the bad field, never its value. */
int auth_entry_build(const char *user, const struct auth_pair *pairs, size_t n,
    const char *version, struct auth_entry **entry_r, const char **error_r);

/* "1234", "512K", "100M", "2G", "1T", optionally followed by B: quota=
 * in a passwd-file and in a network back-end's record. 0 or -1. */
int auth_size_parse(const char *s, uint64_t *v_r);

/* backend_entry.c: small helpers the network back-ends share. */
struct timeval;
/* ms as a timeval, dflt ms when ms is 0. */
struct timeval backend_ms_to_tv(unsigned ms, unsigned dflt);
/* strdup an optional string into *out_r (NULL stays NULL). 0 or -1. */
int backend_dup_opt(const char *s, char **out_r);

#endif
