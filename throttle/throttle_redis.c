/*
 * throttle_redis.c - the Lua script that makes each throttle decision
 * one atomic round trip to Redis: the same rules as throttle_rules.c over
 * the same keys (throttle_private.h has the layout), so every instance
 * sharing the Redis counts together. Loaded once per connection by the
 * first EVAL after a NOSCRIPT; called by its SHA-1 (EVALSHA) otherwise.
 *
 * ARGV[1] is the mode, ARGV[2] the number of scopes n (2 for IPv4, 3 for
 * IPv6); the keys are given in KEYS (Redis Cluster is not supported: a
 * decision's keys are in several slots, see docs/throttling.md):
 *   a  admit:   KEYS r[1..n] c[1..n]; ARGV conns_ip conns_net rate_ip
 *               rate_net rate_interval conn_ttl -> {verdict, scope}
 *   r  release: KEYS c[1..n]; ARGV conn_ttl -> 0 (a count may go below
 *               zero: a release whose admission Redis applies late, after
 *               a stall, must still cancel it, in either order)
 *   f  failure: KEYS f[1..n] b[1..n] fu fui; ARGV fail_window block_fails
 *               block_fails_net block_time has_user
 *               -> {ipf, netf, uf, uipf, blocked}
 *   o  success: KEYS as f; ARGV has_user -> the same, before forgiving
 *               (blocked: the longest block's milliseconds left, 0 if
 *               none; a block without a TTL says 2^31-1)
 *   u  unblock: KEYS f[1..n] b[1..n] -> 0
 * Every key the script creates has a TTL; a counter without one (a write
 * the script did not make) gets it at its next increment.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "throttle/throttle_private.h"

const char thr_redis_script[] =
    "local mode, n = ARGV[1], tonumber(ARGV[2])\n"
    "local function incr(k, ttl)\n"
    "  local v = redis.call('INCR', k)\n"
    "  if v == 1 or redis.call('PTTL', k) < 0 then\n"
    "    redis.call('PEXPIRE', k, ttl)\n"
    "  end\n"
    "  return v\n"
    "end\n"
    "local function off(k, by)\n"
    "  if redis.call('DECRBY', k, by) <= 0 then redis.call('DEL', k) end\n"
    "end\n"
    "local function num(k) return tonumber(redis.call('GET', k) or '0') end\n"
    "local function blocked()\n"
    "  local left = 0\n"
    "  for i = 1, n do\n"
    "    local t = redis.call('PTTL', KEYS[n + i])\n"
    "    if t == -1 then return 2147483647 end\n"
    "    if t > left then left = t end\n"
    "  end\n"
    "  return left\n"
    "end\n"
    "if mode == 'a' then\n"
    "  local cl = {tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[4])}\n"
    "  local rl = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[6])}\n"
    "  local over = nil\n"
    "  for i = 1, n do\n"
    "    local v = incr(KEYS[i], tonumber(ARGV[7]))\n"
    "    if rl[i] > 0 and v > rl[i] and not over then over = i end\n"
    "  end\n"
    "  if over then return {2, over - 1} end\n"
    "  for i = 1, n do\n"
    "    local k = KEYS[n + i]\n"
    "    local v = redis.call('INCR', k)\n"
    "    redis.call('PEXPIRE', k, tonumber(ARGV[8]))\n"
    "    if cl[i] > 0 and v > cl[i] and not over then over = i end\n"
    "  end\n"
    "  if over then\n"
    "    for i = 1, n do off(KEYS[n + i], 1) end\n"
    "    return {1, over - 1}\n"
    "  end\n"
    "  return {0, 0}\n"
    "end\n"
    "if mode == 'r' then\n"
    "  for i = 1, n do\n"
    "    local v = redis.call('DECR', KEYS[i])\n"
    "    if v == 0 then redis.call('DEL', KEYS[i])\n"
    "    elseif v < 0 then redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[3]))\n"
    "    end\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "if mode == 'f' then\n"
    "  local w, bt = tonumber(ARGV[3]), tonumber(ARGV[6])\n"
    "  local lim = {tonumber(ARGV[4]), tonumber(ARGV[5]), "
    "tonumber(ARGV[5])}\n"
    "  local ipf, netf, uf, uipf = 0, 0, 0, 0\n"
    "  for i = 1, n do\n"
    "    local v = incr(KEYS[i], w)\n"
    "    if i == 1 then ipf = v elseif v > netf then netf = v end\n"
    "    if lim[i] > 0 and v >= lim[i] then\n"
    "      redis.call('SET', KEYS[n + i], 1, 'PX', bt, 'NX')\n"
    "    end\n"
    "  end\n"
    "  if ARGV[7] == '1' then\n"
    "    uf = incr(KEYS[2 * n + 1], w)\n"
    "    uipf = incr(KEYS[2 * n + 2], w)\n"
    "  end\n"
    "  return {ipf, netf, uf, uipf, blocked()}\n"
    "end\n"
    "if mode == 'o' then\n"
    "  local ipf, netf, uf, uipf = num(KEYS[1]), 0, 0, 0\n"
    "  for i = 2, n do\n"
    "    local v = num(KEYS[i])\n"
    "    if v > netf then netf = v end\n"
    "  end\n"
    "  local b = blocked()\n"
    "  if ARGV[3] == '1' then\n"
    "    uf, uipf = num(KEYS[2 * n + 1]), num(KEYS[2 * n + 2])\n"
    "    if b == 0 and uipf > 0 then\n"
    "      redis.call('DEL', KEYS[2 * n + 2])\n"
    "      off(KEYS[2 * n + 1], uipf)\n"
    "      for i = 1, n do off(KEYS[i], uipf) end\n"
    "    end\n"
    "  end\n"
    "  return {ipf, netf, uf, uipf, b}\n"
    "end\n"
    "if mode == 'u' then\n"
    "  for i = 1, 2 * n do redis.call('DEL', KEYS[i]) end\n"
    "  return 0\n"
    "end\n"
    "return redis.error_reply('ERR throttle: unknown mode')\n";

void
thr_redis_sha(char out[41])
{
	unsigned char md[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)thr_redis_script, strlen(thr_redis_script),
	    md);
	for (unsigned i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}
