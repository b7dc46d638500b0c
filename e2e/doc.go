// Package e2e holds authproxy's end-to-end tests: headless Chromium signs in through the real
// authproxy binary against a real Dex, in front of the demo legacy app (deploy/demo/legacyapp).
//
// The tests need Dex (built by scripts/install-deps.sh, or named by AUTHPROXY_DEX_BIN) and
// /usr/bin/chromium. Without them they skip, except under CI=true, where they fail. `go test -short`
// skips them. On failure the logs of Dex, the legacy app and authproxy are printed.
//
// The package has no non-test code; this file only documents it.
package e2e
