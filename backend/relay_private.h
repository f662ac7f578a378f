/*
 * relay_private.h - what the queue runner's files share: the DSN writer
 * (relay_dsn.c), which relay.c calls on a store-pool thread and the unit
 * tests call directly.
 */
#ifndef RG_BACKEND_RELAY_PRIVATE_H
#define RG_BACKEND_RELAY_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "backend/spool.h"
#include "core/pool.h"
#include "core/timer.h"
#include "proto/smtp_data.h"
#include "proto/smtp_resp.h"

struct conn;
struct fd_watch;
struct loop;
struct metrics;
struct tls_client;

/* At most this much of the original message's header is read for the
 * DSN's text/rfc822-headers part. */
#define RELAY_DSN_HEADERS_MAX (64u << 10)

struct relay_dsn {
	const char *reporting; /* our host name: Reporting-MTA, From */
	const char *remote;    /* the smarthost's name: Remote-MTA */
	time_t now;
};

/*
 * An RFC 3464 delivery status notification for the recipients of e in
 * state SPOOL_RCPT_FAILED, addressed to e->sender, from MAILER-DAEMON:
 * multipart/report (report-type=delivery-status) with a human-readable
 * part, a message/delivery-status part (Reporting-MTA, Arrival-Date; per
 * recipient Final-Recipient, Action: failed, Status, Remote-MTA and
 * Diagnostic-Code when the smarthost answered) and the original header
 * (hdr[0..hlen), any line ends; written with CRLF) as
 * text/rfc822-headers. CRLF line ends throughout. *out_r is malloc'd.
 * 0, or -1 when out of memory.
 */
int relay_dsn_build(const struct spool_entry *e, const struct relay_dsn *d,
    const char *hdr, size_t hlen, char **out_r, size_t *len_r);

/* The header of a message: hdr[0..return) up to and without the empty
 * line that ends it (or up to the last whole line when there is none). */
size_t relay_dsn_header_len(const char *p, size_t n);

/* ---- the runner's state (relay.c) and one attempt (relay_client.c) ---- */

#define RELAY_FLOW 0x72656c6179ull /* "relay": its own fairness flow */
#define RELAY_CHUNK (64u << 10)
#define RELAY_ADDRS 4

struct relay_metrics {
	int queued;
	int att_sent, att_deferred, att_failed;
	int delivered, bounced;
	int dsn_inbox, dsn_spool, dsn_none;
};

struct attempt;

struct relay {
	const struct relay_conf *conf;
	char *mail_root;
	struct spool *spool;
	struct pool *store;
	struct metrics *metrics;
	struct tls_client *tls; /* NULL: starttls off */
	char host[256], port[8], helo[256];
	char *auth_plain; /* "AUTH PLAIN <base64>\r\n", or NULL */
	int wake_fd;	  /* eventfd relay_wake() writes */
	struct relay_metrics m;

	/* the runner's loop thread only */
	struct loop *loop;
	struct pool_outbox *ob;
	struct fd_watch *wake;
	struct timer timer;
	bool started, stopping, scanning, rescan;
	struct attempt *attempts;
	unsigned nattempts;
	uint64_t next_sid;
};

enum astate {
	A_LOAD,
	A_CONNECT,
	A_GREETING,
	A_EHLO,
	A_STARTTLS,
	A_TLS,
	A_EHLO2,
	A_AUTH,
	A_MAIL,
	A_RCPT,
	A_DATA,
	A_BODY,
	A_DOT,
	A_QUIT,
	A_UPDATE,
};

struct chunk_job {
	struct pool_job base;
	struct attempt *a;
	ssize_t n; /* bytes read, or -errno */
	char buf[RELAY_CHUNK];
};

struct attempt {
	struct relay *r;
	struct attempt *next;
	uint64_t sid;
	enum astate st;
	char id[SPOOL_ID_LEN + 1];
	struct spool_entry e;
	bool loaded;
	int fd; /* msg/<id> */
	struct sockaddr_storage addr[RELAY_ADDRS];
	socklen_t alen[RELAY_ADDRS];
	unsigned naddr, ai;
	struct conn *c;
	struct smtp_resp resp;
	size_t ri; /* the recipient the RCPT out is for */
	bool *acc; /* accepted in this transaction, by recipient */
	unsigned nacc;
	bool tls, smtp; /* TLS is on; an SMTP session took place */
	unsigned ext;	/* enum smtp_resp_ext of the last EHLO */
	bool jobs;	/* a pool job is out */
	bool wait_drain, closed;
	bool gone; /* the entry was removed meanwhile */
	uint64_t off;
	struct smtp_stuff stuff;
	struct chunk_job *chunk;
	char diag[SPOOL_REPLY_MAX + 1]; /* why the session failed */
	char last[SPOOL_REPLY_MAX + 1]; /* the last reply, for logs */
	/* the update's outcome, for logs and metrics */
	unsigned n_sent, n_bounced, n_pending;
	const char *dsn;
	char error[128];
};

/* relay.c: queue a job of attempt a (admitted: part of work already
 * started, not held to the queue limit). 0 or -1. */
int relay_submit(struct attempt *a, struct pool_job *j, pool_run_fn *run,
    pool_done_fn *done, bool admitted);
/* relay.c: the SMTP part is over; write the outcome to the spool. */
void relay_finish(struct attempt *a);
/* relay.c: free a once no job is out and its connection has gone. */
void relay_attempt_release(struct attempt *a);

/* relay_client.c: connect to the smarthost's address a->ai and speak
 * SMTP; ends in relay_finish(). */
void relay_client_connect(struct attempt *a);
/* relay_client.c: the session cannot go on; every pending recipient gets
 * why (as a permanent failure when perm). */
void relay_client_fail(struct attempt *a, bool perm, const char *why);

#endif
