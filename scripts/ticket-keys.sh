#!/bin/sh
# ticket-keys.sh - make and rotate the TLS session ticket key file that
# every ringgate (and ringstore) instance names in tls.ticket_key_file.
#
# The file is 80 bytes per key (name 16, HMAC-SHA256 key 32, AES-256 key
# 32), 1 to 64 keys: the first encrypts new tickets, every key decrypts.
# Rotation is three steps, each followed by copying the file to every
# instance and a SIGHUP to each (docs/scale-out.md):
#   add FILE      append a new key (decrypt-only for now)
#   promote FILE  move the last key to the front (it encrypts from now)
#   drop FILE     keep only the first key (after the ticket lifetime)
# Also:
#   new FILE      a file with one fresh key (refuses to overwrite)
#   list FILE     the key names in hex, first first (no secrets shown)
# Every write is to FILE.tmp (mode 600) then renamed, so a reload never
# reads half a file. Needs openssl, od, head, tail (Debian base).
set -eu

KEY=80

die() {
	echo "ticket-keys.sh: $*" >&2
	exit 1
}

count() {
	size=$(wc -c <"$1")
	[ $((size % KEY)) -eq 0 ] && [ "$size" -gt 0 ] ||
		die "$1: size $size is not a multiple of $KEY"
	echo $((size / KEY))
}

# write FILE from stdin, atomically, mode 600
put() {
	(umask 077 && cat >"$1.tmp")
	chmod 600 "$1.tmp"
	mv "$1.tmp" "$1"
}

[ $# -eq 2 ] || die "usage: ticket-keys.sh new|add|promote|drop|list FILE"
cmd=$1
f=$2
case $cmd in
new)
	[ ! -e "$f" ] || die "$f exists (use add to rotate)"
	openssl rand $KEY | put "$f"
	;;
add)
	n=$(count "$f")
	[ "$n" -lt 64 ] || die "$f already holds 64 keys: drop first"
	{ cat "$f"; openssl rand $KEY; } | put "$f"
	;;
promote)
	n=$(count "$f")
	{ tail -c $KEY "$f"; head -c $(((n - 1) * KEY)) "$f"; } | put "$f"
	;;
drop)
	count "$f" >/dev/null
	head -c $KEY "$f" | put "$f"
	;;
list)
	n=$(count "$f")
	i=0
	while [ $i -lt "$n" ]; do
		od -An -tx1 -v -j $((i * KEY)) -N 16 "$f" | tr -d ' \n'
		echo
		i=$((i + 1))
	done
	;;
*)
	die "unknown command $cmd (new, add, promote, drop, list)"
	;;
esac
