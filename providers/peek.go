package providers

import (
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxPeekBytes bounds the token UnverifiedIssuer reads; larger ones are
// refused unread.
const maxPeekBytes = 64 << 10

// peekAlgorithms are the signature algorithms a token may name for
// UnverifiedIssuer to read it; the verifier that follows checks the
// algorithm against the IdP's keys.
var peekAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// UnverifiedIssuer returns the iss claim of a compact JWS (a bearer access
// token or a logout token) WITHOUT verifying anything, so that a caller
// with several IdPs can pick the one whose keys must then verify it. Its
// answer is a hint only: never trust the token, or its issuer, before that
// IdP's VerifyBearer or VerifyLogoutToken has passed. A token that is not
// a JWS with an asymmetric algorithm, or has no string iss, is refused
// (wrapping ErrRejected).
func UnverifiedIssuer(raw string) (string, error) {
	if len(raw) > maxPeekBytes {
		return "", fmt.Errorf("%w: token larger than %d bytes", ErrRejected, maxPeekBytes)
	}
	tok, err := jwt.ParseSigned(raw, peekAlgorithms)
	if err != nil {
		return "", fmt.Errorf("%w: not a signed JWT: %w", ErrRejected, err)
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return "", fmt.Errorf("%w: unreadable claims: %w", ErrRejected, err)
	}
	if claims.Issuer == "" {
		return "", fmt.Errorf("%w: %w", ErrRejected, errors.New("token has no iss"))
	}
	return claims.Issuer, nil
}
