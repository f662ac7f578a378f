#!/usr/bin/env bash
# test.sh - the whole test suite, as CI runs it (.ci/run execs this).
#
#   1. install what is missing (scripts/deps.sh)
#   2. format       scripts/format.sh --check: every tracked .c/.h is as
#                   clang-format (.clang-format) lays it out
#   3. build/       normal build (RelWithDebInfo, -Werror), ctest
#   4. build-asan/  ASan + UBSan build, ctest with leak detection
#   5. build-fuzz/  clang libFuzzer build (when clang exists), a short run of
#                   every tests/fuzz/fuzz_* target over a copy of its corpus
#
# Exits non-zero if any step fails and prints one summary line at the end.
# Works from any directory, with no stdin and with CI=true. Tunables:
# RG_FUZZ_SECONDS (default 20 per target), RG_JOBS (default 2).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${RG_JOBS:-2}
FUZZ_SECONDS=${RG_FUZZ_SECONDS:-20}
export CI=${CI:-}

# shellcheck source=scripts/deps.sh
. "$ROOT/scripts/deps.sh"

declare -a RESULTS=()
FAILED=0

step() { printf '\n=== %s\n' "$*"; }

# record NAME STATUS: remember a step's outcome for the summary.
record() {
	if [ "$2" -eq 0 ]; then
		RESULTS+=("$1:ok")
	else
		RESULTS+=("$1:FAIL")
		FAILED=1
	fi
}

build_and_test() {
	local name=$1 dir=$2
	shift 2
	step "$name: configure and build in $dir"
	if ! cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" ||
		! cmake --build "$dir" -j"$JOBS"; then
		record "$name-build" 1
		return 1
	fi
	record "$name-build" 0
	step "$name: ctest"
	(cd "$dir" && ctest --output-on-failure -j"$JOBS" </dev/null)
	record "$name-ctest" $?
}

# The layout check. Without clang-format it is skipped with a note, except
# in CI, where a missing formatter is a failure (deps.sh installs it).
format_check() {
	step "format: scripts/format.sh --check"
	if ! command -v "${CLANG_FORMAT:-clang-format}" >/dev/null 2>&1; then
		if [ -n "$CI" ]; then
			echo "test.sh: clang-format not found; in CI that fails" >&2
			record format 1
		else
			echo "test.sh: clang-format not found; format check skipped" >&2
		fi
		return 0
	fi
	"$ROOT/scripts/format.sh" --check </dev/null
	record format $?
}

# One libFuzzer target for FUZZ_SECONDS over a scratch copy of its seed
# corpus in tmp/name (so new inputs never land in the repository); its
# output goes to tmp/name/log and its exit code to tmp/name/rc.
fuzz_one() {
	local dir=$1 tmp=$2 name=$3 corpus
	local -a args
	corpus=$ROOT/tests/fuzz/corpus/${name#fuzz_}
	mkdir -p "$tmp/$name/corpus" "$tmp/$name/artifacts"
	if [ -d "$corpus" ]; then
		cp -r "$corpus"/. "$tmp/$name/corpus/"
	fi
	args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048
		-print_final_stats=1 -artifact_prefix="$tmp/$name/artifacts/")
	if [ -f "$ROOT/tests/fuzz/$name.dict" ]; then
		args+=(-dict="$ROOT/tests/fuzz/$name.dict")
	fi
	(cd "$tmp/$name" && "$dir/tests/$name" "${args[@]}" corpus </dev/null \
		>"$tmp/$name/log" 2>&1)
	echo $? >"$tmp/$name/rc"
}

# Run every libFuzzer target (fuzz_one), JOBS at a time.
fuzz_runs() {
	local dir=$ROOT/build-fuzz tmp src name rc=0 n=0
	local -a targets=()
	for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
		[ -f "$src" ] && targets+=("$(basename "$src" .c)")
	done
	if [ "${#targets[@]}" -eq 0 ]; then
		echo "fuzz: no tests/fuzz/fuzz_*.c targets yet"
		return 0
	fi
	step "fuzz: clang libFuzzer build in $dir (${targets[*]})"
	# Only the fuzz targets (and what they link) are built with clang.
	if ! CC=clang cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DFUZZ=ON -DASAN=ON ||
		! cmake --build "$dir" -j"$JOBS" --target "${targets[@]}"; then
		record fuzz-build 1
		return 1
	fi
	record fuzz-build 0
	tmp=$(mktemp -d)
	# JOBS targets at a time (each libFuzzer run takes one core); results
	# are reported in order once all have run.
	local -a running=()
	for name in "${targets[@]}"; do
		if [ "${#running[@]}" -ge "$JOBS" ]; then
			wait "${running[0]}"
			running=("${running[@]:1}")
		fi
		fuzz_one "$dir" "$tmp" "$name" &
		running+=($!)
	done
	wait
	for name in "${targets[@]}"; do
		step "fuzz: $name for ${FUZZ_SECONDS}s"
		n=$((n + 1))
		if [ "$(cat "$tmp/$name/rc" 2>/dev/null)" != 0 ]; then
			tail -n 60 "$tmp/$name/log"
			echo "fuzz: $name FAILED; crashing inputs:" >&2
			ls -l "$tmp/$name/artifacts/" >&2
			# Keep the reproducers where .gitignore expects them.
			cp "$tmp/$name/artifacts/"* "$ROOT/tests/fuzz/" 2>/dev/null || true
			rc=1
		else
			grep -E '^(stat::number_of_executed_units|Done)' \
				"$tmp/$name/log" || tail -n 2 "$tmp/$name/log"
		fi
	done
	rm -rf "$tmp"
	echo "fuzz: $n target(s) run"
	record fuzz-run "$rc"
}

main() {
	local start=$SECONDS

	step "dependencies"
	if ! rg_install_deps; then
		record deps 1
		echo "test.sh: could not install dependencies" >&2
		exit 1
	fi
	record deps 0

	format_check

	build_and_test normal "$ROOT/build"

	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		build_and_test asan "$ROOT/build-asan" -DASAN=ON

	if command -v clang >/dev/null 2>&1; then
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			fuzz_runs
	else
		echo "test.sh: clang not found; fuzz runs skipped" >&2
		[ -n "$CI" ] && record fuzz-clang 1
	fi

	echo
	if [ "$FAILED" -eq 0 ]; then
		echo "test.sh: PASS (${RESULTS[*]}) in $((SECONDS - start))s"
	else
		echo "test.sh: FAIL (${RESULTS[*]}) in $((SECONDS - start))s"
	fi
	return "$FAILED"
}

main "$@"
