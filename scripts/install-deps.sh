#!/usr/bin/env bash
# Installs what authproxy's demo and end-to-end tests run against, on Debian.
# Idempotent: it installs only what is missing, so it is cheap to run again.
#
#   scripts/install-deps.sh              Chromium + chromedriver, Redis, nginx (apt), Dex (built from source), e2e/oidcprovider (npm ci)
#   scripts/install-deps.sh --dex-only   only Dex (what deploy/demo/run.sh needs)
#   scripts/install-deps.sh --no-dex     all but Dex (scripts/test.sh builds Dex beside the unit tests)
#   scripts/install-deps.sh --print-dex  print the path of the Dex binary; install nothing
#
# Dex is built from the module pinned in tools/dex (Dex v2.45.1, ~3 minutes cold) into
#   ${AUTHPROXY_CACHE:-$HOME/.cache/authproxy}/bin/dex-v2.45.1
# and reused from there. Delete the file to force a rebuild.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The Dex release and the pseudo-version tools/dex/go.mod pins for it. Bump both together:
# the binary's file name carries the release, so a bump never reuses a stale binary.
readonly DEX_VERSION=v2.45.1
readonly DEX_MODULE_VERSION=v0.0.0-20260303133905-11d2eeb52b42

readonly CACHE="${AUTHPROXY_CACHE:-$HOME/.cache/authproxy}"
readonly DEX_BIN="$CACHE/bin/dex-$DEX_VERSION"

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit "${1:-0}"
}

# have reports whether a command exists, also looking in the sbin directories
# that a non-root user's PATH often lacks (nginx lives in /usr/sbin).
have() {
	command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}

# install_apt installs the Debian packages whose commands are missing.
install_apt() {
	local -a missing=()
	have chromium || missing+=(chromium)
	have chromedriver || missing+=(chromium-driver)
	have redis-server || missing+=(redis-server)
	have redis-sentinel || missing+=(redis-sentinel)
	have nginx || missing+=(nginx)
	if ((${#missing[@]} == 0)); then
		log "chromium, chromedriver, redis-server, nginx: already installed"
		return
	fi

	have apt-get || die "missing ${missing[*]} and no apt-get: install them by hand"
	local -a sudo=()
	if ((EUID != 0)); then
		have sudo || die "missing ${missing[*]}: run as root or install sudo"
		sudo=(sudo)
	fi

	log "installing ${missing[*]} with apt-get (about a minute)"
	local aptlog
	aptlog="$(mktemp -t authproxy-apt.XXXXXX)"
	if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		die "apt-get failed (output above)"
	fi
	rm -f "$aptlog"
	log "installed ${missing[*]}"
}

# install_dex builds Dex from tools/dex unless the cached binary is already there.
install_dex() {
	if [[ -x "$DEX_BIN" ]]; then
		log "dex $DEX_VERSION: $DEX_BIN"
		return
	fi
	grep -q "github.com/dexidp/dex $DEX_MODULE_VERSION" tools/dex/go.mod ||
		die "tools/dex/go.mod does not pin github.com/dexidp/dex $DEX_MODULE_VERSION; update DEX_VERSION and DEX_MODULE_VERSION in $0 with it"
	have go || die "go is not installed; Dex is built from source"

	log "building dex $DEX_VERSION (about 1.5 minutes the first time on 2 idle cores)"
	mkdir -p "$(dirname "$DEX_BIN")"
	# Build to a temporary name first so an interrupted build never leaves a broken binary behind.
	local tmp="$DEX_BIN.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	# CGO_ENABLED=0: the tests run Dex with its memory storage, so its sqlite3 storage (cgo, the
	# sqlite amalgamation through gcc: a third of a cold build's CPU) is left out.
	CGO_ENABLED=0 go build -C tools/dex -trimpath -ldflags "-s -w -X main.version=$DEX_VERSION" -o "$tmp" github.com/dexidp/dex/cmd/dex
	mv -f "$tmp" "$DEX_BIN"
	trap - EXIT
	log "dex $DEX_VERSION: $DEX_BIN"
}

# install_oidcprovider installs e2e/oidcprovider's locked npm packages (node oidc-provider, the
# end-to-end tests' second provider) with `npm ci` when node_modules is missing or older than
# package.json or package-lock.json. It needs Node.js 20.12+ (Debian 12's own nodejs, 18, is too
# old): without it, it warns, and fails under CI=true, as the tests then do.
install_oidcprovider() {
	local dir=e2e/oidcprovider stamp=e2e/oidcprovider/node_modules/.package-lock.json
	if ! have node || ! have npm || ! node -e 'process.exit(typeof require("node:crypto").hash === "function" ? 0 : 1)'; then
		local msg="e2e/oidcprovider needs Node.js 20.12+ and npm (found: $(node --version 2>/dev/null || echo no node)); install them, e.g. from NodeSource"
		[[ "${CI:-}" != true ]] || die "$msg"
		log "warning: $msg; the end-to-end tests against oidc-provider will skip"
		return
	fi
	if [[ -f "$stamp" && ! "$dir/package-lock.json" -nt "$stamp" && ! "$dir/package.json" -nt "$stamp" ]]; then
		log "oidc-provider: $dir/node_modules is up to date"
		return
	fi
	log "installing $dir's npm packages (npm ci, a few seconds)"
	local npmlog
	npmlog="$(mktemp -t authproxy-npm.XXXXXX)"
	if ! npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >"$npmlog" 2>&1; then
		cat "$npmlog" >&2
		rm -f "$npmlog"
		die "npm ci in $dir failed (output above)"
	fi
	rm -f "$npmlog"
	log "oidc-provider: installed in $dir/node_modules"
}

main() {
	local apt=true dex=true
	case "${1:-}" in
	"") ;;
	--dex-only) apt=false ;;
	--no-dex) dex=false ;;
	--print-dex)
		printf '%s\n' "$DEX_BIN"
		return
		;;
	-h | --help) usage 0 ;;
	*)
		log "unknown option: $1"
		usage 2
		;;
	esac
	(($# <= 1)) || usage 2

	if "$apt"; then
		install_apt
	fi
	if "$dex"; then
		install_dex
	fi
	if "$apt"; then
		install_oidcprovider
	fi
}

main "$@"
