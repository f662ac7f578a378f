/*
 * maildir_keywords.c - IMAP keywords of a folder: the info letters a-z of
 * its message file names, named by the folder's dovecot-keywords file.
 *
 * The file is Dovecot's, byte for byte: one "<index> <name>\n" line per
 * letter in use, index 0 being 'a', at most 26. Reading is as forgiving
 * as Dovecot's (lines that do not parse are skipped; a later line for an
 * index wins), and a name that is no valid keyword, or repeats a lower
 * letter's name, is kept but not shown, so that rewriting the file never
 * drops another program's line. Letters are only ever added, never
 * renamed or reused, so a letter on a file keeps its meaning for as long
 * as the folder lives.
 *
 * Relies on the folder's UID list lock to serialise writers (ringstore's
 * threads and processes; Dovecot itself must not run on the same Maildir
 * at the same time, it keeps its own UID list anyway), and on replacing
 * the file by rename() only, so a reader sees the old or the new file
 * whole and a changed file always has a new identity (inode, ctime).
 * A new name is written (and fsynced) before any message carries its
 * letter, and a view re-reads the file after scanning the directories,
 * so a letter seen on a file always has its name. Must never: rewrite
 * the file outside the lock, or reuse a letter that has a line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/maildir_private.h"

static bool atom_char(unsigned char c);
static int parse_line(const char *p, size_t len, struct md_keywords *kw);
static void index_names(struct md_keywords *kw);
static bool same_names(const struct md_keywords *a,
    const struct md_keywords *b);
static int load_locked(const char *dir, struct md_keywords *kw,
    bool *changed_r);
static int write_file(const char *dir, const struct md_keywords *kw);
static uint32_t used_letters(const struct maildir *box);

/* ---- names ---- */

/* ATOM-CHAR of RFC 3501: CHAR (7-bit, no NUL) minus atom-specials. */
static bool
atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

bool
maildir_keyword_valid(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > MAILDIR_KEYWORD_LEN_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!atom_char((unsigned char)name[i]))
			return false;
	return true;
}

/* ---- the file's format ---- */

/* "<digits> <name>", CR tolerated before the LF. 0, or -1 on ENOMEM;
 * a line that does not parse is skipped. */
static int
parse_line(const char *p, size_t len, struct md_keywords *kw)
{
	size_t i = 0, idx = 0;
	char *name;

	if (len > 0 && p[len - 1] == '\r')
		len--;
	while (i < len && p[i] >= '0' && p[i] <= '9' && idx < 100)
		idx = idx * 10 + (size_t)(p[i++] - '0');
	if (i == 0 || i >= len || p[i] != ' ' || idx >= MAILDIR_KEYWORDS_MAX)
		return 0;
	i++;
	if (i == len || memchr(p + i, '\0', len - i) != NULL)
		return 0;
	if ((name = strndup(p + i, len - i)) == NULL)
		return -1;
	free(kw->names[idx]);
	kw->names[idx] = name;
	kw->present |= 1u << idx;
	return 0;
}

/* valid and canon[] from names[]: a name shown once, at its lowest
 * letter (IMAP keywords compare case-insensitively). */
static void
index_names(struct md_keywords *kw)
{
	size_t i, j;

	kw->valid = 0;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		kw->canon[i] = (uint8_t)i;
		if (kw->names[i] == NULL ||
		    !maildir_keyword_valid(kw->names[i], strlen(kw->names[i])))
			continue;
		kw->valid |= 1u << i;
		for (j = 0; j < i; j++) {
			if ((kw->valid & (1u << j)) &&
			    strcasecmp(kw->names[j], kw->names[i]) == 0) {
				kw->canon[i] = (uint8_t)j;
				break;
			}
		}
	}
}

int
md_keywords_parse(const char *buf, size_t len, struct md_keywords *kw)
{
	const char *p = buf, *end = buf + len, *nl;

	md_keywords_free(kw);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end; /* a last line without LF still counts */
		if (parse_line(p, (size_t)(nl - p), kw) == -1) {
			md_keywords_free(kw);
			errno = ENOMEM;
			return -1;
		}
		p = nl + 1;
	}
	index_names(kw);
	return 0;
}

void
md_keywords_init(struct md_keywords *kw)
{
	size_t i;

	memset(kw, 0, sizeof(*kw));
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		kw->canon[i] = (uint8_t)i;
}

void
md_keywords_free(struct md_keywords *kw)
{
	size_t i;

	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		free(kw->names[i]);
	md_keywords_init(kw);
}

/* Whether the names a reader can see are the same. */
static bool
same_names(const struct md_keywords *a, const struct md_keywords *b)
{
	size_t i;

	if (a->valid != b->valid)
		return false;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if ((a->valid & (1u << i)) &&
		    (a->canon[i] != b->canon[i] ||
			strcmp(a->names[i], b->names[i]) != 0))
			return false;
	return true;
}

uint32_t
md_keywords_find(const struct md_keywords *kw, const char *name)
{
	uint32_t letters = 0;
	size_t i;

	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if ((kw->valid & (1u << i)) &&
		    strcasecmp(kw->names[i], name) == 0)
			letters |= 1u << i;
	return letters;
}

/* ---- reading and writing ---- */

int
md_keywords_load(const char *dir, struct md_keywords *kw, bool *changed_r)
{
	struct md_keywords fresh;
	struct md_file_id id;
	char path[PATH_MAX], *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, saved;

	*changed_r = false;
	if (md_path(path, sizeof(path), "%s/" MD_KEYWORDS, dir) == -1)
		return -1;
	if (stat(path, &st) == -1) {
		if (errno != ENOENT)
			return -1;
		/* No file: no names. A file never goes away in normal
		 * operation, but a folder restored from a backup might. */
		*changed_r = kw->valid != 0;
		md_keywords_free(kw);
		return 0;
	}
	md_file_id(&st, &id);
	if (kw->have_id && md_file_id_equal(&id, &kw->id))
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1; /* replaced: next time */
	/* The identity of what we read, not of what we stat()ed. */
	if (fstat(fd, &st) == -1 ||
	    md_read_file(fd, MD_KEYWORDS_READ_MAX, &buf, &len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	md_keywords_init(&fresh);
	if (md_keywords_parse(buf, len, &fresh) == -1) {
		free(buf);
		return -1;
	}
	free(buf);
	md_file_id(&st, &fresh.id);
	fresh.have_id = true;
	*changed_r = !same_names(kw, &fresh);
	md_keywords_free(kw);
	*kw = fresh;
	return 0;
}

/* Dovecot's layout: "<index> <name>\n" per line, ascending. Names other
 * programs wrote may be long: the buffer is sized to fit. */
static int
write_file(const char *dir, const struct md_keywords *kw)
{
	size_t i, off = 0, size = 1;
	char *buf;
	int ret, saved;

	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (kw->present & (1u << i))
			size += strlen(kw->names[i]) + 4;
	if ((buf = malloc(size)) == NULL)
		return -1;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (kw->present & (1u << i))
			off += (size_t)snprintf(buf + off, size - off,
			    "%zu %s\n", i, kw->names[i]);
	ret = md_write_atomic(dir, MD_KEYWORDS, buf, off);
	saved = errno;
	free(buf);
	errno = saved;
	return ret;
}

/* Re-read under the lock even if the identity matches: cheap, and the
 * write that follows must start from exactly what is on disk. */
static int
load_locked(const char *dir, struct md_keywords *kw, bool *changed_r)
{
	kw->have_id = false;
	return md_keywords_load(dir, kw, changed_r);
}

int
md_keywords_add(const char *dir, struct md_keywords *kw,
    const char *const *names, size_t count, uint32_t avoid, bool all_or_nothing,
    int *letters_r, bool *changed_r)
{
	uint32_t taken, added = 0, letters;
	size_t i, k;
	int lock, ret = -1, saved;
	bool changed = false;

	*changed_r = false;
	if (uidlist_lock(dir, &lock) == -1)
		return -1;
	if (load_locked(dir, kw, &changed) == -1)
		goto out;
	*changed_r = changed;
	taken = kw->present | avoid;
	for (i = 0; i < count; i++) {
		letters = md_keywords_find(kw, names[i]);
		/* the lowest valid letter of a name is its canonical one */
		letters_r[i] = letters ? __builtin_ctz(letters) : -1;
	}
	/* Distinct missing names may repeat within names[]. */
	for (i = 0; i < count; i++) {
		if (letters_r[i] != -1)
			continue;
		for (k = 0; k < MAILDIR_KEYWORDS_MAX; k++)
			if ((added & (1u << k)) &&
			    strcasecmp(kw->names[k], names[i]) == 0)
				break;
		if (k < MAILDIR_KEYWORDS_MAX) {
			letters_r[i] = (int)k;
			continue;
		}
		for (k = 0; k < MAILDIR_KEYWORDS_MAX; k++)
			if (!(taken & (1u << k)))
				break;
		if (k == MAILDIR_KEYWORDS_MAX) {
			if (all_or_nothing)
				goto full;
			continue; /* stays -1: dropped */
		}
		if ((kw->names[k] = strdup(names[i])) == NULL)
			goto out;
		kw->present |= 1u << k;
		taken |= 1u << k;
		added |= 1u << k;
		letters_r[i] = (int)k;
	}
	if (added == 0) {
		ret = 0;
		goto out;
	}
	index_names(kw);
	if (write_file(dir, kw) == -1)
		goto out;
	/* The file we just wrote, under the lock: nobody replaced it. */
	kw->have_id = md_file_id_read(dir, MD_KEYWORDS, &kw->id) == 0;
	*changed_r = true;
	ret = 0;
	goto out;
full:
	errno = EOVERFLOW;
out:
	saved = errno;
	if (ret == -1 && added != 0) {
		/* Not on disk: forget what we added, re-read next time. */
		for (k = 0; k < MAILDIR_KEYWORDS_MAX; k++) {
			if (!(added & (1u << k)))
				continue;
			free(kw->names[k]);
			kw->names[k] = NULL;
		}
		kw->present &= ~added;
		kw->have_id = false;
		index_names(kw);
	}
	close(lock);
	errno = saved;
	return ret;
}

int
md_keywords_resolve(const char *dir, struct md_keywords *kw,
    const char *const *names, size_t count, uint32_t *letters_r)
{
	int idx[MAILDIR_KEYWORDS_MAX + 1], *letters = idx;
	uint32_t found = 0, mask;
	size_t i;
	bool missing = false, changed;
	int ret = -1;

	*letters_r = 0;
	if (count == 0)
		return 0;
	/* Usually every name is there already: no lock, no write. */
	if (md_keywords_load(dir, kw, &changed) == 0) {
		for (i = 0; i < count; i++) {
			mask = md_keywords_find(kw, names[i]);
			found |= mask & -mask; /* one letter per name */
			missing = missing || mask == 0;
		}
		if (!missing) {
			*letters_r = found;
			return 0;
		}
	}
	if (count > MAILDIR_KEYWORDS_MAX &&
	    (letters = calloc(count, sizeof(*letters))) == NULL)
		return -1;
	if (md_keywords_add(dir, kw, names, count, 0, false, letters,
		&changed) == -1)
		goto out;
	for (i = 0; i < count; i++)
		if (letters[i] >= 0)
			*letters_r |= 1u << letters[i];
	ret = 0;
out:
	if (letters != idx)
		free(letters);
	return ret;
}

/* ---- public, over an open folder ---- */

const char *
maildir_keyword_name(const struct maildir *box, unsigned int i)
{
	if (i >= MAILDIR_KEYWORDS_MAX || !(box->kw.valid & (1u << i)) ||
	    box->kw.canon[i] != i)
		return NULL;
	return box->kw.names[i];
}

uint32_t
maildir_keywords_named(const struct maildir *box)
{
	return box->kw.valid;
}

uint32_t
maildir_keywords_canon(const struct maildir *box, uint32_t letters)
{
	uint32_t out = 0;
	size_t i;

	letters &= box->kw.valid;
	for (i = 0; letters != 0; i++, letters >>= 1)
		if (letters & 1)
			out |= 1u << box->kw.canon[i];
	return out;
}

/* Letters on the view's files that the keyword file does not name
 * (another program's): never handed out, or those files would change
 * meaning. */
static uint32_t
used_letters(const struct maildir *box)
{
	uint32_t used = 0;
	size_t i;

	for (i = 0; i < box->count; i++)
		used |= box->msgs[i].keywords;
	return used & ~box->kw.present;
}

bool
maildir_keywords_room(const struct maildir *box)
{
	return ((box->kw.present | used_letters(box)) & MD_ALL_KEYWORDS) !=
	    MD_ALL_KEYWORDS;
}

int
maildir_keywords_get(struct maildir *box, const char *const *names,
    size_t count, bool create, uint32_t *letters_r, const char **error_r)
{
	int idx[MAILDIR_KEYWORDS_MAX + 1], *letters = idx;
	uint32_t found = 0, mask;
	size_t i;
	bool missing = false, changed;
	int ret = -1;

	for (i = 0; i < count; i++) {
		mask = md_keywords_find(&box->kw, names[i]);
		found |= mask;
		missing = missing || mask == 0;
	}
	if (!missing || !create) {
		*letters_r = found;
		return 0;
	}
	if (box->readonly) {
		errno = EROFS;
		*error_r = "folder is read-only";
		return -1;
	}
	if (count > MAILDIR_KEYWORDS_MAX &&
	    (letters = calloc(count, sizeof(*letters))) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (md_keywords_add(box->dir, &box->kw, names, count, used_letters(box),
		true, letters, &changed) == -1) {
		*error_r = errno == EOVERFLOW ?
		    "too many keywords in this folder" :
		    "cannot write the keyword file";
		goto out;
	}
	box->kw_changed = box->kw_changed || changed;
	/* Every letter of each name, duplicates included. */
	for (found = 0, i = 0; i < count; i++)
		found |= md_keywords_find(&box->kw, names[i]);
	*letters_r = found;
	ret = 0;
out:
	if (letters != idx)
		free(letters);
	return ret;
}

bool
maildir_keywords_changed(struct maildir *box)
{
	bool changed = box->kw_changed;

	box->kw_changed = false;
	return changed;
}
