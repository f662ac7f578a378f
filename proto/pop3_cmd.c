/*
 * pop3_cmd.c - the POP3 command line parser (proto/pop3_cmd.h).
 *
 * A table says per keyword how its arguments are read (none, a message
 * number, a word, the rest of the line, ...); the line is split on single
 * spaces and each argument judged. Relies on the session's line reader
 * for the line limit and the CRLF. Never allocates, never reads at or
 * past len, never writes to the line, never puts a peer byte in a reply.
 */
#include <string.h>

#include "proto/pop3_cmd.h"
#include "proto/sasl_syntax.h"

#define VERB_MAX 4
#define APOP_DIGEST 32
#define NUM_DIGITS_MAX 10 /* 2147483647 */

/* How a keyword's arguments are read. */
enum args {
	A_NONE,	   /* STAT NOOP RSET QUIT CAPA STLS */
	A_MSG,	   /* RETR DELE: n */
	A_OPT_MSG, /* LIST UIDL: [n] */
	A_TOP,	   /* n m */
	A_WORD,	   /* USER name */
	A_REST,	   /* PASS: the rest of the line */
	A_APOP,	   /* name digest */
	A_AUTH,	   /* [mech [initial-response]] */
};

static const struct verb {
	const char *name;
	enum pop3_verb verb;
	enum args args;
} verbs[] = {
	{ "USER", POP3_USER, A_WORD },
	{ "PASS", POP3_PASS, A_REST },
	{ "APOP", POP3_APOP, A_APOP },
	{ "AUTH", POP3_AUTH, A_AUTH },
	{ "STAT", POP3_STAT, A_NONE },
	{ "LIST", POP3_LIST, A_OPT_MSG },
	{ "RETR", POP3_RETR, A_MSG },
	{ "DELE", POP3_DELE, A_MSG },
	{ "NOOP", POP3_NOOP, A_NONE },
	{ "RSET", POP3_RSET, A_NONE },
	{ "QUIT", POP3_QUIT, A_NONE },
	{ "TOP", POP3_TOP, A_TOP },
	{ "UIDL", POP3_UIDL, A_OPT_MSG },
	{ "CAPA", POP3_CAPA, A_NONE },
	{ "STLS", POP3_STLS, A_NONE },
};

/* The -ERR texts. */
static const char E_UNKNOWN[] = "Unknown command";
static const char E_CHAR[] = "Invalid character in command";
static const char E_NOARGS[] = "No arguments allowed";
static const char E_MISSING[] = "Missing argument";
static const char E_TOOMANY[] = "Too many arguments";
static const char E_SPACE[] = "Arguments are separated by one space";
static const char E_LONG[] = "Argument too long";
static const char E_NUM[] = "Invalid message number";
static const char E_LINES[] = "Invalid number of lines";
static const char E_DIGEST[] = "Invalid APOP digest";
static const char E_MECH[] = "Invalid SASL mechanism name";
static const char E_IR[] = "Invalid initial response";

static const struct verb *find_verb(const char *s, size_t n);
static bool controls(const char *s, size_t n, bool tab_ok);
static int split(struct pop3_cmd *cmd, const char *s, size_t n,
    struct pop3_str *args, unsigned max, unsigned *argc_r);
static bool number(const struct pop3_str *a, bool zero_ok, uint32_t *v_r);
static bool digest(const struct pop3_str *a);
static int parse_args(struct pop3_cmd *cmd, enum args args, const char *s,
    size_t n);
static int args_msg(struct pop3_cmd *cmd, enum args args,
    const struct pop3_str *a, unsigned argc);
static int args_auth(struct pop3_cmd *cmd, const struct pop3_str *a,
    unsigned argc);
static int fail(struct pop3_cmd *cmd, const char *error);

enum pop3_cmd_rc
pop3_cmd_parse(struct pop3_cmd *cmd, const char *line, size_t len)
{
	const struct verb *v;
	size_t wlen = 0;

	memset(cmd, 0, sizeof(*cmd));
	/* the keyword ends at a space, or at a control character so that
	 * "QUIT\r" is still known as QUIT when it is refused */
	while (wlen < len && (unsigned char)line[wlen] > 0x20 &&
	    line[wlen] != 0x7f)
		wlen++;
	if ((v = find_verb(line, wlen)) != NULL)
		cmd->verb = v->verb;
	/* NUL, CR, LF: never; other controls only in a password */
	/* (a TAB allowed in a password may not stand for the space) */
	if (controls(line, len, v != NULL && v->args == A_REST) ||
	    (wlen < len && line[wlen] != ' ')) {
		fail(cmd, E_CHAR);
		return POP3_CMD_INVALID;
	}
	if (v == NULL) {
		fail(cmd, E_UNKNOWN);
		return POP3_CMD_INVALID;
	}
	if (parse_args(cmd, v->args, line + wlen, len - wlen) == -1)
		return POP3_CMD_INVALID;
	return POP3_CMD_OK;
}

const char *
pop3_verb_name(enum pop3_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "";
}

/* Record the answer; -1. */
static int
fail(struct pop3_cmd *cmd, const char *error)
{
	cmd->error = error;
	return -1;
}

static const struct verb *
find_verb(const char *s, size_t n)
{
	if (n == 0 || n > VERB_MAX)
		return NULL;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		const char *name = verbs[i].name;
		size_t k;

		for (k = 0; k < n && name[k] != '\0'; k++) {
			char c = s[k];

			if (c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
			if (c != name[k])
				break;
		}
		if (k == n && name[k] == '\0')
			return &verbs[i];
	}
	return NULL;
}

static bool
controls(const char *s, size_t n, bool tab_ok)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\t' && tab_ok)
			continue;
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

/*
 * Split s[0..n) (what follows the keyword: empty, or a space and the
 * arguments) into at most max arguments, each non-empty (lengths are
 * the caller's to judge: AUTH's initial response has no 255 limit).
 */
static int
split(struct pop3_cmd *cmd, const char *s, size_t n, struct pop3_str *args,
    unsigned max, unsigned *argc_r)
{
	unsigned argc = 0;
	size_t i = 0, wl;
	const char *sp;

	while (i < n) {
		i++; /* the space */
		sp = memchr(s + i, ' ', n - i);
		wl = sp ? (size_t)(sp - (s + i)) : n - i;
		if (wl == 0)
			return fail(cmd, E_SPACE);
		if (argc == max)
			return fail(cmd, E_TOOMANY);
		args[argc++] = (struct pop3_str){ s + i, wl };
		i += wl;
	}
	*argc_r = argc;
	return 0;
}

/* 1*10DIGIT without a leading zero ("0" itself when zero_ok), at most
 * 2^31-1: what every client writes and nothing two readers take apart. */
static bool
number(const struct pop3_str *a, bool zero_ok, uint32_t *v_r)
{
	uint64_t v = 0;

	if (a->len == 0 || a->len > NUM_DIGITS_MAX ||
	    (a->p[0] == '0' && (a->len > 1 || !zero_ok)))
		return false;
	for (size_t i = 0; i < a->len; i++) {
		if (a->p[i] < '0' || a->p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(a->p[i] - '0');
	}
	if (v > POP3_NUM_MAX)
		return false;
	*v_r = (uint32_t)v;
	return true;
}

/* APOP's digest: an MD5 in lower-case hex (RFC 1939 7) */
static bool
digest(const struct pop3_str *a)
{
	if (a->len != APOP_DIGEST)
		return false;
	for (size_t i = 0; i < a->len; i++)
		if (!((a->p[i] >= '0' && a->p[i] <= '9') ||
			(a->p[i] >= 'a' && a->p[i] <= 'f')))
			return false;
	return true;
}

static int
parse_args(struct pop3_cmd *cmd, enum args args, const char *s, size_t n)
{
	struct pop3_str a[2];
	unsigned argc, max = 2;

	switch (args) {
	case A_NONE:
		return n == 0 ? 0 : fail(cmd, E_NOARGS);
	case A_REST:
		/* PASS: everything after the one space, spaces included */
		if (n <= 1)
			return fail(cmd, E_MISSING);
		if (n - 1 > POP3_ARG_MAX)
			return fail(cmd, E_LONG);
		cmd->arg = (struct pop3_str){ s + 1, n - 1 };
		return 0;
	case A_WORD:
	case A_MSG:
	case A_OPT_MSG:
		max = 1;
		break;
	case A_TOP:
	case A_APOP:
	case A_AUTH:
		break;
	}
	if (split(cmd, s, n, a, max, &argc) == -1)
		return -1;
	for (unsigned i = 0; i < argc; i++)
		if (a[i].len > POP3_ARG_MAX && !(args == A_AUTH && i == 1))
			return fail(cmd, E_LONG);
	switch (args) {
	case A_WORD:
		if (argc == 0)
			return fail(cmd, E_MISSING);
		cmd->arg = a[0];
		return 0;
	case A_APOP:
		if (argc < 2)
			return fail(cmd, E_MISSING);
		if (!digest(&a[1]))
			return fail(cmd, E_DIGEST);
		cmd->arg = a[0];
		cmd->arg2 = a[1];
		return 0;
	case A_AUTH:
		return args_auth(cmd, a, argc);
	default:
		return args_msg(cmd, args, a, argc);
	}
}

/* RETR DELE n, LIST UIDL [n], TOP n m */
static int
args_msg(struct pop3_cmd *cmd, enum args args, const struct pop3_str *a,
    unsigned argc)
{
	if (argc == 0) {
		if (args == A_OPT_MSG)
			return 0;
		return fail(cmd, E_MISSING);
	}
	if (!number(&a[0], false, &cmd->msg))
		return fail(cmd, E_NUM);
	cmd->has_msg = true;
	if (args != A_TOP)
		return 0;
	if (argc < 2)
		return fail(cmd, E_MISSING);
	if (!number(&a[1], true, &cmd->lines))
		return fail(cmd, E_LINES);
	return 0;
}

/* AUTH [mech [initial-response]] (RFC 5034 4); the SASL layer decodes
 * and judges the base64. */
static int
args_auth(struct pop3_cmd *cmd, const struct pop3_str *a, unsigned argc)
{
	bool empty;

	if (argc == 0)
		return 0;
	if (!sasl_syntax_mech(a[0].p, a[0].len, cmd->mech))
		return fail(cmd, E_MECH);
	cmd->arg = a[0];
	if (argc == 1)
		return 0;
	if (!sasl_syntax_response(a[1].p, a[1].len, &empty))
		return fail(cmd, E_IR);
	cmd->arg2 = (struct pop3_str){ a[1].p, empty ? 0 : a[1].len };
	return 0;
}

/* ---- the line reader ------------------------------------------------- */

enum pop3_line_ev
pop3_line_next(struct pop3_line *lr, const char *p, size_t n, size_t max,
    size_t *used_r, size_t *len_r)
{
	const char *lf;
	size_t look;

	*len_r = 0;
	*used_r = 0;
	if (n == 0)
		return POP3_LINE_MORE;
	if (lr->skip) {
		if ((lf = memchr(p, '\n', n)) == NULL) {
			*used_r = n;
			return POP3_LINE_MORE;
		}
		/* the long line ends here; the next starts after it */
		lr->skip = false;
		*used_r = (size_t)(lf - p) + 1;
		return POP3_LINE_MORE;
	}
	/* the line, its CR and its LF */
	look = n < max + 2 ? n : max + 2;
	if ((lf = memchr(p, '\n', look)) == NULL) {
		if (n < max + 2) {
			*used_r = 0;
			return POP3_LINE_MORE;
		}
		/* too long: drop it through its LF, or all of it and the
		 * rest of the line when it comes */
		if ((lf = memchr(p + look, '\n', n - look)) != NULL) {
			*used_r = (size_t)(lf - p) + 1;
		} else {
			lr->skip = true;
			*used_r = n;
		}
		return POP3_LINE_LONG;
	}
	*used_r = (size_t)(lf - p) + 1;
	if (lf == p || lf[-1] != '\r') {
		*len_r = (size_t)(lf - p);
		return POP3_LINE_BARE_LF;
	}
	*len_r = (size_t)(lf - p) - 1;
	return *len_r > max ? POP3_LINE_LONG : POP3_LINE_OK;
}
