package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoGRPC checks that the binary links no gRPC: it costs about 2 MiB of
// resident memory at idle, and authproxy exports traces over OTLP/HTTP
// only (see internal/otlphttp). OpenTelemetry's otlptracehttp links it.
func TestNoGRPC(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found to list the dependencies: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for pkg := range strings.Lines(string(out)) {
		pkg = strings.TrimSpace(pkg)
		if pkg == "google.golang.org/grpc" || strings.HasPrefix(pkg, "google.golang.org/grpc/") || strings.HasPrefix(pkg, "github.com/grpc-ecosystem/") {
			t.Errorf("authproxy links %s", pkg)
		}
	}
}
