package authproxy

import (
	"context"
	"fmt"
	"io"

	"github.com/authproxy/authproxy/providers"
)

// Check reaches the identity provider's discovery document for a loaded
// configuration and writes what it found to w. It returns the first problem.
func Check(ctx context.Context, cfg *Config, w io.Writer) error {
	fmt.Fprintf(w, "configuration: ok (%d variables)\n", len(variables))
	fmt.Fprintf(w, "upstream:      %s\n", cfg.Upstream.Redacted())
	fmt.Fprintf(w, "redirect URL:  %s\n", cfg.RedirectURL)
	fmt.Fprintf(w, "session store: %s, cookie %s (secure=%t, samesite=%s), ttl %s\n",
		cfg.SessionStore, cfg.CookieName, cfg.CookieSecure, sameSiteName(cfg.CookieSameSite), cfg.SessionTTL)
	p := providers.NewOIDC(providers.OIDCConfig{IssuerURL: cfg.Issuer.String(), ClientID: cfg.ClientID})
	if err := p.Discover(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "issuer:        %s (discovery ok", cfg.Issuer)
	if ep := p.EndSessionEndpoint(); ep != "" {
		fmt.Fprintf(w, ", end_session_endpoint %s", ep)
	}
	fmt.Fprintln(w, ")")
	if cfg.RedirectURL.Scheme == "https" && !cfg.CookieSecure {
		return fmt.Errorf("AUTHPROXY_COOKIE_SECURE=false with an https redirect URL: cookies would also be sent over plain http")
	}
	return nil
}
