#!/usr/bin/env bash
# lmtp.sh - LMTP deliveries per second, ringstore against Dovecot's lmtp on
# the same machine in the same run, fsync on in both: 1 sender, then 8
# concurrent senders all to one user, then 8 senders each to its own user;
# each sender sends its share of the messages over one connection (LHLO
# once, then MAIL/RCPT/DATA per message, one recipient, a 4 KiB message)
# with Python's smtplib.LMTP (the same client for both).
# Usage: bench/lmtp.sh [BUILD_DIR] (default build/). Loopback only.
#
# ringstore: 1 worker loop, 4 store threads (its defaults otherwise: every
# delivery fsyncs the file and new/ before its 250). Dovecot 2.3: its
# defaults (mail_fsync = optimized: a delivery is fsynced before its 250;
# one lmtp process per connection, indexes updated on delivery), from a
# temporary config that never touches /etc/dovecot or its service. Each
# step runs RG_LMTP_RUNS times (default 3), alternating servers, and the
# median is printed; every run starts from an empty INBOX.
# Env: RG_LMTP_MESSAGES (per run, default 1000).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
STORE=$BUILD/backend/ringstore
RUNS=${RG_LMTP_RUNS:-3}
NMSG=${RG_LMTP_MESSAGES:-1000}
USER_NAME=bench@example.test
TMP=$(mktemp -d /tmp/rg-lmtp.XXXXXX)
RS_PID= DC_PID=

# shellcheck source=bench/bench_lib.sh
. "$ROOT/bench/bench_lib.sh"
RS_PORT=$(free_port) RS_ADMIN=$(free_port) DC_PORT=$(free_port)
DC_LMTP=$(free_port)

trap bench_cleanup EXIT

need_built "$STORE"
need_dovecot
need_dovecot_part lmtp
chmod 755 "$TMP"

# ---- ringstore ------------------------------------------------------
mkdir -p "$TMP/rs/mail"
printf '%s:{PLAIN}unused::::::\n' "$USER_NAME" >"$TMP/rs/passwd"
for k in 1 2 3 4 5 6 7; do
	printf 'bench%s@example.test:{PLAIN}unused::::::\n' "$k" >>"$TMP/rs/passwd"
done
cat >"$TMP/rs/ringstore.conf" <<CONF
daemon = { workers = 1; log_level = "warn"; log_file = "$TMP/rs/ringstore.log"; };
admin = { listen = "127.0.0.1:$RS_ADMIN"; };
auth = { passwd_file = "$TMP/rs/passwd"; allow_plaintext = true; threads = 1; };
storage = { mail_root = "$TMP/rs/mail"; threads = 4; };
imap = ( { name = "imap"; listen = "127.0.0.1:$RS_PORT"; trusted = true; } );
lmtp = ( { name = "lmtp"; listen = "127.0.0.1:$(free_port)"; trusted = true; } );
CONF
RS_LMTP=$(sed -n 's/.*name = "lmtp"; listen = "127.0.0.1:\([0-9]*\)".*/\1/p' "$TMP/rs/ringstore.conf")
start_ringstore "$TMP/rs" "$RS_LMTP"

# ---- Dovecot ----------------------------------------------------------
mkdir -p "$TMP/dc/home"
chown -R rgbench:rgbench "$TMP/dc/home"
dovecot_conf "$TMP/dc" "$DC_PORT" "{PLAIN}unused" "$USER_NAME" \
	"protocols = imap lmtp" \
	"service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DC_LMTP
  }
}"
for k in 1 2 3 4 5 6 7; do
	mkdir -p "$TMP/dc/home$k"
	chown rgbench:rgbench "$TMP/dc/home$k"
	printf 'bench%s@example.test:{PLAIN}unused:%s:%s::%s::\n' "$k" \
		"$(id -u rgbench)" "$(id -g rgbench)" "$TMP/dc/home$k" >>"$TMP/dc/passwd"
done
start_dovecot "$TMP/dc" "$DC_LMTP"

echo "# machine"
machine_notes
echo "dovecot=$(dovecot --version | cut -d' ' -f1) mail_fsync=$(doveconf -c "$TMP/dc/dovecot.conf" -h mail_fsync)"

# run PORT SERVER SENDERS USERS: deliveries/s of one run (empty INBOXes
# first); sender k delivers to user k % USERS
run() {
	if [ "$2" = rs ]; then
		rm -rf "$TMP/rs/mail/example.test"
	else
		rm -rf "$TMP"/dc/home*/Maildir
	fi
	timeout 600 python3 - "$1" "$3" "$NMSG" "$4" <<'PY'
import smtplib, sys, threading, time
port, senders, n, nusers = (int(a) for a in sys.argv[1:5])
body = b"From: b@example.org\r\nSubject: bench\r\n\r\n" + (b"x" * 78 + b"\r\n") * 50
share = n // senders
errors = []
def send(k):
    user = "bench%s@example.test" % (k % nusers or "")
    try:
        l = smtplib.LMTP("127.0.0.1", port, timeout=60)
        l.ehlo("bench")
        for _ in range(share):
            l.mail("b@example.org"); l.rcpt(user)
            code, _ = l.data(body)
            if code != 250:
                raise RuntimeError("DATA %d" % code)
        l.quit()
    except Exception as e:
        errors.append(e)
ts = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
t0 = time.monotonic()
for t in ts: t.start()
for t in ts: t.join()
dt = time.monotonic() - t0
if errors:
    sys.exit("errors: %r" % errors[:3])
print("%.0f" % (share * senders / dt))
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# deliveries/s (median of $RUNS runs of $NMSG messages, 4 KiB each)"
for step in "1 1" "8 1" "8 8"; do
	set -- $step
	rs_all= dc_all=
	for _ in $(seq "$RUNS"); do
		rs_all+="$(run "$RS_LMTP" rs "$1" "$2")"$'\n'
		dc_all+="$(run "$DC_LMTP" dc "$1" "$2")"$'\n'
	done
	rs=$(printf '%s' "$rs_all" | median)
	dc=$(printf '%s' "$dc_all" | median)
	echo "senders=$1 users=$2 ringstore=$rs dovecot=$dc ratio=$(awk -v a="$rs" -v b="$dc" 'BEGIN {printf "%.2f", a / b}')"
done
