package session

import (
	"bytes"
	"compress/flate"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/securecookie"
)

// sealerAsBefore returns a securecookie codec keyed from secret as NewCodec
// keys them, serializing with ser: securecookie.JSONEncoder seals exactly as
// releases before compression did; NopEncoder seals raw bytes, for values a
// Codec would never produce.
func sealerAsBefore(t testing.TB, secret []byte, ser securecookie.Serializer) *securecookie.SecureCookie {
	t.Helper()
	hashKey, err := hkdf.Key(sha256.New, secret, nil, hashKeyInfo, 64)
	if err != nil {
		t.Fatal(err)
	}
	blockKey, err := hkdf.Key(sha256.New, secret, nil, blockKeyInfo, 32)
	if err != nil {
		t.Fatal(err)
	}
	return securecookie.New(hashKey, blockKey).SetSerializer(ser).MaxLength(0)
}

// deflate returns b compressed as encodeJSON compresses, behind the marker.
func deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(deflated)
	zw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// manyGroupsSession is a session of a user in n groups with GUID-like names.
func manyGroupsSession(t testing.TB, n int) *Session {
	t.Helper()
	s := newSession(t, 100)
	s.IDToken, s.AccessToken = "", ""
	for i := range n {
		h := sha256.Sum256(fmt.Append(nil, i))
		s.Groups = append(s.Groups, fmt.Sprintf("app-team-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
	}
	return s
}

func TestEncodeJSONForm(t *testing.T) {
	codec := newTestCodec(t, newSecret(t))
	tests := []struct {
		name         string
		v            any
		wantDeflated bool
	}{
		{"sign-in state: plain JSON, compression would not shorten it", stateValue{Nonce: tokenText(t, 43), Verifier: tokenText(t, 43)}, false},
		{"small session", newSession(t, 100), true},
		{"session of 150 groups", manyGroupsSession(t, 150), true},
		{"session with random tokens", newSession(t, 6000), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := codec.encodeJSON(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if isDeflated := got[0] == deflated; isDeflated != tt.wantDeflated {
				t.Errorf("deflated %v, want %v (%d bytes of JSON, %d encoded)", isDeflated, tt.wantDeflated, len(plain), len(got))
			}
			if len(got) > len(plain) {
				t.Errorf("encoded %d bytes, longer than its JSON (%d)", len(got), len(plain))
			}
			if !tt.wantDeflated && !bytes.Equal(got, plain) {
				t.Errorf("not deflated, yet not its JSON either")
			}
			// Whatever the form, it decodes to the same JSON.
			var back any
			if err := codec.decodeJSON(got, &back); err != nil {
				t.Fatalf("decodeJSON: %v", err)
			}
			var want any
			json.Unmarshal(plain, &want)
			if a, b := fmt.Sprint(back), fmt.Sprint(want); a != b {
				t.Errorf("decoded %.80s…, want %.80s…", a, b)
			}
		})
	}
}

// TestCodecOpensValuesSealedBefore opens values sealed as releases before
// compression sealed them (securecookie's JSONEncoder, no marker), with the
// fields those releases always filled (access token, ID token).
func TestCodecOpensValuesSealedBefore(t *testing.T) {
	secret := newSecret(t)
	codec := newTestCodec(t, secret)
	store := NewCookieStore(codec, CookieOptions{}, fixedClock(testNow))
	old := sealerAsBefore(t, secret, securecookie.JSONEncoder{})
	jws := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u-123","groups":["admins","staff"]}`)) + ".c2ln"
	tests := []struct {
		name   string
		sess   *Session
		chunks int // as the store split it: 0 for one bare cookie
	}{
		{"one cookie", newSession(t, 600), 0},
		{"with a JWS ID token", func() *Session { s := newSession(t, 600); s.IDToken = jws; return s }(), 0},
		{"split over five cookies", newSession(t, 9000), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := old.Encode(DefaultCookieName, tt.sess)
			if err != nil {
				t.Fatal(err)
			}
			var got Session
			if err := codec.Open(DefaultCookieName, sealed, &got); err != nil {
				t.Fatalf("Open: %v", err)
			}
			sameSession(t, &got, tt.sess)
			if got.IDToken != tt.sess.IDToken || got.AccessToken != tt.sess.AccessToken {
				t.Errorf("tokens not as sealed")
			}

			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.chunks == 0 {
				r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: sealed})
			} else {
				size := (len(sealed) + tt.chunks - 1) / tt.chunks
				for i := range tt.chunks {
					r.AddCookie(&http.Cookie{Name: fmt.Sprintf("%s_%d", DefaultCookieName, i), Value: sealed[i*size : min((i+1)*size, len(sealed))]})
				}
			}
			loaded, err := store.Load(r)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			sameSession(t, loaded, tt.sess)
		})
	}
}

// TestCodecOpenRefusesBadCompression seals, with the right key, values that
// Seal never makes: they must not open, and inflating must stop at 64 KiB.
func TestCodecOpenRefusesBadCompression(t *testing.T) {
	secret := newSecret(t)
	codec := newTestCodec(t, secret)
	raw := sealerAsBefore(t, secret, securecookie.NopEncoder{})
	valid, err := json.Marshal(newSession(t, 100))
	if err != nil {
		t.Fatal(err)
	}
	bomb := deflate(t, append([]byte(`{"id":"`), bytes.Repeat([]byte("a"), 10<<20)...))
	tests := []struct {
		name  string
		value []byte
	}{
		{"inflates to 10 MiB", bomb},
		{"inflates to a session one byte past 64 KiB", deflate(t, jsonOfLength(t, maxPlainLength+1))},
		{"truncated stream", deflate(t, valid)[:40]},
		{"not DEFLATE", append([]byte{deflated}, "not deflate at all"...)},
		{"marker alone", []byte{deflated}},
		{"inflates to something not JSON", deflate(t, []byte("not json"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := raw.Encode(DefaultCookieName, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			var got Session
			err = codec.Open(DefaultCookieName, sealed, &got)
			if err == nil {
				t.Fatalf("Open succeeded, with an ID of %d bytes", len(got.ID))
			}
			if !strings.HasPrefix(err.Error(), "session: ") {
				t.Errorf("error %q lacks the session: prefix", err)
			}
		})
	}

	// Controls: the same path opens well-formed compressed values, up to
	// 64 KiB inflated.
	for _, plain := range [][]byte{valid, jsonOfLength(t, maxPlainLength)} {
		sealed, err := raw.Encode(DefaultCookieName, deflate(t, plain))
		if err != nil {
			t.Fatal(err)
		}
		var got Session
		if err := codec.Open(DefaultCookieName, sealed, &got); err != nil {
			t.Errorf("a well-formed compressed value of %d bytes did not open: %v", len(plain), err)
		}
	}
}

// jsonOfLength returns a session's JSON of exactly n bytes.
func jsonOfLength(t testing.TB, n int) []byte {
	t.Helper()
	b := []byte(`{"id":"` + strings.Repeat("a", n-9) + `"}`)
	if len(b) != n || !json.Valid(b) {
		t.Fatalf("jsonOfLength(%d) made %d bytes", n, len(b))
	}
	return b
}

func TestCodecSealRefusesJSONPast64KiB(t *testing.T) {
	codec := newTestCodec(t, newSecret(t))
	// Compresses to almost nothing, but could not be opened again.
	_, err := codec.Seal(DefaultCookieName, map[string]string{"x": strings.Repeat("a", maxPlainLength)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Seal error = %v, want ErrTooLarge", err)
	}
	if _, err := codec.Seal(DefaultCookieName, map[string]string{"x": strings.Repeat("a", maxPlainLength-16)}); err != nil {
		t.Errorf("Seal of JSON just under 64 KiB: %v", err)
	}
}

// TestCookieStoreFitsManyGroups checks what compression buys the cookie
// store: a session of 150 GUID-named groups in two cookies, which without it
// needs three.
func TestCookieStoreFitsManyGroups(t *testing.T) {
	store := newTestStore(t, CookieOptions{})
	sess := manyGroupsSession(t, 150)
	rec := saveTo(t, newBrowser(t), store, sess)
	set, _ := split(rec.Result().Cookies())
	if len(set) != 2 {
		t.Errorf("Save set %v, want two cookies", set)
	}
	plain, _ := json.Marshal(sess)
	if need := (len(plain)*16/9 + maxCookieBytes - 1) / maxCookieBytes; need < 3 {
		t.Errorf("test session too small: uncompressed it would need only %d cookies", need)
	}
}
