/*
 * proxy_proto.c - the PROXY protocol v1/v2 header parser and the v2 writer
 * (see proxy_proto.h and HAProxy's proxy-protocol.txt).
 *
 * Stateless like the other proto/ parsers: the caller keeps what it has
 * received and calls again on all of it; a header is small (a v1 line is at
 * most 107 bytes, a v2 header at most PROXY_HDR_MAX here), so re-parsing
 * costs nothing. Every call judges the bytes seen so far: AGAIN only while
 * they can still grow into a valid header, so a peer that does not speak
 * PROXY (or speaks it badly) is refused on its first read, not at the
 * timeout.
 *
 * Relies on inet_pton() for the final word on v1 addresses (glibc's refuses
 * leading zeros in dotted quads, as the spec asks; we check that ourselves
 * too). Never: allocates, reads at or past n, writes to the input, or
 * accepts a header two readers could take differently (duplicate TLVs we
 * interpret, a bare CR or LF, UDP, a TLV overrunning the header).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proto/proxy_proto.h"

#define V1_LINE_MAX 107 /* the longest v1 line, CRLF included */
#define V1_ADDR6_MAX 45 /* INET6_ADDRSTRLEN - 1: "ffff:...:255.255.255.255" */
#define V2_SIG_LEN 12
#define V2_FIXED 16 /* signature, ver_cmd, fam, len */
#define V2_UNIQUE_ID_MAX 128

/* v2 TLV types we look at; every other type is skipped. */
#define PP2_TYPE_ALPN 0x01
#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_CRC32C 0x03
#define PP2_TYPE_UNIQUE_ID 0x05
#define PP2_TYPE_SSL 0x20
#define PP2_CLIENT_SSL 0x01

static const uint8_t v2_sig[V2_SIG_LEN] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
	0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* What a v1 field must hold, by position on the line. */
enum v1_field {
	V1_PROXY, /* the literal "PROXY" */
	V1_PROTO, /* TCP4, TCP6 or UNKNOWN */
	V1_ADDR,  /* an address of the family named by V1_PROTO */
	V1_PORT,
};

static enum proxy_rc fail(const char **error_r, const char *why);

/* version 1 */
static enum proxy_rc v1_parse(const char *p, size_t n, struct proxy_hdr *h,
    const char **error_r);
static enum proxy_rc v1_line(const char *s, size_t len, bool complete,
    struct proxy_hdr *h, const char **error_r);
static bool v1_prefix_ok(enum v1_field kind, int family, const char *f,
    size_t len);
static bool v1_field(enum v1_field kind, int i, const char *f, size_t len,
    struct proxy_hdr *h, int *family);
static bool v1_proto(const char *f, size_t len, int *family);
static bool v1_addr(int family, const char *f, size_t len,
    struct sockaddr_storage *ss, socklen_t *sslen);
static void set_port(struct sockaddr_storage *ss, uint16_t port);
static bool v4_text(const char *f, size_t len, bool whole);
static bool v6_text(const char *f, size_t len);
static bool port_text(const char *f, size_t len, bool whole, uint16_t *port);

/* version 2 */
static enum proxy_rc v2_parse(const uint8_t *p, size_t n, struct proxy_hdr *h,
    const char **error_r);
static enum proxy_rc v2_family(uint8_t fam, size_t *alen, int *family,
    const char **error_r);
static void v2_addrs(const uint8_t *a, int family, struct proxy_hdr *h);
static enum proxy_rc v2_tlvs(const uint8_t *p, size_t pos, size_t end,
    struct proxy_hdr *h, const char **error_r);
static unsigned tlv_once_bit(uint8_t type);
static int tlv_next(const uint8_t *p, size_t *pos, size_t end, uint8_t *type,
    size_t *vpos, size_t *vlen);
static enum proxy_rc v2_ssl(const uint8_t *v, size_t vlen, struct proxy_hdr *h,
    const char **error_r);
static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n);
static bool crc_ok(const uint8_t *p, size_t end, size_t at);

/* writer */
static void put_addr6(const struct sockaddr *sa, uint8_t *addr, uint8_t *port);

enum proxy_rc
proxy_proto_parse(const void *p, size_t n, struct proxy_hdr *h,
    const char **error_r)
{
	const uint8_t *b = p;

	memset(h, 0, sizeof(*h));
	if (n == 0)
		return PROXY_AGAIN;
	/* The first byte tells the versions apart: 'P' or the CR of the v2
	 * signature. Lower-case "proxy" is not the protocol. */
	if (b[0] == 'P')
		return v1_parse(p, n, h, error_r);
	if (b[0] == v2_sig[0])
		return v2_parse(b, n, h, error_r);
	return fail(error_r, "not a PROXY header");
}

static enum proxy_rc
fail(const char **error_r, const char *why)
{
	if (error_r != NULL)
		*error_r = why;
	return PROXY_INVALID;
}

/*
 * Find the CRLF within the 107-byte limit, then judge the line (or the
 * part of it we have). The CR may sit at offset 105 at the latest, so that
 * its LF is the 107th byte.
 */
static enum proxy_rc
v1_parse(const char *p, size_t n, struct proxy_hdr *h, const char **error_r)
{
	size_t lim = n < V1_LINE_MAX - 1 ? n : V1_LINE_MAX - 1;
	enum proxy_rc rc;

	for (size_t i = 0; i < lim; i++) {
		if (p[i] == '\n')
			return fail(error_r, "v1: LF without CR");
		if (p[i] != '\r')
			continue;
		if (i + 1 < n && p[i + 1] != '\n')
			return fail(error_r, "v1: CR without LF");
		/* The line ends here even if its LF is still to come. */
		rc = v1_line(p, i, true, h, error_r);
		if (rc != PROXY_OK)
			return rc;
		if (i + 1 == n)
			return PROXY_AGAIN;
		h->version = 1;
		h->len = i + 2;
		return PROXY_OK;
	}
	if (n >= V1_LINE_MAX - 1)
		return fail(error_r, "v1: no CRLF within 107 bytes");
	return v1_line(p, n, false, h, error_r);
}

/*
 * The line s[0..len) without its CRLF: "PROXY" SP proto, then for TCP4 and
 * TCP6 SP src SP dst SP sport SP dport, each separated by exactly one
 * space. complete says the CRLF follows; when it does not, the last field
 * may be unfinished and need only be a prefix of a valid one.
 */
static enum proxy_rc
v1_line(const char *s, size_t len, bool complete, struct proxy_hdr *h,
    const char **error_r)
{
	static const enum v1_field kinds[] = { V1_PROXY, V1_PROTO, V1_ADDR,
		V1_ADDR, V1_PORT, V1_PORT };
	int family = AF_UNSPEC;
	size_t pos = 0, start;
	bool sp;

	for (int i = 0; i < 6; i++) {
		start = pos;
		while (pos < len && s[pos] != ' ')
			pos++;
		sp = pos < len;
		if (!sp && !complete) {
			if (v1_prefix_ok(kinds[i], family, s + start,
				pos - start))
				return PROXY_AGAIN;
			return fail(error_r, "v1: malformed field");
		}
		if (!v1_field(kinds[i], i, s + start, pos - start, h, &family))
			return fail(error_r, "v1: malformed field");
		if (i == 1 && family == AF_UNSPEC) {
			/* UNKNOWN: whatever follows up to the CRLF is
			 * ignored, as the spec says. */
			h->local = true;
			return complete ? PROXY_OK : PROXY_AGAIN;
		}
		if (i == 5)
			break;
		if (!sp)
			return fail(error_r, "v1: line ends early");
		pos++;
	}
	if (sp)
		return fail(error_r, "v1: junk after the ports");
	return PROXY_OK;
}

/* Could f[0..len) still grow into a valid field of this kind? */
static bool
v1_prefix_ok(enum v1_field kind, int family, const char *f, size_t len)
{
	static const char *const protos[] = { "TCP4", "TCP6", "UNKNOWN" };

	switch (kind) {
	case V1_PROXY:
		return len <= 5 && memcmp(f, "PROXY", len) == 0;
	case V1_PROTO:
		for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
			if (len <= strlen(protos[i]) &&
			    memcmp(f, protos[i], len) == 0)
				return true;
		return false;
	case V1_ADDR:
		return family == AF_INET ? v4_text(f, len, false) :
					   v6_text(f, len);
	case V1_PORT:
		return port_text(f, len, false, NULL);
	}
	return false;
}

/* Check the whole field number i and store what it says into h. */
static bool
v1_field(enum v1_field kind, int i, const char *f, size_t len,
    struct proxy_hdr *h, int *family)
{
	uint16_t port;

	switch (kind) {
	case V1_PROXY:
		return len == 5 && memcmp(f, "PROXY", 5) == 0;
	case V1_PROTO:
		return v1_proto(f, len, family);
	case V1_ADDR:
		if (i == 2)
			return v1_addr(*family, f, len, &h->src, &h->src_len);
		return v1_addr(*family, f, len, &h->dst, &h->dst_len);
	case V1_PORT:
		if (!port_text(f, len, true, &port))
			return false;
		set_port(i == 4 ? &h->src : &h->dst, port);
		return true;
	}
	return false;
}

static bool
v1_proto(const char *f, size_t len, int *family)
{
	if (len == 4 && memcmp(f, "TCP4", 4) == 0)
		*family = AF_INET;
	else if (len == 4 && memcmp(f, "TCP6", 4) == 0)
		*family = AF_INET6;
	else if (len == 7 && memcmp(f, "UNKNOWN", 7) == 0)
		*family = AF_UNSPEC;
	else
		return false;
	return true;
}

static bool
v1_addr(int family, const char *f, size_t len, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char buf[V1_ADDR6_MAX + 1];

	/* The checks bound len and keep NULs out of what inet_pton sees. */
	if (family == AF_INET ? !v4_text(f, len, true) : !v6_text(f, len))
		return false;
	memcpy(buf, f, len);
	buf[len] = '\0';
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		*sslen = sizeof(*sin);
		return inet_pton(AF_INET, buf, &sin->sin_addr) == 1;
	}
	sin6->sin6_family = AF_INET6;
	*sslen = sizeof(*sin6);
	return inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1;
}

/* The address fields come first, so ss_family is known here. */
static void
set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/*
 * A dotted quad, or with !whole a prefix of one: four decimal numbers
 * 0..255 without leading zeros, separated by single dots.
 */
static bool
v4_text(const char *f, size_t len, bool whole)
{
	unsigned dots = 0, digits = 0, val = 0;

	for (size_t i = 0; i < len; i++) {
		if (f[i] == '.') {
			if (digits == 0 || ++dots > 3)
				return false;
			digits = val = 0;
			continue;
		}
		if (f[i] < '0' || f[i] > '9' || (digits == 1 && val == 0))
			return false;
		val = val * 10 + (unsigned)(f[i] - '0');
		if (++digits > 3 || val > 255)
			return false;
	}
	return !whole || (dots == 3 && digits > 0);
}

/* The characters of IPv6 text (inet_pton has the last word on the whole). */
static bool
v6_text(const char *f, size_t len)
{
	if (len > V1_ADDR6_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (strchr("0123456789abcdefABCDEF:.", f[i]) == NULL ||
		    f[i] == '\0')
			return false;
	return true;
}

/* 0..65535 in decimal without leading zeros (or a prefix of that). */
static bool
port_text(const char *f, size_t len, bool whole, uint16_t *port)
{
	unsigned val = 0;

	if (len > 5 || (whole && len == 0) || (len > 1 && f[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (f[i] < '0' || f[i] > '9')
			return false;
		val = val * 10 + (unsigned)(f[i] - '0');
	}
	if (val > 65535)
		return false;
	if (port != NULL)
		*port = (uint16_t)val;
	return true;
}

/*
 * The fixed 16 bytes are judged as they arrive; then the declared length
 * must cover the address block and stay within PROXY_HDR_MAX, and the
 * header is parsed once it is all there.
 */
static enum proxy_rc
v2_parse(const uint8_t *p, size_t n, struct proxy_hdr *h, const char **error_r)
{
	size_t alen = 0, total;
	int family = AF_UNSPEC;
	enum proxy_rc rc;

	if (memcmp(p, v2_sig, n < V2_SIG_LEN ? n : V2_SIG_LEN) != 0)
		return fail(error_r, "v2: bad signature");
	if (n > 12 && (p[12] >> 4) != 2)
		return fail(error_r, "v2: version is not 2");
	if (n > 12 && (p[12] & 0x0f) > 1)
		return fail(error_r, "v2: command neither LOCAL nor PROXY");
	if (n > 13 &&
	    (rc = v2_family(p[13], &alen, &family, error_r)) != PROXY_OK)
		return rc;
	if (n < V2_FIXED)
		return PROXY_AGAIN;
	total = V2_FIXED + ((size_t)p[14] << 8 | p[15]);
	if (total > PROXY_HDR_MAX)
		return fail(error_r, "v2: header too long");
	if (total < V2_FIXED + alen)
		return fail(error_r, "v2: length does not cover the addresses");
	if (n < total)
		return PROXY_AGAIN;
	h->version = 2;
	h->len = total;
	/* LOCAL ignores the addresses; we cannot use AF_UNIX ones either. */
	if ((p[12] & 0x0f) == 0 || family == AF_UNSPEC || family == AF_UNIX)
		h->local = true;
	else
		v2_addrs(p + V2_FIXED, family, h);
	/* After UNSPEC the block is opaque: its TLVs cannot be found. */
	if (family == AF_UNSPEC)
		return PROXY_OK;
	return v2_tlvs(p, V2_FIXED + alen, total, h, error_r);
}

/*
 * The 14th byte: family in the high nibble, transport in the low one.
 * UNSPEC in either means "ignore the addresses" (the spec's fallback);
 * DGRAM is refused since we relay only TCP.
 */
static enum proxy_rc
v2_family(uint8_t fam, size_t *alen, int *family, const char **error_r)
{
	static const size_t alens[] = { 0, 12, 36, 216 };
	static const int families[] = { AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX };

	if ((fam >> 4) > 3)
		return fail(error_r, "v2: unknown address family");
	if ((fam & 0x0f) > 2)
		return fail(error_r, "v2: unknown transport");
	if ((fam & 0x0f) == 2)
		return fail(error_r, "v2: DGRAM refused");
	if ((fam & 0x0f) == 0) {
		*alen = 0;
		*family = AF_UNSPEC;
	} else {
		*alen = alens[fam >> 4];
		*family = families[fam >> 4];
	}
	return PROXY_OK;
}

/* The INET or INET6 address block a: src, dst, sport, dport. */
static void
v2_addrs(const uint8_t *a, int family, struct proxy_hdr *h)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&h->src;
	struct sockaddr_in *d4 = (struct sockaddr_in *)&h->dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h->src;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&h->dst;

	/* Addresses and ports are in network order on the wire, as in a
	 * sockaddr: plain copies. */
	if (family == AF_INET) {
		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		memcpy(&d4->sin_addr, a + 4, 4);
		memcpy(&s4->sin_port, a + 8, 2);
		memcpy(&d4->sin_port, a + 10, 2);
		h->src_len = h->dst_len = sizeof(*s4);
		return;
	}
	s6->sin6_family = d6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, a, 16);
	memcpy(&d6->sin6_addr, a + 16, 16);
	memcpy(&s6->sin6_port, a + 32, 2);
	memcpy(&d6->sin6_port, a + 34, 2);
	h->src_len = h->dst_len = sizeof(*s6);
}

/*
 * Walk the TLVs in p[pos..end). A TLV we interpret may appear once (two
 * AUTHORITY values would leave the choice to whoever reads first).
 */
static enum proxy_rc
v2_tlvs(const uint8_t *p, size_t pos, size_t end, struct proxy_hdr *h,
    const char **error_r)
{
	size_t vpos, vlen, crc_at = 0;
	unsigned seen = 0, bit;
	uint8_t type;
	enum proxy_rc rc;

	while (pos < end) {
		if (tlv_next(p, &pos, end, &type, &vpos, &vlen) == -1)
			return fail(error_r, "v2: TLV runs past the header");
		bit = tlv_once_bit(type);
		if ((seen & bit) != 0)
			return fail(error_r, "v2: repeated TLV");
		seen |= bit;
		switch (type) {
		case PP2_TYPE_ALPN:
			h->alpn = p + vpos;
			h->alpn_len = vlen;
			break;
		case PP2_TYPE_AUTHORITY:
			h->authority = p + vpos;
			h->authority_len = vlen;
			break;
		case PP2_TYPE_UNIQUE_ID:
			if (vlen > V2_UNIQUE_ID_MAX)
				return fail(error_r, "v2: UNIQUE_ID too long");
			h->unique_id = p + vpos;
			h->unique_id_len = vlen;
			break;
		case PP2_TYPE_CRC32C:
			if (vlen != 4)
				return fail(error_r, "v2: CRC32C not 4 bytes");
			crc_at = vpos;
			break;
		case PP2_TYPE_SSL:
			if ((rc = v2_ssl(p + vpos, vlen, h, error_r)) !=
			    PROXY_OK)
				return rc;
			break;
		default: /* NOOP, NETNS and what we do not know */
			break;
		}
	}
	if (crc_at != 0 && !crc_ok(p, end, crc_at))
		return fail(error_r, "v2: CRC32C mismatch");
	return PROXY_OK;
}

/* A bit of its own for each TLV type that may appear once, else 0. */
static unsigned
tlv_once_bit(uint8_t type)
{
	switch (type) {
	case PP2_TYPE_ALPN:
	case PP2_TYPE_AUTHORITY:
	case PP2_TYPE_CRC32C:
	case PP2_TYPE_UNIQUE_ID:
		return 1u << type;
	case PP2_TYPE_SSL:
		return 1u << 8;
	}
	return 0;
}

/* The TLV at *pos: -1 if it does not fit before end. */
static int
tlv_next(const uint8_t *p, size_t *pos, size_t end, uint8_t *type, size_t *vpos,
    size_t *vlen)
{
	if (end - *pos < 3)
		return -1;
	*type = p[*pos];
	*vlen = (size_t)p[*pos + 1] << 8 | p[*pos + 2];
	*vpos = *pos + 3;
	if (*vlen > end - *vpos)
		return -1;
	*pos = *vpos + *vlen;
	return 0;
}

/* PP2_TYPE_SSL: client flags, 32-bit verify result, then sub-TLVs that
 * must fit exactly (we read none of them). */
static enum proxy_rc
v2_ssl(const uint8_t *v, size_t vlen, struct proxy_hdr *h, const char **error_r)
{
	size_t pos = 5, vpos, sublen;
	uint8_t type;

	if (vlen < 5)
		return fail(error_r, "v2: SSL TLV too short");
	while (pos < vlen)
		if (tlv_next(v, &pos, vlen, &type, &vpos, &sublen) == -1)
			return fail(error_r, "v2: SSL sub-TLV runs past");
	h->ssl = (v[0] & PP2_CLIENT_SSL) != 0;
	return PROXY_OK;
}

/*
 * CRC32c (Castagnoli, reflected polynomial 0x82f63b78), a nibble at a time
 * from a 16-entry table: the header is at most 2 KiB, speed is moot.
 */
static uint32_t
crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
	static const uint32_t t[16] = { 0x00000000, 0x105ec76f, 0x20bd8ede,
		0x30e349b1, 0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
		0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9, 0xc38d26c4,
		0xd3d3e1ab, 0xe330a81a, 0xf36e6f75 };

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ t[crc & 15];
		crc = (crc >> 4) ^ t[crc & 15];
	}
	return crc;
}

/* The checksum of p[0..end) with the 4 bytes at p + at taken as zeros
 * equals the big-endian value stored there. */
static bool
crc_ok(const uint8_t *p, size_t end, size_t at)
{
	static const uint8_t zero[4];
	uint32_t crc = 0xffffffff, want;

	crc = crc32c(crc, p, at);
	crc = crc32c(crc, zero, 4);
	crc = crc32c(crc, p + at + 4, end - at - 4);
	want = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 |
	    (uint32_t)p[at + 2] << 8 | p[at + 3];
	return (crc ^ 0xffffffff) == want;
}

size_t
proxy_proto_write_v2(void *out, size_t cap, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
	const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
	uint8_t *o = out;
	size_t alen;

	if (src == NULL || dst == NULL ||
	    (src->sa_family != AF_INET && src->sa_family != AF_INET6) ||
	    (dst->sa_family != AF_INET && dst->sa_family != AF_INET6))
		return 0;
	alen = src->sa_family == AF_INET && dst->sa_family == AF_INET ? 12 : 36;
	if (cap < V2_FIXED + alen)
		return 0;
	memcpy(o, v2_sig, V2_SIG_LEN);
	o[12] = 0x21;			  /* version 2, PROXY */
	o[13] = alen == 12 ? 0x11 : 0x21; /* STREAM over INET or INET6 */
	o[14] = 0;
	o[15] = (uint8_t)alen;
	if (alen == 12) {
		memcpy(o + 16, &s4->sin_addr, 4);
		memcpy(o + 20, &d4->sin_addr, 4);
		memcpy(o + 24, &s4->sin_port, 2);
		memcpy(o + 26, &d4->sin_port, 2);
	} else {
		put_addr6(src, o + 16, o + 48);
		put_addr6(dst, o + 32, o + 50);
	}
	return V2_FIXED + alen;
}

/* sa as 16 address bytes (IPv4 as ::ffff:a.b.c.d) and its port. */
static void
put_addr6(const struct sockaddr *sa, uint8_t *addr, uint8_t *port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET6) {
		memcpy(addr, &sin6->sin6_addr, 16);
		memcpy(port, &sin6->sin6_port, 2);
		return;
	}
	memset(addr, 0, 10);
	addr[10] = addr[11] = 0xff;
	memcpy(addr + 12, &sin->sin_addr, 4);
	memcpy(port, &sin->sin_port, 2);
}
