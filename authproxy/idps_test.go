package authproxy

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// partnerEnv is validEnv with a second IdP, "partners", configured.
func partnerEnv() map[string]string {
	env := validEnv()
	maps.Copy(env, map[string]string{
		"AUTHPROXY_IDPS":                      "partners",
		"AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER":  "https://partners.example.com",
		"AUTHPROXY_IDP_PARTNERS_CLIENT_ID":    "partner-app",
		"AUTHPROXY_IDP_PARTNERS_DISPLAY_NAME": "Partner login",
	})
	return env
}

// asPartner renames, in a config case's variables and message, each
// IdP-level variable to its name for IdP "partners".
func asPartner(s string) string {
	for _, v := range variables {
		if v.idp {
			s = strings.ReplaceAll(s, v.name+"=", idpVars("partners").rename(v.name)+"=")
			s = strings.ReplaceAll(s, v.name+":", idpVars("partners").rename(v.name)+":")
			s = strings.ReplaceAll(s, v.name+" ", idpVars("partners").rename(v.name)+" ")
			if strings.HasSuffix(s, v.name) {
				s = strings.TrimSuffix(s, v.name) + idpVars("partners").rename(v.name)
			}
		}
	}
	return s
}

func isIdPVariable(name string) bool {
	return slices.ContainsFunc(variables, func(v variable) bool { return v.idp && v.name == name })
}

// partnerView is c as its partners IdP: its IdPConfig in the default's
// place, so that a config case's getter reads the partner's fields.
func partnerView(t *testing.T, c *Config) *Config {
	t.Helper()
	if len(c.IdPs) != 1 || c.IdPs[0].Name != "partners" {
		t.Fatalf("IdPs = %v, want partners", c.IdPs)
	}
	v := *c
	v.IdPConfig = *c.IdPs[0]
	return &v
}

// safeGet is get(c), or "unset" when get dereferences a field c leaves nil.
func safeGet(get func(*Config) any, c *Config) (v any) {
	defer func() {
		if recover() != nil {
			v = "unset"
		}
	}()
	return get(c)
}

// idpOnlyValid and idpOnlyInvalid are the cases of the rows that exist only
// under an IdP's name.
var idpOnlyValid = []validCase{
	{"AUTHPROXY_BEARER_ONLY", "true", func(c *Config) any { return c.BearerOnly }, true, nil},
	{"AUTHPROXY_BEARER_ONLY", "true", func(c *Config) any { return c.BearerAudiences }, []string{"api://robots"},
		map[string]string{"AUTHPROXY_CLIENT_ID": "\x00unset", "AUTHPROXY_BEARER_AUDIENCES": "api://robots"}},
	{"AUTHPROXY_BEARER_ONLY", "false", func(c *Config) any { return c.BearerOnly }, false, nil},
}

var idpOnlyInvalid = []invalidCase{
	{"AUTHPROXY_BEARER_ONLY", "yes", `want true or false, got "yes"`},
}

// TestIdPVariablesValid runs every valid-value case of an IdP-level
// variable again under IdP "partners": AUTHPROXY_IDP_PARTNERS_<VARIABLE>
// must make the same of it in the partner's configuration, and leave the
// default IdP's as it was.
func TestIdPVariablesValid(t *testing.T) {
	file := filepath.Join(t.TempDir(), "readable.pem")
	if err := os.WriteFile(file, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clientKey := writeClientKey(t)
	clientCert, clientTLSKey := writeClientCert(t)
	defaults, err := LoadConfig(mapLookup(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tc := range append(slices.Clone(validCases), idpOnlyValid...) {
		if !isIdPVariable(tc.variable) {
			continue
		}
		n++
		t.Run(tc.variable+"="+tc.value, func(t *testing.T) {
			env := partnerEnv()
			overrides := map[string]string{idpVars("partners").rename(tc.variable): tc.value}
			for k, v := range tc.also {
				if isIdPVariable(k) {
					k = idpVars("partners").rename(k)
				}
				overrides[k] = v
			}
			for k, v := range overrides {
				v = strings.NewReplacer("@file", file, "@clientkey", clientKey, "@clientcert", clientCert, "@clienttlskey", clientTLSKey).Replace(v)
				if v == "\x00unset" {
					delete(env, k)
					continue
				}
				env[k] = v
			}
			c, err := LoadConfig(mapLookup(env))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if got := tc.got(partnerView(t, c)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("partner's: got %#v, want %#v", got, tc.want)
			}
			if got, want := safeGet(tc.got, c), safeGet(tc.got, defaults); !reflect.DeepEqual(got, want) && !strings.HasPrefix(tc.variable, "AUTHPROXY_BEARER") {
				t.Errorf("the default IdP's changed: got %#v, want %#v", got, want)
			}
		})
	}
	if n < 30 {
		t.Errorf("only %d IdP-level cases ran", n)
	}
}

// TestIdPVariablesInvalid runs every invalid-value case of an IdP-level
// variable under IdP "partners": one problem, naming the partner's
// variable in full.
func TestIdPVariablesInvalid(t *testing.T) {
	for _, tc := range append(slices.Clone(invalidCases), idpOnlyInvalid...) {
		if !isIdPVariable(tc.variable) {
			continue
		}
		name := idpVars("partners").rename(tc.variable)
		t.Run(name+"="+tc.value, func(t *testing.T) {
			env := partnerEnv()
			env[name] = tc.value
			_, err := LoadConfig(mapLookup(env))
			if err == nil {
				t.Fatalf("LoadConfig accepted %s=%q", name, tc.value)
			}
			lines := errorLines(err)
			if want := asPartner(tc.want); len(lines) != 1 || !strings.HasPrefix(lines[0], name+": ") || !strings.Contains(lines[0], want) {
				t.Errorf("error %q: want one problem, %q…, saying %q", err, name+": ", want)
			}
		})
	}
}

// TestIdPVariableCasesCoverEveryVariable: every IdP-level variable has a
// valid and an invalid case, which the two tests above run under an IdP's
// name (the rows without a default-IdP form here, the others in
// config_test.go's tables).
func TestIdPVariableCasesCoverEveryVariable(t *testing.T) {
	noInvalidValue := map[string]bool{"AUTHPROXY_CLIENT_ID": true, "AUTHPROXY_CLIENT_SECRET": true,
		"AUTHPROXY_USER_CLAIM": true, "AUTHPROXY_GROUPS_CLAIM": true, "AUTHPROXY_ALLOWED_GROUPS": true}
	valid := append(slices.Clone(validCases), idpOnlyValid...)
	invalid := append(slices.Clone(invalidCases), idpOnlyInvalid...)
	for _, v := range variables {
		if !v.idp {
			continue
		}
		if !slices.ContainsFunc(valid, func(c validCase) bool { return c.variable == v.name }) {
			t.Errorf("%s has no valid-value case", v.name)
		}
		if !noInvalidValue[v.name] && !slices.ContainsFunc(invalid, func(c invalidCase) bool { return c.variable == v.name }) {
			t.Errorf("%s has no invalid-value case", v.name)
		}
	}
}

// TestSeveralIdPsConfig covers what involves more than one IdP.
func TestSeveralIdPsConfig(t *testing.T) {
	policyFile := func(t *testing.T, idps string) string {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(p, []byte("rules:\n  - path: /admin/\n    allow: {idps: ["+idps+"], groups: [admins]}\n  - path: /\n    allow: authenticated\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		env  func(t *testing.T) map[string]string
		want []string // problems, each a line's prefix; none: valid
	}{
		{"two IdPs", func(t *testing.T) map[string]string { return partnerEnv() }, nil},
		{"a bearer-only IdP without a client id", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_IDPS"] = "partners,robots"
			env["AUTHPROXY_IDP_ROBOTS_OIDC_ISSUER"] = "https://robots.example.com"
			env["AUTHPROXY_IDP_ROBOTS_BEARER_ONLY"] = "true"
			env["AUTHPROXY_IDP_ROBOTS_BEARER_AUDIENCES"] = "api://legacy"
			return env
		}, nil},
		{"an IdP without issuer and client id", func(t *testing.T) map[string]string {
			env := validEnv()
			env["AUTHPROXY_IDPS"] = "partners"
			return env
		}, []string{"AUTHPROXY_IDP_PARTNERS_CLIENT_ID: required", "AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER: required"}},
		{"a bearer-only IdP with neither client id nor audiences", func(t *testing.T) map[string]string {
			env := partnerEnv()
			delete(env, "AUTHPROXY_IDP_PARTNERS_CLIENT_ID")
			env["AUTHPROXY_IDP_PARTNERS_BEARER_ONLY"] = "true"
			return env
		}, []string{"AUTHPROXY_IDP_PARTNERS_CLIENT_ID: required (with AUTHPROXY_IDP_PARTNERS_BEARER_ONLY=true, AUTHPROXY_IDP_PARTNERS_BEARER_AUDIENCES may stand in for it)"}},
		{"name collision with the default", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_DEFAULT_IDP_NAME"] = "partners"
			return env
		}, []string{`AUTHPROXY_IDPS: "partners" is the default IdP's name`}},
		{"a name twice", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_IDPS"] = "partners, partners"
			return env
		}, []string{`AUTHPROXY_IDPS: "partners" is named twice`}},
		{"a bad name", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_IDPS"] = "Partners"
			return env
		}, []string{`AUTHPROXY_IDPS: want names of lower-case letters`}},
		{"duplicate issuer", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER"] = "https://IDP.example.com/realms/main/"
			return env
		}, []string{"AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER: https://IDP.example.com/realms/main/ is also AUTHPROXY_OIDC_ISSUER's issuer"}},
		{"a rule naming a configured IdP", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_POLICY_FILE"] = policyFile(t, "default, partners")
			return env
		}, nil},
		{"a rule naming an unknown IdP", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_POLICY_FILE"] = policyFile(t, "staff")
			return env
		}, []string{`AUTHPROXY_POLICY_FILE: policy file rule 1 names IdP "staff", which is not configured`}},
		{"a renamed default in a rule", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_DEFAULT_IDP_NAME"] = "staff"
			env["AUTHPROXY_POLICY_FILE"] = policyFile(t, "staff")
			return env
		}, nil},
		{"github and a bearer-only IdP", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_IDP_PARTNERS_PROVIDER"] = "github"
			delete(env, "AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER")
			env["AUTHPROXY_IDP_PARTNERS_BEARER_ONLY"] = "true"
			return env
		}, []string{"AUTHPROXY_IDP_PARTNERS_BEARER_ONLY: github issues no JWTs"}},
		{"another kind's variable under an IdP", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_IDP_PARTNERS_KEYCLOAK_ROLES"] = "realm"
			return env
		}, []string{"AUTHPROXY_IDP_PARTNERS_KEYCLOAK_ROLES: only used with AUTHPROXY_IDP_PARTNERS_PROVIDER=keycloak"}},
		{"a partner's secret from a missing file", func(t *testing.T) map[string]string {
			env := partnerEnv()
			env["AUTHPROXY_IDP_PARTNERS_CLIENT_SECRET_FILE"] = "/nonexistent/secret"
			return env
		}, []string{"AUTHPROXY_IDP_PARTNERS_CLIENT_SECRET: reading AUTHPROXY_IDP_PARTNERS_CLIENT_SECRET_FILE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(mapLookup(tc.env(t)))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				if len(c.IdPs) == 0 || c.IdPs[0].Name != "partners" {
					t.Errorf("IdPs = %v", c.IdPs)
				}
				return
			}
			lines := errorLines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("problems %q, want %d: %q", lines, len(tc.want), tc.want)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
					t.Errorf("problems %q: none starts with %q", lines, w)
				}
			}
		})
	}
}

// TestPartnerDefaults: an IdP's unset variables take the table's defaults,
// never the default IdP's values.
func TestPartnerDefaults(t *testing.T) {
	env := partnerEnv()
	env["AUTHPROXY_SCOPES"] = "openid email profile groups offline_access"
	env["AUTHPROXY_ALLOWED_GROUPS"] = "staff"
	env["AUTHPROXY_CLIENT_SECRET"] = "default-secret"
	c, err := LoadConfig(mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	p := c.IdPs[0]
	if !slices.Equal(p.Scopes, []string{"openid", "email", "profile"}) || p.AllowedGroups != nil || p.ClientSecret != "" {
		t.Errorf("partner took the default IdP's values: scopes %v, groups %v, secret set %t", p.Scopes, p.AllowedGroups, p.ClientSecret != "")
	}
	if p.DisplayName != "Partner login" || c.DisplayName != "default" || c.Name != "default" {
		t.Errorf("names: partner %q, default %q/%q", p.DisplayName, c.Name, c.DisplayName)
	}
	if !slices.Equal(p.BearerAudiences, []string{"partner-app"}) {
		t.Errorf("partner's bearer audiences %v, want its client id", p.BearerAudiences)
	}
}

// Browser IdPs share the redirect URL; each one's provider is told so
// (it then warns when its IdP does not send iss), a bearer-only IdP's not.
func TestProviderConfigSharedRedirect(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(env map[string]string)
		want map[string]bool
	}{
		{"one IdP", func(env map[string]string) {
			for k := range env {
				if strings.HasPrefix(k, "AUTHPROXY_IDP") {
					delete(env, k)
				}
			}
		}, map[string]bool{"default": false}},
		{"two browser IdPs", func(map[string]string) {}, map[string]bool{"default": true, "partners": true}},
		{"a browser IdP and a bearer-only one", func(env map[string]string) {
			env["AUTHPROXY_IDP_PARTNERS_BEARER_ONLY"] = "true"
			env["AUTHPROXY_IDP_PARTNERS_BEARER_AUDIENCES"] = "api://partners"
		}, map[string]bool{"default": false, "partners": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := partnerEnv()
			tc.edit(env)
			c, err := LoadConfig(mapLookup(env))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			got := map[string]bool{}
			for _, idp := range c.allIdPs() {
				got[idp.Name] = providerConfig(c, idp, nil).SharedRedirect
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("SharedRedirect by IdP = %v, want %v", got, tc.want)
			}
		})
	}
}
