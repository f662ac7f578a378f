/*
 * smtp_private.h - what the SMTP command parser's files share
 * (smtp_cmd.c: verbs and simple arguments; smtp_addr.c: paths, domains,
 * address literals, UTF-8; smtp_param.c: MAIL and RCPT parameters;
 * smtp_xclient.c: XCLIENT). Not for use outside proto/.
 */
#ifndef RG_PROTO_SMTP_PRIVATE_H
#define RG_PROTO_SMTP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/smtp_cmd.h"

/* Why an address did not parse. */
enum smtp_addr_why {
	SMTP_AW_SYNTAX = 1,
	SMTP_AW_LONG, /* a local part, label, domain or path over its limit */
};

/* smtp_addr_path() options */
enum smtp_path_opt {
	SMTP_PATH_NULL_OK = 1 << 0,    /* <> (MAIL) */
	SMTP_PATH_POSTMASTER = 1 << 1, /* <Postmaster> (RCPT) */
	SMTP_PATH_UTF8 = 1 << 2,       /* UTF-8 allowed (SMTPUTF8 offered) */
};

/* A Mailbox as written. */
struct smtp_mbox {
	struct smtp_str local, domain;
	bool quoted, literal, utf8;
};

/* smtp_cmd.c: shared replies and helpers */
extern const struct smtp_reply smtp_r_syntax;	     /* 501 5.5.4 */
extern const struct smtp_reply smtp_r_too_many;	     /* 501 5.5.4 */
extern const struct smtp_reply smtp_r_duplicate;     /* 501 5.5.4 */
extern const struct smtp_reply smtp_r_xtext;	     /* 501 5.5.4 */
extern const struct smtp_reply smtp_r_long;	     /* 501 5.5.4 */
extern const struct smtp_reply smtp_r_unknown_param; /* 555 5.5.4 */

/* Record a refusal: cmd->err = r, cmd->bad = s[0..n). Returns -1. */
int smtp_cmd_fail(struct smtp_cmd *cmd, const struct smtp_reply *r,
    const char *s, size_t n);
/* n bytes of cmd->dec, or NULL when it is full. */
char *smtp_cmd_dec(struct smtp_cmd *cmd, size_t n);
/* s[0..n) is word, ignoring ASCII case. */
bool smtp_cmd_ieq(const char *s, size_t n, const char *word);
/* s[0..n) is xtext: decode it into cmd->dec. 0, or -1 (cmd->err set). */
int smtp_cmd_xtext(struct smtp_cmd *cmd, const char *s, size_t n,
    struct smtp_str *out);
/* Every byte of s[0..n) is printable ASCII (from lo, 0x20 or 0x21, to
 * 0x7e) or, if utf8, part of well-formed non-ASCII UTF-8. */
bool smtp_cmd_printable(const char *s, size_t n, unsigned char lo, bool utf8);

/* smtp_addr.c */
bool smtp_addr_atext(unsigned char c);
size_t smtp_addr_utf8(const unsigned char *p, size_t n);
size_t smtp_addr_domain(const char *s, size_t n, bool utf8, bool *u8_r,
    enum smtp_addr_why *why);
size_t smtp_addr_literal(const char *s, size_t n);
bool smtp_addr_ipv4(const char *s, size_t n);
bool smtp_addr_ipv6(const char *s, size_t n);
size_t smtp_addr_mailbox(const char *s, size_t n, bool utf8,
    struct smtp_mbox *m, enum smtp_addr_why *why);
int smtp_addr_path(struct smtp_cmd *cmd, const char *s, size_t n, unsigned opt,
    size_t *end_r, enum smtp_addr_why *why);

/* smtp_param.c: s[0..n) is what follows the path (empty, or " k=v ...") */
int smtp_param_parse(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    bool rcpt, const char *s, size_t n);

/* smtp_xclient.c: s[0..n) is what follows "XCLIENT" */
int smtp_xclient_parse(struct smtp_cmd *cmd, const struct smtp_cmd_conf *conf,
    const char *s, size_t n);

#endif
