/*
 * mime.c - header fields, MIME structure and IMAP sections over one
 * message in memory, plus the lexing helpers the other mime_*.c files
 * share (proto/mime_private.h). Addresses are in mime_addr.c, the
 * ENVELOPE and BODYSTRUCTURE writers in mime_write.c, SEARCH in
 * mime_search.c.
 *
 * The structure walk is breadth first with the part array as its queue:
 * each entry is an entity range; processing it parses its header and, for
 * a multipart or an encapsulated message, appends its children, which
 * therefore sit next to each other. There is no recursion while parsing,
 * depth and part count are limits, and a part that would exceed one stays
 * a leaf. Malformed input never fails the parse: a multipart without a
 * usable boundary becomes text/plain (MIME_PART_BROKEN), a bad
 * Content-Type means text/plain as RFC 2045 5.2 says.
 *
 * Relies on: the message staying mapped and unchanged while m is used.
 * Must never: write into the message, read outside [data, data + len),
 * allocate, or recurse deeper than the depth limit (the writers recurse
 * along the part tree, which the limit bounds).
 */
#include <stdio.h>
#include <string.h>

#include "proto/mime.h"
#include "proto/mime_private.h"

#define DEFAULT_DEPTH 32
#define HARD_DEPTH 64
#define DEFAULT_HEADERS 1000
#define DEFAULT_FIELD (64 * 1024)
#define MAX_BOUNDARY 200

/* small text helpers */
static bool slice_ieq(struct mime_slice a, struct mime_slice b);
static size_t line_end(const char *s, size_t pos, size_t end);
static size_t count_lines(const char *s, size_t len);

/* structure */
static bool header_scan(const char *s, size_t off, size_t len, size_t *hdr_r);
static size_t header_len(const char *s, size_t off, size_t len);
static void parse_entity(struct mime_message *m, uint32_t i);
static void split_multipart(struct mime_message *m, uint32_t i);
static bool find_delimiter(const char *s, size_t start, size_t from, size_t end,
    const char *pat, size_t plen, size_t *line_r, size_t *next_r,
    bool *close_r);
static uint32_t add_part(struct mime_message *m, uint32_t parent, size_t off,
    size_t len);
static bool identity_encoding(struct mime_slice enc);

static bool
slice_ieq(struct mime_slice a, struct mime_slice b)
{
	if (a.len != b.len)
		return false;
	for (size_t k = 0; k < a.len; k++) {
		if (mime_lower((unsigned char)a.ptr[k]) !=
		    mime_lower((unsigned char)b.ptr[k]))
			return false;
	}
	return true;
}

/* Position after the next LF at or after pos, or end. */
static size_t
line_end(const char *s, size_t pos, size_t end)
{
	const char *lf = memchr(s + pos, '\n', end - pos);

	return lf != NULL ? (size_t)(lf - s) + 1 : end;
}

/* Lines as IMAP counts them: line ends, plus an unterminated last line. */
static size_t
count_lines(const char *s, size_t len)
{
	size_t n = 0, pos = 0;
	const char *lf;

	while (pos < len && (lf = memchr(s + pos, '\n', len - pos)) != NULL) {
		n++;
		pos = (size_t)(lf - s) + 1;
	}
	return pos < len ? n + 1 : n;
}

/*
 * Skip whitespace, folds and comments (nested, with quoted pairs). The
 * last comment's contents are reported through cstart/cend if non-NULL.
 */
size_t
mime_skip_cfws(const char *s, size_t pos, size_t end, size_t *cstart,
    size_t *cend)
{
	while (pos < end) {
		unsigned depth = 0;
		size_t open;

		if (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\r' ||
		    s[pos] == '\n') {
			pos++;
			continue;
		}
		if (s[pos] != '(')
			break;
		open = pos + 1;
		for (; pos < end; pos++) {
			if (s[pos] == '\\') {
				pos++;
			} else if (s[pos] == '(') {
				depth++;
			} else if (s[pos] == ')' && --depth == 0) {
				break;
			}
		}
		if (cstart != NULL) {
			*cstart = open;
			*cend = pos < end ? pos : end;
		}
		if (pos < end)
			pos++;
		if (pos > end)
			pos = end;
	}
	return pos;
}

/* RFC 2045 tspecials: a table, not strchr(), as this runs per byte of
 * every field name and parameter. */
static const bool tspecial[256] = {
	['('] = true,
	[')'] = true,
	['<'] = true,
	['>'] = true,
	['@'] = true,
	[','] = true,
	[';'] = true,
	[':'] = true,
	['\\'] = true,
	['"'] = true,
	['/'] = true,
	['['] = true,
	[']'] = true,
	['?'] = true,
	['='] = true,
};

/* RFC 2045 token: printable ASCII minus SP and tspecials. */
size_t
mime_token_end(const char *s, size_t pos, size_t end)
{
	while (pos < end && (unsigned char)s[pos] > 0x20 &&
	    (unsigned char)s[pos] < 0x7f && !tspecial[(unsigned char)s[pos]])
		pos++;
	return pos;
}

/* s[pos] == '"': the position after the closing quote (or end). */
size_t
mime_quoted_end(const char *s, size_t pos, size_t end)
{
	for (pos++; pos < end; pos++) {
		if (s[pos] == '\\')
			pos++;
		else if (s[pos] == '"')
			return pos + 1;
	}
	return end;
}

/* Contents of a quoted-string (quotes optional) without escapes or line
 * breaks; returns the length, truncating at cap. */
size_t
mime_unquote(const char *s, size_t len, char *out, size_t cap)
{
	size_t k = 0, n = 0;

	if (len > 0 && s[0] == '"')
		k = 1;
	for (; k < len; k++) {
		char c = s[k];

		if (c == '"')
			break;
		if (c == '\r' || c == '\n')
			continue;
		if (c == '\\' && k + 1 < len)
			c = s[++k];
		if (n < cap)
			out[n++] = c;
	}
	return n;
}

void
mime_header_init(struct mime_header_iter *it, const char *hdr, size_t len,
    const struct mime_limits *lim)
{
	memset(it, 0, sizeof(*it));
	it->p = hdr;
	it->end = len;
	it->max = lim != NULL && lim->max_headers > 0 ? lim->max_headers :
							DEFAULT_HEADERS;
	it->max_field = lim != NULL && lim->max_field > 0 ? lim->max_field :
							    DEFAULT_FIELD;
}

bool
mime_header_next(struct mime_header_iter *it, struct mime_field *f)
{
	const char *s = it->p;

	while (it->pos < it->end) {
		size_t start = it->pos, first = line_end(s, start, it->end);
		size_t e = first, name_end, v, vend;
		const char *colon;

		if (s[start] == '\n' ||
		    (s[start] == '\r' && first == start + 2)) {
			it->pos = it->end; /* the empty line ends the block */
			return false;
		}
		while (e < it->end && mime_is_wsp(s[e]))
			e = line_end(s, e, it->end);
		it->pos = e;
		/* a stray continuation line or a line without a colon */
		if (mime_is_wsp(s[start]) ||
		    (colon = memchr(s + start, ':', first - start)) == NULL)
			continue;
		name_end = (size_t)(colon - s);
		while (name_end > start && mime_is_wsp(s[name_end - 1]))
			name_end--;
		if (name_end == start ||
		    mime_token_end(s, start, name_end) != name_end)
			continue;
		if (e - start > it->max_field) {
			it->limited = true;
			continue;
		}
		if (it->count == it->max) {
			it->limited = true;
			it->pos = it->end;
			return false;
		}
		it->count++;
		v = (size_t)(colon - s) + 1;
		while (v < e && mime_is_wsp(s[v]))
			v++;
		f->name.ptr = s + start;
		f->name.len = name_end - start;
		f->raw.ptr = s + start;
		f->raw.len = e - start;
		vend = e;
		if (vend > v && s[vend - 1] == '\n')
			vend--;
		if (vend > v && s[vend - 1] == '\r')
			vend--;
		f->value.ptr = s + (v < vend ? v : vend);
		f->value.len = v < vend ? vend - v : 0;
		return true;
	}
	return false;
}

bool
mime_header_get(const char *hdr, size_t len, const char *name,
    struct mime_slice *value_r)
{
	struct mime_header_iter it;
	struct mime_field f;

	mime_header_init(&it, hdr, len, NULL);
	while (mime_header_next(&it, &f)) {
		if (mime_slice_is(f.name, name)) {
			*value_r = f.value;
			return true;
		}
	}
	value_r->ptr = NULL;
	value_r->len = 0;
	return false;
}

bool
mime_param_next(struct mime_slice *rest, struct mime_slice *name_r,
    struct mime_slice *value_r, bool *quoted_r)
{
	const char *s = rest->ptr;
	size_t pos = 0, end = rest->len, n0, v0;

	if (s == NULL)
		return false;
	for (;;) {
		pos = mime_skip_cfws(s, pos, end, NULL, NULL);
		/* resynchronise on the next ';' after anything unexpected */
		while (pos < end && s[pos] != ';')
			pos = s[pos] == '"' ? mime_quoted_end(s, pos, end) :
					      pos + 1;
		if (pos >= end) {
			rest->ptr = s + end;
			rest->len = 0;
			return false;
		}
		pos = mime_skip_cfws(s, pos + 1, end, NULL, NULL);
		n0 = pos;
		pos = mime_token_end(s, pos, end);
		if (pos == n0)
			continue;
		name_r->ptr = s + n0;
		name_r->len = pos - n0;
		pos = mime_skip_cfws(s, pos, end, NULL, NULL);
		if (pos >= end || s[pos] != '=')
			continue;
		pos = mime_skip_cfws(s, pos + 1, end, NULL, NULL);
		v0 = pos;
		*quoted_r = pos < end && s[pos] == '"';
		if (*quoted_r) {
			pos = mime_quoted_end(s, pos, end);
		} else {
			/* lenient: anything up to ';' or white space */
			while (pos < end && s[pos] != ';' && s[pos] != ' ' &&
			    s[pos] != '\t' && s[pos] != '\r' && s[pos] != '\n')
				pos++;
		}
		value_r->ptr = s + v0;
		value_r->len = pos - v0;
		rest->ptr = s + pos;
		rest->len = end - pos;
		return true;
	}
}

int
mime_param_get(struct mime_slice params, const char *name, char *buf,
    size_t bufsize)
{
	struct mime_slice n, v;
	bool quoted;
	size_t len;

	while (mime_param_next(&params, &n, &v, &quoted)) {
		if (!mime_slice_is(n, name))
			continue;
		len = mime_unquote(v.ptr, v.len, buf, bufsize);
		if (len >= bufsize)
			return -1;
		buf[len] = '\0';
		return (int)len;
	}
	return -1;
}

/*
 * The header block at off: true with its length (the empty line included)
 * in *hdr_r if an empty line ends it before off + len, false with len if
 * not. A CR at the very end is no empty line yet: its LF may follow.
 */
static bool
header_scan(const char *s, size_t off, size_t len, size_t *hdr_r)
{
	size_t pos = off, end = off + len;

	while (pos < end) {
		if (s[pos] == '\n') {
			*hdr_r = pos + 1 - off;
			return true;
		}
		if (s[pos] == '\r' && pos + 1 < end && s[pos + 1] == '\n') {
			*hdr_r = pos + 2 - off;
			return true;
		}
		pos = line_end(s, pos, end);
	}
	*hdr_r = len;
	return false;
}

/* Length of the header block at off, including the empty line. */
static size_t
header_len(const char *s, size_t off, size_t len)
{
	size_t hdr;

	header_scan(s, off, len, &hdr);
	return hdr;
}

bool
mime_header_end(const char *data, size_t len, size_t *hdr_len_r)
{
	return header_scan(data, 0, len, hdr_len_r);
}

int
mime_parse(struct mime_message *m, const char *data, size_t len,
    struct mime_part *parts, unsigned cap, const struct mime_limits *lim)
{
	memset(m, 0, sizeof(*m));
	if (cap == 0)
		return -1;
	m->data = data;
	m->len = len;
	m->parts = parts;
	m->cap = cap;
	if (lim != NULL)
		m->lim = *lim;
	if (m->lim.max_depth == 0)
		m->lim.max_depth = DEFAULT_DEPTH;
	if (m->lim.max_depth > HARD_DEPTH)
		m->lim.max_depth = HARD_DEPTH;
	add_part(m, MIME_NONE, 0, len);
	for (uint32_t i = 0; i < m->nparts; i++)
		parse_entity(m, i);
	return 0;
}

static uint32_t
add_part(struct mime_message *m, uint32_t parent, size_t off, size_t len)
{
	struct mime_part *p;

	if (m->nparts == m->cap) {
		m->limited = true;
		return MIME_NONE;
	}
	p = &m->parts[m->nparts];
	memset(p, 0, sizeof(*p));
	p->off = off;
	p->len = len;
	p->parent = parent;
	p->child = MIME_NONE;
	p->depth = parent == MIME_NONE ? 0 : m->parts[parent].depth + 1;
	return m->nparts++;
}

struct mime_slice
mime_first_token(struct mime_slice v, size_t *after)
{
	struct mime_slice t = { NULL, 0 };
	size_t pos = mime_skip_cfws(v.ptr, 0, v.len, NULL, NULL);
	size_t e = mime_token_end(v.ptr, pos, v.len);

	if (e > pos) {
		t.ptr = v.ptr + pos;
		t.len = e - pos;
	}
	if (after != NULL)
		*after = e;
	return t;
}

void
mime_parse_content_type(struct mime_part *p, struct mime_slice v)
{
	const char *s = v.ptr;
	size_t pos, t0, t1, s0, s1;

	pos = mime_skip_cfws(s, 0, v.len, NULL, NULL);
	t0 = pos;
	t1 = pos = mime_token_end(s, pos, v.len);
	pos = mime_skip_cfws(s, pos, v.len, NULL, NULL);
	if (t1 == t0 || pos >= v.len || s[pos] != '/')
		return;
	pos = mime_skip_cfws(s, pos + 1, v.len, NULL, NULL);
	s0 = pos;
	s1 = pos = mime_token_end(s, pos, v.len);
	if (s1 == s0)
		return;
	p->type.ptr = s + t0;
	p->type.len = t1 - t0;
	p->subtype.ptr = s + s0;
	p->subtype.len = s1 - s0;
	p->params.ptr = s + pos;
	p->params.len = v.len - pos;
	p->flags &= (uint16_t)~MIME_PART_DEFAULTED;
}

/* Encodings under which an encapsulated message can be parsed as is. */
static bool
identity_encoding(struct mime_slice enc)
{
	return enc.ptr == NULL || mime_slice_is(enc, "7bit") ||
	    mime_slice_is(enc, "8bit") || mime_slice_is(enc, "binary");
}

static void
parse_entity(struct mime_message *m, uint32_t i)
{
	struct mime_part *p = &m->parts[i];
	const char *hdr = m->data + p->off;
	struct mime_header_iter it;
	struct mime_field f;
	bool digest_child = false;
	size_t after;

	p->hdr_len = header_len(m->data, p->off, p->len);
	p->flags |= MIME_PART_DEFAULTED;
	mime_header_init(&it, hdr, p->hdr_len, &m->lim);
	while (mime_header_next(&it, &f)) {
		if (f.name.len < 8 || !mime_ieq(f.name.ptr, 8, "content-"))
			continue;
		if (mime_slice_is(f.name, "content-type") &&
		    (p->flags & MIME_PART_DEFAULTED))
			mime_parse_content_type(p, f.value);
		else if (mime_slice_is(f.name, "content-transfer-encoding"))
			p->encoding = mime_first_token(f.value, NULL);
		else if (mime_slice_is(f.name, "content-id"))
			p->id = f.value;
		else if (mime_slice_is(f.name, "content-description"))
			p->description = f.value;
		else if (mime_slice_is(f.name, "content-md5"))
			p->md5 = f.value;
		else if (mime_slice_is(f.name, "content-language"))
			p->language = f.value;
		else if (mime_slice_is(f.name, "content-location"))
			p->location = f.value;
		else if (mime_slice_is(f.name, "content-disposition")) {
			p->disposition = mime_first_token(f.value, &after);
			p->disposition_params.ptr = f.value.ptr + after;
			p->disposition_params.len = f.value.len - after;
		}
	}
	if (it.limited)
		m->limited = true;
	if (p->parent != MIME_NONE) {
		const struct mime_part *up = &m->parts[p->parent];

		digest_child = (up->flags & MIME_PART_MULTIPART) &&
		    mime_slice_is(up->subtype, "digest");
	}
	if (p->flags & MIME_PART_DEFAULTED) {
		p->type.ptr = digest_child ? "message" : "text";
		p->type.len = digest_child ? 7 : 4;
		p->subtype.ptr = digest_child ? "rfc822" : "plain";
		p->subtype.len = digest_child ? 6 : 5;
		p->params.ptr = NULL;
		p->params.len = 0;
	}
	if (mime_slice_is(p->type, "multipart")) {
		split_multipart(m, i);
		p = &m->parts[i];
	} else if (mime_slice_is(p->type, "message") &&
	    (mime_slice_is(p->subtype, "rfc822") ||
		mime_slice_is(p->subtype, "global")) &&
	    identity_encoding(p->encoding)) {
		uint32_t c = MIME_NONE;

		if (p->depth + 1u > m->lim.max_depth)
			m->limited = true;
		else
			c = add_part(m, i, mime_body_off(p), mime_body_len(p));
		p = &m->parts[i];
		if (c != MIME_NONE) {
			p->child = c;
			p->nchildren = 1;
			p->flags |= MIME_PART_MESSAGE;
		}
	}
	if (mime_slice_is(p->type, "text") || (p->flags & MIME_PART_MESSAGE))
		p->body_lines = count_lines(m->data + mime_body_off(p),
		    mime_body_len(p));
}

/*
 * A delimiter line at s[line]: "--" boundary ["--"] *LWSP CRLF, at the start
 * of the multipart body or after a LF. Searches from `from`.
 */
static bool
find_delimiter(const char *s, size_t start, size_t from, size_t end,
    const char *pat, size_t plen, size_t *line_r, size_t *next_r, bool *close_r)
{
	size_t pos = from;

	while (pos < end) {
		const char *hit = memmem(s + pos, end - pos, pat, plen);
		size_t h, q;

		if (hit == NULL)
			return false;
		h = (size_t)(hit - s);
		pos = h + 1;
		if (h != start && s[h - 1] != '\n')
			continue;
		q = h + plen;
		*close_r = false;
		if (end - q >= 2 && s[q] == '-' && s[q + 1] == '-') {
			*close_r = true;
			q += 2;
		}
		while (q < end && mime_is_wsp(s[q]))
			q++;
		if (q == end || s[q] == '\n')
			*next_r = q < end ? q + 1 : end;
		else if (s[q] == '\r' && (q + 1 == end || s[q + 1] == '\n'))
			*next_r = q + 1 < end ? q + 2 : end;
		else
			continue;
		*line_r = h;
		return true;
	}
	return false;
}

static void
split_multipart(struct mime_message *m, uint32_t i)
{
	struct mime_part *p = &m->parts[i];
	char pat[MAX_BOUNDARY + 3];
	int blen = mime_param_get(p->params, "boundary", pat + 2,
	    sizeof(pat) - 2);
	size_t bs = mime_body_off(p), be = bs + mime_body_len(p);
	size_t line, next, part_start, end;
	bool close;
	uint32_t first = MIME_NONE, n = 0, c;

	if (p->depth + 1u > m->lim.max_depth) {
		m->limited = true;
		return;
	}
	pat[0] = '-';
	pat[1] = '-';
	if (blen <= 0 ||
	    !find_delimiter(m->data, bs, bs, be, pat, (size_t)blen + 2, &line,
		&next, &close)) {
		/* RFC 2046 gives no meaning to this: show it as text. */
		p->flags |= MIME_PART_BROKEN;
		p->type.ptr = "text";
		p->type.len = 4;
		p->subtype.ptr = "plain";
		p->subtype.len = 5;
		p->params.ptr = NULL;
		p->params.len = 0;
		return;
	}
	while (!close) {
		part_start = next;
		if (find_delimiter(m->data, bs, part_start, be, pat,
			(size_t)blen + 2, &line, &next, &close)) {
			/* the line break before a delimiter belongs to it */
			end = line;
			if (end > part_start && m->data[end - 1] == '\n')
				end--;
			if (end > part_start && m->data[end - 1] == '\r')
				end--;
		} else {
			end = be; /* no close delimiter: runs to the end */
			close = true;
		}
		c = add_part(m, i, part_start, end - part_start);
		if (c == MIME_NONE)
			break;
		if (first == MIME_NONE)
			first = c;
		n++;
	}
	p = &m->parts[i];
	if (n == 0) {
		p->flags |= MIME_PART_BROKEN;
		return;
	}
	p->flags |= MIME_PART_MULTIPART;
	p->child = first;
	p->nchildren = n;
}

int
mime_section(const struct mime_message *m, const uint32_t *path, unsigned n,
    enum mime_sect kind, size_t *off_r, size_t *len_r, uint32_t *part_r)
{
	uint32_t cur = 0, target = 0;
	bool cur_is_msg = true;
	const struct mime_part *p;

	for (unsigned k = 0; k < n; k++) {
		const struct mime_part *c = &m->parts[cur];

		if (c->flags & MIME_PART_MULTIPART) {
			if (path[k] < 1 || path[k] > c->nchildren)
				return -1;
			target = c->child + path[k] - 1;
		} else if (cur_is_msg && path[k] == 1) {
			target = cur; /* a single-part message's part 1 */
		} else {
			return -1;
		}
		if (m->parts[target].flags & MIME_PART_MESSAGE) {
			cur = m->parts[target].child;
			cur_is_msg = true;
		} else {
			cur = target;
			cur_is_msg = false;
		}
	}
	p = &m->parts[target];
	*part_r = target;
	switch (kind) {
	case MIME_SECT_BODY:
		if (n == 0) {
			*off_r = 0;
			*len_r = m->len;
		} else {
			*off_r = mime_body_off(p);
			*len_r = mime_body_len(p);
		}
		return 0;
	case MIME_SECT_MIME:
		if (n == 0)
			return -1;
		*off_r = p->off;
		*len_r = p->hdr_len;
		return 0;
	case MIME_SECT_HEADER:
	case MIME_SECT_TEXT:
		if (n > 0) {
			/* only a message/rfc822 part has a header of its own */
			if (!(p->flags & MIME_PART_MESSAGE))
				return -1;
			target = p->child;
			p = &m->parts[target];
			*part_r = target;
		}
		*off_r = kind == MIME_SECT_HEADER ? p->off : mime_body_off(p);
		*len_r = kind == MIME_SECT_HEADER ? p->hdr_len :
						    mime_body_len(p);
		return 0;
	}
	return -1;
}

size_t
mime_header_fields(const char *hdr, size_t len, const struct mime_slice *names,
    size_t nnames, bool not, mime_write_fn *w, void *ctx)
{
	struct mime_header_iter it;
	struct mime_field f;
	size_t total = 0;

	mime_header_init(&it, hdr, len, NULL);
	while (mime_header_next(&it, &f)) {
		bool match = false;

		for (size_t k = 0; k < nnames && !match; k++)
			match = slice_ieq(names[k], f.name);
		if (match == not )
			continue;
		if (w != NULL && w(ctx, f.raw.ptr, f.raw.len) == -1)
			return (size_t)-1;
		total += f.raw.len;
		/* a last field without line end still needs one */
		if (f.raw.ptr[f.raw.len - 1] != '\n') {
			if (w != NULL && w(ctx, "\r\n", 2) == -1)
				return (size_t)-1;
			total += 2;
		}
	}
	if (w != NULL && w(ctx, "\r\n", 2) == -1)
		return (size_t)-1;
	return total + 2;
}
