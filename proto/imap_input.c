/*
 * imap_input.c - the IMAP input discipline (proto/imap_input.h): turns the
 * parser's statuses into the events a session acts on, remembers the tag
 * an error answer needs, and swallows over-large LITERAL+ data byte for
 * byte so nothing inside it is ever parsed as a command.
 *
 * Relies on proto/imap_parse.c for the bounded tokenizer. Never does I/O,
 * allocates only in init/reconf, and never reads past the n bytes given.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/imap_input.h"

static int storage(struct imap_input *in, const struct imap_input_conf *conf,
    char **buf_r, size_t *bufsize_r, struct imap_arg **argv_r,
    unsigned *nargv_r);
static void keep_tag(struct imap_input *in);
static bool swallowable(const struct imap_input *in);
static enum imap_input_ev swallow(struct imap_input *in, const char *p,
    size_t n, size_t *used_r);
static enum imap_input_ev failed(struct imap_input *in,
    enum imap_parse_status st, const char *p, size_t n, size_t *used_r);

/* The command budget's storage: the parser keeps commands and inline
 * literals there. Not zeroed: the parser clears each node it takes, so
 * untouched pages cost neither a memset nor resident memory. */
static int
storage(struct imap_input *in, const struct imap_input_conf *conf, char **buf_r,
    size_t *bufsize_r, struct imap_arg **argv_r, unsigned *nargv_r)
{
	size_t size = conf->lim.max_command;
	unsigned nargv = conf->lim.max_args ? conf->lim.max_args : 64;

	if (conf->lim.big_name != NULL && conf->lim.big_command > size)
		size = conf->lim.big_command;
	if (size == 0)
		return -1;
	*buf_r = NULL;
	*argv_r = NULL;
	if (size <= in->bufsize && nargv <= in->nargv) {
		*bufsize_r = in->bufsize;
		*nargv_r = in->nargv;
		return 0; /* the old storage fits */
	}
	if ((*buf_r = malloc(size)) == NULL ||
	    (*argv_r = reallocarray(NULL, nargv, sizeof(**argv_r))) == NULL) {
		free(*buf_r);
		*buf_r = NULL;
		return -1;
	}
	*bufsize_r = size;
	*nargv_r = nargv;
	return 0;
}

int
imap_input_init(struct imap_input *in, const struct imap_input_conf *conf)
{
	memset(in, 0, sizeof(*in));
	if (storage(in, conf, &in->buf, &in->bufsize, &in->argv, &in->nargv) ==
	    -1)
		return -1;
	if (imap_parse_init(&in->parser, &conf->lim, in->buf, in->bufsize,
		in->argv, in->nargv) == -1) {
		imap_input_free(in);
		return -1;
	}
	in->conf = *conf;
	memcpy(in->tag, "*", 2);
	return 0;
}

int
imap_input_reconf(struct imap_input *in, const struct imap_input_conf *conf)
{
	struct imap_arg *argv;
	size_t size;
	unsigned nargv;
	char *buf;

	if (!imap_input_idle(in) ||
	    storage(in, conf, &buf, &size, &argv, &nargv) == -1)
		return -1;
	if (imap_parse_set_limits(&in->parser, &conf->lim, buf ? buf : in->buf,
		size, argv ? argv : in->argv, nargv) == -1) {
		free(buf);
		free(argv);
		return -1;
	}
	if (buf != NULL) {
		free(in->buf);
		free(in->argv);
		in->buf = buf;
		in->argv = argv;
	}
	in->bufsize = size;
	in->nargv = nargv;
	in->conf = *conf;
	return 0;
}

void
imap_input_free(struct imap_input *in)
{
	free(in->buf);
	free(in->argv);
	in->buf = NULL;
	in->argv = NULL;
	in->bufsize = 0;
	in->nargv = 0;
}

void
imap_input_want_line(struct imap_input *in)
{
	in->want_line = true;
	imap_parse_want_line(&in->parser);
}

int
imap_input_refuse(struct imap_input *in)
{
	return imap_parse_refuse(&in->parser);
}

bool
imap_input_idle(const struct imap_input *in)
{
	return in->skip == 0 && !in->skip_line && imap_parse_idle(&in->parser);
}

/* The tag of the command an error answer goes to: copied, since the
 * parser's storage is reused by the next call. */
static void
keep_tag(struct imap_input *in)
{
	const struct imap_command *cmd = &in->parser.cmd;

	if (cmd->tag == NULL || cmd->tag_len == 0 ||
	    cmd->tag_len > IMAP_INPUT_TAG_MAX) {
		memcpy(in->tag, "*", 2);
		return;
	}
	memcpy(in->tag, cmd->tag, cmd->tag_len);
	in->tag[cmd->tag_len] = '\0';
}

/* An over-large LITERAL+ on a tagged command, small enough that reading
 * it costs less than a reconnect would (RFC 7888 wants NO, not a
 * disconnect, where the server can afford it). */
static bool
swallowable(const struct imap_input *in)
{
	const struct imap_parser *ps = &in->parser;

	return ps->code == IMAP_ERR_TOOBIG && ps->cmd.tag != NULL &&
	    !ps->lit.sync && in->conf.swallow_max > 0 &&
	    ps->lit.size <= in->conf.swallow_max;
}

/* Throw away the literal's bytes and the rest of its line, then start a
 * fresh parser (a FATAL one stays FATAL) and report TOOBIG. */
static enum imap_input_ev
swallow(struct imap_input *in, const char *p, size_t n, size_t *used_r)
{
	const char *lf;
	size_t k;

	*used_r = 0;
	if (in->skip > 0) {
		k = n < in->skip ? n : (size_t)in->skip;
		in->skip -= k;
		*used_r = k;
		p += k;
		n -= k;
		if (in->skip > 0 || n == 0)
			return IMAP_IN_MORE;
	}
	lf = memchr(p, '\n', n);
	if (lf == NULL) {
		*used_r += n;
		return IMAP_IN_MORE;
	}
	*used_r += (size_t)(lf - p) + 1;
	in->skip_line = false;
	if (imap_parse_init(&in->parser, &in->conf.lim, in->buf, in->bufsize,
		in->argv, in->nargv) == -1) {
		in->error = "Internal error";
		return IMAP_IN_FATAL;
	}
	in->error = "Literal too large";
	return IMAP_IN_TOOBIG;
}

static enum imap_input_ev
failed(struct imap_input *in, enum imap_parse_status st, const char *p,
    size_t n, size_t *used_r)
{
	size_t more = 0;
	enum imap_input_ev ev;

	keep_tag(in);
	in->error = in->parser.error ? in->parser.error : "Syntax error";
	in->toobig = false;
	/* the raw line asked for failed: the session ends what asked for
	 * it (an AUTHENTICATE exchange) with its own tagged answer */
	in->line_failed = in->want_line;
	in->want_line = false;
	if (st == IMAP_PARSE_INVALID) {
		in->toobig = in->parser.code == IMAP_ERR_TOOBIG &&
		    in->parser.cmd.tag != NULL;
		return IMAP_IN_BAD;
	}
	if (!swallowable(in))
		return IMAP_IN_FATAL;
	in->skip = in->parser.lit.size;
	in->skip_line = true;
	ev = swallow(in, p + *used_r, n - *used_r, &more);
	*used_r += more;
	return ev;
}

enum imap_input_ev
imap_input_next(struct imap_input *in, const char *p, size_t n, size_t *used_r)
{
	enum imap_parse_status st;

	*used_r = 0;
	if (in->skip > 0 || in->skip_line)
		return swallow(in, p, n, used_r);
	st = imap_parse_feed(&in->parser, p, n, used_r);
	switch (st) {
	case IMAP_PARSE_AGAIN:
		return IMAP_IN_MORE;
	case IMAP_PARSE_OK:
		if (in->want_line) {
			in->want_line = false;
			return IMAP_IN_LINE;
		}
		return IMAP_IN_COMMAND;
	case IMAP_PARSE_LITERAL:
		return IMAP_IN_LITERAL;
	case IMAP_PARSE_DATA:
		return IMAP_IN_DATA;
	case IMAP_PARSE_INVALID:
	case IMAP_PARSE_FATAL:
		return failed(in, st, p, n, used_r);
	}
	in->error = "Internal error";
	return IMAP_IN_FATAL;
}
