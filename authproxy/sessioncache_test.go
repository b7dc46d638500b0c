package authproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// gatedStore holds the first Load that passes through it, after the wrapped
// store has judged the session, until release is closed: a load that is in
// flight while the session is revoked.
type gatedStore struct {
	session.Store
	held    atomic.Bool
	loaded  chan struct{} // closed when the first Load has its answer
	release chan struct{} // closed to let it return
}

func (g *gatedStore) Load(r *http.Request) (*session.Session, error) {
	sess, err := g.Store.Load(r)
	if g.held.CompareAndSwap(false, true) {
		close(g.loaded)
		<-g.release
	}
	return sess, err
}

// RevokeSID and RevokeSubject pass revocation through to the wrapped store.
func (g *gatedStore) RevokeSID(ctx context.Context, sid string) (int, error) {
	return g.Store.(session.Revoker).RevokeSID(ctx, sid)
}

func (g *gatedStore) RevokeSubject(ctx context.Context, sub string) (int, error) {
	return g.Store.(session.Revoker).RevokeSubject(ctx, sub)
}

// TestRevocationWinsOverAnInFlightLoad is issue 11's finding 2: a session
// load that started before a sign-out finishes after it; the opened-session
// cache must not keep the revoked session, so the next request with the same
// cookie is refused. The interleaving is forced, and the test runs under -race.
func TestRevocationWinsOverAnInFlightLoad(t *testing.T) {
	e := newTestEnv(t)
	list := session.NewRevocationList(session.NewMemoryBackend(nil), e.cfg.SessionTTL, nil)
	gate := &gatedStore{Store: session.WithRevocation(e.store, list), loaded: make(chan struct{}), release: make(chan struct{})}
	pages, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Config: e.cfg, Provider: e.provider, Store: gate, StateCodec: e.srv.live.Load().state, Templates: pages})
	if err != nil {
		t.Fatal(err)
	}
	if srv.cache == nil {
		t.Fatal("the cookie store without Redis should cache opened sessions")
	}
	cookie := e.mintSession(t, testSession())
	get := func(path string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}

	inFlight := make(chan int)
	go func() { inFlight <- get("/app") }() // loads, then waits at the gate
	<-gate.loaded
	if code := get(signOutPath); code != http.StatusFound {
		t.Fatalf("sign-out answered %d, want 302", code)
	}
	close(gate.release)
	if code := <-inFlight; code != http.StatusOK {
		t.Fatalf("the request in flight at sign-out answered %d, want 200 (it was authenticated before)", code)
	}
	if code := get("/app"); code != http.StatusUnauthorized {
		t.Fatalf("after sign-out the same cookie got %d, want 401: a revoked session was cached again", code)
	}
}

// TestSessionCacheGenerationsAndEviction checks the cache's two rules: a put
// with a generation that a reset has passed is refused, and a full cache
// makes room by evicting a quarter, never by emptying itself.
func TestSessionCacheGenerationsAndEviction(t *testing.T) {
	c := newSessionCache("_authproxy")
	now := testSession().CreatedAt
	key := func(i int) [32]byte { return [32]byte{byte(i), byte(i >> 8), byte(i >> 16)} }

	stale := c.generation()
	c.reset()
	c.put(key(1), testSession(), stale)
	if c.get(key(1), now) != nil {
		t.Error("a put from before a reset was kept")
	}
	c.put(key(1), testSession(), c.generation())
	if c.get(key(1), now) == nil {
		t.Error("a put with the current generation was refused")
	}

	for i := range sessionCacheSize * 3 {
		c.put(key(i), testSession(), c.generation())
		if n := len(c.m); n > sessionCacheSize || (i >= sessionCacheSize && n < sessionCacheSize*3/4) {
			t.Fatalf("after %d puts the cache holds %d entries, want between %d and %d", i+1, n, sessionCacheSize*3/4, sessionCacheSize)
		}
	}
	if c.get(key(sessionCacheSize*3-1), now) == nil {
		t.Error("the newest entry was evicted")
	}
}
