#!/usr/bin/env bash
# login.sh - IMAP logins per second (connect, greeting, LOGIN, LOGOUT,
# close), measured with bench/imap_bench.c (ringbench-imap login):
#   - ringstore directly (plaintext LOGIN on a trusted loopback listener),
#     auth cache warm (one user logging in again and again, cache_ttl 60s,
#     one warm-up login first) and cold (auth.cache_ttl = "0": every LOGIN
#     verifies the password), for SCRAM-SHA-256 stored keys (the config
#     default) and ARGON2ID (the ringgate-passwd default, ~0.4 s CPU each)
#   - the same through ringgate's TLS relay in front of ringstore (a full
#     TLS 1.3 handshake per login), with ringgate's CPU per login
#   - Dovecot 2.3 (defaults: auth cache off, one imap-login and one imap
#     process per connection) with SHA512-CRYPT and ARGON2ID passwd-files,
#     SHA512-CRYPT with login and imap processes reused (service_count = 0),
#     and ARGON2ID with auth_cache_size = 10M for the warm case
# Server CPU: ringstore and ringgate from /proc/PID/stat (all threads);
# Dovecot as its whole process tree, reaped children included (-D).
# Usage: bench/login.sh [BUILD_DIR] (default build/). Loopback only; every
# process it starts is stopped on exit.
# Env: RG_LOGIN_SECONDS (default 10), RG_LOGIN_COLD_SLOW_SECONDS (cold
# ARGON2ID runs, default 5), RG_LOGIN_CONC (client threads, default 4).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
STORE=$BUILD/backend/ringstore
GATE=$BUILD/proxy/ringgate
PASSWD_TOOL=$BUILD/auth/ringgate-passwd
CLIENT=$BUILD/bench/ringbench-imap
SECS=${RG_LOGIN_SECONDS:-10}
SLOW_SECS=${RG_LOGIN_COLD_SLOW_SECONDS:-5}
CONC=${RG_LOGIN_CONC:-4}
RS_PORT=29743 RS_ADMIN=29790 GATE_PORT=29793 GATE_ADMIN=29791 DC_PORT=29843
USER_NAME=bench@example.test
PASS=bench-login-pw-1
TMP=$(mktemp -d /tmp/rg-login.XXXXXX)
RS_PID= GATE_PID= DC_PID=

# shellcheck source=bench/bench_lib.sh
. "$ROOT/bench/bench_lib.sh"

trap bench_cleanup EXIT

need_built "$STORE" "$GATE" "$PASSWD_TOOL" "$CLIENT"
need_dovecot
chmod 755 "$TMP"
mkdir -p "$TMP/mail/example.test/bench/Maildir/"{cur,new,tmp}

echo "# machine"
machine_notes
echo "dovecot=$(dovecot --version | cut -d' ' -f1) conc=$CONC seconds=$SECS"

# ---- ringstore and ringgate --------------------------------------------
start_store() { # scheme cache_ttl
	stop_pid "$RS_PID"
	RS_PID=
	printf '%s:%s::::::\n' "$USER_NAME" \
		"$(printf '%s\n' "$PASS" | "$PASSWD_TOOL" hash --scheme "$1")" \
		>"$TMP/passwd"
	cat >"$TMP/ringstore.conf" <<CONF
daemon = { workers = 1; log_level = "warn"; log_file = "$TMP/ringstore.log"; };
admin = { listen = "127.0.0.1:$RS_ADMIN"; };
auth = { passwd_file = "$TMP/passwd"; default_scheme = "$1";
         cache_ttl = "$2"; };
storage = { mail_root = "$TMP/mail"; };
imap = ( { name = "imap"; listen = "127.0.0.1:$RS_PORT"; starttls = false;
           trusted = true; } );
CONF
	"$STORE" -c "$TMP/ringstore.conf" 2>>"$TMP/ringstore.stderr" &
	RS_PID=$!
	wait_port "$RS_PORT" || { cat "$TMP/ringstore.stderr" >&2; die "ringstore did not start"; }
}

start_gate() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
		-subj /CN=localhost 2>/dev/null
	cat >"$TMP/gate.conf" <<CONF
daemon = { workers = 1; log_level = "warn"; };
admin = { listen = "127.0.0.1:$GATE_ADMIN"; };
tls = { certificates = ( { cert = "$TMP/cert.pem"; key = "$TMP/key.pem"; } ); };
relay = ( { name = "imaps"; listen = "127.0.0.1:$GATE_PORT"; tls = true;
            alpn = "imap"; upstream = "127.0.0.1:$RS_PORT"; } );
CONF
	"$GATE" -c "$TMP/gate.conf" 2>"$TMP/gate.stderr" &
	GATE_PID=$!
	wait_port "$GATE_PORT" || { cat "$TMP/gate.stderr" >&2; die "ringgate did not start"; }
}

login_run() { # label port seconds conc [client args...]
	local label=$1 port=$2 secs=$3 conc=$4
	shift 4
	timeout $((secs * 3 + 60)) "$CLIENT" login -t "127.0.0.1:$port" \
		-u "$USER_NAME" -w "$PASS" -c "$conc" -d "$secs" "$@" |
		sed "s/^/case=$label /" | tee -a "$TMP/results"
}

warm_up() { # port [-T]
	"$CLIENT" login -t "127.0.0.1:$1" -u "$USER_NAME" -w "$PASS" -c 1 \
		-d 0.2 "${@:2}" >/dev/null
}

: >"$TMP/results"
for scheme in SCRAM-SHA-256 ARGON2ID; do
	cold_secs=$SECS
	[ "$scheme" = ARGON2ID ] && cold_secs=$SLOW_SECS
	echo "# ringstore direct, $scheme, cache cold (cache_ttl 0)"
	start_store "$scheme" 0
	login_run "rs_${scheme}_cold" "$RS_PORT" "$cold_secs" "$CONC" \
		-p "ringstore=$RS_PID"
	echo "# ringstore direct, $scheme, cache warm (cache_ttl 60s)"
	start_store "$scheme" 60s
	warm_up "$RS_PORT"
	login_run "rs_${scheme}_warm" "$RS_PORT" "$SECS" "$CONC" \
		-p "ringstore=$RS_PID"
	echo "# ringgate TLS relay -> ringstore, $scheme, cache warm"
	start_gate
	warm_up "$GATE_PORT" -T
	login_run "gate_${scheme}_warm" "$GATE_PORT" "$SECS" "$CONC" -T \
		-p "ringgate=$GATE_PID" -p "ringstore=$RS_PID"
	stop_pid "$GATE_PID"
	GATE_PID=
done
echo "# ringgate TLS relay -> ringstore, SCRAM-SHA-256, cache cold"
start_store SCRAM-SHA-256 0
start_gate
login_run "gate_SCRAM-SHA-256_cold" "$GATE_PORT" "$SECS" "$CONC" -T \
	-p "ringgate=$GATE_PID" -p "ringstore=$RS_PID"
stop_pid "$GATE_PID"
GATE_PID=
stop_pid "$RS_PID"
RS_PID=

# ---- Dovecot ------------------------------------------------------------
# Dovecot's "high-performance" process setup (its docs' term): login and
# imap processes serve many connections instead of one each.
DC_REUSE='service imap-login {
  service_count = 0
  process_min_avail = 2
}
service imap {
  service_count = 0
  process_min_avail = 2
}'
dc_run() { # label scheme seconds [extra dovecot settings...]
	local label=$1 scheme=$2 secs=$3
	shift 3
	rm -rf "$TMP/dc"
	mkdir -p "$TMP/dc/home/Maildir/"{cur,new,tmp}
	chown -R rgbench:rgbench "$TMP/dc/home"
	dovecot_conf "$TMP/dc" "$DC_PORT" \
		"$(doveadm pw -s "$scheme" -p "$PASS")" "$USER_NAME" "$@"
	dovecot -F -c "$TMP/dc/dovecot.conf" 2>"$TMP/dc.stderr" &
	DC_PID=$!
	wait_port "$DC_PORT" || { cat "$TMP/dc.stderr" >&2; die "dovecot did not start"; }
	warm_up "$DC_PORT"
	login_run "$label" "$DC_PORT" "$secs" "$CONC" -D "dovecot=$DC_PID"
	stop_pid "$DC_PID"
	DC_PID=
}
echo "# Dovecot, SHA512-CRYPT, auth cache off (its default)"
dc_run dc_SHA512-CRYPT_cold SHA512-CRYPT "$SECS"
echo "# Dovecot, SHA512-CRYPT, auth cache off, login and imap processes reused"
dc_run dc_SHA512-CRYPT_reuse SHA512-CRYPT "$SECS" "$DC_REUSE"
echo "# Dovecot, ARGON2ID, auth cache off (its default)"
dc_run dc_ARGON2ID_cold ARGON2ID "$SLOW_SECS"
echo "# Dovecot, ARGON2ID, auth_cache_size = 10M (warm)"
dc_run dc_ARGON2ID_warm ARGON2ID "$SECS" "auth_cache_size = 10M"

# ---- summary ----------------------------------------------------------
echo
echo "# logins/s (server CPU ms per login; failed logins)"
kv_awk '/ step=login / {
	cpu = ""
	n = split($0, f, " ")
	for (i = 1; i <= n; i++)
		if (f[i] ~ /^cpu_.*_ms_per_login=/) {
			split(f[i], kvp, "=")
			name = kvp[1]; sub(/^cpu_/, "", name); sub(/_ms_per_login$/, "", name)
			cpu = cpu sprintf(" %s=%.2f", name, kvp[2])
		}
	printf "%-26s %9s/s failed=%-4s median=%sms%s\n", kv($0, "case"),
	    kv($0, "logins_per_s"), kv($0, "failed"), kv($0, "median_ms"), cpu
}' "$TMP/results"
