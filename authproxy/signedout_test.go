package authproxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSignOutWithoutRdLandsOnSignedOutPage checks where a sign-out goes when
// it names no page to return to: the signed-out page, unless the IdP has an
// end-session endpoint (it then returns to AUTHPROXY_POST_LOGOUT_REDIRECT_URL,
// whose default is unchanged). A given rd is still honoured.
func TestSignOutWithoutRdLandsOnSignedOutPage(t *testing.T) {
	for _, tc := range []struct {
		name         string
		query        string // after /oauth2/sign_out
		method       string
		signedIn     bool
		endSession   bool
		wantLocation string // "idp": the IdP's end-session endpoint
	}{
		{"no rd, IdP without end-session endpoint", "", http.MethodGet, true, false, signedOutPath},
		{"no rd, POST", "", http.MethodPost, true, false, signedOutPath},
		{"empty rd", "?rd=", http.MethodGet, true, false, signedOutPath},
		{"no rd, not signed in", "", http.MethodGet, false, true, signedOutPath},
		{"rd honoured", "?rd=%2Fbye", http.MethodGet, true, false, "/bye"},
		{"rd to another site", "?rd=%2F%2Fevil.example", http.MethodGet, true, false, "/"},
		{"no rd, IdP with end-session endpoint", "", http.MethodGet, true, true, "idp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, withIdP(func(f *fakeIdP) { f.noEndSession = !tc.endSession }))
			c := e.browser()
			if tc.signedIn {
				fromUpstream(t, e.signIn(t, c, "/"))
			}
			r := e.request(t, noFollow(c), tc.method, signOutPath+tc.query, "Accept", acceptHTML)
			loc, err := url.Parse(r.Header.Get("Location"))
			if r.Status != http.StatusFound || err != nil {
				t.Fatalf("sign-out: got %d Location %q, want a 302", r.Status, r.Header.Get("Location"))
			}
			if tc.wantLocation == "idp" {
				if got := loc.Scheme + "://" + loc.Host + loc.Path; got != e.idp.URL()+"/logout" {
					t.Errorf("sign-out: Location %q, want %s/logout", loc, e.idp.URL())
				}
				if got, want := loc.Query().Get("post_logout_redirect_uri"), e.cfg.PostLogoutRedirectURL.String(); got != want {
					t.Errorf("post_logout_redirect_uri = %q, want %q", got, want)
				}
				if !strings.HasSuffix(e.cfg.PostLogoutRedirectURL.String(), "/") || strings.Contains(e.cfg.PostLogoutRedirectURL.Path, "signed_out") {
					t.Errorf("default AUTHPROXY_POST_LOGOUT_REDIRECT_URL changed: %s", e.cfg.PostLogoutRedirectURL)
				}
			} else if loc.String() != tc.wantLocation {
				t.Errorf("sign-out: Location %q, want %q", loc, tc.wantLocation)
			}
			if v := e.sessionCookie(c); v != "" {
				t.Errorf("browser still holds session cookies after sign-out: %.80s", v)
			}
		})
	}
}

// TestSignedOutPage checks the page itself: served without a session, it
// says so and links to a fresh sign-in, which goes to the IdP.
func TestSignedOutPage(t *testing.T) {
	e := newTestEnv(t, withIdP(func(f *fakeIdP) { f.noEndSession = true }))
	c := e.browser()
	fromUpstream(t, e.signIn(t, c, "/"))

	r := e.navigate(t, c, signOutPath) // follows the redirect within authproxy
	if r.Status != http.StatusOK || r.URL.Path != signedOutPath {
		t.Fatalf("after sign-out: %d at %s, want 200 at %s", r.Status, r.URL, signedOutPath)
	}
	for _, want := range []string{"You are signed out", `href="/oauth2/start?rd=%2F"`, "Sign in again"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("signed-out page lacks %q:\n%s", want, r.Body)
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("signed-out page Content-Type %q", ct)
	}
	if n := len(e.up.requests()); n != 1 {
		t.Errorf("the upstream saw %d requests, want only the one before sign-out", n)
	}
	e.toIdP(t, e.navigate(t, noFollow(c), startPath+"?rd=%2F"))
}
