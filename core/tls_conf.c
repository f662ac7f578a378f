/*
 * tls_conf.c - the `tls { }` config section shared by every daemon:
 * certificates (ECDSA and RSA side by side, SNI sets), protocol floor,
 * cipher lists, groups, ticket key file; and building a tls_server from it.
 *
 * Runs at start-up and on reload, on the main thread only.
 */
#include <stddef.h>
#include <string.h>

#include "core/tls.h"
#include "core/tls_conf.h"

#define TLS_CONF_MAX_CERTS 16

static const char *const tls_versions[] = { "TLSv1.2", "TLSv1.3", NULL };

static const struct cfg_field cert_fields[] = {
	{ "cert", CFG_STRING, offsetof(struct tls_conf_cert, cert),
	    CFG_REQUIRED, .hint = "the path of a PEM certificate chain" },
	{ "key", CFG_STRING, offsetof(struct tls_conf_cert, key), CFG_REQUIRED,
	    .hint = "the path of a PEM private key" },
	{ NULL },
};

#define F(field) offsetof(struct tls_conf, field)

const struct cfg_field tls_conf_fields[] = {
	{ "certificates", CFG_LIST, F(certificates), .sub = cert_fields,
	    .elem_size = sizeof(struct tls_conf_cert),
	    .count_offset = F(ncertificates) },
	{ "min_version", CFG_ENUM, F(min_version), 0, "TLSv1.2",
	    .choices = tls_versions },
	{ "ciphers", CFG_STRING, F(ciphers) },
	{ "ciphersuites", CFG_STRING, F(ciphersuites) },
	{ "groups", CFG_STRING, F(groups) },
	{ "ticket_key_file", CFG_STRING, F(ticket_key_file) },
	{ "client_ca_file", CFG_STRING, F(client_ca_file),
	    .hint = "PEM CAs: clients are asked for a certificate, and one "
		    "that verifies logs in with SASL EXTERNAL (its CN)" },
	{ NULL },
};

int
tls_conf_build(const struct tls_conf *tc, const char *alpn,
    struct tls_server **ts_r, const char **error_r)
{
	struct tls_cert_conf certs[TLS_CONF_MAX_CERTS];
	struct tls_server_conf sc;
	unsigned n = tc->ncertificates;

	*ts_r = NULL;
	if (n == 0)
		return 0;
	if (n > TLS_CONF_MAX_CERTS) {
		*error_r = "at most 16 certificates are supported";
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		certs[i].cert_file = tc->certificates[i].cert;
		certs[i].key_file = tc->certificates[i].key;
	}
	memset(&sc, 0, sizeof(sc));
	sc.certs = certs;
	sc.ncerts = n;
	sc.alpn = alpn;
	sc.ciphers = tc->ciphers;
	sc.ciphersuites = tc->ciphersuites;
	sc.groups = tc->groups;
	sc.min_version = tc->min_version == 1 ? 13 : 12;
	sc.ticket_key_file = tc->ticket_key_file;
	sc.prefer_server_ciphers = true;
	sc.client_ca_file = tc->client_ca_file;
	*ts_r = tls_server_new(&sc, error_r);
	return *ts_r ? 0 : -1;
}
