package providers

import (
	"errors"
	"net/url"
	"testing"
)

// TestGoogle runs the google kind against the test IdP standing in for
// accounts.google.com (which cannot be reached from tests), with ID tokens
// shaped like Google's: hd only for Workspace accounts, email_verified a
// boolean.
func TestGoogle(t *testing.T) {
	for _, tc := range []struct {
		name         string
		domains      []string
		claims       func(c map[string]any)
		wantErr      error // nil: signed in
		wantVerified bool
	}{
		{"no hosted domain required, consumer account", nil, func(c map[string]any) {}, nil, true},
		{"hosted domain matches", []string{"example.com"}, func(c map[string]any) { c["hd"] = "example.com" }, nil, true},
		{"hosted domain matches, any case", []string{"Example.COM"}, func(c map[string]any) { c["hd"] = "example.com" }, nil, true},
		{"one of several", []string{"a.example", "example.com"}, func(c map[string]any) { c["hd"] = "example.com" }, nil, true},
		{"any Workspace domain", []string{"*"}, func(c map[string]any) { c["hd"] = "other.example" }, nil, true},
		{"email not verified", []string{"example.com"}, func(c map[string]any) { c["hd"] = "example.com"; c["email_verified"] = false }, nil, false},

		{"other hosted domain", []string{"example.com"}, func(c map[string]any) { c["hd"] = "evil.example" }, ErrDenied, false},
		{"consumer account", []string{"example.com"}, func(c map[string]any) {}, ErrDenied, false},
		{"consumer account, any Workspace domain", []string{"*"}, func(c map[string]any) {}, ErrDenied, false},
		{"hd of the wrong type", []string{"example.com"}, func(c map[string]any) { c["hd"] = []any{"example.com"} }, ErrDenied, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			f.set(func(f *testIdP) { f.tweak = tc.claims })
			p := f.kindProvider(t, "google", func(c *Config) { c.Google.HostedDomains = tc.domains })
			id, err := exchange(t, f, p)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, ErrRejected) || id != nil {
					t.Errorf("Exchange = %+v, %v; want %v (an ErrRejected)", id, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if id.EmailVerified != tc.wantVerified {
				t.Errorf("EmailVerified = %t, want %t", id.EmailVerified, tc.wantVerified)
			}
		})
	}
}

func TestGoogleHostedDomainHint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		domains []string
		want    []string
	}{
		{"one domain", []string{"example.com"}, []string{"example.com"}},
		{"any Workspace domain", []string{"*"}, []string{"*"}},
		{"several: no hint", []string{"a.example", "b.example"}, nil},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			p := f.kindProvider(t, "google", func(c *Config) { c.Google.HostedDomains = tc.domains })
			raw, err := p.AuthCodeURL("state", "nonce", "verifier")
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			q := u.Query()
			if got := q["hd"]; len(got) != len(tc.want) || len(got) > 0 && got[0] != tc.want[0] {
				t.Errorf("hd = %q, want %q", got, tc.want)
			}
			if q.Get("state") != "state" || q.Get("nonce") != "nonce" || q.Get("code_challenge_method") != "S256" {
				t.Errorf("standard parameters lost: %v", q)
			}
		})
	}
}
