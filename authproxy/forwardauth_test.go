package authproxy

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

const testPolicy = `rules:
  - path: /health
    methods: [GET]
    allow: public
  - path: /assets/
    allow: public
  - path: /admin/
    allow: {groups: [admins]}
  - path: /
    allow: authenticated
`

func writePolicy(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(f, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestForwardAuthAppliesPolicyToOriginalRequest is /oauth2/auth as nginx
// and Traefik call it: the original method and URI come from a trusted
// proxy's headers, and the policy decides on them.
func TestForwardAuthAppliesPolicyToOriginalRequest(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_POLICY_FILE", writePolicy(t)), withVar("AUTHPROXY_TRUSTED_PROXIES", "127.0.0.1/32, ::1"))
	staff := testSession()
	staff.Groups = []string{"staff"}
	admin := testSession()
	admin.ID, admin.Groups = "sess-admin", []string{"admins"}
	staffCookie, adminCookie := e.mintSession(t, staff), e.mintSession(t, admin)

	tests := []struct {
		name    string
		cookie  string
		headers []string
		want    int
	}{
		{"public path, nginx header", "", []string{"X-Original-URI", "/health"}, 202},
		{"public path, other method", "", []string{"X-Original-URI", "/health", "X-Original-Method", "POST"}, 401},
		{"protected, no session", "", []string{"X-Forwarded-Uri", "/reports"}, 401},
		{"protected, signed in", staffCookie, []string{"X-Forwarded-Uri", "/reports?q=1"}, 202},
		{"admin path, staff", staffCookie, []string{"X-Forwarded-Uri", "/admin/users"}, 403},
		{"admin path, admin", adminCookie, []string{"X-Forwarded-Uri", "/admin/users"}, 202},
		{"dot-segment trick", staffCookie, []string{"X-Forwarded-Uri", "/assets/../admin/users"}, 403},
		{"encoded dot-segment trick", "", []string{"X-Forwarded-Uri", "/assets/%2e%2e/admin/users"}, 403},
		{"semicolon trick", "", []string{"X-Forwarded-Uri", "/assets/..;/admin/users"}, 403},
		{"lower-case method", staffCookie, []string{"X-Forwarded-Uri", "/admin/users", "X-Forwarded-Method", "get"}, 403},
		{"no original URI: session only", staffCookie, nil, 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := append([]string{"Accept", "application/json"}, tt.headers...)
			if tt.cookie != "" {
				h = append(h, "Cookie", tt.cookie)
			}
			r := e.request(t, noFollow(e.browser()), http.MethodGet, authPath, h...)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d; body %s", r.Status, tt.want, r.Body)
			}
			if r.Status == 202 && tt.cookie != "" && r.Header.Get("X-Auth-Request-Email") != staff.Email {
				t.Errorf("X-Auth-Request-Email = %q", r.Header.Get("X-Auth-Request-Email"))
			}
		})
	}
}

// TestForwardAuthIgnoresUntrustedOriginalURI: without AUTHPROXY_TRUSTED_PROXIES
// a client cannot pick the URI the policy is applied to.
func TestForwardAuthIgnoresUntrustedOriginalURI(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_POLICY_FILE", writePolicy(t)))
	r := e.request(t, noFollow(e.browser()), http.MethodGet, authPath, "X-Original-URI", "/health", "Accept", "application/json")
	if r.Status != http.StatusUnauthorized {
		t.Errorf("untrusted X-Original-URI /health: status %d, want 401 (the claim is ignored)", r.Status)
	}
}

// TestPolicyOnProxiedRequests checks the same policy on the reverse proxy.
func TestPolicyOnProxiedRequests(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_POLICY_FILE", writePolicy(t)))
	staff := testSession()
	staff.Groups = []string{"staff"}
	cookie := e.mintSession(t, staff)
	tests := []struct {
		name, method, target, cookie string
		want                         int
	}{
		{"public", "GET", "/health", "", 200},
		{"public asset", "GET", "/assets/app.css", "", 200},
		{"signed in reads /", "GET", "/reports", cookie, 200},
		{"staff at /admin/", "GET", "/admin/users", cookie, 403},
		{"no session at /admin/", "GET", "/admin/users", "", 401},
		{"climb out of assets", "GET", "/assets/../admin/users", "", 400},
		{"encoded climb", "GET", "/assets/%2e%2e/admin/users", "", 400},
		{"double slash", "GET", "//assets/../admin/users", "", 400},
		{"lower-case method", "get", "/admin/users", cookie, 400},
		{"WebDAV method reaches the app", "PROPFIND", "/reports", cookie, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.method + " " + tt.target + " HTTP/1.1\r\nHost: app\r\nAccept: application/json\r\nConnection: close\r\n"
			if tt.cookie != "" {
				req += "Cookie: " + tt.cookie + "\r\n"
			}
			r := rawHTTP(t, e.addr(), req+"\r\n")
			if r.Status != tt.want {
				t.Errorf("status %d, want %d; body %.200s", r.Status, tt.want, r.Body)
			}
		})
	}
}

// TestForwardAuthNamesTheSessionsIdP: forward-auth's 202 says which IdP the
// session is of in X-Auth-Request-Idp, for the default IdP's session and a
// partner's alike, on a route that accepts both and with no original URI.
func TestForwardAuthNamesTheSessionsIdP(t *testing.T) {
	e := newMultiEnv(t, withVar("AUTHPROXY_TRUSTED_PROXIES", "127.0.0.1/32, ::1"))
	for _, idp := range []string{"default", "partners"} {
		sess := testSession()
		sess.ID, sess.IdP = "sess-"+idp, e.srv.idps.sessionName(e.srv.idps.get(idp))
		cookie := e.mintSession(t, sess)
		for _, headers := range [][]string{{"X-Forwarded-Uri", "/portal/x"}, nil} {
			r := e.request(t, e.browser(), http.MethodGet, authPath, append([]string{"Cookie", cookie}, headers...)...)
			if got := r.Header.Get("X-Auth-Request-Idp"); r.Status != http.StatusAccepted || got != idp {
				t.Errorf("%s session, headers %q: %d with X-Auth-Request-Idp %q; want 202 and %q", idp, headers, r.Status, got, idp)
			}
		}
	}
}
