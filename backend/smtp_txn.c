/*
 * smtp_txn.c - the ESMTP/LMTP transaction core (see smtp_txn.h): command
 * lines, the transaction's state machine, the DATA body streamed to a tmp
 * file on the store pool, limits and replies; the protocol's decisions
 * come from its hooks.
 *
 * Input discipline: bytes are appended to t->in and taken one command at
 * a time by process(). While a hook's decision or a pool job is out
 * (t->pending, t->job_out) nothing more is taken, so pipelined commands
 * are answered in order; input piling up past IN_HIGH pauses the
 * connection, and so does output the client does not read.
 *
 * The body: the DATA reader's output is gathered into a CHUNK_BYTES
 * buffer; each full buffer goes to a pool job (deliver_msg_write()) while
 * the other fills, and reading waits while both are in use. The tmp file
 * is created by a pool job before the 354.
 *
 * Lifetime: the connection may go at any time (on_close: t->c NULL), but
 * t stays until no hook decision and no pool job is out; then `closed`
 * runs and t is freed (maybe_free()).
 *
 * Must never: take the next command before the current one is answered,
 * hold more than two chunks of a message, touch the tmp file on the loop
 * thread (except closing it when the pool is gone), or free t while a job
 * or hook holds it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/deliver.h"
#include "backend/smtp_txn.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/pool.h"

#define CHUNK_BYTES (256 * 1024)
#define CHUNK_SLACK 16	    /* the reader may hand out 2 for 1 byte */
#define IN_HIGH (64 * 1024) /* buffered input that pauses reading */
#define REPLY_TEXT_MAX 400
#define DEF_LINE_MAX 512
#define DEF_RCPT_MAX 100
#define DEF_BAD_MAX 10
#define DEF_IDLE_MS (5 * 60 * 1000)

struct smtp_txn {
	struct conn *c; /* NULL once the connection has gone */
	const struct smtp_txn_conf *conf;
	const struct smtp_txn_hooks *hooks;
	void *ctx;
	uint64_t sid;
	enum smtp_txn_state state;
	enum smtp_txn_end end;
	bool end_set;

	struct buf in; /* input not taken yet */
	char *line;    /* the command being handled (line_max + 1) */
	uint64_t line_max;
	bool skipping;	    /* dropping the rest of an overlong line */
	uint64_t bdat_skip; /* bytes of a refused BDAT chunk to drop */
	bool pending;	    /* a hook's smtp_txn_done() is awaited */
	enum smtp_verb pending_verb;
	bool replied;	 /* the pending hook replied */
	bool in_process; /* process() is on the stack */
	bool again;	 /* done() ran inside process() */
	bool paused;
	bool closing; /* nothing more is taken: QUIT, 421 */
	bool eof;     /* the client shut its side: answer, then close */

	unsigned bad, rcpts;
	uint64_t messages;
	unsigned cmd_flags; /* enum smtp_cmd_flags of the transaction */
	char helo[SMTP_DOMAIN_MAX + 3];
	char from[SMTP_PATH_MAX + 1];
	struct smtp_cmd cmd;
	struct smtp_cmd_conf cmd_conf;

	/* DATA */
	struct smtp_data data;
	struct deliver_msg *msg;
	char *fill, *spare; /* CHUNK_BYTES + CHUNK_SLACK each */
	size_t fill_len;
	bool job_out;	/* an open or write job holds msg */
	bool data_done; /* the reader saw the end */
	int data_err;	/* the tmp file failed: errno */
	/* BDAT: the body comes in chunks (bdat), this one's bytes still to
	 * come (bdat_left), whether it is the last; the file is being made
	 * for the first one (bdat_opening) */
	bool bdat, bdat_last, bdat_opening;
	bool binary; /* MAIL BODY=BINARYMIME: BDAT only */
	uint64_t bdat_left;
};

enum job_kind { JOB_OPEN, JOB_WRITE, JOB_FREE };

struct txn_job {
	struct pool_job base;
	enum job_kind kind;
	struct smtp_txn *t;
	struct deliver_msg *msg;
	const char *dir;
	char *buf;
	size_t len;
	int err;
};

static void on_data(struct conn *c, const char *p, size_t n);
static void on_drain(struct conn *c);
static void on_eof(struct conn *c);
static void on_timer(struct conn *c);
static void on_close(struct conn *c, enum conn_reason why);

static const struct conn_handler txn_handler = {
	.on_data = on_data,
	.on_drain = on_drain,
	.on_eof = on_eof,
	.on_timer = on_timer,
	.on_close = on_close,
};

static void process(struct smtp_txn *t);
static bool take_line(struct smtp_txn *t);
static void handle_line(struct smtp_txn *t, const char *line, size_t len);
static void cmd_hello(struct smtp_txn *t);
static void cmd_mail(struct smtp_txn *t);
static void cmd_rcpt(struct smtp_txn *t);
static void cmd_data(struct smtp_txn *t);
static void cmd_bdat(struct smtp_txn *t);
static bool bdat_step(struct smtp_txn *t, size_t room);
static bool alloc_chunks(struct smtp_txn *t);
static bool data_step(struct smtp_txn *t);
static void data_finish(struct smtp_txn *t);
static void end_reply(struct smtp_txn *t, const struct smtp_reply *r);
static void txn_reset(struct smtp_txn *t);
static void bad_command(struct smtp_txn *t, enum smtp_txn_refusal why);
static void refused(struct smtp_txn *t, enum smtp_txn_refusal why);
static void finish(struct smtp_txn *t, enum smtp_txn_end why);
static int submit(struct smtp_txn *t, enum job_kind kind, char *buf,
    size_t len);
static void job_run(struct pool_job *pj);
static void job_done(struct pool_job *pj);
static void drop_msg(struct smtp_txn *t);
static void maybe_free(struct smtp_txn *t);
static void reply_raw(struct smtp_txn *t, const char *s, size_t n);

static const struct smtp_reply R_SEQ_HELLO = { 503, "5.5.1",
	"Say hello first" };
static const struct smtp_reply R_SEQ_NESTED = { 503, "5.5.1",
	"Nested MAIL command" };
static const struct smtp_reply R_SEQ_MAIL = { 503, "5.5.1",
	"Need MAIL before RCPT" };
static const struct smtp_reply R_SEQ_RCPT = { 503, "5.5.1",
	"No valid recipients" };
static const struct smtp_reply R_SEQ_BDAT = { 503, "5.5.1",
	"DATA not allowed here: use BDAT" };
static const struct smtp_reply R_LINE = { 500, "5.5.2", "Line too long" };
static const struct smtp_reply R_BARE_LF = { 500, "5.5.2",
	"Command line must end with CRLF" };
static const struct smtp_reply R_RCPTS = { 452, "4.5.3",
	"Too many recipients" };
static const struct smtp_reply R_SIZE = { 552, "5.3.4",
	"Message size exceeds fixed limit" };
static const struct smtp_reply R_NUL = { 550, "5.6.0",
	"NUL bytes are not allowed" };
static const struct smtp_reply R_FULL = { 452, "4.3.1",
	"Insufficient system storage" };
static const struct smtp_reply R_LOCAL = { 451, "4.3.0",
	"Local error in processing" };
static const struct smtp_reply R_UNKNOWN = { 502, "5.5.1",
	"Command not implemented" };
static const struct smtp_reply R_WRONG_HELLO = { 500, "5.5.1",
	"Wrong greeting for this protocol" };

/* ---- replies ------------------------------------------------------- */

static void
reply_raw(struct smtp_txn *t, const char *s, size_t n)
{
	if (t->c == NULL || conn_closing(t->c))
		return;
	if (conn_write(t->c, s, n) == -1)
		finish(t, SMTP_END_ERROR);
}

void
smtp_txn_reply(struct smtp_txn *t, unsigned code, const char *enh,
    const char *fmt, ...)
{
	char line[REPLY_TEXT_MAX + 32];
	int n;
	va_list ap;

	if (t->pending)
		t->replied = true;
	if (t->conf->enhanced && enh != NULL)
		n = snprintf(line, sizeof(line), "%03u %s ", code, enh);
	else
		n = snprintf(line, sizeof(line), "%03u ", code);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, REPLY_TEXT_MAX, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	for (int i = 0; i < n; i++)
		if (line[i] == '\r' || line[i] == '\n')
			line[i] = ' ';
	memcpy(line + n, "\r\n", 2);
	reply_raw(t, line, (size_t)n + 2);
}

void
smtp_txn_reply_static(struct smtp_txn *t, const struct smtp_reply *r)
{
	smtp_txn_reply(t, r->code, r->enh, "%s", r->text);
}

/* After DATA: once (SMTP) or once per accepted recipient (LMTP). */
static void
end_reply(struct smtp_txn *t, const struct smtp_reply *r)
{
	unsigned n = t->conf->mode == SMTP_TXN_LMTP ? t->rcpts : 1;

	for (unsigned i = 0; i < n; i++)
		smtp_txn_reply_static(t, r);
}

/* ---- life ---------------------------------------------------------- */

struct smtp_txn *
smtp_txn_start(struct conn *c, const struct smtp_txn_conf *conf,
    const struct smtp_txn_hooks *hooks, void *ctx, enum smtp_txn_state state,
    const char *greeting, const struct buf *rest)
{
	struct smtp_txn *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->line_max = conf->line_max ? conf->line_max : DEF_LINE_MAX;
	if ((t->line = malloc(t->line_max + 1)) == NULL) {
		free(t);
		return NULL;
	}
	if (rest != NULL && buf_used(rest) > 0 &&
	    buf_append(&t->in, buf_head(rest), buf_used(rest)) == -1) {
		free(t->line);
		free(t);
		return NULL;
	}
	t->c = c;
	t->conf = conf;
	t->hooks = hooks;
	t->ctx = ctx;
	t->sid = conn_sid(c);
	t->state = state == SMTP_TXN_READY ? SMTP_TXN_READY : SMTP_TXN_HELLO;
	t->cmd_conf.ext = conf->ext;
	conn_set_handler(c, &txn_handler, t);
	if (greeting != NULL)
		reply_raw(t, greeting, strlen(greeting));
	conn_set_timer(c,
	    conf->idle_timeout ? conf->idle_timeout : DEF_IDLE_MS);
	process(t);
	return t;
}

/* The connection is to end: say nothing more, close after the output. */
static void
finish(struct smtp_txn *t, enum smtp_txn_end why)
{
	if (!t->end_set) {
		t->end = why;
		t->end_set = true;
	}
	t->closing = true;
	if (t->c != NULL && !conn_closing(t->c))
		conn_close(t->c);
}

void
smtp_txn_close(struct smtp_txn *t)
{
	finish(t, SMTP_END_ERROR);
}

/* Free t once nothing holds it any more. */
static void
maybe_free(struct smtp_txn *t)
{
	if (t->c != NULL || t->pending || t->job_out || t->in_process)
		return;
	if (t->state >= SMTP_TXN_MAIL && t->state != SMTP_TXN_CLOSED &&
	    t->hooks->reset != NULL)
		t->hooks->reset(t);
	t->state = SMTP_TXN_CLOSED;
	drop_msg(t);
	if (t->hooks->closed != NULL)
		t->hooks->closed(t, t->end);
	buf_free(&t->in);
	free(t->fill);
	free(t->spare);
	free(t->line);
	free(t);
}

static void
on_close(struct conn *c, enum conn_reason why)
{
	struct smtp_txn *t = conn_ctx(c);

	if (!t->end_set) {
		t->end = why == CR_DRAIN ? SMTP_END_DRAIN :
		    why == CR_NOMEM	 ? SMTP_END_ERROR :
					   SMTP_END_GONE;
		t->end_set = true;
	}
	t->c = NULL;
	t->closing = true;
	maybe_free(t);
}

static void
on_eof(struct conn *c)
{
	struct smtp_txn *t = conn_ctx(c);

	t->eof = true;
	process(t);
}

static void
on_timer(struct conn *c)
{
	struct smtp_txn *t = conn_ctx(c);
	uint64_t ms = t->conf->idle_timeout ? t->conf->idle_timeout :
					      DEF_IDLE_MS;

	if (t->pending || t->job_out) { /* our turn, not the client's */
		conn_set_timer(c, ms);
		return;
	}
	smtp_txn_reply(t, 421, "4.4.2", "%s Idle timeout, closing",
	    t->conf->hostname);
	finish(t, SMTP_END_IDLE);
}

static void
on_drain(struct conn *c)
{
	process(conn_ctx(c));
}

static void
on_data(struct conn *c, const char *p, size_t n)
{
	struct smtp_txn *t = conn_ctx(c);

	if (t->closing)
		return;
	if (buf_append(&t->in, p, n) == -1) {
		finish(t, SMTP_END_ERROR);
		return;
	}
	conn_set_timer(c,
	    t->conf->idle_timeout ? t->conf->idle_timeout : DEF_IDLE_MS);
	process(t);
}

/* ---- the input loop -------------------------------------------------- */

/* Take commands (or body bytes) while nothing is out. */
static void
process(struct smtp_txn *t)
{
	if (t->in_process) {
		t->again = true;
		return;
	}
	t->in_process = true;
	do {
		t->again = false;
		while (t->c != NULL && !t->closing && !t->pending &&
		    !(t->job_out && t->state != SMTP_TXN_DATA) &&
		    !conn_out_full(t->c)) {
			bool more;

			if (t->state == SMTP_TXN_DATA)
				more = data_step(t);
			else if (t->state == SMTP_TXN_END)
				more = false;
			else
				more = take_line(t);
			if (!more)
				break;
		}
	} while (t->again);
	t->in_process = false;
	if (t->c == NULL) {
		maybe_free(t);
		return;
	}
	/* What the client sent before its FIN is answered, then the end. */
	if (t->eof && !t->closing && !t->pending && !t->job_out) {
		finish(t, SMTP_END_GONE);
		return;
	}
	/* Waiting on ourselves with a backlog, or on the client's reading:
	 * stop reading until that ends. */
	if (!t->closing &&
	    (conn_out_full(t->c) ||
		((t->pending || t->job_out || t->state == SMTP_TXN_END) &&
		    buf_used(&t->in) >= IN_HIGH))) {
		if (!t->paused)
			conn_pause(t->c);
		t->paused = true;
	} else if (t->paused) {
		t->paused = false;
		conn_resume(t->c);
	}
	buf_release(&t->in);
}

/* One command line from t->in, if whole. false: wait for more input. */
static bool
take_line(struct smtp_txn *t)
{
	const char *p = buf_head(&t->in);
	size_t n = buf_used(&t->in), len;
	const char *lf;

	if (t->bdat_skip > 0) {
		size_t k = n < t->bdat_skip ? n : (size_t)t->bdat_skip;

		buf_consume(&t->in, k);
		t->bdat_skip -= k;
		return t->bdat_skip == 0 && k > 0;
	}
	if (n == 0)
		return false;
	lf = memchr(p, '\n', n);
	if (t->skipping) {
		buf_consume(&t->in, lf ? (size_t)(lf - p) + 1 : n);
		if (lf != NULL)
			t->skipping = false;
		return lf != NULL;
	}
	if (lf == NULL) {
		if (n >= t->line_max) { /* no end in sight */
			buf_consume(&t->in, n);
			t->skipping = true;
			smtp_txn_reply_static(t, &R_LINE);
			bad_command(t, SMTP_REF_LINE);
			return true;
		}
		return false;
	}
	len = (size_t)(lf - p) + 1;
	if (len > t->line_max) {
		buf_consume(&t->in, len);
		smtp_txn_reply_static(t, &R_LINE);
		bad_command(t, SMTP_REF_LINE);
		return true;
	}
	if (len < 2 || p[len - 2] != '\r') {
		buf_consume(&t->in, len);
		smtp_txn_reply_static(t, &R_BARE_LF);
		bad_command(t, SMTP_REF_SYNTAX);
		return true;
	}
	memcpy(t->line, p, len - 2);
	t->line[len - 2] = '\0';
	buf_consume(&t->in, len);
	handle_line(t, t->line, len - 2);
	return true;
}

static void
refused(struct smtp_txn *t, enum smtp_txn_refusal why)
{
	if (t->hooks->refused != NULL)
		t->hooks->refused(t, why);
}

/* A refused command: counted, and past bad_max the end. */
static void
bad_command(struct smtp_txn *t, enum smtp_txn_refusal why)
{
	unsigned max = t->conf->bad_max ? t->conf->bad_max : DEF_BAD_MAX;

	refused(t, why);
	if (++t->bad < max)
		return;
	smtp_txn_reply(t, 421, "4.7.0", "%s Too many errors, closing",
	    t->conf->hostname);
	finish(t, SMTP_END_BAD);
}

/* Start waiting for a hook's smtp_txn_done(). */
static void
await(struct smtp_txn *t, enum smtp_verb verb)
{
	t->pending = true;
	t->pending_verb = verb;
	t->replied = false;
}

static void
handle_line(struct smtp_txn *t, const char *line, size_t len)
{
	struct smtp_cmd *cmd = &t->cmd;

	if (smtp_cmd_parse(cmd, &t->cmd_conf, t->cmd_flags, line, len) !=
	    SMTP_CMD_OK) {
		smtp_txn_reply_static(t, cmd->err);
		if (cmd->verb == SMTP_BDAT) { /* the chunk's length is lost */
			finish(t, SMTP_END_ERROR);
			return;
		}
		bad_command(t, SMTP_REF_SYNTAX);
		return;
	}
	switch (cmd->verb) {
	case SMTP_EHLO:
	case SMTP_HELO:
	case SMTP_LHLO:
		cmd_hello(t);
		return;
	case SMTP_MAIL:
		cmd_mail(t);
		return;
	case SMTP_RCPT:
		cmd_rcpt(t);
		return;
	case SMTP_DATA:
		cmd_data(t);
		return;
	case SMTP_RSET:
		txn_reset(t);
		smtp_txn_reply(t, 250, "2.0.0", "OK");
		return;
	case SMTP_NOOP:
		smtp_txn_reply(t, 250, "2.0.0", "OK");
		return;
	case SMTP_QUIT:
		smtp_txn_reply(t, 221, "2.0.0", "%s Bye", t->conf->hostname);
		finish(t, SMTP_END_QUIT);
		return;
	case SMTP_VRFY: /* RFC 5321 3.5.3: nothing learned */
		smtp_txn_reply(t, 252, "2.5.0",
		    "Cannot VRFY user, but will accept message and attempt "
		    "delivery");
		return;
	case SMTP_EXPN:
		smtp_txn_reply(t, 502, "5.5.1", "EXPN not available");
		return;
	case SMTP_HELP:
		smtp_txn_reply(t, 214, "2.0.0", "See RFC 5321%s",
		    t->conf->mode == SMTP_TXN_LMTP ? " and RFC 2033" : "");
		return;
	case SMTP_BDAT: /* without CHUNKING: skip the chunk */
		if (t->conf->chunking) {
			cmd_bdat(t);
			return;
		}
		t->bdat_skip = cmd->chunk;
		smtp_txn_reply_static(t, &R_UNKNOWN);
		bad_command(t, SMTP_REF_UNKNOWN);
		return;
	default:
		break;
	}
	if (t->hooks->other != NULL) {
		await(t, cmd->verb);
		if (t->hooks->other(t, cmd))
			return;
		t->pending = false;
	}
	smtp_txn_reply_static(t, &R_UNKNOWN);
	bad_command(t, SMTP_REF_UNKNOWN);
}

static void
cmd_hello(struct smtp_txn *t)
{
	const struct smtp_txn_conf *cf = t->conf;
	const struct smtp_cmd *cmd = &t->cmd;
	bool lmtp = cf->mode == SMTP_TXN_LMTP;
	struct buf out = { 0 };

	if (lmtp != (cmd->verb == SMTP_LHLO)) {
		smtp_txn_reply_static(t, &R_WRONG_HELLO);
		bad_command(t, SMTP_REF_SEQUENCE);
		return;
	}
	txn_reset(t);
	snprintf(t->helo, sizeof(t->helo), "%.*s", (int)cmd->arg.len,
	    cmd->arg.p ? cmd->arg.p : "");
	t->state = SMTP_TXN_READY;
	if (cmd->verb == SMTP_HELO) {
		smtp_txn_reply(t, 250, NULL, "%s", cf->hostname);
		return;
	}
	buf_printf(&out, "250-%s\r\n250-PIPELINING\r\n", cf->hostname);
	if (cf->enhanced)
		buf_printf(&out, "250-ENHANCEDSTATUSCODES\r\n");
	if (cf->ext & SMTP_EXT_8BITMIME)
		buf_printf(&out, "250-8BITMIME\r\n");
	if (cf->ext & SMTP_EXT_SMTPUTF8)
		buf_printf(&out, "250-SMTPUTF8\r\n");
	if (cf->ext & SMTP_EXT_DSN)
		buf_printf(&out, "250-DSN\r\n");
	if (cf->chunking)
		buf_printf(&out, "250-CHUNKING\r\n");
	if (cf->chunking && (cf->ext & SMTP_EXT_BINARYMIME))
		buf_printf(&out, "250-BINARYMIME\r\n");
	if (cf->ext & SMTP_EXT_SIZE) {
		if (cf->size_max)
			buf_printf(&out, "250-SIZE %llu\r\n",
			    (unsigned long long)cf->size_max);
		else
			buf_printf(&out, "250-SIZE\r\n");
	}
	for (const char *const *e = cf->ehlo_extra; e != NULL && *e != NULL;
	     e++)
		buf_printf(&out, "250-%s\r\n", *e);
	/* the last line's dash becomes a space */
	if (buf_used(&out) >= 6) {
		char *last = out.data + out.len - 2;

		while (last > out.data && last[-1] != '\n')
			last--;
		last[3] = ' ';
		reply_raw(t, buf_head(&out), buf_used(&out));
	} else {
		finish(t, SMTP_END_ERROR);
	}
	buf_free(&out);
}

static void
cmd_mail(struct smtp_txn *t)
{
	const struct smtp_cmd *cmd = &t->cmd;

	if (t->state == SMTP_TXN_HELLO) {
		smtp_txn_reply_static(t, &R_SEQ_HELLO);
		bad_command(t, SMTP_REF_SEQUENCE);
		return;
	}
	if (t->state != SMTP_TXN_READY) {
		smtp_txn_reply_static(t, &R_SEQ_NESTED);
		bad_command(t, SMTP_REF_SEQUENCE);
		return;
	}
	if ((cmd->params.seen & SMTP_P_SIZE) && t->conf->size_max &&
	    cmd->params.size > t->conf->size_max) {
		smtp_txn_reply_static(t, &R_SIZE);
		refused(t, SMTP_REF_SIZE);
		return;
	}
	snprintf(t->from, sizeof(t->from), "%.*s", (int)cmd->path.mailbox.len,
	    cmd->path.mailbox.p ? cmd->path.mailbox.p : "");
	t->binary = (cmd->params.seen & SMTP_P_BODY) &&
	    cmd->params.body == SMTP_BODY_BINARYMIME;
	t->cmd_flags = (cmd->params.seen & SMTP_P_SMTPUTF8) ?
	    SMTP_CMD_TXN_UTF8 :
	    0;
	await(t, SMTP_MAIL);
	if (t->hooks->mail != NULL)
		t->hooks->mail(t, &cmd->path, &cmd->params);
	else
		smtp_txn_done(t, true);
}

static void
cmd_rcpt(struct smtp_txn *t)
{
	const struct smtp_cmd *cmd = &t->cmd;
	unsigned max = t->conf->rcpt_max ? t->conf->rcpt_max : DEF_RCPT_MAX;

	if (t->state != SMTP_TXN_MAIL && t->state != SMTP_TXN_RCPT) {
		smtp_txn_reply_static(t,
		    t->state == SMTP_TXN_HELLO ? &R_SEQ_HELLO : &R_SEQ_MAIL);
		bad_command(t, SMTP_REF_SEQUENCE);
		return;
	}
	if (t->rcpts >= max) { /* RFC 5321 4.5.3.1.10: 452, not counted */
		smtp_txn_reply_static(t, &R_RCPTS);
		refused(t, SMTP_REF_RCPTS);
		return;
	}
	await(t, SMTP_RCPT);
	t->hooks->rcpt(t, &cmd->path, &cmd->params);
}

void
smtp_txn_done(struct smtp_txn *t, bool accepted)
{
	if (!t->pending)
		return;
	t->pending = false;
	switch (t->pending_verb) {
	case SMTP_MAIL:
		if (accepted) {
			t->state = SMTP_TXN_MAIL;
			if (!t->replied)
				smtp_txn_reply(t, 250, "2.1.0", "OK");
		} else {
			t->from[0] = '\0';
			t->binary = false;
			t->cmd_flags = 0;
		}
		break;
	case SMTP_RCPT:
		if (accepted) {
			t->state = SMTP_TXN_RCPT;
			t->rcpts++;
			if (!t->replied)
				smtp_txn_reply(t, 250, "2.1.5", "OK");
		}
		break;
	case SMTP_DATA: /* data_end's answer */
		t->messages++;
		txn_reset(t);
		t->state = SMTP_TXN_READY;
		break;
	default:
		break;
	}
	if (t->c == NULL) {
		maybe_free(t);
		return;
	}
	conn_set_timer(t->c,
	    t->conf->idle_timeout ? t->conf->idle_timeout : DEF_IDLE_MS);
	process(t);
}

/* Forget the envelope (and any body): the state goes back to READY. */
static void
txn_reset(struct smtp_txn *t)
{
	if (t->state >= SMTP_TXN_MAIL && t->state <= SMTP_TXN_END &&
	    t->hooks->reset != NULL)
		t->hooks->reset(t);
	if (t->state != SMTP_TXN_HELLO)
		t->state = SMTP_TXN_READY;
	t->rcpts = 0;
	t->from[0] = '\0';
	t->cmd_flags = 0;
	t->data_done = false;
	t->data_err = 0;
	t->fill_len = 0;
	t->bdat = t->bdat_last = t->bdat_opening = t->binary = false;
	t->bdat_left = 0;
	memset(&t->data, 0, sizeof(t->data));
	drop_msg(t);
}

/* ---- DATA -------------------------------------------------------- */

static void
cmd_data(struct smtp_txn *t)
{
	if (t->state != SMTP_TXN_RCPT) {
		smtp_txn_reply_static(t,
		    t->state == SMTP_TXN_HELLO	   ? &R_SEQ_HELLO :
			t->state == SMTP_TXN_READY ? &R_SEQ_MAIL :
						     &R_SEQ_RCPT);
		bad_command(t, SMTP_REF_SEQUENCE);
		return;
	}
	if (t->bdat || t->binary) { /* RFC 3030 3 and 4.3: BDAT only */
		smtp_txn_reply_static(t, &R_SEQ_BDAT);
		bad_command(t, SMTP_REF_SEQUENCE);
		return;
	}
	if (!alloc_chunks(t)) {
		smtp_txn_reply_static(t, &R_LOCAL);
		return;
	}
	/* the tmp file first, then the 354 (job_done) */
	if (submit(t, JOB_OPEN, NULL, 0) == -1) {
		smtp_txn_reply(t, 451, "4.3.2", "Server busy, try again later");
		return;
	}
}

/* The tmp file exists (or not): 354 and the body, or a refusal. */
static void
data_opened(struct smtp_txn *t, int err)
{
	struct smtp_data_conf dc = {
		.mode = t->conf->bare,
		.max_size = t->conf->size_max,
	};

	if (err != 0 || t->msg == NULL) {
		smtp_txn_reply_static(t,
		    err == ENOSPC || err == EDQUOT ? &R_FULL : &R_LOCAL);
		refused(t, SMTP_REF_STORAGE);
		if (t->bdat_opening) { /* its chunk follows all the same */
			t->bdat_opening = false;
			t->bdat_skip = t->bdat_left;
			t->bdat_left = 0;
		}
		return;
	}
	smtp_data_init(&t->data, &dc);
	if (t->bdat_opening) { /* no 354: the chunk is on its way */
		t->bdat_opening = false;
		t->bdat = true;
		t->state = SMTP_TXN_DATA;
		t->fill_len = 0;
		t->data_err = 0;
		return;
	}
	t->state = SMTP_TXN_DATA;
	t->fill_len = 0;
	t->data_done = false;
	t->data_err = 0;
	smtp_txn_reply(t, 354, NULL,
	    "Start mail input; end with <CRLF>.<CRLF>");
}

/* One step of the body. false: wait (input, or a chunk's write). */
static bool
data_step(struct smtp_txn *t)
{
	const char *out;
	size_t used, out_len, room;
	enum smtp_data_ev ev;

	if (t->fill_len >= CHUNK_BYTES) {
		char *full;

		if (t->job_out)
			return false;
		full = t->fill;
		t->fill = t->spare;
		t->spare = NULL;
		if (submit(t, JOB_WRITE, full, t->fill_len) == -1) {
			t->spare = full; /* the file is lost: drop the rest */
			t->data_err = EIO;
			smtp_data_discard(&t->data);
		}
		t->fill_len = 0;
	}
	room = CHUNK_BYTES - t->fill_len;
	if (t->bdat)
		return bdat_step(t, room);
	if (buf_used(&t->in) == 0)
		return false;
	ev = smtp_data_next(&t->data, buf_head(&t->in),
	    buf_used(&t->in) < room ? buf_used(&t->in) : room, &used, &out,
	    &out_len);
	if (ev == SMTP_DATA_BYTES) {
		if (t->data_err == 0) {
			memcpy(t->fill + t->fill_len, out, out_len);
			t->fill_len += out_len;
		}
		buf_consume(&t->in, used);
	} else {
		buf_consume(&t->in, used);
	}
	if (t->data.too_big) {
		/* a body that may never end: answer and close */
		end_reply(t, &R_SIZE);
		refused(t, SMTP_REF_SIZE);
		finish(t, SMTP_END_TOO_BIG);
		return false;
	}
	if (ev != SMTP_DATA_END)
		return ev == SMTP_DATA_BYTES || used > 0;
	t->state = SMTP_TXN_END;
	data_finish(t);
	return false;
}

/* Both chunk buffers, kept for the connection's next messages. */
static bool
alloc_chunks(struct smtp_txn *t)
{
	if (t->fill == NULL &&
	    (t->fill = malloc(CHUNK_BYTES + CHUNK_SLACK)) == NULL)
		return false;
	if (t->spare == NULL &&
	    (t->spare = malloc(CHUNK_BYTES + CHUNK_SLACK)) == NULL)
		return false;
	return true;
}

/* BDAT n [LAST] (RFC 3030): n bytes follow the line whatever we answer. */
static void
cmd_bdat(struct smtp_txn *t)
{
	const struct smtp_cmd *cmd = &t->cmd;
	uint64_t max = t->conf->size_max;

	if (t->state != SMTP_TXN_RCPT) {
		t->bdat_skip = cmd->chunk;
		smtp_txn_reply_static(t,
		    t->state == SMTP_TXN_HELLO	   ? &R_SEQ_HELLO :
			t->state == SMTP_TXN_READY ? &R_SEQ_MAIL :
						     &R_SEQ_RCPT);
		bad_command(t, SMTP_REF_SEQUENCE);
		return;
	}
	if (max != 0 && (cmd->chunk > max || t->data.size > max - cmd->chunk)) {
		/* we will not read that much: answer and close */
		end_reply(t, &R_SIZE);
		refused(t, SMTP_REF_SIZE);
		finish(t, SMTP_END_TOO_BIG);
		return;
	}
	t->bdat_left = cmd->chunk;
	t->bdat_last = cmd->last;
	if (t->bdat) {
		t->state = SMTP_TXN_DATA;
		return;
	}
	if (!alloc_chunks(t) || submit(t, JOB_OPEN, NULL, 0) == -1) {
		t->bdat_skip = cmd->chunk;
		t->bdat_left = 0;
		smtp_txn_reply(t, 451, "4.3.2", "Server busy, try again later");
		return;
	}
	t->bdat_opening = true;
}

/* A BDAT chunk's bytes, as they are, into the chunk buffer. */
static bool
bdat_step(struct smtp_txn *t, size_t room)
{
	size_t k = buf_used(&t->in);

	if (k > room)
		k = room;
	if (k > t->bdat_left)
		k = (size_t)t->bdat_left;
	if (k > 0) {
		if (t->data_err == 0) {
			memcpy(t->fill + t->fill_len, buf_head(&t->in), k);
			t->fill_len += k;
		}
		buf_consume(&t->in, k);
		t->bdat_left -= k;
		t->data.size += k;
	}
	if (t->bdat_left > 0)
		return k > 0;
	if (t->bdat_last) {
		t->state = SMTP_TXN_END;
		data_finish(t);
		return false;
	}
	t->state = SMTP_TXN_RCPT;
	if (t->data_err != 0)
		smtp_txn_reply_static(t,
		    t->data_err == ENOSPC || t->data_err == EDQUOT ? &R_FULL :
								     &R_LOCAL);
	else
		smtp_txn_reply(t, 250, "2.0.0", "%llu octets received",
		    (unsigned long long)t->cmd.chunk);
	return true;
}

/* The end-of-data line was read: write what is left, then the hook. */
static void
data_finish(struct smtp_txn *t)
{
	const struct smtp_reply *r;

	if (t->job_out)
		return; /* job_done() comes back here */
	if (t->fill_len > 0 && t->data_err == 0) {
		char *last = t->fill;

		t->fill = t->spare != NULL ? t->spare :
					     malloc(CHUNK_BYTES + CHUNK_SLACK);
		t->spare = NULL;
		if (t->fill == NULL ||
		    submit(t, JOB_WRITE, last, t->fill_len) == -1) {
			if (t->fill == NULL)
				t->fill = last;
			else
				t->spare = last;
			t->data_err = EIO;
		} else {
			t->fill_len = 0;
			return;
		}
	}
	t->fill_len = 0;
	await(t, SMTP_DATA);
	if (t->data_err != 0) {
		end_reply(t,
		    t->data_err == ENOSPC || t->data_err == EDQUOT ? &R_FULL :
								     &R_LOCAL);
		refused(t, SMTP_REF_STORAGE);
		smtp_txn_done(t, false);
		return;
	}
	if ((r = smtp_data_error(&t->data)) != NULL ||
	    (t->conf->refuse_nul && t->data.nul > 0 && (r = &R_NUL))) {
		end_reply(t, r);
		refused(t, SMTP_REF_DATA);
		smtp_txn_done(t, false);
		return;
	}
	t->hooks->data_end(t, t->msg, &t->data);
}

/* ---- pool jobs ------------------------------------------------------ */

static int
submit(struct smtp_txn *t, enum job_kind kind, char *buf, size_t len)
{
	struct txn_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return -1;
	job->kind = kind;
	job->t = t;
	job->msg = t->msg;
	job->dir = t->conf->tmp_dir;
	job->buf = buf;
	job->len = len;
	job->base.run = job_run;
	job->base.done = job_done;
	job->base.sid = t->sid;
	job->base.flow = t->sid;
	if ((kind == JOB_OPEN ? pool_submit : pool_resubmit)(t->conf->pool,
		t->conf->outbox, &job->base) == -1) {
		free(job);
		return -1;
	}
	t->job_out = true;
	return 0;
}

static void
job_run(struct pool_job *pj)
{
	struct txn_job *job = (struct txn_job *)pj;
	const char *error = NULL;

	errno = 0;
	switch (job->kind) {
	case JOB_OPEN:
		if (deliver_msg_open(job->dir, &job->msg, &error) == -1)
			job->err = errno ? errno : EIO;
		break;
	case JOB_WRITE:
		if (deliver_msg_write(job->msg, job->buf, job->len, &error) ==
		    -1)
			job->err = errno ? errno : EIO;
		break;
	case JOB_FREE: /* detached: owns itself */
		deliver_msg_free(&job->msg);
		free(job);
		return;
	}
	if (job->err != 0)
		log_warn(pj->sid, "smtp.tmpfile_failed", "error=\"%s\"",
		    error ? error : strerror(job->err));
}

static void
job_done(struct pool_job *pj)
{
	struct txn_job *job = (struct txn_job *)pj;
	struct smtp_txn *t = job->t;

	t->job_out = false;
	if (job->kind == JOB_OPEN) {
		t->msg = job->msg;
		if (t->c != NULL && t->state == SMTP_TXN_RCPT)
			data_opened(t, job->err);
	} else {
		if (job->err != 0 && t->data_err == 0) {
			t->data_err = job->err;
			if (!t->data_done)
				smtp_data_discard(&t->data);
		}
		if (t->spare == NULL)
			t->spare = job->buf;
		else
			free(job->buf);
	}
	free(job);
	if (t->c == NULL) {
		maybe_free(t);
		return;
	}
	if (t->state == SMTP_TXN_END && !t->pending)
		data_finish(t);
	process(t);
}

/* Close the tmp file (on the pool when it can). */
static void
drop_msg(struct smtp_txn *t)
{
	struct txn_job *job;

	if (t->msg == NULL)
		return;
	if ((job = calloc(1, sizeof(*job))) != NULL) {
		job->kind = JOB_FREE;
		job->msg = t->msg;
		job->base.run = job_run;
		job->base.sid = t->sid;
		if (pool_detach(t->conf->pool, &job->base) == 0) {
			t->msg = NULL;
			return;
		}
		free(job);
	}
	deliver_msg_free(&t->msg);
}

/* ---- accessors -------------------------------------------------------- */

void *
smtp_txn_ctx(const struct smtp_txn *t)
{
	return t->ctx;
}

struct conn *
smtp_txn_conn(const struct smtp_txn *t)
{
	return t->c;
}

enum smtp_txn_state
smtp_txn_state(const struct smtp_txn *t)
{
	return t->state;
}

uint64_t
smtp_txn_sid(const struct smtp_txn *t)
{
	return t->sid;
}

const char *
smtp_txn_helo(const struct smtp_txn *t)
{
	return t->helo;
}

const char *
smtp_txn_from(const struct smtp_txn *t)
{
	return t->from;
}

unsigned
smtp_txn_rcpts(const struct smtp_txn *t)
{
	return t->rcpts;
}

uint64_t
smtp_txn_messages(const struct smtp_txn *t)
{
	return t->messages;
}

const char *
smtp_txn_end_name(enum smtp_txn_end why)
{
	static const char *const names[] = {
		[SMTP_END_QUIT] = "quit",
		[SMTP_END_GONE] = "gone",
		[SMTP_END_IDLE] = "idle",
		[SMTP_END_BAD] = "bad_commands",
		[SMTP_END_TOO_BIG] = "too_big",
		[SMTP_END_ERROR] = "error",
		[SMTP_END_DRAIN] = "drain",
	};

	return (unsigned)why < sizeof(names) / sizeof(names[0]) ? names[why] :
								  "?";
}

const char *
smtp_txn_refusal_name(enum smtp_txn_refusal why)
{
	static const char *const names[SMTP_REF_COUNT] = {
		[SMTP_REF_SYNTAX] = "syntax",
		[SMTP_REF_LINE] = "line_length",
		[SMTP_REF_SEQUENCE] = "sequence",
		[SMTP_REF_RCPTS] = "recipients",
		[SMTP_REF_SIZE] = "size",
		[SMTP_REF_DATA] = "data",
		[SMTP_REF_UNKNOWN] = "unknown_command",
		[SMTP_REF_STORAGE] = "storage",
	};

	return (unsigned)why < SMTP_REF_COUNT ? names[why] : "?";
}
