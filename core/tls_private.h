/*
 * tls_private.h - what core/tls.c (connections) and core/tls_server.c
 * (servers, clients, their SSL_CTXs) share, plus a reach-through from a
 * tls_conn to its OpenSSL object.
 *
 * The structs are private to those two files. tls_conn_ssl() is for unit
 * tests and for core code that needs something tls.h does not offer (peer
 * certificate, session objects). Whoever uses it must not change the BIOs
 * or the SSL_CTX, and must clear the thread's error queue after any
 * OpenSSL call that fails.
 */
#ifndef RG_CORE_TLS_PRIVATE_H
#define RG_CORE_TLS_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "core/tls.h"

struct buf;

#define TICKET_NAME_LEN 16
#define TICKET_HMAC_LEN 32
#define TICKET_AES_LEN 32

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

/* The SSL behind t; owned by t, valid until tls_conn_free(). */
SSL *tls_conn_ssl(const struct tls_conn *t);

#endif
