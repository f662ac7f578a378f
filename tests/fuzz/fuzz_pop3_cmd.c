/*
 * fuzz_pop3_cmd.c - libFuzzer target for the POP3 command line parser
 * (proto/pop3_cmd.c).
 *
 * The input is cut into lines at LF (one CR before it dropped, as a line
 * reader would); each is parsed from an exactly-sized copy, so a read
 * past the line is an ASan report. Properties checked, not just crashes:
 * an error text exactly when refused; slices inside the line; the verb
 * decided by the first word alone; no NUL, CR or LF in anything accepted;
 * arguments within 255 octets (AUTH's response excepted); message
 * numbers within 1..2^31-1; and an accepted command written back in its
 * plain form parses to the same fields. The line reader (pop3_line_next)
 * gets the same input whole and in pieces of 1, 2 and 7 bytes with a
 * small limit: the same events and lines come out, every line is within
 * the limit and holds no LF. A broken property aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pop3_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
in_line(const struct pop3_str *s, const char *line, size_t len)
{
	if (s->p == NULL) {
		if (s->len != 0)
			abort();
		return;
	}
	if (s->p < line || s->p + s->len > line + len)
		abort();
}

static enum pop3_cmd_rc
parse_exact(struct pop3_cmd *c, const char *line, size_t len, char **copy_r)
{
	char *copy = malloc(len ? len : 1);
	enum pop3_cmd_rc rc;

	if (copy == NULL)
		abort();
	memcpy(copy, line, len);
	rc = pop3_cmd_parse(c, copy, len);
	if ((rc == POP3_CMD_OK) != (c->error == NULL))
		abort();
	in_line(&c->arg, copy, len);
	in_line(&c->arg2, copy, len);
	*copy_r = copy;
	return rc;
}

/* The accepted command in its plain form reads the same. */
static void
written_back(const struct pop3_cmd *c)
{
	struct pop3_cmd b;
	char line[4096], *copy;
	int n;

	switch (c->verb) {
	case POP3_RETR:
	case POP3_DELE:
		n = snprintf(line, sizeof(line), "%s %u",
		    pop3_verb_name(c->verb), c->msg);
		break;
	case POP3_LIST:
	case POP3_UIDL:
		n = c->has_msg ?
		    snprintf(line, sizeof(line), "%s %u",
			pop3_verb_name(c->verb), c->msg) :
		    snprintf(line, sizeof(line), "%s", pop3_verb_name(c->verb));
		break;
	case POP3_TOP:
		n = snprintf(line, sizeof(line), "TOP %u %u", c->msg, c->lines);
		break;
	case POP3_USER:
	case POP3_PASS:
		n = snprintf(line, sizeof(line), "%s %.*s",
		    pop3_verb_name(c->verb), (int)c->arg.len, c->arg.p);
		break;
	default:
		return;
	}
	if (parse_exact(&b, line, (size_t)n, &copy) != POP3_CMD_OK ||
	    b.verb != c->verb || b.msg != c->msg || b.lines != c->lines ||
	    b.has_msg != c->has_msg || b.arg.len != c->arg.len ||
	    (b.arg.len && memcmp(b.arg.p, c->arg.p, b.arg.len) != 0))
		abort();
	free(copy);
}

static void
check_ok(const struct pop3_cmd *c, const char *line, size_t len)
{
	if (c->verb == POP3_UNKNOWN || memchr(line, '\0', len) ||
	    memchr(line, '\r', len) || memchr(line, '\n', len))
		abort();
	if (c->arg.len > POP3_ARG_MAX ||
	    (c->verb != POP3_AUTH && c->arg2.len > POP3_ARG_MAX))
		abort();
	switch (c->verb) {
	case POP3_RETR:
	case POP3_DELE:
	case POP3_TOP:
		if (!c->has_msg)
			abort();
		/* fall through */
	case POP3_LIST:
	case POP3_UIDL:
		if (c->has_msg && (c->msg == 0 || c->msg > POP3_NUM_MAX))
			abort();
		if (c->lines > POP3_NUM_MAX)
			abort();
		break;
	case POP3_PASS:
	case POP3_USER:
		if (c->arg.len == 0)
			abort();
		break;
	case POP3_AUTH:
		if (c->arg.p != NULL &&
		    (strlen(c->mech) != c->arg.len ||
			c->arg.len > POP3_MECH_MAX))
			abort();
		break;
	default:
		break;
	}
	written_back(c);
}

static void
one_line(const char *line, size_t len)
{
	struct pop3_cmd c, first;
	enum pop3_cmd_rc rc;
	char *copy, *copy2;
	size_t w = 0;

	rc = parse_exact(&c, line, len, &copy);
	if (rc == POP3_CMD_OK)
		check_ok(&c, copy, len);
	while (w < len && (unsigned char)line[w] > 0x20 && line[w] != 0x7f)
		w++;
	parse_exact(&first, line, w, &copy2);
	if (first.verb != c.verb)
		abort();
	free(copy2);
	free(copy);
}

/* The reader's events over p[0..n) fed in pieces of `piece` bytes, as
 * a transcript: one letter per event, an OK line's bytes after its 'L'. */
static size_t
read_lines(const char *p, size_t n, size_t piece, char *log, size_t cap)
{
	enum { MAX = 16 };
	struct pop3_line lr = { 0 };
	char *in = malloc(n + 1);
	size_t have = 0, fed = 0, k = 0;

	if (in == NULL)
		abort();
	while (fed < n) {
		size_t add = n - fed < piece ? n - fed : piece;

		memcpy(in + have, p + fed, add);
		have += add;
		fed += add;
		for (;;) {
			size_t used = 0, len = 0;
			enum pop3_line_ev ev;

			ev = pop3_line_next(&lr, in, have, MAX, &used, &len);
			if (used > have || len > used)
				abort();
			if (ev == POP3_LINE_OK) {
				if (len > MAX || memchr(in, '\n', len) ||
				    used != len + 2 || k + len + 1 > cap)
					abort();
				log[k++] = 'L';
				memcpy(log + k, in, len);
				k += len;
			} else if (ev != POP3_LINE_MORE) {
				if (k + 1 > cap)
					abort();
				log[k++] = ev == POP3_LINE_LONG ? 'T' : 'B';
			}
			memmove(in, in + used, have - used);
			have -= used;
			if (ev == POP3_LINE_MORE && used == 0)
				break;
		}
	}
	free(in);
	return k;
}

static void
line_reader(const char *p, size_t n)
{
	static const size_t pieces[] = { 1, 2, 7 };
	size_t cap = 2 * n + 16, k, k2;
	char *whole = malloc(cap), *split = malloc(cap);

	if (whole == NULL || split == NULL)
		abort();
	k = read_lines(p, n, n ? n : 1, whole, cap);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		k2 = read_lines(p, n, pieces[i], split, cap);
		if (k2 != k || memcmp(whole, split, k) != 0)
			abort();
	}
	free(whole);
	free(split);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *lf;
	size_t n = size, len;

	line_reader(p, n);
	while (n > 0) {
		lf = memchr(p, '\n', n);
		len = lf ? (size_t)(lf - p) : n;
		one_line(p, len > 0 && p[len - 1] == '\r' ? len - 1 : len);
		if (lf == NULL)
			break;
		n -= len + 1;
		p += len + 1;
	}
	return 0;
}
