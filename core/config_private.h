/*
 * config_private.h - what core/config.c (the walk over the file, messages)
 * and core/config_value.c (the per-type converters and text parsers)
 * share; not for other modules.
 *
 * config.c finds each setting or default and hands it over as a struct
 * value; config_value.c converts and stores it, and reports a refusal
 * through cfg_bad_value() so every message has the same shape.
 */
#ifndef RG_CORE_CONFIG_PRIVATE_H
#define RG_CORE_CONFIG_PRIVATE_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

#define WHY_MAX 160  /* the reason a value was refused */
#define SHOWN_MAX 96 /* a value as written, quoted for messages */

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

/* ---- core/config.c: messages ------------------------------------------ */

/* Fail with "FILE:LINE: 'path' = shown: <reason>" for v, or blame the
 * field table when v is a built-in default. Always returns -1. */
int cfg_bad_value(struct walk *w, const struct value *v, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* What a good value of f looks like ("a duration such as 30s"), in buf
 * (n bytes); returns buf. */
const char *cfg_type_hint(const struct cfg_field *f, char *buf, size_t n);

/* A setting's value, or text, as written, quoted and cut to fit n bytes. */
void cfg_show_setting(const config_setting_t *s, char *buf, size_t n);
void cfg_show_text(const char *text, char *buf, size_t n);

/* ---- core/config_value.c: converters ---------------------------------- */

/* Fill v from a setting of the file. */
void cfg_value_of_setting(struct value *v, const config_setting_t *s);

/* Fill v from f's default text, read as the file would have it; anchor is
 * the group f would have been in. 0, or -1 if the text cannot even be read
 * as its libconfig type (v is still filled enough to report it). */
int cfg_value_of_default(struct value *v, const struct cfg_field *f,
    const config_setting_t *anchor);

/* Convert v for f's type and store it at base + f->offset (a string is
 * copied; the old one is freed). 0, or -1 after cfg_bad_value(). */
int cfg_value_store(struct walk *w, const struct cfg_field *f,
    const struct value *v, char *base, const char *path);

#endif
