package providers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// signIn runs AuthCodeURL and mints a code for it at the IdP; it returns
// the code, verifier and nonce to exchange.
func signIn(t *testing.T, f *testIdP, p *OIDC) (code, verifier, nonce string) {
	t.Helper()
	verifier, nonce = "verifier-"+strings.Repeat("v", 40), "nonce-"+strings.Repeat("n", 20)
	authURL, err := p.AuthCodeURL("state-"+strings.Repeat("s", 20), nonce, verifier)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	return f.code(t, authURL), verifier, nonce
}

func TestNotDiscoveredYet(t *testing.T) {
	p := NewOIDC(OIDCConfig{IssuerURL: "http://127.0.0.1:1", ClientID: "c"})
	if err := p.Ready(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ready() = %v, want ErrUnavailable", err)
	}
	if _, err := p.AuthCodeURL("s", "n", "v"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("AuthCodeURL: %v, want ErrUnavailable", err)
	}
	if _, err := p.Exchange(context.Background(), "code", "v", "n"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Exchange: %v, want ErrUnavailable", err)
	}
	if _, err := p.Refresh(context.Background(), "rt"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Refresh: %v, want ErrUnavailable", err)
	}
	if ep := p.EndSessionEndpoint(); ep != "" {
		t.Errorf("EndSessionEndpoint() = %q before discovery", ep)
	}
}

func TestDiscover(t *testing.T) {
	f := newTestIdP(t, "secret")
	p := f.provider(t, nil)
	if err := p.Ready(); err != nil {
		t.Errorf("Ready() after discovery = %v", err)
	}
	if got, want := p.EndSessionEndpoint(), f.srv.URL+"/logout?tenant=t1"; got != want {
		t.Errorf("EndSessionEndpoint() = %q, want %q", got, want)
	}
	f.srv.Close() // discovery is kept
	if err := p.Discover(context.Background()); err != nil {
		t.Errorf("second Discover after success: %v", err)
	}
}

func TestDiscoverFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		issue func(f *testIdP) string // returns the issuer URL to use
	}{
		{"nothing listening", func(f *testIdP) string { f.srv.Close(); return f.srv.URL }},
		{"issuer mismatch", func(f *testIdP) string {
			f.set(func(f *testIdP) { f.discovery = func(d map[string]any) { d["issuer"] = "https://evil.example" } })
			return f.srv.URL
		}},
		{"no discovery document", func(f *testIdP) string { return f.srv.URL + "/nowhere" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			p := NewOIDC(OIDCConfig{IssuerURL: tc.issue(f), ClientID: f.clientID})
			err := p.Discover(context.Background())
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Discover: %v, want ErrUnavailable", err)
			}
			if ready := p.Ready(); !errors.Is(ready, ErrUnavailable) || ready.Error() != err.Error() {
				t.Errorf("Ready() = %v, want the discovery error %v", ready, err)
			}
		})
	}
}

func TestDiscoverWithRetryStopsWithContext(t *testing.T) {
	p := NewOIDC(OIDCConfig{IssuerURL: "http://127.0.0.1:1", ClientID: "c"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { p.DiscoverWithRetry(ctx); close(done) }()
	<-done // would hang if the retry loop ignored ctx
	if err := p.Ready(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ready() = %v, want ErrUnavailable", err)
	}
}

func TestAuthCodeURL(t *testing.T) {
	f := newTestIdP(t, "secret")
	p := f.provider(t, func(c *OIDCConfig) { c.Scopes = []string{"openid", "email", "groups"} })
	raw, err := p.AuthCodeURL("the-state", "the-nonce", "the-verifier")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != f.srv.URL+"/auth" {
		t.Errorf("authorization endpoint %q", got)
	}
	sum := sha256.Sum256([]byte("the-verifier"))
	want := url.Values{
		"response_type":         {"code"},
		"client_id":             {"client-1"},
		"redirect_uri":          {"https://app.example.com/oauth2/callback"},
		"scope":                 {"openid email groups"},
		"state":                 {"the-state"},
		"nonce":                 {"the-nonce"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if got := u.Query(); !reflect.DeepEqual(got, want) {
		t.Errorf("query = %v, want %v", got, want)
	}
}

func TestExchange(t *testing.T) {
	for _, tc := range []struct {
		name, secret string
		basic        bool
	}{
		{"confidential client", "secret", true},
		{"public client", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, tc.secret)
			p := f.provider(t, nil)
			code, verifier, nonce := signIn(t, f, p)
			id, err := p.Exchange(context.Background(), code, verifier, nonce)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if id.IDToken == "" || id.Expiry.Before(time.Now()) {
				t.Errorf("IDToken %q, Expiry %v: want a token and a future expiry", id.IDToken, id.Expiry)
			}
			id.IDToken, id.Expiry = "", time.Time{}
			want := &Identity{
				User: "user-1", Subject: "user-1", Email: "ada@example.com", EmailVerified: true,
				PreferredUsername: "ada", Groups: []string{"staff", "admins"}, SID: "idp-session-1",
				AccessToken: "at-1", RefreshToken: "rt-next",
			}
			if !reflect.DeepEqual(id, want) {
				t.Errorf("Identity = %+v, want %+v", id, want)
			}
			f.set(func(f *testIdP) {
				if f.lastBasic != tc.basic {
					t.Errorf("client authenticated with HTTP Basic: %t, want %t", f.lastBasic, tc.basic)
				}
				if got := f.lastForm.Get("code_verifier"); got != verifier {
					t.Errorf("code_verifier = %q, want %q", got, verifier)
				}
				if tc.secret == "" && f.lastForm.Get("client_id") != f.clientID {
					t.Errorf("public client sent client_id %q", f.lastForm.Get("client_id"))
				}
				if got := f.lastForm.Get("redirect_uri"); got != "https://app.example.com/oauth2/callback" {
					t.Errorf("redirect_uri = %q", got)
				}
			})
		})
	}
}

func TestExchangeRejected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *testIdP)
		edit  func(code, verifier, nonce *string)
	}{
		{"unknown code", nil, func(code, _, _ *string) { *code = "made-up" }},
		{"wrong verifier", nil, func(_, verifier, _ *string) { *verifier += "x" }},
		{"nonce of another sign-in", nil, func(_, _, nonce *string) { *nonce = "another-nonce" }},
		{"empty nonce expected", func(f *testIdP) { f.tweak = func(c map[string]any) { c["nonce"] = "" } }, func(_, _, nonce *string) { *nonce = "" }},
		{"no nonce in token", func(f *testIdP) { f.tweak = func(c map[string]any) { delete(c, "nonce") } }, nil},
		{"wrong audience", func(f *testIdP) { f.tweak = func(c map[string]any) { c["aud"] = "other" } }, nil},
		{"wrong issuer", func(f *testIdP) { f.tweak = func(c map[string]any) { c["iss"] = "https://evil.example" } }, nil},
		{"expired", func(f *testIdP) {
			f.tweak = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }
		}, nil},
		{"other signing key", func(f *testIdP) { f.signKey = testECKey(f.t) }, nil},
		{"HS256 with a shared secret", func(f *testIdP) {
			f.response = func(b map[string]any) {
				b["id_token"] = signTestJWT(f.t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat("k", 32))},
					map[string]any{"iss": f.srv.URL, "aud": f.clientID, "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
			}
		}, nil},
		{"alg none", func(f *testIdP) {
			f.response = func(b map[string]any) {
				parts := strings.Split(b["id_token"].(string), ".")
				b["id_token"] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
			}
		}, nil},
		{"no ID token", func(f *testIdP) { f.response = func(b map[string]any) { delete(b, "id_token") } }, nil},
		{"no user claim", func(f *testIdP) { f.tweak = func(c map[string]any) { delete(c, "sub") } }, nil},
		{"at_hash of another access token", func(f *testIdP) {
			f.tweak = func(c map[string]any) { c["at_hash"] = testAtHash("another-access-token") }
		}, nil},
		{"token endpoint says 400", func(f *testIdP) { f.tokenStatus = http.StatusBadRequest }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			p := f.provider(t, nil)
			if tc.setup != nil {
				f.set(tc.setup)
			}
			code, verifier, nonce := signIn(t, f, p)
			if tc.edit != nil {
				tc.edit(&code, &verifier, &nonce)
			}
			id, err := p.Exchange(context.Background(), code, verifier, nonce)
			if !errors.Is(err, ErrRejected) || id != nil {
				t.Errorf("Exchange = %+v, %v; want ErrRejected", id, err)
			}
		})
	}
}

func TestExchangeAcceptsMatchingAtHash(t *testing.T) {
	f := newTestIdP(t, "secret")
	f.set(func(f *testIdP) { f.tweak = func(c map[string]any) { c["at_hash"] = testAtHash("at-1") } })
	p := f.provider(t, nil)
	code, verifier, nonce := signIn(t, f, p)
	if _, err := p.Exchange(context.Background(), code, verifier, nonce); err != nil {
		t.Errorf("Exchange with a matching at_hash: %v", err)
	}
}

func TestExchangeUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *testIdP)
	}{
		{"token endpoint fails", func(f *testIdP) { f.tokenStatus = http.StatusInternalServerError }},
		{"token endpoint unavailable", func(f *testIdP) { f.tokenStatus = http.StatusServiceUnavailable }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			p := f.provider(t, nil)
			f.set(tc.setup)
			code, verifier, nonce := signIn(t, f, p)
			_, err := p.Exchange(context.Background(), code, verifier, nonce)
			if err == nil || errors.Is(err, ErrRejected) {
				t.Errorf("Exchange: %v; want an error that is not ErrRejected", err)
			}
		})
	}
}

func TestExchangeClaimNames(t *testing.T) {
	f := newTestIdP(t, "secret")
	f.set(func(f *testIdP) {
		f.tweak = func(c map[string]any) {
			c["realm_access"] = map[string]any{"roles": []any{"reader", "writer"}}
		}
	})
	p := f.provider(t, func(c *OIDCConfig) { c.UserClaim, c.GroupsClaim = "email", "realm_access.roles" })
	code, verifier, nonce := signIn(t, f, p)
	id, err := p.Exchange(context.Background(), code, verifier, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "ada@example.com" || id.Subject != "user-1" || !reflect.DeepEqual(id.Groups, []string{"reader", "writer"}) {
		t.Errorf("User %q Subject %q Groups %q, want ada@example.com, user-1, [reader writer]", id.User, id.Subject, id.Groups)
	}
}

func TestExchangeUserinfoFallback(t *testing.T) {
	for _, tc := range []struct {
		name      string
		userinfo  map[string]any
		wantEmail string
	}{
		{"same subject", map[string]any{"sub": "user-1", "email": "from-userinfo@example.com", "sub_extra": "x"}, "from-userinfo@example.com"},
		{"other subject", map[string]any{"sub": "user-2", "email": "someone-else@example.com"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			f.set(func(f *testIdP) {
				f.userinfo = tc.userinfo
				f.tweak = func(c map[string]any) { delete(c, "email") }
			})
			p := f.provider(t, nil)
			code, verifier, nonce := signIn(t, f, p)
			id, err := p.Exchange(context.Background(), code, verifier, nonce)
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != tc.wantEmail || id.User != "user-1" {
				t.Errorf("Email %q User %q, want %q and user-1", id.Email, id.User, tc.wantEmail)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	t.Run("with a new ID token", func(t *testing.T) {
		f := newTestIdP(t, "secret")
		p := f.provider(t, nil)
		id, err := p.Refresh(context.Background(), "rt-good")
		if err != nil {
			t.Fatal(err)
		}
		if id.User != "user-1" || id.Email != "ada@example.com" || id.AccessToken != "at-1" || id.RefreshToken != "rt-next" {
			t.Errorf("Identity = %+v", id)
		}
	})
	t.Run("without an ID token", func(t *testing.T) {
		f := newTestIdP(t, "secret")
		f.set(func(f *testIdP) { f.response = func(b map[string]any) { delete(b, "id_token") } })
		id, err := f.provider(t, nil).Refresh(context.Background(), "rt-good")
		if err != nil {
			t.Fatal(err)
		}
		if id.User != "" || id.AccessToken != "at-1" || id.RefreshToken != "rt-next" || id.Expiry.IsZero() {
			t.Errorf("Identity = %+v, want only the new tokens", id)
		}
	})
	t.Run("refresh token refused", func(t *testing.T) {
		f := newTestIdP(t, "secret")
		if _, err := f.provider(t, nil).Refresh(context.Background(), "rt-revoked"); !errors.Is(err, ErrRejected) {
			t.Errorf("Refresh: %v, want ErrRejected", err)
		}
	})
	t.Run("new ID token from another key", func(t *testing.T) {
		f := newTestIdP(t, "secret")
		p := f.provider(t, nil)
		f.set(func(f *testIdP) { f.signKey = testECKey(f.t) })
		if _, err := p.Refresh(context.Background(), "rt-good"); !errors.Is(err, ErrRejected) {
			t.Errorf("Refresh: %v, want ErrRejected", err)
		}
	})
}

func TestErrorsDoNotCarryTokens(t *testing.T) {
	const secret = "s3cr3t-client-value"
	f := newTestIdP(t, secret)
	p := f.provider(t, nil)
	f.set(func(f *testIdP) { f.tweak = func(c map[string]any) { c["aud"] = "other" } })
	code, verifier, nonce := signIn(t, f, p)
	_, err := p.Exchange(context.Background(), code, verifier, nonce)
	if err == nil {
		t.Fatal("Exchange accepted a token for another audience")
	}
	for what, s := range map[string]string{"code": code, "verifier": verifier, "client secret": secret, "access token": "at-1"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains the %s", err, what)
		}
	}
}
