/*
 * mime_walk.h - a streaming, bounded MIME walk for content policy: bytes
 * are fed in any split, and each leaf part is reported once its end is
 * known, with its type, disposition, every file name it carries and the
 * byte offsets a caller needs to rewrite the message (replace a part).
 *
 * It reads the structure the way proto/mime.c does (what IMAP shows):
 * the first valid Content-Type counts, a delimiter line is "--" boundary
 * ["--"] white space and a line end, an outer multipart's delimiter ends
 * every part nested inside it, a multipart whose boundary never appears is
 * one leaf, children of multipart/digest default to message/rfc822.
 *
 * Encapsulated messages (message/rfc822 and message/global in 7bit, 8bit
 * or binary) are walked into: the embedded message's parts are reported
 * (in_message set), never the message/rfc822 part itself; one in any other
 * encoding (base64: not allowed by RFC 2046, seen anyway) is a leaf.
 *
 * File names: Content-Disposition filename= and Content-Type name=, plain
 * (unquoted, RFC 2047 encoded words decoded, as clients do even inside
 * quotes), RFC 2231 extended (name*=charset'lang'%xx) and continuations
 * (name*0*=, name*1=, ...), from every such header field; no charset
 * conversion (the bytes as decoded). A name longer than
 * MIME_WALK_NAME_MAX - 1 keeps its head and its tail around "...", so its
 * extension survives.
 *
 * Memory: one header buffer (max_header), a line prefix and the multipart
 * stack, allocated at mime_walk_new(); nothing per byte. Limits give an
 * error status, never a crash or an unbounded wait.
 */
#ifndef RG_PROTO_MIME_WALK_H
#define RG_PROTO_MIME_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_WALK_NAME_MAX 256
#define MIME_WALK_NAMES 6
#define MIME_WALK_TYPE_MAX 128
#define MIME_WALK_DISP_MAX 32
#define MIME_WALK_BOUNDARY_HARD 256 /* max_boundary is capped here */
#define MIME_WALK_DEPTH_HARD 64	    /* and max_depth here */

struct mime_walk_limits {
	unsigned max_depth;  /* entity nesting; the message is depth 0 (20) */
	unsigned max_parts;  /* entities (header blocks) per message (1000) */
	size_t max_header;   /* bytes of one header block (64 KiB) */
	size_t max_boundary; /* boundary parameter length (200; RFC: 70) */
};

enum mime_walk_status {
	MIME_WALK_OK = 0,
	MIME_WALK_STOPPED,  /* the callback returned -1 */
	MIME_WALK_DEPTH,    /* nesting deeper than max_depth */
	MIME_WALK_PARTS,    /* more than max_parts entities */
	MIME_WALK_HEADER,   /* a header block longer than max_header */
	MIME_WALK_BOUNDARY, /* a boundary longer than max_boundary */
};

struct mime_walk_name {
	char s[MIME_WALK_NAME_MAX]; /* NUL-terminated; may hold NULs */
	size_t len;
	bool cut; /* head + "..." + tail of a longer name */
};

/*
 * One leaf. Offsets are stream offsets (bytes fed before):
 * [hdr_off, body_off) is the part's header with its empty line,
 * [body_off, end_off) its body; the line break before the next delimiter
 * belongs to the delimiter and is not in the body. For the message itself
 * (depth 0) hdr_off is 0. A part whose header never ended has
 * body_off == end_off.
 */
struct mime_walk_part {
	uint64_t hdr_off, body_off, end_off;
	unsigned index; /* leaf number from 0, in stream order */
	unsigned depth;
	bool in_message; /* inside an encapsulated message/rfc822 */
	bool broken;	 /* a multipart without its boundary: one leaf */
	char type[MIME_WALK_TYPE_MAX];	      /* lower case "type/subtype" */
	char disposition[MIME_WALK_DISP_MAX]; /* lower case; "" absent */
	char encoding[MIME_WALK_DISP_MAX];    /* lower case; "" absent */
	/*
	 * Every distinct file name: Content-Disposition's (the RFC 2231
	 * form before the plain one), then Content-Type's name. names[0] is
	 * what a client shows; a policy should look at all of them.
	 */
	struct mime_walk_name names[MIME_WALK_NAMES];
	unsigned nnames;
};

/* Called for each leaf; return 0 to go on, -1 to stop the walk. */
typedef int mime_walk_fn(void *ctx, const struct mime_walk_part *part);

struct mime_walk;

/* Defaults for any zero field of lim (NULL: all defaults); values above
 * the hard caps are capped. NULL on allocation failure. */
struct mime_walk *mime_walk_new(const struct mime_walk_limits *lim,
    mime_walk_fn *fn, void *ctx);
/* Nulls *w; NULL is a no-op. */
void mime_walk_free(struct mime_walk **w);

/*
 * Feed the next len bytes. Returns 0, or -1 once the walk has failed or
 * stopped (mime_walk_status() says why; later calls keep failing). The
 * callback runs inside feed and finish.
 */
int mime_walk_feed(struct mime_walk *w, const char *p, size_t len);

/* End of the stream: reports what is still open. Returns 0 or -1. */
int mime_walk_finish(struct mime_walk *w);

enum mime_walk_status mime_walk_status(const struct mime_walk *w);
/* "ok", "stopped", "depth", "parts", "header", "boundary". */
const char *mime_walk_status_name(enum mime_walk_status st);
/* Leaves reported so far. */
unsigned mime_walk_leaves(const struct mime_walk *w);

#endif
