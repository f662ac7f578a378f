/*
 * policy.h - content policy for what ringstore accepts (submission intake
 * and LMTP): dangerous attachments refused or stripped, and an optional
 * virus scan through clamd.
 *
 * The caller has the whole message in a file (the spooled DATA) and runs
 * policy_run() on a store pool thread: it reads the file in bounded chunks
 * through the streaming MIME walk (proto/mime_walk.h), decides, and under
 * the strip mode writes a rewritten copy; then, if clamd is configured, it
 * streams the file that would be delivered to clamd (backend/clamd.h).
 * Memory stays bounded whatever the message size. It blocks (file I/O,
 * clamd's socket with timeouts), so it must never run on a loop thread.
 *
 * Counting and logging happen back on the caller's loop thread:
 * policy_account() (below) counts ringstore_policy_* by verdict and logs
 * one line; a caller with counters of its own can use
 * policy_verdict_name() / policy_reason_name() and r->detail instead.
 *
 * Typical use (in the job's run(), then done()):
 *
 *	policy_result_init(&job->pr);	(a PASS, no copy)
 *	if (policy_enabled(&cf->policy))
 *		policy_run(&cf->policy, msg_fd, spool_dir, &job->pr);
 *	...
 *	policy_account(&srv->policy_m, shard, sid, "lmtp", &job->pr);
 *	switch (job->pr.verdict) {
 *	case POLICY_PASS:	deliver msg_fd
 *	case POLICY_STRIPPED:	deliver job->pr.fd, then
 *				policy_result_discard(&job->pr)
 *	default:		reply job->pr.reply (554 / 451) to each
 *				recipient (LMTP) or to DATA (submission)
 *	}
 */
#ifndef RG_BACKEND_POLICY_H
#define RG_BACKEND_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "proto/smtp_reply.h"

/* attachments = "off" | "reject" | "strip" */
enum policy_attach_mode {
	POLICY_ATTACH_OFF = 0,
	POLICY_ATTACH_REJECT,
	POLICY_ATTACH_STRIP,
};

/* clamd_fail = "open" | "closed": what an unreachable, slow or refusing
 * clamd means (open: deliver unscanned; closed: 451 4.7.1). */
enum policy_clamd_fail {
	POLICY_CLAMD_OPEN = 0,
	POLICY_CLAMD_CLOSED,
};

/* mime_limit = "reject" | "tempfail" | "accept": a message the MIME walk
 * cannot finish within its limits (nesting, header size, parts, boundary
 * length). accept delivers it unchecked except by clamd. */
enum policy_limit_action {
	POLICY_LIMIT_REJECT = 0,
	POLICY_LIMIT_TEMPFAIL,
	POLICY_LIMIT_ACCEPT,
};

/*
 * The `policy { }` config group (read-only after start-up, shared by the
 * pool threads). Extensions are compared case-insensitively with the last
 * extension of a part's file name ("name.pdf.exe" is ".exe"), written with
 * or without the dot; types are compared case-insensitively with the
 * part's "type/subtype".
 */
struct content_policy {
	int attachments; /* enum policy_attach_mode, default off */
	char **extensions;
	unsigned nextensions;
	char **types;
	unsigned ntypes;
	char *clamd;	/* NULL: no scan; "/unix/socket" or "host:port" */
	int clamd_fail; /* enum policy_clamd_fail, default closed */
	uint64_t clamd_timeout; /* ms, per connect/send/reply wait */
	uint64_t clamd_max;	/* bytes: clamd's StreamMaxLength (25M) */
	int mime_limit;		/* enum policy_limit_action */
	int64_t max_depth;	/* multipart/message nesting (20) */
	int64_t max_parts;	/* parts of one message (1000) */
	uint64_t max_header;	/* one part's header block (64k) */
	struct cfg_loc loc;
};

/* Fields of struct content_policy, for a CFG_GROUP called "policy". */
extern const struct cfg_field policy_conf_fields[];

/* Cross-field checks after cfg_load() (the clamd address form). 0, or -1
 * with err filled (file:line of the group). */
int policy_conf_check(const struct content_policy *cp, struct cfg_error *err);

/* Whether policy_run() has anything to do (attachments not off, or a
 * clamd configured); callers skip the job when false. */
bool policy_enabled(const struct content_policy *cp);

enum policy_verdict {
	POLICY_PASS = 0, /* deliver the input file as it is */
	POLICY_REJECT,	 /* 554 5.7.1 (attachment) or 554 5.6.0 (limit) */
	POLICY_STRIPPED, /* deliver r->fd instead of the input */
	POLICY_VIRUS,	 /* 554 5.7.1 virus found: <signature> */
	POLICY_TEMPFAIL, /* 451 4.x.x: clamd down (fail-closed), I/O error */
	POLICY_VERDICTS
};

/* Why, for logs and metrics labels; one per verdict path. */
enum policy_reason {
	POLICY_R_NONE = 0,
	POLICY_R_EXTENSION,	 /* a part's file name matched */
	POLICY_R_TYPE,		 /* a part's content type matched */
	POLICY_R_VIRUS,		 /* clamd found something */
	POLICY_R_MIME_LIMIT,	 /* the walk hit a limit */
	POLICY_R_CLAMD_ERROR,	 /* clamd unreachable/timeout/refused */
	POLICY_R_CLAMD_TOO_BIG,	 /* bigger than clamd_max / size limit */
	POLICY_R_IO,		 /* reading the input or writing the copy */
	POLICY_R_ROOT_ATTACHMENT /* strip mode, but the message itself is
				  * the attachment: rejected */
};

#define POLICY_REPLY_MAX 320

struct policy_result {
	enum policy_verdict verdict;
	enum policy_reason reason;
	/* REJECT/VIRUS/TEMPFAIL: the whole reply line without CRLF, e.g.
	 * `554 5.7.1 attachment "x.exe" refused by policy`; names are
	 * sanitised (printable ASCII, quotes dropped, truncated). "" else. */
	char reply[POLICY_REPLY_MAX];
	/* for the caller's log line: first refused name/type, signature or
	 * error text ("" if none); same sanitising as reply */
	char detail[256];
	/* STRIPPED: an open fd (at offset 0) of the rewritten message
	 * and its path in the directory the caller gave; the caller
	 * delivers from fd, then closes it and unlinks path. -1 / "" else
	 * (policy_run() removes its copy on every other verdict). */
	int fd;
	char path[4096];
	uint64_t size;	  /* STRIPPED: the copy's size in bytes */
	unsigned parts;	  /* leaf parts the walk reported */
	unsigned refused; /* parts refused (stripped or the first rejected) */
	bool scanned;	  /* clamd answered for this message */
	bool unscanned;	  /* clamd configured but failed open: delivered
			   * without a scan (count it) */
};

/*
 * Run the policy on the message in fd (read with pread from offset 0 to
 * EOF; the file position is not used, fd stays the caller's). tmpdir is
 * where the stripped copy is created (same file system as the delivery,
 * e.g. the spool or the user's Maildir tmp/). Fills *r and returns its
 * verdict. Never fails otherwise: read/write errors become TEMPFAIL with
 * `451 4.3.0`. Blocking; pool threads only. Thread-safe for one cp shared
 * by many threads.
 */
enum policy_verdict policy_run(const struct content_policy *cp, int fd,
    const char *tmpdir, struct policy_result *r);

/* "pass", "reject", "stripped", "virus", "tempfail" (metric labels). */
const char *policy_verdict_name(enum policy_verdict v);
/* "none", "extension", "type", "virus", "mime_limit", "clamd_error",
 * "clamd_too_big", "io", "root_attachment". */
const char *policy_reason_name(enum policy_reason why);

/* A PASS with nothing to release (fd -1): for a message the policy is
 * not run on, so the same code can account and discard it. */
void policy_result_init(struct policy_result *r);

/* Release r's copy if the caller decides not to use it (closes fd,
 * unlinks path); safe on any result, and twice. */
void policy_result_discard(struct policy_result *r);

/* Split a reply line (r->reply: "554 5.7.1 text") in place for a session
 * to answer with: *rep points into line (the space after the enhanced
 * code becomes a NUL). 0, or -1 with line and *rep untouched when the
 * line does not start with a 4xx/5xx code and a space. */
int policy_reply_split(char *line, struct smtp_reply *rep);

/*
 * Optional shared accounting for the services that run the policy
 * (submission, LMTP): ringstore_policy_verdicts_total{service,verdict}
 * and ringstore_policy_unscanned_total{service} (delivered without a
 * clamd answer under fail-open).
 */
struct metrics;
struct metrics_shard;

struct policy_metrics {
	int verdict[POLICY_VERDICTS];
	int unscanned;
};

/* Register the counters for service ("submission", "lmtp") at start-up.
 * 0, or -1 if the registry refused one. */
int policy_metrics_init(struct metrics *m, const char *service,
    struct policy_metrics *pm);

/*
 * Count r on the calling loop thread's shard (call it from the job's
 * done(), not on the pool thread) and log one line, event=policy.verdict
 * with service, verdict, reason, detail (quoted), parts and refused:
 * info for reject/stripped/virus, warn for tempfail and for an unscanned
 * pass; a plain pass is counted but not logged.
 */
void policy_account(const struct policy_metrics *pm,
    struct metrics_shard *shard, uint64_t sid, const char *service,
    const struct policy_result *r);

#endif
