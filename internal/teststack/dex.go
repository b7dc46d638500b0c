package teststack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The loopback addresses deploy/demo/dex.yaml serves on and redirects to; DexConfig swaps them.
const (
	demoDexWeb       = "127.0.0.1:5556"
	demoDexTelemetry = "127.0.0.1:5558"
	demoRedirectLine = "      - http://127.0.0.1:4180/oauth2/callback\n"
)

// DexConfig is demo, the demo's Dex configuration (deploy/demo/dex.yaml), with Dex serving on web
// and its telemetry (/healthz/ready, /metrics) on telemetry, and the demo client's one redirect
// URI replaced by redirectURIs, so that a test or benchmark has exactly the demo's users and
// client on ports of its own.
func DexConfig(demo []byte, web, telemetry string, redirectURIs []string) ([]byte, error) {
	var uris strings.Builder
	for _, u := range redirectURIs {
		fmt.Fprintf(&uris, "      - %s\n", u)
	}
	for _, swap := range []struct{ demo, ours string }{
		{demoRedirectLine, uris.String()},
		{demoDexWeb, web},
		{demoDexTelemetry, telemetry},
	} {
		if !bytes.Contains(demo, []byte(swap.demo)) {
			return nil, fmt.Errorf("teststack: deploy/demo/dex.yaml no longer contains %q; update internal/teststack with it", strings.TrimSpace(swap.demo))
		}
		demo = bytes.ReplaceAll(demo, []byte(swap.demo), []byte(swap.ours))
	}
	return demo, nil
}

// Dex is a running Dex.
type Dex struct {
	// Issuer is its issuer URL, http://127.0.0.1:port/dex.
	Issuer string
	// Telemetry is the origin of /healthz/ready and /metrics, http://127.0.0.1:port.
	Telemetry string
	*Proc
}

// StartDex writes config (see DexConfig) to s.Dir/name.yaml, starts the Dex binary bin with it as
// name and waits until it is ready. web and telemetry are the addresses config serves on.
func StartDex(ctx context.Context, s *Set, name, bin string, config []byte, web, telemetry string) (*Dex, error) {
	path := filepath.Join(s.Dir, name+".yaml")
	if err := os.WriteFile(path, config, 0o600); err != nil {
		return nil, fmt.Errorf("teststack: %w", err)
	}
	p, err := s.Start(name, nil, bin, "serve", path)
	if err != nil {
		return nil, err
	}
	d := &Dex{Issuer: "http://" + web + "/dex", Telemetry: "http://" + telemetry, Proc: p}
	if err := p.WaitHTTP(ctx, d.Telemetry+"/healthz/ready"); err != nil {
		return d, err
	}
	return d, nil
}
