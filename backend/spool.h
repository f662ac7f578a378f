/*
 * spool.h - ringstore's durable relay spool: messages for other domains
 * wait here until the queue runner (backend/relay.h) has handed them to
 * the smarthost or given up on them.
 *
 * One directory (config relay.spool, default <mail_root>/.spool):
 *   tmp/           files being written; whatever is here at start-up is
 *                  a leftover of a crash and is removed
 *   msg/<id>       the message as it goes out (the caller's prefix, a
 *                  Received header, then the message bytes)
 *   env/<id>       the envelope and control file (text, one item a line):
 *                  sender, the submitting local user, arrival time,
 *                  attempts, next attempt time, each recipient with its
 *                  state and last reply
 * An entry exists when env/<id> exists. Durability rule: msg/<id> is
 * written to tmp/, fsync'd, renamed into msg/, msg/ fsync'd; only then is
 * env/<id> written the same way into env/ and env/ fsync'd. spool_put()
 * returns after all of it, so the caller's 250 is never sent for a
 * message a crash could lose. A kill -9 at any point leaves either a
 * complete entry or nothing (a tmp/ file, or a msg/ file without an
 * envelope, which spool_open() removes). The envelope is only ever
 * replaced whole (tmp/, fsync, rename, fsync of env/).
 *
 * Every function here blocks on the disk: worker (store pool) threads
 * or start-up only, never an io_uring loop thread. spool_put() may run on
 * any number of threads at once (it only creates new names); the entries
 * themselves are read and changed by the queue runner alone.
 */
#ifndef RG_BACKEND_SPOOL_H
#define RG_BACKEND_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SPOOL_ID_LEN 20	    /* 8 hex seconds + 12 hex random */
#define SPOOL_ADDR_MAX 512  /* an envelope address, without <> */
#define SPOOL_REPLY_MAX 512 /* a recipient's last reply, kept for DSNs */
#define SPOOL_RCPTS_MAX 10000

struct spool;

/* What spool_put() queues. The message comes from exactly one of fd,
 * path or data. */
struct spool_msg {
	/* The local user who submitted it ("bob@example.org"), whose INBOX
	 * gets a DSN if it fails; NULL: nobody local (a DSN then goes to
	 * the sender through the spool). */
	const char *user;
	const char *sender;	  /* MAIL FROM without <>; "" = null */
	const char *const *rcpts; /* RCPT TO addresses without <> */
	size_t nrcpts;		  /* 1..SPOOL_RCPTS_MAX */
	const void *prefix;	  /* bytes sent before the message (a */
	size_t prefix_len;	  /* Received header with its CRLF), or 0 */
	int fd;			  /* message, read from offset 0 to EOF */
	const char *path;	  /* or a file to copy (when fd is -1) */
	const void *data;	  /* or bytes (when fd is -1 and path */
	size_t len;		  /* is NULL) */
};

/* Recipient states in the envelope. */
enum spool_rcpt_state {
	SPOOL_RCPT_PENDING = 0, /* not delivered yet: tried again */
	SPOOL_RCPT_SENT,	/* the smarthost took it (2xx) */
	SPOOL_RCPT_FAILED,	/* permanent failure or given up: DSN due */
	SPOOL_RCPT_BOUNCED,	/* failed and its DSN is written */
};

struct spool_rcpt {
	char *addr;
	enum spool_rcpt_state state;
	char status[16];		 /* RFC 3463 code: "5.1.1", or "" */
	char reply[SPOOL_REPLY_MAX + 1]; /* last reply/diagnostic, or "" */
};

/* One entry's envelope, as read by spool_load(). */
struct spool_entry {
	char id[SPOOL_ID_LEN + 1];
	char *user;   /* NULL: none */
	char *sender; /* "" = null sender */
	time_t arrival, next;
	unsigned attempts;
	struct spool_rcpt *rcpts;
	size_t nrcpts;
	uint64_t size; /* msg/<id> bytes (when loaded from disk) */
};

/* Open (and create, mode 0700) the spool at dir: make tmp/ msg/ env/,
 * remove tmp/ leftovers and msg/ files without an envelope. Start-up,
 * main thread. 0, or -1 with *error_r (static or per-thread storage). */
int spool_open(const char *dir, struct spool **sp_r, const char **error_r);
/* The same without the clean-up, for another process that only queues
 * while ringstore runs (the tests' rs_spool_put): its tmp/ files are
 * someone's writes in progress. */
int spool_attach(const char *dir, struct spool **sp_r, const char **error_r);
void spool_free(struct spool **sp); /* nulls *sp; NULL is a no-op */
const char *spool_dir(const struct spool *sp);

/* Queue a message durably (see the rule above) with every recipient
 * pending, next attempt now. On success writes the entry's id
 * (SPOOL_ID_LEN hex chars and a NUL) into id_r and returns 0; the
 * caller may answer 250 then. -1 with *error_r and errno (ENOSPC,
 * EDQUOT: the disk is full, answer 452 4.3.1; EINVAL: a bad address or
 * recipient count) and nothing left behind. Pool threads. */
int spool_put(struct spool *sp, const struct spool_msg *m, char *id_r,
    const char **error_r);

/* ---- for the queue runner (backend/relay.c) and tests ---- */

/* Call fn(arg) (on the putting thread) after every successful
 * spool_put(): the runner's relay_wake(), so a new entry goes out at
 * once rather than at the next scan. Set at start-up before any put;
 * fn NULL clears it. */
void spool_set_notify(struct spool *sp, void (*fn)(void *arg), void *arg);

/* Ids of every entry (env/ names), sorted, malloc'd array of
 * SPOOL_ID_LEN + 1 strings; *n_r entries. 0 or -1. */
int spool_list(struct spool *sp, char (**ids_r)[SPOOL_ID_LEN + 1], size_t *n_r,
    const char **error_r);

/* Read env/<id> into e (freed with spool_entry_free()). -1 with errno
 * ENOENT when the entry has gone, EINVAL when the file does not parse. */
int spool_load(struct spool *sp, const char *id, struct spool_entry *e,
    const char **error_r);
void spool_entry_free(struct spool_entry *e);

/* Parse an envelope file's bytes (what spool_load() reads): 0 or -1.
 * Strict: only what spool_entry_format() writes is taken, and no
 * address or reply with a control byte (they go into SMTP commands and
 * DSN fields). */
int spool_entry_parse(const char *p, size_t n, struct spool_entry *e);
/* The envelope file's bytes for e (malloc'd into *out_r). 0 or -1. */
int spool_entry_format(const struct spool_entry *e, char **out_r,
    size_t *len_r);

/* Open msg/<id> read-only: an fd, or -1 with errno. */
int spool_open_msg(struct spool *sp, const char *id);

/* Replace env/<id> with e (atomically, fsync'd). 0 or -1. */
int spool_update(struct spool *sp, const struct spool_entry *e,
    const char **error_r);

/* Remove the entry: env/<id> first (the entry is gone), then msg/<id>,
 * then fsync env/. 0 or -1. */
int spool_remove(struct spool *sp, const char *id, const char **error_r);

/* True if every recipient of e is SENT or BOUNCED. */
bool spool_entry_done(const struct spool_entry *e);

#endif
