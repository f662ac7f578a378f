/*
 * imap_pattern.h - LIST/LSUB mailbox patterns (RFC 3501 section 6.3.8):
 * '*' matches any run of characters, '%' any run without the hierarchy
 * separator, every other byte itself.
 *
 * A pattern is compiled once per command and then tried against each
 * name in time linear in the name (a bit-parallel automaton over the
 * pattern's positions), so a hostile pattern such as "*a*a*a...x" costs
 * O(name x pattern / 64) per name instead of the exponential backtracking
 * of a recursive matcher. Pure code: no I/O, one allocation.
 */
#ifndef RG_PROTO_IMAP_PATTERN_H
#define RG_PROTO_IMAP_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

/* Longest pattern accepted, in bytes (LIST's reference + mailbox). */
#define IMAP_PATTERN_MAX 4096

struct imap_pattern;

/*
 * Compiles pat[0..len) with `sep` as the hierarchy separator. Returns
 * NULL when out of memory or when len exceeds IMAP_PATTERN_MAX.
 */
struct imap_pattern *imap_pattern_new(const char *pat, size_t len, char sep);

/*
 * Whether the whole of name[0..len) matches. Uses the pattern's own
 * scratch state: one pattern is for one thread at a time.
 */
bool imap_pattern_match(struct imap_pattern *p, const char *name, size_t len);

void imap_pattern_free(struct imap_pattern *p);

#endif
