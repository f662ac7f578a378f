/*
 * config.h - typed, validated configuration on top of libconfig.
 *
 * A daemon describes its configuration as tables of struct cfg_field (name,
 * type, where to store it in a C struct, bounds, default). cfg_load() parses
 * the file with libconfig, walks the tables and fills the struct. Every
 * error names file:line, the key's full path and what a good value looks
 * like; unknown keys are errors (with a "did you mean" when close), so a
 * typo never silently falls back to a default.
 *
 * Value syntax beyond libconfig's own: durations are strings with a unit
 * ("500ms", "30s", "5m", "2h", "1d") or plain integers meaning seconds;
 * sizes are strings ("64k", "10M", "1G", binary units) or integers in
 * bytes; addresses are "host:port" with a numeric IPv4 host, "[v6]:port" or
 * "*:port" (never resolved: start-up must not depend on DNS); networks
 * are "10.0.0.0/8" or "::1" strings with no host bits below the prefix.
 *
 * Everything cfg_load() allocates (strings, list arrays) belongs to the
 * filled struct and is released with cfg_free() using the same table.
 */
#ifndef RG_CORE_CONFIG_H
#define RG_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum cfg_type {
	CFG_BOOL,     /* bool */
	CFG_INT,      /* int64_t, bounds min..max */
	CFG_STRING,   /* char * (NULL when absent and no default) */
	CFG_DURATION, /* uint64_t milliseconds, bounds in ms */
	CFG_SIZE,     /* uint64_t bytes, bounds in bytes */
	CFG_ENUM,     /* int: index into choices */
	CFG_ADDR,     /* struct cfg_addr */
	CFG_STRLIST,  /* char ** + unsigned count at count_offset */
	CFG_NETLIST,  /* struct net * (core/net.h) + unsigned count at
		       * count_offset: "10.0.0.0/8" strings, each checked */
	CFG_GROUP,    /* nested struct at offset, fields in sub */
	CFG_LIST,     /* list of groups: elem_size each, array pointer at
		       * offset, unsigned count at count_offset */
	CFG_LOC,      /* struct cfg_loc: where the enclosing group is */
};

#define CFG_REQUIRED 0x1

struct cfg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64]; /* as written, for logs */
};

struct cfg_loc {
	const char *file; /* points into the struct's own storage */
	int line;
};

struct cfg_field {
	const char *name;
	enum cfg_type type;
	size_t offset;
	unsigned flags;
	const char *def;  /* default in file syntax ("30s", "true", "64k") */
	int64_t min, max; /* INT/DURATION/SIZE; both 0 = unbounded */
	const char *const *choices;  /* ENUM, NULL-terminated */
	const struct cfg_field *sub; /* GROUP/LIST, {NULL}-terminated */
	size_t elem_size;	     /* LIST */
	size_t count_offset;	     /* LIST/STRLIST */
	const char *hint; /* what a good value looks like, shown on error */
};

struct cfg_error {
	char msg[512]; /* "file:line: key 'a.b': reason; hint" */
};

/* Parse path into out (zeroed first) following fields. Returns 0, or -1
 * with err filled. On failure out holds nothing that needs freeing. */
int cfg_load(const char *path, const struct cfg_field *fields, void *out,
    struct cfg_error *err);

/* Release what cfg_load() allocated inside out. */
void cfg_free(const struct cfg_field *fields, void *out);

/* For the daemon's own cross-field checks: format an error at loc. */
void cfg_error_at(struct cfg_error *err, const struct cfg_loc *loc,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Value parsers, exposed for tests and for command-line overrides.
 * Return 0 or -1. */
int cfg_parse_duration(const char *s, uint64_t *ms_r);
int cfg_parse_size(const char *s, uint64_t *bytes_r);
int cfg_parse_addr(const char *s, struct cfg_addr *a);

#endif
