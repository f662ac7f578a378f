/*
 * fuzz_base64.c - the strict base64 decoder and the encoder.
 *
 * Properties checked, not just crashes: whatever decodes (without
 * whitespace) re-encodes to exactly the input, since strict base64 has one
 * spelling per byte string; whatever is encoded decodes back to itself;
 * the whitespace-tolerant mode accepts everything the strict mode does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	size_t cap = size + 3, len, wlen, elen; /* >= decoded_max() */
	unsigned char *out = malloc(cap), *wout = malloc(cap);
	char *enc = NULL;
	enum base64_rc rc, wrc;

	if (out == NULL || wout == NULL)
		goto done;
	rc = base64_decode(text, size, out, cap, &len, 0);
	wrc = base64_decode(text, size, wout, cap, &wlen, BASE64_WS);
	if (rc == BASE64_NOSPACE || wrc == BASE64_NOSPACE)
		abort(); /* decoded_max is an upper bound */
	if (rc == BASE64_OK) {
		if (wrc != BASE64_OK || wlen != len ||
		    memcmp(out, wout, len) != 0 ||
		    len > base64_decoded_max(size))
			abort();
		if (base64_encoded_len(len, &elen) == -1 || elen != size ||
		    (enc = malloc(elen + 1)) == NULL)
			abort();
		if (base64_encode(out, len, enc, elen + 1, NULL) == -1 ||
		    memcmp(enc, text, size) != 0)
			abort();
		free(enc);
	}
	/* And the other way round, with the raw input as data. */
	if (base64_encoded_len(size, &elen) == -1 ||
	    (enc = malloc(elen + 1)) == NULL)
		goto done;
	if (base64_encode(data, size, enc, elen + 1, &elen) == -1 ||
	    base64_decode(enc, elen, out, cap, &len, 0) != BASE64_OK ||
	    len != size || memcmp(out, data, size) != 0)
		abort();
	free(enc);
done:
	free(out);
	free(wout);
	return 0;
}
