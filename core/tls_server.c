/*
 * tls_server.c - TLS contexts: servers (certificates, sites, SNI, ALPN,
 * session tickets) and clients, the SSL_CTX side of core/tls.c.
 *
 * A tls_server holds one SSL_CTX per certificate name set ("site"); the
 * servername callback moves a connection to the site its SNI names, and
 * the first site is the default. Certificates with equal name sets share
 * one SSL_CTX so OpenSSL can pick ECDSA or RSA by the client's signature
 * algorithms. Session resumption is by tickets only: the stateful server
 * cache is off so memory stays flat, and a ticket key file lets every
 * instance built from it resume the others' sessions.
 *
 * Relies on: OpenSSL 3.0 (EVP_MAC ticket callback). Servers and clients
 * are immutable after construction and refcounted atomically, so worker
 * threads may share them; connections reach them through the structs in
 * core/tls_private.h. Every failing OpenSSL call is followed by clearing
 * the thread's error queue.
 *
 * Never: touches a socket, prompts for a passphrase, or lets a peer choose
 * anything but what the config allows.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/tls.h"
#include "core/tls_private.h"

/* TLS 1.2: forward secret key exchange and AEAD only. */
#define TLS_DEFAULT_CIPHERS                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_GROUPS "X25519:P-256:P-384"
#define TLS_SID_CTX "ringgate"

#define TICKET_KEY_LEN (TICKET_NAME_LEN + TICKET_HMAC_LEN + TICKET_AES_LEN)
#define TICKET_KEYS_MAX 64

static __thread char tls_errbuf[512];

/* errors */
static const char *errf(bool ossl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* certificates and names */
static int nopass_cb(char *buf, int size, int rwflag, void *u);
static int read_chain(const char *file, X509 **leaf_r,
    STACK_OF(X509) * *chain_r, const char **error_r);
static int read_key(const char *file, EVP_PKEY **key_r, const char **error_r);
static int names_of(X509 *x, struct tls_names *names);
static int names_add(struct tls_names *names, const unsigned char *p,
    size_t len);
static bool names_equal(const struct tls_names *a, const struct tls_names *b);
static void names_free(struct tls_names *names);
static bool name_match(const char *pattern, const char *host, size_t hlen);
static int cert_expiry(X509 *x, int64_t *t_r);

/* server construction */
static int server_add_cert(struct tls_server *ts,
    const struct tls_server_conf *conf, const struct tls_cert_conf *cc,
    const char **error_r);
static struct tls_site *site_get(struct tls_server *ts,
    const struct tls_server_conf *conf, struct tls_names *names,
    const char **error_r);
static SSL_CTX *server_ctx_new(struct tls_server *ts,
    const struct tls_server_conf *conf, const char **error_r);
static int ctx_policy(SSL_CTX *ctx, int min_version, const char *ciphers,
    const char **error_r);
static int ticket_keys_load(struct tls_server *ts, const char *file,
    const char **error_r);
static void server_free(struct tls_server *ts);

/* server callbacks */
static int sni_cb(SSL *ssl, int *al, void *arg);
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg);
static int ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc);
static int ticket_mac_init(EVP_MAC_CTX *hctx, const struct tls_ticket_key *k);

/* ---- errors --------------------------------------------------------- */

/* Format an error into the thread's buffer; with ossl, append OpenSSL's
 * most specific reason. Always empties the error queue. */
static const char *
errf(bool ossl, const char *fmt, ...)
{
	unsigned long e = ossl ? ERR_peek_last_error() : 0;
	const char *why = e ? ERR_reason_error_string(e) : NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tls_errbuf, sizeof(tls_errbuf), fmt, ap);
	va_end(ap);
	if (ossl && n >= 0 && (size_t)n < sizeof(tls_errbuf))
		snprintf(tls_errbuf + n, sizeof(tls_errbuf) - n, ": %s",
		    why ? why : "unknown error");
	ERR_clear_error();
	return tls_errbuf;
}

/* ---- certificates and names ----------------------------------------- */

/* Keys are read unattended: an encrypted key is an error, not a prompt. */
static int
nopass_cb(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static int
read_chain(const char *file, X509 **leaf_r, STACK_OF(X509) * *chain_r,
    const char **error_r)
{
	BIO *in;
	X509 *x;
	unsigned long e;

	*leaf_r = NULL;
	*chain_r = NULL;
	if ((in = BIO_new_file(file, "r")) == NULL) {
		*error_r = errf(true, "cert %s", file);
		return -1;
	}
	if ((*leaf_r = PEM_read_bio_X509(in, NULL, nopass_cb, NULL)) == NULL) {
		*error_r = errf(true, "cert %s", file);
		goto fail;
	}
	if ((*chain_r = sk_X509_new_null()) == NULL) {
		*error_r = errf(true, "cert %s", file);
		goto fail;
	}
	while ((x = PEM_read_bio_X509(in, NULL, nopass_cb, NULL)) != NULL) {
		if (!sk_X509_push(*chain_r, x)) {
			X509_free(x);
			*error_r = errf(true, "cert %s", file);
			goto fail;
		}
	}
	/* the end of the file shows up as "no start line"; anything else
	 * is a broken certificate in the chain */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
	} else if (e != 0) {
		*error_r = errf(true, "cert %s: chain", file);
		goto fail;
	}
	BIO_free(in);
	return 0;
fail:
	BIO_free(in);
	X509_free(*leaf_r);
	sk_X509_pop_free(*chain_r, X509_free);
	*leaf_r = NULL;
	*chain_r = NULL;
	return -1;
}

static int
read_key(const char *file, EVP_PKEY **key_r, const char **error_r)
{
	BIO *in;

	if ((in = BIO_new_file(file, "r")) == NULL) {
		*error_r = errf(true, "key %s", file);
		return -1;
	}
	*key_r = PEM_read_bio_PrivateKey(in, NULL, nopass_cb, NULL);
	BIO_free(in);
	if (*key_r == NULL) {
		*error_r = errf(true, "key %s", file);
		return -1;
	}
	return 0;
}

static int
names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The SAN DNS names, or the CN when there are none. 0 on success, -1 on
 * allocation failure or when the certificate names nothing. */
static int
names_of(X509 *x, struct tls_names *names)
{
	GENERAL_NAMES *gens;
	X509_NAME_ENTRY *ne;
	ASN1_STRING *s;
	int i, rc = 0;

	memset(names, 0, sizeof(*names));
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type != GEN_DNS)
			continue;
		s = g->d.dNSName;
		if (names_add(names, ASN1_STRING_get0_data(s),
			ASN1_STRING_length(s)) == -1) {
			rc = -1;
			break;
		}
	}
	GENERAL_NAMES_free(gens);
	if (rc == 0 && names->n == 0) {
		i = X509_NAME_get_index_by_NID(X509_get_subject_name(x),
		    NID_commonName, -1);
		ne = i >= 0 ? X509_NAME_get_entry(X509_get_subject_name(x), i) :
			      NULL;
		s = ne ? X509_NAME_ENTRY_get_data(ne) : NULL;
		if (s == NULL ||
		    names_add(names, ASN1_STRING_get0_data(s),
			ASN1_STRING_length(s)) == -1)
			rc = -1;
	}
	ERR_clear_error();
	if (rc == 0 && names->n == 0)
		rc = -1;
	if (rc == -1) {
		names_free(names);
		return -1;
	}
	qsort(names->v, names->n, sizeof(names->v[0]), names_cmp);
	return 0;
}

/* Add one name, lower-cased; names with embedded NULs or of absurd
 * length are skipped, duplicates are kept once. */
static int
names_add(struct tls_names *names, const unsigned char *p, size_t len)
{
	char **v, *s;
	unsigned i;

	if (len == 0 || len > 253 || memchr(p, '\0', len) != NULL)
		return 0;
	if ((s = malloc(len + 1)) == NULL)
		return -1;
	for (i = 0; i < len; i++)
		s[i] = (char)tolower(p[i]);
	s[len] = '\0';
	for (i = 0; i < names->n; i++) {
		if (strcmp(names->v[i], s) == 0) {
			free(s);
			return 0;
		}
	}
	if ((v = realloc(names->v, (names->n + 1) * sizeof(*v))) == NULL) {
		free(s);
		return -1;
	}
	names->v = v;
	names->v[names->n++] = s;
	return 0;
}

static bool
names_equal(const struct tls_names *a, const struct tls_names *b)
{
	unsigned i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

static void
names_free(struct tls_names *names)
{
	unsigned i;

	for (i = 0; i < names->n; i++)
		free(names->v[i]);
	free(names->v);
	names->v = NULL;
	names->n = 0;
}

/* host (hlen bytes, no trailing dot) against a lower-case name or a
 * "*.domain" wildcard covering exactly one non-empty label. */
static bool
name_match(const char *pattern, const char *host, size_t hlen)
{
	size_t plen = strlen(pattern);
	const char *dot;

	if (pattern[0] == '*' && pattern[1] == '.') {
		dot = memchr(host, '.', hlen);
		if (dot == NULL || dot == host)
			return false;
		hlen -= (size_t)(dot - host);
		host = dot;
		pattern++;
		plen--;
	}
	return plen == hlen && strncasecmp(pattern, host, hlen) == 0;
}

static int
cert_expiry(X509 *x, int64_t *t_r)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm)) {
		ERR_clear_error();
		return -1;
	}
	*t_r = (int64_t)timegm(&tm);
	return 0;
}

/* ---- server --------------------------------------------------------- */

struct tls_server *
tls_server_new(const struct tls_server_conf *conf, const char **error_r)
{
	struct tls_server *ts;
	unsigned i;

	if (conf->ncerts == 0) {
		*error_r = "tls: no certificate configured";
		return NULL;
	}
	if ((ts = calloc(1, sizeof(*ts))) == NULL) {
		*error_r = "tls: out of memory";
		return NULL;
	}
	atomic_init(&ts->refs, 1);
	ts->expiry = INT64_MAX;
	if (conf->alpn != NULL) {
		ts->alpn_len = strlen(conf->alpn);
		if (ts->alpn_len == 0 || ts->alpn_len > 255) {
			*error_r = "tls: alpn must be 1 to 255 bytes";
			goto fail;
		}
		if ((ts->alpn = strdup(conf->alpn)) == NULL) {
			*error_r = "tls: out of memory";
			goto fail;
		}
	}
	if (conf->ticket_key_file != NULL &&
	    ticket_keys_load(ts, conf->ticket_key_file, error_r) == -1)
		goto fail;
	for (i = 0; i < conf->ncerts; i++)
		if (server_add_cert(ts, conf, &conf->certs[i], error_r) == -1)
			goto fail;
	return ts;
fail:
	server_free(ts);
	return NULL;
}

/* Load one chain and key, check they belong together, and file them
 * under the site for their names. */
static int
server_add_cert(struct tls_server *ts, const struct tls_server_conf *conf,
    const struct tls_cert_conf *cc, const char **error_r)
{
	X509 *leaf = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	struct tls_names names;
	struct tls_site *site;
	int64_t expiry;
	int rc = -1;

	memset(&names, 0, sizeof(names));
	if (cc->cert_file == NULL || cc->key_file == NULL) {
		*error_r = "tls: a certificate needs both cert and key files";
		return -1;
	}
	if (read_chain(cc->cert_file, &leaf, &chain, error_r) == -1 ||
	    read_key(cc->key_file, &key, error_r) == -1)
		goto out;
	if (!X509_check_private_key(leaf, key)) {
		*error_r = errf(false, "key %s does not match certificate %s",
		    cc->key_file, cc->cert_file);
		goto out;
	}
	if (names_of(leaf, &names) == -1) {
		*error_r = errf(false, "cert %s: names no host", cc->cert_file);
		goto out;
	}
	if (cert_expiry(leaf, &expiry) == -1) {
		*error_r = errf(false, "cert %s: unreadable notAfter",
		    cc->cert_file);
		goto out;
	}
	if ((site = site_get(ts, conf, &names, error_r)) == NULL)
		goto out;
	if (!SSL_CTX_use_cert_and_key(site->ctx, leaf, key, chain, 0)) {
		unsigned long e = ERR_peek_last_error();

		if (ERR_GET_REASON(e) == SSL_R_NOT_REPLACING_CERTIFICATE)
			*error_r = errf(false,
			    "cert %s: another certificate has the same names "
			    "and key type",
			    cc->cert_file);
		else
			*error_r = errf(true, "cert %s", cc->cert_file);
		goto out;
	}
	if (expiry < ts->expiry)
		ts->expiry = expiry;
	rc = 0;
out:
	names_free(&names);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	return rc;
}

/* The site for a name set, created when new; takes names on creation. */
static struct tls_site *
site_get(struct tls_server *ts, const struct tls_server_conf *conf,
    struct tls_names *names, const char **error_r)
{
	struct tls_site *sites, *site;
	unsigned i;

	for (i = 0; i < ts->nsites; i++)
		if (names_equal(&ts->sites[i].names, names))
			return &ts->sites[i];
	sites = realloc(ts->sites, (ts->nsites + 1) * sizeof(*sites));
	if (sites == NULL) {
		*error_r = "tls: out of memory";
		return NULL;
	}
	ts->sites = sites;
	site = &ts->sites[ts->nsites];
	if ((site->ctx = server_ctx_new(ts, conf, error_r)) == NULL)
		return NULL;
	site->names = *names;
	memset(names, 0, sizeof(*names));
	ts->nsites++;
	return site;
}

static SSL_CTX *
server_ctx_new(struct tls_server *ts, const struct tls_server_conf *conf,
    const char **error_r)
{
	SSL_CTX *ctx;
	uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		*error_r = errf(true, "tls");
		return NULL;
	}
	if (ctx_policy(ctx, conf->min_version, conf->ciphers, error_r) == -1)
		goto fail;
	if (conf->prefer_server_ciphers)
		opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
	SSL_CTX_set_options(ctx, opts);
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	if (conf->ciphersuites != NULL &&
	    !SSL_CTX_set_ciphersuites(ctx, conf->ciphersuites)) {
		*error_r = errf(true, "tls ciphersuites \"%s\"",
		    conf->ciphersuites);
		goto fail;
	}
	if (!SSL_CTX_set1_groups_list(ctx,
		conf->groups ? conf->groups : TLS_DEFAULT_GROUPS)) {
		*error_r = errf(true, "tls groups \"%s\"",
		    conf->groups ? conf->groups : TLS_DEFAULT_GROUPS);
		goto fail;
	}
	/* only matters when a configured 1.2 list names DHE */
	SSL_CTX_set_dh_auto(ctx, 1);
	/* tickets only: a server-side cache would grow with clients */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SID_CTX,
	    sizeof(TLS_SID_CTX) - 1);
	if (conf->client_ca_file != NULL) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(
		    conf->client_ca_file);

		if (names == NULL ||
		    !SSL_CTX_load_verify_locations(ctx, conf->client_ca_file,
			NULL)) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			*error_r = errf(true, "tls client_ca_file %s",
			    conf->client_ca_file);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		/* asked, not required: EXTERNAL is one mechanism of many */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	/* One TLS 1.3 ticket per handshake, not OpenSSL's two: a mail client
	 * resumes with one, and each ticket costs a session copy, its
	 * encoding, encryption, a MAC and a record on every login. */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, ts);
	if (ts->alpn != NULL)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, ts);
	if (ts->keys != NULL &&
	    !SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb)) {
		*error_r = errf(true, "tls ticket keys");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* What servers and clients share: versions, 1.2 ciphers, buffers. */
static int
ctx_policy(SSL_CTX *ctx, int min_version, const char *ciphers,
    const char **error_r)
{
	int min;

	if (min_version == 0 || min_version == 12)
		min = TLS1_2_VERSION;
	else if (min_version == 13)
		min = TLS1_3_VERSION;
	else {
		*error_r = "tls: min_version must be 12 or 13";
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, min) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		*error_r = errf(true, "tls versions");
		return -1;
	}
	if (!SSL_CTX_set_cipher_list(ctx,
		ciphers ? ciphers : TLS_DEFAULT_CIPHERS)) {
		*error_r = errf(true, "tls ciphers \"%s\"",
		    ciphers ? ciphers : TLS_DEFAULT_CIPHERS);
		return -1;
	}
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, nopass_cb);
	return 0;
}

static int
ticket_keys_load(struct tls_server *ts, const char *file, const char **error_r)
{
	unsigned char raw[TICKET_KEY_LEN];
	struct stat st;
	FILE *fp;
	unsigned i;

	if ((fp = fopen(file, "rb")) == NULL) {
		*error_r = errf(false,
		    "ticket key file %s: %s (make one with: openssl rand %d > "
		    "%s; chmod 600 it)",
		    file, strerror(errno), TICKET_KEY_LEN, file);
		return -1;
	}
	if (fstat(fileno(fp), &st) == -1) {
		*error_r = errf(false, "ticket key file %s: %s", file,
		    strerror(errno));
		goto fail;
	}
	if (st.st_size <= 0 || st.st_size % TICKET_KEY_LEN != 0 ||
	    st.st_size / TICKET_KEY_LEN > TICKET_KEYS_MAX) {
		*error_r = errf(false,
		    "ticket key file %s: size %lld is not a multiple of %d "
		    "(1 to %d keys of name 16, HMAC 32, AES 32 bytes); make "
		    "one with: openssl rand %d > %s (docs/scale-out.md)",
		    file, (long long)st.st_size, TICKET_KEY_LEN,
		    TICKET_KEYS_MAX, TICKET_KEY_LEN, file);
		goto fail;
	}
	ts->nkeys = (unsigned)(st.st_size / TICKET_KEY_LEN);
	if ((ts->keys = calloc(ts->nkeys, sizeof(*ts->keys))) == NULL) {
		*error_r = "tls: out of memory";
		goto fail;
	}
	for (i = 0; i < ts->nkeys; i++) {
		if (fread(raw, 1, sizeof(raw), fp) != sizeof(raw)) {
			*error_r = errf(false, "ticket key file %s: short read",
			    file);
			goto fail;
		}
		memcpy(ts->keys[i].name, raw, TICKET_NAME_LEN);
		memcpy(ts->keys[i].hmac, raw + TICKET_NAME_LEN,
		    TICKET_HMAC_LEN);
		memcpy(ts->keys[i].aes, raw + TICKET_NAME_LEN + TICKET_HMAC_LEN,
		    TICKET_AES_LEN);
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	fclose(fp);
	ts->ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (ts->ticket_cipher == NULL) {
		*error_r = errf(true, "ticket key file %s: AES-256-CBC", file);
		return -1;
	}
	return 0;
fail:
	OPENSSL_cleanse(raw, sizeof(raw));
	fclose(fp);
	return -1;
}

static void
server_free(struct tls_server *ts)
{
	unsigned i;

	for (i = 0; i < ts->nsites; i++) {
		SSL_CTX_free(ts->sites[i].ctx);
		names_free(&ts->sites[i].names);
	}
	free(ts->sites);
	if (ts->keys != NULL) {
		OPENSSL_cleanse(ts->keys, ts->nkeys * sizeof(*ts->keys));
		free(ts->keys);
	}
	EVP_CIPHER_free(ts->ticket_cipher);
	free(ts->alpn);
	free(ts);
}

void
tls_server_ref(struct tls_server *ts)
{
	atomic_fetch_add_explicit(&ts->refs, 1, memory_order_relaxed);
}

void
tls_server_unref(struct tls_server **tsp)
{
	struct tls_server *ts = *tsp;

	*tsp = NULL;
	if (ts != NULL &&
	    atomic_fetch_sub_explicit(&ts->refs, 1, memory_order_acq_rel) == 1)
		server_free(ts);
}

int64_t
tls_server_expiry(const struct tls_server *ts)
{
	return ts->expiry;
}

/* ---- server callbacks ----------------------------------------------- */

/* Move the connection to the site its SNI names: exact names first, then
 * wildcards; anything else stays on the default. */
static int
sni_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_server *ts = arg;
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t hlen;
	unsigned pass, i, j;

	if (host == NULL || ts->nsites < 2)
		return SSL_TLSEXT_ERR_OK;
	hlen = strlen(host);
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < ts->nsites; i++) {
			const struct tls_names *nm = &ts->sites[i].names;

			for (j = 0; j < nm->n; j++) {
				bool wild = nm->v[j][0] == '*';

				if (wild != (pass == 1) ||
				    !name_match(nm->v[j], host, hlen))
					continue;
				if (i > 0 &&
				    SSL_set_SSL_CTX(ssl, ts->sites[i].ctx) ==
					NULL) {
					*al = SSL_AD_INTERNAL_ERROR;
					return SSL_TLSEXT_ERR_ALERT_FATAL;
				}
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Strict ALPN (ALPACA): a client that offers protocols must offer ours. */
static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct tls_server *ts = arg;
	struct tls_conn *t = SSL_get_app_data(ssl);
	unsigned int i = 0, len;

	while (i < inlen) {
		len = in[i++];
		if (len == 0 || len > inlen - i)
			break; /* malformed: refuse like a mismatch */
		if (len == ts->alpn_len && memcmp(in + i, ts->alpn, len) == 0) {
			*out = in + i;
			*outlen = (unsigned char)len;
			return SSL_TLSEXT_ERR_OK;
		}
		i += len;
	}
	if (t != NULL)
		t->reason = "no_application_protocol";
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int
ticket_mac_init(EVP_MAC_CTX *hctx, const struct tls_ticket_key *k)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params) ? 0 : -1;
}

/* Encrypt with the first key; decrypt with whichever key the ticket
 * names, asking for a fresh ticket when it was not the first. Returns 1
 * or 2 on success, 0 to fall back to a full handshake, -1 on error. */
static int
ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_conn *t = SSL_get_app_data(ssl);
	struct tls_server *ts = t ? t->ts : NULL;
	const struct tls_ticket_key *k;
	int ivlen;
	unsigned i;

	if (ts == NULL || ts->keys == NULL)
		return -1;
	if (enc) {
		k = &ts->keys[0];
		ivlen = EVP_CIPHER_get_iv_length(ts->ticket_cipher);
		if (RAND_bytes(iv, ivlen) <= 0)
			return -1;
		memcpy(name, k->name, TICKET_NAME_LEN);
		if (!EVP_EncryptInit_ex(ectx, ts->ticket_cipher, NULL, k->aes,
			iv) ||
		    ticket_mac_init(hctx, k) == -1)
			return -1;
		return 1;
	}
	for (i = 0; i < ts->nkeys; i++)
		if (memcmp(name, ts->keys[i].name, TICKET_NAME_LEN) == 0)
			break;
	if (i == ts->nkeys)
		return 0; /* another key set's ticket: full handshake */
	k = &ts->keys[i];
	if (ticket_mac_init(hctx, k) == -1 ||
	    !EVP_DecryptInit_ex(ectx, ts->ticket_cipher, NULL, k->aes, iv))
		return -1;
	return i == 0 ? 1 : 2;
}

/* ---- client --------------------------------------------------------- */

struct tls_client *
tls_client_new(const struct tls_client_conf *conf, const char **error_r)
{
	struct tls_client *tc;
	unsigned char wire[256];
	size_t alen;
	const char *key;

	if ((tc = calloc(1, sizeof(*tc))) == NULL) {
		*error_r = "tls: out of memory";
		return NULL;
	}
	atomic_init(&tc->refs, 1);
	tc->verify = conf->verify;
	if ((tc->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		*error_r = errf(true, "tls client");
		goto fail;
	}
	if (ctx_policy(tc->ctx, 12, NULL, error_r) == -1)
		goto fail;
	if (!SSL_CTX_set1_groups_list(tc->ctx, TLS_DEFAULT_GROUPS)) {
		*error_r = errf(true, "tls groups");
		goto fail;
	}
	if (conf->verify) {
		SSL_CTX_set_verify(tc->ctx, SSL_VERIFY_PEER, NULL);
		if (conf->ca_file != NULL ?
			!SSL_CTX_load_verify_locations(tc->ctx, conf->ca_file,
			    NULL) :
			!SSL_CTX_set_default_verify_paths(tc->ctx)) {
			*error_r = errf(true, "ca %s",
			    conf->ca_file ? conf->ca_file : "(system)");
			goto fail;
		}
	}
	if (conf->alpn != NULL) {
		alen = strlen(conf->alpn);
		if (alen == 0 || alen > 255) {
			*error_r = "tls: alpn must be 1 to 255 bytes";
			goto fail;
		}
		wire[0] = (unsigned char)alen;
		memcpy(wire + 1, conf->alpn, alen);
		/* this one returns 0 on success */
		if (SSL_CTX_set_alpn_protos(tc->ctx, wire,
			(unsigned)alen + 1) != 0 ||
		    (tc->alpn = strdup(conf->alpn)) == NULL) {
			*error_r = errf(true, "tls alpn");
			goto fail;
		}
	}
	if (conf->cert_file != NULL) {
		key = conf->key_file ? conf->key_file : conf->cert_file;
		if (!SSL_CTX_use_certificate_chain_file(tc->ctx,
			conf->cert_file)) {
			*error_r = errf(true, "cert %s", conf->cert_file);
			goto fail;
		}
		if (!SSL_CTX_use_PrivateKey_file(tc->ctx, key,
			SSL_FILETYPE_PEM)) {
			*error_r = errf(true, "key %s", key);
			goto fail;
		}
		if (!SSL_CTX_check_private_key(tc->ctx)) {
			*error_r = errf(false,
			    "key %s does not match certificate %s", key,
			    conf->cert_file);
			goto fail;
		}
	}
	return tc;
fail:
	SSL_CTX_free(tc->ctx);
	free(tc->alpn);
	free(tc);
	return NULL;
}

void
tls_client_ref(struct tls_client *tc)
{
	atomic_fetch_add_explicit(&tc->refs, 1, memory_order_relaxed);
}

void
tls_client_unref(struct tls_client **tcp)
{
	struct tls_client *tc = *tcp;

	*tcp = NULL;
	if (tc == NULL ||
	    atomic_fetch_sub_explicit(&tc->refs, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(tc->ctx);
	free(tc->alpn);
	free(tc);
}
