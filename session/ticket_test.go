package session

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// saveVia saves sess through store for a request from b, passes the
// response to b and returns it.
func saveVia(t testing.TB, b *browser, store Store, sess *Session) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := store.Save(rec, b.request(), sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	b.receive(rec)
	return rec
}

// cookieBytes is what the browser sends back for c: name=value.
func cookieBytes(c *http.Cookie) int { return len(c.Name) + 1 + len(c.Value) }

// ticketOf returns the ticket the request carries.
func ticketOf(t testing.TB, s *TicketStore, r *http.Request) *ticket {
	t.Helper()
	tk, err := s.ticket(AppendCookies(nil, r.Header))
	if err != nil {
		t.Fatalf("no valid ticket in the request: %v", err)
	}
	return tk
}

// ticketEnv is one test's ticket store over a fresh backend of a kit.
type ticketEnv struct {
	clock   *testClock
	backend *recordingBackend
	dump    func() []string
	secret  []byte
	store   *TicketStore
}

func newTicketEnv(t testing.TB, kit backendKit) *ticketEnv {
	t.Helper()
	clock := newTestClock(testNow)
	b, dump := kit.new(t, clock.Now)
	e := &ticketEnv{clock: clock, backend: &recordingBackend{Backend: b}, dump: dump, secret: newSecret(t)}
	e.store = e.newStore(t, CookieOptions{Secure: true, SameSite: http.SameSiteLaxMode}, e.secret)
	return e
}

// newStore returns another store over the env's backend and clock, as
// another replica or a restarted process would have.
func (e *ticketEnv) newStore(t testing.TB, opts CookieOptions, secrets ...[]byte) *TicketStore {
	t.Helper()
	return NewTicketStore(e.backend, newTestCodec(t, secrets...), opts, e.clock.Now)
}

// indexed returns the ticket ids the sid or sub index holds, sorted.
func (e *ticketEnv) indexed(t testing.TB, prefix, name string) []string {
	t.Helper()
	ids, err := e.backend.SetMembers(context.Background(), prefix+hashName(name))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func wantNotFound(t testing.TB, what string, sess *Session, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) || sess != nil {
		t.Errorf("%s = %+v, %v; want nil, ErrNotFound", what, sess, err)
	}
}

func testTicketStore(t *testing.T, kit backendKit) {
	ctx := context.Background()

	t.Run("round trip", func(t *testing.T) {
		for _, tokenBytes := range []int{0, 3000, 20000} {
			t.Run(fmt.Sprint(tokenBytes), func(t *testing.T) {
				e := newTicketEnv(t, kit)
				b := newBrowser(t)
				sess := newSession(t, tokenBytes)
				rec := saveVia(t, b, e.store, sess)
				cookies := rec.Result().Cookies()
				if set, expired := split(cookies); !slices.Equal(set, []string{"_authproxy"}) || len(expired) != 0 {
					t.Fatalf("Save set %v and expired %v; want _authproxy only", set, expired)
				}
				c := cookies[0]
				if n := cookieBytes(c); n >= 200 {
					t.Errorf("ticket cookie is %d bytes, want under 200", n)
				}
				if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 3600 {
					t.Errorf("cookie attributes %q", c.String())
				}
				got, err := e.store.Load(b.request())
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				sameSession(t, got, sess)
			})
		}
	})

	t.Run("load rejects", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		other := newTicketEnv(t, kit)
		b := newBrowser(t)
		sess := newSession(t, 100)
		saveVia(t, b, e.store, sess)
		valid := b.jar.Cookies(b.u)[0].Value
		tk := ticketOf(t, e.store, b.request())
		seal := func(codec *Codec, name string, v any) string {
			t.Helper()
			s, err := codec.Seal(name, v)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		codec := e.store.codec
		// saved returns the cookie value of a newly saved session, and
		// its ticket id.
		saved := func() (string, string) {
			t.Helper()
			b := newBrowser(t)
			saveVia(t, b, e.store, newSession(t, 100))
			return b.jar.Cookies(b.u)[0].Value, ticketOf(t, e.store, b.request()).id
		}
		deleted, deletedID := saved()
		if err := e.backend.Delete(ctx, sessionKeyPrefix+deletedID); err != nil {
			t.Fatal(err)
		}
		swapped, swappedID := saved()
		blob, err := e.backend.Get(ctx, sessionKeyPrefix+tk.id)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.backend.Set(ctx, sessionKeyPrefix+swappedID, blob, time.Hour); err != nil {
			t.Fatal(err) // the valid session, under another ticket's id
		}
		corrupt, corruptID := saved()
		cblob, _ := e.backend.Get(ctx, sessionKeyPrefix+corruptID)
		cblob[len(cblob)/2] ^= 1
		if err := e.backend.Set(ctx, sessionKeyPrefix+corruptID, cblob, time.Hour); err != nil {
			t.Fatal(err)
		}
		unknownFormat, unknownFormatID := saved()
		cblob, _ = e.backend.Get(ctx, sessionKeyPrefix+unknownFormatID)
		cblob[0] = 9
		if err := e.backend.Set(ctx, sessionKeyPrefix+unknownFormatID, cblob, time.Hour); err != nil {
			t.Fatal(err)
		}
		neverStored, err := newTicket(sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(tk.encode())
		tooLong := base64.RawURLEncoding.EncodeToString(append(raw, 0))
		otherBrowser := newBrowser(t)
		saveVia(t, otherBrowser, other.store, newSession(t, 100))

		// The fixture is valid to begin with.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", "_authproxy="+valid)
		if _, err := e.store.Load(r); err != nil {
			t.Fatalf("Load of the valid fixture: %v", err)
		}

		tests := []struct {
			name   string
			cookie string
		}{
			{"no cookie", ""},
			{"other cookies", "a=b; _authproxy_state=" + valid},
			{"empty value", "_authproxy="},
			{"garbage", "_authproxy=garbage"},
			{"flipped byte", "_authproxy=" + flip(valid, len(valid)/2)},
			{"truncated", "_authproxy=" + valid[:len(valid)-4]},
			{"sealed for another cookie", "_authproxy=" + seal(codec, "_other", tk.encode())},
			{"sealed by another key", "_authproxy=" + seal(other.store.codec, "_authproxy", tk.encode())},
			{"another store's ticket", "_authproxy=" + otherBrowser.jar.Cookies(otherBrowser.u)[0].Value},
			{"cookie-store session", "_authproxy=" + seal(codec, "_authproxy", sess)},
			{"not a ticket", "_authproxy=" + seal(codec, "_authproxy", "not a ticket")},
			{"ticket too short", "_authproxy=" + seal(codec, "_authproxy", tk.encode()[:40])},
			{"ticket too long", "_authproxy=" + seal(codec, "_authproxy", tooLong)},
			{"ticket padded", "_authproxy=" + seal(codec, "_authproxy", tk.encode()+"=")},
			{"ticket never stored", "_authproxy=" + seal(codec, "_authproxy", neverStored.encode())},
			{"deleted session", "_authproxy=" + deleted},
			{"wrong per-session key", "_authproxy=" + swapped},
			{"corrupt stored session", "_authproxy=" + corrupt},
			{"unknown stored format", "_authproxy=" + unknownFormat},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				if tt.cookie != "" {
					r.Header.Set("Cookie", tt.cookie)
				}
				got, err := e.store.Load(r)
				wantNotFound(t, "Load", got, err)
			})
		}
	})

	t.Run("load ends with the session", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		b := newBrowser(t)
		sess := newSession(t, 100)
		sess.IdleTimeout = 30 * time.Minute
		saveVia(t, b, e.store, sess)
		steps := []struct {
			name    string
			advance time.Duration
			touch   bool
			wantOK  bool
		}{
			{"fresh", 0, false, true},
			{"idle 29m", 29 * time.Minute, false, true},
			{"touched", 0, true, true},
			{"idle 29m again", 29 * time.Minute, false, true},
			{"idle 31m", 2 * time.Minute, false, false},
		}
		for _, s := range steps {
			e.clock.Advance(s.advance)
			if s.touch {
				cur, err := e.store.Load(b.request())
				if err != nil {
					t.Fatalf("%s: Load: %v", s.name, err)
				}
				cur.LastSeen = e.clock.Now()
				saveVia(t, b, e.store, cur)
			}
			got, err := e.store.Load(b.request())
			if ok := err == nil; ok != s.wantOK {
				t.Fatalf("%s: Load = %v, %v; want success %v", s.name, got, err, s.wantOK)
			}
			if !s.wantOK {
				wantNotFound(t, s.name, got, err)
			}
		}

		e = newTicketEnv(t, kit)
		sess = newSession(t, 100)
		saveVia(t, b, e.store, sess)
		e.clock.Advance(time.Hour)
		got, err := e.store.Load(b.request())
		wantNotFound(t, "Load at ExpiresAt", got, err)
	})

	t.Run("update keeps the ticket", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		b := newBrowser(t)
		sess := newSession(t, 3000)
		saveVia(t, b, e.store, sess)
		before := ticketOf(t, e.store, b.request())
		sidIndex := e.indexed(t, sidKeyPrefix, sess.SID)

		e.clock.Advance(time.Minute)
		updated := *sess
		updated.AccessToken = tokenText(t, 1000)
		e.backend.take()
		rec := saveVia(t, b, e.store, &updated)
		if h := rec.Header().Values("Set-Cookie"); len(h) != 0 {
			t.Errorf("update set cookies %q; want none", h)
		}
		if calls := e.backend.take(); !slices.Equal(calls, []string{"Get", "Replace"}) {
			t.Errorf("update made backend calls %v; want [Get Replace]", calls)
		}
		// A new LastSeen is recorded in the session's Info too.
		updated.LastSeen = e.clock.Now()
		saveVia(t, b, e.store, &updated)
		if calls := e.backend.take(); !slices.Equal(calls, []string{"Get", "Replace", "Set"}) {
			t.Errorf("update of LastSeen made backend calls %v; want [Get Replace Set]", calls)
		}
		if infos, err := e.store.ListSubject(ctx, sess.Subject); err != nil || len(infos) != 1 || !infos[0].LastSeen.Equal(updated.LastSeen) {
			t.Errorf("ListSubject after the update = %+v, %v; want one session last seen %v", infos, err, updated.LastSeen)
		}
		got, err := e.store.Load(b.request())
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		sameSession(t, got, &updated)
		if after := ticketOf(t, e.store, b.request()); after.id != before.id {
			t.Error("the ticket changed")
		}
		if got := e.indexed(t, sidKeyPrefix, sess.SID); !slices.Equal(got, sidIndex) {
			t.Errorf("sid index = %v, want %v", got, sidIndex)
		}

		// A longer life is given to the cookie and the indexes too.
		longer := updated
		longer.ExpiresAt = longer.ExpiresAt.Add(time.Hour)
		rec = saveVia(t, b, e.store, &longer)
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 || cookies[0].MaxAge != int((longer.ExpiresAt.Sub(e.clock.Now()))/time.Second) {
			t.Fatalf("extending ExpiresAt set %v; want one cookie with the new Max-Age", cookies)
		}
		if after := ticketOf(t, e.store, b.request()); after.id != before.id {
			t.Error("the ticket changed")
		}
		e.clock.Advance(90 * time.Minute)
		if _, err := e.store.Load(b.request()); err != nil {
			t.Errorf("Load after the first ExpiresAt: %v", err)
		}
	})

	t.Run("new sign-in replaces the session", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		b := newBrowser(t)
		first := newSession(t, 100)
		saveVia(t, b, e.store, first)
		copied := b.request() // as an attacker who planted or copied it keeps it
		firstID := ticketOf(t, e.store, copied).id

		second := newSession(t, 100)
		second.Subject, second.SID = "someone-else", "sid-other"
		rec := saveVia(t, b, e.store, second)
		if set, _ := split(rec.Result().Cookies()); !slices.Equal(set, []string{"_authproxy"}) {
			t.Fatalf("Save set %v", set)
		}
		got, err := e.store.Load(b.request())
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		sameSession(t, got, second)
		got, err = e.store.Load(copied)
		wantNotFound(t, "Load with the previous ticket", got, err)
		if _, err := e.backend.Get(ctx, sessionKeyPrefix+firstID); !errors.Is(err, ErrNotFound) {
			t.Errorf("the previous session is still stored: %v", err)
		}
		if ids := e.indexed(t, subKeyPrefix, first.Subject); slices.Contains(ids, firstID) {
			t.Errorf("the previous session is still indexed")
		}
	})

	t.Run("save does not bring back an ended session", func(t *testing.T) {
		tests := []struct {
			name string
			end  func(e *ticketEnv, sess *Session, id string)
		}{
			{"revoked before", func(e *ticketEnv, sess *Session, id string) {
				if _, err := e.store.RevokeSID(ctx, sess.SID); err != nil {
					t.Fatal(err)
				}
			}},
			{"deleted before", func(e *ticketEnv, sess *Session, id string) {
				_ = e.backend.Delete(ctx, sessionKeyPrefix+id)
			}},
			{"revoked during", func(e *ticketEnv, sess *Session, id string) {
				e.backend.beforeReplace = func() { _, _ = e.store.RevokeSubject(ctx, sess.Subject) }
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newTicketEnv(t, kit)
				b := newBrowser(t)
				sess := newSession(t, 100)
				saveVia(t, b, e.store, sess)
				r := b.request()
				tt.end(e, sess, ticketOf(t, e.store, r).id)
				refreshed := *sess
				refreshed.AccessToken = "new"
				rec := httptest.NewRecorder()
				err := e.store.Save(rec, r, &refreshed)
				if !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), "session: ") {
					t.Errorf("Save = %v; want a session: error wrapping ErrNotFound", err)
				}
				if h := rec.Header().Values("Set-Cookie"); len(h) != 0 {
					t.Errorf("Save set cookies %q", h)
				}
				got, err := e.store.Load(r)
				wantNotFound(t, "Load", got, err)
			})
		}
	})

	t.Run("clear", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		b := newBrowser(t)
		sess := newSession(t, 100)
		saveVia(t, b, e.store, sess)
		r := b.request()
		r.AddCookie(&http.Cookie{Name: "_authproxy_1", Value: "left-from-the-cookie-store"})
		id := ticketOf(t, e.store, r).id
		rec := httptest.NewRecorder()
		if err := e.store.Clear(rec, r); err != nil {
			t.Fatalf("Clear: %v", err)
		}
		set, expired := split(rec.Result().Cookies())
		if len(set) != 0 || !slices.Equal(expired, []string{"_authproxy", "_authproxy_1"}) {
			t.Errorf("Clear set %v and expired %v", set, expired)
		}
		got, err := e.store.Load(r)
		wantNotFound(t, "Load with a copy of the cleared ticket", got, err)
		for _, idx := range []struct{ prefix, name string }{{sidKeyPrefix, sess.SID}, {subKeyPrefix, sess.Subject}} {
			if ids := e.indexed(t, idx.prefix, idx.name); slices.Contains(ids, id) {
				t.Errorf("%s index still names the cleared session", idx.prefix)
			}
		}

		for _, cookie := range []string{"", "_authproxy=garbage"} {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", cookie)
			rec := httptest.NewRecorder()
			if err := e.store.Clear(rec, r); err != nil {
				t.Errorf("Clear with cookie %q: %v", cookie, err)
			}
			if _, expired := split(rec.Result().Cookies()); !slices.Equal(expired, []string{"_authproxy"}) {
				t.Errorf("Clear with cookie %q expired %v", cookie, expired)
			}
		}
	})

	t.Run("survives a restart", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		b := newBrowser(t)
		sess := newSession(t, 3000)
		saveVia(t, b, e.store, sess)
		restarted := e.newStore(t, CookieOptions{}, e.secret)
		got, err := restarted.Load(b.request())
		if err != nil {
			t.Fatalf("Load after restart: %v", err)
		}
		sameSession(t, got, sess)
	})

	t.Run("cookie secret rotation", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		oldKey, newKey := e.secret, newSecret(t)
		b := newBrowser(t)
		sess := newSession(t, 100)
		saveVia(t, b, e.store, sess)
		tests := []struct {
			name    string
			secrets [][]byte
			wantOK  bool
		}{
			{"new then old", [][]byte{newKey, oldKey}, true},
			{"old then new", [][]byte{oldKey, newKey}, true},
			{"new only", [][]byte{newKey}, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := e.newStore(t, CookieOptions{}, tt.secrets...).Load(b.request())
				if !tt.wantOK {
					wantNotFound(t, "Load", got, err)
					return
				}
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				sameSession(t, got, sess)
			})
		}
	})

	t.Run("revoke", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		type user struct {
			b    *browser
			sess *Session
		}
		signIn := func(sub, sid string) user {
			b := newBrowser(t)
			sess := newSession(t, 100)
			sess.Subject, sess.User, sess.SID = sub, sub, sid
			saveVia(t, b, e.store, sess)
			return user{b, sess}
		}
		ada1 := signIn("ada", "sid-1")
		ada2 := signIn("ada", "sid-2")
		ada3 := signIn("ada", "sid-2") // the same IdP session in a second browser
		bob := signIn("bob", "sid-3")
		noSID := signIn("cy", "")
		all := []user{ada1, ada2, ada3, bob, noSID}

		steps := []struct {
			name    string
			revoke  func() (int, error)
			want    int
			wantErr bool
			gone    []user
		}{
			{"one sid", func() (int, error) { return e.store.RevokeSID(ctx, "sid-1") }, 1, false, []user{ada1}},
			{"same sid again", func() (int, error) { return e.store.RevokeSID(ctx, "sid-1") }, 0, false, []user{ada1}},
			{"sid of two browsers", func() (int, error) { return e.store.RevokeSID(ctx, "sid-2") }, 2, false, []user{ada1, ada2, ada3}},
			{"unknown sid", func() (int, error) { return e.store.RevokeSID(ctx, "sid-x") }, 0, false, []user{ada1, ada2, ada3}},
			{"subject whose sessions are gone", func() (int, error) { return e.store.RevokeSubject(ctx, "ada") }, 0, false, []user{ada1, ada2, ada3}},
			{"subject", func() (int, error) { return e.store.RevokeSubject(ctx, "cy") }, 1, false, []user{ada1, ada2, ada3, noSID}},
			{"empty sid", func() (int, error) { return e.store.RevokeSID(ctx, "") }, 0, true, []user{ada1, ada2, ada3, noSID}},
			{"empty subject", func() (int, error) { return e.store.RevokeSubject(ctx, "") }, 0, true, []user{ada1, ada2, ada3, noSID}},
		}
		for _, s := range steps {
			n, err := s.revoke()
			if (err != nil) != s.wantErr || n != s.want {
				t.Fatalf("%s: revoke = %d, %v; want %d, error %v", s.name, n, err, s.want, s.wantErr)
			}
			for i, u := range all {
				got, err := e.store.Load(u.b.request())
				gone := slices.ContainsFunc(s.gone, func(g user) bool { return g.sess == u.sess })
				if gone {
					wantNotFound(t, fmt.Sprintf("%s: Load of session %d", s.name, i), got, err)
				} else if err != nil {
					t.Fatalf("%s: Load of session %d: %v", s.name, i, err)
				}
			}
		}
		if ids := e.indexed(t, sidKeyPrefix, "sid-2"); len(ids) != 0 {
			t.Errorf("revoked index still holds %v", ids)
		}
	})

	t.Run("save rejects", func(t *testing.T) {
		ended := newSession(t, 100)
		ended.ExpiresAt = testNow
		idle := newSession(t, 100)
		idle.IdleTimeout = time.Minute
		idle.CreatedAt = testNow.Add(-time.Minute)
		noID := newSession(t, 100)
		noID.ID = ""
		tests := []struct {
			name string
			opts CookieOptions
			sess *Session
		}{
			{"nil session", CookieOptions{}, nil},
			{"no ID", CookieOptions{}, noID},
			{"expired", CookieOptions{}, ended},
			{"idle", CookieOptions{}, idle},
			{"invalid name", CookieOptions{Name: "bad name"}, newSession(t, 100)},
			{"invalid domain", CookieOptions{Domain: "bad domain"}, newSession(t, 100)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newTicketEnv(t, kit)
				store := e.newStore(t, tt.opts, e.secret)
				rec := httptest.NewRecorder()
				err := store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), tt.sess)
				if err == nil || !strings.HasPrefix(err.Error(), "session: ") {
					t.Fatalf("Save = %v; want a session: error", err)
				}
				if h := rec.Header().Values("Set-Cookie"); len(h) != 0 {
					t.Errorf("Save set cookies %q", h)
				}
				if d := e.dump(); len(d) != 0 {
					t.Errorf("Save stored %d things", len(d))
				}
			})
		}
	})

	t.Run("backend holds no token", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		b := newBrowser(t)
		sess := newSession(t, 3000)
		sess.Email, sess.Subject, sess.SID = "grace@example.com", "subject-grace", "sid-grace"
		saveVia(t, b, e.store, sess)
		dump := strings.Join(e.dump(), "\n")
		if dump == "" {
			t.Fatal("empty dump")
		}
		for _, secret := range []string{sess.IDToken[:20], sess.AccessToken[:20], sess.RefreshToken[:20], sess.Email, sess.Subject, sess.SID, sess.ID, "example.com"} {
			if strings.Contains(dump, secret) {
				t.Errorf("the backend reveals %q", secret)
			}
		}
	})

	t.Run("list and revoke by email and all", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		ada := newSession(t, 100)
		ada.Email = "Ada@Example.com"
		adaAgain := newSession(t, 100)
		adaAgain.Email, adaAgain.CreatedAt = "ada@example.com", testNow.Add(time.Second)
		adaAgain.LastSeen, adaAgain.IdleTimeout = testNow.Add(time.Minute), 30*time.Minute
		bob := newSession(t, 100)
		bob.Subject, bob.User, bob.Email, bob.SID = "u-bob", "u-bob", "bob@example.com", "sid-bob"
		browsers := map[*Session]*browser{}
		for _, sess := range []*Session{ada, adaAgain, bob} {
			browsers[sess] = newBrowser(t)
			saveVia(t, browsers[sess], e.store, sess)
		}
		signedIn := func(sess *Session) bool {
			t.Helper()
			got, err := e.store.Load(browsers[sess].request())
			if err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load: %v", err)
			}
			return got != nil
		}

		infos, err := e.store.ListEmail(ctx, "ADA@example.com ")
		if err != nil || len(infos) != 2 {
			t.Fatalf("ListEmail = %+v, %v; want ada's two sessions", infos, err)
		}
		first, second := infos[0], infos[1]
		if !first.CreatedAt.Equal(ada.CreatedAt) || !first.ExpiresAt.Equal(ada.ExpiresAt) || !first.LastSeen.IsZero() || !first.Ends().Equal(ada.ExpiresAt) {
			t.Errorf("first session's info %+v; want created %v, expiring %v, never seen", first, ada.CreatedAt, ada.ExpiresAt)
		}
		if !second.CreatedAt.Equal(adaAgain.CreatedAt) || !second.LastSeen.Equal(adaAgain.LastSeen) || !second.Ends().Equal(adaAgain.LastSeen.Add(30*time.Minute)) {
			t.Errorf("second session's info %+v; want created %v, seen %v, ending at its idle timeout", second, adaAgain.CreatedAt, adaAgain.LastSeen)
		}
		if first.Ref == "" || first.Ref == second.Ref || len(first.Ref) != infoRefLen {
			t.Errorf("refs %q and %q; want two distinct ones of %d characters", first.Ref, second.Ref, infoRefLen)
		}
		for _, b := range browsers {
			ticket := b.jar.Cookies(b.u)[0].Value
			if strings.Contains(ticket, first.Ref) || strings.Contains(ticket, second.Ref) {
				t.Error("a ref appears in a ticket cookie")
			}
		}
		if infos, err := e.store.ListSubject(ctx, ada.Subject); err != nil || len(infos) != 2 {
			t.Errorf("ListSubject = %+v, %v; want the same two sessions", infos, err)
		}
		if infos, err := e.store.ListEmail(ctx, "nobody@example.com"); err != nil || len(infos) != 0 {
			t.Errorf("ListEmail of nobody = %+v, %v; want none", infos, err)
		}

		n, err := e.store.RevokeEmail(ctx, "ada@EXAMPLE.com")
		if err != nil || n != 2 {
			t.Fatalf("RevokeEmail = %d, %v; want 2", n, err)
		}
		if signedIn(ada) || signedIn(adaAgain) || !signedIn(bob) {
			t.Errorf("after RevokeEmail: ada %v, ada again %v, bob %v; want only bob signed in", signedIn(ada), signedIn(adaAgain), signedIn(bob))
		}
		if infos, err := e.store.ListEmail(ctx, "ada@example.com"); err != nil || len(infos) != 0 {
			t.Errorf("ListEmail after RevokeEmail = %+v, %v; want none", infos, err)
		}
		if n, err := e.store.RevokeEmail(ctx, "ada@example.com"); err != nil || n != 0 {
			t.Errorf("RevokeEmail again = %d, %v; want 0", n, err)
		}

		// Another replica's revocation of every session, then a new sign-in.
		carol := newSession(t, 100)
		carol.Subject, carol.Email = "u-carol", "carol@example.com"
		browsers[carol] = newBrowser(t)
		saveVia(t, browsers[carol], e.store, carol)
		n, err = e.newStore(t, CookieOptions{}, e.secret).RevokeAll(ctx)
		if err != nil || n != 2 {
			t.Fatalf("RevokeAll = %d, %v; want 2 (bob and carol)", n, err)
		}
		if signedIn(bob) || signedIn(carol) {
			t.Error("a session survived RevokeAll")
		}
		for _, k := range e.dump() {
			if strings.Contains(k, sessionKeyPrefix) || strings.Contains(k, infoKeyPrefix) {
				t.Errorf("after RevokeAll the backend holds %s", k)
			}
		}
		dave := newSession(t, 100)
		browsers[dave] = newBrowser(t)
		saveVia(t, browsers[dave], e.store, dave)
		if !signedIn(dave) {
			t.Error("a sign-in after RevokeAll does not load")
		}
		for _, f := range []func() (int, error){
			func() (int, error) { return e.store.RevokeEmail(ctx, "") },
			func() (int, error) { _, err := e.store.ListEmail(ctx, " "); return 0, err },
			func() (int, error) { _, err := e.store.ListSubject(ctx, ""); return 0, err },
		} {
			if _, err := f(); err == nil {
				t.Error("an empty name was accepted")
			}
		}
	})

	t.Run("owns and pings", func(t *testing.T) {
		e := newTicketEnv(t, kit)
		for name, want := range map[string]bool{"_authproxy": true, "_authproxy_3": true, "_authproxy_state": false, "other": false} {
			if got := e.store.Owns(name); got != want {
				t.Errorf("Owns(%q) = %v, want %v", name, got, want)
			}
		}
		if err := e.store.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

func TestTicketStoreMemory(t *testing.T) { testTicketStore(t, memoryKit) }

// TestTicketStoreCookieSize shows the ticket cookie's size does not depend
// on the session's.
func TestTicketStoreCookieSize(t *testing.T) {
	for _, tokenBytes := range []int{0, 20 << 10} {
		e := newTicketEnv(t, memoryKit)
		rec := httptest.NewRecorder()
		sess := newSession(t, tokenBytes)
		sess.Groups = slices.Repeat([]string{"a-rather-long-group-name"}, 200)
		if err := e.store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
			t.Fatal(err)
		}
		c := rec.Result().Cookies()[0]
		t.Logf("%d bytes of tokens: cookie %d bytes (value %d), Set-Cookie %d bytes",
			tokenBytes, cookieBytes(c), len(c.Value), len(rec.Header().Get("Set-Cookie")))
		if n := cookieBytes(c); n >= 200 {
			t.Errorf("%d bytes of tokens: cookie is %d bytes, want under 200", tokenBytes, n)
		}
	}
}

// TestTicketStoreBackendTTL checks the stored session lives until the
// session ends, and its indexes at least as long.
func TestTicketStoreBackendTTL(t *testing.T) {
	tests := []struct {
		name     string
		idle     time.Duration
		wantLife time.Duration
	}{
		{"absolute", 0, time.Hour},
		{"idle", 10 * time.Minute, 10 * time.Minute},
		{"idle longer than the rest", 2 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTicketEnv(t, memoryKit)
			mem := e.backend.Backend.(*MemoryBackend)
			b := newBrowser(t)
			sess := newSession(t, 100)
			sess.IdleTimeout = tt.idle
			saveVia(t, b, e.store, sess)
			id := ticketOf(t, e.store, b.request()).id
			mem.mu.Lock()
			life := mem.items[sessionKeyPrefix+id].expires.Sub(testNow)
			sidLife := mem.items[sidKeyPrefix+hashName(sess.SID)].expires.Sub(testNow)
			subLife := mem.items[subKeyPrefix+hashName(sess.Subject)].expires.Sub(testNow)
			mem.mu.Unlock()
			if life != tt.wantLife {
				t.Errorf("stored for %v, want %v", life, tt.wantLife)
			}
			if sidLife < life || subLife < life {
				t.Errorf("indexes live %v and %v, less than the session's %v", sidLife, subLife, life)
			}
		})
	}
}

func TestTicketStoreBackendDown(t *testing.T) {
	ctx := context.Background()
	codec := newTestCodec(t, newSecret(t))
	up := NewTicketStore(NewMemoryBackend(fixedClock(testNow)), codec, CookieOptions{}, fixedClock(testNow))
	down := NewTicketStore(failingBackend{}, codec, CookieOptions{}, fixedClock(testNow))
	b := newBrowser(t)
	sess := newSession(t, 100)
	saveVia(t, b, up, sess)

	wantDown := func(t *testing.T, err error) {
		t.Helper()
		if err == nil || errors.Is(err, ErrNotFound) || !errors.Is(err, errDown) {
			t.Errorf("error %v; want the backend's error, not ErrNotFound", err)
		}
	}
	t.Run("load", func(t *testing.T) {
		got, err := down.Load(b.request())
		wantDown(t, err)
		if got != nil {
			t.Errorf("Load returned %+v", got)
		}
	})
	t.Run("load without a ticket needs no backend", func(t *testing.T) {
		got, err := down.Load(httptest.NewRequest(http.MethodGet, "/", nil))
		wantNotFound(t, "Load", got, err)
	})
	t.Run("save", func(t *testing.T) {
		for _, r := range []*http.Request{b.request(), httptest.NewRequest(http.MethodGet, "/", nil)} {
			rec := httptest.NewRecorder()
			wantDown(t, down.Save(rec, r, newSession(t, 100)))
			if h := rec.Header().Values("Set-Cookie"); len(h) != 0 {
				t.Errorf("Save set cookies %q", h)
			}
		}
	})
	t.Run("clear still expires the cookie", func(t *testing.T) {
		rec := httptest.NewRecorder()
		wantDown(t, down.Clear(rec, b.request()))
		if _, expired := split(rec.Result().Cookies()); !slices.Equal(expired, []string{"_authproxy"}) {
			t.Errorf("Clear expired %v", expired)
		}
	})
	t.Run("revoke and ping", func(t *testing.T) {
		_, err := down.RevokeSID(ctx, "sid-9")
		wantDown(t, err)
		_, err = down.RevokeSubject(ctx, "u-123")
		wantDown(t, err)
		wantDown(t, down.Ping(ctx))
	})
}

func TestNewTicketStorePanics(t *testing.T) {
	codec := newTestCodec(t, newSecret(t))
	tests := []struct {
		name    string
		backend Backend
		codec   *Codec
	}{
		{"nil backend", nil, codec},
		{"nil codec", NewMemoryBackend(nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			NewTicketStore(tt.backend, tt.codec, CookieOptions{}, nil)
		})
	}
}
