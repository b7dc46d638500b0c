package session

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

// newSecret returns a fresh random cookie secret.
func newSecret(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, SecretLength)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestCodec(t testing.TB, secrets ...[]byte) *Codec {
	t.Helper()
	c, err := NewCodec(secrets, time.Hour)
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

func TestNewCodecRejects(t *testing.T) {
	good := make([]byte, 32)
	tests := []struct {
		name    string
		secrets [][]byte
		maxAge  time.Duration
	}{
		{"no secrets", nil, time.Hour},
		{"31-byte secret", [][]byte{make([]byte, 31)}, time.Hour},
		{"33-byte secret", [][]byte{make([]byte, 33)}, time.Hour},
		{"bad second secret", [][]byte{good, make([]byte, 16)}, time.Hour},
		{"zero max age", [][]byte{good}, 0},
		{"sub-second max age", [][]byte{good}, 500 * time.Millisecond},
		{"negative max age", [][]byte{good}, -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCodec(tt.secrets, tt.maxAge)
			if err == nil {
				t.Fatalf("NewCodec = %v, nil; want an error", c)
			}
			if !strings.HasPrefix(err.Error(), "session: ") {
				t.Errorf("error %q lacks the session: prefix", err)
			}
		})
	}
}

type stateValue struct {
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Redirect string `json:"rd"`
}

func TestCodecRoundTrip(t *testing.T) {
	c := newTestCodec(t, newSecret(t))
	in := stateValue{Nonce: "n-1", Verifier: "v-2", Redirect: "/a?b=c"}
	sealed, err := c.Seal("_authproxy_state", in)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if strings.Contains(sealed, in.Verifier) || strings.Contains(sealed, in.Redirect) {
		t.Errorf("sealed value %q shows the plaintext", sealed)
	}
	if i := strings.IndexFunc(sealed, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=", r))
	}); i >= 0 {
		t.Errorf("sealed value has %q at %d, not safe in a cookie", sealed[i], i)
	}
	var out stateValue
	if err := c.Open("_authproxy_state", sealed, &out); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if out != in {
		t.Errorf("Open = %+v, want %+v", out, in)
	}
}

func TestCodecOpenRejects(t *testing.T) {
	secret := newSecret(t)
	c := newTestCodec(t, secret)
	sealed, err := c.Seal("a", stateValue{Nonce: "x"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := newTestCodec(t, newSecret(t)).Seal("a", stateValue{Nonce: "x"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cookie, value string
	}{
		{"other name", "b", sealed},
		{"name prefix", "a|", sealed},
		{"other key", "a", other},
		{"empty", "a", ""},
		{"garbage", "a", "garbage"},
		{"truncated", "a", sealed[:len(sealed)-4]},
		{"flipped byte", "a", flip(sealed, len(sealed)/2)},
		{"over long", "a", sealed + strings.Repeat("A", maxSealedLength)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out stateValue
			err := c.Open(tt.cookie, tt.value, &out)
			if err == nil {
				t.Fatalf("Open succeeded with %+v; want an error", out)
			}
			if !strings.HasPrefix(err.Error(), "session: ") {
				t.Errorf("error %q lacks the session: prefix", err)
			}
		})
	}
}

func TestCodecRotation(t *testing.T) {
	oldKey, newKey := newSecret(t), newSecret(t)
	oldCodec := newTestCodec(t, oldKey)
	rotated := newTestCodec(t, newKey, oldKey)
	newOnly := newTestCodec(t, newKey)

	sealedOld, err := oldCodec.Seal("a", stateValue{Nonce: "old"})
	if err != nil {
		t.Fatal(err)
	}
	sealedNew, err := rotated.Seal("a", stateValue{Nonce: "new"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		codec  *Codec
		value  string
		wantOK bool
	}{
		{"rotated opens old", rotated, sealedOld, true},
		{"rotated opens its own", rotated, sealedNew, true},
		{"new only opens rotated's", newOnly, sealedNew, true},
		{"new only refuses old", newOnly, sealedOld, false},
		{"old refuses rotated's", oldCodec, sealedNew, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out stateValue
			err := tt.codec.Open("a", tt.value, &out)
			if ok := err == nil; ok != tt.wantOK {
				t.Errorf("Open error = %v, want success %v", err, tt.wantOK)
			}
		})
	}
}

func TestCodecSealTooLarge(t *testing.T) {
	c := newTestCodec(t, newSecret(t))
	_, err := c.Seal("a", stateValue{Nonce: strings.Repeat("x", maxSealedLength)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Seal error = %v, want ErrTooLarge", err)
	}
}

func TestCodecMaxAge(t *testing.T) {
	if testing.Short() {
		t.Skip("waits two seconds")
	}
	t.Parallel()
	c, err := NewCodec([][]byte{newSecret(t)}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := c.Seal("a", stateValue{Nonce: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// The codec counts whole seconds by the wall clock.
	time.Sleep(2100 * time.Millisecond)
	var out stateValue
	if err := c.Open("a", sealed, &out); err == nil {
		t.Error("Open succeeded past the codec's max age")
	}
}

// flip returns s with the byte at i changed to another base64url character.
func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
