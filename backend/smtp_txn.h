/*
 * smtp_txn.h - the ESMTP/LMTP mail transaction core of ringstore, shared by
 * LMTP (backend/lmtp_session.c, no login phase) and the submission intake
 * (backend/submit_session.c, after login/'s SMTP pre-login): everything
 * after the greeting or the login, on one connection.
 *
 * The core owns the connection while it runs (it installs its own
 * conn_handler): it cuts command lines (limit: conf line_max, 500 5.5.2
 * for a longer one), parses them with proto/smtp_cmd.h, keeps the
 * transaction's state machine
 *
 *     HELLO --HELO/EHLO/LHLO--> READY --MAIL--> MAIL --RCPT ok--> RCPT
 *     RCPT --DATA--> (354, the body streamed to a tmp file) --end--> READY
 *     RCPT --BDAT n--> (n bytes to the tmp file, 250) --BDAT n LAST--> READY
 *
 * answers RSET, NOOP, QUIT, VRFY (252, nothing learned), EXPN (502), HELP,
 * BDAT (RFC 3030 CHUNKING) when conf.chunking, else 502 (the chunk
 * skipped), enforces the limits
 * (recipients per message 452 4.5.3, SIZE announced and enforced 552
 * 5.3.4, bad commands then 421 and close, idle timeout 421) and writes
 * RFC 3463 enhanced status codes when conf.enhanced is set.
 *
 * PIPELINING: answers go out in command order, and the next command is
 * not even looked at before the current one is answered: a hook that
 * works asynchronously (a lookup on the pool) holds the input until it
 * calls smtp_txn_done(). Input that piles up meanwhile pauses the
 * connection.
 *
 * The DATA body goes through proto/smtp_data.h's reader (unstuffed, bare
 * CR/LF refused or normalised per conf) into a tmp file (deliver.h's
 * struct deliver_msg) written in chunks on conf.pool; reading pauses while
 * a chunk waits, so a session holds at most two chunks in memory, never
 * the message.
 *
 * The protocol (LMTP, submission) plugs in through struct smtp_txn_hooks.
 * Every hook that takes a decision (mail, rcpt, data_end, other) must end
 * it with exactly one smtp_txn_done(), either inside the hook or later
 * from a pool job's done() on the loop thread; its replies (zero or more
 * smtp_txn_reply() calls) come before that. Until then the transaction
 * stays alive even if the client has gone (then replies are dropped), so
 * a pool job may keep a pointer to it; `closed` is the last hook call.
 * What a hook is handed (paths, parameters, the command) points into the
 * core's line buffer: valid during the call only, copy what is kept.
 *
 * Threads: everything here runs on the connection's loop thread.
 */
#ifndef RG_BACKEND_SMTP_TXN_H
#define RG_BACKEND_SMTP_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/smtp_cmd.h"
#include "proto/smtp_data.h"

struct buf;
struct conn;
struct deliver_msg;
struct pool;
struct pool_outbox;
struct smtp_txn;

enum smtp_txn_mode {
	SMTP_TXN_SMTP = 0, /* EHLO/HELO; one reply after DATA */
	SMTP_TXN_LMTP,	   /* LHLO only; one reply per recipient */
};

/* Where the transaction is (smtp_txn_state()). */
enum smtp_txn_state {
	SMTP_TXN_HELLO = 0, /* no HELO/EHLO/LHLO yet */
	SMTP_TXN_READY,	    /* greeted, no MAIL */
	SMTP_TXN_MAIL,	    /* MAIL accepted, no recipient yet */
	SMTP_TXN_RCPT,	    /* at least one recipient accepted */
	SMTP_TXN_DATA,	    /* receiving the body */
	SMTP_TXN_END,	    /* body received, data_end running */
	SMTP_TXN_CLOSED,    /* QUIT, 421 or the client gone */
};

/* Why the connection ended (smtp_txn_hooks.closed, metrics). */
enum smtp_txn_end {
	SMTP_END_QUIT = 0, /* QUIT answered */
	SMTP_END_GONE,	   /* the client closed or reset */
	SMTP_END_IDLE,	   /* idle timeout: 421 4.4.2 */
	SMTP_END_BAD,	   /* too many bad commands: 421 4.7.0 */
	SMTP_END_TOO_BIG,  /* DATA past size_max: 552 5.3.4, closed */
	SMTP_END_ERROR,	   /* out of memory, a BDAT we cannot follow */
	SMTP_END_DRAIN,	   /* the daemon stops */
};

/* Refusals the core makes itself (smtp_txn_hooks.refused, metrics). */
enum smtp_txn_refusal {
	SMTP_REF_SYNTAX = 0, /* a line smtp_cmd_parse() refused */
	SMTP_REF_LINE,	     /* a command line over line_max */
	SMTP_REF_SEQUENCE,   /* bad sequence of commands (503) */
	SMTP_REF_RCPTS,	     /* recipients per message (452 4.5.3) */
	SMTP_REF_SIZE,	     /* SIZE= or the body over size_max (552) */
	SMTP_REF_DATA,	     /* the body refused: bare CR/LF, NUL (550) */
	SMTP_REF_UNKNOWN,    /* a verb not implemented here (502) */
	SMTP_REF_STORAGE,    /* the tmp file failed: full disk (452 4.3.1) */
	SMTP_REF_COUNT,
};

struct smtp_txn_conf {
	enum smtp_txn_mode mode;
	const char *hostname; /* in the greeting and the EHLO/LHLO answer */
	unsigned ext;	      /* enum smtp_ext bits offered (SIZE, 8BITMIME) */
	bool enhanced;	      /* ENHANCEDSTATUSCODES: write "2.0.0" codes */
	/* Lines added to the EHLO/LHLO answer after the core's own
	 * (PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SIZE n), e.g.
	 * "AUTH PLAIN"; NULL-terminated, may be NULL. Borrowed. */
	const char *const *ehlo_extra;
	uint64_t line_max;	  /* command line, CRLF included; 0: 512 */
	uint64_t size_max;	  /* message bytes; 0: no limit, no SIZE n */
	unsigned rcpt_max;	  /* accepted recipients per message; 0: 100 */
	unsigned bad_max;	  /* bad commands before 421; 0: 10 */
	uint64_t idle_timeout;	  /* ms waiting for a command; 0: 5 min */
	enum smtp_data_mode bare; /* bare CR/LF in DATA: refuse or fix */
	bool refuse_nul;	  /* a NUL in DATA refuses the message */
	/* Where the body goes: deliver_msg_open(tmp_dir) on pool, answers
	 * through outbox (the worker's); the jobs' flow is the session id. */
	struct pool *pool;
	struct pool_outbox *outbox;
	const char *tmp_dir; /* a directory on the mail file system */
	/* CHUNKING (RFC 3030): BDAT accepted, its chunks taken as they are
	 * (no unstuffing, no line checks); false: BDAT 502, chunk skipped */
	bool chunking;
};

struct smtp_txn_hooks {
	/* MAIL FROM passed the grammar, the state check and the SIZE=
	 * check. Decide with smtp_txn_done(t, accepted); without a reply of
	 * the hook's own an accepted MAIL is answered 250 2.1.0, a refused
	 * one must have been replied to. NULL: every MAIL accepted. */
	void (*mail)(struct smtp_txn *t, const struct smtp_path *from,
	    const struct smtp_params *params);
	/* RCPT TO passed the grammar, the state and rcpt_max checks. As
	 * mail (default answer 250 2.1.5); an accepted one counts toward
	 * rcpt_max and lets DATA in. Required. */
	void (*rcpt)(struct smtp_txn *t, const struct smtp_path *to,
	    const struct smtp_params *params);
	/* The body is whole in msg (smtp_txn_message(), rewound to 0; data
	 * holds the reader's counters: size, 8-bit, bare CR/LF). Reply once
	 * (SMTP) or once per accepted recipient in RCPT order (LMTP), then
	 * smtp_txn_done(). The message is the core's: it is freed after
	 * done. Required. */
	void (*data_end)(struct smtp_txn *t, struct deliver_msg *msg,
	    const struct smtp_data *data);
	/* The transaction is dropped (RSET, a new HELO, after data_end's
	 * done, at close): forget its envelope. NULL: nothing kept. */
	void (*reset)(struct smtp_txn *t);
	/* A verb the core does not handle (AUTH, STARTTLS, XCLIENT, ETRN,
	 * TURN after a login): reply and smtp_txn_done(), and return true;
	 * false lets the core answer 502 5.5.1. NULL: always 502. */
	bool (*other)(struct smtp_txn *t, const struct smtp_cmd *cmd);
	/* A refusal the core made (for the protocol's metrics and log). */
	void (*refused)(struct smtp_txn *t, enum smtp_txn_refusal why);
	/* The last call: the connection is gone and no hook is pending.
	 * The session frees its own state here; t is freed right after. */
	void (*closed)(struct smtp_txn *t, enum smtp_txn_end why);
};

/*
 * Take connection c over (its handler and ctx become the core's): write
 * greeting (a whole reply, CRLF included; NULL: none, it was sent by
 * the login phase) and process rest (bytes already read after the last
 * login command, may be NULL). conf and hooks are borrowed and must
 * outlive t; ctx is the session's (smtp_txn_ctx()). With state
 * SMTP_TXN_READY the client is taken as greeted (after a login phase
 * that saw EHLO). NULL on allocation failure (c is untouched).
 */
struct smtp_txn *smtp_txn_start(struct conn *c,
    const struct smtp_txn_conf *conf, const struct smtp_txn_hooks *hooks,
    void *ctx, enum smtp_txn_state state, const char *greeting,
    const struct buf *rest);

/* One reply line: "<code> <enh> <text>\r\n" (<enh> dropped without
 * conf.enhanced or when NULL). fmt must not expand to CR or LF; the text
 * is cut at 400 bytes. Dropped when the client has gone. */
void smtp_txn_reply(struct smtp_txn *t, unsigned code, const char *enh,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The same for a static proto/ reply. */
void smtp_txn_reply_static(struct smtp_txn *t, const struct smtp_reply *r);

/* End the pending hook (mail, rcpt, data_end, other): accepted moves the
 * state on (MAIL, RCPT); then the next command is read. Exactly once per
 * hook call, on the loop thread; may be called inside the hook. */
void smtp_txn_done(struct smtp_txn *t, bool accepted);

/* Close after the replies written so far (a hook's 421). */
void smtp_txn_close(struct smtp_txn *t);

void *smtp_txn_ctx(const struct smtp_txn *t);
struct conn *smtp_txn_conn(const struct smtp_txn *t); /* NULL when gone */
enum smtp_txn_state smtp_txn_state(const struct smtp_txn *t);
uint64_t smtp_txn_sid(const struct smtp_txn *t);
/* The HELO/EHLO/LHLO argument as given ("" before one). */
const char *smtp_txn_helo(const struct smtp_txn *t);
/* The transaction's MAIL FROM mailbox ("" for <>, or before MAIL). */
const char *smtp_txn_from(const struct smtp_txn *t);
/* Recipients accepted in this transaction so far. */
unsigned smtp_txn_rcpts(const struct smtp_txn *t);
/* Messages whose data_end ran on this connection. */
uint64_t smtp_txn_messages(const struct smtp_txn *t);

/* Text of an end or refusal, for logs and metric labels ("quit"). */
const char *smtp_txn_end_name(enum smtp_txn_end why);
const char *smtp_txn_refusal_name(enum smtp_txn_refusal why);

#endif
