/*
 * imap_parse.c - incremental, bounded IMAP command tokenizer.
 *
 * Bytes are copied into the caller's command storage until a line ends;
 * each complete line (a "segment": the command up to a literal
 * announcement, or the text after a literal) is then tokenized at once into
 * the flat argument tree. Because tokenizing only ever sees whole segments,
 * feeding one byte at a time gives exactly the result of feeding the whole
 * command, and the tokenizer's only state across segments is the list
 * stack. Literal data is either appended to the storage (small literals,
 * charged against max_command) or handed straight back to the caller as
 * DATA slices (APPEND bodies), so the storage never holds a big message.
 *
 * Relies on: the storage never moving while a command is parsed (argument
 * slices point into it). Must never: read past what was fed, write past
 * the storage or argument array, or accept a non-synchronizing literal on
 * a line it is discarding (its data would be parsed as commands).
 */
#include <stdio.h>
#include <string.h>

#include "proto/imap_parse.h"

enum state {
	ST_LINE,   /* reading a line into the storage */
	ST_INLINE, /* copying literal data into the storage */
	ST_STREAM, /* handing literal data to the caller */
	ST_SKIP,   /* discarding to the end of a bad line */
	ST_FATAL,
};

enum stage {
	STAGE_TAG,
	STAGE_NAME,
	STAGE_ARGS,
};

enum tok {
	TOK_DONE,    /* the command is complete */
	TOK_LITERAL, /* the segment ended in a literal announcement */
	TOK_EMPTY,   /* an empty line before any command: ignored */
	TOK_ERROR,
};

/* Internal result of the line reader: keep going in the feed loop. */
#define CONTINUE (-1)

/* The smallest storage that can hold a useful command. */
#define MIN_STORAGE 64

/* state machine */
static void reset_command(struct imap_parser *p);
static int read_line(struct imap_parser *p, const char *data, size_t len,
    size_t *i);
static int end_of_line(struct imap_parser *p);
static int start_literal(struct imap_parser *p);
static int skip_line(struct imap_parser *p, const char *data, size_t len,
    size_t *i);
static int fail(struct imap_parser *p, enum imap_parse_error code,
    const char *text);
static int fail_for_good(struct imap_parser *p, enum imap_parse_error code,
    const char *text);
static void failed_line(struct imap_parser *p);
static void enter_skip(struct imap_parser *p);
static bool big_start(const struct imap_parser *p, const char *s, size_t n);
static size_t line_max(const struct imap_parser *p);
static size_t command_max(const struct imap_parser *p);
static int sniff(int st, unsigned char c);
static void find_tag(struct imap_parser *p);

/* tokenizer */
static enum tok tokenize(struct imap_parser *p, size_t pos, size_t eol);
static enum tok tok_args(struct imap_parser *p, size_t pos, size_t eol);
static enum tok tok_error(struct imap_parser *p, enum imap_parse_error code,
    const char *text);
static struct imap_arg *add_arg(struct imap_parser *p, enum imap_arg_type t);
static size_t scan_quoted(struct imap_parser *p, size_t pos, size_t eol);
static size_t scan_atom(struct imap_parser *p, size_t pos, size_t eol);
static size_t scan_section(struct imap_parser *p, size_t pos, size_t eol);
static enum tok scan_literal(struct imap_parser *p, size_t pos, size_t eol);
static bool section_prefix(const char *s, size_t len);

/* character classes */
static bool is_atom_char(unsigned char c);
static bool is_tag_char(unsigned char c);
static bool is_name_char(unsigned char c);
static unsigned char ascii_upper(unsigned char c);
static bool ascii_eq(const char *a, size_t alen, const char *word);
static size_t utf8_seq(const unsigned char *s, size_t n);

/* writers */
static int write_quoted(imap_write_fn *w, void *ctx, const char *s, size_t len);
static int write_literal(imap_write_fn *w, void *ctx, const char *s,
    size_t len);
static bool quotable(const char *s, size_t len, unsigned flags);

static void
apply_limits(struct imap_parser *p, const struct imap_limits *lim,
    size_t bufsize, unsigned nargv)
{
	p->lim = *lim;
	if (p->lim.max_command == 0 || p->lim.max_command > bufsize)
		p->lim.max_command = bufsize;
	if (p->lim.max_line == 0 || p->lim.max_line > p->lim.max_command)
		p->lim.max_line = p->lim.max_command;
	if (p->lim.max_args == 0 || p->lim.max_args > nargv)
		p->lim.max_args = nargv;
	if (p->lim.max_depth == 0 || p->lim.max_depth > IMAP_PARSE_MAX_DEPTH)
		p->lim.max_depth = IMAP_PARSE_MAX_DEPTH;
	if (p->lim.max_nonsync == 0 || p->lim.max_nonsync > p->lim.max_literal)
		p->lim.max_nonsync = p->lim.max_literal;
	if (p->lim.max_inline_literal > p->lim.max_command)
		p->lim.max_inline_literal = p->lim.max_command;
	if (p->lim.big_name != NULL) {
		if (p->lim.big_command > bufsize)
			p->lim.big_command = bufsize;
		if (p->lim.big_command < p->lim.max_command)
			p->lim.big_command = p->lim.max_command;
		if (p->lim.big_line == 0 ||
		    p->lim.big_line > p->lim.big_command)
			p->lim.big_line = p->lim.big_command;
		if (p->lim.big_line < p->lim.max_line)
			p->lim.big_line = p->lim.max_line;
	}
}

/* The budgets of the command being read. */
static size_t
line_max(const struct imap_parser *p)
{
	return p->big ? p->lim.big_line : p->lim.max_line;
}

static size_t
command_max(const struct imap_parser *p)
{
	return p->big ? p->lim.big_command : p->lim.max_command;
}

/*
 * Whether the command in the storage, continued by s[0..n), starts with
 * "<tag> <big_name>" and a space or the end of the line. Only the first
 * bytes matter: a tag longer than that is not worth a larger budget.
 */
static bool
big_start(const struct imap_parser *p, const char *s, size_t n)
{
	char head[160];
	size_t len = 0, k = 0, used = p->used, window = sizeof(head);
	const char *name = p->lim.big_name;

	if (name == NULL)
		return false;
	/* Only the first max_line + 1 bytes decide: that many are always
	 * there when the small budget runs out, however the bytes arrived,
	 * so the answer never depends on the split (a tag so long that the
	 * name falls outside is an ordinary over-long line). */
	if (p->lim.max_line + 1 < window)
		window = p->lim.max_line + 1;
	if (used > window)
		used = window;
	memcpy(head, p->buf, used);
	len = used;
	if (n > window - len)
		n = window - len;
	memcpy(head + len, s, n);
	len += n;
	while (k < len && is_tag_char((unsigned char)head[k]))
		k++;
	if (k == 0 || k == len || head[k++] != ' ')
		return false;
	for (; *name != '\0'; name++, k++)
		if (k == len ||
		    ascii_upper((unsigned char)head[k]) != (unsigned char)*name)
			return false;
	return k < len &&
	    (head[k] == ' ' || head[k] == '\r' || head[k] == '\n');
}

/* Point p at the caller's storage and derive the limits from it. */
static int
set_storage(struct imap_parser *p, const struct imap_limits *lim, char *buf,
    size_t bufsize, struct imap_arg *argv, unsigned nargv)
{
	if (buf == NULL || bufsize < MIN_STORAGE || argv == NULL || nargv == 0)
		return -1;
	p->buf = buf;
	p->cap = bufsize;
	p->argv = argv;
	p->argv_cap = nargv;
	apply_limits(p, lim, bufsize, nargv);
	reset_command(p);
	return 0;
}

int
imap_parse_init(struct imap_parser *p, const struct imap_limits *lim, char *buf,
    size_t bufsize, struct imap_arg *argv, unsigned nargv)
{
	memset(p, 0, sizeof(*p));
	p->state = ST_LINE;
	return set_storage(p, lim, buf, bufsize, argv, nargv);
}

int
imap_parse_set_limits(struct imap_parser *p, const struct imap_limits *lim,
    char *buf, size_t bufsize, struct imap_arg *argv, unsigned nargv)
{
	if (!imap_parse_idle(p))
		return -1;
	return set_storage(p, lim, buf, bufsize, argv, nargv);
}

bool
imap_parse_idle(const struct imap_parser *p)
{
	return p->state == ST_LINE && (p->reset_pending || p->used == 0);
}

void
imap_parse_want_line(struct imap_parser *p)
{
	p->line_mode = true;
}

int
imap_parse_refuse(struct imap_parser *p)
{
	if (p->state == ST_FATAL || !p->lit.sync || !p->lit_pending)
		return -1;
	/* The client sends nothing more for this command. */
	p->lit_pending = false;
	p->state = ST_LINE;
	p->reset_pending = true;
	return 0;
}

enum imap_parse_status
imap_parse_feed(struct imap_parser *p, const char *data, size_t len,
    size_t *used_r)
{
	size_t i = 0, n;
	int st;

	*used_r = 0;
	if (p->state == ST_FATAL)
		return IMAP_PARSE_FATAL;
	if (p->reset_pending)
		reset_command(p);
	p->lit_pending = false;
	for (;;) {
		switch (p->state) {
		case ST_STREAM:
			if (i == len) {
				*used_r = i;
				return IMAP_PARSE_AGAIN;
			}
			n = len - i < p->lit_left ? len - i : p->lit_left;
			p->data = data + i;
			p->data_len = n;
			p->lit_left -= n;
			if (p->lit_left == 0) {
				p->state = ST_LINE;
				p->seg = p->used;
			}
			*used_r = i + n;
			return IMAP_PARSE_DATA;
		case ST_INLINE:
			if (i == len) {
				*used_r = i;
				return IMAP_PARSE_AGAIN;
			}
			n = len - i < p->lit_left ? len - i : p->lit_left;
			memcpy(p->buf + p->used, data + i, n);
			p->used += n;
			p->lit_left -= n;
			i += n;
			if (p->lit_left == 0) {
				p->state = ST_LINE;
				p->seg = p->used;
			}
			break;
		case ST_SKIP:
			st = skip_line(p, data, len, &i);
			if (st != CONTINUE) {
				*used_r = i;
				return st;
			}
			break;
		case ST_LINE:
			st = read_line(p, data, len, &i);
			if (st != CONTINUE) {
				*used_r = i;
				return st;
			}
			break;
		default:
			return IMAP_PARSE_FATAL;
		}
	}
}

static void
reset_command(struct imap_parser *p)
{
	memset(&p->cmd, 0, sizeof(p->cmd));
	memset(&p->lit, 0, sizeof(p->lit));
	p->error = NULL;
	p->code = IMAP_ERR_NONE;
	p->data = NULL;
	p->data_len = 0;
	p->reset_pending = false;
	p->lit_pending = false;
	p->big = false;
	p->need_sep = false;
	p->just_opened = false;
	p->stage = STAGE_TAG;
	p->used = 0;
	p->seg = 0;
	p->lit_left = 0;
	p->depth = 0;
	p->nstreams = 0;
	p->last[0] = 0;
}

/*
 * Copy input up to and including the next LF, then tokenize the line.
 * Limits are checked before copying, so the storage never overflows: the
 * line budget and the command budget are compared by subtraction.
 */
static int
read_line(struct imap_parser *p, const char *data, size_t len, size_t *i)
{
	static const char nul_text[] = "NUL byte in command";

	while (*i < len) {
		const char *s = data + *i;
		const char *lf = memchr(s, '\n', len - *i);
		size_t n = lf != NULL ? (size_t)(lf - s) + 1 : len - *i;
		const char *nul = memchr(s, '\0', n);
		size_t room_line = line_max(p) - (p->used - p->seg);
		size_t room_cmd = command_max(p) - p->used;
		const char *why = NULL;
		size_t keep = n;
		int st;

		if (nul != NULL) {
			why = nul_text;
			keep = (size_t)(nul - s);
		}
		if ((keep > room_line || keep > room_cmd) && !p->big &&
		    big_start(p, s, keep)) {
			p->big = true; /* again, with the big budgets */
			continue;
		}
		if (keep > room_line) {
			why = "Line too long";
			keep = room_line;
		}
		if (keep > room_cmd) {
			why = "Command too long";
			keep = room_cmd;
		}
		if (why != NULL) {
			/* Keep what fits (no LF in it): the tag for the BAD,
			 * and the start of a literal announcement to sniff. */
			memcpy(p->buf + p->used, s, keep);
			p->used += keep;
			*i += keep;
			enter_skip(p);
			return fail(p,
			    why == nul_text ? IMAP_ERR_SYNTAX :
					      IMAP_ERR_TOOLONG,
			    why);
		}
		memcpy(p->buf + p->used, s, n);
		p->used += n;
		*i += n;
		if (lf == NULL)
			break;
		st = end_of_line(p);
		if (st != CONTINUE)
			return st;
		if (p->state != ST_LINE)
			return CONTINUE;
	}
	return IMAP_PARSE_AGAIN;
}

static int
end_of_line(struct imap_parser *p)
{
	size_t eol = p->used - 1;

	if (eol > p->seg && p->buf[eol - 1] == '\r')
		eol--;
	if (p->line_mode) {
		p->line_mode = false;
		p->cmd.line = p->buf + p->seg;
		p->cmd.line_len = eol - p->seg;
		p->reset_pending = true;
		return IMAP_PARSE_OK;
	}
	switch (tokenize(p, p->seg, eol)) {
	case TOK_EMPTY:
		reset_command(p);
		return CONTINUE;
	case TOK_DONE:
		p->cmd.args = p->cmd.nargs > 0 ? p->argv : NULL;
		p->reset_pending = true;
		return IMAP_PARSE_OK;
	case TOK_LITERAL:
		return start_literal(p);
	case TOK_ERROR:
	default:
		break;
	}
	/*
	 * A bad line that still announces {n+} would have its literal data
	 * read as commands: the connection cannot be saved.
	 */
	int st = 0;
	for (size_t k = p->seg; k < eol; k++)
		st = sniff(st, (unsigned char)p->buf[k]);
	p->reset_pending = true;
	if (st == 5)
		return fail_for_good(p, p->code, p->error);
	return fail(p, p->code, p->error);
}

/* Decide where the literal just announced goes, within the limits. */
static int
start_literal(struct imap_parser *p)
{
	struct imap_arg *a = &p->argv[p->cmd.nargs - 1];
	uint64_t size = p->lit.size;
	bool sync = p->lit.sync;

	if (size > p->lim.max_literal || (!sync && size > p->lim.max_nonsync)) {
		if (!sync)
			return fail_for_good(p, IMAP_ERR_TOOBIG,
			    "Literal too large");
		p->reset_pending = true;
		return fail(p, IMAP_ERR_TOOBIG, "Literal too large");
	}
	if (size <= p->lim.max_inline_literal) {
		if (size > command_max(p) - p->used && !p->big &&
		    big_start(p, "", 0))
			p->big = true;
		if (size > command_max(p) - p->used) {
			if (!sync)
				return fail_for_good(p, IMAP_ERR_TOOLONG,
				    "Command too long");
			p->reset_pending = true;
			return fail(p, IMAP_ERR_TOOLONG, "Command too long");
		}
		a->ptr = p->buf + p->used;
		a->len = (size_t)size;
		p->state = ST_INLINE;
	} else {
		if (p->nstreams == IMAP_PARSE_MAX_STREAMS) {
			if (!sync)
				return fail_for_good(p, IMAP_ERR_TOOLONG,
				    "Too many literals");
			p->reset_pending = true;
			return fail(p, IMAP_ERR_TOOLONG, "Too many literals");
		}
		a->ptr = NULL;
		a->len = (size_t)size;
		a->flags |= IMAP_ARGF_STREAMED;
		a->stream = (uint16_t)p->nstreams;
		p->lit.stream = p->nstreams++;
		p->lit.streamed = true;
		p->state = ST_STREAM;
	}
	p->lit_left = (size_t)size;
	p->seg = p->used;
	if (p->lit_left == 0)
		p->state = ST_LINE;
	if (sync || p->lit.streamed) {
		p->lit_pending = sync;
		return IMAP_PARSE_LITERAL;
	}
	return CONTINUE;
}

/*
 * Discard to LF. The sniffer watches for a literal announcement at the end
 * of the discarded line; a synchronizing one is harmless (the client waits
 * for a "+" that never comes and takes our BAD as the end of it).
 */
static int
skip_line(struct imap_parser *p, const char *data, size_t len, size_t *i)
{
	for (; *i < len; (*i)++) {
		unsigned char c = (unsigned char)data[*i];

		if (c != '\n') {
			p->skip_st = sniff(p->skip_st, c);
			continue;
		}
		(*i)++;
		if (p->skip_st == 5)
			return fail_for_good(p, IMAP_ERR_SYNTAX,
			    "Non-synchronizing literal after a bad command");
		p->skip_st = 0;
		p->state = ST_LINE;
		reset_command(p);
		return CONTINUE;
	}
	return IMAP_PARSE_AGAIN;
}

/*
 * Recognise "{digits}" (4) or "{digits+}" (5) at the end of a line; CR is
 * transparent after the brace. 1 = after '{', 2 = digits, 3 = after '+'.
 */
static int
sniff(int st, unsigned char c)
{
	if (c == '{')
		return 1;
	if ((st == 1 || st == 2) && c >= '0' && c <= '9')
		return 2;
	if (st == 2 && c == '+')
		return 3;
	if (st == 2 && c == '}')
		return 4;
	if (st == 3 && c == '}')
		return 5;
	if ((st == 4 || st == 5) && c == '\r')
		return st;
	return 0;
}

static void
enter_skip(struct imap_parser *p)
{
	p->skip_st = 0;
	for (size_t k = p->seg; k < p->used; k++)
		p->skip_st = sniff(p->skip_st, (unsigned char)p->buf[k]);
	p->state = ST_SKIP;
	p->reset_pending = true;
}

static int
fail(struct imap_parser *p, enum imap_parse_error code, const char *text)
{
	p->code = code;
	p->error = text;
	failed_line(p);
	return IMAP_PARSE_INVALID;
}

/* Named apart from core's fatal(): this ends a connection, not the
 * process. */
static int
fail_for_good(struct imap_parser *p, enum imap_parse_error code,
    const char *text)
{
	p->code = code;
	p->error = text;
	failed_line(p);
	p->state = ST_FATAL;
	return IMAP_PARSE_FATAL;
}

/* A raw line that failed (too long) is not the line asked for: line mode
 * ends with it, so the next line is a command again, and its text holds
 * no tag. Any other line gets its tag for the BAD answer. */
static void
failed_line(struct imap_parser *p)
{
	if (p->line_mode) {
		p->line_mode = false;
		p->cmd.tag = NULL;
		p->cmd.tag_len = 0;
		return;
	}
	find_tag(p);
}

/* A BAD answer should carry the tag even when the line never completed. */
static void
find_tag(struct imap_parser *p)
{
	size_t k = 0;

	if (p->cmd.tag != NULL)
		return;
	while (k < p->used && is_tag_char((unsigned char)p->buf[k]))
		k++;
	if (k > 0 && k < p->used && p->buf[k] == ' ') {
		p->cmd.tag = p->buf;
		p->cmd.tag_len = k;
	}
}

/* Tokenize buf[pos..eol): the line without its CRLF. */
static enum tok
tokenize(struct imap_parser *p, size_t pos, size_t eol)
{
	char *b = p->buf;
	size_t q;

	if (p->stage == STAGE_TAG) {
		if (pos == eol)
			return TOK_EMPTY;
		for (q = pos; q < eol && is_tag_char((unsigned char)b[q]); q++)
			;
		if (q == pos)
			return tok_error(p, IMAP_ERR_SYNTAX, "Invalid tag");
		p->cmd.tag = b + pos;
		p->cmd.tag_len = q - pos;
		if (q == eol)
			return tok_error(p, IMAP_ERR_SYNTAX,
			    "Missing space after tag");
		if (b[q] != ' ') {
			p->cmd.tag = NULL;
			return tok_error(p, IMAP_ERR_SYNTAX,
			    "Invalid character in tag");
		}
		pos = q + 1;
		p->stage = STAGE_NAME;
	}
	if (p->stage == STAGE_NAME) {
		for (;;) {
			for (q = pos;
			     q < eol && is_name_char((unsigned char)b[q]); q++)
				b[q] = (char)ascii_upper((unsigned char)b[q]);
			if (q == pos)
				return tok_error(p, IMAP_ERR_SYNTAX,
				    q == eol ? "Missing command" :
					       "Invalid command name");
			if (p->cmd.uid || q - pos != 3 ||
			    memcmp(b + pos, "UID", 3) != 0)
				break;
			p->cmd.uid = true;
			if (q == eol || b[q] != ' ')
				return tok_error(p, IMAP_ERR_SYNTAX,
				    "Missing command after UID");
			pos = q + 1;
		}
		p->cmd.name = b + pos;
		p->cmd.name_len = q - pos;
		if (q == eol)
			return TOK_DONE;
		if (b[q] != ' ')
			return tok_error(p, IMAP_ERR_SYNTAX,
			    "Invalid command name");
		pos = q + 1;
		p->stage = STAGE_ARGS;
		p->need_sep = false;
		p->just_opened = false;
	}
	return tok_args(p, pos, eol);
}

/*
 * The argument grammar: tokens separated by exactly one SP, lists in
 * parentheses. need_sep is true right after a token or ')'; just_opened
 * right after '(' (so "()" is the only place ')' may follow no token).
 */
static enum tok
tok_args(struct imap_parser *p, size_t pos, size_t eol)
{
	char *b = p->buf;

	while (pos < eol) {
		unsigned char c = (unsigned char)b[pos];
		struct imap_arg *a;
		size_t q;

		if (p->need_sep) {
			if (c == ' ') {
				p->need_sep = false;
				pos++;
				continue;
			}
			if (c == ')') {
				if (p->depth == 0)
					return tok_error(p, IMAP_ERR_SYNTAX,
					    "Unbalanced parenthesis");
				p->depth--;
				pos++;
				continue;
			}
			return tok_error(p, IMAP_ERR_SYNTAX,
			    c == '(' || c == '"' || c == '{' ?
				"Missing space between arguments" :
				"Invalid character in argument");
		}
		if (c == ')') {
			if (p->depth == 0)
				return tok_error(p, IMAP_ERR_SYNTAX,
				    "Unbalanced parenthesis");
			if (!p->just_opened)
				return tok_error(p, IMAP_ERR_SYNTAX,
				    "Unexpected space");
			p->depth--;
			p->just_opened = false;
			p->need_sep = true;
			pos++;
			continue;
		}
		if (c == ' ')
			return tok_error(p, IMAP_ERR_SYNTAX,
			    "Unexpected space");
		p->just_opened = false;
		if (c == '(') {
			if (p->depth >= p->lim.max_depth)
				return tok_error(p, IMAP_ERR_SYNTAX,
				    "Too deeply nested lists");
			if ((a = add_arg(p, IMAP_ARG_LIST)) == NULL)
				return TOK_ERROR;
			p->open[p->depth++] = p->cmd.nargs - 1;
			p->last[p->depth] = 0;
			p->just_opened = true;
			pos++;
			continue;
		}
		if (c == '{' ||
		    (c == '~' && pos + 1 < eol && b[pos + 1] == '{'))
			return scan_literal(p, pos, eol);
		if (c == '"') {
			q = scan_quoted(p, pos, eol);
			if (q == 0)
				return TOK_ERROR;
		} else {
			q = scan_atom(p, pos, eol);
			if (q == 0)
				return TOK_ERROR;
		}
		pos = q;
		p->need_sep = true;
	}
	if (p->depth > 0)
		return tok_error(p, IMAP_ERR_SYNTAX, "Unbalanced parenthesis");
	if (!p->need_sep)
		return tok_error(p, IMAP_ERR_SYNTAX,
		    "Unexpected space at end of line");
	return TOK_DONE;
}

static enum tok
tok_error(struct imap_parser *p, enum imap_parse_error code, const char *text)
{
	p->code = code;
	p->error = text;
	return TOK_ERROR;
}

/* Append a node at the current level and link it to its previous sibling.
 * last[] holds index + 1 so that 0 means "no child yet". */
static struct imap_arg *
add_arg(struct imap_parser *p, enum imap_arg_type t)
{
	unsigned idx = p->cmd.nargs;
	struct imap_arg *a;
	uint32_t prev = p->last[p->depth];

	if (idx >= p->lim.max_args) {
		tok_error(p, IMAP_ERR_TOOLONG, "Too many arguments");
		return NULL;
	}
	a = &p->argv[idx];
	memset(a, 0, sizeof(*a));
	a->type = (uint8_t)t;
	if (prev != 0)
		p->argv[prev - 1].next = idx - (prev - 1);
	p->last[p->depth] = idx + 1;
	if (p->depth > 0)
		p->argv[p->open[p->depth - 1]].count++;
	else
		p->cmd.argc++;
	p->cmd.nargs++;
	return a;
}

/*
 * A quoted string, unescaped in place (the result is never longer than the
 * source). Returns the position after the closing quote, or 0 on error.
 */
static size_t
scan_quoted(struct imap_parser *p, size_t pos, size_t eol)
{
	char *b = p->buf;
	size_t q = pos + 1, w = pos + 1, n;
	struct imap_arg *a;

	while (q < eol) {
		unsigned char c = (unsigned char)b[q];

		if (c == '"') {
			if ((a = add_arg(p, IMAP_ARG_QUOTED)) == NULL)
				return 0;
			a->ptr = b + pos + 1;
			a->len = w - (pos + 1);
			return q + 1;
		}
		if (c == '\\') {
			if (q + 1 >= eol ||
			    (b[q + 1] != '"' && b[q + 1] != '\\')) {
				tok_error(p, IMAP_ERR_SYNTAX,
				    "Invalid escape in quoted string");
				return 0;
			}
			b[w++] = b[q + 1];
			q += 2;
			continue;
		}
		if (c == '\r') {
			tok_error(p, IMAP_ERR_SYNTAX,
			    "Invalid character in quoted string");
			return 0;
		}
		if (c >= 0x80) {
			n = utf8_seq((const unsigned char *)b + q, eol - q);
			if (n == 0) {
				tok_error(p, IMAP_ERR_SYNTAX,
				    "Invalid UTF-8 in quoted string");
				return 0;
			}
			memmove(b + w, b + q, n);
			w += n;
			q += n;
			continue;
		}
		b[w++] = (char)c;
		q++;
	}
	tok_error(p, IMAP_ERR_SYNTAX, "Unterminated quoted string");
	return 0;
}

/*
 * An atom in the wide sense: ATOM-CHARs plus the list wildcards and ']'
 * (astrings, LIST patterns, sequence sets), a leading backslash (flags),
 * and for the fetch attributes that take one a bracketed section that may
 * contain spaces, parentheses and quoted strings. Returns the end or 0.
 */
static size_t
scan_atom(struct imap_parser *p, size_t pos, size_t eol)
{
	char *b = p->buf;
	size_t q = pos;
	struct imap_arg *a;

	if (b[q] == '\\')
		q++;
	while (q < eol) {
		unsigned char c = (unsigned char)b[q];

		if (c == '[' && section_prefix(b + pos, q - pos)) {
			q = scan_section(p, q, eol);
			if (q == 0)
				return 0;
			continue;
		}
		if (!is_atom_char(c) && c != '%' && c != '*' && c != ']')
			break;
		q++;
	}
	if (q == pos || (q == pos + 1 && b[pos] == '\\')) {
		tok_error(p, IMAP_ERR_SYNTAX, "Invalid character in argument");
		return 0;
	}
	if ((a = add_arg(p, IMAP_ARG_ATOM)) == NULL)
		return 0;
	a->ptr = b + pos;
	a->len = q - pos;
	return q;
}

static size_t
scan_section(struct imap_parser *p, size_t pos, size_t eol)
{
	const char *b = p->buf;
	size_t q = pos + 1;

	while (q < eol) {
		unsigned char c = (unsigned char)b[q];

		if (c == ']')
			return q + 1;
		if (c == '"') {
			for (q++; q < eol && b[q] != '"'; q++) {
				if (b[q] == '\\')
					q++;
			}
			if (q >= eol)
				break;
		} else if (c < 0x20 || c >= 0x7f || c == '{' || c == '[') {
			tok_error(p, IMAP_ERR_SYNTAX,
			    "Invalid character in section");
			return 0;
		}
		q++;
	}
	tok_error(p, IMAP_ERR_SYNTAX, "Unterminated section");
	return 0;
}

/* "{n}", "{n+}" or "~{n}", which must be the last thing on the line. */
static enum tok
scan_literal(struct imap_parser *p, size_t pos, size_t eol)
{
	const char *b = p->buf;
	bool binary = b[pos] == '~';
	size_t q = pos + (binary ? 2 : 1), digits = 0;
	uint64_t n = 0;
	bool nonsync = false;
	struct imap_arg *a;

	for (; q < eol && b[q] >= '0' && b[q] <= '9'; q++, digits++) {
		/* Saturate: any absurd size is simply over the limit. */
		if (n > (UINT64_MAX - 9) / 10)
			n = UINT64_MAX;
		else
			n = n * 10 + (uint64_t)(b[q] - '0');
	}
	if (q < eol && b[q] == '+') {
		nonsync = true;
		q++;
	}
	if (digits == 0 || q >= eol || b[q] != '}')
		return tok_error(p, IMAP_ERR_SYNTAX, "Invalid literal");
	if (q + 1 != eol)
		return tok_error(p, IMAP_ERR_SYNTAX,
		    "Literal announcement must end the line");
	if ((a = add_arg(p, IMAP_ARG_LITERAL)) == NULL)
		return TOK_ERROR;
	a->flags = (binary ? IMAP_ARGF_BINARY : 0) |
	    (nonsync ? IMAP_ARGF_NONSYNC : 0);
	p->lit.size = n;
	p->lit.sync = !nonsync;
	p->lit.binary = binary;
	p->lit.streamed = false;
	p->need_sep = true;
	return TOK_LITERAL;
}

/* Fetch attributes whose '[' opens a section rather than being a char. */
static bool
section_prefix(const char *s, size_t len)
{
	static const char *const atts[] = { "BODY", "BODY.PEEK", "BINARY",
		"BINARY.PEEK", "BINARY.SIZE" };

	for (size_t k = 0; k < sizeof(atts) / sizeof(atts[0]); k++) {
		if (ascii_eq(s, len, atts[k]))
			return true;
	}
	return false;
}

/* ATOM-CHAR of RFC 3501: CHAR minus atom-specials. */
static bool
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool
is_tag_char(unsigned char c)
{
	return (is_atom_char(c) && c != '+') || c == ']';
}

static bool
is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

static unsigned char
ascii_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c;
}

static bool
ascii_eq(const char *a, size_t alen, const char *word)
{
	size_t k;

	for (k = 0; k < alen && word[k] != '\0'; k++) {
		if (ascii_upper((unsigned char)a[k]) !=
		    ascii_upper((unsigned char)word[k]))
			return false;
	}
	return k == alen && word[k] == '\0';
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++) {
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	}
	return len;
}

bool
imap_command_is(const struct imap_command *cmd, const char *word)
{
	size_t n = strlen(word);

	return cmd->name != NULL && cmd->name_len == n &&
	    memcmp(cmd->name, word, n) == 0;
}

bool
imap_arg_atom_is(const struct imap_arg *a, const char *word)
{
	return a != NULL && a->type == IMAP_ARG_ATOM &&
	    ascii_eq(a->ptr, a->len, word);
}

bool
imap_arg_is_nil(const struct imap_arg *a)
{
	return imap_arg_atom_is(a, "NIL");
}

bool
imap_arg_is_string(const struct imap_arg *a)
{
	if (a == NULL)
		return false;
	if (a->type == IMAP_ARG_QUOTED)
		return true;
	return a->type == IMAP_ARG_LITERAL &&
	    (a->flags & IMAP_ARGF_STREAMED) == 0;
}

bool
imap_arg_is_astring(const struct imap_arg *a)
{
	return imap_arg_is_string(a) || (a != NULL && a->type == IMAP_ARG_ATOM);
}

int
imap_arg_number64(const struct imap_arg *a, uint64_t *n_r)
{
	uint64_t n = 0;

	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19)
		return -1;
	for (size_t k = 0; k < a->len; k++) {
		if (a->ptr[k] < '0' || a->ptr[k] > '9')
			return -1;
		n = n * 10 + (uint64_t)(a->ptr[k] - '0');
	}
	if (n > INT64_MAX)
		return -1;
	*n_r = n;
	return 0;
}

int
imap_arg_number(const struct imap_arg *a, uint32_t *n_r)
{
	uint64_t n;

	if (imap_arg_number64(a, &n) == -1 || n > UINT32_MAX)
		return -1;
	*n_r = (uint32_t)n;
	return 0;
}

/* Whether s can go out as a quoted string. */
static bool
quotable(const char *s, size_t len, unsigned flags)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k = 0, n;

	while (k < len) {
		if (u[k] == '\0' || u[k] == '\r' || u[k] == '\n')
			return false;
		if (u[k] < 0x80) {
			k++;
			continue;
		}
		if ((flags & IMAP_WRITE_UTF8) == 0 ||
		    (n = utf8_seq(u + k, len - k)) == 0)
			return false;
		k += n;
	}
	return true;
}

static int
write_quoted(imap_write_fn *w, void *ctx, const char *s, size_t len)
{
	size_t start = 0;

	if (w(ctx, "\"", 1) == -1)
		return -1;
	for (size_t k = 0; k < len; k++) {
		if (s[k] != '"' && s[k] != '\\')
			continue;
		if (w(ctx, s + start, k - start) == -1 || w(ctx, "\\", 1) == -1)
			return -1;
		start = k;
	}
	if (w(ctx, s + start, len - start) == -1)
		return -1;
	return w(ctx, "\"", 1);
}

static int
write_literal(imap_write_fn *w, void *ctx, const char *s, size_t len)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "{%zu}\r\n", len);

	if (w(ctx, head, (size_t)n) == -1)
		return -1;
	return w(ctx, s, len);
}

int
imap_write_string(imap_write_fn *w, void *ctx, const char *s, size_t len,
    unsigned flags)
{
	if (quotable(s, len, flags))
		return write_quoted(w, ctx, s, len);
	return write_literal(w, ctx, s, len);
}

int
imap_write_nstring(imap_write_fn *w, void *ctx, const char *s, size_t len,
    unsigned flags)
{
	if (s == NULL)
		return w(ctx, "NIL", 3);
	return imap_write_string(w, ctx, s, len, flags);
}

int
imap_write_astring(imap_write_fn *w, void *ctx, const char *s, size_t len,
    unsigned flags)
{
	size_t k;

	for (k = 0; k < len; k++) {
		if (!is_atom_char((unsigned char)s[k]) && s[k] != ']')
			break;
	}
	if (len > 0 && k == len && !ascii_eq(s, len, "NIL"))
		return w(ctx, s, len);
	return imap_write_string(w, ctx, s, len, flags);
}
