# syntax=docker/dockerfile:1
#
# The demo's sample legacy app (deploy/demo/legacyapp), for the compose files here. Build context: the repository
# root. The app uses only the standard library, so no modules are downloaded.
FROM --platform=$BUILDPLATFORM golang:1.26-alpine3.22 AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY deploy/demo/legacyapp ./deploy/demo/legacyapp
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/legacyapp ./deploy/demo/legacyapp

FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=build /out/legacyapp /legacyapp
USER 65532:65532
# Listens on LEGACYAPP_LISTEN, default 127.0.0.1:8080: reachable only from its own network namespace.
ENTRYPOINT ["/legacyapp"]
