package providers

// Checks that go-oidc and x/oauth2 leave to their caller, against the
// deliberately hostile OP of internal/hostileop (real wire formats, answers
// bent by each test). authproxy/conformance_test.go drives the same OP
// through the whole handler chain.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/hostileop"
)

// hostileProvider returns a provider discovered at op; edit changes its
// configuration first.
func hostileProvider(t *testing.T, op *hostileop.OP, edit func(c *OIDCConfig)) *OIDC {
	t.Helper()
	cfg := OIDCConfig{
		IssuerURL: op.URL(), ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		RedirectURL: "https://app.example.com/oauth2/callback", Scopes: []string{"openid", "email"},
	}
	if edit != nil {
		edit(&cfg)
	}
	p := NewOIDC(cfg)
	if err := p.Discover(t.Context()); err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return p
}

// hostileSignIn sends the browser to op's authorization endpoint and returns
// the authorization response's parameters, with the verifier and nonce the
// sign-in used.
func hostileSignIn(t *testing.T, p *OIDC) (resp url.Values, verifier, nonce string) {
	t.Helper()
	verifier, nonce = "verifier-"+strings.Repeat("v", 40), "nonce-"+strings.Repeat("n", 20)
	authURL, err := p.AuthCodeURL("state-"+strings.Repeat("s", 20), nonce, verifier)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	loc, err := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorization endpoint: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	return loc.Query(), verifier, nonce
}

// The token endpoint is asked once per code, authenticated as discovery's
// token_endpoint_auth_methods_supported allows. x/oauth2, left to guess,
// tries HTTP Basic and on any failure sends the same code again in the form.
func TestTokenEndpointAuthFromDiscovery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		methods   []string // advertised; nil: not advertised
		accepted  []string
		wantBasic bool
		refuse    bool // the code is refused with invalid_grant
	}{
		{"rp-token_endpoint-client_secret_basic", []string{"client_secret_basic"}, []string{"client_secret_basic"}, true, false},
		{"client_secret_post only", []string{"client_secret_post"}, []string{"client_secret_post"}, false, false},
		{"post and an unsupported method", []string{"private_key_jwt", "client_secret_post"}, []string{"client_secret_post"}, false, false},
		{"not advertised means basic", nil, []string{"client_secret_basic"}, true, false},
		{"both, basic preferred", []string{"client_secret_post", "client_secret_basic"}, nil, true, false},
		{"invalid_grant asked once", []string{"client_secret_post", "client_secret_basic"}, nil, true, true},
		{"invalid_grant asked once, post only", []string{"client_secret_post"}, []string{"client_secret_post"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := hostileop.New(t, "client-1", "secret-1")
			op.Set(func(b *hostileop.Behaviour) {
				b.Discovery = func(doc map[string]any) {
					doc["token_endpoint_auth_methods_supported"] = tc.methods
					if tc.methods == nil {
						delete(doc, "token_endpoint_auth_methods_supported")
					}
				}
				b.TokenAuth = tc.accepted
			})
			p := hostileProvider(t, op, nil)
			resp, verifier, nonce := hostileSignIn(t, p)
			code := resp.Get("code")
			if tc.refuse {
				code = "made-up"
			}
			_, err := p.Exchange(t.Context(), code, verifier, nonce)
			switch {
			case tc.refuse && !errors.Is(err, ErrRejected):
				t.Errorf("Exchange of a refused code: %v, want ErrRejected", err)
			case !tc.refuse && err != nil:
				t.Errorf("Exchange: %v", err)
			}
			calls := op.Calls("/token")
			if len(calls) != 1 {
				t.Fatalf("%d token requests, want 1", len(calls))
			}
			if calls[0].Basic != tc.wantBasic || calls[0].Form.Has("client_secret") == tc.wantBasic {
				t.Errorf("token request: Basic %t, client_secret in the form %t; want Basic %t", calls[0].Basic, calls[0].Form.Has("client_secret"), tc.wantBasic)
			}
		})
	}
}

func TestCheckAuthResponse(t *testing.T) {
	for _, tc := range []struct {
		name       string
		advertised bool
		iss        func(issuer string) (string, bool) // the response's iss, and whether it has one
		ok         bool
	}{
		{"advertised, iss is the issuer", true, func(i string) (string, bool) { return i, true }, true},
		{"advertised, trailing slash", true, func(i string) (string, bool) { return i + "/", true }, false},
		{"advertised, other case", true, func(i string) (string, bool) { return strings.ToUpper(i), true }, false},
		{"advertised, another issuer", true, func(string) (string, bool) { return "https://evil.example", true }, false},
		{"advertised, empty iss", true, func(string) (string, bool) { return "", true }, false},
		{"advertised, no iss", true, func(string) (string, bool) { return "", false }, false},
		{"not advertised, no iss", false, func(string) (string, bool) { return "", false }, true},
		{"not advertised, iss is the issuer", false, func(i string) (string, bool) { return i, true }, true},
		{"not advertised, another issuer", false, func(string) (string, bool) { return "https://evil.example", true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := hostileop.New(t, "client-1", "secret-1")
			op.Set(func(b *hostileop.Behaviour) {
				b.Discovery = func(doc map[string]any) { doc["authorization_response_iss_parameter_supported"] = tc.advertised }
			})
			p := hostileProvider(t, op, nil)
			params := url.Values{"code": {"c"}, "state": {"s"}}
			if iss, has := tc.iss(op.URL()); has {
				params.Set("iss", iss)
			}
			err := p.CheckAuthResponse(params)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrRejected) {
				t.Errorf("CheckAuthResponse(%v) = %v, want ok %t", params, err, tc.ok)
			}
		})
	}
	t.Run("before discovery", func(t *testing.T) {
		if err := NewOIDC(OIDCConfig{IssuerURL: "http://127.0.0.1:1"}).CheckAuthResponse(url.Values{}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("CheckAuthResponse = %v, want ErrUnavailable", err)
		}
	})
}

// OpenID Connect Core 3.1.3.7 and 2: what go-oidc's verifier does not check.
func TestIDTokenClaimsGoOIDCLeaves(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(c map[string]any)
		valid bool
	}{
		{"no sub", func(c map[string]any) { delete(c, "sub") }, false},
		{"no iat", func(c map[string]any) { delete(c, "iat") }, false},
		{"several audiences, no azp", func(c map[string]any) { c["aud"] = []string{"client-1", "other"} }, false},
		{"several audiences, azp another client", func(c map[string]any) { c["aud"] = []string{"client-1", "other"}; c["azp"] = "other" }, false},
		{"one audience, azp another client", func(c map[string]any) { c["azp"] = "other" }, false},
		{"several audiences, azp this client", func(c map[string]any) { c["aud"] = []string{"client-1", "other"}; c["azp"] = "client-1" }, true},
		{"one audience as a list, no azp", func(c map[string]any) { c["aud"] = []string{"client-1"} }, true},
		{"one audience, azp this client", func(c map[string]any) { c["azp"] = "client-1" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := hostileop.New(t, "client-1", "secret-1")
			op.Set(func(b *hostileop.Behaviour) { b.Claims = tc.edit })
			// The user claim is email, so that the missing sub is not
			// caught as a missing user instead.
			p := hostileProvider(t, op, func(c *OIDCConfig) { c.UserClaim = "email" })
			resp, verifier, nonce := hostileSignIn(t, p)
			id, err := p.Exchange(t.Context(), resp.Get("code"), verifier, nonce)
			if tc.valid && err != nil || !tc.valid && (!errors.Is(err, ErrRejected) || id != nil) {
				t.Errorf("Exchange = %+v, %v; want valid %t", id, err, tc.valid)
			}
			if !tc.valid && len(op.Calls("/userinfo")) != 0 {
				t.Errorf("userinfo was asked after a bad ID token")
			}
		})
	}
	t.Run("refreshed ID token without iat", func(t *testing.T) {
		op := hostileop.New(t, "client-1", "secret-1")
		p := hostileProvider(t, op, nil)
		resp, verifier, nonce := hostileSignIn(t, p)
		id, err := p.Exchange(t.Context(), resp.Get("code"), verifier, nonce)
		if err != nil {
			t.Fatal(err)
		}
		op.Set(func(b *hostileop.Behaviour) { b.RefreshClaims = func(c map[string]any) { delete(c, "iat") } })
		if _, err := p.Refresh(t.Context(), id.RefreshToken); !errors.Is(err, ErrRejected) {
			t.Errorf("Refresh = %v, want ErrRejected", err)
		}
	})
}

// An IdP that fails is told apart from an answer that fails a check, and
// how it failed decides authproxy's status: ErrTimeout, ErrBadResponse, or
// ErrUnavailable. Nothing past MaxResponseBytes is read.
func TestIdPFailures(t *testing.T) {
	huge := func(withLength bool) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			const size = 20 << 20
			w.Header().Set("Content-Type", "application/json")
			if withLength {
				w.Header().Set("Content-Length", fmt.Sprint(size))
			}
			chunk := strings.Repeat(" ", 64<<10)
			io.WriteString(w, `{"access_token":"at","token_type":"Bearer","pad":"`)
			for n := 64; n < size-2; n += len(chunk) {
				if _, err := io.WriteString(w, chunk[:min(len(chunk), size-2-n)]); err != nil {
					return // the client stopped reading
				}
			}
			io.WriteString(w, `"}`)
		}
	}
	for _, tc := range []struct {
		name  string
		token http.HandlerFunc
		want  error
	}{
		{"20 MiB answer, chunked", huge(false), ErrBadResponse},
		{"20 MiB answer, with Content-Length", huge(true), ErrBadResponse},
		{"never answers", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, ErrTimeout},
		{"server error", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"server_error"}`)
		}, ErrUnavailable},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `<html>maintenance</html>`)
		}, ErrBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := hostileop.New(t, "client-1", "secret-1")
			p := hostileProvider(t, op, func(c *OIDCConfig) { c.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond} })
			op.Set(func(b *hostileop.Behaviour) { b.Token = tc.token })
			resp, verifier, nonce := hostileSignIn(t, p)
			_, err := p.Exchange(t.Context(), resp.Get("code"), verifier, nonce)
			if !errors.Is(err, tc.want) || errors.Is(err, ErrRejected) {
				t.Errorf("Exchange: %v, want %v", err, tc.want)
			}
			if n := len(op.Calls("/token")); n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		op := hostileop.New(t, "client-1", "secret-1")
		p := hostileProvider(t, op, nil)
		resp, verifier, nonce := hostileSignIn(t, p)
		op.Close()
		_, err := p.Exchange(t.Context(), resp.Get("code"), verifier, nonce)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrBadResponse) {
			t.Errorf("Exchange: %v, want ErrUnavailable only", err)
		}
	})
	// go-oidc reads discovery, keys and userinfo whole: the client bounds them.
	t.Run("20 MiB discovery document", func(t *testing.T) {
		op := hostileop.New(t, "client-1", "secret-1")
		op.Set(func(b *hostileop.Behaviour) {
			b.Discovery = func(doc map[string]any) { doc["pad"] = strings.Repeat("x", 20<<20) }
		})
		err := NewOIDC(OIDCConfig{IssuerURL: op.URL(), ClientID: "client-1"}).Discover(t.Context())
		// go-oidc keeps only the message of the read error (%v).
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "more than 1048576 bytes") {
			t.Errorf("Discover: %v, want ErrUnavailable for the size", err)
		}
	})
	t.Run("20 MiB userinfo", func(t *testing.T) {
		op := hostileop.New(t, "client-1", "secret-1")
		op.Set(func(b *hostileop.Behaviour) {
			b.Claims = func(c map[string]any) { delete(c, "email") }
			b.Userinfo = func(c map[string]any) { c["pad"] = strings.Repeat("x", 20<<20) }
		})
		p := hostileProvider(t, op, nil)
		resp, verifier, nonce := hostileSignIn(t, p)
		id, err := p.Exchange(t.Context(), resp.Get("code"), verifier, nonce)
		if err != nil || id.Email != "" {
			t.Errorf("Exchange = %+v, %v; want the identity without userinfo's email", id, err)
		}
	})
}

func TestLimitedBody(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{{0, true}, {MaxResponseBytes, true}, {MaxResponseBytes + 1, false}} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			b := &limitedBody{ReadCloser: io.NopCloser(strings.NewReader(strings.Repeat("a", tc.size))), left: MaxResponseBytes}
			got, err := io.ReadAll(b)
			if tc.ok && (err != nil || len(got) != tc.size) || !tc.ok && !errors.Is(err, ErrBadResponse) {
				t.Errorf("read %d bytes, %v; want ok %t", len(got), err, tc.ok)
			}
		})
	}
}

// With other IdPs on the same redirect URL, discovery warns about an IdP
// that does not send iss (RFC 9207): nothing else could tell its
// authorization responses from a mix-up by another IdP.
func TestSharedRedirectWarnsWithoutIss(t *testing.T) {
	for _, tc := range []struct {
		name               string
		shared, advertised bool
		warn               bool
	}{
		{"shared, no iss", true, false, true},
		{"shared, iss advertised", true, true, false},
		{"alone, no iss", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := hostileop.New(t, "client-1", "secret-1")
			op.Set(func(b *hostileop.Behaviour) {
				b.Discovery = func(doc map[string]any) { doc["authorization_response_iss_parameter_supported"] = tc.advertised }
			})
			var logs strings.Builder
			hostileProvider(t, op, func(c *OIDCConfig) {
				c.SharedRedirect = tc.shared
				c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			if got := strings.Contains(logs.String(), `"event":"mixup_undetectable"`); got != tc.warn {
				t.Errorf("warned %t, want %t; log:\n%s", got, tc.warn, logs.String())
			}
		})
	}
}
