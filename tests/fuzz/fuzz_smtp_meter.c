/*
 * fuzz_smtp_meter.c - libFuzzer target for the side-watcher of relayed
 * submission sessions (proto/smtp_meter.c).
 *
 * The input is a transcript of records: one header byte (high bit: the
 * server's side, else the client's; low 7 bits: the length), then that
 * many bytes. Each record is fed whole to one meter and one byte at a
 * time to another. Properties, not just crashes: both meters agree on
 * every count and state, the kept line and reply code never pass their
 * arrays, no more messages are judged than ended, and the message being
 * sent is never counted before it ends. A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_meter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct smtp_meter *m, uint64_t ended)
{
	if (m->nline > SMTP_METER_LINE || m->ncode > sizeof(m->code) ||
	    m->nends > SMTP_METER_ENDS || m->eod > 4 ||
	    m->state > SMTP_METER_BDAT)
		abort();
	if (m->accepted + m->refused + m->nends + m->unmatched > ended)
		abort();
}

static uint64_t
ends_of(const struct smtp_meter *m)
{
	return m->accepted + m->refused + m->nends + m->unmatched;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_meter a, b;
	size_t i = 0;
	uint64_t ended = 0;

	smtp_meter_init(&a);
	smtp_meter_init(&b);
	while (i < size) {
		bool server = (data[i] & 0x80) != 0;
		size_t n = data[i] & 0x7f;
		const char *p = (const char *)data + i + 1;
		uint64_t before = ends_of(&a);

		i++;
		if (n > size - i)
			n = size - i;
		if (server)
			smtp_meter_server(&a, p, n);
		else
			smtp_meter_client(&a, p, n);
		for (size_t k = 0; k < n; k++) {
			if (server)
				smtp_meter_server(&b, p + k, 1);
			else
				smtp_meter_client(&b, p + k, 1);
		}
		/* the server's side never ends a message */
		if (server && ends_of(&a) != before)
			abort();
		ended = ends_of(&a);
		check(&a, ended);
		check(&b, ended);
		if (a.state != b.state || a.asked != b.asked ||
		    a.answered != b.answered || a.accepted != b.accepted ||
		    a.refused != b.refused ||
		    a.accepted_bytes != b.accepted_bytes ||
		    a.largest != b.largest || a.size != b.size ||
		    a.quit != b.quit || a.unmatched != b.unmatched)
			abort();
		i += n;
	}
	return 0;
}
