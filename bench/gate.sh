#!/usr/bin/env bash
# gate.sh - ringgate vs nginx's mail proxy, both in front of the same
# ringstore in the same run (PRODUCT.md §9, issue 12):
#   - IMAPS logins/s and the proxy's own CPU per login (TLS handshake,
#     greeting, LOGIN, the proxy's back-end login, LOGOUT, close) at
#     concurrency 1, 16 and 64, runs alternated between the peers, medians
#   - a 10 MiB FETCH BODY[] over TLS through each (MB/s, proxy CPU)
#   - N idle logged-in IMAP sessions (LOGIN + IDLE) through each: proxy RSS
#     per session while held, and RSS 5 s after they all closed
# nginx (bench/peers/nginx_mail.sh: Debian's nginx-light +
# libnginx-mod-mail, installed when missing) asks bench/peers/auth_http.py
# for every login, which answers Auth-Server/Auth-Port of the ringstore;
# nginx then forwards the user's own LOGIN to ringstore (a trusted
# plaintext listener holding the bench user). ringgate runs in one of two
# modes:
#   RG_GATE_MODE=relay  (default until the front end lands) ringgate's TLS
#                       relay: TLS at ringgate, LOGIN relayed to ringstore,
#                       which logs the user in; reported as mode=relay
#   RG_GATE_MODE=front  ringgate's IMAPS front end (issue 12): ringgate
#                       verifies LOGIN itself (RG_GATE_AUTH=file: its own
#                       passwd-file, cache warm; =http: the same auth_http
#                       responder nginx uses, through auth.http_url), logs
#                       in at ringstore as a master user, then relays
# The proxies get one worker each (nginx worker_processes 1, ringgate
# workers = 1). CPU comes from /proc (nginx: master + worker; ringgate:
# its process, all threads). The client shares the box: rates are the
# whole box's, CPU per login is the proxy's own.
#
# Usage: bench/gate.sh [BUILD_DIR] (default build/). Loopback only; every
# process it starts is stopped on exit.
# Env: RG_GATE_MODE (relay|front), RG_GATE_AUTH (file|http), RG_GATE_BIN
#   (ringgate binary, default BUILD/proxy/ringgate), RG_GATE_PEERS (default
#   "nginx ringgate"), RG_GATE_STEPS (default "login body idle"),
#   RG_GATE_SECONDS (per login run, 10), RG_GATE_RUNS (3), RG_GATE_CONCS
#   ("1 16 64"), RG_GATE_IDLE (sessions, 2000; capped by ulimit -n),
#   RG_GATE_BODY_RUNS (10).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
STORE=$BUILD/backend/ringstore
GATE=${RG_GATE_BIN:-$BUILD/proxy/ringgate}
PASSWD_TOOL=$BUILD/auth/ringgate-passwd
CLIENT=$BUILD/bench/ringbench-imap
MODE=${RG_GATE_MODE:-relay}
GATE_AUTH=${RG_GATE_AUTH:-file}
PEERS=${RG_GATE_PEERS:-nginx ringgate}
STEPS=${RG_GATE_STEPS:-login body idle}
SECS=${RG_GATE_SECONDS:-10}
RUNS=${RG_GATE_RUNS:-3}
CONCS=${RG_GATE_CONCS:-1 16 64}
IDLE_N=${RG_GATE_IDLE:-2000}
BODY_RUNS=${RG_GATE_BODY_RUNS:-10}
USER_NAME=bench@example.test
PASS=bench-gate-pw-1
MASTER=ringgate-master
TMP=$(mktemp -d /tmp/rg-gate.XXXXXX)
RS_PID='' GATE_PID='' NGX_PID='' AUTH_PID=''

# shellcheck source=bench/bench_lib.sh
. "$ROOT/bench/bench_lib.sh"
# shellcheck source=bench/peers/nginx_mail.sh
. "$ROOT/bench/peers/nginx_mail.sh"

cleanup() {
	stop_pid "$GATE_PID"
	stop_pid "$NGX_PID"
	stop_pid "$AUTH_PID"
	stop_pid "$RS_PID"
	[ -n "${RG_GATE_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

case $MODE in relay | front) ;; *) die "RG_GATE_MODE must be relay or front" ;; esac
case $GATE_AUTH in file | http) ;; *) die "RG_GATE_AUTH must be file or http" ;; esac
for f in "$STORE" "$GATE" "$PASSWD_TOOL" "$CLIENT"; do
	[ -x "$f" ] || die "$f is missing; build first (cmake --build $BUILD -j2)"
done
need_nginx
has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }

# A proxy holds two sockets per idle session (client and back end) plus
# its listeners; the client holds one per session.
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
if [ $((IDLE_N * 2 + 200)) -gt "$NOFILE" ]; then
	IDLE_N=$(((NOFILE - 200) / 2))
	echo "# ulimit -n is $NOFILE: idle sessions capped at $IDLE_N"
fi

# Six distinct free ports below the kernel's ephemeral range (the box's
# other loopback traffic takes ephemeral ports, which a listener chosen
# there could collide with), held open together while chosen.
read -r RS_PORT RS_ADMIN GATE_PORT GATE_ADMIN NGX_PORT AUTH_PORT < <(python3 -c '
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
held = []
while len(held) < 6:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(max(lo - 2700, 1024), lo)))
        held.append(s)
    except OSError:
        s.close()
print(" ".join(str(s.getsockname()[1]) for s in held))')

echo "# machine"
machine_notes
echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///') openssl=$(openssl version | cut -d' ' -f2)" \
	"gate_mode=$MODE gate_auth=$GATE_AUTH nofile=$NOFILE idle=$IDLE_N" \
	"seconds=$SECS runs=$RUNS concs=\"$CONCS\" commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)"

# ---- shared pieces -----------------------------------------------------
chmod 755 "$TMP"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
	-subj /CN=localhost 2>/dev/null
USER_HASH=$(printf '%s\n' "$PASS" | "$PASSWD_TOOL" hash --scheme SCRAM-SHA-256)
(umask 077 && openssl rand -hex 24 >"$TMP/master.pw")
MASTER_HASH=$("$PASSWD_TOOL" hash --scheme SCRAM-SHA-256 <"$TMP/master.pw")
printf '%s:%s::::::\n' "$USER_NAME" "$USER_HASH" >"$TMP/rs.passwd"
printf '%s:%s::::::\n' "$MASTER" "$MASTER_HASH" >>"$TMP/rs.passwd"
printf '%s:%s::::::\n' "$USER_NAME" "$USER_HASH" >"$TMP/gate.passwd"
mkdir -p "$TMP/mail/example.test/bench/Maildir/"{cur,new,tmp}
if has "$STEPS" body; then
	make_big "$TMP/mail/example.test/bench/Maildir/.Big" $((10 * 1024 * 1024))
fi

# ringstore: a trusted plaintext listener (both proxies terminate TLS and
# log in over loopback); the auth cache stays warm so the store's share
# of a login is the same whoever sends it.
cat >"$TMP/ringstore.conf" <<CONF
daemon = { workers = 1; log_level = "warn"; log_file = "$TMP/ringstore.log"; };
admin = { listen = "127.0.0.1:$RS_ADMIN"; };
limits = { idle_timeout = "30m"; };
auth = { passwd_file = "$TMP/rs.passwd"; default_scheme = "SCRAM-SHA-256";
         cache_ttl = "10m";
         master_users = [ "$MASTER" ]; master_nets = [ "127.0.0.0/8" ]; };
storage = { mail_root = "$TMP/mail"; };
imap = ( { name = "imap"; listen = "127.0.0.1:$RS_PORT"; starttls = false;
           trusted = true; } );
CONF
"$STORE" -c "$TMP/ringstore.conf" 2>>"$TMP/ringstore.stderr" &
RS_PID=$!
wait_port "$RS_PORT" || { cat "$TMP/ringstore.stderr" >&2; die "ringstore did not start"; }

# nginx's auth service and nginx
python3 "$ROOT/bench/peers/auth_http.py" --listen "$AUTH_PORT" \
	--backend "127.0.0.1:$RS_PORT" --user "$USER_NAME" --password "$PASS" \
	2>"$TMP/auth_http.stderr" &
AUTH_PID=$!
wait_port "$AUTH_PORT" || die "auth_http.py did not start"
nginx_mail_conf "$TMP/nginx" "$NGX_PORT" "$AUTH_PORT" "$TMP/cert.pem" "$TMP/key.pem"
start_nginx "$TMP/nginx"
wait_port "$NGX_PORT" || { cat "$TMP/nginx/error.log" "$TMP/nginx/stderr" >&2; die "nginx did not start"; }

# ringgate
gate_conf_relay() {
	cat >"$TMP/gate.conf" <<CONF
daemon = { workers = 1; log_level = "warn"; log_file = "$TMP/gate.log"; };
admin = { listen = "127.0.0.1:$GATE_ADMIN"; };
tls = { certificates = ( { cert = "$TMP/cert.pem"; key = "$TMP/key.pem"; } ); };
relay = ( { name = "imaps"; listen = "127.0.0.1:$GATE_PORT"; tls = true;
            alpn = "imap"; upstream = "127.0.0.1:$RS_PORT"; } );
CONF
}
gate_conf_front() {
	local http=
	[ "$GATE_AUTH" = http ] && http="http_url = \"http://127.0.0.1:$AUTH_PORT/auth\";"
	cat >"$TMP/gate.conf" <<CONF
daemon = { workers = 1; log_level = "warn"; log_file = "$TMP/gate.log"; };
admin = { listen = "127.0.0.1:$GATE_ADMIN"; };
tls = { certificates = ( { cert = "$TMP/cert.pem"; key = "$TMP/key.pem"; } ); };
limits = { idle_timeout = "30m"; login_timeout = "60s"; };
auth = { passwd_file = "$TMP/gate.passwd"; default_scheme = "SCRAM-SHA-256";
         cache_ttl = "10m"; $http };
imap = ( { name = "imaps"; listen = "127.0.0.1:$GATE_PORT"; tls = true; } );
backends = ( { name = "store1"; imap = "127.0.0.1:$RS_PORT"; } );
backend_login = { master_user = "$MASTER";
                  master_password_file = "$TMP/master.pw"; };
CONF
}
"gate_conf_$MODE"
"$GATE" -c "$TMP/gate.conf" 2>"$TMP/gate.stderr" &
GATE_PID=$!
wait_port "$GATE_PORT" || { cat "$TMP/gate.stderr" >&2; die "ringgate did not start"; }

port_of() { [ "$1" = nginx ] && echo "$NGX_PORT" || echo "$GATE_PORT"; }
# The proxy's CPU account (name "proxy") and the others for reference.
acct_of() {
	if [ "$1" = nginx ]; then
		echo "-D proxy=$NGX_PID -p store=$RS_PID -p authhttp=$AUTH_PID"
	else
		echo "-p proxy=$GATE_PID -p store=$RS_PID"
	fi
}
label() { [ "$1" = nginx ] && echo nginx || echo "ringgate_$MODE"; }

client() { # peer step args...
	local peer=$1 step=$2
	shift 2
	# shellcheck disable=SC2046
	timeout 900 "$CLIENT" "$step" -t "127.0.0.1:$(port_of "$peer")" \
		-u "$USER_NAME" -w "$PASS" -T "$@" $(acct_of "$peer") |
		sed "s/^/peer=$(label "$peer") /" | tee -a "$RESULTS"
}

RESULTS=/dev/null
for peer in $PEERS; do # warm-up: caches, first connections
	client "$peer" login -c 1 -d 1 >/dev/null
done
RESULTS=$TMP/results
: >"$RESULTS"

# ---- logins --------------------------------------------------------------
if has "$STEPS" login; then
	for conc in $CONCS; do
		for run in $(seq "$RUNS"); do
			for peer in $PEERS; do
				echo "# login conc=$conc run=$run $(label "$peer")"
				client "$peer" login -c "$conc" -d "$SECS"
			done
		done
	done
fi

# ---- 10 MiB FETCH --------------------------------------------------------
if has "$STEPS" body; then
	for peer in $PEERS; do
		echo "# 10 MiB FETCH BODY[] $(label "$peer")"
		client "$peer" body -n "$BODY_RUNS" -m Big
	done
fi

# ---- idle sessions -------------------------------------------------------
if has "$STEPS" idle; then
	for peer in $PEERS; do
		echo "# $IDLE_N idle sessions $(label "$peer")"
		client "$peer" idle -n "$IDLE_N" -c 16 -d 3
	done
fi

# ---- summary -------------------------------------------------------------
echo "# summary (medians over runs)"
awk '
function kv(k,   i, a) {
	for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] }
	return ""
}
function med(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
		if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/step=login / {
	k = kv("peer") " conc=" kv("conc")
	rate[k] = rate[k] " " kv("logins_per_s")
	cpu[k] = cpu[k] " " kv("cpu_proxy_ms_per_login")
	lat[k] = lat[k] " " kv("median_ms")
	keys[k] = 1
}
/step=body / { printf "fetch_10MiB %s mb_per_s=%s proxy_cpu_ms_per_run=%s\n", kv("peer"), kv("mb_per_s"), kv("cpu_proxy_ms_per_run") }
/step=idle_held / { printf "idle %s sessions=%s proxy_rss_held_kb=%s kb_per_session=%s\n", kv("peer"), kv("sessions"), kv("rss_proxy_held_kb"), kv("kb_per_session_proxy") }
/step=idle_before / { before[kv("peer")] = kv("rss_proxy_before_kb") }
/step=idle_closed / { printf "idle %s proxy_rss_before_kb=%s proxy_rss_after_close_kb=%s\n", kv("peer"), before[kv("peer")], kv("rss_proxy_closed_kb") }
END {
	for (k in keys)
		printf "login %s logins_per_s=%.1f proxy_cpu_ms_per_login=%.3f median_ms=%.2f\n", k, med(rate[k]), med(cpu[k]), med(lat[k])
}' "$TMP/results" | sort
