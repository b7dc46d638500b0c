package authproxy

// Conformance against a hostile OpenID provider: every row of
// CONFORMANCE.md, named after its OpenID Foundation certification id (or
// the RFC section) and driven through the whole handler chain. The OP is
// internal/hostileop, a deliberately hostile fake speaking the real wire
// formats; it records every call, so each refusal also proves that nothing
// further was asked of it after the bad step.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authproxy/authproxy/internal/hostileop"
)

func newHostileOP(t *testing.T) *hostileop.OP {
	return hostileop.New(t, "conformance-client", hostileClientSecret)
}

func TestConformanceAuthorizationResponse(t *testing.T) {
	t.Run("rp-response_type-code", func(t *testing.T) {
		op := newHostileOP(t)
		e := newHostileEnv(t, op)
		c := e.browser()
		e.accepted(t, c, e.signIn(t, c))
		q := lastCall(t, op, "/authorize").Query
		if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
			q.Get("state") == "" || q.Get("nonce") == "" || !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
			t.Errorf("authorization request %v: want response_type=code, PKCE S256, state, nonce and openid", q)
		}
		if f := lastCall(t, op, "/token").Form; f.Get("code_verifier") == "" || f.Get("grant_type") != "authorization_code" {
			t.Errorf("token request %v: want the authorization_code grant with the PKCE verifier", f)
		}
	})

	for _, tc := range []struct {
		name     string
		advertit bool // authorization_response_iss_parameter_supported
		edit     func(op *hostileop.OP) func(q url.Values)
	}{
		{"rfc9700-4.7-state-other", true, func(*hostileop.OP) func(q url.Values) {
			return func(q url.Values) { q["state"] = []string{"another-sign-ins-state-0123456789"} }
		}},
		{"rfc9700-4.7-state-missing", true, func(*hostileop.OP) func(q url.Values) {
			return func(q url.Values) { delete(q, "state") }
		}},
		{"rfc9207-2.4-iss-trailing-slash", true, func(op *hostileop.OP) func(q url.Values) {
			return func(q url.Values) { q["iss"] = []string{op.URL() + "/"} }
		}},
		{"rfc9207-2.4-iss-case", true, func(op *hostileop.OP) func(q url.Values) {
			return func(q url.Values) { q["iss"] = []string{strings.ToUpper(op.URL())} }
		}},
		{"rfc9207-2.4-iss-other-op", true, func(*hostileop.OP) func(q url.Values) {
			return func(q url.Values) { q["iss"] = []string{"https://attacker.example"} }
		}},
		{"rfc9207-2.4-iss-missing", true, func(*hostileop.OP) func(q url.Values) {
			return func(q url.Values) { delete(q, "iss") }
		}},
		{"rfc9207-2.4-iss-other-op-not-advertised", false, func(*hostileop.OP) func(q url.Values) {
			return func(q url.Values) { q["iss"] = []string{"https://attacker.example"} }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newHostileOP(t)
			edit := tc.edit(op)
			op.Set(func(b *hostileop.Behaviour) {
				b.Discovery = func(doc map[string]any) { doc["authorization_response_iss_parameter_supported"] = tc.advertit }
				b.AuthResponse = edit
			})
			e := newHostileEnv(t, op)
			c := e.browser()
			e.refused(t, c, e.signIn(t, c), http.StatusBadRequest)
			if n := len(op.Calls("/token")); n != 0 {
				t.Errorf("%d token request(s) after a bad authorization response", n)
			}
		})
	}

	t.Run("rfc9207-2.4-iss-omitted-not-advertised", func(t *testing.T) {
		op := newHostileOP(t)
		op.Set(func(b *hostileop.Behaviour) {
			b.Discovery = func(doc map[string]any) { delete(doc, "authorization_response_iss_parameter_supported") }
			b.AuthResponse = func(q url.Values) { q.Del("iss") }
		})
		e := newHostileEnv(t, op)
		c := e.browser()
		e.accepted(t, c, e.signIn(t, c))
	})

	t.Run("rp-response_mode-form_post-error", func(t *testing.T) {
		op := newHostileOP(t)
		const markup = `<script>alert("x")</script><img src=x onerror=alert(1)>`
		op.Set(func(b *hostileop.Behaviour) {
			b.AuthResponse = func(q url.Values) {
				q.Del("code")
				q.Set("error", "access_denied")
				q.Set("error_description", markup)
			}
		})
		e := newHostileEnv(t, op)
		c := e.browser()
		r := e.signIn(t, c)
		e.refused(t, c, r, http.StatusBadRequest)
		if strings.Contains(r.Body, "<script>alert") || strings.Contains(r.Body, "<img src=x") || !strings.Contains(r.Body, "access_denied") {
			t.Errorf("error page does not show the IdP's error escaped: %.600s", r.Body)
		}
		if n := len(op.Calls("/token")); n != 0 {
			t.Errorf("%d token request(s) after an error response", n)
		}
	})

	for _, tc := range []struct {
		name    string
		methods []string
	}{
		{"rfc9700-2.1.1-pkce-plain-only", []string{"plain"}},
		{"rfc9700-2.1.1-pkce-not-advertised", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newHostileOP(t)
			op.Set(func(b *hostileop.Behaviour) {
				b.Discovery = func(doc map[string]any) {
					doc["code_challenge_methods_supported"] = tc.methods
					if tc.methods == nil {
						delete(doc, "code_challenge_methods_supported")
					}
				}
			})
			e := newHostileEnv(t, op)
			c := e.browser()
			e.accepted(t, c, e.signIn(t, c)) // the OP accepts nothing but S256
			if m := lastCall(t, op, "/authorize").Query.Get("code_challenge_method"); m != "S256" {
				t.Errorf("code_challenge_method = %q, want S256", m)
			}
		})
	}
}

func TestConformanceIDToken(t *testing.T) {
	type row struct {
		name   string
		setup  func(t *testing.T, op *hostileop.OP, b *hostileop.Behaviour)
		accept bool
		// header, when set, is what the ID token's JOSE header must say
		// (alg, and kid "" for none), so that the row tests what it names.
		header map[string]string
	}
	claims := func(edit func(c map[string]any)) func(*testing.T, *hostileop.OP, *hostileop.Behaviour) {
		return func(_ *testing.T, _ *hostileop.OP, b *hostileop.Behaviour) { b.Claims = edit }
	}
	past := time.Now().Add(-time.Hour).Unix()
	for _, tc := range []row{
		{"rp-id_token-issuer-mismatch", func(_ *testing.T, op *hostileop.OP, b *hostileop.Behaviour) {
			b.Claims = func(c map[string]any) { c["iss"] = op.URL() + "/" }
		}, false, nil},
		{"rp-id_token-aud", claims(func(c map[string]any) { c["aud"] = "another-client" }), false, nil},
		{"rp-id_token-aud-missing", claims(func(c map[string]any) { delete(c, "aud") }), false, nil},
		{"core-3.1.3.7-aud-several-no-azp", claims(func(c map[string]any) { c["aud"] = []string{"conformance-client", "another-client"} }), false, nil},
		{"core-3.1.3.7-azp-other", claims(func(c map[string]any) {
			c["aud"] = []string{"conformance-client", "another-client"}
			c["azp"] = "another-client"
		}), false, nil},
		{"core-3.1.3.7-aud-several-azp-this-client", claims(func(c map[string]any) {
			c["aud"] = []string{"conformance-client", "another-client"}
			c["azp"] = "conformance-client"
		}), true, nil},
		{"rp-id_token-sub", claims(func(c map[string]any) { delete(c, "sub") }), false, nil},
		{"rp-id_token-iat", claims(func(c map[string]any) { delete(c, "iat") }), false, nil},
		{"id_token-exp-expired", claims(func(c map[string]any) { c["iat"], c["exp"] = past-60, past }), false, nil},
		{"id_token-exp-missing", claims(func(c map[string]any) { delete(c, "exp") }), false, nil},
		{"rp-nonce-invalid", claims(func(c map[string]any) { c["nonce"] = "another-sign-ins-nonce" }), false, nil},
		{"rp-nonce-missing", claims(func(c map[string]any) { delete(c, "nonce") }), false, nil},
		{"rp-id_token-bad-sig-rs256", func(_ *testing.T, op *hostileop.OP, b *hostileop.Behaviour) {
			b.Sign = func(c map[string]any) string {
				s, _ := op.RSA.Sign(c)
				b := []byte(s)
				i := strings.LastIndex(s, ".") + (len(s)-strings.LastIndex(s, "."))/2
				if b[i] = 'A'; s[i] == 'A' {
					b[i] = 'B'
				}
				return string(b) // one character of the signature changed
			}
		}, false, nil},
		{"rp-id_token-sig-none", func(_ *testing.T, _ *hostileop.OP, b *hostileop.Behaviour) {
			b.Sign = hostileop.Unsigned
		}, false, map[string]string{"alg": "none"}},
		{"id_token-alg-confusion-hs256", func(_ *testing.T, op *hostileop.OP, b *hostileop.Behaviour) {
			b.Discovery = func(doc map[string]any) { doc["id_token_signing_alg_values_supported"] = []string{"RS256"} }
			b.Sign = func(c map[string]any) string {
				s, _ := signHS256([]byte(op.ClientSecret), c)
				return s
			}
		}, false, map[string]string{"alg": "HS256"}},
		{"rp-id_token-kid-absent-single-jwks", func(t *testing.T, _ *hostileop.OP, b *hostileop.Behaviour) {
			k := hostileop.NewRSAKey(t, "")
			b.Published, b.Signer = []*hostileop.Key{k}, k
		}, true, map[string]string{"alg": "RS256", "kid": ""}},
		{"rp-id_token-kid-absent-multiple-jwks", func(t *testing.T, _ *hostileop.OP, b *hostileop.Behaviour) {
			k1, k2, k3 := hostileop.NewRSAKey(t, ""), hostileop.NewRSAKey(t, ""), hostileop.NewECKey(t, "")
			b.Published, b.Signer = []*hostileop.Key{k1, k2, k3}, k2
		}, true, map[string]string{"alg": "RS256", "kid": ""}},
		{"rp-id_token-kid-absent-multiple-jwks-none-verifies", func(t *testing.T, _ *hostileop.OP, b *hostileop.Behaviour) {
			k1, k2 := hostileop.NewRSAKey(t, ""), hostileop.NewRSAKey(t, "")
			b.Published, b.Signer = []*hostileop.Key{k1, k2}, hostileop.NewRSAKey(t, "")
		}, false, map[string]string{"alg": "RS256", "kid": ""}},
		{"jwks-unknown-kty-beside-the-key", func(_ *testing.T, _ *hostileop.OP, b *hostileop.Behaviour) {
			b.ExtraJWKs = []map[string]any{
				{"kty": "OKP", "crv": "X448", "kid": "x448", "x": "mwj3zDG34-Z9ItWuoSEHSic70rg94Jxjzr3ihHSaKsDe8NiRYOsbl2cSV_XoZu2U9ZA6d2l-s9U"},
				{"kty": "made-up", "kid": "unknown", "use": "sig"},
			}
		}, true, nil},
		{"rp-id_token-sig-rs256", func(*testing.T, *hostileop.OP, *hostileop.Behaviour) {}, true, map[string]string{"alg": "RS256", "kid": "rsa-1"}},
		{"rp-id_token-sig-es256", func(_ *testing.T, op *hostileop.OP, b *hostileop.Behaviour) { b.Signer = op.EC }, true, map[string]string{"alg": "ES256", "kid": "ec-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newHostileOP(t)
			op.Set(func(b *hostileop.Behaviour) {
				tc.setup(t, op, b)
				// Without an email in the ID token authproxy asks
				// userinfo for it: a sign-in that gets past the ID token
				// shows as a userinfo call.
				edit := b.Claims
				b.Claims = func(c map[string]any) {
					delete(c, "email")
					if edit != nil {
						edit(c)
					}
				}
			})
			e := newHostileEnv(t, op)
			c := e.browser()
			r := e.signIn(t, c)
			if len(tc.header) > 0 {
				h := jwtHeader(t, op.IDTokens()[0])
				for name, want := range tc.header {
					if got, _ := h[name].(string); got != want {
						t.Fatalf("the OP's ID token has %s %q, want %q", name, got, want)
					}
				}
			}
			if tc.accept {
				e.accepted(t, c, r)
				if n := len(op.Calls("/userinfo")); n != 1 {
					t.Errorf("%d userinfo calls for a good ID token without email, want 1", n)
				}
				return
			}
			e.refused(t, c, r, http.StatusBadRequest)
			if n := len(op.Calls("/userinfo")); n != 0 {
				t.Errorf("%d userinfo call(s) after a bad ID token", n)
			}
			if n := len(op.Calls("/token")); n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
		})
	}

	t.Run("rp-key-rotation-op-sign-key", func(t *testing.T) {
		op := newHostileOP(t)
		e := newHostileEnv(t, op)
		c := e.browser()
		e.accepted(t, c, e.signIn(t, c))
		fetched := len(op.Calls("/jwks"))
		next := hostileop.NewRSAKey(t, "rsa-2")
		op.Set(func(b *hostileop.Behaviour) { b.Published, b.Signer = []*hostileop.Key{next, op.EC}, next })
		c2 := e.browser()
		e.accepted(t, c2, e.signIn(t, c2))
		if kid := jwtHeader(t, op.IDTokens()[1])["kid"]; kid != "rsa-2" {
			t.Fatalf("the second ID token has kid %v, want rsa-2", kid)
		}
		if n := len(op.Calls("/jwks")); n <= fetched {
			t.Errorf("the JWKS was not fetched again for the new kid (%d fetches before, %d after)", fetched, n)
		}
	})
}

// signHS256 signs claims with a shared secret: the alg confusion attack.
func signHS256(secret []byte, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

func TestConformanceDiscovery(t *testing.T) {
	for _, tc := range []struct{ name, issuer string }{
		{"rp-discovery-issuer-not-matching-config", "https://attacker.example"},
		{"rp-discovery-issuer-not-matching-config-trailing-slash", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newHostileOP(t)
			op.Set(func(b *hostileop.Behaviour) {
				b.Discovery = func(doc map[string]any) {
					doc["issuer"] = tc.issuer
					if tc.issuer == "/" {
						doc["issuer"] = op.URL() + "/"
					}
				}
			})
			e := newHostileEnv(t, op)
			if e.discoverErr == nil {
				t.Fatal("discovery succeeded with another issuer")
			}
			c := e.browser()
			ready := e.api(t, c, readyPath)
			// /readyz names what is not ready; why goes to the log only.
			var body struct {
				NotReady []string `json:"not_ready"`
			}
			if ready.Status != http.StatusServiceUnavailable || json.Unmarshal([]byte(ready.Body), &body) != nil ||
				len(body.NotReady) != 1 || body.NotReady[0] != "identity_provider" || strings.Contains(ready.Body, "issuer") {
				t.Errorf("%s: got %d %s, want 503 naming identity_provider and nothing more", readyPath, ready.Status, ready.Body)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "AUTHPROXY_OIDC_ISSUER") {
				t.Errorf("the log does not say the issuers differ:\n%s", logs)
			}
			start := e.navigate(t, noFollow(c), startPath+"?rd=%2Fapp")
			e.errorPage(t, start, http.StatusServiceUnavailable)
			if loc := start.Header.Get("Location"); loc != "" {
				t.Errorf("sign-in sent the browser to %q", loc)
			}
			app := e.navigate(t, noFollow(c), "/app")
			if loc := app.Header.Get("Location"); strings.HasPrefix(loc, op.URL()) || strings.HasPrefix(loc, "https://attacker.example") {
				t.Errorf("/app sent the browser to %q", loc)
			}
			if n := len(op.Calls("/authorize")) + len(op.Calls("/token")); n != 0 {
				t.Errorf("the OP was asked %d authorization or token request(s)", n)
			}
		})
	}

	t.Run("rp-discovery-jwks_uri-keys", func(t *testing.T) {
		op := newHostileOP(t)
		op.Set(func(b *hostileop.Behaviour) { b.JWKSPath = "/o/oauth2/v3/certs.json" })
		e := newHostileEnv(t, op)
		c := e.browser()
		e.accepted(t, c, e.signIn(t, c))
		if len(op.Calls("/o/oauth2/v3/certs.json")) == 0 || len(op.Calls("/jwks")) != 0 {
			t.Errorf("keys fetched at %d discovered and %d guessed URLs, want the discovered one only",
				len(op.Calls("/o/oauth2/v3/certs.json")), len(op.Calls("/jwks")))
		}
	})
}

func TestConformanceTokenEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
	}{
		{"rp-token_endpoint-client_secret_basic", "client_secret_basic"},
		{"rp-token_endpoint-client_secret_post", "client_secret_post"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newHostileOP(t)
			op.Set(func(b *hostileop.Behaviour) {
				b.Discovery = func(doc map[string]any) { doc["token_endpoint_auth_methods_supported"] = []string{tc.method} }
				b.TokenAuth = []string{tc.method}
			})
			e := newHostileEnv(t, op)
			c := e.browser()
			e.accepted(t, c, e.signIn(t, c))
			calls := op.Calls("/token")
			if len(calls) != 1 || calls[0].Basic != (tc.method == "client_secret_basic") {
				t.Errorf("%d token requests (first Basic: %t), want exactly one, with %s", len(calls), len(calls) > 0 && calls[0].Basic, tc.method)
			}
		})
	}

	for _, tc := range []struct {
		name   string
		answer func(b *hostileop.Behaviour)
	}{
		{"token-invalid_grant", func(b *hostileop.Behaviour) {
			b.Token = func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"invalid_grant","error_description":"code expired"}`)
			}
		}},
		{"token-no-id_token", func(b *hostileop.Behaviour) {
			b.TokenResponse = func(body map[string]any) { delete(body, "id_token") }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newHostileOP(t)
			op.Set(tc.answer)
			e := newHostileEnv(t, op)
			c := e.browser()
			e.refused(t, c, e.signIn(t, c), http.StatusBadRequest)
			if n := len(op.Calls("/token")); n != 1 {
				t.Errorf("%d token requests, want 1 (a refused code is not sent again)", n)
			}
			if n := len(op.Calls("/userinfo")); n != 0 {
				t.Errorf("%d userinfo call(s)", n)
			}
		})
	}

	t.Run("token-response-20MiB", func(t *testing.T) {
		op := newHostileOP(t)
		op.Set(func(b *hostileop.Behaviour) { b.Token = hugeTokenAnswer(20 << 20) })
		e := newHostileEnv(t, op)
		c := e.browser()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := e.signIn(t, c)
		runtime.ReadMemStats(&after)
		e.refused(t, c, r, http.StatusBadGateway)
		if n := len(op.Calls("/token")); n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
		// A sign-in allocates a few hundred KiB; reading the answer would
		// take 20 MiB and more.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 12<<20 {
			t.Errorf("the sign-in allocated %d MiB: the 20 MiB answer was read", alloc>>20)
		}
	})

	t.Run("token-never-answers", func(t *testing.T) {
		op := newHostileOP(t)
		e := newHostileEnv(t, op, withHostileVar("AUTHPROXY_IDP_TIMEOUT", "1s"))
		if got := providerConfig(e.cfg, &e.cfg.IdPConfig, nil).HTTPClient.Timeout; got != time.Second {
			t.Fatalf("AUTHPROXY_IDP_TIMEOUT=1s gives the provider a %s timeout", got)
		}
		other := e.browser()
		e.accepted(t, other, e.signIn(t, other)) // signed in before the OP hangs
		arrived, release := make(chan struct{}, 1), make(chan struct{})
		defer close(release)
		op.Set(func(b *hostileop.Behaviour) {
			b.Token = func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}
		})
		c := e.browser()
		type result struct {
			r   reply
			err error
		}
		done := make(chan result, 1)
		go func() { // no t.Fatal off the test's goroutine
			req, err := http.NewRequest(http.MethodGet, e.proxy.URL+startPath+"?rd=%2Fapp", nil)
			if err != nil {
				done <- result{err: err}
				return
			}
			req.Header.Set("Accept", acceptHTML)
			resp, err := c.Do(req)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			done <- result{reply{Status: resp.StatusCode, Header: resp.Header, Body: string(body), URL: resp.Request.URL, Cookies: resp.Cookies()}, err}
		}()
		select {
		case <-arrived:
		case res := <-done:
			t.Fatalf("the sign-in ended (%d, %v) before the token request", res.r.Status, res.err)
		}
		// Meanwhile everyone else is served.
		fromUpstream(t, e.navigate(t, other, "/app"))
		if r := e.api(t, e.browser(), healthPath); r.Status != http.StatusOK {
			t.Errorf("%s during the hang: %d", healthPath, r.Status)
		}
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		e.refused(t, c, res.r, http.StatusGatewayTimeout)
		if n := len(op.Calls("/token")); n != 2 { // the first sign-in's and this one
			t.Errorf("%d token requests, want 2", n)
		}
	})
}

// hugeTokenAnswer answers a token request with a JSON body of size bytes,
// written in chunks (no Content-Length), without holding it in memory.
func hugeTokenAnswer(size int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := strings.Repeat(" ", 64<<10)
		io.WriteString(w, `{"access_token":"at","token_type":"Bearer","pad":"`)
		for n := 0; n < size; n += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return // authproxy stopped reading
			}
		}
		io.WriteString(w, `"}`)
	}
}

func TestConformanceUserinfo(t *testing.T) {
	t.Run("rp-userinfo-bad-sub-claim", func(t *testing.T) {
		op := newHostileOP(t)
		op.Set(func(b *hostileop.Behaviour) {
			b.Claims = func(c map[string]any) { delete(c, "email") }
			b.Userinfo = func(c map[string]any) {
				c["sub"] = "someone-else"
				c["email"] = "mallory@attacker.example"
				c["groups"] = []string{"admins"}
			}
		})
		e := newHostileEnv(t, op)
		c := e.browser()
		echo := e.accepted(t, c, e.signIn(t, c))
		if n := len(op.Calls("/userinfo")); n != 1 {
			t.Fatalf("%d userinfo calls, want 1", n)
		}
		if got := echo.Header.Get("X-Forwarded-Email"); got != "" {
			t.Errorf("X-Forwarded-Email = %q from another subject's userinfo", got)
		}
		if got := echo.Header.Get("X-Forwarded-Groups"); got != "" {
			t.Errorf("X-Forwarded-Groups = %q from another subject's userinfo", got)
		}
	})
}

func TestConformanceRefresh(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(op *hostileop.OP) func(c map[string]any)
		lives bool
	}{
		{"core-12.2-refresh-same-user", func(*hostileop.OP) func(c map[string]any) { return func(map[string]any) {} }, true},
		{"core-12.2-refresh-other-iss", func(op *hostileop.OP) func(c map[string]any) {
			return func(c map[string]any) { c["iss"] = op.URL() + "/other" }
		}, false},
		{"core-12.2-refresh-other-sub", func(*hostileop.OP) func(c map[string]any) {
			return func(c map[string]any) { c["sub"] = "someone-else" }
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newHostileOP(t)
			edit := tc.edit(op)
			op.Set(func(b *hostileop.Behaviour) {
				// Within the refresh margin at once: the next request refreshes.
				b.TokenResponse = func(body map[string]any) { body["expires_in"] = 30 }
				b.RefreshClaims = edit
			})
			e := newHostileEnv(t, op)
			c := e.browser()
			if cb := e.signIn(t, c); cb.Status != http.StatusFound || !e.setsSession(cb.Cookies) {
				t.Fatalf("callback: got %d, want 302 with a session; body: %.300s", cb.Status, cb.Body)
			}
			before := len(e.up.requests())
			r := e.navigate(t, noFollow(c), "/app") // refreshes first
			if n := len(op.Calls("/token")); n != 2 || lastCall(t, op, "/token").Form.Get("grant_type") != "refresh_token" {
				t.Fatalf("%d token requests, want the sign-in's and one refresh", n)
			}
			if tc.lives {
				fromUpstream(t, r)
				return
			}
			if r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), op.URL()+"/authorize?") {
				t.Errorf("/app after a bad refresh: got %d Location %q, want 302 to sign in again", r.Status, r.Header.Get("Location"))
			}
			if n := len(e.up.requests()); n != before {
				t.Errorf("the app was reached after a bad refresh")
			}
			if e.signedIn(t, c) {
				t.Errorf("the session lives on after a refreshed ID token for another %s", strings.TrimPrefix(tc.name, "core-12.2-refresh-other-"))
			}
		})
	}
}

func TestConformanceLogout(t *testing.T) {
	t.Run("rp-init-logout", func(t *testing.T) {
		op := newHostileOP(t)
		e := newHostileEnv(t, op)
		c := e.browser()
		e.accepted(t, c, e.signIn(t, c))
		r := e.navigate(t, noFollow(c), signOutPath)
		loc := parseURL(t, r.Header.Get("Location"))
		q := loc.Query()
		if r.Status != http.StatusFound || loc.Scheme+"://"+loc.Host+loc.Path != op.URL()+"/logout" {
			t.Fatalf("sign-out: got %d Location %q, want 302 to the end-session endpoint", r.Status, loc)
		}
		if got, want := q.Get("id_token_hint"), op.IDTokens()[0]; got != want {
			t.Errorf("id_token_hint = %.40q…, want the session's ID token %.40q…", got, want)
		}
		if got, want := q.Get("post_logout_redirect_uri"), e.cfg.PostLogoutRedirectURL.String(); got != want {
			t.Errorf("post_logout_redirect_uri = %q, want %q", got, want)
		}
		if e.signedIn(t, c) {
			t.Errorf("the session lives on after sign-out")
		}
	})

	const event = "http://schemas.openid.net/event/backchannel-logout"
	for _, tc := range []struct {
		name string
		edit func(c map[string]any)
		sign func(t *testing.T, op *hostileop.OP, c map[string]any) string
		ok   bool
	}{
		{name: "rp-backchannel-rpinitlogout", ok: true},
		{name: "rp-backchannel-rpinitlogout-lt-alg-none", sign: func(_ *testing.T, _ *hostileop.OP, c map[string]any) string {
			return hostileop.Unsigned(c)
		}},
		{name: "rp-backchannel-rpinitlogout-lt-wrong-alg", sign: func(t *testing.T, op *hostileop.OP, c map[string]any) string {
			s, err := signHS256([]byte(op.ClientSecret), c)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{name: "rp-backchannel-rpinitlogout-lt-wrong-aud", edit: func(c map[string]any) { c["aud"] = "another-client" }},
		{name: "rp-backchannel-rpinitlogout-lt-wrong-issuer", edit: func(c map[string]any) { c["iss"] = "https://attacker.example" }},
		{name: "rp-backchannel-rpinitlogout-lt-no-event", edit: func(c map[string]any) { delete(c, "events") }},
		{name: "rp-backchannel-rpinitlogout-lt-wrong-event", edit: func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/another": map[string]any{}}
		}},
		{name: "rp-backchannel-rpinitlogout-lt-with-nonce", edit: func(c map[string]any) { c["nonce"] = "a-nonce" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newHostileOP(t)
			e := newHostileEnv(t, op)
			c := e.browser()
			e.accepted(t, c, e.signIn(t, c))
			now := time.Now()
			claims := map[string]any{
				"iss": op.URL(), "aud": op.ClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
				"jti": fmt.Sprintf("jti-%d", now.UnixNano()), "sid": "op-session-1", "sub": hostileop.Subject,
				"events": map[string]any{event: map[string]any{}},
			}
			if tc.edit != nil {
				tc.edit(claims)
			}
			token := op.SignJWT(claims)
			if tc.sign != nil {
				token = tc.sign(t, op, claims)
			}
			req, err := http.NewRequest(http.MethodPost, e.proxy.URL+backchannelLogoutPath, strings.NewReader("logout_token="+token))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := doRequest(t, noFollow(e.browser()), req)
			want := http.StatusBadRequest
			if tc.ok {
				want = http.StatusOK
			}
			if r.Status != want {
				t.Errorf("back-channel logout: got %d %.200s, want %d", r.Status, r.Body, want)
			}
			if lives := e.signedIn(t, c); lives == tc.ok {
				t.Errorf("after the logout token the session lives: %t, want %t", lives, !tc.ok)
			}
		})
	}
}
