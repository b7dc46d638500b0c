package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// backchannelLogoutEvent is the member the events claim of a logout token
// must have (OpenID Connect Back-Channel Logout 1.0, section 2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutTokenAge bounds how old a logout token's iat may be.
const maxLogoutTokenAge = 5 * time.Minute

// LogoutToken is a verified back-channel logout token: it names the
// sessions to end by SID, by Subject, or both.
type LogoutToken struct {
	Subject string
	SID     string
	// JTI identifies the token, so that a replay can be refused.
	JTI string
	// Expiry is when the token stops being valid; a replay cache may forget
	// the JTI after it.
	Expiry time.Time
}

// LogoutVerifier is implemented by providers that can verify back-channel
// logout tokens.
type LogoutVerifier interface {
	// VerifyLogoutToken checks a logout token's signature with the IdP's
	// keys, its issuer, audience, expiry and iat, the events claim, that it
	// has no nonce, and that it names a sid or a sub. Every failure wraps
	// ErrRejected.
	VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error)
}

// VerifyLogoutToken implements LogoutVerifier.
func (p *OIDC) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	d, err := p.loaded()
	if err != nil {
		return nil, err
	}
	t, _, err := d.verify(oidc.ClientContext(ctx, p.client), d.verifier, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: logout token: %w", ErrRejected, err)
	}
	var c struct {
		SID    string                     `json:"sid"`
		JTI    string                     `json:"jti"`
		Events map[string]json.RawMessage `json:"events"`
	}
	var all map[string]json.RawMessage
	if err := t.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: logout token claims: %w", ErrRejected, err)
	}
	if err := t.Claims(&all); err != nil {
		return nil, fmt.Errorf("%w: logout token claims: %w", ErrRejected, err)
	}
	now := p.cfg.Now()
	var problems []error
	if _, ok := c.Events[backchannelLogoutEvent]; !ok {
		problems = append(problems, errors.New("events claim lacks "+backchannelLogoutEvent))
	}
	if _, ok := all["nonce"]; ok {
		problems = append(problems, errors.New("has a nonce claim, which logout tokens must not have"))
	}
	if c.SID == "" && t.Subject == "" {
		problems = append(problems, errors.New("names neither sid nor sub"))
	}
	if c.JTI == "" {
		problems = append(problems, errors.New("has no jti"))
	}
	switch {
	case t.IssuedAt.IsZero():
		problems = append(problems, errors.New("has no iat"))
	case t.IssuedAt.After(now.Add(maxClockSkew)):
		problems = append(problems, errors.New("iat is in the future"))
	case t.IssuedAt.Before(now.Add(-maxLogoutTokenAge)):
		problems = append(problems, errors.New("iat is too old"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: logout token: %w", ErrRejected, errors.Join(problems...))
	}
	return &LogoutToken{Subject: t.Subject, SID: c.SID, JTI: c.JTI, Expiry: t.Expiry}, nil
}

// maxClockSkew is how far ahead of our clock an IdP's timestamps may be.
const maxClockSkew = 2 * time.Minute

// EndSessioner is implemented by providers that support OpenID Connect
// RP-Initiated Logout.
type EndSessioner interface {
	// EndSessionURL returns where to send the browser to sign out at the
	// IdP, or "" when the IdP has no end_session_endpoint.
	EndSessionURL(idTokenHint, postLogoutRedirectURI string) string
}

// EndSessionURL implements EndSessioner. It sends id_token_hint (when
// known), client_id and post_logout_redirect_uri.
func (p *OIDC) EndSessionURL(idTokenHint, postLogoutRedirectURI string) string {
	ep := p.EndSessionEndpoint()
	if ep == "" {
		return ""
	}
	u, err := url.Parse(ep)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", p.cfg.ClientID)
	if postLogoutRedirectURI != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
