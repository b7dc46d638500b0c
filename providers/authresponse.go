package providers

import (
	"fmt"
	"net/url"
)

// AuthResponseChecker is implemented by providers that check the
// authorization response itself, before its code is exchanged.
type AuthResponseChecker interface {
	// CheckAuthResponse checks the parameters of the authorization response
	// (the callback's query, error responses included). A failure wraps
	// ErrRejected: the code must then not be sent to the token endpoint.
	CheckAuthResponse(params url.Values) error
}

// CheckAuthResponse implements AuthResponseChecker with RFC 9207 (OAuth 2.0
// Authorization Server Issuer Identification), which x/oauth2 leaves to its
// caller: an iss parameter must be exactly the discovery document's issuer
// (simple string comparison: case and a trailing slash count), and an IdP
// whose discovery advertises authorization_response_iss_parameter_supported
// must send one. With Hooks.Issuer (a multi-tenant issuer that names no
// single issuer) iss is checked only when the IdP advertises it.
func (p *OIDC) CheckAuthResponse(params url.Values) error {
	d, err := p.loaded()
	if err != nil {
		return err
	}
	iss, present := params.Get("iss"), params.Has("iss")
	switch {
	case !present && d.issParameter:
		return fmt.Errorf("%w: authorization response has no iss, which the IdP advertises (RFC 9207)", ErrRejected)
	case !present, d.issuer != nil && !d.issParameter:
		return nil
	case iss != d.issuerID:
		return fmt.Errorf("%w: authorization response is from issuer %q, not %q (RFC 9207)", ErrRejected, truncateValue(iss), d.issuerID)
	}
	return nil
}

// truncateValue shortens a value an IdP or a browser sent for an error
// message.
func truncateValue(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
