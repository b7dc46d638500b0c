package authproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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

// RevokeSID, RevokeSubject and Owns pass on to the wrapped store.
func (g *gatedStore) RevokeSID(ctx context.Context, sid string) (int, error) {
	return g.Store.(session.Revoker).RevokeSID(ctx, sid)
}

func (g *gatedStore) RevokeSubject(ctx context.Context, sub string) (int, error) {
	return g.Store.(session.Revoker).RevokeSubject(ctx, sub)
}

func (g *gatedStore) Owns(name string) bool { return g.Store.(session.CookieOwner).Owns(name) }

// TestRevocationWinsOverAnInFlightLoad is issue 11's finding 2: a session
// load that started before a sign-out finishes after it; the opened-session
// cache must not keep the revoked session, so the next request with the same
// cookie is refused. The interleaving is forced, and the test runs under
// -race. session's TestCachedRevocationWinsOverAnInFlightLoad forces the
// same interleaving for every kind of change, on the CachedStore alone.
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
	if srv.cache == nil || !srv.cache.Stats().Enabled {
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

// replicas are servers built as NewFromConfig builds them with Redis, on one
// shared MemoryBackend standing in for Redis (its pub/sub is in-process).
type replicas struct {
	e       *testEnv
	backend *session.MemoryBackend
	stores  []session.Store // each replica's ticket store, uncached
	srvs    []*Server
}

func newReplicas(t *testing.T, n int) *replicas {
	t.Helper()
	e := newTestEnv(t, withVar("AUTHPROXY_SESSION_STORE", "redis"), withVar("AUTHPROXY_REDIS_URL", "redis://127.0.0.1:1/0"))
	codec, err := session.NewCodec([][]byte{[]byte(e.cfg.CookieSecrets[0].Reveal())}, e.cfg.SessionTTL)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	rs := &replicas{e: e, backend: session.NewMemoryBackend(nil)}
	for range n {
		store := session.NewTicketStore(rs.backend, codec, session.CookieOptions{Name: e.cfg.CookieName, Path: "/"}, nil)
		srv, err := New(Options{Config: e.cfg, Provider: e.provider, Store: store, StateCodec: e.srv.current(context.Background()).state, Templates: pages, Locker: rs.backend})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		rs.stores = append(rs.stores, store)
		rs.srvs = append(rs.srvs, srv)
	}
	return rs
}

// mint saves sess through the first replica's store and returns the Cookie
// header of a browser holding it.
func (rs *replicas) mint(t *testing.T, sess *session.Session) string {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := rs.stores[0].Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, c := range rec.Result().Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// get sends an API request for path to replica i with cookie and returns the status.
func (rs *replicas) get(i int, path, cookie string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", cookie)
	rec := httptest.NewRecorder()
	rs.srvs[i].ServeHTTP(rec, req)
	return rec.Code
}

// TestCacheAcrossReplicas runs two replicas with Redis (a shared
// MemoryBackend's pub/sub in its place): both cache a session; a sign-out
// through A ends it on B at once (the in-process pub/sub delivers before
// Publish returns; e2e's TestCacheTwoReplicas does it over real Redis), a
// back-channel style revocation too; while the subscription is down B loads
// every session from the store, and it caches again once the subscription
// is back.
func TestCacheAcrossReplicas(t *testing.T) {
	rs := newReplicas(t, 2)
	a, b := rs.srvs[0], rs.srvs[1]
	for i, srv := range rs.srvs {
		if srv.cache == nil || !srv.cache.Stats().Enabled {
			t.Fatalf("replica %d: with Redis and a subscription in place the cache should be on", i)
		}
	}
	hits := func(srv *Server) uint64 { return srv.cache.Stats().Hits }
	// cachedEverywhere has both replicas serve cookie twice, the second time
	// from their caches.
	cachedEverywhere := func(step, cookie string) {
		t.Helper()
		for i, srv := range rs.srvs {
			before := hits(srv)
			for range 2 {
				if code := rs.get(i, "/app", cookie); code != http.StatusOK {
					t.Fatalf("%s: replica %d answered %d, want 200", step, i, code)
				}
			}
			if hits(srv) != before+1 {
				t.Fatalf("%s: replica %d served the session's second request from its store, want its cache", step, i)
			}
		}
	}

	sess := testSession()
	cookie := rs.mint(t, sess)
	cachedEverywhere("signed in", cookie)
	if code := rs.get(0, signOutPath, cookie); code != http.StatusFound {
		t.Fatalf("sign-out through A answered %d, want 302", code)
	}
	if n := b.cache.Stats().Entries; n != 0 {
		t.Errorf("after the sign-out through A, B's cache holds %d sessions, want 0", n)
	}
	for i := range rs.srvs {
		if code := rs.get(i, "/app", cookie); code != http.StatusUnauthorized {
			t.Errorf("after the sign-out through A, replica %d answered %d, want 401", i, code)
		}
	}

	// A revocation by sid (a back-channel logout through A).
	sess = testSession()
	sess.ID, sess.SID = "sess-2", "idp-session-2"
	cookie = rs.mint(t, sess)
	cachedEverywhere("signed in again", cookie)
	if _, err := a.store.(session.Revoker).RevokeSID(context.Background(), sess.SID); err != nil {
		t.Fatal(err)
	}
	for i := range rs.srvs {
		if code := rs.get(i, "/app", cookie); code != http.StatusUnauthorized {
			t.Errorf("after revoking the sid through A, replica %d answered %d, want 401", i, code)
		}
	}

	// The subscription goes down: B serves nothing from its cache, so a
	// sign-out whose message it misses still takes effect on it.
	sess = testSession()
	sess.ID = "sess-3"
	cookie = rs.mint(t, sess)
	cachedEverywhere("signed in a third time", cookie)
	rs.backend.InterruptSubscriptions()
	if st := b.cache.Stats(); st.Enabled || st.Entries != 0 {
		t.Fatalf("with the subscription down B's cache is %+v; want it off and empty", st)
	}
	if code := rs.get(1, "/app", cookie); code != http.StatusOK {
		t.Fatalf("with the subscription down B answered %d, want 200 (from the store)", code)
	}
	if code := rs.get(0, signOutPath, cookie); code != http.StatusFound {
		t.Fatalf("sign-out through A answered %d, want 302", code)
	}
	bypassed := b.cache.Stats().Bypassed
	if code := rs.get(1, "/app", cookie); code != http.StatusUnauthorized {
		t.Errorf("with the subscription down, after a sign-out through A that B did not hear of, B answered %d, want 401", code)
	}
	if got := b.cache.Stats().Bypassed; got != bypassed+1 {
		t.Errorf("B's bypassed loads went from %d to %d, want one more", bypassed, got)
	}

	rs.backend.ResumeSubscriptions()
	sess = testSession()
	sess.ID = "sess-4"
	cookie = rs.mint(t, sess)
	cachedEverywhere("with the subscription back", cookie)
}
