#!/usr/bin/env bash
# relay.sh - benchmarks of the relay slice on this machine, in one run:
#   - the machine's limits: openssl speed (ECDSA P-256 sign, X25519) on one core
#   - full TLS 1.3 handshakes/s through ringgate (each one also connects the
#     upstream), with ringgate's own CPU per handshake, next to openssl
#     s_server on the same core count (1 worker vs s_server's one thread)
#   - relayed MB/s for a bulk transfer (upstream -> ringgate -> TLS client)
#   - RSS per idle TLS session with N sessions held open
# Usage: bench/relay.sh [BUILD_DIR] (default build/). Loopback only; every
# process it starts is stopped on exit. Prints key=value lines; the numbers
# go to docs/benchmarks.md by hand with the date and this command.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
GATE=$BUILD/proxy/ringgate
BENCH=$BUILD/bench/ringbench
IDLE_N=${RG_IDLE_SESSIONS:-9000}
SECS=${RG_BENCH_SECONDS:-10}
TMP=$(mktemp -d)
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

wait_port() {
	for _ in $(seq 100); do
		(echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 never opened" >&2
	return 1
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

gate_conf() { # workers upstream_port
	cat >"$TMP/gate.conf" <<CONF
daemon = { workers = $1; log_level = "warn"; };
admin = { listen = "127.0.0.1:29190"; };
tls = { certificates = ( { cert = "$TMP/cert.pem"; key = "$TMP/key.pem"; } ); };
limits = { output_buffer = "256k"; };
relay = ( { name = "bench"; listen = "127.0.0.1:29993"; alpn = "imap";
            upstream = "127.0.0.1:$2"; } );
CONF
}

start_gate() { # workers upstream_port
	gate_conf "$1" "$2"
	"$GATE" -c "$TMP/gate.conf" 2>"$TMP/gate.log" &
	GATE_PID=$!
	PIDS+=("$GATE_PID")
	wait_port 29993
}

stop_gate() {
	kill "$GATE_PID"
	wait "$GATE_PID" 2>/dev/null || true
}

echo "# machine"
echo "cpus=$(nproc) kernel=$(uname -r) openssl=\"$(openssl version)\""
openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ {print "openssl_speed_ecdsap256_sign_per_s=" $(NF-1)}'
openssl speed -seconds 3 ecdhx25519 2>/dev/null | awk '/253 bits ecdh \(X25519\)/ {print "openssl_speed_x25519_op_per_s=" $NF}'

# Two upstreams: one sends 1 GiB to whoever connects (bulk), one echoes
# (handshake and idle runs, which send nothing, so it only holds conns).
"$BENCH" serve -l 127.0.0.1:29143 -m source -s 1G &
PIDS+=("$!")
"$BENCH" serve -l 127.0.0.1:29144 -m echo &
PIDS+=("$!")
wait_port 29143
wait_port 29144

echo "# handshakes: ringgate, 1 worker, ${SECS}s, 16 concurrent"
start_gate 1 29144
"$BENCH" handshake -t 127.0.0.1:29993 -a imap -c 16 -d "$SECS" -p "$GATE_PID"
stop_gate

echo "# handshakes: openssl s_server (one thread), same client"
openssl s_server -quiet -naccept 1000000 -accept 127.0.0.1:29994 \
	-cert "$TMP/cert.pem" -key "$TMP/key.pem" </dev/null >/dev/null 2>&1 &
SSERVER=$!
PIDS+=("$SSERVER")
wait_port 29994
"$BENCH" handshake -t 127.0.0.1:29994 -c 16 -d "$SECS" -p "$SSERVER"
kill "$SSERVER"

echo "# bulk: 1 GiB upstream -> ringgate (1 worker) -> TLS client"
start_gate 1 29143
"$BENCH" bulk -t 127.0.0.1:29993 -c 1 -p "$GATE_PID"
stop_gate

echo "# idle: $IDLE_N TLS sessions held (each also holds an upstream conn)"
start_gate 2 29144
echo "gate_rss_started_kb=$(awk '/VmRSS/ {print $2}' /proc/"$GATE_PID"/status)"
"$BENCH" idle -t 127.0.0.1:29993 -n "$IDLE_N" -d 5 -p "$GATE_PID"
sleep 4 # linger and the once-a-second sweep and trim
echo "gate_rss_after_close_kb=$(awk '/VmRSS/ {print $2}' /proc/"$GATE_PID"/status)"
stop_gate
