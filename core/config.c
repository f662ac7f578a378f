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
 * This file is the walk and its messages; the per-type converters and
 * the text parsers (durations, sizes, addresses, enums) are in
 * core/config_value.c.
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
#include "core/config_private.h"
#include "core/net.h"

#define PATH_MAX_KEY 256 /* a key path like "tls.certificates[1].key" */
#define SUGGEST_DIST 2	 /* edits allowed for "did you mean" */
#define NAME_MAX_CMP 64	 /* longer names are never suggested */

/* locations and messages */
static int open_error(struct cfg_error *err, const char *path, int e, FILE *fp);
static void verror_at(struct cfg_error *err, const char *file, int line,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static int error_setting(struct walk *w, const config_setting_t *s,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *setting_file(const struct walk *w,
    const config_setting_t *s);
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
    const config_setting_t *anchor, const struct cfg_field *fields, char *base,
    const char *gpath);
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
static const char *def_item(const char *p, size_t *len_r);
static unsigned def_item_count(const char *def);
static int default_strlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *anchor, char *base);
static int load_netlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *s, char *base, const char *path);
static int default_netlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *anchor, char *base);

/* cleanup */
static void free_fields(const struct cfg_field *fields, char *base);

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
cfg_error_at(struct cfg_error *err, const struct cfg_loc *loc, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror_at(err, loc != NULL ? loc->file : NULL,
	    loc != NULL ? loc->line : 0, fmt, ap);
	va_end(ap);
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
int
cfg_bad_value(struct walk *w, const struct value *v, const char *path,
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
void
cfg_show_setting(const config_setting_t *s, char *buf, size_t n)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		cfg_show_text(config_setting_get_string(s), buf, n);
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
void
cfg_show_text(const char *text, char *buf, size_t n)
{
	size_t len = strlen(text), max = n - 6, i;

	snprintf(buf, n, "\"%.*s%s\"", (int)(len > max ? max - 3 : len), text,
	    len > max ? "..." : "");
	for (i = 1; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
}

/* What a good value looks like: the field's own words when it has them. */
const char *
cfg_type_hint(const struct cfg_field *f, char *buf, size_t n)
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
	case CFG_NETLIST:
		return "a list of networks like [ \"10.0.0.0/8\", \"::1\" ] "
		       "(no host bits below the prefix)";
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
		case CFG_NETLIST:
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
    const config_setting_t *anchor, const struct cfg_field *fields, char *base,
    const char *gpath)
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
load_field(struct walk *w, const struct cfg_field *f, const config_setting_t *s,
    const config_setting_t *anchor, char *base, const char *path)
{
	char hint[256], shown[SHOWN_MAX];
	struct value v;

	if (s == NULL)
		return load_missing(w, f, anchor, base, path);
	switch (f->type) {
	case CFG_GROUP:
		if (!config_setting_is_group(s)) {
			cfg_show_setting(s, shown, sizeof(shown));
			return error_setting(w, s, "'%s' = %s: must be %s",
			    path, shown, cfg_type_hint(f, hint, sizeof(hint)));
		}
		return load_group(w, s, s, f->sub, base + f->offset, path);
	case CFG_LIST:
		return load_list(w, f, s, base, path);
	case CFG_STRLIST:
		return load_strlist(w, f, s, base, path);
	case CFG_NETLIST:
		return load_netlist(w, f, s, base, path);
	default:
		cfg_value_of_setting(&v, s);
		return cfg_value_store(w, f, &v, base, path);
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
		    cfg_type_hint(f, hint, sizeof(hint)));
	if (f->type == CFG_GROUP)
		return load_group(w, NULL, anchor, f->sub, base + f->offset,
		    path);
	if (f->def == NULL || f->type == CFG_LIST)
		return 0;
	if (f->type == CFG_STRLIST)
		return default_strlist(w, f, anchor, base);
	if (f->type == CFG_NETLIST)
		return default_netlist(w, f, anchor, base);
	if (cfg_value_of_default(&v, f, anchor) == -1)
		return cfg_bad_value(w, &v, path, "must be %s",
		    cfg_type_hint(f, hint, sizeof(hint)));
	return cfg_value_store(w, f, &v, base, path);
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
load_list(struct walk *w, const struct cfg_field *f, const config_setting_t *s,
    char *base, const char *path)
{
	char hint[256], shown[SHOWN_MAX], epath[PATH_MAX_KEY];
	unsigned n, i;
	char *arr;

	/* libconfig has no empty list literal distinct from "[]". */
	if (!config_setting_is_list(s) &&
	    !(config_setting_is_array(s) && config_setting_length(s) == 0)) {
		cfg_show_setting(s, shown, sizeof(shown));
		return error_setting(w, s, "'%s' = %s: must be %s", path, shown,
		    cfg_type_hint(f, hint, sizeof(hint)));
	}
	n = (unsigned)config_setting_length(s);
	if (n == 0) {
		if (f->flags & CFG_REQUIRED)
			return error_setting(w, s,
			    "'%s' is empty; it needs at least one entry like "
			    "{ ... }",
			    path);
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
			cfg_show_setting(e, shown, sizeof(shown));
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
		cfg_show_setting(s, shown, sizeof(shown));
		return error_setting(w, s, "'%s' = %s: must be %s", path, shown,
		    cfg_type_hint(f, hint, sizeof(hint)));
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
		const config_setting_t *e = lone ?
		    s :
		    config_setting_get_elem(s, i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			index_path(epath, path, i);
			cfg_show_setting(e, shown, sizeof(shown));
			return error_setting(w, e,
			    "'%s' = %s: must be a string in double quotes; "
			    "'%s' is %s",
			    epath, shown, path,
			    cfg_type_hint(f, hint, sizeof(hint)));
		}
		v[i] = strdup(config_setting_get_string(e));
		if (v[i] == NULL)
			return error_setting(w, e, "out of memory");
	}
	return 0;
}

/* A list's default is written as its items separated by commas and/or
 * spaces: "imap, pop3". def_item() returns the start of the item at or
 * after p (its length in *len_r, 0 at the end). */
static const char *
def_item(const char *p, size_t *len_r)
{
	static const char sep[] = ", \t";

	p += strspn(p, sep);
	*len_r = strcspn(p, sep);
	return p;
}

static unsigned
def_item_count(const char *def)
{
	unsigned n = 0;
	size_t len;

	for (const char *p = def_item(def, &len); len > 0;
	     p = def_item(p + len, &len))
		n++;
	return n;
}

static int
default_strlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *anchor, char *base)
{
	unsigned n = def_item_count(f->def), i;
	const char *p = f->def;
	size_t len = 0;
	char **v;

	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (v == NULL)
		return error_setting(w, anchor, "out of memory");
	*(char ***)(base + f->offset) = v;
	*(unsigned *)(base + f->count_offset) = n;
	for (i = 0; i < n; i++) {
		p = def_item(p + len, &len);
		v[i] = strndup(p, len);
		if (v[i] == NULL)
			return error_setting(w, anchor, "out of memory");
	}
	return 0;
}

/* A list of networks: like a string list, but each item must be a
 * network, refused at its own line so the operator sees which. */
static int
load_netlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *s, char *base, const char *path)
{
	char hint[256], shown[SHOWN_MAX], epath[PATH_MAX_KEY];
	bool lone = config_setting_type(s) == CONFIG_TYPE_STRING;
	struct net *v;
	unsigned n, i;

	if (!lone && !config_setting_is_array(s) &&
	    !config_setting_is_list(s)) {
		cfg_show_setting(s, shown, sizeof(shown));
		return error_setting(w, s, "'%s' = %s: must be %s", path, shown,
		    cfg_type_hint(f, hint, sizeof(hint)));
	}
	n = lone ? 1 : (unsigned)config_setting_length(s);
	if (n == 0)
		return 0;
	if ((v = calloc(n, sizeof(*v))) == NULL)
		return error_setting(w, s, "out of memory");
	*(struct net **)(base + f->offset) = v;
	*(unsigned *)(base + f->count_offset) = n;
	for (i = 0; i < n; i++) {
		const config_setting_t *e = lone ?
		    s :
		    config_setting_get_elem(s, i);
		const char *t = config_setting_get_string(e);

		if (t != NULL && net_parse(t, strlen(t), &v[i]) == 0)
			continue;
		index_path(epath, path, i);
		cfg_show_setting(e, shown, sizeof(shown));
		return error_setting(w, e,
		    "'%s' = %s: not a network; '%s' is %s", epath, shown, path,
		    cfg_type_hint(f, hint, sizeof(hint)));
	}
	return 0;
}

/* A network list's default: "127.0.0.0/8, ::1". A bad default is the
 * program's fault, but it is still reported rather than ignored. */
static int
default_netlist(struct walk *w, const struct cfg_field *f,
    const config_setting_t *anchor, char *base)
{
	unsigned n = def_item_count(f->def), i;
	const char *p = f->def;
	size_t len = 0;
	struct net *v;

	if (n == 0)
		return 0;
	if ((v = calloc(n, sizeof(*v))) == NULL)
		return error_setting(w, anchor, "out of memory");
	*(struct net **)(base + f->offset) = v;
	*(unsigned *)(base + f->count_offset) = n;
	for (i = 0; i < n; i++) {
		p = def_item(p + len, &len);
		if (net_parse(p, len, &v[i]) == -1)
			return error_setting(w, anchor,
			    "built-in default '%s' is not a network list",
			    f->def);
	}
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
		case CFG_NETLIST:
			free(*(struct net **)p);
			*(struct net **)p = NULL;
			*count = 0;
			break;
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
