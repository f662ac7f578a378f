/*
 * imap_cmd_fetch.c - FETCH and UID FETCH, streamed.
 *
 * A FETCH runs on the store pool in batches of at most BATCH_BYTES of
 * output; the next batch is queued only once the connection's output
 * queue is below its limit (limits.output_buffer), so a session's memory
 * is bounded by that limit whatever it fetches, and a client that does
 * not read costs its output queue plus one batch, never a message.
 *
 * Each message is first planned: its small items (UID, FLAGS, dates,
 * ENVELOPE, BODYSTRUCTURE) are formatted into a text buffer, and every
 * literal is a segment whose size is known before its first byte goes
 * out: a range of the message file (BODY[], TEXT, HEADER, MIME, parts,
 * RFC822*, partials of those) or a HEADER.FIELDS[.NOT] filter over one
 * header block. Then the segments are copied into batches: text from the
 * buffer, file ranges with pread() from the message's descriptor, which
 * stays open across batches (a flag rename or an expunge meanwhile does
 * not change the bytes), and filtered headers regenerated from the
 * header block, skipping what earlier batches sent.
 *
 * Planning reads no more than it needs: nothing for BODY[] and RFC822
 * (the size is the file's), the top-level header for ENVELOPE and the
 * header and text sections, and the whole message (read, or mapped when
 * large; msg_read.h) only for BODYSTRUCTURE and part sections, dropped
 * again before the literals stream. At a batch's end the job keeps at
 * most a small read buffer.
 *
 * Relies on the folder being borrowed by the job (one thread at a time),
 * on Maildir message files never being rewritten in place, and on
 * proto/mime.h for ENVELOPE, BODYSTRUCTURE and section offsets.
 *
 * Must never: touch a message file on the ring thread (the descriptor of
 * an abandoned FETCH is closed by a pool job too), send a literal whose
 * bytes differ in number from its announced size (a file that shrank
 * under a FETCH ends the connection), set \Seen in a read-only folder, or
 * send EXPUNGE.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/imap_private.h"
#include "backend/msg_read.h"
#include "core/log.h"
#include "core/loop.h"
#include "proto/imap_section.h"
#include "proto/mime.h"
#include "store/maildir.h"

#define BATCH_BYTES (256 * 1024)
#define KEEP_BYTES (256 * 1024) /* read buffers kept between batches */
#define MAX_SECTIONS 32
#define MAX_FIELDS 64
#define MAX_PARTS 256
/* a message's output: text and literal, alternating, per item */
#define MAX_SEGS (2 * (MAX_SECTIONS + 4) + 2)

enum fetch_item {
	FI_UID = 1 << 0,
	FI_FLAGS = 1 << 1,
	FI_INTERNALDATE = 1 << 2,
	FI_SIZE = 1 << 3,
	FI_ENVELOPE = 1 << 4,
	FI_BODYSTRUCTURE = 1 << 5,
	FI_BODY = 1 << 6,
	FI_RFC822 = 1 << 7,
	FI_RFC822_HEADER = 1 << 8,
	FI_RFC822_TEXT = 1 << 9,
};

/* What planning a message must read. */
enum fetch_need {
	NEED_NOTHING, /* view data only */
	NEED_SIZE,    /* the descriptor and its size (BODY[], RFC822) */
	NEED_HEADER,  /* plus the top-level header */
	NEED_ALL,     /* the whole message, parsed (parts, BODYSTRUCTURE) */
};

struct fetch_section {
	char *text; /* the attribute as sent, owned */
	struct imap_section sec;
};

enum seg_kind {
	SEG_TEXT,   /* job->text[off, off + len) */
	SEG_FILE,   /* the message file [off, off + len) */
	SEG_FIELDS, /* a header filter's output [off, off + len) */
};

struct fetch_seg {
	enum seg_kind kind;
	size_t off, len;
	size_t hoff, hlen; /* SEG_FIELDS: the header block in the file */
	unsigned sec;	   /* SEG_FIELDS: job->sec[sec] */
};

struct fetch_job {
	struct imap_job base;
	bool uid;
	uint32_t *idx; /* view indexes the command applies to */
	size_t nidx, next;
	unsigned items;
	struct fetch_section sec[MAX_SECTIONS];
	unsigned nsec;
	bool set_seen;
	enum fetch_need need;
	bool need_size; /* a literal runs to the end of the file */
	/* the message being sent: its plan and how far it got */
	bool active;
	bool oom; /* the plan's text could not be built */
	int fd;
	size_t size; /* of the file */
	struct buf text;
	struct fetch_seg seg[MAX_SEGS];
	unsigned nseg, cur;
	size_t pos; /* bytes of seg[cur] sent */
	/* bytes of the file held now (a header or the whole message) */
	struct msg_reader rd;
	struct msg_text held;
	size_t held_off; /* file offset of held.data */
};

/* Closes an abandoned FETCH's message file on the pool. */
struct close_job {
	struct pool_job base;
	int fd;
};

/* A header filter's sink: drops `skip` bytes, keeps `left`, then stops. */
struct fields_sink {
	struct buf *b;
	size_t skip, left;
};

static int check_fetch(struct imap_session *s, const struct imap_command *cmd);
static void run_fetch(struct imap_session *s, const struct imap_command *cmd);
static int parse_fetch_items(struct imap_session *s, const struct imap_arg *a,
    struct fetch_job *job);
static int parse_fetch_att(struct imap_session *s, const struct imap_arg *a,
    struct fetch_job *job);
static enum fetch_need fetch_need(const struct fetch_job *job);
static void fetch_release(struct imap_job *ij);
static void close_run(struct pool_job *sj);

static void fetch_run(struct pool_job *sj);
static int plan(struct fetch_job *job, size_t i);
static int plan_read(struct fetch_job *job, size_t i, struct mime_message *m,
    struct mime_part *parts);
static void plan_items(struct fetch_job *job, size_t i,
    const struct mime_message *m, unsigned items);
static void plan_section(struct fetch_job *job, const struct mime_message *m,
    unsigned k, const char *sp);
static int section_range(const struct fetch_job *job,
    const struct mime_message *m, const struct imap_section *sec, size_t *off_r,
    size_t *len_r);
static void seg_text(struct fetch_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void seg_literal(struct fetch_job *job, enum seg_kind kind, size_t off,
    size_t len);
static int emit(struct fetch_job *job, size_t room);
static int emit_fields(struct fetch_job *job, const struct fetch_seg *sg,
    size_t n);
static int fields_write(void *ctx, const char *p, size_t len);
static size_t field_names(const struct imap_section *sec,
    struct mime_slice *names);
static void end_message(struct fetch_job *job);
static void drop_held(struct fetch_job *job);
static int fetch_finish(struct imap_session *s, struct imap_job *ij);

const struct imap_cmd_def imap_cmds_fetch[] = {
	{ "FETCH", ST_SELECTED, true, check_fetch, run_fetch },
	{ NULL },
};

/* ---- arguments ------------------------------------------------------ */

static int
parse_fetch_att(struct imap_session *s, const struct imap_arg *a,
    struct fetch_job *job)
{
	static const struct {
		const char *name;
		unsigned items;
	} simple[] = { { "UID", FI_UID }, { "FLAGS", FI_FLAGS },
		{ "INTERNALDATE", FI_INTERNALDATE }, { "RFC822.SIZE", FI_SIZE },
		{ "ENVELOPE", FI_ENVELOPE },
		{ "BODYSTRUCTURE", FI_BODYSTRUCTURE }, { "BODY", FI_BODY },
		{ "RFC822", FI_RFC822 }, { "RFC822.HEADER", FI_RFC822_HEADER },
		{ "RFC822.TEXT", FI_RFC822_TEXT },
		{ "ALL", FI_FLAGS | FI_INTERNALDATE | FI_SIZE | FI_ENVELOPE },
		{ "FAST", FI_FLAGS | FI_INTERNALDATE | FI_SIZE },
		{ "FULL",
		    FI_FLAGS | FI_INTERNALDATE | FI_SIZE | FI_ENVELOPE |
			FI_BODY } };
	struct imap_section sec;
	struct fetch_section *fs;
	int rc;

	if (a->type != IMAP_ARG_ATOM) {
		s->error = "Invalid FETCH item";
		return -1;
	}
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (imap_arg_atom_is(a, simple[i].name)) {
			if (job)
				job->items |= simple[i].items;
			return 0;
		}
	rc = imap_section_parse(a->ptr, a->len, &sec, &s->error);
	if (rc != 0 || sec.att != IMAP_ATT_BODY) {
		if (rc >= 0)
			s->error = "Unknown FETCH item";
		return -1;
	}
	if (job == NULL)
		return 0;
	if (job->nsec == MAX_SECTIONS) {
		s->error = "Too many sections";
		return -1;
	}
	fs = &job->sec[job->nsec];
	if ((fs->text = strndup(a->ptr, a->len)) == NULL) {
		s->error = "Out of memory";
		return -1;
	}
	job->nsec++;
	/* re-parse over our own copy: the parser's storage goes away */
	if (imap_section_parse(fs->text, a->len, &fs->sec, &s->error) != 0)
		return -1;
	if (!fs->sec.peek)
		job->set_seen = true;
	return 0;
}

static int
parse_fetch_items(struct imap_session *s, const struct imap_arg *a,
    struct fetch_job *job)
{
	if (a == NULL || imap_arg_next(a) != NULL) {
		s->error = "FETCH takes a sequence set and items";
		return -1;
	}
	if (a->type != IMAP_ARG_LIST)
		return parse_fetch_att(s, a, job);
	if (a->count == 0) {
		s->error = "Empty FETCH item list";
		return -1;
	}
	for (const struct imap_arg *i = imap_arg_child(a); i;
	     i = imap_arg_next(i))
		if (parse_fetch_att(s, i, job) == -1)
			return -1;
	return 0;
}

static int
check_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	if (imap_set_resolve(s, cmd->args, cmd->uid, NULL, NULL) == -1)
		return -1;
	return parse_fetch_items(s, imap_arg_next(cmd->args), NULL);
}

/* The least planning must read for every message of this FETCH. */
static enum fetch_need
fetch_need(const struct fetch_job *job)
{
	enum fetch_need need = NEED_NOTHING;

	if (job->items & (FI_BODYSTRUCTURE | FI_BODY))
		return NEED_ALL;
	if (job->items & (FI_ENVELOPE | FI_RFC822_HEADER | FI_RFC822_TEXT))
		need = NEED_HEADER;
	else if (job->items & FI_RFC822)
		need = NEED_SIZE;
	for (unsigned k = 0; k < job->nsec; k++) {
		const struct imap_section *sec = &job->sec[k].sec;

		if (sec->nparts > 0)
			return NEED_ALL;
		if (sec->kind != IMAP_SECT_ALL)
			need = NEED_HEADER;
		else if (need < NEED_SIZE)
			need = NEED_SIZE;
	}
	return need;
}

static void
run_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	struct fetch_job *job = imap_job_new(s, sizeof(*job), fetch_finish);

	if (job == NULL) {
		imap_reply(s, NULL, "NO [SERVERBUG] Out of memory");
		return;
	}
	job->base.release = fetch_release;
	job->fd = -1;
	if (imap_set_resolve(s, cmd->args, cmd->uid, &job->idx, &job->nidx) ==
		-1 ||
	    parse_fetch_items(s, imap_arg_next(cmd->args), job) == -1) {
		imap_reply(s, NULL, "BAD %s", s->error);
		imap_job_free(&job->base);
		return;
	}
	job->uid = cmd->uid;
	if (job->uid)
		job->items |= FI_UID;
	if (job->items & (FI_RFC822 | FI_RFC822_TEXT))
		job->set_seen = true;
	if (s->readonly)
		job->set_seen = false;
	job->need = fetch_need(job);
	job->need_size = (job->items & (FI_RFC822 | FI_RFC822_TEXT)) != 0;
	for (unsigned k = 0; k < job->nsec; k++)
		if (job->sec[k].sec.nparts == 0 &&
		    (job->sec[k].sec.kind == IMAP_SECT_ALL ||
			job->sec[k].sec.kind == IMAP_SECT_TEXT))
			job->need_size = true;
	job->base.box = s->box;
	s->box = NULL;
	imap_job_submit(s, &job->base, fetch_run);
}

/* On the ring (session gone, or the command done): the message file is
 * closed on the pool, since the last close of an expunged file frees its
 * blocks. */
static void
fetch_release(struct imap_job *ij)
{
	struct fetch_job *job = (struct fetch_job *)ij;
	struct close_job *cj;

	for (unsigned i = 0; i < job->nsec; i++)
		free(job->sec[i].text);
	free(job->idx);
	msg_read_done(&job->held);
	msg_reader_free(&job->rd);
	buf_free(&job->text);
	if (job->fd == -1)
		return;
	if ((cj = calloc(1, sizeof(*cj))) != NULL) {
		cj->base.run = close_run;
		cj->fd = job->fd;
		if (pool_detach(job->base.w->srv->store, &cj->base) == 0)
			return;
		free(cj);
	}
	close(job->fd);
}

static void
close_run(struct pool_job *sj)
{
	struct close_job *cj = (struct close_job *)sj;

	close(cj->fd);
	free(cj);
}

/* ---- the batch (store pool) ---------------------------------------- */

static void
fetch_run(struct pool_job *sj)
{
	struct fetch_job *job = (struct fetch_job *)sj;
	struct buf *b = &job->base.out;

	while (buf_used(b) < BATCH_BYTES) {
		if (!job->active) {
			if (job->next >= job->nidx)
				break;
			/* a message that cannot be read (expunged by another
			 * program meanwhile) is left out */
			if (plan(job, job->idx[job->next++]) == -1)
				continue;
		}
		if (emit(job, BATCH_BYTES - buf_used(b)) == -1) {
			job->base.err = errno ? errno : EIO;
			break;
		}
		if (job->cur == job->nseg)
			end_message(job);
	}
	/* between batches keep no message bytes, and little else */
	drop_held(job);
	if (job->rd.cap > KEEP_BYTES)
		msg_reader_free(&job->rd);
}

/* Plan message i: \Seen first (so FLAGS shows it), then the segments. 0,
 * or -1 if it cannot be read. */
static int
plan(struct fetch_job *job, size_t i)
{
	struct maildir *box = job->base.box;
	struct mime_part parts[MAX_PARTS];
	struct mime_message m;
	const struct maildir_msg *msgs;
	unsigned items = job->items;
	size_t n;

	msgs = maildir_msgs(box, &n);
	if (job->set_seen && !(msgs[i].flags & MAILDIR_FLAG_SEEN)) {
		static const struct maildir_flag_change seen = {
			.set = MAILDIR_FLAG_SEEN
		};
		const char *e;

		/* added to the flags on disk (not the view's), and a flag
		 * that changed is reported with the message */
		if (maildir_change_flags(box, i, &seen, &e) == 0)
			items |= FI_FLAGS;
		msgs = maildir_msgs(box, &n);
	}
	if (plan_read(job, i, &m, parts) == -1)
		return -1;
	job->text.off = job->text.len = 0;
	job->nseg = job->cur = 0;
	job->pos = 0;
	job->oom = false;
	plan_items(job, i, &m, items);
	/* the parse is done: only a header filter needs bytes again */
	if (job->held.map != NULL)
		drop_held(job);
	job->active = true;
	if (job->oom) {
		end_message(job);
		return -1;
	}
	return 0;
}

/* Open message i and read what the items need; parse it into m. */
static int
plan_read(struct fetch_job *job, size_t i, struct mime_message *m,
    struct mime_part *parts)
{
	struct mime_limits lim = { 32, 256, 64 * 1024 };
	struct stat st;
	const char *e;

	drop_held(job);
	job->size = 0;
	if (job->need == NEED_NOTHING || job->need == NEED_SIZE)
		mime_parse(m, "", 0, parts, MAX_PARTS, &lim);
	if (job->need == NEED_NOTHING)
		return 0;
	if (maildir_msg_open(job->base.box, i, &job->fd, &e) == -1)
		return -1;
	if (job->need_size && job->need != NEED_ALL) {
		if (fstat(job->fd, &st) == -1)
			goto fail;
		job->size = (size_t)st.st_size;
	}
	if (job->need == NEED_SIZE)
		return 0;
	if (msg_read_fd(&job->rd, job->fd, job->need == NEED_HEADER,
		&job->held) == -1)
		goto fail;
	job->held_off = 0;
	if (job->need == NEED_ALL)
		job->size = job->held.len; /* what was parsed is what is sent */
	/* header only: the header slice parses to the same parts[0]
	 * header (mime_header_end()) without walking the body */
	mime_parse(m, job->held.data, job->held.len, parts, MAX_PARTS, &lim);
	return 0;
fail:
	close(job->fd);
	job->fd = -1;
	return -1;
}

/* "* n FETCH (...)" of message i as text and literal segments, in the
 * order the items have always been sent in. */
static void
plan_items(struct fetch_job *job, size_t i, const struct mime_message *m,
    unsigned items)
{
	const struct maildir_msg *msgs;
	size_t n, hdr = m->nparts ? m->parts[0].hdr_len : 0;
	const char *sp = "";

	msgs = maildir_msgs(job->base.box, &n);
	seg_text(job, "* %zu FETCH (", i + 1);
	if (items & FI_UID) {
		seg_text(job, "UID %u", msgs[i].uid);
		sp = " ";
	}
	if (items & FI_FLAGS) {
		seg_text(job, "%s", sp);
		imap_write_flags(&job->text, job->base.box, &msgs[i]);
		sp = " ";
	}
	if (items & FI_INTERNALDATE) {
		struct tm tm;

		gmtime_r(&msgs[i].date, &tm);
		seg_text(job,
		    "%sINTERNALDATE \"%02d-%s-%04d %02d:%02d:%02d "
		    "+0000\"",
		    sp, tm.tm_mday, imap_months[tm.tm_mon], tm.tm_year + 1900,
		    tm.tm_hour, tm.tm_min, tm.tm_sec);
		sp = " ";
	}
	if (items & FI_SIZE) {
		seg_text(job, "%sRFC822.SIZE %llu", sp,
		    (unsigned long long)(msgs[i].vsize ? msgs[i].vsize :
							 msgs[i].size));
		sp = " ";
	}
	if (items & FI_ENVELOPE) {
		seg_text(job, "%sENVELOPE ", sp);
		if (mime_write_envelope(m, 0, imap_buf_write, &job->text) == -1)
			job->oom = true;
		sp = " ";
	}
	if (items & (FI_BODYSTRUCTURE | FI_BODY)) {
		seg_text(job, "%s%s ", sp,
		    items & FI_BODYSTRUCTURE ? "BODYSTRUCTURE" : "BODY");
		if (mime_write_bodystructure(m, 0, items & FI_BODYSTRUCTURE,
			imap_buf_write, &job->text) == -1)
			job->oom = true;
		sp = " ";
	}
	if (items & FI_RFC822) {
		seg_text(job, "%sRFC822 ", sp);
		seg_literal(job, SEG_FILE, 0, job->size);
		sp = " ";
	}
	if (items & FI_RFC822_HEADER) {
		seg_text(job, "%sRFC822.HEADER ", sp);
		seg_literal(job, SEG_FILE, 0, hdr);
		sp = " ";
	}
	if (items & FI_RFC822_TEXT) {
		seg_text(job, "%sRFC822.TEXT ", sp);
		seg_literal(job, SEG_FILE, hdr,
		    job->size > hdr ? job->size - hdr : 0);
		sp = " ";
	}
	for (unsigned k = 0; k < job->nsec; k++) {
		plan_section(job, m, k, sp);
		sp = " ";
	}
	seg_text(job, ")\r\n");
}

/* One BODY[...]<...> item: its name, then its literal. */
static void
plan_section(struct fetch_job *job, const struct mime_message *m, unsigned k,
    const char *sp)
{
	const struct imap_section *sec = &job->sec[k].sec;
	bool fields = sec->kind == IMAP_SECT_FIELDS ||
	    sec->kind == IMAP_SECT_FIELDS_NOT;
	size_t off = 0, len = 0, hoff = 0, hlen = 0, start, cnt;

	if (section_range(job, m, sec, &off, &len) == 0 && fields) {
		struct mime_slice names[MAX_FIELDS];
		size_t nn = field_names(sec, names);

		hoff = off;
		hlen = len;
		off = 0;
		len = mime_header_fields(m->data + hoff, hlen, names, nn,
		    sec->kind == IMAP_SECT_FIELDS_NOT, NULL, NULL);
	}
	seg_text(job, "%sBODY[%.*s]", sp, (int)sec->spec_len, sec->spec);
	start = 0;
	cnt = len;
	if (sec->partial) {
		start = sec->start < len ? sec->start : len;
		cnt = len - start < sec->count ? len - start : sec->count;
		seg_text(job, "<%u>", sec->start);
	}
	seg_text(job, " ");
	seg_literal(job, fields ? SEG_FIELDS : SEG_FILE, off + start, cnt);
	if (fields && cnt > 0) {
		job->seg[job->nseg - 1].hoff = hoff;
		job->seg[job->nseg - 1].hlen = hlen;
		job->seg[job->nseg - 1].sec = k;
	}
}

/* The bytes a section names, as a range of the file; -1 for a part that
 * does not exist (an empty string, RFC 3501 6.4.5). Top-level sections
 * work from the header alone: the text runs to the end of the file. */
static int
section_range(const struct fetch_job *job, const struct mime_message *m,
    const struct imap_section *sec, size_t *off_r, size_t *len_r)
{
	size_t hdr = m->nparts ? m->parts[0].hdr_len : 0;
	enum mime_sect kind = MIME_SECT_BODY;
	uint32_t part;

	if (sec->nparts == 0) {
		*off_r = sec->kind == IMAP_SECT_TEXT ? hdr : 0;
		/* (a file cut shorter than its header meanwhile: empty) */
		*len_r = sec->kind == IMAP_SECT_ALL ? job->size :
		    sec->kind != IMAP_SECT_TEXT	    ? hdr :
		    job->size > hdr		    ? job->size - hdr :
						      0;
		return 0;
	}
	switch (sec->kind) {
	case IMAP_SECT_HEADER:
	case IMAP_SECT_FIELDS:
	case IMAP_SECT_FIELDS_NOT:
		kind = MIME_SECT_HEADER;
		break;
	case IMAP_SECT_TEXT:
		kind = MIME_SECT_TEXT;
		break;
	case IMAP_SECT_MIME:
		kind = MIME_SECT_MIME;
		break;
	default:
		break;
	}
	return mime_section(m, sec->part, sec->nparts, kind, off_r, len_r,
	    &part);
}

static size_t
field_names(const struct imap_section *sec, struct mime_slice *names)
{
	size_t pos = 0, nn = 0, nlen;
	const char *name;

	while (nn < MAX_FIELDS &&
	    imap_section_field_next(sec, &pos, &name, &nlen) == 1) {
		names[nn].ptr = name;
		names[nn++].len = nlen;
	}
	return nn;
}

/* Text for the plan: into job->text, extending the last text segment
 * (which then also covers whatever ENVELOPE, BODYSTRUCTURE and FLAGS
 * writers appended to job->text since). A failed allocation marks the
 * plan, which plan() then drops. */
static void
seg_text(struct fetch_job *job, const char *fmt, ...)
{
	struct fetch_seg *last = job->nseg ? &job->seg[job->nseg - 1] : NULL;
	size_t before = buf_used(&job->text);
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (p = buf_reserve(&job->text, (size_t)n + 1)) == NULL) {
		job->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_commit(&job->text, (size_t)n);
	if (last == NULL || last->kind != SEG_TEXT) {
		last = &job->seg[job->nseg++];
		memset(last, 0, sizeof(*last));
		last->kind = SEG_TEXT;
		last->off = before;
	}
	last->len = buf_used(&job->text) - last->off;
}

/* "{len}\r\n" and the literal's bytes, from the file or a filter. */
static void
seg_literal(struct fetch_job *job, enum seg_kind kind, size_t off, size_t len)
{
	struct fetch_seg *sg;

	seg_text(job, "{%zu}\r\n", len);
	if (len == 0 || job->nseg == MAX_SEGS)
		return;
	sg = &job->seg[job->nseg++];
	memset(sg, 0, sizeof(*sg));
	sg->kind = kind;
	sg->off = off;
	sg->len = len;
}

/* Up to room bytes of the current message's output into the batch. 0, or
 * -1 if the file could not give what its literal announced. */
static int
emit(struct fetch_job *job, size_t room)
{
	struct buf *b = &job->base.out;

	while (room > 0 && job->cur < job->nseg) {
		const struct fetch_seg *sg = &job->seg[job->cur];
		size_t n = sg->len - job->pos;
		char *p;

		if (n > room)
			n = room;
		switch (sg->kind) {
		case SEG_TEXT:
			if (buf_append(b, job->text.data + sg->off + job->pos,
				n) == -1)
				return -1;
			break;
		case SEG_FILE:
			if ((p = buf_reserve(b, n)) == NULL)
				return -1;
			if (msg_pread(job->fd, p, n, sg->off + job->pos) !=
			    (ssize_t)n) {
				errno = EIO;
				job->base.errtext = "message file shrank or "
						    "could not be read";
				return -1;
			}
			buf_commit(b, n);
			break;
		case SEG_FIELDS:
			if (emit_fields(job, sg, n) == -1)
				return -1;
			break;
		}
		room -= n;
		job->pos += n;
		if (job->pos == sg->len) {
			job->cur++;
			job->pos = 0;
		}
	}
	return 0;
}

/* n bytes of a header filter's output from where the last batch ended:
 * the filter runs again over the header block (read back if it was
 * dropped), skipping what went out before. */
static int
emit_fields(struct fetch_job *job, const struct fetch_seg *sg, size_t n)
{
	const struct imap_section *sec = &job->sec[sg->sec].sec;
	struct mime_slice names[MAX_FIELDS];
	struct fields_sink sink = { &job->base.out, sg->off + job->pos, n };
	size_t nn = field_names(sec, names), before;

	if (sg->hoff < job->held_off ||
	    sg->hoff + sg->hlen > job->held_off + job->held.len) {
		drop_held(job);
		if (msg_read_range(&job->rd, job->fd, sg->hoff, sg->hlen,
			&job->held) == -1) {
			job->base.errtext = "message header could not be "
					    "read again";
			return -1;
		}
		job->held_off = sg->hoff;
	}
	before = buf_used(sink.b);
	mime_header_fields(job->held.data + (sg->hoff - job->held_off),
	    sg->hlen, names, nn, sec->kind == IMAP_SECT_FIELDS_NOT,
	    fields_write, &sink);
	if (buf_used(sink.b) - before != n) {
		errno = ENOMEM;
		job->base.errtext = "header filter output changed";
		return -1;
	}
	return 0;
}

static int
fields_write(void *ctx, const char *p, size_t len)
{
	struct fields_sink *k = ctx;

	if (k->skip >= len) {
		k->skip -= len;
		return 0;
	}
	p += k->skip;
	len -= k->skip;
	k->skip = 0;
	if (len > k->left)
		len = k->left;
	if (buf_append(k->b, p, len) == -1)
		return -1;
	k->left -= len;
	return k->left == 0 ? -1 : 0; /* -1: enough, stop the filter */
}

static void
end_message(struct fetch_job *job)
{
	job->active = false;
	job->nseg = job->cur = 0;
	job->pos = 0;
	drop_held(job);
	if (job->fd != -1) {
		close(job->fd);
		job->fd = -1;
	}
	if (job->text.cap > KEEP_BYTES)
		buf_free(&job->text);
}

static void
drop_held(struct fetch_job *job)
{
	msg_read_done(&job->held);
	job->held_off = 0;
}

/* ---- back on the ring ----------------------------------------------- */

/* Send the batch; if more remains, keep the job and continue when the
 * output queue is below its limit again (imap_more()). */
static int
fetch_finish(struct imap_session *s, struct imap_job *ij)
{
	struct fetch_job *job = (struct fetch_job *)ij;

	imap_send_buf(s, &ij->out); /* comes back empty, for reuse */
	if (ij->err != 0) {
		/* a literal went out short: the stream cannot be repaired */
		log_error(s->sid, "imap.fetch_failed", "errno=%d error=\"%s\"",
		    ij->err, ij->errtext ? ij->errtext : "?");
		s->box = ij->box;
		ij->box = NULL;
		if (s->c != NULL)
			conn_abort(s->c, CR_NONE);
		return 0;
	}
	if ((job->active || job->next < job->nidx) && s->c != NULL) {
		s->more = ij;
		if (conn_out_full(s->c)) {
			/* a client that does not read holds no batch of ours */
			buf_free(&ij->out);
			s->flags |= SF_MORE;
		} else {
			imap_more(s);
		}
		return 1;
	}
	s->box = ij->box;
	ij->box = NULL;
	imap_reply(s, NULL, "OK FETCH completed");
	return 0;
}

void
imap_more(struct imap_session *s)
{
	struct imap_job *job = s->more;

	s->more = NULL;
	if (job == NULL)
		return;
	if (imap_job_again(s, job) == -1) {
		s->box = job->box;
		job->box = NULL;
		imap_job_free(job);
		imap_reply(s, NULL, "NO [UNAVAILABLE] Server busy, try again");
	}
}
