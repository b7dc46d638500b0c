package authproxy

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/teststack"
)

// TestConfigWatchSeesEveryKindOfChange polls the configuration's files
// (a policy file and a secret's NAME_FILE) before and after each kind of
// change a deployment makes, and wants a change reported exactly when the
// content changed, once.
func TestConfigWatchSeesEveryKindOfChange(t *testing.T) {
	const policyA = "rules:\n  - path: /\n    allow: authenticated\n"
	const policyB = "rules:\n  - path: /\n    allow: public\n"
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, kv *teststack.KubeletVolume, plain string)
		want   bool
	}{
		{"kubelet swaps ..data to new content", func(t *testing.T, kv *teststack.KubeletVolume, _ string) {
			kv.Update(map[string]string{"policy.yaml": policyB, "client-secret": "s1"})
		}, true},
		{"kubelet swaps ..data to the same content", func(t *testing.T, kv *teststack.KubeletVolume, _ string) {
			kv.Update(map[string]string{"policy.yaml": policyA, "client-secret": "s1"})
		}, false},
		{"kubelet swaps only the secret", func(t *testing.T, kv *teststack.KubeletVolume, _ string) {
			kv.Update(map[string]string{"policy.yaml": policyA, "client-secret": "s2"})
		}, true},
		{"plain file edited in place", func(t *testing.T, _ *teststack.KubeletVolume, plain string) {
			writeConfigFile(t, plain, "X-Tenant=tid\n")
		}, true},
		{"plain file replaced by a rename", func(t *testing.T, _ *teststack.KubeletVolume, plain string) {
			tmp := plain + ".tmp"
			writeConfigFile(t, tmp, "X-Tenant=tid\n")
			if err := os.Rename(tmp, plain); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"plain file touched, content unchanged", func(t *testing.T, _ *teststack.KubeletVolume, plain string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(plain, later, later); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"plain file removed", func(t *testing.T, _ *teststack.KubeletVolume, plain string) {
			if err := os.Remove(plain); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := teststack.NewKubeletVolume(t, t.TempDir(), map[string]string{"policy.yaml": policyA, "client-secret": "s1"})
			plain := filepath.Join(t.TempDir(), "claim-headers")
			writeConfigFile(t, plain, "X-Dept=department\n")
			lookup := mapLookup(map[string]string{
				"AUTHPROXY_POLICY_FILE":        kv.Path("policy.yaml"),
				"AUTHPROXY_CLIENT_SECRET_FILE": kv.Path("client-secret"),
				"AUTHPROXY_CLAIM_HEADERS_FILE": plain,
				"AUTHPROXY_COOKIE_SECRET":      testCookieSecret,
			})
			w := &configWatch{lookup: lookup, seen: currentFingerprints(lookup)}
			if w.poll() {
				t.Fatal("poll reports a change before anything changed")
			}
			tc.change(t, kv, plain)
			if got := w.poll(); got != tc.want {
				t.Errorf("poll after the change = %t, want %t", got, tc.want)
			}
			if w.poll() {
				t.Error("the second poll after one change reports another")
			}
		})
	}
}

// TestWatchedFiles lists the files a deployment's configuration reads.
func TestWatchedFiles(t *testing.T) {
	got := watchedFiles(mapLookup(map[string]string{
		"AUTHPROXY_COOKIE_SECRET_FILE":  "/etc/authproxy/secret/cookie-secret",
		"AUTHPROXY_ALLOWED_EMAILS_FILE": "/etc/authproxy/config/emails",
		"AUTHPROXY_POLICY_FILE":         "/etc/authproxy/config/policy.yaml",
		"AUTHPROXY_UPSTREAM_CA_FILE":    "/etc/authproxy/ca.pem",
		"AUTHPROXY_UPSTREAM":            "http://127.0.0.1:8080",
		"AUTHPROXY_LISTEN_FILE":         "/not/a/variable/with/a/file/form",
	}))
	want := []string{
		"/etc/authproxy/secret/cookie-secret",
		"/etc/authproxy/config/emails",
		"/etc/authproxy/config/policy.yaml",
		"/etc/authproxy/ca.pem",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("watchedFiles = %q\nwant %q", got, want)
	}
}

// writeConfigFile writes content to path.
func writeConfigFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
