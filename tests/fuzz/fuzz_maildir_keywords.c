/*
 * fuzz_maildir_keywords.c - the dovecot-keywords parser
 * (maildir_keywords.c) under arbitrary file contents.
 *
 * The input is the whole file as another program might have left it. The
 * parsed map must be consistent: a name for exactly the letters that have
 * a line, only valid keywords in the valid set, each valid letter's
 * canonical letter the lowest valid one with the same name
 * (case-insensitively), and a lookup of any valid name finding its own
 * letter. Then it is freed, so ASan sees every leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/maildir_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct md_keywords kw;
	size_t i, j;

	md_keywords_init(&kw);
	if (md_keywords_parse((const char *)data, size, &kw) == -1)
		return 0; /* out of memory: kw is empty */
	if ((kw.valid & ~kw.present) != 0 || (kw.present >> 26) != 0)
		abort();
	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		uint32_t bit = 1u << i;

		if ((kw.names[i] != NULL) != ((kw.present & bit) != 0))
			abort();
		if (!(kw.valid & bit))
			continue;
		if (!maildir_keyword_valid(kw.names[i], strlen(kw.names[i])) ||
		    !(md_keywords_find(&kw, kw.names[i]) & bit))
			abort();
		j = kw.canon[i];
		if (j > i || !(kw.valid & (1u << j)) ||
		    strcasecmp(kw.names[j], kw.names[i]) != 0)
			abort();
		for (j = 0; j < kw.canon[i]; j++)
			if ((kw.valid & (1u << j)) &&
			    strcasecmp(kw.names[j], kw.names[i]) == 0)
				abort();
	}
	md_keywords_free(&kw);
	if (kw.present != 0 || kw.valid != 0)
		abort();
	return 0;
}
