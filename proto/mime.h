/*
 * mime.h - message structure for IMAP: RFC 5322 headers, RFC 2045/2046
 * MIME parts, RFC 2047 encoded words (search only), written as ENVELOPE
 * and BODYSTRUCTURE text.
 *
 * The message is one read-only (ptr, len) region, typically mmapped; the
 * parser records offsets and slices into it and never copies or modifies
 * it. The part tree lives in a caller-given array (its size is the part
 * limit), nesting is bounded, and anything malformed degrades to something
 * IMAP can still describe rather than failing: a FETCH must not break on
 * a strange message. Values are raw header text, folds included; the
 * writers unfold them, as IMAP returns header values undecoded.
 */
#ifndef RG_PROTO_MIME_H
#define RG_PROTO_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_NONE UINT32_MAX

struct mime_slice {
	const char *ptr; /* NULL: absent */
	size_t len;
};

struct mime_limits {
	unsigned max_depth;   /* multipart / message nesting (e.g. 32) */
	unsigned max_headers; /* fields looked at per header block */
	size_t max_field;     /* longer fields (folds included) are skipped */
};

#define MIME_PART_MULTIPART 0x01 /* children are its body parts */
#define MIME_PART_MESSAGE 0x02	 /* message/rfc822: child = embedded root */
#define MIME_PART_BROKEN 0x04	 /* multipart without usable boundary */
#define MIME_PART_DEFAULTED 0x08 /* no (valid) Content-Type */

/*
 * One entity: a header block and a body. An entity spans
 * [off, off + len); its header (with the empty line) is the first hdr_len
 * bytes, its body the rest. Children of a part are contiguous in the array.
 */
struct mime_part {
	size_t off, len, hdr_len;
	size_t body_lines;
	uint32_t parent, child, nchildren;
	uint16_t depth, flags;
	struct mime_slice type, subtype; /* always set (default text/plain) */
	struct mime_slice params;	 /* text after the subtype */
	struct mime_slice id, description, encoding, md5;
	struct mime_slice disposition, disposition_params;
	struct mime_slice language, location;
};

struct mime_message {
	const char *data;
	size_t len;
	struct mime_part *parts;
	unsigned nparts, cap;
	bool limited; /* a limit cut the tree or a header short */
	struct mime_limits lim;
};

/*
 * Parse the structure of data[0..len) into parts[0..cap); parts[0] is the
 * message. Never fails on content; returns -1 only if cap is 0. m keeps
 * pointers to data and parts, which must outlive it.
 */
int mime_parse(struct mime_message *m, const char *data, size_t len,
    struct mime_part *parts, unsigned cap, const struct mime_limits *lim);

/*
 * Where the message's own header ends, for reading no more of a file than
 * a header-only FETCH needs: true if an empty line ends the header within
 * data[0..len), with *hdr_len_r its length including that line (what
 * mime_parse() makes parts[0].hdr_len of the whole message); false if
 * more data could still change it. mime_parse() of just data[0..hdr_len)
 * then gives the same parts[0] header (so the same ENVELOPE and header
 * sections) as a parse of the whole message; its body, structure and
 * part count are not the message's.
 */
bool mime_header_end(const char *data, size_t len, size_t *hdr_len_r);

/* Body of part p (offset into the message and length). */
static inline size_t
mime_body_off(const struct mime_part *p)
{
	return p->off + p->hdr_len;
}

static inline size_t
mime_body_len(const struct mime_part *p)
{
	return p->len - p->hdr_len;
}

enum mime_sect {
	MIME_SECT_BODY,	  /* BODY[] / BODY[1.2] */
	MIME_SECT_HEADER, /* BODY[HEADER] / BODY[1.HEADER] (message parts) */
	MIME_SECT_TEXT,	  /* BODY[TEXT] / BODY[1.TEXT] (message parts) */
	MIME_SECT_MIME,	  /* BODY[1.MIME] */
};

/*
 * Resolve an IMAP section (part numbers path[0..n) and kind) to a slice
 * of the message: *off_r, *len_r, and the part whose header applies (for
 * HEADER.FIELDS) in *part_r. Returns 0, or -1 for a part that does not
 * exist (the server then returns an empty string, RFC 3501 6.4.5).
 */
int mime_section(const struct mime_message *m, const uint32_t *path, unsigned n,
    enum mime_sect kind, size_t *off_r, size_t *len_r, uint32_t *part_r);

/* Header iteration over one header block. */
struct mime_field {
	struct mime_slice name;	 /* without the colon */
	struct mime_slice value; /* raw, folded, leading WSP and EOL cut */
	struct mime_slice raw;	 /* the whole field with its line end */
};

struct mime_header_iter {
	const char *p;
	size_t pos, end;
	unsigned count, max;
	size_t max_field;
	bool limited;
};

void mime_header_init(struct mime_header_iter *it, const char *hdr, size_t len,
    const struct mime_limits *lim);
/* Next well-formed field; false at the end (or past max_headers). */
bool mime_header_next(struct mime_header_iter *it, struct mime_field *f);
/* First field called name (case-insensitive) in the block; false if none. */
bool mime_header_get(const char *hdr, size_t len, const char *name,
    struct mime_slice *value_r);

/*
 * Parameters after a Content-Type or Content-Disposition value: *rest
 * starts as part->params and advances. Values keep their quotes and
 * escapes (see *quoted_r). Returns false at the end.
 */
bool mime_param_next(struct mime_slice *rest, struct mime_slice *name_r,
    struct mime_slice *value_r, bool *quoted_r);

/* Case-insensitive lookup of one parameter, unescaped into buf (NUL
 * terminated). Returns its length, or -1 if absent or too long. */
int mime_param_get(struct mime_slice params, const char *name, char *buf,
    size_t bufsize);

/*
 * Addresses of one header value (From, To, ...), one per call. Groups
 * produce GROUP_START (mailbox = group name) and GROUP_END. name is the
 * display name with quotes and comments removed and whitespace collapsed
 * (written into scratch, truncated to scratch_cap); adl, mailbox and host
 * are raw slices of the value. A missing local part or domain reads
 * "MISSING_MAILBOX" / "MISSING_DOMAIN" (Dovecot does the same).
 */
enum mime_addr_kind {
	MIME_ADDR_MAILBOX,
	MIME_ADDR_GROUP_START,
	MIME_ADDR_GROUP_END,
};

struct mime_address {
	enum mime_addr_kind kind;
	struct mime_slice name, adl, mailbox, host;
};

struct mime_addr_iter {
	const char *s;
	size_t len, pos;
	bool in_group;
	size_t cstart, cend; /* last comment seen in this address */
};

void mime_addr_init(struct mime_addr_iter *it, const char *value, size_t len);
bool mime_addr_next(struct mime_addr_iter *it, struct mime_address *a,
    char *scratch, size_t scratch_cap);

/* Output sink: append bytes, 0 or -1 to stop. */
typedef int mime_write_fn(void *ctx, const char *p, size_t len);

/*
 * IMAP ENVELOPE of the message rooted at part (0, or the child of a
 * message/rfc822 part), and BODY (extended = false) or BODYSTRUCTURE of
 * any part. Strings that are not plain 7-bit go out as literals. Return 0
 * or -1 if the sink failed.
 */
int mime_write_envelope(const struct mime_message *m, uint32_t part,
    mime_write_fn *w, void *ctx);
int mime_write_bodystructure(const struct mime_message *m, uint32_t part,
    bool extended, mime_write_fn *w, void *ctx);

/*
 * BODY[HEADER.FIELDS (names)] and .NOT: the matching (or non-matching)
 * fields of hdr, raw, followed by the empty line. With w == NULL only the
 * length is computed; returns the length (or (size_t)-1 if w failed).
 */
size_t mime_header_fields(const char *hdr, size_t len,
    const struct mime_slice *names, size_t nnames, bool not, mime_write_fn *w,
    void *ctx);

/*
 * SEARCH helpers; ASCII case-insensitive, needle at most
 * MIME_SEARCH_MAX bytes (longer never match). Header search looks at the
 * unfolded values of fields called name (any field if NULL), raw and with
 * RFC 2047 encoded words decoded; an empty needle matches when the field
 * exists. Body search looks at the text leaf parts under part, decoded
 * from base64 / quoted-printable (no charset conversion).
 */
#define MIME_SEARCH_MAX 1024

bool mime_header_search(const char *hdr, size_t len, const char *name,
    const char *needle, size_t nlen);
/*
 * SEARCH FROM/TO/CC/BCC: RFC 3501 looks in the envelope's field, so the
 * addresses of the fields called name are parsed (as for ENVELOPE) and
 * each is matched as "display name <local@domain>" (or "local@domain"
 * without a name): the name with RFC 2047 words decoded, local part and
 * domain without comments, folding white space or quotes. A group name
 * is matched on its own. Raw header text (comments, the layout of the
 * value) does not match.
 */
bool mime_addr_search(const char *hdr, size_t len, const char *name,
    const char *needle, size_t nlen);
bool mime_body_search(const struct mime_message *m, uint32_t part,
    const char *needle, size_t nlen);

#endif
