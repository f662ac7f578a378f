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
	int version; /* 1 or 2 */
	/* true for v1 UNKNOWN, v2 LOCAL, and v2 PROXY with an UNSPEC
	 * family or transport or AF_UNIX addresses (which we cannot use):
	 * the connection's own addresses stand (health checks) */
	bool local;
	/* valid when !local: both AF_INET or both AF_INET6, with ports;
	 * zeroed (lengths 0) when local */
	struct sockaddr_storage src, dst;
	socklen_t src_len, dst_len;
	size_t len; /* bytes the header took; the payload starts after */
	/* v2 TLVs the caller may want, as slices into the input (NULL, 0
	 * when absent) */
	const uint8_t *alpn, *authority, *unique_id;
	size_t alpn_len, authority_len, unique_id_len;
	bool ssl; /* PP2_TYPE_SSL present with PP2_CLIENT_SSL set */
};

/* Parse the first n bytes of a connection. On PROXY_OK *h is filled and
 * h->len says where the payload starts; on AGAIN call again with more
 * bytes (the same start); on INVALID *error_r says why in a few words
 * (for the log; never contains input bytes; error_r may be NULL).
 *
 * AGAIN only while the bytes can still become a valid header: anything
 * else (a client not speaking PROXY at all) is INVALID on the first
 * byte that proves it. Strict: v1 exactly as the spec's grammar (single
 * spaces, no leading zeros, CRLF within 107 bytes); v2 version 2, LOCAL
 * or PROXY, STREAM only (DGRAM is INVALID), a length covering the address
 * block of the family (also under LOCAL), TLVs fitting exactly, ALPN,
 * AUTHORITY, UNIQUE_ID (<= 128 bytes), SSL and CRC32C at most once each,
 * a CRC32C that matches. After an UNSPEC family or transport the block is
 * opaque and its TLVs are not read. Slices in *h point into p. */
enum proxy_rc proxy_proto_parse(const void *p, size_t n, struct proxy_hdr *h,
    const char **error_r);

/* A v2 PROXY header (command PROXY, STREAM) for src -> dst, both AF_INET
 * or both AF_INET6 (a mix: the IPv4 one is written as IPv4-mapped IPv6),
 * into out. Returns its length, or 0 if cap is too small or a family is
 * neither. */
size_t proxy_proto_write_v2(void *out, size_t cap, const struct sockaddr *src,
    const struct sockaddr *dst);

#endif
