/*
 * smtp_addr.c - the address grammar of RFC 5321 section 4.1.2 for the SMTP
 * command parser: Path, Mailbox, dot-string and quoted-string local parts,
 * Domain, address literals ([IPv4], [IPv6:...] in all four of the RFC's
 * forms), and RFC 6531's UTF-8 extension of atext, qtextSMTP and
 * sub-domain (well-formed UTF-8 of RFC 3629; whether a label is a valid
 * IDNA U-label is the resolver's business, not the grammar's).
 *
 * Scanners take (s, n), read nothing at or past n, and return how many
 * bytes the construct took (0: none there); the caller checks what comes
 * next. Never allocates: an unquoted local part goes into the command's
 * bounded decode area.
 */
#include <string.h>

#include "proto/smtp_private.h"

#define LABEL_MAX 63
#define LITERAL_MAX 64 /* "[IPv6:" 45 characters "]" fits */

static size_t dot_string(const char *s, size_t n, bool utf8, bool *u8_r);
static size_t quoted_string(const char *s, size_t n, bool utf8, bool *u8_r);
static size_t unquote(const char *q, size_t len, char *dst);
static bool is_hex(unsigned char c);
static size_t hex_group(const char *s, size_t n);
static size_t route(const char *s, size_t n, bool utf8, bool *u8_r,
    enum smtp_addr_why *why);

bool
smtp_addr_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * The length of the well-formed non-ASCII UTF-8 sequence at p (2 to 4), or
 * 0: RFC 3629's table, so no overlong form, no surrogate, nothing past
 * U+10FFFF.
 */
size_t
smtp_addr_utf8(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (n == 0 || p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	if (p[0] < 0xe0)
		len = 2;
	else if (p[0] < 0xf0)
		len = 3;
	else
		len = 4;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (no hyphen first or last), or with utf8 a label that may hold UTF-8.
 * A dot must be followed by a label. Labels <= 63 octets, the whole <= 255.
 */
size_t
smtp_addr_domain(const char *s, size_t n, bool utf8, bool *u8_r,
    enum smtp_addr_why *why)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, start, k;
	bool hyphen;

	for (;;) {
		start = i;
		hyphen = false;
		while (i < n) {
			if ((u[i] >= 'a' && u[i] <= 'z') ||
			    (u[i] >= 'A' && u[i] <= 'Z') ||
			    (u[i] >= '0' && u[i] <= '9')) {
				i++;
				hyphen = false;
			} else if (u[i] == '-' && i > start) {
				i++;
				hyphen = true;
			} else if (utf8 && (k = smtp_addr_utf8(u + i, n - i))) {
				i += k;
				hyphen = false;
				*u8_r = true;
			} else {
				break;
			}
		}
		if (i == start || hyphen) {
			*why = SMTP_AW_SYNTAX;
			return 0;
		}
		if (i - start > LABEL_MAX) {
			*why = SMTP_AW_LONG;
			return 0;
		}
		if (i == n || u[i] != '.')
			break;
		i++;
	}
	if (i > SMTP_DOMAIN_MAX) {
		*why = SMTP_AW_LONG;
		return 0;
	}
	return i;
}

/* Snum "." Snum "." Snum "." Snum, Snum = 1*3DIGIT of 0 to 255, the
 * whole of s[0..n). */
bool
smtp_addr_ipv4(const char *s, size_t n)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;

		if (part > 0) {
			if (i == n || s[i] != '.')
				return false;
			i++;
		}
		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == n;
}

static bool
is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/* IPv6-hex = 1*4HEXDIG at s: its length, 0 if none. */
static size_t
hex_group(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && i < 4 && is_hex((unsigned char)s[i]))
		i++;
	if (i < n && is_hex((unsigned char)s[i]))
		return 0; /* five digits */
	return i;
}

/*
 * RFC 5321's IPv6-addr, the whole of s[0..n): eight groups (six and an
 * IPv4 address), or with one "::" at most six groups (an IPv4 address
 * counting two), so "::" always stands for two zero groups or more.
 */
bool
smtp_addr_ipv6(const char *s, size_t n)
{
	size_t i = 0, k, groups = 0;
	bool dbl = false;

	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		dbl = true;
		i = 2;
	}
	while (i < n) {
		const char *colon = memchr(s + i, ':', n - i);
		size_t tok = colon ? (size_t)(colon - (s + i)) : n - i;

		if (memchr(s + i, '.', tok) != NULL) {
			/* the IPv4 tail: last, and two groups' worth */
			if (colon != NULL || !smtp_addr_ipv4(s + i, n - i))
				return false;
			groups += 2;
			i = n;
			break;
		}
		if ((k = hex_group(s + i, n - i)) == 0 || k != tok)
			return false;
		groups++;
		i += k;
		if (i == n)
			break;
		i++; /* the ':' */
		if (i < n && s[i] == ':') {
			if (dbl)
				return false;
			dbl = true;
			i++;
			continue; /* may end here: "1::" */
		}
		if (i == n)
			return false; /* a lone trailing ':' */
	}
	return dbl ? groups <= 6 : groups == 8;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal )
 * "]" at s; general literals (a registered tag) are refused: none is
 * registered and nothing here could route to one. Returns its length with
 * the brackets, or 0.
 */
size_t
smtp_addr_literal(const char *s, size_t n)
{
	const char *close;
	size_t len;

	if (n < 2 || s[0] != '[')
		return 0;
	close = memchr(s, ']', n < LITERAL_MAX ? n : LITERAL_MAX);
	if (close == NULL)
		return 0;
	len = (size_t)(close - s) - 1;
	if (len > 5 && smtp_cmd_ieq(s + 1, 5, "IPv6:")) {
		if (!smtp_addr_ipv6(s + 6, len - 5))
			return 0;
	} else if (!smtp_addr_ipv4(s + 1, len)) {
		return 0;
	}
	return len + 2;
}

/* Dot-string = Atom *("." Atom): no dot first, last or doubled. */
static size_t
dot_string(const char *s, size_t n, bool utf8, bool *u8_r)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, start, k;

	for (;;) {
		start = i;
		while (i < n) {
			if (smtp_addr_atext(u[i])) {
				i++;
			} else if (utf8 && (k = smtp_addr_utf8(u + i, n - i))) {
				i += k;
				*u8_r = true;
			} else {
				break;
			}
		}
		if (i == start)
			return 0;
		if (i == n || u[i] != '.')
			return i;
		i++;
	}
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE; qtextSMTP is %d32-33 /
 * %d35-91 / %d93-126 (and UTF-8), a quoted pair is "\" and %d32-126. */
static size_t
quoted_string(const char *s, size_t n, bool utf8, bool *u8_r)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 1, k;

	if (n == 0 || u[0] != '"')
		return 0;
	while (i < n) {
		if (u[i] == '"')
			return i + 1;
		if (u[i] == '\\') {
			if (i + 1 == n || u[i + 1] < 32 || u[i + 1] > 126)
				return 0;
			i += 2;
		} else if (u[i] >= 32 && u[i] <= 126) {
			i++;
		} else if (utf8 && (k = smtp_addr_utf8(u + i, n - i))) {
			i += k;
			*u8_r = true;
		} else {
			return 0;
		}
	}
	return 0; /* no closing quote */
}

/* The contents of a quoted-string (q[0..len), quotes included) with its
 * quoted pairs resolved, into dst (len - 2 bytes suffice). */
static size_t
unquote(const char *q, size_t len, char *dst)
{
	size_t o = 0;

	for (size_t i = 1; i + 1 < len; i++) {
		if (q[i] == '\\')
			i++;
		dst[o++] = q[i];
	}
	return o;
}

/*
 * Mailbox = Local-part "@" ( Domain / address-literal ) at s, as written.
 * Returns its length (the caller checks what follows), or 0 with *why.
 */
size_t
smtp_addr_mailbox(const char *s, size_t n, bool utf8, struct smtp_mbox *m,
    enum smtp_addr_why *why)
{
	size_t i, k;

	memset(m, 0, sizeof(*m));
	*why = SMTP_AW_SYNTAX;
	m->quoted = n > 0 && s[0] == '"';
	i = m->quoted ? quoted_string(s, n, utf8, &m->utf8) :
			dot_string(s, n, utf8, &m->utf8);
	if (i == 0)
		return 0;
	if (i > SMTP_LOCAL_MAX) {
		*why = SMTP_AW_LONG;
		return 0;
	}
	m->local = (struct smtp_str){ s, i };
	if (i == n || s[i] != '@')
		return 0;
	i++;
	if (i < n && s[i] == '[') {
		k = smtp_addr_literal(s + i, n - i);
		m->literal = true;
	} else {
		k = smtp_addr_domain(s + i, n - i, utf8, &m->utf8, why);
	}
	if (k == 0)
		return 0;
	m->domain = (struct smtp_str){ s + i, k };
	return i + k;
}

/* A-d-l ":" = At-domain *( "," At-domain ) ":", At-domain = "@" Domain:
 * its length, or 0. */
static size_t
route(const char *s, size_t n, bool utf8, bool *u8_r, enum smtp_addr_why *why)
{
	size_t i = 0, k;

	*why = SMTP_AW_SYNTAX;
	for (;;) {
		if (i == n || s[i] != '@')
			return 0;
		i++;
		k = smtp_addr_domain(s + i, n - i, utf8, u8_r, why);
		if (k == 0)
			return 0;
		i += k;
		if (i < n && s[i] == ':')
			return i + 1;
		if (i == n || s[i] != ',')
			return 0;
		i++;
	}
}

/*
 * Path = "<" [ A-d-l ":" ] Mailbox ">" at s, or "<>" with NULL_OK, or
 * "<Postmaster>" with POSTMASTER, into cmd->path; *end_r is the length
 * taken. 0, or -1 with *why (nothing is said about what follows).
 */
int
smtp_addr_path(struct smtp_cmd *cmd, const char *s, size_t n, unsigned opt,
    size_t *end_r, enum smtp_addr_why *why)
{
	struct smtp_path *path = &cmd->path;
	bool utf8 = opt & SMTP_PATH_UTF8;
	struct smtp_mbox m;
	size_t i = 1, k;
	char *dec;

	*why = SMTP_AW_SYNTAX;
	if (n < 2 || s[0] != '<')
		return -1;
	if ((opt & SMTP_PATH_NULL_OK) && s[1] == '>') {
		path->null = true;
		*end_r = 2;
		return 0;
	}
	if (s[1] == '@') {
		if ((k = route(s + 1, n - 1, utf8, &path->utf8, why)) == 0)
			return -1;
		path->route = true;
		i += k;
	}
	if ((opt & SMTP_PATH_POSTMASTER) && !path->route && n - i >= 11 &&
	    smtp_cmd_ieq(s + i, 11, "postmaster>")) {
		path->postmaster = true;
		path->mailbox = path->local = (struct smtp_str){ s + i, 10 };
		path->domain = (struct smtp_str){ s + i + 10, 0 };
		*end_r = i + 11;
		return 0;
	}
	if ((k = smtp_addr_mailbox(s + i, n - i, utf8, &m, why)) == 0)
		return -1;
	if (i + k == n || s[i + k] != '>') {
		*why = SMTP_AW_SYNTAX;
		return -1;
	}
	if (i + k + 1 > SMTP_PATH_MAX) {
		*why = SMTP_AW_LONG;
		return -1;
	}
	path->mailbox = (struct smtp_str){ s + i, k };
	path->domain = m.domain;
	path->quoted = m.quoted;
	path->literal = m.literal;
	path->utf8 = path->utf8 || m.utf8;
	path->local = m.local;
	if (m.quoted) {
		/* the local part is at most 64 octets: it always fits */
		if ((dec = smtp_cmd_dec(cmd, m.local.len)) == NULL)
			return -1;
		path->local.p = dec;
		path->local.len = unquote(m.local.p, m.local.len, dec);
	}
	*end_r = i + k + 1;
	return 0;
}
