#!/usr/bin/env bash
# deps.sh - install the Debian packages ringgate needs to build, test and
# run its demo, and nothing more. Only what is missing is installed, and
# `apt-get update` runs once, only when something is missing, so a machine
# that already has everything is never touched.
#
# Run it (`scripts/deps.sh`) or source it and call rg_install_deps. It needs
# root or sudo when something is missing; it never asks questions
# (DEBIAN_FRONTEND=noninteractive), so it works with CI=true and no stdin.

RG_DEPS=(
	build-essential cmake pkg-config
	liburing-dev libssl-dev libhiredis-dev libconfig-dev libcmocka-dev
	libargon2-dev libsodium-dev libcrypt-dev libldap-dev
	redis-server redis-sentinel slapd ldap-utils curl swaks python3 openssl clang
	clang-format # scripts/format.sh; .clang-format is tuned for its 14
	isync # mbsync, a real IMAP client for ringstore's tests
	gsasl # GNU SASL's client: SCRAM-SHA-256(-PLUS) against ringstore
	prometheus # for promtool, which checks the /metrics text format
	procps
	haproxy # a real load balancer sending PROXY v2 in front of the daemons
	libcrack2-dev cracklib-runtime # ringgate-passwd's strength check
	fetchmail # a real POP3 client (retrieve and delete) for ringstore's tests
	libnet-ssleay-perl # swaks --tls against the submission intake
	clamav-daemon # clamd for the content policy's INSTREAM test (own config, EICAR-only db)
	dovecot-imapd dovecot-pop3d # a Dovecot back end with a master passdb (ringgate's back-end login tests)
)

rg_pkg_installed() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[ "$status" = "install ok installed" ]
}

rg_install_deps() {
	local missing=() pkg sudo=()

	for pkg in "${RG_DEPS[@]}"; do
		rg_pkg_installed "$pkg" || missing+=("$pkg")
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
			return 1
		fi
		sudo=(sudo -n)
	fi
	echo "deps: installing ${missing[*]}" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null ||
		return 1
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" </dev/null || return 1
}

# Run directly: install and report.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	rg_install_deps
	echo "deps: all present" >&2
fi
