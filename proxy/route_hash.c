/*
 * route_hash.c - the pure parts of routing: weighted rendezvous (highest
 * random weight) hashing of user names over ringgate's back-end pool, the
 * host= list and the greeting a health check expects. No I/O, no state.
 *
 * Every (user, back end) pair gets a pseudo-random u in (0,1) from a fixed
 * hash of the user name and of the back end's NAME (not its position in
 * the config, so reordering the list moves nobody); the score is
 * -weight / ln(u) and the highest score wins. For weights w_i a user lands
 * on back end i with probability w_i / sum(w), and adding a back end only
 * takes users from the others (those for which the new one scores
 * highest), never moves users between the old ones. The hash has no
 * random seed on purpose: routes must be the same on every ringgate host
 * and after every restart.
 */
#include <math.h>
#include <string.h>

#include "proxy/route_private.h"

static uint64_t mix64(uint64_t x);

/* murmur3's 64-bit finalizer: every input bit flips each output bit with
 * probability about 1/2. */
static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

uint64_t
route_hash_str(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then mixed */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ n);
}

double
route_hash_score(const struct route_hash_node *node, uint64_t user_hash)
{
	uint64_t x = mix64(
	    user_hash ^ mix64(node->key + 0x9e3779b97f4a7c15ULL));
	/* 53 random bits, centred in their interval: u is never 0 or 1 */
	double u = ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);

	return -node->weight / log(u);
}

int
route_hash_pick(const struct route_hash_node *nodes, unsigned n,
    uint64_t user_hash)
{
	int best = -1;
	double best_score = 0;

	for (unsigned i = 0; i < n; i++) {
		double sc = route_hash_score(&nodes[i], user_hash);

		if (best == -1 || sc > best_score) {
			best = (int)i;
			best_score = sc;
		}
	}
	return best;
}

bool
route_host_next(const char **pp, const char **name_r, size_t *len_r)
{
	const char *p = *pp + strspn(*pp, " \t,");
	size_t n = strcspn(p, " \t,");

	if (n == 0) {
		*pp = p;
		return false;
	}
	*name_r = p;
	*len_r = n;
	*pp = p + n;
	return true;
}

bool
route_greeting_ok(enum route_proto p, const char *s, size_t n)
{
	static const char *const want[] = { "* OK", "+OK", "220" };
	size_t wl;

	if ((unsigned)p >= ROUTE_NPROTO)
		return false;
	wl = strlen(want[p]);
	if (n < wl || memcmp(s, want[p], wl) != 0)
		return false;
	/* "220 " or "220-": not "2201"; "* OK" not "* OKAY" */
	return n == wl || s[wl] == ' ' || s[wl] == '-' || s[wl] == '\r' ||
	    s[wl] == '\n';
}
