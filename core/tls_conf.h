/*
 * tls_conf.h - the `tls { }` section of a daemon's config file, described
 * once for core/config.c, and turning it into a tls_server.
 */
#ifndef RG_CORE_TLS_CONF_H
#define RG_CORE_TLS_CONF_H

#include "core/config.h"

struct tls_server;

struct tls_conf_cert {
	char *cert; /* PEM chain path */
	char *key;  /* PEM key path */
};

struct tls_conf {
	struct tls_conf_cert *certificates;
	unsigned ncertificates;
	int min_version; /* 0 = TLSv1.2, 1 = TLSv1.3 */
	char *ciphers, *ciphersuites, *groups, *ticket_key_file;
	char *client_ca_file; /* ask for client certificates (EXTERNAL) */
};

/* Fields of struct tls_conf, for a CFG_GROUP at the section's offset. */
extern const struct cfg_field tls_conf_fields[];

/* Build a server context for one listener protocol (alpn "imap", "pop3",
 * "smtp" or NULL). With no certificate configured *ts_r is NULL and the
 * call succeeds. 0, or -1 with *error_r naming the file and the reason. */
int tls_conf_build(const struct tls_conf *tc, const char *alpn,
    struct tls_server **ts_r, const char **error_r);

#endif
