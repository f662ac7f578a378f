/*
 * base64.h - strict RFC 4648 base64 (the standard alphabet, with padding).
 *
 * Used for SASL exchanges (IMAP AUTHENTICATE, POP3 AUTH, SMTP AUTH), stored
 * SCRAM keys and anything else that carries bytes as base64 text. Pure: no
 * I/O, no allocation; the caller owns every buffer.
 *
 * Decoding is strict because two parsers that disagree about the same
 * base64 text are a smuggling channel: a character outside the alphabet,
 * missing or misplaced padding, non-zero pad bits (RFC 4648 section 3.5)
 * or a truncated quantum is INVALID. Whitespace is refused unless the
 * caller asks for it with BASE64_WS. The length helpers cannot overflow.
 */
#ifndef RG_PROTO_BASE64_H
#define RG_PROTO_BASE64_H

#include <stddef.h>

enum base64_rc {
	BASE64_OK = 0,
	BASE64_INVALID, /* not strict base64 */
	BASE64_NOSPACE, /* valid so far, but the output buffer is too small */
};

/* Decode flags. */
enum base64_flags {
	BASE64_WS = 1 << 0, /* skip SP, HTAB, CR and LF anywhere */
};

/*
 * Length of the encoding of n bytes, without a terminating NUL. Returns 0
 * with *len_r set, or -1 if the length (plus one for the NUL) would not fit
 * in a size_t.
 */
int base64_encoded_len(size_t n, size_t *len_r);

/*
 * Upper bound on the bytes decoded from n characters of base64 text, exact
 * for unpadded-length input without whitespace. Never overflows.
 */
size_t base64_decoded_max(size_t n);

/*
 * Encode src[0..n) into dst as base64 followed by a NUL. cap is dst's size
 * and must hold base64_encoded_len(n) + 1 bytes. Returns 0 with *len_r set
 * to the text length (NUL excluded; len_r may be NULL), or -1 if dst is too
 * small or the length overflows (dst untouched).
 */
int base64_encode(const void *src, size_t n, char *dst, size_t cap,
    size_t *len_r);

/*
 * Decode src[0..n) into dst (cap bytes). flags: enum base64_flags. On
 * BASE64_OK *len_r is the number of bytes written. On INVALID or NOSPACE
 * dst may hold a partial result the caller must ignore (and wipe, if it
 * was secret). Empty input decodes to zero bytes.
 */
enum base64_rc base64_decode(const char *src, size_t n, void *dst, size_t cap,
    size_t *len_r, unsigned flags);

#endif
