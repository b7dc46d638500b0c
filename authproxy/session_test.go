package authproxy

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/session"
)

func TestSignInReplacesSession(t *testing.T) {
	e := newTestEnv(t)
	c := e.browser()
	fromUpstream(t, e.signIn(t, c, "/"))
	before := e.sessionCookie(c)

	bob := defaultClaims()
	bob["sub"], bob["email"], bob["preferred_username"], bob["groups"] = "user-456", "bob@example.com", "bob", []any{"ops"}
	e.idp.setClaims(bob)
	cb := e.callback(t, c, e.idp.authorize(t, e.startSignIn(t, c, "/")))
	if cb.Status != http.StatusFound || !e.setsSession(cb.Cookies) {
		t.Fatalf("second sign-in: got %d, want 302 with a session", cb.Status)
	}
	if after := e.sessionCookie(c); after == before || after == "" {
		t.Errorf("session cookie not replaced")
	}
	got := fromUpstream(t, e.navigate(t, c, "/who"))
	if u, g := got.Header.Get("X-Forwarded-User"), got.Header.Get("X-Forwarded-Groups"); u != "user-456" || g != "ops" {
		t.Errorf("after the second sign-in upstream sees user %q groups %q, want user-456 and ops", u, g)
	}
}

func TestInvalidSessionCookieIsNoSession(t *testing.T) {
	e := newTestEnv(t)
	valid := e.mintSession(t, testSession())
	name := e.cfg.CookieName
	value := strings.TrimPrefix(valid, name+"=")

	otherKey, err := session.NewCodec([][]byte{[]byte("another-32-byte-cookie-secret!!!")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sameKey, err := session.NewCodec([][]byte{[]byte("0123456789abcdef0123456789abcdef")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(c *session.Codec, cookieName string, s *session.Session) string {
		v, err := c.Seal(cookieName, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	expired := testSession()
	expired.ExpiresAt = time.Now().Add(-time.Minute)
	flipped := []byte(value)
	flipped[len(flipped)/2] ^= 1

	for _, tc := range []struct{ name, cookie string }{
		{"forged", name + "=" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("forged session ", 20)))},
		{"truncated", name + "=" + value[:len(value)-10]},
		{"one byte changed", name + "=" + string(flipped)},
		{"sealed with another COOKIE_SECRET", name + "=" + seal(otherKey, name, testSession())},
		{"sealed for another cookie name", name + "=" + seal(sameKey, name+"_csrf_abcdefghijkl", testSession())},
		{"expired session", name + "=" + seal(sameKey, name, expired)},
		{"garbage", name + "=!!!not*base64!!!"},
		{"empty", name + "="},
		{"huge, just under the header limit", name + "=" + strings.Repeat("A", 60<<10)}, // over it: 431 (limits_test.go)
		{"chunks of garbage", name + "_0=abc; " + name + "_1=def"},
		{"valid value split into wrong chunks", name + "_1=" + value[:20] + "; " + name + "_0=" + value[20:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for _, rq := range []struct {
				method, path, accept string
				want                 int
			}{
				{http.MethodGet, "/app", acceptHTML, http.StatusFound},
				{http.MethodGet, "/app", "application/json", http.StatusUnauthorized},
				{http.MethodPost, "/app", acceptHTML, http.StatusUnauthorized},
				{http.MethodGet, userinfoPath, "application/json", http.StatusUnauthorized},
				{http.MethodGet, authPath, "", http.StatusUnauthorized},
			} {
				r := e.request(t, c, rq.method, rq.path, "Accept", rq.accept, "Cookie", tc.cookie)
				if r.Status != rq.want {
					t.Errorf("%s %s (Accept %q): got %d, want %d; body: %.200s", rq.method, rq.path, rq.accept, r.Status, rq.want, r.Body)
				}
				if rq.want == http.StatusFound {
					e.toIdP(t, r)
				}
			}
			if n := len(e.up.requests()); n != 0 {
				t.Errorf("upstream saw %d requests", n)
			}
		})
	}
}

func TestSignOut(t *testing.T) {
	manyGroups := randomGroups(120)
	for _, tc := range []struct {
		name, method, rd string
		signedIn         bool
		endSession       bool // the IdP has an end_session_endpoint
		groups           []any
		wantLocation     string // "idp": the IdP's end_session_endpoint
	}{
		{"GET, to the IdP", http.MethodGet, "/bye?x=1", true, true, nil, "idp"},
		{"POST, to the IdP", http.MethodPost, "/bye", true, true, nil, "idp"},
		{"session split over several cookies", http.MethodGet, "/", true, true, manyGroups, "idp"},
		{"IdP without end-session endpoint", http.MethodGet, "/bye?x=1", true, false, nil, "/bye?x=1"},
		{"IdP without end-session endpoint, rd to another site", http.MethodGet, "//evil.example/", true, false, nil, "/"},
		{"not signed in", http.MethodGet, "/bye", false, true, nil, "/bye"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, withIdP(func(f *fakeIdP) {
				f.noEndSession = !tc.endSession
				if tc.groups != nil {
					f.claims["groups"] = tc.groups
				}
			}))
			c := e.browser()
			if tc.signedIn {
				fromUpstream(t, e.signIn(t, c, "/"))
			}
			if tc.groups != nil && !strings.Contains(e.sessionCookie(c), e.cfg.CookieName+"_1=") {
				t.Fatalf("session is not split over several cookies: %.80s", e.sessionCookie(c))
			}

			r := e.request(t, noFollow(c), tc.method, signOutPath+"?rd="+url.QueryEscape(tc.rd), "Accept", acceptHTML)
			loc, err := url.Parse(r.Header.Get("Location"))
			if r.Status != http.StatusFound || err != nil {
				t.Fatalf("sign-out: got %d Location %q, want a 302", r.Status, r.Header.Get("Location"))
			}
			if tc.wantLocation == "idp" {
				want := url.Values{
					"client_id":                {testClientID},
					"id_token_hint":            {e.idp.lastIDToken()},
					"post_logout_redirect_uri": {e.cfg.PostLogoutRedirectURL.String()},
				}
				if got := loc.Scheme + "://" + loc.Host + loc.Path; got != e.idp.URL()+"/logout" || !reflect.DeepEqual(loc.Query(), want) {
					t.Errorf("sign-out: Location %q, want %s/logout with %v", loc, e.idp.URL(), want)
				}
			} else if loc.String() != tc.wantLocation {
				t.Errorf("sign-out: Location %q, want %q", loc, tc.wantLocation)
			}
			if v := e.sessionCookie(c); v != "" {
				t.Errorf("browser still holds session cookies after sign-out: %.80s", v)
			}
			if r := e.api(t, c, userinfoPath); r.Status != http.StatusUnauthorized {
				t.Errorf("%s after sign-out: got %d, want 401", userinfoPath, r.Status)
			}
			e.toIdP(t, e.navigate(t, c, "/app"))
		})
	}
}
