/*
 * passwd_tool.c - ringgate-passwd: hash a password, add, change or remove
 * a user in a passwd-file, generate a random password to a policy, and
 * (hidden; passwd_bench.c) time each scheme's verification.
 *
 * Relies on libauth for the schemes (auth_scheme_hash/verify) and for the
 * user-name rules, on passwd_file_edit.c for atomic edits, on libcrack2
 * with the cracklib-runtime dictionary for the weakness check, and on
 * getrandom(2) for generated passwords.
 *
 * Must never: take a password from argv (there is no such option, and a
 * stray argument is a usage error that says why), echo one on a terminal,
 * print one except a generated password exactly once, keep one in stdio
 * buffers, or leave one in memory after use: the secret buffer is locked
 * in RAM when possible, the process is made non-dumpable, and every copy
 * is wiped. A weak password is refused, and when the cracklib dictionary
 * is missing the check fails closed rather than being skipped.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include <crack.h> /* after <stddef.h>: it uses size_t */

#include "auth/auth.h"
#include "auth/auth_private.h"
#include "auth/passwd_private.h"

#define PROG "ringgate-passwd"
#define MIN_LENGTH_DEFAULT 10
#define GEN_LENGTH_DEFAULT 16
#define GEN_DIGITS_DEFAULT 2
#define GEN_SYMBOLS_DEFAULT 2
#define GEN_LENGTH_MIN 8
#define GEN_LENGTH_MAX 256
#define GEN_TRIES 20 /* generated passwords cracklib might still refuse */
#define NAME_MIN_FOR_SUBSTRING 3
#define LOCK_WAIT_MS 10000

/* Exit codes, as --help lists them. */
enum rc {
	RC_OK = 0,
	RC_REFUSED = 1, /* weak, too short, has the name, prompts differ */
	RC_USAGE = 2,
	RC_USER = 3,	 /* add: user exists; set, del: no such user */
	RC_FILE = 4,	 /* cannot lock, read or write F, or it won't load */
	RC_INTERNAL = 5, /* cannot check or make a password */
	RC_HELP = 100,	 /* not an exit code: --help was shown, exit 0 */
};

/* Options, one bit each, so every command can say which it takes. */
enum opt {
	O_FILE = 1 << 0,
	O_SCHEME = 1 << 1,
	O_GENERATE = 1 << 2,
	O_MIN_LENGTH = 1 << 3,
	O_LENGTH = 1 << 4,
	O_DIGITS = 1 << 5,
	O_SYMBOLS = 1 << 6,
	O_EXTRA = 1 << 7,
	O_DICT = 1 << 8,
	O_SECONDS = 1 << 9,
	O_THREADS = 1 << 10,
};

struct gen_policy {
	unsigned length, digits, symbols;
};

/* The one secret: locked in RAM when the limit allows, wiped on free. Two
 * lines fit, for the second prompt's comparison. */
struct secret {
	char buf[AUTH_PASSWORD_MAX + 2];
	char again[AUTH_PASSWORD_MAX + 2];
	size_t len;
	bool locked;
};

/* Everything one run knows; nothing else is mutable. */
struct tool {
	const struct command *cmd;
	unsigned given; /* enum opt bits seen */
	const char *file, *extra, *dict, *user_arg;
	char user[AUTH_USER_MAX + 1];
	enum auth_scheme scheme;
	unsigned min_length;
	struct gen_policy gen;
	unsigned seconds, threads;
	struct secret *sec;
};

struct command {
	const char *name;
	unsigned opts; /* enum opt bits allowed */
	int nargs;     /* positional arguments: exactly this many */
	bool secret;   /* needs the secret buffer */
	enum rc (*run)(struct tool *t);
};

/* The signal that interrupted a no-echo prompt; the handler only notes
 * it, the prompt restores the terminal and then dies of it. */
static struct {
	volatile sig_atomic_t signo;
} tty_signal_ctx;

/* commands */
static enum rc run_hash(struct tool *t);
static enum rc run_edit(struct tool *t);
static enum rc run_del(struct tool *t);
static enum rc run_generate(struct tool *t);
static enum rc run_bench(struct tool *t);

/* arguments */
static enum rc parse_args(struct tool *t, int argc, char **argv);
static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *v_r);
static const char *opt_name(const struct option *longopts, int ch);
static enum rc set_user(struct tool *t);
static void usage(FILE *f);

/* reading a password */
static enum rc read_password(struct tool *t, const char *prompt);
static enum rc read_tty(struct tool *t, const char *prompt);
static int tty_line(const char *prompt, char *buf, size_t cap, size_t *len_r);
static int read_line(int fd, char *buf, size_t cap, size_t *len_r);
static void tty_signal(int signo);

/* policy */
static enum rc policy_check(const struct tool *t, const char *pw, size_t len,
    bool quiet);
static size_t utf8_chars(const char *s, size_t n);
static bool contains_ci(const char *hay, size_t hn, const char *needle,
    size_t nn);

/* generation */
static int generate(const struct gen_policy *g, char *out);
static int rand_below(uint32_t n, uint32_t *v_r);

/* the secret */
static struct secret *secret_new(void);
static void secret_free(struct secret **s);

/* small tools */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const struct command commands[] = {
	{ "hash", O_SCHEME, 0, true, run_hash },
	{ "add",
	    O_FILE | O_SCHEME | O_GENERATE | O_MIN_LENGTH | O_LENGTH |
		O_DIGITS | O_SYMBOLS | O_EXTRA | O_DICT,
	    1, true, run_edit },
	{ "set",
	    O_FILE | O_SCHEME | O_GENERATE | O_MIN_LENGTH | O_LENGTH |
		O_DIGITS | O_SYMBOLS | O_DICT,
	    1, true, run_edit },
	{ "del", O_FILE, 1, false, run_del },
	{ "generate", O_LENGTH | O_DIGITS | O_SYMBOLS, 0, true, run_generate },
	{ "bench", O_SECONDS | O_THREADS, 0, false, run_bench },
};

static const char digits_set[] = "0123456789";
static const char symbols_set[] = "!#$%&()*+,-./:;<=>?@[]^_{|}~";
static const char letters_set[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int
main(int argc, char **argv)
{
	struct tool t = { .scheme = AUTH_SCHEME_ARGON2ID,
		.min_length = MIN_LENGTH_DEFAULT,
		.gen = { GEN_LENGTH_DEFAULT, GEN_DIGITS_DEFAULT,
		    GEN_SYMBOLS_DEFAULT },
		.seconds = 3,
		.threads = 1 };
	enum rc rc;

	/* No core file or ptrace peek can see the secret. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if ((rc = parse_args(&t, argc, argv)) != RC_OK)
		return rc == RC_HELP ? RC_OK : rc;
	if (t.cmd->secret && (t.sec = secret_new()) == NULL) {
		say("out of memory");
		return RC_INTERNAL;
	}
	rc = t.cmd->run(&t);
	secret_free(&t.sec);
	return rc;
}

/* ---- commands --------------------------------------------------------- */

static enum rc
run_hash(struct tool *t)
{
	const char *error;
	char *hash;
	enum rc rc;

	if ((rc = read_password(t, "Password: ")) != RC_OK)
		return rc;
	if (auth_scheme_hash(t->scheme, t->sec->buf, t->sec->len, NULL, &hash,
		&error) == -1) {
		say("cannot hash: %s", error);
		return RC_INTERNAL;
	}
	printf("%s\n", hash);
	free(hash);
	return fflush(stdout) == 0 ? RC_OK : RC_INTERNAL;
}

/* add and set: refuse early on the user (before anyone types a password),
 * get a password that passes the policy, hash it outside the lock, then
 * edit. A generated password is shown only once the file holds it. */
static enum rc
run_edit(struct tool *t)
{
	struct passwd_edit e = { .path = t->file,
		.op = strcmp(t->cmd->name, "add") == 0 ? PASSWD_EDIT_ADD :
							 PASSWD_EDIT_SET,
		.user = t->user,
		.extra = t->extra,
		.lock_wait_ms = LOCK_WAIT_MS };
	struct gen_policy g = t->gen;
	enum passwd_edit_why why;
	char err[PASSWD_ERR_MAX], *hash = NULL;
	const char *error;
	enum rc rc;
	int has;

	if ((has = passwd_file_has_user(t->file, t->user, err, sizeof(err))) ==
	    -1) {
		say("%s", err);
		return RC_FILE;
	}
	if (has != (e.op == PASSWD_EDIT_SET)) {
		say("%s: %s %s", t->file, has ? "user exists:" : "no user",
		    t->user);
		return RC_USER;
	}
	if (t->given & O_GENERATE) {
		if (g.length < t->min_length)
			g.length = t->min_length;
		rc = RC_REFUSED;
		for (int i = 0; i < GEN_TRIES && rc == RC_REFUSED; i++) {
			if (generate(&g, t->sec->buf) == -1) {
				say("getrandom failed: %s", strerror(errno));
				return RC_INTERNAL;
			}
			t->sec->len = g.length;
			rc = policy_check(t, t->sec->buf, t->sec->len, true);
		}
		if (rc == RC_REFUSED)
			say("%d generated passwords in a row were refused; "
			    "try a longer --length",
			    GEN_TRIES);
		if (rc != RC_OK)
			return rc == RC_REFUSED ? RC_INTERNAL : rc;
	} else {
		char prompt[AUTH_USER_MAX + 32];

		snprintf(prompt, sizeof(prompt),
		    "New password for %s: ", t->user);
		if ((rc = read_password(t, prompt)) != RC_OK ||
		    (rc = policy_check(t, t->sec->buf, t->sec->len, false)) !=
			RC_OK)
			return rc;
	}
	if (auth_scheme_hash(t->scheme, t->sec->buf, t->sec->len, NULL, &hash,
		&error) == -1) {
		say("cannot hash: %s", error);
		return RC_INTERNAL;
	}
	e.hash = hash;
	if (passwd_file_edit(&e, &why, err, sizeof(err)) == -1) {
		free(hash);
		say("%s", err);
		return why == PASSWD_EDIT_FAILED ? RC_FILE : RC_USER;
	}
	free(hash);
	if (t->given & O_GENERATE) {
		t->sec->buf[t->sec->len] = '\n';
		if (passwd_write_all(STDOUT_FILENO, t->sec->buf,
			t->sec->len + 1) == -1) {
			say("%s: user %s written, but the password could not "
			    "be shown: %s",
			    t->file, t->user, strerror(errno));
			return RC_INTERNAL;
		}
	}
	say("%s: %s %s (%s)", t->file,
	    e.op == PASSWD_EDIT_ADD ? "added" : "changed the password of",
	    t->user, auth_scheme_name(t->scheme));
	return RC_OK;
}

static enum rc
run_del(struct tool *t)
{
	struct passwd_edit e = { .path = t->file,
		.op = PASSWD_EDIT_DEL,
		.user = t->user,
		.lock_wait_ms = LOCK_WAIT_MS };
	enum passwd_edit_why why;
	char err[PASSWD_ERR_MAX];

	if (passwd_file_edit(&e, &why, err, sizeof(err)) == -1) {
		say("%s", err);
		return why == PASSWD_EDIT_FAILED ? RC_FILE : RC_USER;
	}
	say("%s: removed %s", t->file, t->user);
	return RC_OK;
}

/* Hidden: the numbers in docs/benchmarks.md. */
static enum rc
run_bench(struct tool *t)
{
	return passwd_bench(t->seconds, t->threads) == 0 ? RC_OK : RC_INTERNAL;
}

static enum rc
run_generate(struct tool *t)
{
	if (generate(&t->gen, t->sec->buf) == -1) {
		say("getrandom failed: %s", strerror(errno));
		return RC_INTERNAL;
	}
	t->sec->len = t->gen.length;
	t->sec->buf[t->sec->len] = '\n';
	if (passwd_write_all(STDOUT_FILENO, t->sec->buf, t->sec->len + 1) == -1)
		return RC_INTERNAL;
	return RC_OK;
}

/* ---- arguments ---------------------------------------------------------- */

/* RC_OK to run, RC_HELP after --help, else the exit code. */
static enum rc
parse_args(struct tool *t, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "scheme", required_argument, NULL, 's' },
		{ "generate", no_argument, NULL, 'g' },
		{ "min-length", required_argument, NULL, 'm' },
		{ "length", required_argument, NULL, 'l' },
		{ "digits", required_argument, NULL, 'd' },
		{ "symbols", required_argument, NULL, 'y' },
		{ "extra", required_argument, NULL, 'e' },
		{ "dict", required_argument, NULL, 'D' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		int ch;
		enum opt bit;
	} bits[] = { { 'f', O_FILE }, { 's', O_SCHEME }, { 'g', O_GENERATE },
		{ 'm', O_MIN_LENGTH }, { 'l', O_LENGTH }, { 'd', O_DIGITS },
		{ 'y', O_SYMBOLS }, { 'e', O_EXTRA }, { 'D', O_DICT },
		{ 'S', O_SECONDS }, { 'T', O_THREADS } };
	int ch, bad = 0;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? RC_USAGE : RC_HELP;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			t->cmd = &commands[i];
	if (t->cmd == NULL) {
		say("unknown command '%s' (try --help)", argv[1]);
		return RC_USAGE;
	}
	argc--, argv++;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "f:s:gh", longopts, NULL)) != -1) {
		unsigned bit = 0;

		for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
			if (bits[i].ch == ch)
				bit = bits[i].bit;
		if (ch == 'h') {
			usage(stdout);
			return RC_HELP;
		}
		if (ch == '?' || ch == ':') {
			say("%s: bad or incomplete option '%s' (try --help)",
			    t->cmd->name, argv[optind - 1]);
			return RC_USAGE;
		}
		if ((t->cmd->opts & bit) == 0) {
			say("%s does not take --%s (try --help)", t->cmd->name,
			    opt_name(longopts, ch));
			return RC_USAGE;
		}
		t->given |= bit;
		switch (ch) {
		case 'f':
			t->file = optarg;
			break;
		case 's':
			if (auth_scheme_parse(optarg, strlen(optarg),
				&t->scheme) == -1 ||
			    t->scheme == AUTH_SCHEME_PLAIN) {
				say("unknown scheme '%s' (ARGON2ID, BLF-CRYPT, "
				    "SHA512-CRYPT, YESCRYPT, SCRAM-SHA-256)",
				    optarg);
				return RC_USAGE;
			}
			break;
		case 'm':
			bad = parse_uint(optarg, 1, AUTH_PASSWORD_MAX,
			    &t->min_length);
			break;
		case 'l':
			bad = parse_uint(optarg, GEN_LENGTH_MIN, GEN_LENGTH_MAX,
			    &t->gen.length);
			break;
		case 'd':
			bad = parse_uint(optarg, 0, GEN_LENGTH_MAX,
			    &t->gen.digits);
			break;
		case 'y':
			bad = parse_uint(optarg, 0, GEN_LENGTH_MAX,
			    &t->gen.symbols);
			break;
		case 'e':
			t->extra = optarg;
			bad = strpbrk(optarg, "\r\n") != NULL ? -1 : 0;
			break;
		case 'D':
			t->dict = optarg;
			break;
		case 'S':
			bad = parse_uint(optarg, 1, 3600, &t->seconds);
			break;
		case 'T':
			bad = parse_uint(optarg, 1, PASSWD_BENCH_THREADS_MAX,
			    &t->threads);
			break;
		}
		if (bad == -1) {
			say("%s: '%s' is not a valid value for that option "
			    "(try --help)",
			    t->cmd->name, optarg);
			return RC_USAGE;
		}
	}
	if (argc - optind != t->cmd->nargs) {
		if (t->cmd->nargs == 0)
			say("%s takes no arguments; a password is read from "
			    "stdin or the terminal, never from the command "
			    "line",
			    t->cmd->name);
		else
			say("%s takes exactly one USER; a password is read "
			    "from stdin or the terminal, never from the "
			    "command line",
			    t->cmd->name);
		return RC_USAGE;
	}
	if ((t->cmd->opts & O_FILE) && t->file == NULL) {
		say("%s needs --file F", t->cmd->name);
		return RC_USAGE;
	}
	if (t->gen.digits + t->gen.symbols > t->gen.length) {
		say("--digits and --symbols (%u) exceed --length (%u)",
		    t->gen.digits + t->gen.symbols, t->gen.length);
		return RC_USAGE;
	}
	if ((t->given & (O_LENGTH | O_DIGITS | O_SYMBOLS)) &&
	    (t->cmd->opts & O_GENERATE) && !(t->given & O_GENERATE)) {
		say("--length, --digits and --symbols go with --generate");
		return RC_USAGE;
	}
	if (t->cmd->nargs == 1) {
		t->user_arg = argv[optind];
		return set_user(t);
	}
	return RC_OK;
}

static const char *
opt_name(const struct option *longopts, int ch)
{
	for (; longopts->name != NULL; longopts++)
		if (longopts->val == ch)
			return longopts->name;
	return "?";
}

/* The name as the file will hold it; '#' would turn the line into a
 * comment, and the rest of the rules are the server's own. */
static enum rc
set_user(struct tool *t)
{
	const char *u = t->user_arg;

	if (u[0] == '#' || auth_user_normalize(u, strlen(u), t->user) == -1) {
		say("invalid user name (1 to %d bytes, no blanks, control "
		    "bytes or ':', not starting with '#')",
		    AUTH_USER_MAX);
		return RC_USAGE;
	}
	return RC_OK;
}

static int
parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *v_r)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*v_r = (unsigned)v;
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " hash [--scheme S]\n"
	    "       " PROG " add --file F [--scheme S] [--generate "
	    "[--length N --digits N --symbols N]]\n"
	    "                   [--min-length N] [--extra FIELDS] "
	    "[--dict PATH] USER\n"
	    "       " PROG " set --file F [--scheme S] [--generate ...] "
	    "[--min-length N] [--dict PATH] USER\n"
	    "       " PROG " del --file F USER\n"
	    "       " PROG " generate [--length N] [--digits N] "
	    "[--symbols N]\n"
	    "\n"
	    "The password is read from stdin (its first line) when stdin "
	    "is not a terminal,\n"
	    "else prompted for twice without echo. It is never taken "
	    "from the command line.\n"
	    "\n"
	    "  hash      print {SCHEME}hash of the password (no strength "
	    "check)\n"
	    "  add       append USER to F; refuses a user that exists\n"
	    "  set       change USER's password in F, keeping the rest of "
	    "the line\n"
	    "  del       remove USER from F\n"
	    "  generate  print a random password: exactly N digits and N "
	    "symbols,\n"
	    "            the rest letters, shuffled (default 16, 2, 2)\n"
	    "\n"
	    "  -s, --scheme S    ARGON2ID (default), BLF-CRYPT, "
	    "SHA512-CRYPT, YESCRYPT,\n"
	    "                    SCRAM-SHA-256 (needed for SASL "
	    "SCRAM-SHA-256), SHA256-CRYPT\n"
	    "  -f, --file F      the passwd-file; edits are atomic (temp "
	    "file, fsync, rename),\n"
	    "                    serialised by flock on F.lock, and keep "
	    "comments, order,\n"
	    "                    mode and owner\n"
	    "  -g, --generate    make the password instead of reading "
	    "one; printed once on stdout\n"
	    "  --min-length N    refuse passwords shorter than N "
	    "characters (default %d)\n"
	    "  --extra FIELDS    add: extra fields, e.g. \"host=10.0.0.5 "
	    "quota=1G\"\n"
	    "  --dict PATH       cracklib dictionary (default %s)\n"
	    "\n"
	    "add and set refuse a password that is too short, contains "
	    "the user name or its\n"
	    "local part, or that cracklib finds weak; without the "
	    "cracklib dictionary they\n"
	    "refuse every password.\n"
	    "\n"
	    "Exit codes:\n"
	    "  0  done\n"
	    "  1  password refused (weak, too short, contains the user "
	    "name, prompts differ,\n"
	    "     empty or missing)\n"
	    "  2  usage error\n"
	    "  3  add: the user exists; set, del: no such user\n"
	    "  4  F cannot be locked, read or written, or would not load "
	    "(left unchanged)\n"
	    "  5  cannot check or make a password (no cracklib "
	    "dictionary, no randomness,\n"
	    "     hashing failed)\n",
	    MIN_LENGTH_DEFAULT, GetDefaultCracklibDict());
}

/* ---- reading a password ------------------------------------------------ */

/* Into t->sec: from the terminal (twice, no echo) or the first line of
 * stdin. Refuses empty, over-long and NUL-holding passwords. */
static enum rc
read_password(struct tool *t, const char *prompt)
{
	struct secret *s = t->sec;

	if (isatty(STDIN_FILENO))
		return read_tty(t, prompt);
	if (read_line(STDIN_FILENO, s->buf, sizeof(s->buf), &s->len) == -1) {
		say("cannot read the password from stdin: %s",
		    errno == EMSGSIZE	 ? "longer than 1024 bytes" :
			errno == ENODATA ? "no password given" :
					   strerror(errno));
		return RC_REFUSED;
	}
	if (s->len == 0) {
		say("empty password");
		return RC_REFUSED;
	}
	if (memchr(s->buf, '\0', s->len) != NULL) {
		say("the password holds a NUL byte");
		return RC_REFUSED;
	}
	return RC_OK;
}

static enum rc
read_tty(struct tool *t, const char *prompt)
{
	struct secret *s = t->sec;
	size_t again_len;
	bool same;

	if (tty_line(prompt, s->buf, sizeof(s->buf), &s->len) == -1 ||
	    tty_line("Retype: ", s->again, sizeof(s->again), &again_len) ==
		-1) {
		say("cannot read the password: %s",
		    errno == EMSGSIZE ? "longer than 1024 bytes" :
					strerror(errno));
		return RC_REFUSED;
	}
	same = again_len == s->len && memcmp(s->buf, s->again, s->len) == 0;
	explicit_bzero(s->again, sizeof(s->again));
	if (!same) {
		say("the passwords differ");
		return RC_REFUSED;
	}
	if (s->len == 0) {
		say("empty password");
		return RC_REFUSED;
	}
	return RC_OK;
}

/* One line from the terminal on stdin with echo off (the newline is still
 * echoed, so the next prompt starts a line). A signal meanwhile restores
 * the terminal, wipes, and then takes its default action. */
static int
tty_line(const char *prompt, char *buf, size_t cap, size_t *len_r)
{
	struct sigaction sa = { .sa_handler = tty_signal }, old[3];
	static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	struct termios saved, quiet;
	int r, saved_errno;

	if (tcgetattr(STDIN_FILENO, &saved) == -1)
		return -1;
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	sigemptyset(&sa.sa_mask);
	tty_signal_ctx.signo = 0;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]); /* no SA_RESTART */
	/* Echo goes off before the prompt shows, so nothing typed after
	 * the prompt can be echoed (or flushed by TCSAFLUSH). */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == -1) {
		r = -1;
	} else {
		(void)passwd_write_all(STDERR_FILENO, prompt, strlen(prompt));
		r = read_line(STDIN_FILENO, buf, cap, len_r);
		saved_errno = errno;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		errno = saved_errno;
	}
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (tty_signal_ctx.signo != 0) {
		explicit_bzero(buf, cap);
		(void)passwd_write_all(STDERR_FILENO, "\n", 1);
		raise(tty_signal_ctx.signo);
		errno = EINTR;
		return -1;
	}
	if (r == -1 && errno == ENODATA)
		*len_r = 0, r = 0; /* ^D at the prompt: an empty password */
	return r;
}

/* The first line of fd into buf (cap bytes), without "\n" or "\r\n",
 * NUL-terminated; whatever was read past it is wiped. EOF ends a last
 * line too. -1 with errno EMSGSIZE (too long), ENODATA (nothing at all),
 * or the read error; buf is wiped then. */
static int
read_line(int fd, char *buf, size_t cap, size_t *len_r)
{
	size_t have = 0;
	char *nl = NULL;

	while (nl == NULL && have < cap - 1) {
		ssize_t r = read(fd, buf + have, cap - 1 - have);

		if (r == -1) {
			if (errno == EINTR && tty_signal_ctx.signo == 0)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		nl = memchr(buf + have, '\n', (size_t)r);
		have += (size_t)r;
	}
	if (nl == NULL && have == cap - 1) {
		errno = EMSGSIZE;
		goto fail;
	}
	if (nl == NULL && have == 0) {
		errno = ENODATA;
		goto fail;
	}
	*len_r = nl != NULL ? (size_t)(nl - buf) : have;
	if (*len_r > 0 && buf[*len_r - 1] == '\r')
		(*len_r)--;
	explicit_bzero(buf + *len_r, cap - *len_r);
	return 0;
fail:
	explicit_bzero(buf, cap);
	return -1;
}

static void
tty_signal(int signo)
{
	tty_signal_ctx.signo = signo;
}

/* ---- policy ---------------------------------------------------------------
 */

/* Length in characters, then the user name, then cracklib. RC_OK,
 * RC_REFUSED with the reason said (unless quiet: generated passwords are
 * simply drawn again), or RC_INTERNAL when the dictionary is missing:
 * fail closed. */
static enum rc
policy_check(const struct tool *t, const char *pw, size_t len, bool quiet)
{
	const char *dict = t->dict ? t->dict : GetDefaultCracklibDict();
	const char *at = strchr(t->user, '@'), *why;
	size_t ulen = strlen(t->user),
	       llen = at ? (size_t)(at - t->user) : ulen;
	char path[4096];

	if (utf8_chars(pw, len) < t->min_length) {
		if (!quiet)
			say("password refused: shorter than %u characters",
			    t->min_length);
		return RC_REFUSED;
	}
	/* A short name would forbid too many passwords as a substring, so
	 * it is only refused as the whole password. */
	if ((len == llen && contains_ci(pw, len, t->user, llen)) ||
	    (len == ulen && contains_ci(pw, len, t->user, ulen)) ||
	    (llen >= NAME_MIN_FOR_SUBSTRING &&
		contains_ci(pw, len, t->user, llen))) {
		if (!quiet)
			say("password refused: it contains the user name");
		return RC_REFUSED;
	}
	snprintf(path, sizeof(path), "%s.pwd", dict);
	if (access(path, R_OK) == -1) {
		say("cannot check the password: cracklib dictionary %s is "
		    "missing (install cracklib-runtime, or give --dict); "
		    "refusing",
		    path);
		return RC_INTERNAL;
	}
	if ((why = FascistCheckUser(pw, dict, t->user, NULL)) != NULL) {
		if (!quiet)
			say("password refused: %s", why);
		return RC_REFUSED;
	}
	return RC_OK;
}

/* Characters, not bytes: a UTF-8 continuation byte does not count. */
static size_t
utf8_chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

/* ASCII case-insensitive substring test (user names are lowercased). */
static bool
contains_ci(const char *hay, size_t hn, const char *needle, size_t nn)
{
	for (size_t i = 0; nn > 0 && i + nn <= hn; i++) {
		size_t k = 0;

		while (k < nn) {
			unsigned char c = (unsigned char)hay[i + k];

			if (c >= 'A' && c <= 'Z')
				c += 32;
			if (c != (unsigned char)needle[k])
				break;
			k++;
		}
		if (k == nn)
			return true;
	}
	return false;
}

/* ---- generation -------------------------------------------------------- */

/* out gets g->length characters (and room for a newline and a NUL):
 * exactly g->digits digits and g->symbols symbols, letters for the rest,
 * each drawn uniformly, then the positions shuffled (Fisher-Yates) so the
 * classes do not sit in a predictable order. 0 or -1 (getrandom). */
static int
generate(const struct gen_policy *g, char *out)
{
	const size_t nd = sizeof(digits_set) - 1, ns = sizeof(symbols_set) - 1,
		     nl = sizeof(letters_set) - 1;
	uint32_t v;

	for (unsigned i = 0; i < g->length; i++) {
		const char *set = letters_set;
		size_t n = nl;

		if (i < g->digits)
			set = digits_set, n = nd;
		else if (i < g->digits + g->symbols)
			set = symbols_set, n = ns;
		if (rand_below((uint32_t)n, &v) == -1)
			goto fail;
		out[i] = set[v];
	}
	for (unsigned i = g->length - 1; i > 0; i--) {
		char c;

		if (rand_below(i + 1, &v) == -1)
			goto fail;
		c = out[i], out[i] = out[v], out[v] = c;
	}
	out[g->length] = '\0';
	return 0;
fail:
	explicit_bzero(out, g->length);
	return -1;
}

/* Uniform in [0, n): a 32-bit draw is kept only below the largest
 * multiple of n, so no value is more likely than another. */
static int
rand_below(uint32_t n, uint32_t *v_r)
{
	uint64_t limit = (1ULL << 32) - ((1ULL << 32) % n);
	uint32_t x;

	do {
		ssize_t r = getrandom(&x, sizeof(x), 0);

		if (r == -1 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(x))
			return -1;
	} while ((uint64_t)x >= limit);
	*v_r = x % n;
	explicit_bzero(&x, sizeof(x));
	return 0;
}

/* ---- the secret ------------------------------------------------------- */

static struct secret *
secret_new(void)
{
	struct secret *s = calloc(1, sizeof(*s));

	/* Best effort: without CAP_IPC_LOCK a low RLIMIT_MEMLOCK may say
	 * no, and the password is then merely wiped, not pinned. */
	if (s != NULL)
		s->locked = mlock(s, sizeof(*s)) == 0;
	return s;
}

static void
secret_free(struct secret **sp)
{
	struct secret *s = *sp;

	if (s == NULL)
		return;
	explicit_bzero(s, sizeof(*s) - sizeof(s->locked));
	if (s->locked)
		munlock(s, sizeof(*s));
	free(s);
	*sp = NULL;
}

/* ---- small tools ------------------------------------------------------ */

static void
say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
