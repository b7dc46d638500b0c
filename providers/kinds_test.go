package providers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// kindProvider returns a discovered provider of kind for the test IdP f;
// edit changes its configuration first.
func (f *testIdP) kindProvider(t testing.TB, kind string, edit func(c *Config)) *OIDC {
	t.Helper()
	p, err := New(kind, f.kindConfig(edit))
	if err != nil {
		t.Fatalf("New(%q): %v", kind, err)
	}
	o, ok := p.(*OIDC)
	if !ok {
		t.Fatalf("New(%q) = %T, want *OIDC", kind, p)
	}
	if err := o.Discover(t.Context()); err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return o
}

func (f *testIdP) kindConfig(edit func(c *Config)) Config {
	cfg := Config{OIDCConfig: OIDCConfig{
		IssuerURL: f.srv.URL, ClientID: f.clientID, ClientSecret: f.clientSecret,
		RedirectURL: "https://app.example.com/oauth2/callback", Scopes: []string{"openid", "email"},
	}}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

// exchange signs in at f through p and returns the result of Exchange.
func exchange(t *testing.T, f *testIdP, p *OIDC) (*Identity, error) {
	t.Helper()
	code, verifier, nonce := signIn(t, f, p)
	return p.Exchange(context.Background(), code, verifier, nonce)
}

// logBuffer collects a logger's output; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(b, nil)) }

func TestNewKinds(t *testing.T) {
	for _, kind := range append([]string{""}, Kinds...) {
		t.Run("kind "+kind, func(t *testing.T) {
			cfg := Config{OIDCConfig: OIDCConfig{
				IssuerURL: "http://127.0.0.1:1/common/v2.0", ClientID: "c", RedirectURL: "https://app.example.com/oauth2/callback",
			}}
			cfg.Entra.Tenants = []string{"*"}
			p, err := New(kind, cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if kind == "github" {
				if _, ok := p.(*GitHub); !ok || p.Ready() != nil {
					t.Errorf("New(github) = %T, Ready %v; want a ready *GitHub", p, p.Ready())
				}
				return
			}
			// Every OpenID Connect kind waits for discovery, and says so.
			if _, ok := p.(Discoverer); !ok {
				t.Fatalf("New(%q) = %T, not a Discoverer", kind, p)
			}
			if err := p.Ready(); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Ready() = %v, want ErrUnavailable", err)
			}
			if err := p.(Discoverer).Discover(t.Context()); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Discover against a closed port: %v, want ErrUnavailable", err)
			}
			if _, err := p.AuthCodeURL("s", "n", "v"); !errors.Is(err, ErrUnavailable) {
				t.Errorf("AuthCodeURL: %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, kind, issuer string
		edit               func(c *Config)
		field, want        string
	}{
		{"unknown kind", "azure", "https://idp.example.com", nil, "Kind", "want one of oidc, keycloak"},
		{"keycloak role", "keycloak", "https://idp.example.com", func(c *Config) { c.Keycloak.Roles = []string{"group"} }, "Keycloak.Roles", `want realm and/or client, got "group"`},
		{"entra v1 issuer", "entra", "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/", nil, "IssuerURL", "with the entra provider, want https://login.microsoftonline.com/<tenant>/v2.0"},
		{"entra multi-tenant without tenants", "entra", "https://login.microsoftonline.com/organizations/v2.0", nil, "Entra.Tenants", "required with the multi-tenant issuer"},
		{"entra tenant not a GUID", "entra", "https://login.microsoftonline.com/common/v2.0", func(c *Config) { c.Entra.Tenants = []string{"contoso.com"} }, "Entra.Tenants", "want tenant ids (GUIDs) or *"},
		{"entra graph URL", "entra", "https://login.microsoftonline.com/contoso.com/v2.0", func(c *Config) { c.Entra.GraphURL = "graph.microsoft.com" }, "Entra.GraphURL", "want an absolute URL"},
		{"github team without org", "github", "", func(c *Config) { c.GitHub.Teams = []string{"platform"} }, "GitHub.Teams", "needs GitHub.Org"},
		{"github URL", "github", "", func(c *Config) { c.GitHub.URL = "github.example.com" }, "GitHub.URL", "want an absolute URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{OIDCConfig: OIDCConfig{IssuerURL: tc.issuer, ClientID: "c"}}
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			p, err := New(tc.kind, cfg)
			var ce *ConfigError
			if err == nil || p != nil || !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(ce.Err.Error(), tc.want) {
				t.Errorf("New = %v, %v; want a ConfigError for %s saying %q", p, err, tc.field, tc.want)
			}
		})
	}
}

// TestDiscoveryIssuerMismatch checks that a wrong AUTHPROXY_OIDC_ISSUER is
// reported with both issuers and what to do about it.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		issuer  func(base string) string // the document's
		wantErr string
	}{
		{"other issuer", func(string) string { return "https://elsewhere.example" }, "set AUTHPROXY_OIDC_ISSUER to exactly the document's issuer"},
		{"trailing slash", func(base string) string { return base + "/" }, "they differ only by the trailing slash"},
		{"Entra template", func(base string) string { return base + "/{tenantid}/v2.0" }, "set AUTHPROXY_PROVIDER=entra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			f.set(func(f *testIdP) { f.discovery = func(d map[string]any) { d["issuer"] = tc.issuer(f.srv.URL) } })
			p, err := New("oidc", f.kindConfig(nil))
			if err != nil {
				t.Fatal(err)
			}
			err = p.(*OIDC).Discover(t.Context())
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "AUTHPROXY_OIDC_ISSUER is") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Discover: %v; want ErrUnavailable naming AUTHPROXY_OIDC_ISSUER and %q", err, tc.wantErr)
			}
			if ready := p.Ready(); ready == nil || ready.Error() != err.Error() {
				t.Errorf("Ready() = %v, want the discovery error", ready)
			}
		})
	}
}

// TestMissingGroupsWarning checks that a sign-in without the groups claim,
// while groups are required, logs what to fix, naming the claim and scopes.
func TestMissingGroupsWarning(t *testing.T) {
	for _, tc := range []struct {
		name     string
		required bool
		claims   func(c map[string]any)
		want     bool
	}{
		{"required and absent", true, func(c map[string]any) { delete(c, "groups") }, true},
		{"required and present", true, func(map[string]any) {}, false},
		{"required and present but empty", true, func(c map[string]any) { c["groups"] = []any{} }, false},
		{"not required", false, func(c map[string]any) { delete(c, "groups") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			f.set(func(f *testIdP) { f.tweak = tc.claims })
			var logs logBuffer
			p := f.kindProvider(t, "oidc", func(c *Config) { c.GroupsRequired, c.Logger = tc.required, logs.logger() })
			if _, err := exchange(t, f, p); err != nil {
				t.Fatal(err)
			}
			got := strings.Contains(logs.String(), "token has no groups claim while AUTHPROXY_ALLOWED_GROUPS is set")
			if got != tc.want {
				t.Fatalf("warning logged: %t, want %t; logs:\n%s", got, tc.want, logs.String())
			}
			for _, s := range []string{`"groups_claim":"groups"`, `"scopes":"openid email"`, "AUTHPROXY_GROUPS_CLAIM", "groups scope", `"claims_present":[`} {
				if got && !strings.Contains(logs.String(), s) {
					t.Errorf("warning lacks %s:\n%s", s, logs.String())
				}
			}
		})
	}
}

// TestNamespacedGroupsClaim: Auth0 (and Okta custom claims) name claims by
// URL, dots included; the literal name must win over a dotted path.
func TestNamespacedGroupsClaim(t *testing.T) {
	const claim = "https://example.com/groups"
	for _, kind := range []string{"auth0", "okta"} {
		t.Run(kind, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			f.set(func(f *testIdP) {
				f.tweak = func(c map[string]any) { delete(c, "groups"); c[claim] = []any{"admins", "ops"} }
			})
			p := f.kindProvider(t, kind, func(c *Config) { c.GroupsClaim = claim })
			id, err := exchange(t, f, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"admins", "ops"}; !reflect.DeepEqual(id.Groups, want) {
				t.Errorf("Groups = %q, want %q", id.Groups, want)
			}
		})
	}
}

// TestInvalidScope: a token endpoint refusing the scopes is the operator's
// to fix, not the user's: not ErrRejected, and it names AUTHPROXY_SCOPES.
func TestInvalidScope(t *testing.T) {
	f := newTestIdP(t, "secret")
	f.set(func(f *testIdP) { f.tokenStatus, f.tokenError = http.StatusBadRequest, "invalid_scope" })
	_, err := exchange(t, f, f.kindProvider(t, "oidc", nil))
	if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "check AUTHPROXY_SCOPES") {
		t.Errorf("Exchange: %v; want an error naming AUTHPROXY_SCOPES, not ErrRejected", err)
	}
}

func TestCheck(t *testing.T) {
	f := newTestIdP(t, "secret")
	p, err := New("google", f.kindConfig(func(c *Config) { c.Google.HostedDomains = []string{"example.com"} }))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := p.(Checker).Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"google provider, issuer " + f.srv.URL, "hosted domain (hd) must be example.com", "RP-initiated logout at " + f.srv.URL + "/logout"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Check() = %q, want it to say %q", msg, want)
		}
	}
}
