package authproxy

import (
	"net/http"
	"testing"
)

// shortTokens makes the fake IdP issue access tokens that are already
// within the refresh margin, so the first request after sign-in refreshes.
func shortTokens(f *fakeIdP) { f.expiresIn = 30 }

// signInNoLanding completes a sign-in to target without loading target, and
// returns where the callback redirects.
func (e *testEnv) signInNoLanding(t *testing.T, c *http.Client, target string) string {
	t.Helper()
	r := e.callback(t, c, e.idp.authorize(t, e.startSignIn(t, c, target)))
	if r.Status != http.StatusFound {
		t.Fatalf("callback: got %d, want 302; body %.300s", r.Status, r.Body)
	}
	return r.Header.Get("Location")
}

func TestRefreshNearExpiry(t *testing.T) {
	e := newTestEnv(t, withIdP(shortTokens), withVar("AUTHPROXY_PASS_ACCESS_TOKEN", "true"))
	c := e.browser()
	landing := e.signInNoLanding(t, c, "/app")
	first := e.idp.lastAccessToken()
	before := e.sessionCookie(c)

	got := fromUpstream(t, e.navigate(t, c, landing))
	refreshed := e.idp.lastAccessToken()
	if refreshed == first {
		t.Fatalf("no refresh: the IdP issued no new access token")
	}
	if v := got.Header.Get("X-Forwarded-Access-Token"); v != refreshed {
		t.Errorf("upstream access token %q, want the refreshed %q", v, refreshed)
	}
	if after := e.sessionCookie(c); after == before || after == "" {
		t.Errorf("refreshed session not saved to the browser")
	}
	if u := got.Header.Get("X-Forwarded-User"); u != "user-123" {
		t.Errorf("upstream user %q after refresh, want user-123", u)
	}
}

func TestRefreshFailure(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		keepsGoing bool // the session survives
	}{
		{"refresh token refused", http.StatusBadRequest, false},
		{"IdP failing", http.StatusInternalServerError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, withIdP(shortTokens))
			c := e.browser()
			landing := e.signInNoLanding(t, c, "/app")
			e.idp.set(func(f *fakeIdP) { f.refreshFail = tc.status })

			if !tc.keepsGoing {
				if r := e.api(t, c, "/app"); r.Status != http.StatusUnauthorized {
					t.Errorf("API request after a refused refresh: got %d, want 401", r.Status)
				}
				if v := e.sessionCookie(c); v != "" {
					t.Errorf("session cookie kept after a refused refresh")
				}
				e.toIdP(t, e.navigate(t, c, landing))
				return
			}
			got := fromUpstream(t, e.navigate(t, c, landing))
			if u := got.Header.Get("X-Forwarded-User"); u != "user-123" {
				t.Errorf("upstream user %q, want user-123", u)
			}
			if r := e.api(t, c, userinfoPath); r.Status != http.StatusOK {
				t.Errorf("%s with the IdP failing: got %d, want 200", userinfoPath, r.Status)
			}
		})
	}
}

func TestRefreshDropsUnverifiedEmail(t *testing.T) {
	e := newTestEnv(t, withIdP(shortTokens))
	c := e.browser()
	landing := e.signInNoLanding(t, c, "/app")
	cl := defaultClaims()
	cl["email_verified"] = false
	e.idp.setClaims(cl)
	if r := e.api(t, c, landing); r.Status != http.StatusUnauthorized {
		t.Errorf("after a refresh with an unverified email: got %d, want 401", r.Status)
	}
}
