#!/usr/bin/env bash
# Runs every test, as CI does (make test, .ci/run): the unit and end-to-end tests with -race, every
# fuzz target for FUZZTIME (default 8s), and the deployment checks (deploy/check). On a fresh
# Debian machine it installs the components first (scripts/install-deps.sh).
#
# Where the time goes, and what runs beside what on two cores:
#   - `go test -race -count=1 ./e2e` is the long pole (the end-to-end tests spend most of their
#     time waiting on Chromium, Dex and the processes under test), so it starts first, with the
#     unit packages (`-p 1`: one at a time) beside it.
#   - Beside it, at a lower priority (nice), so that it only takes the CPU the tests leave idle:
#     the fuzz targets (scripts/fuzz.sh: one instrumented binary per package, two targets at a
#     time) and the deployment checks (their module's Kubernetes and Compose libraries are
#     downloaded and compiled once, then come from the Go caches).
#   - Dex is built once per machine (scripts/install-deps.sh caches it). When it is missing (a
#     fresh machine, empty caches), the run has two phases instead: the unit packages, with Dex
#     building beside them at the tests' priority (the end-to-end tests wait for it), then the
#     end-to-end tests. The niced parts run throughout: compiling in the first phase, fuzzing in
#     the second. (Before their nice took effect, see low below, the machine was oversubscribed
#     enough that tests with real Redis servers missed their 1s timeouts and redis-sentinel
#     stalled for seconds.)
# Every part runs even if another fails; the script prints each part's time and exits non-zero if
# any failed. Under CI=true (.ci/run exports it) a missing component fails the tests that need it.
#
#   scripts/test.sh            (or: make test)
#   FUZZTIME=30s scripts/test.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export GO="${GO:-go}"
export FUZZTIME="${FUZZTIME:-8s}"
readonly NICE="${TEST_NICE:-19}"

log() { printf 'test: %s\n' "$*" >&2; }

logs=$(mktemp -d -t authproxy-test.XXXXXX)
declare -A pids=() # part -> pid of its background job
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	local part
	for part in "${!pids[@]}"; do
		kill -TERM -- "-${pids[$part]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# low cmd...: cmd at nice $NICE. A background part is a session of its own (setsid, below), and
# with Linux's autogroup scheduling (kernel.sched_autogroup_enabled=1, the default) a session is a
# group that shares the CPU with the tests' group as an equal, whatever the nice values of its
# processes: so the group's own nice is set too (/proc/self/autogroup; where there is none,
# nice alone does the job). Without it, the "niced" compiles took half the CPU from the tests.
low=(bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null || true; exec nice -n "$0" "$@"' "$NICE")

start=$SECONDS
declare -A took=() status=()

# background part cmd...: runs cmd in the background, in a session of its own (so that it can be
# ended whole, and a Ctrl-C reaches this script rather than it), its output to $logs/part.log, its
# exit status to $logs/part.status and its time in seconds to $logs/part.time.
background() {
	local part=$1
	shift
	# A background child of a shell without job control is no process group leader, so setsid
	# needs no fork: $! is the new session's id, its process group's too.
	out="$logs/$part" setsid bash -c 't0=$SECONDS rc=0
		"$@" >"$out.log" 2>&1 || rc=$?
		echo "$((SECONDS - t0))" >"$out.time"
		echo "$rc" >"$out.status"' bash "$@" &
	pids[$part]=$!
}

# finish part: waits for a background part and prints its output.
finish() {
	local part=$1
	wait "${pids[$part]}" 2>/dev/null || true
	unset "pids[$part]"
	status[$part]=$(cat "$logs/$part.status" 2>/dev/null || echo 1)
	took[$part]=$(cat "$logs/$part.time" 2>/dev/null || echo "?")
	printf '\n----- %s (%ss, exit %s) -----\n' "$part" "${took[$part]}" "${status[$part]}" >&2
	cat "$logs/$part.log" >&2
}

# foreground part cmd...: runs cmd with its output on the terminal.
foreground() {
	local part=$1 t0=$SECONDS rc=0
	shift
	log "$part: $*"
	"$@" || rc=$?
	took[$part]=$((SECONDS - t0))
	status[$part]=$rc
}

# Every module the parts below need, at normal priority, before any of them starts: a niced part
# holding the module cache's lock on a download held up the unit tests waiting for the same
# module. (Seconds on a fresh machine; nothing when the cache has them.)
"$GO" mod download
(cd tools/dex && "$GO" mod download)
(cd deploy/check && "$GO" mod download)

dex=$(scripts/install-deps.sh --print-dex)
export AUTHPROXY_DEX_BIN="$dex"
# Dex, when it is missing, builds from the start, at the tests' priority (the end-to-end tests wait for it).
dex_built=false
if [[ -x $dex ]]; then
	dex_built=true
else
	background dex scripts/install-deps.sh --dex-only
fi

# Chromium, Redis, nginx from Debian and e2e/oidcprovider's npm packages (quick when present).
scripts/install-deps.sh --no-dex

# Beside everything, niced: the fuzz targets (scripts/fuzz.sh builds its instrumented binaries
# first, then fuzzes) and the deployment checks.
background fuzz "${low[@]}" scripts/fuzz.sh
background deploy-check "${low[@]}" bash -c 'cd deploy/check && "$GO" test -count=1 ./...'

mapfile -t unit < <("$GO" list ./... | grep -v '/e2e$')
if "$dex_built"; then
	# The end-to-end tests from the first second (they are the long pole), the unit packages one
	# at a time beside them (together they take less than half as long).
	background e2e "$GO" test -race -count=1 ./e2e
	foreground unit "$GO" test -race -count=1 -p 1 "${unit[@]}"
	finish e2e
else
	# The unit packages while Dex builds; on a fresh machine the niced parts spend this phase
	# compiling (the fuzzing instrumentation, deploy/check's libraries) and fuzz beside the
	# end-to-end tests.
	foreground unit "$GO" test -race -count=1 "${unit[@]}"
	# Compile the end-to-end tests while Dex may still be building (-list starts nothing).
	"$GO" test -race -count=1 -list '^$' ./e2e >/dev/null || true
	finish dex
	foreground e2e "$GO" test -race -count=1 ./e2e
fi

for part in fuzz deploy-check; do
	finish "$part"
done

printf '\n' >&2
failed=0
for part in dex unit e2e fuzz deploy-check; do
	[[ -n ${status[$part]:-} ]] || continue
	verdict=ok
	if [[ ${status[$part]} != 0 ]]; then
		verdict="FAIL (exit ${status[$part]})"
		failed=1
	fi
	log "$(printf '%-13s %5ss  %s' "$part" "${took[$part]}" "$verdict")"
done
log "$(printf '%-13s %5ss' total "$((SECONDS - start))")"
exit "$failed"
