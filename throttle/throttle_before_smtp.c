/*
 * throttle_before_smtp.c - POP/IMAP-before-SMTP (legacy, off unless
 * throttle.before_smtp): a mailbox login remembers its address and user
 * for a while, locally and in Redis ("pbs:<address>"), and a submission
 * client from that address that sends MAIL without AUTH is logged in as
 * that user (proxy/gate_login.c's vouch hook, login_vouch()).
 *
 * Must never: vouch for an address nobody logged in from within
 * before_smtp, or for an allow-listed one on that ground alone.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/loop.h"
#include "throttle/throttle_private.h"

bool
throttle_before_smtp_on(const struct throttle *t)
{
	return t->cf->before_smtp > 0;
}

void
throttle_mailbox_login(struct throttle_worker *w, const struct sockaddr *sa,
    const char *user)
{
	struct throttle *t = w->t;
	char key[THR_KEY_MAX], u[THR_USER_MAX + 1], px[24];
	struct thr_source src;
	struct thr_req *q;

	if (t->cf->before_smtp == 0 || user[0] == '\0' ||
	    thr_source_of(t->cf, sa, &src) == -1)
		return;
	snprintf(u, sizeof(u), "%s", user);
	thr_key(key, sizeof(key), "", "pbs", -1, src.scope[0]);
	pthread_mutex_lock(&t->mu);
	thr_local_set_str(t->local, key, u, t->cf->before_smtp,
	    loop_now(w->loop));
	pthread_mutex_unlock(&t->mu);
	if (w->redis == NULL ||
	    (q = thr_req_new(w, RQ_FIRE, THROTTLE_SUBMISSION, 0, &src)) == NULL)
		return;
	thr_req_key(q, "pbs", -1, src.scope[0]);
	snprintf(px, sizeof(px), "%llu",
	    (unsigned long long)t->cf->before_smtp);
	if (thr_req_plain(q, 5,
		(const char *[]){ "SET", q->keys[0], u, "PX", px }) == -1)
		thr_req_free(q);
}

void
throttle_before_smtp(struct throttle_worker *w, uint64_t sid,
    const struct sockaddr *sa, throttle_vouch_cb *cb, void *ctx)
{
	struct throttle *t = w->t;
	char key[THR_KEY_MAX], u[THR_USER_MAX + 1] = "";
	struct thr_source src;
	const char *v;
	struct thr_req *q;

	if (t->cf->before_smtp == 0 || thr_source_of(t->cf, sa, &src) == -1) {
		cb(ctx, sid, NULL);
		return;
	}
	thr_key(key, sizeof(key), "", "pbs", -1, src.scope[0]);
	pthread_mutex_lock(&t->mu);
	if ((v = thr_local_get_str(t->local, key, loop_now(w->loop))) != NULL)
		snprintf(u, sizeof(u), "%s", v);
	pthread_mutex_unlock(&t->mu);
	if (w->redis == NULL ||
	    (q = thr_req_new(w, RQ_VOUCH, THROTTLE_SUBMISSION, sid, &src)) ==
		NULL) {
		cb(ctx, sid, u[0] ? u : NULL);
		return;
	}
	memcpy(q->user, u, sizeof(u));
	q->vcb = cb;
	q->ctx = ctx;
	thr_req_key(q, "pbs", -1, src.scope[0]);
	if (thr_req_plain(q, 2, (const char *[]){ "GET", q->keys[0] }) == 0)
		return;
	thr_vouch_answer(q, NULL);
	thr_req_free(q);
}

/* Redis's answer wins; without one, the local. */
void
thr_vouch_answer(struct thr_req *q, const struct redisReply *r)
{
	char u[THR_USER_MAX + 1];

	if (r != NULL && r->type == REDIS_REPLY_STRING && r->len > 0 &&
	    r->len <= THR_USER_MAX) {
		memcpy(u, r->str, r->len);
		u[r->len] = '\0';
		q->vcb(q->ctx, q->sid, u);
		return;
	}
	if (r != NULL && r->type == REDIS_REPLY_NIL) {
		q->vcb(q->ctx, q->sid, NULL);
		return;
	}
	q->vcb(q->ctx, q->sid, q->user[0] ? q->user : NULL);
}
