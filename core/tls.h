/*
 * tls.h - TLS over memory BIOs, so the ring does all socket I/O.
 *
 * A tls_server is an immutable, refcounted bundle of SSL_CTXs built from a
 * config (one per SNI name set, the first is the default; each may hold an
 * ECDSA and an RSA certificate side by side). A reload builds a new one
 * and swaps it in; live sessions keep the one they started with.
 *
 * A tls_conn is one TLS endpoint (server or client side) whose ciphertext
 * goes in with tls_conn_feed() and comes out with tls_conn_out(). It never
 * touches a file descriptor and never blocks, so it can be driven by any
 * event loop and tested with two instances talking to each other in memory.
 *
 * Policy: TLS 1.2 and 1.3 only; AEAD suites by default; strict ALPN: a
 * client offering ALPN without our protocol gets no_application_protocol,
 * a client offering none is fine; SSL_MODE_RELEASE_BUFFERS always on.
 */
#ifndef RG_CORE_TLS_H
#define RG_CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_cert_conf {
	const char *cert_file; /* PEM chain, leaf first */
	const char *key_file;  /* PEM private key */
};

struct tls_server_conf {
	const struct tls_cert_conf *certs;
	unsigned ncerts;
	const char *alpn;	  /* "imap", "pop3", "smtp" or NULL for none */
	const char *ciphers;	  /* TLS 1.2 list; NULL = AEAD-only default */
	const char *ciphersuites; /* TLS 1.3 list; NULL = OpenSSL default */
	const char *groups;	  /* NULL = "X25519:P-256:P-384" */
	int min_version;	  /* 12 or 13 */
	const char *ticket_key_file; /* NULL = tickets with a random key */
	bool prefer_server_ciphers;
	/* Ask clients for a certificate, verified against these CAs (PEM);
	 * a client may send none, one that does not verify fails the
	 * handshake. NULL = never ask. */
	const char *client_ca_file;
};

struct tls_client_conf {
	const char *ca_file; /* NULL = system store */
	bool verify;	     /* verify the peer certificate and name */
	const char *alpn;    /* offered protocol or NULL */
	const char *cert_file, *key_file; /* optional client certificate */
};

struct tls_server;
struct tls_client;
struct tls_conn;

/* Build from config. Returns NULL with *error_r set (static or per-thread
 * storage, valid until the next call in this thread) naming the file and
 * OpenSSL's reason. */
struct tls_server *tls_server_new(const struct tls_server_conf *conf,
    const char **error_r);
void tls_server_ref(struct tls_server *ts);
void tls_server_unref(struct tls_server **ts); /* nulls *ts */

/* Earliest notAfter among the server's certificates, Unix seconds. */
int64_t tls_server_expiry(const struct tls_server *ts);

struct tls_client *tls_client_new(const struct tls_client_conf *conf,
    const char **error_r);
void tls_client_ref(struct tls_client *tc);
void tls_client_unref(struct tls_client **tc);

/* A new endpoint. sni (client side) is sent and verified when verify is
 * on. Returns NULL on allocation failure. The conn holds a reference to
 * its server/client context. */
struct tls_conn *tls_conn_server(struct tls_server *ts);
struct tls_conn *tls_conn_client(struct tls_client *tc, const char *sni);
void tls_conn_free(struct tls_conn *t);

enum tls_rc {
	TLS_OK,	    /* progress: handshake finished or plaintext produced */
	TLS_WANT,   /* needs more ciphertext from the peer */
	TLS_CLOSED, /* peer sent close_notify */
	TLS_ERROR, /* fatal; see tls_conn_reason(); send tls_conn_out() then close */
};

/* Ciphertext from the socket. Returns 0 or -1 (allocation). */
int tls_conn_feed(struct tls_conn *t, const void *p, size_t n);

/* Advance the handshake and decrypt. With cap > 0 reads up to cap bytes of
 * plaintext into out and sets *n_r. Call in a loop until TLS_WANT. During
 * the handshake returns TLS_OK once, with *n_r == 0, when it completes.
 * After any call, check tls_conn_out() for bytes to send. */
enum tls_rc tls_conn_read(struct tls_conn *t, void *out, size_t cap,
    size_t *n_r);

/* Encrypt plaintext (handshake must be done). Returns 0 or -1. */
int tls_conn_write(struct tls_conn *t, const void *p, size_t n);

/* Queue a close_notify. */
void tls_conn_shutdown(struct tls_conn *t);

/* Ciphertext waiting to be sent: points into the conn's own storage, valid
 * until the next call on t. tls_conn_out_consume() drops what was sent. */
size_t tls_conn_out(struct tls_conn *t, const char **p);
void tls_conn_out_consume(struct tls_conn *t, size_t n);

/* Send ciphertext straight into sink (appended, never moved by us)
 * instead of holding it for tls_conn_out(); anything already held is
 * appended first. sink must outlive t. 0 or -1. */
struct buf;
int tls_conn_set_sink(struct tls_conn *t, struct buf *sink);

/* The session is idle: give back the storage of its emptied BIOs. */
void tls_conn_trim(struct tls_conn *t);

bool tls_conn_established(const struct tls_conn *t);

/* Why the handshake or session failed, as a short fixed metric label:
 * "protocol_version", "no_application_protocol", "no_shared_cipher",
 * "bad_certificate", "unknown_ca", "unexpected_eof", "protocol", "internal",
 * "timeout" is set by the caller, not here. NULL when there is no error. */
const char *tls_conn_reason(const struct tls_conn *t);

/* After the handshake, for logs: "TLSv1.3", cipher name, SNI, ALPN. */
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);
const char *tls_conn_sni(const struct tls_conn *t);
/* The negotiated protocol (our own configured string) or NULL. */
const char *tls_conn_alpn(const struct tls_conn *t);
bool tls_conn_resumed(const struct tls_conn *t);

/* Server side, after the handshake: the subject commonName of the client
 * certificate the server's client_ca_file verified, into out (cap bytes,
 * NUL-terminated). Its length, or -1 when there is none, it did not
 * verify, or the name is empty, too long or holds a NUL. */
int tls_conn_peer_cn(const struct tls_conn *t, char *out, size_t cap);

/* RFC 9266 tls-exporter channel binding (32 bytes). Returns 0 or -1. */
int tls_conn_exporter(struct tls_conn *t, unsigned char out[32]);

/* Every failure reason label, NULL-terminated, so callers can register
 * one counter per reason up front. */
extern const char *const tls_reasons[];

#endif
