#!/usr/bin/env bash
# demo.sh - bring up a throw-away ringgate installation on 127.0.0.1.
#
#   scripts/demo.sh               install what is missing, build, start
#                                 everything in the foreground; Ctrl-C stops all
#   scripts/demo.sh --background  the same, but return once every port answers
#   scripts/demo.sh stop          stop what a background demo started
#   scripts/demo.sh status        show what runs
#
# All state lives in .demo/ at the repository root (gitignored): a
# self-signed ECDSA P-256 certificate, the daemons' configs, pid files under
# .demo/run/ and logs under .demo/log/. Delete the folder to start afresh.
# The ports are fixed and part of the product (see README.md); the demo
# starts what exists today and says what it skipped.
#
# Works from any directory, with no stdin and with CI=true.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO="$ROOT/.demo"
BUILD="$ROOT/build"
RUN="$DEMO/run"
LOG="$DEMO/log"
RINGGATE="$BUILD/proxy/ringgate"
RINGSTORE="$BUILD/backend/ringstore"

# The demo's fixed ports.
RG_IMAP=10143 RG_IMAPS=10993 RG_POP3=10110 RG_POP3S=10995
RG_SUBMISSION=10587 RG_SUBMISSIONS=10465 RG_ADMIN=19100
RS_IMAP=20143 RS_POP3=20110 RS_LMTP=20024 RS_SUBMISSION=20587 RS_ADMIN=29100
REDIS_PORT=16379

DEMO_USER=demo@example.test
DEMO_PASS=ringgate-demo-pw
DEMO_MASTER=ringgate-master # ringgate's identity at the store

# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# Is the process named by pid file $1 alive?
pid_alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Does 127.0.0.1:$1 accept a TCP connection?
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Wait up to $2 seconds for port $1; fail if the process of pid file $3
# dies first.
wait_port() {
	local port=$1 secs=$2 pidfile=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		port_open "$port" && return 0
		if [ -n "$pidfile" ] && [ "$i" -gt 10 ] && ! pid_alive "$pidfile"; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# Build the daemons the demo runs (not the test suite: scripts/test.sh
# does that), whichever of them exist as targets yet.
build() {
	local t have targets=()
	say "building in $BUILD"
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	have=$(cmake --build "$BUILD" --target help)
	for t in ringgate ringstore ringgate-passwd; do
		if grep -Eq "^\.\.\. $t( |\$)" <<<"$have"; then
			targets+=("$t")
		fi
	done
	[ "${#targets[@]}" -gt 0 ] || die "no daemon targets in the build"
	cmake --build "$BUILD" -j2 --target "${targets[@]}"
}

make_cert() {
	if [ -s "$DEMO/ecdsa.crt" ] && [ -s "$DEMO/ecdsa.key" ]; then
		return 0
	fi
	say "creating a self-signed ECDSA P-256 certificate in $DEMO"
	(umask 077 && openssl req -x509 -newkey ec \
		-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
		-subj "/CN=localhost" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:mail.example.test" \
		-keyout "$DEMO/ecdsa.key" -out "$DEMO/ecdsa.crt" 2>/dev/null)
}

write_ringgate_conf() {
	cat >"$DEMO/ringgate.conf" <<EOF
# Written by scripts/demo.sh; rewritten on every start. Throw-away, local only.
daemon = {
  workers = 0;
  pid_file = "$RUN/ringgate.pid";
  log_level = "info";
  log_file = "$LOG/ringgate.log";
  drain_timeout = "5s";
};

admin = {
  listen = "127.0.0.1:$RG_ADMIN";
};

tls = {
  certificates = (
    { cert = "$DEMO/ecdsa.crt"; key = "$DEMO/ecdsa.key"; }
  );
  min_version = "TLSv1.2";
};

limits = {
  handshake_timeout = "10s";
  connect_timeout = "5s";
  idle_timeout = "30m";
  output_buffer = "256k";
  login_timeout = "60s";       # TLS, commands and the store's login
};

# The front ends: users log in here (against the demo passwd-file), are
# routed to their store and relayed; ringgate logs in at the store as the
# master identity on their behalf.
auth = {
  passwd_file = "$DEMO/ringgate.passwd";
  default_scheme = "SCRAM-SHA-256";
};
imap = (
  { name = "imap"; listen = "127.0.0.1:$RG_IMAP"; starttls = true; },
  { name = "imaps"; listen = "127.0.0.1:$RG_IMAPS"; tls = true; }
);
pop3 = (
  { name = "pop3"; listen = "127.0.0.1:$RG_POP3"; starttls = true; },
  { name = "pop3s"; listen = "127.0.0.1:$RG_POP3S"; tls = true; }
);
submission = (
  { name = "submission"; listen = "127.0.0.1:$RG_SUBMISSION"; starttls = true; },
  { name = "submissions"; listen = "127.0.0.1:$RG_SUBMISSIONS"; tls = true; }
);
backends = (
  { name = "store1"; imap = "127.0.0.1:$RS_IMAP"; pop3 = "127.0.0.1:$RS_POP3";
    submission = "127.0.0.1:$RS_SUBMISSION"; }
);
backend_login = {
  master_user = "$DEMO_MASTER";
  master_password_file = "$DEMO/master.pw";
};

# Badguy throttling (docs/throttling.md): counters shared through the
# demo's private Redis, the documented defaults otherwise (20 connections
# and 10 new ones a second per address; a growing delay per failed login,
# blocked for 15 minutes after 10 failures). Try a few wrong passwords and
# watch ringgate_throttle_* in the metrics.
throttle = {
  redis = "127.0.0.1:$REDIS_PORT";
  timeout = "100ms";
};
EOF
}

# ringstore: IMAP on $RS_IMAP and POP3 on $RS_POP3 (trusted: ringgate in
# front terminates TLS;
# STARTTLS with the demo certificate for direct clients), the demo account
# in a passwd-file, mail under .demo/mail.
write_ringstore_conf() {
	mkdir -p "$DEMO/mail"
	cat >"$DEMO/ringstore.conf" <<EOF
# Written by scripts/demo.sh; rewritten on every start. Throw-away, local only.
daemon = {
  workers = 2;
  pid_file = "$RUN/ringstore.pid";
  log_file = "$LOG/ringstore.log";
  drain_timeout = "5s";
};
admin = { listen = "127.0.0.1:$RS_ADMIN"; };
tls = {
  certificates = ( { cert = "$DEMO/ecdsa.crt"; key = "$DEMO/ecdsa.key"; } );
};
auth = {
  passwd_file = "$DEMO/ringstore.passwd";
  default_scheme = "SCRAM-SHA-256";
  # ringgate logs users in here as this master, from loopback only
  master_users = [ "$DEMO_MASTER" ];
  master_nets = [ "127.0.0.0/8", "::1" ];
};
storage = { mail_root = "$DEMO/mail"; };
imap = (
  { name = "imap"; listen = "127.0.0.1:$RS_IMAP"; starttls = true;
    trusted = true; }
);
pop3 = (
  { name = "pop3"; listen = "127.0.0.1:$RS_POP3"; starttls = true;
    trusted = true; }
);
# LMTP for a local MTA: trusted, so only trusted_nets (loopback) connect
lmtp = (
  { name = "lmtp"; listen = "127.0.0.1:$RS_LMTP"; trusted = true; }
);
# submission intake: STARTTLS for direct clients; trusted, so ringgate in
# front may log its clients in over XCLIENT from loopback
submission = (
  { name = "submission"; listen = "127.0.0.1:$RS_SUBMISSION";
    starttls = true; trusted = true; }
);
submit = { local_domains = [ "example.test" ]; };
EOF
	write_ringstore_passwd
	write_master
	deliver_welcome
}

# ringgate's master identity: a random password in master.pw (ringgate
# reads it) and its SCRAM keys in ringstore's passwd-file; and ringgate's
# own passwd-file with the demo account. Written once.
write_master() {
	if [ ! -s "$DEMO/master.pw" ]; then
		(umask 077 && openssl rand -hex 24 >"$DEMO/master.pw")
	fi
	if ! grep -q "^$DEMO_MASTER:" "$DEMO/ringstore.passwd"; then
		(umask 077 && python3 - "$DEMO_MASTER" "$DEMO/master.pw" \
			>>"$DEMO/ringstore.passwd" <<'PY'
import base64, hashlib, hmac, os, sys
pw = open(sys.argv[2]).read().strip().encode()
salt = os.urandom(16)
sp = hashlib.pbkdf2_hmac("sha256", pw, salt, 4096)
ck = hmac.new(sp, b"Client Key", hashlib.sha256).digest()
sk = hmac.new(sp, b"Server Key", hashlib.sha256).digest()
b = lambda x: base64.b64encode(x).decode()
print("%s:{SCRAM-SHA-256}SCRAM-SHA-256$4096:%s$%s:%s::::::" % (
    sys.argv[1], b(salt), b(hashlib.sha256(ck).digest()), b(sk)))
PY
		)
	fi
	(umask 077 && grep "^$DEMO_USER:" "$DEMO/ringstore.passwd" \
		>"$DEMO/ringgate.passwd")
}

# The demo account with RFC 5803 SCRAM-SHA-256 keys (PBKDF2, 4096 rounds),
# computed with Python's standard library; written once.
write_ringstore_passwd() {
	[ -s "$DEMO/ringstore.passwd" ] && return 0
	(umask 077 && DEMO_PASS="$DEMO_PASS" python3 - "$DEMO_USER" \
		>"$DEMO/ringstore.passwd" <<'PY'
import base64, hashlib, hmac, os, sys
pw = os.environ["DEMO_PASS"].encode()
salt = os.urandom(16)
sp = hashlib.pbkdf2_hmac("sha256", pw, salt, 4096)
ck = hmac.new(sp, b"Client Key", hashlib.sha256).digest()
sk = hmac.new(sp, b"Server Key", hashlib.sha256).digest()
b = lambda x: base64.b64encode(x).decode()
print("%s:{SCRAM-SHA-256}SCRAM-SHA-256$4096:%s$%s:%s::::::" % (
    sys.argv[1], b(salt), b(hashlib.sha256(ck).digest()), b(sk)))
PY
	)
}

# A welcome message dropped into the demo INBOX's new/, once, the way any
# local delivery agent would; ringstore picks it up at the next sync.
deliver_welcome() {
	local md="$DEMO/mail/example.test/demo/Maildir" name
	[ -e "$DEMO/welcome-delivered" ] && return 0
	mkdir -p "$md/tmp" "$md/new" "$md/cur"
	name="$(date +%s).M0P$$.demo"
	printf '%s\r\n' \
		"From: ringgate demo <postmaster@example.test>" \
		"To: $DEMO_USER" \
		"Subject: Welcome to ringstore" \
		"Date: $(LC_ALL=C date -R)" \
		"Message-ID: <welcome.$(date +%s)@example.test>" \
		"Content-Type: text/plain; charset=utf-8" \
		"" \
		"This message was delivered into your INBOX by scripts/demo.sh." \
		"Point an IMAP client at ringgate: 127.0.0.1:$RG_IMAP (STARTTLS)" \
		"or 127.0.0.1:$RG_IMAPS (IMAPS)." >"$md/tmp/$name"
	mv "$md/tmp/$name" "$md/new/$name"
	: >"$DEMO/welcome-delivered"
}

start_redis() {
	if pid_alive "$RUN/redis.pid"; then
		say "redis-server already running"
		return 0
	fi
	port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by something else"
	mkdir -p "$DEMO/redis"
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
		--appendonly no --daemonize yes --dir "$DEMO/redis" \
		--pidfile "$RUN/redis.pid" --logfile "$LOG/redis.log" </dev/null
	wait_port "$REDIS_PORT" 10 "" || die "redis-server did not start; see $LOG/redis.log"
}

# Start daemon $1 (binary $2, config $3) detached in its own session, so
# that a terminal's Ctrl-C reaches only this script, which stops things in
# order. The daemon writes its own pid file; we write it first too, so a
# daemon that dies at once is still noticed.
start_daemon() {
	local name=$1 bin=$2 conf=$3
	if pid_alive "$RUN/$name.pid"; then
		say "$name already running (pid $(cat "$RUN/$name.pid"))"
		return 0
	fi
	"$bin" -t -c "$conf" >/dev/null || die "$conf does not check out"
	setsid "$bin" -c "$conf" </dev/null >>"$LOG/$name.stderr" 2>&1 &
	echo $! >"$RUN/$name.pid"
}

check_ports_free() {
	local p
	for p in "$@"; do
		port_open "$p" && die "port $p is already in use; is a demo running? try: $0 stop"
	done
	return 0
}

stop_one() {
	local name=$1 pidfile="$RUN/$1.pid" pid i
	[ -s "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "$name did not stop in 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		say "stopped $name (pid $pid)"
	fi
	rm -f "$pidfile"
}

stop_all() {
	stop_one ringgate
	stop_one ringstore
	stop_one redis
}

status() {
	local name
	for name in ringgate ringstore redis; do
		if pid_alive "$RUN/$name.pid"; then
			printf '%-10s running (pid %s)\n' "$name" "$(cat "$RUN/$name.pid")"
		else
			printf '%-10s not running\n' "$name"
		fi
	done
}

print_ports() {
	local store_note="not built yet (a later issue)"
	[ -x "$RINGSTORE" ] && store_note="running"
	cat <<EOF

ringgate demo is up (state in $DEMO, logs in $LOG):

  ringgate, logging users in and relaying to ringstore:
    IMAP        127.0.0.1:$RG_IMAP (STARTTLS)   127.0.0.1:$RG_IMAPS (implicit TLS)
    POP3        127.0.0.1:$RG_POP3 (STLS)       127.0.0.1:$RG_POP3S (implicit TLS)
    submission  127.0.0.1:$RG_SUBMISSION (STARTTLS)   127.0.0.1:$RG_SUBMISSIONS (implicit TLS)
  127.0.0.1:$RG_ADMIN   ringgate admin: /metrics, /healthz
  127.0.0.1:$REDIS_PORT   redis-server (private, no persistence)
  ringstore: $store_note (IMAP $RS_IMAP, POP3 $RS_POP3, LMTP $RS_LMTP,
             submission $RS_SUBMISSION, admin $RS_ADMIN)

Try it:
  openssl s_client -connect 127.0.0.1:$RG_IMAPS -alpn imap -CAfile $DEMO/ecdsa.crt
  curl --cacert $DEMO/ecdsa.crt -u '$DEMO_USER:$DEMO_PASS' imaps://localhost:$RG_IMAPS/INBOX?ALL
  curl --cacert $DEMO/ecdsa.crt -u '$DEMO_USER:$DEMO_PASS' pop3s://localhost:$RG_POP3S/1
  swaks --server 127.0.0.1:$RG_SUBMISSION --tls --tls-ca-path $DEMO/ecdsa.crt \
        --auth PLAIN --auth-user $DEMO_USER --auth-password '$DEMO_PASS' \
        --from $DEMO_USER --to $DEMO_USER
  curl http://127.0.0.1:$RG_ADMIN/metrics
  curl http://127.0.0.1:$RG_ADMIN/healthz
  swaks --protocol LMTP --server 127.0.0.1:$RS_LMTP --to $DEMO_USER   (shows up in INBOX, IDLE included)

Demo account (throw-away, local only): $DEMO_USER / $DEMO_PASS
EOF
	if [ ! -x "$RINGSTORE" ]; then
		echo "ringstore is not built, so logins at ringgate get a temporary error."
	fi
}

start_all() {
	local fg=$1 ports=("$RG_IMAP" "$RG_IMAPS" "$RG_POP3" "$RG_POP3S"
		"$RG_SUBMISSION" "$RG_SUBMISSIONS" "$RG_ADMIN")

	rg_install_deps
	build
	mkdir -p "$DEMO" "$RUN" "$LOG"
	chmod 700 "$DEMO"
	make_cert
	write_ringgate_conf
	write_ringstore_passwd
	write_master
	pid_alive "$RUN/ringgate.pid" || check_ports_free "${ports[@]}"

	start_redis
	if [ -x "$RINGSTORE" ]; then
		write_ringstore_conf
		start_daemon ringstore "$RINGSTORE" "$DEMO/ringstore.conf"
		wait_port "$RS_ADMIN" 15 "$RUN/ringstore.pid" ||
			{ stop_all; die "ringstore did not start; see $LOG/ringstore.*"; }
	else
		say "skipping ringstore: $RINGSTORE is not built yet"
	fi
	start_daemon ringgate "$RINGGATE" "$DEMO/ringgate.conf"
	for p in "${ports[@]}"; do
		wait_port "$p" 15 "$RUN/ringgate.pid" ||
			{ cat "$LOG/ringgate.stderr" >&2 || true; stop_all;
			  die "ringgate did not answer on $p; see $LOG/ringgate.*"; }
	done
	# A daemon that answered and then fell over is not "up".
	sleep 0.5
	pid_alive "$RUN/ringgate.pid" ||
		{ tail -n 20 "$LOG/ringgate.stderr" "$LOG/ringgate.log" >&2 || true;
		  stop_all; die "ringgate exited right after start; see $LOG/"; }
	print_ports

	if [ "$fg" = 0 ]; then
		echo
		echo "Running in the background; stop with: $0 stop"
		return 0
	fi
	echo
	echo "Running in the foreground; Ctrl-C stops everything."
	trap 'echo; stop_all; exit 0' INT TERM HUP
	# Watch the daemons; if one dies, stop the rest and say so.
	while pid_alive "$RUN/ringgate.pid" &&
		{ [ ! -x "$RINGSTORE" ] || pid_alive "$RUN/ringstore.pid"; }; do
		sleep 1 &
		wait $! || true
	done
	say "a daemon exited; see $LOG/"
	stop_all
	exit 1
}

case "${1:-}" in
"") start_all 1 ;;
--background | -b | start) start_all 0 ;;
stop) stop_all ;;
status) status ;;
-h | --help | help)
	sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	;;
*) die "unknown argument '$1'; try --help" ;;
esac
