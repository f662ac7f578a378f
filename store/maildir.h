/*
 * maildir.h - Maildir++ storage with stable IMAP UIDs for ringstore.
 *
 * One user's mail lives in <root>/<domain>/<localpart>/Maildir. INBOX is the
 * Maildir itself; every other folder is a ".Name" directory beside it, with
 * '/' in IMAP names stored as '.' on disk. Each folder keeps a UID list
 * (ringstore-uidlist) mapping UIDs to message file base names; flags live in
 * the file names. docs/backend.md describes every file this module writes.
 *
 * Everything here is synchronous, blocking file I/O: call it from worker
 * threads, never from an io_uring loop thread. A struct maildir belongs to
 * one thread at a time. Any number of threads and processes may open the
 * same folder at once: the UID list is guarded by flock() on a lock file per
 * folder, user-level files (subscriptions, the UIDVALIDITY counter) by a lock
 * file in the Maildir. Other programs may drop messages into new/ or cur/,
 * rename or unlink them at any time; a sync picks that up. The module keeps
 * no global state.
 *
 * Errors: functions return 0, or -1 with errno set (ENOENT no such folder
 * or message, EEXIST already exists, ENOTEMPTY folder has children, EINVAL
 * bad name, EPERM not allowed for INBOX, EROFS folder opened read-only, or
 * the system error) and *error_r pointing to a static description.
 */
#ifndef RG_STORE_MAILDIR_H
#define RG_STORE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* System flags, stored as the letters after ":2," (sorted, as Maildir
 * readers expect). RECENT is not a letter: a message gets it in the one
 * read-write view that syncs first after it got its UID (the UID list
 * records which UIDs have been claimed so), and read-only views show it
 * on messages nobody has claimed yet. Bit i of the stored flags is the
 * i-th letter of "DFPRST". */
enum maildir_flag {
	MAILDIR_FLAG_DRAFT = 1 << 0,	/* D \Draft */
	MAILDIR_FLAG_FLAGGED = 1 << 1,	/* F \Flagged */
	MAILDIR_FLAG_PASSED = 1 << 2,	/* P (forwarded, no IMAP flag) */
	MAILDIR_FLAG_ANSWERED = 1 << 3, /* R \Answered */
	MAILDIR_FLAG_SEEN = 1 << 4,	/* S \Seen */
	MAILDIR_FLAG_DELETED = 1 << 5,	/* T \Deleted */
	MAILDIR_FLAG_RECENT = 1 << 6,	/* \Recent, session only */
};
#define MAILDIR_FLAGS_STORED 0x3fu

/* Keywords (IMAP flag keywords such as $Forwarded) are the info letters
 * a-z, named per folder by its dovecot-keywords file in Dovecot's format:
 * at most 26 per folder, and never renamed or reused once listed. */
#define MAILDIR_KEYWORDS_MAX 26
#define MAILDIR_KEYWORD_LEN_MAX 128 /* bytes of one keyword name */

/* One message of an open folder. Strings are owned by the folder and stay
 * valid until the next maildir_sync(), maildir_set_flags() on the same
 * message, or maildir_close(). */
struct maildir_msg {
	uint32_t uid;
	unsigned int flags; /* enum maildir_flag */
	uint32_t keywords;  /* info letters a-z, bit 0 = 'a', as on disk:
			     * maildir_keyword_name() names them */
	uint64_t size;	    /* S= in the name, else st_size */
	uint64_t vsize;	    /* W= in the name (size with CRLF), 0 if absent;
			     * RFC822.SIZE is vsize if set, else size */
	time_t date;	    /* internal date: the name's time prefix */
	char *file;	    /* "new/<name>" or "cur/<name>", relative to the
			     * folder directory */
	size_t base_len;    /* length of the base name at file + 4 */
};

/* What a sync found changed against the previous view of the folder. */
struct maildir_changes {
	/* Gone messages, ascending by UID, with their 1-based sequence
	 * numbers in the previous view. Sending "* n EXPUNGE" for seqs[] in
	 * reverse order needs no renumbering. */
	uint32_t *expunged_uids;
	uint32_t *expunged_seqs;
	size_t expunged_count;
	/* New messages are always the tail of the new view: indexes
	 * [new_first, new_first + new_count). */
	size_t new_first;
	size_t new_count;
	/* Indexes into the new view of old messages whose flags changed. */
	size_t *flag_changed;
	size_t flag_changed_count;
	/* The folder's keyword names changed since the last sync or
	 * maildir_keywords_changed() (maildir_sync() only). */
	bool keywords_changed;
};

struct maildir_status {
	uint32_t messages;
	uint32_t recent; /* messages no read-write view has claimed */
	uint32_t unseen;
	uint32_t uidnext;
	uint32_t uidvalidity;
};

enum maildir_attr {
	MAILDIR_ATTR_NOSELECT = 1 << 0, /* a parent with no folder of its own */
	MAILDIR_ATTR_HASCHILDREN = 1 << 1,
	MAILDIR_ATTR_HASNOCHILDREN = 1 << 2,
	MAILDIR_ATTR_SUBSCRIBED = 1 << 3,
	MAILDIR_ATTR_DRAFTS = 1 << 4, /* special-use, by top-level name */
	MAILDIR_ATTR_SENT = 1 << 5,
	MAILDIR_ATTR_TRASH = 1 << 6,
	MAILDIR_ATTR_JUNK = 1 << 7,
};

struct maildir_folder {
	char *name;	    /* UTF-8, '/' separated, "INBOX" first */
	unsigned int attrs; /* enum maildir_attr */
};

/* Options for delivery and APPEND. */
struct maildir_delivery {
	unsigned int flags; /* stored flags; 0 puts the message in new/,
			     * else in cur/ (\Recent either way) */
	time_t date;	    /* internal date; 0 means now */
	/* Keyword names (valid by maildir_keyword_valid()), added to the
	 * folder's keyword file as needed; names that no longer fit in its
	 * 26 letters are dropped (APPEND SHOULD keep flags, but refusing
	 * the message would lose it). Borrowed for the call. */
	const char *const *keywords;
	size_t keyword_count;
};

/* A flag change, applied to the flags a message has on disk at the
 * moment of its rename: new = (on disk & ~clear) | set, for the stored
 * flags and the keyword letters alike. */
struct maildir_flag_change {
	unsigned int set, clear;	       /* enum maildir_flag, stored */
	uint32_t set_keywords, clear_keywords; /* letters, bit 0 = 'a' */
};

enum maildir_open_flags {
	/* EXAMINE/STATUS: leave new/ alone, refuse flag changes and
	 * expunges. UIDs are still assigned to new files. */
	MAILDIR_OPEN_READONLY = 1 << 0,
};

struct maildir;
struct maildir_cache;

/* ---- names and paths (maildir_folder.c) ---- */

/* Whether user is a name maildir_user_dir() takes: "localpart@domain"
 * with both parts non-empty, one '@', no '/', "..", leading '.' or
 * control characters. 0, or -1 (EINVAL) with *error_r saying what is
 * wrong (for an operator: ringstore -t prints it). */
int maildir_user_check(const char *user, const char **error_r);

/* Map "localpart@domain" to <root>/<domain>/<localpart>/Maildir, lowercased.
 * Refuses what maildir_user_check() refuses. *dir_r is malloc'd and owned
 * by the caller. */
int maildir_user_dir(const char *root, const char *user, char **dir_r,
    const char **error_r);

/* Map an IMAP folder name (UTF-8, '/' hierarchy) to its directory under the
 * Maildir. "INBOX" (any case) is the Maildir itself. A '.' or '%' inside a
 * name is stored as %2E / %25. Refuses (EINVAL) empty components, the
 * components "." and "..", control characters and invalid UTF-8, and
 * (ENAMETOOLONG) names longer than a directory entry. *dir_r is malloc'd
 * and owned by the caller. */
int maildir_folder_dir(const char *maildir, const char *name, char **dir_r,
    const char **error_r);

/* ---- folders (maildir_folder.c) ---- */

/* First login: create the Maildir, Drafts, Sent, Trash and Junk and
 * subscribe them with INBOX, once. Later calls only make sure INBOX exists,
 * so folders the user deleted stay deleted. */
int maildir_user_init(const char *maildir, const char **error_r);

/* Create a folder and any missing parents (RFC 3501 CREATE). EEXIST if the
 * folder exists, including INBOX. */
int maildir_create(const char *maildir, const char *name, const char **error_r);

/* Per-user folder limits (maildir_check_limits()); 0 means no limit. */
struct maildir_limits {
	unsigned int max_folders; /* folders besides INBOX */
	unsigned int max_depth;	  /* levels: "a/b/c" is 3 */
	unsigned int max_name;	  /* bytes of the UTF-8 name */
};

/* Whether CREATE name (from NULL) or RENAME from to name stays within
 * lim: the folder count after name and its missing parents are created,
 * and the depth and length of name and (RENAME) of every child's new
 * name. Not atomic with the create: concurrent sessions of one user can
 * overshoot by one folder each. 0, or -1 with EMLINK (too many folders),
 * ENAMETOOLONG (too deep or too long) or a system error. Names the
 * library refuses anyway pass (the create says why); lim NULL or all 0:
 * no limits. */
int maildir_check_limits(const char *maildir, const struct maildir_limits *lim,
    const char *name, const char *from, const char **error_r);

/* Delete a folder and its messages. EPERM for INBOX, ENOTEMPTY if it has
 * children (they must be deleted first; the IMAP layer answers
 * NO [HASCHILDREN]), ENOENT if it does not exist. */
int maildir_delete(const char *maildir, const char *name, const char **error_r);

/* Rename a folder with all its children; missing parents of the new name are
 * created. Renaming INBOX moves its messages into a new folder and leaves
 * INBOX (and its children) in place. Subscriptions follow the rename. */
int maildir_rename(const char *maildir, const char *from, const char *to,
    const char **error_r);

/* ---- listing and subscriptions (maildir_list.c) ---- */

/* All folders, sorted with INBOX first, with attributes. Parents that exist
 * only because a child does (made by other tools) are listed \Noselect. The
 * caller frees with maildir_list_free(). */
int maildir_list(const char *maildir, struct maildir_folder **list_r,
    size_t *count_r, const char **error_r);
void maildir_list_free(struct maildir_folder *list, size_t count);

/* Counts for STATUS. Assigns UIDs to new files like any sync. */
int maildir_status(const char *maildir, const char *name,
    struct maildir_status *st, const char **error_r);

/* Add or remove a subscription (idempotent; the folder need not exist). */
int maildir_subscribe(const char *maildir, const char *name, bool subscribe,
    const char **error_r);

/* The same within lim (NULL or 0: no limit): a new subscription fails with
 * ENAMETOOLONG past lim->max_name bytes and with EMLINK when INBOX plus
 * lim->max_folders names are subscribed already (names need not exist,
 * so without a cap one user could grow the file, rewritten whole on every
 * change, without end). Removing always works. */
int maildir_subscribe_limited(const char *maildir, const char *name,
    bool subscribe, const struct maildir_limits *lim, const char **error_r);

/* The subscribed names, in file order. Free with maildir_strings_free(). */
int maildir_subscriptions(const char *maildir, char ***names_r, size_t *count_r,
    const char **error_r);
void maildir_strings_free(char **names, size_t count);

/* ---- an open folder (maildir.c) ---- */

/* Open and sync a folder. Read-write opens move new/ messages to cur/ and
 * claim the messages nobody has seen as \Recent. *box_r is owned by the
 * caller (maildir_close()). */
int maildir_open(const char *maildir, const char *name, unsigned int flags,
    struct maildir **box_r, const char **error_r);

/* The same, through a folder snapshot cache (see below; NULL: none). The
 * folder keeps using cache for its later syncs, so cache must outlive it. */
int maildir_open_cached(struct maildir_cache *cache, const char *maildir,
    const char *name, unsigned int flags, struct maildir **box_r,
    const char **error_r);

/* Free the folder and set *box to NULL. Nothing on disk changes. */
void maildir_close(struct maildir **box);

/* Rescan the folder: pick up files added, renamed or removed by anyone,
 * assign UIDs to new files (ascending in name time order) and drop vanished
 * ones from the UID list. If changes is not NULL it receives what changed
 * against the view before the call (free with maildir_changes_free()).
 * Previous message pointers are invalid afterwards. */
int maildir_sync(struct maildir *box, struct maildir_changes *changes,
    const char **error_r);
void maildir_changes_free(struct maildir_changes *changes);

/* Compare two views sorted by UID; only uid, flags and keywords of the
 * elements are read, so callers may diff lightweight copies (say, the view
 * an IDLE session last announced). Returns 0, or -1 (ENOMEM). */
int maildir_diff(const struct maildir_msg *old, size_t old_count,
    const struct maildir_msg *cur, size_t cur_count,
    struct maildir_changes *changes);

/* The current view, sorted by UID; index i is sequence number i + 1. */
const struct maildir_msg *maildir_msgs(const struct maildir *box,
    size_t *count_r);

/* Index of the message with this UID, or -1. Binary search. */
long maildir_find_uid(const struct maildir *box, uint32_t uid);

uint32_t maildir_uidvalidity(const struct maildir *box);
uint32_t maildir_uidnext(const struct maildir *box);
const char *maildir_name(const struct maildir *box);
bool maildir_readonly(const struct maildir *box);

/* The folder directory and the two directories to watch with inotify
 * (IN_CREATE|IN_MOVED_TO|IN_MOVED_FROM|IN_DELETE) to learn that a
 * maildir_sync() would report something. Owned by the folder. */
const char *maildir_dir(const struct maildir *box);
void maildir_watch_paths(const struct maildir *box, const char **new_r,
    const char **cur_r);

/* Whether the IMAP folder name (UTF-8, as maildir_open() takes it) is
 * this open folder. String work only: no disk access. */
bool maildir_is_folder(const struct maildir *box, const char *name);

/* Full path of a message into buf. Returns 0, or -1 if it does not fit. */
int maildir_msg_path(const struct maildir *box, size_t index, char *buf,
    size_t size);

/* Open a message read-only. If another process renamed it (flag change) the
 * new name is found and the view updated; ENOENT if it was expunged.
 * *fd_r is owned by the caller. */
int maildir_msg_open(struct maildir *box, size_t index, int *fd_r,
    const char **error_r);

/*
 * Change a message's flags: a rename into cur/ computed from the name the
 * file has on disk when it is renamed, never from this view, so changes
 * made meanwhile by other sessions or programs are kept (a rename from
 * the exact old name is a compare-and-swap; on ENOENT the current name is
 * looked up and the change recomputed, with a growing jittered pause
 * from the second conflict on, at most MAILDIR_STORE_TRIES times, then
 * EAGAIN). The view takes the flags the file ends with (it
 * may show other writers' changes too), so the next sync does not report
 * them. RECENT stays in memory. ENOENT if the message was expunged. The
 * rename is not fsynced (a killed process loses nothing; a power cut may
 * revert the latest flag changes, never a message).
 */
#define MAILDIR_STORE_TRIES 32
int maildir_change_flags(struct maildir *box, size_t index,
    const struct maildir_flag_change *change, const char **error_r);

/* Replace the six stored flags with flags (keywords stay as they are on
 * disk): maildir_change_flags() with set = flags, clear = the others. */
int maildir_set_flags(struct maildir *box, size_t index, unsigned int flags,
    const char **error_r);

/* Unlink the messages with these UIDs (unknown UIDs are ignored). The view
 * is unchanged: call maildir_sync() next, whose changes carry the EXPUNGE
 * sequence numbers and which drops the UIDs from the list. */
int maildir_expunge(struct maildir *box, const uint32_t *uids, size_t count,
    const char **error_r);

/* COPY (move false) or MOVE (move true) messages by UID into another folder
 * of the same Maildir (may be the same folder). Copies are hard links (a
 * byte copy across devices), moves are renames; each carries the flags its
 * file has at that moment, and its keywords under the destination's own
 * letters (added to its keyword file; names that do not fit are dropped,
 * unnamed letters too). dest_uids[i] receives the
 * new UID of uids[i], or 0 if that message was already gone; with
 * *uidvalidity_r that is COPYUID. On failure nothing is copied (moves are
 * rolled back as far as possible). After a move call maildir_sync() to get
 * the EXPUNGEs for the source. */
int maildir_copy(struct maildir *box, const uint32_t *uids, size_t count,
    const char *dest, bool move, uint32_t *uidvalidity_r, uint32_t *dest_uids,
    const char **error_r);

/* ---- keywords (maildir_keywords.c) ---- */

/* A name that may be stored as a keyword: 1 to MAILDIR_KEYWORD_LEN_MAX
 * ATOM-CHARs of RFC 3501 (no atom-specials, no 8-bit), no leading '\'
 * (system flags), and not NIL (clients read it as the special form). */
bool maildir_keyword_valid(const char *name, size_t len);

/* The name of keyword letter i (0 = 'a') in this folder, or NULL if the
 * letter has none (unknown to the keyword file, an invalid name, or a
 * duplicate of a lower letter's name: letters canonicalises those). */
const char *maildir_keyword_name(const struct maildir *box, unsigned int i);

/* Letters with a name in this folder (duplicates included). */
uint32_t maildir_keywords_named(const struct maildir *box);

/* Map letters as found on disk to the letters whose names to show: each
 * named letter to the lowest letter of the same name, unnamed ones to
 * nothing. */
uint32_t maildir_keywords_canon(const struct maildir *box, uint32_t letters);

/* Whether another keyword can still be created here (a letter is free). */
bool maildir_keywords_room(const struct maildir *box);

/*
 * The letters of names (each valid by maildir_keyword_valid()): every
 * letter carrying each name, case-insensitively. With create, names the
 * folder lacks are added to its keyword file first (under the folder
 * lock, the file replaced atomically and fsynced), all or nothing:
 * EOVERFLOW if they do not all fit in the free letters (nothing is
 * added). Without create, unknown names add no letter. Names added by
 * others are picked up on the way.
 */
int maildir_keywords_get(struct maildir *box, const char *const *names,
    size_t count, bool create, uint32_t *letters_r, const char **error_r);

/* True once after the folder's keyword names changed through this view
 * (a sync, a keyword created, a COPY that read them); clears the mark.
 * A sync reports the same in maildir_changes.keywords_changed. */
bool maildir_keywords_changed(struct maildir *box);

/* ---- folder snapshots (maildir_cache.c) ---- */

/*
 * A per-process cache of synced folder views, so that opening or syncing a
 * folder nobody changed costs three stat() calls and a copy instead of two
 * directory scans and a UID list parse. A snapshot is used only while
 * new/, cur/ and the UID list stat() exactly as they did before the scan
 * that produced it, and only stored when the directories' mtimes were
 * settle_ms old when that scan began (file times move in coarse ticks, so
 * a younger directory could change again without its mtime moving).
 * docs/backend.md gives the argument. Thread-safe (one mutex); bounded by
 * max_entries snapshots and max_bytes of their memory, least recently used
 * dropped first. Returns NULL on allocation failure.
 */
#define MAILDIR_CACHE_SETTLE_MS 2000

struct maildir_cache_stats {
	uint64_t hits;	    /* opens and syncs served from a snapshot */
	uint64_t misses;    /* scanned (no snapshot, or it was stale) */
	uint64_t stores;    /* snapshots stored */
	uint64_t unsettled; /* scans not stored: new/ or cur/ changed
			     * within the settle time (or would not stat) */
	uint64_t evictions; /* dropped for the entry or byte bound */
	size_t entries;
	size_t bytes;
};

struct maildir_cache *maildir_cache_new(size_t max_entries, size_t max_bytes,
    unsigned int settle_ms);

/* Free every snapshot and the cache; sets *cache to NULL. No folder
 * opened through it may still be open. */
void maildir_cache_free(struct maildir_cache **cache);

/* Counters since maildir_cache_new(), and the current size. */
void maildir_cache_stats(struct maildir_cache *cache,
    struct maildir_cache_stats *st);

/* ---- delivery (maildir_deliver.c) ---- */

/* Deliver (LMTP) or APPEND a message: write tmp/ (O_EXCL), fsync, link into
 * new/ or cur/, fsync the directory, then assign the UID. When this returns
 * 0 the message is durable and *uid_r (with *uidvalidity_r: APPENDUID) is
 * permanent. INBOX is created if missing; other folders must exist
 * (ENOENT: the IMAP layer answers NO [TRYCREATE]). opt may be NULL. */
int maildir_deliver(const char *maildir, const char *name, const void *data,
    size_t len, const struct maildir_delivery *opt, uint32_t *uidvalidity_r,
    uint32_t *uid_r, const char **error_r);

/* The same, reading the message from fd's current offset to EOF. */
int maildir_deliver_fd(const char *maildir, const char *name, int fd,
    const struct maildir_delivery *opt, uint32_t *uidvalidity_r,
    uint32_t *uid_r, const char **error_r);

/* The same in pieces, for a message that arrives over time (a streamed
 * APPEND): _begin() resolves the folder (INBOX is created if missing,
 * ENOENT for others) and creates the file in its tmp/ under a fresh
 * unique name; _write() appends bytes; _commit() fsyncs, links into new/
 * or cur/, fsyncs the directory and assigns the UID, with the guarantees
 * of maildir_deliver(); _abort() closes and unlinks the tmp file. Every
 * call blocks (worker threads only), and one handle is used by one thread
 * at a time. The handle *in_r is owned by the caller until _commit() or
 * _abort(), which both free it (whatever the result) and NULL the
 * pointer; _abort(NULL handle) is a no-op. A failed _write() leaves the
 * handle to be aborted. Errors as above; ENOSPC or EDQUOT come with the
 * text "mailbox full". */
struct maildir_incoming;

int maildir_deliver_begin(const char *maildir, const char *name,
    const struct maildir_delivery *opt, struct maildir_incoming **in_r,
    const char **error_r);
int maildir_deliver_write(struct maildir_incoming *in, const void *data,
    size_t len, const char **error_r);
/* Bytes written so far. */
uint64_t maildir_deliver_size(const struct maildir_incoming *in);
int maildir_deliver_commit(struct maildir_incoming **in,
    uint32_t *uidvalidity_r, uint32_t *uid_r, const char **error_r);
void maildir_deliver_abort(struct maildir_incoming **in);

/* write(2) all of p[0..n) to fd, retrying on EINTR: 0, or -1 with errno
 * (EIO for a write that made no progress). The store's own writer, used
 * by ringstore's delivery, spool and content policy for their files too. */
int maildir_write_all(int fd, const void *p, size_t n);

#endif
