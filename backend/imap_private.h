/*
 * imap_private.h - what the IMAP session core (imap_session.c) shares
 * with the command files (imap_cmd_*.c): the session, the command table
 * entry, replies and the job plumbing for work on the store pool.
 *
 * Ownership rules every command file follows: a session runs at most one
 * job at a time (SF_BUSY) and reads no input meanwhile; a job that needs
 * the open folder borrows it (s->box moves into the job and back in
 * finish()), so only one thread ever touches it. A session whose
 * connection closed while a job ran stays in the worker's table as a
 * husk (SF_GONE) until that job's answer arrives, which then frees both.
 */
#ifndef RG_BACKEND_IMAP_PRIVATE_H
#define RG_BACKEND_IMAP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/pool.h"
#include "proto/imap_input.h"
#include "backend/ringstore.h"

struct auth_entry;
struct idle_folder;
struct imap_append;
struct conn;
struct maildir;
struct maildir_changes;
struct maildir_msg;
struct sasl_server;

enum imap_state {
	IS_AUTH = 1, /* 0 was "not authenticated": login/'s now */
	IS_SELECTED,
	IS_LOGOUT,
};
#define ST_AUTH (1u << IS_AUTH)
#define ST_SELECTED (1u << IS_SELECTED)
#define ST_ANY (ST_AUTH | ST_SELECTED)

enum imap_flags {
	SF_TLS = 1 << 0,     /* TLS is on (implicit or after STARTTLS) */
	SF_BUSY = 1 << 1,    /* a job is in flight; input waits */
	SF_GONE = 1 << 2,    /* the connection closed under a job */
	SF_LINE = 1 << 3,    /* a raw line is asked for (SASL, DONE) */
	SF_CLOSING = 1 << 4, /* BYE sent, no more commands */
	SF_PAUSED = 1 << 5,  /* we paused the connection */
	SF_MORE = 1 << 6,    /* a batched FETCH waits for the output */
	SF_IDLE = 1 << 7,    /* in IDLE: changes are pushed, DONE ends */
	SF_CHANGED = 1 << 8, /* the selected folder changed on disk */
	SF_WRITING = 1 << 9, /* an APPEND chunk is being written; input
				* goes on (imap_append.c) */
};

#define IMAP_TAG_MAX 128
#define IMAP_MBOX_MAX 1024 /* UTF-8 bytes of a mailbox name */

struct imap_session;
struct imap_job;

/* A command: syntax check and action are separate. check() validates the
 * arguments (filling s->a) and returns 0, or -1 with s->error for BAD
 * (or s->a.refuse for NO: see there); run() acts and replies, now or
 * when its job is done. */
struct imap_cmd_def {
	const char *name;
	unsigned states;
	bool uid; /* may follow "UID " */
	int (*check)(struct imap_session *s, const struct imap_command *cmd);
	void (*run)(struct imap_session *s, const struct imap_command *cmd);
};

/* Arguments a check() extracted for its run(). */
struct imap_args {
	char mbox[IMAP_MBOX_MAX];  /* UTF-8 */
	char mbox2[IMAP_MBOX_MAX]; /* UTF-8, RENAME's target, LIST pattern */
	unsigned items;		   /* STATUS items and the like */
	/* Set with a failed check() when the syntax was fine but a value
	 * is refused (a mailbox name that is no valid name): the answer is
	 * "NO <refuse>" ("[CODE] text"), which does not count as a bad
	 * command. */
	const char *refuse;
};

struct imap_session {
	struct rs_worker *w;
	const struct rs_server *srv;
	const struct listener_conf *lconf;
	struct conn *c;
	uint64_t sid;
	enum imap_state state;
	unsigned flags;
	/* Loop callbacks running on this session: a close inside one (an
	 * abort after a failed write) makes it a husk, freed on the way out,
	 * never under its caller. */
	unsigned calls;
	unsigned bad;
	uint64_t commands;

	struct imap_input input; /* the parser and its discipline */
	struct buf in;		 /* received, not yet parsed */
	bool lit_over;		 /* more than one streamed literal: refused */
	/* the APPEND message streaming into a tmp file, or NULL */
	struct imap_append *app;

	char tag[IMAP_TAG_MAX + 1];
	const char *error; /* BAD text from a check() */
	struct imap_args a;

	/* after login */
	char *user;
	char *maildir;
	bool has_quota; /* the passwd entry's quota=, for APPEND and COPY */
	uint64_t quota;
	/* selected */
	struct maildir *box;
	bool readonly;
	uint32_t exists; /* messages the client knows of */
	/* a batched command's job waiting for the output to drain */
	struct imap_job *more;
	/* the watched folder shared with other sessions (imap_idle.c) */
	struct idle_folder *folder;
	struct imap_session *fnext;

	struct imap_session *hnext; /* worker table chain */
};

/* A job on the store pool (or the auth pool) for a session. */
struct imap_job {
	struct pool_job base;
	struct rs_worker *w;
	/* With the session alive: deliver the answer (reply, take back the
	 * box). The job is freed afterwards unless finish() kept it (then
	 * it returns 1). */
	int (*finish)(struct imap_session *s, struct imap_job *job);
	void (*release)(struct imap_job *job); /* free the job's own data */
	unsigned hold;	     /* the session flag it holds: SF_BUSY, or
				 * SF_WRITING for a background write */
	struct maildir *box; /* borrowed folder, or NULL */
	struct buf out;	     /* untagged output built on the pool */
	int err;	     /* errno of a failed store call */
	const char *errtext;
	bool has_quota; /* the session's user has quota= bytes */
	uint64_t quota;
};

/* ---- imap_session.c ---- */

/* One reply line: tag "*" (untagged), "+" (continuation) or NULL for the
 * current command's tag. Formats, counts, queues. */
void imap_reply(struct imap_session *s, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Raw protocol bytes (already formatted output of a job). */
void imap_send(struct imap_session *s, const void *p, size_t n);
/* The same for a job's whole output buffer, handed over without a copy
 * where the connection allows it; *b comes back empty for reuse. */
void imap_send_buf(struct imap_session *s, struct buf *b);
/* Tagged BAD for a syntax problem; counts toward the disconnect. */
void imap_bad(struct imap_session *s, const char *text);
void imap_enter_state(struct imap_session *s, enum imap_state st);
/* End the session after the queued output: "* BYE text". */
void imap_bye(struct imap_session *s, const char *text);

/* Allocate a job of size bytes (>= sizeof(struct imap_job)) for s. */
void *imap_job_new(struct imap_session *s, size_t size,
    int (*finish)(struct imap_session *, struct imap_job *));
/* Queue it on the store pool with run; marks s busy. On a full queue the
 * job is freed, the client gets NO [UNAVAILABLE], and -1 returns. */
int imap_job_submit(struct imap_session *s, struct imap_job *job,
    pool_run_fn *run);
/* The same without the reply, holding flag (SF_BUSY or SF_WRITING) on s
 * until the answer: -1 (job freed, folder given back) on a full queue. */
int imap_job_queue(struct imap_session *s, struct imap_job *job,
    pool_run_fn *run, unsigned flag);
/* The same for a job answered by someone else (auth pool): counts it in
 * the outbox and marks s busy; complete with pool_outbox_complete(). */
void imap_job_hold(struct imap_session *s, struct imap_job *job);
/* The pool a job of s goes to now: the login lane before login, else the
 * store pool. */
struct pool *imap_job_pool(const struct imap_session *s);
/* Queue the next part of s's current command (a FETCH batch, a SEARCH
 * slice), job already set up with its run(): not held to the queue
 * limit (pool_resubmit()). Marks s busy; -1 (nothing queued, the
 * caller still owns the job) when the pool is stopping. */
int imap_job_again(struct imap_session *s, struct imap_job *job);
void imap_job_free(struct imap_job *job);
/* The parser's limits for the current state (after login: larger). */
int imap_session_set_limits(struct imap_session *s);

/* The capability list for the current state, without "* CAPABILITY". */
void imap_capability_string(struct imap_session *s, struct buf *b);

/* Argument helpers: an astring or mailbox name into dst. 0 or -1 with
 * s->error. Mailbox names are decoded from modified UTF-7; "INBOX" in
 * any case becomes "INBOX". */
int imap_get_astring(struct imap_session *s, const struct imap_arg *a,
    char *dst, size_t cap);
int imap_get_mailbox(struct imap_session *s, const struct imap_arg *a,
    char *dst, size_t cap);
/* Append a mailbox name (UTF-8) as an astring in modified UTF-7. */
int imap_put_mailbox(struct buf *b, const char *name);
/* imap_write_fn into a struct buf. */
int imap_buf_write(void *ctx, const char *p, size_t len);

/* check() of commands that take no arguments (BAD text otherwise). */
int imap_check_none(struct imap_session *s, const struct imap_command *cmd);

/* ---- imap_flags.c: flag lists and FLAGS responses ---- */

/* A parsed flag list: system flags and keyword names. */
struct imap_flag_list {
	unsigned flags;	 /* enum maildir_flag, stored ones only */
	char **keywords; /* NULL-terminated, one allocation; NULL if none */
	size_t nkeywords;
	bool too_long; /* a keyword over MAILDIR_KEYWORD_LEN_MAX */
};

/* Parse flags at a: a flag list, or with chain (STORE) also one or more
 * bare flags (a and what follows it). With fl NULL only the syntax is
 * checked. 0, or -1 with s->error for BAD; free fl with
 * imap_flags_free() either way. */
int imap_flags_parse(struct imap_session *s, const struct imap_arg *a,
    bool chain, struct imap_flag_list *fl);
void imap_flags_free(struct imap_flag_list *fl);
/* "FLAGS (...)" of a message of box: system flags, then its keywords. */
void imap_write_flags(struct buf *b, const struct maildir *box,
    const struct maildir_msg *m);
/* "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]" lines of box, with
 * its keywords (and \* while another keyword fits); read-only folders
 * have no permanent flags. */
void imap_write_flag_lists(struct buf *b, const struct maildir *box);

/* ---- command tables ---- */
extern const struct imap_cmd_def imap_cmds_any[];
extern const struct imap_cmd_def imap_cmds_mailbox[];
extern const struct imap_cmd_def imap_cmds_message[];
extern const struct imap_cmd_def imap_cmds_append[];
extern const struct imap_cmd_def imap_cmds_fetch[];
extern const struct imap_cmd_def imap_cmds_copy[];
extern const struct imap_cmd_def imap_cmds_search[];
extern const struct imap_cmd_def imap_cmds_idle[];

/* Drop the selected folder (state back to AUTH). */
void imap_unselect(struct imap_session *s);
/* A batched job continues once the output drained (imap_cmd_fetch.c). */
void imap_more(struct imap_session *s);
/* Month names for dates (imap_append.c, which parses APPEND's). */
extern const char *const imap_months[12];
/* Streamed APPEND (imap_append.c). _literal(): APPEND's message
 * literal (stream 0) was announced; creates the tmp file on the pool and
 * answers the continuation (or NO and refuses a synchronizing one).
 * _data(): its bytes. _room(): how many input bytes may be fed now, 0
 * while a chunk waits for a write (the session stops reading). _end():
 * the command ended without APPEND taking the message (BAD, parse
 * error): the tmp file goes. _free(): session teardown, no job out. */
void imap_append_literal(struct imap_session *s);
void imap_append_data(struct imap_session *s, const char *p, size_t n);
size_t imap_append_room(const struct imap_session *s);
void imap_append_end(struct imap_session *s);
void imap_append_free(struct imap_session *s);
/* Resolve a sequence set (uid false) or UID set against the selected
 * view into ascending view indexes: *idx_r is malloc'd, owned by the
 * caller. With idx_r NULL only the syntax is checked (no view needed).
 * 0, or -1 with s->error for BAD. Ring thread only (reads s->box). */
int imap_set_resolve(struct imap_session *s, const struct imap_arg *a, bool uid,
    uint32_t **idx_r, size_t *nidx_r);
/* Untagged EXPUNGE (descending), FETCH FLAGS and EXISTS for what a
 * maildir_sync() of box reported. */
void imap_write_changes(struct buf *b, const struct maildir *box,
    const struct maildir_changes *ch);

/* ---- imap_announce.c: APPEND/COPY into the selected folder ---- */

/* On the ring, before the job is queued: if name is the selected folder,
 * lend s->box to job and return true. The job runs
 * imap_announce_sync() after its store call (pool; nothing without a
 * box) and its finish imap_announce_finish() before the tagged answer
 * (gives the box back, sends the EXISTS/RECENT and other changes, sets
 * s->exists; nothing without a box). */
bool imap_announce_lend(struct imap_session *s, struct imap_job *job,
    const char *name);
void imap_announce_sync(struct imap_job *job);
void imap_announce_finish(struct imap_session *s, struct imap_job *job);

/* ---- imap_idle.c ---- */

/* The worker's inotify watcher (w->watcher), on w's loop thread. 0 or
 * -1; imap_idle_free() after every session is gone. */
int imap_idle_init(struct rs_worker *w);
void imap_idle_free(struct rs_worker *w);
/* s->box was just opened: watch its folder (shared, refcounted) so that
 * changes reach s. Unselect drops the reference; both are idempotent. */
void imap_idle_select(struct imap_session *s);
void imap_idle_unselect(struct imap_session *s);
/* A line while idling: DONE ends IDLE with the tagged OK. */
void imap_idle_line(struct imap_session *s, const char *line, size_t len);

#endif
