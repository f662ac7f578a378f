/*
 * mime_addr.c - RFC 5322 address lists for IMAP ENVELOPE: groups,
 * display names, routes and addr-specs read from one header value.
 *
 * A small lexer (atoms, quoted strings, domain literals, specials) walks
 * the value once; comments are skipped but remembered, so an address
 * without a phrase can still show its comment as the name. Obsolete and
 * broken syntax degrades to an address IMAP can still print rather than
 * to an error.
 *
 * Relies on: the value staying mapped while the iterator is used. Must
 * never: write into the value, read outside it, or allocate; names are
 * built only in the caller's scratch buffer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/mime.h"
#include "proto/mime_private.h"

/* addresses */
struct lex {
	int type; /* 'a' atom, 'q' quoted, 'd' domain literal, 0 end, or the
		     special character itself */
	size_t start, end;
};
static struct lex lex_next(struct mime_addr_iter *it);
static size_t normalize_phrase(const char *s, size_t start, size_t end,
    char *out, size_t cap);
static void addr_spec(struct mime_addr_iter *it, struct mime_address *a,
    int stop);

/* Bytes that end an atom: specials, white space, and NUL (the strchr()
 * this replaces matched its terminator). A table: it runs per byte. */
static const bool atom_stop[256] = {
	['('] = true,
	[')'] = true,
	['<'] = true,
	['>'] = true,
	['@'] = true,
	[','] = true,
	[';'] = true,
	[':'] = true,
	['\\'] = true,
	['"'] = true,
	['.'] = true,
	['['] = true,
	[']'] = true,
	[' '] = true,
	['\t'] = true,
	['\r'] = true,
	['\n'] = true,
	['\0'] = true,
};

/*
 * Address lexer over a header value: atoms (anything but specials and
 * white space, 8-bit included), quoted strings, domain literals and single
 * specials. Comments are skipped and remembered for the name fallback.
 */
static struct lex
lex_next(struct mime_addr_iter *it)
{
	struct lex t = { 0, 0, 0 };
	const char *s = it->s;
	size_t pos = mime_skip_cfws(s, it->pos, it->len, &it->cstart,
	    &it->cend);

	t.start = pos;
	if (pos >= it->len) {
		it->pos = t.end = it->len;
		return t;
	}
	if (s[pos] == '"') {
		t.type = 'q';
		pos = mime_quoted_end(s, pos, it->len);
	} else if (s[pos] == '[') {
		t.type = 'd';
		while (pos < it->len && s[pos] != ']')
			pos += s[pos] == '\\' ? 2 : 1;
		pos = pos < it->len ? pos + 1 : it->len;
	} else if (strchr("<>@,;:.)", s[pos]) != NULL) {
		t.type = (unsigned char)s[pos];
		pos++;
	} else {
		t.type = 'a';
		while (pos < it->len && !atom_stop[(unsigned char)s[pos]])
			pos++;
		if (pos == t.start)
			pos++; /* a lone '\\' or ']': an atom of its own */
	}
	it->pos = t.end = pos;
	return t;
}

/* A phrase for display: quotes and comments removed, runs of white space
 * (folds included) collapsed to one space, trimmed. */
static size_t
normalize_phrase(const char *s, size_t start, size_t end, char *out, size_t cap)
{
	size_t n = 0, pos = start;
	bool space = false;

	while (pos < end) {
		char c = s[pos];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '(') {
			if (c == '(')
				pos = mime_skip_cfws(s, pos, end, NULL, NULL);
			else
				pos++;
			space = n > 0;
			continue;
		}
		if (space && n < cap)
			out[n++] = ' ';
		space = false;
		if (c == '"') {
			size_t q = mime_quoted_end(s, pos, end);

			n += mime_unquote(s + pos, q - pos, out + n, cap - n);
			pos = q;
			continue;
		}
		if (n < cap)
			out[n++] = c;
		pos++;
	}
	return n;
}

void
mime_addr_init(struct mime_addr_iter *it, const char *value, size_t len)
{
	memset(it, 0, sizeof(*it));
	it->s = value;
	it->len = value != NULL ? len : 0;
}

/*
 * local-part "@" domain, each a run of words, dots and domain literals,
 * ending at `stop`, ',' , ';' or the end. The stopping token is consumed
 * unless it is ';' or ',' (left for the caller) and ends the spec.
 */
static void
addr_spec(struct mime_addr_iter *it, struct mime_address *a, int stop)
{
	size_t l0 = 0, l1 = 0, d0 = 0, d1 = 0, save;
	bool at = false, have_l = false, have_d = false;
	struct lex t;

	for (;;) {
		save = it->pos;
		t = lex_next(it);
		if (t.type == 'a' || t.type == 'q' || t.type == 'd' ||
		    t.type == '.') {
			if (!at) {
				l0 = have_l ? l0 : t.start;
				l1 = t.end;
				have_l = true;
			} else {
				d0 = have_d ? d0 : t.start;
				d1 = t.end;
				have_d = true;
			}
			continue;
		}
		if (t.type == '@' && !at) {
			at = true;
			continue;
		}
		if (t.type == 0 || t.type == ',' || t.type == ';' ||
		    t.type == stop) {
			if (t.type == ',' || t.type == ';')
				it->pos = save;
			break;
		}
		/* anything else (a stray '<', ':' or '@'): ignore it */
	}
	a->mailbox.ptr = have_l ? it->s + l0 : "MISSING_MAILBOX";
	a->mailbox.len = have_l ? l1 - l0 : 15;
	a->host.ptr = have_d ? it->s + d0 : "MISSING_DOMAIN";
	a->host.len = have_d ? d1 - d0 : 14;
}

bool
mime_addr_next(struct mime_addr_iter *it, struct mime_address *a, char *scratch,
    size_t scratch_cap)
{
	for (;;) {
		size_t p0, p1, save = it->pos;
		struct lex t;
		bool words = false;

		memset(a, 0, sizeof(*a));
		it->cstart = it->cend = 0;
		t = lex_next(it);
		if (t.type == ',')
			continue;
		if (t.type == 0 || (t.type == ';' && it->in_group)) {
			if (!it->in_group)
				return false;
			it->in_group = false; /* also closes an open group */
			a->kind = MIME_ADDR_GROUP_END;
			return true;
		}
		/* a phrase (or a local part) up to what tells them apart */
		p0 = p1 = t.start;
		while (t.type == 'a' || t.type == 'q' || t.type == '.' ||
		    t.type == 'd') {
			words = true;
			p1 = t.end;
			save = it->pos;
			t = lex_next(it);
		}
		if (t.type == ':' && !it->in_group && words) {
			it->in_group = true;
			a->kind = MIME_ADDR_GROUP_START;
			a->mailbox.ptr = scratch;
			a->mailbox.len = normalize_phrase(it->s, p0, p1,
			    scratch, scratch_cap);
			return true;
		}
		if (t.type == '<') {
			a->kind = MIME_ADDR_MAILBOX;
			if (words) {
				a->name.ptr = scratch;
				a->name.len = normalize_phrase(it->s, p0, p1,
				    scratch, scratch_cap);
			}
			/* obs-route: "@a,@b:" before the addr-spec */
			save = it->pos;
			t = lex_next(it);
			if (t.type == '@') {
				size_t r0 = t.start;

				while (t.type != ':' && t.type != '>' &&
				    t.type != 0)
					t = lex_next(it);
				if (t.type == ':') {
					a->adl.ptr = it->s + r0;
					a->adl.len = t.start - r0;
				} else {
					it->pos = save;
				}
			} else {
				it->pos = save;
			}
			addr_spec(it, a, '>');
			/* skip to the next address, keeping ';' for the group
			 */
			for (;;) {
				save = it->pos;
				t = lex_next(it);
				if (t.type == 0 || t.type == ',')
					break;
				if (t.type == ';') {
					it->pos = save;
					break;
				}
			}
			return true;
		}
		/* a stray special, or ';' outside a group: noise */
		if (!words && t.type != '@')
			continue;
		/* a bare addr-spec: reread it as one */
		it->pos = p0;
		a->kind = MIME_ADDR_MAILBOX;
		addr_spec(it, a, 0);
		if (it->cend > it->cstart) {
			/* old style "user@host (Real Name)" */
			a->name.ptr = scratch;
			a->name.len = normalize_phrase(it->s, it->cstart,
			    it->cend, scratch, scratch_cap);
		}
		return true;
	}
}
