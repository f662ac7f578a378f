/*
 * proxy_proto.h - the PROXY protocol, versions 1 (text) and 2 (binary),
 * as HAProxy's proxy-protocol.txt defines them: parsing the header a load
 * balancer puts in front of a connection, and writing a v2 header in
 * front of a connection we open to a back end. Pure: no I/O, no
 * allocation; the caller owns every buffer.
 */
#ifndef RG_PROTO_PROXY_PROTO_H
#define RG_PROTO_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest header we accept: a v1 line is at most 107 bytes; a v2
 * header is 16 bytes plus addresses plus TLVs, which we bound. Anything
 * longer is PROXY_INVALID. */
#define PROXY_HDR_MAX 2048
/* Enough for proxy_proto_write_v2() with INET6 addresses and no TLVs. */
#define PROXY_V2_MAX_WRITE 52

enum proxy_rc {
	PROXY_OK = 0,  /* a whole header: see struct proxy_hdr */
	PROXY_AGAIN,   /* a valid prefix; more bytes are needed */
	PROXY_INVALID, /* not a PROXY header, or a broken one */
};

struct proxy_hdr {
	int version;   /* 1 or 2 */
	/* true for v2 LOCAL, v1 UNKNOWN and v2 UNSPEC families: the
	 * connection's own addresses stand (health checks) */
	bool local;
	struct sockaddr_storage src, dst; /* valid when !local */
	socklen_t src_len, dst_len;
	size_t len; /* bytes the header took; the payload starts after */
	/* v2 TLVs the caller may want, as slices into the input (NULL, 0
	 * when absent) */
	const uint8_t *alpn, *authority, *unique_id;
	size_t alpn_len, authority_len, unique_id_len;
	bool ssl;    /* PP2_TYPE_SSL present with PP2_CLIENT_SSL set */
};

/* Parse the first n bytes of a connection. On PROXY_OK *h is filled and
 * h->len says where the payload starts; on AGAIN call again with more
 * bytes (the same start); on INVALID *error_r says why in a few words
 * (for the log; never contains input bytes). */
enum proxy_rc proxy_proto_parse(const void *p, size_t n,
    struct proxy_hdr *h, const char **error_r);

/* A v2 PROXY header (command PROXY, STREAM) for src -> dst, both AF_INET
 * or both AF_INET6 (a mix: the IPv4 one is written as IPv4-mapped IPv6),
 * into out. Returns its length, or 0 if cap is too small or a family is
 * neither. */
size_t proxy_proto_write_v2(void *out, size_t cap, const struct sockaddr *src,
    const struct sockaddr *dst);

#endif
