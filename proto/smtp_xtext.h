/*
 * smtp_xtext.h - xtext (RFC 3461 section 4), the encoding of the ESMTP
 * parameters AUTH= (RFC 4954), ENVID=, ORCPT= (RFC 3461) and of Postfix's
 * XCLIENT attribute values.
 *
 * xtext = *( xchar / hexchar ); xchar is any of %d33-126 except "+" and
 * "="; hexchar is "+" and two upper-case hex digits. Decoding is strict
 * (lower-case hex, a "+" without two digits, a byte outside xchar are
 * refused) so that two readers cannot take the same value differently.
 * Pure: no I/O, no allocation; the caller owns every buffer.
 */
#ifndef RG_PROTO_SMTP_XTEXT_H
#define RG_PROTO_SMTP_XTEXT_H

#include <stddef.h>

/*
 * Decode src[0..n) into dst (cap bytes; n always suffices, the decoded
 * text is never longer). Returns 0 with *len_r set, or -1 when src is not
 * xtext or dst is too small (dst then holds a partial result). The output
 * is not NUL-terminated and may hold any byte, NUL included: the caller
 * judges the decoded value.
 */
int smtp_xtext_decode(const char *src, size_t n, char *dst, size_t cap,
    size_t *len_r);

/*
 * Encode src[0..n) as xtext into dst (cap bytes; 3 * n always suffices).
 * Returns 0 with *len_r set, or -1 when dst is too small (nothing
 * meaningful in dst then). Not NUL-terminated.
 */
int smtp_xtext_encode(const void *src, size_t n, char *dst, size_t cap,
    size_t *len_r);

#endif
