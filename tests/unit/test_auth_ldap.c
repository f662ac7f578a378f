/*
 * test_auth_ldap.c - the LDAP user back-end against a real slapd that the
 * test sets up in a temporary directory (slapd.conf, a small schema for
 * the mapped attributes, the mdb back-end, users loaded with slapadd, a
 * self-signed certificate), runs in the foreground on free loopback ports
 * (ldap:// and ldaps://) and stops at the end.
 *
 * BIND mode: right password, wrong password and unknown user (same
 * answer), empty password, filter injection, an ambiguous filter, the
 * verify pool calling the hook and caching its answer. COMPARE mode: our
 * schemes and {CRYPT} read from userPassword, policy after a right
 * password, a service account refused. Serials follow modifications; TLS
 * (ldaps:// and StartTLS) with and without a trusted CA; slapd stopped and
 * frozen (TEMPFAIL, bounded), then back.
 *
 * Skips (77) when slapd is not installed, except under CI, where
 * scripts/deps.sh installs it and its absence is a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ldap.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth/auth.h"
#include "tests/unit/server_helpers.h"

#define BASE "dc=example,dc=test"
#define READER_DN "cn=reader," BASE
#define TIMEOUT_MS 400

/* The running slapd and what every test shares. */
struct lctx {
	char dir[64];
	char slapd[64], slapadd[64];
	uint16_t port, tls_port;
	pid_t pid;
	bool have_tls;
	struct auth_scheme_opts schemes;
	char *dummy;
};

static struct lctx lc;

/* ---- set-up ----------------------------------------------------------- */

static bool
find_prog(const char *name, char *out, size_t size)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin",
		"/bin", "/usr/local/sbin" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(out, size, "%s/%s", dirs[i], name);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

static void
write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", lc.dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* {SSHA}: base64(SHA1(password salt) salt), what slapd stores itself. */
static void
ssha(const char *pw, char *out, size_t size)
{
	unsigned char buf[20 + 8], b64[64];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_int_equal(RAND_bytes(buf + 20, 8), 1);
	EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
	EVP_DigestUpdate(ctx, pw, strlen(pw));
	EVP_DigestUpdate(ctx, buf + 20, 8);
	EVP_DigestFinal_ex(ctx, buf, &len);
	EVP_MD_CTX_free(ctx);
	EVP_EncodeBlock(b64, buf, sizeof(buf));
	snprintf(out, size, "{SSHA}%s", b64);
}

static char *
sha512(const char *pw)
{
	const char *err = NULL;
	char *h = NULL;

	assert_int_equal(auth_scheme_hash(AUTH_SCHEME_SHA512_CRYPT, pw,
			     strlen(pw), &lc.schemes, &h, &err),
	    0);
	return h;
}

static void
write_config(void)
{
	static const char oid[] =
	    "2.25.270389271453186151366383424394573385412";
	char buf[4096];

	snprintf(buf, sizeof(buf),
	    "attributetype ( %s.1.1 NAME 'rgHost' EQUALITY "
	    "caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 "
	    "SINGLE-VALUE )\n"
	    "attributetype ( %s.1.2 NAME 'rgQuota' EQUALITY "
	    "caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 "
	    "SINGLE-VALUE )\n"
	    "attributetype ( %s.1.3 NAME 'rgAlias' EQUALITY "
	    "caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n"
	    "attributetype ( %s.1.4 NAME 'rgNologin' EQUALITY "
	    "booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 "
	    "SINGLE-VALUE )\n"
	    "attributetype ( %s.1.5 NAME 'rgAllowNets' EQUALITY "
	    "caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n"
	    "objectclass ( %s.2.1 NAME 'rgUser' AUXILIARY MAY ( rgHost $ "
	    "rgQuota $ rgAlias $ rgNologin $ rgAllowNets ) )\n",
	    oid, oid, oid, oid, oid, oid);
	write_file("rg.schema", buf);
	snprintf(buf, sizeof(buf),
	    "include /etc/ldap/schema/core.schema\n"
	    "include /etc/ldap/schema/cosine.schema\n"
	    "include /etc/ldap/schema/inetorgperson.schema\n"
	    "include %s/rg.schema\n"
	    "modulepath /usr/lib/ldap\n"
	    "moduleload back_mdb\n"
	    "pidfile %s/slapd.pid\n"
	    "%s%s%s%s%s"
	    "database mdb\n"
	    "maxsize 16777216\n"
	    "suffix \"" BASE "\"\n"
	    "rootdn \"cn=admin," BASE "\"\n"
	    "rootpw admin-pw\n"
	    "directory %s/db\n"
	    "access to attrs=userPassword by self read by anonymous auth"
	    " by dn.exact=\"" READER_DN "\" read by * none\n"
	    "access to * by * read\n",
	    lc.dir, lc.dir, lc.have_tls ? "TLSCertificateFile " : "",
	    lc.have_tls ? lc.dir : "",
	    lc.have_tls ? "/cert.pem\nTLSCertificateKeyFile " : "",
	    lc.have_tls ? lc.dir : "", lc.have_tls ? "/key.pem\n" : "", lc.dir);
	write_file("slapd.conf", buf);
}

static void
write_users(void)
{
	char buf[8192], alice[80], dave[80];
	char *bob = sha512("bob-pw"), *carol = sha512("carol-pw");

	ssha("alice-pw", alice, sizeof(alice));
	ssha("dave-pw", dave, sizeof(dave));
	snprintf(buf, sizeof(buf),
	    "dn: " BASE "\nobjectClass: dcObject\nobjectClass: "
	    "organization\no: test\ndc: example\n\n"
	    "dn: " READER_DN "\nobjectClass: organizationalRole\n"
	    "objectClass: simpleSecurityObject\ncn: reader\n"
	    "userPassword: reader-pw\n\n"
	    "dn: ou=people," BASE "\nobjectClass: organizationalUnit\n"
	    "ou: people\n\n"
	    "dn: uid=alice,ou=people," BASE "\nobjectClass: inetOrgPerson\n"
	    "objectClass: rgUser\nuid: alice\ncn: Alice\nsn: A\n"
	    "mail: alice@example.test\nuserPassword: %s\nrgHost: 10.0.0.5\n"
	    "rgQuota: 1G\nrgAlias: a@example.test\n"
	    "rgAlias: Postmaster@example.test\nrgAllowNets: 192.0.2.0/24\n"
	    "rgAllowNets: 2001:db8::/32\n\n"
	    "dn: uid=bob,ou=people," BASE "\nobjectClass: inetOrgPerson\n"
	    "objectClass: rgUser\nuid: bob\ncn: Bob\nsn: B\n"
	    "mail: bob@example.test\nuserPassword: %s\n"
	    "userPassword: bob-pw\nrgNologin: TRUE\n\n"
	    "dn: uid=carol,ou=people," BASE "\nobjectClass: inetOrgPerson\n"
	    "objectClass: rgUser\nuid: carol\ncn: Carol\nsn: C\n"
	    "mail: carol@example.test\nuserPassword: {CRYPT}%s\n"
	    "rgAllowNets: 192.0.2.0/24\n\n"
	    "dn: uid=dave,ou=people," BASE "\nobjectClass: inetOrgPerson\n"
	    "uid: dave\ncn: Dave\nsn: D\nmail: dave@example.test\n"
	    "userPassword: %s\n\n"
	    "dn: uid=dup1,ou=people," BASE "\nobjectClass: inetOrgPerson\n"
	    "uid: dup1\ncn: Dup\nsn: D\nmail: dup@example.test\n"
	    "userPassword: dup-pw\n\n"
	    "dn: uid=dup2,ou=people," BASE "\nobjectClass: inetOrgPerson\n"
	    "uid: dup2\ncn: Dup\nsn: D\nmail: dup@example.test\n"
	    "userPassword: dup-pw\n",
	    alice, bob, strchr(carol, '}') + 1, dave);
	write_file("users.ldif", buf);
	free(bob);
	free(carol);
}

static void
start_slapd(void)
{
	char urls[128];

	if (lc.have_tls)
		snprintf(urls, sizeof(urls),
		    "ldap://127.0.0.1:%u/ ldaps://127.0.0.1:%u/", lc.port,
		    lc.tls_port);
	else
		snprintf(urls, sizeof(urls), "ldap://127.0.0.1:%u/", lc.port);
	lc.pid = fork();
	assert_int_not_equal(lc.pid, -1);
	if (lc.pid == 0) {
		char conf[128], log[128];
		int fd;

		snprintf(conf, sizeof(conf), "%s/slapd.conf", lc.dir);
		snprintf(log, sizeof(log), "%s/slapd.log", lc.dir);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		/* -d keeps slapd in the foreground, our child. */
		execl(lc.slapd, "slapd", "-h", urls, "-f", conf, "-d", "0",
		    (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct timespec ts = { .tv_nsec = 25 * 1000 * 1000 };

		if (port_open(lc.port) &&
		    (!lc.have_tls || port_open(lc.tls_port)))
			return;
		nanosleep(&ts, NULL);
	}
	fail_msg("slapd did not come up (see %s/slapd.log)", lc.dir);
}

static void
stop_slapd(void)
{
	if (lc.pid <= 0)
		return;
	kill(lc.pid, SIGCONT);
	kill(lc.pid, SIGTERM);
	waitpid(lc.pid, NULL, 0);
	lc.pid = 0;
}

static int
run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
group_setup(void **state)
{
	char cmd[512];
	const char *err = NULL;

	snprintf(lc.dir, sizeof(lc.dir), "/tmp/rg-ldap-XXXXXX");
	if (mkdtemp(lc.dir) == NULL)
		return -1;
	lc.schemes.sha_rounds = 1000;
	auth_scheme_opts_default(&lc.schemes);
	if (auth_scheme_dummy(AUTH_SCHEME_SHA512_CRYPT, &lc.schemes, &lc.dummy,
		&err) == -1)
		return -1;
	lc.port = free_port();
	do
		lc.tls_port = free_port();
	while (lc.tls_port == lc.port);
	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && mkdir db && openssl req -x509 -newkey rsa:2048 "
	    "-nodes -keyout key.pem -out cert.pem -subj /CN=127.0.0.1 "
	    "-addext subjectAltName=IP:127.0.0.1 -days 2 >/dev/null 2>&1",
	    lc.dir);
	lc.have_tls = run(cmd) == 0;
	write_config();
	write_users();
	snprintf(cmd, sizeof(cmd),
	    "'%s' -f '%s/slapd.conf' -l '%s/users.ldif' >'%s/slapadd.log' "
	    "2>&1",
	    lc.slapadd, lc.dir, lc.dir, lc.dir);
	if (run(cmd) != 0) {
		fprintf(stderr, "slapadd failed, see %s/slapadd.log\n", lc.dir);
		return -1;
	}
	start_slapd();
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	stop_slapd();
	free(lc.dummy);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", lc.dir);
	return run(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ---------------------------------------------------------- */

static struct auth_ldap_conf
base_conf(enum auth_ldap_mode mode)
{
	static char uri[64];

	snprintf(uri, sizeof(uri), "ldap://127.0.0.1:%u", lc.port);
	return (struct auth_ldap_conf){
		.uri = uri,
		.bind_dn = READER_DN,
		.bind_password = "reader-pw",
		.base = BASE,
		.filter = "(&(objectClass=inetOrgPerson)(mail=%u))",
		.mode = mode,
		.host_attr = "rgHost",
		.quota_attr = "rgQuota",
		.alias_attr = "rgAlias",
		.nologin_attr = "rgNologin",
		.allow_nets_attr = "rgAllowNets",
		.network_timeout_ms = TIMEOUT_MS,
		.timeout_ms = TIMEOUT_MS,
	};
}

static struct auth_ldap *
open_ldap(const struct auth_ldap_conf *conf)
{
	const char *err = NULL;
	struct auth_ldap *l = auth_ldap_new(conf, &err);

	if (l == NULL)
		fail_msg("auth_ldap_new: %s", err);
	return l;
}

static enum auth_lookup
look(struct auth_ldap *l, const char *user, struct auth_entry **e)
{
	const char *err = NULL;

	return auth_lookup(auth_ldap_backend(l), user, e, &err);
}

static void
verify(struct auth_ldap *l, const char *user, const char *pw,
    struct auth_result *res)
{
	struct auth_verifier v = { .backend = auth_ldap_backend(l),
		.schemes = &lc.schemes,
		.dummy_hash = lc.dummy };
	struct sockaddr_in sin = { .sin_family = AF_INET };

	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	auth_verify(&v, user, pw, strlen(pw), (struct sockaddr *)&sin, res);
}

static void
expect(struct auth_ldap *l, const char *user, const char *pw,
    enum auth_status st, enum auth_reason why)
{
	struct auth_result res;

	verify(l, user, pw, &res);
	if (res.status != st || res.reason != why)
		fail_msg("%s: got %s/%s, want %s/%s", user,
		    auth_status_name(res.status), auth_reason_name(res.reason),
		    auth_status_name(st), auth_reason_name(why));
	auth_entry_unref(&res.entry);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_conf(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_BIND);
	enum auth_ldap_mode m;
	const char *err = NULL;

	c.uri = "http://127.0.0.1/";
	assert_null(auth_ldap_new(&c, &err));
	c = base_conf(AUTH_LDAP_BIND);
	c.filter = "(uid=%x)";
	assert_null(auth_ldap_new(&c, &err));
	c = base_conf(AUTH_LDAP_BIND);
	c.uri = "ldaps://127.0.0.1/";
	c.starttls = true;
	assert_null(auth_ldap_new(&c, &err));
	c = base_conf(AUTH_LDAP_BIND);
	c.bind_password = NULL;
	assert_null(auth_ldap_new(&c, &err));
	assert_int_equal(auth_ldap_mode_parse("Bind", &m), 0);
	assert_int_equal(m, AUTH_LDAP_BIND);
	assert_int_equal(auth_ldap_mode_parse("search", &m), 0);
	assert_int_equal(m, AUTH_LDAP_COMPARE);
	assert_int_equal(auth_ldap_mode_parse("compare", &m), 0);
	assert_int_equal(auth_ldap_mode_parse("sasl", &m), -1);
}

static void
test_bind_mode(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_BIND);
	struct auth_ldap *l = open_ldap(&c);
	struct auth_entry *e = NULL;
	struct auth_result res, res2;

	assert_int_equal(look(l, "Alice@Example.TEST", &e), AUTH_LOOKUP_FOUND);
	assert_string_equal(e->user, "alice@example.test");
	assert_null(e->password);
	assert_true(e->verify_by_backend);
	assert_string_equal(e->host, "10.0.0.5");
	assert_true(e->has_quota);
	assert_int_equal(e->quota, 1ULL << 30);
	assert_int_equal(e->n_aliases, 2);
	assert_true(auth_entry_has_alias(e, "postmaster@example.test"));
	assert_int_equal(e->n_allow_nets, 2);
	assert_false(e->nologin);
	assert_string_equal(auth_entry_field(e, "ldap_dn"),
	    "uid=alice,ou=people," BASE);
	auth_entry_unref(&e);

	verify(l, "alice@example.test", "alice-pw", &res);
	assert_int_equal(res.status, AUTH_OK);
	assert_non_null(res.entry);
	auth_entry_unref(&res.entry);

	/* Wrong password and unknown user: one answer. */
	verify(l, "alice@example.test", "alice-pw ", &res);
	verify(l, "nobody@example.test", "alice-pw", &res2);
	assert_int_equal(res.status, AUTH_FAIL);
	assert_int_equal(res2.status, AUTH_FAIL);
	assert_int_equal(res.reason, AUTH_R_PASSWORD);
	assert_int_equal(res2.reason, AUTH_R_UNKNOWN);
	assert_null(res.entry);
	assert_null(res2.entry);

	/* An empty password would be an unauthenticated bind. */
	expect(l, "alice@example.test", "", AUTH_FAIL, AUTH_R_PASSWORD);
	/* After a user bind the connection serves lookups again. */
	expect(l, "bob@example.test", "bob-pw", AUTH_FAIL, AUTH_R_NOLOGIN);
	expect(l, "bob@example.test", "alice-pw", AUTH_FAIL, AUTH_R_PASSWORD);

	/* Filter metacharacters are data, never filter. */
	assert_int_equal(look(l, "*", &e), AUTH_LOOKUP_NOTFOUND);
	assert_int_equal(look(l, "alice@example.test)(mail=*", &e),
	    AUTH_LOOKUP_NOTFOUND);
	assert_int_equal(look(l, "a*", &e), AUTH_LOOKUP_NOTFOUND);
	assert_int_equal(look(l, "\\2a", &e), AUTH_LOOKUP_NOTFOUND);
	/* A filter that does not identify one user logs nobody in. */
	assert_int_equal(look(l, "dup@example.test", &e), AUTH_LOOKUP_TEMPFAIL);
	expect(l, "dup@example.test", "dup-pw", AUTH_TEMPFAIL, AUTH_R_BACKEND);
	auth_ldap_free(&l);
	assert_null(l);
}

/* %n and %d, and an anonymous search (no service account). */
static void
test_filter_parts(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_BIND);
	struct auth_ldap *l;
	struct auth_entry *e = NULL;

	c.filter = "(&(uid=%n)(mail=%n@%d))";
	c.bind_dn = c.bind_password = NULL;
	l = open_ldap(&c);
	assert_int_equal(look(l, "carol@example.test", &e), AUTH_LOOKUP_FOUND);
	assert_string_equal(auth_entry_field(e, "ldap_dn"),
	    "uid=carol,ou=people," BASE);
	auth_entry_unref(&e);
	assert_int_equal(look(l, "carol@example.org", &e),
	    AUTH_LOOKUP_NOTFOUND);
	expect(l, "carol@example.test", "carol-pw", AUTH_OK, AUTH_R_NONE);
	auth_ldap_free(&l);
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct auth_result res;
};

static void
pool_cb(struct loop *lp, uint64_t sid, struct auth_result *res, void *ctx)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->res = *res;
	res->entry = NULL;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void
pool_verify(struct auth_pool *p, const char *user, const char *pw,
    struct auth_result *res)
{
	struct waiter w = { .lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER };

	assert_int_equal(auth_pool_submit(p, NULL, 1, user, pw, strlen(pw),
			     NULL, pool_cb, &w),
	    0);
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	*res = w.res;
}

/* The pool reaches the hook through auth_verify(), and caches a bind
 * like any verified password. */
static void
test_pool(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_BIND);
	struct auth_ldap *l;
	struct auth_pool_conf pc = { .dummy_scheme = AUTH_SCHEME_SHA512_CRYPT,
		.schemes = lc.schemes };
	struct auth_pool *p;
	struct auth_result res;
	const char *err = NULL;

	c.allow_nets_attr = NULL;
	l = open_ldap(&c);
	pc.backend = auth_ldap_backend(l);
	p = auth_pool_new(&pc, &err);
	assert_non_null(p);
	pool_verify(p, "alice@example.test", "alice-pw", &res);
	assert_int_equal(res.status, AUTH_OK);
	assert_false(res.cached);
	auth_entry_unref(&res.entry);
	pool_verify(p, "alice@example.test", "alice-pw", &res);
	assert_int_equal(res.status, AUTH_OK);
	assert_true(res.cached);
	auth_entry_unref(&res.entry);
	pool_verify(p, "alice@example.test", "nope", &res);
	assert_int_equal(res.status, AUTH_FAIL);
	assert_false(res.cached);
	auth_pool_free(&p);
	auth_ldap_free(&l);
}

static void
test_compare_mode(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_COMPARE);
	struct auth_ldap *l = open_ldap(&c);
	struct auth_entry *e = NULL;

	assert_int_equal(look(l, "bob@example.test", &e), AUTH_LOOKUP_FOUND);
	assert_false(e->verify_by_backend);
	assert_non_null(e->password);
	assert_memory_equal(e->password, "{SHA512-CRYPT}$6$", 17);
	assert_true(e->nologin);
	auth_entry_unref(&e);
	assert_int_equal(look(l, "carol@example.test", &e), AUTH_LOOKUP_FOUND);
	assert_memory_equal(e->password, "$6$", 3); /* {CRYPT} dropped */
	auth_entry_unref(&e);

	expect(l, "bob@example.test", "bob-pw", AUTH_FAIL, AUTH_R_NOLOGIN);
	expect(l, "bob@example.test", "bob-px", AUTH_FAIL, AUTH_R_PASSWORD);
	expect(l, "carol@example.test", "carol-pw", AUTH_OK, AUTH_R_NONE);
	expect(l, "carol@example.test", "", AUTH_FAIL, AUTH_R_PASSWORD);
	expect(l, "nobody@example.test", "x", AUTH_FAIL, AUTH_R_UNKNOWN);
	/* {SSHA} is slapd's, not one of our schemes: no usable hash. */
	expect(l, "dave@example.test", "dave-pw", AUTH_FAIL, AUTH_R_NOPASS);
	auth_ldap_free(&l);

	/* The hashes are readable only by the service account. */
	c.bind_dn = c.bind_password = NULL;
	l = open_ldap(&c);
	assert_int_equal(look(l, "bob@example.test", &e), AUTH_LOOKUP_FOUND);
	assert_null(e->password);
	auth_entry_unref(&e);
	auth_ldap_free(&l);

	c = base_conf(AUTH_LDAP_COMPARE);
	c.bind_password = "wrong";
	l = open_ldap(&c);
	expect(l, "bob@example.test", "bob-pw", AUTH_TEMPFAIL, AUTH_R_BACKEND);
	auth_ldap_free(&l);
}

static void
test_serial(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_BIND);
	struct auth_ldap *l = open_ldap(&c);
	struct auth_entry *a = NULL, *b = NULL;
	char uri[64], host[] = "10.0.0.6";
	char *vals[] = { host, NULL };
	LDAPMod mod = { .mod_op = LDAP_MOD_REPLACE,
		.mod_type = "rgHost",
		.mod_values = vals };
	LDAPMod *mods[] = { &mod, NULL };
	struct berval cred = { .bv_len = 8, .bv_val = "admin-pw" };
	int v3 = LDAP_VERSION3;
	LDAP *ld;

	assert_int_equal(look(l, "alice@example.test", &a), AUTH_LOOKUP_FOUND);
	assert_int_equal(look(l, "alice@example.test", &b), AUTH_LOOKUP_FOUND);
	assert_true(a->serial == b->serial);
	auth_entry_unref(&b);

	snprintf(uri, sizeof(uri), "ldap://127.0.0.1:%u", lc.port);
	assert_int_equal(ldap_initialize(&ld, uri), LDAP_SUCCESS);
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	assert_int_equal(ldap_sasl_bind_s(ld, "cn=admin," BASE,
			     LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL),
	    LDAP_SUCCESS);
	assert_int_equal(ldap_modify_ext_s(ld, "uid=alice,ou=people," BASE,
			     mods, NULL, NULL),
	    LDAP_SUCCESS);
	ldap_unbind_ext_s(ld, NULL, NULL);

	assert_int_equal(look(l, "alice@example.test", &b), AUTH_LOOKUP_FOUND);
	assert_string_equal(b->host, "10.0.0.6");
	assert_true(a->serial != b->serial);
	assert_string_equal(a->host, "10.0.0.5");
	auth_entry_unref(&a);
	auth_entry_unref(&b);
	auth_ldap_free(&l);
}

static void
test_tls(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_BIND);
	struct auth_ldap *l;
	struct auth_entry *e = NULL;
	char uri[64], ca[128];

	if (!lc.have_tls)
		skip();
	snprintf(ca, sizeof(ca), "%s/cert.pem", lc.dir);
	snprintf(uri, sizeof(uri), "ldaps://127.0.0.1:%u", lc.tls_port);
	c.uri = uri;
	c.ca_file = ca;
	l = open_ldap(&c);
	expect(l, "alice@example.test", "alice-pw", AUTH_OK, AUTH_R_NONE);
	expect(l, "alice@example.test", "alice-px", AUTH_FAIL, AUTH_R_PASSWORD);
	auth_ldap_free(&l);

	c = base_conf(AUTH_LDAP_BIND);
	c.starttls = true;
	c.ca_file = ca;
	l = open_ldap(&c);
	expect(l, "alice@example.test", "alice-pw", AUTH_OK, AUTH_R_NONE);
	auth_ldap_free(&l);

	/* A certificate nobody vouches for: no answer, not a wrong one. */
	c.ca_file = "/dev/null";
	l = open_ldap(&c);
	assert_int_equal(look(l, "alice@example.test", &e),
	    AUTH_LOOKUP_TEMPFAIL);
	auth_ldap_free(&l);
	c = base_conf(AUTH_LDAP_BIND);
	c.uri = uri;
	c.ca_file = "/dev/null";
	l = open_ldap(&c);
	expect(l, "alice@example.test", "alice-pw", AUTH_TEMPFAIL,
	    AUTH_R_BACKEND);
	auth_ldap_free(&l);
}

static void
test_down_and_back(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_BIND);
	struct auth_ldap *l = open_ldap(&c);
	struct auth_entry *e = NULL;
	const char *err = NULL;

	/* Hold an entry and a kept connection, then take slapd away. */
	assert_int_equal(look(l, "alice@example.test", &e), AUTH_LOOKUP_FOUND);
	stop_slapd();
	assert_int_equal(auth_ldap_backend(l)->ops->verify(auth_ldap_backend(l),
			     e, "alice-pw", 8, &err),
	    AUTH_TEMPFAIL);
	auth_entry_unref(&e);
	expect(l, "alice@example.test", "alice-pw", AUTH_TEMPFAIL,
	    AUTH_R_BACKEND);
	expect(l, "nobody@example.test", "alice-pw", AUTH_TEMPFAIL,
	    AUTH_R_BACKEND);

	start_slapd();
	expect(l, "alice@example.test", "alice-pw", AUTH_OK, AUTH_R_NONE);
	/* Kept connections to a restarted slapd are dead: the first
	 * lookup afterwards still works. */
	stop_slapd();
	start_slapd();
	expect(l, "alice@example.test", "alice-pw", AUTH_OK, AUTH_R_NONE);
	auth_ldap_free(&l);
}

/* A directory that accepts but never answers costs one timeout. */
static void
test_frozen(void **state)
{
	struct auth_ldap_conf c = base_conf(AUTH_LDAP_BIND);
	struct auth_ldap *l = open_ldap(&c);
	struct auth_entry *e = NULL;
	uint64_t t0, dt;

	assert_int_equal(look(l, "alice@example.test", &e), AUTH_LOOKUP_FOUND);
	auth_entry_unref(&e);
	kill(lc.pid, SIGSTOP);
	wait_stopped(lc.pid);
	t0 = now_ms();
	assert_int_equal(look(l, "alice@example.test", &e),
	    AUTH_LOOKUP_TEMPFAIL);
	dt = now_ms() - t0;
	assert_true(dt < 4 * TIMEOUT_MS);
	t0 = now_ms();
	expect(l, "alice@example.test", "alice-pw", AUTH_TEMPFAIL,
	    AUTH_R_BACKEND);
	dt = now_ms() - t0;
	assert_true(dt < 4 * TIMEOUT_MS);
	kill(lc.pid, SIGCONT);
	expect(l, "alice@example.test", "alice-pw", AUTH_OK, AUTH_R_NONE);
	auth_ldap_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_bind_mode),
		cmocka_unit_test(test_filter_parts),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_compare_mode),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_frozen),
		cmocka_unit_test(test_down_and_back),
	};

	if (!find_prog("slapd", lc.slapd, sizeof(lc.slapd)) ||
	    !find_prog("slapadd", lc.slapadd, sizeof(lc.slapadd))) {
		if (getenv("CI") != NULL) {
			fprintf(stderr,
			    "slapd missing under CI; "
			    "scripts/deps.sh installs it\n");
			return 1;
		}
		fprintf(stderr, "slapd not installed: skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
