/*
 * maildir_list.c - LIST and subscriptions.
 *
 * A listing is one readdir of the Maildir: every ".Name" entry that maps
 * back to itself is a folder (see maildir_folder.c for the name mapping),
 * parents that exist only through a child are added as \Noselect, and the
 * result is sorted so children follow their parent. The subscriptions file
 * is one UTF-8 name per line, replaced atomically under the user lock; it
 * may name folders that do not exist (LSUB semantics). Nothing here creates
 * or removes a folder.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/maildir_private.h"

/* Listing */
static int cmp_folder(const void *a, const void *b);
static int name_cmp(const char *a, const char *b);
static int push_folder(struct maildir_folder **v, size_t *n, size_t *cap,
    const char *name, unsigned int attrs);
static int add_missing_parents(struct maildir_folder **v, size_t *n,
    size_t *cap);
static unsigned int special_use(const char *name);

/* Subscriptions */
static int read_lines(const char *path, char ***lines_r, size_t *count_r);
static int write_lines(const char *maildir, char **lines, size_t count);

/* ---- listing ---- */

/* Byte order with '/' lowest, so "a", "a/b", "a b" sorts children right
 * after their parent. */
static int
name_cmp(const char *a, const char *b)
{
	unsigned char x, y;

	for (;; a++, b++) {
		x = *a == '/' ? 1 : (unsigned char)*a;
		y = *b == '/' ? 1 : (unsigned char)*b;
		if (x != y || x == 0)
			return x - y;
	}
}

static int
cmp_folder(const void *a, const void *b)
{
	const char *x = ((const struct maildir_folder *)a)->name;
	const char *y = ((const struct maildir_folder *)b)->name;
	bool xi = strncmp(x, "INBOX", 5) == 0 && (x[5] == '\0' || x[5] == '/');
	bool yi = strncmp(y, "INBOX", 5) == 0 && (y[5] == '\0' || y[5] == '/');

	if (xi != yi)
		return xi ? -1 : 1;
	return name_cmp(x, y);
}

static int
push_folder(struct maildir_folder **v, size_t *n, size_t *cap, const char *name,
    unsigned int attrs)
{
	struct maildir_folder *nv;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		if ((nv = reallocarray(*v, *cap, sizeof(**v))) == NULL)
			return -1;
		*v = nv;
	}
	if (((*v)[*n].name = strdup(name)) == NULL)
		return -1;
	(*v)[*n].attrs = attrs;
	(*n)++;
	return 0;
}

/* Other tools may create ".a.b" without ".a"; LIST must still show "a". */
static int
add_missing_parents(struct maildir_folder **v, size_t *n, size_t *cap)
{
	char prefix[PATH_MAX], *slash;
	struct maildir_folder key = { .name = prefix };
	size_t i, orig = *n;

	for (i = 0; i < orig; i++) {
		if (md_path(prefix, sizeof(prefix), "%s", (*v)[i].name) == -1)
			continue;
		while ((slash = strrchr(prefix, '/')) != NULL) {
			*slash = '\0';
			if (bsearch(&key, *v, orig, sizeof(**v), cmp_folder) !=
			    NULL)
				break;
			if (push_folder(v, n, cap, prefix,
				MAILDIR_ATTR_NOSELECT) == -1)
				return -1;
		}
	}
	if (*n == orig)
		return 0;
	qsort(*v, *n, sizeof(**v), cmp_folder);
	/* Two children may have added the same parent. */
	for (i = 1, orig = 1; i < *n; i++) {
		if (strcmp((*v)[i].name, (*v)[orig - 1].name) == 0) {
			free((*v)[i].name);
			continue;
		}
		(*v)[orig++] = (*v)[i];
	}
	*n = orig;
	return 0;
}

static unsigned int
special_use(const char *name)
{
	if (strcmp(name, "Drafts") == 0)
		return MAILDIR_ATTR_DRAFTS;
	if (strcmp(name, "Sent") == 0)
		return MAILDIR_ATTR_SENT;
	if (strcmp(name, "Trash") == 0)
		return MAILDIR_ATTR_TRASH;
	if (strcmp(name, "Junk") == 0)
		return MAILDIR_ATTR_JUNK;
	return 0;
}

int
maildir_list(const char *maildir, struct maildir_folder **list_r,
    size_t *count_r, const char **error_r)
{
	char name[PATH_MAX], path[PATH_MAX], **subs = NULL;
	struct maildir_folder *v = NULL, key = { .name = name };
	struct maildir_folder *hit;
	size_t n = 0, cap = 0, nsubs = 0, i, len;
	struct dirent *de;
	unsigned int attrs;
	DIR *d;

	if (push_folder(&v, &n, &cap, "INBOX", 0) == -1)
		goto nomem;
	if ((d = opendir(maildir)) == NULL) {
		if (errno != ENOENT)
			goto fail;
	} else {
		while ((de = readdir(d)) != NULL) {
			if (md_entry_to_name(de->d_name, name, sizeof(name)) ==
				-1 ||
			    md_path(path, sizeof(path), "%s/%s/cur", maildir,
				de->d_name) == -1)
				continue;
			attrs = md_is_dir(path) ? 0 : MAILDIR_ATTR_NOSELECT;
			/* Without cur/ it may still be a bare directory (a
			 * parent made by another tool); stat only then. A
			 * symlinked folder counts when it leads to one. */
			path[strlen(path) - 4] = '\0';
			if (attrs != 0 && de->d_type != DT_DIR &&
			    !md_is_dir(path))
				continue;
			if (push_folder(&v, &n, &cap, name, attrs) == -1) {
				closedir(d);
				goto nomem;
			}
		}
		closedir(d);
	}
	qsort(v, n, sizeof(*v), cmp_folder);
	if (add_missing_parents(&v, &n, &cap) == -1)
		goto nomem;
	for (i = 0; i < n; i++) {
		len = strlen(v[i].name);
		v[i].attrs |= i + 1 < n &&
			strncmp(v[i + 1].name, v[i].name, len) == 0 &&
			v[i + 1].name[len] == '/' ?
		    MAILDIR_ATTR_HASCHILDREN :
		    MAILDIR_ATTR_HASNOCHILDREN;
		v[i].attrs |= special_use(v[i].name);
	}
	if (maildir_subscriptions(maildir, &subs, &nsubs, error_r) == -1)
		goto fail;
	for (i = 0; i < nsubs; i++) {
		if (md_path(name, sizeof(name), "%s", subs[i]) == -1)
			continue;
		hit = bsearch(&key, v, n, sizeof(*v), cmp_folder);
		if (hit != NULL)
			hit->attrs |= MAILDIR_ATTR_SUBSCRIBED;
	}
	maildir_strings_free(subs, nsubs);
	*list_r = v;
	*count_r = n;
	return 0;
nomem:
	errno = ENOMEM;
fail:
	*error_r = errno == ENOMEM ? "out of memory" : "cannot list folders";
	maildir_list_free(v, n);
	return -1;
}

void
maildir_list_free(struct maildir_folder *list, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(list[i].name);
	free(list);
}

/* ---- subscriptions ---- */

static int
read_lines(const char *path, char ***lines_r, size_t *count_r)
{
	char *line = NULL, **v = NULL, **nv;
	size_t n = 0, cap = 0, linecap = 0;
	ssize_t len;
	FILE *f;

	*lines_r = NULL;
	*count_r = 0;
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((len = getline(&line, &linecap, f)) != -1) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		if ((v[n] = strdup(line)) == NULL)
			goto fail;
		n++;
	}
	free(line);
	fclose(f);
	*lines_r = v;
	*count_r = n;
	return 0;
fail:
	free(line);
	fclose(f);
	maildir_strings_free(v, n);
	errno = ENOMEM;
	return -1;
}

/* Caller holds the user lock. */
static int
write_lines(const char *maildir, char **lines, size_t count)
{
	size_t len = 0, i, o = 0, l;
	char *buf;
	int ret;

	for (i = 0; i < count; i++)
		len += strlen(lines[i]) + 1;
	if ((buf = malloc(len + 1)) == NULL)
		return -1;
	for (i = 0; i < count; i++) {
		l = strlen(lines[i]);
		memcpy(buf + o, lines[i], l);
		o += l;
		buf[o++] = '\n';
	}
	ret = md_write_atomic(maildir, MD_SUBSCRIPTIONS, buf, o);
	free(buf);
	return ret;
}

int
maildir_subscriptions(const char *maildir, char ***names_r, size_t *count_r,
    const char **error_r)
{
	char path[PATH_MAX];

	if (md_path(path, sizeof(path), "%s/" MD_SUBSCRIPTIONS, maildir) ==
		-1 ||
	    read_lines(path, names_r, count_r) == -1) {
		*error_r = "cannot read subscriptions";
		return -1;
	}
	return 0;
}

int
maildir_subscribe(const char *maildir, const char *name, bool subscribe,
    const char **error_r)
{
	return maildir_subscribe_limited(maildir, name, subscribe, NULL,
	    error_r);
}

int
maildir_subscribe_limited(const char *maildir, const char *name, bool subscribe,
    const struct maildir_limits *lim, const char **error_r)
{
	char entry[PATH_MAX], norm[PATH_MAX], path[PATH_MAX], **v = NULL;
	size_t n = 0, i;
	int lock, ret = -1, err = 0;
	bool changed = false;

	if (md_name_to_entry(name, entry, sizeof(entry), norm, error_r) == -1)
		return -1;
	if (md_make_maildir(maildir, false) == -1 ||
	    md_lock_file(maildir, MD_USER_LOCK, &lock) == -1) {
		*error_r = "cannot lock the Maildir";
		return -1;
	}
	if (md_path(path, sizeof(path), "%s/" MD_SUBSCRIPTIONS, maildir) ==
		-1 ||
	    read_lines(path, &v, &n) == -1)
		goto out;
	for (i = 0; i < n && strcmp(v[i], norm) != 0; i++)
		;
	if (subscribe && i == n && lim != NULL && lim->max_name != 0 &&
	    strlen(norm) > lim->max_name) {
		err = ENAMETOOLONG;
		*error_r = "Mailbox name too long";
		goto out;
	}
	/* INBOX and max_folders folders, each may be subscribed */
	if (subscribe && i == n && lim != NULL && lim->max_folders != 0 &&
	    n >= (size_t)lim->max_folders + 1) {
		err = EMLINK;
		*error_r = "Too many subscriptions";
		goto out;
	}
	if (subscribe && i == n) {
		char **nv = reallocarray(v, n + 1, sizeof(*v));

		if (nv == NULL)
			goto out;
		v = nv;
		if ((v[n] = strdup(norm)) == NULL)
			goto out;
		n++;
		changed = true;
	} else if (!subscribe && i < n) {
		free(v[i]);
		memmove(v + i, v + i + 1, (n - i - 1) * sizeof(*v));
		n--;
		changed = true;
	}
	if (changed && write_lines(maildir, v, n) == -1)
		goto out;
	ret = 0;
out:
	if (ret == -1 && err == 0)
		*error_r = "cannot update subscriptions";
	maildir_strings_free(v, n);
	close(lock);
	if (err != 0)
		errno = err;
	return ret;
}

/* RENAME carries subscriptions of the folder and its children along. */
int
md_rename_subscriptions(const char *maildir, const char *from, const char *to)
{
	char path[PATH_MAX], **v = NULL, *s;
	size_t n = 0, i, flen = strlen(from);
	bool changed = false;
	int lock, ret = -1;

	if (md_lock_file(maildir, MD_USER_LOCK, &lock) == -1)
		return -1;
	if (md_path(path, sizeof(path), "%s/" MD_SUBSCRIPTIONS, maildir) ==
		-1 ||
	    read_lines(path, &v, &n) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		if (strncmp(v[i], from, flen) != 0 ||
		    (v[i][flen] != '\0' && v[i][flen] != '/'))
			continue;
		if (asprintf(&s, "%s%s", to, v[i] + flen) == -1)
			goto out;
		free(v[i]);
		v[i] = s;
		changed = true;
	}
	ret = changed ? write_lines(maildir, v, n) : 0;
out:
	maildir_strings_free(v, n);
	close(lock);
	return ret;
}

void
maildir_strings_free(char **names, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
}
