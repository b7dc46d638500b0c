package providers

import (
	"slices"

	"golang.org/x/oauth2"
)

// Reconfigurer is implemented by providers that take new client
// credentials and claim selection while they serve, for a configuration
// reload. Every kind implements it.
type Reconfigurer interface {
	// Reconfigure applies cfg's client credentials (ClientSecret),
	// ExtraClaims and GroupsRequired to every call that starts afterwards;
	// a call under way finishes with what it started with. Every other
	// field of cfg is ignored: changing one needs a new provider. It is
	// safe to call while the provider serves. An error leaves the provider
	// as it was.
	Reconfigure(cfg OIDCConfig) error
}

// live is the part of an OIDCConfig that Reconfigure replaces, read once
// per call. It never changes once stored.
type live struct {
	clientSecret   string
	extraClaims    []string
	groupsRequired bool
}

func newLive(cfg OIDCConfig) *live {
	return &live{clientSecret: cfg.ClientSecret, extraClaims: slices.Clone(cfg.ExtraClaims), groupsRequired: cfg.GroupsRequired}
}

// Reconfigure implements Reconfigurer.
func (p *OIDC) Reconfigure(cfg OIDCConfig) error {
	p.live.Store(newLive(cfg))
	return nil
}

// Reconfigure implements Reconfigurer.
func (g *GitHub) Reconfigure(cfg OIDCConfig) error {
	g.live.Store(newLive(cfg))
	return nil
}

// oauthFor returns discovery's OAuth2 configuration with the client
// credentials now in effect, for one call to the token endpoint.
func (d *discovered) oauthFor(l *live) *oauth2.Config {
	c := d.oauth
	c.ClientSecret = l.clientSecret
	c.Endpoint.AuthStyle = d.authStyle(l.clientSecret)
	return &c
}

// authStyle is how a token request sends the client's credentials: with a
// client assertion or over mutual TLS, client_id in the form (beside the
// assertion, or alone: RFC 8705 section 2); with a secret, as
// token_endpoint_auth_methods_supported allows (authStyle).
func (d *discovered) authStyle(secret string) oauth2.AuthStyle {
	if d.auth.method != "" {
		return oauth2.AuthStyleInParams
	}
	return authStyle(secret, d.authMethods)
}
