/*
 * test_auth_scheme.c - password schemes against known answers made by
 * tools nobody here wrote, RFC 7677's SCRAM-SHA-256 exchange, round trips
 * of every generator, and the refusals (disabled plaintext, a hash whose
 * body does not match its tag, NUL bytes for crypt), and ARGON2ID across
 * its two libraries: libsodium (one lane) and libargon2 (the rest) must
 * each verify what the other wrote.
 *
 * How the fixed vectors were made (password "correct horse" unless said):
 *   openssl passwd -6 -salt Q9b2kL0x ...          SHA512-CRYPT
 *   openssl passwd -5 -salt Q9b2kL0x ...          SHA256-CRYPT
 *   openssl passwd -6 -salt 'rounds=1000$abc' pencil
 *   mkpasswd -m yescrypt ...   (whois)            YESCRYPT
 *   mkpasswd -m bcrypt -R 5 ...                   BLF-CRYPT $2b$
 *   python3 crypt.crypt(pw, '$2y$05$abcdefghijklmnopqrstuu')   $2y$
 *   echo -n pw | argon2 saltsaltsalt -id -t 3 -m 16 -p 1 -e   (argon2)
 *   python3 hashlib.pbkdf2_hmac + hmac for SCRAM-SHA-256 keys
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <argon2.h>
#include <sodium.h>

#include "auth/auth.h"

#define PW "correct horse"

struct vector {
	const char *stored;
	const char *password;
};

static const struct vector vectors[] = {
	{ "{SHA512-CRYPT}$6$Q9b2kL0x$UMxKgu9axRbztdip4eF26aytVOxo5rw1x.1vxWyFK"
	  "oSFg.mLJ1JfKm4Crgt7vHy9KxwVRwLL3KrQWbtDoOqKd0",
	    PW },
	{ "{SHA256-CRYPT}$5$Q9b2kL0x$2MZBDIxjOxQ69UxWSphAwcHHLW4iexeGaDHSqFafd"
	  "/.",
	    PW },
	{ "{SHA512-CRYPT}$6$rounds=1000$abc$jFKCbdKeBKuQWVQJewJb6a9rRnUC9Ne02o"
	  "Q7fc6fZLsEOCpWz4Rl3Ds.Ota0X0gtYkxoulMm6R8bd4eUMb3sb0",
	    "pencil" },
	{ "{YESCRYPT}$y$j9T$658sMT6LgZXuDSpl3meL81$ow0aZCrUwSd6YmCyrp6.7skNTmy"
	  "3KrBJwQzL/qT2zP2",
	    PW },
	{ "{BLF-CRYPT}$2b$05$D1JLMMuhPi40rVI4D/YyTew96rbx.sL3cb0X0cnj3Oppfv3rL"
	  "CXbG",
	    PW },
	{ "{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3"
	  "lOy2",
	    PW },
	{ "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$qFW9WhT6S"
	  "Ij99YBQsXv6kgMdN2VgFe44UCfrbkMujD0",
	    PW },
	{ "{ARGON2ID}$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0$H5rnCvoHJK"
	  "5J3ADJ9mc9NL74Ow2lIMZ5zI+CyR256y0",
	    PW },
	{ "{ARGON2ID}$argon2id$v=19$m=256,t=1,p=2$c2FsdHlzYWx0eXNhbHQ$B6ORx7rj"
	  "Z6rnZkPxWUsQBZl5dm24TD7F0z7EHKhW61I",
	    "pencil" },
	/* RFC 5803 form and Dovecot's comma form of the same keys. */
	{ "{SCRAM-SHA-256}SCRAM-SHA-256$4096:cmluZ2dhdGUtdGVzdC1zYWx0$IIlELKiu"
	  "r9JwXZwiB6rr20TWaGzV3cZyYqS5eiSkuhE=:mT3QJF9p6Q8aeeUZWwab8CiC376LMc"
	  "O7NBhGXapfi6U=",
	    PW },
	{ "{SCRAM-SHA-256}1000,cmluZ2dhdGUtdGVzdC1zYWx0,v7NWhXJXQV76cMplhPB1Ah"
	  "e5wxDW38S7MkLHcXgyUew=,k6EM4t5cIbKQl6biCmC2o5nlEwBq6kCW8rVblGMsXNg=",
	    PW },
	/* Untagged crypt strings and Dovecot's generic {CRYPT}. */
	{ "$5$Q9b2kL0x$2MZBDIxjOxQ69UxWSphAwcHHLW4iexeGaDHSqFafd/.", PW },
	{ "{CRYPT}$2b$05$D1JLMMuhPi40rVI4D/YyTew96rbx.sL3cb0X0cnj3Oppfv3rLCXbG",
	    PW },
};

static const struct auth_scheme_opts no_plain = { .allow_plaintext = false };
static const struct auth_scheme_opts plain_ok = { .allow_plaintext = true };

static void
test_known_answers(void **state)
{
	const char *err = NULL;

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];
		size_t n = strlen(v->password);

		assert_int_equal(auth_scheme_verify(v->stored, v->password, n,
				     &no_plain, &err),
		    AUTH_VERIFY_OK);
		assert_int_equal(auth_scheme_verify(v->stored, "correct horsf",
				     13, &no_plain, &err),
		    AUTH_VERIFY_MISMATCH);
		/* A prefix of the right password is wrong too. */
		assert_int_equal(auth_scheme_verify(v->stored, v->password,
				     n - 1, &no_plain, &err),
		    AUTH_VERIFY_MISMATCH);
	}
}

static void
test_scheme_of(void **state)
{
	enum auth_scheme s;
	const char *err = NULL;

	assert_int_equal(auth_scheme_of(vectors[0].stored, &s, &err), 0);
	assert_int_equal(s, AUTH_SCHEME_SHA512_CRYPT);
	assert_int_equal(auth_scheme_of("{argon2id}$argon2id$v=19$x", &s, &err),
	    0);
	assert_int_equal(s, AUTH_SCHEME_ARGON2ID);
	assert_int_equal(auth_scheme_of("{CLEARTEXT}x", &s, &err), 0);
	assert_int_equal(s, AUTH_SCHEME_PLAIN);
	assert_int_equal(auth_scheme_of("$y$j9T$abc$def", &s, &err), 0);
	assert_int_equal(s, AUTH_SCHEME_YESCRYPT);
	assert_int_equal(auth_scheme_of("{MD5}abc", &s, &err), -1);
	assert_int_equal(auth_scheme_of("{SHA512-CRYPT", &s, &err), -1);
	assert_int_equal(auth_scheme_of("abJnggxhB/yWI", &s, &err), -1);
	assert_string_equal(auth_scheme_name(AUTH_SCHEME_BLF_CRYPT),
	    "BLF-CRYPT");
	assert_int_equal(auth_scheme_parse("scram-sha-256", 13, &s), 0);
	assert_int_equal(s, AUTH_SCHEME_SCRAM_SHA_256);
}

/* A tag must describe its body: crypt_rn() would happily verify a DES
 * crypt placed under {BLF-CRYPT} at DES strength. */
static void
test_tag_body_mismatch(void **state)
{
	const char *err = NULL;

	assert_int_equal(auth_scheme_verify("{BLF-CRYPT}abJnggxhB/yWI", "x", 1,
			     &no_plain, &err),
	    AUTH_VERIFY_ERROR);
	assert_int_equal(auth_scheme_verify("{BLF-CRYPT}$6$Q9b2kL0x$UMxKgu9axR"
					    "bztdip4eF26aytVOxo5rw1x.1vxWyFKoS"
					    "Fg.mLJ1JfKm4Crgt7vHy9KxwVRwLL3Kr"
					    "QWbtDoOqKd0",
			     PW, strlen(PW), &no_plain, &err),
	    AUTH_VERIFY_ERROR);
	assert_int_equal(
	    auth_scheme_verify("{CRYPT}abJnggxhB/yWI", "x", 1, &no_plain, &err),
	    AUTH_VERIFY_ERROR);
	assert_int_equal(auth_scheme_verify("{ARGON2ID}$argon2id$garbage", PW,
			     strlen(PW), &no_plain, &err),
	    AUTH_VERIFY_ERROR);
	/* A truncated crypt never verifies (libxcrypt may call it a salt). */
	assert_int_not_equal(auth_scheme_verify("{SHA512-CRYPT}$6$", PW,
				 strlen(PW), &no_plain, &err),
	    AUTH_VERIFY_OK);
	assert_int_equal(
	    auth_scheme_verify(NULL, PW, strlen(PW), &no_plain, &err),
	    AUTH_VERIFY_ERROR);
}

static void
test_plaintext_switch(void **state)
{
	const char *err = NULL;
	char *h = NULL;

	assert_int_equal(
	    auth_scheme_verify("{PLAIN}secret", "secret", 6, &no_plain, &err),
	    AUTH_VERIFY_ERROR);
	assert_int_equal(
	    auth_scheme_verify("{PLAIN}secret", "secret", 6, NULL, &err),
	    AUTH_VERIFY_ERROR);
	assert_int_equal(
	    auth_scheme_verify("{PLAIN}secret", "secret", 6, &plain_ok, &err),
	    AUTH_VERIFY_OK);
	assert_int_equal(auth_scheme_verify("{CLEARTEXT}secret", "secreT", 6,
			     &plain_ok, &err),
	    AUTH_VERIFY_MISMATCH);
	assert_int_equal(
	    auth_scheme_verify("{PLAIN}secret", "secret\0", 7, &plain_ok, &err),
	    AUTH_VERIFY_MISMATCH);
	assert_int_equal(
	    auth_scheme_hash(AUTH_SCHEME_PLAIN, "a", 1, &no_plain, &h, &err),
	    -1);
	assert_int_equal(
	    auth_scheme_hash(AUTH_SCHEME_PLAIN, "a:b", 3, &plain_ok, &h, &err),
	    -1);
	assert_int_equal(
	    auth_scheme_hash(AUTH_SCHEME_PLAIN, "ab", 2, &plain_ok, &h, &err),
	    0);
	assert_string_equal(h, "{PLAIN}ab");
	free(h);
}

static void
test_crypt_nul(void **state)
{
	const char *err = NULL;
	char *h = NULL;

	/* "correct horse\0junk" must not verify as "correct horse". */
	assert_int_equal(auth_scheme_verify(vectors[0].stored,
			     "correct horse\0junk", 18, &no_plain, &err),
	    AUTH_VERIFY_MISMATCH);
	assert_int_equal(auth_scheme_hash(AUTH_SCHEME_SHA512_CRYPT, "a\0b", 3,
			     NULL, &h, &err),
	    -1);
}

static void
b64(const uint8_t *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* RFC 7677 section 3: user "user", password "pencil". The keys come from
 * python3's hashlib; the proof and signature are the RFC's own. */
static void
test_scram_rfc7677(void **state)
{
	static const char auth_msg[] =
	    "n=user,r=rOprNGfwEbeRWgbNEkqO,"
	    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
	    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
	struct sasl_scram_keys k = { .iter = 4096 }, parsed;
	uint8_t sig[32], proof[32], client_key[32], again[32];
	unsigned int len;
	char out[64], stored[256];
	const char *err = NULL;

	k.salt_len = (size_t)EVP_DecodeBlock(k.salt,
			 (const unsigned char *)"W22ZaJ0SNY7soEsUEjb6gQ==",
			 24) -
	    2;
	assert_int_equal(k.salt_len, 16);
	assert_int_equal(auth_scram_derive("pencil", 6, &k), 0);
	b64(k.stored_key, 32, out);
	assert_string_equal(out,
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=");
	b64(k.server_key, 32, out);
	assert_string_equal(out,
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");

	/* ServerSignature = HMAC(ServerKey, AuthMessage): the RFC's v=. */
	HMAC(EVP_sha256(), k.server_key, 32, (const uint8_t *)auth_msg,
	    strlen(auth_msg), sig, &len);
	b64(sig, 32, out);
	assert_string_equal(out,
	    "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");

	/* The RFC's p= XOR ClientSignature gives ClientKey, whose SHA-256
	 * must be our StoredKey. */
	EVP_DecodeBlock(proof,
	    (const unsigned char
		    *)"dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    44);
	HMAC(EVP_sha256(), k.stored_key, 32, (const uint8_t *)auth_msg,
	    strlen(auth_msg), sig, &len);
	for (int i = 0; i < 32; i++)
		client_key[i] = proof[i] ^ sig[i];
	SHA256(client_key, 32, again);
	assert_memory_equal(again, k.stored_key, 32);

	/* The parser returns the same keys from the RFC 5803 string. */
	snprintf(stored, sizeof(stored),
	    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$%s:%s",
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
	assert_int_equal(
	    sasl_scram_keys_parse(stored, strlen(stored), &parsed, &err), 0);
	assert_int_equal(parsed.iter, 4096);
	assert_int_equal(parsed.salt_len, 16);
	assert_memory_equal(parsed.salt, k.salt, 16);
	assert_memory_equal(parsed.stored_key, k.stored_key, 32);
	assert_memory_equal(parsed.server_key, k.server_key, 32);
	assert_int_equal(auth_scheme_verify(stored, "pencil", 6, NULL, &err),
	    AUTH_VERIFY_OK);
}

static void
test_scram_parse_bad(void **state)
{
	static const char *const bad[] = {
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$abc:def",
		"SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$"
		"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==$"
		"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$"
		"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:$"
		"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
		"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=x",
		"4096,W22ZaJ0SNY7soEsUEjb6gQ==,abc",
		"",
		"SCRAM-SHA-256$",
	};
	struct sasl_scram_keys k;
	const char *err = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(
		    sasl_scram_keys_parse(bad[i], strlen(bad[i]), &k, &err),
		    -1);
		assert_non_null(err);
	}
}

/* Every generator: the hash verifies, a wrong password does not, two
 * hashes of one password differ (fresh salt), and the tag is right. */
static void
test_round_trips(void **state)
{
	struct auth_scheme_opts o = { .allow_plaintext = true,
		.argon2_m_kib = 1024,
		.argon2_t = 1,
		.bcrypt_cost = 4,
		.sha_rounds = 1000,
		.yescrypt_cost = 1,
		.scram_iter = 1000 };
	static const char pw[] = "p\xc3\xa4ss w0rd!";
	const char *err = NULL;

	for (int s = 0; s < AUTH_SCHEME_MAX; s++) {
		char *h1 = NULL, *h2 = NULL, tag[32];
		enum auth_scheme got;

		assert_int_equal(
		    auth_scheme_hash(s, pw, strlen(pw), &o, &h1, &err), 0);
		assert_int_equal(
		    auth_scheme_hash(s, pw, strlen(pw), &o, &h2, &err), 0);
		snprintf(tag, sizeof(tag), "{%s}", auth_scheme_name(s));
		assert_memory_equal(h1, tag, strlen(tag));
		assert_int_equal(auth_scheme_of(h1, &got, &err), 0);
		assert_int_equal(got, s);
		if (s != AUTH_SCHEME_PLAIN)
			assert_string_not_equal(h1, h2);
		assert_int_equal(
		    auth_scheme_verify(h1, pw, strlen(pw), &o, &err),
		    AUTH_VERIFY_OK);
		assert_int_equal(
		    auth_scheme_verify(h2, pw, strlen(pw), &o, &err),
		    AUTH_VERIFY_OK);
		assert_int_equal(auth_scheme_verify(h1, "pass", 4, &o, &err),
		    AUTH_VERIFY_MISMATCH);
		free(h1);
		free(h2);
	}
}

/* New hashes carry the documented default costs; also prints the time
 * of one verification at those costs (informational, never asserted). */
static void
test_default_costs(void **state)
{
	struct auth_scheme_opts o = { 0 };
	const char *err = NULL;
	char *h = NULL;
	struct timespec a, b;

	auth_scheme_opts_default(&o);
	assert_int_equal(o.argon2_m_kib, 65536);
	assert_int_equal(o.argon2_t, 3);
	assert_int_equal(o.argon2_p, 1);
	assert_int_equal(auth_scheme_hash(AUTH_SCHEME_ARGON2ID, PW, strlen(PW),
			     &o, &h, &err),
	    0);
	assert_non_null(strstr(h, "$argon2id$v=19$m=65536,t=3,p=1$"));
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(auth_scheme_verify(h, PW, strlen(PW), &o, &err),
	    AUTH_VERIFY_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	print_message("argon2id default cost: %.1f ms per verify\n",
	    (double)(b.tv_sec - a.tv_sec) * 1e3 +
		(double)(b.tv_nsec - a.tv_nsec) / 1e6);
	free(h);

	assert_int_equal(auth_scheme_hash(AUTH_SCHEME_BLF_CRYPT, PW, strlen(PW),
			     &o, &h, &err),
	    0);
	assert_memory_equal(h, "{BLF-CRYPT}$2b$10$", 18);
	free(h);
	assert_int_equal(auth_scheme_hash(AUTH_SCHEME_SCRAM_SHA_256, PW,
			     strlen(PW), &o, &h, &err),
	    0);
	assert_memory_equal(h, "{SCRAM-SHA-256}SCRAM-SHA-256$4096:", 34);
	free(h);
}

static void
test_dummy(void **state)
{
	struct auth_scheme_opts o = { .sha_rounds = 1000 };
	const char *err = NULL;
	char *d1 = NULL, *d2 = NULL;

	assert_int_equal(
	    auth_scheme_dummy(AUTH_SCHEME_SHA512_CRYPT, &o, &d1, &err), 0);
	assert_int_equal(
	    auth_scheme_dummy(AUTH_SCHEME_SHA512_CRYPT, &o, &d2, &err), 0);
	assert_string_not_equal(d1, d2);
	assert_int_equal(auth_scheme_verify(d1, "", 0, &o, &err),
	    AUTH_VERIFY_MISMATCH);
	assert_int_equal(auth_scheme_verify(d1, PW, strlen(PW), &o, &err),
	    AUTH_VERIFY_MISMATCH);
	free(d1);
	free(d2);
}

/* Strings at a cost small enough for a unit test. */
#define XM_KIB 256
#define XT 2

/* libargon2 with the given lanes, version and tag length, tagged. */
static void
argon2_make(uint32_t p, uint32_t version, size_t taglen, char *out, size_t cap)
{
	static const uint8_t salt[16] = "ringgate-x-salt!";
	char enc[256];

	assert_int_equal(argon2_hash(XT, XM_KIB, p, PW, strlen(PW), salt,
			     sizeof(salt), NULL, taglen, enc, sizeof(enc),
			     Argon2_id, version),
	    ARGON2_OK);
	snprintf(out, cap, "{ARGON2ID}%s", enc);
}

static void
assert_verifies(const char *stored)
{
	const char *err = NULL;

	assert_int_equal(
	    auth_scheme_verify(stored, PW, strlen(PW), &no_plain, &err),
	    AUTH_VERIFY_OK);
	assert_int_equal(
	    auth_scheme_verify(stored, "correct horsf", 13, &no_plain, &err),
	    AUTH_VERIFY_MISMATCH);
}

/* A libsodium string verifies with libargon2 and ours; a libargon2 string
 * verifies with libsodium and ours; auth_scheme_hash()'s p=1 and p=2
 * strings verify with libargon2; and what libsodium cannot read (p=2,
 * v=16, a tag under 16 bytes) still verifies, through libargon2. */
static void
test_argon2_cross(void **state)
{
	struct auth_scheme_opts o = { .argon2_m_kib = XM_KIB, .argon2_t = XT };
	char sod[crypto_pwhash_argon2id_STRBYTES], lib[300];
	const char *err = NULL;
	char *h = NULL;

	assert_true(sodium_init() >= 0);
	assert_int_equal(
	    crypto_pwhash_argon2id_str(sod, PW, strlen(PW), XT, XM_KIB * 1024),
	    0);
	assert_int_equal(argon2id_verify(sod, PW, strlen(PW)), ARGON2_OK);
	assert_int_equal(argon2id_verify(sod, "x", 1), ARGON2_VERIFY_MISMATCH);
	snprintf(lib, sizeof(lib), "{ARGON2ID}%s", sod);
	assert_verifies(lib);

	argon2_make(1, ARGON2_VERSION_13, 32, lib, sizeof(lib));
	memcpy(sod, lib + 10, strlen(lib + 10) + 1);
	assert_int_equal(crypto_pwhash_argon2id_str_verify(sod, PW, strlen(PW)),
	    0);
	assert_int_equal(crypto_pwhash_argon2id_str_verify(sod, "x", 1), -1);
	assert_verifies(lib);

	/* Ours, one lane (libsodium) and two (libargon2). */
	for (uint32_t p = 1; p <= 2; p++) {
		char want[64];

		o.argon2_p = p;
		assert_int_equal(auth_scheme_hash(AUTH_SCHEME_ARGON2ID, PW,
				     strlen(PW), &o, &h, &err),
		    0);
		snprintf(want, sizeof(want),
		    "{ARGON2ID}$argon2id$v=19$m=%u,t=%u,p=%u$", XM_KIB, XT, p);
		assert_memory_equal(h, want, strlen(want));
		assert_int_equal(argon2id_verify(h + 10, PW, strlen(PW)),
		    ARGON2_OK);
		assert_verifies(h);
		free(h);
		h = NULL;
	}

	argon2_make(2, ARGON2_VERSION_13, 32, lib, sizeof(lib));
	assert_verifies(lib);
	argon2_make(1, ARGON2_VERSION_10, 32, lib, sizeof(lib));
	assert_non_null(strstr(lib, "$v=16$"));
	assert_verifies(lib);
	argon2_make(1, ARGON2_VERSION_13, 8, lib, sizeof(lib));
	assert_verifies(lib);

	/* A one-lane string libsodium cannot decode is an error, not a
	 * mismatch, as it is for libargon2. */
	assert_int_equal(
	    auth_scheme_verify("{ARGON2ID}$argon2id$v=19$m=256,t=2,p=1$"
			       "c2FsdHNhbHRzYWx0$!!!!!!!!!!!!!!!!!!!!!!!!",
		PW, strlen(PW), &no_plain, &err),
	    AUTH_VERIFY_ERROR);
	assert_int_equal(
	    auth_scheme_verify("{ARGON2ID}$argon2id$v=19$m=4,t=2,p=1$"
			       "c2FsdHNhbHRzYWx0$qFW9WhT6SIj99YBQsXv6kgMdN2VgFe"
			       "44UCfrbkMujD0",
		PW, strlen(PW), &no_plain, &err),
	    AUTH_VERIFY_ERROR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_scheme_of),
		cmocka_unit_test(test_tag_body_mismatch),
		cmocka_unit_test(test_plaintext_switch),
		cmocka_unit_test(test_crypt_nul),
		cmocka_unit_test(test_scram_rfc7677),
		cmocka_unit_test(test_scram_parse_bad),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_default_costs),
		cmocka_unit_test(test_dummy),
		cmocka_unit_test(test_argon2_cross),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
