package authproxy

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBearerTokens authenticates API clients by JWT access tokens from the
// IdP, and refuses every token that is not one, with a 401 and no redirect.
func TestBearerTokens(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	now := time.Now()
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": e.idp.URL(), "aud": "authproxy-test", "sub": "api-client-7", "email": "robot@example.com",
			"email_verified": true, "groups": []string{"robots"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		if change != nil {
			change(c)
		}
		return c
	}
	good := e.idp.sign(claims(nil))
	tests := []struct {
		name       string
		auth       string
		wantStatus int
	}{
		{"valid token", "Bearer " + good, http.StatusOK},
		{"scheme in lower case", "bearer " + good, http.StatusOK},
		{"wrong audience", "Bearer " + e.idp.sign(claims(func(c map[string]any) { c["aud"] = "someone-else" })), http.StatusUnauthorized},
		{"expired", "Bearer " + e.idp.sign(claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), http.StatusUnauthorized},
		{"other issuer", "Bearer " + e.idp.sign(claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), http.StatusUnauthorized},
		{"unverified email", "Bearer " + e.idp.sign(claims(func(c map[string]any) { c["email_verified"] = false })), http.StatusUnauthorized},
		{"tampered payload", "Bearer " + tamper(good), http.StatusUnauthorized},
		{"not a JWT", "Bearer opaque-token-123", http.StatusUnauthorized},
		{"empty", "Bearer ", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.request(t, noFollow(e.browser()), http.MethodGet, "/api/things", "Authorization", tt.auth, "Accept", "text/html")
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %.200s", r.Status, tt.wantStatus, r.Body)
			}
			if tt.wantStatus == http.StatusUnauthorized {
				if !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") && tt.auth != "Bearer " {
					t.Errorf("WWW-Authenticate = %q, want invalid_token", r.Header.Get("WWW-Authenticate"))
				}
				if r.Header.Get("Location") != "" {
					t.Errorf("an API client was redirected to %q", r.Header.Get("Location"))
				}
				return
			}
			up := fromUpstream(t, r)
			if up.Header.Get(headerUser) != "api-client-7" || up.Header.Get(headerEmail) != "robot@example.com" || up.Header.Get(headerGroups) != "robots" {
				t.Errorf("upstream identity = %q %q %q", up.Header.Get(headerUser), up.Header.Get(headerEmail), up.Header.Get(headerGroups))
			}
		})
	}
}

// TestAuthorizationHeaderOnlyWhereNoSessionIsNeeded: a non-bearer
// Authorization header is passed untouched on public routes and removed
// where a session is required.
func TestAuthorizationHeaderOnlyWhereNoSessionIsNeeded(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	basic := "Basic YWRhOnNlY3JldA=="
	pub := fromUpstream(t, e.request(t, e.browser(), http.MethodGet, "/public/x", "Authorization", basic))
	if got := pub.Header.Get("Authorization"); got != basic {
		t.Errorf("public route: upstream Authorization = %q, want it untouched", got)
	}
	prot := fromUpstream(t, e.request(t, noFollow(e.browser()), http.MethodGet, "/app",
		"Authorization", basic, "Cookie", e.mintSession(t, testSession()), "Accept", "application/json"))
	if got := prot.Header.Get("Authorization"); got != "" {
		t.Errorf("protected route: upstream Authorization = %q, want it removed", got)
	}
}

func tamper(jwt string) string {
	parts := strings.Split(jwt, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	return parts[0] + "." + string(p) + "." + parts[2]
}
