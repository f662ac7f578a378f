/*
 * mime_walk.c - the streaming MIME walk (proto/mime_walk.h).
 *
 * The stream is cut into lines (LF ends a line; CR LF and bare LF both
 * count). Every line is checked against the boundaries of the open
 * multiparts, outermost first, so an outer delimiter ends whatever is
 * nested inside (as mime.c's ranges do). Only a line's first bytes are kept
 * (enough for the longest boundary plus "--" and a CR); past them the
 * walk only remembers whether the rest is white space, which is all a
 * delimiter line may hold. Header lines are also collected whole into the
 * header buffer, up to max_header, and parsed with mime.c's field, type and
 * parameter helpers once the empty line (or a delimiter, or the end)
 * closes the block.
 *
 * Entity states: HEADER (collecting), LEAF (a body to report at its end),
 * SKIP (a multipart's preamble or epilogue). The multipart stack holds one
 * frame per open multipart with its delimiter text; depth strictly grows
 * along the stack, so max_depth bounds it.
 *
 * Must never: read past what was fed, allocate after mime_walk_new(),
 * recurse, or do more than constant work per byte beyond the boundary
 * comparisons (one per open multipart per line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime.h"
#include "proto/mime_private.h"
#include "proto/mime_walk.h"

#define DEF_DEPTH 20
#define DEF_PARTS 1000
#define DEF_HEADER (64 * 1024)
#define DEF_BOUNDARY 200
#define MAX_CONT 64    /* RFC 2231 continuations looked at per name */
#define MAX_VALUE 1024 /* one parameter value, unquoted */
#define NAME_HEAD 96   /* bytes kept from the start of a long name */
#define NAME_TAIL (MIME_WALK_NAME_MAX - 1 - NAME_HEAD - 3)

enum estate { E_HEADER, E_LEAF, E_SKIP };

struct frame {
	char delim[MIME_WALK_BOUNDARY_HARD + 2]; /* "--" boundary */
	size_t dlen;
	bool seen;   /* a delimiter was seen: it has parts */
	bool closed; /* the close delimiter was seen: epilogue */
	bool digest;
	uint64_t part_off;	    /* where its current part began */
	struct mime_walk_part self; /* reported if it never had parts */
};

struct mime_walk {
	struct mime_walk_limits lim;
	mime_walk_fn *fn;
	void *ctx;
	enum mime_walk_status status;
	uint64_t off; /* bytes fed */
	/* the current line */
	uint64_t line_off;
	char *lbuf;
	size_t lcap, llen;
	bool tail_ok, tail_cr; /* bytes past lcap: white space so far */
	size_t tail_n;	       /* bytes past lcap */
	char last[2];	       /* the stream's last two bytes */
	unsigned prev_eol;     /* line end length of the previous line */
	/* the current entity */
	enum estate es;
	struct mime_walk_part cur;
	bool cur_digest_child;
	char *hdr;
	size_t hlen, hline; /* hline: where the current line starts */
	char *vbuf;	    /* one parameter value, unquoted (max_header) */
	/* the multipart stack */
	struct frame *frames;
	unsigned nframes;
	unsigned nentities, nleaves;
};

/* A file name being decoded (mime_write_fn sink). */
struct name_acc {
	struct mime_walk_name *n;
	char tail[NAME_TAIL];
	size_t tpos;
};

/* lines and entities */
static void take(struct mime_walk *w, const char *p, size_t n);
static int line_done(struct mime_walk *w, bool eof);
static int match_delimiter(const struct mime_walk *w, bool eof, bool *close);
static int on_delimiter(struct mime_walk *w, unsigned k, bool close,
    uint64_t end, uint64_t next);
static int close_from(struct mime_walk *w, unsigned k, uint64_t end);
static int start_entity(struct mime_walk *w, uint64_t off, unsigned depth,
    bool digest_child, bool in_message);
static int header_done(struct mime_walk *w, uint64_t body_off, bool forced);
static int report(struct mime_walk *w, struct mime_walk_part *p, uint64_t end);
static int fail(struct mime_walk *w, enum mime_walk_status st);

/* header contents */
static void parse_header(struct mime_walk *w, struct mime_slice *boundary,
    bool *multipart, bool *message);
static void copy_lower(char *dst, size_t cap, struct mime_slice a,
    struct mime_slice b);
static void collect_names(struct mime_walk *w, struct mime_slice params,
    const char *base);
static bool find_param(struct mime_slice params, const char *name,
    struct mime_slice *value_r);
static void add_name(struct mime_walk_part *p, const struct mime_walk_name *n);
static void name_init(struct name_acc *a, struct mime_walk_name *n);
static int name_put(void *ctx, const char *s, size_t len);
static void name_end(struct name_acc *a);
static void put_extended(struct name_acc *a, const char *v, size_t len,
    bool first);

struct mime_walk *
mime_walk_new(const struct mime_walk_limits *lim, mime_walk_fn *fn, void *ctx)
{
	struct mime_walk *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	if (lim != NULL)
		w->lim = *lim;
	if (w->lim.max_depth == 0)
		w->lim.max_depth = DEF_DEPTH;
	if (w->lim.max_depth > MIME_WALK_DEPTH_HARD)
		w->lim.max_depth = MIME_WALK_DEPTH_HARD;
	if (w->lim.max_parts == 0)
		w->lim.max_parts = DEF_PARTS;
	if (w->lim.max_header == 0)
		w->lim.max_header = DEF_HEADER;
	if (w->lim.max_boundary == 0)
		w->lim.max_boundary = DEF_BOUNDARY;
	if (w->lim.max_boundary > MIME_WALK_BOUNDARY_HARD)
		w->lim.max_boundary = MIME_WALK_BOUNDARY_HARD;
	w->fn = fn;
	w->ctx = ctx;
	/* "--" boundary "--" CR LF fits; more is checked as white space */
	w->lcap = w->lim.max_boundary + 6;
	w->lbuf = malloc(w->lcap);
	w->hdr = malloc(w->lim.max_header);
	w->vbuf = malloc(w->lim.max_header);
	w->frames = calloc(w->lim.max_depth + 1, sizeof(*w->frames));
	if (w->lbuf == NULL || w->hdr == NULL || w->vbuf == NULL ||
	    w->frames == NULL) {
		mime_walk_free(&w);
		return NULL;
	}
	w->tail_ok = true;
	(void)start_entity(w, 0, 0, false, false);
	return w;
}

void
mime_walk_free(struct mime_walk **wp)
{
	struct mime_walk *w = *wp;

	if (w == NULL)
		return;
	free(w->lbuf);
	free(w->hdr);
	free(w->vbuf);
	free(w->frames);
	free(w);
	*wp = NULL;
}

enum mime_walk_status
mime_walk_status(const struct mime_walk *w)
{
	return w->status;
}

unsigned
mime_walk_leaves(const struct mime_walk *w)
{
	return w->nleaves;
}

const char *
mime_walk_status_name(enum mime_walk_status st)
{
	switch (st) {
	case MIME_WALK_OK:
		return "ok";
	case MIME_WALK_STOPPED:
		return "stopped";
	case MIME_WALK_DEPTH:
		return "depth";
	case MIME_WALK_PARTS:
		return "parts";
	case MIME_WALK_HEADER:
		return "header";
	case MIME_WALK_BOUNDARY:
		return "boundary";
	}
	return "unknown";
}

int
mime_walk_feed(struct mime_walk *w, const char *p, size_t len)
{
	while (w->status == MIME_WALK_OK && len > 0) {
		const char *nl = memchr(p, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - p) + 1 : len;

		if (w->es == E_HEADER) {
			if (n > w->lim.max_header - w->hlen)
				return fail(w, MIME_WALK_HEADER);
			memcpy(w->hdr + w->hlen, p, n);
			w->hlen += n;
		}
		take(w, p, n);
		w->off += n;
		if (nl != NULL && line_done(w, false) == -1)
			return -1;
		p += n;
		len -= n;
	}
	return w->status == MIME_WALK_OK ? 0 : -1;
}

int
mime_walk_finish(struct mime_walk *w)
{
	if (w->status != MIME_WALK_OK)
		return -1;
	/* a last line without a line end may still be a delimiter */
	if (w->off > w->line_off && line_done(w, true) == -1)
		return -1;
	/* at the end nothing is trimmed: a part runs to the last byte */
	if (close_from(w, 0, w->off) == -1)
		return -1;
	return 0;
}

/* The line's first lcap bytes, and whether the rest is white space
 * (a CR allowed only right before the LF). */
static void
take(struct mime_walk *w, const char *p, size_t n)
{
	size_t k = 0;

	if (n == 0)
		return;
	if (w->llen < w->lcap) {
		k = w->lcap - w->llen < n ? w->lcap - w->llen : n;
		memcpy(w->lbuf + w->llen, p, k);
		w->llen += k;
	}
	w->tail_n += n - k;
	for (; k < n && w->tail_ok; k++) {
		char c = p[k];

		if (w->tail_cr && c != '\n')
			w->tail_ok = false;
		else if (c == '\r')
			w->tail_cr = true;
		else if (c != '\n' && !mime_is_wsp(c))
			w->tail_ok = false;
	}
	w->last[0] = n >= 2 ? p[n - 2] : w->last[1];
	w->last[1] = p[n - 1];
}

/*
 * Index of the open multipart whose delimiter this line is (outermost
 * first; a multipart in its epilogue takes none), -1 if none. The line
 * (with its LF unless eof) is lbuf[0..llen) plus tail_ok.
 */
static int
match_delimiter(const struct mime_walk *w, bool eof, bool *close)
{
	const char *s = w->lbuf;
	size_t len = w->llen;

	if (len < 2 || s[0] != '-' || s[1] != '-')
		return -1;
	for (unsigned k = 0; k < w->nframes; k++) {
		const struct frame *f = &w->frames[k];
		size_t q = f->dlen;

		if (f->closed || len < q || memcmp(s, f->delim, q) != 0)
			continue;
		*close = false;
		if (len - q >= 2 && s[q] == '-' && s[q + 1] == '-') {
			*close = true;
			q += 2;
		}
		while (q < len && mime_is_wsp(s[q]))
			q++;
		if (q < len && s[q] == '\r')
			q++;
		if (q < len && s[q] == '\n')
			q++;
		if (q != len || !w->tail_ok)
			continue;
		/* a CR the prefix ends with must be the line's end */
		if (w->tail_n > 0 && s[len - 1] == '\r' &&
		    (w->tail_n != 1 || eof))
			continue;
		return (int)k;
	}
	return -1;
}

static int
line_done(struct mime_walk *w, bool eof)
{
	uint64_t line_off = w->line_off;
	unsigned eol = 0;
	bool close = false;
	int k = match_delimiter(w, eof, &close);

	if (!eof)
		eol = w->off - line_off >= 2 && w->last[0] == '\r' ? 2 : 1;
	if (k >= 0) {
		/* the line break before a delimiter is the delimiter's,
		 * unless the part is empty (mime.c's ranges) */
		uint64_t end = line_off - w->prev_eol;

		if (end < w->frames[k].part_off)
			end = w->frames[k].part_off;

		if (w->es == E_HEADER)
			w->hlen = w->hline; /* the delimiter is not header */
		if (on_delimiter(w, (unsigned)k, close, end, w->off) == -1)
			return -1;
	} else if (w->es == E_HEADER && !eof &&
	    (w->off - line_off == 1 ||
		(w->off - line_off == 2 && w->lbuf[0] == '\r'))) {
		if (header_done(w, w->off, false) == -1)
			return -1;
	}
	w->line_off = w->off;
	w->llen = 0;
	w->tail_ok = true;
	w->tail_cr = false;
	w->tail_n = 0;
	w->prev_eol = eol;
	if (w->es == E_HEADER)
		w->hline = w->hlen;
	return 0;
}

/* A delimiter of frame k: what is nested ends at end (clamped), then its
 * next part starts at next, or its epilogue. */
static int
on_delimiter(struct mime_walk *w, unsigned k, bool close, uint64_t end,
    uint64_t next)
{
	struct frame *f;

	if (close_from(w, k + 1, end) == -1)
		return -1;
	f = &w->frames[k];
	w->nframes = k + 1;
	if (close) {
		/* "--b--" first: no parts; the whole multipart, up to where
		 * its enclosing part ends, is one broken leaf (close_from) */
		f->closed = true;
		w->es = E_SKIP;
		return 0;
	}
	f->seen = true;
	f->part_off = next;
	return start_entity(w, next, f->self.depth + 1, f->digest,
	    f->self.in_message);
}

/*
 * End the current entity and every frame from k inward at end (clamped
 * to where each began); a frame that never had parts is a broken leaf.
 */
static int
close_from(struct mime_walk *w, unsigned k, uint64_t end)
{
	/* a loop: a cut-short message/rfc822 header starts its child */
	while (w->es == E_HEADER) {
		if (header_done(w, end < w->cur.hdr_off ? w->cur.hdr_off : end,
			true) == -1)
			return -1;
	}
	if (w->es == E_LEAF) {
		w->es = E_SKIP;
		if (report(w, &w->cur, end) == -1)
			return -1;
	}
	while (w->nframes > k) {
		struct frame *f = &w->frames[--w->nframes];

		if (!f->seen && report(w, &f->self, end) == -1)
			return -1;
	}
	w->es = E_SKIP;
	return 0;
}

static int
start_entity(struct mime_walk *w, uint64_t off, unsigned depth,
    bool digest_child, bool in_message)
{
	if (w->nentities >= w->lim.max_parts)
		return fail(w, MIME_WALK_PARTS);
	if (depth > w->lim.max_depth)
		return fail(w, MIME_WALK_DEPTH);
	w->nentities++;
	memset(&w->cur, 0, sizeof(w->cur));
	w->cur.hdr_off = off;
	w->cur.body_off = off;
	w->cur.depth = depth;
	w->cur.in_message = in_message;
	w->cur_digest_child = digest_child;
	w->es = E_HEADER;
	w->hlen = 0;
	w->hline = 0;
	return 0;
}

/*
 * The header block of the current entity is complete (forced: cut by a
 * delimiter or the end, so it has no body). A multipart opens a frame (a
 * forced one is a broken leaf), an encapsulated message starts its own
 * entity, anything else is a leaf.
 */
static int
header_done(struct mime_walk *w, uint64_t body_off, bool forced)
{
	struct mime_slice boundary = { NULL, 0 };
	bool multipart = false, message = false;
	struct frame *f;

	parse_header(w, &boundary, &multipart, &message);
	w->cur.body_off = body_off;
	w->cur.end_off = body_off;
	w->es = E_LEAF;
	if (multipart && !forced && boundary.len > w->lim.max_boundary)
		return fail(w, MIME_WALK_BOUNDARY);
	if (multipart && !forced && boundary.len > 0) {
		if (w->cur.depth + 1 > w->lim.max_depth)
			return fail(w, MIME_WALK_DEPTH);
		f = &w->frames[w->nframes++];
		memset(f, 0, sizeof(*f));
		f->delim[0] = '-';
		f->delim[1] = '-';
		memcpy(f->delim + 2, boundary.ptr, boundary.len);
		f->dlen = boundary.len + 2;
		f->digest = strcmp(w->cur.type, "multipart/digest") == 0;
		f->self = w->cur;
		f->self.broken = true;
		w->es = E_SKIP;
		return 0;
	}
	if (multipart) {
		/* no boundary, or no body to hold one */
		w->cur.broken = true;
		return 0;
	}
	/* an encapsulated message, even an empty one, is an entity */
	if (message)
		return start_entity(w, body_off, w->cur.depth + 1, false, true);
	return 0;
}

static int
report(struct mime_walk *w, struct mime_walk_part *p, uint64_t end)
{
	/*
	 * A part cut right after its empty line: that line break belongs
	 * to the delimiter, so the header ends where the part does (and an
	 * encapsulated message's empty child starts there).
	 */
	if (end < p->hdr_off)
		p->hdr_off = end;
	if (end < p->body_off)
		p->body_off = end;
	p->end_off = end;
	p->index = w->nleaves++;
	if (w->fn != NULL && w->fn(w->ctx, p) == -1)
		return fail(w, MIME_WALK_STOPPED);
	return 0;
}

static int
fail(struct mime_walk *w, enum mime_walk_status st)
{
	if (w->status == MIME_WALK_OK)
		w->status = st;
	return -1;
}

/*
 * Type, disposition, encoding and names of the current entity from its
 * header block, and whether it is a multipart (its boundary, unquoted
 * into vbuf) or an encapsulated message to walk into. Two passes over the
 * fields so that Content-Disposition's names come first whatever the
 * field order.
 */
static void
parse_header(struct mime_walk *w, struct mime_slice *boundary, bool *multipart,
    bool *message)
{
	struct mime_part mp;
	struct mime_header_iter it;
	struct mime_limits lim = { 0, 1000, w->lim.max_header };
	struct mime_field f;
	struct mime_walk_part *p = &w->cur;
	struct mime_slice enc = { NULL, 0 }, disp = { NULL, 0 },
			  none = { NULL, 0 }, v;
	size_t after;

	memset(&mp, 0, sizeof(mp));
	mp.flags = MIME_PART_DEFAULTED;
	for (int pass = 0; pass < 2; pass++) {
		mime_header_init(&it, w->hdr, w->hlen, &lim);
		while (mime_header_next(&it, &f)) {
			if (f.name.len < 8 ||
			    !mime_ieq(f.name.ptr, 8, "content-"))
				continue;
			if (pass == 1 &&
			    mime_slice_is(f.name, "content-type")) {
				(void)mime_first_token(f.value, &after);
				v.ptr = f.value.ptr + after;
				v.len = f.value.len - after;
				collect_names(w, v, "name");
			}
			if (pass == 1)
				continue;
			if (mime_slice_is(f.name, "content-type") &&
			    (mp.flags & MIME_PART_DEFAULTED)) {
				mime_parse_content_type(&mp, f.value);
			} else if (mime_slice_is(f.name,
				       "content-transfer-encoding")) {
				enc = mime_first_token(f.value, NULL);
			} else if (mime_slice_is(f.name,
				       "content-disposition")) {
				disp = mime_first_token(f.value, &after);
				v.ptr = f.value.ptr + after;
				v.len = f.value.len - after;
				collect_names(w, v, "filename");
			}
		}
	}
	if (mp.flags & MIME_PART_DEFAULTED) {
		bool dg = w->cur_digest_child;

		mp.type.ptr = dg ? "message" : "text";
		mp.type.len = dg ? 7 : 4;
		mp.subtype.ptr = dg ? "rfc822" : "plain";
		mp.subtype.len = dg ? 6 : 5;
	}
	copy_lower(p->type, sizeof(p->type), mp.type, mp.subtype);
	copy_lower(p->disposition, sizeof(p->disposition), disp, none);
	copy_lower(p->encoding, sizeof(p->encoding), enc, none);
	*multipart = mime_slice_is(mp.type, "multipart");
	*message = mime_slice_is(mp.type, "message") &&
	    (mime_slice_is(mp.subtype, "rfc822") ||
		mime_slice_is(mp.subtype, "global")) &&
	    (enc.ptr == NULL || mime_slice_is(enc, "7bit") ||
		mime_slice_is(enc, "8bit") || mime_slice_is(enc, "binary"));
	*boundary = none;
	if (*multipart && find_param(mp.params, "boundary", &v)) {
		boundary->ptr = w->vbuf;
		boundary->len = mime_unquote(v.ptr, v.len, w->vbuf,
		    w->lim.max_header);
	}
}

/* a ["/" b], lower case, cut to fit cap with its NUL. */
static void
copy_lower(char *dst, size_t cap, struct mime_slice a, struct mime_slice b)
{
	size_t n = 0;

	for (size_t k = 0; a.ptr != NULL && k < a.len && n + 1 < cap; k++)
		dst[n++] = (char)mime_lower((unsigned char)a.ptr[k]);
	if (b.ptr != NULL && n + 1 < cap)
		dst[n++] = '/';
	for (size_t k = 0; b.ptr != NULL && k < b.len && n + 1 < cap; k++)
		dst[n++] = (char)mime_lower((unsigned char)b.ptr[k]);
	dst[n] = '\0';
}

/*
 * The names a parameter list gives under base ("filename", "name"):
 * RFC 2231 base*= and base*0*= / base*1= ... continuations, then the plain
 * base= with encoded words decoded. Values are unquoted into vbuf, which
 * holds any value of a header block, so no name loses its tail there.
 */
static void
collect_names(struct mime_walk *w, struct mime_slice params, const char *base)
{
	struct mime_walk_name n;
	struct name_acc a;
	struct mime_slice v;
	char key[40];
	size_t len, cap = w->lim.max_header;
	bool any = false;

	snprintf(key, sizeof(key), "%s*", base);
	if (find_param(params, key, &v)) {
		name_init(&a, &n);
		len = mime_unquote(v.ptr, v.len, w->vbuf, cap);
		put_extended(&a, w->vbuf, len, true);
		name_end(&a);
		add_name(&w->cur, &n);
	}
	name_init(&a, &n);
	for (unsigned i = 0; i < MAX_CONT; i++) {
		snprintf(key, sizeof(key), "%s*%u*", base, i);
		if (find_param(params, key, &v)) {
			len = mime_unquote(v.ptr, v.len, w->vbuf, cap);
			put_extended(&a, w->vbuf, len, i == 0);
			any = true;
			continue;
		}
		snprintf(key, sizeof(key), "%s*%u", base, i);
		if (!find_param(params, key, &v))
			break;
		len = mime_unquote(v.ptr, v.len, w->vbuf, cap);
		(void)name_put(&a, w->vbuf, len);
		any = true;
	}
	if (any) {
		name_end(&a);
		add_name(&w->cur, &n);
	}
	if (!find_param(params, base, &v))
		return;
	name_init(&a, &n);
	len = mime_unquote(v.ptr, v.len, w->vbuf, cap);
	(void)mime_decode_2047(w->vbuf, len, name_put, &a);
	name_end(&a);
	add_name(&w->cur, &n);
	/*
	 * An unquoted value with white space in it (filename=a b.exe) ends at
	 * the space for us, but some clients read on to the ';': check that
	 * reading too.
	 */
	if (v.len > 0 && v.ptr[0] != '"') {
		const char *end = params.ptr + params.len;
		const char *semi = memchr(v.ptr, ';', (size_t)(end - v.ptr));
		size_t raw = (size_t)((semi != NULL ? semi : end) - v.ptr);

		while (raw > v.len &&
		    (mime_is_wsp(v.ptr[raw - 1]) || v.ptr[raw - 1] == '\r' ||
			v.ptr[raw - 1] == '\n'))
			raw--;
		if (raw > v.len) {
			name_init(&a, &n);
			(void)mime_decode_2047(v.ptr, raw, name_put, &a);
			name_end(&a);
			add_name(&w->cur, &n);
		}
	}
}

/* First parameter called name (case-insensitive), raw value. */
static bool
find_param(struct mime_slice params, const char *name,
    struct mime_slice *value_r)
{
	struct mime_slice n;
	bool quoted;

	while (mime_param_next(&params, &n, value_r, &quoted)) {
		if (mime_slice_is(n, name))
			return true;
	}
	return false;
}

static void
add_name(struct mime_walk_part *p, const struct mime_walk_name *n)
{
	if (n->len == 0 || p->nnames == MIME_WALK_NAMES)
		return;
	for (unsigned k = 0; k < p->nnames; k++) {
		if (p->names[k].len == n->len &&
		    memcmp(p->names[k].s, n->s, n->len) == 0)
			return;
	}
	p->names[p->nnames++] = *n;
}

static void
name_init(struct name_acc *a, struct mime_walk_name *n)
{
	memset(n, 0, sizeof(*n));
	a->n = n;
	a->tpos = 0;
}

/* Append to a name; once full, the last NAME_TAIL bytes go round a ring
 * so that the end (the extension) is kept. */
static int
name_put(void *ctx, const char *s, size_t len)
{
	struct name_acc *a = ctx;
	struct mime_walk_name *n = a->n;

	for (size_t k = 0; k < len; k++) {
		if (!n->cut && n->len < MIME_WALK_NAME_MAX - 1) {
			n->s[n->len++] = s[k];
			continue;
		}
		if (!n->cut) {
			n->cut = true;
			memcpy(a->tail, n->s + n->len - NAME_TAIL, NAME_TAIL);
			a->tpos = 0;
		}
		a->tail[a->tpos] = s[k];
		a->tpos = (a->tpos + 1) % NAME_TAIL;
	}
	return 0;
}

static void
name_end(struct name_acc *a)
{
	struct mime_walk_name *n = a->n;

	if (n->cut) {
		memcpy(n->s + NAME_HEAD, "...", 3);
		for (size_t i = 0; i < NAME_TAIL; i++)
			n->s[NAME_HEAD + 3 + i] =
			    a->tail[(a->tpos + i) % NAME_TAIL];
		n->len = MIME_WALK_NAME_MAX - 1;
	}
	n->s[n->len] = '\0';
}

/* An RFC 2231 extended value: charset'language' (first segment only),
 * then %XX escapes; anything malformed passes through as it is. */
static void
put_extended(struct name_acc *a, const char *v, size_t len, bool first)
{
	size_t k = 0;

	if (first) {
		const char *q1 = memchr(v, '\'', len), *q2 = NULL;

		if (q1 != NULL)
			q2 = memchr(q1 + 1, '\'', len - (size_t)(q1 - v) - 1);
		if (q2 != NULL)
			k = (size_t)(q2 - v) + 1;
	}
	for (; k < len; k++) {
		char c = v[k];
		int h, l;

		if (c == '%' && k + 2 < len &&
		    (h = mime_hexval((unsigned char)v[k + 1])) >= 0 &&
		    (l = mime_hexval((unsigned char)v[k + 2])) >= 0) {
			c = (char)(h * 16 + l);
			k += 2;
		}
		(void)name_put(a, &c, 1);
	}
}
