/*
 * backend_ldap.c - the LDAP user back-end: a user is found by a subtree
 * search under a base DN with a filter built from a template; then either
 * the directory checks the password (BIND mode: a simple bind as the DN
 * found) or a stored hash attribute is read and verified locally like any
 * passwd-file hash (COMPARE mode).
 *
 * Relies on libldap's synchronous API, called only from the verify pool's
 * worker threads, with a network timeout for connects and a timeout on
 * every bind and search, so no call blocks longer than those. Connections
 * are kept in a small mutex-protected stack; each remembers whether it is
 * bound as the service account, since a user bind changes that. A kept
 * connection found dead is retried once on a fresh one. TLS (ldaps:// or
 * StartTLS) gets a per-connection context with the configured CA and
 * certificate checking on. The process must ignore SIGPIPE, as the daemons
 * do.
 *
 * Must never: put a user name into a filter unescaped (RFC 4515), send an
 * empty password to a bind (that is an unauthenticated bind and succeeds),
 * say "unknown user" or "wrong password" when the directory could not be
 * asked (TEMPFAIL), or put a password into an error text or a log.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <ldap.h>
#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/auth_private.h"

#define LDAP_DEFAULT_FILTER "(uid=%u)"
#define LDAP_DEFAULT_PASSWORD_ATTR "userPassword"
#define LDAP_NET_TIMEOUT_MS 2000
#define LDAP_OP_TIMEOUT_MS 3000
#define LDAP_IDLE_MAX 4
#define LDAP_FILTER_MAX 4096
#define LDAP_ATTRS_MAX 10
#define LDAP_PAIRS_MAX 256
#define LDAP_DN_FIELD "ldap_dn" /* where BIND mode keeps the DN */

/* One connection and who it is bound as now. */
struct ldap_conn {
	LDAP *ld;
	bool as_service;
};

struct auth_ldap {
	struct auth_backend backend; /* first: the ops cast back */
	char *uri, *ca_file, *bind_dn, *bind_password, *base, *filter;
	bool starttls;
	enum auth_ldap_mode mode;
	char *password_attr, *host_attr, *quota_attr, *alias_attr;
	char *nologin_attr, *allow_nets_attr;
	struct timeval net_tv, op_tv;
	char *attrs[LDAP_ATTRS_MAX + 1]; /* what a search asks for */

	pthread_mutex_t lock; /* idle[] and n_idle */
	struct ldap_conn *idle;
	unsigned n_idle, max_idle;
};

/* set-up */
static int copy_conf(struct auth_ldap *l, const struct auth_ldap_conf *c);
static int check_uri(const char *uri, bool starttls, const char **error_r);
static int check_filter(const char *tmpl, const char **error_r);
static void list_attrs(struct auth_ldap *l);

/* connections */
static int conn_take(struct auth_ldap *l, struct ldap_conn *c, bool *fresh_r,
    const char **error_r);
static int conn_open(struct auth_ldap *l, struct ldap_conn *c,
    const char **error_r);
static int conn_options(struct auth_ldap *l, LDAP *ld);
static int conn_bind(LDAP *ld, const char *dn, const char *pw, size_t pwlen);
static void conn_give(struct auth_ldap *l, struct ldap_conn *c);
static void conn_drop(struct ldap_conn *c);
static bool rc_dead(int rc);
static bool rc_closed(int rc);

/* lookup */
static enum auth_lookup ldap_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r);
static int search(struct auth_ldap *l, const char *filter, LDAPMessage **res_r,
    LDAP **ld_r, struct ldap_conn *c, const char **error_r);
static enum auth_lookup read_entry(struct auth_ldap *l, LDAP *ld,
    LDAPMessage *res, const char *user, struct auth_entry **entry_r,
    const char **error_r);
static bool usable_hash(const char **v, size_t *vlen);
static int expand_filter(const char *tmpl, const char *user, char *out,
    size_t size);
static int escape_value(const char *s, size_t n, char *out, size_t size,
    size_t *len_r);

/* verify (BIND mode) */
static enum auth_status ldap_verify(struct auth_backend *b,
    const struct auth_entry *e, const char *password, size_t pwlen,
    const char **error_r);
static enum auth_status bind_answer(int rc, const char **error_r);

static void free_secret(char *s);

static const struct auth_backend_ops ldap_bind_ops = {
	.name = "ldap",
	.lookup_nonblocking = false,
	.lookup = ldap_lookup,
	.verify = ldap_verify,
};

static const struct auth_backend_ops ldap_compare_ops = {
	.name = "ldap",
	.lookup_nonblocking = false,
	.lookup = ldap_lookup,
};

/* ---- public ----------------------------------------------------------- */

int
auth_ldap_mode_parse(const char *s, enum auth_ldap_mode *mode_r)
{
	if (strcasecmp(s, "bind") == 0)
		*mode_r = AUTH_LDAP_BIND;
	else if (strcasecmp(s, "compare") == 0 || strcasecmp(s, "search") == 0)
		*mode_r = AUTH_LDAP_COMPARE;
	else
		return -1;
	return 0;
}

struct auth_ldap *
auth_ldap_new(const struct auth_ldap_conf *conf, const char **error_r)
{
	struct auth_ldap *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	pthread_mutex_init(&l->lock, NULL);
	if (conf->mode != AUTH_LDAP_BIND && conf->mode != AUTH_LDAP_COMPARE) {
		*error_r = "ldap: unknown mode";
		goto fail;
	}
	l->backend.ops = conf->mode == AUTH_LDAP_BIND ? &ldap_bind_ops :
							&ldap_compare_ops;
	if (conf->uri == NULL || conf->base == NULL) {
		*error_r = "ldap: uri and base are required";
		goto fail;
	}
	if (check_uri(conf->uri, conf->starttls, error_r) == -1 ||
	    check_filter(conf->filter ? conf->filter : LDAP_DEFAULT_FILTER,
		error_r) == -1)
		goto fail;
	if (conf->bind_dn != NULL && conf->bind_password == NULL) {
		*error_r = "ldap: bind_dn without bind_password";
		goto fail;
	}
	if (copy_conf(l, conf) == -1) {
		*error_r = "out of memory";
		goto fail;
	}
	list_attrs(l);
	return l;
fail:
	auth_ldap_free(&l);
	return NULL;
}

void
auth_ldap_free(struct auth_ldap **lp)
{
	struct auth_ldap *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	for (unsigned i = 0; i < l->n_idle; i++)
		conn_drop(&l->idle[i]);
	free(l->idle);
	free_secret(l->bind_password);
	free(l->uri);
	free(l->ca_file);
	free(l->bind_dn);
	free(l->base);
	free(l->filter);
	free(l->password_attr);
	free(l->host_attr);
	free(l->quota_attr);
	free(l->alias_attr);
	free(l->nologin_attr);
	free(l->allow_nets_attr);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

struct auth_backend *
auth_ldap_backend(struct auth_ldap *l)
{
	return &l->backend;
}

/* ---- set-up ----------------------------------------------------------- */

static int
copy_conf(struct auth_ldap *l, const struct auth_ldap_conf *c)
{
	l->starttls = c->starttls;
	l->mode = c->mode;
	l->net_tv = backend_ms_to_tv(c->network_timeout_ms,
	    LDAP_NET_TIMEOUT_MS);
	l->op_tv = backend_ms_to_tv(c->timeout_ms, LDAP_OP_TIMEOUT_MS);
	l->max_idle = c->max_idle != 0 ? c->max_idle : LDAP_IDLE_MAX;
	if ((l->idle = calloc(l->max_idle, sizeof(*l->idle))) == NULL)
		return -1;
	return backend_dup_opt(c->uri, &l->uri) == -1 ||
		backend_dup_opt(c->ca_file, &l->ca_file) == -1 ||
		backend_dup_opt(c->bind_dn, &l->bind_dn) == -1 ||
		backend_dup_opt(c->bind_password, &l->bind_password) == -1 ||
		backend_dup_opt(c->base, &l->base) == -1 ||
		backend_dup_opt(c->filter ? c->filter : LDAP_DEFAULT_FILTER,
		    &l->filter) == -1 ||
		backend_dup_opt(c->password_attr ? c->password_attr :
						   LDAP_DEFAULT_PASSWORD_ATTR,
		    &l->password_attr) == -1 ||
		backend_dup_opt(c->host_attr, &l->host_attr) == -1 ||
		backend_dup_opt(c->quota_attr, &l->quota_attr) == -1 ||
		backend_dup_opt(c->alias_attr, &l->alias_attr) == -1 ||
		backend_dup_opt(c->nologin_attr, &l->nologin_attr) == -1 ||
		backend_dup_opt(c->allow_nets_attr, &l->allow_nets_attr) == -1 ?
	    -1 :
	    0;
}

/* Every URI of the list must be ldap:// or ldaps://; StartTLS makes no
 * sense over ldaps:// (already TLS). */
static int
check_uri(const char *uri, bool starttls, const char **error_r)
{
	const char *p = uri;
	int n = 0;

	while (*p != '\0') {
		size_t len = strcspn(p, " \t,");

		if (len > 0) {
			if (strncasecmp(p, "ldap://", 7) == 0) {
				n++;
			} else if (strncasecmp(p, "ldaps://", 8) == 0) {
				if (starttls) {
					*error_r = "ldap: starttls with an "
						   "ldaps:// URI";
					return -1;
				}
				n++;
			} else {
				*error_r = "ldap: URI must be ldap:// or "
					   "ldaps://";
				return -1;
			}
		}
		p += len;
		p += strspn(p, " \t,");
	}
	if (n == 0) {
		*error_r = "ldap: empty URI";
		return -1;
	}
	return 0;
}

static int
check_filter(const char *tmpl, const char **error_r)
{
	size_t n = strlen(tmpl);

	if (n == 0 || n > LDAP_FILTER_MAX / 4) {
		*error_r = "ldap: filter empty or too long";
		return -1;
	}
	for (const char *p = tmpl; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		p++;
		if (*p != 'u' && *p != 'n' && *p != 'd' && *p != '%') {
			*error_r = "ldap: filter knows only %u, %n, %d, %%";
			return -1;
		}
	}
	return 0;
}

/* The mapped attributes, the password in COMPARE mode, and what tells a
 * changed entry from an unchanged one (for the serial). */
static void
list_attrs(struct auth_ldap *l)
{
	char *maybe[] = { l->host_attr, l->quota_attr, l->alias_attr,
		l->nologin_attr, l->allow_nets_attr };
	size_t n = 0;

	l->attrs[n++] = "entryCSN";
	l->attrs[n++] = "modifyTimestamp";
	if (l->mode == AUTH_LDAP_COMPARE)
		l->attrs[n++] = l->password_attr;
	for (size_t i = 0; i < sizeof(maybe) / sizeof(maybe[0]); i++)
		if (maybe[i] != NULL)
			l->attrs[n++] = maybe[i];
	l->attrs[n] = NULL;
}

/* ---- lookup ----------------------------------------------------------- */

static enum auth_lookup
ldap_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r)
{
	struct auth_ldap *l = (struct auth_ldap *)b;
	char filter[LDAP_FILTER_MAX];
	struct ldap_conn c;
	LDAPMessage *res = NULL;
	enum auth_lookup ret;
	LDAP *ld;
	int rc;

	*entry_r = NULL;
	if (expand_filter(l->filter, user, filter, sizeof(filter)) == -1) {
		*error_r = "ldap: expanded filter too long";
		return AUTH_LOOKUP_TEMPFAIL;
	}
	rc = search(l, filter, &res, &ld, &c, error_r);
	if (rc == -1)
		return AUTH_LOOKUP_TEMPFAIL;
	ret = read_entry(l, ld, res, user, entry_r, error_r);
	ldap_msgfree(res);
	conn_give(l, &c);
	return ret;
}

/* Bind as the service account if needed, then search; once more on a
 * fresh connection if a kept one was dead. On 0 the caller owns *res_r and
 * gives c back. */
static int
search(struct auth_ldap *l, const char *filter, LDAPMessage **res_r,
    LDAP **ld_r, struct ldap_conn *c, const char **error_r)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		struct timeval tv = l->op_tv;
		bool fresh;
		int rc = LDAP_SUCCESS;

		*res_r = NULL;
		if (conn_take(l, c, &fresh, error_r) == -1)
			return -1;
		if (!c->as_service) {
			rc = conn_bind(c->ld, l->bind_dn, l->bind_password,
			    l->bind_password ? strlen(l->bind_password) : 0);
			c->as_service = rc == LDAP_SUCCESS;
		}
		if (rc == LDAP_SUCCESS)
			rc = ldap_search_ext_s(c->ld, l->base,
			    LDAP_SCOPE_SUBTREE, filter, l->attrs, 0, NULL, NULL,
			    &tv, 2, res_r);
		/* Size limit: two entries came back, which is an answer. */
		if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) {
			*ld_r = c->ld;
			return 0;
		}
		ldap_msgfree(*res_r);
		*res_r = NULL;
		*error_r = rc == LDAP_NO_SUCH_OBJECT ?
		    "ldap: search base does not exist" :
		    rc == LDAP_INVALID_CREDENTIALS ?
		    "ldap: service account bind refused" :
		    ldap_err2string(rc);
		if (!rc_dead(rc)) {
			/* The connection is fine; the request was not. */
			conn_give(l, c);
			return -1;
		}
		conn_drop(c);
		/* Only a closed connection is retried: a timeout again
		 * would double the wait. */
		if (fresh || !rc_closed(rc))
			return -1;
	}
	return -1;
}

/* Exactly one entry is a user; none is unknown; more is a filter that
 * does not identify users, which must not log anyone in. */
static enum auth_lookup
read_entry(struct auth_ldap *l, LDAP *ld, LDAPMessage *res, const char *user,
    struct auth_entry **entry_r, const char **error_r)
{
	struct auth_pair pairs[LDAP_PAIRS_MAX];
	struct berval **vals[LDAP_ATTRS_MAX] = { NULL };
	char version[256] = "", *dn = NULL;
	LDAPMessage *m;
	enum auth_lookup ret = AUTH_LOOKUP_TEMPFAIL;
	size_t n = 0, nv = 0;
	int count = ldap_count_entries(ld, res);

	if (count == 0)
		return AUTH_LOOKUP_NOTFOUND;
	if (count != 1) {
		*error_r = "ldap: filter matched more than one entry";
		return AUTH_LOOKUP_TEMPFAIL;
	}
	m = ldap_first_entry(ld, res);
	if ((dn = ldap_get_dn(ld, m)) == NULL) {
		*error_r = "ldap: entry without a DN";
		return AUTH_LOOKUP_TEMPFAIL;
	}
	pairs[n++] = (struct auth_pair){ .key = LDAP_DN_FIELD,
		.value = dn,
		.vlen = strlen(dn) };
	for (size_t i = 0; l->attrs[i] != NULL && nv < LDAP_ATTRS_MAX; i++) {
		const char *a = l->attrs[i];
		const char *key = NULL;
		struct berval **bv = ldap_get_values_len(ld, m, a);
		bool scalar = true;

		vals[nv++] = bv;
		if (bv == NULL)
			continue;
		if (i < 2) {
			/* entryCSN, modifyTimestamp: the serial's input. */
			size_t have = strlen(version);

			snprintf(version + have, sizeof(version) - have,
			    "%.*s;", (int)bv[0]->bv_len, bv[0]->bv_val);
			continue;
		}
		if (l->mode == AUTH_LDAP_COMPARE && a == l->password_attr) {
			key = "password";
		} else if (a == l->host_attr) {
			key = "host";
		} else if (a == l->quota_attr) {
			key = "quota";
		} else if (a == l->nologin_attr) {
			key = "nologin";
		} else {
			key = a == l->alias_attr ? "alias" : "allow_nets";
			scalar = false;
		}
		for (size_t j = 0; bv[j] != NULL && n < LDAP_PAIRS_MAX; j++) {
			const char *v = bv[j]->bv_val;
			size_t vlen = bv[j]->bv_len;

			if (strcmp(key, "password") == 0 &&
			    !usable_hash(&v, &vlen))
				continue;
			pairs[n++] = (struct auth_pair){ .key = key,
				.value = v,
				.vlen = vlen };
			if (scalar)
				break; /* the first value of a scalar */
		}
	}
	if (auth_entry_build(user, pairs, n, version, entry_r, error_r) == 0) {
		(*entry_r)->verify_by_backend = l->mode == AUTH_LDAP_BIND;
		ret = AUTH_LOOKUP_FOUND;
	}
	for (size_t i = 0; i < nv; i++)
		if (vals[i] != NULL)
			ldap_value_free_len(vals[i]);
	ldap_memfree(dn);
	return ret;
}

/* Is this userPassword value one of our hashes? Several values may be
 * stored (one for slapd's own binds, one for us); the first we can
 * verify is taken. OpenLDAP's {CRYPT} holds a bare crypt string, which
 * the scheme code recognises by its prefix, so the tag is dropped. */
static bool
usable_hash(const char **v, size_t *vlen)
{
	char buf[1024];
	enum auth_scheme s;
	const char *err;

	if (*vlen > 7 && strncasecmp(*v, "{CRYPT}", 7) == 0) {
		*v += 7;
		*vlen -= 7;
	}
	if (*vlen == 0 || *vlen >= sizeof(buf) ||
	    memchr(*v, '\0', *vlen) != NULL)
		return false;
	memcpy(buf, *v, *vlen);
	buf[*vlen] = '\0';
	return auth_scheme_of(buf, &s, &err) == 0;
}

/* %u the name, %n before its last '@', %d after it; each escaped. */
static int
expand_filter(const char *tmpl, const char *user, char *out, size_t size)
{
	const char *at = strrchr(user, '@');
	size_t o = 0, ulen = strlen(user);

	for (const char *p = tmpl; *p != '\0'; p++) {
		const char *s = NULL;
		size_t n = 0;

		if (*p != '%' || p[1] == '%') {
			if (o + 1 >= size)
				return -1;
			out[o++] = *p;
			p += *p == '%';
			continue;
		}
		switch (*++p) {
		case 'u':
			s = user, n = ulen;
			break;
		case 'n':
			s = user, n = at != NULL ? (size_t)(at - user) : ulen;
			break;
		case 'd':
			s = at != NULL ? at + 1 : "";
			n = strlen(s);
			break;
		default:
			return -1; /* check_filter() keeps this away */
		}
		if (escape_value(s, n, out + o, size - o, &n) == -1)
			return -1;
		o += n;
	}
	if (o >= size)
		return -1;
	out[o] = '\0';
	return 0;
}

/* RFC 4515: '*', '(', ')', '\' and NUL as \hh. 0 with *len_r the bytes
 * written, or -1 if they do not fit. */
static int
escape_value(const char *s, size_t n, char *out, size_t size, size_t *len_r)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '*' || ch == '(' || ch == ')' || ch == '\\' ||
		    ch == '\0') {
			if (o + 3 >= size)
				return -1;
			out[o++] = '\\';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		} else {
			if (o + 1 >= size)
				return -1;
			out[o++] = (char)ch;
		}
	}
	*len_r = o;
	return 0;
}

/* ---- verify (BIND mode) ------------------------------------------------- */

static enum auth_status
ldap_verify(struct auth_backend *b, const struct auth_entry *e,
    const char *password, size_t pwlen, const char **error_r)
{
	struct auth_ldap *l = (struct auth_ldap *)b;
	const char *dn = auth_entry_field(e, LDAP_DN_FIELD);

	/* Empty is an unauthenticated bind; a NUL would be cut short. */
	if (dn == NULL || *dn == '\0' || pwlen == 0 ||
	    memchr(password, '\0', pwlen) != NULL)
		return AUTH_FAIL;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct ldap_conn c;
		bool fresh;
		int rc;

		if (conn_take(l, &c, &fresh, error_r) == -1)
			return AUTH_TEMPFAIL;
		rc = conn_bind(c.ld, dn, password, pwlen);
		/* Bound as the user now, or as nobody after a failure. */
		c.as_service = false;
		if (rc_dead(rc)) {
			conn_drop(&c);
			*error_r = ldap_err2string(rc);
			if (fresh || !rc_closed(rc))
				return AUTH_TEMPFAIL;
			continue;
		}
		conn_give(l, &c);
		return bind_answer(rc, error_r);
	}
	return AUTH_TEMPFAIL;
}

/* What a user's bind result means. The refusals a directory gives for a
 * wrong password or a locked account are a plain FAIL; anything else is
 * the directory's trouble. */
static enum auth_status
bind_answer(int rc, const char **error_r)
{
	switch (rc) {
	case LDAP_SUCCESS:
		return AUTH_OK;
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INAPPROPRIATE_AUTH:
	case LDAP_UNWILLING_TO_PERFORM:
	case LDAP_CONSTRAINT_VIOLATION:
	case LDAP_NO_SUCH_OBJECT:
	case LDAP_INVALID_DN_SYNTAX:
		return AUTH_FAIL;
	default:
		*error_r = ldap_err2string(rc);
		return AUTH_TEMPFAIL;
	}
}

/* ---- connections ------------------------------------------------------ */

static int
conn_take(struct auth_ldap *l, struct ldap_conn *c, bool *fresh_r,
    const char **error_r)
{
	bool got = false;

	pthread_mutex_lock(&l->lock);
	if (l->n_idle > 0) {
		*c = l->idle[--l->n_idle];
		got = true;
	}
	pthread_mutex_unlock(&l->lock);
	*fresh_r = !got;
	return got ? 0 : conn_open(l, c, error_r);
}

/* A new handle with our options; StartTLS when asked. libldap connects
 * lazily, so a dead server shows up at the first bind or search. */
static int
conn_open(struct auth_ldap *l, struct ldap_conn *c, const char **error_r)
{
	int rc;

	c->ld = NULL;
	c->as_service = false;
	if ((rc = ldap_initialize(&c->ld, l->uri)) != LDAP_SUCCESS) {
		*error_r = ldap_err2string(rc);
		return -1;
	}
	if (conn_options(l, c->ld) == -1) {
		*error_r = "ldap: cannot set connection options";
		conn_drop(c);
		return -1;
	}
	if (l->starttls &&
	    (rc = ldap_start_tls_s(c->ld, NULL, NULL)) != LDAP_SUCCESS) {
		*error_r = rc == LDAP_CONNECT_ERROR ?
		    "ldap: StartTLS failed (certificate?)" :
		    ldap_err2string(rc);
		conn_drop(c);
		return -1;
	}
	return 0;
}

static int
conn_options(struct auth_ldap *l, LDAP *ld)
{
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND;
	int tls12 = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, zero = 0;

	if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != 0 ||
	    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != 0 ||
	    ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != 0 ||
	    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &l->net_tv) != 0 ||
	    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &l->op_tv) != 0)
		return -1;
	/* A context of our own: the process-wide TLS defaults are not
	 * ours to rely on or to change. */
	if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != 0 ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls12) != 0 ||
	    (l->ca_file != NULL &&
		ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, l->ca_file) !=
		    0) ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != 0)
		return -1;
	return 0;
}

/* A simple bind; dn NULL is anonymous. The timeout comes from
 * LDAP_OPT_TIMEOUT. */
static int
conn_bind(LDAP *ld, const char *dn, const char *pw, size_t pwlen)
{
	struct berval cred = { .bv_len = pw != NULL ? pwlen : 0,
		.bv_val = pw != NULL ? (char *)pw : "" };

	return ldap_sasl_bind_s(ld, dn != NULL ? dn : "", LDAP_SASL_SIMPLE,
	    &cred, NULL, NULL, NULL);
}

static void
conn_give(struct auth_ldap *l, struct ldap_conn *c)
{
	pthread_mutex_lock(&l->lock);
	if (l->n_idle < l->max_idle) {
		l->idle[l->n_idle++] = *c;
		c->ld = NULL;
	}
	pthread_mutex_unlock(&l->lock);
	conn_drop(c);
}

static void
conn_drop(struct ldap_conn *c)
{
	if (c->ld != NULL)
		ldap_unbind_ext_s(c->ld, NULL, NULL);
	c->ld = NULL;
}

/* The connection cannot be used again (an operation may even still be
 * outstanding on it after a timeout). */
static bool
rc_dead(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT ||
	    rc == LDAP_CONNECT_ERROR || rc == LDAP_LOCAL_ERROR ||
	    rc == LDAP_ENCODING_ERROR || rc == LDAP_DECODING_ERROR ||
	    rc == LDAP_NO_MEMORY || rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY ||
	    rc == LDAP_OTHER;
}

/* A kept connection the server has closed (restarted, idle timeout). */
static bool
rc_closed(int rc)
{
	return rc == LDAP_SERVER_DOWN;
}

/* ---- helpers ---------------------------------------------------------- */

static void
free_secret(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}
