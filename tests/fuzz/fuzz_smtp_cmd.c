/*
 * fuzz_smtp_cmd.c - libFuzzer target for the SMTP/ESMTP/LMTP command line
 * parser (proto/smtp_cmd.c, smtp_addr.c, smtp_param.c, smtp_xclient.c) and
 * xtext (proto/smtp_xtext.c).
 *
 * The first byte picks the extensions offered (six bits), whether the
 * transaction has SMTPUTF8 and whether a space after the colon is taken;
 * the second the parameter limit. The rest is cut into lines at LF (one
 * CR before it dropped, as a line reader would) and each is parsed from an
 * exactly-sized copy, so a read past the line is an ASan report.
 * Properties checked, not just crashes: an answer exactly when refused,
 * with a 5xx code and an X.Y.Z enhanced code; every slice inside the line
 * or the decode area; the verb decided by the first word alone; the same
 * answer twice; no control byte in an accepted line, no 8-bit byte in an
 * accepted path without UTF-8; every accepted path written back as
 * "<mailbox>" parses to the same local part and domain; every decoded
 * xtext value encoded again parses back to the same bytes; xtext
 * encode/decode is the identity on any bytes. A broken property aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_cmd.h"
#include "proto/smtp_xtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The command structs are large: static, not on the stack. */
static struct smtp_cmd cmd, again;

static void
in_range(const struct smtp_cmd *c, const char *line, size_t len,
    const struct smtp_str *s)
{
	if (s->p == NULL) {
		if (s->len != 0)
			abort();
		return;
	}
	if (s->p >= line && s->p <= line + len) {
		if (s->len > (size_t)(line + len - s->p))
			abort();
		return;
	}
	if (s->p < c->dec || s->p + s->len > c->dec + c->dec_used)
		abort();
}

static void
check_slices(const struct smtp_cmd *c, const char *line, size_t len)
{
	const struct smtp_str *all[] = { &c->bad, &c->arg, &c->path.mailbox,
		&c->path.local, &c->path.domain, &c->params.auth,
		&c->params.envid, &c->params.orcpt_type, &c->params.orcpt,
		&c->ir };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		in_range(c, line, len, all[i]);
	for (int i = 0; i < SMTP_XA_COUNT; i++)
		in_range(c, line, len, &c->xclient.val[i]);
	if (c->dec_used > SMTP_CMD_DEC_MAX)
		abort();
}

static enum smtp_cmd_rc
parse_exact(struct smtp_cmd *c, const struct smtp_cmd_conf *conf,
    unsigned flags, const char *line, size_t len, char **copy_r)
{
	char *copy = malloc(len ? len : 1);
	enum smtp_cmd_rc rc;

	if (copy == NULL)
		abort();
	memcpy(copy, line, len);
	rc = smtp_cmd_parse(c, conf, flags, copy, len);
	check_slices(c, copy, len);
	if ((rc == SMTP_CMD_OK) != (c->err == NULL))
		abort();
	if (rc == SMTP_CMD_INVALID) {
		const char *e = c->err->enh;

		if (c->err->code < 500 || c->err->code > 599 ||
		    strlen(e) != 5 || e[0] != '5' || e[1] != '.' ||
		    e[3] != '.' || c->err->text[0] == '\0')
			abort();
	}
	*copy_r = copy;
	return rc;
}

/* An accepted path, written back bare, reads the same. */
static void
path_again(const struct smtp_cmd_conf *conf, unsigned flags)
{
	const struct smtp_path *p = &cmd.path;
	char line[600], *copy;
	int n;

	if (p->null || p->postmaster)
		return;
	if (p->mailbox.len > SMTP_PATH_MAX - 2 || p->domain.len == 0 ||
	    p->domain.len > SMTP_DOMAIN_MAX || p->local.len > SMTP_LOCAL_MAX)
		abort();
	n = snprintf(line, sizeof(line), "RCPT TO:<%.*s>", (int)p->mailbox.len,
	    p->mailbox.p);
	if (parse_exact(&again, conf, flags | SMTP_CMD_TXN_UTF8, line,
		(size_t)n, &copy) != SMTP_CMD_OK)
		abort();
	if (again.path.local.len != p->local.len ||
	    memcmp(again.path.local.p, p->local.p, p->local.len) != 0 ||
	    again.path.domain.len != p->domain.len ||
	    memcmp(again.path.domain.p, p->domain.p, p->domain.len) != 0 ||
	    again.path.quoted != p->quoted ||
	    again.path.literal != p->literal || again.path.utf8 != p->utf8)
		abort();
	free(copy);
}

/* A decoded xtext value, encoded again as the keyword's value on a line
 * of its own, decodes to the same bytes. */
static void
xtext_again(const struct smtp_cmd_conf *conf, const char *prefix,
    const struct smtp_str *v, size_t which)
{
	char enc[3 * SMTP_CMD_DEC_MAX], line[sizeof(enc) + 64], *copy;
	const struct smtp_str *back;
	size_t elen;
	int n;

	if (v->p == NULL)
		return;
	if (smtp_xtext_encode(v->p, v->len, enc, sizeof(enc), &elen) == -1)
		abort();
	n = snprintf(line, sizeof(line), "%s%.*s", prefix, (int)elen, enc);
	/* encoding may grow it past a length cap: then it may be refused */
	if (parse_exact(&again, conf, 0, line, (size_t)n, &copy) !=
	    SMTP_CMD_OK) {
		free(copy);
		return;
	}
	back = which == 0 ? &again.params.envid :
	    which == 1	  ? &again.params.orcpt :
			    &again.xclient.val[SMTP_XA_LOGIN];
	if (back->len != v->len || memcmp(back->p, v->p, v->len) != 0)
		abort();
	free(copy);
}

static void
check_ok(const struct smtp_cmd_conf *conf, unsigned flags, const char *line,
    size_t len)
{
	/* nothing accepted holds a control byte */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			abort();
	if (cmd.verb == SMTP_UNKNOWN)
		abort();
	if (cmd.verb == SMTP_MAIL || cmd.verb == SMTP_RCPT) {
		if (!cmd.path.utf8)
			for (size_t i = 0; i < cmd.path.mailbox.len; i++)
				if ((unsigned char)cmd.path.mailbox.p[i] > 127)
					abort();
		if (cmd.path.utf8 && !(conf->ext & SMTP_EXT_SMTPUTF8))
			abort();
		if (cmd.verb == SMTP_RCPT && cmd.path.null)
			abort();
		path_again(conf, flags);
		xtext_again(conf, "MAIL FROM:<> ENVID=", &cmd.params.envid, 0);
		if (cmd.params.orcpt.p != NULL) {
			char prefix[600];

			snprintf(prefix, sizeof(prefix),
			    "RCPT TO:<a@b> ORCPT=%.*s;",
			    (int)cmd.params.orcpt_type.len,
			    cmd.params.orcpt_type.p);
			xtext_again(conf, prefix, &cmd.params.orcpt, 1);
		}
	}
	if (cmd.verb == SMTP_XCLIENT &&
	    cmd.xclient.state[SMTP_XA_LOGIN] == SMTP_XV_VALUE)
		xtext_again(conf,
		    "XCLIENT LOGIN=", &cmd.xclient.val[SMTP_XA_LOGIN], 2);
	if (cmd.verb == SMTP_AUTH &&
	    (strlen(cmd.mech) == 0 || strlen(cmd.mech) > SMTP_MECH_MAX))
		abort();
}

static void
one_line(const struct smtp_cmd_conf *conf, unsigned flags, const char *line,
    size_t len)
{
	enum smtp_cmd_rc rc, rc2;
	const struct smtp_reply *err;
	enum smtp_verb verb;
	char *copy, *copy2;
	size_t w = 0;

	rc = parse_exact(&cmd, conf, flags, line, len, &copy);
	if (rc == SMTP_CMD_OK)
		check_ok(conf, flags, copy, len);
	verb = cmd.verb;
	err = cmd.err;
	/* the same line, the same answer */
	rc2 = parse_exact(&again, conf, flags, line, len, &copy2);
	if (rc2 != rc || again.err != err || again.verb != verb)
		abort();
	free(copy2);
	/* the verb is the first word's */
	while (w < len && (unsigned char)line[w] > 0x20 && line[w] != 0x7f)
		w++;
	parse_exact(&again, conf, flags, line, w, &copy2);
	if (again.verb != verb)
		abort();
	free(copy2);
	free(copy);
}

static void
xtext_identity(const uint8_t *data, size_t size)
{
	char *enc = malloc(3 * size + 1), *dec = malloc(size + 1);
	size_t elen, dlen;

	if (enc == NULL || dec == NULL)
		abort();
	if (smtp_xtext_encode(data, size, enc, 3 * size, &elen) == -1 ||
	    smtp_xtext_decode(enc, elen, dec, size, &dlen) == -1 ||
	    dlen != size || memcmp(dec, data, size) != 0)
		abort();
	/* decoding never writes more than it reads */
	if (smtp_xtext_decode((const char *)data, size, enc, size, &dlen) ==
		0 &&
	    dlen > size)
		abort();
	free(enc);
	free(dec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd_conf conf;
	unsigned flags;
	const char *p, *lf;
	size_t n, len;

	if (size < 2)
		return 0;
	memset(&conf, 0, sizeof(conf));
	conf.ext = data[0] & 0x3f;
	conf.space_after_colon = data[0] & 0x80;
	conf.max_params = data[1] % 24;
	flags = data[0] & 0x40 ? SMTP_CMD_TXN_UTF8 : 0;
	xtext_identity(data + 2, size - 2);
	p = (const char *)data + 2;
	n = size - 2;
	while (n > 0) {
		lf = memchr(p, '\n', n);
		len = lf ? (size_t)(lf - p) : n;
		one_line(&conf, flags, p,
		    len > 0 && p[len - 1] == '\r' ? len - 1 : len);
		if (lf == NULL)
			break;
		n -= len + 1;
		p += len + 1;
	}
	return 0;
}
