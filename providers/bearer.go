package providers

import (
	"context"
	"fmt"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
)

// BearerVerifier is implemented by providers that can authenticate API
// clients by a JWT access token the IdP issued.
type BearerVerifier interface {
	// VerifyBearer checks a JWT's signature with the IdP's keys, its issuer
	// and expiry, and that its audience includes one of audiences, and
	// returns the identity its claims describe. Every failure wraps
	// ErrRejected (or ErrUnavailable before discovery).
	VerifyBearer(ctx context.Context, raw string, audiences []string) (*Identity, error)
}

// VerifyBearer implements BearerVerifier.
func (p *OIDC) VerifyBearer(ctx context.Context, raw string, audiences []string) (*Identity, error) {
	d, err := p.loaded()
	if err != nil {
		return nil, err
	}
	v := d.provider.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: p.cfg.Now, SkipIssuerCheck: d.issuer != nil})
	t, claims, err := d.verify(oidc.ClientContext(ctx, p.client), v, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: bearer token: %w", ErrRejected, err)
	}
	if !slices.ContainsFunc(t.Audience, func(a string) bool { return slices.Contains(audiences, a) }) {
		return nil, fmt.Errorf("%w: bearer token audience %q is not one of %q", ErrRejected, t.Audience, audiences)
	}
	id := ClaimsIdentity(claims, p.cfg.UserClaim, p.cfg.GroupsClaim)
	if id.User == "" {
		return nil, fmt.Errorf("%w: bearer token has no %q claim to identify the user", ErrRejected, p.cfg.UserClaim)
	}
	id.Subject = t.Subject
	id.Extra = extraClaims(claims, p.live.Load().extraClaims)
	id.AccessToken = raw
	id.Expiry = t.Expiry
	if err := p.applyHooks(ctx, d, &Token{Claims: claims, Bearer: true}, id); err != nil {
		return nil, err
	}
	return id, nil
}
