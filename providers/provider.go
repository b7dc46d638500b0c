// Package providers speaks to identity providers: it builds the authorization
// URL, exchanges the code for tokens, verifies the ID token and refreshes.
//
// The OIDC provider (NewOIDC) covers any OpenID Connect provider found by
// discovery; provider quirks (Keycloak roles, Entra tenants and groups,
// Google's hosted domain, GitLab's groups) are Hooks added to it, chosen by
// New. GitHub, which has no OpenID Connect, is a Provider of its own.
package providers

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrUnavailable wraps every failure for which the identity provider itself
// is at fault: its discovery document has not been loaded yet, it cannot be
// reached, it did not answer in time (ErrTimeout) or it answered with
// something unusable (ErrBadResponse). Callers keep what they have and try
// again later; they never blame the user for it.
var ErrUnavailable = errors.New("providers: identity provider unavailable")

// ErrTimeout wraps ErrUnavailable for an IdP that did not answer within the
// HTTP client's timeout.
var ErrTimeout = fmt.Errorf("%w: no answer in time", ErrUnavailable)

// ErrBadResponse wraps ErrUnavailable for an IdP that answered, but with
// something that is not an answer: an unreadable body, or one larger than
// MaxResponseBytes. (A server error status is plain ErrUnavailable.)
var ErrBadResponse = fmt.Errorf("%w: unusable answer", ErrUnavailable)

// ErrClientRefused wraps a token endpoint's invalid_client or
// unauthorized_client answer: the IdP works, the user did nothing wrong,
// but it refused authproxy's own client authentication (client id, secret,
// key or certificate). Only the operator can fix it; the message names the
// variables to check. It wraps neither ErrRejected nor ErrUnavailable: a
// refresh it stops does not end the session.
var ErrClientRefused = errors.New("providers: client authentication refused by the IdP")

// ErrDenied wraps ErrRejected for a sign-in whose token is genuine but whose
// user a provider rule refuses: a Google account outside the hosted domain,
// an Entra tenant not allowed, a GitHub user outside the organization or
// teams. Callers that do not branch on it treat it as ErrRejected.
var ErrDenied = fmt.Errorf("%w: user not allowed by the provider's rules", ErrRejected)

// ConfigError is a problem with one field of the configuration New (or
// NewGitHub) was given. Field names the field, dotted as in Go source:
// "Kind", "IssuerURL", "Entra.Tenants", "Entra.GraphURL", "GitHub.URL",
// "GitHub.Teams", "Keycloak.Roles", and NewClientAuth's "ClientAuth.ClientID",
// "ClientAuth.PrivateKeyFile", "ClientAuth.TLSCertFile",
// "ClientAuth.TLSKeyFile"; callers map it to their own names for
// it (authproxy, to the variable).
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return "providers: " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// configError returns a ConfigError for field.
func configError(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

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

// Discoverer is implemented by the providers that must load a discovery
// document before they can serve sign-ins: every OpenID Connect kind, not
// github.
type Discoverer interface {
	// Discover fetches the discovery document once.
	Discover(ctx context.Context) error
	// DiscoverWithRetry calls Discover until it succeeds or ctx ends.
	DiscoverWithRetry(ctx context.Context)
}

// Checker is implemented by providers that can show, for `authproxy check`,
// what they are configured to do and whether the IdP answers.
type Checker interface {
	// Check reaches the IdP once and returns a one-line description of the
	// provider, or an error naming the variable to fix.
	Check(ctx context.Context) (string, error)
}
