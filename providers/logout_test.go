package providers

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"testing"
	"time"
)

// logoutClaims returns a valid logout token's claims for f.
func logoutClaims(f *testIdP) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": f.srv.URL, "aud": f.clientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": "jti-1", "sid": "idp-session-1", "sub": "user-1",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
}

func TestVerifyLogoutToken(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c map[string]any)
		want *LogoutToken // nil: rejected
	}{
		{"sid and sub", func(map[string]any) {}, &LogoutToken{Subject: "user-1", SID: "idp-session-1", JTI: "jti-1"}},
		{"sid only", func(c map[string]any) { delete(c, "sub") }, &LogoutToken{SID: "idp-session-1", JTI: "jti-1"}},
		{"sub only", func(c map[string]any) { delete(c, "sid") }, &LogoutToken{Subject: "user-1", JTI: "jti-1"}},

		{"neither sid nor sub", func(c map[string]any) { delete(c, "sid"); delete(c, "sub") }, nil},
		{"no events", func(c map[string]any) { delete(c, "events") }, nil},
		{"other event", func(c map[string]any) { c["events"] = map[string]any{"http://example.com/other": map[string]any{}} }, nil},
		{"events as a list", func(c map[string]any) { c["events"] = []any{"http://schemas.openid.net/event/backchannel-logout"} }, nil},
		{"nonce", func(c map[string]any) { c["nonce"] = "n" }, nil},
		{"no jti", func(c map[string]any) { delete(c, "jti") }, nil},
		{"no iat", func(c map[string]any) { delete(c, "iat") }, nil},
		{"iat far in the future", func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }, nil},
		{"iat too old", func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }, nil},
		{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, nil},
		{"wrong audience", func(c map[string]any) { c["aud"] = "other" }, nil},
		{"wrong issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, nil},
		{"an ID token", func(c map[string]any) { delete(c, "events"); c["nonce"] = "n"; c["email"] = "a@x.org" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			p := f.provider(t, nil)
			c := logoutClaims(f)
			tc.edit(c)
			got, err := p.VerifyLogoutToken(context.Background(), f.sign(c))
			if tc.want == nil {
				if !errors.Is(err, ErrRejected) || got != nil {
					t.Errorf("VerifyLogoutToken = %+v, %v; want ErrRejected", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyLogoutToken: %v", err)
			}
			if got.Expiry.IsZero() {
				t.Errorf("Expiry is zero")
			}
			got.Expiry = time.Time{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("VerifyLogoutToken = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVerifyLogoutTokenKeysAndInput(t *testing.T) {
	f := newTestIdP(t, "secret")
	p := f.provider(t, nil)
	valid := f.sign(logoutClaims(f))
	f.set(func(f *testIdP) { f.signKey = testECKey(f.t) })
	otherKey := f.sign(logoutClaims(f))
	for _, tc := range []struct{ name, raw string }{
		{"signed with another key", otherKey},
		{"garbage", "not.a.jwt"},
		{"empty", ""},
		{"signature cut off", valid[:len(valid)-10]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := p.VerifyLogoutToken(context.Background(), tc.raw); !errors.Is(err, ErrRejected) || got != nil {
				t.Errorf("VerifyLogoutToken = %+v, %v; want ErrRejected", got, err)
			}
		})
	}
	t.Run("before discovery", func(t *testing.T) {
		q := NewOIDC(OIDCConfig{IssuerURL: f.srv.URL, ClientID: f.clientID})
		if _, err := q.VerifyLogoutToken(context.Background(), valid); !errors.Is(err, ErrUnavailable) {
			t.Errorf("VerifyLogoutToken: %v, want ErrUnavailable", err)
		}
	})
}

func TestEndSessionURL(t *testing.T) {
	f := newTestIdP(t, "secret")
	p := f.provider(t, nil)
	for _, tc := range []struct {
		name, hint, post string
		want             url.Values
	}{
		{"hint and return URL", "id.token.hint", "https://app.example.com/", url.Values{
			"tenant": {"t1"}, "id_token_hint": {"id.token.hint"}, "client_id": {"client-1"},
			"post_logout_redirect_uri": {"https://app.example.com/"},
		}},
		{"no hint", "", "https://app.example.com/bye", url.Values{
			"tenant": {"t1"}, "client_id": {"client-1"}, "post_logout_redirect_uri": {"https://app.example.com/bye"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(p.EndSessionURL(tc.hint, tc.post))
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Scheme + "://" + u.Host + u.Path; got != f.srv.URL+"/logout" {
				t.Errorf("endpoint %q, want %s/logout", got, f.srv.URL)
			}
			if got := u.Query(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("query %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("IdP without end_session_endpoint", func(t *testing.T) {
		g := newTestIdP(t, "secret")
		g.set(func(g *testIdP) { g.discovery = func(d map[string]any) { delete(d, "end_session_endpoint") } })
		if got := g.provider(t, nil).EndSessionURL("h", "https://app.example.com/"); got != "" {
			t.Errorf("EndSessionURL = %q, want \"\"", got)
		}
	})
	t.Run("before discovery", func(t *testing.T) {
		if got := NewOIDC(OIDCConfig{IssuerURL: f.srv.URL}).EndSessionURL("h", "x"); got != "" {
			t.Errorf("EndSessionURL = %q, want \"\"", got)
		}
	})
}
