/*
 * log.c - logfmt event lines, one write(2) each.
 *
 * A line is assembled in a stack buffer of LOG_LINE_MAX bytes and handed to
 * the kernel in one write, so lines from different threads never interleave
 * (pipes guarantee that up to PIPE_BUF, which is why the buffer is no larger;
 * files are expected to be opened with O_APPEND). The process-wide settings
 * live in one context struct of atomics: log_init() may run again on reload
 * while workers log, and a reader sees either the old or the new value of
 * each field, never a torn one.
 *
 * Never: allocates, takes a lock, emits more than one line per event, or
 * lets a byte below 0x20 into a line (a value the caller forgot to quote
 * must not be able to forge a second line).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define LOG_LINE_MAX 4096
#define LOG_TRUNC_MARK " truncated=true"

/*
 * The logging context: set by log_init() at start and on reload, read by
 * every thread that logs. ident points at the caller's string, which must
 * outlive logging (in practice a string literal naming the daemon).
 */
static struct log_ctx {
	_Atomic int level;
	_Atomic int fd;
	_Atomic(const char *) ident;
} log_ctx = {
	.level = LL_INFO,
	.fd = 2,
	.ident = NULL,
};

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* line assembly */
static size_t put_prefix(char *line, size_t cap, enum log_level lvl,
    uint64_t sid, const char *event);
static size_t close_truncated(char *line, size_t len, size_t cap);
static void scrub_controls(char *line, size_t len);
static void write_line(int fd, const char *line, size_t len);

/* quoting */
static bool is_bare(unsigned char ch);
static size_t escape_len(unsigned char ch);
static void escape_put(char *dst, unsigned char ch);

void
log_init(const char *ident, enum log_level min, int fd)
{
	atomic_store(&log_ctx.ident, ident);
	atomic_store(&log_ctx.level, (int)min);
	atomic_store(&log_ctx.fd, fd);
}

int
log_level_parse(const char *s)
{
	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
log_event(enum log_level lvl, uint64_t sid, const char *event, const char *fmt,
    ...)
{
	char line[LOG_LINE_MAX];
	size_t len, room;
	va_list ap;
	int n;

	if ((int)lvl >
	    atomic_load_explicit(&log_ctx.level, memory_order_relaxed))
		return;
	/* One byte is always kept back for the newline. */
	room = sizeof(line) - 1;
	len = put_prefix(line, room, lvl, sid, event);
	if (fmt != NULL && len < room - 1) {
		line[len++] = ' ';
		va_start(ap, fmt);
		n = vsnprintf(line + len, room - len, fmt, ap);
		va_end(ap);
		if (n < 0)
			len--;
		else if ((size_t)n >= room - len)
			len = close_truncated(line, room - 1, room);
		else
			len += (size_t)n;
	}
	scrub_controls(line, len);
	line[len++] = '\n';
	write_line(atomic_load_explicit(&log_ctx.fd, memory_order_relaxed),
	    line, len);
}

static size_t
put_prefix(char *line, size_t cap, enum log_level lvl, uint64_t sid,
    const char *event)
{
	const char *ident = atomic_load_explicit(&log_ctx.ident,
	    memory_order_relaxed);
	struct timespec ts;
	struct tm tm;
	char sidbuf[32] = "";
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (ident == NULL)
		ident = program_invocation_short_name;
	if (sid != 0)
		snprintf(sidbuf, sizeof(sidbuf), " sid=%016" PRIx64, sid);
	if ((unsigned)lvl > LL_DEBUG)
		lvl = LL_DEBUG;
	n = snprintf(line, cap,
	    "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s daemon=%s%s "
	    "event=%s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000L, level_names[lvl], ident, sidbuf,
	    event ? event : "-");
	if (n < 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

/*
 * The caller's text did not fit: line holds len bytes of it (cut anywhere,
 * perhaps inside a quoted value or an escape). Cut back far enough to close
 * an open quote and add a marker, so the line still parses as logfmt.
 */
static size_t
close_truncated(char *line, size_t len, size_t cap)
{
	size_t mark = sizeof(LOG_TRUNC_MARK) - 1, keep, i, esc;
	bool quoted = false;

	/* Room for `..."` and the marker, whatever we find. */
	keep = len > cap - mark - 4 ? cap - mark - 4 : len;
	for (i = 0; i < keep; i++) {
		if (line[i] == '"') {
			quoted = !quoted;
		} else if (quoted && line[i] == '\\') {
			/* Never cut an escape in half: drop it whole. */
			esc = i + 1 < len && line[i + 1] == 'x' ? 4 : 2;
			if (i + esc > keep) {
				keep = i;
				break;
			}
			i += esc - 1;
		}
	}
	if (quoted) {
		memcpy(line + keep, "...\"", 4);
		keep += 4;
	}
	memcpy(line + keep, LOG_TRUNC_MARK, mark);
	return keep + mark;
}

static void
scrub_controls(char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
}

static void
write_line(int fd, const char *line, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, line, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere left to report it */
		line += w;
		len -= (size_t)w;
	}
}

static bool
is_bare(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') ||
	    (ch != 0 && strchr("._:/@+-", ch) != NULL);
}

/* Bytes ch takes inside a quoted value. */
static size_t
escape_len(unsigned char ch)
{
	if (ch == '"' || ch == '\\' || ch == '\n' || ch == '\r' || ch == '\t')
		return 2;
	if (ch < 0x20 || ch >= 0x7f)
		return 4;
	return 1;
}

static void
escape_put(char *dst, unsigned char ch)
{
	static const char hex[] = "0123456789abcdef";

	switch (ch) {
	case '"':
	case '\\':
		dst[0] = '\\';
		dst[1] = (char)ch;
		return;
	case '\n':
		memcpy(dst, "\\n", 2);
		return;
	case '\r':
		memcpy(dst, "\\r", 2);
		return;
	case '\t':
		memcpy(dst, "\\t", 2);
		return;
	}
	if (ch < 0x20 || ch >= 0x7f) {
		dst[0] = '\\';
		dst[1] = 'x';
		dst[2] = hex[ch >> 4];
		dst[3] = hex[ch & 0xf];
		return;
	}
	dst[0] = (char)ch;
}

const char *
log_quote(char *dst, size_t cap, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t need = 2, pos, i, e;
	bool bare;

	if (cap == 0)
		return dst;
	if (s == NULL)
		n = 0;
	else if (n == (size_t)-1)
		n = strlen(s);
	bare = n > 0;
	for (i = 0; i < n; i++) {
		bare = bare && is_bare(u[i]);
		need += escape_len(u[i]);
	}
	if (bare) {
		if (n < cap) {
			memcpy(dst, s, n);
			dst[n] = '\0';
		} else if (cap > 3) {
			/* "..." is itself bare, so the value stays bare. */
			memcpy(dst, s, cap - 4);
			memcpy(dst + cap - 4, "...", 4);
		} else {
			dst[0] = '\0';
		}
		return dst;
	}
	if (cap < 3) {
		dst[0] = '\0';
		return dst;
	}
	dst[0] = '"';
	pos = 1;
	if (need < cap) {
		for (i = 0; i < n; i++) {
			escape_put(dst + pos, u[i]);
			pos += escape_len(u[i]);
		}
	} else {
		/* Keep room for `..."` and the NUL. */
		for (i = 0; i < n; i++) {
			e = escape_len(u[i]);
			if (pos + e + 5 > cap)
				break;
			escape_put(dst + pos, u[i]);
			pos += e;
		}
		if (pos + 5 <= cap) {
			memcpy(dst + pos, "...", 3);
			pos += 3;
		}
	}
	dst[pos++] = '"';
	dst[pos] = '\0';
	return dst;
}

void
fatal(const char *fmt, ...)
{
	char msg[1024], quoted[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_event(LL_ERROR, 0, "fatal", "error=%s",
	    log_quote(quoted, sizeof(quoted), msg, (size_t)-1));
	exit(1);
}
