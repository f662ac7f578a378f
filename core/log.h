/*
 * log.h - structured logging: one line per event, logfmt.
 *
 *   ts=2026-11-23T09:54:04.123Z level=info daemon=ringgate sid=0f3a9c1e22b04d17
 *   event=conn.open listener=imaps client=127.0.0.1:53422
 *
 * Callers pass "key=value" pairs through a printf format. Anything that came
 * from a peer (user names, commands, SNI) must go through log_quote() so a
 * hostile value cannot forge keys or lines. Secrets are never passed here.
 * Writing is one write(2) per line, safe from any thread.
 */
#ifndef RG_CORE_LOG_H
#define RG_CORE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LL_ERROR = 0, LL_WARN, LL_INFO, LL_DEBUG };

/* Set up logging. ident is the daemon name; fd is where lines go (stderr or
 * an opened log file; the caller owns it). May be called again on reload. */
void log_init(const char *ident, enum log_level min, int fd);

/* Parse "error", "warn", "info", "debug". Returns the level or -1. */
int log_level_parse(const char *s);

/* Emit one event. sid 0 means "no session" (the key is left out). fmt
 * may be NULL for an event with no further keys. */
void log_event(enum log_level lvl, uint64_t sid, const char *event,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_error(sid, ev, ...) log_event(LL_ERROR, sid, ev, __VA_ARGS__)
#define log_warn(sid, ev, ...) log_event(LL_WARN, sid, ev, __VA_ARGS__)
#define log_info(sid, ev, ...) log_event(LL_INFO, sid, ev, __VA_ARGS__)
#define log_debug(sid, ev, ...) log_event(LL_DEBUG, sid, ev, __VA_ARGS__)

/* Quote s (at most n bytes, n may be (size_t)-1 for NUL-terminated) for a
 * logfmt value into dst (cap bytes, always NUL-terminated, truncated with
 * "..." if needed). Returns dst. Control bytes and quotes are escaped. */
const char *log_quote(char *dst, size_t cap, const char *s, size_t n);

/* Start-up and broken-invariant failures only: log at error and exit(1). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
