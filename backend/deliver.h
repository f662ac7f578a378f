/*
 * deliver.h - local delivery of one received message to the INBOX of N
 * users (LMTP, and the submission intake for local domains), and the tmp
 * file a message is received into.
 *
 * The received message (struct deliver_msg) is an unlinked file
 * (O_TMPFILE) in a directory of the mail file system: it grows chunk by
 * chunk on a store-pool thread while the client sends it (smtp_txn.c),
 * never whole in memory, and it leaves nothing behind after a crash.
 *
 * Delivery (deliver_run(), on a store-pool thread) writes one copy per
 * recipient, each its own Maildir file (the prepended headers differ per
 * recipient, and a hard link would share one file between users and their
 * quotas): "Return-Path: <from>" and "Delivered-To: <rcpt as given>" (so
 * user+detail@domain keeps its detail there), then the message bytes,
 * through store/maildir.h's streamed delivery: tmp/ then fsync, link into
 * new/, fsync of the directory, UID. Only after that does the recipient's
 * result say 250: every 250 is on disk. A failure (full disk) aborts that
 * recipient's tmp file: nothing half-written is ever visible in new/.
 *
 * Results per recipient:
 *   250 2.1.5 / 2.0.0  delivered
 *   552 5.2.2          over the quota field of the user's passwd entry
 *                      (usage: the sizes of every message in the Maildir)
 *   452 4.3.1          ENOSPC / EDQUOT
 *   451 4.3.0          any other local error
 *
 * Everything here blocks: call it on the store pool only, never on a loop
 * thread (except deliver_msg_free() / deliver_rcpt_user() which do not).
 */
#ifndef RG_BACKEND_DELIVER_H
#define RG_BACKEND_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/smtp_reply.h"

struct deliver_msg;

/* Pool thread: a new, empty, unlinked message file in dir. 0, or -1
 * with errno and *error_r. */
int deliver_msg_open(const char *dir, struct deliver_msg **msg_r,
    const char **error_r);

/* Pool thread: append p[0..n). 0, or -1 with errno (ENOSPC...) and
 * *error_r; the message is then to be dropped. */
int deliver_msg_write(struct deliver_msg *msg, const void *p, size_t n,
    const char **error_r);

/* Pool thread: a new message file in dir holding prefix (NULL: none)
 * and then every byte of the file src (read with pread() from offset 0):
 * a copy with headers in front, or a content policy's stripped copy made
 * into a message. 0, or -1 with errno (ENOSPC...) and *error_r. */
int deliver_msg_copy(const char *dir, const char *prefix, int src,
    struct deliver_msg **msg_r, const char **error_r);

/* Bytes written so far. Any thread. */
uint64_t deliver_msg_size(const struct deliver_msg *msg);

/* The file (read it with pread(); do not close it). */
int deliver_msg_fd(const struct deliver_msg *msg);

/* Close and free; *msg NULLed; NULL is a no-op. Closing the last
 * reference to a big unlinked file frees its blocks, which can take a
 * moment: prefer a pool thread. */
void deliver_msg_free(struct deliver_msg **msg);

/* The Maildir user a recipient address stands for: "local@domain" with
 * the local part's "+detail" (from the first '+') dropped, lowercased,
 * into user[cap]. *detail_r (may be NULL) points into addr at the detail
 * after '+' or is NULL. 0, or -1 when it does not fit or is not of the
 * form local@domain. Any thread. */
int deliver_rcpt_user(const char *addr, size_t len, char *user, size_t cap,
    const char **detail_r);

/* One recipient of a delivery. */
struct deliver_rcpt {
	/* in */
	const char *user; /* Maildir user: "local@domain" */
	const char *addr; /* the RCPT address as given: Delivered-To */
	bool has_quota;
	uint64_t quota; /* bytes, when has_quota */
	/* out */
	struct smtp_reply reply; /* static texts */
	uint32_t uid;		 /* delivered: its UID in INBOX */
	int err;		 /* errno of a failure, 0 when delivered */
};

/* Result kinds (for metrics): from a deliver_rcpt's reply. */
enum deliver_result {
	DELIVER_OK = 0,
	DELIVER_QUOTA,	  /* 552 5.2.2 */
	DELIVER_FULL,	  /* 452 4.3.1 */
	DELIVER_TEMPFAIL, /* 451 4.3.0 */
	DELIVER_RESULTS,
};
enum deliver_result deliver_result_of(const struct deliver_rcpt *r);
const char *deliver_result_name(enum deliver_result res);

struct deliver_env {
	const char *mail_root; /* users in <root>/<domain>/<local> */
	/* the envelope sender for Return-Path ("" for <>) */
	const char *return_path;
	/* more header lines written after Delivered-To, each ending in
	 * CRLF (the submission intake's Received:); NULL: none */
	const char *headers;
};

/*
 * Pool thread: deliver msg (from offset 0) to every recipient's INBOX in
 * order, filling each one's reply, uid and err. Returns how many were
 * delivered.
 */
size_t deliver_run(const struct deliver_env *env, struct deliver_msg *msg,
    struct deliver_rcpt *rcpts, size_t n);

/* Pool thread: the bytes of every message in the Maildir at dir (all
 * folders, new/ and cur/, from the S= of each name or stat()), for the
 * quota. 0 or -1 with errno. */
int deliver_usage(const char *dir, uint64_t *bytes_r);

/* Pool thread: whether add more bytes keep the Maildir at dir within
 * quota. 0, or -1 with errno EDQUOT ("over quota") or the error that
 * stopped the count. */
int deliver_quota_check(const char *dir, uint64_t quota, uint64_t add,
    const char **error_r);

#endif
