package providers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func signedJWT(t testing.TB, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestUnverifiedIssuer(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"ES256", signedJWT(t, jose.ES256, ec, map[string]any{"iss": "https://a.example", "sub": "x"}), "https://a.example"},
		{"HS256 refused", signedJWT(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), map[string]any{"iss": "https://a.example"}), ""},
		{"no iss", signedJWT(t, jose.ES256, ec, map[string]any{"sub": "x"}), ""},
		{"iss not a string", signedJWT(t, jose.ES256, ec, map[string]any{"iss": 7}), ""},
		{"not a JWT", "opaque-token", ""},
		{"alg none", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2EuZXhhbXBsZSJ9.", ""},
		{"too large", strings.Repeat("a", maxPeekBytes+1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnverifiedIssuer(tc.raw)
			if tc.want == "" {
				if err == nil || !errors.Is(err, ErrRejected) {
					t.Fatalf("UnverifiedIssuer = %q, %v; want ErrRejected", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("UnverifiedIssuer = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func FuzzUnverifiedIssuer(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2EuZXhhbXBsZSJ9.c2ln")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		iss, err := UnverifiedIssuer(raw)
		if err == nil && iss == "" {
			t.Fatal("no error and no issuer")
		}
		if err != nil && !errors.Is(err, ErrRejected) {
			t.Fatalf("error %v does not wrap ErrRejected", err)
		}
	})
}
