package session

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// idpEnv is one test's two replicas, A and B, of one kind of store ("cookie",
// with a RevocationList, or "ticket") over one backend of a kit, each with a
// CachedStore in front; the backend carries the caches' invalidations.
type idpEnv struct {
	backend        Backend
	storeA, storeB Store
	cacheA, cacheB *CachedStore
	clock          *testClock
	codec          *Codec
}

func newIdPEnv(t *testing.T, kit backendKit, kind string) *idpEnv {
	t.Helper()
	e := &idpEnv{clock: newTestClock(testNow), codec: newTestCodec(t, newSecret(t))}
	e.backend, _ = kit.new(t, e.clock.Now)
	newStore := func() Store {
		if kind == "ticket" {
			return NewTicketStore(e.backend, e.codec, CookieOptions{}, e.clock.Now)
		}
		cs := NewCookieStore(e.codec, CookieOptions{}, e.clock.Now)
		return WithRevocation(cs, NewRevocationList(e.backend, 2*time.Hour, e.clock.Now))
	}
	e.storeA, e.storeB = newStore(), newStore()
	bc := e.backend.(Broadcaster)
	e.cacheA = Cached(e.storeA, CacheOptions{Broadcaster: bc, Now: e.clock.Now})
	e.cacheB = Cached(e.storeB, CacheOptions{Broadcaster: bc, Now: e.clock.Now})
	t.Cleanup(func() { e.cacheA.Close(); e.cacheB.Close() })
	poll(t, 10*time.Second, "both caches subscribed", func() bool {
		return e.cacheA.Stats().Enabled && e.cacheB.Stats().Enabled
	})
	return e
}

// idpSession returns a session signed in at idp with sid and sub.
func idpSession(t testing.TB, idp, sid, sub string) *Session {
	t.Helper()
	s := newSession(t, 100)
	s.IdP, s.SID, s.Subject = idp, sid, sub
	return s
}

// idpUsers are the sessions the scoping tests sign in: a partners session
// and a default-IdP one with the same sid and sub, and a default-IdP
// session whose sid and sub, hostile, are the partners ones as Scope writes
// them.
var idpUsers = []struct{ name, idp, sid, sub string }{
	{"partners", "partners", "s1", "u1"},
	{"default", "", "s1", "u1"},
	{"hostile", "", "\x00partners\x00s1", "\x00partners\x00u1"},
}

// TestIdPScopingMemory runs testIdPScoping over a MemoryBackend;
// TestRedisSingle runs it over Redis.
func TestIdPScopingMemory(t *testing.T) { testIdPScoping(t, memoryKit) }

// testIdPScoping checks that revocation by sid or subject never crosses
// IdPs, in the cookie store with a RevocationList and in the ticket store,
// revoked and loaded through the store itself, through one CachedStore, and
// through one replica's CachedStore and loaded through another's; and that
// revocation by email does.
func testIdPScoping(t *testing.T, kit backendKit) {
	ctx := context.Background()
	bySID := func(sid string) func(Revoker) error {
		return func(rv Revoker) error { _, err := rv.RevokeSID(ctx, sid); return err }
	}
	bySub := func(sub string) func(Revoker) error {
		return func(rv Revoker) error { _, err := rv.RevokeSubject(ctx, sub); return err }
	}
	revocations := []struct {
		name      string
		revoke    func(Revoker) error
		adminOnly bool // an AdminRevoker's, not a CachedStore's
		ends      []string
	}{
		{"sid of partners", bySID(Scope("partners", "s1")), false, []string{"partners"}},
		{"sid of the default IdP, raw", bySID("s1"), false, []string{"default"}},
		{"sid of the default IdP, scoped", bySID(Scope("", "s1")), false, []string{"default"}},
		{"hostile sid of the default IdP", bySID(Scope("", "\x00partners\x00s1")), false, []string{"hostile"}},
		{"sid of another IdP", bySID(Scope("other", "s1")), false, nil},
		{"subject of partners", bySub(Scope("partners", "u1")), false, []string{"partners"}},
		{"subject of the default IdP, raw", bySub("u1"), false, []string{"default"}},
		{"hostile subject of the default IdP", bySub(Scope("", "\x00partners\x00u1")), false, []string{"hostile"}},
		{"subject of another IdP", bySub(Scope("other", "u1")), false, nil},
		{"email, at every IdP", func(rv Revoker) error {
			_, err := rv.(AdminRevoker).RevokeEmail(ctx, "ada@example.com")
			return err
		}, true, []string{"partners", "default", "hostile"}},
	}
	paths := []struct {
		name string
		// revoker and reader are what revokes and what loads after.
		revoker, reader func(e *idpEnv) Store
		cached          bool // the reader is a cache filled before the revocation
	}{
		{"store", func(e *idpEnv) Store { return e.storeB }, func(e *idpEnv) Store { return e.storeB }, false},
		{"cache", func(e *idpEnv) Store { return e.cacheB }, func(e *idpEnv) Store { return e.cacheB }, true},
		{"other replica", func(e *idpEnv) Store { return e.cacheA }, func(e *idpEnv) Store { return e.cacheB }, true},
	}
	for _, kind := range []string{"cookie", "ticket"} {
		for _, p := range paths {
			for _, rc := range revocations {
				if rc.adminOnly && p.cached {
					continue
				}
				t.Run(kind+"/"+p.name+"/"+rc.name, func(t *testing.T) {
					e := newIdPEnv(t, kit, kind)
					reader := p.reader(e)
					browsers := map[string]*browser{}
					for _, u := range idpUsers {
						br := newBrowser(t)
						saveVia(t, br, e.storeB, idpSession(t, u.idp, u.sid, u.sub))
						browsers[u.name] = br
						if c, ok := reader.(*CachedStore); ok {
							for i := range 2 {
								if _, hit, err := c.Lookup(br.request()); err != nil || hit != (i == 1) {
									t.Fatalf("%s: load %d: from the cache %v, %v; want the session, cached the second time", u.name, i+1, hit, err)
								}
							}
						}
					}
					err := rc.revoke(p.revoker(e).(Revoker))
					var nerr net.Error
					if errors.As(err, &nerr) && nerr.Timeout() {
						// A loaded machine (a cold make test) can stall Redis past
						// the backend's 1 s I/O timeout; a revocation is idempotent.
						err = rc.revoke(p.revoker(e).(Revoker))
					}
					if err != nil {
						t.Fatalf("revoking: %v", err)
					}
					for _, name := range rc.ends {
						poll(t, 2*time.Second, name+"'s session ended", func() bool {
							_, err := reader.Load(browsers[name].request())
							return errors.Is(err, ErrNotFound)
						})
					}
					for _, u := range idpUsers {
						if slices.Contains(rc.ends, u.name) {
							continue
						}
						br := browsers[u.name]
						if c, ok := reader.(*CachedStore); ok {
							if _, hit, err := c.Lookup(br.request()); err != nil || !hit {
								t.Errorf("%s: from the cache %v, %v; want it still cached", u.name, hit, err)
							}
						}
						got, err := e.storeA.Load(br.request())
						if err != nil || got.IdP != u.idp || got.SID != u.sid {
							t.Errorf("%s: Load from the store = %+v, %v; want the session, untouched", u.name, got, err)
						}
					}
				})
			}
		}
	}

	t.Run("old session without IdP", func(t *testing.T) {
		for _, kind := range []string{"cookie", "ticket"} {
			t.Run(kind, func(t *testing.T) {
				e := newIdPEnv(t, kit, kind)
				br := newBrowser(t)
				plantOldSession(t, e, br, kind)
				got, err := e.cacheB.Load(br.request())
				if err != nil || got.IdP != "" || got.SID != "sid-old" || got.Subject != "sub-old" {
					t.Fatalf("Load of an old session = %+v, %v; want it, of the default IdP", got, err)
				}
				if _, err := e.cacheA.RevokeSID(ctx, Scope("partners", "sid-old")); err != nil {
					t.Fatal(err)
				}
				if got, err := e.cacheB.Load(br.request()); err != nil {
					t.Fatalf("Load after revoking partners' sid-old = %+v, %v; want the old session still", got, err)
				}
				if _, err := e.cacheA.RevokeSID(ctx, "sid-old"); err != nil {
					t.Fatal(err)
				}
				poll(t, 2*time.Second, "the old session ended", func() bool {
					_, err := e.cacheB.Load(br.request())
					return errors.Is(err, ErrNotFound)
				})
			})
		}
	})
}

// oldSessionJSON is a session as releases before Session.IdP sealed it: no
// "idp" member.
const oldSessionJSON = `{"id":"old-1","user":"ada","sub":"sub-old","email":"ada@example.com","sid":"sid-old",` +
	`"created_at":"2030-01-02T03:04:05Z","expires_at":"2030-01-02T04:04:05Z"}`

// plantOldSession puts oldSessionJSON in br as a kind store of e (B's)
// would have saved it before sessions knew their IdP.
func plantOldSession(t *testing.T, e *idpEnv, br *browser, kind string) {
	t.Helper()
	if strings.Contains(oldSessionJSON, "idp") {
		t.Fatal("the old session holds an IdP")
	}
	if kind == "cookie" {
		// Sealed by the Codec from that JSON, as a release before
		// Session.IdP sealed the session.
		sealed, err := e.codec.Seal(DefaultCookieName, json.RawMessage(oldSessionJSON))
		if err != nil {
			t.Fatal(err)
		}
		br.jar.SetCookies(br.u, []*http.Cookie{{Name: DefaultCookieName, Value: sealed}})
		return
	}
	// A ticket store's Save of a session decoded from it stores what it
	// encodes now; store the old JSON under the ticket by hand instead, and
	// the indexes Save would have written then.
	var sess Session
	if err := json.Unmarshal([]byte(oldSessionJSON), &sess); err != nil {
		t.Fatal(err)
	}
	saveVia(t, br, e.storeB, &sess)
	ts := e.storeB.(*TicketStore)
	tk := ticketOf(t, ts, br.request())
	blob, err := sealBlob(tk.key, tk.id, []byte(oldSessionJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.backend.Set(context.Background(), sessionKeyPrefix+tk.id, blob, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{sidKeyPrefix + hashName("sid-old"), subKeyPrefix + hashName("sub-old")} {
		ids, err := e.backend.SetMembers(context.Background(), key)
		if err != nil || !slices.Equal(ids, []string{tk.id}) {
			t.Fatalf("index %s holds %v, %v; want the old session's ticket id, under the raw name", key, ids, err)
		}
	}
}

// TestIdPRoundTrip: a session's IdP survives the cookie store (in one
// cookie, compressed over several, and not compressed) and the ticket
// store, and shows in the ticket store's listings, which by subject are
// scoped to one IdP and by email are not.
func TestIdPRoundTrip(t *testing.T) {
	ctx := context.Background()
	codec := newTestCodec(t, newSecret(t))
	backend := NewMemoryBackend(fixedClock(testNow))
	ticketStore := NewTicketStore(backend, codec, CookieOptions{}, fixedClock(testNow))
	stores := []struct {
		name  string
		store Store
	}{
		{"cookie", NewCookieStore(codec, CookieOptions{}, fixedClock(testNow))},
		{"ticket", ticketStore},
	}
	sessions := []struct {
		name string
		sess *Session
	}{
		{"small", idpSession(t, "partners", "s1", "u1")},
		{"chunked", func() *Session { s := idpSession(t, "partners", "s2", "u1"); s.IDToken = tokenText(t, 6000); return s }()},
		{"many groups", func() *Session { s := manyGroupsSession(t, 150); s.IdP = "partners"; return s }()},
		{"default IdP", idpSession(t, "", "s1", "u1")},
	}
	for _, st := range stores {
		for _, s := range sessions {
			t.Run(st.name+"/"+s.name, func(t *testing.T) {
				br := newBrowser(t)
				saveVia(t, br, st.store, s.sess)
				got, err := st.store.Load(br.request())
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got.IdP != s.sess.IdP {
					t.Errorf("IdP %q, want %q", got.IdP, s.sess.IdP)
				}
				sameSession(t, got, s.sess)
			})
		}
	}

	// The ticket store now holds each session once.
	idps := func(infos []Info) []string {
		var out []string
		for _, i := range infos {
			out = append(out, i.IdP)
		}
		slices.Sort(out)
		return out
	}
	lists := []struct {
		name string
		list func() ([]Info, error)
		want []string
	}{
		{"partners' subject", func() ([]Info, error) { return ticketStore.ListSubject(ctx, Scope("partners", "u1")) }, []string{"partners", "partners"}},
		{"the default IdP's subject", func() ([]Info, error) { return ticketStore.ListSubject(ctx, "u1") }, []string{""}},
		{"another IdP's subject", func() ([]Info, error) { return ticketStore.ListSubject(ctx, Scope("other", "u1")) }, nil},
		{"email", func() ([]Info, error) { return ticketStore.ListEmail(ctx, "ada@example.com") }, []string{"", "partners", "partners", "partners"}},
	}
	for _, l := range lists {
		t.Run("list "+l.name, func(t *testing.T) {
			infos, err := l.list()
			if err != nil {
				t.Fatal(err)
			}
			if got := idps(infos); !slices.Equal(got, l.want) {
				t.Errorf("IdPs listed %q, want %q", got, l.want)
			}
		})
	}
}

// TestScopedEmptyNamesNothing: revoking or listing the scope of an empty
// sid or subject is refused, as an empty one is.
func TestScopedEmptyNamesNothing(t *testing.T) {
	ctx := context.Background()
	backend := NewMemoryBackend(fixedClock(testNow))
	codec := newTestCodec(t, newSecret(t))
	ticketStore := NewTicketStore(backend, codec, CookieOptions{}, fixedClock(testNow))
	list := NewRevocationList(backend, time.Hour, fixedClock(testNow))
	for _, v := range []string{"", Scope("partners", "")} {
		for name, err := range map[string]error{
			"ticket RevokeSID":     second(ticketStore.RevokeSID(ctx, v)),
			"ticket RevokeSubject": second(ticketStore.RevokeSubject(ctx, v)),
			"ticket ListSubject":   second(ticketStore.ListSubject(ctx, v)),
			"list RevokeSID":       second(list.RevokeSID(ctx, v)),
			"list RevokeSubject":   second(list.RevokeSubject(ctx, v)),
		} {
			if err == nil {
				t.Errorf("%s(%q) succeeded; want an error", name, v)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestTicketStoreReindexesAChangedIdP: a session saved again with another
// IdP (and the same sid) is found by that IdP's sid.
func TestTicketStoreReindexesAChangedIdP(t *testing.T) {
	ctx := context.Background()
	store := NewTicketStore(NewMemoryBackend(fixedClock(testNow)), newTestCodec(t, newSecret(t)), CookieOptions{}, fixedClock(testNow))
	br := newBrowser(t)
	sess := idpSession(t, "", "s1", "u1")
	saveVia(t, br, store, sess)
	changed := *sess
	changed.IdP = "partners"
	if err := store.Save(httptest.NewRecorder(), br.request(), &changed); err != nil {
		t.Fatal(err)
	}
	if n, err := store.RevokeSID(ctx, Scope("partners", "s1")); err != nil || n != 1 {
		t.Fatalf("RevokeSID(partners' s1) = %d, %v; want 1", n, err)
	}
	got, err := store.Load(br.request())
	wantNotFound(t, "Load after the revocation", got, err)
}
