/*
 * sasl_private.h - what the SASL mechanism files share with sasl.c.
 *
 * sasl.c owns the session: its outer state machine (start, respond,
 * verify, done), the mechanism table, identities and the request handed to
 * the caller. Each sasl_<mech>.c supplies a struct sasl_mech_ops and keeps
 * its own sub-state in the session's union. Mechanisms change the outer
 * state only through sasl_continue(), sasl_verify(), sasl_success() and
 * sasl_fail(), so a session can never be left half-way.
 */
#ifndef RG_AUTH_SASL_PRIVATE_H
#define RG_AUTH_SASL_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/sasl.h"

#define SASL_NONCE_MAX 64	  /* server nonce, or an injected one */
#define SASL_SCRAM_CNONCE_MAX 256 /* client nonce characters */
#define SASL_SCRAM_SFM_MAX 512	  /* server-first-message */
#define SASL_SCRAM_FAKE_SALT 16	  /* bytes of an unknown user's salt */

struct sasl_mech_ops {
	/* The client sent no initial response: set the first challenge
	 * (sasl_continue) or fail. */
	enum sasl_rc (*begin)(struct sasl_server *s);
	/* One decoded response of at most SASL_RESPONSE_MAX bytes, while the
	 * session waits for one. */
	enum sasl_rc (
	    *step)(struct sasl_server *s, const uint8_t *p, size_t len);
	/* Release and wipe the mechanism's own state (may be NULL). */
	void (*wipe)(struct sasl_server *s);
	/* The caller allowed the user after a SASL_REQ_POLICY: finish
	 * (NULL for mechanisms that never ask it). */
	enum sasl_rc (*allowed)(struct sasl_server *s);
};

struct sasl_mech {
	const char *name;
	enum sasl_mech_id id;
	unsigned needs;	   /* enum sasl_flags that must all be set */
	bool server_first; /* no initial response allowed (CRAM-MD5) */
	const struct sasl_mech_ops *ops;
};

enum sasl_state {
	SASL_S_INIT = 0,
	SASL_S_RESPONSE, /* a challenge is out, waiting for a response */
	SASL_S_VERIFY,	 /* waiting for the caller's answer */
	SASL_S_SUCCESS,
	SASL_S_FAIL,
};

enum sasl_login_step {
	LOGIN_USER = 0,
	LOGIN_PASSWORD,
};

enum sasl_scram_step {
	SCRAM_FIRST = 0, /* waiting for client-first-message */
	SCRAM_KEYS,	 /* waiting for the caller's keys */
	SCRAM_FINAL,	 /* server-first sent, waiting for client-final */
	SCRAM_POLICY,	 /* proof right, waiting for the caller's policy */
	SCRAM_ACK,	 /* server-final sent, waiting for an empty response */
};

struct sasl_scram {
	enum sasl_scram_step step;
	char cbflag; /* 'n', 'y' or 'p' from the GS2 header */
	/* client-first-message as received: GS2 header, then the bare part
	 * that goes into AuthMessage. malloc'ed. */
	char *cfm;
	size_t cfm_len, gs2_len;
	size_t cnonce_off, cnonce_len; /* the client nonce inside cfm */
	char sfm[SASL_SCRAM_SFM_MAX];  /* server-first-message */
	size_t sfm_len;
	size_t nonce_off, nonce_len; /* the whole nonce inside sfm */
	struct sasl_scram_keys keys;
	bool fake;	 /* unknown user: the keys are random */
	char sfinal[64]; /* "v=" base64(ServerSignature) */
	size_t sfinal_len;
};

struct sasl_cram {
	char chal[SASL_LEGACY_TS_MAX];
	size_t chal_len;
	uint8_t digest[16]; /* what the client sent */
};

struct sasl_server {
	const struct sasl_mech *mech;
	enum sasl_state state;
	enum sasl_error error;
	unsigned flags;

	uint8_t cbind[SASL_CBIND_MAX];
	size_t cbind_len;
	uint8_t secret[SASL_SECRET_MAX];
	size_t secret_len;
	uint32_t fake_iter;
	char external_id[SASL_NAME_MAX + 1];
	char hostname[SASL_NAME_MAX + 1];
	char nonce[SASL_NONCE_MAX + 1]; /* injected by tests, or "" */
	size_t nonce_len;

	char authcid[SASL_NAME_MAX + 1];
	char authzid[SASL_NAME_MAX + 1];
	char password[SASL_NAME_MAX + 1];
	size_t password_len;
	struct sasl_request req;

	const uint8_t *chal; /* challenge or success data */
	size_t chal_len;

	union {
		enum sasl_login_step login;
		struct sasl_scram scram;
		struct sasl_cram cram;
	} u;
};

/* The mechanisms' operations (one file each). */
extern const struct sasl_mech_ops sasl_plain_ops;
extern const struct sasl_mech_ops sasl_login_ops;
extern const struct sasl_mech_ops sasl_scram_ops;
extern const struct sasl_mech_ops sasl_external_ops;
extern const struct sasl_mech_ops sasl_cram_ops;

/* Outer state changes. Each returns the code to hand back to the caller. */
enum sasl_rc sasl_continue(struct sasl_server *s, const void *chal, size_t len);
enum sasl_rc sasl_verify(struct sasl_server *s, enum sasl_req_kind kind);
enum sasl_rc sasl_success(struct sasl_server *s);
enum sasl_rc sasl_fail(struct sasl_server *s, enum sasl_error e);

/*
 * Copy the identities into the session after checking them: each at most
 * SASL_NAME_MAX bytes and sasl_name_valid(); authcid not empty. An authzid
 * that differs from the authcid needs SASL_F_AUTHZID. Returns SASL_E_NONE
 * or the error to fail with.
 */
enum sasl_error sasl_set_ids(struct sasl_server *s, const char *authcid,
    size_t authcid_len, const char *authzid, size_t authzid_len);

/* Copy a password (at most SASL_NAME_MAX bytes, not empty, no NUL). */
enum sasl_error sasl_set_password(struct sasl_server *s, const char *p,
    size_t len);

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * without NUL. */
bool sasl_utf8_valid(const char *p, size_t len);

/* sasl_utf8_valid() and no control character (C0, DEL, C1): what an
 * identity may hold, so that none can forge a log line. */
bool sasl_name_valid(const char *p, size_t len);

/* Fill p with n bytes from the CSPRNG; 0 or -1. */
int sasl_random(void *p, size_t n);

/* The per-process secret used when the caller gave none. */
const uint8_t *sasl_default_secret(size_t *len_r);

#endif
