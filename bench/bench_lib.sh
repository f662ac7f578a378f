# bench_lib.sh - helpers shared by bench/store.sh, login.sh, pop3.sh and
# lmtp.sh (sourced, not run): process and port handling, the EXIT trap,
# starting ringstore and Dovecot, installing Dovecot when it is missing, a
# temporary Dovecot config that never touches /etc/dovecot, the generated
# Maildir both stores are measured on, and awk's kv() for result lines.
# Callers set `set -euo pipefail` and ROOT; nothing here listens anywhere
# but 127.0.0.1.

die() {
	printf '%s: %s\n' "$(basename "$0")" "$*" >&2
	exit 1
}

# A TCP port on 127.0.0.1 that was free a moment ago, from the kernel's
# ephemeral range (outside the 10000-29999 ports the demo uses).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port
	for _ in $(seq 150); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 never opened" >&2
	return 1
}

# SIGTERM, up to 10 s, then SIGKILL; only the pid we started.
stop_pid() { # pid
	local p=$1
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

# The EXIT trap of every script: stops what it started (GATE_PID, RS_PID,
# DC_PID, whichever are set) and removes TMP.
bench_cleanup() {
	stop_pid "${GATE_PID:-}"
	stop_pid "${RS_PID:-}"
	stop_pid "${DC_PID:-}"
	rm -rf "$TMP"
}

# need_built FILE...: each must be an executable of the build in BUILD.
need_built() {
	local f
	for f in "$@"; do
		[ -x "$f" ] || die "$f is missing; build first (cmake --build $BUILD -j2)"
	done
}

# start_ringstore DIR PORT: $STORE -c DIR/ringstore.conf in the background
# (stderr to DIR/stderr, RS_PID set) until PORT accepts.
start_ringstore() {
	"$STORE" -c "$1/ringstore.conf" 2>"$1/stderr" &
	RS_PID=$!
	wait_port "$2" || { cat "$1/stderr" >&2; die "ringstore did not start"; }
}

# start_dovecot DIR PORT: Dovecot on DIR/dovecot.conf (dovecot_conf) in the
# foreground mode, in the background (DC_PID set), until PORT accepts.
start_dovecot() {
	dovecot -F -c "$1/dovecot.conf" 2>"$1/stderr" &
	DC_PID=$!
	wait_port "$2" || { cat "$1/stderr" "$1/dovecot.log" >&2; die "dovecot did not start"; }
}

# kv_awk PROGRAM FILE...: awk PROGRAM with kv(line, key), the value of
# key=... in a result line ("" when absent).
kv_awk() {
	local prog=$1
	shift
	awk '
function kv(line, key,   re, m) {
	re = "(^| )" key "=[^ ]*"
	if (match(line, re) == 0) return ""
	m = substr(line, RSTART, RLENGTH); sub(/^ /, "", m)
	return substr(m, length(key) + 2)
}
'"$prog" "$@"
}

machine_notes() {
	echo "cpus=$(nproc) kernel=$(uname -r) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" fs=$(df -T /tmp | awk 'NR==2 {print $2}') date=$(date -u +%FT%TZ)"
}

# Dovecot from Debian, and the unprivileged user that owns its Maildir
# copies (Dovecot refuses to serve mail as uid 0).
need_dovecot() {
	if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/imap ]; then
		[ "$(id -u)" = 0 ] || die "dovecot-imapd is missing and we are not root"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
	fi
	id rgbench >/dev/null 2>&1 ||
		useradd -r -M -d /nonexistent -s /usr/sbin/nologin rgbench
}

# need_dovecot_part NAME: Dovecot's NAME service (lmtp, pop3) from the
# dovecot-NAMEd package, installed when it is missing.
need_dovecot_part() {
	[ -x "/usr/lib/dovecot/$1" ] && return 0
	[ "$(id -u)" = 0 ] || die "dovecot-$1d is missing and we are not root"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "dovecot-$1d" >/dev/null
}

# dovecot_conf DIR PORT HASH USER [extra settings...]: DIR/dovecot.conf and
# DIR/passwd for USER with HASH ({SCHEME}...) served from DIR/home/Maildir
# as rgbench. Defaults everywhere else (auth cache off, imap-login and imap
# one process per connection, mail_fsync = optimized).
dovecot_conf() {
	local dir=$1 port=$2 hash=$3 user=$4 uid gid
	shift 4
	uid=$(id -u rgbench)
	gid=$(id -g rgbench)
	mkdir -p "$dir/run" "$dir/state"
	chmod 755 "$dir"
	printf '%s:%s:%s:%s::%s/home::\n' "$user" "$hash" "$uid" "$gid" "$dir" \
		>"$dir/passwd"
	chmod 644 "$dir/passwd" # read by the auth process (user dovecot)
	cat >"$dir/dovecot.conf" <<CONF
# Written by bench/bench_lib.sh; throw-away, loopback only.
instance_name = rgbench-$port
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = $uid
last_valid_uid = $uid
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = $dir/passwd
}
userdb {
  driver = passwd-file
  args = $dir/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0600
  }
}
CONF
	local s
	for s in "$@"; do
		printf '%s\n' "$s" >>"$dir/dovecot.conf"
	done
}

# make_corpus DIR N: a Maildir with N messages in cur/, generated once
# (fixed seed) and reused while DIR exists. Sizes 1-50 KiB (most small),
# From/To/Cc/Subject/Date/Message-ID, some multipart/alternative, some
# with base64 attachments, some RFC 2047 subjects, LF line endings as a
# delivery agent writes them; names in the ringstore/Dovecot form with
# S= and W= sizes and flags.
make_corpus() {
	local dir=$1 n=$2
	[ -e "$dir.complete" ] && return 0
	rm -rf "$dir"
	mkdir -p "$dir"
	echo "# generating $n messages in $dir (once)"
	python3 - "$dir" "$n" <<'PY'
import base64, os, random, sys
from email.utils import formatdate

out, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20261123)
for d in ("tmp", "new", "cur"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
first = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi",
         "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert",
         "Sybil", "Trent", "Victor", "Walter", "Zoe"]
last = ["Smith", "Jones", "Martin", "Bernard", "Dubois", "Muller", "Rossi",
        "Garcia", "Novak", "Kowalski", "Jensen", "Tanaka"]
domains = ["example.org", "example.net", "corp.example", "lists.example.com"]
words = ("the of and to in is that for it with as on be at by this we are "
         "from or have an they which you were all there their been has "
         "report meeting budget quarterly server release deploy review "
         "invoice contract schedule customer ticket outage latency backup "
         "migration proposal draft agenda minutes update status question "
         "thanks regards please attached tomorrow deadline").split()
subj_words = ("Re: Fwd: weekly status report meeting notes invoice budget "
              "Q3 plan outage postmortem release candidate review request "
              "lunch on Friday contract draft agenda").split()
encoded = ["=?UTF-8?B?%s?=" % base64.b64encode(s.encode()).decode() for s in
           ("Réunion de l'équipe", "Überprüfung des Budgets",
            "会議の議事録", "Informe trimestral – revisión")]
encoded += ["=?ISO-8859-1?Q?R=E9sum=E9_du_projet?=",
            "=?UTF-8?Q?Caf=C3=A9_demain=3F?="]

def addr():
    f, l = rnd.choice(first), rnd.choice(last)
    return '"%s %s" <%s.%s@%s>' % (f, l, f.lower(), l.lower(),
                                  rnd.choice(domains))

def text(size):
    lines, cur, total = [], [], 0
    while total < size:
        w = rnd.choice(words)
        cur.append(w)
        total += len(w) + 1
        if sum(len(x) + 1 for x in cur) > 70:
            lines.append(" ".join(cur))
            cur = []
    lines.append(" ".join(cur))
    return "\n".join(lines) + "\n"

def size_kib():
    r = rnd.random()
    if r < 0.6:
        return rnd.uniform(1, 8)
    if r < 0.9:
        return rnd.uniform(8, 25)
    return rnd.uniform(25, 50)

t0 = 1763900000 - n * 600
for i in range(n):
    t = t0 + i * 600 + rnd.randrange(600)
    target = int(size_kib() * 1024)
    subj = (rnd.choice(encoded) if rnd.random() < 0.06 else
            " ".join(rnd.sample(subj_words, rnd.randint(2, 6))) + " #%d" % i)
    hdr = [
        "Return-Path: <bounce-%d@%s>" % (i, rnd.choice(domains)),
        "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\n"
        "\tby mail.example.test with ESMTPS id %08X\n\tfor <bench@example.test>;"
        " %s" % (i % 7, i % 7, i % 250 + 1, rnd.getrandbits(32),
                 formatdate(t)),
        "From: " + addr(),
        "To: \"Bench User\" <bench@example.test>" +
        ("".join(", " + addr() for _ in range(rnd.randint(0, 3)))),
    ]
    if rnd.random() < 0.3:
        hdr.append("Cc: " + ", ".join(addr() for _ in range(rnd.randint(1, 4))))
    hdr += ["Subject: " + subj, "Date: " + formatdate(t - rnd.randrange(90)),
            "Message-ID: <%d.%x@%s>" % (t, rnd.getrandbits(48),
                                        rnd.choice(domains)),
            "MIME-Version: 1.0"]
    if rnd.random() < 0.3:
        hdr.append("In-Reply-To: <%d.%x@%s>" % (t - 3600, rnd.getrandbits(48),
                                                rnd.choice(domains)))
    kind = rnd.random()
    head_len = sum(len(h) + 1 for h in hdr)
    body_size = max(200, target - head_len)
    if kind < 0.65:
        hdr.append("Content-Type: text/plain; charset=utf-8")
        body = text(body_size)
    elif kind < 0.85:
        b = "alt-%x" % rnd.getrandbits(64)
        plain = text(body_size // 3)
        html = "<html><body><p>" + text(body_size // 2).replace(
            "\n", "</p>\n<p>") + "</p></body></html>\n"
        hdr.append('Content-Type: multipart/alternative; boundary="%s"' % b)
        body = ("--%s\nContent-Type: text/plain; charset=utf-8\n\n%s"
                "--%s\nContent-Type: text/html; charset=utf-8\n\n%s--%s--\n"
                % (b, plain, b, html, b))
    else:
        b = "mix-%x" % rnd.getrandbits(64)
        att = base64.encodebytes(rnd.randbytes(max(300, body_size * 3 // 4 - 600)))
        hdr.append('Content-Type: multipart/mixed; boundary="%s"' % b)
        body = ("--%s\nContent-Type: text/plain; charset=utf-8\n\n%s"
                "--%s\nContent-Type: application/pdf; name=\"doc%d.pdf\"\n"
                "Content-Disposition: attachment; filename=\"doc%d.pdf\"\n"
                "Content-Transfer-Encoding: base64\n\n%s--%s--\n"
                % (b, text(400), b, i, i, att.decode(), b))
    data = ("\n".join(hdr) + "\n\n" + body).encode()
    vsize = len(data) + data.count(b"\n")
    r = rnd.random()
    flags = "S" if r < 0.8 else ("FS" if r < 0.85 else ("RS" if r < 0.9 else ""))
    name = "%d.M%dP%dR%016x.bench,S=%d,W=%d:2,%s" % (
        t, rnd.randrange(1000000), 4000 + i % 1000, rnd.getrandbits(64),
        len(data), vsize, flags)
    path = os.path.join(out, "cur", name)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (t, t))
PY
	: >"$dir.complete"
}

# make_big DIR SIZE: a Maildir++ folder (cur/ new/ tmp/, maildirfolder)
# holding one message of SIZE bytes, text lines of a fixed seed, made once
# and reused while DIR exists: the FETCH BODY[] streaming step.
make_big() {
	local dir=$1 size=$2
	[ -e "$dir.complete" ] && return 0
	rm -rf "$dir"
	mkdir -p "$dir/cur" "$dir/new" "$dir/tmp"
	: >"$dir/maildirfolder"
	python3 - "$dir/cur" "$size" <<'PY'
import os, random, sys

out, size = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20261206)
head = (b"From: Big Sender <big@example.org>\nTo: bench@example.test\n"
        b"Subject: a large message\nDate: Sun, 6 Dec 2026 12:00:00 +0000\n"
        b"Message-ID: <big.1@example.org>\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=us-ascii\n\n")
alphabet = b"abcdefghijklmnopqrstuvwxyz      ABCDEFGHIJ0123456789.,"
lines = [bytes(rnd.choice(alphabet) for _ in range(72)) + b"\n"
         for _ in range(1024)]
body = bytearray()
while len(head) + len(body) < size:
    body += lines[rnd.randrange(1024)]
data = head + bytes(body[:size - len(head) - 1]) + b"\n"
t = 1765000000
name = "%d.M1P1R0000000000000001.bench,S=%d,W=%d:2,S" % (
    t, len(data), len(data) + data.count(b"\n"))
with open(os.path.join(out, name), "wb") as f:
    f.write(data)
os.utime(os.path.join(out, name), (t, t))
PY
	: >"$dir.complete"
}
