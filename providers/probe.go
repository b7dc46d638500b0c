package providers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Prober is implemented by providers that can tell, cheaply and without
// changing anything they have loaded, whether the IdP answers now: for a
// caller with several IdPs, which keeps each IdP's sign-ins offered only
// while it is up.
type Prober interface {
	// Probe asks the IdP for its discovery document once; an error wraps
	// ErrUnavailable.
	Probe(ctx context.Context) error
}

// Probe implements Prober: a GET of the discovery document that must
// answer 200. What it returns is read (up to MaxResponseBytes) and
// dropped; the discovery loaded before stays as it is.
func (p *OIDC) Probe(ctx context.Context) error {
	u := strings.TrimSuffix(p.cfg.IssuerURL, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(withOperation(ctx, OpDiscovery), http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s", ErrUnavailable, u, resp.Status)
	}
	return nil
}
