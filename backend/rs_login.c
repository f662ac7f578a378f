/*
 * rs_login.c - ringstore's side of the login core (login/login.h): the
 * hooks that make a logged-in user an IMAP session here. A master user
 * (ringgate) may act as any user from master_nets; once a user is in,
 * the Maildir is made ready on the login lane of the store pool (logins
 * never queue behind mailbox work), then the connection goes to the IMAP
 * session core with the login command's tagged OK. Also the start-up
 * reading of auth.scram_secret_file.
 *
 * Must never: let a master act for a user outside master_nets, tell a
 * master whether a target exists (an unknown or nologin target answers
 * like a wrong password), or log key material.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "auth/auth.h"
#include "backend/imap_private.h"
#include "store/maildir.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/net.h"
#include "core/pool.h"
#include "login/login.h"

#define SECRET_FILE_MAX 4096 /* bytes read from auth.scram_secret_file */
#define SECRET_FILE_MIN 16   /* shorter is refused: guessable */

/* The user's Maildir made ready on the login lane; answered into the
 * worker's outbox, where the login session is found again by its id. */
struct maildir_job {
	struct pool_job base;
	struct rs_worker *w;
	const struct rs_listener *li;
	char *user;
	char *dir;
	char tag[LOGIN_TAG_MAX + 1];
	const char *errtext;
	int err;
};

static enum sasl_verdict authorize(struct login_session *s, const char *authcid,
    const char *authzid);
static void logged_in(struct login_session *s, const struct login_user *u);
static struct tls_server *starttls_server(struct login_session *s);
static bool master_user(const struct rs_config *cf, const char *user);
static void maildir_run(struct pool_job *pj);
static void maildir_done(struct pool_job *pj);
static void maildir_job_free(struct maildir_job *job);
static int read_secret(const char *path, uint8_t out[SHA256_DIGEST_LENGTH],
    const char **error_r);

const struct login_hooks rs_login_hooks = {
	.admit = NULL,
	.authorize = authorize,
	.logged_in = logged_in,
	.tls = starttls_server,
};

/* ---- start-up -------------------------------------------------------- */

int
rs_login_init(struct rs_server *srv, const char **error_r)
{
	const struct rs_config *cf = srv->cf;

	srv->scram_secret_len = 0;
	if (cf->auth.scram_secret_file != NULL) {
		if (read_secret(cf->auth.scram_secret_file, srv->scram_secret,
			error_r) == -1)
			return -1;
		srv->scram_secret_len = SHA256_DIGEST_LENGTH;
	}
	if (cf->auth.legacy_mechanisms)
		log_warn(0, "auth.legacy",
		    "mechanisms=CRAM-MD5 warning=\"it "
		    "needs plaintext-equivalent secrets: only users stored "
		    "as {PLAIN} or {CLEARTEXT} can use it\"");
	return 0;
}

/*
 * The secret is SHA-256 of the file's bytes (trailing white space
 * dropped), so any length from SECRET_FILE_MIN to SECRET_FILE_MAX works,
 * e.g. `openssl rand -base64 32`. Every instance given the same file
 * shows unknown users the same fake salts.
 */
static int
read_secret(const char *path, uint8_t out[SHA256_DIGEST_LENGTH],
    const char **error_r)
{
	static char msg[600];
	char buf[SECRET_FILE_MAX + 1];
	const char *why = NULL;
	struct stat st;
	ssize_t n = -1;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if ((n = read(fd, buf, sizeof(buf))) == -1)
		why = strerror(errno);
	else if (n > SECRET_FILE_MAX)
		why = "longer than 4096 bytes";
	if (fd != -1)
		close(fd);
	while (why == NULL && n > 0 &&
	    (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
		buf[n - 1] == '\t'))
		n--;
	if (why == NULL && n < SECRET_FILE_MIN)
		why = "shorter than 16 bytes";
	if (why == NULL && SHA256((const uint8_t *)buf, (size_t)n, out) == NULL)
		why = "SHA-256 failed";
	OPENSSL_cleanse(buf, sizeof(buf));
	if (why == NULL) {
		if (st.st_mode & S_IROTH)
			log_warn(0, "auth.scram_secret",
			    "path=%s warning=\"readable by everyone\"", path);
		return 0;
	}
	snprintf(msg, sizeof(msg), "auth.scram_secret_file %s: %s", path, why);
	*error_r = msg;
	return -1;
}

/* ---- master users ---------------------------------------------------- */

/*
 * authcid's password was right and it asks to act as authzid: only a
 * master user, from master_nets, for a target who may log in. An unknown
 * or nologin target answers like a wrong password, so a master cannot
 * probe for names.
 */
static enum sasl_verdict
authorize(struct login_session *s, const char *authcid, const char *authzid)
{
	const struct rs_listener *li = login_session_ctx(s);
	const struct rs_server *srv = li->srv;
	const struct rs_config *cf = srv->cf;
	struct conn *c = login_session_conn(s);
	char qm[AUTH_USER_MAX * 2], qt[AUTH_USER_MAX * 2];
	struct auth_entry *e = NULL;
	const char *why = NULL, *err = NULL;
	enum sasl_verdict v = SASL_V_AUTHZID;

	if (!master_user(cf, authcid))
		why = "not_master";
	else if (!net_list_match(cf->auth.master_nets, cf->auth.nmaster_nets,
		     conn_peer_addr(c, NULL)))
		why = "network";
	else if (auth_lookup(srv->users, authzid, &e, &err) !=
	    AUTH_LOOKUP_FOUND) {
		why = "unknown_target";
		v = SASL_V_FAIL;
	} else if (e->nologin) {
		why = "nologin_target";
		v = SASL_V_FAIL;
	}
	auth_entry_unref(&e);
	log_info(login_session_sid(s), "imap.master",
	    "master=%s target=%s peer=%s result=%s",
	    log_quote(qm, sizeof(qm), authcid, (size_t)-1),
	    log_quote(qt, sizeof(qt), authzid, (size_t)-1), conn_peer(c),
	    why ? why : "ok");
	if (why == NULL)
		return SASL_V_OK;
	metrics_add(loop_shard(conn_loop(c)), srv->m.master_refused, 1);
	return v;
}

static bool
master_user(const struct rs_config *cf, const char *user)
{
	for (unsigned i = 0; i < cf->auth.nmaster_users; i++)
		if (strcasecmp(cf->auth.master_users[i], user) == 0)
			return true;
	return false;
}

static struct tls_server *
starttls_server(struct login_session *s)
{
	struct rs_worker *w = loop_ctx(conn_loop(login_session_conn(s)));

	return w->tls;
}

/* ---- the hand-off ---------------------------------------------------- */

static void
logged_in(struct login_session *s, const struct login_user *u)
{
	const struct rs_listener *li = login_session_ctx(s);
	struct rs_worker *w = loop_ctx(conn_loop(login_session_conn(s)));
	struct maildir_job *job = calloc(1, sizeof(*job));

	if (job == NULL || (job->user = strdup(u->user)) == NULL) {
		free(job);
		login_session_refuse(s, "out of memory");
		return;
	}
	snprintf(job->tag, sizeof(job->tag), "%s", u->tag);
	job->w = w;
	job->li = li;
	job->base.run = maildir_run;
	job->base.done = maildir_done;
	job->base.sid = login_session_sid(s);
	job->base.flow = job->base.sid;
	if (pool_submit(w->srv->login ? w->srv->login : w->srv->store,
		w->outbox, &job->base) == -1) {
		maildir_job_free(job);
		metrics_add(loop_shard(w->loop), w->srv->m.store_busy, 1);
		login_session_refuse(s, "store queue full");
	}
}

static void
maildir_run(struct pool_job *pj)
{
	struct maildir_job *job = (struct maildir_job *)pj;
	const struct rs_config *cf = job->w->srv->cf;

	if (maildir_user_dir(cf->storage.mail_root, job->user, &job->dir,
		&job->errtext) == -1 ||
	    maildir_user_init(job->dir, &job->errtext) == -1)
		job->err = errno ? errno : EIO;
}

/* On the loop: the login session (if the client is still there) becomes
 * an IMAP session, or hears that its store is not ready. */
static void
maildir_done(struct pool_job *pj)
{
	struct maildir_job *job = (struct maildir_job *)pj;
	struct rs_worker *w = job->w;
	struct login_session *s = login_session_find(w->login, pj->sid);
	struct buf rest = { 0 };
	struct conn *c;
	bool tls;

	if (s == NULL) {
		maildir_job_free(job);
		return;
	}
	if (job->err) {
		log_error(pj->sid, "imap.maildir_failed", "error=\"%s\"",
		    job->errtext ? job->errtext : "?");
		login_session_refuse(s, "maildir");
		maildir_job_free(job);
		return;
	}
	tls = login_session_tls(s);
	if ((c = login_session_handoff(s, &rest)) != NULL &&
	    imap_session_start(w, c, job->li, job->user, job->dir, job->tag,
		tls, &rest) == 0)
		job->user = job->dir = NULL; /* the session's now */
	buf_free(&rest);
	maildir_job_free(job);
}

static void
maildir_job_free(struct maildir_job *job)
{
	free(job->user);
	free(job->dir);
	free(job);
}
