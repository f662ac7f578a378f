/*
 * cert_helpers.h - self-signed certificates for the unit tests that run
 * TLS (test_tls, test_daemon): a key (EC P-256 or RSA 2048) and a
 * certificate with a CN, optional subjectAltName and a chosen notAfter,
 * written as PEM files into a directory the test made.
 *
 * Header-only (static inline) so each test stays one executable with no
 * extra sources; include after <cmocka.h>, whose asserts it uses.
 */
#ifndef RG_TESTS_CERT_HELPERS_H
#define RG_TESTS_CERT_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

struct pem {
	char cert[256], key[256];
};

/* dir/<tag>.crt and dir/<tag>.key into out. */
static inline void
make_cert(const char *dir, struct pem *out, const char *tag, bool rsa,
    const char *cn, const char *san, int64_t not_after)
{
	EVP_PKEY *pk;
	X509 *x;
	X509_NAME *nm;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	FILE *fp;
	static long serial = 1;

	pk = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
		   EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(pk);
	assert_non_null(x = X509_new());
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	assert_non_null(
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after));
	X509_set_pubkey(x, pk);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	if (san != NULL) {
		X509V3_set_ctx_nodb(&v3);
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		assert_non_null(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);

	assert_true(snprintf(out->cert, sizeof(out->cert), "%s/%s.crt", dir,
			tag) < (int)sizeof(out->cert));
	assert_true(snprintf(out->key, sizeof(out->key), "%s/%s.key", dir,
			tag) < (int)sizeof(out->key));
	assert_non_null(fp = fopen(out->cert, "w"));
	PEM_write_X509(fp, x);
	fclose(fp);
	assert_non_null(fp = fopen(out->key, "w"));
	PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	X509_free(x);
	EVP_PKEY_free(pk);
}

#endif
