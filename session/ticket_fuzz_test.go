package session

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzTicketStore returns a ticket store over a memory backend holding each
// of fuzzSessions under a fixed ticket, and the Cookie headers carrying
// those tickets. The tickets' secrets are fixed and the codec is
// fuzzCodec's, so the tickets checked in under testdata/fuzz keep opening.
func fuzzTicketStore(t testing.TB) (*TicketStore, []string) {
	t.Helper()
	codec := fuzzCodec(t)
	backend := NewMemoryBackend(fixedClock(testNow))
	store := NewTicketStore(backend, codec, CookieOptions{}, fixedClock(testNow))
	var headers []string
	for i, sess := range fuzzSessions() {
		tk := &ticket{
			secret:      sha256.Sum256([]byte{'f', 'u', 'z', 'z', byte(i)}),
			fingerprint: fingerprint(sess.ID),
		}
		if err := tk.derive(); err != nil {
			t.Fatal(err)
		}
		plain, err := json.Marshal(sess)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := sealBlob(tk.key, tk.id, plain)
		if err != nil {
			t.Fatal(err)
		}
		if err := backend.Set(context.Background(), sessionKeyPrefix+tk.id, blob, 100*365*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		sealed, err := codec.Seal(DefaultCookieName, tk.encode())
		if err != nil {
			t.Fatal(err)
		}
		headers = append(headers, DefaultCookieName+"="+sealed)
	}
	return store, headers
}

func FuzzTicketStoreLoad(f *testing.F) {
	store, headers := fuzzTicketStore(f)
	for _, h := range headers {
		f.Add(h)
		f.Add(flip(h, len(h)/2))
		f.Add(h[:len(h)-5])
		f.Add("a=b; " + h + "; _authproxy_0=x")
		f.Add(strings.Replace(h, DefaultCookieName+"=", "_authproxy_state=", 1))
	}
	unknown, err := newTicket("small")
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := store.codec.Seal(DefaultCookieName, unknown.encode())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(DefaultCookieName + "=" + sealed)
	f.Add("")
	f.Add("_authproxy=")
	f.Add("_authproxy=; _authproxy=x")

	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", header)
		sess, err := store.Load(r)
		switch {
		case err == nil && sess == nil:
			t.Fatal("Load returned nil, nil")
		case err == nil && !isFuzzSession(t, sess):
			t.Fatalf("Load returned a session never stored: %+v", sess)
		case err == nil && !containsGenuineTicket(store, header, headers):
			t.Fatalf("Load succeeded without a genuine ticket")
		case err != nil && sess != nil:
			t.Fatalf("Load returned a session with error %v", err)
		case err != nil && !errors.Is(err, ErrNotFound):
			t.Fatalf("Load error %v is not ErrNotFound", err)
		}
	})
}

// containsGenuineTicket reports whether the ticket store.ticket finds in
// header is one of those in genuine.
func containsGenuineTicket(store *TicketStore, header string, genuine []string) bool {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", header)
	got, err := store.ticket(AppendCookies(nil, r.Header))
	if err != nil {
		return false
	}
	for _, h := range genuine {
		g := httptest.NewRequest(http.MethodGet, "/", nil)
		g.Header.Set("Cookie", h)
		if want, err := store.ticket(AppendCookies(nil, g.Header)); err == nil && want.secret == got.secret {
			return true
		}
	}
	return false
}

// TestTicketFuzzCorpus checks that the tickets checked in under
// testdata/fuzz/FuzzTicketStoreLoad still open as they should, so the fuzz
// target keeps reaching the success path.
func TestTicketFuzzCorpus(t *testing.T) {
	store, _ := fuzzTicketStore(t)
	tests := []struct {
		file   string
		wantOK bool
	}{
		{"valid-small", true},
		{"valid-large", true},
		{"valid-among-others", true},
		{"flipped", false},
		{"unknown-ticket", false},
		{"cookie-store-session", false},
		{"other-cookie-name", false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			args := readCorpusFile(t, filepath.Join("testdata", "fuzz", "FuzzTicketStoreLoad", tt.file))
			if len(args) != 1 {
				t.Fatalf("%d arguments", len(args))
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", args[0])
			sess, err := store.Load(r)
			if ok := err == nil; ok != tt.wantOK {
				t.Errorf("Load: error %v, want success %v", err, tt.wantOK)
			}
			if err == nil && !isFuzzSession(t, sess) {
				t.Errorf("Load returned a session never stored")
			}
		})
	}
}
