#!/usr/bin/env bash
# store.sh - ringstore against Dovecot on the same 10,000-message INBOX:
#   SELECT (cold = first open since start, then warm), FETCH 1:* (FLAGS UID
#   RFC822.SIZE), FETCH 1:* ENVELOPE, FETCH 1 BODY.PEEK[] of a 10 MiB
#   message (MB/s and CPU per GB, plain IMAP), 1,000 APPENDs into a new
#   folder and 1,000 into the 10,000-message INBOX, each timed by
#   bench/imap_bench.c (ringbench-imap) with the server's own CPU time
#   from /proc.
# Usage: bench/store.sh [BUILD_DIR] (default build/). Loopback only.
#
# The Maildir is generated once (Python stdlib, fixed seed) and kept in
# BUILD_DIR/bench-data; each server gets its own cp -a of it, so both start
# from the same files with no index or UID list. Settings are as close as
# the two allow: ringstore with 1 worker loop, 1 store thread and 1 auth
# thread; Dovecot 2.3 with its defaults (one imap process per connection,
# mail_fsync = optimized, on-disk indexes), from a temporary config that
# never touches /etc/dovecot or its service. Everything started is stopped
# on exit; each client run is bounded by `timeout`. Prints the raw
# key=value lines, then a table of ratios (ringstore / Dovecot).
# Env: RG_STORE_RUNS (warm runs per step, default 10), RG_STORE_MESSAGES
# (default 10000), RG_STORE_BODY_RUNS (10 MiB fetches, default 50),
# RG_STORE_STEPS (default "fetch body append"; e.g. "body" for that one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
STORE=$BUILD/backend/ringstore
PASSWD_TOOL=$BUILD/auth/ringgate-passwd
CLIENT=$BUILD/bench/ringbench-imap
RUNS=${RG_STORE_RUNS:-10}
NMSG=${RG_STORE_MESSAGES:-10000}
BODY_RUNS=${RG_STORE_BODY_RUNS:-50}
STEPS=${RG_STORE_STEPS:-fetch body append}
CORPUS=$BUILD/bench-data/inbox-$NMSG
BIG=$BUILD/bench-data/big-10m
BIG_SIZE=$((10 * 1024 * 1024))
USER_NAME=bench@example.test
PASS=bench-store-pw-1
TMP=$(mktemp -d /tmp/rg-store.XXXXXX)
RS_PID= DC_PID=

# shellcheck source=bench/bench_lib.sh
. "$ROOT/bench/bench_lib.sh"
RS_PORT=$(free_port) RS_ADMIN=$(free_port) DC_PORT=$(free_port)

trap bench_cleanup EXIT

need_built "$STORE" "$PASSWD_TOOL" "$CLIENT"
need_dovecot
make_corpus "$CORPUS" "$NMSG"
make_big "$BIG" "$BIG_SIZE"
chmod 755 "$TMP"

# ---- ringstore ------------------------------------------------------
mkdir -p "$TMP/rs/mail/example.test/bench"
cp -a "$CORPUS" "$TMP/rs/mail/example.test/bench/Maildir"
cp -a "$BIG" "$TMP/rs/mail/example.test/bench/Maildir/.Big"
printf '%s:%s::::::\n' "$USER_NAME" \
	"$(printf '%s\n' "$PASS" | "$PASSWD_TOOL" hash --scheme SCRAM-SHA-256)" \
	>"$TMP/rs/passwd"
cat >"$TMP/rs/ringstore.conf" <<CONF
daemon = { workers = 1; log_level = "warn"; log_file = "$TMP/rs/ringstore.log"; };
admin = { listen = "127.0.0.1:$RS_ADMIN"; };
auth = { passwd_file = "$TMP/rs/passwd"; default_scheme = "SCRAM-SHA-256";
         threads = 1; };
storage = { mail_root = "$TMP/rs/mail"; threads = 1; };
imap = ( { name = "imap"; listen = "127.0.0.1:$RS_PORT"; starttls = false;
           trusted = true; } );
CONF
start_ringstore "$TMP/rs" "$RS_PORT"

# ---- Dovecot ----------------------------------------------------------
mkdir -p "$TMP/dc/home"
cp -a "$CORPUS" "$TMP/dc/home/Maildir"
cp -a "$BIG" "$TMP/dc/home/Maildir/.Big"
chown -R rgbench:rgbench "$TMP/dc/home"
dovecot_conf "$TMP/dc" "$DC_PORT" \
	"$(doveadm pw -s SHA512-CRYPT -p "$PASS")" "$USER_NAME"
start_dovecot "$TMP/dc" "$DC_PORT"

echo "# machine"
machine_notes
echo "dovecot=$(dovecot --version | cut -d' ' -f1) mail_fsync=$(doveconf -c "$TMP/dc/dovecot.conf" -h mail_fsync)"
echo "corpus_messages=$NMSG corpus_bytes=$(du -sb "$CORPUS/cur" | cut -f1)"

run_client() { # label server args...
	local label=$1 server=$2
	shift 2
	timeout 300 "$CLIENT" "$@" -t "127.0.0.1:$([ "$server" = rs ] && echo $RS_PORT || echo $DC_PORT)" \
		-u "$USER_NAME" -w "$PASS" |
		sed "s/^step=/server=$server label=$label step=/" | tee -a "$TMP/results"
}
: >"$TMP/results"
has_step() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }
if has_step fetch; then
	echo "# ringstore: fetch steps, $RUNS warm runs each"
	run_client fetch rs fetch -n "$RUNS" -p "server=$RS_PID"
	echo "# Dovecot: fetch steps, $RUNS warm runs each"
	run_client fetch dc fetch -n "$RUNS" -I "server=$DC_PID"
fi
if has_step body; then
	echo "# FETCH 1 BODY.PEEK[] of $BIG_SIZE bytes, $BODY_RUNS runs: ringstore, then Dovecot"
	run_client body rs body -n "$BODY_RUNS" -m Big -p "server=$RS_PID"
	run_client body dc body -n "$BODY_RUNS" -m Big -I "server=$DC_PID"
fi
if has_step append; then
	for box in Bench INBOX; do
		echo "# 1000 APPENDs into $box: ringstore, then Dovecot"
		run_client "append_$box" rs append -n 1000 -m "$box" -p "server=$RS_PID"
		run_client "append_$box" dc append -n 1000 -m "$box" -I "server=$DC_PID"
	done
fi

# ---- the table ----------------------------------------------------------
echo
echo "# ringstore / Dovecot (time: cold = first run, others median of $RUNS; CPU per run)"
kv_awk '/ step=/ {
	s = kv($0, "server"); st = kv($0, "step")
	if (st == "append") st = kv($0, "label")
	if (!(st in seen)) { order[++n] = st; seen[st] = 1 }
	if (st == "fetch_body") {
		t[s, st] = kv($0, "median_ms")
		c[s, st] = kv($0, "cpu_server_ms_per_run")
		b[s, st] = kv($0, "mb_per_s") "MB/s"
		gb[s] = c[s, st] / kv($0, "bytes") * 1e6
	} else if (st ~ /^append/) {
		t[s, st] = kv($0, "seconds") * 1000 / kv($0, "appends")
		c[s, st] = kv($0, "cpu_server_ms_per_append")
		b[s, st] = kv($0, "appends_per_s") "/s"
	} else {
		t[s, st] = kv($0, st == "select_cold" ? "first_ms" : "median_ms")
		c[s, st] = kv($0, "cpu_server_ms_per_run")
		b[s, st] = kv($0, "bytes")
	}
}
function ratio(x, y) { return (y + 0 > 0) ? sprintf("%.2f", x / y) : "n/a" }
END {
	printf "%-16s %11s %11s %7s %12s %12s %7s %12s %12s\n", "step", "rs_ms", "dc_ms",
	    "time_x", "rs_cpu_ms", "dc_cpu_ms", "cpu_x", "rs_bytes/rate", "dc_bytes/rate"
	for (i = 1; i <= n; i++) {
		st = order[i]
		printf "%-16s %11.2f %11.2f %7s %12.2f %12.2f %7s %12s %12s\n", st,
		    t["rs", st], t["dc", st], ratio(t["rs", st], t["dc", st]),
		    c["rs", st], c["dc", st], ratio(c["rs", st], c["dc", st]),
		    b["rs", st], b["dc", st]
	}
	if (("rs", "fetch_body") in t)
		printf "fetch_body CPU per GB: ringstore %.2f s, Dovecot %.2f s\n",
		    gb["rs"], gb["dc"]
}' "$TMP/results"
echo "(append rows: ms and CPU ms per APPEND; time_x < 1 means ringstore is faster)"
