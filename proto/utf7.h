/*
 * utf7.h - modified UTF-7 (RFC 3501 section 5.1.3) for mailbox names.
 *
 * IMAP4rev1 clients name mailboxes in modified UTF-7 on the wire; the store
 * keeps UTF-8. Both directions are strict: only the canonical encoding is
 * accepted (no encoded printable ASCII, no adjacent shifted runs, zero
 * padding bits, a closing '-'), and UTF-8 must be well formed with no
 * surrogates and no NUL, so one name has exactly one spelling either way.
 * Pure functions over (ptr, len); they write only into the caller's buffer.
 */
#ifndef RG_PROTO_UTF7_H
#define RG_PROTO_UTF7_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Modified UTF-7 in[0..len) to UTF-8 in out[0..outsize). On success the
 * output is NUL-terminated, *outlen_r excludes the NUL, returns 0. Returns
 * -1 with *error_r ("Invalid modified UTF-7 mailbox name", "Mailbox name
 * too long") otherwise; out is then unspecified.
 */
int utf7_to_utf8(const char *in, size_t len, char *out, size_t outsize,
    size_t *outlen_r, const char **error_r);

/*
 * UTF-8 in[0..len) to modified UTF-7, same conventions. Fails on malformed
 * UTF-8 ("Invalid UTF-8 mailbox name") or a short buffer.
 */
int utf7_from_utf8(const char *in, size_t len, char *out, size_t outsize,
    size_t *outlen_r, const char **error_r);

/* Whether in[0..len) is canonical modified UTF-7 (no output needed). */
bool utf7_valid(const char *in, size_t len);

#endif
