package authproxy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/providers"
)

// variable is one row of the configuration table. The same table drives
// loading, defaults, validation and the README's list of variables.
type variable struct {
	name string
	def  string // shown and applied when unset; "" means no default
	// defUnless names another variable of the same IdP whose being set
	// takes the default away: v is then empty when unset.
	defUnless string
	help      string // what a valid value looks like
	required  bool
	secret    bool // also read from NAME_FILE, never printed
	// file: also read from NAME_FILE, a list of one item a line (or
	// comma-separated) where lines starting with # are comments.
	file bool
	// watch: the value is the path of a file that is part of the
	// configuration; a change of the file's content is a change of the
	// variable (reload.go).
	watch bool
	// live: a changed value (from a file: NAME_FILE or a watched path)
	// takes effect at a reload; any other change needs a restart.
	live bool
	// idp: an IdP-level variable, describing the default IdP under its
	// own name and each of AUTHPROXY_IDPS as AUTHPROXY_IDP_<NAME>_… (idps.go);
	// idpOnly ones exist only under an IdP's name.
	idp, idpOnly bool
	parse        func(c *Config, v string) error
}

// variables lists every AUTHPROXY_* variable, in the order the README shows.
var variables = []variable{
	{name: "AUTHPROXY_LISTEN", def: ":4180", help: "address to serve on, host:port",
		parse: func(c *Config, v string) error { c.Listen = v; return checkHostPort(v) }},
	{name: "AUTHPROXY_UPSTREAM", required: true, help: "the protected app: http://127.0.0.1:8080, https://… or unix:///path.sock",
		parse: func(c *Config, v string) (err error) { c.Upstream, err = parseUpstream(v); return err }},
	{name: "AUTHPROXY_UPSTREAM_TIMEOUT", def: "30s", help: "how long to wait for the upstream's response headers before answering 504 (streams may then run longer)",
		parse: func(c *Config, v string) (err error) { c.UpstreamTimeout, err = parsePositiveDuration(v); return err }},
	{name: "AUTHPROXY_OIDC_ISSUER", idp: true, help: issuerHelp(defaultVars),
		parse: func(c *Config, v string) (err error) {
			if v != "" { // required except with github: checkProvider
				c.Issuer, err = parseHTTPURL(v)
			}
			return err
		}},
	{name: "AUTHPROXY_IDP_TIMEOUT", def: "10s", help: "how long to wait for each call to the identity provider (discovery, keys, token, userinfo); a sign-in it does not answer in time gets a 504 page",
		parse: func(c *Config, v string) (err error) { c.IdPTimeout, err = parsePositiveDuration(v); return err }},
	{name: "AUTHPROXY_CLIENT_ID", idp: true, required: true, help: "OAuth2 client id",
		parse: func(c *Config, v string) error { c.ClientID = v; return nil }},
	{name: "AUTHPROXY_CLIENT_SECRET", idp: true, secret: true, live: true, help: "client secret; empty means a public client (PKCE alone)",
		parse: func(c *Config, v string) error { c.ClientSecret = Secret(v); return nil }},
	{name: "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE", idp: true, watch: true, live: true, help: "private_key_jwt instead of a client secret: a PEM RSA (2048 bits or more) or EC (P-256, P-384, P-521) private key, or a private JWK, that signs a fresh 60-second client assertion for every token request (RS256, ES256, ES384 or ES512 by the key); the IdP must list private_key_jwt; see Client authentication",
		parse: parseClientKeyFile},
	{name: "AUTHPROXY_CLIENT_PRIVATE_KEY_ID", idp: true, live: true, help: "the kid of AUTHPROXY_CLIENT_PRIVATE_KEY_FILE's key as registered at the IdP; default: the JWK's kid, else the key's RFC 7638 thumbprint (`authproxy check` prints the public JWKS to register)",
		parse: func(c *Config, v string) error {
			c.ClientPrivateKeyID = v
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return fmt.Errorf("want a key id without control characters, got %q", v)
			}
			return nil
		}},
	{name: "AUTHPROXY_CLIENT_TLS_CERT_FILE", idp: true, watch: true, live: true, help: "tls_client_auth (RFC 8705) instead of a client secret: PEM client certificate (chain) presented to the IdP, which must list tls_client_auth or self_signed_tls_client_auth; the token endpoint is its mtls_endpoint_aliases one when it has one",
		parse: func(c *Config, v string) error { c.ClientTLSCertFile = v; return checkReadable(v) }},
	{name: "AUTHPROXY_CLIENT_TLS_KEY_FILE", idp: true, watch: true, live: true, help: "the PEM private key of AUTHPROXY_CLIENT_TLS_CERT_FILE",
		parse: func(c *Config, v string) error { c.ClientTLSKeyFile = v; return checkReadable(v) }},
	{name: "AUTHPROXY_REDIRECT_URL", required: true, help: "absolute callback URL whose path is /oauth2/callback, e.g. https://app.example.com/oauth2/callback",
		parse: func(c *Config, v string) (err error) { c.RedirectURL, err = parseRedirectURL(v); return err }},
	{name: "AUTHPROXY_SCOPES", idp: true, def: "openid email profile", help: "requested scopes, space- or comma-separated; must include openid",
		parse: parseScopes},
	{name: "AUTHPROXY_PROVIDER", idp: true, def: "oidc", help: "the kind of identity provider: oidc (any OpenID Connect IdP), keycloak, entra, google, gitlab, okta, auth0 or github; see Identity providers",
		parse: func(c *Config, v string) error {
			c.Provider = v
			if !slices.Contains(providers.Kinds, v) {
				return fmt.Errorf("want one of %s, got %q", strings.Join(providers.Kinds, ", "), v)
			}
			return nil
		}},
	{name: "AUTHPROXY_KEYCLOAK_ROLES", idp: true, help: "keycloak: roles that become groups: realm (realm_access.roles, as they are), client (this client's roles, as `<client id>:<role>`), or both, comma-separated; empty means none",
		parse: func(c *Config, v string) error {
			c.KeycloakRoles = splitList(v)
			for _, r := range c.KeycloakRoles {
				if r != "realm" && r != "client" {
					return fmt.Errorf("want realm and/or client, got %q", r)
				}
			}
			return nil
		}},
	{name: "AUTHPROXY_ENTRA_TENANTS", idp: true, help: "entra: tenant ids (GUIDs) whose users may sign in, comma-separated, or * for every tenant; required with the multi-tenant issuers `…/common/v2.0` and `…/organizations/v2.0`",
		parse: func(c *Config, v string) error {
			c.EntraTenants = splitList(v)
			for _, t := range c.EntraTenants {
				if t != "*" && !providers.IsGUID(t) {
					return fmt.Errorf("want tenant ids (GUIDs) or *, got %q", t)
				}
			}
			return nil
		}},
	{name: "AUTHPROXY_ENTRA_GRAPH_URL", idp: true, help: "entra: Microsoft Graph's base URL, asked for groups when the ID token has too many (overage) and for group names; default https://graph.microsoft.com",
		parse: func(c *Config, v string) (err error) {
			if v != "" {
				c.EntraGraphURL, err = parseHTTPURL(v)
			}
			return err
		}},
	{name: "AUTHPROXY_ENTRA_GROUP_NAMES", idp: true, def: "false", help: "entra: also send each group's display name beside its id, read from Microsoft Graph at sign-in: true or false (names are not unique: write access rules with ids)",
		parse: func(c *Config, v string) (err error) { c.EntraGroupNames, err = parseBool(v); return err }},
	{name: "AUTHPROXY_GOOGLE_HOSTED_DOMAIN", idp: true, help: "google: Workspace domains whose accounts may sign in (the ID token's hd claim), comma-separated; * for any Workspace account but no consumer account",
		parse: func(c *Config, v string) (err error) { c.GoogleHostedDomains, err = parseDomains(v); return err }},
	{name: "AUTHPROXY_GITHUB_URL", idp: true, help: "github: GitHub Enterprise Server's address, API at `<url>/api/v3`; default https://github.com",
		parse: func(c *Config, v string) (err error) {
			if v != "" {
				c.GitHubURL, err = parseHTTPURL(v)
			}
			return err
		}},
	{name: "AUTHPROXY_GITHUB_ORG", idp: true, help: "github: only active members of this organization may sign in; adds the read:org scope",
		parse: func(c *Config, v string) error {
			c.GitHubOrg = v
			if v != "" && !validGitHubName(v) {
				return fmt.Errorf("want an organization login of letters, digits and -, got %q", v)
			}
			return nil
		}},
	{name: "AUTHPROXY_GITHUB_TEAM", idp: true, help: "github: only members of one of these teams (slugs, comma-separated) of AUTHPROXY_GITHUB_ORG may sign in",
		parse: func(c *Config, v string) error {
			c.GitHubTeams = splitList(v)
			for _, t := range c.GitHubTeams {
				if !validGitHubName(t) {
					return fmt.Errorf("want team slugs of letters, digits, - and _, got %q", t)
				}
			}
			return nil
		}},
	{name: "AUTHPROXY_IDPS", help: "further identity providers, by name (lower-case letters, digits and -, starting with a letter, at most 32; not `unknown`), comma-separated; each is configured by `AUTHPROXY_IDP_<NAME>_<VARIABLE>` for the IdP-level variables (see Several identity providers)",
		parse: func(c *Config, v string) (err error) { c.idpNames, err = parseIdPNames(v); return err }},
	{name: "AUTHPROXY_DEFAULT_IDP_NAME", def: "default", help: "the name of the IdP the variables without an IdP name describe, as sessions, policy rules, metrics and X-Forwarded-Idp name it",
		parse: func(c *Config, v string) error {
			c.Name = v
			if !validIdPName(v) {
				return fmt.Errorf("want a name of %s, got %q", idpNameRules, v)
			}
			return reservedIdPName(v)
		}},
	{name: "AUTHPROXY_DISPLAY_NAME", idp: true, help: "the IdP's name on the sign-in chooser, shown when there are several browser IdPs; default the IdP's name",
		parse: func(c *Config, v string) error {
			c.DisplayName = v
			if len(v) > 100 || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return fmt.Errorf("want at most 100 characters without control characters, got %q", v)
			}
			return nil
		}},
	{name: "AUTHPROXY_BEARER_ONLY", idp: true, idpOnly: true, def: "false", help: "`true`: the IdP accepts API clients' bearer tokens from its issuer, for its bearer audiences (its client id may then be left out), and never serves browser sign-in",
		parse: func(c *Config, v string) (err error) { c.BearerOnly, err = parseBool(v); return err }},
	{name: "AUTHPROXY_COOKIE_SECRET", required: true, secret: true, live: true, help: "32 random bytes as base64 (or 64 hex chars), e.g. from `authproxy secret`; a list rotates keys: the first seals, all open",
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
	{name: "AUTHPROXY_ALLOWED_EMAIL_DOMAINS", idp: true, def: "*", defUnless: "AUTHPROXY_ALLOWED_EMAILS", file: true, live: true, help: "who may sign in, by email domain (comma-separated; * for any); the default gives way to AUTHPROXY_ALLOWED_EMAILS: with only that set, only its emails may",
		parse: func(c *Config, v string) (err error) { c.AllowedEmailDomains, err = parseDomains(v); return err }},
	{name: "AUTHPROXY_ALLOWED_EMAILS", idp: true, file: true, live: true, help: "explicit email allow-list, comma-separated (adds to the domains)",
		parse: func(c *Config, v string) (err error) { c.AllowedEmails, err = parseEmails(v); return err }},
	{name: "AUTHPROXY_ALLOWED_GROUPS", idp: true, file: true, live: true, help: "if set, the user must be in one of these groups (comma-separated)",
		parse: func(c *Config, v string) error { c.AllowedGroups = splitList(v); return nil }},
	{name: "AUTHPROXY_BEARER_AUDIENCES", idp: true, help: "audiences accepted in API clients' `Authorization: Bearer` JWTs (comma-separated); default: the client id",
		parse: func(c *Config, v string) error {
			c.BearerAudiences = splitList(v)
			for _, a := range c.BearerAudiences {
				if strings.ContainsAny(a, " \t") {
					return fmt.Errorf("want audiences without blanks, comma-separated, got %q", a)
				}
			}
			return nil
		}},
	{name: "AUTHPROXY_INSECURE_ALLOW_UNVERIFIED_EMAIL", idp: true, def: "false", help: "let users whose email_verified is false or missing sign in: true or false (their unverified address still reaches the upstream as X-Forwarded-Email)",
		parse: func(c *Config, v string) (err error) { c.InsecureAllowUnverifiedEmail, err = parseBool(v); return err }},
	{name: "AUTHPROXY_SKIP_AUTH_ROUTES", live: true, help: "routes served without a session, e.g. `GET /healthz, /public/`: a path ending in / is a prefix, any other is exact; an optional method limits the route",
		parse: func(c *Config, v string) (err error) {
			c.SkipAuthRoutes, err = policy.ParseSkipRoutes(v)
			return policyProblems(err)
		}},
	{name: "AUTHPROXY_POLICY_FILE", watch: true, live: true, help: "YAML file of ordered access rules (path, methods, allow: public, authenticated, or groups/emails/domains); the first match decides, no match denies; see README",
		parse: func(c *Config, v string) (err error) {
			if v != "" {
				c.PolicyFile, err = policy.Load(v)
			}
			return policyProblems(err)
		}},
	{name: "AUTHPROXY_USER_CLAIM", idp: true, def: "sub", help: "ID token claim sent as X-Forwarded-User",
		parse: func(c *Config, v string) error { c.UserClaim = v; return nil }},
	{name: "AUTHPROXY_GROUPS_CLAIM", idp: true, def: "groups", help: "ID token claim holding the user's groups",
		parse: func(c *Config, v string) error { c.GroupsClaim = v; return nil }},
	{name: "AUTHPROXY_PASS_ACCESS_TOKEN", def: "false", help: "also send X-Forwarded-Access-Token: true or false",
		parse: func(c *Config, v string) (err error) { c.PassAccessToken, err = parseBool(v); return err }},
	{name: "AUTHPROXY_CLAIM_HEADERS", file: true, live: true, help: "more ID token claims sent upstream, as `Header=claim` pairs: `X-Tenant=tenant_id, X-Dept=department`; client-sent copies are removed like the built-in headers",
		parse: parseClaimHeaders},
	{name: "AUTHPROXY_UPSTREAM_JWT", def: "false", help: "also send X-Authproxy-Jwt, a 2-minute ES256 JWT of the identity (sub, email, groups, aud = the upstream URL), verifiable with /.well-known/jwks.json: true or false",
		parse: func(c *Config, v string) (err error) { c.UpstreamJWT, err = parseBool(v); return err }},
	{name: "AUTHPROXY_UPSTREAM_JWT_KEY_FILE", watch: true, help: "PEM P-256 private key that signs X-Authproxy-Jwt; default: a new key at every start (set it when running several replicas)",
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
	{name: "AUTHPROXY_SIGNIN_RATE_LIMIT", def: "30/m burst=10", help: "sign-in starts (`/oauth2/start` and the redirect to sign in) and, counted apart, callbacks allowed per client address (X-Real-IP's; IPv6 by /64): `N/s`, `N/m` or `N/h` with an optional `burst=B` (default a third of N), or `off`; beyond it 429 with Retry-After. Signed-in requests are never counted",
		parse: func(c *Config, v string) (err error) { c.SignInRateLimit, err = parseRateLimit(v); return err }},
	{name: "AUTHPROXY_BACKCHANNEL_LOGOUT_RATE_LIMIT", def: "600/m burst=100", help: "back-channel logout requests allowed per client address (the IdP's), as AUTHPROXY_SIGNIN_RATE_LIMIT, or `off`",
		parse: func(c *Config, v string) (err error) { c.BackchannelRateLimit, err = parseRateLimit(v); return err }},
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
	{name: "AUTHPROXY_UPSTREAM_CA_FILE", watch: true, help: "PEM CA certificates that an https upstream's certificate must chain to (default: the system's)",
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
		switch {
		case v.secret:
			help += " (or `" + v.name + "_FILE`)"
		case v.file:
			help += " (or `" + v.name + "_FILE`, one a line)"
		}
		if v.live && (v.secret || v.file || v.watch) {
			help += "; reloaded without a restart"
		}
		name := v.name
		switch {
		case v.idpOnly:
			name = idpVars("<NAME>").rename(v.name)
		case v.idp:
			help += "; per IdP"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", name, def, strings.ReplaceAll(help, "|", "\\|"))
	}
	return b.String()
}

// VariableNames returns the name of every AUTHPROXY_* variable authproxy
// reads, in table order (secrets may also be given as NAME_FILE), but the
// further IdPs' AUTHPROXY_IDP_<NAME>_* (named by AUTHPROXY_IDPS).
func VariableNames() []string {
	var names []string
	for _, v := range variables {
		if !v.idpOnly {
			names = append(names, v.name)
		}
	}
	return names
}
