/*
 * smtp_reply.h - the answer a proto/ SMTP parser hands to its session when
 * it refuses something: the reply code, the RFC 3463 enhanced status code
 * and a short text, all static, so the session formats
 * "<code> <enh> <text>\r\n" (or drops <enh> when ENHANCEDSTATUSCODES is
 * not offered) without copying or freeing anything. The text never holds
 * bytes from the peer.
 */
#ifndef RG_PROTO_SMTP_REPLY_H
#define RG_PROTO_SMTP_REPLY_H

struct smtp_reply {
	unsigned short code; /* 500, 501, 553, 555, ... */
	const char *enh;     /* "5.5.4" */
	const char *text;    /* "Syntax error in parameters" */
};

#endif
