package providers

import (
	"errors"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"
)

// checkIDToken applies the checks of OpenID Connect Core 1.0 section 3.1.3.7
// (and 2, for the required claims) that go-oidc's verifier leaves to its
// caller, to an ID token it has verified: the token has a sub and an iat;
// an azp, when present, is this client; and a token for several audiences
// has an azp. Signature, iss, aud, exp and (for Exchange) nonce are checked
// elsewhere.
func checkIDToken(t *oidc.IDToken, claims map[string]any, clientID string) error {
	var problems []error
	if t.Subject == "" {
		problems = append(problems, errors.New("has no sub"))
	}
	if t.IssuedAt.IsZero() {
		problems = append(problems, errors.New("has no iat"))
	}
	azp, hasAzp := claims["azp"]
	switch {
	case hasAzp && claimString(azp) != clientID:
		problems = append(problems, fmt.Errorf("azp %q is not this client", truncateValue(claimString(azp))))
	case !hasAzp && len(t.Audience) > 1:
		problems = append(problems, errors.New("has several audiences and no azp"))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: ID token %w", ErrRejected, errors.Join(problems...))
	}
	return nil
}
