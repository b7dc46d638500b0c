package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kubeletVolume is a directory laid out as the kubelet lays out a mounted ConfigMap or Secret:
// the files in a timestamped directory, `..data` a symlink to it, each visible name a symlink
// `name -> ..data/name`. update writes a new timestamped directory, points a `..data_tmp`
// symlink at it and renames that over `..data` (one atomic rename), then removes the old one.
type kubeletVolume struct {
	t   *testing.T
	dir string
	n   int
	cur string
}

func newKubeletVolume(t *testing.T, dir string, files map[string]string) *kubeletVolume {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	kv := &kubeletVolume{t: t, dir: dir}
	kv.update(files)
	return kv
}

func (kv *kubeletVolume) path(name string) string { return filepath.Join(kv.dir, name) }

func (kv *kubeletVolume) update(files map[string]string) {
	t := kv.t
	t.Helper()
	kv.n++
	ts := fmt.Sprintf("..2026_12_02_01_02_%02d.%09d", kv.n, 123456789+kv.n)
	if err := os.Mkdir(filepath.Join(kv.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFile(t, filepath.Join(kv.dir, ts, name), content)
	}
	tmp := filepath.Join(kv.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(kv.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if _, err := os.Lstat(kv.path(name)); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), kv.path(name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if kv.cur != "" {
		if err := os.RemoveAll(filepath.Join(kv.dir, kv.cur)); err != nil {
			t.Fatal(err)
		}
	}
	kv.cur = ts
}

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
	config := newKubeletVolume(t, filepath.Join(ps.dir, "config"), map[string]string{"policy.yaml": apiForRoot})
	oldSecret, rotated := newSecret(), newSecret()
	secrets := newKubeletVolume(t, filepath.Join(ps.dir, "secret"), map[string]string{"cookie-secret": oldSecret + "\n"})
	proxy.start(t, dexProxyEnv(dex, proxy.callbackURL(), "",
		"AUTHPROXY_COOKIE_SECRET=",
		"AUTHPROXY_COOKIE_SECRET_FILE="+secrets.path("cookie-secret"),
		"AUTHPROXY_POLICY_FILE="+config.path("policy.yaml"))...)

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
		config.update(map[string]string{"policy.yaml": apiForAdmins})
		took := waitFor(t, "GET /api/whoami as alice is still refused after the policy let admins in", func() bool {
			return whoamiStatus() == http.StatusOK
		})
		t.Logf("from the ..data swap to the new policy in effect: %v", took.Round(time.Millisecond))
		if got := reloads("ok"); got != 1 {
			t.Errorf(`authproxy_config_reloads_total{result="ok"} = %v, want 1`, got)
		}
	})

	t.Run("a broken policy changes only the log and the metric", func(t *testing.T) {
		config.update(map[string]string{"policy.yaml": broken})
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
		config.update(map[string]string{"policy.yaml": apiForAdmins})
		waitFor(t, "the repaired policy was not reloaded", func() bool { return reloads("ok") == 2 })
	})

	t.Run("a new first cookie secret keeps the session", func(t *testing.T) {
		secrets.update(map[string]string{"cookie-secret": rotated + "\n" + oldSecret + "\n"})
		waitFor(t, "the rotated cookie secret was not reloaded", func() bool { return reloads("ok") == 3 })
		wantSignedIn(t, "after the cookie secret rotation", proxy.url, jar, alice)
		if log := proxy.log(t); strings.Contains(log, rotated) || strings.Contains(log, oldSecret) {
			t.Error("authproxy logged a cookie secret")
		}
	})

	t.Run("SIGHUP reloads at once", func(t *testing.T) {
		// Written in place without the kubelet's swap; SIGHUP comes right after.
		writeFile(t, filepath.Join(config.dir, config.cur, "policy.yaml"), apiForRoot)
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
