/*
 * session.c - a front-end session after its user is in: the route, the
 * back-end login on the user's behalf, the client's answer, the hand-off
 * from the login core and the relay, both ways, until either side ends;
 * then one audit line.
 *
 * Order: logged_in() -> route_lookup() -> upstream_login_start() -> (on
 * UL_OK) login_session_handoff(), the protocol's success answer (IMAP with
 * the back end's CAPABILITY), relay. Any failure before the hand-off is
 * the protocol's temporary error through login_session_refuse(): the
 * client never sees a back end's address or words. The login session may
 * go away meanwhile (the client hung up); each step finds it again by id
 * and drops its work when it is gone.
 *
 * The relay is relay.c's: when one side's output queue passes the mark we
 * stop reading the other side until it drains, so a session costs at most
 * one output queue per direction whatever either side does; bytes are
 * never changed or held. To tell a back end that died from one that said
 * goodbye we keep only the last few bytes each way (IMAP's "* BYE", a
 * POP3 client's QUIT). Submission sessions also feed copies of both
 * directions to proto/smtp_meter.c, which counts the messages submitted,
 * their sizes and the store's verdicts (metrics and the audit line) and
 * knows a QUIT command from a "QUIT" line in a message.
 *
 * Never: touches a conn after its on_close, or answers a client twice.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/auth_service.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/tls.h"
#include "proto/smtp_meter.h"
#include "proxy/gate.h"
#include "proxy/route.h"
#include "proxy/upstream_login.h"

#define CTAIL 16  /* client bytes kept: "QUIT\r\n" */
#define BTAIL 160 /* back-end bytes kept: "* BYE ...\r\nA OK ...\r\n" */

/* What only the login at the back end needs: freed at the hand-off, so
 * an idle relayed session does not carry it. */
struct gs_login {
	char tag[LOGIN_TAG_MAX + 1];
	char host[256]; /* the user entry's host= ("" for none) */
	char helo[256]; /* SMTP: the client's EHLO name ("" for none) */
	struct sockaddr_storage client, local;
	const char *const
	    *id; /* IMAP: the client's ID pairs (login session's) */
	unsigned nid;
	bool have_client, have_local;
};

struct gate_session {
	struct gate_server *srv;
	const struct gate_listener *gl;
	struct gate_worker *w;
	struct loop *loop;
	uint64_t sid;
	enum gate_proto proto;
	struct gs_login *lp; /* until the hand-off */
	char *user;
	char mech[32], peer[64], alpn[16];
	/* OpenSSL's static names ("TLSv1.3", "TLS_AES_128_GCM_SHA256") */
	const char *version, *cipher;
	bool resumed; /* the TLS session was resumed (a ticket) */
	char *sni;    /* NULL for none */
	const struct route_backend *be;
	/* route.auth_http_any: the hook's address (allocated only then) */
	struct route_backend *any;
	struct route_req *rreq;
	struct upstream_login *ul;
	struct gate_thr *thr; /* the throttle's hold, from the hand-off */
	struct conn *cc, *bc; /* client, back end (after the hand-off) */
	uint64_t c2b, b2c, started, relayed;
	char end[48];
	bool lost; /* the back end went without a goodbye */
	char ctail[CTAIL], btail[BTAIL];
	size_t nctail, nbtail;
	struct smtp_meter *meter; /* submission, after the hand-off */
};

static void user_host(struct gate_session *gs);
static void route_done(void *ctx, const struct route_result *res);
static void auth_http_route(struct gate_session *gs, struct login_session *s,
    const char *hostport);
static void login_done(void *ctx, struct conn *backend,
    const struct ul_result *r);
static void start_relay(struct gate_session *gs, struct login_session *s,
    struct conn *backend, const struct ul_result *r);
static void refuse(struct gate_session *gs, struct login_session *s,
    const char *why);
static void gs_free(struct gate_session *gs);
static void answer(struct gate_session *gs, struct conn *c,
    const struct ul_result *r);
static void keep_tail(char *tail, size_t *n, size_t max, const char *p,
    size_t len);
static bool said_goodbye(const struct gate_session *gs);
static void set_end(struct gate_session *gs, const char *who,
    enum conn_reason why);

static void meter_server(struct gate_session *gs, const char *p, size_t n);
static void c_data(struct conn *c, const char *p, size_t n);
static void c_drain(struct conn *c);
static void c_eof(struct conn *c);
static void c_timer(struct conn *c);
static void c_close(struct conn *c, enum conn_reason why);
static void b_data(struct conn *c, const char *p, size_t n);
static void b_drain(struct conn *c);
static void b_eof(struct conn *c);
static void b_close(struct conn *c, enum conn_reason why);
static void forward(struct gate_session *gs, struct conn *from, struct conn *to,
    const char *p, size_t n);
static void session_end(struct gate_session *gs);
static void finish_side(struct conn *c);

static const struct conn_handler client_handler = {
	.on_data = c_data,
	.on_drain = c_drain,
	.on_eof = c_eof,
	.on_timer = c_timer,
	.on_close = c_close,
};

static const struct conn_handler backend_handler = {
	.on_data = b_data,
	.on_drain = b_drain,
	.on_eof = b_eof,
	.on_timer = c_timer,
	.on_close = b_close,
};

/* ---- before the hand-off --------------------------------------------- */

void
gate_session_begin(struct login_session *s, const struct login_user *u)
{
	const struct gate_listener *gl = login_session_ctx(s);
	struct conn *c = login_session_conn(s);
	struct gate_worker *w = loop_ctx(conn_loop(c));
	struct gate_session *gs = calloc(1, sizeof(*gs));
	struct tls_conn *t = conn_tls(c);
	const struct sockaddr *sa;
	socklen_t len = 0;
	struct route_query q;
	struct gs_login *lp;

	if (gs == NULL || (gs->lp = calloc(1, sizeof(*gs->lp))) == NULL ||
	    (gs->user = strdup(u->user)) == NULL) {
		gs_free(gs);
		login_session_refuse(s, LOGIN_FAIL_TEMP, "out of memory");
		return;
	}
	lp = gs->lp;
	gs->srv = gl->srv;
	gs->gl = gl;
	gs->w = w;
	gs->loop = conn_loop(c);
	gs->sid = login_session_sid(s);
	gs->proto = gl->proto;
	gs->started = conn_started(c);
	snprintf(gs->mech, sizeof(gs->mech), "%s", u->mech);
	snprintf(lp->tag, sizeof(lp->tag), "%s", u->tag);
	snprintf(gs->peer, sizeof(gs->peer), "%s", conn_peer(c));
	if (gl->proto == GATE_SMTP)
		snprintf(lp->helo, sizeof(lp->helo), "%s",
		    login_session_helo(s));
	if (t != NULL) {
		const char *sn = tls_conn_sni(t), *al = tls_conn_alpn(t);

		gs->version = tls_conn_version(t);
		gs->cipher = tls_conn_cipher(t);
		gs->resumed = tls_conn_resumed(t);
		/* a name that will not copy is left out of the log line */
		gs->sni = sn != NULL && sn[0] != '\0' ? strdup(sn) : NULL;
		snprintf(gs->alpn, sizeof(gs->alpn), "%s", al ? al : "");
	}
	if ((sa = conn_peer_addr(c, &len)) != NULL &&
	    len <= sizeof(lp->client)) {
		memcpy(&lp->client, sa, len);
		lp->have_client = true;
	}
	if ((sa = conn_local_addr(c, &len)) != NULL &&
	    len <= sizeof(lp->local)) {
		memcpy(&lp->local, sa, len);
		lp->have_local = true;
	}
	if (gl->proto == GATE_IMAP)
		lp->nid = login_session_client_id(s, &lp->id);
	/* the HTTP hook's route is always "server:port"; a user entry's
	 * host= is back-end names, which have no ':' (route.c) */
	if (login_session_auth_host(s) != NULL &&
	    strchr(login_session_auth_host(s), ':') != NULL) {
		auth_http_route(gs, s, login_session_auth_host(s));
		return;
	}
	user_host(gs);
	q = (struct route_query){ .user = gs->user,
		.host_field = lp->host[0] ? lp->host : NULL,
		.proto = (enum route_proto)gs->proto,
		.sid = gs->sid };
	route_lookup(w->route, &q, route_done, gs, &gs->rreq);
}

/* The user entry's host= (a route override naming back ends), where the
 * users' back end answers without blocking (the passwd-file); a network
 * back end's entry is not kept after the login, so it routes by Redis or
 * hashing. */
static void
user_host(struct gate_session *gs)
{
	struct auth_backend *b = auth_service_users(gs->srv->auth);
	struct auth_entry *e = NULL;
	const char *error = NULL;

	if (b == NULL || !b->ops->lookup_nonblocking)
		return;
	if (auth_lookup(b, gs->user, &e, &error) != AUTH_LOOKUP_FOUND)
		return;
	if (e->host != NULL && strlen(e->host) < sizeof(gs->lp->host))
		memcpy(gs->lp->host, e->host, strlen(e->host) + 1);
	auth_entry_unref(&e);
}

/* The HTTP auth hook answered Auth-Server/Auth-Port ("server:port"): the
 * configured back end with that address for the protocol serves, with its
 * TLS and health state. Another address is refused with the temporary
 * error unless route.auth_http_any allows it (then plain, no health
 * state): the hook must not send the master credentials anywhere it
 * likes. */
static void
auth_http_route(struct gate_session *gs, struct login_session *s,
    const char *hostport)
{
	enum route_proto p = (enum route_proto)gs->proto;
	struct route_result res = { .source = ROUTE_SRC_HOST };
	const struct route_backend *be;
	struct cfg_addr a;
	char q[300];

	if (cfg_parse_addr(hostport, &a) == -1)
		a.len = 0;
	be = router_find_addr(gs->srv->router, p, (struct sockaddr *)&a.ss,
	    a.len);
	if (be == NULL &&
	    (a.len == 0 || !gs->srv->cf->route.route.auth_http_any)) {
		metrics_add(loop_shard(gs->loop),
		    gs->srv->m.auth_http_refused[gs->proto], 1);
		log_warn(gs->sid, "gate.auth_http_route_refused",
		    "proto=%s server=%s why=\"%s\"",
		    gate_proto_names[gs->proto],
		    log_quote(q, sizeof(q), hostport, (size_t)-1),
		    a.len == 0 ? "not a numeric address:port" :
				 "no back end has this address");
		refuse(gs, s, "auth hook named an unknown back end");
		return;
	}
	if (be == NULL) {
		if ((gs->any = calloc(1, sizeof(*gs->any))) == NULL) {
			refuse(gs, s, "out of memory");
			return;
		}
		snprintf(gs->any->name, sizeof(gs->any->name),
		    "auth_http:%.50s", hostport);
		gs->any->index = UINT32_MAX;
		gs->any->tls = ROUTE_TLS_NONE;
		gs->any->addr[p].ss = a.ss;
		gs->any->addr[p].len = a.len;
		atomic_init(&gs->any->up[p], true);
		be = gs->any;
	}
	res.be = be;
	if (!route_backend_up(be, p)) {
		res.status = ROUTE_DOWN;
		res.why = "the auth hook's back end is down";
	} else {
		res.status = ROUTE_OK;
		res.addr = (const struct sockaddr *)&be->addr[p].ss;
		res.len = be->addr[p].len;
	}
	route_done(gs, &res);
}

/* The back end for the user is known (or not): log in there. */
static void
route_done(void *ctx, const struct route_result *res)
{
	struct gate_session *gs = ctx;
	struct login_session *s = login_session_find(gs->w->login, gs->sid);
	const struct proxy_config *cf = gs->srv->cf;
	const struct gs_login *lp = gs->lp;
	struct ul_params p;
	const char *error = NULL;

	gs->rreq = NULL;
	if (s == NULL) {
		gs_free(gs);
		return;
	}
	if (res->status != ROUTE_OK) {
		metrics_add(loop_shard(gs->loop),
		    gs->srv->m.no_backend[gs->proto], 1);
		log_warn(gs->sid, "gate.route_failed",
		    "proto=%s backend=%s why=\"%s\"",
		    gate_proto_names[gs->proto], res->be ? res->be->name : "-",
		    res->why ? res->why : "");
		refuse(gs, s,
		    res->status == ROUTE_DOWN ? "back end down" :
						"no back end");
		return;
	}
	gs->be = res->be;
	p = (struct ul_params){ .proto = (enum ul_proto)gs->proto,
		.user = gs->user,
		.master_user = cf->backend_login.master_user,
		.master_pass = cf->backend_login.master_password,
		.client = lp->have_client ?
		    (const struct sockaddr *)&lp->client :
		    NULL,
		.local = lp->have_local ? (const struct sockaddr *)&lp->local :
					  NULL,
		.tls = (enum ul_tls)gs->be->tls,
		.tls_ctx = gs->srv->backend_tls,
		.sni = gs->be->sni[0] ? gs->be->sni : NULL,
		.proxy_v2 = cf->backend_login.proxy_v2,
		.xclient = cf->backend_login.xclient,
		.helo = cf->backend_login.helo,
		.client_helo = lp->helo[0] ? lp->helo : NULL,
		/* the login session (and its ID) lives until the hand-off */
		.client_id = lp->nid ? lp->id : NULL,
		.client_id_n = lp->nid,
		.timeout_ms = cf->backend_login.timeout,
		.sid = gs->sid };
	gs->ul = upstream_login_start(gs->loop, res->addr, res->len, &p,
	    login_done, gs, &error);
	if (gs->ul == NULL) {
		log_error(gs->sid, "gate.backend_login_failed",
		    "backend=%s error=\"%s\"", gs->be->name,
		    error ? error : "?");
		refuse(gs, s, "back-end login did not start");
	}
}

/* The back end answered the login. */
static void
login_done(void *ctx, struct conn *backend, const struct ul_result *r)
{
	struct gate_session *gs = ctx;
	struct login_session *s = login_session_find(gs->w->login, gs->sid);
	unsigned st = r->status <= UL_REFUSED ? (unsigned)r->status : UL_TEMP;

	gs->ul = NULL;
	metrics_add(loop_shard(gs->loop),
	    gs->srv->m.backend_login[gs->proto][st], 1);
	if (r->status == UL_TEMP && gs->be != gs->any)
		route_report_connect(gs->w->route, gs->be,
		    (enum route_proto)gs->proto, false, 0);
	if (r->status != UL_OK) {
		log_warn(gs->sid, "gate.backend_login",
		    "proto=%s backend=%s result=%s reason=\"%s\"",
		    gate_proto_names[gs->proto], gs->be->name,
		    ul_status_name(r->status), r->reason);
		if (s == NULL)
			gs_free(gs);
		else
			refuse(gs, s, r->reason);
		return;
	}
	/* ours from here: closing it ends in b_close */
	conn_set_handler(backend, &backend_handler, gs);
	gs->bc = backend;
	if (s == NULL) {
		set_end(gs, "client_gone", CR_NONE);
		conn_close(backend);
		return;
	}
	start_relay(gs, s, backend, r);
}

/* The user cannot be served now: the protocol's temporary error. */
static void
refuse(struct gate_session *gs, struct login_session *s, const char *why)
{
	login_session_refuse(s, LOGIN_FAIL_TEMP, why);
	gs_free(gs);
}

static void
gs_free(struct gate_session *gs)
{
	if (gs == NULL)
		return;
	route_cancel(&gs->rreq);
	gate_thr_end(&gs->thr);
	if (gs->ul != NULL)
		upstream_login_cancel(gs->ul);
	free(gs->lp);
	free(gs->user);
	free(gs->sni);
	free(gs->meter);
	free(gs->any);
	free(gs);
}

/* ---- the hand-off ----------------------------------------------------- */

static void
start_relay(struct gate_session *gs, struct login_session *s,
    struct conn *backend, const struct ul_result *r)
{
	struct metrics_shard *ms = loop_shard(gs->loop);
	uint64_t idle = gs->srv->cf->limits.idle_timeout;
	struct buf rest = { 0 };
	struct conn *c;

	gs->thr = gate_thr_take(s);
	if ((c = login_session_handoff(s, &rest)) == NULL) {
		buf_free(&rest);
		set_end(gs, "client_gone", CR_NONE);
		conn_close(backend);
		return;
	}
	conn_set_handler(c, &client_handler, gs);
	gs->cc = c;
	/* without memory for it a submission session is relayed uncounted */
	if (gs->proto == GATE_SMTP &&
	    (gs->meter = malloc(sizeof(*gs->meter))) != NULL)
		smtp_meter_init(gs->meter);
	/* a pause stops each side within one receive buffer: what a session
	 * holds is its output queues, whatever either side does */
	conn_bounded_reads(c);
	conn_bounded_reads(backend);
	gs->relayed = loop_now(gs->loop);
	metrics_add(ms, gs->srv->m.sessions[gs->proto], 1);
	metrics_gauge_add(ms, gs->srv->m.active[gs->proto], 1);
	answer(gs, c, r);
	free(gs->lp);
	gs->lp = NULL;
	/* written straight: nothing here may close a side under us (the
	 * loop tears a conn down inside conn_close) */
	if (r->rest_len > 0 && conn_write(c, r->rest, r->rest_len) == 0) {
		gs->b2c += r->rest_len;
		meter_server(gs, r->rest, r->rest_len);
	}
	if (buf_used(&rest) > 0 &&
	    conn_write(backend, buf_head(&rest), buf_used(&rest)) == 0) {
		gs->c2b += buf_used(&rest);
		if (gs->meter != NULL)
			smtp_meter_client(gs->meter, buf_head(&rest),
			    buf_used(&rest));
	}
	buf_free(&rest);
	if (gs->cc != NULL)
		conn_set_timer(gs->cc, idle);
	if (gs->bc != NULL)
		conn_set_timer(gs->bc, idle);
	log_info(gs->sid, "gate.relay", "proto=%s backend=%s",
	    gate_proto_names[gs->proto], gs->be->name);
}

/* The login command's success answer, worded by the protocol. */
static void
answer(struct gate_session *gs, struct conn *c, const struct ul_result *r)
{
	char line[UL_CAPABILITY_MAX + LOGIN_TAG_MAX + 64];
	int n;

	switch (gs->proto) {
	case GATE_IMAP:
		if (r->capability[0] != '\0')
			n = snprintf(line, sizeof(line),
			    "%s OK [CAPABILITY %s] Logged in\r\n", gs->lp->tag,
			    r->capability);
		else
			n = snprintf(line, sizeof(line), "%s OK Logged in\r\n",
			    gs->lp->tag);
		break;
	case GATE_POP3:
		n = snprintf(line, sizeof(line), "+OK Logged in.\r\n");
		break;
	default:
		/* POP/IMAP-before-SMTP: no AUTH to answer; the client's MAIL
		 * goes to the back end, whose answer is the client's */
		if (strcmp(gs->mech, "BEFORE-SMTP") == 0)
			return;
		n = snprintf(line, sizeof(line),
		    "235 2.7.0 Authentication successful\r\n");
		break;
	}
	if (n > 0 && (size_t)n < sizeof(line))
		conn_write(c, line, (size_t)n);
}

/* ---- the relay -------------------------------------------------------- */

static void
keep_tail(char *tail, size_t *n, size_t max, const char *p, size_t len)
{
	if (len >= max) {
		memcpy(tail, p + len - max, max);
		*n = max;
		return;
	}
	if (*n + len > max) {
		size_t drop = *n + len - max;

		memmove(tail, tail + drop, *n - drop);
		*n -= drop;
	}
	memcpy(tail + *n, p, len);
	*n += len;
}

/* The back end closed after a goodbye: IMAP's BYE (LOGOUT, autologout),
 * or the client's QUIT (POP3, SMTP). */
static bool
said_goodbye(const struct gate_session *gs)
{
	if (gs->proto == GATE_IMAP) {
		for (size_t i = 0; i + 5 <= gs->nbtail; i++)
			if (memcmp(gs->btail + i, "* BYE", 5) == 0)
				return true;
		return false;
	}
	if (gs->meter != NULL)
		return gs->meter->quit;
	size_t n = gs->nctail;

	while (n > 0 && (gs->ctail[n - 1] == '\n' || gs->ctail[n - 1] == '\r'))
		n--;
	return n >= 4 && strncasecmp(gs->ctail + n - 4, "QUIT", 4) == 0 &&
	    (n == 4 || gs->ctail[n - 5] == '\n');
}

static void
set_end(struct gate_session *gs, const char *who, enum conn_reason why)
{
	if (gs->end[0] != '\0')
		return;
	if (why == CR_NONE)
		snprintf(gs->end, sizeof(gs->end), "%s", who);
	else
		snprintf(gs->end, sizeof(gs->end), "%s_%s", who,
		    conn_reason_name(why));
}

static void
forward(struct gate_session *gs, struct conn *from, struct conn *to,
    const char *p, size_t n)
{
	uint64_t idle = gs->srv->cf->limits.idle_timeout;

	if (conn_forward(from, to, p, n) == -1)
		return;
	conn_set_timer(gs->cc, idle);
	conn_set_timer(gs->bc, idle);
}

static void
c_data(struct conn *c, const char *p, size_t n)
{
	struct gate_session *gs = conn_ctx(c);

	gs->c2b += n;
	metrics_add(loop_shard(gs->loop), gs->srv->m.bytes[gs->proto][0], n);
	if (gs->meter != NULL)
		smtp_meter_client(gs->meter, p, n);
	else if (gs->proto != GATE_IMAP)
		keep_tail(gs->ctail, &gs->nctail, CTAIL, p, n);
	forward(gs, c, gs->bc, p, n);
}

/* Back-end bytes of a submission session: the verdicts on messages. */
static void
meter_server(struct gate_session *gs, const char *p, size_t n)
{
	struct smtp_meter *m = gs->meter;
	struct metrics_shard *ms = loop_shard(gs->loop);
	uint64_t acc, ref, bytes;

	if (m == NULL)
		return;
	acc = m->accepted;
	ref = m->refused;
	bytes = m->accepted_bytes;
	smtp_meter_server(m, p, n);
	if (m->accepted != acc)
		metrics_add(ms, gs->srv->m.messages[0], m->accepted - acc);
	if (m->refused != ref)
		metrics_add(ms, gs->srv->m.messages[1], m->refused - ref);
	if (m->accepted_bytes != bytes)
		metrics_add(ms, gs->srv->m.message_bytes,
		    m->accepted_bytes - bytes);
}

static void
b_data(struct conn *c, const char *p, size_t n)
{
	struct gate_session *gs = conn_ctx(c);

	gs->b2c += n;
	metrics_add(loop_shard(gs->loop), gs->srv->m.bytes[gs->proto][1], n);
	if (gs->proto == GATE_IMAP)
		keep_tail(gs->btail, &gs->nbtail, BTAIL, p, n);
	meter_server(gs, p, n);
	forward(gs, c, gs->cc, p, n);
}

static void
c_drain(struct conn *c)
{
	struct gate_session *gs = conn_ctx(c);

	if (gs->bc != NULL)
		conn_resume(gs->bc);
}

static void
b_drain(struct conn *c)
{
	struct gate_session *gs = conn_ctx(c);

	if (gs->cc != NULL)
		conn_resume(gs->cc);
}

static void
c_eof(struct conn *c)
{
	struct gate_session *gs = conn_ctx(c);

	set_end(gs, "client_eof", CR_NONE);
	conn_close(c);
}

static void
b_eof(struct conn *c)
{
	struct gate_session *gs = conn_ctx(c);

	if (gs->cc != NULL && !said_goodbye(gs))
		gs->lost = true;
	set_end(gs, gs->lost ? "backend_lost" : "logout", CR_NONE);
	conn_close(c);
}

/* Idle on either side: end both. */
static void
c_timer(struct conn *c)
{
	struct gate_session *gs = conn_ctx(c);

	set_end(gs, "idle", CR_NONE);
	conn_abort(c, CR_TIMEOUT);
}

static void
c_close(struct conn *c, enum conn_reason why)
{
	struct gate_session *gs = conn_ctx(c);

	(void)c;
	gs->cc = NULL;
	set_end(gs, "client", why);
	if (gs->bc != NULL) {
		finish_side(gs->bc);
		return;
	}
	session_end(gs);
}

/* The back end is gone: a client still there hears the protocol's
 * goodbye unless the back end said its own. */
static void
b_close(struct conn *c, enum conn_reason why)
{
	static const char *const bye[GATE_PROTOS] = {
		[GATE_IMAP] = "* BYE [UNAVAILABLE] Connection to the mail "
			      "store lost\r\n",
		[GATE_POP3] = "-ERR [SYS/TEMP] Connection to the mail store "
			      "lost\r\n",
		[GATE_SMTP] = "421 4.4.2 Connection to the mail store lost\r\n",
	};
	struct gate_session *gs = conn_ctx(c);

	(void)c;
	gs->bc = NULL;
	if (why != CR_NONE && gs->cc != NULL && gs->end[0] == '\0')
		gs->lost = true;
	set_end(gs, "backend", why);
	if (gs->cc == NULL) {
		session_end(gs);
		return;
	}
	if (gs->lost) {
		metrics_add(loop_shard(gs->loop),
		    gs->srv->m.backend_lost[gs->proto], 1);
		if (!conn_closing(gs->cc))
			conn_write(gs->cc, bye[gs->proto],
			    strlen(bye[gs->proto]));
	}
	finish_side(gs->cc);
}

/* The other side is gone: flush what this one has queued and close, or
 * cut it now if it does not read (a full queue is all it would keep). */
static void
finish_side(struct conn *c)
{
	if (conn_out_full(c))
		conn_abort(c, CR_OVERFLOW);
	else
		conn_close(c);
}

/* Both sides are gone: account, the audit line, free. */
static void
session_end(struct gate_session *gs)
{
	struct metrics_shard *ms = loop_shard(gs->loop);
	uint64_t now = loop_now(gs->loop);
	char quser[600], sub[128] = "";

	if (gs->relayed != 0) {
		metrics_gauge_add(ms, gs->srv->m.active[gs->proto], -1);
		metrics_observe(ms, gs->srv->m.duration,
		    (double)(now - gs->relayed) / 1000.0);
	}
	if (gs->meter != NULL)
		snprintf(sub, sizeof(sub),
		    " messages=%llu messages_refused=%llu message_bytes=%llu",
		    (unsigned long long)gs->meter->accepted,
		    (unsigned long long)gs->meter->refused,
		    (unsigned long long)gs->meter->accepted_bytes);
	log_info(gs->sid, "gate.session",
	    "proto=%s listener=%s client=%s tls=%s cipher=%s sni=%s alpn=%s "
	    "resumed=%s mech=%s user=%s backend=%s client_to_backend=%llu "
	    "backend_to_client=%llu%s duration=%.3f end=%s",
	    gate_proto_names[gs->proto], gs->gl->conf->name, gs->peer,
	    gs->version ? gs->version : "none", gs->cipher ? gs->cipher : "-",
	    gs->sni ? gs->sni : "-", gs->alpn[0] ? gs->alpn : "-",
	    !gs->version ? "-" : (gs->resumed ? "yes" : "no"), gs->mech,
	    log_quote(quser, sizeof(quser), gs->user, (size_t)-1),
	    gs->be ? gs->be->name : "-", (unsigned long long)gs->c2b,
	    (unsigned long long)gs->b2c, sub,
	    (double)(now - gs->started) / 1000.0, gs->end[0] ? gs->end : "?");
	gs_free(gs);
}
