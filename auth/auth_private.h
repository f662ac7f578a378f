/*
 * auth_private.h - declarations shared by the files of auth/ and by the
 * back-ends that will join them (Redis, LDAP); not for other modules.
 */
#ifndef RG_AUTH_AUTH_PRIVATE_H
#define RG_AUTH_AUTH_PRIVATE_H

#include <stddef.h>

#include "auth/auth.h"

/* Lowercase (ASCII) the n bytes of in into out, which holds
 * AUTH_USER_MAX + 1 bytes, NUL-terminated. Returns the length, or -1 if
 * the name is empty, too long, or holds a control byte, space, ':' or
 * DEL (none of which a passwd-file can store). */
int auth_user_normalize(const char *in, size_t n, char *out);

/* Start a reference count at one owner reference. */
void auth_ref_init(struct auth_ref *ref, void (*release)(struct auth_ref *));

#endif
