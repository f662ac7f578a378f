/*
 * auth_conf.h - the `auth { }` section of a daemon's config file,
 * described once for core/config.c (auth/auth_conf.c), with the checks
 * that tie its fields together. Every daemon that logs users in uses it
 * as a CFG_GROUP called `auth`; auth/auth_service.h starts auth from it.
 */
#ifndef RG_AUTH_AUTH_CONF_H
#define RG_AUTH_AUTH_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

struct net;

struct auth_conf {
	struct cfg_loc loc; /* the section, for errors after loading */
	char *passwd_file;
	bool allow_plaintext;	/* {PLAIN}/{CLEARTEXT} passwords verify */
	int default_scheme;	/* enum auth_scheme of most users' hashes */
	int64_t threads, queue; /* the verify pool */
	uint64_t cache_ttl;	/* ms; 0 = no positive cache */
	int64_t cache_size;
	uint64_t reload_check; /* ms; 0 = SIGHUP only */
	/* Master identities: may act as any user through SASL's authzid,
	 * only from master_nets (ringgate logging in to a store). */
	char **master_users;
	unsigned nmaster_users;
	struct net *master_nets;
	unsigned nmaster_nets;
	/* CRAM-MD5 (needs allow_plaintext and {PLAIN} passwords). */
	bool legacy_mechanisms;
	/* Keys SCRAM's fake salts for unknown users; NULL = random per
	 * process (auth_service_new reads it). */
	char *scram_secret_file;
	/* The HTTP hook (nginx auth_http protocol): when http_url is set,
	 * passwords are verified by that service instead of the file. */
	char *http_url;
	uint64_t http_timeout; /* ms */
	int64_t http_connections;
	char **http_headers;
	unsigned nhttp_headers;
};

/* Fields of struct auth_conf, for a CFG_GROUP at the section's offset. */
extern const struct cfg_field auth_conf_fields[];

/* The cross-field checks core/config.c cannot make: legacy_mechanisms
 * needs allow_plaintext; master user names are names a passwd-file can
 * hold, each once. 0, or -1 with err naming the section's file:line. */
int auth_conf_check(const struct auth_conf *ac, struct cfg_error *err);

/* True if user (any case) is one of master_users. */
bool auth_conf_master(const struct auth_conf *ac, const char *user);

/* True if client is inside master_nets (never when it is NULL or the
 * list is empty). */
bool auth_conf_master_net(const struct auth_conf *ac,
    const struct sockaddr *client);

#endif
