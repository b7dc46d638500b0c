package authproxy

// Regression tests for bugs found while writing the tests beside them.
// Each failed against the code as first written; each says what it expects.
// Once fixed, a test moves to the file of its concept.

import (
	"net/http"
	"testing"
)

// OpenID Connect Core 12.2: an ID token returned by a refresh "MUST" have
// the same iss and sub as the one of the original sign-in. Neither
// OIDC.Refresh nor Server.refreshOnce compares sub, and refreshOnce takes
// the refreshed token's user claim as the session's user: a refresh that
// returns another user's ID token (an IdP bug, a refresh token mixed up
// between clients) silently turns the session into that user's.
func TestBugRefreshAcceptsIDTokenOfAnotherUser(t *testing.T) {
	e := newTestEnv(t, withIdP(shortTokens))
	c := e.browser()
	landing := e.signInNoLanding(t, c, "/app")
	mallory := defaultClaims()
	mallory["sub"], mallory["email"], mallory["preferred_username"] = "user-999", "mallory@example.com", "mallory"
	e.idp.setClaims(mallory)

	r := e.api(t, c, landing)
	if r.Status == http.StatusUnauthorized {
		return // the session was ended: a fix
	}
	got := fromUpstream(t, r)
	if u := got.Header.Get("X-Forwarded-User"); u != "user-123" {
		t.Errorf("after a refresh returning sub user-999, upstream sees user %q (email %q), want user-123 or the session ended",
			u, got.Header.Get("X-Forwarded-Email"))
	}
}
