# authproxy's entry points. Each works on a fresh Debian machine: the targets that need Dex,
# Chromium, Redis or nginx install them first (scripts/install-deps.sh, idempotent).
#
#   make build   build bin/authproxy
#   make test    every test with -race, the end-to-end tests included, then every fuzz target for 8s
#   make e2e     only the end-to-end tests (real Dex + Chromium), verbose
#   make demo    Dex + the sample legacy app + authproxy on http://127.0.0.1:4180
#   make fuzz    every fuzz target for FUZZTIME each (default 10s); a crasher lands in <pkg>/testdata/fuzz/
#   make deps    install the test components only
#   make deploy-check  check the Dockerfile, deploy/kubernetes and deploy/compose (deploy/check)
#   make bench   load benchmark on loopback: bare proxy vs authproxy (cookie, Redis), ~4 min (bench/run.sh)
#   make soak    both authproxies under load for SOAK_DURATION (default 10m), memory and errors checked
#   make clean   remove bin/

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go
FUZZTIME ?= 10s
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Where scripts/install-deps.sh keeps Dex; the end-to-end tests read it from AUTHPROXY_DEX_BIN.
DEX_BIN = $(shell scripts/install-deps.sh --print-dex)

.PHONY: build test e2e demo fuzz deps deploy-check bench soak clean

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/authproxy ./cmd/authproxy

test: deps
	AUTHPROXY_DEX_BIN="$(DEX_BIN)" $(GO) test -race -count=1 ./...
	FUZZTIME=8s GO="$(GO)" scripts/fuzz.sh
	$(MAKE) deploy-check

e2e: deps
	AUTHPROXY_DEX_BIN="$(DEX_BIN)" $(GO) test -race -count=1 -v ./e2e/

demo:
	deploy/demo/run.sh

fuzz:
	FUZZTIME="$(FUZZTIME)" GO="$(GO)" scripts/fuzz.sh

deps:
	scripts/install-deps.sh

# The deployment files (Dockerfile, deploy/kubernetes, deploy/compose), checked by the deploy/check module.
deploy-check:
	cd deploy/check && $(GO) test -count=1 ./...

# Load benchmark and soak test (bench/run.sh; BENCH_ROUNDS, BENCH_SECONDS, SOAK_DURATION, … in bench/README.md).
bench:
	bench/run.sh bench

soak:
	bench/run.sh soak

clean:
	rm -rf bin
