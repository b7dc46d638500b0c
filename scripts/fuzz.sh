#!/usr/bin/env bash
# Runs every fuzz target of the main module for FUZZTIME each (default 10s), FUZZ_JOBS at a time
# (default 2, one fuzzing worker each, so two at a time keep two cores busy).
#
# Each package with fuzz targets is compiled once, with the fuzzing instrumentation, into a test
# binary (`go test -c -fuzz`); its targets are read from that binary (-test.list), so every
# func FuzzXxx is run whatever file it is in, and each is run from the binary in the package's
# directory, as `go test -fuzz` would (same corpus cache under GOCACHE). A failing input is saved
# under the package's testdata/fuzz/FuzzXxx/; this script prints where, runs every target even
# after a failure, and exits non-zero if any failed. (The seed corpora also run as ordinary tests
# in `go test`.)
#
# Go 1.26's fuzzing coordinator sometimes fails a target with a bare "context deadline exceeded" just
# as FUZZTIME runs out, having found nothing (go.dev/issue/75804, fixed in Go 1.27). Such a run is
# reported as a flake and does not fail the script; any other failure does.
#
#   scripts/fuzz.sh                  (or: make fuzz)
#   FUZZTIME=10m scripts/fuzz.sh     FUZZ_TIMEOUT (default 60m) bounds each target's run
#   FUZZ_JOBS=1 scripts/fuzz.sh      one target at a time
#   FUZZTIME=30s scripts/fuzz.sh ./policy ./session     only these packages
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

go="${GO:-go}"
fuzztime="${FUZZTIME:-10s}"
timeout="${FUZZ_TIMEOUT:-60m}"
jobs="${FUZZ_JOBS:-2}"
if (($# == 0)); then
	set -- ./...
fi

work=$(mktemp -d -t authproxy-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The packages whose test files declare a fuzz target (gofmt puts every func at the start of a line).
pkgs=()
while read -r pkg dir files; do
	[[ -n $files ]] || continue
	if (cd "$dir" && grep -qE '^func Fuzz[A-Z0-9_]' $files); then
		pkgs+=("$pkg $dir")
	fi
done < <("$go" list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' "$@")

if ((${#pkgs[@]} == 0)); then
	printf 'fuzz: no fuzz targets found\n' >&2
	exit 1
fi

# One instrumented test binary per package; the go command builds the packages in parallel.
cachedir="$("$go" env GOCACHE)/fuzz"
targets=()
for entry in "${pkgs[@]}"; do
	read -r pkg dir <<<"$entry"
	bin="$work/${pkg//\//_}.test"
	"$go" test -c -fuzz=. -o "$bin" "$pkg"
	while IFS= read -r name; do
		[[ $name == Fuzz* ]] && targets+=("$pkg $dir $bin $name")
	done < <(cd "$dir" && "$bin" -test.list '^Fuzz')
done

if ((${#targets[@]} == 0)); then
	printf 'fuzz: no fuzz targets found\n' >&2
	exit 1
fi
printf 'fuzz: %d targets in %d packages, %s each, %d at a time\n' "${#targets[@]}" "${#pkgs[@]}" "$fuzztime" "$jobs" >&2

module=$("$go" list -m)

# fuzz_one runs target number $1 and leaves its output in $work/$1.log and its verdict in
# $work/$1.verdict: ok, flake or fail.
fuzz_one() {
	local i=$1 pkg dir bin name log
	read -r pkg dir bin name <<<"${targets[$i]}"
	log="$work/$i.log"
	if (cd "$dir" && "$bin" -test.run='^$' -test.fuzz="^$name\$" -test.fuzztime="$fuzztime" \
		-test.parallel=1 -test.timeout="$timeout" -test.fuzzcachedir="$cachedir/$pkg") >"$log" 2>&1; then
		echo ok >"$work/$i.verdict"
	elif ! grep -q 'Failing input written to\|failure while testing seed corpus' "$log" &&
		grep -q "^--- FAIL: $name " "$log" &&
		[[ $(sed -n "/^--- FAIL: $name /{n;p;}" "$log") =~ ^[[:space:]]+context\ deadline\ exceeded$ ]]; then
		echo flake >"$work/$i.verdict"
	else
		echo fail >"$work/$i.verdict"
	fi
}

running=0
for i in "${!targets[@]}"; do
	if ((running >= jobs)); then
		wait -n || true
		running=$((running - 1))
	fi
	fuzz_one "$i" &
	running=$((running + 1))
done
wait

failed=()
flaked=()
for i in "${!targets[@]}"; do
	read -r pkg dir _ name <<<"${targets[$i]}"
	rel=".${pkg#"$module"}"
	log="$work/$i.log"
	verdict=$(cat "$work/$i.verdict" 2>/dev/null || echo fail)
	printf 'fuzz: %s %s\n' "$rel" "$name" >&2
	case "$verdict" in
	ok)
		grep -v '^PASS$' "$log" | tail -n 1 >&2
		continue
		;;
	flake)
		cat "$log" >&2
		printf 'fuzz: FLAKE %s %s: the fuzzing coordinator stopped with "context deadline exceeded" and no failing input (go.dev/issue/75804)\n' "$rel" "$name" >&2
		flaked+=("$rel $name")
		continue
		;;
	esac
	cat "$log" >&2
	failed+=("$rel $name")
	# "Failing input written to testdata/fuzz/FuzzXxx/<hash>", relative to the package.
	while IFS= read -r input; do
		printf 'fuzz: FAIL %s %s: crasher written to %s/%s\n' "$rel" "$name" "$rel" "$input" >&2
		printf 'fuzz:   re-run: go test -run=%s/%s %s\n' "$name" "${input##*/}" "$rel" >&2
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
