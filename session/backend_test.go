package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a clock that tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backendKit makes fresh, empty backends of one kind for tests. dump returns
// every key's value and set members as text, for checking what the backend
// reveals. Backends that keep time by themselves ignore now.
type backendKit struct {
	name string
	new  func(t testing.TB, now func() time.Time) (b Backend, dump func() []string)
}

var memoryKit = backendKit{
	name: "memory",
	new: func(t testing.TB, now func() time.Time) (Backend, func() []string) {
		b := NewMemoryBackend(now)
		return b, func() []string {
			b.mu.Lock()
			defer b.mu.Unlock()
			var out []string
			for k, it := range b.items {
				out = append(out, k, string(it.value))
				for m := range it.set {
					out = append(out, m)
				}
			}
			return out
		}
	},
}

// testBackendContract checks what every Backend must do, except expiry
// (which needs a clock the test controls).
func testBackendContract(t *testing.T, kit backendKit) {
	ctx := context.Background()
	t.Run("values", func(t *testing.T) {
		b, _ := kit.new(t, nil)
		if _, err := b.Get(ctx, "v"); !errors.Is(err, ErrBackendMiss) || !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of a missing key: %v, want ErrBackendMiss", err)
		}
		steps := []struct {
			name   string
			do     func() (bool, error)
			wantOK bool
			want   string // value at "v" after; "" for none
		}{
			{"replace missing", func() (bool, error) { return b.Replace(ctx, "v", []byte("r"), time.Hour) }, false, ""},
			{"setnx missing", func() (bool, error) { return b.SetNX(ctx, "v", []byte("a"), time.Hour) }, true, "a"},
			{"setnx present", func() (bool, error) { return b.SetNX(ctx, "v", []byte("b"), time.Hour) }, false, "a"},
			{"set", func() (bool, error) { return true, b.Set(ctx, "v", []byte("c"), time.Hour) }, true, "c"},
			{"replace present", func() (bool, error) { return b.Replace(ctx, "v", []byte("d"), time.Hour) }, true, "d"},
			{"set empty", func() (bool, error) { return true, b.Set(ctx, "v", []byte{}, time.Hour) }, true, ""},
			{"set binary", func() (bool, error) { return true, b.Set(ctx, "v", []byte{0, 255, '\r', '\n'}, time.Hour) }, true, "\x00\xff\r\n"},
			{"delete", func() (bool, error) { return true, b.Delete(ctx, "v") }, true, ""},
			{"delete missing", func() (bool, error) { return true, b.Delete(ctx, "v") }, true, ""},
		}
		for _, s := range steps {
			ok, err := s.do()
			if err != nil || ok != s.wantOK {
				t.Fatalf("%s: %v, %v; want %v, nil", s.name, ok, err, s.wantOK)
			}
			got, err := b.Get(ctx, "v")
			switch {
			case s.name == "set empty":
				if err != nil || len(got) != 0 {
					t.Fatalf("%s: Get = %q, %v; want an empty value", s.name, got, err)
				}
			case s.want == "":
				if !errors.Is(err, ErrBackendMiss) {
					t.Fatalf("%s: Get = %q, %v; want a miss", s.name, got, err)
				}
			case err != nil || string(got) != s.want:
				t.Fatalf("%s: Get = %q, %v; want %q", s.name, got, err, s.want)
			}
		}
	})

	t.Run("sets", func(t *testing.T) {
		b, _ := kit.new(t, nil)
		members := func() []string {
			t.Helper()
			m, err := b.SetMembers(ctx, "s")
			if err != nil {
				t.Fatalf("SetMembers: %v", err)
			}
			slices.Sort(m)
			return m
		}
		if m := members(); len(m) != 0 {
			t.Fatalf("members of a missing set: %v", m)
		}
		for _, m := range []string{"a", "b", "a", "c"} {
			if err := b.AddToSet(ctx, "s", m, time.Hour); err != nil {
				t.Fatalf("AddToSet: %v", err)
			}
		}
		if m := members(); !slices.Equal(m, []string{"a", "b", "c"}) {
			t.Fatalf("members = %v", m)
		}
		for _, m := range []string{"b", "x"} {
			if err := b.RemoveFromSet(ctx, "s", m); err != nil {
				t.Fatalf("RemoveFromSet: %v", err)
			}
		}
		if m := members(); !slices.Equal(m, []string{"a", "c"}) {
			t.Fatalf("members = %v", m)
		}
		if err := b.RemoveFromSet(ctx, "missing", "a"); err != nil {
			t.Fatalf("RemoveFromSet of a missing set: %v", err)
		}
		if err := b.Delete(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		if m := members(); len(m) != 0 {
			t.Fatalf("members after Delete: %v", m)
		}
	})

	t.Run("wrong kind", func(t *testing.T) {
		b, _ := kit.new(t, nil)
		if err := b.Set(ctx, "v", []byte("x"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := b.AddToSet(ctx, "s", "m", time.Hour); err != nil {
			t.Fatal(err)
		}
		calls := []struct {
			name string
			err  error
		}{
			{"Get of a set", func() error { _, err := b.Get(ctx, "s"); return err }()},
			{"AddToSet to a value", b.AddToSet(ctx, "v", "m", time.Hour)},
			{"RemoveFromSet of a value", b.RemoveFromSet(ctx, "v", "m")},
			{"SetMembers of a value", func() error { _, err := b.SetMembers(ctx, "v"); return err }()},
		}
		for _, c := range calls {
			if c.err == nil || errors.Is(c.err, ErrNotFound) || !strings.HasPrefix(c.err.Error(), "session: ") {
				t.Errorf("%s: error %v; want a session: error that is not ErrNotFound", c.name, c.err)
			}
		}
	})

	t.Run("rejects non-positive ttl", func(t *testing.T) {
		b, _ := kit.new(t, nil)
		for _, ttl := range []time.Duration{0, -time.Second} {
			errs := []error{
				b.Set(ctx, "v", []byte("x"), ttl),
				func() error { _, err := b.SetNX(ctx, "v", []byte("x"), ttl); return err }(),
				func() error { _, err := b.Replace(ctx, "v", []byte("x"), ttl); return err }(),
				b.AddToSet(ctx, "s", "m", ttl),
			}
			for i, err := range errs {
				if err == nil || !strings.HasPrefix(err.Error(), "session: ") {
					t.Errorf("call %d with ttl %v: error %v, want a session: error", i, ttl, err)
				}
			}
		}
		if _, err := b.Get(ctx, "v"); !errors.Is(err, ErrBackendMiss) {
			t.Errorf("a call with a bad ttl stored a value")
		}
	})

	t.Run("ping", func(t *testing.T) {
		b, _ := kit.new(t, nil)
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func TestMemoryBackendContract(t *testing.T) { testBackendContract(t, memoryKit) }

func TestMemoryBackendExpiry(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock(testNow)
	b := NewMemoryBackend(clock.Now)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Set(ctx, "v", []byte("x"), time.Minute))
	must(b.AddToSet(ctx, "s", "a", time.Minute))
	clock.Advance(30 * time.Second)
	must(b.AddToSet(ctx, "s", "b", 10*time.Second)) // must not shorten the set's life
	clock.Advance(29 * time.Second)

	if _, err := b.Get(ctx, "v"); err != nil {
		t.Fatalf("Get just before expiry: %v", err)
	}
	if m, _ := b.SetMembers(ctx, "s"); len(m) != 2 {
		t.Fatalf("set just before expiry: %v", m)
	}
	must(b.AddToSet(ctx, "s", "c", time.Minute)) // extends it
	clock.Advance(time.Second)

	if _, err := b.Get(ctx, "v"); !errors.Is(err, ErrBackendMiss) {
		t.Fatalf("Get at expiry: %v, want a miss", err)
	}
	if ok, err := b.Replace(ctx, "v", []byte("y"), time.Minute); ok || err != nil {
		t.Fatalf("Replace of an expired key = %v, %v; want false", ok, err)
	}
	if ok, err := b.SetNX(ctx, "v", []byte("y"), time.Minute); !ok || err != nil {
		t.Fatalf("SetNX over an expired key = %v, %v; want true", ok, err)
	}
	if m, _ := b.SetMembers(ctx, "s"); len(m) != 3 {
		t.Fatalf("extended set: %v", m)
	}
	clock.Advance(time.Minute)
	if m, _ := b.SetMembers(ctx, "s"); len(m) != 0 {
		t.Fatalf("expired set: %v", m)
	}
}

func TestMemoryBackendSweeps(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock(testNow)
	b := NewMemoryBackend(clock.Now)
	for i := range 1000 {
		if err := b.Set(ctx, "old"+string(rune('a'+i%26))+strings.Repeat("x", i), nil, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Hour)
	// Never read again, the old keys go in the sweeps that new writes cause.
	for i := range 2000 {
		if err := b.Set(ctx, "new"+strings.Repeat("y", i%50), nil, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	b.mu.Lock()
	n := len(b.items)
	b.mu.Unlock()
	if n > 100 {
		t.Errorf("%d items kept; expired ones were not swept", n)
	}
}

func TestMemoryBackendConcurrent(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBackend(nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			key := "k" + string(rune('0'+g%2))
			for range 200 {
				_ = b.Set(ctx, key, []byte("v"), time.Minute)
				_, _ = b.Get(ctx, key)
				_, _ = b.SetNX(ctx, "lock", []byte("1"), time.Minute)
				_ = b.AddToSet(ctx, "set", key, time.Minute)
				_, _ = b.SetMembers(ctx, "set")
				_ = b.Delete(ctx, "lock")
			}
		})
	}
	wg.Wait()
}

func TestMemoryBackendCopies(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBackend(nil)
	v := []byte("abc")
	if err := b.Set(ctx, "v", v, time.Minute); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	got, _ := b.Get(ctx, "v")
	got[1] = 'Y'
	if again, _ := b.Get(ctx, "v"); string(again) != "abc" {
		t.Errorf("stored value changed through a caller's slice: %q", again)
	}
}

// recordingBackend records the names of the Backend methods called, and can
// run a hook before Replace.
type recordingBackend struct {
	Backend
	mu            sync.Mutex
	calls         []string
	beforeReplace func()
}

func (b *recordingBackend) record(name string) {
	b.mu.Lock()
	b.calls = append(b.calls, name)
	b.mu.Unlock()
}

func (b *recordingBackend) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls
	b.calls = nil
	return c
}

func (b *recordingBackend) Get(ctx context.Context, key string) ([]byte, error) {
	b.record("Get")
	return b.Backend.Get(ctx, key)
}

func (b *recordingBackend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	b.record("Set")
	return b.Backend.Set(ctx, key, value, ttl)
}

func (b *recordingBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	b.record("Replace")
	if b.beforeReplace != nil {
		b.beforeReplace()
	}
	return b.Backend.Replace(ctx, key, value, ttl)
}

func (b *recordingBackend) Delete(ctx context.Context, key string) error {
	b.record("Delete")
	return b.Backend.Delete(ctx, key)
}

func (b *recordingBackend) AddToSet(ctx context.Context, key, member string, ttl time.Duration) error {
	b.record("AddToSet")
	return b.Backend.AddToSet(ctx, key, member, ttl)
}

func (b *recordingBackend) RemoveFromSet(ctx context.Context, key, member string) error {
	b.record("RemoveFromSet")
	return b.Backend.RemoveFromSet(ctx, key, member)
}

// failingBackend is a Backend that is down.
type failingBackend struct{}

var errDown = errors.New("session: test backend: connection refused")

func (failingBackend) Get(context.Context, string) ([]byte, error) { return nil, errDown }
func (failingBackend) Set(context.Context, string, []byte, time.Duration) error {
	return errDown
}
func (failingBackend) SetNX(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errDown
}
func (failingBackend) Replace(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errDown
}
func (failingBackend) Delete(context.Context, string) error                          { return errDown }
func (failingBackend) AddToSet(context.Context, string, string, time.Duration) error { return errDown }
func (failingBackend) RemoveFromSet(context.Context, string, string) error           { return errDown }
func (failingBackend) SetMembers(context.Context, string) ([]string, error)          { return nil, errDown }
func (failingBackend) Ping(context.Context) error                                    { return errDown }

func (b *recordingBackend) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	b.record("DeletePrefix")
	return b.Backend.(prefixDeleter).DeletePrefix(ctx, prefix)
}

func (b *recordingBackend) GetEach(ctx context.Context, keys []string) ([][]byte, error) {
	b.record("GetEach")
	return b.Backend.(multiGetter).GetEach(ctx, keys)
}
