/*
 * policy.c - the content policy (backend/policy.h): the `policy { }`
 * config group, and policy_run() on a store pool thread.
 *
 * policy_run() makes at most three passes over the message file, each in
 * CHUNK-sized preads: the MIME walk (proto/mime_walk.h) deciding which
 * leaves are refused; under the strip mode a copy where each refused leaf
 * (its header and body, [hdr_off, end_off)) is replaced by a short
 * text/plain part and every other byte is copied unchanged; and the clamd
 * scan of whatever would be delivered. Memory: one chunk, the walk's
 * buffers and the list of refused parts (at most max_parts entries).
 *
 * Must never: run on a loop thread, modify the input file, or leave a
 * copy behind on any verdict other than STRIPPED.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/clamd.h"
#include "backend/policy.h"
#include "core/log.h"
#include "core/metrics.h"
#include "proto/mime_walk.h"
#include "store/maildir.h"

#define CHUNK (64 * 1024)
#define SHOWN_MAX 80 /* bytes of a name or type shown in a reply */

/* One refused leaf, kept for the strip pass. */
struct refusal {
	uint64_t hdr_off, end_off;
	char name[SHOWN_MAX + 4];
	char type[SHOWN_MAX + 4];
};

struct run {
	const struct content_policy *cp;
	struct policy_result *r;
	struct refusal *list;
	unsigned n, cap;
	bool oom;
};

/* deciding */
static int on_leaf(void *ctx, const struct mime_walk_part *p);
static enum policy_reason refused(const struct content_policy *cp,
    const struct mime_walk_part *p, unsigned *name_r);
static bool ext_listed(const struct content_policy *cp, const char *s,
    size_t len);
static void shown(char *dst, size_t cap, const char *src, size_t len);
static enum policy_verdict set(struct policy_result *r, enum policy_verdict v,
    enum policy_reason why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* passes over the file */
static int walk_file(struct run *run, int fd, char *buf, bool *crlf_r,
    enum mime_walk_status *st_r);
static int strip_copy(struct run *run, int fd, const char *tmpdir, bool crlf,
    char *buf);
static int copy_range(int in, int out, uint64_t from, uint64_t to, char *buf,
    uint64_t *written);
static enum policy_verdict scan(const struct content_policy *cp, int fd,
    struct policy_result *r);

static const char *const attach_modes[] = { "off", "reject", "strip", NULL };
static const char *const fail_modes[] = { "open", "closed", NULL };
static const char *const limit_actions[] = { "reject", "tempfail", "accept",
	NULL };

#define F(field) offsetof(struct content_policy, field)

const struct cfg_field policy_conf_fields[] = {
	{ "", CFG_LOC, F(loc) },
	{ "attachments", CFG_ENUM, F(attachments), 0, "off",
	    .choices = attach_modes,
	    .hint = "what a part named or typed as listed gets: refused with "
		    "554 5.7.1 (reject) or replaced by a note (strip)" },
	{ "extensions", CFG_STRLIST, F(extensions), 0,
	    ".exe .scr .pif .vbs .js .bat .cmd .com .jar .msi .ps1 .vbe "
	    ".jse .wsf .wsh .hta .cpl .lnk .reg .dll",
	    .count_offset = F(nextensions),
	    .hint = "file name extensions (the last one counts), like "
		    "[ \".exe\", \".js\" ]" },
	{ "types", CFG_STRLIST, F(types), 0,
	    "application/x-msdownload application/x-msdos-program "
	    "application/x-dosexec application/hta "
	    "application/x-ms-shortcut application/x-msi "
	    "application/x-ms-installer application/vnd.microsoft.portable-"
	    "executable",
	    .count_offset = F(ntypes),
	    .hint = "content types, like [ \"application/x-msdownload\" ]" },
	{ "clamd", CFG_STRING, F(clamd), 0,
	    .hint = "clamd's socket: \"/run/clamav/clamd.ctl\" or "
		    "\"127.0.0.1:3310\"" },
	{ "clamd_fail", CFG_ENUM, F(clamd_fail), 0, "closed",
	    .choices = fail_modes,
	    .hint = "clamd down or too slow: deliver unscanned (open) or "
		    "451 4.7.1 (closed)" },
	{ "clamd_timeout", CFG_DURATION, F(clamd_timeout), 0, "10s", 100,
	    600000 },
	{ "clamd_max", CFG_SIZE, F(clamd_max), 0, "25M", 1024, (int64_t)4 << 30,
	    .hint = "clamd's StreamMaxLength: bigger messages count as a "
		    "clamd failure" },
	{ "mime_limit", CFG_ENUM, F(mime_limit), 0, "reject",
	    .choices = limit_actions,
	    .hint = "a message past the MIME limits: 554 5.6.0 (reject), "
		    "451 4.6.0 (tempfail) or delivered unchecked (accept)" },
	{ "max_depth", CFG_INT, F(max_depth), 0, "20", 1,
	    MIME_WALK_DEPTH_HARD },
	{ "max_parts", CFG_INT, F(max_parts), 0, "1000", 1, 100000 },
	{ "max_header", CFG_SIZE, F(max_header), 0, "64k", 1024, 1 << 20 },
	{ NULL },
};

int
policy_conf_check(const struct content_policy *cp, struct cfg_error *err)
{
	struct clamd_addr a;

	if (cp->clamd != NULL && clamd_addr_parse(cp->clamd, &a) == -1) {
		cfg_error_at(err, &cp->loc,
		    "policy.clamd = \"%s\": must be a unix socket path "
		    "(\"/run/clamav/clamd.ctl\") or a numeric host:port "
		    "(\"127.0.0.1:3310\")",
		    cp->clamd);
		return -1;
	}
	for (unsigned k = 0; k < cp->nextensions; k++) {
		const char *e = cp->extensions[k];

		if (e[e[0] == '.'] == '\0' || strchr(e + 1, '.') != NULL) {
			cfg_error_at(err, &cp->loc,
			    "policy.extensions: \"%s\" is not one extension "
			    "(like \".exe\")",
			    e);
			return -1;
		}
	}
	for (unsigned k = 0; k < cp->ntypes; k++) {
		if (strchr(cp->types[k], '/') == NULL) {
			cfg_error_at(err, &cp->loc,
			    "policy.types: \"%s\" is not type/subtype",
			    cp->types[k]);
			return -1;
		}
	}
	return 0;
}

bool
policy_enabled(const struct content_policy *cp)
{
	return cp->attachments != POLICY_ATTACH_OFF || cp->clamd != NULL;
}

const char *
policy_verdict_name(enum policy_verdict v)
{
	static const char *const names[POLICY_VERDICTS] = { "pass", "reject",
		"stripped", "virus", "tempfail" };

	return (unsigned)v < POLICY_VERDICTS ? names[v] : "unknown";
}

const char *
policy_reason_name(enum policy_reason why)
{
	static const char *const names[] = { "none", "extension", "type",
		"virus", "mime_limit", "clamd_error", "clamd_too_big", "io",
		"root_attachment" };

	return (unsigned)why < sizeof(names) / sizeof(names[0]) ? names[why] :
								  "unknown";
}

void
policy_result_init(struct policy_result *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

void
policy_result_discard(struct policy_result *r)
{
	if (r->fd != -1)
		close(r->fd);
	r->fd = -1;
	if (r->path[0] != '\0')
		(void)unlink(r->path);
	r->path[0] = '\0';
	r->size = 0;
}

int
policy_reply_split(char *line, struct smtp_reply *rep)
{
	char *end, *sp;
	unsigned long code = strtoul(line, &end, 10);

	if (code < 400 || code > 599 || *end != ' ')
		return -1;
	rep->code = (unsigned short)code;
	rep->enh = end + 1;
	if ((sp = strchr(end + 1, ' ')) != NULL) {
		*sp = '\0';
		rep->text = sp + 1;
	} else {
		rep->text = "";
	}
	return 0;
}

enum policy_verdict
policy_run(const struct content_policy *cp, int fd, const char *tmpdir,
    struct policy_result *r)
{
	struct run run = { cp, r, NULL, 0, 0, false };
	enum mime_walk_status st = MIME_WALK_OK;
	enum policy_verdict v = POLICY_PASS;
	char *buf;
	bool crlf = true;

	policy_result_init(r);
	buf = malloc(CHUNK);
	if (buf == NULL)
		return set(r, POLICY_TEMPFAIL, POLICY_R_IO,
		    "451 4.3.0 content check failed, try again later");
	if (cp->attachments != POLICY_ATTACH_OFF) {
		if (walk_file(&run, fd, buf, &crlf, &st) == -1 || run.oom) {
			v = set(r, POLICY_TEMPFAIL, POLICY_R_IO,
			    "451 4.3.0 content check failed, try again later");
			goto out;
		}
		if (st != MIME_WALK_OK && st != MIME_WALK_STOPPED) {
			snprintf(r->detail, sizeof(r->detail), "mime limit: %s",
			    mime_walk_status_name(st));
			if (cp->mime_limit == POLICY_LIMIT_REJECT) {
				v = set(r, POLICY_REJECT, POLICY_R_MIME_LIMIT,
				    "554 5.6.0 message structure refused (%s "
				    "limit)",
				    mime_walk_status_name(st));
				goto out;
			}
			if (cp->mime_limit == POLICY_LIMIT_TEMPFAIL) {
				v = set(r, POLICY_TEMPFAIL, POLICY_R_MIME_LIMIT,
				    "451 4.6.0 message structure over a limit "
				    "(%s), try again later",
				    mime_walk_status_name(st));
				goto out;
			}
			run.n = 0; /* accept: delivered as it is */
		} else if (r->verdict == POLICY_REJECT) {
			v = POLICY_REJECT;
			goto out;
		}
		if (run.n > 0) {
			if (strip_copy(&run, fd, tmpdir, crlf, buf) == -1) {
				policy_result_discard(r);
				v = set(r, POLICY_TEMPFAIL, POLICY_R_IO,
				    "451 4.3.0 content check failed, try "
				    "again later");
				goto out;
			}
			v = r->verdict = POLICY_STRIPPED;
			r->reply[0] = '\0';
		}
	}
	if (cp->clamd != NULL) {
		enum policy_verdict sv = scan(cp, r->fd != -1 ? r->fd : fd, r);

		if (sv != POLICY_PASS) {
			policy_result_discard(r);
			v = sv;
		}
	}
out:
	free(buf);
	free(run.list);
	r->verdict = v;
	return v;
}

/* The walk's callback: note a refused leaf, stop at the first under the
 * reject mode (or when the message itself is the attachment). */
static int
on_leaf(void *ctx, const struct mime_walk_part *p)
{
	struct run *run = ctx;
	struct policy_result *r = run->r;
	unsigned ni = 0;
	enum policy_reason why = refused(run->cp, p, &ni);
	char name[SHOWN_MAX + 4], type[SHOWN_MAX + 4];

	r->parts++;
	if (why == POLICY_R_NONE)
		return 0;
	r->refused++;
	shown(name, sizeof(name), p->nnames > 0 ? p->names[ni].s : "",
	    p->nnames > 0 ? p->names[ni].len : 0);
	shown(type, sizeof(type), p->type, strlen(p->type));
	if (r->refused == 1)
		snprintf(r->detail, sizeof(r->detail), "%s%s%s",
		    name[0] != '\0' ? name : "", name[0] != '\0' ? " " : "",
		    type);
	if (run->cp->attachments == POLICY_ATTACH_REJECT || p->depth == 0) {
		if (name[0] != '\0')
			set(r, POLICY_REJECT,
			    p->depth == 0 &&
				    run->cp->attachments ==
					POLICY_ATTACH_STRIP ?
				POLICY_R_ROOT_ATTACHMENT :
				why,
			    "554 5.7.1 attachment \"%s\" refused by policy",
			    name);
		else
			set(r, POLICY_REJECT,
			    p->depth == 0 &&
				    run->cp->attachments ==
					POLICY_ATTACH_STRIP ?
				POLICY_R_ROOT_ATTACHMENT :
				why,
			    "554 5.7.1 attachment of type %s refused by "
			    "policy",
			    type);
		return -1;
	}
	if (run->n == run->cap) {
		unsigned cap = run->cap == 0 ? 8 : run->cap * 2;
		struct refusal *l = realloc(run->list, cap * sizeof(*l));

		if (l == NULL) {
			run->oom = true;
			return -1;
		}
		run->list = l;
		run->cap = cap;
	}
	run->list[run->n].hdr_off = p->hdr_off;
	run->list[run->n].end_off = p->end_off;
	memcpy(run->list[run->n].name, name, sizeof(name));
	memcpy(run->list[run->n].type, type, sizeof(type));
	run->n++;
	if (r->reason == POLICY_R_NONE)
		r->reason = why;
	return 0;
}

/*
 * Why p is refused (NONE if it is not); *name_r: the index of the name
 * that matched (0 for a type match). Each name is looked at whole and cut
 * at its first NUL, with trailing dots and spaces dropped (Windows drops
 * them too: "x.exe." opens as "x.exe").
 */
static enum policy_reason
refused(const struct content_policy *cp, const struct mime_walk_part *p,
    unsigned *name_r)
{
	for (unsigned k = 0; k < p->nnames; k++) {
		const char *s = p->names[k].s;
		size_t len = p->names[k].len;
		const char *nul = memchr(s, '\0', len);

		if (ext_listed(cp, s, len) ||
		    (nul != NULL && ext_listed(cp, s, (size_t)(nul - s)))) {
			*name_r = k;
			return POLICY_R_EXTENSION;
		}
	}
	*name_r = 0;
	for (unsigned k = 0; k < cp->ntypes; k++) {
		if (strcasecmp(cp->types[k], p->type) == 0)
			return POLICY_R_TYPE;
	}
	return POLICY_R_NONE;
}

static bool
ext_listed(const struct content_policy *cp, const char *s, size_t len)
{
	const char *ext;
	size_t elen;

	while (len > 0 &&
	    (s[len - 1] == '.' || s[len - 1] == ' ' || s[len - 1] == '\t' ||
		s[len - 1] == '"'))
		len--;
	ext = memrchr(s, '.', len);
	if (ext == NULL)
		return false;
	ext++;
	elen = len - (size_t)(ext - s);
	for (unsigned k = 0; k < cp->nextensions; k++) {
		const char *e = cp->extensions[k];

		e += e[0] == '.';
		if (strlen(e) == elen && strncasecmp(e, ext, elen) == 0)
			return true;
	}
	return false;
}

/* What a reply or a note may show of a name: printable ASCII without
 * quotes or backslashes, cut to SHOWN_MAX with "...". */
static void
shown(char *dst, size_t cap, const char *src, size_t len)
{
	size_t n = 0;

	for (size_t k = 0; k < len && n + 1 < cap; k++) {
		unsigned char c = (unsigned char)src[k];

		if (n == SHOWN_MAX) {
			memcpy(dst + n, "...", 3);
			n += 3;
			break;
		}
		dst[n++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ?
		    (char)c :
		    '?';
	}
	dst[n] = '\0';
}

static enum policy_verdict
set(struct policy_result *r, enum policy_verdict v, enum policy_reason why,
    const char *fmt, ...)
{
	va_list ap;

	r->verdict = v;
	r->reason = why;
	va_start(ap, fmt);
	vsnprintf(r->reply, sizeof(r->reply), fmt, ap);
	va_end(ap);
	return v;
}

/* Pass 1: the MIME walk over the file. -1 on a read or allocation error;
 * the walk's end state in *st_r; *crlf_r: whether the first line ends in
 * CR LF (the notes written by the strip pass follow it). */
static int
walk_file(struct run *run, int fd, char *buf, bool *crlf_r,
    enum mime_walk_status *st_r)
{
	const struct content_policy *cp = run->cp;
	struct mime_walk_limits lim = { (unsigned)cp->max_depth,
		(unsigned)cp->max_parts, (size_t)cp->max_header, 0 };
	struct mime_walk *w = mime_walk_new(&lim, on_leaf, run);
	uint64_t off = 0;
	bool first = true;
	ssize_t n;

	if (w == NULL)
		return -1;
	for (;;) {
		n = pread(fd, buf, CHUNK, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (first) {
			const char *lf = memchr(buf, '\n', (size_t)n);

			*crlf_r = lf == NULL || (lf > buf && lf[-1] == '\r');
			first = false;
		}
		off += (uint64_t)n;
		if (mime_walk_feed(w, buf, (size_t)n) == -1)
			break;
	}
	if (n == 0)
		(void)mime_walk_finish(w);
	*st_r = mime_walk_status(w);
	mime_walk_free(&w);
	return n == -1 ? -1 : 0;
}

/* Pass 2: the copy with each refused leaf replaced by a note. */
static int
strip_copy(struct run *run, int fd, const char *tmpdir, bool crlf, char *buf)
{
	struct policy_result *r = run->r;
	const char *eol = crlf ? "\r\n" : "\n";
	char note[512];
	uint64_t pos = 0;
	struct stat st;
	int out, len;

	if (fstat(fd, &st) == -1)
		return -1;
	len = snprintf(r->path, sizeof(r->path), "%s/policy.XXXXXX", tmpdir);
	if (len < 0 || (size_t)len >= sizeof(r->path)) {
		r->path[0] = '\0';
		return -1;
	}
	out = mkostemp(r->path, O_CLOEXEC);
	if (out == -1) {
		r->path[0] = '\0';
		return -1;
	}
	r->fd = out;
	for (unsigned k = 0; k < run->n; k++) {
		const struct refusal *f = &run->list[k];
		bool at_end = f->end_off >= (uint64_t)st.st_size;

		if (copy_range(fd, out, pos, f->hdr_off, buf, &r->size) == -1)
			return -1;
		len = snprintf(note, sizeof(note),
		    "Content-Type: text/plain; charset=us-ascii%s"
		    "Content-Disposition: inline%s"
		    "Content-Transfer-Encoding: 7bit%s%s"
		    "The attachment \"%s\" (%s) was removed by the mail "
		    "server's content policy.%s",
		    eol, eol, eol, eol, f->name[0] != '\0' ? f->name : "",
		    f->type, at_end ? eol : "");
		if (len < 0 || (size_t)len >= sizeof(note) ||
		    maildir_write_all(out, note, (size_t)len) == -1)
			return -1;
		r->size += (uint64_t)len;
		pos = f->end_off;
	}
	if (copy_range(fd, out, pos, UINT64_MAX, buf, &r->size) == -1 ||
	    lseek(out, 0, SEEK_SET) == -1)
		return -1;
	return 0;
}

/* in's bytes [from, to) (to past EOF: up to EOF) appended to out. */
static int
copy_range(int in, int out, uint64_t from, uint64_t to, char *buf,
    uint64_t *written)
{
	while (from < to) {
		size_t want = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
		ssize_t n = pread(in, buf, want, (off_t)from);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		if (maildir_write_all(out, buf, (size_t)n) == -1)
			return -1;
		from += (uint64_t)n;
		*written += (uint64_t)n;
	}
	return 0;
}

/* Pass 3: clamd over what would be delivered. PASS also when clamd
 * failed under fail-open (r->unscanned says so). */
static enum policy_verdict
scan(const struct content_policy *cp, int fd, struct policy_result *r)
{
	struct clamd_addr a;
	struct clamd_result cr;
	enum clamd_rc rc;
	enum policy_reason why;

	if (clamd_addr_parse(cp->clamd, &a) == -1) {
		rc = CLAMD_ERROR;
		snprintf(cr.error, sizeof(cr.error), "bad clamd address");
	} else {
		rc = clamd_scan_fd(&a, cp->clamd_timeout, fd, cp->clamd_max,
		    &cr);
	}
	switch (rc) {
	case CLAMD_CLEAN:
		r->scanned = true;
		return POLICY_PASS;
	case CLAMD_FOUND:
		r->scanned = true;
		snprintf(r->detail, sizeof(r->detail), "%s", cr.sig);
		return set(r, POLICY_VIRUS, POLICY_R_VIRUS,
		    "554 5.7.1 virus found: %s", cr.sig);
	case CLAMD_ERROR:
	case CLAMD_TOO_BIG:
		break;
	}
	why = rc == CLAMD_TOO_BIG ? POLICY_R_CLAMD_TOO_BIG :
				    POLICY_R_CLAMD_ERROR;
	snprintf(r->detail, sizeof(r->detail), "clamd: %s", cr.error);
	if (cp->clamd_fail == POLICY_CLAMD_OPEN) {
		r->unscanned = true;
		if (r->reason == POLICY_R_NONE)
			r->reason = why;
		return POLICY_PASS;
	}
	return set(r, POLICY_TEMPFAIL, why,
	    "451 4.7.1 virus scanner unavailable, try again later");
}

int
policy_metrics_init(struct metrics *m, const char *service,
    struct policy_metrics *pm)
{
	char labels[128];

	for (unsigned v = 0; v < POLICY_VERDICTS; v++) {
		snprintf(labels, sizeof(labels),
		    "service=\"%s\",verdict=\"%s\"", service,
		    policy_verdict_name((enum policy_verdict)v));
		pm->verdict[v] = metrics_counter(m, "policy_verdicts_total",
		    "Messages checked by the content policy, by verdict.",
		    labels);
		if (pm->verdict[v] < 0)
			return -1;
	}
	snprintf(labels, sizeof(labels), "service=\"%s\"", service);
	pm->unscanned = metrics_counter(m, "policy_unscanned_total",
	    "Messages delivered without a clamd answer (fail-open).", labels);
	return pm->unscanned < 0 ? -1 : 0;
}

void
policy_account(const struct policy_metrics *pm, struct metrics_shard *shard,
    uint64_t sid, const char *service, const struct policy_result *r)
{
	char detail[300];

	if ((unsigned)r->verdict < POLICY_VERDICTS)
		metrics_add(shard, pm->verdict[r->verdict], 1);
	if (r->unscanned)
		metrics_add(shard, pm->unscanned, 1);
	if (r->verdict == POLICY_PASS && !r->unscanned)
		return;
	log_event(r->verdict == POLICY_TEMPFAIL || r->unscanned ? LL_WARN :
								  LL_INFO,
	    sid, "policy.verdict",
	    "service=%s verdict=%s reason=%s detail=%s parts=%u refused=%u",
	    service, policy_verdict_name(r->verdict),
	    policy_reason_name(r->reason),
	    log_quote(detail, sizeof(detail), r->detail, (size_t)-1), r->parts,
	    r->refused);
}
