package authproxy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Several identity providers (CONTRACT.md): the variables of the table
// marked idp describe the default IdP under their own names, and each IdP
// that AUTHPROXY_IDPS names under AUTHPROXY_IDP_<NAME>_<VARIABLE>. Both are
// parsed by the same rows, so every problem is reported the same way, with
// the variable's full name.

// IdPConfig is one identity provider's configuration: the default IdP's
// from the variables without a name, another's from its
// AUTHPROXY_IDP_<NAME>_* variables. A variable left unset takes the
// table's default, never the default IdP's value.
type IdPConfig struct {
	// Name is the IdP's name: AUTHPROXY_DEFAULT_IDP_NAME (default
	// "default") for the default IdP, else its entry in AUTHPROXY_IDPS.
	// Sessions, metrics, audit lines and X-Forwarded-Idp carry it.
	Name string
	// DisplayName is shown on the sign-in chooser; default Name.
	DisplayName string
	// BearerOnly IdPs accept API bearer tokens from their issuer and never
	// serve a browser sign-in.
	BearerOnly bool

	Issuer       *url.URL
	ClientID     string
	ClientSecret Secret
	// ClientPrivateKeyFile (private_key_jwt, with ClientPrivateKeyID as
	// its kid) or the ClientTLS pair (tls_client_auth) authenticate at the
	// token endpoint instead of ClientSecret; see clientAuth.
	ClientPrivateKeyFile string
	ClientPrivateKeyID   string
	ClientTLSCertFile    string
	ClientTLSKeyFile     string
	Scopes               []string

	// Provider is AUTHPROXY_PROVIDER, one of providers.Kinds; the fields
	// after it are each kind's own (nil or empty: the provider's default).
	Provider            string
	KeycloakRoles       []string
	EntraTenants        []string
	EntraGraphURL       *url.URL
	EntraGroupNames     bool
	GoogleHostedDomains []string
	GitHubURL           *url.URL
	GitHubOrg           string
	GitHubTeams         []string

	// The IdP's allow-list: who of its users may sign in at all.
	AllowedEmailDomains []string
	AllowedEmails       []string
	AllowedGroups       []string
	// BearerAudiences are the aud values accepted in bearer JWTs from this
	// IdP's issuer; default the client id.
	BearerAudiences []string
	// InsecureAllowUnverifiedEmail lets users sign in whose IdP does not
	// vouch for their email address (email_verified false or missing).
	InsecureAllowUnverifiedEmail bool
	UserClaim                    string
	GroupsClaim                  string

	// vars names this IdP's variables in problems.
	vars namer
}

// namer gives the full name of an IdP-level variable, from its name
// without the AUTHPROXY_ prefix ("OIDC_ISSUER").
type namer string

// defaultVars names the default IdP's variables.
const defaultVars namer = "AUTHPROXY_"

// idpVars returns the namer of IdP name's variables:
// AUTHPROXY_IDP_<NAME>_, the name upper-cased with - as _ ("<NAME>" is
// kept as it is, for the README).
func idpVars(name string) namer {
	if name != "<NAME>" {
		name = strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	}
	return namer("AUTHPROXY_IDP_" + name + "_")
}

// of returns the full name of the variable short ("OIDC_ISSUER").
func (n namer) of(short string) string {
	if n == "" {
		n = defaultVars
	}
	return string(n) + short
}

// rename returns the name the table row called name has for this IdP.
func (n namer) rename(name string) string { return n.of(strings.TrimPrefix(name, "AUTHPROXY_")) }

// label returns how problems name the IdP: "" for the default IdP, else
// ` (IdP "NAME")`.
func (c *IdPConfig) label() string {
	if c.vars == "" || c.vars == defaultVars {
		return ""
	}
	return fmt.Sprintf(" (IdP %q)", c.Name)
}

// maxIdPs bounds AUTHPROXY_IDPS: each IdP costs a discovery, keys and a
// line on the chooser.
const maxIdPs = 32

// parseIdPNames parses AUTHPROXY_IDPS: distinct names of lower-case
// letters, digits and -.
func parseIdPNames(v string) ([]string, error) {
	names := splitList(v)
	if len(names) > maxIdPs {
		return nil, fmt.Errorf("want at most %d identity providers, got %d", maxIdPs, len(names))
	}
	for i, n := range names {
		if !validIdPName(n) {
			return nil, fmt.Errorf("want names of %s, got %q", idpNameRules, n)
		}
		if err := reservedIdPName(n); err != nil {
			return nil, err
		}
		if slices.Contains(names[:i], n) {
			return nil, fmt.Errorf("%q is named twice", n)
		}
	}
	return names, nil
}

// idpNameRules says what validIdPName accepts.
const idpNameRules = "lower-case letters, digits and - (starting with a letter, at most 32)"

// reservedIdPName refuses a valid name that authproxy keeps for itself.
func reservedIdPName(s string) error {
	if s == unknownIdP {
		return fmt.Errorf("%q is reserved: metrics and audit lines say it when no IdP is known", s)
	}
	return nil
}

// validIdPName reports whether s may name an IdP.
func validIdPName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' || strings.HasSuffix(s, "-") {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

// allIdPs returns every IdP's configuration, the default first.
func (c *Config) allIdPs() []*IdPConfig {
	return append([]*IdPConfig{&c.IdPConfig}, c.IdPs...)
}

// loadIdP reads IdP name's variables (AUTHPROXY_IDP_<NAME>_*) through
// lookup with the rows marked idp, into a configuration of its own, and
// records their fingerprints in sums. Problems name the full variable.
func loadIdP(lookup Lookup, name string, sums fingerprints, failed map[string]bool) (*IdPConfig, []error) {
	n := idpVars(name)
	scratch := &Config{}
	var errs []error
	for _, v := range variables {
		if !v.idp {
			continue
		}
		full := n.rename(v.name)
		raw, err := v.readAs(full, lookup)
		sums[full] = v.fingerprint(raw, err)
		if err == nil && raw == "" && v.required && v.name != "AUTHPROXY_CLIENT_ID" {
			err = errors.New("required; " + v.help)
		}
		if err == nil && raw == "" {
			raw = v.defaultAs(full, lookup)
		}
		if err == nil {
			err = v.parse(scratch, raw)
		}
		if err != nil {
			failed[full] = true
			for line := range strings.Lines(err.Error()) {
				errs = append(errs, fmt.Errorf("%s: %s", full, strings.TrimSuffix(line, "\n")))
			}
		}
	}
	idp := scratch.IdPConfig
	idp.Name, idp.vars = name, n
	if idp.ClientID == "" && !failed[n.of("CLIENT_ID")] && (!idp.BearerOnly || len(idp.BearerAudiences) == 0) {
		failed[n.of("CLIENT_ID")] = true
		errs = append(errs, fmt.Errorf("%s: required (with %s=true, %s may stand in for it); OAuth2 client id",
			n.of("CLIENT_ID"), n.of("BEARER_ONLY"), n.of("BEARER_AUDIENCES")))
	}
	return &idp, errs
}

// checkIdPs checks what involves several IdPs: distinct issuers (a token's issuer must name one IdP), at least one browser IdP
// (the default is one), and every IdP's own cross-checks.
func (c *Config) checkIdPs(failed map[string]bool) []error {
	var errs []error
	all := c.allIdPs()
	for i, idp := range all {
		if idp.Issuer == nil {
			continue
		}
		for _, prev := range all[:i] {
			if prev.Issuer != nil && sameIssuer(prev.Issuer, idp.Issuer) {
				errs = append(errs, fmt.Errorf("%s: %s is also %s's issuer; each IdP needs its own issuer, or tokens could not tell them apart",
					idp.vars.of("OIDC_ISSUER"), idp.Issuer, prev.vars.of("OIDC_ISSUER")))
			}
		}
	}
	for _, idp := range all {
		if ce := idp.checkClientAuth(failed); len(ce) > 0 {
			errs = append(errs, ce...)
			continue // not again by checkProvider
		}
		errs = append(errs, c.checkProvider(idp, failed)...)
	}
	for _, idp := range all {
		if len(idp.BearerAudiences) == 0 && idp.ClientID != "" {
			idp.BearerAudiences = []string{idp.ClientID}
		}
		if idp.DisplayName == "" {
			idp.DisplayName = idp.Name
		}
	}
	return errs
}

// sameIssuer reports whether two issuer URLs name the same issuer, as a
// token's iss would be compared: exactly, but for a trailing slash and the
// host's case.
func sameIssuer(a, b *url.URL) bool {
	norm := func(u *url.URL) string {
		cp := *u
		cp.Host = strings.ToLower(cp.Host)
		return strings.TrimSuffix(cp.String(), "/")
	}
	return norm(a) == norm(b)
}

// idp returns the configuration of the IdP called name, or nil.
func (c *Config) idp(name string) *IdPConfig {
	for _, idp := range c.allIdPs() {
		if idp.Name == name {
			return idp
		}
	}
	return nil
}
