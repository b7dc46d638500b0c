#!/usr/bin/env bash
# authproxy's load benchmark and soak test, on loopback only. Each installs what it needs
# (wrk, hey, redis-server, Dex), builds authproxy and bench/harness, and runs the harness.
#
#   bench/run.sh bench   (make bench)   ~4 minutes; table on stdout, raw figures in bench/results/latest.txt
#   bench/run.sh soak    (make soak)    SOAK_DURATION (10m); summary in bench/results/soak-latest.txt
#
# Variables (defaults in brackets):
#   BENCH_ROUNDS [5]    interleaved rounds (bare proxy, authproxy cookie, authproxy redis, …)
#   BENCH_SECONDS [10]  seconds of one wrk run
#   BENCH_THREADS [2]   wrk threads       BENCH_CONNS [32]  wrk connections
#   BENCH_USERS [10000] distinct signed-in users minted for the many-users phase and the soak
#   BENCH_SIGNINS [20]  sequential Dex sign-ins timed per authproxy
#   SOAK_DURATION [10m] SOAK_INTERVAL [30s] SOAK_CONNS [16]  SOAK_MEM_TOLERANCE [0.10]
#   BENCH_KEEP=1        keep the working directory (configurations, logs)
#   BENCH_AUTHPROXY     an authproxy binary to measure instead of building ./cmd/authproxy
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly CACHE="${AUTHPROXY_CACHE:-$HOME/.cache/authproxy}"
readonly HEY_VERSION=v0.1.5

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

mode="${1:-bench}"
case "$mode" in
bench | soak) ;;
*) die "usage: bench/run.sh bench|soak" ;;
esac

have() { command -v "$1" >/dev/null 2>&1; }

# apt_install installs Debian packages (as root, or with sudo).
apt_install() {
	have apt-get || die "missing $*: install it by hand (no apt-get)"
	local -a sudo=()
	if ((EUID != 0)); then
		have sudo || die "missing $*: run as root or install sudo"
		sudo=(sudo)
	fi
	log "installing $* with apt-get"
	local aptlog
	aptlog="$(mktemp -t authproxy-apt.XXXXXX)"
	if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		die "apt-get failed (output above)"
	fi
	rm -f "$aptlog"
}

# wrk --version exits 1, so only its presence is tested.
missing=()
have wrk || missing+=(wrk)
have redis-server || missing+=(redis-server)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

# wrk2 is not in Debian; hey's -q gives the rate-limited runs.
hey="$CACHE/bin/hey-$HEY_VERSION"
if [[ ! -x "$hey" ]]; then
	log "installing hey $HEY_VERSION (go install)"
	mkdir -p "$CACHE/bin"
	tmp="$(mktemp -d -t authproxy-hey.XXXXXX)"
	GOBIN="$tmp" go install "github.com/rakyll/hey@$HEY_VERSION"
	mv -f "$tmp/hey" "$hey"
	rm -rf "$tmp"
fi

scripts/install-deps.sh --dex-only
dex="$(scripts/install-deps.sh --print-dex)"

work="$(mktemp -d -t authproxy-bench.XXXXXX)"
if [[ "${BENCH_KEEP:-}" == 1 ]]; then
	trap 'log "kept $work"' EXIT
else
	trap 'rm -rf "$work"' EXIT
fi

authproxy="${BENCH_AUTHPROXY:-}"
if [[ -z "$authproxy" ]]; then
	log "building authproxy as the Dockerfile does (static, no symbol table)"
	version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$work/authproxy" ./cmd/authproxy
	authproxy="$work/authproxy"
fi
[[ -x "$authproxy" ]] || die "BENCH_AUTHPROXY=$authproxy is not an executable"
authproxy="$(realpath "$authproxy")" # the harness starts it from another directory
log "building the harness (the bare proxy is built the same way as authproxy)"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/harness" ./bench/harness

args=(
	-authproxy "$authproxy" -dex "$dex" -redis-server "$(command -v redis-server)"
	-wrk "$(command -v wrk)" -hey "$hey" -dex-config deploy/demo/dex.yaml
	-workdir "$work/run"
	-rounds "${BENCH_ROUNDS:-5}" -seconds "${BENCH_SECONDS:-10}s"
	-threads "${BENCH_THREADS:-2}" -conns "${BENCH_CONNS:-32}"
	-users "${BENCH_USERS:-10000}" -signins "${BENCH_SIGNINS:-20}"
	-soak-duration "${SOAK_DURATION:-10m}" -soak-interval "${SOAK_INTERVAL:-30s}"
	-soak-conns "${SOAK_CONNS:-16}" -soak-mem-tolerance "${SOAK_MEM_TOLERANCE:-0.10}"
)
[[ "${BENCH_KEEP:-}" != 1 ]] || args+=(-keep)
"$work/harness" "$mode" "${args[@]}"
