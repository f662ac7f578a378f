/*
 * fuzz_policy.c - the content policy's strip mode (backend/policy.c) on
 * arbitrary messages: what it writes must be safe to deliver.
 *
 * The message goes into a memfd; policy_run() strips every leaf named
 * *.exe or typed application/x-bad (no clamd). Then:
 *   - the verdict is PASS, STRIPPED, or REJECT for a MIME limit or a
 *     message that is itself the attachment; never TEMPFAIL;
 *   - a stripped copy walks to the same number of leaves, and the same
 *     policy in reject mode passes it: nothing refused is left;
 *   - the copy's bytes outside the refused parts are the input's.
 * The limits are small so that every limit is reached.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/policy.h"
#include "proto/mime_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *exts[] = { ".exe" };
static char *types[] = { "application/x-bad" };

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static int
memfd_with(const void *p, size_t len)
{
	int fd = memfd_create("fuzz_policy", MFD_CLOEXEC);

	check(fd != -1);
	check(write(fd, p, len) == (ssize_t)len);
	return fd;
}

static int
count_leaf(void *ctx, const struct mime_walk_part *p)
{
	(void)p;
	(*(unsigned *)ctx)++;
	return 0;
}

static unsigned
leaves(const struct content_policy *cp, const char *p, size_t len,
    enum mime_walk_status *st)
{
	struct mime_walk_limits lim = { (unsigned)cp->max_depth,
		(unsigned)cp->max_parts, (size_t)cp->max_header, 0 };
	unsigned n = 0;
	struct mime_walk *w = mime_walk_new(&lim, count_leaf, &n);

	check(w != NULL);
	if (mime_walk_feed(w, p, len) == 0)
		(void)mime_walk_finish(w);
	*st = mime_walk_status(w);
	mime_walk_free(&w);
	return n;
}

/* in and out agree up to the first note: the first difference is at
 * (or within a note header's length after) where a note begins. */
static void
check_prefix(const char *in, size_t ilen, const char *out, size_t olen)
{
	static const char note[] = "Content-Type: text/plain; charset=us-ascii";
	size_t k = 0, from, span;

	while (k < ilen && k < olen && in[k] == out[k])
		k++;
	if (k == olen && k == ilen)
		return;
	from = k > sizeof(note) ? k - sizeof(note) : 0;
	span = olen - from < 2 * sizeof(note) ? olen - from : 2 * sizeof(note);
	check(memmem(out + from, span, note, sizeof(note) - 1) != NULL);
}

static char tmpdir[] = "/tmp/fuzz_policy.XXXXXX";

/* Every copy is discarded, so the directory is empty at exit. */
static void
remove_tmpdir(void)
{
	(void)rmdir(tmpdir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool made;
	struct content_policy cp = { 0 };
	struct policy_result r;
	enum policy_verdict v;
	enum mime_walk_status st, st2;
	const char *msg = (const char *)data;
	unsigned n_in, n_out;
	size_t olen;
	char *out;
	int fd;

	if (!made) {
		check(mkdtemp(tmpdir) != NULL);
		atexit(remove_tmpdir);
		made = true;
	}
	cp.attachments = POLICY_ATTACH_STRIP;
	cp.extensions = exts;
	cp.nextensions = 1;
	cp.types = types;
	cp.ntypes = 1;
	cp.mime_limit = POLICY_LIMIT_REJECT;
	cp.max_depth = 6;
	cp.max_parts = 40;
	cp.max_header = 2048;
	fd = memfd_with(data, size);
	v = policy_run(&cp, fd, tmpdir, &r);
	close(fd);
	check(v == r.verdict);
	check(v == POLICY_PASS || v == POLICY_STRIPPED ||
	    (v == POLICY_REJECT &&
		(r.reason == POLICY_R_MIME_LIMIT ||
		    r.reason == POLICY_R_ROOT_ATTACHMENT)));
	check(r.reply[0] == '\0' || v == POLICY_REJECT);
	if (v != POLICY_STRIPPED) {
		check(r.fd == -1 && r.path[0] == '\0');
		check(v != POLICY_PASS || r.refused == 0);
		return 0;
	}
	check(r.refused > 0 && r.fd != -1);
	olen = (size_t)r.size;
	out = malloc(olen + 1);
	check(out != NULL);
	check(pread(r.fd, out, olen, 0) == (ssize_t)olen);
	policy_result_discard(&r);
	check(r.fd == -1);
	n_in = leaves(&cp, msg, size, &st);
	n_out = leaves(&cp, out, olen, &st2);
	check(st == MIME_WALK_OK);
	/* the notes are smaller than most parts, never deeper: a walk that
	 * was within the limits stays within them */
	check(st2 == MIME_WALK_OK || st2 == MIME_WALK_HEADER);
	if (st2 == MIME_WALK_OK)
		check(n_out == n_in);
	check_prefix(msg, size, out, olen);
	/* nothing refused is left */
	cp.attachments = POLICY_ATTACH_REJECT;
	cp.max_header = 1 << 20;
	fd = memfd_with(out, olen);
	v = policy_run(&cp, fd, tmpdir, &r);
	close(fd);
	check(v == POLICY_PASS);
	free(out);
	return 0;
}
