package providers

// Regression tests for bugs found while writing the tests beside them.
// Each failed against the code as first written; each says what it expects.

import (
	"context"
	"testing"
)

// go-oidc decodes claims with encoding/json into map[string]any, so JSON
// numbers arrive as float64, and claimString formats them with fmt.Sprint:
// a numeric user or group claim of 8 or more digits comes out in exponent
// form ("1.2345678e+07"), and one above 2^53 loses digits. Two users can
// then share one X-Forwarded-User.
func TestBugNumericClaimsMangled(t *testing.T) {
	for _, tc := range []struct {
		name string
		uid  any
		want string
	}{
		{"eight digits", 12345678, "12345678"},
		{"GitHub-sized id", 123456789, "123456789"},
		{"above 2^53", uint64(9007199254740993), "9007199254740993"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			f.set(func(f *testIdP) {
				f.tweak = func(c map[string]any) { c["uid"] = tc.uid; c["groups"] = []any{tc.uid} }
			})
			p := f.provider(t, func(c *OIDCConfig) { c.UserClaim = "uid" })
			code, verifier, nonce := signIn(t, f, p)
			id, err := p.Exchange(context.Background(), code, verifier, nonce)
			if err != nil {
				t.Fatal(err)
			}
			if id.User != tc.want {
				t.Errorf("User = %q, want %q", id.User, tc.want)
			}
			if len(id.Groups) != 1 || id.Groups[0] != tc.want {
				t.Errorf("Groups = %q, want [%q]", id.Groups, tc.want)
			}
		})
	}
}
