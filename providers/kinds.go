package providers

import (
	"context"
	"fmt"
	"strings"
)

// Kinds are the values of AUTHPROXY_PROVIDER; the first is the default.
var Kinds = []string{"oidc", "keycloak", "entra", "google", "gitlab", "okta", "auth0", "github"}

// Config configures a provider of any kind: the OpenID Connect settings
// every kind shares (github uses only the client's, the redirect URL, the
// user and extra claims, the HTTP client, logger and clock), and each kind's
// own options, which the other kinds ignore. Leave OIDCConfig.Hooks zero:
// New sets it.
type Config struct {
	OIDCConfig
	Keycloak KeycloakOptions
	Entra    EntraOptions
	Google   GoogleOptions
	GitHub   GitHubOptions
}

// New returns the provider of the given kind ("" means oidc). Every kind but
// github is the OIDC provider with that kind's Hooks, returned as an *OIDC
// that has not run discovery yet (see Discoverer); github is a *GitHub. The
// error names the variable to fix; New makes no network calls.
func New(kind string, cfg Config) (Provider, error) {
	var h Hooks
	var err error
	switch {
	case cfg.ClientAuth != nil && cfg.ClientSecret != "":
		return nil, fmt.Errorf("providers: AUTHPROXY_CLIENT_SECRET: not used with %s client authentication: unset it, or unset the key or certificate files", cfg.ClientAuth.Method())
	case cfg.ClientAuth != nil && kind == "github":
		return nil, fmt.Errorf("providers: AUTHPROXY_PROVIDER: github authenticates clients only with a client secret, not with %s", cfg.ClientAuth.Method())
	}
	switch kind {
	case "", "oidc":
		h = Hooks{Kind: "oidc"}
	case "okta":
		h = Hooks{Kind: "okta", GroupsHint: "add a groups claim to the ID token in the Okta authorization server (Security > API > Authorization Servers > Claims, or the app's groups claim filter), and request its scope if it has one"}
	case "auth0":
		h = Hooks{Kind: "auth0", AssertionAudienceIsIssuer: true, GroupsHint: "Auth0 sends groups or roles only through an Action (api.idToken.setCustomClaim) under a namespaced name such as https://example.com/groups: set AUTHPROXY_GROUPS_CLAIM to exactly that name"}
	case "keycloak":
		h, err = cfg.Keycloak.hooks(cfg.ClientID)
	case "entra":
		h, err = cfg.Entra.hooks(cfg.OIDCConfig)
	case "google":
		h = cfg.Google.hooks()
	case "gitlab":
		h = gitlabHooks()
	case "github":
		g, err := NewGitHub(cfg.OIDCConfig, cfg.GitHub)
		if err != nil {
			return nil, err // not a nil *GitHub in a non-nil Provider
		}
		return g, nil
	default:
		return nil, configError("Kind", "want one of %s, got %q", strings.Join(Kinds, ", "), kind)
	}
	if err != nil {
		return nil, err
	}
	cfg.Hooks = h
	return NewOIDC(cfg.OIDCConfig), nil
}

// Describe says what kind of provider p is and what its hooks do.
func (p *OIDC) Describe() string {
	s := p.kind() + " provider, issuer " + p.cfg.IssuerURL
	if p.cfg.Hooks.Describe != "" {
		s += "; " + p.cfg.Hooks.Describe
	}
	return s
}

// Check implements Checker: it runs discovery once and describes the result.
func (p *OIDC) Check(ctx context.Context) (string, error) {
	if err := p.Discover(ctx); err != nil {
		return "", err
	}
	msg := p.Describe()
	if d := p.found.Load(); d != nil && d.auth.method != "" {
		msg += "; token endpoint authentication " + p.auth.Load().Describe()
		if d.auth.tokenURL != "" {
			msg += " at the mutual TLS alias " + d.auth.tokenURL
		}
	}
	if ep := p.EndSessionEndpoint(); ep != "" {
		msg += "; RP-initiated logout at " + ep
	} else {
		msg += "; no end_session_endpoint: sign-out is local only"
	}
	return msg, nil
}
