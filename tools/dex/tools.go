//go:build tools

// Package tools pins Dex (github.com/dexidp/dex, v2.45.1), the OpenID Connect
// provider that authproxy's demo and end-to-end tests run against.
//
// This directory is its own module so that Dex's large dependency graph never
// enters authproxy's go.mod. Build the binary with:
//
//	go build -C tools/dex -trimpath -o "$BIN/dex" github.com/dexidp/dex/cmd/dex
//
// or let scripts/install-deps.sh do it (it caches the result).
package tools

import _ "github.com/dexidp/dex/cmd/dex"
