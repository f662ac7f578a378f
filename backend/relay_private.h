/*
 * relay_private.h - what the queue runner's files share: the DSN writer
 * (relay_dsn.c), which relay.c calls on a store-pool thread and the unit
 * tests call directly.
 */
#ifndef RG_BACKEND_RELAY_PRIVATE_H
#define RG_BACKEND_RELAY_PRIVATE_H

#include <stddef.h>
#include <time.h>

#include "backend/spool.h"

/* At most this much of the original message's header is read for the
 * DSN's text/rfc822-headers part. */
#define RELAY_DSN_HEADERS_MAX (64u << 10)

struct relay_dsn {
	const char *reporting; /* our host name: Reporting-MTA, From */
	const char *remote;    /* the smarthost's name: Remote-MTA */
	time_t now;
};

/*
 * An RFC 3464 delivery status notification for the recipients of e in
 * state SPOOL_RCPT_FAILED, addressed to e->sender, from MAILER-DAEMON:
 * multipart/report (report-type=delivery-status) with a human-readable
 * part, a message/delivery-status part (Reporting-MTA, Arrival-Date; per
 * recipient Final-Recipient, Action: failed, Status, Remote-MTA and
 * Diagnostic-Code when the smarthost answered) and the original header
 * (hdr[0..hlen), any line ends; written with CRLF) as
 * text/rfc822-headers. CRLF line ends throughout. *out_r is malloc'd.
 * 0, or -1 when out of memory.
 */
int relay_dsn_build(const struct spool_entry *e, const struct relay_dsn *d,
    const char *hdr, size_t hlen, char **out_r, size_t *len_r);

/* The header of a message: hdr[0..return) up to and without the empty
 * line that ends it (or up to the last whole line when there is none). */
size_t relay_dsn_header_len(const char *p, size_t n);

#endif
