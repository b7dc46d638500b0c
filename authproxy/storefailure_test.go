package authproxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/session"
)

// faultyBackend is a memory backend that fails as a Redis that is down does.
// A real Redis going down is tested end to end (e2e/redis_test.go,
// e2e/sentinel_test.go); this one fails on cue, with an error that names an
// address, as go-redis's do.
type faultyBackend struct {
	*session.MemoryBackend
	down       atomic.Bool // every operation fails
	writesDown atomic.Bool // writes fail; reads and Ping work
	hung       atomic.Bool // Ping waits until its context ends
}

var errRedisDown = errors.New("session: redis: dial tcp 10.9.8.7:6379: connect: connection refused")

func newFaultyBackend() *faultyBackend {
	return &faultyBackend{MemoryBackend: session.NewMemoryBackend(nil)}
}

func (b *faultyBackend) fail(write bool) error {
	if b.down.Load() || write && b.writesDown.Load() {
		return errRedisDown
	}
	return nil
}

func (b *faultyBackend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := b.fail(false); err != nil {
		return nil, err
	}
	return b.MemoryBackend.Get(ctx, key)
}

func (b *faultyBackend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := b.fail(true); err != nil {
		return err
	}
	return b.MemoryBackend.Set(ctx, key, value, ttl)
}

func (b *faultyBackend) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := b.fail(true); err != nil {
		return false, err
	}
	return b.MemoryBackend.SetNX(ctx, key, value, ttl)
}

func (b *faultyBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := b.fail(true); err != nil {
		return false, err
	}
	return b.MemoryBackend.Replace(ctx, key, value, ttl)
}

func (b *faultyBackend) Delete(ctx context.Context, key string) error {
	if err := b.fail(true); err != nil {
		return err
	}
	return b.MemoryBackend.Delete(ctx, key)
}

func (b *faultyBackend) AddToSet(ctx context.Context, key, member string, ttl time.Duration) error {
	if err := b.fail(true); err != nil {
		return err
	}
	return b.MemoryBackend.AddToSet(ctx, key, member, ttl)
}

func (b *faultyBackend) RemoveFromSet(ctx context.Context, key, member string) error {
	if err := b.fail(true); err != nil {
		return err
	}
	return b.MemoryBackend.RemoveFromSet(ctx, key, member)
}

func (b *faultyBackend) SetMembers(ctx context.Context, key string) ([]string, error) {
	if err := b.fail(false); err != nil {
		return nil, err
	}
	return b.MemoryBackend.SetMembers(ctx, key)
}

func (b *faultyBackend) Ping(ctx context.Context) error {
	if b.hung.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return b.fail(false)
}

// storeFailureLines counts the log lines reporting a failure of the store
// at once (not the throttled summaries, which carry "repeated").
func storeFailureLines(logs string) (first, summaries int) {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"msg":"session store failed"`) {
			if strings.Contains(line, `"repeated"`) {
				summaries++
			} else {
				first++
			}
		}
	}
	return first, summaries
}

func TestStoreDownAnswers503WithRetryAfter(t *testing.T) {
	b := newFaultyBackend()
	e := newTestEnv(t, withBackend(b))
	c := e.browser()
	e.signIn(t, c, "/app")
	b.down.Store(true)

	for _, tc := range []struct {
		name string
		send func() reply
	}{
		{"page", func() reply { return e.navigate(t, noFollow(c), "/app") }},
		{"API request", func() reply { return e.api(t, noFollow(c), "/app") }},
		{"userinfo", func() reply { return e.api(t, noFollow(c), userinfoPath) }},
		{"forward auth", func() reply { return e.request(t, noFollow(c), http.MethodGet, authPath) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send()
			if r.Status != http.StatusServiceUnavailable || r.Header.Get("Location") != "" {
				t.Fatalf("got %d, Location %q; want 503 and no redirect; body %.300s", r.Status, r.Header.Get("Location"), r.Body)
			}
			if got := r.Header.Get("Retry-After"); got != storeRetryAfter {
				t.Errorf("Retry-After %q, want %q", got, storeRetryAfter)
			}
			if strings.Contains(r.Body, "10.9.8.7") || strings.Contains(r.Body, "dial tcp") {
				t.Errorf("the answer shows the store's error: %.300s", r.Body)
			}
		})
	}
}

func TestStoreFailuresLoggedThrottled(t *testing.T) {
	b := newFaultyBackend()
	e := newTestEnv(t, withBackend(b))
	c := e.browser()
	e.signIn(t, c, "/app")
	b.down.Store(true)
	const n = 40
	for range n {
		if r := e.api(t, c, "/app"); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("store down: got %d, want 503", r.Status)
		}
	}
	logs := e.logs.String()
	first, summaries := storeFailureLines(logs)
	// Summaries come a window (5 s) apart: none is due yet unless this
	// machine is very slow.
	if first != 1 || summaries > 1 {
		t.Errorf("%d failed requests logged %d \"session store failed\" lines and %d summaries; want 1 and at most 1\n%s", n, first, summaries, logs)
	}
	if !strings.Contains(logs, "10.9.8.7:6379: connect: connection refused") {
		t.Errorf("the log does not say why the store failed:\n%s", logs)
	}
}

func TestReadyzNamesWhatIsNotReady(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		idpDown, storeDown, hung bool
		want                     int
		body                     string
		cause                    string // in the log, not the answer
	}{
		{"ready", false, false, false, http.StatusOK, `{"status":"ok"}`, ""},
		{"IdP never discovered", true, false, false,
			http.StatusServiceUnavailable, `{"status":"unavailable","not_ready":["identity_provider"]}`, "127.0.0.1"},
		{"session store down", false, true, false,
			http.StatusServiceUnavailable, `{"status":"unavailable","not_ready":["session_store"]}`, "10.9.8.7:6379"},
		{"session store hangs", false, false, true,
			http.StatusServiceUnavailable, `{"status":"unavailable","not_ready":["session_store"]}`, "context deadline exceeded"},
		{"both", true, true, false,
			http.StatusServiceUnavailable, `{"status":"unavailable","not_ready":["identity_provider","session_store"]}`, "10.9.8.7:6379"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFaultyBackend()
			b.down.Store(tc.storeDown)
			b.hung.Store(tc.hung)
			opts := []envOption{withBackend(b)}
			if tc.idpDown {
				opts = append(opts, withIdPDown())
			}
			e := newTestEnv(t, opts...)
			// A probe gives up after a few seconds; /readyz must answer
			// before, whatever the store does.
			c := e.browser()
			c.Timeout = 10 * readyTimeout
			r := e.api(t, c, readyPath)
			if r.Status != tc.want || strings.TrimSpace(r.Body) != tc.body {
				t.Errorf("got %d %s, want %d %s", r.Status, r.Body, tc.want, tc.body)
			}
			if logs := e.logs.String(); !strings.Contains(logs, tc.cause) {
				t.Errorf("the log does not hold the cause %q:\n%s", tc.cause, logs)
			}
		})
	}
}

func TestCallbackWhileStoreDown(t *testing.T) {
	b := newFaultyBackend()
	e := newTestEnv(t, withBackend(b))
	c := e.browser()
	cb := e.idp.authorize(t, e.startSignIn(t, c, "/app/page"))
	tokenCalls := func() int {
		e.idp.mu.Lock()
		defer e.idp.mu.Unlock()
		return e.idp.tokenCalls
	}
	before := tokenCalls()

	b.down.Store(true)
	r := e.callback(t, c, cb)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != storeRetryAfter {
		t.Fatalf("callback while the store is down: got %d, Retry-After %q; want 503 with Retry-After %s; body %.300s",
			r.Status, r.Header.Get("Retry-After"), storeRetryAfter, r.Body)
	}
	if !strings.Contains(r.Body, "Reload this page") {
		t.Errorf("the page does not say to reload it: %.500s", r.Body)
	}
	for _, ck := range r.Cookies {
		if ck.MaxAge < 0 {
			t.Errorf("callback while the store is down expired cookie %s: the sign-in's state must survive", ck.Name)
		}
	}
	if n := tokenCalls() - before; n != 0 {
		t.Errorf("callback while the store is down exchanged the code (%d token requests): it works only once", n)
	}

	// Loaded again once the store is back, the same callback completes.
	b.down.Store(false)
	r = e.callback(t, c, cb)
	if r.Status != http.StatusFound || r.Header.Get("Location") != "/app/page" || !e.setsSession(r.Cookies) {
		t.Fatalf("the callback again after the store came back: got %d, Location %q; want 302 to /app/page with a session; body %.300s",
			r.Status, r.Header.Get("Location"), r.Body)
	}
}

func TestCallbackWhenSavingFails(t *testing.T) {
	b := newFaultyBackend()
	e := newTestEnv(t, withBackend(b))
	c := e.browser()
	cb := e.idp.authorize(t, e.startSignIn(t, c, "/app"))
	b.writesDown.Store(true) // Ping answers, saving the session fails
	r := e.callback(t, c, cb)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != storeRetryAfter {
		t.Fatalf("got %d, Retry-After %q; want 503 with Retry-After %s; body %.300s", r.Status, r.Header.Get("Retry-After"), storeRetryAfter, r.Body)
	}
	if !strings.Contains(r.Body, startPath+"?rd=%2Fapp") {
		t.Errorf("the page does not link to signing in again: %.800s", r.Body)
	}
	if e.setsSession(r.Cookies) {
		t.Error("a session cookie was set although the session was not saved")
	}
}

func TestLogThrottle(t *testing.T) {
	var buf lockedBuffer
	lt := newLogThrottle(slog.New(slog.NewJSONHandler(&buf, nil)), "thing failed", time.Hour) // flush is called by hand
	lines := func() []map[string]any {
		var out []map[string]any
		for line := range strings.Lines(buf.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			out = append(out, m)
		}
		return out
	}
	for i := range 100 {
		lt.failed(errors.New("boom "+string(rune('a'+i%26))), "path", "/p")
	}
	if got := lines(); len(got) != 1 || got[0]["err"] != "boom a" || got[0]["path"] != "/p" {
		t.Fatalf("100 failures logged %v; want only the first", got)
	}
	lt.flush()
	got := lines()
	if len(got) != 2 || got[1]["repeated"] != float64(99) || got[1]["err"] != "boom "+string(rune('a'+99%26)) {
		t.Fatalf("after the window: %v; want a summary of 99 with the latest error", got)
	}
	lt.flush() // a window without failures ends the throttling
	if got := lines(); len(got) != 2 {
		t.Fatalf("a window without failures logged %v", got[2:])
	}
	lt.failed(errors.New("again"))
	if got := lines(); len(got) != 3 || got[2]["err"] != "again" || got[2]["repeated"] != nil {
		t.Fatalf("a failure after a quiet window: %v; want it logged at once", got)
	}
}

// TestSignOutWhileStoreDown: a sign-out that cannot end the session in the
// store says so with a 503 page (and Retry-After), never a 500, and still
// drops the browser's cookie; once the store is back, signing out works.
func TestSignOutWhileStoreDown(t *testing.T) {
	b := newFaultyBackend()
	e := newTestEnv(t, withBackend(b))
	c := e.browser()
	e.signIn(t, c, "/app")
	b.down.Store(true)
	r := e.navigate(t, noFollow(c), signOutPath)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != storeRetryAfter {
		t.Fatalf("sign-out with the store down: %d, Retry-After %q; want 503 with %q; body %.300s", r.Status, r.Header.Get("Retry-After"), storeRetryAfter, r.Body)
	}
	if strings.Contains(r.Body, "10.9.8.7") {
		t.Errorf("the page shows the store's error: %.300s", r.Body)
	}
	expired := false
	for _, sc := range r.Cookies {
		if sc.Name == e.cfg.CookieName && sc.MaxAge < 0 {
			expired = true
		}
	}
	if !expired {
		t.Errorf("the session cookie was not expired: %v", r.Cookies)
	}
	b.down.Store(false)
	if r := e.navigate(t, noFollow(c), signOutPath); r.Status != http.StatusFound {
		t.Errorf("sign-out with the store back: %d, want 302", r.Status)
	}
}
