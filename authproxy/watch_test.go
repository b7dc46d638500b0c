package authproxy

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// kubeletVolume lays out a directory the way the kubelet lays out a
// ConfigMap or Secret volume (its AtomicWriter): the files live in a
// timestamped directory, `..data` is a symlink to it, and each visible name
// is a symlink `name -> ..data/name`. An update writes a new timestamped
// directory, points a new `..data_tmp` symlink at it, renames `..data_tmp`
// over `..data` (one atomic rename), and removes the old directory.
type kubeletVolume struct {
	t   *testing.T
	dir string
	n   int
	cur string // the timestamped directory ..data points to
}

func newKubeletVolume(t *testing.T, files map[string]string) *kubeletVolume {
	kv := &kubeletVolume{t: t, dir: t.TempDir()}
	kv.update(files)
	return kv
}

// path is the visible path of the file name, as a pod mounts it.
func (kv *kubeletVolume) path(name string) string { return filepath.Join(kv.dir, name) }

// update swaps the volume's content for files, exactly as the kubelet does.
func (kv *kubeletVolume) update(files map[string]string) {
	t := kv.t
	t.Helper()
	kv.n++
	ts := fmt.Sprintf("..2026_12_02_01_02_%02d.%09d", kv.n, 123456789+kv.n)
	if err := os.Mkdir(filepath.Join(kv.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(kv.dir, ts, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
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

// TestConfigWatchSeesEveryKindOfChange polls the configuration's files
// (a policy file and a secret's NAME_FILE) before and after each kind of
// change a deployment makes, and wants a change reported exactly when the
// content changed, once.
func TestConfigWatchSeesEveryKindOfChange(t *testing.T) {
	const policyA = "rules:\n  - path: /\n    allow: authenticated\n"
	const policyB = "rules:\n  - path: /\n    allow: public\n"
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, kv *kubeletVolume, plain string)
		want   bool
	}{
		{"kubelet swaps ..data to new content", func(t *testing.T, kv *kubeletVolume, _ string) {
			kv.update(map[string]string{"policy.yaml": policyB, "client-secret": "s1"})
		}, true},
		{"kubelet swaps ..data to the same content", func(t *testing.T, kv *kubeletVolume, _ string) {
			kv.update(map[string]string{"policy.yaml": policyA, "client-secret": "s1"})
		}, false},
		{"kubelet swaps only the secret", func(t *testing.T, kv *kubeletVolume, _ string) {
			kv.update(map[string]string{"policy.yaml": policyA, "client-secret": "s2"})
		}, true},
		{"plain file edited in place", func(t *testing.T, _ *kubeletVolume, plain string) {
			writeConfigFile(t, plain, "X-Tenant=tid\n")
		}, true},
		{"plain file replaced by a rename", func(t *testing.T, _ *kubeletVolume, plain string) {
			tmp := plain + ".tmp"
			writeConfigFile(t, tmp, "X-Tenant=tid\n")
			if err := os.Rename(tmp, plain); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"plain file touched, content unchanged", func(t *testing.T, _ *kubeletVolume, plain string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(plain, later, later); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"plain file removed", func(t *testing.T, _ *kubeletVolume, plain string) {
			if err := os.Remove(plain); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := newKubeletVolume(t, map[string]string{"policy.yaml": policyA, "client-secret": "s1"})
			plain := filepath.Join(t.TempDir(), "claim-headers")
			writeConfigFile(t, plain, "X-Dept=department\n")
			lookup := mapLookup(map[string]string{
				"AUTHPROXY_POLICY_FILE":        kv.path("policy.yaml"),
				"AUTHPROXY_CLIENT_SECRET_FILE": kv.path("client-secret"),
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
