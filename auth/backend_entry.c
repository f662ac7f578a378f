/*
 * backend_entry.c - user entries for back-ends that fetch one record at a
 * time (Redis, LDAP): the record's key/value pairs are copied into one
 * stand-alone entry with its own reference count, and the extra fields are
 * given the meaning they have in a passwd-file.
 *
 * Relies on the caller having normalised the user name, and on the
 * reference count in entry.c: the entry is built on a worker thread and
 * may be dropped on a ring thread. The serial is a hash of the record, so
 * the verify cache sees an unchanged record as the same user and a changed
 * one (a new password above all) as a new one.
 *
 * Must never: accept a record it cannot fully understand (a broken
 * allow_nets would otherwise mean "anywhere"), put a value into an error
 * text, or leave a password hash in freed memory.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth.h"
#include "auth/auth_private.h"

#define LIST_SEPARATORS ", \t"

struct built_entry {
	struct auth_ref ref; /* first: release() casts back */
	struct auth_entry e;
	char *text; /* every string of e, one block */
	size_t text_len;
	struct net *nets;
	const char **aliases;
	struct auth_field *fields;
};

/* Which known key a pair carries; bit numbers for "seen twice". */
enum known_key {
	K_OTHER = 0,
	K_PASSWORD,
	K_HOST,
	K_NOLOGIN,
	K_ALLOW_NETS,
	K_QUOTA,
	K_ALIAS,
	K_UID,
	K_GID,
	K_HOME,
};

/* building */
static enum known_key known_key(const char *key);
static size_t count_items(const char *v, size_t n);
static int copy_pairs(struct built_entry *b, const char *user,
    const struct auth_pair *pairs, size_t n, char **values,
    const char **error_r);
static int interpret(struct built_entry *b, const char *key, char *value,
    unsigned *seen, const char **error_r);
static int add_nets(struct built_entry *b, char *v, const char **error_r);
static int add_aliases(struct built_entry *b, char *v, const char **error_r);

/* values */
static int parse_bool(const char *s, bool *v_r);
static uint64_t record_serial(const char *user, const struct auth_pair *pairs,
    size_t n, const char *version);
static void built_release(struct auth_ref *ref);

/* ---- public ----------------------------------------------------------- */

int
auth_entry_build(const char *user, const struct auth_pair *pairs, size_t n,
    const char *version, struct auth_entry **entry_r, const char **error_r)
{
	struct built_entry *b;
	char **values = NULL;
	size_t n_nets = 0, n_aliases = 0, n_fields = 0;
	unsigned seen = 0;

	*entry_r = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		goto nomem;
	auth_ref_init(&b->ref, built_release);
	/* Upper bounds first, so the arrays never move once filled. */
	for (size_t i = 0; i < n; i++) {
		switch (known_key(pairs[i].key)) {
		case K_ALLOW_NETS:
			n_nets += count_items(pairs[i].value, pairs[i].vlen);
			break;
		case K_ALIAS:
			n_aliases += count_items(pairs[i].value, pairs[i].vlen);
			break;
		case K_OTHER:
			n_fields++;
			break;
		default:
			break;
		}
	}
	if ((values = calloc(n + 1, sizeof(*values))) == NULL ||
	    (n_nets && (b->nets = calloc(n_nets, sizeof(*b->nets))) == NULL) ||
	    (n_aliases &&
		(b->aliases = calloc(n_aliases, sizeof(*b->aliases))) ==
		    NULL) ||
	    (n_fields &&
		(b->fields = calloc(n_fields, sizeof(*b->fields))) == NULL))
		goto nomem;
	if (copy_pairs(b, user, pairs, n, values, error_r) == -1)
		goto fail;
	b->e.gecos = b->e.home = b->e.shell = "";
	for (size_t i = 0; i < n; i++)
		if (interpret(b, pairs[i].key, values[i], &seen, error_r) == -1)
			goto fail;
	b->e.allow_nets = b->nets;
	b->e.aliases = b->aliases;
	b->e.fields = b->fields;
	b->e.serial = record_serial(user, pairs, n, version);
	b->e.owner = &b->ref;
	free(values);
	*entry_r = &b->e;
	return 0;
nomem:
	*error_r = "out of memory";
fail:
	free(values);
	if (b != NULL)
		built_release(&b->ref);
	return -1;
}

/* quota= for every back-end: the passwd-file (auth/passdb.c) and records. */
int
auth_size_parse(const char *s, uint64_t *v_r)
{
	static const char units[] = "KMGT";
	uint64_t v = 0, mult = 1;
	const char *u;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != '\0' && (u = strchr(units, *s & ~0x20)) != NULL) {
		mult = 1ULL << (10 * (u - units + 1));
		s++;
	}
	if (*s == 'B' || *s == 'b')
		s++;
	if (*s != '\0' || v > UINT64_MAX / mult)
		return -1;
	*v_r = v * mult;
	return 0;
}

/* ---- building --------------------------------------------------------- */

static enum known_key
known_key(const char *key)
{
	static const char *const names[] = {
		[K_PASSWORD] = "password",
		[K_HOST] = "host",
		[K_NOLOGIN] = "nologin",
		[K_ALLOW_NETS] = "allow_nets",
		[K_QUOTA] = "quota",
		[K_ALIAS] = "alias",
		[K_UID] = "uid",
		[K_GID] = "gid",
		[K_HOME] = "home",
	};

	for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(key, names[i]) == 0)
			return (enum known_key)i;
	return K_OTHER;
}

/* At most how many list items a value splits into. */
static size_t
count_items(const char *v, size_t n)
{
	size_t items = 1;

	for (size_t i = 0; i < n; i++)
		if (strchr(LIST_SEPARATORS, v[i]) != NULL && v[i] != '\0')
			items++;
	return items;
}

/* The user name and every key and value into one block; values[i] points
 * at the copy of pairs[i].value. */
static int
copy_pairs(struct built_entry *b, const char *user,
    const struct auth_pair *pairs, size_t n, char **values,
    const char **error_r)
{
	size_t len = strlen(user) + 1, off;

	for (size_t i = 0; i < n; i++)
		len += strlen(pairs[i].key) + 1 + pairs[i].vlen + 1;
	if ((b->text = malloc(len)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	b->text_len = len;
	memcpy(b->text, user, strlen(user) + 1);
	b->e.user = b->text;
	off = strlen(user) + 1;
	for (size_t i = 0; i < n; i++) {
		size_t klen = strlen(pairs[i].key) + 1;

		if (pairs[i].vlen != 0 &&
		    memchr(pairs[i].value, '\0', pairs[i].vlen) != NULL) {
			*error_r = "a field's value holds a NUL byte";
			return -1;
		}
		memcpy(b->text + off, pairs[i].key, klen);
		off += klen;
		values[i] = b->text + off;
		if (pairs[i].vlen != 0)
			memcpy(values[i], pairs[i].value, pairs[i].vlen);
		values[i][pairs[i].vlen] = '\0';
		off += pairs[i].vlen + 1;
	}
	return 0;
}

/* Give one pair its meaning. key is the caller's; a field keeps the copy
 * in b instead, which copy_pairs() put right before the value's copy. */
static int
interpret(struct built_entry *b, const char *key, char *value, unsigned *seen,
    const char **error_r)
{
	enum known_key k = known_key(key);
	struct auth_entry *e = &b->e;

	/* Lists may repeat (multi-valued LDAP attributes); scalars not. */
	if (k != K_OTHER && k != K_ALLOW_NETS && k != K_ALIAS) {
		if (*seen & (1u << k)) {
			*error_r = "a field is given twice";
			return -1;
		}
		*seen |= 1u << k;
	}
	switch (k) {
	case K_PASSWORD:
		e->password = *value != '\0' ? value : NULL;
		return 0;
	case K_HOST:
		e->host = *value != '\0' ? value : NULL;
		return 0;
	case K_HOME:
		e->home = value;
		return 0;
	case K_NOLOGIN:
		if (parse_bool(value, &e->nologin) == -1) {
			*error_r = "nologin is not a yes/no value";
			return -1;
		}
		return 0;
	case K_QUOTA:
		if (auth_size_parse(value, &e->quota) == -1) {
			*error_r = "quota is not a size (e.g. 512M)";
			return -1;
		}
		e->has_quota = true;
		return 0;
	case K_UID:
	case K_GID:
		if (auth_u32_parse(value, strlen(value), UINT32_MAX,
			k == K_UID ? &e->uid : &e->gid) == -1) {
			*error_r = "uid or gid is not a number";
			return -1;
		}
		*(k == K_UID ? &e->has_uid : &e->has_gid) = true;
		return 0;
	case K_ALLOW_NETS:
		return add_nets(b, value, error_r);
	case K_ALIAS:
		return add_aliases(b, value, error_r);
	case K_OTHER:
		b->fields[e->n_fields++] = (struct auth_field){ .key = value -
			    strlen(key) - 1,
			.value = value };
		return 0;
	}
	return 0;
}

static int
add_nets(struct built_entry *b, char *v, const char **error_r)
{
	char *save = NULL, *tok;
	size_t before = b->e.n_allow_nets;

	for (tok = strtok_r(v, LIST_SEPARATORS, &save); tok != NULL;
	     tok = strtok_r(NULL, LIST_SEPARATORS, &save)) {
		if (net_parse(tok, strlen(tok), &b->nets[b->e.n_allow_nets]) ==
		    -1) {
			*error_r = "allow_nets holds something that is not a "
				   "network (addr or addr/prefix, host bits 0)";
			return -1;
		}
		b->e.n_allow_nets++;
	}
	/* Empty would mean "from anywhere": a widening nobody asked for. */
	if (b->e.n_allow_nets == before) {
		*error_r = "allow_nets is empty";
		return -1;
	}
	return 0;
}

static int
add_aliases(struct built_entry *b, char *v, const char **error_r)
{
	char *save = NULL, *tok;
	size_t before = b->e.n_aliases;

	for (tok = strtok_r(v, LIST_SEPARATORS, &save); tok != NULL;
	     tok = strtok_r(NULL, LIST_SEPARATORS, &save)) {
		if (auth_user_normalize(tok, strlen(tok), tok) == -1) {
			*error_r = "alias holds an invalid address";
			return -1;
		}
		b->aliases[b->e.n_aliases++] = tok;
	}
	if (b->e.n_aliases == before) {
		*error_r = "alias is empty";
		return -1;
	}
	return 0;
}

/* ---- values ----------------------------------------------------------- */

/* A present-but-empty field counts as set, as a bare passwd-file flag. */
static int
parse_bool(const char *s, bool *v_r)
{
	static const char *const yes[] = { "", "1", "yes", "true", "on", "y" };
	static const char *const no[] = { "0", "no", "false", "off", "n" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(s, yes[i]) == 0)
			return *v_r = true, 0;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(s, no[i]) == 0)
			return *v_r = false, 0;
	return -1;
}

/* SHA-256 per pair, summed so that the order a server lists the fields in
 * does not matter, then hashed once more with the user and version. */
static uint64_t
record_serial(const char *user, const struct auth_pair *pairs, size_t n,
    const char *version)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	uint64_t sum = 0, part, serial = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL)
		return 0; /* serial 0: the cache then just misses more */
	for (size_t i = 0; i < n; i++) {
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		EVP_DigestUpdate(ctx, pairs[i].key, strlen(pairs[i].key) + 1);
		EVP_DigestUpdate(ctx, pairs[i].value, pairs[i].vlen);
		EVP_DigestFinal_ex(ctx, md, NULL);
		memcpy(&part, md, sizeof(part));
		sum += part;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, user, strlen(user) + 1);
	EVP_DigestUpdate(ctx, &sum, sizeof(sum));
	if (version != NULL)
		EVP_DigestUpdate(ctx, version, strlen(version));
	EVP_DigestFinal_ex(ctx, md, NULL);
	memcpy(&serial, md, sizeof(serial));
	EVP_MD_CTX_free(ctx);
	OPENSSL_cleanse(md, sizeof(md));
	return serial;
}

static void
built_release(struct auth_ref *ref)
{
	struct built_entry *b = (struct built_entry *)ref;

	if (b->text != NULL) {
		OPENSSL_cleanse(b->text, b->text_len);
		free(b->text);
	}
	free(b->nets);
	free(b->aliases);
	free(b->fields);
	free(b);
}

struct timeval
backend_ms_to_tv(unsigned ms, unsigned dflt)
{
	if (ms == 0)
		ms = dflt;
	return (struct timeval){ .tv_sec = ms / 1000,
		.tv_usec = (suseconds_t)(ms % 1000) * 1000 };
}

int
backend_dup_opt(const char *s, char **out_r)
{
	*out_r = NULL;
	if (s == NULL)
		return 0;
	return (*out_r = strdup(s)) != NULL ? 0 : -1;
}
