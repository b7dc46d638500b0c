package authproxy

import (
	"errors"
	"fmt"

	"github.com/authproxy/authproxy/providers"
)

// The cross-check of AUTHPROXY_PROVIDER against the other variables, run
// once every variable of the table (variables.go) has been parsed.

// issuerHelp is AUTHPROXY_OIDC_ISSUER's help text.
const issuerHelp = "required, except with AUTHPROXY_PROVIDER=github: the issuer URL; discovery at `<issuer>/.well-known/openid-configuration`"

// checkProvider checks what AUTHPROXY_PROVIDER implies for the other
// variables: the issuer is required except with github, each kind's own
// variables are only for that kind, and last what the provider itself
// refuses (an Entra issuer's shape, a team without its organization).
func (c *Config) checkProvider(failed map[string]bool) []error {
	if failed["AUTHPROXY_PROVIDER"] {
		return nil
	}
	var errs []error
	switch {
	case c.Provider == "github" && c.Issuer != nil:
		errs = append(errs, errors.New("AUTHPROXY_OIDC_ISSUER: not used with AUTHPROXY_PROVIDER=github; for GitHub Enterprise Server set AUTHPROXY_GITHUB_URL"))
	case c.Provider != "github" && c.Issuer == nil && !failed["AUTHPROXY_OIDC_ISSUER"]:
		errs = append(errs, errors.New("AUTHPROXY_OIDC_ISSUER: "+issuerHelp))
	}
	for _, o := range []struct {
		name, kind string
		set        bool
	}{
		{"AUTHPROXY_KEYCLOAK_ROLES", "keycloak", len(c.KeycloakRoles) > 0},
		{"AUTHPROXY_ENTRA_TENANTS", "entra", len(c.EntraTenants) > 0},
		{"AUTHPROXY_ENTRA_GRAPH_URL", "entra", c.EntraGraphURL != nil},
		{"AUTHPROXY_ENTRA_GROUP_NAMES", "entra", c.EntraGroupNames},
		{"AUTHPROXY_GOOGLE_HOSTED_DOMAIN", "google", len(c.GoogleHostedDomains) > 0},
		{"AUTHPROXY_GITHUB_URL", "github", c.GitHubURL != nil},
		{"AUTHPROXY_GITHUB_ORG", "github", c.GitHubOrg != ""},
		{"AUTHPROXY_GITHUB_TEAM", "github", len(c.GitHubTeams) > 0},
	} {
		if o.set && c.Provider != o.kind && !failed[o.name] {
			errs = append(errs, fmt.Errorf("%s: only used with AUTHPROXY_PROVIDER=%s", o.name, o.kind))
		}
	}
	if len(c.GitHubTeams) > 0 && c.GitHubOrg == "" && c.Provider == "github" {
		errs = append(errs, errors.New("AUTHPROXY_GITHUB_TEAM: needs AUTHPROXY_GITHUB_ORG, the organization the teams belong to"))
	}
	if len(errs) > 0 || len(failed) > 0 {
		return errs
	}
	if _, err := newProvider(c, nil, nil); err != nil {
		var ce *providers.ConfigError
		if errors.As(err, &ce) {
			errs = append(errs, fmt.Errorf("%s: %w", providerFieldVariable(ce.Field), ce.Err))
		} else {
			errs = append(errs, fmt.Errorf("AUTHPROXY_PROVIDER: %w", err))
		}
	}
	return errs
}

// providerFieldVariable names the variable that sets a providers.Config
// field, as a providers.ConfigError names it.
func providerFieldVariable(field string) string {
	switch field {
	case "IssuerURL":
		return "AUTHPROXY_OIDC_ISSUER"
	case "Entra.Tenants":
		return "AUTHPROXY_ENTRA_TENANTS"
	case "Entra.GraphURL":
		return "AUTHPROXY_ENTRA_GRAPH_URL"
	case "GitHub.URL":
		return "AUTHPROXY_GITHUB_URL"
	case "GitHub.Teams":
		return "AUTHPROXY_GITHUB_TEAM"
	case "GitHub.Org":
		return "AUTHPROXY_GITHUB_ORG"
	case "Keycloak.Roles":
		return "AUTHPROXY_KEYCLOAK_ROLES"
	}
	return "AUTHPROXY_PROVIDER"
}

// validGitHubName reports whether s may be a GitHub login or team slug.
func validGitHubName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != "" && len(s) <= 100
}
