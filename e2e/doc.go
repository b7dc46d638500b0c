// Package e2e holds authproxy's end-to-end tests: headless Chromium signs in through the real
// authproxy binary against a real Dex and a real node oidc-provider (e2e/oidcprovider), in front of
// the demo legacy app (deploy/demo/legacyapp), with real redis-server (ticket store, replicas,
// faults), redis-sentinel (failover under traffic) and real nginx (forward-auth with the snippets
// in deploy/nginx).
//
// The tests need Dex (built by scripts/install-deps.sh, or named by AUTHPROXY_DEX_BIN),
// /usr/bin/chromium, redis-server, redis-sentinel, nginx, node with e2e/oidcprovider/node_modules (npm ci). Without
// them they skip, except under CI=true, where they fail. `go test -short` skips them. On failure the
// logs of every process a test started are printed. The processes are started, waited for and
// stopped by internal/teststack, which the bench (bench/harness) uses too.
//
// The package has no non-test code; this file only documents it.
package e2e
