/*
 * fuzz_imap_input.c - the IMAP input discipline (proto/imap_input.c)
 * under arbitrary input, through the session stand-in of its unit test.
 *
 * The first byte picks the limits (before login with the ID budget and no
 * swallowing, or after login with LITERAL+ swallowing) and whether
 * synchronizing literals are refused; the second seeds the split. The
 * rest is fed whole, one byte at a time and in pseudo-random pieces: all
 * three transcripts must be identical, so no event depends on how the
 * bytes arrived.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/imap_input_driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct imap_input_conf
conf_for(uint8_t sel)
{
	struct imap_input_conf c;

	memset(&c, 0, sizeof(c));
	if (sel & 1) { /* after login */
		c.lim.max_line = 1024;
		c.lim.max_command = 4096;
		c.lim.max_literal = 512;
		c.lim.max_nonsync = 512;
		c.lim.max_inline_literal = 64;
		c.lim.max_args = 256;
		c.swallow_max = sel & 4 ? 0 : 2048;
	} else { /* before login */
		c.lim.max_line = 128;
		c.lim.max_command = 128;
		c.lim.max_literal = 64;
		c.lim.max_nonsync = 64;
		c.lim.max_inline_literal = 64;
		c.lim.max_args = 16;
		c.lim.big_name = "ID";
		c.lim.big_line = c.lim.big_command = 1024;
	}
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_input_conf conf;
	size_t one = 1, cuts[8];
	char *whole, *bytes, *pieces;
	bool refuse;

	if (size < 2)
		return 0;
	conf = conf_for(data[0]);
	refuse = data[0] & 2;
	for (size_t i = 0; i < 8; i++)
		cuts[i] = 1 + ((data[1] >> (i % 4)) + i * 7) % 13;
	data += 2;
	size -= 2;
	whole = drv_run(&conf, (const char *)data, size, NULL, 0, refuse);
	bytes = drv_run(&conf, (const char *)data, size, &one, 1, refuse);
	pieces = drv_run(&conf, (const char *)data, size, cuts, 8, refuse);
	if (strcmp(whole, bytes) != 0 || strcmp(whole, pieces) != 0)
		abort();
	free(whole);
	free(bytes);
	free(pieces);
	return 0;
}
