/*
 * smtp_data.c - the DATA reader and the dot-stuffing writer
 * (proto/smtp_data.h).
 *
 * The reader is a byte state machine whose only memory between calls is
 * its state: at the start of a line, after a line-start dot, after ".\r",
 * in a line, or after a CR that ended the previous input (its LF may be
 * next). Runs of input that come out unchanged are handed out as one
 * slice; a byte that changes the output (a stuffing dot, a bare CR or LF,
 * a CR whose LF is in the next input) ends the run, and is taken alone by
 * the next call. So a call hands out at most one slice and never needs to
 * buffer a byte: the only bytes it makes up are CRLF, from static memory.
 * Never reads at or past n, never takes a byte after the end-of-data line.
 *
 * The writer is the mirror: it makes CRLF of CRLF and of a bare LF and
 * drops a bare CR, as the reader's NORMALISE mode does, so that reading
 * what it wrote gives back the message with CRLF line ends, byte for byte,
 * and reading then writing again gives the same wire bytes.
 */
#include <string.h>

#include "proto/smtp_data.h"

enum state {
	S_BOL = 0, /* at the start of a line (also the very first byte) */
	S_DOT,	   /* a line-start dot was taken */
	S_DOT_CR,  /* ".\r" at the start of a line: LF ends the data */
	S_MID,	   /* inside a line */
	S_CR,	   /* a CR ended the last input; its LF may come first */
};

static const char crlf[2] = { '\r', '\n' };

static const struct smtp_reply r_too_big = { 552, "5.3.4", "Message too big" };
static const struct smtp_reply r_bare = { 550, "5.5.2",
	"Bare CR or LF in message data (RFC 5321 2.3.8)" };

static size_t scan(struct smtp_data *d, const unsigned char *u, size_t n);
static void grow(struct smtp_data *d, uint64_t k);
static void line_end(struct smtp_data *d);
static void check_long(struct smtp_data *d);
static void bare(struct smtp_data *d, uint64_t *counter);
static enum smtp_data_ev give_crlf(size_t used, size_t *used_r,
    const char **out_r, size_t *out_len_r);

void
smtp_data_init(struct smtp_data *d, const struct smtp_data_conf *conf)
{
	memset(d, 0, sizeof(*d));
	d->conf = *conf;
	if (d->conf.max_line == 0)
		d->conf.max_line = SMTP_DATA_LINE_MAX;
	d->state = S_BOL;
}

void
smtp_data_discard(struct smtp_data *d)
{
	d->discarding = true;
}

const struct smtp_reply *
smtp_data_error(const struct smtp_data *d)
{
	if (d->too_big)
		return &r_too_big;
	if (d->conf.mode == SMTP_DATA_REJECT && (d->bare_cr || d->bare_lf))
		return &r_bare;
	return NULL;
}

/*
 * The bytes of u[0..n) before the first CR or LF: their number, with NUL
 * and 8-bit bytes noted. Done in passes that libc and the compiler turn
 * into vector code (memchr, an OR reduction), as every message byte goes
 * through here.
 */
static size_t
scan(struct smtp_data *d, const unsigned char *u, size_t n)
{
	const unsigned char *lf = memchr(u, '\n', n), *cr, *z = u;
	size_t end = lf ? (size_t)(lf - u) : n;
	unsigned char acc = 0;

	if ((cr = memchr(u, '\r', end)) != NULL)
		end = (size_t)(cr - u);
	for (size_t k = 0; k < end; k++)
		acc |= u[k];
	if (acc & 0x80)
		d->eight_bit = true;
	while ((z = memchr(z, '\0', end - (size_t)(z - u))) != NULL) {
		d->nul++;
		z++;
	}
	return end;
}

/* k more message bytes (handed out or not) */
static void
grow(struct smtp_data *d, uint64_t k)
{
	d->size += k;
	if (d->conf.max_size != 0 && d->size > d->conf.max_size) {
		d->too_big = true;
		d->discarding = true;
	}
}

/* counted as soon as the line passes the limit, so a session can act on
 * a line that never ends */
static void
check_long(struct smtp_data *d)
{
	if (!d->line_long && d->line_len > d->conf.max_line) {
		d->line_long = true;
		d->long_lines++;
	}
}

/* a CRLF was handed out (or would have been) */
static void
line_end(struct smtp_data *d)
{
	d->line_len += 2;
	check_long(d);
	if (d->line_len > d->longest)
		d->longest = d->line_len;
	d->line_len = 0;
	d->line_long = false;
}

static void
bare(struct smtp_data *d, uint64_t *counter)
{
	(*counter)++;
	if (d->conf.mode == SMTP_DATA_REJECT)
		d->discarding = true;
}

static enum smtp_data_ev
give_crlf(size_t used, size_t *used_r, const char **out_r, size_t *out_len_r)
{
	*used_r = used;
	*out_r = crlf;
	*out_len_r = 2;
	return SMTP_DATA_BYTES;
}

/*
 * The run is p[run..i) when have_run: bytes that come out as they came
 * in, possibly over several lines. It is handed out when a byte that
 * changes the output is reached, or at the end of the input.
 */
enum smtp_data_ev
smtp_data_next(struct smtp_data *d, const char *p, size_t n, size_t *used_r,
    const char **out_r, size_t *out_len_r)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, run = 0, start;
	bool have_run = false;

	*used_r = 0;
	*out_r = NULL;
	*out_len_r = 0;
	if (d->done)
		return SMTP_DATA_END;
	while (i < n) {
		switch (d->state) {
		case S_BOL:
			if (u[i] != '.') {
				d->state = S_MID;
				break;
			}
			if (have_run && !d->discarding)
				goto flush; /* the dot alone, next call */
			i++;
			d->state = S_DOT;
			break;
		case S_DOT:
			/* a dot then anything but CRLF: the dot was
			 * stuffing, and is gone */
			if (u[i] == '\r') {
				i++;
				d->state = S_DOT_CR;
			} else {
				d->state = S_MID;
			}
			break;
		case S_DOT_CR:
			if (u[i] == '\n') {
				d->done = true;
				*used_r = i + 1;
				return SMTP_DATA_END;
			}
			bare(d, &d->bare_cr); /* ".\r" then not LF */
			d->state = S_MID;
			break;
		case S_CR:
			/* only ever at i == 0: the CR ended the last input */
			d->state = S_MID;
			if (u[i] != '\n') {
				bare(d, &d->bare_cr);
				break;
			}
			i++;
			d->state = S_BOL;
			grow(d, 2);
			line_end(d);
			if (!d->discarding)
				return give_crlf(i, used_r, out_r, out_len_r);
			break;
		case S_MID:
			if (!have_run) {
				run = i;
				have_run = true;
			}
			start = i;
			i += scan(d, u + i, n - i);
			grow(d, i - start);
			d->line_len += i - start;
			check_long(d);
			if (i == n)
				goto flush;
			if (u[i] == '\r' && i + 1 < n && u[i + 1] == '\n') {
				i += 2;
				grow(d, 2);
				line_end(d);
				d->state = S_BOL;
				break;
			}
			if (i > run && !d->discarding)
				goto flush; /* the CR or LF alone, next call */
			have_run = false;
			if (u[i] == '\r') {
				i++;
				if (i == n)
					d->state = S_CR; /* LF next? */
				else
					bare(d, &d->bare_cr); /* dropped */
				break;
			}
			i++;
			bare(d, &d->bare_lf);
			grow(d, 2);
			line_end(d);
			if (!d->discarding) /* NORMALISE: it is a CRLF */
				return give_crlf(i, used_r, out_r, out_len_r);
			break;
		}
	}
flush:
	*used_r = i;
	if (have_run && i > run && !d->discarding) {
		*out_r = p + run;
		*out_len_r = i - run;
		return SMTP_DATA_BYTES;
	}
	return SMTP_DATA_MORE;
}

/*
 * The writer's state is two bits: ST_MID (not at the start of an output
 * line) and ST_CR (a CR ended the last input; its LF may come first). A
 * bare CR is dropped without a trace: the line it was in goes on as if it
 * had never been, so a dot after it at the start of a line is stuffed.
 */
#define ST_MID 1
#define ST_CR 2

void
smtp_stuff_init(struct smtp_stuff *st)
{
	st->state = 0;
}

size_t
smtp_stuff_put(struct smtp_stuff *st, const void *src, size_t n, size_t *used_r,
    void *dst, size_t cap)
{
	const unsigned char *s = src, *lf, *cr;
	unsigned char *o = dst;
	size_t i = 0, w = 0, k;

	while (i < n) {
		if (st->state & ST_CR) {
			st->state &= ~ST_CR;
			if (s[i] != '\n')
				continue; /* the CR was bare: gone */
			if (cap - w < 2) {
				st->state |= ST_CR;
				break;
			}
			o[w++] = '\r';
			o[w++] = '\n';
			i++;
			st->state = 0;
			continue;
		}
		if (s[i] == '\r' && i + 1 == n) {
			i++; /* its LF may be in the next input */
			st->state |= ST_CR;
			break;
		}
		if (s[i] == '\r' && s[i + 1] != '\n') {
			i++; /* bare: gone */
			continue;
		}
		if (s[i] == '\r' || s[i] == '\n') {
			if (cap - w < 2)
				break;
			o[w++] = '\r';
			o[w++] = '\n';
			i += s[i] == '\r' ? 2 : 1; /* CRLF, or a bare LF */
			st->state = 0;
			continue;
		}
		if (!(st->state & ST_MID) && s[i] == '.') {
			if (cap - w < 2)
				break;
			o[w++] = '.';
			o[w++] = '.';
			i++;
			st->state = ST_MID;
			continue;
		}
		st->state = ST_MID;
		/* a run without CR or LF, as far as dst allows */
		k = n - i < cap - w ? n - i : cap - w;
		if ((lf = memchr(s + i, '\n', k)) != NULL)
			k = (size_t)(lf - (s + i));
		if ((cr = memchr(s + i, '\r', k)) != NULL)
			k = (size_t)(cr - (s + i));
		if (k == 0)
			break; /* dst is full */
		memcpy(o + w, s + i, k);
		i += k;
		w += k;
	}
	*used_r = i;
	return w;
}

size_t
smtp_stuff_end(struct smtp_stuff *st, void *dst, size_t cap)
{
	static const char tail[SMTP_STUFF_END_MAX] = "\r\n.\r\n";
	/* a CR left at the end was bare: gone */
	size_t need = st->state & ST_MID ? 5 : 3;

	if (cap < need)
		return 0;
	memcpy(dst, tail + (5 - need), need);
	st->state = 0;
	return need;
}
