# authproxy's entry points. Each works on a fresh Debian machine: the targets that need Dex,
# Chromium, Redis or nginx install them first (scripts/install-deps.sh, idempotent).
#
#   make build   build bin/authproxy
#   make check   the inner loop: go vet and the unit tests (no -race, no end-to-end tests, no installs, no fuzzing)
#   make test    what CI runs (scripts/test.sh): every test with -race, the end-to-end tests included, every fuzz
#                target for 8s and the deployment checks, side by side where two cores allow
#   make e2e     only the end-to-end tests (real Dex + Chromium), verbose
#   make demo    Dex + the sample legacy app + authproxy on http://127.0.0.1:4180 (STORE=redis: sessions in Redis)
#   make fuzz    every fuzz target for FUZZTIME each (default 10s), two at a time; a crasher lands in <pkg>/testdata/fuzz/
#   make deps    install the test components only
#   make deploy-check  check the Dockerfile, deploy/kubernetes and deploy/compose (deploy/check)
#   make bench   load benchmark on loopback: bare proxy vs authproxy (cookie, Redis), ~4 min (bench/run.sh)
#   make soak    both authproxies under load for SOAK_DURATION (default 10m), memory and errors checked
#   make clean   remove bin/

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go
FUZZTIME ?= 10s
STORE ?= cookie
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Where scripts/install-deps.sh keeps Dex; the end-to-end tests read it from AUTHPROXY_DEX_BIN.
DEX_BIN = $(shell scripts/install-deps.sh --print-dex)

.PHONY: build check test e2e demo fuzz deps deploy-check bench soak clean

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/authproxy ./cmd/authproxy

# Every package but e2e (which -short would skip anyway): nothing to install, nothing to start.
check:
	$(GO) vet ./...
	$(GO) test -short $$($(GO) list ./... | grep -v '/e2e$$')

# Installs what is missing itself (scripts/install-deps.sh), building Dex beside the unit tests.
test:
	FUZZTIME=8s GO="$(GO)" scripts/test.sh

e2e: deps
	AUTHPROXY_DEX_BIN="$(DEX_BIN)" $(GO) test -race -count=1 -v ./e2e/

# STORE=redis keeps the sessions in a redis-server of the demo's own.
demo:
	STORE="$(STORE)" deploy/demo/run.sh

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
