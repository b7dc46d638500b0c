package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/teststack"
)

// waitFor polls cond every 20 ms for up to 10 s and returns how long it took to hold.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestReloadWithoutRestart runs the real binary with its policy in a ConfigMap-like volume and
// its cookie secret in a Secret-like one, both updated as the kubelet updates them, under a
// session signed in through Chromium and Dex: a path flips from 403 to allowed when the policy
// changes; a broken policy changes nothing but the log and the metric; a new first cookie secret
// keeps the session; SIGHUP reloads at once.
func TestReloadWithoutRestart(t *testing.T) {
	const (
		apiForRoot   = "rules:\n  - path: /api/\n    allow: {groups: [root]}\n  - path: /\n    allow: authenticated\n"
		apiForAdmins = "rules:\n  - path: /api/\n    allow: {groups: [admins]}\n  - path: /\n    allow: authenticated\n"
		broken       = "rules:\n  - path: /api/\n    allow: [\n"
	)
	ps := newProcSet(t)
	proxy := newProxy(t, ps, "authproxy-reload")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{proxy.callbackURL()}})
	config := teststack.NewKubeletVolume(t, filepath.Join(ps.dir, "config"), map[string]string{"policy.yaml": apiForRoot})
	oldSecret, rotated := newSecret(), newSecret()
	secrets := teststack.NewKubeletVolume(t, filepath.Join(ps.dir, "secret"), map[string]string{"cookie-secret": oldSecret + "\n"})
	proxy.start(t, dexProxyEnv(dex, proxy.callbackURL(), "",
		"AUTHPROXY_COOKIE_SECRET=",
		"AUTHPROXY_COOKIE_SECRET_FILE="+secrets.Path("cookie-secret"),
		"AUTHPROXY_POLICY_FILE="+config.Path("policy.yaml"))...)

	tab := newBrowser(t)
	dexSignIn(t, tab, proxy.url, dex, alice, "/reload/page")
	jar := httpCookies(proxyCookies(t, tab, proxy.url))
	closeBrowser(t, tab)
	whoamiStatus := func() int { code, _, _ := whoamiAt(t, proxy.url, jar); return code }
	reloads := func(result string) float64 {
		return proxy.metric(t, "authproxy_config_reloads_total", "result", result)
	}
	if got := whoamiStatus(); got != http.StatusForbidden {
		t.Fatalf("GET /api/whoami as alice under a policy that keeps /api/ for root: %d, want 403", got)
	}

	t.Run("a changed policy takes effect", func(t *testing.T) {
		config.Update(map[string]string{"policy.yaml": apiForAdmins})
		took := waitFor(t, "GET /api/whoami as alice is still refused after the policy let admins in", func() bool {
			return whoamiStatus() == http.StatusOK
		})
		t.Logf("from the ..data swap to the new policy in effect: %v", took.Round(time.Millisecond))
		if got := reloads("ok"); got != 1 {
			t.Errorf(`authproxy_config_reloads_total{result="ok"} = %v, want 1`, got)
		}
	})

	t.Run("a broken policy changes only the log and the metric", func(t *testing.T) {
		config.Update(map[string]string{"policy.yaml": broken})
		waitFor(t, `authproxy_config_reloads_total{result="error"} did not count the broken policy`, func() bool {
			return reloads("error") == 1
		})
		wantSignedIn(t, "after the broken policy", proxy.url, jar, alice)
		if resp, body := call(t, http.MethodGet, proxy.url+"/readyz", nil, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("/readyz after the broken policy: %s %q, want 200", resp.Status, body)
		}
		log := proxy.log(t)
		if !strings.Contains(log, "configuration reload refused") || !strings.Contains(log, "AUTHPROXY_POLICY_FILE: yaml: line 3") {
			t.Errorf("the log does not name the variable and line of the broken policy:\n%s", log)
		}
		if got := reloads("ok"); got != 1 {
			t.Errorf(`authproxy_config_reloads_total{result="ok"} = %v, want still 1`, got)
		}
		config.Update(map[string]string{"policy.yaml": apiForAdmins})
		waitFor(t, "the repaired policy was not reloaded", func() bool { return reloads("ok") == 2 })
	})

	t.Run("a new first cookie secret keeps the session", func(t *testing.T) {
		secrets.Update(map[string]string{"cookie-secret": rotated + "\n" + oldSecret + "\n"})
		waitFor(t, "the rotated cookie secret was not reloaded", func() bool { return reloads("ok") == 3 })
		wantSignedIn(t, "after the cookie secret rotation", proxy.url, jar, alice)
		if log := proxy.log(t); strings.Contains(log, rotated) || strings.Contains(log, oldSecret) {
			t.Error("authproxy logged a cookie secret")
		}
	})

	t.Run("SIGHUP reloads at once", func(t *testing.T) {
		// Written in place without the kubelet's swap; SIGHUP comes right after.
		writeFile(t, config.Path("policy.yaml"), apiForRoot) // through the symlink, into the current ..data
		start := time.Now()
		if err := proxy.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "GET /api/whoami is still allowed after SIGHUP with the first policy back", func() bool {
			return whoamiStatus() == http.StatusForbidden
		})
		t.Logf("from SIGHUP to the policy in effect: %v", time.Since(start).Round(time.Millisecond))
		if log := proxy.log(t); !strings.Contains(log, "SIGHUP: reloading the configuration") {
			t.Errorf("the log does not say SIGHUP reloaded:\n%s", log)
		}
	})
}
