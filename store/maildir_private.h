/*
 * maildir_private.h - declarations shared by the maildir*.c files only.
 *
 * Paths are built into caller-provided PATH_MAX buffers; every builder
 * returns -1 (ENAMETOOLONG) rather than truncating. Names of the files the
 * module owns are defined here so the code and docs/backend.md agree.
 */
#ifndef RG_STORE_MAILDIR_PRIVATE_H
#define RG_STORE_MAILDIR_PRIVATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "store/maildir.h"

#define MD_UIDLIST "ringstore-uidlist"
#define MD_UIDLIST_TMP "ringstore-uidlist.tmp"
#define MD_UIDLIST_LOCK "ringstore-uidlist.lock"
#define MD_UIDLIST_MAGIC "ringstore-uidlist"
/* Version 2 adds the first UID no read-write view has claimed as \Recent;
 * version 1 lists are still read (as if every listed UID was claimed). */
#define MD_UIDLIST_VERSION 2
#define MD_USER_LOCK "ringstore.lock"
#define MD_UIDVALIDITY "ringstore-uidvalidity"
#define MD_INITIALIZED "ringstore-initialized"
#define MD_SUBSCRIPTIONS "subscriptions"
#define MD_FOLDER_MARKER "maildirfolder"
#define MD_CREATING_PREFIX "ringstore-creating."
#define MD_DELETING_PREFIX "ringstore-deleting."
/* Dovecot's keyword list, same name and format, so that a Maildir moved
 * between the two keeps its keywords. */
#define MD_KEYWORDS "dovecot-keywords"
#define MD_KEYWORDS_READ_MAX (64 * 1024) /* more is not a keyword file */
#define MD_ALL_KEYWORDS ((1u << MAILDIR_KEYWORDS_MAX) - 1)
/* Info letters in enum maildir_flag bit order (bit i is letter i), which is
 * also the sorted order Maildir readers expect. */
#define MD_FLAG_LETTERS "DFPRST"

/* ---- maildir_cache.c ---- */

/* What stat() says of one file, enough to tell that it changed: a
 * directory entry change moves mtime and ctime, a UID list rewrite is a
 * new inode. */
struct md_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

/* A folder's keyword file in memory: letter i is names[i]. A slot with a
 * line is never reused, even when its name is one we cannot use (kept so
 * that a rewrite does not drop another program's line). */
struct md_keywords {
	char *names[MAILDIR_KEYWORDS_MAX];   /* as in the file; NULL: no line */
	uint32_t present;		     /* letters with a line */
	uint32_t valid;			     /* ... whose name is a keyword */
	uint8_t canon[MAILDIR_KEYWORDS_MAX]; /* lowest valid letter with the
					      * same name (valid ones) */
	bool have_id; /* id is the file these came from */
	struct md_file_id id;
};

/* An open folder. msgs[] is sorted by UID and owns each msgs[i].file,
 * except names that point into the names block (a view copied from a
 * snapshot): those are freed with the block. md_file_free() knows which. */
struct maildir {
	char *maildir; /* the user's Maildir */
	char *dir;     /* this folder's directory */
	char *name;    /* normalised IMAP name */
	char *new_path;
	char *cur_path;
	bool readonly;
	uint32_t uidvalidity;
	uint32_t uidnext;
	struct maildir_msg *msgs;
	size_t count;
	char *names; /* block behind a copied view's file names, or NULL */
	size_t names_size;
	struct maildir_cache *cache; /* borrowed, or NULL */
	struct md_keywords kw;
	bool kw_changed; /* not yet reported (maildir_keywords_changed) */
	/* The last sync's \Recent: a read-write one claimed the UIDs from
	 * recent_from up (0: none); a read-only one shows those from the
	 * list's first unclaimed UID up. */
	uint32_t recent_from;
};

/* new/, cur/ and the UID list of a folder, stat()ed together. */
struct md_folder_id {
	struct md_file_id new_dir;
	struct md_file_id cur_dir;
	struct md_file_id list;
};

/* A view as the cache hands it out: msgs[i].file points into names. */
struct md_view {
	struct maildir_msg *msgs;
	size_t count;
	char *names;
	size_t names_size;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t first_recent; /* the list's first unclaimed UID */
};

/* The identity of what st describes; whether two are the same. */
void md_file_id(const struct stat *st, struct md_file_id *id);
bool md_file_id_equal(const struct md_file_id *a, const struct md_file_id *b);

/* stat() dir/name into *id. -1 with errno if that fails. */
int md_file_id_read(const char *dir, const char *name, struct md_file_id *id);

/* stat() the three files of dir; a missing list gives a zero id. -1 if a
 * directory is missing or stat() fails. */
int md_folder_id_read(const char *dir, struct md_folder_id *id);

/* Whether a scan that started at t0 after taking id may be stored: both
 * directories unchanged for the cache's settle time. */
bool md_cache_settled(const struct maildir_cache *cache,
    const struct md_folder_id *id, const struct timespec *t0);

/* Copy dir's snapshot into *view if its identity equals id (two
 * allocations). claimed_only (a read-write open): a snapshot holding
 * messages nobody has claimed as \Recent is a miss, since claiming needs
 * the lock; it stays for read-only opens. 1 on a hit, 0 on a miss
 * (counted), -1 on ENOMEM. */
int md_cache_get(struct maildir_cache *cache, const char *dir,
    const struct md_folder_id *id, bool claimed_only, struct md_view *view);

/* Store a copy of a view synced after id was taken (replacing dir's old
 * snapshot), if it fits the bounds. Best effort: nothing is reported. */
void md_cache_put(struct maildir_cache *cache, const char *dir,
    const struct md_folder_id *id, const struct md_view *view);

/* Count a scan that was not stored (see maildir_cache_stats). */
void md_cache_unsettled(struct maildir_cache *cache);

/* ---- maildir_uidlist.c ---- */

struct uidlist_entry {
	uint32_t uid;
	uint32_t len;	  /* base name length */
	const char *base; /* not NUL-terminated in general */
};

/* A UID list read into memory. entries[] is strictly ascending by UID and
 * points into buf (or wherever the caller's strings live). */
struct uidlist {
	bool exists; /* the file was there and its header valid */
	bool whole;  /* ... and it ends with a whole line (appendable) */
	uint32_t uidvalidity;
	uint32_t nextuid;
	/* UIDs from here up have not been seen by any read-write view:
	 * the first such view to sync claims them as \Recent and moves
	 * this to nextuid. Never above nextuid. */
	uint32_t first_recent;
	struct uidlist_entry *entries;
	size_t count;
	size_t cap;
	char *buf;
	uint32_t *index; /* open-addressed base name hash: entry + 1 */
	size_t index_mask;
};

/* Take the folder's UID list lock (flock on ringstore-uidlist.lock, waits).
 * Close *fd_r to release. */
int uidlist_lock(const char *dir, int *fd_r);

/* Read dir's list. A missing or unreadable header gives exists = false and
 * no entries; bad entry lines are skipped. -1 only on I/O errors. */
int uidlist_read(const char *dir, struct uidlist *list);

/* Give a list that did not exist its UIDVALIDITY (from the user's counter)
 * and nextuid 1 (first_recent 1: every message it will list is new). */
int uidlist_init_new(const char *maildir, struct uidlist *list);

/* Append an entry (the base is not copied). -1 on ENOMEM. */
int uidlist_push(struct uidlist *list, uint32_t uid, const char *base,
    size_t len);

/* Build the base name index; then find returns an entry index or -1. */
int uidlist_index(struct uidlist *list);
long uidlist_find(const struct uidlist *list, const char *base, size_t len);

/* Replace the list file: temp file, fsync, rename, fsync the directory. */
int uidlist_write(const char *dir, const struct uidlist *list);

void uidlist_free(struct uidlist *list);

/* Under the folder lock, make sure each base has a UID (reusing one a
 * concurrent sync already gave it) and return them. New UIDs are appended
 * to the list and fdatasynced (after the lock is released) before this
 * returns; a missing or torn list is written whole. */
int uidlist_assign(const char *maildir, const char *dir, char *const *bases,
    size_t count, uint32_t *uidvalidity_r, uint32_t *uids);

/* Next UIDVALIDITY for this user: max(now, last + 1), kept in
 * ringstore-uidvalidity under the user lock, so a folder re-created in the
 * same second never repeats a value. */
int md_new_uidvalidity(const char *maildir, uint32_t *uidvalidity_r);

/* ---- helpers (maildir_file.c) ---- */

/* snprintf into buf; -1 with ENAMETOOLONG if it does not fit. */
int md_path(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* fsync a directory so a rename or link in it is durable. */
int md_fsync_dir(const char *path);

/* Take the user-level lock (ringstore.lock in the Maildir). */
int md_lock_file(const char *dir, const char *file, int *fd_r);

/* Write buf to dir/file atomically (temp file, fsync, rename, fsync dir). */
int md_write_atomic(const char *dir, const char *file, const char *buf,
    size_t len);

/* The whole file open at fd (at most max bytes if max is not 0),
 * NUL-terminated; *buf_r is malloc'd, owned by the caller. */
int md_read_file(int fd, size_t max, char **buf_r, size_t *len_r);

/* A fresh unique base name without size: <t>.M<usec>P<pid>R<hex>.<host> */
int md_unique(char *buf, size_t size, time_t t);

/* Parse a file name from new/ or cur/ into m (except uid and file): base
 * length, flags, keywords, S=, W=, time prefix. Returns a bitmask of what
 * the name lacked: 1 = size, 2 = date (the caller stats). */
int md_parse_name(const char *name, struct maildir_msg *m);

/* ":2,<letters>" for these flags and keywords, NUL-terminated. buf must
 * hold at least 40 bytes. */
void md_info(char *buf, unsigned int flags, uint32_t keywords);

/* Create dir with tmp/ new/ cur/ (and the maildirfolder marker if
 * subfolder); existing parts are fine. */
int md_make_maildir(const char *dir, bool subfolder);

/* stat() says directory. */
bool md_is_dir(const char *path);

/* ---- maildir_keywords.c ---- */

/* Parse a keyword file's bytes into kw (emptied first): "<letter index>
 * <name>" lines, as Dovecot writes them; lines that do not parse are
 * skipped, a later line for an index replaces an earlier one. -1 on
 * ENOMEM (kw is then empty). Pure: no I/O. */
int md_keywords_parse(const char *buf, size_t len, struct md_keywords *kw);

/* Re-read dir's keyword file into kw if it changed since kw was read
 * (one stat() otherwise). *changed_r: the usable names changed. A file
 * that cannot be read leaves kw as it was (-1, errno). */
int md_keywords_load(const char *dir, struct md_keywords *kw, bool *changed_r);

/* Letters of names in kw, case-insensitively, duplicates included. */
uint32_t md_keywords_find(const struct md_keywords *kw, const char *name);

/*
 * Under dir's folder lock: re-read the file, give every name of names[]
 * it lacks the lowest letter that has no line and is not in avoid, and
 * replace the file (atomically, fsynced) if anything was added.
 * letters_r[i] is the letter index for names[i], or -1 where none was
 * free; all_or_nothing refuses (EOVERFLOW, nothing written) instead.
 * *changed_r as for md_keywords_load().
 */
int md_keywords_add(const char *dir, struct md_keywords *kw,
    const char *const *names, size_t count, uint32_t avoid, bool all_or_nothing,
    int *letters_r, bool *changed_r);

/* For delivery (no open view): the letters of names in dir's file, one
 * per name, added as needed; names that do not fit get none. kw is a
 * cache the caller owns (md_keywords_init() before, _free() after). */
int md_keywords_resolve(const char *dir, struct md_keywords *kw,
    const char *const *names, size_t count, uint32_t *letters_r);

/* An empty map (no file read yet); _free() empties a used one. */
void md_keywords_init(struct md_keywords *kw);
void md_keywords_free(struct md_keywords *kw);

/* ---- maildir_deliver.c ---- */

/* Remove what a delivery killed before its link left in dir's tmp/: files
 * older than 36 hours by ctime and by the time in their name, that no
 * deliverer holds locked. Best effort; now is the current time (a
 * parameter so tests can look 36 hours ahead). */
void md_clean_tmp(const char *dir, time_t now);

/* ---- maildir.c ---- */

/* Find the current name of msgs[index] after someone renamed it; updates
 * msgs[index].file. -1 with ENOENT if it is gone. */
int md_refind(struct maildir *box, size_t index);

/* ---- names (maildir_folder.c) ---- */

/* IMAP name to the entry under the Maildir: "" for INBOX, else ".a.b".
 * norm (if not NULL, PATH_MAX) receives the normalised IMAP name. */
int md_name_to_entry(const char *name, char *entry, size_t size, char *norm,
    const char **error_r);

/* Directory entry (".a.b") back to an IMAP name; -1 if it is not a folder
 * name this module could have written. */
int md_entry_to_name(const char *entry, char *name, size_t size);

/* Resolve a folder that must exist (INBOX is created on demand when
 * create_inbox). dir receives the path (PATH_MAX). */
int md_folder_resolve(const char *maildir, const char *name, char *dir,
    char *norm, bool create_inbox, const char **error_r);

/* ---- maildir_list.c ---- */

/* RENAME carries the subscriptions of from and its children to to. */
int md_rename_subscriptions(const char *maildir, const char *from,
    const char *to);

#endif
