package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// gatedStore holds the first Load that passes through it once armed, after
// the wrapped store has answered, until release is closed: a load in flight
// while something changes.
type gatedStore struct {
	Store
	armed   atomic.Bool
	loaded  chan struct{} // closed when the held Load has its answer
	release chan struct{} // closed to let it return
}

func newGatedStore(s Store) *gatedStore {
	return &gatedStore{Store: s, loaded: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedStore) Load(r *http.Request) (*Session, error) {
	sess, err := g.Store.Load(r)
	if g.armed.CompareAndSwap(true, false) {
		close(g.loaded)
		<-g.release
	}
	return sess, err
}

func (g *gatedStore) RevokeSID(ctx context.Context, sid string) (int, error) {
	return g.Store.(Revoker).RevokeSID(ctx, sid)
}

func (g *gatedStore) RevokeSubject(ctx context.Context, sub string) (int, error) {
	return g.Store.(Revoker).RevokeSubject(ctx, sub)
}

func (g *gatedStore) Owns(name string) bool { return g.Store.(CookieOwner).Owns(name) }

// cacheEnv is two replicas, A and B, each with a CachedStore in front of a
// store of its own over one shared MemoryBackend, which carries their
// invalidations too. B's store is gated.
type cacheEnv struct {
	clock   *testClock
	backend *MemoryBackend
	innerA  Store
	a, b    *CachedStore
	gate    *gatedStore
}

// newCacheEnv makes a cacheEnv of "cookie" stores (with a RevocationList)
// or "ticket" stores.
func newCacheEnv(t *testing.T, kind string) *cacheEnv {
	t.Helper()
	e := &cacheEnv{clock: newTestClock(testNow)}
	e.backend = NewMemoryBackend(e.clock.Now)
	codec := newTestCodec(t, newSecret(t))
	newStore := func() Store {
		if kind == "ticket" {
			return NewTicketStore(e.backend, codec, CookieOptions{}, e.clock.Now)
		}
		return WithRevocation(NewCookieStore(codec, CookieOptions{}, e.clock.Now), NewRevocationList(e.backend, 2*time.Hour, e.clock.Now))
	}
	opts := CacheOptions{Broadcaster: e.backend, Now: e.clock.Now}
	e.innerA = newStore()
	e.gate = newGatedStore(newStore())
	e.a, e.b = Cached(e.innerA, opts), Cached(e.gate, opts)
	t.Cleanup(func() { e.a.Close(); e.b.Close() })
	return e
}

// TestCachedRevocationWinsOverAnInFlightLoad forces, for every kind of
// change, the interleaving in which B's load of a session has read the store
// before the change and puts its answer in the cache after: the next Load
// must see the change, not the session from before it. Run under -race.
func TestCachedRevocationWinsOverAnInFlightLoad(t *testing.T) {
	type change func(t *testing.T, e *cacheEnv, r *http.Request, sess *Session)
	clear := func(c func(e *cacheEnv) *CachedStore) change {
		return func(t *testing.T, e *cacheEnv, r *http.Request, _ *Session) {
			if err := c(e).Clear(httptest.NewRecorder(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	revoke := func(c func(e *cacheEnv) *CachedStore, bySID bool) change {
		return func(t *testing.T, e *cacheEnv, _ *http.Request, sess *Session) {
			var err error
			if bySID {
				_, err = c(e).RevokeSID(context.Background(), sess.SID)
			} else {
				_, err = c(e).RevokeSubject(context.Background(), sess.Subject)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	here := func(e *cacheEnv) *CachedStore { return e.b }
	there := func(e *cacheEnv) *CachedStore { return e.a }
	tests := []struct {
		name   string
		kind   string
		change change
		want   func(t *testing.T, sess *Session, err error)
	}{
		{"sign-out here, cookie", "cookie", clear(here), nil},
		{"sign-out here, ticket", "ticket", clear(here), nil},
		{"sign-out on the other replica, cookie", "cookie", clear(there), nil},
		{"sign-out on the other replica, ticket", "ticket", clear(there), nil},
		{"sid revoked here", "ticket", revoke(here, true), nil},
		{"sid revoked on the other replica, cookie", "cookie", revoke(there, true), nil},
		{"subject revoked on the other replica, ticket", "ticket", revoke(there, false), nil},
		{"saved on the other replica", "ticket",
			func(t *testing.T, e *cacheEnv, r *http.Request, sess *Session) {
				changed := *sess
				changed.Groups = []string{"none"}
				if err := e.a.Save(httptest.NewRecorder(), r, &changed); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, sess *Session, err error) {
				if err != nil || !slices.Equal(sess.Groups, []string{"none"}) {
					t.Errorf("after the other replica saved new groups, Load = %+v, %v; want the new groups", sess, err)
				}
			}},
		{"revoked while the subscription was down", "ticket",
			func(t *testing.T, e *cacheEnv, _ *http.Request, sess *Session) {
				e.backend.InterruptSubscriptions()
				if _, err := e.a.RevokeSubject(context.Background(), sess.Subject); err != nil {
					t.Fatal(err)
				}
				e.backend.ResumeSubscriptions() // the message is lost for good
			}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCacheEnv(t, tt.kind)
			br := newBrowser(t)
			sess := newSession(t, 300)
			saveVia(t, br, e.innerA, sess)

			type loaded struct {
				sess *Session
				err  error
			}
			inFlight := make(chan loaded)
			e.gate.armed.Store(true)
			go func() {
				s, err := e.b.Load(br.request())
				inFlight <- loaded{s, err}
			}()
			<-e.gate.loaded
			tt.change(t, e, br.request(), sess)
			close(e.gate.release)
			if got := <-inFlight; got.err != nil || got.sess.ID != sess.ID {
				t.Fatalf("the load in flight = %+v, %v; want the session (it read the store before the change)", got.sess, got.err)
			}
			got, err := e.b.Load(br.request())
			if tt.want != nil {
				tt.want(t, got, err)
			} else {
				wantNotFound(t, "Load after the change", got, err)
			}
		})
	}
}

// TestCachedStoreHitsAndExpiry checks what is answered from the cache: the
// same session cookies, whatever else the request carries; not other bytes;
// not a session past its end, nor an entry older than MaxAge.
func TestCachedStoreHitsAndExpiry(t *testing.T) {
	clock := newTestClock(testNow)
	inner := NewCookieStore(newTestCodec(t, newSecret(t)), CookieOptions{}, clock.Now)
	c := Cached(inner, CacheOptions{MaxAge: 10 * time.Minute, Now: clock.Now})
	br := newBrowser(t)
	sess := newSession(t, 3000) // two chunks
	saveVia(t, br, inner, sess)
	if n := len(br.names()); n < 2 {
		t.Fatalf("the session spans %d cookies, want chunks", n)
	}
	load := func(step string, r *http.Request, wantCached bool) *Session {
		t.Helper()
		got, cached, err := c.Lookup(r)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if cached != wantCached {
			t.Errorf("%s: from the cache %v, want %v", step, cached, wantCached)
		}
		return got
	}
	load("first load", br.request(), false)
	load("second load", br.request(), true)
	withOthers := br.request()
	withOthers.Header.Set("Cookie", "app=1; "+withOthers.Header.Get("Cookie")+"; _authproxy_csrf_abc=x; other=2")
	load("with the app's and a state cookie around", withOthers, true)

	// The same session sealed again: other bytes, opened afresh.
	br2 := newBrowser(t)
	saveVia(t, br2, inner, sess)
	load("the session sealed again", br2.request(), false)

	clock.Advance(10 * time.Minute)
	load("at MaxAge", br.request(), false)
	load("reloaded after MaxAge", br.request(), true)

	clock.Advance(50 * time.Minute) // the session's end
	got, cached, err := c.Lookup(br.request())
	if cached || !errors.Is(err, ErrNotFound) || got != nil {
		t.Errorf("at the session's end: %+v, cached %v, %v; want ErrNotFound from the store", got, cached, err)
	}
	st := c.Stats()
	if st.Hits != 3 || st.Misses != 4 || st.Bypassed != 0 || !st.Enabled {
		t.Errorf("stats %+v; want 3 hits, 4 misses, enabled", st)
	}
}

// TestCachedStoreIdleTimeout: a session whose idle timeout runs out is not
// answered from the cache, however recently it was cached.
func TestCachedStoreIdleTimeout(t *testing.T) {
	clock := newTestClock(testNow)
	inner := NewCookieStore(newTestCodec(t, newSecret(t)), CookieOptions{}, clock.Now)
	c := Cached(inner, CacheOptions{Now: clock.Now})
	br := newBrowser(t)
	sess := newSession(t, 100)
	sess.IdleTimeout = 40 * time.Second
	saveVia(t, br, inner, sess)
	if _, err := c.Load(br.request()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(40 * time.Second) // within MaxAge
	got, err := c.Load(br.request())
	wantNotFound(t, "Load once idle", got, err)
}

// TestCachedStoreEvictsGradually fills a cache three times over: it never
// holds more than Size, stays full once full (one evicted for each added,
// never emptied at once), and keeps the newest.
func TestCachedStoreEvictsGradually(t *testing.T) {
	const size = 64
	inner := NewCookieStore(newTestCodec(t, newSecret(t)), CookieOptions{}, fixedClock(testNow))
	c := Cached(inner, CacheOptions{Size: size, Now: fixedClock(testNow)})
	var last *http.Request
	for i := range 3 * size {
		br := newBrowser(t)
		saveVia(t, br, inner, newSession(t, 50))
		last = br.request()
		if _, err := c.Load(last); err != nil {
			t.Fatal(err)
		}
		if n, want := c.Stats().Entries, min(i+1, size); n != want {
			t.Fatalf("after %d sessions the cache holds %d, want %d", i+1, n, want)
		}
	}
	if _, cached, _ := c.Lookup(last); !cached {
		t.Error("the newest session was evicted")
	}
}

// TestCachedStoreDropsWhatAChangeAffects: a change drops the sessions it is
// about, by cookie, ID, SID or Subject, and leaves the others cached.
func TestCachedStoreDropsWhatAChangeAffects(t *testing.T) {
	e := newCacheEnv(t, "ticket")
	type user struct {
		br   *browser
		sess *Session
	}
	newUser := func(sub, sid string) user {
		u := user{newBrowser(t), newSession(t, 50)}
		u.sess.Subject, u.sess.SID = sub, sid
		saveVia(t, u.br, e.innerA, u.sess)
		return u
	}
	users := []user{newUser("ann", "s1"), newUser("ann", "s2"), newUser("bob", "s3"), newUser("cat", "s4")}
	cached := func() []bool {
		var out []bool
		for _, u := range users {
			_, hit, _ := e.b.Lookup(u.br.request())
			out = append(out, hit)
		}
		return out
	}
	cached() // fill B's cache
	if got := cached(); !slices.Equal(got, []bool{true, true, true, true}) {
		t.Fatalf("cached %v after loading every session; want all", got)
	}
	if _, err := e.a.RevokeSubject(context.Background(), "ann"); err != nil {
		t.Fatal(err)
	}
	if st := e.b.Stats(); st.Entries != 2 {
		t.Errorf("after revoking ann's sessions on A, B holds %d, want bob's and cat's", st.Entries)
	}
	if _, err := e.a.RevokeSID(context.Background(), "s3"); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Clear(httptest.NewRecorder(), users[3].br.request()); err != nil {
		t.Fatal(err)
	}
	if st := e.b.Stats(); st.Entries != 0 {
		t.Errorf("after every session was ended on A, B holds %d, want none", st.Entries)
	}
	for i, u := range users {
		if got, err := e.b.Load(u.br.request()); !errors.Is(err, ErrNotFound) {
			t.Errorf("user %d: Load after the revocations = %+v, %v; want ErrNotFound", i, got, err)
		}
	}
}

// TestCachedStoreSubscription: with a Broadcaster the cache is used only
// while the subscription is in place, starts empty each time it comes back,
// and is not used after Close.
func TestCachedStoreSubscription(t *testing.T) {
	backend := NewMemoryBackend(fixedClock(testNow))
	backend.InterruptSubscriptions() // down before the cache subscribes
	inner := NewCookieStore(newTestCodec(t, newSecret(t)), CookieOptions{}, fixedClock(testNow))
	c := Cached(inner, CacheOptions{Broadcaster: backend, Now: fixedClock(testNow)})
	br := newBrowser(t)
	saveVia(t, br, inner, newSession(t, 50))
	lookup := func(step string, want bool) {
		t.Helper()
		_, cached, err := c.Lookup(br.request())
		if err != nil || cached != want {
			t.Fatalf("%s: from the cache %v, %v; want %v", step, cached, err, want)
		}
	}
	lookup("before the subscription is in place", false)
	lookup("again before the subscription is in place", false)
	if st := c.Stats(); st.Enabled || st.Entries != 0 || st.Bypassed != 2 {
		t.Fatalf("stats before the subscription %+v; want off, empty, 2 bypassed", st)
	}
	backend.ResumeSubscriptions()
	lookup("subscribed", false)
	lookup("subscribed, again", true)
	backend.InterruptSubscriptions()
	lookup("subscription lost", false)
	backend.ResumeSubscriptions()
	lookup("subscribed again: the cache starts empty", false)
	lookup("subscribed again, again", true)
	c.Close()
	lookup("closed", false)
	if st := c.Stats(); st.Enabled {
		t.Errorf("a closed cache is enabled: %+v", st)
	}
}

// TestCachedStorePassesOn: a CachedStore is a Revoker, Pinger and
// CookieOwner by its store; without those the calls fail, answer nil and own
// nothing, and a store that owns no cookies has nothing cached.
func TestCachedStorePassesOn(t *testing.T) {
	codec := newTestCodec(t, newSecret(t))
	backend := NewMemoryBackend(nil)
	ticket := Cached(NewTicketStore(backend, codec, CookieOptions{Name: "t"}, nil), CacheOptions{})
	if !ticket.Owns("t") || ticket.Owns("t_csrf_x") || ticket.Owns("other") {
		t.Error("Owns does not follow the ticket store's")
	}
	if _, err := ticket.RevokeSID(context.Background(), "s"); err != nil {
		t.Errorf("RevokeSID through the ticket store: %v", err)
	}
	if err := ticket.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}

	plain := Cached(struct{ Store }{NewCookieStore(codec, CookieOptions{}, nil)}, CacheOptions{})
	if plain.Owns(DefaultCookieName) {
		t.Error("a store that is no CookieOwner owns a cookie through the cache")
	}
	if _, err := plain.RevokeSubject(context.Background(), "u"); !errors.Is(err, errCannotRevoke) {
		t.Errorf("RevokeSubject through a store that cannot: %v, want errCannotRevoke", err)
	}
	if err := plain.Ping(context.Background()); err != nil {
		t.Errorf("Ping through a store that is no Pinger: %v", err)
	}
	br := newBrowser(t)
	saveVia(t, br, plain, newSession(t, 50))
	for range 2 {
		if _, cached, err := plain.Lookup(br.request()); err != nil || cached {
			t.Fatalf("a store that owns no cookies: cached %v, %v; want loads from the store", cached, err)
		}
	}
}

// failingBroadcaster is a Broadcaster whose subscription is in place and
// whose Publish fails.
type failingBroadcaster struct{}

func (failingBroadcaster) Publish(context.Context, string, []byte) error {
	return errors.New("publish failed")
}

func (failingBroadcaster) Subscribe(_ string, sub Subscriber) func() {
	sub.Subscribed()
	return func() {}
}

// TestCachedStorePublishFailure: a revocation or sign-out whose
// invalidation cannot be published reports it (other replicas may keep the
// session for up to MaxAge); a save does not (it was saved), and the cache
// here is dropped either way.
func TestCachedStorePublishFailure(t *testing.T) {
	codec := newTestCodec(t, newSecret(t))
	inner := NewTicketStore(NewMemoryBackend(fixedClock(testNow)), codec, CookieOptions{}, fixedClock(testNow))
	c := Cached(inner, CacheOptions{Broadcaster: failingBroadcaster{}, Now: fixedClock(testNow)})
	br := newBrowser(t)
	sess := newSession(t, 50)
	saveVia(t, br, c, sess)
	if _, err := c.Load(br.request()); err != nil {
		t.Fatal(err)
	}
	touched := *sess
	touched.LastSeen = testNow
	if err := c.Save(httptest.NewRecorder(), br.request(), &touched); err != nil {
		t.Errorf("Save with a failing publish: %v, want nil", err)
	}
	if _, err := c.RevokeSID(context.Background(), sess.SID); err == nil {
		t.Error("RevokeSID with a failing publish reported no error")
	}
	err := c.Clear(httptest.NewRecorder(), br.request())
	if err == nil {
		t.Error("Clear with a failing publish reported no error")
	}
	if st := c.Stats(); st.Entries != 0 {
		t.Errorf("the cache holds %d sessions after the revocation, want none", st.Entries)
	}
}

// TestInvalidationMessages: messages read back as written, and anything
// unreadable drops everything.
func TestInvalidationMessages(t *testing.T) {
	full := invalidation{
		keys: []cacheKey{{1}, {2}}, ids: []nameSum{sumName("id")},
		sids: []nameSum{sumName("sid")}, subs: []nameSum{sumName("sub")},
	}
	for _, inv := range []invalidation{full, {all: true}, {ids: []nameSum{sumName("x")}}} {
		msg := inv.encode()
		if got := decodeInvalidation(msg); fmt.Sprint(got) != fmt.Sprint(inv) {
			t.Errorf("%s read back as %+v, want %+v", msg, got, inv)
		}
	}
	valid := string(full.encode())
	for _, msg := range []string{"", "1", "2 " + valid[2:], "1 x" + valid[3:46], "1 k" + valid[3:40], "1 k" + valid[3:46] + "AA", "1 k!!!", valid + " junk"} {
		if got := decodeInvalidation([]byte(msg)); !got.all {
			t.Errorf("%q read as %+v; want everything dropped", msg, got)
		}
	}
}
