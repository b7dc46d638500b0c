package providers

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"testing"
	"time"
)

// keycloakAccessToken returns claims shaped like a Keycloak access token's
// for the test IdP: issued by the realm for the account audience, azp the
// client, with realm and client roles.
func keycloakAccessToken(f *testIdP) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": f.srv.URL, "aud": "account", "azp": f.clientID, "typ": "Bearer", "sub": "user-1",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"realm_access": map[string]any{"roles": []any{"offline_access", "editor"}},
		"resource_access": map[string]any{
			f.clientID: map[string]any{"roles": []any{"admin"}},
			"account":  map[string]any{"roles": []any{"manage-account"}},
		},
	}
}

// TestKeycloakRoles runs the keycloak kind against the test IdP standing in
// for a Keycloak realm (none runs in unit tests; the end-to-end tests use
// Dex). Keycloak puts roles in the access token by default and in the ID
// token only when the mapper says so: both are read, the access token only
// once verified.
func TestKeycloakRoles(t *testing.T) {
	idTokenRoles := func(c map[string]any) {
		c["realm_access"] = map[string]any{"roles": []any{"editor"}}
		c["resource_access"] = map[string]any{"client-1": map[string]any{"roles": []any{"admin", "editor"}}}
	}
	for _, tc := range []struct {
		name     string
		roles    []string
		idToken  func(c map[string]any)  // edits the ID token
		access   func(f *testIdP) string // the access token
		otherKey bool                    // sign the access token with a key the IdP does not publish
		want     []string
		rejected bool
	}{
		{"no roles wanted", nil, idTokenRoles, nil, false, []string{"staff", "admins"}, false},
		{"realm roles from the ID token", []string{"realm"}, idTokenRoles, nil, false, []string{"staff", "admins", "editor"}, false},
		{"client roles from the ID token, prefixed", []string{"client"}, idTokenRoles, nil, false, []string{"staff", "admins", "client-1:admin", "client-1:editor"}, false},
		{"both from the ID token", []string{"realm", "client"}, idTokenRoles, nil, false, []string{"staff", "admins", "editor", "client-1:admin", "client-1:editor"}, false},
		{"both from the access token", []string{"realm", "client"}, nil, func(f *testIdP) string {
			return f.signLocked(keycloakAccessToken(f))
		}, false, []string{"staff", "admins", "offline_access", "editor", "client-1:admin"}, false},
		{"opaque access token, no roles", []string{"realm"}, nil, func(*testIdP) string { return "opaque-token" }, false, []string{"staff", "admins"}, false},

		{"access token signed by another key", []string{"realm"}, nil, func(f *testIdP) string {
			return f.signLocked(keycloakAccessToken(f))
		}, true, nil, true},
		{"access token for another client", []string{"realm"}, nil, func(f *testIdP) string {
			c := keycloakAccessToken(f)
			c["azp"] = "other-client"
			return f.signLocked(c)
		}, false, nil, true},
		{"access token from another issuer", []string{"client"}, nil, func(f *testIdP) string {
			c := keycloakAccessToken(f)
			c["iss"] = "https://evil.example/realms/main"
			return f.signLocked(c)
		}, false, nil, true},
		{"expired access token", []string{"realm"}, nil, func(f *testIdP) string {
			c := keycloakAccessToken(f)
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			return f.signLocked(c)
		}, false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			f.set(func(f *testIdP) {
				f.tweak = tc.idToken
				if tc.access != nil {
					f.response = func(b map[string]any) {
						if tc.otherKey {
							f.signKey = testECKey(f.t)
							defer func() { f.signKey = nil }()
						}
						b["access_token"] = tc.access(f)
					}
				}
			})
			p := f.kindProvider(t, "keycloak", func(c *Config) { c.Keycloak.Roles = tc.roles })
			id, err := exchange(t, f, p)
			if tc.rejected {
				if !errors.Is(err, ErrRejected) || id != nil {
					t.Errorf("Exchange = %+v, %v; want ErrRejected", id, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(id.Groups, tc.want) {
				t.Errorf("Groups = %q, want %q", id.Groups, tc.want)
			}
		})
	}
}

// TestKeycloakClientIDWithDots: a client id such as app.example.com is one
// member name of resource_access, not a path.
func TestKeycloakClientIDWithDots(t *testing.T) {
	f := newTestIdP(t, "secret")
	f.set(func(f *testIdP) {
		f.clientID = "app.example.com"
		f.tweak = func(c map[string]any) {
			c["resource_access"] = map[string]any{"app.example.com": map[string]any{"roles": []any{"admin"}}}
		}
	})
	p := f.kindProvider(t, "keycloak", func(c *Config) { c.Keycloak.Roles = []string{"client"} })
	id, err := exchange(t, f, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"staff", "admins", "app.example.com:admin"}; !reflect.DeepEqual(id.Groups, want) {
		t.Errorf("Groups = %q, want %q", id.Groups, want)
	}
}

// TestKeycloakBearerRoles: an API client's bearer token is a Keycloak access
// token, whose own roles count.
func TestKeycloakBearerRoles(t *testing.T) {
	f := newTestIdP(t, "secret")
	p := f.kindProvider(t, "keycloak", func(c *Config) { c.Keycloak.Roles = []string{"realm", "client"} })
	c := keycloakAccessToken(f)
	c["aud"] = []any{"account", "client-1"}
	c["groups"] = []any{"staff"}
	id, err := p.VerifyBearer(context.Background(), f.sign(maps.Clone(c)), []string{"client-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"staff", "offline_access", "editor", "client-1:admin"}; !reflect.DeepEqual(id.Groups, want) {
		t.Errorf("Groups = %q, want %q", id.Groups, want)
	}
}
