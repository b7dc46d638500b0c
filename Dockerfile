# syntax=docker/dockerfile:1
#
# authproxy's container image: one static binary on distroless, running as an unprivileged user.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t authproxy .
#   docker run --rm authproxy version
#
# deploy/check (make deploy-check) reads the `go build` instruction below, runs it on the host and checks that the
# result is a static binary that reports the version it was given. Keep the build on one RUN instruction.

# The build runs on the builder's own platform and cross-compiles (pure Go, so it is cheap): a multi-platform build
# (docker buildx build --platform linux/amd64,linux/arm64) needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26-alpine3.22 AS build
WORKDIR /src

# Modules first, in a layer of their own: it is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/authproxy ./cmd/authproxy

# distroless/static rather than scratch: it already holds what a static Go binary needs at run time and scratch lacks,
# and its maintainers rebuild it when any of those change: CA certificates (authproxy calls the IdP, and perhaps the
# upstream, over https), /etc/passwd and /etc/group with the nonroot user 65532 (so the process has a name and a home),
# and tzdata. With scratch we would copy and keep each of those up to date ourselves. It has no shell and no package
# manager, so there is nothing in the image for an intruder to use. Debian 13 because Debian 12 leaves regular
# security support in 2026 (Dex's own image made the same move).
FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=build /out/authproxy /authproxy
USER 65532:65532
EXPOSE 4180
# No HEALTHCHECK: distroless has no shell, curl or wget to run one, and authproxy has no probe subcommand.
# Orchestrators probe over HTTP instead: GET /healthz (liveness) and GET /readyz (readiness) on port 4180, as
# deploy/kubernetes does.
ENTRYPOINT ["/authproxy"]
