package authproxy

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/providers"
)

// variable is one row of the configuration table. The same table drives
// loading, defaults, validation and the README's list of variables.
type variable struct {
	name     string
	def      string // shown and applied when unset; "" means no default
	help     string // what a valid value looks like
	required bool
	secret   bool // also read from NAME_FILE, never printed
	parse    func(c *Config, v string) error
}

// variables lists every AUTHPROXY_* variable, in the order the README shows.
var variables = []variable{
	{name: "AUTHPROXY_LISTEN", def: ":4180", help: "address to serve on, host:port",
		parse: func(c *Config, v string) error { c.Listen = v; return checkHostPort(v) }},
	{name: "AUTHPROXY_UPSTREAM", required: true, help: "the protected app: http://127.0.0.1:8080, https://… or unix:///path.sock",
		parse: func(c *Config, v string) (err error) { c.Upstream, err = parseUpstream(v); return err }},
	{name: "AUTHPROXY_UPSTREAM_TIMEOUT", def: "30s", help: "how long to wait for the upstream's response headers before answering 504 (streams may then run longer)",
		parse: func(c *Config, v string) (err error) { c.UpstreamTimeout, err = parsePositiveDuration(v); return err }},
	{name: "AUTHPROXY_OIDC_ISSUER", help: issuerHelp,
		parse: func(c *Config, v string) (err error) {
			if v != "" { // required except with github: checkProvider
				c.Issuer, err = parseHTTPURL(v)
			}
			return err
		}},
	{name: "AUTHPROXY_IDP_TIMEOUT", def: "10s", help: "how long to wait for each call to the identity provider (discovery, keys, token, userinfo); a sign-in it does not answer in time gets a 504 page",
		parse: func(c *Config, v string) (err error) { c.IdPTimeout, err = parsePositiveDuration(v); return err }},
	{name: "AUTHPROXY_CLIENT_ID", required: true, help: "OAuth2 client id",
		parse: func(c *Config, v string) error { c.ClientID = v; return nil }},
	{name: "AUTHPROXY_CLIENT_SECRET", secret: true, help: "client secret; empty means a public client (PKCE alone)",
		parse: func(c *Config, v string) error { c.ClientSecret = Secret(v); return nil }},
	{name: "AUTHPROXY_REDIRECT_URL", required: true, help: "absolute callback URL whose path is /oauth2/callback, e.g. https://app.example.com/oauth2/callback",
		parse: func(c *Config, v string) (err error) { c.RedirectURL, err = parseRedirectURL(v); return err }},
	{name: "AUTHPROXY_SCOPES", def: "openid email profile", help: "requested scopes, space- or comma-separated; must include openid",
		parse: parseScopes},
	{name: "AUTHPROXY_PROVIDER", def: "oidc", help: "the kind of identity provider: oidc (any OpenID Connect IdP), keycloak, entra, google, gitlab, okta, auth0 or github; see Identity providers",
		parse: func(c *Config, v string) error {
			c.Provider = v
			if !slices.Contains(providers.Kinds, v) {
				return fmt.Errorf("want one of %s, got %q", strings.Join(providers.Kinds, ", "), v)
			}
			return nil
		}},
	{name: "AUTHPROXY_KEYCLOAK_ROLES", help: "keycloak: roles that become groups: realm (realm_access.roles, as they are), client (this client's roles, as `<client id>:<role>`), or both, comma-separated; empty means none",
		parse: func(c *Config, v string) error {
			c.KeycloakRoles = splitList(v)
			for _, r := range c.KeycloakRoles {
				if r != "realm" && r != "client" {
					return fmt.Errorf("want realm and/or client, got %q", r)
				}
			}
			return nil
		}},
	{name: "AUTHPROXY_ENTRA_TENANTS", help: "entra: tenant ids (GUIDs) whose users may sign in, comma-separated, or * for every tenant; required with the multi-tenant issuers `…/common/v2.0` and `…/organizations/v2.0`",
		parse: func(c *Config, v string) error {
			c.EntraTenants = splitList(v)
			for _, t := range c.EntraTenants {
				if t != "*" && !providers.IsGUID(t) {
					return fmt.Errorf("want tenant ids (GUIDs) or *, got %q", t)
				}
			}
			return nil
		}},
	{name: "AUTHPROXY_ENTRA_GRAPH_URL", help: "entra: Microsoft Graph's base URL, asked for groups when the ID token has too many (overage) and for group names; default https://graph.microsoft.com",
		parse: func(c *Config, v string) (err error) {
			if v != "" {
				c.EntraGraphURL, err = parseHTTPURL(v)
			}
			return err
		}},
	{name: "AUTHPROXY_ENTRA_GROUP_NAMES", def: "false", help: "entra: also send each group's display name beside its id, read from Microsoft Graph at sign-in: true or false (names are not unique: write access rules with ids)",
		parse: func(c *Config, v string) (err error) { c.EntraGroupNames, err = parseBool(v); return err }},
	{name: "AUTHPROXY_GOOGLE_HOSTED_DOMAIN", help: "google: Workspace domains whose accounts may sign in (the ID token's hd claim), comma-separated; * for any Workspace account but no consumer account",
		parse: func(c *Config, v string) (err error) { c.GoogleHostedDomains, err = parseDomains(v); return err }},
	{name: "AUTHPROXY_GITHUB_URL", help: "github: GitHub Enterprise Server's address, API at `<url>/api/v3`; default https://github.com",
		parse: func(c *Config, v string) (err error) {
			if v != "" {
				c.GitHubURL, err = parseHTTPURL(v)
			}
			return err
		}},
	{name: "AUTHPROXY_GITHUB_ORG", help: "github: only active members of this organization may sign in; adds the read:org scope",
		parse: func(c *Config, v string) error {
			c.GitHubOrg = v
			if v != "" && !validGitHubName(v) {
				return fmt.Errorf("want an organization login of letters, digits and -, got %q", v)
			}
			return nil
		}},
	{name: "AUTHPROXY_GITHUB_TEAM", help: "github: only members of one of these teams (slugs, comma-separated) of AUTHPROXY_GITHUB_ORG may sign in",
		parse: func(c *Config, v string) error {
			c.GitHubTeams = splitList(v)
			for _, t := range c.GitHubTeams {
				if !validGitHubName(t) {
					return fmt.Errorf("want team slugs of letters, digits, - and _, got %q", t)
				}
			}
			return nil
		}},
	{name: "AUTHPROXY_COOKIE_SECRET", required: true, secret: true, help: "32 random bytes as base64 (or 64 hex chars), e.g. from `authproxy secret`; a list rotates keys: the first seals, all open",
		parse: parseCookieSecrets},
	{name: "AUTHPROXY_COOKIE_NAME", def: "_authproxy", help: "session cookie name; large sessions split into `<name>_0`, `<name>_1`, …",
		parse: parseCookieName},
	{name: "AUTHPROXY_COOKIE_SECURE", def: "true", help: "Secure flag on cookies: true or false (false only for plain-http local demos)",
		parse: func(c *Config, v string) (err error) { c.CookieSecure, err = parseBool(v); return err }},
	{name: "AUTHPROXY_COOKIE_DOMAIN", help: "cookie Domain; empty means host-only",
		parse: func(c *Config, v string) error { c.CookieDomain = v; return checkDomain(v) }},
	{name: "AUTHPROXY_COOKIE_SAMESITE", def: "lax", help: "lax, strict or none",
		parse: parseSameSite},
	{name: "AUTHPROXY_SESSION_STORE", def: "cookie", help: "where sessions live: cookie (sealed session in the cookie) or redis (the cookie holds only a ticket)",
		parse: func(c *Config, v string) error {
			c.SessionStore = v
			if v != "cookie" && v != "redis" {
				return fmt.Errorf("want cookie or redis, got %q", v)
			}
			return nil
		}},
	{name: "AUTHPROXY_REDIS_URL", secret: true, help: "redis:// or rediss:// URL (user, password and db in it); required with AUTHPROXY_SESSION_STORE=redis, and with the cookie store it keeps the revocation list shared by all replicas",
		parse: func(c *Config, v string) error {
			c.RedisURL = Secret(v)
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
				return errors.New("want a redis:// or rediss:// URL")
			}
			return nil
		}},
	{name: "AUTHPROXY_REDIS_SENTINEL_MASTER", help: "with Redis Sentinel: the master's name (AUTHPROXY_REDIS_URL then only gives password and db)",
		parse: func(c *Config, v string) error { c.RedisSentinelMaster = v; return nil }},
	{name: "AUTHPROXY_REDIS_SENTINEL_ADDRS", help: "with Redis Sentinel: the sentinels, host:port, comma-separated",
		parse: func(c *Config, v string) (err error) { c.RedisSentinelAddrs, err = parseHostPorts(v); return err }},
	{name: "AUTHPROXY_REDIS_CLUSTER_ADDRS", help: "with Redis Cluster: seed nodes, host:port, comma-separated",
		parse: func(c *Config, v string) (err error) { c.RedisClusterAddrs, err = parseHostPorts(v); return err }},
	{name: "AUTHPROXY_SESSION_TTL", def: "168h", help: "absolute session lifetime, a Go duration such as 12h",
		parse: func(c *Config, v string) (err error) { c.SessionTTL, err = parsePositiveDuration(v); return err }},
	{name: "AUTHPROXY_SESSION_IDLE_TIMEOUT", help: "end a session unused this long (a Go duration); empty means off; activity is recorded at most once a minute",
		parse: func(c *Config, v string) (err error) {
			if v != "" {
				c.SessionIdleTimeout, err = parsePositiveDuration(v)
			}
			return err
		}},
	{name: "AUTHPROXY_ALLOWED_EMAIL_DOMAINS", def: "*", help: "who may sign in, by email domain (comma-separated; * for any)",
		parse: func(c *Config, v string) (err error) { c.AllowedEmailDomains, err = parseDomains(v); return err }},
	{name: "AUTHPROXY_ALLOWED_EMAILS", help: "explicit email allow-list, comma-separated (adds to the domains)",
		parse: func(c *Config, v string) (err error) { c.AllowedEmails, err = parseEmails(v); return err }},
	{name: "AUTHPROXY_ALLOWED_GROUPS", help: "if set, the user must be in one of these groups (comma-separated)",
		parse: func(c *Config, v string) error { c.AllowedGroups = splitList(v); return nil }},
	{name: "AUTHPROXY_BEARER_AUDIENCES", help: "audiences accepted in API clients' `Authorization: Bearer` JWTs (comma-separated); default: the client id",
		parse: func(c *Config, v string) error {
			c.BearerAudiences = splitList(v)
			for _, a := range c.BearerAudiences {
				if strings.ContainsAny(a, " \t") {
					return fmt.Errorf("want audiences without blanks, comma-separated, got %q", a)
				}
			}
			return nil
		}},
	{name: "AUTHPROXY_INSECURE_ALLOW_UNVERIFIED_EMAIL", def: "false", help: "let users whose email_verified is false or missing sign in: true or false (their unverified address still reaches the upstream as X-Forwarded-Email)",
		parse: func(c *Config, v string) (err error) { c.InsecureAllowUnverifiedEmail, err = parseBool(v); return err }},
	{name: "AUTHPROXY_SKIP_AUTH_ROUTES", help: "routes served without a session, e.g. `GET /healthz, /public/`: a path ending in / is a prefix, any other is exact; an optional method limits the route",
		parse: func(c *Config, v string) (err error) {
			c.SkipAuthRoutes, err = policy.ParseSkipRoutes(v)
			return trimPolicyPrefix(err)
		}},
	{name: "AUTHPROXY_POLICY_FILE", help: "YAML file of ordered access rules (path, methods, allow: public, authenticated, or groups/emails/domains); the first match decides, no match denies; see README",
		parse: func(c *Config, v string) (err error) {
			if v != "" {
				c.PolicyFile, err = policy.Load(v)
			}
			return trimPolicyPrefix(err)
		}},
	{name: "AUTHPROXY_USER_CLAIM", def: "sub", help: "ID token claim sent as X-Forwarded-User",
		parse: func(c *Config, v string) error { c.UserClaim = v; return nil }},
	{name: "AUTHPROXY_GROUPS_CLAIM", def: "groups", help: "ID token claim holding the user's groups",
		parse: func(c *Config, v string) error { c.GroupsClaim = v; return nil }},
	{name: "AUTHPROXY_PASS_ACCESS_TOKEN", def: "false", help: "also send X-Forwarded-Access-Token: true or false",
		parse: func(c *Config, v string) (err error) { c.PassAccessToken, err = parseBool(v); return err }},
	{name: "AUTHPROXY_CLAIM_HEADERS", help: "more ID token claims sent upstream, as `Header=claim` pairs: `X-Tenant=tenant_id, X-Dept=department`; client-sent copies are removed like the built-in headers",
		parse: parseClaimHeaders},
	{name: "AUTHPROXY_UPSTREAM_JWT", def: "false", help: "also send X-Authproxy-Jwt, a 2-minute ES256 JWT of the identity (sub, email, groups, aud = the upstream URL), verifiable with /.well-known/jwks.json: true or false",
		parse: func(c *Config, v string) (err error) { c.UpstreamJWT, err = parseBool(v); return err }},
	{name: "AUTHPROXY_UPSTREAM_JWT_KEY_FILE", help: "PEM P-256 private key that signs X-Authproxy-Jwt; default: a new key at every start (set it when running several replicas)",
		parse: func(c *Config, v string) error { c.UpstreamJWTKeyFile = v; return checkReadable(v) }},
	{name: "AUTHPROXY_POST_LOGOUT_REDIRECT_URL", help: "absolute URL the IdP returns to after sign-out; default: the redirect URL's origin + /",
		parse: func(c *Config, v string) (err error) {
			if v != "" {
				c.PostLogoutRedirectURL, err = parseHTTPURL(v)
			}
			return err
		}},
	{name: "AUTHPROXY_TRUSTED_PROXIES", help: "CIDRs of proxies in front of authproxy whose X-Forwarded-For/-Proto/-Host are kept, e.g. 10.0.0.0/8",
		parse: parseTrustedProxies},
	{name: "AUTHPROXY_METRICS_LISTEN", help: "serve /metrics on this address (host:port) instead of on AUTHPROXY_LISTEN",
		parse: func(c *Config, v string) error {
			c.MetricsListen = v
			if v == "" {
				return nil
			}
			return checkHostPort(v)
		}},
	{name: "AUTHPROXY_TLS_CERT_FILE", help: "serve HTTPS with this PEM certificate (chain); reloaded when the file changes",
		parse: func(c *Config, v string) error { c.TLSCertFile = v; return checkReadable(v) }},
	{name: "AUTHPROXY_TLS_KEY_FILE", help: "the PEM private key for AUTHPROXY_TLS_CERT_FILE",
		parse: func(c *Config, v string) error { c.TLSKeyFile = v; return checkReadable(v) }},
	{name: "AUTHPROXY_UPSTREAM_CA_FILE", help: "PEM CA certificates that an https upstream's certificate must chain to (default: the system's)",
		parse: func(c *Config, v string) error { c.UpstreamCAFile = v; return checkReadable(v) }},
	{name: "AUTHPROXY_INSECURE_SKIP_UPSTREAM_TLS_VERIFY", def: "false", help: "accept any certificate from an https upstream: true or false (never in production)",
		parse: func(c *Config, v string) (err error) { c.InsecureSkipUpstreamTLSVerify, err = parseBool(v); return err }},
	{name: "AUTHPROXY_SHUTDOWN_GRACE", def: "20s", help: "on SIGTERM, how long in-flight requests may take to finish",
		parse: func(c *Config, v string) (err error) { c.ShutdownGrace, err = parsePositiveDuration(v); return err }},
	{name: "AUTHPROXY_LOG_FORMAT", def: "json", help: "json or text",
		parse: func(c *Config, v string) error {
			c.LogFormat = v
			if v != "json" && v != "text" {
				return fmt.Errorf("want json or text, got %q", v)
			}
			return nil
		}},
	{name: "AUTHPROXY_TEMPLATES_DIR", help: "directory of .html files overriding the embedded pages of the same name",
		parse: func(c *Config, v string) error { c.TemplatesDir = v; return nil }},
}

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
	if len(errs) > 0 || len(failed) > 0 {
		return errs
	}
	if _, err := newProvider(c, nil); err != nil {
		msg := strings.TrimPrefix(err.Error(), "providers: ")
		if !strings.HasPrefix(msg, "AUTHPROXY_") {
			msg = "AUTHPROXY_PROVIDER: " + msg
		}
		errs = append(errs, errors.New(msg))
	}
	return errs
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

// splitList splits a comma-separated list, trimming blanks and dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseHostPorts(v string) ([]string, error) {
	items := splitList(v)
	for _, hp := range items {
		if err := checkHostPort(hp); err != nil {
			return nil, err
		}
	}
	return items, nil
}

func parseClaimHeaders(c *Config, v string) error {
	c.ClaimHeaders = nil
	seen := map[string]bool{}
	for _, item := range splitList(v) {
		header, claim, ok := strings.Cut(item, "=")
		header, claim = strings.TrimSpace(header), strings.TrimSpace(claim)
		if !ok || header == "" || claim == "" {
			return fmt.Errorf("want Header=claim pairs such as X-Tenant=tenant_id, got %q", item)
		}
		n := normalizeHeaderName(header)
		switch {
		case !validHeaderName(header):
			return fmt.Errorf("header %q: want a header name of letters, digits and -", header)
		case isIdentityHeader(header) || reservedHeaders[n]:
			return fmt.Errorf("header %q: reserved; pick a name of your own such as X-Tenant", header)
		case seen[n]:
			return fmt.Errorf("header %q: listed twice", header)
		}
		seen[n] = true
		c.ClaimHeaders = append(c.ClaimHeaders, ClaimHeader{Header: http.CanonicalHeaderKey(header), Claim: claim})
	}
	return nil
}

// reservedHeaders may not carry claims: the proxy or HTTP itself owns them.
var reservedHeaders = map[string]bool{
	"host": true, "cookie": true, "authorization": true, "connection": true, "content-length": true,
	"transfer-encoding": true, "upgrade": true, "te": true, "trailer": true, "x-forwarded-for": true,
	"x-forwarded-host": true, "x-forwarded-proto": true, "forwarded": true, "x-real-ip": true,
}

func validHeaderName(h string) bool {
	for _, r := range h {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return h != ""
}

func parseBool(v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", v)
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive Go duration such as 90s or 12h, got %q", v)
	}
	return d, nil
}

func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port such as :4180 or 127.0.0.1:4180, got %q", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("want a port between 0 and 65535, got %q", port)
	}
	return nil
}

func checkReadable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("want a readable file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		return fmt.Errorf("want a readable file, got a directory: %s", path)
	}
	return nil
}

func parseHTTPURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("want an absolute http:// or https:// URL, got %q", v)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("want a URL without user info or fragment, got %q", v)
	}
	return u, nil
}

func parseUpstream(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, fmt.Errorf("want http://host:port, https://host:port or unix:///path.sock, got %q", v)
	}
	switch {
	case u.Scheme == "unix" && u.Host == "" && path.IsAbs(u.Path):
		return u, nil
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == "":
		return u, nil
	}
	return nil, fmt.Errorf("want http://host:port, https://host:port or unix:///path.sock, got %q", v)
}

func parseRedirectURL(v string) (*url.URL, error) {
	u, err := parseHTTPURL(v)
	if err != nil {
		return nil, err
	}
	if u.Path != callbackPath || u.RawQuery != "" {
		return nil, fmt.Errorf("want a URL whose path is %s and no query, got path %q", callbackPath, u.Path)
	}
	return u, nil
}

func parseScopes(c *Config, v string) error {
	c.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	for _, s := range c.Scopes {
		if s == "openid" {
			return nil
		}
	}
	return fmt.Errorf("want a list that includes openid, got %q", v)
}

// cookieSecretLen is the size of one cookie secret, in bytes.
const cookieSecretLen = 32

func parseCookieSecrets(c *Config, v string) error {
	items := splitList(v)
	if len(items) == 0 {
		return errors.New("required; " + cookieSecretHelp)
	}
	c.CookieSecrets = nil
	for i, item := range items {
		key, err := decodeSecret(item)
		if err != nil {
			if len(items) > 1 {
				return fmt.Errorf("item %d: %w", i+1, err)
			}
			return err
		}
		c.CookieSecrets = append(c.CookieSecrets, Secret(key))
	}
	return nil
}

const cookieSecretHelp = "want 32 random bytes base64-encoded (or 64 hex characters); `authproxy secret` prints one"

// decodeSecret accepts 64 hex characters or any base64 flavour of 32 bytes.
func decodeSecret(s string) ([]byte, error) {
	if len(s) == 2*cookieSecretLen {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != cookieSecretLen {
			return nil, fmt.Errorf("want 32 bytes base64-encoded, got %d bytes", len(b))
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s; got %d characters that are neither", cookieSecretHelp, len(s))
}

func parseCookieName(c *Config, v string) error {
	c.CookieName = v
	for _, r := range v {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return fmt.Errorf("want a cookie name of letters, digits, _ and -, got %q", v)
		}
	}
	return nil
}

func checkDomain(v string) error {
	if v == "" {
		return nil
	}
	d := strings.TrimPrefix(v, ".")
	if d == "" || strings.ContainsAny(d, " /:;,") || strings.Contains(d, "..") {
		return fmt.Errorf("want a domain name such as example.com, got %q", v)
	}
	return nil
}

func parseSameSite(c *Config, v string) error {
	switch strings.ToLower(v) {
	case "lax":
		c.CookieSameSite = http.SameSiteLaxMode
	case "strict":
		c.CookieSameSite = http.SameSiteStrictMode
	case "none":
		c.CookieSameSite = http.SameSiteNoneMode
	default:
		return fmt.Errorf("want lax, strict or none, got %q", v)
	}
	return nil
}

func parseDomains(v string) ([]string, error) {
	var out []string
	for _, d := range splitList(v) {
		d = strings.ToLower(strings.TrimPrefix(d, "@"))
		if d != "*" {
			if err := checkDomain(d); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func parseEmails(v string) ([]string, error) {
	var out []string
	for _, e := range splitList(v) {
		at := strings.LastIndexByte(e, '@')
		if at <= 0 || at == len(e)-1 {
			return nil, fmt.Errorf("want email addresses such as ada@example.com, got %q", e)
		}
		out = append(out, strings.ToLower(e))
	}
	return out, nil
}

// trimPolicyPrefix drops the "policy: " prefix: the variable's name
// already says where the problem is.
func trimPolicyPrefix(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(strings.ReplaceAll(err.Error(), "policy: ", ""))
}

func parseTrustedProxies(c *Config, v string) error {
	c.TrustedProxies = nil
	for _, item := range splitList(v) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return fmt.Errorf("want CIDRs such as 10.0.0.0/8 or addresses, got %q", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	return nil
}

// VariablesMarkdown returns the table of every AUTHPROXY_* variable, with its
// default and meaning, as the Markdown the README shows. A test keeps the
// README in step with it.
func VariablesMarkdown() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range variables {
		def := "`" + v.def + "`"
		switch {
		case v.required:
			def = "required"
		case v.def == "":
			def = "empty"
		}
		help := v.help
		if v.secret {
			help += " (or `" + v.name + "_FILE`)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.name, def, strings.ReplaceAll(help, "|", "\\|"))
	}
	return b.String()
}

// VariableNames returns the name of every AUTHPROXY_* variable authproxy
// reads, in table order (secrets may also be given as NAME_FILE).
func VariableNames() []string {
	names := make([]string, len(variables))
	for i, v := range variables {
		names[i] = v.name
	}
	return names
}
