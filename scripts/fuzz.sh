#!/usr/bin/env bash
# Runs every fuzz target of the main module, one after another, each for FUZZTIME (default 10s).
# Targets are found with `go test -list`, so every func FuzzXxx of every package is run,
# whatever file it is in. A failing input is saved by the fuzzer under the package's
# testdata/fuzz/FuzzXxx/; this script prints where, runs every target even after a failure,
# and exits non-zero if any failed. (The seed corpora also run as ordinary tests in `go test`.)
#
# Go 1.26's fuzzing coordinator sometimes fails a target with a bare "context deadline exceeded" just
# as FUZZTIME runs out, having found nothing (go.dev/issue/75804, fixed in Go 1.27). Such a run is
# reported as a flake and does not fail the script; any other failure does.
#
#   scripts/fuzz.sh                  (or: make fuzz)
#   FUZZTIME=10m scripts/fuzz.sh     FUZZ_TIMEOUT (default 60m) bounds each target's go test
#   FUZZTIME=30s scripts/fuzz.sh ./policy ./session     only these packages
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

go="${GO:-go}"
fuzztime="${FUZZTIME:-10s}"
timeout="${FUZZ_TIMEOUT:-60m}"
if (($# == 0)); then
	set -- ./...
fi

# "go test -list" prints a package's matching test names, then "ok <import path> <time>".
list=$("$go" test -list '^Fuzz' "$@")
targets=()
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	ok*)
		read -r _ pkg _ <<<"$line"
		for name in "${names[@]}"; do
			targets+=("$pkg $name")
		done
		names=()
		;;
	esac
done <<<"$list"

if ((${#targets[@]} == 0)); then
	printf 'fuzz: no fuzz targets found\n' >&2
	exit 1
fi
printf 'fuzz: %d targets, %s each\n' "${#targets[@]}" "$fuzztime" >&2

module=$("$go" list -m)
failed=()
flaked=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
	read -r pkg name <<<"$target"
	dir=".${pkg#"$module"}"
	printf 'fuzz: %s %s\n' "$dir" "$name" >&2
	if "$go" test -run='^$' -fuzz="^$name\$" -fuzztime="$fuzztime" -timeout="$timeout" "$pkg" >"$log" 2>&1; then
		tail -n 1 "$log" >&2
		continue
	fi
	cat "$log" >&2
	if ! grep -q 'Failing input written to\|failure while testing seed corpus' "$log" &&
		grep -q "^--- FAIL: $name " "$log" &&
		[[ $(sed -n "/^--- FAIL: $name /{n;p;}" "$log") =~ ^[[:space:]]+context\ deadline\ exceeded$ ]]; then
		printf 'fuzz: FLAKE %s %s: the fuzzing coordinator stopped with "context deadline exceeded" and no failing input (go.dev/issue/75804)\n' "$dir" "$name" >&2
		flaked+=("$dir $name")
		continue
	fi
	failed+=("$dir $name")
	# "Failing input written to testdata/fuzz/FuzzXxx/<hash>", relative to the package.
	while IFS= read -r input; do
		printf 'fuzz: FAIL %s %s: crasher written to %s/%s\n' "$dir" "$name" "$dir" "$input" >&2
		printf 'fuzz:   re-run: go test -run=%s/%s %s\n' "$name" "${input##*/}" "$dir" >&2
	done < <(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$log")
done

if ((${#failed[@]} > 0)); then
	printf 'fuzz: %d of %d targets failed:\n' "${#failed[@]}" "${#targets[@]}" >&2
	printf 'fuzz:   %s\n' "${failed[@]}" >&2
	printf 'fuzz: commit the crashers under testdata/fuzz/ with the fix, so the seed corpus keeps them\n' >&2
	exit 1
fi
if ((${#flaked[@]} > 0)); then
	printf 'fuzz: %d targets stopped with the coordinator flake (not failures): %s\n' "${#flaked[@]}" "${flaked[*]}" >&2
fi
printf 'fuzz: %d targets ran for %s each without failure\n' "${#targets[@]}" "$fuzztime" >&2
