package session

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps only its header, which the
// benchmarks clear between iterations.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w discardWriter) WriteHeader(int)             {}

// A typical session: about 3 KB of tokens, saved in two cookies.
const typicalTokenBytes = 3000

func BenchmarkCookieStoreSave(b *testing.B) {
	store := newTestStore(b, CookieOptions{Secure: true, SameSite: http.SameSiteLaxMode})
	sess := newSession(b, typicalTokenBytes)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		if err := store.Save(w, r, sess); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCookieStoreLoad(b *testing.B) {
	store := newTestStore(b, CookieOptions{Secure: true, SameSite: http.SameSiteLaxMode})
	br := newBrowser(b)
	saveTo(b, br, store, newSession(b, typicalTokenBytes))
	r := br.request()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.Load(r); err != nil {
			b.Fatal(err)
		}
	}
}
