package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWithoutSessionAPIGets401 checks that only a browser navigation is redirected to sign in:
// anything else without a session gets 401 JSON, never a redirect.
func TestWithoutSessionAPIGets401(t *testing.T) {
	requireStack(t)
	const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, tc := range []struct {
		name     string
		method   string
		header   http.Header
		redirect bool // want 302 to Dex rather than 401
	}{
		{"GET without Accept", http.MethodGet, nil, false},
		{"GET Accept JSON", http.MethodGet, http.Header{"Accept": {"application/json"}}, false},
		{"XMLHttpRequest", http.MethodGet, http.Header{"Accept": {"application/json, text/javascript, */*; q=0.01"}, "X-Requested-With": {"XMLHttpRequest"}}, false},
		{"POST from a form", http.MethodPost, http.Header{"Accept": {browserAccept}}, false},
		{"spoofed identity", http.MethodGet, http.Header{"X-Forwarded-Email": {"evil@x"}, "X-Forwarded-User": {"evil"}, "x_forwarded_user": {"evil"}}, false},
		// The controls: a browser navigation is sent to sign in.
		{"GET browser navigation", http.MethodGet, http.Header{"Accept": {browserAccept}}, true},
		{"HEAD browser navigation", http.MethodHead, http.Header{"Accept": {browserAccept}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, "/api/whoami?x=1", nil, tc.header)
			loc := resp.Header.Get("Location")
			if tc.redirect {
				if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, stack.issuer+"/auth?") {
					t.Errorf("%s /api/whoami: %s, Location %q; want 302 to %s/auth?…", tc.method, resp.Status, loc, stack.issuer)
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized || loc != "" {
				t.Fatalf("%s /api/whoami: %s, Location %q, body %q; want 401 and no Location", tc.method, resp.Status, loc, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "json") || !json.Valid(body) {
				t.Errorf("%s /api/whoami: 401 with Content-Type %q and body %q; want a JSON body", tc.method, ct, body)
			}
			if strings.Contains(string(body), "X-Forwarded") {
				t.Errorf("the 401 looks like it came from the app: %q", body)
			}
		})
	}

	t.Run("fetch from a page", func(t *testing.T) {
		tab := newBrowser(t)
		run(t, tab, "open /healthz", navigate("/healthz"))
		r := browserFetch(t, tab, "/api/whoami")
		if r.Status != http.StatusUnauthorized || !json.Valid([]byte(r.Body)) {
			t.Errorf("fetch(/api/whoami) without a session: status %d (response type %s), Content-Type %q, body %q; want 401 JSON",
				r.Status, r.Type, r.ContentType, r.Body)
		}
	})
}

// TestSignOut checks that after /oauth2/sign_out the browser has to sign in again.
func TestSignOut(t *testing.T) {
	tab := newBrowser(t)
	signIn(t, tab, alice, "/before/sign-out")
	var w whoami
	browseJSON(t, tab, "/api/whoami", &w)
	checkWhoami(t, w, alice)

	run(t, tab, "open /oauth2/sign_out", navigate("/oauth2/sign_out"))
	t.Logf("after /oauth2/sign_out the tab is at %s", location(t, tab))

	// A navigation goes to sign in again.
	openToDexLogin(t, tab, "/api/whoami")

	// An API request with what the browser holds now gets 401.
	cookies := browserCookies(t, tab)
	resp, body := get(t, "/api/whoami", cookies, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/whoami after sign-out with the browser's cookies %q: %s %q; want 401", cookieNames(cookies), resp.Status, body)
	}

	// So does a script on one of the proxy's pages.
	run(t, tab, "open /healthz", navigate("/healthz"))
	if r := browserFetch(t, tab, "/api/whoami"); r.Status != http.StatusUnauthorized {
		t.Errorf("fetch(/api/whoami) after sign-out: status %d (response type %s) %q; want 401", r.Status, r.Type, r.Body)
	}
}

// TestSecretCommand checks that `authproxy secret` prints a fresh 32-byte base64 secret.
func TestSecretCommand(t *testing.T) {
	requireStack(t)
	var secrets []string
	for range 2 {
		out, err := exec.Command(filepath.Join(stack.dir, "authproxy"), "secret").Output()
		if err != nil {
			t.Fatalf("authproxy secret: %v", err)
		}
		s := strings.TrimSpace(string(out))
		if n := decodedLen(s); n != 32 {
			t.Fatalf("authproxy secret printed %q; want 32 random bytes as base64", out)
		}
		secrets = append(secrets, s)
	}
	if secrets[0] == secrets[1] {
		t.Errorf("authproxy secret printed the same secret twice: %q", secrets[0])
	}
}

// decodedLen is the length of s decoded as standard or URL-safe base64, padded or not; -1 if neither.
func decodedLen(s string) int {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return len(b)
		}
	}
	return -1
}
