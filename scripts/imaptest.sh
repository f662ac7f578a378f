#!/usr/bin/env bash
# imaptest.sh - Dovecot's imaptest (its IMAP conformance scripts and its
# random multi-client stress with state checking) against a running
# ringstore or ringgate. Not part of scripts/test.sh: imaptest is not
# packaged by Debian, so its source must be at hand (a git checkout of
# https://github.com/dovecot/imaptest); it is built against Debian's
# dovecot-dev at a commit that still fits Dovecot 2.3's API.
#
#   scripts/imaptest.sh SRC scripts HOST PORT USER PASS [ssl]
#   scripts/imaptest.sh SRC stress  HOST PORT USER PASS [ssl] [CLIENTS] [SECS]
#
# SRC is the imaptest checkout (it is cloned to a scratch copy and built
# there; SRC itself is not changed). "scripts" runs src/tests (exit 1 if a
# test group fails), "stress" runs CLIENTS (20) sessions on one folder for
# SECS (60) seconds (exit 1 on any error line). Point it at ringgate's
# implicit-TLS port with "ssl", at a ringgate without throttle rules (its
# per-address connection rate refuses imaptest's bursts, as it should).
# Results of the last run are in docs/benchmarks.md ("imaptest").

set -euo pipefail

# The last commit before imaptest followed Dovecot 2.4's str_begins().
PIN=ba1d6ab^
SRC=${1:?imaptest checkout}
MODE=${2:?scripts or stress}
HOST=${3:?host}
PORT=${4:?port}
USER_=${5:?user}
PASS=${6:?password}
SSL=${7:-}
CLIENTS=${8:-20}
SECS=${9:-60}
WORK=${RG_IMAPTEST_DIR:-/tmp/rg-imaptest}

die() { echo "imaptest.sh: $*" >&2; exit 2; }

build() {
	[ -x "$WORK/src/imaptest" ] && return 0
	dpkg -s dovecot-dev >/dev/null 2>&1 ||
		apt-get install -y -qq dovecot-dev autoconf automake libtool >/dev/null ||
		die "dovecot-dev is needed"
	rm -rf "$WORK"
	git clone -q "$SRC" "$WORK"
	git -C "$WORK" checkout -q "$PIN"
	# Dovecot 2.3.19's imap_parser_create() takes a params pointer
	sed -i 's/imap_parser_create(\(.*\), (size_t)-1);/imap_parser_create(\1, (size_t)-1, NULL);/' \
		"$WORK"/src/commands.c "$WORK"/src/imap-client.c "$WORK"/src/test-parser.c
	(cd "$WORK" && ./autogen.sh && ./configure --with-dovecot=/usr/lib/dovecot &&
		make -j2) >"$WORK.build.log" 2>&1 || die "build failed, see $WORK.build.log"
}

build
export LD_LIBRARY_PATH=/usr/lib/dovecot
args=(host="$HOST" port="$PORT" user="$USER_" pass="$PASS")
[ "$SSL" = ssl ] && args+=(ssl=any-cert)
case $MODE in
scripts)
	out=$("$WORK/src/imaptest" "${args[@]}" test="$WORK/src/tests" 2>&1) || true
	echo "$out" | grep -v '^$' | tail -20
	echo "$out" | grep -q '^[0-9]* test groups: 0 failed'
	;;
stress)
	# the folder must exist before the clients select it
	python3 - "$HOST" "$PORT" "$USER_" "$PASS" "$SSL" <<'PY'
import imaplib, ssl, sys
host, port, user, pw, tls = sys.argv[1:]
if tls == "ssl":
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl._create_unverified_context())
else:
    m = imaplib.IMAP4(host, int(port))
m.login(user, pw)
m.create("imaptest-stress")
m.logout()
PY
	log=$(mktemp)
	"$WORK/src/imaptest" "${args[@]}" mbox="$WORK/src/tests/default.mbox" \
		box=imaptest-stress clients="$CLIENTS" secs="$SECS" >"$log" 2>&1 || true
	tail -4 "$log"
	if grep -E '^(Error|Panic|Fatal)' "$log"; then
		rm -f "$log"
		exit 1
	fi
	rm -f "$log"
	;;
*) die "mode is scripts or stress" ;;
esac
