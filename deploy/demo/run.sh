#!/usr/bin/env bash
# Runs the local demo: Dex (the identity provider), the sample legacy app, and authproxy in front of it.
#
#   deploy/demo/run.sh      (or: make demo)
#
# then open http://127.0.0.1:4180/ and sign in as alice@example.com / alice. Ctrl-C stops all three.
# Needs the loopback ports 4180 (authproxy), 5556 and 5558 (Dex) and 8080 (legacy app) free.
# Logs go to a fresh directory under $TMPDIR, kept after exit; authproxy's is followed on the terminal.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly CACHE="${AUTHPROXY_CACHE:-$HOME/.cache/authproxy}"
readonly PROXY=127.0.0.1:4180 APP=127.0.0.1:8080 DEX_WEB=127.0.0.1:5556 DEX_TELEMETRY=127.0.0.1:5558

log() { printf 'demo: %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# http_ok reports whether GET http://$1$2 answers 200. Plain bash, so the demo needs no curl.
http_ok() (
	local hostport=$1 path=$2 status
	exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" >&3
	IFS= read -r -t 2 status <&3 || return 1
	[[ $status == HTTP/1.[01]\ 200* ]]
) 2>/dev/null

port_in_use() ( exec 3<>"/dev/tcp/${1%:*}/${1##*:}" ) 2>/dev/null

pids=()
declare -A names=() # pid -> component
tailpid=""
logdir=""

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	trap - EXIT INT TERM
	local pid
	[[ -z $tailpid ]] || kill "$tailpid" 2>/dev/null || true
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for _ in {1..50}; do
		local alive=false
		for pid in "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=true
		done
		"$alive" || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	[[ -z $logdir ]] || log "stopped; logs are in $logdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_ready waits up to 30s for a component to answer 200, failing early if it died.
wait_ready() {
	local name=$1 pid=$2 hostport=$3 path=$4
	for _ in {1..300}; do
		http_ok "$hostport" "$path" && return
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$logdir/$name.log" >&2 || true
			die "$name exited during start-up (log above, full log: $logdir/$name.log)"
		fi
		sleep 0.1
	done
	tail -n 30 "$logdir/$name.log" >&2 || true
	die "$name not ready at http://$hostport$path after 30s (log above)"
}

for addr in "$PROXY" "$APP" "$DEX_WEB" "$DEX_TELEMETRY"; do
	if port_in_use "$addr"; then
		die "$addr is already in use (another demo still running?)"
	fi
done

scripts/install-deps.sh --dex-only
dex="$(scripts/install-deps.sh --print-dex)"

log "building authproxy and the legacy app"
mkdir -p "$CACHE/bin"
go build -o "$CACHE/bin/authproxy" ./cmd/authproxy
go build -o "$CACHE/bin/legacyapp" ./deploy/demo/legacyapp

logdir="$(mktemp -d -t authproxy-demo.XXXXXX)"

"$dex" serve deploy/demo/dex.yaml >"$logdir/dex.log" 2>&1 &
pids+=($!) names[$!]=dex
wait_ready dex "$!" "$DEX_TELEMETRY" /healthz/ready

LEGACYAPP_LISTEN="$APP" "$CACHE/bin/legacyapp" >"$logdir/legacyapp.log" 2>&1 &
pids+=($!) names[$!]=legacyapp
wait_ready legacyapp "$!" "$APP" /api/whoami

cookie_secret="$("$CACHE/bin/authproxy" secret)"
env \
	AUTHPROXY_LISTEN="$PROXY" \
	AUTHPROXY_UPSTREAM="http://$APP" \
	AUTHPROXY_OIDC_ISSUER="http://$DEX_WEB/dex" \
	AUTHPROXY_CLIENT_ID=authproxy-demo \
	AUTHPROXY_CLIENT_SECRET=demo-secret \
	AUTHPROXY_REDIRECT_URL="http://$PROXY/oauth2/callback" \
	AUTHPROXY_COOKIE_SECRET="$cookie_secret" \
	AUTHPROXY_COOKIE_SECURE=false \
	AUTHPROXY_SCOPES="openid email profile groups offline_access" \
	AUTHPROXY_LOG_FORMAT=text \
	"$CACHE/bin/authproxy" >"$logdir/authproxy.log" 2>&1 &
pids+=($!) names[$!]=authproxy
wait_ready authproxy "$!" "$PROXY" /readyz

cat >&2 <<EOF

  authproxy demo is running: open http://$PROXY/

  Sign in as   alice@example.com / alice   (groups admins, staff)
               bob@example.com   / bob     (group staff)
               carol@example.com / carol   (no groups)

  Also try     http://$PROXY/api/whoami   http://$PROXY/events   http://$PROXY/oauth2/userinfo
  Logs         $logdir/{authproxy,dex,legacyapp}.log
  Ctrl-C stops Dex, the legacy app and authproxy.

EOF

tail -n +1 -f "$logdir/authproxy.log" &
tailpid=$!

# Run until Ctrl-C, or until one of the three exits on its own.
exited=""
set +e
wait -n -p exited "${pids[@]}"
status=$?
set -e
log "${names[$exited]:-a component} exited on its own (status $status); stopping the rest"
exit 1
