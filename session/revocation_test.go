package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

func TestSessionExpired(t *testing.T) {
	base := Session{CreatedAt: testNow, ExpiresAt: testNow.Add(time.Hour)}
	tests := []struct {
		name        string
		idle        time.Duration
		lastSeen    time.Time
		at          time.Duration // after testNow
		wantIdle    bool
		wantExpired bool
	}{
		{"no idle limit, fresh", 0, time.Time{}, 0, false, false},
		{"no idle limit, long unused", 0, time.Time{}, 59 * time.Minute, false, false},
		{"at ExpiresAt", 0, time.Time{}, time.Hour, false, true},
		{"idle, not yet", 10 * time.Minute, time.Time{}, 10*time.Minute - 1, false, false},
		{"idle since sign-in", 10 * time.Minute, time.Time{}, 10 * time.Minute, true, true},
		{"idle, seen since", 10 * time.Minute, testNow.Add(5 * time.Minute), 14 * time.Minute, false, false},
		{"idle since last seen", 10 * time.Minute, testNow.Add(5 * time.Minute), 15 * time.Minute, true, true},
		{"seen, but past ExpiresAt", 10 * time.Minute, testNow.Add(55 * time.Minute), time.Hour, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			s.IdleTimeout, s.LastSeen = tt.idle, tt.lastSeen
			now := testNow.Add(tt.at)
			if got := s.IdleExpired(now); got != tt.wantIdle {
				t.Errorf("IdleExpired = %v, want %v", got, tt.wantIdle)
			}
			if got := s.Expired(now); got != tt.wantExpired {
				t.Errorf("Expired = %v, want %v", got, tt.wantExpired)
			}
			if !s.Expired(s.end()) || (s.end().After(now) && s.Expired(now)) {
				t.Errorf("end() = %v disagrees with Expired", s.end())
			}
		})
	}
}

func TestCookieStoreIdleTimeout(t *testing.T) {
	clock := newTestClock(testNow)
	store := NewCookieStore(newTestCodec(t, newSecret(t)), CookieOptions{}, clock.Now)
	b := newBrowser(t)
	sess := newSession(t, 100)
	sess.IdleTimeout = 10 * time.Minute
	saveVia(t, b, store, sess)
	steps := []struct {
		name    string
		advance time.Duration
		touch   bool
		wantOK  bool
	}{
		{"9m", 9 * time.Minute, false, true},
		{"touched", 0, true, true},
		{"9m after the touch", 9 * time.Minute, false, true},
		{"10m after the touch", time.Minute, false, false},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if s.touch {
			sess.LastSeen = clock.Now()
			saveVia(t, b, store, sess)
		}
		got, err := store.Load(b.request())
		if ok := err == nil; ok != s.wantOK {
			t.Fatalf("%s: Load = %v, %v; want success %v", s.name, got, err, s.wantOK)
		}
		if !s.wantOK {
			wantNotFound(t, s.name, got, err)
		}
	}
}

func TestRevocationList(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock(testNow)
	list := NewRevocationList(NewMemoryBackend(clock.Now), 2*time.Hour, clock.Now)
	mk := func(id, sub, sid string, created time.Duration) *Session {
		return &Session{ID: id, Subject: sub, SID: sid, CreatedAt: testNow.Add(created), ExpiresAt: testNow.Add(created + time.Hour)}
	}
	before := mk("a", "ada", "sid-1", -time.Minute)
	sameSIDAfter := mk("b", "ada", "sid-1", time.Minute)
	otherSID := mk("c", "ada", "sid-2", -time.Minute)
	bob := mk("d", "bob", "sid-3", -time.Minute)
	noSID := mk("e", "bob", "", -time.Minute)
	carol := mk("f", "carol", "", -time.Minute)
	carol.Email = "Carol@Example.com"
	all := []*Session{before, sameSIDAfter, otherSID, bob, noSID, carol}

	steps := []struct {
		name    string
		do      func() error
		advance time.Duration
		revoked []*Session
	}{
		{"nothing revoked", nil, 0, nil},
		{"sid", func() error { _, err := list.RevokeSID(ctx, "sid-1"); return err }, 0, []*Session{before}},
		{"subject", func() error { _, err := list.RevokeSubject(ctx, "bob"); return err }, 0, []*Session{before, bob, noSID}},
		{"one session", func() error { return list.revokeSession(ctx, otherSID) }, 0, []*Session{before, otherSID, bob, noSID}},
		{"email, in another case", func() error { _, err := list.RevokeEmail(ctx, " carol@EXAMPLE.com"); return err }, 0, []*Session{before, otherSID, bob, noSID, carol}},
		// Every session created until now: not sameSIDAfter, created later.
		{"all", func() error { _, err := list.RevokeAll(ctx); return err }, time.Minute, []*Session{before, otherSID, bob, noSID, carol}},
		{"all, a minute later", func() error { _, err := list.RevokeAll(ctx); return err }, 0, all},
		{"at the end of the TTL", nil, 2 * time.Hour, nil},
	}
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		clock.Advance(s.advance)
		for _, sess := range all {
			got, err := list.Revoked(ctx, sess)
			if err != nil {
				t.Fatalf("%s: Revoked(%s): %v", s.name, sess.ID, err)
			}
			if want := slices.Contains(s.revoked, sess); got != want {
				t.Errorf("%s: Revoked(%s) = %v, want %v", s.name, sess.ID, got, want)
			}
		}
	}
	for _, err := range []error{
		func() error { _, err := list.RevokeSID(ctx, ""); return err }(),
		func() error { _, err := list.RevokeSubject(ctx, ""); return err }(),
		func() error { _, err := list.RevokeEmail(ctx, " "); return err }(),
	} {
		if err == nil {
			t.Error("revoking an empty name succeeded")
		}
	}
}

func TestRevocableStore(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock(testNow)
	backend := NewMemoryBackend(clock.Now)
	cookies := NewCookieStore(newTestCodec(t, newSecret(t)), CookieOptions{}, clock.Now)
	store := WithRevocation(cookies, NewRevocationList(backend, 168*time.Hour, clock.Now))

	signIn := func(sub, sid string) (*browser, *Session) {
		b := newBrowser(t)
		sess := newSession(t, 100)
		sess.ID, sess.Subject, sess.SID, sess.CreatedAt = tokenText(t, 24), sub, sid, clock.Now()
		saveVia(t, b, store, sess)
		return b, sess
	}
	loads := func(b *browser) bool {
		t.Helper()
		got, err := store.Load(b.request())
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load: %v", err)
		}
		if err != nil && got != nil {
			t.Fatalf("Load returned a session with %v", err)
		}
		return err == nil
	}

	t.Run("sign-out ends copies", func(t *testing.T) {
		b, sess := signIn("ada", "sid-1")
		other, _ := signIn("ada", "sid-1")
		copied := b.request()
		rec := httptest.NewRecorder()
		if err := store.Clear(rec, b.request()); err != nil {
			t.Fatalf("Clear: %v", err)
		}
		if _, expired := split(rec.Result().Cookies()); !slices.Contains(expired, "_authproxy") {
			t.Errorf("Clear expired %v", expired)
		}
		if got, err := store.Load(copied); !errors.Is(err, ErrNotFound) {
			t.Errorf("Load of a copy after sign-out = %v, %v; want ErrNotFound", got, err)
		}
		if got, err := cookies.Load(copied); err != nil || got.ID != sess.ID {
			t.Fatalf("the copy no longer opens at all (%v): the test proves nothing", err)
		}
		if !loads(other) {
			t.Error("another session of the same user ended")
		}
	})

	t.Run("back-channel logout", func(t *testing.T) {
		clock.Advance(time.Second)
		b1, s1 := signIn("bob", "sid-2")
		b2, _ := signIn("bob", "sid-3")
		clock.Advance(time.Second)
		n, err := store.RevokeSID(ctx, "sid-2")
		if err != nil || n != 0 {
			t.Fatalf("RevokeSID = %d, %v; want 0 (unknown), nil", n, err)
		}
		if loads(b1) || !loads(b2) {
			t.Errorf("after RevokeSID: sessions load %v, %v; want false, true", loads(b1), loads(b2))
		}
		// A refresh saved after the revocation does not bring it back.
		refreshed := *s1
		refreshed.AccessToken = "new"
		saveVia(t, b1, store, &refreshed)
		if loads(b1) {
			t.Error("a revoked session came back when saved again")
		}
		if _, err := store.RevokeSubject(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if loads(b2) {
			t.Error("RevokeSubject left a session")
		}
		clock.Advance(time.Second)
		b3, _ := signIn("bob", "sid-4")
		if !loads(b3) {
			t.Error("a sign-in after the revocation is revoked too")
		}
	})

	t.Run("capabilities", func(t *testing.T) {
		if !store.Owns("_authproxy_2") || store.Owns("other") {
			t.Error("Owns does not follow the cookie store")
		}
		if err := store.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
		if (&RevocableStore{store: dummyStore{}, list: store.list}).Owns("_authproxy") {
			t.Error("Owns true for a store without cookies")
		}
	})

	t.Run("backend down", func(t *testing.T) {
		b, _ := signIn("cy", "sid-5")
		down := WithRevocation(cookies, NewRevocationList(failingBackend{}, time.Hour, clock.Now))
		got, err := down.Load(b.request())
		if err == nil || errors.Is(err, ErrNotFound) || got != nil {
			t.Errorf("Load = %v, %v; want nil and an error that is not ErrNotFound", got, err)
		}
		rec := httptest.NewRecorder()
		if err := down.Clear(rec, b.request()); !errors.Is(err, errDown) {
			t.Errorf("Clear = %v; want the backend's error", err)
		}
		if _, expired := split(rec.Result().Cookies()); !slices.Contains(expired, "_authproxy") {
			t.Errorf("Clear expired %v; want the cookie expired anyway", expired)
		}
		if _, err := down.RevokeSID(ctx, "sid-5"); !errors.Is(err, errDown) {
			t.Errorf("RevokeSID = %v", err)
		}
		if err := down.Ping(ctx); !errors.Is(err, errDown) {
			t.Errorf("Ping = %v", err)
		}
	})
}

// dummyStore is a Store with no capabilities beyond Store.
type dummyStore struct{}

func (dummyStore) Load(*http.Request) (*Session, error)                    { return nil, ErrNotFound }
func (dummyStore) Save(http.ResponseWriter, *http.Request, *Session) error { return nil }
func (dummyStore) Clear(http.ResponseWriter, *http.Request) error          { return nil }

func TestNewRevocationListPanics(t *testing.T) {
	tests := []struct {
		name    string
		backend Backend
		ttl     time.Duration
	}{
		{"nil backend", nil, time.Hour},
		{"zero ttl", NewMemoryBackend(nil), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			NewRevocationList(tt.backend, tt.ttl, nil)
		})
	}
}
