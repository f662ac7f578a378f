/*
 * auth.h - users, password schemes and credential verification.
 *
 * Three layers, each usable alone:
 *
 *   - user entries behind a small back-end interface (lookup by name). The
 *     passwd-file (Dovecot-compatible, auth/passdb.c) is the first back-end;
 *     Redis (auth/backend_redis.c) and LDAP (auth/backend_ldap.c) fit the
 *     same struct auth_backend_ops, building entries one at a time.
 *   - password schemes (auth/scheme.c): verify a password against a stored
 *     "{SCHEME}data" string and generate new ones. ARGON2ID, BLF-CRYPT,
 *     SHA512-CRYPT, SHA256-CRYPT, YESCRYPT, SCRAM-SHA-256 (RFC 5803) and,
 *     only when switched on, PLAIN/CLEARTEXT.
 *   - the verify pool (auth/pool.c): worker threads (a core/pool.c lane
 *     of auth's own) that run the slow hashes off the ring threads and
 *     post the answer back with loop_post(), plus a positive cache keyed
 *     by an HMAC of user and password.
 *
 * User names are compared exactly after lowercasing the whole name (ASCII
 * only), both when a file is loaded and on every lookup: "Bob@Example.ORG"
 * and "bob@example.org" are the same user. Nothing here logs a password or
 * keeps a copy of one longer than a verification; copies are wiped.
 *
 * Unknown users and wrong passwords are indistinguishable to the client:
 * same result code, and an unknown user costs one verification against a
 * dummy hash of the configured default scheme and cost. The reason field of
 * a result tells them apart for the server's own logs only.
 */
#ifndef RG_AUTH_AUTH_H
#define RG_AUTH_AUTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth/sasl.h"
#include "core/net.h"

struct loop;

/* Hard limits, the same for every back-end. */
#define AUTH_USER_MAX 256	  /* bytes in a user name, without NUL */
#define AUTH_PASSWORD_MAX 1024	  /* bytes in a password to verify */
#define AUTH_PASSDB_LINE_MAX 8192 /* bytes in one passwd-file line */

/* ---- user entries ----------------------------------------------------- */

/* What keeps an entry alive: a whole passwd-file table, or a single entry
 * for back-ends that build entries one at a time. release() runs when the
 * last reference goes, on whatever thread dropped it. */
struct auth_ref {
	atomic_uint refs;
	void (*release)(struct auth_ref *ref);
};

/* An extra field that ringgate does not interpret, kept for the caller
 * (key=value, or a bare flag with value NULL). */
struct auth_field {
	const char *key;
	const char *value;
};

/* A user. Immutable once published; every string is NUL-terminated and
 * lives as long as the entry. */
struct auth_entry {
	const char *user;     /* lowercased */
	const char *password; /* "{SCHEME}data", or NULL: no password login */
	const char *gecos, *home, *shell; /* "" when absent */
	uint32_t uid, gid;
	bool has_uid, has_gid;

	const char *host; /* route override (host=), or NULL */
	bool nologin;	  /* nologin: the password may be right, login not */
	bool has_quota;
	uint64_t quota;		      /* quota= in bytes */
	const struct net *allow_nets; /* allow_nets=; none: anywhere */
	size_t n_allow_nets;
	const char *const *aliases; /* alias=, lowercased */
	size_t n_aliases;
	const struct auth_field *fields; /* every other extra field */
	size_t n_fields;

	/* Changes whenever this user's record changes (a reload that leaves
	 * the record alone keeps it). The cache trusts an answer only while
	 * the serial it was made under is still current. */
	uint64_t serial;

	struct auth_ref *owner;

	/* No hash here (password is NULL): the back-end checks passwords
	 * itself through its verify hook (an LDAP bind as the user). */
	bool verify_by_backend;
};

/* Take another reference to e (it and its strings stay valid). Returns e. */
struct auth_entry *auth_entry_ref(struct auth_entry *e);

/* Drop a reference and set *e to NULL. NULL or *e == NULL is fine. */
void auth_entry_unref(struct auth_entry **e);

/* True if the entry has no allow_nets= or sa is inside one of them. A NULL
 * sa (no client address known) is allowed only without allow_nets=. */
bool auth_user_allowed_from(const struct auth_entry *e,
    const struct sockaddr *sa);

/* The entry's own rules once its credentials are known right: AUTH_R_NONE
 * (may log in), AUTH_R_NOLOGIN or AUTH_R_NETWORK (client outside
 * allow_nets=). The one policy check: the verify pool applies it after a
 * password, the SASL driver after a SCRAM proof or CRAM-MD5 digest
 * (SASL_REQ_POLICY). */
enum auth_reason auth_entry_policy(const struct auth_entry *e,
    const struct sockaddr *client);

/* True if addr (any case) is the user's own name or one of its aliases. */
bool auth_entry_has_alias(const struct auth_entry *e, const char *addr);

/* Value of an uninterpreted extra field: NULL if absent, "" for a bare
 * flag. */
const char *auth_entry_field(const struct auth_entry *e, const char *key);

/* ---- back-ends ---------------------------------------------------------- */

enum auth_status {
	AUTH_OK = 0,
	AUTH_FAIL,     /* wrong password, unknown user, refused: same answer */
	AUTH_TEMPFAIL, /* overloaded, back-end down: try again later */
};

enum auth_lookup {
	AUTH_LOOKUP_FOUND = 0,
	AUTH_LOOKUP_NOTFOUND,
	AUTH_LOOKUP_TEMPFAIL, /* back-end down or slow: try again later */
};

struct auth_backend;

/* What a verification knows about the login beyond the credentials, for
 * back-ends that pass it on (the HTTP hook). Any field may be 0 / NULL
 * (unknown). */
struct auth_login_info {
	const char *protocol;	 /* "imap", "pop3", "smtp" */
	const char *method;	 /* NULL = "plain" (LOGIN, USER/PASS, PLAIN) */
	unsigned attempt;	 /* 1 for the connection's first attempt */
	const char *client_host; /* the client's name */
	const char *helo, *mail_from, *rcpt_to; /* SMTP, when known */
};

struct auth_backend_ops {
	const char *name;
	/* An in-memory probe that never blocks: the pool then checks its
	 * cache on the submitting thread. Network back-ends set false. */
	bool lookup_nonblocking;
	/* user is already lowercased and at most AUTH_USER_MAX bytes. On
	 * FOUND *entry_r holds a new reference. *error_r on TEMPFAIL only. */
	enum auth_lookup (*lookup)(struct auth_backend *b, const char *user,
	    struct auth_entry **entry_r, const char **error_r);
	/* Optional (NULL: every entry carries a hash). For an entry of this
	 * back-end with verify_by_backend set, auth_verify() calls this on
	 * its worker thread instead of a scheme check, with e from lookup
	 * and the password (pwlen bytes, 1..AUTH_PASSWORD_MAX). It may
	 * block, bounded by the back-end's own timeouts. Returns AUTH_OK,
	 * AUTH_FAIL for a wrong password, or AUTH_TEMPFAIL with *error_r
	 * when the back-end could not answer; never keeps the password. A
	 * FAIL then costs the dummy hash, as an unknown user does. */
	enum auth_status (*verify)(struct auth_backend *b,
	    const struct auth_entry *e, const char *password, size_t pwlen,
	    const char **error_r);
	/* Optional: a back-end that decides the whole login itself (the
	 * HTTP hook) with no lookup before it. auth_verify() then calls only
	 * this, on its worker thread, with user as the client gave it (at
	 * most AUTH_USER_MAX bytes), a password of 1..AUTH_PASSWORD_MAX
	 * bytes and whatever the caller knew of the login. AUTH_OK with
	 * *entry_r (one reference) for the user as the back-end sees it;
	 * AUTH_FAIL, optionally with *wait_ms_r, the delay the back-end asks
	 * for before the answer; AUTH_TEMPFAIL with *error_r. May block,
	 * bounded by the back-end's own timeouts. */
	enum auth_status (*verify_login)(struct auth_backend *b,
	    const char *user, const char *password, size_t pwlen,
	    const struct sockaddr *client, const struct auth_login_info *info,
	    struct auth_entry **entry_r, uint32_t *wait_ms_r,
	    const char **error_r);
};

/* Back-ends embed this as their first member. */
struct auth_backend {
	const struct auth_backend_ops *ops;
};

/* Lowercase user into a bounded copy and ask the back-end. Names longer
 * than AUTH_USER_MAX, empty, or holding control bytes are NOTFOUND. */
enum auth_lookup auth_lookup(struct auth_backend *b, const char *user,
    struct auth_entry **entry_r, const char **error_r);

/* ---- passwd-file back-end (auth/passdb.c) ------------------------------- */

struct auth_passdb;

struct auth_passdb_conf {
	const char *path;
	size_t max_entries;   /* 0 = 1,000,000 */
	bool allow_plaintext; /* {PLAIN}/{CLEARTEXT} verify; else warn */
	/* Load warnings (e.g. a plaintext password while not allowed). The
	 * text names file:line and never holds a secret. May be NULL. */
	void (*warn)(void *ctx, const char *msg);
	void *warn_ctx;
	/* Optional (NULL: any valid name): the daemon's own rule for user
	 * names, called with each name as stored (lowercased). -1 with
	 * *reason_r (static text) refuses the whole file, "path:line: user
	 * NAME: reason", at load and at every reload (the old table stays),
	 * so ringstore -t catches a name that could never log in. */
	int (*check_user)(void *ctx, const char *user, const char **reason_r);
	void *check_ctx;
};

/* Load the file and return the database, or NULL with *error_r set
 * ("path:line: reason"). conf->path is copied. */
struct auth_passdb *auth_passdb_new(const struct auth_passdb_conf *conf,
    const char **error_r);
/* Free db and set *db to NULL. Entries still referenced elsewhere keep
 * their table (and strings) alive until they are dropped. */
void auth_passdb_free(struct auth_passdb **db);

/* Parse the file again into a new table and swap it in. On any error the
 * whole file is refused, the old table stays, and -1 is returned with
 * *error_r ("path:line: reason"). Entries held by readers keep the old
 * table alive until they are dropped. Call from one thread at a time. */
int auth_passdb_reload(struct auth_passdb *db, const char **error_r);

/* 1 if the file's inode, size or mtime differ from what the last load
 * attempt (good or refused) saw, or it vanished since; else 0. A broken
 * file is thus reported once per edit, not on every poll. One stat(2). */
int auth_passdb_changed(struct auth_passdb *db);

/* The back-end interface of this database, owned by db. */
struct auth_backend *auth_passdb_backend(struct auth_passdb *db);

/* Users in the current table, and its version (1 after the first load,
 * +1 on every successful reload). */
size_t auth_passdb_count(struct auth_passdb *db);
uint64_t auth_passdb_version(struct auth_passdb *db);

/* ---- Redis back-end (auth/backend_redis.c) ------------------------------ */

/*
 * One hash per user at "<prefix>user:<name>" (name lowercased) with the
 * fields password ("{SCHEME}hash"), host, nologin ("1"/"yes"/"true"/"on"
 * or "0"/"no"/"false"/"off"), allow_nets (comma list), quota (a size such
 * as 512M), alias (comma list), uid, gid, home; any other field is kept as
 * an uninterpreted auth_field. A missing key is an unknown user; Redis
 * down, slow, or a record that cannot be parsed is TEMPFAIL, never a wrong
 * password.
 */
struct auth_redis;

struct auth_redis_conf {
	const char *host;     /* NULL = "127.0.0.1"; "/path" = unix socket */
	uint16_t port;	      /* 0 = 6379 */
	const char *username; /* ACL user for AUTH, or NULL */
	const char *password; /* AUTH password, or NULL: no AUTH */
	unsigned db;	      /* SELECT index, 0 = none */
	const char *prefix;   /* NULL = "ringgate:" */
	unsigned connect_timeout_ms; /* 0 = 1000 */
	unsigned command_timeout_ms; /* 0 = 1000 */
	unsigned max_idle;	     /* connections kept open; 0 = 4 */
};

/* Check conf and copy it; no connection is made until the first lookup,
 * so Redis being down at start-up is not an error. NULL with *error_r. */
struct auth_redis *auth_redis_new(const struct auth_redis_conf *conf,
    const char **error_r);
/* Close every connection, free r and set *r to NULL. No lookup may be
 * running; entries already handed out stay valid. */
void auth_redis_free(struct auth_redis **r);
/* The back-end interface, owned by r. Lookups are thread-safe and block
 * for at most about connect + 2 * command timeout (one retry on a fresh
 * connection when a kept one turns out dead). */
struct auth_backend *auth_redis_backend(struct auth_redis *r);

/* ---- LDAP back-end (auth/backend_ldap.c) -------------------------------- */

/*
 * Users are found with a search (base, subtree scope, filter template).
 * In BIND mode the entry found carries no hash (verify_by_backend) and the
 * password is checked by binding as the user's DN on a connection of our
 * own: the directory decides. In COMPARE mode the password attribute is
 * read and verified locally like any stored hash: "{SCHEME}data" of our
 * schemes, a bare crypt string, or "{CRYPT}<crypt string>".
 */
enum auth_ldap_mode {
	AUTH_LDAP_BIND = 0,
	AUTH_LDAP_COMPARE,
};

struct auth_ldap;

struct auth_ldap_conf {
	/* "ldap://host[:port]" or "ldaps://host[:port]" (libldap accepts a
	 * space-separated list of them, tried in order). */
	const char *uri;
	bool starttls;	     /* ldap:// only; StartTLS must then succeed */
	const char *ca_file; /* PEM trust anchors; NULL = system default */

	const char *bind_dn;	   /* service account; NULL = anonymous */
	const char *bind_password; /* its password */
	const char *base;	   /* search base DN */
	/* Search filter: %u the user name, %n its local part, %d its domain
	 * (each escaped per RFC 4515), %% a '%'. NULL = "(uid=%u)". */
	const char *filter;

	enum auth_ldap_mode mode;
	const char *password_attr; /* COMPARE mode; NULL = "userPassword" */
	/* Attribute names mapped onto entry fields; NULL = not mapped.
	 * alias and allow_nets may be multi-valued. */
	const char *host_attr, *quota_attr, *alias_attr;
	const char *nologin_attr, *allow_nets_attr;

	unsigned network_timeout_ms; /* connect; 0 = 2000 */
	unsigned timeout_ms;	     /* each search and bind; 0 = 3000 */
	unsigned max_idle;	     /* connections kept open; 0 = 4 */
};

/* "bind", "compare" or "search" (the last two are the same mode).
 * 0 or -1. */
int auth_ldap_mode_parse(const char *s, enum auth_ldap_mode *mode_r);

/* Check conf (URI, filter template) and copy it; connects lazily, so the
 * directory being down at start-up is not an error. NULL with *error_r. */
struct auth_ldap *auth_ldap_new(const struct auth_ldap_conf *conf,
    const char **error_r);
/* Unbind every connection, free l and set *l to NULL. No lookup or
 * verification may be running; entries handed out stay valid. */
void auth_ldap_free(struct auth_ldap **l);
/* The back-end interface (lookup and, in BIND mode, verify), owned by l;
 * thread-safe, each call bounded by the timeouts above. */
struct auth_backend *auth_ldap_backend(struct auth_ldap *l);

/* ---- HTTP hook back-end (auth/backend_http.c) -------------------------- */

/*
 * nginx's auth_http protocol, so a site leaving nginx keeps its auth
 * service: each verification is one `GET <path>` with the headers
 * Auth-Method, Auth-User, Auth-Pass (URL-escaped as nginx does),
 * Auth-Protocol, Auth-Login-Attempt, Client-IP, Client-Host (and
 * Auth-SMTP-Helo/From/To when known) plus configured extra headers; the
 * answer's Auth-Status "OK" is a login, any other text a failure.
 * Auth-Server and Auth-Port become the entry's host ("server:port",
 * "[v6]:port") and its fields auth_server and auth_port; Auth-User, when
 * the service renames the user, the field auth_user. Auth-Wait: N is a
 * failure with an N-second delay hint. No answer, a timeout, a status
 * other than 200 or an answer without Auth-Status is TEMPFAIL, never a
 * wrong password. There is no lookup: the back-end only verifies
 * (auth_backend_ops.verify_login); its lookup answers NOTFOUND.
 */
struct auth_http;

struct auth_http_conf {
	const char *url;	  /* "http://host[:port]/path" (no https) */
	unsigned timeout_ms;	  /* connect, send and answer each; 0 = 5000 */
	unsigned max_connections; /* open at once (kept alive); 0 = 8 */
	/* Extra request headers, each "Name: value". */
	const char *const *headers;
	unsigned nheaders;
};

struct auth_http_stats {
	uint64_t requests, ok, fail, waits, tempfail;
	uint64_t connects, reused; /* new connections, kept ones used */
	uint64_t pool_full; /* waited for a connection past the timeout */
};

/* Check conf (URL, headers), resolve the host, copy everything. No
 * connection is made yet: the service being down at start-up is not an
 * error. NULL with *error_r. */
struct auth_http *auth_http_new(const struct auth_http_conf *conf,
    const char **error_r);
/* Close every kept connection, free h, *h = NULL. No verification may
 * be running. */
void auth_http_free(struct auth_http **h);
/* The back-end interface, owned by h; thread-safe. */
struct auth_backend *auth_http_backend(struct auth_http *h);
void auth_http_stats(struct auth_http *h, struct auth_http_stats *st);

/* ---- password schemes (auth/scheme.c) ----------------------------------- */

enum auth_scheme {
	AUTH_SCHEME_ARGON2ID = 0,
	AUTH_SCHEME_BLF_CRYPT,
	AUTH_SCHEME_SHA512_CRYPT,
	AUTH_SCHEME_SHA256_CRYPT,
	AUTH_SCHEME_YESCRYPT,
	AUTH_SCHEME_SCRAM_SHA_256,
	AUTH_SCHEME_PLAIN, /* {PLAIN} and {CLEARTEXT} */
	AUTH_SCHEME_MAX
};

/* Costs for new hashes and the plaintext switch. Zero fields take the
 * defaults in the comments. */
struct auth_scheme_opts {
	bool allow_plaintext;
	uint32_t argon2_m_kib;	/* 65536 */
	uint32_t argon2_t;	/* 3 */
	uint32_t argon2_p;	/* 1 */
	unsigned bcrypt_cost;	/* 10 */
	unsigned sha_rounds;	/* 5000 (SHA512/256-CRYPT) */
	unsigned yescrypt_cost; /* 5 */
	unsigned scram_iter;	/* 4096 (RFC 7677 minimum, Dovecot's default) */
};

/* Replace every zero cost in o by its default; other fields are kept. */
void auth_scheme_opts_default(struct auth_scheme_opts *o);

/* "ARGON2ID", "BLF-CRYPT", ... (case-insensitive, n bytes). 0 or -1. */
int auth_scheme_parse(const char *name, size_t n, enum auth_scheme *s_r);
const char *auth_scheme_name(enum auth_scheme s);

/* Which scheme a stored string uses: "{NAME}..." or, without braces, a
 * bare crypt string recognised by its prefix ($argon2id$, $2b$, $6$, ...).
 * 0 or -1 with *error_r. */
int auth_scheme_of(const char *stored, enum auth_scheme *s_r,
    const char **error_r);

enum auth_verify {
	AUTH_VERIFY_OK = 0,
	AUTH_VERIFY_MISMATCH,
	AUTH_VERIFY_ERROR, /* bad stored string, disabled scheme, no memory */
};

/* Verify password (pwlen bytes, may hold any byte; crypt schemes refuse an
 * embedded NUL as a mismatch) against stored. Slow by design: never call on
 * a ring thread. Comparisons are constant-time. */
enum auth_verify auth_scheme_verify(const char *stored, const char *password,
    size_t pwlen, const struct auth_scheme_opts *o, const char **error_r);

/* A new "{SCHEME}data" hash of password with a fresh random salt
 * (getrandom). *hash_r is malloc'ed; the caller frees it. 0 or -1. */
int auth_scheme_hash(enum auth_scheme s, const char *password, size_t pwlen,
    const struct auth_scheme_opts *o, char **hash_r, const char **error_r);

/* A hash of a random, forgotten password: what unknown users are verified
 * against so their cost equals a real user's. malloc'ed. 0 or -1. */
int auth_scheme_dummy(enum auth_scheme s, const struct auth_scheme_opts *o,
    char **hash_r, const char **error_r);

/* SCRAM-SHA-256 stored keys are the SASL mechanism's struct sasl_scram_keys
 * (auth/sasl.h), and sasl_scram_keys_parse() reads the data of a
 * {SCRAM-SHA-256} password in either stored form.
 *
 * Derive every key from a password: SaltedPassword = PBKDF2-HMAC-SHA256,
 * ClientKey = HMAC(SP, "Client Key"), StoredKey = SHA256(ClientKey),
 * ServerKey = HMAC(SP, "Server Key"). k->iter, k->salt and k->salt_len are
 * inputs. 0 or -1. */
int auth_scram_derive(const char *password, size_t pwlen,
    struct sasl_scram_keys *k);

/* ---- verification ------------------------------------------------------- */

/* enum auth_status (AUTH_OK, AUTH_FAIL, AUTH_TEMPFAIL) is declared with
 * the back-ends above, whose verify hook answers with it. */

/* Why, for the server's logs and metrics; never shown to a client. */
enum auth_reason {
	AUTH_R_NONE = 0,
	AUTH_R_PASSWORD, /* wrong password */
	AUTH_R_UNKNOWN,	 /* no such user */
	AUTH_R_NOLOGIN,	 /* right password, nologin flag */
	AUTH_R_NETWORK,	 /* right password, client outside allow_nets= */
	AUTH_R_NOPASS,	 /* the user has no usable password (or scheme off) */
	AUTH_R_BACKEND,	 /* back-end lookup failed */
	AUTH_R_OVERFLOW, /* the verify queue was full */
	AUTH_R_MAX
};
const char *auth_status_name(enum auth_status s);
const char *auth_reason_name(enum auth_reason r);

struct auth_result {
	enum auth_status status;
	enum auth_reason reason;
	bool cached; /* answered from the positive cache, no hash run */
	/* AUTH_FAIL: the delay the back-end asked for before the answer
	 * (HTTP Auth-Wait), 0 = the caller's own. */
	uint32_t wait_ms;
	/* A reference on AUTH_OK, else NULL. A callback that keeps it sets
	 * the field to NULL; whatever is left is dropped after the call. */
	struct auth_entry *entry;
};

/* What a synchronous verification needs. */
struct auth_verifier {
	struct auth_backend *backend;
	const struct auth_scheme_opts *schemes;
	const char *dummy_hash; /* from auth_scheme_dummy() */
};

/* Look user up and verify password; fills *res (its entry, on OK, is a
 * reference the caller owns). Unknown users run the dummy hash. Policy
 * (nologin, allow_nets= against client, which may be NULL) is applied only
 * after a correct password. Slow: worker threads only. */
void auth_verify(const struct auth_verifier *v, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    struct auth_result *res);

/* auth_verify() with what is known of the login (info may be NULL), for
 * back-ends that pass it on. */
void auth_verify_login(const struct auth_verifier *v, const char *user,
    const char *password, size_t pwlen, const struct sockaddr *client,
    const struct auth_login_info *info, struct auth_result *res);

/* ---- verify pool (auth/pool.c) ------------------------------------------ */

/* Called on the loop's thread (via loop_post) or, for jobs submitted with
 * a NULL loop, on a worker thread (or inside auth_pool_submit() itself for
 * an immediate answer). sid is the session id given at submit time: the
 * session may be gone by now, and the callback must look it up and drop
 * the result quietly if so. */
typedef void auth_result_cb(struct loop *l, uint64_t sid,
    struct auth_result *res, void *ctx);

struct auth_pool_conf {
	struct auth_backend *backend;
	struct auth_scheme_opts schemes;
	enum auth_scheme dummy_scheme; /* scheme of new users' hashes */
	unsigned threads;	       /* 0 = 2 */
	unsigned queue_max;	       /* jobs waiting; 0 = 256 */
	unsigned cache_size;	       /* entries; 0 = 4096 */
	uint64_t cache_ttl_ms;	       /* 0 = 60,000 */
	bool cache_off;
	/* Monotonic clock in ms for the cache TTL; NULL = CLOCK_MONOTONIC.
	 * Tests inject their own. */
	uint64_t (*now_ms)(void *arg);
	void *now_arg;
};

/* Counters since start; the daemon exports them as metrics. */
struct auth_pool_stats {
	uint64_t submitted;
	uint64_t verifies; /* verifications run (real or dummy hash) */
	uint64_t cache_hits, cache_misses;
	uint64_t overflows; /* jobs refused because the queue was full */
	uint64_t lost;	    /* results that could not be posted (no memory) */
	uint64_t result[3]; /* per enum auth_status */
	unsigned queued;    /* waiting now */
};

struct auth_pool;

/* Start the workers. Builds the dummy hash (one hash at the default cost,
 * so this takes as long as one verification). NULL with *error_r. */
struct auth_pool *auth_pool_new(const struct auth_pool_conf *conf,
    const char **error_r);

/* Stop and join the workers. Jobs still queued are dropped without a
 * callback; results already posted to loops are self-contained and may
 * still be delivered after this returns, so the callbacks' ctx must
 * outlive the loops, not the pool. */
void auth_pool_free(struct auth_pool **p);

/* Queue a verification; never blocks (a lock and a signal, plus a cache
 * probe when the back-end is in-memory). The password is copied and wiped
 * after use. Exactly one callback follows a 0 return: the answer, a cache
 * hit, or TEMPFAIL when the queue is full (all through loop_post(l) when l
 * is not NULL). -1 (no memory) means no callback will come. client may be
 * NULL; it is copied. */
int auth_pool_submit(struct auth_pool *p, struct loop *l, uint64_t sid,
    const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client, auth_result_cb *cb, void *ctx);

/* auth_pool_submit() with what is known of the login (info may be
 * NULL; its strings are copied, protocol and method up to 15 bytes, the
 * others up to 255). */
int auth_pool_submit_login(struct auth_pool *p, struct loop *l, uint64_t sid,
    const char *user, const char *password, size_t pwlen,
    const struct sockaddr *client, const struct auth_login_info *info,
    auth_result_cb *cb, void *ctx);

/* Forget every cached answer (e.g. on SIGHUP). */
void auth_pool_cache_flush(struct auth_pool *p);

void auth_pool_stats(struct auth_pool *p, struct auth_pool_stats *st);

#endif
