package teststack

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// KubeletVolume is a directory laid out the way the kubelet lays out a
// mounted ConfigMap or Secret (its AtomicWriter): the files live in a
// timestamped directory, `..data` is a symlink to it, and each visible name
// is a symlink `name -> ..data/name`. Update writes a new timestamped
// directory, points a new `..data_tmp` symlink at it, renames `..data_tmp`
// over `..data` (one atomic rename), and removes the old directory: what a
// process watching the files sees when a ConfigMap or Secret changes.
type KubeletVolume struct {
	t   testing.TB
	dir string
	n   int
	cur string // the timestamped directory ..data points to
}

// NewKubeletVolume lays out dir (created if missing) with files, as the
// kubelet mounts them.
func NewKubeletVolume(t testing.TB, dir string, files map[string]string) *KubeletVolume {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	kv := &KubeletVolume{t: t, dir: dir}
	kv.Update(files)
	return kv
}

// Path is the visible path of the file name, as a pod mounts it.
func (kv *KubeletVolume) Path(name string) string { return filepath.Join(kv.dir, name) }

// Update swaps the volume's content for files, exactly as the kubelet does.
func (kv *KubeletVolume) Update(files map[string]string) {
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
		if _, err := os.Lstat(kv.Path(name)); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), kv.Path(name)); err != nil {
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
