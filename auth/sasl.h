/*
 * sasl.h - SASL mechanisms, server side, plus the PLAIN client response.
 *
 * A server session is one small state machine per mechanism, fed one
 * client response at a time by the protocol front end (IMAP AUTHENTICATE,
 * POP3 AUTH, SMTP AUTH). Each step answers:
 *
 *   SASL_CONTINUE  send sasl_server_challenge() (raw bytes, the caller
 *                  base64-encodes) and feed the client's next response;
 *   SASL_VERIFY    the mechanism needs the caller: sasl_server_request()
 *                  says what (check a password, look up SCRAM keys or a
 *                  CRAM-MD5 secret); answer later, from the ring thread,
 *                  with sasl_server_verified(), sasl_server_scram_keys() or
 *                  sasl_server_secret(), which return the next step;
 *   SASL_SUCCESS   authenticated as sasl_server_user();
 *   SASL_FAIL      sasl_server_error() says why (for logs only: clients get
 *                  one answer for every credential failure).
 *
 * Nothing slow runs in here: password hashes are verified by the caller on
 * its worker pool; SCRAM needs only HMACs over stored keys. Unknown users
 * are indistinguishable from wrong passwords: SCRAM continues with a salt
 * derived from the user name and a server secret and fails at the final
 * step like a wrong proof. Every input is bounded (SASL_RESPONSE_MAX, 255
 * bytes per identity or password); secrets are wiped when they are no
 * longer needed and when the session is freed.
 *
 * A session is used by one thread at a time and never blocks.
 */
#ifndef RG_AUTH_SASL_H
#define RG_AUTH_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SASL_RESPONSE_MAX 8192 /* decoded bytes in one client response */
#define SASL_LINE_MAX 10924    /* its base64 form: 4 * ceil(8192 / 3) */
#define SASL_NAME_MAX 255      /* authcid, authzid, password, in bytes */
#define SASL_CBIND_MAX 64      /* channel-binding data */
#define SASL_SECRET_MAX 64     /* server secret for fake SCRAM salts */
#define SASL_SCRAM_SALT_MAX 128
#define SASL_SCRAM_ITER_MAX 10000000u
#define SASL_CHALLENGE64_MAX 688 /* base64 of the longest challenge + NUL */

/* What the connection and configuration allow; one bitmask decides what is
 * advertised (sasl_mech_list), accepted (sasl_mech_find) and how a session
 * behaves (struct sasl_server_conf). */
enum sasl_flags {
	/* TLS is active, or the listener is trusted for cleartext (ringstore
	 * behind ringgate). Without it no mechanism is offered: AUTH is
	 * refused before TLS on every service (PRODUCT section 2). */
	SASL_F_SECURE = 1 << 0,
	/* tls-exporter channel binding is available: SCRAM-SHA-256-PLUS is
	 * offered and a SCRAM client claiming 'y' is a downgrade. */
	SASL_F_CBIND = 1 << 1,
	/* Legacy mechanisms (CRAM-MD5) are switched on by the config. */
	SASL_F_LEGACY = 1 << 2,
	/* A verified client certificate gave an identity: EXTERNAL. */
	SASL_F_EXTERNAL = 1 << 3,
	/* PLAIN only: an authzid different from the authcid reaches the
	 * caller's verifier (master users), which must grant or refuse it;
	 * without this flag, and always for the other mechanisms, such a
	 * request fails with SASL_E_AUTHZID. */
	SASL_F_AUTHZID = 1 << 4,
	/* The protocol can carry data with its success reply: SCRAM's
	 * server-final message comes with SASL_SUCCESS instead of as a last
	 * challenge answered by an empty response. */
	SASL_F_SUCCESS_DATA = 1 << 5,
};

enum sasl_mech_id {
	SASL_MECH_SCRAM_SHA_256_PLUS = 0,
	SASL_MECH_SCRAM_SHA_256,
	SASL_MECH_EXTERNAL,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
	SASL_MECH_CRAM_MD5,
	SASL_MECH_MAX
};

struct sasl_mech;

/*
 * The mechanism called name (len bytes, any case) if it is allowed under
 * flags (enum sasl_flags), else NULL: unknown, before TLS, -PLUS without
 * channel binding, EXTERNAL without a certificate identity, CRAM-MD5
 * without SASL_F_LEGACY.
 */
const struct sasl_mech *sasl_mech_find(const char *name, size_t len,
    unsigned flags);

/* The mechanism with this id, ignoring policy (tests, fuzzers), or NULL. */
const struct sasl_mech *sasl_mech_get(enum sasl_mech_id id);

const char *sasl_mech_name(const struct sasl_mech *m);
enum sasl_mech_id sasl_mech_id(const struct sasl_mech *m);

/*
 * Names to advertise under flags, strongest first, into names[0..max).
 * Returns how many there are (which may exceed max; only max are stored).
 * The strings are static.
 */
size_t sasl_mech_list(unsigned flags, const char **names, size_t max);

/* ---- server sessions ---------------------------------------------------- */

enum sasl_rc {
	SASL_CONTINUE = 0,
	SASL_VERIFY,
	SASL_SUCCESS,
	SASL_FAIL,
};

/* Why a session failed. Logs and metrics only. */
enum sasl_error {
	SASL_E_NONE = 0,
	SASL_E_MALFORMED,   /* not what the mechanism's grammar allows */
	SASL_E_CANCELLED,   /* the client sent "*" */
	SASL_E_TOOLONG,	    /* a response or a field over its limit */
	SASL_E_CREDENTIALS, /* wrong password or proof, or unknown user */
	SASL_E_AUTHZID,	    /* authzid not allowed for this authcid */
	SASL_E_CBIND,	    /* channel binding mismatch or downgrade */
	SASL_E_NOIDENTITY,  /* EXTERNAL without a certificate identity */
	SASL_E_TEMPFAIL,    /* the verifier could not answer now */
	SASL_E_STATE,	    /* the caller called out of turn */
	SASL_E_INTERNAL,    /* no memory, no randomness, crypto failure */
	SASL_E_MAX
};

const char *sasl_error_name(enum sasl_error e);

/* Per-connection settings, copied by sasl_server_new(). */
struct sasl_server_conf {
	unsigned flags; /* enum sasl_flags */
	/* tls-exporter data (RFC 9266: 32 bytes) when SASL_F_CBIND. */
	const uint8_t *cbind;
	size_t cbind_len;
	/* The identity from a verified client certificate (EXTERNAL). */
	const char *external_id;
	/* Host name in CRAM-MD5 challenges; NULL = "localhost". */
	const char *hostname;
	/* Keys the fake SCRAM salt of unknown users. Should be the same on
	 * every instance, or an attacker comparing two instances learns
	 * which users exist. NULL = a random per-process secret. */
	const uint8_t *secret;
	size_t secret_len;
	/* Iteration count shown for unknown users: set it to what real users
	 * have. 0 = 4096. */
	uint32_t fake_iter;
};

/* What a SASL_VERIFY asks of the caller. */
enum sasl_req_kind {
	/* Verify authcid's password (on the worker pool); if authzid is
	 * not empty also decide whether authcid may act as authzid. Answer:
	 * sasl_server_verified(). */
	SASL_REQ_PASSWORD = 0,
	/* Look up authcid's SCRAM-SHA-256 keys. Answer:
	 * sasl_server_scram_keys(), NULL keys for an unknown user. */
	SASL_REQ_SCRAM_KEYS,
	/* Look up authcid's plaintext-equivalent secret (CRAM-MD5). Answer:
	 * sasl_server_secret(), NULL for an unknown user. */
	SASL_REQ_SECRET,
	/* The proof or digest was right (SCRAM, CRAM-MD5): may authcid log
	 * in from here (nologin, allow_nets=: auth_entry_policy())? Asked
	 * before anything tells the client, so a refused user gets the same
	 * answer at the same step as a wrong password (SCRAM's server
	 * signature would otherwise confirm a guessed password). Answer:
	 * sasl_server_verified(); OK goes on (SCRAM: the server-final as a
	 * challenge, or SUCCESS with SASL_F_SUCCESS_DATA), FAIL fails as a
	 * wrong password would, TEMPFAIL as a back-end failure. */
	SASL_REQ_POLICY,
};

/* Owned by the session; valid while it waits for the answer. Strings are
 * NUL-terminated and hold no NUL; authzid is "" when absent. */
struct sasl_request {
	enum sasl_req_kind kind;
	const char *authcid;
	const char *authzid;
	const char *password; /* SASL_REQ_PASSWORD only, else NULL */
	size_t password_len;
};

/* The caller's answer to a SASL_REQ_PASSWORD (any kind, for TEMPFAIL). */
enum sasl_verdict {
	SASL_V_OK = 0,
	SASL_V_FAIL,	 /* wrong password, unknown user, refused */
	SASL_V_TEMPFAIL, /* back-end down, queue full */
	SASL_V_AUTHZID,	 /* the password is right, the authzid is not */
};

/* SCRAM-SHA-256 stored credentials (RFC 5802 section 3). */
struct sasl_scram_keys {
	uint32_t iter;
	size_t salt_len;
	uint8_t salt[SASL_SCRAM_SALT_MAX];
	uint8_t stored_key[32];
	uint8_t server_key[32];
};

/*
 * Parse stored SCRAM-SHA-256 keys: RFC 5803
 * "SCRAM-SHA-256$<iter>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>",
 * optionally after a "{SCRAM-SHA-256}" scheme prefix, or Dovecot's
 * "<iter>,<b64 salt>,<b64 StoredKey>,<b64 ServerKey>" after that prefix.
 * len bytes of s. iter must be in 1..SASL_SCRAM_ITER_MAX, the salt
 * 1..SASL_SCRAM_SALT_MAX bytes and each key 32 bytes, all strict base64
 * (proto/base64.h). The one parser of stored keys: the SASL exchange, the
 * password schemes (auth/scheme.c) and the passwd-file check all use it.
 * Returns 0, or -1 with *error_r saying which part is wrong (never
 * quoting it) and k wiped.
 */
int sasl_scram_keys_parse(const char *s, size_t len, struct sasl_scram_keys *k,
    const char **error_r);

struct sasl_server;

/*
 * A new session for m (from sasl_mech_find). NULL if memory runs out or
 * conf does not fit m: -PLUS or SASL_F_CBIND without cbind data, cbind
 * longer than SASL_CBIND_MAX, secret longer than SASL_SECRET_MAX, an
 * external_id that is empty, longer than SASL_NAME_MAX or holds control
 * characters, a hostname longer than SASL_NAME_MAX, fake_iter above
 * SASL_SCRAM_ITER_MAX. The caller frees it
 * with sasl_server_free().
 */
struct sasl_server *sasl_server_new(const struct sasl_mech *m,
    const struct sasl_server_conf *conf);

/* Wipe and free *s, set it to NULL. NULL is fine. */
void sasl_server_free(struct sasl_server **s);

/*
 * Begin the exchange. ir is the client's initial response (decoded), or
 * NULL when the client sent none; an empty initial response is ir != NULL
 * with len 0. Call once.
 */
enum sasl_rc sasl_server_start(struct sasl_server *s, const void *ir,
    size_t len);

/* The next client response (decoded), after SASL_CONTINUE. */
enum sasl_rc sasl_server_step(struct sasl_server *s, const void *resp,
    size_t len);

/*
 * The same, taking the base64 text as the protocols carry it (without the
 * line end): "*" cancels. For start64, line NULL means no initial response
 * and "=" an empty one (RFC 4954, 4959, 5034). Text that is not strict
 * base64 fails with SASL_E_MALFORMED, longer than SASL_LINE_MAX with
 * SASL_E_TOOLONG.
 */
enum sasl_rc sasl_server_start64(struct sasl_server *s, const char *line,
    size_t len);
enum sasl_rc sasl_server_step64(struct sasl_server *s, const char *line,
    size_t len);

/*
 * The challenge to send after SASL_CONTINUE, or the additional data that
 * goes with SASL_SUCCESS (SCRAM with SASL_F_SUCCESS_DATA; otherwise
 * empty). Raw bytes owned by the session, valid until the next call that
 * changes it; *len_r may be 0 (an empty challenge).
 */
const uint8_t *sasl_server_challenge(const struct sasl_server *s,
    size_t *len_r);

/* The same, base64-encoded and NUL-terminated into dst (cap bytes;
 * SASL_CHALLENGE64_MAX is always enough). 0 with *len_r, or -1 if dst is
 * too small. */
int sasl_server_challenge64(const struct sasl_server *s, char *dst, size_t cap,
    size_t *len_r);

/* The pending request after SASL_VERIFY, else NULL. */
const struct sasl_request *sasl_server_request(const struct sasl_server *s);

/*
 * Answer a SASL_REQ_PASSWORD: SASL_SUCCESS or SASL_FAIL; the password is
 * wiped either way. The lookup kinds accept SASL_V_TEMPFAIL (-> FAIL) and
 * SASL_V_FAIL, which means "unknown user" and is the same as answering
 * with NULL keys or secret: SCRAM continues (SASL_CONTINUE) with fake
 * values, CRAM-MD5 fails. SASL_V_OK is for passwords and policy checks.
 */
enum sasl_rc sasl_server_verified(struct sasl_server *s, enum sasl_verdict v);

/*
 * Answer a SASL_REQ_SCRAM_KEYS with the user's keys (copied), or NULL for
 * an unknown user or one without SCRAM keys: the exchange then continues
 * with fake ones and fails at the end. Returns SASL_CONTINUE (the
 * server-first message) or SASL_FAIL.
 */
enum sasl_rc sasl_server_scram_keys(struct sasl_server *s,
    const struct sasl_scram_keys *k);

/*
 * Answer a SASL_REQ_SECRET with the plaintext-equivalent secret (copied
 * only for the check, then wiped), or NULL for an unknown user. Returns
 * SASL_SUCCESS or SASL_FAIL.
 */
enum sasl_rc sasl_server_secret(struct sasl_server *s, const void *secret,
    size_t len);

/* Outcome details. user: the identity to log in as (the authzid if one was
 * given and allowed, else the authcid); valid after SASL_SUCCESS, else
 * NULL. authcid/authzid: as far as known ("" before), for logs. */
const char *sasl_server_user(const struct sasl_server *s);
const char *sasl_server_authcid(const struct sasl_server *s);
const char *sasl_server_authzid(const struct sasl_server *s);
enum sasl_error sasl_server_error(const struct sasl_server *s);
const struct sasl_mech *sasl_server_mech(const struct sasl_server *s);

/*
 * Tests and fuzzers only: replace what would be random, before start.
 * SCRAM: the server nonce part (printable, no ','), CRAM-MD5: the whole
 * challenge. Returns 0, or -1 if p does not fit (or is not printable).
 */
int sasl_server_set_nonce(struct sasl_server *s, const char *p, size_t len);

/* ---- client side ----------------------------------------------------------
 */

#define SASL_CLIENT_PLAIN_MAX 1028 /* base64 of 3 * 255 + 2, plus NUL */

/*
 * The base64 PLAIN initial response "authzid NUL authcid NUL password"
 * (RFC 4616) into out (NUL-terminated). authzid may be NULL or "" (act as
 * yourself); ringgate logs in to back-ends as a master user with authzid =
 * the user. Each string at most SASL_NAME_MAX bytes; authcid and password
 * not empty. Returns the text length, or -1. The raw message is wiped.
 */
int sasl_client_plain(const char *authzid, const char *authcid,
    const char *password, char out[SASL_CLIENT_PLAIN_MAX]);

/* ---- legacy helpers (sasl_legacy.c) ---------------------------------------
 */

#define SASL_LEGACY_TS_MAX 300 /* "<digits.digits@host>" plus NUL */

/*
 * A fresh "<random.time@host>" string into buf (cap bytes) for the POP3
 * APOP greeting (RFC 1939) and CRAM-MD5 challenges: unpredictable, so a
 * digest cannot be replayed. host NULL = "localhost"; longer than 255
 * bytes or with bytes outside printable ASCII is refused. Returns the
 * length, or -1.
 */
int sasl_legacy_timestamp(char *buf, size_t cap, const char *host);

/* APOP digest: lowercase hex MD5(timestamp || secret) into hex[33]
 * (NUL-terminated). 0, or -1 on a crypto failure. */
int sasl_legacy_apop_digest(const char *ts, size_t ts_len, const void *secret,
    size_t secret_len, char hex[33]);

/*
 * Does digest (digest_len characters of hex, either case, as the client
 * sent it in "APOP user digest") match the secret for timestamp ts? The
 * comparison is constant-time. Only when legacy mechanisms are enabled.
 */
bool sasl_legacy_apop_verify(const char *ts, size_t ts_len, const void *secret,
    size_t secret_len, const char *digest, size_t digest_len);

#endif
