// Package providers speaks to identity providers: it builds the authorization
// URL, exchanges the code for tokens, verifies the ID token and refreshes.
//
// The OIDC provider (NewOIDC) covers any OpenID Connect provider found by
// discovery; provider quirks are small additions to it.
package providers

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable is returned while the identity provider's discovery document
// has not been loaded yet (the IdP is down or slow).
var ErrUnavailable = errors.New("providers: identity provider unavailable")

// Provider is an identity provider as authproxy uses it.
type Provider interface {
	// AuthCodeURL returns the URL to send the browser to for sign-in,
	// carrying state, nonce and the PKCE S256 challenge of verifier.
	AuthCodeURL(state, nonce, verifier string) (string, error)
	// Exchange trades an authorization code for tokens, sending the PKCE
	// verifier, and verifies the ID token, including that its nonce is nonce.
	Exchange(ctx context.Context, code, verifier, nonce string) (*Identity, error)
	// Refresh uses a refresh token to obtain fresh tokens and identity.
	Refresh(ctx context.Context, refreshToken string) (*Identity, error)
	// Ready returns nil once the provider can serve sign-ins, or an error
	// wrapping ErrUnavailable that says why not.
	Ready() error
}

// Identity is the verified result of a sign-in or refresh.
type Identity struct {
	// User is the value of the configured user claim (sub by default).
	User              string
	Subject           string
	Email             string
	EmailVerified     bool
	PreferredUsername string
	Groups            []string
	// SID is the IdP session id (sid claim), empty when the IdP sends none.
	SID string
	// Extra holds the claims named in OIDCConfig.ExtraClaims that the
	// token had, as strings.
	Extra map[string]string

	IDToken      string
	AccessToken  string
	RefreshToken string
	// Expiry is the access token's expiry; zero when the IdP gave none.
	Expiry time.Time
}
