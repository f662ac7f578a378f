/*
 * config.c - typed, validated configuration on top of libconfig.
 *
 * libconfig does the lexing and gives us a tree of settings with line
 * numbers; everything above that is ours. cfg_load() walks the caller's
 * field tables against that tree: every key in the file must match a field
 * (unknown keys are errors, with a "did you mean" when a known key is within
 * two edits), every value is converted by the parser for its field's type,
 * and a field absent from the file takes its default, which is written in
 * file syntax and goes through the very same parser. The result is a
 * filled C struct whose strings and arrays are owned by that struct and
 * released by cfg_free() walking the same table.
 *
 * Error messages are for an administrator reading them at 3 am: each names
 * FILE:LINE, the key's full path (like "relay[0].listen" or
 * "tls.certificates[1].key"), what was written and what a good value looks
 * like.
 *
 * Relies on libconfig 1.5: settings carry source lines, and a setting's
 * source file is NULL for the main file (included files have their name).
 * libconfig 1.5 silently truncates integers beyond 32 bits unless written
 * with an L suffix, so large sizes are best written as strings ("8G").
 *
 * Never: resolves a host name (start-up must not depend on DNS), accepts a
 * value of the wrong type by converting it, or leaves anything allocated in
 * the caller's struct after a failed load.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"

#define PATH_MAX_KEY 256 /* a key path like "tls.certificates[1].key" */
#define WHY_MAX 160	 /* the reason a value was refused */
#define SHOWN_MAX 96	 /* a value as written, quoted for messages */
#define SUGGEST_DIST 2	 /* edits allowed for "did you mean" */
#define NAME_MAX_CMP 64	 /* longer names are never suggested */

/*
 * One walk over the file. path is the file as the caller named it: libconfig
 * reports NULL as the source of settings in the main file.
 */
struct walk {
	const char *path;
	struct cfg_error *err;
};

/*
 * A value to convert, from the file or from a field's default. For file
 * values s is the setting and type its libconfig type; for defaults s is
 * NULL, type says how the default text was read and anchor is the group the
 * field would have been in (for the error's location).
 */
struct value {
	const config_setting_t *s;
	const config_setting_t *anchor;
	int type;
	long long i;
	const char *str;
	bool b;
	char shown[SHOWN_MAX];
};

/* locations and messages */
static int open_error(struct cfg_error *err, const char *path, int e,
    FILE *fp);
static void verror_at(struct cfg_error *err, const char *file, int line,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static int error_setting(struct walk *w, const config_setting_t *s,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad_value(struct walk *w, const struct value *v, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static const char *setting_file(const struct walk *w,
    const config_setting_t *s);
static void show_setting(const config_setting_t *s, char *buf, size_t n);
static void show_text(const char *text, char *buf, size_t n);
static const char *type_hint(const struct cfg_field *f, char *buf, size_t n);
static void key_path(char *buf, const char *parent, const char *name);
static void index_path(char *buf, const char *parent, unsigned i);

/* suggestions for unknown keys */
static unsigned edit_distance(const char *a, const char *b);
static const struct cfg_field *closest_field(const struct cfg_field *fields,
    const char *name);
static void known_keys(const struct cfg_field *fields, char *buf, size_t n);

/* the walk */
static void clear_fields(const struct cfg_field *fields, char *base);
static int load_group(struct walk *w, const config_setting_t *g,
    const config_setting_t *anchor, const struct cfg_field *fields,
    char *base, const char *gpath);
static int check_unknown(struct walk *w, const config_setting_t *g,
    const struct cfg_field *fields, const char *gpath);
static int load_field(struct walk *w, const struct cfg_field *f,
    const config_setting_t *s, const config_setting_t *anchor, char *base,
    const char *path);
static int load_missing(struct walk *w, const struct cfg_field *f,
    const config_setting_t *anchor, char *base, const char *path);
static int load_loc(struct walk *w, const config_setting_t *anchor,
    struct cfg_loc *loc);
static int load_list(struct walk *w, const struct cfg_field *f,
    const config_setting_t *s, char *base, const char *path);
static int load_strlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *s, char *base, const char *path);
static int default_strlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *anchor, char *base);

/* scalar values: one converter per type, fed by file values and defaults */
static void value_of_setting(struct value *v, const config_setting_t *s);
static int value_of_default(struct value *v, const struct cfg_field *f,
    const config_setting_t *anchor);
static int store_scalar(struct walk *w, const struct cfg_field *f,
    const struct value *v, char *base, const char *path);
static int store_int(struct walk *w, const struct cfg_field *f,
    const struct value *v, int64_t *dst, const char *path);
static int store_duration(struct walk *w, const struct cfg_field *f,
    const struct value *v, uint64_t *dst, const char *path);
static int store_size(struct walk *w, const struct cfg_field *f,
    const struct value *v, uint64_t *dst, const char *path);
static int store_enum(struct walk *w, const struct cfg_field *f,
    const struct value *v, int *dst, const char *path);
static int store_addr(struct walk *w, const struct cfg_field *f,
    const struct value *v, struct cfg_addr *dst, const char *path);
static int check_bounds(struct walk *w, const struct cfg_field *f,
    const struct value *v, uint64_t x, const char *path);
static void format_amount(const struct cfg_field *f, uint64_t x, char *buf,
    size_t n);

/* text parsers with a reason on failure */
static int parse_duration(const char *s, uint64_t *ms_r, char *why);
static int parse_size(const char *s, uint64_t *bytes_r, char *why);
static int parse_addr(const char *s, struct cfg_addr *a, char *why);
static int parse_number(const char **sp, uint64_t *n_r, char *why);
static int parse_unit(const char **sp, char *unit, size_t n, char *why);
static int parse_port(const char *s, in_port_t *port_r, char *why);

/* cleanup */
static void free_fields(const struct cfg_field *fields, char *base);

static const char *const duration_units[] = { "ms", "s", "m", "h", "d" };
static const uint64_t duration_ms[] = { 1, 1000, 60000, 3600000, 86400000 };

/* ---------------------------------------------------------------- public */

int
cfg_load(const char *path, const struct cfg_field *fields, void *out,
    struct cfg_error *err)
{
	struct walk w = { .path = path, .err = err };
	config_t c;
	struct stat st;
	char *dir, *slash;
	FILE *fp;
	int rc;

	err->msg[0] = '\0';
	clear_fields(fields, out);
	/* Opened here rather than by config_read_file() so that errno is
	 * still ours to report, and a directory is refused instead of being
	 * read as an empty file that would load all defaults. */
	fp = fopen(path, "r");
	if (fp == NULL)
		return open_error(err, path, errno, NULL);
	if (fstat(fileno(fp), &st) == -1)
		return open_error(err, path, errno, fp);
	if (S_ISDIR(st.st_mode))
		return open_error(err, path, EISDIR, fp);
	config_init(&c);
	/* No autoconversion: a value of the wrong type is an error. */
	config_set_options(&c, 0);
	/* @include paths are relative to the including file's directory. */
	dir = strdup(path);
	if (dir != NULL && (slash = strrchr(dir, '/')) != NULL) {
		/* "/x.conf" is in "/", not in "". */
		slash[slash == dir ? 1 : 0] = '\0';
		config_set_include_dir(&c, dir);
	}
	free(dir);
	rc = config_read(&c, fp);
	fclose(fp);
	if (rc != CONFIG_TRUE) {
		const char *file = config_error_file(&c);
		const char *text = config_error_text(&c);

		if (text == NULL || strcmp(text, "syntax error") == 0)
			text = "";
		snprintf(err->msg, sizeof(err->msg), "%s:%d: syntax error%s%s",
		    file != NULL ? file : path, config_error_line(&c),
		    *text != '\0' ? ": " : "", text);
		config_destroy(&c);
		return -1;
	}
	rc = load_group(&w, config_root_setting(&c), config_root_setting(&c),
	    fields, out, "");
	config_destroy(&c);
	if (rc == -1) {
		cfg_free(fields, out);
		return -1;
	}
	return 0;
}

void
cfg_free(const struct cfg_field *fields, void *out)
{
	free_fields(fields, out);
}

void
cfg_error_at(struct cfg_error *err, const struct cfg_loc *loc,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror_at(err, loc != NULL ? loc->file : NULL,
	    loc != NULL ? loc->line : 0, fmt, ap);
	va_end(ap);
}

int
cfg_parse_duration(const char *s, uint64_t *ms_r)
{
	char why[WHY_MAX];

	return parse_duration(s, ms_r, why);
}

int
cfg_parse_size(const char *s, uint64_t *bytes_r)
{
	char why[WHY_MAX];

	return parse_size(s, bytes_r, why);
}

int
cfg_parse_addr(const char *s, struct cfg_addr *a)
{
	char why[WHY_MAX];

	return parse_addr(s, a, why);
}

/* ---------------------------------------------------- locations, messages */

static int
open_error(struct cfg_error *err, const char *path, int e, FILE *fp)
{
	if (fp != NULL)
		fclose(fp);
	snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s", path,
	    strerror(e));
	return -1;
}

/* "file:line: " when the line is known, "file: " for the file as a whole
 * (the root group has line 0), nothing without a file. */
static void
verror_at(struct cfg_error *err, const char *file, int line, const char *fmt,
    va_list ap)
{
	size_t used = 0;
	int n;

	if (file != NULL && line > 0)
		n = snprintf(err->msg, sizeof(err->msg), "%s:%d: ", file, line);
	else if (file != NULL)
		n = snprintf(err->msg, sizeof(err->msg), "%s: ", file);
	else
		n = 0;
	if (n > 0)
		used = (size_t)n < sizeof(err->msg) ? (size_t)n :
						      sizeof(err->msg) - 1;
	vsnprintf(err->msg + used, sizeof(err->msg) - used, fmt, ap);
}

static int
error_setting(struct walk *w, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror_at(w->err, setting_file(w, s),
	    s != NULL ? (int)config_setting_source_line(s) : 0, fmt, ap);
	va_end(ap);
	return -1;
}

/* "FILE:LINE: 'path' = shown: <reason>". A default that fails its own
 * parser is a bug in the table; the message says so rather than blaming
 * the file. */
static int
bad_value(struct walk *w, const struct value *v, const char *path,
    const char *fmt, ...)
{
	char reason[WHY_MAX * 3];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (v->s != NULL)
		return error_setting(w, v->s, "'%s' = %s: %s", path, v->shown,
		    reason);
	return error_setting(w, v->anchor,
	    "built-in default of '%s' = %s is invalid (a bug): %s", path,
	    v->shown, reason);
}

static const char *
setting_file(const struct walk *w, const config_setting_t *s)
{
	const char *file = s != NULL ? config_setting_source_file(s) : NULL;

	return file != NULL ? file : w->path;
}

/* The value as the administrator wrote it, short enough for one line. */
static void
show_setting(const config_setting_t *s, char *buf, size_t n)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		show_text(config_setting_get_string(s), buf, n);
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(buf, n, "%lld", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		snprintf(buf, n, "%g", config_setting_get_float(s));
		break;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, n, "%s",
		    config_setting_get_bool(s) ? "true" : "false");
		break;
	case CONFIG_TYPE_GROUP:
		snprintf(buf, n, "{ ... }");
		break;
	case CONFIG_TYPE_LIST:
		snprintf(buf, n, "( ... )");
		break;
	default:
		snprintf(buf, n, "[ ... ]");
		break;
	}
}

/* Quoted, cut at a sane length, control bytes replaced so that a value
 * cannot break the message (and the log line it ends up in) in two. */
static void
show_text(const char *text, char *buf, size_t n)
{
	size_t len = strlen(text), max = n - 6, i;

	snprintf(buf, n, "\"%.*s%s\"", (int)(len > max ? max - 3 : len), text,
	    len > max ? "..." : "");
	for (i = 1; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
}

/* What a good value looks like: the field's own words when it has them. */
static const char *
type_hint(const struct cfg_field *f, char *buf, size_t n)
{
	size_t used;

	if (f->hint != NULL)
		return f->hint;
	switch (f->type) {
	case CFG_BOOL:
		return "true or false (without quotes)";
	case CFG_INT:
		return "a whole number like 4 (without quotes)";
	case CFG_STRING:
		return "a string in double quotes";
	case CFG_DURATION:
		return "a duration like \"30s\", \"5m\" or a number of seconds";
	case CFG_SIZE:
		return "a size like \"64k\", \"10M\", \"1G\" or a number of "
		       "bytes";
	case CFG_ENUM:
		used = (size_t)snprintf(buf, n, "one of:");
		for (const char *const *c = f->choices; *c != NULL; c++) {
			if (used >= n)
				break;
			used += (size_t)snprintf(buf + used, n - used, "%s %s",
			    c == f->choices ? "" : ",", *c);
		}
		return buf;
	case CFG_ADDR:
		return "a numeric address like \"127.0.0.1:993\", "
		       "\"[::1]:993\" or \"*:993\"";
	case CFG_STRLIST:
		return "a list of strings like [ \"a\", \"b\" ]";
	case CFG_GROUP:
		return "a group like { key = value; }";
	case CFG_LIST:
		return "a list of groups like ( { ... }, { ... } )";
	default:
		return "something else";
	}
}

/* Paths are for messages only: a path longer than the buffer is cut. */
static void
key_path(char *buf, const char *parent, const char *name)
{
	if (*parent == '\0')
		snprintf(buf, PATH_MAX_KEY, "%.200s", name);
	else
		snprintf(buf, PATH_MAX_KEY, "%.200s.%.40s", parent, name);
}

static void
index_path(char *buf, const char *parent, unsigned i)
{
	snprintf(buf, PATH_MAX_KEY, "%.200s[%u]", parent, i);
}

/* ----------------------------------------------------------- suggestions */

/*
 * Optimal string alignment distance: insertions, deletions, substitutions
 * and swaps of neighbours each cost one, so "lisetn" is one edit from
 * "listen". Case differences count too, but cheaply: "Listen" is one.
 */
static unsigned
edit_distance(const char *a, const char *b)
{
	unsigned d[NAME_MAX_CMP + 1][NAME_MAX_CMP + 1];
	size_t la = strlen(a), lb = strlen(b), i, j;

	if (la > NAME_MAX_CMP || lb > NAME_MAX_CMP)
		return UINT_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned best = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* The nearest known key, if near enough to be a typo of it. A two-letter
 * name is two edits from every other two-letter name, so the distance
 * must also be smaller than the name. */
static const struct cfg_field *
closest_field(const struct cfg_field *fields, const char *name)
{
	const struct cfg_field *best = NULL;
	unsigned best_d = SUGGEST_DIST + 1;

	for (const struct cfg_field *f = fields; f->name != NULL; f++) {
		unsigned dist;

		if (f->type == CFG_LOC || *f->name == '\0')
			continue;
		dist = edit_distance(name, f->name);
		if (dist < best_d && dist < strlen(name)) {
			best = f;
			best_d = dist;
		}
	}
	return best;
}

static void
known_keys(const struct cfg_field *fields, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (const struct cfg_field *f = fields; f->name != NULL; f++) {
		if (f->type == CFG_LOC || *f->name == '\0')
			continue;
		if (used >= n)
			break;
		used += (size_t)snprintf(buf + used, n - used, "%s%s",
		    used == 0 ? "" : ", ", f->name);
	}
}

/* -------------------------------------------------------------- the walk */

/* Every field the table describes starts out zero, so that cfg_free() is
 * safe on a struct whatever point a failed load reached. */
static void
clear_fields(const struct cfg_field *fields, char *base)
{
	for (const struct cfg_field *f = fields; f->name != NULL; f++) {
		char *p = base + f->offset;

		switch (f->type) {
		case CFG_BOOL:
			*(bool *)p = false;
			break;
		case CFG_INT:
			*(int64_t *)p = 0;
			break;
		case CFG_STRING:
			*(char **)p = NULL;
			break;
		case CFG_DURATION:
		case CFG_SIZE:
			*(uint64_t *)p = 0;
			break;
		case CFG_ENUM:
			*(int *)p = 0;
			break;
		case CFG_ADDR:
			memset(p, 0, sizeof(struct cfg_addr));
			break;
		case CFG_STRLIST:
		case CFG_LIST:
			*(void **)p = NULL;
			*(unsigned *)(base + f->count_offset) = 0;
			break;
		case CFG_GROUP:
			clear_fields(f->sub, p);
			break;
		case CFG_LOC:
			memset(p, 0, sizeof(struct cfg_loc));
			break;
		}
	}
}

/*
 * Fill one group's fields from g, which is NULL when the group is absent
 * from the file (its fields then take their defaults). anchor is the
 * nearest group that is present, for the location of errors about keys
 * that are missing. gpath is the group's key path, "" for the root.
 */
static int
load_group(struct walk *w, const config_setting_t *g,
    const config_setting_t *anchor, const struct cfg_field *fields,
    char *base, const char *gpath)
{
	char path[PATH_MAX_KEY];

	if (g != NULL && check_unknown(w, g, fields, gpath) == -1)
		return -1;
	for (const struct cfg_field *f = fields; f->name != NULL; f++) {
		const config_setting_t *s = NULL;

		if (f->type == CFG_LOC) {
			if (load_loc(w, anchor,
				(struct cfg_loc *)(base + f->offset)) == -1)
				return -1;
			continue;
		}
		if (g != NULL)
			s = config_setting_get_member(g, f->name);
		key_path(path, gpath, f->name);
		if (load_field(w, f, s, anchor, base, path) == -1)
			return -1;
	}
	return 0;
}

static int
check_unknown(struct walk *w, const config_setting_t *g,
    const struct cfg_field *fields, const char *gpath)
{
	char path[PATH_MAX_KEY], keys[256];
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		const struct cfg_field *f, *near;

		for (f = fields; f->name != NULL; f++)
			if (f->type != CFG_LOC && *f->name != '\0' &&
			    strcmp(f->name, name) == 0)
				break;
		if (f->name != NULL)
			continue;
		key_path(path, gpath, name);
		near = closest_field(fields, name);
		if (near != NULL)
			return error_setting(w, s,
			    "unknown key '%s'; did you mean '%s'?", path,
			    near->name);
		known_keys(fields, keys, sizeof(keys));
		if (keys[0] == '\0')
			return error_setting(w, s,
			    "unknown key '%s'; this group takes no keys", path);
		return error_setting(w, s,
		    "unknown key '%s'; known keys here are: %s", path, keys);
	}
	return 0;
}

static int
load_field(struct walk *w, const struct cfg_field *f,
    const config_setting_t *s, const config_setting_t *anchor, char *base,
    const char *path)
{
	char hint[256], shown[SHOWN_MAX];
	struct value v;

	if (s == NULL)
		return load_missing(w, f, anchor, base, path);
	switch (f->type) {
	case CFG_GROUP:
		if (!config_setting_is_group(s)) {
			show_setting(s, shown, sizeof(shown));
			return error_setting(w, s, "'%s' = %s: must be %s",
			    path, shown, type_hint(f, hint, sizeof(hint)));
		}
		return load_group(w, s, s, f->sub, base + f->offset, path);
	case CFG_LIST:
		return load_list(w, f, s, base, path);
	case CFG_STRLIST:
		return load_strlist(w, f, s, base, path);
	default:
		value_of_setting(&v, s);
		return store_scalar(w, f, &v, base, path);
	}
}

/* A key absent from the file: an absent group still gets its defaults. */
static int
load_missing(struct walk *w, const struct cfg_field *f,
    const config_setting_t *anchor, char *base, const char *path)
{
	char hint[256];
	struct value v;

	if (f->flags & CFG_REQUIRED)
		return error_setting(w, anchor,
		    "missing required key '%s' (%s)", path,
		    type_hint(f, hint, sizeof(hint)));
	if (f->type == CFG_GROUP)
		return load_group(w, NULL, anchor, f->sub, base + f->offset,
		    path);
	if (f->def == NULL || f->type == CFG_LIST)
		return 0;
	if (f->type == CFG_STRLIST)
		return default_strlist(w, f, anchor, base);
	if (value_of_default(&v, f, anchor) == -1)
		return bad_value(w, &v, path, "must be %s",
		    type_hint(f, hint, sizeof(hint)));
	return store_scalar(w, f, &v, base, path);
}

/* The file name is copied: libconfig's strings die with the config_t. */
static int
load_loc(struct walk *w, const config_setting_t *anchor, struct cfg_loc *loc)
{
	char *file = strdup(setting_file(w, anchor));

	if (file == NULL)
		return error_setting(w, anchor, "out of memory");
	free((char *)loc->file);
	loc->file = file;
	loc->line = (int)config_setting_source_line(anchor);
	return 0;
}

/*
 * A list of groups. The array and its count are stored before the elements
 * are filled, so that a failure halfway leaves cfg_free() a consistent
 * picture: elements not reached yet are still zero.
 */
static int
load_list(struct walk *w, const struct cfg_field *f,
    const config_setting_t *s, char *base, const char *path)
{
	char hint[256], shown[SHOWN_MAX], epath[PATH_MAX_KEY];
	unsigned n, i;
	char *arr;

	/* libconfig has no empty list literal distinct from "[]". */
	if (!config_setting_is_list(s) &&
	    !(config_setting_is_array(s) && config_setting_length(s) == 0)) {
		show_setting(s, shown, sizeof(shown));
		return error_setting(w, s, "'%s' = %s: must be %s", path, shown,
		    type_hint(f, hint, sizeof(hint)));
	}
	n = (unsigned)config_setting_length(s);
	if (n == 0) {
		if (f->flags & CFG_REQUIRED)
			return error_setting(w, s,
			    "'%s' is empty; it needs at least one entry like "
			    "{ ... }", path);
		return 0;
	}
	arr = calloc(n, f->elem_size);
	if (arr == NULL)
		return error_setting(w, s, "out of memory");
	*(char **)(base + f->offset) = arr;
	*(unsigned *)(base + f->count_offset) = n;
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);

		index_path(epath, path, i);
		if (!config_setting_is_group(e)) {
			show_setting(e, shown, sizeof(shown));
			return error_setting(w, e,
			    "'%s' = %s: each entry of '%s' must be a group "
			    "like { key = value; }",
			    epath, shown, path);
		}
		if (load_group(w, e, e, f->sub, arr + i * f->elem_size,
			epath) == -1)
			return -1;
	}
	return 0;
}

/* An array or list of strings; a lone string is taken as a list of one,
 * since that is what anyone writing it means. */
static int
load_strlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *s, char *base, const char *path)
{
	char hint[256], shown[SHOWN_MAX], epath[PATH_MAX_KEY];
	bool lone = config_setting_type(s) == CONFIG_TYPE_STRING;
	unsigned n, i;
	char **v;

	if (!lone && !config_setting_is_array(s) &&
	    !config_setting_is_list(s)) {
		show_setting(s, shown, sizeof(shown));
		return error_setting(w, s, "'%s' = %s: must be %s", path, shown,
		    type_hint(f, hint, sizeof(hint)));
	}
	n = lone ? 1 : (unsigned)config_setting_length(s);
	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (v == NULL)
		return error_setting(w, s, "out of memory");
	*(char ***)(base + f->offset) = v;
	*(unsigned *)(base + f->count_offset) = n;
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    lone ? s : config_setting_get_elem(s, i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			index_path(epath, path, i);
			show_setting(e, shown, sizeof(shown));
			return error_setting(w, e,
			    "'%s' = %s: must be a string in double quotes; "
			    "'%s' is %s",
			    epath, shown, path,
			    type_hint(f, hint, sizeof(hint)));
		}
		v[i] = strdup(config_setting_get_string(e));
		if (v[i] == NULL)
			return error_setting(w, e, "out of memory");
	}
	return 0;
}

/* A string list's default is written as its items separated by commas
 * and/or spaces: "imap, pop3". */
static int
default_strlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *anchor, char *base)
{
	static const char sep[] = ", \t";
	const char *p;
	unsigned n = 0, i;
	char **v;

	for (p = f->def + strspn(f->def, sep); *p != '\0';
	    p += strcspn(p, sep), p += strspn(p, sep))
		n++;
	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (v == NULL)
		return error_setting(w, anchor, "out of memory");
	*(char ***)(base + f->offset) = v;
	*(unsigned *)(base + f->count_offset) = n;
	p = f->def + strspn(f->def, sep);
	for (i = 0; i < n; i++) {
		size_t len = strcspn(p, sep);

		v[i] = strndup(p, len);
		if (v[i] == NULL)
			return error_setting(w, anchor, "out of memory");
		p += len;
		p += strspn(p, sep);
	}
	return 0;
}

/* ---------------------------------------------------------- scalar values */

static void
value_of_setting(struct value *v, const config_setting_t *s)
{
	memset(v, 0, sizeof(*v));
	v->s = s;
	v->type = config_setting_type(s);
	switch (v->type) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v->i = config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_STRING:
		v->str = config_setting_get_string(s);
		break;
	case CONFIG_TYPE_BOOL:
		v->b = config_setting_get_bool(s) != 0;
		break;
	}
	show_setting(s, v->shown, sizeof(v->shown));
}

/*
 * Read a default as the file would have it: "true"/"false" for BOOL, a
 * bare integer for INT, and a string for every other type (which is also
 * how durations and sizes written as integers arrive, as strings of
 * digits, meaning seconds and bytes just as in the file).
 */
static int
value_of_default(struct value *v, const struct cfg_field *f,
    const config_setting_t *anchor)
{
	char *end;

	memset(v, 0, sizeof(*v));
	v->anchor = anchor;
	v->str = f->def;
	v->type = CONFIG_TYPE_STRING;
	show_text(f->def, v->shown, sizeof(v->shown));
	if (f->type == CFG_BOOL) {
		v->type = CONFIG_TYPE_BOOL;
		if (strcmp(f->def, "true") == 0)
			v->b = true;
		else if (strcmp(f->def, "false") != 0)
			return -1;
	} else if (f->type == CFG_INT) {
		v->type = CONFIG_TYPE_INT64;
		errno = 0;
		v->i = strtoll(f->def, &end, 0);
		if (errno != 0 || end == f->def || *end != '\0')
			return -1;
	}
	return 0;
}

static int
store_scalar(struct walk *w, const struct cfg_field *f, const struct value *v,
    char *base, const char *path)
{
	char hint[256];
	char *p = base + f->offset, *copy;

	switch (f->type) {
	case CFG_BOOL:
		if (v->type != CONFIG_TYPE_BOOL)
			break;
		*(bool *)p = v->b;
		return 0;
	case CFG_INT:
		return store_int(w, f, v, (int64_t *)p, path);
	case CFG_STRING:
		if (v->type != CONFIG_TYPE_STRING)
			break;
		copy = strdup(v->str);
		if (copy == NULL)
			return bad_value(w, v, path, "out of memory");
		free(*(char **)p);
		*(char **)p = copy;
		return 0;
	case CFG_DURATION:
		return store_duration(w, f, v, (uint64_t *)p, path);
	case CFG_SIZE:
		return store_size(w, f, v, (uint64_t *)p, path);
	case CFG_ENUM:
		return store_enum(w, f, v, (int *)p, path);
	case CFG_ADDR:
		return store_addr(w, f, v, (struct cfg_addr *)p, path);
	default:
		break;
	}
	return bad_value(w, v, path, "must be %s",
	    type_hint(f, hint, sizeof(hint)));
}

static int
store_int(struct walk *w, const struct cfg_field *f, const struct value *v,
    int64_t *dst, const char *path)
{
	char hint[256];

	if (v->type != CONFIG_TYPE_INT && v->type != CONFIG_TYPE_INT64)
		return bad_value(w, v, path, "must be %s",
		    type_hint(f, hint, sizeof(hint)));
	if ((f->min != 0 || f->max != 0) &&
	    (v->i < f->min || (v->i > f->max && f->max >= f->min))) {
		if (f->max < f->min)
			return bad_value(w, v, path,
			    "must be at least %" PRId64, f->min);
		return bad_value(w, v, path,
		    "must be between %" PRId64 " and %" PRId64, f->min,
		    f->max);
	}
	*dst = v->i;
	return 0;
}

static int
store_duration(struct walk *w, const struct cfg_field *f,
    const struct value *v, uint64_t *dst, const char *path)
{
	char hint[256], why[WHY_MAX];
	uint64_t ms;

	if (v->type == CONFIG_TYPE_INT || v->type == CONFIG_TYPE_INT64) {
		if (v->i < 0)
			return bad_value(w, v, path,
			    "must not be negative; must be %s",
			    type_hint(f, hint, sizeof(hint)));
		if ((unsigned long long)v->i > UINT64_MAX / 1000)
			return bad_value(w, v, path, "too large");
		ms = (uint64_t)v->i * 1000;
	} else if (v->type == CONFIG_TYPE_STRING) {
		if (parse_duration(v->str, &ms, why) == -1)
			return bad_value(w, v, path, "%s; must be %s", why,
			    type_hint(f, hint, sizeof(hint)));
	} else {
		return bad_value(w, v, path, "must be %s",
		    type_hint(f, hint, sizeof(hint)));
	}
	if (check_bounds(w, f, v, ms, path) == -1)
		return -1;
	*dst = ms;
	return 0;
}

static int
store_size(struct walk *w, const struct cfg_field *f, const struct value *v,
    uint64_t *dst, const char *path)
{
	char hint[256], why[WHY_MAX];
	uint64_t bytes;

	if (v->type == CONFIG_TYPE_INT || v->type == CONFIG_TYPE_INT64) {
		if (v->i < 0)
			return bad_value(w, v, path,
			    "must not be negative; must be %s",
			    type_hint(f, hint, sizeof(hint)));
		bytes = (uint64_t)v->i;
	} else if (v->type == CONFIG_TYPE_STRING) {
		if (parse_size(v->str, &bytes, why) == -1)
			return bad_value(w, v, path, "%s; must be %s", why,
			    type_hint(f, hint, sizeof(hint)));
	} else {
		return bad_value(w, v, path, "must be %s",
		    type_hint(f, hint, sizeof(hint)));
	}
	if (check_bounds(w, f, v, bytes, path) == -1)
		return -1;
	*dst = bytes;
	return 0;
}

/* Choices match without regard to case: "INFO" and "tlsv1.3" mean what
 * they obviously mean, and no table has two choices differing only in
 * case. */
static int
store_enum(struct walk *w, const struct cfg_field *f, const struct value *v,
    int *dst, const char *path)
{
	char hint[256];

	if (v->type == CONFIG_TYPE_STRING) {
		for (int i = 0; f->choices[i] != NULL; i++) {
			if (strcasecmp(v->str, f->choices[i]) == 0) {
				*dst = i;
				return 0;
			}
		}
	}
	/* The hint of an ENUM is always its choices: a field's own hint
	 * cannot list them better, and an old one could list them wrong. */
	{
		struct cfg_field plain = *f;

		plain.hint = NULL;
		return bad_value(w, v, path, "must be %s",
		    type_hint(&plain, hint, sizeof(hint)));
	}
}

static int
store_addr(struct walk *w, const struct cfg_field *f, const struct value *v,
    struct cfg_addr *dst, const char *path)
{
	char hint[256], why[WHY_MAX];

	if (v->type != CONFIG_TYPE_STRING)
		return bad_value(w, v, path, "must be %s",
		    type_hint(f, hint, sizeof(hint)));
	if (parse_addr(v->str, dst, why) == -1)
		return bad_value(w, v, path, "%s; must be %s", why,
		    type_hint(f, hint, sizeof(hint)));
	return 0;
}

/*
 * DURATION and SIZE bounds, told in the value's own units. Both zero means
 * unbounded; a max of zero with a positive min means "at least min".
 */
static int
check_bounds(struct walk *w, const struct cfg_field *f, const struct value *v,
    uint64_t x, const char *path)
{
	uint64_t lo = f->min > 0 ? (uint64_t)f->min : 0;
	uint64_t hi = f->max > 0 ? (uint64_t)f->max : 0;
	bool upper = hi != 0 || f->min <= 0;
	char a[32], b[32];

	if (f->min == 0 && f->max == 0)
		return 0;
	if (x >= lo && (!upper || x <= hi))
		return 0;
	format_amount(f, lo, a, sizeof(a));
	format_amount(f, hi, b, sizeof(b));
	if (!upper)
		return bad_value(w, v, path, "must be at least %s", a);
	return bad_value(w, v, path, "must be between %s and %s", a, b);
}

/* The largest unit that says x exactly: 90000 ms is "90s", 16384 bytes is
 * "16k", so the bound can be pasted back into the file. */
static void
format_amount(const struct cfg_field *f, uint64_t x, char *buf, size_t n)
{
	static const char size_units[] = "kMGT";
	int i;

	if (f->type == CFG_DURATION) {
		for (i = 4; i > 0; i--)
			if (x != 0 && x % duration_ms[i] == 0)
				break;
		snprintf(buf, n, "%" PRIu64 "%s", x / duration_ms[i],
		    duration_units[i]);
		return;
	}
	for (i = 0; x != 0 && x % 1024 == 0 && i < 4; i++)
		x /= 1024;
	if (i == 0)
		snprintf(buf, n, "%" PRIu64 " bytes", x);
	else
		snprintf(buf, n, "%" PRIu64 "%c", x, size_units[i - 1]);
}

/* ----------------------------------------------------------- text parsers */

/*
 * A duration: a plain number of seconds ("30"), or one or more
 * number-and-unit pairs ("500ms", "1h30m") with units ms, s, m, h, d in
 * lower case only ("5M" could as well mean megabytes). No spaces, signs or
 * fractions; the total must fit in 64 bits of milliseconds.
 */
static int
parse_duration(const char *s, uint64_t *ms_r, char *why)
{
	uint64_t total = 0, n, part;
	bool first = true;
	char unit[16];
	size_t i;

	if (*s == '\0') {
		snprintf(why, WHY_MAX, "it is empty");
		return -1;
	}
	while (*s != '\0') {
		if (parse_number(&s, &n, why) == -1)
			return -1;
		if (parse_unit(&s, unit, sizeof(unit), why) == -1)
			return -1;
		if (unit[0] == '\0') {
			if (!first || *s != '\0') {
				snprintf(why, WHY_MAX,
				    "the last number has no unit");
				return -1;
			}
			unit[0] = 's';
			unit[1] = '\0';
		}
		for (i = 0; i < 5; i++)
			if (strcmp(unit, duration_units[i]) == 0)
				break;
		if (i == 5) {
			snprintf(why, WHY_MAX,
			    "unknown unit \"%s\"; units are ms, s, m, h and d, "
			    "in lower case",
			    unit);
			return -1;
		}
		if (__builtin_mul_overflow(n, duration_ms[i], &part) ||
		    __builtin_add_overflow(total, part, &total)) {
			snprintf(why, WHY_MAX, "it is too large");
			return -1;
		}
		first = false;
	}
	*ms_r = total;
	return 0;
}

/*
 * A size: a number of bytes, optionally with a binary multiplier k, m, g
 * or t (either case: 1k = 1024) and an optional "B" or "iB" after it, so
 * "64k", "64K", "64KiB" and "64KB" are the same. A lone "B" means bytes.
 */
static int
parse_size(const char *s, uint64_t *bytes_r, char *why)
{
	static const char mults[] = "kmgt";
	uint64_t n, mult = 1;
	const char *p;
	char unit[16];

	if (*s == '\0') {
		snprintf(why, WHY_MAX, "it is empty");
		return -1;
	}
	if (parse_number(&s, &n, why) == -1 ||
	    parse_unit(&s, unit, sizeof(unit), why) == -1)
		return -1;
	if (*s != '\0') {
		snprintf(why, WHY_MAX, "one number and one unit, please");
		return -1;
	}
	p = unit;
	if (*p != '\0' && (*p | 0x20) != 'b') {
		const char *m = strchr(mults, *p | 0x20);

		if (m == NULL)
			goto bad_unit;
		for (ptrdiff_t k = 0; k <= m - mults; k++)
			mult *= 1024;
		p++;
	}
	if (strcmp(p, "") != 0 && strcmp(p, "B") != 0 &&
	    !(p != unit && strcmp(p, "iB") == 0))
		goto bad_unit;
	if (__builtin_mul_overflow(n, mult, &n)) {
		snprintf(why, WHY_MAX, "it is too large");
		return -1;
	}
	*bytes_r = n;
	return 0;
bad_unit:
	snprintf(why, WHY_MAX,
	    "unknown unit \"%s\"; units are k, M, G and T (binary)", unit);
	return -1;
}

/* Decimal digits at *sp, advancing past them; the reasons name the usual
 * ways a number goes wrong. */
static int
parse_number(const char **sp, uint64_t *n_r, char *why)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (*s == '-') {
		snprintf(why, WHY_MAX, "it must not be negative");
		return -1;
	}
	if (isspace((unsigned char)*s)) {
		snprintf(why, WHY_MAX, "remove the spaces");
		return -1;
	}
	if (!isdigit((unsigned char)*s)) {
		snprintf(why, WHY_MAX, "it must start with a number");
		return -1;
	}
	for (; isdigit((unsigned char)*s); s++) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*s - '0'), &n)) {
			snprintf(why, WHY_MAX, "it is too large");
			return -1;
		}
	}
	if (*s == '.' || *s == ',') {
		snprintf(why, WHY_MAX,
		    "fractions are not supported; use a smaller unit");
		return -1;
	}
	*n_r = n;
	*sp = s;
	return 0;
}

/* The letters after a number. Spaces before a known-looking unit are
 * refused with their own reason, after the unit itself was read, so that
 * "10 parsecs" is told about its unit rather than its space. */
static int
parse_unit(const char **sp, char *unit, size_t n, char *why)
{
	const char *s = *sp, *start;
	bool spaced = false;
	size_t len;

	if (isspace((unsigned char)*s)) {
		spaced = true;
		while (isspace((unsigned char)*s))
			s++;
	}
	start = s;
	while (*s != '\0' && !isdigit((unsigned char)*s) &&
	    !isspace((unsigned char)*s))
		s++;
	len = (size_t)(s - start);
	if (len >= n) {
		snprintf(why, WHY_MAX, "unknown unit \"%.*s...\"", (int)n,
		    start);
		return -1;
	}
	memcpy(unit, start, len);
	unit[len] = '\0';
	if (spaced || isspace((unsigned char)*s)) {
		/* Let an unknown unit be reported as such: the caller will
		 * fail on it; a known one gets told about the space. */
		if (len != 0 && strspn(unit, "msdhkKmMgGtTiB") == len &&
		    len <= 3) {
			snprintf(why, WHY_MAX,
			    "remove the space before \"%s\"", unit);
			return -1;
		}
		if (len == 0) {
			snprintf(why, WHY_MAX, "remove the spaces");
			return -1;
		}
	}
	*sp = s;
	return 0;
}

/*
 * "a.b.c.d:port", "[v6]:port" or "*:port". "*" is 0.0.0.0, every IPv4
 * address; write "[::]:port" for every IPv6 address (and, on a host with
 * bindv6only off, IPv4 as well). Never resolved: a name is refused.
 */
static int
parse_addr(const char *s, struct cfg_addr *a, char *why)
{
	struct cfg_addr r;
	struct sockaddr_in *in = (struct sockaddr_in *)&r.ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&r.ss;
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *end;
	in_port_t port;
	size_t hlen;

	memset(&r, 0, sizeof(r));
	if (strlen(s) >= sizeof(r.text)) {
		snprintf(why, WHY_MAX, "it is too long for an address");
		return -1;
	}
	/* Kept as written, for logs. */
	snprintf(r.text, sizeof(r.text), "%s", s);
	if (*s == '[') {
		end = strchr(s, ']');
		if (end == NULL) {
			snprintf(why, WHY_MAX, "the ']' is missing");
			return -1;
		}
		if (end[1] != ':') {
			snprintf(why, WHY_MAX, "the port is missing after ']'");
			return -1;
		}
		hlen = (size_t)(end - s - 1);
		colon = end + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			snprintf(why, WHY_MAX, "the :port is missing");
			return -1;
		}
		if (strchr(s, ':') != colon) {
			snprintf(why, WHY_MAX,
			    "an IPv6 address goes in brackets, like "
			    "\"[::1]:993\"");
			return -1;
		}
		hlen = (size_t)(colon - s);
		end = NULL;
	}
	if (hlen == 0) {
		snprintf(why, WHY_MAX,
		    "the host is missing; \"*:port\" means all addresses");
		return -1;
	}
	if (hlen >= sizeof(host)) {
		snprintf(why, WHY_MAX, "the host is too long for an address");
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (parse_port(colon + 1, &port, why) == -1)
		return -1;
	if (end != NULL) {
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
			snprintf(why, WHY_MAX,
			    "\"%s\" is not a numeric IPv6 address", host);
			return -1;
		}
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		r.len = sizeof(*in6);
	} else {
		if (strcmp(host, "*") == 0) {
			in->sin_addr.s_addr = htonl(INADDR_ANY);
		} else if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
			if (strspn(host, "0123456789.") != hlen)
				snprintf(why, WHY_MAX,
				    "\"%s\" is not a numeric address; host "
				    "names are never resolved",
				    host);
			else
				snprintf(why, WHY_MAX,
				    "\"%s\" is not a valid IPv4 address", host);
			return -1;
		}
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		r.len = sizeof(*in);
	}
	*a = r;
	return 0;
}

static int
parse_port(const char *s, in_port_t *port_r, char *why)
{
	unsigned long n = 0;
	size_t len = strspn(s, "0123456789");

	if (len == 0 || s[len] != '\0' || len > 5 ||
	    (n = strtoul(s, NULL, 10)) == 0 || n > 65535) {
		snprintf(why, WHY_MAX, "the port must be a number from 1 to "
				       "65535");
		return -1;
	}
	*port_r = (in_port_t)n;
	return 0;
}

/* ---------------------------------------------------------------- cleanup */

static void
free_fields(const struct cfg_field *fields, char *base)
{
	for (const struct cfg_field *f = fields; f->name != NULL; f++) {
		char *p = base + f->offset;
		unsigned *count = (unsigned *)(base + f->count_offset);

		switch (f->type) {
		case CFG_STRING:
			free(*(char **)p);
			*(char **)p = NULL;
			break;
		case CFG_STRLIST: {
			char **v = *(char ***)p;

			for (unsigned i = 0; v != NULL && i < *count; i++)
				free(v[i]);
			free(v);
			*(char ***)p = NULL;
			*count = 0;
			break;
		}
		case CFG_GROUP:
			free_fields(f->sub, p);
			break;
		case CFG_LIST: {
			char *arr = *(char **)p;

			for (unsigned i = 0; arr != NULL && i < *count; i++)
				free_fields(f->sub, arr + i * f->elem_size);
			free(arr);
			*(char **)p = NULL;
			*count = 0;
			break;
		}
		case CFG_LOC:
			free((char *)((struct cfg_loc *)p)->file);
			((struct cfg_loc *)p)->file = NULL;
			((struct cfg_loc *)p)->line = 0;
			break;
		default:
			break;
		}
	}
}
