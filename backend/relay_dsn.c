/*
 * relay_dsn.c - the delivery status notification (RFC 3464, RFC 3462's
 * multipart/report) the queue runner sends to a sender whose message
 * could not be relayed to some recipients. Pure text building: the
 * caller reads the original header and delivers the result.
 *
 * What it must never do: put a byte from the smarthost or the original
 * message anywhere but in a field made for it (replies were cut to
 * printable ASCII when they were read, addresses cannot hold CR or LF),
 * or write a DSN for a null sender (the caller checks; a DSN's own
 * envelope sender is null, so there is never a DSN about a DSN).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/relay_private.h"

struct out {
	char *p;
	size_t len, cap;
	int err;
};

static void put(struct out *o, const char *s, size_t n);
static void putf(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put_date(struct out *o, time_t t);
static void put_headers(struct out *o, const char *hdr, size_t hlen);
static const char *reply_of(const struct spool_rcpt *r);

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->err)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t nc = o->cap ? o->cap : 4096;
		char *q;

		while (nc < o->len + n + 1)
			nc *= 2;
		if ((q = realloc(o->p, nc)) == NULL) {
			o->err = 1;
			return;
		}
		o->p = q;
		o->cap = nc;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void
putf(struct out *o, const char *fmt, ...)
{
	char b[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->err = 1;
		return;
	}
	put(o, b, (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
}

/* RFC 5322 date-time in UTC, C locale names. */
static void
put_date(struct out *o, time_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	putf(o, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
	    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
}

size_t
relay_dsn_header_len(const char *p, size_t n)
{
	size_t i = 0, last = 0;

	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t end;

		if (nl == NULL)
			break;
		end = (size_t)(nl - p) + 1;
		/* an empty line (LF or CRLF) ends the header */
		if (end - i == 1 || (end - i == 2 && p[i] == '\r'))
			return i;
		last = end;
		i = end;
	}
	return last;
}

/* The header with every line ending in CRLF, bare CRs dropped. */
static void
put_headers(struct out *o, const char *hdr, size_t hlen)
{
	size_t i = 0;

	while (i < hlen) {
		const char *nl = memchr(hdr + i, '\n', hlen - i);
		size_t end = nl ? (size_t)(nl - hdr) : hlen, j;

		for (j = i; j < end; j++)
			if (hdr[j] != '\r')
				put(o, hdr + j, 1);
		put(o, "\r\n", 2);
		i = end + 1;
	}
}

static const char *
reply_of(const struct spool_rcpt *r)
{
	return r->reply[0] ? r->reply : "no reply";
}

int
relay_dsn_build(const struct spool_entry *e, const struct relay_dsn *d,
    const char *hdr, size_t hlen, char **out_r, size_t *len_r)
{
	struct out o = { 0 };
	char boundary[64];

	snprintf(boundary, sizeof(boundary), "=_rs_dsn_%s_%lld", e->id,
	    (long long)d->now);
	putf(&o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    d->reporting);
	putf(&o, "To: <%s>\r\n", e->sender);
	put(&o, "Subject: Undelivered Mail Returned to Sender\r\n", 46);
	put(&o, "Date: ", 6);
	put_date(&o, d->now);
	putf(&o, "\r\nMessage-ID: <%s.%lld.dsn@%s>\r\n", e->id,
	    (long long)d->now, d->reporting);
	put(&o, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n", 49);
	putf(&o,
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    "\r\n\tboundary=\"%s\"\r\n\r\n",
	    boundary);
	put(&o, "This is a MIME-encapsulated message.\r\n\r\n", 40);

	/* 1: for the person */
	putf(&o,
	    "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "This is the mail system at host %s.\r\n\r\n"
	    "Your message could not be delivered to one or more "
	    "recipients.\r\nIt is attached below (its header only).\r\n\r\n",
	    boundary, d->reporting);
	for (size_t i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].state == SPOOL_RCPT_FAILED)
			putf(&o, "<%s>: %s\r\n", e->rcpts[i].addr,
			    reply_of(&e->rcpts[i]));
	put(&o, "\r\n", 2);

	/* 2: for programs (RFC 3464 section 2) */
	putf(&o,
	    "--%s\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; %s\r\nX-Ringstore-Queue-ID: %s\r\n"
	    "Arrival-Date: ",
	    boundary, d->reporting, e->id);
	put_date(&o, e->arrival);
	put(&o, "\r\n", 2);
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct spool_rcpt *r = &e->rcpts[i];

		if (r->state != SPOOL_RCPT_FAILED)
			continue;
		putf(&o,
		    "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\n"
		    "Status: %s\r\n",
		    r->addr, r->status[0] ? r->status : "5.0.0");
		/* a reply that starts with a code came from the smarthost */
		if (r->reply[0] >= '2' && r->reply[0] <= '5') {
			putf(&o, "Remote-MTA: dns; %s\r\n", d->remote);
			putf(&o, "Diagnostic-Code: smtp; %s\r\n", r->reply);
		} else {
			putf(&o, "Diagnostic-Code: X-ringstore; %s\r\n",
			    reply_of(r));
		}
		put(&o, "Last-Attempt-Date: ", 19);
		put_date(&o, d->now);
		put(&o, "\r\n", 2);
	}
	put(&o, "\r\n", 2);

	/* 3: the original header */
	putf(&o, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
	put_headers(&o, hdr, hlen);
	putf(&o, "\r\n--%s--\r\n", boundary);
	if (o.err) {
		free(o.p);
		return -1;
	}
	*out_r = o.p;
	*len_r = o.len;
	return 0;
}
