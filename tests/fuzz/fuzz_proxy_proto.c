/*
 * fuzz_proxy_proto.c - libFuzzer target for the PROXY v1/v2 parser and the
 * v2 writer.
 *
 * Each input is parsed whole, then every prefix (each in an exactly-sized
 * copy, so a read past n is an ASan report) as a listener would see it
 * while bytes trickle in. Properties checked, not just crashes: an OK
 * header stays within the input and PROXY_HDR_MAX, its families and
 * lengths agree, its slices lie inside it; an INVALID prefix stays
 * INVALID; a prefix of an OK input is AGAIN until exactly h->len bytes,
 * and there parses to the same result; an OK header with addresses goes
 * through the writer and parses back to the same addresses. A broken
 * property aborts, which libFuzzer reports as a crash.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum proxy_rc parse_exact(const uint8_t *p, size_t n,
    struct proxy_hdr *h);
static void check_hdr(const uint8_t *p, size_t n, const struct proxy_hdr *h);
static void check_slice(const uint8_t *p, const struct proxy_hdr *h,
    const uint8_t *s, size_t len);
static void same_hdr(const struct proxy_hdr *a, const uint8_t *pa,
    const struct proxy_hdr *b, const uint8_t *pb);
static void round_trip(const struct proxy_hdr *h);

/* Parse a copy of p[0..n) with nothing readable behind it; slices in *h
 * are moved back to point into p. */
static enum proxy_rc
parse_exact(const uint8_t *p, size_t n, struct proxy_hdr *h)
{
	uint8_t *copy = malloc(n ? n : 1);
	const char *err = NULL;
	enum proxy_rc rc;

	if (copy == NULL)
		abort();
	memcpy(copy, p, n);
	rc = proxy_proto_parse(copy, n, h, &err);
	if (rc == PROXY_INVALID && err == NULL)
		abort();
	if (rc == PROXY_OK) {
		check_hdr(copy, n, h);
		if (h->alpn != NULL)
			h->alpn = p + (h->alpn - copy);
		if (h->authority != NULL)
			h->authority = p + (h->authority - copy);
		if (h->unique_id != NULL)
			h->unique_id = p + (h->unique_id - copy);
	}
	free(copy);
	return rc;
}

static void
check_hdr(const uint8_t *p, size_t n, const struct proxy_hdr *h)
{
	if (h->len == 0 || h->len > n || h->len > PROXY_HDR_MAX)
		abort();
	if (h->local) {
		if (h->src_len != 0 || h->dst_len != 0 ||
		    h->src.ss_family != 0 || h->dst.ss_family != 0)
			abort();
	} else if (h->src.ss_family != h->dst.ss_family ||
	    h->src_len != h->dst_len ||
	    (h->src.ss_family == AF_INET ?
		    h->src_len != sizeof(struct sockaddr_in) :
		    h->src.ss_family != AF_INET6 ||
			h->src_len != sizeof(struct sockaddr_in6)))
		abort();
	if (h->version == 1) {
		/* One line, CRLF-terminated, within the spec's 107 bytes,
		 * and no v2 extras. */
		if (h->len > 107 || h->len < 15 || p[0] != 'P' ||
		    p[h->len - 2] != '\r' || p[h->len - 1] != '\n' ||
		    memchr(p, '\n', h->len - 1) != NULL)
			abort();
		if (h->alpn || h->authority || h->unique_id || h->ssl)
			abort();
	} else if (h->version == 2) {
		if (h->len != 16 + ((size_t)p[14] << 8 | p[15]) ||
		    (p[12] >> 4) != 2 || (p[13] & 0x0f) == 2)
			abort();
		if ((p[12] & 0x0f) == 0 && !h->local)
			abort();
	} else {
		abort();
	}
	check_slice(p, h, h->alpn, h->alpn_len);
	check_slice(p, h, h->authority, h->authority_len);
	check_slice(p, h, h->unique_id, h->unique_id_len);
	if (h->unique_id_len > 128)
		abort();
}

static void
check_slice(const uint8_t *p, const struct proxy_hdr *h, const uint8_t *s,
    size_t len)
{
	if (s == NULL) {
		if (len != 0)
			abort();
		return;
	}
	/* v2 only, and after the 16 fixed bytes and a TLV header */
	if (s < p + 19 || len > h->len || s + len > p + h->len)
		abort();
}

/* The same header parsed from two buffers: equal fields, same offsets. */
static void
same_hdr(const struct proxy_hdr *a, const uint8_t *pa,
    const struct proxy_hdr *b, const uint8_t *pb)
{
	if (a->version != b->version || a->local != b->local ||
	    a->len != b->len || a->ssl != b->ssl || a->src_len != b->src_len ||
	    a->dst_len != b->dst_len ||
	    memcmp(&a->src, &b->src, sizeof(a->src)) != 0 ||
	    memcmp(&a->dst, &b->dst, sizeof(a->dst)) != 0 ||
	    a->alpn_len != b->alpn_len ||
	    a->authority_len != b->authority_len ||
	    a->unique_id_len != b->unique_id_len ||
	    (a->alpn != NULL) != (b->alpn != NULL) ||
	    (a->authority != NULL) != (b->authority != NULL) ||
	    (a->unique_id != NULL) != (b->unique_id != NULL))
		abort();
	if ((a->alpn && a->alpn - pa != b->alpn - pb) ||
	    (a->authority && a->authority - pa != b->authority - pb) ||
	    (a->unique_id && a->unique_id - pa != b->unique_id - pb))
		abort();
}

/* Addresses we accepted, sent on as v2, come back unchanged. */
static void
round_trip(const struct proxy_hdr *h)
{
	uint8_t out[PROXY_V2_MAX_WRITE];
	struct proxy_hdr back;
	size_t n;

	n = proxy_proto_write_v2(out, sizeof(out),
	    (const struct sockaddr *)&h->src, (const struct sockaddr *)&h->dst);
	if (n != (h->src.ss_family == AF_INET ? 28u : 52u))
		abort();
	/* One byte short must write nothing. */
	if (proxy_proto_write_v2(out, n - 1, (const struct sockaddr *)&h->src,
		(const struct sockaddr *)&h->dst) != 0)
		abort();
	if (parse_exact(out, n, &back) != PROXY_OK || back.len != n ||
	    back.version != 2 || back.local || back.src_len != h->src_len ||
	    back.dst_len != h->dst_len ||
	    memcmp(&back.src, &h->src, h->src_len) != 0 ||
	    memcmp(&back.dst, &h->dst, h->dst_len) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr whole, h;
	enum proxy_rc rc, pr, prev = PROXY_AGAIN;

	rc = parse_exact(data, size, &whole);
	if (rc == PROXY_OK && !whole.local)
		round_trip(&whole);
	/* Prefix walk: past PROXY_HDR_MAX nothing can change. */
	for (size_t k = 0; k <= size && k <= PROXY_HDR_MAX + 1; k++) {
		pr = parse_exact(data, k, &h);
		if (prev == PROXY_INVALID && pr != PROXY_INVALID)
			abort();
		if (rc == PROXY_OK && k < whole.len && pr != PROXY_AGAIN)
			abort();
		if (pr == PROXY_OK) {
			/* The first OK is at exactly h.len bytes, and more
			 * bytes behind it change nothing. */
			if (rc != PROXY_OK || k != h.len)
				abort();
			same_hdr(&whole, data, &h, data);
			break;
		}
		prev = pr;
	}
	return 0;
}
