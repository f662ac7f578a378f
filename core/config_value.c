/*
 * config_value.c - the scalar side of core/config.c: one converter per
 * field type (bool, int, string, duration, size, enum, address) and the
 * text parsers behind them.
 *
 * A value arrives as a struct value, either read from a setting of the
 * file or made from a field's default text, and both go through the same
 * converter, so a default can never mean something the file could not
 * say. Refusals are reported with cfg_bad_value() (core/config.c), which
 * names the file, line, key and what was written; the parsers only fill a
 * short reason.
 *
 * Never: resolves a host name, accepts a value of the wrong type by
 * converting it, or lets a unit, sign or overflow slip through silently.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/config_private.h"

/* scalar values: one converter per type, fed by file values and defaults */
static int store_int(struct walk *w, const struct cfg_field *f,
    const struct value *v, int64_t *dst, const char *path);
static int store_duration(struct walk *w, const struct cfg_field *f,
    const struct value *v, uint64_t *dst, const char *path);
static int store_size(struct walk *w, const struct cfg_field *f,
    const struct value *v, uint64_t *dst, const char *path);
static int store_enum(struct walk *w, const struct cfg_field *f,
    const struct value *v, int *dst, const char *path);
static int store_addr(struct walk *w, const struct cfg_field *f,
    const struct value *v, struct cfg_addr *dst, const char *path);
static int check_bounds(struct walk *w, const struct cfg_field *f,
    const struct value *v, uint64_t x, const char *path);
static void format_amount(const struct cfg_field *f, uint64_t x, char *buf,
    size_t n);

/* text parsers with a reason on failure */
static int parse_duration(const char *s, uint64_t *ms_r, char *why);
static int parse_size(const char *s, uint64_t *bytes_r, char *why);
static int parse_addr(const char *s, struct cfg_addr *a, char *why);
static int parse_number(const char **sp, uint64_t *n_r, char *why);
static int parse_unit(const char **sp, char *unit, size_t n, char *why);
static int parse_port(const char *s, in_port_t *port_r, char *why);

static const char *const duration_units[] = { "ms", "s", "m", "h", "d" };
static const uint64_t duration_ms[] = { 1, 1000, 60000, 3600000, 86400000 };

/* ---------------------------------------------------------------- public */

int
cfg_parse_duration(const char *s, uint64_t *ms_r)
{
	char why[WHY_MAX];

	return parse_duration(s, ms_r, why);
}

int
cfg_parse_size(const char *s, uint64_t *bytes_r)
{
	char why[WHY_MAX];

	return parse_size(s, bytes_r, why);
}

int
cfg_parse_addr(const char *s, struct cfg_addr *a)
{
	char why[WHY_MAX];

	return parse_addr(s, a, why);
}

/* ---------------------------------------------------------- scalar values */

void
cfg_value_of_setting(struct value *v, const config_setting_t *s)
{
	memset(v, 0, sizeof(*v));
	v->s = s;
	v->type = config_setting_type(s);
	switch (v->type) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v->i = config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_STRING:
		v->str = config_setting_get_string(s);
		break;
	case CONFIG_TYPE_BOOL:
		v->b = config_setting_get_bool(s) != 0;
		break;
	}
	cfg_show_setting(s, v->shown, sizeof(v->shown));
}

/*
 * Read a default as the file would have it: "true"/"false" for BOOL, a
 * bare integer for INT, and a string for every other type (which is also
 * how durations and sizes written as integers arrive, as strings of
 * digits, meaning seconds and bytes just as in the file).
 */
int
cfg_value_of_default(struct value *v, const struct cfg_field *f,
    const config_setting_t *anchor)
{
	char *end;

	memset(v, 0, sizeof(*v));
	v->anchor = anchor;
	v->str = f->def;
	v->type = CONFIG_TYPE_STRING;
	cfg_show_text(f->def, v->shown, sizeof(v->shown));
	if (f->type == CFG_BOOL) {
		v->type = CONFIG_TYPE_BOOL;
		if (strcmp(f->def, "true") == 0)
			v->b = true;
		else if (strcmp(f->def, "false") != 0)
			return -1;
	} else if (f->type == CFG_INT) {
		v->type = CONFIG_TYPE_INT64;
		errno = 0;
		v->i = strtoll(f->def, &end, 0);
		if (errno != 0 || end == f->def || *end != '\0')
			return -1;
	}
	return 0;
}

int
cfg_value_store(struct walk *w, const struct cfg_field *f,
    const struct value *v, char *base, const char *path)
{
	char hint[256];
	char *p = base + f->offset, *copy;

	switch (f->type) {
	case CFG_BOOL:
		if (v->type != CONFIG_TYPE_BOOL)
			break;
		*(bool *)p = v->b;
		return 0;
	case CFG_INT:
		return store_int(w, f, v, (int64_t *)p, path);
	case CFG_STRING:
		if (v->type != CONFIG_TYPE_STRING)
			break;
		copy = strdup(v->str);
		if (copy == NULL)
			return cfg_bad_value(w, v, path, "out of memory");
		free(*(char **)p);
		*(char **)p = copy;
		return 0;
	case CFG_DURATION:
		return store_duration(w, f, v, (uint64_t *)p, path);
	case CFG_SIZE:
		return store_size(w, f, v, (uint64_t *)p, path);
	case CFG_ENUM:
		return store_enum(w, f, v, (int *)p, path);
	case CFG_ADDR:
		return store_addr(w, f, v, (struct cfg_addr *)p, path);
	default:
		break;
	}
	return cfg_bad_value(w, v, path, "must be %s",
	    cfg_type_hint(f, hint, sizeof(hint)));
}

static int
store_int(struct walk *w, const struct cfg_field *f, const struct value *v,
    int64_t *dst, const char *path)
{
	char hint[256];

	if (v->type != CONFIG_TYPE_INT && v->type != CONFIG_TYPE_INT64)
		return cfg_bad_value(w, v, path, "must be %s",
		    cfg_type_hint(f, hint, sizeof(hint)));
	if ((f->min != 0 || f->max != 0) &&
	    (v->i < f->min || (v->i > f->max && f->max >= f->min))) {
		if (f->max < f->min)
			return cfg_bad_value(w, v, path,
			    "must be at least %" PRId64, f->min);
		return cfg_bad_value(w, v, path,
		    "must be between %" PRId64 " and %" PRId64, f->min, f->max);
	}
	*dst = v->i;
	return 0;
}

static int
store_duration(struct walk *w, const struct cfg_field *f, const struct value *v,
    uint64_t *dst, const char *path)
{
	char hint[256], why[WHY_MAX];
	uint64_t ms;

	if (v->type == CONFIG_TYPE_INT || v->type == CONFIG_TYPE_INT64) {
		if (v->i < 0)
			return cfg_bad_value(w, v, path,
			    "must not be negative; must be %s",
			    cfg_type_hint(f, hint, sizeof(hint)));
		if ((unsigned long long)v->i > UINT64_MAX / 1000)
			return cfg_bad_value(w, v, path, "too large");
		ms = (uint64_t)v->i * 1000;
	} else if (v->type == CONFIG_TYPE_STRING) {
		if (parse_duration(v->str, &ms, why) == -1)
			return cfg_bad_value(w, v, path, "%s; must be %s", why,
			    cfg_type_hint(f, hint, sizeof(hint)));
	} else {
		return cfg_bad_value(w, v, path, "must be %s",
		    cfg_type_hint(f, hint, sizeof(hint)));
	}
	if (check_bounds(w, f, v, ms, path) == -1)
		return -1;
	*dst = ms;
	return 0;
}

static int
store_size(struct walk *w, const struct cfg_field *f, const struct value *v,
    uint64_t *dst, const char *path)
{
	char hint[256], why[WHY_MAX];
	uint64_t bytes;

	if (v->type == CONFIG_TYPE_INT || v->type == CONFIG_TYPE_INT64) {
		if (v->i < 0)
			return cfg_bad_value(w, v, path,
			    "must not be negative; must be %s",
			    cfg_type_hint(f, hint, sizeof(hint)));
		bytes = (uint64_t)v->i;
	} else if (v->type == CONFIG_TYPE_STRING) {
		if (parse_size(v->str, &bytes, why) == -1)
			return cfg_bad_value(w, v, path, "%s; must be %s", why,
			    cfg_type_hint(f, hint, sizeof(hint)));
	} else {
		return cfg_bad_value(w, v, path, "must be %s",
		    cfg_type_hint(f, hint, sizeof(hint)));
	}
	if (check_bounds(w, f, v, bytes, path) == -1)
		return -1;
	*dst = bytes;
	return 0;
}

/* Choices match without regard to case: "INFO" and "tlsv1.3" mean what
 * they obviously mean, and no table has two choices differing only in
 * case. */
static int
store_enum(struct walk *w, const struct cfg_field *f, const struct value *v,
    int *dst, const char *path)
{
	char hint[256];

	if (v->type == CONFIG_TYPE_STRING) {
		for (int i = 0; f->choices[i] != NULL; i++) {
			if (strcasecmp(v->str, f->choices[i]) == 0) {
				*dst = i;
				return 0;
			}
		}
	}
	/* The hint of an ENUM is always its choices: a field's own hint
	 * cannot list them better, and an old one could list them wrong. */
	{
		struct cfg_field plain = *f;

		plain.hint = NULL;
		return cfg_bad_value(w, v, path, "must be %s",
		    cfg_type_hint(&plain, hint, sizeof(hint)));
	}
}

static int
store_addr(struct walk *w, const struct cfg_field *f, const struct value *v,
    struct cfg_addr *dst, const char *path)
{
	char hint[256], why[WHY_MAX];

	if (v->type != CONFIG_TYPE_STRING)
		return cfg_bad_value(w, v, path, "must be %s",
		    cfg_type_hint(f, hint, sizeof(hint)));
	if (parse_addr(v->str, dst, why) == -1)
		return cfg_bad_value(w, v, path, "%s; must be %s", why,
		    cfg_type_hint(f, hint, sizeof(hint)));
	return 0;
}

/*
 * DURATION and SIZE bounds, told in the value's own units. Both zero means
 * unbounded; a max of zero with a positive min means "at least min".
 */
static int
check_bounds(struct walk *w, const struct cfg_field *f, const struct value *v,
    uint64_t x, const char *path)
{
	uint64_t lo = f->min > 0 ? (uint64_t)f->min : 0;
	uint64_t hi = f->max > 0 ? (uint64_t)f->max : 0;
	bool upper = hi != 0 || f->min <= 0;
	char a[32], b[32];

	if (f->min == 0 && f->max == 0)
		return 0;
	if (x >= lo && (!upper || x <= hi))
		return 0;
	format_amount(f, lo, a, sizeof(a));
	format_amount(f, hi, b, sizeof(b));
	if (!upper)
		return cfg_bad_value(w, v, path, "must be at least %s", a);
	return cfg_bad_value(w, v, path, "must be between %s and %s", a, b);
}

/* The largest unit that says x exactly: 90000 ms is "90s", 16384 bytes is
 * "16k", so the bound can be pasted back into the file. */
static void
format_amount(const struct cfg_field *f, uint64_t x, char *buf, size_t n)
{
	static const char size_units[] = "kMGT";
	int i;

	if (f->type == CFG_DURATION) {
		for (i = 4; i > 0; i--)
			if (x != 0 && x % duration_ms[i] == 0)
				break;
		snprintf(buf, n, "%" PRIu64 "%s", x / duration_ms[i],
		    duration_units[i]);
		return;
	}
	for (i = 0; x != 0 && x % 1024 == 0 && i < 4; i++)
		x /= 1024;
	if (i == 0)
		snprintf(buf, n, "%" PRIu64 " bytes", x);
	else
		snprintf(buf, n, "%" PRIu64 "%c", x, size_units[i - 1]);
}

/* ----------------------------------------------------------- text parsers */

/*
 * A duration: a plain number of seconds ("30"), or one or more
 * number-and-unit pairs ("500ms", "1h30m") with units ms, s, m, h, d in
 * lower case only ("5M" could as well mean megabytes). No spaces, signs or
 * fractions; the total must fit in 64 bits of milliseconds.
 */
static int
parse_duration(const char *s, uint64_t *ms_r, char *why)
{
	uint64_t total = 0, n, part;
	bool first = true;
	char unit[16];
	size_t i;

	if (*s == '\0') {
		snprintf(why, WHY_MAX, "it is empty");
		return -1;
	}
	while (*s != '\0') {
		if (parse_number(&s, &n, why) == -1)
			return -1;
		if (parse_unit(&s, unit, sizeof(unit), why) == -1)
			return -1;
		if (unit[0] == '\0') {
			if (!first || *s != '\0') {
				snprintf(why, WHY_MAX,
				    "the last number has no unit");
				return -1;
			}
			unit[0] = 's';
			unit[1] = '\0';
		}
		for (i = 0; i < 5; i++)
			if (strcmp(unit, duration_units[i]) == 0)
				break;
		if (i == 5) {
			snprintf(why, WHY_MAX,
			    "unknown unit \"%s\"; units are ms, s, m, h and d, "
			    "in lower case",
			    unit);
			return -1;
		}
		if (__builtin_mul_overflow(n, duration_ms[i], &part) ||
		    __builtin_add_overflow(total, part, &total)) {
			snprintf(why, WHY_MAX, "it is too large");
			return -1;
		}
		first = false;
	}
	*ms_r = total;
	return 0;
}

/*
 * A size: a number of bytes, optionally with a binary multiplier k, m, g
 * or t (either case: 1k = 1024) and an optional "B" or "iB" after it, so
 * "64k", "64K", "64KiB" and "64KB" are the same. A lone "B" means bytes.
 */
static int
parse_size(const char *s, uint64_t *bytes_r, char *why)
{
	static const char mults[] = "kmgt";
	uint64_t n, mult = 1;
	const char *p;
	char unit[16];

	if (*s == '\0') {
		snprintf(why, WHY_MAX, "it is empty");
		return -1;
	}
	if (parse_number(&s, &n, why) == -1 ||
	    parse_unit(&s, unit, sizeof(unit), why) == -1)
		return -1;
	if (*s != '\0') {
		snprintf(why, WHY_MAX, "one number and one unit, please");
		return -1;
	}
	p = unit;
	if (*p != '\0' && (*p | 0x20) != 'b') {
		const char *m = strchr(mults, *p | 0x20);

		if (m == NULL)
			goto bad_unit;
		for (ptrdiff_t k = 0; k <= m - mults; k++)
			mult *= 1024;
		p++;
	}
	if (strcmp(p, "") != 0 && strcmp(p, "B") != 0 &&
	    !(p != unit && strcmp(p, "iB") == 0))
		goto bad_unit;
	if (__builtin_mul_overflow(n, mult, &n)) {
		snprintf(why, WHY_MAX, "it is too large");
		return -1;
	}
	*bytes_r = n;
	return 0;
bad_unit:
	snprintf(why, WHY_MAX,
	    "unknown unit \"%s\"; units are k, M, G and T (binary)", unit);
	return -1;
}

/* Decimal digits at *sp, advancing past them; the reasons name the usual
 * ways a number goes wrong. */
static int
parse_number(const char **sp, uint64_t *n_r, char *why)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (*s == '-') {
		snprintf(why, WHY_MAX, "it must not be negative");
		return -1;
	}
	if (isspace((unsigned char)*s)) {
		snprintf(why, WHY_MAX, "remove the spaces");
		return -1;
	}
	if (!isdigit((unsigned char)*s)) {
		snprintf(why, WHY_MAX, "it must start with a number");
		return -1;
	}
	for (; isdigit((unsigned char)*s); s++) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*s - '0'), &n)) {
			snprintf(why, WHY_MAX, "it is too large");
			return -1;
		}
	}
	if (*s == '.' || *s == ',') {
		snprintf(why, WHY_MAX,
		    "fractions are not supported; use a smaller unit");
		return -1;
	}
	*n_r = n;
	*sp = s;
	return 0;
}

/* The letters after a number. Spaces before a known-looking unit are
 * refused with their own reason, after the unit itself was read, so that
 * "10 parsecs" is told about its unit rather than its space. */
static int
parse_unit(const char **sp, char *unit, size_t n, char *why)
{
	const char *s = *sp, *start;
	bool spaced = false;
	size_t len;

	if (isspace((unsigned char)*s)) {
		spaced = true;
		while (isspace((unsigned char)*s))
			s++;
	}
	start = s;
	while (*s != '\0' && !isdigit((unsigned char)*s) &&
	    !isspace((unsigned char)*s))
		s++;
	len = (size_t)(s - start);
	if (len >= n) {
		snprintf(why, WHY_MAX, "unknown unit \"%.*s...\"", (int)n,
		    start);
		return -1;
	}
	memcpy(unit, start, len);
	unit[len] = '\0';
	if (spaced || isspace((unsigned char)*s)) {
		/* Let an unknown unit be reported as such: the caller will
		 * fail on it; a known one gets told about the space. */
		if (len != 0 && strspn(unit, "msdhkKmMgGtTiB") == len &&
		    len <= 3) {
			snprintf(why, WHY_MAX, "remove the space before \"%s\"",
			    unit);
			return -1;
		}
		if (len == 0) {
			snprintf(why, WHY_MAX, "remove the spaces");
			return -1;
		}
	}
	*sp = s;
	return 0;
}

/*
 * "a.b.c.d:port", "[v6]:port" or "*:port". "*" is 0.0.0.0, every IPv4
 * address; write "[::]:port" for every IPv6 address (and, on a host with
 * bindv6only off, IPv4 as well). Never resolved: a name is refused.
 */
static int
parse_addr(const char *s, struct cfg_addr *a, char *why)
{
	struct cfg_addr r;
	struct sockaddr_in *in = (struct sockaddr_in *)&r.ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&r.ss;
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *end;
	in_port_t port;
	size_t hlen;

	memset(&r, 0, sizeof(r));
	if (strlen(s) >= sizeof(r.text)) {
		snprintf(why, WHY_MAX, "it is too long for an address");
		return -1;
	}
	/* Kept as written, for logs. */
	snprintf(r.text, sizeof(r.text), "%s", s);
	if (*s == '[') {
		end = strchr(s, ']');
		if (end == NULL) {
			snprintf(why, WHY_MAX, "the ']' is missing");
			return -1;
		}
		if (end[1] != ':') {
			snprintf(why, WHY_MAX, "the port is missing after ']'");
			return -1;
		}
		hlen = (size_t)(end - s - 1);
		colon = end + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			snprintf(why, WHY_MAX, "the :port is missing");
			return -1;
		}
		if (strchr(s, ':') != colon) {
			snprintf(why, WHY_MAX,
			    "an IPv6 address goes in brackets, like "
			    "\"[::1]:993\"");
			return -1;
		}
		hlen = (size_t)(colon - s);
		end = NULL;
	}
	if (hlen == 0) {
		snprintf(why, WHY_MAX,
		    "the host is missing; \"*:port\" means all addresses");
		return -1;
	}
	if (hlen >= sizeof(host)) {
		snprintf(why, WHY_MAX, "the host is too long for an address");
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (parse_port(colon + 1, &port, why) == -1)
		return -1;
	if (end != NULL) {
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
			snprintf(why, WHY_MAX,
			    "\"%s\" is not a numeric IPv6 address", host);
			return -1;
		}
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		r.len = sizeof(*in6);
	} else {
		if (strcmp(host, "*") == 0) {
			in->sin_addr.s_addr = htonl(INADDR_ANY);
		} else if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
			if (strspn(host, "0123456789.") != hlen)
				snprintf(why, WHY_MAX,
				    "\"%s\" is not a numeric address; host "
				    "names are never resolved",
				    host);
			else
				snprintf(why, WHY_MAX,
				    "\"%s\" is not a valid IPv4 address", host);
			return -1;
		}
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		r.len = sizeof(*in);
	}
	*a = r;
	return 0;
}

static int
parse_port(const char *s, in_port_t *port_r, char *why)
{
	unsigned long n = 0;
	size_t len = strspn(s, "0123456789");

	if (len == 0 || s[len] != '\0' || len > 5 ||
	    (n = strtoul(s, NULL, 10)) == 0 || n > 65535) {
		snprintf(why, WHY_MAX,
		    "the port must be a number from 1 to "
		    "65535");
		return -1;
	}
	*port_r = (in_port_t)n;
	return 0;
}
