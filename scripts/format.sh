#!/usr/bin/env bash
# format.sh - clang-format the C sources with the committed .clang-format.
#
#   scripts/format.sh                 format every tracked .c/.h in place
#   scripts/format.sh FILE...         format only these files in place
#   scripts/format.sh --check [FILE...]
#                                     change nothing; print each file that is
#                                     not formatted, exit 1 if there is one
#
# Exits 0 when done (or clean), 1 when --check found unformatted files, 2 on
# a usage error or when clang-format is missing or fails. Works from any
# directory. CLANG_FORMAT names the binary (default clang-format); the style
# is tuned for clang-format 14 (Debian 12), and other versions may lay out
# a few lines differently, so a different major version gets a warning.
#
# A folder of third-party code that must keep its own layout gets a
# .clang-format of its own with `DisableFormat: true`.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CF=${CLANG_FORMAT:-clang-format}
WANT_MAJOR=14

usage() {
	echo "usage: scripts/format.sh [--check] [FILE...]" >&2
	exit 2
}

# The tracked C sources (that still exist), NUL-separated, relative to ROOT.
tracked_sources() {
	local f
	if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$ROOT" ls-files -z -- '*.c' '*.h' |
			while IFS= read -r -d '' f; do
				[ -f "$ROOT/$f" ] && printf '%s\0' "$f"
			done
	else
		# A tarball, not a clone: every source outside the build trees.
		(cd "$ROOT" && find . -mindepth 1 \( -name 'build*' -o -name '.*' \) \
			-prune -o -type f \( -name '*.c' -o -name '*.h' \) \
			-printf '%P\0')
	fi
}

check_version() {
	local v major
	v=$("$CF" --version 2>/dev/null) || return 0
	major=$(printf '%s\n' "$v" | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
	if [ -n "$major" ] && [ "$major" != "$WANT_MAJOR" ]; then
		echo "format: $CF is version $major; .clang-format is tuned for" \
			"$WANT_MAJOR and CI uses $WANT_MAJOR" >&2
	fi
}

# check FILE...: print the files clang-format would change. One clang-format
# process for all of them (one per file costs seconds); its --dry-run
# diagnostics start with "FILE:LINE:COL: ", and --ferror-limit=1 keeps it to
# one per file.
check() {
	local out rc bad
	out=$("$CF" --style=file --dry-run --Werror --ferror-limit=1 "$@" 2>&1)
	rc=$?
	bad=$(printf '%s\n' "$out" |
		sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' |
		sort -u)
	if [ -n "$bad" ]; then
		printf '%s\n' "$bad"
		echo "format: $(printf '%s\n' "$bad" | wc -l) file(s) not formatted;" \
			"run scripts/format.sh" >&2
		return 1
	fi
	if [ "$rc" -ne 0 ]; then
		# Failed without naming a violation: a bad .clang-format, a
		# file that does not exist, ...
		printf '%s\n' "$out" >&2
		return 2
	fi
	return 0
}

main() {
	local mode=format
	local -a files=()

	if [ "${1:-}" = "--check" ]; then
		mode=check
		shift
	fi
	case "${1:-}" in
	--) shift ;;
	-*) usage ;;
	esac
	if ! command -v "$CF" >/dev/null 2>&1; then
		echo "format: $CF not found (Debian: apt-get install clang-format)" >&2
		return 2
	fi
	check_version
	if [ "$#" -gt 0 ]; then
		# Named files, as the caller names them: clang-format finds
		# .clang-format from each file's own folder.
		files=("$@")
	else
		cd "$ROOT" || return 2
		mapfile -d '' files < <(tracked_sources)
	fi
	if [ "${#files[@]}" -eq 0 ]; then
		echo "format: no .c or .h files" >&2
		return 0
	fi
	if [ "$mode" = check ]; then
		check "${files[@]}"
		return
	fi
	"$CF" --style=file -i "${files[@]}" || return 2
}

main "$@"
