package authproxy

import (
	"fmt"
)

// The cross-check of AUTHPROXY_PROVIDER against the other variables, run
// once every variable of the table (variables.go) has been parsed.

// issuerHelp is the help text of an IdP's OIDC_ISSUER, whose variables n
// names: the table's row (the default IdP's) and the problem of a missing
// issuer say the same.
func issuerHelp(n namer) string {
	return "required, except with " + n.of("PROVIDER") + "=github: the issuer URL; discovery at `<issuer>/.well-known/openid-configuration`"
}

// checkProvider checks what an IdP's AUTHPROXY_PROVIDER implies for its
// other variables: the issuer is required except with github, each kind's
// own variables are only for that kind, and last what the provider itself
// refuses (an Entra issuer's shape, a team without its organization).
func (c *Config) checkProvider(idp *IdPConfig, failed map[string]bool) []error {
	n := idp.vars
	if failed[n.of("PROVIDER")] {
		return nil
	}
	var errs []error
	switch {
	case idp.Provider == "github" && idp.Issuer != nil:
		errs = append(errs, fmt.Errorf("%s: not used with %s=github; for GitHub Enterprise Server set %s", n.of("OIDC_ISSUER"), n.of("PROVIDER"), n.of("GITHUB_URL")))
	case idp.Provider != "github" && idp.Issuer == nil && !failed[n.of("OIDC_ISSUER")]:
		errs = append(errs, fmt.Errorf("%s: %s", n.of("OIDC_ISSUER"), issuerHelp(n)))
	}
	for _, o := range []struct {
		name, kind string
		set        bool
	}{
		{"KEYCLOAK_ROLES", "keycloak", len(idp.KeycloakRoles) > 0},
		{"ENTRA_TENANTS", "entra", len(idp.EntraTenants) > 0},
		{"ENTRA_GRAPH_URL", "entra", idp.EntraGraphURL != nil},
		{"ENTRA_GROUP_NAMES", "entra", idp.EntraGroupNames},
		{"GOOGLE_HOSTED_DOMAIN", "google", len(idp.GoogleHostedDomains) > 0},
		{"GITHUB_URL", "github", idp.GitHubURL != nil},
		{"GITHUB_ORG", "github", idp.GitHubOrg != ""},
		{"GITHUB_TEAM", "github", len(idp.GitHubTeams) > 0},
	} {
		if o.set && idp.Provider != o.kind && !failed[n.of(o.name)] {
			errs = append(errs, fmt.Errorf("%s: only used with %s=%s", n.of(o.name), n.of("PROVIDER"), o.kind))
		}
	}
	if len(idp.GitHubTeams) > 0 && idp.GitHubOrg == "" && idp.Provider == "github" {
		errs = append(errs, fmt.Errorf("%s: needs %s, the organization the teams belong to", n.of("GITHUB_TEAM"), n.of("GITHUB_ORG")))
	}
	if idp.BearerOnly && idp.Provider == "github" {
		errs = append(errs, fmt.Errorf("%s: github issues no JWTs to verify; a bearer-only IdP needs an OpenID Connect issuer", n.of("BEARER_ONLY")))
	}
	if len(errs) > 0 || len(failed) > 0 {
		return errs
	}
	if _, err := newProvider(c, idp, nil, nil); err != nil {
		errs = append(errs, idp.fieldError(err, "PROVIDER"))
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
	case "ClientAuth.ClientID":
		return "AUTHPROXY_CLIENT_ID"
	case "ClientAuth.PrivateKeyFile":
		return "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE"
	case "ClientAuth.TLSCertFile":
		return "AUTHPROXY_CLIENT_TLS_CERT_FILE"
	case "ClientAuth.TLSKeyFile":
		return "AUTHPROXY_CLIENT_TLS_KEY_FILE"
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
