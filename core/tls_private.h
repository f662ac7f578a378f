/*
 * tls_private.h - reach-through from a tls_conn to its OpenSSL object.
 *
 * For unit tests and for core code that needs something tls.h does not
 * offer (peer certificate, session objects). Whoever uses it must not
 * change the BIOs or the SSL_CTX, and must clear the thread's error queue
 * after any OpenSSL call that fails.
 */
#ifndef RG_CORE_TLS_PRIVATE_H
#define RG_CORE_TLS_PRIVATE_H

#include <openssl/ssl.h>

#include "core/tls.h"

/* The SSL behind t; owned by t, valid until tls_conn_free(). */
SSL *tls_conn_ssl(const struct tls_conn *t);

#endif
