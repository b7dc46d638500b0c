package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestAccessRulesWithDexUsers: real Dex users with different groups meet a
// policy file: alice (admins) reaches /admin/, bob (staff) gets the 403
// page there but reads everything else, and a public path needs no one.
func TestAccessRulesWithDexUsers(t *testing.T) {
	ps := newProcSet(t)
	pp := newProxy(t, ps, "authproxy-policy")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{pp.callbackURL()}})
	policyFile := filepath.Join(ps.dir, "policy.yaml")
	writeFile(t, policyFile, `rules:
  - path: /health
    allow: public
  - path: /admin/
    allow: {groups: [admins]}
  - path: /
    allow: authenticated
`)
	pp.start(t, dexProxyEnv(dex, pp.callbackURL(), newSecret(), "AUTHPROXY_POLICY_FILE="+policyFile)...)

	if r, _ := rawGet(t, pp.url+"/health", nil); r.StatusCode != http.StatusOK {
		t.Errorf("public /health without a session: %d, want 200", r.StatusCode)
	}

	aliceTab := newBrowser(t)
	dexSignIn(t, aliceTab, pp.url, dex, alice, "/admin/panel")

	bobTab := newBrowser(t)
	dexSignIn(t, bobTab, pp.url, dex, bob, "/reports")
	var heading string
	run(t, bobTab, "bob opens /admin/panel",
		chromedp.Navigate(pp.url+"/admin/panel"),
		chromedp.Text("h1", &heading, chromedp.ByQuery),
	)
	if heading != "Access denied" {
		t.Errorf("bob (staff) at /admin/: page %q, want the 403 page", heading)
	}
	if r, _ := rawGet(t, pp.url+"/admin/panel", httpCookies(proxyCookies(t, bobTab, pp.url)), "Accept", "application/json"); r.StatusCode != http.StatusForbidden {
		t.Errorf("bob (staff) at /admin/ as an API call: %d, want 403", r.StatusCode)
	}
	if log := pp.log(t); !strings.Contains(log, "event=denied") || !strings.Contains(log, "/admin/ allow groups [admins]") {
		t.Errorf("authproxy's log has no audit line naming the rule that denied bob:\n%s", log)
	}
}

// TestFaultsEndToEnd stops and starts real processes: the IdP after
// sign-in (signed-in users keep working on the cookie store), the IdP
// at authproxy's start (503 pages and /readyz until discovery succeeds),
// and an upstream that is down or slow (502, 504; no request hangs).
func TestFaultsEndToEnd(t *testing.T) {
	ps := newProcSet(t)
	pp := newProxy(t, ps, "authproxy-faults")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{pp.callbackURL()}})
	secret := newSecret()
	pp.start(t, dexProxyEnv(dex, pp.callbackURL(), secret)...)
	tab := newBrowser(t)
	dexSignIn(t, tab, pp.url, dex, alice, "/before")
	cookies := httpCookies(proxyCookies(t, tab, pp.url))

	// The IdP goes down after sign-in: the session goes on.
	ps.stopProc(t, dex.p)
	if r, body := rawGet(t, pp.url+"/api/whoami", cookies, "Accept", "application/json"); r.StatusCode != http.StatusOK || !strings.Contains(string(body), alice.email) {
		t.Errorf("signed in, IdP down: %d %s, want the app's 200", r.StatusCode, body)
	}

	// authproxy starts while the IdP is down: it serves, says why it is not
	// ready, and tells a browser the IdP is unavailable.
	pp2 := newProxy(t, ps, "authproxy-idp-down")
	pp2.p = ps.startProc(t, pp2.name, append([]string{"AUTHPROXY_LISTEN=" + pp2.addr}, dexProxyEnv(dex, pp.callbackURL(), secret)...), filepath.Join(stack.dir, "authproxy"))
	if err := pp2.p.waitReady(pp2.url + "/healthz"); err != nil {
		t.Fatal(err)
	}
	if r, body := rawGet(t, pp2.url+"/readyz", nil); r.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(string(body)) != `{"status":"unavailable","not_ready":["identity_provider"]}` {
		t.Errorf("/readyz with the IdP down: %d %s, want 503 naming only the identity provider", r.StatusCode, body)
	}
	if r, body := rawGet(t, pp2.url+"/page", nil, "Accept", "text/html"); r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "Identity provider unavailable") {
		t.Errorf("browser navigation with the IdP down: %d, want the 503 page; body %.300s", r.StatusCode, body)
	}
	// The session sealed by the first replica still works here: no IdP needed.
	if r, _ := rawGet(t, pp2.url+"/api/whoami", cookies, "Accept", "application/json"); r.StatusCode != http.StatusOK {
		t.Errorf("signed in, started with the IdP down: %d, want 200", r.StatusCode)
	}
	// The IdP comes back: discovery is retried and the proxy becomes ready.
	dex.p = ps.startProc(t, "dex", nil, dexBinPath, "serve", filepath.Join(ps.dir, "dex.yaml"))
	if err := dex.p.waitReady(dex.telemetry + "/healthz/ready"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		r, _ := rawGet(t, pp2.url+"/readyz", nil)
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz still not 200 40 s after the IdP came back")
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The upstream is down, then slow: answers come within the timeouts.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	for _, tc := range []struct {
		name, upstream string
		want           int
	}{
		{"upstream down", "http://" + closedPort(t), http.StatusBadGateway},
		{"upstream slow", slow.URL, http.StatusGatewayTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newProxy(t, ps, "authproxy-"+strings.ReplaceAll(tc.name, " ", "-"))
			up.start(t, append(dexProxyEnv(dex, pp.callbackURL(), secret), "AUTHPROXY_UPSTREAM="+tc.upstream, "AUTHPROXY_UPSTREAM_TIMEOUT=1s")...)
			start := time.Now()
			r, body := rawGet(t, up.url+"/api/whoami", cookies, "Accept", "text/html")
			if r.StatusCode != tc.want || !strings.Contains(string(body), "not answering") {
				t.Errorf("%d %.200s, want %d and the upstream page", r.StatusCode, body, tc.want)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s: a request must not hang past the upstream timeout", took)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(ps.dir, "dex.yaml")); err != nil {
		t.Fatal(err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}
