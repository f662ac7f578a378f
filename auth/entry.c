/*
 * entry.c - what every back-end shares: user entries and their reference
 * counts, the allow_nets= check (networks themselves are core/net.h),
 * user name normalisation, the lookup wrapper, the names of result codes and the one decimal-number reader.
 *
 * Relies on C11 atomics for reference counts: an entry is handed from a
 * worker thread to a ring thread and dropped there, so the count is the
 * only thing ever written after an entry is published. Nothing here may
 * block or allocate on the lookup path.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/auth_private.h"

/* ---- reference counts ------------------------------------------------- */

void
auth_ref_init(struct auth_ref *ref, void (*release)(struct auth_ref *))
{
	atomic_init(&ref->refs, 1);
	ref->release = release;
}

struct auth_entry *
auth_entry_ref(struct auth_entry *e)
{
	atomic_fetch_add_explicit(&e->owner->refs, 1, memory_order_relaxed);
	return e;
}

void
auth_entry_unref(struct auth_entry **ep)
{
	struct auth_entry *e;
	struct auth_ref *ref;

	if (ep == NULL || (e = *ep) == NULL)
		return;
	*ep = NULL;
	ref = e->owner;
	/* acq_rel: the releasing thread must see every write made by the
	 * others before they let go. */
	if (atomic_fetch_sub_explicit(&ref->refs, 1, memory_order_acq_rel) == 1)
		ref->release(ref);
}

/* ---- entry queries ---------------------------------------------------- */

bool
auth_user_allowed_from(const struct auth_entry *e, const struct sockaddr *sa)
{
	if (e->n_allow_nets == 0)
		return true;
	if (sa == NULL)
		return false;
	for (size_t i = 0; i < e->n_allow_nets; i++)
		if (net_match(&e->allow_nets[i], sa))
			return true;
	return false;
}

enum auth_reason
auth_entry_policy(const struct auth_entry *e, const struct sockaddr *client)
{
	if (e->nologin)
		return AUTH_R_NOLOGIN;
	if (!auth_user_allowed_from(e, client))
		return AUTH_R_NETWORK;
	return AUTH_R_NONE;
}

bool
auth_entry_has_alias(const struct auth_entry *e, const char *addr)
{
	char norm[AUTH_USER_MAX + 1];

	if (auth_user_normalize(addr, strlen(addr), norm) == -1)
		return false;
	if (strcmp(norm, e->user) == 0)
		return true;
	for (size_t i = 0; i < e->n_aliases; i++)
		if (strcmp(norm, e->aliases[i]) == 0)
			return true;
	return false;
}

const char *
auth_entry_field(const struct auth_entry *e, const char *key)
{
	for (size_t i = 0; i < e->n_fields; i++) {
		if (strcmp(e->fields[i].key, key) == 0)
			return e->fields[i].value ? e->fields[i].value : "";
	}
	return NULL;
}

/* ---- numbers ---------------------------------------------------------- */

int
auth_u32_parse(const char *s, size_t n, uint32_t max, uint32_t *v_r)
{
	uint64_t v = 0;

	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}

/* ---- user names and lookup -------------------------------------------- */

int
auth_user_normalize(const char *in, size_t n, char *out)
{
	if (n == 0 || n > AUTH_USER_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= ' ' || c == ':' || c == 0x7f)
			return -1;
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
	}
	out[n] = '\0';
	return (int)n;
}

enum auth_lookup
auth_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r)
{
	char norm[AUTH_USER_MAX + 1];
	size_t n = strnlen(user, AUTH_USER_MAX + 1);

	*entry_r = NULL;
	if (auth_user_normalize(user, n, norm) == -1)
		return AUTH_LOOKUP_NOTFOUND;
	return b->ops->lookup(b, norm, entry_r, error_r);
}

/* ---- names ------------------------------------------------------------ */

const char *
auth_status_name(enum auth_status s)
{
	static const char *const names[] = { "ok", "fail", "tempfail" };

	return (unsigned)s < 3 ? names[s] : "unknown";
}

const char *
auth_reason_name(enum auth_reason r)
{
	static const char *const names[AUTH_R_MAX] = {
		[AUTH_R_NONE] = "none",
		[AUTH_R_PASSWORD] = "password",
		[AUTH_R_UNKNOWN] = "unknown_user",
		[AUTH_R_NOLOGIN] = "nologin",
		[AUTH_R_NETWORK] = "network",
		[AUTH_R_NOPASS] = "no_password",
		[AUTH_R_BACKEND] = "backend",
		[AUTH_R_OVERFLOW] = "overflow",
	};

	return (unsigned)r < AUTH_R_MAX ? names[r] : "unknown";
}
