/*
 * mime_private.h - what the files of the MIME module share: the struct
 * mime_slice helpers and RFC 5322 / 2045 lexing used by mime.c (structure),
 * mime_addr.c (addresses), mime_write.c (ENVELOPE, BODYSTRUCTURE) and
 * mime_search.c (SEARCH). Not for other modules.
 *
 * Every position is an offset into s, and nothing reads at or past end.
 */
#ifndef RG_PROTO_MIME_PRIVATE_H
#define RG_PROTO_MIME_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/mime.h"

/* ASCII case folding, inline: the search loop calls it per byte. */
static inline unsigned char
mime_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static inline bool
mime_ieq(const char *a, size_t alen, const char *word)
{
	size_t k;

	for (k = 0; k < alen && word[k] != '\0'; k++) {
		if (mime_lower((unsigned char)a[k]) !=
		    mime_lower((unsigned char)word[k]))
			return false;
	}
	return k == alen && word[k] == '\0';
}

static inline bool
mime_slice_is(struct mime_slice s, const char *word)
{
	return s.ptr != NULL && mime_ieq(s.ptr, s.len, word);
}

static inline bool
mime_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Skip whitespace, folds and comments (nested, with quoted pairs). The
 * last comment's contents are reported through cstart/cend if non-NULL.
 */
size_t mime_skip_cfws(const char *s, size_t pos, size_t end, size_t *cstart,
    size_t *cend);

/* End of the RFC 2045 token at pos (printable ASCII minus SP and
 * tspecials); pos itself when there is none. */
size_t mime_token_end(const char *s, size_t pos, size_t end);

/* s[pos] == '"': the position after the closing quote (or end). */
size_t mime_quoted_end(const char *s, size_t pos, size_t end);

/* Contents of a quoted-string (quotes optional) without escapes or line
 * breaks into out; returns the length, truncating at cap. */
size_t mime_unquote(const char *s, size_t len, char *out, size_t cap);

/* First token of a value (Content-Transfer-Encoding, disposition type);
 * *after (if non-NULL) is where the token ends. */
struct mime_slice mime_first_token(struct mime_slice v, size_t *after);

/* Content-Type value v into p's type, subtype and params, clearing
 * MIME_PART_DEFAULTED; p is left alone if v has no valid type/subtype. */
void mime_parse_content_type(struct mime_part *p, struct mime_slice v);

/*
 * Lenient decoders (mime_decode.c) writing through w (0, or -1 to stop,
 * which they return). base64: bytes outside the alphabet are skipped, '='
 * ends the data. Quoted-printable: broken escapes pass through; with q set
 * it is RFC 2047's "Q" form where '_' is a space. 2047: a header value with
 * its encoded words decoded (no charset conversion), folds removed and
 * the white space between two adjacent words dropped.
 */
/* Value of a hex digit (either case), -1 if c is none. */
int mime_hexval(unsigned char c);
int mime_decode_base64(const char *p, size_t len, mime_write_fn *w, void *ctx);
int mime_decode_qp(const char *p, size_t len, bool q, mime_write_fn *w,
    void *ctx);
int mime_decode_2047(const char *p, size_t len, mime_write_fn *w, void *ctx);

#endif
