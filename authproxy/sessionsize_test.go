package authproxy

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/session"
)

// randomGroups returns n group names holding random text, as hard to
// compress as real group ids, for sessions that must stay big.
func randomGroups(n int) []any {
	groups := make([]any, n)
	for i := range groups {
		groups[i] = fmt.Sprintf("group-%03d-%s", i, rand.Text())
	}
	return groups
}

// guidGroups returns n group names in the style of a directory that names
// groups by object id (Entra ID): a readable prefix and a random GUID.
func guidGroups(n int) []any {
	groups := make([]any, n)
	for i := range groups {
		b := make([]byte, 16)
		rand.Read(b)
		groups[i] = fmt.Sprintf("app-team-%02d-%x-%x-%x-%x-%x", i%40, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	return groups
}

// storedSession opens the session c's browser holds, as the store does.
func (e *testEnv) storedSession(t *testing.T, c *http.Client) *session.Session {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", e.sessionCookie(c))
	sess, err := e.store.Load(r)
	if err != nil {
		t.Fatalf("loading the browser's session: %v", err)
	}
	return sess
}

// giveSession saves sess with the server's store into c's cookie jar.
func (e *testEnv) giveSession(t *testing.T, c *http.Client, sess *session.Session) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := e.store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
		t.Fatalf("saving session: %v", err)
	}
	u, _ := url.Parse(e.proxy.URL + "/")
	c.Jar.SetCookies(u, rec.Result().Cookies())
}

// sessionCookieSizes returns how many session cookies c's browser holds and
// their bytes as name=value.
func (e *testEnv) sessionCookieSizes(c *http.Client) (count, bytes int) {
	for _, part := range strings.Split(e.sessionCookie(c), "; ") {
		if part != "" {
			count++
			bytes += len(part)
		}
	}
	return count, bytes
}

func TestSessionKeepsOnlyWhatItNeeds(t *testing.T) {
	for _, tc := range []struct {
		name        string
		passAccess  bool
		endSession  bool
		wantAccess  bool // the session keeps the access token
		wantIDToken bool // the session keeps the raw ID token
	}{
		{"defaults, IdP without end-session endpoint (Dex)", false, false, false, false},
		{"IdP with end-session endpoint: ID token for id_token_hint", false, true, false, true},
		{"access token forwarded", true, false, true, false},
		{"access token forwarded, IdP with end-session endpoint", true, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t,
				withVar("AUTHPROXY_PASS_ACCESS_TOKEN", fmt.Sprint(tc.passAccess)),
				withIdP(func(f *fakeIdP) { shortTokens(f); f.noEndSession = !tc.endSession }))
			c := e.browser()
			check := func(step string) {
				t.Helper()
				sess := e.storedSession(t, c)
				wantAccess, wantID := "", ""
				if tc.wantAccess {
					wantAccess = e.idp.lastAccessToken()
				}
				if tc.wantIDToken {
					wantID = e.idp.lastIDToken()
				}
				if sess.AccessToken != wantAccess {
					t.Errorf("%s: session access token %q, want %q", step, sess.AccessToken, wantAccess)
				}
				if sess.IDToken != wantID {
					t.Errorf("%s: session ID token %.20q…, want %.20q…", step, sess.IDToken, wantID)
				}
				if sess.RefreshToken == "" || sess.TokenExpiry.IsZero() {
					t.Errorf("%s: session lacks what refresh needs: refresh token %t, expiry %v", step, sess.RefreshToken != "", sess.TokenExpiry)
				}
				if sess.Subject != "user-123" || sess.Email != "ada@example.com" || sess.PreferredUsername != "ada" || strings.Join(sess.Groups, ",") != "staff,admins" {
					t.Errorf("%s: session identity %q %q %q %q", step, sess.Subject, sess.Email, sess.PreferredUsername, sess.Groups)
				}
			}

			landing := e.signInNoLanding(t, c, "/app")
			check("after sign-in")
			before := e.idp.lastAccessToken()
			got := fromUpstream(t, e.navigate(t, c, landing)) // the access token is due: this refreshes
			if e.idp.lastAccessToken() == before {
				t.Fatal("the request did not refresh the tokens")
			}
			check("after refresh")
			if v := got.Header.Get("X-Forwarded-Access-Token"); (v != "") != tc.passAccess || tc.passAccess && v != e.idp.lastAccessToken() {
				t.Errorf("X-Forwarded-Access-Token %q, want the access token: %t", v, tc.passAccess)
			}

			// Sign-out sends the kept ID token, and only then goes to the IdP.
			r := e.request(t, noFollow(c), http.MethodGet, signOutPath, "Accept", acceptHTML)
			loc, _ := url.Parse(r.Header.Get("Location"))
			if hint := loc.Query().Get("id_token_hint"); tc.endSession != (hint == e.idp.lastIDToken()) || !tc.endSession && loc.Host != "" {
				t.Errorf("sign-out: Location %.120q, want the IdP with id_token_hint: %t", loc, tc.endSession)
			}
		})
	}
}

// TestSessionFromEarlierReleaseTrimmedAtRefresh checks that a session as
// earlier releases saved it (access token and ID token always inside) still
// serves, and that its next refresh leaves out what is not needed.
func TestSessionFromEarlierReleaseTrimmedAtRefresh(t *testing.T) {
	for _, tc := range []struct {
		name        string
		endSession  bool
		wantIDToken bool
	}{
		{"IdP without end-session endpoint", false, false},
		{"IdP with end-session endpoint", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, withIdP(func(f *fakeIdP) { f.noEndSession = !tc.endSession }))
			signedIn := e.browser()
			fromUpstream(t, e.signIn(t, signedIn, "/app"))
			old := e.storedSession(t, signedIn)
			old.AccessToken, old.IDToken = e.idp.lastAccessToken(), e.idp.lastIDToken()
			old.TokenExpiry = time.Now().Add(30 * time.Second) // due for refresh

			c := e.browser()
			e.giveSession(t, c, old)
			got := fromUpstream(t, e.navigate(t, c, "/app"))
			if got.Header.Get("X-Forwarded-User") != "user-123" || got.Header.Get("X-Forwarded-Access-Token") != "" {
				t.Errorf("upstream got user %q, access token %q; want user-123 and no access token",
					got.Header.Get("X-Forwarded-User"), got.Header.Get("X-Forwarded-Access-Token"))
			}
			sess := e.storedSession(t, c)
			if sess.RefreshToken == old.RefreshToken {
				t.Fatal("the session was not refreshed")
			}
			if sess.AccessToken != "" {
				t.Errorf("refreshed session keeps the access token")
			}
			if (sess.IDToken != "") != tc.wantIDToken || tc.wantIDToken && sess.IDToken != e.idp.lastIDToken() {
				t.Errorf("refreshed session ID token %.20q…, want the new one: %t", sess.IDToken, tc.wantIDToken)
			}
		})
	}
}

// TestSignInSessionSize is the regression test for sign-ins of users in
// many groups: today's 150-group user signs in and every group reaches the
// upstream, and a session too large even so gets the page that says to use
// the Redis store, with 507, never a 500.
func TestSignInSessionSize(t *testing.T) {
	for _, tc := range []struct {
		name        string
		endSession  bool
		groups      []any
		maxCookies  int // 0: the sign-in must fail as too large
		maxCookieSz int
	}{
		{"a couple of groups, one small cookie", false, []any{"staff", "admins"}, 1, 2000},
		{"150 GUID groups (Dex, Entra ids)", false, guidGroups(150), 2, 4000},
		{"150 GUID groups, ID token kept for sign-out", true, guidGroups(150), 4, 4000},
		{"1000 random groups", false, randomGroups(1000), 0, 0},
		{"600 random groups, ID token kept for sign-out", true, randomGroups(600), 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, withIdP(func(f *fakeIdP) {
				f.noEndSession = !tc.endSession
				f.claims["groups"] = tc.groups
			}))
			c := e.browser()
			cb := e.callback(t, c, e.idp.authorize(t, e.startSignIn(t, c, "/app")))
			if tc.maxCookies == 0 {
				if cb.Status != http.StatusInsufficientStorage || !strings.Contains(cb.Body, "AUTHPROXY_SESSION_STORE=redis") {
					t.Errorf("callback: got %d, want 507 and the page naming AUTHPROXY_SESSION_STORE=redis; body: %.300s", cb.Status, cb.Body)
				}
				if e.setsSession(cb.Cookies) {
					t.Errorf("callback set a session cookie")
				}
				return
			}
			if cb.Status != http.StatusFound {
				t.Fatalf("callback: got %d, want 302; body: %.300s", cb.Status, cb.Body)
			}
			n, size := e.sessionCookieSizes(c)
			t.Logf("%d groups: %d session cookies, %d bytes", len(tc.groups), n, size)
			if n > tc.maxCookies || size > tc.maxCookies*tc.maxCookieSz {
				t.Errorf("session in %d cookies of %d bytes, want at most %d of %d", n, size, tc.maxCookies, tc.maxCookieSz)
			}
			got := fromUpstream(t, e.navigate(t, c, cb.Header.Get("Location")))
			want := make([]string, len(tc.groups))
			for i, g := range tc.groups {
				want[i] = g.(string)
			}
			if g := got.Header.Get("X-Forwarded-Groups"); g != strings.Join(want, ",") {
				t.Errorf("upstream got %d groups, want all %d", strings.Count(g, ",")+1, len(want))
			}
		})
	}
}

// TestRefreshTooLargeEndsSession checks that a session whose refreshed
// identity no longer fits the cookies ends (sign in again, and see why)
// rather than going on with the groups from before, or failing with a 500.
func TestRefreshTooLargeEndsSession(t *testing.T) {
	e := newTestEnv(t, withIdP(func(f *fakeIdP) { shortTokens(f); f.noEndSession = true }))
	c := e.browser()
	landing := e.signInNoLanding(t, c, "/app")
	e.idp.set(func(f *fakeIdP) { f.claims["groups"] = randomGroups(1000) })

	if r := e.api(t, c, landing); r.Status != http.StatusUnauthorized {
		t.Errorf("API request whose refresh does not fit: got %d, want 401; body %.200s", r.Status, r.Body)
	}
	if v := e.sessionCookie(c); v != "" {
		t.Errorf("session cookie kept after a refresh that did not fit")
	}
	cb := e.callback(t, c, e.idp.authorize(t, e.startSignIn(t, c, landing)))
	if cb.Status != http.StatusInsufficientStorage {
		t.Errorf("signing in again: got %d, want 507", cb.Status)
	}
	if n := len(e.up.requests()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

// TestPassAccessTokenReachesSessionsSavedWithout checks that turning on
// AUTHPROXY_PASS_ACCESS_TOKEN reaches sessions saved while it was off (they
// hold no access token) at their next request, by a refresh, rather than
// when their access token happens to expire.
func TestPassAccessTokenReachesSessionsSavedWithout(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_PASS_ACCESS_TOKEN", "true"))
	signedIn := e.browser()
	fromUpstream(t, e.signIn(t, signedIn, "/app"))
	saved := e.storedSession(t, signedIn)
	saved.AccessToken = "" // as saved with the setting off
	if time.Until(saved.TokenExpiry) < 30*time.Minute {
		t.Fatalf("test needs an access token far from expiry, got %v", saved.TokenExpiry)
	}

	c := e.browser()
	e.giveSession(t, c, saved)
	before := e.idp.lastAccessToken()
	got := fromUpstream(t, e.navigate(t, c, "/app"))
	if now := e.idp.lastAccessToken(); now == before || got.Header.Get("X-Forwarded-Access-Token") != now {
		t.Errorf("upstream got access token %q, want a refreshed one", got.Header.Get("X-Forwarded-Access-Token"))
	}
	if sess := e.storedSession(t, c); sess.AccessToken != e.idp.lastAccessToken() {
		t.Errorf("refreshed session holds access token %q, want the new one", sess.AccessToken)
	}
}
