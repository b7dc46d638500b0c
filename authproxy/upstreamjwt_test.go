package authproxy

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestUpstreamJWTVerifiesWithPublishedJWKS plays the upstream: it fetches
// /.well-known/jwks.json and verifies X-Authproxy-Jwt with it, then checks
// that a tampered or client-sent token is refused or never arrives.
func TestUpstreamJWTVerifiesWithPublishedJWKS(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_UPSTREAM_JWT", "true"))
	got := fromUpstream(t, e.request(t, noFollow(e.browser()), http.MethodGet, "/app",
		"Accept", "application/json", "Cookie", e.mintSession(t, testSession()),
		"X-Authproxy-Jwt", "forged.by.client"))
	raw := got.Header.Get(headerUpstreamJWT)
	if raw == "" || raw == "forged.by.client" {
		t.Fatalf("upstream got X-Authproxy-Jwt %q, want authproxy's token", raw)
	}

	jwksReply := e.request(t, e.browser(), http.MethodGet, jwksPath)
	var jwks jose.JSONWebKeySet
	if jwksReply.Status != 200 || json.Unmarshal([]byte(jwksReply.Body), &jwks) != nil || len(jwks.Keys) != 1 {
		t.Fatalf("JWKS: %d %s", jwksReply.Status, jwksReply.Body)
	}

	verify := func(token string) (*identityClaims, error) {
		parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			return nil, err
		}
		var c identityClaims
		if err := parsed.Claims(jwks.Keys[0].Key, &c); err != nil {
			return nil, err
		}
		return &c, c.Claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{e.up.srv.URL}, Time: time.Now()}, 0)
	}
	c, err := verify(raw)
	if err != nil {
		t.Fatalf("verifying the upstream JWT with the published JWKS: %v", err)
	}
	want := testSession()
	if c.Subject != want.User || c.Email != want.Email || strings.Join(c.Groups, ",") != strings.Join(want.Groups, ",") {
		t.Errorf("claims = sub %q email %q groups %q, want %q %q %q", c.Subject, c.Email, c.Groups, want.User, want.Email, want.Groups)
	}
	if life := c.Expiry.Time().Sub(c.IssuedAt.Time()); life <= 0 || life > upstreamJWTLifetime {
		t.Errorf("lifetime %s, want up to %s", life, upstreamJWTLifetime)
	}

	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := strings.Replace(string(payload), want.Email, "mallory@example.com", 1)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tampered)) + "." + parts[2]
	if _, err := verify(forged); err == nil {
		t.Error("a tampered token verified")
	}

	// Without a session (skip-auth route) no token is sent, and a client's is dropped.
	e2 := newTestEnv(t, withVar("AUTHPROXY_UPSTREAM_JWT", "true"), withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	pub := fromUpstream(t, e2.request(t, e2.browser(), http.MethodGet, "/public/x", "x_authproxy_jwt", "forged", "X-Authproxy-Jwt", "forged"))
	for name := range pub.Header {
		if isIdentityHeader(name) {
			t.Errorf("public route: upstream got %s: %q", name, pub.Header[name])
		}
	}
}

// TestUpstreamJWTNeverCrossesIdentities is issue 11's finding 1: two API
// clients whose bearer tokens expire in the same second each get a signed
// identity of their own, never the other's (every bearer "session" has the
// same ID, so a cache keyed by ID and expiry handed out the first one's).
func TestUpstreamJWTNeverCrossesIdentities(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_UPSTREAM_JWT", "true"))
	exp := time.Now().Add(time.Hour).Unix()
	token := func(sub, email string, groups []string) string {
		return e.idp.sign(map[string]any{
			"iss": e.idp.URL(), "aud": "authproxy-test", "sub": sub, "email": email, "email_verified": true,
			"groups": groups, "iat": time.Now().Unix(), "exp": exp,
		})
	}
	clients := []struct{ sub, email, groups string }{
		{"robot-a", "a@example.com", "robots"},
		{"robot-b", "b@example.com", "admins"},
	}
	for round := range 2 { // the second round is served from the cache
		for _, c := range clients {
			r := e.request(t, e.browser(), http.MethodGet, "/api", "Accept", "application/json",
				"Authorization", "Bearer "+token(c.sub, c.email, []string{c.groups}))
			raw := fromUpstream(t, r).Header.Get(headerUpstreamJWT)
			parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatalf("round %d, %s: upstream JWT %q: %v", round, c.sub, raw, err)
			}
			var got identityClaims
			if err := parsed.UnsafeClaimsWithoutVerification(&got); err != nil {
				t.Fatal(err)
			}
			if got.Subject != c.sub || got.Email != c.email || strings.Join(got.Groups, ",") != c.groups {
				t.Errorf("round %d: client %s got the identity sub %q email %q groups %q", round, c.sub, got.Subject, got.Email, got.Groups)
			}
		}
	}
}
