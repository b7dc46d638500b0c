package session

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz targets use a fixed key and a max age of a century so that the
// sealed values in testdata/fuzz keep opening; a value opens only if it was
// sealed with this key, and every value ever sealed with it holds one of
// fuzzSessions.

func fuzzCodec(t testing.TB) *Codec {
	t.Helper()
	secret := make([]byte, SecretLength)
	for i := range secret {
		secret[i] = byte(i)
	}
	c, err := NewCodec([][]byte{secret}, 100*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fuzzSessions() []*Session {
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// Group names as random as real ids, but the same in every run.
	groups := make([]string, 200)
	for i := range groups {
		groups[i] = fmt.Sprintf("group-%x", sha256.Sum256(fmt.Append(nil, i)))[:38]
	}
	payload, _ := json.Marshal(map[string]any{"sub": "w", "groups": groups})
	return []*Session{
		{
			ID: "small", User: "u", Subject: "u", Email: "u@example.com",
			CreatedAt: created, ExpiresAt: created.Add(100 * 365 * 24 * time.Hour),
		},
		{
			ID: "chunked", User: "v", Subject: "v", Groups: []string{"g1", "g2"},
			IDToken:      strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 60),
			AccessToken:  strings.Repeat("eyJ0eXAiOiJKV1QifQ.", 60),
			RefreshToken: strings.Repeat("r3fr3sh-", 100),
			CreatedAt:    created, ExpiresAt: created.Add(100 * 365 * 24 * time.Hour),
		},
		{
			// Compressed (and its ID token split), still over two cookies.
			ID: "compressed", User: "w", Subject: "w", Groups: groups,
			IDToken:      "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln",
			RefreshToken: "r3fr3sh",
			CreatedAt:    created, ExpiresAt: created.Add(100 * 365 * 24 * time.Hour),
		},
	}
}

// isFuzzSession reports whether s is one of fuzzSessions.
func isFuzzSession(t testing.TB, s *Session) bool {
	t.Helper()
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range fuzzSessions() {
		w, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) == string(w) {
			return true
		}
	}
	return false
}

// fuzzCookieHeaders returns Cookie headers carrying each of fuzzSessions as
// store saves them.
func fuzzCookieHeaders(t testing.TB, store *CookieStore) []string {
	t.Helper()
	var headers []string
	for _, sess := range fuzzSessions() {
		rec := httptest.NewRecorder()
		if err := store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, c := range rec.Result().Cookies() {
			if c.MaxAge >= 0 {
				parts = append(parts, c.Name+"="+c.Value)
			}
		}
		headers = append(headers, strings.Join(parts, "; "))
	}
	return headers
}

func FuzzCookieStoreLoad(f *testing.F) {
	store := NewCookieStore(fuzzCodec(f), CookieOptions{}, fixedClock(testNow))
	for _, h := range fuzzCookieHeaders(f, store) {
		f.Add(h)
		f.Add(flip(h, len(h)/2))
		f.Add(h[:len(h)-5])
		f.Add(strings.ReplaceAll(h, "_authproxy_1=", "_authproxy_2="))
		f.Add("a=b; " + h + "; _authproxy_9=x")
	}
	f.Add("")
	f.Add("_authproxy=")
	f.Add("_authproxy_0=; _authproxy_1=x")

	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", header)
		sess, err := store.Load(r)
		switch {
		case err == nil && sess == nil:
			t.Fatal("Load returned nil, nil")
		case err == nil && !isFuzzSession(t, sess):
			t.Fatalf("Load returned a session never sealed: %+v", sess)
		case err != nil && sess != nil:
			t.Fatalf("Load returned a session with error %v", err)
		case err != nil && !errors.Is(err, ErrNotFound):
			t.Fatalf("Load error %v is not ErrNotFound", err)
		}

		rec := httptest.NewRecorder()
		if err := store.Clear(rec, r); err != nil {
			t.Fatalf("Clear: %v", err)
		}
		for _, c := range rec.Result().Cookies() {
			if c.MaxAge >= 0 || !store.Owns(c.Name) {
				t.Fatalf("Clear set %s", c.String())
			}
		}
	})
}

func FuzzCodecOpen(f *testing.F) {
	codec := fuzzCodec(f)
	for _, sess := range fuzzSessions() {
		sealed, err := codec.Seal(DefaultCookieName, sess)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(DefaultCookieName, sealed)
		f.Add("_other", sealed)
		f.Add(DefaultCookieName, flip(sealed, len(sealed)/2))
		f.Add(DefaultCookieName, sealed[:len(sealed)-3])
	}
	f.Add(DefaultCookieName, "")
	f.Add(DefaultCookieName, "garbage")

	f.Fuzz(func(t *testing.T, name, value string) {
		var sess Session
		err := codec.Open(name, value, &sess)
		if err == nil && (name != DefaultCookieName || !isFuzzSession(t, &sess)) {
			t.Fatalf("Open(%q) returned a value never sealed: %+v", name, sess)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "session: ") {
			t.Fatalf("error %q lacks the session: prefix", err)
		}
	})
}

// TestFuzzCorpusOpens checks that the valid entries checked in under
// testdata/fuzz still open, so the fuzz targets keep reaching the success path.
func TestFuzzCorpusOpens(t *testing.T) {
	store := NewCookieStore(fuzzCodec(t), CookieOptions{}, fixedClock(testNow))
	tests := []struct {
		file   string
		wantOK bool
	}{
		{"FuzzCookieStoreLoad/valid-single", true},
		{"FuzzCookieStoreLoad/valid-compressed-chunks", true},
		{"FuzzCookieStoreLoad/valid-chunks", true},
		{"FuzzCookieStoreLoad/bare-and-chunks", true},
		{"FuzzCookieStoreLoad/quoted-and-junk", true},
		{"FuzzCookieStoreLoad/chunks-swapped", false},
		{"FuzzCookieStoreLoad/truncated-chunk", false},
		{"FuzzCodecOpen/valid", true},
		{"FuzzCodecOpen/valid-compressed", true},
		{"FuzzCodecOpen/other-name", false},
		{"FuzzCodecOpen/flipped", false},
		{"FuzzCodecOpen/padding-stripped", false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			args := readCorpusFile(t, filepath.Join("testdata", "fuzz", tt.file))
			var err error
			switch len(args) {
			case 1:
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Cookie", args[0])
				_, err = store.Load(r)
			case 2:
				var sess Session
				err = store.codec.Open(args[0], args[1], &sess)
			default:
				t.Fatalf("%d arguments", len(args))
			}
			if ok := err == nil; ok != tt.wantOK {
				t.Errorf("opening it: error %v, want success %v", err, tt.wantOK)
			}
		})
	}
}

// readCorpusFile returns the string arguments of a file in Go's fuzz corpus
// format.
func readCorpusFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 0 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a fuzz corpus file", path)
	}
	var args []string
	for _, line := range lines[1:] {
		quoted, ok := strings.CutPrefix(line, "string(")
		quoted, ok2 := strings.CutSuffix(quoted, ")")
		if !ok || !ok2 {
			t.Fatalf("%s: unexpected line %q", path, line)
		}
		s, err := strconv.Unquote(quoted)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		args = append(args, s)
	}
	return args
}
