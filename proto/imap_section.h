/*
 * imap_section.h - FETCH section specs (RFC 3501 section, RFC 3516
 * BINARY): the grammar inside BODY[...], BINARY[...] and friends, with
 * the partial range <start.count>, parsed after the tokenizer
 * (proto/imap_parse.h) has delivered the fetch-att as one atom.
 */
#ifndef RG_PROTO_IMAP_SECTION_H
#define RG_PROTO_IMAP_SECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A FETCH attribute with a section: BODY[...], BODY.PEEK[...],
 * BINARY[...], BINARY.PEEK[...], BINARY.SIZE[...], with <start.count>.
 */
#define IMAP_SECTION_MAX_PARTS 32

enum imap_section_att {
	IMAP_ATT_BODY,
	IMAP_ATT_BINARY,
	IMAP_ATT_BINARY_SIZE,
};

enum imap_section_kind {
	IMAP_SECT_ALL,	      /* [] or [1.2]: the whole (part) body */
	IMAP_SECT_HEADER,     /* [HEADER], [1.HEADER] */
	IMAP_SECT_FIELDS,     /* [HEADER.FIELDS (A B)] */
	IMAP_SECT_FIELDS_NOT, /* [HEADER.FIELDS.NOT (A B)] */
	IMAP_SECT_TEXT,	      /* [TEXT], [1.TEXT] */
	IMAP_SECT_MIME,	      /* [1.MIME] (needs a part number) */
};

struct imap_section {
	enum imap_section_att att;
	enum imap_section_kind kind;
	bool peek;
	uint32_t part[IMAP_SECTION_MAX_PARTS];
	unsigned nparts;
	const char *fields; /* FIELDS: the list contents, see _field_next() */
	size_t fields_len;
	bool partial;
	uint32_t start, count; /* <start.count>; count 0 is allowed */
	const char *spec;      /* text between [ and ], for the response */
	size_t spec_len;
};

/*
 * Parse a fetch-att atom such as "BODY.PEEK[1.2.HEADER.FIELDS (A B)]<0.10>".
 * Returns 0, 1 if the atom is no sectioned attribute (e.g. "FLAGS",
 * "BODY" alone), or -1 with *error_r for a malformed one. BINARY allows
 * part numbers only.
 */
int imap_section_parse(const char *s, size_t len, struct imap_section *sec,
    const char **error_r);

/* Iterate header field names of a FIELDS section: *pos starts at 0.
 * Returns 1 with a name (quotes removed), 0 at the end. */
int imap_section_field_next(const struct imap_section *sec, size_t *pos,
    const char **name_r, size_t *len_r);

#endif
