#!/usr/bin/env bash
# pop3.sh - POP3 RETR throughput, ringstore against Dovecot's pop3 on the
#   same 10 MiB message (LF line ends on disk, so both servers send CRLF
#   and dot-stuff): MB/s of wire bytes at the client and the server's CPU
#   per run, read from /proc (ringstore's whole process; for Dovecot the
#   `pop3` process serving the connection).
# Usage: bench/pop3.sh [BUILD_DIR] (default build/). Loopback only.
#
# Each server gets its own copy of the message in INBOX's cur/; one
# client connection logs in with USER/PASS (plaintext: a trusted
# listener for ringstore, disable_plaintext_auth = no for Dovecot) and
# sends RETR 1 RG_POP3_RUNS times, reading each answer to its terminating
# line. The client is Python's socket module reading 1 MiB at a time, the
# same for both. Settings as in bench/store.sh: ringstore with 1 worker
# and 1 store thread, Dovecot 2.3 with its defaults from a temporary
# config. Everything started is stopped on exit.
# Env: RG_POP3_RUNS (default 20).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
STORE=$BUILD/backend/ringstore
PASSWD_TOOL=$BUILD/auth/ringgate-passwd
RUNS=${RG_POP3_RUNS:-20}
BIG=$BUILD/bench-data/big-10m
BIG_SIZE=$((10 * 1024 * 1024))
USER_NAME=bench@example.test
PASS=bench-pop3-pw-1
TMP=$(mktemp -d /tmp/rg-pop3.XXXXXX)
RS_PID= DC_PID=

# shellcheck source=bench/bench_lib.sh
. "$ROOT/bench/bench_lib.sh"
RS_PORT=$(free_port) RS_ADMIN=$(free_port) DC_PORT=$(free_port)
DC_IMAP=$(free_port)

trap bench_cleanup EXIT

need_built "$STORE" "$PASSWD_TOOL"
need_dovecot
need_dovecot_part pop3
make_big "$BIG" "$BIG_SIZE"
chmod 755 "$TMP"

inbox() { # DIR: a Maildir whose INBOX holds the big message
	mkdir -p "$1/tmp" "$1/new"
	cp -a "$BIG/cur" "$1/cur"
}

# ---- ringstore ------------------------------------------------------
inbox "$TMP/rs/mail/example.test/bench/Maildir"
printf '%s:%s::::::\n' "$USER_NAME" \
	"$(printf '%s\n' "$PASS" | "$PASSWD_TOOL" hash --scheme SCRAM-SHA-256)" \
	>"$TMP/rs/passwd"
cat >"$TMP/rs/ringstore.conf" <<CONF
daemon = { workers = 1; log_level = "warn"; log_file = "$TMP/rs/ringstore.log"; };
admin = { listen = "127.0.0.1:$RS_ADMIN"; };
auth = { passwd_file = "$TMP/rs/passwd"; default_scheme = "SCRAM-SHA-256";
         threads = 1; };
storage = { mail_root = "$TMP/rs/mail"; threads = 1; };
pop3 = ( { name = "pop3"; listen = "127.0.0.1:$RS_PORT"; trusted = true; } );
CONF
start_ringstore "$TMP/rs" "$RS_PORT"

# ---- Dovecot ----------------------------------------------------------
inbox "$TMP/dc/home/Maildir"
chown -R rgbench:rgbench "$TMP/dc/home"
dovecot_conf "$TMP/dc" "$DC_IMAP" \
	"$(doveadm pw -s SHA512-CRYPT -p "$PASS")" "$USER_NAME" \
	"protocols = imap pop3" \
	"service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DC_PORT
  }
}"
start_dovecot "$TMP/dc" "$DC_PORT"

echo "# machine"
machine_notes
echo "dovecot=$(dovecot --version | cut -d' ' -f1) message_bytes=$(du -b "$BIG"/cur/* | cut -f1)"

# client SERVER PORT PID: RETR 1, RUNS times; one key=value line
client() {
	timeout 300 python3 - "$1" "$2" "$3" "$RUNS" "$USER_NAME" "$PASS" <<'PY'
import os, socket, statistics, sys, time

server, port, pid, runs, user, pw = sys.argv[1:7]
port, pid, runs = int(port), int(pid), int(runs)
tick = os.sysconf("SC_CLK_TCK")

def cpu_ms(p):
    with open("/proc/%d/stat" % p) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / tick

def child_named(parent, name):
    """The newest process called name under parent (Dovecot's pop3)."""
    best = None
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st.rsplit(")", 1)[1].split()[1])
        if comm == name and ppid == parent:
            if best is None or int(d) > best:
                best = int(d)
    return best

s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def cmd(line):
    s.sendall(line + b"\r\n")
    ans = f.readline()
    assert ans.startswith(b"+OK"), ans
    return ans
assert f.readline().startswith(b"+OK")
cmd(b"USER " + user.encode())
cmd(b"PASS " + pw.encode())
watch = pid if server == "rs" else child_named(pid, "pop3")
times, nbytes = [], 0
cpu0 = cpu_ms(watch)
for _ in range(runs):
    t0 = time.monotonic()
    cmd(b"RETR 1")
    got, tail = 0, b""
    while not tail.endswith(b"\r\n.\r\n"):
        data = f.read1(1 << 20)
        assert data
        got += len(data)
        tail = (tail + data)[-5:]
    times.append(time.monotonic() - t0)
    nbytes = got
cpu = (cpu_ms(watch) - cpu0) / runs
cmd(b"QUIT")
med = statistics.median(times)
print("server=%s step=retr runs=%d bytes=%d median_ms=%.2f mb_per_s=%.1f "
      "cpu_server_ms_per_run=%.2f cpu_s_per_gb=%.2f" % (
          server, runs, nbytes, med * 1000, nbytes / med / 1e6, cpu,
          cpu / nbytes * 1e6))
PY
}

echo "# RETR 1 of $BIG_SIZE bytes, $RUNS runs: ringstore, then Dovecot"
client rs "$RS_PORT" "$RS_PID" | tee "$TMP/results"
client dc "$DC_PORT" "$DC_PID" | tee -a "$TMP/results"
kv_awk '{ s = kv($0, "server"); r[s] = kv($0, "mb_per_s"); c[s] = kv($0, "cpu_s_per_gb") }
END {
	printf "RETR MB/s: ringstore %s, Dovecot %s (ratio %.2f); CPU s per GB: ringstore %s, Dovecot %s\n",
	    r["rs"], r["dc"], r["rs"] / r["dc"], c["rs"], c["dc"]
}' "$TMP/results"
