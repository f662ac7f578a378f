/*
 * gate_login.c - ringgate's side of the login core (login/login.h): the
 * hooks of its IMAP, POP3 and submission listeners, their metrics and the
 * back ends' TLS clients.
 *
 * Everything a client sees before login (greeting, CAPABILITY, STARTTLS,
 * LOGINDISABLED and no AUTH= before TLS, the SASL exchange, the limits)
 * is the protocol tables' and the core's job; ringgate only says who may
 * act as whom (master users, as ringstore does), which certificates
 * STARTTLS uses, and what happens once the user is in (session.c).
 * With a throttle group, admit, judge and ended are the throttle's
 * (throttle/throttle.h): a connection is admitted or refused at accept,
 * every login's answer waits the throttle's verdict (tarpit, block), a
 * session closed for bad commands counts against its address, and the
 * connection's hold on the concurrency counters goes with the session
 * (or, after the hand-off, with the relayed session: gate_thr_take()).
 *
 * Must never: let a master act for a user outside master_nets, or tell a
 * master whether a target exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/auth_service.h"
#include "core/listen_set.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/tls.h"
#include "proxy/gate.h"
#include "throttle/throttle.h"

/* A login session's throttle state (login_session_data()). */
struct gate_thr {
	struct gate_worker *w;
	struct throttle_conn *tc; /* the concurrency counters' hold */
	struct sockaddr_storage peer;
	bool have_peer;
	/* POP/IMAP-before-SMTP: the login being judged was a right password
	 * for a mailbox, of this user */
	bool mailbox_ok;
	char user[257];
	bool unverified; /* blocked() stopped the password's verification */
};

static enum sasl_verdict authorize(struct login_session *s, const char *authcid,
    const char *authzid);
static void logged_in(struct login_session *s, const struct login_user *u);
static struct tls_server *starttls_server(struct login_session *s);
static int admit(struct login_session *s);
static void admitted(void *ctx, uint64_t sid, bool ok,
    struct throttle_conn *tc);
static void judge(struct login_session *s, const char *user, bool ok);
static void judged(void *ctx, uint64_t sid, uint64_t delay_ms, bool refuse);
static void ended(struct login_session *s, bool bad);
static void keep_peer(struct gate_thr *gt, struct login_session *s);
static void vouch(struct login_session *s);
static bool blocked(struct login_session *s);
static void vouched(void *ctx, uint64_t sid, const char *user);

const struct login_hooks gate_login_hooks = {
	.admit = admit,
	.judge = judge,
	.ended = ended,
	.vouch = vouch,
	.blocked = blocked,
	.authorize = authorize,
	.logged_in = logged_in,
	.tls = starttls_server,
};

const struct login_proto *const gate_protos[GATE_PROTOS] = {
	[GATE_IMAP] = &imap_login_proto,
	[GATE_POP3] = &pop3_login_proto,
	[GATE_SMTP] = &smtp_login_proto,
};

const char *const gate_proto_names[GATE_PROTOS] = { "imap", "pop3",
	"submission" };

/* authcid's password was right and it asks to act as authzid. */
static enum sasl_verdict
authorize(struct login_session *s, const char *authcid, const char *authzid)
{
	const struct gate_listener *gl = login_session_ctx(s);
	struct conn *c = login_session_conn(s);
	char qm[AUTH_USER_MAX * 2], qt[AUTH_USER_MAX * 2];
	const char *why = NULL;
	enum sasl_verdict v;

	v = auth_service_authorize(gl->srv->auth, authcid, authzid,
	    conn_peer_addr(c, NULL), &why);
	log_info(login_session_sid(s), "gate.master",
	    "master=%s target=%s peer=%s result=%s",
	    log_quote(qm, sizeof(qm), authcid, (size_t)-1),
	    log_quote(qt, sizeof(qt), authzid, (size_t)-1), conn_peer(c), why);
	if (v != SASL_V_OK)
		metrics_add(loop_shard(conn_loop(c)), gl->srv->m.master_refused,
		    1);
	return v;
}

static void
logged_in(struct login_session *s, const struct login_user *u)
{
	gate_session_begin(s, u);
}

/* The listener's certificates on this worker (swapped on SIGHUP). */
static struct tls_server *
starttls_server(struct login_session *s)
{
	const struct gate_listener *gl = login_session_ctx(s);

	return listen_set_worker_tls(gl->srv->lset,
	    conn_loop(login_session_conn(s)), gl->index);
}

/* ---- the throttle ------------------------------------------------------ */

static void
keep_peer(struct gate_thr *gt, struct login_session *s)
{
	struct conn *c = login_session_conn(s);
	const struct sockaddr *sa;
	socklen_t len = 0;

	if (c != NULL && (sa = conn_peer_addr(c, &len)) != NULL &&
	    len <= sizeof(gt->peer)) {
		memcpy(&gt->peer, sa, len);
		gt->have_peer = true;
	}
}

static int
admit(struct login_session *s)
{
	const struct gate_listener *gl = login_session_ctx(s);
	struct gate_worker *w = loop_ctx(login_session_loop(s));
	struct gate_thr *gt;

	if (w == NULL || w->throttle == NULL)
		return LOGIN_ADMIT_OK;
	if ((gt = calloc(1, sizeof(*gt))) == NULL)
		return LOGIN_ADMIT_REFUSE;
	gt->w = w;
	keep_peer(gt, s);
	login_session_set_data(s, gt);
	throttle_admit(w->throttle, (enum throttle_service)gl->proto,
	    login_session_sid(s),
	    gt->have_peer ? (const struct sockaddr *)&gt->peer : NULL, admitted,
	    w);
	return LOGIN_ADMIT_PENDING;
}

/* The throttle's verdict, maybe after the client left. */
static void
admitted(void *ctx, uint64_t sid, bool ok, struct throttle_conn *tc)
{
	struct gate_worker *w = ctx;
	struct login_session *s = login_session_find(w->login, sid);
	struct gate_thr *gt = s ? login_session_data(s) : NULL;

	if (gt == NULL) {
		throttle_conn_end(&tc);
		return;
	}
	gt->tc = tc;
	login_session_admitted(s, ok);
}

static void
judge(struct login_session *s, const char *user, bool ok)
{
	const struct gate_listener *gl = login_session_ctx(s);
	struct gate_thr *gt = login_session_data(s);

	if (gt == NULL) {
		login_session_judged(s, 0, false);
		return;
	}
	/* XCLIENT may have named another client since the accept */
	keep_peer(gt, s);
	if (gt->unverified && !ok) {
		/* answered as blocked, not counted as one more failure */
		gt->unverified = false;
		throttle_login_unverified(gt->w->throttle,
		    (enum throttle_service)gl->proto, login_session_sid(s),
		    gt->have_peer ? (const struct sockaddr *)&gt->peer : NULL,
		    judged, gt->w);
		return;
	}
	gt->unverified = false;
	gt->mailbox_ok = ok && gl->proto != GATE_SMTP &&
	    throttle_before_smtp_on(gt->w->srv->throttle);
	if (gt->mailbox_ok)
		snprintf(gt->user, sizeof(gt->user), "%s", user);
	throttle_login(gt->w->throttle, (enum throttle_service)gl->proto,
	    login_session_sid(s),
	    gt->have_peer ? (const struct sockaddr *)&gt->peer : NULL, user, ok,
	    judged, gt->w);
}

static void
judged(void *ctx, uint64_t sid, uint64_t delay_ms, bool refuse)
{
	struct gate_worker *w = ctx;
	struct login_session *s = login_session_find(w->login, sid);
	struct gate_thr *gt = s ? login_session_data(s) : NULL;

	if (s == NULL)
		return;
	/* a mailbox login lets its address submit for a while */
	if (gt != NULL && gt->mailbox_ok && !refuse && gt->have_peer)
		throttle_mailbox_login(w->throttle,
		    (const struct sockaddr *)&gt->peer, gt->user);
	login_session_judged(s, delay_ms, refuse);
}

/* A blocked source's passwords are not worth hashing. */
static bool
blocked(struct login_session *s)
{
	struct gate_thr *gt = login_session_data(s);

	if (gt == NULL)
		return false;
	keep_peer(gt, s);
	gt->unverified = gt->have_peer &&
	    throttle_blocked_now(gt->w->throttle,
		(const struct sockaddr *)&gt->peer);
	return gt->unverified;
}

/* SMTP MAIL before AUTH: POP/IMAP-before-SMTP where it is on. */
static void
vouch(struct login_session *s)
{
	struct gate_thr *gt = login_session_data(s);

	if (gt == NULL || !throttle_before_smtp_on(gt->w->srv->throttle)) {
		login_session_vouched(s, NULL);
		return;
	}
	keep_peer(gt, s);
	throttle_before_smtp(gt->w->throttle, login_session_sid(s),
	    gt->have_peer ? (const struct sockaddr *)&gt->peer : NULL, vouched,
	    gt->w);
}

static void
vouched(void *ctx, uint64_t sid, const char *user)
{
	struct gate_worker *w = ctx;
	struct login_session *s = login_session_find(w->login, sid);

	if (s != NULL)
		login_session_vouched(s, user);
}

static void
ended(struct login_session *s, bool bad)
{
	const struct gate_listener *gl = login_session_ctx(s);
	struct gate_thr *gt = login_session_data(s);

	if (gt == NULL)
		return;
	login_session_set_data(s, NULL);
	if (bad && gt->have_peer)
		throttle_bad(gt->w->throttle, (enum throttle_service)gl->proto,
		    login_session_sid(s), (const struct sockaddr *)&gt->peer);
	gate_thr_end(&gt);
}

struct gate_thr *
gate_thr_take(struct login_session *s)
{
	struct gate_thr *gt = login_session_data(s);

	login_session_set_data(s, NULL);
	return gt;
}

void
gate_thr_end(struct gate_thr **gtp)
{
	struct gate_thr *gt = *gtp;

	*gtp = NULL;
	if (gt == NULL)
		return;
	throttle_conn_end(&gt->tc);
	free(gt);
}

/* ---- metrics --------------------------------------------------------- */

int
gate_metrics_init(struct gate_server *srv, struct metrics *m)
{
	static const char *const results[3] = { "ok", "temp", "refused" };
	static const double dur_buckets[] = { 0.01, 0.1, 1, 10, 60, 300, 1800,
		3600, 14400, 86400 };
	struct gate_metrics *x = &srv->m;
	char labels[128];
	int bad = 0;

	for (unsigned p = 0; p < GATE_PROTOS; p++) {
		const char *pn = gate_proto_names[p];

		if (login_metrics_init(m, gate_protos[p], &srv->login_m[p]) ==
		    -1)
			return -1;
		for (unsigned r = 0; r < 3; r++) {
			snprintf(labels, sizeof(labels),
			    "proto=\"%s\",result=\"%s\"", pn, results[r]);
			x->backend_login[p][r] = metrics_counter(m,
			    "backend_logins_total",
			    "Logins at a back end on a user's behalf, by "
			    "result.",
			    labels);
			bad |= x->backend_login[p][r] < 0;
		}
		snprintf(labels, sizeof(labels), "proto=\"%s\"", pn);
		x->no_backend[p] = metrics_counter(m, "route_failures_total",
		    "Logins with no back end to send the user to.", labels);
		x->sessions[p] = metrics_counter(m, "sessions_relayed_total",
		    "Logged-in sessions relayed to a back end.", labels);
		x->active[p] = metrics_gauge(m, "sessions_relayed",
		    "Logged-in sessions being relayed now.", labels);
		x->backend_lost[p] = metrics_counter(m, "backend_lost_total",
		    "Relayed sessions whose back end went away first.", labels);
		snprintf(labels, sizeof(labels),
		    "proto=\"%s\",direction=\"client_to_backend\"", pn);
		x->bytes[p][0] = metrics_counter(m, "session_bytes_total",
		    "Plaintext bytes relayed after login.", labels);
		snprintf(labels, sizeof(labels),
		    "proto=\"%s\",direction=\"backend_to_client\"", pn);
		x->bytes[p][1] = metrics_counter(m, "session_bytes_total",
		    "Plaintext bytes relayed after login.", labels);
		x->auth_http_refused[p] = metrics_counter(m,
		    "auth_http_route_refused_total",
		    "Logins whose HTTP auth hook named an address that is "
		    "no configured back end (refused: route.auth_http_any "
		    "is off).",
		    labels);
		bad |= x->auth_http_refused[p] < 0;
		bad |= x->no_backend[p] < 0 || x->sessions[p] < 0 ||
		    x->active[p] < 0 || x->backend_lost[p] < 0 ||
		    x->bytes[p][0] < 0 || x->bytes[p][1] < 0;
	}
	x->master_refused = metrics_counter(m, "master_refused_total",
	    "Master-user logins refused (authzid not allowed).", NULL);
	x->duration = metrics_histogram(m, "session_duration_seconds",
	    "Relayed session duration, login to end.", NULL, dur_buckets,
	    sizeof(dur_buckets) / sizeof(dur_buckets[0]));
	for (unsigned r = 0; r < 2; r++) {
		x->messages[r] = metrics_counter(m, "submission_messages_total",
		    "Messages submitted through relayed submission sessions, "
		    "by the store's final reply.",
		    r == 0 ? "result=\"accepted\"" : "result=\"refused\"");
		bad |= x->messages[r] < 0;
	}
	x->message_bytes = metrics_counter(m, "submission_message_bytes_total",
	    "Content bytes of the messages the store accepted (DATA as "
	    "sent, dot-stuffing included; BDAT chunks).",
	    NULL);
	bad |= x->message_bytes < 0;
	return bad || x->master_refused < 0 || x->duration < 0 ? -1 : 0;
}

/* ---- the back ends' TLS ------------------------------------------------ */

int
gate_backend_tls_build(struct gate_server *srv, const char **error_r)
{
	const struct proxy_config *cf = srv->cf;
	struct tls_client_conf tc = { .ca_file = cf->backend_login.ca_file,
		.verify = cf->backend_login.verify };
	bool any = false;

	for (unsigned i = 0; i < cf->route.nbackends; i++)
		any |= cf->route.backends[i].tls != ROUTE_TLS_NONE;
	if (!any)
		return 0;
	srv->backend_tls = tls_client_new(&tc, error_r);
	return srv->backend_tls ? 0 : -1;
}

void
gate_backend_tls_free(struct gate_server *srv)
{
	tls_client_unref(&srv->backend_tls);
}
