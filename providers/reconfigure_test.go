package providers

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// The IdP rotates the client secret; until Reconfigure hands the provider
// the new one, its token requests are refused; after it, code exchanges and
// refreshes carry the new secret, and the claims Reconfigure names are read.
func TestReconfigureClientSecret(t *testing.T) {
	f := newTestIdP(t, "secret-1")
	f.set(func(f *testIdP) { f.claims["department"] = "research" })
	p := f.provider(t, nil)
	if _, err := p.Refresh(t.Context(), "rt-good"); err != nil {
		t.Fatalf("Refresh with the secret the IdP has: %v", err)
	}
	f.set(func(f *testIdP) { f.clientSecret = "secret-2" })
	if _, err := p.Refresh(t.Context(), "rt-good"); err == nil || !strings.Contains(err.Error(), "AUTHPROXY_CLIENT_SECRET") {
		t.Fatalf("Refresh with the old secret: %v; want the IdP's refusal naming AUTHPROXY_CLIENT_SECRET", err)
	}

	cfg := p.cfg
	cfg.ClientSecret, cfg.ExtraClaims = "secret-2", []string{"department"}
	if err := p.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() (*Identity, error)
	}{
		{"refresh", func() (*Identity, error) { return p.Refresh(t.Context(), "rt-good") }},
		{"code exchange", func() (*Identity, error) {
			code, verifier, nonce := signIn(t, f, p)
			return p.Exchange(t.Context(), code, verifier, nonce)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.call()
			if err != nil {
				t.Fatalf("with the new secret: %v", err)
			}
			if id.Extra["department"] != "research" {
				t.Errorf("Extra = %v; want the department claim Reconfigure asked for", id.Extra)
			}
		})
	}
}

// A client made public (no secret) after being confidential sends no
// secret, only its client_id in the form, as a public client must.
func TestReconfigureToPublicClient(t *testing.T) {
	f := newTestIdP(t, "secret-1")
	p := f.provider(t, nil)
	f.set(func(f *testIdP) { f.clientSecret = "" })
	cfg := p.cfg
	cfg.ClientSecret = ""
	if err := p.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Refresh(t.Context(), "rt-good"); err != nil {
		t.Fatalf("Refresh as a public client: %v", err)
	}
	f.set(func(f *testIdP) {
		if f.lastBasic || f.lastForm.Has("client_secret") || f.lastForm.Get("client_id") != f.clientID {
			t.Errorf("public client's token request: Basic %t, form %v; want only client_id", f.lastBasic, f.lastForm)
		}
	})
}

// Reconfigure while token requests are under way: under -race, no request
// reads a half-replaced configuration, and each request carries one of the
// two secrets whole.
func TestReconfigureConcurrent(t *testing.T) {
	f := newTestIdP(t, "secret-1")
	p := f.provider(t, nil)
	secrets := []string{"secret-1", "secret-2"}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(t.Context())
	wg.Go(func() {
		cfg := p.cfg
		for i := 0; ctx.Err() == nil; i++ {
			cfg.ClientSecret = secrets[i%2]
			_ = p.Reconfigure(cfg)
		}
	})
	var refused int
	for range 50 {
		if _, err := p.Refresh(t.Context(), "rt-good"); err != nil {
			if !strings.Contains(err.Error(), "invalid_client") {
				t.Errorf("Refresh: %v; want success or the IdP refusing the other secret", err)
			}
			refused++
		}
	}
	cancel()
	wg.Wait()
	cfg := p.cfg
	cfg.ClientSecret = "secret-1"
	_ = p.Reconfigure(cfg)
	if _, err := p.Refresh(t.Context(), "rt-good"); err != nil {
		t.Errorf("Refresh after the last Reconfigure: %v", err)
	}
	t.Logf("%d of 50 refreshes went out with the other secret", refused)
}

// GitHub's provider starts with a wrong client secret, refused by GitHub;
// once Reconfigure hands it the right one, the sign-in goes through.
func TestGitHubReconfigureClientSecret(t *testing.T) {
	g := newGitHubFake(t)
	p := githubProvider(t, g, func(c *Config) { c.ClientSecret = "old-secret" })
	if _, err := githubSignIn(t, g, p, nil); err == nil || !strings.Contains(err.Error(), "AUTHPROXY_CLIENT_SECRET") {
		t.Fatalf("sign-in with a secret GitHub does not have: %v; want the refusal naming AUTHPROXY_CLIENT_SECRET", err)
	}
	cfg := p.cfg
	cfg.ClientSecret = "gh-secret"
	if err := p.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := githubSignIn(t, g, p, nil); err != nil {
		t.Errorf("sign-in after Reconfigure with GitHub's secret: %v", err)
	}
}
