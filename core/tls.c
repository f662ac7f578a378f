/*
 * tls.c - TLS endpoints over OpenSSL 3 memory BIOs.
 *
 * A tls_server holds one SSL_CTX per certificate name set ("site"); the
 * servername callback moves a connection to the site its SNI names, and
 * the first site is the default. Certificates with equal name sets share
 * one SSL_CTX so OpenSSL can pick ECDSA or RSA by the client's signature
 * algorithms. Session resumption is by tickets only: the stateful server
 * cache is off so memory stays flat, and a ticket key file lets every
 * instance built from it resume the others' sessions.
 *
 * A tls_conn reads ciphertext from a memory BIO the caller fills and
 * writes ciphertext to a memory BIO the caller drains; the wbio's buffer
 * is the output queue, so nothing is copied on the way out. Both buffers
 * are given back to the allocator when they drain after growing large, so
 * an idle connection costs little more than its SSL object.
 *
 * Relies on: OpenSSL 3.0 (EVP_MAC ticket callback, SSL_set1_host taking IP
 * literals). Servers and clients are immutable after construction and
 * refcounted atomically, so worker threads may share them. Every failing
 * OpenSSL call is followed by clearing the thread's error queue, so one
 * connection's errors never show up as another's.
 *
 * Never: touches a file descriptor, blocks, prompts for a passphrase, or
 * lets a peer choose anything but what the config allows.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/tls.h"
#include "core/tls_private.h"

/* TLS 1.2: forward secret key exchange and AEAD only. */
#define TLS_DEFAULT_CIPHERS                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_GROUPS "X25519:P-256:P-384"
#define TLS_SID_CTX "ringgate"

#define TICKET_NAME_LEN 16
#define TICKET_HMAC_LEN 32
#define TICKET_AES_LEN 32
#define TICKET_KEY_LEN (TICKET_NAME_LEN + TICKET_HMAC_LEN + TICKET_AES_LEN)
#define TICKET_KEYS_MAX 64

/* A drained BIO buffer larger than this is freed rather than kept. */
#define TLS_BIO_KEEP 4096

#define EXPORTER_LABEL "EXPORTER-Channel-Binding"

enum tls_flags {
	TF_ESTABLISHED = 1 << 0,
	TF_CLOSED = 1 << 1,
	TF_FAILED = 1 << 2,
};

struct tls_ticket_key {
	unsigned char name[TICKET_NAME_LEN];
	unsigned char hmac[TICKET_HMAC_LEN];
	unsigned char aes[TICKET_AES_LEN];
};

/* The host names one certificate set answers for, lower case, sorted. */
struct tls_names {
	char **v;
	unsigned n;
};

struct tls_site {
	SSL_CTX *ctx;
	struct tls_names names;
};

struct tls_server {
	atomic_uint refs;
	struct tls_site *sites; /* [0] is the default */
	unsigned nsites;
	char *alpn; /* NUL-terminated; NULL = no ALPN policy */
	size_t alpn_len;
	struct tls_ticket_key *keys; /* [0] encrypts; NULL = OpenSSL's */
	unsigned nkeys;
	EVP_CIPHER *ticket_cipher;
	int64_t expiry;
};

struct tls_client {
	atomic_uint refs;
	SSL_CTX *ctx;
	char *alpn;
	bool verify;
};

struct tls_conn {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	struct buf *sink; /* when set, wbio appends here (tls_conn_set_sink) */
	struct tls_server *ts;
	struct tls_client *tc;
	const char *reason; /* set once, on failure */
	unsigned flags;
};

const char *const tls_reasons[] = {
	"protocol_version",
	"no_application_protocol",
	"no_shared_cipher",
	"bad_certificate",
	"unknown_ca",
	"unexpected_eof",
	"protocol",
	"internal",
	NULL,
};

static __thread char tls_errbuf[512];

/* errors */
static const char *errf(bool ossl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *reason_of(struct tls_conn *t, int sslerr);
static const char *reason_of_code(const struct tls_conn *t, unsigned long e);
static enum tls_rc conn_fail(struct tls_conn *t, int sslerr);
static enum tls_rc conn_error(struct tls_conn *t, int sslerr);

/* memory BIOs */
static BIO *bio_new(void);
static void bio_drain(BIO *b);
static void bio_trim(BIO *b);
static int sink_write(BIO *b, const char *p, int n);
static long sink_ctrl(BIO *b, int cmd, long num, void *ptr);
static int sink_create(BIO *b);
static void sink_init_method(void);

/* certificates and names */
static int nopass_cb(char *buf, int size, int rwflag, void *u);
static int read_chain(const char *file, X509 **leaf_r, STACK_OF(X509) **chain_r,
    const char **error_r);
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

/* connections */
static struct tls_conn *conn_new(SSL_CTX *ctx);
static bool is_ip_literal(const char *s);

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

/* The label for one queued error, or NULL when it says nothing specific. */
static const char *
reason_of_code(const struct tls_conn *t, unsigned long e)
{
	long v;

	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return NULL;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_VERSION_TOO_HIGH:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_INAPPROPRIATE_FALLBACK:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_TLSV1_ALERT_INAPPROPRIATE_FALLBACK:
		return "protocol_version";
	case SSL_R_NO_APPLICATION_PROTOCOL:
	case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
		return "no_application_protocol";
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SHARED_GROUPS:
	case SSL_R_NO_SUITABLE_KEY_SHARE:
	case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
	case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
	case SSL_R_NO_CIPHERS_AVAILABLE:
		return "no_shared_cipher";
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		return "unknown_ca";
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return "bad_certificate";
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		v = SSL_get_verify_result(t->ssl);
		switch (v) {
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		case X509_V_ERR_CERT_UNTRUSTED:
			return "unknown_ca";
		default:
			return "bad_certificate";
		}
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return "unexpected_eof";
	case SSL_R_TLSV1_ALERT_INTERNAL_ERROR:
		return "internal";
	default:
		return NULL;
	}
}

/* Map the failure to a label and empty the error queue: the first error
 * with a specific label wins, anything outside libssl is ours. */
static const char *
reason_of(struct tls_conn *t, int sslerr)
{
	const char *why = NULL;
	bool ssl_only = true, any = false;
	unsigned long e;

	while ((e = ERR_get_error()) != 0) {
		any = true;
		if (why == NULL)
			why = reason_of_code(t, e);
		if (ERR_GET_LIB(e) != ERR_LIB_SSL)
			ssl_only = false;
	}
	ERR_clear_error();
	if (t->reason != NULL)
		return t->reason; /* a callback knew better */
	if (why != NULL)
		return why;
	if (sslerr == SSL_ERROR_SSL && any && ssl_only)
		return "protocol";
	return "internal";
}

static enum tls_rc
conn_fail(struct tls_conn *t, int sslerr)
{
	t->reason = reason_of(t, sslerr);
	t->flags |= TF_FAILED;
	return TLS_ERROR;
}

/* Sort the outcome of an SSL call that did not succeed. */
static enum tls_rc
conn_error(struct tls_conn *t, int sslerr)
{
	switch (sslerr) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		/* an emptied input BIO keeps its storage while the session
		 * is busy; tls_conn_trim() gives it back once it is idle */
		return TLS_WANT;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		t->flags |= TF_CLOSED;
		return TLS_CLOSED;
	default:
		return conn_fail(t, sslerr);
	}
}

/* ---- memory BIOs ---------------------------------------------------- */

/* An empty memory BIO reads as "retry", never as EOF: the socket's EOF is
 * the caller's business. */
static BIO *
bio_new(void)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (b != NULL)
		BIO_set_mem_eof_return(b, -1);
	return b;
}

/* Drop everything queued in b without copying it out. */
static void
bio_drain(BIO *b)
{
	BUF_MEM *bm = NULL;
	BUF_MEM *fresh;

	BIO_get_mem_ptr(b, &bm);
	if (bm != NULL && bm->max > TLS_BIO_KEEP &&
	    (fresh = BUF_MEM_new()) != NULL) {
		BIO_set_mem_buf(b, fresh, BIO_CLOSE);
		return;
	}
	(void)BIO_reset(b);
}

/* b is empty: give a large buffer back to the allocator. */
static void
bio_trim(BIO *b)
{
	BUF_MEM *bm = NULL;
	BUF_MEM *fresh;

	BIO_get_mem_ptr(b, &bm);
	if (bm != NULL && bm->max > TLS_BIO_KEEP &&
	    (fresh = BUF_MEM_new()) != NULL)
		BIO_set_mem_buf(b, fresh, BIO_CLOSE);
}

/* ---- the sink BIO -------------------------------------------------- */

/* A write-only BIO that appends to the caller's struct buf, so ciphertext
 * lands in the connection's output queue with no copy in between and no
 * memory BIO growing and shrinking on every record. */
static BIO_METHOD *sink_method;
static pthread_once_t sink_once = PTHREAD_ONCE_INIT;

static int
sink_write(BIO *b, const char *p, int n)
{
	struct buf *out = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if (buf_append(out, p, (size_t)n) == -1)
		return -1;
	return n;
}

static long
sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
sink_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
sink_init_method(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "ringgate sink");

	if (m == NULL || !BIO_meth_set_write(m, sink_write) ||
	    !BIO_meth_set_ctrl(m, sink_ctrl) ||
	    !BIO_meth_set_create(m, sink_create)) {
		BIO_meth_free(m);
		return;
	}
	sink_method = m;
}

int
tls_conn_set_sink(struct tls_conn *t, struct buf *sink)
{
	const char *p;
	size_t n;
	BIO *b;

	pthread_once(&sink_once, sink_init_method);
	if (sink_method == NULL || (b = BIO_new(sink_method)) == NULL) {
		ERR_clear_error();
		return -1;
	}
	/* whatever the memory BIO already holds goes first */
	n = tls_conn_out(t, &p);
	if (n > 0 && buf_append(sink, p, n) == -1) {
		BIO_free(b);
		return -1;
	}
	BIO_set_data(b, sink);
	SSL_set0_wbio(t->ssl, b); /* frees the memory BIO */
	t->wbio = b;
	t->sink = sink;
	return 0;
}

void
tls_conn_trim(struct tls_conn *t)
{
	if (BIO_ctrl_pending(t->rbio) == 0)
		bio_trim(t->rbio);
}

/* ---- certificates and names ----------------------------------------- */

/* Keys are read unattended: an encrypted key is an error, not a prompt. */
static int
nopass_cb(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static int
read_chain(const char *file, X509 **leaf_r, STACK_OF(X509) **chain_r,
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
		ne = i >= 0 ? X509_NAME_get_entry(X509_get_subject_name(x), i)
			    : NULL;
		s = ne ? X509_NAME_ENTRY_get_data(ne) : NULL;
		if (s == NULL || names_add(names, ASN1_STRING_get0_data(s),
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
ticket_keys_load(struct tls_server *ts, const char *file,
    const char **error_r)
{
	unsigned char raw[TICKET_KEY_LEN];
	struct stat st;
	FILE *fp;
	unsigned i;

	if ((fp = fopen(file, "rb")) == NULL) {
		*error_r = errf(false, "ticket key file %s: %s", file,
		    strerror(errno));
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
		    "(1 to %d keys)",
		    file, (long long)st.st_size, TICKET_KEY_LEN,
		    TICKET_KEYS_MAX);
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
		if (conf->ca_file != NULL
			? !SSL_CTX_load_verify_locations(tc->ctx, conf->ca_file,
			      NULL)
			: !SSL_CTX_set_default_verify_paths(tc->ctx)) {
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

/* ---- connections ---------------------------------------------------- */

static struct tls_conn *
conn_new(SSL_CTX *ctx)
{
	struct tls_conn *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->ssl = SSL_new(ctx)) == NULL)
		goto fail;
	if ((t->rbio = bio_new()) == NULL) {
		goto fail;
	}
	if ((t->wbio = bio_new()) == NULL) {
		BIO_free(t->rbio);
		goto fail;
	}
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_app_data(t->ssl, t);
	return t;
fail:
	ERR_clear_error();
	SSL_free(t->ssl);
	free(t);
	return NULL;
}

struct tls_conn *
tls_conn_server(struct tls_server *ts)
{
	struct tls_conn *t;

	if ((t = conn_new(ts->sites[0].ctx)) == NULL)
		return NULL;
	SSL_set_accept_state(t->ssl);
	tls_server_ref(ts);
	t->ts = ts;
	return t;
}

static bool
is_ip_literal(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

struct tls_conn *
tls_conn_client(struct tls_client *tc, const char *sni)
{
	struct tls_conn *t;

	if ((t = conn_new(tc->ctx)) == NULL)
		return NULL;
	SSL_set_connect_state(t->ssl);
	if (sni != NULL && *sni != '\0') {
		/* SNI carries host names only; an address is still checked
		 * against the certificate's IP SANs */
		if ((!is_ip_literal(sni) &&
			!SSL_set_tlsext_host_name(t->ssl, sni)) ||
		    (tc->verify && !SSL_set1_host(t->ssl, sni))) {
			ERR_clear_error();
			SSL_free(t->ssl);
			free(t);
			return NULL;
		}
	}
	tls_client_ref(tc);
	t->tc = tc;
	return t;
}

void
tls_conn_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	ERR_clear_error();
	tls_server_unref(&t->ts);
	tls_client_unref(&t->tc);
	free(t);
}

SSL *
tls_conn_ssl(const struct tls_conn *t)
{
	return t->ssl;
}

int
tls_conn_feed(struct tls_conn *t, const void *p, size_t n)
{
	const char *s = p;
	int chunk;

	if (t->flags & TF_FAILED)
		return 0; /* nothing will read it */
	while (n > 0) {
		chunk = n > INT_MAX ? INT_MAX : (int)n;
		if (BIO_write(t->rbio, s, chunk) != chunk) {
			ERR_clear_error();
			return -1;
		}
		s += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

enum tls_rc
tls_conn_read(struct tls_conn *t, void *out, size_t cap, size_t *n_r)
{
	int r;

	*n_r = 0;
	if (t->flags & TF_FAILED)
		return TLS_ERROR;
	if (t->flags & TF_CLOSED)
		return TLS_CLOSED;
	ERR_clear_error();
	if (!(t->flags & TF_ESTABLISHED)) {
		if ((r = SSL_do_handshake(t->ssl)) == 1) {
			t->flags |= TF_ESTABLISHED;
			return TLS_OK;
		}
		return conn_error(t, SSL_get_error(t->ssl, r));
	}
	if (cap == 0)
		return TLS_WANT;
	if (SSL_read_ex(t->ssl, out, cap, n_r) == 1)
		return TLS_OK;
	*n_r = 0;
	return conn_error(t, SSL_get_error(t->ssl, 0));
}

int
tls_conn_write(struct tls_conn *t, const void *p, size_t n)
{
	size_t w = 0;

	if (!(t->flags & TF_ESTABLISHED) || (t->flags & TF_FAILED))
		return -1;
	if (n == 0)
		return 0;
	ERR_clear_error();
	if (SSL_write_ex(t->ssl, p, n, &w) == 1 && w == n)
		return 0;
	conn_fail(t, SSL_get_error(t->ssl, 0));
	return -1;
}

void
tls_conn_shutdown(struct tls_conn *t)
{
	/* mid-handshake there is nothing to close politely */
	if (!(t->flags & TF_ESTABLISHED) || (t->flags & TF_FAILED))
		return;
	ERR_clear_error();
	(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

size_t
tls_conn_out(struct tls_conn *t, const char **p)
{
	char *data = NULL;
	long n;

	if (t->sink) {
		*p = NULL;
		return 0;
	}
	n = BIO_get_mem_data(t->wbio, &data);

	*p = data;
	return n > 0 ? (size_t)n : 0;
}

void
tls_conn_out_consume(struct tls_conn *t, size_t n)
{
	char scratch[4096];
	size_t pending;
	int chunk;

	if (t->sink)
		return;
	pending = BIO_ctrl_pending(t->wbio);
	if (n >= pending) {
		bio_drain(t->wbio);
		return;
	}
	/* a partial send: the memory BIO can only skip by copying out */
	while (n > 0) {
		chunk = n > sizeof(scratch) ? (int)sizeof(scratch) : (int)n;
		if (BIO_read(t->wbio, scratch, chunk) != chunk)
			break;
		n -= (size_t)chunk;
	}
}

bool
tls_conn_established(const struct tls_conn *t)
{
	return (t->flags & TF_ESTABLISHED) != 0;
}

const char *
tls_conn_reason(const struct tls_conn *t)
{
	return (t->flags & TF_FAILED) ? t->reason : NULL;
}

const char *
tls_conn_version(const struct tls_conn *t)
{
	return (t->flags & TF_ESTABLISHED) ? SSL_get_version(t->ssl) : NULL;
}

const char *
tls_conn_cipher(const struct tls_conn *t)
{
	return (t->flags & TF_ESTABLISHED) ? SSL_get_cipher_name(t->ssl)
					   : NULL;
}

const char *
tls_conn_sni(const struct tls_conn *t)
{
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *
tls_conn_alpn(const struct tls_conn *t)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;
	const char *ours = t->ts ? t->ts->alpn : t->tc->alpn;

	SSL_get0_alpn_selected(t->ssl, &p, &len);
	if (len == 0 || ours == NULL || strlen(ours) != len ||
	    memcmp(p, ours, len) != 0)
		return NULL;
	return ours;
}

bool
tls_conn_resumed(const struct tls_conn *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

int
tls_conn_exporter(struct tls_conn *t, unsigned char out[32])
{
	if (!(t->flags & TF_ESTABLISHED) || (t->flags & TF_FAILED))
		return -1;
	ERR_clear_error();
	if (SSL_export_keying_material(t->ssl, out, 32, EXPORTER_LABEL,
		sizeof(EXPORTER_LABEL) - 1, NULL, 0, 0) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}
