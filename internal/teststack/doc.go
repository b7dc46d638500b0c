// Package teststack starts the real components that the end-to-end tests (e2e/) and the load
// benchmark (bench/harness) run against: Dex, redis-server, the demo's legacy app and authproxy,
// and any other program (node's oidc-provider, nginx) through the same launcher. Each is a child
// process on a free loopback port, with its output kept in a log file of its own (or handed to
// a writer of the caller's), stopped with SIGTERM and, if need be, SIGKILL.
//
// It is internal test scaffolding: nothing in authproxy's binary imports it.
package teststack
