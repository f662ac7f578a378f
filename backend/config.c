/*
 * config.c - ringstore's configuration schema and its cross-field checks.
 *
 * The tables below are the single description of ringstore's own
 * sections (admin, limits, storage): types, defaults and bounds live here
 * and nowhere else; the shared sections come from their modules (daemon,
 * tls and the listeners from core/, auth from auth/auth_conf.c).
 * docs/backend.md, "Running ringstore", shows every key. Relies on
 * core/config.c for parsing and errors that name file:line. Must never
 * accept a file that would fail later at start-up for a reason visible
 * here.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_conf.h"
#include "backend/ringstore.h"
#include "core/listener_conf.h"
#include "core/tls.h"

#define F(field) offsetof(struct rs_config, field)

static const struct cfg_field admin_fields[] = {
	{ "listen", CFG_ADDR, F(admin.listen), 0, "127.0.0.1:29100" },
	{ NULL },
};

/* Line limits: small before login (nobody is known yet), larger after.
 * The command budget bounds one command with its inline literals; APPEND
 * literals are streamed out of it and bounded by append_max instead. */
static const struct cfg_field limits_fields[] = {
	{ "handshake_timeout", CFG_DURATION, F(limits.handshake_timeout), 0,
	    "10s", 100, 600000 },
	{ "login_timeout", CFG_DURATION, F(limits.login_timeout), 0, "60s",
	    1000, 3600000,
	    .hint = "a duration like \"60s\": from connect to logged in, "
		    "whatever the client does meanwhile" },
	{ "login_fail_delay", CFG_DURATION, F(limits.login_fail_delay), 0, "1s",
	    0, 60000,
	    .hint = "a duration like \"1s\": wait before each failed "
		    "login's answer; 0 = none" },
	{ "login_fails", CFG_INT, F(limits.login_fails), 0, "3", 1, 100,
	    .hint = "failed logins per connection before it is closed" },
	{ "idle_timeout", CFG_DURATION, F(limits.idle_timeout), 0, "30m", 1000,
	    86400000 },
	{ "output_buffer", CFG_SIZE, F(limits.output_buffer), 0, "256k", 16384,
	    64 << 20 },
	{ "line_max_login", CFG_SIZE, F(limits.line_max_login), 0, "8k", 1024,
	    1 << 20 },
	{ "line_max", CFG_SIZE, F(limits.line_max), 0, "64k", 1024, 16 << 20 },
	{ "max_sessions", CFG_INT, F(limits.max_sessions), 0, "0", 0, 10000000,
	    .hint = "sessions at once in the daemon, over it new connections "
		    "are told to try later; 0 = what the descriptors allow" },
	{ "fd_reserve", CFG_INT, F(limits.fd_reserve), 0, "128", 0, 1000000,
	    .hint =
		"descriptors of RLIMIT_NOFILE kept for mail files, the relay and listeners, never "
		"taken by accepted connections" },
	{ "command_max", CFG_SIZE, F(limits.command_max), 0, "256k", 4096,
	    64 << 20 },
	{ "append_max", CFG_SIZE, F(limits.append_max), 0, "50M", 1024,
	    (int64_t)1 << 31 },
	{ "bad_commands", CFG_INT, F(limits.bad_commands), 0, "10", 1, 1000,
	    .hint = "bad commands before the connection is closed" },
	/* Per user: a user who may make folders without bound fills a
	 * directory every LIST and login reads. A Maildir++ name is one
	 * directory entry, so 255 bytes is also what the disk allows. */
	{ "folders_max", CFG_INT, F(limits.folders_max), 0, "1000", 0, 1000000,
	    .hint = "folders per user besides INBOX; 0 = no limit" },
	{ "folder_depth_max", CFG_INT, F(limits.folder_depth_max), 0, "16", 0,
	    127,
	    .hint = "levels in a folder name (a/b/c is 3); "
		    "0 = no limit" },
	{ "folder_name_max", CFG_INT, F(limits.folder_name_max), 0, "255", 1,
	    255, .hint = "bytes of a folder name in UTF-8" },
	{ "search_cpu", CFG_DURATION, F(limits.search_cpu), 0, "30s", 0,
	    3600000,
	    .hint = "CPU time one SEARCH may take before it ends "
		    "with NO [LIMIT]; 0: no limit" },
	/* LMTP and submission (smtp_txn.h) */
	{ "message_max", CFG_SIZE, F(limits.message_max), 0, "50M", 1024,
	    (int64_t)1 << 31,
	    .hint = "bytes of one message over LMTP or submission "
		    "(announced as SIZE)" },
	{ "recipients_max", CFG_INT, F(limits.recipients_max), 0, "100", 1,
	    100000, .hint = "accepted recipients per message" },
	{ "smtp_line_max", CFG_SIZE, F(limits.smtp_line_max), 0, "2k", 512,
	    65536,
	    .hint = "bytes of an LMTP/SMTP command line, CRLF "
		    "included (RFC 5321: at least 512)" },
	{ NULL },
};

static const struct cfg_field storage_fields[] = {
	{ "mail_root", CFG_STRING, F(storage.mail_root), CFG_REQUIRED,
	    .hint = "a directory; users live in <root>/<domain>/<local>" },
	{ "threads", CFG_INT, F(storage.threads), 0, "4", 1, 256 },
	{ "queue", CFG_INT, F(storage.queue), 0, "1024", 16, 1000000 },
	{ "login_threads", CFG_INT, F(storage.login_threads), 0, "1", 1, 64,
	    .hint = "threads only for what a login needs from the disk, so "
		    "logins never wait behind mailbox work" },
	{ NULL },
};

/* The submission intake: what it accepts from a logged-in user. */
static const struct cfg_field submit_fields[] = {
	{ "hostname", CFG_STRING, F(submit.hostname), 0,
	    .hint = "this server's name in Received headers; default: the "
		    "host's name" },
	{ "hops_max", CFG_INT, F(submit.hops_max), 0, "30", 1, 1000,
	    .hint = "Received headers a message may carry (more: 554 "
		    "5.4.6, a mail loop)" },
	{ "hide_client_ip", CFG_BOOL, F(submit.hide_client_ip), 0, "false",
	    .hint = "true or false: leave the client's address out of the "
		    "Received header" },
	{ "local_domains", CFG_STRLIST, F(submit.local_domains), 0,
	    .count_offset = F(submit.nlocal_domains) },
	{ NULL },
};

static const struct cfg_field root_fields[] = {
	{ "daemon", CFG_GROUP, F(daemon), .sub = daemon_conf_fields },
	{ "admin", CFG_GROUP, 0, .sub = admin_fields },
	{ "tls", CFG_GROUP, F(tls), .sub = tls_conf_fields },
	{ "limits", CFG_GROUP, 0, .sub = limits_fields },
	{ "auth", CFG_GROUP, F(auth), .sub = auth_conf_fields },
	{ "storage", CFG_GROUP, 0, .sub = storage_fields },
	{ "policy", CFG_GROUP, F(policy), .sub = policy_conf_fields },
	{ "imap", CFG_LIST, F(imap), .sub = listener_conf_fields,
	    .elem_size = sizeof(struct listener_conf),
	    .count_offset = F(nimap) },
	{ "pop3", CFG_LIST, F(pop3), .sub = listener_conf_fields,
	    .elem_size = sizeof(struct listener_conf),
	    .count_offset = F(npop3) },
	{ "lmtp", CFG_LIST, F(lmtp), .sub = listener_conf_fields,
	    .elem_size = sizeof(struct listener_conf),
	    .count_offset = F(nlmtp) },
	{ "relay", CFG_GROUP, F(relay), .sub = relay_conf_fields },
	{ "submit", CFG_GROUP, 0, .sub = submit_fields },
	{ "submission", CFG_LIST, F(submission), .sub = listener_conf_fields,
	    .elem_size = sizeof(struct listener_conf),
	    .count_offset = F(nsubmission) },
	{ NULL },
};

static int check_listeners(const struct rs_config *cf, struct cfg_error *err);

void
rs_config_lists(const struct rs_config *cf, struct rs_list lists[RS_SERVICES])
{
	lists[RS_IMAP] = (struct rs_list){ "imap", "imap", cf->imap,
		cf->nimap };
	lists[RS_POP3] = (struct rs_list){ "pop3", "pop3", cf->pop3,
		cf->npop3 };
	lists[RS_LMTP] = (struct rs_list){ "lmtp", "lmtp", cf->lmtp,
		cf->nlmtp };
	lists[RS_SUBMIT] = (struct rs_list){ "submission", "smtp",
		cf->submission, cf->nsubmission };
}

/* Each list's entries, then names and addresses unique across lists
 * (two services cannot bind one port). */
static int
check_listeners(const struct rs_config *cf, struct cfg_error *err)
{
	struct rs_list lists[RS_SERVICES];

	rs_config_lists(cf, lists);
	for (unsigned i = 0; i < RS_SERVICES; i++) {
		if (listener_conf_check(lists[i].l, lists[i].n, lists[i].name,
			cf->tls.ncertificates > 0, err) == -1)
			return -1;
		for (unsigned j = 0; j < i; j++)
			if (listener_conf_check_apart(lists[j].l, lists[j].n,
				lists[i].l, lists[i].n, err) == -1)
				return -1;
	}
	/* LMTP trusts its client with any sender and every local user:
	 * only trusted_nets (a trusted listener) may connect. */
	for (unsigned k = 0; k < cf->nlmtp; k++)
		if (!cf->lmtp[k].trusted) {
			cfg_error_at(err, &cf->lmtp[k].loc,
			    "lmtp '%s' must have trusted = true (only "
			    "trusted_nets may deliver)",
			    cf->lmtp[k].name);
			return -1;
		}
	if (cf->limits.line_max_login > cf->limits.command_max ||
	    cf->limits.line_max > cf->limits.command_max) {
		cfg_error_at(err, NULL,
		    "limits.line_max and line_max_login "
		    "must not exceed limits.command_max");
		return -1;
	}
	return 0;
}

int
rs_config_load(const char *path, struct rs_config *cf, struct cfg_error *err)
{
	memset(cf, 0, sizeof(*cf));
	if (cfg_load(path, root_fields, cf, err) == -1)
		return -1;
	if (check_listeners(cf, err) == -1 ||
	    auth_conf_check(&cf->auth, err) == -1 ||
	    relay_conf_check(&cf->relay, err) == -1 ||
	    policy_conf_check(&cf->policy, err) == -1) {
		rs_config_free(cf);
		return -1;
	}
	return 0;
}

void
rs_config_free(struct rs_config *cf)
{
	cfg_free(root_fields, cf);
}

int
rs_tls_build(const struct rs_config *cf, const char *alpn,
    struct tls_server **ts_r, const char **error_r)
{
	return tls_conf_build(&cf->tls, alpn, ts_r, error_r);
}
