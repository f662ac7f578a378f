/*
 * ul_probe.c - a test helper, built only for the tests: logs in to one
 * back end with proxy/upstream_login (as ringgate does for a user) on a
 * real loop, prints the result, and then, as that user, sends the --then
 * lines and prints everything the back end says until it closes. The
 * integration tests (tests/integration/test_upstream_login.py) point it
 * at ringstore and at Debian's Dovecot.
 *
 *   ul_probe --proto imap|pop3|smtp --backend ADDR:PORT --user U
 *            --master M --pass P [--tls none|starttls|implicit]
 *            [--ca FILE] [--sni NAME] [--no-verify] [--proxy-v2]
 *            [--xclient] [--helo NAME] [--client-helo NAME]
 *            [--client ADDR:PORT]
 *            [--local ADDR:PORT] [--id KEY=VALUE]... [--timeout MS]
 *            [--sid HEX]
 *            [--then LINE]...
 *
 * Output: "result=ok why=ok", "capability=...", "reason=...", then
 * "rest=<bytes>" and the session's bytes as they came. Exit 0 (ok),
 * 1 (temp), 2 (refused), 3 (usage or set-up failure).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/tls.h"
#include "proxy/upstream_login.h"

#define MAX_LINES 16
#define MAX_ID 8

struct probe {
	struct loop *l;
	const char *then[MAX_LINES];
	unsigned nthen;
	int status;
};

static void
session_data(struct conn *c, const char *p, size_t n)
{
	(void)c;
	fwrite(p, 1, n, stdout);
	fflush(stdout);
}

static void
session_close(struct conn *c, enum conn_reason why)
{
	struct probe *pr = conn_ctx(c);

	printf("\nclosed=%s\n", conn_reason_name(why));
	loop_stop(pr->l, 0);
}

static const struct conn_handler session = {
	.on_data = session_data,
	.on_close = session_close,
};

static void
done(void *ctx, struct conn *backend, const struct ul_result *r)
{
	struct probe *pr = ctx;

	printf("result=%s why=%s\ncapability=%s\nreason=%s\nrest=",
	    ul_status_name(r->status), ul_why_name(r->why), r->capability,
	    r->reason);
	fwrite(r->rest, 1, r->rest_len, stdout);
	printf("\n");
	fflush(stdout);
	pr->status = r->status == UL_OK ? 0 : r->status == UL_TEMP ? 1 : 2;
	if (backend == NULL) {
		loop_stop(pr->l, 0);
		return;
	}
	conn_set_handler(backend, &session, pr);
	conn_set_timer(backend, 20000); /* a back end that never closes */
	for (unsigned i = 0; i < pr->nthen; i++) {
		conn_write(backend, pr->then[i], strlen(pr->then[i]));
		conn_write(backend, "\r\n", 2);
	}
	if (pr->nthen == 0)
		conn_close(backend);
}

static int
usage(const char *why)
{
	fprintf(stderr, "ul_probe: %s (see the source's opening comment)\n",
	    why);
	return 3;
}

int
main(int argc, char **argv)
{
	struct ul_params p = { .timeout_ms = 10000 };
	struct tls_client_conf tc = { .verify = true };
	struct cfg_addr backend, client, local;
	const char *ids[2 * MAX_ID];
	char idbuf[MAX_ID][256];
	struct probe pr = { .status = 3 };
	struct loop_conf lc = { 0 };
	const char *err = NULL;
	bool have_backend = false;

	signal(SIGPIPE, SIG_IGN);
	log_init("ul_probe", LL_INFO, 2);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-verify") == 0) {
			tc.verify = false;
			continue;
		}
		if (strcmp(a, "--proxy-v2") == 0) {
			p.proxy_v2 = true;
			continue;
		}
		if (strcmp(a, "--xclient") == 0) {
			p.xclient = true;
			continue;
		}
		if (v == NULL)
			return usage("an option lacks its value");
		i++;
		if (strcmp(a, "--proto") == 0) {
			if (strcmp(v, "imap") == 0)
				p.proto = UL_IMAP;
			else if (strcmp(v, "pop3") == 0)
				p.proto = UL_POP3;
			else if (strcmp(v, "smtp") == 0)
				p.proto = UL_SMTP;
			else
				return usage("bad --proto");
		} else if (strcmp(a, "--backend") == 0) {
			if (cfg_parse_addr(v, &backend) == -1)
				return usage("bad --backend");
			have_backend = true;
		} else if (strcmp(a, "--client") == 0) {
			if (cfg_parse_addr(v, &client) == -1)
				return usage("bad --client");
			p.client = (struct sockaddr *)&client.ss;
		} else if (strcmp(a, "--local") == 0) {
			if (cfg_parse_addr(v, &local) == -1)
				return usage("bad --local");
			p.local = (struct sockaddr *)&local.ss;
		} else if (strcmp(a, "--user") == 0) {
			p.user = v;
		} else if (strcmp(a, "--master") == 0) {
			p.master_user = v;
		} else if (strcmp(a, "--pass") == 0) {
			p.master_pass = v;
		} else if (strcmp(a, "--tls") == 0) {
			p.tls = strcmp(v, "starttls") == 0 ? UL_TLS_STARTTLS :
			    strcmp(v, "implicit") == 0	   ? UL_TLS_IMPLICIT :
							     UL_TLS_NONE;
		} else if (strcmp(a, "--ca") == 0) {
			tc.ca_file = v;
		} else if (strcmp(a, "--sni") == 0) {
			p.sni = v;
		} else if (strcmp(a, "--helo") == 0) {
			p.helo = v;
		} else if (strcmp(a, "--client-helo") == 0) {
			p.client_helo = v;
		} else if (strcmp(a, "--sid") == 0) {
			p.sid = strtoull(v, NULL, 16);
		} else if (strcmp(a, "--timeout") == 0) {
			p.timeout_ms = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--then") == 0) {
			if (pr.nthen == MAX_LINES)
				return usage("too many --then");
			pr.then[pr.nthen++] = v;
		} else if (strcmp(a, "--id") == 0) {
			char *eq;

			if (p.client_id_n == MAX_ID)
				return usage("too many --id");
			snprintf(idbuf[p.client_id_n], sizeof(idbuf[0]), "%s",
			    v);
			eq = strchr(idbuf[p.client_id_n], '=');
			if (eq == NULL)
				return usage("--id wants KEY=VALUE");
			*eq = '\0';
			ids[2 * p.client_id_n] = idbuf[p.client_id_n];
			ids[2 * p.client_id_n + 1] = eq + 1;
			p.client_id_n++;
		} else {
			return usage("unknown option");
		}
	}
	if (!have_backend || p.user == NULL || p.master_user == NULL ||
	    p.master_pass == NULL)
		return usage("--backend, --user, --master, --pass are needed");
	p.client_id = ids;
	if (p.tls != UL_TLS_NONE &&
	    (p.tls_ctx = tls_client_new(&tc, &err)) == NULL) {
		fprintf(stderr, "ul_probe: TLS: %s\n", err);
		return 3;
	}
	if ((pr.l = loop_new(&lc, &err)) == NULL) {
		fprintf(stderr, "ul_probe: loop: %s\n", err);
		return 3;
	}
	if (upstream_login_start(pr.l, (struct sockaddr *)&backend.ss,
		backend.len, &p, done, &pr, &err) == NULL) {
		fprintf(stderr, "ul_probe: %s\n", err);
		return 3;
	}
	tls_client_unref(&p.tls_ctx); /* the login holds its own */
	loop_run(pr.l);
	loop_free(pr.l);
	return pr.status;
}
