/*
 * test_tls.c - TLS endpoints talking to each other in memory: handshakes
 * pumped whole and one byte at a time, bulk data, strict ALPN, version
 * floor, SNI sites, ECDSA/RSA side by side, shared ticket keys, expiry,
 * exporter, verification and load errors.
 *
 * Keys and self-signed certificates are made at start-up in a temporary
 * directory with the OpenSSL API; nothing here touches the network or
 * depends on timing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/tls.h"
#include "core/tls_private.h"
#include "cert_helpers.h"

#define T_2030_06_01 1906588800LL
#define T_2031_01_01 1924992000LL
#define T_2032_01_01 1956528000LL

/* Material shared by every test, made once in group setup. */
static struct {
	char dir[64];
	struct pem a_ec, a_rsa, b_ec;
	char keys1[256], keys2[256], rotated[256], bad_keys[256];
	char ca_a[256];
} fx;

struct peer {
	struct tls_conn *t;
	unsigned char *got;
	size_t ngot, capgot;
	enum tls_rc last;
	int hs_ok;
};

static void
path_join(char *dst, size_t cap, const char *name)
{
	int n = snprintf(dst, cap, "%s/%s", fx.dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static void
cat_files(const char *dst, const char *a, const char *b)
{
	char buf[8192];
	size_t n1, n2;
	FILE *fp;

	assert_non_null(fp = fopen(a, "r"));
	n1 = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_non_null(fp = fopen(b, "r"));
	n2 = fread(buf + n1, 1, sizeof(buf) - n1, fp);
	fclose(fp);
	write_file(dst, buf, n1 + n2);
}

static int
group_setup(void **state)
{
	unsigned char k[3 * 80];

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_tls.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	make_cert(fx.dir, &fx.a_ec, "a_ec", false, "mail-ec",
	    "DNS:mail.example.test,DNS:imap.example.test", T_2031_01_01);
	make_cert(fx.dir, &fx.a_rsa, "a_rsa", true, "mail-rsa",
	    "DNS:imap.example.test,DNS:mail.example.test", T_2030_06_01);
	make_cert(fx.dir, &fx.b_ec, "b_ec", false, "other",
	    "DNS:other.test,DNS:*.other.test", T_2032_01_01);

	/* keys1 = [k0 k1], keys2 = [k2], rotated = [k2 k0] */
	if (RAND_bytes(k, sizeof(k)) != 1)
		return -1;
	path_join(fx.keys1, sizeof(fx.keys1), "keys1");
	write_file(fx.keys1, k, 160);
	path_join(fx.keys2, sizeof(fx.keys2), "keys2");
	write_file(fx.keys2, k + 160, 80);
	path_join(fx.rotated, sizeof(fx.rotated), "rotated");
	{
		unsigned char r[160];

		memcpy(r, k + 160, 80);
		memcpy(r + 80, k, 80);
		write_file(fx.rotated, r, sizeof(r));
	}
	path_join(fx.bad_keys, sizeof(fx.bad_keys), "bad_keys");
	write_file(fx.bad_keys, k, 79);
	path_join(fx.ca_a, sizeof(fx.ca_a), "ca_a.pem");
	cat_files(fx.ca_a, fx.a_ec.cert, fx.a_rsa.cert);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- building endpoints -------------------------------------------- */

static struct tls_server *
server_new(const char *alpn, const char *keyfile)
{
	struct tls_cert_conf certs[3] = {
		{ fx.a_ec.cert, fx.a_ec.key },
		{ fx.a_rsa.cert, fx.a_rsa.key },
		{ fx.b_ec.cert, fx.b_ec.key },
	};
	struct tls_server_conf c = {
		.certs = certs,
		.ncerts = 3,
		.alpn = alpn,
		.min_version = 12,
		.ticket_key_file = keyfile,
		.prefer_server_ciphers = true,
	};
	const char *err = NULL;
	struct tls_server *ts = tls_server_new(&c, &err);

	if (ts == NULL)
		fail_msg("tls_server_new: %s", err);
	return ts;
}

static struct tls_client *
client_new(const char *alpn, bool verify, const char *ca)
{
	struct tls_client_conf c = {
		.ca_file = ca,
		.verify = verify,
		.alpn = alpn,
	};
	const char *err = NULL;
	struct tls_client *tc = tls_client_new(&c, &err);

	if (tc == NULL)
		fail_msg("tls_client_new: %s", err);
	return tc;
}

/* ---- the pump ------------------------------------------------------- */

static void
peer_init(struct peer *p, struct tls_conn *t)
{
	memset(p, 0, sizeof(*p));
	assert_non_null(t);
	p->t = t;
}

static void
peer_done(struct peer *p)
{
	tls_conn_free(p->t);
	free(p->got);
	memset(p, 0, sizeof(*p));
}

/* Read until the endpoint wants more; true if anything happened. */
static bool
drive(struct peer *p)
{
	unsigned char buf[16384];
	bool progress = false;
	size_t n;

	for (;;) {
		bool was = tls_conn_established(p->t);

		p->last = tls_conn_read(p->t, buf, sizeof(buf), &n);
		if (p->last != TLS_OK)
			return progress;
		progress = true;
		if (!was) {
			/* the handshake completes exactly once, with no data */
			assert_int_equal(n, 0);
			assert_true(tls_conn_established(p->t));
			p->hs_ok++;
			continue;
		}
		/* after the handshake, TLS_OK always carries bytes */
		assert_true(n > 0);
		if (p->ngot + n > p->capgot) {
			p->capgot = (p->ngot + n) * 2;
			assert_non_null(p->got = realloc(p->got, p->capgot));
		}
		memcpy(p->got + p->ngot, buf, n);
		p->ngot += n;
	}
}

/* Move at most max ciphertext bytes from one end to the other. */
static bool
move(struct peer *from, struct peer *to, size_t max)
{
	const char *s;
	size_t n = tls_conn_out(from->t, &s);

	if (n == 0)
		return false;
	if (n > max)
		n = max;
	assert_int_equal(tls_conn_feed(to->t, s, n), 0);
	tls_conn_out_consume(from->t, n);
	return true;
}

static void
pump(struct peer *a, struct peer *b, size_t max)
{
	bool progress = true;

	while (progress) {
		progress = false;
		progress |= drive(a);
		progress |= drive(b);
		progress |= move(a, b, max);
		progress |= move(b, a, max);
	}
}

/* Server and client endpoints, pumped until quiet. */
static void
connect_pair(struct peer *s, struct peer *c, struct tls_server *ts,
    struct tls_client *tc, const char *sni, size_t max)
{
	peer_init(s, tls_conn_server(ts));
	peer_init(c, tls_conn_client(tc, sni));
	pump(c, s, max);
}

static void
assert_up(struct peer *s, struct peer *c)
{
	if (!tls_conn_established(s->t) || !tls_conn_established(c->t))
		fail_msg("handshake: server %s, client %s",
		    tls_conn_reason(s->t) ? tls_conn_reason(s->t) : "-",
		    tls_conn_reason(c->t) ? tls_conn_reason(c->t) : "-");
	assert_int_equal(s->hs_ok, 1);
	assert_int_equal(c->hs_ok, 1);
	assert_null(tls_conn_reason(s->t));
	assert_null(tls_conn_reason(c->t));
}

static void
peer_cert_cn(struct peer *c, char *cn, size_t cap)
{
	X509 *x = SSL_get0_peer_certificate(tls_conn_ssl(c->t));

	assert_non_null(x);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
			NID_commonName, cn, (int)cap) > 0);
}

/* ---- tests ---------------------------------------------------------- */

static void
test_reasons_list(void **state)
{
	static const char *const want[] = { "protocol_version",
		"no_application_protocol", "no_shared_cipher",
		"bad_certificate", "unknown_ca", "unexpected_eof", "protocol",
		"internal" };
	unsigned i;

	for (i = 0; tls_reasons[i] != NULL; i++)
		assert_string_equal(tls_reasons[i], want[i]);
	assert_int_equal(i, sizeof(want) / sizeof(want[0]));
}

static void
exchange_small(struct peer *s, struct peer *c, size_t max)
{
	assert_int_equal(tls_conn_write(c->t, "a001 CAPABILITY\r\n", 17), 0);
	assert_int_equal(tls_conn_write(s->t, "* OK ready\r\n", 12), 0);
	pump(c, s, max);
	assert_int_equal(s->ngot, 17);
	assert_memory_equal(s->got, "a001 CAPABILITY\r\n", 17);
	assert_int_equal(c->ngot, 12);
	assert_memory_equal(c->got, "* OK ready\r\n", 12);
}

static void
test_handshake(void **state)
{
	struct tls_server *ts = server_new("imap", NULL);
	struct tls_client *tc = client_new("imap", false, NULL);
	struct peer s, c;

	connect_pair(&s, &c, ts, tc, "mail.example.test", SIZE_MAX);
	assert_up(&s, &c);
	assert_string_equal(tls_conn_version(s.t), "TLSv1.3");
	assert_string_equal(tls_conn_version(c.t), "TLSv1.3");
	assert_non_null(tls_conn_cipher(s.t));
	assert_string_equal(tls_conn_sni(s.t), "mail.example.test");
	assert_string_equal(tls_conn_alpn(s.t), "imap");
	assert_string_equal(tls_conn_alpn(c.t), "imap");
	assert_false(tls_conn_resumed(s.t));
	exchange_small(&s, &c, SIZE_MAX);
	assert_int_equal(ERR_peek_error(), 0);
	peer_done(&s);
	peer_done(&c);
	/* the conns held references; these are the last */
	tls_server_unref(&ts);
	tls_client_unref(&tc);
	assert_null(ts);
	assert_null(tc);
}

static void
test_handshake_bytewise(void **state)
{
	struct tls_server *ts = server_new("imap", NULL);
	struct tls_client *tc = client_new("imap", false, NULL);
	struct peer s, c;

	connect_pair(&s, &c, ts, tc, "mail.example.test", 1);
	assert_up(&s, &c);
	exchange_small(&s, &c, 1);
	peer_done(&s);
	peer_done(&c);

	/* TLS 1.2 too: its handshake has a different shape */
	peer_init(&s, tls_conn_server(ts));
	peer_init(&c, tls_conn_client(tc, NULL));
	SSL_set_max_proto_version(tls_conn_ssl(c.t), TLS1_2_VERSION);
	pump(&c, &s, 1);
	assert_up(&s, &c);
	assert_string_equal(tls_conn_version(s.t), "TLSv1.2");
	exchange_small(&s, &c, 7);
	peer_done(&s);
	peer_done(&c);

	/* a HelloRetryRequest (no usable key share) on a non-default site */
	peer_init(&s, tls_conn_server(ts));
	peer_init(&c, tls_conn_client(tc, "x.other.test"));
	assert_int_equal(
	    SSL_set1_groups_list(tls_conn_ssl(c.t), "ffdhe2048:P-384"), 1);
	pump(&c, &s, 1);
	assert_up(&s, &c);
	assert_string_equal(tls_conn_version(s.t), "TLSv1.3");
	assert_int_equal(SSL_get_negotiated_group(tls_conn_ssl(s.t)),
	    NID_secp384r1);
	exchange_small(&s, &c, 1);
	peer_done(&s);
	peer_done(&c);
	tls_server_unref(&ts);
	tls_client_unref(&tc);
}

static void
fill(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

static size_t
bio_cap(BIO *b)
{
	BUF_MEM *bm = NULL;

	BIO_get_mem_ptr(b, &bm);
	assert_non_null(bm);
	return bm->max;
}

static void
test_bulk(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct tls_client *tc = client_new(NULL, false, NULL);
	size_t len = 1 << 20, off;
	unsigned char *up = malloc(len), *down = malloc(len);
	struct peer s, c;

	assert_non_null(up);
	assert_non_null(down);
	fill(up, len, 1);
	fill(down, len, 2);
	connect_pair(&s, &c, ts, tc, NULL, SIZE_MAX);
	assert_up(&s, &c);
	/* one large write up, many odd-sized writes down */
	assert_int_equal(tls_conn_write(c.t, up, len), 0);
	for (off = 0; off < len; off += 7777) {
		size_t n = len - off < 7777 ? len - off : 7777;

		assert_int_equal(tls_conn_write(s.t, down + off, n), 0);
	}
	pump(&c, &s, 65536);
	assert_int_equal(s.ngot, len);
	assert_memory_equal(s.got, up, len);
	assert_int_equal(c.ngot, len);
	assert_memory_equal(c.got, down, len);
	/* drained buffers go back to the allocator once the session is
	 * idle (the loop calls tls_conn_trim() from its sweep) */
	tls_conn_trim(s.t);
	tls_conn_trim(c.t);
	assert_int_equal(bio_cap(SSL_get_rbio(tls_conn_ssl(s.t))), 0);
	assert_int_equal(bio_cap(SSL_get_wbio(tls_conn_ssl(s.t))), 0);
	assert_int_equal(bio_cap(SSL_get_rbio(tls_conn_ssl(c.t))), 0);
	assert_int_equal(bio_cap(SSL_get_wbio(tls_conn_ssl(c.t))), 0);
	/* (the orderly close below goes through the emptied BIOs) */

	/* orderly close */
	tls_conn_shutdown(c.t);
	pump(&c, &s, SIZE_MAX);
	assert_int_equal(s.last, TLS_CLOSED);
	peer_done(&s);
	peer_done(&c);
	free(up);
	free(down);
	tls_server_unref(&ts);
	tls_client_unref(&tc);
}

static void
test_partial_consume(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct tls_client *tc = client_new(NULL, false, NULL);
	struct peer s, c;
	unsigned char msg[3000];

	fill(msg, sizeof(msg), 3);
	connect_pair(&s, &c, ts, tc, NULL, 333);
	assert_up(&s, &c);
	assert_int_equal(tls_conn_write(s.t, msg, sizeof(msg)), 0);
	/* more output queued behind a partially consumed buffer */
	move(&s, &c, 100);
	assert_int_equal(tls_conn_write(s.t, msg, sizeof(msg)), 0);
	pump(&c, &s, 333);
	assert_int_equal(c.ngot, 2 * sizeof(msg));
	assert_memory_equal(c.got, msg, sizeof(msg));
	assert_memory_equal(c.got + sizeof(msg), msg, sizeof(msg));
	peer_done(&s);
	peer_done(&c);
	tls_server_unref(&ts);
	tls_client_unref(&tc);
}

static void
test_alpn_strict(void **state)
{
	struct tls_server *ts = server_new("imap", NULL);
	struct tls_client *http = client_new("http/1.1", false, NULL);
	struct tls_client *none = client_new(NULL, false, NULL);
	struct tls_client *imap = client_new("imap", false, NULL);
	struct peer s, c;

	connect_pair(&s, &c, ts, http, NULL, SIZE_MAX);
	assert_false(tls_conn_established(s.t));
	assert_int_equal(s.last, TLS_ERROR);
	assert_string_equal(tls_conn_reason(s.t), "no_application_protocol");
	assert_int_equal(c.last, TLS_ERROR);
	assert_string_equal(tls_conn_reason(c.t), "no_application_protocol");
	/* failed endpoints stay failed and leave no errors behind */
	assert_int_equal(ERR_peek_error(), 0);
	peer_done(&s);
	peer_done(&c);

	connect_pair(&s, &c, ts, none, NULL, SIZE_MAX);
	assert_up(&s, &c);
	assert_null(tls_conn_alpn(s.t));
	peer_done(&s);
	peer_done(&c);

	connect_pair(&s, &c, ts, imap, NULL, SIZE_MAX);
	assert_up(&s, &c);
	assert_string_equal(tls_conn_alpn(s.t), "imap");
	peer_done(&s);
	peer_done(&c);
	tls_server_unref(&ts);
	tls_client_unref(&http);
	tls_client_unref(&none);
	tls_client_unref(&imap);
}

static void
test_old_version(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct tls_client *tc = client_new(NULL, false, NULL);
	struct peer s, c;
	SSL *ssl;

	peer_init(&s, tls_conn_server(ts));
	peer_init(&c, tls_conn_client(tc, NULL));
	ssl = tls_conn_ssl(c.t);
	SSL_set_security_level(ssl, 0);
	assert_int_equal(SSL_set_cipher_list(ssl, "DEFAULT:@SECLEVEL=0"), 1);
	SSL_set_min_proto_version(ssl, TLS1_VERSION);
	SSL_set_max_proto_version(ssl, TLS1_1_VERSION);
	pump(&c, &s, SIZE_MAX);
	assert_int_equal(s.last, TLS_ERROR);
	assert_string_equal(tls_conn_reason(s.t), "protocol_version");
	assert_int_equal(c.last, TLS_ERROR);
	assert_string_equal(tls_conn_reason(c.t), "protocol_version");
	peer_done(&s);
	peer_done(&c);
	tls_server_unref(&ts);
	tls_client_unref(&tc);
}

static void
expect_site(struct tls_server *ts, struct tls_client *tc, const char *sni,
    const char *want_cn)
{
	struct peer s, c;
	char cn[64];

	connect_pair(&s, &c, ts, tc, sni, SIZE_MAX);
	assert_up(&s, &c);
	peer_cert_cn(&c, cn, sizeof(cn));
	if (strcmp(cn, want_cn) != 0)
		fail_msg("sni %s: got %s, want %s", sni ? sni : "(none)", cn,
		    want_cn);
	peer_done(&s);
	peer_done(&c);
}

static void
test_sni(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct tls_client *tc = client_new(NULL, false, NULL);

	expect_site(ts, tc, "mail.example.test", "mail-ec");
	expect_site(ts, tc, "IMAP.Example.Test", "mail-ec");
	expect_site(ts, tc, "other.test", "other");
	expect_site(ts, tc, "x.other.test", "other");
	expect_site(ts, tc, "x.other.test.", "other");
	/* a wildcard covers one label only; no match = the default */
	expect_site(ts, tc, "a.b.other.test", "mail-ec");
	expect_site(ts, tc, "unknown.test", "mail-ec");
	expect_site(ts, tc, NULL, "mail-ec");
	tls_server_unref(&ts);
	tls_client_unref(&tc);
}

static void
expect_key_type(struct tls_server *ts, struct tls_client *tc, int maxver,
    const char *sigalgs, int want)
{
	struct peer s, c;
	EVP_PKEY *pk;

	peer_init(&s, tls_conn_server(ts));
	peer_init(&c, tls_conn_client(tc, "mail.example.test"));
	SSL_set_max_proto_version(tls_conn_ssl(c.t), maxver);
	if (sigalgs != NULL)
		assert_int_equal(
		    SSL_set1_sigalgs_list(tls_conn_ssl(c.t), sigalgs), 1);
	pump(&c, &s, SIZE_MAX);
	assert_up(&s, &c);
	pk = X509_get0_pubkey(SSL_get0_peer_certificate(tls_conn_ssl(c.t)));
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_base_id(pk), want);
	peer_done(&s);
	peer_done(&c);
}

static void
test_ecdsa_rsa(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct tls_client *tc = client_new(NULL, false, NULL);
	const char *rsa = "RSA-PSS+SHA256:RSA+SHA256";

	expect_key_type(ts, tc, TLS1_3_VERSION, NULL, EVP_PKEY_EC);
	expect_key_type(ts, tc, TLS1_3_VERSION, rsa, EVP_PKEY_RSA);
	expect_key_type(ts, tc, TLS1_2_VERSION, NULL, EVP_PKEY_EC);
	expect_key_type(ts, tc, TLS1_2_VERSION, rsa, EVP_PKEY_RSA);
	tls_server_unref(&ts);
	tls_client_unref(&tc);
}

/* Handshake with first, then try to resume that session with second. */
static bool
resumes_sni(struct tls_server *first, struct tls_server *second, int maxver,
    const char *sni)
{
	struct tls_client *tc = client_new("imap", false, NULL);
	struct peer s, c;
	SSL_SESSION *sess;
	bool resumed;

	peer_init(&s, tls_conn_server(first));
	peer_init(&c, tls_conn_client(tc, sni));
	SSL_set_max_proto_version(tls_conn_ssl(c.t), maxver);
	pump(&c, &s, SIZE_MAX);
	assert_up(&s, &c);
	assert_false(tls_conn_resumed(c.t));
	sess = SSL_get1_session(tls_conn_ssl(c.t));
	assert_non_null(sess);
	assert_true(SSL_SESSION_is_resumable(sess));
	/* OpenSSL spoils a session whose connection ends without a
	 * close_notify */
	tls_conn_shutdown(c.t);
	pump(&c, &s, SIZE_MAX);
	assert_int_equal(s.last, TLS_CLOSED);
	peer_done(&s);
	peer_done(&c);

	peer_init(&s, tls_conn_server(second));
	peer_init(&c, tls_conn_client(tc, sni));
	SSL_set_max_proto_version(tls_conn_ssl(c.t), maxver);
	assert_int_equal(SSL_set_session(tls_conn_ssl(c.t), sess), 1);
	SSL_SESSION_free(sess);
	pump(&c, &s, SIZE_MAX);
	assert_up(&s, &c);
	resumed = tls_conn_resumed(s.t);
	assert_int_equal(resumed, tls_conn_resumed(c.t));
	/* a resumed session still carries data */
	exchange_small(&s, &c, SIZE_MAX);
	peer_done(&s);
	peer_done(&c);
	tls_client_unref(&tc);
	return resumed;
}

static bool
resumes(struct tls_server *first, struct tls_server *second, int maxver)
{
	return resumes_sni(first, second, maxver, "mail.example.test");
}

static void
test_tickets(void **state)
{
	struct tls_server *a = server_new("imap", fx.keys1);
	struct tls_server *b = server_new("imap", fx.keys1);
	struct tls_server *other = server_new("imap", fx.keys2);
	struct tls_server *rot = server_new("imap", fx.rotated);
	int v[2] = { TLS1_3_VERSION, TLS1_2_VERSION };
	unsigned i;

	for (i = 0; i < 2; i++) {
		assert_true(resumes(a, a, v[i]));
		/* two instances from one key file share resumption */
		assert_true(resumes(a, b, v[i]));
		assert_false(resumes(a, other, v[i]));
		/* an older key still decrypts after a rotation */
		assert_true(resumes(a, rot, v[i]));
		/* ... and the new first key encrypts */
		assert_true(resumes(rot, other, v[i]));
		/* a session on a non-default site */
		assert_true(resumes_sni(a, b, v[i], "x.other.test"));
	}
	tls_server_unref(&a);
	tls_server_unref(&b);
	tls_server_unref(&other);
	tls_server_unref(&rot);
}

static void
test_tickets_random_key(void **state)
{
	struct tls_server *a = server_new(NULL, NULL);
	struct tls_server *b = server_new(NULL, NULL);

	assert_true(resumes(a, a, TLS1_3_VERSION));
	assert_false(resumes(a, b, TLS1_3_VERSION));
	tls_server_unref(&a);
	tls_server_unref(&b);
}

static void
expect_server_error(const struct tls_cert_conf *certs, unsigned n,
    const char *keyfile, const char *want1, const char *want2)
{
	struct tls_server_conf c = {
		.certs = certs,
		.ncerts = n,
		.min_version = 12,
		.ticket_key_file = keyfile,
	};
	const char *err = NULL;

	assert_null(tls_server_new(&c, &err));
	assert_non_null(err);
	if (strstr(err, want1) == NULL ||
	    (want2 != NULL && strstr(err, want2) == NULL))
		fail_msg("error \"%s\" lacks \"%s\"", err, want1);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_load_errors(void **state)
{
	struct tls_cert_conf good = { fx.a_ec.cert, fx.a_ec.key };
	struct tls_cert_conf missing = { "/nonexistent/x.crt", fx.a_ec.key };
	struct tls_cert_conf nokey = { fx.a_ec.cert, "/nonexistent/x.key" };
	struct tls_cert_conf wrong = { fx.a_ec.cert, fx.b_ec.key };
	struct tls_cert_conf notpem = { fx.keys1, fx.a_ec.key };
	struct tls_cert_conf twice[2] = { good, good };

	expect_server_error(&missing, 1, NULL, "cert /nonexistent/x.crt",
	    "no such file");
	expect_server_error(&nokey, 1, NULL, "key /nonexistent/x.key", NULL);
	expect_server_error(&wrong, 1, NULL, fx.b_ec.key,
	    "does not match certificate");
	expect_server_error(&notpem, 1, NULL, fx.keys1, NULL);
	expect_server_error(twice, 2, NULL, "same names", NULL);
	expect_server_error(&good, 1, fx.bad_keys, fx.bad_keys,
	    "not a multiple of 80");
	expect_server_error(&good, 1, "/nonexistent/keys", "/nonexistent/keys",
	    NULL);
	expect_server_error(&good, 0, NULL, "no certificate", NULL);
}

static void
test_expiry(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct tls_cert_conf one = { fx.b_ec.cert, fx.b_ec.key };
	struct tls_server_conf c = { .certs = &one, .ncerts = 1 };
	const char *err;

	assert_int_equal(tls_server_expiry(ts), T_2030_06_01);
	tls_server_unref(&ts);
	assert_non_null(ts = tls_server_new(&c, &err));
	assert_int_equal(tls_server_expiry(ts), T_2032_01_01);
	tls_server_unref(&ts);
}

static void
test_exporter(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct tls_client *tc = client_new(NULL, false, NULL);
	unsigned char a[32], b[32], zero[32] = { 0 };
	int v[2] = { TLS1_3_VERSION, TLS1_2_VERSION };
	struct peer s, c;
	unsigned i;

	for (i = 0; i < 2; i++) {
		peer_init(&s, tls_conn_server(ts));
		peer_init(&c, tls_conn_client(tc, NULL));
		assert_int_equal(tls_conn_exporter(c.t, a), -1);
		SSL_set_max_proto_version(tls_conn_ssl(c.t), v[i]);
		pump(&c, &s, SIZE_MAX);
		assert_up(&s, &c);
		assert_int_equal(tls_conn_exporter(s.t, a), 0);
		assert_int_equal(tls_conn_exporter(c.t, b), 0);
		assert_memory_equal(a, b, 32);
		assert_memory_not_equal(a, zero, 32);
		peer_done(&s);
		peer_done(&c);
	}
	tls_server_unref(&ts);
	tls_client_unref(&tc);
}

static void
expect_verify(struct tls_server *ts, const char *ca, const char *sni,
    const char *want)
{
	struct tls_client *tc = client_new(NULL, true, ca);
	struct peer s, c;

	connect_pair(&s, &c, ts, tc, sni, SIZE_MAX);
	if (want == NULL) {
		assert_up(&s, &c);
	} else {
		assert_int_equal(c.last, TLS_ERROR);
		if (strcmp(tls_conn_reason(c.t), want) != 0)
			fail_msg("%s: client reason %s, want %s", sni,
			    tls_conn_reason(c.t), want);
		/* the server learns it from the alert */
		assert_int_equal(s.last, TLS_ERROR);
		assert_string_equal(tls_conn_reason(s.t), want);
	}
	peer_done(&s);
	peer_done(&c);
	tls_client_unref(&tc);
}

static void
test_verify(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct tls_client_conf bad = { .ca_file = "/nonexistent/ca.pem",
		.verify = true };
	const char *err = NULL;

	expect_verify(ts, fx.ca_a, "mail.example.test", NULL);
	expect_verify(ts, fx.ca_a, "wrong.example.test", "bad_certificate");
	expect_verify(ts, fx.b_ec.cert, "mail.example.test", "unknown_ca");
	assert_null(tls_client_new(&bad, &err));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	tls_server_unref(&ts);
}

static void
test_garbage(void **state)
{
	struct tls_server *ts = server_new(NULL, NULL);
	struct peer s;
	const char *line = "a001 LOGIN user pass\r\n";
	size_t n;
	unsigned char buf[64];

	peer_init(&s, tls_conn_server(ts));
	assert_int_equal(tls_conn_feed(s.t, line, strlen(line)), 0);
	assert_int_equal(tls_conn_read(s.t, buf, sizeof(buf), &n), TLS_ERROR);
	assert_non_null(tls_conn_reason(s.t));
	assert_int_equal(tls_conn_read(s.t, buf, sizeof(buf), &n), TLS_ERROR);
	assert_int_equal(tls_conn_write(s.t, "x", 1), -1);
	assert_int_equal(ERR_peek_error(), 0);
	peer_done(&s);
	tls_server_unref(&ts);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reasons_list),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_handshake_bytewise),
		cmocka_unit_test(test_bulk),
		cmocka_unit_test(test_partial_consume),
		cmocka_unit_test(test_alpn_strict),
		cmocka_unit_test(test_old_version),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_ecdsa_rsa),
		cmocka_unit_test(test_tickets),
		cmocka_unit_test(test_tickets_random_key),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_exporter),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
