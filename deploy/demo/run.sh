#!/usr/bin/env bash
# Runs the local demo: Dex (the identity provider), the sample legacy app, and authproxy in front of it,
# with the demo's access rules (deploy/demo/policy.yaml).
#
#   deploy/demo/run.sh                 (or: make demo)                sessions in the cookie
#   STORE=redis deploy/demo/run.sh     (or: make demo STORE=redis)    sessions in a Redis of its own
#
# then open http://127.0.0.1:4180/ and sign in as alice@example.com / alice. Ctrl-C stops everything
# and exits 0. Needs the loopback ports 4180 (authproxy), 5556 and 5558 (Dex), 8080 (legacy app) and,
# with STORE=redis, 6381 (redis-server) free.
# Logs go to a fresh directory under $TMPDIR, kept after exit; authproxy's is followed on the terminal.
set -euo pipefail

# On a terminal, the demo runs as a job of its own process group (job control), so that Ctrl-C
# reaches only the demo and not `make`, which would otherwise report the interrupt as an error.
if [[ -t 0 && -z ${AUTHPROXY_DEMO_JOB:-} ]]; then
	set -m
	AUTHPROXY_DEMO_JOB=1 "${BASH_SOURCE[0]}" "$@"
	exit
fi

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly CACHE="${AUTHPROXY_CACHE:-$HOME/.cache/authproxy}"
readonly PROXY=127.0.0.1:4180 APP=127.0.0.1:8080 DEX_WEB=127.0.0.1:5556 DEX_TELEMETRY=127.0.0.1:5558 REDIS=127.0.0.1:6381
readonly STORE="${STORE:-cookie}"

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

# redis_ok reports whether the redis-server at $1 answers PING.
redis_ok() (
	local reply
	exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 2 reply <&3 || return 1
	[[ $reply == +PONG* ]]
) 2>/dev/null

port_in_use() ( exec 3<>"/dev/tcp/${1%:*}/${1##*:}" ) 2>/dev/null

pids=()
declare -A names=() # pid -> component
tailpid=""
logdir=""

# stop_all ends the components: the log follower first, so that their shutdown lines stay in the
# log files, then each component with SIGTERM, SIGKILL after 5s.
stop_all() {
	local pid
	if [[ -n $tailpid ]]; then
		kill "$tailpid" 2>/dev/null || true
		wait "$tailpid" 2>/dev/null || true
		tailpid=""
	fi
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
}

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	trap - EXIT INT TERM
	stop_all
	[[ -z $logdir ]] || log "stopped; logs are in $logdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn name cmd...: starts a component in a session of its own, so that a Ctrl-C meant for the
# demo does not reach it (this script stops it), with its output in $logdir/name.log. A background
# child of a shell without job control is no process group leader, so setsid execs without forking
# and $! is the component itself.
spawn() {
	local name=$1
	shift
	setsid "$@" >"$logdir/$name.log" 2>&1 </dev/null &
	pids+=($!)
	names[$!]=$name
}

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

case "$STORE" in
cookie | redis) ;;
*) die "STORE=$STORE: want cookie or redis" ;;
esac
addrs=("$PROXY" "$APP" "$DEX_WEB" "$DEX_TELEMETRY")
redis_server=""
if [[ $STORE == redis ]]; then
	addrs+=("$REDIS")
	redis_server=$(command -v redis-server || true)
	[[ -n $redis_server ]] || die "STORE=redis needs redis-server: run scripts/install-deps.sh (or apt-get install redis-server)"
fi
for addr in "${addrs[@]}"; do
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

spawn dex "$dex" serve deploy/demo/dex.yaml
wait_ready dex "$!" "$DEX_TELEMETRY" /healthz/ready

spawn legacyapp env LEGACYAPP_LISTEN="$APP" "$CACHE/bin/legacyapp"
wait_ready legacyapp "$!" "$APP" /api/whoami

store_env=(AUTHPROXY_SESSION_STORE=cookie)
store_line="cookie (the whole session, sealed, in the browser's cookie)"
if [[ $STORE == redis ]]; then
	spawn redis "$redis_server" --port "${REDIS##*:}" --bind 127.0.0.1 --save "" --appendonly no --dir "$logdir"
	for _ in {1..100}; do
		redis_ok "$REDIS" && break
		if ! kill -0 "$!" 2>/dev/null; then
			tail -n 30 "$logdir/redis.log" >&2 || true
			die "redis-server exited during start-up (log above)"
		fi
		sleep 0.1
	done
	redis_ok "$REDIS" || die "redis-server not answering PING at $REDIS after 10s"
	store_env=(AUTHPROXY_SESSION_STORE=redis AUTHPROXY_REDIS_URL="redis://$REDIS/0")
	store_line="redis (redis-server on $REDIS; the cookie holds only a ticket)"
fi

cookie_secret="$("$CACHE/bin/authproxy" secret)"
spawn authproxy env \
	AUTHPROXY_LISTEN="$PROXY" \
	AUTHPROXY_UPSTREAM="http://$APP" \
	AUTHPROXY_OIDC_ISSUER="http://$DEX_WEB/dex" \
	AUTHPROXY_CLIENT_ID=authproxy-demo \
	AUTHPROXY_CLIENT_SECRET=demo-secret \
	AUTHPROXY_REDIRECT_URL="http://$PROXY/oauth2/callback" \
	AUTHPROXY_COOKIE_SECRET="$cookie_secret" \
	AUTHPROXY_COOKIE_SECURE=false \
	AUTHPROXY_SCOPES="openid email profile groups offline_access" \
	AUTHPROXY_POLICY_FILE="$PWD/deploy/demo/policy.yaml" \
	AUTHPROXY_LOG_FORMAT=text \
	"${store_env[@]}" \
	"$CACHE/bin/authproxy"
wait_ready authproxy "$!" "$PROXY" /readyz

cat >&2 <<MSG

  authproxy demo is running: open http://$PROXY/

  Sign in as   alice@example.com / alice   (groups admins, staff)
               bob@example.com   / bob     (group staff)
               carol@example.com / carol   (no groups)

  Policy       deploy/demo/policy.yaml: http://$PROXY/admin/ for the group admins only (carol gets
               the 403 page), http://$PROXY/public/ open without sign-in, the rest for anyone signed in
  Sessions     $store_line
  Also try     http://$PROXY/api/whoami   http://$PROXY/events   http://$PROXY/oauth2/userinfo
               http://$PROXY/oauth2/sign_out (ends on the signed-out page)
  Logs         $logdir/
  Ctrl-C stops everything.

MSG

setsid tail -n +1 -f "$logdir/authproxy.log" &
tailpid=$!

# Run until Ctrl-C (or SIGTERM), or until a component exits on its own.
stopping=""
trap 'stopping=interrupted' INT
trap 'stopping=terminated' TERM
while :; do
	exited=""
	set +e
	wait -n -p exited "${pids[@]}"
	status=$?
	set -e
	if [[ -n $stopping ]]; then
		trap - EXIT INT TERM
		stop_all
		stopped=""
		for pid in "${pids[@]}"; do
			stopped+="${stopped:+, }${names[$pid]}"
		done
		log "$stopping: stopped $stopped; logs are in $logdir"
		exit 0
	fi
	if [[ -n $exited ]]; then
		log "${names[$exited]:-a component} exited on its own (status $status); stopping the rest"
		exit 1
	fi
done
