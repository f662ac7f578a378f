/*
 * redis_loop.h - one asynchronous Redis connection driven by a worker's
 * io_uring loop: hiredis's async API with its descriptor watched through
 * loop_poll_fd(), so a Redis query never blocks the ring. Used by routing
 * (proxy/route.c) and by the throttle for its shared counters
 * (throttle/throttle.c).
 *
 * The connection is opened on the first command and again after a
 * failure, but not before retry_ms has passed since the failure: until
 * then commands fail at once (the caller falls back), so a dead Redis
 * costs each login nothing. Every command has a deadline (timeout_ms);
 * replies come in order, so when the oldest one is late the connection is
 * dropped and every pending command fails with "timeout".
 *
 * With Redis Sentinel (sentinels and master_name set), the target is not
 * configured but asked for: before each (re)connect the sentinels are
 * asked in turn, on the loop, with SENTINEL get-master-addr-by-name;
 * commands issued meanwhile wait (each within its own deadline) and go to
 * the master once it is known. Any loss of the master connection, and a
 * -READONLY reply (a demoted master), makes the next connect ask again,
 * which is how a failover is followed.
 *
 * One loop, one thread: everything here runs on the loop's thread.
 */
#ifndef RG_CORE_REDIS_LOOP_H
#define RG_CORE_REDIS_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct cfg_error;
struct cfg_loc;
struct loop;
struct redis_loop;
struct redis_loop_req;
struct redisReply;

struct redis_loop_conf {
	const char *target; /* "127.0.0.1:6379", "[::1]:6379" or "/path.sock" */
	uint64_t timeout_ms; /* connect and each command; 0 = 1000 */
	uint64_t retry_ms;   /* no reconnect before this after a failure;
			      * 0 = 1000 */
	/* Sentinel: with nsentinels > 0 the master of master_name is asked
	 * from these ("host:port", numeric) and target is ignored. Both are
	 * copied; NULL/0 = a plain target, as before. */
	const char *const *sentinels;
	unsigned nsentinels;
	const char *master_name;
};

/* The answer: reply (a hiredis reply, valid only during the call; may be
 * REDIS_REPLY_ERROR) or NULL with error ("timeout", "connect: ...",
 * "closed"). */
typedef void redis_loop_cb(void *ctx, const struct redisReply *reply,
    const char *error);

/* Config check for a group that names Redis one way or the other
 * ("route", "throttle"): sentinels are numeric "host:port", at most 16,
 * with a master name and without redis; a master name needs sentinels.
 * 0, or -1 with err set at loc, wording keys as "<group>.<key>". */
int redis_loop_sentinel_check(const char *group, const char *redis,
    char *const *sentinels, unsigned nsentinels, const char *master_name,
    const struct cfg_loc *loc, struct cfg_error *err);

/* A connection for l (nothing is opened yet). NULL with *error_r when the
 * target or a sentinel is malformed, master_name is missing, or memory ran
 * out. */
struct redis_loop *redis_loop_new(struct loop *l,
    const struct redis_loop_conf *conf, const char **error_r);
/* Pending commands are dropped without callbacks. Not from inside a
 * callback. Nulls *rl; NULL is a no-op. */
void redis_loop_free(struct redis_loop **rl);

/* Send one command (argv form, binary safe). Returns a handle, with cb
 * called later exactly once unless cancelled; or NULL (no callback) when
 * Redis is known to be down, connecting failed at once, or out of memory,
 * with *error_r set. */
struct redis_loop_req *redis_loop_cmd(struct redis_loop *rl, int argc,
    const char **argv, const size_t *lens, redis_loop_cb *cb, void *ctx,
    const char **error_r);
/* No callback for this command any more. Nulls *req; NULL is a no-op. */
void redis_loop_cancel(struct redis_loop_req **req);

/* Commands waiting for their reply now. */
unsigned redis_loop_pending(const struct redis_loop *rl);

/* A Sentinel "+switch-master" message: which master moved, and where. */
struct redis_switch {
	const char *name; /* master name, name_len bytes */
	size_t name_len;
	const char *host; /* the new master's address, host_len bytes */
	size_t host_len;
	uint16_t port;
};

/* Split a "+switch-master" payload, "<name> <old ip> <old port> <new ip>
 * <new port>" (msg, len bytes: five fields, single spaces, no NUL), into
 * out, whose pointers then point into msg. Ports are decimal 1..65535,
 * the new host 1 to 63 bytes. Pure, no I/O (also the fuzzer's entry).
 * 0, or -1 when msg is anything else. */
int redis_switch_parse(const char *msg, size_t len, struct redis_switch *out);

#endif
