/*
 * sasl_syntax.h - the words a SASL exchange puts on a command line, as the
 * protocols that carry SASL write them (SMTP AUTH, RFC 4954; POP3 AUTH,
 * RFC 5034; IMAP AUTHENTICATE with SASL-IR, RFC 4959): a mechanism name
 * (RFC 4422 sasl-mech) and an initial response (base64, or "=" for an
 * empty one).
 *
 * Syntax only: whether a mechanism is offered is auth/'s call
 * (sasl_mech_find), and the base64 is decoded strictly by proto/base64.c.
 * Pure: no I/O, no allocation.
 */
#ifndef RG_PROTO_SASL_SYNTAX_H
#define RG_PROTO_SASL_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>

#define SASL_SYNTAX_MECH_MAX 20 /* RFC 4422 sasl-mech = 1*20mech-char */

/*
 * s[0..n) is a mechanism name: 1 to 20 of A-Z 0-9 "-" "_", in any case
 * (clients send "auth plain"). On true, upper[] (SASL_SYNTAX_MECH_MAX + 1
 * bytes) holds it upper-cased and NUL-terminated; on false upper[] is
 * unspecified.
 */
bool sasl_syntax_mech(const char *s, size_t n, char *upper);

/*
 * s[0..n) is an initial response as a command line carries it: "=" (an
 * empty response; *empty_r set), or base64 characters where padding only
 * completes a final quantum. Whether it decodes is base64_decode()'s to
 * say. empty_r may be NULL.
 */
bool sasl_syntax_response(const char *s, size_t n, bool *empty_r);

#endif
