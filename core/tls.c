/*
 * tls.c - TLS connections over OpenSSL 3 memory BIOs.
 *
 * A tls_conn reads ciphertext from a memory BIO the caller fills and
 * writes ciphertext to a memory BIO the caller drains; the wbio's buffer
 * is the output queue, so nothing is copied on the way out. Both buffers
 * are given back to the allocator when they drain after growing large, so
 * an idle connection costs little more than its SSL object. A connection
 * may instead write through the sink BIO straight into its owner's
 * struct buf. A failure is mapped once to one of tls_reasons[].
 *
 * The servers and clients connections are made from (SSL_CTX per site,
 * SNI, ALPN, ticket keys) live in core/tls_server.c; the two files share
 * their structs through core/tls_private.h. Relies on OpenSSL 3.0. Every
 * failing OpenSSL call is followed by clearing the thread's error queue,
 * so one connection's errors never show up as another's.
 *
 * Never: touches a file descriptor, blocks, or lets a peer choose anything
 * but what the config allows.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/tls.h"
#include "core/tls_private.h"

/* A drained BIO buffer larger than this is freed rather than kept. */
#define TLS_BIO_KEEP 4096

#define EXPORTER_LABEL "EXPORTER-Channel-Binding"

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

/* errors */
static const char *reason_of(struct tls_conn *t, int sslerr);
static const char *reason_of_code(const struct tls_conn *t, unsigned long e);
static enum tls_rc conn_fail(struct tls_conn *t, int sslerr);
static enum tls_rc conn_error(struct tls_conn *t, int sslerr);

/* memory BIOs */
static BIO *bio_new(void);
static void bio_drain(BIO *b);
static void bio_release(BIO *b);
static int sink_write(BIO *b, const char *p, int n);
static long sink_ctrl(BIO *b, int cmd, long num, void *ptr);
static int sink_create(BIO *b);
static void sink_init_method(void);

/* connections */
static struct tls_conn *tls_conn_alloc(SSL_CTX *ctx);
static bool is_ip_literal(const char *s);

/* ---- errors --------------------------------------------------------- */

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

/* b is empty and its session idle: give back all of its storage (the
 * handshake's flights leave ~1 KB in each BIO of every idle session). */
static void
bio_release(BIO *b)
{
	BUF_MEM *bm = NULL;
	BUF_MEM *fresh;

	BIO_get_mem_ptr(b, &bm);
	if (bm != NULL && bm->max > 0 && (fresh = BUF_MEM_new()) != NULL)
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
		bio_release(t->rbio);
	/* a sink is not a memory BIO: the loop's buffer is its storage */
	if (t->sink == NULL && BIO_ctrl_pending(t->wbio) == 0)
		bio_release(t->wbio);
}

/* ---- connections ---------------------------------------------------- */

/* A tls_conn: an SSL of ctx between two fresh memory BIOs, no side
 * chosen yet (tls_conn_server() and tls_conn_client() do that). */
static struct tls_conn *
tls_conn_alloc(SSL_CTX *ctx)
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

	if ((t = tls_conn_alloc(ts->sites[0].ctx)) == NULL)
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

	if ((t = tls_conn_alloc(tc->ctx)) == NULL)
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
	return (t->flags & TF_ESTABLISHED) ? SSL_get_cipher_name(t->ssl) : NULL;
}

const char *
tls_conn_sni(const struct tls_conn *t)
{
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

int
tls_conn_peer_cn(const struct tls_conn *t, char *out, size_t cap)
{
	X509 *x;
	X509_NAME *subj;
	int n = -1;

	if (t->ts == NULL || !SSL_is_init_finished(t->ssl) ||
	    SSL_get_verify_result(t->ssl) != X509_V_OK ||
	    (x = SSL_get1_peer_certificate(t->ssl)) == NULL)
		return -1;
	if ((subj = X509_get_subject_name(x)) != NULL) {
		n = X509_NAME_get_text_by_NID(subj, NID_commonName, out,
		    (int)cap);
		if (n <= 0 || (size_t)n >= cap || strlen(out) != (size_t)n)
			n = -1;
	}
	X509_free(x);
	return n;
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
