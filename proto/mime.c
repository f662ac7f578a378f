/*
 * mime.c - header fields, MIME structure, IMAP sections, ENVELOPE and
 * BODYSTRUCTURE output, and SEARCH over one message in memory.
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

#define DEFAULT_DEPTH 32
#define HARD_DEPTH 64
#define DEFAULT_HEADERS 1000
#define DEFAULT_FIELD (64 * 1024)
#define MAX_BOUNDARY 200
#define NAME_SCRATCH 1024
#define MAX_WORD 256 /* longest RFC 2047 encoded word we decode */

/* small text helpers */
static unsigned char lower(unsigned char c);
static bool slice_is(struct mime_slice s, const char *word);
static bool slice_ieq(struct mime_slice a, struct mime_slice b);
static bool ieq(const char *a, size_t alen, const char *word);
static size_t line_end(const char *s, size_t pos, size_t end);
static size_t count_lines(const char *s, size_t len);
static bool is_wsp(char c);

/* RFC 5322 / 2045 lexing */
static size_t skip_cfws(const char *s, size_t pos, size_t end, size_t *cstart,
			size_t *cend);
static size_t token_end(const char *s, size_t pos, size_t end);
static size_t quoted_end(const char *s, size_t pos, size_t end);
static size_t unquote(const char *s, size_t len, char *out, size_t cap);

/* structure */
static size_t header_len(const char *s, size_t off, size_t len);
static void parse_entity(struct mime_message *m, uint32_t i);
static void parse_content_type(struct mime_part *p, struct mime_slice v);
static struct mime_slice first_token(struct mime_slice v, size_t *after);
static void split_multipart(struct mime_message *m, uint32_t i);
static bool find_delimiter(const char *s, size_t start, size_t from, size_t end,
			   const char *pat, size_t plen, size_t *line_r,
			   size_t *next_r, bool *close_r);
static uint32_t add_part(struct mime_message *m, uint32_t parent, size_t off,
			 size_t len);
static bool identity_encoding(struct mime_slice enc);

/* addresses */
struct lex {
	int type; /* 'a' atom, 'q' quoted, 'd' domain literal, 0 end, or the
		     special character itself */
	size_t start, end;
};
static struct lex lex_next(struct mime_addr_iter *it);
static size_t normalize_phrase(const char *s, size_t start, size_t end,
			       char *out, size_t cap);
static void addr_spec(struct mime_addr_iter *it, struct mime_address *a,
		      int stop);

/* output */
struct out {
	mime_write_fn *w;
	void *ctx;
	bool err;
	size_t n;
	char buf[512];
};
enum xf {
	XF_UNFOLD, /* raw value: drop CR and LF */
	XF_QUOTED, /* quoted-string: drop the quotes, undo escapes */
};
static void out_bytes(struct out *o, const char *p, size_t len);
static void out_str(struct out *o, const char *s);
static int out_end(struct out *o);
static void out_nstring(struct out *o, const char *p, size_t len, enum xf mode);
static void out_number(struct out *o, size_t n);
static void out_params(struct out *o, struct mime_slice params, bool defaulted);
static void out_ext(struct out *o, const struct mime_part *p, bool multi);
static void out_addresses(struct out *o, struct mime_slice v);
static size_t addr_count(struct mime_slice v);
static void out_envelope(struct out *o, const struct mime_message *m,
			 uint32_t part);
static void out_body(struct out *o, const struct mime_message *m, uint32_t i,
		     bool ext);

/* search */
struct search {
	const char *needle;
	size_t nlen, j; /* j: bytes of the needle matched so far */
	bool found;
	uint16_t fail[MIME_SEARCH_MAX];
};
static void search_init(struct search *s, const char *needle, size_t nlen);
static void search_push(struct search *s, const char *p, size_t len);
static bool search_end(struct search *s);
static void push_base64(struct search *s, const char *p, size_t len);
static void push_qp(struct search *s, const char *p, size_t len, bool q);
static void push_2047(struct search *s, const char *p, size_t len);
static int hexval(unsigned char c);
static int b64val(unsigned char c);

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static bool
ieq(const char *a, size_t alen, const char *word)
{
	size_t k;

	for (k = 0; k < alen && word[k] != '\0'; k++) {
		if (lower((unsigned char)a[k]) != lower((unsigned char)word[k]))
			return false;
	}
	return k == alen && word[k] == '\0';
}

static bool
slice_is(struct mime_slice s, const char *word)
{
	return s.ptr != NULL && ieq(s.ptr, s.len, word);
}

static bool
slice_ieq(struct mime_slice a, struct mime_slice b)
{
	if (a.len != b.len)
		return false;
	for (size_t k = 0; k < a.len; k++) {
		if (lower((unsigned char)a.ptr[k]) !=
		    lower((unsigned char)b.ptr[k]))
			return false;
	}
	return true;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
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
static size_t
skip_cfws(const char *s, size_t pos, size_t end, size_t *cstart, size_t *cend)
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

/* RFC 2045 token: printable ASCII minus SP and tspecials. */
static size_t
token_end(const char *s, size_t pos, size_t end)
{
	while (pos < end && (unsigned char)s[pos] > 0x20 &&
	       (unsigned char)s[pos] < 0x7f &&
	       strchr("()<>@,;:\\\"/[]?=", s[pos]) == NULL)
		pos++;
	return pos;
}

/* s[pos] == '"': the position after the closing quote (or end). */
static size_t
quoted_end(const char *s, size_t pos, size_t end)
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
static size_t
unquote(const char *s, size_t len, char *out, size_t cap)
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
	it->max = lim != NULL && lim->max_headers > 0 ? lim->max_headers
						      : DEFAULT_HEADERS;
	it->max_field =
	    lim != NULL && lim->max_field > 0 ? lim->max_field : DEFAULT_FIELD;
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
		while (e < it->end && is_wsp(s[e]))
			e = line_end(s, e, it->end);
		it->pos = e;
		/* a stray continuation line or a line without a colon */
		if (is_wsp(s[start]) ||
		    (colon = memchr(s + start, ':', first - start)) == NULL)
			continue;
		name_end = (size_t)(colon - s);
		while (name_end > start && is_wsp(s[name_end - 1]))
			name_end--;
		if (name_end == start ||
		    token_end(s, start, name_end) != name_end)
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
		while (v < e && is_wsp(s[v]))
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
		if (slice_is(f.name, name)) {
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
		pos = skip_cfws(s, pos, end, NULL, NULL);
		/* resynchronise on the next ';' after anything unexpected */
		while (pos < end && s[pos] != ';')
			pos = s[pos] == '"' ? quoted_end(s, pos, end) : pos + 1;
		if (pos >= end) {
			rest->ptr = s + end;
			rest->len = 0;
			return false;
		}
		pos = skip_cfws(s, pos + 1, end, NULL, NULL);
		n0 = pos;
		pos = token_end(s, pos, end);
		if (pos == n0)
			continue;
		name_r->ptr = s + n0;
		name_r->len = pos - n0;
		pos = skip_cfws(s, pos, end, NULL, NULL);
		if (pos >= end || s[pos] != '=')
			continue;
		pos = skip_cfws(s, pos + 1, end, NULL, NULL);
		v0 = pos;
		*quoted_r = pos < end && s[pos] == '"';
		if (*quoted_r) {
			pos = quoted_end(s, pos, end);
		} else {
			/* lenient: anything up to ';' or white space */
			while (pos < end && s[pos] != ';' && s[pos] != ' ' &&
			       s[pos] != '\t' && s[pos] != '\r' &&
			       s[pos] != '\n')
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
		if (!slice_is(n, name))
			continue;
		len = unquote(v.ptr, v.len, buf, bufsize);
		if (len >= bufsize)
			return -1;
		buf[len] = '\0';
		return (int)len;
	}
	return -1;
}

/* Length of the header block at off, including the empty line. */
static size_t
header_len(const char *s, size_t off, size_t len)
{
	size_t pos = off, end = off + len;

	while (pos < end) {
		if (s[pos] == '\n')
			return pos + 1 - off;
		if (s[pos] == '\r' && pos + 1 < end && s[pos + 1] == '\n')
			return pos + 2 - off;
		pos = line_end(s, pos, end);
	}
	return len;
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

/* First token of a value (Content-Transfer-Encoding, disposition type). */
static struct mime_slice
first_token(struct mime_slice v, size_t *after)
{
	struct mime_slice t = {NULL, 0};
	size_t pos = skip_cfws(v.ptr, 0, v.len, NULL, NULL);
	size_t e = token_end(v.ptr, pos, v.len);

	if (e > pos) {
		t.ptr = v.ptr + pos;
		t.len = e - pos;
	}
	if (after != NULL)
		*after = e;
	return t;
}

static void
parse_content_type(struct mime_part *p, struct mime_slice v)
{
	const char *s = v.ptr;
	size_t pos, t0, t1, s0, s1;

	pos = skip_cfws(s, 0, v.len, NULL, NULL);
	t0 = pos;
	t1 = pos = token_end(s, pos, v.len);
	pos = skip_cfws(s, pos, v.len, NULL, NULL);
	if (t1 == t0 || pos >= v.len || s[pos] != '/')
		return;
	pos = skip_cfws(s, pos + 1, v.len, NULL, NULL);
	s0 = pos;
	s1 = pos = token_end(s, pos, v.len);
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
	return enc.ptr == NULL || slice_is(enc, "7bit") ||
	       slice_is(enc, "8bit") || slice_is(enc, "binary");
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
		if (f.name.len < 8 || !ieq(f.name.ptr, 8, "content-"))
			continue;
		if (slice_is(f.name, "content-type") &&
		    (p->flags & MIME_PART_DEFAULTED))
			parse_content_type(p, f.value);
		else if (slice_is(f.name, "content-transfer-encoding"))
			p->encoding = first_token(f.value, NULL);
		else if (slice_is(f.name, "content-id"))
			p->id = f.value;
		else if (slice_is(f.name, "content-description"))
			p->description = f.value;
		else if (slice_is(f.name, "content-md5"))
			p->md5 = f.value;
		else if (slice_is(f.name, "content-language"))
			p->language = f.value;
		else if (slice_is(f.name, "content-location"))
			p->location = f.value;
		else if (slice_is(f.name, "content-disposition")) {
			p->disposition = first_token(f.value, &after);
			p->disposition_params.ptr = f.value.ptr + after;
			p->disposition_params.len = f.value.len - after;
		}
	}
	if (it.limited)
		m->limited = true;
	if (p->parent != MIME_NONE) {
		const struct mime_part *up = &m->parts[p->parent];

		digest_child = (up->flags & MIME_PART_MULTIPART) &&
			       slice_is(up->subtype, "digest");
	}
	if (p->flags & MIME_PART_DEFAULTED) {
		p->type.ptr = digest_child ? "message" : "text";
		p->type.len = digest_child ? 7 : 4;
		p->subtype.ptr = digest_child ? "rfc822" : "plain";
		p->subtype.len = digest_child ? 6 : 5;
		p->params.ptr = NULL;
		p->params.len = 0;
	}
	if (slice_is(p->type, "multipart")) {
		split_multipart(m, i);
		p = &m->parts[i];
	} else if (slice_is(p->type, "message") &&
		   (slice_is(p->subtype, "rfc822") ||
		    slice_is(p->subtype, "global")) &&
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
	if (slice_is(p->type, "text") || (p->flags & MIME_PART_MESSAGE))
		p->body_lines =
		    count_lines(m->data + mime_body_off(p), mime_body_len(p));
}

/*
 * A delimiter line at s[line]: "--" boundary ["--"] *LWSP CRLF, at the start
 * of the multipart body or after a LF. Searches from `from`.
 */
static bool
find_delimiter(const char *s, size_t start, size_t from, size_t end,
	       const char *pat, size_t plen, size_t *line_r, size_t *next_r,
	       bool *close_r)
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
		while (q < end && is_wsp(s[q]))
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
	int blen =
	    mime_param_get(p->params, "boundary", pat + 2, sizeof(pat) - 2);
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
	     enum mime_sect kind, size_t *off_r, size_t *len_r,
	     uint32_t *part_r)
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
		*len_r =
		    kind == MIME_SECT_HEADER ? p->hdr_len : mime_body_len(p);
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

/*
 * Address lexer over a header value: atoms (anything but specials and
 * white space, 8-bit included), quoted strings, domain literals and single
 * specials. Comments are skipped and remembered for the name fallback.
 */
static struct lex
lex_next(struct mime_addr_iter *it)
{
	struct lex t = {0, 0, 0};
	const char *s = it->s;
	size_t pos = skip_cfws(s, it->pos, it->len, &it->cstart, &it->cend);

	t.start = pos;
	if (pos >= it->len) {
		it->pos = t.end = it->len;
		return t;
	}
	if (s[pos] == '"') {
		t.type = 'q';
		pos = quoted_end(s, pos, it->len);
	} else if (s[pos] == '[') {
		t.type = 'd';
		while (pos < it->len && s[pos] != ']')
			pos += s[pos] == '\\' ? 2 : 1;
		pos = pos < it->len ? pos + 1 : it->len;
	} else if (strchr("<>@,;:.)", s[pos]) != NULL) {
		t.type = (unsigned char)s[pos];
		pos++;
	} else {
		t.type = 'a';
		while (pos < it->len &&
		       strchr("()<>@,;:\\\".[] \t\r\n", s[pos]) == NULL)
			pos++;
		if (pos == t.start)
			pos++; /* a lone '\\' or ']': an atom of its own */
	}
	it->pos = t.end = pos;
	return t;
}

/* A phrase for display: quotes and comments removed, runs of white space
 * (folds included) collapsed to one space, trimmed. */
static size_t
normalize_phrase(const char *s, size_t start, size_t end, char *out, size_t cap)
{
	size_t n = 0, pos = start;
	bool space = false;

	while (pos < end) {
		char c = s[pos];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '(') {
			if (c == '(')
				pos = skip_cfws(s, pos, end, NULL, NULL);
			else
				pos++;
			space = n > 0;
			continue;
		}
		if (space && n < cap)
			out[n++] = ' ';
		space = false;
		if (c == '"') {
			size_t q = quoted_end(s, pos, end);

			n += unquote(s + pos, q - pos, out + n, cap - n);
			pos = q;
			continue;
		}
		if (n < cap)
			out[n++] = c;
		pos++;
	}
	return n;
}

void
mime_addr_init(struct mime_addr_iter *it, const char *value, size_t len)
{
	memset(it, 0, sizeof(*it));
	it->s = value;
	it->len = value != NULL ? len : 0;
}

/*
 * local-part "@" domain, each a run of words, dots and domain literals,
 * ending at `stop`, ',' , ';' or the end. The stopping token is consumed
 * unless it is ';' or ',' (left for the caller) and ends the spec.
 */
static void
addr_spec(struct mime_addr_iter *it, struct mime_address *a, int stop)
{
	size_t l0 = 0, l1 = 0, d0 = 0, d1 = 0, save;
	bool at = false, have_l = false, have_d = false;
	struct lex t;

	for (;;) {
		save = it->pos;
		t = lex_next(it);
		if (t.type == 'a' || t.type == 'q' || t.type == 'd' ||
		    t.type == '.') {
			if (!at) {
				l0 = have_l ? l0 : t.start;
				l1 = t.end;
				have_l = true;
			} else {
				d0 = have_d ? d0 : t.start;
				d1 = t.end;
				have_d = true;
			}
			continue;
		}
		if (t.type == '@' && !at) {
			at = true;
			continue;
		}
		if (t.type == 0 || t.type == ',' || t.type == ';' ||
		    t.type == stop) {
			if (t.type == ',' || t.type == ';')
				it->pos = save;
			break;
		}
		/* anything else (a stray '<', ':' or '@'): ignore it */
	}
	a->mailbox.ptr = have_l ? it->s + l0 : "MISSING_MAILBOX";
	a->mailbox.len = have_l ? l1 - l0 : 15;
	a->host.ptr = have_d ? it->s + d0 : "MISSING_DOMAIN";
	a->host.len = have_d ? d1 - d0 : 14;
}

bool
mime_addr_next(struct mime_addr_iter *it, struct mime_address *a, char *scratch,
	       size_t scratch_cap)
{
	for (;;) {
		size_t p0, p1, save = it->pos;
		struct lex t;
		bool words = false;

		memset(a, 0, sizeof(*a));
		it->cstart = it->cend = 0;
		t = lex_next(it);
		if (t.type == ',')
			continue;
		if (t.type == 0 || (t.type == ';' && it->in_group)) {
			if (!it->in_group)
				return false;
			it->in_group = false; /* also closes an open group */
			a->kind = MIME_ADDR_GROUP_END;
			return true;
		}
		/* a phrase (or a local part) up to what tells them apart */
		p0 = p1 = t.start;
		while (t.type == 'a' || t.type == 'q' || t.type == '.' ||
		       t.type == 'd') {
			words = true;
			p1 = t.end;
			save = it->pos;
			t = lex_next(it);
		}
		if (t.type == ':' && !it->in_group && words) {
			it->in_group = true;
			a->kind = MIME_ADDR_GROUP_START;
			a->mailbox.ptr = scratch;
			a->mailbox.len = normalize_phrase(it->s, p0, p1,
							  scratch, scratch_cap);
			return true;
		}
		if (t.type == '<') {
			a->kind = MIME_ADDR_MAILBOX;
			if (words) {
				a->name.ptr = scratch;
				a->name.len = normalize_phrase(
				    it->s, p0, p1, scratch, scratch_cap);
			}
			/* obs-route: "@a,@b:" before the addr-spec */
			save = it->pos;
			t = lex_next(it);
			if (t.type == '@') {
				size_t r0 = t.start;

				while (t.type != ':' && t.type != '>' &&
				       t.type != 0)
					t = lex_next(it);
				if (t.type == ':') {
					a->adl.ptr = it->s + r0;
					a->adl.len = t.start - r0;
				} else {
					it->pos = save;
				}
			} else {
				it->pos = save;
			}
			addr_spec(it, a, '>');
			/* skip to the next address, keeping ';' for the group
			 */
			for (;;) {
				save = it->pos;
				t = lex_next(it);
				if (t.type == 0 || t.type == ',')
					break;
				if (t.type == ';') {
					it->pos = save;
					break;
				}
			}
			return true;
		}
		/* a stray special, or ';' outside a group: noise */
		if (!words && t.type != '@')
			continue;
		/* a bare addr-spec: reread it as one */
		it->pos = p0;
		a->kind = MIME_ADDR_MAILBOX;
		addr_spec(it, a, 0);
		if (it->cend > it->cstart) {
			/* old style "user@host (Real Name)" */
			a->name.ptr = scratch;
			a->name.len = normalize_phrase(
			    it->s, it->cstart, it->cend, scratch, scratch_cap);
		}
		return true;
	}
}

static void
out_bytes(struct out *o, const char *p, size_t len)
{
	if (o->err)
		return;
	if (len > sizeof(o->buf) - o->n) {
		if (o->n > 0 && o->w(o->ctx, o->buf, o->n) == -1) {
			o->err = true;
			return;
		}
		o->n = 0;
		if (len >= sizeof(o->buf)) {
			if (o->w(o->ctx, p, len) == -1)
				o->err = true;
			return;
		}
	}
	memcpy(o->buf + o->n, p, len);
	o->n += len;
}

static void
out_str(struct out *o, const char *s)
{
	out_bytes(o, s, strlen(s));
}

static int
out_end(struct out *o)
{
	if (!o->err && o->n > 0 && o->w(o->ctx, o->buf, o->n) == -1)
		o->err = true;
	o->n = 0;
	return o->err ? -1 : 0;
}

static void
out_number(struct out *o, size_t n)
{
	char b[32];
	int len = snprintf(b, sizeof(b), "%zu", n);

	out_bytes(o, b, (size_t)len);
}

/*
 * An IMAP nstring from a header value: unfolded (and unquoted in XF_QUOTED
 * mode), as a quoted string if it is plain 7-bit, else as a literal. Two
 * passes over the source instead of a copy.
 */
static void
out_nstring(struct out *o, const char *p, size_t len, enum xf mode)
{
	size_t n = 0, k = 0, end = len;
	bool quotable = true;

	if (p == NULL) {
		out_str(o, "NIL");
		return;
	}
	if (mode == XF_QUOTED && len > 0 && p[0] == '"') {
		k = 1;
		end = quoted_end(p, 0, len);
		if (end > 1 && p[end - 1] == '"')
			end--;
	}
	for (size_t i = k; i < end; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r' || c == '\n')
			continue;
		if (mode == XF_QUOTED && c == '\\' && i + 1 < end)
			c = (unsigned char)p[++i];
		if (c == 0 || c >= 0x80 || c == '\r' || c == '\n')
			quotable = false;
		n++;
	}
	if (quotable) {
		out_bytes(o, "\"", 1);
	} else {
		out_bytes(o, "{", 1);
		out_number(o, n);
		out_bytes(o, "}\r\n", 3);
	}
	for (size_t i = k; i < end; i++) {
		char c = p[i];

		if (c == '\r' || c == '\n')
			continue;
		if (mode == XF_QUOTED && c == '\\' && i + 1 < end)
			c = p[++i];
		if (quotable && (c == '"' || c == '\\'))
			out_bytes(o, "\\", 1);
		out_bytes(o, &c, 1);
	}
	if (quotable)
		out_bytes(o, "\"", 1);
}

static void
out_params(struct out *o, struct mime_slice params, bool defaulted)
{
	struct mime_slice n, v;
	bool quoted, any = false;

	if (defaulted) {
		out_str(o, "(\"charset\" \"us-ascii\")");
		return;
	}
	while (mime_param_next(&params, &n, &v, &quoted)) {
		out_str(o, any ? " " : "(");
		any = true;
		out_nstring(o, n.ptr, n.len, XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_nstring(o, v.ptr, v.len, quoted ? XF_QUOTED : XF_UNFOLD);
	}
	out_str(o, any ? ")" : "NIL");
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc (md5 first if !multi). */
static void
out_ext(struct out *o, const struct mime_part *p, bool multi)
{
	size_t pos = 0, t0, count = 0;
	const char *s = p->language.ptr;

	if (!multi) {
		out_bytes(o, " ", 1);
		out_nstring(o, p->md5.ptr, p->md5.len, XF_UNFOLD);
	}
	out_bytes(o, " ", 1);
	if (p->disposition.ptr != NULL) {
		out_bytes(o, "(", 1);
		out_nstring(o, p->disposition.ptr, p->disposition.len,
			    XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_params(o, p->disposition_params, false);
		out_bytes(o, ")", 1);
	} else {
		out_str(o, "NIL");
	}
	out_bytes(o, " ", 1);
	/* Content-Language: a comma separated list of tags */
	for (int pass = 0; pass < 2; pass++) {
		size_t k = 0;

		for (pos = 0; s != NULL && pos < p->language.len;) {
			pos = skip_cfws(s, pos, p->language.len, NULL, NULL);
			t0 = pos;
			pos = token_end(s, pos, p->language.len);
			if (pos > t0) {
				if (pass == 0) {
					count++;
				} else {
					if (count > 1)
						out_str(o, k == 0 ? "(" : " ");
					out_nstring(o, s + t0, pos - t0,
						    XF_UNFOLD);
					k++;
				}
			} else {
				pos++; /* ',' or junk */
			}
		}
		if (pass == 0 && count == 0) {
			out_str(o, "NIL");
			break;
		}
	}
	if (count > 1)
		out_bytes(o, ")", 1);
	out_bytes(o, " ", 1);
	out_nstring(o, p->location.ptr, p->location.len, XF_UNFOLD);
}

static size_t
addr_count(struct mime_slice v)
{
	struct mime_addr_iter it;
	struct mime_address a;
	char scratch[16];
	size_t n = 0;

	mime_addr_init(&it, v.ptr, v.len);
	while (mime_addr_next(&it, &a, scratch, sizeof(scratch)))
		n++;
	return n;
}

static void
out_addresses(struct out *o, struct mime_slice v)
{
	struct mime_addr_iter it;
	struct mime_address a;
	char scratch[NAME_SCRATCH];
	bool any = false;

	mime_addr_init(&it, v.ptr, v.len);
	while (mime_addr_next(&it, &a, scratch, sizeof(scratch))) {
		out_str(o, any ? "(" : "((");
		any = true;
		out_nstring(o, a.name.ptr, a.name.len, XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_nstring(o, a.adl.ptr, a.adl.len, XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_nstring(o, a.mailbox.ptr, a.mailbox.len, XF_UNFOLD);
		out_bytes(o, " ", 1);
		out_nstring(o, a.host.ptr, a.host.len, XF_UNFOLD);
		out_bytes(o, ")", 1);
	}
	out_str(o, any ? ")" : "NIL");
}

static void
out_envelope(struct out *o, const struct mime_message *m, uint32_t part)
{
	static const char *const fields[] = {
	    "date", "subject", "from", "sender",      "reply-to",
	    "to",   "cc",      "bcc",  "in-reply-to", "message-id"};
	const struct mime_part *p = &m->parts[part];
	const char *hdr = m->data + p->off;
	struct mime_slice v[10], from;

	for (size_t k = 0; k < 10; k++)
		mime_header_get(hdr, p->hdr_len, fields[k], &v[k]);
	from = v[2];
	/* RFC 3501: absent or empty Sender and Reply-To default to From */
	if (v[3].ptr == NULL || addr_count(v[3]) == 0)
		v[3] = from;
	if (v[4].ptr == NULL || addr_count(v[4]) == 0)
		v[4] = from;
	out_bytes(o, "(", 1);
	for (size_t k = 0; k < 10; k++) {
		if (k > 0)
			out_bytes(o, " ", 1);
		if (k >= 2 && k <= 7)
			out_addresses(o, v[k]);
		else
			out_nstring(o, v[k].ptr, v[k].len, XF_UNFOLD);
	}
	out_bytes(o, ")", 1);
}

static void
out_body(struct out *o, const struct mime_message *m, uint32_t i, bool ext)
{
	const struct mime_part *p = &m->parts[i];
	bool message = (p->flags & MIME_PART_MESSAGE) != 0;
	struct mime_slice type = p->type, subtype = p->subtype;

	out_bytes(o, "(", 1);
	if (p->flags & MIME_PART_MULTIPART) {
		for (uint32_t k = 0; k < p->nchildren; k++)
			out_body(o, m, p->child + k, ext);
		out_bytes(o, " ", 1);
		out_nstring(o, p->subtype.ptr, p->subtype.len, XF_UNFOLD);
		if (ext) {
			out_bytes(o, " ", 1);
			out_params(o, p->params, false);
			out_ext(o, p, true);
		}
		out_bytes(o, ")", 1);
		return;
	}
	/* A message/rfc822 we could not open must not promise an envelope. */
	if (!message && slice_is(type, "message") &&
	    (slice_is(subtype, "rfc822") || slice_is(subtype, "global"))) {
		type.ptr = "application";
		type.len = 11;
		subtype.ptr = "octet-stream";
		subtype.len = 12;
	}
	out_nstring(o, type.ptr, type.len, XF_UNFOLD);
	out_bytes(o, " ", 1);
	out_nstring(o, subtype.ptr, subtype.len, XF_UNFOLD);
	out_bytes(o, " ", 1);
	out_params(o, p->params,
		   (p->flags & (MIME_PART_DEFAULTED | MIME_PART_BROKEN)) != 0 &&
		       slice_is(p->type, "text"));
	out_bytes(o, " ", 1);
	out_nstring(o, p->id.ptr, p->id.len, XF_UNFOLD);
	out_bytes(o, " ", 1);
	out_nstring(o, p->description.ptr, p->description.len, XF_UNFOLD);
	out_bytes(o, " ", 1);
	if (p->encoding.ptr != NULL)
		out_nstring(o, p->encoding.ptr, p->encoding.len, XF_UNFOLD);
	else
		out_str(o, "\"7BIT\"");
	out_bytes(o, " ", 1);
	out_number(o, mime_body_len(p));
	if (message) {
		out_bytes(o, " ", 1);
		out_envelope(o, m, p->child);
		out_bytes(o, " ", 1);
		out_body(o, m, p->child, ext);
		out_bytes(o, " ", 1);
		out_number(o, p->body_lines);
	} else if (slice_is(type, "text")) {
		out_bytes(o, " ", 1);
		out_number(o, p->body_lines);
	}
	if (ext)
		out_ext(o, p, false);
	out_bytes(o, ")", 1);
}

int
mime_write_envelope(const struct mime_message *m, uint32_t part,
		    mime_write_fn *w, void *ctx)
{
	struct out o = {.w = w, .ctx = ctx};

	if (part >= m->nparts)
		return -1;
	out_envelope(&o, m, part);
	return out_end(&o);
}

int
mime_write_bodystructure(const struct mime_message *m, uint32_t part,
			 bool extended, mime_write_fn *w, void *ctx)
{
	struct out o = {.w = w, .ctx = ctx};

	if (part >= m->nparts)
		return -1;
	out_body(&o, m, part, extended);
	return out_end(&o);
}

/*
 * Knuth-Morris-Pratt over ASCII-lowered bytes: the decoders stream into
 * it, so nothing is buffered and no needle/text pair can go quadratic.
 */
static void
search_init(struct search *s, const char *needle, size_t nlen)
{
	size_t k = 0;

	s->needle = needle;
	s->nlen = nlen;
	s->found = nlen == 0;
	s->j = 0;
	if (nlen == 0)
		return;
	s->fail[0] = 0;
	for (size_t i = 1; i < nlen; i++) {
		unsigned char c = lower((unsigned char)needle[i]);

		while (k > 0 && c != lower((unsigned char)needle[k]))
			k = s->fail[k - 1];
		if (c == lower((unsigned char)needle[k]))
			k++;
		s->fail[i] = (uint16_t)k;
	}
}

static void
search_push(struct search *s, const char *p, size_t len)
{
	size_t j = s->j;

	for (size_t i = 0; i < len && !s->found; i++) {
		unsigned char c = lower((unsigned char)p[i]);

		while (j > 0 && c != lower((unsigned char)s->needle[j]))
			j = s->fail[j - 1];
		if (c == lower((unsigned char)s->needle[j]))
			j++;
		if (j == s->nlen)
			s->found = true;
	}
	s->j = j;
}

static bool
search_end(struct search *s)
{
	return s->found;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Lenient base64: non-alphabet bytes are skipped, '=' ends the data. */
static void
push_base64(struct search *s, const char *p, size_t len)
{
	char out[256];
	size_t n = 0;
	uint32_t bits = 0;
	unsigned nbits = 0;

	for (size_t k = 0; k < len && !s->found; k++) {
		int v = b64val((unsigned char)p[k]);

		if (p[k] == '=')
			break;
		if (v < 0)
			continue;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			out[n++] = (char)((bits >> nbits) & 0xff);
			bits &= (1u << nbits) - 1;
		}
		if (n == sizeof(out)) {
			search_push(s, out, n);
			n = 0;
		}
	}
	search_push(s, out, n);
}

/*
 * Quoted-printable (RFC 2045 6.7), or with q set the RFC 2047 "Q" form
 * where '_' is a space. Broken escapes pass through as they are.
 */
static void
push_qp(struct search *s, const char *p, size_t len, bool q)
{
	char out[256];
	size_t n = 0;

	for (size_t k = 0; k < len && !s->found; k++) {
		char c = p[k];

		if (c == '=' && k + 2 < len &&
		    hexval((unsigned char)p[k + 1]) >= 0 &&
		    hexval((unsigned char)p[k + 2]) >= 0) {
			c = (char)(hexval((unsigned char)p[k + 1]) * 16 +
				   hexval((unsigned char)p[k + 2]));
			k += 2;
		} else if (c == '=' && !q) {
			size_t j = k + 1;

			while (j < len && is_wsp(p[j]))
				j++;
			if (j < len && p[j] == '\r')
				j++;
			if (j < len && p[j] == '\n') {
				k = j; /* soft line break */
				continue;
			}
		} else if (c == '_' && q) {
			c = ' ';
		}
		out[n++] = c;
		if (n == sizeof(out)) {
			search_push(s, out, n);
			n = 0;
		}
	}
	search_push(s, out, n);
}

/*
 * A header value with RFC 2047 encoded words decoded to their bytes (no
 * charset conversion) and folds removed; white space between two encoded
 * words disappears as the RFC says.
 */
static void
push_2047(struct search *s, const char *p, size_t len)
{
	size_t k = 0, gap = 0, win;
	bool after_word = false;

	while (k < len && !s->found) {
		const char *q1, *q2, *q3, *e;

		if (p[k] != '=' || k + 1 >= len || p[k + 1] != '?') {
			if (p[k] == '\r' || p[k] == '\n') {
				k++;
				continue;
			}
			if (!is_wsp(p[k]))
				after_word = false;
			if (after_word) {
				gap++;
				k++;
				continue;
			}
			if (gap > 0) {
				search_push(s, " ", 1);
				gap = 0;
			}
			search_push(s, p + k, 1);
			k++;
			continue;
		}
		/*
		 * =?charset?X?text?=, looked for within a bounded window so
		 * that many "=?" without an end cannot make this quadratic.
		 */
		win = len - k < MAX_WORD ? len - k : MAX_WORD;
		q1 = memchr(p + k + 2, '?', win - 2);
		if (q1 == NULL || q1 + 2 >= p + k + win || q1[2] != '?')
			goto literal;
		q2 = q1 + 2;
		q3 = q2 + 1;
		e = memmem(q3, (size_t)(p + k + win - q3), "?=", 2);
		if (e == NULL)
			goto literal;
		gap = 0;
		if (lower((unsigned char)q1[1]) == 'b')
			push_base64(s, q3, (size_t)(e - q3));
		else if (lower((unsigned char)q1[1]) == 'q')
			push_qp(s, q3, (size_t)(e - q3), true);
		else
			goto literal;
		k = (size_t)(e - p) + 2;
		after_word = true;
		continue;
	literal:
		if (gap > 0) {
			search_push(s, " ", 1);
			gap = 0;
		}
		after_word = false;
		search_push(s, p + k, 1);
		k++;
	}
}

bool
mime_header_search(const char *hdr, size_t len, const char *name,
		   const char *needle, size_t nlen)
{
	struct mime_header_iter it;
	struct mime_field f;
	struct search s;

	if (nlen > MIME_SEARCH_MAX)
		return false;
	mime_header_init(&it, hdr, len, NULL);
	while (mime_header_next(&it, &f)) {
		if (name != NULL && !slice_is(f.name, name))
			continue;
		if (nlen == 0)
			return true;
		search_init(&s, needle, nlen);
		for (size_t k = 0; k < f.value.len; k++) {
			if (f.value.ptr[k] != '\r' && f.value.ptr[k] != '\n')
				search_push(&s, f.value.ptr + k, 1);
		}
		if (search_end(&s))
			return true;
		if (memmem(f.value.ptr, f.value.len, "=?", 2) == NULL)
			continue;
		search_init(&s, needle, nlen);
		push_2047(&s, f.value.ptr, f.value.len);
		if (search_end(&s))
			return true;
	}
	return false;
}

bool
mime_body_search(const struct mime_message *m, uint32_t part,
		 const char *needle, size_t nlen)
{
	if (nlen > MIME_SEARCH_MAX || part >= m->nparts)
		return false;
	for (uint32_t i = part; i < m->nparts; i++) {
		const struct mime_part *p = &m->parts[i];
		const char *body = m->data + mime_body_off(p);
		size_t blen = mime_body_len(p);
		uint32_t up = i;
		struct search s;

		/* parts are in breadth-first order: descendants come later */
		while (up != MIME_NONE && up != part)
			up = m->parts[up].parent;
		if (up == MIME_NONE ||
		    (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) ||
		    !slice_is(p->type, "text"))
			continue;
		search_init(&s, needle, nlen);
		if (slice_is(p->encoding, "base64"))
			push_base64(&s, body, blen);
		else if (slice_is(p->encoding, "quoted-printable"))
			push_qp(&s, body, blen, false);
		else
			search_push(&s, body, blen);
		if (search_end(&s))
			return true;
	}
	return false;
}
