/*
 * smtp_meter.c - the side-watcher of a relayed submission session (see
 * smtp_meter.h): a line scanner for the client's commands, an
 * end-of-data matcher for DATA content, a byte count for BDAT chunks,
 * and a reply counter on the server's side that says which message a
 * final reply judged. Fixed state, no allocation; every input is legal.
 */
#include <string.h>
#include <strings.h>

#include "proto/smtp_meter.h"

static void client_cmd(struct smtp_meter *m, const char *p, size_t n);
static size_t client_data(struct smtp_meter *m, const char *p, size_t n);
static size_t client_bdat(struct smtp_meter *m, size_t n);
static void command(struct smtp_meter *m);
static bool parse_bdat(const char *p, size_t n, uint64_t *size, bool *last);
static void message_end(struct smtp_meter *m, uint64_t reply);
static void reply(struct smtp_meter *m);

void
smtp_meter_init(struct smtp_meter *m)
{
	memset(m, 0, sizeof(*m));
}

/* ---- the client's side ---------------------------------------------- */

void
smtp_meter_client(struct smtp_meter *m, const char *p, size_t n)
{
	while (n > 0) {
		size_t used;

		switch (m->state) {
		case SMTP_METER_DATA:
			used = client_data(m, p, n);
			break;
		case SMTP_METER_BDAT:
			used = client_bdat(m, n);
			break;
		default: {
			const char *lf = memchr(p, '\n', n);

			used = lf != NULL ? (size_t)(lf - p) + 1 : n;
			client_cmd(m, p, used);
			break;
		}
		}
		p += used;
		n -= used;
	}
}

/* Part of a command line, the line's LF last if it has one. */
static void
client_cmd(struct smtp_meter *m, const char *p, size_t n)
{
	bool end = n > 0 && p[n - 1] == '\n';
	size_t keep = end ? n - 1 : n;

	if (keep > SMTP_METER_LINE - m->nline)
		keep = SMTP_METER_LINE - m->nline;
	memcpy(m->line + m->nline, p, keep);
	m->nline += keep;
	if (end) {
		command(m);
		m->nline = 0;
	}
}

/* A whole command line is in m->line (its first SMTP_METER_LINE bytes). */
static void
command(struct smtp_meter *m)
{
	size_t n = m->nline;
	const char *p = m->line;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	m->asked++;
	if (n == 4 && strncasecmp(p, "DATA", 4) == 0) {
		m->state = SMTP_METER_DATA;
		m->data_at = m->asked;
		m->eod = 2; /* the DATA line's CRLF starts "\r\n.\r\n" */
		m->size = 0;
	} else if (n > 5 && strncasecmp(p, "BDAT ", 5) == 0 &&
	    m->nline < SMTP_METER_LINE &&
	    parse_bdat(p + 5, n - 5, &m->left, &m->last)) {
		m->state = SMTP_METER_BDAT;
		if (m->left == 0) /* "BDAT 0 LAST" */
			(void)client_bdat(m, 0);
	} else if (n == 4 && strncasecmp(p, "QUIT", 4) == 0) {
		m->quit = true;
	}
}

/* "<size>" or "<size> LAST" (RFC 3030): size is 1 to 20 digits that fit. */
static bool
parse_bdat(const char *p, size_t n, uint64_t *size, bool *last)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && p[i] >= '0' && p[i] <= '9') {
		unsigned d = (unsigned)(p[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		i++;
	}
	if (i == 0)
		return false;
	if (i == n)
		*last = false;
	else if (n - i == 5 && strncasecmp(p + i, " LAST", 5) == 0)
		*last = true;
	else
		return false;
	*size = v;
	return true;
}

/* DATA content: look for <CRLF>.<CRLF>; returns the bytes taken. */
static size_t
client_data(struct smtp_meter *m, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];

		if (m->eod == 0) {
			/* nothing matched: jump to the next CR */
			const char *cr = memchr(p + i, '\r', n - i);

			if (cr == NULL) {
				i = n;
				break;
			}
			i = (size_t)(cr - p);
			c = '\r';
		}
		i++;
		if (m->eod == 4 && c == '\n') {
			m->size += i;
			m->size -= 3; /* ".\r\n" is not content */
			m->state = SMTP_METER_CMD;
			m->eod = 0;
			m->asked++;
			message_end(m, m->asked);
			return i;
		}
		if (c == '\r')
			m->eod = m->eod == 3 ? 4 : 1;
		else if (c == '\n')
			m->eod = m->eod == 1 ? 2 : 0;
		else if (c == '.')
			m->eod = m->eod == 2 ? 3 : 0;
		else
			m->eod = 0;
	}
	m->size += n;
	return n;
}

/* A BDAT chunk's bytes: up to n taken; the chunk's end ends the message
 * when it was LAST. */
static size_t
client_bdat(struct smtp_meter *m, size_t n)
{
	size_t take = m->left < n ? (size_t)m->left : n;

	m->left -= take;
	m->size += take;
	if (m->left == 0) {
		m->state = SMTP_METER_CMD;
		if (m->last)
			message_end(m, m->asked);
	}
	return take;
}

/* The message's last byte went out; reply is the number of the final
 * reply that will judge it. */
static void
message_end(struct smtp_meter *m, uint64_t reply_no)
{
	if (m->size > m->largest)
		m->largest = m->size;
	if (m->nends == SMTP_METER_ENDS) {
		m->unmatched++;
	} else {
		m->ends[m->nends].reply = reply_no;
		m->ends[m->nends].size = m->size;
		m->nends++;
	}
	m->size = 0;
}

/* ---- the server's side ---------------------------------------------- */

void
smtp_meter_server(struct smtp_meter *m, const char *p, size_t n)
{
	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t len = lf != NULL ? (size_t)(lf - p) : n;
		size_t keep = sizeof(m->code) - m->ncode;

		if (keep > len)
			keep = len;
		memcpy(m->code + m->ncode, p, keep);
		m->ncode += keep;
		if (lf == NULL)
			return;
		/* "250-..." goes on; "250 ...", "250" or junk ends a reply */
		if (!(m->ncode == sizeof(m->code) && m->code[3] == '-'))
			reply(m);
		m->ncode = 0;
		p = lf + 1;
		n -= len + 1;
	}
}

/* A final reply: what it answered, by count. */
static void
reply(struct smtp_meter *m)
{
	bool ok = m->ncode > 0 && m->code[0] == '2';

	m->answered++;
	if (m->data_at != 0 && m->answered >= m->data_at) {
		/* DATA refused: what the client sent meanwhile was not
		 * content (a client that waits for 354 sent nothing) */
		if (m->answered == m->data_at &&
		    !(m->ncode > 0 && m->code[0] == '3') &&
		    m->state == SMTP_METER_DATA) {
			m->state = SMTP_METER_CMD;
			m->eod = 0;
			m->size = 0;
			m->nline = 0;
		}
		m->data_at = 0;
	}
	while (m->nends > 0 && m->ends[0].reply <= m->answered) {
		if (m->ends[0].reply == m->answered) {
			if (ok) {
				m->accepted++;
				m->accepted_bytes += m->ends[0].size;
			} else {
				m->refused++;
			}
		} else {
			/* ended after more replies than were asked for */
			m->unmatched++;
		}
		m->nends--;
		memmove(&m->ends[0], &m->ends[1],
		    m->nends * sizeof(m->ends[0]));
	}
}
