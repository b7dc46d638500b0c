package session

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// tokenText returns n random base64url characters, as incompressible as a
// real token.
func tokenText(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// newSession returns a session valid for an hour after testNow, holding
// about tokenBytes of token text.
func newSession(t testing.TB, tokenBytes int) *Session {
	t.Helper()
	return &Session{
		ID:                "id-" + tokenText(t, 16),
		User:              "u-123",
		Subject:           "u-123",
		Email:             "ada@example.com",
		PreferredUsername: "ada",
		Groups:            []string{"admins", "staff"},
		SID:               "sid-9",
		IDToken:           tokenText(t, tokenBytes/3),
		AccessToken:       tokenText(t, tokenBytes/3),
		RefreshToken:      tokenText(t, tokenBytes-2*(tokenBytes/3)),
		TokenExpiry:       testNow.Add(5 * time.Minute),
		CreatedAt:         testNow,
		ExpiresAt:         testNow.Add(time.Hour),
	}
}

func newTestStore(t testing.TB, opts CookieOptions, secrets ...[]byte) *CookieStore {
	t.Helper()
	if len(secrets) == 0 {
		secrets = [][]byte{newSecret(t)}
	}
	return NewCookieStore(newTestCodec(t, secrets...), opts, fixedClock(testNow))
}

// browser keeps cookies the way a browser does, for https://example.com/.
type browser struct {
	jar *cookiejar.Jar
	u   *url.URL
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{jar: jar, u: &url.URL{Scheme: "https", Host: "example.com", Path: "/"}}
}

func (b *browser) request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, b.u.String(), nil)
	for _, c := range b.jar.Cookies(b.u) {
		r.AddCookie(c)
	}
	return r
}

func (b *browser) receive(rec *httptest.ResponseRecorder) {
	b.jar.SetCookies(b.u, rec.Result().Cookies())
}

func (b *browser) names() []string {
	var names []string
	for _, c := range b.jar.Cookies(b.u) {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// saveTo saves sess through store for a request from b, passes the response
// to b and returns it.
func saveTo(t testing.TB, b *browser, store *CookieStore, sess *Session) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := store.Save(rec, b.request(), sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	b.receive(rec)
	return rec
}

// split returns the names of the cookies set and of those expired.
func split(cookies []*http.Cookie) (set, expired []string) {
	for _, c := range cookies {
		if c.MaxAge < 0 {
			expired = append(expired, c.Name)
		} else {
			set = append(set, c.Name)
		}
	}
	slices.Sort(set)
	slices.Sort(expired)
	return set, expired
}

func chunkNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("_authproxy_%d", i)
	}
	return names
}

func sameSession(t testing.TB, got, want *Session) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("loaded session differs:\n got %s\nwant %s", g, w)
	}
}

func TestCookieStoreRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		tokenBytes int
		want       []string
	}{
		{"no tokens", 0, []string{"_authproxy"}},
		{"small", 1000, []string{"_authproxy"}},
		{"typical", 3000, chunkNames(2)},
		{"large", 12500, chunkNames(5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore(t, CookieOptions{Secure: true})
			b := newBrowser(t)
			sess := newSession(t, tt.tokenBytes)
			rec := saveTo(t, b, store, sess)
			set, _ := split(rec.Result().Cookies())
			if !slices.Equal(set, tt.want) {
				t.Errorf("Save set %v, want %v", set, tt.want)
			}
			got, err := store.Load(b.request())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			sameSession(t, got, sess)
		})
	}
}

func TestCookieStoreSaveReplaces(t *testing.T) {
	tests := []struct {
		name        string
		before      int // token bytes of the session saved first; -1 for none
		after       int
		wantSet     []string
		wantExpired []string
	}{
		{"none to one", -1, 100, []string{"_authproxy"}, nil},
		{"none to chunks", -1, 12500, chunkNames(5), []string{"_authproxy"}},
		{"one to one", 100, 200, []string{"_authproxy"}, nil},
		{"chunks to one", 12500, 100, []string{"_authproxy"}, chunkNames(5)},
		{"one to chunks", 100, 3000, chunkNames(2), []string{"_authproxy"}},
		{"more to fewer chunks", 12500, 3000, chunkNames(2), []string{"_authproxy", "_authproxy_2", "_authproxy_3", "_authproxy_4"}},
		{"fewer to more chunks", 3000, 12500, chunkNames(5), []string{"_authproxy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore(t, CookieOptions{})
			b := newBrowser(t)
			if tt.before >= 0 {
				saveTo(t, b, store, newSession(t, tt.before))
			}
			sess := newSession(t, tt.after)
			rec := saveTo(t, b, store, sess)
			set, expired := split(rec.Result().Cookies())
			if !slices.Equal(set, tt.wantSet) {
				t.Errorf("Save set %v, want %v", set, tt.wantSet)
			}
			if !slices.Equal(expired, tt.wantExpired) {
				t.Errorf("Save expired %v, want %v", expired, tt.wantExpired)
			}
			if got := b.names(); !slices.Equal(got, tt.wantSet) {
				t.Errorf("browser keeps %v, want %v", got, tt.wantSet)
			}
			got, err := store.Load(b.request())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			sameSession(t, got, sess)
		})
	}
}

func TestCookieStoreSaveRejects(t *testing.T) {
	expired := newSession(t, 0)
	expired.ExpiresAt = testNow
	tests := []struct {
		name    string
		opts    CookieOptions
		sess    *Session
		tooBig  bool
		carried bool // the request carries a chunked session
	}{
		{"too large", CookieOptions{}, newSession(t, 20000), true, false},
		{"too large, with old cookies", CookieOptions{}, newSession(t, 20000), true, true},
		{"too large for one chunk", CookieOptions{MaxChunks: 1}, newSession(t, 3000), true, false},
		{"expired", CookieOptions{}, expired, false, true},
		{"nil session", CookieOptions{}, nil, false, false},
		{"invalid name", CookieOptions{Name: "bad name"}, newSession(t, 0), false, false},
		{"invalid domain", CookieOptions{Domain: "bad domain"}, newSession(t, 0), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore(t, tt.opts)
			b := newBrowser(t)
			if tt.carried {
				saveTo(t, b, store, newSession(t, 12500))
			}
			rec := httptest.NewRecorder()
			err := store.Save(rec, b.request(), tt.sess)
			if err == nil {
				t.Fatal("Save succeeded; want an error")
			}
			if got := errors.Is(err, ErrTooLarge); got != tt.tooBig {
				t.Errorf("Save error %q: errors.Is(ErrTooLarge) = %v, want %v", err, got, tt.tooBig)
			}
			if !strings.HasPrefix(err.Error(), "session: ") {
				t.Errorf("error %q lacks the session: prefix", err)
			}
			if h := rec.Header().Values("Set-Cookie"); len(h) != 0 {
				t.Errorf("Save wrote %d Set-Cookie headers; want none", len(h))
			}
		})
	}
}

func TestCookieStoreRotation(t *testing.T) {
	oldKey, newKey := newSecret(t), newSecret(t)
	for _, tokenBytes := range []int{100, 12500} {
		b := newBrowser(t)
		sess := newSession(t, tokenBytes)
		saveTo(t, b, newTestStore(t, CookieOptions{}, oldKey), sess)

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
			t.Run(fmt.Sprintf("%s/%d bytes", tt.name, tokenBytes), func(t *testing.T) {
				store := newTestStore(t, CookieOptions{}, tt.secrets...)
				got, err := store.Load(b.request())
				if !tt.wantOK {
					if !errors.Is(err, ErrNotFound) || got != nil {
						t.Fatalf("Load = %v, %v; want nil, ErrNotFound", got, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				sameSession(t, got, sess)
			})
		}
	}
}

func TestCookieStoreLoadRejects(t *testing.T) {
	codec := newTestCodec(t, newSecret(t))
	store := NewCookieStore(codec, CookieOptions{}, fixedClock(testNow))

	seal := func(name string, v any) string {
		t.Helper()
		s, err := codec.Seal(name, v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	small := seal("_authproxy", newSession(t, 100))
	large := seal("_authproxy", newSession(t, 12500))
	// Chunk the large value as Save would: it needs five cookies.
	n := 5
	size := (len(large) + n - 1) / n
	var chunks []string
	for i := 0; i < len(large); i += size {
		chunks = append(chunks, large[i:min(i+size, len(large))])
	}
	header := func(values ...string) string {
		var parts []string
		for i, v := range values {
			parts = append(parts, fmt.Sprintf("_authproxy_%d=%s", i, v))
		}
		return strings.Join(parts, "; ")
	}
	expired := newSession(t, 100)
	expired.ExpiresAt = testNow

	// Check the fixtures are valid to begin with.
	for _, h := range []string{"_authproxy=" + small, header(chunks...)} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", h)
		if _, err := store.Load(r); err != nil {
			t.Fatalf("Load of a valid fixture: %v", err)
		}
	}

	tests := []struct {
		name   string
		cookie string
	}{
		{"no cookie", ""},
		{"other cookies", "a=b; _authproxy_state=" + small},
		{"empty value", "_authproxy="},
		{"garbage", "_authproxy=garbage"},
		{"flipped byte", "_authproxy=" + flip(small, len(small)/2)},
		{"truncated", "_authproxy=" + small[:len(small)-10]},
		{"doubled", "_authproxy=" + small + small},
		{"flipped byte in a chunk", header(chunks[0], flip(chunks[1], 7), chunks[2], chunks[3], chunks[4])},
		{"last chunk missing", header(chunks[:4]...)},
		{"middle chunk missing", "_authproxy_0=" + chunks[0] + "; _authproxy_2=" + chunks[2] + "; _authproxy_3=" + chunks[3] + "; _authproxy_4=" + chunks[4]},
		{"first chunk missing", "_authproxy_1=" + chunks[1] + "; _authproxy_2=" + chunks[2] + "; _authproxy_3=" + chunks[3] + "; _authproxy_4=" + chunks[4]},
		{"chunks swapped", header(chunks[1], chunks[0], chunks[2], chunks[3], chunks[4])},
		{"too many chunks", header(append(slices.Clone(chunks), "AAAA")...)},
		{"chunk with leading zero", "_authproxy_00=" + chunks[0] + "; _authproxy_1=" + chunks[1] + "; _authproxy_2=" + chunks[2] + "; _authproxy_3=" + chunks[3] + "; _authproxy_4=" + chunks[4]},
		{"sealed for another cookie", "_authproxy=" + seal("_authproxy_state", newSession(t, 100))},
		{"chunks sealed for another cookie", header(seal("_other", newSession(t, 100)))},
		{"not a session", "_authproxy=" + seal("_authproxy", "just a string")},
		{"null", "_authproxy=" + seal("_authproxy", nil)},
		{"zero session", "_authproxy=" + seal("_authproxy", Session{})},
		{"expired session", "_authproxy=" + seal("_authproxy", expired)},
		{"sealed by another key", "_authproxy=" + func() string {
			s, err := newTestCodec(t, newSecret(t)).Seal("_authproxy", newSession(t, 100))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}()},
		{"over long", "_authproxy=" + strings.Repeat("A", 2*maxSealedLength)},
		{"over long chunks", header(strings.Repeat("A", maxSealedLength), strings.Repeat("A", maxSealedLength))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			got, err := store.Load(r)
			if !errors.Is(err, ErrNotFound) || got != nil {
				t.Errorf("Load = %+v, %v; want nil, ErrNotFound", got, err)
			}
		})
	}
}

func TestCookieStoreLoadExpiresWithClock(t *testing.T) {
	codec := newTestCodec(t, newSecret(t))
	b := newBrowser(t)
	sess := newSession(t, 100)
	saveTo(t, b, NewCookieStore(codec, CookieOptions{}, fixedClock(testNow)), sess)

	tests := []struct {
		name   string
		now    time.Time
		wantOK bool
	}{
		{"just before", sess.ExpiresAt.Add(-time.Nanosecond), true},
		{"at expiry", sess.ExpiresAt, false},
		{"after", sess.ExpiresAt.Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewCookieStore(codec, CookieOptions{}, fixedClock(tt.now))
			got, err := store.Load(b.request())
			if ok := err == nil && got != nil; ok != tt.wantOK {
				t.Errorf("Load = %v, %v; want success %v", got, err, tt.wantOK)
			}
			if !tt.wantOK && !errors.Is(err, ErrNotFound) {
				t.Errorf("Load error = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestCookieStoreClear(t *testing.T) {
	opts := CookieOptions{Domain: "example.com", Path: "/", Secure: true, SameSite: http.SameSiteLaxMode}
	tests := []struct {
		name        string
		cookie      string
		wantExpired []string
	}{
		{"nothing", "", []string{"_authproxy"}},
		{"one cookie", "_authproxy=x; other=y", []string{"_authproxy"}},
		{"chunks", "_authproxy_0=a; _authproxy_1=b; _authproxy_2=c; _authproxy_state=s", []string{"_authproxy", "_authproxy_0", "_authproxy_1", "_authproxy_2"}},
		{"stray chunks", "_authproxy=x; _authproxy_7=a; _authproxy_07=b; _authproxy_7=c", []string{"_authproxy", "_authproxy_07", "_authproxy_7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore(t, opts)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			rec := httptest.NewRecorder()
			if err := store.Clear(rec, r); err != nil {
				t.Fatalf("Clear: %v", err)
			}
			cookies := rec.Result().Cookies()
			set, expired := split(cookies)
			if len(set) != 0 {
				t.Errorf("Clear set %v; want none", set)
			}
			if !slices.Equal(expired, tt.wantExpired) {
				t.Errorf("Clear expired %v, want %v", expired, tt.wantExpired)
			}
			for _, c := range cookies {
				if c.Path != opts.Path || c.Domain != opts.Domain || !c.Secure || !c.HttpOnly || c.Value != "" {
					t.Errorf("expiring cookie %s has attributes %q; want the store's", c.Name, c.String())
				}
				if !c.Expires.Before(testNow) {
					t.Errorf("expiring cookie %s has Expires %v, want the past", c.Name, c.Expires)
				}
			}
		})
	}

	t.Run("browser drops the session", func(t *testing.T) {
		store := newTestStore(t, opts)
		b := newBrowser(t)
		saveTo(t, b, store, newSession(t, 12500))
		rec := httptest.NewRecorder()
		if err := store.Clear(rec, b.request()); err != nil {
			t.Fatalf("Clear: %v", err)
		}
		b.receive(rec)
		if names := b.names(); len(names) != 0 {
			t.Errorf("browser still keeps %v", names)
		}
		if _, err := store.Load(b.request()); !errors.Is(err, ErrNotFound) {
			t.Errorf("Load after Clear: %v, want ErrNotFound", err)
		}
	})
}

func TestNewCookieStoreDefaults(t *testing.T) {
	tests := []struct {
		name string
		opts CookieOptions
		want CookieOptions
	}{
		{"zero", CookieOptions{}, CookieOptions{Name: "_authproxy", Path: "/", MaxChunks: 5}},
		{"negative chunks", CookieOptions{MaxChunks: -1}, CookieOptions{Name: "_authproxy", Path: "/", MaxChunks: 5}},
		{"too many chunks", CookieOptions{MaxChunks: 1000}, CookieOptions{Name: "_authproxy", Path: "/", MaxChunks: 16}},
		{"all set", CookieOptions{Name: "s", Domain: "example.com", Path: "/app", Secure: true, SameSite: http.SameSiteStrictMode, MaxChunks: 3},
			CookieOptions{Name: "s", Domain: "example.com", Path: "/app", Secure: true, SameSite: http.SameSiteStrictMode, MaxChunks: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewCookieStore(newTestCodec(t, newSecret(t)), tt.opts, nil)
			if store.opts != tt.want {
				t.Errorf("options = %+v, want %+v", store.opts, tt.want)
			}
			if store.now == nil {
				t.Error("nil clock")
			}
		})
	}
}

func TestCookieStoreOwns(t *testing.T) {
	tests := []struct {
		storeName string
		cookie    string
		want      bool
	}{
		{"", "_authproxy", true},
		{"", "_authproxy_0", true},
		{"", "_authproxy_12", true},
		{"", "_authproxy_007", true},
		{"", "_authproxy_", false},
		{"", "_authproxy_x", false},
		{"", "_authproxy_1x", false},
		{"", "_authproxy_-1", false},
		{"", "_authproxy_state", false},
		{"", "_authproxy0", false},
		{"", "_AUTHPROXY", false},
		{"", "x_authproxy", false},
		{"", "", false},
		{"sess", "sess", true},
		{"sess", "sess_3", true},
		{"sess", "_authproxy", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.storeName, tt.cookie), func(t *testing.T) {
			store := newTestStore(t, CookieOptions{Name: tt.storeName})
			if got := store.Owns(tt.cookie); got != tt.want {
				t.Errorf("Owns(%q) = %v, want %v", tt.cookie, got, tt.want)
			}
		})
	}
}

func TestCookieStoreAttributes(t *testing.T) {
	tests := []struct {
		name       string
		opts       CookieOptions
		tokenBytes int
		lifetime   time.Duration
		wantName   string // of the first cookie
		wantPath   string
		wantMaxAge int
	}{
		{"defaults", CookieOptions{}, 100, time.Hour, "_authproxy", "/", 3600},
		{"secure strict", CookieOptions{Domain: "example.com", Secure: true, SameSite: http.SameSiteStrictMode}, 100, 168 * time.Hour, "_authproxy", "/", 168 * 3600},
		{"chunks", CookieOptions{Name: "s", Path: "/app", Secure: true, SameSite: http.SameSiteLaxMode}, 12500, time.Hour, "s_0", "/app", 3600},
		{"long domain", CookieOptions{Domain: strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".example.com", Secure: true, SameSite: http.SameSiteNoneMode}, 12500, time.Hour, "_authproxy_0", "/", 3600},
		{"rounds down", CookieOptions{}, 100, 90*time.Second + 900*time.Millisecond, "_authproxy", "/", 90},
		{"at least a second", CookieOptions{}, 100, 500 * time.Millisecond, "_authproxy", "/", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore(t, tt.opts)
			sess := newSession(t, tt.tokenBytes)
			sess.ExpiresAt = testNow.Add(tt.lifetime)
			rec := httptest.NewRecorder()
			if err := store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
				t.Fatalf("Save: %v", err)
			}
			for _, h := range rec.Header().Values("Set-Cookie") {
				if len(h) > maxCookieBytes {
					t.Errorf("Set-Cookie is %d bytes, over %d", len(h), maxCookieBytes)
				}
			}
			cookies := rec.Result().Cookies()
			if len(cookies) == 0 || cookies[0].Name != tt.wantName {
				t.Fatalf("Save set %v, want %s first", cookies, tt.wantName)
			}
			for _, c := range cookies {
				if c.MaxAge < 0 {
					continue // the bare cookie, expired when chunking
				}
				if !c.HttpOnly {
					t.Errorf("%s: not HttpOnly", c.Name)
				}
				if c.Secure != tt.opts.Secure {
					t.Errorf("%s: Secure = %v, want %v", c.Name, c.Secure, tt.opts.Secure)
				}
				if c.SameSite != tt.opts.SameSite {
					t.Errorf("%s: SameSite = %v, want %v", c.Name, c.SameSite, tt.opts.SameSite)
				}
				if c.Path != tt.wantPath {
					t.Errorf("%s: Path = %q, want %q", c.Name, c.Path, tt.wantPath)
				}
				if c.Domain != tt.opts.Domain {
					t.Errorf("%s: Domain = %q, want %q", c.Name, c.Domain, tt.opts.Domain)
				}
				if c.MaxAge != tt.wantMaxAge {
					t.Errorf("%s: Max-Age = %d, want %d", c.Name, c.MaxAge, tt.wantMaxAge)
				}
				if want := sess.ExpiresAt.Truncate(time.Second); !c.Expires.Equal(want) {
					t.Errorf("%s: Expires = %v, want %v", c.Name, c.Expires, want)
				}
			}
		})
	}
}
