/*
 * login_starttls.c - one STARTTLS for every protocol (IMAP STARTTLS, POP3
 * STLS, SMTP STARTTLS): the protocol's answer goes out in the clear, then
 * the connection turns to TLS, and nothing the client sent after the
 * command before the handshake is ever read (CVE-2011-0411 class: such
 * bytes would otherwise be taken as commands sent inside TLS).
 *
 * Three places can hold such bytes, and all three are emptied: the
 * session's input (here), what the loop holds back for a paused
 * connection (conn_start_tls_server()), and whatever the protocol's own
 * parser has already taken (its starttls_reply(ok) starts it afresh).
 */
#include "core/listener_conf.h"
#include "core/loop.h"
#include "core/tls.h"
#include "login/login_private.h"

bool
login_can_starttls(struct login_session *s)
{
	const struct login_hooks *h = s->li->hooks;

	return !s->tls && s->c != NULL && s->li->set->listener->starttls &&
	    h->tls != NULL && h->tls(s) != NULL;
}

void
login_starttls(struct login_session *s)
{
	struct tls_server *ts;

	if (!login_can_starttls(s)) {
		s->li->proto->starttls_reply(s, false);
		return;
	}
	ts = s->li->hooks->tls(s);
	s->li->proto->starttls_reply(s, true);
	buf_free(&s->in);
	if (conn_start_tls_server(s->c, ts) == -1) {
		conn_abort(s->c, CR_TLS);
		return;
	}
	/* login_session.c's on_open says when the handshake is done; no
	 * command runs before (the loop delivers nothing until then) */
}
